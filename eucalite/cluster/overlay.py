"""The instance network across the nodes of a zone: one VXLAN segment joining their bridges.

Every node of a zone (the controller's own node duty included) has a VXLAN device
(``euvx<VNI in hex>``, UDP port 4789, one VNI per zone: :func:`vni_for`) enslaved to its
instance bridge, and a flood entry (``bridge fdb append 00:00:00:00:00:00 dev <vx> dst
<peer>``) for each other node of the zone, so broadcasts (ARP, DHCP) reach every node and
unicast follows the MACs the device learns. The zone's guests therefore share one broadcast
domain and the private subnet, whichever node runs them.

Each node keeps its own gateway, DHCP server (libvirt's dnsmasq) and metadata service on
the same addresses: the table ``bridge eucalite_overlay`` (:func:`overlay_table`) drops, on
the VXLAN port in both directions, ARP for or from the gateway and metadata addresses, DHCP
(udp 67/68), IPv4 from those addresses and anything the node's own bridge sends. A guest
therefore only ever hears its own node's gateway, DHCP server and metadata service.

MTU: the device keeps the guests' 1500 bytes and the outer packets go without the DF bit,
so a full-size guest frame (1550 bytes once wrapped) is fragmented by the sending host on a
1500-byte lab network and reassembled by the receiving one. Guests need no MTU setting
(images that ignore DHCP's MTU option still work, the tiny test guest among them); a lab
network with an MTU of 1550 or more (jumbo frames) avoids the fragmentation entirely.

:class:`Overlay` makes the kernel match (:meth:`Overlay.ensure`, idempotent: it reads what
the kernel holds and changes only what differs) through a *runner* (``run(argv, stdin)``
returning stdout, raising :class:`OverlayError`), with an optional *prefix* (``ip netns
exec NS``). :func:`zone_peers` is the controller's side: the addresses of a node's peers,
told to joined nodes in their registration and heartbeat answers; :func:`sync_local` joins
the controller's own node from the node rows.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import socket
import subprocess
import zlib
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..db import db, writing
from .models import Node as NodeRow

#: VXLAN's IANA port; nodes of a zone must reach each other on it (UDP).
VXLAN_PORT = 4789
#: What VXLAN adds to each frame (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14).
OVERHEAD = 50
TABLE = "eucalite_overlay"
FLOOD_MAC = "00:00:00:00:00:00"
DEVICE_PREFIX = "euvx"
MAX_VNI = 2 ** 24 - 1

log = logging.getLogger(__name__)

#: ``run(argv, stdin)``: stdout of *argv*, OverlayError when it fails
Runner = Callable[[Sequence[str], "str | None"], str]


class OverlayError(Exception):
    """A command failed (the message says which and what it said)."""


def run_command(argv: Sequence[str], stdin: str | None = None) -> str:
    """The default runner: *argv* as a subprocess."""
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              timeout=30)
    except FileNotFoundError as exc:
        raise OverlayError(f"{argv[0]} is not installed (apt install iproute2 nftables)") \
            from exc
    if done.returncode != 0:
        raise OverlayError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def vni_for(zone: str, configured: Any = None) -> int:
    """The zone's VNI: *configured* (``vxlan_vni``; any zone may use the same one, as flood
    entries name only the zone's own nodes) when set, else derived from the zone's name
    (CRC-32 folded into 1..2^24-1), the same on every node without any setting."""
    if configured not in (None, "", 0):
        vni = int(configured)
        if not 1 <= vni <= MAX_VNI:
            raise ValueError(f"vxlan_vni must be between 1 and {MAX_VNI}, not {configured}")
        return vni
    return zlib.crc32(zone.encode()) % MAX_VNI + 1


def device_name(vni: int) -> str:
    """The VXLAN device of *vni* (at most 10 characters)."""
    return f"{DEVICE_PREFIX}{vni:06x}"


def validate_address(text: str, what: str = "node_address") -> str:
    """*text* as a unicast IPv4 address a VXLAN can use (ValueError saying why not)."""
    try:
        address = ipaddress.IPv4Address(str(text).strip())
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an IPv4 address") from None
    if address.is_unspecified or address.is_multicast or address.is_link_local \
            or str(address) == "255.255.255.255":
        raise ValueError(f"{what}: {address} cannot carry the instance network between nodes")
    return str(address)


def source_address(peers: Iterable[str]) -> str | None:
    """The address this host sends from towards the first of *peers* (the kernel's route;
    nothing is sent), or None without peers."""
    for peer in peers:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((peer, VXLAN_PORT))
                return probe.getsockname()[0]
            except OSError:
                continue
    return None


def zone_peers(node_id: str) -> list[dict[str, str]]:
    """The other nodes of *node_id*'s zone that have an address: ``[{"node_id",
    "address"}]`` by node id ([] for an unknown node). Disabled, draining and unreachable
    nodes stay peers: their instances still run and may come back."""
    node = db.session.get(NodeRow, node_id)
    if node is None:
        return []
    rows = db.session.execute(
        db.select(NodeRow.id, NodeRow.address)
        .where(NodeRow.zone == node.zone, NodeRow.id != node_id, NodeRow.address != "")
        .order_by(NodeRow.id)).all()
    return [{"node_id": row.id, "address": row.address} for row in rows]


def overlay_table(device: str, gateway: str, metadata_ip: str | None,
                  bridge_mac: str | None) -> str:
    """The nft script that (re)creates ``bridge eucalite_overlay``: the drops on the VXLAN
    port *device* that keep the node's gateway, DHCP and metadata service its own. The last
    rule's comment carries the script's digest (how :meth:`Overlay.ensure` tells it is
    installed unchanged)."""
    local = ", ".join(filter(None, [gateway, metadata_ip]))
    quoted = f'"{device}"'
    ingress = [f"iifname {quoted} arp daddr ip {{ {local} }} drop",
               f"iifname {quoted} arp saddr ip {{ {local} }} drop",
               f"iifname {quoted} udp dport {{ 67, 68 }} drop",
               f"iifname {quoted} ip saddr {{ {local} }} drop"]
    egress = [f"oifname {quoted} arp daddr ip {{ {local} }} drop",
              f"oifname {quoted} arp saddr ip {{ {local} }} drop",
              f"oifname {quoted} udp dport {{ 67, 68 }} drop",
              f"oifname {quoted} ip saddr {{ {local} }} drop"]
    if bridge_mac:
        ingress.append(f"iifname {quoted} ether daddr {bridge_mac.lower()} drop")
        egress.append(f"oifname {quoted} ether saddr {bridge_mac.lower()} drop")
    digest = hashlib.sha256("\n".join(ingress + egress).encode()).hexdigest()[:16]
    egress[-1] += f' comment "eucalite {digest}"'
    body = "\n".join([
        f"table bridge {TABLE} {{",
        "  chain prerouting {",
        "    type filter hook prerouting priority -200; policy accept;",
        *(f"    {rule}" for rule in ingress),
        "  }",
        "  chain postrouting {",
        "    type filter hook postrouting priority 200; policy accept;",
        *(f"    {rule}" for rule in egress),
        "  }",
        "}"])
    # declare, delete, create: one transaction that works whether the table exists or not
    return f"table bridge {TABLE}\ndelete table bridge {TABLE}\n{body}\n"


def script_digest(script: str) -> str:
    """The digest :func:`overlay_table` put in *script*'s comment."""
    return script.rsplit('comment "eucalite ', 1)[1].split('"', 1)[0]


class Overlay:
    """This node's end of its zone's VXLAN segment (see the module docstring): *bridge* is
    the instance bridge (which must exist), *gateway* and *metadata_ip* its addresses."""

    def __init__(self, bridge: str, vni: int, gateway: str, metadata_ip: str | None = None,
                 prefix: Sequence[str] = (), runner: Runner = run_command):
        self.bridge = bridge
        self.vni = vni
        self.device = device_name(vni)
        self.gateway = gateway
        self.metadata_ip = metadata_ip or None
        self.prefix = tuple(prefix)
        self.runner = runner

    @classmethod
    def from_config(cls, config: Mapping[str, Any], vni: int, prefix: Sequence[str] = (),
                    runner: Runner = run_command) -> "Overlay":
        """The overlay of *vni* on *config*'s bridge, with its subnet's gateway and the
        metadata address."""
        net = ipaddress.ip_network(config["instance_subnet"], strict=True)
        return cls(config["instance_bridge"], vni, str(net.network_address + 1),
                   config.get("metadata_address") or None, prefix, runner)

    def _run(self, *argv: str, stdin: str | None = None) -> str:
        return self.runner([*self.prefix, *argv], stdin)

    # -- what the kernel holds -------------------------------------------------------------

    def _links(self) -> list[dict]:
        return json.loads(self._run("ip", "-d", "-j", "link", "show", "type", "vxlan") or "[]")

    def _bridge_mac(self) -> str | None:
        links = json.loads(self._run("ip", "-j", "link", "show", "dev", self.bridge) or "[]")
        return links[0].get("address") if links else None

    def flood_peers(self) -> set[str]:
        """The peers the device floods to now (its all-zero fdb entries)."""
        entries = json.loads(self._run("bridge", "-j", "fdb", "show", "dev", self.device)
                             or "[]")
        return {entry["dst"] for entry in entries
                if entry.get("mac") == FLOOD_MAC and entry.get("dst")}

    def _table_digest(self) -> str | None:
        try:
            listing = self._run("nft", "list", "table", "bridge", TABLE)
        except OverlayError:
            return None
        marker = 'comment "eucalite '
        return listing.rsplit(marker, 1)[1].split('"', 1)[0] if marker in listing else None

    # -- making it so ----------------------------------------------------------------------

    def ensure(self, local_address: str, peers: Iterable[str]) -> bool:
        """Afterwards the device exists with this VNI, *local_address* (validated) and port
        4789, enslaved to the bridge and up; it floods to exactly *peers* (their addresses;
        *local_address* among them is ignored); the drop table is installed. Devices of
        another VNI left on the bridge are deleted. Idempotent: reads the kernel's state and
        changes only what differs. Returns whether anything changed. OverlayError when a
        command fails (the bridge must exist)."""
        local = validate_address(local_address)
        wanted = {validate_address(peer, "peer address") for peer in peers} - {local}
        changed = self._ensure_device(local)
        present = self.flood_peers()
        for peer in sorted(wanted - present):
            self._run("bridge", "fdb", "append", FLOOD_MAC, "dev", self.device, "dst", peer)
        for peer in sorted(present - wanted):
            self._run("bridge", "fdb", "del", FLOOD_MAC, "dev", self.device, "dst", peer)
        changed |= wanted != present
        script = overlay_table(self.device, self.gateway, self.metadata_ip, self._bridge_mac())
        if self._table_digest() != script_digest(script):
            self._run("nft", "-f", "-", stdin=script)
            changed = True
        if changed:
            log.info("overlay %s (VNI %d) on %s: local %s, peers %s", self.device, self.vni,
                     self.bridge, local, ", ".join(sorted(wanted)) or "none")
        return changed

    def _ensure_device(self, local: str) -> bool:
        """The device as wanted (recreated when its VNI, local address or port differ);
        other eucalite VXLAN devices on this bridge deleted. Whether anything changed."""
        changed = False
        current = None
        for link in self._links():
            name = link.get("ifname", "")
            data = link.get("linkinfo", {}).get("info_data", {})
            if name == self.device:
                if (data.get("id"), data.get("local"), data.get("port")) == \
                        (self.vni, local, VXLAN_PORT):
                    current = link
                    continue
            elif not (name.startswith(DEVICE_PREFIX) and link.get("master") == self.bridge):
                continue
            self._run("ip", "link", "del", "dev", name)
            changed = True
        if current is None:
            self._run("ip", "link", "add", self.device, "type", "vxlan", "id", str(self.vni),
                      "local", local, "dstport", str(VXLAN_PORT))
            changed = True
        if current is None or current.get("master") != self.bridge \
                or "UP" not in current.get("flags", []):
            self._run("ip", "link", "set", "dev", self.device, "master", self.bridge, "up")
            changed = True
        return changed

    def present(self) -> bool:
        """Whether this node's VXLAN device exists."""
        return any(link.get("ifname") == self.device for link in self._links())

    def remove(self) -> None:
        """Delete the device (its fdb entries go with it) and the drop table. Idempotent."""
        if self.present():
            self._run("ip", "link", "del", "dev", self.device)
        try:
            self._run("nft", "delete", "table", "bridge", TABLE)
        except OverlayError as error:
            if "No such file" not in str(error):
                raise


def local_address(config: Mapping[str, Any], recorded: str, peers: Iterable[str]) -> str | None:
    """The address this host's node uses for the overlay: ``node_address`` when set, else
    the one its kernel sends from towards its *peers* (so a changed host address follows),
    else the one recorded for it (ValueError for a ``node_address`` that cannot be used)."""
    if config.get("node_address"):
        return validate_address(config["node_address"])
    return source_address(peers) or recorded or None


def sync_local(config: Mapping[str, Any], node_id: str, prefix: Sequence[str] = (),
               runner: Runner = run_command) -> bool:
    """The controller's own node (*node_id*) joins its zone's overlay from the node rows
    (needs an app context): the device floods to every other node of the zone that has an
    address, and this node's address (:func:`local_address`) is recorded on its row so the
    others flood to it. Returns whether the kernel changed (see :func:`follow`)."""
    row = db.session.get(NodeRow, node_id)
    if row is None:
        return False
    peers = [peer["address"] for peer in zone_peers(node_id)]
    address = local_address(config, row.address, peers)
    if address and address != row.address:
        _record_address(node_id, address)
    return follow(config, vni_for(row.zone, config.get("vxlan_vni")), address, peers,
                  prefix, runner)


def follow(config: Mapping[str, Any], vni: int, address: str | None, peers: Iterable[str],
           prefix: Sequence[str] = (), runner: Runner = run_command) -> bool:
    """Make this node's overlay (*config*'s bridge, *vni*) flood to exactly *peers* from
    *address*: :meth:`Overlay.ensure`; without peers, a device left from earlier is removed
    (a single-host cloud has none). A joined node calls it with its registration and
    heartbeat answers (their ``vni``, ``address`` and ``peers``). Returns whether the
    kernel changed; OverlayError or ValueError when it cannot be done."""
    node = Overlay.from_config(config, vni, prefix, runner)
    peers = list(peers)
    if not peers:
        if node.present():
            node.remove()
            return True
        return False
    if not address:
        raise OverlayError("this node has no address its peers can reach: set node_address")
    return node.ensure(address, peers)


def answer_fields(node_id: str, zone: str, address: str,
                  config: Mapping[str, Any]) -> dict[str, Any]:
    """What a joined node's registration and heartbeat answers carry for its overlay: its
    zone's ``vni``, the ``address`` recorded for it and its ``peers`` (:func:`zone_peers`)."""
    return {"vni": vni_for(zone, config.get("vxlan_vni")), "address": address,
            "peers": zone_peers(node_id)}


def _record_address(node_id: str, address: str) -> None:
    """Record *address* as *node_id*'s (what its peers flood to)."""
    with writing():
        row = db.session.get(NodeRow, node_id)
        if row is not None:
            row.address = address


#: The last problem logged by :func:`_log_problem` (a node retries every pass or heartbeat:
#: the same problem is logged once).
_last_problem: list[str | None] = [None]


def _log_problem(problem: str | None) -> None:
    if problem and problem != _last_problem[0]:
        log.warning("the instance network cannot span this zone's nodes: %s", problem)
    elif problem is None and _last_problem[0]:
        log.info("the instance network spans this zone's nodes again")
    _last_problem[0] = problem


def follow_answer(config: Mapping[str, Any], answer: Mapping[str, Any],
                  prefix: Sequence[str] = (), runner: Runner = run_command) -> bool:
    """A joined node's agent, with each registration or heartbeat answer: :func:`follow`
    its ``vni``, ``address`` and ``peers`` (an answer without them, from an older
    controller, changes nothing). A problem is logged (once), never raised: the heartbeat
    goes on. Returns whether the kernel changed."""
    if "vni" not in answer:
        return False
    try:
        changed = follow(config, int(answer["vni"]), answer.get("address"),
                         [peer["address"] for peer in answer.get("peers", [])], prefix,
                         runner)
    except (OverlayError, ValueError, KeyError, TypeError) as error:
        _log_problem(str(error))
        return False
    _log_problem(None)
    return changed


def sync_cluster(cluster) -> None:
    """The controller's own node in the reconciler's passes (start-up's included):
    :func:`sync_local` when node duty runs here with real guests (the fake hypervisor has
    no bridge), a problem logged once (needs an app context)."""
    node = cluster.local_node
    if node is None or not node.uses_host_files:
        return
    try:
        sync_local(cluster.config, node.node_id)
    except (OverlayError, ValueError) as error:
        _log_problem(str(error))
        return
    _log_problem(None)
