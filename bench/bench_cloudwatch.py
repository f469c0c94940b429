#!/usr/bin/env python3
"""Benchmark: CloudWatch through eucalite beside moto_server, in one run.

Starts `eucalite serve --no-node` (fresh data directory) and `moto_server` (in memory) on
loopback and measures, with boto3 (awsJson, what it sends today):

* PutMetricData ingest, datapoints per second: calls of 1,000 datums (the most one call
  may carry, how agents batch) and of 20 datums, each from 1 and 4 client threads; the
  datums spread over 100 metrics (one dimension each) and the last hour;
* GetMetricStatistics over 7 days of 1-minute data of one metric (10,080 datapoints
  published first): Period 3600 (168 datapoints) and 600 (1,008), p50/p99 latency of
  repeated calls;
* GetMetricData of the same range (Period 3600, Average), p50/p99.

    python bench/bench_cloudwatch.py [--quick] [--skip-moto]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import tempfile
import threading
import time

import boto3
from botocore.config import Config

from common import moto_subprocess, progress, serve_subprocess, unwind_on_signals

UTC = dt.timezone.utc


def client(endpoint, key, secret, region):
    return boto3.session.Session().client(
        "cloudwatch", endpoint_url=endpoint, region_name=region, aws_access_key_id=key,
        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def datums(count: int, offset: int, now: dt.datetime) -> list[dict]:
    return [{"MetricName": "Load", "Dimensions": [{"Name": "Host",
                                                  "Value": f"h{(offset + i) % 100}"}],
             "Value": float((offset + i) % 97),
             "Timestamp": now - dt.timedelta(seconds=(offset + i) % 3600)}
            for i in range(count)]


def ingest(make_client, per_call: int, threads: int, calls: int) -> float:
    """Datapoints per second over *calls* PutMetricData calls of *per_call* datums."""
    clients = [make_client() for _ in range(threads)]
    now = dt.datetime.now(UTC)
    batches = [datums(per_call, n * per_call, now) for n in range(calls)]

    def work(index: int) -> None:
        for batch in batches[index::threads]:
            clients[index].put_metric_data(Namespace="Bench/Ingest", MetricData=batch)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_call * calls / (time.perf_counter() - started)


def seed_week(cw) -> dt.datetime:
    """7 days of one value per minute for Bench/Week Series; returns the range's end."""
    end = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    start = end - dt.timedelta(days=7)
    points = [{"MetricName": "Series", "Value": float(m % 60),
               "Timestamp": start + dt.timedelta(minutes=m)} for m in range(7 * 1440)]
    for index in range(0, len(points), 1000):
        cw.put_metric_data(Namespace="Bench/Week", MetricData=points[index:index + 1000])
    return end


def latencies(call, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def measure(name: str, make_client, quick: bool) -> dict[str, str]:
    calls = 6 if quick else 20
    results = {}
    for per_call, threads in ((1000, 1), (1000, 4), (20, 1), (20, 4)):
        progress(f"{name}: PutMetricData {per_call} datums x {calls} calls, {threads} threads")
        rate = ingest(make_client, per_call, threads, calls if per_call == 1000 else calls * 10)
        results[f"PutMetricData {per_call}/call, {threads} thread(s)"] = f"{rate:,.0f} dp/s"
    cw = make_client()
    progress(f"{name}: seeding 7 days of 1-minute data")
    end = seed_week(cw)
    start = end - dt.timedelta(days=7)
    repeats = 10 if quick else 40
    for period in (3600, 600):
        p50, p99 = latencies(lambda: cw.get_metric_statistics(
            Namespace="Bench/Week", MetricName="Series", StartTime=start, EndTime=end,
            Period=period, Statistics=["Average", "Maximum", "SampleCount"]), repeats)
        results[f"GetMetricStatistics 7 d, period {period}"] = f"p50 {p50:.1f} / p99 {p99:.1f} ms"
    p50, p99 = latencies(lambda: cw.get_metric_data(
        StartTime=start, EndTime=end, MetricDataQueries=[{"Id": "s", "MetricStat": {
            "Metric": {"Namespace": "Bench/Week", "MetricName": "Series"},
            "Period": 3600, "Stat": "Average"}}]), repeats)
    results["GetMetricData 7 d, period 3600"] = f"p50 {p50:.1f} / p99 {p99:.1f} ms"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    parser.add_argument("--skip-moto", action="store_true", help="eucalite only")
    args = parser.parse_args()
    unwind_on_signals()
    started = []
    columns = {}
    with tempfile.TemporaryDirectory(prefix="bench-cw-", dir="/tmp") as scratch:
        try:
            process, _, values = serve_subprocess(os.path.join(scratch, "data"),
                                                  os.path.join(scratch, "serve.log"))
            started.append(process)
            endpoint = values["AWS_ENDPOINT_URL_S3"].rstrip("/") + "/services/CloudWatch"
            columns["eucalite"] = measure("eucalite", lambda: client(
                endpoint, values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"],
                values["AWS_DEFAULT_REGION"]), args.quick)
            moto = None if args.skip_moto else moto_subprocess()
            if moto is not None:
                started.append(moto[0])
                columns["moto_server"] = measure("moto_server", lambda: client(
                    moto[1], "testing", "testing", "us-east-1"), args.quick)
        finally:
            for process in started:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    names = list(columns)
    rows = list(columns[names[0]])
    width = max(len(row) for row in rows) + 2
    print(f"{'':{width}}" + "".join(f"{name:>28}" for name in names))
    for row in rows:
        print(f"{row:{width}}" + "".join(f"{columns[name].get(row, '-'):>28}"
                                         for name in names))


if __name__ == "__main__":
    main()
