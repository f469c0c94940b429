"""EC2 images through boto3 against a live server: bundles in S3, RegisterImage,
DescribeImages (visibility, filters, paging), launch permissions, attributes, deregistration,
the errors EC2 uses, and `eucalite image import`."""
from __future__ import annotations

import os
import re

import pytest
from awsutil import error_code
from click.testing import CliRunner

from eucalite import accounts
from eucalite.cli import image as image_cli
from eucalite.compute import bundle, bundling, cloudkey, images

BUCKET = "bundles"


def upload_bundle(s3, tmp_path, name, kind="machine", bucket=BUCKET, size=70_000,
                  encrypt_with=None, **kwargs) -> str:
    """Bundle a random file as *name*, upload it to *bucket*/*name*/…, return its location."""
    path = tmp_path / f"{name}.img"
    path.write_bytes(os.urandom(size))
    manifest_xml, parts = bundling.make_bundle(path, name, kind, part_size=32 * 1024,
                                               encrypt_with=encrypt_with, **kwargs)
    for filename, data in parts:
        s3.put_object(Bucket=bucket, Key=f"{name}/{filename}", Body=data)
    key = f"{name}/{name}.manifest.xml"
    s3.put_object(Bucket=bucket, Key=key, Body=manifest_xml)
    return f"{bucket}/{key}"


class Account:
    """Another account's id and clients."""

    def __init__(self, live, name):
        with live.app.app_context():
            account = accounts.create_account(name)
            key = accounts.create_access_key(name, "admin")
            self.id, key_id, secret = account.id, key.id, key.secret
        self.ec2 = live.client("ec2", key_id, secret)
        self.s3 = live.client("s3", key_id, secret)


@pytest.fixture
def env(live, tmp_path):
    """(live, ec2, s3, tmp_path) with the admin's bundle bucket created."""
    s3 = live.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return live, live.client("ec2"), s3, tmp_path


def register(ec2, s3, tmp_path, name, kind="machine", **kwargs):
    location = upload_bundle(s3, tmp_path, name, kind)
    return ec2.register_image(ImageLocation=location, Name=name, **kwargs)["ImageId"]


def describe_one(ec2, image_id) -> dict:
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    return image


# --- registering ------------------------------------------------------------------------

def test_register_bundle_and_describe(env):
    live, ec2, s3, tmp_path = env
    admin_id = _account_id(live, accounts.ADMIN_ACCOUNT)
    location = upload_bundle(s3, tmp_path, "debian")
    image_id = ec2.register_image(ImageLocation=location, Name="debian 12 (test)",
                                  Description="a test image")["ImageId"]
    assert re.fullmatch(r"emi-[0-9a-f]{8}", image_id)
    image = describe_one(ec2, image_id)
    assert image["State"] == "available"
    assert image["ImageLocation"] == location
    assert image["OwnerId"] == admin_id
    assert image["Public"] is False
    assert image["ImageType"] == "machine"
    assert image["Architecture"] == "x86_64"
    assert image["Name"] == "debian 12 (test)" and image["Description"] == "a test image"
    assert image["RootDeviceType"] == "instance-store"
    assert image["RootDeviceName"] == "/dev/sda1"
    assert image["Hypervisor"] in ("xen", "kvm")
    assert image["VirtualizationType"] == "hvm"        # no kernel: a whole-disk image
    assert {"DeviceName": "/dev/sda2", "VirtualName": "ephemeral0"} in \
        image["BlockDeviceMappings"]
    assert image["CreationDate"].endswith("Z")
    assert [i["ImageId"] for i in ec2.describe_images()["Images"]] == [image_id]


def test_kernel_ramdisk_and_machine(env):
    live, ec2, s3, tmp_path = env
    eki = register(ec2, s3, tmp_path, "vmlinuz", "kernel")
    eri = register(ec2, s3, tmp_path, "initrd", "ramdisk")
    assert eki.startswith("eki-") and eri.startswith("eri-")
    emi = register(ec2, s3, tmp_path, "root", KernelId=eki, RamdiskId=eri,
                   Architecture="x86_64")
    image = describe_one(ec2, emi)
    assert image["KernelId"] == eki and image["RamdiskId"] == eri
    assert image["VirtualizationType"] == "paravirtual"
    assert describe_one(ec2, eki)["ImageType"] == "kernel"
    # A manifest naming the kernel is honoured too (euca-bundle-image --kernel).
    location = upload_bundle(s3, tmp_path, "root2", kernel_id=eki, ramdisk_id=eri)
    emi2 = ec2.register_image(ImageLocation=location, Name="root2")["ImageId"]
    assert describe_one(ec2, emi2)["KernelId"] == eki
    # Kernels are not launchable; the machine image is.
    with live.app.app_context():
        principal = _principal(live, accounts.ADMIN_ACCOUNT)
        assert images.launchable(principal, emi).id == emi
        with pytest.raises(images.ImageNotFound):
            images.launchable(principal, eki)


def test_encrypted_bundle_registers_and_unbundles(env):
    live, ec2, s3, tmp_path = env
    data_dir = live.app.config["EUCALITE"]["data_dir"]
    key = cloudkey.cloud_private_key(data_dir)
    location = upload_bundle(s3, tmp_path, "secret", encrypt_with=key.public_key())
    image_id = ec2.register_image(ImageLocation=location, Name="secret")["ImageId"]
    target = tmp_path / "unbundled"
    with live.app.app_context():
        image = images.visible(_principal(live, accounts.ADMIN_ACCOUNT), image_id)
        store = live.app.extensions["eucalite"].s3.store
        with open(target, "wb") as out:
            bundle.unbundle(images.manifest_of(image), images.read_part_fn(store, image), out,
                            private_key=key)
    assert target.read_bytes() == (tmp_path / "secret.img").read_bytes()


def test_register_errors(env):
    live, ec2, s3, tmp_path = env
    location = upload_bundle(s3, tmp_path, "img")
    reg = ec2.register_image
    assert error_code(reg, ImageLocation=f"{BUCKET}/nothing.manifest.xml",
                      Name="x1x") == "InvalidManifest"
    assert error_code(reg, ImageLocation="no-such-bucket/a.manifest.xml",
                      Name="x1x") == "InvalidManifest"
    assert error_code(reg, ImageLocation="justabucket", Name="x1x") == "InvalidManifest"
    s3.put_object(Bucket=BUCKET, Key="bad.manifest.xml", Body=b"<manifest>")
    assert error_code(reg, ImageLocation=f"{BUCKET}/bad.manifest.xml",
                      Name="x1x") == "InvalidManifest"
    s3.delete_object(Bucket=BUCKET, Key="img/img.part.01")
    assert error_code(reg, ImageLocation=location, Name="x1x") == "InvalidManifest"
    location = upload_bundle(s3, tmp_path, "img")
    # boto3 checks the minimum length itself; a raw client reaches the server.
    raw = live.client("ec2", parameter_validation=False)
    assert error_code(raw.register_image, ImageLocation=location, Name="ab") == \
        "InvalidAMIName.Malformed"
    assert error_code(reg, ImageLocation=location, Name="bad*name") == \
        "InvalidAMIName.Malformed"
    assert error_code(raw.register_image, ImageLocation=location, Name="x" * 129) == \
        "InvalidAMIName.Malformed"
    assert error_code(reg, ImageLocation=location, Name="okay",
                      Architecture="arm64") == "InvalidParameterValue"
    assert error_code(reg, ImageLocation=location, Name="okay",
                      VirtualizationType="pv") == "InvalidParameterValue"
    assert error_code(reg, ImageLocation=location, Name="okay",
                      KernelId="eki-00000000") == "InvalidAMIID.NotFound"
    assert error_code(reg, ImageLocation=location, Name="okay",
                      RamdiskId="eri-00000000") == "InvalidAMIID.NotFound"
    assert error_code(reg, Name="ebs", RootDeviceName="/dev/sda1", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-0123abcd"}}]) == \
        "InvalidSnapshot.NotFound"
    assert error_code(reg, Name="nothing") == "MissingParameter"
    reg(ImageLocation=location, Name="taken")
    assert error_code(reg, ImageLocation=location, Name="taken") == "InvalidAMIName.Duplicate"
    # A kernel given where a ramdisk goes is refused.
    eki = register(ec2, s3, tmp_path, "kern", "kernel")
    assert error_code(reg, ImageLocation=location, Name="okay",
                      RamdiskId=eki) == "InvalidParameterValue"


def test_cannot_register_a_bundle_you_cannot_read(env):
    live, ec2, s3, tmp_path = env
    location = upload_bundle(s3, tmp_path, "private")
    other = Account(live, "other")
    assert error_code(other.ec2.register_image, ImageLocation=location,
                      Name="stolen") == "InvalidManifest"
    # Same name in another account is fine: names are unique per account.
    ec2.register_image(ImageLocation=location, Name="shared-name")
    other.s3.create_bucket(Bucket="other-bundles")
    own = upload_bundle(other.s3, tmp_path, "mine", bucket="other-bundles")
    other.ec2.register_image(ImageLocation=own, Name="shared-name")


# --- visibility and launch permissions ----------------------------------------------------

def test_launch_permission_by_account_and_group(env):
    live, ec2, s3, tmp_path = env
    image_id = register(ec2, s3, tmp_path, "shared")
    other = Account(live, "other")
    third = Account(live, "third")
    assert other.ec2.describe_images()["Images"] == []
    assert error_code(other.ec2.describe_images, ImageIds=[image_id]) == \
        "InvalidAMIID.NotFound"

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={
        "Add": [{"UserId": other.id}]})
    assert [i["ImageId"] for i in other.ec2.describe_images()["Images"]] == [image_id]
    assert [i["ImageId"] for i in other.ec2.describe_images(
        ExecutableUsers=["self"])["Images"]] == [image_id]
    assert [i["ImageId"] for i in ec2.describe_images(
        ExecutableUsers=[other.id])["Images"]] == [image_id]
    assert ec2.describe_images(ExecutableUsers=["all"])["Images"] == []
    # "self" means shared with me, not mine.
    assert ec2.describe_images(ExecutableUsers=["self"])["Images"] == []
    assert error_code(ec2.describe_images, ExecutableUsers=["bob"]) == \
        "InvalidUserID.Malformed"
    assert third.ec2.describe_images()["Images"] == []
    attribute = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert attribute["LaunchPermissions"] == [{"UserId": other.id}]
    with live.app.app_context():
        assert images.launchable(_principal(live, "other"), image_id).id == image_id

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={
        "Remove": [{"UserId": other.id}], "Add": [{"Group": "all"}]})
    assert third.ec2.describe_images(ImageIds=[image_id])["Images"][0]["Public"] is True
    assert [i["ImageId"] for i in other.ec2.describe_images(
        ExecutableUsers=["all"])["Images"]] == [image_id]
    assert other.ec2.describe_images(ExecutableUsers=["self"])["Images"] == []
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"Group": "all"}]

    ec2.reset_image_attribute(ImageId=image_id, Attribute="launchPermission")
    assert third.ec2.describe_images()["Images"] == []
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"] == []


def test_launch_permission_older_form(env):
    """UserId.N / UserGroup.N with OperationType, as euca-modify-image-attribute sends."""
    live, ec2, s3, tmp_path = env
    image_id = register(ec2, s3, tmp_path, "old-form")
    other = Account(live, "other")
    ec2.modify_image_attribute(ImageId=image_id, Attribute="launchPermission",
                               OperationType="add", UserIds=[other.id], UserGroups=["all"])
    image = other.ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Public"] is True
    ec2.modify_image_attribute(ImageId=image_id, Attribute="launchPermission",
                               OperationType="remove", UserGroups=["all"])
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")[
        "LaunchPermissions"] == [{"UserId": other.id}]
    assert error_code(ec2.modify_image_attribute, ImageId=image_id,
                      Attribute="launchPermission", OperationType="replace",
                      UserIds=[other.id]) == "InvalidParameterValue"


def test_attribute_errors_and_non_owners(env):
    live, ec2, s3, tmp_path = env
    image_id = register(ec2, s3, tmp_path, "guarded")
    other = Account(live, "other")
    modify = ec2.modify_image_attribute
    assert error_code(modify, ImageId=image_id, LaunchPermission={
        "Add": [{"UserId": "not-an-account"}]}) == "InvalidAMIAttributeItemValue"
    assert error_code(modify, ImageId=image_id, LaunchPermission={
        "Add": [{"UserId": "999999999999"}]}) == "InvalidAMIAttributeItemValue"
    assert error_code(modify, ImageId=image_id, Attribute="launchPermission",
                      OperationType="add", UserGroups=["everyone"]) == \
        "InvalidAMIAttributeItemValue"
    assert error_code(modify, ImageId="emi-00000000", LaunchPermission={
        "Add": [{"Group": "all"}]}) == "InvalidAMIID.NotFound"
    assert error_code(modify, ImageId="ami-xyz", LaunchPermission={
        "Add": [{"Group": "all"}]}) == "InvalidAMIID.Malformed"
    # Not visible to the other account: NotFound, so nothing is revealed.
    assert error_code(other.ec2.modify_image_attribute, ImageId=image_id, LaunchPermission={
        "Add": [{"Group": "all"}]}) == "InvalidAMIID.NotFound"
    # Visible but not owned: AuthFailure for changes, and for reading who may launch.
    modify(ImageId=image_id, LaunchPermission={"Add": [{"UserId": other.id}]})
    assert error_code(other.ec2.modify_image_attribute, ImageId=image_id, LaunchPermission={
        "Add": [{"Group": "all"}]}) == "AuthFailure"
    assert error_code(other.ec2.modify_image_attribute, ImageId=image_id,
                      Description={"Value": "mine now"}) == "AuthFailure"
    assert error_code(other.ec2.describe_image_attribute, ImageId=image_id,
                      Attribute="launchPermission") == "AuthFailure"
    assert error_code(other.ec2.deregister_image, ImageId=image_id) == "AuthFailure"
    assert error_code(other.ec2.reset_image_attribute, ImageId=image_id,
                      Attribute="launchPermission") == "AuthFailure"
    assert error_code(ec2.describe_image_attribute, ImageId=image_id,
                      Attribute="colour") == "InvalidParameterValue"
    assert error_code(ec2.reset_image_attribute, ImageId=image_id,
                      Attribute="description") == "InvalidParameterValue"


def test_description_kernel_ramdisk_attributes(env):
    live, ec2, s3, tmp_path = env
    eki = register(ec2, s3, tmp_path, "kernel-1", "kernel")
    eri = register(ec2, s3, tmp_path, "ramdisk-1", "ramdisk")
    image_id = register(ec2, s3, tmp_path, "attrs")
    ec2.modify_image_attribute(ImageId=image_id, Description={"Value": "new words"})
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="description")[
        "Description"] == {"Value": "new words"}
    ec2.modify_image_attribute(ImageId=image_id, Attribute="kernel", Value=eki)
    ec2.modify_image_attribute(ImageId=image_id, Attribute="ramdisk", Value=eri)
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="kernel")[
        "KernelId"] == {"Value": eki}
    assert ec2.describe_image_attribute(ImageId=image_id, Attribute="ramdisk")[
        "RamdiskId"] == {"Value": eri}
    assert {"DeviceName": "/dev/sda3", "VirtualName": "swap"} in ec2.describe_images(
        ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    assert error_code(ec2.describe_image_attribute, ImageId=image_id,
                      Attribute="blockDeviceMapping") == "AuthFailure"     # deprecated
    assert error_code(ec2.modify_image_attribute, ImageId=image_id, Attribute="kernel",
                      Value="eki-00000000") == "InvalidAMIID.NotFound"


def test_deregister(env):
    live, ec2, s3, tmp_path = env
    image_id = register(ec2, s3, tmp_path, "doomed")
    assert ec2.deregister_image(ImageId=image_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ec2.describe_images()["Images"] == []
    assert error_code(ec2.describe_images, ImageIds=[image_id]) == "InvalidAMIID.NotFound"
    assert error_code(ec2.deregister_image, ImageId=image_id) == "InvalidAMIID.NotFound"
    assert error_code(ec2.deregister_image, ImageId="emi-bad") == "InvalidAMIID.Malformed"
    with live.app.app_context():
        with pytest.raises(images.ImageNotFound):
            images.launchable(_principal(live, accounts.ADMIN_ACCOUNT), image_id)
    # The name is free again.
    register(ec2, s3, tmp_path, "doomed")


# --- describing: ids, owners, filters, paging ---------------------------------------------

def test_describe_ids_owners_and_malformed(env):
    live, ec2, s3, tmp_path = env
    mine = register(ec2, s3, tmp_path, "mine")
    other = Account(live, "other")
    other.s3.create_bucket(Bucket="other-bundles")
    theirs = other.ec2.register_image(ImageLocation=upload_bundle(
        other.s3, tmp_path, "theirs", bucket="other-bundles"), Name="theirs")["ImageId"]
    other.ec2.modify_image_attribute(ImageId=theirs, LaunchPermission={
        "Add": [{"Group": "all"}]})
    assert {i["ImageId"] for i in ec2.describe_images()["Images"]} == {mine, theirs}
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [mine]
    assert [i["ImageId"] for i in ec2.describe_images(Owners=[other.id])["Images"]] == \
        [theirs]
    assert ec2.describe_images(Owners=["amazon"])["Images"] == []
    assert error_code(ec2.describe_images, Owners=["somebody"]) == "InvalidUserID.Malformed"
    assert error_code(ec2.describe_images, ImageIds=[mine, "emi-00000000"]) == \
        "InvalidAMIID.NotFound"
    assert error_code(ec2.describe_images, ImageIds=["i-12345678"]) == "InvalidAMIID.Malformed"
    assert error_code(ec2.describe_images, ImageIds=["emi-1234"]) == "InvalidAMIID.Malformed"
    assert ec2.describe_images(ImageIds=[mine], IncludeDeprecated=True)["Images"][0][
        "ImageId"] == mine


def test_filters(env):
    live, ec2, s3, tmp_path = env
    eki = register(ec2, s3, tmp_path, "vmlinuz-6.1", "kernel")
    emi = register(ec2, s3, tmp_path, "web-server", KernelId=eki, Description="nginx")
    hvm = register(ec2, s3, tmp_path, "db-server", Architecture="i386")

    def ids(*filters):
        result = ec2.describe_images(Filters=[{"Name": name, "Values": values}
                                              for name, values in filters])
        return sorted(image["ImageId"] for image in result["Images"])

    assert ids(("name", ["*-server"])) == sorted([emi, hvm])
    assert ids(("image-type", ["kernel"])) == [eki]
    assert ids(("architecture", ["i386"])) == [hvm]
    assert ids(("kernel-id", [eki])) == [emi]
    assert ids(("virtualization-type", ["hvm"])) == [hvm]
    assert ids(("description", ["ngin?"])) == [emi]
    assert ids(("state", ["available"]), ("is-public", ["false"])) == sorted([eki, emi, hvm])
    assert ids(("is-public", ["true"])) == []
    assert ids(("image-id", [emi, hvm])) == sorted([emi, hvm])
    assert ids(("manifest-location", [f"{BUCKET}/web-server/*"])) == [emi]
    assert ids(("owner-id", [_account_id(live, accounts.ADMIN_ACCOUNT)]),
               ("root-device-type", ["instance-store"]),
               ("root-device-name", ["/dev/sda1"])) == sorted([eki, emi, hvm])
    assert ids(("ramdisk-id", ["eri-*"])) == []
    assert error_code(ec2.describe_images, Filters=[{"Name": "colour", "Values": ["x"]}]) == \
        "InvalidParameterValue"


def test_tag_filters(env):
    pytest.importorskip("eucalite.tags")
    live, ec2, s3, tmp_path = env
    if "CreateTags" not in _actions():
        pytest.skip("CreateTags is not served yet")
    tagged = register(ec2, s3, tmp_path, "tagged")
    register(ec2, s3, tmp_path, "plain")
    ec2.create_tags(Resources=[tagged], Tags=[{"Key": "role", "Value": "web"}])
    result = ec2.describe_images(Filters=[{"Name": "tag:role", "Values": ["web"]}])["Images"]
    assert [image["ImageId"] for image in result] == [tagged]
    assert result[0]["Tags"] == [{"Key": "role", "Value": "web"}]
    assert [i["ImageId"] for i in ec2.describe_images(Filters=[
        {"Name": "tag-key", "Values": ["role"]}])["Images"]] == [tagged]


def test_pagination(env):
    live, ec2, s3, tmp_path = env
    created = sorted(register(ec2, s3, tmp_path, f"image-{n}") for n in range(7))
    first = ec2.describe_images(MaxResults=5)
    assert len(first["Images"]) == 5 and first.get("NextToken")
    second = ec2.describe_images(MaxResults=5, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert sorted(i["ImageId"] for i in first["Images"] + second["Images"]) == created
    paginator = ec2.get_paginator("describe_images")
    seen = [image["ImageId"] for page in paginator.paginate(PaginationConfig={"PageSize": 5})
            for image in page["Images"]]
    assert sorted(seen) == created
    assert error_code(ec2.describe_images, MaxResults=5, NextToken="garbage") == \
        "InvalidPaginationToken"
    assert error_code(ec2.describe_images, MaxResults=4) == "InvalidParameterValue"
    assert error_code(ec2.describe_images, MaxResults=5, ImageIds=[created[0]]) == \
        "InvalidParameterCombination"


# --- the CLI ------------------------------------------------------------------------------

def test_cli_import_and_list(live, tmp_path):
    data_dir = live.app.config["EUCALITE"]["data_dir"]
    files = {}
    for name, size in (("vmlinuz", 50_000), ("initrd.img", 30_000), ("root.img", 120_000)):
        files[name] = tmp_path / name
        files[name].write_bytes(os.urandom(size))
    runner = CliRunner()
    result = runner.invoke(image_cli.image_group, [
        "import", "--kernel", str(files["vmlinuz"]), "--ramdisk", str(files["initrd.img"]),
        "--root", str(files["root.img"]), "--name", "tiny-linux", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    ids = dict(line.split("\t") for line in result.stdout.strip().splitlines())
    assert ids["kernel"].startswith("eki-") and ids["ramdisk"].startswith("eri-")
    assert ids["machine"].startswith("emi-")

    ec2 = live.client("ec2")
    emi = describe_one(ec2, ids["machine"])
    assert emi["State"] == "available" and emi["Name"] == "tiny-linux"
    assert emi["KernelId"] == ids["kernel"] and emi["RamdiskId"] == ids["ramdisk"]
    assert emi["ImageLocation"] == "eucalite-images/tiny-linux/root.img.manifest.xml"
    assert describe_one(ec2, ids["kernel"])["Name"] == "tiny-linux-kernel"
    keys = [obj["Key"] for obj in live.client("s3").list_objects_v2(
        Bucket="eucalite-images")["Contents"]]
    assert "tiny-linux/root.img.manifest.xml" in keys

    # The uploaded bundle unpacks to the original file.
    with live.app.app_context():
        image = images.visible(_principal(live, accounts.ADMIN_ACCOUNT), ids["machine"])
        store = live.app.extensions["eucalite"].s3.store
        out = tmp_path / "out"
        with open(out, "wb") as handle:
            bundle.unbundle(images.manifest_of(image), images.read_part_fn(store, image),
                            handle)
    assert out.read_bytes() == files["root.img"].read_bytes()

    listed = runner.invoke(image_cli.image_group, ["list", "--data-dir", data_dir])
    assert listed.exit_code == 0, listed.output
    assert all(image_id in listed.stdout for image_id in ids.values())

    # Importing the same names again fails cleanly, with the EC2 code and no traceback.
    again = runner.invoke(image_cli.image_group, [
        "import", "--kernel", str(files["vmlinuz"]), "--ramdisk", str(files["initrd.img"]),
        "--name", "tiny-linux", "--data-dir", data_dir])
    assert again.exit_code == 1 and "InvalidAMIName.Duplicate" in again.output


# --- helpers ------------------------------------------------------------------------------

def _actions() -> set[str]:
    from eucalite.compute.ec2.actions import registry

    return set(registry.actions)


def _account_id(live, name: str) -> str:
    with live.app.app_context():
        return accounts.get_account(name).id


def _principal(live, account_name: str):
    return accounts.principal_of(accounts.get_user(account_name, "admin"))
