"""Auto Scaling on a real libvirtd + QEMU: a group of 3 real guests replaces one terminated
behind its back; a group whose guests busy-loop after boot is scaled out by an alarm on its
real CPUUtilization (measured by the collector) and back in once they are idle.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt (tests/guestutil.py). The test
drives the collector, the alarm evaluations and the keeper's passes itself and polls with
deadlines; it never sleeps a fixed time."""
from __future__ import annotations

import os
import time

import pytest
from guestutil import BOOT_TIMEOUT, build_guest, busy_loop, guest_console, live_cloud, \
    requires_real_libvirt, terminate
from serverutil import wait_until

from eucalite.cloudwatch.collector import Collector
from eucalite.db import db

pytestmark = requires_real_libvirt

#: Seconds between the test's passes (collector, alarms, keeper).
INTERVAL = 3
BUSY_SECONDS = 45
#: user data of the scaled group: busy for BUSY_SECONDS shortly after boot, then idle
BUSY = "#!/bin/sh\nsleep 2\n" + busy_loop(BUSY_SECONDS)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the instance bridge and the metadata address need root")
    yield from live_cloud("local", build_guest(tmp_path_factory), "eucalite-astest",
                          "euasbr0", "10.212.0.0/24")


def members(asg, name: str, state: str = "InService") -> list[str]:
    [group] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"]
    return sorted(item["InstanceId"] for item in group["Instances"]
                  if item["LifecycleState"] == state)


def make_pass(node, collector=None):
    services = node.app.extensions["eucalite"]

    def one_pass() -> None:
        with node.app.app_context():
            if collector is not None:
                collector.collect()
                services.cloudwatch.evaluate_alarms()
            services.autoscaling.run_pass()
            db.session.remove()
    return one_pass


def test_a_group_of_three_replaces_an_instance_terminated_behind_its_back(node):
    ec2, asg = node.client("ec2"), node.client("autoscaling")
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    asg.create_launch_configuration(LaunchConfigurationName="three", ImageId=node.image_id,
                                    InstanceType="m1.small",
                                    InstanceMonitoring={"Enabled": False})
    asg.create_auto_scaling_group(AutoScalingGroupName="three",
                                  LaunchConfigurationName="three", MinSize=3, MaxSize=3,
                                  AvailabilityZones=[zone])
    one_pass = make_pass(node)
    launched: list[str] = []
    try:
        def in_service(count):
            one_pass()
            found = members(asg, "three")
            launched.extend(set(members(asg, "three", "Pending")) - set(launched))
            return found if len(found) == count else None
        first = wait_until(lambda: in_service(3), "3 instances in service", BOOT_TIMEOUT,
                           interval=1)
        ec2.terminate_instances(InstanceIds=[first[0]])
        replaced = wait_until(lambda: (lambda found: found if found and first[0] not in found
                                       else None)(in_service(3)),
                              "a replacement in service", BOOT_TIMEOUT + 60, interval=1)
        assert len(set(replaced) - set(first)) == 1
        state = ec2.describe_instances(InstanceIds=[first[0]])["Reservations"][0][
            "Instances"][0]["State"]["Name"]
        assert state in ("shutting-down", "terminated")
        causes = [activity["Cause"] for activity in asg.describe_scaling_activities(
            AutoScalingGroupName="three")["Activities"]]
        assert any("terminated or stopped" in cause for cause in causes)
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="three", ForceDelete=True)
        wait_until(lambda: one_pass() or not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["three"])["AutoScalingGroups"], "the group deleted",
                   120, interval=1)
        terminate(ec2, launched)


def test_a_cpu_alarm_scales_the_group_out_and_back_in(node):
    ec2, asg, cw = node.client("ec2"), node.client("autoscaling"), node.client("cloudwatch")
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    services = node.app.extensions["eucalite"]
    collector = Collector(services, {"metrics_interval": 60,
                                     "detailed_metrics_interval": INTERVAL})
    asg.create_launch_configuration(LaunchConfigurationName="busy", ImageId=node.image_id,
                                    InstanceType="m1.small", UserData=BUSY)
    asg.create_auto_scaling_group(AutoScalingGroupName="busy", LaunchConfigurationName="busy",
                                  MinSize=1, MaxSize=2, AvailabilityZones=[zone])
    out = asg.put_scaling_policy(AutoScalingGroupName="busy", PolicyName="out",
                                 AdjustmentType="ChangeInCapacity", ScalingAdjustment=1,
                                 Cooldown=600)["PolicyARN"]
    back = asg.put_scaling_policy(AutoScalingGroupName="busy", PolicyName="in",
                                  AdjustmentType="ChangeInCapacity", ScalingAdjustment=-1,
                                  Cooldown=0)["PolicyARN"]
    dimensions = [{"Name": "AutoScalingGroupName", "Value": "busy"}]
    cw.put_metric_alarm(AlarmName="busy-high", Namespace="AWS/EC2",
                        MetricName="CPUUtilization", Dimensions=dimensions,
                        Statistic="Maximum", Period=10, EvaluationPeriods=1, Threshold=40.0,
                        ComparisonOperator="GreaterThanThreshold", AlarmActions=[out])
    cw.put_metric_alarm(AlarmName="busy-low", Namespace="AWS/EC2",
                        MetricName="CPUUtilization", Dimensions=dimensions,
                        Statistic="Maximum", Period=10, EvaluationPeriods=3, Threshold=10.0,
                        ComparisonOperator="LessThanThreshold", TreatMissingData="ignore",
                        AlarmActions=[back])
    one_pass = make_pass(node, collector)
    seen: set[str] = set()

    def desired() -> int:
        one_pass()
        [group] = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["busy"])[
            "AutoScalingGroups"]
        seen.update(item["InstanceId"] for item in group["Instances"])
        return group["DesiredCapacity"]

    def in_service(count: int) -> bool:
        desired()
        return len(members(asg, "busy")) == count
    try:
        wait_until(lambda: desired() == 2, "the busy guest's alarm to scale out",
                   BOOT_TIMEOUT + BUSY_SECONDS, interval=INTERVAL, show=lambda: "\n".join(
                       f"{alarm['AlarmName']}: {alarm['StateValue']} {alarm['StateReason']}"
                       for alarm in cw.describe_alarms()["MetricAlarms"]) + "\n" + "\n".join(
                       guest_console(ec2, instance_id)[-600:] for instance_id in seen) +
                   "\n" + str(cw.get_metric_statistics(
                       Namespace="AWS/EC2", MetricName="CPUUtilization",
                       Dimensions=dimensions, StartTime=time.time() - 300,
                       EndTime=time.time(), Period=1, Statistics=["Maximum"])["Datapoints"]))
        wait_until(lambda: in_service(2), "the second instance in service", BOOT_TIMEOUT,
                   interval=INTERVAL)
        wait_until(lambda: desired() == 1, "the idle group's alarm to scale in",
                   BOOT_TIMEOUT + 2 * BUSY_SECONDS + 60, interval=INTERVAL)
        wait_until(lambda: in_service(1), "the group back to one instance", 120,
                   interval=INTERVAL)
        causes = [activity["Cause"] for activity in asg.describe_scaling_activities(
            AutoScalingGroupName="busy")["Activities"]]
        assert any("a monitor alarm busy-high in state ALARM triggered policy out" in cause
                   for cause in causes)
        assert any("a monitor alarm busy-low in state ALARM triggered policy in" in cause
                   for cause in causes)
        assert len(seen) == 2
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName="busy", ForceDelete=True)
        wait_until(lambda: one_pass() or not asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=["busy"])["AutoScalingGroups"], "the group deleted",
                   120, interval=1)
        terminate(ec2, sorted(seen))
