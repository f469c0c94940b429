"""CreateImage's consistency rule through boto3 on a live cloud (fake hypervisor, volumes as
files): without NoReboot the guest is shut down cleanly (forced off when it ignores the
request) and every volume is copied while its domain is off, then the same domain runs
again and the instance showed ``running`` throughout, even to a reconcile pass; with
NoReboot every volume is copied in ONE pause; a stopped instance is copied untouched.
The same with a real guest is tests/test_create_image_real.py."""
from __future__ import annotations

import threading
import time

import pytest
from ebsutil import new_volume, settle, wait_snapshot, write_pattern

from eucalite.cluster.virt.driver import PowerState
from eucalite.compute import lifecycle, reconcile
from eucalite.compute.models import Image
from eucalite.db import db
from eucalite.ebs import snapshots as ebs_snapshots


def _instance(live, ec2) -> tuple[str, str]:
    """(instance id, data volume id): a running EBS-backed instance with a data volume
    attached at /dev/sdf."""
    source = new_volume(live, ec2)
    write_pattern(live, source, 0, b"root")
    snap = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    image_id = ec2.register_image(Name="ebs", RootDeviceName="/dev/sda1", BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(live)
    data = new_volume(live, ec2)
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    settle(live)
    return instance_id, data


def _state(ec2, instance_id) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["State"]["Name"]


class Copies:
    """Watches the storage controller's volume copies: each records (volume id, the one
    domain's power state, None without a domain) in ``seen``; after :meth:`hold` each
    also waits until :meth:`release`."""

    def __init__(self, driver):
        self.driver = driver
        self.seen: list[tuple[str, PowerState | None]] = []
        self.released = threading.Event()
        self.released.set()

    def hold(self) -> None:
        self.seen.clear()
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def watch(self, copy):
        def watched(store, volume, *where):
            domains = self.driver.list_domains()
            self.seen.append((volume.id, next(iter(domains.values()), None)))
            assert self.released.wait(60)
            return copy(store, volume, *where)
        return watched


@pytest.fixture
def copies(ebs, monkeypatch):
    watcher = Copies(ebs.services.cluster.driver)
    monkeypatch.setattr(ebs_snapshots, "point_in_time_copy",
                        watcher.watch(ebs_snapshots.point_in_time_copy))
    yield watcher
    watcher.release()


def _image_done(live, ec2, image_id) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        settle(live)
        item = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        if item["State"] != "pending":
            return item
        time.sleep(0.05)
    raise AssertionError(f"{image_id} still pending")


def _wait(predicate, what: str):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_default_reboot_copies_every_volume_while_the_guest_is_off(ebs, copies):
    ec2 = ebs.client("ec2")
    driver = ebs.services.cluster.driver
    instance_id, data = _instance(ebs, ec2)
    root = [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]
            if v["Attachments"] and v["Attachments"][0]["Device"] == "/dev/sda1"][0]
    before = driver.history(instance_id)
    copies.hold()

    image_id = ec2.create_image(InstanceId=instance_id, Name="rebooted")["ImageId"]
    _wait(lambda: copies.seen, "the first copy")
    # off for the copies, yet running to the API and left alone by a reconcile pass
    assert driver.power_state(instance_id) == PowerState.SHUTOFF
    assert _state(ec2, instance_id) == "running"
    with ebs.app.app_context():
        reconcile.reconcile(ebs.services.cluster, ebs.services.ebs)
    assert _state(ec2, instance_id) == "running"
    assert driver.power_state(instance_id) == PowerState.SHUTOFF
    # a RebootInstances' job meanwhile would start the guest mid-copy: it leaves it off
    with ebs.app.app_context():
        lifecycle.reboot(ebs.services.cluster, instance_id)
    assert driver.power_state(instance_id) == PowerState.SHUTOFF
    copies.release()

    assert _image_done(ebs, ec2, image_id)["State"] == "available"
    assert sorted(copies.seen) == sorted([(root, PowerState.SHUTOFF),
                                          (data, PowerState.SHUTOFF)])
    assert driver.history(instance_id)[len(before):] == ["shutdown", "power_on"]
    assert driver.power_state(instance_id) == PowerState.RUNNING
    assert sorted(driver.disks(instance_id)) == ["vda", "vdc"]      # the same domain
    assert _state(ec2, instance_id) == "running"
    with ebs.app.app_context():
        reconcile.reconcile(ebs.services.cluster, ebs.services.ebs)
    assert _state(ec2, instance_id) == "running"


def test_a_guest_ignoring_the_shutdown_is_forced_off(ebs, copies, monkeypatch):
    ec2 = ebs.client("ec2")
    driver = ebs.services.cluster.driver
    instance_id, _data = _instance(ebs, ec2)
    driver.ignore_shutdown.add(instance_id)
    monkeypatch.setitem(ebs.services.ebs.config, "image_shutdown_seconds", 0.3)
    before = driver.history(instance_id)
    copies.seen.clear()

    image_id = ec2.create_image(InstanceId=instance_id, Name="forced")["ImageId"]
    assert _image_done(ebs, ec2, image_id)["State"] == "available"
    assert [state for _vid, state in copies.seen] == [PowerState.SHUTOFF] * 2
    assert driver.history(instance_id)[len(before):] == ["shutdown", "power_off", "power_on"]
    assert _state(ec2, instance_id) == "running"


def test_no_reboot_copies_every_volume_in_one_pause(ebs, copies):
    ec2 = ebs.client("ec2")
    driver = ebs.services.cluster.driver
    instance_id, _data = _instance(ebs, ec2)
    before = driver.history(instance_id)
    copies.seen.clear()

    image_id = ec2.create_image(InstanceId=instance_id, Name="paused", NoReboot=True)["ImageId"]
    assert _image_done(ebs, ec2, image_id)["State"] == "available"
    assert [state for _vid, state in copies.seen] == [PowerState.PAUSED] * 2
    assert driver.history(instance_id)[len(before):] == ["pause", "resume"]
    assert driver.power_state(instance_id) == PowerState.RUNNING


def test_a_stopped_instance_is_copied_untouched_and_the_image_names_it(ebs, copies):
    ec2 = ebs.client("ec2")
    instance_id, _data = _instance(ebs, ec2)
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)
    assert _state(ec2, instance_id) == "stopped"
    copies.seen.clear()

    image_id = ec2.create_image(InstanceId=instance_id, Name="stopped")["ImageId"]
    assert _image_done(ebs, ec2, image_id)["State"] == "available"
    # no domain at all
    assert len(copies.seen) == 2 and all(state is None for _vid, state in copies.seen)
    assert _state(ec2, instance_id) == "stopped"
    with ebs.app.app_context():     # DescribeImages' sourceInstanceId (slice E3) reads it
        assert db.session.get(Image, image_id).source_instance_id == instance_id


def test_a_group_that_cannot_be_recorded_whole_leaves_no_snapshot_pending(ebs):
    """create_snapshots records one snapshot per volume before its one job starts: when a
    later volume is refused, those already recorded end failed, never pending forever."""
    from eucalite.cli.common import admin_principal
    from eucalite.errors import AwsError

    ec2 = ebs.client("ec2")
    good = new_volume(ebs, ec2)
    with ebs.app.app_context(), pytest.raises(AwsError) as refused:
        ebs.services.ebs.create_snapshots(admin_principal(), [good, "vol-00000000"],
                                          "a group")
    assert refused.value.code == "InvalidVolume.NotFound"
    [snapshot] = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert (snapshot["VolumeId"], snapshot["State"]) == (good, "error")
