"""The console's admin pages: accounts, users, passwords, access keys (secret shown once),
credentials downloads, nodes; and that only the cloud admin reaches them."""
from __future__ import annotations

import configparser
import json

import pytest

from eucalite import accounts, config as config_module
from eucalite.cluster.models import Node
from eucalite.db import db
from eucalite.web.session import set_password

from consoleutil import Console, console_app

@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


@pytest.fixture
def admin(app):
    return Console(app)


def key_ids(app, account, user):
    with app.app_context():
        return [key.id for key in accounts.get_user(account, user).keys]


def test_accounts_users_passwords_and_keys(app, admin):
    page = admin.get("/console/accounts")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-id="eucalyptus"' in text and "Create account" in text

    page = admin.post("/console/accounts/create", {"name": "research"})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Account research created." in text and "Account research" in text
    assert 'data-user="admin"' in text                        # made with the account
    with app.app_context():
        account_id = accounts.get_account("research").id
    listing = admin.get("/console/accounts").get_data(as_text=True)
    assert 'data-id="research"' in listing and account_id in listing

    text = admin.post("/console/accounts/research/users/create",
                      {"user": "alice"}).get_data(as_text=True)
    assert "User alice created." in text and 'data-user="alice"' in text
    # bad input: an AWS-style error, no 500
    page = admin.post("/console/accounts/research/users/create", {"user": "alice"})
    assert page.status_code == 200 and "EntityAlreadyExists" in page.get_data(as_text=True)
    page = admin.post("/console/accounts/create", {"name": "Bad Name!"})
    assert page.status_code == 200 and "ValidationError" in page.get_data(as_text=True)

    # console password
    text = admin.post("/console/accounts/research/users/alice/password",
                      {"password": "short"}).get_data(as_text=True)
    assert "ValidationError" in text and "8 characters" in text
    text = admin.post("/console/accounts/research/users/alice/password",
                      {"password": "alice-secret"}).get_data(as_text=True)
    assert "Console password of alice in research set." in text
    with app.app_context():
        assert accounts.get_user("research", "alice").password_hash
    assert 'data-password="yes"' in text

    # access key: the secret is shown once, on the next page
    page = admin.post("/console/accounts/research/users/alice/keys/create",
                      {"back": "account", "account": "research"})
    text = page.get_data(as_text=True)
    [key_id] = key_ids(app, "research", "alice")
    with app.app_context():
        secret = db.session.get(accounts.AccessKey, key_id).secret
    assert page.request.path == "/console/accounts/research"
    assert key_id in text and secret in text
    again = admin.get("/console/accounts/research").get_data(as_text=True)
    assert key_id in again and secret not in again

    # downloads: eucarc and aws CLI profile
    endpoints = config_module.endpoints(app.config["EUCALITE"])
    rc = admin.get(f"/console/access-keys/{key_id}/eucarc")
    assert rc.status_code == 200 and "attachment" in rc.headers["Content-Disposition"]
    body = rc.get_data(as_text=True)
    assert f"export AWS_ACCESS_KEY_ID={key_id}" in body
    assert f"export AWS_SECRET_ACCESS_KEY={secret}" in body
    assert f"export AWS_ENDPOINT_URL_EC2={endpoints['ec2']}" in body
    assert f"export AWS_ENDPOINT_URL_S3={endpoints['s3']}" in body
    # euca2ools' eucarc, as `eucalite credentials --format eucarc`: the classic EC2 path
    assert f"export EC2_URL={endpoints['s3']}/services/Eucalyptus" in body
    assert f"export S3_URL={endpoints['s3']}/services/Walrus" in body
    assert "export AWS_DEFAULT_REGION=" in body

    profile = admin.get(f"/console/access-keys/{key_id}/aws-profile?profile=lab")
    assert profile.status_code == 200
    body = profile.get_data(as_text=True)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(body)
    assert parser["lab"]["aws_access_key_id"] == key_id
    assert parser["lab"]["aws_secret_access_key"] == secret
    assert parser["profile lab"]["services"] == "eucalite-lab"
    assert endpoints["ec2"] in parser["services eucalite-lab"]["ec2"]
    assert endpoints["s3"] in parser["services eucalite-lab"]["s3"]
    bad = admin.get(f"/console/access-keys/{key_id}/aws-profile?profile=a%20b")
    assert bad.status_code == 400

    # deactivate, activate, delete
    text = admin.post(f"/console/access-keys/{key_id}/status",
                      {"status": "Inactive", "back": "account",
                       "account": "research"}).get_data(as_text=True)
    assert f"Access key {key_id} is now Inactive." in text
    with app.app_context():
        assert db.session.get(accounts.AccessKey, key_id).status == "Inactive"
        assert accounts.principal_for_key(key_id) is None
    text = admin.post(f"/console/access-keys/{key_id}/status",
                      {"status": "Bogus", "back": "account",
                       "account": "research"}).get_data(as_text=True)
    assert "ValidationError" in text
    text = admin.post(f"/console/access-keys/{key_id}/delete",
                      {"back": "account", "account": "research"}).get_data(as_text=True)
    assert f"Access key {key_id} deleted." in text
    assert key_ids(app, "research", "alice") == []
    text = admin.post(f"/console/access-keys/{key_id}/delete",
                      {"back": "account", "account": "research"}).get_data(as_text=True)
    assert "NoSuchEntity" in text

    # delete the user, then the account
    text = admin.post("/console/accounts/research/users/alice/delete").get_data(as_text=True)
    assert "User alice deleted." in text and 'data-user="alice"' not in text
    text = admin.post("/console/accounts/research/delete").get_data(as_text=True)
    assert "Account research deleted." in text and 'data-id="research"' not in text
    assert admin.get("/console/accounts/research").status_code == 404


def test_cloud_admin_account_cannot_be_deleted(app, admin):
    page = admin.post("/console/accounts/eucalyptus/delete")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "ValidationError" in text and "cannot be deleted" in text
    with app.app_context():
        assert accounts.get_account("eucalyptus")
    # nor the user the admin is signed in as
    text = admin.post("/console/accounts/eucalyptus/users/admin/delete").get_data(as_text=True)
    assert "signed in as" in text
    with app.app_context():
        assert accounts.get_user("eucalyptus", "admin")


#: What a user needs to manage its own access keys (AWS's own example policy).
OWN_KEYS = {"Effect": "Allow", "Action": "iam:*AccessKey*",
            "Resource": "arn:aws:iam::{account}:user/${{aws:username}}"}


def user_with_policy(app, account: str, user: str, *statements) -> None:
    """*user* of *account* (made with it), with console password '<user>-password' and an
    inline policy of *statements* (none: no policy)."""
    with app.app_context():
        if account not in [a.name for a in accounts.list_accounts()]:
            accounts.create_account(account)
        account_id = accounts.get_account(account).id
        accounts.create_user(account, user)
        set_password(account, user, f"{user}-password")
        if statements:
            root = accounts.principal_of(accounts.get_user(account, accounts.ADMIN_USER))
            document = {"Version": "2012-10-17", "Statement": [
                dict(statement, Resource=statement["Resource"].format(account=account_id))
                for statement in statements]}
            app.extensions["eucalite"].iam.put_entity_policy(root, "user", user, "keys",
                                                             json.dumps(document))


def test_my_credentials_create_rotate_download(app):
    user_with_policy(app, "other", "bob", OWN_KEYS)
    with app.app_context():
        foreign = accounts.create_access_key("eucalyptus", "admin").id
    bob = Console(app, "other", "bob", "bob-password")
    page = bob.get("/console/credentials")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "My credentials" in text and "No access keys." in text
    assert 'href="/console/credentials"' in text                 # in the nav bar

    page = bob.post("/console/accounts/other/users/bob/keys/create", {"back": "credentials"})
    assert page.request.path == "/console/credentials"
    [first] = key_ids(app, "other", "bob")
    with app.app_context():
        first_secret = db.session.get(accounts.AccessKey, first).secret
    assert first_secret in page.get_data(as_text=True)
    assert f"/console/access-keys/{first}/rotate" in page.get_data(as_text=True)
    assert first_secret not in bob.get("/console/credentials").get_data(as_text=True)
    body = bob.get(f"/console/access-keys/{first}/eucarc").get_data(as_text=True)
    assert first in body and first_secret in body

    # rotate: a new key, the old one Inactive, then delete the old one
    page = bob.post(f"/console/access-keys/{first}/rotate", {"back": "credentials"})
    [second] = [k for k in key_ids(app, "other", "bob") if k != first]
    with app.app_context():
        second_secret = db.session.get(accounts.AccessKey, second).secret
        assert db.session.get(accounts.AccessKey, first).status == "Inactive"
    text = page.get_data(as_text=True)
    assert second_secret in text and first_secret not in text
    bob.post(f"/console/access-keys/{first}/delete", {"back": "credentials"})
    assert key_ids(app, "other", "bob") == [second]

    # someone else's key or user: not found / denied, and unchanged
    assert bob.get(f"/console/access-keys/{foreign}/eucarc").status_code == 404
    text = bob.post(f"/console/access-keys/{foreign}/status",
                    {"status": "Inactive"}).get_data(as_text=True)
    assert "NoSuchEntity" in text
    bob.post(f"/console/access-keys/{foreign}/delete")
    with app.app_context():
        assert db.session.get(accounts.AccessKey, foreign).status == "Active"
    page = bob.post("/console/accounts/other/users/admin/keys/create")
    assert page.status_code == 403
    assert key_ids(app, "other", "admin") == []


def test_own_keys_follow_the_users_policies(app):
    """A user with no policy sees its keys' page but no key, button or download, and a
    form posted anyway is refused (AWS: no policy, not even one's own keys); a user who
    may create keys but not deactivate them gets no Rotate, and a rotation posted anyway
    makes no new key."""
    user_with_policy(app, "other", "nobody")
    with app.app_context():
        mine = accounts.create_access_key("other", "nobody").id
    nobody = Console(app, "other", "nobody", "nobody-password")
    text = nobody.text("/console/credentials")
    assert 'id="keys-not-listed"' in text and mine not in text
    assert 'id="create-key"' not in text and "/console/access-keys/" not in text
    assert nobody.get(f"/console/access-keys/{mine}/eucarc").status_code == 403
    for path, form in [("/console/accounts/other/users/nobody/keys/create", {}),
                       (f"/console/access-keys/{mine}/status", {"status": "Inactive"}),
                       (f"/console/access-keys/{mine}/rotate", {}),
                       (f"/console/access-keys/{mine}/delete", {})]:
        text = nobody.page(path, dict(form, back="credentials"))
        assert "AccessDenied" in text and "is not authorized to perform" in text, path
        with app.app_context():
            [key] = accounts.get_user("other", "nobody").keys
            assert (key.id, key.status) == (mine, "Active"), path

    user_with_policy(app, "other", "maker",
                     dict(OWN_KEYS, Action=["iam:CreateAccessKey", "iam:ListAccessKeys"]))
    with app.app_context():
        made = accounts.create_access_key("other", "maker").id
    maker = Console(app, "other", "maker", "maker-password")
    text = maker.text("/console/credentials")
    assert f"/console/access-keys/{made}/eucarc" in text and 'id="create-key"' in text
    for absent in ("status", "rotate", "delete"):
        assert f"/console/access-keys/{made}/{absent}" not in text, absent
    text = maker.page(f"/console/access-keys/{made}/rotate", {"back": "credentials"})
    assert "AccessDenied" in text and "iam:UpdateAccessKey" in text
    assert key_ids(app, "other", "maker") == [made]
    maker.page("/console/accounts/other/users/maker/keys/create", {"back": "credentials"})
    assert len(key_ids(app, "other", "maker")) == 2


def test_nodes_page_lists_and_switches_the_node(app, admin):
    with app.app_context():
        [node_id] = [node.id for node in db.session.execute(db.select(Node)).scalars()]
    page = admin.get("/console/nodes")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'data-id="{node_id}"' in text and 'data-state="enabled"' in text
    assert 'data-refresh="/console/nodes/rows"' in text
    assert "Disable" in text

    text = admin.post(f"/console/nodes/{node_id}/state",
                      {"state": "disabled"}).get_data(as_text=True)
    assert f"Node {node_id} is now disabled." in text and 'data-state="disabled"' in text
    with app.app_context():
        assert db.session.get(Node, node_id).state == "disabled"
    rows = admin.get("/console/nodes/rows").get_data(as_text=True)
    assert 'data-state="disabled"' in rows and "Enable" in rows and "<html" not in rows

    text = admin.post(f"/console/nodes/{node_id}/state",
                      {"state": "enabled"}).get_data(as_text=True)
    assert 'data-state="enabled"' in text
    with app.app_context():
        assert db.session.get(Node, node_id).state == "enabled"
    # bad input: the AWS-style error, no 500
    page = admin.post("/console/nodes/no-such-node/state", {"state": "disabled"})
    assert page.status_code == 200 and "InvalidParameterValue" in page.get_data(as_text=True)
    page = admin.post(f"/console/nodes/{node_id}/state", {"state": "unreachable"})
    assert "InvalidParameterValue" in page.get_data(as_text=True)


ADMIN_PAGES = ["/console/accounts", "/console/accounts/eucalyptus", "/console/nodes",
               "/console/nodes/rows"]


@pytest.mark.parametrize("account", ["research", "other"])
def test_admin_pages_are_for_the_cloud_admin_only(app, admin, account):
    if account == "other":
        with app.app_context():
            accounts.create_account("other")
            set_password("other", "admin", "other-admin-pw")
        who = ("other", "admin", "other-admin-pw")
    else:
        # a user the cloud admin makes in the console signs in with the password set there
        admin.post("/console/accounts/create", {"name": "research"})
        admin.post("/console/accounts/research/users/create", {"user": "carol"})
        admin.post("/console/accounts/research/users/carol/password",
                   {"password": "carol-password"})
        who = ("research", "carol", "carol-password")
    user = Console(app, *who)
    dashboard = user.get("/console/dashboard")
    assert dashboard.status_code == 200 and "Dashboard" in dashboard.get_data(as_text=True)
    # only the cloud-admin *account* is admin: not another account's admin user either
    nav = dashboard.get_data(as_text=True)
    assert 'href="/console/accounts"' not in nav and 'href="/console/nodes"' not in nav
    for path in ADMIN_PAGES:
        page = user.get(path)
        assert page.status_code == 403, path
        assert "Access denied" in page.get_data(as_text=True)
    for path, data in [("/console/accounts/create", {"name": "sneaky"}),
                       ("/console/accounts/eucalyptus/users/admin/password",
                        {"password": "taken-over!"}),
                       ("/console/nodes/x/state", {"state": "disabled"})]:
        assert user.post(path, data, follow=False).status_code == 403, path
    with app.app_context():
        assert "sneaky" not in [a.name for a in accounts.list_accounts()]
    from eucalite.web.session import check_password
    with app.app_context():
        assert check_password("eucalyptus", "admin", "password123")
