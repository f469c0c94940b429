"""Object Lock: a bucket's lock configuration, each version's retention and legal hold, and
the one rule every path that removes or replaces a version's data asks (:func:`check_removal`).

A version is protected while it is under legal hold, or while its retention date is in the
future. COMPLIANCE retention can only be extended, by anyone; GOVERNANCE retention may be
shortened or removed, and a version under it deleted, only by a request that says
``x-amz-bypass-governance-retention: true`` from a caller allowed
``s3:BypassGovernanceRetention`` (the bucket-owning account's root always is; an IAM user
needs the permission). Lifecycle never bypasses: it skips protected versions
(:func:`protected`). Delete markers carry no lock, so adding or removing one is never refused.

Times are naive UTC, as every other time in the database.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Mapping

from ..accounts import Principal, utcnow
from ..db import db, writing
from ..errors.s3 import (AccessDenied, InvalidArgument, InvalidBucketState, InvalidRequest,
                         MalformedXML, NoSuchKey, NoSuchObjectLockConfiguration,
                         ObjectLockConfigurationNotFoundError)
from . import authz, buckets, xmlbody
from .models import Bucket, ObjectVersion

MODES = ("GOVERNANCE", "COMPLIANCE")
MODE_HEADER = "x-amz-object-lock-mode"
UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
HOLD_HEADER = "x-amz-object-lock-legal-hold"
BYPASS_HEADER = "x-amz-bypass-governance-retention"
MISSING_CONFIGURATION = "Bucket is missing Object Lock Configuration"
#: AWS's bounds on a default retention period
MAX_DAYS, MAX_YEARS = 36500, 100

_ISO = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?\Z")


def locked() -> AccessDenied:
    return AccessDenied("Access Denied because object protected by object lock.")


def bypass_requested(headers: Mapping[str, str]) -> bool:
    """Whether the request asks to bypass GOVERNANCE retention (the header says true)."""
    return (headers.get(BYPASS_HEADER) or "").strip().lower() == "true"


# --- the rule ------------------------------------------------------------------------------

def retention_active(version: ObjectVersion, now: dt.datetime | None = None) -> bool:
    """Whether *version* has a retention date still in the future."""
    return version.lock_until is not None and version.lock_until > (now or utcnow())


def protected(version: ObjectVersion, now: dt.datetime | None = None) -> bool:
    """Whether *version*'s data must stay, whoever asks (legal hold or any retention)."""
    return not version.delete_marker and bool(version.legal_hold
                                              or retention_active(version, now))


def _retention_may_yield(requester: Principal | None, bucket: Bucket, version: ObjectVersion,
                         bypass: bool, now: dt.datetime | None = None) -> bool:
    """Whether *version*'s retention may be shortened, removed or ignored by this request:
    none is active, or it is GOVERNANCE and the caller asked to and may bypass it."""
    if not retention_active(version, now):
        return True
    return (version.lock_mode == "GOVERNANCE" and bypass and requester is not None
            and authz.allowed(requester, "s3:BypassGovernanceRetention", bucket, version))


def check_removal(requester: Principal | None, bucket: Bucket, version: ObjectVersion, *,
                  bypass: bool = False) -> None:
    """AccessDenied unless *version*'s data may be deleted or replaced now: the one question
    every delete and overwrite path asks (a lifecycle sweep passes no requester)."""
    if version.delete_marker:
        return
    if version.legal_hold or not _retention_may_yield(requester, bucket, version, bypass):
        raise locked()


# --- what a new version carries ------------------------------------------------------------

def parse_until(text: str, name: str = UNTIL_HEADER) -> dt.datetime:
    """An ISO 8601 retain-until date as naive UTC; InvalidArgument when it is not one."""
    found = _ISO.fullmatch(text.strip())
    try:
        if not found:
            raise ValueError(text)
        base, fraction, zone = found.groups()
        when = dt.datetime.fromisoformat(base + (f".{fraction[:6]:0<6}" if fraction else "")
                                         + ("+00:00" if zone in (None, "Z") else zone))
    except ValueError:
        raise InvalidArgument("The retain until date must be provided in ISO 8601 format",
                              ArgumentName=name, ArgumentValue=text) from None
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _checked_mode(mode: str, name: str) -> str:
    if mode not in MODES:
        raise InvalidArgument("Unknown wormMode directive.", ArgumentName=name,
                              ArgumentValue=mode)
    return mode


def _future(until: dt.datetime, text: str, name: str) -> dt.datetime:
    if until <= utcnow():
        raise InvalidArgument("The retain until date must be in the future!",
                              ArgumentName=name, ArgumentValue=text)
    return until


def apply_headers(fields: Mapping[str, str], requester: Principal | None, bucket: Bucket,
                  key: str, attributes) -> None:
    """Set *attributes*' (an objects.Attributes) lock settings from a write's
    ``x-amz-object-lock-*`` headers (or a POST form's fields, lower-case names):
    InvalidRequest on a bucket without Object Lock, InvalidArgument for a bad value,
    AccessDenied without s3:PutObjectRetention / s3:PutObjectLegalHold. A write naming
    none gets the bucket default later (:func:`settle`)."""
    mode, until_text, hold = (fields.get(MODE_HEADER), fields.get(UNTIL_HEADER),
                              fields.get(HOLD_HEADER))
    if mode is None and until_text is None and hold is None:
        return
    if not bucket.object_lock_enabled:
        raise InvalidRequest(MISSING_CONFIGURATION)
    if (mode is None) != (until_text is None):
        raise InvalidArgument("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode "
                              "must both be supplied")
    if mode is not None:
        attributes.lock_mode = _checked_mode(mode, MODE_HEADER)
        attributes.lock_until = _future(parse_until(until_text), until_text, UNTIL_HEADER)
        authz.require(requester, "s3:PutObjectRetention", bucket, key=key)
    if hold is not None:
        if hold not in ("ON", "OFF"):
            raise InvalidArgument("Legal Hold must be either of 'ON' or 'OFF'",
                                  ArgumentName=HOLD_HEADER, ArgumentValue=hold)
        attributes.legal_hold = hold == "ON"
        authz.require(requester, "s3:PutObjectLegalHold", bucket, key=key)


def _has_integrity_header(headers: Mapping[str, str]) -> bool:
    if headers.get("content-md5") or headers.get("x-amz-sdk-checksum-algorithm"):
        return True
    if "x-amz-checksum-" in (headers.get("x-amz-trailer") or "").lower():
        return True
    return any(name.startswith("x-amz-checksum-")
               and name not in ("x-amz-checksum-mode", "x-amz-checksum-type")
               for name in headers)


def require_integrity(headers: Mapping[str, str], bucket: Bucket, attributes) -> None:
    """A PutObject that will be retained (its own headers or the bucket's default rule)
    must carry Content-MD5 or a checksum header, as AWS requires: InvalidRequest if not."""
    if not bucket.object_lock_enabled:
        return
    retained = attributes.lock_mode or attributes.legal_hold or bucket.object_lock_json
    if retained and not _has_integrity_header(headers):
        raise InvalidRequest("Content-MD5 OR x-amz-checksum- HTTP header is required for Put "
                             "Object requests with Object Lock parameters")


def settle(bucket: Bucket, attributes, now: dt.datetime | None = None) -> None:
    """Give a new version (*attributes*, an objects.Attributes) that names no retention the
    bucket's default rule, if any (called where the version is recorded, so every write
    path gets it)."""
    if not bucket.object_lock_enabled or attributes.lock_mode is not None:
        return
    rule = bucket.get_json("object_lock")
    if not rule:
        return
    attributes.lock_mode = rule["Mode"]
    attributes.lock_until = _after(now or utcnow(), rule.get("Days"), rule.get("Years"))


def _after(start: dt.datetime, days: int | None, years: int | None) -> dt.datetime:
    if days:
        return start + dt.timedelta(days=days)
    year = start.year + (years or 0)
    day = min(start.day, calendar.monthrange(year, start.month)[1])     # 29 Feb
    return start.replace(year=year, day=day)


# --- bucket configuration ------------------------------------------------------------------

def parse_configuration(body: bytes) -> dict | None:
    """An ObjectLockConfiguration document: its default retention rule ({"Mode", "Days" |
    "Years"}), None when it has no rule. MalformedXML for a document AWS would refuse as
    one, InvalidArgument for a period that is not a positive number in range."""
    document = xmlbody.parse(body, "ObjectLockConfiguration")
    if xmlbody.child_text(document, "ObjectLockEnabled") != "Enabled":
        raise MalformedXML()
    rule = document.find("Rule")
    if rule is None:
        return None
    retention = rule.find("DefaultRetention")
    if retention is None:
        raise MalformedXML()
    mode = xmlbody.child_text(retention, "Mode")
    days, years = xmlbody.child_text(retention, "Days"), xmlbody.child_text(retention, "Years")
    if mode not in MODES or (days is None) == (years is None):
        raise MalformedXML()
    name, text, limit = ("Days", days, MAX_DAYS) if days is not None else ("Years", years,
                                                                            MAX_YEARS)
    value = int(text) if re.fullmatch(r"-?\d{1,10}", text.strip()) else None
    if value is None:
        raise MalformedXML()
    if not 0 < value <= limit:
        raise InvalidArgument("Default retention period must be a positive integer value.",
                              ArgumentName=name, ArgumentValue=text)
    return {"Mode": mode, name: value}


def get_configuration(requester: Principal | None, name: str) -> dict | None:
    """GetObjectLockConfiguration: the default rule (None when none);
    ObjectLockConfigurationNotFoundError when the bucket has no Object Lock."""
    bucket = buckets.get(requester, name, "s3:GetBucketObjectLockConfiguration")
    if not bucket.object_lock_enabled:
        raise ObjectLockConfigurationNotFoundError(
            "Object Lock configuration does not exist for this bucket", BucketName=name)
    return bucket.get_json("object_lock")


def put_configuration(requester: Principal | None, name: str, rule: dict | None) -> None:
    """PutObjectLockConfiguration: store the default rule, enabling Object Lock on a bucket
    that has versioning Enabled (InvalidBucketState otherwise); it cannot be turned off."""
    buckets.get(requester, name, "s3:PutBucketObjectLockConfiguration")
    with writing():
        bucket = buckets.find(name)
        if not bucket.object_lock_enabled:
            if bucket.versioning != "Enabled":
                raise InvalidBucketState("Versioning must be 'Enabled' on the bucket to apply "
                                         "a Object Lock configuration", BucketName=name)
            bucket.object_lock_enabled = True
        bucket.set_json("object_lock", rule)


# --- per-version retention and legal hold --------------------------------------------------
# The adapter looks the version up (objects.get, with the operation's action) and passes it.

def require_enabled(bucket: Bucket) -> None:
    """InvalidRequest unless *bucket* has Object Lock (retention and legal hold need it)."""
    if not bucket.object_lock_enabled:
        raise InvalidRequest(MISSING_CONFIGURATION)


def get_retention(bucket: Bucket, version: ObjectVersion) -> tuple[str, dt.datetime]:
    """GetObjectRetention: (mode, retain-until); NoSuchObjectLockConfiguration if none."""
    require_enabled(bucket)
    if not version.lock_mode:
        raise NoSuchObjectLockConfiguration(
            "The specified object does not have a ObjectLock configuration")
    return version.lock_mode, version.lock_until


def parse_retention(body: bytes) -> tuple[str | None, dt.datetime | None]:
    """A Retention document: (mode, retain-until), (None, None) for an empty one (which
    removes retention). The date must be in the future."""
    document = xmlbody.parse(body, "Retention")
    mode, text = (xmlbody.child_text(document, "Mode"),
                  xmlbody.child_text(document, "RetainUntilDate"))
    if mode is None and text is None:
        return None, None
    if mode not in MODES or text is None:        # the schema's enumeration, as the rule's
        raise MalformedXML()
    return (mode,
            _future(parse_until(text, "RetainUntilDate"), text, "RetainUntilDate"))


def put_retention(requester: Principal | None, bucket: Bucket, version: ObjectVersion,
                  mode: str | None, until: dt.datetime | None, *, bypass: bool) -> None:
    """PutObjectRetention: set (or with *mode* None remove) a version's retention. Extending
    is always allowed; shortening, removing or COMPLIANCE -> GOVERNANCE only while no
    retention is active or under bypassable GOVERNANCE (AccessDenied otherwise)."""
    require_enabled(bucket)
    with writing():
        fresh = db.session.get(ObjectVersion, version.id)
        if fresh is None:
            raise NoSuchKey(version.key)
        weakens = fresh.lock_until is not None and (
            mode is None or until < fresh.lock_until
            or (fresh.lock_mode == "COMPLIANCE" and mode != "COMPLIANCE"))
        if weakens and not _retention_may_yield(requester, bucket, fresh, bypass):
            raise locked()
        fresh.lock_mode, fresh.lock_until = mode, until


def get_legal_hold(bucket: Bucket, version: ObjectVersion) -> bool:
    """GetObjectLegalHold: whether the version is under legal hold;
    NoSuchObjectLockConfiguration if its legal hold was never set (ON or OFF), as S3."""
    require_enabled(bucket)
    if version.legal_hold is None:
        raise NoSuchObjectLockConfiguration(
            "The specified object does not have a ObjectLock configuration")
    return version.legal_hold


def parse_legal_hold(body: bytes) -> bool:
    status = xmlbody.child_text(xmlbody.parse(body, "LegalHold"), "Status")
    if status not in ("ON", "OFF"):
        raise MalformedXML()
    return status == "ON"


def put_legal_hold(bucket: Bucket, version: ObjectVersion, on: bool) -> None:
    """PutObjectLegalHold: place or lift a version's legal hold (either at any time)."""
    require_enabled(bucket)
    with writing():
        fresh = db.session.get(ObjectVersion, version.id)
        if fresh is None:
            raise NoSuchKey(version.key)
        fresh.legal_hold = on


def response_headers(requester: Principal | None, bucket: Bucket,
                     version: ObjectVersion) -> dict[str, str]:
    """The lock headers a GET/HEAD of *version* carries: retention to callers allowed
    s3:GetObjectRetention, legal hold (ON or OFF, none if never set) to those allowed
    s3:GetObjectLegalHold, as AWS."""
    headers: dict[str, str] = {}
    if version.lock_mode and authz.allowed(requester, "s3:GetObjectRetention", bucket,
                                           version):
        headers[MODE_HEADER] = version.lock_mode
        headers[UNTIL_HEADER] = iso(version.lock_until)
    if version.legal_hold is not None and authz.allowed(requester, "s3:GetObjectLegalHold",
                                                        bucket, version):
        headers[HOLD_HEADER] = "ON" if version.legal_hold else "OFF"
    return headers


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds") + "Z"
