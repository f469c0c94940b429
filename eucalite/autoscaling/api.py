"""The Auto Scaling endpoint at ``/services/AutoScaling`` (Eucalyptus' path; signing name
``autoscaling``): AWS's Query protocol of 2011-01-01, read and written by
:mod:`eucalite.wire` from botocore's model, so ``aws autoscaling ...`` and boto3 work
unmodified. Each handler passes the parsed input to
:class:`.service.AutoScalingService`; operations without a handler here (load balancers,
warm pools, instance refreshes, predictive scaling) answer that eucalite
does not support them.
"""
from __future__ import annotations

from flask import Blueprint

from ..wire import model
from ..wire.serve import Call, Operations, mount
from . import hooks

AUTOSCALING_PATH = "/services/AutoScaling"

ops = Operations(model.load("autoscaling"))
blueprint = Blueprint("autoscaling", __name__)


def _service(call: Call):
    return call.services.autoscaling


def _simple(operation: str, method: str, *keys: str):
    """Register a handler calling ``service.<method>(principal, <input or its keys>)``."""
    def handler(call: Call):
        function = getattr(_service(call), method)
        if keys:
            return function(call.principal, *(call.input.get(key) for key in keys))
        return function(call.principal, call.input)
    handler.__name__ = method
    ops.handler(operation)(handler)


for _operation, _method in (
        ("CreateLaunchConfiguration", "create_launch_configuration"),
        ("DescribeLaunchConfigurations", "describe_launch_configurations"),
        ("CreateAutoScalingGroup", "create_group"),
        ("UpdateAutoScalingGroup", "update_group"),
        ("DescribeAutoScalingGroups", "describe_groups"),
        ("DescribeAutoScalingInstances", "describe_instances"),
        ("SetDesiredCapacity", "set_desired_capacity"),
        ("AttachInstances", "attach_instances"),
        ("DetachInstances", "detach_instances"),
        ("SetInstanceHealth", "set_instance_health"),
        ("SetInstanceProtection", "set_instance_protection"),
        ("DescribeTags", "describe_tags"),
        ("DescribeScalingActivities", "describe_activities"),
        ("PutScalingPolicy", "put_policy"),
        ("DescribePolicies", "describe_policies"),
        ("DeletePolicy", "delete_policy"),
        ("ExecutePolicy", "execute_policy"),
        ("PutScheduledUpdateGroupAction", "put_scheduled_action"),
        ("BatchPutScheduledUpdateGroupAction", "batch_put_scheduled_actions"),
        ("DescribeScheduledActions", "describe_scheduled_actions"),
        ("BatchDeleteScheduledAction", "batch_delete_scheduled_actions"),
        ("PutLifecycleHook", "put_lifecycle_hook"),
        ("DescribeLifecycleHooks", "describe_lifecycle_hooks"),
        ("DeleteLifecycleHook", "delete_lifecycle_hook"),
        ("CompleteLifecycleAction", "complete_lifecycle_action"),
        ("RecordLifecycleActionHeartbeat", "record_heartbeat")):
    _simple(_operation, _method)
_simple("DeleteLaunchConfiguration", "delete_launch_configuration", "LaunchConfigurationName")
_simple("CreateOrUpdateTags", "create_or_update_tags", "Tags")
_simple("DeleteTags", "delete_tags", "Tags")
_simple("DeleteScheduledAction", "delete_scheduled_action", "AutoScalingGroupName",
        "ScheduledActionName")


@ops.handler("DeleteAutoScalingGroup")
def delete_group(call: Call) -> None:
    _service(call).delete_group(call.principal, call.input["AutoScalingGroupName"],
                                bool(call.input.get("ForceDelete")))


@ops.handler("TerminateInstanceInAutoScalingGroup")
def terminate_instance(call: Call) -> dict:
    return _service(call).terminate_instance(call.principal, call.input["InstanceId"],
                                             call.input["ShouldDecrementDesiredCapacity"])


@ops.handler("EnterStandby")
def enter_standby(call: Call) -> dict:
    return _service(call).standby(call.principal, call.input, enter=True)


@ops.handler("ExitStandby")
def exit_standby(call: Call) -> dict:
    return _service(call).standby(call.principal, call.input, enter=False)


@ops.handler("SuspendProcesses")
def suspend_processes(call: Call) -> None:
    _service(call).suspend_processes(call.principal, call.input, suspend=True)


@ops.handler("ResumeProcesses")
def resume_processes(call: Call) -> None:
    _service(call).suspend_processes(call.principal, call.input, suspend=False)


@ops.handler("EnableMetricsCollection")
def enable_metrics(call: Call) -> None:
    _service(call).enable_metrics(call.principal, call.input, enable=True)


@ops.handler("DisableMetricsCollection")
def disable_metrics(call: Call) -> None:
    _service(call).enable_metrics(call.principal, call.input, enable=False)


@ops.handler("DescribeAccountLimits")
def describe_account_limits(call: Call) -> dict:
    return _service(call).describe_account_limits(call.principal)


@ops.handler("DescribeScalingProcessTypes")
def describe_process_types(call: Call) -> dict:
    return {"Processes": [{"ProcessName": name}
                          for name in _service(call).vocabulary()["processes"]]}


@ops.handler("DescribeTerminationPolicyTypes")
def describe_termination_policy_types(call: Call) -> dict:
    return {"TerminationPolicyTypes": _service(call).vocabulary()["termination"]}


@ops.handler("DescribeAdjustmentTypes")
def describe_adjustment_types(call: Call) -> dict:
    return {"AdjustmentTypes": [{"AdjustmentType": name}
                                for name in _service(call).vocabulary()["adjustments"]]}


@ops.handler("DescribeMetricCollectionTypes")
def describe_metric_collection_types(call: Call) -> dict:
    return {"Metrics": [{"Metric": name} for name in _service(call).vocabulary()["metrics"]],
            "Granularities": [{"Granularity": "1Minute"}]}


@ops.handler("DescribeLifecycleHookTypes")
def describe_lifecycle_hook_types(call: Call) -> dict:
    return {"LifecycleHookTypes": list(hooks.TRANSITIONS)}


@ops.handler("DescribeAutoScalingNotificationTypes")
def describe_notification_types(call: Call) -> dict:
    # no SNS in eucalite: there is nothing to notify
    return {"AutoScalingNotificationTypes": []}


mount(blueprint, AUTOSCALING_PATH, ops)
