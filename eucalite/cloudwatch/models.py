"""CloudWatch tables: metrics and their data, kept as roll-up cells.

A metric is one account's (namespace, name, dimensions); its dimensions are stored sorted by
name as JSON ``[[name, value], ...]`` and identified with namespace and name by ``key`` (a
SHA-256 of the three), so the unique index stays small whatever the dimensions' length.

A metric's data lives in :class:`MetricCell` rows: one per storage level (1, 60, 300 or
3600 s), aligned interval start and unit, holding the :class:`~eucalite.cloudwatch.stats.Cell`
of the values published into it. Every datapoint is added to its cell at each level it
belongs to when it arrives, so the coarser levels (the roll-ups) are always current and a
level's cells are simply dropped when they pass its retention (3 h, 15 days, 63 days,
455 days: :data:`eucalite.cloudwatch.levels.LEVELS`).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..accounts import utcnow
from ..db import db


class Metric(db.Model):
    __tablename__ = "cw_metrics"
    __table_args__ = (
        UniqueConstraint("account_id", "key"),
        Index("ix_cw_metrics_listing", "account_id", "namespace", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    # [[name, value], ...] sorted by name
    dimensions_json: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(String(64))
    # ever published with StorageResolution 1
    high_resolution: Mapped[bool] = mapped_column(Boolean, default=False)
    # when data last arrived (epoch seconds): ListMetrics' two weeks and RecentlyActive
    last_put: Mapped[int] = mapped_column(BigInteger)


class MetricCell(db.Model):
    __tablename__ = "cw_cells"
    __table_args__ = (
        # retention sweeps delete a level's old cells
        Index("ix_cw_cells_level_start", "level", "start"),
    )

    metric_id: Mapped[int] = mapped_column(ForeignKey("cw_metrics.id", ondelete="CASCADE"),
                                           primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)      # seconds
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)   # epoch seconds
    unit: Mapped[str] = mapped_column(String(32), primary_key=True)    # "None" when unset
    count: Mapped[float] = mapped_column(Float)
    total: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)
    # stats.Cell.values_list() as JSON; NULL when a statistic set hid the values
    values_json: Mapped[str | None] = mapped_column(Text, default=None)


class Alarm(db.Model):
    """A metric alarm: its definition as PutMetricAlarm gave it (JSON, the API's shape) and
    its state. The metric it watches is also kept in columns for DescribeAlarmsForMetric."""

    __tablename__ = "cw_alarms"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    # the watched metric (None for alarms on metric math)
    namespace: Mapped[str | None] = mapped_column(String(255), default=None)
    metric_name: Mapped[str | None] = mapped_column(String(255), default=None)
    definition_json: Mapped[str] = mapped_column(Text)
    tags_json: Mapped[str | None] = mapped_column(Text, default=None)
    actions_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # OK, ALARM or INSUFFICIENT_DATA
    state: Mapped[str] = mapped_column(String(20), default="INSUFFICIENT_DATA")
    state_reason: Mapped[str] = mapped_column(Text, default="")
    state_reason_data: Mapped[str | None] = mapped_column(Text, default=None)
    state_updated: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state_transitioned: Mapped[dt.datetime] = mapped_column(default=utcnow)
    configuration_updated: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlarmHistory(db.Model):
    """One DescribeAlarmHistory item: a configuration change, a state change or an action."""

    __tablename__ = "cw_alarm_history"
    __table_args__ = (Index("ix_cw_alarm_history_alarm", "account_id", "alarm_name",
                            "timestamp"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    alarm_name: Mapped[str] = mapped_column(String(255))
    alarm_type: Mapped[str] = mapped_column(String(20), default="MetricAlarm")
    timestamp: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # ConfigurationUpdate, StateUpdate or Action
    item_type: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    data_json: Mapped[str | None] = mapped_column(Text, default=None)
