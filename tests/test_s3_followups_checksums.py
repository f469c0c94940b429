"""S3's default checksum (a full-object CRC64NVME, since December 2024) on every write that
carries none, over real HTTP with boto3: CopyObject of an object stored without a checksum,
CompleteMultipartUpload of an upload created without an algorithm (whether or not its parts
carried one of their own), POST Object. HEAD/GET with checksum mode and GetObjectAttributes
show it; a part-number read of a COMPOSITE object answers that part's checksum."""
from __future__ import annotations

import base64
import os
import zlib

import pytest
import requests
from awscrt import checksums as crt

from eucalite.db import db
from eucalite.s3.models import ObjectVersion

MiB = 1024 * 1024


def crc64(data: bytes) -> str:
    return base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="sums")
    return client


@pytest.fixture
def plain(live):
    """A client that sends no checksum of its own and validates none."""
    return live.client("s3", request_checksum_calculation="when_required",
                       response_checksum_validation="when_required")


def shown(s3, key: str) -> tuple:
    """(HEAD's, GET's and GetObjectAttributes' checksum of *key*) with checksum mode on."""
    head = s3.head_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    got = s3.get_object(Bucket="sums", Key=key, ChecksumMode="ENABLED")
    got["Body"].read()
    attributes = s3.get_object_attributes(Bucket="sums", Key=key,
                                          ObjectAttributes=["Checksum"])["Checksum"]
    return ((head.get("ChecksumCRC64NVME"), head.get("ChecksumType")),
            (got.get("ChecksumCRC64NVME"), got.get("ChecksumType")),
            (attributes.get("ChecksumCRC64NVME"), attributes.get("ChecksumType")))


def forget_checksum(live, key: str) -> None:
    """Make *key* an object stored before S3's default checksum existed."""
    with live.app.app_context():
        for version in db.session.execute(db.select(ObjectVersion).filter_by(key=key)
                                          ).scalars():
            version.checksum_algorithm = version.checksum_value = None
            version.checksum_type = None
        db.session.commit()


def test_a_copy_of_an_object_without_a_checksum_gets_crc64nvme(live, s3, plain):
    body = os.urandom(70_000)
    plain.put_object(Bucket="sums", Key="old", Body=body)
    forget_checksum(live, "old")
    assert "ChecksumType" not in s3.head_object(Bucket="sums", Key="old",
                                                ChecksumMode="ENABLED")
    copied = plain.copy_object(Bucket="sums", Key="copy", CopySource="sums/old")
    assert copied["CopyObjectResult"]["ChecksumCRC64NVME"] == crc64(body)
    assert copied["CopyObjectResult"]["ChecksumType"] == "FULL_OBJECT"
    assert shown(s3, "copy") == ((crc64(body), "FULL_OBJECT"),) * 3
    # a copy of an object with a checksum keeps that one
    plain.put_object(Bucket="sums", Key="summed", Body=body, ChecksumAlgorithm="CRC32")
    again = plain.copy_object(Bucket="sums", Key="copy2", CopySource="sums/summed")
    assert again["CopyObjectResult"]["ChecksumCRC32"] == crc32(body)
    assert "ChecksumCRC64NVME" not in again["CopyObjectResult"]


def _multipart(client, key: str, parts: list[bytes]) -> dict:
    upload = client.create_multipart_upload(Bucket="sums", Key=key)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        answer = client.upload_part(Bucket="sums", Key=key, UploadId=upload,
                                    PartNumber=number, Body=body)
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    return client.complete_multipart_upload(Bucket="sums", Key=key, UploadId=upload,
                                            MultipartUpload={"Parts": done})


@pytest.mark.parametrize("sender", ["plain", "s3"])
def test_an_upload_created_without_an_algorithm_gets_a_full_object_crc64nvme(
        request, s3, sender):
    """Whether the parts came bare (*plain*) or with the SDK's own CRC32 each (*s3*, the
    newest boto3's default), the object's checksum is the whole object's CRC64NVME."""
    client = request.getfixturevalue(sender)
    parts = [os.urandom(5 * MiB), os.urandom(12_345)]
    completed = _multipart(client, "mp", parts)
    whole = b"".join(parts)
    assert (completed["ChecksumCRC64NVME"], completed["ChecksumType"]) == (
        crc64(whole), "FULL_OBJECT")
    assert shown(s3, "mp") == ((crc64(whole), "FULL_OBJECT"),) * 3
    listed = s3.get_object_attributes(Bucket="sums", Key="mp",
                                      ObjectAttributes=["ObjectParts"])["ObjectParts"]
    assert [(part["PartNumber"], part["Size"], part["ChecksumCRC64NVME"])
            for part in listed["Parts"]] == [(1, 5 * MiB, crc64(parts[0])),
                                             (2, 12_345, crc64(parts[1]))]


def test_upload_part_answers_the_checksum_the_part_was_given(s3, plain):
    upload = s3.create_multipart_upload(Bucket="sums", Key="p")["UploadId"]
    bare = plain.upload_part(Bucket="sums", Key="p", UploadId=upload, PartNumber=1,
                             Body=b"part one")
    assert bare["ChecksumCRC64NVME"] == crc64(b"part one")
    sent = s3.upload_part(Bucket="sums", Key="p", UploadId=upload, PartNumber=2,
                          Body=b"part two", ChecksumAlgorithm="CRC32")
    assert sent["ChecksumCRC32"] == crc32(b"part two") and "ChecksumCRC64NVME" not in sent


def test_a_copied_part_of_an_upload_without_an_algorithm_gets_crc64nvme(s3, plain):
    first, last = os.urandom(5 * MiB), b"tail"
    plain.put_object(Bucket="sums", Key="src", Body=first)
    upload = plain.create_multipart_upload(Bucket="sums", Key="cp")["UploadId"]
    one = plain.upload_part_copy(Bucket="sums", Key="cp", UploadId=upload, PartNumber=1,
                                 CopySource="sums/src")["CopyPartResult"]["ETag"]
    two = plain.upload_part(Bucket="sums", Key="cp", UploadId=upload, PartNumber=2,
                            Body=last)["ETag"]
    completed = plain.complete_multipart_upload(
        Bucket="sums", Key="cp", UploadId=upload, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": one}, {"PartNumber": 2, "ETag": two}]})
    assert completed["ChecksumCRC64NVME"] == crc64(first + last)


def test_post_object_gets_crc64nvme(s3):
    body = os.urandom(3000)
    form = s3.generate_presigned_post("sums", "posted")
    answer = requests.post(form["url"], data=form["fields"], files={"file": body})
    assert answer.status_code == 204, answer.text
    assert shown(s3, "posted") == ((crc64(body), "FULL_OBJECT"),) * 3


def _composite(s3, key: str, parts: list[bytes], algorithm: str = "CRC32", **create) -> None:
    upload = s3.create_multipart_upload(Bucket="sums", Key=key, ChecksumAlgorithm=algorithm,
                                        **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket="sums", Key=key, UploadId=upload, PartNumber=number,
                                Body=body, ChecksumAlgorithm=algorithm)
        done.append({"PartNumber": number, "ETag": answer["ETag"],
                     f"Checksum{algorithm}": answer[f"Checksum{algorithm}"]})
    s3.complete_multipart_upload(Bucket="sums", Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": done})


def test_a_part_read_of_a_composite_object_answers_the_parts_checksum(s3):
    """boto3 validates what it gets against the checksum answered, so a GET of a part with
    the whole object's (or another part's) checksum would fail here."""
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(999)]
    _composite(s3, "comp", parts)
    for number, body in enumerate(parts, start=1):
        got = s3.get_object(Bucket="sums", Key="comp", PartNumber=number,
                            ChecksumMode="ENABLED")
        assert got["Body"].read() == body
        assert (got["ChecksumCRC32"], got["ChecksumType"], got["PartsCount"]) == (
            crc32(body), "COMPOSITE", 3)
    head = s3.head_object(Bucket="sums", Key="comp", PartNumber=2, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(parts[1])
    # without checksum mode, no checksum; the whole object's is the composite
    assert "ChecksumCRC32" not in s3.head_object(Bucket="sums", Key="comp", PartNumber=2)
    assert s3.head_object(Bucket="sums", Key="comp", ChecksumMode="ENABLED")[
        "ChecksumCRC32"].endswith("-3")


def test_a_part_read_of_a_full_object_upload_has_a_checksum_only_when_it_is_the_whole(s3):
    parts = [os.urandom(5 * MiB), os.urandom(999)]
    _composite(s3, "full", parts, ChecksumType="FULL_OBJECT")
    got = s3.get_object(Bucket="sums", Key="full", PartNumber=2, ChecksumMode="ENABLED")
    assert got["Body"].read() == parts[1] and "ChecksumCRC32" not in got
    _composite(s3, "one", parts[1:], ChecksumType="FULL_OBJECT")
    got = s3.get_object(Bucket="sums", Key="one", PartNumber=1, ChecksumMode="ENABLED")
    assert got["Body"].read() == parts[1]
    assert (got["ChecksumCRC32"], got["ChecksumType"]) == (crc32(parts[1]), "FULL_OBJECT")
