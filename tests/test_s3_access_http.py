"""S3 access control over HTTP: canned ACLs and grants, anonymous reads, bucket policies,
and a second account that sees nothing it was not granted."""
from __future__ import annotations

import json

import pytest

from eucalite.s3.acl import canonical_id
from awsutil import error_code, xml_error_code
from s3util import acl_bucket, anonymous, second_account


@pytest.fixture
def owner(live):
    s3 = live.client("s3")
    acl_bucket(s3, "acl-bucket")
    s3.put_object(Bucket="acl-bucket", Key="secret.txt", Body=b"private data")
    return s3


def test_second_account_sees_nothing(live, owner):
    other, _ = second_account(live)
    assert other.list_buckets()["Buckets"] == []
    assert error_code(lambda: other.list_objects_v2(Bucket="acl-bucket")) == "AccessDenied"
    assert error_code(other.get_object, Bucket="acl-bucket", Key="secret.txt") == "AccessDenied"
    assert error_code(other.get_object, Bucket="acl-bucket", Key="missing") == "AccessDenied"
    assert error_code(other.put_object, Bucket="acl-bucket", Key="x", Body=b"x") == "AccessDenied"
    assert error_code(other.delete_object, Bucket="acl-bucket", Key="secret.txt") == "AccessDenied"
    assert error_code(lambda: other.get_bucket_acl(Bucket="acl-bucket")) == "AccessDenied"
    assert error_code(lambda: other.delete_bucket(Bucket="acl-bucket")) == "AccessDenied"
    assert owner.get_object(Bucket="acl-bucket", Key="secret.txt")["Body"].read() == b"private data"


def test_public_read_object_is_readable_anonymously(live, owner):
    assert xml_error_code(anonymous("GET", live, "/acl-bucket/secret.txt")) == "AccessDenied"
    owner.put_object(Bucket="acl-bucket", Key="public.txt", Body=b"for all", ACL="public-read")
    response = anonymous("GET", live, "/acl-bucket/public.txt")
    assert response.status_code == 200 and response.content == b"for all"
    # Anonymous users still cannot list or write.
    assert xml_error_code(anonymous("GET", live, "/acl-bucket")) == "AccessDenied"
    assert anonymous("PUT", live, "/acl-bucket/new.txt", data=b"x").status_code == 403


def test_public_read_write_bucket(live, owner):
    owner.put_bucket_acl(Bucket="acl-bucket", ACL="public-read-write")
    assert anonymous("PUT", live, "/acl-bucket/dropbox.txt", data=b"dropped").status_code == 200
    listing = anonymous("GET", live, "/acl-bucket?list-type=2")
    assert listing.status_code == 200 and "dropbox.txt" in listing.text
    acl = owner.get_bucket_acl(Bucket="acl-bucket")
    permissions = {(grant["Grantee"].get("URI"), grant["Permission"]) for grant in acl["Grants"]}
    assert ("http://acs.amazonaws.com/groups/global/AllUsers", "WRITE") in permissions


def test_authenticated_read(live, owner):
    other, _ = second_account(live)
    owner.put_object_acl(Bucket="acl-bucket", Key="secret.txt", ACL="authenticated-read")
    assert other.get_object(Bucket="acl-bucket", Key="secret.txt")["Body"].read() == b"private data"
    assert xml_error_code(anonymous("GET", live, "/acl-bucket/secret.txt")) == "AccessDenied"


def test_explicit_grant_to_another_account(live, owner):
    other, other_id = second_account(live)
    canonical = canonical_id(other_id)
    owner.put_object_acl(Bucket="acl-bucket", Key="secret.txt", GrantRead=f'id="{canonical}"')
    assert other.get_object(Bucket="acl-bucket", Key="secret.txt")["Body"].read() == b"private data"
    acl = owner.get_object_acl(Bucket="acl-bucket", Key="secret.txt")
    grantees = {(grant["Grantee"].get("ID"), grant["Permission"]) for grant in acl["Grants"]}
    assert (canonical, "READ") in grantees
    assert acl["Owner"]["DisplayName"] == "eucalyptus"
    # READ on the object does not let them change its ACL.
    assert error_code(lambda: other.put_object_acl(Bucket="acl-bucket", Key="secret.txt",
                                              ACL="public-read")) == "AccessDenied"


def test_acl_document_round_trip_and_errors(live, owner):
    acl = owner.get_bucket_acl(Bucket="acl-bucket")
    owner.put_bucket_acl(Bucket="acl-bucket", AccessControlPolicy={
        "Owner": acl["Owner"],
        "Grants": acl["Grants"] + [{"Grantee": {"Type": "Group",
                                                "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                    "Permission": "READ"}]})
    assert anonymous("GET", live, "/acl-bucket").status_code == 200
    assert error_code(lambda: owner.put_bucket_acl(Bucket="acl-bucket", ACL="no-such-acl")) \
        == "InvalidArgument"
    assert error_code(lambda: owner.put_object_acl(Bucket="acl-bucket", Key="secret.txt",
                                              GrantRead='emailAddress="a@b.c"')) \
        == "UnresolvableGrantByEmailAddress"


def policy(statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def test_bucket_policy_allows_another_account_on_a_prefix(live, owner):
    other, other_id = second_account(live)
    owner.put_object(Bucket="acl-bucket", Key="shared/report.txt", Body=b"report")
    owner.put_bucket_policy(Bucket="acl-bucket", Policy=policy([{
        "Sid": "ShareReports", "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{other_id}:root"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acl-bucket/shared/*"}]))
    assert other.get_object(Bucket="acl-bucket", Key="shared/report.txt")["Body"].read() == b"report"
    assert error_code(other.get_object, Bucket="acl-bucket", Key="secret.txt") == "AccessDenied"
    stored = json.loads(owner.get_bucket_policy(Bucket="acl-bucket")["Policy"])
    assert stored["Statement"][0]["Sid"] == "ShareReports"


def test_bucket_policy_public_read_with_condition(live, owner):
    owner.put_bucket_policy(Bucket="acl-bucket", Policy=policy([{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::acl-bucket/*",
        "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]))
    assert anonymous("GET", live, "/acl-bucket/secret.txt").content == b"private data"
    owner.put_bucket_policy(Bucket="acl-bucket", Policy=policy([{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::acl-bucket/*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.9.9.0/24"}}}]))
    assert xml_error_code(anonymous("GET", live, "/acl-bucket/secret.txt")) == "AccessDenied"


def test_explicit_deny_beats_ownership(live, owner):
    owner.put_bucket_policy(Bucket="acl-bucket", Policy=policy([{
        "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
        "Resource": "arn:aws:s3:::acl-bucket/secret.txt"}]))
    assert error_code(owner.delete_object, Bucket="acl-bucket", Key="secret.txt") == "AccessDenied"
    owner.delete_bucket_policy(Bucket="acl-bucket")
    owner.delete_object(Bucket="acl-bucket", Key="secret.txt")
    assert error_code(lambda: owner.get_bucket_policy(Bucket="acl-bucket")) == "NoSuchBucketPolicy"


def test_malformed_policy(live, owner):
    for text in ("not json", policy([{"Effect": "Allow", "Principal": "*",
                                      "Action": "s3:GetObject",
                                      "Resource": "arn:aws:s3:::another-bucket/*"}])):
        assert error_code(lambda: owner.put_bucket_policy(Bucket="acl-bucket", Policy=text)) \
            == "MalformedPolicy"
