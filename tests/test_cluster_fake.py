"""A 100-node fake cluster (tests/clusterutil.py) through boto3: zones and placement per zone
and per policy, concurrent launches, drain and remove, a node going silent and coming back,
and a controller restart."""
from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from eucalite.accounts import utcnow
from eucalite.cli.node import node_group
from eucalite.cluster import nodes
from eucalite.cluster.models import Node
from eucalite.db import db

from clusterutil import node_name, restart, start_cluster
from ec2util import make_image, wait_for_state

ZONES = {"zone-a": 40, "zone-b": 40, "zone-c": 20}      # 100 nodes


@pytest.fixture
def big(tmp_path):
    cluster = start_cluster(tmp_path / "data", ZONES)
    make_image(cluster.live)
    yield cluster
    cluster.stop()


def run(ec2, count=1, zone=None, itype="m1.small"):
    """RunInstances of *count*; the ids, once all are running."""
    extra = {"Placement": {"AvailabilityZone": zone}} if zone else {}
    reply = ec2.run_instances(ImageId="emi-0a1b2c3d", MinCount=count, MaxCount=count,
                              InstanceType=itype, **extra)
    ids = [item["InstanceId"] for item in reply["Instances"]]
    wait_for_state(ec2, ids, "running")
    return ids


def where(cluster, ids):
    """Instance id -> the fake host whose hypervisor runs its domain."""
    domains = cluster.domains()
    return {instance_id: domains.get(instance_id) for instance_id in ids}


def zone_of(ec2, ids):
    items = [item for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]
             for item in reservation["Instances"]]
    return {item["Placement"]["AvailabilityZone"] for item in items}


def row(cluster, node_id) -> Node | None:
    with cluster.live.app.app_context():
        return db.session.get(Node, node_id)


def cli(cluster, *args):
    return CliRunner().invoke(node_group, [*args, "--data-dir",
                                           cluster.live.app.config["EUCALITE"]["data_dir"]])


# --- zones ----------------------------------------------------------------------------------

def test_placement_zone_puts_every_instance_on_that_zones_nodes(big):
    ec2 = big.live.client("ec2")
    ids = run(ec2, 6, zone="zone-c")
    assert zone_of(ec2, ids) == {"zone-c"}
    assert set(where(big, ids).values()) <= set(big.in_zone("zone-c"))
    with pytest.raises(ClientError) as error:
        ec2.run_instances(ImageId="emi-0a1b2c3d", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "zone-x"})
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "zone-x" in error.value.response["Error"]["Message"]


def test_without_a_zone_greedy_fills_the_zones_in_order(big):
    ec2 = big.live.client("ec2")
    assert zone_of(ec2, run(ec2)) == {"zone-a"}
    # all but one of zone-a's nodes drained: 4 fit there, so a request of 5 goes on
    for index in range(39):
        assert cli(big, "drain", node_name("zone-a", index)).exit_code == 0
    assert zone_of(ec2, run(ec2, 5)) == {"zone-b"}
    assert zone_of(ec2, run(ec2, 4)) == {"zone-a"}


def test_without_a_zone_roundrobin_takes_the_zone_with_most_room(tmp_path):
    cluster = start_cluster(tmp_path / "data", ZONES, scheduler="ROUNDROBIN")
    try:
        make_image(cluster.live)
        ec2 = cluster.live.client("ec2")
        assert zone_of(ec2, run(ec2)) == {"zone-a"}      # a tie: the first configured
        assert zone_of(ec2, run(ec2)) == {"zone-b"}      # zone-a has one less
        assert zone_of(ec2, run(ec2)) == {"zone-a"}
    finally:
        cluster.stop()


def test_zones_report_their_own_capacity_and_state(big):
    ec2 = big.live.client("ec2")
    run(ec2, 4, zone="zone-c")          # GREEDY: one 4-core node of zone-c filled
    for node_id in big.in_zone("zone-b"):
        cli(big, "disable", node_id)
    reply = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    small = {}
    zone = None
    for item in reply:
        if not item["ZoneName"].startswith("|-"):
            zone = item
            small[zone["ZoneName"]] = {"state": item["State"],
                                       "messages": [m["Message"] for m in item["Messages"]]}
        elif item["ZoneName"] == "|- m1.small":
            free, _, maximum = item["State"].split()[:3]
            small[zone["ZoneName"]]["free/max"] = (int(free), int(maximum))
    # 4-core nodes hold four m1.small each (cpu_overcommit 1)
    assert small["zone-a"] == {"state": "available", "messages": [], "free/max": (160, 160)}
    assert small["zone-c"] == {"state": "available", "messages": [], "free/max": (76, 80)}
    assert small["zone-b"] == {"state": "impaired",
                               "messages": ["no node takes instances: 40 disabled"],
                               "free/max": (0, 0)}
    with pytest.raises(ClientError) as error:
        ec2.run_instances(ImageId="emi-0a1b2c3d", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "zone-b"})
    assert error.value.response["Error"]["Code"] == "InsufficientInstanceCapacity"


# --- policies at 100 nodes --------------------------------------------------------------------

@pytest.mark.parametrize("policy, expected", [
    # GREEDY fills the first node (by id) before the next
    ("GREEDY", Counter({"zone-a-node000": 4, "zone-a-node001": 2})),
    # ROUNDROBIN: one per node, in turn
    ("ROUNDROBIN", Counter({node_name("zone-a", i): 1 for i in range(6)})),
])
def test_policies_place_across_100_nodes(tmp_path, policy, expected):
    cluster = start_cluster(tmp_path / "data", ZONES, scheduler=policy)
    try:
        make_image(cluster.live)
        ec2 = cluster.live.client("ec2")
        assert Counter(where(cluster, run(ec2, 6)).values()) == expected
    finally:
        cluster.stop()


def test_powersave_packs_onto_nodes_already_in_use(tmp_path):
    cluster = start_cluster(tmp_path / "data", ZONES, scheduler="POWERSAVE")
    try:
        make_image(cluster.live)
        ec2 = cluster.live.client("ec2")
        # a node in use late in the order (zone-a-node039) ...
        first = run(ec2, 1)
        host = where(cluster, first)[first[0]]
        # ... takes the next instances before any idle node does
        later = run(ec2, 3)
        assert set(where(cluster, later).values()) == {host}
        assert len(set(where(cluster, run(ec2, 2)).values()) - {host}) == 1
    finally:
        cluster.stop()


def test_concurrent_launches_never_oversubscribe_a_node(big):
    results: list[int] = []
    errors: list[str] = []

    def launch():
        client = big.live.client("ec2")
        for _ in range(6):
            try:
                reply = client.run_instances(ImageId="emi-0a1b2c3d", MinCount=1, MaxCount=8,
                                             InstanceType="m1.small",
                                             Placement={"AvailabilityZone": "zone-c"})
                results.append(len(reply["Instances"]))
            except ClientError as error:
                errors.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=launch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # zone-c holds 80 m1.small; 4 x 6 requests of up to 8 ask for 192
    assert sum(results) == 80
    assert set(errors) == {"InsufficientInstanceCapacity"}
    placed = Counter(big.domains().values())
    assert all(count <= 4 for count in placed.values())
    with big.live.app.app_context():
        for node_id in big.in_zone("zone-c"):
            node = db.session.get(Node, node_id)
            assert (node.used_cores, node.used_memory_mb) == (4, 4 * 256)


# --- drain and remove ---------------------------------------------------------------------

def test_drain_keeps_running_instances_and_remove_waits_for_them(big):
    ec2 = big.live.client("ec2")
    [instance] = run(ec2)
    host = where(big, [instance])[instance]
    assert cli(big, "drain", host).output.strip() == f"{host} draining"
    # no new instance goes there (GREEDY would choose it first)
    assert host not in where(big, run(ec2, 2)).values()
    assert wait_for_state(ec2, [instance], "running")
    refused = cli(big, "remove", host)
    assert refused.exit_code != 0 and "still runs instances" in refused.output
    ec2.terminate_instances(InstanceIds=[instance])
    wait_for_state(ec2, [instance], "terminated")
    assert cli(big, "remove", host).output.strip() == f"{host} removed from zone-a"
    assert row(big, host) is None
    big.reconcile()         # the server forgets a node removed by another process
    assert host not in [node.node_id for node in big.services.cluster.reachable()]
    # enable ends a drain
    other = node_name("zone-a", 5)
    cli(big, "drain", other)
    assert cli(big, "enable", other).output.strip() == f"{other} enabled"


# --- failure ------------------------------------------------------------------------------

def statuses(ec2, ids):
    reply = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    return {item["InstanceId"]: item["SystemStatus"]["Status"] for item in reply}


def test_a_silent_node_is_unreachable_after_node_timeout_and_reconciles_when_back(big):
    ec2 = big.live.client("ec2")
    kept, ended = run(ec2, 2)           # GREEDY: both on zone-a-node000
    host = where(big, [kept])[kept]
    assert where(big, [ended])[ended] == host
    big.reconcile()
    assert statuses(ec2, [kept, ended]) == {kept: "ok", ended: "ok"}
    before = row(big, host)
    used = (before.used_cores, before.used_memory_mb)
    big.silence(host)
    timeout = big.services.config["node_timeout"]
    later = before.last_seen + dt.timedelta(seconds=timeout + 1)
    # a pass then: the others answer, it cannot be reached (its instances stay as they are)
    big.reconcile(now=later)
    # not yet past node_timeout: still enabled
    assert big.check_nodes(before.last_seen + dt.timedelta(seconds=timeout - 1)) == []
    assert row(big, host).state == "enabled"
    assert big.check_nodes(later) == [host]
    assert row(big, host).state == "unreachable"
    assert statuses(ec2, [kept, ended]) == {kept: "impaired", ended: "impaired"}
    # the scheduler skips it: GREEDY's first node is silent, so the next is used
    assert host not in where(big, run(ec2, 1)).values()
    # a termination meanwhile cannot reach the host: it is retried when the host is back
    ec2.terminate_instances(InstanceIds=[ended])
    wait_until_reason(ec2, ended)
    assert ended in big.domains()
    # its capacity is neither lost nor counted twice while it is away
    assert (row(big, host).used_cores, row(big, host).used_memory_mb) == used
    big.revive(host)
    big.reconcile()
    assert row(big, host).state == "enabled"
    wait_for_state(ec2, [ended], "terminated")
    assert ended not in big.domains()
    assert big.domains()[kept] == host
    assert wait_for_state(ec2, [kept], "running")
    assert statuses(ec2, [kept]) == {kept: "ok"}
    assert (row(big, host).used_cores, row(big, host).used_memory_mb) == (1, 256)


def wait_until_reason(ec2, instance_id):
    """The termination was tried and failed: shutting-down, with the reason."""
    [item] = wait_for_state(ec2, [instance_id], "shutting-down")
    return item


def test_an_administrators_state_survives_an_outage(big):
    host = node_name("zone-a", 0)
    cli(big, "drain", host)
    big.silence(host)
    later = utcnow() + dt.timedelta(seconds=10_000)
    big.reconcile(now=later)
    big.check_nodes(later)
    assert row(big, host).state == "draining"
    assert row(big, host).status_impaired_since is not None      # its system check fails
    assert row(big, node_name("zone-a", 1)).state == "enabled"
    big.revive(host)
    big.reconcile()
    assert row(big, host).state == "draining"
    assert row(big, host).status_impaired_since is None
    with big.live.app.app_context():
        assert nodes.heard_from("no-such-node") is None


def test_a_controller_restart_loses_nothing(big, tmp_path):
    ec2 = big.live.client("ec2")
    ids = run(ec2, 5, zone="zone-b")
    placed = where(big, ids)
    cli(big, "drain", node_name("zone-c", 3))
    with big.live.app.app_context():
        before = {node.id: (node.state, node.used_cores, node.zone)
                  for node in nodes.list_nodes()}
    again = restart(big, tmp_path / "data")
    big.live, big.server = again.live, again.server      # the fixture stops the new one
    again.reconcile(startup=True)
    ec2 = again.live.client("ec2")
    assert wait_for_state(ec2, ids, "running")
    assert where(again, ids) == placed
    with again.live.app.app_context():
        assert {node.id: (node.state, node.used_cores, node.zone)
                for node in nodes.list_nodes()} == before
    assert statuses(ec2, ids) == {instance_id: "ok" for instance_id in ids}


def test_a_lost_node_is_removed_with_its_instances(big):
    """`eucalite node remove --force`: refused while the node answers; once the failure
    monitor found it silent, its instances end as if their domains vanished (their volumes
    back to available) and the node is gone, asking nothing of it."""
    ec2 = big.live.client("ec2")
    first, second = run(ec2, 2)           # GREEDY: both on zone-a-node000
    host = where(big, [first])[first]
    volume = ec2.create_volume(Size=1, AvailabilityZone="zone-a")["VolumeId"]
    wait_for_volume(ec2, volume, "available")
    ec2.attach_volume(VolumeId=volume, InstanceId=first, Device="/dev/sdf")
    wait_for_volume(ec2, volume, "in-use")

    refused = cli(big, "remove", "--force", host)
    assert refused.exit_code != 0 and "answers" in refused.output
    big.silence(host)
    later = row(big, host).last_seen + dt.timedelta(seconds=10_000)
    big.reconcile(now=later)            # the others answer then
    assert big.check_nodes(later) == [host]

    removed = cli(big, "remove", "--force", host)
    assert removed.exit_code == 0, removed.output
    assert row(big, host) is None
    items = wait_for_state(ec2, [first, second], "terminated")
    assert all(f"node {host} was removed" in item["StateReason"]["Message"] for item in items)
    wait_for_volume(ec2, volume, "available")
    # nothing was asked of the lost host: its domains are as it left them
    assert {first, second} <= set(big.domains())
    # the zone's capacity no longer counts it, and new instances go elsewhere
    assert host not in where(big, run(ec2, 1)).values()


def wait_for_volume(ec2, volume_id, state):
    from serverutil import wait_until
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"]
               == state, f"{volume_id} {state}")
