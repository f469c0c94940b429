"""The EDGE ruleset applied for real by nft, inside throwaway network namespaces (nothing on
the host is touched): a "node" namespace with the instance bridge and a public interface,
two "guests" (namespaces on veth pairs whose node ends carry the instances' tap names) and
a "lab" client on the public side. Checks idempotence, diffs, repair, that no foreign
table is flushed, and real packets: ingress rules, peer groups, anti-spoofing, DNAT/SNAT
and masquerade. Needs root and nft; run under the real-VM lock with the other host tests."""
from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import threading

import pytest

from eucalite.cluster.edge import nft
from eucalite.cluster.edge.firewall import NftFirewall
from eucalite.cluster.edge.plan import Group, NetworkPlan, Port, Rule, tap_name
from eucalite.cluster.edge.ruleset import Host
from eucalite.cluster.virt.network_xml import mac_for
from edgeutil import in_namespace

NODE, GUEST_A, GUEST_B, LAB = "eunft-node", "eunft-a", "eunft-b", "eunft-lab"
ALL = (NODE, GUEST_A, GUEST_B, LAB)
A_IP, B_IP, PUBLIC_A, LAB_IP, NODE_PUBLIC = (
    "10.211.0.2", "10.211.0.3", "198.51.100.10", "198.51.100.2", "198.51.100.1")
HOST = Host(bridge="eucabr0", subnet="10.211.0.0/24", gateway="10.211.0.1",
            public_interface="eulab0")
PORT = 8080

pytestmark = pytest.mark.skipif(not shutil.which("nft") or not shutil.which("ip"),
                                reason="needs nft (apt install nftables) and iproute2")


def sh(namespace: str | None, *argv: str) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    done = subprocess.run([*prefix, *argv], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} in {namespace}: {done.stderr.strip()}")
    return done.stdout


def remove_namespaces() -> None:
    for name in ALL:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def make_guest(namespace: str, ip: str) -> None:
    sh(None, "ip", "netns", "add", namespace)
    sh(NODE, "ip", "link", "add", tap_name(ip), "type", "veth", "peer", "name", "eth0",
       "netns", namespace)
    sh(NODE, "ip", "link", "set", tap_name(ip), "master", HOST.bridge, "up")
    sh(namespace, "ip", "link", "set", "eth0", "address", mac_for(ip))
    sh(namespace, "ip", "address", "add", f"{ip}/24", "dev", "eth0")
    sh(namespace, "ip", "link", "set", "eth0", "up")
    sh(namespace, "ip", "link", "set", "lo", "up")
    sh(namespace, "ip", "route", "add", "default", "via", HOST.gateway)


@pytest.fixture(scope="module")
def lab():
    """The namespaces (made fresh, removed afterwards, also what a crashed run left)."""
    remove_namespaces()
    try:
        sh(None, "ip", "netns", "add", NODE)
    except RuntimeError as error:
        pytest.skip(f"cannot make network namespaces here: {error}")
    try:
        sh(NODE, "ip", "link", "set", "lo", "up")
        sh(NODE, "ip", "link", "add", HOST.bridge, "type", "bridge")
        sh(NODE, "ip", "address", "add", f"{HOST.gateway}/24", "dev", HOST.bridge)
        sh(NODE, "ip", "link", "set", HOST.bridge, "up")
        sh(None, "ip", "netns", "add", LAB)
        sh(NODE, "ip", "link", "add", "eulab0", "type", "veth", "peer", "name", "eth0",
           "netns", LAB)
        sh(NODE, "ip", "address", "add", f"{NODE_PUBLIC}/24", "dev", "eulab0")
        sh(NODE, "ip", "link", "set", "eulab0", "up")
        sh(LAB, "ip", "address", "add", f"{LAB_IP}/24", "dev", "eth0")
        sh(LAB, "ip", "link", "set", "eth0", "up")
        sh(LAB, "ip", "link", "set", "lo", "up")
        make_guest(GUEST_A, A_IP)
        make_guest(GUEST_B, B_IP)
        yield
    finally:
        remove_namespaces()


@pytest.fixture
def firewall(lab, tmp_path):
    """The node's data plane inside the node namespace, prepared, with no tables yet."""
    wall = NftFirewall(HOST, tmp_path, prefix=("ip", "netns", "exec", NODE))
    assert wall.problem() is None
    wall.prepare()
    yield wall
    wall.remove()


def port(ip: str, groups: tuple[str, ...], public: str | None = None) -> Port:
    return Port(f"i-{ip.rsplit('.', 1)[1]}", tap_name(ip), mac_for(ip), ip, public, groups)


def plan(web_ingress: tuple[Rule, ...] = (), db_ingress: tuple[Rule, ...] = ()) -> NetworkPlan:
    """Guest A in sg-web with a public IP, guest B in sg-db without; both may send out."""
    out = (Rule("-1", cidr="0.0.0.0/0"),)
    return NetworkPlan(
        ports=(port(A_IP, ("sg-web",), PUBLIC_A), port(B_IP, ("sg-db",))),
        groups={"sg-web": Group("sg-web", web_ingress, out),
                "sg-db": Group("sg-db", db_ingress, out)},
        members={"sg-web": (A_IP,), "sg-db": (B_IP,)})


FROM_LAB = Rule("6", PORT, PORT, cidr="198.51.100.0/24")


def listing(namespace: str = NODE) -> dict:
    """eucalite's tables as nft lists them (text, no handles)."""
    return {family: sh(namespace, "nft", "list", "table", family, "eucalite")
            for family in ("bridge", "ip")}


# --- the ruleset itself --------------------------------------------------------------------

def test_apply_is_idempotent_and_never_touches_a_foreign_table(firewall):
    sh(NODE, "nft", "add table inet someone; add chain inet someone c { type filter hook "
       "forward priority 10; policy accept; }; add rule inet someone c counter accept")
    foreign = sh(NODE, "nft", "-s", "list", "table", "inet", "someone")
    first = firewall.apply(plan((FROM_LAB,)))
    assert first.chains and not first.removed_chains
    installed = listing()
    again = firewall.apply(plan((FROM_LAB,)))
    assert again.empty                      # nothing changed: no nft transaction at all
    assert listing() == installed
    firewall.remove()
    assert sh(NODE, "nft", "-s", "list", "table", "inet", "someone") == foreign
    assert "eucalite" not in sh(NODE, "nft", "list", "tables")
    sh(NODE, "nft", "delete", "table", "inet", "someone")


def test_one_changed_rule_changes_one_chain_and_a_stale_instance_leaves_no_trace(firewall):
    firewall.apply(plan((FROM_LAB,)))
    changed = firewall.apply(plan((Rule("6", 22, 22, cidr="198.51.100.0/24"),)))
    assert changed.chains == ["ip eucalite in-eu0ad30002"]
    assert changed.elements_added == changed.elements_removed == 0
    # B goes: after a fresh apply of the smaller plan elsewhere, the two listings agree
    smaller = NetworkPlan(ports=plan().ports[:1], groups={"sg-web": plan().groups["sg-web"]},
                          members={"sg-web": (A_IP,)})
    gone = firewall.apply(smaller)
    assert "ip eucalite in-eu0ad30003" in gone.removed_chains
    after_diffs = listing()
    firewall.remove()
    firewall.apply(smaller)
    assert listing() == after_diffs
    assert tap_name(B_IP) not in json.dumps(after_diffs) and B_IP not in json.dumps(after_diffs)


def test_a_sync_after_a_change_runs_one_nft_transaction_and_reads_nothing_back(
        firewall, monkeypatch):
    firewall.apply(plan((FROM_LAB,)))
    calls = []
    run = nft.run_nft

    def recording(prefix, args, stdin=None):
        calls.append(list(args))
        return run(prefix, args, stdin)
    monkeypatch.setattr(nft, "run_nft", recording)
    changed = firewall.apply(plan((Rule("6", 22, 22, cidr="198.51.100.0/24"),)))
    assert calls == [["-f", "-"]] and changed.chains == ["ip eucalite in-eu0ad30002"]
    assert firewall.apply(plan((Rule("6", 22, 22, cidr="198.51.100.0/24"),))).empty
    assert calls == [["-f", "-"]]                        # unchanged: no nft at all
    intended = listing()
    firewall.remove()
    firewall.apply(plan((Rule("6", 22, 22, cidr="198.51.100.0/24"),)))
    assert listing() == intended                         # the diffs made what a fresh apply makes


def test_a_lost_rule_or_table_is_repaired_by_the_next_reread(firewall):
    firewall.apply(plan((FROM_LAB,)))
    intended = listing()
    listed = json.loads(sh(NODE, "nft", "-j", "-a", "list", "chain", "ip", "eucalite",
                           "forward"))
    handle = next(item["rule"]["handle"] for item in listed["nftables"] if "rule" in item)
    sh(NODE, "nft", "delete", "rule", "ip", "eucalite", "forward", "handle", str(handle))
    sh(NODE, "nft", "delete", "element", "ip", "eucalite", "pub2priv", f"{{ {PUBLIC_A} }}")
    repaired = firewall.apply(plan((FROM_LAB,)), reread=True)      # a reconcile pass
    assert repaired.chains == ["ip eucalite forward"] and repaired.elements_added == 1
    assert listing() == intended
    sh(NODE, "nft", "delete", "table", "bridge", "eucalite")
    firewall.apply(plan((FROM_LAB,)), reread=True)
    assert listing() == intended


def test_a_change_nft_refuses_after_a_change_by_hand_is_worked_out_again_from_the_kernel(
        firewall):
    firewall.apply(plan((FROM_LAB,)))
    # by hand: A's public IP leaves the NAT maps, so deleting it (what the firewall
    # remembers to do) makes nft refuse the whole transaction
    sh(NODE, "nft", "delete", "element", "ip", "eucalite", "pub2priv", f"{{ {PUBLIC_A} }}")
    private_only = NetworkPlan(ports=(port(A_IP, ("sg-web",)), plan().ports[1]),
                               groups=plan().groups, members=plan().members)
    firewall.apply(private_only)
    after = listing()
    firewall.remove()
    firewall.apply(private_only)
    assert listing() == after and PUBLIC_A not in after["ip"]


def test_public_addresses_follow_the_plan_on_the_public_interface(firewall):
    def addresses():
        out = json.loads(sh(NODE, "ip", "-j", "address", "show", "dev", "eulab0"))
        return sorted(a["local"] for a in out[0]["addr_info"] if a["family"] == "inet")
    firewall.apply(plan())
    assert addresses() == sorted([NODE_PUBLIC, PUBLIC_A])
    firewall.apply(NetworkPlan())
    assert addresses() == [NODE_PUBLIC]        # the node's own address is never removed
    forwarding = {name: sh(NODE, "sysctl", "-n", f"net/ipv4/conf/{name}/forwarding").strip()
                  for name in ("eucabr0", "eulab0", "all")}
    assert forwarding == {"eucabr0": "1", "eulab0": "1", "all": "0"}


# --- packets -------------------------------------------------------------------------------

class Server:
    """A TCP listener inside a namespace that records who connected."""

    def __init__(self, namespace: str, port: int = PORT):
        def make():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(16)
            return sock
        self.sock = in_namespace(make, namespace)
        self.peers: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            conn.sendall(b"ok")
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)       # wakes the blocked accept()
        self.sock.close()


def dial(namespace: str, address: str, source: str | None = None, port: int = PORT) -> bool:
    """Whether a new TCP connection from *namespace* to *address* gets the server's reply
    (a dropped SYN times out after 1.5 s)."""
    def make():
        sock = socket.socket()
        if source:
            sock.bind((source, 0))
        return sock
    sock = in_namespace(make, namespace)
    sock.settimeout(1.5)
    try:
        sock.connect((address, port))
        return sock.recv(2) == b"ok"
    except OSError:
        return False
    finally:
        sock.close()


@pytest.fixture(scope="module")
def servers(lab):
    made = [Server(GUEST_A), Server(GUEST_B), Server(LAB)]
    yield {GUEST_A: made[0], GUEST_B: made[1], LAB: made[2]}
    for server in made:
        server.close()


def test_the_lab_reaches_a_guest_by_its_public_ip_only_while_a_rule_allows_it(
        firewall, servers):
    firewall.apply(plan())
    assert not dial(LAB, PUBLIC_A)                       # ingress: default deny
    firewall.apply(plan((FROM_LAB,)))
    assert dial(LAB, PUBLIC_A)
    assert servers[GUEST_A].peers[-1] == LAB_IP          # DNAT, the client's own source
    firewall.apply(plan((Rule("6", 22, 22, cidr="198.51.100.0/24"),)))
    assert not dial(LAB, PUBLIC_A)                       # revoked: new connections cut
    assert not dial(LAB, B_IP)                           # no route to private addresses


def test_guests_in_different_groups_talk_only_when_a_group_rule_says_so(firewall, servers):
    firewall.apply(plan())
    assert not dial(GUEST_A, B_IP)
    firewall.apply(plan(db_ingress=(Rule("6", PORT, PORT, group="sg-web"),)))
    assert dial(GUEST_A, B_IP)
    assert servers[GUEST_B].peers[-1] == A_IP
    assert not dial(GUEST_B, A_IP)                       # one way only


def test_a_guest_forging_its_source_ip_is_dropped(firewall, servers):
    firewall.apply(plan(db_ingress=(Rule("6", PORT, PORT, cidr="10.211.0.0/24"),)))
    sh(GUEST_A, "ip", "address", "add", "10.211.0.9/24", "dev", "eth0")
    try:
        assert dial(GUEST_A, B_IP)
        assert not dial(GUEST_A, B_IP, source="10.211.0.9")
        assert not dial(GUEST_A, LAB_IP, source="10.211.0.9")
    finally:
        sh(GUEST_A, "ip", "address", "del", "10.211.0.9/24", "dev", "eth0")


def test_guests_reach_the_lab_through_nat(firewall, servers):
    firewall.apply(plan())
    assert dial(GUEST_A, LAB_IP)
    assert servers[LAB].peers[-1] == PUBLIC_A            # SNAT to its public IP
    assert dial(GUEST_B, LAB_IP)
    assert servers[LAB].peers[-1] == NODE_PUBLIC         # masqueraded behind the node
    closed = NetworkPlan(ports=plan().ports, groups={
        "sg-web": Group("sg-web"), "sg-db": plan().groups["sg-db"]}, members=plan().members)
    firewall.apply(closed)
    assert not dial(GUEST_A, LAB_IP)                     # no egress rule: nothing out


def test_timing_of_a_large_ruleset(firewall):
    from eucalite.cluster.edge.measure import time_apply
    timings = time_apply(firewall, instances=100, rules_per_instance=10)
    assert timings["rules"] == 1000
    assert timings["changed_chains"] == 1
    assert timings["noop_commands"] == timings["reconcile_commands"] == 0


def test_a_guest_reaches_another_by_its_public_ip_on_the_same_bridge(firewall, servers):
    firewall.apply(plan((Rule("6", PORT, PORT, cidr="10.211.0.0/24"),)))
    assert dial(GUEST_B, PUBLIC_A)                       # DNAT, reply un-NATed on the bridge
    assert servers[GUEST_A].peers[-1] == B_IP


# --- tracked flows follow the NAT ----------------------------------------------------------

UDP_PORT = 9090
FROM_LAB_UDP = Rule("17", UDP_PORT, UDP_PORT, cidr="198.51.100.0/24")


def udp_socket(namespace: str, port: int) -> socket.socket:
    """A UDP socket in *namespace* bound to *port* on every address."""
    def make():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        return sock
    return in_namespace(make, namespace)


class UdpServer:
    """A UDP listener in a namespace that answers each datagram with *name* and the
    source address it saw (``b"a 198.51.100.2"``)."""

    def __init__(self, namespace: str, name: str):
        self.sock = udp_socket(namespace, UDP_PORT)
        self.name = name
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                _data, peer = self.sock.recvfrom(64)
                self.sock.sendto(f"{self.name} {peer[0]}".encode(), peer)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


class Flow:
    """One UDP flow from *namespace*: always the same source port, so every datagram
    belongs to the same tracked connection as long as the kernel keeps it."""

    def __init__(self, namespace: str, source_port: int):
        self.sock = udp_socket(namespace, source_port)
        self.sock.settimeout(1.5)

    def ask(self, address: str) -> str | None:
        """The answer to one datagram to *address* (``"a 198.51.100.2"``), or None."""
        self.sock.sendto(b"?", (address, UDP_PORT))
        try:
            return self.sock.recv(64).decode()
        except OSError:
            return None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def udp(lab):
    made = [UdpServer(GUEST_A, "a"), UdpServer(GUEST_B, "b"), UdpServer(LAB, "lab")]
    yield
    for server in made:
        server.close()


_source_ports = itertools.count(40000)


@pytest.fixture
def flow():
    """Makes flows, each from a source port no other flow of the run used."""
    made = []

    def make(namespace: str) -> Flow:
        made.append(Flow(namespace, next(_source_ports)))
        return made[-1]
    yield make
    for one in made:
        one.close()


def flow_ids(source: str) -> set[str]:
    """The ids of the node's tracked UDP flows from *source* (a flow deleted and tracked
    again gets a new id)."""
    out = sh(NODE, "conntrack", "-L", "-p", "udp", "--orig-src", source, "-o", "id")
    return {part for part in out.split() if part.startswith("id=")}


def nat_plan(a_public: str | None, b_public: str | None,
             db_ingress: tuple[Rule, ...] = (FROM_LAB_UDP,)) -> NetworkPlan:
    """A and B both answer UDP from the lab; who holds which public IP varies."""
    out = (Rule("-1", cidr="0.0.0.0/0"),)
    return NetworkPlan(
        ports=(port(A_IP, ("sg-web",), a_public), port(B_IP, ("sg-db",), b_public)),
        groups={"sg-web": Group("sg-web", (FROM_LAB_UDP,), out),
                "sg-db": Group("sg-db", db_ingress, out)},
        members={"sg-web": (A_IP,), "sg-db": (B_IP,)})


def test_a_flow_to_a_public_ip_follows_it_to_the_instance_it_moves_to(firewall, udp, flow):
    firewall.apply(nat_plan(PUBLIC_A, None))
    lab = flow(LAB)
    assert lab.ask(PUBLIC_A) == f"a {LAB_IP}"
    firewall.apply(nat_plan(None, PUBLIC_A))           # AssociateAddress moved it to B
    assert lab.ask(PUBLIC_A) == f"b {LAB_IP}"           # the same flow, at once
    firewall.apply(nat_plan(None, None))               # released
    assert lab.ask(PUBLIC_A) is None


def test_an_instance_flow_out_leaves_from_its_public_ip_of_the_moment(firewall, udp, flow):
    firewall.apply(nat_plan(PUBLIC_A, None))
    guest = flow(GUEST_A)
    assert guest.ask(LAB_IP) == f"lab {PUBLIC_A}"
    firewall.apply(nat_plan(None, None))               # its address taken away
    assert guest.ask(LAB_IP) == f"lab {NODE_PUBLIC}"     # masqueraded now
    firewall.apply(nat_plan("198.51.100.11", None))     # a new address
    assert guest.ask(LAB_IP) == "lab 198.51.100.11"
    # B's flow, whose NAT did not change, is kept (the table is not flushed wholesale)
    assert flow(GUEST_B).ask(LAB_IP) == f"lab {NODE_PUBLIC}"
    kept = flow_ids(B_IP)
    firewall.apply(nat_plan("198.51.100.12", None))
    assert kept and flow_ids(B_IP) == kept
    assert guest.ask(LAB_IP) == "lab 198.51.100.12"


def test_a_flow_to_an_ended_instance_does_not_reach_the_next_one_with_its_address(
        firewall, udp, flow):
    from_web = (Rule("17", UDP_PORT, UDP_PORT, group="sg-web"),)
    firewall.apply(nat_plan(None, None, db_ingress=from_web))
    guest = flow(GUEST_A)
    assert guest.ask(B_IP) == f"b {A_IP}"
    b_gone = NetworkPlan(ports=nat_plan(None, None).ports[:1],
                         groups={"sg-web": nat_plan(None, None).groups["sg-web"]},
                         members={"sg-web": (A_IP,)})
    firewall.apply(b_gone)
    firewall.apply(nat_plan(None, None, db_ingress=()))  # a new instance, B's address
    assert guest.ask(B_IP) is None                     # its rules admit nothing from A
