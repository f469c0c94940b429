"""CloudWatch alarms through the service object: definitions and their errors, describing
and paging, evaluation against published data (thresholds, M of N, missing data), state
changes with their history, actions run (and failures recorded), tags. The EC2 actions on
running instances are tests/test_cloudwatch_actions.py's."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from eucalite import accounts
from eucalite.cloudwatch.service import CloudWatchService
from eucalite.errors import AwsError

UTC = dt.timezone.utc


@pytest.fixture
def cw(app):
    with app.app_context():
        who = accounts.principal_of(accounts.create_account("alarms").users[0])
        service = CloudWatchService({"region": "eucalyptus", "max_alarms": 20})
        yield service, who


def boundary() -> int:
    """A moment just after the current minute began (epoch seconds)."""
    now = int(time.time())
    return now - now % 60 + 1


def publish(service, who, name, values_by_minutes_ago, now, dimensions=None):
    data = []
    for minutes_ago, value in values_by_minutes_ago.items():
        stamp = dt.datetime.fromtimestamp(now - now % 60 - 60 * minutes_ago + 5, UTC)
        datum = {"MetricName": name, "Value": value, "Timestamp": stamp}
        if dimensions:
            datum["Dimensions"] = dimensions
        data.append(datum)
    service.put_metric_data(who, {"Namespace": "App", "MetricData": data})


def alarm(name="high", **extra):
    request = {"AlarmName": name, "Namespace": "App", "MetricName": "CPU",
               "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1,
               "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold"}
    request.update(extra)
    return request


def described(service, who, name):
    (found,) = service.describe_alarms(who, {"AlarmNames": [name]})["MetricAlarms"]
    return found


def test_put_and_describe_keep_the_definition(cw):
    service, who = cw
    service.put_metric_alarm(who, alarm(AlarmDescription="too hot", Unit="Percent",
                                        Dimensions=[{"Name": "Host", "Value": "a"}],
                                        DatapointsToAlarm=1, TreatMissingData="breaching",
                                        AlarmActions=["arn:aws:sns:eucalyptus:"
                                                      f"{who.account_id}:ops"]))
    found = described(service, who, "high")
    assert found["AlarmArn"] == f"arn:aws:cloudwatch:eucalyptus:{who.account_id}:alarm:high"
    assert found["StateValue"] == "INSUFFICIENT_DATA"
    assert found["StateReason"] == "Unchecked: Initial alarm creation"
    assert found["AlarmDescription"] == "too hot" and found["Unit"] == "Percent"
    assert found["Dimensions"] == [{"Name": "Host", "Value": "a"}]
    assert found["ActionsEnabled"] is True and found["OKActions"] == []
    assert found["TreatMissingData"] == "breaching"
    # an update replaces the definition but keeps the state
    service.set_alarm_state(who, {"AlarmName": "high", "StateValue": "ALARM",
                                  "StateReason": "testing"})
    service.put_metric_alarm(who, alarm(Threshold=90.0))
    found = described(service, who, "high")
    assert found["Threshold"] == 90.0 and found["StateValue"] == "ALARM"
    assert "AlarmDescription" not in found
    items = service.describe_alarm_history(who, {"AlarmName": "high",
                                                 "HistoryItemType": "ConfigurationUpdate"})
    assert [item["HistorySummary"] for item in items["AlarmHistoryItems"]] == [
        'Alarm "high" updated', 'Alarm "high" created']


@pytest.mark.parametrize("change, code", [
    (dict(Statistic=None, ExtendedStatistic=None), "InvalidParameterCombination"),
    (dict(ExtendedStatistic="p90"), "InvalidParameterCombination"),
    (dict(Period=45), "ValidationError"),
    (dict(Period=3600, EvaluationPeriods=200), "ValidationError"),
    (dict(DatapointsToAlarm=3), "ValidationError"),
    (dict(TreatMissingData="sometimes"), "ValidationError"),
    (dict(Threshold=None), "ValidationError"),
    (dict(AlarmActions=["arn:aws:automate:eucalyptus:ec2:stop"]), "ValidationError"),
    (dict(AlarmActions=["not an arn"]), "ValidationError"),
    (dict(Metrics=[{"Id": "m", "Expression": "1"}]), "InvalidParameterCombination"),
    (dict(Statistic=None, Namespace=None, MetricName=None, Period=None,
          Metrics=[{"Id": "e", "Expression": "SUM(("}]), "ValidationError"),
    (dict(Statistic=None, Namespace=None, MetricName=None, Period=None,
          Metrics=[{"Id": "e", "Expression": "nope * 2"}]), "ValidationError"),
    (dict(Statistic=None, Namespace=None, MetricName=None, Period=None,
          Metrics=[{"Id": "m", "ReturnData": True, "MetricStat": {
              "Metric": {"Namespace": "App", "MetricName": "CPU"}, "Period": 45,
              "Stat": "Sum"}}]), "InvalidParameterValue"),
])
def test_bad_definitions_are_refused(cw, change, code):
    service, who = cw
    request = alarm(**{k: v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        request.pop(key, None)
    with pytest.raises(AwsError) as error:
        service.put_metric_alarm(who, request)
    assert error.value.code == code
    assert service.describe_alarms(who, {})["MetricAlarms"] == []


def test_alarm_quota(cw):
    service, who = cw
    for index in range(20):
        service.put_metric_alarm(who, alarm(f"a{index:02}"))
    with pytest.raises(AwsError) as error:
        service.put_metric_alarm(who, alarm("one-more"))
    assert error.value.code == "LimitExceeded"
    service.put_metric_alarm(who, alarm("a00", Threshold=1.0))     # updating still works


def test_describe_filters_and_pages(cw):
    service, who = cw
    for index in range(7):
        service.put_metric_alarm(who, alarm(f"web-{index}", AlarmActions=[
            f"arn:aws:sns:eucalyptus:{who.account_id}:t{index % 2}"]))
    service.put_metric_alarm(who, alarm("db-0"))
    service.set_alarm_state(who, {"AlarmName": "web-3", "StateValue": "OK",
                                  "StateReason": "fine"})
    names, token = [], None
    while True:
        page = service.describe_alarms(who, {"AlarmNamePrefix": "web-", "MaxRecords": 3,
                                             **({"NextToken": token} if token else {})})
        names += [a["AlarmName"] for a in page["MetricAlarms"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert names == [f"web-{index}" for index in range(7)]
    assert [a["AlarmName"] for a in service.describe_alarms(
        who, {"StateValue": "OK"})["MetricAlarms"]] == ["web-3"]
    odd = service.describe_alarms(who, {"ActionPrefix": f"arn:aws:sns:eucalyptus:"
                                                        f"{who.account_id}:t1"})
    assert [a["AlarmName"] for a in odd["MetricAlarms"]] == ["web-1", "web-3", "web-5"]
    assert service.describe_alarms(who, {"AlarmTypes": ["CompositeAlarm"]}) == {
        "MetricAlarms": [], "CompositeAlarms": []}
    for_metric = service.describe_alarms_for_metric(who, {"Namespace": "App",
                                                          "MetricName": "CPU"})
    assert len(for_metric["MetricAlarms"]) == 8
    with pytest.raises(AwsError) as error:
        service.describe_alarms(who, {"NextToken": "!!"})
    assert error.value.code == "InvalidNextToken"


def test_evaluation_follows_the_data(cw):
    service, who = cw
    now = boundary()
    service.put_metric_alarm(who, alarm(EvaluationPeriods=3, DatapointsToAlarm=2))
    publish(service, who, "CPU", {1: 95.0, 2: 10.0, 3: 85.0}, now)
    assert service.evaluate_alarms(now) == 1
    found = described(service, who, "high")
    assert found["StateValue"] == "ALARM"
    assert found["StateReason"].startswith("Threshold Crossed: 2 datapoints [")
    assert json.loads(found["StateReasonData"])["threshold"] == 80.0
    # a minute later, only one of the last three breaches: OK
    publish(service, who, "CPU", {0: 20.0}, now)
    assert service.evaluate_alarms(now + 60) == 1
    assert described(service, who, "high")["StateValue"] == "OK"
    # evaluating again without new data changes nothing
    assert service.evaluate_alarms(now + 60) == 0
    summaries = [item["HistorySummary"] for item in service.describe_alarm_history(
        who, {"AlarmName": "high", "HistoryItemType": "StateUpdate",
              "ScanBy": "TimestampAscending"})["AlarmHistoryItems"]]
    assert summaries == ["Alarm updated from INSUFFICIENT_DATA to ALARM",
                         "Alarm updated from ALARM to OK"]


@pytest.mark.parametrize("treat, state", [("missing", "INSUFFICIENT_DATA"),
                                          ("breaching", "ALARM"),
                                          ("notBreaching", "OK"),
                                          ("ignore", "INSUFFICIENT_DATA")])
def test_missing_data_treatment(cw, treat, state):
    service, who = cw
    service.put_metric_alarm(who, alarm(TreatMissingData=treat))
    service.set_alarm_state(who, {"AlarmName": "high", "StateValue": "INSUFFICIENT_DATA",
                                  "StateReason": "start"})
    service.evaluate_alarms(boundary())
    assert described(service, who, "high")["StateValue"] == state


def test_percentile_and_math_alarms(cw):
    service, who = cw
    now = boundary()
    percentile = alarm("p", ExtendedStatistic="p90")
    del percentile["Statistic"]
    service.put_metric_alarm(who, percentile)
    service.put_metric_alarm(who, {
        "AlarmName": "ratio", "EvaluationPeriods": 1, "Threshold": 0.5,
        "ComparisonOperator": "GreaterThanThreshold",
        "Metrics": [
            {"Id": "e", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Err"},
                                       "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "r", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Req"},
                                       "Period": 60, "Stat": "Sum"}, "ReturnData": False},
            {"Id": "ratio", "Expression": "e / r"}]})
    data = [{"MetricName": "CPU", "Values": [float(v) for v in range(100)],
             "Timestamp": dt.datetime.fromtimestamp(now - now % 60 - 55, UTC)},
            {"MetricName": "Err", "Value": 6.0,
             "Timestamp": dt.datetime.fromtimestamp(now - now % 60 - 55, UTC)},
            {"MetricName": "Req", "Value": 10.0,
             "Timestamp": dt.datetime.fromtimestamp(now - now % 60 - 55, UTC)}]
    service.put_metric_data(who, {"Namespace": "App", "MetricData": data})
    service.evaluate_alarms(now)
    assert described(service, who, "p")["StateValue"] == "ALARM"        # p90 of 0..99, 50
    assert described(service, who, "ratio")["StateValue"] == "ALARM"    # 6 / 10 > 0.5


def test_actions_run_on_transitions_and_failures_are_recorded(cw):
    service, who = cw
    ran = []
    service.actions.register("arn:aws:sns:", lambda account, action, transition:
                             ran.append((account, action, transition.new)))
    topic = f"arn:aws:sns:eucalyptus:{who.account_id}:ops"
    policy = (f"arn:aws:autoscaling:eucalyptus:{who.account_id}:scalingPolicy:x:"
              "autoScalingGroupName/g:policyName/p")
    service.put_metric_alarm(who, alarm(AlarmActions=[topic, policy], OKActions=[topic]))
    service.set_alarm_state(who, {"AlarmName": "high", "StateValue": "ALARM",
                                  "StateReason": "manual", "StateReasonData": "{}"})
    assert ran == [(who.account_id, topic, "ALARM")]
    actions = service.describe_alarm_history(who, {"HistoryItemType": "Action"})
    summaries = sorted(item["HistorySummary"] for item in actions["AlarmHistoryItems"])
    assert summaries[0].startswith(f"Failed to execute action {policy}")
    assert summaries[1] == f"Successfully executed action {topic}"
    # disabled actions do not run
    service.enable_alarm_actions(who, ["high"], False)
    service.set_alarm_state(who, {"AlarmName": "high", "StateValue": "OK",
                                  "StateReason": "manual"})
    assert len(ran) == 1
    assert described(service, who, "high")["ActionsEnabled"] is False


def test_set_state_and_delete_errors(cw):
    service, who = cw
    service.put_metric_alarm(who, alarm())
    with pytest.raises(AwsError) as error:
        service.set_alarm_state(who, {"AlarmName": "high", "StateValue": "OK",
                                      "StateReason": "x", "StateReasonData": "{not json"})
    assert error.value.code == "InvalidFormat"
    with pytest.raises(AwsError) as error:
        service.set_alarm_state(who, {"AlarmName": "nope", "StateValue": "OK",
                                      "StateReason": "x"})
    assert error.value.code == "ResourceNotFound"
    with pytest.raises(AwsError) as error:
        service.delete_alarms(who, ["high", "nope"])
    assert error.value.code == "ResourceNotFound"
    assert described(service, who, "high")         # all or nothing
    service.delete_alarms(who, ["high"])
    assert service.describe_alarms(who, {})["MetricAlarms"] == []


def test_tags(cw):
    service, who = cw
    service.put_metric_alarm(who, alarm(Tags=[{"Key": "team", "Value": "web"}]))
    arn = described(service, who, "high")["AlarmArn"]
    service.tag_resource(who, arn, [{"Key": "env", "Value": "lab"}])
    assert service.list_tags(who, arn) == [{"Key": "env", "Value": "lab"},
                                           {"Key": "team", "Value": "web"}]
    service.untag_resource(who, arn, ["team"])
    assert service.list_tags(who, arn) == [{"Key": "env", "Value": "lab"}]
    with pytest.raises(AwsError) as error:
        service.list_tags(who, arn.replace(":high", ":other"))
    assert error.value.code == "ResourceNotFoundException"


def test_set_state_refuses_an_unknown_state(cw):
    service, who = cw
    service.put_metric_alarm(who, alarm())
    with pytest.raises(AwsError) as error:
        service.set_alarm_state(who, {"AlarmName": "high", "StateValue": "MAYBE",
                                      "StateReason": "x"})
    assert error.value.code == "InvalidParameterValue"
    assert described(service, who, "high")["StateValue"] == "INSUFFICIENT_DATA"


def test_name_prefix_is_literal(cw):
    service, who = cw
    for name in ("a_b", "axb", "a%c"):
        service.put_metric_alarm(who, alarm(name))
    found = service.describe_alarms(who, {"AlarmNamePrefix": "a_"})["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == ["a_b"]
    found = service.describe_alarms(who, {"AlarmNamePrefix": "a%"})["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == ["a%c"]
