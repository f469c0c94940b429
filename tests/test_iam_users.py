"""The IAM Query API's users, groups, membership, access keys, login profiles, account
aliases and summary, through boto3 and the aws CLI against a live server: AWS's shapes,
codes, Marker/MaxItems paging, limits, DeleteConflict, and who may call (the account's root
``admin`` manages its account; any other user only what its policies allow)."""
from __future__ import annotations

import time

import pytest

from awsutil import error_code, failure
from iamutil import all_pages, iam_cli
from eucalite import accounts
from eucalite.web import session


def _user_client(live, iam, name, path="/"):
    """A boto3 IAM client signing as user *name* (created here with a key)."""
    iam.create_user(UserName=name, Path=path)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return live.client("iam", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"]), key


def _last_use(iam, key_id: str) -> dict:
    """The key's AccessKeyLastUsed once a use is recorded (polled: it is written on a
    thread beside the request)."""
    deadline = time.monotonic() + 10
    while True:
        used = iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"]
        if "LastUsedDate" in used or time.monotonic() > deadline:
            assert "LastUsedDate" in used, used
            return used
        time.sleep(0.05)


def test_users_create_get_update_list_and_delete(live):
    iam = live.client("iam")
    made = iam.create_user(UserName="alice", Path="/eng/",
                           Tags=[{"Key": "team", "Value": "storage"}])["User"]
    account_id = made["Arn"].split(":")[4]
    assert made["Arn"] == f"arn:aws:iam::{account_id}:user/eng/alice"
    assert made["UserId"].startswith("AIDA") and made["Path"] == "/eng/"
    assert made["Tags"] == [{"Key": "team", "Value": "storage"}]
    got = iam.get_user(UserName="alice")["User"]
    assert (got["UserId"], got["Arn"]) == (made["UserId"], made["Arn"])
    assert got["Tags"] == [{"Key": "team", "Value": "storage"}]
    assert iam.get_user()["User"]["UserName"] == "admin"         # no name: the caller

    assert error_code(iam.create_user, UserName="alice") == "EntityAlreadyExists"
    assert error_code(iam.get_user, UserName="nobody") == "NoSuchEntity"
    code, status, _ = failure(iam.create_user, UserName="bad/name")
    assert (code, status) == ("ValidationError", 400)
    assert error_code(iam.create_user, UserName="bob", Path="no-slashes") == "ValidationError"

    for name in ("bob", "carol", "dave", "erin"):
        iam.create_user(UserName=name)
    names, pages = all_pages(iam.list_users, "Users", MaxItems=2)
    assert [user["UserName"] for user in names] == ["admin", "alice", "bob", "carol", "dave",
                                                    "erin"]
    assert pages == 3
    under = iam.list_users(PathPrefix="/eng/")["Users"]
    assert [user["UserName"] for user in under] == ["alice"]
    assert iam.get_paginator("list_users").paginate(
        PaginationConfig={"PageSize": 4}).build_full_result()["Users"][-1]["UserName"] == "erin"

    iam.update_user(UserName="alice", NewUserName="alicia", NewPath="/ops/")
    assert iam.get_user(UserName="alicia")["User"]["Arn"].endswith(":user/ops/alicia")
    assert error_code(iam.get_user, UserName="alice") == "NoSuchEntity"
    assert error_code(iam.update_user, UserName="bob", NewUserName="carol") == \
        "EntityAlreadyExists"

    iam.delete_user(UserName="bob")
    assert error_code(iam.get_user, UserName="bob") == "NoSuchEntity"
    assert error_code(iam.delete_user, UserName="bob") == "NoSuchEntity"
    assert error_code(iam.delete_user, UserName="admin") == "DeleteConflict"


def test_user_tags(live):
    iam = live.client("iam")
    iam.create_user(UserName="tagged")
    iam.tag_user(UserName="tagged", Tags=[{"Key": f"k{n}", "Value": f"v{n}"}
                                          for n in range(5)])
    iam.tag_user(UserName="tagged", Tags=[{"Key": "k0", "Value": "changed"}])
    tags, pages = all_pages(iam.list_user_tags, "Tags", UserName="tagged", MaxItems=2)
    assert pages == 3
    assert {tag["Key"]: tag["Value"] for tag in tags} == {
        "k0": "changed", "k1": "v1", "k2": "v2", "k3": "v3", "k4": "v4"}
    iam.untag_user(UserName="tagged", TagKeys=["k1", "k2", "absent"])
    assert [tag["Key"] for tag in iam.list_user_tags(UserName="tagged")["Tags"]] == \
        ["k0", "k3", "k4"]
    assert error_code(iam.tag_user, UserName="tagged",
                      Tags=[{"Key": f"x{n}", "Value": ""} for n in range(48)]) == \
        "LimitExceeded"
    assert error_code(iam.tag_user, UserName="nobody",
                      Tags=[{"Key": "a", "Value": "b"}]) == "NoSuchEntity"


def test_groups_and_membership(live):
    iam = live.client("iam")
    group = iam.create_group(GroupName="devs", Path="/eng/")["Group"]
    assert group["GroupId"].startswith("AGPA")
    assert group["Arn"].endswith(":group/eng/devs")
    assert error_code(iam.create_group, GroupName="devs") == "EntityAlreadyExists"
    iam.create_group(GroupName="ops")
    for name in ("u1", "u2", "u3"):
        iam.create_user(UserName=name)
        iam.add_user_to_group(GroupName="devs", UserName=name)
    iam.add_user_to_group(GroupName="devs", UserName="u1")          # again: no change
    iam.add_user_to_group(GroupName="ops", UserName="u1")

    members, pages = all_pages(iam.get_group, "Users", GroupName="devs", MaxItems=2)
    assert [user["UserName"] for user in members] == ["u1", "u2", "u3"] and pages == 2
    assert iam.get_group(GroupName="devs")["Group"]["GroupName"] == "devs"
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="u1")["Groups"]] == \
        ["devs", "ops"]
    listed, pages = all_pages(iam.list_groups, "Groups", MaxItems=1)
    assert [g["GroupName"] for g in listed] == ["devs", "ops"] and pages == 2
    assert [g["GroupName"] for g in iam.list_groups(PathPrefix="/eng")["Groups"]] == ["devs"]
    assert error_code(iam.add_user_to_group, GroupName="devs", UserName="nobody") == \
        "NoSuchEntity"
    assert error_code(iam.add_user_to_group, GroupName="nogroup", UserName="u1") == \
        "NoSuchEntity"

    # A user in a group, and a group with members, cannot be deleted (AWS's rule).
    assert error_code(iam.delete_user, UserName="u3") == "DeleteConflict"
    assert error_code(iam.delete_group, GroupName="devs") == "DeleteConflict"
    iam.remove_user_from_group(GroupName="devs", UserName="u3")
    assert error_code(iam.remove_user_from_group, GroupName="devs", UserName="u3") == \
        "NoSuchEntity"
    iam.delete_user(UserName="u3")

    iam.update_group(GroupName="ops", NewGroupName="operations", NewPath="/run/")
    assert iam.get_group(GroupName="operations")["Group"]["Arn"].endswith(
        ":group/run/operations")
    assert error_code(iam.get_group, GroupName="ops") == "NoSuchEntity"
    iam.remove_user_from_group(GroupName="operations", UserName="u1")
    iam.delete_group(GroupName="operations")
    assert [g["GroupName"] for g in iam.list_groups()["Groups"]] == ["devs"]

    # A user belongs to at most 10 groups (IAM's GroupsPerUserQuota).
    for n in range(9):
        iam.create_group(GroupName=f"many{n}")
        iam.add_user_to_group(GroupName=f"many{n}", UserName="u1")
    iam.create_group(GroupName="one-too-many")
    assert error_code(iam.add_user_to_group, GroupName="one-too-many", UserName="u1") == \
        "LimitExceeded"
    assert len(iam.list_groups_for_user(UserName="u1")["Groups"]) == 10


def test_access_keys_limit_status_last_used_and_delete(live):
    iam = live.client("iam")
    iam.create_user(UserName="keyed")
    first = iam.create_access_key(UserName="keyed")["AccessKey"]
    assert first["Status"] == "Active" and first["UserName"] == "keyed"
    assert len(first["SecretAccessKey"]) == 40
    second = iam.create_access_key(UserName="keyed")["AccessKey"]
    code, status, _ = failure(iam.create_access_key, UserName="keyed")
    assert (code, status) == ("LimitExceeded", 409)
    listed = iam.list_access_keys(UserName="keyed")["AccessKeyMetadata"]
    assert {key["AccessKeyId"] for key in listed} == {first["AccessKeyId"],
                                                      second["AccessKeyId"]}
    assert all(key["UserName"] == "keyed" and key["Status"] == "Active" for key in listed)

    never = iam.get_access_key_last_used(AccessKeyId=second["AccessKeyId"])
    assert never["UserName"] == "keyed"
    assert never["AccessKeyLastUsed"]["ServiceName"] == "N/A"
    assert "LastUsedDate" not in never["AccessKeyLastUsed"]
    ec2 = live.client("ec2", key_id=first["AccessKeyId"], secret=first["SecretAccessKey"])
    # no policy: refused, but the key signed the request, so its use is recorded
    assert error_code(ec2.describe_regions) == "UnauthorizedOperation"
    used = _last_use(iam, first["AccessKeyId"])          # written beside the request
    assert (used["ServiceName"], used["Region"]) == ("ec2", live.region)

    iam.update_access_key(UserName="keyed", AccessKeyId=first["AccessKeyId"],
                          Status="Inactive")
    assert error_code(ec2.describe_regions) == "InvalidClientTokenId"
    assert {key["AccessKeyId"]: key["Status"] for key in iam.list_access_keys(
        UserName="keyed")["AccessKeyMetadata"]}[first["AccessKeyId"]] == "Inactive"
    assert error_code(iam.update_access_key, UserName="keyed",
                      AccessKeyId=first["AccessKeyId"], Status="Sleeping") == "ValidationError"
    assert error_code(iam.update_access_key, UserName="admin",
                      AccessKeyId=first["AccessKeyId"], Status="Active") == "NoSuchEntity"

    assert error_code(iam.delete_user, UserName="keyed") == "DeleteConflict"
    for key in (first, second):
        iam.delete_access_key(UserName="keyed", AccessKeyId=key["AccessKeyId"])
    assert error_code(iam.delete_access_key, UserName="keyed",
                      AccessKeyId=first["AccessKeyId"]) == "NoSuchEntity"
    assert iam.list_access_keys(UserName="keyed")["AccessKeyMetadata"] == []
    iam.delete_user(UserName="keyed")
    # Without UserName: the caller's own keys.
    assert [key["AccessKeyId"] for key in iam.list_access_keys()["AccessKeyMetadata"]] == \
        [live.key_id]


def test_login_profiles_are_the_console_password(live):
    iam = live.client("iam")
    iam.create_user(UserName="web")
    assert error_code(iam.get_login_profile, UserName="web") == "NoSuchEntity"
    assert error_code(iam.create_login_profile, UserName="web", Password="short") == \
        "PasswordPolicyViolation"
    profile = iam.create_login_profile(UserName="web", Password="correct horse",
                                       PasswordResetRequired=True)["LoginProfile"]
    assert profile["UserName"] == "web" and profile["PasswordResetRequired"] is True
    assert error_code(iam.create_login_profile, UserName="web", Password="another one") == \
        "EntityAlreadyExists"
    with live.app.app_context():
        assert session.check_password(accounts.ADMIN_ACCOUNT, "web", "correct horse")

    iam.update_login_profile(UserName="web", Password="battery staple",
                             PasswordResetRequired=False)
    got = iam.get_login_profile(UserName="web")["LoginProfile"]
    assert got["PasswordResetRequired"] is False and "CreateDate" in got
    with live.app.app_context():
        assert session.check_password(accounts.ADMIN_ACCOUNT, "web", "battery staple")
        assert not session.check_password(accounts.ADMIN_ACCOUNT, "web", "correct horse")

    assert error_code(iam.delete_user, UserName="web") == "DeleteConflict"
    iam.delete_login_profile(UserName="web")
    assert error_code(iam.get_login_profile, UserName="web") == "NoSuchEntity"
    with live.app.app_context():
        assert not session.check_password(accounts.ADMIN_ACCOUNT, "web", "battery staple")
    iam.delete_user(UserName="web")

    # A password set with `eucalite account password` or the console is a login profile.
    iam.create_user(UserName="console-set")
    with live.app.app_context():
        session.set_password(accounts.ADMIN_ACCOUNT, "console-set", "from the console")
    assert iam.get_login_profile(UserName="console-set")["LoginProfile"]["UserName"] == \
        "console-set"


def test_account_aliases_and_summary(live):
    iam = live.client("iam")
    assert iam.list_account_aliases()["AccountAliases"] == []
    iam.create_account_alias(AccountAlias="my-lab")
    assert iam.list_account_aliases()["AccountAliases"] == ["my-lab"]
    assert error_code(iam.create_account_alias, AccountAlias="Bad_Alias") == "ValidationError"
    with live.app.app_context():
        accounts.create_account("other")
        key = accounts.create_access_key("other", accounts.ADMIN_USER)
        other = live.client("iam", key_id=key.id, secret=key.secret)
    # Aliases are unique across the cloud; each account sees only its own.
    assert error_code(other.create_account_alias, AccountAlias="my-lab") == \
        "EntityAlreadyExists"
    assert other.list_account_aliases()["AccountAliases"] == []
    assert error_code(other.delete_account_alias, AccountAlias="my-lab") == "NoSuchEntity"
    iam.delete_account_alias(AccountAlias="my-lab")
    other.create_account_alias(AccountAlias="my-lab")
    assert other.list_account_aliases()["AccountAliases"] == ["my-lab"]

    iam.create_user(UserName="s1")
    iam.create_group(GroupName="g1")
    summary = iam.get_account_summary()["SummaryMap"]
    assert (summary["Users"], summary["Groups"], summary["AccessKeysPerUserQuota"]) == (2, 1, 2)
    assert summary["AccountAccessKeysPresent"] == 1
    assert other.get_account_summary()["SummaryMap"]["Users"] == 1
    # Users of another account are not visible.
    assert error_code(other.get_user, UserName="s1") == "NoSuchEntity"


def test_a_non_root_user_without_policies_may_do_nothing_not_even_on_itself(live):
    # AWS gives an IAM user nothing without a policy: not even reading itself or managing
    # its own keys (tests/test_enforcement.py grants those with policies).
    iam = live.client("iam")
    mine, key = _user_client(live, iam, "dev", path="/team/")
    iam.create_user(UserName="peer")
    me = iam.get_user(UserName="dev")["User"]
    assert me["Arn"].endswith(":user/team/dev")

    code, status, response = failure(mine.list_users)
    assert (code, status) == ("AccessDenied", 403)
    assert response["Error"]["Message"] == (
        f"User: {me['Arn']} is not authorized to perform: iam:ListUsers on resource: *")
    code, _, response = failure(mine.get_user)
    assert code == "AccessDenied"
    assert response["Error"]["Message"].endswith(f"iam:GetUser on resource: {me['Arn']}")
    code, _, response = failure(mine.get_user, UserName="peer")
    assert code == "AccessDenied"
    assert response["Error"]["Message"].endswith(
        f"iam:GetUser on resource: {me['Arn'].rsplit(':', 1)[0]}:user/peer")
    for denied in (lambda: mine.list_access_keys(),
                   lambda: mine.create_access_key(),
                   lambda: mine.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]),
                   lambda: mine.create_user(UserName="x"),
                   lambda: mine.delete_user(UserName="peer"),
                   lambda: mine.create_access_key(UserName="peer"),
                   lambda: mine.create_group(GroupName="g"),
                   lambda: mine.create_login_profile(UserName="dev", Password="longenough1"),
                   lambda: mine.create_account_alias(AccountAlias="mine-now")):
        assert error_code(denied) == "AccessDenied"
    assert iam.list_users()["Users"][-1]["UserName"] == "peer"      # nothing was made
    assert len(iam.list_access_keys(UserName="dev")["AccessKeyMetadata"]) == 1


def test_aws_cli(live):
    cli = iam_cli(live)

    assert cli("create-user", "--user-name", "cli-user")["User"]["UserName"] == "cli-user"
    cli("create-group", "--group-name", "cli-group")
    cli("add-user-to-group", "--group-name", "cli-group", "--user-name", "cli-user")
    assert [u["UserName"] for u in cli("get-group", "--group-name", "cli-group")["Users"]] \
        == ["cli-user"]
    key = cli("create-access-key", "--user-name", "cli-user")["AccessKey"]
    listed = cli("list-access-keys", "--user-name", "cli-user")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    users = cli("list-users", "--max-items", "1")          # the CLI pages with Marker itself
    assert [u["UserName"] for u in users["Users"]] == ["admin"] and "NextToken" in users
    with pytest.raises(AssertionError, match="DeleteConflict"):
        cli("delete-user", "--user-name", "cli-user")


def test_bad_paging_and_missing_entities_are_aws_errors(live):
    iam = live.client("iam")
    iam.create_user(UserName="plain")
    assert error_code(iam.list_users, Marker="not-a-marker") == "ValidationError"
    assert error_code(iam.list_users, PathPrefix="no-slash") == "ValidationError"
    assert error_code(iam.update_login_profile, UserName="plain",
                      Password="long enough") == "NoSuchEntity"
    assert error_code(iam.delete_login_profile, UserName="plain") == "NoSuchEntity"
    assert error_code(iam.get_access_key_last_used,
                      AccessKeyId="AKIAEXAMPLEEXAMPLE00") == "NoSuchEntity"
    assert error_code(iam.list_access_keys, UserName="nobody") == "NoSuchEntity"
    assert error_code(iam.list_groups_for_user, UserName="nobody") == "NoSuchEntity"
    assert error_code(iam.delete_group, GroupName="nogroup") == "NoSuchEntity"
    # Another account's key is not there for this account.
    with live.app.app_context():
        accounts.create_account("elsewhere")
        foreign = accounts.create_access_key("elsewhere", accounts.ADMIN_USER).id
    assert error_code(iam.get_access_key_last_used, AccessKeyId=foreign) == "NoSuchEntity"
    assert error_code(iam.delete_access_key, UserName="admin", AccessKeyId=foreign) == \
        "NoSuchEntity"
