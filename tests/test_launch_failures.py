"""Failures on the slow half of the instance lifecycle, through boto3 on the fake hypervisor
with volumes exported as local files: every failed job ends in a state the user sees, with
a reason, and gives back what it held.

A launch that fails ends ``terminated`` with a ``StateReason`` (``Server.InternalError``,
``Client.VolumeLimitExceeded``), its node capacity returned, its DHCP entry and the volumes
it made with delete-on-termination gone. A StartInstances whose spawn fails goes back to
``stopped`` with the reason, its volumes still attached, and can be started again. A stop
the hypervisor refuses goes back to ``running`` with the reason. The same launch failure on
real libvirt + tgt (CHAP secrets and targets cleaned up) is in tests/test_ebs_real.py.
"""
from __future__ import annotations

import pytest

from eucalite.cluster.virt.driver import DriverError
from ebsutil import new_volume, settle, wait_snapshot, write_pattern
from ec2util import make_image, small_capacity, used_cores


def _described(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


def _failing(live, monkeypatch, message="the hypervisor refused"):
    """Make the node's hypervisor refuse every spawn from now on."""
    def refuse(spec):
        raise DriverError(f"cannot start eucalite-{spec.instance_id}: {message}")
    monkeypatch.setattr(live.services.cluster.driver, "spawn", refuse)


def _ebs_image(live, ec2) -> str:
    source = new_volume(live, ec2, size=1)
    write_pattern(live, source, 0, b"bootable root " * 1000)
    snap = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    return ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]


def _volumes_of(ec2, instance_id) -> list[dict]:
    return ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                          "Values": [instance_id]}])["Volumes"]


def test_a_move_the_table_forbids_is_an_error_not_a_silent_no_op(ebs):
    from eucalite.compute import states

    with ebs.app.app_context():
        with pytest.raises(ValueError, match="pending -> stopping"):
            states.transition("i-00000000000000000", states.STOPPING,
                              expected={states.PENDING})


def _asked_moves(source: str) -> list[tuple[int, set[str], str]]:
    """(line, expected states, target) of every ``states.transition(id, states.X,
    expected={states.Y, ...})`` call in *source* that names them all (a target held in a
    variable is left to transition's own check, at run time)."""
    import ast

    from eucalite.compute import states

    def state(node):        # states.X; None for anything else (a state read from a row)
        return getattr(states, node.attr, None) if isinstance(node, ast.Attribute) and \
            getattr(node.value, "id", "") == "states" else None

    moves = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "transition" and getattr(node.func.value, "id", "") \
                == "states" and len(node.args) >= 2:
            expected = [k.value for k in node.keywords if k.arg == "expected"]
            if expected and isinstance(expected[0], ast.Set) and state(node.args[1]) and \
                    all(state(element) for element in expected[0].elts):
                moves.append((node.lineno, {state(e) for e in expected[0].elts},
                              state(node.args[1])))
    return moves


def test_every_move_the_code_asks_for_is_in_the_table():
    """Read the code: a transition the table forbids can never happen, so asking for one
    (as the failure paths of spawn and stop did) is a bug even on a path no test takes."""
    from pathlib import Path

    import eucalite
    from eucalite.compute import states

    forbidden, checked = [], 0
    for path in Path(eucalite.__file__).parent.rglob("*.py"):
        for line, expected, target in _asked_moves(path.read_text()):
            checked += 1
            bad = expected - states.allowed_from(target)
            if bad:
                forbidden.append(f"{path.name}:{line}: {sorted(bad)} -> {target}")
    assert checked >= 8             # the walk found the lifecycle's calls
    assert not forbidden


def test_failed_spawn_ends_terminated_with_reason_and_gives_everything_back(ebs, monkeypatch):
    ec2 = ebs.client("ec2")
    image = make_image(ebs)
    before = used_cores(ebs)
    driver = ebs.services.cluster.driver
    hosts_before = driver.dhcp_hosts(ebs.services.config["instance_network"])
    _failing(ebs, monkeypatch)
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)

    described = _described(ec2, instance_id)
    assert described["State"]["Name"] == "terminated"
    assert described["StateReason"]["Code"] == "Server.InternalError"
    assert "the hypervisor refused" in described["StateReason"]["Message"]
    assert used_cores(ebs) == before                        # its capacity is back
    assert instance_id not in driver.list_domains()
    assert driver.dhcp_hosts(ebs.services.config["instance_network"]) == hosts_before


def test_ebs_launch_over_the_cloud_volume_limit_is_refused_up_front(ebs):
    """RunInstances records the volumes a launch makes with its instances, so the cloud's
    storage limit refuses it in the API answer: nothing launched, no volume made."""
    from awsutil import error_code

    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    ebs.services.config["max_total_volume_gb"] = 1     # the source volume uses it all
    before = used_cores(ebs)
    assert error_code(ec2.run_instances, ImageId=image_id, MinCount=1,
                      MaxCount=1) == "VolumeLimitExceeded"
    settle(ebs)
    assert used_cores(ebs) == before
    assert ec2.describe_instances()["Reservations"] == []
    assert len(ec2.describe_volumes()["Volumes"]) == 1     # only the source


def _break(live, monkeypatch, where: str) -> None:
    """Make the next EBS launch fail at *where* on its way to a running domain."""
    from eucalite.ebs import snapshots
    from eucalite.ebs.export import ExportError
    from eucalite.errors import ServiceUnavailable

    def fail(exc):
        def raiser(*args, **kwargs):
            raise exc
        return raiser
    if where == "no hypervisor":
        monkeypatch.setattr(live.services.cluster, "node_for",
                            fail(ServiceUnavailable("No hypervisor for node: gone")))
    elif where == "network":
        monkeypatch.setattr(live.services.cluster.driver, "add_dhcp_host",
                            fail(DriverError("no libvirt network eucalite")))
        monkeypatch.setattr(live.services.cluster.driver, "dhcp_host", lambda *a: None)
    elif where == "root from snapshot":
        monkeypatch.setattr(snapshots, "restore_into", fail(OSError(28, "No space left")))
    elif where == "export":
        monkeypatch.setattr(_exporter(live), "create_export",
                            fail(ExportError("tgtadm: the target daemon refused")))
    else:
        _failing(live, monkeypatch)


def _exporter(live):
    """The export driver new volumes of *live* reach this host's node by (their backend's:
    files' configured one, or RBD's)."""
    ebs = live.services.ebs
    return ebs.exporter_for(None, ebs.new_volume_backend())[0]


@pytest.mark.parametrize("where", ["no hypervisor", "network", "root from snapshot", "export",
                                   "hypervisor"])
def test_failed_ebs_launch_deletes_the_root_volume_it_made(ebs, monkeypatch, where):
    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    before = used_cores(ebs)
    exporter = _exporter(ebs)
    driver = ebs.services.cluster.driver
    hosts_before = driver.dhcp_hosts(ebs.services.config["instance_network"])
    volumes_before = ec2.describe_volumes()["Volumes"]
    _break(ebs, monkeypatch, where)
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)

    described = _described(ec2, instance_id)
    assert described["State"]["Name"] == "terminated"
    assert described["StateReason"]["Code"] == "Server.InternalError"
    assert used_cores(ebs) == before
    # the root it made (delete on termination) went, with its export
    assert ec2.describe_volumes()["Volumes"] == volumes_before
    assert not exporter.exported()
    assert instance_id not in driver.list_domains()
    assert driver.dhcp_hosts(ebs.services.config["instance_network"]) == hosts_before


def test_failed_start_goes_back_to_stopped_and_can_start_again(ebs, monkeypatch):
    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    data = new_volume(ebs, ec2)
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)
    stopped_cores = used_cores(ebs)

    with monkeypatch.context() as patch:
        _failing(ebs, patch)
        ec2.start_instances(InstanceIds=[instance_id])
        settle(ebs)
        described = _described(ec2, instance_id)
        assert described["State"]["Name"] == "stopped"
        assert described["StateReason"]["Code"] == "Server.InternalError"
        assert used_cores(ebs) == stopped_cores
        # its volumes stay with it, root included, as a stopped instance's do
        assert {v["VolumeId"]: v["Attachments"][0]["State"]
                for v in _volumes_of(ec2, instance_id)}.get(data) == "attached"
        assert len(_volumes_of(ec2, instance_id)) == 2

    ec2.start_instances(InstanceIds=[instance_id])
    settle(ebs)
    assert _described(ec2, instance_id)["State"]["Name"] == "running"
    assert "vdc" in ebs.services.cluster.driver.disks(instance_id)


def test_refused_stop_goes_back_to_running_with_the_reason(ebs, monkeypatch):
    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    cores = used_cores(ebs)

    def refuse(instance_id):
        raise DriverError("cannot destroy: the hypervisor refused")
    monkeypatch.setattr(ebs.services.cluster.driver, "destroy", refuse)
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)

    described = _described(ec2, instance_id)
    assert described["State"]["Name"] == "running"
    assert described["StateReason"]["Code"] == "Server.InternalError"
    assert "the hypervisor refused" in described["StateReason"]["Message"]
    assert used_cores(ebs) == cores


def test_start_interrupted_by_a_restart_goes_back_to_stopped_keeping_its_root(ebs, monkeypatch):
    """The process died between StartInstances and the spawn: the next start-up's
    reconciler ends that launch as a failed start (stopped), never as a terminated
    instance whose root volume would be deleted with it."""
    from eucalite.compute import reconcile

    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)
    [root] = _volumes_of(ec2, instance_id)
    stopped_cores = used_cores(ebs)
    with monkeypatch.context() as patch:
        patch.setattr(ebs.services.compute.worker, "submit", lambda job, *args: None)
        ec2.start_instances(InstanceIds=[instance_id])     # its spawn job dies with us
    assert _described(ec2, instance_id)["State"]["Name"] == "pending"

    with ebs.app.app_context():
        report = reconcile.reconcile(ebs.services.cluster, ebs.services.ebs, startup=True)
    assert instance_id in report.interrupted
    described = _described(ec2, instance_id)
    assert described["State"]["Name"] == "stopped"
    assert described["StateReason"]["Code"] == "Server.InternalError"
    assert [v["VolumeId"] for v in _volumes_of(ec2, instance_id)] == [root["VolumeId"]]
    assert used_cores(ebs) == stopped_cores


def test_attach_whose_export_fails_comes_back_available(ebs, monkeypatch):
    from eucalite.ebs.export import ExportError

    ec2 = ebs.client("ec2")
    instance_id = ec2.run_instances(ImageId=make_image(ebs), MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    volume_id = new_volume(ebs, ec2)

    def refuse(volume_id, path):
        raise ExportError(f"cannot export {volume_id}: the target daemon refused")
    monkeypatch.setattr(_exporter(ebs), "create_export", refuse)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)

    described = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert described["State"] == "available"
    assert described["Attachments"] == []
    assert "vdc" not in ebs.services.cluster.driver.disks(instance_id)


def test_terminate_the_hypervisor_refused_is_retried_by_the_reconciler(ebs, monkeypatch):
    """A destroy that failed leaves the instance shutting-down with the reason, and the
    next reconciler pass (not only a restart) finishes the termination."""
    from eucalite.compute import reconcile

    ec2 = ebs.client("ec2")
    before = used_cores(ebs)
    instance_id = ec2.run_instances(ImageId=make_image(ebs), MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    driver = ebs.services.cluster.driver
    with monkeypatch.context() as patch:
        def refuse(instance_id):
            raise DriverError("cannot destroy: the hypervisor refused")
        patch.setattr(driver, "destroy", refuse)
        ec2.terminate_instances(InstanceIds=[instance_id])
        settle(ebs)
    described = _described(ec2, instance_id)
    assert described["State"]["Name"] == "shutting-down"
    assert "the hypervisor refused" in described["StateReason"]["Message"]

    with ebs.app.app_context():
        report = reconcile.reconcile(ebs.services.cluster, ebs.services.ebs)
    assert instance_id in report.finished_terminations
    assert _described(ec2, instance_id)["State"]["Name"] == "terminated"
    assert instance_id not in driver.list_domains()
    assert used_cores(ebs) == before


def test_launch_interrupted_while_making_its_root_leaves_no_volume(ebs, monkeypatch):
    """The process died before the root volume of a launch was restored from its snapshot
    (RunInstances recorded it, creating): at the next start the launch ends terminated and
    that unmade root is deleted, not finished into a volume attached to an instance that
    never ran."""
    from eucalite.compute import reconcile

    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    volumes_before = ec2.describe_volumes()["Volumes"]
    before = used_cores(ebs)
    with monkeypatch.context() as patch:
        patch.setattr(ebs.services.compute.worker, "submit", lambda job, *args: None)
        instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
    [root] = _volumes_of(ec2, instance_id)
    assert root["State"] == "creating"

    with ebs.app.app_context():           # what the next start does
        ebs.services.ebs.recover()
        reconcile.reconcile(ebs.services.cluster, ebs.services.ebs, startup=True)
    settle(ebs)
    assert _described(ec2, instance_id)["State"]["Name"] == "terminated"
    assert ec2.describe_volumes()["Volumes"] == volumes_before
    assert used_cores(ebs) == before


def test_start_instances_is_all_or_nothing_when_capacity_runs_out(ebs):
    """StartInstances of two stopped instances with room for one: InsufficientInstance-
    Capacity, and neither starts (the first one no longer starts behind the error)."""
    from awsutil import error_code

    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image_id, MinCount=2,
                                                      MaxCount=2)["Instances"]]
    settle(ebs)
    ec2.stop_instances(InstanceIds=ids)
    settle(ebs)
    ec2.run_instances(ImageId=make_image(ebs), MinCount=small_capacity(ebs) - 1,
                      MaxCount=small_capacity(ebs) - 1)     # room for one more
    settle(ebs)
    cores = used_cores(ebs)

    assert error_code(lambda: ec2.start_instances(InstanceIds=ids)) == \
        "InsufficientInstanceCapacity"
    settle(ebs)
    assert [_described(ec2, i)["State"]["Name"] for i in ids] == ["stopped", "stopped"]
    assert used_cores(ebs) == cores


def test_stop_interrupted_by_a_restart_is_finished_at_the_next_start(ebs, monkeypatch):
    from eucalite.compute import reconcile

    ec2 = ebs.client("ec2")
    image_id = _ebs_image(ebs, ec2)
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    before_stop = used_cores(ebs)
    with monkeypatch.context() as patch:
        patch.setattr(ebs.services.compute.worker, "submit", lambda job, *args: None)
        ec2.stop_instances(InstanceIds=[instance_id])        # its stop job dies with us
    assert _described(ec2, instance_id)["State"]["Name"] == "stopping"

    with ebs.app.app_context():
        report = reconcile.reconcile(ebs.services.cluster, ebs.services.ebs, startup=True)
    assert _described(ec2, instance_id)["State"]["Name"] == "stopped"
    assert instance_id in report.finished_stops
    assert instance_id not in ebs.services.cluster.driver.list_domains()
    assert used_cores(ebs) == before_stop - 1
