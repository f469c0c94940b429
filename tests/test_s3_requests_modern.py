"""Today's S3 request features over real HTTP with boto3: conditional writes on PutObject
and CompleteMultipartUpload (racing writers included), x-amz-expected-bucket-owner,
ListBuckets paging, GetObjectAttributes, and policy condition keys read from S3 request
headers and object tags."""
from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from awsutil import failure
from s3util import second_account
from eucalite.s3 import authz, conditions


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="bkt")
    return client


def live_account_id(live) -> str:
    """The cloud admin's account id (the 12 digits AWS names a bucket owner by)."""
    return live.client("sts").get_caller_identity()["Account"]


def complete_small(s3, key: str, body: bytes = b"multipart body", **kwargs):
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key=key)["UploadId"]
    etag = s3.upload_part(Bucket="bkt", Key=key, UploadId=upload_id, PartNumber=1,
                          Body=body)["ETag"]
    return upload_id, lambda: s3.complete_multipart_upload(
        Bucket="bkt", Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}, **kwargs)


# --- conditional writes ----------------------------------------------------------------------

def test_complete_multipart_if_none_match_refuses_an_existing_key(s3):
    s3.put_object(Bucket="bkt", Key="taken", Body=b"first")
    upload_id, finish = complete_small(s3, "taken", IfNoneMatch="*")
    code, status, _ = failure(finish)
    assert (code, status) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="bkt", Key="taken")["Body"].read() == b"first"
    # the upload is still there to abort or complete otherwise
    assert [item["UploadId"] for item in s3.list_multipart_uploads(Bucket="bkt")["Uploads"]] \
        == [upload_id]
    _, finish = complete_small(s3, "fresh", IfNoneMatch="*")
    finish()
    assert s3.get_object(Bucket="bkt", Key="fresh")["Body"].read() == b"multipart body"


def test_complete_multipart_if_match(s3):
    etag = s3.put_object(Bucket="bkt", Key="cas", Body=b"v1")["ETag"]
    _, finish = complete_small(s3, "cas", IfMatch='"0123456789abcdef0123456789abcdef"')
    assert failure(finish)[:2] == ("PreconditionFailed", 412)
    _, finish = complete_small(s3, "cas", body=b"v2", IfMatch=etag)
    finish()
    assert s3.get_object(Bucket="bkt", Key="cas")["Body"].read() == b"v2"
    _, finish = complete_small(s3, "absent", IfMatch=etag)
    assert failure(finish)[:2] == ("NoSuchKey", 404)


def test_put_if_none_match_on_a_deleted_key_creates_it(s3):
    s3.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="bkt", Key="gone", Body=b"old")
    s3.delete_object(Bucket="bkt", Key="gone")          # the latest is a delete marker
    s3.put_object(Bucket="bkt", Key="gone", Body=b"new", IfNoneMatch="*")
    assert s3.get_object(Bucket="bkt", Key="gone")["Body"].read() == b"new"


def test_copy_object_if_none_match_and_if_match(s3):
    s3.put_object(Bucket="bkt", Key="src", Body=b"source")
    etag = s3.put_object(Bucket="bkt", Key="dst", Body=b"old")["ETag"]
    assert failure(s3.copy_object, Bucket="bkt", Key="dst", CopySource="bkt/src",
                   IfNoneMatch="*")[:2] == ("PreconditionFailed", 412)
    assert failure(s3.copy_object, Bucket="bkt", Key="dst", CopySource="bkt/src",
                   IfMatch='"0123456789abcdef0123456789abcdef"')[:2] == \
        ("PreconditionFailed", 412)
    assert s3.get_object(Bucket="bkt", Key="dst")["Body"].read() == b"old"
    s3.copy_object(Bucket="bkt", Key="dst", CopySource="bkt/src", IfMatch=etag)
    s3.copy_object(Bucket="bkt", Key="new", CopySource="bkt/src", IfNoneMatch="*")
    assert s3.get_object(Bucket="bkt", Key="dst")["Body"].read() == b"source"
    assert s3.get_object(Bucket="bkt", Key="new")["Body"].read() == b"source"


def test_a_conditional_write_tells_nothing_to_who_may_not_write(live, s3):
    """412 would say the key exists: a caller without s3:PutObject gets AccessDenied."""
    other, _ = second_account(live)
    s3.put_object(Bucket="bkt", Key="exists", Body=b"x")
    for key in ("exists", "absent"):
        assert failure(other.put_object, Bucket="bkt", Key=key, Body=b"y",
                       IfNoneMatch="*")[:2] == ("AccessDenied", 403)


def test_conditional_put_with_the_aws_cli(live, s3, tmp_path):
    body = tmp_path / "body"
    body.write_bytes(b"from the cli")
    aws = str(Path(sys.executable).parent / "aws")

    def put(*condition):
        return subprocess.run([aws, "s3api", "put-object", "--bucket", "bkt", "--key", "cli",
                               "--body", str(body), *condition], env=live.env(),
                              capture_output=True, text=True, timeout=60)

    assert put("--if-none-match", "*").returncode == 0
    refused = put("--if-none-match", "*")
    assert refused.returncode != 0 and "PreconditionFailed" in refused.stderr
    etag = s3.head_object(Bucket="bkt", Key="cli")["ETag"]
    assert put("--if-match", etag).returncode == 0


def test_racing_if_none_match_puts_never_both_succeed(s3):
    """Eight writers at once, many rounds: exactly one creates each key."""
    def put(key: str, body: bytes):
        try:
            s3.put_object(Bucket="bkt", Key=key, Body=body, IfNoneMatch="*")
            return "ok"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(8) as pool:
        for round_number in range(10):
            key = f"race-{round_number}"
            outcomes = list(pool.map(put, [key] * 8, [b"w%d" % n for n in range(8)]))
            assert outcomes.count("ok") == 1, outcomes
            assert set(outcomes) <= {"ok", "PreconditionFailed", "ConditionalRequestConflict"}
            winner = outcomes.index("ok")
            assert s3.get_object(Bucket="bkt", Key=key)["Body"].read() == b"w%d" % winner


def test_a_write_that_loses_after_its_check_is_a_conflict(s3, monkeypatch):
    """Both writers pass the check on arrival before either records: the one that records
    second must be refused inside its transaction (409), not overwrite the first."""
    barrier = threading.Barrier(2, timeout=30)
    arrived = conditions.checked_write_condition

    def both_arrive(*args, **kwargs):
        condition = arrived(*args, **kwargs)
        barrier.wait()
        return condition

    monkeypatch.setattr(conditions, "checked_write_condition", both_arrive)

    def put(body: bytes):
        try:
            return s3.put_object(Bucket="bkt", Key="once", Body=body, IfNoneMatch="*")["ETag"]
        except ClientError as error:
            return (error.response["Error"]["Code"],
                    error.response["ResponseMetadata"]["HTTPStatusCode"])

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(put, [b"one", b"two"]))
    errors = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    assert errors == [("ConditionalRequestConflict", 409)], outcomes
    stored = s3.get_object(Bucket="bkt", Key="once")
    assert stored["ETag"] in outcomes


# --- x-amz-expected-bucket-owner -------------------------------------------------------------

def test_expected_bucket_owner(live, s3):
    account = live_account_id(live)
    s3.put_object(Bucket="bkt", Key="k", Body=b"data", ExpectedBucketOwner=account)
    assert s3.get_object(Bucket="bkt", Key="k", ExpectedBucketOwner=account)["Body"].read() \
        == b"data"
    s3.list_objects_v2(Bucket="bkt", ExpectedBucketOwner=account)
    wrong = "111122223333" if account != "111122223333" else "444455556666"
    for call, kwargs in ((s3.get_object, {"Key": "k"}), (s3.head_object, {"Key": "k"}),
                         (s3.put_object, {"Key": "k2", "Body": b"x"}),
                         (s3.delete_object, {"Key": "k"}), (s3.list_objects_v2, {}),
                         (s3.get_bucket_versioning, {}), (s3.head_bucket, {}),
                         (s3.get_bucket_acl, {}), (s3.delete_bucket, {})):
        code, status, _ = failure(call, Bucket="bkt", ExpectedBucketOwner=wrong, **kwargs)
        assert status == 403, call
        if call not in (s3.head_object, s3.head_bucket):
            assert code == "AccessDenied"
    # nothing happened
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"data"
    assert "Contents" in s3.list_objects_v2(Bucket="bkt")
    code, status, _ = failure(s3.get_object, Bucket="bkt", Key="k2")
    assert status == 404


def test_expected_source_bucket_owner_on_copies(live, s3):
    account = live_account_id(live)
    s3.put_object(Bucket="bkt", Key="src", Body=b"source")
    s3.copy_object(Bucket="bkt", Key="dst", CopySource="bkt/src",
                   ExpectedSourceBucketOwner=account, ExpectedBucketOwner=account)
    code, status, _ = failure(s3.copy_object, Bucket="bkt", Key="dst2", CopySource="bkt/src",
                              ExpectedSourceBucketOwner="111122223333")
    assert (code, status) == ("AccessDenied", 403)
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key="mp")["UploadId"]
    code, status, _ = failure(s3.upload_part_copy, Bucket="bkt", Key="mp", UploadId=upload_id,
                              PartNumber=1, CopySource="bkt/src",
                              ExpectedSourceBucketOwner="111122223333")
    assert (code, status) == ("AccessDenied", 403)
    assert failure(s3.get_object, Bucket="bkt", Key="dst2")[1] == 404


def test_expected_bucket_owner_names_the_owner_not_the_caller(live, s3):
    """Another account allowed into the bucket names the bucket's owner, not itself."""
    other, other_account = second_account(live)
    owner = live_account_id(live)
    s3.put_bucket_policy(Bucket="bkt", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": other_account},
            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}]}))
    s3.put_object(Bucket="bkt", Key="shared", Body=b"shared")
    assert other.get_object(Bucket="bkt", Key="shared", ExpectedBucketOwner=owner)[
        "Body"].read() == b"shared"
    assert failure(other.get_object, Bucket="bkt", Key="shared",
                   ExpectedBucketOwner=other_account)[:2] == ("AccessDenied", 403)


# --- ListBuckets paging ----------------------------------------------------------------------

NAMES = ["alpha-1", "alpha-2", "alpha-3", "beta-1", "beta-2"]


@pytest.fixture
def many(live):
    client = live.client("s3")
    for name in NAMES:
        client.create_bucket(Bucket=name)
    return client


def test_list_buckets_pages_with_max_buckets_and_continuation_token(live, many):
    seen, token, pages = [], None, 0
    while True:
        answer = many.list_buckets(MaxBuckets=2, **({"ContinuationToken": token} if token
                                                    else {}))
        names = [bucket["Name"] for bucket in answer["Buckets"]]
        assert len(names) <= 2
        assert all(bucket["BucketRegion"] == live.region for bucket in answer["Buckets"])
        seen += names
        pages += 1
        token = answer.get("ContinuationToken")
        if not token:
            break
        assert token not in NAMES                          # opaque, not a bucket name
    assert (seen, pages) == (NAMES, 3)
    # boto3's paginator walks it the same way
    paginator = many.get_paginator("list_buckets")
    walked = [bucket["Name"] for page in paginator.paginate(PaginationConfig={"PageSize": 2})
              for bucket in page["Buckets"]]
    assert walked == NAMES
    # without paging parameters: everything, no token, no prefix
    whole = many.list_buckets()
    assert [bucket["Name"] for bucket in whole["Buckets"]] == NAMES
    assert "ContinuationToken" not in whole and "Prefix" not in whole


def test_list_buckets_prefix_and_region(live, many):
    answer = many.list_buckets(Prefix="beta-")
    assert [bucket["Name"] for bucket in answer["Buckets"]] == ["beta-1", "beta-2"]
    assert answer["Prefix"] == "beta-"
    first = many.list_buckets(Prefix="alpha-", MaxBuckets=2)
    assert [bucket["Name"] for bucket in first["Buckets"]] == ["alpha-1", "alpha-2"]
    rest = many.list_buckets(Prefix="alpha-", MaxBuckets=2,
                             ContinuationToken=first["ContinuationToken"])
    assert [bucket["Name"] for bucket in rest["Buckets"]] == ["alpha-3"]
    assert "ContinuationToken" not in rest
    assert many.list_buckets(Prefix="gamma")["Buckets"] == []
    assert len(many.list_buckets(BucketRegion=live.region)["Buckets"]) == len(NAMES)
    assert many.list_buckets(BucketRegion="elsewhere-1")["Buckets"] == []


def test_list_buckets_bad_paging_arguments(live, many):
    unchecked = live.client("s3", parameter_validation=False)
    for value in (0, 10001):
        code, status, response = failure(unchecked.list_buckets, MaxBuckets=value)
        assert (code, status) == ("InvalidArgument", 400)
        assert response["Error"]["ArgumentName"] == "max-buckets"
    code, status, _ = failure(many.list_buckets, ContinuationToken="%%%not-a-token")
    assert (code, status) == ("InvalidArgument", 400)


def test_list_buckets_with_the_aws_cli(live, many):
    aws = str(Path(sys.executable).parent / "aws")
    done = subprocess.run([aws, "s3api", "list-buckets", "--prefix", "alpha-",
                           "--max-buckets", "2", "--output", "json"], env=live.env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [bucket["Name"] for bucket in listed["Buckets"]] == ["alpha-1", "alpha-2"]
    assert listed["ContinuationToken"]


# --- GetObjectAttributes ---------------------------------------------------------------------

ALL_ATTRIBUTES = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
MiB = 1024 * 1024


def test_object_attributes_of_a_simple_object(s3):
    put = s3.put_object(Bucket="bkt", Key="plain", Body=b"hello attributes",
                        ChecksumAlgorithm="SHA256", StorageClass="STANDARD_IA")
    answer = s3.get_object_attributes(Bucket="bkt", Key="plain",
                                      ObjectAttributes=ALL_ATTRIBUTES)
    head = s3.head_object(Bucket="bkt", Key="plain")
    assert answer["ETag"] == put["ETag"].strip('"')          # unquoted, as S3 sends it
    assert answer["ObjectSize"] == len(b"hello attributes")
    assert answer["StorageClass"] == "STANDARD_IA"
    assert answer["Checksum"] == {"ChecksumSHA256": put["ChecksumSHA256"],
                                  "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in answer                         # not a multipart object
    assert answer["LastModified"] == head["LastModified"]
    assert "VersionId" not in answer
    only_size = s3.get_object_attributes(Bucket="bkt", Key="plain",
                                         ObjectAttributes=["ObjectSize"])
    assert only_size["ObjectSize"] == 16
    assert not {"ETag", "Checksum", "StorageClass"} & set(only_size)


def test_object_attributes_pages_the_parts_of_a_multipart_object(s3):
    bodies = [b"a" * (5 * MiB), b"b" * (5 * MiB), b"c" * 100]
    upload_id = s3.create_multipart_upload(Bucket="bkt", Key="mp",
                                           ChecksumAlgorithm="CRC32")["UploadId"]
    parts = []
    for number, body in enumerate(bodies, start=1):
        answer = s3.upload_part(Bucket="bkt", Key="mp", UploadId=upload_id, PartNumber=number,
                                Body=body, ChecksumAlgorithm="CRC32")
        parts.append({"PartNumber": number, "ETag": answer["ETag"],
                      "ChecksumCRC32": answer["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket="bkt", Key="mp", UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
    first = s3.get_object_attributes(Bucket="bkt", Key="mp", MaxParts=2,
                                     ObjectAttributes=["ObjectParts", "ObjectSize"])
    assert first["ObjectSize"] == sum(map(len, bodies))
    page = first["ObjectParts"]
    assert page["TotalPartsCount"] == 3 and page["MaxParts"] == 2 and page["IsTruncated"]
    assert [(part["PartNumber"], part["Size"], part["ChecksumCRC32"]) for part in
            page["Parts"]] == [(1, 5 * MiB, parts[0]["ChecksumCRC32"]),
                               (2, 5 * MiB, parts[1]["ChecksumCRC32"])]
    rest = s3.get_object_attributes(Bucket="bkt", Key="mp", MaxParts=2,
                                    PartNumberMarker=page["NextPartNumberMarker"],
                                    ObjectAttributes=["ObjectParts"])["ObjectParts"]
    assert not rest["IsTruncated"]
    assert [(part["PartNumber"], part["Size"]) for part in rest["Parts"]] == [(3, 100)]


def test_object_attributes_of_versions_and_delete_markers(s3):
    s3.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket="bkt", Key="v", Body=b"old")["VersionId"]
    s3.put_object(Bucket="bkt", Key="v", Body=b"newer")
    by_version = s3.get_object_attributes(Bucket="bkt", Key="v", VersionId=old,
                                          ObjectAttributes=["ObjectSize"])
    assert (by_version["ObjectSize"], by_version["VersionId"]) == (3, old)
    marker = s3.delete_object(Bucket="bkt", Key="v")["VersionId"]
    code, status, response = failure(s3.get_object_attributes, Bucket="bkt", Key="v",
                                     ObjectAttributes=["ETag"])
    assert (code, status) == ("NoSuchKey", 404)
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    code, status, _ = failure(s3.get_object_attributes, Bucket="bkt", Key="v",
                              VersionId=marker, ObjectAttributes=["ETag"])
    assert (code, status) == ("MethodNotAllowed", 405)
    assert failure(s3.get_object_attributes, Bucket="bkt", Key="never",
                   ObjectAttributes=["ETag"])[:2] == ("NoSuchKey", 404)


def test_object_attributes_bad_requests(live, s3):
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    unchecked = live.client("s3", parameter_validation=False)
    for attributes in (["Colour"], []):
        code, status, _ = failure(unchecked.get_object_attributes, Bucket="bkt", Key="k",
                                  ObjectAttributes=attributes)
        assert (code, status) == ("InvalidArgument", 400)


def test_object_attributes_needs_the_attributes_permission(live, s3):
    """s3:GetObject alone is not enough: AWS asks for s3:GetObjectAttributes as well."""
    other, other_account = second_account(live)
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    statement = {"Effect": "Allow", "Principal": {"AWS": other_account},
                 "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::bkt/*"}
    s3.put_bucket_policy(Bucket="bkt", Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}))
    assert other.get_object(Bucket="bkt", Key="k")["Body"].read() == b"x"
    assert failure(other.get_object_attributes, Bucket="bkt", Key="k",
                   ObjectAttributes=["ETag"])[:2] == ("AccessDenied", 403)
    statement["Action"].append("s3:GetObjectAttributes")
    s3.put_bucket_policy(Bucket="bkt", Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}))
    assert other.get_object_attributes(Bucket="bkt", Key="k",
                                       ObjectAttributes=["ObjectSize"])["ObjectSize"] == 1


def test_object_attributes_with_the_aws_cli(live, s3):
    s3.put_object(Bucket="bkt", Key="cli", Body=b"cli bytes")
    aws = str(Path(sys.executable).parent / "aws")
    done = subprocess.run([aws, "s3api", "get-object-attributes", "--bucket", "bkt",
                           "--key", "cli", "--object-attributes", "ObjectSize", "ETag",
                           "--output", "json"], env=live.env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["ObjectSize"] == 9 and answer["ETag"]


# --- policy condition keys from request headers and object tags ------------------------------

def set_policy(s3, *statements) -> None:
    s3.put_bucket_policy(Bucket="bkt", Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))


def test_bucket_policy_denies_puts_without_server_side_encryption(s3):
    set_policy(s3, {"Sid": "NeedSSE", "Effect": "Deny", "Principal": "*",
                    "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/*",
                    "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}},
               {"Sid": "OnlyAES", "Effect": "Deny", "Principal": "*",
                "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/*",
                "Condition": {"StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption": "AES256"}}})
    assert failure(s3.put_object, Bucket="bkt", Key="plain", Body=b"x")[:2] == \
        ("AccessDenied", 403)
    assert failure(s3.put_object, Bucket="bkt", Key="kms", Body=b"x",
                   ServerSideEncryption="aws:kms")[1] in (400, 403)
    s3.put_object(Bucket="bkt", Key="sealed", Body=b"x", ServerSideEncryption="AES256")
    assert s3.get_object(Bucket="bkt", Key="sealed")["Body"].read() == b"x"
    assert failure(s3.get_object, Bucket="bkt", Key="plain")[1] == 404


def test_bucket_policy_allows_get_only_of_objects_tagged_public(live, s3):
    other, other_account = second_account(live)
    s3.put_object(Bucket="bkt", Key="open", Body=b"for all", Tagging="public=yes")
    s3.put_object(Bucket="bkt", Key="closed", Body=b"private", Tagging="public=no")
    s3.put_object(Bucket="bkt", Key="untagged", Body=b"private")
    set_policy(s3, {"Effect": "Allow", "Principal": {"AWS": other_account},
                    "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*",
                    "Condition": {"StringEquals": {"s3:ExistingObjectTag/public": "yes"}}})
    assert other.get_object(Bucket="bkt", Key="open")["Body"].read() == b"for all"
    for key in ("closed", "untagged"):
        assert failure(other.get_object, Bucket="bkt", Key=key)[:2] == ("AccessDenied", 403)
    # the tags are read when the request comes: retagging changes the answer
    s3.put_object_tagging(Bucket="bkt", Key="closed",
                          Tagging={"TagSet": [{"Key": "public", "Value": "yes"}]})
    assert other.get_object(Bucket="bkt", Key="closed")["Body"].read() == b"private"


def test_user_policy_on_request_tags_copy_source_and_version(live, s3):
    """An IAM user's own policy: PUTs must tag team=blue (header or PutObjectTagging),
    copies only from public/, and only one version of an object is readable."""
    iam = live.client("iam")
    iam.create_user(UserName="writer")
    key = iam.create_access_key(UserName="writer")["AccessKey"]
    s3.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="bkt", Key="doc", Body=b"one")["VersionId"]
    s3.put_object(Bucket="bkt", Key="doc", Body=b"two")
    s3.put_object(Bucket="bkt", Key="public/src", Body=b"copy me")
    s3.put_object(Bucket="bkt", Key="secret/src", Body=b"not me")
    iam.put_user_policy(UserName="writer", PolicyName="tags", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectTagging"],
             "Resource": "arn:aws:s3:::bkt/*",
             "Condition": {"StringEquals": {"s3:RequestObjectTag/team": "blue"},
                           "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team"]}}},
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/*",
             "Condition": {"Null": {"s3:x-amz-copy-source": "false"},
                           "StringNotLike": {"s3:x-amz-copy-source": "bkt/public/*"}}},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": "arn:aws:s3:::bkt/*"},
            {"Effect": "Deny", "Action": "s3:GetObjectVersion", "Resource": "arn:aws:s3:::bkt/*",
             "Condition": {"StringNotEquals": {"s3:VersionId": first}}}]}))
    writer = live.client("s3", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    writer.put_object(Bucket="bkt", Key="blue", Body=b"b", Tagging="team=blue")
    for tagging in ("team=red", "team=blue&extra=1", None):
        kwargs = {"Tagging": tagging} if tagging else {}
        assert failure(writer.put_object, Bucket="bkt", Key="other", Body=b"x",
                       **kwargs)[:2] == ("AccessDenied", 403), tagging
    writer.put_object_tagging(Bucket="bkt", Key="blue",
                              Tagging={"TagSet": [{"Key": "team", "Value": "blue"}]})
    assert failure(writer.put_object_tagging, Bucket="bkt", Key="blue",
                   Tagging={"TagSet": [{"Key": "team", "Value": "red"}]})[:2] == \
        ("AccessDenied", 403)
    assert s3.get_object_tagging(Bucket="bkt", Key="blue")["TagSet"] == \
        [{"Key": "team", "Value": "blue"}]
    writer.copy_object(Bucket="bkt", Key="copied", CopySource="bkt/public/src",
                       Tagging="team=blue", TaggingDirective="REPLACE")
    assert failure(writer.copy_object, Bucket="bkt", Key="copied2",
                   CopySource="bkt/secret/src", Tagging="team=blue",
                   TaggingDirective="REPLACE")[:2] == ("AccessDenied", 403)
    assert writer.get_object(Bucket="bkt", Key="doc", VersionId=first)["Body"].read() == b"one"
    assert writer.get_object(Bucket="bkt", Key="doc")["Body"].read() == b"two"
    latest = s3.head_object(Bucket="bkt", Key="doc")["VersionId"]
    assert failure(writer.get_object, Bucket="bkt", Key="doc",
                   VersionId=latest)[:2] == ("AccessDenied", 403)


def test_bucket_policy_on_storage_class_and_metadata_directive(s3):
    set_policy(s3, {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                    "Resource": "arn:aws:s3:::bkt/*",
                    "Condition": {"StringEquals": {"s3:x-amz-storage-class": "GLACIER"}}},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::bkt/*",
                "Condition": {"StringEquals": {"s3:x-amz-metadata-directive": "REPLACE"}}})
    s3.put_object(Bucket="bkt", Key="k", Body=b"x", StorageClass="STANDARD_IA")
    assert failure(s3.put_object, Bucket="bkt", Key="cold", Body=b"x",
                   StorageClass="GLACIER")[:2] == ("AccessDenied", 403)
    s3.copy_object(Bucket="bkt", Key="c1", CopySource="bkt/k", MetadataDirective="COPY")
    assert failure(s3.copy_object, Bucket="bkt", Key="c2", CopySource="bkt/k",
                   MetadataDirective="REPLACE", Metadata={"a": "b"})[:2] == \
        ("AccessDenied", 403)


def test_bucket_policy_on_the_canned_acl_header(live, s3):
    """The classic cross-account rule: writes must hand the bucket owner full control."""
    other, other_account = second_account(live)
    set_policy(s3, {"Effect": "Allow", "Principal": {"AWS": other_account},
                    "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/*",
                    "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}})
    assert failure(other.put_object, Bucket="bkt", Key="no-acl", Body=b"x")[:2] == \
        ("AccessDenied", 403)
    other.put_object(Bucket="bkt", Key="handed", Body=b"x", ACL="bucket-owner-full-control")
    assert s3.get_object(Bucket="bkt", Key="handed")["Body"].read() == b"x"


def test_object_attributes_of_an_sse_c_object_need_its_key(s3):
    key, other = b"k" * 32, b"o" * 32

    def sent(raw: bytes) -> dict:
        """SSE-C parameters as sent: boto3 encodes them itself for GetObject and PutObject
        only, so GetObjectAttributes callers send base64 and the MD5 themselves."""
        return {"SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": base64.b64encode(raw).decode(),
                "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(raw).digest()).decode()}

    s3.put_object(Bucket="bkt", Key="sealed", Body=b"secret bytes",
                  SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert failure(s3.get_object_attributes, Bucket="bkt", Key="sealed",
                   ObjectAttributes=["ObjectSize"])[:2] == ("InvalidRequest", 400)
    assert failure(s3.get_object_attributes, Bucket="bkt", Key="sealed",
                   ObjectAttributes=["ObjectSize"], **sent(other))[:2] == ("AccessDenied", 403)
    assert s3.get_object_attributes(Bucket="bkt", Key="sealed", ObjectAttributes=["ObjectSize"],
                                    **sent(key))["ObjectSize"] == 12


def test_request_condition_keys_end_with_their_request(live):
    """The front end reuses its threads: a request that sets no keys (a console page) must
    not see those of the S3 request the same thread served before."""
    with live.app.test_request_context("/bkt/k", headers={"x-amz-acl": "public-read"}):
        authz.set_request_context({"s3:x-amz-acl": "public-read"})
        authz.add_request_context({"s3:RequestObjectTag/team": "blue"})
        assert authz.request_context() == {"s3:x-amz-acl": "public-read",
                                           "s3:RequestObjectTag/team": "blue"}
    with live.app.test_request_context("/console/buckets"):
        assert authz.request_context() == {}


class _UnsignedPayload(S3SigV4Auth):
    """SigV4 with ``x-amz-content-sha256: UNSIGNED-PAYLOAD`` (botocore signs the payload
    over plain HTTP whatever the client's configuration says)."""

    def _should_sha256_sign_payload(self, request):
        return False


def test_bucket_policy_on_how_requests_are_signed(live, s3):
    """AWS's examples: refuse SigV2 and presigned URLs, and unsigned payloads."""
    def put_unsigned(key: str) -> requests.Response:
        url = f"{live.base_url}/bkt/{key}"
        request = AWSRequest(method="PUT", url=url, data=b"y")
        _UnsignedPayload(Credentials(live.key_id, live.secret), "s3",
                         live.region).add_auth(request)
        return requests.put(url, data=b"y", headers=dict(request.headers.items()), timeout=30)

    sigv2 = live.client("s3", signature_version="s3")
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"})
    # all three work without the policy
    assert sigv2.get_object(Bucket="bkt", Key="k")["Body"].read() == b"x"
    assert requests.get(url, timeout=30).content == b"x"
    assert put_unsigned("before").status_code == 200
    set_policy(s3, {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::bkt/*",
                    "Condition": {"StringNotEquals": {
                        "s3:signatureversion": "AWS4-HMAC-SHA256"}}},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::bkt/*",
                "Condition": {"StringEquals": {"s3:authType": "REST-QUERY-STRING"}}},
               {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                "Resource": "arn:aws:s3:::bkt/*",
                "Condition": {"StringEquals": {"s3:x-amz-content-sha256": "UNSIGNED-PAYLOAD"}}})
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"x"
    assert failure(sigv2.get_object, Bucket="bkt", Key="k")[:2] == ("AccessDenied", 403)
    assert requests.get(url, timeout=30).status_code == 403
    answer = put_unsigned("after")
    assert answer.status_code == 403 and "<Code>AccessDenied</Code>" in answer.text
    s3.put_object(Bucket="bkt", Key="signed", Body=b"z")
