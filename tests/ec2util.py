"""Helpers for the EC2 tests: images and capacity recorded or read directly, instance
states waited for, and EC2 Query requests signed by hand."""
from __future__ import annotations

import time
from unittest import mock

import botocore.auth
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from eucalite import accounts
from eucalite.cluster.models import Node
from eucalite.compute import instance_types
from eucalite.compute.models import Image
from eucalite.db import db


def make_image(live, image_id="emi-0a1b2c3d", account="eucalyptus", **fields) -> str:
    """An available machine image owned by *account*, recorded directly (images have
    their own tests; the callers are about instances)."""
    with live.app.app_context():
        owner = accounts.get_account(account).id
        db.session.add(Image(id=image_id, owner_id=owner, kind="machine", name=image_id,
                             state="available", **fields))
        db.session.commit()
    return image_id


def wait_for_state(ec2, ids, state, timeout=10) -> list[dict]:
    """Poll DescribeInstances until every instance in *ids* is in *state*; their items."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [item for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                 for item in reservation["Instances"]]
        if all(item["State"]["Name"] == state for item in found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"{ids} did not reach {state}: {[i['State'] for i in found]}")


def small_capacity(live) -> int:
    """How many m1.small instances the node(s) can hold (drivers offer different hosts):
    their cores and memory times the config's overcommit ratios, their disk as it is."""
    config = live.app.config["EUCALITE"]
    with live.app.app_context():
        small = instance_types.get("m1.small")
        return sum(min(int(node.cores * config["cpu_overcommit"]) // small.cpu,
                       int(node.memory_mb * config["memory_overcommit"]) // small.memory_mb,
                       node.disk_gb // small.disk_gb)
                   for node in db.session.execute(db.select(Node)).scalars())


def used_cores(live) -> int:
    """The cores the nodes' instances hold."""
    with live.app.app_context():
        return sum(node.used_cores for node in db.session.execute(db.select(Node)).scalars())


def signed_post(live, body: str, *, secret=None, key_id=None, when=None, service="ec2",
                send_body: str | None = None) -> requests.Response:
    """POST *body* signed with SigV4 at time *when*; optionally send a different body."""
    url = live.endpoints[service]
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    credentials = Credentials(key_id or live.key_id, secret or live.secret)
    signer = botocore.auth.SigV4Auth(credentials, service, live.region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
            signer.add_auth(request)
    prepared = request.prepare()
    return requests.post(url, data=send_body if send_body is not None else body,
                         headers=dict(prepared.headers))
