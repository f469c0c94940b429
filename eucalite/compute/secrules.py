"""Security-group rules: what a permission is, and the checks and matching of rules.

A :class:`Permission` is one ``IpPermissions`` item as plain values (the EC2 adapter parses
both the structure and the legacy flat parameters into it; the console builds it from its
rule editor): a protocol, a port range (or ICMP type/code) and the peers it applies to.

Every permission becomes one :class:`RuleSpec` per peer (:func:`expand`): the checked,
normalised form a :class:`~eucalite.compute.models.SecurityGroupRule` row stores, as AWS
normalises it — protocol names become IANA numbers (``tcp`` is ``"6"``, ``all`` is
``"-1"``), ports are dropped where the protocol has none, a CIDR loses the bits right of its
mask (``10.1.2.3/8`` is ``10.0.0.0/8``). Two rules are the same rule when their
:func:`rule_key` is equal (the description plays no part): that is what
``InvalidPermission.Duplicate`` refuses and what a revoke by permission matches.

:func:`ip_permissions` folds rules back into ``IpPermissions`` items as DescribeSecurityGroups
shows them; :func:`permission_filters` gives the ``ip-permission.*`` filters over those items.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..db import db
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import (InvalidPermissionDuplicate, InvalidPermissionMalformed,
                          InvalidSecurityGroupRuleIdMalformed)
from ..ids import resource_id
from ..query import check_text
from .models import SecurityGroup, SecurityGroupRule

#: Protocol value meaning every protocol (as :data:`eucalite.cluster.edge.plan.ALL_PROTOCOLS`).
ALL = "-1"
TCP, UDP, ICMP = "6", "17", "1"
#: The names AWS takes for IpProtocol, and the numbers it shows as names.
PROTOCOL_NUMBERS = {"tcp": TCP, "udp": UDP, "icmp": ICMP, "all": ALL, "-1": ALL}
PROTOCOL_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ALL: "-1"}
#: ICMPv6 (a name or its number): this cloud's network has no IPv6.
IPV6_PROTOCOLS = ("icmpv6", "58")

MAX_PORT = 65535
MAX_ICMP = 255
MAX_DESCRIPTION = 255
#: AWS's rule description alphabet: a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*
_DESCRIPTION = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*\Z")
_RULE_ID = re.compile(r"sgr-[0-9a-f]{8}([0-9a-f]{9})?\Z")
EVERYWHERE = "0.0.0.0/0"


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


@dataclass(frozen=True)
class RuleSpec:
    """One rule, checked and normalised: what a SecurityGroupRule row holds besides its ids.
    The peer is *cidr*, or the group *group_id* owned by *owner_id*."""

    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    group_id: str | None = None
    owner_id: str | None = None
    description: str | None = None

    @property
    def key(self) -> tuple:
        """What makes two rules the same rule (see :func:`rule_key`)."""
        return (self.protocol, self.from_port, self.to_port, self.cidr, self.group_id)

    def row(self, group: SecurityGroup, egress: bool) -> SecurityGroupRule:
        """A new rule row (with a fresh sgr- id) of *group* holding this spec."""
        return SecurityGroupRule(id=resource_id("sgr"), group_id=group.id, egress=egress,
                                 protocol=self.protocol, from_port=self.from_port,
                                 to_port=self.to_port, cidr=self.cidr,
                                 peer_group_id=self.group_id, peer_owner_id=self.owner_id,
                                 description=self.description)


#: Resolves a group peer to (group id, owner account id), or raises InvalidGroup.NotFound.
PeerResolver = Callable[[Peer], tuple[str, str]]


def rule_key(rule: SecurityGroupRule) -> tuple:
    """A stored rule's identity: protocol, ports, and peer (CIDR or group id)."""
    return (rule.protocol, rule.from_port, rule.to_port, rule.cidr, rule.peer_group_id)


# --- checks -----------------------------------------------------------------------------

def protocol_number(protocol: str | None) -> str:
    """*protocol* (``tcp``, ``udp``, ``icmp``, ``all``, ``-1`` or a number 0-255) as stored:
    the IANA number as text, or ``"-1"``."""
    if protocol is None or protocol == "":
        raise MissingParameter("The request must contain the parameter ipProtocol")
    text = protocol.strip().lower()
    if text in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[text]
    if text in IPV6_PROTOCOLS:
        raise InvalidParameterValue(f"Invalid value '{protocol}' for IP protocol: this cloud "
                                    "has no IPv6 network.")
    if text.isascii() and text.isdigit() and len(text) <= 3 and int(text) <= 255:
        number = str(int(text))
        if number in IPV6_PROTOCOLS:
            return protocol_number(number)
        return number
    raise InvalidParameterValue(f"Invalid value '{protocol}' for IP protocol. Unknown "
                                "protocol (tcp, udp, icmp, -1 for all, or a number 0-255).")


def protocol_name(protocol: str) -> str:
    """A stored protocol as AWS shows it: ``tcp``, ``udp``, ``icmp``, ``-1`` or the number."""
    return PROTOCOL_NAMES.get(protocol, protocol)


def port_range(protocol: str, from_port: int | None,
               to_port: int | None) -> tuple[int | None, int | None]:
    """The ports a rule of (normalised) *protocol* stores: a TCP/UDP range 0-65535 (both
    ends required, from <= to), an ICMP type and code (-1: any; a type of -1 takes a code of
    -1), or nothing for every other protocol (AWS ignores ports there)."""
    if protocol in (TCP, UDP):
        if from_port is None or to_port is None:
            raise InvalidParameterValue("Invalid value 'Must specify both from and to ports "
                                        "with TCP/UDP.' for portRange")
        for port in (from_port, to_port):
            if not 0 <= port <= MAX_PORT:
                raise InvalidParameterValue(f"Invalid value '{port}' for portRange. Ports "
                                            f"are 0 to {MAX_PORT}.")
        if from_port > to_port:
            raise InvalidParameterValue(f"Invalid value '{from_port}-{to_port}' for "
                                        "portRange. The from port must not exceed the to port.")
        return from_port, to_port
    if protocol == ICMP:
        if from_port is None or to_port is None:
            raise InvalidParameterValue("Invalid value 'Must specify both ICMP type and code "
                                        "(-1 for any).' for icmpTypeCode")
        for value in (from_port, to_port):
            if not -1 <= value <= MAX_ICMP:
                raise InvalidParameterValue(f"Invalid value '{value}' for ICMP type or code. "
                                            f"Use -1 (any) to {MAX_ICMP}.")
        if from_port == -1 and to_port != -1:
            raise InvalidParameterValue(f"Invalid value 'ICMP code {to_port} with every "
                                        "type (-1)': with type -1 the code must be -1.")
        return from_port, to_port
    return None, None


def normalise_cidr(cidr: str) -> str:
    """An IPv4 CIDR (``a.b.c.d/n``) with the bits right of its mask cleared, as AWS stores
    it; InvalidParameterValue for anything else (IPv6 included: this cloud has none)."""
    address, slash, prefix = (cidr or "").partition("/")
    try:
        if not slash or not prefix.isascii() or not prefix.isdigit():
            raise ValueError(cidr)
        network = ipaddress.IPv4Network(f"{address}/{int(prefix)}", strict=False)
    except ValueError:
        raise InvalidParameterValue(f"Value ({cidr}) for parameter cidrIp is invalid. This "
                                    "is not a valid IPv4 CIDR block (a.b.c.d/n).")
    return str(network)


def check_description(description: str | None) -> str | None:
    """A rule description: at most 255 characters of AWS's alphabet (None: none)."""
    if description is None:
        return None
    check_text(description, "Description")
    if len(description) > MAX_DESCRIPTION or not _DESCRIPTION.match(description):
        raise InvalidParameterValue(
            "Invalid rule description. Valid descriptions are strings less than 256 "
            "characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*")
    return description


def check_rule_id(rule_id: str) -> str:
    """*rule_id* if it is shaped like an sgr- id, else InvalidSecurityGroupRuleId.Malformed."""
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise InvalidSecurityGroupRuleIdMalformed(
            f"The security group rule ID '{rule_id}' is malformed")
    return rule_id


# --- permissions into rules -------------------------------------------------------------

def expand(permission: Permission, resolve: PeerResolver) -> list[tuple[Peer, RuleSpec]]:
    """One checked, normalised rule per peer of *permission* (with the peer it came from).
    Group peers are looked up by *resolve*; a permission without peers is MissingParameter."""
    protocol = protocol_number(permission.protocol)
    from_port, to_port = port_range(protocol, permission.from_port, permission.to_port)
    if not permission.peers:
        raise MissingParameter("Missing source specification: include source security "
                               "group or CIDR information")
    specs = []
    for peer in permission.peers:
        has_group = bool(peer.group_id or peer.group_name)
        if bool(peer.cidr) == has_group:
            raise InvalidPermissionMalformed("Each source or destination is either a CIDR "
                                             "or a security group, not both or neither.")
        description = check_description(peer.description)
        if peer.cidr:
            spec = RuleSpec(protocol, from_port, to_port, cidr=normalise_cidr(peer.cidr),
                            description=description)
        else:
            group_id, owner_id = resolve(peer)
            spec = RuleSpec(protocol, from_port, to_port, group_id=group_id,
                            owner_id=owner_id, description=description)
        specs.append((peer, spec))
    return specs


def expand_all(permissions: Iterable[Permission], resolve: PeerResolver) -> list[RuleSpec]:
    """The rules of every permission (:func:`expand`), in order."""
    return [spec for permission in permissions for _, spec in expand(permission, resolve)]


def check_new(specs: list[RuleSpec], existing: Iterable[SecurityGroupRule]) -> None:
    """InvalidPermission.Duplicate if a spec is a rule the group has, or is repeated."""
    seen = {rule_key(rule) for rule in existing}
    for spec in specs:
        if spec.key in seen:
            raise InvalidPermissionDuplicate(f'the specified rule "{describe(spec)}" already '
                                             "exists")
        seen.add(spec.key)


def describe(spec: RuleSpec) -> str:
    """A rule in AWS's words: ``peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW``."""
    parts = [f"peer: {spec.cidr or spec.group_id}"]
    if spec.protocol == ALL:
        parts.append("ALL")
    else:
        parts.append(protocol_name(spec.protocol).upper())
        if spec.from_port is not None:
            parts += [f"from port: {spec.from_port}", f"to port: {spec.to_port}"]
    return ", ".join(parts + ["ALLOW"])


def default_rules(group: SecurityGroup) -> list[SecurityGroupRule]:
    """The rules a new group starts with (rows to add with it), as AWS makes them: every
    group may send anything anywhere (egress all to 0.0.0.0/0); the ``default`` group also
    lets its members reach each other (ingress all from itself)."""
    rules = [RuleSpec(ALL, None, None, cidr=EVERYWHERE).row(group, egress=True)]
    if group.name == "default":
        rules.insert(0, RuleSpec(ALL, None, None, group_id=group.id,
                                 owner_id=group.owner_id).row(group, egress=False))
    return rules


# --- rules back into IpPermissions ------------------------------------------------------

def ip_permissions(rules: Iterable[SecurityGroupRule]) -> list[dict]:
    """*rules* (one group's, one direction) folded into EC2 ``IpPermissions`` items as the
    XML shows them: one item per protocol and port range, holding its CIDRs (``ipRanges``)
    and groups (``groups``, with the peer group's name), in the order rules were added."""
    rules = sorted(rules, key=lambda rule: (rule.created, rule.id))
    names = _group_names({rule.peer_group_id for rule in rules if rule.peer_group_id})
    items: dict[tuple, dict] = {}
    for rule in rules:
        item = items.get((rule.protocol, rule.from_port, rule.to_port))
        if item is None:
            item = items[(rule.protocol, rule.from_port, rule.to_port)] = _item(
                rule.protocol, rule.from_port, rule.to_port)
        if rule.cidr:
            item["ipRanges"].append({"cidrIp": rule.cidr, "description": rule.description})
        else:
            item["groups"].append({"description": rule.description,
                                   "userId": rule.peer_owner_id, "groupId": rule.peer_group_id,
                                   "groupName": names.get(rule.peer_group_id)})
    return list(items.values())


def permission_item(permission: Permission) -> dict:
    """A Permission as the request gave it, in the XML's IpPermissions shape (what
    RevokeSecurityGroup* answers in ``unknownIpPermissionSet``)."""
    try:
        protocol = protocol_number(permission.protocol)
    except (InvalidParameterValue, MissingParameter):
        protocol = permission.protocol
    item = _item(protocol, permission.from_port, permission.to_port)
    for peer in permission.peers:
        if peer.cidr:
            item["ipRanges"].append({"cidrIp": peer.cidr, "description": peer.description})
        else:
            item["groups"].append({"description": peer.description, "userId": peer.owner_id,
                                   "groupId": peer.group_id, "groupName": peer.group_name})
    return item


def _item(protocol: str, from_port: int | None, to_port: int | None) -> dict:
    return {"ipProtocol": protocol_name(protocol), "fromPort": from_port, "toPort": to_port,
            "groups": [], "ipRanges": [], "ipv6Ranges": [], "prefixListIds": []}


def _group_names(group_ids: set[str]) -> dict[str, str]:
    if not group_ids:
        return {}
    return dict(db.session.execute(db.select(SecurityGroup.id, SecurityGroup.name)
                                   .where(SecurityGroup.id.in_(group_ids))).all())


def permission_filters(permissions_of: Callable[[Any], list[dict]],
                       prefix: str = "ip-permission") -> dict[str, Callable[[Any], list]]:
    """Getters for DescribeSecurityGroups' ``<prefix>.*`` filters (``ip-permission`` for
    ingress, ``egress.ip-permission`` for egress): *permissions_of(group)* gives the group's
    :func:`ip_permissions` items in that direction. A group matches when any of its rules
    does, each filter on its own (as AWS matches them). ``.protocol`` matches a protocol's
    name or its number; this cloud has no IPv6 ranges or prefix lists, so those never match.
    """
    def values(field: Callable[[dict], list]) -> Callable[[Any], list]:
        return lambda group: [value for item in permissions_of(group) for value in field(item)]

    def protocols(item: dict) -> list:
        number = PROTOCOL_NUMBERS.get(item["ipProtocol"], item["ipProtocol"])
        return [item["ipProtocol"], number]

    return {
        f"{prefix}.cidr": values(lambda item: [r["cidrIp"] for r in item["ipRanges"]]),
        f"{prefix}.from-port": values(lambda item: [item["fromPort"]]),
        f"{prefix}.to-port": values(lambda item: [item["toPort"]]),
        f"{prefix}.protocol": values(protocols),
        f"{prefix}.group-id": values(lambda item: [g["groupId"] for g in item["groups"]]),
        f"{prefix}.group-name": values(lambda item: [g["groupName"] for g in item["groups"]]),
        f"{prefix}.user-id": values(lambda item: [g["userId"] for g in item["groups"]]),
        f"{prefix}.ipv6-cidr": lambda group: [],
        f"{prefix}.prefix-list-id": lambda group: [],
    }
