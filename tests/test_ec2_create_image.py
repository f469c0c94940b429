"""CreateImage, CopyImage and every image attribute through boto3 and the aws CLI against a
live eucalite (fake hypervisor, volumes exported as local files): an EBS-backed instance's
volumes become snapshots of a new EMI that is pending until they complete, then launches
with their data; the errors AWS answers. The same over a real guest is
tests/test_create_image_real.py."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from awsutil import error_code
from ebsutil import new_volume, read_volume, settle, volume, wait_snapshot, write_pattern
from ec2util import make_image
from s3util import second_account

from eucalite.ebs import snapshots as ebs_snapshots

ROOT_DATA = b"the root of the first instance " * 100
DATA = b"a data volume's bytes " * 100


def read_at(live, volume_id, size) -> bytes:
    return read_volume(live, volume_id, 0, size)


def image_of(ec2, image_id) -> dict:
    return ec2.describe_images(ImageIds=[image_id])["Images"][0]


def wait_image(live, ec2, image_id, timeout=60) -> dict:
    """DescribeImages' item once the image is no longer pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        settle(live)
        item = image_of(ec2, image_id)
        if item["State"] != "pending":
            return item
        time.sleep(0.05)
    raise AssertionError(f"{image_id} still pending")


def ebs_image(live, ec2, name="ebs-root") -> str:
    """An EBS-backed EMI whose root snapshot holds ROOT_DATA."""
    source = new_volume(live, ec2, size=1)
    write_pattern(live, source, 0, ROOT_DATA)
    snap = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    return ec2.register_image(
        Name=name, RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snap["SnapshotId"]}},
                             {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}]
    )["ImageId"]


def launch(live, ec2, image_id) -> tuple[str, dict]:
    """A running instance of *image_id* and its volumes by device."""
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(live)
    item = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    assert item["State"]["Name"] == "running", item["State"]
    return instance_id, {m["DeviceName"]: m["Ebs"]["VolumeId"]
                         for m in item["BlockDeviceMappings"]}


@pytest.fixture
def instance(ebs):
    """(live, ec2, instance id, root volume id, data volume id): a running EBS-backed
    instance with a data volume holding DATA at /dev/sdf."""
    ec2 = ebs.client("ec2")
    instance_id, devices = launch(ebs, ec2, ebs_image(ebs, ec2))
    data = new_volume(ebs, ec2)
    write_pattern(ebs, data, 0, DATA)
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)
    assert volume(ec2, data)["Attachments"][0]["State"] == "attached"
    return ebs, ec2, instance_id, devices["/dev/sda1"], data


@pytest.fixture
def held_snapshots(monkeypatch):
    """An Event: snapshots taken meanwhile wait for it before copying their volume."""
    release = threading.Event()
    copy = ebs_snapshots.point_in_time_copy

    def held(*args):
        assert release.wait(60)
        return copy(*args)
    monkeypatch.setattr(ebs_snapshots, "point_in_time_copy", held)
    yield release
    release.set()


def test_create_image_snapshots_every_volume_and_launches_with_their_data(instance,
                                                                          held_snapshots):
    live, ec2, instance_id, root, data = instance
    image_id = ec2.create_image(
        InstanceId=instance_id, Name="made from i", Description="imaged while running",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 2}},
                             {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}},
                             {"DeviceName": "/dev/sdc", "VirtualName": "ephemeral1"}],
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "img"}]},
                           {"ResourceType": "snapshot",
                            "Tags": [{"Key": "k", "Value": "snap"}]}])["ImageId"]
    assert image_id.startswith("emi-")
    pending = image_of(ec2, image_id)
    assert pending["State"] == "pending"
    assert (pending["Name"], pending["Description"]) == ("made from i", "imaged while running")
    assert pending["Tags"] == [{"Key": "k", "Value": "img"}]
    assert error_code(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1) \
        == "InvalidAMIID.Unavailable"

    held_snapshots.set()
    available = wait_image(live, ec2, image_id)
    assert available["State"] == "available"
    assert (available["RootDeviceType"], available["RootDeviceName"]) == ("ebs", "/dev/sda1")
    mappings = {m["DeviceName"]: m for m in available["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/sda1", "/dev/sdb", "/dev/sdc", "/dev/sdf"}
    assert mappings["/dev/sdb"]["VirtualName"] == "ephemeral0"      # the source image's
    assert mappings["/dev/sdc"]["VirtualName"] == "ephemeral1"      # the request's
    assert mappings["/dev/sda1"]["Ebs"]["VolumeSize"] == 2
    assert mappings["/dev/sdf"]["Ebs"]["DeleteOnTermination"] is True
    snapshot_ids = {device: mappings[device]["Ebs"]["SnapshotId"]
                    for device in ("/dev/sda1", "/dev/sdf")}
    snaps = {s["SnapshotId"]: s for s in ec2.describe_snapshots(
        SnapshotIds=list(snapshot_ids.values()))["Snapshots"]}
    assert {snaps[snapshot_ids["/dev/sda1"]]["VolumeId"],
            snaps[snapshot_ids["/dev/sdf"]]["VolumeId"]} == {root, data}
    for snap in snaps.values():
        assert snap["State"] == "completed"
        assert snap["Description"] == f"Created by CreateImage({instance_id}) for {image_id}"
        assert snap["Tags"] == [{"Key": "k", "Value": "snap"}]
    assert error_code(ec2.delete_snapshot, SnapshotId=snapshot_ids["/dev/sda1"]) \
        == "InvalidSnapshot.InUse"

    new_instance, devices = launch(live, ec2, image_id)
    assert read_at(live, devices["/dev/sda1"], len(ROOT_DATA)) == ROOT_DATA
    assert volume(ec2, devices["/dev/sda1"])["Size"] == 2
    launched = ec2.describe_image_attribute(ImageId=image_id, Attribute="lastLaunchedTime")
    assert launched["LastLaunchedTime"]["Value"]


def test_create_image_of_a_stopped_instance_with_a_suppressed_volume(instance):
    live, ec2, instance_id, root, data = instance
    write_pattern(live, root, 0, b"changed before imaging")
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(live)
    # the image the instance came from need not exist any more
    [source] = ec2.describe_images(Owners=["self"])["Images"]
    ec2.deregister_image(ImageId=source["ImageId"])
    image_id = ec2.create_image(InstanceId=instance_id, Name="stopped-one", NoReboot=True,
                                BlockDeviceMappings=[{"DeviceName": "/dev/sdf",
                                                      "NoDevice": ""}])["ImageId"]
    image = wait_image(live, ec2, image_id)
    assert image["State"] == "available"
    assert (image["Architecture"], image["VirtualizationType"]) == ("x86_64", "hvm")
    mappings = {m["DeviceName"]: m for m in image["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/sda1", "/dev/sdf"}       # no ephemeral0 of the source
    assert "Ebs" not in mappings["/dev/sdf"] and "NoDevice" in mappings["/dev/sdf"]
    [snap] = ec2.describe_snapshots(SnapshotIds=[mappings["/dev/sda1"]["Ebs"]["SnapshotId"]])[
        "Snapshots"]
    assert snap["VolumeId"] == root
    _, devices = launch(live, ec2, image_id)
    assert read_at(live, devices["/dev/sda1"], 22) == b"changed before imaging"


def test_a_failed_snapshot_fails_the_image(instance, monkeypatch):
    live, ec2, instance_id, _root, _data = instance

    def broken(*args):
        raise OSError("the disk went away")
    monkeypatch.setattr(ebs_snapshots, "point_in_time_copy", broken)
    image_id = ec2.create_image(InstanceId=instance_id, Name="doomed")["ImageId"]
    image = wait_image(live, ec2, image_id)
    assert image["State"] == "failed"
    assert "the disk went away" in image["StateReason"]["Message"]
    assert error_code(ec2.run_instances, ImageId=image_id, MinCount=1, MaxCount=1) \
        == "InvalidAMIID.Unavailable"


def test_create_image_errors(instance):
    live, ec2, instance_id, _root, _data = instance
    create = ec2.create_image
    # what boto3 would refuse before sending it, sent
    raw = live.client("ec2", parameter_validation=False).create_image
    assert error_code(raw, InstanceId=instance_id, Name="ab") == "InvalidAMIName.Malformed"
    assert error_code(raw, InstanceId=instance_id, Name="x" * 129) \
        == "InvalidAMIName.Malformed"
    assert error_code(create, InstanceId=instance_id, Name="no*stars") \
        == "InvalidAMIName.Malformed"
    assert error_code(create, InstanceId=instance_id, Name="ebs-root") \
        == "InvalidAMIName.Duplicate"
    assert error_code(create, InstanceId="i-00000000", Name="good name") \
        == "InvalidInstanceID.NotFound"
    assert error_code(create, InstanceId=instance_id, Name="good name", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "NoDevice": ""}]) == "InvalidBlockDeviceMapping"
    assert error_code(create, InstanceId=instance_id, Name="good name", BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "SnapshotId": "snap-00000000"}}]) \
        == "InvalidBlockDeviceMapping"
    assert error_code(create, InstanceId=instance_id, Name="good name", BlockDeviceMappings=[
        {"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": True}}]) == "MissingParameter"
    assert error_code(create, InstanceId=instance_id, Name="good name", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}]) \
        == "InvalidParameterValue"
    too_many = [{"Key": f"k{n}", "Value": "v"} for n in range(51)]
    assert error_code(create, InstanceId=instance_id, Name="good name", TagSpecifications=[
        {"ResourceType": "image", "Tags": too_many}]) == "TagLimitExceeded"
    other, _ = second_account(live, service="ec2")
    assert error_code(other.create_image, InstanceId=instance_id, Name="theirs") \
        == "InvalidInstanceID.NotFound"
    # nothing was made by the refused requests
    assert [i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]] == ["ebs-root"]
    assert not [s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                if s["Description"].startswith("Created by CreateImage")]

    store_backed = ec2.run_instances(ImageId=make_image(live), MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(live)
    assert error_code(create, InstanceId=store_backed, Name="good name") \
        == "UnsupportedOperation"
    ec2.terminate_instances(InstanceIds=[instance_id])
    settle(live)
    assert error_code(create, InstanceId=instance_id, Name="good name") \
        == "IncorrectInstanceState"


def test_copy_image(instance):
    live, ec2, _instance_id, _root, _data = instance
    [source] = ec2.describe_images(Owners=["self"])["Images"]
    ec2.create_tags(Resources=[source["ImageId"]], Tags=[{"Key": "from", "Value": "source"}])
    copy_id = ec2.copy_image(SourceRegion="eucalyptus", SourceImageId=source["ImageId"],
                             Name="the copy", Description="copied", CopyImageTags=True,
                             ClientToken="token-1")["ImageId"]
    copy = image_of(ec2, copy_id)
    assert copy_id != source["ImageId"]
    assert (copy["Name"], copy["Description"], copy["State"]) == \
        ("the copy", "copied", "available")
    assert copy["BlockDeviceMappings"] == source["BlockDeviceMappings"]
    assert copy["Tags"] == [{"Key": "from", "Value": "source"}]
    _, devices = launch(live, ec2, copy_id)
    assert read_at(live, devices["/dev/sda1"], len(ROOT_DATA)) == ROOT_DATA

    store_backed = make_image(live, "emi-0000abcd", location="bundles/x.manifest.xml",
                              kernel_id="eki-00000001")
    copied = image_of(ec2, ec2.copy_image(SourceRegion="eucalyptus",
                                          SourceImageId=store_backed, Name="store copy")[
        "ImageId"])
    assert (copied["ImageLocation"], copied["KernelId"], copied["RootDeviceType"]) == \
        ("bundles/x.manifest.xml", "eki-00000001", "instance-store")
    assert copied.get("Tags", []) == []

    copy = ec2.copy_image
    assert error_code(copy, SourceRegion="us-east-1", SourceImageId=store_backed,
                      Name="elsewhere") == "InvalidParameterValue"
    assert error_code(copy, SourceRegion="eucalyptus", SourceImageId="emi-12345678",
                      Name="missing") == "InvalidAMIID.NotFound"
    assert error_code(copy, SourceRegion="eucalyptus", SourceImageId=store_backed,
                      Name="the copy") == "InvalidAMIName.Duplicate"
    assert error_code(copy, SourceRegion="eucalyptus", SourceImageId=store_backed,
                      Name="a|b") == "InvalidAMIName.Malformed"
    assert error_code(copy, SourceRegion="eucalyptus", SourceImageId=store_backed,
                      Name="encrypted", Encrypted=True) == "InvalidParameterValue"
    other, other_id = second_account(live, service="ec2")
    assert error_code(other.copy_image, SourceRegion="eucalyptus",
                      SourceImageId=source["ImageId"], Name="not shared") \
        == "InvalidAMIID.NotFound"
    ec2.modify_image_attribute(ImageId=source["ImageId"],
                               LaunchPermission={"Add": [{"UserId": other_id}]})
    theirs = other.copy_image(SourceRegion="eucalyptus", SourceImageId=source["ImageId"],
                              Name="shared copy", CopyImageTags=True)["ImageId"]
    item = image_of(other, theirs)
    assert item["OwnerId"] == other_id and item.get("Tags", []) == []  # the tags are not theirs


def test_every_image_attribute(instance):
    live, ec2, _instance_id, _root, _data = instance
    [image] = ec2.describe_images(Owners=["self"])["Images"]
    image_id = image["ImageId"]

    def attribute(name):
        answer = ec2.describe_image_attribute(ImageId=image_id, Attribute=name)
        assert answer["ImageId"] == image_id
        return answer
    assert attribute("description").get("Description", {}) == {}
    assert attribute("kernel").get("KernelId", {}) == {}
    assert attribute("ramdisk").get("RamdiskId", {}) == {}
    assert attribute("launchPermission")["LaunchPermissions"] == []
    assert attribute("productCodes").get("ProductCodes", []) == []
    for empty in ("sriovNetSupport", "bootMode", "tpmSupport", "uefiData", "imdsSupport"):
        answer = attribute(empty)
        key = empty[0].upper() + empty[1:]
        assert answer.get(key, {}) == {}
    assert attribute("lastLaunchedTime")["LastLaunchedTime"]["Value"]   # the fixture's launch
    assert attribute("deregistrationProtection")["DeregistrationProtection"] == \
        {"Value": "disabled"}

    assert error_code(ec2.describe_image_attribute, ImageId=image_id, Attribute="colour") \
        == "InvalidParameterValue"
    assert error_code(ec2.modify_image_attribute, ImageId=image_id, Attribute="bootMode",
                      Value="uefi") == "InvalidParameterValue"
    assert error_code(ec2.modify_image_attribute, ImageId=image_id, ProductCodes=["abc"]) \
        == "InvalidParameterValue"
    assert error_code(ec2.modify_image_attribute, ImageId=image_id,
                      ImdsSupport={"Value": "v1.0"}) == "InvalidParameterValue"
    assert error_code(ec2.modify_image_attribute, ImageId="emi-12345678",
                      ImdsSupport={"Value": "v2.0"}) == "InvalidAMIID.NotFound"
    assert error_code(ec2.reset_image_attribute, ImageId=image_id, Attribute="description") \
        == "InvalidParameterValue"
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "described"})
    assert attribute("description")["Description"] == {"Value": "described"}


def test_aws_cli_create_image_and_attributes(instance):
    live, ec2, instance_id, _root, _data = instance
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args) -> subprocess.CompletedProcess:
        return subprocess.run([aws, "ec2", *args, "--output", "json"], env=live.env(),
                              capture_output=True, text=True, timeout=60)

    made = cli("create-image", "--instance-id", instance_id, "--name", "from the cli",
               "--no-reboot")
    assert made.returncode == 0, made.stderr
    image_id = json.loads(made.stdout)["ImageId"]
    assert wait_image(live, ec2, image_id)["State"] == "available"
    described = cli("describe-images", "--image-ids", image_id)
    assert described.returncode == 0, described.stderr
    devices = {m["DeviceName"] for m in json.loads(described.stdout)["Images"][0][
        "BlockDeviceMappings"]}
    assert {"/dev/sda1", "/dev/sdf"} <= devices
    copied = cli("copy-image", "--source-region", "eucalyptus", "--source-image-id", image_id,
                 "--name", "cli copy")
    assert copied.returncode == 0, copied.stderr
    duplicate = cli("create-image", "--instance-id", instance_id, "--name", "from the cli")
    assert duplicate.returncode != 0 and "InvalidAMIName.Duplicate" in duplicate.stderr


def test_filters_on_made_images_and_deregistering_with_their_snapshots(instance):
    live, ec2, instance_id, _root, _data = instance
    image_id = ec2.create_image(InstanceId=instance_id, Name="to filter",
                                BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                      "Ebs": {"VolumeSize": 3}}])["ImageId"]
    image = wait_image(live, ec2, image_id)
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert len(snapshot_ids) == 2

    def found(name, *values):
        return [i["ImageId"] for i in ec2.describe_images(
            Owners=["self"], Filters=[{"Name": name, "Values": list(values)}])["Images"]]
    assert found("block-device-mapping.snapshot-id", snapshot_ids[0]) == [image_id]
    assert found("block-device-mapping.volume-size", "3") == [image_id]
    assert found("block-device-mapping.delete-on-termination", "false") == [image_id]
    assert found("block-device-mapping.encrypted", "true") == []
    assert found("state-reason-message", "*") == []
    assert image_id in found("creation-date", image["CreationDate"][:10] + "*")

    # a copy maps the same snapshots: deleting them with the original skips them
    copy_id = ec2.copy_image(SourceRegion="eucalyptus", SourceImageId=image_id,
                             Name="keeps the snapshots")["ImageId"]
    answer = ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    assert sorted((r["SnapshotId"], r["ReturnCode"]) for r in answer["DeleteSnapshotResults"]) \
        == sorted((snapshot_id, "skipped") for snapshot_id in snapshot_ids)
    answer = ec2.deregister_image(ImageId=copy_id, DeleteAssociatedSnapshots=True)
    assert sorted((r["SnapshotId"], r["ReturnCode"]) for r in answer["DeleteSnapshotResults"]) \
        == sorted((snapshot_id, "success") for snapshot_id in snapshot_ids)
    assert error_code(ec2.describe_snapshots, SnapshotIds=snapshot_ids[:1]) \
        == "InvalidSnapshot.NotFound"
    assert error_code(ec2.describe_images, ImageIds=[image_id, copy_id]) \
        == "InvalidAMIID.NotFound"


def test_a_made_image_names_its_instance_and_keeps_imds_support(ebs):
    ec2 = ebs.client("ec2")
    source = ebs_image(ebs, ec2)
    ec2.modify_image_attribute(ImageId=source, ImdsSupport={"Value": "v2.0"})
    instance_id, _ = launch(ebs, ec2, source)
    made = wait_image(ebs, ec2, ec2.create_image(InstanceId=instance_id, Name="imds child",
                                                 NoReboot=True)["ImageId"])
    assert (made["SourceInstanceId"], made["ImdsSupport"]) == (instance_id, "v2.0")
