#!/usr/bin/env python3
"""Benchmark: S3 object traffic through eucalite beside moto_server, in one run.

Starts `eucalite serve` (gunicorn, one worker, threads; fresh data directory) and
`moto_server` (in memory) on loopback, then measures with boto3, printing both side by side:

* 4 KiB PUT and GET, operations per second and latency, with 1 and 8 client threads
  (one boto3 client per thread);
* the same at 8 connections driven by ``wrk`` on presigned URLs (bench/s3load.py: C, so
  the load generator does not take the CPU the server needs), beside the disk's own rate
  for the same durable work (8 processes creating 4 KiB files, each fsynced and then its
  directory), with p50/p99 and the ratios the issue asks for;
* one 256 MiB PUT (put_object from an open file) and GET (streamed to /dev/null), MB/s;
* one 1 GiB multipart upload (upload_fileobj, 64 MiB parts, from a generated, non-seekable
  stream so the client never holds the object), time and MB/s;
* peak server memory during those big transfers, sampled every 50 ms over the server process
  and its children (gunicorn master + worker): the sum of their RSS, which counts the pages
  the worker shares with the master it was forked from twice, and the sum of their PSS
  (shared pages split between the processes), what the server really holds, and while 8 ``curl`` clients stream a
  1 GiB object each (PUT, then GET; eucalite only: moto_server holds objects in memory);
* the disk ceiling of the data directory with dd (write with conv=fsync, then read back;
  nothing is dropped from the page cache, so the read is usually a cache read).

    python bench/bench_s3.py [--quick] [--skip-moto] [--seconds 3] [--ops 2000]
                             [--server asyncio,gthread]

--quick shrinks everything (32 MiB single object, 128 MiB multipart in 16 MiB parts, 8 x 64
MiB streams, ~1 s per small-object run). MB/s is 10^6 bytes per second; sizes are MiB/GiB.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from common import free_port, serve_subprocess, unwind_on_signals, wait_for  # bench/common.py (run as bench/<script>.py)
import s3load  # bench/s3load.py

BIN = Path(sys.executable).parent
MiB = 1024 * 1024
SEEDED = 200        # 4 KiB objects the GET runs read


# -- servers --------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    process: subprocess.Popen
    endpoint: str
    key: str
    secret: str
    region: str
    data_dir: str | None = None
    results: dict = field(default_factory=dict)

    def client(self, pool: int = 10):
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.key, aws_secret_access_key=self.secret,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=pool,
                          s3={"addressing_style": "path"}))


def clean_env(**extra) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "EUCALITE_"))}
    env.update(extra)
    return env


def start_eucalite(data_dir: str, log_path: str, server: str | None = None) -> Target:
    """`eucalite serve` with its default server model, or *server* (`--server`)."""
    process, _, values = serve_subprocess(data_dir, log_path, server)
    STARTED.append(process)
    return Target(f"eucalite {server}" if server else "eucalite", process, values["AWS_ENDPOINT_URL_S3"],
                  values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"],
                  values["AWS_DEFAULT_REGION"], data_dir)


def start_moto() -> Target | None:
    moto = shutil.which("moto_server", path=str(BIN)) or shutil.which("moto_server")
    if moto is None:
        return None
    port = free_port()
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], env=clean_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    STARTED.append(process)
    wait_for(port, process, "moto_server")
    return Target("moto_server", process, f"http://127.0.0.1:{port}", "testing", "testing",
                  "us-east-1")


STARTED: list[subprocess.Popen] = []


def stop_all() -> None:
    for process in STARTED:
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    for process in STARTED:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)   # its own session: it and its workers
            except ProcessLookupError:
                pass
            process.wait()
    STARTED.clear()


# -- RSS sampling ---------------------------------------------------------------------------

def _proc_kib(path: str, field: str) -> int:
    """The kB figure of *field* ("VmRSS:", "Pss:") in /proc file *path*; 0 once the
    process is gone or unreadable."""
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(field):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _rss_kib(pid: int) -> int:
    return _proc_kib(f"/proc/{pid}/status", "VmRSS:")


def _children(pid: int) -> list[int]:
    """Direct children of *pid*, from /proc/*/stat (no /proc/<pid>/task/*/children here)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def _pss_kib(pid: int) -> int:
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def _tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue.extend(_children(current))
    return pids


def _memory(pids: list[int]) -> tuple[float, float]:
    return (sum(_rss_kib(pid) for pid in pids) / 1024,
            sum(_pss_kib(pid) for pid in pids) / 1024)


def tree_memory_mib(pid: int) -> tuple[float, float]:
    """(RSS sum, PSS sum) of *pid* and all its descendants (gunicorn master + worker)."""
    return _memory(_tree(pid))


def render_memory(memory: tuple[float, float]) -> str:
    return f"{memory[0]:5.0f} / {memory[1]:4.0f} MiB"


class PeakRSS:
    """Samples the RSS and PSS sums of a process tree every *interval* seconds while in
    the with-block; ``memory`` is their peaks. The process list is refreshed every second
    (listing /proc costs more than reading VmRSS)."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval = pid, interval
        self.peak = self.peak_pss = 0.0
        self._stop = threading.Event()

    @property
    def memory(self) -> tuple[float, float]:
        return self.peak, self.peak_pss

    def _sample(self, pids: list[int]) -> None:
        rss, pss = _memory(pids)
        self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)

    def _run(self):
        pids, refreshed = [], 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - refreshed > 1.0:
                pids, refreshed = _tree(self.pid), now
            self._sample(pids)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample(_tree(self.pid))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# -- data sources ---------------------------------------------------------------------------

class GeneratedStream(io.RawIOBase):
    """*size* bytes made up on the fly: readable, not seekable, never all in memory."""

    def __init__(self, size: int, seed: bytes):
        self.remaining = size
        self.block = (seed * (MiB // len(seed) + 1))[:MiB]
        self.offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.remaining)
        if count <= 0:
            return 0
        view = memoryview(buffer)
        done = 0
        while done < count:
            start = self.offset % MiB
            chunk = min(count - done, MiB - start)
            view[done:done + chunk] = self.block[start:start + chunk]
            done += chunk
            self.offset += chunk
        self.remaining -= count
        return count


def make_file(path: Path, size: int) -> Path:
    block = os.urandom(MiB)
    with open(path, "wb") as out:
        for index in range(size // MiB):
            out.write(index.to_bytes(8, "big") + block[8:])
        out.write(block[: size % MiB])
    return path


# -- measurements ---------------------------------------------------------------------------

def small_ops(target: Target, bucket: str, operation: str, threads: int, seconds: float,
              max_ops: int) -> tuple[float, list[float], int]:
    """(ops/s, latencies, errors) for 4 KiB PUT or GET with *threads* clients."""
    body = os.urandom(4096)
    clients = [target.client() for _ in range(threads)]
    for client in clients:      # warm up: connection, endpoint resolution, model loading
        client.put_object(Bucket=bucket, Key="warm", Body=body)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    per_thread = max(1, max_ops // threads)
    start_line = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(index: int) -> None:
        client, mine = clients[index], latencies[index]
        start_line.wait()
        for count in range(per_thread):
            if time.perf_counter() > deadline[0]:
                break
            key = f"small/{index}/{count % 500}" if operation == "PUT" else \
                f"seed/{(index * 37 + count) % SEEDED}"
            began = time.perf_counter()
            try:
                if operation == "PUT":
                    client.put_object(Bucket=bucket, Key=key, Body=body)
                else:
                    client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception:  # noqa: BLE001 - counted and reported
                errors[index] += 1
                continue
            mine.append(time.perf_counter() - began)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start_line.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    flat = [sample for samples in latencies for sample in samples]
    return len(flat) / elapsed, flat, sum(errors)


def put_big(target: Target, bucket: str, path: Path, **extra) -> tuple[float, float]:
    """*extra*: more put_object arguments (SSE-C's key for the SSE-C row)."""
    client = target.client()
    with PeakRSS(target.process.pid) as rss:
        began = time.perf_counter()
        with open(path, "rb") as source:
            client.put_object(Bucket=bucket, Key="big", Body=source, **extra)
        elapsed = time.perf_counter() - began
    return path.stat().st_size / elapsed / 1e6, rss.memory


def get_big(target: Target, bucket: str, size: int, **extra) -> tuple[float, float]:
    client = target.client()
    received = 0
    with PeakRSS(target.process.pid) as rss:
        began = time.perf_counter()
        body = client.get_object(Bucket=bucket, Key="big", **extra)["Body"]
        with open(os.devnull, "wb") as sink:
            for chunk in body.iter_chunks(MiB):
                sink.write(chunk)
                received += len(chunk)
        elapsed = time.perf_counter() - began
    if received != size:
        raise RuntimeError(f"GET returned {received} bytes, expected {size}")
    return size / elapsed / 1e6, rss.memory


def multipart(target: Target, bucket: str, size: int, part: int,
              concurrency: int) -> tuple[float, float, float]:
    client = target.client(pool=concurrency + 2)
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                            max_concurrency=concurrency, use_threads=True)
    with PeakRSS(target.process.pid) as rss:
        began = time.perf_counter()
        client.upload_fileobj(GeneratedStream(size, os.urandom(4096)), bucket, "multipart",
                              Config=config)
        elapsed = time.perf_counter() - began
    head = client.head_object(Bucket=bucket, Key="multipart")
    if head["ContentLength"] != size:
        raise RuntimeError(f"multipart object is {head['ContentLength']} bytes, not {size}")
    return elapsed, size / elapsed / 1e6, rss.memory


def dd_ceiling(directory: str, count: int) -> tuple[str, str]:
    """dd write (conv=fsync) and read-back MB/s in *directory*, as dd reports them."""
    path = os.path.join(directory, "ddtest")

    def rate(args: list[str]) -> str:
        result = subprocess.run(["dd", *args], capture_output=True, text=True, check=True)
        line = result.stderr.strip().splitlines()[-1]
        match = re.search(r"copied, ([\d.,]+) s, ([\d.,]+ [kMG]?B/s)", line)
        return match.group(2) if match else line

    try:
        write = rate(["if=/dev/zero", f"of={path}", "bs=4M", f"count={count}", "conv=fsync"])
        read = rate([f"if={path}", "of=/dev/null", "bs=4M"])
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return write, read


# -- report ---------------------------------------------------------------------------------

def ms(samples: list[float], quantile: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * quantile))] * 1000


def attempt(targets: list[Target], label: str, run) -> None:
    """Run *run(target)* for each target, keeping a failure as the result text."""
    for target in targets:
        try:
            target.results[label] = run(target)
        except Exception as error:  # noqa: BLE001 - a failed measurement is a result too
            target.results[label] = f"FAILED: {type(error).__name__}: {error}"[:120]
            print(f"  {target.name}: {label} failed: {error}", file=sys.stderr)


def row(label: str, targets: list[Target], render) -> None:
    cells = []
    for target in targets:
        value = target.results.get(label)
        cells.append(value if isinstance(value, str) else render(value))
    print(f"  {label:34s}" + "".join(f"{cell:>30s}" for cell in cells))


def presigned(target: Target, method: str, keys: list[str]) -> list[str]:
    """Path + query of a presigned *method* URL for each key of bucket "bench"."""
    client = target.client()
    operation = "put_object" if method == "PUT" else "get_object"
    prefix = len(target.endpoint)
    return [client.generate_presigned_url(operation, Params={"Bucket": "bench", "Key": key},
                                          ExpiresIn=3600)[prefix:] for key in keys]


def wrk_rows(targets: list[Target], seconds: float) -> None:
    """4 KiB PUT and GET at 8 connections through wrk, the raw disk rate beside them."""
    if not s3load.have_wrk():
        print("  (wrk not installed: apt-get install wrk for the c=8 rows on presigned URLs)")
        return
    put_keys = [f"wrk/{index}" for index in range(1000)]
    get_keys = [f"seed/{index}" for index in range(SEEDED)]
    for operation, keys in (("PUT", put_keys), ("GET", get_keys)):
        label = f"4 KiB {operation} c8 (wrk)"
        attempt(targets, label, lambda t, o=operation, k=keys: s3load.wrk_run(
            t.endpoint, o, presigned(t, o, k), connections=8, seconds=seconds))
        row(label, targets, lambda r: r.render())
    disk = s3load.fsync_rate(targets[0].data_dir, processes=8, seconds=seconds)
    print(f"  {'disk: 4 KiB file+fsync+dir fsync':34s}{disk.render():>30s}   (8 processes)")
    first = targets[0].results.get("4 KiB PUT c8 (wrk)")
    if isinstance(first, s3load.Rate):
        ratios = [f"{first.ops / disk.ops:.2f} x disk"]
        moto = next((t for t in targets if t.name == "moto_server"), None)
        for operation in ("PUT", "GET"):
            ours = targets[0].results.get(f"4 KiB {operation} c8 (wrk)")
            theirs = moto.results.get(f"4 KiB {operation} c8 (wrk)") if moto else None
            if isinstance(ours, s3load.Rate) and isinstance(theirs, s3load.Rate):
                ratios.append(f"{operation} {ours.ops / theirs.ops:.2f} x moto")
        print(f"  {targets[0].name + ' c8 PUT/GET':34s}{', '.join(ratios):>30s}")


def streams_row(targets: list[Target], scratch: str, size: int) -> str | None:
    """8 curl clients streaming *size* bytes each, PUT then GET, to each eucalite target;
    the row's label (its peak RSS is reported with the others) or None when not run."""
    if not s3load.have_curl():
        print("  (curl not installed: no concurrent-stream row)")
        return None
    label = f"8 x {size // MiB} MiB streams (curl)"
    source = make_file(Path(scratch) / "stream-source", size)
    keys = [f"stream/{index}" for index in range(8)]

    def run(target: Target):
        if target.name == "moto_server":
            return "n/a (objects in memory)"
        puts = [target.endpoint + path for path in presigned(target, "PUT", keys)]
        gets = [target.endpoint + path for path in presigned(target, "GET", keys)]
        with PeakRSS(target.process.pid) as rss:
            elapsed = s3load.stream_big(puts, gets, str(source), size)
        target.client().delete_objects(Bucket="bench", Delete={
            "Objects": [{"Key": key} for key in keys]})
        return elapsed, 2 * 8 * size / elapsed / 1e6, rss.memory

    attempt(targets, label, run)
    row(label, targets, lambda r: f"{r[0]:6.1f} s {r[1]:7.1f} MB/s")
    source.unlink()
    return label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--skip-moto", action="store_true", help="eucalite only")
    parser.add_argument("--seconds", type=float, help="time per small-object run")
    parser.add_argument("--ops", type=int, help="most operations per small-object run")
    parser.add_argument("--server", default="",
                        help="comma-separated eucalite server models side by side (e.g. "
                             "asyncio,gthread: eucalite serve --server)")
    args = parser.parse_args()

    quick = args.quick
    seconds = args.seconds or (1.0 if quick else 3.0)
    max_ops = args.ops or (500 if quick else 2000)
    big_size = (32 if quick else 256) * MiB
    mp_size, mp_part = ((128 * MiB, 16 * MiB) if quick else (1024 * MiB, 64 * MiB))
    mp_concurrency = 4
    dd_count = 16 if quick else 64
    stream_size = (64 if quick else 1024) * MiB

    unwind_on_signals()           # ... through the finally below

    scratch = tempfile.mkdtemp(prefix="eucalite-bench-s3-")
    try:
        data_dir = os.path.join(scratch, "data")
        targets = [start_eucalite(f"{data_dir}-{server or 'default'}",
                                  os.path.join(scratch, f"eucalite-{server}.log"), server or None)
                   for server in (args.server.split(",") if args.server else [""])]
        if not args.skip_moto:
            moto = start_moto()
            if moto is None:
                print("(moto_server not installed: pip install 'moto[server]' for the "
                      "baseline)")
            else:
                targets.append(moto)
        source = make_file(Path(scratch) / "big-source", big_size)
        for target in targets:
            client = target.client()
            client.create_bucket(Bucket="bench")
            seed = os.urandom(4096)
            for index in range(SEEDED):          # what the 4 KiB GETs read
                client.put_object(Bucket="bench", Key=f"seed/{index}", Body=seed)
            target.results["idle RSS"] = tree_memory_mib(target.process.pid)

        print(f"S3 over HTTP on loopback, boto3 {boto3.__version__}, {os.cpu_count()} CPUs"
              f"{' (--quick)' if quick else ''}")
        print(f"  {'':34s}" + "".join(f"{t.name:>30s}" for t in targets))

        for threads in (1, 8):
            for operation in ("PUT", "GET"):
                label = f"4 KiB {operation} x{threads}"
                attempt(targets, label, lambda t, o=operation, n=threads: small_ops(
                    t, "bench", o, n, seconds, max_ops))
                row(label, targets, lambda r: f"{r[0]:6.0f} ops/s  p50 {ms(r[1], .5):5.1f}"
                                              f" p99 {ms(r[1], .99):5.1f} ms"
                                              + (f" {r[2]} err" if r[2] else ""))

        wrk_rows(targets, seconds)

        size_label = f"{big_size // MiB} MiB"
        rss_rows = [("idle RSS", None)]
        attempt(targets, f"{size_label} PUT (file)", lambda t: put_big(t, "bench", source))
        attempt(targets, f"{size_label} GET (stream)", lambda t: get_big(t, "bench", big_size))
        for label in (f"{size_label} PUT (file)", f"{size_label} GET (stream)"):
            row(label, targets, lambda r: f"{r[0]:7.1f} MB/s")
            rss_rows.append((label, 1))
        # eucalite encrypts every object (SSE-S3, AWS's default) in the rows above; SSE-C
        # (the client's key on every request) for comparison
        ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": os.urandom(32)}
        attempt(targets, f"{size_label} PUT SSE-C",
                lambda t: put_big(t, "bench", source, **ssec))
        attempt(targets, f"{size_label} GET SSE-C",
                lambda t: get_big(t, "bench", big_size, **ssec))
        for label in (f"{size_label} PUT SSE-C", f"{size_label} GET SSE-C"):
            row(label, targets, lambda r: f"{r[0]:7.1f} MB/s")
        mp_label = (f"{mp_size // MiB} MiB multipart" if mp_size < 1024 * MiB
                    else f"{mp_size // (1024 * MiB)} GiB multipart") + \
            f" ({mp_part // MiB} MiB x{mp_concurrency})"
        attempt(targets, mp_label, lambda t: multipart(t, "bench", mp_size, mp_part,
                                                       mp_concurrency))
        row(mp_label, targets, lambda r: f"{r[0]:6.1f} s {r[1]:7.1f} MB/s")
        rss_rows.append((mp_label, 2))

        streams_label = streams_row(targets, scratch, stream_size)
        if streams_label:
            rss_rows.append((streams_label, 1))

        print("Server memory, RSS sum / PSS sum (process tree: gunicorn master + worker for "
              "eucalite; PSS counts the pages they share once)")
        for label, index in rss_rows:
            if index is None:
                row(label, targets, render_memory)
            else:
                print(f"  {'peak, ' + label:34s}" + "".join(
                    f"{(v if isinstance(v, str) else render_memory(v[-1])):>30s}"
                    for v in (t.results.get(label) for t in targets)))

        write, read = dd_ceiling(targets[0].data_dir, dd_count)
        print(f"Disk ceiling of the data dir (dd bs=4M count={dd_count}, page cache not "
              f"dropped)")
        print(f"  {'write, conv=fsync':34s}{write:>30s}")
        print(f"  {'read back':34s}{read:>30s}")
    except KeyboardInterrupt:
        print("\ninterrupted: stopping servers and removing temporary files", file=sys.stderr)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # let the clean-up finish
        stop_all()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
