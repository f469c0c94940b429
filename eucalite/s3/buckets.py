"""Bucket operations: create, delete, list, look up, and the whole-document settings
(ACL, policy, CORS, lifecycle, tags, versioning) a bucket carries.

Functions take the requester (a Principal, or None when anonymous) and plain values, check
access through :mod:`eucalite.s3.authz`, and commit their own changes.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from sqlalchemy import bindparam

from .. import quotas
from ..api import services
from ..accounts import Account, Principal
from ..db import bytewise, db, execute_core, once_per_transaction, write_lock
from ..errors.s3 import (AccessDenied, BucketAlreadyExists, BucketAlreadyOwnedByYou,
                         BucketNotEmpty, IllegalVersioningConfigurationException,
                         InvalidBucketName, InvalidBucketState, NoSuchBucket, NoSuchBucketPolicy,
                         NoSuchCORSConfiguration, NoSuchLifecycleConfiguration,
                         NoSuchPublicAccessBlockConfiguration, NoSuchTagSet)
from . import authz, ownership
from .models import (Bucket, Loaded, LoadedBucket, MultipartUpload, ObjectVersion,
                     UploadPart)

#: Names eucalite's own endpoints use at the root of the S3 URL space.
RESERVED = frozenset({"services", "console"})

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


def validate_name(name: str) -> None:
    """S3's bucket naming rules for new buckets (general purpose buckets)."""
    problem = None
    if not _BUCKET_NAME.match(name):
        problem = ("Bucket names are 3-63 characters of lower-case letters, digits, dots and "
                   "hyphens, beginning and ending with a letter or digit.")
    elif ".." in name or ".-" in name or "-." in name:
        problem = "Bucket names must not contain adjacent periods or a period beside a hyphen."
    elif name.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or name.endswith(
            ("-s3alias", "--ol-s3", ".mrap", "--x-s3")):
        problem = "Bucket names must not use a prefix or suffix reserved by S3."
    elif name in RESERVED:
        problem = f"The bucket name {name} is reserved for eucalite's own endpoints."
    else:
        try:
            ipaddress.IPv4Address(name)
            problem = "Bucket names must not be formatted as an IP address."
        except ValueError:
            pass
    if problem:
        raise InvalidBucketName("The specified bucket is not valid. " + problem,
                                BucketName=name)


# built once: building the select costs more than running it
_BY_NAME = db.select(Bucket).where(Bucket.name == bindparam("name"))


def find(name: str) -> Bucket:
    """The bucket *name* (NoSuchBucket if none), queried once per transaction."""
    bucket = once_per_transaction(("s3.bucket", name), lambda: db.session.execute(
        _BY_NAME, {"name": name}).scalar_one_or_none())
    if bucket is None:
        raise NoSuchBucket(name)
    return bucket


_BUCKETS = Bucket.__table__
_BUCKET_COLUMNS = LoadedBucket.columns()


def with_rows(loaded: type[Loaded], on: Any) -> Any:
    """A statement for :func:`find_with`: the bucket named ``:name`` with each row of
    *loaded*'s model (a :class:`.models.Loaded` class; its table has a ``bucket_id``) in
    it that matches *on*, as Core columns: the bucket's, then the row's."""
    table = loaded.model.__table__
    return db.select(*_BUCKET_COLUMNS, *loaded.columns()).select_from(
        _BUCKETS.outerjoin(table, (table.c.bucket_id == _BUCKETS.c.id) & on)).where(
        _BUCKETS.c.name == bindparam("name"))


_ROW_BY_NAME = db.select(*_BUCKET_COLUMNS).where(_BUCKETS.c.name == bindparam("name"))


def read(name: str) -> Bucket | LoadedBucket:
    """:func:`find` for a request that only reads the bucket (PutObject before its body
    streams): the bucket as a plain copy (see :func:`find_with`), remembered for the
    transaction under the same name."""
    def load() -> LoadedBucket | None:
        row = execute_core(_ROW_BY_NAME, {"name": name}).first()
        return None if row is None else LoadedBucket.from_row(row)
    bucket = once_per_transaction(("s3.bucket", name), load)
    if bucket is None:
        raise NoSuchBucket(name)
    return bucket


def find_with(name: str, statement: Any, loaded: type[Loaded],
              **params: Any) -> tuple[LoadedBucket, list]:
    """:func:`find` and a lookup of rows in the bucket in one query, for the hot read
    paths: the bucket *name* (NoSuchBucket if none) and the rows *statement* (from
    :func:`with_rows` with *loaded*) joins to it, both as plain copies (not tracked by the
    session: read them, do not change them). The bucket is then remembered for the
    transaction as :func:`find` does, so a later :func:`find` in the same transaction
    answers the copy; writers start a transaction of their own (``write_lock``) first."""
    rows = execute_core(statement, {"name": name, **params}).all()
    if not rows:
        raise NoSuchBucket(name)
    width = len(_BUCKET_COLUMNS)
    first = LoadedBucket.from_row(rows[0][:width])
    bucket = once_per_transaction(("s3.bucket", name), lambda: first)
    # an outer join: a bucket without such rows comes with one row of NULLs (its id too)
    return bucket, [loaded.from_row(row[width:]) for row in rows if row[width] is not None]


def get(requester: Principal | None, name: str, action: str, **context: Any) -> Bucket:
    """The bucket *name* if *requester* may perform *action* on it (else AccessDenied)."""
    bucket = find(name)
    authz.require(requester, action, bucket, context=context)
    return bucket


def owner_name(account_id: str) -> str:
    account = db.session.get(Account, account_id)
    return account.name if account else account_id


def list_for(requester: Principal) -> list[Bucket]:
    """ListBuckets: the requester's account's buckets, by name."""
    return list_page(requester)[0]


def list_page(requester: Principal, *, prefix: str = "", after: str | None = None,
              limit: int | None = None) -> tuple[list[Bucket], bool]:
    """ListBuckets paged: the requester's account's buckets whose names start with *prefix*
    and sort after *after*, by name; at most *limit* (None: all). Also whether more follow."""
    authz.require_identity(requester, "s3:ListAllMyBuckets")
    query = db.select(Bucket).filter_by(owner_id=requester.account_id)
    if prefix:
        query = query.where(Bucket.name.startswith(prefix, autoescape=True))
    if after is not None:
        query = query.where(bytewise(Bucket.name) > after)
    query = query.order_by(bytewise(Bucket.name))
    if limit is not None:
        query = query.limit(limit + 1)
    found = list(db.session.execute(query).scalars())
    more = limit is not None and len(found) > limit
    return found[:limit] if more else found, more


def create(requester: Principal | None, name: str, location: str, acl: dict | None,
           headers: dict[str, str] | None = None) -> Bucket:
    """CreateBucket. Buckets are global: another account's name is BucketAlreadyExists.
    The bucket's ownership controls and Block Public Access come from the request's
    *headers* and the cloud's defaults (:func:`.ownership.new_bucket`). Its objects' data
    goes to the cloud's ``s3_backend`` of the time, for good (a later switch leaves it).

    This cloud is one region, so any LocationConstraint is accepted and recorded (clients
    configured for another region name still work); GetBucketLocation reports it back.
    """
    if requester is None:
        raise AccessDenied()
    validate_name(name)
    authz.require_identity(requester, "s3:CreateBucket", name)
    headers = headers or {}
    object_lock = headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true"
    for action in _create_also_needs(headers, object_lock):
        authz.require_identity(requester, action, name)
    mode, block = ownership.new_bucket(headers, acl)
    write_lock()
    existing = db.session.execute(db.select(Bucket).filter_by(name=name)).scalar_one_or_none()
    if existing is not None:
        db.session.rollback()
        if existing.owner_id == requester.account_id:
            raise BucketAlreadyOwnedByYou("Your previous request to create the named bucket "
                                          "succeeded and you already own it.", BucketName=name)
        raise BucketAlreadyExists("The requested bucket name is not available. The bucket "
                                  "namespace is shared by all users of the system. Please "
                                  "select a different name and try again.", BucketName=name)
    quotas.check(requester, "s3:CreateBucket", {"s3:quota-bucketnumber": 1},
                 resource=f"arn:aws:s3:::{name}")
    bucket = Bucket(name=name, owner_id=requester.account_id, location=location or "",
                    creator_user_id=quotas.creator(requester), ownership=mode,
                    object_lock_enabled=object_lock,
                    versioning="Enabled" if object_lock else None,
                    # its data goes to the cloud's backend of today, for good
                    backend=services().s3.store.default)
    bucket.set_json("acl", acl)
    bucket.set_json("public_access_block", block)
    db.session.add(bucket)
    db.session.commit()
    return bucket


def _create_also_needs(headers: dict[str, str], object_lock: bool) -> list[str]:
    """What a CreateBucket request needs beside ``s3:CreateBucket``, as AWS documents it:
    the Object Lock and versioning permissions for a lock-enabled bucket, ownership
    controls' for an ``x-amz-object-ownership`` header, and ``s3:PutBucketAcl`` for any
    ACL but ``private``."""
    actions = []
    if object_lock:
        actions += ["s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning"]
    if "x-amz-object-ownership" in headers:
        actions.append("s3:PutBucketOwnershipControls")
    canned = headers.get("x-amz-acl", "private").strip().lower()
    if canned != "private" or any(name.startswith("x-amz-grant-") for name in headers):
        actions.append("s3:PutBucketAcl")
    return actions


def ensure(requester: Principal, name: str) -> Bucket:
    """The bucket *name*, created for *requester* unless its account owns it already
    (another account's bucket of that name is BucketAlreadyExists)."""
    try:
        return create(requester, name, "", None)
    except BucketAlreadyOwnedByYou:
        return find(name)


def delete(requester: Principal | None, name: str, store) -> None:
    """DeleteBucket: only an empty bucket (no versions, no delete markers). Unfinished
    multipart uploads go with it, as in S3 (the rows cascade); their part files are freed
    from *store* (the ObjectStore) once that commits."""
    bucket = get(requester, name, "s3:DeleteBucket")
    write_lock()
    bucket = find(name)
    has_objects = db.session.execute(db.select(ObjectVersion.id).filter_by(
        bucket_id=bucket.id).limit(1)).first()
    if has_objects:
        db.session.rollback()
        raise BucketNotEmpty("The bucket you tried to delete is not empty",
                             BucketName=name)
    parts = list(db.session.execute(
        db.select(UploadPart.path).join(MultipartUpload).filter(
            MultipartUpload.bucket_id == bucket.id)).scalars())
    db.session.delete(bucket)
    db.session.commit()
    store.delete(parts)


# --- whole-document settings ------------------------------------------------------------

#: setting -> (action to read, action to write, action to delete, error when unset)
SETTINGS = {
    "acl": ("s3:GetBucketAcl", "s3:PutBucketAcl", None, None),
    "policy": ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
               NoSuchBucketPolicy),
    "cors": ("s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS",
             NoSuchCORSConfiguration),
    "lifecycle": ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
                  "s3:PutLifecycleConfiguration", NoSuchLifecycleConfiguration),
    "tags": ("s3:GetBucketTagging", "s3:PutBucketTagging", "s3:PutBucketTagging",
             NoSuchTagSet),
    "public_access_block": ("s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
                            "s3:PutBucketPublicAccessBlock",
                            NoSuchPublicAccessBlockConfiguration),
}


def get_setting(requester: Principal | None, name: str, setting: str) -> Any:
    """The stored document for *setting*, or the S3 'no such configuration' error."""
    read_action, _, _, missing = SETTINGS[setting]
    bucket = get(requester, name, read_action)
    value = bucket.get_json(setting)
    if value is None and missing is not None:
        raise missing(BucketName=name)
    return value


def put_setting(requester: Principal | None, name: str, setting: str, value: Any) -> None:
    _, write_action, _, _ = SETTINGS[setting]
    _store_setting(requester, name, write_action, setting, value)


def delete_setting(requester: Principal | None, name: str, setting: str) -> None:
    _, _, delete_action, _ = SETTINGS[setting]
    _store_setting(requester, name, delete_action, setting, None)


def _store_setting(requester: Principal | None, name: str, action: str, setting: str,
                   value: Any) -> None:
    """Store *value* as the bucket's *setting* (None removes it) if *requester* may perform
    *action*; the row is read again under the write lock."""
    get(requester, name, action)
    write_lock()
    bucket = find(name)
    bucket.set_json(setting, value)
    db.session.commit()


def set_versioning(requester: Principal | None, name: str, status: str) -> None:
    """PutBucketVersioning: Enabled or Suspended (a bucket can never go back to unversioned)."""
    if status not in ("Enabled", "Suspended"):
        raise IllegalVersioningConfigurationException(
            "The versioning configuration specified in the request is invalid.")
    get(requester, name, "s3:PutBucketVersioning")
    write_lock()
    bucket = find(name)
    if bucket.object_lock_enabled and status != "Enabled":
        db.session.rollback()
        raise InvalidBucketState("An Object Lock configuration is present on this bucket, so "
                                 "the versioning state cannot be changed.", BucketName=name)
    bucket.versioning = status          # Suspended on a never-versioned bucket too, as S3
    db.session.commit()
