"""Instance attributes over HTTP with boto3 and the aws CLI, on the fake hypervisor:
DescribeInstanceAttribute / ModifyInstanceAttribute for every attribute AWS lists, both
request forms, termination and stop protection, and instanceInitiatedShutdownBehavior when
the guest powers itself off (the reconciler's part)."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from awsutil import error_code
from ebsutil import new_volume, settle, volume, wait_snapshot, write_pattern
from ec2util import make_image, wait_for_state

from eucalite.compute import reconcile


def _ebs_image(live, ec2) -> str:
    """An EBS-backed image (root from a snapshot), so its instances can stop."""
    source = new_volume(live, ec2, size=1)
    write_pattern(live, source, 0, b"root " * 100)
    snap = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    return ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]


def _launch(live, ec2, image, **kwargs) -> str:
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                    **kwargs)["Instances"][0]["InstanceId"]
    settle(live)
    wait_for_state(ec2, [instance_id], "running")
    return instance_id


def _attribute(ec2, instance_id, name):
    answer = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute=name)
    assert answer["InstanceId"] == instance_id
    return answer


def _state(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


def _guest_powers_off(live, instance_id) -> None:
    """The guest shuts itself down; the reconciler's next pass sees the domain shut off."""
    services = live.services
    services.cluster.driver.power_off(instance_id)
    with live.app.app_context():
        reconcile.reconcile(services.cluster, services.ebs)
    settle(live)


def test_every_attribute_reads_as_aws_shapes_it(ebs):
    ec2 = ebs.client("ec2")
    instance_id = _launch(ebs, ec2, make_image(ebs), UserData="hello")
    assert _attribute(ec2, instance_id, "instanceType")["InstanceType"] == {"Value": "m1.small"}
    assert base64.b64decode(_attribute(ec2, instance_id, "userData")["UserData"]["Value"]) \
        == b"hello"
    assert _attribute(ec2, instance_id, "disableApiTermination")[
        "DisableApiTermination"] == {"Value": False}
    assert _attribute(ec2, instance_id, "disableApiStop")["DisableApiStop"] == {"Value": False}
    assert _attribute(ec2, instance_id, "instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"] == {"Value": "stop"}
    assert _attribute(ec2, instance_id, "rootDeviceName")["RootDeviceName"] == {
        "Value": "/dev/sda1"}
    assert _attribute(ec2, instance_id, "ebsOptimized")["EbsOptimized"] == {"Value": False}
    assert _attribute(ec2, instance_id, "enaSupport")["EnaSupport"] == {"Value": False}
    assert _attribute(ec2, instance_id, "productCodes")["ProductCodes"] == []
    assert [group["GroupName"] for group in
            _attribute(ec2, instance_id, "groupSet")["Groups"]] == ["default"]
    assert _attribute(ec2, instance_id, "blockDeviceMapping")["BlockDeviceMappings"] == []
    described = _state(ec2, instance_id)
    assert _attribute(ec2, instance_id, "kernel")["KernelId"].get("Value") \
        == described.get("KernelId")
    assert _attribute(ec2, instance_id, "ramdisk")["RamdiskId"].get("Value") \
        == described.get("RamdiskId")
    assert _attribute(ec2, instance_id, "sriovNetSupport")["SriovNetSupport"] == {}
    # EC2-Classic has no source/destination check: AWS's answer for a Classic instance.
    assert error_code(lambda: _attribute(ec2, instance_id, "sourceDestCheck")) \
        == "InvalidParameterCombination"
    assert error_code(lambda: _attribute(ec2, instance_id, "colour")) == "InvalidParameterValue"
    assert error_code(lambda: _attribute(ec2, "i-0123456789abcdef0", "instanceType")) \
        == "InvalidInstanceID.NotFound"


def test_termination_protection_refuses_the_whole_call(ebs):
    ec2 = ebs.client("ec2")
    image = make_image(ebs)
    protected = _launch(ebs, ec2, image, DisableApiTermination=True)
    plain = _launch(ebs, ec2, image)
    assert _attribute(ec2, protected, "disableApiTermination")["DisableApiTermination"] == {
        "Value": True}
    assert error_code(lambda: ec2.terminate_instances(InstanceIds=[plain, protected])) \
        == "OperationNotPermitted"
    # the whole call failed: the unprotected instance is still running
    assert _state(ec2, plain)["State"]["Name"] == "running"
    ec2.modify_instance_attribute(InstanceId=protected, DisableApiTermination={"Value": False})
    ec2.terminate_instances(InstanceIds=[plain, protected])
    settle(ebs)
    wait_for_state(ec2, [plain, protected], "terminated")


def test_stop_protection_and_stopped_only_attributes(ebs):
    ec2 = ebs.client("ec2")
    instance_id = _launch(ebs, ec2, _ebs_image(ebs, ec2))
    # the Attribute/Value form (old clients, the aws CLI's --attribute/--value)
    ec2.modify_instance_attribute(InstanceId=instance_id, Attribute="disableApiStop",
                                  Value="true")
    assert error_code(lambda: ec2.stop_instances(InstanceIds=[instance_id])) \
        == "OperationNotPermitted"
    assert _state(ec2, instance_id)["State"]["Name"] == "running"
    for change in ({"InstanceType": {"Value": "c1.medium"}},
                   {"UserData": {"Value": b"#!/bin/sh\n"}},
                   {"Attribute": "instanceType", "Value": "c1.medium"}):
        assert error_code(lambda: ec2.modify_instance_attribute(
            InstanceId=instance_id, **change)) == "IncorrectInstanceState"
    ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiStop={"Value": False})
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)
    wait_for_state(ec2, [instance_id], "stopped")

    ec2.modify_instance_attribute(InstanceId=instance_id, InstanceType={"Value": "c1.medium"})
    assert _attribute(ec2, instance_id, "instanceType")["InstanceType"] == {
        "Value": "c1.medium"}
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, InstanceType={"Value": "z9.huge"})) \
        == "InvalidInstanceAttributeValue"
    ec2.modify_instance_attribute(InstanceId=instance_id, UserData={"Value": b"new data"})
    assert base64.b64decode(_attribute(ec2, instance_id, "userData")["UserData"]["Value"]) \
        == b"new data"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, UserData={"Value": b"x" * (16 * 1024 + 1)})) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, Kernel={"Value": "eki-deadbeef"})) == "InvalidAMIID.NotFound"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, EnaSupport={"Value": True})) == "UnsupportedOperation"
    ec2.modify_instance_attribute(InstanceId=instance_id, EbsOptimized={"Value": False})
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, SourceDestCheck={"Value": False})) \
        == "InvalidParameterCombination"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, Attribute="rootDeviceName", Value="/dev/sdb")) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, Attribute="disableApiStop", Value="maybe")) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": "explode"})) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.modify_instance_attribute(InstanceId=instance_id)) \
        == "MissingParameter"
    # the new type is what the next start runs
    ec2.start_instances(InstanceIds=[instance_id])
    settle(ebs)
    assert _state(ec2, instance_id)["InstanceType"] == "c1.medium"


def test_delete_on_termination_and_groups_change(ebs):
    ec2 = ebs.client("ec2")
    instance_id = _launch(ebs, ec2, _ebs_image(ebs, ec2))
    [root] = _attribute(ec2, instance_id, "blockDeviceMapping")["BlockDeviceMappings"]
    assert root["DeviceName"] == "/dev/sda1" and root["Ebs"]["DeleteOnTermination"] is True
    ec2.modify_instance_attribute(InstanceId=instance_id, BlockDeviceMappings=[
        {"DeviceName": "/dev/sda1", "Ebs": {"DeleteOnTermination": False}}])
    [root] = _attribute(ec2, instance_id, "blockDeviceMapping")["BlockDeviceMappings"]
    assert root["Ebs"]["DeleteOnTermination"] is False
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": False}}])) \
        == "InvalidInstanceAttributeValue"

    web = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    db_group = ec2.create_security_group(GroupName="db", Description="db")["GroupId"]
    ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[web, db_group])
    assert [group["GroupId"] for group in
            _attribute(ec2, instance_id, "groupSet")["Groups"]] == [web, db_group]
    assert {group["GroupName"] for group in _state(ec2, instance_id)["SecurityGroups"]} \
        == {"web", "db"}
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, Groups=["sg-0123456789abcdef0"])) == "InvalidGroup.NotFound"
    # an instance's old group is free to go once it left it
    ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[web])
    ec2.delete_security_group(GroupId=db_group)

    ec2.terminate_instances(InstanceIds=[instance_id])
    settle(ebs)
    wait_for_state(ec2, [instance_id], "terminated")
    assert volume(ec2, root["Ebs"]["VolumeId"])["State"] == "available"   # kept, as asked
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=instance_id, DisableApiTermination={"Value": True})) \
        == "IncorrectInstanceState"


def test_guest_poweroff_follows_the_shutdown_behaviour(ebs):
    ec2 = ebs.client("ec2")
    image = _ebs_image(ebs, ec2)
    stops = _launch(ebs, ec2, image)
    ends = _launch(ebs, ec2, image, InstanceInitiatedShutdownBehavior="terminate")
    assert _attribute(ec2, ends, "instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"] == {"Value": "terminate"}
    for instance_id in (stops, ends):
        _guest_powers_off(ebs, instance_id)
    stopped, terminated = _state(ec2, stops), _state(ec2, ends)
    assert stopped["State"]["Name"] == "stopped"
    assert terminated["State"]["Name"] == "terminated"
    assert terminated["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    # switched to terminate after launch, a stopped-then-started instance ends too
    ec2.modify_instance_attribute(InstanceId=stops, Attribute="instanceInitiatedShutdownBehavior",
                                  Value="terminate")
    ec2.start_instances(InstanceIds=[stops])
    settle(ebs)
    wait_for_state(ec2, [stops], "running")
    _guest_powers_off(ebs, stops)
    assert _state(ec2, stops)["State"]["Name"] == "terminated"
    # an instance-store instance cannot stop: its guest's poweroff terminates it
    store = _launch(ebs, ec2, make_image(ebs))
    _guest_powers_off(ebs, store)
    assert _state(ec2, store)["State"]["Name"] == "terminated"


def test_aws_cli_attributes(ebs):
    ec2 = ebs.client("ec2")
    instance_id = _launch(ebs, ec2, make_image(ebs))
    cli = str(Path(sys.executable).parent / "aws")

    def aws(*args) -> dict:
        result = subprocess.run([cli, "ec2", *args, "--output", "json"], env=ebs.env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    aws("modify-instance-attribute", "--instance-id", instance_id,
        "--disable-api-termination")
    assert aws("describe-instance-attribute", "--instance-id", instance_id, "--attribute",
               "disableApiTermination")["DisableApiTermination"] == {"Value": True}
    aws("modify-instance-attribute", "--instance-id", instance_id, "--attribute",
        "instanceInitiatedShutdownBehavior", "--value", "terminate")
    assert aws("describe-instance-attribute", "--instance-id", instance_id, "--attribute",
               "instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"] == {"Value": "terminate"}
    refused = subprocess.run([cli, "ec2", "terminate-instances", "--instance-ids",
                              instance_id], env=ebs.env(), capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "OperationNotPermitted" in refused.stderr
    aws("modify-instance-attribute", "--instance-id", instance_id,
        "--no-disable-api-termination")
    aws("terminate-instances", "--instance-ids", instance_id)
