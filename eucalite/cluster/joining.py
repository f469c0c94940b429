"""Nodes that join the cloud from other hosts: one-time join tokens, node credentials, and
what a joined node reports (registration and heartbeats).

The admin makes a token (:func:`create_token`, `eucalite node token` or the console); only
its SHA-256 is stored, with the zone the node will belong to and an expiry. The node host
exchanges it once (:func:`exchange`, ``POST /internal/v1/join``) for its own SigV4 key, a
:class:`~.models.NodeCredential` that only the internal API reads (:func:`credential_for`):
user authentication never looks at that table, so a node key is no user key. Revoking it
(:func:`revoke`) makes the node's next request fail.

Every function that writes is one write transaction (:func:`eucalite.db.writing`, or the
one :mod:`.nodes` takes for node rows).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from .. import ids
from ..accounts import utcnow
from ..db import db, writing
from ..errors import AwsError, InvalidParameterValue
from ..errors.node import InvalidJoinToken, NodeAlreadyExists
from .models import JoinToken, Node, NodeCredential
from . import nodes
from .virt.driver import HostCapacity

#: A node key's id: ``NODE`` + 16 characters (an access key's shape, never an ``AKIA`` one).
NODE_KEY_PREFIX = "NODE"
DEFAULT_TOKEN_LIFETIME = "1h"
MAX_TOKEN_LIFETIME = dt.timedelta(days=7)
_DURATION = re.compile(r"^(\d+)([smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: A node name as a host name: letters, digits, '-', '_', '.'; what a node id may be.
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


@dataclass(frozen=True)
class NodeIdentity:
    """Who signed an internal-API request: a node, by its id and key."""

    node_id: str
    access_key_id: str


@dataclass(frozen=True)
class Joined:
    """What a node gets for its token: its id, zone and SigV4 key (the secret shown once)."""

    node_id: str
    zone: str
    access_key_id: str
    secret_access_key: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_lifetime(text: str) -> dt.timedelta:
    """``90``, ``90s``, ``30m``, ``1h`` or ``2d`` as a duration (at most 7 days)."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidParameterValue(f"Invalid token lifetime {text!r}: a positive number "
                                    "with s, m, h or d (e.g. 1h).")
    lifetime = dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if lifetime > MAX_TOKEN_LIFETIME:
        raise InvalidParameterValue(f"Invalid token lifetime {text!r}: at most 7d.")
    return lifetime


def create_token(zone: str, zones: Iterable[str], lifetime: dt.timedelta,
                 created_by: str) -> tuple[str, JoinToken]:
    """A new one-time token for a node of *zone* (one of *zones*), valid for *lifetime*.
    Returns the token (shown once, never stored) and its row."""
    zones = list(zones)
    if zone not in zones:
        raise InvalidParameterValue(f"Invalid availability zone: [{zone}]; this cloud's "
                                    f"zones: {', '.join(zones)}")
    token = "ejt-" + secrets.token_urlsafe(32)
    with writing():
        row = JoinToken(token_sha256=token_digest(token), zone=zone, created=utcnow(),
                        expires=utcnow() + lifetime, created_by=created_by)
        db.session.add(row)
    return token, row


def exchange(token: str, node_name: str) -> Joined:
    """Spend *token* for node *node_name*: a new node key (the node appears when it
    registers, in the token's zone: :func:`register`). Raises InvalidJoinToken for a token that
    is unknown, used or expired, NodeAlreadyExists when the name is taken (by a node, or by a
    joined node that has not registered yet)."""
    if not isinstance(node_name, str) or not _NODE_NAME.match(node_name):
        raise InvalidParameterValue(f"Invalid node name {node_name!r}: letters, digits, "
                                    "'.', '-' and '_', at most 63.")
    with writing():
        row = db.session.get(JoinToken, token_digest(token)) if isinstance(token, str) \
            else None
        if row is None:
            raise InvalidJoinToken("The join token is not valid: make one with `eucalite "
                                   "node token` on the cloud controller.")
        if row.used_at is not None:
            raise InvalidJoinToken("The join token was already used: each token joins one node.")
        if row.expires <= utcnow():
            raise InvalidJoinToken(f"The join token expired at {row.expires:%Y-%m-%dT%H:%M:%SZ}.")
        if db.session.get(Node, node_name) is not None or db.session.execute(
                db.select(NodeCredential.access_key_id).filter_by(
                    node_id=node_name, revoked_at=None).limit(1)).first():
            raise NodeAlreadyExists(f"A node named {node_name!r} is already in the cloud: "
                                    "join with another --node-name, or remove that node "
                                    "first.")
        row.used_at, row.node_id = utcnow(), node_name
        key = NodeCredential(access_key_id=NODE_KEY_PREFIX + ids.access_key_id()[4:],
                             node_id=node_name, secret=ids.secret_access_key(),
                             created=utcnow())
        db.session.add(key)
        return Joined(node_name, row.zone, key.access_key_id, key.secret)


def credential_for(access_key_id: str) -> tuple[NodeIdentity, str] | None:
    """(the node, its secret) for an unrevoked node key; the internal API's key lookup."""
    key = db.session.get(NodeCredential, access_key_id)
    if key is None or key.revoked_at is not None:
        return None
    return NodeIdentity(key.node_id, key.access_key_id), key.secret


def revoke(node_id: str) -> int:
    """Revoke every key of *node_id* (when it is removed); returns how many were live."""
    with writing():
        keys = db.session.query(NodeCredential).filter_by(node_id=node_id,
                                                          revoked_at=None).all()
        for key in keys:
            key.revoked_at = utcnow()
    return len(keys)


def capacity_of(body: Mapping[str, Any]) -> HostCapacity:
    """The ``capacity`` object of a registration or heartbeat, checked."""
    capacity = body.get("capacity")
    if not isinstance(capacity, dict):
        raise InvalidParameterValue("capacity: an object with cores, memory_mb, disk_gb")
    values = []
    for name in ("cores", "memory_mb", "disk_gb"):
        value = capacity.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidParameterValue(f"capacity.{name}: a non-negative integer")
        values.append(value)
    return HostCapacity(*values)


def joined_zone(node_id: str) -> str | None:
    """The zone of the token *node_id* joined with (None: it never joined)."""
    return db.session.execute(
        db.select(JoinToken.zone).filter_by(node_id=node_id)
        .order_by(JoinToken.used_at.desc()).limit(1)).scalar()


def not_found(node_id: str) -> AwsError:
    return AwsError(f"Node {node_id!r} is not in the cloud (removed?): join again.",
                    code="NodeNotFound", status=404)


def register(node_id: str, capacity: HostCapacity, hypervisor_uri: str,
             address: str) -> Node:
    """A joined node registers (at every start) in the zone of its token: capacity,
    hypervisor and address (:func:`.nodes.register`, the one rule for node rows)."""
    zone = joined_zone(node_id)
    if zone is None:
        raise not_found(node_id)
    return nodes.register(node_id, zone, capacity, hypervisor_uri, address)


def heartbeat(node_id: str, capacity: HostCapacity) -> Node:
    """A joined node is alive (:func:`.nodes.heard_from`); NodeNotFound once removed."""
    node = nodes.heard_from(node_id, capacity)
    if node is None:
        raise not_found(node_id)
    return node


def node_row(node_id: str) -> Node | None:
    return db.session.get(Node, node_id)


def join_command(controller_url: str, token: str) -> str:
    """The command line an admin runs on the node host to join with *token*."""
    return f"eucalite join {controller_url} {token}"


def unreachable_url_hint(controller_url: str) -> str | None:
    """What to change when *controller_url* names this host's loopback, which no other
    host reaches (None when it names another address)."""
    host = urlsplit(controller_url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    return (f"{controller_url} is this host's loopback: serve on an address the node host "
            "reaches (--host 0.0.0.0) and set public_url to it, or give that URL to "
            "`eucalite join` instead")
