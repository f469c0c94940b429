"""EC2 instance status: DescribeInstanceStatus (the status checks and events of running
instances)."""
from __future__ import annotations

from .. import states
from . import filters
from .actions import registry
from .instances import PAGING, render_state


@registry.action("DescribeInstanceStatus", params=("InstanceId", "Filter", "MaxResults",
                                                   "NextToken", "IncludeAllInstances"))
def describe_instance_status(call):
    request = PAGING.read(call.params)
    rows = call.services.compute.describe_instances(call.principal,
                                                    call.params.get_list("InstanceId") or None)
    if not call.params.get_bool("IncludeAllInstances"):
        rows = [row for row in rows if row.state == states.RUNNING]
    getters = {
        "availability-zone": lambda row: row.zone,
        "instance-state-name": lambda row: row.state,
        "instance-state-code": lambda row: states.CODES[row.state],
        "instance-status.status": lambda row: _status(row),
        "system-status.status": lambda row: _status(row),
    }
    rows = filters.apply(rows, filters.parse(call.params), getters)
    page, next_token = request.page(rows)
    return {"instanceStatusSet": [{
        "instanceId": row.id,
        "availabilityZone": row.zone,
        "instanceState": render_state(row.state),
        "systemStatus": {"status": _status(row),
                         "details": [{"name": "reachability", "status": "passed"
                                      if row.state == states.RUNNING else "initializing"}]},
        "instanceStatus": {"status": _status(row),
                           "details": [{"name": "reachability", "status": "passed"
                                        if row.state == states.RUNNING else "initializing"}]},
    } for row in page], "nextToken": next_token}


def _status(row) -> str:
    return "ok" if row.state == states.RUNNING else "not-applicable"
