"""The EC2 Query API on hostile input: the right AWS error (4xx, parseable XML) for integers
Python would mis-read, characters XML forbids, other accounts' tags, and filter patterns
built to make a backtracking matcher take forever.

Requests are signed by botocore and sent raw (boto3 validates parameters client-side, an
attacker does not)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest

from liveutil import start_live_node
from ec2util import signed_post

NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """One live cloud for the module: node duty on the fake hypervisor, local volumes."""
    live, server = start_live_node(tmp_path_factory.mktemp("ec2h") / "data",
                                   hypervisor="fake", ebs_export="local")
    yield live
    server.shutdown()
    live.services.compute.worker.shutdown()


def call(live, action: str, params: dict | None = None, **credentials):
    """POST a signed EC2 *action*: (HTTP status, parsed XML root)."""
    body = urlencode({"Action": action, "Version": "2016-11-15", **(params or {})})
    response = signed_post(live, body, **credentials)
    return response.status_code, ET.fromstring(response.content)


def error_of(root: ET.Element) -> str:
    return root.find("Errors/Error/Code").text


# --- integers ---------------------------------------------------------------------------

NOT_INDEXES = ["²", "٣", "1_0", "9" * 5000, "1e3", "0x10"]
NOT_INTEGERS = NOT_INDEXES + [" 1", ""]


@pytest.mark.parametrize("bad", NOT_INDEXES, ids=lambda v: repr(v[:8]))
@pytest.mark.parametrize("action, params", [
    ("DescribeVolumes", {"VolumeId.{}": "vol-00000001"}),
    ("DescribeVolumes", {"Filter.{}.Name": "status", "Filter.{}.Value.1": "available"}),
    ("DescribeImages", {"Filter.1.Name": "name", "Filter.1.Value.{}": "x"}),
    ("ModifySnapshotAttribute", {"SnapshotId": "snap-00000001",
                                 "CreateVolumePermission.Add.{}.UserId": "000000000002"}),
    ("ModifyImageAttribute", {"ImageId": "emi-00000001",
                              "LaunchPermission.Add.{}.UserId": "000000000002"}),
    ("CreateKeyPair", {"KeyName": "k", "TagSpecification.1.ResourceType": "key-pair",
                       "TagSpecification.1.Tag.{}.Key": "a"}),
    ("RegisterImage", {"Name": "image-name", "RootDeviceName": "/dev/sda1",
                       "BlockDeviceMapping.{}.DeviceName": "/dev/sda1",
                       "BlockDeviceMapping.{}.Ebs.SnapshotId": "snap-00000001"}),
])
def test_list_index_that_is_not_an_ascii_number(cloud, action, params, bad):
    status, root = call(cloud, action, {key.format(bad): value for key, value in params.items()})
    assert (status, error_of(root)) == (400, "InvalidParameterValue")


@pytest.mark.parametrize("bad", NOT_INTEGERS, ids=lambda v: repr(v[:8]))
@pytest.mark.parametrize("action, params", [
    ("DescribeVolumes", {"MaxResults": "{}"}),
    ("DescribeInstances", {"MaxResults": "{}"}),
    ("RunInstances", {"ImageId": "emi-00000001", "MinCount": "{}", "MaxCount": "1"}),
    ("RunInstances", {"ImageId": "emi-00000001", "MinCount": "1", "MaxCount": "{}"}),
    ("CreateVolume", {"AvailabilityZone": "eucalyptus-1a", "Size": "{}"}),
    ("CreateVolume", {"AvailabilityZone": "eucalyptus-1a", "Size": "1", "Iops": "{}"}),
    ("CreateVolume", {"AvailabilityZone": "eucalyptus-1a", "Size": "1", "Throughput": "{}"}),
    ("RegisterImage", {"Name": "image-name", "RootDeviceName": "/dev/sda1",
                       "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
                       "BlockDeviceMapping.1.Ebs.SnapshotId": "snap-00000001",
                       "BlockDeviceMapping.1.Ebs.VolumeSize": "{}"}),
])
def test_integer_value_that_is_not_an_ascii_number(cloud, action, params, bad):
    status, root = call(cloud, action, {key: value.format(bad) for key, value in params.items()})
    assert (status, error_of(root)) == (400, "InvalidParameterValue")



IMAGE, VOLUME = "emi-5b7ee001", "vol-5b7ee001"


def _make_volume(live, volume_id: str) -> None:
    """An available volume recorded directly (only its row matters here)."""
    from eucalite import accounts
    from eucalite.db import db
    from eucalite.ebs.models import Volume

    with live.app.app_context():
        owner = accounts.get_account("eucalyptus").id
        db.session.add(Volume(id=volume_id, owner_id=owner, size_gb=1, zone="eucalyptus-1a",
                              state="available", volume_type="standard"))
        db.session.commit()


@pytest.mark.parametrize("action, params", [
    ("RunInstances", {"ImageId": IMAGE, "MinCount": "1", "MaxCount": "1",
                      "Placement.AvailabilityZone.1": "x"}),
    ("RunInstances", {"ImageId": IMAGE, "MinCount": "1", "MaxCount": "1",
                      "TagSpecification.1.ResourceType.1": "instance"}),
    ("ModifyImageAttribute", {"ImageId": IMAGE, "Description.Value.1": "x"}),
    ("ModifyImageAttribute", {"ImageId": IMAGE, "LaunchPermission.Add.1.Group.1": "x"}),
    ("RegisterImage", {"Name": "image-name", "RootDeviceName": "/dev/sda1",
                       "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
                       "BlockDeviceMapping.1.Ebs.SnapshotId.1": "snap-00000001"}),
    ("RegisterImage", {"Name": "image-name", "BlockDeviceMapping.1.DeviceName.1": "/dev/sda1"}),
    ("CreateTags", {"ResourceId.1": IMAGE, "Tag.1.Key": "k", "Tag.1.Value.1": "x"}),
    ("DeleteTags", {"ResourceId.1": IMAGE, "Tag.1.Key": "k", "Tag.1.Value.1": "x"}),
    ("ModifyVolumeAttribute", {"VolumeId": VOLUME, "AutoEnableIO.Value.1": "true"}),
    ("ModifySnapshotAttribute", {"SnapshotId": "snap-00000001",
                                 "CreateVolumePermission.Add.1.UserId.1": "000000000002"}),
    ("DescribeImages", {"Filter.1.Name.1": "name", "Filter.1.Value.1": "x"}),
])
def test_structure_member_sent_as_a_subtree(cloud, action, params):
    """``Member.1=x`` where a structure member takes one value: InvalidParameterValue naming
    the parameter, not a 500 (a dict reached SQL) nor a Python repr in the message."""
    ec2 = cloud.client("ec2")
    if not ec2.describe_images(Filters=[{"Name": "image-id", "Values": [IMAGE]}])["Images"]:
        _public_image(cloud, IMAGE)
    if not ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [VOLUME]}])[
            "Volumes"]:
        _make_volume(cloud, VOLUME)
    status, root = call(cloud, action, params)
    assert (status, error_of(root)) == (400, "InvalidParameterValue")
    assert "{" not in root.find("Errors/Error/Message").text

# --- characters XML cannot carry --------------------------------------------------------

def _public_image(live, image_id: str, **fields) -> str:
    """A public image recorded directly, as the console or an older release may have left
    it (the API now refuses such text up front)."""
    from eucalite import accounts
    from eucalite.compute.models import Image
    from eucalite.db import db

    with live.app.app_context():
        owner = accounts.get_account("eucalyptus").id
        db.session.add(Image(id=image_id, owner_id=owner, kind="machine", name=image_id,
                             state="available", is_public=True, **fields))
        db.session.commit()
    return image_id


def test_stored_control_characters_still_give_parseable_xml(cloud):
    from s3util import second_account

    image_id = _public_image(cloud, "emi-0c0c0c01", description="bell\x07 nul\x00 esc\x1b")
    other, _ = second_account(cloud, "xmlreader", service="ec2")
    images = other.describe_images(ImageIds=[image_id])["Images"]   # botocore parses it
    assert images[0]["Description"] == "bell\ufffd nul\ufffd esc\ufffd"


@pytest.mark.parametrize("action, params", [
    ("CreateKeyPair", {"KeyName": "key\x01"}),
    ("CreateVolume", {"AvailabilityZone": "eucalyptus-1a", "Size": "1",
                      "TagSpecification.1.ResourceType": "volume",
                      "TagSpecification.1.Tag.1.Key": "k", "TagSpecification.1.Tag.1.Value": "\x01"}),
    ("CreateTags", {"ResourceId.1": "i-00000001", "Tag.1.Key": "k\x00", "Tag.1.Value": "v"}),
    ("RegisterImage", {"Name": "image\x01name", "ImageLocation": "b/k.manifest.xml"}),
    ("ModifyImageAttribute", {"ImageId": "emi-00000001", "Description.Value": "d\x1f"}),
    ("DescribeImages", {"Filter.1.Name": "description", "Filter.1.Value.1": "\x01"}),
    ("DescribeImages", {"Filter.1.Name": "descri\x01ption", "Filter.1.Value.1": "x"}),
])
def test_control_characters_are_refused_up_front(cloud, action, params):
    status, root = call(cloud, action, params)
    assert (status, error_of(root)) == (400, "InvalidParameterValue")


@pytest.mark.parametrize("service, params", [
    ("ec2", {"Action": "Describe\x01Regions"}),
    ("iam", {"Action": "Describe\x01Regions"}),
    ("ec2", {"Action": "\x00"}),
    ("iam", {"Action": "\x00"}),
    ("ec2", {"Action": "DescribeRegions", "Bogus\x01": "1"}),
])
def test_error_envelope_echoing_control_characters_parses(cloud, service, params):
    response = signed_post(cloud, urlencode({"Version": "2016-11-15", **params}),
                           service=service)
    assert 400 <= response.status_code < 500
    root = ET.fromstring(response.content)
    assert "\ufffd" in "".join(root.itertext())


# --- tags are the owner's ---------------------------------------------------------------

def _settle(live):
    live.services.compute.worker.wait(timeout=60)


def test_shared_snapshot_shows_its_tags_only_to_the_owner(cloud):
    from s3util import second_account

    owner = cloud.client("ec2")
    other, other_id = second_account(cloud, "snapreader", service="ec2")
    volume_id = owner.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    _settle(cloud)
    snapshot_id = owner.create_snapshot(VolumeId=volume_id, TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "secret", "Value": "s3cr3t"}]}])[
        "SnapshotId"]
    _settle(cloud)
    owner.modify_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission",
                                    OperationType="add", UserIds=[other_id])

    mine = owner.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert mine["Tags"] == [{"Key": "secret", "Value": "s3cr3t"}]
    shared = other.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert shared.get("Tags", []) == []
    # ...nor can a filter probe them.
    for filters in ([{"Name": "tag:secret", "Values": ["s3cr3t"]}],
                    [{"Name": "tag:secret", "Values": ["s*"]}],
                    [{"Name": "tag-key", "Values": ["secret"]}],
                    [{"Name": "tag-value", "Values": ["s3cr3t"]}]):
        assert other.describe_snapshots(RestorableByUserIds=["self"],
                                        Filters=filters)["Snapshots"] == []
        assert [s["SnapshotId"] for s in owner.describe_snapshots(
            OwnerIds=["self"], Filters=filters)["Snapshots"]] == [snapshot_id]
    assert other.describe_tags(Filters=[{"Name": "resource-id",
                                         "Values": [snapshot_id]}])["Tags"] == []


def test_public_image_shows_its_tags_only_to_the_owner(cloud):
    from s3util import second_account

    owner = cloud.client("ec2")
    image_id = _public_image(cloud, "emi-7a9e0001")
    owner.create_tags(Resources=[image_id], Tags=[{"Key": "secret", "Value": "s3cr3t"}])
    other, _ = second_account(cloud, "imagereader", service="ec2")
    assert owner.describe_images(ImageIds=[image_id])["Images"][0]["Tags"] == [
        {"Key": "secret", "Value": "s3cr3t"}]
    assert other.describe_images(ImageIds=[image_id])["Images"][0].get("Tags", []) == []
    assert other.describe_images(Filters=[{"Name": "tag:secret",
                                           "Values": ["*"]}])["Images"] == []


# --- names and ids end where they end ---------------------------------------------------

@pytest.mark.parametrize("action, params, code", [
    ("RegisterImage", {"Name": "image-name\n", "RootDeviceName": "/dev/sda1",
                       "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
                       "BlockDeviceMapping.1.Ebs.SnapshotId": "snap-00000001"},
     "InvalidAMIName.Malformed"),
    ("DescribeImages", {"Owner.1": "123456789012\n"}, "InvalidUserID.Malformed"),
    ("CreateTags", {"ResourceId.1": "emi-5b7ee001\n", "Tag.1.Key": "k"}, "InvalidID"),
])
def test_trailing_newline_is_not_part_of_a_valid_name(cloud, action, params, code):
    """``$`` in a regular expression also matches before a final newline: a name or id
    with one slipped through the checks meant to refuse it."""
    status, root = call(cloud, action, params)
    assert (status, error_of(root)) == (400, code)


def test_device_name_with_a_trailing_newline_is_refused():
    from eucalite.ebs import volumes
    from eucalite.errors import InvalidParameterValue

    assert volumes.check_device("/dev/sdf") == "/dev/sdf"
    with pytest.raises(InvalidParameterValue):
        volumes.check_device("/dev/sdf\n")


def test_services_refuse_control_characters_from_any_caller():
    """The console calls the services directly: they refuse what the Query APIs refuse."""
    from eucalite import tags
    from eucalite.compute import images
    from eucalite.errors import InvalidParameterValue

    for check, value in [(tags.validate_key, "k\x01"), (tags.validate_value, "v\x00"),
                         (images.validate_description, "d\x1b")]:
        with pytest.raises(InvalidParameterValue):
            check(value)
        assert check(value.replace(value[-1], "\t")) == value.replace(value[-1], "\t")
