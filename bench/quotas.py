#!/usr/bin/env python3
"""Benchmark: what a quota in force costs RunInstances (fake node driver), in one run.

eucalite is served from this process (werkzeug threads) with node duty on the fake
hypervisor, its node's capacity raised. Two accounts launch the same recorded image one
instance per call, their calls interleaved: ``free`` has no quota; ``limited`` has account
quotas (instances, vCPUs, memory, disk, far above what the run launches) set with the
same service call ``eucalite quota set`` makes, and launches as a user with its own
quotas too, so every launch reads both scopes' Limit policies and counts four keys twice
inside the write transaction. Prints p50 / p95 in ms of each, and the difference.

    python bench/quotas.py [--requests 100]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time

from common import InProcessCloud  # bench/common.py

LIMITS = {"ec2:quota-vminstancenumber": 100000, "ec2:quota-cputotalsize": 100000,
          "ec2:quota-memorytotalsize": 10 ** 9, "ec2:quota-disktotalsize": 10 ** 9}
ROOMY = 10 ** 7
IMAGES = {"free": "emi-0f0f0f01", "limited": "emi-0a0a0a01"}


def setup(cloud):
    """Clients (free account root, limited account user) and the image id."""
    import boto3
    from botocore.config import Config

    from eucalite import accounts, config as config_module
    from eucalite.cluster.models import Node
    from eucalite.compute.models import Image
    from eucalite.db import db
    from eucalite.identity import InlinePolicy

    conf = cloud.app.config["EUCALITE"]
    endpoint = config_module.endpoints(conf)["ec2"]
    made = {}
    with cloud.app.app_context():
        for node in db.session.execute(db.select(Node)).scalars():
            node.cores, node.memory_mb, node.disk_gb = ROOMY, ROOMY, ROOMY
        for name in ("free", "limited"):
            accounts.create_account(name)
            db.session.add(Image(id=IMAGES[name], owner_id=accounts.get_account(
                name).id, kind="machine", name="bench", state="available"))
        db.session.commit()
        admin = accounts.principal_of(accounts.get_user("eucalyptus", "admin"))
        iam = cloud.services.iam
        for name in ("free", "limited"):       # the same user and policy in each
            accounts.create_user(name, "dev")
            dev = accounts.get_user(name, "dev")
            db.session.add(InlinePolicy(user_id=dev.id, name="all", document=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})))
        db.session.commit()
        iam.set_quotas(admin, "limited", None, dict(LIMITS))
        iam.set_quotas(admin, "limited", "dev", dict(LIMITS))
        for name in ("free", "limited"):
            key = accounts.create_access_key(name, "dev")
            made[name] = boto3.session.Session().client(
                "ec2", endpoint_url=endpoint, region_name=conf["region"],
                aws_access_key_id=key.id, aws_secret_access_key=key.secret,
                config=Config(retries={"max_attempts": 1}))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100,
                        help="calls per account (at most 120: the default subnet is a /24)")
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="eucalite-bench-quotas-")
    cloud = InProcessCloud(data, node=True, hypervisor="fake")
    try:
        cloud.start_node()
        clients = setup(cloud)
        samples: dict[str, list[float]] = {"free": [], "limited": []}
        for name, ec2 in clients.items():          # warm: connections, caches
            ec2.run_instances(ImageId=IMAGES[name], MinCount=1, MaxCount=1)
        for _ in range(args.requests):
            for name, ec2 in clients.items():
                start = time.perf_counter()
                ec2.run_instances(ImageId=IMAGES[name], MinCount=1, MaxCount=1)
                samples[name].append(time.perf_counter() - start)
        p50 = {}
        for name, values in samples.items():
            ordered = sorted(values)
            p50[name] = statistics.median(ordered) * 1000
            p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
            what = "no quota" if name == "free" else "account + user quotas"
            print(f"RunInstances, {name:8s} ({what}): p50 {p50[name]:.2f} ms  "
                  f"p95 {p95:.2f} ms  ({len(values)} calls)")
        print(f"quota cost at p50: {p50['limited'] - p50['free']:+.2f} ms per launch")
    finally:
        cloud.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
