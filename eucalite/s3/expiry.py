"""When a bucket's lifecycle rules (:mod:`eucalite.s3.lifecycle`) act on an object,
a noncurrent version, a delete marker or a multipart upload, and the
``x-amz-expiration`` / ``x-amz-abort-*`` headers that announce it.

Timing, as S3 computes it: an action *n* days after time *t* falls due at midnight UTC of the
day after *t* + *n* days (an object written 2014-01-15 10:30 with ``Days`` 3 expires
2014-01-19 00:00 UTC). A ``Date`` action applies from that midnight on. Disabled rules never
apply. All datetimes may be aware or naive; naive ones are taken as UTC. Day counts are
S3's 32-bit integers; one that reaches past what a datetime holds falls due at
:data:`NEVER`, the last midnight there is, instead of failing every request that asks.
"""
from __future__ import annotations

import datetime as dt
import email.utils
from typing import Iterable, Mapping
from urllib.parse import quote

from .. import utctime
from .lifecycle import UTC, filter_parts

#: When an action too far in the future to compute falls due.
NEVER = dt.datetime(9999, 12, 31, tzinfo=UTC)


def rule_matches(rule: Mapping, key: str, size: int | None, tags: Mapping[str, str]) -> bool:
    """Whether *rule* is enabled and its filter selects the object: the key starts with its
    prefix, the object carries each of its tags with the same value, and its size is
    strictly inside its size bounds (an unknown *size* fails a size bound)."""
    if rule.get("Status") != "Enabled":
        return False
    prefix, rule_tags, greater, less = filter_parts(rule)
    if not key.startswith(prefix):
        return False
    if any(tags.get(tag["Key"]) != tag.get("Value", "") for tag in rule_tags):
        return False
    if greater is not None and (size is None or size <= greater):
        return False
    if less is not None and (size is None or size >= less):
        return False
    return True


def due_date(start: dt.datetime, days: int) -> dt.datetime:
    """When an action *days* after *start* falls due: midnight UTC after *start* + *days*
    (:data:`NEVER` when that is past the year 9999)."""
    try:
        day = (utctime.aware(start) + dt.timedelta(days=days)).date() + dt.timedelta(days=1)
    except OverflowError:
        return NEVER
    return dt.datetime.combine(day, dt.time(0), tzinfo=UTC)


def expiry_date(rule: Mapping, last_modified: dt.datetime) -> dt.datetime | None:
    """When *rule*'s Expiration (Days or Date) removes a current version written at
    *last_modified*; None when the rule has no such action."""
    expiration = rule.get("Expiration") or {}
    if "Days" in expiration:
        return due_date(last_modified, expiration["Days"])
    if "Date" in expiration:
        return utctime.aware(dt.datetime.fromisoformat(expiration["Date"]))
    return None


def expiry_due(rule: Mapping, *, key: str, size: int | None, tags: Mapping[str, str],
               last_modified: dt.datetime, now: dt.datetime) -> bool:
    """Whether *rule* expires the current version described (by Days or Date)."""
    if not rule_matches(rule, key, size, tags):
        return False
    when = expiry_date(rule, last_modified)
    return when is not None and utctime.aware(now) >= when


def noncurrent_due(rule: Mapping, *, key: str, size: int | None, tags: Mapping[str, str],
                   became_noncurrent: dt.datetime, newer_noncurrent_count: int,
                   now: dt.datetime) -> bool:
    """Whether *rule* permanently deletes a noncurrent version.

    *became_noncurrent* is when its successor was written; *newer_noncurrent_count* how many
    noncurrent versions of the key are newer than it. With ``NewerNoncurrentVersions`` N the
    N newest noncurrent versions are kept: both the days and the count must be reached.
    """
    action = rule.get("NoncurrentVersionExpiration")
    if not action or not rule_matches(rule, key, size, tags):
        return False
    if utctime.aware(now) < due_date(became_noncurrent, action["NoncurrentDays"]):
        return False
    keep = action.get("NewerNoncurrentVersions")
    return keep is None or newer_noncurrent_count >= keep


def delete_marker_due(rule: Mapping, *, key: str, last_modified: dt.datetime,
                      noncurrent_versions: int, now: dt.datetime) -> bool:
    """Whether *rule* removes a current delete marker that has *noncurrent_versions* other
    versions: only a marker with none ("expired"), by ``ExpiredObjectDeleteMarker`` at once,
    or by ``Days`` once the marker is that old."""
    expiration = rule.get("Expiration") or {}
    if noncurrent_versions or not rule_matches(rule, key, 0, {}):
        return False
    if expiration.get("ExpiredObjectDeleteMarker"):
        return True
    return "Days" in expiration and utctime.aware(now) >= due_date(last_modified, expiration["Days"])


def abort_date(rule: Mapping, *, key: str, initiated: dt.datetime) -> dt.datetime | None:
    """When *rule* aborts a multipart upload of *key* begun at *initiated*, or None."""
    action = rule.get("AbortIncompleteMultipartUpload")
    if not action or not rule_matches(rule, key, None, {}):
        return None
    return due_date(initiated, action["DaysAfterInitiation"])


def abort_due(rule: Mapping, *, key: str, initiated: dt.datetime, now: dt.datetime) -> bool:
    """Whether *rule* aborts an incomplete multipart upload of *key* begun at *initiated*."""
    when = abort_date(rule, key=key, initiated=initiated)
    return when is not None and utctime.aware(now) >= when


def http_date(when: dt.datetime) -> str:
    """``Fri, 23 Dec 2012 00:00:00 GMT``."""
    return email.utils.format_datetime(utctime.aware(when), usegmt=True)


def _header_id(rule_id: str) -> str:
    """A rule ID as S3 puts it in a header: as is, URL-encoding only what a header cannot
    carry (quotes, percent signs, controls and non-ASCII)."""
    return quote(rule_id, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def expiration_header(rules: Iterable[Mapping], key: str, size: int | None,
                      tags: Mapping[str, str], last_modified: dt.datetime) -> str | None:
    """The ``x-amz-expiration`` value for a current version (PUT, GET, HEAD), naming the rule
    that expires it first (the first listed on a tie); None when no rule expires it."""
    best = None
    for rule in rules:
        if not rule_matches(rule, key, size, tags):
            continue
        when = expiry_date(rule, last_modified)
        if when is not None and (best is None or when < best[0]):
            best = (when, rule["ID"])
    if best is None:
        return None
    return f'expiry-date="{http_date(best[0])}", rule-id="{_header_id(best[1])}"'


def abort_headers(rules: Iterable[Mapping], key: str, initiated: dt.datetime
                  ) -> dict[str, str]:
    """``x-amz-abort-date`` and ``x-amz-abort-rule-id`` for CreateMultipartUpload and
    ListParts (``{}`` when no rule aborts the upload)."""
    best = None
    for rule in rules:
        when = abort_date(rule, key=key, initiated=initiated)
        if when is not None and (best is None or when < best[0]):
            best = (when, rule["ID"])
    if best is None:
        return {}
    return {"x-amz-abort-date": http_date(best[0]), "x-amz-abort-rule-id": _header_id(best[1])}
