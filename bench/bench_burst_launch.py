#!/usr/bin/env python3
"""Benchmark: RunInstances to ``running``, a local launch beside a burst launch (issue 19).

Two eucalites in this process, each served on loopback: the *remote* one has a node on the
fake hypervisor (room for all the launches); the *local* one has no node at all, a burst
target pointing at the remote (when-full) and its burst reconciler running
(``burst_interval`` 30 s: the follow-up after a launch is what is measured). Timed with
boto3, polling DescribeInstances every 20 ms, one launch at a time:

* local: RunInstances on the remote cloud itself, until DescribeInstances says running;
* burst: RunInstances on the local cloud (it overflows to the remote), until the local
  DescribeInstances says running: the remote launch on the worker, the remote's own
  spawn, and the reconciler's follow-up (every 2 s while an instance is pending).

    python bench/bench_burst_launch.py [--launches 10]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import progress  # noqa: E402


def until_running(ec2, instance_id: str, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [reservation] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        [item] = reservation["Instances"]
        if item["State"]["Name"] == "running":
            return time.perf_counter()
        if item["State"]["Name"] == "terminated":
            raise SystemExit(f"{instance_id} ended: {item.get('StateReason')}")
        time.sleep(0.02)
    raise SystemExit(f"{instance_id} did not run within {timeout} s")


def launch_seconds(ec2, image_id: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        [item] = ec2.run_instances(ImageId=image_id, InstanceType="m1.small", MinCount=1,
                                   MaxCount=1)["Instances"]
        times.append(until_running(ec2, item["InstanceId"]) - start)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(times):6.2f} s   p90 {p90:6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--launches", type=int, default=10)
    args = parser.parse_args()

    from ec2util import make_image
    from eucalite.burst import reconcile
    from eucalite.cluster.models import Node
    from eucalite.db import db
    from liveutil import start_live, start_live_node, stop_live

    root = Path(tempfile.mkdtemp(prefix="bench-burst-launch-", dir="/tmp"))
    remote, remote_server = start_live_node(root / "remote", hypervisor="fake")
    local, local_server = start_live(root / "local", burst_interval=30)
    try:
        with remote.app.app_context():
            for node in db.session.execute(db.select(Node)).scalars():
                node.cores = node.memory_mb = node.disk_gb = 100_000
            db.session.commit()
        make_image(remote, "emi-7e7e7e7e")
        make_image(local, "emi-0a1b2c3d")
        with local.app.app_context():
            local.app.extensions["eucalite"].burst.add_target(
                "remote", endpoint_url=remote.endpoints["ec2"], region=remote.region,
                access_key_id=remote.key_id, secret_access_key=remote.secret,
                image_map={"emi-0a1b2c3d": "emi-7e7e7e7e"}, type_map={"m1.small": "m1.small"})
        stop = reconcile.start(local.app, 30)
        progress(f"{args.launches} local launches")
        local_times = launch_seconds(remote.client("ec2"), "emi-7e7e7e7e", args.launches)
        progress(f"{args.launches} burst launches")
        burst_times = launch_seconds(local.client("ec2"), "emi-0a1b2c3d", args.launches)
        stop.set()
    finally:
        local_server.shutdown()
        local.app.extensions["eucalite"].compute.worker.shutdown()
        stop_live(remote, remote_server)
    print(f"RunInstances to running, {args.launches} launches one at a time "
          "(fake hypervisor; burst into a second eucalite on loopback)")
    print(f"  local launch   {summary(local_times)}")
    print(f"  burst launch   {summary(burst_times)}")


if __name__ == "__main__":
    main()
