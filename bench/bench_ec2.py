#!/usr/bin/env python3
"""Benchmark: RunInstances and DescribeInstances at scale, eucalite beside moto_server.

Both servers run on loopback in one run, each in its own process, and are driven by the
same boto3 code:

* RunInstances throughput: calls of MaxCount=10, then calls of MaxCount=1, in instances/s
  (the time for the API calls to return), plus the time until every instance launched
  reads ``running`` (eucalite spawns asynchronously on its compute worker threads).
* DescribeInstances latency, p50/p95, with 100, 1,000 and 5,000 instances in the account:
  one unpaginated call (AWS returns everything by default) through boto3 (includes boto3
  parsing the XML), the same call signed by hand and sent raw (server time plus transfer,
  no parsing), boto3 paging with MaxResults=1000, and one page of 100 from the middle of
  the list (MaxResults=100 with a NextToken) through boto3 and raw: a paging client's cost
  per call, which should not grow with the account.

eucalite runs on the fake hypervisor driver. The fake node offers 8 cores and there is no
configuration knob for its capacity, so eucalite is started by this script in a child
process (``bench_ec2.py --serve-eucalite``): ``create_app`` with node duty on the fake
driver, the node's cores/memory/disk raised in its database row, a machine image recorded
directly (as tests/test_ec2_instances.py does), then served by werkzeug's threaded server
(not gunicorn). moto_server (also werkzeug) runs as its own process; its AMI is one of the
Amazon-owned images it knows.

    python bench/bench_ec2.py [--quick]      # --quick: 100 / 500 / 1,000 instances
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import free_port, wait_for  # bench/common.py (run as bench/<script>.py)

BIN = Path(sys.executable).parent
IMAGE_ID = "emi-0be0c4a1"
BIG = 10_000_000


# -- the eucalite child process --------------------------------------------------------------

def serve_eucalite(data_dir: str) -> None:
    """Child mode: eucalite with node duty on the fake driver, big capacity, one image."""
    import logging

    from werkzeug.serving import make_server

    from eucalite import accounts, create_app
    from eucalite.cluster.models import Node
    from eucalite.compute.models import Image
    from eucalite.db import db

    logging.disable(logging.WARNING)
    port = free_port()
    app = create_app({"data_dir": data_dir, "port": port, "host": "127.0.0.1",
                      "node": True, "hypervisor": "fake", "log_level": "WARNING",
                      # room for every instance the run launches (a /24 holds 253)
                      "instance_subnet": "10.128.0.0/18"},
                     environ={})
    services = app.extensions["eucalite"]
    with app.app_context():
        problem = services.cluster.start_node_duty()
        if problem:
            raise SystemExit(problem)
        for node in db.session.execute(db.select(Node)).scalars():
            node.cores, node.memory_mb, node.disk_gb = BIG, BIG, BIG
        owner = accounts.get_account("eucalyptus").id
        db.session.add(Image(id=IMAGE_ID, owner_id=owner, kind="machine", name="bench",
                             state="available"))
        db.session.commit()
        key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
        info = dict(endpoint=f"http://127.0.0.1:{port}/services/compute", key=key.id,
                    secret=key.secret, region=app.config["EUCALITE"]["region"],
                    image=IMAGE_ID)
    server = make_server("127.0.0.1", port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the parent decides when we stop
    print(json.dumps(info), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        services.compute.worker.pool.shutdown(wait=False, cancel_futures=True)


# -- the parent: starting and stopping servers -----------------------------------------------

def start_eucalite(data_dir: str):
    # stderr is inherited: request logging is off, so it only carries start-up failures
    process = subprocess.Popen([sys.executable, os.path.abspath(__file__),
                                "--serve-eucalite", data_dir],
                               stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    line = process.stdout.readline()
    if not line:
        raise SystemExit("eucalite did not start (see stderr above)")
    info = json.loads(line)
    return process, info


def start_moto(log):
    moto = shutil.which("moto_server", path=str(BIN)) or shutil.which("moto_server")
    if moto is None:
        return None, None
    port = free_port()
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=log,
                               start_new_session=True)
    wait_for(port)
    info = dict(endpoint=f"http://127.0.0.1:{port}", key="testing", secret="testing",
                region="us-east-1", image=None)
    ec2 = client(info)
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    info["image"] = sorted(image["ImageId"] for image in images)[0]
    return process, info


def stop(process) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def client(target):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "ec2", endpoint_url=target["endpoint"], region_name=target["region"],
        aws_access_key_id=target["key"], aws_secret_access_key=target["secret"],
        config=Config(retries={"max_attempts": 1}, max_pool_connections=8,
                      read_timeout=300))


# -- measurements ----------------------------------------------------------------------------

def launch(ec2, target, calls: int, per_call: int) -> tuple[float, list[str]]:
    """Seconds for *calls* RunInstances of MinCount=MaxCount=*per_call*, and the ids."""
    ids: list[str] = []
    start = time.perf_counter()
    for _ in range(calls):
        reply = ec2.run_instances(ImageId=target["image"], MinCount=per_call,
                                  MaxCount=per_call, InstanceType="m1.small")
        ids.extend(item["InstanceId"] for item in reply["Instances"])
    return time.perf_counter() - start, ids


def wait_running(ec2, expected: int, timeout: float = 600) -> None:
    """Until none of the account's instances is pending, then check *expected* run."""
    deadline = time.monotonic() + timeout
    while count_state(ec2, "pending"):
        if time.monotonic() > deadline:
            raise SystemExit(f"instances still pending after {timeout:.0f} s")
        time.sleep(0.1)
    running = count_state(ec2, "running")
    if running != expected:
        raise SystemExit(f"{running} instances running, expected {expected}")


def count_state(ec2, state: str) -> int:
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": [state]}])
    return sum(len(r["Instances"]) for page in pages for r in page["Reservations"])


def one_call_params(target) -> dict:
    """What makes DescribeInstances return everything in one reply. AWS (and eucalite) do
    without parameters; moto_server pages at 100 reservations unless MaxResults is given,
    and takes any MaxResults (AWS allows at most 1000)."""
    return {"MaxResults": 1_000_000} if target["name"] == "moto_server" else {}


def throughput(ec2, target, calls: int, per_call: int, already: int) -> tuple[float, float]:
    """(instances/s for the calls, seconds from the first call until all are running)."""
    start = time.perf_counter()
    elapsed, ids = launch(ec2, target, calls, per_call)
    assert len(ids) == calls * per_call, len(ids)
    wait_running(ec2, already + len(ids))
    return len(ids) / elapsed, time.perf_counter() - start


def raw_describe(target, params: dict | None = None):
    """A callable making one DescribeInstances, signed by hand, body unparsed: unpaginated,
    or with *params* (MaxResults, NextToken)."""
    from urllib.parse import quote

    import botocore.auth
    import urllib3
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    pool = urllib3.PoolManager(maxsize=1)
    credentials = Credentials(target["key"], target["secret"])
    params = one_call_params(target) if params is None else params
    body = "Action=DescribeInstances&Version=2016-11-15" + "".join(
        f"&{key}={quote(str(value), safe='')}" for key, value in params.items())

    def call():
        request = AWSRequest(method="POST", url=target["endpoint"], data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        botocore.auth.SigV4Auth(credentials, "ec2", target["region"]).add_auth(request)
        reply = pool.request("POST", target["endpoint"], body=body,
                             headers=dict(request.headers.items()))
        if reply.status != 200:
            raise SystemExit(f"raw DescribeInstances: HTTP {reply.status}: {reply.data[:300]!r}")
        return len(reply.data)
    return call


def samples_of(call, count: int, budget: float) -> list[float]:
    """Up to *count* timed calls after a warm-up; fewer (at least 3) past *budget* s."""
    call()                              # warm-up
    samples: list[float] = []
    while len(samples) < count and (len(samples) < 3 or sum(samples) < budget):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * fraction // 1))          # nearest rank
    return ordered[int(rank) - 1] * 1000


def fmt(samples: list[float]) -> str:
    return f"p50 {pct(samples, 0.5):8.1f} ms  p95 {pct(samples, 0.95):8.1f} ms  (n={len(samples)})"


def describe_tier(ec2, target, expected: int, count: int, budget: float) -> dict[str, list[float]]:
    def boto_all():
        reply = ec2.describe_instances(**one_call_params(target))
        assert "NextToken" not in reply, "server paged an unpaginated call"
        found = sum(len(r["Instances"]) for r in reply["Reservations"])
        assert found == expected, (found, expected)

    def paged():
        found = 0
        for page in ec2.get_paginator("describe_instances").paginate(
                PaginationConfig={"PageSize": 1000}):
            found += sum(len(r["Instances"]) for r in page["Reservations"])
        assert found == expected, (found, expected)

    # A page of 100 from the middle of the list: what one call of a paging client costs,
    # which eucalite cuts in the database (ORDER BY + LIMIT after the token's key), so it
    # should not grow with the account.
    # (moto counts MaxResults in reservations, AWS and eucalite in instances: it may
    # answer the first call whole, and then its page of 100 starts at the beginning.)
    middle = ec2.describe_instances(MaxResults=max(5, expected // 2)).get("NextToken")
    after = {"NextToken": middle} if middle else {}

    def one_page():
        assert ec2.describe_instances(MaxResults=100, **after)["Reservations"]

    return {"boto3, one call": samples_of(boto_all, count, budget),
            "raw HTTP, one call": samples_of(raw_describe(target), count, budget),
            "boto3, MaxResults=1000": samples_of(paged, count // 2, budget / 2),
            "boto3, one page of 100": samples_of(one_page, count, budget / 2),
            "raw HTTP, one page of 100": samples_of(
                raw_describe(target, dict(MaxResults=100, **after)), count, budget / 2)}


# -- the run ---------------------------------------------------------------------------------

T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"  [{time.monotonic() - T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def run(args, targets) -> None:
    tiers = [100, 500, 1000] if args.quick else [100, 1000, 5000]
    # Between the first and second tier the account grows by tiers[1]-tiers[0]: half of it
    # launched by calls of MaxCount=10 and half by calls of MaxCount=1, both timed.
    grow = tiers[1] - tiers[0]
    batch_calls, single_calls = grow // 2 // 10, grow - grow // 2
    reps = {tiers[0]: 40, tiers[1]: 20, tiers[2]: 20}
    budget = 6.0 if args.quick else 10.0     # seconds of samples per method, then stop

    print(f"EC2 RunInstances / DescribeInstances on loopback, boto3 + SigV4, sequential; "
          f"{os.cpu_count()} CPUs")
    print("  eucalite: its own process, create_app on werkzeug's threaded server (not "
          "gunicorn), fake hypervisor, node capacity raised in the DB, sqlite")
    print("  moto_server: its own process (werkzeug), in-memory; it pages DescribeInstances at "
          "100 reservations by default, so its 'one call' passes MaxResults=1000000")
    results: dict[str, dict] = {name: {} for name, _ in targets}
    for name, target in targets:
        ec2 = client(target)
        r = results[name]
        # tier 0 fill (also the warm-up): calls of MaxCount=10
        r["fill0"] = throughput(ec2, target, tiers[0] // 10, 10, 0)
        progress(f"{name}: {tiers[0]} launched")
        r[tiers[0]] = describe_tier(ec2, target, tiers[0], reps[tiers[0]], budget)
        progress(f"{name}: described {tiers[0]}")
        r["batch"] = throughput(ec2, target, batch_calls, 10, tiers[0])
        progress(f"{name}: batch launches timed")
        r["single"] = throughput(ec2, target, single_calls, 1, tiers[0] + batch_calls * 10)
        progress(f"{name}: single launches timed")
        r[tiers[1]] = describe_tier(ec2, target, tiers[1], reps[tiers[1]], budget)
        progress(f"{name}: described {tiers[1]}")
        fill = tiers[2] - tiers[1]
        r["fill2"] = throughput(ec2, target, fill // 100, 100, tiers[1])
        progress(f"{name}: {tiers[2]} launched")
        r[tiers[2]] = describe_tier(ec2, target, tiers[2], reps[tiers[2]], budget)
        progress(f"{name} done")

    print()
    print("RunInstances throughput (API calls returning) and time until all are running")
    rows = [("batch", f"{batch_calls} calls x MaxCount=10 ({batch_calls * 10} instances)"),
            ("single", f"{single_calls} calls x MaxCount=1 ({single_calls} instances)"),
            ("fill2", f"{(tiers[2] - tiers[1]) // 100} calls x MaxCount=100 "
                      f"({tiers[2] - tiers[1]} instances, account at {tiers[1]:,}+)")]
    for key, label in rows:
        print(f"  {label}")
        for name, _ in targets:
            rate, until = results[name][key]
            print(f"    {name:12s} {rate:8.1f} instances/s   all running after {until:7.2f} s")
    print()
    print("DescribeInstances (all instances, unfiltered), latency per call")
    for tier in tiers:
        print(f"  {tier:,} instances in the account")
        for label in ("boto3, one call", "raw HTTP, one call", "boto3, MaxResults=1000",
                      "boto3, one page of 100", "raw HTTP, one page of 100"):
            for name, _ in targets:
                print(f"    {label:26s} {name:12s} {fmt(results[name][tier][label])}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-eucalite":
        serve_eucalite(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="100 / 500 / 1,000 instances instead of 100 / 1,000 / 5,000")
    args = parser.parse_args()

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    data_dir = tempfile.mkdtemp(prefix="eucalite-bench-ec2-")
    log = open(os.path.join(data_dir, "moto_server.log"), "w")     # its request log
    processes = []
    # SIGTERM behaves like Ctrl-C: the finally below stops both servers and removes the dir.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        euca_process, euca = start_eucalite(os.path.join(data_dir, "data"))
        processes.append(euca_process)
        moto_process, moto = start_moto(log)
        processes.append(moto_process)
        targets = [("eucalite", euca)] + ([("moto_server", moto)] if moto else [])
        for name, target in targets:
            target["name"] = name
        if moto is None:
            print("(moto_server not installed: pip install 'moto[server]' for the baseline)")
        run(args, targets)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        interrupted = True
    else:
        interrupted = False
    finally:
        for process in processes:
            stop(process)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    if interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
