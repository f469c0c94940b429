"""What a node's data plane must enforce, as plain serialisable records.

The cloud controller builds one :class:`NetworkPlan` per node from its database (every
instance the node runs, the rules of their groups, the members of every group those rules
name) and the node makes its kernel enforce exactly that (the whole desired state each time:
the node works out what changed). Nothing here knows about nftables or the database.

Semantics (AWS EC2 security groups):

* An instance's ingress is allowed when *any* ingress rule of *any* of its groups matches
  the packet's source (a CIDR, or the private address of a member of a peer group) and
  protocol/ports; everything else in is dropped. Egress likewise with the egress rules
  (matching the destination). Replies to allowed traffic are allowed (stateful).
* DHCP, DNS to the gateway and the metadata service are always allowed; a guest may send
  only from its own MAC and private IP.
* ``public_ip``: traffic to it is DNATed to the private IP, the instance's traffic out is
  SNATed to it; instances without one are masqueraded behind the host's public address.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: protocol value meaning every protocol
ALL_PROTOCOLS = "-1"


@dataclass(frozen=True)
class Rule:
    """One permission. *protocol*: IANA number as text (``"6"`` tcp, ``"17"`` udp, ``"1"``
    icmp) or ``"-1"`` (all). For tcp/udp *from_port*..*to_port* is the port range; for icmp
    *from_port* is the type and *to_port* the code (-1: any); None for other protocols.
    The peer is *cidr* (IPv4 CIDR) or *group* (a group id: its members' private IPs)."""

    protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Group:
    """A security group's rules."""

    group_id: str
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class Port:
    """An instance's place on the node: its NIC (*tap*, the host-side interface name the
    node gives the domain's NIC), MAC, private IP, public IP (None: none) and groups."""

    instance_id: str
    tap: str
    mac: str
    private_ip: str
    public_ip: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkPlan:
    """Everything one node enforces: its *ports*, the rules of every group they are in
    (*groups*, by id) and the private IPs of the members of every group named as a peer
    (*members*, by group id, cloud-wide)."""

    ports: tuple[Port, ...] = ()
    groups: dict[str, Group] = field(default_factory=dict)
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)


def tap_name(private_ip: str) -> str:
    """The host-side NIC name of the instance with *private_ip* (unique on a node, at most
    15 characters, known before the domain starts so its rules can be in place first)."""
    return "eu" + "".join(f"{int(part):02x}" for part in private_ip.split("."))
