"""EC2 instance status: DescribeInstanceStatus (status checks and scheduled events, every
documented filter, IncludeAllInstances, paging), ReportInstanceStatus and GetPasswordData."""
from __future__ import annotations

from ...accounts import utcnow
from .. import states
from . import filters
from .actions import registry
from .instances import PAGING, render_state


def _event_getter(member: str):
    return lambda item: [getattr(event, member) for event in item[1].events]


#: DescribeInstanceStatus' filters over (instance, its InstanceStatus).
STATUS_FILTERS = {
    "availability-zone": lambda item: item[0].zone,
    "instance-state-name": lambda item: item[0].state,
    "instance-state-code": lambda item: states.CODES[item[0].state],
    "instance-status.status": lambda item: item[1].instance.status,
    "instance-status.reachability": lambda item: item[1].instance.detail,
    "system-status.status": lambda item: item[1].system.status,
    "system-status.reachability": lambda item: item[1].system.detail,
    "event.code": _event_getter("code"),
    "event.description": _event_getter("description"),
    "event.instance-event-id": lambda item: [],
    "event.not-before": lambda item: [event.not_before.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                                      for event in item[1].events],
    "event.not-after": lambda item: [],
    "event.not-before-deadline": lambda item: [],
}


def _check(check) -> dict:
    detail = {"name": "reachability", "status": check.detail}
    if check.impaired_since:
        detail["impairedSince"] = check.impaired_since
    return {"status": check.status, "details": [detail]}


def _render(instance, status) -> dict:
    return {
        "instanceId": instance.id,
        "availabilityZone": instance.zone,
        "instanceState": render_state(instance.state),
        "systemStatus": _check(status.system),
        "instanceStatus": _check(status.instance),
        "eventsSet": [{"code": event.code, "description": event.description,
                       "notBefore": event.not_before} for event in status.events],
    }


@registry.action("DescribeInstanceStatus", params=("InstanceId", "Filter", "MaxResults",
                                                   "NextToken", "IncludeAllInstances"))
def describe_instance_status(call):
    request = PAGING.read(call.params)
    items = call.services.compute.instance_status(
        call.principal, call.params.get_list("InstanceId") or None,
        call.params.get_bool("IncludeAllInstances"))
    items = filters.apply(items, filters.parse(call.params), STATUS_FILTERS)
    page, next_token = request.page(items, key=lambda item: item[0].id)
    return {"instanceStatusSet": [_render(instance, status) for instance, status in page],
            "nextToken": next_token}


@registry.action("ReportInstanceStatus", params=("InstanceId", "Status", "ReasonCode",
                                                 "StartTime", "EndTime", "Description"))
def report_instance_status(call):
    call.services.compute.report_instance_status(
        call.principal, call.params.get_list("InstanceId"), call.params.get("Status"),
        call.params.get_list("ReasonCode"))
    return {"return": True}


@registry.action("GetPasswordData", params=("InstanceId",))
def get_password_data(call):
    instance = call.services.compute.password_data(call.principal,
                                                   call.params.require("InstanceId"))
    return {"instanceId": instance.id, "timestamp": utcnow(), "passwordData": ""}
