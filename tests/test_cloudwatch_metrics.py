"""CloudWatch metrics through the service object: what PutMetricData records and what
GetMetricStatistics, GetMetricData and ListMetrics answer, checked against statistics
computed here from the published values; storage levels, roll-ups and retention; the
errors of bad input. (The same over the wire, with boto3 on each protocol, is
tests/test_cloudwatch_api.py.)"""
from __future__ import annotations

import datetime as dt
import math
import random
import statistics as pystats

import pytest

from eucalite import accounts
from eucalite.cloudwatch import store
from eucalite.cloudwatch.service import CloudWatchService
from eucalite.cloudwatch.stats import EXACT_VALUES, Cell
from eucalite.db import db
from eucalite.errors import AwsError

UTC = dt.timezone.utc


@pytest.fixture
def cw(app):
    with app.app_context():
        who = accounts.principal_of(accounts.create_account("metrics").users[0])
        yield CloudWatchService(app.config), who


def minute_ago(minutes: float) -> dt.datetime:
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    return now - dt.timedelta(minutes=minutes)


def put(service, who, namespace, data):
    service.put_metric_data(who, {"Namespace": namespace, "MetricData": data})


def stats(service, who, name, start, end, period=60, statistics=None, extended=None,
          dimensions=None, unit=None, namespace="App"):
    request = {"Namespace": namespace, "MetricName": name, "StartTime": start,
               "EndTime": end, "Period": period}
    if statistics:
        request["Statistics"] = statistics
    if extended:
        request["ExtendedStatistics"] = extended
    if dimensions:
        request["Dimensions"] = dimensions
    if unit:
        request["Unit"] = unit
    return service.get_metric_statistics(who, request)["Datapoints"]


def test_statistics_of_values_match_computed_ones(cw):
    service, who = cw
    rng = random.Random(7)
    at = minute_ago(10)
    values = [round(rng.uniform(0, 100), 3) for _ in range(120)]
    put(service, who, "App", [{"MetricName": "Latency", "Value": v, "Timestamp": at,
                               "Unit": "Milliseconds"} for v in values])
    (point,) = stats(service, who, "Latency", at, at + dt.timedelta(minutes=1),
                     statistics=["SampleCount", "Average", "Sum", "Minimum", "Maximum"])
    assert point["SampleCount"] == 120
    assert point["Sum"] == pytest.approx(sum(values))
    assert point["Average"] == pytest.approx(pystats.mean(values))
    assert point["Minimum"] == min(values) and point["Maximum"] == max(values)
    assert point["Unit"] == "Milliseconds"
    assert point["Timestamp"] == at
    (point,) = stats(service, who, "Latency", at, at + dt.timedelta(minutes=1),
                     extended=["p50", "p90", "p100"])
    ordered = sorted(values)
    assert point["ExtendedStatistics"]["p50"] == ordered[59]     # nearest rank: 60th of 120
    assert point["ExtendedStatistics"]["p90"] == ordered[107]
    assert point["ExtendedStatistics"]["p100"] == ordered[-1]


def test_values_and_counts_and_statistic_sets(cw):
    service, who = cw
    at = minute_ago(5)
    put(service, who, "App", [
        {"MetricName": "Size", "Values": [1.0, 2.0, 10.0], "Counts": [3.0, 1.0, 1.0],
         "Timestamp": at},
        {"MetricName": "Size", "StatisticValues": {"SampleCount": 5, "Sum": 50, "Minimum": 4,
                                                   "Maximum": 20}, "Timestamp": at},
    ])
    (point,) = stats(service, who, "Size", at, at + dt.timedelta(minutes=1),
                     statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"])
    assert point == {"Timestamp": at, "Unit": "None", "SampleCount": 10.0, "Sum": 65.0,
                     "Minimum": 1.0, "Maximum": 20.0, "Average": 6.5}
    # a statistic set hides its values: no percentile for that minute
    (point,) = stats(service, who, "Size", at, at + dt.timedelta(minutes=1),
                     extended=["p50"])
    assert point["ExtendedStatistics"] == {}


def test_periods_group_minutes_and_units_stay_apart(cw):
    service, who = cw
    start = minute_ago(30)
    start = start - dt.timedelta(minutes=start.minute % 10)
    data = []
    for minute in range(10):
        data.append({"MetricName": "Hits", "Value": minute, "Unit": "Count",
                     "Timestamp": start + dt.timedelta(minutes=minute, seconds=30)})
    data.append({"MetricName": "Hits", "Value": 1000, "Unit": "Seconds",
                 "Timestamp": start + dt.timedelta(minutes=2)})
    put(service, who, "App", data)
    points = stats(service, who, "Hits", start, start + dt.timedelta(minutes=10),
                   period=300, statistics=["Sum", "SampleCount"])
    by = {(p["Timestamp"], p["Unit"]): (p["Sum"], p["SampleCount"]) for p in points}
    assert by == {(start, "Count"): (0 + 1 + 2 + 3 + 4, 5),
                  (start + dt.timedelta(minutes=5), "Count"): (5 + 6 + 7 + 8 + 9, 5),
                  (start, "Seconds"): (1000, 1)}
    counts = stats(service, who, "Hits", start, start + dt.timedelta(minutes=10),
                   period=600, statistics=["Sum"], unit="Count")
    assert [p["Sum"] for p in counts] == [45]
    assert stats(service, who, "Hits", start, start + dt.timedelta(minutes=10), period=600,
                 statistics=["Sum"], unit="Bytes") == []


def test_dimensions_name_separate_metrics(cw):
    service, who = cw
    at = minute_ago(3)
    put(service, who, "App", [
        {"MetricName": "CPU", "Value": 10, "Timestamp": at,
         "Dimensions": [{"Name": "Host", "Value": "a"}, {"Name": "Role", "Value": "web"}]},
        {"MetricName": "CPU", "Value": 90, "Timestamp": at,
         "Dimensions": [{"Name": "Role", "Value": "web"}, {"Name": "Host", "Value": "b"}]},
    ])
    # the order dimensions are given in does not matter; each combination is its own metric
    (point,) = stats(service, who, "CPU", at, at + dt.timedelta(minutes=1),
                     statistics=["Maximum"],
                     dimensions=[{"Name": "Role", "Value": "web"}, {"Name": "Host", "Value": "b"}])
    assert point["Maximum"] == 90
    assert stats(service, who, "CPU", at, at + dt.timedelta(minutes=1),
                 statistics=["Maximum"]) == []


def test_high_resolution_data_answers_sub_minute_periods(cw):
    service, who = cw
    at = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    at = at - dt.timedelta(seconds=at.second % 10)
    put(service, who, "App", [{"MetricName": "Fast", "Value": second, "StorageResolution": 1,
                               "Timestamp": at + dt.timedelta(seconds=second)}
                              for second in range(20)])
    points = stats(service, who, "Fast", at, at + dt.timedelta(seconds=20), period=10,
                   statistics=["Sum"])
    assert [(p["Timestamp"], p["Sum"]) for p in points] == [
        (at, sum(range(10))), (at + dt.timedelta(seconds=10), sum(range(10, 20)))]
    # minute cells hold the same data, rolled up
    minute = at.replace(second=0)
    total = sum(p["Sum"] for p in stats(service, who, "Fast", minute,
                                        minute + dt.timedelta(minutes=2),
                                        statistics=["Sum"]))
    assert total == sum(range(20))


def test_retention_keeps_roll_ups_after_fine_cells_go(cw):
    service, who = cw
    at = dt.datetime.now(UTC).replace(second=0, microsecond=0) - dt.timedelta(days=13)
    at = at - dt.timedelta(minutes=at.minute)        # on the hour
    put(service, who, "App", [{"MetricName": "Old", "Value": v,
                               "Timestamp": at + dt.timedelta(minutes=v)} for v in range(60)])
    hour = stats(service, who, "Old", at, at + dt.timedelta(hours=1), period=3600,
                 statistics=["Sum", "SampleCount"])
    assert [(p["Sum"], p["SampleCount"]) for p in hour] == [(sum(range(60)), 60)]
    # 16 days later the minute cells are gone, the 5-minute and hour cells remain
    later = int(at.timestamp()) + 16 * 86400
    store.sweep(later)
    levels = sorted({row[0] for row in db.session.execute(
        db.select(store._cells.c.level).distinct())})
    assert levels == [300, 3600]


def test_percentiles_stay_close_once_compacted(cw):
    service, who = cw
    at = minute_ago(2)
    rng = random.Random(3)
    values = [rng.lognormvariate(3, 1) for _ in range(3000)]
    for chunk in range(0, 3000, 150):
        put(service, who, "App", [{"MetricName": "Heavy", "Values": values[chunk:chunk + 150],
                                   "Timestamp": at}])
    (point,) = stats(service, who, "Heavy", at, at + dt.timedelta(minutes=1),
                     extended=["p50", "p99"])
    ordered = sorted(values)
    assert point["ExtendedStatistics"]["p50"] == pytest.approx(ordered[1499], rel=0.01)
    assert point["ExtendedStatistics"]["p99"] == pytest.approx(ordered[2969], rel=0.01)
    cell = db.session.execute(db.select(store._cells.c.values_json).where(
        store._cells.c.level == 60)).scalar()
    assert cell.count("],[") + 1 <= 3 * EXACT_VALUES


def test_list_metrics_filters_and_pages(cw):
    service, who = cw
    at = minute_ago(1)
    data = [{"MetricName": f"M{index % 3}", "Value": 1, "Timestamp": at,
             "Dimensions": [{"Name": "Index", "Value": str(index)}]} for index in range(1000)]
    put(service, who, "Big", data[:500])
    put(service, who, "Big", data[500:])
    put(service, who, "Other", [{"MetricName": "M0", "Value": 1}])
    first = service.list_metrics(who, {"Namespace": "Big"})
    assert len(first["Metrics"]) == 500 and "NextToken" in first
    second = service.list_metrics(who, {"Namespace": "Big", "NextToken": first["NextToken"]})
    assert len(second["Metrics"]) == 500 and "NextToken" not in second
    names = {(m["MetricName"], m["Dimensions"][0]["Value"])
             for m in first["Metrics"] + second["Metrics"]}
    assert len(names) == 1000
    only = service.list_metrics(who, {"Namespace": "Big", "MetricName": "M1",
                                      "Dimensions": [{"Name": "Index", "Value": "4"}]})
    assert only["Metrics"] == [{"Namespace": "Big", "MetricName": "M1",
                                "Dimensions": [{"Name": "Index", "Value": "4"}]}]
    assert service.list_metrics(who, {"Dimensions": [{"Name": "Nope"}]})["Metrics"] == []
    with pytest.raises(AwsError) as error:
        service.list_metrics(who, {"NextToken": "garbage"})
    assert error.value.code == "InvalidParameterValue"


def test_get_metric_data_with_math(cw):
    service, who = cw
    start = minute_ago(10)
    put(service, who, "App", [{"MetricName": "Req", "Value": 10 * (m + 1),
                               "Timestamp": start + dt.timedelta(minutes=m)} for m in range(5)]
        + [{"MetricName": "Err", "Value": m, "Timestamp": start + dt.timedelta(minutes=m)}
           for m in range(5)])

    def stat(name):
        return {"Metric": {"Namespace": "App", "MetricName": name}, "Period": 60,
                "Stat": "Sum"}

    answer = service.get_metric_data(who, {
        "StartTime": start, "EndTime": start + dt.timedelta(minutes=5),
        "ScanBy": "TimestampAscending",
        "MetricDataQueries": [
            {"Id": "req", "MetricStat": stat("Req"), "ReturnData": False},
            {"Id": "err", "MetricStat": stat("Err")},
            {"Id": "rate", "Expression": "100 * err / req", "Label": "Error rate"},
            {"Id": "total", "Expression": "SUM(METRICS())"},
            {"Id": "avg", "Expression": "AVG(req)"},
        ]})
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert set(results) == {"err", "rate", "total", "avg"}
    assert results["rate"]["Label"] == "Error rate"
    assert results["rate"]["Values"] == pytest.approx([100 * m / (10 * (m + 1))
                                                       for m in range(5)])
    assert results["total"]["Values"] == [11 * m + 10 for m in range(5)]
    assert results["avg"]["Values"] == [30.0] * 5
    assert results["err"]["Timestamps"][0] == start
    assert all(r["StatusCode"] == "Complete" for r in results.values())


def test_get_metric_data_pages_by_max_datapoints(cw):
    service, who = cw
    start = minute_ago(30)
    put(service, who, "App", [{"MetricName": "P", "Value": m,
                               "Timestamp": start + dt.timedelta(minutes=m)} for m in range(20)])
    request = {"StartTime": start, "EndTime": start + dt.timedelta(minutes=20),
               "MaxDatapoints": 8,
               "MetricDataQueries": [{"Id": "p", "MetricStat": {
                   "Metric": {"Namespace": "App", "MetricName": "P"}, "Period": 60,
                   "Stat": "Maximum"}}]}
    seen = []
    while True:
        page = service.get_metric_data(who, request)
        (result,) = page["MetricDataResults"]
        seen.extend(result["Values"])
        if "NextToken" not in page:
            assert result["StatusCode"] == "Complete"
            break
        assert result["StatusCode"] == "PartialData" and len(result["Values"]) == 8
        request = {**request, "NextToken": page["NextToken"]}
    assert seen == [float(m) for m in reversed(range(20))]       # newest first by default


@pytest.mark.parametrize("datum, code", [
    ({"MetricName": "X", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1,
                                                          "Minimum": 1, "Maximum": 1}},
     "InvalidParameterCombination"),
    ({"MetricName": "X"}, "InvalidParameterCombination"),
    ({"MetricName": "X", "Value": math.nan}, "InvalidParameterValue"),
    ({"MetricName": "X", "Value": 2.0 ** 361}, "InvalidParameterValue"),
    ({"MetricName": "X", "Values": [1.0, 2.0], "Counts": [1.0]}, "InvalidParameterValue"),
    ({"MetricName": "X", "Values": [float(v) for v in range(151)]}, "InvalidParameterValue"),
    ({"MetricName": "X", "Value": 1, "StorageResolution": 30}, "InvalidParameterValue"),
    ({"MetricName": "X", "Value": 1,
      "Timestamp": dt.datetime.now(UTC) - dt.timedelta(days=15)}, "InvalidParameterValue"),
    ({"MetricName": "X", "Value": 1,
      "Timestamp": dt.datetime.now(UTC) + dt.timedelta(hours=3)}, "InvalidParameterValue"),
    ({"MetricName": "X", "Value": 1, "Dimensions": [{"Name": "A", "Value": "1"},
                                                     {"Name": "A", "Value": "2"}]},
     "InvalidParameterValue"),
])
def test_bad_datums_are_refused_whole(cw, datum, code):
    service, who = cw
    with pytest.raises(AwsError) as error:
        put(service, who, "App", [{"MetricName": "Good", "Value": 1}, datum])
    assert error.value.code == code
    # nothing of the request was recorded
    assert service.list_metrics(who, {})["Metrics"] == []


def test_reserved_namespace_and_query_errors(cw):
    service, who = cw
    with pytest.raises(AwsError) as error:
        put(service, who, "AWS/EC2", [{"MetricName": "CPUUtilization", "Value": 1}])
    assert error.value.code == "InvalidParameterValue"
    start = minute_ago(100)
    cases = [
        (dict(period=45, statistics=["Sum"]), "InvalidParameterValue"),
        (dict(period=60, statistics=["Sum"], extended=["p50"]), "InvalidParameterCombination"),
        (dict(period=60), "InvalidParameterCombination"),
        (dict(period=60, extended=["p101"]), "InvalidParameterValue"),
        (dict(period=1, statistics=["Sum"]), "InvalidParameterCombination"),   # 6000 points
    ]
    for options, code in cases:
        with pytest.raises(AwsError) as error:
            stats(service, who, "X", start, start + dt.timedelta(minutes=100), **options)
        assert error.value.code == code, options
    with pytest.raises(AwsError) as error:
        stats(service, who, "X", start, start, statistics=["Sum"])
    assert error.value.code == "InvalidParameterValue"


def test_cell_merge_is_order_free():
    rng = random.Random(11)
    values = [rng.uniform(-5, 50) for _ in range(600)]
    one = Cell.of_values({v: 1.0 for v in values})
    parts = [Cell.of_values({v: 1.0 for v in values[i:i + 100]}) for i in range(0, 600, 100)]
    merged = Cell()
    for part in reversed(parts):
        merged.merge(part)
    assert merged.count == one.count == 600
    assert merged.total == pytest.approx(one.total)
    assert (merged.minimum, merged.maximum) == (min(values), max(values))
    # negative values: no percentiles, as CloudWatch
    assert merged.percentile(50) is None


def test_coarse_cells_answer_queries_on_their_boundaries():
    from eucalite.cloudwatch import levels
    now = 1_800_000_000 - 1_800_000_000 % 3600 + 1800
    hour = now - 7 * 86400 - 1800                     # on the hour, a week ago
    assert levels.level_for(3600, hour, now).seconds == 3600
    assert levels.level_for(3600, hour + 60, now).seconds == 60       # 12:01 to 13:01 ...
    assert levels.level_for(600, hour, now).seconds == 300
    assert levels.level_for(60, hour, now).seconds == 60
    assert levels.level_for(10, now - 600, now).seconds == 1
    assert levels.level_for(10, now - 4 * 3600, now) is None          # 1 s data is gone
    assert levels.level_for(60, now - 20 * 86400, now) is None        # minutes are gone
    assert levels.level_for(300, now - 20 * 86400 - 1800, now).seconds == 300


@pytest.mark.parametrize("expression", ["(" * 3000 + "1" + ")" * 3000, "2^" * 1500 + "2",
                                        "SUM(" * 700 + "m" + ")" * 700])
def test_expressions_too_deep_are_validation_errors(cw, expression):
    service, who = cw
    start = minute_ago(10)
    with pytest.raises(AwsError) as error:
        service.get_metric_data(who, {
            "StartTime": start, "EndTime": start + dt.timedelta(minutes=5),
            "MetricDataQueries": [{"Id": "e", "Expression": expression},
                                  {"Id": "m", "MetricStat": {"Metric": {
                                      "Namespace": "App", "MetricName": "X"},
                                      "Period": 60, "Stat": "Sum"}}]})
    assert error.value.code == "ValidationError"


def test_metric_math_parses_as_written():
    from eucalite.cloudwatch import mathexpr
    context = mathexpr.Context(values={"a": mathexpr.Series({0: 2.0, 60: 3.0}, 60)},
                               metric_series=[])
    assert mathexpr.evaluate(mathexpr.parse("2 ^ 3 ^ 2"), context, 0, 120) == 512.0
    assert mathexpr.evaluate(mathexpr.parse("-2 * -(3 - 5)"), context, 0, 120) == -4.0
    assert mathexpr.evaluate(mathexpr.parse("a * 10 + 1"), context, 0, 120).points == {
        0: 21.0, 60: 31.0}
    assert mathexpr.references(mathexpr.parse("SUM([a, b]) / METRICS()")) == {"a", "b", "*"}
    for bad in ("1 +", "SUM(a", "a b", "[a,]", ")", "NOPE(a)", "a $ b"):
        with pytest.raises(mathexpr.ExpressionError):
            mathexpr.evaluate(mathexpr.parse(bad), context, 0, 120)
