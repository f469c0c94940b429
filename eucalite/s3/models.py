"""Walrus tables: buckets, object versions, multipart uploads and their parts.

Object data never lives under a name derived from its key: each version's bytes are one or
more immutable *segment* files in the store (see :mod:`eucalite.s3.store`), listed in
``segments`` as ``[[relative path, size], ...]``. A multipart object keeps its parts as its
segments, so completing an upload copies nothing. Keys are only ever database values, so no
key (``../``, ``%``, unicode) can reach the filesystem.

Configuration documents (ACL, policy, CORS, lifecycle, tags, metadata) are stored as JSON
text: they are read whole and written whole.

The hottest lookups (a GET's bucket and version, a PUT's displaced rows) read with Core
statements into :class:`LoadedBucket` / :class:`LoadedVersion`, plain copies of a row with
the model's attribute names: loading ORM objects costs several times the query.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Sequence

from sqlalchemy import (BigInteger, Boolean, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from ..accounts import utcnow
from ..db import JsonFields, db, load_json

NULL_VERSION = "null"


class Bucket(db.Model, JsonFields):
    __tablename__ = "s3_buckets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    location: Mapped[str] = mapped_column(String(64), default="")
    # None (never enabled), "Enabled" or "Suspended"
    versioning: Mapped[str | None] = mapped_column(String(16), default=None)
    acl_json: Mapped[str | None] = mapped_column(Text, default=None)
    policy_json: Mapped[str | None] = mapped_column(Text, default=None)
    cors_json: Mapped[str | None] = mapped_column(Text, default=None)
    lifecycle_json: Mapped[str | None] = mapped_column(Text, default=None)
    tags_json: Mapped[str | None] = mapped_column(Text, default=None)
    creator_user_id: Mapped[str | None] = mapped_column(String(32), default=None)  # quotas
    # ServerSideEncryptionConfiguration (bucket default encryption), None when unset
    encryption_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Object Lock: enabled only at creation (forces versioning on); object_lock_json holds
    # the default retention rule ({"Mode": ..., "Days" | "Years": n}), None when none
    object_lock_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    object_lock_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Ownership controls: "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter";
    # None for a bucket that has none (buckets made before ownership controls existed)
    ownership: Mapped[str | None] = mapped_column(String(32), default=None)
    # PublicAccessBlockConfiguration ({"BlockPublicAcls": bool, ...}), None when unset
    public_access_block_json: Mapped[str | None] = mapped_column(Text, default=None)
    # The backend that holds the bucket's new objects' data: "file" (the data directory)
    # or "s3" (another S3 endpoint such as a Ceph RGW); see eucalite.s3.backends
    backend: Mapped[str] = mapped_column(String(32), default="file")


class Segments:
    """An object version's ``segments``, from its ``segments_json`` column."""

    segments_json: str

    @property
    def segments(self) -> list[tuple[str, int]]:
        return [(path, size) for path, size in load_json(self.segments_json, [])]


class ObjectVersion(db.Model, JsonFields, Segments):
    """One version of one key (unversioned buckets hold one version, id ``null``)."""

    __tablename__ = "s3_objects"
    __table_args__ = (
        UniqueConstraint("bucket_id", "key", "version_id"),
        # PostgreSQL's keys compare by locale: its listings (byte order) use another index,
        # which only a migration declares (db.MIGRATION_ONLY_INDEXES)
        Index("ix_s3_objects_listing", "bucket_id", "is_latest", "key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket_id: Mapped[int] = mapped_column(ForeignKey("s3_buckets.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[str] = mapped_column(String(64), default=NULL_VERSION)
    is_latest: Mapped[bool] = mapped_column(default=True)
    delete_marker: Mapped[bool] = mapped_column(default=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    etag: Mapped[str] = mapped_column(String(64), default="")      # without quotes
    last_modified: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner_id: Mapped[str] = mapped_column(String(12))
    content_type: Mapped[str | None] = mapped_column(String(255), default=None)
    # Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires
    headers_json: Mapped[str | None] = mapped_column(Text, default=None)
    meta_json: Mapped[str | None] = mapped_column(Text, default=None)   # x-amz-meta-*
    acl_json: Mapped[str | None] = mapped_column(Text, default=None)
    tags_json: Mapped[str | None] = mapped_column(Text, default=None)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    checksum_value: Mapped[str | None] = mapped_column(String(128), default=None)
    checksum_type: Mapped[str | None] = mapped_column(String(16), default=None)
    segments_json: Mapped[str] = mapped_column(Text, default="[]")
    parts_count: Mapped[int | None] = mapped_column(Integer, default=None)
    storage_class: Mapped[str] = mapped_column(String(32), default="STANDARD")
    # Server-side encryption of this version's data (eucalite/s3/sse.py), None when stored
    # in the clear. Never holds a customer's (SSE-C) key, only what checks it.
    sse_json: Mapped[str | None] = mapped_column(Text, default=None)
    # Object Lock retention ("GOVERNANCE" / "COMPLIANCE" until a UTC time) and legal hold
    # (None: never set, which GetObjectLegalHold tells apart from OFF)
    lock_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    lock_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    legal_hold: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # A multipart object's parts ([{"PartNumber", "Size", "Checksum"?}, ...]) for
    # GetObjectAttributes and part-number reads; None for a single PUT
    parts_json: Mapped[str | None] = mapped_column(Text, default=None)


class MultipartUpload(db.Model, JsonFields):
    __tablename__ = "s3_uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)     # the UploadId
    bucket_id: Mapped[int] = mapped_column(ForeignKey("s3_buckets.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(1024))
    initiated: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner_id: Mapped[str] = mapped_column(String(12))
    initiator_arn: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str | None] = mapped_column(String(255), default=None)
    headers_json: Mapped[str | None] = mapped_column(Text, default=None)
    meta_json: Mapped[str | None] = mapped_column(Text, default=None)
    acl_json: Mapped[str | None] = mapped_column(Text, default=None)
    tags_json: Mapped[str | None] = mapped_column(Text, default=None)
    checksum_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    # "COMPOSITE" or "FULL_OBJECT" (x-amz-checksum-type at CreateMultipartUpload)
    checksum_type: Mapped[str | None] = mapped_column(String(16), default=None)
    storage_class: Mapped[str] = mapped_column(String(32), default="STANDARD")
    # What the finished object will carry: its encryption (parts are written encrypted
    # under it) and its Object Lock retention and legal hold, as ObjectVersion
    sse_json: Mapped[str | None] = mapped_column(Text, default=None)
    lock_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    lock_until: Mapped[dt.datetime | None] = mapped_column(default=None)
    legal_hold: Mapped[bool | None] = mapped_column(Boolean, default=None)


class UploadPart(db.Model):
    __tablename__ = "s3_parts"

    upload_id: Mapped[str] = mapped_column(ForeignKey("s3_uploads.id", ondelete="CASCADE"),
                                           primary_key=True)
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    etag: Mapped[str] = mapped_column(String(64))
    last_modified: Mapped[dt.datetime] = mapped_column(default=utcnow)
    path: Mapped[str] = mapped_column(String(255))
    checksum_value: Mapped[str | None] = mapped_column(String(128), default=None)


class Loaded(JsonFields):
    """A row read with a Core statement: the model's column values as attributes of the
    same names. Not tracked by the session, so changing one saves nothing: writers load
    the mapped object (``db.session.get``) under the write lock, as they must anyway."""

    model: type

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    @classmethod
    def columns(cls) -> list[Any]:
        """The columns to select for one, in the order :meth:`from_row` expects."""
        return list(cls.model.__table__.c)

    @classmethod
    def from_row(cls, values: Sequence[Any]) -> "Loaded":
        """One from *values*, a row's values of :meth:`columns` in order."""
        return cls(dict(zip(cls.model.__table__.c.keys(), values)))


class LoadedBucket(Loaded):
    """A :class:`Bucket` row as read (see :class:`Loaded`)."""

    model = Bucket


class LoadedVersion(Loaded, Segments):
    """An :class:`ObjectVersion` row as read (see :class:`Loaded`)."""

    model = ObjectVersion
