"""What images carry beyond their registration, through boto3 and the aws CLI against a live
eucalite (fake hypervisor): CopyImage's ClientToken (a retry answers the first copy),
deregistration protection and its 24-hour cooldown, ImdsSupport (and the metadata options it
gives the instances launched from the image), sourceInstanceId/sourceImageId/
sourceImageRegion and lastLaunchedTime in DescribeImages, with their filters and AWS's
error codes."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from awsutil import error_code
from ebsutil import new_volume, settle, wait_snapshot, write_pattern
from ec2util import make_image, wait_for_state
from s3util import second_account
from werkzeug.test import Client

from eucalite.compute import metadata
from eucalite.compute.models import Image, Instance
from eucalite.db import db

REGION = "eucalyptus"


def image_of(ec2, image_id) -> dict:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def found(ec2, name, *values) -> list[str]:
    return sorted(i["ImageId"] for i in ec2.describe_images(
        Filters=[{"Name": name, "Values": list(values)}])["Images"])


def own_images(ec2) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def launch(live, ec2, image_id, **kwargs) -> dict:
    """A running instance of *image_id*: its DescribeInstances item."""
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    **kwargs)["Instances"][0]["InstanceId"]
    settle(live)
    return wait_for_state(ec2, [instance_id], "running")[0]


def ebs_snapshot(live, ec2) -> str:
    source = new_volume(live, ec2, size=1)
    write_pattern(live, source, 0, b"root " * 100)
    return wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])[
        "SnapshotId"]


def register_ebs(ec2, snapshot_id, name, **kwargs) -> str:
    return ec2.register_image(
        Name=name, RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot_id}}],
        **kwargs)["ImageId"]


def set_column(live, image_id, **values) -> None:
    with live.app.app_context():
        image = db.session.get(Image, image_id)
        for name, value in values.items():
            setattr(image, name, value)
        db.session.commit()


@pytest.fixture
def cli(ebs):
    aws = str(Path(sys.executable).parent / "aws")

    def run(*args) -> subprocess.CompletedProcess:
        return subprocess.run([aws, "ec2", *args, "--output", "json"], env=ebs.env(),
                              capture_output=True, text=True, timeout=60)
    return run


# --- CopyImage's ClientToken and the source columns ----------------------------------------

def test_a_retried_copy_answers_the_first_copy(ebs):
    ec2 = ebs.client("ec2")
    source = make_image(ebs, "emi-0000c0de", location="bundles/x.manifest.xml",
                        is_public=True)
    another = make_image(ebs, "emi-0000c0df", is_public=True)
    copy = ec2.copy_image
    first = copy(SourceRegion=REGION, SourceImageId=source, Name="copied once",
                 ClientToken="retry-me")["ImageId"]
    before = own_images(ec2)
    assert copy(SourceRegion=REGION, SourceImageId=source, Name="copied once",
                ClientToken="retry-me")["ImageId"] == first
    assert own_images(ec2) == before                    # nothing new
    # The same token asking for something else is AWS's IdempotentParameterMismatch.
    for changed in ({"Name": "another name"}, {"Description": "described now"},
                    {"SourceImageId": another}):
        request = {"SourceRegion": REGION, "SourceImageId": source, "Name": "copied once",
                   "ClientToken": "retry-me", **changed}
        assert error_code(copy, **request) == "IdempotentParameterMismatch", changed
    assert own_images(ec2) == before
    # Without a token (boto3 makes a fresh one each call) every call copies.
    second = copy(SourceRegion=REGION, SourceImageId=source, Name="copied twice")["ImageId"]
    assert second not in before
    assert error_code(copy, SourceRegion=REGION, SourceImageId=source, Name="too long",
                      ClientToken="x" * 65) == "InvalidParameterValue"
    # A token is the caller's: another account's same token makes its own copy.
    other, _ = second_account(ebs, service="ec2")
    theirs = other.copy_image(SourceRegion=REGION, SourceImageId=source, Name="copied once",
                              ClientToken="retry-me")["ImageId"]
    assert theirs not in (first, second)

    item = image_of(ec2, first)
    assert (item["SourceImageId"], item["SourceImageRegion"]) == (source, REGION)
    assert "SourceInstanceId" not in item
    original = image_of(ec2, source)
    assert "SourceImageId" not in original and "SourceImageRegion" not in original
    assert found(ec2, "source-image-id", source) == sorted([first, second])
    assert found(ec2, "source-image-region", REGION) == sorted([first, second])
    assert found(ec2, "source-image-id", "emi-0000ffff") == []


def test_a_copy_carries_imds_support(ebs):
    ec2 = ebs.client("ec2")
    image = make_image(ebs, "emi-0000d0d0", imds_support="v2.0")
    plain = make_image(ebs, "emi-0000d0d1")
    copy = ec2.copy_image(SourceRegion=REGION, SourceImageId=image, Name="imds copy")
    assert image_of(ec2, copy["ImageId"])["ImdsSupport"] == "v2.0"
    copy = ec2.copy_image(SourceRegion=REGION, SourceImageId=plain, Name="plain copy")
    assert "ImdsSupport" not in image_of(ec2, copy["ImageId"])


def test_source_instance_and_last_launched_time(ebs):
    ec2 = ebs.client("ec2")
    made = make_image(ebs, "emi-0000babe", source_instance_id="i-0123456789abcdef0")
    never = make_image(ebs, "emi-0000beef")
    item = image_of(ec2, made)
    assert item["SourceInstanceId"] == "i-0123456789abcdef0"
    assert found(ec2, "source-instance-id", "i-0123456789abcdef0") == [made]
    assert found(ec2, "source-instance-id", "i-*") == [made]

    assert "LastLaunchedTime" not in item
    assert ec2.describe_image_attribute(ImageId=made, Attribute="lastLaunchedTime").get(
        "LastLaunchedTime", {}) == {}
    instance = launch(ebs, ec2, made)
    launched = image_of(ec2, made)["LastLaunchedTime"]
    assert launched.startswith(instance["LaunchTime"].strftime("%Y-%m-%dT%H:%M"))
    assert ec2.describe_image_attribute(ImageId=made, Attribute="lastLaunchedTime")[
        "LastLaunchedTime"]["Value"] == launched
    assert "LastLaunchedTime" not in image_of(ec2, never)


# --- deregistration protection --------------------------------------------------------------

def test_deregistration_protection_refuses_deregister_image(ebs):
    ec2 = ebs.client("ec2")
    image = make_image(ebs, "emi-0000aaaa")

    def protection() -> str:
        described = ec2.describe_image_attribute(ImageId=image,
                                                 Attribute="deregistrationProtection")
        assert described["DeregistrationProtection"]["Value"] == \
            image_of(ec2, image)["DeregistrationProtection"]
        return described["DeregistrationProtection"]["Value"]
    assert protection() == "disabled"
    assert ec2.enable_image_deregistration_protection(ImageId=image)["Return"] == \
        "enabled-without-cooldown"
    assert protection() == "enabled-without-cooldown"
    assert error_code(ec2.deregister_image, ImageId=image) == "OperationNotPermitted"
    assert image_of(ec2, image)["State"] == "available"      # still there
    assert ec2.disable_image_deregistration_protection(ImageId=image)["Return"] == "disabled"
    assert protection() == "disabled"
    ec2.deregister_image(ImageId=image)
    assert error_code(ec2.describe_images, ImageIds=[image]) == "InvalidAMIID.NotFound"


def test_a_cooldown_keeps_the_protection_for_a_day(ebs):
    ec2 = ebs.client("ec2")
    image = make_image(ebs, "emi-0000bbbb")
    assert ec2.enable_image_deregistration_protection(ImageId=image, WithCooldown=True)[
        "Return"] == "enabled-with-cooldown"
    assert image_of(ec2, image)["DeregistrationProtection"] == "enabled-with-cooldown"
    answer = ec2.disable_image_deregistration_protection(ImageId=image)["Return"]
    assert answer.startswith("disabled-until ")
    until = dt.datetime.strptime(answer.split(" ", 1)[1], "%Y-%m-%dT%H:%M:%S.000Z")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert dt.timedelta(hours=23) < until - now <= dt.timedelta(hours=24)
    assert image_of(ec2, image)["DeregistrationProtection"] == answer
    assert found(ec2, "image-id", image) == [image]
    assert error_code(ec2.deregister_image, ImageId=image) == "OperationNotPermitted"
    # Disabling again does not end the cooldown.
    assert ec2.disable_image_deregistration_protection(ImageId=image)["Return"] == answer
    assert error_code(ec2.deregister_image, ImageId=image) == "OperationNotPermitted"

    # Enabling again (without cooldown) ends it: the next disable frees the image at once.
    ec2.enable_image_deregistration_protection(ImageId=image)
    assert ec2.disable_image_deregistration_protection(ImageId=image)["Return"] == "disabled"
    ec2.deregister_image(ImageId=image)

    # A day later (moved back here rather than waited for) the image may go.
    later = make_image(ebs, "emi-0000cccc")
    ec2.enable_image_deregistration_protection(ImageId=later, WithCooldown=True)
    ec2.disable_image_deregistration_protection(ImageId=later)
    set_column(ebs, later, deregistration_protected_until=now - dt.timedelta(seconds=1))
    assert image_of(ec2, later)["DeregistrationProtection"] == "disabled"
    ec2.deregister_image(ImageId=later)


def test_deregistration_protection_is_the_owners(ebs):
    ec2 = ebs.client("ec2")
    other, other_id = second_account(ebs, service="ec2")
    shared = make_image(ebs, "emi-0000dddd")
    ec2.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": other_id}]})
    private = make_image(ebs, "emi-0000eeee")
    for action in (other.enable_image_deregistration_protection,
                   other.disable_image_deregistration_protection):
        assert error_code(action, ImageId=shared) == "AuthFailure"
        assert error_code(action, ImageId=private) == "InvalidAMIID.NotFound"
        assert error_code(action, ImageId="emi-12345678") == "InvalidAMIID.NotFound"
        assert error_code(action, ImageId="ami-nothing") == "InvalidAMIID.Malformed"
    assert image_of(other, shared)["DeregistrationProtection"] == "disabled"
    ec2.enable_image_deregistration_protection(ImageId=shared)
    assert image_of(other, shared)["DeregistrationProtection"] == "enabled-without-cooldown"


# --- ImdsSupport ------------------------------------------------------------------------------

class Imds:
    """The metadata service as an instance's address sees it."""

    def __init__(self, live, instance_id: str, address: str):
        with live.app.app_context():
            db.session.get(Instance, instance_id).private_ip = address
            db.session.commit()
        self.client = Client(metadata.make_app(live.app))
        self.address = address

    def get(self, path: str, token: str | None = None):
        headers = {metadata.TOKEN_HEADER: token} if token else {}
        return self.client.get(path, headers=headers,
                               environ_overrides={"REMOTE_ADDR": self.address})

    def token(self) -> str:
        return self.client.put("/latest/api/token", headers={metadata.TTL_HEADER: "60"},
                               environ_overrides={"REMOTE_ADDR": self.address}).text


def test_imds_support_requires_tokens_on_its_instances(ebs):
    ec2 = ebs.client("ec2")
    snapshot_id = ebs_snapshot(ebs, ec2)
    assert error_code(register_ebs, ec2, snapshot_id, "imds v1", ImdsSupport="v1.0") \
        == "InvalidParameterValue"
    image = register_ebs(ec2, snapshot_id, "imds v2", ImdsSupport="v2.0")
    assert image_of(ec2, image)["ImdsSupport"] == "v2.0"
    assert ec2.describe_image_attribute(ImageId=image, Attribute="imdsSupport")[
        "ImdsSupport"] == {"Value": "v2.0"}
    assert found(ec2, "image-id", image) == [image]

    instance = launch(ebs, ec2, image)
    options = instance["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 2)
    imds = Imds(ebs, instance["InstanceId"], "10.9.7.1")
    assert imds.get("/latest/meta-data/ami-id").status_code == 401       # IMDSv1 refused
    assert imds.get("/latest/meta-data/ami-id", imds.token()).text == image

    # The launch's own MetadataOptions win over the image's.
    relaxed = launch(ebs, ec2, image, MetadataOptions={"HttpTokens": "optional"})
    options = relaxed["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("optional", 2)
    assert Imds(ebs, relaxed["InstanceId"], "10.9.7.2").get(
        "/latest/meta-data/ami-id").text == image

    # An image without it leaves the defaults alone.
    plain = launch(ebs, ec2, register_ebs(ec2, snapshot_id, "no imds"))
    assert "ImdsSupport" not in image_of(ec2, plain["ImageId"])
    options = plain["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("optional", 1)


def test_modify_image_attribute_imds_support(ebs):
    ec2 = ebs.client("ec2")
    image = make_image(ebs, "emi-0000ffff")
    other, other_id = second_account(ebs, service="ec2")
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"UserId": other_id}]})
    assert "ImdsSupport" not in image_of(ec2, image)
    assert ec2.describe_image_attribute(ImageId=image, Attribute="imdsSupport").get(
        "ImdsSupport", {}) == {}
    modify = ec2.modify_image_attribute
    assert error_code(modify, ImageId=image, ImdsSupport={"Value": "v1.0"}) \
        == "InvalidParameterValue"
    assert error_code(modify, ImageId="emi-12345678", ImdsSupport={"Value": "v2.0"}) \
        == "InvalidAMIID.NotFound"
    assert error_code(other.modify_image_attribute, ImageId=image,
                      ImdsSupport={"Value": "v2.0"}) == "AuthFailure"
    assert "ImdsSupport" not in image_of(ec2, image)
    modify(ImageId=image, ImdsSupport={"Value": "v2.0"})
    assert image_of(ec2, image)["ImdsSupport"] == "v2.0"
    # The Attribute/Value form, and again: it stays (AWS: it cannot be undone).
    modify(ImageId=image, Attribute="imdsSupport", Value="v2.0")
    assert ec2.describe_image_attribute(ImageId=image, Attribute="imdsSupport")[
        "ImdsSupport"] == {"Value": "v2.0"}
    assert error_code(modify, ImageId=image, Attribute="imdsSupport", Value="") \
        == "InvalidParameterValue"
    assert error_code(ec2.reset_image_attribute, ImageId=image, Attribute="imdsSupport") \
        == "InvalidParameterValue"
    assert image_of(other, image)["ImdsSupport"] == "v2.0"
    instance = launch(ebs, other, image)
    assert instance["MetadataOptions"]["HttpTokens"] == "required"


# --- the aws CLI ------------------------------------------------------------------------------

def test_aws_cli_protection_and_imds_support(ebs, cli):
    ec2 = ebs.client("ec2")
    image = make_image(ebs, "emi-0000abab", location="bundles/x.manifest.xml")

    def ok(*args) -> dict:
        answer = cli(*args)
        assert answer.returncode == 0, answer.stderr
        return json.loads(answer.stdout) if answer.stdout.strip() else {}
    assert ok("enable-image-deregistration-protection", "--image-id", image,
              "--with-cooldown") == {"Return": "enabled-with-cooldown"}
    [item] = ok("describe-images", "--image-ids", image)["Images"]
    assert item["DeregistrationProtection"] == "enabled-with-cooldown"
    refused = cli("deregister-image", "--image-id", image)
    assert refused.returncode != 0 and "OperationNotPermitted" in refused.stderr
    assert ok("disable-image-deregistration-protection", "--image-id", image)[
        "Return"].startswith("disabled-until ")

    ok("modify-image-attribute", "--image-id", image, "--imds-support", "Value=v2.0")
    assert ok("describe-image-attribute", "--image-id", image, "--attribute",
              "imdsSupport")["ImdsSupport"] == {"Value": "v2.0"}
    snapshot_id = ebs_snapshot(ebs, ec2)
    registered = ok("register-image", "--name", "cli imds", "--root-device-name",
                    "/dev/sda1", "--block-device-mappings",
                    f"DeviceName=/dev/sda1,Ebs={{SnapshotId={snapshot_id}}}",
                    "--imds-support", "v2.0")["ImageId"]
    assert image_of(ec2, registered)["ImdsSupport"] == "v2.0"



def test_aws_cli_copy_image_client_token(ebs, cli):
    ec2 = ebs.client("ec2")
    source = make_image(ebs, "emi-0000acac", location="bundles/x.manifest.xml")
    copy_args = ("copy-image", "--source-region", REGION, "--source-image-id", source,
                 "--name", "cli copy", "--client-token", "cli-token-1")
    first = cli(*copy_args)
    assert first.returncode == 0, first.stderr
    copy_id = json.loads(first.stdout)["ImageId"]
    again = cli(*copy_args)
    assert again.returncode == 0 and json.loads(again.stdout)["ImageId"] == copy_id
    mismatch = cli("copy-image", "--source-region", REGION, "--source-image-id", source,
                   "--name", "other name", "--client-token", "cli-token-1")
    assert mismatch.returncode != 0 and "IdempotentParameterMismatch" in mismatch.stderr
    filtered = cli("describe-images", "--filters", f"Name=source-image-id,Values={source}")
    assert [i["ImageId"] for i in json.loads(filtered.stdout)["Images"]] == [copy_id]
    assert image_of(ec2, copy_id)["SourceImageRegion"] == REGION


# --- the console ------------------------------------------------------------------------------

def test_console_image_page_shows_the_columns(tmp_path):
    from consoleutil import Console, console_app

    from eucalite import accounts

    app = console_app(tmp_path)
    try:
        with app.app_context():
            owner = accounts.get_account("eucalyptus").id
            db.session.add(Image(id="emi-0000a0a0", owner_id=owner, kind="machine",
                                 name="source", state="available"))
            db.session.add(Image(id="emi-0000b0b0", owner_id=owner, kind="machine",
                                 name="the copy", state="available", imds_support="v2.0",
                                 source_image_id="emi-0000a0a0",
                                 source_instance_id="i-0123456789abcdef0",
                                 deregistration_protection="enabled-with-cooldown"))
            db.session.commit()
        console = Console(app)
        page = console.text("/console/images/emi-0000b0b0")
        assert "i-0123456789abcdef0" in page
        assert 'href="/console/images/emi-0000a0a0"' in page
        assert "v2.0 (its instances require IMDSv2 tokens)" in page
        assert "<th>Deregistration protection</th><td>enabled-with-cooldown</td>" in page
        plain = console.text("/console/images/emi-0000a0a0")
        assert "<th>Deregistration protection</th><td>disabled</td>" in plain
        assert "IMDS support" not in plain and "Copied from image" not in plain
    finally:
        app.extensions["eucalite"].compute.worker.shutdown()
