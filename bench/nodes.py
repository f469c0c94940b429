#!/usr/bin/env python3
"""Benchmark: the controller's CPU for 100 joined nodes' heartbeats.

Starts `eucalite serve --no-node` on loopback (fresh data directory), joins N nodes through
the internal API (a token each, `POST /internal/v1/join`, registration), then measures the
server's CPU time (utime + stime from /proc, its master and forked worker) per wall-clock
second in three phases
of --seconds each:

* idle: no client at all (what the server costs doing nothing);
* heartbeats: N nodes, each a thread sending a SigV4-signed heartbeat (capacity and
  domains) every heartbeat interval the controller names (default 10 s), staggered;
* baseline: the same number of requests at the same times, unauthenticated, to a trivial
  endpoint (GET /internal/v1/openapi.json: no signature, no database);

and prints each phase's requests, failures, CPU seconds per wall second and CPU
milliseconds per request (above idle).

    python bench/nodes.py [--nodes 100] [--seconds 60] [--interval 10]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import progress, run_cleaning_up, serve_subprocess  # noqa: E402

from eucalite import create_app  # noqa: E402
from eucalite.cluster import joining  # noqa: E402
from eucalite.cluster.nodeclient import (InternalApiError, NodeClient,  # noqa: E402
                                         NodeCredentials)

CAPACITY = {"cores": 16, "memory_mb": 65536, "disk_gb": 1000}
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of process *pid*."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def cpu_seconds(pid: int) -> float:
    """CPU time so far of process *pid* and its descendants (gunicorn's master forks the
    worker that serves the requests)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _stat(entry)
            except (OSError, ValueError, IndexError):
                continue            # exited meanwhile
    tree, grew = {pid}, True
    while grew:
        grew = False
        for child, (parent, _) in stats.items():
            if parent in tree and child not in tree:
                tree.add(child)
                grew = True
    return sum(stats[member][1] for member in tree if member in stats)


def join_nodes(data_dir: str, url: str, count: int) -> list[NodeClient]:
    """*count* nodes joined and registered, as `eucalite join` does it."""
    app = create_app({"data_dir": data_dir, "node": False})
    with app.app_context():
        config = app.config["EUCALITE"]
        tokens = [joining.create_token(config["zones"][0], config["zones"],
                                       dt.timedelta(hours=1), "bench")[0]
                  for _ in range(count)]
    clients = []
    for index, token in enumerate(tokens):
        answer = NodeClient(url).join(token, f"bench-node-{index:03d}")
        client = NodeClient(url, NodeCredentials(
            url, answer["node_id"], answer["zone"], answer["region"],
            answer["access_key_id"], answer["secret_access_key"]))
        client.call("PUT", f"/nodes/{answer['node_id']}",
                    {"capacity": CAPACITY, "hypervisor_uri": "fake://", "version": "bench"})
        clients.append(client)
    return clients


def phase(pid: int, seconds: float, interval: float, senders) -> dict:
    """Run each of *senders* (a callable making one request) every *interval* s,
    staggered, for *seconds*; the server's CPU over that window and the request counts."""
    stop = threading.Event()
    counts = {"requests": 0, "failures": 0}
    lock = threading.Lock()

    def loop(index: int, send) -> None:
        next_at = start + interval * index / max(len(senders), 1)
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                send()
                failed = 0
            except (InternalApiError, OSError):
                failed = 1
            with lock:
                counts["requests"] += 1
                counts["failures"] += failed
            next_at += interval

    start = time.monotonic()
    cpu_before = cpu_seconds(pid)
    threads = [threading.Thread(target=loop, args=(index, send), daemon=True)
               for index, send in enumerate(senders)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    cpu_after, wall = cpu_seconds(pid), time.monotonic() - start
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return {**counts, "cpu_per_second": (cpu_after - cpu_before) / wall, "wall": wall}


def heartbeat_sender(client: NodeClient):
    path = f"/nodes/{client.credentials.node_id}/heartbeat"
    domains = {f"i-{n:08x}": "running" for n in range(8)}
    return lambda: client.call("POST", path, {"capacity": CAPACITY, "domains": domains,
                                              "version": "bench"})


def plain_sender(url: str):
    def send() -> None:
        with urllib.request.urlopen(url + "/internal/v1/openapi.json", timeout=30) as answer:
            answer.read()
    return send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase")
    parser.add_argument("--interval", type=float, default=None,
                        help="seconds between a node's heartbeats (default: the "
                             "controller's heartbeat_interval)")
    args = parser.parse_args()
    top = tempfile.mkdtemp(prefix="eucalite-bench-nodes-")

    def body(cleanup) -> None:
        data_dir = os.path.join(top, "data")
        process, port, _ = serve_subprocess(data_dir, os.path.join(top, "serve.log"))
        cleanup.append(lambda: (process.terminate(), process.wait(timeout=30)))
        url = f"http://127.0.0.1:{port}"
        progress(f"joining {args.nodes} nodes")
        clients = join_nodes(data_dir, url, args.nodes)
        interval = args.interval or clients[0].call(
            "GET", f"/nodes/{clients[0].credentials.node_id}")["heartbeat_interval"]
        progress(f"{args.nodes} nodes joined; heartbeat every {interval:g} s; phases of "
                 f"{args.seconds:g} s")
        results = {}
        results["idle"] = phase(process.pid, args.seconds, interval, [])
        progress("idle done")
        results["heartbeats"] = phase(process.pid, args.seconds, interval,
                                      [heartbeat_sender(client) for client in clients])
        progress("heartbeats done")
        results["baseline"] = phase(process.pid, args.seconds, interval,
                                    [plain_sender(url)] * len(clients))
        progress("baseline done")
        idle = results["idle"]["cpu_per_second"]
        print(f"\ncontroller CPU, {args.nodes} nodes, one request per node every "
              f"{interval:g} s, {args.seconds:g} s per phase")
        print(f"{'phase':<12}{'requests':>10}{'failed':>8}{'CPU s/s':>10}{'ms/request':>12}")
        for name, result in results.items():
            rate = result["requests"] / result["wall"]
            per_request = ((result["cpu_per_second"] - idle) / rate * 1000) if rate else 0
            print(f"{name:<12}{result['requests']:>10}{result['failures']:>8}"
                  f"{result['cpu_per_second']:>10.4f}"
                  f"{(f'{per_request:.2f}' if rate else '-'):>12}")

    run_cleaning_up(body, top)


if __name__ == "__main__":
    main()
