"""Reading statistics: a metric's cells grouped into the periods a query asks for.

:func:`periods` is the one place a query's period, start and end become cells: it checks
the period (1, 5, 10, 20, 30 or a multiple of 60), picks the storage level
(:func:`.levels.level_for`), rounds the start as CloudWatch does, refuses more than
:data:`MAX_DATAPOINTS` periods, and merges the cells of each period (per unit).
GetMetricStatistics (:func:`metric_statistics`) and GetMetricData's MetricStat
(:mod:`.metricdata`) both read through it.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ..errors import InvalidParameterCombination, InvalidParameterValue
from . import levels, store
from .datums import dimension_pairs
from .stats import PERCENTILE, Cell

#: The most datapoints one GetMetricStatistics call may ask for.
MAX_DATAPOINTS = 1440


def check_period(period: int, name: str = "Period") -> None:
    if not levels.valid_period(period):
        raise InvalidParameterValue(f"The parameter {name} must be 1, 5, 10, 20, 30, or a "
                                    "multiple of 60.")


def check_times(start: dt.datetime, end: dt.datetime) -> None:
    if start >= end:
        raise InvalidParameterValue("The parameter StartTime must be less than the "
                                    "parameter EndTime.")


def check_extended(name: str, member: str = "ExtendedStatistics") -> None:
    """A percentile statistic ``p0`` .. ``p100`` (InvalidParameterValue otherwise)."""
    match = PERCENTILE.fullmatch(name)
    if match is None or float(match.group(1)) > 100:
        raise InvalidParameterValue(f"The value {name} for parameter {member} is not "
                                    "supported.")


def periods(metric_id: int | None, period: int, start: int, end: int, unit: str | None,
            now: int, limit: int | None = MAX_DATAPOINTS,
            percentiles: bool = True) -> dict[tuple[int, str], Cell]:
    """``(period start, unit) -> merged cell`` for the metric's data in [start, end).

    *limit*: the most periods the range may hold (InvalidParameterCombination past it);
    None for no limit. *percentiles*: whether the cells must answer percentiles (their
    histograms are read only then). An unknown metric, or data kept too coarsely for
    *period* at that age, gives nothing."""
    level = levels.level_for(period, start, now)
    if level is None:
        return {}
    first = levels.aligned_start(start, period, level)
    wanted = -(-(end - first) // period)
    if limit is not None and wanted > limit:
        raise InvalidParameterCombination(
            f"You have requested up to {wanted:,} datapoints, which exceeds the limit of "
            f"{limit:,}. You may reduce the datapoints requested by increasing Period, or "
            "decreasing the time range.")
    grouped: dict[tuple[int, str], Cell] = {}
    if metric_id is None:
        return grouped
    if not percentiles:
        return {(stamp, unit_name): cell for stamp, unit_name, cell in
                store.period_sums(metric_id, level, first, end, unit, period)}
    for cell_start, unit_name, cell in store.cells(metric_id, level, first, end, unit):
        key = (first + (cell_start - first) // period * period, unit_name)
        total = grouped.get(key)
        if total is None:
            grouped[key] = cell
        else:
            total.merge(cell)
    return grouped


def _epoch(when: dt.datetime) -> int:
    return int(when.timestamp())


def metric_statistics(account_id: str, request: dict[str, Any], now: int) -> dict[str, Any]:
    """GetMetricStatistics' answer (``Label``, ``Datapoints``) for *request* (its input
    shape)."""
    statistics = request.get("Statistics")
    extended = request.get("ExtendedStatistics")
    if statistics and extended:
        raise InvalidParameterCombination("Must specify either Statistics or "
                                          "ExtendedStatistics, but not both.")
    if not statistics and not extended:
        raise InvalidParameterCombination("Must specify either Statistics or "
                                          "ExtendedStatistics.")
    for name in extended or ():
        check_extended(name)
    check_period(request["Period"])
    check_times(request["StartTime"], request["EndTime"])
    dimensions = dimension_pairs(request.get("Dimensions"), "Dimensions")
    metric_id = store.find(account_id, request["Namespace"], request["MetricName"],
                           dimensions)
    grouped = periods(metric_id, request["Period"], _epoch(request["StartTime"]),
                      _epoch(request["EndTime"]), request.get("Unit"), now,
                      percentiles=bool(extended))
    datapoints = []
    for (start, unit), cell in sorted(grouped.items()):
        point: dict[str, Any] = {"Timestamp": dt.datetime.fromtimestamp(start,
                                                                       dt.timezone.utc),
                                 "Unit": unit}
        for name in statistics or ():
            point[name] = cell.statistic(name)
        if extended:
            known = {name: cell.statistic(name) for name in extended}
            point["ExtendedStatistics"] = {name: value for name, value in known.items()
                                           if value is not None}
        datapoints.append(point)
    return {"Label": request["MetricName"], "Datapoints": datapoints}

