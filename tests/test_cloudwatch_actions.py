"""Alarm actions on real instances of a live cloud (fake hypervisor): the instance burns CPU
(its counters grow), the collector publishes CPUUtilization, an alarm on it above 80 %
goes to ALARM and its action stops (EBS-backed) or terminates the instance; the history
records the action. Clock values are explicit, so nothing sleeps."""
from __future__ import annotations

import time

import pytest
from ebsutil import new_volume, settle, wait_snapshot, write_pattern
from ec2util import make_image, wait_for_state

from eucalite.cloudwatch.collector import Collector

#: A minute boundary in the recent past: the passes' clock starts there.
T0 = int(time.time()) // 60 * 60 - 600


@pytest.fixture
def live(ebs):
    """conftest's live cloud with node duty on the fake hypervisor and file volumes."""
    return ebs


def ebs_backed_instance(live, ec2) -> str:
    source = new_volume(live, ec2, size=1)
    write_pattern(live, source, 0, b"root " * 100)
    snap = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    image_id = ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    settle(live)
    wait_for_state(ec2, [instance_id], "running")
    return instance_id


def burn(live, collector, instance_id, fraction, start, minutes):
    """The instance uses *fraction* of its vCPU for *minutes* from *start*, sampled each
    minute by the collector."""
    driver = live.services.cluster.driver
    for minute in range(minutes + 1):
        with live.app.app_context():
            collector.collect(now=start + 60 * minute)
        driver.add_usage(instance_id, cpu_seconds=60 * fraction)


def cpu_alarm(cw, name, instance_id, action):
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/EC2", MetricName="CPUUtilization",
                        Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
                        Statistic="Average", Period=60, EvaluationPeriods=2,
                        Threshold=80.0, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[f"arn:aws:automate:{cw.meta.region_name}:ec2:{action}"])


def evaluate(live, at) -> int:
    with live.app.app_context():
        return live.services.cloudwatch.evaluate_alarms(at)


def test_cpu_alarm_stops_an_ebs_backed_instance(live):
    ec2, cw = live.client("ec2"), live.client("cloudwatch")
    instance_id = ebs_backed_instance(live, ec2)
    collector = Collector(live.services, {"metrics_interval": 60,
                                          "detailed_metrics_interval": 10})
    cpu_alarm(cw, "busy", instance_id, "stop")
    burn(live, collector, instance_id, 0.1, T0, 2)            # idle: 10 %
    assert evaluate(live, T0 + 3 * 60 + 1) == 1
    assert cw.describe_alarms(AlarmNames=["busy"])["MetricAlarms"][0]["StateValue"] == "OK"
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "running"
    burn(live, collector, instance_id, 0.95, T0 + 3 * 60, 3)   # busy: 95 %
    assert evaluate(live, T0 + 6 * 60 + 1) == 1
    (alarm,) = cw.describe_alarms(AlarmNames=["busy"])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert "[95.0" in alarm["StateReason"]
    settle(live)
    wait_for_state(ec2, [instance_id], "stopped")
    (action,) = cw.describe_alarm_history(AlarmName="busy",
                                          HistoryItemType="Action")["AlarmHistoryItems"]
    assert action["HistorySummary"].startswith("Successfully executed action "
                                               "arn:aws:automate:")


def test_terminate_action_and_a_failing_stop(live):
    ec2, cw = live.client("ec2"), live.client("cloudwatch")
    make_image(live)
    instance_id = ec2.run_instances(ImageId="emi-0a1b2c3d", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
    wait_for_state(ec2, [instance_id], "running")
    collector = Collector(live.services, {"metrics_interval": 60,
                                          "detailed_metrics_interval": 10})
    cpu_alarm(cw, "stop-it", instance_id, "stop")            # instance-store: cannot stop
    cpu_alarm(cw, "end-it", instance_id, "terminate")
    burn(live, collector, instance_id, 0.9, T0, 3)
    assert evaluate(live, T0 + 3 * 60 + 1) == 2
    settle(live)
    wait_for_state(ec2, [instance_id], "terminated")
    failed = cw.describe_alarm_history(AlarmName="stop-it",
                                       HistoryItemType="Action")["AlarmHistoryItems"]
    assert failed[0]["HistorySummary"].startswith("Failed to execute action")
    assert "does not have an 'ebs' root device type" in failed[0]["HistorySummary"]
