"""Cloud-bursting against a fake remote (tests/burstutil.py): targets and their sealed
credentials, placement (the burst zone, when-full, always), the remote acting for the
local API (describe, terminate, reboot, console output), and the reconciler (states,
leaks, vanished instances, an unreachable remote and its return)."""
from __future__ import annotations

import os
import stat

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from burstutil import FakeRemote, add_target, age, settle, use_fake
from ec2util import make_image
from eucalite.burst import sealed
from eucalite.burst.models import BurstTarget
from eucalite.cli.main import main
from eucalite.compute.models import Instance
from eucalite.db import db


@pytest.fixture
def burst(live, monkeypatch):
    """A cloud with no local capacity (no node), a when-full target on a fake remote."""
    make_image(live)
    fake = FakeRemote()
    use_fake(live, monkeypatch, fake)
    add_target(live)
    return live, fake


def _run(live, count=1, **params):
    answer = live.client("ec2").run_instances(ImageId="emi-0a1b2c3d", InstanceType="m1.small",
                                              MinCount=count, MaxCount=count, **params)
    return [item["InstanceId"] for item in answer["Instances"]], answer


def _describe(live, ids):
    answer = live.client("ec2").describe_instances(InstanceIds=ids)
    items = {item["InstanceId"]: item for reservation in answer["Reservations"]
             for item in reservation["Instances"]}
    return [items[instance_id] for instance_id in ids]


def _row(live, instance_id) -> Instance:
    with live.app.app_context():
        row = db.session.get(Instance, instance_id)
        db.session.expunge(row)
        return row


# --- targets ---------------------------------------------------------------------------

def test_credentials_are_sealed_under_a_private_key_file(live):
    add_target(live)
    data_dir = live.app.config["EUCALITE"]["data_dir"]
    key_file = os.path.join(data_dir, sealed.KEY_FILE)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with live.app.app_context():
        target = db.session.get(BurstTarget, "far")
        assert "remote-secret" not in target.credentials
        assert "AKIDREMOTE" not in target.credentials
        assert sealed.unseal(data_dir, "far", target.credentials) == \
            ("AKIDREMOTE", "remote-secret")
        with pytest.raises(Exception):      # sealed for "far": does not open as another
            sealed.unseal(data_dir, "other", target.credentials)


def test_bad_target_settings_are_refused(live):
    with pytest.raises(Exception, match="not an http"):
        add_target(live, endpoint="ftp://x")
    with pytest.raises(Exception, match="Invalid burst target name"):
        add_target(live, name="Bad Name")
    with pytest.raises(Exception, match="Policy must be"):
        add_target(live, policy="sometimes")
    add_target(live)
    with pytest.raises(Exception, match="already exists"):
        add_target(live)


def test_the_cli_adds_lists_changes_and_removes_targets(live, monkeypatch):
    data_dir = live.app.config["EUCALITE"]["data_dir"]
    runner = CliRunner()

    def cli(*args):
        result = runner.invoke(main, [*args, "--data-dir", data_dir])
        return result

    added = cli("burst", "add", "aws1", "--endpoint", "https://ec2.example.test",
                "--region", "us-east-1", "--access-key-id", "AKID1",
                "--secret-access-key", "s3cret", "--image", "emi-0a1b2c3d=ami-1",
                "--type", "m1.small=t3.micro")
    assert added.exit_code == 0, added.output
    assert "zone burst-aws1" in added.output
    listed = cli("burst", "list")
    assert "aws1\tburst-aws1\thttps://ec2.example.test\tus-east-1\twhen-full\tavailable\t0" \
        in listed.output
    assert "image emi-0a1b2c3d=ami-1" in listed.output and "s3cret" not in listed.output
    changed = cli("burst", "set", "aws1", "--policy", "always", "--accounts", "123,456",
                  "--disable")
    assert changed.exit_code == 0, changed.output
    listed = cli("burst", "list")
    assert "\talways\tdisabled\t" in listed.output and "account 123" in listed.output
    bad = cli("burst", "set", "aws1", "--image", "nonsense")
    assert bad.exit_code != 0 and "LOCAL=REMOTE" in bad.output
    assert cli("burst", "remove", "aws1").exit_code == 0
    assert "no burst targets" in cli("burst", "list").output


def test_a_target_is_its_own_availability_zone(burst):
    live, fake = burst
    zones = {zone["ZoneName"]: zone for zone in
             live.client("ec2").describe_availability_zones()["AvailabilityZones"]}
    assert zones["burst-far"]["State"] == "available"


# --- placement and acting ---------------------------------------------------------------

def test_a_full_cloud_bursts_and_the_instance_runs_remotely(burst):
    live, fake = burst
    ids, answer = _run(live, 2, UserData="hello", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}])
    assert [item["State"]["Name"] for item in answer["Instances"]] == ["pending"] * 2
    assert {item["Placement"]["AvailabilityZone"] for item in answer["Instances"]} == \
        {"burst-far"}
    settle(live)
    items = _describe(live, ids)
    assert [item["State"]["Name"] for item in items] == ["running", "running"]
    assert all(item["PrivateIpAddress"].startswith("172.31.") for item in items)
    assert all(item["PublicIpAddress"].startswith("203.0.113.") for item in items)
    remote = {record["tags"]["eucalite:instance-id"]: record
              for record in fake.instances.values()}
    assert set(remote) == set(ids)
    for instance_id in ids:
        record = remote[instance_id]
        assert record["image_id"] == "ami-12345678" and record["instance_type"] == "t3.micro"
        assert record["user_data"] == b"hello" and record["tags"]["Name"] == "web"
        assert _row(live, instance_id).remote_id in fake.instances


def test_terminate_through_the_local_api_leaves_nothing_remotely(burst):
    live, fake = burst
    ids, _ = _run(live, 2)
    settle(live)
    changes = live.client("ec2").terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {change["CurrentState"]["Name"] for change in changes} == {"shutting-down"}
    settle(live)
    assert [item["State"]["Name"] for item in _describe(live, ids)] == ["terminated"] * 2
    assert fake.running() == []


def test_reboot_stop_and_console_output_reach_the_remote(burst):
    live, fake = burst
    [instance_id], _ = _run(live)
    settle(live)
    ec2 = live.client("ec2")
    ec2.reboot_instances(InstanceIds=[instance_id])
    live.app.extensions["eucalite"].compute.worker.wait()
    assert fake.calls.get("reboot") == 1
    output = ec2.get_console_output(InstanceId=instance_id)["Output"]
    assert output.startswith("console of i-")


def test_stop_and_start_act_on_the_remote_instance(burst):
    live, fake = burst
    [instance_id], _ = _run(live)
    settle(live)
    with live.app.app_context():     # stop/start need an EBS-backed local image, as locally
        db.session.get(Instance, instance_id).root_device_type = "ebs"
        db.session.commit()
    ec2 = live.client("ec2")
    remote_id = _row(live, instance_id).remote_id
    [change] = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"]
    assert change["CurrentState"]["Name"] == "stopping"
    settle(live)
    assert fake.instances[remote_id]["state"] == "stopped"
    assert _describe(live, [instance_id])[0]["State"]["Name"] == "stopped"
    [change] = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"]
    assert change["CurrentState"]["Name"] == "pending"
    settle(live)
    assert _describe(live, [instance_id])[0]["State"]["Name"] == "running"
    assert fake.calls["stop"] == 1 and fake.calls["start"] == 1
    # a remote that refuses a stop leaves the instance running, saying why
    fake.down = True
    ec2.stop_instances(InstanceIds=[instance_id])
    live.app.extensions["eucalite"].compute.worker.wait()
    [item] = _describe(live, [instance_id])
    assert item["State"]["Name"] == "running"
    assert "could not stop" in item["StateReason"]["Message"]


def test_a_burst_zone_asked_for_goes_remote_even_with_room_here(burst):
    live, fake = burst
    ids, answer = _run(live, Placement={"AvailabilityZone": "burst-far"})
    assert answer["Instances"][0]["Placement"]["AvailabilityZone"] == "burst-far"
    with pytest.raises(ClientError) as error:
        live.client("ec2").run_instances(
            ImageId="emi-0a1b2c3d", InstanceType="m1.large", MinCount=1, MaxCount=1,
            Placement={"AvailabilityZone": "burst-far"})
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "maps no such" in error.value.response["Error"]["Message"]


def test_an_unmapped_image_does_not_burst(burst):
    live, fake = burst
    make_image(live, "emi-99999999")
    with pytest.raises(ClientError) as error:
        live.client("ec2").run_instances(ImageId="emi-99999999", InstanceType="m1.small",
                                         MinCount=1, MaxCount=1)
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert fake.instances == {}


def test_always_targets_take_the_accounts_they_list_first(live, monkeypatch):
    make_image(live)
    fake = FakeRemote()
    use_fake(live, monkeypatch, fake)
    with live.app.app_context():
        from eucalite import accounts
        admin_account = accounts.get_account(accounts.ADMIN_ACCOUNT).id
    add_target(live, "everyone", policy="always", accounts=[admin_account])
    ids, answer = _run(live)
    assert answer["Instances"][0]["Placement"]["AvailabilityZone"] == "burst-everyone"


def test_always_targets_take_the_auto_scaling_groups_they_list(live, monkeypatch):
    make_image(live)
    fake = FakeRemote()
    use_fake(live, monkeypatch, fake)
    add_target(live, "groups", policy="always", groups=["web"])
    compute = live.app.extensions["eucalite"].compute
    with live.app.app_context():
        from eucalite import accounts
        from eucalite.compute.instances import LaunchRequest
        admin = accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT,
                                                        accounts.ADMIN_USER))
        # Auto Scaling aims at one of the group's zones (LaunchRequest.zones)
        [row] = compute.run_instances(admin, LaunchRequest(
            "emi-0a1b2c3d", instance_type="m1.small",
            zones=live.app.extensions["eucalite"].cluster.zone_names()[:1],
            system_tags={"aws:autoscaling:groupName": "web"}))
        assert row.zone == "burst-groups"
        with pytest.raises(Exception, match="InsufficientInstanceCapacity|capacity"):
            compute.run_instances(admin, LaunchRequest(
                "emi-0a1b2c3d", instance_type="m1.small",
                system_tags={"aws:autoscaling:groupName": "other"}))
    settle(live)
    [record] = fake.instances.values()
    # the group's tag is the local cloud's: the remote (AWS refuses aws: tags) gets none
    assert not any(key.startswith("aws:") for key in record["tags"])


def test_a_full_zone_auto_scaling_aims_at_overflows_but_one_a_user_names_does_not(burst):
    live, fake = burst
    compute = live.app.extensions["eucalite"].compute
    local_zone = live.app.extensions["eucalite"].cluster.zone_names()[0]
    with live.app.app_context():
        from eucalite import accounts
        from eucalite.compute.instances import LaunchRequest
        admin = accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT,
                                                        accounts.ADMIN_USER))
        [row] = compute.run_instances(admin, LaunchRequest(
            "emi-0a1b2c3d", instance_type="m1.small", zones=[local_zone],
            system_tags={"aws:autoscaling:groupName": "web"}))
        assert row.zone == "burst-far"
    with pytest.raises(ClientError) as error:
        _run(live, Placement={"AvailabilityZone": local_zone})
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"


def test_quotas_count_burst_instances(burst):
    live, fake = burst
    ids, _ = _run(live, 3)
    with live.app.app_context():
        rows = db.session.execute(db.select(Instance).where(
            Instance.burst_target == "far")).scalars().all()
        assert len(rows) == 3 and all(row.cpu > 0 and row.node_id is None for row in rows)


# --- the reconciler --------------------------------------------------------------------

def test_a_remote_instance_the_cloud_believes_ended_is_terminated(burst):
    live, fake = burst
    [instance_id], _ = _run(live)
    settle(live)
    stray = fake.add("i-00000000deadbeef")              # a row this cloud never had
    theirs = fake.add("i-0000000000000001", cloud_id="another-cloud")
    [report] = settle(live)
    assert stray in report.remote_terminated
    assert fake.instances[stray]["state"] in ("shutting-down", "terminated")
    assert fake.instances[theirs]["state"] == "running"    # another cloud's: untouched
    assert fake.instances[_row(live, instance_id).remote_id]["state"] == "running"


def test_a_vanished_remote_instance_ends_the_local_one(burst):
    live, fake = burst
    [instance_id], _ = _run(live)
    settle(live)
    del fake.instances[_row(live, instance_id).remote_id]
    [report] = settle(live)         # just launched: the listing may lag behind
    assert report.vanished == [] and \
        _describe(live, [instance_id])[0]["State"]["Name"] == "running"
    age(live, [instance_id])
    [report] = settle(live)
    assert report.vanished == [instance_id]
    [item] = _describe(live, [instance_id])
    assert item["State"]["Name"] == "terminated"
    assert "vanished from burst target far" in item["StateReason"]["Message"]


def test_a_remote_instance_that_ended_there_ends_here(burst):
    live, fake = burst
    [instance_id], _ = _run(live)
    settle(live)
    fake.instances[_row(live, instance_id).remote_id]["state"] = "terminated"
    settle(live)
    assert _describe(live, [instance_id])[0]["State"]["Name"] == "terminated"


def test_an_unreachable_remote_is_reported_and_nothing_leaks_when_it_returns(burst):
    live, fake = burst
    ids, _ = _run(live, 2)
    settle(live)
    fake.down = True
    [report] = settle(live)
    assert "connection refused" in report.unreachable
    # the instances keep their last state while it is away
    assert [item["State"]["Name"] for item in _describe(live, ids)] == ["running"] * 2
    zones = {zone["ZoneName"]: zone for zone in
             live.client("ec2").describe_availability_zones()["AvailabilityZones"]}
    assert zones["burst-far"]["State"] == "unavailable"
    # a launch that needs it says why it cannot
    with pytest.raises(ClientError) as error:
        _run(live)
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert "burst target far is unreachable" in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:       # asked for by its zone: the same
        _run(live, Placement={"AvailabilityZone": "burst-far"})
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"
    assert "burst target far is unreachable" in error.value.response["Error"]["Message"]
    listed = CliRunner().invoke(main, ["burst", "list", "--data-dir",
                                       live.app.config["EUCALITE"]["data_dir"]])
    assert "\tunreachable\t2\t" in listed.output and "connection refused" in listed.output
    # terminated locally while it is away: shutting-down until it answers
    live.client("ec2").terminate_instances(InstanceIds=[ids[0]])
    settle(live)
    assert _describe(live, [ids[0]])[0]["State"]["Name"] == "shutting-down"
    fake.down = False
    settle(live)
    settle(live)
    assert [item["State"]["Name"] for item in _describe(live, ids)] == \
        ["terminated", "running"]
    assert fake.running() == [_row(live, ids[1]).remote_id]
    with live.app.app_context():
        assert db.session.get(BurstTarget, "far").last_error is None


def test_a_launch_the_remote_refuses_ends_terminated_with_the_reason(burst):
    live, fake = burst
    fake.down = True
    [instance_id], _ = _run(live, Placement={"AvailabilityZone": "burst-far"})
    live.app.extensions["eucalite"].compute.worker.wait()
    [item] = _describe(live, [instance_id])
    assert item["State"]["Name"] == "terminated"
    assert "burst target far could not launch" in item["StateReason"]["Message"]


def test_an_interrupted_launch_is_launched_again(burst):
    live, fake = burst
    burst_service = live.app.extensions["eucalite"].burst
    burst_service.launch_later = lambda ids: None       # the job dies with the process
    [instance_id], _ = _run(live)
    del burst_service.launch_later
    [report] = settle(live)
    assert report.relaunched == [instance_id]
    settle(live)
    assert _describe(live, [instance_id])[0]["State"]["Name"] == "running"


def test_removing_a_target_with_instances_is_refused(burst):
    live, fake = burst
    _run(live)
    with live.app.app_context(), pytest.raises(Exception, match="terminate them first"):
        live.app.extensions["eucalite"].burst.remove_target("far")


def test_the_reconciler_loop_follows_a_launch_up_without_waiting_its_interval(burst):
    from eucalite.burst import reconcile
    from serverutil import wait_until
    live, fake = burst
    stop = reconcile.start(live.app, interval=3600)
    try:
        [instance_id], _ = _run(live)       # wakes the loop; it follows up every 2 s
        wait_until(lambda: _describe(live, [instance_id])[0]["State"]["Name"] == "running",
                   "the burst instance to run", timeout=20)
        live.client("ec2").terminate_instances(InstanceIds=[instance_id])
        wait_until(lambda: fake.running() == [], "nothing running remotely", timeout=20)
    finally:
        stop.set()
        live.app.extensions["eucalite"].burst.wake.set()


def test_the_launch_key_pair_reaches_the_remote_instance(burst):
    live, fake = burst
    ec2 = live.client("ec2")
    material = ec2.create_key_pair(KeyName="mine")["KeyMaterial"]
    assert material
    with live.app.app_context():
        from eucalite.compute.models import KeyPair
        public_key = db.session.execute(db.select(KeyPair.public_key).filter_by(
            name="mine")).scalar()
    _run(live, 2, KeyName="mine")
    settle(live)
    from eucalite.burst.jobs import remote_key_name
    assert fake.keys == {remote_key_name(public_key): public_key}   # one name per key
    assert {record["key_name"] for record in fake.instances.values()} == \
        {remote_key_name(public_key)}


def test_a_launch_whose_target_stopped_mapping_its_image_ends_with_the_reason(burst):
    live, fake = burst
    burst_service = live.app.extensions["eucalite"].burst
    burst_service.launch_later = lambda ids: None       # placed, not yet launched
    [instance_id], _ = _run(live)
    del burst_service.launch_later
    with live.app.app_context():
        burst_service.change_target("far", {"image_map": {}, "type_map": {}})
    settle(live)                    # the reconciler sends the launch again: it cannot
    [item] = _describe(live, [instance_id])
    assert item["State"]["Name"] == "terminated"
    assert "maps no image emi-0a1b2c3d and no instance type m1.small" in \
        item["StateReason"]["Message"]
    assert fake.instances == {}


def test_local_addresses_are_handed_out_past_burst_launches(tmp_path, monkeypatch):
    """A burst instance's address (the remote's) does not restart the local subnet's
    round: the next local launch still gets the address after the last local one."""
    from liveutil import start_live_node, stop_live
    live, server = start_live_node(tmp_path / "node", hypervisor="fake")
    try:
        make_image(live)
        fake = FakeRemote()
        use_fake(live, monkeypatch, fake)
        add_target(live)
        ec2 = live.client("ec2")
        first, second = _run(live, 2)[0]
        ec2.terminate_instances(InstanceIds=[first])
        live.services.compute.worker.wait()
        _run(live, Placement={"AvailabilityZone": "burst-far"})
        settle(live)
        [third], _ = _run(live)
        ips = {item["InstanceId"]: item["PrivateIpAddress"]
               for item in _describe(live, [first, second, third])}
        import ipaddress
        assert ipaddress.ip_address(ips[third]) == ipaddress.ip_address(ips[second]) + 1
    finally:
        stop_live(live, server)


def test_an_elastic_ip_cannot_be_associated_with_a_burst_instance(tmp_path, monkeypatch):
    from liveutil import start_live_node, stop_live
    live, server = start_live_node(tmp_path / "node", hypervisor="fake",
                                   public_ips=["198.51.100.10-198.51.100.14"],
                                   public_interface="eulab0")
    try:
        make_image(live)
        use_fake(live, monkeypatch, FakeRemote())
        add_target(live)
        [instance_id], answer = _run(live, Placement={"AvailabilityZone": "burst-far"})
        settle(live)
        ec2 = live.client("ec2")
        # no launch address of this cloud's pool either: its address is the remote's
        assert _describe(live, [instance_id])[0]["PublicIpAddress"].startswith("203.0.113.")
        address = ec2.allocate_address()["PublicIp"]
        with pytest.raises(ClientError) as error:
            ec2.associate_address(InstanceId=instance_id, PublicIp=address)
        assert error.value.response["Error"]["Code"] == "UnsupportedOperation"
        assert "burst target far" in error.value.response["Error"]["Message"]
    finally:
        stop_live(live, server)


def test_credentials_that_cannot_be_unsealed_make_the_target_unreachable(live):
    make_image(live)
    add_target(live)
    with live.app.app_context():       # as if the data directory's key file were replaced
        target = db.session.get(BurstTarget, "far")
        target.credentials = sealed.seal(live.app.config["EUCALITE"]["data_dir"], "other",
                                         "AKID", "secret")
        db.session.commit()
    [instance_id], _ = _run(live, Placement={"AvailabilityZone": "burst-far"})
    live.app.extensions["eucalite"].compute.worker.wait()
    [item] = _describe(live, [instance_id])
    assert item["State"]["Name"] == "terminated"
    assert "cannot be unsealed" in item["StateReason"]["Message"]
    [report] = settle(live)
    assert "cannot be unsealed" in report.unreachable
    with live.app.app_context():
        burst = live.app.extensions["eucalite"].burst
        assert "cannot be unsealed" in burst.check_target("far")
        assert burst.target("far").unreachable
