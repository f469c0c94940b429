"""CloudWatchService: the monitoring role's whole surface. Metrics (PutMetricData,
GetMetricStatistics, GetMetricData, ListMetrics) and, in :mod:`.alarms`, metric alarms.

Every call is decided by the one gate (:func:`eucalite.access.require`) as
``cloudwatch:<Action>``: on ``*`` for metrics (CloudWatch's metric actions have no
resource), on the alarm's ARN for alarm actions; PutMetricData also carries the
``cloudwatch:namespace`` condition key. Requests and answers are dicts in the shapes of
CloudWatch's API model (:mod:`eucalite.wire` turns them into each protocol).

A metric belongs to the account that published it; :meth:`publish` is how eucalite's own
collectors (the nodes' samples of their instances, S3's daily storage metrics) add data to
an account, into the ``AWS/`` namespaces callers may not write.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import select

from .. import access
from ..accounts import Account, Principal
from ..db import db, writing
from ..errors import InvalidParameterValue
from ..errors.iam import AccessDenied
from . import alarms, datums, evaluation, metricdata, statistics, store
from .datums import Datum
from .models import Alarm
from .errors import InvalidFormat, ResourceNotFound

#: Metrics one PutMetricData call may carry (MetricData and EntityMetricData together).
MAX_METRICS_PER_CALL = 1000


def now_seconds() -> int:
    return int(time.time())


class CloudWatchService:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.region = config.get("region", "eucalyptus")
        #: Who carries out alarm actions (EC2's registered by :meth:`act_on_instances`).
        self.actions = evaluation.Actions()

    # --- who may ------------------------------------------------------------------------

    def authorize(self, principal: Principal, action: str, resource: str = "*",
                  context: dict[str, Any] | None = None) -> None:
        """AccessDenied unless *principal* may take ``cloudwatch:<action>`` on
        *resource*."""
        try:
            access.require(principal, f"cloudwatch:{action}", resource, context=context)
        except access.Denied as denied:
            message = (f"User: {denied.caller_arn} is not authorized to perform: "
                       f"cloudwatch:{action}")
            if resource != "*":
                message += f" on resource: {resource}"
            if denied.explicit:
                message += " with an explicit deny in an identity-based policy"
            raise AccessDenied(message) from None

    # --- metrics ------------------------------------------------------------------------

    def put_metric_data(self, principal: Principal, request: dict[str, Any]) -> None:
        """PutMetricData: check every datum (all or nothing), then record them."""
        namespace = request["Namespace"]
        self.authorize(principal, "PutMetricData",
                       context={"cloudwatch:namespace": namespace})
        datums.check_namespace(namespace)
        items = list(request.get("MetricData") or ())
        for entity in request.get("EntityMetricData") or ():
            items.extend(entity.get("MetricData") or ())
        if len(items) > MAX_METRICS_PER_CALL:
            raise InvalidParameterValue(f"The collection MetricData must not have a size "
                                        f"greater than {MAX_METRICS_PER_CALL}.")
        now = time.time()
        data = [datums.datum(item, index, now) for index, item in enumerate(items, 1)]
        store.record(principal.account_id, namespace, data, int(now))

    def publish(self, account_id: str, namespace: str, data: list[Datum]) -> None:
        """Record datapoints eucalite itself measured (any namespace, ``AWS/`` ones
        included) for *account_id*."""
        store.record(account_id, namespace, data, now_seconds())

    def get_metric_statistics(self, principal: Principal,
                              request: dict[str, Any]) -> dict[str, Any]:
        self.authorize(principal, "GetMetricStatistics")
        return statistics.metric_statistics(principal.account_id, request, now_seconds())

    def get_metric_data(self, principal: Principal, request: dict[str, Any]) -> dict[str, Any]:
        self.authorize(principal, "GetMetricData")
        return metricdata.metric_data(principal.account_id, request, now_seconds())

    def list_metrics(self, principal: Principal, request: dict[str, Any]) -> dict[str, Any]:
        """ListMetrics: the caller's account's metrics (every account's for the cloud
        admin with IncludeLinkedAccounts, narrowed by OwningAccount), paged by 500."""
        self.authorize(principal, "ListMetrics")
        accounts = [principal.account_id]
        linked = bool(request.get("IncludeLinkedAccounts"))
        if linked and principal.is_cloud_admin:
            accounts = [request["OwningAccount"]] if request.get("OwningAccount") else \
                _every_account()
        filters = list(request.get("Dimensions") or ())
        found, token = store.listing(accounts, request.get("Namespace"),
                                     request.get("MetricName"), filters,
                                     request.get("RecentlyActive") == "PT3H",
                                     request.get("NextToken"), now_seconds())
        answer: dict[str, Any] = {"Metrics": [metric.as_dict() for _, metric in found]}
        if linked:
            answer["OwningAccounts"] = [account for account, _ in found]
        if token is not None:
            answer["NextToken"] = token
        return answer


    # --- alarms ---------------------------------------------------------------------------

    def _alarm_arn(self, principal: Principal, name: str) -> str:
        return alarms.arn(self.region, principal.account_id, name)

    def put_metric_alarm(self, principal: Principal, request: dict[str, Any]) -> None:
        """PutMetricAlarm: create or replace (tags only on creation, which also needs
        cloudwatch:TagResource, as on AWS)."""
        self.authorize(principal, "PutMetricAlarm", self._alarm_arn(principal,
                                                                    request["AlarmName"]))
        if request.get("Tags"):
            self.authorize(principal, "TagResource",
                           self._alarm_arn(principal, request["AlarmName"]))
        alarms.check_definition(request, self.region, principal.account_id)
        alarms.put(principal.account_id, request, int(self.config.get("max_alarms", 5000)))

    def put_service_alarm(self, account_id: str, request: dict[str, Any]) -> None:
        """PutMetricAlarm for an alarm another service makes on the account's behalf (Auto
        Scaling's target tracking), without an IAM check; commits."""
        alarms.check_definition(request, self.region, account_id)
        alarms.put(account_id, request, int(self.config.get("max_alarms", 5000)))

    def delete_service_alarms(self, account_id: str, names: list[str]) -> None:
        """Delete alarms another service made for the account (those of a target tracking
        policy that goes), those still there; commits."""
        existing = db.session.execute(select(Alarm.name).where(
            Alarm.account_id == account_id, Alarm.name.in_(names))).scalars().all()
        if existing:
            alarms.delete(account_id, existing)

    def describe_alarms(self, principal: Principal, request: dict[str, Any]) -> dict[str, Any]:
        self.authorize(principal, "DescribeAlarms")
        return alarms.describe(principal.account_id, request, self.region)

    def describe_alarms_for_metric(self, principal: Principal,
                                   request: dict[str, Any]) -> dict[str, Any]:
        self.authorize(principal, "DescribeAlarmsForMetric")
        return {"MetricAlarms": alarms.for_metric(principal.account_id, request,
                                                  self.region)}

    def describe_alarm_history(self, principal: Principal,
                               request: dict[str, Any]) -> dict[str, Any]:
        self.authorize(principal, "DescribeAlarmHistory")
        return alarms.describe_history(principal.account_id, request)

    def delete_alarms(self, principal: Principal, names: list[str]) -> None:
        for name in names:
            self.authorize(principal, "DeleteAlarms", self._alarm_arn(principal, name))
        alarms.delete(principal.account_id, names)

    def enable_alarm_actions(self, principal: Principal, names: list[str],
                             enabled: bool) -> None:
        action = "EnableAlarmActions" if enabled else "DisableAlarmActions"
        for name in names:
            self.authorize(principal, action, self._alarm_arn(principal, name))
        alarms.enable_actions(principal.account_id, names, enabled)

    def set_alarm_state(self, principal: Principal, request: dict[str, Any]) -> None:
        """SetAlarmState: the state until the next evaluation; a change runs its actions.
        StateReasonData must be JSON (InvalidFormat)."""
        name = request["AlarmName"]
        self.authorize(principal, "SetAlarmState", self._alarm_arn(principal, name))
        alarms.check_state(request["StateValue"])
        reason_data = request.get("StateReasonData")
        if reason_data is not None:
            try:
                json.loads(reason_data)
            except ValueError:
                raise InvalidFormat("StateReasonData is not valid JSON.") from None
        with writing():
            alarm = alarms.find(principal.account_id, name)
            if alarm is None:
                raise ResourceNotFound(f"Alarm {name} not found")
            decision = evaluation.Decision(request["StateValue"], request["StateReason"])
            transition = evaluation.change_state(alarm, alarm.state, decision,
                                                 reason_data=reason_data)
        if transition is not None:
            self.actions.run(transition)

    def evaluate_alarms(self, now: int | None = None) -> int:
        """Evaluate every alarm once (the background loop's step); returns how many
        changed state."""
        return evaluation.evaluate_all(self.actions, now if now is not None else now_seconds())

    def upkeep(self, now: int | None = None) -> None:
        """Drop metric data and alarm history past their retention."""
        now = now if now is not None else now_seconds()
        store.sweep(now)
        alarms.sweep_history(dt.datetime.fromtimestamp(now, dt.timezone.utc)
                             .replace(tzinfo=None))

    # --- tags ---------------------------------------------------------------------------

    def tag_resource(self, principal: Principal, resource_arn: str, tags: list[dict]) -> None:
        self.authorize(principal, "TagResource", resource_arn)
        alarms.tag(principal.account_id, resource_arn, self.region, tags)

    def untag_resource(self, principal: Principal, resource_arn: str, keys: list[str]) -> None:
        self.authorize(principal, "UntagResource", resource_arn)
        alarms.untag(principal.account_id, resource_arn, self.region, keys)

    def list_tags(self, principal: Principal, resource_arn: str) -> list[dict]:
        self.authorize(principal, "ListTagsForResource", resource_arn)
        return alarms.tags_of(alarms.by_arn(principal.account_id, resource_arn, self.region))


def _every_account() -> list[str]:
    return list(db.session.execute(db.select(Account.id)).scalars())
