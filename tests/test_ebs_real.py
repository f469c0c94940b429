"""End to end on real libvirtd + QEMU + tgtd: the data chain volume -> snapshot -> volume,
through iSCSI into running tiny guests.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt and tgtd answers (``./setup.sh
test`` starts both); skipped with the reason otherwise. Through boto3: a volume with a known
pattern is attached to a running guest over tgt iSCSI (with CHAP), the guest reports a disk
whose serial is the volume id (as EC2 Nitro shows it) and whose first MiB has the pattern's
md5; it is detached (the guest sees it go), snapshotted, a new volume is made from the
snapshot and attached to another instance, which sees the same bytes. Nothing is left
exported afterwards.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import start_live, stop_live
from test_node_real import BOOT_TIMEOUT, MARK, _console, _terminate, _wait

REAL_URI = os.environ.get("EUCALITE_TEST_LIBVIRT_URI", "")
GUEST_DIR = os.environ.get("EUCALITE_TEST_GUEST_DIR", "")
NETWORK = "eucalite-ebstest"
MiB = 2**20

pytestmark = pytest.mark.skipif(
    not REAL_URI.startswith("qemu"),
    reason="needs a real libvirtd: set EUCALITE_TEST_LIBVIRT_URI=qemu:///system "
           "(./setup.sh test does)")


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """A live eucalite: node duty on REAL_URI, volumes exported by tgt, the tiny guest
    imported."""
    from eucalite.cluster import guest
    from eucalite.compute import image_cli
    from eucalite.ebs import export
    from eucalite.server import start_node_services

    if os.geteuid() != 0:
        pytest.skip("the instance bridge, the metadata address and tgt need root")
    problem = export.make("tgt", {}).problem()
    if problem:
        print(f"skipping the iSCSI end-to-end test: {problem}")
        pytest.skip(problem)
    files = guest.build(Path(GUEST_DIR) if GUEST_DIR else tmp_path_factory.mktemp("guest"),
                        log=lambda *args: None)
    top = Path(tempfile.mkdtemp(prefix="eucalite-ebs-test-", dir="/var/tmp"))
    top.chmod(0o711)
    live, server = start_live(top / "data", node=True, hypervisor="libvirt",
                              libvirt_uri=REAL_URI, reconcile_interval=3600,
                              ebs_export="tgt", instance_subnet="10.214.0.0/24",
                              instance_network=NETWORK, instance_bridge="euebsbr0")
    services = live.app.extensions["eucalite"]
    try:
        start_node_services(live.app)
        assert services.cluster.node_problem is None, services.cluster.node_problem
        ids = image_cli._import(str(files.kernel), str(files.ramdisk), str(files.root),
                                "tiny", "x86_64", "images", "eucalyptus", "admin", live.app)
        live.image_id = ids[-1]
        yield live
    finally:
        stop_live(live, server, NETWORK)
        shutil.rmtree(top, ignore_errors=True)


def _ready_instance(ec2, image_id) -> str:
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    _wait(lambda: f"{MARK} ready" in _console(ec2, instance_id), BOOT_TIMEOUT,
          f"{instance_id} ready", show=lambda: _console(ec2, instance_id)[-2000:])
    return instance_id


def _volume_state(ec2, volume_id) -> str:
    item = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    return item["Attachments"][0]["State"] if item["Attachments"] else item["State"]


def _guest_sees(ec2, instance_id, volume_id, timeout=60) -> dict:
    """The guest's report of the disk with *volume_id*'s serial: {name, size, md5}."""
    serial = volume_id.replace("-", "")
    pattern = re.compile(rf"{MARK} disk name=(\w+) serial={serial} size=(\d+) md5=(\w+)")
    found = _wait(lambda: pattern.search(_console(ec2, instance_id)), timeout,
                  f"the guest of {instance_id} to report {volume_id}",
                  show=lambda: _console(ec2, instance_id)[-2000:])
    return {"name": found.group(1), "size": int(found.group(2)), "md5": found.group(3)}


def test_volume_snapshot_volume_chain_over_iscsi(cloud):
    ec2 = cloud.client("ec2")
    services = cloud.app.extensions["eucalite"]
    exporter = services.ebs.export_driver()
    assert exporter.name == "tgt"

    first = _ready_instance(ec2, cloud.image_id)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    _wait(lambda: _volume_state(ec2, volume_id) == "available", 30, "the volume")
    pattern = os.urandom(MiB)
    with open(services.ebs.path(volume_id), "r+b") as f:
        f.write(pattern)
    expected = hashlib.md5(pattern).hexdigest()

    ec2.attach_volume(VolumeId=volume_id, InstanceId=first, Device="/dev/sdf")
    _wait(lambda: _volume_state(ec2, volume_id) == "attached", 60, "attached")
    seen = _guest_sees(ec2, first, volume_id)
    assert (seen["size"], seen["md5"]) == (2**30 // 512, expected)
    assert volume_id in exporter.exported()            # served by tgt, not as a file

    ec2.detach_volume(VolumeId=volume_id)
    _wait(lambda: _volume_state(ec2, volume_id) == "available", 60, "detached")
    _wait(lambda: f"{MARK} disk-gone name={seen['name']}" in _console(ec2, first), 30,
          "the guest to see the disk go")
    assert volume_id not in exporter.exported()

    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    _wait(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
        "State"] == "completed", 120, "the snapshot")
    copy = ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone="eucalyptus-1a")[
        "VolumeId"]
    _wait(lambda: _volume_state(ec2, copy) == "available", 60, "the volume from the snapshot")
    _terminate(ec2, [first])

    second = _ready_instance(ec2, cloud.image_id)
    ec2.attach_volume(VolumeId=copy, InstanceId=second, Device="/dev/sdg")
    seen = _guest_sees(ec2, second, copy)
    assert seen["md5"] == expected                     # the same bytes, through the chain
    _terminate(ec2, [second])
    _wait(lambda: _volume_state(ec2, copy) == "available", 30, "detach on terminate")
    assert not exporter.exported() & {volume_id, copy}
    for vid in (volume_id, copy):
        ec2.delete_volume(VolumeId=vid)
    ec2.delete_snapshot(SnapshotId=snapshot_id)
