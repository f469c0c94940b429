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

import time
from typing import Any

from .. import access
from ..accounts import Account, Principal
from ..db import db
from ..errors import InvalidParameterValue
from ..errors.iam import AccessDenied
from . import datums, metricdata, statistics, store
from .datums import Datum

#: Metrics one PutMetricData call may carry (MetricData and EntityMetricData together).
MAX_METRICS_PER_CALL = 1000


def now_seconds() -> int:
    return int(time.time())


class CloudWatchService:
    def __init__(self, config: dict[str, Any]):
        self.config = config

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


def _every_account() -> list[str]:
    return list(db.session.execute(db.select(Account.id)).scalars())
