"""CloudWatch over the wire: boto3 unmodified (awsJson, what it sends today), pinned to
awsQuery (older SDKs) and to Smithy RPC v2 CBOR (other SDKs), and the aws CLI, against a
live server: metrics in and statistics out, alarms and their history, tags, the errors of
bad input in the same codes on every protocol, who may see and do what."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from awsutil import error_code, failure
from iamutil import account_root

import wire_clients

UTC = dt.timezone.utc
PROTOCOLS = ["json", "query", "cbor"]


@pytest.fixture(params=PROTOCOLS)
def cw(live, request):
    """A CloudWatch client of the cloud admin speaking one protocol."""
    return wire_clients.client("cloudwatch", request.param, live.endpoints["cloudwatch"],
                               live.key_id, live.secret, live.region)


def minute(minutes_ago: int) -> dt.datetime:
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    return now - dt.timedelta(minutes=minutes_ago)


def test_put_then_statistics_and_metric_data(cw):
    start = minute(10)
    cw.put_metric_data(Namespace="Lab/App", MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "web-1"}],
         "Timestamp": start + dt.timedelta(minutes=m, seconds=5), "Value": 10.0 * (m + 1),
         "Unit": "Milliseconds"} for m in range(5)] + [
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "web-1"}],
         "Timestamp": start + dt.timedelta(seconds=30), "Values": [1.0, 2.0],
         "Counts": [2.0, 1.0], "Unit": "Milliseconds"},
        {"MetricName": "Jobs", "Timestamp": start, "StatisticValues": {
            "SampleCount": 4, "Sum": 10, "Minimum": 1, "Maximum": 4}}])
    answer = cw.get_metric_statistics(
        Namespace="Lab/App", MetricName="Latency", Dimensions=[{"Name": "Host",
                                                                "Value": "web-1"}],
        StartTime=start, EndTime=start + dt.timedelta(minutes=5), Period=60,
        Statistics=["Sum", "SampleCount", "Maximum", "Average"])
    points = sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
    assert answer["Label"] == "Latency"
    assert [p["Timestamp"] for p in points] == [start + dt.timedelta(minutes=m)
                                                for m in range(5)]
    assert points[0] == {"Timestamp": start, "Sum": 14.0, "SampleCount": 4.0,
                         "Maximum": 10.0, "Average": 3.5, "Unit": "Milliseconds"}
    assert [p["Sum"] for p in points[1:]] == [20.0, 30.0, 40.0, 50.0]
    percentiles = cw.get_metric_statistics(
        Namespace="Lab/App", MetricName="Latency",
        Dimensions=[{"Name": "Host", "Value": "web-1"}], StartTime=start,
        EndTime=start + dt.timedelta(minutes=1), Period=60, ExtendedStatistics=["p50"])
    assert percentiles["Datapoints"][0]["ExtendedStatistics"] == {"p50": 1.0}
    data = cw.get_metric_data(StartTime=start, EndTime=start + dt.timedelta(minutes=5),
                              ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "lat", "MetricStat": {"Metric": {"Namespace": "Lab/App",
                                                "MetricName": "Latency",
                                                "Dimensions": [{"Name": "Host",
                                                                "Value": "web-1"}]},
                                     "Period": 60, "Stat": "Maximum"}, "ReturnData": False},
        {"Id": "double", "Expression": "lat * 2", "Label": "twice"}])
    (result,) = data["MetricDataResults"]
    assert (result["Id"], result["Label"], result["StatusCode"]) == ("double", "twice",
                                                                      "Complete")
    assert result["Values"] == [20.0, 40.0, 60.0, 80.0, 100.0]
    assert result["Timestamps"][0] == start


def test_list_metrics_pages(cw):
    for batch in range(2):
        cw.put_metric_data(Namespace="Lab/Many", MetricData=[
            {"MetricName": "M", "Dimensions": [{"Name": "N", "Value": f"{batch}-{i}"}],
             "Value": 1.0} for i in range(300)])
    paginator = cw.get_paginator("list_metrics")
    pages = list(paginator.paginate(Namespace="Lab/Many"))
    assert [len(page["Metrics"]) for page in pages] == [500, 100]
    assert len({m["Dimensions"][0]["Value"] for page in pages for m in page["Metrics"]}) == 600
    only = cw.list_metrics(Namespace="Lab/Many", Dimensions=[{"Name": "N", "Value": "1-7"}])
    assert only["Metrics"] == [{"Namespace": "Lab/Many", "MetricName": "M",
                                "Dimensions": [{"Name": "N", "Value": "1-7"}]}]
    assert cw.list_metrics(Namespace="Lab/Many", RecentlyActive="PT3H",
                           MetricName="Nope")["Metrics"] == []


def test_alarm_lifecycle(cw, live):
    cw.put_metric_alarm(AlarmName="hot", Namespace="Lab/App", MetricName="Temp",
                        Statistic="Maximum", Period=60, EvaluationPeriods=2,
                        DatapointsToAlarm=1, Threshold=70.0,
                        ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="notBreaching", AlarmDescription="too hot",
                        Tags=[{"Key": "team", "Value": "lab"}])
    (alarm,) = cw.describe_alarms(AlarmNames=["hot"])["MetricAlarms"]
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["AlarmArn"].startswith("arn:aws:cloudwatch:")
    assert alarm["StateUpdatedTimestamp"].tzinfo is not None
    assert cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"] == [
        {"Key": "team", "Value": "lab"}]
    cw.put_metric_data(Namespace="Lab/App", MetricData=[
        {"MetricName": "Temp", "Value": 95.0, "Timestamp": minute(1)}])
    with live.app.app_context():
        assert live.app.extensions["eucalite"].cloudwatch.evaluate_alarms() == 1
    (alarm,) = cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 datapoint [95.0")
    assert json.loads(alarm["StateReasonData"])["recentDatapoints"] == [95.0]
    for_metric = cw.describe_alarms_for_metric(Namespace="Lab/App", MetricName="Temp")
    assert [a["AlarmName"] for a in for_metric["MetricAlarms"]] == ["hot"]
    cw.set_alarm_state(AlarmName="hot", StateValue="OK", StateReason="by hand")
    cw.disable_alarm_actions(AlarmNames=["hot"])
    history = cw.describe_alarm_history(AlarmName="hot")["AlarmHistoryItems"]
    assert [h["HistoryItemType"] for h in history] == [
        "ConfigurationUpdate", "StateUpdate", "StateUpdate", "ConfigurationUpdate"]
    assert history[1]["HistorySummary"] == "Alarm updated from ALARM to OK"
    cw.delete_alarms(AlarmNames=["hot"])
    assert cw.describe_alarms()["MetricAlarms"] == []


@pytest.mark.parametrize("call, code", [
    (lambda c: c.put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "X", "Value": 1.0}]), "InvalidParameterValue"),
    (lambda c: c.put_metric_data(Namespace="Lab", MetricData=[
        {"MetricName": "X", "Value": 1.0, "StatisticValues": {
            "SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}]),
     "InvalidParameterCombination"),
    (lambda c: c.put_metric_data(Namespace="Lab", MetricData=[
        {"MetricName": "X", "Value": 1.0, "StorageResolution": 5}]), "InvalidParameterValue"),
    (lambda c: c.get_metric_statistics(Namespace="Lab", MetricName="X", Period=7,
                                       StartTime=minute(10), EndTime=minute(0),
                                       Statistics=["Sum"]), "InvalidParameterValue"),
    (lambda c: c.get_metric_statistics(Namespace="Lab", MetricName="X", Period=60,
                                       StartTime=minute(3000), EndTime=minute(0),
                                       Statistics=["Sum"]), "InvalidParameterCombination"),
    (lambda c: c.get_metric_data(StartTime=minute(10), EndTime=minute(0), MetricDataQueries=[
        {"Id": "e", "Expression": "SUM(("}]), "ValidationError"),
    (lambda c: c.set_alarm_state(AlarmName="none", StateValue="OK", StateReason="x"),
     "ResourceNotFound"),
    (lambda c: c.delete_alarms(AlarmNames=["none"]), "ResourceNotFound"),
    (lambda c: c.describe_alarms(NextToken="not-a-token"), "InvalidNextToken"),
])
def test_errors_have_aws_codes_on_every_protocol(cw, call, code):
    assert error_code(call, cw) == code


def test_missing_and_malformed_members(live):
    """What the model itself forbids is refused the same on every protocol."""
    for protocol in PROTOCOLS:
        client = wire_clients.client("cloudwatch", protocol, live.endpoints["cloudwatch"],
                                     live.key_id, live.secret, live.region,
                                     parameter_validation=False)
        code, status, _ = failure(client.put_metric_data, MetricData=[])
        assert (code, status) == ("MissingParameter", 400), protocol
        code, _, _ = failure(client.put_metric_data, Namespace="x" * 256,
                             MetricData=[{"MetricName": "M", "Value": 1.0}])
        assert code == "ValidationError", protocol


def test_accounts_see_only_their_own(live):
    factory = account_root(live, "other-lab")
    other = factory("cloudwatch")
    other_account = factory("sts").get_caller_identity()["Account"]
    mine = live.client("cloudwatch")
    mine.put_metric_data(Namespace="Lab/Own", MetricData=[{"MetricName": "Mine",
                                                           "Value": 1.0}])
    mine.put_metric_alarm(AlarmName="mine", Namespace="Lab/Own", MetricName="Mine",
                          Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                          ComparisonOperator="GreaterThanThreshold")
    assert other.list_metrics(Namespace="Lab/Own")["Metrics"] == []
    assert other.describe_alarms()["MetricAlarms"] == []
    arn = mine.describe_alarms()["MetricAlarms"][0]["AlarmArn"]
    # another account's alarm: refused as AWS refuses a resource of another account
    assert error_code(other.list_tags_for_resource, ResourceARN=arn) == "AccessDenied"
    # a name of its own that is no alarm: not found
    own = arn.replace(arn.split(":")[4], other_account).replace(":alarm:mine", ":alarm:none")
    assert error_code(other.list_tags_for_resource, ResourceARN=own) == \
        "ResourceNotFoundException"


def test_users_need_cloudwatch_permissions(live):
    iam = live.client("iam")
    iam.create_user(UserName="watcher")
    key = iam.create_access_key(UserName="watcher")["AccessKey"]
    watcher = live.client("cloudwatch", key_id=key["AccessKeyId"],
                          secret=key["SecretAccessKey"])
    code, status, _ = failure(watcher.list_metrics)
    assert (code, status) == ("AccessDenied", 403)
    iam.put_user_policy(UserName="watcher", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["cloudwatch:List*", "cloudwatch:Get*"],
             "Resource": "*"},
            {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
             "Condition": {"StringEquals": {"cloudwatch:namespace": "Lab/Allowed"}}}]}))
    watcher.list_metrics()
    watcher.put_metric_data(Namespace="Lab/Allowed", MetricData=[{"MetricName": "M",
                                                                  "Value": 1.0}])
    assert error_code(watcher.put_metric_data, Namespace="Lab/Other",
                      MetricData=[{"MetricName": "M", "Value": 1.0}]) == "AccessDenied"
    assert error_code(watcher.put_metric_alarm, AlarmName="a", Namespace="Lab/Allowed",
                      MetricName="M", Statistic="Sum", Period=60, EvaluationPeriods=1,
                      Threshold=1.0, ComparisonOperator="GreaterThanThreshold") == \
        "AccessDenied"


def test_aws_cli(live, tmp_path):
    aws = str(Path(sys.executable).parent / "aws")
    env = live.env()
    env["AWS_ENDPOINT_URL_CLOUDWATCH"] = live.endpoints["cloudwatch"]

    def cli(*args):
        done = subprocess.run([aws, "cloudwatch", *args, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    cli("put-metric-data", "--namespace", "Lab/Cli", "--metric-name", "Hits",
        "--value", "3", "--unit", "Count")
    metrics = cli("list-metrics", "--namespace", "Lab/Cli")["Metrics"]
    assert metrics == [{"Namespace": "Lab/Cli", "MetricName": "Hits", "Dimensions": []}]
    now = dt.datetime.now(UTC)
    stats = cli("get-metric-statistics", "--namespace", "Lab/Cli", "--metric-name", "Hits",
                "--start-time", (now - dt.timedelta(minutes=5)).isoformat(),
                "--end-time", (now + dt.timedelta(minutes=1)).isoformat(),
                "--period", "60", "--statistics", "Sum")
    assert [p["Sum"] for p in stats["Datapoints"]] == [3.0]
    cli("put-metric-alarm", "--alarm-name", "cli", "--namespace", "Lab/Cli",
        "--metric-name", "Hits", "--statistic", "Sum", "--period", "60",
        "--evaluation-periods", "1", "--threshold", "5",
        "--comparison-operator", "GreaterThanThreshold")
    assert [a["AlarmName"] for a in cli("describe-alarms")["MetricAlarms"]] == ["cli"]


def test_alarm_quota_over_the_wire(tmp_path):
    from liveutil import start_live
    live, server = start_live(tmp_path / "data", max_alarms=2)
    try:
        cw = live.client("cloudwatch")
        for name in ("a", "b"):
            cw.put_metric_alarm(AlarmName=name, Namespace="Lab", MetricName="M",
                                Statistic="Sum", Period=60, EvaluationPeriods=1,
                                Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
        code, status, _ = failure(cw.put_metric_alarm, AlarmName="c", Namespace="Lab",
                                  MetricName="M", Statistic="Sum", Period=60,
                                  EvaluationPeriods=1, Threshold=1.0,
                                  ComparisonOperator="GreaterThanThreshold")
        assert (code, status) == ("LimitExceeded", 400)
    finally:
        server.shutdown()
