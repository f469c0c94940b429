"""S3 bucket features over HTTP with boto3: CORS, lifecycle expiration, tagging,
PostObject, and flexible checksums (header and aws-chunked trailer forms)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import urllib.parse
import zlib
from unittest import mock

import botocore.httpchecksum
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import botocore.auth

from eucalite import sigv4
from eucalite.s3 import upkeep
from awsutil import error_code, xml_error_code
from s3util import acl_bucket, anonymous


@pytest.fixture
def s3(live):
    client = live.client("s3")
    acl_bucket(client, "feature-bucket")    # public-read objects (CORS, POST forms)
    return client


# --- CORS ---------------------------------------------------------------------------------

CORS = {"CORSRules": [{"AllowedOrigins": ["https://*.example.lab"],
                       "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"],
                       "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}


def test_cors_configuration_and_preflight(live, s3):
    assert error_code(s3.get_bucket_cors, Bucket="feature-bucket") == "NoSuchCORSConfiguration"
    s3.put_bucket_cors(Bucket="feature-bucket", CORSConfiguration=CORS)
    assert s3.get_bucket_cors(Bucket="feature-bucket")["CORSRules"][0]["MaxAgeSeconds"] == 600
    ok = anonymous("OPTIONS", live, "/feature-bucket/file.txt", headers={
        "Origin": "https://app.example.lab", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-amz-meta-a"})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example.lab"
    assert "PUT" in ok.headers["Access-Control-Allow-Methods"]
    refused = anonymous("OPTIONS", live, "/feature-bucket/file.txt", headers={
        "Origin": "https://evil.test", "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 403
    wrong_method = anonymous("OPTIONS", live, "/feature-bucket/file.txt", headers={
        "Origin": "https://app.example.lab", "Access-Control-Request-Method": "DELETE"})
    assert wrong_method.status_code == 403


def test_cors_headers_on_actual_requests(live, s3):
    s3.put_bucket_cors(Bucket="feature-bucket", CORSConfiguration=CORS)
    s3.put_object(Bucket="feature-bucket", Key="page.txt", Body=b"x", ACL="public-read")
    response = anonymous("GET", live, "/feature-bucket/page.txt",
                         headers={"Origin": "https://www.example.lab"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://www.example.lab"
    assert "ETag" in response.headers.get("Access-Control-Expose-Headers", "")
    s3.delete_bucket_cors(Bucket="feature-bucket")
    response = anonymous("GET", live, "/feature-bucket/page.txt",
                         headers={"Origin": "https://www.example.lab"})
    assert "Access-Control-Allow-Origin" not in response.headers


# --- lifecycle ----------------------------------------------------------------------------

def test_lifecycle_expiration_really_deletes(live, s3):
    s3.put_object(Bucket="feature-bucket", Key="logs/old.log", Body=b"old")
    s3.put_object(Bucket="feature-bucket", Key="keep/me.txt", Body=b"keep")
    s3.put_bucket_lifecycle_configuration(Bucket="feature-bucket", LifecycleConfiguration={
        "Rules": [{"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
                   "Expiration": {"Days": 1}}]})
    rules = s3.get_bucket_lifecycle_configuration(Bucket="feature-bucket")["Rules"]
    assert rules[0]["ID"] == "expire-logs"
    head = s3.head_object(Bucket="feature-bucket", Key="logs/old.log")
    assert 'rule-id="expire-logs"' in head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"]
    services = live.app.extensions["eucalite"]
    with live.app.app_context():
        assert upkeep.sweep(services.s3.store).expired == 0          # not due yet
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
        assert upkeep.sweep(services.s3.store, now=later).expired == 1
    assert error_code(lambda: s3.head_object(Bucket="feature-bucket", Key="logs/old.log")) == "404"
    assert s3.get_object(Bucket="feature-bucket", Key="keep/me.txt")["Body"].read() == b"keep"
    s3.delete_bucket_lifecycle(Bucket="feature-bucket")
    assert error_code(lambda: s3.get_bucket_lifecycle_configuration(Bucket="feature-bucket")) \
        == "NoSuchLifecycleConfiguration"


def test_lifecycle_sweeper_thread_and_noncurrent_versions(live, s3):
    s3.put_bucket_versioning(Bucket="feature-bucket",
                             VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="feature-bucket", Key="doc", Body=b"v1")
    s3.put_object(Bucket="feature-bucket", Key="doc", Body=b"v2")
    s3.put_bucket_lifecycle_configuration(Bucket="feature-bucket", LifecycleConfiguration={
        "Rules": [{"ID": "old-versions", "Status": "Enabled", "Filter": {},
                   "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    services = live.app.extensions["eucalite"]
    with live.app.app_context():
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
        assert upkeep.sweep(services.s3.store, now=later).noncurrent_deleted == 1
    versions = s3.list_object_versions(Bucket="feature-bucket")["Versions"]
    assert len(versions) == 1 and versions[0]["IsLatest"]
    # The periodic thread applies rules by itself.
    s3.put_bucket_lifecycle_configuration(Bucket="feature-bucket", LifecycleConfiguration={
        "Rules": [{"ID": "all", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
                   "Expiration": {"Date": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}}]})
    s3.put_object(Bucket="feature-bucket", Key="tmp/scratch", Body=b"x")
    stop = upkeep.start(live.app, services.s3.store, interval=0.2)
    try:
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket="feature-bucket", Prefix="tmp/")
            if listed["KeyCount"] == 0:
                break
            time.sleep(0.2)
        assert listed["KeyCount"] == 0
    finally:
        stop.set()


# --- tagging ------------------------------------------------------------------------------

def test_bucket_and_object_tagging(s3):
    s3.put_bucket_tagging(Bucket="feature-bucket",
                          Tagging={"TagSet": [{"Key": "team", "Value": "lab"}]})
    assert s3.get_bucket_tagging(Bucket="feature-bucket")["TagSet"] == [
        {"Key": "team", "Value": "lab"}]
    s3.put_object(Bucket="feature-bucket", Key="tagged", Body=b"x", Tagging="a=1&b=two%20words")
    tags = s3.get_object_tagging(Bucket="feature-bucket", Key="tagged")["TagSet"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {"a": "1", "b": "two words"}
    assert s3.get_object(Bucket="feature-bucket", Key="tagged")["TagCount"] == 2
    s3.put_object_tagging(Bucket="feature-bucket", Key="tagged",
                          Tagging={"TagSet": [{"Key": "c", "Value": "3"}]})
    assert len(s3.get_object_tagging(Bucket="feature-bucket", Key="tagged")["TagSet"]) == 1
    s3.delete_object_tagging(Bucket="feature-bucket", Key="tagged")
    assert s3.get_object_tagging(Bucket="feature-bucket", Key="tagged")["TagSet"] == []
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    assert error_code(lambda: s3.put_object_tagging(Bucket="feature-bucket", Key="tagged",
                                               Tagging={"TagSet": too_many})) == "BadRequest"
    s3.delete_bucket_tagging(Bucket="feature-bucket")
    assert error_code(lambda: s3.get_bucket_tagging(Bucket="feature-bucket")) == "NoSuchTagSet"


# --- PostObject ---------------------------------------------------------------------------

def test_post_object_with_signed_policy(live, s3):
    post = s3.generate_presigned_post(
        "feature-bucket", "uploads/${filename}",
        Fields={"acl": "public-read", "success_action_status": "201"},
        Conditions=[{"acl": "public-read"}, {"success_action_status": "201"},
                    ["starts-with", "$key", "uploads/"], ["content-length-range", 1, 1024]])
    response = requests.post(post["url"], data=post["fields"],
                             files={"file": ("photo.txt", b"form upload")})
    assert response.status_code == 201, response.text
    assert "<Key>uploads/photo.txt</Key>" in response.text
    assert anonymous("GET", live, "/feature-bucket/uploads/photo.txt").content == b"form upload"
    too_big = requests.post(post["url"], data=post["fields"],
                            files={"file": ("big.txt", b"x" * 2000)})
    assert xml_error_code(too_big) == "EntityTooLarge"
    tampered = dict(post["fields"], key="elsewhere/${filename}")
    refused = requests.post(post["url"], data=tampered, files={"file": ("a.txt", b"a")})
    assert refused.status_code == 403 and xml_error_code(refused) == "AccessDenied"


def test_post_object_redirect(live, s3):
    post = s3.generate_presigned_post(
        "feature-bucket", "r.txt",
        Fields={"success_action_redirect": "http://example.lab/done"},
        Conditions=[{"success_action_redirect": "http://example.lab/done"}])
    response = requests.post(post["url"], data=post["fields"], files={"file": ("r", b"r")},
                             allow_redirects=False)
    assert response.status_code == 303
    target = urllib.parse.urlparse(response.headers["Location"])
    assert urllib.parse.parse_qs(target.query)["key"] == ["r.txt"]


# --- checksums ----------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_flexible_checksums_are_verified_and_returned(s3, algorithm):
    put = s3.put_object(Bucket="feature-bucket", Key=f"sum-{algorithm}", Body=b"checksummed",
                        ChecksumAlgorithm=algorithm)
    sent = put[f"Checksum{algorithm}"]
    got = s3.get_object(Bucket="feature-bucket", Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
    assert got[f"Checksum{algorithm}"] == sent
    assert got["Body"].read() == b"checksummed"
    head = s3.head_object(Bucket="feature-bucket", Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == sent


def test_wrong_checksum_header_is_bad_digest(live, s3):
    url = live.base_url + "/feature-bucket/bad-sum"
    body = b"payload"
    request = AWSRequest(method="PUT", url=url, data=body, headers={
        "x-amz-checksum-crc32": base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode(),
        "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    botocore.auth.S3SigV4Auth(Credentials(live.key_id, live.secret), "s3",
                              live.region).add_auth(request)
    response = requests.put(url, data=body, headers=dict(request.prepare().headers))
    assert response.status_code == 400 and xml_error_code(response) == "BadDigest"
    assert error_code(lambda: s3.head_object(Bucket="feature-bucket", Key="bad-sum")) == "404"


def test_trailer_checksums_as_boto3_sends_them_over_tls(live, s3):
    """Newest boto3 sends STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC trailer over TLS;
    make it do so over plain HTTP to check the exact bytes it sends are accepted."""
    real = botocore.httpchecksum.urlparse
    as_tls = lambda url: real(url.replace("http://", "https://", 1))  # noqa: E731
    with mock.patch.object(botocore.httpchecksum, "urlparse", as_tls):
        for algorithm in ("CRC32", "CRC32C", "CRC64NVME"):
            body = b"trailer body " * 5000
            seen = {}
            s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: seen.update(
                {name.lower(): value for name, value in request.headers.items()}))
            s3.put_object(Bucket="feature-bucket", Key=f"trailer-{algorithm}", Body=body,
                          ChecksumAlgorithm=algorithm)
            sent = seen.get("x-amz-content-sha256")
            assert (sent.decode() if isinstance(sent, bytes) else sent) == \
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            got = s3.get_object(Bucket="feature-bucket", Key=f"trailer-{algorithm}",
                                ChecksumMode="ENABLED")
            assert got["Body"].read() == body
            assert got[f"Checksum{algorithm}"]


def _signed_chunked_put(live, url: str, body: bytes, chunk: int, tamper: bool = False):
    """A STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload as the Java and Go SDKs send it."""
    now = dt.datetime.now(dt.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/{live.region}/s3/aws4_request"
    parsed = urllib.parse.urlparse(url)
    headers = {"host": parsed.netloc, "x-amz-date": amz_date,
               "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(body))}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["PUT", parsed.path, "",
                           "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)),
                           signed, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
    key = sigv4.v4_signing_key(live.secret, day, live.region, "s3")
    string = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                        hashlib.sha256(canonical.encode()).hexdigest()])
    seed = hmac.new(key, string.encode(), hashlib.sha256).hexdigest()
    previous, framed = seed, b""
    pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)] + [b""]
    for piece in pieces:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous,
                             hashlib.sha256(b"").hexdigest(), hashlib.sha256(piece).hexdigest()])
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        data = piece.replace(b"a", b"b") if tamper else piece
        framed += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={live.key_id}/{scope}, "
                                f"SignedHeaders={signed}, Signature={seed}")
    return requests.put(url, data=framed, headers=headers)


def test_signed_aws_chunked_upload(live, s3):
    body = b"abc" * 30000
    url = live.base_url + "/feature-bucket/chunked"
    response = _signed_chunked_put(live, url, body, chunk=65536)
    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket="feature-bucket", Key="chunked")["Body"].read() == body
    tampered = _signed_chunked_put(live, live.base_url + "/feature-bucket/chunked2", body,
                                   chunk=65536, tamper=True)
    assert xml_error_code(tampered) == "SignatureDoesNotMatch"
    assert error_code(lambda: s3.head_object(Bucket="feature-bucket", Key="chunked2")) == "404"
