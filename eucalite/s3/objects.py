"""Object operations: put, look up, copy and delete object versions.

A write streams the body into the store (:mod:`eucalite.s3.store`: the bucket's backend)
*before* touching the database, then records the new version in one short write
transaction, and only after that commit removes the data of versions it replaced. Reads return the version row; the adapter
streams its segments. Versioning follows S3: with versioning Enabled every write adds a
version and a plain delete adds a delete marker; Suspended and never-enabled buckets keep
one ``null`` version per key.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam

from .. import ids, quotas
from ..accounts import Principal, utcnow
from ..db import db, dump_json, execute_core, write_lock
from ..errors.s3 import (AccessDenied, EntityTooLarge, InvalidArgument, KeyTooLongError,
                         MethodNotAllowed, NoSuchKey, NoSuchVersion)
from . import authz, buckets, checksums, objectlock, ownership, sse
from .models import NULL_VERSION, Bucket, LoadedVersion, ObjectVersion
from .store import Gone, ObjectStore, Stored, TooLarge

MAX_KEY_BYTES = 1024
MAX_OBJECT_SIZE = 5 * 1024 ** 4          # 5 TiB, as S3
MAX_PUT_SIZE = 5 * 1024 ** 3             # 5 GiB for a single PUT, as S3


@dataclass
class Attributes:
    """What a writer says about an object besides its bytes."""

    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)   # cache-control, expires, ...
    meta: dict[str, str] = field(default_factory=dict)      # x-amz-meta-* without prefix
    acl: dict | None = None                                 # access.Acl.to_json()
    tags: dict[str, str] | None = None
    storage_class: str = "STANDARD"
    # Server-side encryption of the stored bytes (eucalite/s3/sse.py's record of it)
    sse: dict | None = None
    # SSE-C: the customer's key for this write (never stored; sse holds what checks it)
    sse_customer: sse.CustomerKey | None = None
    # Object Lock: retention mode and date, and legal hold (None: the write set none)
    lock_mode: str | None = None
    lock_until: dt.datetime | None = None
    legal_hold: bool | None = None


@dataclass
class Deleted:
    key: str
    version_id: str | None = None
    delete_marker: bool = False
    delete_marker_version_id: str | None = None


def header_safe(value: str) -> bool:
    """Whether *value* can travel as an HTTP header value: Latin-1 (all HTTP/1.1 carries)
    without control characters, tab apart (a CR or LF would end the header and start one
    the client never sent)."""
    return all(ch == "\t" or " " <= ch <= "~" or "\xa0" <= ch <= "\xff" for ch in value)


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_header(name: str, value: str) -> None:
    """InvalidArgument unless header *name* (a token) with *value* can be sent as is."""
    if not name or not set(name) <= _TOKEN or not header_safe(value):
        raise InvalidArgument("Header value cannot be represented using "
                              "ISO-8859-1.", ArgumentName=name, ArgumentValue=value)


def check_attributes(attributes: Attributes) -> None:
    """Every value an object's GET and HEAD echo as a header must be one (check_header):
    refused before anything is stored, so no later read can fail on it."""
    if attributes.content_type is not None:
        check_header("Content-Type", attributes.content_type)
    for name, value in attributes.headers.items():
        check_header(name, value)
    for name, value in attributes.meta.items():
        check_header(f"x-amz-meta-{name}", value)


def validate_key(key: str) -> None:
    if not key:
        raise InvalidArgument("Object key must not be empty.")
    size = len(key.encode("utf-8"))         # the limit is in bytes, not characters
    if size > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long", Size=str(size),
                              MaxSizeAllowed=str(MAX_KEY_BYTES))


# --- reading ----------------------------------------------------------------------------

# Statements of every object read and write, built once: building a select and its cache key
# costs more than running it (they are compiled once and cached either way).
_OF_KEY = ObjectVersion.key == bindparam("key")
_IS_LATEST = _OF_KEY & ObjectVersion.is_latest.is_(True)
_IS_VERSION = _OF_KEY & (ObjectVersion.version_id == bindparam("version_id"))
# the two rows a new version displaces: the latest one and the null version
_DISPLACED = _OF_KEY & (ObjectVersion.is_latest.is_(True)
                        | (ObjectVersion.version_id == NULL_VERSION))
_IN_BUCKET = ObjectVersion.bucket_id == bindparam("bucket_id")
_LATEST = db.select(ObjectVersion).where(_IN_BUCKET, _IS_LATEST)
_VERSION = db.select(ObjectVersion).where(_IN_BUCKET, _IS_VERSION)
_LATEST_AND_NULL = db.select(ObjectVersion).where(_IN_BUCKET, _DISPLACED)
# The same lookups together with the bucket's (buckets.find_with): one query, not two, and
# plain rows (LoadedVersion), not ORM objects.
_BUCKET_LATEST = buckets.with_rows(LoadedVersion, _IS_LATEST)
_BUCKET_VERSION = buckets.with_rows(LoadedVersion, _IS_VERSION)
_BUCKET_DISPLACED = buckets.with_rows(LoadedVersion, _DISPLACED)
_TABLE = ObjectVersion.__table__
_INSERT = _TABLE.insert()
#: A new version's columns a write does not name: their (scalar) defaults.
_UNSET = {column.key: column.default.arg if column.default is not None
          and column.default.is_scalar else None
          for column in _TABLE.c if not column.primary_key}
_DEMOTE = _TABLE.update().where(_TABLE.c.id == bindparam("row_id")).values(is_latest=False)
_REMOVE = _TABLE.delete().where(_TABLE.c.id == bindparam("row_id"))


def latest(bucket: Bucket, key: str) -> ObjectVersion | None:
    return db.session.execute(_LATEST, {"bucket_id": bucket.id, "key": key}
                              ).scalar_one_or_none()


def find_version(bucket: Bucket, key: str, version_id: str | None) -> ObjectVersion | None:
    if version_id is None:
        return latest(bucket, key)
    return db.session.execute(_VERSION, {"bucket_id": bucket.id, "key": key,
                                         "version_id": version_id}).scalar_one_or_none()


def get(requester: Principal | None, bucket_name: str, key: str,
        version_id: str | None = None, action: str = "s3:GetObject") -> LoadedVersion:
    """The version a GET/HEAD reads, checked for access (a plain copy of its row).

    A missing key is NoSuchKey for those allowed to list the bucket and AccessDenied for
    others (S3 does not reveal what exists). A delete marker reads as NoSuchKey (latest) or
    MethodNotAllowed (by version id), both with ``x-amz-delete-marker``.
    """
    if version_id is None:
        bucket, found = buckets.find_with(bucket_name, _BUCKET_LATEST, LoadedVersion,
                                          key=key)
    else:
        bucket, found = buckets.find_with(bucket_name, _BUCKET_VERSION, LoadedVersion,
                                          key=key, version_id=version_id)
        if action == "s3:GetObject":
            action = "s3:GetObjectVersion"
    version = found[0] if found else None
    if version is None:
        if version_id is not None and not _valid_version_id(version_id):
            raise InvalidArgument("Invalid version id specified",
                                  ArgumentName="versionId", ArgumentValue=version_id)
        if authz.allowed(requester, "s3:ListBucket", bucket):
            if version_id is not None:
                raise NoSuchVersion("The specified version does not exist.",
                                    Key=key, VersionId=version_id)
            raise NoSuchKey(key)
        raise AccessDenied()
    if version.delete_marker:
        # A deleted key reads like a missing one: only those who may list the bucket learn
        # that it (and its marker's version id) exists.
        if not authz.allowed(requester, "s3:ListBucket", bucket):
            raise AccessDenied()
        headers = {"x-amz-delete-marker": "true", "x-amz-version-id": version.version_id}
        if version_id is None:
            error = NoSuchKey(key)
        else:
            error = MethodNotAllowed("The specified method is not allowed against this "
                                     "resource.", Method="GET", ResourceType="DeleteMarker")
        error.headers = headers
        raise error
    authz.require(requester, action, bucket, version)
    return version


def _valid_version_id(version_id: str) -> bool:
    """Whether *version_id* could be one this store issues (URL-safe base64, or "null"):
    ASCII only, as it is echoed in ``x-amz-version-id`` (``'٣'.isalnum()`` is true)."""
    return version_id == NULL_VERSION or (0 < len(version_id) <= 64 and version_id.isascii()
                                          and all(ch.isalnum() or ch in "-_=."
                                                  for ch in version_id))


# --- writing ----------------------------------------------------------------------------

def put(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
        reader, attributes: Attributes, *, limit: int = MAX_PUT_SIZE,
        check_access: bool = True, bucket: Bucket | None = None,
        precondition=None) -> LoadedVersion:
    """PutObject: stream *reader* (a payload.BodyReader) into a new version of *key*.

    The body is verified while it streams (the reader raises on a bad digest or signature);
    nothing becomes visible until the data is durable and the version row committed.
    *bucket*, when the caller already looked it up in this request, saves a query.
    """
    validate_key(key)
    check_attributes(attributes)
    bucket = bucket if bucket is not None else buckets.find(bucket_name)
    if check_access:
        authz.require(requester, "s3:PutObject", bucket, key=key)
    store = store.on(bucket.backend)         # the bucket's data goes to its backend
    db.session.rollback()                    # hold no transaction while the body streams
    reader, attributes.sse = sse.encrypt(store.root, reader, attributes.sse,
                                         attributes.sse_customer)
    try:
        stored = store.write(reader, limit=limit)
    except TooLarge:
        raise EntityTooLarge("Your proposed upload exceeds the maximum "
                             "allowed size", MaxSizeAllowed=str(limit))
    checksum = None
    if getattr(reader, "checksum_algorithm", None):
        checksum = (reader.checksum_algorithm, reader.checksum_b64, "FULL_OBJECT")
    return record(store, requester, bucket_name, key, [stored], attributes,
                  etag=reader.md5_hex, checksum=checksum, precondition=precondition)


def record(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
           segments: list[Stored], attributes: Attributes, *, etag: str,
           checksum: tuple[str, str, str] | None = None,
           parts_count: int | None = None, parts: list[dict] | None = None,
           in_transaction=None, precondition=None,
           free_on_failure: bool = True) -> LoadedVersion:
    """Make stored *segments* the newest version of *key*; frees what that replaces.
    Returns the new version's row as written (a plain copy: the commit made it final).

    *parts* describes a multipart object's parts (``parts_json``). *in_transaction*, if
    given, runs inside the same write transaction just before the
    commit (CompleteMultipartUpload removes its upload there, so both happen or neither).
    *precondition*, if given, is called with the bucket under the write lock before
    anything changes, and raises to refuse the write (conditional writes).
    On any failure the segments are removed (unless *free_on_failure* is False), so an
    error leaves nothing behind.
    """
    replaced: list[str] = []
    try:
        write_lock()
        # the bucket again (it may have been deleted meanwhile) and the rows this replaces
        bucket, displaced = buckets.find_with(bucket_name, _BUCKET_DISPLACED, LoadedVersion,
                                              key=key)
        if precondition is not None:
            precondition(bucket)
        version_id = ids.version_id() if bucket.versioning == "Enabled" else NULL_VERSION
        replaced = _retire_latest(bucket, displaced, keep_null=False)
        objectlock.settle(bucket, attributes)
        quotas.check_object(requester, bucket.owner_id, bucket.id, bucket_name, key,
                            sum(segment.size for segment in segments))
        owner, acl_json = ownership.new_object(
            bucket, requester.account_id if requester else bucket.owner_id, attributes.acl)
        values = {
            **_UNSET, "bucket_id": bucket.id, "key": key, "version_id": version_id,
            "is_latest": True, "size": sum(segment.size for segment in segments),
            "etag": etag, "last_modified": utcnow(), "owner_id": owner,
            "content_type": attributes.content_type, "storage_class": attributes.storage_class,
            "parts_count": parts_count, "segments_json": _segments_json(segments),
            "lock_mode": attributes.lock_mode, "lock_until": attributes.lock_until,
            "legal_hold": attributes.legal_hold,
            "headers_json": dump_json(attributes.headers or None),
            "meta_json": dump_json(attributes.meta or None), "acl_json": dump_json(acl_json),
            "tags_json": dump_json(attributes.tags or None),
            "sse_json": dump_json(attributes.sse), "parts_json": dump_json(parts)}
        if checksum:
            values["checksum_algorithm"], values["checksum_value"], \
                values["checksum_type"] = checksum
        # one Core statement: the ORM's unit of work costs several times the INSERT
        row_id = execute_core(_INSERT, values).inserted_primary_key[0]
        version = LoadedVersion({"id": row_id, **values})
        if in_transaction is not None:
            in_transaction(bucket)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if free_on_failure:
            store.delete(segment.path for segment in segments)
        raise
    store.delete(replaced)
    return version


def _segments_json(segments: list[Stored]) -> str:
    return json.dumps([[segment.path, segment.size] for segment in segments])


def _displaced(bucket: Bucket, key: str) -> list[ObjectVersion]:
    """The rows a new version of *key* displaces: its latest version and its null one."""
    return list(db.session.execute(_LATEST_AND_NULL, {"bucket_id": bucket.id, "key": key}
                                   ).scalars())


def _retire_latest(bucket: Bucket, rows: list[ObjectVersion], keep_null: bool) -> list[str]:
    """Before a new version of a key lands: demote its current latest (of *rows*, from
    :func:`_displaced`), and in buckets not versioning-Enabled remove the ``null`` version
    it replaces. Returns segment paths to free after commit. Runs inside the caller's write
    transaction, with a statement per row changed (the rows' objects are not updated: the
    commit expires them)."""
    replaced: list[str] = []
    null = None
    if bucket.versioning != "Enabled" and not keep_null:
        null = next((row for row in rows if row.version_id == NULL_VERSION), None)
        if null is not None:
            objectlock.check_removal(None, bucket, null)
            replaced = [path for path, _ in null.segments]
            execute_core(_REMOVE, {"row_id": null.id})
    for row in rows:
        if row.is_latest and row is not null:
            execute_core(_DEMOTE, {"row_id": row.id})
    return replaced


def copy(store: ObjectStore, requester: Principal | None, source: ObjectVersion,
         bucket_name: str, key: str, attributes: Attributes,
         source_customer: sse.CustomerKey | None = None, *,
         precondition=None) -> ObjectVersion:
    """CopyObject: new names for the source's immutable segments (hard links, or the
    backend's own CopyObject: see ObjectStore.link), so even a large copy moves no data; checksums and ETag carry over (a source without a checksum is
    read once for S3's default one). A copy under another key (or another kind of
    encryption) is re-encrypted instead (sse.for_copy); *source_customer* is the source's
    SSE-C key."""
    validate_key(key)
    check_attributes(attributes)
    bucket = buckets.find(bucket_name)
    authz.require(requester, "s3:PutObject", bucket, key=key)
    store = store.on(bucket.backend)         # the copy's data goes where its bucket's does
    segments, source_key = source.segments, source.key
    checksum = None
    if source.checksum_algorithm:
        checksum = (source.checksum_algorithm, source.checksum_value, source.checksum_type)
    etag, parts_count, parts = source.etag, source.parts_count, source.get_json("parts")
    try:
        attributes.sse, rewrite = sse.for_copy(store, source, attributes.sse,
                                               attributes.sse_customer, source_customer)
        # A source without a checksum: the copy gets S3's default one, of its bytes.
        unsummed = None if checksum else sse.read(store, source, customer=source_customer)
    except Gone:
        raise NoSuchKey(source_key) from None
    db.session.rollback()               # the source row may be gone once this ends
    linked: list[Stored] = []
    try:
        if rewrite is not None:
            linked, etag = rewrite.write(store)
            attributes.sse = rewrite.record
        for path, size in segments if rewrite is None else ():
            linked.append(store.link(path, size))
        if unsummed is not None:
            checksum = (checksums.DEFAULT, checksums.of_chunks(checksums.DEFAULT, unsummed),
                        checksums.FULL_OBJECT)
    except BaseException as error:
        store.delete(item.path for item in linked)
        if isinstance(error, Gone):     # the source was replaced or deleted meanwhile
            raise NoSuchKey(source_key) from None
        raise
    return record(store, requester, bucket_name, key, linked, attributes, etag=etag,
                  checksum=checksum, parts_count=parts_count, parts=parts,
                  precondition=precondition)


def delete(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
           version_id: str | None = None, *, check_access: bool = True,
           bypass_governance: bool = False) -> Deleted:
    """DeleteObject, as S3: deleting what does not exist succeeds. A version Object Lock
    protects is AccessDenied (*bypass_governance*: the request asked to bypass GOVERNANCE)."""
    bucket = buckets.find(bucket_name)
    if check_access:
        action = "s3:DeleteObjectVersion" if version_id else "s3:DeleteObject"
        authz.require(requester, action, bucket, key=key)
    if version_id is not None and not _valid_version_id(version_id):
        raise InvalidArgument("Invalid version id specified",
                              ArgumentName="versionId", ArgumentValue=version_id)
    freed: list[str] = []
    write_lock()
    bucket = buckets.find(bucket_name)
    if version_id is not None:
        result = _delete_version(requester, bucket, key, version_id, freed, bypass_governance)
    elif bucket.versioning is None:
        null = latest(bucket, key)
        if null is not None:
            _may_go(requester, bucket, null, bypass_governance)
            freed = [path for path, _ in null.segments]
            db.session.delete(null)
        result = Deleted(key)
    else:
        # Versioned: a delete marker becomes the latest version.
        freed = _retire_latest(bucket, _displaced(bucket, key),
                               keep_null=bucket.versioning == "Enabled")
        marker_id = ids.version_id() if bucket.versioning == "Enabled" else NULL_VERSION
        owner = requester.account_id if requester else bucket.owner_id
        db.session.add(ObjectVersion(bucket_id=bucket.id, key=key, version_id=marker_id,
                                     is_latest=True, delete_marker=True, size=0, etag="",
                                     last_modified=utcnow(), owner_id=owner,
                                     segments_json="[]"))
        result = Deleted(key, version_id=marker_id, delete_marker=True,
                         delete_marker_version_id=marker_id)
    db.session.commit()
    store.delete(freed)
    return result


def _may_go(requester: Principal | None, bucket: Bucket, version: ObjectVersion,
            bypass_governance: bool) -> None:
    """objectlock.check_removal inside a delete's write transaction, which a refusal ends
    (and with it the write lock)."""
    try:
        objectlock.check_removal(requester, bucket, version, bypass=bypass_governance)
    except BaseException:
        db.session.rollback()
        raise


def _delete_version(requester: Principal | None, bucket: Bucket, key: str, version_id: str,
                    freed: list[str], bypass_governance: bool) -> Deleted:
    version = find_version(bucket, key, version_id)
    if version is None:
        return Deleted(key, version_id=version_id)
    _may_go(requester, bucket, version, bypass_governance)
    freed.extend(path for path, _ in version.segments)
    was_latest = version.is_latest
    db.session.delete(version)
    db.session.flush()
    if was_latest:
        newest = db.session.execute(db.select(ObjectVersion).filter_by(
            bucket_id=bucket.id, key=key).order_by(ObjectVersion.id.desc()).limit(1)
        ).scalar_one_or_none()
        if newest is not None:
            newest.is_latest = True
    return Deleted(key, version_id=version_id, delete_marker=version.delete_marker,
                   delete_marker_version_id=version_id if version.delete_marker else None)


def set_document(requester: Principal | None, version: ObjectVersion, name: str,
                 value: Any) -> None:
    """Replace an object version's ACL or tag set (``name`` is "acl" or "tags")."""
    write_lock()
    fresh = db.session.get(ObjectVersion, version.id)
    if fresh is None:
        raise NoSuchKey(version.key)
    fresh.set_json(name, value)
    db.session.commit()


def http_date(value: dt.datetime) -> str:
    """RFC 7231 date as S3 sends Last-Modified."""
    return value.replace(tzinfo=dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
