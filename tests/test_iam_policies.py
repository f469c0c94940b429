"""The IAM Query API's policies, through boto3 and the aws CLI against a live server:
inline policies of users, groups and roles; managed policies with versions and
attachments; AWS's managed policies (shared by every account, changed by none); the
DeleteConflict rules; and the policy simulator, which answers as the engine that
authorises requests does."""
from __future__ import annotations

import json

from awsutil import error_code, failure
from iamutil import all_pages, iam_cli
from eucalite import accounts
from eucalite.iam import awspolicies
from eucalite.policy import document, grammar


def _doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action, resource="*") -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _deny(action, resource="*") -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def _role(iam, name: str) -> str:
    """A role instances may take (its name)."""
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    return name


def _other_account(live, name: str):
    with live.app.app_context():
        accounts.create_account(name)
        key = accounts.create_access_key(name, accounts.ADMIN_USER)
        return live.client("iam", key_id=key.id, secret=key.secret)


def _user_client(live, iam, name):
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return live.client("iam", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])


def test_aws_policies_are_valid_managed_policies():
    for name in awspolicies.POLICIES:
        document.parse(awspolicies.text(name), grammar.IAM_MANAGED)


def test_inline_policies_of_users_groups_and_roles(live):
    iam = live.client("iam")
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="devs")
    _role(iam, "worker")
    # '%41' survives the trip only if IAM sends the document URL-encoded, as AWS does
    # (boto3 decodes it).
    text = _doc(_allow("s3:GetObject", "arn:aws:s3:::bucket/%41*"))
    for kind, put, get, listing, delete, entity in (
            ("User", iam.put_user_policy, iam.get_user_policy, iam.list_user_policies,
             iam.delete_user_policy, "alice"),
            ("Group", iam.put_group_policy, iam.get_group_policy, iam.list_group_policies,
             iam.delete_group_policy, "devs"),
            ("Role", iam.put_role_policy, iam.get_role_policy, iam.list_role_policies,
             iam.delete_role_policy, "worker")):
        name = {f"{kind}Name": entity}
        for policy in ("read", "b", "a", "c"):
            put(**name, PolicyName=policy, PolicyDocument=text)
        got = get(**name, PolicyName="read")
        assert got[f"{kind}Name"] == entity and got["PolicyName"] == "read"
        assert got["PolicyDocument"] == json.loads(text)
        listed, pages = all_pages(listing, "PolicyNames", **name, MaxItems=3)
        assert listed == ["a", "b", "c", "read"] and pages == 2
        put(**name, PolicyName="read", PolicyDocument=_doc(_allow("s3:*")))   # replaced
        assert get(**name, PolicyName="read")["PolicyDocument"]["Statement"][0]["Action"] \
            == "s3:*"
        delete(**name, PolicyName="a")
        assert error_code(get, **name, PolicyName="a") == "NoSuchEntity"
        assert error_code(delete, **name, PolicyName="a") == "NoSuchEntity"
        assert listing(**name)["PolicyNames"] == ["b", "c", "read"]
        assert error_code(put, **{f"{kind}Name": "nobody"}, PolicyName="p",
                          PolicyDocument=text) == "NoSuchEntity"

    code, status, response = failure(iam.put_user_policy, UserName="alice", PolicyName="x",
                                     PolicyDocument="{not json")
    assert (code, status) == ("MalformedPolicyDocument", 400)
    assert response["Error"]["Message"] == "Syntax errors in policy."
    assert error_code(iam.put_user_policy, UserName="alice", PolicyName="x",
                      PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                          {"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                           "Principal": "*"}]})) == "MalformedPolicyDocument"
    assert error_code(iam.put_user_policy, UserName="alice", PolicyName="bad/name",
                      PolicyDocument=text) == "ValidationError"
    # A user's inline policies together stay within 2,048 characters (a group's 5,120).
    big = _doc(*[_allow(f"s3:Get{n:04d}Object", f"arn:aws:s3:::bucket-{n:04d}/*")
                 for n in range(14)])
    assert 1024 < len(big.replace(" ", "")) < 2048
    iam.put_user_policy(UserName="alice", PolicyName="big1", PolicyDocument=big)
    code, _, response = failure(iam.put_user_policy, UserName="alice", PolicyName="big2",
                                PolicyDocument=big)
    assert code == "LimitExceeded"
    assert response["Error"]["Message"] == \
        "Maximum policy size of 2048 bytes exceeded for user alice"
    iam.put_user_policy(UserName="alice", PolicyName="big1", PolicyDocument=big)  # replace
    iam.put_group_policy(GroupName="devs", PolicyName="big2", PolicyDocument=big)
    iam.put_group_policy(GroupName="devs", PolicyName="big3", PolicyDocument=big)

    # An entity holding policies cannot be deleted (AWS's messages).
    code, _, response = failure(iam.delete_user, UserName="alice")
    assert code == "DeleteConflict"
    assert response["Error"]["Message"] == "Cannot delete entity, must delete policies first."
    for policy in iam.list_user_policies(UserName="alice")["PolicyNames"]:
        iam.delete_user_policy(UserName="alice", PolicyName=policy)
    iam.delete_user(UserName="alice")
    assert error_code(iam.delete_group, GroupName="devs") == "DeleteConflict"


def test_managed_policies_and_versions(live):
    iam = live.client("iam")
    made = iam.create_policy(PolicyName="readers", Path="/team/", Description="read it",
                             PolicyDocument=_doc(_allow("s3:Get*")))["Policy"]
    account_id = made["Arn"].split(":")[4]
    arn = made["Arn"]
    assert arn == f"arn:aws:iam::{account_id}:policy/team/readers"
    assert made["PolicyId"].startswith("ANPA") and made["DefaultVersionId"] == "v1"
    assert (made["AttachmentCount"], made["IsAttachable"], made["Description"]) == \
        (0, True, "read it")
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert (got["PolicyId"], got["PermissionsBoundaryUsageCount"]) == (made["PolicyId"], 0)
    assert error_code(iam.create_policy, PolicyName="readers",
                      PolicyDocument=_doc(_allow("s3:*"))) == "EntityAlreadyExists"
    assert error_code(iam.create_policy, PolicyName="bad", Path="no-slash",
                      PolicyDocument=_doc(_allow("s3:*"))) == "ValidationError"
    assert error_code(iam.create_policy, PolicyName="bad",
                      PolicyDocument=_doc(_allow("s3"))) == "MalformedPolicyDocument"
    assert error_code(iam.get_policy, PolicyArn="arn:aws:iam::123456789012:nope") == "InvalidInput"
    assert error_code(iam.get_policy, PolicyArn=arn.replace("/team/", "/")) == "NoSuchEntity"
    assert error_code(iam.get_policy,
                      PolicyArn=f"arn:aws:iam::{account_id}:policy/absent") == "NoSuchEntity"

    # Five versions at most; ids are never reused; the default is the one in force.
    for n in range(2, 6):
        version = iam.create_policy_version(PolicyArn=arn,
                                            PolicyDocument=_doc(_allow(f"s3:Get{n}")),
                                            SetAsDefault=(n == 3))["PolicyVersion"]
        assert version["VersionId"] == f"v{n}" and version["IsDefaultVersion"] == (n == 3)
    code, _, response = failure(iam.create_policy_version, PolicyArn=arn,
                                PolicyDocument=_doc(_allow("s3:*")))
    assert code == "LimitExceeded" and "up to 5 versions" in response["Error"]["Message"]
    versions, pages = all_pages(iam.list_policy_versions, "Versions", PolicyArn=arn,
                                 MaxItems=2)
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert pages == 3 and [v["IsDefaultVersion"] for v in versions].count(True) == 1
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    v3 = iam.get_policy_version(PolicyArn=arn, VersionId="v3")["PolicyVersion"]
    assert v3["IsDefaultVersion"] and v3["Document"]["Statement"][0]["Action"] == "s3:Get3"
    assert error_code(iam.get_policy_version, PolicyArn=arn, VersionId="v9") == \
        "NoSuchEntity"
    assert error_code(iam.get_policy_version, PolicyArn=arn, VersionId="x1") == \
        "ValidationError"

    code, _, response = failure(iam.delete_policy_version, PolicyArn=arn, VersionId="v3")
    assert (code, response["Error"]["Message"]) == \
        ("DeleteConflict", "Cannot delete the default version of a policy.")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v5")
    assert iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(_allow("s3:Get6"))
                                     )["PolicyVersion"]["VersionId"] == "v6"
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v1"
    assert error_code(iam.set_default_policy_version, PolicyArn=arn, VersionId="v5") == \
        "NoSuchEntity"

    # DeletePolicy wants the other versions gone first, as AWS does.
    assert error_code(iam.delete_policy, PolicyArn=arn) == "DeleteConflict"
    for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
    iam.delete_policy(PolicyArn=arn)
    assert error_code(iam.get_policy, PolicyArn=arn) == "NoSuchEntity"
    assert error_code(iam.delete_policy, PolicyArn=arn) == "NoSuchEntity"


def test_attachments_limits_and_entities(live):
    iam = live.client("iam")
    arn = iam.create_policy(PolicyName="shared",
                            PolicyDocument=_doc(_allow("ec2:Describe*")))["Policy"]["Arn"]
    iam.create_user(UserName="u1", Path="/eng/")
    iam.create_user(UserName="u2")
    iam.create_group(GroupName="g1")
    _role(iam, "r1")
    iam.attach_user_policy(UserName="u1", PolicyArn=arn)
    iam.attach_user_policy(UserName="u1", PolicyArn=arn)            # again: no change
    iam.attach_user_policy(UserName="u2", PolicyArn=arn)
    iam.attach_group_policy(GroupName="g1", PolicyArn=arn)
    iam.attach_role_policy(RoleName="r1", PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 4
    assert iam.list_attached_user_policies(UserName="u1")["AttachedPolicies"] == \
        [{"PolicyName": "shared", "PolicyArn": arn}]
    assert [p["PolicyArn"] for p in iam.list_attached_group_policies(
        GroupName="g1")["AttachedPolicies"]] == [arn]
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(
        RoleName="r1")["AttachedPolicies"]] == [arn]
    assert iam.list_attached_user_policies(UserName="u1", PathPrefix="/other/"
                                           )["AttachedPolicies"] == []

    everyone = iam.list_entities_for_policy(PolicyArn=arn)
    assert [g["GroupName"] for g in everyone["PolicyGroups"]] == ["g1"]
    assert [u["UserName"] for u in everyone["PolicyUsers"]] == ["u1", "u2"]
    assert [r["RoleName"] for r in everyone["PolicyRoles"]] == ["r1"]
    assert everyone["PolicyUsers"][0]["UserId"].startswith("AIDA")
    users_only = iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="User",
                                              PathPrefix="/eng/")
    assert [u["UserName"] for u in users_only["PolicyUsers"]] == ["u1"]
    assert users_only["PolicyGroups"] == [] and users_only["PolicyRoles"] == []
    assert iam.list_entities_for_policy(PolicyArn=arn, PolicyUsageFilter="PermissionsBoundary"
                                        )["PolicyUsers"] == []
    paged = iam.get_paginator("list_entities_for_policy").paginate(
        PolicyArn=arn, PaginationConfig={"PageSize": 1}).build_full_result()
    assert [u["UserName"] for u in paged["PolicyUsers"]] == ["u1", "u2"]
    assert len(paged["PolicyGroups"]) == len(paged["PolicyRoles"]) == 1
    assert error_code(iam.list_entities_for_policy, PolicyArn=arn, EntityFilter="Thing") == \
        "ValidationError"

    code, _, response = failure(iam.delete_policy, PolicyArn=arn)
    assert (code, response["Error"]["Message"]) == \
        ("DeleteConflict", "Cannot delete a policy attached to entities.")
    code, _, response = failure(iam.delete_user, UserName="u2")
    assert (code, response["Error"]["Message"]) == \
        ("DeleteConflict", "Cannot delete entity, must detach all policies first.")
    assert error_code(iam.delete_group, GroupName="g1") == "DeleteConflict"
    assert error_code(iam.attach_user_policy, UserName="nobody", PolicyArn=arn) == \
        "NoSuchEntity"
    code, _, response = failure(iam.attach_user_policy, UserName="u2",
                                PolicyArn=arn.replace("shared", "absent"))
    assert code == "NoSuchEntity" and "does not exist or is not attachable" in \
        response["Error"]["Message"]
    assert error_code(iam.attach_user_policy, UserName="u2",
                      PolicyArn="arn:aws:iam::123456789012:bad") == "InvalidInput"

    # Ten attached policies per user (IAM's default quota).
    for n in range(9):
        extra = iam.create_policy(PolicyName=f"extra{n}",
                                  PolicyDocument=_doc(_allow("s3:Get*")))["Policy"]["Arn"]
        iam.attach_user_policy(UserName="u2", PolicyArn=extra)
    eleventh = iam.create_policy(PolicyName="eleventh",
                                 PolicyDocument=_doc(_allow("s3:Get*")))["Policy"]["Arn"]
    code, _, response = failure(iam.attach_user_policy, UserName="u2", PolicyArn=eleventh)
    assert (code, response["Error"]["Message"]) == \
        ("LimitExceeded", "Cannot exceed quota for PoliciesPerUser: 10")
    attached, pages = all_pages(iam.list_attached_user_policies, "AttachedPolicies",
                                 UserName="u2", MaxItems=4)
    assert len(attached) == 10 and pages == 3

    iam.detach_user_policy(UserName="u2", PolicyArn=arn)
    assert error_code(iam.detach_user_policy, UserName="u2", PolicyArn=arn) == "NoSuchEntity"
    for name, detach in (("u1", iam.detach_user_policy),):
        detach(UserName=name, PolicyArn=arn)
    iam.detach_group_policy(GroupName="g1", PolicyArn=arn)
    iam.detach_role_policy(RoleName="r1", PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
    iam.delete_policy(PolicyArn=arn)
    iam.delete_group(GroupName="g1")


def test_aws_policies_shared_by_accounts_and_changed_by_none(live):
    iam = live.client("iam")
    other = _other_account(live, "second")
    admin_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    names = {p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]}
    assert names == set(awspolicies.POLICIES)
    assert {p["PolicyName"] for p in other.list_policies(Scope="AWS")["Policies"]} == names
    # A user allowed all of IAM reads them; changing them is refused to it all the same.
    iam.create_user(UserName="boss")
    iam.attach_user_policy(UserName="boss", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    key = iam.create_access_key(UserName="boss")["AccessKey"]
    boss = live.client("iam", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    got = boss.get_policy(PolicyArn=admin_arn)["Policy"]
    assert (got["Arn"], got["Path"], got["AttachmentCount"]) == (admin_arn, "/", 0)
    assert got["Description"] == "Provides full access to AWS services and resources."
    document_ = boss.get_policy_version(PolicyArn=admin_arn, VersionId="v1")["PolicyVersion"]
    assert document_["Document"]["Statement"] == [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]
    for change in (lambda: boss.delete_policy(PolicyArn=admin_arn),
                   lambda: boss.create_policy_version(PolicyArn=admin_arn,
                                                      PolicyDocument=_doc(_allow("s3:*"))),
                   lambda: boss.set_default_policy_version(PolicyArn=admin_arn,
                                                           VersionId="v1"),
                   lambda: boss.delete_policy_version(PolicyArn=admin_arn, VersionId="v1")):
        code, _, response = failure(change)
        assert code == "AccessDenied" and "on resource: policy arn:aws:iam::aws:" in \
            response["Error"]["Message"]

    # Each account attaches them to its own users and counts its own attachments.
    iam.create_user(UserName="ops")
    other.create_user(UserName="ops")
    iam.attach_user_policy(UserName="ops", PolicyArn=admin_arn)
    other.attach_user_policy(UserName="ops", PolicyArn=admin_arn)
    other.create_user(UserName="ops2")
    other.attach_user_policy(UserName="ops2", PolicyArn=admin_arn)
    assert boss.get_policy(PolicyArn=admin_arn)["Policy"]["AttachmentCount"] == 1
    assert [u["UserName"] for u in boss.list_entities_for_policy(
        PolicyArn=admin_arn)["PolicyUsers"]] == ["ops"]

    def attached(client):
        return {p["PolicyName"]: p["AttachmentCount"]
                for p in client.list_policies(OnlyAttached=True)["Policies"]}

    assert attached(iam) == {"AdministratorAccess": 1, "IAMFullAccess": 1}
    assert attached(other) == {"AdministratorAccess": 2}

    # Local policies stay in their account; listings page and filter by scope and path.
    mine = iam.create_policy(PolicyName="mine", Path="/x/",
                             PolicyDocument=_doc(_allow("s3:*")))["Policy"]["Arn"]
    assert error_code(other.get_policy, PolicyArn=mine) == "AccessDenied"  # not its account
    assert error_code(other.attach_user_policy, UserName="ops", PolicyArn=mine) == \
        "NoSuchEntity"
    assert [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]] == ["mine"]
    assert other.list_policies(Scope="Local")["Policies"] == []
    assert [p["PolicyName"] for p in iam.list_policies(PathPrefix="/x/")["Policies"]] == \
        ["mine"]
    listed, pages = all_pages(iam.list_policies, "Policies", MaxItems=4)
    assert sorted(p["PolicyName"] for p in listed) == sorted(names | {"mine"})
    assert pages == 3 and "Description" not in listed[0]
    assert error_code(iam.list_policies, Scope="Mine") == "ValidationError"
    assert iam.list_policies(PolicyUsageFilter="PermissionsBoundary")["Policies"] == []


def test_policies_decide_what_a_user_may_do(live):
    iam = live.client("iam")
    dev = _user_client(live, iam, "dev")
    read_only = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
    assert error_code(dev.list_users) == "AccessDenied"
    iam.attach_user_policy(UserName="dev", PolicyArn=read_only)
    assert "dev" in [u["UserName"] for u in dev.list_users()["Users"]]
    assert error_code(dev.create_user, UserName="x") == "AccessDenied"
    # An inline Deny wins over the managed Allow.
    iam.put_user_policy(UserName="dev", PolicyName="no-listing",
                        PolicyDocument=_doc(_deny("iam:ListUsers")))
    assert error_code(dev.list_users) == "AccessDenied"
    iam.delete_user_policy(UserName="dev", PolicyName="no-listing")
    iam.detach_user_policy(UserName="dev", PolicyArn=read_only)
    assert error_code(dev.list_users) == "AccessDenied"


def test_simulator(live):
    iam = live.client("iam")
    iam.create_user(UserName="sim", Path="/team/")
    iam.create_group(GroupName="readers")
    iam.add_user_to_group(GroupName="readers", UserName="sim")
    iam.put_group_policy(GroupName="readers", PolicyName="s3-read",
                         PolicyDocument=_doc(dict(_allow(["s3:Get*", "s3:List*"]),
                                                  Sid="ReadS3")))
    iam.put_user_policy(UserName="sim", PolicyName="no-secrets",
                        PolicyDocument=_doc(_deny("s3:GetObject",
                                                  "arn:aws:s3:::secrets/*")))
    iam.attach_user_policy(UserName="sim",
                           PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess")
    user_arn = iam.get_user(UserName="sim")["User"]["Arn"]
    results = iam.simulate_principal_policy(
        PolicySourceArn=user_arn, ActionNames=["s3:GetObject", "ec2:RunInstances",
                                               "ec2:DescribeInstances"],
        ResourceArns=["arn:aws:s3:::public/a", "arn:aws:s3:::secrets/b"])["EvaluationResults"]
    decided = {(r["EvalActionName"], r["EvalResourceName"]):
               (r["EvalDecision"], [(m["SourcePolicyId"], m["SourcePolicyType"])
                                    for m in r["MatchedStatements"]]) for r in results}
    assert decided == {
        ("s3:GetObject", "arn:aws:s3:::public/a"): ("allowed", [("s3-read", "group")]),
        ("s3:GetObject", "arn:aws:s3:::secrets/b"): ("explicitDeny",
                                                     [("no-secrets", "user")]),
        ("ec2:RunInstances", "arn:aws:s3:::public/a"): ("implicitDeny", []),
        ("ec2:RunInstances", "arn:aws:s3:::secrets/b"): ("implicitDeny", []),
        ("ec2:DescribeInstances", "arn:aws:s3:::public/a"):
            ("allowed", [("AmazonEC2ReadOnlyAccess", "aws-managed")]),
        ("ec2:DescribeInstances", "arn:aws:s3:::secrets/b"):
            ("allowed", [("AmazonEC2ReadOnlyAccess", "aws-managed")]),
    }
    # Extra policies join the user's; results page with Marker/MaxItems.
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=user_arn, ActionNames=["ec2:RunInstances", "s3:PutObject",
                                               "iam:GetUser"],
        PolicyInputList=[_doc(_allow("ec2:RunInstances"))],
        PaginationConfig={"PageSize": 2})
    answers = [r for page in pages for r in page["EvaluationResults"]]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in answers] == [
        ("ec2:RunInstances", "allowed"), ("s3:PutObject", "implicitDeny"),
        ("iam:GetUser", "implicitDeny")]
    assert answers[0]["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"
    # A group's own policies, and a role's.
    group_arn = iam.get_group(GroupName="readers")["Group"]["Arn"]
    assert iam.simulate_principal_policy(
        PolicySourceArn=group_arn, ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::secrets/b"])["EvaluationResults"][0]["EvalDecision"] == \
        "allowed"
    _role(iam, "simrole")
    iam.put_role_policy(RoleName="simrole", PolicyName="all-ec2",
                        PolicyDocument=_doc(_allow("ec2:*")))
    account_id = user_arn.split(":")[4]
    role_result = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{account_id}:role/simrole",
        ActionNames=["ec2:RunInstances"])["EvaluationResults"][0]
    assert (role_result["EvalDecision"], role_result["EvalResourceName"]) == ("allowed", "*")
    assert role_result["MatchedStatements"][0]["SourcePolicyType"] == "role"
    assert error_code(iam.simulate_principal_policy,
                      PolicySourceArn=f"arn:aws:iam::{account_id}:user/nobody",
                      ActionNames=["s3:GetObject"]) == "NoSuchEntity"
    assert error_code(iam.simulate_principal_policy,
                      PolicySourceArn="not-an-arn-at-all-of-any-kind",
                      ActionNames=["s3:GetObject"]) == "InvalidInput"


def test_simulate_custom_policy_with_context_and_caller(live):
    iam = live.client("iam")
    iam.create_user(UserName="carol")
    account_id = iam.get_user(UserName="carol")["User"]["Arn"].split(":")[4]
    home = _doc({"Effect": "Allow", "Action": "s3:*",
                 "Resource": "arn:aws:s3:::home/${aws:username}/*"})
    office = _doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                   "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}})

    def decide(action, resource="*", context=(), caller=None):
        kwargs = {"CallerArn": caller} if caller else {}
        return iam.simulate_custom_policy(
            PolicyInputList=[home, office], ActionNames=[action], ResourceArns=[resource],
            ContextEntries=[{"ContextKeyName": key, "ContextKeyValues": [value],
                             "ContextKeyType": kind} for key, value, kind in context],
            **kwargs)["EvaluationResults"][0]["EvalDecision"]

    carol = f"arn:aws:iam::{account_id}:user/carol"
    assert decide("s3:PutObject", "arn:aws:s3:::home/carol/x", caller=carol) == "allowed"
    assert decide("s3:PutObject", "arn:aws:s3:::home/dave/x", caller=carol) == "implicitDeny"
    assert decide("ec2:RunInstances", context=[("aws:SourceIp", "10.1.2.3", "ip")]) == \
        "allowed"
    assert decide("ec2:RunInstances", context=[("aws:SourceIp", "192.0.2.1", "ip")]) == \
        "implicitDeny"
    assert decide("ec2:RunInstances") == "implicitDeny"
    unknown = iam.simulate_custom_policy(PolicyInputList=[home, office],
                                         ActionNames=["ec2:RunInstances", "s3:GetObject"])
    assert [r["MissingContextValues"] for r in unknown["EvaluationResults"]] == \
        [["aws:sourceip"], []]
    denying = iam.simulate_custom_policy(
        PolicyInputList=[office, _doc(dict(_deny("ec2:*"), Sid="Never"))],
        ActionNames=["ec2:RunInstances"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["10.0.0.1"],
                         "ContextKeyType": "ip"}])["EvaluationResults"][0]
    assert denying["EvalDecision"] == "explicitDeny"
    assert denying["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.2"
    assert error_code(iam.simulate_custom_policy, PolicyInputList=["{bad"],
                      ActionNames=["s3:GetObject"]) == "InvalidInput"
    assert error_code(iam.simulate_custom_policy, PolicyInputList=[home],
                      ActionNames=["s3:GetObject"],
                      ContextEntries=[{"ContextKeyName": "aws:SourceIp",
                                       "ContextKeyValues": ["1"],
                                       "ContextKeyType": "weird"}]) == "ValidationError"


def test_account_authorization_details(live):
    iam = live.client("iam")
    iam.create_user(UserName="ann", Tags=[{"Key": "team", "Value": "blue"}])
    iam.create_group(GroupName="crew")
    iam.add_user_to_group(GroupName="crew", UserName="ann")
    iam.put_user_policy(UserName="ann", PolicyName="own", PolicyDocument=_doc(_allow("s3:*")))
    iam.put_group_policy(GroupName="crew", PolicyName="shared",
                         PolicyDocument=_doc(_allow("ec2:Describe*")))
    local = iam.create_policy(PolicyName="local",
                              PolicyDocument=_doc(_allow("s3:Get*")))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=local, PolicyDocument=_doc(_allow("s3:List*")),
                              SetAsDefault=True)
    iam.attach_user_policy(UserName="ann", PolicyArn=local)
    iam.attach_group_policy(GroupName="crew",
                            PolicyArn="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
    _role(iam, "runner")
    iam.put_role_policy(RoleName="runner", PolicyName="logs",
                        PolicyDocument=_doc(_allow("s3:PutObject")))
    iam.create_instance_profile(InstanceProfileName="runner-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="runner-profile", RoleName="runner")

    details = iam.get_paginator("get_account_authorization_details").paginate(
        PaginationConfig={"PageSize": 2}).build_full_result()
    users = {u["UserName"]: u for u in details["UserDetailList"]}
    assert set(users) == {"admin", "ann"}
    ann = users["ann"]
    assert ann["GroupList"] == ["crew"] and ann["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert ann["UserPolicyList"] == [{"PolicyName": "own",
                                      "PolicyDocument": json.loads(_doc(_allow("s3:*")))}]
    assert ann["AttachedManagedPolicies"] == [{"PolicyName": "local", "PolicyArn": local}]
    crew, = details["GroupDetailList"]
    assert [p["PolicyName"] for p in crew["GroupPolicyList"]] == ["shared"]
    assert [p["PolicyName"] for p in crew["AttachedManagedPolicies"]] == \
        ["AmazonS3ReadOnlyAccess"]
    runner, = details["RoleDetailList"]
    assert runner["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == \
        {"Service": "ec2.amazonaws.com"}
    assert [p["InstanceProfileName"] for p in runner["InstanceProfileList"]] == \
        ["runner-profile"]
    assert [p["PolicyName"] for p in runner["RolePolicyList"]] == ["logs"]
    # The account's own policies and AWS's that are attached in it, with every version.
    policies_ = {p["PolicyName"]: p for p in details["Policies"]}
    assert set(policies_) == {"local", "AmazonS3ReadOnlyAccess"}
    versions = policies_["local"]["PolicyVersionList"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == \
        [("v2", True), ("v1", False)]
    assert versions[0]["Document"]["Statement"][0]["Action"] == "s3:List*"

    only = iam.get_account_authorization_details(Filter=["Role", "LocalManagedPolicy"])
    assert only["UserDetailList"] == [] and only["GroupDetailList"] == []
    assert [r["RoleName"] for r in only["RoleDetailList"]] == ["runner"]
    assert [p["PolicyName"] for p in only["Policies"]] == ["local"]
    assert error_code(iam.get_account_authorization_details, Filter=["Nothing"]) == \
        "ValidationError"


def test_aws_cli(live):
    cli = iam_cli(live)

    cli("create-user", "--user-name", "cli")
    cli("put-user-policy", "--user-name", "cli", "--policy-name", "p",
        "--policy-document", _doc(_allow("s3:GetObject", "arn:aws:s3:::b/a b")))
    got = cli("get-user-policy", "--user-name", "cli", "--policy-name", "p")
    assert got["PolicyDocument"]["Statement"][0]["Resource"] == "arn:aws:s3:::b/a b"
    arn = cli("create-policy", "--policy-name", "cli-policy", "--policy-document",
              _doc(_allow("ec2:Describe*")))["Policy"]["Arn"]
    cli("attach-user-policy", "--user-name", "cli", "--policy-arn", arn)
    assert [p["PolicyName"] for p in cli("list-policies", "--scope", "Local",
                                         "--only-attached")["Policies"]] == ["cli-policy"]


def test_seed_is_idempotent(live):
    """The server seeded AWS's policies when it started; seeding again changes nothing."""
    with live.app.app_context():
        awspolicies.seed()
        awspolicies.seed()
    names = [p["PolicyName"] for p in live.client("iam").list_policies(Scope="AWS")["Policies"]]
    assert sorted(names) == sorted(awspolicies.POLICIES)


def test_the_root_reads_aws_policies(live):
    iam = live.client("iam")
    admin_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert iam.get_policy(PolicyArn=admin_arn)["Policy"]["Arn"] == admin_arn
    assert iam.list_policy_versions(PolicyArn=admin_arn)["Versions"][0]["VersionId"] == "v1"
    assert iam.list_entities_for_policy(PolicyArn=admin_arn)["PolicyUsers"] == []
