"""Times in UTC, in the two forms eucalite uses: the database keeps naive datetimes meaning
UTC (what :func:`eucalite.accounts.utcnow` gives); answers and comparisons with parsed input
use aware ones. A naive datetime is always read as UTC, never as local time."""
from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def naive(moment: dt.datetime) -> dt.datetime:
    """*moment* as the database keeps it: naive, in UTC."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def aware(moment: dt.datetime) -> dt.datetime:
    """*moment* aware, in UTC (a naive one is UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
