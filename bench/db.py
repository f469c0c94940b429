#!/usr/bin/env python3
"""Benchmark: the same API workload on SQLite and on PostgreSQL, in one run.

For each database, a fresh in-process cloud (node duty on the fake hypervisor, room for
every instance) serves boto3 over loopback, and the run times:

* RunInstances: --instances launches of one instance each, from --threads threads;
* DescribeInstances of all of them, --describes times;
* S3 PutObject of --objects small objects (--threads threads), then ListObjectsV2 of the
  whole bucket (pages of 1,000), --lists times;

and prints each phase's wall time and requests per second side by side.

PostgreSQL: --postgresql URL (any database on that server will do: the benchmark creates
its own and drops it), else EUCALITE_TEST_DATABASE_URL, else a private server started for
the run (Debian's postgresql package: initdb in a temporary directory, run as `postgres`
when this is root) and stopped after.

    python bench/db.py [--instances 200] [--objects 1000] [--threads 4] [--postgresql URL]
"""
from __future__ import annotations

import argparse
import glob
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import InProcessCloud, progress  # noqa: E402

IMAGE_ID = "emi-0db0be9c"
ROOMY = 1_000_000


def private_server(top: Path) -> tuple[str, list]:
    """Start PostgreSQL in *top*/pg (unix socket only); its URL and the command stopping it."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise SystemExit("no PostgreSQL (apt install postgresql) and no --postgresql URL")
    directory = top / "pg"
    directory.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:       # initdb refuses root
        os.chown(top, *_ids("postgres"))
        os.chown(directory, *_ids("postgres"))
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, f"{bins[-1]}/initdb", "-D", str(directory / "data"), "-U",
                    "eucalite", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True)
    pg_ctl = [*as_user, f"{bins[-1]}/pg_ctl", "-D", str(directory / "data")]
    # durable commits, as a production server runs (unlike the test suite's)
    subprocess.run([*pg_ctl, "-l", str(directory / "log"), "-w", "start", "-o",
                    f"-k {directory} -c listen_addresses=''"], check=True,
                   capture_output=True)
    return f"postgresql://eucalite@/postgres?host={directory}", [*pg_ctl, "-m", "fast", "stop"]


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def admin_engine(url: str):
    from sqlalchemy import create_engine

    from eucalite.db import engine_url

    return create_engine(engine_url(url), isolation_level="AUTOCOMMIT")


def database_on(server_url: str) -> tuple[str, str]:
    """A new database on the server: (its URL, its name)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from eucalite.db import engine_url

    name = "eucalite_bench_" + uuid.uuid4().hex[:8]
    engine = admin_engine(server_url)
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = make_url(engine_url(server_url)).set(database=name)
    return url.render_as_string(hide_password=False), name


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import text

    engine = admin_engine(server_url)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def timed(calls, threads: int) -> float:
    """Run every callable in *calls* on *threads* threads; the wall seconds it took."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()
    return time.perf_counter() - start


def workload(data_dir: Path, database_url: str, args) -> dict[str, tuple[int, float]]:
    """The phases on one database: {phase: (requests, wall seconds)}."""
    import boto3
    from botocore.config import Config

    from eucalite import accounts
    from eucalite.cluster.models import Node
    from eucalite.compute.models import Image
    from eucalite.db import db

    cloud = InProcessCloud(data_dir, database_url=database_url, node=True, hypervisor="fake",
                           instance_subnet="10.128.0.0/18")
    try:
        cloud.start_node()
        with cloud.app.app_context():
            for node in db.session.execute(db.select(Node)).scalars():
                node.cores, node.memory_mb, node.disk_gb = ROOMY, ROOMY, ROOMY
            db.session.add(Image(id=IMAGE_ID, owner_id=accounts.get_account("eucalyptus").id,
                                 kind="machine", name="bench", state="available"))
            db.session.commit()
            key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
            key_id, secret = key.id, key.secret
        s3 = boto3.session.Session().client(
            "s3", endpoint_url=cloud.ec2.meta.endpoint_url.rsplit("/services", 1)[0],
            region_name=cloud.ec2.meta.region_name, aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, max_pool_connections=args.threads))
        ec2 = cloud.ec2
        results = {}
        launch = lambda: ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1)  # noqa
        results["RunInstances"] = (args.instances,
                                   timed([launch] * args.instances, args.threads))
        progress(f"  {args.instances} instances launched")

        def describe():
            found = sum(len(r["Instances"])
                        for r in ec2.describe_instances()["Reservations"])
            assert found == args.instances, found
        results["DescribeInstances (all)"] = (args.describes, timed([describe] * args.describes,
                                                                    1))
        s3.create_bucket(Bucket="bench")
        puts = [lambda i=i: s3.put_object(Bucket="bench", Key=f"k/{i:05d}", Body=b"x" * 100)
                for i in range(args.objects)]
        results["S3 PutObject"] = (args.objects, timed(puts, args.threads))

        def list_all():
            keys = sum(page.get("KeyCount", 0)
                       for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench"))
            assert keys == args.objects, keys
        pages = -(-args.objects // 1000)
        results["S3 ListObjectsV2 (all)"] = (args.lists * pages,
                                             timed([list_all] * args.lists, 1))
        return results
    finally:
        cloud.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--describes", type=int, default=20)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--lists", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgresql", default=os.environ.get("EUCALITE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    top = Path(tempfile.mkdtemp(prefix="eucalite-bench-db."))
    stop = None
    server = args.postgresql
    name = None
    try:
        if not server:
            progress("starting a private PostgreSQL server")
            server, stop = private_server(top)
        progress("SQLite")
        sqlite = workload(top / "sqlite", f"sqlite:///{top}/sqlite/eucalite.db", args)
        progress("PostgreSQL")
        url, name = database_on(server)
        postgres = workload(top / "postgresql", url, args)
    finally:
        if name:
            drop_database(server, name)
        if stop:
            subprocess.run(stop, capture_output=True)
        subprocess.run(["rm", "-rf", str(top)])
    print(f"\n{'phase':<26}{'requests':>9}  {'SQLite':>16}  {'PostgreSQL':>16}")
    for phase, (count, seconds) in sqlite.items():
        pg_seconds = postgres[phase][1]
        print(f"{phase:<26}{count:>9}  {seconds:7.2f} s {count / seconds:5.0f}/s"
              f"  {pg_seconds:7.2f} s {count / pg_seconds:5.0f}/s")


if __name__ == "__main__":
    main()
