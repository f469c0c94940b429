"""ModifyVolume and DescribeVolumesModifications (issue 20's resize) through boto3 on a live
cloud with the fake hypervisor: a volume grows (its data first, then its recorded size), its
modification goes modifying -> optimizing -> completed as AWS shapes it, errors are AWS's,
an attached volume's guest is told the new size, a restart finishes a modification it
interrupted; on the test Ceph, the RBD image itself grows.
"""
from __future__ import annotations

import datetime as dt
import json

import cephutil
import pytest
from awsutil import error_code
from cephutil import needs_ceph
from ebsutil import new_volume, running_instance, settle, volume, volume_backing
from liveutil import start_live_node, stop_live
from s3util import second_account
from serverutil import wait_until

from eucalite.db import db
from eucalite.ebs.models import Volume, VolumeModification

GiB = 2**30


def _finished(live, ec2, volume_id) -> dict:
    """The volume's modification once it is completed or failed (polled: no waiter)."""
    def done():
        settle(live)
        item = ec2.describe_volumes_modifications(VolumeIds=[volume_id])[
            "VolumesModifications"][0]
        return item if item["ModificationState"] in ("completed", "failed") else None
    return wait_until(done, f"the modification of {volume_id} to end")


def test_grow_and_change_type_as_aws_reports_it(ebs):
    ec2 = ebs.client("ec2")
    volume_id = new_volume(ebs, ec2, size=1)
    started = ec2.modify_volume(VolumeId=volume_id, Size=2, VolumeType="gp3")[
        "VolumeModification"]
    assert started["VolumeId"] == volume_id
    assert started["ModificationState"] == "modifying"
    assert (started["OriginalSize"], started["TargetSize"]) == (1, 2)
    assert (started["OriginalVolumeType"], started["TargetVolumeType"]) == ("standard", "gp3")
    assert (started["TargetIops"], started["TargetThroughput"]) == (3000, 125)
    assert started["Progress"] == 0 and "StartTime" in started and "EndTime" not in started
    ended = _finished(ebs, ec2, volume_id)
    assert ended["ModificationState"] == "completed"
    assert ended["Progress"] == 100 and ended["EndTime"] >= ended["StartTime"]
    described = volume(ec2, volume_id)
    assert (described["Size"], described["VolumeType"]) == (2, "gp3")
    size, _allocated = volume_backing(ebs, volume_id).usage(volume_id)
    assert size == 2 * GiB
    # the next modification starts from what the last one made
    again = ec2.modify_volume(VolumeId=volume_id, Size=3, Iops=4000)["VolumeModification"]
    assert (again["OriginalSize"], again["OriginalVolumeType"], again["TargetVolumeType"]) \
        == (2, "gp3", "gp3")
    assert (again["OriginalIops"], again["TargetIops"], again["TargetThroughput"]) \
        == (3000, 4000, 125)
    assert _finished(ebs, ec2, volume_id)["TargetSize"] == 3
    assert volume(ec2, volume_id)["Size"] == 3
    # what was set stays when not asked again
    third = ec2.modify_volume(VolumeId=volume_id, Size=4)["VolumeModification"]
    assert (third["OriginalIops"], third["TargetIops"]) == (4000, 4000)
    _finished(ebs, ec2, volume_id)
    # a deleted volume's modification goes with it
    ec2.delete_volume(VolumeId=volume_id)
    settle(ebs)
    assert ec2.describe_volumes_modifications()["VolumesModifications"] == []
    with ebs.app.app_context():
        assert db.session.get(VolumeModification, volume_id) is None


def test_errors_are_aws(ebs):
    ec2 = ebs.client("ec2")
    volume_id = new_volume(ebs, ec2, size=2)
    missing = "vol-0123456789abcdef0"
    assert error_code(lambda: ec2.modify_volume(VolumeId=missing, Size=3)) \
        == "InvalidVolume.NotFound"
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, Size=1)) \
        == "InvalidParameterValue"                                   # shrinking
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, VolumeType="fast")) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, Iops=3000)) \
        == "InvalidParameterCombination"                             # standard has no IOPS
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, VolumeType="gp2",
                                                Throughput=200)) \
        == "InvalidParameterCombination"
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id)) == "MissingParameter"
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, Size=101)) \
        == "InvalidParameterValue"                                   # over max_volume_gb
    new_volume(ebs, ec2, size=60)
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, Size=100)) \
        == "VolumeLimitExceeded"                       # 60 + 2 grown by 98 > the cloud's 150
    assert error_code(lambda: ec2.describe_volumes_modifications(VolumeIds=[missing])) \
        == "InvalidVolume.NotFound"
    other, _other_id = second_account(ebs, "modify-peer", "ec2")
    assert error_code(lambda: other.modify_volume(VolumeId=volume_id, Size=3)) \
        == "InvalidVolume.NotFound"
    # none of that changed anything
    assert ec2.describe_volumes_modifications(VolumeIds=[volume_id])[
        "VolumesModifications"] == []
    assert volume(ec2, volume_id)["Size"] == 2
    # one modification at a time: one still modifying refuses the next
    ec2.modify_volume(VolumeId=volume_id, Size=3)
    _finished(ebs, ec2, volume_id)
    with ebs.app.app_context():
        db.session.get(VolumeModification, volume_id).state = "modifying"
        db.session.commit()
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, Size=4)) \
        == "IncorrectModificationState"
    # nor is a volume whose data is growing attached (its guest would open it midway)
    instance_id = running_instance(ebs, ec2)
    assert error_code(lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id,
                                                Device="/dev/sdf")) == "OperationNotPermitted"


def test_four_modifications_a_day_as_aws(ebs):
    """AWS (since January 2026): up to four modifications per volume in a rolling 24
    hours (config ``volume_modifications_per_day``), the next refused until the oldest is
    a day old."""
    ec2 = ebs.client("ec2")
    volume_id = new_volume(ebs, ec2, size=1)
    for size in (2, 3, 4, 5):
        ec2.modify_volume(VolumeId=volume_id, Size=size)
        assert _finished(ebs, ec2, volume_id)["ModificationState"] == "completed"
    assert error_code(lambda: ec2.modify_volume(VolumeId=volume_id, Size=6)) \
        == "VolumeModificationRateExceeded"
    assert volume(ec2, volume_id)["Size"] == 5
    with ebs.app.app_context():                 # the first of the four is a day old now
        row = db.session.get(VolumeModification, volume_id)
        starts = json.loads(row.recent_starts_json)
        starts[0] = (dt.datetime.fromisoformat(starts[0]) - dt.timedelta(days=1)).isoformat()
        row.recent_starts_json = json.dumps(starts)
        db.session.commit()
    ec2.modify_volume(VolumeId=volume_id, Size=6)
    assert _finished(ebs, ec2, volume_id)["TargetSize"] == 6


def test_describe_filters_and_pages(ebs):
    ec2 = ebs.client("ec2")
    ids = sorted(new_volume(ebs, ec2, size=1) for _ in range(7))
    untouched = ids.pop()
    for number, volume_id in enumerate(ids):
        ec2.modify_volume(VolumeId=volume_id, Size=2 + number % 2)
    for volume_id in ids:
        _finished(ebs, ec2, volume_id)
    everything = ec2.describe_volumes_modifications()["VolumesModifications"]
    assert sorted(m["VolumeId"] for m in everything) == ids            # never modified: none
    assert ec2.describe_volumes_modifications(VolumeIds=[untouched])[
        "VolumesModifications"] == []

    def matching(name, *values):
        return sorted(m["VolumeId"] for m in ec2.describe_volumes_modifications(
            Filters=[{"Name": name, "Values": list(values)}])["VolumesModifications"])
    assert matching("target-size", "3") == ids[1::2]
    assert matching("modification-state", "completed") == ids
    assert matching("modification-state", "modifying", "optimizing") == []
    assert matching("volume-id", ids[0]) == ids[:1]
    assert matching("original-size", "1") == ids
    assert error_code(lambda: matching("colour", "blue")) == "InvalidParameterValue"
    seen, token = [], None
    while True:
        page = ec2.describe_volumes_modifications(
            MaxResults=5, **({"NextToken": token} if token else {}))
        assert len(page["VolumesModifications"]) <= 5
        seen += [m["VolumeId"] for m in page["VolumesModifications"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == ids and len(seen) == len(ids)


def test_an_attached_volume_tells_the_guest(ebs):
    ec2 = ebs.client("ec2")
    instance_id = running_instance(ebs, ec2)
    volume_id = new_volume(ebs, ec2, size=1)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)
    assert volume(ec2, volume_id)["State"] == "in-use"
    ec2.modify_volume(VolumeId=volume_id, Size=2)
    assert _finished(ebs, ec2, volume_id)["ModificationState"] == "completed"
    with ebs.app.app_context():
        target = db.session.get(Volume, volume_id).target
    domain = ebs.services.cluster.local_node.driver._get(instance_id)
    assert domain.disk_sizes == {target: 2 * GiB}
    assert volume(ec2, volume_id)["Size"] == 2


def test_a_restart_finishes_an_interrupted_modification(ebs):
    """Killed after ModifyVolume recorded the modification, before its job ran: the
    restart grows the data and completes it (and a second run changes nothing)."""
    ec2 = ebs.client("ec2")
    volume_id = new_volume(ebs, ec2, size=1)
    ec2.modify_volume(VolumeId=volume_id, Size=2)
    _finished(ebs, ec2, volume_id)
    services = ebs.services
    with ebs.app.app_context():                 # as if the job had not run yet
        row = db.session.get(VolumeModification, volume_id)
        row.state, row.original_size, row.target_size, row.progress = "modifying", 2, 4, 0
        row.end_time = None
        db.session.commit()
        assert volume_id in services.ebs.recover()
    assert _finished(ebs, ec2, volume_id)["ModificationState"] == "completed"
    assert volume(ec2, volume_id)["Size"] == 4
    assert volume_backing(ebs, volume_id).usage(volume_id)[0] == 4 * GiB


@pytest.fixture
def rbd_cloud(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                                   max_volume_gb=100, max_total_volume_gb=150,
                                   **cephutil.rbd_options())
    yield live
    stop_live(live, server)


@needs_ceph
def test_an_rbd_volume_grows_its_image(rbd_cloud):
    ec2 = rbd_cloud.client("ec2")
    volume_id = new_volume(rbd_cloud, ec2, size=1)
    rados, rbd = cephutil.rados_modules()
    cluster = rados.Rados(conffile=cephutil.CONF, rados_id=cephutil.USER,
                          conf={"keyring": cephutil.KEYRING})
    cluster.connect(timeout=10)
    try:
        ioctx = cluster.open_ioctx(cephutil.POOL)

        def image_size() -> int:
            with rbd.Image(ioctx, volume_id, read_only=True) as image:
                return image.size()
        assert image_size() == GiB
        ec2.modify_volume(VolumeId=volume_id, Size=2)
        assert _finished(rbd_cloud, ec2, volume_id)["ModificationState"] == "completed"
        assert image_size() == 2 * GiB
        assert volume(ec2, volume_id)["Size"] == 2
        ioctx.close()
    finally:
        ec2.delete_volume(VolumeId=volume_id)
        settle(rbd_cloud)
        cluster.shutdown()
