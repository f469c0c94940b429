#!/usr/bin/env python3
"""Benchmark: signed EC2 Query calls through eucalite beside moto_server, in one run.

Starts `eucalite serve` (gunicorn, one worker, threads) and `moto_server` on loopback,
then times DescribeRegions and DescribeAvailabilityZones with boto3, sequentially and
from several threads at once, and prints latency percentiles and throughput side by side.
Also times SigV4 verification alone (eucalite.auth) beside botocore signing the same
request, the raw cost of the operation.

    python bench/bench_ec2_api.py [--requests 400] [--threads 4]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

from common import describe, free_port, timed, wait_for  # bench/common.py (run as bench/<script>.py)

BIN = Path(sys.executable).parent


def start_eucalite(data_dir: str):
    port = free_port()
    env = dict(os.environ, EUCALITE_DATA_DIR=data_dir, EUCALITE_PORT=str(port),
               EUCALITE_LOG_LEVEL="WARNING")
    process = subprocess.Popen([str(BIN / "eucalite"), "serve", "--no-node"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    creds = subprocess.run([str(BIN / "eucalite"), "credentials"], env=env, text=True,
                           capture_output=True, check=True).stdout
    values = dict(line[len("export "):].split("=", 1) for line in creds.splitlines()
                  if line.startswith("export "))
    return process, dict(endpoint=values["AWS_ENDPOINT_URL_EC2"],
                         key=values["AWS_ACCESS_KEY_ID"].strip("'"),
                         secret=values["AWS_SECRET_ACCESS_KEY"].strip("'"),
                         region=values["AWS_DEFAULT_REGION"])


def start_moto():
    moto = shutil.which("moto_server", path=str(BIN)) or shutil.which("moto_server")
    if moto is None:
        return None, None
    port = free_port()
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(port)
    return process, dict(endpoint=f"http://127.0.0.1:{port}", key="testing",
                         secret="testing", region="us-east-1")


def client(target):
    return boto3.session.Session().client(
        "ec2", endpoint_url=target["endpoint"], region_name=target["region"],
        aws_access_key_id=target["key"], aws_secret_access_key=target["secret"],
        config=Config(retries={"max_attempts": 1}, max_pool_connections=32))


def concurrent(target, operation: str, count: int, threads: int) -> float:
    """Requests per second with *threads* clients each making count/threads calls."""
    clients = [client(target) for _ in range(threads)]
    for each in clients:
        getattr(each, operation)()
    per_thread = count // threads
    workers = [threading.Thread(target=lambda c=each: [getattr(c, operation)()
                                                        for _ in range(per_thread)])
               for each in clients]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return per_thread * threads / (time.perf_counter() - start)


def bench_verification(count: int) -> None:
    """SigV4 verification alone, beside botocore producing the same signature."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from eucalite.accounts import Principal
    from eucalite.auth import RequestView, authenticate

    principal = Principal("123456789012", "a", "u", "admin", "AKIAEXAMPLE")
    body = b"Action=DescribeRegions&Version=2016-11-15"
    url = "http://127.0.0.1:8773/services/compute"

    def sign():
        request = AWSRequest(method="POST", url=url, data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        botocore.auth.SigV4Auth(Credentials("AKIAEXAMPLE", "s" * 40), "ec2",
                                "eucalyptus").add_auth(request)
        return request

    signed = sign()
    headers = {key.lower(): value for key, value in signed.headers.items()}
    headers["host"] = "127.0.0.1:8773"
    view = RequestView("POST", "/services/compute", "", headers, [])
    lookup = lambda key: (principal, "s" * 40)  # noqa: E731
    sign_samples = timed(sign, count, warm=0)
    verify_samples = timed(lambda: authenticate(view, "ec2", body=body, lookup=lookup), count, warm=0)
    print(f"  {'botocore SigV4 sign (baseline)':34s} {describe(sign_samples, 0.99)}")
    print(f"  {'eucalite SigV4 verify':34s} {describe(verify_samples, 0.99)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="eucalite-bench-")
    euca_process, euca = start_eucalite(data_dir)
    moto_process, moto = start_moto()
    targets = [("eucalite", euca)] + ([("moto_server", moto)] if moto else [])
    try:
        print(f"EC2 Query API over HTTP on loopback, {args.requests} calls each "
              f"(boto3, SigV4, sequential)")
        for operation in ("describe_regions", "describe_availability_zones"):
            for name, target in targets:
                each = client(target)
                getattr(each, operation)()        # warm-up: connection, model loading
                samples = timed(getattr(each, operation), args.requests, warm=0)
                print(f"  {operation:28s} {name:12s} {describe(samples, 0.99)}")
        print(f"Throughput with {args.threads} client threads (describe_regions)")
        for name, target in targets:
            rate = concurrent(target, "describe_regions", args.requests, args.threads)
            print(f"  {name:12s} {rate:7.0f} req/s")
        if moto is None:
            print("  (moto_server not installed: pip install 'moto[server]' for the baseline)")
        print(f"Signature V4, in process, {args.requests * 5} requests")
        bench_verification(args.requests * 5)
    finally:
        for process in (euca_process, moto_process):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
