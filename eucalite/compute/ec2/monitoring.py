"""EC2's switch for CloudWatch detailed monitoring: MonitorInstances and
UnmonitorInstances.

An instance's monitoring is ``disabled`` (basic: its ``AWS/EC2`` metrics every
``metrics_interval``, 60 s) or ``enabled`` (detailed: every ``detailed_metrics_interval``,
10 s). As on AWS, the answer reports the change under way (``pending`` / ``disabling``);
DescribeInstances shows the state reached (``enabled`` / ``disabled``), which the collector
follows from its next pass.
"""
from __future__ import annotations

from .actions import registry
from .instances import instance_ids


def _answer(ids: list[str], state: str) -> dict:
    return {"instancesSet": [{"instanceId": instance_id, "monitoring": {"state": state}}
                             for instance_id in ids]}


@registry.action("MonitorInstances", params=("InstanceId",))
def monitor_instances(call):
    changed = call.services.compute.set_monitoring(call.principal, instance_ids(call), True)
    return _answer(changed, "pending")


@registry.action("UnmonitorInstances", params=("InstanceId",))
def unmonitor_instances(call):
    changed = call.services.compute.set_monitoring(call.principal, instance_ids(call), False)
    return _answer(changed, "disabling")
