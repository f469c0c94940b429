"""IAM roles, trust policies and instance profiles: who may assume a role
(identity.may_assume: the trust policy with the caller's own policies), the roles and
instance profiles Query API through boto3 and the aws CLI against a live server (AWS's
shapes, codes, paging, tags, DeleteConflict, LimitExceeded, isolation between accounts)
and GetAccountSummary's counts."""
from __future__ import annotations

import json

import pytest

from awsutil import error_code, failure
from iamutil import all_pages, iam_cli
from eucalite import accounts, ids, identity
from eucalite.accounts import Principal
from eucalite.db import db
from eucalite.errors.iam import NoSuchEntity
from eucalite.identity import InlinePolicy, InstanceProfile, InstanceProfileRole, Role


def trust(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_assume(principal, **extra) -> dict:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


# --- may_assume: the trust decision ---------------------------------------------------

def _principal(account: accounts.Account, name: str) -> Principal:
    user = accounts.get_user(account.name, name) if name == "admin" else \
        accounts.create_user(account.name, name)
    return accounts.principal_of(user)


def _role(account: accounts.Account, name: str, document: str) -> Role:
    role = Role(id=ids.unique_id("AROA"), account_id=account.id, name=name,
                trust_policy=document)
    db.session.add(role)
    db.session.commit()
    return role


def _session(role: Role, account: accounts.Account, session: str = "s1") -> Principal:
    return Principal(account_id=account.id, account_name=account.name,
                     user_id=f"{role.id}:{session}", user_name=role.name,
                     access_key_id="ASIAEXAMPLE", role_id=role.id, role_name=role.name,
                     session_name=session)


def _allow_user_assume(principal: Principal, effect: str = "Allow") -> None:
    db.session.add(InlinePolicy(user_id=principal.user_id, name=f"assume-{effect}",
                                document=json.dumps({
                                    "Version": "2012-10-17",
                                    "Statement": [{"Effect": effect, "Action": "sts:AssumeRole",
                                                   "Resource": "*"}]})))
    db.session.commit()


def test_may_assume_answers_for_accounts_users_roles_services_and_denies(app):
    with app.app_context():
        home, other = accounts.create_account("home"), accounts.create_account("other")
        root, alice, bob = (_principal(home, name) for name in ("admin", "alice", "bob"))
        stranger_root, stranger = _principal(other, "admin"), _principal(other, "eve")

        # The account as principal: it delegates to the account's own policies. Its root
        # needs none; a user needs an identity policy allowing sts:AssumeRole.
        by_account = _role(home, "by-account", trust(allow_assume({"AWS": home.id})))
        assert identity.may_assume(by_account, root).allowed
        assert identity.may_assume(by_account, alice).effect == "ImplicitDeny"
        _allow_user_assume(alice)
        decision = identity.may_assume(by_account, alice)
        assert decision.allowed and "user inline policy" in decision.explain()
        assert identity.may_assume(by_account, stranger_root).effect == "ImplicitDeny"

        # A named user of the role's account needs nothing more; another user is refused.
        by_user = _role(home, "by-user", trust(allow_assume(
            {"AWS": f"arn:aws:iam::{home.id}:user/bob"}, Sid="bob")))
        decision = identity.may_assume(by_user, bob)
        assert decision.allowed and "'bob' of the role's trust policy" in decision.explain()
        assert not identity.may_assume(by_user, alice).allowed

        # A role names every session of it (role chaining); a session of another role no.
        chained = _role(home, "chained", trust(allow_assume(
            {"AWS": f"arn:aws:iam::{home.id}:role/by-user"})))
        assert identity.may_assume(chained, _session(by_user, home)).allowed
        assert not identity.may_assume(chained, _session(by_account, home)).allowed
        assert not identity.may_assume(chained, bob).allowed

        # Another account trusted: its root may, its user only with its own policy.
        cross = _role(home, "cross", trust(allow_assume({"AWS": f"arn:aws:iam::{other.id}:root"})))
        assert identity.may_assume(cross, stranger_root).allowed
        assert not identity.may_assume(cross, stranger).allowed
        _allow_user_assume(stranger)
        assert identity.may_assume(cross, stranger).allowed
        assert not identity.may_assume(cross, root).allowed      # home is not trusted

        # The EC2 service principal (instance profiles); users are not the service.
        ec2 = _role(home, "ec2", trust(allow_assume({"Service": "ec2.amazonaws.com"})))
        assert identity.may_assume(ec2, identity.EC2_SERVICE).allowed
        assert not identity.may_assume(ec2, "lambda.amazonaws.com").allowed
        assert not identity.may_assume(ec2, root).allowed
        assert not identity.may_assume(by_account, identity.EC2_SERVICE).allowed

        # An explicit Deny in the trust policy wins over the account's Allow, and one in
        # the caller's own policies wins over the trust policy naming the caller.
        denied = _role(home, "denied", trust(
            allow_assume({"AWS": home.id}),
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{home.id}:user/alice"},
             "Action": "sts:AssumeRole", "Sid": "NoAlice"}))
        decision = identity.may_assume(denied, alice)
        assert decision.effect == "Deny" and "'NoAlice'" in decision.explain()
        assert identity.may_assume(denied, root).allowed
        _allow_user_assume(bob, "Deny")
        assert identity.may_assume(by_user, bob).effect == "Deny"


def test_may_assume_sessions_and_everyone(app):
    with app.app_context():
        home, other = accounts.create_account("home"), accounts.create_account("other")
        alice, stranger = _principal(home, "alice"), _principal(other, "eve")
        base = _role(home, "base", trust(allow_assume({"Service": "ec2.amazonaws.com"})))
        # One session of a role, by its assumed-role ARN: that session only.
        one = _role(home, "one", trust(allow_assume(
            {"AWS": f"arn:aws:sts::{home.id}:assumed-role/base/job-1"})))
        assert identity.may_assume(one, _session(base, home, "job-1")).allowed
        assert not identity.may_assume(one, _session(base, home, "job-2")).allowed
        # "*" names every caller itself: enough in the role's account, while a caller of
        # another account also needs its own policy.
        anyone = _role(home, "anyone", trust(allow_assume({"AWS": "*"})))
        assert identity.may_assume(anyone, alice).allowed
        assert not identity.may_assume(anyone, stranger).allowed
        _allow_user_assume(stranger)
        assert identity.may_assume(anyone, stranger).allowed


def test_may_assume_checks_trust_conditions(app):
    with app.app_context():
        home = accounts.create_account("home")
        root = _principal(home, "admin")
        role = _role(home, "external", trust(allow_assume(
            {"AWS": home.id}, Condition={"StringEquals": {"sts:ExternalId": "secret-1"}})))
        assert not identity.may_assume(role, root).allowed
        assert not identity.may_assume(role, root, {"sts:ExternalId": "wrong"}).allowed
        assert identity.may_assume(role, root, {"sts:ExternalId": "secret-1"}).allowed


def test_instance_profile_resolves_by_name_or_arn_in_its_account_only(app):
    with app.app_context():
        home, other = accounts.create_account("home"), accounts.create_account("other")
        role = _role(home, "web", trust(allow_assume({"Service": "ec2.amazonaws.com"})))
        profile = InstanceProfile(id=ids.unique_id("AIPA"), account_id=home.id, name="web-p",
                                  path="/app/")
        empty = InstanceProfile(id=ids.unique_id("AIPA"), account_id=home.id, name="empty")
        db.session.add_all([profile, empty])
        db.session.flush()
        db.session.add(InstanceProfileRole(profile_id=profile.id, role_id=role.id))
        db.session.commit()

        found, its_role = identity.instance_profile(home.id, "web-p")
        assert (found.id, its_role.id) == (profile.id, role.id)
        arn = f"arn:aws:iam::{home.id}:instance-profile/app/web-p"
        assert identity.instance_profile(home.id, arn)[0].id == profile.id
        assert identity.instance_profile(home.id, "empty")[1] is None
        for account_id, name in ((other.id, "web-p"), (other.id, arn), (home.id, "nope"),
                                 (home.id, f"arn:aws:iam::{home.id}:instance-profile/web-p"),
                                 (home.id, f"arn:aws:iam::{home.id}:role/app/web-p")):
            with pytest.raises(NoSuchEntity):
                identity.instance_profile(account_id, name)


# --- the roles API --------------------------------------------------------------------

EC2_TRUST = trust(allow_assume({"Service": "ec2.amazonaws.com"}))


def _other_account(live, name="other"):
    """A boto3 IAM client for the root of a new account, and the account's id."""
    with live.app.app_context():
        account = accounts.create_account(name)
        key = accounts.create_access_key(name, accounts.ADMIN_USER)
        return live.client("iam", key_id=key.id, secret=key.secret), account.id


def test_roles_create_get_update_list_and_delete(live):
    iam = live.client("iam")
    me = iam.get_user()["User"]["Arn"].split(":")[4]
    document = trust(allow_assume({"AWS": me}, Sid="Mine"))
    made = iam.create_role(RoleName="deployer", Path="/ci/", AssumeRolePolicyDocument=document,
                           Description="runs deployments", MaxSessionDuration=7200,
                           Tags=[{"Key": "team", "Value": "ops"}])["Role"]
    assert made["Arn"] == f"arn:aws:iam::{me}:role/ci/deployer"
    assert made["RoleId"].startswith("AROA") and made["Path"] == "/ci/"
    assert made["AssumeRolePolicyDocument"] == json.loads(document)   # botocore decoded it
    assert made["Tags"] == [{"Key": "team", "Value": "ops"}]
    got = iam.get_role(RoleName="deployer")["Role"]
    assert (got["RoleId"], got["Description"], got["MaxSessionDuration"]) == (
        made["RoleId"], "runs deployments", 7200)
    assert got["RoleLastUsed"] == {} and got["Tags"] == made["Tags"]
    assert error_code(iam.create_role, RoleName="deployer",
                      AssumeRolePolicyDocument=document) == "EntityAlreadyExists"
    assert error_code(iam.get_role, RoleName="nobody") == "NoSuchEntity"

    # The raw answer carries the document URL-encoded, as IAM's does.
    raw = []
    iam.meta.events.register("after-call.iam.GetRole",
                             lambda http_response, **_: raw.append(http_response.text))
    iam.get_role(RoleName="deployer")
    assert "%7B%22Version%22%3A%20%222012-10-17%22" in raw[0]

    iam.update_role(RoleName="deployer", MaxSessionDuration=43200)
    assert iam.get_role(RoleName="deployer")["Role"]["Description"] == "runs deployments"
    changed = iam.update_role_description(RoleName="deployer", Description="ships")["Role"]
    assert (changed["Description"], changed["MaxSessionDuration"]) == ("ships", 43200)
    unchecked = live.client("iam", parameter_validation=False)   # the server checks too
    for duration in (3599, 43201, "1h"):
        assert error_code(unchecked.update_role, RoleName="deployer",
                          MaxSessionDuration=duration) == "ValidationError"
    widened = trust(allow_assume({"AWS": me}), allow_assume({"Service": "ec2.amazonaws.com"}))
    iam.update_assume_role_policy(RoleName="deployer", PolicyDocument=widened)
    assert iam.get_role(RoleName="deployer")["Role"]["AssumeRolePolicyDocument"] == \
        json.loads(widened)

    for name in ("b-role", "c-role", "d-role"):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)
    listed, pages = all_pages(iam.list_roles, "Roles", MaxItems=2)
    assert [role["RoleName"] for role in listed] == ["b-role", "c-role", "d-role", "deployer"]
    assert pages == 2
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix="/ci/")["Roles"]] == ["deployer"]
    assert error_code(iam.list_roles, PathPrefix="ci") == "ValidationError"
    assert error_code(iam.list_roles, Marker="bogus") == "ValidationError"

    iam.delete_role(RoleName="deployer")
    assert error_code(iam.get_role, RoleName="deployer") == "NoSuchEntity"
    assert error_code(iam.delete_role, RoleName="deployer") == "NoSuchEntity"
    code, status, _ = failure(iam.get_role, RoleName="bad/name")
    assert (code, status) == ("ValidationError", 400)


@pytest.mark.parametrize("document, message", [
    (trust(allow_assume({"AWS": "arn:aws:iam::123456789012:root"})),
     "Invalid principal in policy: arn:aws:iam::123456789012:root"),
    (trust(allow_assume({"AWS": "{me}"}), {"Effect": "Allow", "Principal": {
        "AWS": "arn:aws:iam::{me}:user/ghost"}, "Action": "sts:AssumeRole"}),
     "Invalid principal in policy: arn:aws:iam::{me}:user/ghost"),
    (trust(allow_assume({"AWS": "arn:aws:iam::{me}:role/ghost"})),
     "Invalid principal in policy: arn:aws:iam::{me}:role/ghost"),
    (trust(allow_assume({"AWS": "{me}"}, Resource="*")), "Has prohibited field Resource"),
    (trust({"Effect": "Allow", "Principal": {"AWS": "{me}"}, "Action": "ec2:RunInstances"}),
     "AssumeRole policy may only specify STS AssumeRole actions."),
    (trust({"Effect": "Allow", "Action": "sts:AssumeRole"}),
     "Missing required field Principal"),
    ("{not json", "Syntax errors in policy."),
])
def test_trust_policies_iam_refuses(live, document, message):
    iam = live.client("iam")
    me = iam.get_user()["User"]["Arn"].split(":")[4]
    code, status, answer = failure(iam.create_role, RoleName="r",
                                   AssumeRolePolicyDocument=document.replace("{me}", me))
    assert (code, status, answer["Error"]["Message"]) == (
        "MalformedPolicyDocument", 400, message.replace("{me}", me))
    assert iam.list_roles()["Roles"] == []


def test_trust_policies_name_this_clouds_users_roles_and_accounts(live):
    iam = live.client("iam")
    me = iam.get_user()["User"]["Arn"].split(":")[4]
    _, other_id = _other_account(live)
    iam.create_user(UserName="alice", Path="/eng/")
    iam.create_role(RoleName="base", AssumeRolePolicyDocument=EC2_TRUST)
    document = trust(allow_assume({"AWS": [
        other_id, f"arn:aws:iam::{other_id}:root", f"arn:aws:iam::{me}:user/eng/alice",
        f"arn:aws:iam::{me}:role/base", f"arn:aws:sts::{me}:assumed-role/base/job-1"]}))
    iam.create_role(RoleName="wide", AssumeRolePolicyDocument=document)
    # a trust policy longer than its quota is LimitExceeded, as IAM says
    long = trust(*[allow_assume({"AWS": me}, Sid=f"s{i:03}" + "x" * 40) for i in range(40)])
    code, _, answer = failure(iam.update_assume_role_policy, RoleName="wide",
                              PolicyDocument=long)
    assert (code, answer["Error"]["Message"]) == ("LimitExceeded",
                                                  "Cannot exceed quota for PolicySize: 2048")


def test_role_tags(live):
    iam = live.client("iam")
    iam.create_role(RoleName="tagged", AssumeRolePolicyDocument=EC2_TRUST)
    iam.tag_role(RoleName="tagged", Tags=[{"Key": f"k{i:02}", "Value": str(i)}
                                          for i in range(50)])
    assert error_code(iam.tag_role, RoleName="tagged",
                      Tags=[{"Key": "one-more", "Value": ""}]) == "LimitExceeded"
    iam.tag_role(RoleName="tagged", Tags=[{"Key": "k00", "Value": "replaced"}])
    tags, pages = all_pages(iam.list_role_tags, "Tags", RoleName="tagged", MaxItems=20)
    assert len(tags) == 50 and pages == 3 and tags[0] == {"Key": "k00", "Value": "replaced"}
    iam.untag_role(RoleName="tagged", TagKeys=[f"k{i:02}" for i in range(1, 50)])
    assert iam.list_role_tags(RoleName="tagged")["Tags"] == [{"Key": "k00",
                                                               "Value": "replaced"}]
    assert error_code(iam.tag_role, RoleName="tagged",
                      Tags=[{"Key": "aws:reserved", "Value": "x"}]) == "ValidationError"
    assert error_code(iam.list_role_tags, RoleName="untagged") == "NoSuchEntity"
    assert error_code(iam.create_role, RoleName="bad-tags", AssumeRolePolicyDocument=EC2_TRUST,
                      Tags=[{"Key": "bad{key}", "Value": "x"}]) == "ValidationError"
    assert error_code(iam.get_role, RoleName="bad-tags") == "NoSuchEntity"


def test_instance_profiles_hold_one_role(live):
    iam = live.client("iam")
    me = iam.get_user()["User"]["Arn"].split(":")[4]
    iam.create_role(RoleName="web", Path="/app/", AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_role(RoleName="batch", AssumeRolePolicyDocument=EC2_TRUST)
    made = iam.create_instance_profile(InstanceProfileName="web-profile",
                                       Path="/app/")["InstanceProfile"]
    assert made["Arn"] == f"arn:aws:iam::{me}:instance-profile/app/web-profile"
    assert made["InstanceProfileId"].startswith("AIPA") and made["Roles"] == []
    assert error_code(iam.create_instance_profile,
                      InstanceProfileName="web-profile") == "EntityAlreadyExists"

    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web")
    got = iam.get_instance_profile(InstanceProfileName="web-profile")["InstanceProfile"]
    (its_role,) = got["Roles"]
    assert its_role["Arn"] == f"arn:aws:iam::{me}:role/app/web"
    assert its_role["AssumeRolePolicyDocument"] == json.loads(EC2_TRUST)
    for role in ("batch", "web"):           # one role per profile, the same one included
        code, _, answer = failure(iam.add_role_to_instance_profile,
                                  InstanceProfileName="web-profile", RoleName=role)
        assert code == "LimitExceeded"
        assert "InstanceSessionsPerInstanceProfile: 1" in answer["Error"]["Message"]
    assert error_code(iam.add_role_to_instance_profile, InstanceProfileName="nope",
                      RoleName="web") == "NoSuchEntity"
    assert error_code(iam.add_role_to_instance_profile, InstanceProfileName="web-profile",
                      RoleName="nope") == "NoSuchEntity"

    # While a role is in a profile neither can be deleted.
    code, _, answer = failure(iam.delete_role, RoleName="web")
    assert (code, answer["Error"]["Message"]) == (
        "DeleteConflict", "Cannot delete entity, must remove roles from instance profile "
                          "first.")
    assert error_code(iam.delete_instance_profile,
                      InstanceProfileName="web-profile") == "DeleteConflict"

    for name in ("p-b", "p-c"):
        iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName="p-c", RoleName="web")
    listed, pages = all_pages(iam.list_instance_profiles, "InstanceProfiles", MaxItems=2)
    assert [p["InstanceProfileName"] for p in listed] == ["p-b", "p-c", "web-profile"]
    assert pages == 2 and [len(p["Roles"]) for p in listed] == [0, 1, 1]
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles(
        PathPrefix="/app/")["InstanceProfiles"]] == ["web-profile"]
    held, pages = all_pages(iam.list_instance_profiles_for_role, "InstanceProfiles",
                             RoleName="web", MaxItems=1)
    assert [p["InstanceProfileName"] for p in held] == ["p-c", "web-profile"] and pages == 2
    assert iam.list_instance_profiles_for_role(RoleName="batch")["InstanceProfiles"] == []
    assert error_code(iam.list_instance_profiles_for_role, RoleName="nope") == "NoSuchEntity"

    assert error_code(iam.remove_role_from_instance_profile, InstanceProfileName="p-b",
                      RoleName="web") == "NoSuchEntity"
    for name in ("web-profile", "p-c"):
        iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName="web")
    assert iam.get_instance_profile(
        InstanceProfileName="web-profile")["InstanceProfile"]["Roles"] == []
    iam.delete_instance_profile(InstanceProfileName="web-profile")
    assert error_code(iam.get_instance_profile,
                      InstanceProfileName="web-profile") == "NoSuchEntity"
    iam.delete_role(RoleName="web")
    assert error_code(iam.create_instance_profile,
                      InstanceProfileName="bad name") == "ValidationError"


def test_roles_and_profiles_are_per_account(live):
    iam = live.client("iam")
    other, other_id = _other_account(live)
    iam.create_role(RoleName="shared-name", AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_instance_profile(InstanceProfileName="only-mine")
    assert other.list_roles()["Roles"] == []
    assert other.list_instance_profiles()["InstanceProfiles"] == []
    for failing, kwargs in ((other.get_role, {"RoleName": "shared-name"}),
                            (other.delete_role, {"RoleName": "shared-name"}),
                            (other.get_instance_profile, {"InstanceProfileName": "only-mine"}),
                            (other.delete_instance_profile,
                             {"InstanceProfileName": "only-mine"})):
        assert error_code(failing, **kwargs) == "NoSuchEntity"
    # The same name in another account is another role.
    theirs = other.create_role(RoleName="shared-name",
                               AssumeRolePolicyDocument=EC2_TRUST)["Role"]
    assert theirs["Arn"] == f"arn:aws:iam::{other_id}:role/shared-name"
    other.create_instance_profile(InstanceProfileName="only-mine")
    assert error_code(other.add_role_to_instance_profile, InstanceProfileName="only-mine",
                      RoleName="missing") == "NoSuchEntity"
    assert iam.get_role(RoleName="shared-name")["Role"]["RoleId"] != theirs["RoleId"]


def test_a_user_without_policies_may_not_manage_roles(live):
    iam = live.client("iam")
    iam.create_role(RoleName="kept", AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_user(UserName="dev")
    key = iam.create_access_key(UserName="dev")["AccessKey"]
    dev = live.client("iam", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    for denied in (lambda: dev.create_role(RoleName="mine", AssumeRolePolicyDocument=EC2_TRUST),
                   lambda: dev.get_role(RoleName="kept"),
                   lambda: dev.delete_role(RoleName="kept"),
                   lambda: dev.list_roles(),
                   lambda: dev.create_instance_profile(InstanceProfileName="mine")):
        assert error_code(denied) == "AccessDenied"
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == ["kept"]


def test_account_summary_counts_roles_profiles_and_policies(live):
    iam = live.client("iam")
    before = iam.get_account_summary()["SummaryMap"]
    assert (before["Roles"], before["InstanceProfiles"], before["Policies"]) == (0, 0, 0)
    assert (before["RolesQuota"], before["InstanceProfilesQuota"]) == (1000, 1000)
    assert before["AssumeRolePolicySizeQuota"] == 2048
    assert before["AttachedPoliciesPerRoleQuota"] == 10
    iam.create_role(RoleName="r1", AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_role(RoleName="r2", AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_instance_profile(InstanceProfileName="p1")
    arn = iam.create_policy(PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="r1", PolicyArn=arn)
    iam.attach_role_policy(RoleName="r2", PolicyArn=arn)
    after = iam.get_account_summary()["SummaryMap"]
    assert (after["Roles"], after["InstanceProfiles"], after["Policies"],
            after["PolicyVersionsInUse"]) == (2, 1, 1, 2)
    # A role with a policy cannot be deleted until the policy is detached.
    code, _, answer = failure(iam.delete_role, RoleName="r1")
    assert (code, answer["Error"]["Message"]) == (
        "DeleteConflict", "Cannot delete entity, must detach all policies first.")


def test_aws_cli(live):
    cli = iam_cli(live)

    made = cli("create-role", "--role-name", "cli-role", "--assume-role-policy-document",
               EC2_TRUST)["Role"]
    assert made["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"}
    cli("create-instance-profile", "--instance-profile-name", "cli-profile")
    cli("add-role-to-instance-profile", "--instance-profile-name", "cli-profile",
        "--role-name", "cli-role")
    profile = cli("get-instance-profile", "--instance-profile-name", "cli-profile")
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == ["cli-role"]
