"""The console's IAM pages, driven as a browser would (forms, CSRF, redirects): users with
their groups, access keys and console password (a required reset must be done at sign-in
before any other page), groups, roles with trust policies and instance profiles, managed
and inline policies written with the JSON editor (Validate gives the engine's own sentence;
a refused document is shown again and nothing is stored), and the policy simulator."""
from __future__ import annotations

import json
import re

import pytest

from eucalite import accounts
from eucalite.policy import document, grammar
from eucalite.web.session import set_password

from consoleutil import PASSWORD, Console, console_app, signed_in, token_of

ACCOUNT = "lab"


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*") -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


TRUST_EC2 = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                 "Action": "sts:AssumeRole"})


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    with app.app_context():
        accounts.create_account(ACCOUNT)
        set_password(ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


@pytest.fixture
def root(app):
    """The lab account's root, signed in."""
    return Console(app, account=ACCOUNT, user="admin")


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash [a-z]+" role="[a-z]+">([^<]*)</p>', html)


def iam(app):
    return app.extensions["eucalite"].iam


def root_principal(app):
    with app.app_context():
        return accounts.principal_of(accounts.get_user(ACCOUNT, accounts.ADMIN_USER))


def test_users_groups_keys_and_passwords(app, root):
    text = root.page("/console/iam/users/create", {"name": "carol"})
    assert "User carol created." in flashes(text) and "<h1>User carol" in text
    assert "EntityAlreadyExists" in root.page("/console/iam/users/create", {"name": "carol"})
    assert "ValidationError" in root.page("/console/iam/users/create", {"name": "bad name!"})
    assert 'data-user="carol"' in root.text("/console/iam/users")

    # groups: create, add the user from the group's page, see it on the user's page
    text = root.page("/console/iam/groups/create", {"name": "devs"})
    assert "Group devs created." in flashes(text)
    text = root.page("/console/iam/users/_/groups",
                     {"op": "add", "group": "devs", "user": "carol", "back": "group"})
    assert 'data-member="carol"' in text
    assert 'data-group="devs"' in root.text("/console/iam/users/carol")
    text = root.page("/console/iam/users/carol/groups", {"op": "remove", "group": "devs"})
    assert 'data-group="devs"' not in text and "In no group." in text

    # access keys: the secret is shown once
    text = root.page("/console/iam/users/carol/keys", {"op": "create"})
    with app.app_context():
        [key] = accounts.get_user(ACCOUNT, "carol").keys
        key_id, secret = key.id, key.secret
    assert key_id in text and secret in text
    again = root.text("/console/iam/users/carol")
    assert key_id in again and secret not in again
    text = root.page("/console/iam/users/carol/keys", {"op": "Inactive", "key_id": key_id})
    assert f"Access key {key_id} is now Inactive." in flashes(text)
    with app.app_context():
        assert accounts.get_user(ACCOUNT, "carol").keys[0].status == "Inactive"
    text = root.page("/console/iam/users/carol/keys", {"op": "delete", "key_id": key_id})
    assert f'data-key="{key_id}"' not in text

    # console password: the one password rule, then a profile
    text = root.page("/console/iam/users/carol/login", {"op": "set", "password": "short"})
    assert "PasswordPolicyViolation" in text and 'data-password="no"' in text
    text = root.page("/console/iam/users/carol/login",
                     {"op": "set", "password": "carol-first-pw", "reset_required": "yes"})
    assert 'data-password="yes"' in text and 'data-reset="yes"' in text

    # deleting a user with policies is refused with IAM's DeleteConflict, then works
    root.page("/console/iam/user/carol/inline",
              {"policy_name": "p", "document": doc(allow("ec2:DescribeInstances"))})
    assert "DeleteConflict" in root.page("/console/iam/users/carol/delete")
    root.page("/console/iam/user/carol/inline/delete", {"policy_name": "p"})
    assert "must delete login profile first" in root.page("/console/iam/users/carol/delete")
    text = root.page("/console/iam/users/carol/login", {"op": "delete"})
    assert 'data-password="no"' in text
    text = root.page("/console/iam/users/carol/delete")
    assert "User carol deleted." in flashes(text) and 'data-user="carol"' not in text


def test_a_required_password_reset_comes_before_any_page(app, root):
    root.page("/console/iam/users/create", {"name": "dave"})
    root.page("/console/iam/users/dave/login",
              {"op": "set", "password": "dave-first-pw", "reset_required": "yes"})
    client = app.test_client()
    token = token_of(client.get("/console/login"))
    response = client.post("/console/login", data={
        "account": ACCOUNT, "user": "dave", "password": "dave-first-pw", "csrf_token": token})
    assert response.status_code == 302
    for path in ("/console/dashboard", "/console/credentials", "/console/instances"):
        response = client.get(path)
        assert response.status_code == 302 and response.location.endswith("/console/password")
    response = client.get("/console/password")
    assert "data-reset-required" in response.get_data(as_text=True)
    token = token_of(response)

    def change(old, new, confirm=None):
        return client.post("/console/password", data={
            "old_password": old, "new_password": new,
            "confirm_password": new if confirm is None else confirm, "csrf_token": token},
            follow_redirects=True).get_data(as_text=True)

    assert "The old password is incorrect." in change("wrong-password", "dave-second-pw")
    assert "differ" in change("dave-first-pw", "dave-second-pw", "dave-other-pw")
    assert "PasswordPolicyViolation" in change("dave-first-pw", "short")
    assert client.get("/console/dashboard").status_code == 302      # still required
    text = change("dave-first-pw", "dave-second-pw")
    assert "Your console password is changed." in flashes(text) and "<h1>Dashboard" in text
    assert client.get("/console/credentials").status_code == 200    # the session stays
    with app.app_context():
        assert not accounts.get_user(ACCOUNT, "dave").password_reset_required
    signed_in(app, ACCOUNT, "dave", "dave-second-pw")               # the new one works


def test_inline_policies_validate_and_refuse_with_the_engines_sentence(app, root):
    root.page("/console/iam/users/create", {"name": "erin"})
    page = root.text("/console/iam/users/erin")
    assert 'id="add-inline"' in page and "No inline policies." in page

    bad = doc({"Effect": "Allow", "Action": "ec2:DescribeInstances"})    # no Resource
    expected = document.check(bad, grammar.IAM_INLINE_USER)
    answer = root.post("/console/iam/validate", {"kind": "user", "document": bad}).get_json()
    assert answer == {"valid": False, "code": expected.code, "message": expected.message}
    assert expected.code == "MalformedPolicyDocument"
    answer = root.post("/console/iam/validate", {"kind": "user", "document": "{not json"}
                       ).get_json()
    assert answer["valid"] is False and answer["code"] == "MalformedPolicyDocument"
    good = doc(allow("ec2:DescribeInstances"))
    assert root.post("/console/iam/validate", {"kind": "user", "document": good}
                     ).get_json()["valid"] is True
    # past the user's 2,048-character limit: LimitExceeded, the engine's words
    big = doc(*[allow(f"ec2:DescribeInstances{i}") for i in range(60)])
    limit = document.check(big, grammar.IAM_INLINE_USER)
    answer = root.post("/console/iam/validate", {"kind": "user", "document": big}).get_json()
    assert (answer["code"], answer["message"]) == (limit.code, limit.message) == \
        ("LimitExceeded", limit.message)

    # saving a refused document: the editor again, with the sentence and the text; nothing kept
    response = root.post("/console/iam/user/erin/inline",
                         {"policy_name": "bad", "document": bad}, follow=False)
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and expected.message in text
    assert 'name="policy_name" value="bad"' in text and "ec2:DescribeInstances" in text
    with app.app_context():
        assert iam(app).entity_policy_names(root_principal(app), "user", "erin") == []
    text = root.page("/console/iam/user/erin/inline", {"policy_name": "read", "document": good})
    assert "Policy read of user erin saved." in flashes(text) and 'data-policy="read"' in text
    edit = root.text("/console/iam/user/erin/inline?policy=read")
    assert "ec2:DescribeInstances" in edit and 'value="read"' in edit
    assert "Unknown policy kind" in root.post("/console/iam/validate",
                                              {"kind": "nope", "document": good}).get_json()[
        "message"]


def test_managed_policies_versions_and_attachments(app, root):
    text = root.text("/console/iam/policies")
    assert 'data-policy="AdministratorAccess"' in text and "AWS managed" in text
    aws_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    page = root.text(f"/console/iam/policy?arn={aws_arn}")
    assert "Delete policy" not in page and 'id="new-version"' not in page   # AWS's: read-only

    bad = doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Bogus": 1})
    response = root.post("/console/iam/policies/create", {"name": "ops", "document": bad},
                         follow=False)
    expected = document.check(bad, grammar.IAM_MANAGED)
    assert response.status_code == 400 and expected.message in response.get_data(as_text=True)
    assert 'data-policy="ops"' not in root.text("/console/iam/policies?scope=Local")

    text = root.page("/console/iam/policies/create",
                     {"name": "ops", "document": doc(allow("ec2:Describe*"))})
    assert "Policy ops created." in flashes(text) and 'data-version="v1"' in text
    arn = re.search(r"ARN: <code>([^<]+)</code>", text).group(1)
    text = root.page("/console/iam/policy/version", {"op": "create", "arn": arn,
                                                      "document": doc(allow("ec2:*")),
                                                      "set_default": "yes"})
    assert "Version v2 created." in flashes(text) and 'data-document="v2"' in text
    text = root.page("/console/iam/policy/version", {"op": "default", "arn": arn,
                                                      "version": "v1"})
    assert "v1 is now the default version." in flashes(text)
    text = root.page("/console/iam/policy/version", {"op": "delete", "arn": arn,
                                                      "version": "v2"})
    assert 'data-version="v2"' not in text

    root.page("/console/iam/groups/create", {"name": "ops"})
    text = root.page("/console/iam/group/ops/attach", {"op": "attach", "arn": arn})
    assert 'data-attached="ops"' in text
    assert 'data-entity="group:ops"' in root.text(f"/console/iam/policy?arn={arn}")
    assert "DeleteConflict" in root.page("/console/iam/policy/delete", {"arn": arn})
    text = root.page("/console/iam/group/ops/attach", {"op": "detach", "arn": arn})
    assert 'data-attached="ops"' not in text
    text = root.page("/console/iam/policy/delete", {"arn": arn})
    assert f"Policy {arn} deleted." in flashes(text)


def test_roles_trust_policies_and_instance_profiles(app, root):
    bad_trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                     "Action": "sts:AssumeRole", "Resource": "*"})
    response = root.post("/console/iam/roles/create", {"name": "web", "document": bad_trust},
                         follow=False)
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "Has prohibited field Resource" in text
    assert 'data-role="web"' not in text and 'value="web"' in text     # the form kept
    text = root.page("/console/iam/roles/create",
                     {"name": "web", "document": TRUST_EC2, "description": "web servers"})
    assert "Role web created." in flashes(text) and "ec2.amazonaws.com" in text

    text = root.page("/console/iam/instance-profiles",
                     {"op": "create", "name": "web-profile", "role": "web"})
    assert 'data-profile="web-profile"' in text
    assert 'data-profile="web-profile"' in root.text("/console/iam/roles/web")
    response = root.post("/console/iam/roles/web/trust", {"document": bad_trust}, follow=False)
    assert response.status_code == 400
    with app.app_context():
        role, _ = iam(app).get_role(root_principal(app), "web")
        assert "Resource" not in role.trust_policy           # unchanged
    text = root.page("/console/iam/role/web/inline",
                     {"policy_name": "s3", "document": doc(allow("s3:GetObject"))})
    assert 'data-policy="s3"' in text
    assert "DeleteConflict" in root.page("/console/iam/roles/web/delete")


def test_the_simulator_answers_with_the_deciding_statement(app, root):
    root.page("/console/iam/users/create", {"name": "fay"})
    root.page("/console/iam/groups/create", {"name": "readers"})
    root.page("/console/iam/users/fay/groups", {"op": "add", "group": "readers"})
    root.page("/console/iam/group/readers/inline", {"policy_name": "read", "document": doc(
        {"Sid": "ReadInstances", **allow("ec2:Describe*")})})
    root.page("/console/iam/user/fay/inline", {"policy_name": "no-terminate", "document": doc(
        {"Sid": "NeverTerminate", "Effect": "Deny", "Action": "ec2:TerminateInstances",
         "Resource": "*"})})
    with app.app_context():
        account_id = accounts.get_account(ACCOUNT).id
    source = f"arn:aws:iam::{account_id}:user/fay"
    assert f'value="{source}"' in root.text("/console/iam/simulator")
    text = root.page("/console/iam/simulator", {
        "source": source, "resource": "*",
        "actions": "ec2:DescribeInstances ec2:TerminateInstances ec2:RunInstances"})
    rows = dict(re.findall(r'data-action="([^"]+)" data-decision="([^"]+)"', text))
    assert rows == {"ec2:DescribeInstances": "allowed",
                    "ec2:TerminateInstances": "explicitDeny", "ec2:RunInstances": "implicitDeny"}
    assert "Allowed by statement &#39;ReadInstances&#39;" in text
    assert "Explicitly denied by statement &#39;NeverTerminate&#39;" in text
    assert "Implicitly denied: no statement allows this request." in text

    custom = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                  "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})
    text = root.page("/console/iam/simulator", {"source": "custom", "document": custom,
                                                "actions": "s3:GetObject",
                                                "context": "aws:SourceIp=10.1.2.3"})
    assert 'data-decision="allowed"' in text
    text = root.page("/console/iam/simulator", {"source": "custom", "document": custom,
                                                "actions": "s3:GetObject"})
    assert 'data-decision="implicitDeny"' in text and "aws:sourceip" in text
    text = root.page("/console/iam/simulator", {"source": "custom", "document": "{",
                                                "actions": "s3:GetObject"})
    assert "InvalidInput: PolicyInputList.1: Syntax errors in policy." in flashes(text)


def test_changing_ones_own_password_needs_iam_change_password(app, root):
    root.page("/console/iam/users/create", {"name": "gil"})
    root.page("/console/iam/users/gil/login", {"op": "set", "password": "gil-first-pw"})
    gil = Console(app, ACCOUNT, "gil", "gil-first-pw")
    assert 'id="change-password"' in gil.text("/console/credentials")
    form = {"old_password": "gil-first-pw", "new_password": "gil-second-pw",
            "confirm_password": "gil-second-pw"}
    text = gil.page("/console/password", form)
    assert "AccessDenied" in text and "iam:ChangePassword" in text
    with app.app_context():
        account_id = accounts.get_account(ACCOUNT).id
    root.page("/console/iam/user/gil/inline", {"policy_name": "own-password", "document": doc(
        allow("iam:ChangePassword", f"arn:aws:iam::{account_id}:user/gil"))})
    text = gil.page("/console/password", form)
    assert "Your console password is changed." in flashes(text)
    signed_in(app, ACCOUNT, "gil", "gil-second-pw")
