"""Which instances a group terminates when it scales in, as AWS documents it: first the
zone with the most instances (keeping the group balanced), then the group's termination
policies in order, each narrowing the candidates; ties left go to ``Default``, and a last
tie to the lowest instance id (AWS picks at random; a fixed choice is easier to follow).

``Default`` is: instances of the oldest launch configuration or template, then those
closest to their next instance hour. Instances protected from scale-in are never chosen.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Candidate:
    """A member the group could terminate, with what the policies compare."""

    instance_id: str
    zone: str
    launched: dt.datetime              # the EC2 instance's launch time
    source_age: dt.datetime            # when its launch configuration/template was made
    protected: bool = False


Narrow = Callable[[list[Candidate], dt.datetime], list[Candidate]]


def _extreme(key: Callable[[Candidate], object], pick=min) -> Narrow:
    def narrow(candidates: list[Candidate], now: dt.datetime) -> list[Candidate]:
        best = pick(key(candidate) for candidate in candidates)
        return [candidate for candidate in candidates if key(candidate) == best]
    return narrow


def _to_next_hour(now: dt.datetime) -> Callable[[Candidate], float]:
    def seconds_left(candidate: Candidate) -> float:
        running = (now - candidate.launched).total_seconds()
        return 3600 - running % 3600
    return seconds_left


def _closest_to_hour(candidates: list[Candidate], now: dt.datetime) -> list[Candidate]:
    return _extreme(_to_next_hour(now))(candidates, now)


_oldest_source = _extreme(lambda candidate: candidate.source_age)

POLICIES: dict[str, Narrow] = {
    "OldestInstance": _extreme(lambda candidate: candidate.launched),
    "NewestInstance": _extreme(lambda candidate: candidate.launched, pick=max),
    "OldestLaunchConfiguration": _oldest_source,
    "OldestLaunchTemplate": _oldest_source,
    "ClosestToNextInstanceHour": _closest_to_hour,
    # no Spot/On-Demand mix here: the allocation strategy never tells instances apart
    "AllocationStrategy": lambda candidates, now: candidates,
}


def _default(candidates: list[Candidate], now: dt.datetime) -> list[Candidate]:
    return _closest_to_hour(_oldest_source(candidates, now), now)


def choose(candidates: list[Candidate], count: int, policies: list[str],
           now: dt.datetime) -> list[str]:
    """The ids of *count* instances to terminate among *candidates*, one at a time so the
    zones stay balanced after each."""
    left = [candidate for candidate in candidates if not candidate.protected]
    chosen: list[str] = []
    while left and len(chosen) < count:
        per_zone = Counter(candidate.zone for candidate in left)
        most = max(per_zone.values())
        pool = [candidate for candidate in left if per_zone[candidate.zone] == most]
        for policy in policies:
            if len(pool) == 1:
                break
            pool = _default(pool, now) if policy == "Default" else POLICIES[policy](pool, now)
        if len(pool) > 1:
            pool = _default(pool, now)
        victim = min(pool, key=lambda candidate: candidate.instance_id)
        chosen.append(victim.instance_id)
        left.remove(victim)
    return chosen


def zone_for_launch(counts: dict[str, int]) -> str:
    """The group zone with the fewest instances (ties to the first listed): where the next
    instance goes to keep the group balanced."""
    return min(counts, key=lambda zone: counts[zone])
