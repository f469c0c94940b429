"""Auto Scaling with cloud-bursting, against a fake remote (tests/burstutil.py): a group in
a full local zone overflows to a when-full burst target; a group listing a burst zone
launches there; terminating the group's instances leaves nothing running remotely."""
from __future__ import annotations

import pytest
from burstutil import FakeRemote, add_target, settle, use_fake
from ec2util import make_image

from eucalite.db import db


@pytest.fixture
def burst(live, monkeypatch):
    """A cloud with no local capacity (no node) and a when-full target on a fake remote."""
    make_image(live)
    fake = FakeRemote()
    use_fake(live, monkeypatch, fake)
    add_target(live)
    autoscaling = live.client("autoscaling")
    autoscaling.create_launch_configuration(LaunchConfigurationName="lc",
                                            ImageId="emi-0a1b2c3d", InstanceType="m1.small")
    return live, fake, autoscaling


def run_pass(live) -> int:
    with live.app.app_context():
        acted = live.app.extensions["eucalite"].autoscaling.run_pass()
        db.session.remove()
    return acted


def members(autoscaling, name) -> list[dict]:
    [group] = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return group["Instances"]


def test_a_group_in_a_full_zone_overflows_to_a_when_full_target(burst):
    live, fake, autoscaling = burst
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", LaunchConfigurationName="lc", MinSize=2, MaxSize=2,
        AvailabilityZones=["eucalyptus-1a"])
    assert run_pass(live) == 2
    settle(live)
    run_pass(live)
    instances = members(autoscaling, "web")
    assert [item["LifecycleState"] for item in instances] == ["InService"] * 2
    assert {item["AvailabilityZone"] for item in instances} == {"burst-far"}
    remote = {record["tags"]["eucalite:instance-id"]: record
              for record in fake.instances.values()}
    assert set(remote) == {item["InstanceId"] for item in instances}
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    run_pass(live)
    settle(live)
    settle(live)
    run_pass(live)
    assert autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["web"])["AutoScalingGroups"] == []
    assert fake.running() == []


def test_a_group_listing_a_burst_zone_launches_there(burst):
    live, fake, autoscaling = burst
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="far", LaunchConfigurationName="lc", MinSize=1, MaxSize=1,
        AvailabilityZones=["burst-far"])
    assert run_pass(live) == 1
    settle(live)
    [item] = members(autoscaling, "far")
    assert item["AvailabilityZone"] == "burst-far"
    assert len(fake.running()) == 1
