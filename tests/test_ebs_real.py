"""End to end on real libvirtd + QEMU + tgtd: the data chain volume -> snapshot -> volume,
through iSCSI into running tiny guests.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt and tgtd answers (``./setup.sh
test`` starts both); skipped with the reason otherwise. Through boto3: a volume with a known
pattern is attached to a running guest over tgt iSCSI (with CHAP), the guest reports a disk
whose serial is the volume id (as EC2 Nitro shows it) and whose first MiB has the pattern's
md5; it is detached (the guest sees it go), snapshotted, a new volume is made from the
snapshot and attached to another instance, which sees the same bytes. Nothing is left
exported afterwards.

Both clouds keep volumes in files whatever pass runs them (these tests are about how files
reach nodes; tests/test_ebs_rbd_real.py is the RBD counterpart).

An EBS-backed image boots too, with its volumes exported by tgt and as local files:
RegisterImage from a snapshot, RunInstances, the guest reads its root volume; a data
volume attached, StopInstances, StartInstances, and the guest boots again with its root
and the data volume. After termination no export and no CHAP secret is left.
"""
from __future__ import annotations

import hashlib
import os
import re

import pytest
from ebsutil import write_pattern
from ec2util import used_cores
from guestutil import (BOOT_TIMEOUT, MARK, ebs_image, guest_console, guest_disk, live_cloud,
                       ready_instance, requires_real_libvirt, root_guest, terminate,
                       volume_state)
from serverutil import wait_until

NETWORK = "eucalite-ebstest"
MiB = 2**20

pytestmark = requires_real_libvirt


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    return root_guest(tmp_path_factory, "the instance bridge, the metadata address and tgt "
                                        "need root")


@pytest.fixture(scope="module")
def cloud(guest_files):
    """Volumes exported over iSCSI by tgt (with CHAP)."""
    yield from live_cloud("tgt", guest_files, NETWORK, "euebsbr0", "10.214.0.0/24",
                          ebs_backend="file")


@pytest.fixture
def local_cloud(guest_files, cloud):
    """Volumes exported as local files (the node is this host).

    One listener at a time holds the metadata address (169.254.169.254:80): the tgt cloud's
    is closed meanwhile and opened again after. (Left open, it would answer this cloud's
    guests "no such instance" and each boot would wait out the guest's minute of retries.)"""
    from eucalite.compute import metadata

    tgt_services = cloud.app.extensions["eucalite"]
    tgt_services.compute.metadata_server.shutdown()
    try:
        yield from live_cloud("local", guest_files, "eucalite-ebslocal", "euebsbr1",
                              "10.215.0.0/24", ebs_backend="file")
    finally:
        tgt_services.compute.metadata_server = metadata.serve(
            cloud.app, tgt_services.config["metadata_address"],
            int(tgt_services.config["metadata_port"]))




def test_volume_snapshot_volume_chain_over_iscsi(cloud):
    ec2 = cloud.client("ec2")
    services = cloud.app.extensions["eucalite"]
    exporter = services.ebs.export_driver()
    assert exporter.name == "tgt"

    first = ready_instance(ec2, cloud.image_id)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "the volume", 30, interval=1)
    pattern = os.urandom(MiB)
    write_pattern(cloud, volume_id, 0, pattern)
    expected = hashlib.md5(pattern).hexdigest()

    ec2.attach_volume(VolumeId=volume_id, InstanceId=first, Device="/dev/sdf")
    wait_until(lambda: volume_state(ec2, volume_id) == "attached", "attached", 60, interval=1)
    seen = guest_disk(ec2, first, volume_id)
    assert (seen["size"], seen["md5"]) == (2**30 // 512, expected)
    assert volume_id in exporter.exported()            # served by tgt, not as a file

    ec2.detach_volume(VolumeId=volume_id)
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "detached", 60, interval=1)
    wait_until(lambda: f"{MARK} disk-gone name={seen['name']}" in guest_console(ec2, first),
               "the guest to see the disk go", 30, interval=1)
    assert volume_id not in exporter.exported()

    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
        "State"] == "completed", "the snapshot", 120, interval=1)
    copy = ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone="eucalyptus-1a")[
        "VolumeId"]
    wait_until(lambda: volume_state(ec2, copy) == "available", "the volume from the snapshot", 60,
               interval=1)
    terminate(ec2, [first])

    second = ready_instance(ec2, cloud.image_id)
    ec2.attach_volume(VolumeId=copy, InstanceId=second, Device="/dev/sdg")
    seen = guest_disk(ec2, second, copy)
    assert seen["md5"] == expected                     # the same bytes, through the chain
    terminate(ec2, [second])
    wait_until(lambda: volume_state(ec2, copy) == "available", "detach on terminate", 30,
               interval=1)
    assert not exporter.exported() & {volume_id, copy}
    for vid in (volume_id, copy):
        ec2.delete_volume(VolumeId=vid)
    ec2.delete_snapshot(SnapshotId=snapshot_id)


def _instance(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _wait_state(ec2, instance_id, state, timeout=BOOT_TIMEOUT) -> dict:
    """Wait for *state*; fail at once, with the reason, if the instance ended instead."""
    def reached():
        described = _instance(ec2, instance_id)
        name = described["State"]["Name"]
        assert name == state or name not in ("terminated", "shutting-down") or \
            state == "terminated", described.get("StateReason")
        return described if name == state else None
    return wait_until(reached, f"{instance_id} {state}", timeout, interval=1)


def _chap_secrets(driver) -> set[str]:
    """Usage names of the libvirt CHAP secrets eucalite defined."""
    from eucalite.ebs.export.base import SECRET_USAGE_PREFIX

    return {secret.usageID() for secret in driver._conn().listAllSecrets()
            if (secret.usageID() or "").startswith(SECRET_USAGE_PREFIX)}


@pytest.mark.parametrize("which", ["cloud", "local_cloud"], ids=["tgt", "local"])
def test_ebs_backed_image_boots_stops_and_starts(which, request, guest_files):
    """RegisterImage from snapshots (the root, and a data volume at /dev/sdg) ->
    RunInstances -> running, the guest reading its root volume and the data volume made
    from the image's snapshot -> a volume attached -> StopInstances -> StartInstances ->
    running again, every volume still there; terminating leaves no export and no CHAP
    secret behind."""
    live = request.getfixturevalue(which)
    ec2 = live.client("ec2")
    services = live.app.extensions["eucalite"]
    exporter = services.ebs.export_driver()
    driver = services.cluster.driver
    root_image, source, root_md5 = ebs_image(live, guest_files)
    [root_mapping] = ec2.describe_images(ImageIds=[root_image])["Images"][0][
        "BlockDeviceMappings"]
    mapped = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: volume_state(ec2, mapped) == "available", "the mapped volume", 30,
               interval=1)
    mapped_pattern = os.urandom(MiB)
    write_pattern(live, mapped, 0, mapped_pattern)
    mapped_snapshot = ec2.create_snapshot(VolumeId=mapped)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[mapped_snapshot])["Snapshots"][0][
        "State"] == "completed", "the mapped snapshot", 120, interval=1)
    image_id = ec2.register_image(
        Name=f"ebs-with-data-{which}", RootDeviceName="/dev/sda1", KernelId=live.kernel_id,
        RamdiskId=live.ramdisk_id, BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": root_mapping["Ebs"]["SnapshotId"]}},
            {"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": mapped_snapshot}}])["ImageId"]

    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    described = _wait_state(ec2, instance_id, "running")
    by_device = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in described["BlockDeviceMappings"]}
    root, launched = by_device["/dev/sda1"], by_device["/dev/sdg"]
    assert guest_disk(ec2, instance_id, root, BOOT_TIMEOUT)["md5"] == root_md5
    # the image's data volume, made from its snapshot at launch, is a disk of the guest
    assert guest_disk(ec2, instance_id, launched)["md5"] == \
        hashlib.md5(mapped_pattern).hexdigest()

    data = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: volume_state(ec2, data) == "available", "the data volume", 30, interval=1)
    pattern = os.urandom(MiB)
    write_pattern(live, data, 0, pattern)
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    wait_until(lambda: volume_state(ec2, data) == "attached", "attached", 60, interval=1)
    assert guest_disk(ec2, instance_id, data)["md5"] == hashlib.md5(pattern).hexdigest()

    ec2.stop_instances(InstanceIds=[instance_id])
    _wait_state(ec2, instance_id, "stopped", 60)
    assert instance_id not in driver.list_domains()
    ec2.start_instances(InstanceIds=[instance_id])
    _wait_state(ec2, instance_id, "running")
    # the guest boots a second time and finds its root and the data volume again
    wait_until(lambda: guest_console(ec2, instance_id).count(f"{MARK} ready") >= 2,
               "the second boot", BOOT_TIMEOUT, interval=1,
               show=lambda: guest_console(ec2, instance_id)[-3000:])
    for volume_id, md5 in ((root, root_md5), (data, hashlib.md5(pattern).hexdigest()),
                           (launched, hashlib.md5(mapped_pattern).hexdigest())):
        seen = re.compile(rf"serial={volume_id.replace('-', '')} size=\d+ md5={md5}")
        wait_until(lambda: seen.search(
                       guest_console(ec2, instance_id).rsplit(f"{MARK} boot", 1)[-1]),
                   f"{volume_id} after the start", 60, interval=1,
                   show=lambda: guest_console(ec2, instance_id)[-3000:])

    terminate(ec2, [instance_id])
    wait_until(lambda: volume_state(ec2, data) == "available", "detach on terminate", 30,
               interval=1)
    assert not exporter.exported() & {root, data, source, launched}
    if exporter.name == "tgt":
        assert not _chap_secrets(driver)
    for volume_id in (data, mapped):
        ec2.delete_volume(VolumeId=volume_id)
    ec2.deregister_image(ImageId=image_id)
    ec2.delete_snapshot(SnapshotId=mapped_snapshot)


def test_failed_ebs_launch_leaves_no_target_secret_or_volume(cloud, guest_files, monkeypatch):
    """A launch whose domain cannot start on the real node (QEMU's iSCSI login refused: a
    wrong CHAP password) ends terminated with the reason, and takes back everything it
    made: the root volume, its tgt target and CHAP account, the libvirt secret, the node's
    capacity."""
    from dataclasses import replace


    ec2 = cloud.client("ec2")
    services = cloud.app.extensions["eucalite"]
    exporter = services.ebs.export_driver()
    driver = services.cluster.driver
    image_id = ebs_image(cloud, guest_files)[0]
    right = exporter.disk_spec

    def wrong_password(volume_id, export, path, target):
        spec = right(volume_id, export, path, target)
        return replace(spec, network={**spec.network, "password": "not-the-secret-000"})
    monkeypatch.setattr(exporter, "disk_spec", wrong_password)
    volumes_before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}
    exported_before, secrets_before = exporter.exported(), _chap_secrets(driver)
    cores_before = used_cores(cloud)

    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    described = _wait_state(ec2, instance_id, "terminated", 60)
    assert described["StateReason"]["Code"] == "Server.InternalError", described
    assert "cannot start" in described["StateReason"]["Message"], described
    assert instance_id not in driver.list_domains()
    assert {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} == volumes_before
    assert exporter.exported() == exported_before
    assert _chap_secrets(driver) == secrets_before
    assert used_cores(cloud) == cores_before
