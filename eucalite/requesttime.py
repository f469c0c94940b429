"""The times clients write in signed requests, parsed strictly.

Each parser returns an aware UTC datetime, or None for anything that is not exactly its
format or names no instant the calendar can hold (non-ASCII digits, month 13, year 10000
once an offset is applied, a year of twenty digits): authentication turns None into the
service's own error, so no client-supplied date can raise.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import re

_AMZ_DATE = re.compile(r"\A[0-9]{8}T[0-9]{6}Z\Z")


def _utc(parsed: dt.datetime) -> dt.datetime | None:
    """*parsed* in UTC (naive means UTC); None when that falls outside the calendar
    (``9999-12-31T23:59:59-14:00`` is in year 10000)."""
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    try:
        return parsed.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        return None


def amz_date(text: str) -> dt.datetime | None:
    """``X-Amz-Date``: ISO 8601 basic format (``20261205T120000Z``), the only form SigV4
    signs; None for anything else, including digits that are not ASCII."""
    if not _AMZ_DATE.match(text):
        return None
    try:                                    # slicing: strptime costs several times more
        return dt.datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[9:11]),
                           int(text[11:13]), int(text[13:15]), tzinfo=dt.timezone.utc)
    except ValueError:                      # month 13, day 45, year 0
        return None


def http_date(text: str) -> dt.datetime | None:
    """A ``Date``/``x-amz-date`` header: RFC 1123 (or the SigV4 basic format); None when it
    is not one or names no representable instant."""
    if not text.isascii():
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return amz_date(text)
    return _utc(parsed)


def iso8601(text: str) -> dt.datetime | None:
    """V2 ``Timestamp``/``Expires``: ISO 8601, with or without fraction or offset."""
    if not text.isascii():
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _utc(parsed)


def epoch_text(seconds: int) -> str:
    """*seconds* since the epoch as S3 writes a time in its errors; the number itself when
    no calendar date matches it."""
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(seconds)
