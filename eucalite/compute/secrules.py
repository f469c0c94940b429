"""Security-group rules: what a permission is, and the checks and matching of rules.

A :class:`Permission` is one ``IpPermissions`` item as plain values (the EC2 adapter parses
both the structure and the legacy flat parameters into it; the console builds it from its
rule editor): a protocol, a port range (or ICMP type/code) and the peers it applies to.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """Who a permission lets in (ingress) or out to (egress): a CIDR, or a security group
    by id or by name (*owner_id*: the group's account, when it is another account's)."""

    cidr: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    owner_id: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Permission:
    """One IpPermissions item. *protocol* as the caller gave it (``tcp``, ``udp``, ``icmp``,
    ``-1``/``all`` or a number); *from_port*/*to_port* the port range, or ICMP type/code."""

    protocol: str
    from_port: int | None = None
    to_port: int | None = None
    peers: tuple[Peer, ...] = ()
