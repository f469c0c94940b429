#!/usr/bin/env python3
"""Benchmark: RunInstances placement with 100 nodes against 1 node, in the same run.

For each cluster size (1 node, then 100 nodes in one zone, each a fake host: the test
suite's tests/clusterutil.py, so the real scheduler, database and job worker run), on a
fresh data directory and a live server on loopback:

* placement: ``nodes.reserve_placed`` in process (read every node of the zone under the
  write lock, choose, record), each reservation released again, p50/p95 in ms;
* RunInstances: boto3 calls of MaxCount=1 with no zone (the zone choice, placement, the
  instance records; the spawn runs after the reply), p50/p95 in ms.

Nodes are big enough that no call runs out of room, so every call does the same work.

    python bench/scheduler.py [--calls 200] [--policy GREEDY]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))      # clusterutil, liveutil, ec2util

from clusterutil import start_cluster  # noqa: E402
from ec2util import make_image  # noqa: E402

from eucalite.cluster import nodes  # noqa: E402
from eucalite.cluster.scheduler import Need, Overcommit  # noqa: E402


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fmt(samples: list[float]) -> str:
    return (f"p50 {pct(samples, 0.5) * 1000:7.2f} ms  p95 {pct(samples, 0.95) * 1000:7.2f} ms"
            f"  mean {statistics.fmean(samples) * 1000:7.2f} ms")


def measure(count: int, calls: int, policy: str) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="eucalite-bench-sched-") as tmp:
        cluster = start_cluster(Path(tmp) / "data", {"zone-a": count}, cores=calls * 2 + 8,
                                memory_mb=(calls * 2 + 8) * 512, disk_gb=(calls * 2 + 8) * 10,
                                scheduler=policy)
        try:
            make_image(cluster.live)
            app, config = cluster.live.app, cluster.services.config
            need = Need(1, 256, 5)
            placement = []
            with app.app_context():
                for _ in range(calls):
                    start = time.perf_counter()
                    _, [node_id] = nodes.reserve_placed(None, ["zone-a"], need, 1, 1, policy,
                                                        Overcommit.of(config))
                    placement.append(time.perf_counter() - start)
                    nodes.release(node_id, need)
            ec2 = cluster.live.client("ec2")
            run = []
            for _ in range(calls):
                start = time.perf_counter()
                ec2.run_instances(ImageId="emi-0a1b2c3d", MinCount=1, MaxCount=1,
                                  InstanceType="m1.small")
                run.append(time.perf_counter() - start)
            return {"placement": placement, "RunInstances": run}
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--policy", default="GREEDY")
    args = parser.parse_args()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    import logging
    logging.disable(logging.WARNING)
    results = {count: measure(count, args.calls, args.policy) for count in (1, 100)}
    print(f"policy {args.policy}, {args.calls} calls each")
    for what in ("placement", "RunInstances"):
        for count, samples in results.items():
            print(f"{what:13} {count:4d} node(s): {fmt(samples[what])}")


if __name__ == "__main__":
    main()
