#!/usr/bin/env python3
"""Benchmark: what CloudWatch's collector (eucalite/cloudwatch/collector.py) costs the
serving process with 50 running instances, beside the bare hypervisor call it makes.

On a fresh data directory, a live eucalite with node duty on the fake hypervisor and a node
big enough for the instances; 50 instances launched through boto3 (``--detailed`` of them
with detailed monitoring), their counters grown between passes as a busy guest's would.
Measured, as CPU time of the calling thread (``time.thread_time``: the pass's own work, not
the idle HTTP threads) and wall time, median and max over ``--passes`` passes:

* the bare driver call (``FakeDriver.counters()``: every domain's counters);
* a full pass: every instance due (the clock moved a metrics_interval), so every AWS/EC2,
  status and Eucalite/Node datapoint is computed and written to the database;
* a detailed-only pass: 10 s later, only the detailed instances are due.

The cost per minute is a full pass plus five detailed-only passes (one per 10 s); its share
of one core is that CPU time over 60 s. The fake's counters call is nearly free; with
EUCALITE_TEST_LIBVIRT_URI set (a real libvirtd) and the tiny guest built
(EUCALITE_TEST_GUEST_KERNEL/_RAMDISK), ``--libvirt-domains`` real guests are started too and
``LibvirtDriver.counters()`` (one getAllDomainStats call) is timed over them: what a pass
adds on a real node.

    python bench/bench_cloudwatch_collect.py [--instances 50] [--detailed 10] [--passes 20]
                                             [--libvirt-domains 8]
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))      # liveutil, ec2util

from common import until  # noqa: E402
from ec2util import make_image, wait_for_state  # noqa: E402
from liveutil import start_live_node, stop_live  # noqa: E402

from eucalite.cloudwatch.collector import Collector  # noqa: E402
from eucalite.cluster.models import Node  # noqa: E402
from eucalite.cluster.virt.driver import DiskCounters, NicCounters  # noqa: E402
from eucalite.db import db  # noqa: E402


def measure(call) -> tuple[float, float]:
    """(CPU ms of this thread, wall ms) of one *call()*."""
    cpu, wall = time.thread_time(), time.perf_counter()
    call()
    return (time.thread_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def summary(samples: list[tuple[float, float]]) -> str:
    cpu = [c for c, _ in samples]
    wall = [w for _, w in samples]
    return (f"CPU median {statistics.median(cpu):8.2f} ms  max {max(cpu):8.2f} ms   "
            f"wall median {statistics.median(wall):8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--detailed", type=int, default=10)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--libvirt-domains", type=int, default=8)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)     # no line per request
    with tempfile.TemporaryDirectory(prefix="eucalite-bench-cw-", dir="/tmp") as tmp:
        live, server = start_live_node(Path(tmp) / "data", hypervisor="fake")
        try:
            run(live, args)
        finally:
            stop_live(live, server)
    uri = os.environ.get("EUCALITE_TEST_LIBVIRT_URI", "")
    kernel = os.environ.get("EUCALITE_TEST_GUEST_KERNEL")
    ramdisk = os.environ.get("EUCALITE_TEST_GUEST_RAMDISK")
    if args.libvirt_domains and uri.startswith("qemu") and kernel and ramdisk:
        real_libvirt(uri, kernel, ramdisk, args.libvirt_domains, args.passes)
    else:
        print("  (no real libvirt: set EUCALITE_TEST_LIBVIRT_URI and "
              "EUCALITE_TEST_GUEST_KERNEL/_RAMDISK to time LibvirtDriver.counters())")


def real_libvirt(uri: str, kernel: str, ramdisk: str, count: int, passes: int) -> None:
    """Time ``LibvirtDriver.counters()`` over *count* running tiny guests of a cloud id of
    the benchmark's own (it sees no other domain)."""
    from eucalite.cluster.virt.driver import DiskSpec, DomainSpec
    from eucalite.cluster.virt.libvirt_driver import LibvirtDriver
    top = Path(tempfile.mkdtemp(prefix="eucalite-bench-cw-virt-"))
    top.chmod(0o711)
    driver = LibvirtDriver(uri, cloud=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        for index in range(count):
            root = top / f"{index}.raw"
            with open(root, "wb") as f:
                f.truncate(16 * 2 ** 20)
            driver.spawn(DomainSpec(
                instance_id=f"i-bench{index:04d}", vcpus=1, memory_mb=192, kernel=kernel,
                ramdisk=ramdisk, cmdline="console=ttyS0",
                disks=[DiskSpec("vda", str(root), format="raw")],
                console_log=str(top / f"{index}.log")))
        # past the guests' boot (the tiny guest marks it on its console)
        until(lambda: all(b"EUCALITE-GUEST boot" in driver.console_output(f"i-bench{i:04d}")
                          for i in range(count)), "the guests to boot", 300, poll=1)
        samples = [measure(driver.counters) for _ in range(passes)]
        print(f"  LibvirtDriver.counters() over {count} running guests: {summary(samples)}")
    finally:
        for instance_id in list(driver.list_domains()):
            driver.destroy(instance_id)
        driver.close()
        shutil.rmtree(top, ignore_errors=True)


def run(live, args) -> None:
    services = live.services
    with live.app.app_context():
        for node in db.session.execute(db.select(Node)).scalars():
            node.cores = node.memory_mb = node.disk_gb = 100_000
        db.session.commit()
    ec2 = live.client("ec2")
    image = make_image(live)
    ids: list[str] = []
    while len(ids) < args.instances:
        count = min(10, args.instances - len(ids))
        ids += [item["InstanceId"] for item in ec2.run_instances(
            ImageId=image, MinCount=count, MaxCount=count)["Instances"]]
    wait_for_state(ec2, ids, "running", timeout=120)
    if args.detailed:
        ec2.monitor_instances(InstanceIds=ids[:args.detailed])
    driver = services.cluster.driver
    collector = Collector(services, {"metrics_interval": 60, "detailed_metrics_interval": 10})

    def grow() -> None:
        for instance_id in ids:
            driver.add_usage(instance_id, cpu_seconds=3.0,
                             disks={"vda": DiskCounters(65536, 32768, 16, 8)},
                             nic=NicCounters(10_000, 5_000, 40, 30))

    now = time.time() - 3600 * 2

    def collect(at: float) -> int:
        with live.app.app_context():
            return collector.collect(now=at)

    collect(now)            # primes every instance (and publishes the S3 and node data)
    bare, full, detailed, published = [], [], [], 0
    for _ in range(args.passes):
        bare.append(measure(driver.counters))
        grow()
        now += 60
        full.append(measure(lambda: collect(now)))
        grow()
        detailed.append(measure(lambda: collect(now + 10)))
    published = collect(now + 60)
    cpu_per_minute = statistics.median(c for c, _ in full) + \
        5 * statistics.median(c for c, _ in detailed)
    print(f"CloudWatch collector, {args.instances} instances ({args.detailed} detailed), "
          f"{args.passes} passes, SQLite, fake hypervisor")
    print(f"  bare driver counters() call: {summary(bare)}")
    print(f"  full pass (all due):         {summary(full)}   ({published} datapoints)")
    print(f"  detailed-only pass:          {summary(detailed)}")
    print(f"  per minute (1 full + 5 detailed-only): {cpu_per_minute:.1f} ms CPU = "
          f"{cpu_per_minute / 600:.3f} % of one core")


if __name__ == "__main__":
    main()
