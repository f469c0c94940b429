"""S3 multipart checksums of both types over real HTTP with boto3: FULL_OBJECT (the whole
object's CRC, combined from the parts' CRCs) as well as COMPOSITE, S3's rules on which
algorithm allows which type, what CompleteMultipartUpload may claim and its errors, and the
newest boto3's defaults (upload_file, then a validated GET)."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from awscrt import checksums as crt

from awsutil import failure
from eucalite.s3 import checksums

MiB = 1024 * 1024
PART = 5 * MiB
CRCS = {"CRC32": (zlib.crc32, 4), "CRC32C": (crt.crc32c, 4), "CRC64NVME": (crt.crc64nvme, 8)}


def crc_b64(algorithm: str, data: bytes) -> str:
    function, size = CRCS[algorithm]
    return base64.b64encode(function(data).to_bytes(size, "big")).decode()


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="sums")
    return client


@pytest.fixture(scope="module")
def parts():
    return [os.urandom(PART), os.urandom(PART), os.urandom(4321)]


def upload(s3, key: str, parts: list[bytes], algorithm: str, **create) -> tuple[str, list]:
    upload_id = s3.create_multipart_upload(Bucket="sums", Key=key, ChecksumAlgorithm=algorithm,
                                           **create)["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket="sums", Key=key, UploadId=upload_id, PartNumber=number,
                                Body=body, ChecksumAlgorithm=algorithm)
        done.append({"PartNumber": number, "ETag": answer["ETag"],
                     f"Checksum{algorithm}": answer[f"Checksum{algorithm}"]})
    return upload_id, done


# --- the combine math ------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", sorted(CRCS))
def test_combined_crc_equals_the_crc_of_the_whole(algorithm):
    data = os.urandom(100_000)
    for cuts in ([0, 1, 100_000], [0, 7, 65_536, 65_537, 100_000], [0, 0, 50_000, 100_000]):
        pieces = [data[start:end] for start, end in zip(cuts, cuts[1:])]
        raw = [(base64.b64decode(crc_b64(algorithm, piece)), len(piece)) for piece in pieces]
        assert checksums.full_object(algorithm, raw) == crc_b64(algorithm, data)


# --- FULL_OBJECT ------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_upload_is_the_crc_of_the_whole_object(s3, parts, algorithm):
    whole = crc_b64(algorithm, b"".join(parts))
    created = s3.create_multipart_upload(Bucket="sums", Key="full", ChecksumAlgorithm=algorithm,
                                         ChecksumType="FULL_OBJECT")
    assert created["ChecksumAlgorithm"] == algorithm
    assert created["ChecksumType"] == "FULL_OBJECT"
    upload_id = created["UploadId"]
    done = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket="sums", Key="full", UploadId=upload_id,
                                PartNumber=number, Body=body, ChecksumAlgorithm=algorithm)
        assert answer[f"Checksum{algorithm}"] == crc_b64(algorithm, body)
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    listed = s3.list_parts(Bucket="sums", Key="full", UploadId=upload_id)
    assert listed["ChecksumType"] == "FULL_OBJECT"
    assert [part[f"Checksum{algorithm}"] for part in listed["Parts"]] == [
        crc_b64(algorithm, body) for body in parts]
    completed = s3.complete_multipart_upload(
        Bucket="sums", Key="full", UploadId=upload_id, MultipartUpload={"Parts": done},
        ChecksumType="FULL_OBJECT", **{f"Checksum{algorithm}": whole})
    assert completed[f"Checksum{algorithm}"] == whole
    assert completed["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket="sums", Key="full", ChecksumMode="ENABLED")
    assert head[f"Checksum{algorithm}"] == whole and head["ChecksumType"] == "FULL_OBJECT"
    got = s3.get_object(Bucket="sums", Key="full", ChecksumMode="ENABLED")
    assert got["ChecksumType"] == "FULL_OBJECT"
    assert got["Body"].read() == b"".join(parts)       # botocore validates the CRC


def test_crc64nvme_is_full_object_by_default_and_parts_may_omit_it(live, s3, parts):
    created = s3.create_multipart_upload(Bucket="sums", Key="nv", ChecksumAlgorithm="CRC64NVME")
    assert created["ChecksumType"] == "FULL_OBJECT"
    plain = live.client("s3", request_checksum_calculation="when_required")
    etags = [plain.upload_part(Bucket="sums", Key="nv", UploadId=created["UploadId"],
                               PartNumber=number, Body=body)["ETag"]
             for number, body in enumerate(parts[1:], start=1)]
    completed = s3.complete_multipart_upload(
        Bucket="sums", Key="nv", UploadId=created["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag}
                                   for number, etag in enumerate(etags, start=1)]})
    assert completed["ChecksumCRC64NVME"] == crc_b64("CRC64NVME", b"".join(parts[1:]))
    attributes = s3.get_object_attributes(Bucket="sums", Key="nv",
                                          ObjectAttributes=["Checksum", "ObjectParts"])
    assert attributes["Checksum"] == {"ChecksumCRC64NVME": completed["ChecksumCRC64NVME"],
                                      "ChecksumType": "FULL_OBJECT"}
    assert attributes["ObjectParts"]["TotalPartsCount"] == 2


def test_wrong_full_object_checksum_is_bad_digest_and_the_upload_survives(s3, parts):
    upload_id, done = upload(s3, "bad", parts[1:], "CRC32", ChecksumType="FULL_OBJECT")
    code, status, _ = failure(s3.complete_multipart_upload, Bucket="sums", Key="bad",
                              UploadId=upload_id, MultipartUpload={"Parts": done},
                              ChecksumCRC32=crc_b64("CRC32", b"other"))
    assert (code, status) == ("BadDigest", 400)
    code, status, _ = failure(s3.complete_multipart_upload, Bucket="sums", Key="bad",
                              UploadId=upload_id, MultipartUpload={"Parts": done},
                              ChecksumCRC32="not base64!")
    assert (code, status) == ("InvalidRequest", 400)
    code, _, _ = failure(s3.complete_multipart_upload, Bucket="sums", Key="bad",
                         UploadId=upload_id, MultipartUpload={"Parts": done},
                         ChecksumCRC32C=crc_b64("CRC32C", b"".join(parts[1:])))
    assert code == "InvalidRequest"
    code, _, _ = failure(s3.complete_multipart_upload, Bucket="sums", Key="bad",
                         UploadId=upload_id, MultipartUpload={"Parts": done},
                         ChecksumType="COMPOSITE")
    assert code == "InvalidRequest"
    assert s3.list_parts(Bucket="sums", Key="bad", UploadId=upload_id)["Parts"]
    s3.complete_multipart_upload(Bucket="sums", Key="bad", UploadId=upload_id,
                                 MultipartUpload={"Parts": done},
                                 MpuObjectSize=len(b"".join(parts[1:])))
    assert s3.get_object(Bucket="sums", Key="bad")["Body"].read() == b"".join(parts[1:])


def test_object_size_claim_must_match(s3, parts):
    upload_id, done = upload(s3, "sized", parts[2:], "CRC32", ChecksumType="FULL_OBJECT")
    code, _, _ = failure(s3.complete_multipart_upload, Bucket="sums", Key="sized",
                         UploadId=upload_id, MultipartUpload={"Parts": done}, MpuObjectSize=1)
    assert code == "InvalidRequest"


def test_part_of_another_algorithm_is_refused(s3):
    upload_id = s3.create_multipart_upload(Bucket="sums", Key="mixed", ChecksumAlgorithm="CRC32",
                                           ChecksumType="FULL_OBJECT")["UploadId"]
    code, _, answer = failure(s3.upload_part, Bucket="sums", Key="mixed", UploadId=upload_id,
                              PartNumber=1, Body=b"x", ChecksumAlgorithm="CRC32C")
    assert code == "InvalidRequest"
    assert "expected checksum Type: crc32" in answer["Error"]["Message"]


def test_upload_part_copy_into_a_full_object_upload(s3, parts):
    s3.put_object(Bucket="sums", Key="source", Body=parts[0])
    upload_id = s3.create_multipart_upload(Bucket="sums", Key="copied",
                                           ChecksumAlgorithm="CRC32C",
                                           ChecksumType="FULL_OBJECT")["UploadId"]
    first = s3.upload_part_copy(Bucket="sums", Key="copied", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": "sums", "Key": "source"})
    second = s3.upload_part(Bucket="sums", Key="copied", UploadId=upload_id, PartNumber=2,
                            Body=parts[2], ChecksumAlgorithm="CRC32C")
    completed = s3.complete_multipart_upload(
        Bucket="sums", Key="copied", UploadId=upload_id, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
            {"PartNumber": 2, "ETag": second["ETag"]}]})
    assert completed["ChecksumCRC32C"] == crc_b64("CRC32C", parts[0] + parts[2])


# --- which algorithm allows which type ----------------------------------------------------

@pytest.mark.parametrize("create, message", [
    ({"ChecksumAlgorithm": "SHA256", "ChecksumType": "FULL_OBJECT"},
     "The FULL_OBJECT checksum type cannot be used with the sha256 checksum algorithm."),
    ({"ChecksumAlgorithm": "SHA1", "ChecksumType": "FULL_OBJECT"},
     "The FULL_OBJECT checksum type cannot be used with the sha1 checksum algorithm."),
    ({"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "COMPOSITE"},
     "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."),
    ({"ChecksumType": "FULL_OBJECT"},
     "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm "
     "header."),
    ({"ChecksumAlgorithm": "CRC32", "ChecksumType": "WHOLE"},
     "Value for x-amz-checksum-type header is invalid."),
])
def test_refused_pairings(s3, create, message):
    code, status, answer = failure(s3.create_multipart_upload, Bucket="sums", Key="k", **create)
    assert (code, status, answer["Error"]["Message"]) == ("InvalidRequest", 400, message)
    assert not s3.list_multipart_uploads(Bucket="sums").get("Uploads")


# --- COMPOSITE ------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256"])
def test_composite_is_the_default_and_needs_every_part_checksum(s3, parts, algorithm):
    upload_id, done = upload(s3, "comp", parts[1:], algorithm)
    assert s3.list_parts(Bucket="sums", Key="comp", UploadId=upload_id)["ChecksumType"] == \
        "COMPOSITE"
    bare = [{"PartNumber": part["PartNumber"], "ETag": part["ETag"]} for part in done]
    code, _, answer = failure(s3.complete_multipart_upload, Bucket="sums", Key="comp",
                              UploadId=upload_id, MultipartUpload={"Parts": bare})
    assert code == "InvalidRequest"
    assert "must include the checksum for each part" in answer["Error"]["Message"]
    wrong = [dict(done[0], **{f"Checksum{algorithm}": done[1][f"Checksum{algorithm}"]}),
             done[1]]
    code, _, _ = failure(s3.complete_multipart_upload, Bucket="sums", Key="comp",
                         UploadId=upload_id, MultipartUpload={"Parts": wrong})
    assert code == "InvalidPart"
    completed = s3.complete_multipart_upload(Bucket="sums", Key="comp", UploadId=upload_id,
                                             MultipartUpload={"Parts": done})
    assert completed["ChecksumType"] == "COMPOSITE"
    assert completed[f"Checksum{algorithm}"].endswith("-2")


def test_composite_part_without_a_checksum_is_refused(live, s3):
    upload_id = s3.create_multipart_upload(Bucket="sums", Key="c", ChecksumAlgorithm="SHA256")[
        "UploadId"]
    plain = live.client("s3", request_checksum_calculation="when_required")
    code, _, answer = failure(plain.upload_part, Bucket="sums", Key="c", UploadId=upload_id,
                              PartNumber=1, Body=b"data")
    assert code == "InvalidRequest"
    assert answer["Error"]["Message"] == ("Checksum Type mismatch occurred, expected checksum "
                                          "Type: sha256, actual checksum Type: null")


# --- the SDK's defaults -------------------------------------------------------------------

def test_upload_file_with_default_transfer_config_then_validated_get(s3, tmp_path):
    data = os.urandom(20 * MiB)
    path = tmp_path / "big"
    path.write_bytes(data)
    s3.upload_file(str(path), "sums", "default")
    got = s3.get_object(Bucket="sums", Key="default", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    head = s3.head_object(Bucket="sums", Key="default", ChecksumMode="ENABLED")
    assert head.get("ChecksumType") in ("COMPOSITE", "FULL_OBJECT")
    target = tmp_path / "back"
    s3.download_file("sums", "default", str(target))
    assert target.read_bytes() == data


# --- the aws CLI ------------------------------------------------------------------------------

def aws_cli(live, *args: str) -> dict:
    """The aws CLI (beside this Python) against *live*; it must succeed: its JSON answer."""
    done = subprocess.run([str(Path(sys.executable).parent / "aws"), *args, "--output", "json"],
                          env=live.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


def test_aws_cli_full_object_upload_and_cp(live, s3, parts, tmp_path):
    body = tmp_path / "part"
    body.write_bytes(parts[2])
    created = aws_cli(live, "s3api", "create-multipart-upload", "--bucket", "sums", "--key",
                      "cli", "--checksum-algorithm", "CRC32C", "--checksum-type", "FULL_OBJECT")
    assert created["ChecksumType"] == "FULL_OBJECT"
    part = aws_cli(live, "s3api", "upload-part", "--bucket", "sums", "--key", "cli",
                   "--upload-id", created["UploadId"], "--part-number", "1", "--body", str(body),
                   "--checksum-algorithm", "CRC32C")
    whole = crc_b64("CRC32C", parts[2])
    done = aws_cli(live, "s3api", "complete-multipart-upload", "--bucket", "sums", "--key",
                   "cli", "--upload-id", created["UploadId"], "--checksum-type", "FULL_OBJECT",
                   "--checksum-crc32-c", whole, "--multipart-upload",
                   json.dumps({"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}))
    assert done["ChecksumCRC32C"] == whole and done["ChecksumType"] == "FULL_OBJECT"
    big = tmp_path / "big"
    big.write_bytes(b"".join(parts) * 2)
    aws_cli(live, "s3", "cp", str(big), "s3://sums/big")
    aws_cli(live, "s3", "cp", "s3://sums/big", str(tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == big.read_bytes()
    assert s3.head_object(Bucket="sums", Key="big", ChecksumMode="ENABLED").get("ChecksumType")


# --- the default checksum -----------------------------------------------------------------

def test_an_upload_without_a_checksum_gets_crc64nvme(live, s3):
    """As S3 since December 2024: an object uploaded without any checksum is given a
    full-object CRC64NVME, answered on the PUT and kept for HEAD, GET and
    GetObjectAttributes."""
    body = os.urandom(4096 + 7)
    plain = live.client("s3", request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
    put = plain.put_object(Bucket="sums", Key="plain", Body=body)
    expected = crc_b64("CRC64NVME", body)
    assert (put["ChecksumCRC64NVME"], put["ChecksumType"]) == (expected, "FULL_OBJECT")
    head = s3.head_object(Bucket="sums", Key="plain", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == expected
    got = s3.get_object(Bucket="sums", Key="plain", ChecksumMode="ENABLED")
    assert got["Body"].read() == body and got["ChecksumCRC64NVME"] == expected
    attributes = s3.get_object_attributes(Bucket="sums", Key="plain",
                                          ObjectAttributes=["Checksum"])
    assert attributes["Checksum"] == {"ChecksumCRC64NVME": expected,
                                      "ChecksumType": "FULL_OBJECT"}
    # a checksum the client does send is the one kept
    sent = plain.put_object(Bucket="sums", Key="crc32", Body=body, ChecksumAlgorithm="CRC32")
    assert sent["ChecksumCRC32"] == crc_b64("CRC32", body) and "ChecksumCRC64NVME" not in sent
