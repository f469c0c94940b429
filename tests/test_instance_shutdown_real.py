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

import pytest
from awsutil import error_code
from guestutil import (BOOT_TIMEOUT, MARK, ebs_image, guest_console, live_cloud,
                       requires_real_libvirt, root_guest)
from serverutil import wait_until

from eucalite.compute import reconcile

pytestmark = requires_real_libvirt
NETWORK = "eucalite-shuttest"
POWEROFF = b"#!/bin/sh\necho powering-off\npoweroff -f\n"


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    return root_guest(tmp_path_factory, "the instance bridge and the metadata address need root")


@pytest.fixture(scope="module")
def cloud(guest_files):
    """Volumes exported as local files, on an instance network of this file's own; the
    periodic reconciler is off: the test runs its passes."""
    yield from live_cloud("local", guest_files, NETWORK, "eushutbr0", "10.216.0.0/24")


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
    image_id = ebs_image(cloud, guest_files)[0]
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
