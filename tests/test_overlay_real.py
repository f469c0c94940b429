"""The VXLAN overlay on a real kernel: two "nodes" (network namespaces joined by a veth
pair, their lab network), each with an instance bridge holding the same gateway and
metadata addresses, joined by :meth:`Overlay.ensure`; a veth "guest" namespace on each
bridge. Guests on the two nodes reach each other by private IP (a full-size packet too,
fragmented outside), while a guest never reaches the other node's gateway or its DHCP
port. Needs root (run under ``flock /tmp/realvm.lock``)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from eucalite.cluster.overlay import Overlay, device_name, follow_answer

from edgeutil import in_namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"),
                                reason="network namespaces and nftables need root and nft")

NODES = {"a": "192.0.2.1", "b": "192.0.2.2"}
GUESTS = {"a": "10.211.0.10", "b": "10.211.0.11"}
GATEWAY, METADATA = "10.211.0.1", "169.254.169.254"
VNI = 4242
CONFIG = {"instance_bridge": "eucabr0", "instance_subnet": "10.211.0.0/24",
          "metadata_address": METADATA}


def node_ns(name: str) -> str:
    return f"euovn{name}"


def guest_ns(name: str) -> str:
    return f"euovg{name}"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


def in_ns(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


def teardown() -> None:
    for name in NODES:
        for ns in (node_ns(name), guest_ns(name)):
            sh("ip", "netns", "del", ns, check=False)


def overlay(name: str) -> Overlay:
    return Overlay("eucabr0", VNI, GATEWAY, METADATA,
                   prefix=("ip", "netns", "exec", node_ns(name)))


@pytest.fixture(scope="module")
def lab():
    teardown()
    for name in NODES:
        sh("ip", "netns", "add", node_ns(name))
        sh("ip", "netns", "add", guest_ns(name))
    # the lab network between the nodes (MTU 1500: full-size guest frames are fragmented)
    sh("ip", "link", "add", "euovla", "netns", node_ns("a"), "type", "veth", "peer", "name",
       "euovlb", "netns", node_ns("b"))
    for name in NODES:
        ns, lab_if = node_ns(name), f"euovl{name}"
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "addr", "add", f"{NODES[name]}/24", "dev", lab_if)
        in_ns(ns, "ip", "link", "set", lab_if, "up")
        # the node's instance bridge, with the gateway and metadata addresses of every node
        in_ns(ns, "ip", "link", "add", "eucabr0", "type", "bridge")
        in_ns(ns, "ip", "addr", "add", f"{GATEWAY}/24", "dev", "eucabr0")
        in_ns(ns, "ip", "addr", "add", f"{METADATA}/32", "dev", "eucabr0")
        in_ns(ns, "ip", "link", "set", "eucabr0", "up")
        # the guest: a veth whose host end is the guest's port on the bridge
        in_ns(ns, "ip", "link", "add", f"euovt{name}", "type", "veth", "peer", "name", "eth0",
              "netns", guest_ns(name))
        in_ns(ns, "ip", "link", "set", f"euovt{name}", "master", "eucabr0", "up")
        guest = guest_ns(name)
        in_ns(guest, "ip", "link", "set", "lo", "up")
        in_ns(guest, "ip", "addr", "add", f"{GUESTS[name]}/24", "dev", "eth0")
        in_ns(guest, "ip", "link", "set", "eth0", "up")
        in_ns(guest, "ip", "route", "add", "default", "via", GATEWAY)
    overlay("a").ensure(NODES["a"], [NODES["b"]])
    # node b as a joined node's agent does it, from its heartbeat answer
    assert follow_answer(CONFIG, {"vni": VNI, "address": NODES["b"],
                                  "peers": [{"node_id": "a", "address": NODES["a"]}]},
                         prefix=("ip", "netns", "exec", node_ns("b")))
    yield
    teardown()


def ping(name: str, address: str, size: int = 56, count: int = 1) -> bool:
    """Whether the guest on node *name* gets an echo reply from *address* (tries for up to
    ~5 s: the first ARP resolution crosses the overlay)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done = in_ns(guest_ns(name), "busybox", "ping", "-c", str(count), "-W", "1", "-s",
                     str(size), address, check=False)
        if done.returncode == 0:
            return True
    return False


def test_guests_on_two_nodes_reach_each_other_by_private_ip(lab):
    assert ping("a", GUESTS["b"])
    assert ping("b", GUESTS["a"])
    # a full-size frame (1500 bytes of IP) crosses a 1500-byte lab network
    assert ping("a", GUESTS["b"], size=1472)


def test_each_guest_reaches_only_its_own_nodes_gateway(lab):
    # node a's gateway address gone: only node b's could answer, through the overlay
    in_ns(node_ns("a"), "ip", "addr", "del", f"{GATEWAY}/24", "dev", "eucabr0")
    in_ns(guest_ns("a"), "ip", "neigh", "flush", "all")
    try:
        assert not ping("a", GATEWAY)
        assert ping("a", GUESTS["b"])     # the overlay itself still carries the subnet
    finally:
        in_ns(node_ns("a"), "ip", "addr", "add", f"{GATEWAY}/24", "dev", "eucabr0")
    assert ping("a", GATEWAY)


def _broadcasts_heard(port: int) -> bool:
    """Whether node b's host hears a UDP broadcast to *port* sent by node a's guest."""
    listener = in_namespace(lambda: _bound(port), node_ns("b"))
    sender = in_namespace(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
                          guest_ns("a"))
    try:
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            sender.sendto(b"hello", ("255.255.255.255", port))
            try:
                listener.recvfrom(100)
                return True
            except socket.timeout:
                continue
        return False
    finally:
        listener.close()
        sender.close()


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.3)
    return sock


def test_a_dhcp_request_does_not_cross_but_other_broadcasts_do(lab):
    assert _broadcasts_heard(6767)          # the overlay floods broadcasts
    assert not _broadcasts_heard(67)        # but the other node's DHCP server never hears


def test_ensure_is_idempotent_and_follows_a_leaving_peer(lab):
    assert not overlay("a").ensure(NODES["a"], [NODES["b"]])
    assert overlay("a").flood_peers() == {NODES["b"]}
    assert overlay("a").ensure(NODES["a"], [])
    assert overlay("a").flood_peers() == set()
    in_ns(guest_ns("a"), "ip", "neigh", "flush", "all")
    in_ns(node_ns("a"), "bridge", "fdb", "flush", "dev", device_name(VNI))
    assert not ping("a", GUESTS["b"])
    assert overlay("a").ensure(NODES["a"], [NODES["b"]])
    assert ping("a", GUESTS["b"])
