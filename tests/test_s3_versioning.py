"""S3 versioning over real HTTP with boto3: enabling, versions per PUT, reads by version
id, delete markers and restoring by deleting them, suspension and the ``null`` version,
and ListObjectVersions paging with key and version-id markers."""
from __future__ import annotations


import pytest

from awsutil import failure
import storeutil


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="ver")
    return client


def enable(s3, bucket: str = "ver", status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def versions(s3, bucket: str = "ver", **kwargs):
    """[(kind, key, version id, is latest, modified)] from one ListObjectVersions page:
    boto3 splits versions and delete markers into two lists, so the versions come first
    (by key, newest first), then the markers."""
    response = s3.list_object_versions(Bucket=bucket, **kwargs)
    return _merged(response), response


def _merged(response):
    items = [("V", item["Key"], item["VersionId"], item["IsLatest"], item["LastModified"])
             for item in response.get("Versions", [])]
    items += [("D", item["Key"], item["VersionId"], item["IsLatest"], item["LastModified"])
              for item in response.get("DeleteMarkers", [])]
    return items


def usage(live) -> int:
    """Bytes in finished segments: what the store holds (files, or the backend's)."""
    return storeutil.usage(live)


def test_versioning_status(s3):
    assert "Status" not in s3.get_bucket_versioning(Bucket="ver")
    enable(s3)
    assert s3.get_bucket_versioning(Bucket="ver")["Status"] == "Enabled"
    enable(s3, status="Suspended")
    assert s3.get_bucket_versioning(Bucket="ver")["Status"] == "Suspended"
    code, status, _ = failure(s3.put_bucket_versioning, Bucket="ver",
                            VersioningConfiguration={"Status": "Sometimes"})
    assert (code, status) == ("IllegalVersioningConfigurationException", 400)
    code, status, _ = failure(s3.get_bucket_versioning, Bucket="nope")
    assert (code, status) == ("NoSuchBucket", 404)


def test_unversioned_bucket_has_no_version_ids(s3):
    put = s3.put_object(Bucket="ver", Key="k", Body=b"one")
    assert "VersionId" not in put
    assert "VersionId" not in s3.get_object(Bucket="ver", Key="k")
    # the one version is the null version
    assert s3.get_object(Bucket="ver", Key="k", VersionId="null")["Body"].read() == b"one"
    listed, _ = versions(s3)
    assert [(kind, key, vid, latest) for kind, key, vid, latest, _ in listed] == \
        [("V", "k", "null", True)]


def test_two_puts_make_two_versions(live, s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="doc", Body=b"version one")["VersionId"]
    second = s3.put_object(Bucket="ver", Key="doc", Body=b"version two!")["VersionId"]
    assert first and second and first != second and "null" not in (first, second)

    latest = s3.get_object(Bucket="ver", Key="doc")
    assert latest["Body"].read() == b"version two!"
    assert latest["VersionId"] == second
    old = s3.get_object(Bucket="ver", Key="doc", VersionId=first)
    assert old["Body"].read() == b"version one"
    assert old["VersionId"] == first
    head = s3.head_object(Bucket="ver", Key="doc", VersionId=first)
    assert head["ContentLength"] == len(b"version one") and head["VersionId"] == first

    listed, response = versions(s3)
    assert [(kind, vid, latest) for kind, _, vid, latest, _ in listed] == \
        [("V", second, True), ("V", first, False)]
    assert [item["Size"] for item in response["Versions"]] == [12, 11]
    # both versions' data is kept
    assert usage(live) == 23
    # only the latest is listed as the object
    assert [(item["Key"], item["Size"]) for item in
            s3.list_objects_v2(Bucket="ver")["Contents"]] == [("doc", 12)]


def test_unknown_version_id(s3):
    enable(s3)
    s3.put_object(Bucket="ver", Key="doc", Body=b"x")
    code, status, _ = failure(s3.get_object, Bucket="ver", Key="doc",
                            VersionId="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert (code, status) == ("NoSuchVersion", 404)
    code, status, _ = failure(s3.get_object, Bucket="ver", Key="doc", VersionId="not/valid!")
    assert (code, status) == ("InvalidArgument", 400)


def test_delete_adds_a_marker_and_deleting_the_marker_restores(live, s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="doc", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket="ver", Key="doc", Body=b"two")["VersionId"]
    deleted = s3.delete_object(Bucket="ver", Key="doc")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert marker not in (first, second)

    code, status, response = failure(s3.get_object, Bucket="ver", Key="doc")
    assert (code, status) == ("NoSuchKey", 404)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-delete-marker"] == "true"
    assert headers["x-amz-version-id"] == marker
    assert failure(s3.head_object, Bucket="ver", Key="doc")[1] == 404
    # the marker itself cannot be read
    code, status, _ = failure(s3.get_object, Bucket="ver", Key="doc", VersionId=marker)
    assert (code, status) == ("MethodNotAllowed", 405)
    # older versions still can
    assert s3.get_object(Bucket="ver", Key="doc", VersionId=second)["Body"].read() == b"two"
    assert "Contents" not in s3.list_objects_v2(Bucket="ver")

    listed, _ = versions(s3)
    assert sorted((kind, vid, latest) for kind, _, vid, latest, _ in listed) == sorted(
        [("D", marker, True), ("V", second, False), ("V", first, False)])
    assert usage(live) == 6

    removed = s3.delete_object(Bucket="ver", Key="doc", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    restored = s3.get_object(Bucket="ver", Key="doc")
    assert restored["Body"].read() == b"two" and restored["VersionId"] == second
    listed, _ = versions(s3)
    assert [(kind, vid, latest) for kind, _, vid, latest, _ in listed] == \
        [("V", second, True), ("V", first, False)]


def test_delete_marker_is_not_revealed_to_other_accounts(live, s3):
    from s3util import second_account

    enable(s3)
    s3.put_object(Bucket="ver", Key="doc", Body=b"x")
    s3.delete_object(Bucket="ver", Key="doc")
    other = second_account(live, "second")[0]
    for key in ("doc", "never-existed"):
        code, status, response = failure(other.get_object, Bucket="ver", Key=key)
        assert (code, status) == ("AccessDenied", 403), key
        assert "x-amz-version-id" not in response["ResponseMetadata"]["HTTPHeaders"]
        assert "x-amz-delete-marker" not in response["ResponseMetadata"]["HTTPHeaders"]


def test_delete_a_version_permanently(live, s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="doc", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket="ver", Key="doc", Body=b"two")["VersionId"]
    response = s3.delete_object(Bucket="ver", Key="doc", VersionId=second)
    assert response["VersionId"] == second and "DeleteMarker" not in response
    # the previous version becomes the current one
    assert s3.get_object(Bucket="ver", Key="doc")["Body"].read() == b"one"
    assert usage(live) == 3
    code, status, _ = failure(s3.get_object, Bucket="ver", Key="doc", VersionId=second)
    assert (code, status) == ("NoSuchVersion", 404)
    s3.delete_object(Bucket="ver", Key="doc", VersionId=first)
    assert versions(s3)[0] == [] and usage(live) == 0
    # deleting a version that is gone still succeeds
    s3.delete_object(Bucket="ver", Key="doc", VersionId=first)


def test_delete_objects_in_a_versioned_bucket(s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="a", Body=b"a")["VersionId"]
    s3.put_object(Bucket="ver", Key="b", Body=b"b")
    response = s3.delete_objects(Bucket="ver", Delete={"Objects": [
        {"Key": "a", "VersionId": first}, {"Key": "b"}]})
    by_key = {item["Key"]: item for item in response["Deleted"]}
    assert by_key["a"]["VersionId"] == first and "DeleteMarker" not in by_key["a"]
    assert by_key["b"]["DeleteMarker"] is True and by_key["b"]["DeleteMarkerVersionId"]
    listed, _ = versions(s3)
    assert [(kind, key, latest) for kind, key, _, latest, _ in sorted(listed)] == \
        [("D", "b", True), ("V", "b", False)]


def test_suspend_keeps_versions_and_writes_null(live, s3):
    enable(s3)
    kept = s3.put_object(Bucket="ver", Key="doc", Body=b"kept")["VersionId"]
    enable(s3, status="Suspended")
    put = s3.put_object(Bucket="ver", Key="doc", Body=b"null one")
    assert put["VersionId"] == "null"
    s3.put_object(Bucket="ver", Key="doc", Body=b"null two")     # replaces the null version
    assert s3.get_object(Bucket="ver", Key="doc")["Body"].read() == b"null two"
    assert s3.get_object(Bucket="ver", Key="doc", VersionId=kept)["Body"].read() == b"kept"
    listed, _ = versions(s3)
    assert [(kind, vid, latest) for kind, _, vid, latest, _ in listed] == \
        [("V", "null", True), ("V", kept, False)]
    assert usage(live) == len(b"kept") + len(b"null two")

    deleted = s3.delete_object(Bucket="ver", Key="doc")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    listed, _ = versions(s3)
    assert sorted((kind, vid, latest) for kind, _, vid, latest, _ in listed) == \
        [("D", "null", True), ("V", kept, False)]
    assert usage(live) == len(b"kept")       # the null version's data went with it
    # enabling again: new versions get ids, the null marker stays in the history
    enable(s3)
    newest = s3.put_object(Bucket="ver", Key="doc", Body=b"again")["VersionId"]
    assert newest != "null"
    listed, _ = versions(s3)
    assert [(kind, vid) for kind, _, vid, _, _ in listed] == \
        [("V", newest), ("V", kept), ("D", "null")]


def test_copy_from_a_version(s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket="ver", Key="src", Body=b"new")
    result = s3.copy_object(Bucket="ver", Key="dst",
                            CopySource={"Bucket": "ver", "Key": "src", "VersionId": first})
    assert result["CopySourceVersionId"] == first
    assert result["VersionId"]
    assert s3.get_object(Bucket="ver", Key="dst")["Body"].read() == b"old"


def test_restore_an_old_version_by_copying_it_onto_its_key(s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="doc", Body=b"old",
                          Metadata={"rev": "1"})["VersionId"]
    s3.put_object(Bucket="ver", Key="doc", Body=b"new")
    # without a version, copying an object onto itself is refused even when versioned
    code, status, _ = failure(s3.copy_object, Bucket="ver", Key="doc", CopySource="ver/doc")
    assert (code, status) == ("InvalidRequest", 400)
    result = s3.copy_object(Bucket="ver", Key="doc",
                            CopySource={"Bucket": "ver", "Key": "doc", "VersionId": first})
    assert result["CopySourceVersionId"] == first
    restored = s3.get_object(Bucket="ver", Key="doc")
    assert restored["Body"].read() == b"old" and restored["Metadata"] == {"rev": "1"}
    assert restored["VersionId"] == result["VersionId"] != first
    listed, _ = versions(s3)
    assert len(listed) == 3


def test_list_object_versions_paging_with_markers(s3):
    enable(s3)
    expected = []
    for key in ("a", "b", "c"):
        ids = [s3.put_object(Bucket="ver", Key=key, Body=f"{key}{n}".encode())["VersionId"]
               for n in range(3)]
        expected += [(key, vid) for vid in reversed(ids)]          # newest first
    marker = s3.delete_object(Bucket="ver", Key="b")["VersionId"]
    expected.insert(3, ("b", marker))

    listed, response = versions(s3)
    order = {item: index for index, item in enumerate(expected)}
    assert sorted(((key, vid) for _, key, vid, _, _ in listed), key=order.get) == expected
    assert len(listed) == 10 and response["IsTruncated"] is False

    # page by hand, two entries at a time
    seen, kwargs = [], {"MaxKeys": 2}
    while True:
        page, response = versions(s3, **kwargs)
        assert len(page) <= 2
        seen += sorted(((key, vid) for _, key, vid, _, _ in page), key=order.get)
        if not response["IsTruncated"]:
            break
        kwargs = {"MaxKeys": 2, "KeyMarker": response["NextKeyMarker"],
                  "VersionIdMarker": response["NextVersionIdMarker"]}
    assert seen == expected

    # a key marker alone starts after every version of that key
    page, _ = versions(s3, KeyMarker="a")
    assert {key for _, key, _, _, _ in page} == {"b", "c"}
    # a version-id marker resumes inside that key's versions
    page, response = versions(s3, KeyMarker="c", VersionIdMarker=expected[-3][1])
    assert [vid for _, _, vid, _, _ in page] == [expected[-2][1], expected[-1][1]]
    assert response["KeyMarker"] == "c" and response["VersionIdMarker"] == expected[-3][1]

    # the paginator sees every version and marker exactly once
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(
            Bucket="ver", PaginationConfig={"PageSize": 3}):
        seen += [(key, vid) for _, key, vid, _, _ in _merged(page)]
    assert sorted(seen, key=order.get) == expected and len(seen) == len(set(seen))


def test_list_object_versions_prefix_and_delimiter(s3):
    enable(s3)
    for key in ("dir/a", "dir/a", "dir/sub/b", "top"):
        s3.put_object(Bucket="ver", Key=key, Body=b"x")
    page, response = versions(s3, Delimiter="/")
    assert [key for _, key, _, _, _ in page] == ["top"]
    assert [item["Prefix"] for item in response["CommonPrefixes"]] == ["dir/"]
    page, response = versions(s3, Prefix="dir/", Delimiter="/")
    assert [key for _, key, _, _, _ in page] == ["dir/a", "dir/a"]
    assert [item["Prefix"] for item in response["CommonPrefixes"]] == ["dir/sub/"]


def test_version_id_marker_needs_key_marker(s3):
    code, status, _ = failure(s3.list_object_versions, Bucket="ver", VersionIdMarker="abc")
    assert (code, status) == ("InvalidArgument", 400)


def test_list_object_versions_pages_through_common_prefixes(s3):
    enable(s3)
    for key in ("a/1", "a/1", "a/2", "b", "b", "c/1", "d"):
        s3.put_object(Bucket="ver", Key=key, Body=b"x")
    keys, prefixes = [], []
    for page in s3.get_paginator("list_object_versions").paginate(
            Bucket="ver", Delimiter="/", PaginationConfig={"PageSize": 1}):
        keys += [key for _, key, _, _, _ in _merged(page)]
        prefixes += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
    assert keys == ["b", "b", "d"]
    assert prefixes == ["a/", "c/"]


def test_multipart_completion_in_a_versioned_bucket_adds_a_version(s3):
    enable(s3)
    first = s3.put_object(Bucket="ver", Key="doc", Body=b"plain")["VersionId"]
    upload_id = s3.create_multipart_upload(Bucket="ver", Key="doc")["UploadId"]
    etag = s3.upload_part(Bucket="ver", Key="doc", UploadId=upload_id, PartNumber=1,
                          Body=b"multi")["ETag"]
    result = s3.complete_multipart_upload(Bucket="ver", Key="doc", UploadId=upload_id,
                                          MultipartUpload={"Parts": [
                                              {"PartNumber": 1, "ETag": etag}]})
    assert result["VersionId"] not in (None, first, "null")
    assert s3.get_object(Bucket="ver", Key="doc")["Body"].read() == b"multi"
    assert s3.get_object(Bucket="ver", Key="doc", VersionId=first)["Body"].read() == b"plain"
    assert s3.head_object(Bucket="ver", Key="doc", VersionId=result["VersionId"],
                          PartNumber=1)["PartsCount"] == 1
