"""CloudWatch's own measurements (eucalite/cloudwatch/collector.py) on the fake hypervisor,
whose counters the tests grow by known amounts: AWS/EC2's CPUUtilization, disk and network
metrics exactly as the deltas say, per instance and in AWS's aggregates, basic versus
detailed monitoring (MonitorInstances / UnmonitorInstances over the EC2 API too), reboots
that restart the counters, status checks from the reconciler, AWS/EBS per attached volume,
AWS/S3's daily bucket numbers and the nodes' own metrics for the cloud admin.

Passes run with explicit clock values (``collect(now=...)``), so every expected number is
computed here from what the test did, with no sleeping."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from awsutil import error_code
from ebsutil import new_volume, settle
from ec2util import make_image, wait_for_state
from liveutil import start_live_node, stop_live

from eucalite import accounts
from eucalite.cloudwatch import store
from eucalite.cloudwatch.collector import NODE_NAMESPACE, Collector
from eucalite.cloudwatch.levels import LEVELS
from eucalite.cloudwatch.stats import merged
from eucalite.cluster.models import Node
from eucalite.cluster.virt.driver import DiskCounters, NicCounters
from eucalite.compute import reconcile
from eucalite.db import db
from eucalite.tags import Tag

#: A minute boundary in the recent past: the passes' clock starts there.
T0 = int(time.time()) // 60 * 60 - 1200


@pytest.fixture
def live(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                                   max_volume_gb=100, max_total_volume_gb=150)
    yield live
    stop_live(live, server)


@pytest.fixture
def collector(live):
    return Collector(live.services, {"metrics_interval": 60, "detailed_metrics_interval": 10})


def _collect(live, collector, at) -> int:
    with live.app.app_context():
        return collector.collect(now=at)


def _launch(live, count=1, **kwargs) -> list[str]:
    ec2 = live.client("ec2")
    if not ec2.describe_images(Filters=[{"Name": "image-id",
                                         "Values": ["emi-0a1b2c3d"]}])["Images"]:
        make_image(live)
    ids = [item["InstanceId"] for item in ec2.run_instances(
        ImageId="emi-0a1b2c3d", MinCount=count, MaxCount=count, **kwargs)["Instances"]]
    wait_for_state(ec2, ids, "running")
    return ids


def _account(live, name=accounts.ADMIN_ACCOUNT) -> str:
    with live.app.app_context():
        return accounts.get_account(name).id


def _cell(live, namespace, name, dims, resolution=60, account=None):
    """The metric's data merged over all time at *resolution* (1 or 60), None if none."""
    account = account or _account(live)
    with live.app.app_context():
        metric_id = store.find(account, namespace, name, sorted(dims))
        if metric_id is None:
            return None
        level = LEVELS[0] if resolution == 1 else LEVELS[1]
        cells = [cell for _, _, cell in store.cells(metric_id, level, 0, 2 ** 40, None)]
    return merged(cells) if cells else None


def _ec2(live, name, dims, **kwargs):
    return _cell(live, "AWS/EC2", name, dims, **kwargs)


def _in_group(live, instance_ids, group) -> None:
    """Tag the instances as EC2 Auto Scaling does its group's members (an aws: tag callers
    may not set)."""
    with live.app.app_context():
        for instance_id in instance_ids:
            db.session.add(Tag(resource_id=instance_id, key="aws:autoscaling:groupName",
                               value=group, owner_id=_account(live), resource_type="instance"))
        db.session.commit()


def _vcpus(live, instance_id) -> int:
    return live.services.cluster.driver.counters()[instance_id].vcpus


# --- AWS/EC2 ------------------------------------------------------------------------------

def test_first_sample_primes_then_deltas_become_aws_metrics(live, collector):
    (instance,) = _launch(live)
    driver = live.services.cluster.driver
    dims = [["InstanceId", instance]]
    _collect(live, collector, T0)
    assert _ec2(live, "CPUUtilization", dims) is None          # primed only

    vcpus = _vcpus(live, instance)
    driver.add_usage(instance, cpu_seconds=0.25 * 60 * vcpus,   # a quarter of its vCPUs
                     disks={"vda": DiskCounters(read_bytes=8192, write_bytes=4096 * 3,
                                                read_ops=2, write_ops=3)},
                     nic=NicCounters(rx_bytes=1500, tx_bytes=700, rx_packets=3, tx_packets=2))
    _collect(live, collector, T0 + 30)                          # basic: not due yet
    assert _ec2(live, "CPUUtilization", dims) is None
    _collect(live, collector, T0 + 60)

    cpu = _ec2(live, "CPUUtilization", dims)
    assert cpu.count == 1 and cpu.total == pytest.approx(25.0)
    expected = {"DiskReadBytes": 8192, "DiskWriteBytes": 12288, "DiskReadOps": 2,
                "DiskWriteOps": 3, "NetworkIn": 1500, "NetworkOut": 700,
                "NetworkPacketsIn": 3, "NetworkPacketsOut": 2}
    for name, value in expected.items():
        assert _ec2(live, name, dims).total == value, name
    # basic monitoring: no 1-second data, and no per-image or per-type aggregates
    assert _ec2(live, "CPUUtilization", dims, resolution=1) is None
    assert _ec2(live, "CPUUtilization", [["ImageId", "emi-0a1b2c3d"]]) is None

    # an idle minute reads 0 %, and nothing moved
    _collect(live, collector, T0 + 120)
    cpu = _ec2(live, "CPUUtilization", dims)
    assert cpu.count == 2 and cpu.minimum == 0.0 and cpu.maximum == pytest.approx(25.0)
    assert _ec2(live, "DiskWriteBytes", dims).total == 12288


def test_a_reboot_restarts_the_counters_instead_of_a_negative_delta(live, collector):
    (instance,) = _launch(live)
    driver = live.services.cluster.driver
    dims = [["InstanceId", instance]]
    driver.add_usage(instance, cpu_seconds=100)
    _collect(live, collector, T0)
    driver.reboot(instance)                     # counters back to 0
    driver.add_usage(instance, cpu_seconds=1)
    _collect(live, collector, T0 + 60)
    assert _ec2(live, "CPUUtilization", dims) is None           # primed again, not -99 s
    vcpus = _vcpus(live, instance)
    driver.add_usage(instance, cpu_seconds=0.5 * 60 * vcpus)
    _collect(live, collector, T0 + 120)
    assert _ec2(live, "CPUUtilization", dims).total == pytest.approx(50.0)


def test_detailed_monitoring_every_ten_seconds_with_aggregates(live, collector):
    detailed, basic = _launch(live, 2)
    ec2 = live.client("ec2")
    answer = ec2.monitor_instances(InstanceIds=[detailed])["InstanceMonitorings"]
    assert answer == [{"InstanceId": detailed, "Monitoring": {"State": "pending"}}]
    _in_group(live, [basic, detailed], "web")
    driver = live.services.cluster.driver
    vcpus = _vcpus(live, detailed)
    _collect(live, collector, T0)
    for step in range(1, 7):
        driver.add_usage(detailed, cpu_seconds=10 * vcpus)       # busy: 100 %
        _collect(live, collector, T0 + 10 * step)

    cpu = _ec2(live, "CPUUtilization", [["InstanceId", detailed]], resolution=1)
    assert cpu.count == 6 and cpu.minimum == pytest.approx(100.0)
    assert _ec2(live, "CPUUtilization", [["InstanceId", basic]]).count == 1  # at T0 + 60
    # detailed instances alone make the per-image, per-type and overall aggregates ...
    for dims in ([["ImageId", "emi-0a1b2c3d"]], [["InstanceType", "m1.small"]], []):
        assert _ec2(live, "CPUUtilization", dims, resolution=1).count == 6, dims
    # ... while an Auto Scaling group's takes every member, basic or detailed
    group = _ec2(live, "CPUUtilization", [["AutoScalingGroupName", "web"]])
    assert group.count == 7 and group.minimum == 0.0

    answer = ec2.unmonitor_instances(InstanceIds=[detailed])["InstanceMonitorings"]
    assert answer == [{"InstanceId": detailed, "Monitoring": {"State": "disabling"}}]
    _collect(live, collector, T0 + 70)          # basic again: due a minute after T0 + 60
    assert _ec2(live, "CPUUtilization", [["InstanceId", detailed]]).count == 6


def test_monitoring_state_over_the_ec2_api(live):
    ec2 = live.client("ec2")
    (watched,) = _launch(live, Monitoring={"Enabled": True})
    (plain,) = _launch(live)

    def state(instance_id):
        found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return found[0]["Instances"][0]["Monitoring"]["State"]

    assert (state(watched), state(plain)) == ("enabled", "disabled")
    filtered = ec2.describe_instances(Filters=[{"Name": "monitoring-state",
                                                "Values": ["enabled"]}])["Reservations"]
    assert [item["InstanceId"] for r in filtered for item in r["Instances"]] == [watched]
    ec2.monitor_instances(InstanceIds=[plain])
    ec2.unmonitor_instances(InstanceIds=[watched])
    assert (state(watched), state(plain)) == ("disabled", "enabled")
    assert error_code(ec2.monitor_instances, InstanceIds=["i-0000000000000dead"]) == \
        "InvalidInstanceID.NotFound"
    assert error_code(ec2.unmonitor_instances, InstanceIds=[plain], DryRun=True) == \
        "DryRunOperation"
    assert state(plain) == "enabled"
    # the aws CLI's monitor-instances / unmonitor-instances read the same answers
    cli = str(Path(sys.executable).parent / "aws")
    for command, answer in (("unmonitor-instances", "disabling"), ("monitor-instances",
                                                                  "pending")):
        result = subprocess.run([cli, "ec2", command, "--instance-ids", plain, "--output",
                                 "json"], env=live.env(), capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["InstanceMonitorings"] == [
            {"InstanceId": plain, "Monitoring": {"State": answer}}]
    assert state(plain) == "enabled"


def test_status_checks_follow_the_reconciler(live, collector):
    (instance,) = _launch(live)
    dims = [["InstanceId", instance]]
    _collect(live, collector, T0)
    assert _ec2(live, "StatusCheckFailed", dims) is None        # checks still initializing

    def reconcile_pass():
        with live.app.app_context():
            reconcile.reconcile(live.services.cluster, live.services.ebs,
                                board=live.services.compute.status_board)

    reconcile_pass()
    _collect(live, collector, T0 + 60)
    for name in ("StatusCheckFailed", "StatusCheckFailed_Instance",
                 "StatusCheckFailed_System"):
        assert _ec2(live, name, dims).maximum == 0.0, name
    live.services.cluster.driver.pause(instance)                # the guest stops answering
    reconcile_pass()
    _collect(live, collector, T0 + 120)
    assert _ec2(live, "StatusCheckFailed_Instance", dims).maximum == 1.0
    assert _ec2(live, "StatusCheckFailed", dims).maximum == 1.0
    assert _ec2(live, "StatusCheckFailed_System", dims).maximum == 0.0


# --- AWS/EBS ------------------------------------------------------------------------------

def test_attached_volumes_report_to_aws_ebs_not_to_the_instance(live, collector):
    (instance,) = _launch(live)
    ec2 = live.client("ec2")
    volume_id = new_volume(live, ec2)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance, Device="/dev/sdf")
    settle(live)
    driver = live.services.cluster.driver
    (target,) = [t for t in driver.disks(instance) if t != "vda"]
    _collect(live, collector, T0)
    driver.add_usage(instance, disks={target: DiskCounters(write_bytes=65536, write_ops=16),
                                      "vda": DiskCounters(read_bytes=512, read_ops=1)})
    _collect(live, collector, T0 + 60)
    volume = [["VolumeId", volume_id]]
    assert _cell(live, "AWS/EBS", "VolumeWriteBytes", volume).total == 65536
    assert _cell(live, "AWS/EBS", "VolumeWriteOps", volume).total == 16
    assert _cell(live, "AWS/EBS", "VolumeIdleTime", volume).total == 0.0
    dims = [["InstanceId", instance]]
    assert _ec2(live, "DiskWriteBytes", dims).total == 0       # only instance store counts
    assert _ec2(live, "DiskReadBytes", dims).total == 512
    _collect(live, collector, T0 + 120)                        # a quiet minute: idle
    assert _cell(live, "AWS/EBS", "VolumeIdleTime", volume).total == 60.0


# --- AWS/S3 and the nodes -----------------------------------------------------------------

def test_bucket_size_and_object_count_once_a_day(live, collector):
    s3 = live.client("s3")
    s3.create_bucket(Bucket="metered")
    s3.create_bucket(Bucket="empty")
    s3.put_object(Bucket="metered", Key="a", Body=b"x" * 1000)
    s3.put_object(Bucket="metered", Key="b", Body=b"y" * 24)
    day = T0 - T0 % 86400

    def numbers(bucket):
        size = _cell(live, "AWS/S3", "BucketSizeBytes",
                     [["BucketName", bucket], ["StorageType", "StandardStorage"]])
        count = _cell(live, "AWS/S3", "NumberOfObjects",
                      [["BucketName", bucket], ["StorageType", "AllStorageTypes"]])
        return size and (size.count, size.total), count and (count.count, count.total)

    _collect(live, collector, T0)
    assert numbers("metered") == ((1, 1024), (1, 2))
    assert numbers("empty") == ((1, 0), (1, 0))
    s3.put_object(Bucket="metered", Key="c", Body=b"z")
    _collect(live, collector, T0 + 60)                          # the same day: nothing new
    restarted = Collector(live.services, collector.services.config)
    _collect(live, restarted, T0 + 120)                         # nor after a restart
    assert numbers("metered") == ((1, 1024), (1, 2))
    _collect(live, restarted, day + 86400 + 5)                  # the next day
    assert numbers("metered") == ((2, 1024 + 1025), (2, 5))
    with live.app.app_context():
        metric_id = store.find(_account(live), "AWS/S3", "NumberOfObjects",
                               [["BucketName", "metered"], ["StorageType", "AllStorageTypes"]])
        starts = [start for start, _, _ in store.cells(metric_id, LEVELS[1], 0, 2 ** 40, None)]
    assert starts == [day, day + 86400]                         # stamped at midnight UTC


def test_node_metrics_for_the_cloud_admin(live, collector):
    ids = _launch(live, 2)
    _collect(live, collector, T0)
    with live.app.app_context():
        (node,) = [row.id for row in live.services.cluster.list_nodes()]
        capacity = live.services.cluster.node_capacities()[0]
    dims = [["NodeId", node]]
    used = 2 * _vcpus(live, ids[0])
    assert _cell(live, NODE_NAMESPACE, "Instances", dims).total == 2
    assert _cell(live, NODE_NAMESPACE, "CPUAllocated", dims).total == used
    free = _cell(live, NODE_NAMESPACE, "CPUFree", dims).total
    assert free == capacity.cores - used
    assert _cell(live, NODE_NAMESPACE, "MemoryFree", dims).total == \
        capacity.memory_mb - _cell(live, NODE_NAMESPACE, "MemoryAllocated", dims).total
    _collect(live, collector, T0 + 10)              # once a metrics_interval, not every pass
    assert _cell(live, NODE_NAMESPACE, "Instances", dims).count == 1


def test_an_unreachable_node_reports_failed_system_checks(live, collector):
    (instance,) = _launch(live)
    with live.app.app_context():
        reconcile.reconcile(live.services.cluster, live.services.ebs,
                            board=live.services.compute.status_board)
        for node in db.session.execute(db.select(Node)).scalars():
            node.state = "unreachable"          # what the failure monitor marks
        db.session.commit()
    _collect(live, collector, T0)
    dims = [["InstanceId", instance]]
    assert _ec2(live, "StatusCheckFailed_System", dims).maximum == 1.0
    assert _ec2(live, "StatusCheckFailed", dims).maximum == 1.0


def test_a_node_without_statistics_is_skipped_not_fatal(tmp_path, caplog):
    """libvirt's test driver keeps no domain statistics: no AWS/EC2 usage metrics from it,
    one log line however many passes, and the rest of the pass (nodes, S3) still runs."""
    pytest.importorskip("libvirt")
    caplog.set_level(logging.INFO, logger="eucalite.cloudwatch.collector")
    live, server = start_live_node(tmp_path / "data", hypervisor="libvirt",
                                   libvirt_uri="test:///default")
    try:
        (instance,) = _launch(live)
        collector = Collector(live.services, {"metrics_interval": 60,
                                              "detailed_metrics_interval": 10})
        for step in range(3):
            _collect(live, collector, T0 + 60 * step)
        assert _ec2(live, "CPUUtilization", [["InstanceId", instance]]) is None
        with live.app.app_context():
            (node,) = [row.id for row in live.services.cluster.list_nodes()]
        assert _cell(live, NODE_NAMESPACE, "Instances", [["NodeId", node]]).count == 3
        assert sum("keeps no domain statistics" in record.getMessage()
                   for record in caplog.records) == 1
    finally:
        stop_live(live, server)


def test_what_is_collected_reads_through_the_cloudwatch_api(live, collector):
    """The user's view: boto3's ListMetrics and GetMetricStatistics on what a pass wrote."""
    (instance,) = _launch(live)
    driver = live.services.cluster.driver
    vcpus = _vcpus(live, instance)
    _collect(live, collector, T0)
    driver.add_usage(instance, cpu_seconds=0.75 * 60 * vcpus,
                     nic=NicCounters(rx_bytes=123_456))
    _collect(live, collector, T0 + 60)
    cloudwatch = live.client("cloudwatch")
    dims = [{"Name": "InstanceId", "Value": instance}]
    names = {metric["MetricName"] for metric in cloudwatch.list_metrics(
        Namespace="AWS/EC2", Dimensions=dims)["Metrics"]}
    assert {"CPUUtilization", "DiskReadBytes", "DiskWriteBytes", "DiskReadOps",
            "DiskWriteOps", "NetworkIn", "NetworkOut", "NetworkPacketsIn",
            "NetworkPacketsOut"} <= names

    def statistic(name, statistic):
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/EC2", MetricName=name, Dimensions=dims,
            StartTime=T0 - 60, EndTime=T0 + 180, Period=60,
            Statistics=[statistic])["Datapoints"]
        return [(point[statistic], point["Unit"]) for point in points]

    assert statistic("CPUUtilization", "Average") == [(pytest.approx(75.0), "Percent")]
    assert statistic("NetworkIn", "Sum") == [(123_456.0, "Bytes")]
