"""CloudWatch metrics in the console: the metrics browser (namespace -> metric -> dimension
set -> chart of a statistic) and the JSON every console chart draws from (the browser's,
an instance's CPU, disk and network, the admin dashboard's node utilisation).

Views call :class:`eucalite.cloudwatch.service.CloudWatchService` as the CloudWatch API does
(ListMetrics, GetMetricData) with the signed-in user's Principal, so a user sees only their
account's metrics (the cloud admin's account holds the nodes' ``Eucalite/Node`` ones) and
every check (statistic names, periods, the gate) is the service's. The charts are drawn in
the browser by ``static/charts.js`` with Chart.js (``static/vendor/chart.min.js``)."""
from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from flask import jsonify, render_template, request

from ...api import services
from ...errors import AwsError, InvalidParameterValue
from ...wire import model
from ...wire.validate import validate
from .. import blueprint
from ..session import login_required, principal
from . import add_nav

add_nav("console.metrics", "Metrics")


@dataclass(frozen=True)
class Range:
    """A chart's time range: how far back it looks and the period of its points."""

    label: str
    seconds: int
    period: int


#: The ranges a chart offers (the query parameter ``range``), the first the default.
RANGES = {"hour": Range("1 hour", 3600, 60), "day": Range("1 day", 86400, 300),
          "week": Range("1 week", 7 * 86400, 3600)}
#: The statistics the metrics browser offers (the service accepts any it knows).
STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount", "p90", "p99")
#: The most ListMetrics pages (500 metrics each) one browser page reads.
MAX_LIST_PAGES = 20

#: The charts of an instance's page: (title, statistic, unit, its AWS/EC2 metrics).
INSTANCE_CHARTS = (("CPU utilisation", "Average", "%", ("CPUUtilization",)),
                   ("Disk", "Sum", "bytes", ("DiskReadBytes", "DiskWriteBytes")),
                   ("Network", "Sum", "bytes", ("NetworkIn", "NetworkOut")))
#: The node utilisation charts of the admin dashboard: (title, unit, Eucalite/Node metric).
NODE_CHARTS = (("vCPUs allocated", "vCPUs", "CPUAllocated"),
               ("Memory allocated", "MiB", "MemoryAllocated"),
               ("Instances running", "instances", "Instances"))
NODE_NAMESPACE = "Eucalite/Node"


def _cloudwatch():
    return services().cloudwatch


def checked(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """*request* after the checks the CloudWatch API makes of *operation*'s input before
    the service sees it (the model's required members, lengths, enums: the same
    MissingParameter / ValidationError)."""
    validate(model.load("cloudwatch").operation(operation).input_shape, request)
    return request


def series_param(namespace: str, metric: str, dimensions: list[list[str]]) -> str:
    """One ``series`` query parameter of :func:`metrics_data`: JSON
    ``[namespace, metric, [[name, value], ...]]`` (dimension values may hold anything)."""
    return json.dumps([namespace, metric, dimensions], ensure_ascii=False,
                      separators=(",", ":"))


def _json(text: str, name: str, shape: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidParameterValue(f"The parameter {name} must be JSON {shape}.") from None


def _dimension_pairs(value: Any, name: str) -> list[list[str]]:
    """*value* if it is ``[[name, value], ...]`` (strings), else InvalidParameterValue."""
    if not (isinstance(value, list) and all(
            isinstance(pair, list) and len(pair) == 2
            and all(isinstance(part, str) for part in pair) for pair in value)):
        raise InvalidParameterValue(f"The parameter {name} must be JSON "
                                    "[[name, value], ...].")
    return value


def _series_of(text: str) -> tuple[str, str, list[list[str]]]:
    """A ``series`` parameter (:func:`series_param`) read back."""
    shape = "[namespace, metric, [[name, value], ...]]"
    value = _json(text, "series", shape)
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and isinstance(value[1], str)):
        raise InvalidParameterValue(f"The parameter series must be JSON {shape}.")
    return value[0], value[1], _dimension_pairs(value[2], "series")


def _range_of(name: str) -> Range:
    if name not in RANGES:
        raise InvalidParameterValue(f"The parameter range must be one of "
                                    f"{', '.join(RANGES)}.")
    return RANGES[name]


def _label(metric: str, dimensions: list[list[str]], names_differ: bool) -> str:
    """A series' legend: its metric name, and its dimension values when the chart's
    series share the metric (one line per node, say)."""
    values = "/".join(value for _, value in dimensions)
    return values if not names_differ and values else metric


def chart_data(series: list[tuple[str, str, list[list[str]]]], stat: str, span: Range,
               now: float) -> dict[str, Any]:
    """GetMetricData for *series* (one MetricStat query each) over the *span* ending at
    the end of the current period: ``{"start", "end", "period", "stat", "series":
    [{"label", "points": [[epoch seconds, value], ...]}]}`` oldest point first."""
    end = (int(now) // span.period + 1) * span.period
    start = end - span.seconds
    names_differ = len({metric for _, metric, _ in series}) > 1
    queries = [{"Id": f"m{index}", "ReturnData": True,
                "Label": _label(metric, dimensions, names_differ),
                "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric,
                                          "Dimensions": [{"Name": n, "Value": v}
                                                         for n, v in dimensions]},
                               "Period": span.period, "Stat": stat}}
               for index, (namespace, metric, dimensions) in enumerate(series)]
    answer = _cloudwatch().get_metric_data(principal(), checked("GetMetricData", {
        "MetricDataQueries": queries, "ScanBy": "TimestampAscending",
        "StartTime": dt.datetime.fromtimestamp(start, dt.timezone.utc),
        "EndTime": dt.datetime.fromtimestamp(end, dt.timezone.utc)}))
    return {"start": start, "end": end, "period": span.period, "stat": stat,
            "series": [{"label": result["Label"],
                        "points": [[int(stamp.timestamp()), value] for stamp, value
                                   in zip(result["Timestamps"], result["Values"])]}
                       for result in answer["MetricDataResults"]]}


@blueprint.route("/metrics/data")
@login_required
def metrics_data():
    """The JSON a chart draws (:func:`chart_data`): query parameters ``series``
    (repeated, :func:`series_param`), ``stat`` (default Average) and ``range`` (hour,
    day, week). A bad request answers 400 with the AWS-style ``code`` and ``message``."""
    try:
        series = [_series_of(text) for text in request.args.getlist("series")]
        if not series:
            raise InvalidParameterValue("The parameter series is required.")
        span = _range_of(request.args.get("range", "hour"))
        return jsonify(chart_data(series, request.args.get("stat", "Average"), span,
                                  time.time()))
    except AwsError as error:
        return jsonify(code=error.code, message=error.message), error.status


def list_all_metrics(namespace: str | None = None,
                     metric: str | None = None) -> tuple[list[dict], bool]:
    """The account's metrics (ListMetrics, following NextToken up to MAX_LIST_PAGES pages)
    in *namespace* and named *metric* when given; and whether there were more."""
    query: dict[str, Any] = {}
    if namespace:
        query["Namespace"] = namespace
    if metric:
        query["MetricName"] = metric
    found: list[dict] = []
    for _ in range(MAX_LIST_PAGES):
        answer = _cloudwatch().list_metrics(principal(), checked("ListMetrics", query))
        found.extend(answer["Metrics"])
        if "NextToken" not in answer:
            return found, False
        query["NextToken"] = answer["NextToken"]
    return found, True


def _pairs(metric: dict) -> list[list[str]]:
    return [[item["Name"], item["Value"]] for item in metric.get("Dimensions") or ()]


@blueprint.route("/metrics")
@login_required
def metrics():
    """The browser: ``?namespace=`` lists its metrics, ``&metric=`` that metric's
    dimension sets, ``&dims=`` (JSON pairs) charts that one metric."""
    namespace = request.args.get("namespace") or None
    metric = (request.args.get("metric") or None) if namespace else None
    context: dict[str, Any] = {"namespace": namespace, "metric": metric, "chosen": None,
                               "ranges": RANGES, "statistics": STATISTICS,
                               "series_param": series_param}
    try:
        found, truncated = list_all_metrics(namespace, metric)
        if request.args.get("dims") is not None and metric:
            context["chosen"] = _dimension_pairs(
                _json(request.args["dims"], "dims", "[[name, value], ...]"), "dims")
    except AwsError as error:
        return render_template("console/error.html", code=error.code,
                               message=error.message), error.status
    context["truncated"] = truncated
    if namespace is None:
        counts: dict[str, int] = {}
        for item in found:
            counts[item["Namespace"]] = counts.get(item["Namespace"], 0) + 1
        context["namespaces"] = sorted(counts.items())
    elif metric is None:
        counts = {}
        for item in found:
            counts[item["MetricName"]] = counts.get(item["MetricName"], 0) + 1
        context["metric_names"] = sorted(counts.items())
    else:
        context["dimension_sets"] = sorted((_pairs(item) for item in found),
                                           key=lambda pairs: [v for _, v in pairs])
    return render_template("console/metrics.html", **context)


def instance_charts(instance_id: str) -> list[dict]:
    """The instance page's charts: title, statistic, unit and the data URL's series."""
    dims = [["InstanceId", instance_id]]
    return [{"title": title, "stat": stat, "unit": unit,
             "series": [series_param("AWS/EC2", name, dims) for name in names]}
            for title, stat, unit, names in INSTANCE_CHARTS]


def node_charts() -> list[dict]:
    """The admin dashboard's node utilisation charts (one line per node publishing
    Eucalite/Node metrics); empty when no node has published yet."""
    nodes = sorted({value for item in list_all_metrics(NODE_NAMESPACE)[0]
                    for name, value in _pairs(item) if name == "NodeId"})
    if not nodes:
        return []
    return [{"title": title, "stat": "Average", "unit": unit,
             "series": [series_param(NODE_NAMESPACE, metric, [["NodeId", node]])
                        for node in nodes]}
            for title, unit, metric in NODE_CHARTS]
