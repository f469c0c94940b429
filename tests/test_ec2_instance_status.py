"""DescribeInstanceStatus (checks fed by the reconciler, events, filters, IncludeAllInstances,
paging), ReportInstanceStatus and GetPasswordData over HTTP with boto3 and the aws CLI, on the
fake hypervisor."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from awsutil import error_code
from ec2util import make_image, wait_for_state

from eucalite.cluster.virt.driver import DriverError
from eucalite.compute import reconcile


def _launch(live, ec2, count=1) -> list[str]:
    ids = [item["InstanceId"] for item in ec2.run_instances(
        ImageId=make_image(live), MinCount=count, MaxCount=count)["Instances"]]
    wait_for_state(ec2, ids, "running")
    return ids


def _pass(live) -> None:
    """One reconcile pass, as the server's periodic one does (it feeds the checks)."""
    services = live.services
    with live.app.app_context():
        reconcile.reconcile(services.cluster, services.ebs,
                            board=services.compute.status_board)


def _statuses(ec2, **kwargs) -> dict[str, dict]:
    return {item["InstanceId"]: item
            for item in ec2.describe_instance_status(**kwargs)["InstanceStatuses"]}


def test_checks_follow_what_the_reconciler_sees(cloud):
    ec2 = cloud.client("ec2")
    first, second = _launch(cloud, ec2, 2)
    before = _statuses(ec2)[first]
    assert before["InstanceStatus"]["Status"] == "initializing"   # no pass has looked yet
    assert before["SystemStatus"]["Status"] == "initializing"
    _pass(cloud)
    item = _statuses(ec2)[first]
    assert item["InstanceState"] == {"Code": 16, "Name": "running"}
    assert item["AvailabilityZone"] == "eucalyptus-1a"
    assert item["InstanceStatus"] == {"Status": "ok", "Details": [
        {"Name": "reachability", "Status": "passed"}]}
    assert item["SystemStatus"]["Status"] == "ok"
    assert item.get("Events", []) == []

    # the guest stops answering (its domain paused): the instance check fails, the system's not
    driver = cloud.services.cluster.driver
    driver.pause(second)
    _pass(cloud)
    impaired = _statuses(ec2)[second]
    assert impaired["InstanceStatus"]["Status"] == "impaired"
    assert impaired["InstanceStatus"]["Details"][0]["Status"] == "failed"
    assert "ImpairedSince" in impaired["InstanceStatus"]["Details"][0]
    assert impaired["SystemStatus"]["Status"] == "ok"
    only_impaired = _statuses(ec2, Filters=[{"Name": "instance-status.status",
                                             "Values": ["impaired"]}])
    assert set(only_impaired) == {second}
    assert set(_statuses(ec2, Filters=[{"Name": "instance-status.reachability",
                                        "Values": ["passed"]}])) == {first}
    driver.resume(second)
    _pass(cloud)
    assert _statuses(ec2)[second]["InstanceStatus"]["Status"] == "ok"


def test_unreachable_hypervisor_impairs_the_system_check(cloud, monkeypatch):
    ec2 = cloud.client("ec2")
    [instance_id] = _launch(cloud, ec2)
    _pass(cloud)

    def refuse():
        raise DriverError("hypervisor connection lost")

    monkeypatch.setattr(cloud.services.cluster.local_node, "domains", refuse)
    _pass(cloud)
    item = _statuses(ec2)[instance_id]
    assert item["SystemStatus"]["Status"] == "impaired"
    assert item["SystemStatus"]["Details"][0]["Status"] == "failed"
    assert set(_statuses(ec2, Filters=[{"Name": "system-status.status",
                                        "Values": ["impaired"]}])) == {instance_id}


def test_maintenance_event_include_all_filters_and_paging(cloud):
    ec2 = cloud.client("ec2")
    ids = _launch(cloud, ec2, 3)
    ec2.terminate_instances(InstanceIds=[ids[2]])
    wait_for_state(ec2, [ids[2]], "terminated")
    _pass(cloud)
    assert set(_statuses(ec2)) == set(ids[:2])                     # running ones only
    every = _statuses(ec2, IncludeAllInstances=True)
    assert set(every) == set(ids)
    assert every[ids[2]]["InstanceStatus"]["Status"] == "not-applicable"
    assert set(_statuses(ec2, IncludeAllInstances=True, Filters=[
        {"Name": "instance-state-name", "Values": ["terminated"]}])) == {ids[2]}
    assert set(_statuses(ec2, Filters=[{"Name": "instance-state-code",
                                        "Values": ["16"]}])) == set(ids[:2])
    assert _statuses(ec2, Filters=[{"Name": "availability-zone",
                                    "Values": ["elsewhere"]}]) == {}

    seen, token = [], None
    while True:
        page = ec2.describe_instance_status(MaxResults=5, IncludeAllInstances=True,
                                            **({"NextToken": token} if token else {}))
        seen += [item["InstanceId"] for item in page["InstanceStatuses"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert error_code(lambda: ec2.describe_instance_status(
        InstanceIds=["i-0123456789abcdef0"])) == "InvalidInstanceID.NotFound"

    # the node is disabled for maintenance: a system-maintenance event on its instances
    node_id = cloud.services.cluster.local_node.node_id
    with cloud.app.app_context():
        cloud.services.cluster.set_node_state(node_id, "disabled")
    item = _statuses(ec2)[ids[0]]
    assert [event["Code"] for event in item["Events"]] == ["system-maintenance"]
    assert set(_statuses(ec2, Filters=[{"Name": "event.code",
                                        "Values": ["system-maintenance"]}])) == set(ids[:2])
    with cloud.app.app_context():
        cloud.services.cluster.set_node_state(node_id, "enabled")
    assert _statuses(ec2, Filters=[{"Name": "event.code",
                                    "Values": ["system-maintenance"]}]) == {}


def test_report_status_and_password_data(cloud):
    ec2 = cloud.client("ec2")
    [instance_id] = _launch(cloud, ec2)
    ec2.report_instance_status(Instances=[instance_id], Status="impaired",
                               ReasonCodes=["unresponsive", "other"])
    assert error_code(lambda: ec2.report_instance_status(
        Instances=[instance_id], Status="sad", ReasonCodes=["other"])) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.report_instance_status(
        Instances=[instance_id], Status="ok", ReasonCodes=["bored"])) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.report_instance_status(
        Instances=["i-0123456789abcdef0"], Status="ok", ReasonCodes=["other"])) \
        == "InvalidInstanceID.NotFound"

    password = ec2.get_password_data(InstanceId=instance_id)
    assert password["InstanceId"] == instance_id
    assert password["PasswordData"] == ""              # Linux guests: no Windows password
    assert "Timestamp" in password
    assert error_code(lambda: ec2.get_password_data(InstanceId="i-0123456789abcdef0")) \
        == "InvalidInstanceID.NotFound"

    cli = str(Path(sys.executable).parent / "aws")
    result = subprocess.run([cli, "ec2", "describe-instance-status", "--instance-ids",
                             instance_id, "--output", "json"], env=cloud.env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["InstanceStatuses"][0]["InstanceId"] == instance_id
    result = subprocess.run([cli, "ec2", "get-password-data", "--instance-id", instance_id,
                             "--output", "json"], env=cloud.env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["PasswordData"] == ""
