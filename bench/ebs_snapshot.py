#!/usr/bin/env python3
"""Benchmark: EBS snapshots with the chunk engine beside copying the whole volume file.

In one process (no HTTP): a sparse volume file with random data written at random 1 MiB
offsets is snapshotted into eucalite's object store with :mod:`eucalite.ebs.chunks`; then
some 1 MiB pieces at random offsets are rewritten and an incremental snapshot taken (with
the first as ``previous``); then both snapshots are restored. Measured in the same run, the
"copy the whole volume file" baseline: ``cp --sparse=always`` and
``dd bs=4M conv=sparse`` of the volume, each also followed by an fsync of the copy (the
engine fsyncs every chunk it stores, so "+ fsync" is the like-for-like figure).

Every figure is one run with the volume in the page cache (it was just written), so this
measures CPU and write cost, not reading a cold disk. The run uses the default 4 MiB chunks
and, for comparison, 1 MiB chunks (less stored per scattered 1 MiB write, more objects).

    python bench/ebs_snapshot.py [--quick]   # --quick: 256 MiB volume, 32 MiB written,
                                             # 4 MiB changed (default 1 GiB, 100, 10)
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 2**20


# -- the volume ------------------------------------------------------------------------------

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


def make_volume(path: str, size: int) -> None:
    with open(path, "wb") as handle:
        handle.truncate(size)


def file_sha256(path: str) -> str:
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


# -- measurements ----------------------------------------------------------------------------

class Row:
    """One line of the table: the median of the timed runs, MiB read from the volume
    (None: unknown), MiB the run stored."""

    def __init__(self, label: str, times: list[float], read: int | None, stored: int):
        self.label, self.read, self.stored = label, read, stored
        self.seconds = statistics.median(times)
        self.fastest = min(times)

    def __str__(self) -> str:
        read = "-" if self.read is None else f"{self.read / MiB:.1f}"
        rate = "-" if not self.read else f"{self.read / MiB / self.seconds:.0f}"
        return (f"    {self.label:32s} {self.seconds:7.3f} s ({self.fastest:6.3f})  "
                f"read {read:>7s} MiB  stored {self.stored / MiB:7.1f} MiB  "
                f"{rate:>6s} MiB/s")


def timed(call) -> tuple[float, object]:
    """Seconds *call* takes, starting with no dirty pages of earlier steps to write back."""
    os.sync()
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def copy_baselines(volume: str, work: str, size: int, repeat: int) -> list[Row]:
    """cp --sparse=always and dd conv=sparse of the volume, with and without an fsync of
    the copy. dd reads every byte, holes included; cp (coreutils 9) finds the data with
    SEEK_DATA and copies it in the kernel (copy_file_range), so its "read" is unknown."""
    copy = os.path.join(work, "copy")
    rows = []
    commands = [("cp --sparse=always", ["cp", "--sparse=always", volume, copy], None),
                ("dd bs=4M conv=sparse", ["dd", f"if={volume}", f"of={copy}", "bs=4M",
                                          "conv=sparse", "status=none"], size)]
    for label, command, read in commands:
        for sync in (False, True):
            def run():
                subprocess.run(command, check=True)
                if sync:
                    fsync_file(copy)
            times = []
            for _ in range(repeat):
                if os.path.exists(copy):
                    os.unlink(copy)
                times.append(timed(run)[0])
            rows.append(Row(label + (" + fsync" if sync else ""), times, read,
                            allocated(copy)))
    os.unlink(copy)
    return rows


def snapshot_rows(label, volume, chunk_size, previous_runs, stores) -> tuple[Row, list]:
    """One snapshot per store (a fresh bucket each, so every run stores as much as the
    first would); *previous_runs* holds the previous snapshot made in each store."""
    from eucalite.ebs import chunks

    times, results = [], []
    for store, before in zip(stores, previous_runs):
        previous = {i: digest for i, (digest, _) in before.chunks.items()} if before else {}
        seconds, result = timed(lambda: chunks.snapshot(volume, chunk_size=chunk_size,
                                                        previous=previous, chunks=store))
        times.append(seconds)
        results.append(result)
    if len({(r.stored_bytes, r.read_bytes) for r in results}) != 1:
        raise SystemExit(f"{label}: runs disagree")
    return Row(label, times, results[0].read_bytes, results[0].stored_bytes), results


def restore_row(label, work, size, result, chunk_size, store, expected, repeat) -> Row:
    from eucalite.ebs import chunks

    target = os.path.join(work, "restored")
    times = [timed(lambda: chunks.restore(target, size, result.chunks, store,
                                          chunk_size=chunk_size))[0] for _ in range(repeat)]
    if file_sha256(target) != expected:
        raise SystemExit(f"{label}: restored volume differs from the original")
    row = Row(label, times, None, allocated(target))
    os.unlink(target)
    return row


# -- the run ---------------------------------------------------------------------------------

def run(args, app, work: str) -> None:
    from eucalite.ebs.chunks import CHUNK_SIZE, UPLOAD_WORKERS, ChunkStore

    size, written, changed = ((256 * MiB, 32, 4) if args.quick else (1024 * MiB, 100, 10))
    repeat = args.repeat
    rng = random.Random(args.seed)
    volume = os.path.join(work, "vol")
    make_volume(volume, size)
    slots = write_pieces(volume, rng, size, written)
    first_sha = file_sha256(volume)
    objects = app.extensions["eucalite"].s3.store
    chunk_sizes = [CHUNK_SIZE, MiB]
    sections: list[tuple[str, list[Row]]] = []
    with app.app_context():
        stores = {chunk_size: [ChunkStore(objects, bucket=f"bench-{chunk_size // MiB}m-{n}")
                               for n in range(repeat)] for chunk_size in chunk_sizes}
        rows, first = [], {}
        for chunk_size in chunk_sizes:
            row, first[chunk_size] = snapshot_rows(
                f"snapshot, {chunk_size // MiB} MiB chunks", volume, chunk_size,
                [None] * repeat, stores[chunk_size])
            rows.append(row)
        rows += copy_baselines(volume, work, size, repeat)
        sections.append((f"first snapshot: {size // MiB} MiB volume, {written} MiB of random "
                         f"data in 1 MiB pieces at random offsets", rows))

        # Rewrite pieces: half over existing data, half into holes (new data).
        write_pieces(volume, rng, size, changed // 2,
                     avoid=set(range(size // MiB)) - set(slots))
        write_pieces(volume, rng, size, changed - changed // 2, avoid=set(slots))
        second_sha = file_sha256(volume)
        rows, second = [], {}
        for chunk_size in chunk_sizes:
            row, second[chunk_size] = snapshot_rows(
                f"incremental, {chunk_size // MiB} MiB chunks", volume, chunk_size,
                first[chunk_size], stores[chunk_size])
            rows.append(row)
        rows += copy_baselines(volume, work, size, repeat)
        sections.append((f"second snapshot after rewriting {changed} MiB in 1 MiB pieces "
                         f"({changed // 2} over data, {changed - changed // 2} into holes)",
                         rows))

        rows = []
        for chunk_size in chunk_sizes:
            for name, results, sha in (("first", first, first_sha),
                                       ("second", second, second_sha)):
                rows.append(restore_row(f"restore {name}, {chunk_size // MiB} MiB chunks",
                                        work, size, results[chunk_size][0], chunk_size,
                                        stores[chunk_size][0], sha, repeat))
        sections.append(("restore: sparse file, fsync, rename; each chunk's sha256 checked "
                         "(whole file's sha256 verified after)", rows))

    print(f"EBS snapshot chunk engine in process (no HTTP), {UPLOAD_WORKERS} upload threads; "
          f"{os.cpu_count()} CPUs; volume in the page cache; object store, volume and copies "
          f"on one filesystem")
    print(f"  median of {repeat} runs (fastest in brackets); each snapshot run into a fresh "
          f"bucket. 'stored': MiB added to the object store; for cp/dd the copy's allocated "
          f"size; for restore the restored file's")
    for title, rows in sections:
        print()
        print(f"  {title}")
        for row in rows:
            print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="256 MiB volume, 32 MiB written, 4 MiB changed")
    parser.add_argument("--seed", type=int, default=1, help="for the random offsets")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each step")
    args = parser.parse_args()

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from eucalite import create_app

    logging.disable(logging.WARNING)
    work = tempfile.mkdtemp(prefix="eucalite-bench-ebs-")
    try:
        app = create_app({"data_dir": os.path.join(work, "data"), "node": False,
                          "log_level": "WARNING"}, environ={})
        run(args, app, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
