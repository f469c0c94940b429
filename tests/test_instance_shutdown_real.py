"""End to end on real libvirtd + QEMU: termination protection and what a guest's own poweroff
does (instanceInitiatedShutdownBehavior), with the tiny guest.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt (``./setup.sh test`` sets it), as
root; skipped with the reason otherwise. Each guest's user data is a script (``#!/bin/sh``,
run by the guest's /init as cloud-init would) that powers the guest off once it has booted;
the reconciler sees the domain shut off and the instance ends as AWS ends it: an
instance-store instance terminated (and a DisableApiTermination one still refuses
TerminateInstances while it runs), an EBS-backed one stopped by default and terminated
with ``InstanceInitiatedShutdownBehavior=terminate``.
"""
from __future__ import annotations

import os
import shutil

import pytest
from awsutil import error_code
from guestutil import (BOOT_TIMEOUT, MARK, REAL_URI, build_guest, guest_console,
                       qemu_reachable_dir, requires_real_libvirt)
from liveutil import start_live, stop_live
from serverutil import wait_until

from eucalite.compute import reconcile

pytestmark = requires_real_libvirt
NETWORK = "eucalite-shuttest"
POWEROFF = b"#!/bin/sh\necho powering-off\npoweroff -f\n"


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the instance bridge and the metadata address need root")
    return build_guest(tmp_path_factory)


@pytest.fixture(scope="module")
def cloud(guest_files):
    """Node duty on REAL_URI with its own instance network, volumes exported as local files,
    the tiny guest imported (``image_id``, ``kernel_id``, ``ramdisk_id``); the periodic
    reconciler is off: the test runs its passes."""
    from eucalite.cli.common import admin_principal
    from eucalite.compute.imageimport import ImageFiles
    from eucalite.server import start_node_services

    top = qemu_reachable_dir("eucalite-shutdown-test-")
    live, server = start_live(top / "data", node=True, hypervisor="libvirt",
                              libvirt_uri=REAL_URI, reconcile_interval=3600,
                              ebs_export="local", instance_subnet="10.216.0.0/24",
                              instance_network=NETWORK, instance_bridge="eushutbr0")
    services = live.app.extensions["eucalite"]
    try:
        start_node_services(live.app)
        assert services.cluster.node_problem is None, services.cluster.node_problem
        with live.app.app_context():
            live.kernel_id, live.ramdisk_id, live.image_id = services.compute.import_images(
                admin_principal(), ImageFiles(guest_files.kernel, guest_files.ramdisk,
                                              guest_files.root),
                name="tiny", bucket="images").values()
        yield live
    finally:
        stop_live(live, server, NETWORK)
        shutil.rmtree(top, ignore_errors=True)


def _ebs_image(live, guest_files) -> str:
    """An EBS-backed image of the tiny guest: its root in a volume, snapshotted, registered
    with the guest's kernel and ramdisk."""
    ec2 = live.client("ec2")
    services = live.app.extensions["eucalite"]
    source = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[source])["Volumes"][0]["State"]
               == "available", "the source volume", 30, interval=1)
    with open(services.ebs.path(source), "r+b") as f:
        f.write(guest_files.root.read_bytes())
    snapshot_id = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
        "State"] == "completed", "the snapshot", 120, interval=1)
    return ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1", KernelId=live.kernel_id,
        RamdiskId=live.ramdisk_id,
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snapshot_id}}])["ImageId"]


def _instance(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _ends(live, ec2, instance_id, state) -> dict:
    """Run reconcile passes (as the periodic one would) until the guest that powered itself
    off is *state*; fail with its console if it never gets there."""
    services = live.app.extensions["eucalite"]

    def reached():
        with live.app.app_context():
            reconcile.reconcile(services.cluster, services.ebs)
        services.compute.worker.wait(timeout=60)
        described = _instance(ec2, instance_id)
        return described if described["State"]["Name"] == state else None
    return wait_until(reached, f"{instance_id} {state} after its guest's poweroff",
                      BOOT_TIMEOUT, interval=1,
                      show=lambda: guest_console(ec2, instance_id)[-2000:])


def _launch(ec2, image_id, **kwargs) -> str:
    return ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="m1.small",
                             UserData=POWEROFF.decode(), **kwargs)["Instances"][0]["InstanceId"]


def test_protected_instance_store_guest_refuses_terminate_and_ends_at_its_poweroff(cloud):
    ec2 = cloud.client("ec2")
    instance_id = _launch(ec2, cloud.image_id, DisableApiTermination=True)
    assert error_code(lambda: ec2.terminate_instances(InstanceIds=[instance_id])) \
        == "OperationNotPermitted"
    assert _instance(ec2, instance_id)["State"]["Name"] in ("pending", "running")
    ended = _ends(cloud, ec2, instance_id, "terminated")
    assert ended["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    assert f"{MARK} user-script" in guest_console(ec2, instance_id)


def test_ebs_guest_poweroff_stops_or_terminates_as_its_attribute_says(cloud, guest_files):
    ec2 = cloud.client("ec2")
    image_id = _ebs_image(cloud, guest_files)
    stops = _launch(ec2, image_id)
    ends = _launch(ec2, image_id, InstanceInitiatedShutdownBehavior="terminate")
    stopped = _ends(cloud, ec2, stops, "stopped")
    assert stopped["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    [root] = [mapping["Ebs"]["VolumeId"] for mapping in
              _ends(cloud, ec2, ends, "terminated").get("BlockDeviceMappings", [])] or [None]
    # the terminated instance's root went with it (DeleteOnTermination), as a
    # TerminateInstances would have done
    assert root is None or error_code(lambda: ec2.describe_volumes(VolumeIds=[root])) \
        == "InvalidVolume.NotFound"
    # the stopped one starts again (its root kept) and powers off again: stopped again
    ec2.modify_instance_attribute(InstanceId=stops, UserData={"Value": b"#!/bin/sh\n"})
    ec2.start_instances(InstanceIds=[stops])
    wait_until(lambda: _instance(ec2, stops)["State"]["Name"] == "running", "restart",
               BOOT_TIMEOUT, interval=1)
    ec2.terminate_instances(InstanceIds=[stops])
    _ends(cloud, ec2, stops, "terminated")
