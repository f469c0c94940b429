"""Auto Scaling policies and scheduled actions with boto3 against a live cloud on the fake
hypervisor: simple, step and target-tracking policies run by CloudWatch alarms (metric
data published by the test, alarms evaluated by the test at chosen moments) and by
ExecutePolicy; cooldowns; target tracking's own alarms made and removed; scheduled
actions once and on a cron recurrence; the policy errors AWS answers."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from awsutil import error_code
from botocore.exceptions import ClientError
from test_autoscaling_groups import asg, group, make_group, run_pass  # noqa: F401

import boto3
from botocore.config import Config

from eucalite import accounts
from eucalite.cloudwatch.datums import single
from eucalite.db import db

UTC = dt.timezone.utc


@pytest.fixture
def cw(asg):  # noqa: F811
    return boto3.client("cloudwatch", endpoint_url=asg.endpoints["cloudwatch"],
                        region_name=asg.region, aws_access_key_id=asg.key_id,
                        aws_secret_access_key=asg.secret,
                        config=Config(retries={"max_attempts": 1}))


def evaluate(live, now: int) -> None:
    with live.app.app_context():
        live.services.cloudwatch.evaluate_alarms(now)
        db.session.remove()


def minute_start() -> int:
    now = int(time.time())
    return now - now % 60


def publish_cpu(live, value: float, end: int, minutes: int = 3) -> int:
    """CPUUtilization of group "web" for the *minutes* whole minutes before *end*, recorded
    as the collector records what it measures (AWS/ namespaces are closed to
    PutMetricData); returns the moment alarms are evaluated at to see them complete."""
    with live.app.app_context():
        account_id = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        live.services.cloudwatch.publish(account_id, "AWS/EC2", [
            single("CPUUtilization", [["AutoScalingGroupName", "web"]],
                   end - 60 * (back + 1) + 5, "Percent", value, 60)
            for back in range(minutes)])
        db.session.remove()
    return end + 1


def cpu_alarm(cw, name, policy_arn, comparison, threshold):
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/EC2", MetricName="CPUUtilization",
                        Dimensions=[{"Name": "AutoScalingGroupName", "Value": "web"}],
                        Statistic="Average", Period=60, EvaluationPeriods=1,
                        Threshold=threshold, ComparisonOperator=comparison,
                        AlarmActions=[policy_arn])


def test_simple_policies_scale_out_and_in_from_alarms(asg, cw):  # noqa: F811
    make_group(asg, DesiredCapacity=1, DefaultCooldown=0)
    run_pass(asg)
    out = asg.autoscaling.put_scaling_policy(
        AutoScalingGroupName="web", PolicyName="out", AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=2, Cooldown=0)["PolicyARN"]
    back = asg.autoscaling.put_scaling_policy(
        AutoScalingGroupName="web", PolicyName="in", AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=-1, Cooldown=0)["PolicyARN"]
    assert out.startswith("arn:aws:autoscaling:") and ":scalingPolicy:" in out
    cpu_alarm(cw, "high", out, "GreaterThanThreshold", 70)
    cpu_alarm(cw, "low", back, "LessThanThreshold", 20)
    base = minute_start()
    evaluate(asg, publish_cpu(asg, 95, base))
    assert group(asg)["DesiredCapacity"] == 3
    assert run_pass(asg) == 2
    activities = asg.autoscaling.describe_scaling_activities(
        AutoScalingGroupName="web")["Activities"]
    assert "a monitor alarm high in state ALARM triggered policy out changing the desired " \
           "capacity from 1 to 3" in activities[0]["Cause"]
    history = cw.describe_alarm_history(AlarmName="high", HistoryItemType="Action")
    assert history["AlarmHistoryItems"][0]["HistorySummary"] == \
        f"Successfully executed action {out}"
    cw.delete_alarms(AlarmNames=["high"])
    evaluate(asg, publish_cpu(asg, 5, base + 300))
    assert group(asg)["DesiredCapacity"] == 2
    # the alarm stays in ALARM: AWS runs the policy again at each evaluation
    evaluate(asg, publish_cpu(asg, 5, base + 360))
    assert group(asg)["DesiredCapacity"] == 1
    evaluate(asg, publish_cpu(asg, 5, base + 420))
    assert group(asg)["DesiredCapacity"] == 1        # MinSize holds it


def test_simple_policy_cooldown_and_execute_policy(asg):  # noqa: F811
    make_group(asg, DesiredCapacity=1)
    asg.autoscaling.put_scaling_policy(AutoScalingGroupName="web", PolicyName="pct",
                                       AdjustmentType="PercentChangeInCapacity",
                                       ScalingAdjustment=50, Cooldown=600)
    asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="pct")
    assert group(asg)["DesiredCapacity"] == 2          # 50% of 1 rounds up to 1
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="pct",
                                       HonorCooldown=True)
    assert error_code(caught) == "ScalingActivityInProgress"
    asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="pct")
    assert group(asg)["DesiredCapacity"] == 3
    policies = asg.autoscaling.describe_policies(AutoScalingGroupName="web")["ScalingPolicies"]
    assert policies[0]["PolicyName"] == "pct" and policies[0]["ScalingAdjustment"] == 50
    assert policies[0]["PolicyType"] == "SimpleScaling" and policies[0]["Cooldown"] == 600


def test_step_policy_picks_its_step(asg):  # noqa: F811
    make_group(asg, DesiredCapacity=1, MaxSize=10)
    asg.autoscaling.put_scaling_policy(
        AutoScalingGroupName="web", PolicyName="steps", PolicyType="StepScaling",
        AdjustmentType="ChangeInCapacity", StepAdjustments=[
            {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10,
             "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 10, "ScalingAdjustment": 3}])
    asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="steps",
                                   MetricValue=75, BreachThreshold=70)
    assert group(asg)["DesiredCapacity"] == 2
    asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="steps",
                                   MetricValue=95, BreachThreshold=70)
    assert group(asg)["DesiredCapacity"] == 5
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="steps")
    assert error_code(caught) == "ValidationError"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.put_scaling_policy(
            AutoScalingGroupName="web", PolicyName="gap", PolicyType="StepScaling",
            AdjustmentType="ChangeInCapacity", StepAdjustments=[
                {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10,
                 "ScalingAdjustment": 1},
                {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 3}])
    assert error_code(caught) == "ValidationError"


def test_target_tracking_makes_its_alarms_and_scales(asg, cw):  # noqa: F811
    make_group(asg, DesiredCapacity=2, MaxSize=10)
    answer = asg.autoscaling.put_scaling_policy(
        AutoScalingGroupName="web", PolicyName="cpu50", PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={"TargetValue": 50.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ASGAverageCPUUtilization"}})
    names = [alarm["AlarmName"] for alarm in answer["Alarms"]]
    assert len(names) == 2 and names[0].startswith("TargetTracking-web-AlarmHigh-")
    alarms = {alarm["AlarmName"]: alarm for alarm in cw.describe_alarms(
        AlarmNames=names)["MetricAlarms"]}
    high = alarms[names[0]]
    assert high["MetricName"] == "CPUUtilization" and high["Threshold"] == 50.0
    assert high["EvaluationPeriods"] == 3 and high["AlarmActions"] == [answer["PolicyARN"]]
    assert alarms[names[1]]["Threshold"] == 45.0
    evaluate(asg, publish_cpu(asg, 100, minute_start()))
    assert group(asg)["DesiredCapacity"] == 4          # ceil(2 * 100 / 50)
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="cpu50")
    assert error_code(caught) == "ValidationError"
    asg.autoscaling.delete_policy(AutoScalingGroupName="web", PolicyName="cpu50")
    assert cw.describe_alarms(AlarmNames=names)["MetricAlarms"] == []


def test_policy_errors(asg):  # noqa: F811
    make_group(asg)
    for bad in ({"PolicyName": "p"},                                     # no AdjustmentType
                {"PolicyName": "p", "AdjustmentType": "ChangeInCapacity"},
                {"PolicyName": "p", "PolicyType": "TargetTrackingScaling"},
                {"PolicyName": "p", "PolicyType": "TargetTrackingScaling",
                 "TargetTrackingConfiguration": {"TargetValue": 5, "PredefinedMetricSpecification": {
                     "PredefinedMetricType": "ALBRequestCountPerTarget",
                     "ResourceLabel": "x"}}}):
        with pytest.raises(ClientError) as caught:
            asg.autoscaling.put_scaling_policy(AutoScalingGroupName="web", **bad)
        assert error_code(caught) == "ValidationError", bad
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.execute_policy(AutoScalingGroupName="web", PolicyName="none")
    assert error_code(caught) == "ValidationError"


def test_scheduled_actions_once_and_recurring(asg):  # noqa: F811
    make_group(asg, DesiredCapacity=1)
    soon = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(minutes=5)
    asg.autoscaling.put_scheduled_update_group_action(
        AutoScalingGroupName="web", ScheduledActionName="morning", StartTime=soon,
        DesiredCapacity=4)
    asg.autoscaling.put_scheduled_update_group_action(
        AutoScalingGroupName="web", ScheduledActionName="nightly", Recurrence="0 22 * * *",
        MinSize=0, MaxSize=2, DesiredCapacity=0, TimeZone="Europe/Paris")
    listed = {item["ScheduledActionName"]: item for item in
              asg.autoscaling.describe_scheduled_actions(
                  AutoScalingGroupName="web")["ScheduledUpdateGroupActions"]}
    assert listed["morning"]["StartTime"] == soon
    nightly = listed["nightly"]["StartTime"].astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert (nightly.hour, nightly.minute) == (22, 0)       # Paris is UTC+1 in winter
    assert listed["nightly"]["Recurrence"] == "0 22 * * *"
    with asg.app.app_context():
        asg.services.autoscaling.run_pass(now=soon.replace(tzinfo=None) +
                                          dt.timedelta(seconds=1))
        db.session.remove()
    assert group(asg)["DesiredCapacity"] == 4
    names = [item["ScheduledActionName"] for item in asg.autoscaling.describe_scheduled_actions(
        AutoScalingGroupName="web")["ScheduledUpdateGroupActions"]]
    assert names == ["nightly"]                        # a one-off action is gone once run
    with asg.app.app_context():
        asg.services.autoscaling.run_pass(now=nightly.astimezone(UTC).replace(tzinfo=None))
        db.session.remove()
    described = group(asg)
    assert (described["MinSize"], described["MaxSize"], described["DesiredCapacity"]) == \
        (0, 2, 0)
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.put_scheduled_update_group_action(
            AutoScalingGroupName="web", ScheduledActionName="bad", Recurrence="61 * * * *",
            DesiredCapacity=1)
    assert error_code(caught) == "ValidationError"
    failed = asg.autoscaling.batch_delete_scheduled_action(
        AutoScalingGroupName="web", ScheduledActionNames=["nightly", "ghost"])
    assert [item["ScheduledActionName"] for item in
            failed["FailedScheduledActions"]] == ["ghost"]
