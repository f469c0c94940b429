"""S3 multipart uploads over real HTTP with boto3: create / upload part / complete with
S3's ETag, the completion errors, abort, ListParts, ListMultipartUploads, UploadPartCopy
with ranges, and what stays on disk afterwards."""
from __future__ import annotations

import hashlib
import os

import pytest

from awsutil import failure
import storeutil

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="mpu")
    return client


@pytest.fixture(scope="module")
def big_parts():
    return [os.urandom(PART), os.urandom(PART), os.urandom(1234)]


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def usage(live) -> int:
    """Bytes in finished segments: what the store holds (files, or the backend's)."""
    return storeutil.usage(live)


def upload_parts(s3, key: str, upload_id: str, parts: list[bytes], first: int = 1):
    return [{"PartNumber": number,
             "ETag": s3.upload_part(Bucket="mpu", Key=key, UploadId=upload_id,
                                    PartNumber=number, Body=body)["ETag"]}
            for number, body in enumerate(parts, start=first)]


def complete(s3, key: str, upload_id: str, parts):
    return s3.complete_multipart_upload(Bucket="mpu", Key=key, UploadId=upload_id,
                                        MultipartUpload={"Parts": parts})


# --- the whole flow ------------------------------------------------------------------------

def test_create_upload_complete(live, s3, big_parts):
    created = s3.create_multipart_upload(Bucket="mpu", Key="dir/big file", ContentType=
                                         "video/mp4", Metadata={"camera": "one"},
                                         CacheControl="max-age=5")
    assert created["Bucket"] == "mpu" and created["Key"] == "dir/big file"
    upload_id = created["UploadId"]
    parts = upload_parts(s3, "dir/big file", upload_id, big_parts)
    for part, body in zip(parts, big_parts):
        assert part["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    # not visible before completion
    assert failure(s3.head_object, Bucket="mpu", Key="dir/big file")[1] == 404
    result = complete(s3, "dir/big file", upload_id, parts)
    expected_etag = multipart_etag(big_parts)
    assert result["ETag"] == expected_etag
    assert result["Bucket"] == "mpu" and result["Key"] == "dir/big file"
    assert result["Location"].endswith("/mpu/dir/big file")

    whole = b"".join(big_parts)
    response = s3.get_object(Bucket="mpu", Key="dir/big file")
    assert response["Body"].read() == whole
    assert response["ETag"] == expected_etag
    assert response["ContentLength"] == len(whole)
    assert response["ContentType"] == "video/mp4"
    assert response["CacheControl"] == "max-age=5"
    assert response["Metadata"] == {"camera": "one"}
    listed = s3.list_objects_v2(Bucket="mpu")["Contents"]
    assert [(item["Key"], item["ETag"], item["Size"]) for item in listed] == \
        [("dir/big file", expected_etag, len(whole))]
    # a range across the boundary of two parts
    response = s3.get_object(Bucket="mpu", Key="dir/big file",
                             Range=f"bytes={PART - 3}-{PART + 2}")
    assert response["Body"].read() == whole[PART - 3:PART + 3]
    # the parts became the object: no data was copied
    assert usage(live) == len(whole)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="mpu")
    code, status, _ = failure(s3.list_parts, Bucket="mpu", Key="dir/big file",
                            UploadId=upload_id)
    assert (code, status) == ("NoSuchUpload", 404)


def test_single_small_part_is_allowed(live, s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="small")["UploadId"]
    parts = upload_parts(s3, "small", upload_id, [b"only part"])
    assert complete(s3, "small", upload_id, parts)["ETag"] == multipart_etag([b"only part"])
    assert s3.get_object(Bucket="mpu", Key="small")["Body"].read() == b"only part"
    assert usage(live) == len(b"only part")


def test_reuploading_a_part_replaces_it(live, s3, big_parts):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="re")["UploadId"]
    upload_parts(s3, "re", upload_id, [b"first try"])
    parts = upload_parts(s3, "re", upload_id, [b"second try"])
    assert usage(live) == len(b"second try")
    listed = s3.list_parts(Bucket="mpu", Key="re", UploadId=upload_id)["Parts"]
    assert [(part["PartNumber"], part["Size"]) for part in listed] == [(1, 10)]
    complete(s3, "re", upload_id, parts)
    assert s3.get_object(Bucket="mpu", Key="re")["Body"].read() == b"second try"


def test_parts_left_out_of_the_completion_are_freed(live, s3, big_parts):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="subset")["UploadId"]
    parts = upload_parts(s3, "subset", upload_id, big_parts)
    chosen = [parts[0], parts[2]]
    result = complete(s3, "subset", upload_id, chosen)
    assert result["ETag"] == multipart_etag([big_parts[0], big_parts[2]])
    assert s3.get_object(Bucket="mpu", Key="subset")["Body"].read() == \
        big_parts[0] + big_parts[2]
    assert usage(live) == len(big_parts[0]) + len(big_parts[2])


def test_overwriting_with_a_multipart_object_frees_the_old_data(live, s3):
    s3.put_object(Bucket="mpu", Key="k", Body=b"x" * 1000)
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    complete(s3, "k", upload_id, upload_parts(s3, "k", upload_id, [b"new"]))
    assert usage(live) == 3


# --- completion errors ---------------------------------------------------------------------

def test_wrong_etag_or_missing_part_is_invalid_part(s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    parts = upload_parts(s3, "k", upload_id, [b"part one"])
    code, status, _ = failure(complete, s3, "k", upload_id,
                            [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}])
    assert (code, status) == ("InvalidPart", 400)
    code, status, _ = failure(complete, s3, "k", upload_id,
                            parts + [{"PartNumber": 2, "ETag": parts[0]["ETag"]}])
    assert (code, status) == ("InvalidPart", 400)
    # the upload is still there and can be completed properly
    complete(s3, "k", upload_id, parts)
    assert s3.get_object(Bucket="mpu", Key="k")["Body"].read() == b"part one"


def test_parts_out_of_order_is_invalid_part_order(s3, big_parts):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    parts = upload_parts(s3, "k", upload_id, big_parts[:2])
    code, status, _ = failure(complete, s3, "k", upload_id, [parts[1], parts[0]])
    assert (code, status) == ("InvalidPartOrder", 400)
    code, status, _ = failure(complete, s3, "k", upload_id, [parts[0], parts[0]])
    assert (code, status) == ("InvalidPartOrder", 400)


def test_small_non_last_part_is_entity_too_small(live, s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    parts = upload_parts(s3, "k", upload_id, [b"a" * 100, b"b" * 100])
    code, status, response = failure(complete, s3, "k", upload_id, parts)
    assert (code, status) == ("EntityTooSmall", 400)
    assert failure(s3.head_object, Bucket="mpu", Key="k")[1] == 404
    # nothing was lost: the parts are still listed and on disk
    listed = s3.list_parts(Bucket="mpu", Key="k", UploadId=upload_id)["Parts"]
    assert [part["PartNumber"] for part in listed] == [1, 2]
    assert usage(live) == 200


def test_completing_with_no_parts_is_malformed(s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    code, status, _ = failure(complete, s3, "k", upload_id, [])
    assert (code, status) == ("MalformedXML", 400)


def test_part_with_wrong_content_md5_is_bad_digest(live, s3):
    import base64

    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    code, status, _ = failure(s3.upload_part, Bucket="mpu", Key="k", UploadId=upload_id,
                            PartNumber=1, Body=b"part",
                            ContentMD5=base64.b64encode(hashlib.md5(b"other").digest())
                            .decode())
    assert (code, status) == ("BadDigest", 400)
    assert "Parts" not in s3.list_parts(Bucket="mpu", Key="k", UploadId=upload_id)
    assert usage(live) == 0


def test_part_number_out_of_range(s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    for number in (0, 10001):
        code, status, _ = failure(s3.upload_part, Bucket="mpu", Key="k", UploadId=upload_id,
                                PartNumber=number, Body=b"x")
        assert (code, status) == ("InvalidArgument", 400)


# --- abort ---------------------------------------------------------------------------------

def test_abort_then_no_such_upload(live, s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k")["UploadId"]
    parts = upload_parts(s3, "k", upload_id, [b"data"])
    response = s3.abort_multipart_upload(Bucket="mpu", Key="k", UploadId=upload_id)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert usage(live) == 0
    for call, kwargs in (
            (s3.upload_part, {"PartNumber": 2, "Body": b"more"}),
            (s3.list_parts, {}),
            (s3.abort_multipart_upload, {}),
            (complete, None)):
        if kwargs is None:
            code, status, _ = failure(complete, s3, "k", upload_id, parts)
        else:
            code, status, _ = failure(call, Bucket="mpu", Key="k", UploadId=upload_id, **kwargs)
        assert (code, status) == ("NoSuchUpload", 404), call
    assert failure(s3.head_object, Bucket="mpu", Key="k")[1] == 404


def test_unknown_upload_id_and_wrong_key(s3):
    code, status, response = failure(s3.upload_part, Bucket="mpu", Key="k", UploadId="nope",
                                   PartNumber=1, Body=b"x")
    assert (code, status) == ("NoSuchUpload", 404)
    assert response["Error"]["UploadId"] == "nope"
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="right")["UploadId"]
    code, status, _ = failure(s3.upload_part, Bucket="mpu", Key="wrong", UploadId=upload_id,
                            PartNumber=1, Body=b"x")
    assert (code, status) == ("NoSuchUpload", 404)


# --- ListParts -----------------------------------------------------------------------------

def test_list_parts_with_paging(s3):
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="k",
                                           StorageClass="STANDARD_IA")["UploadId"]
    bodies = [f"part {number}".encode() * number for number in range(1, 6)]
    uploaded = upload_parts(s3, "k", upload_id, bodies)
    response = s3.list_parts(Bucket="mpu", Key="k", UploadId=upload_id)
    assert [(part["PartNumber"], part["ETag"], part["Size"]) for part in response["Parts"]] \
        == [(item["PartNumber"], item["ETag"], len(body))
            for item, body in zip(uploaded, bodies)]
    assert response["IsTruncated"] is False
    assert response["UploadId"] == upload_id and response["Key"] == "k"
    assert response["StorageClass"] == "STANDARD_IA"
    assert response["Owner"]["ID"] and response["Initiator"]["ID"]
    page = s3.list_parts(Bucket="mpu", Key="k", UploadId=upload_id, MaxParts=2)
    assert [part["PartNumber"] for part in page["Parts"]] == [1, 2]
    assert page["IsTruncated"] is True and page["NextPartNumberMarker"] == 2
    page = s3.list_parts(Bucket="mpu", Key="k", UploadId=upload_id, MaxParts=2,
                         PartNumberMarker=page["NextPartNumberMarker"])
    assert [part["PartNumber"] for part in page["Parts"]] == [3, 4]
    numbers = [part["PartNumber"] for page in s3.get_paginator("list_parts").paginate(
        Bucket="mpu", Key="k", UploadId=upload_id, PaginationConfig={"PageSize": 2})
        for part in page.get("Parts", [])]
    assert numbers == [1, 2, 3, 4, 5]


# --- ListMultipartUploads ------------------------------------------------------------------

def test_list_multipart_uploads_with_prefix_and_delimiter(s3):
    keys = ["logs/a", "logs/b", "logs/2024/c", "photos/d", "top"]
    ids = {key: s3.create_multipart_upload(Bucket="mpu", Key=key)["UploadId"]
           for key in keys}
    second = s3.create_multipart_upload(Bucket="mpu", Key="top")["UploadId"]
    response = s3.list_multipart_uploads(Bucket="mpu")
    listed = [(upload["Key"], upload["UploadId"]) for upload in response["Uploads"]]
    assert [key for key, _ in listed] == ["logs/2024/c", "logs/a", "logs/b", "photos/d",
                                          "top", "top"]
    assert (("top", ids["top"]) in listed) and (("top", second) in listed)
    assert response["IsTruncated"] is False
    assert all(upload["Initiated"] and upload["Owner"]["ID"]
               for upload in response["Uploads"])

    response = s3.list_multipart_uploads(Bucket="mpu", Prefix="logs/")
    assert [upload["Key"] for upload in response["Uploads"]] == ["logs/2024/c", "logs/a",
                                                                 "logs/b"]
    response = s3.list_multipart_uploads(Bucket="mpu", Delimiter="/")
    assert [upload["Key"] for upload in response["Uploads"]] == ["top", "top"]
    assert [item["Prefix"] for item in response["CommonPrefixes"]] == ["logs/", "photos/"]
    response = s3.list_multipart_uploads(Bucket="mpu", Prefix="logs/", Delimiter="/")
    assert [upload["Key"] for upload in response["Uploads"]] == ["logs/a", "logs/b"]
    assert [item["Prefix"] for item in response["CommonPrefixes"]] == ["logs/2024/"]

    page = s3.list_multipart_uploads(Bucket="mpu", MaxUploads=2)
    assert page["IsTruncated"] is True and len(page["Uploads"]) == 2
    seen = [(upload["Key"], upload["UploadId"]) for page in
            s3.get_paginator("list_multipart_uploads").paginate(
                Bucket="mpu", PaginationConfig={"PageSize": 2})
            for upload in page.get("Uploads", [])]
    assert sorted(seen) == sorted(listed) and len(seen) == len(set(seen))


def test_list_multipart_uploads_pages_through_common_prefixes(s3):
    keys = ["a/1", "a/2", "b", "c/1", "c/2", "d"]
    for key in keys:
        s3.create_multipart_upload(Bucket="mpu", Key=key)
    uploads, prefixes = [], []
    for page in s3.get_paginator("list_multipart_uploads").paginate(
            Bucket="mpu", Delimiter="/", PaginationConfig={"PageSize": 1}):
        uploads += [upload["Key"] for upload in page.get("Uploads", [])]
        prefixes += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
    assert uploads == ["b", "d"]
    assert prefixes == ["a/", "c/"]


def test_list_uploads_of_missing_bucket(s3):
    code, status, _ = failure(s3.list_multipart_uploads, Bucket="missing")
    assert (code, status) == ("NoSuchBucket", 404)


# --- UploadPartCopy ------------------------------------------------------------------------

def test_upload_part_copy_with_ranges(live, s3):
    source = os.urandom(PART + 100)
    s3.put_object(Bucket="mpu", Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="assembled")["UploadId"]
    first = s3.upload_part_copy(Bucket="mpu", Key="assembled", UploadId=upload_id,
                                PartNumber=1, CopySource={"Bucket": "mpu", "Key": "source"},
                                CopySourceRange=f"bytes=0-{PART - 1}")
    assert first["CopyPartResult"]["ETag"] == f'"{hashlib.md5(source[:PART]).hexdigest()}"'
    second = s3.upload_part_copy(Bucket="mpu", Key="assembled", UploadId=upload_id,
                                 PartNumber=2, CopySource="mpu/source",
                                 CopySourceRange=f"bytes={PART}-{PART + 99}")
    result = complete(s3, "assembled", upload_id, [
        {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
        {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]}])
    assert result["ETag"] == multipart_etag([source[:PART], source[PART:]])
    assert s3.get_object(Bucket="mpu", Key="assembled")["Body"].read() == source


def test_upload_part_copy_whole_object_and_bad_ranges(s3):
    s3.put_object(Bucket="mpu", Key="source", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket="mpu", Key="dst")["UploadId"]
    whole = s3.upload_part_copy(Bucket="mpu", Key="dst", UploadId=upload_id, PartNumber=1,
                                CopySource="mpu/source")
    assert whole["CopyPartResult"]["ETag"] == \
        f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    # Unlike GET, a copy range is never trimmed to the object; only bytes=first-last
    for bad in ("bytes=5-100", "bytes=20-30", "bytes=5-", "bytes=-3", "0-4", "bytes=4-2"):
        code, status, _ = failure(s3.upload_part_copy, Bucket="mpu", Key="dst",
                                UploadId=upload_id, PartNumber=2, CopySource="mpu/source",
                                CopySourceRange=bad)
        assert (code, status) == ("InvalidArgument", 400), bad
    part = s3.upload_part_copy(Bucket="mpu", Key="dst", UploadId=upload_id, PartNumber=2,
                               CopySource="mpu/source", CopySourceRange="bytes=9-9")
    assert part["CopyPartResult"]["ETag"] == f'"{hashlib.md5(b"9").hexdigest()}"'
    code, status, _ = failure(s3.upload_part_copy, Bucket="mpu", Key="dst", UploadId=upload_id,
                            PartNumber=2, CopySource="mpu/none")
    assert (code, status) == ("NoSuchKey", 404)
    complete(s3, "dst", upload_id, [{"PartNumber": 1,
                                     "ETag": whole["CopyPartResult"]["ETag"]}])
    assert s3.get_object(Bucket="mpu", Key="dst")["Body"].read() == b"0123456789"


# --- boto3's managed transfers -------------------------------------------------------------

def test_boto3_managed_upload_download_and_copy(live, s3, tmp_path):
    """upload_file / download_file / copy as a user runs them: s3transfer splits into
    parallel parts, ranged GETs and UploadPartCopy ranges."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                            max_concurrency=4)
    data = os.urandom(2 * PART + 4321)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    s3.upload_file(str(source), "mpu", "managed/file.bin", Config=config)
    head = s3.head_object(Bucket="mpu", Key="managed/file.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == multipart_etag([data[:PART], data[PART:2 * PART],
                                           data[2 * PART:]])
    target = tmp_path / "download.bin"
    s3.download_file("mpu", "managed/file.bin", str(target), Config=config)
    assert target.read_bytes() == data
    s3.copy({"Bucket": "mpu", "Key": "managed/file.bin"}, "mpu", "managed/copy.bin",
            Config=config)
    assert s3.get_object(Bucket="mpu", Key="managed/copy.bin")["Body"].read() == data
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="mpu")
