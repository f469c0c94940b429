#!/usr/bin/env python3
"""Benchmark: the storage controller (EBS), each figure beside a baseline from the same run.

One run, one table (median and fastest of ``--runs`` runs; ``--quick``: fewer runs, a
smaller engine volume). eucalite runs in this process on werkzeug's threaded server, driven
with boto3 (no retries); every wait polls every 20 ms.

1. CreateVolume (fake hypervisor, ``ebs_export=local``, no VM): boto3 CreateVolume until
   DescribeVolumes says ``available``, for 1 GiB and 100 GiB (sparse files), beside the raw
   operation: truncate(2) of a file to that size + fsync (what the job does), and for
   contrast 1 GiB really allocated (``fallocate -l 1G`` + fsync) and written
   (``dd if=/dev/zero bs=4M count=256 conv=fsync``).
2. Snapshots through the API (same server): a 1 GiB volume with 100 MiB of random data
   written in 1 MiB pieces at random offsets -> CreateSnapshot until ``completed`` (and the
   ``stored_bytes`` of its Snapshot row); 10 MiB more changed (half over data, half into
   holes) -> a second snapshot; CreateVolume from the second snapshot until ``available``
   (restore). Beside: ``cp --sparse=always`` and ``dd bs=4M conv=sparse`` of the volume file,
   each + fsync of the copy (the engine fsyncs every chunk it stores). Also the chunk
   engine alone (:mod:`eucalite.ebs.chunks`, no API, no point-in-time copy) with 4 MiB and
   1 MiB chunks, as bench/ebs_snapshot.py measured it before it was folded in here.
3. Attach -> the guest sees the disk (needs root, libvirtd on qemu:///system; the tgt part
   also tgtd): the tiny guest is launched through eucalite (node duty on libvirt, network
   ``eucalite-ebsbench``, bridge ``euebsbench0``, 10.218.0.0/24; node services started by
   ``start_node_services``, as ``eucalite serve`` does). Per run: AttachVolume until
   ``attached`` in DescribeVolumes and until the guest prints ``EUCALITE-GUEST disk ...
   serial=<volume id without the dash>`` in its console file; DetachVolume until
   ``available``. With volumes exported by tgt (iSCSI with CHAP, over loopback) and as
   local files. Floor: eucalite's libvirt driver ``attach_disk`` of a raw file disk (what
   ``virsh attach-device`` does) on the same domain, until the same console line, and
   ``detach_disk``. The guest looks for new disks every 2 s: "guest sees it" figures carry
   a uniform 0-2 s wait; compare them with the floor's, not with zero.

    sudo .venv/bin/python bench/ebs.py [--runs N] [--quick] [--skip-guest]
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import GUEST_DIR, InProcessCloud, run_cleaning_up  # bench/common.py (run as bench/<script>.py)

MiB, GiB = 2**20, 2**30
POLL = 0.02
URI = "qemu:///system"
NETWORK, BRIDGE, SUBNET = "eucalite-ebsbench", "euebsbench0", "10.218.0.0/24"
MARK = "EUCALITE-GUEST"
TIMEOUT = 180
ALIGN = 0.5                 # s after an observed guest disk scan that each attach is issued
ZONE = "eucalyptus-1a"

T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"  [{time.monotonic() - T0:6.1f} s] {message}", file=sys.stderr, flush=True)


# -- the table -------------------------------------------------------------------------------

class Table:
    """Sections of rows: label, median and fastest of the samples, a note."""

    def __init__(self):
        self.lines: list[tuple] = []

    def section(self, title: str) -> None:
        self.lines.append(("section", title))

    def row(self, label: str, samples: list[float], note: str = "") -> None:
        self.lines.append(("row", label, list(samples), note))

    def text(self, title: str) -> None:
        self.lines.append(("text", title))

    def print(self) -> None:
        print(f"{'':56s}{'median':>9s} {'min':>9s}")
        for line in self.lines:
            if line[0] == "section":
                print(line[1])
            elif line[0] == "text":
                print(f"  {line[1]}")
            else:
                _, label, samples, note = line
                if samples:
                    print(f"  {label:54s}{seconds(statistics.median(samples))} "
                          f"{seconds(min(samples))}  {note}".rstrip())
                else:
                    print(f"  {label:54s}{'-':>9s} {'-':>9s}  {note}".rstrip())


def seconds(value: float) -> str:
    """9 characters: milliseconds under a second, else seconds."""
    return f"{value * 1000:6.1f} ms" if value < 1 else f"{value:7.3f} s"


def mib(n: float) -> str:
    return f"{n / MiB:.1f} MiB"


# -- small file helpers (from bench/ebs_snapshot.py) -----------------------------------------

def write_pieces(path: str, rng: random.Random, size: int, count: int,
                 avoid: set[int] = frozenset()) -> list[int]:
    """Write *count* pieces of 1 MiB of random bytes at distinct random 1 MiB-aligned
    offsets of the file (not in *avoid*), fsync; returns the offsets' slots."""
    slots = rng.sample(sorted(set(range(size // MiB)) - set(avoid)), count)
    with open(path, "r+b") as handle:
        for slot in slots:
            handle.seek(slot * MiB)
            handle.write(os.urandom(MiB))
        handle.flush()
        os.fsync(handle.fileno())
    return slots


def change_pieces(path: str, rng: random.Random, size: int, slots: list[int],
                  changed: int) -> None:
    """Rewrite *changed* MiB: half over the written *slots*, half into holes."""
    write_pieces(path, rng, size, changed // 2, avoid=set(range(size // MiB)) - set(slots))
    write_pieces(path, rng, size, changed - changed // 2, avoid=set(slots))


def file_sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(4 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def allocated(path: str) -> int:
    return os.stat(path).st_blocks * 512


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def timed(call) -> tuple[float, object]:
    """Seconds *call* takes, starting with no dirty pages of earlier steps to write back."""
    os.sync()
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


COPY_COMMANDS = (("cp --sparse=always + fsync", lambda src, dst: ["cp", "--sparse=always",
                                                                  src, dst]),
                 ("dd bs=4M conv=sparse + fsync", lambda src, dst: [
                     "dd", f"if={src}", f"of={dst}", "bs=4M", "conv=sparse", "status=none"]))


def copy_once(command, volume: str, copy: str) -> tuple[float, int]:
    """One copy of *volume* (+ fsync of the copy): seconds, allocated bytes of the copy."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(copy)

    def run():
        subprocess.run(command(volume, copy), check=True)
        fsync_file(copy)
    seconds = timed(run)[0]
    size = allocated(copy)
    os.unlink(copy)
    return seconds, size


# -- an in-process eucalite ------------------------------------------------------------------

class Server(InProcessCloud):
    """An in-process eucalite with the volume operations the benchmark times."""

    def __init__(self, data_dir: Path, **config):
        super().__init__(data_dir, **config)
        self.volumes: list[str] = []

    # volumes
    def volume(self, volume_id: str) -> dict:
        return self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]

    def volume_state(self, volume_id: str) -> str:
        item = self.volume(volume_id)
        return item["Attachments"][0]["State"] if item["Attachments"] else item["State"]

    def wait_volume(self, volume_id: str, state: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            now = self.volume_state(volume_id)
            if now == state:
                return
            if now == "error" or time.monotonic() > deadline:
                raise SystemExit(f"{volume_id} is {now}, not {state}: {self.volume(volume_id)}")
            time.sleep(POLL)

    def create_volume(self, size_gb: int = 1, snapshot_id: str | None = None) -> tuple[float, str]:
        """Seconds from CreateVolume to ``available``, and the volume id."""
        kwargs = {"SnapshotId": snapshot_id} if snapshot_id else {"Size": size_gb}
        start = time.perf_counter()
        volume_id = self.ec2.create_volume(AvailabilityZone=ZONE, **kwargs)["VolumeId"]
        self.volumes.append(volume_id)
        self.wait_volume(volume_id, "available")
        return time.perf_counter() - start, volume_id

    def delete_volume(self, volume_id: str) -> None:
        self.ec2.delete_volume(VolumeId=volume_id)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.volume(volume_id)
            except self.ec2.exceptions.ClientError:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{volume_id} not deleted after 60 s")
            time.sleep(POLL)
        self.volumes.remove(volume_id)

    def path(self, volume_id: str) -> str:
        return str(self.services.ebs.path(volume_id))

    # snapshots
    def snapshot(self, volume_id: str) -> tuple[float, str, int]:
        """Seconds from CreateSnapshot to ``completed``, its id, its stored_bytes."""
        from eucalite.db import db
        from eucalite.ebs.models import Snapshot

        start = time.perf_counter()
        snapshot_id = self.ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"]
        deadline = time.monotonic() + TIMEOUT
        while True:
            item = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
            if item["State"] == "completed":
                break
            if item["State"] != "pending" or time.monotonic() > deadline:
                raise SystemExit(f"{snapshot_id} is {item['State']}: {item}")
            time.sleep(POLL)
        seconds = time.perf_counter() - start
        with self.app.app_context():
            stored = db.session.get(Snapshot, snapshot_id).stored_bytes
        return seconds, snapshot_id, stored


# -- 1 and 2: volumes and snapshots without a VM ---------------------------------------------

def raw_create(work: Path, size: int, how: str) -> float:
    path = work / f"raw-{how}"

    def run():
        if how == "truncate":
            with open(path, "wb") as f:
                f.truncate(size)
                os.fsync(f.fileno())
        elif how == "fallocate":
            subprocess.run(["fallocate", "-l", str(size), str(path)], check=True)
            fsync_file(str(path))
        else:
            subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=4M",
                            f"count={size // (4 * MiB)}", "conv=fsync", "status=none"],
                           check=True)
    seconds = timed(run)[0]
    path.unlink()
    return seconds


def bench_volumes(args, server: Server, work: Path, table: Table) -> None:
    table.section("1. CreateVolume -> 'available' in DescribeVolumes (fake hypervisor, "
                  "local export)")
    samples = {key: [] for key in ("api1", "api100", "tr1", "tr100", "falloc", "dd")}
    for i in range(args.runs):
        progress(f"CreateVolume run {i + 1}/{args.runs}")
        for size_gb in (1, 100):
            os.sync()
            seconds, volume_id = server.create_volume(size_gb)
            samples[f"api{size_gb}"].append(seconds)
            server.delete_volume(volume_id)
            samples[f"tr{size_gb}"].append(raw_create(work, size_gb * GiB, "truncate"))
        samples["falloc"].append(raw_create(work, GiB, "fallocate"))
        samples["dd"].append(raw_create(work, GiB, "dd"))
    table.row("CreateVolume 1 GiB -> available", samples["api1"], "(sparse file)")
    table.row("  raw: truncate(2) to 1 GiB + fsync", samples["tr1"])
    table.row("CreateVolume 100 GiB -> available", samples["api100"], "(sparse file)")
    table.row("  raw: truncate(2) to 100 GiB + fsync", samples["tr100"])
    table.row("  contrast: fallocate -l 1G + fsync", samples["falloc"], "(allocated)")
    table.row("  contrast: dd if=/dev/zero 1 GiB conv=fsync", samples["dd"], "(written)")


def bench_snapshots(args, server: Server, work: Path, table: Table) -> None:
    written, changed = 100, 10
    rng = random.Random(args.seed)
    copy = str(work / "copy")
    s = {key: [] for key in ("snap1", "snap2", "restore", "cp1", "dd1", "cp2", "dd2",
                             "stored1", "stored2", "copied1", "copied2")}
    for i in range(args.runs):
        progress(f"snapshot run {i + 1}/{args.runs}")
        _, volume_id = server.create_volume(1)
        path = server.path(volume_id)
        slots = write_pieces(path, rng, GiB, written)
        os.sync()
        seconds, snap1, stored = server.snapshot(volume_id)
        s["snap1"].append(seconds)
        s["stored1"].append(stored)
        for key, (_, command) in zip(("cp1", "dd1"), COPY_COMMANDS):
            seconds, size = copy_once(command, path, copy)
            s[key].append(seconds)
            if key == "cp1":
                s["copied1"].append(size)
        change_pieces(path, rng, GiB, slots, changed)
        expected = file_sha256(path)
        os.sync()
        seconds, snap2, stored = server.snapshot(volume_id)
        s["snap2"].append(seconds)
        s["stored2"].append(stored)
        for key, (_, command) in zip(("cp2", "dd2"), COPY_COMMANDS):
            seconds, size = copy_once(command, path, copy)
            s[key].append(seconds)
            if key == "cp2":
                s["copied2"].append(size)
        os.sync()
        seconds, restored = server.create_volume(snapshot_id=snap2)
        s["restore"].append(seconds)
        if file_sha256(server.path(restored)) != expected:
            raise SystemExit(f"the volume restored from {snap2} differs from {volume_id}")
        for vid in (restored, volume_id):
            server.delete_volume(vid)
        for snap in (snap2, snap1):
            server.ec2.delete_snapshot(SnapshotId=snap)

    med = statistics.median
    chunk_mb = int(server.services.config.get("snapshot_chunk_mb", 1))
    table.section(f"2. Snapshots through the API ({chunk_mb} MiB chunks): 1 GiB volume, "
                  f"{written} MiB random in 1 MiB pieces at random offsets")
    table.row("CreateSnapshot -> completed (first)", s["snap1"],
              f"stored {mib(med(s['stored1']))}")
    table.row("  baseline: cp --sparse=always + fsync", s["cp1"],
              f"copy allocates {mib(med(s['copied1']))}")
    table.row("  baseline: dd bs=4M conv=sparse + fsync", s["dd1"], "(reads all 1 GiB)")
    table.row(f"CreateSnapshot -> completed ({changed} MiB changed)", s["snap2"],
              f"stored {mib(med(s['stored2']))}")
    table.row("  baseline: cp --sparse=always + fsync", s["cp2"],
              f"copy allocates {mib(med(s['copied2']))}")
    table.row("  baseline: dd bs=4M conv=sparse + fsync", s["dd2"], "(reads all 1 GiB)")
    table.row("CreateVolume from the 2nd snapshot -> available", s["restore"],
              "(restore; sha256 checked)")
    table.text("(a snapshot = point-in-time sparse copy of the volume + chunking of the copy; "
               "restore baseline = the cp rows)")


# -- the chunk engine alone (formerly bench/ebs_snapshot.py) ---------------------------------

def bench_engine(args, app, work: Path, table: Table) -> None:
    from eucalite.ebs import chunks
    from eucalite.ebs.chunks import CHUNK_SIZE, UPLOAD_WORKERS
    from eucalite.ebs.chunkstore import ChunkStore

    size, written, changed = (256 * MiB, 32, 4) if args.quick else (GiB, 100, 10)
    rng = random.Random(args.seed + 1)
    volume = str(work / "engine-vol")
    with open(volume, "wb") as f:
        f.truncate(size)
    slots = write_pieces(volume, rng, size, written)
    objects = app.extensions["eucalite"].s3.store
    sizes = [CHUNK_SIZE, MiB]
    table.section(f"   chunk engine alone (eucalite.ebs.chunks, {UPLOAD_WORKERS} upload "
                  f"threads, no API/copy): {size // MiB} MiB volume, {written} MiB written, "
                  f"then {changed} MiB changed")
    with app.app_context():
        stores = {c: [ChunkStore(objects, app, bucket=f"bench-engine-{c // MiB}m-{n}")
                      for n in range(args.runs)] for c in sizes}
        first, second = {}, {}
        for name, results, before in (("snapshot", first, None), ("incremental", second, first)):
            if before is not None:
                change_pieces(volume, rng, size, slots, changed)
            expected = file_sha256(volume)
            for c in sizes:
                times, results[c] = [], []
                for n, store in enumerate(stores[c]):
                    prev = ({i: d for i, (d, _) in before[c][n].chunks.items()}
                            if before else {})
                    seconds, result = timed(lambda: chunks.snapshot(
                        volume, chunk_size=c, previous=prev, chunks=store))
                    times.append(seconds)
                    results[c].append(result)
                r = results[c][0]
                table.row(f"{name}, {c // MiB} MiB chunks", times,
                          f"read {mib(r.read_bytes)} stored {mib(r.stored_bytes)}")
        for c in sizes:
            target = str(work / "engine-restored")
            times = [timed(lambda: chunks.restore(target, size, second[c][0].chunks,
                                                  stores[c][0], chunk_size=c))[0]
                     for _ in range(args.runs)]
            if file_sha256(target) != expected:
                raise SystemExit("engine restore differs from the volume")
            table.row(f"restore (2nd), {c // MiB} MiB chunks", times,
                      f"file allocates {mib(allocated(target))}")
            os.unlink(target)
        for label, command in COPY_COMMANDS:
            results = [copy_once(command, volume, str(work / "copy")) for _ in range(args.runs)]
            table.row(f"  baseline: {label}", [r[0] for r in results],
                      f"copy allocates {mib(results[0][1])}")
    os.unlink(volume)


# -- 3. attach through a real guest ----------------------------------------------------------

class ConsoleWatch(threading.Thread):
    """Polls a console file every 20 ms until *pattern* (a regex) shows in what is written
    after the watch starts; records when (perf_counter) and the match."""

    def __init__(self, path: Path, pattern: str):
        super().__init__(daemon=True)
        self.path, self.pattern = path, re.compile(pattern)
        self.seen, self.match = None, None
        try:
            self.offset = path.stat().st_size
        except OSError:
            self.offset = 0
        self.halt = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = ""
            match = self.pattern.search(text)
            if match:
                self.seen, self.match = time.perf_counter(), match
                return
            self.halt.wait(POLL)

    def wait(self, timeout: float = 60) -> float:
        self.join(timeout)
        self.halt.set()
        if self.seen is None:
            raise SystemExit(f"no {self.pattern.pattern!r} in {self.path} after {timeout} s:"
                             f"\n{tail(self.path)}")
        return self.seen


def tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_bytes()[-size:].decode("utf-8", "replace")
    except OSError:
        return "(no console file)"


def guest_problem():
    """(reason to skip part 3 or None, the guest's files)."""
    if os.geteuid() != 0:
        return "needs root (the instance bridge, the metadata address and qemu:///system)", None
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed in this venv", None
    try:
        libvirt.open(URI).close()
    except libvirt.libvirtError as error:
        return f"libvirtd is unreachable at {URI}: {error}", None
    if shutil.which("qemu-img") is None:
        return "qemu-img is not installed (apt install qemu-utils)", None
    from eucalite.cluster import guest

    try:
        return None, guest.build(GUEST_DIR, log=lambda *a: progress(" ".join(map(str, a))))
    except guest.GuestBuildError as error:
        return f"cannot build the tiny guest: {error}", None


def tgt_show() -> subprocess.CompletedProcess:
    return subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                          capture_output=True, text=True)


def ensure_tgtd(cleanup: list) -> str | None:
    """None when tgtd answers (started here if need be, stopped at the end then), else why
    the tgt part is skipped."""
    if shutil.which("tgtadm") is None or shutil.which("tgtd") is None:
        return "tgt is not installed (apt install tgt)"
    if tgt_show().returncode == 0:
        return None                             # running already: leave it running
    progress("starting tgtd --iscsi portal=127.0.0.1:3260 (stopped at the end)")
    started = subprocess.run(["tgtd", "--iscsi", "portal=127.0.0.1:3260"],
                             capture_output=True, text=True)
    if started.returncode != 0:
        return f"tgtd did not start: {started.stderr.strip()}"
    cleanup.append(stop_tgtd)
    deadline = time.monotonic() + 10
    while tgt_show().returncode != 0:
        if time.monotonic() > deadline:
            return "tgtd started but tgtadm cannot reach it"
        time.sleep(0.1)
    return None


def stop_tgtd() -> None:
    from eucalite.ebs.export.tgt import parse_targets

    for target in parse_targets(tgt_show().stdout).values():
        subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--force", "--mode",
                        "target", "--tid", str(target.tid)], capture_output=True)
    subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "system"],
                   capture_output=True)


def remove_our_targets(volume_ids: set[str]) -> None:
    """tgt targets of our volumes still there (eucalite removes them on detach; this is
    for a run cut short)."""
    if shutil.which("tgtadm") is None:
        return
    from eucalite.ebs.export.tgt import parse_targets

    shown = tgt_show()
    if shown.returncode != 0:
        return
    for iqn, target in parse_targets(shown.stdout).items():
        if any(iqn.endswith(":" + vid) for vid in volume_ids):
            print(f"removing the leftover tgt target {iqn}", file=sys.stderr)
            subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--force",
                            "--mode", "target", "--tid", str(target.tid)], capture_output=True)


class Guest:
    """eucalite with node duty on libvirt, the tiny guest running."""

    def __init__(self, top: Path, files, export: str):
        from boot import metadata_taken  # bench/boot.py

        self.metadata_off = metadata_taken()
        self.euca = Server(top / "data", node=True, hypervisor="libvirt", libvirt_uri=URI,
                           instance_subnet=SUBNET, instance_network=NETWORK,
                           instance_bridge=BRIDGE, reconcile_interval=3600,
                           ebs_export=export,
                           **({"metadata_address": ""} if self.metadata_off else {}))
        self.files = files
        self.instance_id = None
        self.all_volumes: set[str] = set()
        self.tick = None            # perf_counter of a disk scan the guest was seen doing

    def align(self) -> float:
        """Sleep until ALIGN s after the guest's last observed disk scan, so that every
        attach is issued at the same point of its 2 s scan cycle; returns the offset."""
        if self.tick is not None:
            time.sleep(max(0.0, self.tick + ALIGN - time.perf_counter()))
        return time.perf_counter() - self.tick if self.tick is not None else float("nan")

    def seen_and_gone(self, watch: ConsoleWatch, start: float, detach) -> tuple[float, float]:
        """Wait for the guest's report of the disk *watch* looks for, run *detach*, wait for
        the guest to report it gone; both reports are scan ticks. Returns (seconds from
        *start* to the report, seconds *detach* took)."""
        seen = watch.wait() - start
        self.tick = watch.seen
        gone = ConsoleWatch(self.console, rf"{MARK} disk-gone name={watch.match.group(1)}\b")
        begin = time.perf_counter()
        detach()
        took = time.perf_counter() - begin
        gone.wait()
        self.tick = gone.seen
        return seen, took

    @property
    def driver(self):
        return self.euca.services.cluster.driver

    def start(self) -> None:
        """Node duty as `eucalite serve` starts it; then the tiny guest, launched and ready."""
        from eucalite.cli.common import admin_principal
        from eucalite.compute.imageimport import ImageFiles

        app = self.euca.app
        self.metadata_off = self.euca.start_node() or self.metadata_off
        progress("importing the tiny guest and launching it")
        with app.app_context():
            ids = app.extensions["eucalite"].compute.import_images(
                admin_principal(), ImageFiles(self.files.kernel, self.files.ramdisk,
                                              self.files.root),
                name="ebsbench-tiny", bucket="ebsbench-images")
        self.instance_id = self.euca.ec2.run_instances(
            ImageId=ids["machine"], MinCount=1, MaxCount=1, InstanceType="m1.small")[
            "Instances"][0]["InstanceId"]
        self.console = self.euca.data_dir / "instances" / self.instance_id / "console.log"
        # the guest looks for disks only after 'ready' (up to 60 s without metadata)
        ConsoleWatch(self.console, f"{MARK} ready").wait(TIMEOUT)
        progress(f"{self.instance_id} is ready")

    def attach_run(self, floor_dir: Path, index: int) -> dict[str, float]:
        """Floor (driver attach of a file disk) and one attach/detach of a new volume with
        the current export driver."""
        from eucalite.cluster.virt.driver import DiskSpec

        result = {}
        # the floor: a raw file disk plugged by the driver itself
        path = floor_dir / f"floor-{index}.img"
        with open(path, "wb") as f:
            f.truncate(GiB)
        serial = f"ebsbenchfloor{index}"
        target = next(f"vd{c}" for c in "cdefghijklmnopqrstuvwxyz"
                      if f"vd{c}" not in self.driver.disks(self.instance_id))
        watch = ConsoleWatch(self.console, rf"disk name=(\w+) serial={serial} size=")
        result["floor_offset"] = self.align()
        start = time.perf_counter()
        self.driver.attach_disk(self.instance_id, DiskSpec(target=target, path=str(path),
                                                           format="raw", serial=serial))
        result["floor_attach"] = time.perf_counter() - start
        result["floor_seen"], result["floor_detach"] = self.seen_and_gone(
            watch, start, lambda: self.driver.detach_disk(self.instance_id, target))
        path.unlink()
        return result

    def volume_run(self) -> dict[str, float]:
        euca = self.euca
        _, volume_id = euca.create_volume(1)
        self.all_volumes.add(volume_id)
        watch = ConsoleWatch(self.console,
                             rf"disk name=(\w+) serial={volume_id.replace('-', '')} size=")
        result = {"offset": self.align()}
        start = time.perf_counter()
        euca.ec2.attach_volume(VolumeId=volume_id, InstanceId=self.instance_id,
                               Device="/dev/sdf")
        euca.wait_volume(volume_id, "attached")
        result["attached"] = time.perf_counter() - start

        def detach():
            euca.ec2.detach_volume(VolumeId=volume_id)
            euca.wait_volume(volume_id, "available")
        result["seen"], result["detached"] = self.seen_and_gone(watch, start, detach)
        euca.delete_volume(volume_id)
        return result

    def set_export(self, name: str) -> None:
        from eucalite.ebs import export

        ebs = self.euca.services.ebs
        ebs._export = export.make(name, self.euca.services.config)
        assert ebs.export_driver().name == name

    def close(self) -> None:
        euca = self.euca
        if self.instance_id:
            with contextlib.suppress(Exception):
                euca.ec2.terminate_instances(InstanceIds=[self.instance_id])
                deadline = time.monotonic() + 60
                while euca.ec2.describe_instances(InstanceIds=[self.instance_id])[
                        "Reservations"][0]["Instances"][0]["State"]["Name"] != "terminated":
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
        euca.close([self.instance_id] if self.instance_id else [], NETWORK)
        remove_our_targets(self.all_volumes)


def bench_guest(args, table: Table, cleanup: list) -> None:
    from eucalite.ebs import export

    table.section("3. AttachVolume on a running tiny guest (qemu:///system), 1 GiB volumes")
    reason, files = guest_problem()
    if reason:
        print(f"part 3 skipped: {reason}", flush=True)
        table.text(f"skipped: {reason}")
        return
    tgt_reason = ensure_tgtd(cleanup)
    top = Path(tempfile.mkdtemp(prefix="eucalite-bench-ebs-"))
    top.chmod(0o711)        # QEMU runs as libvirt's user and must reach the disks
    cleanup.append(lambda: shutil.rmtree(top, ignore_errors=True))
    exports = ["local"]
    if tgt_reason is None:
        tgt_reason = export.make("tgt", {"data_dir": str(top / "data")}).problem()
    if tgt_reason is None:
        exports.insert(0, "tgt")
    else:
        print(f"tgt part skipped: {tgt_reason}", flush=True)
    guest = Guest(top, files, exports[0])
    cleanup.insert(0, guest.close)
    guest.start()
    floor_dir = top / "floor"
    floor_dir.mkdir()
    floor_dir.chmod(0o755)
    progress("one untimed disk cycle to learn the guest's scan tick")
    guest.attach_run(floor_dir, 99)
    results = {"floor": [], "tgt": [], "local": []}
    for i in range(args.runs):
        progress(f"attach run {i + 1}/{args.runs}: floor")
        results["floor"].append(guest.attach_run(floor_dir, i))
        for name in exports:
            progress(f"attach run {i + 1}/{args.runs}: {name}")
            guest.set_export(name)
            results[name].append(guest.volume_run())

    def col(rows, key):
        return [r[key] for r in rows]
    domain_type = guest.driver.domain_type
    table.text(f"domain under {'KVM' if domain_type == 'kvm' else 'TCG'}. The guest scans "
               f"/sys/block every 2 s (+ the scan's own time): each attach is issued "
               f"{ALIGN} s after a scan seen on the console")
    offsets = [r.get("offset", r.get("floor_offset")) for rows in results.values()
               for r in rows]
    table.text(f"(measured offset: median {statistics.median(offsets):.3f} s), so 'guest "
               f"reports the disk' is ~{2 - ALIGN:.1f} s of scan wait + the real latency: "
               f"compare with the floor, not with zero")
    table.text("floor: eucalite's libvirt driver attach_disk of a raw 1 GiB file "
               "(= virsh attach-device), same domain")
    table.row("floor: attach_disk() returned", col(results["floor"], "floor_attach"))
    table.row("floor: -> guest console reports the disk", col(results["floor"], "floor_seen"),
              "(file polled every 20 ms)")
    table.row("floor: detach_disk() (waits for the guest to let go)",
              col(results["floor"], "floor_detach"))
    for name in ("tgt", "local"):
        label = {"tgt": "tgt iSCSI + CHAP, loopback", "local": "local file"}[name]
        if name not in exports:
            table.text(f"ebs_export={name}: skipped: {tgt_reason}")
            continue
        rows = results[name]
        table.text(f"ebs_export={name} ({label}):")
        table.row("  AttachVolume -> 'attached' in DescribeVolumes", col(rows, "attached"))
        table.row("  AttachVolume -> guest console reports the disk", col(rows, "seen"))
        table.row("  DetachVolume -> available", col(rows, "detached"),
                  "(the guest let go)")
    if guest.metadata_off:
        table.text(f"(no metadata service here: {guest.metadata_off}; the guest reached "
                   f"'ready' after its 60 s metadata wait, which does not affect the figures)")


# -- the run ---------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each case (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="3 runs; 256 MiB volume for the engine rows")
    parser.add_argument("--seed", type=int, default=1, help="for the random offsets")
    parser.add_argument("--skip-guest", action="store_true", help="leave out part 3")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    logging.disable(logging.WARNING)
    table = Table()
    work = Path(tempfile.mkdtemp(prefix="eucalite-bench-ebs-"))

    def body(cleanup: list) -> None:
        server = Server(work / "data", node=True, hypervisor="fake", ebs_export="local",
                        max_volume_gb=100, max_total_volume_gb=1000)
        cleanup.insert(0, server.close)
        with server.app.app_context():
            problem = server.services.cluster.start_node_duty()
        if problem:
            raise SystemExit(f"node duty on the fake hypervisor: {problem}")
        bench_volumes(args, server, work, table)
        bench_snapshots(args, server, work, table)
        progress("chunk engine alone")
        bench_engine(args, server.app, work, table)
        if args.skip_guest:
            table.section("3. AttachVolume: left out (--skip-guest)")
        else:
            bench_guest(args, table, cleanup)

    run_cleaning_up(body, work)
    print(f"EBS benchmark: {os.cpu_count()} CPUs, median and fastest of {args.runs} runs; "
          f"eucalite in-process (werkzeug threaded, sqlite), boto3 without retries, "
          f"every wait polled every 20 ms; volumes, object store and copies on one "
          f"filesystem ({work.parent})")
    table.print()


if __name__ == "__main__":
    main()
