"""Helpers for the EBS tests (volumes and snapshots through boto3 on a live cloud, the
``ebs`` fixture of tests/conftest.py): waiting for the job worker, volumes made and read
(their bytes wherever the backend keeps them: a file, an RBD image), snapshots waited
for; and the mark for tests about volume files themselves."""
from __future__ import annotations

import hashlib
import os
import time

import cephutil
import pytest
from ec2util import make_image

#: Tests about how volume FILES reach nodes (local files, iSCSI targets and their CHAP
#: accounts): skipped on the pass whose apps keep new volumes in the test Ceph's RBD pool,
#: where nodes open images with librbd instead (tests/test_ebs_rbd*.py cover that).
file_volumes_only = pytest.mark.skipif(
    os.environ.get("EUCALITE_TEST_EBS_ON_CEPH") == "1" and bool(cephutil.CONF),
    reason="about volume files exported to nodes; this pass keeps volumes in RBD")


def settle(live):
    """Wait until the job worker (volume and snapshot jobs) has nothing left to do."""
    live.services.compute.worker.wait(timeout=60)


def volume(ec2, volume_id) -> dict:
    """DescribeVolumes' item for *volume_id*."""
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def new_volume(live, ec2, size=1, **kwargs) -> str:
    """A new volume of *size* GiB, available."""
    volume_id = ec2.create_volume(Size=size, AvailabilityZone="eucalyptus-1a",
                                  **kwargs)["VolumeId"]
    settle(live)
    assert volume(ec2, volume_id)["State"] == "available"
    return volume_id


def running_instance(live, ec2) -> str:
    """A new instance of a recorded image, launched."""
    image = make_image(live)
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(live)
    return instance_id


def write_pattern(live, volume_id, offset, data: bytes) -> None:
    """Write *data* at *offset* into the volume (its file or RBD image, as a guest
    would)."""
    volume_backing(live, volume_id).write(volume_id, offset, data)


def digest(path) -> str:
    """The SHA-256 of the file at *path*."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def wait_snapshot(live, ec2, snapshot_id) -> dict:
    """DescribeSnapshots' item once the snapshot is no longer pending (60 s at most)."""
    for _ in range(600):
        settle(live)
        item = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
        if item["State"] != "pending":
            return item
        time.sleep(0.1)
    raise AssertionError("snapshot still pending")


# --- a volume's bytes, wherever its backend keeps them (a file, an RBD image) --------------

def volume_backing(live_or_app, volume_id):
    """The storage controller's backing of *volume_id* (a live cloud's, or an app's)."""
    from eucalite.db import db
    from eucalite.ebs.models import Volume
    app = getattr(live_or_app, "app", live_or_app)
    with app.app_context():
        row = db.session.get(Volume, volume_id)
        assert row is not None, f"no volume {volume_id}"
        return app.extensions["eucalite"].ebs.backing_of(row)


def read_volume(live_or_app, volume_id, offset, length) -> bytes:
    """*length* bytes of the volume at *offset* (as a guest would read them)."""
    return volume_backing(live_or_app, volume_id).read(volume_id, offset, length)


def volume_digest(live_or_app, volume_id) -> str:
    """The SHA-256 of the volume's whole data."""
    backing = volume_backing(live_or_app, volume_id)
    size, _allocated = backing.usage(volume_id)
    sha = hashlib.sha256()
    for offset in range(0, size, 4 * 2**20):
        sha.update(backing.read(volume_id, offset, min(4 * 2**20, size - offset)))
    return sha.hexdigest()
