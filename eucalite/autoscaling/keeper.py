"""The capacity keeper: one pass makes each group's instances follow its definition.

For a group, a pass
1. follows its members' EC2 instances: a pending one that runs is InService (its launch
   activity succeeds); one that is stopped, terminated or gone, or whose status check has
   failed past the grace period, is Unhealthy; a terminating one that has ended leaves;
2. adopts instances tagged ``aws:autoscaling:groupName`` with the group's name that are not
   members: the launches a crash cut off between RunInstances and recording the member;
3. terminates unhealthy members (ReplaceUnhealthy) and, when more members count than the
   desired capacity, those the termination policies choose (Terminate);
4. launches what is missing (Launch), one zone at a time, the least-filled first.

Each change is an activity with its cause. Decisions are made in one write transaction;
the cloud controller is then called outside it (RunInstances and TerminateInstances take
their own), and the launched instances recorded in another. A launch that fails (no
capacity) is retried on later passes with a growing delay, each try an activity.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..accounts import root_principal, utcnow
from ..compute import states
from ..db import db, writing
from ..errors import AwsError
from . import activities, groups, hooks, launchconfigs, policies
from .common import (COUNTED, GROUP_TAG, HEALTHY, IN_SERVICE, PENDING, PENDING_PROCEED,
                     PENDING_WAIT, STANDBY, TERMINATING, TERMINATING_PROCEED,
                     TERMINATING_WAIT, UNHEALTHY, loads)
from .models import Group, GroupTag, LaunchConfiguration, Member
from .termination import Candidate, choose, zone_for_launch

log = logging.getLogger(__name__)

#: EC2 states in which an instance fails Auto Scaling's EC2 health check.
GONE = (states.STOPPING, states.STOPPED, states.SHUTTING_DOWN, states.TERMINATED)
#: First and longest wait before a failed launch is tried again (seconds).
RETRY_FIRST, RETRY_MOST = 10.0, 300.0

STOPPED_CAUSE = ("an instance was taken out of service in response to an EC2 health check "
                 "indicating it has been terminated or stopped")
IMPAIRED_CAUSE = ("an instance was taken out of service in response to an EC2 instance "
                  "status check failure")
LIFETIME_CAUSE = ("an instance was taken out of service in response to the group's maximum "
                  "instance lifetime")


@dataclass
class Plan:
    """What one pass decided for a group, carried out after its transaction commits."""

    group_id: int
    account_id: str
    terminate: list[str] = field(default_factory=list)
    launches: list[tuple[str, int]] = field(default_factory=list)   # (zone, count)
    launch_cause: str = ""


class Keeper:
    """Runs passes; remembers, per group, when a failed launch may be tried again."""

    def __init__(self, compute, cloudwatch):
        self.compute = compute
        self.cloudwatch = cloudwatch
        self.retry_at: dict[int, tuple[float, float]] = {}     # group -> (when, delay)

    def run(self) -> int:
        """One pass over every group; returns how many instances it launched or ended."""
        acted = 0
        for group_id in db.session.execute(db.select(Group.id).order_by(Group.id)).scalars():
            try:
                acted += self.keep(group_id)
            except Exception:  # noqa: BLE001 - one group's failure must not stop the rest
                db.session.rollback()
                log.exception("auto scaling: keeping group %s failed", group_id)
        return acted

    def keep(self, group_id: int) -> int:
        """One pass over one group (see the module's docstring)."""
        with writing():
            plan = self._decide(group_id)
        if plan is None:
            return 0
        principal = root_principal(plan.account_id)
        # an instance already gone (ended, or its row purged) needs no terminate: asking
        # would fail the whole call on the one EC2 no longer knows
        ending = [instance_id for instance_id, row in self.compute.instances_by_id(
            plan.account_id, plan.terminate).items() if row.state != states.TERMINATED]
        if ending:
            self.compute.terminate(principal, ending)
            db.session.commit()
        launched = sum(self._launch(principal, plan, zone, count)
                       for zone, count in plan.launches)
        return len(ending) + launched

    # --- deciding ------------------------------------------------------------------------

    def _decide(self, group_id: int) -> Plan | None:
        group = db.session.get(Group, group_id)
        if group is None:
            return None
        members = groups.members_of([group.id])[group.id]
        facts = self.compute.instances_by_id(group.account_id,
                                             [member.instance_id for member in members])
        plan = Plan(group.id, group.account_id)
        members = self._follow(group, members, facts, plan)
        members += self._adopt(group, {member.instance_id for member in members})
        if group.status and not members:
            self._delete(group)
            return None
        self._replace_unhealthy(group, members, plan)
        counted = [member for member in members if member.lifecycle_state in COUNTED
                   and member.health == HEALTHY]
        if group.status:
            self._end_all(group, [member for member in members
                                  if member.lifecycle_state != TERMINATING and
                                  member.instance_id not in plan.terminate], plan)
        elif len(counted) > group.desired and not groups.suspended(group, "Terminate"):
            self._scale_in(group, counted, facts, plan)
        elif len(counted) < group.desired and not groups.suspended(group, "Launch"):
            self._plan_launches(group, counted, plan)
        return plan

    def _follow(self, group: Group, members: list[Member], facts: dict[str, Any],
                plan: Plan) -> list[Member]:
        """Move members along with their instances and their lifecycle hooks; returns
        those still in the group."""
        now = utcnow()
        checking = not groups.suspended(group, "HealthCheck")
        lifetime = groups.max_lifetime(group)
        kept = []
        for member in members:
            instance = facts.get(member.instance_id)
            state = instance.state if instance is not None else states.TERMINATED
            if member.hook_name is not None:
                hooks.expire(member, now)
            if member.lifecycle_state == PENDING_PROCEED:
                self._in_service(member, now)
            elif member.lifecycle_state == TERMINATING_PROCEED:
                member.lifecycle_state = TERMINATING
                if state != states.TERMINATED:
                    plan.terminate.append(member.instance_id)
            if member.lifecycle_state in (PENDING_WAIT, TERMINATING_WAIT):
                if state == states.TERMINATED:         # ended while a hook held it
                    activities.finish(member.activity_id, activities.FAILED,
                                      "The instance ended while a lifecycle hook held it.")
                    db.session.delete(member)
                    continue
            elif member.lifecycle_state == TERMINATING:
                if state == states.TERMINATED:
                    activities.finish(member.activity_id, activities.SUCCESSFUL)
                    db.session.delete(member)
                    continue
            elif member.lifecycle_state == STANDBY:
                if state == states.TERMINATED:       # ended behind the group's back
                    db.session.delete(member)
                    continue
            elif checking and state in GONE:
                self._unhealthy(member, STOPPED_CAUSE, instance)
            elif member.lifecycle_state == PENDING and state == states.RUNNING:
                if not hooks.hold(member, hooks.LAUNCHING):
                    self._in_service(member, now)
            elif checking and member.lifecycle_state == IN_SERVICE and \
                    instance.status_impaired_since is not None and \
                    (now - member.joined_at).total_seconds() >= group.grace_period:
                self._unhealthy(member, IMPAIRED_CAUSE, instance)
            elif member.lifecycle_state == IN_SERVICE and lifetime and \
                    (now - instance.launch_time).total_seconds() >= lifetime:
                self._unhealthy(member, LIFETIME_CAUSE, instance)
            kept.append(member)
        return kept

    @staticmethod
    def _in_service(member: Member, now: dt.datetime) -> None:
        member.lifecycle_state = IN_SERVICE
        member.joined_at = now
        activities.finish(member.activity_id, activities.SUCCESSFUL)
        member.activity_id = None

    @staticmethod
    def _unhealthy(member: Member, cause: str, instance) -> None:
        if member.health == UNHEALTHY:
            return
        member.health = UNHEALTHY
        member.health_reason = cause
        if member.activity_id is not None:          # it never got to InService
            reason = getattr(instance, "state_reason", None) or "it ended before running"
            activities.finish(member.activity_id, activities.FAILED,
                              f"Instance failed to reach InService: {reason}")
            member.activity_id = None

    def _adopt(self, group: Group, known: set[str]) -> list[Member]:
        """Members for the group's tagged instances it has no record of."""
        adopted = []
        for instance in self.compute.instances_tagged(group.account_id, GROUP_TAG, group.name):
            if instance.id in known or db.session.get(Member, instance.id) is not None:
                continue
            member = Member(instance_id=instance.id, group_id=group.id,
                            account_id=group.account_id, zone=instance.zone,
                            lifecycle_state=IN_SERVICE if instance.state == states.RUNNING
                            else PENDING, health=HEALTHY, launch_config=group.launch_config,
                            launch_template_json=group.launch_template_json,
                            protected=group.protect_new, joined_at=utcnow())
            db.session.add(member)
            adopted.append(member)
        return adopted

    def _replace_unhealthy(self, group: Group, members: list[Member], plan: Plan) -> None:
        if groups.suspended(group, "ReplaceUnhealthy"):
            return
        for member in members:
            if member.health != UNHEALTHY or member.lifecycle_state in (
                    TERMINATING, TERMINATING_WAIT, TERMINATING_PROCEED):
                continue
            self._terminating(group, member, activities.said(member.health_reason), plan)

    def _terminating(self, group: Group, member: Member, cause: str, plan: Plan) -> None:
        """Start terminating *member*: at once, or after the group's terminating hooks
        (never for a group being deleted)."""
        activity = activities.start(group, f"Terminating EC2 instance: {member.instance_id}",
                                    cause, details=self._details(member.zone))
        member.activity_id = activity.id
        if not group.status and hooks.hold(member, hooks.TERMINATING_TRANSITION):
            return
        member.lifecycle_state = TERMINATING
        member.hook_name = member.hook_token = member.hook_deadline = None
        plan.terminate.append(member.instance_id)

    def _end_all(self, group: Group, members: list[Member], plan: Plan) -> None:
        """A group being deleted: every member goes."""
        for member in members:
            self._terminating(group, member, f"{group.capacity_cause}  " + activities.said(
                f"instance {member.instance_id} was taken out of service in response to a "
                "user request to delete the group"), plan)

    def _scale_in(self, group: Group, counted: list[Member], facts: dict[str, Any],
                  plan: Plan) -> None:
        ages = self._source_ages(group.account_id)
        candidates = [Candidate(member.instance_id, member.zone,
                                getattr(facts.get(member.instance_id), "launch_time", None)
                                or member.joined_at,
                                ages.get(self._source_key(member), member.joined_at),
                                member.protected) for member in counted]
        victims = choose(candidates, len(counted) - group.desired,
                         loads(group.termination_policies_json, ["Default"]), utcnow())
        by_id = {member.instance_id: member for member in counted}
        before = len(counted)
        prefix = f"{group.capacity_cause}  " if group.capacity_cause else ""
        for index, instance_id in enumerate(victims):
            cause = prefix + activities.said(
                "an instance was taken out of service in response to a difference between "
                f"desired and actual capacity, shrinking the capacity from {before} to "
                f"{group.desired}") + "  " + activities.said(
                f"instance {instance_id} was selected for termination")
            self._terminating(group, by_id[instance_id], cause, plan)
        group.capacity_cause = None

    def _plan_launches(self, group: Group, counted: list[Member], plan: Plan) -> None:
        retry = self.retry_at.get(group.id)
        if retry is not None and time.monotonic() < retry[0]:
            return
        zones = loads(group.zones_json, [])
        per_zone = Counter({zone: 0 for zone in zones})
        per_zone.update(member.zone for member in counted if member.zone in per_zone)
        wanted: Counter = Counter()
        for _ in range(group.desired - len(counted)):
            zone = zone_for_launch({zone: per_zone[zone] + wanted[zone] for zone in zones})
            wanted[zone] += 1
        plan.launches = [(zone, wanted[zone]) for zone in zones if wanted[zone]]
        prefix = f"{group.capacity_cause}  " if group.capacity_cause else ""
        plan.launch_cause = prefix + activities.said(
            "an instance was started in response to a difference between desired and actual "
            f"capacity, increasing the capacity from {len(counted)} to {group.desired}")
        group.capacity_cause = None

    # --- acting ---------------------------------------------------------------------------

    def _launch(self, principal, plan: Plan, zone: str, count: int) -> int:
        """Launch *count* instances in *zone* for the group; record them as Pending
        members, each with its activity, or one failed activity. Returns how many."""
        group = db.session.get(Group, plan.group_id)
        if group is None:
            return 0
        try:
            request = self.launch_request(principal, group, zone)
            request.max_count = count
            rows = self.compute.run_instances(principal, request)
        except AwsError as error:
            db.session.rollback()
            self._launch_failed(plan, zone, error)
            return 0
        self.retry_at.pop(plan.group_id, None)
        with writing():
            group = db.session.get(Group, plan.group_id)
            for row in rows:
                if group is None or db.session.get(Member, row.id) is not None:
                    continue
                activity = activities.start(group, f"Launching a new EC2 instance: {row.id}",
                                            plan.launch_cause, details=self._details(zone))
                db.session.add(Member(
                    instance_id=row.id, group_id=group.id, account_id=group.account_id,
                    zone=row.zone, lifecycle_state=PENDING, health=HEALTHY,
                    launch_config=group.launch_config,
                    launch_template_json=group.launch_template_json,
                    protected=group.protect_new, joined_at=utcnow(),
                    activity_id=activity.id))
            if group is not None:
                activities.trim(group.id)
        return len(rows)

    def _launch_failed(self, plan: Plan, zone: str, error: AwsError) -> None:
        when, delay = self.retry_at.get(plan.group_id, (0.0, RETRY_FIRST / 2))
        delay = min(delay * 2, RETRY_MOST)
        self.retry_at[plan.group_id] = (time.monotonic() + delay, delay)
        with writing():
            group = db.session.get(Group, plan.group_id)
            if group is None:
                return
            reason = f"{error.message.rstrip('.')}. Launching EC2 instance failed."
            activities.start(group, f"Launching a new EC2 instance.  Status Reason: {reason}",
                             plan.launch_cause, status=activities.FAILED, message=reason,
                             details=self._details(zone))
        log.info("auto scaling group %s: launch failed: %s", plan.group_id, error.message)

    def launch_request(self, principal, group: Group, zone: str):
        """The LaunchRequest of one of *group*'s instances in *zone*: from its launch
        configuration or launch template, tagged with its propagated tags and
        ``aws:autoscaling:groupName``."""
        propagated = {tag.key: tag.value for tag in db.session.execute(
            db.select(GroupTag).where(GroupTag.group_id == group.id,
                                      GroupTag.propagate.is_(True))).scalars()}
        system = {GROUP_TAG: group.name}
        if group.launch_config:
            definition = loads(launchconfigs.named(group.account_id,
                                                   group.launch_config).definition_json)
            request = launchconfigs.to_launch_request(definition, tags=propagated, zone=None,
                                                      system_tags=system)
        else:
            spec = loads(group.launch_template_json)
            request = self.compute.launch_template_request(
                principal, template_id=spec["LaunchTemplateId"], version=spec.get("Version"))
            request.min_count = 1
            request.tags = {**(request.tags or {}), **propagated} or None
            request.system_tags = {**(request.system_tags or {}), **system}
        self._place(request, zone)
        return request

    def _place(self, request, zone: str) -> None:
        """Aim *request* at *zone*: a burst target's zone by name; a local zone as the only
        zone it may be placed in, so that when it is full the launch may still overflow to a
        burst target whose policy allows (and an ``always`` target for the group takes it
        first), as RunInstances without a zone would."""
        if zone in self.compute.cluster.zone_names():
            request.zone, request.zones = None, [zone]
        else:
            request.zone, request.zones = zone, None

    def _delete(self, group: Group) -> None:
        """A group being deleted whose instances are all gone."""
        policies.delete_for_group(group, self.cloudwatch)
        db.session.delete(group)

    # --- helpers ----------------------------------------------------------------------------

    def _details(self, zone: str) -> dict[str, str]:
        return {"Availability Zone": zone}

    @staticmethod
    def _source_key(member: Member) -> str:
        return member.launch_config or member.launch_template_json or ""

    @staticmethod
    def _source_ages(account_id: str) -> dict[str, dt.datetime]:
        """Launch configuration name -> when it was made (older ones end first)."""
        return dict(db.session.execute(db.select(LaunchConfiguration.name,
                                                 LaunchConfiguration.created_at).where(
            LaunchConfiguration.account_id == account_id)).all())

