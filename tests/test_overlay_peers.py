"""Who a node's overlay floods to: the other nodes of its zone with an address
(overlay.zone_peers), the controller's own node joining from the node rows
(overlay.sync_local, on a fake kernel)."""
from __future__ import annotations

import pytest

from eucalite import create_app
from eucalite.cluster import nodes, overlay
from eucalite.cluster.models import Node
from eucalite.cluster.virt.driver import HostCapacity
from eucalite.db import db

from test_overlay import FakeKernel

CAPACITY = HostCapacity(cores=4, memory_mb=4096, disk_gb=40)


@pytest.fixture
def app(tmp_path):
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False,
                      "zones": ["zone-a", "zone-b"]})
    with app.app_context():
        yield app


def add(node_id: str, zone: str = "zone-a", address: str = "") -> None:
    nodes.register(node_id, zone, CAPACITY, "fake://", address)


def test_peers_are_the_other_nodes_of_the_zone_that_have_an_address(app):
    add("cc", address="192.0.2.1")
    add("n1", address="192.0.2.11")
    add("n2", address="192.0.2.12")
    add("n3")                                       # no address yet: nobody floods to it
    add("other", "zone-b", address="192.0.2.99")    # another zone's segment
    assert overlay.zone_peers("n1") == [{"node_id": "cc", "address": "192.0.2.1"},
                                        {"node_id": "n2", "address": "192.0.2.12"}]
    assert overlay.zone_peers("other") == []
    assert overlay.zone_peers("unknown") == []
    # a disabled or unreachable node stays a peer: its instances still run
    nodes.set_state("n2", "disabled")
    nodes.mark_unreachable("cc")
    assert [peer["node_id"] for peer in overlay.zone_peers("n1")] == ["cc", "n2"]


def config(app, **overrides):
    return {**app.config["EUCALITE"], **overrides}


def test_the_controllers_node_joins_its_zone_from_the_rows(app):
    kernel = FakeKernel()
    add("cc")
    add("n1", address="192.0.2.11")
    add("n2", address="192.0.2.12")
    assert overlay.sync_local(config(app, node_address="192.0.2.1"), "cc", runner=kernel)
    device = overlay.device_name(overlay.vni_for("zone-a"))
    assert kernel.links[device]["linkinfo"]["info_data"]["local"] == "192.0.2.1"
    assert kernel.fdb[device] == {"192.0.2.11", "192.0.2.12"}
    # its address is recorded, so the other nodes are told to flood to it
    assert db.session.get(Node, "cc").address == "192.0.2.1"
    assert {"node_id": "cc", "address": "192.0.2.1"} in overlay.zone_peers("n1")
    # a node removed from the zone is no longer flooded to
    db.session.delete(db.session.get(Node, "n2"))
    db.session.commit()
    assert overlay.sync_local(config(app, node_address="192.0.2.1"), "cc", runner=kernel)
    assert kernel.fdb[device] == {"192.0.2.11"}
    assert not overlay.sync_local(config(app, node_address="192.0.2.1"), "cc", runner=kernel)


def test_without_node_address_the_route_towards_the_peers_decides(app):
    kernel = FakeKernel()
    add("cc")
    add("n1", address="127.0.0.2")
    overlay.sync_local(config(app), "cc", runner=kernel)
    assert db.session.get(Node, "cc").address == "127.0.0.1"


def test_a_single_host_cloud_has_no_overlay_and_a_left_one_is_removed(app):
    kernel = FakeKernel()
    add("cc")
    assert not overlay.sync_local(config(app), "cc", runner=kernel)
    assert kernel.changes == []
    add("n1", address="192.0.2.11")
    overlay.sync_local(config(app, node_address="192.0.2.1"), "cc", runner=kernel)
    nodes.remove("n1")
    assert overlay.sync_local(config(app, node_address="192.0.2.1"), "cc", runner=kernel)
    assert kernel.links == {} and kernel.table is None


def test_a_bad_node_address_is_refused(app):
    add("cc")
    add("n1", address="192.0.2.11")
    with pytest.raises(ValueError, match="node_address"):
        overlay.sync_local(config(app, node_address="eth0"), "cc", runner=FakeKernel())


def test_a_joined_node_follows_its_answers_and_logs_a_problem_once(app, caplog):
    kernel = FakeKernel()
    cfg = config(app)
    answer = {"state": "enabled", "vni": 77, "address": "192.0.2.5",
              "peers": [{"node_id": "cc", "address": "192.0.2.1"}]}
    assert overlay.follow_answer(cfg, answer, runner=kernel)
    assert kernel.fdb[overlay.device_name(77)] == {"192.0.2.1"}
    assert not overlay.follow_answer(cfg, answer, runner=kernel)
    # an older controller's answer says nothing of the overlay: nothing changes
    assert not overlay.follow_answer(cfg, {"state": "enabled"}, runner=kernel)
    bad = {**answer, "address": "nonsense"}
    with caplog.at_level("WARNING", logger="eucalite.cluster.overlay"):
        assert not overlay.follow_answer(cfg, bad, runner=kernel)
        assert not overlay.follow_answer(cfg, bad, runner=kernel)
    assert caplog.text.count("nonsense") == 1
    assert overlay.follow_answer(cfg, {**answer, "peers": []}, runner=kernel)
    assert kernel.links == {}


# --- what joined nodes are told -----------------------------------------------------------

@pytest.fixture
def controller(tmp_path):
    from liveutil import start_live
    live, server = start_live(tmp_path / "live", zones=["zone-a", "zone-b"],
                              vxlan_vni=0)
    yield live
    server.shutdown()


def joined(live, name: str, zone: str = "zone-a"):
    import datetime as dt
    from eucalite.cluster import joining
    from eucalite.cluster.nodeclient import NodeClient, NodeCredentials
    with live.app.app_context():
        token, _ = joining.create_token(zone, ["zone-a", "zone-b"], dt.timedelta(hours=1), "t")
    answer = NodeClient(live.base_url).join(token, name)
    return NodeClient(live.base_url, NodeCredentials(
        live.base_url, answer["node_id"], answer["zone"], answer["region"],
        answer["access_key_id"], answer["secret_access_key"]))


def register(client, address=None):
    body = {"capacity": {"cores": 2, "memory_mb": 2048, "disk_gb": 20},
            "hypervisor_uri": "fake://"}
    if address is not None:
        body["address"] = address
    return client.call("PUT", f"/nodes/{client.credentials.node_id}", body)


def test_registration_and_heartbeat_answers_name_the_zones_peers(controller):
    a, b = joined(controller, "node-a"), joined(controller, "node-b")
    other = joined(controller, "node-z", zone="zone-b")
    first = register(a, "192.0.2.11")
    assert first["peers"] == [] and first["address"] == "192.0.2.11"
    assert first["vni"] == overlay.vni_for("zone-a")
    second = register(b)                        # no address: the one it called from
    assert second["address"] == "127.0.0.1"
    assert second["peers"] == [{"node_id": "node-a", "address": "192.0.2.11"}]
    register(other, "192.0.2.99")
    beat = a.call("POST", "/nodes/node-a/heartbeat",
                  {"capacity": {"cores": 2, "memory_mb": 2048, "disk_gb": 20}})
    assert beat["peers"] == [{"node_id": "node-b", "address": "127.0.0.1"}]
    assert beat["vni"] == first["vni"] and beat["address"] == "192.0.2.11"
    assert a.call("GET", "/nodes/node-a")["peers"] == beat["peers"]


def test_a_registration_with_an_unusable_address_is_refused(controller):
    from eucalite.cluster.nodeclient import InternalApiError
    client = joined(controller, "node-a")
    for bad in ("eth0", "0.0.0.0", "224.0.0.9"):
        with pytest.raises(InternalApiError) as refused:
            register(client, bad)
        assert refused.value.status == 400
        assert refused.value.code == "InvalidParameterValue"
