"""Server-side encryption (eucalite/s3/sse.py): SSE-S3 by default and on request, bucket
default encryption, SSE-C with its key checks, through boto3 against a live server; data at
rest is ciphertext (the segment files never hold the plaintext)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from test_s3_objects import data_dir
import storeutil

from eucalite.s3 import rest_encryption
from eucalite.errors.s3 import InvalidRequest

MIB = 1024 * 1024


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="bkt")
    return client


def _segments(live) -> list[bytes]:
    return storeutil.segment_bytes(live)


def _error(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _body(size: int) -> bytes:
    """Plaintext that is easy to spot on disk: a repeated marker, not random bytes."""
    return (b"PLAINTEXT-MARKER-" * (size // 17 + 1))[:size]


KEY = os.urandom(32)
OTHER_KEY = os.urandom(32)
SSEC = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY}


def test_new_objects_are_sse_s3_by_default_and_ciphertext_on_disk(live, s3):
    body = _body(300_000)
    put = s3.put_object(Bucket="bkt", Key="k", Body=body)
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'     # plaintext MD5, as AWS
    got = s3.get_object(Bucket="bkt", Key="k")
    assert got["ServerSideEncryption"] == "AES256" and got["Body"].read() == body
    assert s3.head_object(Bucket="bkt", Key="k")["ServerSideEncryption"] == "AES256"
    for start, end in ((0, 0), (1, 30), (15, 16), (17, 99_999), (123_457, 299_999)):
        ranged = s3.get_object(Bucket="bkt", Key="k", Range=f"bytes={start}-{end}")
        assert ranged["Body"].read() == body[start:end + 1], (start, end)
    [stored] = _segments(live)
    assert len(stored) == len(body)                  # CTR: sizes stay the plaintext's
    assert b"PLAINTEXT-MARKER" not in stored
    key_file = data_dir(live) / "s3" / "keys" / "master.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32


def test_bucket_encryption_default_put_get_delete_and_kms_refused(live, s3):
    rule = s3.get_bucket_encryption(Bucket="bkt")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule == [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                     "BucketKeyEnabled": False}]
    s3.put_bucket_encryption(Bucket="bkt", ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
        "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket="bkt")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule[0]["BucketKeyEnabled"] is True
    s3.delete_bucket_encryption(Bucket="bkt")
    rule = s3.get_bucket_encryption(Bucket="bkt")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule[0]["BucketKeyEnabled"] is False
    with pytest.raises(ClientError) as excinfo:
        s3.put_bucket_encryption(Bucket="bkt", ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    assert _error(excinfo) == ("InvalidArgument", 400)
    assert "KMS" in excinfo.value.response["Error"]["Message"]
    for algorithm in ("aws:kms", "aws:kms:dsse"):
        with pytest.raises(ClientError) as excinfo:
            s3.put_object(Bucket="bkt", Key="kms", Body=b"x", ServerSideEncryption=algorithm)
        assert _error(excinfo) == ("InvalidArgument", 400)
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 0
    assert s3.put_object(Bucket="bkt", Key="asked", Body=b"x",
                         ServerSideEncryption="AES256")["ServerSideEncryption"] == "AES256"


def test_sse_c_roundtrip_needs_the_right_key_and_stores_neither_key_nor_plaintext(live, s3):
    body = _body(100_000)
    put = s3.put_object(Bucket="bkt", Key="c", Body=body, **SSEC)
    assert put["SSECustomerAlgorithm"] == "AES256" and "ServerSideEncryption" not in put
    assert put["ETag"] != f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket="bkt", Key="c", **SSEC)
    assert got["Body"].read() == body and got["SSECustomerKeyMD5"] == put["SSECustomerKeyMD5"]
    assert s3.get_object(Bucket="bkt", Key="c", Range="bytes=5-20", **SSEC)[
        "Body"].read() == body[5:21]
    assert s3.head_object(Bucket="bkt", Key="c", **SSEC)["ContentLength"] == len(body)
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="bkt", Key="c")
    assert _error(excinfo) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="bkt", Key="c", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=OTHER_KEY)
    assert _error(excinfo) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket="bkt", Key="c", SSECustomerAlgorithm="AES256",
                       SSECustomerKey=OTHER_KEY)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.put_object(Bucket="bkt", Key="plain", Body=b"x")
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="bkt", Key="plain", **SSEC)
    assert _error(excinfo) == ("InvalidRequest", 400)
    stored = b"".join(_segments(live))
    assert b"PLAINTEXT-MARKER" not in stored and KEY not in stored
    database = data_dir(live) / "eucalite.db"
    if database.exists():
        import base64
        raw = database.read_bytes() + b"".join(
            path.read_bytes() for path in database.parent.glob("eucalite.db-*"))
        assert KEY not in raw and base64.b64encode(KEY) not in raw


def test_sse_c_bad_md5_bad_length_and_bad_algorithm(live, s3):
    import base64
    with pytest.raises(ClientError) as excinfo:       # boto3 sends the MD5 of this key
        s3.put_object(Bucket="bkt", Key="short", Body=b"x", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=os.urandom(16))
    assert _error(excinfo) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="bkt", Key="md5", Body=b"x", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=base64.b64encode(KEY).decode(),
                      SSECustomerKeyMD5=base64.b64encode(hashlib.md5(b"no").digest()).decode())
    assert _error(excinfo) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="bkt", Key="alg", Body=b"x", SSECustomerAlgorithm="AES128",
                      SSECustomerKey=KEY)
    assert _error(excinfo) == ("InvalidEncryptionAlgorithmError", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="bkt", Key="both", Body=b"x", ServerSideEncryption="AES256",
                      **SSEC)
    assert _error(excinfo) == ("InvalidArgument", 400)
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 0


def test_sse_c_over_plain_http_from_another_host_is_refused(live):
    with live.app.test_request_context("/", environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        with pytest.raises(InvalidRequest):
            rest_encryption._require_secure({"public_url": "", "s3_sse_c_allow_http": False})
        rest_encryption._require_secure({"public_url": "", "s3_sse_c_allow_http": True})
        rest_encryption._require_secure({"public_url": "https://cloud.example"})
    with live.app.test_request_context("/", environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        rest_encryption._require_secure({"public_url": ""})


def _multipart(s3, key: str, parts: list[bytes], **extra) -> dict:
    upload = s3.create_multipart_upload(Bucket="bkt", Key=key, **extra)
    done = []
    for number, data in enumerate(parts, 1):
        part = s3.upload_part(Bucket="bkt", Key=key, UploadId=upload["UploadId"],
                              PartNumber=number, Body=data, **extra)
        done.append({"PartNumber": number, "ETag": part["ETag"]})
    # Part 1 uploaded again: a new file under the same data key, so a fresh IV.
    part = s3.upload_part(Bucket="bkt", Key=key, UploadId=upload["UploadId"], PartNumber=1,
                          Body=parts[0], **extra)
    done[0]["ETag"] = part["ETag"]
    return s3.complete_multipart_upload(Bucket="bkt", Key=key, UploadId=upload["UploadId"],
                                        MultipartUpload={"Parts": done}, **(
                                            extra if "SSECustomerKey" in extra else {}))


@pytest.mark.parametrize("extra", [{}, SSEC], ids=["sse-s3", "sse-c"])
def test_multipart_upload_is_encrypted_and_reads_by_range_and_part(live, s3, extra):
    parts = [_body(5 * MIB), os.urandom(5 * MIB + 3), _body(1000)]
    whole = b"".join(parts)
    done = _multipart(s3, "mp", parts, **extra)
    if extra:       # boto3 does not parse it from CompleteMultipartUpload; AWS sends it
        assert done["ResponseMetadata"]["HTTPHeaders"][
            "x-amz-server-side-encryption-customer-algorithm"] == "AES256"
    else:
        assert done["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="bkt", Key="mp", **extra)["Body"].read() == whole
    start, end = 5 * MIB - 10, 10 * MIB + 10          # across all three parts
    assert s3.get_object(Bucket="bkt", Key="mp", Range=f"bytes={start}-{end}", **extra)[
        "Body"].read() == whole[start:end + 1]
    assert s3.get_object(Bucket="bkt", Key="mp", PartNumber=2, **extra)[
        "Body"].read() == parts[1]
    for stored in _segments(live):
        assert b"PLAINTEXT-MARKER" not in stored
        assert stored not in parts


def test_sse_c_upload_part_needs_the_upload_key(s3):
    upload = s3.create_multipart_upload(Bucket="bkt", Key="m", **SSEC)
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part(Bucket="bkt", Key="m", UploadId=upload["UploadId"], PartNumber=1,
                       Body=b"x")
    assert _error(excinfo) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part(Bucket="bkt", Key="m", UploadId=upload["UploadId"], PartNumber=1,
                       Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey=OTHER_KEY)
    assert _error(excinfo) == ("InvalidRequest", 400)


def test_copies_between_kinds_of_encryption(live, s3):
    body = _body(70_000)
    s3.put_object(Bucket="bkt", Key="src", Body=body)
    same = s3.copy_object(Bucket="bkt", Key="same", CopySource="bkt/src")
    assert same["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="bkt", Key="same")["Body"].read() == body
    to_c = s3.copy_object(Bucket="bkt", Key="to-c", CopySource="bkt/src", **SSEC)
    assert to_c["SSECustomerAlgorithm"] == "AES256"
    assert s3.get_object(Bucket="bkt", Key="to-c", **SSEC)["Body"].read() == body
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket="bkt", Key="back", CopySource="bkt/to-c")
    assert _error(excinfo) == ("InvalidRequest", 400)
    back = s3.copy_object(Bucket="bkt", Key="back", CopySource="bkt/to-c",
                          CopySourceSSECustomerAlgorithm="AES256",
                          CopySourceSSECustomerKey=KEY)
    assert back["ServerSideEncryption"] == "AES256"
    assert back["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert s3.get_object(Bucket="bkt", Key="back")["Body"].read() == body
    rekeyed = s3.copy_object(Bucket="bkt", Key="to-c", CopySource="bkt/to-c",
                             CopySourceSSECustomerAlgorithm="AES256",
                             CopySourceSSECustomerKey=KEY, SSECustomerAlgorithm="AES256",
                             SSECustomerKey=OTHER_KEY)
    assert rekeyed["SSECustomerAlgorithm"] == "AES256"
    assert s3.get_object(Bucket="bkt", Key="to-c", SSECustomerAlgorithm="AES256",
                         SSECustomerKey=OTHER_KEY)["Body"].read() == body
    upload = s3.create_multipart_upload(Bucket="bkt", Key="pc")
    part = s3.upload_part_copy(Bucket="bkt", Key="pc", UploadId=upload["UploadId"],
                               PartNumber=1, CopySource="bkt/to-c", CopySourceRange="bytes=10-99",
                               CopySourceSSECustomerAlgorithm="AES256",
                               CopySourceSSECustomerKey=OTHER_KEY)
    s3.complete_multipart_upload(Bucket="bkt", Key="pc", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{
                                     "PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket="bkt", Key="pc")["Body"].read() == body[10:100]
    for stored in _segments(live):
        assert b"PLAINTEXT-MARKER" not in stored


def test_console_download_and_internal_readers_decrypt(live, s3):
    from eucalite.s3 import objects, sse
    body = _body(4096)
    s3.put_object(Bucket="bkt", Key="k", Body=body)
    with live.app.app_context():
        store = live.app.extensions["eucalite"].s3.store
        version = objects.latest(objects.buckets.find("bkt"), "k")
        assert b"".join(sse.read(store, version)) == body
        assert b"".join(store.read(version.segments)) != body      # raw is ciphertext
    s3.put_object(Bucket="bkt", Key="c", Body=body, **SSEC)
    with live.app.app_context():
        version = objects.latest(objects.buckets.find("bkt"), "c")
        with pytest.raises(InvalidRequest):
            sse.read(store, version)


@storeutil.file_backend_only
def test_kill9_mid_encrypted_write_leaves_no_key_material_or_orphan(tmp_path):
    """A server killed while an SSE-C body streams: after restart no temp file, no segment
    and no key file beyond the master key (unchanged) remain, and what was acknowledged
    before still decrypts."""
    import base64
    import socket
    import time

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from liveutil import Live, free_port
    from test_s3_objects import _admin_app, _client, _files, _kill9, _serve

    data = tmp_path / "data"
    app, key_id, secret, region = _admin_app(data)
    port = free_port()
    process = _serve(data, port)
    try:
        s3 = _client(Live(app, port, key_id, secret, region))
        s3.create_bucket(Bucket="durable")
        kept = _body(MIB + 3)
        s3.put_object(Bucket="durable", Key="kept", Body=kept)
        master = (data / "s3" / "keys" / "master.key").read_bytes()
        total, sent = 64 * MIB, 8 * MIB
        url = f"http://127.0.0.1:{port}/durable/partial"
        request = AWSRequest(method="PUT", url=url, headers={
            "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Length": str(total),
            "x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY).decode(),
            "x-amz-server-side-encryption-customer-key-MD5": base64.b64encode(
                hashlib.md5(KEY).digest()).decode()})
        S3SigV4Auth(Credentials(key_id, secret), "s3", region).add_auth(request)
        lines = ["PUT /durable/partial HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()
                  if name.lower() != "host"]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            sock.sendall(_body(sent))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if any(path.stat().st_size > 0 for path in _files(data / "s3" / "tmp")):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the partial upload never reached s3/tmp")
            assert all(b"PLAINTEXT-MARKER" not in path.read_bytes()
                       for path in _files(data / "s3" / "tmp"))
            _kill9(process)
        port = free_port()
        process = _serve(data, port)
        s3 = _client(Live(app, port, key_id, secret, region))
        with pytest.raises(ClientError):
            s3.head_object(Bucket="durable", Key="partial", **SSEC)
        assert _files(data / "s3" / "tmp") == []
        assert [path.stat().st_size for path in _files(data / "s3" / "objects")] == [len(kept)]
        assert [path.name for path in _files(data / "s3" / "keys")] == ["master.key"]
        assert (data / "s3" / "keys" / "master.key").read_bytes() == master
        assert s3.get_object(Bucket="durable", Key="kept")["Body"].read() == kept
    finally:
        if process.poll() is None:
            _kill9(process)


def test_aws_cli_bucket_encryption_and_sse_c_copy(live, s3, tmp_path):
    import json
    import subprocess
    import sys

    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args) -> str:
        done = subprocess.run([aws, *args], env=live.env(), capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = json.loads(cli("s3api", "get-bucket-encryption", "--bucket", "bkt"))
    assert shown["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    source, key_file, back = tmp_path / "in.txt", tmp_path / "key.bin", tmp_path / "out.txt"
    source.write_bytes(_body(20_000))
    key_file.write_bytes(KEY)
    cli("s3", "cp", str(source), "s3://bkt/cli", "--sse-c", "AES256", "--sse-c-key",
        f"fileb://{key_file}")
    assert s3.get_object(Bucket="bkt", Key="cli", **SSEC)["Body"].read() == source.read_bytes()
    cli("s3", "cp", "s3://bkt/cli", str(back), "--sse-c", "AES256", "--sse-c-key",
        f"fileb://{key_file}")
    assert back.read_bytes() == source.read_bytes()
    head = json.loads(cli("s3api", "head-object", "--bucket", "bkt", "--key", "cli",
                          "--sse-customer-algorithm", "AES256", "--sse-customer-key",
                          f"fileb://{key_file}"))
    assert head["SSECustomerAlgorithm"] == "AES256"


def test_object_bytes_are_read_only_through_sse_read():
    """Every reader of object data decrypts (sse.read): nothing else in eucalite calls the
    store's raw read, which would hand out ciphertext (or an SSE-C object without its key)."""
    import re

    import eucalite
    package = Path(eucalite.__file__).parent
    raw = re.compile(r"store\s*(\(\))?\s*\.\s*read(er)?\s*\(")
    offenders = [f"{path.relative_to(package)}:{number}"
                 for path in package.rglob("*.py")
                 if path.relative_to(package).as_posix() not in ("s3/sse.py", "s3/store.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if raw.search(line)]
    assert offenders == []


def test_post_form_uploads_take_the_encryption_fields(live, s3):
    import base64
    import requests

    def post(key: str, fields: dict) -> requests.Response:
        form = s3.generate_presigned_post("bkt", key, Fields=fields,
                                          Conditions=[{name: value}
                                                      for name, value in fields.items()])
        return requests.post(form["url"], data=form["fields"],
                             files={"file": ("f", _body(5000))})

    assert post("s3", {"x-amz-server-side-encryption": "AES256"}).status_code == 204
    assert s3.head_object(Bucket="bkt", Key="s3")["ServerSideEncryption"] == "AES256"
    customer = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
                "x-amz-server-side-encryption-customer-key": base64.b64encode(KEY).decode(),
                "x-amz-server-side-encryption-customer-key-MD5":
                    base64.b64encode(hashlib.md5(KEY).digest()).decode()}
    assert post("c", customer).status_code == 204
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket="bkt", Key="c")
    assert _error(excinfo) == ("InvalidRequest", 400)
    assert s3.get_object(Bucket="bkt", Key="c", **SSEC)["Body"].read() == _body(5000)
    refused = post("kms", {"x-amz-server-side-encryption": "aws:kms"})
    assert refused.status_code == 400 and b"InvalidArgument" in refused.content
    assert "kms" not in [item["Key"] for item in s3.list_objects_v2(Bucket="bkt")["Contents"]]
    for stored in _segments(live):
        assert b"PLAINTEXT-MARKER" not in stored


def test_no_keystream_is_used_twice_for_parts_uploaded_again_or_copied(live, s3):
    """Nonce rule: the same part uploaded twice under one upload's data key, and a part
    copied from an object under the same cloud master key, are each encrypted with a fresh
    IV: the same plaintext never gives the same ciphertext."""
    body = _body(6000)
    upload = s3.create_multipart_upload(Bucket="bkt", Key="m")["UploadId"]
    seen = []
    for _ in range(2):
        before = set(_segments(live))
        s3.upload_part(Bucket="bkt", Key="m", UploadId=upload, PartNumber=1, Body=body)
        seen += [data for data in _segments(live) if data not in before]
    s3.put_object(Bucket="bkt", Key="src", Body=body)
    before = set(_segments(live))
    s3.upload_part_copy(Bucket="bkt", Key="m", UploadId=upload, PartNumber=2,
                        CopySource="bkt/src")
    seen += [data for data in _segments(live) if data not in before]
    assert len(seen) == 3 and len(set(seen)) == 3
    assert all(len(data) == len(body) for data in seen)


def test_reads_refuse_x_amz_server_side_encryption_and_post_answers_with_it(live, s3):
    import requests

    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"})
    plain = requests.get(url)
    assert plain.status_code == 200
    assert plain.headers["x-amz-server-side-encryption"] == "AES256"
    refused = requests.get(url, headers={"x-amz-server-side-encryption": "AES256"})
    assert refused.status_code == 400 and b"<Code>InvalidArgument</Code>" in refused.content
    form = s3.generate_presigned_post("bkt", "posted")
    posted = requests.post(form["url"], data=form["fields"], files={"file": ("f", b"abc")})
    assert posted.status_code == 204
    assert posted.headers["x-amz-server-side-encryption"] == "AES256"
