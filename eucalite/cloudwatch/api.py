"""The CloudWatch endpoint at ``/services/CloudWatch`` (Eucalyptus' path; signing name
``monitoring``), in the three protocols CloudWatch's model lists: awsJson 1.0 (what boto3 and
the aws CLI send today), Smithy RPC v2 CBOR and the Query protocol of older SDKs, all by
:mod:`eucalite.wire` from botocore's model of the service.

Each handler takes the parsed input and calls :class:`.service.CloudWatchService`; its
answer is the operation's output shape. Operations of the model without a handler here
(dashboards, metric streams, insight rules, anomaly detectors, composite alarms) are
answered as not supported by eucalite.
"""
from __future__ import annotations

from flask import Blueprint

from ..wire import model
from ..wire.serve import Call, Operations, mount

CLOUDWATCH_PATH = "/services/CloudWatch"

ops = Operations(model.load("cloudwatch"))
blueprint = Blueprint("cloudwatch", __name__)


def _service(call: Call):
    return call.services.cloudwatch


@ops.handler("PutMetricData")
def put_metric_data(call: Call) -> None:
    _service(call).put_metric_data(call.principal, call.input)


@ops.handler("GetMetricStatistics")
def get_metric_statistics(call: Call) -> dict:
    return _service(call).get_metric_statistics(call.principal, call.input)


@ops.handler("GetMetricData")
def get_metric_data(call: Call) -> dict:
    return _service(call).get_metric_data(call.principal, call.input)


@ops.handler("ListMetrics")
def list_metrics(call: Call) -> dict:
    return _service(call).list_metrics(call.principal, call.input)


@ops.handler("PutMetricAlarm")
def put_metric_alarm(call: Call) -> None:
    _service(call).put_metric_alarm(call.principal, call.input)


@ops.handler("DescribeAlarms")
def describe_alarms(call: Call) -> dict:
    return _service(call).describe_alarms(call.principal, call.input)


@ops.handler("DescribeAlarmsForMetric")
def describe_alarms_for_metric(call: Call) -> dict:
    return _service(call).describe_alarms_for_metric(call.principal, call.input)


@ops.handler("DescribeAlarmHistory")
def describe_alarm_history(call: Call) -> dict:
    return _service(call).describe_alarm_history(call.principal, call.input)


@ops.handler("DeleteAlarms")
def delete_alarms(call: Call) -> None:
    _service(call).delete_alarms(call.principal, call.input.get("AlarmNames") or [])


@ops.handler("SetAlarmState")
def set_alarm_state(call: Call) -> None:
    _service(call).set_alarm_state(call.principal, call.input)


@ops.handler("EnableAlarmActions")
def enable_alarm_actions(call: Call) -> None:
    _service(call).enable_alarm_actions(call.principal, call.input["AlarmNames"], True)


@ops.handler("DisableAlarmActions")
def disable_alarm_actions(call: Call) -> None:
    _service(call).enable_alarm_actions(call.principal, call.input["AlarmNames"], False)


@ops.handler("TagResource")
def tag_resource(call: Call) -> dict:
    _service(call).tag_resource(call.principal, call.input["ResourceARN"], call.input["Tags"])
    return {}


@ops.handler("UntagResource")
def untag_resource(call: Call) -> dict:
    _service(call).untag_resource(call.principal, call.input["ResourceARN"],
                                  call.input["TagKeys"])
    return {}


@ops.handler("ListTagsForResource")
def list_tags_for_resource(call: Call) -> dict:
    return {"Tags": _service(call).list_tags(call.principal, call.input["ResourceARN"])}


mount(blueprint, CLOUDWATCH_PATH, ops)
