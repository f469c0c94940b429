"""Auto Scaling tables: launch configurations, groups and their instances, scaling policies,
scheduled actions and scaling activities, all per account.

Definitions are kept as the API gave them (JSON in the API's member names) where nothing
queries inside them; what the capacity keeper and the Describe calls select or sort on has
its own column.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from ..accounts import utcnow
from ..db import db


class LaunchConfiguration(db.Model):
    """CreateLaunchConfiguration's input (``definition_json``, API member names) under its
    name; immutable once created, as in AWS."""

    __tablename__ = "as_launch_configs"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(1600))
    definition_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Group(db.Model):
    """An Auto Scaling group: its capacity bounds and what it launches (a launch
    configuration by name, or a launch template as ``{LaunchTemplateId, LaunchTemplateName,
    Version}`` JSON). ``settings_json`` holds the rest of the API's settings
    (DefaultInstanceWarmup, MaxInstanceLifetime, ...) as given; ``suspended_json`` the
    suspended processes ``{name: reason}``. ``scaled_at`` starts the group's cooldown."""

    __tablename__ = "as_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(1600))
    launch_config: Mapped[str | None] = mapped_column(String(255), default=None)
    launch_template_json: Mapped[str | None] = mapped_column(Text, default=None)
    min_size: Mapped[int] = mapped_column(Integer)
    max_size: Mapped[int] = mapped_column(Integer)
    desired: Mapped[int] = mapped_column(Integer)
    default_cooldown: Mapped[int] = mapped_column(Integer, default=300)
    zones_json: Mapped[str] = mapped_column(Text)
    health_check_type: Mapped[str] = mapped_column(String(32), default="EC2")
    grace_period: Mapped[int] = mapped_column(Integer, default=0)
    termination_policies_json: Mapped[str] = mapped_column(Text, default='["Default"]')
    protect_new: Mapped[bool] = mapped_column(Boolean, default=False)
    suspended_json: Mapped[str] = mapped_column(Text, default="{}")
    settings_json: Mapped[str] = mapped_column(Text, default="{}")
    metrics_json: Mapped[str] = mapped_column(Text, default="{}")
    # "Delete in progress" while a forced delete terminates the group's instances
    status: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    scaled_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # the dated sentence of the last desired-capacity change: the first half of the cause
    # of the launches and terminations it leads to
    capacity_cause: Mapped[str | None] = mapped_column(Text, default=None)


class GroupTag(db.Model):
    """A group's tag; ``propagate`` ones are given to the instances it launches."""

    __tablename__ = "as_group_tags"

    group_id: Mapped[int] = mapped_column(ForeignKey("as_groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    propagate: Mapped[bool] = mapped_column(Boolean, default=False)


class Member(db.Model):
    """An EC2 instance in a group, with its Auto Scaling lifecycle state (Pending,
    InService, Standby, Terminating) and health (Healthy, Unhealthy)."""

    __tablename__ = "as_instances"
    __table_args__ = (Index("ix_as_instances_group", "group_id"),)

    instance_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("as_groups.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    zone: Mapped[str] = mapped_column(String(255))
    lifecycle_state: Mapped[str] = mapped_column(String(32))
    health: Mapped[str] = mapped_column(String(16), default="Healthy")
    # why it is unhealthy (an activity's cause); None while healthy
    health_reason: Mapped[str | None] = mapped_column(Text, default=None)
    launch_config: Mapped[str | None] = mapped_column(String(255), default=None)
    launch_template_json: Mapped[str | None] = mapped_column(Text, default=None)
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # the activity that launched or is terminating it, finished when EC2 gets there
    activity_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # in Pending:Wait / Terminating:Wait: the lifecycle hook it waits on, the action's
    # token, and when the hook's default result applies
    hook_name: Mapped[str | None] = mapped_column(String(255), default=None)
    hook_token: Mapped[str | None] = mapped_column(String(64), default=None)
    hook_deadline: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class LifecycleHook(db.Model):
    """A lifecycle hook: instances of the group wait in Pending:Wait (launching) or
    Terminating:Wait (terminating) until CompleteLifecycleAction or the heartbeat timeout's
    default result."""

    __tablename__ = "as_lifecycle_hooks"

    group_id: Mapped[int] = mapped_column(ForeignKey("as_groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    transition: Mapped[str] = mapped_column(String(64))
    heartbeat_timeout: Mapped[int] = mapped_column(Integer, default=3600)
    default_result: Mapped[str] = mapped_column(String(16), default="ABANDON")
    metadata_text: Mapped[str | None] = mapped_column(Text, default=None)


class Policy(db.Model):
    """A scaling policy: PutScalingPolicy's input as given (``definition_json``) and, for
    target tracking, the alarms it made (``alarms_json``: ``[{AlarmName, AlarmARN}]``)."""

    __tablename__ = "as_policies"
    __table_args__ = (UniqueConstraint("group_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("as_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(1600), unique=True)
    definition_json: Mapped[str] = mapped_column(Text)
    alarms_json: Mapped[str] = mapped_column(Text, default="[]")
    # when it last changed the group's capacity (a simple policy's own cooldown)
    acted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class ScheduledAction(db.Model):
    """A scheduled action: once at ``start_time``, or on ``recurrence`` (cron, in
    ``time_zone``) between start and end; ``next_run`` is when it fires next (None: done)."""

    __tablename__ = "as_scheduled"
    __table_args__ = (UniqueConstraint("group_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("as_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(1600))
    start_time: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    end_time: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    recurrence: Mapped[str | None] = mapped_column(String(255), default=None)
    time_zone: Mapped[str | None] = mapped_column(String(255), default=None)
    min_size: Mapped[int | None] = mapped_column(Integer, default=None)
    max_size: Mapped[int | None] = mapped_column(Integer, default=None)
    desired: Mapped[int | None] = mapped_column(Integer, default=None)
    next_run: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class Activity(db.Model):
    """A scaling activity: what the group did or is doing, and why."""

    __tablename__ = "as_activities"
    __table_args__ = (Index("ix_as_activities_group", "group_id", "start_time"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("as_groups.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text)
    cause: Mapped[str] = mapped_column(Text)
    start_time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    end_time: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    status_code: Mapped[str] = mapped_column(String(32), default="InProgress")
    status_message: Mapped[str | None] = mapped_column(Text, default=None)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
