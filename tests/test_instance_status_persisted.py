"""DescribeInstanceStatus' checks are kept in the database: what the reconciler saw before a
restart reads the same after it (a new app on the same data directory, no pass in between);
a pass writes only when a check changes; an instance that stopped and started again is
``initializing`` until a pass looks at it, even when no pass ran while it was stopped."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from ebsutil import new_volume, settle, wait_snapshot
from ec2util import make_image, wait_for_state
from liveutil import start_live, start_live_node, stop_live
from eucalite.compute import reconcile
from eucalite.db import db


@pytest.fixture
def cloud(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def _pass(live) -> None:
    services = live.services
    with live.app.app_context():
        reconcile.reconcile(services.cluster, services.ebs,
                            board=services.compute.status_board)


def _statuses(ec2) -> dict[str, dict]:
    return {item["InstanceId"]: item
            for item in ec2.describe_instance_status()["InstanceStatuses"]}


def _launch(live, ec2, count) -> list[str]:
    ids = [item["InstanceId"] for item in ec2.run_instances(
        ImageId=make_image(live), MinCount=count, MaxCount=count)["Instances"]]
    wait_for_state(ec2, ids, "running")
    return ids


def test_checks_seen_before_a_restart_read_the_same_after_it(cloud, tmp_path):
    ec2 = cloud.client("ec2")
    fine, paused = _launch(cloud, ec2, 2)
    cloud.services.cluster.driver.pause(paused)
    _pass(cloud)
    before = _statuses(ec2)
    assert before[fine]["InstanceStatus"]["Status"] == "ok"
    assert before[paused]["InstanceStatus"]["Status"] == "impaired"
    assert before[paused]["SystemStatus"]["Status"] == "ok"
    impaired_since = before[paused]["InstanceStatus"]["Details"][0]["ImpairedSince"]

    # a new app on the same data directory; it runs no reconcile pass
    restarted, server = start_live(tmp_path / "data")
    try:
        after = _statuses(restarted.client("ec2"))
    finally:
        server.shutdown()
    assert after == before
    assert after[paused]["InstanceStatus"]["Details"][0]["ImpairedSince"] == impaired_since


def test_a_pass_that_sees_what_the_last_one_saw_writes_nothing(cloud):
    ec2 = cloud.client("ec2")
    ids = _launch(cloud, ec2, 3)
    board = cloud.services.compute.status_board
    node_id = cloud.services.cluster.local_node_id
    writes: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    with cloud.app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            board.saw(node_id, True, {instance_id: True for instance_id in ids})
            # the node's first look, and the instances'
            assert [w.split()[:2] for w in writes] == [["UPDATE", "nodes"],
                                                       ["UPDATE", "instances"]]
            writes.clear()
            board.saw(node_id, True, {instance_id: True for instance_id in ids})
            assert writes == []
            board.saw(node_id, True, {ids[0]: False, ids[1]: True, ids[2]: True})
            assert [w.split()[:2] for w in writes] == [["UPDATE", "instances"]]
            writes.clear()
            board.saw(node_id, True, {ids[0]: False, ids[1]: True, ids[2]: True})
            assert writes == []              # still impaired, since the first failure
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert _statuses(ec2)[ids[0]]["InstanceStatus"]["Status"] == "impaired"


def test_a_started_instance_is_initializing_until_a_pass_looks(ebs):
    ec2 = ebs.client("ec2")
    source = new_volume(ebs, ec2, size=1)
    snap = wait_snapshot(ebs, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    image = ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]
    instance_id = ec2.run_instances(ImageId=image, MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    settle(ebs)
    wait_for_state(ec2, [instance_id], "running")
    _pass(ebs)
    assert _statuses(ec2)[instance_id]["InstanceStatus"]["Status"] == "ok"

    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)
    wait_for_state(ec2, [instance_id], "stopped")
    ec2.start_instances(InstanceIds=[instance_id])
    settle(ebs)
    wait_for_state(ec2, [instance_id], "running")
    item = _statuses(ec2)[instance_id]
    assert item["InstanceStatus"]["Status"] == "initializing"
    assert item["SystemStatus"]["Status"] == "ok"
    _pass(ebs)
    assert _statuses(ec2)[instance_id]["InstanceStatus"]["Status"] == "ok"
