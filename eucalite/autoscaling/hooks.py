"""Lifecycle hooks: a launching instance waits in ``Pending:Wait`` before it is InService,
a terminating one in ``Terminating:Wait`` before it is terminated, until the user calls
CompleteLifecycleAction (CONTINUE or ABANDON) or the hook's heartbeat timeout passes and
its default result applies. RecordLifecycleActionHeartbeat restarts the timeout.

A group's hooks for one transition are waited on one after another, by name. There is no
SNS or EventBridge here: a waiting instance is found with DescribeAutoScalingInstances
(its lifecycle state) and the token is not needed, CompleteLifecycleAction taking the
instance id as AWS allows. ABANDON on launch terminates the instance; on termination both
results let it go. A group's forced deletion skips its hooks, as AWS's does.

Every function runs in the caller's write transaction.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ..accounts import utcnow
from ..db import db
from .common import (PENDING_PROCEED, PENDING_WAIT, TERMINATING_PROCEED, TERMINATING_WAIT,
                     limit_exceeded, validation)
from .models import Group, LifecycleHook, Member

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"
TRANSITIONS = (LAUNCHING, TERMINATING_TRANSITION)
RESULTS = ("CONTINUE", "ABANDON")
#: Hooks per group (AWS's quota).
MAX_PER_GROUP = 50


def put(group: Group, request: dict[str, Any]) -> None:
    """PutLifecycleHook: create or change the group's hook."""
    for member in ("NotificationTargetARN", "RoleARN"):
        if request.get(member):
            raise validation(f"{member} is not supported: eucalite has no SNS or SQS to "
                             "notify; find waiting instances with "
                             "DescribeAutoScalingInstances.")
    name = request["LifecycleHookName"]
    hook = db.session.get(LifecycleHook, (group.id, name))
    if hook is None:
        if not request.get("LifecycleTransition"):
            raise validation("LifecycleTransition is required to create a lifecycle hook.")
        count = db.session.execute(db.select(db.func.count()).select_from(LifecycleHook)
                                   .where(LifecycleHook.group_id == group.id)).scalar()
        if count >= MAX_PER_GROUP:
            raise limit_exceeded(f"You have reached the limit of {MAX_PER_GROUP} lifecycle "
                                 "hooks for the group.")
        hook = LifecycleHook(group_id=group.id, name=name, heartbeat_timeout=3600,
                             default_result="ABANDON")
        db.session.add(hook)
    if request.get("LifecycleTransition"):
        if request["LifecycleTransition"] not in TRANSITIONS:
            raise validation(f"Invalid Lifecycle Transition: {request['LifecycleTransition']}")
        hook.transition = request["LifecycleTransition"]
    if request.get("HeartbeatTimeout") is not None:
        if not 30 <= request["HeartbeatTimeout"] <= 7200:
            raise validation("HeartbeatTimeout must be between 30 and 7200 seconds.")
        hook.heartbeat_timeout = request["HeartbeatTimeout"]
    if request.get("DefaultResult"):
        if request["DefaultResult"] not in RESULTS:
            raise validation("DefaultResult must be CONTINUE or ABANDON.")
        hook.default_result = request["DefaultResult"]
    if "NotificationMetadata" in request:
        hook.metadata_text = request["NotificationMetadata"]


def named(group: Group, name: str) -> LifecycleHook:
    hook = db.session.get(LifecycleHook, (group.id, name))
    if hook is None:
        raise validation(f"No Lifecycle Hook found for name {name} in group {group.name}.")
    return hook


def of_group(group_id: int, transition: str | None = None) -> list[LifecycleHook]:
    query = db.select(LifecycleHook).where(LifecycleHook.group_id == group_id)
    if transition is not None:
        query = query.where(LifecycleHook.transition == transition)
    return list(db.session.execute(query.order_by(LifecycleHook.name)).scalars())


def render(hook: LifecycleHook, group_name: str) -> dict[str, Any]:
    answer = {"LifecycleHookName": hook.name, "AutoScalingGroupName": group_name,
              "LifecycleTransition": hook.transition,
              "HeartbeatTimeout": hook.heartbeat_timeout,
              "GlobalTimeout": min(hook.heartbeat_timeout * 100, 172800),
              "DefaultResult": hook.default_result}
    if hook.metadata_text is not None:
        answer["NotificationMetadata"] = hook.metadata_text
    return answer


def _next(group_id: int, transition: str, after: str | None) -> LifecycleHook | None:
    return next((hook for hook in of_group(group_id, transition)
                 if after is None or hook.name > after), None)


def hold(member: Member, transition: str, after: str | None = None) -> bool:
    """Put *member* in its Wait state on the group's next hook for *transition* (after
    the hook named *after*); False when there is none left."""
    hook = _next(member.group_id, transition, after)
    if hook is None:
        member.hook_name = member.hook_token = member.hook_deadline = None
        return False
    member.lifecycle_state = PENDING_WAIT if transition == LAUNCHING else TERMINATING_WAIT
    member.hook_name = hook.name
    member.hook_token = str(uuid.uuid4())
    member.hook_deadline = utcnow() + dt.timedelta(seconds=hook.heartbeat_timeout)
    return True


def release(member: Member, result: str) -> None:
    """*member*'s current hook is done with *result*: it waits on the next hook, or moves
    on (Pending:Proceed, or Terminating:Proceed for the keeper to terminate)."""
    launching = member.lifecycle_state == PENDING_WAIT
    transition = LAUNCHING if launching else TERMINATING_TRANSITION
    if launching and result == "ABANDON":
        member.hook_name = member.hook_token = member.hook_deadline = None
        member.lifecycle_state = TERMINATING_PROCEED
        return
    if hold(member, transition, after=member.hook_name):
        return
    member.lifecycle_state = PENDING_PROCEED if launching else TERMINATING_PROCEED


def expire(member: Member, now: dt.datetime) -> None:
    """Apply the hook's default result if its timeout has passed."""
    if member.hook_deadline is None or member.hook_deadline > now:
        return
    hook = db.session.get(LifecycleHook, (member.group_id, member.hook_name))
    release(member, hook.default_result if hook is not None else "CONTINUE")


def waiting(group: Group, request: dict[str, Any]) -> Member:
    """The member a CompleteLifecycleAction / RecordLifecycleActionHeartbeat names (by
    token or instance id), waiting on the hook it names."""
    named(group, request["LifecycleHookName"])
    token, instance_id = request.get("LifecycleActionToken"), request.get("InstanceId")
    if not token and not instance_id:
        raise validation("Either LifecycleActionToken or InstanceId must be given.")
    query = db.select(Member).where(Member.group_id == group.id,
                                    Member.hook_name == request["LifecycleHookName"])
    query = query.where(Member.hook_token == token) if token else \
        query.where(Member.instance_id == instance_id)
    member = db.session.execute(query).scalar_one_or_none()
    if member is None or member.lifecycle_state not in (PENDING_WAIT, TERMINATING_WAIT):
        raise validation("No active Lifecycle Action found with "
                         + (f"token {token}" if token else f"instance ID {instance_id}"))
    return member


def heartbeat(member: Member) -> None:
    hook = db.session.get(LifecycleHook, (member.group_id, member.hook_name))
    member.hook_deadline = utcnow() + dt.timedelta(seconds=hook.heartbeat_timeout)

