"""CloudWatch's storage levels and retention, and which level answers a query.

CloudWatch keeps data at four granularities for a fixed time each: 1-second data
(high-resolution metrics only) for 3 hours, 1-minute data for 15 days, 5-minute data for 63
days and 1-hour data for 455 days. A query is answered from the finest level that still
holds its start time and whose granularity divides its period; a query that no level can
answer (a 60 s period over data from a month ago) gets no datapoints, as on AWS.
"""
from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class Level:
    seconds: int
    retention: int       # seconds a cell of this level is kept after its start


LEVELS = (Level(1, 3 * HOUR), Level(60, 15 * DAY), Level(300, 63 * DAY),
          Level(3600, 455 * DAY))
#: The high-resolution periods below a minute (each divides 60).
SUB_MINUTE_PERIODS = (1, 5, 10, 20, 30)
#: How far back and ahead of now PutMetricData accepts a timestamp.
OLDEST_ACCEPTED = 14 * DAY
NEWEST_ACCEPTED = 2 * HOUR


def levels_for(storage_resolution: int) -> tuple[Level, ...]:
    """The levels a datapoint published with *storage_resolution* (1 or 60) is added to."""
    return LEVELS if storage_resolution == 1 else LEVELS[1:]


def valid_period(period: int) -> bool:
    """Periods CloudWatch takes: 1, 5, 10, 20, 30 or any multiple of 60."""
    return period in SUB_MINUTE_PERIODS or (period > 0 and period % 60 == 0)


def level_for(period: int, start: int, now: int) -> Level | None:
    """The level whose cells answer a query of *period* starting at *start* (epoch seconds),
    or None when none can (the data of that age is kept too coarsely for the period).

    That is the finest level still holding data of that age whose granularity divides the
    period, unless a coarser one answers the same: one that also divides the period and on
    whose boundaries the query's periods begin (an hourly query from 12:00 reads hour cells,
    60 times fewer rows than minute cells)."""
    age = now - start
    finest = None
    for level in LEVELS:
        if period < 60 and level.seconds >= 60:
            return None
        if level.seconds == 1 and period >= 60:
            continue      # minute cells answer the same, with fewer rows
        if period % level.seconds == 0 and age <= level.retention:
            finest = level
            break
    if finest is None:
        return None
    first = aligned_start(start, period, finest)
    coarser = [level for level in LEVELS if level.seconds > finest.seconds
               and period % level.seconds == 0 and first % level.seconds == 0
               and age <= level.retention]
    return coarser[-1] if coarser else finest


def aligned_start(start: int, period: int, level: Level) -> int:
    """*start* rounded down as CloudWatch rounds a query's start: to the period for
    sub-minute periods, else to the level's granularity (the minute under 15 days, 5
    minutes under 63 days, the hour beyond)."""
    step = period if period < 60 else level.seconds
    return start - start % step
