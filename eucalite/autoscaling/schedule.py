"""Scheduled actions: set a group's min, max and desired capacity once at a time, or on a
recurrence (Unix cron, five fields, in the action's TimeZone, UTC by default) between its
start and end times. Each action keeps when it fires next (``next_run``, UTC); the loop
runs those that are due (:func:`due`) unless the group's ScheduledActions process is
suspended.
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import utctime
from ..accounts import utcnow
from ..db import db
from . import groups
from .common import arn, utc, validation
from .models import Group, ScheduledAction

#: Scheduled actions per group (AWS's quota).
MAX_PER_GROUP = 125
#: cron fields: (name, lowest, highest).
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
          ("day of week", 0, 6))
NAMES = {3: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
             "DEC"],
         4: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]}


class Cron:
    """A five-field cron expression: the sets of minutes, hours, days, months, weekdays."""

    def __init__(self, text: str):
        parts = text.split()
        if len(parts) != 5:
            raise validation(f"Given recurrence string {text!r} is invalid: a recurrence "
                             "has five fields (minute hour day-of-month month day-of-week).")
        self.text = text
        self.sets = [self._field(part, index) for index, part in enumerate(parts)]
        self.any_day = parts[2] == "*"
        self.any_weekday = parts[4] == "*"

    def _field(self, part: str, index: int) -> set[int]:
        name, low, high = FIELDS[index]
        values: set[int] = set()
        for item in part.split(","):
            step = 1
            if "/" in item:
                item, step_text = item.split("/", 1)
                step = self._number(step_text, index, name)
                if step < 1:
                    raise validation(f"Invalid step in the {name} field of {self.text!r}.")
            if item == "*":
                first, last = low, high
            elif "-" in item:
                first, last = (self._number(end, index, name) for end in item.split("-", 1))
            else:
                first = self._number(item, index, name)
                last = high if step > 1 else first
            top = 7 if index == 4 else high        # 7 is Sunday too
            if not (low <= first <= top and low <= last <= top) or first > last:
                raise validation(f"The {name} field of {self.text!r} is out of range.")
            values.update(value % 7 if index == 4 else value
                          for value in range(first, last + 1, step))
        return values

    def _number(self, text: str, index: int, name: str) -> int:
        upper = text.upper()
        if index in NAMES and upper in NAMES[index]:
            return NAMES[index].index(upper) + (1 if index == 3 else 0)
        if not text.isdigit():
            raise validation(f"Invalid value {text!r} in the {name} field of {self.text!r}.")
        return int(text)

    def after(self, moment: dt.datetime) -> dt.datetime:
        """The first minute after *moment* (aware, in its own zone) the expression
        matches."""
        candidate = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        limit = candidate + dt.timedelta(days=366 * 5)
        while candidate < limit:
            if candidate.month not in self.sets[3]:
                candidate = (candidate.replace(day=1, hour=0, minute=0) +
                             dt.timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + dt.timedelta(days=1)
                continue
            if candidate.hour not in self.sets[1]:
                candidate = candidate.replace(minute=0) + dt.timedelta(hours=1)
                continue
            if candidate.minute in self.sets[0]:
                return candidate
            candidate += dt.timedelta(minutes=1)
        raise validation(f"The recurrence {self.text!r} never happens.")

    def _day_matches(self, moment: dt.datetime) -> bool:
        day_ok = moment.day in self.sets[2]
        weekday_ok = (moment.isoweekday() % 7) in self.sets[4]
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise validation(f"Invalid time zone {name}.") from None


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else utctime.naive(moment)


def next_run(action: ScheduledAction, after: dt.datetime) -> dt.datetime | None:
    """When *action* fires next after *after* (naive UTC), or None when it never will."""
    if not action.recurrence:
        start = action.start_time
        return start if start is not None and start > after else None
    zone = _zone(action.time_zone)
    frm = max(after, action.start_time - dt.timedelta(minutes=1)) if action.start_time \
        else after
    local = frm.replace(tzinfo=dt.timezone.utc).astimezone(zone)
    moment = _naive_utc(Cron(action.recurrence).after(local))
    if action.end_time is not None and moment > action.end_time:
        return None
    return moment


def put(account_id: str, region: str, group: Group, request: dict[str, Any]) -> None:
    """PutScheduledUpdateGroupAction (in the caller's transaction)."""
    name = request["ScheduledActionName"]
    start = _naive_utc(request.get("StartTime") or request.get("Time"))
    end = _naive_utc(request.get("EndTime"))
    recurrence = request.get("Recurrence")
    now = utcnow()
    if not any(key in request for key in ("MinSize", "MaxSize", "DesiredCapacity")):
        raise validation("At least one of MinSize, MaxSize or DesiredCapacity must be "
                         "specified.")
    if recurrence:
        Cron(recurrence)
    elif start is None:
        raise validation("Either StartTime or Recurrence must be specified.")
    if start is not None and end is not None and end <= start:
        raise validation("End time must be after start time.")
    if start is not None and not recurrence and start < now:
        raise validation("Given start time is in the past.")
    if end is not None and end < now:
        raise validation("Given end time is in the past.")
    _zone(request.get("TimeZone"))
    action = db.session.execute(db.select(ScheduledAction).where(
        ScheduledAction.group_id == group.id, ScheduledAction.name == name)
    ).scalar_one_or_none()
    if action is None:
        count = db.session.execute(db.select(db.func.count()).select_from(ScheduledAction)
                                   .where(ScheduledAction.group_id == group.id)).scalar()
        if count >= MAX_PER_GROUP:
            raise validation(f"You have reached the limit of {MAX_PER_GROUP} scheduled "
                             "actions for the group.")
        action = ScheduledAction(
            account_id=account_id, group_id=group.id, name=name,
            arn=arn(region, account_id, "scheduledUpdateGroupAction",
                    f"autoScalingGroupName/{group.name}:scheduledActionName/{name}"))
        db.session.add(action)
    action.start_time, action.end_time = start, end
    action.recurrence, action.time_zone = recurrence, request.get("TimeZone")
    action.min_size = request.get("MinSize")
    action.max_size = request.get("MaxSize")
    action.desired = request.get("DesiredCapacity")
    action.next_run = next_run(action, now - dt.timedelta(seconds=1))


def named(group: Group, name: str) -> ScheduledAction:
    action = db.session.execute(db.select(ScheduledAction).where(
        ScheduledAction.group_id == group.id, ScheduledAction.name == name)
    ).scalar_one_or_none()
    if action is None:
        raise validation(f"Scheduled action name not found - Could not find scheduled "
                         f"action {name} for group {group.name}")
    return action


def describe(account_id: str, group: Group | None, names: list[str],
             start: dt.datetime | None, end: dt.datetime | None, after: int, limit: int
             ) -> tuple[list[tuple[ScheduledAction, str]], int | None]:
    query = db.select(ScheduledAction, Group.name).join(
        Group, Group.id == ScheduledAction.group_id).where(
        ScheduledAction.account_id == account_id)
    if group is not None:
        query = query.where(ScheduledAction.group_id == group.id)
    if names:
        query = query.where(ScheduledAction.name.in_(names))
    rows = [tuple(row) for row in db.session.execute(
        query.order_by(Group.name, ScheduledAction.name)).all()]
    start, end = _naive_utc(start), _naive_utc(end)
    if start is not None:
        rows = [row for row in rows if row[0].next_run and row[0].next_run >= start]
    if end is not None:
        rows = [row for row in rows if row[0].next_run and row[0].next_run <= end]
    page = rows[after:after + limit]
    return page, (after + limit if len(rows) > after + limit else None)


def render(action: ScheduledAction, group_name: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"AutoScalingGroupName": group_name,
                              "ScheduledActionName": action.name,
                              "ScheduledActionARN": action.arn}
    when = action.next_run or action.start_time
    if when is not None:
        answer["Time"] = answer["StartTime"] = utc(when)
    for key, value in (("EndTime", utc(action.end_time)), ("Recurrence", action.recurrence),
                       ("MinSize", action.min_size), ("MaxSize", action.max_size),
                       ("DesiredCapacity", action.desired), ("TimeZone", action.time_zone)):
        if value is not None:
            answer[key] = value
    return answer


def due(now: dt.datetime) -> list[int]:
    """The ids of actions whose time has come."""
    return list(db.session.execute(db.select(ScheduledAction.id).where(
        ScheduledAction.next_run.is_not(None), ScheduledAction.next_run <= now)).scalars())


def fire(action_id: int, now: dt.datetime) -> bool:
    """Run one due action (in the caller's write transaction): the group's new bounds and
    desired capacity, then its next time (a one-off action is deleted, as AWS does).
    Returns whether the group changed."""
    action = db.session.get(ScheduledAction, action_id)
    if action is None or action.next_run is None or action.next_run > now:
        return False
    group = db.session.get(Group, action.group_id)
    if groups.suspended(group, "ScheduledActions") or group.status:
        action.next_run = next_run(action, now)
        return False
    minimum = action.min_size if action.min_size is not None else group.min_size
    maximum = action.max_size if action.max_size is not None else group.max_size
    desired = action.desired if action.desired is not None else \
        min(max(group.desired, minimum), maximum)
    old = group.desired
    group.min_size, group.max_size = minimum, min(max(maximum, minimum), maximum)
    desired = max(group.min_size, min(group.max_size, desired))
    group.desired = desired
    if desired != old:
        groups.note_capacity(group, old, f"a scheduled action update of AutoScalingGroup "
                                         f"constraints to min: {minimum}, max: {maximum}, "
                                         f"desired: {desired} changing the desired capacity "
                                         f"from {old} to {desired}")
    if action.recurrence:
        action.next_run = next_run(action, now)
    else:
        db.session.delete(action)
    return desired != old
