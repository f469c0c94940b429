"""Metric data in the database: recording datapoints, reading cells, listing metrics,
dropping what passed its retention.

:func:`record` is PutMetricData's one write transaction: it finds or makes each metric,
then folds every datum into its cell at each level it belongs to (1 s for high-resolution
data, 60 s, 300 s, 3600 s: :mod:`.levels`), merging the request's datums into each cell in
memory first so a cell is read and written once per request. :func:`cells` reads one
metric's cells of one level; the caller groups them into periods (:mod:`.statistics`).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import bindparam, delete, func, insert, select, tuple_, update

from ..db import db, writing
from ..errors import InvalidParameterValue
from .datums import Datum, metric_key
from .levels import LEVELS, Level, levels_for
from .models import Metric, MetricCell
from .stats import Cell

#: Rows per IN (...) list: well under SQLite's limit on bound parameters.
CHUNK = 400
#: ListMetrics: metrics per page, and how long a metric stays listed after its last data.
PAGE = 500
LISTED_FOR = 14 * 24 * 3600
RECENTLY = 3 * 3600

_metrics = Metric.__table__
_cells = MetricCell.__table__


@dataclass(frozen=True)
class MetricId:
    """A metric as the API names it."""

    namespace: str
    name: str
    dimensions: list[list[str]]

    def as_dict(self) -> dict:
        return {"Namespace": self.namespace, "MetricName": self.name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions]}


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for index in range(0, len(items), size):
        yield items[index:index + size]


# --- writing ------------------------------------------------------------------------------

def record(account_id: str, namespace: str, data: list[Datum], now: int) -> None:
    """Add every datum of one PutMetricData call, in one write transaction. The request's
    datums are merged into their cells before the write lock is taken, so concurrent
    callers hold it only for the database work."""
    if not data:
        return
    by_key: dict[tuple, Cell] = {}
    for item in data:
        metric = metric_key(namespace, item.name, item.dimensions)
        for level in levels_for(item.resolution):
            key = (metric, level.seconds, item.timestamp - item.timestamp % level.seconds,
                   item.unit)
            cell = by_key.get(key)
            if cell is None:
                by_key[key] = cell = Cell()
            cell.merge(item.cell)
    with writing():
        ids = _metric_ids(account_id, namespace, data, now)
        _fold_cells({(ids[metric], *rest): cell for (metric, *rest), cell in by_key.items()})


def _metric_ids(account_id: str, namespace: str, data: list[Datum], now: int) -> dict[str, int]:
    """metric key -> id for every metric *data* names, made where missing; each gets
    ``last_put`` *now*, and ``high_resolution`` when a datum of it is."""
    wanted: dict[str, tuple[Datum, bool]] = {}
    for item in data:
        key = metric_key(namespace, item.name, item.dimensions)
        _, high = wanted.get(key, (item, False))
        wanted[key] = (item, high or item.resolution == 1)
    known: dict[str, tuple[int, bool]] = {}
    for keys in _chunks(list(wanted)):
        rows = db.session.execute(
            select(_metrics.c.key, _metrics.c.id, _metrics.c.high_resolution)
            .where(_metrics.c.account_id == account_id, _metrics.c.key.in_(keys)))
        known.update((key, (metric_id, high)) for key, metric_id, high in rows)
    for key, (item, high) in wanted.items():
        if key in known:
            continue
        result = db.session.execute(insert(_metrics).values(
            account_id=account_id, namespace=namespace, name=item.name,
            dimensions_json=json.dumps(item.dimensions, ensure_ascii=False), key=key,
            high_resolution=high, last_put=now))
        known[key] = (result.inserted_primary_key[0], high)
    old = [metric_id for metric_id, _ in known.values()]
    for ids in _chunks(old):
        db.session.execute(update(_metrics).where(_metrics.c.id.in_(ids))
                           .values(last_put=now))
    raised = [known[key][0] for key, (_, high) in wanted.items() if high and not known[key][1]]
    for ids in _chunks(raised):
        db.session.execute(update(_metrics).where(_metrics.c.id.in_(ids))
                           .values(high_resolution=True))
    return {key: metric_id for key, (metric_id, _) in known.items()}


def _fold_cells(pending: dict[tuple, Cell]) -> None:
    """Merge each pending cell into its stored cell (read, merge, write back)."""
    keys = list(pending)
    columns = (_cells.c.metric_id, _cells.c.level, _cells.c.start, _cells.c.unit)
    stored: dict[tuple, Cell] = {}
    for chunk in _chunks(keys):
        rows = db.session.execute(
            select(*columns, _cells.c.count, _cells.c.total, _cells.c.minimum,
                   _cells.c.maximum, _cells.c.values_json)
            .where(tuple_(*columns).in_(chunk)))
        for row in rows:
            stored[tuple(row[:4])] = Cell.stored(row.count, row.total, row.minimum,
                                                 row.maximum, json.loads(row.values_json)
                                                 if row.values_json is not None else None)
    inserts, updates = [], []
    for key, cell in pending.items():
        if key in stored:
            merged = stored[key]
            merged.merge(cell)
            updates.append({"k_metric": key[0], "k_level": key[1], "k_start": key[2],
                            "k_unit": key[3], **_cell_values(merged)})
        else:
            inserts.append({"metric_id": key[0], "level": key[1], "start": key[2],
                            "unit": key[3], **_cell_values(cell)})
    if inserts:
        db.session.execute(insert(_cells), inserts)
    if updates:
        db.session.execute(_UPDATE_CELL, updates)


def _cell_values(cell: Cell) -> dict:
    values = cell.values_list()
    return {"count": cell.count, "total": cell.total, "minimum": cell.minimum,
            "maximum": cell.maximum,
            "values_json": None if values is None else json.dumps(values)}


_UPDATE_CELL = (update(_cells)
                .where(_cells.c.metric_id == bindparam("k_metric"),
                       _cells.c.level == bindparam("k_level"),
                       _cells.c.start == bindparam("k_start"),
                       _cells.c.unit == bindparam("k_unit"))
                .values(count=bindparam("count"), total=bindparam("total"),
                        minimum=bindparam("minimum"), maximum=bindparam("maximum"),
                        values_json=bindparam("values_json")))


def sweep(now: int) -> int:
    """Drop every cell past its level's retention; returns how many went."""
    gone = 0
    with writing():
        for level in LEVELS:
            result = db.session.execute(delete(_cells).where(
                _cells.c.level == level.seconds, _cells.c.start < now - level.retention))
            gone += result.rowcount or 0
    return gone


# --- reading ------------------------------------------------------------------------------

def find(account_id: str, namespace: str, name: str,
         dimensions: list[list[str]]) -> int | None:
    """The id of the metric so named, or None when nothing was ever published to it."""
    return db.session.execute(
        select(_metrics.c.id).where(_metrics.c.account_id == account_id,
                                    _metrics.c.key == metric_key(namespace, name,
                                                                 dimensions))).scalar()


def cells(metric_id: int, level: Level, start: int, end: int,
          unit: str | None) -> list[tuple[int, str, Cell]]:
    """``(start, unit, cell)`` of the metric's cells of *level* starting in [start, end),
    of *unit* only when given, in time order, with their histograms (for percentiles;
    :func:`period_sums` answers the other statistics more cheaply)."""
    query = (select(_cells.c.start, _cells.c.unit, _cells.c.count, _cells.c.total,
                    _cells.c.minimum, _cells.c.maximum, _cells.c.values_json)
             .where(_cells.c.metric_id == metric_id, _cells.c.level == level.seconds,
                    _cells.c.start >= start, _cells.c.start < end)
             .order_by(_cells.c.start))
    if unit is not None:
        query = query.where(_cells.c.unit == unit)
    return [(row.start, row.unit,
             Cell.stored(row.count, row.total, row.minimum, row.maximum,
                         None if row.values_json is None else json.loads(row.values_json)))
            for row in db.session.execute(query)]


def period_sums(metric_id: int, level: Level, first: int, end: int, unit: str | None,
                period: int) -> list[tuple[int, str, Cell]]:
    """``(period start, unit, cell)`` of the metric's cells of *level* in [first, end)
    summed per *period* (periods start at *first*) by the database, without histograms:
    what every statistic but the percentiles needs, in one row per period."""
    bucket = (first + (_cells.c.start - first) // period * period).label("bucket")
    query = (select(bucket, _cells.c.unit, func.sum(_cells.c.count), func.sum(_cells.c.total),
                    func.min(_cells.c.minimum), func.max(_cells.c.maximum))
             .where(_cells.c.metric_id == metric_id, _cells.c.level == level.seconds,
                    _cells.c.start >= first, _cells.c.start < end)
             .group_by(bucket, _cells.c.unit))
    if unit is not None:
        query = query.where(_cells.c.unit == unit)
    return [(int(start), unit_name, Cell.stored(count, total, minimum, maximum, None))
            for start, unit_name, count, total, minimum, maximum in db.session.execute(query)]


def _token(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode()


def _after(token: str | None) -> int:
    if token is None:
        return 0
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["after"]
        if isinstance(after, int) and after >= 0:
            return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        pass
    raise InvalidParameterValue(f"The value {token} for parameter NextToken is invalid.")


def _matches(dimensions: list[list[str]], filters: list[dict]) -> bool:
    have = dict(dimensions)
    return all(item["Name"] in have and ("Value" not in item or
                                         have[item["Name"]] == item["Value"])
               for item in filters)


def listing(account_ids: list[str], namespace: str | None, name: str | None,
            filters: list[dict], recently_active: bool, token: str | None,
            now: int) -> tuple[list[tuple[str, MetricId]], str | None]:
    """ListMetrics: ``(account id, metric)`` of the metrics of *account_ids* matching the
    filters that received data in the last two weeks (three hours when
    *recently_active*), at most :data:`PAGE` per call, and the next page's token."""
    since = now - (RECENTLY if recently_active else LISTED_FOR)
    after = _after(token)
    found: list[tuple[str, MetricId]] = []
    query = (select(_metrics.c.id, _metrics.c.account_id, _metrics.c.namespace,
                    _metrics.c.name, _metrics.c.dimensions_json)
             .where(_metrics.c.account_id.in_(account_ids), _metrics.c.last_put >= since)
             .order_by(_metrics.c.id).limit(PAGE))
    if namespace is not None:
        query = query.where(_metrics.c.namespace == namespace)
    if name is not None:
        query = query.where(_metrics.c.name == name)
    while True:
        rows = db.session.execute(query.where(_metrics.c.id > after)).all()
        for row in rows:
            dimensions = json.loads(row.dimensions_json)
            if not _matches(dimensions, filters):
                after = row.id
                continue
            if len(found) == PAGE:
                return found, _token(after)      # a match beyond this page: say so
            after = row.id
            found.append((row.account_id, MetricId(row.namespace, row.name, dimensions)))
        if len(rows) < PAGE:
            return found, None
