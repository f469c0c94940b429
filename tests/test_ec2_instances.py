"""EC2 instances over HTTP with boto3, on the in-memory fake hypervisor: launch, describe,
filters, pagination, terminate, reboot, console output, idempotency, capacity and
reconciliation."""
from __future__ import annotations

import threading

from botocore.exceptions import ClientError

from awsutil import error_code
from ec2util import make_image, signed_post, small_capacity, used_cores, wait_for_state

from eucalite.compute import reconcile
from eucalite.cluster.models import Node
from eucalite.db import db


def test_run_describe_terminate(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    reservation = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2,
                                    TagSpecifications=[{"ResourceType": "instance",
                                                        "Tags": [{"Key": "Name",
                                                                  "Value": "web"}]}])
    ids = [item["InstanceId"] for item in reservation["Instances"]]
    assert reservation["ReservationId"].startswith("r-") and len(ids) == 2
    assert sorted(item["AmiLaunchIndex"] for item in reservation["Instances"]) == [0, 1]
    assert reservation["Instances"][0]["State"] == {"Code": 0, "Name": "pending"}
    assert reservation["Instances"][0]["InstanceType"] == "m1.small"
    running = wait_for_state(ec2, ids, "running")
    assert all(item["State"]["Code"] == 16 for item in running)
    assert {tag["Value"] for item in running for tag in item["Tags"]} == {"web"}
    assert used_cores(cloud) == 2

    by_tag = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web"]}])
    assert sum(len(r["Instances"]) for r in by_tag["Reservations"]) == 2
    none = ec2.describe_instances(Filters=[{"Name": "instance-state-name",
                                            "Values": ["stopped"]}])
    assert none["Reservations"] == []

    changes = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {change["PreviousState"]["Name"] for change in changes} == {"running"}
    assert {change["CurrentState"]["Name"] for change in changes} == {"shutting-down"}
    wait_for_state(ec2, ids, "terminated")
    assert used_cores(cloud) == 0
    # Terminating again reports the current state and changes nothing.
    again = ec2.terminate_instances(InstanceIds=ids[:1])["TerminatingInstances"][0]
    assert again["CurrentState"]["Name"] == "terminated"


def test_errors(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    assert error_code(lambda: ec2.run_instances(ImageId="emi-deadbeef", MinCount=1,
                                           MaxCount=1)) == "InvalidAMIID.NotFound"
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                           InstanceType="z9.huge")) == "InvalidParameterValue"
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                           KeyName="nokey")) == "InvalidKeyPair.NotFound"
    assert error_code(lambda: ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1,
        Placement={"AvailabilityZone": "nowhere"})) == "InvalidParameterValue"
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=500,
                                           MaxCount=500)) == "InsufficientInstanceCapacity"
    assert used_cores(cloud) == 0
    assert error_code(lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])) \
        == "InvalidInstanceID.NotFound"
    assert error_code(lambda: ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"])) \
        == "InvalidInstanceID.NotFound"
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=1,
                                                      MaxCount=1)["Instances"]]
    wait_for_state(ec2, ids, "running")
    assert error_code(lambda: ec2.stop_instances(InstanceIds=ids)) == "UnsupportedOperation"
    ec2.terminate_instances(InstanceIds=ids)
    wait_for_state(ec2, ids, "terminated")
    assert error_code(lambda: ec2.reboot_instances(InstanceIds=ids)) == "IncorrectInstanceState"


def test_max_count_takes_what_fits(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    capacity = small_capacity(cloud)
    assert 1 <= capacity < 40
    reservation = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=40)
    assert len(reservation["Instances"]) == capacity
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)) \
        == "InsufficientInstanceCapacity"


def test_client_token_is_idempotent(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken="tok-1")
    second = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken="tok-1")
    assert first["Instances"][0]["InstanceId"] == second["Instances"][0]["InstanceId"]
    assert used_cores(cloud) == 1
    assert error_code(lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                           InstanceType="c1.medium", ClientToken="tok-1")) \
        == "IdempotentParameterMismatch"


def test_concurrent_launches_never_oversubscribe(cloud):
    image = make_image(cloud)
    results: list[str] = []

    def launch():
        try:
            cloud.client("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1)
            results.append("ok")
        except ClientError as caught:
            results.append(caught.response["Error"]["Code"])

    threads = [threading.Thread(target=launch) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    capacity = small_capacity(cloud)
    assert results.count("ok") == capacity
    assert results.count("InsufficientInstanceCapacity") == 50 - capacity
    allowed = cloud.app.config["EUCALITE"]["cpu_overcommit"]
    with cloud.app.app_context():
        for node in db.session.execute(db.select(Node)).scalars():
            assert node.used_cores <= node.cores * allowed


def test_pagination(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    # libvirt's node offers the free space of its state directory as disk: shrink the type
    # so seven fit on a host with little free disk (this test is about paging, not room)
    response = signed_post(cloud, "Action=ModifyInstanceTypeAttribute&Version=2016-11-15"
                                  "&InstanceType=m1.small&Disk=1")
    assert response.status_code == 200, response.text
    ec2.run_instances(ImageId=image, MinCount=7, MaxCount=7, InstanceType="m1.small")
    seen = []
    for page in ec2.get_paginator("describe_instances").paginate(
            PaginationConfig={"PageSize": 5}):
        seen += [item["InstanceId"] for r in page["Reservations"] for item in r["Instances"]]
    assert len(seen) == len(set(seen)) == 7


def test_other_account_sees_nothing(cloud):
    from s3util import second_account

    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=1,
                                                      MaxCount=1)["Instances"]]
    other, _ = second_account(cloud, service="ec2")
    assert other.describe_instances()["Reservations"] == []
    assert error_code(lambda: other.terminate_instances(InstanceIds=ids)) \
        == "InvalidInstanceID.NotFound"
    assert error_code(lambda: other.run_instances(ImageId=image, MinCount=1, MaxCount=1)) \
        == "InvalidAMIID.NotFound"


def test_console_output_status_and_attributes(cloud):
    import base64

    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, UserData="hello")["Instances"]]
    wait_for_state(ec2, ids, "running")
    output = ec2.get_console_output(InstanceId=ids[0])
    assert output["InstanceId"] == ids[0]
    if cloud.app.config["EUCALITE"]["hypervisor"] == "fake":
        assert ids[0] in output["Output"]   # boto3 decodes the base64
    # (libvirt's test driver has no serial console: its output is empty.)
    status = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"][0]
    assert status["InstanceState"]["Name"] == "running"
    attribute = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")
    assert base64.b64decode(attribute["UserData"]["Value"]) == b"hello"
    assert ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="instanceType")[
        "InstanceType"]["Value"] == "m1.small"
    assert error_code(lambda: ec2.modify_instance_attribute(
        InstanceId=ids[0], InstanceType={"Value": "c1.medium"})) == "IncorrectInstanceState"
    ec2.reboot_instances(InstanceIds=ids)


def test_reconciler_fixes_drift(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2,
                                                      MaxCount=2)["Instances"]]
    wait_for_state(ec2, ids, "running")
    services = cloud.app.extensions["eucalite"]
    driver = services.cluster.driver
    driver.destroy(ids[0])                      # the domain vanishes behind our back
    from eucalite.cluster.virt.driver import DiskSpec, DomainSpec
    driver.spawn(DomainSpec(instance_id="i-0000000000000dead", vcpus=1, memory_mb=64,
                            disks=[DiskSpec(target="vda", path="/nonexistent/root.qcow2")]))
    with cloud.app.app_context():
        report = reconcile.reconcile(services.cluster, services.ebs)
    assert report.vanished == [ids[0]]
    # (libvirt's test:///default is one per process: earlier tests' domains are orphans too.)
    assert "i-0000000000000dead" in report.orphans_destroyed
    gone = ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]
    assert gone["State"]["Name"] == "terminated"
    assert "vanished" in gone["StateReason"]["Message"]
    assert set(driver.list_domains()) == {ids[1]}
    assert used_cores(cloud) == 1


def test_aws_cli_run_and_describe(cloud):
    import subprocess
    import sys
    from pathlib import Path

    image = make_image(cloud)
    aws = str(Path(sys.executable).parent / "aws")
    env = cloud.env()
    run = subprocess.run([aws, "ec2", "run-instances", "--image-id", image, "--count", "1",
                          "--output", "json"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    described = subprocess.run([aws, "ec2", "describe-instances", "--query",
                                "Reservations[].Instances[].ImageId", "--output", "text"],
                               env=env, capture_output=True, text=True, timeout=60)
    assert image in described.stdout


def test_verbose_zones_show_free_and_max_per_type(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    capacity = small_capacity(cloud)
    zones = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    small = next(zone for zone in zones if zone["ZoneName"] == "|- m1.small")
    assert small["State"].split()[:3] == [f"{capacity:04d}", "/", f"{capacity:04d}"]
    ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)
    zones = ec2.describe_availability_zones(ZoneNames=["verbose"])["AvailabilityZones"]
    small = next(zone for zone in zones if zone["ZoneName"] == "|- m1.small")
    assert small["State"].split()[:3] == [f"{capacity - 3:04d}", "/", f"{capacity:04d}"]


def test_restart_keeps_running_instances_and_settles_interrupted_launches(cloud, tmp_path):
    """A new process on the same data directory and hypervisor: running instances stay
    running and recorded; a launch the old process never finished is terminated."""
    from unittest import mock

    from eucalite import create_app
    from eucalite.compute import states
    from eucalite.compute.models import Instance

    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2,
                                                      MaxCount=2)["Instances"]]
    wait_for_state(ec2, ids, "running")
    old = cloud.app.extensions["eucalite"]
    with cloud.app.app_context():      # a launch cut short: recorded, never spawned
        db.session.get(Instance, ids[1]).state = states.PENDING
        db.session.commit()
        old.cluster.driver.destroy(ids[1])

    restarted = create_app(dict(cloud.app.config["EUCALITE"]))
    services = restarted.extensions["eucalite"]
    with restarted.app_context(), \
            mock.patch.object(type(services.cluster), "open_driver",
                              lambda self: old.cluster.driver):
        assert services.cluster.start_node_duty() is None
        report = reconcile.reconcile(services.cluster, services.ebs, startup=True)
        assert report.interrupted == [ids[1]]
        kept = db.session.get(Instance, ids[0])
        assert kept.state == states.RUNNING
    assert set(old.cluster.driver.list_domains()) == {ids[0]}
