"""The nftables ruleset a :class:`~.plan.NetworkPlan` means on a node, as plain values.

:func:`render` turns a plan and the node's :class:`Host` settings into two :class:`Table`
records (``bridge eucalite`` and ``ip eucalite``): chains as lists of rule texts in nft's
syntax, sets and maps as their elements. No nft is run here (see :mod:`.nft` for that), so
the ruleset is a pure function of the plan, easy to compare and to test.

The design (each instance is a *port*: its tap, MAC and IPs):

* ``bridge eucalite`` (stateless; the bridge family has no conntrack): what a guest sends
  must carry its own MAC, its own IP (0.0.0.0 for DHCP) and be IPv4 or ARP; what reaches
  its port must be for its private IP or broadcast, so a forged destination MAC cannot
  slip past the IP-level filter. Verdict maps on the port name send each packet to its
  port's chain (``o-<tap>`` out of the guest, ``i-<tap>`` into it).
* ``ip eucalite`` (stateful; bridged IPv4 passes the ip hooks through br_netfilter):
  replies are accepted, invalid packets dropped; ``ip saddr vmap @egress`` jumps to the
  sender's egress chain (``eg-<tap>``: its groups' egress rules *return*, the rest is
  dropped), ``ip daddr vmap @ingress`` to the receiver's ingress chain (``in-<tap>``: its
  groups' ingress rules *accept*, the rest is dropped). Group peers are named sets of
  member IPs (``g-<group id>``), so a membership change touches only a set. DHCP, DNS to
  the gateway and the metadata service are always allowed.
* NAT in the same table: ``pub2priv`` / ``priv2pub`` maps (DNAT to the instance, SNAT of
  its traffic out), and masquerade of the rest of the subnet out of the public interface.

Every chain ends with a rule carrying ``comment "eucalite <digest>"`` (the digest of the
chain's rules), so the applier can tell an unchanged chain from a changed or damaged one.
"""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from .plan import ALL_PROTOCOLS, NetworkPlan, Port, Rule

TABLE = "eucalite"
BRIDGE_FAMILY = "bridge"
IP_FAMILY = "ip"
#: the comment's prefix on the last rule of every chain eucalite makes
DIGEST_MARK = "eucalite "

_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp"}


@dataclass(frozen=True)
class Host:
    """The node's side of the network: the instance *bridge*, its *subnet* (CIDR), the
    *gateway* (the bridge's address), the metadata service (*metadata_ip*, None: off;
    *metadata_port*) and the *public_interface* facing the lab (None: no outbound NAT)."""

    bridge: str
    subnet: str
    gateway: str
    metadata_ip: str | None = "169.254.169.254"
    metadata_port: int = 80
    public_interface: str | None = None


@dataclass
class Chain:
    """A chain: *hook* is its base-chain declaration (``type filter hook forward
    priority 0; policy accept;``) or None for a regular chain; *rules* in nft syntax."""

    rules: list[str]
    hook: str | None = None

    def digest(self) -> str:
        text = "\n".join([self.hook or "", *self.rules])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def sealed(self) -> list[str]:
        """The rules as installed: the last carries the chain's digest as its comment."""
        *head, last = self.rules
        return [*head, f'{last} comment "{DIGEST_MARK}{self.digest()}"']


@dataclass
class Table:
    """One nft table eucalite owns: *sets* (name -> (type, elements)), *maps* (name ->
    (key type, value type, {key: value})) and *chains* (name -> Chain)."""

    family: str
    name: str = TABLE
    sets: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    maps: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    chains: dict[str, Chain] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.family} {self.name}"

    def rule_count(self) -> int:
        return sum(len(chain.rules) for chain in self.chains.values())


def render(plan: NetworkPlan, host: Host) -> list[Table]:
    """The tables that enforce *plan* on a node with *host* settings (bridge table first)."""
    return [bridge_table(plan.ports), ip_table(plan, host)]


# -- bridge eucalite: anti-spoofing per port -----------------------------------------------

def bridge_table(ports: tuple[Port, ...]) -> Table:
    table = Table(BRIDGE_FAMILY)
    table.maps["out_ports"] = ("ifname", "verdict",
                               {p.tap: f"jump o-{p.tap}" for p in ports})
    table.maps["in_ports"] = ("ifname", "verdict",
                              {p.tap: f"jump i-{p.tap}" for p in ports})
    table.chains["prerouting"] = Chain(
        ["iifname vmap @out_ports"],
        "type filter hook prerouting priority -300; policy accept;")
    table.chains["postrouting"] = Chain(
        ["oifname vmap @in_ports"],
        "type filter hook postrouting priority 300; policy accept;")
    for port in ports:
        mac = port.mac.lower()
        table.chains[f"o-{port.tap}"] = Chain([
            f"ether saddr != {mac} drop",
            "ether type != { ip, arp } drop",
            f"arp saddr ether != {mac} drop",
            f"arp saddr ip != {port.private_ip} drop",
            f"ip saddr != {{ {port.private_ip}, 0.0.0.0 }} drop",
            "accept"])
        table.chains[f"i-{port.tap}"] = Chain([
            f"ip daddr != {{ {port.private_ip}, 255.255.255.255 }} drop",
            "accept"])
    return table


# -- ip eucalite: security groups and NAT ---------------------------------------------------

def ip_table(plan: NetworkPlan, host: Host) -> Table:
    table = Table(IP_FAMILY)
    ports = plan.ports
    peers = set(plan.members)
    for group in plan.groups.values():
        peers.update(rule.group for rule in (*group.ingress, *group.egress) if rule.group)
    for group_id in sorted(peers):
        table.sets[_set_name(group_id)] = ("ipv4_addr", frozenset(plan.members.get(group_id, ())))
    table.maps["egress"] = ("ipv4_addr", "verdict",
                            {p.private_ip: f"jump eg-{p.tap}" for p in ports})
    table.maps["ingress"] = ("ipv4_addr", "verdict",
                             {p.private_ip: f"jump in-{p.tap}" for p in ports})
    table.maps["pub2priv"] = ("ipv4_addr", "ipv4_addr",
                              {p.public_ip: p.private_ip for p in ports if p.public_ip})
    table.maps["priv2pub"] = ("ipv4_addr", "ipv4_addr",
                              {p.private_ip: p.public_ip for p in ports if p.public_ip})
    _filter_chains(table, host)
    _nat_chains(table, host)
    for port in ports:
        groups = [plan.groups[g] for g in port.groups if g in plan.groups]
        table.chains[f"eg-{port.tap}"] = Chain(
            [r for g in groups for rule in g.egress for r in _rule(rule, "daddr", "return")]
            + ["drop"])
        table.chains[f"in-{port.tap}"] = Chain(
            [r for g in groups for rule in g.ingress for r in _rule(rule, "saddr", "accept")]
            + ["drop"])
    return table


def _filter_chains(table: Table, host: Host) -> None:
    bridge = _q(host.bridge)
    table.chains["forward"] = Chain([
        "ct state established,related accept",
        "ct state invalid drop",
        "ip saddr vmap @egress",
        "ip daddr vmap @ingress"],
        "type filter hook forward priority 0; policy accept;")
    always = [f"iifname {bridge} udp dport 67 accept",
              f"iifname {bridge} ip daddr {host.gateway} udp dport 53 accept",
              f"iifname {bridge} ip daddr {host.gateway} tcp dport 53 accept"]
    if host.metadata_ip:
        always.append(f"iifname {bridge} ip daddr {host.metadata_ip} "
                      f"tcp dport {int(host.metadata_port)} accept")
    table.chains["input"] = Chain([
        "ct state established,related accept",
        *always,
        f"iifname {bridge} ip saddr vmap @egress"],
        "type filter hook input priority 0; policy accept;")
    table.chains["output"] = Chain([
        "ct state established,related accept",
        f"oifname {bridge} udp sport 67 udp dport 68 accept",
        "ip daddr vmap @ingress"],
        "type filter hook output priority 0; policy accept;")


def _nat_chains(table: Table, host: Host) -> None:
    table.chains["nat_prerouting"] = Chain(
        ["dnat ip to ip daddr map @pub2priv"],
        "type nat hook prerouting priority dstnat; policy accept;")
    table.chains["nat_output"] = Chain(
        ["dnat ip to ip daddr map @pub2priv"],
        "type nat hook output priority -100; policy accept;")
    out = (f"oifname {_q(host.public_interface)}" if host.public_interface
           else f"oifname != {_q(host.bridge)}")
    post = [f"{out} snat ip to ip saddr map @priv2pub"]
    if host.public_interface:
        subnet = ipaddress.ip_network(host.subnet, strict=False)
        post.append(f"{out} ip saddr {subnet} masquerade")
    table.chains["nat_postrouting"] = Chain(
        post, "type nat hook postrouting priority srcnat; policy accept;")


def _rule(rule: Rule, side: str, verdict: str) -> list[str]:
    """nft rule texts for one permission; *side* is the peer's address field (``saddr``
    for ingress, ``daddr`` for egress)."""
    if rule.group:
        peer = f"ip {side} @{_set_name(rule.group)} "
    elif rule.cidr and ipaddress.ip_network(rule.cidr, strict=False).prefixlen > 0:
        peer = f"ip {side} {ipaddress.ip_network(rule.cidr, strict=False)} "
    else:
        peer = ""           # 0.0.0.0/0: any peer
    return [f"{peer}{match}{verdict}" for match in _protocol_matches(rule)]


def _protocol_matches(rule: Rule) -> list[str]:
    """The protocol/port part of a rule (with a trailing space, or empty for all)."""
    if rule.protocol == ALL_PROTOCOLS:
        return [""]
    name = _PROTOCOL_NAMES.get(rule.protocol)
    low, high = rule.from_port, rule.to_port
    if name in ("tcp", "udp"):
        if low is None or low == -1 or (low <= 0 and (high is None or high >= 65535)):
            return [f"ip protocol {name} "]
        ports = str(low) if high in (None, low) else f"{low}-{high}"
        return [f"{name} dport {ports} "]
    if name == "icmp":
        if low is None or low == -1:
            return ["ip protocol icmp "]
        code = "" if high is None or high == -1 else f"icmp code {int(high)} "
        return [f"icmp type {int(low)} {code}"]
    return [f"ip protocol {int(rule.protocol)} "]


def _set_name(group_id: str) -> str:
    return f"g-{group_id}"


def _q(name: str | None) -> str:
    return f'"{name}"'
