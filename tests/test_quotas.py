"""Quotas, the cloud's SLA: Eucalyptus' Effect "Limit" statements on an account's admin user
(set by the cloud admin with Euare's PutAccountPolicy) and on users, enforced with AWS's
limit errors by boto3 against a live server with the fake node driver: each key refuses
past its limit and lets through up to it, the smaller of account and user limits wins,
groups' limits count for nothing, only the cloud admin sets an account's, the grammar
refuses malformed Limit statements, and concurrent launches never pass a limit."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

import boto3
import pytest

from awsutil import error_code, failure
from iamutil import account_root
from ebsutil import new_volume, settle, wait_snapshot
from ec2util import make_image, signed_post
from liveutil import start_live, start_live_node, stop_live

from eucalite import accounts
from eucalite.db import db

ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def _doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _limit(action="*", **keys) -> dict:
    """A Limit statement: keys written ``ec2_quota_vminstancenumber=3``."""
    return {"Effect": "Limit", "Action": action, "Resource": "*", "Condition": {
        "NumericLessThanEquals": {k.replace("_quota_", ":quota-", 1): str(v)
                                  for k, v in keys.items()}}}


def _user(iam, live, name, *documents):
    """A user of *iam*'s account with inline policies *documents* and a client factory."""
    iam.create_user(UserName=name)
    for index, text in enumerate(documents):
        iam.put_user_policy(UserName=name, PolicyName=f"p{index}", PolicyDocument=text)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return lambda service: live.client(service, key_id=key["AccessKeyId"],
                                       secret=key["SecretAccessKey"])


def _euare(live, action, key_id=None, secret=None, **params):
    """A Euare action boto3 does not know, signed and posted; (status, XML root)."""
    body = urllib.parse.urlencode({"Action": action, "Version": "2010-05-08", **params})
    answer = signed_post(live, body, service="iam", key_id=key_id, secret=secret)
    return answer.status_code, ET.fromstring(answer.content)


def _code(root) -> str | None:
    found = [e.text for e in root.iter() if e.tag.endswith("Code")]
    return found[0] if found else None


def _set_account(live, account, *statements, name="quota"):
    status, root = _euare(live, "PutAccountPolicy", AccountName=account, PolicyName=name,
                          PolicyDocument=_doc(*statements))
    assert status == 200, ET.tostring(root)


def _launch(ec2, image, count=1, itype="m1.small"):
    return ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count,
                             InstanceType=itype)["Instances"]


def _until(predicate, timeout=15):
    """Poll *predicate* until it holds (an AssertionError past *timeout* seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.05)


def _live_instances(live, account) -> int:
    with live.app.app_context():
        account_id = accounts.get_account(account).id
        table = db.metadata.tables["instances"]
        return db.session.execute(db.select(db.func.count()).select_from(table).where(
            table.c.owner_id == account_id, table.c.state != "terminated")).scalar()


# --- instances, vCPUs: account and user -------------------------------------------------

def test_instances_account_and_user_limits_the_smaller_wins_groups_ignored(roomy):
    live = roomy
    root = account_root(live, "acme")
    image = make_image(live, account="acme")
    _set_account(live, "acme", _limit("ec2:RunInstances", ec2_quota_vminstancenumber=3))
    iam = root("iam")
    iam.create_group(GroupName="devs")
    # a group's Limit is accepted and counts for nothing
    iam.put_group_policy(GroupName="devs", PolicyName="none",
                         PolicyDocument=_doc(_limit(ec2_quota_vminstancenumber=0)))
    dev = _user(iam, live, "dev", _doc(ALLOW_ALL),
                _doc(_limit("ec2:RunInstances", ec2_quota_vminstancenumber=1)))
    iam.add_user_to_group(GroupName="devs", UserName="dev")
    dev_ec2 = dev("ec2")

    assert len(_launch(dev_ec2, image)) == 1              # the user's own limit, reached
    code, status, body = failure(dev_ec2.run_instances, ImageId=image, MinCount=1,
                                 MaxCount=1, InstanceType="m1.small")
    assert (code, status) == ("InstanceLimitExceeded", 400)
    assert body["Error"]["Message"] == ("Your quota allows for 0 more running instance(s). "
                                        "You requested at least 1")
    ec2 = root("ec2")
    assert error_code(_launch, ec2, image, 3) == "InstanceLimitExceeded"   # 1 + 3 > 3
    assert len(_launch(ec2, image, 2)) == 2                # the account's limit, reached
    assert error_code(_launch, ec2, image) == "InstanceLimitExceeded"
    assert _live_instances(live, "acme") == 3
    # a terminated instance no longer counts
    mine = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]]
    ec2.terminate_instances(InstanceIds=mine[:1])
    _until(lambda: _live_instances(live, "acme") == 2)
    assert len(_launch(ec2, image)) == 1


def test_vcpus_memory_and_disk(roomy):
    live = roomy
    root = account_root(live, "acme")
    image = make_image(live, account="acme")
    _set_account(live, "acme", _limit("ec2:RunInstances", ec2_quota_cputotalsize=2))
    ec2 = root("ec2")
    _launch(ec2, image, 2)                                   # m1.small: one vCPU each
    assert error_code(_launch, ec2, image) == "VcpuLimitExceeded"
    _set_account(live, "acme", _limit("ec2:RunInstances", ec2_quota_memorytotalsize=1),
                 name="quota")
    assert error_code(_launch, ec2, image) == "InstanceLimitExceeded"
    _set_account(live, "acme", _limit("ec2:RunInstances", ec2_quota_disktotalsize=1),
                 name="quota")
    assert error_code(_launch, ec2, image) == "InstanceLimitExceeded"


# --- EBS, addresses ----------------------------------------------------------------------

def test_volumes_gib_snapshots_and_addresses(roomy):
    live = roomy
    root = account_root(live, "acme")
    _set_account(live, "acme", _limit(ec2_quota_volumenumber=2, ec2_quota_volumetotalsize=5,
                                      ec2_quota_snapshotnumber=1, ec2_quota_imagenumber=1))
    ec2 = root("ec2")
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    volume = ec2.create_volume(Size=3, AvailabilityZone=zone)["VolumeId"]
    code, _status, body = failure(ec2.create_volume, Size=3, AvailabilityZone=zone)
    assert code == "VolumeLimitExceeded" and "5 GiB" in body["Error"]["Message"]
    ec2.create_volume(Size=2, AvailabilityZone=zone)          # 5 GiB: up to the limit
    assert error_code(ec2.create_volume, Size=1,
                      AvailabilityZone=zone) == "VolumeLimitExceeded"   # 3 volumes > 2
    _until(lambda: ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"]
                  == "available")
    ec2.create_snapshot(VolumeId=volume)
    snapshot = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"][0]["SnapshotId"]
    assert error_code(ec2.create_snapshot, VolumeId=volume) == "SnapshotLimitExceeded"
    _until(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["State"]
           == "completed")

    def register(name):
        return ec2.register_image(Name=name, RootDeviceName="/dev/sda1", BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot}}])

    register("first")
    code, status, _ = failure(register, "second")
    assert (code, status) == ("ResourceLimitExceeded", 400)


def test_addresses_per_user(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake",
                                   public_ips=["198.51.100.10-198.51.100.14"],
                                   public_interface="eulab0")
    try:
        root = account_root(live, "acme")
        _set_account(live, "acme", _limit(ec2_quota_addressnumber=2))
        dev = _user(root("iam"), live, "dev", _doc(ALLOW_ALL),
                    _doc(_limit("ec2:AllocateAddress", ec2_quota_addressnumber=1)))
        dev("ec2").allocate_address()
        code, status, _ = failure(dev("ec2").allocate_address)
        assert (code, status) == ("AddressLimitExceeded", 400)
        root("ec2").allocate_address()
        assert error_code(root("ec2").allocate_address) == "AddressLimitExceeded"
    finally:
        stop_live(live, server)


# --- S3 ---------------------------------------------------------------------------------

def test_buckets_objects_and_sizes(live):
    root = account_root(live, "acme")
    _set_account(live, "acme", _limit(s3_quota_bucketnumber=1, s3_quota_bucketobjectnumber=2,
                                      s3_quota_bucketsize=1))
    s3 = root("s3")
    s3.create_bucket(Bucket="only")
    code, status, _ = failure(s3.create_bucket, Bucket="second")
    assert (code, status) == ("TooManyBuckets", 400)
    s3.put_object(Bucket="only", Key="a", Body=b"x" * 600_000)
    s3.put_object(Bucket="only", Key="a", Body=b"x" * 700_000)   # replaces: still 1 object
    code, _status, _ = failure(s3.put_object, Bucket="only", Key="b", Body=b"y" * 400_000)
    assert code == "EntityTooLarge"                      # 700 kB + 400 kB > 1 MB
    s3.put_object(Bucket="only", Key="b", Body=b"y")
    code, status, _ = failure(s3.put_object, Bucket="only", Key="c", Body=b"z")
    assert (code, status) == ("QuotaExceeded", 403)
    # a copy and a multipart upload are object writes too
    assert error_code(s3.copy_object, Bucket="only", Key="c",
                      CopySource={"Bucket": "only", "Key": "b"}) == "QuotaExceeded"
    upload = s3.create_multipart_upload(Bucket="only", Key="c")["UploadId"]
    etag = s3.upload_part(Bucket="only", Key="c", UploadId=upload, PartNumber=1,
                          Body=b"p")["ETag"]
    assert error_code(s3.complete_multipart_upload, Bucket="only", Key="c", UploadId=upload,
                      MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]}
                      ) == "QuotaExceeded"
    s3.delete_object(Bucket="only", Key="b")
    s3.put_object(Bucket="only", Key="c", Body=b"z")
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="only")["Contents"]) == [
        "a", "c"]


def test_another_accounts_writes_count_against_the_bucket_owner(live):
    owner = account_root(live, "acme")
    other = account_root(live, "other")
    with live.app.app_context():
        other_id = accounts.get_account("other").id
    _set_account(live, "acme", _limit(s3_quota_bucketobjectnumber=1))
    s3 = owner("s3")
    s3.create_bucket(Bucket="shared")
    s3.put_bucket_policy(Bucket="shared", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
            "Action": "s3:PutObject", "Resource": "arn:aws:s3:::shared/*"}]}))
    other("s3").put_object(Bucket="shared", Key="one", Body=b"1")
    assert error_code(other("s3").put_object, Bucket="shared", Key="two",
                      Body=b"2") == "QuotaExceeded"
    assert error_code(s3.put_object, Bucket="shared", Key="two", Body=b"2") == "QuotaExceeded"


# --- IAM ----------------------------------------------------------------------------------

def test_iam_users_groups_roles_profiles(live):
    root = account_root(live, "acme")
    _set_account(live, "acme", _limit(iam_quota_usernumber=2, iam_quota_groupnumber=1,
                                      iam_quota_rolenumber=1, iam_quota_instanceprofilenumber=1))
    iam = root("iam")
    iam.create_user(UserName="one")                     # admin + one = 2
    code, status, body = failure(iam.create_user, UserName="two")
    assert (code, status) == ("LimitExceeded", 409)
    assert body["Error"]["Message"] == "Cannot exceed quota for UsersPerAccount: 2"
    iam.create_group(GroupName="g")
    assert error_code(iam.create_group, GroupName="h") == "LimitExceeded"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust)
    assert error_code(iam.create_role, RoleName="s",
                      AssumeRolePolicyDocument=trust) == "LimitExceeded"
    iam.create_instance_profile(InstanceProfileName="p")
    assert error_code(iam.create_instance_profile,
                      InstanceProfileName="q") == "LimitExceeded"


# --- who sets quotas; the grammar ---------------------------------------------------------

def test_only_the_cloud_admin_sets_account_quotas(live):
    root = account_root(live, "acme")
    iam = root("iam")
    with live.app.app_context():
        key = accounts.first_active_key("acme", "admin")
        key_id, secret = key.id, key.secret
    limit = _doc(_limit(ec2_quota_volumenumber=9))
    # the account's root may not give itself quotas (or take them away)...
    assert error_code(iam.put_user_policy, UserName="admin", PolicyName="q",
                      PolicyDocument=limit) == "AccessDenied"
    status, answer = _euare(live, "PutAccountPolicy", key_id, secret, AccountName="acme",
                            PolicyName="q", PolicyDocument=limit)
    assert (status, _code(answer)) == (403, "AccessDenied")
    # ...an ordinary policy on its admin user stays its own business
    iam.put_user_policy(UserName="admin", PolicyName="plain", PolicyDocument=_doc(ALLOW_ALL))
    _set_account(live, "acme", _limit(ec2_quota_volumenumber=9), name="q")
    assert error_code(iam.delete_user_policy, UserName="admin",
                      PolicyName="q") == "AccessDenied"
    assert error_code(iam.put_user_policy, UserName="admin", PolicyName="q",
                      PolicyDocument=_doc(ALLOW_ALL)) == "AccessDenied"
    # it reads them, both ways
    document = iam.get_user_policy(UserName="admin", PolicyName="q")["PolicyDocument"]
    assert "ec2:quota-volumenumber" in json.dumps(document)
    status, answer = _euare(live, "ListAccountPolicies", key_id, secret, AccountName="acme")
    assert status == 200
    assert sorted(e.text for e in answer.iter() if e.tag.endswith("member")) == ["plain", "q"]
    # the cloud admin reads, lists and deletes; another account's root sees nothing
    status, answer = _euare(live, "GetAccountPolicy", AccountName="acme", PolicyName="q")
    assert status == 200 and "quota-volumenumber" in urllib.parse.unquote(
        next(e.text for e in answer.iter() if e.tag.endswith("PolicyDocument")))
    other = account_root(live, "other")
    assert error_code(other("iam").get_user_policy, UserName="admin",
                      PolicyName="q") == "NoSuchEntity"
    status, answer = _euare(live, "DeleteAccountPolicy", AccountName="acme", PolicyName="q")
    assert status == 200
    # the root sets its users' quotas
    iam.create_user(UserName="dev")
    iam.put_user_policy(UserName="dev", PolicyName="q", PolicyDocument=limit)
    iam.delete_user_policy(UserName="dev", PolicyName="q")


@pytest.mark.parametrize("statement", [
    {"Effect": "Limit", "Action": "ec2:RunInstances", "Resource": "*",
     "Condition": {"NumericLessThan": {"ec2:quota-vminstancenumber": "3"}}},
    {"Effect": "Limit", "Action": "ec2:RunInstances", "Resource": "*",
     "Condition": {"NumericLessThanEquals": {"ec2:quota-nosuchthing": "3"}}},
    {"Effect": "Limit", "Action": "ec2:RunInstances", "Resource": "*",
     "Condition": {"NumericLessThanEquals": {"ec2:quota-vminstancenumber": "2.5"}}},
    {"Effect": "Limit", "Action": "ec2:RunInstances", "Resource": "*"},
    {"Effect": "Limit", "Action": "ec2:RunInstances", "Resource": "*",
     "Condition": {"StringEquals": {"aws:username": "x"}}},
])
def test_malformed_limit_statements_are_refused(live, statement):
    iam = live.client("iam")
    iam.create_user(UserName="u")
    code = error_code(iam.put_user_policy, UserName="u", PolicyName="q",
                      PolicyDocument=_doc(statement))
    assert code == "MalformedPolicyDocument"


def test_limit_statements_only_in_user_and_group_policies_and_grant_nothing(live):
    iam = live.client("iam")
    limit = _doc(_limit(ec2_quota_volumenumber=3))
    assert error_code(iam.create_policy, PolicyName="m",
                      PolicyDocument=limit) == "MalformedPolicyDocument"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=trust)
    assert error_code(iam.put_role_policy, RoleName="r", PolicyName="q",
                      PolicyDocument=limit) == "MalformedPolicyDocument"
    # a user holding only a Limit statement may do nothing
    user = _user(iam, live, "u", _doc(_limit("*", ec2_quota_volumenumber=3)))
    assert error_code(user("ec2").describe_volumes) == "UnauthorizedOperation"


# --- races --------------------------------------------------------------------------------

def _race(root, image, threads: int) -> list[str]:
    """*threads* launches of *image* by the account *root* signs for, released together:
    each one's outcome, "ok" or its error code."""
    outcomes: list[str] = []
    start = threading.Barrier(threads)

    def launch():
        ec2 = root("ec2")
        start.wait()
        try:
            _launch(ec2, image)
            outcomes.append("ok")
        except Exception as error:          # noqa: BLE001 - the code is what is checked
            outcomes.append(getattr(error, "response", {}).get("Error", {}).get("Code",
                                                                                repr(error)))

    workers = [threading.Thread(target=launch) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes


@pytest.mark.parametrize("threads", [10, 50])
def test_concurrent_launches_never_pass_the_limit(roomy, threads):
    live = roomy
    root = account_root(live, "acme")
    image = make_image(live, account="acme")
    _set_account(live, "acme", _limit("ec2:RunInstances", ec2_quota_vminstancenumber=5))
    outcomes = _race(root, image, threads)
    assert outcomes.count("ok") == 5
    assert outcomes.count("InstanceLimitExceeded") == threads - 5
    assert _live_instances(live, "acme") == 5


# --- usage ------------------------------------------------------------------------------

def test_usage_figures_per_account_and_user(roomy):
    live = roomy
    root = account_root(live, "acme")
    image = make_image(live, account="acme")
    iam = root("iam")
    dev = _user(iam, live, "dev", _doc(ALLOW_ALL),
                _doc(_limit(ec2_quota_vminstancenumber=4, ec2_quota_volumetotalsize=50)))
    _launch(dev("ec2"), image, 2)
    ec2 = root("ec2")
    _launch(ec2, image)
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    dev("ec2").create_volume(Size=7, AvailabilityZone=zone)
    ec2.create_volume(Size=1, AvailabilityZone=zone)
    root("s3").create_bucket(Bucket="usage")
    root("s3").put_object(Bucket="usage", Key="k", Body=b"x" * 1500_000)
    _set_account(live, "acme", _limit(ec2_quota_vminstancenumber=10))
    with live.app.test_request_context():
        admin = accounts.principal_of(accounts.get_user("eucalyptus", "admin"))
        service = live.services.iam
        account = {line.key: line for line in service.quota_report(admin, "acme")}
        user = {line.key: line for line in service.quota_report(admin, "acme", "dev")}
    assert (account["ec2:quota-vminstancenumber"].limit,
            account["ec2:quota-vminstancenumber"].used) == (10, 3)
    assert account["ec2:quota-cputotalsize"].used == 3
    assert account["ec2:quota-volumetotalsize"].used == 8
    assert account["ec2:quota-volumenumber"].used == 2
    assert account["s3:quota-bucketnumber"].used == 1
    assert account["s3:quota-buckettotalsize"].used == 2          # MB, rounded up
    assert account["iam:quota-usernumber"].used == 2
    assert account["ec2:quota-snapshotnumber"].limit is None
    assert (user["ec2:quota-vminstancenumber"].limit,
            user["ec2:quota-vminstancenumber"].used) == (4, 2)
    assert (user["ec2:quota-volumetotalsize"].limit,
            user["ec2:quota-volumetotalsize"].used) == (50, 7)


# --- the CLI ----------------------------------------------------------------------------

def test_cli_set_show_and_clear_round_trip(tmp_path):
    from click.testing import CliRunner

    from eucalite.cli.main import main

    live, server = start_live(tmp_path / "data")
    try:
        root = account_root(live, "acme")
        root("iam").create_user(UserName="dev")
        data = ["--data-dir", str(tmp_path / "data")]
        runner = CliRunner()
        done = runner.invoke(main, ["quota", "set", "acme", "--buckets", "1", "--volume-gib",
                                    "100", *data])
        assert done.exit_code == 0, done.output
        assert "s3:quota-bucketnumber\t1\t0\tbuckets" in done.output
        root("s3").create_bucket(Bucket="first")
        assert error_code(root("s3").create_bucket, Bucket="second") == "TooManyBuckets"
        shown = runner.invoke(main, ["quota", "show", "acme", *data])
        assert "s3:quota-bucketnumber\t1\t1\tbuckets" in shown.output
        assert "ec2:quota-volumetotalsize\t100\t0\tGiB" in shown.output
        assert "ec2:quota-snapshotnumber\t-\t0\tsnapshots" in shown.output
        runner.invoke(main, ["quota", "set", "acme", "--user", "dev", "--instances", "2",
                             *data])
        user = runner.invoke(main, ["quota", "show", "acme", "--user", "dev", *data])
        assert "ec2:quota-vminstancenumber\t2\t0\tinstances" in user.output
        cleared = runner.invoke(main, ["quota", "set", "acme", "--clear", "buckets", *data])
        assert "s3:quota-bucketnumber\t-\t1\tbuckets" in cleared.output
        root("s3").create_bucket(Bucket="second")
        bad = runner.invoke(main, ["quota", "set", "acme", "--clear", "nonsense", *data])
        assert bad.exit_code != 0 and "Unknown quota" in bad.output
        missing = runner.invoke(main, ["quota", "show", "nosuch", *data])
        assert missing.exit_code == 1 and "NoSuchEntity" in missing.output
    finally:
        server.shutdown()


def test_a_role_session_counts_against_its_account(roomy):
    live = roomy
    root = account_root(live, "acme")
    image = make_image(live, account="acme")
    with live.app.app_context():
        account_id = accounts.get_account("acme").id
    _set_account(live, "acme", _limit("ec2:RunInstances", ec2_quota_vminstancenumber=1))
    iam = root("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "sts:AssumeRole"}]})
    arn = iam.create_role(RoleName="worker", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName="worker", PolicyName="all", PolicyDocument=_doc(ALLOW_ALL))
    creds = root("sts").assume_role(RoleArn=arn, RoleSessionName="job")["Credentials"]
    session_ec2 = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name=live.region).client(
        "ec2", endpoint_url=live.endpoints["ec2"])
    _launch(root("ec2"), image)
    assert error_code(_launch, session_ec2, image) == "InstanceLimitExceeded"


# --- the volumes a launch makes ---------------------------------------------------------

def _ebs_image(live, ec2) -> str:
    """An EBS-backed image of the caller's: its root a snapshot of a 1 GiB volume (the
    source volume deleted again, so it counts for nothing)."""
    source = new_volume(live, ec2, size=1)
    snapshot = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    ec2.delete_volume(VolumeId=source)
    settle(live)
    return ec2.register_image(Name=f"ebs-{time.monotonic_ns()}", RootDeviceName="/dev/sda1",
                              BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {
                                  "SnapshotId": snapshot["SnapshotId"]}}])["ImageId"]


def _with_volume(ec2, image, size):
    """Launch *image* with a data volume of *size* GiB at /dev/sdf besides its root."""
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": size}}])["Instances"]


def _used(live, account, user=None) -> dict[str, int]:
    with live.app.test_request_context():
        admin = accounts.principal_of(accounts.get_user("eucalyptus", "admin"))
        return {line.key: line.used for line in live.services.iam.quota_report(
            admin, account, user)}


def _held(live, ec2, account) -> tuple[int, list[str]]:
    """(every instance row of *account*, whatever its state; its volume ids)."""
    with live.app.app_context():
        table = db.metadata.tables["instances"]
        rows = db.session.execute(db.select(db.func.count()).select_from(table).where(
            table.c.owner_id == accounts.get_account(account).id)).scalar()
    return rows, sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"])


def test_a_launchs_volumes_count_against_the_volume_quotas(roomy):
    live = roomy
    ec2 = account_root(live, "acme")("ec2")
    image = _ebs_image(live, ec2)
    _set_account(live, "acme", _limit(ec2_quota_volumenumber=2,
                                          ec2_quota_volumetotalsize=10))
    [first] = _with_volume(ec2, image, 2)             # root (1 GiB) + sdf: 2 volumes, 3 GiB
    # counted at once, not when the first boot writes them
    assert (_used(live, "acme")["ec2:quota-volumenumber"],
            _used(live, "acme")["ec2:quota-volumetotalsize"]) == (2, 3)
    held = _held(live, ec2, "acme")
    code, status, body = failure(_launch, ec2, image)             # its root: a third volume
    assert (code, status) == ("VolumeLimitExceeded", 400)
    assert "quota 2" in body["Error"]["Message"]
    assert _held(live, ec2, "acme") == held                       # no instance, no volume

    _set_account(live, "acme", _limit(ec2_quota_volumenumber=10,
                                          ec2_quota_volumetotalsize=10))
    code, _status, body = failure(_with_volume, ec2, image, 7)    # 3 + 1 + 7 GiB > 10
    assert code == "VolumeLimitExceeded" and "10 GiB" in body["Error"]["Message"]
    assert _held(live, ec2, "acme") == held
    [second] = _with_volume(ec2, image, 6)                        # 3 + 1 + 6 GiB: 10
    assert error_code(_launch, ec2, image) == "VolumeLimitExceeded"  # one more GiB: 11
    used = _used(live, "acme")
    assert (used["ec2:quota-volumenumber"], used["ec2:quota-volumetotalsize"]) == (4, 10)
    settle(live)
    for instance in (first, second):
        item = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])[
            "Reservations"][0]["Instances"][0]
        assert item["State"]["Name"] == "running"
        assert sorted(m["DeviceName"] for m in item["BlockDeviceMappings"]) == [
            "/dev/sda1", "/dev/sdf"]
    assert sorted((v["Size"], v["State"]) for v in ec2.describe_volumes()["Volumes"]) == [
        (1, "in-use"), (1, "in-use"), (2, "in-use"), (6, "in-use")]


def test_a_users_launch_volumes_are_its_own_and_bound_by_create_volume_quotas(roomy):
    live = roomy
    root = account_root(live, "acme")
    image = _ebs_image(live, root("ec2"))
    dev = _user(root("iam"), live, "dev", _doc(ALLOW_ALL), _doc(_limit(
        "ec2:CreateVolume", ec2_quota_volumenumber=1)))("ec2")
    [instance] = _launch(dev, image)
    # a quota written for CreateVolume binds the volumes a launch makes too
    assert error_code(_launch, dev, image) == "VolumeLimitExceeded"
    assert _launch(root("ec2"), image)                  # the account itself has no quota
    assert _used(live, "acme", "dev")["ec2:quota-volumenumber"] == 1
    assert _used(live, "acme")["ec2:quota-volumenumber"] == 2
    with live.app.app_context():
        volumes = db.metadata.tables["volumes"]
        creator = db.session.execute(db.select(volumes.c.creator_user_id).where(
            volumes.c.instance_id == instance["InstanceId"])).scalar()
        assert creator == accounts.get_user("acme", "dev").id


def test_concurrent_ebs_launches_never_pass_the_volume_quota(roomy):
    live = roomy
    root = account_root(live, "acme")
    image = _ebs_image(live, root("ec2"))
    _set_account(live, "acme", _limit(ec2_quota_volumenumber=3))
    outcomes = _race(root, image, 8)
    assert sorted(outcomes) == ["VolumeLimitExceeded"] * 5 + ["ok"] * 3
    assert _used(live, "acme")["ec2:quota-volumenumber"] == 3
