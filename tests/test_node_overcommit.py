"""Per-node overcommit (Eucalyptus' node MAX_CORES/MAX_MEM, nova's per-host allocation
ratios): a node's own ratios replace the cloud's for it, in the scheduler, in
DescribeAvailabilityZones verbose, in `eucalite node list` and the console; an administrator
sets them with `eucalite node set` or the console's node page, validated; ``default`` gives
the node the cloud's ratio back. Disk is never overcommitted."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from awsutil import error_code
from consoleutil import PASSWORD, Console
from ec2util import make_image
from liveutil import start_live_node, stop_live
from eucalite import accounts
from eucalite.cli.node import node_group
from eucalite.cluster import nodes
from eucalite.cluster.models import Node
from eucalite.cluster.scheduler import Need, Overcommit, node_ratio
from eucalite.db import db
from eucalite.errors import InvalidParameterValue
from eucalite.errors.ec2 import InsufficientInstanceCapacity
from eucalite.web.session import set_password

ZONE = "eucalyptus-1a"
SMALL = Need(cores=1, memory_mb=256, disk_gb=5)
CLOUD = Overcommit(cpu=4.0, memory=1.0)


# --- the rule ---------------------------------------------------------------------------

def test_a_node_s_own_ratio_replaces_the_cloud_s_each_on_its_own():
    def node(cpu, memory):
        return SimpleNamespace(cpu_overcommit=cpu, memory_overcommit=memory)
    assert CLOUD.for_node(node(None, None)) == CLOUD
    assert CLOUD.for_node(node(8.0, None)) == Overcommit(8.0, 1.0)
    assert CLOUD.for_node(node(None, 1.5)) == Overcommit(4.0, 1.5)
    assert CLOUD.for_node(node(0.5, 2.0)) == Overcommit(0.5, 2.0)


def test_ratios_an_administrator_may_set():
    assert node_ratio("cpu", "8") == 8.0
    assert node_ratio("cpu", 0.5) == 0.5
    assert node_ratio("memory", "1.5") == 1.5
    assert node_ratio("memory", "4") == 4.0
    assert node_ratio("cpu", "default") is None
    assert node_ratio("memory", " Default ") is None


@pytest.mark.parametrize("kind,value", [
    ("cpu", "0"), ("cpu", "-2"), ("cpu", "nan"), ("cpu", "inf"), ("cpu", "lots"),
    ("cpu", ""), ("cpu", True), ("cpu", "65"), ("memory", "4.01"), ("memory", "0"),
    ("memory", "1e9")])
def test_ratios_refused_say_what_is_allowed(kind, value):
    with pytest.raises(ValueError, match=f"{kind} overcommit must be a number above 0 and "
                                         "at most .*or 'default'"):
        node_ratio(kind, value)


# --- on the database --------------------------------------------------------------------

def add_node(node_id, cores=2, memory_mb=4096, disk_gb=100, **fields) -> None:
    db.session.add(Node(id=node_id, zone=ZONE, state="enabled", cores=cores,
                        memory_mb=memory_mb, disk_gb=disk_gb, **fields))
    db.session.commit()


def test_the_scheduler_admits_up_to_each_node_s_own_ratios(app):
    with app.app_context():
        add_node("a", cores=2)                          # the cloud's 4: 8 vCPUs
        add_node("b", cores=2, cpu_overcommit=1.0)      # its own 1: 2 vCPUs
        chosen = nodes.reserve(ZONE, SMALL, 1, 20, "GREEDY", CLOUD)
        assert (chosen.count("a"), chosen.count("b")) == (8, 2)
        assert nodes.zone_capacity(ZONE, [("m1.small", 1, 256, 5)], CLOUD) == \
            [("m1.small", 0, 10)]


def test_an_own_memory_ratio_limits_and_disk_stays_physical(app):
    with app.app_context():
        # 1024 MiB * 2 = 2048 MiB: 8 instances of 256 MiB, where the cloud's 1.0 allows 4
        add_node("a", cores=4, memory_mb=1024, disk_gb=1000, memory_overcommit=2.0)
        assert len(nodes.reserve(ZONE, SMALL, 1, 40, "GREEDY", CLOUD)) == 8
        add_node("b", cores=4, memory_mb=8192, disk_gb=20, cpu_overcommit=64.0,
                 memory_overcommit=4.0)
        assert len(nodes.reserve(ZONE, SMALL, 1, 40, "GREEDY", CLOUD)) == 4   # 20 GiB / 5


def test_set_overcommit_sets_keeps_clears_and_refuses(app):
    with app.app_context():
        add_node("a")
        nodes.set_overcommit("a", "8", "1.5")
        assert [(e.overcommit, e.own_cpu, e.own_memory, e.cores, e.memory_mb)
                for e in nodes.node_capacities(CLOUD)] == [
            (Overcommit(8.0, 1.5), True, True, 16, 6144)]
        nodes.set_overcommit("a", memory="default")             # cpu kept
        [entry] = nodes.node_capacities(CLOUD)
        assert (entry.overcommit, entry.ratio_text("cpu"), entry.ratio_text("memory")) == \
            (Overcommit(8.0, 1.0), "8*", "1")
        for bad in ({"cpu": "0"}, {"memory": "5"}, {"cpu": "2", "memory": "x"}):
            with pytest.raises(InvalidParameterValue, match="overcommit must be"):
                nodes.set_overcommit("a", **bad)
        db.session.expire_all()
        row = db.session.get(Node, "a")
        assert (row.cpu_overcommit, row.memory_overcommit) == (8.0, None)   # nothing changed
        with pytest.raises(InvalidParameterValue, match="does not exist"):
            nodes.set_overcommit("nowhere", cpu="2")


# --- a live cloud: the CLI, boto3 and the console -----------------------------------------

@pytest.fixture
def cloud(tmp_path):
    """Node duty on the fake hypervisor (8 cores, 16384 MiB, 200 GiB), the cloud's ratios
    2 vCPUs per core and memory as it is: 16 m1.small fit, until the node says otherwise."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", cpu_overcommit=2.0,
                                   memory_overcommit=1.0)
    yield live
    stop_live(live, server)


def node_cli(live, *args):
    result = CliRunner().invoke(node_group, [*args, "--data-dir",
                                             live.app.config["EUCALITE"]["data_dir"]],
                                env={"EUCALITE_CPU_OVERCOMMIT": "2"})
    return result


def verbose(ec2) -> dict[str, str]:
    zones = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    return {zone["ZoneName"]: zone["State"] for zone in zones}


def test_node_set_changes_what_the_cloud_admits_and_every_report(cloud):
    ec2 = cloud.client("ec2")
    node_id = cloud.services.cluster.local_node_id
    image = make_image(cloud)
    listing = verbose(ec2)
    assert listing["|- m1.small"].split()[:3] == ["0016", "/", "0016"]
    assert listing[f"|- node {node_id}"].split() == [
        "enabled", "0000/0016", "0/16384", "0/200", "2", "1"]

    result = node_cli(cloud, "set", node_id, "--cpu-overcommit", "3",
                      "--memory-overcommit", "1.5")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{node_id} cpu_overcommit 3* memory_overcommit 1.5*"
    listing = verbose(ec2)
    assert listing["|- m1.small"].split()[:3] == ["0024", "/", "0024"]
    assert listing[f"|- node {node_id}"].split() == [
        "enabled", "0000/0024", "0/24576", "0/200", "3*", "1.5*"]
    ids = [item["InstanceId"] for item in ec2.run_instances(
        ImageId=image, InstanceType="m1.small", MinCount=1, MaxCount=40)["Instances"]]
    assert len(ids) == 24
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)) == \
        "InsufficientInstanceCapacity"

    result = node_cli(cloud, "list")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split("\t")[3:] == [
        "24/24", "8", "6144/24576", "16384", "120/200", "3*", "1.5*"]

    # back to the cloud's 2 vCPUs per core: what runs keeps running, nothing new fits
    result = node_cli(cloud, "set", node_id, "--cpu-overcommit", "default")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{node_id} cpu_overcommit 2 memory_overcommit 1.5*"
    assert verbose(ec2)[f"|- node {node_id}"].split()[1:2] == ["0024/0016"]
    with cloud.app.app_context(), pytest.raises(InsufficientInstanceCapacity):
        nodes.reserve(ZONE, SMALL, 1, 1, "GREEDY", Overcommit(2.0, 1.0))


def test_node_set_refuses_bad_ratios_unknown_nodes_and_nothing_to_set(cloud):
    node_id = cloud.services.cluster.local_node_id
    result = node_cli(cloud, "set", node_id, "--memory-overcommit", "10")
    assert result.exit_code == 1
    assert "InvalidParameterValue: memory overcommit must be a number above 0 and at " \
           "most 4" in result.output
    result = node_cli(cloud, "set", node_id, "--cpu-overcommit", "-1")
    assert result.exit_code == 1 and "cpu overcommit must be" in result.output
    result = node_cli(cloud, "set", "elsewhere", "--cpu-overcommit", "2")
    assert result.exit_code == 1 and "The node 'elsewhere' does not exist" in result.output
    result = node_cli(cloud, "set", node_id)
    assert result.exit_code == 2 and "--cpu-overcommit" in result.output
    assert node_cli(cloud, "list").output.splitlines()[1].split("\t")[-2:] == ["2", "1"]


def test_the_console_sets_a_node_s_ratios_and_shows_whose_they_are(cloud):
    node_id = cloud.services.cluster.local_node_id
    with cloud.app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    console = Console(cloud.app)
    page = console.text("/console/nodes")
    assert 'data-cores="0/16"' in page and 'data-cpu-ratio-of="cloud"' in page
    assert 'name="cpu_overcommit"' in page and "2 (cloud's)" in page

    page = console.page(f"/console/nodes/{node_id}/overcommit",
                        {"cpu_overcommit": "5", "memory_overcommit": ""})
    assert f"Node {node_id}: vCPUs per core 5, memory ratio default." in page
    for path in ("/console/nodes", "/console/nodes/rows", "/console/dashboard"):
        page = console.text(path)
        assert 'data-cores="0/40"' in page and "(8 cores &times; 5, this node's)" in page
        assert 'data-cpu-ratio-of="node"' in page and 'data-memory-ratio-of="cloud"' in page
        assert "(16384 MiB &times; 1)" in page, path
    assert 'value="5"' in console.text("/console/nodes")          # the form shows its own

    page = console.page(f"/console/nodes/{node_id}/overcommit",
                        {"cpu_overcommit": "5", "memory_overcommit": "9"})
    assert "InvalidParameterValue" in page and "memory overcommit must be" in page
    assert 'data-memory="0/16384"' in page                       # nothing changed

    console.page(f"/console/nodes/{node_id}/overcommit",
                 {"cpu_overcommit": "", "memory_overcommit": ""})
    assert 'data-cores="0/16"' in console.text("/console/nodes")
