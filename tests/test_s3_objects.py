"""S3 objects over real HTTP with boto3: put/get/head with stored headers and metadata,
Content-MD5, awkward keys, ranges, conditional reads and writes, response overrides,
copy, delete and multi-delete, GET by part number; and durability across kill -9 of a
real ``eucalite serve``."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from liveutil import Live, free_port
import storeutil
from awsutil import failure

MiB = 1024 * 1024


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="bkt")
    return client


def data_dir(live) -> Path:
    return Path(live.app.config["EUCALITE"]["data_dir"])


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --- put / get / head --------------------------------------------------------------------

def test_put_get_head_roundtrip_with_headers_and_metadata(s3):
    body = b"compressed-looking bytes"
    expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    put = s3.put_object(Bucket="bkt", Key="doc.txt", Body=body, ContentType="text/plain",
                        CacheControl="max-age=60", ContentDisposition='attachment; '
                        'filename="doc.txt"', ContentEncoding="gzip", ContentLanguage="en",
                        Expires=expires, Metadata={"color": "blue", "Mixed-Case": "Value"})
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ETag"] == etag
    assert "VersionId" not in put
    for response in (s3.get_object(Bucket="bkt", Key="doc.txt"),
                     s3.head_object(Bucket="bkt", Key="doc.txt")):
        assert response["ContentType"] == "text/plain"
        assert response["CacheControl"] == "max-age=60"
        assert response["ContentDisposition"] == 'attachment; filename="doc.txt"'
        assert response["ContentEncoding"] == "gzip"
        assert response["ContentLanguage"] == "en"
        assert response["Expires"] == expires
        # S3 lower-cases user metadata names.
        assert response["Metadata"] == {"color": "blue", "mixed-case": "Value"}
        assert response["ETag"] == etag
        assert response["ContentLength"] == len(body)
        assert response["AcceptRanges"] == "bytes"
        assert isinstance(response["LastModified"], dt.datetime)
    assert s3.get_object(Bucket="bkt", Key="doc.txt")["Body"].read() == body


def test_default_content_type_and_empty_object(s3):
    s3.put_object(Bucket="bkt", Key="empty", Body=b"")
    response = s3.get_object(Bucket="bkt", Key="empty")
    assert response["Body"].read() == b""
    assert response["ContentLength"] == 0
    assert response["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    assert response["ContentType"] == "binary/octet-stream"


def test_overwrite_replaces_data_and_metadata(live, s3):
    s3.put_object(Bucket="bkt", Key="k", Body=b"first", Metadata={"a": "1"})
    s3.put_object(Bucket="bkt", Key="k", Body=b"second!", ContentType="text/x-two")
    response = s3.get_object(Bucket="bkt", Key="k")
    assert response["Body"].read() == b"second!"
    assert response["Metadata"] == {}
    assert response["ContentType"] == "text/x-two"
    # the first version's data is gone from disk
    assert _usage(live) == len(b"second!")


def test_concurrent_puts_of_one_key_leave_one_object(live, s3):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [bytes([index]) * (1000 + index) for index in range(12)]
    client = live.client("s3", max_pool_connections=12)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda body: client.put_object(Bucket="bkt", Key="hot", Body=body),
                      bodies))
    body = s3.get_object(Bucket="bkt", Key="hot")["Body"].read()
    assert body in bodies
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 1
    # exactly one version's data is kept: none of the replaced ones leaked
    assert _usage(live) == len(body)


def _usage(live) -> int:
    return storeutil.usage(live)


def test_content_md5_right_and_wrong(s3):
    body = b"checked body"
    s3.put_object(Bucket="bkt", Key="good", Body=body, ContentMD5=md5_b64(body))
    assert s3.get_object(Bucket="bkt", Key="good")["Body"].read() == body
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="bad", Body=body,
                            ContentMD5=md5_b64(b"something else"))
    assert (code, status) == ("BadDigest", 400)
    code, status, _ = failure(s3.head_object, Bucket="bkt", Key="bad")
    assert status == 404


def test_content_md5_not_base64_of_16_bytes_is_invalid_digest(s3):
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="bad", Body=b"x",
                            ContentMD5="bm90IGFuIG1kNQ==")
    assert (code, status) == ("InvalidDigest", 400)


def test_metadata_too_large_and_bad_storage_class(s3):
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="k", Body=b"x",
                            Metadata={"big": "v" * 2100})
    assert (code, status) == ("MetadataTooLarge", 400)
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="k", Body=b"x",
                            StorageClass="PAPER_TAPE")
    assert (code, status) == ("InvalidStorageClass", 400)
    s3.put_object(Bucket="bkt", Key="k", Body=b"x", StorageClass="STANDARD_IA")
    assert s3.head_object(Bucket="bkt", Key="k")["StorageClass"] == "STANDARD_IA"
    assert s3.list_objects_v2(Bucket="bkt")["Contents"][0]["StorageClass"] == "STANDARD_IA"


def test_put_to_missing_bucket_is_no_such_bucket(s3):
    code, status, response = failure(s3.put_object, Bucket="absent", Key="k", Body=b"x")
    assert (code, status) == ("NoSuchBucket", 404)
    assert response["Error"]["BucketName"] == "absent"


# --- keys --------------------------------------------------------------------------------

AWKWARD_KEYS = [
    "../escape-{tag}",
    "../../../../../../../../tmp/eucalite-escape-{tag}",
    "a/../../b-{tag}",
    "./dot/./segments",
    "..",
    "100%",
    "%2F-not-a-slash %41",
    "with space and  two",
    "a+b+c",
    "ünïcødé/ключ/鍵/😀",
    "double//slash",
    "//leading/slashes",
    "trailing/",
    "question?mark&amp=1#hash",
    "tab\tand~tilde;semi,comma'quote\"dq<lt>",
    "x" * 1024,
    "é" * 512,                                  # 1024 bytes of UTF-8
]


def test_awkward_keys_roundtrip_and_never_reach_the_filesystem(live, s3, tmp_path):
    tag = uuid.uuid4().hex
    keys = [key.format(tag=tag) if "{tag}" in key else key for key in AWKWARD_KEYS]
    before = {path for path in tmp_path.rglob("*")}
    for index, key in enumerate(keys):
        body = f"body of key {index}".encode()
        s3.put_object(Bucket="bkt", Key=key, Body=body)
        assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == body, key
        assert s3.head_object(Bucket="bkt", Key=key)["ContentLength"] == len(body), key
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bkt"):
        listed += [item["Key"] for item in page.get("Contents", [])]
    assert listed == sorted(keys, key=lambda key: key.encode())
    objects = data_dir(live) / "s3" / "objects"
    keys_dir = data_dir(live) / "s3" / "keys"          # SSE-S3's master key (sse.py)
    for path in {path for path in tmp_path.rglob("*")} - before:
        inside = objects in path.parents or path.parent == objects or keys_dir in (
            path, path.parent)
        assert inside or path.name.startswith("eucalite.db") or path == objects, path
    assert not Path(f"/tmp/eucalite-escape-{tag}").exists()
    assert not (tmp_path / f"escape-{tag}").exists()
    assert not (data_dir(live) / f"escape-{tag}").exists()
    for key in keys:
        s3.delete_object(Bucket="bkt", Key=key)
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 0
    assert _usage(live) == 0


def test_key_of_1025_bytes_is_key_too_long(s3):
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="k" * 1025, Body=b"x")
    assert (code, status) == ("KeyTooLongError", 400)
    code, status, response = failure(s3.put_object, Bucket="bkt", Key="é" * 512 + "k",
                                   Body=b"x")
    assert (code, status) == ("KeyTooLongError", 400)
    assert response["Error"]["Size"] == "1025"
    assert response["Error"]["MaxSizeAllowed"] == "1024"
    assert failure(s3.create_multipart_upload, Bucket="bkt", Key="k" * 1025)[0] == \
        "KeyTooLongError"
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 0


# --- ranges ------------------------------------------------------------------------------

@pytest.fixture
def digits(s3):
    s3.put_object(Bucket="bkt", Key="digits", Body=b"0123456789")
    return s3


@pytest.mark.parametrize("header, body, content_range", [
    ("bytes=0-4", b"01234", "bytes 0-4/10"),
    ("bytes=5-", b"56789", "bytes 5-9/10"),
    ("bytes=-3", b"789", "bytes 7-9/10"),
    ("bytes=8-100", b"89", "bytes 8-9/10"),
    ("bytes=-30", b"0123456789", "bytes 0-9/10"),
    ("bytes=3-3", b"3", "bytes 3-3/10"),
])
def test_get_range(digits, header, body, content_range):
    response = digits.get_object(Bucket="bkt", Key="digits", Range=header)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert response["Body"].read() == body
    assert response["ContentRange"] == content_range
    assert response["ContentLength"] == len(body)


def test_head_with_range(digits):
    response = digits.head_object(Bucket="bkt", Key="digits", Range="bytes=2-5")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert response["ContentLength"] == 4
    assert response["ContentRange"] == "bytes 2-5/10"


def test_range_beyond_end_is_invalid_range(digits):
    code, status, response = failure(digits.get_object, Bucket="bkt", Key="digits",
                                   Range="bytes=10-20")
    assert (code, status) == ("InvalidRange", 416)
    assert response["Error"]["ActualObjectSize"] == "10"
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes */10"


def test_unparseable_range_is_ignored(digits):
    response = digits.get_object(Bucket="bkt", Key="digits", Range="bytes=5-2")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["Body"].read() == b"0123456789"


def test_range_across_a_large_object(s3):
    body = os.urandom(3 * MiB + 17)
    s3.put_object(Bucket="bkt", Key="large", Body=body)
    start, end = MiB - 5, 2 * MiB + 5
    response = s3.get_object(Bucket="bkt", Key="large", Range=f"bytes={start}-{end}")
    assert response["Body"].read() == body[start:end + 1]
    assert s3.get_object(Bucket="bkt", Key="large")["Body"].read() == body


# --- conditional reads -------------------------------------------------------------------

def test_conditional_get_and_head(digits):
    s3 = digits
    head = s3.head_object(Bucket="bkt", Key="digits")
    etag, modified = head["ETag"], head["LastModified"]
    # (a date in the future is not a valid If-Modified-Since, RFC 7232: not used here)
    earlier, later = modified - dt.timedelta(hours=1), modified + dt.timedelta(seconds=1)
    for call in (s3.get_object, s3.head_object):
        assert call(Bucket="bkt", Key="digits", IfMatch=etag)["ETag"] == etag
        assert call(Bucket="bkt", Key="digits", IfNoneMatch='"0000"')["ETag"] == etag
        assert call(Bucket="bkt", Key="digits", IfModifiedSince=earlier)["ETag"] == etag
        assert call(Bucket="bkt", Key="digits", IfUnmodifiedSince=later)["ETag"] == etag
        assert call(Bucket="bkt", Key="digits", IfUnmodifiedSince=modified)["ETag"] == etag

        code, status, _ = failure(call, Bucket="bkt", Key="digits", IfMatch='"0000"')
        assert status == 412 and code in ("PreconditionFailed", "412")
        code, status, _ = failure(call, Bucket="bkt", Key="digits", IfUnmodifiedSince=earlier)
        assert status == 412 and code in ("PreconditionFailed", "412")
        assert failure(call, Bucket="bkt", Key="digits", IfNoneMatch=etag)[1] == 304
        assert failure(call, Bucket="bkt", Key="digits", IfNoneMatch="*")[1] == 304
        assert failure(call, Bucket="bkt", Key="digits", IfModifiedSince=modified)[1] == 304
        assert failure(call, Bucket="bkt", Key="digits", IfModifiedSince=modified,
                     IfUnmodifiedSince=later)[1] == 304
    # GET tells the code in the body
    assert failure(s3.get_object, Bucket="bkt", Key="digits", IfMatch='"0"')[0] == \
        "PreconditionFailed"


def test_condition_combinations_follow_rfc7232(digits):
    s3 = digits
    head = s3.head_object(Bucket="bkt", Key="digits")
    etag, modified = head["ETag"], head["LastModified"]
    earlier = modified - dt.timedelta(hours=1)
    # If-Match true + If-Unmodified-Since false: 200 (If-Match wins)
    response = s3.get_object(Bucket="bkt", Key="digits", IfMatch=etag,
                             IfUnmodifiedSince=earlier)
    assert response["Body"].read() == b"0123456789"
    # If-None-Match false (etag differs) + If-Modified-Since false: 200
    response = s3.get_object(Bucket="bkt", Key="digits", IfNoneMatch='"other"',
                             IfModifiedSince=modified + dt.timedelta(seconds=5))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_not_modified_carries_etag(live, digits):
    etag = digits.head_object(Bucket="bkt", Key="digits")["ETag"]
    _, status, response = failure(digits.get_object, Bucket="bkt", Key="digits",
                                IfNoneMatch=etag)
    assert status == 304
    assert response["ResponseMetadata"]["HTTPHeaders"].get("etag") == etag


# --- response overrides ------------------------------------------------------------------

def test_response_header_overrides(digits):
    response = digits.get_object(
        Bucket="bkt", Key="digits", ResponseContentType="application/x-special",
        ResponseContentDisposition="attachment; filename=\"d.txt\"",
        ResponseCacheControl="no-cache", ResponseContentLanguage="fr",
        ResponseContentEncoding="identity",
        ResponseExpires=dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc))
    assert response["ContentType"] == "application/x-special"
    assert response["ContentDisposition"] == 'attachment; filename="d.txt"'
    assert response["CacheControl"] == "no-cache"
    assert response["ContentLanguage"] == "fr"
    assert response["ContentEncoding"] == "identity"
    assert response["Expires"] == dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    assert response["Body"].read() == b"0123456789"
    # the stored object is unchanged
    assert digits.head_object(Bucket="bkt", Key="digits")["ContentType"] == \
        "binary/octet-stream"


# --- missing things ----------------------------------------------------------------------

def test_missing_key_and_missing_bucket(s3):
    code, status, response = failure(s3.get_object, Bucket="bkt", Key="nope/none")
    assert (code, status) == ("NoSuchKey", 404)
    assert response["Error"]["Key"] == "nope/none"
    assert failure(s3.head_object, Bucket="bkt", Key="nope")[1] == 404
    code, status, _ = failure(s3.get_object, Bucket="no-bucket", Key="k")
    assert (code, status) == ("NoSuchBucket", 404)
    assert failure(s3.head_object, Bucket="no-bucket", Key="k")[1] == 404


# --- conditional writes ------------------------------------------------------------------

def test_put_if_none_match_star_creates_only_once(s3):
    s3.put_object(Bucket="bkt", Key="once", Body=b"first", IfNoneMatch="*")
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="once", Body=b"second",
                            IfNoneMatch="*")
    assert (code, status) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="bkt", Key="once")["Body"].read() == b"first"


def test_put_if_match(s3):
    etag = s3.put_object(Bucket="bkt", Key="cas", Body=b"v1")["ETag"]
    s3.put_object(Bucket="bkt", Key="cas", Body=b"v2", IfMatch=etag)
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="cas", Body=b"v3", IfMatch=etag)
    assert (code, status) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="bkt", Key="cas")["Body"].read() == b"v2"
    code, status, _ = failure(s3.put_object, Bucket="bkt", Key="absent", Body=b"x",
                            IfMatch=etag)
    assert (code, status) == ("NoSuchKey", 404)


# --- copy --------------------------------------------------------------------------------

@pytest.fixture
def source(s3):
    s3.put_object(Bucket="bkt", Key="src", Body=b"source bytes", ContentType="text/plain",
                  CacheControl="no-store", Metadata={"origin": "src"})
    return s3


def test_copy_with_copy_directive_keeps_metadata(live, source):
    s3 = source
    s3.create_bucket(Bucket="other")
    result = s3.copy_object(Bucket="other", Key="dst", CopySource={"Bucket": "bkt",
                                                                   "Key": "src"})
    assert result["CopyObjectResult"]["ETag"] == s3.head_object(Bucket="bkt",
                                                                Key="src")["ETag"]
    response = s3.get_object(Bucket="other", Key="dst")
    assert response["Body"].read() == b"source bytes"
    assert response["ContentType"] == "text/plain"
    assert response["CacheControl"] == "no-store"
    assert response["Metadata"] == {"origin": "src"}
    # the copy is independent of its source
    s3.delete_object(Bucket="bkt", Key="src")
    assert s3.get_object(Bucket="other", Key="dst")["Body"].read() == b"source bytes"


def test_copy_with_replace_directive_takes_new_metadata(source):
    s3 = source
    s3.copy_object(Bucket="bkt", Key="dst", CopySource="bkt/src", MetadataDirective="REPLACE",
                   ContentType="application/json", Metadata={"fresh": "yes"})
    response = s3.head_object(Bucket="bkt", Key="dst")
    assert response["ContentType"] == "application/json"
    assert response["Metadata"] == {"fresh": "yes"}
    assert "CacheControl" not in response


def test_copy_of_awkward_key(s3):
    key = "dir with space/ü+%/../x?versionId=no&y=1#z"
    s3.put_object(Bucket="bkt", Key=key, Body=b"odd")
    s3.copy_object(Bucket="bkt", Key="plain", CopySource={"Bucket": "bkt", "Key": key})
    assert s3.get_object(Bucket="bkt", Key="plain")["Body"].read() == b"odd"


def test_copy_source_conditions(source):
    s3 = source
    etag = s3.head_object(Bucket="bkt", Key="src")["ETag"]
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="dst", CopySource="bkt/src",
                            CopySourceIfMatch='"not-the-etag"')
    assert (code, status) == ("PreconditionFailed", 412)
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="dst", CopySource="bkt/src",
                            CopySourceIfNoneMatch=etag)
    assert (code, status) == ("PreconditionFailed", 412)
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="dst", CopySource="bkt/src",
                            CopySourceIfUnmodifiedSince=dt.datetime(2000, 1, 1))
    assert (code, status) == ("PreconditionFailed", 412)
    assert failure(s3.head_object, Bucket="bkt", Key="dst")[1] == 404
    s3.copy_object(Bucket="bkt", Key="dst", CopySource="bkt/src", CopySourceIfMatch=etag)
    assert s3.get_object(Bucket="bkt", Key="dst")["Body"].read() == b"source bytes"


def test_copy_onto_itself(source):
    s3 = source
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="src", CopySource="bkt/src")
    assert (code, status) == ("InvalidRequest", 400)
    s3.copy_object(Bucket="bkt", Key="src", CopySource="bkt/src", MetadataDirective="REPLACE",
                   Metadata={"changed": "1"})
    response = s3.get_object(Bucket="bkt", Key="src")
    assert response["Metadata"] == {"changed": "1"}
    assert response["Body"].read() == b"source bytes"


def test_copy_from_missing_source(s3):
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="dst", CopySource="bkt/none")
    assert (code, status) == ("NoSuchKey", 404)
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="dst",
                            CopySource="no-bucket/none")
    assert (code, status) == ("NoSuchBucket", 404)


# --- delete ------------------------------------------------------------------------------

def test_delete_object_and_missing_key(live, s3):
    s3.put_object(Bucket="bkt", Key="doomed", Body=b"x" * 100)
    response = s3.delete_object(Bucket="bkt", Key="doomed")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert failure(s3.get_object, Bucket="bkt", Key="doomed")[0] == "NoSuchKey"
    assert _usage(live) == 0
    response = s3.delete_object(Bucket="bkt", Key="never-existed")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, status, _ = failure(s3.delete_object, Bucket="no-bucket", Key="k")
    assert (code, status) == ("NoSuchBucket", 404)


def test_delete_objects(s3):
    for key in ("a", "b", "c"):
        s3.put_object(Bucket="bkt", Key=key, Body=key.encode())
    response = s3.delete_objects(Bucket="bkt", Delete={"Objects": [
        {"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]})
    assert sorted(item["Key"] for item in response["Deleted"]) == ["a", "b", "missing"]
    assert "Errors" not in response
    assert [item["Key"] for item in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["c"]


def test_delete_objects_quiet_reports_only_errors(live, s3):
    from s3util import second_account

    s3.put_object(Bucket="bkt", Key="a", Body=b"a")
    s3.put_object(Bucket="bkt", Key="b", Body=b"b")
    response = s3.delete_objects(Bucket="bkt", Delete={
        "Objects": [{"Key": "a"}, {"Key": "b"}], "Quiet": True})
    assert "Deleted" not in response and "Errors" not in response
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 0
    # An error still shows in quiet mode: another account may not delete here.
    s3.put_object(Bucket="bkt", Key="kept", Body=b"k")
    other = second_account(live, "second")[0]
    response = other.delete_objects(Bucket="bkt", Delete={
        "Objects": [{"Key": "kept"}], "Quiet": True})
    assert [(item["Key"], item["Code"]) for item in response["Errors"]] == \
        [("kept", "AccessDenied")]
    assert s3.get_object(Bucket="bkt", Key="kept")["Body"].read() == b"k"


def test_delete_objects_limits(s3):
    code, status, _ = failure(s3.delete_objects, Bucket="bkt", Delete={
        "Objects": [{"Key": f"k{index}"} for index in range(1001)]})
    assert (code, status) == ("MalformedXML", 400)
    code, status, _ = failure(s3.delete_objects, Bucket="no-bucket", Delete={
        "Objects": [{"Key": "k"}]})
    assert (code, status) == ("NoSuchBucket", 404)


def test_delete_objects_with_awkward_keys(s3):
    keys = ["a b", "ü/ö", "x+y", "100%", "<tag>&amp;"]
    for key in keys:
        s3.put_object(Bucket="bkt", Key=key, Body=b"1")
    response = s3.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(item["Key"] for item in response["Deleted"]) == sorted(keys)
    assert s3.list_objects_v2(Bucket="bkt")["KeyCount"] == 0


# --- GET by part number --------------------------------------------------------------------

def test_get_and_head_by_part_number(s3):
    part1, part2 = os.urandom(5 * MiB), b"tail part"
    upload = s3.create_multipart_upload(Bucket="bkt", Key="mp")["UploadId"]
    etags = [s3.upload_part(Bucket="bkt", Key="mp", UploadId=upload, PartNumber=number,
                            Body=body)["ETag"] for number, body in ((1, part1), (2, part2))]
    s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=upload, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags)]})
    response = s3.get_object(Bucket="bkt", Key="mp", PartNumber=2)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert response["Body"].read() == part2
    assert response["PartsCount"] == 2
    assert response["ContentRange"] == f"bytes {len(part1)}-{len(part1) + len(part2) - 1}/" \
        f"{len(part1) + len(part2)}"
    head = s3.head_object(Bucket="bkt", Key="mp", PartNumber=1)
    assert head["ContentLength"] == len(part1)
    assert head["PartsCount"] == 2
    assert s3.get_object(Bucket="bkt", Key="mp", PartNumber=1)["Body"].read() == part1
    code, status, _ = failure(s3.get_object, Bucket="bkt", Key="mp", PartNumber=3)
    assert (code, status) == ("InvalidPartNumber", 416)
    code, status, _ = failure(s3.get_object, Bucket="bkt", Key="mp", PartNumber=1,
                            Range="bytes=0-10")
    assert (code, status) == ("InvalidRequest", 400)
    # a plain object is one part, still answered as a range
    s3.put_object(Bucket="bkt", Key="single", Body=b"single")
    response = s3.get_object(Bucket="bkt", Key="single", PartNumber=1)
    assert response["Body"].read() == b"single"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert response["ContentRange"] == "bytes 0-5/6"
    assert "PartsCount" not in response
    assert failure(s3.get_object, Bucket="bkt", Key="single", PartNumber=2)[1] == 416


# --- interrupted uploads -----------------------------------------------------------------

def test_client_hanging_up_mid_body_leaves_nothing(live, s3):
    total = 8 * MiB
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(_signed_put_head(live, "bkt", "cut-short", total))
        sock.sendall(os.urandom(2 * MiB))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _files(data_dir(live) / "s3" / "tmp"):
            time.sleep(0.02)
    # the server notices the short body, drops its temp file and records nothing
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _files(data_dir(live) / "s3" / "tmp"):
        time.sleep(0.05)
    assert _files(data_dir(live) / "s3" / "tmp") == []
    assert failure(s3.head_object, Bucket="bkt", Key="cut-short")[1] == 404
    assert _usage(live) == 0


# --- durability across kill -9 -------------------------------------------------------------

EUCALITE = str(Path(sys.executable).parent / "eucalite")


def _serve(data: Path, port: int) -> subprocess.Popen:
    """`eucalite serve` in its own process group (gunicorn master + worker)."""
    env = dict(os.environ, EUCALITE_DATA_DIR=str(data))
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "eucalite serve exited early"
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 403:
                return process
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError("eucalite serve did not start")


def _kill9(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)       # the master and its worker, at once
    process.wait()


def _signed_put_head(live: Live, bucket: str, key: str, length: int) -> bytes:
    """The request line and headers of a SigV4-signed PUT with an unsigned payload."""
    url = f"http://127.0.0.1:{live.port}/{bucket}/{key}"
    request = AWSRequest(method="PUT", url=url, headers={
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Length": str(length)})
    S3SigV4Auth(Credentials(live.key_id, live.secret), "s3", live.region).add_auth(request)
    lines = [f"PUT /{bucket}/{key} HTTP/1.1", f"Host: 127.0.0.1:{live.port}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()
              if name.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _client(live: Live):
    """A boto3 client for a server on *live*.port (its app config names another port)."""
    return boto3.session.Session(aws_access_key_id=live.key_id,
                                 aws_secret_access_key=live.secret,
                                 region_name=live.region).client(
        "s3", endpoint_url=f"http://127.0.0.1:{live.port}",
        config=Config(retries={"max_attempts": 1}))


def _files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() \
        else []


def _admin_app(data: Path):
    """An app on data dir *data* (made here), for a server started on it with _serve:
    (app, the cloud admin's access key id, its secret, the region)."""
    from eucalite import accounts, create_app

    app = create_app({"data_dir": str(data), "node": False})
    with app.app_context():
        key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
        key_id, secret = key.id, key.secret
    return app, key_id, secret, app.config["EUCALITE"]["region"]


@storeutil.file_backend_only
def test_kill9_mid_upload_leaves_nothing_and_acknowledged_data_survives(tmp_path):
    data = tmp_path / "data"
    app, key_id, secret, region = _admin_app(data)

    port = free_port()
    process = _serve(data, port)
    try:
        live = Live(app, port, key_id, secret, region)
        s3 = _client(live)
        s3.create_bucket(Bucket="durable")
        kept = os.urandom(MiB + 3)
        s3.put_object(Bucket="durable", Key="kept", Body=kept)
        # an unfinished multipart upload whose acknowledged part must survive too
        upload_id = s3.create_multipart_upload(Bucket="durable", Key="later")["UploadId"]
        part = s3.upload_part(Bucket="durable", Key="later", UploadId=upload_id,
                              PartNumber=1, Body=b"part one")["ETag"]

        total, sent = 64 * MiB, 8 * MiB
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(_signed_put_head(live, "durable", "partial", total))
            sock.sendall(os.urandom(sent))
            # Wait until the server is visibly streaming the body to a temp file.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if any(path.stat().st_size > 0 for path in _files(data / "s3" / "tmp")):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the partial upload never reached s3/tmp")
            _kill9(process)
        assert _files(data / "s3" / "tmp"), "kill -9 should have left a temp file behind"
        # a segment written but never committed (a kill between rename and commit)
        orphan = data / "s3" / "objects" / "ff" / ("ff" + "0" * 30)
        orphan.parent.mkdir(exist_ok=True)
        orphan.write_bytes(b"orphan")

        port = free_port()
        process = _serve(data, port)
        s3 = _client(Live(app, port, key_id, secret, region))
        assert failure(s3.head_object, Bucket="durable", Key="partial")[1] == 404
        assert s3.get_object(Bucket="durable", Key="kept")["Body"].read() == kept
        assert [item["Key"] for item in s3.list_objects_v2(Bucket="durable")["Contents"]] \
            == ["kept"]
        assert _files(data / "s3" / "tmp") == []
        assert sorted(path.stat().st_size for path in _files(data / "s3" / "objects")) == \
            [len(b"part one"), len(kept)]
        s3.complete_multipart_upload(Bucket="durable", Key="later", UploadId=upload_id,
                                     MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                 "ETag": part}]})
        assert s3.get_object(Bucket="durable", Key="later")["Body"].read() == b"part one"
    finally:
        if process.poll() is None:
            _kill9(process)
