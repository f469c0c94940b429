"""Plans per node (compute.netplan.sync): every node the cluster drives gets the plan of its
own instances, a node that refuses or fails does not keep the others from theirs, and an
unreachable node is not waited for."""
from __future__ import annotations

import logging

import pytest

from eucalite import create_app
from eucalite.cluster import nodes
from eucalite.cluster.edge.plan import NetworkPlan
from eucalite.cluster.virt.driver import DriverError, HostCapacity
from eucalite.compute import netplan

from test_edge_plan import add_instance


class RecordingNode:
    """A node in the registry that records the plans it is asked to apply."""

    uses_host_files = False

    def __init__(self, node_id: str, fails: Exception | None = None):
        self.node_id = node_id
        self.fails = fails
        self.plans: list[tuple[NetworkPlan, bool]] = []

    def apply_network(self, plan: NetworkPlan, reread: bool = False) -> None:
        self.plans.append((plan, reread))
        if self.fails:
            raise self.fails


@pytest.fixture
def cloud(tmp_path):
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False,
                      "zones": ["zone"]})
    with app.app_context():
        cluster = app.extensions["eucalite"].cluster
        for node_id in ("node-a", "node-b", "node-c"):
            nodes.register(node_id, "zone", HostCapacity(cores=4, memory_mb=4096, disk_gb=40))
        yield cluster


def ips(node: RecordingNode) -> list[str]:
    plan, _ = node.plans[-1]
    return [port.private_ip for port in plan.ports]


def test_every_attached_node_gets_the_plan_of_its_own_instances(cloud):
    a, b = RecordingNode("node-a"), RecordingNode("node-b")
    cloud.attach(a)
    cloud.attach(b)
    _, ip_a = add_instance(node="node-a")
    _, ip_b1 = add_instance(node="node-b")
    _, ip_b2 = add_instance(node="node-b")
    netplan.sync(cloud, reread=True)
    assert ips(a) == [ip_a]
    assert sorted(ips(b)) == sorted([ip_b1, ip_b2])
    assert a.plans[-1][1] is True and b.plans[-1][1] is True


def test_a_failing_node_does_not_keep_the_others_from_their_plans(cloud, caplog):
    refusing = RecordingNode("node-a", DriverError("node node-a did not answer"))
    broken = RecordingNode("node-b", RuntimeError("a bug"))
    fine = RecordingNode("node-c")
    for node in (refusing, broken, fine):
        cloud.attach(node)
    _, ip_c = add_instance(node="node-c")
    with caplog.at_level(logging.WARNING, logger="eucalite.compute.netplan"):
        netplan.sync(cloud)
    assert refusing.plans and broken.plans
    assert ips(fine) == [ip_c]
    assert "node node-a did not answer" in caplog.text
    assert "node-b failed" in caplog.text


def test_an_unreachable_node_is_skipped_until_it_is_back(cloud):
    a, b = RecordingNode("node-a"), RecordingNode("node-b")
    cloud.attach(a)
    cloud.attach(b)
    nodes.mark_unreachable("node-b")
    netplan.sync(cloud)
    assert a.plans and not b.plans
    nodes.register("node-b", "zone", HostCapacity(cores=4, memory_mb=4096, disk_gb=40))
    netplan.sync(cloud)
    assert b.plans


def test_a_node_whose_plan_did_not_change_gets_no_command(cloud):
    a, b = RecordingNode("node-a"), RecordingNode("node-b")
    cloud.attach(a)
    cloud.attach(b)
    netplan.sync(cloud)
    add_instance(node="node-a")
    netplan.sync(cloud)
    assert (len(a.plans), len(b.plans)) == (2, 1)     # b's plan is unchanged
    netplan.sync(cloud, reread=True)                   # a reconcile pass reaches every node
    assert (len(a.plans), len(b.plans)) == (3, 2)
    # a node object replaced (its agent came back) gets the plan again
    fresh = RecordingNode("node-b")
    cloud.attach(fresh)
    netplan.sync(cloud)
    assert len(fresh.plans) == 1
    # a node that failed is asked again at the next sync
    failing = RecordingNode("node-a", DriverError("busy"))
    cloud.attach(failing)
    netplan.sync(cloud)
    netplan.sync(cloud)
    assert len(failing.plans) == 2


def test_nodes_apply_their_plans_at_once_so_a_slow_one_holds_up_no_other(cloud):
    import threading
    b_applied = threading.Event()
    seen = {}

    class Waiting(RecordingNode):
        """node-a: holds its apply until node-b has applied (which only a concurrent push
        lets happen; sequentially it would wait out its deadline)."""

        def apply_network(self, plan, reread=False):
            seen["b first"] = b_applied.wait(timeout=30)
            super().apply_network(plan, reread)

    class Signalling(RecordingNode):
        def apply_network(self, plan, reread=False):
            super().apply_network(plan, reread)
            b_applied.set()

    a, b = Waiting("node-a"), Signalling("node-b")
    cloud.attach(a)
    cloud.attach(b)
    netplan.sync(cloud)
    assert seen["b first"] is True
    assert a.plans and b.plans
