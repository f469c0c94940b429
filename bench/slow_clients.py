#!/usr/bin/env python3
"""Benchmark: normal-request latency while slow or idle clients hold connections open.

Starts `eucalite serve --no-node` on loopback (fresh data directory) and measures, with
boto3 from 127.0.0.1, the latency of DescribeRegions (EC2, signed POST) and of a 4 KiB S3
GET, first with no other client, then while N slow connections are open, one kind at a time:

* idle: connect and send nothing;
* headers: a request line, then one header byte per second, never finishing the headers;
* body: an EC2 POST announcing a 100 kB body, then one body byte per second.

Slow connections come from 127.0.0.2-127.0.0.11 (the whole 127/8 is loopback; a per-client
connection cap must not stop them before they cost the server anything) and connect to
127.0.0.1 only. One the server closes is opened again, so N stay open all along. Every phase
is bounded: at most --samples calls per operation and --phase-seconds of measuring; a call
that gets no answer within 5 s counts as failed. Everything stops by itself.

    python bench/slow_clients.py [--slow 200] [--samples 100] [--phase-seconds 30]
                                 [--server asyncio,gthread]

--server runs the same phases against each server model in turn (``gthread`` is the former
one, kept selectable with `eucalite serve --server gthread` for this comparison).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

from common import serve_subprocess, unwind_on_signals  # bench/common.py (run as bench/<script>.py)

SOURCES = [f"127.0.0.{index}" for index in range(2, 12)]
KINDS = ("idle", "headers", "body")


# -- the server -----------------------------------------------------------------------------

def start(scratch: str, server: str | None) -> tuple[subprocess.Popen, int, dict[str, str]]:
    """`eucalite serve` on a free port; returns the process, the port and its credentials."""
    return serve_subprocess(os.path.join(scratch, f"data-{server or 'default'}"),
                            os.path.join(scratch, f"{server or 'default'}.log"), server)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)      # its own session: it and its worker
        process.wait()


# -- slow clients -----------------------------------------------------------------------------

class SlowClients:
    """*count* connections of one *kind* kept open on an event loop in a background thread."""

    def __init__(self, port: int, kind: str, count: int):
        self.port, self.kind, self.count = port, kind, count
        self.open = 0
        self.reopened = 0
        self.loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete,
                                        args=(self._main(),), daemon=True)

    def __enter__(self):
        self._thread.start()
        deadline = time.monotonic() + 10
        while self.open < self.count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=15)

    async def _main(self):
        self._stopping = asyncio.Event()
        tasks = [asyncio.ensure_future(self._one(index)) for index in range(self.count)]
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _opening(self) -> bytes:
        host = f"Host: 127.0.0.1:{self.port}\r\n"
        if self.kind == "headers":
            return f"GET /services/compute HTTP/1.1\r\n{host}X-Slow: ".encode()
        if self.kind == "body":
            return (f"POST /services/compute HTTP/1.1\r\n{host}Content-Type: "
                    f"application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
                    f"Action=").encode()
        return b""

    async def _one(self, index: int) -> None:
        source = SOURCES[index % len(SOURCES)]
        first = True
        while not self._stopping.is_set():
            writer = None
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0))
                self.open += 1
                if not first:
                    self.reopened += 1
                first = False
                try:
                    writer.write(self._opening())
                    while not self._stopping.is_set():
                        # one byte a second; a closed connection ends the loop
                        try:
                            data = await asyncio.wait_for(reader.read(4096), timeout=1.0)
                            if not data:
                                break
                        except asyncio.TimeoutError:
                            pass
                        if self.kind != "idle":
                            writer.write(b"a")
                            await writer.drain()
                finally:
                    self.open -= 1
            except (OSError, ConnectionError):
                await asyncio.sleep(0.2)
            finally:
                if writer is not None:
                    writer.close()


# -- measurement --------------------------------------------------------------------------------

def percentile(samples: list[float], quantile: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * quantile))] * 1000


def measure(clients: dict, samples: int, seconds: float) -> dict[str, tuple[list, int]]:
    """Latencies and failures of each operation, alternating, within the bounds."""
    results = {name: ([], 0) for name in clients}
    deadline = time.monotonic() + seconds
    for _ in range(samples):
        for name, call in clients.items():
            if time.monotonic() > deadline:
                return results
            began = time.perf_counter()
            try:
                call()
            except Exception:  # noqa: BLE001 - a timeout or error is a failed call
                latencies, failed = results[name]
                results[name] = (latencies, failed + 1)
                continue
            results[name][0].append(time.perf_counter() - began)
    return results


def run_server(scratch: str, server: str | None, args) -> None:
    process, port, creds = start(scratch, server)
    try:
        session = boto3.session.Session(
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            region_name=creds["AWS_DEFAULT_REGION"])
        config = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=5,
                        s3={"addressing_style": "path"})
        ec2 = session.client("ec2", endpoint_url=creds["AWS_ENDPOINT_URL_EC2"], config=config)
        s3 = session.client("s3", endpoint_url=creds["AWS_ENDPOINT_URL_S3"], config=config)
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="small", Body=os.urandom(4096))
        calls = {"DescribeRegions": ec2.describe_regions,
                 "S3 GET 4 KiB": lambda: s3.get_object(Bucket="bench",
                                                       Key="small")["Body"].read()}
        measure(calls, 5, 10)                                   # warm up
        print(f"server: {server or 'default'}  ({args.slow} slow connections per phase, "
              f"at most {args.samples} calls per operation or {args.phase_seconds:.0f} s)")
        print(f"  {'slow connections':22s}{'operation':18s}{'ok':>5s}{'failed':>8s}"
              f"{'p50 ms':>9s}{'p99 ms':>9s}{'held open':>11s}")
        for kind in ("none", *KINDS):
            if kind == "none":
                results, held = measure(calls, args.samples, args.phase_seconds), "-"
            else:
                with SlowClients(port, kind, args.slow) as slow:
                    results = measure(calls, args.samples, args.phase_seconds)
                    held = f"{slow.open}" + (f" (+{slow.reopened})" if slow.reopened else "")
            label = "0" if kind == "none" else f"{args.slow} {kind}"
            for name, (latencies, failed) in results.items():
                print(f"  {label:22s}{name:18s}{len(latencies):5d}{failed:8d}"
                      f"{percentile(latencies, .5):9.1f}{percentile(latencies, .99):9.1f}"
                      f"{held:>11s}", flush=True)
            time.sleep(1)        # let the server see the slow clients go
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200, help="slow connections per phase")
    parser.add_argument("--samples", type=int, default=100, help="calls per operation")
    parser.add_argument("--phase-seconds", type=float, default=30,
                        help="most seconds of measuring per phase")
    parser.add_argument("--server", default="",
                        help="comma-separated server models (eucalite serve --server); "
                             "default: the default model only")
    args = parser.parse_args()

    unwind_on_signals()
    scratch = tempfile.mkdtemp(prefix="eucalite-bench-slow-")
    try:
        print(f"Latency of normal requests beside slow clients, boto3 {boto3.__version__}, "
              f"{os.cpu_count()} CPUs")
        for server in (args.server.split(",") if args.server else [None]):
            run_server(scratch, server or None, args)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server and removing temporary files",
              file=sys.stderr)
        sys.exit(130)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
