"""Zones and the admin's node states outside the big fake cluster: the local node's zone
(``node_zone``), the settings' checks, and the console's nodes page and dashboard grouped by
zone with Drain and Remove."""
from __future__ import annotations

import datetime as dt

import pytest

from eucalite import config as config_module
from eucalite.accounts import utcnow
from eucalite.cluster import nodes
from eucalite.cluster.models import Node
from eucalite.cluster.scheduler import Need
from eucalite.cluster.virt.driver import HostCapacity
from eucalite.db import db
from eucalite.errors.ec2 import InsufficientInstanceCapacity

from clusterutil import attach_fake_node
from consoleutil import Console, console_app


def test_the_local_node_joins_node_zone_else_the_first_zone(tmp_path):
    app = console_app(tmp_path, zones=["zone-a", "zone-b"], node_zone="zone-b")
    with app.app_context():
        assert [(node.zone, node.state) for node in nodes.list_nodes()] == \
            [("zone-b", "enabled")]
    app.extensions["eucalite"].compute.worker.shutdown()
    other = console_app(tmp_path / "other", zones=["zone-a", "zone-b"])
    with other.app_context():
        assert [node.zone for node in nodes.list_nodes()] == ["zone-a"]
    other.extensions["eucalite"].compute.worker.shutdown()


@pytest.mark.parametrize("settings, message", [
    ({"zones": ["zone-a"], "node_zone": "zone-x"}, "node_zone: 'zone-x' is not one of zones"),
    ({"node_timeout": 0}, "node_timeout: expected seconds above 0"),
    ({"node_timeout": "soon"}, "node_timeout: expected seconds above 0"),
])
def test_zone_and_timeout_settings_are_checked(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        config_module.load({"data_dir": str(tmp_path), **settings})


@pytest.fixture
def two_zones(tmp_path):
    app = console_app(tmp_path, zones=["zone-a", "zone-b"], cpu_overcommit=1.0)
    services = app.extensions["eucalite"]
    with app.app_context():
        attach_fake_node(services, "far-node", "zone-b", HostCapacity(2, 4096, 50))
    yield app
    services.compute.worker.shutdown()


def test_console_groups_nodes_by_zone_and_drains_and_removes(two_zones):
    app = two_zones
    admin = Console(app)
    page = admin.text("/console/nodes")
    assert page.index('data-zone="zone-a"') < page.index('data-zone="zone-b"') \
        < page.index('data-id="far-node"')
    dashboard = admin.text("/console/dashboard")
    assert 'data-zone="zone-a"' in dashboard and 'data-zone="zone-b"' in dashboard

    text = admin.page("/console/nodes/far-node/state", {"state": "draining"})
    assert "Node far-node is now draining." in text and 'data-state="draining"' in text
    with app.app_context():
        assert db.session.get(Node, "far-node").state == "draining"
        # holds an instance: Remove is refused with the reason, nothing changes
        db.session.get(Node, "far-node").used_cores = 1
        db.session.commit()
    text = admin.page("/console/nodes/far-node/remove")
    assert "InvalidParameterValue" in text and "still runs instances" in text
    with app.app_context():
        node = db.session.get(Node, "far-node")
        node.used_cores = 0
        db.session.commit()
    text = admin.page("/console/nodes/far-node/remove")
    assert "Node far-node is removed." in text and 'data-id="far-node"' not in text
    with app.app_context():
        assert db.session.get(Node, "far-node") is None
    text = admin.page("/console/nodes/no-such-node/remove")
    assert "InvalidParameterValue" in text


def test_console_removes_a_lost_node_with_its_instances(two_zones):
    app = two_zones
    admin = Console(app)
    assert "Remove with its instances" not in admin.text("/console/nodes")
    text = admin.page("/console/nodes/far-node/remove", {"force": "1"})
    assert "InvalidParameterValue" in text and "answers" in text
    with app.app_context():
        nodes.mark_silent(0, utcnow() + dt.timedelta(seconds=1))
    assert "Remove with its instances" in admin.text("/console/nodes")
    text = admin.page("/console/nodes/far-node/remove", {"force": "1"})
    assert "Node far-node is removed; its instances ended." in text
    with app.app_context():
        assert db.session.get(Node, "far-node") is None


def test_a_zone_whose_nodes_all_drain_is_impaired_and_says_why(two_zones):
    app = two_zones
    cluster = app.extensions["eucalite"].cluster
    with app.app_context():
        nodes.set_state("far-node", nodes.DRAINING)
        states = {zone.name: (zone.state, zone.messages) for zone in cluster.zones()}
        assert states == {"zone-a": ("available", ()),
                          "zone-b": ("impaired", ("no node takes instances: 1 draining",))}
        with pytest.raises(InsufficientInstanceCapacity,
                           match="no node of availability zone zone-b is enabled"):
            nodes.reserve("zone-b", Need(1, 256, 5), 1, 1, "GREEDY")
