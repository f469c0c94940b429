#!/usr/bin/env python3
"""Benchmark: Walrus on a Ceph RGW (the s3 backend) beside the same RGW called directly, in
one run: the proxy's overhead (issue 20).

Needs a running test Ceph cluster (tests/ceph/cluster.sh start DIR writes DIR/env); its
settings come from the EUCALITE_TEST_* environment or ``--env DIR/env``. Both sides use a
gateway the benchmark starts on the cluster (client.rgw.b, ``tcp_nodelay=1``: without it an
RGW's small GETs each wait ~40 ms, Nagle against the client's delayed ACK); ``--rgw-a``
uses the cluster's own gateway as configured instead. Starts
`eucalite serve --no-node` (gunicorn, one worker; fresh data directory) with its buckets'
data in a fresh RGW bucket, and for reference another on files, then measures with boto3,
one client thread, each target in turn:

* 4 KiB PUT and GET (``--ops`` each, after a warm-up call): p50, p95, req/s;
* one 256 MiB PUT (put_object from an open file) and GET (streamed to nowhere), MB/s,
  the best of ``--runs``;
* the peak RSS / PSS of the eucalite server during its 256 MiB transfers (the s3 backend
  buffers one 8 MiB part per stream, never the object).

    flock /tmp/bench.lock .venv/bin/python bench/walrus_ceph.py --env /tmp/ceph-try/env
        [--ops 300] [--runs 3] [--big-mib 256] [--quick]

MB/s is 10^6 bytes per second. The cluster's OSD is a memstore one (RAM), so the figures
are the gateway's and eucalite's costs, not a disk's.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from common import describe, free_port, serve_subprocess, timed, unwind_on_signals
from bench_s3 import PeakRSS, render_memory  # bench/bench_s3.py

BIN = Path(sys.executable).parent
MiB = 1024 * 1024


def load_env(path: str | None) -> dict[str, str]:
    values = {name: value for name, value in os.environ.items()
              if name.startswith("EUCALITE_TEST_")}
    if path:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip():
                values[name.strip()] = value.strip()
    return values


class Target:
    """An S3 endpoint and a bucket to measure in."""

    def __init__(self, name: str, endpoint: str, key: str, secret: str, bucket: str,
                 process: subprocess.Popen | None = None):
        self.name, self.bucket, self.process = name, bucket, process
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        self.client.create_bucket(Bucket=bucket)


def start_eucalite(data_dir: str, log_path: str, backend: dict[str, str]) -> Target:
    """`eucalite serve --no-node` on a free loopback port with *backend* settings
    (EUCALITE_S3_BACKEND...; none: files), in its own session."""
    process, _port, exported = serve_subprocess(data_dir, log_path, settings=backend)
    STARTED.append(process)
    name = "eucalite on RGW" if backend else "eucalite on files"
    return Target(name, exported["AWS_ENDPOINT_URL_S3"], exported["AWS_ACCESS_KEY_ID"],
                  exported["AWS_SECRET_ACCESS_KEY"], "bench", process)


STARTED: list[subprocess.Popen] = []


def stop_all() -> None:
    for process in STARTED:
        if process.poll() is None:
            process.terminate()
    for process in STARTED:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def small(target: Target, ops: int) -> tuple[str, str]:
    body = os.urandom(4096)
    keys = iter(range(10 ** 9))
    put = timed(lambda: target.client.put_object(Bucket=target.bucket,
                                                 Key=f"small/{next(keys)}", Body=body), ops)
    reads = iter(range(10 ** 9))
    get = timed(lambda: target.client.get_object(
        Bucket=target.bucket, Key=f"small/{next(reads) % ops}")["Body"].read(), ops)
    return describe(put), describe(get)


def big(target: Target, source: Path, runs: int) -> tuple[float, float, str]:
    """Best PUT and GET MB/s of *runs* transfers of *source*, and the server's peak memory."""
    size = source.stat().st_size
    puts, gets = [], []
    sampler = PeakRSS(target.process.pid) if target.process else None
    if sampler:
        sampler.__enter__()
    try:
        for run in range(runs):
            with open(source, "rb") as handle:
                start = time.perf_counter()
                target.client.put_object(Bucket=target.bucket, Key="big", Body=handle)
                puts.append(size / (time.perf_counter() - start) / 1e6)
            start = time.perf_counter()
            body = target.client.get_object(Bucket=target.bucket, Key="big")["Body"]
            got = sum(len(chunk) for chunk in body.iter_chunks(1024 * 1024))
            gets.append(size / (time.perf_counter() - start) / 1e6)
            assert got == size, f"{target.name}: GET returned {got} of {size} bytes"
    finally:
        if sampler:
            sampler.__exit__(None, None, None)
    memory = render_memory(sampler.memory) if sampler else "-"
    return max(puts), max(gets), memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", help="a test cluster's env file (tests/ceph/cluster.sh)")
    parser.add_argument("--ops", type=int, default=300, help="4 KiB PUTs and GETs each")
    parser.add_argument("--runs", type=int, default=3, help="256 MiB transfers each")
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="--ops 50 --runs 1 --big-mib 64")
    parser.add_argument("--no-files", action="store_true", help="skip eucalite on files")
    parser.add_argument("--rgw-a", action="store_true",
                        help="measure the cluster's own gateway, not one started here")
    args = parser.parse_args()
    if args.quick:
        args.ops, args.runs, args.big_mib = 50, 1, 64
    settings = load_env(args.env)
    url = settings.get("EUCALITE_TEST_RGW_URL")
    if not url:
        raise SystemExit("no RGW: give --env DIR/env of a cluster tests/ceph/cluster.sh "
                         "started, or export EUCALITE_TEST_RGW_*")
    key, secret = settings["EUCALITE_TEST_RGW_ACCESS_KEY"], \
        settings["EUCALITE_TEST_RGW_SECRET_KEY"]
    unwind_on_signals()
    gateway = None
    if not args.rgw_a:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        os.environ.setdefault("EUCALITE_TEST_CEPH_CONF", settings["EUCALITE_TEST_CEPH_CONF"])
        import cephutil                     # tests/cephutil.py: the second gateway
        port = free_port()
        gateway = cephutil.start_gateway(port)
        url = f"http://127.0.0.1:{port}"
    top = Path(tempfile.mkdtemp(prefix="walrus-ceph-", dir="/tmp"))
    backend_bucket = "eucalite-bench-" + uuid.uuid4().hex[:12]
    direct_bucket = "bench-direct-" + uuid.uuid4().hex[:12]
    targets: list[Target] = []
    try:
        source = top / "big.bin"
        with open(source, "wb") as handle:
            for _ in range(args.big_mib):
                handle.write(os.urandom(MiB))
        targets.append(Target("RGW directly", url, key, secret, direct_bucket))
        targets.append(start_eucalite(str(top / "rgw"), str(top / "rgw.log"), {
            "EUCALITE_S3_BACKEND": "s3", "EUCALITE_S3_BACKEND_URL": url,
            "EUCALITE_S3_BACKEND_ACCESS_KEY": key, "EUCALITE_S3_BACKEND_SECRET_KEY": secret,
            "EUCALITE_S3_BACKEND_BUCKET": backend_bucket}))
        if not args.no_files:
            targets.append(start_eucalite(str(top / "files"), str(top / "files.log"), {}))
        which = "the cluster gateway client.rgw.a" if args.rgw_a else \
            "client.rgw.b, tcp_nodelay=1"
        print(f"gateway {url} ({which})")
        print(f"4 KiB objects: {args.ops} PUTs then {args.ops} GETs, one client thread")
        for target in targets:
            put, get = small(target, args.ops)
            print(f"  {target.name:18} PUT {put}\n  {'':18} GET {get}")
        print(f"{args.big_mib} MiB object: best of {args.runs} (MB/s); server peak RSS / PSS")
        for target in targets:
            put, get, memory = big(target, source, args.runs)
            print(f"  {target.name:18} PUT {put:7.1f}  GET {get:7.1f}  {memory}")
    finally:
        stop_all()
        for bucket in (direct_bucket, backend_bucket):
            _drop(url, key, secret, bucket)
        if gateway is not None:
            cephutil.stop_gateway(gateway)
        _collect_garbage(settings.get("EUCALITE_TEST_CEPH_CONF"))
        subprocess.run(["rm", "-rf", str(top)], check=False)


def _collect_garbage(conf: str | None) -> None:
    """Free now what the run deleted: an RGW keeps a deleted object's data for its garbage
    collector (two hours by default), and a few 256 MiB runs fill the test cluster's 4 GiB
    memstore OSD, after which every write and delete of the cluster hangs."""
    if not conf:
        print("not collecting RGW garbage (no EUCALITE_TEST_CEPH_CONF): run "
              "`radosgw-admin gc process --include-all`", file=sys.stderr)
        return
    subprocess.run(["radosgw-admin", "-c", conf, "gc", "process", "--include-all"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   timeout=600)


def _drop(url: str, key: str, secret: str, bucket: str) -> None:
    """Remove a bucket the benchmark made on the gateway at *url*, with what it holds
    (tests/cephutil.py does it); a failure is reported, and clean-up goes on."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import cephutil
    client = boto3.client("s3", endpoint_url=url, aws_access_key_id=key,
                          aws_secret_access_key=secret, region_name="us-east-1")
    try:
        cephutil.drop_backend_bucket(bucket, client)
    except Exception as error:  # noqa: BLE001 - clean-up goes on
        print(f"could not remove RGW bucket {bucket}: {error}", file=sys.stderr)


if __name__ == "__main__":
    main()
