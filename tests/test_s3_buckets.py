"""S3 buckets over real HTTP with boto3: create (name rules, ownership), head, delete, list,
location."""
from __future__ import annotations

import pytest
from awsutil import failure
from s3util import second_account


@pytest.fixture
def s3(live):
    return live.client("s3")


def test_create_then_head_and_list(s3):
    response = s3.create_bucket(Bucket="alpha")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["Location"] == "/alpha"
    head = s3.head_bucket(Bucket="alpha")
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    names = [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    assert names == ["alpha"]


@pytest.mark.parametrize("name", [
    "ab",                      # too short
    "a" * 64,                  # too long
    "UpperCase",               # upper case
    "under_score",
    "-leading-hyphen",
    "trailing-hyphen-",
    "two..dots",
    "dot.-hyphen",
    "192.168.10.1",            # an IP address
    "xn--punycode",            # reserved prefix
    "name-s3alias",            # reserved suffix
])
def test_invalid_bucket_names(s3, name):
    code, status, _ = failure(s3.create_bucket, Bucket=name)
    assert (code, status) == ("InvalidBucketName", 400)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "my.bucket.name", "0-9-digits"])
def test_valid_bucket_names(s3, name):
    s3.create_bucket(Bucket=name)
    s3.head_bucket(Bucket=name)


def test_create_twice_is_already_owned_by_you(s3):
    s3.create_bucket(Bucket="mine")
    code, status, _ = failure(s3.create_bucket, Bucket="mine")
    assert (code, status) == ("BucketAlreadyOwnedByYou", 409)


def test_name_owned_by_another_account_is_already_exists(live, s3):
    s3.create_bucket(Bucket="taken")
    other = second_account(live, "second")[0]
    code, status, _ = failure(other.create_bucket, Bucket="taken")
    assert (code, status) == ("BucketAlreadyExists", 409)


def test_list_buckets_shows_only_own_buckets(live, s3):
    other = second_account(live, "second")[0]
    s3.create_bucket(Bucket="admin-b")
    s3.create_bucket(Bucket="admin-a")
    other.create_bucket(Bucket="other-a")
    listing = s3.list_buckets()
    assert [bucket["Name"] for bucket in listing["Buckets"]] == ["admin-a", "admin-b"]
    assert all(bucket["CreationDate"] for bucket in listing["Buckets"])
    assert listing["Owner"]["ID"]
    assert [bucket["Name"] for bucket in other.list_buckets()["Buckets"]] == ["other-a"]
    assert other.list_buckets()["Owner"]["ID"] != listing["Owner"]["ID"]


def test_head_missing_bucket_is_404(s3):
    code, status, response = failure(s3.head_bucket, Bucket="nowhere")
    assert status == 404
    assert code in ("404", "NoSuchBucket")     # HEAD carries no body: boto3 sees the status


def test_head_another_accounts_bucket_is_403(live, s3):
    s3.create_bucket(Bucket="private-one")
    other = second_account(live, "second")[0]
    code, status, _ = failure(other.head_bucket, Bucket="private-one")
    assert status == 403


def test_delete_bucket(s3):
    s3.create_bucket(Bucket="short-lived")
    response = s3.delete_bucket(Bucket="short-lived")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, status, _ = failure(s3.head_bucket, Bucket="short-lived")
    assert status == 404
    assert s3.list_buckets()["Buckets"] == []


def test_deleted_name_is_free_for_another_account(live, s3):
    s3.create_bucket(Bucket="passed-on")
    s3.delete_bucket(Bucket="passed-on")
    other = second_account(live, "second")[0]
    other.create_bucket(Bucket="passed-on")
    assert [bucket["Name"] for bucket in other.list_buckets()["Buckets"]] == ["passed-on"]
    assert failure(s3.create_bucket, Bucket="passed-on")[0] == "BucketAlreadyExists"


def test_delete_missing_bucket_is_no_such_bucket(s3):
    code, status, response = failure(s3.delete_bucket, Bucket="never-was")
    assert (code, status) == ("NoSuchBucket", 404)
    assert response["Error"]["BucketName"] == "never-was"


def test_delete_non_empty_bucket_is_bucket_not_empty(s3):
    s3.create_bucket(Bucket="full")
    s3.put_object(Bucket="full", Key="k", Body=b"x")
    code, status, _ = failure(s3.delete_bucket, Bucket="full")
    assert (code, status) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket="full", Key="k")
    s3.delete_bucket(Bucket="full")


def test_bucket_with_only_a_delete_marker_is_not_empty(s3):
    s3.create_bucket(Bucket="pending")
    s3.put_bucket_versioning(Bucket="pending",
                             VersioningConfiguration={"Status": "Enabled"})
    s3.delete_object(Bucket="pending", Key="gone")         # only a delete marker
    assert failure(s3.delete_bucket, Bucket="pending")[0] == "BucketNotEmpty"


def test_delete_another_accounts_bucket_is_access_denied(live, s3):
    s3.create_bucket(Bucket="keep-out")
    other = second_account(live, "second")[0]
    code, status, _ = failure(other.delete_bucket, Bucket="keep-out")
    assert (code, status) == ("AccessDenied", 403)
    s3.head_bucket(Bucket="keep-out")


def test_get_bucket_location(s3):
    s3.create_bucket(Bucket="default-loc")
    assert s3.get_bucket_location(Bucket="default-loc")["LocationConstraint"] is None
    s3.create_bucket(Bucket="placed", CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"})
    assert s3.get_bucket_location(Bucket="placed")["LocationConstraint"] == "eu-west-1"


def test_get_location_of_missing_bucket(s3):
    code, status, _ = failure(s3.get_bucket_location, Bucket="no-such")
    assert (code, status) == ("NoSuchBucket", 404)


def test_list_buckets_without_credentials_is_denied(live):
    import requests

    response = requests.get(live.base_url + "/")
    assert response.status_code == 403
