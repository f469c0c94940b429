"""Cluster-controller tables: nodes and their capacity.

A node is a host that runs VMs (node duty). Capacity is what the node offers; ``used_*`` is
what running and pending instances have reserved. Reservations change only inside a write
transaction (``db.write_lock``), so concurrent RunInstances never oversubscribe a node.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..accounts import utcnow
from ..db import db


class Node(db.Model):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)       # host name
    zone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(255), default="")
    hypervisor_uri: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16), default="enabled")   # enabled|disabled|unreachable
    cores: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    used_cores: Mapped[int] = mapped_column(Integer, default=0)
    used_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    used_disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Order in which ROUNDROBIN last chose nodes (higher = more recent).
    last_chosen: Mapped[int] = mapped_column(Integer, default=0)
    # Per-node overcommit ratios (Eucalyptus' MAX_CORES/MAX_MEM); None: the cloud's
    # cpu_overcommit / memory_overcommit setting. Disk is never overcommitted.
    cpu_overcommit: Mapped[float | None] = mapped_column(Float, default=None)
    memory_overcommit: Mapped[float | None] = mapped_column(Float, default=None)
    # System status check (DescribeInstanceStatus), kept across restarts: when the
    # reconciler first reached the node, and since when it has not (None: it answers).
    status_checked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    status_impaired_since: Mapped[dt.datetime | None] = mapped_column(default=None)


class NodeCredential(db.Model):
    """A node's own SigV4 key for the internal API (issued at join). Never a user key: user
    authentication reads only access keys, and the internal API reads only this table."""

    __tablename__ = "node_credentials"

    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), index=True)
    # The secret itself: SigV4 derives its signing key from it (as for access keys).
    secret: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set when the node is removed: the next request signed with it is refused.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class JoinToken(db.Model):
    """A one-time join token: only its SHA-256 is kept, so a database copy joins nothing."""

    __tablename__ = "join_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(255), default="")
    # When a node exchanged it, and which node it became (None: unused).
    used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    node_id: Mapped[str | None] = mapped_column(String(64), default=None)
