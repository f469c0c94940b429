"""PutMetricData's datapoints checked as CloudWatch checks them, into :class:`Datum`.

The wire layer has already checked what the model says (types, lengths, required members);
what is left are CloudWatch's own rules: a datum carries exactly one of Value, Values (with
Counts of the same length, at most 150) and StatisticValues; values are finite and within
+-2^360; the timestamp lies between two weeks ago and two hours ahead; the storage
resolution is 1 or 60; a dimension name appears once. Each failure names the member the
way CloudWatch's Query API does (``MetricData.member.3.Value``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterCombination, InvalidParameterValue
from . import levels
from .stats import Cell

#: CloudWatch's bound on a value's magnitude.
LIMIT = 2.0 ** 360
#: Distinct values one datum's Values may list.
MAX_VALUES = 150
#: Namespaces only AWS's own services publish into (eucalite's collectors do too).
RESERVED_PREFIX = "AWS/"


@dataclass
class Datum:
    """One checked datapoint: which metric, when, in what unit, and its cell."""

    name: str
    dimensions: list[list[str]]      # sorted [[name, value], ...]
    timestamp: int                   # epoch seconds
    unit: str
    resolution: int                  # 1 or 60
    cell: Cell


def single(name: str, dimensions: list[list[str]], at: int, unit: str, value: float,
           resolution: int) -> Datum:
    """One value the cloud measured itself (the collector's, Auto Scaling's group
    metrics)."""
    return Datum(name=name, dimensions=dimensions, timestamp=at, unit=unit,
                 resolution=resolution, cell=Cell.of_values({float(value): 1.0}))


def dimension_pairs(dimensions: list[dict[str, str]] | None, where: str) -> list[list[str]]:
    """*dimensions* (``[{"Name", "Value"}, ...]``) sorted by name; a name given twice is
    InvalidParameterValue."""
    pairs = sorted([item["Name"], item["Value"]] for item in dimensions or ())
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise InvalidParameterValue(f"The collection {where} must not have duplicate "
                                    "dimension names.")
    return pairs


def metric_key(namespace: str, name: str, dimensions: list[list[str]]) -> str:
    """The identity of a metric within its account (``Metric.key``)."""
    text = json.dumps([namespace, name, dimensions], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_namespace(namespace: str, reserved_allowed: bool = False) -> None:
    if namespace.startswith(RESERVED_PREFIX) and not reserved_allowed:
        raise InvalidParameterValue(f"The value {namespace} for parameter Namespace is "
                                    "invalid: namespaces beginning with AWS/ are reserved "
                                    "for AWS's own metrics.")


def _value(value: float, where: str) -> float:
    if math.isnan(value) or math.isinf(value) or abs(value) > LIMIT:
        raise InvalidParameterValue(f"The value {value} for parameter {where} is invalid: "
                                    "values must be finite and within -2^360 to 2^360.")
    return float(value)


def _timestamp(when: dt.datetime | None, now: float, where: str) -> int:
    if when is None:
        return int(now)
    stamp = when.timestamp()
    if stamp < now - levels.OLDEST_ACCEPTED:
        raise InvalidParameterValue(f"The parameter {where}.Timestamp must specify a time "
                                    "no more than two weeks in the past.")
    if stamp > now + levels.NEWEST_ACCEPTED:
        raise InvalidParameterValue(f"The parameter {where}.Timestamp must specify a time "
                                    "no more than two hours in the future.")
    return int(stamp)


def _cell(item: dict[str, Any], where: str) -> Cell:
    given = [name for name in ("Value", "StatisticValues", "Values") if name in item]
    if len(given) > 1:
        raise InvalidParameterCombination(
            f"The parameters {where}.{given[0]} and {where}.{given[1]} are mutually "
            "exclusive and you have specified both.")
    if "Counts" in item and "Values" not in item:
        raise InvalidParameterCombination(f"The parameter {where}.Counts may only be given "
                                          f"with {where}.Values.")
    if not given:
        raise InvalidParameterCombination(
            f"One of the parameters {where}.Value, {where}.Values or "
            f"{where}.StatisticValues must be specified.")
    if "Value" in item:
        return Cell.of_values({_value(item["Value"], f"{where}.Value"): 1.0})
    if "StatisticValues" in item:
        return _statistic_set(item["StatisticValues"], f"{where}.StatisticValues")
    return _values(item["Values"], item.get("Counts"), where)


def _statistic_set(given: dict[str, float], where: str) -> Cell:
    count = _value(given["SampleCount"], f"{where}.SampleCount")
    total = _value(given["Sum"], f"{where}.Sum")
    minimum = _value(given["Minimum"], f"{where}.Minimum")
    maximum = _value(given["Maximum"], f"{where}.Maximum")
    if count <= 0:
        raise InvalidParameterValue(f"The value {count} for parameter {where}.SampleCount "
                                    "is invalid: it must be greater than 0.")
    if minimum > maximum:
        raise InvalidParameterValue(f"The parameter {where}.Minimum must be less than or "
                                    f"equal to the parameter {where}.Maximum.")
    return Cell.of_statistic_set(count, total, minimum, maximum)


def _values(values: list[float], counts: list[float] | None, where: str) -> Cell:
    if len(values) > MAX_VALUES:
        raise InvalidParameterValue(f"The collection {where}.Values must not have a size "
                                    f"greater than {MAX_VALUES}.")
    if counts is not None and len(counts) != len(values):
        raise InvalidParameterValue(f"The parameters {where}.Values and {where}.Counts must "
                                    "be of the same size.")
    histogram: dict[float, float] = {}
    for index, value in enumerate(values, 1):
        value = _value(value, f"{where}.Values.member.{index}")
        count = 1.0 if counts is None else _value(counts[index - 1],
                                                  f"{where}.Counts.member.{index}")
        if count < 0:
            raise InvalidParameterValue(f"The value {count} for parameter "
                                        f"{where}.Counts.member.{index} is invalid: counts "
                                        "must not be negative.")
        if count > 0:
            histogram[value] = histogram.get(value, 0.0) + count
    if not histogram:
        raise InvalidParameterValue(f"The parameter {where}.Values must hold at least one "
                                    "value with a count greater than 0.")
    return Cell.of_values(histogram)


def datum(item: dict[str, Any], index: int, now: float) -> Datum:
    """The *index*-th (1-based) MetricDatum of a request, checked."""
    where = f"MetricData.member.{index}"
    resolution = item.get("StorageResolution", 60)
    if resolution not in (1, 60):
        raise InvalidParameterValue(f"The value {resolution} for parameter "
                                    f"{where}.StorageResolution is invalid: valid values "
                                    "are 1 and 60.")
    return Datum(name=item["MetricName"],
                 dimensions=dimension_pairs(item.get("Dimensions"), f"{where}.Dimensions"),
                 timestamp=_timestamp(item.get("Timestamp"), now, where),
                 unit=item.get("Unit") or "None",
                 resolution=resolution,
                 cell=_cell(item, where))
