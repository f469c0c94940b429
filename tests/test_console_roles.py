"""What each signed-in user sees follows their policies: the cloud admin everything, an
account's root its whole account, a project manager (IAM on the account's users) the IAM
pages and no compute, a developer (EC2 and S3) those and no IAM, a user with no policy only
their credentials. Pages they may not see are refused (403), buttons for actions they may
not take are not shown, and a form posted anyway is refused by the services."""
from __future__ import annotations

import json
import re

import pytest

from eucalite import accounts
from eucalite.compute.models import Image, Instance
from eucalite.db import db
from eucalite.web.session import set_password

from consoleutil import PASSWORD, Console, console_app

ACCOUNT = "lab"
PAGES = {"Instances": "/console/instances", "Buckets": "/console/buckets",
         "Users": "/console/iam/users", "Groups": "/console/iam/groups",
         "Roles": "/console/iam/roles", "Policies": "/console/iam/policies",
         "Accounts": "/console/accounts"}


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resources="*") -> dict:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    with app.app_context():
        account_id = accounts.create_account(ACCOUNT).id
        set_password(ACCOUNT, accounts.ADMIN_USER, PASSWORD)
        root = accounts.principal_of(accounts.get_user(ACCOUNT, accounts.ADMIN_USER))
        iam = app.extensions["eucalite"].iam
        users = {
            "pm": doc(allow(["iam:ListUsers", "iam:ListGroups"]),
                      allow("iam:*", [f"arn:aws:iam::{account_id}:user/*",
                                      f"arn:aws:iam::{account_id}:group/*"])),
            "reader": doc(allow(["iam:ListUsers", "iam:GetUser", "iam:ListGroupsForUser",
                                 "iam:ListAccessKeys", "iam:ListUserPolicies",
                                 "iam:ListAttachedUserPolicies"])),
            "dev": doc(allow(["ec2:Describe*", "ec2:RunInstances", "s3:ListAllMyBuckets",
                              "s3:CreateBucket", "s3:ListBucket"])),
            "nobody": None,
        }
        for name, policy in users.items():
            accounts.create_user(ACCOUNT, name)
            set_password(ACCOUNT, name, PASSWORD)
            if policy:
                iam.put_entity_policy(root, "user", name, "console", policy)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


def nav(console: Console) -> set[str]:
    html = console.text("/console/credentials")
    return set(re.findall(r">([A-Za-z ]+)</a>", re.search(r"<nav>(.*?)</nav>", html,
                                                          re.S).group(1)))


def reachable(console: Console) -> set[str]:
    seen = set()
    for label, path in PAGES.items():
        status = console.get(path).status_code
        assert status in (200, 403), (label, status)
        if status == 200:
            seen.add(label)
    return seen


def test_each_role_sees_its_own_console(app):
    admin = Console(app)
    assert {"Instances", "Buckets", "Users", "Policies", "Accounts"} <= nav(admin)
    assert reachable(admin) == set(PAGES)

    root = Console(app, ACCOUNT, "admin")
    assert {"Instances", "Buckets", "Users", "Groups", "Roles", "Policies"} <= nav(root)
    assert "Accounts" not in nav(root)
    assert reachable(root) == set(PAGES) - {"Accounts"}

    pm = Console(app, ACCOUNT, "pm")
    assert {"Users", "Groups"} <= nav(pm)
    assert not {"Instances", "Buckets", "Roles", "Policies", "Accounts"} & nav(pm)
    assert reachable(pm) == {"Users", "Groups"}

    dev = Console(app, ACCOUNT, "dev")
    assert {"Instances", "Buckets"} <= nav(dev)
    assert not {"Users", "Groups", "Roles", "Policies", "Simulator"} & nav(dev)
    assert reachable(dev) == {"Instances", "Buckets"}
    assert "AccessDenied: your policies do not allow you this page." in \
        dev.get("/console/iam/users").get_data(as_text=True)

    dashboard = dev.text("/console/dashboard")
    assert 'data-count="instances"' in dashboard and 'data-count="buckets"' in dashboard
    assert 'data-count="volumes"' in dashboard                     # ec2:Describe*
    assert dev.get("/console/instances/rows").status_code == 200

    nobody = Console(app, ACCOUNT, "nobody")
    dashboard = nobody.text("/console/dashboard")
    assert "data-count" not in dashboard
    assert nobody.get("/console/instances/rows").status_code == 403
    assert nobody.get("/console/volumes/rows").status_code == 403
    assert "Credentials" in nav(nobody)
    assert not nav(nobody) & (set(PAGES) | {"Images", "Volumes", "Simulator"})
    assert reachable(nobody) == set()


def test_buttons_follow_the_policies_and_posts_are_refused_anyway(app):
    pm = Console(app, ACCOUNT, "pm")
    page = pm.text("/console/iam/users")
    assert 'id="create-user"' in page
    text = pm.page("/console/iam/users/create", {"name": "newbie"})
    assert "User newbie created." in text and 'id="delete-user"' in text

    reader = Console(app, ACCOUNT, "reader")
    page = reader.text("/console/iam/users")
    assert 'data-user="newbie"' in page and 'id="create-user"' not in page
    page = reader.text("/console/iam/users/newbie")
    for absent in ('id="delete-user"', 'id="create-key"', 'id="set-password"',
                   'id="add-inline"', 'id="attach-policy"'):
        assert absent not in page, absent
    text = reader.page("/console/iam/users/create", {"name": "sneaky"})
    assert "AccessDenied" in text
    with app.app_context():
        assert "sneaky" not in [user.name for user in accounts.list_users(ACCOUNT)]
    text = reader.page("/console/iam/users/newbie/delete")
    assert "AccessDenied" in text

    dev = Console(app, ACCOUNT, "dev")
    page = dev.text("/console/instances")
    assert 'id="launch"' in page                      # RunInstances allowed
    page = dev.text("/console/buckets")
    assert "Create bucket" in page
    text = dev.page("/console/buckets/create", {"name": "dev-bucket"})
    assert "Created bucket dev-bucket." in text
    page = dev.text("/console/buckets")
    assert 'data-id="dev-bucket"' in page and "Delete bucket dev-bucket" not in page
    text = dev.page("/console/buckets/dev-bucket/delete")
    assert "AccessDenied" in text

    root = Console(app, ACCOUNT, "admin")
    assert "Delete bucket dev-bucket" in root.text("/console/buckets")

    # EC2 forms of the console are offered, and checked, against the same table as the
    # EC2 API
    page = dev.text("/console/volumes")
    assert "volumes_create" not in page and "/console/volumes/create" not in page
    assert "/console/keypairs/create" not in dev.text("/console/keypairs")
    assert "/console/volumes/create" in root.text("/console/volumes")
    text = dev.page("/console/volumes/create", {"size": "1"})
    assert "UnauthorizedOperation: You are not authorized to perform this operation." in text
    text = dev.page("/console/keypairs/create", {"name": "k"})
    assert "UnauthorizedOperation" in text
    services = app.extensions["eucalite"]
    with app.app_context():
        dev_principal = accounts.principal_of(accounts.get_user(ACCOUNT, "dev"))
        assert services.ebs.visible_volumes(dev_principal) == []
        assert services.compute.describe_key_pairs(dev_principal) == []
    text = root.page("/console/volumes/create", {"size": "1"})
    assert "UnauthorizedOperation" not in text


def rows(html: str) -> dict[str, list[str]]:
    """instance id -> the action buttons on its row."""
    found = {}
    for instance_id, cells in re.findall(r'<tr data-id="(i-[0-9a-f]+)"[^>]*>(.*?)</tr>', html,
                                         re.S):
        found[instance_id] = re.findall(r'name="action" value="([a-z]+)"', cells)
    return found


def test_instance_buttons_follow_the_policies(app):
    services = app.extensions["eucalite"]
    root = Console(app, ACCOUNT, "admin")
    with app.app_context():
        account_id = accounts.get_account(ACCOUNT).id
        db.session.add(Image(id="emi-0a1b2c3d", owner_id=account_id, kind="machine",
                             name="img", state="available"))
        db.session.commit()
        principal = accounts.principal_of(accounts.get_user(ACCOUNT, "admin"))
        # "ops" may reboot instances tagged team=ops, and launch nothing
        accounts.create_user(ACCOUNT, "ops")
        set_password(ACCOUNT, "ops", PASSWORD)
        services.iam.put_entity_policy(principal, "user", "ops", "console", doc(
            allow(["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeKeyPairs",
                   "ec2:DescribeSecurityGroups", "ec2:DescribeAvailabilityZones"]),
            {"Effect": "Allow", "Action": "ec2:RebootInstances",
             "Resource": f"arn:aws:ec2:*:{account_id}:instance/*",
             "Condition": {"StringEquals": {"ec2:ResourceTag/team": "ops"}}}))
    root.page("/console/instances/launch", {"image_id": "emi-0a1b2c3d", "name": "ours"})
    root.page("/console/instances/launch", {"image_id": "emi-0a1b2c3d", "name": "theirs"})
    services.compute.worker.wait()
    with app.app_context():
        ours, theirs = [row.id for row in db.session.execute(
            db.select(Instance).order_by(Instance.launch_time)).scalars()]
    root.page(f"/console/instances/{ours}/tags", {"key": "team", "value": "ops"})
    assert rows(root.text("/console/instances"))[theirs] == ["reboot", "terminate"]

    ops = Console(app, ACCOUNT, "ops")
    page = ops.text("/console/instances")
    assert 'id="launch"' not in page                  # no RunInstances
    buttons = rows(page)
    assert buttons[ours] == ["reboot"] and buttons[theirs] == []
    text = ops.page("/console/instances/launch", {"image_id": "emi-0a1b2c3d"})
    assert "UnauthorizedOperation" in text
    for instance_id, action in ((ours, "terminate"), (theirs, "reboot")):
        text = ops.page(f"/console/instances/{instance_id}/action", {"action": action})
        assert "UnauthorizedOperation" in text
    with app.app_context():
        assert {row.state for row in db.session.execute(db.select(Instance)).scalars()} \
            == {"running"}
    text = ops.page(f"/console/instances/{ours}/action", {"action": "reboot"})
    assert f"Rebooting {ours}." in text
