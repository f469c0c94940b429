#!/usr/bin/env python3
"""Benchmark: the burst reconciler's cost with 1,000 instances on a remote, beside the bare
cost of listing them (issue 19).

The remote is moto_server (in memory, over HTTP: botocore builds, signs and parses every
page as it would against AWS) holding N instances tagged as this cloud's, and an
in-process eucalite (SQLite in a fresh data directory under /tmp) with the N matching
instance rows on one burst target. Measured, each as the median of --runs passes:

* describe: the bare listing (Remote.ours: DescribeInstances filtered by the cloud tag,
  in pages of 1,000), its runs alternating with the quiet passes;
* quiet pass: one reconcile_target pass when nothing changed (the listing, one query of
  the rows, the comparisons; no writes);
* busy pass: a pass after 10 % of the remote instances were stopped behind the cloud's
  back (each row follows with a compare-and-swap write), then made to run again;
* the same quiet pass against an in-process remote (the listing costs nothing), the local
  share alone.

    python bench/bench_burst_reconcile.py [--instances 1000] [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import moto_subprocess, progress, skip  # noqa: E402


def median_seconds(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import boto3

    from burstutil import FakeRemote
    from eucalite import accounts, create_app
    from eucalite.burst import reconcile, sealed
    from eucalite.burst.models import BurstTarget
    from eucalite.burst.remote import CLOUD_TAG, INSTANCE_TAG, Endpoint, Remote
    from eucalite.compute.models import Instance
    from eucalite.db import db

    moto = moto_subprocess()
    if moto is None:
        skip("moto_server is not installed (pip install moto[server])")
    process, url = moto
    try:
        data_dir = tempfile.mkdtemp(prefix="bench-burst-", dir="/tmp")
        app = create_app({"data_dir": data_dir, "node": False})
        services = app.extensions["eucalite"]
        cloud_id = sealed.cloud_id(data_dir)
        ec2 = boto3.client("ec2", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench")
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        progress(f"launching {args.instances} instances in moto_server")
        local_ids = [f"i-{index:017x}" for index in range(args.instances)]
        remote_of: dict[str, dict] = {}
        for start in range(0, args.instances, 100):
            batch = local_ids[start:start + 100]
            for local_id in batch:      # one call per instance: each its own tag
                item = ec2.run_instances(
                    ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                    TagSpecifications=[{"ResourceType": "instance", "Tags": [
                        {"Key": INSTANCE_TAG, "Value": local_id},
                        {"Key": CLOUD_TAG, "Value": cloud_id}]}])["Instances"][0]
                remote_of[local_id] = item
        remote = Remote(Endpoint(url, "us-east-1", "AKIDBENCH", "bench"), cloud_id)
        listed = {item.local_id: item for item in remote.ours()}
        progress(f"recording {args.instances} local rows")
        with app.app_context():
            services.burst.add_target("bench", endpoint_url=url, region="us-east-1",
                                      access_key_id="AKIDBENCH", secret_access_key="bench",
                                      image_map={"emi-00000001": ami},
                                      type_map={"m1.small": "t3.micro"})
            owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
            for local_id in local_ids:
                item = listed[local_id]
                db.session.add(Instance(
                    id=local_id, reservation_id="r-bench", owner_id=owner,
                    image_id="emi-00000001", instance_type="m1.small", state="running",
                    zone="burst-bench", burst_target="bench", remote_id=item.remote_id,
                    private_ip=item.private_ip, public_ip=item.public_ip))
            db.session.commit()

        def one_pass(against):
            with app.app_context():
                target = db.session.get(BurstTarget, "bench")
                report = reconcile.reconcile_target(target, against, lambda _: None, set())
                db.session.remove()
            return report

        assert one_pass(remote).changed == {}, "the rows should match the remote"
        # interleaved, so a remote (or a machine) slowing down over the run weighs on both
        describe_times, quiet_times = [], []
        for _ in range(args.runs):
            describe_times.append(median_seconds(remote.ours, 1))
            quiet_times.append(median_seconds(lambda: one_pass(remote), 1))
        describe, quiet = statistics.median(describe_times), statistics.median(quiet_times)

        busy_times = []
        tenth = [remote_of[local_id]["InstanceId"] for local_id in local_ids[::10]]
        for _ in range(args.runs):
            ec2.stop_instances(InstanceIds=tenth)
            start = time.perf_counter()
            report = one_pass(remote)
            busy_times.append(time.perf_counter() - start)
            assert len(report.changed) == len(tenth), report.changed
            ec2.start_instances(InstanceIds=tenth)
            with app.app_context():     # back to running, as StartInstances would do
                db.session.execute(db.update(Instance).where(Instance.state == "stopped")
                                   .values(state="running"))
                db.session.commit()
            one_pass(remote)
        busy = statistics.median(busy_times)

        fake = FakeRemote(cloud_id)
        for local_id, item in listed.items():
            fake.instances[item.remote_id] = {
                "state": "running", "tags": {INSTANCE_TAG: local_id, CLOUD_TAG: cloud_id},
                "private_ip": item.private_ip, "public_ip": item.public_ip}
        local_only = median_seconds(lambda: one_pass(fake), args.runs)
    finally:
        process.terminate()
        process.wait(10)

    count = args.instances
    print(f"burst reconcile, {count} remote instances (moto_server over HTTP; SQLite; "
          f"median of {args.runs})")
    print(f"  describe (bare listing)              {describe * 1000:8.0f} ms")
    print(f"  reconcile pass, nothing changed      {quiet * 1000:8.0f} ms  "
          f"({quiet / describe:.2f}x the listing)")
    print(f"  reconcile pass, {len(tenth)} stopped remotely  {busy * 1000:8.0f} ms")
    print(f"  reconcile pass, in-process remote    {local_only * 1000:8.0f} ms  "
          "(the local share alone)")


if __name__ == "__main__":
    main()
