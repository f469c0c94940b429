"""The throwaway Ceph cluster the test command starts (tests/ceph/cluster.sh): its settings,
read once at import from the EUCALITE_TEST_CEPH_* and EUCALITE_TEST_RGW_* environment
(each test's environment is cleared of EUCALITE_* names, so read them here, not in a test),
and the config that puts a cloud's Walrus or EBS on it.

Without the cluster (a machine where ``./setup.sh test`` could not install or start Ceph)
:data:`needs_ceph` skips, saying so.
"""
from __future__ import annotations

import functools
import os
import sys
import uuid

import pytest

CONF = os.environ.get("EUCALITE_TEST_CEPH_CONF", "")
USER = os.environ.get("EUCALITE_TEST_CEPH_USER", "eucalite")
KEYRING = os.environ.get("EUCALITE_TEST_CEPH_KEYRING", "")
POOL = os.environ.get("EUCALITE_TEST_RBD_POOL", "eucalite-volumes")
RGW_URL = os.environ.get("EUCALITE_TEST_RGW_URL", "")
RGW_ACCESS_KEY = os.environ.get("EUCALITE_TEST_RGW_ACCESS_KEY", "")
RGW_SECRET_KEY = os.environ.get("EUCALITE_TEST_RGW_SECRET_KEY", "")
#: The directory the cluster lives in (its ceph.conf's).
DIR = os.path.dirname(CONF)

needs_ceph = pytest.mark.skipif(
    not (CONF and RGW_URL),
    reason="no test Ceph cluster (EUCALITE_TEST_CEPH_CONF): ./setup.sh test installs "
           "Debian's Ceph packages and starts one with tests/ceph/cluster.sh")


def new_backend_bucket() -> str:
    """A fresh RGW bucket name for one cloud's Walrus data (a backend bucket belongs to one
    cloud alone: its start-up recovery removes what its database does not name)."""
    return "eucalite-t-" + uuid.uuid4().hex[:20]


def s3_backend_options(bucket: str | None = None) -> dict:
    """Config putting a cloud's new buckets' data in the test RGW (bucket: a fresh one)."""
    return {"s3_backend": "s3", "s3_backend_url": RGW_URL,
            "s3_backend_access_key": RGW_ACCESS_KEY, "s3_backend_secret_key": RGW_SECRET_KEY,
            "s3_backend_bucket": bucket or new_backend_bucket(),
            "s3_backend_region": "us-east-1"}


def rbd_options() -> dict:
    """Config putting a cloud's new volumes in the test cluster's RBD pool."""
    return {"ebs_backend": "rbd", "ceph_conf": CONF, "ceph_user": USER,
            "ceph_keyring": KEYRING, "rbd_pool": POOL}


def as_environment(options: dict) -> dict:
    """*options* as EUCALITE_* environment names, for apps and `eucalite` subprocesses."""
    return {"EUCALITE_" + key.upper(): str(value) for key, value in options.items()}


@functools.cache
def rgw_client():
    """A boto3 S3 client on the test RGW itself (as the RGW user eucalite is given); one
    per process, as every test of the Ceph pass uses it to drop its backend bucket."""
    from botocore.config import Config
    from liveutil import aws_session
    return aws_session(RGW_ACCESS_KEY, RGW_SECRET_KEY, "us-east-1").client(
        "s3", endpoint_url=RGW_URL, config=Config(retries={"max_attempts": 1}))


def drop_backend_bucket(bucket: str, client=None) -> None:
    """Remove an RGW bucket a test's cloud used, with everything in it (unfinished
    multipart uploads too); nothing when it was never made. *client*: the S3 client to do
    it with (default :func:`rgw_client`, the cluster's own gateway)."""
    client = client or rgw_client()
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                              UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        pass
    except Exception as error:  # noqa: BLE001 - RGW stopped by the test itself, say
        if "NoSuchBucket" not in str(error):
            raise


def rados_modules():
    """Debian's python3-rados and python3-rbd (no PyPI wheels exist), importable from the
    venv's CPython 3.11, which has the same ABI: (rados, rbd)."""
    if "/usr/lib/python3/dist-packages" not in sys.path:
        sys.path.append("/usr/lib/python3/dist-packages")
    import rados
    import rbd
    return rados, rbd


def start_gateway(port: int):
    """A second RGW of the test cluster (identity client.rgw.b) on 127.0.0.1:*port*, in the
    foreground of a child process the caller may kill -9 (a gateway dying mid-request);
    returns the Popen once it answers. Stop it with :func:`stop_gateway`."""
    import socket
    import subprocess
    import time
    process = subprocess.Popen(
        ["radosgw", "-c", CONF, "-n", "client.rgw.b", "-f",
         # tcp_nodelay: without it each small GET waits ~40 ms (Nagle against the
         # client's delayed ACK between the response's header and body writes)
         "--rgw-frontends", f"beast endpoint=127.0.0.1:{port} tcp_nodelay=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"radosgw client.rgw.b exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("radosgw client.rgw.b did not listen within 60 s")


def stop_gateway(process) -> None:
    """Stop a gateway :func:`start_gateway` started (kill -9: nothing to flush)."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)
