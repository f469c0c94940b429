"""Walrus where it used to differ from AWS S3, checked from outside over real HTTP: DeleteBucket
of a bucket holding only unfinished multipart uploads, a retried CompleteMultipartUpload,
Signature V2 on bucket-level requests, POST Object fields sent as file parts,
``encoding-type=url``, presigned ``X-Amz-Expires`` out of range, non-ASCII ``x-amz-meta-*``
values, versioning Suspended on a never-versioned bucket, the front end's own refusals
(``Expect``, ``Content-Length``) as S3 XML, keys that are not UTF-8, and ``100-continue``
answered with the final error when the request is refused anyway."""
from __future__ import annotations

import base64
import datetime as dt
import socket
import xml.etree.ElementTree as ET

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from awsutil import failure, xml_error_code
import storeutil
from eucalite.httpserver import Limits, embedded
from test_s3_hardening import send

MiB = 1024 * 1024


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="par")
    return client


def part_files(live) -> list:
    """The segments the store holds (files, or the backend's objects)."""
    return storeutil.segments(live)


# --- DeleteBucket with only unfinished uploads -----------------------------------------------

def test_delete_bucket_with_only_unfinished_uploads_deletes_them(live, s3):
    """AWS deletes such a bucket (and its uploads); it was BucketNotEmpty here."""
    upload_id = s3.create_multipart_upload(Bucket="par", Key="half")["UploadId"]
    s3.upload_part(Bucket="par", Key="half", UploadId=upload_id, PartNumber=1, Body=b"x" * 100)
    assert part_files(live)
    s3.delete_bucket(Bucket="par")
    assert "par" not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]
    assert not part_files(live)
    s3.create_bucket(Bucket="par")
    assert not s3.list_multipart_uploads(Bucket="par").get("Uploads")


def test_delete_bucket_with_an_object_is_still_not_empty(s3):
    s3.put_object(Bucket="par", Key="k", Body=b"1")
    assert failure(s3.delete_bucket, Bucket="par")[:2] == ("BucketNotEmpty", 409)


# --- a retried CompleteMultipartUpload ----------------------------------------------------------

def test_retried_complete_answers_the_same_result(s3):
    """A client whose first CompleteMultipartUpload answer was lost retries it: AWS answers
    200 with the same object; it was NoSuchUpload here."""
    upload_id = s3.create_multipart_upload(Bucket="par", Key="done")["UploadId"]
    etag = s3.upload_part(Bucket="par", Key="done", UploadId=upload_id, PartNumber=1,
                          Body=b"data")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    first = s3.complete_multipart_upload(Bucket="par", Key="done", UploadId=upload_id,
                                         MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket="par", Key="done", UploadId=upload_id,
                                         MultipartUpload=parts)
    assert again["ETag"] == first["ETag"] and again["Key"] == "done"
    assert s3.get_object(Bucket="par", Key="done")["Body"].read() == b"data"
    # Not once the key holds another object, nor for parts that were not the ones completed.
    code, _, _ = failure(s3.complete_multipart_upload, Bucket="par", Key="done",
                         UploadId=upload_id, MultipartUpload={"Parts": [
                             {"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]})
    assert code == "NoSuchUpload"
    s3.put_object(Bucket="par", Key="done", Body=b"other")
    code, _, _ = failure(s3.complete_multipart_upload, Bucket="par", Key="done",
                         UploadId=upload_id, MultipartUpload=parts)
    assert code == "NoSuchUpload"


# --- Signature V2 on bucket-level requests -----------------------------------------------------

def test_sigv2_bucket_level_requests(live, s3):
    v2 = live.client("s3", signature_version="s3")
    v2.put_object(Bucket="par", Key="a b", Body=b"1")
    assert [item["Key"] for item in v2.list_objects(Bucket="par")["Contents"]] == ["a b"]
    assert [item["Key"] for item in v2.list_objects_v2(Bucket="par")["Contents"]] == ["a b"]
    v2.put_bucket_versioning(Bucket="par", VersioningConfiguration={"Status": "Enabled"})
    assert v2.get_bucket_versioning(Bucket="par")["Status"] == "Enabled"
    assert v2.list_object_versions(Bucket="par")["Versions"]
    assert v2.get_bucket_acl(Bucket="par")["Grants"]
    v2.head_bucket(Bucket="par")
    deleted = v2.delete_objects(Bucket="par", Delete={"Objects": [{"Key": "a b"}]})
    assert [item["Key"] for item in deleted["Deleted"]] == ["a b"]
    assert v2.list_multipart_uploads(Bucket="par").get("Uploads") is None
    v2.create_bucket(Bucket="par-two")
    v2.delete_bucket(Bucket="par-two")


@pytest.mark.parametrize("path, resource", [
    ("/par", "/par"), ("/par", "/par/"), ("/par/", "/par/"), ("/par?acl", "/par/?acl"),
    ("/par?versioning", "/par?versioning"), ("/par?uploads&prefix=x", "/par/?uploads"),
])
def test_sigv2_resource_with_or_without_the_trailing_slash(live, s3, path, resource):
    """s3cmd, boto2 and botocore sign a bucket as ``/bucket/`` or ``/bucket`` whatever the
    path: either is accepted, with the signed sub-resources."""
    date = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    string_to_sign = f"GET\n\n\n{date}\n{resource}"
    signature = botocore.auth.HmacV1Auth(Credentials(live.key_id, live.secret)).sign_string(
        string_to_sign)
    answer = requests.get(live.base_url + path, headers={
        "Date": date, "Authorization": f"AWS {live.key_id}:{signature}"})
    assert answer.status_code == 200, answer.text


# --- POST Object fields as file parts ------------------------------------------------------------

def test_post_object_fields_sent_as_file_parts(live, s3):
    """Some form libraries send every field as a part with a filename; S3 reads them as
    fields (only ``file`` is the object)."""
    post = s3.generate_presigned_post("par", "posted/${filename}")
    files = [(name, ("blob", value.encode())) for name, value in post["fields"].items()]
    files.append(("file", ("photo.txt", b"form upload")))
    answer = requests.post(post["url"], files=files)
    assert answer.status_code == 204, answer.text
    assert s3.get_object(Bucket="par", Key="posted/photo.txt")["Body"].read() == b"form upload"


# --- encoding-type=url ---------------------------------------------------------------------------

def _listing(live, query: dict) -> ET.Element:
    answer = send(live, "GET", "/par", query=query)
    assert answer.status_code == 200, answer.text
    root = ET.fromstring(answer.content)
    for element in root.iter():
        element.tag = element.tag.split("}", 1)[-1]
    return root


def test_encoding_type_url_encodes_space_as_plus_in_each_element(live, s3):
    for key in ("a b/c d", "a b/e+f", "z z"):
        s3.put_object(Bucket="par", Key=key, Body=b"1")
    v1 = _listing(live, {"encoding-type": "url", "prefix": "a b", "delimiter": " ",
                         "marker": "a a", "max-keys": "1"})
    assert v1.findtext("Prefix") == "a+b" and v1.findtext("Marker") == "a+a"
    assert v1.findtext("Delimiter") == "+"
    v1 = _listing(live, {"encoding-type": "url", "prefix": "a b/", "max-keys": "1"})
    assert [item.findtext("Key") for item in v1.iter("Contents")] == ["a+b/c+d"]
    assert v1.findtext("NextMarker") in (None, "a+b/c+d")
    v2 = _listing(live, {"list-type": "2", "encoding-type": "url", "prefix": "a b/",
                         "start-after": "a b/a a", "delimiter": "/"})
    assert v2.findtext("StartAfter") == "a+b/a+a" and v2.findtext("Prefix") == "a+b/"
    assert [item.findtext("Key") for item in v2.iter("Contents")] == ["a+b/c+d", "a+b/e%2Bf"]
    versions = _listing(live, {"versions": "", "encoding-type": "url", "prefix": "z z",
                               "key-marker": "y y"})
    assert versions.findtext("KeyMarker") == "y+y"
    assert [item.findtext("Key") for item in versions.iter("Version")] == ["z+z"]
    s3.create_multipart_upload(Bucket="par", Key="u p")
    uploads = _listing(live, {"uploads": "", "encoding-type": "url", "prefix": "u "})
    assert uploads.findtext("Prefix") == "u+"
    assert [item.findtext("Key") for item in uploads.iter("Upload")] == ["u+p"]


# --- presigned X-Amz-Expires ---------------------------------------------------------------------

@pytest.mark.parametrize("expires", [604801, -1])
def test_presigned_expires_out_of_range(live, s3, expires):
    request = AWSRequest(method="GET", url=live.base_url + "/par/k")
    botocore.auth.S3SigV4QueryAuth(Credentials(live.key_id, live.secret), "s3", live.region,
                                   expires=expires).add_auth(request)
    answer = requests.get(request.prepare().url)
    assert answer.status_code == 400
    assert xml_error_code(answer) == "AuthorizationQueryParametersError"


# --- non-ASCII metadata -----------------------------------------------------------------------

def test_non_ascii_metadata_is_returned_rfc2047_encoded(live, s3):
    """S3 keeps a non-ASCII x-amz-meta-* value and returns it RFC 2047-encoded (UTF-8,
    base64), mail-safe; a value the client encoded that way itself comes back the same."""
    answer = send(live, "PUT", "/par/meta", body=b"1",
                  headers={"x-amz-meta-city": "Zürich".encode().decode("latin-1")})
    assert answer.status_code == 200, answer.text
    got = s3.head_object(Bucket="par", Key="meta")
    encoded = "=?UTF-8?B?" + base64.b64encode("Zürich".encode()).decode() + "?="
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-meta-city"] == encoded
    s3.put_object(Bucket="par", Key="pre", Body=b"1", Metadata={"city": encoded})
    assert s3.head_object(Bucket="par", Key="pre")["Metadata"]["city"] == encoded
    s3.put_object(Bucket="par", Key="ascii", Body=b"1", Metadata={"city": "Bern"})
    assert s3.head_object(Bucket="par", Key="ascii")["Metadata"]["city"] == "Bern"


# --- versioning Suspended on a never-versioned bucket -----------------------------------------

def test_suspending_a_never_versioned_bucket_shows_suspended(s3):
    assert "Status" not in s3.get_bucket_versioning(Bucket="par")
    s3.put_bucket_versioning(Bucket="par", VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket="par")["Status"] == "Suspended"
    put = s3.put_object(Bucket="par", Key="k", Body=b"1")
    assert put["VersionId"] == "null"
    deleted = s3.delete_object(Bucket="par", Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"


# --- the front end's refusals ------------------------------------------------------------------

@pytest.fixture
def front(live):
    """The app behind eucalite's own HTTP front end (what `eucalite serve` runs), not the
    test server's: its port."""
    server = embedded.Embedded(live.app, embedded.listen("127.0.0.1", 0), Limits(),
                               name="parity-front")
    yield server.port
    server.shutdown()


def raw(port: int, head: bytes, body: bytes = b"", wait_for: bytes = b"</Error>") -> bytes:
    """Send *head* (+ *body*) to the front end on a fresh connection; what came back until
    *wait_for* or the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        answer = b""
        while wait_for not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer


def _status_and_code(answer: bytes) -> tuple[int, str | None]:
    status = int(answer.split(b" ", 2)[1])
    return status, xml_error_code(answer.partition(b"\r\n\r\n")[2])


def test_unsupported_expect_is_an_s3_xml_error(front, s3):
    answer = raw(front, b"PUT /par/k HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n"
                       b"Content-Length: 1\r\n\r\n", b"1")
    assert _status_and_code(answer) == (417, "ExpectationFailed")
    assert b"Content-Type: application/xml" in answer


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1, 2"])
def test_bad_content_length_is_an_s3_xml_error(front, s3, length):
    answer = raw(front, b"PUT /par/k HTTP/1.1\r\nHost: x\r\nContent-Length: " + length +
                 b"\r\n\r\n1")
    status, code = _status_and_code(answer)
    assert status == 400 and code is not None
    assert b"Content-Type: application/xml" in answer


# --- keys that are not UTF-8 --------------------------------------------------------------------

def test_key_that_is_not_utf8_is_invalid_uri(live, s3):
    """It was read as U+FFFD (a PUT stored a key of that character)."""
    for path in ("/par/%FF%FE", "/par/a%C3", "/par/a%C3/b"):
        for method in ("GET", "PUT"):
            answer = requests.request(method, live.base_url + path, data=b"1")
            assert (answer.status_code, xml_error_code(answer)) == (400, "InvalidURI"), \
                answer.text
    assert not s3.list_objects_v2(Bucket="par").get("Contents")


# --- 100-continue -------------------------------------------------------------------------------

@pytest.mark.parametrize("path, unknown_key, status, code", [
    (b"/par/k", True, 403, "InvalidAccessKeyId"),
    (b"/no-such-bucket-here/k", False, 404, "NoSuchBucket"),
], ids=["unknown-key", "no-such-bucket"])
def test_expect_100_continue_answered_with_the_final_error(front, s3, path, unknown_key,
                                                           status, code):
    """The client waits before sending its body: a request refused anyway gets the final
    answer, not 100 Continue."""
    headers = b""
    if unknown_key:       # dated now, so only the key is wrong (built here: test ids stay fixed)
        headers = (b"Authorization: AWS AKIANOTAREALKEY00000:c2ln\r\nDate: "
                   + dt.datetime.now(dt.timezone.utc).strftime(
                       "%a, %d %b %Y %H:%M:%S GMT").encode() + b"\r\n")
    head = (b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 1048576\r\n" + headers + b"\r\n")
    answer = raw(front, head)
    assert not answer.startswith(b"HTTP/1.1 100"), answer[:200]
    assert _status_and_code(answer)[0] == status
    if code == "NoSuchBucket":                        # anonymous: either refusal is S3's
        assert _status_and_code(answer)[1] in ("NoSuchBucket", "AccessDenied")
    else:
        assert _status_and_code(answer)[1] == code


def test_expect_100_continue_still_uploads(front, s3):
    """A request that will be served gets 100 Continue, then its body is stored."""
    request = AWSRequest(method="PUT", url=f"http://127.0.0.1:{front}/par/cont",
                         data=b"x" * 1000,
                         headers={"Expect": "100-continue",
                                  "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    credentials = s3._request_signer._credentials
    botocore.auth.S3SigV4Auth(credentials, "s3", s3.meta.region_name).add_auth(request)
    head = f"PUT /par/cont HTTP/1.1\r\nHost: 127.0.0.1:{front}\r\n"
    for name, value in request.prepare().headers.items():
        if name.lower() != "host":
            head += f"{name}: {value}\r\n"
    with socket.create_connection(("127.0.0.1", front), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 100"), first
        sock.sendall(b"x" * 1000)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200") or b"HTTP/1.1 200" in first + answer
    assert s3.get_object(Bucket="par", Key="cont")["Body"].read() == b"x" * 1000
