"""Object Ownership and Block Public Access of a bucket: what AWS has defaulted new buckets
to since April 2023 (ACLs disabled, all public access blocked), in one place.

* Ownership controls (``Bucket.ownership``): ``BucketOwnerEnforced`` disables ACLs - every
  new object is the bucket owner's, access is decided by policies only, and a request that
  sets an ACL other than ``bucket-owner-full-control`` (or its equivalent grant) is
  ``AccessControlListNotSupported``; ``BucketOwnerPreferred`` gives the bucket owner the
  objects written with ``bucket-owner-full-control``; ``ObjectWriter`` (and None, a bucket
  made before ownership controls existed) leaves objects to their writers.
* Block Public Access (``Bucket.public_access_block_json``): ``BlockPublicAcls`` refuses
  public ACLs on writes, ``IgnorePublicAcls`` makes public grants not count,
  ``BlockPublicPolicy`` refuses a public bucket policy, ``RestrictPublicBuckets`` limits a
  public policy to the bucket owner's account. :func:`is_public` is AWS's definition of a
  public policy. Only the bucket-level settings exist (no account-level s3control block).

The adapters call :func:`check_write_acl` / :func:`check_acl_update` /
:func:`check_policy` before a change, :func:`new_bucket` when a bucket is made,
:func:`new_object` when a version is recorded; :mod:`eucalite.s3.authz` calls
:func:`in_force` for every access decision.
"""
from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any, Mapping

from ..accounts import Principal
from ..api import services
from ..db import db, write_lock
from ..errors.s3 import (AccessControlListNotSupported, AccessDenied, InvalidArgument,
                         InvalidBucketAclWithObjectOwnership, MalformedXML,
                         NoSuchBucket)
from ..policy.document import ALLOW, Policy, Statement
from . import acl, xmlbody
from .models import Bucket
from .xmlout import add, root

ENFORCED, PREFERRED, WRITER = "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"
MODES = (ENFORCED, PREFERRED, WRITER)
OWNERSHIP_HEADER = "x-amz-object-ownership"
BUCKET_OWNER_FULL_CONTROL = "bucket-owner-full-control"
ACL_HEADERS = ("x-amz-acl", *acl.GRANT_HEADERS)

BLOCK_PUBLIC_ACLS, IGNORE_PUBLIC_ACLS = "BlockPublicAcls", "IgnorePublicAcls"
BLOCK_PUBLIC_POLICY, RESTRICT_PUBLIC_BUCKETS = "BlockPublicPolicy", "RestrictPublicBuckets"
BLOCK_SETTINGS = (BLOCK_PUBLIC_ACLS, IGNORE_PUBLIC_ACLS, BLOCK_PUBLIC_POLICY,
                  RESTRICT_PUBLIC_BUCKETS)
PUBLIC_GROUPS = (acl.ALL_USERS, acl.AUTHENTICATED_USERS)


# --- documents ------------------------------------------------------------------------

def parse_ownership_controls(body: bytes) -> str:
    """The ObjectOwnership of a PutBucketOwnershipControls body (one rule); MalformedXML
    for anything else."""
    document = xmlbody.parse(body, "OwnershipControls")
    rules = document.findall("Rule")
    if len(rules) != 1 or len(list(document)) != 1:
        raise MalformedXML()
    mode = (xmlbody.child_text(rules[0], "ObjectOwnership") or "").strip()
    if mode not in MODES:
        raise MalformedXML()
    return mode


def ownership_controls_xml(mode: str) -> Any:
    document = root("OwnershipControls")
    add(add(document, "Rule"), "ObjectOwnership", mode)
    return document


def parse_public_access_block(body: bytes) -> dict[str, bool]:
    """A PublicAccessBlockConfiguration body: the four settings, absent ones false;
    MalformedXML for another element or a value that is not true/false."""
    document = xmlbody.parse(body, "PublicAccessBlockConfiguration")
    settings = dict.fromkeys(BLOCK_SETTINGS, False)
    for element in document:
        value = (element.text or "").strip().lower()
        if element.tag not in settings or value not in ("true", "false"):
            raise MalformedXML()
        settings[element.tag] = value == "true"
    return settings


def public_access_block_xml(settings: Mapping[str, bool]) -> Any:
    document = root("PublicAccessBlockConfiguration")
    for name in BLOCK_SETTINGS:
        add(document, name, bool(settings.get(name)))
    return document


def policy_status_xml(public: bool) -> Any:
    document = root("PolicyStatus")
    add(document, "IsPublic", public)
    return document


# --- new buckets ----------------------------------------------------------------------

def new_bucket(headers: Mapping[str, str] | None,
               acl_json: dict | None) -> tuple[str | None, dict[str, bool] | None]:
    """(ownership, public access block) of a bucket CreateBucket makes: the request's
    ``x-amz-object-ownership`` or the cloud's ``s3_default_object_ownership``, and every
    block setting on when ``s3_default_block_public_access`` says so (AWS's defaults).

    As AWS: an ACL other than ``private`` or bucket-owner-full-control on a bucket whose
    ACLs will be disabled is ``InvalidBucketAclWithObjectOwnership``; ``private`` with no
    ownership header (what rclone sends for every new bucket) makes the default
    BucketOwnerEnforced a BucketOwnerPreferred."""
    headers = headers or {}
    config = services().s3.config
    asked = headers.get(OWNERSHIP_HEADER)
    if asked is not None and asked.strip() not in MODES:
        raise InvalidArgument(f"Invalid x-amz-object-ownership header: {asked}",
                              ArgumentName=OWNERSHIP_HEADER, ArgumentValue=asked)
    mode = asked.strip() if asked is not None else (
        config.get("s3_default_object_ownership") or None)
    requested = acl.Acl.from_json(acl_json) if acl_json is not None else None
    canned = (headers.get("x-amz-acl") or "").strip()
    if mode == ENFORCED and requested is not None:
        if canned == "private":
            mode = mode if asked is not None else PREFERRED
        elif not _bucket_owner_only(canned or None, requested, requested.owner):
            raise InvalidBucketAclWithObjectOwnership()
    block = dict.fromkeys(BLOCK_SETTINGS, True) \
        if config.get("s3_default_block_public_access", True) else None
    return mode, block


# --- ACLs on writes -------------------------------------------------------------------

def _bucket_owner_only(canned: str | None, requested: acl.Acl, bucket_owner: str) -> bool:
    """Is *requested* ``bucket-owner-full-control`` or its equivalent, full control for the
    bucket owner and nothing else (the only ACL a bucket with ACLs disabled accepts)?"""
    if canned is not None:
        return canned.strip() == BUCKET_OWNER_FULL_CONTROL
    return bool(requested.grants) and all(
        grant.grantee_type == acl.CANONICAL_USER and grant.grantee == bucket_owner
        and grant.permission == acl.FULL_CONTROL for grant in requested.grants)


def _is_public_acl(requested: acl.Acl) -> bool:
    return any(grant.grantee in PUBLIC_GROUPS for grant in requested.grants)


def _block(bucket: Bucket) -> dict[str, bool]:
    return bucket.get_json("public_access_block") or {}


def check_acl_update(bucket: Bucket, canned: str | None, requested: acl.Acl) -> None:
    """Refuse an ACL (of a PutBucketAcl/PutObjectAcl, or sent with a write) that *bucket*
    does not take: any but bucket-owner-full-control while ACLs are disabled
    (``AccessControlListNotSupported``), a public one under BlockPublicAcls (AccessDenied).
    *canned* is the request's ``x-amz-acl``, None when the ACL came as grants or XML."""
    if bucket.ownership == ENFORCED and not _bucket_owner_only(
            canned, requested, acl.canonical_id(bucket.owner_id)):
        raise AccessControlListNotSupported()
    if _block(bucket).get(BLOCK_PUBLIC_ACLS) and _is_public_acl(requested):
        raise AccessDenied()


def check_write_acl(bucket_name: str, headers: Mapping[str, str]) -> None:
    """:func:`check_acl_update` for the ACL headers of a PUT, copy, CreateMultipartUpload
    or POST (lower-case *headers*); nothing to do (and no query) when there are none."""
    if not any(name in headers for name in ACL_HEADERS):
        return
    bucket = db.session.execute(db.select(Bucket).filter_by(name=bucket_name)
                                ).scalar_one_or_none()
    if bucket is None:
        return                          # the operation itself reports NoSuchBucket
    bucket_owner = acl.canonical_id(bucket.owner_id)
    requested = acl.acl_from_headers(headers, bucket_owner, bucket_owner)
    if requested is not None:
        check_acl_update(bucket, headers.get("x-amz-acl"), requested)


def new_object(bucket: Bucket, writer: str, acl_json: dict | None) -> tuple[str, dict | None]:
    """(owner, ACL to store) of a version account *writer* writes into *bucket* with
    *acl_json*: the bucket owner's, without an ACL, while ACLs are disabled; the bucket
    owner's when BucketOwnerPreferred and the writer gave it full control; else the
    writer's with its ACL."""
    if bucket.ownership == ENFORCED:
        return bucket.owner_id, None
    owner = acl.canonical_id(bucket.owner_id)
    if bucket.ownership == PREFERRED and acl_json is not None and writer != bucket.owner_id \
            and acl.Grant(acl.CANONICAL_USER, owner, acl.FULL_CONTROL) in \
            acl.Acl.from_json(acl_json).grants:
        return bucket.owner_id, acl.canned_acl("private", owner).to_json()
    return writer, acl_json


def check_ownership_change(bucket: Bucket, mode: str | None) -> None:
    """ACLs may be disabled only once the bucket's ACL grants nothing beyond its owner, as
    AWS requires (``InvalidBucketAclWithObjectOwnership``)."""
    stored = bucket.get_json("acl")
    if mode == ENFORCED and stored is not None and any(
            grant.grantee != acl.canonical_id(bucket.owner_id)
            for grant in acl.Acl.from_json(stored).grants):
        raise InvalidBucketAclWithObjectOwnership()


# --- public policies ------------------------------------------------------------------

#: Condition keys whose fixed values make an Allow statement non-public (AWS's list).
_LIMITING_KEYS = frozenset({
    "aws:sourcearn", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceowner",
    "aws:sourceaccount", "aws:principalaccount", "aws:principalarn", "aws:principalorgid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id", "aws:userid"})
_FIXED_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "StringLike",
                              "ArnEquals", "ArnLike"})


def _limits(condition) -> bool:
    """Does *condition* confine a statement to fixed values of a limiting key (or to a set
    of CIDRs narrower than the whole Internet)?"""
    if condition.if_exists or condition.qualifier == "ForAllValues" or not condition.values:
        return False
    if condition.key == "aws:sourceip":
        if condition.base != "IpAddress":
            return False
        try:
            return all(ipaddress.ip_network(value, strict=False).prefixlen > 0
                       for value in condition.values)
        except ValueError:
            return False
    return condition.key in _LIMITING_KEYS and condition.base in _FIXED_OPERATORS and all(
        "*" not in value and "?" not in value for value in condition.values)


def _public_statement(statement: Statement) -> bool:
    if statement.effect != ALLOW:
        return False
    open_principal = statement.not_principals is not None or any(
        principal[0] == "*" for principal in statement.principals or ())
    return open_principal and not any(_limits(c) for c in statement.conditions)


def is_public(policy: Policy) -> bool:
    """AWS's "public" policy: an Allow statement whose principal is everyone (or a
    NotPrincipal) not confined by a fixed value of a limiting condition key."""
    return any(_public_statement(statement) for statement in policy.statements)


def check_policy(bucket: Bucket, policy: Policy) -> None:
    """PutBucketPolicy of a public policy under BlockPublicPolicy: AccessDenied."""
    if _block(bucket).get(BLOCK_PUBLIC_POLICY) and is_public(policy):
        raise AccessDenied()


# --- the access decision --------------------------------------------------------------

def in_force(bucket: Bucket, owner_id: str, stored: acl.Acl, bucket_policy: Policy | None,
             requester: Principal | None) -> tuple[str, acl.Acl, Policy | None]:
    """The owner, ACL and bucket policy an access decision on *bucket* (or an object of it
    owned by *owner_id* under ACL *stored*) counts: with ACLs disabled the bucket owner
    owns everything and no grant counts; under IgnorePublicAcls grants to everyone or to
    every signed requester do not count; under RestrictPublicBuckets a public policy
    allows nobody outside the bucket owner's account (its Deny statements still count)."""
    if bucket.ownership == ENFORCED:
        owner_id = bucket.owner_id
        stored = acl.Acl(acl.canonical_id(owner_id), [])
    block = _block(bucket)
    if block.get(IGNORE_PUBLIC_ACLS) and _is_public_acl(stored):
        stored = acl.Acl(stored.owner, [grant for grant in stored.grants
                                        if grant.grantee not in PUBLIC_GROUPS])
    if bucket_policy is not None and block.get(RESTRICT_PUBLIC_BUCKETS) and (
            requester is None or requester.account_id != bucket.owner_id) \
            and is_public(bucket_policy):
        bucket_policy = replace(bucket_policy, statements=tuple(
            statement for statement in bucket_policy.statements if statement.effect != ALLOW))
    return owner_id, stored, bucket_policy


# --- storing the ownership controls ---------------------------------------------------

def store_ownership(bucket_name: str, mode: str | None) -> None:
    """Set (None: remove) the ownership controls of *bucket_name*, the row read again under
    the write lock; the caller has checked the requester may."""
    write_lock()
    bucket = db.session.execute(db.select(Bucket).filter_by(name=bucket_name)
                                ).scalar_one_or_none()
    if bucket is None:
        db.session.rollback()
        raise NoSuchBucket(bucket_name)
    try:
        check_ownership_change(bucket, mode)
    except InvalidBucketAclWithObjectOwnership:
        db.session.rollback()
        raise
    bucket.ownership = mode
    db.session.commit()


def owner_shown(bucket: Bucket, owner_id: str) -> str:
    """The owner S3 shows for a version (or delete marker) of *bucket* stored as *owner_id*'s:
    with ACLs disabled the bucket owner owns every object, whoever wrote or deleted it and
    whenever (before the setting too)."""
    return bucket.owner_id if bucket.ownership == ENFORCED else owner_id


def acl_shown(bucket: Bucket, acl_json: str | None, owner_id: str) -> tuple[str | None, str]:
    """(stored ACL, owner) GetObjectAcl shows for an object: with ACLs disabled, the bucket
    owner's full control whoever wrote it and whatever ACL it kept from before."""
    return (None if bucket.ownership == ENFORCED else acl_json), owner_shown(bucket, owner_id)
