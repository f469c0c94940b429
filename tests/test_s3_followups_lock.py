"""Object Lock follow-ups of issue 17, over real HTTP with boto3: a version's legal hold that
was never set is told apart from one set OFF (GetObjectLegalHold answers
NoSuchObjectLockConfiguration, HEAD carries no legal-hold header), as S3 does; retention
that was never set, or was removed, is NoSuchObjectLockConfiguration too."""
from __future__ import annotations

import datetime as dt

import pytest

from awsutil import error_code, failure

UTC = dt.timezone.utc
HOLD = "x-amz-object-lock-legal-hold"


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    return client


def test_legal_hold_never_set_is_no_configuration_and_off_once_set_off(s3):
    plain = s3.put_object(Bucket="locked", Key="plain", Body=b"x")["VersionId"]
    code, status, _ = failure(s3.get_object_legal_hold, Bucket="locked", Key="plain",
                              VersionId=plain)
    assert (code, status) == ("NoSuchObjectLockConfiguration", 404)
    head = s3.head_object(Bucket="locked", Key="plain")
    assert HOLD not in head["ResponseMetadata"]["HTTPHeaders"]

    s3.put_object_legal_hold(Bucket="locked", Key="plain", LegalHold={"Status": "ON"})
    s3.put_object_legal_hold(Bucket="locked", Key="plain", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket="locked", Key="plain")["LegalHold"] == {
        "Status": "OFF"}
    # Once set (even OFF), HEAD says so; and the version may go.
    assert s3.head_object(Bucket="locked", Key="plain")["ObjectLockLegalHoldStatus"] == "OFF"
    s3.delete_object(Bucket="locked", Key="plain", VersionId=plain)


def test_legal_hold_set_off_at_upload_is_off(s3):
    s3.put_object(Bucket="locked", Key="off", Body=b"x", ObjectLockLegalHoldStatus="OFF",
                  ChecksumAlgorithm="CRC32")
    assert s3.get_object_legal_hold(Bucket="locked", Key="off")["LegalHold"] == {
        "Status": "OFF"}
    upload = s3.create_multipart_upload(Bucket="locked", Key="mp",
                                        ObjectLockLegalHoldStatus="OFF")["UploadId"]
    etag = s3.upload_part(Bucket="locked", Key="mp", UploadId=upload, PartNumber=1,
                          Body=b"part")["ETag"]
    s3.complete_multipart_upload(Bucket="locked", Key="mp", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object_legal_hold(Bucket="locked", Key="mp")["LegalHold"] == {
        "Status": "OFF"}
    plain = s3.create_multipart_upload(Bucket="locked", Key="mp2")["UploadId"]
    etag = s3.upload_part(Bucket="locked", Key="mp2", UploadId=plain, PartNumber=1,
                          Body=b"part")["ETag"]
    s3.complete_multipart_upload(Bucket="locked", Key="mp2", UploadId=plain,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert error_code(s3.get_object_legal_hold, Bucket="locked",
                      Key="mp2") == "NoSuchObjectLockConfiguration"


def test_retention_never_set_or_removed_is_no_configuration(s3):
    s3.put_object(Bucket="locked", Key="plain", Body=b"x")
    assert error_code(s3.get_object_retention, Bucket="locked",
                      Key="plain") == "NoSuchObjectLockConfiguration"
    until = dt.datetime.now(UTC) + dt.timedelta(days=1)
    s3.put_object_retention(Bucket="locked", Key="plain",
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
    assert s3.get_object_retention(Bucket="locked", Key="plain")["Retention"]["Mode"] == \
        "GOVERNANCE"
    s3.put_object_retention(Bucket="locked", Key="plain", Retention={},
                            BypassGovernanceRetention=True)
    assert error_code(s3.get_object_retention, Bucket="locked",
                      Key="plain") == "NoSuchObjectLockConfiguration"


def test_a_bucket_without_object_lock_is_invalid_request_not_no_configuration(s3):
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="k", Body=b"x")
    assert error_code(s3.get_object_legal_hold, Bucket="plain", Key="k") == "InvalidRequest"
    assert error_code(s3.get_object_retention, Bucket="plain", Key="k") == "InvalidRequest"
