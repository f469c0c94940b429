"""The Auto Scaling role's service object: the whole surface the Query adapter
(:mod:`.api`), the console and the loop call.

Methods take the caller's Principal and the operation's input as botocore's model names it
(a dict), check the caller may (``autoscaling:<Action>``, on the group's ARN where the call
names a group), and return the operation's output dict. Changes are one write transaction
each; a change to a group's capacity wakes the keeper (:meth:`wake`) so instances follow at
once rather than at the next pass.
"""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from .. import access, integers, tags
from ..accounts import Principal, utcnow
from ..db import db, writing
from ..errors import AwsError
from ..errors.iam import AccessDenied
from . import activities, groups, hooks, launchconfigs, policies, schedule
from .common import (ADJUSTMENT_TYPES, IN_SERVICE, PROCESSES, STANDBY,
                     TERMINATING, TERMINATION_POLICIES, UNHEALTHY, GROUP_TAG, group_named,
                     loads, page_bounds, validation)
from .keeper import Keeper
from .models import Group, GroupTag, LaunchConfiguration, Member, Policy

#: The group metrics EnableMetricsCollection accepts (AWS/AutoScaling).
GROUP_METRICS = ("GroupMinSize", "GroupMaxSize", "GroupDesiredCapacity",
                 "GroupInServiceInstances", "GroupPendingInstances", "GroupStandbyInstances",
                 "GroupTerminatingInstances", "GroupTotalInstances",
                 "GroupInServiceCapacity", "GroupPendingCapacity", "GroupStandbyCapacity",
                 "GroupTerminatingCapacity", "GroupTotalCapacity")


def _token(position: int | None) -> str | None:
    return None if position is None else str(position)


def _position(token: str | None) -> int:
    """Where a page starts: 0, or the position a NextToken carries."""
    if not token:
        return 0
    position = integers.parse(token, max_digits=12)
    if position is None:
        raise validation("The NextToken is not valid.")
    return position


class AutoScalingService:
    """Auto Scaling over the cloud controller (launching and terminating instances) and
    CloudWatch (the alarms that run policies, group metrics)."""

    def __init__(self, config: dict[str, Any], compute, cloudwatch):
        self.config = config
        self.region = config.get("region", "eucalyptus")
        self.compute = compute
        self.cloudwatch = cloudwatch
        self.keeper = Keeper(compute, cloudwatch)
        #: Set to make the background loop run a pass now (:meth:`wake`).
        self.woken = threading.Event()
        cloudwatch.actions.register("arn:aws:autoscaling:", self._run_alarm_action)

    # --- who may ------------------------------------------------------------------------

    def authorize(self, principal: Principal, action: str, resource: str = "*") -> None:
        """AccessDenied unless *principal* may take ``autoscaling:<action>``."""
        try:
            access.require(principal, f"autoscaling:{action}", resource)
        except access.Denied as denied:
            message = (f"User: {denied.caller_arn} is not authorized to perform: "
                       f"autoscaling:{action}")
            if resource != "*":
                message += f" on resource: {resource}"
            raise AccessDenied(message) from None

    def _group(self, principal: Principal, name: str, action: str) -> Group:
        group = group_named(principal.account_id, name)
        self.authorize(principal, action, group.arn)
        return group

    def wake(self) -> None:
        self.woken.set()

    # --- launch configurations -----------------------------------------------------------

    def create_launch_configuration(self, principal: Principal, request: dict) -> None:
        self.authorize(principal, "CreateLaunchConfiguration")
        with writing():
            launchconfigs.create(principal, self.region, request, self.compute)

    def describe_launch_configurations(self, principal: Principal, request: dict) -> dict:
        self.authorize(principal, "DescribeLaunchConfigurations")
        rows, following = launchconfigs.describe(
            principal.account_id, request.get("LaunchConfigurationNames") or [],
            _position(request.get("NextToken")), page_bounds(request.get("MaxRecords")))
        return {"LaunchConfigurations": [launchconfigs.render(row) for row in rows],
                "NextToken": _token(following)}

    def delete_launch_configuration(self, principal: Principal, name: str) -> None:
        self.authorize(principal, "DeleteLaunchConfiguration")
        with writing():
            launchconfigs.delete(principal.account_id, name)

    # --- groups ----------------------------------------------------------------------------

    def create_group(self, principal: Principal, request: dict) -> None:
        self.authorize(principal, "CreateAutoScalingGroup")
        with writing():
            groups.create(principal, self.region, request, self._zone_names(), self.compute)
        self.wake()

    def update_group(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "UpdateAutoScalingGroup")
            groups.update(principal, group, request, self._zone_names(), self.compute)
        self.wake()

    def _zone_names(self) -> list[str]:
        """The zones a group may use: the cluster's and the burst targets'."""
        return [zone.name for zone in self.compute.zones()]

    def delete_group(self, principal: Principal, name: str, force: bool) -> None:
        with writing():
            group = self._group(principal, name, "DeleteAutoScalingGroup")
            gone_now = groups.delete(group, force)
            alarm_names = [alarm for policy in db.session.execute(
                db.select(Policy).where(Policy.group_id == group.id)).scalars()
                for alarm in policies.alarm_names(policy)] if gone_now else []
        if alarm_names:
            self.cloudwatch.delete_service_alarms(principal.account_id, alarm_names)
        self.wake()

    def describe_groups(self, principal: Principal, request: dict) -> dict:
        self.authorize(principal, "DescribeAutoScalingGroups")
        rows, following = groups.describe(
            principal.account_id, request.get("AutoScalingGroupNames") or [],
            request.get("Filters") or [], _position(request.get("NextToken")),
            page_bounds(request.get("MaxRecords")))
        ids = [row.id for row in rows]
        members = groups.members_of(ids)
        tags = groups.tags_of(ids)
        facts = self._facts(principal.account_id,
                            [member for group_members in members.values()
                             for member in group_members])
        include = request.get("IncludeInstances", True)
        return {"AutoScalingGroups": [groups.render(row, members[row.id] if include else [],
                                                    tags[row.id], facts) for row in rows],
                "NextToken": _token(following)}

    def _facts(self, account_id: str, members: list[Member]) -> dict[str, tuple[str, str]]:
        rows = self.compute.instances_by_id(account_id,
                                            [member.instance_id for member in members])
        return {instance_id: (row.instance_type, row.image_id)
                for instance_id, row in rows.items()}

    def describe_instances(self, principal: Principal, request: dict) -> dict:
        """DescribeAutoScalingInstances."""
        self.authorize(principal, "DescribeAutoScalingInstances")
        query = db.select(Member, Group.name).join(Group, Group.id == Member.group_id).where(
            Member.account_id == principal.account_id)
        if request.get("InstanceIds"):
            query = query.where(Member.instance_id.in_(request["InstanceIds"]))
        after = _position(request.get("NextToken"))
        limit = page_bounds(request.get("MaxRecords"))
        rows = db.session.execute(query.order_by(Member.instance_id).offset(after)
                                  .limit(limit + 1)).all()
        facts = self._facts(principal.account_id, [member for member, _ in rows[:limit]])
        return {"AutoScalingInstances": [groups.render_member(member, facts, name)
                                         for member, name in rows[:limit]],
                "NextToken": _token(after + limit if len(rows) > limit else None)}

    def set_desired_capacity(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "SetDesiredCapacity")
            if request.get("HonorCooldown") and groups.in_cooldown(group):
                raise AwsError("Scaling activity is in progress and blocks this action: the "
                               "group is in its cooldown period.",
                               code="ScalingActivityInProgress", status=400)
            groups.set_desired(group, request["DesiredCapacity"],
                               "a user request explicitly set group desired capacity")
        self.wake()

    def terminate_instance(self, principal: Principal, instance_id: str,
                           decrement: bool) -> dict:
        """TerminateInstanceInAutoScalingGroup: the member ends (Terminating) and, without
        *decrement*, the keeper replaces it."""
        with writing():
            member, group = self._member(principal, instance_id,
                                         "TerminateInstanceInAutoScalingGroup")
            if decrement:
                if group.desired <= group.min_size:
                    raise validation(
                        f"Currently, desiredSize equals minSize ({group.min_size}). "
                        "Terminating instance without replacement will violate group's min "
                        "size constraint. Either set shouldDecrementDesiredCapacity flag to "
                        "false or lower group's min size.")
                old = group.desired
                group.desired -= 1
                cause = activities.said(f"instance {instance_id} was taken out of service in "
                                        "response to a user request, shrinking the capacity "
                                        f"from {old} to {group.desired}")
            else:
                cause = activities.said(f"instance {instance_id} was taken out of service in "
                                        "response to a user request")
            activity = activities.start(group, f"Terminating EC2 instance: {instance_id}",
                                        cause, details={"Availability Zone": member.zone})
            member.activity_id = activity.id
            answer = activities.render(activity, group.name, group.arn)
            # the group's terminating hooks first, if it has any (the keeper terminates it)
            held = hooks.hold(member, hooks.TERMINATING_TRANSITION)
            if not held:
                member.lifecycle_state = TERMINATING
        if not held:
            self.compute.terminate(principal, [instance_id])
            db.session.commit()
        self.wake()
        return {"Activity": answer}

    def _member(self, principal: Principal, instance_id: str,
                action: str) -> tuple[Member, Group]:
        member = db.session.get(Member, instance_id)
        if member is None or member.account_id != principal.account_id:
            raise validation(f"Instance Id not found - No managed instance found for "
                             f"instance ID: {instance_id}")
        group = db.session.get(Group, member.group_id)
        self.authorize(principal, action, group.arn)
        return member, group

    def _members(self, principal: Principal, group: Group,
                 instance_ids: list[str]) -> list[Member]:
        found = []
        for instance_id in instance_ids:
            member = db.session.get(Member, instance_id)
            if member is None or member.group_id != group.id:
                raise validation(f"The instance {instance_id} is not part of Auto Scaling "
                                 f"group {group.name}.")
            found.append(member)
        return found

    def attach_instances(self, principal: Principal, request: dict) -> None:
        """AttachInstances: running instances of the caller in the group's zones join it,
        each raising the desired capacity by one."""
        ids = request.get("InstanceIds") or []
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], "AttachInstances")
            rows = self.compute.instances_by_id(principal.account_id, ids)
            zones = loads(group.zones_json, [])
            for instance_id in ids:
                row = rows.get(instance_id)
                if row is None or row.state != "running":
                    raise validation(f"Instance {instance_id} is not in correct state: it "
                                     "must be running.")
                if row.zone not in zones:
                    raise validation(f"Instance {instance_id} is in the availability zone "
                                     f"{row.zone}, which the group does not use.")
                if db.session.get(Member, instance_id) is not None:
                    raise validation(f"The instance {instance_id} is already part of an Auto "
                                     "Scaling group.")
            if group.desired + len(ids) > group.max_size:
                raise validation(f"AutoScalingGroup {group.name} has min-size={group.min_size}, "
                                 f"max-size={group.max_size}, and desired-size={group.desired}."
                                 f" To attach {len(ids)} more instance(s), increase the "
                                 "size of the group's max-size.")
            old = group.desired
            group.desired += len(ids)
            cause = activities.said(f"a user request AttachInstances Instances: "
                                    f"[{', '.join(ids)}] "
                                    f"{activities.capacity_change(old, group.desired)}")
            for instance_id in ids:
                activities.start(group, f"Attaching an existing EC2 instance: {instance_id}",
                                 cause + "  " + activities.said(
                                     "an instance was added in response to user request. "
                                     f"Keeping the capacity at the new {group.desired}"),
                                 status=activities.SUCCESSFUL,
                                 details={"Availability Zone": rows[instance_id].zone})
                db.session.add(Member(instance_id=instance_id, group_id=group.id,
                                      account_id=group.account_id,
                                      zone=rows[instance_id].zone, lifecycle_state=IN_SERVICE,
                                      health="Healthy", launch_config=group.launch_config,
                                      launch_template_json=group.launch_template_json,
                                      protected=group.protect_new, joined_at=utcnow()))
            tags.tag_system(principal.account_id, "instance", ids, {GROUP_TAG: group.name})

    def detach_instances(self, principal: Principal, request: dict) -> dict:
        """DetachInstances: the instances leave the group (and lose its tag) but keep
        running; without ShouldDecrementDesiredCapacity the keeper replaces them."""
        ids = request.get("InstanceIds") or []
        decrement = request["ShouldDecrementDesiredCapacity"]
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], "DetachInstances")
            members = self._members(principal, group, ids)
            old = group.desired
            if decrement:
                if group.desired - len(ids) < group.min_size:
                    raise validation(f"The number of instances to detach would take the "
                                     f"group below its min size of {group.min_size}.")
                group.desired -= len(ids)
            answers = []
            for member in members:
                shrink = (f", shrinking the capacity from {old} to {group.desired}"
                          if decrement else "")
                activity = activities.start(
                    group, f"Detaching EC2 instance: {member.instance_id}",
                    activities.said(f"instance {member.instance_id} was detached in response "
                                    f"to a user request{shrink}"),
                    status=activities.SUCCESSFUL, details={"Availability Zone": member.zone})
                answers.append(activities.render(activity, group.name, group.arn))
                db.session.delete(member)
            tags.untag_system(principal.account_id, ids, GROUP_TAG)
        self.wake()
        return {"Activities": answers}

    def standby(self, principal: Principal, request: dict, enter: bool) -> dict:
        """EnterStandby / ExitStandby."""
        ids = request.get("InstanceIds") or []
        action = "EnterStandby" if enter else "ExitStandby"
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], action)
            members = self._members(principal, group, ids)
            wanted = IN_SERVICE if enter else STANDBY
            for member in members:
                if member.lifecycle_state != wanted:
                    raise validation(f"The instance {member.instance_id} is not in "
                                     f"{wanted}.")
            old = group.desired
            if enter and request["ShouldDecrementDesiredCapacity"]:
                if group.desired - len(ids) < group.min_size:
                    raise validation("Putting these instances in Standby would take the "
                                     f"group below its min size of {group.min_size}.")
                group.desired -= len(ids)
            if not enter:
                if group.desired + len(ids) > group.max_size:
                    raise validation("Taking these instances out of Standby would take the "
                                     f"group above its max size of {group.max_size}.")
                group.desired += len(ids)
            answers = []
            for member in members:
                what = (f"instance {member.instance_id} was moved to standby in response to "
                        "a user request" if enter else
                        f"instance {member.instance_id} was moved out of standby in response "
                        "to a user request")
                if group.desired != old:
                    what += f", {'shrinking' if enter else 'increasing'} the capacity from " \
                            f"{old} to {group.desired}"
                activity = activities.start(
                    group, ("Moving EC2 instance to Standby: " if enter else
                            "Moving EC2 instance out of Standby: ") + member.instance_id,
                    activities.said(what), status=activities.SUCCESSFUL,
                    details={"Availability Zone": member.zone})
                answers.append(activities.render(activity, group.name, group.arn))
                member.lifecycle_state = STANDBY if enter else IN_SERVICE
        self.wake()
        return {"Activities": answers}

    def set_instance_health(self, principal: Principal, request: dict) -> None:
        with writing():
            member, group = self._member(principal, request["InstanceId"],
                                         "SetInstanceHealth")
            status = request["HealthStatus"]
            if status not in ("Healthy", "Unhealthy"):
                raise validation("Valid health status values are Healthy and Unhealthy.")
            if status == UNHEALTHY and request.get("ShouldRespectGracePeriod", True) and \
                    (utcnow() - member.joined_at).total_seconds() < group.grace_period:
                return
            member.health = status
            member.health_reason = (None if status != UNHEALTHY else
                                    "an instance was taken out of service in response to a "
                                    "user health-check")
        self.wake()

    def set_instance_protection(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "SetInstanceProtection")
            for member in self._members(principal, group, request.get("InstanceIds") or []):
                member.protected = bool(request["ProtectedFromScaleIn"])

    def suspend_processes(self, principal: Principal, request: dict, suspend: bool) -> None:
        action = "SuspendProcesses" if suspend else "ResumeProcesses"
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], action)
            groups.suspend(group, request.get("ScalingProcesses") or [], suspend)
        self.wake()

    def enable_metrics(self, principal: Principal, request: dict, enable: bool) -> None:
        """EnableMetricsCollection / DisableMetricsCollection (all metrics when none is
        named); the loop publishes enabled ones to AWS/AutoScaling each minute."""
        action = "EnableMetricsCollection" if enable else "DisableMetricsCollection"
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], action)
            names = request.get("Metrics") or list(GROUP_METRICS)
            for name in names:
                if name not in GROUP_METRICS:
                    raise validation(f"Unknown metric {name}.")
            if enable and request.get("Granularity") != "1Minute":
                raise validation("Granularity must be 1Minute.")
            enabled = loads(group.metrics_json, {})
            for name in names:
                if enable:
                    enabled[name] = "1Minute"
                else:
                    enabled.pop(name, None)
            group.metrics_json = groups.dumps(enabled)

    # --- tags ------------------------------------------------------------------------------

    def create_or_update_tags(self, principal: Principal, tags: list[dict]) -> None:
        with writing():
            by_group: dict[str, list[dict]] = {}
            for tag in tags:
                if tag.get("ResourceType", "auto-scaling-group") != "auto-scaling-group":
                    raise validation("ResourceType must be auto-scaling-group.")
                by_group.setdefault(tag.get("ResourceId") or "", []).append(tag)
            for name, group_tags in by_group.items():
                groups.put_tags(self._group(principal, name, "CreateOrUpdateTags"),
                                group_tags)

    def delete_tags(self, principal: Principal, tags: list[dict]) -> None:
        with writing():
            for tag in tags:
                group = self._group(principal, tag.get("ResourceId") or "", "DeleteTags")
                groups.delete_tags(group, [tag["Key"]])

    def describe_tags(self, principal: Principal, request: dict) -> dict:
        self.authorize(principal, "DescribeTags")
        query = db.select(GroupTag, Group.name).join(Group, Group.id == GroupTag.group_id) \
            .where(Group.account_id == principal.account_id)
        columns = {"auto-scaling-group": Group.name, "key": GroupTag.key,
                   "value": GroupTag.value}
        for spec in request.get("Filters") or []:
            name, values = spec.get("Name"), spec.get("Values") or []
            if name == "propagate-at-launch":
                query = query.where(GroupTag.propagate.in_(
                    [value.lower() == "true" for value in values]))
            elif name in columns:
                query = query.where(columns[name].in_(values))
            else:
                raise validation(f"Filter name {name} is not supported.")
        after = _position(request.get("NextToken"))
        limit = page_bounds(request.get("MaxRecords"))
        rows = db.session.execute(query.order_by(Group.name, GroupTag.key).offset(after)
                                  .limit(limit + 1)).all()
        return {"Tags": [groups.render_tag(tag, name) for tag, name in rows[:limit]],
                "NextToken": _token(after + limit if len(rows) > limit else None)}

    # --- activities -------------------------------------------------------------------------

    def describe_activities(self, principal: Principal, request: dict) -> dict:
        self.authorize(principal, "DescribeScalingActivities")
        group = None
        if request.get("AutoScalingGroupName"):
            try:
                group = group_named(principal.account_id, request["AutoScalingGroupName"])
            except AwsError:
                return {"Activities": []}
        rows, following = activities.describe(
            principal.account_id, group, request.get("ActivityIds") or [],
            _position(request.get("NextToken")), page_bounds(request.get("MaxRecords")))
        return {"Activities": [activities.render(row, name) for row, name in rows],
                "NextToken": _token(following)}

    # --- policies --------------------------------------------------------------------------

    def put_policy(self, principal: Principal, request: dict) -> dict:
        definition = policies.check(request)
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], "PutScalingPolicy")
            policy, alarms = policies.put(principal.account_id, self.region, group,
                                          request["PolicyName"], definition)
            answer = {"PolicyARN": policy.arn, "Alarms": loads(policy.alarms_json, [])}
        for alarm in alarms:
            self.cloudwatch.put_service_alarm(principal.account_id, alarm)
        return answer

    @staticmethod
    def _named_group(principal: Principal, request: dict) -> Group | None:
        """The group a Describe call narrows to (its AutoScalingGroupName), if it names
        one; ValidationError when there is no such group."""
        name = request.get("AutoScalingGroupName")
        return group_named(principal.account_id, name) if name else None

    def describe_policies(self, principal: Principal, request: dict) -> dict:
        self.authorize(principal, "DescribePolicies")
        rows, following = policies.describe(
            principal.account_id, self._named_group(principal, request), request.get("PolicyNames") or [],
            request.get("PolicyTypes") or [], _position(request.get("NextToken")),
            page_bounds(request.get("MaxRecords")))
        return {"ScalingPolicies": [policies.render(row, name) for row, name in rows],
                "NextToken": _token(following)}

    def delete_policy(self, principal: Principal, request: dict) -> None:
        with writing():
            name = request["PolicyName"]
            if request.get("AutoScalingGroupName"):
                group = self._group(principal, request["AutoScalingGroupName"], "DeletePolicy")
                policy = policies.named(group, name)
            else:
                policy = policies.by_arn(principal.account_id, name)
                if policy is None:
                    raise validation(f"No scaling policy found for the name {name}")
                self.authorize(principal, "DeletePolicy",
                               db.session.get(Group, policy.group_id).arn)
            alarm_names = policies.alarm_names(policy)
            db.session.delete(policy)
        if alarm_names:
            self.cloudwatch.delete_service_alarms(principal.account_id, alarm_names)

    def execute_policy(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], "ExecutePolicy") \
                if request.get("AutoScalingGroupName") else None
            policy = policies.named(group, request["PolicyName"]) if group else \
                policies.by_arn(principal.account_id, request["PolicyName"])
            if policy is None:
                raise validation(f"No scaling policy found for the name "
                                 f"{request['PolicyName']}")
            group = group or db.session.get(Group, policy.group_id)
            if loads(policy.definition_json)["PolicyType"] == "TargetTrackingScaling":
                raise validation("ExecutePolicy is not supported for target tracking scaling "
                                 "policies.")
            try:
                policies.act(policy, group, policies.user_cause(policy),
                             metric_value=request.get("MetricValue"),
                             threshold=request.get("BreachThreshold"),
                             honor_cooldown=request.get("HonorCooldown", False))
            except policies.NotActed as why:
                if "cooldown" in str(why):
                    raise AwsError(f"Scaling activity is in progress and blocks this action: "
                                   f"{why}.", code="ScalingActivityInProgress",
                                   status=400) from None
        self.wake()

    def _run_alarm_action(self, account_id: str, action_arn: str, transition) -> None:
        """CloudWatch's runner for ``arn:aws:autoscaling:`` actions: run the policy the
        ARN names. Raises (the alarm's history records why) when it cannot act."""
        with writing():
            policy = policies.by_arn(account_id, action_arn)
            if policy is None:
                raise RuntimeError("no such scaling policy")
            group = db.session.get(Group, policy.group_id)
            if groups.suspended(group, "AlarmNotification"):
                raise RuntimeError(f"the group {group.name}'s AlarmNotification process is "
                                   "suspended")
            repeat = transition.old == transition.new
            try:
                policies.act(policy, group, policies.alarm_cause(transition.name,
                                                                 transition.new, policy),
                             metric_value=transition.value, threshold=transition.threshold,
                             alarm_name=transition.name)
            except policies.NotActed as why:
                if repeat:
                    return
                raise RuntimeError(str(why)) from None
        self.wake()

    # --- lifecycle hooks --------------------------------------------------------------------

    def put_lifecycle_hook(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"], "PutLifecycleHook")
            hooks.put(group, request)

    def describe_lifecycle_hooks(self, principal: Principal, request: dict) -> dict:
        group = self._group(principal, request["AutoScalingGroupName"],
                            "DescribeLifecycleHooks")
        names = request.get("LifecycleHookNames") or []
        return {"LifecycleHooks": [hooks.render(hook, group.name)
                                   for hook in hooks.of_group(group.id)
                                   if not names or hook.name in names]}

    def delete_lifecycle_hook(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "DeleteLifecycleHook")
            hook = hooks.named(group, request["LifecycleHookName"])
            # instances it holds go on as if it had timed out
            for member in db.session.execute(db.select(Member).where(
                    Member.group_id == group.id, Member.hook_name == hook.name)).scalars():
                hooks.release(member, hook.default_result)
            db.session.delete(hook)
        self.wake()

    def complete_lifecycle_action(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "CompleteLifecycleAction")
            result = request["LifecycleActionResult"]
            if result not in hooks.RESULTS:
                raise validation("LifecycleActionResult must be CONTINUE or ABANDON.")
            hooks.release(hooks.waiting(group, request), result)
        self.wake()

    def record_heartbeat(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "RecordLifecycleActionHeartbeat")
            hooks.heartbeat(hooks.waiting(group, request))

    # --- scheduled actions ------------------------------------------------------------------

    def put_scheduled_action(self, principal: Principal, request: dict) -> None:
        with writing():
            group = self._group(principal, request["AutoScalingGroupName"],
                                "PutScheduledUpdateGroupAction")
            schedule.put(principal.account_id, self.region, group, request)
        self.wake()

    def batch_put_scheduled_actions(self, principal: Principal, request: dict) -> dict:
        failed = []
        for item in request.get("ScheduledUpdateGroupActions") or []:
            try:
                self.put_scheduled_action(principal, {
                    "AutoScalingGroupName": request["AutoScalingGroupName"], **item})
            except AwsError as error:
                failed.append({"ScheduledActionName": item["ScheduledActionName"],
                               "ErrorCode": error.code, "ErrorMessage": error.message})
        return {"FailedScheduledUpdateGroupActions": failed}

    def describe_scheduled_actions(self, principal: Principal, request: dict) -> dict:
        self.authorize(principal, "DescribeScheduledActions")
        rows, following = schedule.describe(
            principal.account_id, self._named_group(principal, request), request.get("ScheduledActionNames") or [],
            request.get("StartTime"), request.get("EndTime"),
            _position(request.get("NextToken")), page_bounds(request.get("MaxRecords")))
        return {"ScheduledUpdateGroupActions": [schedule.render(row, name)
                                                for row, name in rows],
                "NextToken": _token(following)}

    def delete_scheduled_action(self, principal: Principal, group_name: str,
                                name: str) -> None:
        with writing():
            group = self._group(principal, group_name, "DeleteScheduledAction")
            db.session.delete(schedule.named(group, name))

    def batch_delete_scheduled_actions(self, principal: Principal, request: dict) -> dict:
        failed = []
        for name in request.get("ScheduledActionNames") or []:
            try:
                self.delete_scheduled_action(principal, request["AutoScalingGroupName"], name)
            except AwsError as error:
                failed.append({"ScheduledActionName": name, "ErrorCode": error.code,
                               "ErrorMessage": error.message})
        return {"FailedScheduledActions": failed}

    # --- fixed vocabularies -------------------------------------------------------------

    def describe_account_limits(self, principal: Principal) -> dict:
        self.authorize(principal, "DescribeAccountLimits")
        count = lambda model: db.session.execute(  # noqa: E731
            db.select(db.func.count()).select_from(model).where(
                model.account_id == principal.account_id)).scalar()
        return {"MaxNumberOfAutoScalingGroups": groups.MAX_PER_ACCOUNT,
                "MaxNumberOfLaunchConfigurations": launchconfigs.MAX_PER_ACCOUNT,
                "NumberOfAutoScalingGroups": count(Group),
                "NumberOfLaunchConfigurations": count(LaunchConfiguration)}

    @staticmethod
    def vocabulary() -> dict[str, list[str]]:
        return {"processes": list(PROCESSES), "termination": list(TERMINATION_POLICIES),
                "adjustments": list(ADJUSTMENT_TYPES), "metrics": list(GROUP_METRICS)}

    # --- the background duty ----------------------------------------------------------------

    def run_pass(self, now: dt.datetime | None = None) -> int:
        """Fire due scheduled actions, then keep every group (:class:`.keeper.Keeper`);
        returns how many instances were launched or ended."""
        now = now or utcnow()
        for action_id in schedule.due(now):
            with writing():
                schedule.fire(action_id, now)
        return self.keeper.run()

    def group_metrics(self) -> list[tuple[str, str, dict[str, float]]]:
        """(account, group name, {metric: value}) of each group with metrics enabled."""
        found = []
        for group in db.session.execute(db.select(Group).where(Group.metrics_json != "{}")
                                        ).scalars():
            enabled = loads(group.metrics_json, {})
            members = groups.members_of([group.id])[group.id]
            by_state = {state: sum(1 for member in members if member.lifecycle_state == state)
                        for state in ("Pending", IN_SERVICE, STANDBY, TERMINATING)}
            values = {"GroupMinSize": group.min_size, "GroupMaxSize": group.max_size,
                      "GroupDesiredCapacity": group.desired,
                      "GroupInServiceInstances": by_state[IN_SERVICE],
                      "GroupPendingInstances": by_state["Pending"],
                      "GroupStandbyInstances": by_state[STANDBY],
                      "GroupTerminatingInstances": by_state[TERMINATING],
                      "GroupTotalInstances": len(members)}
            for kind in ("InService", "Pending", "Standby", "Terminating", "Total"):
                values[f"Group{kind}Capacity"] = values[f"Group{kind}Instances"]
            found.append((group.account_id, group.name,
                          {name: float(values[name]) for name in enabled}))
        return found
