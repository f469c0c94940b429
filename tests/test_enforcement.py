"""Every EC2, S3 and IAM request goes through the one gate (eucalite.access): boto3 against a
live server, as IAM users made by their account's root. A user with no policy gets nothing;
an allow policy lets through exactly what it names (action, resource, ec2:ResourceTag,
aws:SourceIp, aws:username); an explicit deny wins; bucket policies work inside an account
on their own and across accounts only with the caller's policies; roots and the cloud admin
are unaffected; every EC2 action has an entry in the permissions table."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config

from awsutil import error_code, failure
from iamutil import account_root
from ec2util import make_image, wait_for_state
from liveutil import start_live_node, stop_live

from eucalite import access, accounts, identity
from eucalite.compute.ec2 import permissions, registry
from eucalite.db import db

ENCODED = ("You are not authorized to perform this operation. "
           "Encoded authorization failure message: ")


# --- helpers ----------------------------------------------------------------------------

def _user(live, name, *, iam=None, groups=()):
    """(user ARN, a boto3 client factory signing as the new user *name*), made by *iam*
    (the cloud admin's account root by default)."""
    iam = iam or live.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    for group in groups:
        iam.add_user_to_group(GroupName=group, UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, lambda service: live.client(service, key_id=key["AccessKeyId"],
                                            secret=key["SecretAccessKey"])


def _attach(live, account, name, *statements, group=False, policy="p"):
    """An inline policy of *statements* on user (or group) *name* of *account*, stored as
    the IAM API stores it."""
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    with live.app.app_context():
        account_id = accounts.get_account(account).id
        if group:
            owner = db.session.execute(db.select(accounts.Group.id).filter_by(
                account_id=account_id, name=name)).scalar_one()
            row = identity.InlinePolicy(group_id=owner, name=policy, document=text)
        else:
            owner = accounts.get_user(account, name).id
            row = identity.InlinePolicy(user_id=owner, name=policy, document=text)
        db.session.add(row)
        db.session.commit()


def _allow(action, resource="*", **condition):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _deny(action, resource="*"):
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def _decoded(live, principal_user, message):
    encoded = message[len(ENCODED):]
    with live.app.test_request_context():
        principal = accounts.principal_of(accounts.get_user(*principal_user))
        return json.loads(access.decode_authorization_message(principal, encoded))


# --- EC2 ------------------------------------------------------------------------------

def test_every_registered_ec2_action_has_a_permissions_entry():
    assert set(registry.actions) - set(permissions.PERMISSIONS) == set()


def test_a_user_without_policies_may_do_nothing(live):
    arn, client = _user(live, "nobody")
    ec2, s3, iam = client("ec2"), client("s3"), client("iam")

    code, status, response = failure(ec2.describe_instances)
    assert (code, status) == ("UnauthorizedOperation", 403)
    message = response["Error"]["Message"]
    assert message.startswith(ENCODED)
    assert "ec2:DescribeInstances" not in message           # opaque to the caller
    decoded = _decoded(live, ("eucalyptus", "nobody"), message)
    assert decoded["allowed"] is False and decoded["explicitDeny"] is False
    assert decoded["context"]["action"] == "ec2:DescribeInstances"
    assert decoded["context"]["principal"]["arn"] == arn
    assert decoded["context"]["resource"] == "*"
    # STS decodes it for the account's root; the user itself has no policy to ask
    answer = live.client("sts").decode_authorization_message(
        EncodedMessage=message[len(ENCODED):])
    assert json.loads(answer["DecodedMessage"]) == decoded
    assert error_code(client("sts").decode_authorization_message,
                      EncodedMessage=message[len(ENCODED):]) == "AccessDenied"
    assert error_code(ec2.describe_instances, DryRun=True) == "UnauthorizedOperation"
    assert error_code(ec2.create_key_pair, KeyName="k") == "UnauthorizedOperation"

    code, status, _ = failure(s3.list_buckets)
    assert (code, status) == ("AccessDenied", 403)
    live.client("s3").create_bucket(Bucket="roots-bucket")
    assert error_code(s3.create_bucket, Bucket="users-bucket") == "AccessDenied"
    assert error_code(s3.list_objects_v2, Bucket="roots-bucket") == "AccessDenied"

    code, status, response = failure(iam.get_user)
    assert (code, status) == ("AccessDenied", 403)
    assert response["Error"]["Message"] == (
        f"User: {arn} is not authorized to perform: iam:GetUser on resource: {arn}")


def test_an_allow_policy_lets_through_what_it_names_and_nothing_else(live):
    _, client = _user(live, "reader")
    _attach(live, "eucalyptus", "reader", _allow("ec2:Describe*"),
            _allow(["ec2:CreateKeyPair", "ec2:DeleteKeyPair"],
                   f"arn:aws:ec2:{live.region}:*:key-pair/dev-*"))
    ec2 = client("ec2")
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert error_code(ec2.describe_images, DryRun=True) == "DryRunOperation"
    assert error_code(ec2.create_key_pair, KeyName="dev-1", DryRun=True) == "DryRunOperation"
    ec2.create_key_pair(KeyName="dev-1")
    code, _, response = failure(ec2.create_key_pair, KeyName="prod-1")
    assert code == "UnauthorizedOperation"
    decoded = _decoded(live, ("eucalyptus", "reader"), response["Error"]["Message"])
    assert decoded["context"]["resource"].endswith(":key-pair/prod-1")
    assert error_code(ec2.create_key_pair, KeyName="prod-1", DryRun=True) == \
        "UnauthorizedOperation"
    assert error_code(ec2.create_security_group, GroupName="g",
                      Description="d") == "UnauthorizedOperation"
    ec2.delete_key_pair(KeyName="dev-1")
    assert [k["KeyName"] for k in live.client("ec2").describe_key_pairs()["KeyPairs"]] == []


@pytest.fixture
def fake_cloud(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def test_terminate_only_instances_tagged_for_the_users_team(fake_cloud):
    live = fake_cloud
    root = live.client("ec2")
    image = make_image(live)

    def launch(team):
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": team}]}]
        return root.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                  TagSpecifications=tags)["Instances"][0]["InstanceId"]

    a, b = launch("a"), launch("b")
    wait_for_state(root, [a, b], "running")
    _, client = _user(live, "team-a")
    _attach(live, "eucalyptus", "team-a", _allow("ec2:DescribeInstances"),
            _allow("ec2:TerminateInstances", f"arn:aws:ec2:{live.region}:*:instance/*",
                   StringEquals={"ec2:ResourceTag/team": "a"}))
    ec2 = client("ec2")
    assert error_code(ec2.terminate_instances, InstanceIds=[b]) == "UnauthorizedOperation"
    # one refused instance refuses the whole request
    assert error_code(ec2.terminate_instances, InstanceIds=[a, b]) == "UnauthorizedOperation"
    assert error_code(ec2.terminate_instances, InstanceIds=[a], DryRun=True) == \
        "DryRunOperation"
    ec2.terminate_instances(InstanceIds=[a])
    wait_for_state(root, [a], "terminated")
    assert wait_for_state(root, [b], "running")
    # RunInstances is not granted: the user may not launch, tagged or not
    assert error_code(ec2.run_instances, ImageId=image, MinCount=1,
                      MaxCount=1) == "UnauthorizedOperation"


def test_request_tags_condition_create_actions(live):
    _, client = _user(live, "tagger")
    _attach(live, "eucalyptus", "tagger",
            _allow("ec2:CreateSecurityGroup", "*", StringEquals={"aws:RequestTag/team": "a"}),
            _allow("ec2:CreateTags", "*", **{"ForAllValues:StringEquals":
                                             {"aws:TagKeys": ["team"]}}))
    ec2 = client("ec2")
    tagged = [{"ResourceType": "security-group", "Tags": [{"Key": "team", "Value": "a"}]}]
    group = ec2.create_security_group(GroupName="g1", Description="d",
                                      TagSpecifications=tagged)["GroupId"]
    assert error_code(ec2.create_security_group, GroupName="g2",
                      Description="d") == "UnauthorizedOperation"
    ec2.create_tags(Resources=[group], Tags=[{"Key": "team", "Value": "b"}])
    assert error_code(ec2.create_tags, Resources=[group],
                      Tags=[{"Key": "owner", "Value": "x"}]) == "UnauthorizedOperation"


def test_an_explicit_deny_from_a_group_beats_an_allow(live):
    iam = live.client("iam")
    iam.create_group(GroupName="locked")
    arn, client = _user(live, "mallory", groups=["locked"])
    _attach(live, "eucalyptus", "mallory", _allow(["ec2:*", "iam:*"]))
    _attach(live, "eucalyptus", "locked", _deny(["ec2:DescribeInstances", "iam:ListUsers"]),
            group=True)
    ec2, user_iam = client("ec2"), client("iam")
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    code, _, response = failure(ec2.describe_instances)
    assert code == "UnauthorizedOperation"
    decoded = _decoded(live, ("eucalyptus", "mallory"), response["Error"]["Message"])
    assert decoded["explicitDeny"] is True
    assert decoded["matchedStatements"]["items"][0]["effect"] == "DENY"
    code, _, response = failure(user_iam.list_users)
    assert code == "AccessDenied"
    assert response["Error"]["Message"] == (
        f"User: {arn} is not authorized to perform: iam:ListUsers on resource: * "
        "with an explicit deny in an identity-based policy")
    assert user_iam.get_user()["User"]["Arn"] == arn


def test_source_ip_and_username_conditions(live):
    iam = live.client("iam")
    iam.create_user(UserName="peer")
    arn, client = _user(live, "selfie")
    _attach(live, "eucalyptus", "selfie",
            _allow(["iam:GetUser", "iam:ListAccessKeys"],
                   "arn:aws:iam::*:user/${aws:username}"),
            _allow("ec2:DescribeRegions", "*", IpAddress={"aws:SourceIp": "127.0.0.0/8"}),
            _allow("ec2:DescribeAvailabilityZones", "*",
                   IpAddress={"aws:SourceIp": "10.0.0.0/8"}))
    user_iam, ec2 = client("iam"), client("ec2")
    assert user_iam.get_user()["User"]["Arn"] == arn
    assert len(user_iam.list_access_keys()["AccessKeyMetadata"]) == 1
    assert error_code(user_iam.get_user, UserName="peer") == "AccessDenied"
    assert error_code(user_iam.list_access_keys, UserName="peer") == "AccessDenied"
    assert ec2.describe_regions()["Regions"]
    assert error_code(ec2.describe_availability_zones) == "UnauthorizedOperation"


# --- S3 -------------------------------------------------------------------------------

def _bucket_policy(bucket, principal, actions, resource=None):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions,
        "Resource": resource or f"arn:aws:s3:::{bucket}/*"}]})


def test_a_bucket_policy_grants_a_user_of_the_same_account_without_identity_policy(live):
    s3 = live.client("s3")
    s3.create_bucket(Bucket="shared")
    s3.put_object(Bucket="shared", Key="k", Body=b"hello")
    arn, client = _user(live, "guest")
    user_s3 = client("s3")
    assert error_code(user_s3.get_object, Bucket="shared", Key="k") == "AccessDenied"
    # naming the account delegates to the user's own policies: not enough on its own
    s3.put_bucket_policy(Bucket="shared", Policy=_bucket_policy("shared", arn.split(":")[4],
                                                                "s3:GetObject"))
    assert error_code(user_s3.get_object, Bucket="shared", Key="k") == "AccessDenied"
    s3.put_bucket_policy(Bucket="shared", Policy=_bucket_policy("shared", arn, "s3:GetObject"))
    assert user_s3.get_object(Bucket="shared", Key="k")["Body"].read() == b"hello"
    assert error_code(user_s3.put_object, Bucket="shared", Key="x", Body=b"") == "AccessDenied"
    # an explicit deny in the user's own policy wins over the bucket policy's allow
    _attach(live, "eucalyptus", "guest", _deny("s3:GetObject"))
    assert error_code(user_s3.get_object, Bucket="shared", Key="k") == "AccessDenied"


def test_an_identity_policy_grants_a_bucket_of_the_same_account(live):
    s3 = live.client("s3")
    s3.create_bucket(Bucket="team")
    _, client = _user(live, "writer")
    _attach(live, "eucalyptus", "writer",
            _allow(["s3:PutObject", "s3:GetObject"], "arn:aws:s3:::team/*"),
            _allow("s3:ListBucket", "arn:aws:s3:::team",
                   StringEquals={"s3:prefix": "mine/"}))
    user_s3 = client("s3")
    user_s3.put_object(Bucket="team", Key="mine/a", Body=b"1")
    assert user_s3.get_object(Bucket="team", Key="mine/a")["Body"].read() == b"1"
    listed = user_s3.list_objects_v2(Bucket="team", Prefix="mine/")["Contents"]
    assert [o["Key"] for o in listed] == ["mine/a"]
    assert error_code(user_s3.list_objects_v2, Bucket="team") == "AccessDenied"
    assert error_code(user_s3.delete_object, Bucket="team", Key="mine/a") == "AccessDenied"
    assert error_code(user_s3.list_buckets) == "AccessDenied"


def test_across_accounts_both_the_callers_policies_and_the_bucket_policy_must_allow(live):
    s3 = live.client("s3")
    s3.create_bucket(Bucket="outside")
    s3.put_object(Bucket="outside", Key="k", Body=b"data")
    other_root = account_root(live, "partner")
    other_iam = other_root("iam")
    arn, client = _user(live, "visitor", iam=other_iam)
    visitor = client("s3")
    _attach(live, "partner", "visitor", _allow("s3:GetObject", "arn:aws:s3:::outside/*"))
    # their policy allows, the bucket does not
    assert error_code(visitor.get_object, Bucket="outside", Key="k") == "AccessDenied"
    s3.put_bucket_policy(Bucket="outside",
                         Policy=_bucket_policy("outside", arn.split(":")[4], "s3:GetObject"))
    assert visitor.get_object(Bucket="outside", Key="k")["Body"].read() == b"data"
    # the partner account's root needs no identity policy
    assert other_root("s3").get_object(Bucket="outside", Key="k")["Body"].read() == b"data"
    # a partner user whose policies do not allow it is refused, bucket policy or not
    _, other = _user(live, "stranger", iam=other_iam)
    assert error_code(other("s3").get_object, Bucket="outside", Key="k") == "AccessDenied"


# --- roots and the cloud admin -----------------------------------------------------------

def test_roots_and_the_cloud_admin_are_unaffected(live):
    admin = live.client("ec2")
    admin.create_key_pair(KeyName="k")
    assert error_code(admin.describe_instances, DryRun=True) == "DryRunOperation"
    assert live.client("iam").list_users()["Users"]
    other = account_root(live, "tenant")
    assert other("ec2").describe_key_pairs()["KeyPairs"] == []
    assert error_code(other("ec2").create_key_pair, KeyName="k", DryRun=True) == \
        "DryRunOperation"
    assert [u["UserName"] for u in other("iam").list_users()["Users"]] == ["admin"]
    other("s3").create_bucket(Bucket="tenant-bucket")
    assert [b["Name"] for b in other("s3").list_buckets()["Buckets"]] == ["tenant-bucket"]
    # a bucket policy's explicit deny still binds the owner's root (but never locks it out
    # of the policy itself)
    live.client("s3").create_bucket(Bucket="guarded")
    live.client("s3").put_bucket_policy(Bucket="guarded", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
                                                "Action": "s3:PutObject",
                                                "Resource": "arn:aws:s3:::guarded/*"}]}))
    assert error_code(live.client("s3").put_object, Bucket="guarded", Key="k",
                      Body=b"") == "AccessDenied"
    live.client("s3").delete_bucket_policy(Bucket="guarded")


def test_a_message_decodes_only_in_its_own_account(live):
    _, client = _user(live, "nosy")
    message = failure(client("ec2").describe_volumes)[2]["Error"]["Message"]
    account_root(live, "elsewhere")
    with live.app.test_request_context():
        stranger = accounts.principal_of(accounts.get_user("elsewhere", "admin"))
        with pytest.raises(Exception) as caught:
            access.decode_authorization_message(stranger, message[len(ENCODED):])
        assert caught.value.code == "InvalidAuthorizationMessageException"
        mine = accounts.principal_of(accounts.get_user("eucalyptus", "admin"))
        tampered = message[len(ENCODED):-4] + "AAAA"
        with pytest.raises(Exception) as caught:
            access.decode_authorization_message(mine, tampered)
        assert caught.value.code == "InvalidAuthorizationMessageException"


# --- temporary credentials ---------------------------------------------------------------

def _session_client(live, creds, service):
    session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"],
                                    region_name=live.region)
    return session.client(service, endpoint_url=live.endpoints[service],
                          config=Config(retries={"max_attempts": 1}))


def test_a_role_session_may_do_what_its_roles_policies_and_bucket_policies_allow(live):
    iam = live.client("iam")
    account_id = live.client("sts").get_caller_identity()["Account"]
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": account_id}, "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName="reader",
                               AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    with live.app.app_context():
        role_id = db.session.execute(db.select(identity.Role.id).filter_by(
            name="reader")).scalar_one()
        db.session.add(identity.InlinePolicy(role_id=role_id, name="p", document=json.dumps(
            {"Version": "2012-10-17", "Statement": [_allow("ec2:DescribeInstances")]})))
        db.session.commit()
    s3 = live.client("s3")
    s3.create_bucket(Bucket="for-the-role")
    s3.put_object(Bucket="for-the-role", Key="k", Body=b"r")
    creds = live.client("sts").assume_role(RoleArn=role_arn,
                                           RoleSessionName="job")["Credentials"]
    ec2, role_s3 = _session_client(live, creds, "ec2"), _session_client(live, creds, "s3")
    assert ec2.describe_instances()["Reservations"] == []
    code, _, response = failure(ec2.describe_key_pairs)
    assert code == "UnauthorizedOperation"
    decoded = _decoded(live, ("eucalyptus", "admin"), response["Error"]["Message"])
    assert decoded["context"]["principal"]["arn"] == \
        f"arn:aws:sts::{account_id}:assumed-role/reader/job"
    assert error_code(role_s3.get_object, Bucket="for-the-role", Key="k") == "AccessDenied"
    # a role session has no aws:username: a policy keyed on it does not let the role in
    with live.app.app_context():
        db.session.add(identity.InlinePolicy(role_id=role_id, name="home", document=json.dumps(
            {"Version": "2012-10-17", "Statement": [
                _allow("s3:GetObject", "arn:aws:s3:::for-the-role/*",
                       StringEquals={"aws:username": "reader"})]})))
        db.session.commit()
    assert error_code(role_s3.get_object, Bucket="for-the-role", Key="k") == "AccessDenied"
    # a bucket policy naming a user of the role's name does not name the role; one naming
    # the account only delegates to the role's own policies, which do not allow it
    _user(live, "reader")
    for principal in (f"arn:aws:iam::{account_id}:user/reader", account_id):
        s3.put_bucket_policy(Bucket="for-the-role", Policy=_bucket_policy(
            "for-the-role", principal, "s3:GetObject"))
        assert error_code(role_s3.get_object, Bucket="for-the-role", Key="k") == \
            "AccessDenied"
    # the role itself, or this one session of it, named in the bucket policy
    for principal in (role_arn, f"arn:aws:sts::{account_id}:assumed-role/reader/job"):
        s3.put_bucket_policy(Bucket="for-the-role", Policy=_bucket_policy(
            "for-the-role", principal, "s3:GetObject"))
        assert role_s3.get_object(Bucket="for-the-role", Key="k")["Body"].read() == b"r"
    other = _session_client(live, live.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="other")["Credentials"], "s3")
    assert error_code(other.get_object, Bucket="for-the-role", Key="k") == "AccessDenied"
    # everyone, the role's sessions included (a public policy: Block Public Access off first)
    s3.delete_public_access_block(Bucket="for-the-role")
    s3.put_bucket_policy(Bucket="for-the-role",
                         Policy=_bucket_policy("for-the-role", "*", "s3:GetObject"))
    assert role_s3.get_object(Bucket="for-the-role", Key="k")["Body"].read() == b"r"


def test_a_users_session_has_the_users_policies_but_no_iam(live):
    _, client = _user(live, "temp")
    _attach(live, "eucalyptus", "temp", _allow(["ec2:DescribeInstances", "iam:*"]))
    creds = client("sts").get_session_token()["Credentials"]
    assert _session_client(live, creds, "ec2").describe_instances()["Reservations"] == []
    assert error_code(_session_client(live, creds, "ec2").describe_key_pairs) == \
        "UnauthorizedOperation"
    assert client("iam").list_users()["Users"]                   # the user itself may
    assert error_code(_session_client(live, creds, "iam").list_users) in (
        "InvalidClientTokenId", "AccessDenied")                  # its session may not


def test_the_console_asks_the_same_table_and_gate(live):
    root = live.client("ec2")
    group = root.create_security_group(GroupName="web", Description="d",
                                       TagSpecifications=[{"ResourceType": "security-group",
                                                           "Tags": [{"Key": "team",
                                                                     "Value": "a"}]}])["GroupId"]
    other = root.create_security_group(GroupName="db", Description="d")["GroupId"]
    _user(live, "viewer")
    _attach(live, "eucalyptus", "viewer", _allow("ec2:DescribeSecurityGroups"),
            _allow("ec2:DeleteSecurityGroup", "*",
                   StringEquals={"ec2:ResourceTag/team": "a"}))
    services = live.app.extensions["eucalite"]
    with live.app.test_request_context():
        viewer = accounts.principal_of(accounts.get_user("eucalyptus", "viewer"))
        admin = accounts.principal_of(accounts.get_user("eucalyptus", "admin"))
        assert permissions.may(services, viewer, "DescribeSecurityGroups")
        assert not permissions.may(services, viewer, "CreateSecurityGroup")
        assert permissions.may(services, viewer, "DeleteSecurityGroup", [group])
        assert not permissions.may(services, viewer, "DeleteSecurityGroup", [group, other])
        assert permissions.may(services, admin, "DeleteSecurityGroup", [other])
