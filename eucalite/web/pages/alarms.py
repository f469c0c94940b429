"""CloudWatch alarms in the console: the account's metric alarms with their state, reason and
last change (paged as DescribeAlarms pages), one alarm's definition and history, and
setting an alarm's state, enabling or disabling its actions and deleting it.

Views call :class:`eucalite.cloudwatch.service.CloudWatchService` as the CloudWatch API does
(DescribeAlarms, DescribeAlarmHistory, SetAlarmState, Enable/DisableAlarmActions,
DeleteAlarms), their requests checked against the API model first
(:func:`.metrics.checked`), so every refusal is the API's code and message."""
from __future__ import annotations

import json
from typing import Any

from flask import redirect, render_template, request, url_for

from ...api import services
from ...cloudwatch.errors import ResourceNotFound
from ...errors import AwsError
from .. import blueprint
from ..errors import hidden
from ..session import act, login_required, principal
from . import add_nav
from .metrics import RANGES, STATISTICS, checked, series_param

add_nav("console.alarms", "Alarms")

#: The states SetAlarmState may set (the model's StateValue enum), in the form's order.
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
#: Alarms per page (DescribeAlarms' MaxRecords).
PAGE = 50


def _cloudwatch():
    return services().cloudwatch


def _history_data(item: dict) -> str:
    """An item's HistoryData re-indented for reading (as stored if it is not JSON)."""
    try:
        return json.dumps(json.loads(item["HistoryData"]), indent=2)
    except ValueError:
        return item["HistoryData"]


@blueprint.route("/alarms")
@login_required
def alarms():
    query: dict[str, Any] = {"MaxRecords": PAGE}
    if request.args.get("state"):
        query["StateValue"] = request.args["state"]
    if request.args.get("next"):
        query["NextToken"] = request.args["next"]
    try:
        answer = _cloudwatch().describe_alarms(principal(), checked("DescribeAlarms", query))
    except AwsError as error:
        return render_template("console/error.html", code=error.code,
                               message=error.message), error.status
    return render_template("console/alarms.html", alarms=answer["MetricAlarms"],
                           next_token=answer.get("NextToken"), states=STATES,
                           state=request.args.get("state", ""))


def _one(name: str) -> dict:
    """The alarm *name* as DescribeAlarms answers it (ResourceNotFound if none)."""
    found = _cloudwatch().describe_alarms(principal(), checked(
        "DescribeAlarms", {"AlarmNames": [name]}))["MetricAlarms"]
    if not found:
        raise ResourceNotFound(f"Alarm {name} not found")
    return found[0]


@blueprint.route("/alarms/detail")
@login_required
def alarm():
    """One alarm (``?name=``: alarm names may hold ``/``): its definition, a chart of its
    metric beside the threshold, and its history (newest first, ``&next=`` pages)."""
    name = request.args.get("name", "")
    history_query: dict[str, Any] = {"AlarmName": name, "MaxRecords": 100}
    if request.args.get("next"):
        history_query["NextToken"] = request.args["next"]
    try:
        found = _one(name)
        history = _cloudwatch().describe_alarm_history(
            principal(), checked("DescribeAlarmHistory", history_query))
    except AwsError as error:
        return hidden(error)
    chart = None
    if found.get("MetricName") and found.get("Namespace"):
        dims = [[item["Name"], item["Value"]] for item in found.get("Dimensions") or ()]
        chart = {"title": found["MetricName"], "unit": found.get("Unit") or "",
                 "stat": found.get("Statistic") or found.get("ExtendedStatistic")
                 or "Average", "threshold": found.get("Threshold"),
                 "series": [series_param(found["Namespace"], found["MetricName"], dims)]}
    return render_template("console/alarms_detail.html", alarm=found, chart=chart,
                           history=history["AlarmHistoryItems"],
                           next_token=history.get("NextToken"), history_data=_history_data,
                           states=STATES, ranges=RANGES, statistics=STATISTICS)


def _back(name: str):
    return redirect(url_for("console.alarm", name=name))


@blueprint.route("/alarms/state", methods=["POST"])
@login_required
def alarm_state():
    name = request.form.get("name", "")
    state = request.form.get("state", "")
    reason = request.form.get("reason", "").strip() or "Set from the console"
    act(lambda: _cloudwatch().set_alarm_state(principal(), checked("SetAlarmState", {
        "AlarmName": name, "StateValue": state, "StateReason": reason})),
        f"Alarm {name} is now {state}.")
    return _back(name)


@blueprint.route("/alarms/actions", methods=["POST"])
@login_required
def alarm_actions():
    name = request.form.get("name", "")
    enabled = request.form.get("enabled") == "yes"
    operation = "EnableAlarmActions" if enabled else "DisableAlarmActions"
    act(lambda: _cloudwatch().enable_alarm_actions(
        principal(), checked(operation, {"AlarmNames": [name]})["AlarmNames"], enabled),
        f"Actions of alarm {name} {'enabled' if enabled else 'disabled'}.")
    return _back(name)


@blueprint.route("/alarms/delete", methods=["POST"])
@login_required
def alarm_delete():
    name = request.form.get("name", "")
    if act(lambda: _cloudwatch().delete_alarms(
            principal(), checked("DeleteAlarms", {"AlarmNames": [name]})["AlarmNames"]),
            f"Deleted alarm {name}."):
        return redirect(url_for("console.alarms"))
    return _back(name)
