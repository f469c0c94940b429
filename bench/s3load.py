"""Load that does not compete with the server for the CPU, for bench/bench_s3.py.

* :func:`wrk_run`: ``wrk`` (C, epoll; Debian package ``wrk``) replaying presigned URLs for
  4 KiB PUTs or GETs over a fixed number of keep-alive connections, with wrk's own latency
  histogram (p50, p99) and its count of non-2xx answers;
* :func:`fsync_rate`: the disk's own rate for the same durable work, measured the same way
  (N processes, not threads, each looping: create a file, write 4 KiB, fsync it, fsync its
  directory), so the server's figure has a ceiling beside it from the same run;
* :func:`stream_big`: N ``curl`` processes streaming a large object each through presigned
  URLs (PUT, then GET to /dev/null), for the server's peak RSS while they run.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass
class Rate:
    """Operations per second and latency percentiles (ms) of one measured run."""

    ops: float
    p50: float
    p99: float
    errors: int = 0

    def render(self) -> str:
        return (f"{self.ops:6.0f} ops/s  p50 {self.p50:5.1f} p99 {self.p99:5.1f} ms"
                + (f" {self.errors} err" if self.errors else ""))


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


_LUA = """
local paths = {%(paths)s}
local body = %(body)s
local method = "%(method)s"
local counter = 0
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  counter = tonumber(id) * %(stride)d
end
function request()
  counter = counter + 1
  return wrk.format(method, paths[(counter %% #paths) + 1], nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests,
           summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
           latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_run(base_url: str, method: str, paths: list[str], *, connections: int = 8,
            seconds: float = 3.0, body_size: int = 4096, threads: int = 2) -> Rate:
    """*method* on *paths* (path + presigned query, cycled; a PUT sends *body_size* bytes)
    with *connections* concurrent keep-alive connections for *seconds*."""
    def lua_string(text: str) -> str:
        return "[==[" + text + "]==]"

    script = _LUA % {
        "paths": ",".join(lua_string(path) for path in paths),
        "body": f'string.rep("x", {body_size})' if method == "PUT" else "nil",
        "method": method,
        "stride": max(1, len(paths) // threads),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        result = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
             "--timeout", "10s", "-s", handle.name, base_url],
            capture_output=True, text=True, check=True)
    finally:
        os.unlink(handle.name)
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    requests, duration_us, errors, p50_us, p99_us = (int(x) for x in line.split()[1:])
    return Rate((requests - errors) / (duration_us / 1e6), p50_us / 1000, p99_us / 1000,
                errors)


def _fsync_worker(directory: str, index: int, seconds: float, start: float, out) -> None:
    body = os.urandom(4096)
    latencies: list[float] = []
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    while time.time() < start:
        time.sleep(0.001)
    deadline = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        fd = os.open(os.path.join(directory, f"{index}-{count}"),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, body)
        os.fsync(fd)
        os.close(fd)
        os.fsync(dir_fd)
        latencies.append(time.perf_counter() - began)
        count += 1
    os.close(dir_fd)
    out.send(latencies)
    out.close()


def fsync_rate(directory: str, processes: int = 8, seconds: float = 3.0) -> Rate:
    """The disk's rate of durable 4 KiB file creations in *directory*'s file system:
    *processes* processes each writing new 4 KiB files, fsyncing each and then the
    directory."""
    scratch = tempfile.mkdtemp(prefix="fsync-rate-", dir=directory)
    context = multiprocessing.get_context("fork")
    start = time.time() + 0.5                      # all begin together
    try:
        pipes, workers = [], []
        for index in range(processes):
            receive, send = context.Pipe(duplex=False)
            worker = context.Process(target=_fsync_worker,
                                     args=(scratch, index, seconds, start, send))
            worker.start()
            pipes.append(receive)
            workers.append(worker)
        samples = [sample for pipe in pipes for sample in pipe.recv()]
        for worker in workers:
            worker.join()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Rate(len(samples) / seconds, quantile(samples, .5) * 1000,
                quantile(samples, .99) * 1000)


def quantile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def have_curl() -> bool:
    return shutil.which("curl") is not None


def stream_big(put_urls: list[str], get_urls: list[str], source: str, size: int) -> float:
    """All PUTs of *source* at once (one curl each), then all GETs; seconds taken.
    Raises RuntimeError when a transfer fails or a GET returns the wrong size."""
    began = time.perf_counter()
    _all(["curl", "-sS", "-f", "-o", "/dev/null", "-T", source, url] for url in put_urls)
    outputs = _all(["curl", "-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", url]
                   for url in get_urls)
    if any(int(text or 0) != size for text in outputs):
        raise RuntimeError(f"a GET returned {outputs}, expected {size} bytes each")
    return time.perf_counter() - began


def _all(commands) -> list[str]:
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for command in commands]
    outputs = []
    for process in processes:
        out, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"curl failed ({process.returncode}): {err.strip()[:200]}")
        outputs.append(out.strip())
    return outputs
