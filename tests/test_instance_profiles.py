"""Instance profiles reaching guests: RunInstances with ``IamInstanceProfile`` (by name or
ARN; AWS's error for an unknown one), DescribeInstances' ``IamInstanceProfile``, and the
metadata service's ``iam/info`` and ``iam/security-credentials/<role>``: a role session
named after the instance, valid six hours, replaced when less than an hour remains, and
working for STS and EC2; a role that does not trust ``ec2.amazonaws.com`` gets AWS's
``AssumeRoleUnauthorizedAccess`` and no credentials.

On the fake hypervisor, through the metadata WSGI app (test_metadata's helpers); the real
guest's read is in test_instance_profiles_real.py. Profiles are written as records (their
IAM API has its own tests)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from awsutil import error_code, failure
from liveutil import free_port, start_live_node, stop_live
from test_metadata import Imds, launch
from test_sts import ALL, client, make_user, trust
from eucalite import accounts, ids
from eucalite.db import db
from eucalite.identity import InlinePolicy, InstanceProfile, InstanceProfileRole, Role, StsSession

EC2_TRUST = trust(Service="ec2.amazonaws.com")


@pytest.fixture
def fake_cloud(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def make_profile(live, name: str, role_name: str, trust_policy: str = EC2_TRUST,
                 path: str = "/") -> tuple[str, str]:
    """An instance profile holding a new role (with an allow-all inline policy) of the
    cloud admin's account: (profile ARN, profile id)."""
    with live.app.app_context():
        account_id = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        role = Role(id=ids.unique_id("AROA"), account_id=account_id, name=role_name,
                    trust_policy=trust_policy)
        profile = InstanceProfile(id=ids.unique_id("AIPA"), account_id=account_id,
                                  name=name, path=path)
        db.session.add_all([role, profile])
        db.session.flush()
        db.session.add_all([InlinePolicy(role_id=role.id, name="all", document=ALL),
                            InstanceProfileRole(profile_id=profile.id, role_id=role.id)])
        db.session.commit()
        return f"arn:aws:iam::{account_id}:instance-profile{path}{name}", profile.id


def test_launch_with_a_profile_and_its_credentials(fake_cloud):
    live = fake_cloud
    arn, profile_id = make_profile(live, "web", "web-role", path="/app/")
    instance_id = launch(live, "10.9.1.5", IamInstanceProfile={"Name": "web"})
    described = live.client("ec2").describe_instances(InstanceIds=[instance_id])
    instance = described["Reservations"][0]["Instances"][0]
    assert instance["IamInstanceProfile"] == {"Arn": arn, "Id": profile_id}

    imds = Imds(live, "10.9.1.5")
    assert "iam/" in imds.text("/latest/meta-data/").splitlines()
    assert imds.text("/latest/meta-data/iam/").splitlines() == ["info",
                                                                "security-credentials/"]
    info = json.loads(imds.text("/latest/meta-data/iam/info"))
    assert (info["Code"], info["InstanceProfileArn"], info["InstanceProfileId"]) == \
        ("Success", arn, profile_id)
    assert imds.text("/latest/meta-data/iam/security-credentials/") == "web-role"
    text = imds.text("/latest/meta-data/iam/security-credentials/web-role")
    assert '"Code" : "Success"' in text             # AWS's pretty-printing
    creds = json.loads(text)
    assert creds["Type"] == "AWS-HMAC" and creds["AccessKeyId"].startswith("ASIA")
    expiration = dt.datetime.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    assert expiration - accounts.utcnow() > dt.timedelta(hours=5, minutes=55)

    session = {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey":
               creds["SecretAccessKey"], "SessionToken": creds["Token"]}
    me = client(live, "sts", session).get_caller_identity()
    assert me["Arn"].endswith(f":assumed-role/web-role/{instance_id}")
    assert me["UserId"].endswith(f":{instance_id}")
    client(live, "ec2", session).describe_instances(InstanceIds=[instance_id])

    # The same credentials while more than an hour remains; fresh ones after that.
    again = json.loads(imds.text("/latest/meta-data/iam/security-credentials/web-role"))
    assert again["AccessKeyId"] == creds["AccessKeyId"]
    with live.app.app_context():
        db.session.get(StsSession, creds["AccessKeyId"]).expires = \
            accounts.utcnow() + dt.timedelta(minutes=50)
        db.session.commit()
    rotated = json.loads(imds.text("/latest/meta-data/iam/security-credentials/web-role"))
    assert rotated["AccessKeyId"] != creds["AccessKeyId"]
    fresh = dt.datetime.strptime(rotated["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    assert fresh - accounts.utcnow() > dt.timedelta(hours=5, minutes=55)
    # The old ones still work until they expire, as on AWS.
    assert client(live, "sts", session).get_caller_identity()


def test_launch_by_arn_and_unknown_profiles(fake_cloud):
    live = fake_cloud
    arn, profile_id = make_profile(live, "by-arn", "arn-role")
    instance_id = launch(live, "10.9.1.6", IamInstanceProfile={"Arn": arn})
    instance = live.client("ec2").describe_instances(InstanceIds=[instance_id])[
        "Reservations"][0]["Instances"][0]
    assert instance["IamInstanceProfile"]["Id"] == profile_id
    ec2 = live.client("ec2")
    image = instance["ImageId"]
    code, status, response = failure(ec2.run_instances, ImageId=image, MinCount=1,
                                     MaxCount=1, IamInstanceProfile={"Name": "nope"})
    assert (code, status) == ("InvalidParameterValue", 400)
    assert response["Error"]["Message"] == ("Value (nope) for parameter "
                                            "iamInstanceProfile.name is invalid. Invalid IAM "
                                            "Instance Profile name")
    wrong_arn = arn.replace("by-arn", "missing")
    code, _, response = failure(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                                IamInstanceProfile={"Arn": wrong_arn})
    assert code == "InvalidParameterValue" and "iamInstanceProfile.arn" in \
        response["Error"]["Message"]
    # Nothing was launched by the refused requests.
    reservations = ec2.describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in reservations) == 1


def test_a_role_ec2_may_not_assume_gets_no_credentials(fake_cloud):
    live = fake_cloud
    make_profile(live, "untrusted", "locked", trust_policy=trust(
        AWS="arn:aws:iam::123456789012:root"))
    launch(live, "10.9.1.7", IamInstanceProfile={"Name": "untrusted"})
    imds = Imds(live, "10.9.1.7")
    info = json.loads(imds.text("/latest/meta-data/iam/info"))
    assert info["Code"] == "AssumeRoleUnauthorizedAccess"
    assert "EC2 cannot assume the role locked" in info["Message"]
    creds = json.loads(imds.text("/latest/meta-data/iam/security-credentials/locked"))
    assert "AccessKeyId" not in creds and creds["Code"] == "AssumeRoleUnauthorizedAccess"


def test_no_profile_no_iam_tree(fake_cloud):
    launch(fake_cloud, "10.9.1.8")
    imds = Imds(fake_cloud, "10.9.1.8")
    assert "iam/" not in imds.text("/latest/meta-data/").splitlines()
    assert imds.get("/latest/meta-data/iam/info").status_code == 404


# --- associations after launch ------------------------------------------------------------

def test_associate_replace_disassociate_and_describe(fake_cloud):
    live = fake_cloud
    ec2 = live.client("ec2")
    first_arn, first_id = make_profile(live, "first", "first-role")
    second_arn, second_id = make_profile(live, "second", "second-role")
    instance_id = launch(live, "10.9.1.9")
    imds = Imds(live, "10.9.1.9")
    assert ec2.describe_iam_instance_profile_associations()[
        "IamInstanceProfileAssociations"] == []

    made = ec2.associate_iam_instance_profile(IamInstanceProfile={"Name": "first"},
                                              InstanceId=instance_id)
    association = made["IamInstanceProfileAssociation"]
    assert association["State"] == "associating"
    assert association["IamInstanceProfile"] == {"Arn": first_arn, "Id": first_id}
    assert association["AssociationId"].startswith("iip-assoc-")
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["IamInstanceProfile"]["Id"] == first_id
    assert imds.text("/latest/meta-data/iam/security-credentials/") == "first-role"
    # One association per instance.
    code, _, response = failure(ec2.associate_iam_instance_profile,
                                IamInstanceProfile={"Name": "second"}, InstanceId=instance_id)
    assert code == "IncorrectState" and instance_id in response["Error"]["Message"]

    listed = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])[
        "IamInstanceProfileAssociations"]
    assert [(a["AssociationId"], a["State"]) for a in listed] == [
        (association["AssociationId"], "associated")]

    replaced = ec2.replace_iam_instance_profile_association(
        IamInstanceProfile={"Arn": second_arn},
        AssociationId=association["AssociationId"])["IamInstanceProfileAssociation"]
    assert replaced["IamInstanceProfile"]["Id"] == second_id
    assert replaced["AssociationId"] != association["AssociationId"]
    # The guest's next read gets the new role's credentials.
    assert imds.text("/latest/meta-data/iam/security-credentials/") == "second-role"
    creds = json.loads(imds.text("/latest/meta-data/iam/security-credentials/second-role"))
    assert creds["Code"] == "Success"

    gone = ec2.disassociate_iam_instance_profile(AssociationId=replaced["AssociationId"])
    assert gone["IamInstanceProfileAssociation"]["State"] == "disassociating"
    assert "IamInstanceProfile" not in ec2.describe_instances(InstanceIds=[instance_id])[
        "Reservations"][0]["Instances"][0]
    assert "iam/" not in imds.text("/latest/meta-data/").splitlines()
    assert error_code(ec2.disassociate_iam_instance_profile,
                      AssociationId=replaced["AssociationId"]) \
        == "InvalidAssociationID.NotFound"
    assert error_code(ec2.describe_iam_instance_profile_associations,
                      AssociationIds=["iip-assoc-0123456789abcdef0"]) \
        == "InvalidAssociationID.NotFound"


def test_handing_a_role_to_an_instance_needs_pass_role(fake_cloud):
    """Launching with a profile (or associating one) needs iam:PassRole on its role, as on
    AWS: otherwise whoever may launch could read any role's credentials from the metadata
    service."""
    live = fake_cloud
    make_profile(live, "powerful", "admin-role")
    image = launch(live, "10.9.1.10")     # registers the image (as the root)
    image_id = live.client("ec2").describe_instances(InstanceIds=[image])[
        "Reservations"][0]["Instances"][0]["ImageId"]
    ec2_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})
    with_pass = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]})
    launcher = client(live, "ec2", make_user(live, accounts.ADMIN_ACCOUNT, "launcher",
                                             ec2_only)[:2])
    code, _, response = failure(launcher.run_instances, ImageId=image_id, MinCount=1,
                                MaxCount=1, IamInstanceProfile={"Name": "powerful"})
    assert code == "UnauthorizedOperation"
    assert "Encoded authorization failure message" in response["Error"]["Message"]
    plain = launcher.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)
    plain_id = plain["Instances"][0]["InstanceId"]
    assert error_code(launcher.associate_iam_instance_profile,
                      IamInstanceProfile={"Name": "powerful"}, InstanceId=plain_id) \
        == "UnauthorizedOperation"
    trusted = client(live, "ec2", make_user(live, accounts.ADMIN_ACCOUNT, "trusted",
                                            with_pass)[:2])
    launched = trusted.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                     IamInstanceProfile={"Name": "powerful"})
    assert launched["Instances"][0]["IamInstanceProfile"]["Arn"].endswith(
        ":instance-profile/powerful")


def test_botocore_instance_metadata_provider_gets_working_credentials(fake_cloud, monkeypatch):
    """What boto3 inside a guest does with no keys configured: botocore's own
    InstanceMetadataProvider (IMDSv2 token, role name, then its credentials) over HTTP."""
    from botocore.credentials import InstanceMetadataProvider
    from botocore.utils import InstanceMetadataFetcher

    from eucalite.compute import metadata

    live = fake_cloud
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")     # conftest keeps tests off IMDS
    make_profile(live, "sdk", "sdk-role")
    instance_id = launch(live, "127.0.0.1", IamInstanceProfile={"Name": "sdk"})
    port = free_port()
    server = metadata.serve(live.app, "127.0.0.1", port)
    try:
        fetcher = InstanceMetadataFetcher(timeout=5, num_attempts=1,
                                          base_url=f"http://127.0.0.1:{port}")
        found = InstanceMetadataProvider(iam_role_fetcher=fetcher).load()
        assert found is not None and found.method == "iam-role"
        frozen = found.get_frozen_credentials()
        session = {"AccessKeyId": frozen.access_key, "SecretAccessKey": frozen.secret_key,
                   "SessionToken": frozen.token}
        me = client(live, "sts", session).get_caller_identity()
        assert me["Arn"].endswith(f":assumed-role/sdk-role/{instance_id}")
    finally:
        server.shutdown()
