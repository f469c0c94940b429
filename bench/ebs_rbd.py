#!/usr/bin/env python3
"""Benchmark: EBS volumes on Ceph RBD beside the file backend, in one run.

One table (median and fastest of ``--runs`` runs). Three in-process eucalites (fake
hypervisor, no VM, driven with boto3, every wait polled every 20 ms), one per way of
keeping volumes:

* ``file``: sparse files, snapshots as chunks in the object store (today's default);
* ``rbd, snapshots in Ceph``: RBD images, snapshots as protected RBD snapshots, volumes
  from them RBD clones (copy-on-write);
* ``rbd, snapshots in object store``: RBD images, snapshots read from the image (its
  allocated extents) into the object store's chunks, restored by writing an image.

Per run and backend: CreateVolume 1 GiB -> ``available``; ``--data`` MiB of random data
written into it (1 MiB pieces at random offsets, through the backend, untimed);
CreateSnapshot -> ``completed``; CreateVolume from the snapshot -> ``available``;
ModifyVolume growing the first volume 1 -> 2 GiB -> ``completed`` (DescribeVolumesModifications
polled). Beside, the raw operations: librbd's create of a 1 GiB image, snapshot + protect,
clone and resize 1 -> 2 GiB (what the rbd jobs call), and a sparse file's truncate
1 -> 2 GiB + fsync (what the file backend's resize does), each timed alone.

The Ceph cluster: ``--ceph-conf``, ``--ceph-user``, ``--ceph-keyring``, ``--pool``, by
default those of the test command's throwaway cluster (EUCALITE_TEST_CEPH_* in the
environment: ``set -a; . DIR/env; set +a``; tests/ceph/cluster.sh starts one). Its OSD
keeps data in memory (memstore), so the RBD figures show eucalite's and librbd's own
cost, not a disk's.

    flock /tmp/bench.lock .venv/bin/python bench/ebs_rbd.py [--runs N] [--data MiB]
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from common import run_cleaning_up  # bench/common.py (run as bench/<script>.py)
from ebs import MiB, GiB, POLL, Server, Table, progress  # bench/ebs.py

BACKENDS = [("file", {"ebs_backend": "file"}),
            ("rbd, snapshots in Ceph", {"ebs_backend": "rbd", "rbd_snapshots": "ceph"}),
            ("rbd, snapshots in object store", {"ebs_backend": "rbd",
                                                "rbd_snapshots": "objectstore"})]


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def write_data(server: Server, volume_id: str, rng: random.Random, mib: int) -> None:
    """*mib* pieces of 1 MiB of random data at distinct random MiB offsets of the volume."""
    from eucalite.db import db
    from eucalite.ebs.models import Volume

    with server.app.app_context():
        backing = server.services.ebs.backing_of(db.session.get(Volume, volume_id))
    for slot in rng.sample(range(GiB // MiB), mib):
        backing.write(volume_id, slot * MiB, rng.randbytes(MiB))


def grow(server: Server, volume_id: str, size_gb: int) -> float:
    """ModifyVolume to *size_gb* until its modification is completed: the seconds."""
    start = time.perf_counter()
    server.ec2.modify_volume(VolumeId=volume_id, Size=size_gb)
    while True:
        state = server.ec2.describe_volumes_modifications(VolumeIds=[volume_id])[
            "VolumesModifications"][0]["ModificationState"]
        if state in ("completed", "failed"):
            break
        time.sleep(POLL)
    if state != "completed":
        raise SystemExit(f"ModifyVolume of {volume_id} failed")
    return time.perf_counter() - start


def bench_backend(args, label: str, server: Server, table: Table) -> None:
    rng = random.Random(args.seed)
    samples = {"create": [], "snapshot": [], "from": [], "grow": []}
    for i in range(args.runs):
        progress(f"{label}: run {i + 1}/{args.runs}")
        seconds, volume_id = server.create_volume(1)
        samples["create"].append(seconds)
        write_data(server, volume_id, rng, args.data)
        seconds, snapshot_id, _stored = server.snapshot(volume_id)
        samples["snapshot"].append(seconds)
        seconds, copy = server.create_volume(snapshot_id=snapshot_id)
        samples["from"].append(seconds)
        samples["grow"].append(grow(server, volume_id, 2))
        server.delete_volume(copy)
        server.delete_volume(volume_id)
        server.ec2.delete_snapshot(SnapshotId=snapshot_id)
    table.section(f"{label}")
    table.row("CreateVolume 1 GiB -> available", samples["create"])
    table.row(f"CreateSnapshot ({args.data} MiB written) -> completed", samples["snapshot"])
    table.row("CreateVolume from it -> available", samples["from"])
    table.row("ModifyVolume 1 -> 2 GiB -> completed", samples["grow"])


def bench_raw(args, options: dict, table: Table) -> None:
    """librbd alone: create, snapshot + protect, clone (and their removal, untimed)."""
    from eucalite import ceph

    _rados, rbd = ceph.modules()
    cluster = ceph.connect(options)
    ioctx = cluster.open_ioctx(options["rbd_pool"])
    samples = {"create": [], "snap": [], "clone": [], "resize": []}
    try:
        for i in range(args.runs):
            name, child = f"bench-{os.getpid()}-{i}", f"bench-{os.getpid()}-{i}-clone"
            samples["create"].append(timed(lambda: rbd.RBD().create(ioctx, name, GiB,
                                                                    old_format=False)))
            with rbd.Image(ioctx, name) as image:
                samples["snap"].append(timed(lambda: (image.create_snap("s"),
                                                      image.protect_snap("s"))))
            samples["clone"].append(timed(lambda: rbd.RBD().clone(
                ioctx, name, "s", ioctx, child, features=rbd.RBD_FEATURE_LAYERING)))
            with rbd.Image(ioctx, child) as image:
                samples["resize"].append(timed(lambda: image.resize(2 * GiB)))
            rbd.RBD().remove(ioctx, child)
            with rbd.Image(ioctx, name) as image:
                image.unprotect_snap("s")
                image.remove_snap("s")
            rbd.RBD().remove(ioctx, name)
    finally:
        ioctx.close()
        cluster.shutdown()
    table.section("raw librbd (same cluster and pool)")
    table.row("rbd create 1 GiB image", samples["create"])
    table.row("rbd snapshot + protect (empty image)", samples["snap"])
    table.row("rbd clone of the snapshot", samples["clone"])
    table.row("rbd resize 1 -> 2 GiB (the clone)", samples["resize"])


def bench_raw_file(args, work: Path, table: Table) -> None:
    """The file backend's resize alone: a sparse 1 GiB file truncated to 2 GiB, fsynced."""
    samples = []
    for i in range(args.runs):
        path = work / f"grow-{i}.raw"
        with open(path, "wb") as f:
            f.truncate(GiB)
            os.fsync(f.fileno())

        def resize() -> None:
            with open(path, "r+b") as f:
                f.truncate(2 * GiB)
                os.fsync(f.fileno())
        samples.append(timed(resize))
        path.unlink()
    table.section("raw file (same disk as the file backend)")
    table.row("truncate 1 -> 2 GiB + fsync (sparse file)", samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each case (default 5)")
    parser.add_argument("--data", type=int, default=64,
                        help="MiB of data written before each snapshot (default 64)")
    parser.add_argument("--seed", type=int, default=1, help="for the random data")
    parser.add_argument("--ceph-conf", default=os.environ.get("EUCALITE_TEST_CEPH_CONF", ""))
    parser.add_argument("--ceph-user", default=os.environ.get("EUCALITE_TEST_CEPH_USER",
                                                              "eucalite"))
    parser.add_argument("--ceph-keyring",
                        default=os.environ.get("EUCALITE_TEST_CEPH_KEYRING", ""))
    parser.add_argument("--pool", default=os.environ.get("EUCALITE_TEST_RBD_POOL",
                                                         "eucalite-volumes"))
    args = parser.parse_args()
    if args.runs < 1 or not 1 <= args.data <= 1024:
        parser.error("--runs must be at least 1 and --data between 1 and 1024")
    if not args.ceph_conf:
        parser.error("no Ceph cluster: give --ceph-conf (or source a test cluster's env)")

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    logging.disable(logging.WARNING)
    ceph_options = {"ceph_conf": args.ceph_conf, "ceph_user": args.ceph_user,
                    "ceph_keyring": args.ceph_keyring, "rbd_pool": args.pool}
    table = Table()
    work = Path(tempfile.mkdtemp(prefix="eucalite-bench-ebs-rbd-"))

    def body(cleanup: list) -> None:
        for index, (label, options) in enumerate(BACKENDS):
            server = Server(work / f"data{index}", node=True, hypervisor="fake",
                            ebs_export="local", max_volume_gb=100, max_total_volume_gb=1000,
                            **ceph_options, **options)
            cleanup.insert(0, server.close)
            with server.app.app_context():
                problem = server.services.cluster.start_node_duty()
            if problem:
                raise SystemExit(f"node duty on the fake hypervisor: {problem}")
            line = server.services.ebs.describe_backend()
            if "UNREACHABLE" in line:
                raise SystemExit(line)
            bench_backend(args, label, server, table)
        bench_raw(args, ceph_options, table)
        bench_raw_file(args, work, table)

    run_cleaning_up(body, work)
    print(f"EBS on RBD benchmark: {os.cpu_count()} CPUs, median and fastest of {args.runs} "
          f"runs; eucalite in-process (werkzeug threaded, sqlite), boto3 without retries, "
          f"waits polled every 20 ms; files and object store under {work.parent}; Ceph "
          f"cluster {args.ceph_conf}, pool {args.pool}")
    table.print()


if __name__ == "__main__":
    main()
