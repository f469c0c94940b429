"""The VXLAN overlay's command plan (eucalite.cluster.overlay) against a fake kernel: what
ensure() creates, that it is idempotent, follows peers joining and leaving, repairs a
device of the wrong VNI, and the drop rules it installs. No root needed."""
from __future__ import annotations

import json

import pytest

from eucalite.cluster import overlay
from eucalite.cluster.overlay import Overlay, OverlayError

BRIDGE = "eucabr0"
BRIDGE_MAC = "52:54:00:aa:bb:cc"


class FakeKernel:
    """Just enough of ip, bridge and nft for the overlay: links, flood entries, one table.
    Records every command that changes something."""

    def __init__(self):
        self.links: dict[str, dict] = {}
        self.fdb: dict[str, set[str]] = {}
        self.table: str | None = None
        self.changes: list[list[str]] = []

    def __call__(self, argv, stdin=None):
        argv = list(argv)
        if argv[:2] == ["ip", "netns"]:
            argv = argv[4:]
        if argv[:6] == ["ip", "-d", "-j", "link", "show", "type"]:
            return json.dumps([{"ifname": name, **link} for name, link in self.links.items()])
        if argv[:5] == ["ip", "-j", "link", "show", "dev"]:
            if argv[5] != BRIDGE:
                raise OverlayError("no such device")
            return json.dumps([{"ifname": BRIDGE, "address": BRIDGE_MAC}])
        if argv[:4] == ["bridge", "-j", "fdb", "show"]:
            return json.dumps([{"mac": "00:00:00:00:00:00", "dst": dst, "state": "permanent"}
                               for dst in sorted(self.fdb.get(argv[5], ()))])
        if argv[:3] == ["nft", "list", "table"]:
            if self.table is None:
                raise OverlayError("Error: No such file or directory")
            return self.table
        self.changes.append(argv)
        if argv[:3] == ["ip", "link", "add"]:
            name = argv[3]
            options = dict(zip(argv[6::2], argv[7::2]))
            self.links[name] = {"flags": ["BROADCAST"], "linkinfo": {
                "info_kind": "vxlan", "info_data": {"id": int(options["id"]),
                                                    "local": options["local"],
                                                    "port": int(options["dstport"])}}}
            self.fdb[name] = set()
        elif argv[:3] == ["ip", "link", "set"]:
            self.links[argv[4]].update(master=argv[6], flags=["BROADCAST", "UP"])
        elif argv[:3] == ["ip", "link", "del"]:
            del self.links[argv[4]]
            self.fdb.pop(argv[4], None)
        elif argv[:3] == ["bridge", "fdb", "append"]:
            self.fdb[argv[5]].add(argv[7])
        elif argv[:3] == ["bridge", "fdb", "del"]:
            self.fdb[argv[5]].discard(argv[7])
        elif argv[:3] == ["nft", "-f", "-"]:
            self.table = stdin
        elif argv[:3] == ["nft", "delete", "table"]:
            self.table = None
        else:
            raise AssertionError(f"unexpected command {argv}")
        return ""


@pytest.fixture
def kernel():
    return FakeKernel()


def make(kernel, vni=42, prefix=()):
    return Overlay(BRIDGE, vni, "10.211.0.1", "169.254.169.254", prefix=prefix, runner=kernel)


def test_ensure_creates_the_device_on_the_bridge_with_a_flood_entry_per_peer(kernel):
    assert make(kernel).ensure("192.0.2.1", ["192.0.2.2", "192.0.2.3", "192.0.2.1"])
    device = overlay.device_name(42)
    link = kernel.links[device]
    assert link["linkinfo"]["info_data"] == {"id": 42, "local": "192.0.2.1", "port": 4789}
    assert link["master"] == BRIDGE and "UP" in link["flags"]
    # itself among the peers is ignored
    assert kernel.fdb[device] == {"192.0.2.2", "192.0.2.3"}
    assert kernel.table is not None


def test_ensure_again_changes_nothing(kernel):
    node = make(kernel)
    node.ensure("192.0.2.1", ["192.0.2.2"])
    kernel.changes.clear()
    assert not node.ensure("192.0.2.1", ["192.0.2.2"])
    assert kernel.changes == []


def test_peers_joining_and_leaving_change_only_their_entries(kernel):
    node = make(kernel)
    node.ensure("192.0.2.1", ["192.0.2.2", "192.0.2.3"])
    kernel.changes.clear()
    assert node.ensure("192.0.2.1", ["192.0.2.3", "192.0.2.4"])
    device = overlay.device_name(42)
    assert kernel.fdb[device] == {"192.0.2.3", "192.0.2.4"}
    assert sorted(kernel.changes) == [
        ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", device, "dst", "192.0.2.4"],
        ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", device, "dst", "192.0.2.2"]]


def test_a_device_with_another_address_or_vni_is_replaced(kernel):
    make(kernel, vni=7).ensure("192.0.2.1", ["192.0.2.2"])
    make(kernel, vni=42).ensure("192.0.2.9", ["192.0.2.2"])
    assert set(kernel.links) == {overlay.device_name(42)}
    make(kernel, vni=42).ensure("192.0.2.1", ["192.0.2.2"])
    assert kernel.links[overlay.device_name(42)]["linkinfo"]["info_data"]["local"] == \
        "192.0.2.1"
    assert kernel.fdb[overlay.device_name(42)] == {"192.0.2.2"}


def test_a_lost_drop_table_is_put_back(kernel):
    node = make(kernel)
    node.ensure("192.0.2.1", [])
    kernel.table = None
    assert node.ensure("192.0.2.1", [])
    assert kernel.table is not None


def test_the_drop_rules_keep_gateway_dhcp_and_metadata_local(kernel):
    make(kernel).ensure("192.0.2.1", ["192.0.2.2"])
    device = overlay.device_name(42)
    rules = kernel.table
    for direction in ("iifname", "oifname"):
        assert f'{direction} "{device}" arp daddr ip {{ 10.211.0.1, 169.254.169.254 }} drop' \
            in rules
        assert f'{direction} "{device}" arp saddr ip {{ 10.211.0.1, 169.254.169.254 }} drop' \
            in rules
        assert f'{direction} "{device}" udp dport {{ 67, 68 }} drop' in rules
    assert f'oifname "{device}" ether saddr {BRIDGE_MAC} drop' in rules
    assert f'iifname "{device}" ether daddr {BRIDGE_MAC} drop' in rules
    # one transaction whether or not the table existed
    assert rules.startswith(f"table bridge {overlay.TABLE}\ndelete table bridge")


def test_remove_deletes_device_and_table_and_is_idempotent(kernel):
    node = make(kernel)
    node.ensure("192.0.2.1", ["192.0.2.2"])
    node.remove()
    assert kernel.links == {} and kernel.table is None
    node.remove()


def test_commands_run_in_the_given_namespace(kernel):
    seen = []

    def runner(argv, stdin=None):
        seen.append(list(argv))
        return kernel(argv, stdin)
    make(runner, prefix=("ip", "netns", "exec", "nodeA")).ensure("192.0.2.1", [])
    assert seen and all(argv[:4] == ["ip", "netns", "exec", "nodeA"] for argv in seen)


@pytest.mark.parametrize("bad", ["", "not-an-ip", "0.0.0.0", "224.0.0.1", "169.254.1.1",
                                 "fe80::1", "255.255.255.255"])
def test_bad_addresses_are_refused_before_anything_changes(kernel, bad):
    with pytest.raises(ValueError):
        make(kernel).ensure(bad, [])
    with pytest.raises(ValueError):
        make(kernel).ensure("192.0.2.1", [bad])
    assert kernel.changes == []


def test_vni_is_derived_per_zone_or_configured():
    assert overlay.vni_for("zone-a") == overlay.vni_for("zone-a")
    assert overlay.vni_for("zone-a") != overlay.vni_for("zone-b")
    assert 1 <= overlay.vni_for("zone-a") <= overlay.MAX_VNI
    assert overlay.vni_for("zone-a", 5000) == 5000
    with pytest.raises(ValueError):
        overlay.vni_for("zone-a", 2 ** 24)
    assert len(overlay.device_name(overlay.MAX_VNI)) <= 15
