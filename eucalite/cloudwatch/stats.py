"""The arithmetic of CloudWatch's statistics, with no database in it.

A metric's data is kept as *cells*: the datapoints of one metric and unit that fall in one
aligned interval of one storage level (1 s, 60 s, 300 s, 3600 s), summarised as a
:class:`Cell`: SampleCount, Sum, Minimum, Maximum and, while every value in it is known, a
histogram of the values themselves (value -> count), which percentiles need. Cells merge
(the roll-ups, and a query's period made of several cells), so every statistic of a period
is computed from the cells in it the same way, whatever level they came from.

A histogram is exact while it holds at most :data:`EXACT_VALUES` distinct values; past
that, values are rounded to buckets whose bounds grow by :data:`GAMMA` (a relative error
under half a percent, as a DDSketch does), so a cell's size stays bounded whatever is
published into it. CloudWatch's percentiles are approximate past a few values too.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

#: Distinct values a histogram keeps exactly before it is compacted into buckets.
EXACT_VALUES = 256
#: Ratio of consecutive bucket bounds in a compacted histogram.
GAMMA = 1.01
_LOG_GAMMA = math.log(GAMMA)

#: The statistics GetMetricStatistics names (its Statistics member), as result members.
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
#: ``pNN`` / ``pNN.NN``: a percentile, 0 to 100 (ExtendedStatistics; GetMetricData's Stat).
PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d{1,10})?)")


@dataclass
class Cell:
    """What is known of the values published into one interval: count, sum, extremes and,
    when every value is known (no statistic set hid them), their histogram."""

    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    #: value -> how many times it occurred; None once a statistic set's values are unknown
    values: dict[float, float] | None = field(default_factory=dict)

    @classmethod
    def of_values(cls, values: dict[float, float]) -> "Cell":
        """The cell of *values* (value -> count, counts > 0)."""
        cell = cls(values={})
        for value, count in values.items():
            cell.add_value(value, count)
        return cell

    @classmethod
    def of_statistic_set(cls, count: float, total: float, minimum: float,
                         maximum: float) -> "Cell":
        """A cell from a published StatisticSet. Its values are known only when the set
        can have held one value (a count of 1, or equal Minimum and Maximum), the cases in
        which CloudWatch computes percentiles over statistic sets."""
        if count == 1 or minimum == maximum:
            values: dict[float, float] | None = {minimum: count} if count > 0 else {}
        else:
            values = None
        return cls(count=count, total=total, minimum=minimum, maximum=maximum, values=values)

    def add_value(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        if self.values is not None:
            self.values[value] = self.values.get(value, 0.0) + count
            self._bound()

    def merge(self, other: "Cell") -> None:
        """Fold *other* into this cell (its histogram too, while both are known)."""
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        if self.values is None or other.values is None:
            self.values = None
            return
        for value, count in other.values.items():
            self.values[value] = self.values.get(value, 0.0) + count
        self._bound()

    def _bound(self) -> None:
        if self.values is not None and len(self.values) > EXACT_VALUES:
            compacted: dict[float, float] = {}
            for value, count in self.values.items():
                key = bucket_value(value)
                compacted[key] = compacted.get(key, 0.0) + count
            self.values = compacted

    # --- statistics ------------------------------------------------------------------

    def statistic(self, name: str) -> float | None:
        """One of :data:`STATISTICS`, or a percentile ``pNN`` (None when this cell cannot
        answer it: percentiles of hidden or negative values)."""
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.total
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        if name == "Average":
            return self.total / self.count if self.count else None
        match = PERCENTILE.fullmatch(name)
        if match is None:
            raise ValueError(f"not a statistic: {name!r}")
        return self.percentile(float(match.group(1)))

    def percentile(self, rank: float) -> float | None:
        """The smallest value at or below which *rank* percent of the values lie (nearest
        rank); None when the values are not known or any is negative, as CloudWatch
        offers no percentiles then."""
        if not self.values or self.minimum < 0:
            return None
        if rank <= 0:
            return self.minimum
        needed = rank / 100.0 * sum(self.values.values())
        seen = 0.0
        for value in sorted(self.values):
            seen += self.values[value]
            if seen >= needed - 1e-9 * needed:
                # a bucket's representative may stray past the true extremes
                return min(max(value, self.minimum), self.maximum)
        return self.maximum

    # --- storage form ----------------------------------------------------------------

    def values_list(self) -> list[list[float]] | None:
        """The histogram as sorted ``[value, count]`` pairs (None when unknown)."""
        if self.values is None:
            return None
        return [[value, self.values[value]] for value in sorted(self.values)]

    @classmethod
    def stored(cls, count: float, total: float, minimum: float, maximum: float,
               values: list | None) -> "Cell":
        """The cell of a stored row (:meth:`values_list`'s form for *values*)."""
        histogram = None if values is None else {float(v): float(c) for v, c in values}
        return cls(count=count, total=total, minimum=minimum, maximum=maximum,
                   values=histogram)


def bucket_value(value: float) -> float:
    """The representative of *value*'s bucket in a compacted histogram: buckets
    ``(GAMMA**(k-1), GAMMA**k]`` (mirrored for negatives, zero alone), represented by a
    value inside the bucket so that compacting twice changes nothing."""
    if value == 0:
        return 0.0
    magnitude = abs(value)
    key = math.ceil(math.log(magnitude) / _LOG_GAMMA)
    representative = 2 * GAMMA ** key / (1 + GAMMA)
    return math.copysign(representative, value)


def merged(cells: list[Cell]) -> Cell:
    """One cell holding everything in *cells*."""
    total = Cell()
    for cell in cells:
        total.merge(cell)
    return total
