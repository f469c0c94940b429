"""Capacity overcommit (Eucalyptus' node MAX_CORES/MAX_MEM, nova's allocation ratios) and
DescribeAvailabilityZones: the ratios' arithmetic and config, reservations on a real
(SQLite) database, and through boto3, the console and `eucalite node list` on a live cloud
with the fake hypervisor (8 cores, 16384 MiB, 200 GiB); the zones' filters."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from click.testing import CliRunner

from awsutil import error_code
from consoleutil import PASSWORD, Console
from ec2util import make_image, wait_for_state
from liveutil import start_live, start_live_node, stop_live
from eucalite import accounts, config as config_module
from eucalite.cli.node import node_group
from eucalite.cluster import nodes
from eucalite.cluster.models import Node
from eucalite.cluster.scheduler import PHYSICAL, Need, Overcommit
from eucalite.db import db
from eucalite.errors.ec2 import InsufficientInstanceCapacity
from eucalite.web.session import set_password

ZONE = "eucalyptus-1a"
SMALL = Need(cores=1, memory_mb=256, disk_gb=5)


# --- the ratios --------------------------------------------------------------------------

def test_ratios_scale_cores_and_memory_rounding_down():
    assert (Overcommit(4.0).cores(2), Overcommit(1.5, 1.5).memory_mb(1000)) == (8, 1500)
    assert Overcommit(1.1).cores(10) == 11            # not 11.000000000000002
    assert Overcommit(0.29).cores(100) == 29          # not 28.999999999999996 floored
    assert Overcommit(2.5).cores(3) == 7              # 7.5 vCPUs: an instance needs whole ones
    assert (PHYSICAL.cores(2), PHYSICAL.memory_mb(4096)) == (2, 4096)


def test_defaults_let_a_lab_run_four_small_instances_per_core(tmp_path):
    config = config_module.load({"data_dir": str(tmp_path)}, environ={})
    assert Overcommit.of(config) == Overcommit(cpu=4.0, memory=1.0)


def test_ratios_come_from_the_environment_and_the_file(tmp_path):
    config = config_module.load({"data_dir": str(tmp_path)}, environ={
        "EUCALITE_CPU_OVERCOMMIT": "2.5", "EUCALITE_MEMORY_OVERCOMMIT": "1.5"})
    assert Overcommit.of(config) == Overcommit(2.5, 1.5)
    (tmp_path / "eucalite.toml").write_text("cpu_overcommit = 8\nmemory_overcommit = 1.25\n")
    assert Overcommit.of(config_module.load({"data_dir": str(tmp_path)}, environ={})) == \
        Overcommit(8.0, 1.25)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "lots"])
def test_a_ratio_that_is_not_a_positive_number_stops_the_start(tmp_path, value):
    with pytest.raises(ValueError, match="MEMORY_OVERCOMMIT|memory_overcommit"):
        config_module.load({"data_dir": str(tmp_path)},
                           environ={"EUCALITE_MEMORY_OVERCOMMIT": value})
    with pytest.raises(ValueError, match="cpu_overcommit"):
        config_module.load({"data_dir": str(tmp_path), "cpu_overcommit": True}, environ={})


# --- reservations on the database --------------------------------------------------------

def add_node(node_id, cores=2, memory_mb=4096, disk_gb=100, **used) -> None:
    db.session.add(Node(id=node_id, zone=ZONE, state="enabled", cores=cores,
                        memory_mb=memory_mb, disk_gb=disk_gb, **used))
    db.session.commit()


def used(node_id) -> tuple[int, int, int]:
    db.session.expire_all()
    row = db.session.get(Node, node_id)
    return row.used_cores, row.used_memory_mb, row.used_disk_gb


def test_vcpus_are_admitted_up_to_cores_times_the_ratio(app):
    with app.app_context():
        add_node("a", cores=2)
        assert nodes.reserve(ZONE, SMALL, 1, 20, "GREEDY", Overcommit(4.0)) == ["a"] * 8
        assert used("a") == (8, 8 * 256, 8 * 5)
        with pytest.raises(InsufficientInstanceCapacity):
            nodes.reserve(ZONE, SMALL, 1, 1, "GREEDY", Overcommit(4.0))
        # without overcommit the same node is already over-full: nothing more, no error
        assert nodes.zone_capacity(ZONE, [("m1.small", 1, 256, 5)]) == [("m1.small", 0, 2)]


def test_memory_is_admitted_up_to_ram_times_its_ratio(app):
    with app.app_context():
        add_node("a", cores=2, memory_mb=1024)
        # 1024 MiB * 1.5 = 1536 MiB: six 256 MiB instances, though 8 vCPUs are allowed
        assert len(nodes.reserve(ZONE, SMALL, 1, 20, "GREEDY", Overcommit(4.0, 1.5))) == 6


def test_disk_is_never_overcommitted(app):
    with app.app_context():
        add_node("a", cores=2, disk_gb=20)
        assert len(nodes.reserve(ZONE, SMALL, 1, 20, "GREEDY", Overcommit(100, 100))) == 4
        assert used("a")[2] == 20


def test_release_gives_back_exactly_what_was_reserved(app):
    with app.app_context():
        add_node("a", cores=2)
        chosen = nodes.reserve(ZONE, SMALL, 8, 8, "GREEDY", Overcommit(4.0))
        for node_id in chosen[:5]:
            nodes.release(node_id, SMALL)
        assert used("a") == (3, 3 * 256, 3 * 5)
        for node_id in chosen[5:]:
            nodes.release(node_id, SMALL)
        assert used("a") == (0, 0, 0)


def test_a_lowered_ratio_admits_nothing_new_and_keeps_what_runs(app):
    with app.app_context():
        add_node("a", cores=2)
        nodes.reserve(ZONE, SMALL, 6, 6, "GREEDY", Overcommit(4.0))
        with pytest.raises(InsufficientInstanceCapacity):
            nodes.reserve(ZONE, SMALL, 1, 1, "GREEDY", Overcommit(2.0))
        assert used("a")[0] == 6
        assert nodes.zone_capacity(ZONE, [("m1.small", 1, 256, 5)], Overcommit(2.0)) == \
            [("m1.small", 0, 4)]


def test_zone_capacity_counts_the_overcommitted_free_and_max(app):
    with app.app_context():
        add_node("a", cores=2, memory_mb=4096, used_cores=3, used_memory_mb=768,
                 used_disk_gb=15)
        add_node("b", cores=1, memory_mb=512)
        assert nodes.zone_capacity(ZONE, [("m1.small", 1, 256, 5), ("c1.medium", 2, 512, 10)],
                                   Overcommit(4.0)) == [
            # a: 8 vCPUs, 3 used -> 5 free; b: 4 vCPUs but 512 MiB -> 2
            ("m1.small", 7, 10),
            # a: (8-3)//2 = 2 free of 4; b: 512 MiB holds one of 2 vCPUs
            ("c1.medium", 3, 5),
        ]


# --- a live cloud ------------------------------------------------------------------------

@pytest.fixture
def cloud(tmp_path):
    """Node duty on the fake hypervisor (8 cores, 16384 MiB, 200 GiB) with 2 vCPUs per core
    and memory as it is: 16 m1.small (1 vCPU, 256 MiB, 5 GiB) fit, not 8."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", cpu_overcommit=2.0,
                                   memory_overcommit=1.0)
    yield live
    stop_live(live, server)


def _small_row(ec2) -> list[str]:
    zones = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    return next(zone for zone in zones if zone["ZoneName"] == "|- m1.small")["State"].split()


def test_more_small_instances_than_cores_run_and_give_their_capacity_back(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    assert _small_row(ec2)[:3] == ["0016", "/", "0016"]
    ids = [item["InstanceId"] for item in ec2.run_instances(
        ImageId=image, InstanceType="m1.small", MinCount=1, MaxCount=40)["Instances"]]
    assert len(ids) == 16                                  # 8 cores * 2
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)) == \
        "InsufficientInstanceCapacity"
    assert _small_row(ec2)[:3] == ["0000", "/", "0016"]

    ec2.terminate_instances(InstanceIds=ids[:3])
    wait_for_state(ec2, ids[:3], "terminated")
    assert _small_row(ec2)[:3] == ["0003", "/", "0016"]
    assert len(ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]) == 3


def test_console_and_node_list_show_physical_and_overcommitted_capacity(cloud):
    ec2 = cloud.client("ec2")
    ec2.run_instances(ImageId=make_image(cloud), MinCount=3, MaxCount=3)
    with cloud.app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    console = Console(cloud.app)
    for path in ("/console/nodes", "/console/nodes/rows", "/console/dashboard"):
        page = console.text(path)
        assert 'data-cores="3/16"' in page and "(8 cores &times; 2)" in page, path
        assert 'data-memory="768/16384"' in page and "(16384 MiB &times; 1)" in page, path
        assert 'data-disk="15/200"' in page, path
    assert "vCPUs used / allowed" in console.text("/console/dashboard")

    result = CliRunner().invoke(node_group, ["list", "--data-dir",
                                             cloud.app.config["EUCALITE"]["data_dir"]],
                                env={"EUCALITE_CPU_OVERCOMMIT": "2"})
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split("\t")[3:] == ["VCPUS", "CORES", "MEMORY_MB", "RAM_MB", "DISK_GB",
                                      "CPU_OVERCOMMIT", "MEMORY_OVERCOMMIT"]
    assert row.split("\t")[3:] == ["3/16", "8", "768/16384", "16384", "15/200", "2", "1"]


# --- zones and their filters -------------------------------------------------------------

@pytest.fixture
def zones(tmp_path):
    live, server = start_live(tmp_path / "data", zones=["rack-a", "rack-b"])
    yield live
    server.shutdown()


def _names(ec2, **kwargs) -> list[str]:
    return [zone["ZoneName"]
            for zone in ec2.describe_availability_zones(**kwargs)["AvailabilityZones"]]


def _filter(name, *values):
    return {"Filters": [{"Name": name, "Values": list(values)}]}


def test_every_documented_zone_filter(zones):
    ec2 = zones.client("ec2")
    both = ["rack-a", "rack-b"]
    assert _names(ec2) == both
    rack_b_id = ec2.describe_availability_zones(ZoneNames=["rack-b"])[
        "AvailabilityZones"][0]["ZoneId"]
    assert _names(ec2, **_filter("zone-name", "rack-a")) == ["rack-a"]
    assert _names(ec2, **_filter("zone-name", "rack-*")) == both
    assert _names(ec2, **_filter("zone-id", rack_b_id)) == ["rack-b"]
    assert _names(ec2, **_filter("state", "available")) == both
    assert _names(ec2, **_filter("state", "impaired", "unavailable")) == []
    assert _names(ec2, **_filter("region-name", "eucalyptus")) == both
    assert _names(ec2, **_filter("region-name", "us-east-1")) == []     # AWS: another region
    assert _names(ec2, **_filter("group-name", "eucalyptus")) == both
    assert _names(ec2, **_filter("opt-in-status", "opt-in-not-required")) == both
    assert _names(ec2, **_filter("opt-in-status", "opted-in")) == []
    assert _names(ec2, **_filter("zone-type", "availability-zone")) == both
    assert _names(ec2, **_filter("zone-type", "local-zone")) == []
    assert _names(ec2, **_filter("message", "*")) == []                # no zone has one
    assert _names(ec2, **_filter("parent-zone-name", "*")) == []       # nor a parent zone
    assert _names(ec2, **_filter("parent-zone-id", "*")) == []
    assert _names(ec2, AllAvailabilityZones=True) == both
    assert _names(ec2, ZoneIds=[rack_b_id], **_filter("state", "available")) == ["rack-b"]
    assert error_code(lambda: ec2.describe_availability_zones(**_filter("color", "x"))) == \
        "InvalidParameterValue"


def test_region_name_at_the_classic_path_is_ignored_as_eucalyptus_did(zones):
    """libcloud's Eucalyptus driver filters zones by region-name=us-east-1 whatever the
    cloud; at /services/Eucalyptus it gets this cloud's zones, as from Eucalyptus 3."""
    classic = boto3.session.Session(
        aws_access_key_id=zones.key_id, aws_secret_access_key=zones.secret,
        region_name="us-east-1").client(
            "ec2", endpoint_url=zones.endpoints["s3"] + "/services/Eucalyptus",
            config=Config(retries={"max_attempts": 1}))
    assert _names(classic, **_filter("region-name", "us-east-1")) == ["rack-a", "rack-b"]
    assert _names(classic, Filters=[{"Name": "region-name", "Values": ["us-east-1"]},
                                    {"Name": "zone-name", "Values": ["rack-b"]}]) == ["rack-b"]
