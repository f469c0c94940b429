"""Scaling policies: simple, step and target tracking, run by CloudWatch alarms (whose
actions name a policy's ARN) or by ExecutePolicy, and what each does to a group's desired
capacity, as AWS documents it.

- Simple: the adjustment, then the policy's cooldown (the group's default if it has none)
  before it acts again.
- Step: the step whose interval (relative to the alarm's threshold) holds the breaching
  value; no cooldown (the instance warm-up is not modelled: each alarm evaluation acts).
- Target tracking: two alarms eucalite makes on the metric (AlarmHigh: 3 of 3 minutes
  above the target; AlarmLow: 15 of 15 minutes below 90% of it, none with DisableScaleIn);
  either sets the capacity to ``ceil(capacity * metric / target)``, scaling in only when
  that is lower.

Changing capacity goes through :func:`eucalite.autoscaling.groups.set_desired`, clamped to
the group's bounds, with the cause AWS writes ("a monitor alarm X in state ALARM triggered
policy Y changing the desired capacity from 1 to 2").
"""
from __future__ import annotations

import math
import uuid
from typing import Any

from sqlalchemy import or_

from ..accounts import utcnow
from ..db import db
from ..errors import AwsError
from . import groups
from .common import ADJUSTMENT_TYPES, arn, dumps, loads, validation
from .models import Group, Policy

POLICY_TYPES = ("SimpleScaling", "StepScaling", "TargetTrackingScaling")
#: Target tracking's predefined metrics: (namespace, metric name, statistic, unit).
PREDEFINED = {"ASGAverageCPUUtilization": ("AWS/EC2", "CPUUtilization", "Average", "Percent"),
              "ASGAverageNetworkIn": ("AWS/EC2", "NetworkIn", "Average", "Bytes"),
              "ASGAverageNetworkOut": ("AWS/EC2", "NetworkOut", "Average", "Bytes")}
#: Policies per group (AWS's quota).
MAX_PER_GROUP = 50


class NotActed(Exception):
    """The policy ran but changed nothing (cooldown, a suspended process): the reason is
    what the alarm's history records."""


# --- definitions -----------------------------------------------------------------------

def check(request: dict[str, Any]) -> dict[str, Any]:
    """PutScalingPolicy's input as the policy's definition; ValidationError for what AWS
    refuses."""
    kind = request.get("PolicyType") or "SimpleScaling"
    if kind == "PredictiveScaling":
        raise validation("Predictive scaling is not supported by eucalite.")
    if kind not in POLICY_TYPES:
        raise validation(f"Unknown policy type {kind}.")
    definition = {key: value for key, value in request.items()
                  if key not in ("AutoScalingGroupName", "PolicyName")}
    definition["PolicyType"] = kind
    if kind == "TargetTrackingScaling":
        _check_target_tracking(request)
        for member in ("AdjustmentType", "ScalingAdjustment", "StepAdjustments", "Cooldown"):
            if member in request:
                raise validation(f"{member} is not supported for policy type {kind}.")
        return definition
    if request.get("TargetTrackingConfiguration"):
        raise validation(f"TargetTrackingConfiguration is not supported for policy type "
                         f"{kind}.")
    adjustment = request.get("AdjustmentType")
    if adjustment not in ADJUSTMENT_TYPES:
        raise validation("AdjustmentType must be one of " + ", ".join(ADJUSTMENT_TYPES)
                         if adjustment else f"AdjustmentType is required for {kind} policies.")
    if request.get("MinAdjustmentMagnitude") is not None and \
            adjustment != "PercentChangeInCapacity":
        raise validation("MinAdjustmentMagnitude is only supported with "
                         "PercentChangeInCapacity.")
    if kind == "SimpleScaling":
        if request.get("ScalingAdjustment") is None:
            raise validation("ScalingAdjustment is required for SimpleScaling policies.")
        if request.get("StepAdjustments"):
            raise validation("StepAdjustments are not supported for SimpleScaling policies.")
    else:
        _check_steps(request.get("StepAdjustments") or [])
        if request.get("ScalingAdjustment") is not None or "Cooldown" in request:
            raise validation("ScalingAdjustment and Cooldown are not supported for "
                             "StepScaling policies.")
    return definition


def _check_steps(steps: list[dict[str, Any]]) -> None:
    """Step adjustments must not overlap or leave gaps, and at most one may be unbounded at
    each end (AWS's rules)."""
    if not steps:
        raise validation("StepAdjustments are required for StepScaling policies.")
    inf = math.inf
    bounds = sorted((step.get("MetricIntervalLowerBound", -inf),
                     step.get("MetricIntervalUpperBound", inf)) for step in steps)
    for lower, upper in bounds:
        if lower >= upper:
            raise validation("The upper bound of a step adjustment must be greater than its "
                             "lower bound.")
    for (_, upper), (lower, _) in zip(bounds, bounds[1:]):
        if upper != lower:
            raise validation("Step adjustments must not overlap or have gaps between them.")
    if bounds[0][0] != -inf and bounds[-1][1] != inf:
        raise validation("At least one step adjustment must have no lower or no upper bound.")


def _check_target_tracking(request: dict[str, Any]) -> None:
    config = request.get("TargetTrackingConfiguration")
    if not config:
        raise validation("TargetTrackingConfiguration is required for TargetTrackingScaling "
                         "policies.")
    predefined = config.get("PredefinedMetricSpecification")
    custom = config.get("CustomizedMetricSpecification")
    if bool(predefined) == bool(custom):
        raise validation("Exactly one of PredefinedMetricSpecification and "
                         "CustomizedMetricSpecification must be given.")
    if predefined and predefined["PredefinedMetricType"] not in PREDEFINED:
        raise validation(f"Predefined metric {predefined['PredefinedMetricType']} is not "
                         "supported by eucalite (it has no load balancers).")
    if custom and (custom.get("Metrics") or not custom.get("MetricName")):
        raise validation("A customized metric must name one metric (MetricName, Namespace, "
                         "Statistic); metric math is not supported for target tracking.")


def put(account_id: str, region: str, group: Group, name: str,
        definition: dict[str, Any]) -> tuple[Policy, list[dict[str, Any]]]:
    """Create or replace the group's policy *name* (in the caller's transaction); returns
    it and, for target tracking, the alarms to put (PutMetricAlarm requests) after the
    commit. A replaced target-tracking policy keeps its alarms' names."""
    policy = db.session.execute(db.select(Policy).where(
        Policy.group_id == group.id, Policy.name == name)).scalar_one_or_none()
    if policy is None:
        count = db.session.execute(db.select(db.func.count()).select_from(Policy).where(
            Policy.group_id == group.id)).scalar()
        if count >= MAX_PER_GROUP:
            raise AwsError(f"You have reached the limit of {MAX_PER_GROUP} policies for the "
                           "group.", code="LimitExceeded", status=400)
        policy = Policy(account_id=account_id, group_id=group.id, name=name,
                        arn=arn(region, account_id, "scalingPolicy",
                                f"autoScalingGroupName/{group.name}:policyName/{name}"),
                        alarms_json="[]")
        db.session.add(policy)
    policy.definition_json = dumps(definition)
    alarms: list[dict[str, Any]] = []
    if definition["PolicyType"] == "TargetTrackingScaling":
        alarms = tracking_alarms(group, policy, definition,
                                 [alarm["AlarmName"] for alarm in loads(policy.alarms_json)])
        policy.alarms_json = dumps([{"AlarmName": alarm["AlarmName"],
                                     "AlarmARN": _alarm_arn(region, account_id,
                                                            alarm["AlarmName"])}
                                    for alarm in alarms])
    db.session.flush()
    return policy, alarms


def _alarm_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"


def tracking_alarms(group: Group, policy: Policy, definition: dict[str, Any],
                    names: list[str]) -> list[dict[str, Any]]:
    """The PutMetricAlarm requests of a target-tracking policy's alarms (re-using *names*,
    high then low, when it had them)."""
    config = definition["TargetTrackingConfiguration"]
    target = float(config["TargetValue"])
    predefined = config.get("PredefinedMetricSpecification")
    if predefined:
        namespace, metric, statistic, unit = PREDEFINED[predefined["PredefinedMetricType"]]
        metric_part = {"Namespace": namespace, "MetricName": metric, "Statistic": statistic,
                       "Unit": unit, "Dimensions": [{"Name": "AutoScalingGroupName",
                                                     "Value": group.name}]}
    else:
        custom = config["CustomizedMetricSpecification"]
        metric_part = {"Namespace": custom["Namespace"], "MetricName": custom["MetricName"],
                       "Statistic": custom.get("Statistic", "Average"),
                       "Dimensions": custom.get("Dimensions") or []}
        if custom.get("Unit"):
            metric_part["Unit"] = custom["Unit"]
    token = uuid.uuid4()
    high = names[0] if names else f"TargetTracking-{group.name}-AlarmHigh-{token}"
    low = names[1] if len(names) > 1 else f"TargetTracking-{group.name}-AlarmLow-{token}"
    common = {**metric_part, "Period": 60, "AlarmActions": [policy.arn],
              "AlarmDescription": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
                                  f"{policy.arn}."}
    alarms = [{**common, "AlarmName": high, "EvaluationPeriods": 3, "DatapointsToAlarm": 3,
               "Threshold": target, "ComparisonOperator": "GreaterThanThreshold"}]
    if not config.get("DisableScaleIn"):
        alarms.append({**common, "AlarmName": low, "EvaluationPeriods": 15,
                       "DatapointsToAlarm": 15, "Threshold": target * 0.9,
                       "ComparisonOperator": "LessThanThreshold"})
    return alarms


def named(group: Group, name: str) -> Policy:
    policy = db.session.execute(db.select(Policy).where(
        Policy.group_id == group.id, or_(Policy.name == name, Policy.arn == name))
    ).scalar_one_or_none()
    if policy is None:
        raise validation(f"No scaling policy found for the name {name}")
    return policy


def by_arn(account_id: str, policy_arn: str) -> Policy | None:
    return db.session.execute(db.select(Policy).where(
        Policy.account_id == account_id, Policy.arn == policy_arn)).scalar_one_or_none()


def describe(account_id: str, group: Group | None, names: list[str], types: list[str],
             after: int, limit: int) -> tuple[list[tuple[Policy, str]], int | None]:
    query = db.select(Policy, Group.name).join(Group, Group.id == Policy.group_id).where(
        Policy.account_id == account_id)
    if group is not None:
        query = query.where(Policy.group_id == group.id)
    if names:
        query = query.where(or_(Policy.name.in_(names), Policy.arn.in_(names)))
    rows = [tuple(row) for row in db.session.execute(
        query.order_by(Group.name, Policy.name)).all()]
    if types:
        rows = [row for row in rows if loads(row[0].definition_json)["PolicyType"] in types]
    page = rows[after:after + limit]
    return page, (after + limit if len(rows) > after + limit else None)


def render(policy: Policy, group_name: str) -> dict[str, Any]:
    definition = loads(policy.definition_json)
    answer = {"AutoScalingGroupName": group_name, "PolicyName": policy.name,
              "PolicyARN": policy.arn, "Alarms": loads(policy.alarms_json, []),
              "Enabled": definition.get("Enabled", True)}
    answer.update({key: value for key, value in definition.items() if key != "Enabled"})
    if answer["PolicyType"] == "StepScaling":
        answer.setdefault("MetricAggregationType", "Average")
        answer.setdefault("StepAdjustments", [])
    return answer


def alarm_names(policy: Policy) -> list[str]:
    return [alarm["AlarmName"] for alarm in loads(policy.alarms_json, [])]


def delete_for_group(group: Group, cloudwatch) -> None:
    """Before a group goes: its target-tracking policies' alarms (in CloudWatch, which
    commits on its own: called where the group's transaction may be ended)."""
    names = [name for policy in db.session.execute(db.select(Policy).where(
        Policy.group_id == group.id)).scalars() for name in alarm_names(policy)]
    if names:
        cloudwatch.delete_service_alarms(group.account_id, names)


# --- running ----------------------------------------------------------------------------

def new_capacity(policy: Policy, group: Group, *, metric_value: float | None,
                 threshold: float | None, alarm_name: str | None) -> int:
    """The desired capacity *policy* asks for now (before clamping to the group's bounds),
    given the breaching *metric_value* and the alarm's *threshold* where it has them.
    NotActed when it asks for nothing."""
    definition = loads(policy.definition_json)
    kind = definition["PolicyType"]
    current = group.desired
    if kind == "TargetTrackingScaling":
        if metric_value is None:
            raise NotActed("the alarm gave no metric value")
        target = float(definition["TargetTrackingConfiguration"]["TargetValue"])
        wanted = math.ceil(current * metric_value / target) if current else 1
        low = alarm_name is not None and alarm_names(policy)[1:2] == [alarm_name]
        if low and wanted >= current or not low and wanted <= current:
            raise NotActed("the group is already at the capacity its target asks for")
        return wanted
    if kind == "StepScaling":
        if metric_value is None or threshold is None:
            raise validation("The MetricValue and BreachThreshold parameters are required "
                             "for StepScaling policies.")
        difference = metric_value - threshold
        step = _step_for(definition["StepAdjustments"], difference)
        if step is None:
            raise NotActed(f"no step adjustment covers the breach of {difference}")
        adjustment = step["ScalingAdjustment"]
    else:
        adjustment = definition["ScalingAdjustment"]
    return _adjusted(current, definition["AdjustmentType"], adjustment,
                     definition.get("MinAdjustmentMagnitude"))


def _step_for(steps: list[dict[str, Any]], difference: float) -> dict[str, Any] | None:
    """The step whose [lower, upper) interval holds *difference* (for intervals below
    the threshold, (lower, upper], as AWS reads them)."""
    for step in steps:
        lower = step.get("MetricIntervalLowerBound", -math.inf)
        upper = step.get("MetricIntervalUpperBound", math.inf)
        if lower >= 0 or upper > 0:
            if lower <= difference < upper:
                return step
        elif lower < difference <= upper:
            return step
    return None


def _adjusted(current: int, kind: str, adjustment: int, min_magnitude: int | None) -> int:
    if kind == "ExactCapacity":
        return adjustment
    if kind == "ChangeInCapacity":
        return current + adjustment
    change = current * adjustment / 100
    # AWS: a change between -1 and 1 is rounded away from zero, others toward zero
    step = (math.copysign(1, change) if 0 < abs(change) < 1 else math.trunc(change))
    if min_magnitude and abs(step) < min_magnitude:
        step = math.copysign(min_magnitude, adjustment)
    return current + int(step)


def act(policy: Policy, group: Group, cause: str, *, metric_value: float | None = None,
        threshold: float | None = None, alarm_name: str | None = None,
        honor_cooldown: bool = True) -> None:
    """Run *policy* on *group* (in the caller's write transaction). NotActed, with why,
    when it changes nothing."""
    definition = loads(policy.definition_json)
    if not definition.get("Enabled", True):
        raise NotActed(f"the policy {policy.name} is disabled")
    if group.status:
        raise NotActed(f"the group {group.name} is being deleted")
    if honor_cooldown and definition["PolicyType"] == "SimpleScaling":
        cooldown = definition.get("Cooldown", group.default_cooldown)
        if groups.in_cooldown(group, cooldown):
            raise NotActed(f"the group {group.name} is in its cooldown period")
    wanted = new_capacity(policy, group, metric_value=metric_value, threshold=threshold,
                          alarm_name=alarm_name)
    wanted = max(group.min_size, min(group.max_size, wanted))
    if wanted == group.desired:
        raise NotActed(f"the group {group.name} is already at {wanted} (its bounds are "
                       f"{group.min_size}..{group.max_size})")
    groups.set_desired(group, wanted, cause)
    policy.acted_at = utcnow()


def alarm_cause(alarm_name: str, state: str, policy: Policy) -> str:
    return (f"a monitor alarm {alarm_name} in state {state} triggered policy {policy.name}")


def user_cause(policy: Policy) -> str:
    return f"a user request executed policy {policy.name}"

