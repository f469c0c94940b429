"""End to end on real libvirtd + QEMU and the test command's throwaway Ceph: volumes as RBD
images attached to running tiny guests by QEMU's own librbd (no iSCSI, no export).

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt and the test Ceph cluster is up
(``./setup.sh test`` starts both); skipped with the reason otherwise. Through boto3: a
volume with a known pattern (written into the image with librbd) is attached to a running
guest, which reports a disk with the volume's serial and the pattern's md5; the guest
writes a pattern of its own (a user-data script), which reads back from the image after
the detach; the volume, snapshotted while attached (an RBD snapshot, the guest paused),
gives a volume (an RBD clone) that a second guest sees with the same bytes, the first
guest's write included. The domain XML
names the libvirt ceph secret, never the cephx key. An EBS-backed image boots from an RBD
root volume cloned from its snapshot.
"""
from __future__ import annotations

import hashlib
import os

import cephutil
import pytest
from ebsutil import read_volume, write_pattern
from guestutil import (BOOT_TIMEOUT, MARK, ebs_image, guest_console, guest_disk, live_cloud,
                       ready_instance, requires_real_libvirt, root_guest, terminate,
                       volume_state)
from serverutil import wait_until

from eucalite import ceph

NETWORK = "eucalite-rbdtest"
MiB = 2**20
#: What the guest's user-data script writes at 1 MiB into the first volume disk it finds.
GUEST_WRITES = "written by the guest through librbd"

pytestmark = [requires_real_libvirt, cephutil.needs_ceph]

# A user-data script (run by the tiny guest's /init in the background): wait for a volume
# disk (its serial starts with "vol") and write GUEST_WRITES at 1 MiB into it, durably.
USER_DATA = f"""#!/bin/sh
while true; do
  for d in /sys/block/vd*; do
    if grep -q '^vol' "$d/serial" 2>/dev/null; then
      printf '{GUEST_WRITES}' | dd of=/dev/${{d##*/}} bs=1M seek=1 conv=fsync 2>/dev/null
      echo "{MARK} guest-wrote ${{d##*/}}"
      exit 0
    fi
  done
  sleep 1
done
"""


@pytest.fixture(scope="module")
def guest_files(tmp_path_factory):
    return root_guest(tmp_path_factory, "the instance bridge and the metadata address "
                                        "need root")


@pytest.fixture(scope="module")
def cloud(guest_files):
    """Volumes as RBD images in the test pool, snapshots kept in Ceph."""
    yield from live_cloud("local", guest_files, NETWORK, "eurbdbr0", "10.223.0.0/24",
                          rbd_snapshots="ceph", **cephutil.rbd_options())




def _domain_xml(cloud, instance_id) -> str:
    driver = cloud.app.extensions["eucalite"].cluster.driver
    return driver._conn().lookupByName(f"eucalite-{instance_id}").XMLDesc(0)


def test_a_volume_on_rbd_reaches_real_guests_through_librbd(cloud):
    ec2 = cloud.client("ec2")
    first = ready_instance(ec2, cloud.image_id, USER_DATA)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "the volume", 30, interval=1)
    pattern = os.urandom(MiB)
    write_pattern(cloud, volume_id, 0, pattern)
    expected = hashlib.md5(pattern).hexdigest()

    ec2.attach_volume(VolumeId=volume_id, InstanceId=first, Device="/dev/sdf")
    wait_until(lambda: volume_state(ec2, volume_id) == "attached", "attached", 60, interval=1)
    seen = guest_disk(ec2, first, volume_id)
    assert (seen["size"], seen["md5"]) == (2**30 // 512, expected)
    xml = _domain_xml(cloud, first)
    assert f'protocol="rbd" name="{cephutil.POOL}/{volume_id}"' in xml.replace("'", '"')
    key = ceph.cephx_key(cephutil.rbd_options())
    assert key not in xml and "secret type='ceph'" in xml.replace('"', "'")
    # the guest writes into the image (durably); a snapshot of the attached volume (an RBD
    # snapshot, taken with the guest paused) holds the write, and so does the image
    wait_until(lambda: f"{MARK} guest-wrote {seen['name']}" in guest_console(ec2, first),
               "the guest's write", 60, interval=1,
               show=lambda: guest_console(ec2, first)[-2000:])
    snapshot_id = ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0][
        "State"] == "completed", "the snapshot", 120, interval=1)
    ec2.detach_volume(VolumeId=volume_id)
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "detached", 60, interval=1)
    wait_until(lambda: f"{MARK} disk-gone name={seen['name']}" in guest_console(ec2, first),
               "the guest to see the disk go", 30, interval=1)
    assert read_volume(cloud, volume_id, MiB, len(GUEST_WRITES)) == GUEST_WRITES.encode()
    terminate(ec2, [first])

    # the snapshot (kept in Ceph) -> a clone -> a second guest sees the same bytes
    write_pattern(cloud, volume_id, MiB, b"overwritten after the snapshot")
    copy = ec2.create_volume(SnapshotId=snapshot_id, AvailabilityZone="eucalyptus-1a")[
        "VolumeId"]
    wait_until(lambda: volume_state(ec2, copy) == "available", "the volume from the snapshot",
               60, interval=1)
    second = ready_instance(ec2, cloud.image_id)
    ec2.attach_volume(VolumeId=copy, InstanceId=second, Device="/dev/sdg")
    assert guest_disk(ec2, second, copy)["md5"] == expected
    assert read_volume(cloud, copy, MiB, len(GUEST_WRITES)) == GUEST_WRITES.encode()
    terminate(ec2, [second])
    wait_until(lambda: volume_state(ec2, copy) == "available", "detach on terminate", 30,
               interval=1)
    for vid in (copy, volume_id):
        ec2.delete_volume(VolumeId=vid)
    ec2.delete_snapshot(SnapshotId=snapshot_id)


def test_an_ebs_backed_image_boots_from_an_rbd_root(cloud, guest_files):
    ec2 = cloud.client("ec2")
    image_id, _source, root_md5 = ebs_image(cloud, guest_files)
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    wait_until(lambda: f"{MARK} ready" in guest_console(ec2, instance_id),
               f"{instance_id} ready", BOOT_TIMEOUT, interval=1,
               show=lambda: guest_console(ec2, instance_id)[-2000:])
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    [root] = [m["Ebs"]["VolumeId"] for m in described["BlockDeviceMappings"]
              if m["DeviceName"] == "/dev/sda1"]
    assert guest_disk(ec2, instance_id, root, BOOT_TIMEOUT)["md5"] == root_md5
    assert f'name="{cephutil.POOL}/{root}"' in _domain_xml(cloud, instance_id).replace("'", '"')
    terminate(ec2, [instance_id])


# A user-data script: report each volume disk's size (512-byte sectors) whenever it changes.
SIZE_WATCH = f"""#!/bin/sh
last=""
while true; do
  now=""
  for d in /sys/block/vd*; do
    grep -q '^vol' "$d/serial" 2>/dev/null && now="$now ${{d##*/}}=$(cat $d/size)"
  done
  [ "$now" != "$last" ] && echo "{MARK} volume-sizes$now" && last=$now
  sleep 1
done
"""


def test_modify_volume_grows_an_attached_rbd_disk_the_guest_sees(cloud):
    """ModifyVolume of an attached RBD volume: the image grows and the node resizes the
    disk in QEMU (libvirt blockResize), so the running guest sees the new size at once."""
    ec2 = cloud.client("ec2")
    instance_id = ready_instance(ec2, cloud.image_id, SIZE_WATCH)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone="eucalyptus-1a")["VolumeId"]
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "the volume", 30, interval=1)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    name = guest_disk(ec2, instance_id, volume_id)["name"]
    ec2.modify_volume(VolumeId=volume_id, Size=2)
    wait_until(lambda: ec2.describe_volumes_modifications(VolumeIds=[volume_id])[
        "VolumesModifications"][0]["ModificationState"] == "completed", "the modification",
        60, interval=1)
    grown = f"{name}={2 * 2**30 // 512}"
    wait_until(lambda: any(grown in line.split() for line in guest_console(
        ec2, instance_id).splitlines() if f"{MARK} volume-sizes" in line),
        "the guest to see 2 GiB", 30, interval=1,
        show=lambda: guest_console(ec2, instance_id)[-2000:])
    terminate(ec2, [instance_id])
    wait_until(lambda: volume_state(ec2, volume_id) == "available", "detach on terminate", 30,
               interval=1)
    ec2.delete_volume(VolumeId=volume_id)
