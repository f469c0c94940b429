#!/usr/bin/env python3
"""Benchmark: how long from a CloudWatch alarm firing to the instance Auto Scaling launches
for it running, beside a plain RunInstances to running, measured in one run, interleaved.

eucalite runs in this process (werkzeug, threads) with its Auto Scaling loop running as
``eucalite serve`` runs it (woken by the policy's change, else every
``autoscaling_interval``). Each run:

* baseline: RunInstances (boto3, m1.small) until DescribeInstances says ``running``
  (polled every 20 ms), then TerminateInstances;
* alarm: SetAlarmState ALARM on an alarm whose action is a simple scaling policy (+1) of a
  group at 1 instance (the moment an alarm fires: its actions run on the change), until the
  group's new instance is ``running``; split into alarm -> desired capacity 2 (the policy
  ran), -> the instance recorded in the group (RunInstances made by the keeper), ->
  running. The group is then set back to 1 and the alarm to OK, waited for.

By default eucalite's own path is timed on the in-memory hypervisor; ``--real`` boots the
tiny guest on qemu:///system (root and libvirtd needed; skipped with the reason otherwise),
where "running" comes once the domain is started; ``--burst`` gives the cloud no node of
its own and a when-full burst target on a second in-process eucalite (a fake-hypervisor
node), with its burst reconciler running: both the plain launch and the group's launch
then run remotely, and "running" is the local cloud's view once the reconciler saw it.

    .venv/bin/python bench/bench_autoscaling.py [--runs N] [--quick] [--real | --burst]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import GUEST_DIR, InProcessCloud, progress, run_cleaning_up, skip, until

TIMEOUT = 180


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 runs")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--real", action="store_true",
                       help="real guests on qemu:///system instead of the fake hypervisor")
    where.add_argument("--burst", action="store_true",
                       help="no local node: every launch bursts into a second eucalite")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    return args


class Cloud(InProcessCloud):
    def __init__(self, data_dir: Path, real: bool = False, node: bool = True):
        options = ({"hypervisor": "libvirt", "libvirt_uri": "qemu:///system",
                    "instance_subnet": "10.211.0.0/24", "instance_network": "eucalite-asbench",
                    "instance_bridge": "euasbenchbr0", "reconcile_interval": 3600}
                   if real else {"hypervisor": "fake"})
        super().__init__(data_dir, node=node, **options)
        import boto3
        from botocore.config import Config

        from eucalite import accounts, config as config_module

        endpoints = config_module.endpoints(self.app.config["EUCALITE"])
        with self.app.app_context():
            key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
            key_id, secret = key.id, key.secret
        session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                                        region_name=self.app.config["EUCALITE"]["region"])
        config = Config(retries={"max_attempts": 1})
        self.autoscaling = session.client("autoscaling", endpoint_url=endpoints["autoscaling"],
                                          config=config)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=endpoints["cloudwatch"],
                                         config=config)
        self.launched: set[str] = set()

    def image(self, real: bool, image_id: str = "emi-0bec4a11") -> str:
        from eucalite import accounts
        from eucalite.cli.common import admin_principal
        from eucalite.compute.imageimport import ImageFiles
        from eucalite.compute.models import Image
        from eucalite.db import db

        with self.app.app_context():
            if real:
                from eucalite.cluster import guest
                files = guest.build(Path(GUEST_DIR))
                return self.services.compute.import_images(
                    admin_principal(), ImageFiles(files.kernel, files.ramdisk, files.root),
                    name="asbench", bucket="asbench")["machine"]
            owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
            db.session.add(Image(id=image_id, owner_id=owner, kind="machine",
                                 name="bench", state="available"))
            db.session.commit()
        return image_id

    def burst_into(self, remote: "Cloud", cleanup) -> None:
        """A when-full burst target on *remote* (its node made roomy), and this cloud's
        burst reconciler running."""
        from eucalite import accounts, config as config_module
        from eucalite.burst import reconcile
        from eucalite.cluster.models import Node
        from eucalite.db import db

        remote_image = remote.image(False, "emi-7e7e7e7e")
        config = remote.app.config["EUCALITE"]
        with remote.app.app_context():
            for node in db.session.execute(db.select(Node)).scalars():
                node.cores = node.memory_mb = node.disk_gb = 100_000
            db.session.commit()
            remote_key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
            key_id, secret = remote_key.id, remote_key.secret
        with self.app.app_context():
            self.services.burst.add_target(
                "remote", endpoint_url=config_module.endpoints(config)["ec2"],
                region=config["region"], access_key_id=key_id, secret_access_key=secret,
                image_map={"emi-0bec4a11": remote_image}, type_map={"m1.small": "m1.small"})
        cleanup.insert(0, reconcile.start(self.app, 30).set)

    def state(self, instance_id: str) -> str:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"][0]["State"]["Name"]

    def members(self) -> list[str]:
        [group] = self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=["bench"])["AutoScalingGroups"]
        return [item["InstanceId"] for item in group["Instances"]
                if item["LifecycleState"] in ("Pending", "InService")]

    def desired(self) -> int:
        return self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=["bench"])["AutoScalingGroups"][0]["DesiredCapacity"]


def baseline(cloud: Cloud, image_id: str) -> float:
    start = time.perf_counter()
    instance_id = cloud.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                          InstanceType="m1.small")["Instances"][0]["InstanceId"]
    cloud.launched.add(instance_id)
    end = until(lambda: cloud.state(instance_id) == "running", "the plain launch", TIMEOUT)
    cloud.ec2.terminate_instances(InstanceIds=[instance_id])
    until(lambda: cloud.state(instance_id) == "terminated", "the plain terminate", TIMEOUT, 0.1)
    return end - start


def alarm_to_running(cloud: Cloud) -> tuple[float, float, float]:
    """(to the policy's change, to the instance recorded, to running), seconds."""
    before = set(cloud.members())
    start = time.perf_counter()
    cloud.cloudwatch.set_alarm_state(AlarmName="bench-high", StateValue="ALARM",
                                     StateReason="benchmark")
    policy = until(lambda: cloud.desired() == 2, "the policy's change", TIMEOUT)
    recorded = until(lambda: set(cloud.members()) - before, "the group's launch", TIMEOUT)
    [new] = set(cloud.members()) - before
    cloud.launched.add(new)
    running = until(lambda: cloud.state(new) == "running", "the group's instance", TIMEOUT)
    # back to one instance and the alarm to OK, outside the timing
    cloud.cloudwatch.set_alarm_state(AlarmName="bench-high", StateValue="OK",
                                     StateReason="benchmark")
    cloud.autoscaling.set_desired_capacity(AutoScalingGroupName="bench", DesiredCapacity=1)
    until(lambda: len(cloud.members()) == 1, "the group back to one", TIMEOUT, 0.1)
    return policy - start, recorded - start, running - start


def line(name: str, samples: list[float]) -> str:
    return (f"  {name:<44} median {statistics.median(samples) * 1000:8.1f} ms   "
            f"min {min(samples) * 1000:8.1f} ms")


def main() -> None:
    args = parse()
    if args.real and os.geteuid() != 0:
        skip("--real needs root (the instance bridge) and a running libvirtd")
    top = Path(tempfile.mkdtemp(prefix="eucalite-asbench-"))
    top.chmod(0o711)            # QEMU, running as its own user, reaches the instances' files

    def body(cleanup) -> None:
        from eucalite.autoscaling import loop

        cloud = Cloud(top / "data", args.real, node=not args.burst)
        cleanup.append(lambda: cloud.close(sorted(cloud.launched),
                                           "eucalite-asbench" if args.real else None))
        if args.burst:
            remote = Cloud(top / "remote")
            cleanup.append(lambda: remote.close())
            remote.start_node()
            cloud.burst_into(remote, cleanup)
        else:
            cloud.start_node()
        stop = loop.start(cloud.app, interval=10)
        cleanup.insert(0, stop.set)
        image_id = cloud.image(args.real)
        zone = cloud.ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
        cloud.autoscaling.create_launch_configuration(
            LaunchConfigurationName="bench", ImageId=image_id, InstanceType="m1.small",
            InstanceMonitoring={"Enabled": False})
        cloud.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="bench", LaunchConfigurationName="bench", MinSize=1,
            MaxSize=2, DesiredCapacity=1, AvailabilityZones=[zone], DefaultCooldown=0)
        policy = cloud.autoscaling.put_scaling_policy(
            AutoScalingGroupName="bench", PolicyName="out", AdjustmentType="ChangeInCapacity",
            ScalingAdjustment=1, Cooldown=0)["PolicyARN"]
        cloud.cloudwatch.put_metric_alarm(
            AlarmName="bench-high", Namespace="Bench", MetricName="Load", Statistic="Average",
            Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold", AlarmActions=[policy])
        until(lambda: len(cloud.members()) == 1 and
              cloud.state(cloud.members()[0]) == "running", "the group's first", TIMEOUT, 0.1)
        cloud.launched.update(cloud.members())
        plain, policies, recorded, running = [], [], [], []
        for run in range(args.runs):
            plain.append(baseline(cloud, image_id))
            to_policy, to_record, to_running = alarm_to_running(cloud)
            policies.append(to_policy)
            recorded.append(to_record)
            running.append(to_running)
            progress(f"run {run + 1}: plain {plain[-1] * 1000:.0f} ms, alarm to running "
                     f"{to_running * 1000:.0f} ms")
        hypervisor = ("qemu:///system (real guests)" if args.real else
                      "a burst target (a second eucalite, fake hypervisor)" if args.burst else
                      "the fake hypervisor")
        print(f"Auto Scaling, alarm to running, on {hypervisor}, {args.runs} runs")
        print(line("baseline: RunInstances -> running", plain))
        print(line("alarm fired -> desired capacity changed", policies))
        print(line("alarm fired -> instance in the group", recorded))
        print(line("alarm fired -> instance running", running))
        print(f"  overhead of the alarm path over a plain launch: "
              f"{(statistics.median(running) - statistics.median(plain)) * 1000:.1f} ms "
              "(median)")

    run_cleaning_up(body, top)


if __name__ == "__main__":
    sys.exit(main())
