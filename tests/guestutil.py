"""Helpers for the tests that boot the tiny guest on a real libvirtd (``./setup.sh test``
sets EUCALITE_TEST_LIBVIRT_URI=qemu:///system; EUCALITE_TEST_GUEST_DIR, when set, caches the
guest's build): its console markers, waiting on instances, directories QEMU can reach, and
the live cloud those tests run (:func:`live_cloud`) with its EBS-backed image of the guest
(:func:`ebs_image`)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from ebsutil import write_pattern
from liveutil import start_live, stop_live
from serverutil import wait_until

from eucalite.cluster import guest

REAL_URI = os.environ.get("EUCALITE_TEST_LIBVIRT_URI", "")
GUEST_DIR = os.environ.get("EUCALITE_TEST_GUEST_DIR", "")
MARK = "EUCALITE-GUEST"             # what the guest's /init starts its console lines with
BOOT_TIMEOUT = 120                  # TCG on a loaded 2-core machine: a guest is up in ~10 s

requires_real_libvirt = pytest.mark.skipif(
    not REAL_URI.startswith("qemu"),
    reason="needs a real libvirtd: set EUCALITE_TEST_LIBVIRT_URI=qemu:///system "
           "(./setup.sh test does)")


def busy_loop(seconds: int) -> str:
    """Shell lines for a guest's user-data script: keep its vCPU busy for *seconds*, saying
    on the console when it starts and stops."""
    return f"""end=$(( $(date +%s) + {seconds} ))
echo {MARK} busy-start
while [ $(date +%s) -lt $end ]; do i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; done
echo {MARK} busy-end
"""


def build_guest(tmp_path_factory) -> guest.GuestFiles:
    """The tiny guest's kernel, ramdisk and root: cached in EUCALITE_TEST_GUEST_DIR when
    set, else built in a temporary directory."""
    out = Path(GUEST_DIR) if GUEST_DIR else tmp_path_factory.mktemp("guest")
    try:
        return guest.build(out, log=lambda *args: None)
    except guest.GuestBuildError as error:
        pytest.fail(f"cannot build the tiny guest: {error}")


def root_guest(tmp_path_factory, why: str) -> guest.GuestFiles:
    """:func:`build_guest` for tests that need root (skipped with *why* otherwise)."""
    if os.geteuid() != 0:
        pytest.skip(why)
    return build_guest(tmp_path_factory)


def qemu_reachable_dir(prefix: str) -> Path:
    """A new directory QEMU, running as libvirt's user, can reach: in the system's
    temporary directory and open to pass through (pytest's own are 0700). The caller
    removes it."""
    top = Path(tempfile.mkdtemp(prefix=prefix))
    top.chmod(0o711)
    return top


def guest_console(ec2, instance_id) -> str:
    """The console text (botocore decodes EC2's base64 Output itself)."""
    return ec2.get_console_output(InstanceId=instance_id).get("Output", "")


def ready_instance(ec2, image_id, user_data: str = "") -> str:
    """Run one m1.small of *image_id* and wait until its guest says it is ready."""
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small", UserData=user_data)[
        "Instances"][0]["InstanceId"]
    wait_until(lambda: f"{MARK} ready" in guest_console(ec2, instance_id), f"{instance_id} ready",
               BOOT_TIMEOUT, interval=1, show=lambda: guest_console(ec2, instance_id)[-2000:])
    return instance_id


def guest_disk(ec2, instance_id, volume_id, timeout=60) -> dict:
    """The guest's report of the disk with *volume_id*'s serial: {name, size, md5}."""
    serial = volume_id.replace("-", "")
    pattern = re.compile(rf"{MARK} disk name=(\w+) serial={serial} size=(\d+) md5=(\w+)")
    found = wait_until(lambda: pattern.search(guest_console(ec2, instance_id)),
                       f"the guest of {instance_id} to report {volume_id}", timeout, interval=1,
                       show=lambda: guest_console(ec2, instance_id)[-2000:])
    return {"name": found.group(1), "size": int(found.group(2)), "md5": found.group(3)}


def instance_state(ec2, instance_id) -> str:
    """The instance's state name."""
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    return described["State"]["Name"]


def terminate(ec2, ids) -> None:
    """Terminate and wait until they ended (their node capacity is back)."""
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait_until(lambda: instance_state(ec2, iid) == "terminated", f"{iid} terminated", 60,
                   interval=1)


def volume_state(ec2, volume_id) -> str:
    """The volume's attachment state while it has one, else its state."""
    item = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    return item["Attachments"][0]["State"] if item["Attachments"] else item["State"]


def live_cloud(export_name: str, guest_files, network: str, bridge: str, subnet: str,
               **options):
    """A live eucalite (a generator for a fixture): node duty on REAL_URI with an instance
    network of its own (*network*, *bridge*, *subnet*), the periodic reconciler off (tests
    run its passes), volumes exported by *export_name* (skipped with the reason when that
    cannot run here), the tiny guest imported (``image_id``, ``kernel_id``, ``ramdisk_id``);
    *options*: more config (e.g. volumes on RBD)."""
    from eucalite.cli.common import admin_principal
    from eucalite.compute.imageimport import ImageFiles
    from eucalite.ebs import export
    from eucalite.server import start_node_services

    problem = export.make(export_name, {}).problem()
    if problem:
        print(f"skipping the {export_name} end-to-end test: {problem}")
        pytest.skip(problem)
    top = qemu_reachable_dir("eucalite-real-test-")
    live, server = start_live(top / "data", node=True, hypervisor="libvirt",
                              libvirt_uri=REAL_URI, reconcile_interval=3600,
                              ebs_export=export_name, instance_subnet=subnet,
                              instance_network=network, instance_bridge=bridge, **options)
    services = live.app.extensions["eucalite"]
    try:
        start_node_services(live.app)
        assert services.cluster.node_problem is None, services.cluster.node_problem
        assert services.cluster.metadata_problem is None, services.cluster.metadata_problem
        with live.app.app_context():
            live.kernel_id, live.ramdisk_id, live.image_id = services.compute.import_images(
                admin_principal(), ImageFiles(guest_files.kernel, guest_files.ramdisk,
                                              guest_files.root),
                name="tiny", bucket="images").values()
        yield live
    finally:
        stop_live(live, server, network)
        shutil.rmtree(top, ignore_errors=True)


def ebs_image(live, guest_files) -> tuple[str, str, str]:
    """(image id, source volume id, md5 of the root's first MiB) of an EBS-backed image of
    the tiny guest on *live* (a :func:`live_cloud`): the guest's root written into a
    volume, snapshotted and registered with the guest's kernel and ramdisk. Made once per
    cloud, shared by its tests."""
    if getattr(live, "ebs_image", None):
        return live.ebs_image
    ec2 = live.client("ec2")
    source = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: volume_state(ec2, source) == "available", "the source volume", 30,
               interval=1)
    root_bytes = guest_files.root.read_bytes()
    write_pattern(live, source, 0, root_bytes)
    snapshot_id = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
        "State"] == "completed", "the snapshot", 120, interval=1)
    image_id = ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1", KernelId=live.kernel_id,
        RamdiskId=live.ramdisk_id,
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snapshot_id}}])["ImageId"]
    live.ebs_image = (image_id, source, hashlib.md5(root_bytes[:2**20]).hexdigest())
    return live.ebs_image
