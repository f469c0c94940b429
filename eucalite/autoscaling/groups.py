"""Auto Scaling groups' definitions: creating, updating and deleting them, their capacity
bounds and what changes the desired capacity, their tags and suspended processes, and
how Describe calls show them. What makes the instances follow is :mod:`.keeper`.

Every function runs in the caller's write transaction and does not commit.
"""
from __future__ import annotations

from typing import Any

from ..accounts import Principal, utcnow
from ..db import db
from ..errors import AwsError
from ..tags import validate_key, validate_value
from . import activities, hooks, launchconfigs
from .common import (PROCESSES, TERMINATION_POLICIES, already_exists, arn, dumps, in_use,
                     limit_exceeded, loads, utc, validation)
from .models import Activity, Group, GroupTag, Member

#: The most groups an account may have (AWS's default quota).
MAX_PER_ACCOUNT = 200
#: Tags per group.
MAX_TAGS = 50
#: Health check types eucalite can run: EC2's own status checks (no load balancers here).
HEALTH_CHECK_TYPES = ("EC2",)

#: Create/Update members that need what a eucalite cloud does not have.
UNSUPPORTED = {"MixedInstancesPolicy": "mixed instances policies (Spot Instances)",
               "LoadBalancerNames": "load balancers", "TargetGroupARNs": "load balancers",
               "TrafficSources": "load balancers", "VPCZoneIdentifier": "VPC subnets",
               "PlacementGroup": "placement groups",
               "AvailabilityZoneIds": "zone ids (use AvailabilityZones)"}

#: Settings kept as given and answered back by DescribeAutoScalingGroups.
SETTINGS = ("MaxInstanceLifetime", "CapacityRebalance", "Context", "DesiredCapacityType",
            "DefaultInstanceWarmup", "ServiceLinkedRoleARN", "DeletionProtection")


# --- creating and changing ------------------------------------------------------------

def create(principal: Principal, region: str, request: dict[str, Any], zones: list[str],
           compute) -> Group:
    """CreateAutoScalingGroup: the group, its tags, and (with InstanceId) a launch
    configuration copied from that instance under the group's name. *zones* are the
    cloud's availability zones."""
    account_id = principal.account_id
    name = request["AutoScalingGroupName"]
    _check_unsupported(request)
    sources = [key for key in ("LaunchConfigurationName", "LaunchTemplate", "InstanceId")
               if request.get(key)]
    if len(sources) != 1:
        raise validation("Valid requests must contain either LaunchTemplate, "
                         "LaunchConfigurationName, InstanceId or MixedInstancesPolicy "
                         "parameter." if not sources else
                         f"Only one of {', '.join(sources)} may be given.")
    if db.session.execute(db.select(Group.id).where(Group.account_id == account_id,
                                                    Group.name == name)).first():
        raise already_exists(f"AutoScalingGroup by this name already exists - A group with "
                             f"the name {name} already exists")
    count = db.session.execute(db.select(db.func.count()).select_from(Group).where(
        Group.account_id == account_id)).scalar()
    if count >= MAX_PER_ACCOUNT:
        raise limit_exceeded(f"You have reached the limit of {MAX_PER_ACCOUNT} Auto "
                             "Scaling groups.")
    group_zones = request.get("AvailabilityZones") or []
    if request.get("InstanceId"):
        instance = _instance_for(principal, request["InstanceId"], compute)
        launchconfigs.create(principal, region, {"LaunchConfigurationName": name,
                                                 "InstanceId": instance.id}, compute)
        group_zones = group_zones or [instance.zone]
    group = Group(account_id=account_id, name=name,
                  arn=arn(region, account_id, "autoScalingGroup",
                          f"autoScalingGroupName/{name}"),
                  zones_json=dumps(_zones(group_zones, zones)),
                  min_size=request["MinSize"], max_size=request["MaxSize"],
                  desired=request.get("DesiredCapacity", request["MinSize"]),
                  created_at=utcnow())
    if request.get("InstanceId"):
        group.launch_config = name
    else:
        _set_source(principal, group, request, compute)
    _set_options(group, request, created=True)
    _check_bounds(group.min_size, group.max_size, group.desired)
    db.session.add(group)
    db.session.flush()
    put_tags(group, request.get("Tags") or [])
    for spec in request.get("LifecycleHookSpecificationList") or []:
        hooks.put(group, spec)
    if group.desired:
        note_capacity(group, 0, f"a user request created an AutoScalingGroup "
                                f"{activities.capacity_change(0, group.desired)}",
                      cooldown=False)
    return group


def update(principal: Principal, group: Group, request: dict[str, Any], zones: list[str],
           compute) -> None:
    """UpdateAutoScalingGroup: the members given change; a new MinSize above the desired
    capacity raises it, a new MaxSize below lowers it, as in AWS."""
    _check_unsupported(request)
    if group.status:
        raise in_use(f"The AutoScalingGroup {group.name} is being deleted.")
    if request.get("LaunchConfigurationName") and request.get("LaunchTemplate"):
        raise validation("Only one of LaunchConfigurationName, LaunchTemplate may be given.")
    if request.get("LaunchConfigurationName") or request.get("LaunchTemplate"):
        _set_source(principal, group, request, compute)
    if request.get("AvailabilityZones"):
        group.zones_json = dumps(_zones(request["AvailabilityZones"], zones))
    _set_options(group, request, created=False)
    minimum = request.get("MinSize", group.min_size)
    maximum = request.get("MaxSize", group.max_size)
    desired = request.get("DesiredCapacity")
    if desired is None:
        desired = min(max(group.desired, minimum), maximum)
    _check_bounds(minimum, maximum, desired)
    old = group.desired
    group.min_size, group.max_size, group.desired = minimum, maximum, desired
    if desired != old:
        note_capacity(group, old, f"a user request update of AutoScalingGroup constraints "
                                  f"to min: {minimum}, max: {maximum}, desired: {desired} "
                                  f"{activities.capacity_change(old, desired)}")


def set_desired(group: Group, desired: int, cause: str) -> None:
    """SetDesiredCapacity and every policy: *desired* within the group's bounds, else
    ValidationError in AWS's words."""
    if desired > group.max_size:
        raise validation(f"New SetDesiredCapacity value {desired} is above max value "
                         f"{group.max_size} for the AutoScalingGroup.")
    if desired < group.min_size:
        raise validation(f"New SetDesiredCapacity value {desired} is below min value "
                         f"{group.min_size} for the AutoScalingGroup.")
    old = group.desired
    group.desired = desired
    if desired != old:
        note_capacity(group, old, f"{cause} {activities.capacity_change(old, desired)}")


def note_capacity(group: Group, old: int, what: str, *, cooldown: bool = True) -> None:
    """Remember why the desired capacity moved (from *old*): the first sentence of the
    causes of the launches and terminations that follow; and, with *cooldown*, start the
    group's cooldown (a group's first capacity, at its creation, starts none)."""
    group.capacity_cause = activities.said(what)
    if cooldown:
        group.scaled_at = utcnow()


def in_cooldown(group: Group, seconds: int | None = None) -> bool:
    """Whether the group's last scaling is within *seconds* (its DefaultCooldown)."""
    cooldown = group.default_cooldown if seconds is None else seconds
    return group.scaled_at is not None and \
        (utcnow() - group.scaled_at).total_seconds() < cooldown


def max_lifetime(group: Group) -> int | None:
    """The group's MaxInstanceLifetime in seconds (None: instances may live for ever)."""
    return loads(group.settings_json, {}).get("MaxInstanceLifetime") or None


def delete(group: Group, force: bool) -> bool:
    """DeleteAutoScalingGroup: True when the group is gone now; with *force* and instances
    left it is marked "Delete in progress" (the keeper terminates its instances, then
    deletes it). ResourceInUse while it has instances and *force* is not given;
    ScalingActivityInProgress while an activity is still running. The group's
    DeletionProtection may refuse either (ValidationError)."""
    protection = loads(group.settings_json, {}).get("DeletionProtection", "none")
    if protection == "prevent-all-deletion" or (force and
                                                protection == "prevent-force-deletion"):
        raise validation(f"The AutoScalingGroup {group.name} has DeletionProtection set to "
                         f"{protection}: update it first to delete the group.")
    members = db.session.execute(db.select(db.func.count()).select_from(Member).where(
        Member.group_id == group.id)).scalar()
    if members and not force:
        raise in_use("You cannot delete an AutoScalingGroup while there are instances or "
                     "pending Spot instance request(s) still in the group.")
    if not force:
        running = db.session.execute(db.select(Activity.id).where(
            Activity.group_id == group.id,
            Activity.status_code == activities.IN_PROGRESS).limit(1)).first()
        if running:
            raise AwsError("You cannot delete an AutoScalingGroup while there are scaling "
                           "activities in progress for that group.",
                           code="ScalingActivityInProgress", status=400)
    if not members:
        db.session.delete(group)
        return True
    old = group.desired
    group.status = "Delete in progress"
    group.min_size = group.desired = 0
    note_capacity(group, old, "a user request deleted the AutoScalingGroup "
                              f"{activities.capacity_change(old, 0)}")
    return False


def _check_unsupported(request: dict[str, Any]) -> None:
    for member, what in UNSUPPORTED.items():
        if request.get(member):
            raise validation(f"{member} is not supported: this cloud has no {what}.")


def _check_bounds(minimum: int, maximum: int, desired: int) -> None:
    for name, value in (("MinSize", minimum), ("MaxSize", maximum),
                        ("DesiredCapacity", desired)):
        if value < 0:
            raise validation(f"{name} must be greater than or equal to 0, not {value}.")
    if minimum > maximum:
        raise validation(f"Max bound, {maximum}, must be greater than or equal to min bound, "
                         f"{minimum}")
    if not minimum <= desired <= maximum:
        raise validation(f"Desired capacity:{desired} must be between the specified min "
                         f"size:{minimum} and max size:{maximum}")


def _zones(wanted: list[str], known: list[str]) -> list[str]:
    if not wanted:
        raise validation("At least one Availability Zone or VPC Subnet is required.")
    for zone in wanted:
        if zone not in known:
            raise validation(f"The availability zone {zone} is not legitimate")
    return list(dict.fromkeys(wanted))


def _instance_for(principal: Principal, instance_id: str, compute):
    try:
        return compute.instance(principal, instance_id)
    except AwsError:
        raise validation(f"Invalid instance id {instance_id}.") from None


def _set_source(principal: Principal, group: Group, request: dict[str, Any], compute) -> None:
    """The launch configuration or launch template the group launches from; each must
    exist (ValidationError as AWS words it)."""
    if request.get("LaunchConfigurationName"):
        launchconfigs.named(group.account_id, request["LaunchConfigurationName"])
        group.launch_config = request["LaunchConfigurationName"]
        group.launch_template_json = None
        return
    spec = dict(request["LaunchTemplate"])
    if bool(spec.get("LaunchTemplateId")) == bool(spec.get("LaunchTemplateName")):
        raise validation("Valid requests must contain either launchTemplateId or "
                         "LaunchTemplateName")
    template = template_of(principal, spec, compute)
    spec = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
            "Version": spec.get("Version") or "$Default"}
    try:        # the version must exist now, as AWS checks when the group is made
        compute.launch_template_request(principal, template_id=template.id,
                                        version=spec["Version"])
    except AwsError as error:
        raise validation(error.message) from None
    group.launch_template_json = dumps(spec)
    group.launch_config = None


def template_of(principal: Principal, spec: dict[str, Any], compute):
    """The EC2 launch template *spec* names, through the cloud controller (ValidationError
    when there is none)."""
    try:
        return compute.launch_template(principal, template_id=spec.get("LaunchTemplateId"),
                                       name=spec.get("LaunchTemplateName"))
    except AwsError as error:
        raise validation(error.message) from None


def _set_options(group: Group, request: dict[str, Any], created: bool) -> None:
    for name in ("DefaultCooldown", "HealthCheckGracePeriod", "MaxInstanceLifetime",
                 "DefaultInstanceWarmup"):
        if request.get(name) is not None and request[name] < 0:
            raise validation(f"{name} must be greater than or equal to 0.")
    if request.get("MaxInstanceLifetime") and request["MaxInstanceLifetime"] < 86400:
        raise validation("MaxInstanceLifetime must be 0 or at least 86400 seconds (1 day).")
    if request.get("DesiredCapacityType", "units") != "units":
        raise validation("DesiredCapacityType other than units needs attribute-based "
                         "instance type selection, which eucalite does not have.")
    if "DefaultCooldown" in request:
        group.default_cooldown = request["DefaultCooldown"]
    elif created:
        group.default_cooldown = 300
    if "HealthCheckType" in request:
        if request["HealthCheckType"] not in HEALTH_CHECK_TYPES:
            raise validation(f"Health check type {request['HealthCheckType']} is not "
                             "supported: this cloud has EC2 health checks only.")
        group.health_check_type = request["HealthCheckType"]
    elif created:
        group.health_check_type = "EC2"
    if "HealthCheckGracePeriod" in request:
        group.grace_period = request["HealthCheckGracePeriod"]
    elif created:
        group.grace_period = 0 if request.get("LaunchConfigurationName") or \
            request.get("InstanceId") else 300
    if "TerminationPolicies" in request:
        policies = request["TerminationPolicies"] or ["Default"]
        for policy in policies:
            if policy not in TERMINATION_POLICIES:
                raise validation(f"Termination policy {policy} is not supported.")
        group.termination_policies_json = dumps(policies)
    elif created:
        group.termination_policies_json = dumps(["Default"])
    if "NewInstancesProtectedFromScaleIn" in request:
        group.protect_new = bool(request["NewInstancesProtectedFromScaleIn"])
    elif created:
        group.protect_new = False
    settings = loads(group.settings_json, {}) if not created else {}
    settings.update({key: request[key] for key in SETTINGS if key in request})
    group.settings_json = dumps(settings)
    if created:
        group.suspended_json = "{}"
        group.metrics_json = "{}"


# --- tags -------------------------------------------------------------------------------

def put_tags(group: Group, tags: list[dict[str, Any]]) -> None:
    """CreateOrUpdateTags for one group: *tags* as the API gives them."""
    for tag in tags:
        try:
            key = validate_key(tag.get("Key"))
            value = validate_value(tag.get("Value") or "")
        except AwsError as error:
            raise validation(error.message) from None
        if tag.get("ResourceId") not in (None, group.name):
            raise validation(f"Tag's ResourceId {tag.get('ResourceId')} does not name the "
                             f"group {group.name}.")
        row = db.session.get(GroupTag, (group.id, key))
        if row is None:
            row = GroupTag(group_id=group.id, key=key)
            db.session.add(row)
        row.value = value
        row.propagate = bool(tag.get("PropagateAtLaunch", False))
    db.session.flush()
    count = db.session.execute(db.select(db.func.count()).select_from(GroupTag).where(
        GroupTag.group_id == group.id)).scalar()
    if count > MAX_TAGS:
        raise limit_exceeded(f"The number of tags for the group {group.name} would exceed "
                             f"the limit of {MAX_TAGS}.")


def delete_tags(group: Group, keys: list[str]) -> None:
    db.session.execute(db.delete(GroupTag).where(GroupTag.group_id == group.id,
                                                 GroupTag.key.in_(keys)))


def tags_of(group_ids: list[int]) -> dict[int, list[GroupTag]]:
    by_group: dict[int, list[GroupTag]] = {group_id: [] for group_id in group_ids}
    for row in db.session.execute(db.select(GroupTag).where(GroupTag.group_id.in_(group_ids))
                                  .order_by(GroupTag.key)).scalars():
        by_group[row.group_id].append(row)
    return by_group


def render_tag(row: GroupTag, group_name: str) -> dict[str, Any]:
    return {"ResourceId": group_name, "ResourceType": "auto-scaling-group", "Key": row.key,
            "Value": row.value, "PropagateAtLaunch": row.propagate}


# --- processes --------------------------------------------------------------------------

def suspend(group: Group, processes: list[str], suspend_them: bool) -> None:
    """SuspendProcesses / ResumeProcesses: *processes* (all when empty)."""
    for process in processes:
        if process not in PROCESSES:
            raise validation(f"Process {process} is not a valid scaling process type.")
    suspended = loads(group.suspended_json, {})
    for process in processes or PROCESSES:
        if suspend_them:
            suspended.setdefault(process, f"User suspended at {activities.stamp()}")
        else:
            suspended.pop(process, None)
    group.suspended_json = dumps(suspended)


def suspended(group: Group, process: str) -> bool:
    return process in loads(group.suspended_json, {})


# --- reading -----------------------------------------------------------------------------

def describe(account_id: str, names: list[str], filters: list[dict], after: int,
             limit: int) -> tuple[list[Group], int | None]:
    """The account's groups by name (only *names* when given, and those matching
    *filters*: ``tag-key``, ``tag-value``, ``tag:<key>``), a page of at most *limit* from
    position *after*, and the next position if there is more."""
    query = db.select(Group).where(Group.account_id == account_id)
    if names:
        query = query.where(Group.name.in_(names))
    for spec in filters or []:
        name, values = spec.get("Name"), spec.get("Values") or []
        tagged = db.select(GroupTag.group_id)
        if name == "tag-key":
            tagged = tagged.where(GroupTag.key.in_(values))
        elif name == "tag-value":
            tagged = tagged.where(GroupTag.value.in_(values))
        elif name and name.startswith("tag:"):
            tagged = tagged.where(GroupTag.key == name[4:], GroupTag.value.in_(values))
        else:
            raise validation(f"Filter name {name} is not supported.")
        query = query.where(Group.id.in_(tagged))
    rows = db.session.execute(query.order_by(Group.name).offset(after).limit(limit + 1)
                              ).scalars().all()
    return rows[:limit], (after + limit if len(rows) > limit else None)


def members_of(group_ids: list[int]) -> dict[int, list[Member]]:
    by_group: dict[int, list[Member]] = {group_id: [] for group_id in group_ids}
    for row in db.session.execute(db.select(Member).where(Member.group_id.in_(group_ids))
                                  .order_by(Member.instance_id)).scalars():
        by_group[row.group_id].append(row)
    return by_group


def render(group: Group, members: list[Member], tags: list[GroupTag],
           instance_facts: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """DescribeAutoScalingGroups' AutoScalingGroup. *instance_facts*: instance id ->
    (instance type, image id)."""
    answer: dict[str, Any] = {
        "AutoScalingGroupName": group.name, "AutoScalingGroupARN": group.arn,
        "MinSize": group.min_size, "MaxSize": group.max_size,
        "DesiredCapacity": group.desired, "DefaultCooldown": group.default_cooldown,
        "AvailabilityZones": loads(group.zones_json, []), "LoadBalancerNames": [],
        "TargetGroupARNs": [], "HealthCheckType": group.health_check_type,
        "HealthCheckGracePeriod": group.grace_period,
        "Instances": [render_member(member, instance_facts) for member in members],
        "CreatedTime": utc(group.created_at),
        "SuspendedProcesses": [{"ProcessName": name, "SuspensionReason": reason}
                               for name, reason in loads(group.suspended_json, {}).items()],
        "EnabledMetrics": [{"Metric": name, "Granularity": granularity} for name, granularity
                           in sorted(loads(group.metrics_json, {}).items())],
        "Tags": [render_tag(tag, group.name) for tag in tags],
        "TerminationPolicies": loads(group.termination_policies_json, ["Default"]),
        "NewInstancesProtectedFromScaleIn": group.protect_new,
        "TrafficSources": []}
    if group.launch_config:
        answer["LaunchConfigurationName"] = group.launch_config
    if group.launch_template_json:
        answer["LaunchTemplate"] = loads(group.launch_template_json)
    if group.status:
        answer["Status"] = group.status
    answer.update(loads(group.settings_json, {}))
    return answer


def render_member(member: Member, instance_facts: dict[str, tuple[str, str]],
                  group_name: str | None = None) -> dict[str, Any]:
    """An Instance of DescribeAutoScalingGroups (AutoScalingInstanceDetails with
    *group_name*)."""
    itype, image_id = instance_facts.get(member.instance_id, (None, None))
    answer: dict[str, Any] = {"InstanceId": member.instance_id,
                              "AvailabilityZone": member.zone,
                              "LifecycleState": member.lifecycle_state,
                              "HealthStatus": member.health,
                              "ProtectedFromScaleIn": member.protected}
    if group_name is not None:
        answer["AutoScalingGroupName"] = group_name
    if itype:
        answer["InstanceType"] = itype
    if image_id:
        answer["ImageId"] = image_id
    if member.launch_config:
        answer["LaunchConfigurationName"] = member.launch_config
    if member.launch_template_json:
        answer["LaunchTemplate"] = loads(member.launch_template_json)
    return answer
