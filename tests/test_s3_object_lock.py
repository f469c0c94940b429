"""S3 Object Lock over real HTTP with boto3 (and the aws CLI): buckets created with lock,
the bucket configuration and its default retention, per-version GOVERNANCE / COMPLIANCE
retention and legal hold on every write path, and their enforcement on every path that
removes a version's data (DeleteObject by version, DeleteObjects, lifecycle), refused while
locked and allowed once the retention has passed."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from awsutil import error_code, failure
from s3util import policy_user
from eucalite.s3 import upkeep

UTC = dt.timezone.utc


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
    return client


def ahead(**delta) -> dt.datetime:
    return dt.datetime.now(UTC) + dt.timedelta(**delta)


def put(s3, key: str = "k", body: bytes = b"data", **kwargs) -> str:
    """PutObject into the lock bucket; the new version's id."""
    return s3.put_object(Bucket="locked", Key=key, Body=body, **kwargs)["VersionId"]


def retention(s3, key: str, version: str):
    return s3.get_object_retention(Bucket="locked", Key=key, VersionId=version)["Retention"]


def until_gone(call, deadline: float = 30.0):
    """Run *call* (refused while a short retention lasts) until it succeeds: polled with a
    deadline, never a fixed wait."""
    end = time.monotonic() + deadline
    while True:
        try:
            return call()
        except ClientError as error:
            if error.response["Error"]["Code"] != "AccessDenied" or time.monotonic() > end:
                raise
            time.sleep(0.2)


# --- buckets and their configuration -----------------------------------------------------

def test_bucket_created_with_lock_is_versioned_for_good(s3):
    assert s3.get_bucket_versioning(Bucket="locked")["Status"] == "Enabled"
    config = s3.get_object_lock_configuration(Bucket="locked")["ObjectLockConfiguration"]
    assert config == {"ObjectLockEnabled": "Enabled"}
    code, status, _ = failure(s3.put_bucket_versioning, Bucket="locked",
                              VersioningConfiguration={"Status": "Suspended"})
    assert (code, status) == ("InvalidBucketState", 409)
    assert s3.get_bucket_versioning(Bucket="locked")["Status"] == "Enabled"
    s3.create_bucket(Bucket="plain")
    code, status, _ = failure(s3.get_object_lock_configuration, Bucket="plain")
    assert (code, status) == ("ObjectLockConfigurationNotFoundError", 404)


def test_lock_on_an_existing_bucket_needs_versioning(s3):
    s3.create_bucket(Bucket="later")
    enabled = {"ObjectLockEnabled": "Enabled"}
    code, status, _ = failure(s3.put_object_lock_configuration, Bucket="later",
                              ObjectLockConfiguration=enabled)
    assert (code, status) == ("InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket="later", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket="later", ObjectLockConfiguration=enabled)
    assert s3.get_object_lock_configuration(Bucket="later")["ObjectLockConfiguration"] == enabled
    assert error_code(s3.put_bucket_versioning, Bucket="later",
                      VersioningConfiguration={"Status": "Suspended"}) == "InvalidBucketState"


def test_default_retention_rule_is_validated_and_stored(s3):
    def rule(**retention):
        return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}
    for bad, code in ((rule(Mode="GOVERNANCE", Days=1, Years=1), "MalformedXML"),
                      (rule(Mode="GOVERNANCE"), "MalformedXML"),
                      (rule(Mode="FOREVER", Days=1), "MalformedXML"),
                      (rule(Mode="GOVERNANCE", Days=0), "InvalidArgument"),
                      (rule(Mode="COMPLIANCE", Years=-1), "InvalidArgument"),
                      ({"ObjectLockEnabled": "Disabled"}, "MalformedXML")):
        assert failure(s3.put_object_lock_configuration, Bucket="locked",
                       ObjectLockConfiguration=bad)[:2] == (code, 400), bad
    good = rule(Mode="COMPLIANCE", Years=2)
    s3.put_object_lock_configuration(Bucket="locked", ObjectLockConfiguration=good)
    assert s3.get_object_lock_configuration(Bucket="locked")["ObjectLockConfiguration"] == good


# --- what a new version carries ------------------------------------------------------------

def test_lock_headers_are_checked(s3):
    s3.create_bucket(Bucket="plain")
    code, status, _ = failure(s3.put_object, Bucket="plain", Key="k", Body=b"x",
                              ObjectLockLegalHoldStatus="ON")
    assert (code, status) == ("InvalidRequest", 400)
    assert error_code(s3.put_object, Bucket="locked", Key="k", Body=b"x",
                      ObjectLockMode="GOVERNANCE") == "InvalidArgument"
    assert error_code(s3.put_object, Bucket="locked", Key="k", Body=b"x",
                      ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=ahead(days=-1)) == "InvalidArgument"
    assert error_code(s3.put_object, Bucket="locked", Key="k", Body=b"x",
                      ObjectLockMode="FOREVER", ObjectLockRetainUntilDate=ahead(days=1)) \
        == "InvalidArgument"
    assert "Versions" not in s3.list_object_versions(Bucket="locked")
    assert error_code(s3.get_object_retention, Bucket="plain", Key="k") == "NoSuchKey"
    s3.put_object(Bucket="plain", Key="k", Body=b"x")
    assert error_code(s3.get_object_retention, Bucket="plain", Key="k") == "InvalidRequest"


def test_default_retention_applies_to_new_versions_that_name_none(s3):
    s3.put_object_lock_configuration(Bucket="locked", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    version = put(s3, "default")
    kept = retention(s3, "default", version)
    assert kept["Mode"] == "GOVERNANCE"
    assert ahead(hours=23) < kept["RetainUntilDate"] < ahead(hours=25)
    head = s3.head_object(Bucket="locked", Key="default")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] == kept["RetainUntilDate"]
    # A version naming its own retention keeps it instead of the default.
    own = put(s3, "own", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=ahead(days=9))
    assert retention(s3, "own", own)["Mode"] == "COMPLIANCE"


def test_a_retained_put_needs_content_md5_or_a_checksum(live, s3):
    # Told to add checksums only when an operation requires one, boto3 sends none.
    bare = live.client("s3", request_checksum_calculation="when_required")
    bare.put_object(Bucket="locked", Key="free", Body=b"x")      # nothing retains it
    code, status, _ = failure(bare.put_object, Bucket="locked", Key="k", Body=b"x",
                              ObjectLockLegalHoldStatus="ON")
    assert (code, status) == ("InvalidRequest", 400)
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    bare.put_object(Bucket="locked", Key="k", Body=b"x", ContentMD5=md5,
                    ObjectLockLegalHoldStatus="ON")
    s3.put_object_lock_configuration(Bucket="locked", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    assert error_code(bare.put_object, Bucket="locked", Key="free", Body=b"x") \
        == "InvalidRequest"
    put(s3, "free")         # the SDK's default CRC checksum is enough


def test_multipart_copy_and_post_carry_lock_settings(s3):
    until = ahead(days=3).replace(microsecond=0)
    upload = s3.create_multipart_upload(Bucket="locked", Key="mp", ObjectLockMode="GOVERNANCE",
                                        ObjectLockRetainUntilDate=until,
                                        ObjectLockLegalHoldStatus="ON")
    part = s3.upload_part(Bucket="locked", Key="mp", UploadId=upload["UploadId"],
                          PartNumber=1, Body=b"part")
    done = s3.complete_multipart_upload(
        Bucket="locked", Key="mp", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    head = s3.head_object(Bucket="locked", Key="mp", VersionId=done["VersionId"])
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"],
            head["ObjectLockLegalHoldStatus"]) == ("GOVERNANCE", until, "ON")
    copied = s3.copy_object(Bucket="locked", Key="copy", CopySource="locked/mp",
                            ObjectLockLegalHoldStatus="ON")
    # The copy takes the lock its request names, not the source's retention.
    assert s3.get_object_legal_hold(Bucket="locked", Key="copy")["LegalHold"]["Status"] == "ON"
    assert error_code(s3.get_object_retention, Bucket="locked", Key="copy") \
        == "NoSuchObjectLockConfiguration"
    assert error_code(s3.delete_object, Bucket="locked", Key="copy",
                      VersionId=copied["VersionId"]) == "AccessDenied"
    form = s3.generate_presigned_post("locked", "posted", Fields={
        "x-amz-object-lock-legal-hold": "ON"}, Conditions=[
        {"x-amz-object-lock-legal-hold": "ON"}])
    answer = requests.post(form["url"], data=form["fields"], files={"file": b"posted"})
    assert answer.status_code == 204, answer.text
    assert s3.head_object(Bucket="locked", Key="posted")["ObjectLockLegalHoldStatus"] == "ON"


# --- enforcement -----------------------------------------------------------------------------

def test_governance_yields_only_to_an_explicit_bypass(s3):
    version = put(s3, ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=ahead(hours=1))
    code, status, _ = failure(s3.delete_object, Bucket="locked", Key="k", VersionId=version)
    assert (code, status) == ("AccessDenied", 403)
    # A plain delete only adds a delete marker: allowed, the locked version stays.
    marker = s3.delete_object(Bucket="locked", Key="k")
    assert marker["DeleteMarker"]
    s3.delete_object(Bucket="locked", Key="k", VersionId=marker["VersionId"])
    # Shortening or removing needs the bypass header too.
    assert error_code(s3.put_object_retention, Bucket="locked", Key="k", VersionId=version,
                      Retention={"Mode": "GOVERNANCE",
                                 "RetainUntilDate": ahead(minutes=5)}) == "AccessDenied"
    assert error_code(s3.put_object_retention, Bucket="locked", Key="k", VersionId=version,
                      Retention={}) == "AccessDenied"
    s3.put_object_retention(Bucket="locked", Key="k", VersionId=version,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": ahead(hours=2)})
    s3.put_object_retention(Bucket="locked", Key="k", VersionId=version,
                            Retention={"Mode": "GOVERNANCE",
                                       "RetainUntilDate": ahead(minutes=5)},
                            BypassGovernanceRetention=True)
    assert retention(s3, "k", version)["RetainUntilDate"] < ahead(minutes=6)
    s3.delete_object(Bucket="locked", Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket="locked")


def test_bypass_needs_the_permission_for_an_iam_user(live, s3):
    iam = live.client("iam")
    iam.create_user(UserName="clerk")
    allowed = ["s3:PutObject", "s3:GetObject", "s3:DeleteObjectVersion",
               "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:ListBucket"]

    def grant(actions):
        iam.put_user_policy(UserName="clerk", PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                    "Resource": "*"}]}))
    grant(allowed)
    key = iam.create_access_key(UserName="clerk")["AccessKey"]
    clerk = live.client("s3", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    version = put(s3, ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=ahead(hours=1))
    assert error_code(clerk.delete_object, Bucket="locked", Key="k", VersionId=version,
                      BypassGovernanceRetention=True) == "AccessDenied"
    assert error_code(clerk.put_object_retention, Bucket="locked", Key="k", VersionId=version,
                      Retention={}, BypassGovernanceRetention=True) == "AccessDenied"
    grant(allowed + ["s3:BypassGovernanceRetention"])
    clerk.delete_object(Bucket="locked", Key="k", VersionId=version,
                        BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket="locked")


def test_lock_headers_on_reads_need_the_read_permissions(live, s3):
    iam = live.client("iam")
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                "Resource": "*"}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    reader = live.client("s3", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    put(s3, ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=ahead(hours=1),
        ObjectLockLegalHoldStatus="ON")
    head = reader.head_object(Bucket="locked", Key="k")
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head
    assert error_code(reader.get_object_retention, Bucket="locked", Key="k") == "AccessDenied"
    head = s3.head_object(Bucket="locked", Key="k")
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockLegalHoldStatus"] == "ON"


def test_compliance_cannot_be_shortened_even_by_root(s3):
    version = put(s3, ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=ahead(hours=1))
    for attempt in ({"Mode": "COMPLIANCE", "RetainUntilDate": ahead(minutes=5)},
                    {"Mode": "GOVERNANCE", "RetainUntilDate": ahead(hours=3)}, {}):
        assert error_code(s3.put_object_retention, Bucket="locked", Key="k",
                          VersionId=version, Retention=attempt,
                          BypassGovernanceRetention=True) == "AccessDenied", attempt
    assert error_code(s3.delete_object, Bucket="locked", Key="k", VersionId=version,
                      BypassGovernanceRetention=True) == "AccessDenied"
    later = ahead(hours=5).replace(microsecond=0)
    s3.put_object_retention(Bucket="locked", Key="k", VersionId=version,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})
    assert retention(s3, "k", version) == {"Mode": "COMPLIANCE", "RetainUntilDate": later}


def test_legal_hold_blocks_deletion_whatever_the_mode(s3):
    held = put(s3, "held", ObjectLockLegalHoldStatus="ON")
    governed = put(s3, "gov", ObjectLockMode="GOVERNANCE",
                   ObjectLockRetainUntilDate=ahead(hours=1))
    s3.put_object_legal_hold(Bucket="locked", Key="gov", VersionId=governed,
                             LegalHold={"Status": "ON"})
    for key, version in (("held", held), ("gov", governed)):
        assert error_code(s3.delete_object, Bucket="locked", Key=key, VersionId=version,
                          BypassGovernanceRetention=True) == "AccessDenied"
    assert s3.get_object(Bucket="locked", Key="held")["ObjectLockLegalHoldStatus"] == "ON"
    s3.put_object_legal_hold(Bucket="locked", Key="held", LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket="locked", Key="held")["LegalHold"]["Status"] == "OFF"
    s3.delete_object(Bucket="locked", Key="held", VersionId=held)
    s3.put_object_legal_hold(Bucket="locked", Key="gov", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket="locked", Key="gov", VersionId=governed,
                     BypassGovernanceRetention=True)
    assert "Versions" not in s3.list_object_versions(Bucket="locked")
    put(s3, "next")
    assert error_code(s3.put_object_legal_hold, Bucket="locked", Key="next",
                      LegalHold={"Status": "MAYBE"}) == "MalformedXML"
    # Retention's Mode is the schema's enumeration, as case-sensitive as the rule's
    for mode in ("governance", "FOREVER"):
        assert error_code(s3.put_object_retention, Bucket="locked", Key="next",
                          Retention={"Mode": mode, "RetainUntilDate": ahead(days=1)}) \
            == "MalformedXML"


def test_delete_objects_reports_locked_versions_per_key(s3):
    locked = put(s3, "a", ObjectLockLegalHoldStatus="ON")
    free = put(s3, "b")
    answer = s3.delete_objects(Bucket="locked", Delete={"Objects": [
        {"Key": "a", "VersionId": locked}, {"Key": "b", "VersionId": free}]})
    assert [(item["Key"], item["Code"]) for item in answer["Errors"]] == [("a", "AccessDenied")]
    assert [item["Key"] for item in answer["Deleted"]] == ["b"]
    s3.put_object_retention(Bucket="locked", Key="a", VersionId=locked, Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": ahead(hours=1)})
    s3.put_object_legal_hold(Bucket="locked", Key="a", LegalHold={"Status": "OFF"})
    answer = s3.delete_objects(Bucket="locked", Delete={"Objects": [
        {"Key": "a", "VersionId": locked}]}, BypassGovernanceRetention=True)
    assert "Errors" not in answer and answer["Deleted"][0]["VersionId"] == locked
    s3.delete_bucket(Bucket="locked")


def test_retention_allows_deletion_once_it_passes(s3):
    version = put(s3, ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=ahead(seconds=3))
    assert error_code(s3.delete_object, Bucket="locked", Key="k", VersionId=version) \
        == "AccessDenied"
    until_gone(lambda: s3.delete_object(Bucket="locked", Key="k", VersionId=version))
    assert "Versions" not in s3.list_object_versions(Bucket="locked")


def test_lifecycle_skips_locked_noncurrent_versions(live, s3):
    short = put(s3, body=b"v1", ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=ahead(seconds=3))
    held = put(s3, body=b"v2", ObjectLockLegalHoldStatus="ON")
    put(s3, body=b"v3")
    s3.put_bucket_lifecycle_configuration(Bucket="locked", LifecycleConfiguration={
        "Rules": [{"ID": "old", "Status": "Enabled", "Filter": {},
                   "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
    services = live.app.extensions["eucalite"]

    def sweep():
        with live.app.app_context():
            return upkeep.sweep(services.s3.store, now=ahead(days=10)).noncurrent_deleted

    def kept():
        return sorted(item["VersionId"] for item in
                      s3.list_object_versions(Bucket="locked")["Versions"]
                      if not item["IsLatest"])
    assert sweep() == 0
    assert kept() == sorted([short, held])
    end = time.monotonic() + 30
    while short in kept():                          # until its retention has passed
        assert time.monotonic() < end
        sweep()
        time.sleep(0.2)
    assert kept() == [held]
    s3.put_object_legal_hold(Bucket="locked", Key="k", VersionId=held,
                             LegalHold={"Status": "OFF"})
    assert sweep() == 1 and kept() == []


def test_aws_cli_object_retention(live, s3):
    version = put(s3)
    aws = str(Path(sys.executable).parent / "aws")
    until = ahead(days=1).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

    def cli(*args) -> dict:
        done = subprocess.run([aws, "s3api", *args, "--output", "json"], env=live.env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}
    cli("put-object-retention", "--bucket", "locked", "--key", "k", "--version-id", version,
        "--retention", json.dumps({"Mode": "GOVERNANCE", "RetainUntilDate": until}))
    got = cli("get-object-retention", "--bucket", "locked", "--key", "k")["Retention"]
    assert got["Mode"] == "GOVERNANCE" and got["RetainUntilDate"].startswith(until[:19])
    cli("put-object-legal-hold", "--bucket", "locked", "--key", "k",
        "--legal-hold", "Status=ON")
    assert cli("get-object-legal-hold", "--bucket", "locked", "--key", "k") \
        == {"LegalHold": {"Status": "ON"}}
    assert cli("get-object-lock-configuration", "--bucket", "locked") == {
        "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}}


def test_a_null_version_from_before_the_lock_can_be_held(s3):
    s3.create_bucket(Bucket="older")
    s3.put_object(Bucket="older", Key="k", Body=b"unversioned")
    s3.put_bucket_versioning(Bucket="older", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket="older",
                                     ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    s3.put_object_legal_hold(Bucket="older", Key="k", VersionId="null",
                             LegalHold={"Status": "ON"})
    assert error_code(s3.delete_object, Bucket="older", Key="k", VersionId="null") \
        == "AccessDenied"
    s3.put_object_legal_hold(Bucket="older", Key="k", VersionId="null",
                             LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket="older", Key="k", VersionId="null")
    assert "Versions" not in s3.list_object_versions(Bucket="older")


def test_creating_a_lock_bucket_needs_the_lock_and_versioning_permissions(live, s3):
    maker, grant = policy_user(live, "maker")
    grant(["s3:CreateBucket", "s3:PutBucketVersioning"])
    assert error_code(maker.create_bucket, Bucket="made",
                      ObjectLockEnabledForBucket=True) == "AccessDenied"
    assert error_code(s3.head_bucket, Bucket="made") == "404"
    grant(["s3:CreateBucket", "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration"])
    maker.create_bucket(Bucket="made", ObjectLockEnabledForBucket=True)
    assert s3.get_object_lock_configuration(Bucket="made")["ObjectLockConfiguration"] \
        == {"ObjectLockEnabled": "Enabled"}
