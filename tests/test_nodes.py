"""Node service on a real (SQLite) database: registration, reservations, admin state, CLI;
and the node boundary (LocalNode keeps the Node protocol, its records are plain data)."""
from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import stat
import tempfile
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from eucalite import create_app
from eucalite.cluster import nodes
from eucalite.cli.node import node_group
from eucalite.cluster.localnode import LocalNode
from eucalite.cluster.models import Node
from eucalite.cluster.node import Endpoint, ImageRef, Launch
from eucalite.cluster.node import Node as NodeProtocol
from eucalite.cluster.scheduler import Need
from eucalite.cluster.service import open_work_dirs
from eucalite.cluster.virt.driver import DiskSpec, HostCapacity
from eucalite.cluster.virt.fake import FakeDriver
from eucalite.db import db
from eucalite.errors import AwsError

ZONE = "eucalyptus-1a"
SMALL = Need(cores=1, memory_mb=256, disk_gb=5)


def add_node(node_id, cores=4, memory_mb=4096, disk_gb=100, zone=ZONE, state="enabled",
             **used) -> None:
    """Insert a node row directly (as if its host had registered)."""
    db.session.add(Node(id=node_id, zone=zone, state=state, cores=cores,
                        memory_mb=memory_mb, disk_gb=disk_gb, **used))
    db.session.commit()


def get(node_id) -> Node:
    db.session.expire_all()
    return db.session.get(Node, node_id)


def config_with(app, **settings):
    return {**app.config["EUCALITE"], **settings}


# --- register_local -------------------------------------------------------------------

def test_register_local_creates_enabled_node(app):
    with app.app_context():
        node = nodes.register_local(config_with(app, node_name="host1"),
                                    HostCapacity(8, 16384, 200), "qemu:///system")
        assert node.id == "host1"
        row = get("host1")
        assert (row.zone, row.state, row.cores, row.memory_mb, row.disk_gb) == \
            (ZONE, "enabled", 8, 16384, 200)
        assert row.hypervisor_uri == "qemu:///system"
        assert (row.used_cores, row.used_memory_mb, row.used_disk_gb) == (0, 0, 0)


def test_register_local_defaults_to_host_name(app, monkeypatch):
    monkeypatch.setattr(nodes.socket, "gethostname", lambda: "myhost")
    with app.app_context():
        nodes.register_local(config_with(app, node_name=""), HostCapacity(2, 2048, 20), "")
        assert [node.id for node in nodes.list_nodes()] == ["myhost"]


def test_register_local_again_updates_capacity_keeps_usage_and_disabled(app):
    config = config_with(app, node_name="host1", zones=["zone-b", "zone-c"])
    with app.app_context():
        first = nodes.register_local(config, HostCapacity(8, 16384, 200), "test:///default")
        seen = first.last_seen
        nodes.reserve("zone-b", SMALL, 1, 1, "GREEDY")
        nodes.set_state("host1", "disabled")
        nodes.register_local(config, HostCapacity(16, 32768, 400), "qemu:///system")
        row = get("host1")
        assert row.zone == "zone-b"
        assert row.state == "disabled"
        assert (row.cores, row.memory_mb, row.disk_gb) == (16, 32768, 400)
        assert (row.used_cores, row.used_memory_mb, row.used_disk_gb) == (1, 256, 5)
        assert row.last_seen >= seen
        assert len(nodes.list_nodes()) == 1


def test_register_local_brings_an_unreachable_node_back(app):
    config = config_with(app, node_name="host1")
    with app.app_context():
        nodes.register_local(config, HostCapacity(8, 16384, 200), "")
        nodes.mark_unreachable("host1")
        assert get("host1").state == "unreachable"
        nodes.register_local(config, HostCapacity(8, 16384, 200), "")
        assert get("host1").state == "enabled"


# --- reserve / release ----------------------------------------------------------------

def test_reserve_and_release_arithmetic(app):
    need = Need(2, 1024, 10)
    with app.app_context():
        add_node("a", cores=8, memory_mb=8192, disk_gb=100)
        chosen = nodes.reserve(ZONE, need, 1, 3, "GREEDY")
        assert chosen == ["a", "a", "a"]
        row = get("a")
        assert (row.used_cores, row.used_memory_mb, row.used_disk_gb) == (6, 3072, 30)
        nodes.release("a", need)
        row = get("a")
        assert (row.used_cores, row.used_memory_mb, row.used_disk_gb) == (4, 2048, 20)


def test_release_never_goes_below_zero(app):
    with app.app_context():
        add_node("a", used_cores=1, used_memory_mb=100, used_disk_gb=0)
        nodes.release("a", Need(2, 256, 5))
        row = get("a")
        assert (row.used_cores, row.used_memory_mb, row.used_disk_gb) == (0, 0, 0)


def test_release_on_unknown_node_is_harmless(app):
    with app.app_context():
        nodes.release("gone", SMALL)
        add_node("a")       # the write lock was released: the next writer proceeds


def test_reserve_returns_up_to_max_when_min_fits(app):
    with app.app_context():
        add_node("a", cores=3)
        assert nodes.reserve(ZONE, SMALL, 2, 5, "GREEDY") == ["a", "a", "a"]
        assert get("a").used_cores == 3


def test_insufficient_capacity_reserves_nothing(app):
    with app.app_context():
        add_node("a", cores=2)
        add_node("b", cores=1)
        with pytest.raises(AwsError) as raised:
            nodes.reserve(ZONE, SMALL, 4, 4, "GREEDY")
        assert raised.value.code == "InsufficientInstanceCapacity"
        assert raised.value.status == 500
        assert raised.value.message == "Insufficient capacity."
        assert get("a").used_cores == 0 and get("b").used_cores == 0
        assert nodes.reserve(ZONE, SMALL, 3, 3, "GREEDY") == ["a", "a", "b"]


def test_instance_type_too_big_for_every_node(app):
    with app.app_context():
        add_node("a", cores=4)
        with pytest.raises(AwsError) as raised:
            nodes.reserve(ZONE, Need(8, 256, 5), 1, 1, "GREEDY")
        assert raised.value.code == "InsufficientInstanceCapacity"


def test_no_nodes_in_zone_says_how_to_turn_node_duty_on(app):
    with app.app_context():
        add_node("elsewhere", zone="other-zone")
        with pytest.raises(AwsError) as raised:
            nodes.reserve(ZONE, SMALL, 1, 1, "GREEDY")
        assert raised.value.code == "InsufficientInstanceCapacity"
        assert raised.value.status == 500
        message = raised.value.message
        assert "node duty" in message and "eucalite serve" in message
        assert "libvirt" in message


def test_disabled_and_unreachable_nodes_are_skipped(app):
    with app.app_context():
        add_node("a", state="disabled")
        add_node("b", state="unreachable")
        add_node("c", cores=2)
        assert nodes.reserve(ZONE, SMALL, 1, 4, "GREEDY") == ["c", "c"]
        assert get("a").used_cores == 0 and get("b").used_cores == 0


def test_all_nodes_disabled_says_so(app):
    with app.app_context():
        add_node("a", state="disabled")
        with pytest.raises(AwsError) as raised:
            nodes.reserve(ZONE, SMALL, 1, 1, "GREEDY")
        assert raised.value.code == "InsufficientInstanceCapacity"
        assert "eucalite node enable" in raised.value.message


@pytest.mark.parametrize("min_count, max_count", [(0, 1), (2, 1), (-1, 3)])
def test_reserve_rejects_bad_counts(app, min_count, max_count):
    with app.app_context():
        add_node("a")
        with pytest.raises(AwsError) as raised:
            nodes.reserve(ZONE, SMALL, min_count, max_count, "GREEDY")
        assert raised.value.code == "InvalidParameterValue"


def test_unknown_policy_is_an_error(app):
    with app.app_context():
        add_node("a")
        with pytest.raises(ValueError):
            nodes.reserve(ZONE, SMALL, 1, 1, "BESTFIT")
        assert get("a").used_cores == 0


# --- policies through the database ----------------------------------------------------

def test_greedy_fills_first_node(app):
    with app.app_context():
        add_node("b", cores=2)
        add_node("a", cores=2)
        assert nodes.reserve(ZONE, SMALL, 1, 3, "GREEDY") == ["a", "a", "b"]


def test_roundrobin_rotates_across_requests(app):
    with app.app_context():
        for node_id in ("a", "b", "c"):
            add_node(node_id)
        picks = [nodes.reserve(ZONE, SMALL, 1, 1, "ROUNDROBIN")[0] for _ in range(4)]
        assert picks == ["a", "b", "c", "a"]
        assert nodes.reserve(ZONE, SMALL, 1, 2, "ROUNDROBIN") == ["b", "c"]


def test_powersave_packs_onto_used_node(app):
    with app.app_context():
        add_node("a", cores=4)
        add_node("b", cores=4, used_cores=1, used_memory_mb=256, used_disk_gb=5)
        assert nodes.reserve(ZONE, SMALL, 1, 4, "POWERSAVE") == ["b", "b", "b", "a"]
        # Both are in use now; b (full) is skipped and a, the more loaded with room, fills.
        assert nodes.reserve(ZONE, SMALL, 1, 3, "POWERSAVE") == ["a", "a", "a"]


# --- concurrency ----------------------------------------------------------------------

def test_concurrent_reservations_never_oversubscribe(app):
    """50 single-instance requests race for room for exactly 40."""
    with app.app_context():
        add_node("a", cores=16, memory_mb=65536, disk_gb=1000)
        add_node("b", cores=64, memory_mb=16 * 256, disk_gb=1000)    # memory: 16
        add_node("c", cores=64, memory_mb=65536, disk_gb=8 * 5)      # disk: 8
    results: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(50)

    def one(policy):
        with app.app_context():
            start.wait()
            try:
                results.extend(nodes.reserve(ZONE, SMALL, 1, 1, policy))
            except AwsError as error:
                results.append(error.code)
            except BaseException as error:   # surfaced below, not lost in the thread
                errors.append(error)

    policies = ["GREEDY", "ROUNDROBIN", "POWERSAVE"]
    threads = [threading.Thread(target=one, args=(policies[i % 3],)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == 50
    assert results.count("InsufficientInstanceCapacity") == 10
    assert sorted(r for r in results if r != "InsufficientInstanceCapacity") == \
        ["a"] * 16 + ["b"] * 16 + ["c"] * 8
    with app.app_context():
        for row in nodes.list_nodes():
            assert row.used_cores <= row.cores
            assert row.used_memory_mb <= row.memory_mb
            assert row.used_disk_gb <= row.disk_gb
        assert sum(row.used_cores for row in nodes.list_nodes()) == 40


# --- admin state ----------------------------------------------------------------------

def test_set_state(app):
    with app.app_context():
        add_node("a")
        assert nodes.set_state("a", "disabled").state == "disabled"
        assert get("a").state == "disabled"
        nodes.set_state("a", "enabled")
        assert get("a").state == "enabled"


def test_set_state_unknown_node_or_state(app):
    with app.app_context():
        add_node("a")
        with pytest.raises(AwsError) as raised:
            nodes.set_state("nope", "disabled")
        assert raised.value.code == "InvalidParameterValue"
        with pytest.raises(AwsError) as raised:
            nodes.set_state("a", "unreachable")
        assert raised.value.code == "InvalidParameterValue"
        assert get("a").state == "enabled"


def test_mark_unreachable_keeps_disabled(app):
    with app.app_context():
        add_node("a")
        add_node("b", state="disabled")
        nodes.mark_unreachable("a")
        nodes.mark_unreachable("b")
        nodes.mark_unreachable("missing")
        assert get("a").state == "unreachable"
        assert get("b").state == "disabled"


def test_list_nodes_orders_by_zone_then_id(app):
    with app.app_context():
        add_node("b", zone="z2")
        add_node("c", zone="z1")
        add_node("a", zone="z2")
        assert [(n.zone, n.id) for n in nodes.list_nodes()] == \
            [("z1", "c"), ("z2", "a"), ("z2", "b")]


# --- zone_capacity --------------------------------------------------------------------

def test_zone_capacity_counts_per_node_free_and_total(app):
    types = [("m1.small", 1, 256, 5), ("c1.medium", 2, 512, 10), ("huge", 16, 1024, 10)]
    with app.app_context():
        add_node("a", cores=4, memory_mb=1024, disk_gb=100,
                 used_cores=1, used_memory_mb=256, used_disk_gb=5)
        add_node("b", cores=3, memory_mb=4096, disk_gb=100)
        add_node("off", cores=64, memory_mb=65536, disk_gb=1000, state="disabled")
        add_node("far", cores=64, memory_mb=65536, disk_gb=1000, zone="other")
        assert nodes.zone_capacity(ZONE, types) == [
            # a: free 3 (memory 768/256), total 4; b: 3 and 3
            ("m1.small", 6, 7),
            # a: free min(3//2, 768//512)=1, total 2; b: 1 and 1 (an instance can't span nodes)
            ("c1.medium", 2, 3),
            ("huge", 0, 0),
        ]


def test_zone_capacity_of_empty_zone(app):
    with app.app_context():
        assert nodes.zone_capacity(ZONE, [("m1.small", 1, 256, 5)]) == [("m1.small", 0, 0)]


# --- CLI ------------------------------------------------------------------------------

def _cli(data_dir, *args):
    return CliRunner().invoke(node_group, [*args, "--data-dir", str(data_dir)])


def test_cli_list_enable_disable(app):
    data_dir = app.config["EUCALITE"]["data_dir"]
    with app.app_context():
        add_node("host1", cores=8, memory_mb=16384, disk_gb=200,
                 used_cores=2, used_memory_mb=512, used_disk_gb=10)
    result = _cli(data_dir, "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split("\t") == ["NODE", "ZONE", "STATE", "VCPUS", "CORES", "MEMORY_MB",
                                     "RAM_MB", "DISK_GB", "CPU_OVERCOMMIT",
                                     "MEMORY_OVERCOMMIT"]
    # the app's default overcommit: 4 vCPUs per core, memory and disk as they are
    assert lines[1].split("\t") == ["host1", ZONE, "enabled", "2/32", "8", "512/16384",
                                     "16384", "10/200", "4", "1"]

    result = _cli(data_dir, "disable", "host1")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "host1 disabled"
    assert "\tdisabled\t" in _cli(data_dir, "list").output

    result = _cli(data_dir, "enable", "host1")
    assert result.exit_code == 0, result.output
    assert "\tenabled\t" in _cli(data_dir, "list").output


def test_cli_unknown_node_fails_with_one_line(app):
    data_dir = app.config["EUCALITE"]["data_dir"]
    result = _cli(data_dir, "disable", "nope")
    assert result.exit_code == 1
    assert "InvalidParameterValue" in result.output
    assert "Traceback" not in result.output


def test_cli_list_without_nodes_says_how_to_get_one(app):
    result = _cli(app.config["EUCALITE"]["data_dir"], "list")
    assert result.exit_code == 0
    assert "eucalite serve" in result.output


@pytest.fixture
def open_tmp():
    """A temporary dir whose parents others may pass through (pytest's own are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="eucalite-perm-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_node_duty_opens_only_the_instance_dirs_to_qemu(open_tmp):
    """QEMU runs as libvirt's user: it may enter the data dir and reach image-cache and
    instances, while the database and the object store stay private to eucalite."""
    tmp_path = open_tmp
    data = tmp_path / "data"
    (data / "s3").mkdir(parents=True)
    (data / "cloud-key.pem").write_bytes(b"secret")
    (data / "cloud-key.pem").chmod(0o644)
    (data / "s3").chmod(0o755)
    tmp_path.chmod(0o700)
    problem = open_work_dirs(data)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(data) == 0o701
    assert mode(data / "cloud-key.pem") == 0o600
    assert mode(data / "s3") == 0o700
    assert mode(data / "instances") & 0o001 and mode(data / "image-cache") & 0o001
    # a parent QEMU cannot pass through is reported, not silently ignored
    assert problem and str(tmp_path) in problem and "chmod o+x" in problem
    tmp_path.chmod(0o711)
    assert open_work_dirs(data) is None
    # create_app keeps the search permission node duty gave (and nothing more)
    create_app({"data_dir": str(data), "node": False})
    assert mode(data) == 0o701


# --- the node boundary -------------------------------------------------------------------

def test_local_node_implements_the_node_protocol_with_its_signatures():
    """Everything above the node reaches it through cluster.node.Node: LocalNode has every
    method of the protocol, taking the same parameters."""
    wanted = {name for name, value in vars(NodeProtocol).items()
              if callable(value) and not name.startswith("_")}
    assert {"spawn", "destroy", "attach_volume", "detach_volume", "plug", "unplug",
            "fetch_image", "capacity", "domains"} <= wanted
    for name in wanted:
        assert inspect.signature(getattr(LocalNode, name)) == \
            inspect.signature(getattr(NodeProtocol, name)), name
    assert isinstance(LocalNode("n", FakeDriver(), None, {}, None), NodeProtocol)


def test_what_crosses_the_node_boundary_is_plain_data():
    """A Launch (with its image refs, endpoint and an iSCSI root volume) survives a JSON
    round trip: no ORM rows, callables or app context cross to a node."""
    launch = Launch(
        instance_id="i-0123456789abcdef0", vcpus=1, memory_mb=256, disk_gb=5,
        endpoint=Endpoint("d0:0d:0a:d3:00:02", "10.211.0.2"),
        kernel=ImageRef("eki-00000001", "kernel", "images/k.manifest.xml"),
        ramdisk=ImageRef("eri-00000001", "ramdisk", "images/r.manifest.xml"),
        root_volume=DiskSpec("vda", format="raw", serial="vol0123456789abcdef0",
                             network={"protocol": "iscsi", "name": "iqn.x:vol-1/1",
                                      "host": "127.0.0.1", "port": 3260,
                                      "username": "u", "password": "p",
                                      "secret_usage": "eucalite-chap-vol-1"}),
        images_in_use=["eki-00000001", "eri-00000001"])
    record = dataclasses.asdict(launch)
    assert json.loads(json.dumps(record)) == record
    with pytest.raises(ValueError):
        ImageRef("emi-00000001", "swap", "images/x.manifest.xml")
