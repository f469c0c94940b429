"""Auto Scaling groups with boto3 and the aws CLI against a live cloud on the fake
hypervisor: launch configurations, groups that launch to their desired capacity, keep it
when an instance dies behind their back, scale in by their termination policies, attach,
detach, standby, protection, suspended processes, tags, activities with their causes, and
the errors AWS answers for bad input. Passes of the keeper are run by the test
(``run_pass``) rather than waited for."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from awsutil import error_code
from botocore.config import Config
from botocore.exceptions import ClientError
from ec2util import make_image, wait_for_state

from eucalite.db import db

IMAGE = "emi-0a5c0a1e"


@pytest.fixture
def asg(roomy):
    live = roomy
    make_image(live, IMAGE)
    settings = dict(region_name=live.region, aws_access_key_id=live.key_id,
                    aws_secret_access_key=live.secret,
                    config=Config(retries={"max_attempts": 1}))
    live.autoscaling = boto3.client("autoscaling", endpoint_url=live.endpoints["autoscaling"],
                                    **settings)
    live.ec2 = boto3.client("ec2", endpoint_url=live.endpoints["ec2"], **settings)
    live.zone = live.ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    return live


def run_pass(live) -> int:
    with live.app.app_context():
        acted = live.services.autoscaling.run_pass()
        db.session.remove()
    return acted


def group(live, name="web") -> dict:
    return live.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def make_group(live, name="web", **extra) -> None:
    live.autoscaling.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId=IMAGE, InstanceType="m1.small",
        UserData="hello")
    settings = {"MinSize": 1, "MaxSize": 5, "DesiredCapacity": 3,
                "AvailabilityZones": [live.zone]}
    settings.update(extra)
    live.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, LaunchConfigurationName=f"{name}-lc", **settings)


def member_ids(live, name="web", states=("Pending", "InService")) -> list[str]:
    return sorted(item["InstanceId"] for item in group(live, name)["Instances"]
                  if item["LifecycleState"] in states)


def test_group_launches_to_desired_and_instances_carry_its_tag(asg):
    make_group(asg, Tags=[{"Key": "team", "Value": "lab", "PropagateAtLaunch": True},
                          {"Key": "cost", "Value": "x", "PropagateAtLaunch": False}])
    assert run_pass(asg) == 3
    ids = member_ids(asg)
    assert len(ids) == 3
    running = wait_for_state(asg.ec2, ids, "running")
    for item in running:
        tags = {tag["Key"]: tag["Value"] for tag in item["Tags"]}
        assert tags["aws:autoscaling:groupName"] == "web"
        assert tags["team"] == "lab" and "cost" not in tags
        assert item["InstanceType"] == "m1.small" and item["ImageId"] == IMAGE
    user_data = asg.ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]) == b"hello"
    run_pass(asg)
    described = group(asg)
    assert {item["LifecycleState"] for item in described["Instances"]} == {"InService"}
    assert described["DesiredCapacity"] == 3 and described["MinSize"] == 1
    activities = asg.autoscaling.describe_scaling_activities(
        AutoScalingGroupName="web")["Activities"]
    assert len(activities) == 3
    assert all(activity["StatusCode"] == "Successful" for activity in activities)
    assert activities[0]["Description"].startswith("Launching a new EC2 instance: i-")
    assert "a user request created an AutoScalingGroup changing the desired capacity from " \
           "0 to 3" in activities[0]["Cause"]
    assert "increasing the capacity from 0 to 3" in activities[0]["Cause"]
    details = asg.autoscaling.describe_auto_scaling_instances(InstanceIds=ids[:1])
    assert details["AutoScalingInstances"][0]["AutoScalingGroupName"] == "web"
    assert details["AutoScalingInstances"][0]["LaunchConfigurationName"] == "web-lc"


def test_instance_terminated_behind_the_groups_back_is_replaced(asg):
    make_group(asg)
    run_pass(asg)
    ids = member_ids(asg)
    wait_for_state(asg.ec2, ids, "running")
    run_pass(asg)
    asg.ec2.terminate_instances(InstanceIds=[ids[0]])
    wait_for_state(asg.ec2, [ids[0]], "terminated")
    run_pass(asg)          # unhealthy: terminated; a replacement launches
    run_pass(asg)
    now = member_ids(asg)
    assert ids[0] not in now and len(now) == 3
    causes = [activity["Cause"] for activity in asg.autoscaling.describe_scaling_activities(
        AutoScalingGroupName="web")["Activities"]]
    assert any("EC2 health check indicating it has been terminated or stopped" in cause
               for cause in causes)


def test_scale_in_follows_termination_policy_and_protection(asg):
    make_group(asg, TerminationPolicies=["NewestInstance"])
    run_pass(asg)
    ids = member_ids(asg)
    wait_for_state(asg.ec2, ids, "running")
    run_pass(asg)
    newest = ids  # launched together: the newest by launch time, ties to the lowest id
    asg.autoscaling.set_instance_protection(AutoScalingGroupName="web",
                                            InstanceIds=[newest[0]],
                                            ProtectedFromScaleIn=True)
    asg.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    run_pass(asg)
    terminating = member_ids(asg, states=("Terminating",))
    assert len(terminating) == 2 and newest[0] not in terminating
    run_pass(asg)
    wait_for_state(asg.ec2, terminating, "terminated")
    run_pass(asg)
    assert member_ids(asg, states=("InService",)) == [newest[0]]
    causes = [activity["Cause"] for activity in asg.autoscaling.describe_scaling_activities(
        AutoScalingGroupName="web")["Activities"]]
    assert any("a user request explicitly set group desired capacity changing the desired "
               "capacity from 3 to 1" in cause for cause in causes)


def test_bounds_and_errors(asg):
    make_group(asg)
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=9)
    assert error_code(caught) == "ValidationError"
    assert "above max value 5" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="web", LaunchConfigurationName="web-lc", MinSize=1,
            MaxSize=1, AvailabilityZones=[asg.zone])
    assert error_code(caught) == "AlreadyExists"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="bad", LaunchConfigurationName="web-lc", MinSize=3,
            MaxSize=1, AvailabilityZones=[asg.zone])
    assert error_code(caught) == "ValidationError"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="bad", LaunchConfigurationName="nope", MinSize=1,
            MaxSize=1, AvailabilityZones=[asg.zone])
    assert error_code(caught) == "ValidationError"
    assert "Launch configuration name not found" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="bad", LaunchConfigurationName="web-lc", MinSize=1,
            MaxSize=1, AvailabilityZones=["nowhere-1z"])
    assert error_code(caught) == "ValidationError"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.create_launch_configuration(
            LaunchConfigurationName="x", ImageId="emi-00000000", InstanceType="m1.small")
    assert error_code(caught) == "ValidationError"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.delete_launch_configuration(LaunchConfigurationName="web-lc")
    assert error_code(caught) == "ResourceInUse"
    run_pass(asg)
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web")
    assert error_code(caught) == "ResourceInUse"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="nope")
    assert error_code(caught) == "ValidationError"
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.describe_load_balancers(AutoScalingGroupName="web")
    assert error_code(caught) == "InvalidAction"


def test_force_delete_terminates_everything_then_the_group_goes(asg):
    make_group(asg)
    run_pass(asg)
    ids = member_ids(asg)
    asg.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    assert group(asg)["Status"] == "Delete in progress"
    run_pass(asg)
    wait_for_state(asg.ec2, ids, "terminated")
    run_pass(asg)
    assert asg.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["web"])["AutoScalingGroups"] == []
    asg.autoscaling.delete_launch_configuration(LaunchConfigurationName="web-lc")


def test_suspended_launch_then_resumed(asg):
    make_group(asg)
    asg.autoscaling.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=["Launch"])
    assert run_pass(asg) == 0
    suspended = group(asg)["SuspendedProcesses"]
    assert [item["ProcessName"] for item in suspended] == ["Launch"]
    asg.autoscaling.resume_processes(AutoScalingGroupName="web")
    assert run_pass(asg) == 3


def test_detach_attach_and_standby(asg):
    make_group(asg, DesiredCapacity=2)
    run_pass(asg)
    ids = member_ids(asg)
    wait_for_state(asg.ec2, ids, "running")
    run_pass(asg)
    answer = asg.autoscaling.detach_instances(AutoScalingGroupName="web", InstanceIds=ids[:1],
                                              ShouldDecrementDesiredCapacity=True)
    assert answer["Activities"][0]["Description"] == f"Detaching EC2 instance: {ids[0]}"
    assert group(asg)["DesiredCapacity"] == 1
    tags = asg.ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[0]]}])["Tags"]
    assert "aws:autoscaling:groupName" not in {tag["Key"] for tag in tags}
    asg.autoscaling.attach_instances(AutoScalingGroupName="web", InstanceIds=ids[:1])
    assert group(asg)["DesiredCapacity"] == 2 and member_ids(asg) == ids
    asg.autoscaling.enter_standby(AutoScalingGroupName="web", InstanceIds=ids[:1],
                                  ShouldDecrementDesiredCapacity=True)
    assert member_ids(asg, states=("Standby",)) == ids[:1]
    assert run_pass(asg) == 0          # standby does not count, desired went down with it
    asg.autoscaling.exit_standby(AutoScalingGroupName="web", InstanceIds=ids[:1])
    assert member_ids(asg, states=("InService",)) == ids


def test_update_bounds_moves_desired_and_tags_round_trip(asg):
    make_group(asg, DesiredCapacity=1)
    asg.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=2)
    assert group(asg)["DesiredCapacity"] == 2
    asg.autoscaling.create_or_update_tags(Tags=[{
        "ResourceId": "web", "ResourceType": "auto-scaling-group", "Key": "env",
        "Value": "test", "PropagateAtLaunch": True}])
    tags = asg.autoscaling.describe_tags(Filters=[{"Name": "auto-scaling-group",
                                                   "Values": ["web"]}])["Tags"]
    assert tags == [{"ResourceId": "web", "ResourceType": "auto-scaling-group",
                     "Key": "env", "Value": "test", "PropagateAtLaunch": True}]
    asg.autoscaling.delete_tags(Tags=[{"ResourceId": "web", "Key": "env",
                                       "ResourceType": "auto-scaling-group"}])
    assert asg.autoscaling.describe_tags()["Tags"] == []


def test_describe_paging(asg):
    asg.autoscaling.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId=IMAGE, InstanceType="m1.small")
    for index in range(5):
        asg.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=f"g{index}", LaunchConfigurationName="lc", MinSize=0,
            MaxSize=1, AvailabilityZones=[asg.zone])
    pages = asg.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        PaginationConfig={"PageSize": 2})
    names = [item["AutoScalingGroupName"] for page in pages
             for item in page["AutoScalingGroups"]]
    assert names == [f"g{index}" for index in range(5)]


def test_group_from_a_launch_template_follows_its_version(asg):
    template = asg.ec2.create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={
            "ImageId": IMAGE, "InstanceType": "m1.small",
            "TagSpecifications": [{"ResourceType": "instance",
                                   "Tags": [{"Key": "from", "Value": "template"}]}]}
    )["LaunchTemplate"]
    asg.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="lt", MinSize=1, MaxSize=2, AvailabilityZones=[asg.zone],
        LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"})
    described = group(asg, "lt")
    assert described["LaunchTemplate"] == {"LaunchTemplateId": template["LaunchTemplateId"],
                                           "LaunchTemplateName": "web-lt",
                                           "Version": "$Latest"}
    asg.ec2.create_launch_template_version(
        LaunchTemplateName="web-lt", SourceVersion="1",
        LaunchTemplateData={"InstanceType": "m1.medium"})
    run_pass(asg)
    [instance_id] = member_ids(asg, "lt")
    [item] = wait_for_state(asg.ec2, [instance_id], "running")
    assert item["InstanceType"] == "m1.medium"           # $Latest: version 2
    tags = {tag["Key"]: tag["Value"] for tag in item["Tags"]}
    assert tags["from"] == "template" and tags["aws:autoscaling:groupName"] == "lt"
    assert tags["aws:ec2launchtemplate:id"] == template["LaunchTemplateId"]
    assert group(asg, "lt")["Instances"][0]["LaunchTemplate"]["LaunchTemplateName"] == "web-lt"
    for spec in ({"LaunchTemplateName": "missing"},
                 {"LaunchTemplateName": "web-lt", "Version": "99"},
                 {"LaunchTemplateName": "web-lt", "Version": "\u00e9"}):
        with pytest.raises(ClientError) as caught:
            asg.autoscaling.create_auto_scaling_group(
                AutoScalingGroupName="none", MinSize=1, MaxSize=2,
                AvailabilityZones=[asg.zone], LaunchTemplate=spec)
        assert error_code(caught) == "ValidationError", spec


def test_a_user_needs_autoscaling_permissions_on_the_group(asg):
    make_group(asg)
    make_group(asg, name="other", DesiredCapacity=1)
    iam = asg.client("iam")
    iam.create_user(UserName="operator")
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    operator = asg.client("autoscaling", key_id=key["AccessKeyId"],
                          secret=key["SecretAccessKey"])
    with pytest.raises(ClientError) as caught:
        operator.describe_auto_scaling_groups()
    assert error_code(caught) == "AccessDenied"
    iam.put_user_policy(UserName="operator", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "autoscaling:Describe*", "Resource": "*"},
            {"Effect": "Allow", "Action": "autoscaling:SetDesiredCapacity",
             "Resource": "arn:aws:autoscaling:*:*:autoScalingGroup:*:"
                         "autoScalingGroupName/other"}]}))
    assert [item["AutoScalingGroupName"] for item in
            operator.describe_auto_scaling_groups()["AutoScalingGroups"]] == ["other", "web"]
    operator.set_desired_capacity(AutoScalingGroupName="other", DesiredCapacity=2)
    with pytest.raises(ClientError) as caught:
        operator.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=2)
    assert error_code(caught) == "AccessDenied"


def test_the_aws_cli_drives_a_group(asg):
    aws = str(Path(sys.executable).parent / "aws")
    env = asg.env()
    env["AWS_ENDPOINT_URL_AUTO_SCALING"] = asg.endpoints["autoscaling"]

    def cli(*args):
        done = subprocess.run([aws, "autoscaling", *args, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    cli("create-launch-configuration", "--launch-configuration-name", "cli-lc",
        "--image-id", IMAGE, "--instance-type", "m1.small", "--user-data", "from the cli")
    cli("create-auto-scaling-group", "--auto-scaling-group-name", "cli",
        "--launch-configuration-name", "cli-lc", "--min-size", "1", "--max-size", "3",
        "--desired-capacity", "2", "--availability-zones", asg.zone)
    run_pass(asg)
    groups = cli("describe-auto-scaling-groups", "--auto-scaling-group-names", "cli")
    assert len(groups["AutoScalingGroups"][0]["Instances"]) == 2
    cli("set-desired-capacity", "--auto-scaling-group-name", "cli", "--desired-capacity", "3")
    run_pass(asg)
    activities = cli("describe-scaling-activities", "--auto-scaling-group-name", "cli")
    assert len(activities["Activities"]) == 3
    configs = cli("describe-launch-configurations")
    assert base64.b64decode(configs["LaunchConfigurations"][0]["UserData"]) == b"from the cli"
    done = subprocess.run([aws, "autoscaling", "set-desired-capacity",
                           "--auto-scaling-group-name", "cli", "--desired-capacity", "9"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ValidationError" in done.stderr


@pytest.mark.parametrize("call,params", [
    ("create_auto_scaling_group", {"MinSize": -1, "MaxSize": 2}),
    ("create_auto_scaling_group", {"MinSize": 0, "MaxSize": 2,
                                   "Tags": [{"Key": "aws:x", "Value": "1"}]}),
    ("create_auto_scaling_group", {"MinSize": 0, "MaxSize": 2, "HealthCheckType": "ELB"}),
    ("create_auto_scaling_group", {"MinSize": 0, "MaxSize": 2,
                                   "TerminationPolicies": ["Bogus"]}),
    ("create_auto_scaling_group", {"MinSize": 0, "MaxSize": 2, "DefaultCooldown": -5}),
    ("create_auto_scaling_group", {"MinSize": 0, "MaxSize": 2, "LoadBalancerNames": ["lb"]}),
    ("describe_auto_scaling_groups", {"MaxRecords": 1000}),
    ("describe_scaling_activities", {"NextToken": "not-a-token"}),
    ("describe_auto_scaling_groups", {"NextToken": "9" * 5000}),
    ("describe_auto_scaling_groups", {"NextToken": "\u00b2"}),
    ("put_scheduled_update_group_action", {"ScheduledActionName": "s",
                                           "Recurrence": "0 0 31 2 *", "DesiredCapacity": 1}),
    ("put_scheduled_update_group_action", {"ScheduledActionName": "s", "TimeZone": "Mars/Base",
                                           "Recurrence": "0 0 * * *", "DesiredCapacity": 1}),
    ("terminate_instance_in_auto_scaling_group", {"InstanceId": "i-0000000000000000f",
                                                  "ShouldDecrementDesiredCapacity": True}),
    ("enable_metrics_collection", {"Granularity": "5Minute"}),
])
def test_bad_input_is_a_validation_error(asg, call, params):
    make_group(asg, name="g", DesiredCapacity=0, MinSize=0)
    if call in ("create_auto_scaling_group",):
        params = {"AutoScalingGroupName": "t", "LaunchConfigurationName": "g-lc",
                  "AvailabilityZones": [asg.zone], **params}
    elif call not in ("describe_auto_scaling_groups", "describe_scaling_activities",
                      "terminate_instance_in_auto_scaling_group"):
        params = {"AutoScalingGroupName": "g", **params}
    with pytest.raises(ClientError) as caught:
        getattr(asg.autoscaling, call)(**params)
    assert error_code(caught) == "ValidationError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert asg.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["t"])["AutoScalingGroups"] == []


def test_an_instance_failing_its_status_check_is_replaced_after_the_grace_period(asg):
    from eucalite.accounts import utcnow
    from eucalite.compute.models import Instance

    make_group(asg, DesiredCapacity=1, HealthCheckGracePeriod=3600)
    run_pass(asg)
    [first] = member_ids(asg)
    wait_for_state(asg.ec2, [first], "running")
    run_pass(asg)
    with asg.app.app_context():          # what the reconciler records of a failed check
        row = db.session.get(Instance, first)
        row.status_checked_at = row.status_impaired_since = utcnow()
        db.session.commit()
    run_pass(asg)
    assert member_ids(asg) == [first]                # within its grace period
    asg.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web",
                                              HealthCheckGracePeriod=0)
    run_pass(asg)
    run_pass(asg)
    [second] = member_ids(asg)
    assert second != first
    causes = [activity["Cause"] for activity in asg.autoscaling.describe_scaling_activities(
        AutoScalingGroupName="web")["Activities"]]
    assert any("in response to an EC2 instance status check failure" in cause
               for cause in causes)


def test_deletion_protection_is_enforced(asg):
    make_group(asg, DesiredCapacity=0, MinSize=0, DeletionProtection="prevent-all-deletion")
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web")
    assert error_code(caught) == "ValidationError"
    asg.autoscaling.update_auto_scaling_group(AutoScalingGroupName="web",
                                              DeletionProtection="prevent-force-deletion")
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    assert error_code(caught) == "ValidationError"
    asg.autoscaling.delete_auto_scaling_group(AutoScalingGroupName="web")
    assert asg.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_instances_past_the_max_instance_lifetime_are_replaced(asg):
    import datetime as dt

    from eucalite.compute.models import Instance

    with pytest.raises(ClientError) as caught:
        make_group(asg, name="short", MaxInstanceLifetime=3600)
    assert error_code(caught) == "ValidationError"
    make_group(asg, DesiredCapacity=1, MaxInstanceLifetime=86400)
    run_pass(asg)
    [first] = member_ids(asg)
    wait_for_state(asg.ec2, [first], "running")
    run_pass(asg)
    assert member_ids(asg) == [first]
    with asg.app.app_context():
        row = db.session.get(Instance, first)
        row.launch_time -= dt.timedelta(days=1, seconds=1)
        db.session.commit()
    run_pass(asg)
    run_pass(asg)
    [second] = member_ids(asg)
    assert second != first
    causes = [activity["Cause"] for activity in asg.autoscaling.describe_scaling_activities(
        AutoScalingGroupName="web")["Activities"]]
    assert any("maximum instance lifetime" in cause for cause in causes)


def test_lifecycle_hooks_hold_launches_and_terminations(asg):
    make_group(asg, MinSize=0, DesiredCapacity=1, LifecycleHookSpecificationList=[{
        "LifecycleHookName": "warm", "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "HeartbeatTimeout": 300, "DefaultResult": "ABANDON"}])
    asg.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName="web", LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", DefaultResult="CONTINUE")
    hooks = asg.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="web")
    assert [hook["LifecycleHookName"] for hook in hooks["LifecycleHooks"]] == ["drain", "warm"]
    run_pass(asg)
    [first] = member_ids(asg, states=("Pending",))
    wait_for_state(asg.ec2, [first], "running")
    run_pass(asg)
    assert member_ids(asg, states=("Pending:Wait",)) == [first]
    asg.autoscaling.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="web", LifecycleHookName="warm", InstanceId=first)
    asg.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="warm", InstanceId=first,
        LifecycleActionResult="CONTINUE")
    run_pass(asg)
    assert member_ids(asg, states=("InService",)) == [first]
    asg.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=first, ShouldDecrementDesiredCapacity=True)
    assert member_ids(asg, states=("Terminating:Wait",)) == [first]
    assert asg.ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "running"                  # held by the hook, not terminated
    with pytest.raises(ClientError) as caught:
        asg.autoscaling.complete_lifecycle_action(
            AutoScalingGroupName="web", LifecycleHookName="warm", InstanceId=first,
            LifecycleActionResult="CONTINUE")
    assert error_code(caught) == "ValidationError"     # it waits on "drain", not "warm"
    asg.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="drain", InstanceId=first,
        LifecycleActionResult="CONTINUE")
    run_pass(asg)
    wait_for_state(asg.ec2, [first], "terminated")
    run_pass(asg)
    assert group(asg)["Instances"] == []


def test_an_abandoned_launch_is_terminated_and_replaced(asg):
    make_group(asg, DesiredCapacity=1)
    asg.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName="web", LifecycleHookName="check",
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING")
    run_pass(asg)
    [first] = member_ids(asg, states=("Pending",))
    wait_for_state(asg.ec2, [first], "running")
    run_pass(asg)
    asg.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName="web", LifecycleHookName="check", InstanceId=first,
        LifecycleActionResult="ABANDON")
    run_pass(asg)                                      # terminates it and launches another
    wait_for_state(asg.ec2, [first], "terminated")
    run_pass(asg)
    [second] = member_ids(asg, states=("Pending", "Pending:Wait"))
    assert second != first


def test_a_hook_that_times_out_applies_its_default_result(asg):
    import datetime as dt

    from eucalite.autoscaling.models import Member

    make_group(asg, DesiredCapacity=1)
    asg.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName="web", LifecycleHookName="slow", HeartbeatTimeout=30,
        LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING", DefaultResult="CONTINUE")
    run_pass(asg)
    [first] = member_ids(asg, states=("Pending",))
    wait_for_state(asg.ec2, [first], "running")
    run_pass(asg)
    assert member_ids(asg, states=("Pending:Wait",)) == [first]
    with asg.app.app_context():          # 30 s later, without waiting them
        member = db.session.get(Member, first)
        member.hook_deadline -= dt.timedelta(seconds=31)
        db.session.commit()
    run_pass(asg)
    assert member_ids(asg, states=("InService",)) == [first]


def test_an_instance_whose_row_is_gone_is_replaced_in_one_pass(asg):
    from eucalite.compute.models import Instance

    make_group(asg, DesiredCapacity=2)
    run_pass(asg)
    first = member_ids(asg)
    wait_for_state(asg.ec2, first, "running")
    run_pass(asg)
    asg.ec2.terminate_instances(InstanceIds=[first[0]])
    wait_for_state(asg.ec2, [first[0]], "terminated")
    with asg.app.app_context():          # purged, as terminated instances are after an hour
        db.session.delete(db.session.get(Instance, first[0]))
        db.session.commit()
    assert run_pass(asg) == 1            # the replacement, though EC2 no longer knows it
    now = member_ids(asg)
    assert first[0] not in now and len(now) == 2
