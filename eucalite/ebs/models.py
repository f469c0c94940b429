"""Storage-controller tables: volumes, snapshots and the chunks snapshots are made of.

A volume is a sparse raw file on the storage host, exported to the node that runs its
instance (see :mod:`eucalite.ebs.export`); its one attachment is recorded on the row, as an
EBS volume attaches to one instance at a time. A snapshot is a list of chunk digests
(``SnapshotChunk``); the chunk data lives in the object store, addressed by digest, so a
chunk unchanged since the previous snapshot is stored once and shared, and a chunk is
deleted only when no snapshot lists it any more.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..accounts import utcnow
from ..db import JsonFields, db


class Volume(db.Model, JsonFields):
    __tablename__ = "volumes"
    __table_args__ = (Index("ix_volumes_owner_state", "owner_id", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)          # vol-...
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    size_gb: Mapped[int] = mapped_column(Integer)
    zone: Mapped[str] = mapped_column(String(64))
    # creating | available | in-use | deleting | deleted | error
    state: Mapped[str] = mapped_column(String(16), default="creating")
    state_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    snapshot_id: Mapped[str | None] = mapped_column(String(32), default=None)
    volume_type: Mapped[str] = mapped_column(String(16), default="standard")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The export that serves the volume's data: {"driver": "local"|"tgt"|"lio", ...}
    export_json: Mapped[str | None] = mapped_column(Text, default=None)
    # The attachment (None when detached).
    instance_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    device: Mapped[str | None] = mapped_column(String(32), default=None)      # /dev/sdf
    target: Mapped[str | None] = mapped_column(String(8), default=None)       # vdb
    # attaching | attached | detaching | None
    attach_state: Mapped[str | None] = mapped_column(String(16), default=None)
    creator_user_id: Mapped[str | None] = mapped_column(String(32), default=None)  # quotas
    attach_time: Mapped[dt.datetime | None] = mapped_column(default=None)
    delete_on_termination: Mapped[bool] = mapped_column(default=False)
    auto_enable_io: Mapped[bool] = mapped_column(default=False)
    # Where the volume's blocks live: "file" (a sparse file in the data directory) or
    # "rbd" (an image in the Ceph pool rbd_pool)
    backend: Mapped[str] = mapped_column(String(16), default="file")


class Snapshot(db.Model, JsonFields):
    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_owner_state", "owner_id", "state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)          # snap-...
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    volume_id: Mapped[str] = mapped_column(String(32), index=True)
    volume_size_gb: Mapped[int] = mapped_column(Integer)
    creator_user_id: Mapped[str | None] = mapped_column(String(32), default=None)  # quotas
    state: Mapped[str] = mapped_column(String(16), default="pending")      # pending|completed|error
    state_message: Mapped[str | None] = mapped_column(String(255), default=None)
    progress: Mapped[int] = mapped_column(Integer, default=0)              # percent
    description: Mapped[str] = mapped_column(String(255), default="")
    started: Mapped[dt.datetime] = mapped_column(default=utcnow)
    chunk_size: Mapped[int] = mapped_column(Integer)
    # Bytes this snapshot added to the store (the chunks no earlier snapshot had).
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Account ids allowed to create volumes from it besides the owner; "all" for public.
    create_volume_permissions_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Where the snapshot's data lives: "objectstore" (chunks in the object store, listed in
    # snapshot_chunks) or "rbd" (an RBD snapshot of the volume's image, kept in Ceph)
    backend: Mapped[str] = mapped_column(String(16), default="objectstore")


class SnapshotChunk(db.Model):
    """Chunk *index* of a snapshot holds the object-store chunk *digest* (sha256 hex).
    Chunks that are all zeros are not listed: restoring leaves them sparse."""

    __tablename__ = "snapshot_chunks"
    __table_args__ = (Index("ix_snapshot_chunks_digest", "digest"),)

    snapshot_id: Mapped[str] = mapped_column(ForeignKey("snapshots.id"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)


class VolumeModification(db.Model):
    """A volume's most recent ModifyVolume (AWS describes only the latest one per volume):
    what it was and what it becomes. *state* is modifying -> optimizing -> completed, or
    failed (:data:`eucalite.ebs.states.MODIFICATION`); the volume's own size and type change
    when the data has grown, as the modification enters optimizing."""

    __tablename__ = "volume_modifications"

    volume_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="modifying")
    status_message: Mapped[str | None] = mapped_column(String(255), default=None)
    original_size: Mapped[int] = mapped_column(Integer)
    target_size: Mapped[int] = mapped_column(Integer)
    original_type: Mapped[str] = mapped_column(String(16))
    target_type: Mapped[str] = mapped_column(String(16))
    original_iops: Mapped[int | None] = mapped_column(Integer, default=None)
    target_iops: Mapped[int | None] = mapped_column(Integer, default=None)
    original_throughput: Mapped[int | None] = mapped_column(Integer, default=None)
    target_throughput: Mapped[int | None] = mapped_column(Integer, default=None)
    progress: Mapped[int] = mapped_column(Integer, default=0)              # percent
    start_time: Mapped[dt.datetime] = mapped_column(default=utcnow)
    end_time: Mapped[dt.datetime | None] = mapped_column(default=None)
    # Start times of the volume's modifications in the last 24 hours, this one included
    # (ISO 8601 strings, oldest first): the per-volume rate limit's memory
    recent_starts_json: Mapped[str | None] = mapped_column(Text, default=None)
