"""Auto Scaling in the console: the account's groups with their capacity bounds, instance
counts by lifecycle state, what they launch from and their zones (paged as
DescribeAutoScalingGroups pages); one group's settings, instances, recent scaling
activities, policies and scheduled actions; forms that set its desired capacity, change its
bounds, suspend or resume all its processes, terminate one of its instances and delete it;
and making launch configurations and groups.

Views call :class:`eucalite.autoscaling.service.AutoScalingService` as the Auto Scaling API
does, with the input dict botocore's model names, checked against that model first
(:func:`checked`), so every refusal (a bad size, a missing name, the gate's AccessDenied)
is the API's code and message."""
from __future__ import annotations

import base64
from typing import Any, Callable

from flask import redirect, render_template, request, url_for

from ...api import services
from ...autoscaling.common import validation
from ...errors import AwsError, InvalidParameterValue
from ...wire import model
from ...wire.validate import validate
from .. import blueprint
from ..errors import hidden
from ..session import act, login_required, notify, principal
from . import add_nav, int_field, may

add_nav("console.autoscaling", "Auto Scaling")

#: Groups per page of the list (DescribeAutoScalingGroups' MaxRecords).
PAGE = 50
#: Launch configurations the list page shows and the group form offers (the first, by name).
CONFIGS = 100
#: Scaling activities a group's page shows (the newest).
ACTIVITIES = 20
#: The lifecycle states the list counts, in the order of its columns.
STATES = ("Pending", "InService", "Standby", "Terminating")
#: The Auto Scaling actions whose forms the pages offer: a form is shown only to users the
#: gate would allow it on ``*`` (the service checks again, on the group's ARN).
FORMS = ("CreateLaunchConfiguration", "DeleteLaunchConfiguration", "CreateAutoScalingGroup",
         "UpdateAutoScalingGroup", "SetDesiredCapacity", "SuspendProcesses",
         "ResumeProcesses", "TerminateInstanceInAutoScalingGroup", "DeleteAutoScalingGroup")


def _autoscaling():
    return services().autoscaling


def checked(operation: str, request_input: dict[str, Any]) -> dict[str, Any]:
    """*request_input* after the checks the Auto Scaling API makes of *operation*'s input
    before the service sees it (required members, lengths, ranges, patterns: the same
    MissingParameter / ValidationError)."""
    validate(model.load("autoscaling").operation(operation).input_shape, request_input)
    return request_input


def _allowed() -> dict[str, bool]:
    """Action -> whether the signed-in user is offered its form (:data:`FORMS`)."""
    return {action: may(f"autoscaling:{action}") for action in FORMS}


def _counts(group: dict) -> dict[str, int]:
    """A group's instances by lifecycle state (:data:`STATES`, then any other)."""
    counts = dict.fromkeys(STATES, 0)
    for instance in group["Instances"]:
        counts[instance["LifecycleState"]] = counts.get(instance["LifecycleState"], 0) + 1
    return counts


def _choices() -> dict:
    """What the create forms offer: launchable machine images, instance types, key pairs,
    security groups, launch templates, launch configurations and zones. A list the user
    may not read (the EC2 or Auto Scaling Describe call behind it) is empty, and the form
    takes a typed value instead where it needs one."""
    who, compute = principal(), services().compute
    offered: dict[str, Any] = {"types": compute.list_instance_types(),
                               "zones": compute.cluster.zone_names()}
    # (list, the action that reads it, how): the compute service does not check its
    # callers (the EC2 adapter does), so the page asks the gate first
    readers: tuple[tuple[str, str, Callable[[], list]], ...] = (
        ("images", "ec2:DescribeImages",
         lambda: [image for image in compute.describe_images(who)
                  if image.kind == "machine" and image.state == "available"]),
        ("keys", "ec2:DescribeKeyPairs", lambda: compute.describe_key_pairs(who)),
        ("security_groups", "ec2:DescribeSecurityGroups",
         lambda: compute.describe_security_groups(who)),
        ("templates", "ec2:DescribeLaunchTemplates",
         lambda: compute.describe_launch_templates(who)),
        ("configs", "autoscaling:DescribeLaunchConfigurations",
         lambda: _autoscaling().describe_launch_configurations(who, checked(
             "DescribeLaunchConfigurations", {"MaxRecords": CONFIGS}))["LaunchConfigurations"]))
    for name, action, read in readers:
        offered[name] = read() if may(action) else []
    return offered


@blueprint.route("/autoscaling", endpoint="autoscaling")
@login_required
def autoscaling_page():
    """The groups, a page at a time (``?next=``), and the create forms."""
    query: dict[str, Any] = {"MaxRecords": PAGE}
    try:
        if request.args.get("next"):
            query["NextToken"] = request.args["next"]
        answer = _autoscaling().describe_groups(
            principal(), checked("DescribeAutoScalingGroups", query))
    except AwsError as error:
        return render_template("console/error.html", code=error.code,
                               message=error.message), error.status
    found = answer["AutoScalingGroups"]
    return render_template("console/autoscaling.html", groups=found,
                           counts={group["AutoScalingGroupName"]: _counts(group)
                                   for group in found},
                           states=STATES, next_token=answer.get("NextToken"),
                           can=_allowed(), **_choices())


def _group(name: str) -> dict:
    """The group *name* as DescribeAutoScalingGroups answers it (ValidationError, AWS's
    answer to a name it does not know elsewhere, if none)."""
    found = _autoscaling().describe_groups(principal(), checked(
        "DescribeAutoScalingGroups", {"AutoScalingGroupNames": [name]}))["AutoScalingGroups"]
    if not found:
        raise validation(f"AutoScalingGroup name not found - AutoScalingGroup {name} not "
                         "found")
    return found[0]


def _listed(read: Callable[[], dict], member: str) -> list[dict] | str:
    """*member* of what *read* answers, or the error (``Code: message``) when it refuses
    (the user may not read it): the page shows that in the list's place rather than
    failing as a whole."""
    try:
        return read()[member]
    except AwsError as error:
        return f"{error.code}: {error.message}"


@blueprint.route("/autoscaling/group")
@login_required
def autoscaling_group():
    """One group (``?name=``: group names may hold ``/``): its settings, instances, newest
    activities, policies and scheduled actions, and the forms that change it."""
    name = request.args.get("name", "")
    who, service = principal(), _autoscaling()
    try:
        found = _group(name)
    except AwsError as error:
        return hidden(error)
    by_group = {"AutoScalingGroupName": name}
    return render_template(
        "console/autoscaling_group.html", group=found, counts=_counts(found), states=STATES,
        activities=_listed(lambda: service.describe_activities(who, checked(
            "DescribeScalingActivities", {**by_group, "MaxRecords": ACTIVITIES})),
            "Activities"),
        policies=_listed(lambda: service.describe_policies(who, checked(
            "DescribePolicies", by_group)), "ScalingPolicies"),
        scheduled=_listed(lambda: service.describe_scheduled_actions(who, checked(
            "DescribeScheduledActions", by_group)), "ScheduledUpdateGroupActions"),
        suspended=[item["ProcessName"] for item in found["SuspendedProcesses"]],
        can=_allowed())


def _back(name: str):
    return redirect(url_for("console.autoscaling_group", name=name))


def _names(field: str) -> list[str]:
    """A multi-select (or several same-named inputs) as a list, empty values left out."""
    return [value.strip() for value in request.form.getlist(field) if value.strip()]


@blueprint.route("/autoscaling/launchconfigs/create", methods=["POST"])
@login_required
def autoscaling_lc_create():
    """CreateLaunchConfiguration from the form (user data sent base64-encoded, as boto3
    sends it)."""
    form = request.form
    name = form.get("name", "").strip()
    wanted: dict[str, Any] = {"LaunchConfigurationName": name}
    for field, member in (("image_id", "ImageId"), ("instance_type", "InstanceType"),
                          ("key_name", "KeyName")):
        if form.get(field, "").strip():
            wanted[member] = form[field].strip()
    if _names("security_groups"):
        wanted["SecurityGroups"] = _names("security_groups")
    if form.get("user_data"):
        wanted["UserData"] = base64.b64encode(form["user_data"].encode()).decode()
    act(lambda: _autoscaling().create_launch_configuration(
        principal(), checked("CreateLaunchConfiguration", wanted)),
        f"Created launch configuration {name}.")
    return redirect(url_for("console.autoscaling"))


@blueprint.route("/autoscaling/launchconfigs/delete", methods=["POST"])
@login_required
def autoscaling_lc_delete():
    name = request.form.get("name", "")
    act(lambda: _autoscaling().delete_launch_configuration(principal(), checked(
        "DeleteLaunchConfiguration", {"LaunchConfigurationName": name})[
        "LaunchConfigurationName"]), f"Deleted launch configuration {name}.")
    return redirect(url_for("console.autoscaling"))


def _source() -> dict[str, Any]:
    """The create form's launch source: ``source`` is ``lc:<name>`` or ``lt:<id>`` (with
    ``version``: a number, ``$Default`` or ``$Latest``)."""
    kind, _, value = request.form.get("source", "").partition(":")
    if kind == "lc" and value:
        return {"LaunchConfigurationName": value}
    if kind == "lt" and value:
        return {"LaunchTemplate": {"LaunchTemplateId": value,
                                   "Version": request.form.get("version", "").strip()
                                   or "$Default"}}
    raise InvalidParameterValue("Choose a launch configuration or a launch template.")


@blueprint.route("/autoscaling/create", methods=["POST"])
@login_required
def autoscaling_create():
    name = request.form.get("name", "").strip()

    def create():
        wanted = {"AutoScalingGroupName": name, **_source(),
                  "MinSize": int_field("min_size", "MinSize"),
                  "MaxSize": int_field("max_size", "MaxSize")}
        desired = int_field("desired", "DesiredCapacity", required=False)
        if desired is not None:
            wanted["DesiredCapacity"] = desired
        if _names("zones"):
            wanted["AvailabilityZones"] = _names("zones")
        _autoscaling().create_group(principal(), checked("CreateAutoScalingGroup", wanted))

    if act(create, f"Created Auto Scaling group {name}."):
        return _back(name)
    return redirect(url_for("console.autoscaling"))


@blueprint.route("/autoscaling/group/desired", methods=["POST"])
@login_required
def autoscaling_desired():
    name = request.form.get("name", "")

    def set_desired():
        desired = int_field("desired", "DesiredCapacity")
        _autoscaling().set_desired_capacity(principal(), checked("SetDesiredCapacity", {
            "AutoScalingGroupName": name, "DesiredCapacity": desired}))
        notify(f"The desired capacity of {name} is now {desired}.")

    act(set_desired)
    return _back(name)


@blueprint.route("/autoscaling/group/bounds", methods=["POST"])
@login_required
def autoscaling_bounds():
    """UpdateAutoScalingGroup's MinSize and MaxSize (the desired capacity follows them
    into range, as the API does)."""
    name = request.form.get("name", "")

    def update():
        _autoscaling().update_group(principal(), checked("UpdateAutoScalingGroup", {
            "AutoScalingGroupName": name, "MinSize": int_field("min_size", "MinSize"),
            "MaxSize": int_field("max_size", "MaxSize")}))

    act(update, f"Updated the size bounds of {name}.")
    return _back(name)


@blueprint.route("/autoscaling/group/processes", methods=["POST"])
@login_required
def autoscaling_processes():
    """SuspendProcesses or ResumeProcesses (``suspend`` = ``yes``) of all processes."""
    name = request.form.get("name", "")
    suspend = request.form.get("suspend") == "yes"
    operation = "SuspendProcesses" if suspend else "ResumeProcesses"
    act(lambda: _autoscaling().suspend_processes(
        principal(), checked(operation, {"AutoScalingGroupName": name}), suspend),
        f"{'Suspended' if suspend else 'Resumed'} all processes of {name}.")
    return _back(name)


@blueprint.route("/autoscaling/group/terminate", methods=["POST"])
@login_required
def autoscaling_terminate():
    """TerminateInstanceInAutoScalingGroup; ``decrement`` = ``yes`` lowers the desired
    capacity, else the group launches a replacement."""
    name = request.form.get("name", "")
    instance_id = request.form.get("instance_id", "")
    decrement = request.form.get("decrement") == "yes"

    def terminate():
        checked("TerminateInstanceInAutoScalingGroup", {
            "InstanceId": instance_id, "ShouldDecrementDesiredCapacity": decrement})
        _autoscaling().terminate_instance(principal(), instance_id, decrement)

    act(terminate,
        f"Terminating {instance_id}" + (", the desired capacity lowered by one."
                                        if decrement else ": the group replaces it."))
    return _back(name)


@blueprint.route("/autoscaling/group/delete", methods=["POST"])
@login_required
def autoscaling_delete():
    """DeleteAutoScalingGroup; ``force`` = ``yes`` terminates its instances with it."""
    name = request.form.get("name", "")
    force = request.form.get("force") == "yes"
    if act(lambda: _autoscaling().delete_group(principal(), checked(
            "DeleteAutoScalingGroup", {"AutoScalingGroupName": name, "ForceDelete": force})[
            "AutoScalingGroupName"], force),
            f"Deleting Auto Scaling group {name}" + (" and its instances." if force else ".")):
        return redirect(url_for("console.autoscaling"))
    return _back(name)
