"""GetMetricData: several MetricStat and Expression queries answered together, paged.

Each MetricStat query becomes a :class:`~.mathexpr.Series` through :func:`.statistics.periods`
(its period, stat and unit); each Expression is evaluated over the others in dependency
order (a cycle or an unknown id is a ValidationError). Queries with ``ReturnData`` false
are computed but not returned. Results list their points newest first unless
``ScanBy=TimestampAscending``; past ``MaxDatapoints`` points in all, the page ends, its
unfinished results say ``PartialData`` and ``NextToken`` resumes where it stopped.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import math
import re
from typing import Any

from . import mathexpr, statistics, store
from .datums import dimension_pairs
from .errors import InvalidNextToken, ValidationError
from .mathexpr import Series
from .stats import PERCENTILE, STATISTICS

MAX_QUERIES = 500
DEFAULT_MAX_DATAPOINTS = 100_800
ID = re.compile(r"[a-z][a-zA-Z0-9_]*")


def _check_stat(stat: str, where: str) -> None:
    if stat in STATISTICS:
        return
    match = PERCENTILE.fullmatch(stat)
    if match is None or float(match.group(1)) > 100:
        raise ValidationError(f"The value {stat} for parameter {where}.MetricStat.Stat is "
                              "not supported: use SampleCount, Average, Sum, Minimum, Maximum "
                              "or a percentile p0 to p100.")


def _metric_series(account_id: str, query: dict, start: int, end: int, now: int,
                   where: str) -> Series:
    stat = query["MetricStat"]
    metric = stat["Metric"]
    dimensions = dimension_pairs(metric.get("Dimensions"), f"{where}.MetricStat.Metric."
                                                           "Dimensions")
    metric_id = store.find(account_id, metric["Namespace"], metric["MetricName"],
                           dimensions)
    grouped = statistics.periods(metric_id, stat["Period"], start, end, stat.get("Unit"),
                                 now, limit=None, percentiles=stat["Stat"] not in STATISTICS)
    points: dict[int, float] = {}
    for (stamp, _unit), cell in grouped.items():
        value = cell.statistic(stat["Stat"])
        if value is not None:
            # cells of several units in one period: the unit filter decides; without one,
            # CloudWatch answers the data as one series, so merge per timestamp
            points[stamp] = value if stamp not in points else points[stamp] + value
    label = query.get("Label") or metric["MetricName"]
    return Series(points, stat["Period"], label=label)


def _order(queries: list[dict]) -> list[dict]:
    """*queries* in an order that evaluates each expression after what it reads."""
    by_id = {query["Id"]: query for query in queries}
    done: set[str] = set()
    ordered: list[dict] = []
    visiting: set[str] = set()

    def visit(query: dict) -> None:
        if query["Id"] in done:
            return
        if query["Id"] in visiting:
            raise ValidationError(f"The expression of {query['Id']} refers to itself "
                                  "through other expressions.")
        visiting.add(query["Id"])
        for name in query.get("_reads", ()):
            if name == "*":
                continue
            if name not in by_id:
                raise ValidationError(f"Error in expression {query['Id']}: Unrecognized "
                                      f"metric id {name}.")
            visit(by_id[name])
        visiting.discard(query["Id"])
        done.add(query["Id"])
        ordered.append(query)

    # MetricStat queries first, so METRICS() sees them all
    for query in sorted(queries, key=lambda q: "Expression" in q):
        visit(query)
    return ordered


def _check_metric_stat(stat: dict, where: str) -> None:
    _check_stat(stat["Stat"], where)
    statistics.check_period(stat["Period"], f"{where}.MetricStat.Period")
    metric = stat["Metric"]
    if "Namespace" not in metric or "MetricName" not in metric:
        raise ValidationError(f"The parameter {where}.MetricStat.Metric must name a "
                              "Namespace and a MetricName.")
    dimension_pairs(metric.get("Dimensions"), f"{where}.MetricStat.Metric.Dimensions")


def check_queries(queries: list[dict]) -> None:
    """Everything GetMetricData refuses in *queries* before reading data (ids, one of
    MetricStat and Expression, stats, periods, expressions that parse and read only known
    ids, no cycles): PutMetricAlarm's ``Metrics`` are held to the same rules."""
    queries = [dict(query) for query in queries]
    _check_queries(queries)
    _order(queries)


def _check_queries(queries: list[dict]) -> None:
    if not queries:
        raise ValidationError("The parameter MetricDataQueries must hold at least one query.")
    if len(queries) > MAX_QUERIES:
        raise ValidationError(f"The collection MetricDataQueries must not have a size "
                              f"greater than {MAX_QUERIES}.")
    seen: set[str] = set()
    for index, query in enumerate(queries, 1):
        where = f"MetricDataQueries.member.{index}"
        if not ID.fullmatch(query["Id"]):
            raise ValidationError(f"The value {query['Id']} for parameter {where}.Id is "
                                  "invalid: an Id starts with a lowercase letter and holds "
                                  "letters, digits and underscores.")
        if query["Id"] in seen:
            raise ValidationError(f"The value {query['Id']} for parameter {where}.Id is "
                                  "used by more than one query.")
        seen.add(query["Id"])
        if ("MetricStat" in query) == ("Expression" in query):
            raise ValidationError(f"Exactly one of {where}.MetricStat and "
                                  f"{where}.Expression must be given.")
        if "MetricStat" in query:
            _check_metric_stat(query["MetricStat"], where)
        if "Expression" in query:
            try:
                tree = mathexpr.parse(query["Expression"])
            except mathexpr.ExpressionError as error:
                raise ValidationError(f"Error in expression {query['Id']}: {error}")
            query["_tree"] = tree
            query["_reads"] = mathexpr.references(tree)
    if not any(query.get("ReturnData", True) for query in queries):
        raise ValidationError("At least one query of MetricDataQueries must have ReturnData "
                              "true.")


def _as_series(value, query: dict, start: int, end: int, others: list[Series]) -> Series:
    """An expression's value as one series: a scalar spans the period grid the other
    series use; an array must hold exactly one series."""
    if isinstance(value, list):
        if len(value) != 1:
            raise ValidationError(f"Error in expression {query['Id']}: it returns "
                                  f"{len(value)} time series; GetMetricData expressions "
                                  "must return one.")
        value = value[0]
    if isinstance(value, Series):
        return Series(value.points, value.period, label=query.get("Label") or query["Id"])
    stamps = sorted(set().union(*(series.points for series in others))) if others else []
    points = {} if math.isnan(value) else {t: float(value) for t in stamps}
    period = query.get("Period") or (others[0].period if others else 60)
    return Series(points, period, label=query.get("Label") or query["Id"])


def _evaluate(account_id: str, queries: list[dict], start: int, end: int,
              now: int) -> dict[str, Series]:
    series: dict[str, Series] = {}
    metric_series: list[Series] = []
    positions = {query["Id"]: index for index, query in enumerate(queries, 1)}
    for query in _order(queries):
        where = f"MetricDataQueries.member.{positions[query['Id']]}"
        if "MetricStat" in query:
            series[query["Id"]] = _metric_series(account_id, query, start, end, now, where)
            metric_series.append(series[query["Id"]])
            continue
        context = mathexpr.Context(values=dict(series), metric_series=metric_series)
        try:
            value = mathexpr.evaluate(query["_tree"], context, start, end)
        except mathexpr.ExpressionError as error:
            raise ValidationError(f"Error in expression {query['Id']}: {error}")
        series[query["Id"]] = _as_series(value, query, start, end, metric_series)
    return series


def _token(offset: int, signature: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([offset, signature]).encode()).decode()


def _offset(token: str | None, signature: str) -> int:
    if token is None:
        return 0
    try:
        offset, seen = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if isinstance(offset, int) and offset >= 0 and seen == signature:
            return offset
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        pass
    raise InvalidNextToken("The service returned an invalid NextToken.")


def metric_data(account_id: str, request: dict[str, Any], now: int) -> dict[str, Any]:
    """GetMetricData's answer for *request* (its input shape)."""
    queries = [dict(query) for query in request["MetricDataQueries"]]
    _check_queries(queries)
    statistics.check_times(request["StartTime"], request["EndTime"])
    start, end = int(request["StartTime"].timestamp()), int(request["EndTime"].timestamp())
    limit = request.get("MaxDatapoints") or DEFAULT_MAX_DATAPOINTS
    descending = request.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    signature = json.dumps([request["MetricDataQueries"], start, end, descending],
                           default=str, sort_keys=True)
    signature = hashlib.sha256(signature.encode()).hexdigest()[:16]
    offset = _offset(request.get("NextToken"), signature)
    series = _evaluate(account_id, queries, start, end, now)
    results, position, budget = [], 0, limit
    for query in queries:
        if not query.get("ReturnData", True):
            continue
        answer = series[query["Id"]]
        stamps = sorted(answer.points, reverse=descending)
        skip = max(0, min(len(stamps), offset - position))
        position += len(stamps)
        shown = stamps[skip:skip + budget]
        budget -= len(shown)
        results.append({
            "Id": query["Id"], "Label": answer.label,
            "Timestamps": [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in shown],
            "Values": [answer.points[t] for t in shown],
            "StatusCode": "Complete" if skip + len(shown) == len(stamps) else "PartialData",
        })
    answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
    if position > offset + limit:
        answer["NextToken"] = _token(offset + limit, signature)
    return answer


def evaluate_queries(account_id: str, queries: list[dict], start: int, end: int,
                     now: int) -> dict[str, Series]:
    """Every query's series over [start, end) (an alarm's ``Metrics``), checked first."""
    queries = [dict(query) for query in queries]
    _check_queries(queries)
    return _evaluate(account_id, queries, start, end, now)
