"""Walrus' data backends: buckets on the s3 backend (a Ceph RGW) behave as file buckets do
for S3 clients, their bytes live in the backend bucket, copies are made there, a switched
cloud serves both kinds of bucket, and an unreachable or dying backend costs an error,
never an acknowledged object nor a visible partial one."""
from __future__ import annotations

import hashlib
import json
import http.client
import urllib.parse
import subprocess
import sys
import threading
from pathlib import Path

import botocore.exceptions
import cephutil
import pytest
from liveutil import free_port, start_live

from eucalite.db import db
from eucalite.s3.models import Bucket, ObjectVersion, UploadPart

MiB = 1024 * 1024


def _data(size: int, seed: int = 0) -> bytes:
    """*size* bytes no two runs of which line up by accident."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * 4096            # 128 KiB
    return (block * (size // len(block) + 1))[:size]


def _backend_keys(bucket: str) -> list[str]:
    client = cephutil.rgw_client()
    return [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket) for item in page.get("Contents", [])]


def _referenced(live) -> set[str]:
    """Every segment path a row of *live*'s database names."""
    with live.app.app_context():
        paths = {path for (segments,) in db.session.execute(
            db.select(ObjectVersion.segments_json)) for path, _ in json.loads(segments)}
        paths |= {path for (path,) in db.session.execute(db.select(UploadPart.path))}
        db.session.rollback()
    return paths


def _put_killing(url: str, size: int, kill_at: int, kill) -> int | None:
    """PUT *size* bytes to presigned *url*, calling *kill* once *kill_at* are sent; the
    response status, or None when the connection broke before one came."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.putrequest("PUT", f"{parts.path}?{parts.query}")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        block, sent = b"z" * MiB, 0
        while sent < size:
            if sent == kill_at:
                kill()
            connection.send(block)
            sent += len(block)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


@pytest.fixture
def on_rgw(tmp_path):
    """A live cloud whose new buckets keep their data in a fresh RGW bucket; yields (live,
    backend bucket name)."""
    options = cephutil.s3_backend_options()
    live, server = start_live(tmp_path / "data", **options)
    yield live, options["s3_backend_bucket"]
    server.shutdown()
    cephutil.drop_backend_bucket(options["s3_backend_bucket"])


@cephutil.needs_ceph
def test_objects_round_trip_byte_exact_through_boto3_on_rgw(on_rgw):
    live, backend_bucket = on_rgw
    s3 = live.client("s3")
    s3.create_bucket(Bucket="rgw-round")
    small, large = _data(4096, 1), _data(20 * MiB + 123, 2)   # large: a backend multipart
    s3.put_object(Bucket="rgw-round", Key="small", Body=small)
    s3.put_object(Bucket="rgw-round", Key="large", Body=large)
    s3.put_object(Bucket="rgw-round", Key="empty", Body=b"")

    assert s3.get_object(Bucket="rgw-round", Key="small")["Body"].read() == small
    assert s3.get_object(Bucket="rgw-round", Key="large")["Body"].read() == large
    assert s3.get_object(Bucket="rgw-round", Key="empty")["Body"].read() == b""
    span = s3.get_object(Bucket="rgw-round", Key="large", Range="bytes=8388000-16777300")
    assert span["Body"].read() == large[8388000:16777301]
    # the bytes are in the backend bucket, one backend object per object, none elsewhere
    assert len(_backend_keys(backend_bucket)) == 3
    with live.app.app_context():
        assert db.session.execute(db.select(Bucket.backend).filter_by(
            name="rgw-round")).scalar_one() == "s3"
    files = Path(live.app.config["EUCALITE"]["data_dir"], "s3", "objects")
    assert list(files.glob("*/*")) == []


@cephutil.needs_ceph
def test_aws_cli_multipart_copy_round_trips_on_rgw(on_rgw, tmp_path):
    """`aws s3 cp` of a file past its 8 MiB multipart threshold: a Walrus multipart upload
    whose parts are backend objects, read back byte-exact."""
    live, backend_bucket = on_rgw
    live.client("s3").create_bucket(Bucket="rgw-cli")
    source, back = tmp_path / "upload.bin", tmp_path / "download.bin"
    source.write_bytes(_data(18 * MiB + 7, 3))
    aws = str(Path(sys.executable).parent / "aws")
    for args in (["s3", "cp", str(source), "s3://rgw-cli/big.bin"],
                 ["s3", "cp", "s3://rgw-cli/big.bin", str(back)]):
        result = subprocess.run([aws, *args], env=live.env(), capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
    assert back.read_bytes() == source.read_bytes()
    head = live.client("s3").head_object(Bucket="rgw-cli", Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3")                # 8 + 8 + 2 MiB parts
    assert len(_backend_keys(backend_bucket)) == 3                # one per part


@cephutil.needs_ceph
def test_copy_object_is_made_by_the_backend(on_rgw):
    """CopyObject sends the backend a CopyObject per segment, and no bytes."""
    live, backend_bucket = on_rgw
    s3 = live.client("s3")
    s3.create_bucket(Bucket="rgw-copy")
    body = _data(12 * MiB, 4)
    s3.put_object(Bucket="rgw-copy", Key="source", Body=body)
    backend = live.app.extensions["eucalite"].s3.store.backends["s3"]
    calls: list[str] = []
    backend.client.meta.events.register(
        "before-call.s3", lambda model, **_: calls.append(model.name))

    s3.copy_object(Bucket="rgw-copy", Key="copy", CopySource={"Bucket": "rgw-copy",
                                                               "Key": "source"})

    assert "CopyObject" in calls
    assert not {"PutObject", "UploadPart", "GetObject"} & set(calls)
    s3.delete_object(Bucket="rgw-copy", Key="source")            # the copy is its own
    assert s3.get_object(Bucket="rgw-copy", Key="copy")["Body"].read() == body
    assert len(_backend_keys(backend_bucket)) == 1


@cephutil.needs_ceph
def test_a_cloud_switched_from_files_to_rgw_serves_both_buckets(tmp_path):
    data_dir = tmp_path / "data"
    live, server = start_live(data_dir, s3_backend="file")       # files
    s3 = live.client("s3")
    s3.create_bucket(Bucket="on-files")
    s3.put_object(Bucket="on-files", Key="k", Body=b"kept in a file")
    server.shutdown()

    options = cephutil.s3_backend_options()
    live, server = start_live(data_dir, **options)
    try:
        with live.app.app_context():
            live.app.extensions["eucalite"].s3.recover()          # as `eucalite serve` does
        s3 = live.client("s3")
        s3.create_bucket(Bucket="on-rgw")
        s3.put_object(Bucket="on-rgw", Key="k", Body=b"kept in RGW")
        s3.put_object(Bucket="on-files", Key="k2", Body=b"still a file")

        assert s3.get_object(Bucket="on-files", Key="k")["Body"].read() == b"kept in a file"
        assert s3.get_object(Bucket="on-files", Key="k2")["Body"].read() == b"still a file"
        assert s3.get_object(Bucket="on-rgw", Key="k")["Body"].read() == b"kept in RGW"
        assert len(_backend_keys(options["s3_backend_bucket"])) == 1
        # a copy across lands in the target bucket's backend
        s3.copy_object(Bucket="on-rgw", Key="from-files",
                       CopySource={"Bucket": "on-files", "Key": "k"})
        assert s3.get_object(Bucket="on-rgw", Key="from-files")["Body"].read() == \
            b"kept in a file"
        assert len(_backend_keys(options["s3_backend_bucket"])) == 2
        s3.delete_object(Bucket="on-files", Key="k")
        assert [item["Key"] for item in s3.list_objects_v2(Bucket="on-files")["Contents"]] \
            == ["k2"]
    finally:
        server.shutdown()
        cephutil.drop_backend_bucket(options["s3_backend_bucket"])


def test_an_unreachable_backend_is_a_503_naming_it_and_records_nothing(tmp_path):
    """A backend on a closed port: writes are 503 ServiceUnavailable naming the backend,
    and no object or part row is left; the server itself started and says UNREACHABLE."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live, server = start_live(tmp_path / "data", s3_backend="s3", s3_backend_url=url,
                              s3_backend_access_key="k", s3_backend_secret_key="s",
                              s3_backend_bucket="nowhere")
    try:
        service = live.app.extensions["eucalite"].s3
        with live.app.app_context():
            assert service.recover() == (0, 0)                   # logged, not raised
        assert service.describe_backend().startswith(
            f"object data in s3 bucket nowhere at {url} (UNREACHABLE: ")
        s3 = live.client("s3")
        s3.create_bucket(Bucket="down")
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            s3.put_object(Bucket="down", Key="k", Body=b"lost?")
        error = caught.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error["Error"]["Code"] == "ServiceUnavailable"
        assert url in error["Error"]["Message"] and "nowhere" in error["Error"]["Message"]

        upload = s3.create_multipart_upload(Bucket="down", Key="m")["UploadId"]
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            s3.upload_part(Bucket="down", Key="m", UploadId=upload, PartNumber=1, Body=b"x")
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"

        assert "Contents" not in s3.list_objects_v2(Bucket="down")
        assert s3.list_parts(Bucket="down", Key="m", UploadId=upload).get("Parts", []) == []
        assert _referenced(live) == set()
    finally:
        server.shutdown()


def test_the_banner_line_names_the_file_backend(tmp_path):
    from eucalite import create_app
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False,
                      "s3_backend": "file"})
    with app.app_context():
        line = app.extensions["eucalite"].s3.describe_backend()
    assert line == f"object data in files under {tmp_path}/data/s3/objects"


@cephutil.needs_ceph
def test_a_get_keeps_its_version_when_it_is_replaced_while_streaming(on_rgw):
    """A GET already streaming keeps sending the bytes it started with when the object is
    overwritten meanwhile; the old segment goes once the stream ends."""
    live, backend_bucket = on_rgw
    s3 = live.client("s3")
    s3.create_bucket(Bucket="rgw-stream")
    old = _data(24 * MiB, 5)
    s3.put_object(Bucket="rgw-stream", Key="k", Body=old)
    body = s3.get_object(Bucket="rgw-stream", Key="k")["Body"]
    first = body.read(MiB)
    s3.put_object(Bucket="rgw-stream", Key="k", Body=b"new")
    assert len(_backend_keys(backend_bucket)) == 2               # the old one still held
    assert first + body.read() == old
    body.close()
    assert s3.get_object(Bucket="rgw-stream", Key="k")["Body"].read() == b"new"
    for _ in range(50):                  # the server thread closes the stream after sending
        if len(_backend_keys(backend_bucket)) == 1:
            break
        threading.Event().wait(0.1)
    assert len(_backend_keys(backend_bucket)) == 1


@cephutil.needs_ceph
def test_killing_the_gateway_mid_upload_loses_nothing_acknowledged(tmp_path):
    """kill -9 of the RGW while a large PUT streams: the client gets an error, the object
    is not visible, the objects acknowledged before are intact once the gateway is back,
    and start-up recovery leaves the backend bucket holding exactly what rows name."""
    port = free_port()
    gateway = cephutil.start_gateway(port)
    options = {**cephutil.s3_backend_options(), "s3_backend_url": f"http://127.0.0.1:{port}"}
    live, server = start_live(tmp_path / "data", **options)
    try:
        s3 = live.client("s3", read_timeout=120)
        s3.create_bucket(Bucket="rgw-kill")
        small, large = _data(5000, 6), _data(17 * MiB, 7)
        s3.put_object(Bucket="rgw-kill", Key="small", Body=small)
        s3.put_object(Bucket="rgw-kill", Key="large", Body=large)

        # a 256 MiB PUT (presigned, sent by hand) with the gateway killed 40 MiB in
        url = s3.generate_presigned_url("put_object", Params={"Bucket": "rgw-kill",
                                                              "Key": "doomed"})
        status = _put_killing(url, 256 * MiB, 40 * MiB, lambda: cephutil.stop_gateway(gateway))
        assert status != 200, "the PUT was acknowledged although its backend died under it"

        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="rgw-kill")["Contents"]]
        assert keys == ["large", "small"]
        with pytest.raises(botocore.exceptions.ClientError):
            s3.head_object(Bucket="rgw-kill", Key="doomed")

        gateway = cephutil.start_gateway(port)
        assert s3.get_object(Bucket="rgw-kill", Key="small")["Body"].read() == small
        assert s3.get_object(Bucket="rgw-kill", Key="large")["Body"].read() == large
        with live.app.app_context():
            live.app.extensions["eucalite"].s3.recover()
        bucket = options["s3_backend_bucket"]
        held = {"s3:" + key for key in _backend_keys(bucket)}
        assert held == _referenced(live)
        assert cephutil.rgw_client().list_multipart_uploads(Bucket=bucket).get(
            "Uploads", []) == []
    finally:
        server.shutdown()
        cephutil.drop_backend_bucket(options["s3_backend_bucket"])
        cephutil.stop_gateway(gateway)


@cephutil.needs_ceph
def test_recovery_removes_only_what_no_row_names(on_rgw):
    live, backend_bucket = on_rgw
    s3 = live.client("s3")
    s3.create_bucket(Bucket="rgw-orphans")
    s3.put_object(Bucket="rgw-orphans", Key="kept", Body=b"kept")
    rgw = cephutil.rgw_client()
    rgw.put_object(Bucket=backend_bucket, Key="0" * 32, Body=b"orphan of a crash")
    rgw.create_multipart_upload(Bucket=backend_bucket, Key="1" * 32)
    with live.app.app_context():
        assert live.app.extensions["eucalite"].s3.recover() == (1, 1)
    assert len(_backend_keys(backend_bucket)) == 1
    assert s3.get_object(Bucket="rgw-orphans", Key="kept")["Body"].read() == b"kept"


def test_the_console_shows_which_backend_holds_each_bucket(tmp_path):
    """Bucket list and bucket page name the backend; a bucket made before a switch keeps
    its own. (The s3 backend is configured but never reached: showing it costs no call.)"""
    from consoleutil import Console, console_app

    app = console_app(tmp_path, s3_backend="file")
    try:
        admin = Console(app)
        admin.page("/console/buckets/create", {"name": "filed"})
        store = app.extensions["eucalite"].s3.store
        from eucalite.s3.backends.s3 import S3Backend
        store.backends["s3"] = S3Backend(f"http://127.0.0.1:{free_port()}", "k", "s", "b")
        store.default = "s3"                                   # the cloud switched to s3
        admin.page("/console/buckets/create", {"name": "remote"})
        listing = admin.text("/console/buckets")
        assert '<td data-backend="file">files on the cloud host</td>' in listing
        assert '<td data-backend="s3">S3 backend (e.g. Ceph RGW)</td>' in listing
        assert 'data-backend="s3">data in S3 backend' in admin.text("/console/buckets/remote")
        assert 'data-backend="file">data in files' in admin.text("/console/buckets/filed")
    finally:
        app.extensions["eucalite"].compute.worker.shutdown()


@cephutil.needs_ceph
def test_a_read_closed_unstarted_releases_its_segments(on_rgw):
    """A read opened and closed before its first chunk (a client gone at once) holds
    nothing back: the segment it pinned is freed by the next delete. The banner line says
    the backend is reachable."""
    live, backend_bucket = on_rgw
    store = live.app.extensions["eucalite"].s3.store
    assert store.describe() == (f"object data in s3 bucket {backend_bucket} at "
                                f"{cephutil.RGW_URL} (reachable)")
    from eucalite.s3.store import HashingReader
    stored = store.write(HashingReader(iter([b"pinned?"])))
    stream = store.read([(stored.path, stored.size)])
    stream.close()
    store.delete([stored.path])
    assert _backend_keys(backend_bucket) == []
