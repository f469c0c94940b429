"""Scaling activities: each launch, termination and capacity change a group makes, with the
cause in AWS's words ("At 2026-12-06T06:30:00Z a user request update of AutoScalingGroup
constraints to min: 1, max: 3, desired: 3 changing the desired capacity from 1 to 3.").

A cause is built from dated sentences: :func:`said` dates one, :func:`cause` joins them.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ..accounts import utcnow
from ..db import db
from .common import dumps, loads, utc
from .models import Activity, Group

IN_PROGRESS = "InProgress"
SUCCESSFUL = "Successful"
FAILED = "Failed"
#: Activities kept per group (the oldest go first), AWS keeps six weeks' worth.
KEPT = 1000


def stamp(moment: dt.datetime | None = None) -> str:
    """A moment as causes write it: ``2026-12-06T06:30:00Z``."""
    return (moment or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")


def said(what: str, moment: dt.datetime | None = None) -> str:
    """One dated sentence of a cause: ``At <stamp> <what>.``"""
    return f"At {stamp(moment)} {what}."


def capacity_change(old: int, new: int) -> str:
    """The tail AWS gives a cause that moved the desired capacity."""
    return f"changing the desired capacity from {old} to {new}"


def start(group: Group, description: str, cause: str, *, status: str = IN_PROGRESS,
          message: str | None = None, details: dict[str, Any] | None = None) -> Activity:
    """Record a new activity of *group* (in the caller's transaction); a finished *status*
    ends it at once."""
    now = utcnow()
    done = status != IN_PROGRESS
    row = Activity(id=str(uuid.uuid4()), account_id=group.account_id, group_id=group.id,
                   description=description, cause=cause, start_time=now,
                   end_time=now if done else None, status_code=status,
                   status_message=message, progress=100 if done else 30,
                   details_json=dumps(details or {}))
    db.session.add(row)
    return row


def finish(activity_id: str | None, status: str, message: str | None = None) -> None:
    """End an activity still in progress (in the caller's transaction)."""
    if activity_id is None:
        return
    db.session.execute(db.update(Activity).where(
        Activity.id == activity_id, Activity.status_code == IN_PROGRESS).values(
        status_code=status, status_message=message, end_time=utcnow(), progress=100))


def describe(account_id: str, group: Group | None, ids: list[str], after: int, limit: int
             ) -> tuple[list[tuple[Activity, str]], int | None]:
    """(activity, its group's name) of the account, newest first (only *group*'s or
    *ids* when given); a page of at most *limit* from position *after* and the next
    position if there is more."""
    query = db.select(Activity, Group.name).join(Group, Group.id == Activity.group_id).where(
        Activity.account_id == account_id)
    if group is not None:
        query = query.where(Activity.group_id == group.id)
    if ids:
        query = query.where(Activity.id.in_(ids))
    rows = db.session.execute(query.order_by(Activity.start_time.desc(), Activity.id.desc())
                              .offset(after).limit(limit + 1)).all()
    return [tuple(row) for row in rows[:limit]], (after + limit if len(rows) > limit else None)


def render(activity: Activity, group_name: str, group_arn: str | None = None
           ) -> dict[str, Any]:
    """DescribeScalingActivities' Activity."""
    answer = {"ActivityId": activity.id, "AutoScalingGroupName": group_name,
              "Description": activity.description, "Cause": activity.cause,
              "StartTime": utc(activity.start_time), "StatusCode": activity.status_code,
              "Progress": activity.progress,
              "Details": dumps(loads(activity.details_json, {}))}
    if activity.end_time is not None:
        answer["EndTime"] = utc(activity.end_time)
    if activity.status_message:
        answer["StatusMessage"] = activity.status_message
    if group_arn:
        answer["AutoScalingGroupARN"] = group_arn
    return answer


def trim(group_id: int) -> None:
    """Drop a group's oldest finished activities past :data:`KEPT`."""
    cutoff = db.session.execute(
        db.select(Activity.start_time).where(Activity.group_id == group_id)
        .order_by(Activity.start_time.desc()).offset(KEPT).limit(1)).scalar()
    if cutoff is not None:
        db.session.execute(db.delete(Activity).where(
            Activity.group_id == group_id, Activity.start_time <= cutoff,
            Activity.status_code != IN_PROGRESS))
