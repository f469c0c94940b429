"""Metric alarms: their definitions as PutMetricAlarm checks them, describing, deleting,
history and tags. How an alarm is evaluated and what its actions do is
:mod:`.evaluation`'s.

An alarm watches one metric (``MetricName`` with ``Namespace``, ``Dimensions``,
``Period``, ``Statistic`` or ``ExtendedStatistic``) or a metric math expression
(``Metrics``: one query returns data); it compares the value of each of its last
``EvaluationPeriods`` periods with ``Threshold`` and goes to ALARM when ``DatapointsToAlarm``
of them breach. Its definition is kept as the request gave it (the API's shape, as JSON), so
DescribeAlarms answers it back unchanged.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from sqlalchemy import func, select

from .. import utctime
from ..accounts import utcnow
from ..db import db, writing
from ..errors import InvalidParameterCombination, InvalidParameterValue
from . import metricdata, statistics
from .datums import dimension_pairs
from .errors import InvalidNextToken, LimitExceeded, ResourceNotFound, ValidationError
from .models import Alarm, AlarmHistory

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
ALARM_PERIODS = (10, 20, 30)
MAX_TAGS = 50
#: DescribeAlarms' and DescribeAlarmHistory's page sizes when MaxRecords is not given.
DEFAULT_ALARMS_PAGE = 50
DEFAULT_HISTORY_PAGE = 100
#: How long alarm history is kept (CloudWatch keeps 30 days).
HISTORY_KEPT = dt.timedelta(days=30)
#: Where an action goes: EC2 (``arn:aws:automate:<region>:ec2:<verb>`` or the older
#: ``arn:aws:swf:<region>:<account>:action/actions/AWS_EC2.InstanceId.<Verb>/1.0``),
#: Auto Scaling policies, SNS topics.
EC2_ACTION = re.compile(r"arn:aws:automate:([a-z0-9-]+):ec2:(stop|terminate|reboot|recover)")
SWF_ACTION = re.compile(r"arn:aws:swf:([a-z0-9-]+):(\d{12}):action/actions/"
                        r"AWS_EC2\.InstanceId\.(Stop|Terminate|Reboot)/1\.0")
SCALING_ACTION = re.compile(r"arn:aws:autoscaling:([a-z0-9-]+):(\d{12}):scalingPolicy:.+")
SNS_ACTION = re.compile(r"arn:aws:sns:([a-z0-9-]+):(\d{12}):[A-Za-z0-9_-]{1,256}")


def arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"


# --- checking a definition -------------------------------------------------------------------

def _check_actions(request: dict[str, Any], region: str, account_id: str) -> None:
    has_instance = any(item.get("Name") == "InstanceId"
                       for item in request.get("Dimensions") or ())
    for member in ("AlarmActions", "OKActions", "InsufficientDataActions"):
        for action in request.get(member) or ():
            ec2 = EC2_ACTION.fullmatch(action) or SWF_ACTION.fullmatch(action)
            other = SCALING_ACTION.fullmatch(action) or SNS_ACTION.fullmatch(action)
            if not ec2 and not other:
                raise ValidationError(f"Invalid arn syntax: {action}")
            if ec2 and ec2.group(1) != region or other and other.group(1) != region:
                raise ValidationError(f"Invalid region in {action}: this cloud's region is "
                                      f"{region}.")
            if ec2 and not has_instance:
                raise ValidationError(f"The action {action} needs an alarm on a metric with "
                                      "an InstanceId dimension.")
            owner = (SWF_ACTION.fullmatch(action) or other)
            if owner and owner.group(2) != account_id:
                raise ValidationError(f"The action {action} names another account.")


def _check_metric_alarm(request: dict[str, Any]) -> None:
    for required in ("Namespace", "Period"):
        if required not in request:
            raise ValidationError(f"The parameter {required} is required for an alarm on "
                                  "MetricName.")
    if ("Statistic" in request) == ("ExtendedStatistic" in request):
        raise InvalidParameterCombination("Exactly one of Statistic and ExtendedStatistic "
                                          "must be specified.")
    if "ExtendedStatistic" in request:
        statistics.check_extended(request["ExtendedStatistic"], "ExtendedStatistic")
    elif "EvaluateLowSampleCountPercentile" in request:
        raise InvalidParameterCombination("EvaluateLowSampleCountPercentile is only used "
                                          "with ExtendedStatistic.")
    period = request["Period"]
    if period not in ALARM_PERIODS and period % 60:
        raise ValidationError("The parameter Period must be 10, 20, 30, or a multiple of 60.")
    dimension_pairs(request.get("Dimensions"), "Dimensions")


def _check_math_alarm(request: dict[str, Any]) -> None:
    clashing = [name for name in ("Namespace", "Dimensions", "Period", "Unit", "Statistic",
                                  "ExtendedStatistic") if name in request]
    if clashing:
        raise InvalidParameterCombination(f"The parameters Metrics and {clashing[0]} are "
                                          "mutually exclusive and you have specified both.")
    metricdata.check_queries(request["Metrics"])
    returning = [query for query in request["Metrics"] if query.get("ReturnData", True)]
    if len(returning) != 1:
        raise ValidationError("Metrics list must contain exactly one metric matching the "
                              "ReturnData parameter")


def period_of(definition: dict[str, Any]) -> int:
    """The length of one of the alarm's periods: its Period, or for a metric-math alarm
    the longest period of its queries."""
    period = definition.get("Period")
    if period is None:
        period = max((query.get("MetricStat", {}).get("Period") or query.get("Period") or 60)
                     for query in definition["Metrics"])
    return period


def check_definition(request: dict[str, Any], region: str, account_id: str) -> None:
    """Everything PutMetricAlarm refuses beyond the model's own rules."""
    if request.get("EvaluationCriteria") or request.get("EvaluationInterval"):
        raise ValidationError("eucalite does not evaluate PromQL alarms (EvaluationCriteria): "
                              "give MetricName or Metrics.")
    if request.get("ThresholdMetricId") or request["ComparisonOperator"] not in COMPARISONS:
        raise ValidationError("eucalite has no anomaly detection models: use a static "
                              "Threshold with GreaterThan/LessThan comparisons.")
    if ("MetricName" in request) == ("Metrics" in request):
        raise InvalidParameterCombination("Exactly one of MetricName and Metrics must be "
                                          "specified.")
    if "MetricName" in request:
        _check_metric_alarm(request)
    else:
        _check_math_alarm(request)
    if "Threshold" not in request:
        raise ValidationError("The parameter Threshold is required for alarms based on static "
                              "thresholds.")
    period = period_of(request)
    seconds = period * request["EvaluationPeriods"]
    limit = 7 * 86400 if period >= 3600 else 86400
    if seconds > limit:
        raise ValidationError(f"The evaluation range (Period x EvaluationPeriods) must not "
                              f"exceed {limit} seconds.")
    if request.get("DatapointsToAlarm", 1) > request["EvaluationPeriods"]:
        raise ValidationError("DatapointsToAlarm must be less than or equal to "
                              "EvaluationPeriods.")
    if request.get("TreatMissingData", "missing") not in MISSING_DATA:
        raise ValidationError("TreatMissingData must be one of breaching, notBreaching, "
                              "ignore or missing.")
    if request.get("EvaluateLowSampleCountPercentile", "evaluate") not in ("evaluate",
                                                                           "ignore"):
        raise ValidationError("EvaluateLowSampleCountPercentile must be evaluate or ignore.")
    if len(request.get("Tags") or ()) > MAX_TAGS:
        raise InvalidParameterValue(f"An alarm may have at most {MAX_TAGS} tags.")
    _check_actions(request, region, account_id)


# --- storing ---------------------------------------------------------------------------------

_DEFINITION_MEMBERS = ("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
                       "InsufficientDataActions", "MetricName", "Namespace", "Statistic",
                       "ExtendedStatistic", "Dimensions", "Period", "Unit",
                       "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                       "ComparisonOperator", "TreatMissingData",
                       "EvaluateLowSampleCountPercentile", "Metrics")


def definition(alarm: Alarm) -> dict[str, Any]:
    return json.loads(alarm.definition_json)


def history(account_id: str, name: str, item_type: str,
            summary: str, data: dict | None = None, when: dt.datetime | None = None) -> None:
    """Add one history item (in the caller's transaction)."""
    db.session.add(AlarmHistory(account_id=account_id, alarm_name=name, item_type=item_type,
                                summary=summary, timestamp=when or utcnow(),
                                data_json=None if data is None else json.dumps(data,
                                                                               default=str)))


def find(account_id: str, name: str) -> Alarm | None:
    return db.session.execute(select(Alarm).where(Alarm.account_id == account_id,
                                                  Alarm.name == name)).scalar_one_or_none()


def put(account_id: str, request: dict[str, Any], max_alarms: int) -> None:
    """Create the alarm, or replace an existing one's definition (its state and tags stay,
    as on AWS), with a ConfigurationUpdate history item."""
    stored = {name: request[name] for name in _DEFINITION_MEMBERS if name in request}
    now = utcnow()
    with writing():
        alarm = find(account_id, request["AlarmName"])
        creating = alarm is None
        if creating:
            count = db.session.execute(select(func.count()).select_from(Alarm).where(
                Alarm.account_id == account_id)).scalar()
            if count >= max_alarms:
                raise LimitExceeded(f"The maximum number of alarms ({max_alarms}) has been "
                                    "reached.")
            alarm = Alarm(account_id=account_id, name=request["AlarmName"],
                          state="INSUFFICIENT_DATA",
                          state_reason="Unchecked: Initial alarm creation",
                          state_updated=now, state_transitioned=now,
                          tags_json=json.dumps({t["Key"]: t["Value"]
                                                for t in request.get("Tags") or ()}))
            db.session.add(alarm)
        alarm.definition_json = json.dumps(stored, default=str)
        alarm.namespace = request.get("Namespace")
        alarm.metric_name = request.get("MetricName")
        alarm.actions_enabled = request.get("ActionsEnabled", True)
        alarm.configuration_updated = now
        history(account_id, alarm.name, "ConfigurationUpdate",
                f'Alarm "{alarm.name}" {"created" if creating else "updated"}',
                {"type": "Create" if creating else "Update", "version": "1.0",
                 "updatedAlarm": stored})


def _names_exist(account_id: str, names: list[str]) -> list[Alarm]:
    rows = db.session.execute(select(Alarm).where(Alarm.account_id == account_id,
                                                  Alarm.name.in_(names))).scalars().all()
    missing = sorted(set(names) - {row.name for row in rows})
    if missing:
        raise ResourceNotFound(f"{len(missing)} of the alarms do not exist: "
                               f"{', '.join(missing[:5])}")
    return rows


def delete(account_id: str, names: list[str]) -> None:
    """DeleteAlarms: all of them, or (ResourceNotFound) none when one does not exist."""
    with writing():
        for alarm in _names_exist(account_id, names):
            db.session.delete(alarm)


def enable_actions(account_id: str, names: list[str], enabled: bool) -> None:
    """Enable/DisableAlarmActions (names that do not exist are passed over, as on AWS)."""
    with writing():
        rows = db.session.execute(select(Alarm).where(Alarm.account_id == account_id,
                                                      Alarm.name.in_(names))).scalars()
        for alarm in rows:
            if alarm.actions_enabled != enabled:
                alarm.actions_enabled = enabled
                alarm.configuration_updated = utcnow()
                history(account_id, alarm.name, "ConfigurationUpdate",
                        f'Alarm "{alarm.name}" updated',
                        {"type": "Update", "version": "1.0",
                         "updatedAlarm": {"ActionsEnabled": enabled}})


# --- describing ------------------------------------------------------------------------------

def describe_one(alarm: Alarm, region: str) -> dict[str, Any]:
    """A MetricAlarm as DescribeAlarms answers it."""
    answer: dict[str, Any] = {"AlarmName": alarm.name,
                              "AlarmArn": arn(region, alarm.account_id, alarm.name),
                              "OKActions": [], "AlarmActions": [],
                              "InsufficientDataActions": [], "Dimensions": []}
    answer.update(definition(alarm))
    answer.update({
        "ActionsEnabled": alarm.actions_enabled,
        "AlarmConfigurationUpdatedTimestamp": utctime.aware(alarm.configuration_updated),
        "StateValue": alarm.state, "StateReason": alarm.state_reason,
        "StateUpdatedTimestamp": utctime.aware(alarm.state_updated),
        "StateTransitionedTimestamp": utctime.aware(alarm.state_transitioned),
    })
    if alarm.state_reason_data:
        answer["StateReasonData"] = alarm.state_reason_data
    if "Metrics" in answer:
        answer.pop("Dimensions")
    return answer


def _page_token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _page_after(token: str | None) -> Any:
    if token is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidNextToken("The service returned an invalid NextToken.") from None


def describe(account_id: str, request: dict[str, Any], region: str) -> dict[str, Any]:
    """DescribeAlarms (metric alarms; composite alarms are never made here)."""
    if request.get("AlarmNames") and request.get("AlarmNamePrefix"):
        raise InvalidParameterCombination("AlarmNames and AlarmNamePrefix are mutually "
                                          "exclusive and you have specified both.")
    if request.get("ChildrenOfAlarmName") or request.get("ParentsOfAlarmName"):
        # only composite alarms have children or parents
        return {"MetricAlarms": [], "CompositeAlarms": []}
    types = request.get("AlarmTypes") or ["MetricAlarm"]
    answer: dict[str, Any] = {"MetricAlarms": [], "CompositeAlarms": []}
    if "MetricAlarm" not in types:
        return answer
    query = select(Alarm).where(Alarm.account_id == account_id).order_by(Alarm.name)
    if request.get("AlarmNames"):
        query = query.where(Alarm.name.in_(request["AlarmNames"]))
    if request.get("AlarmNamePrefix"):
        query = query.where(Alarm.name.startswith(request["AlarmNamePrefix"],
                                                  autoescape=True))
    if request.get("StateValue"):
        query = query.where(Alarm.state == request["StateValue"])
    after = _page_after(request.get("NextToken"))
    if after is not None:
        if not isinstance(after, str):
            raise InvalidNextToken("The service returned an invalid NextToken.")
        query = query.where(Alarm.name > after)
    limit = request.get("MaxRecords") or DEFAULT_ALARMS_PAGE
    prefix = request.get("ActionPrefix")
    page: list[Alarm] = []
    for alarm in db.session.execute(query).scalars():
        if prefix and not _has_action_prefix(alarm, prefix):
            continue
        if len(page) == limit:
            answer["NextToken"] = _page_token(page[-1].name)
            break
        page.append(alarm)
    answer["MetricAlarms"] = [describe_one(alarm, region) for alarm in page]
    return answer


def _has_action_prefix(alarm: Alarm, prefix: str) -> bool:
    stored = definition(alarm)
    return any(action.startswith(prefix) for member in ("AlarmActions", "OKActions",
                                                        "InsufficientDataActions")
               for action in stored.get(member) or ())


def for_metric(account_id: str, request: dict[str, Any], region: str) -> list[dict]:
    """DescribeAlarmsForMetric: the alarms on that metric, narrowed by what else is given."""
    query = select(Alarm).where(Alarm.account_id == account_id,
                                Alarm.metric_name == request["MetricName"],
                                Alarm.namespace == request["Namespace"]).order_by(Alarm.name)
    wanted_dimensions = dimension_pairs(request.get("Dimensions"), "Dimensions")
    found = []
    for alarm in db.session.execute(query).scalars():
        stored = definition(alarm)
        if dimension_pairs(stored.get("Dimensions"), "Dimensions") != wanted_dimensions:
            continue
        if any(name in request and stored.get(name) != request[name]
               for name in ("Statistic", "ExtendedStatistic", "Period", "Unit")):
            continue
        found.append(describe_one(alarm, region))
    return found


def describe_history(account_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """DescribeAlarmHistory: newest first unless ScanBy says otherwise, paged."""
    types = request.get("AlarmTypes") or ["MetricAlarm"]
    answer: dict[str, Any] = {"AlarmHistoryItems": []}
    if "MetricAlarm" not in types:
        return answer
    descending = request.get("ScanBy", "TimestampDescending") == "TimestampDescending"
    order = AlarmHistory.id.desc() if descending else AlarmHistory.id
    query = select(AlarmHistory).where(AlarmHistory.account_id == account_id).order_by(order)
    if request.get("AlarmName"):
        query = query.where(AlarmHistory.alarm_name == request["AlarmName"])
    if request.get("HistoryItemType"):
        query = query.where(AlarmHistory.item_type == request["HistoryItemType"])
    if request.get("StartDate"):
        query = query.where(AlarmHistory.timestamp >= utctime.naive(request["StartDate"]))
    if request.get("EndDate"):
        query = query.where(AlarmHistory.timestamp <= utctime.naive(request["EndDate"]))
    after = _page_after(request.get("NextToken"))
    if after is not None:
        if not isinstance(after, int):
            raise InvalidNextToken("The service returned an invalid NextToken.")
        query = query.where(AlarmHistory.id < after if descending else AlarmHistory.id > after)
    limit = request.get("MaxRecords") or DEFAULT_HISTORY_PAGE
    rows = db.session.execute(query.limit(limit + 1)).scalars().all()
    if len(rows) > limit:
        rows = rows[:limit]
        answer["NextToken"] = _page_token(rows[-1].id)
    answer["AlarmHistoryItems"] = [{
        "AlarmName": row.alarm_name, "AlarmType": row.alarm_type,
        "Timestamp": utctime.aware(row.timestamp), "HistoryItemType": row.item_type,
        "HistorySummary": row.summary, "HistoryData": row.data_json or "{}"}
        for row in rows]
    return answer


def sweep_history(now: dt.datetime) -> None:
    with writing():
        db.session.execute(AlarmHistory.__table__.delete().where(
            AlarmHistory.timestamp < now - HISTORY_KEPT))


# --- tags ------------------------------------------------------------------------------------

_ALARM_ARN = re.compile(r"arn:aws:cloudwatch:([a-z0-9-]+):(\d{12}):alarm:(.+)")


class ResourceNotFoundException(ResourceNotFound):
    code = "ResourceNotFoundException"


def by_arn(account_id: str, resource_arn: str, region: str) -> Alarm:
    """The caller's alarm that *resource_arn* names (ResourceNotFoundException otherwise;
    alarms are the only CloudWatch resources eucalite keeps)."""
    match = _ALARM_ARN.fullmatch(resource_arn)
    if match is None or match.group(1) != region or match.group(2) != account_id:
        raise ResourceNotFoundException(f"The resource {resource_arn} does not exist.")
    alarm = find(account_id, match.group(3))
    if alarm is None:
        raise ResourceNotFoundException(f"The resource {resource_arn} does not exist.")
    return alarm


def tags_of(alarm: Alarm) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value}
            for key, value in sorted(json.loads(alarm.tags_json or "{}").items())]


def tag(account_id: str, resource_arn: str, region: str, tags: list[dict]) -> None:
    with writing():
        alarm = by_arn(account_id, resource_arn, region)
        current = json.loads(alarm.tags_json or "{}")
        current.update({item["Key"]: item["Value"] for item in tags})
        if len(current) > MAX_TAGS:
            raise InvalidParameterValue(f"An alarm may have at most {MAX_TAGS} tags.")
        alarm.tags_json = json.dumps(current)


def untag(account_id: str, resource_arn: str, region: str, keys: list[str]) -> None:
    with writing():
        alarm = by_arn(account_id, resource_arn, region)
        current = json.loads(alarm.tags_json or "{}")
        for key in keys:
            current.pop(key, None)
        alarm.tags_json = json.dumps(current)


def check_state(value: str) -> None:
    if value not in STATES:
        raise InvalidParameterValue(f"The value {value} for parameter StateValue is invalid.")

