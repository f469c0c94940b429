"""Instances: launch form (with security groups and the public-IP choice), the account's
instances (a table that refreshes itself, with their public IPs) with
reboot/stop/start/terminate, and a detail page with tags, security groups, attached volumes
and the console output. Views call :class:`eucalite.compute.service.ComputeService` and
the tag service as the EC2 adapter does (RunInstances, RebootInstances,
Stop/StartInstances, TerminateInstances, GetConsoleOutput, CreateTags/DeleteTags)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ... import tags
from ...api import services
from ...compute import states
from ...compute.ec2 import permissions
from ...compute.instance_types import DEFAULT_TYPE
from ...compute.instances import LaunchRequest, decode_user_data
from ...db import db
from ...errors import AwsError
from .. import blueprint
from ..errors import hidden
from ..session import act, login_required, notify, principal
from . import INSTANCE_ACTIONS, add_nav, int_field
from .metrics import RANGES, instance_charts

add_nav("console.instances", "Instances")

ACTIONS = ("reboot", "stop", "start", "terminate")


def _may(action: str, instance_ids=()) -> bool:
    """Would the signed-in user be allowed EC2 *action* on *instance_ids* (the table and
    gate the EC2 API checks)? The console offers and performs only that."""
    return permissions.may(services(), principal(), action, instance_ids)


def _possible(row) -> list[str]:
    """The actions the instance's state allows and the user may take on it."""
    return [action for action in states.possible_actions(row)
            if action not in INSTANCE_ACTIONS or _may(INSTANCE_ACTIONS[action], [row.id])]


def _compute():
    return services().compute


def _rows_context() -> dict:
    who = principal()
    rows = list(reversed(_compute().describe_instances(who)))      # newest first
    tag_map = tags.tags_for(who.account_id, [row.id for row in rows])
    return {"instances": rows, "names": {row.id: tag_map.get(row.id, {}).get("Name", "")
                                         for row in rows},
            "possible_actions": _possible}


def _launch_choices() -> dict:
    who = principal()
    compute = _compute()
    launchable = [image for image in compute.describe_images(who)
                  if image.kind == "machine" and image.state == "available"]
    return {"images": launchable, "types": compute.list_instance_types(),
            "keys": compute.describe_key_pairs(who),
            "groups": compute.describe_security_groups(who),
            "zones": [zone.name for zone in compute.zones()]}


@blueprint.route("/instances", endpoint="instances")
@login_required
def instances_page():
    return render_template("console/instances.html", **_rows_context(), **_launch_choices(),
                           actions=ACTIONS, may_launch=_may("RunInstances"))


@blueprint.route("/instances/rows")
@login_required
def instances_rows():
    return render_template("console/instances_rows.html", **_rows_context(), actions=ACTIONS)


@blueprint.route("/instances/launch", methods=["POST"])
@login_required
def instances_launch():
    form = request.form
    launched: list[str] = []

    def launch():
        count = int_field("count", "count", required=False, default=1)   # >= 1: the service
        name = form.get("name", "").strip()
        launch_request = LaunchRequest(
            image_id=form.get("image_id", "").strip(), min_count=count, max_count=count,
            instance_type=form.get("instance_type") or DEFAULT_TYPE,
            key_name=form.get("key_name") or None,
            security_group_ids=[group for group in form.getlist("security_group_ids")
                                if group] or None,
            public_ip=form.get("public_ip", "yes") != "no",
            user_data=form.get("user_data", "").encode(),
            zone=form.get("zone") or None, tags={"Name": name} if name else None)
        rows = _compute().run_instances(principal(), launch_request)
        launched.extend(row.id for row in rows)

    if act(launch):
        notify(f"Launched {', '.join(launched)}.")
    return redirect(url_for("console.instances"))


@blueprint.route("/instances/<instance_id>/action", methods=["POST"])
@login_required
def instance_action(instance_id: str):
    action = request.form.get("action", "")
    compute, who = _compute(), principal()
    calls = {
        "reboot": lambda: compute.reboot(who, [instance_id]),
        "stop": lambda: compute.stop_or_start(who, [instance_id], "stop"),
        "start": lambda: compute.stop_or_start(who, [instance_id], "start"),
        "terminate": lambda: compute.terminate(who, [instance_id]),
    }
    if action not in calls:
        notify(f"InvalidParameterValue: Unknown action {action!r}.", "error")
    else:
        past = {"reboot": "Rebooting", "stop": "Stopping", "start": "Starting",
                "terminate": "Terminating"}[action]
        act(calls[action], f"{past} {instance_id}.")
    target = request.form.get("next", "")
    if target != "detail":
        return redirect(url_for("console.instances"))
    return redirect(url_for("console.instance", instance_id=instance_id))


@blueprint.route("/instances/<instance_id>")
@login_required
def instance(instance_id: str):
    who = principal()
    try:
        row = _compute().instance(who, instance_id)
    except AwsError as error:
        return hidden(error)
    instance_tags = tags.tags_for(who.account_id, [row.id]).get(row.id, {})
    console_text, console_error = "", None
    try:
        _, output = _compute().console_output(who, row.id)
        console_text = output.decode("utf-8", "replace")
    except AwsError as error:
        db.session.rollback()
        console_error = f"{error.code}: {error.message}"
    try:
        user_data = decode_user_data(row.user_data).decode("utf-8", "replace")
    except AwsError:            # a row stored before user data was kept canonical
        user_data = row.user_data
    return render_template("console/instances_detail.html", instance=row,
                           tags=sorted(instance_tags.items()),
                           name=instance_tags.get("Name", ""),
                           volumes=services().ebs.attachments(row.id), console=console_text,
                           console_error=console_error, user_data=user_data,
                           security_groups=_compute().instance_groups([row.id]).get(row.id, []),
                           actions=ACTIONS, possible_actions=_possible,
                           charts=instance_charts(row.id), ranges=RANGES)


@blueprint.route("/instances/<instance_id>/tags", methods=["POST"])
@login_required
def instance_tags(instance_id: str):
    key = request.form.get("key", "")
    value = request.form.get("value", "")
    if not act(lambda: _compute().instance(principal(), instance_id)):
        return redirect(url_for("console.instances"))
    if request.form.get("op") == "delete":
        act(lambda: tags.delete_tags(principal(), [instance_id],
                                     [(key, None)]),
            f"Removed tag {key}.")
    else:
        act(lambda: tags.create_tags(principal(), [instance_id],
                                     {key: value}),
            f"Tagged {instance_id} with {key}.")
    return redirect(url_for("console.instance", instance_id=instance_id))
