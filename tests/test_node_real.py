"""End to end on a real libvirtd + QEMU: the tiny guest boots as an EC2 instance.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt (``./setup.sh test`` starts
libvirtd and sets it to qemu:///system); skipped with the reason otherwise. The guest is
built by ``eucalite.cluster.guest`` (cached in EUCALITE_TEST_GUEST_DIR when set). Through
boto3: import the guest, RunInstances with user-data, wait for running, read the console
until the guest printed the instance-id and user-data it fetched from the metadata service
with an IMDSv2 token, reboot, stop (unsupported for instance-store, as in Eucalyptus),
terminate, and check that no domain, overlay or DHCP entry is left.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from awsutil import error_code
from guestutil import (BOOT_TIMEOUT, MARK, build_guest, guest_console, live_cloud,
                       requires_real_libvirt, terminate)
from serverutil import wait_until

NETWORK = "eucalite-test"

pytestmark = requires_real_libvirt


def _skip_without_root():
    if os.geteuid() != 0:
        pytest.skip("the instance bridge and the metadata address need root")


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    return build_guest(tmp_path_factory)


@pytest.fixture(scope="module")
def node(guest_files):
    """A live eucalite whose node duty runs real guests on REAL_URI, with the tiny guest
    imported; the metadata listener on the bridge; a network of its own, so a developer's
    cloud is untouched."""
    _skip_without_root()
    yield from live_cloud("local", guest_files, NETWORK, "eutestbr0", "10.213.0.0/24")


def _console_has(ec2, instance_id, text, count=1, timeout=BOOT_TIMEOUT) -> str:
    """Wait until the console shows *text* *count* times; returns the console."""
    return wait_until(lambda: (c := guest_console(ec2, instance_id)).count(text) >= count and c,
                      f"{text!r} x{count} on {instance_id}'s console", timeout, interval=1,
                      show=lambda: guest_console(ec2, instance_id)[-3000:])


def _running(ec2, instance_id) -> bool:
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    assert described["State"]["Name"] in ("pending", "running"), described.get("StateReason")
    return described["State"]["Name"] == "running"


def _launch(ec2, image_id, user_data: str, count: int = 1):
    reservation = ec2.run_instances(ImageId=image_id, MinCount=count, MaxCount=count,
                                    InstanceType="m1.small", UserData=user_data,
                                    MetadataOptions={"HttpTokens": "required"})
    return reservation["Instances"]


def _guest_lines(console: str, key: str) -> list[str]:
    return re.findall(rf"{MARK} {key}=(\S+)", console)


def test_guest_boots_reads_metadata_and_leaves_nothing(node):
    ec2 = node.client("ec2")
    services = node.app.extensions["eucalite"]
    driver = services.cluster.driver
    user_data = "hello from user-data 1f3c"
    [instance] = _launch(ec2, node.image_id, user_data)
    iid = instance["InstanceId"]
    assert instance["PrivateIpAddress"].startswith("10.213.0.")
    wait_until(lambda: _running(ec2, iid), "running", BOOT_TIMEOUT, interval=1)

    # the guest reports its disks after "ready": wait for the root's report, not the marker
    # (on a loaded host the console was read between the two)
    console = _console_has(ec2, iid, f"{MARK} disk name=vda ")
    # IMDSv2 is required for this instance: the guest got a token and, with it, its id
    assert f"{MARK} token=ok" in console, console
    assert _guest_lines(console, "instance-id") == [iid], console
    assert _guest_lines(console, "ip") == [instance["PrivateIpAddress"]], console
    between = console.split(f"{MARK} user-data-begin", 1)[1].split(f"{MARK} user-data-end")[0]
    assert between.strip() == user_data

    work = Path(services.config["data_dir"]) / "instances" / iid
    assert (work / "root.qcow2").exists()
    mac = _mac(node.app, iid)
    assert driver.dhcp_hosts(NETWORK)[mac] == instance["PrivateIpAddress"]
    assert driver.dhcp_leases(NETWORK).get(mac) == instance["PrivateIpAddress"]

    # reboot: the same guest boots again (a second boot marker) and finds its metadata
    ec2.reboot_instances(InstanceIds=[iid])
    _console_has(ec2, iid, f"{MARK} ready", count=2)

    # instance-store roots cannot stop, as in Eucalyptus
    with pytest.raises(ec2.exceptions.ClientError) as stop:
        ec2.stop_instances(InstanceIds=[iid])
    assert error_code(stop) == "UnsupportedOperation"

    terminate(ec2, [iid])
    assert iid not in driver.list_domains()
    assert not (work / "root.qcow2").exists()
    # the lease is released at once (dnsmasq tells libvirt's lease file a moment later)
    wait_until(lambda: mac not in driver.dhcp_leases(NETWORK), "the lease's release", 15,
               interval=1, show=lambda: driver.dhcp_leases(NETWORK))
    # the console log outlives the domain until the instance is forgotten
    assert f"{MARK} instance-id={iid}" in guest_console(ec2, iid)


def _mac(app, instance_id) -> str:
    from eucalite.compute.models import Instance
    from eucalite.db import db

    with app.app_context():
        return db.session.get(Instance, instance_id).mac


def test_two_guests_get_different_addresses_and_second_launch_copies_nothing(node):
    ec2 = node.client("ec2")
    cache = node.app.extensions["eucalite"].cluster.image_cache
    misses = cache.misses
    instances = _launch(ec2, node.image_id, "two", count=2)
    ids = [i["InstanceId"] for i in instances]
    try:
        for iid in ids:
            _console_has(ec2, iid, f"{MARK} ready")
        seen = {iid: _guest_lines(guest_console(ec2, iid), "ip")[-1] for iid in ids}
        assert len(set(seen.values())) == 2
        assert seen == {i["InstanceId"]: i["PrivateIpAddress"] for i in instances}
        # the image was cached by the first test: nothing was fetched again
        assert cache.misses == misses
    finally:
        terminate(ec2, ids)


def test_reconciler_notices_a_domain_destroyed_behind_its_back(node):
    from eucalite.compute import reconcile

    ec2 = node.client("ec2")
    services = node.app.extensions["eucalite"]
    [instance] = _launch(ec2, node.image_id, "reconcile")
    iid = instance["InstanceId"]
    wait_until(lambda: _running(ec2, iid), "running", BOOT_TIMEOUT, interval=1)
    services.cluster.driver.destroy(iid)          # as `virsh destroy; virsh undefine` would
    with node.app.app_context():
        report = reconcile.reconcile(services.cluster, services.ebs)
    assert iid in report.vanished
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert described["State"]["Name"] == "terminated"
    assert "vanished" in described["StateReason"]["Message"]
    work = Path(services.config["data_dir"]) / "instances" / iid
    assert not (work / "root.qcow2").exists()
