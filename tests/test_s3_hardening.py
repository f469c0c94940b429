"""Walrus (S3) on hostile input: every malformed request is S3's own 4xx error in its XML
envelope (never a 500), racing writers never leave an object pointing at a freed file,
and every XML document the store writes parses, whatever the keys and values hold."""
from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode
from xml.etree import ElementTree as ET

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from s3util import acl_bucket

BUCKET = "hardened"


@pytest.fixture
def s3(live):
    client = live.client("s3")
    acl_bucket(client, BUCKET)          # its tests set public ACLs and policies
    return client


class _Signer(botocore.auth.S3SigV4Auth):
    """botocore's S3 signer, keeping an x-amz-content-sha256 the caller chose (it would
    put the body's hash there)."""

    def _modify_request_before_signing(self, request):
        declared = request.headers.get("x-amz-content-sha256")
        super()._modify_request_before_signing(request)
        del request.headers["x-amz-content-sha256"]
        request.headers["x-amz-content-sha256"] = declared


def send(live, method: str, path: str, *, body: bytes = b"", headers: dict | None = None,
         query: dict | None = None, payload_hash: str | None = None,
         http_chunked: bool = False) -> requests.Response:
    """A raw request signed with Signature V4 by botocore, as a client would send it;
    *path* is quoted here (so a key may hold any character). *http_chunked* sends the body
    with ``Transfer-Encoding: chunked`` and no ``Content-Length``."""
    url = live.base_url + quote(path, safe="/")
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    headers = dict(headers or {})
    headers.setdefault("x-amz-content-sha256", payload_hash or hashlib.sha256(body).hexdigest())
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    _Signer(Credentials(live.key_id, live.secret), "s3", live.region).add_auth(request)
    prepared = request.prepare()
    sent = dict(prepared.headers)
    if http_chunked:
        sent.pop("Content-Length", None)
        return requests.request(method, prepared.url, headers=sent, data=iter([body]),
                                timeout=60)
    return requests.request(method, prepared.url, headers=sent, data=body, timeout=60)


def error_code(response: requests.Response) -> str:
    """The S3 error code of an error response, which must be a well-formed <Error>."""
    root = ET.fromstring(response.content)
    assert root.tag == "Error"
    return root.findtext("Code")


def assert_error(response: requests.Response, code: str, status: int = 400) -> None:
    assert (response.status_code, error_code(response)) == (status, code), response.text


# --- integers: ASCII digits only, bounded ------------------------------------------------

NOT_ASCII_DIGITS = ["²", "٣", "1_0", "9" * 5000]
#: Headers are Latin-1 on the wire (so no "٣"), which has its own digits that are not digits.
HEADER_NOT_DIGITS = ["²", "¹0", "1_0", "9" * 5000]


@pytest.fixture
def ten_bytes(s3):
    s3.put_object(Bucket=BUCKET, Key="ten", Body=b"0123456789")
    return s3


@pytest.mark.parametrize("value", HEADER_NOT_DIGITS)
def test_range_with_unusual_digits_serves_the_whole_object(live, ten_bytes, value):
    # S3 ignores a Range header it cannot parse, and sends the whole object.
    response = send(live, "GET", f"/{BUCKET}/ten", headers={"Range": f"bytes={value}-"})
    assert (response.status_code, response.content) == (200, b"0123456789")
    response = send(live, "GET", f"/{BUCKET}/ten", headers={"Range": f"bytes=-{value}"})
    assert (response.status_code, response.content) == (200, b"0123456789")


@pytest.mark.parametrize("value", HEADER_NOT_DIGITS)
def test_copy_source_range_with_unusual_digits_is_invalid_argument(live, ten_bytes, value):
    upload = ten_bytes.create_multipart_upload(Bucket=BUCKET, Key="copy")["UploadId"]
    response = send(live, "PUT", f"/{BUCKET}/copy",
                    query={"partNumber": "1", "uploadId": upload},
                    headers={"x-amz-copy-source": f"{BUCKET}/ten",
                             "x-amz-copy-source-range": f"bytes=0-{value}"})
    assert_error(response, "InvalidArgument")


@pytest.mark.parametrize("value", HEADER_NOT_DIGITS)
def test_decoded_content_length_with_unusual_digits_is_refused(live, s3, value):
    body = b"5\r\nhello\r\n0\r\n\r\n"
    response = send(live, "PUT", f"/{BUCKET}/chunked", body=body,
                    payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                    headers={"Content-Encoding": "aws-chunked",
                             "x-amz-decoded-content-length": value})
    assert response.status_code == 400 and error_code(response) in ("InvalidRequest",
                                                                     "InvalidArgument")


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS + ["-1"])
def test_cors_max_age_with_unusual_digits_is_malformed_xml(live, s3, value):
    body = ("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
            "<AllowedMethod>GET</AllowedMethod>"
            f"<MaxAgeSeconds>{value}</MaxAgeSeconds></CORSRule></CORSConfiguration>")
    response = send(live, "PUT", f"/{BUCKET}", query={"cors": ""}, body=body.encode())
    assert_error(response, "MalformedXML")


@pytest.mark.parametrize("name", ["max-keys", "max-uploads"])
@pytest.mark.parametrize("value", NOT_ASCII_DIGITS + ["99999999999"])
def test_bucket_listing_limits_with_unusual_digits_are_invalid_argument(live, s3, name, value):
    query = {name: value}
    if name == "max-uploads":
        query["uploads"] = ""
    assert_error(send(live, "GET", f"/{BUCKET}", query=query), "InvalidArgument")


@pytest.mark.parametrize("name", ["max-parts", "part-number-marker"])
@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_list_parts_limits_with_unusual_digits_are_invalid_argument(live, s3, name, value):
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="parts")["UploadId"]
    response = send(live, "GET", f"/{BUCKET}/parts", query={"uploadId": upload, name: value})
    assert_error(response, "InvalidArgument")


@pytest.mark.parametrize("value", NOT_ASCII_DIGITS)
def test_part_numbers_with_unusual_digits_are_refused(live, ten_bytes, value):
    upload = ten_bytes.create_multipart_upload(Bucket=BUCKET, Key="parts")["UploadId"]
    put = send(live, "PUT", f"/{BUCKET}/parts", body=b"x",
               query={"uploadId": upload, "partNumber": value})
    assert_error(put, "InvalidArgument")
    get = send(live, "GET", f"/{BUCKET}/ten", query={"partNumber": value})
    assert get.status_code in (400, 416) and error_code(get) in ("InvalidArgument",
                                                                 "InvalidPartNumber")
    complete = ("<CompleteMultipartUpload><Part><PartNumber>" + value +
                "</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>")
    done = send(live, "POST", f"/{BUCKET}/parts", body=complete.encode(),
                query={"uploadId": upload})
    assert_error(done, "MalformedXML")


# --- XML bodies: declared encodings, DTDs, entities --------------------------------------

XML_BODIED = [     # ACLs have their own "not well-formed" code, MalformedACLError
    ("PUT", "", {"acl": ""}, "AccessControlPolicy"),
    ("PUT", "", {"cors": ""}, "CORSConfiguration"),
    ("PUT", "", {"lifecycle": ""}, "LifecycleConfiguration"),
    ("PUT", "", {"tagging": ""}, "Tagging"),
    ("PUT", "", {"versioning": ""}, "VersioningConfiguration"),
    ("POST", "", {"delete": ""}, "Delete"),
    ("PUT", "/obj", {"tagging": ""}, "Tagging"),
    ("PUT", "/obj", {"acl": ""}, "AccessControlPolicy"),
]


@pytest.mark.parametrize("declaration", [
    '<?xml version="1.0" encoding="foo"?>',
    '<?xml version="1.0" encoding="utf-32"?>',
    '<?xml version="1.0" encoding="rot13"?>',
])
@pytest.mark.parametrize("method,suffix,query,root", XML_BODIED)
def test_xml_body_with_unknown_encoding_is_malformed_xml(live, s3, declaration, method,
                                                         suffix, query, root):
    s3.put_object(Bucket=BUCKET, Key="obj", Body=b"x")
    body = f"{declaration}<{root}></{root}>".encode()
    response = send(live, method, f"/{BUCKET}{suffix}", query=query, body=body,
                    headers={"Content-MD5": _md5(body)})
    assert_error(response, "MalformedACLError" if "acl" in query else "MalformedXML")


def test_complete_upload_with_unknown_encoding_is_malformed_xml(live, s3):
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="enc")["UploadId"]
    body = b'<?xml version="1.0" encoding="foo"?><CompleteMultipartUpload/>'
    response = send(live, "POST", f"/{BUCKET}/enc", query={"uploadId": upload}, body=body)
    assert_error(response, "MalformedXML")


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">'
    b']><Tagging><TagSet><Tag><Key>k</Key><Value>&b;</Value></Tag></TagSet></Tagging>',
    ('<?xml version="1.0" encoding="utf-16"?><!DOCTYPE t [<!ENTITY a "x">]><Tagging><TagSet>'
     '<Tag><Key>k</Key><Value>&a;</Value></Tag></TagSet></Tagging>').encode("utf-16"),
    b'<Tagging><TagSet><Tag><Key>k</Key><Value>&undefined;</Value></Tag></TagSet></Tagging>',
])
def test_dtds_and_entities_are_refused(live, s3, body):
    response = send(live, "PUT", f"/{BUCKET}", query={"tagging": ""}, body=body)
    assert_error(response, "MalformedXML")


def test_xml_body_in_utf16_is_still_read(live, s3):
    body = ('<?xml version="1.0" encoding="utf-16"?><Tagging><TagSet><Tag><Key>k</Key>'
            '<Value>v</Value></Tag></TagSet></Tagging>').encode("utf-16")
    response = send(live, "PUT", f"/{BUCKET}", query={"tagging": ""}, body=body)
    assert response.status_code in (200, 204), response.text
    assert s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"] == [{"Key": "k", "Value": "v"}]


def _md5(body: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(body).digest()).decode()


# --- racing writers: no object may point at a freed part ----------------------------------

MIB = 1024 * 1024


class Pause:
    """Stops the first call of a wrapped function until :meth:`release`, so a test can run
    another request in the gap at exactly that point."""

    def __init__(self, function, when=lambda *args, **kwargs: True):
        import threading

        self._function, self._when = function, when
        self.reached, self._go = threading.Event(), threading.Event()
        self._used = False

    def __call__(self, *args, **kwargs):
        if not self._used and self._when(*args, **kwargs):
            self._used = True
            self.reached.set()
            assert self._go.wait(30)
        return self._function(*args, **kwargs)

    def release(self):
        self._go.set()

    def __get__(self, instance, owner=None):
        """Set on a class, it wraps a method: bind it to the instance as a function would."""
        import functools

        return self if instance is None else functools.partial(self, instance)


def _in_thread(function):
    """Run *function* in a thread; returns a callable that joins it and gives its result."""
    import threading

    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", function()))
    thread.start()

    def join():
        thread.join(60)
        return result["value"]
    return join


@pytest.mark.parametrize("same_bytes", [True, False])
def test_upload_part_racing_complete_never_loses_the_part(live, s3, monkeypatch, same_bytes):
    from eucalite.s3 import objects

    first, second = b"a" * (5 * MIB), b"second part"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="raced")["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key="raced", UploadId=upload, PartNumber=number,
                            Body=body)["ETag"] for number, body in ((1, first), (2, second))]
    # Completion stops after it chose the parts and before it records the object...
    pause = Pause(objects.record, when=lambda *a, **k: k.get("in_transaction") is not None)
    monkeypatch.setattr(objects, "record", pause)
    parts = [{"PartNumber": n, "ETag": etag} for n, etag in ((1, etags[0]), (2, etags[1]))]
    complete = _in_thread(lambda: send(
        live, "POST", f"/{BUCKET}/raced", query={"uploadId": upload},
        body=_complete_xml(parts)))
    assert pause.reached.wait(30)
    # ...while part 2 is uploaded again (a client retry, or other bytes).
    again = second if same_bytes else b"other bytes"
    s3.upload_part(Bucket=BUCKET, Key="raced", UploadId=upload, PartNumber=2, Body=again)
    pause.release()
    response = complete()
    if response.status_code == 200:
        body = s3.get_object(Bucket=BUCKET, Key="raced")["Body"].read()
        assert body == first + second
    else:
        # The part the client named by its ETag is gone: S3's InvalidPart, upload intact.
        assert not same_bytes
        assert_error(response, "InvalidPart")
        listed = s3.list_parts(Bucket=BUCKET, Key="raced", UploadId=upload)["Parts"]
        assert [part["Size"] for part in listed] == [len(first), len(again)]


def _complete_xml(parts) -> bytes:
    items = "".join(f"<Part><PartNumber>{part['PartNumber']}</PartNumber>"
                    f"<ETag>{part['ETag']}</ETag></Part>" for part in parts)
    return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()


# --- PostObject policies -----------------------------------------------------------------

@pytest.mark.parametrize("expiration", ["2026-13-45T00:00:00Z", "2030-02-30T00:00:00Z",
                                        "2030-01-01T00:00:00Z\n", "2030-01-01T25:00:00Z",
                                        "٢٠٣٠-01-01T00:00:00Z", "99999-01-01T00:00:00Z"])
def test_post_policy_with_impossible_expiration_is_invalid_policy_document(live, s3,
                                                                           expiration):
    import base64
    import json

    policy = base64.b64encode(json.dumps({"expiration": expiration, "conditions": [
        {"bucket": BUCKET}, ["starts-with", "$key", ""]]}).encode()).decode()
    response = requests.post(f"{live.base_url}/{BUCKET}", data={"key": "k", "policy": policy},
                             files={"file": ("f.txt", b"data")})
    assert_error(response, "InvalidPolicyDocument")


@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999",
                                   "1" * 400])
def test_bucket_policy_with_date_out_of_range_is_malformed_policy(live, s3, value):
    import json

    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": value}}}]}
    response = send(live, "PUT", f"/{BUCKET}", query={"policy": ""},
                    body=json.dumps(policy).encode())
    assert_error(response, "MalformedPolicy")


# --- lifecycle: bounds, and one bucket's bad rule never stops the sweep -------------------

def _lifecycle(s3, **action):
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [
        {"ID": "far", "Status": "Enabled", "Filter": {"Prefix": ""}, **action}]})


@pytest.mark.parametrize("action", [
    {"Expiration": {"Days": 3_000_000}},
    {"Expiration": {"Days": 2 ** 31 - 1}},
    {"NoncurrentVersionExpiration": {"NoncurrentDays": 2 ** 31 - 1}},
    {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2 ** 31 - 1}},
])
def test_far_lifecycle_rules_never_break_reads_writes_or_the_sweep(live, s3, action):
    import datetime as dt

    from eucalite.s3 import upkeep

    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    _lifecycle(s3, **action)
    s3.put_object(Bucket=BUCKET, Key="doc", Body=b"v1")
    s3.put_object(Bucket=BUCKET, Key="doc", Body=b"v2")
    s3.create_multipart_upload(Bucket=BUCKET, Key="doc")
    assert s3.get_object(Bucket=BUCKET, Key="doc")["Body"].read() == b"v2"
    s3.head_object(Bucket=BUCKET, Key="doc")
    services = live.app.extensions["eucalite"]
    with live.app.app_context():
        report = upkeep.sweep(services.s3.store,
                              now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3650))
    assert not any(vars(report).values())


@pytest.mark.parametrize("field,value", [("Days", 2 ** 31), ("Days", 10 ** 30)])
def test_lifecycle_day_counts_beyond_an_integer_are_malformed_xml(live, s3, field, value):
    body = (f"<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>"
            f"<Status>Enabled</Status><Expiration><{field}>{value}</{field}></Expiration>"
            f"</Rule></LifecycleConfiguration>").encode()
    response = send(live, "PUT", f"/{BUCKET}", query={"lifecycle": ""}, body=body,
                    headers={"Content-MD5": _md5(body)})
    assert_error(response, "MalformedXML")


def test_sweep_goes_on_past_a_bucket_whose_rules_fail(live, s3, caplog):
    import datetime as dt

    from eucalite.db import db
    from eucalite.s3 import upkeep
    from eucalite.s3.models import Bucket

    broken, healthy = live.client("s3"), s3
    broken.create_bucket(Bucket="aaa-broken")
    broken.put_object(Bucket="aaa-broken", Key="x", Body=b"x")
    healthy.put_object(Bucket=BUCKET, Key="old", Body=b"old")
    _lifecycle(healthy, Expiration={"Days": 1})
    with live.app.app_context():
        # A rule no validation would let in now (written by an older release, or by hand).
        row = db.session.execute(db.select(Bucket).filter_by(name="aaa-broken")).scalar_one()
        row.lifecycle_json = '[{"ID": "bad", "Status": "Enabled", "Filter": {}, ' \
                             '"Expiration": {"Days": "soon"}}]'
        db.session.commit()
        store = live.app.extensions["eucalite"].s3.store
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
        assert upkeep.sweep(store, now=later).expired == 1
    assert "aaa-broken" in caplog.text
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


# --- header injection: nothing echoed into a header may end it ----------------------------

OVERRIDES = ["response-content-type", "response-content-language", "response-expires",
             "response-cache-control", "response-content-disposition",
             "response-content-encoding"]


@pytest.mark.parametrize("name", OVERRIDES)
@pytest.mark.parametrize("value", ["text/html\r\nSet-Cookie: owned=1", "a\nb", "a\rb",
                                   "a\x00b", "文件"])
def test_response_overrides_that_cannot_be_headers_are_invalid_argument(live, ten_bytes,
                                                                        name, value):
    response = send(live, "GET", f"/{BUCKET}/ten", query={name: value})
    assert_error(response, "InvalidArgument")
    assert "owned" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("field,value", [
    ("Content-Type", "text/plain\r\nSet-Cookie: owned=1"),
    ("Content-Disposition", "attachment\r\nX-Injected: 1"),
    ("Cache-Control", "no-cache\x01"),
    ("x-amz-meta-note", "line one\nline two"),
    ("x-amz-meta-note", "文件"),
    ("x-amz-meta-bad name", "v"),
])
def test_post_object_fields_that_cannot_be_headers_are_refused(live, s3, field, value):
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read-write")
    response = requests.post(f"{live.base_url}/{BUCKET}", files=[
        ("key", (None, "posted")), (field, (None, value.encode())),
        ("file", ("f.txt", b"data"))])
    assert_error(response, "InvalidArgument")
    # Nothing was stored that a later GET would have to echo.
    missing = send(live, "GET", f"/{BUCKET}/posted")
    assert_error(missing, "NoSuchKey", 404)


@pytest.mark.parametrize("status", ["201", "204"])
def test_post_object_key_with_newline_is_stored_and_its_location_encoded(live, s3, status):
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read-write")
    response = requests.post(f"{live.base_url}/{BUCKET}", files=[
        ("key", (None, "line\r\nSet-Cookie: owned=1")),
        ("success_action_status", (None, status)), ("file", ("f.txt", b"data"))])
    assert response.status_code == int(status), response.text
    assert "owned" not in response.headers.get("Set-Cookie", "")
    assert response.headers["Location"].endswith("/line%0D%0ASet-Cookie%3A%20owned%3D1")
    body = s3.get_object(Bucket=BUCKET, Key="line\r\nSet-Cookie: owned=1")["Body"].read()
    assert body == b"data"


def test_post_object_redirect_that_cannot_be_a_header_is_refused(live, s3):
    s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read-write")
    response = requests.post(f"{live.base_url}/{BUCKET}", allow_redirects=False, files=[
        ("key", (None, "redirected")),
        ("success_action_redirect", (None, "https://example.lab/\r\nSet-Cookie: owned=1")),
        ("file", ("f.txt", b"data"))])
    assert_error(response, "InvalidArgument")
    assert_error(send(live, "GET", f"/{BUCKET}/redirected"), "NoSuchKey", 404)


# --- every XML document S3 writes parses, whatever the keys hold ------------------------

AWKWARD_KEYS = ["ctl\x01key", "nul\x00key", "nonchar\ufffekey", "cr\rkey", "esc\x1b[0m"]


@pytest.fixture
def awkward(s3):
    for key in AWKWARD_KEYS:
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode("utf-8", "surrogatepass"))
        s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    return s3


def test_boto3_lists_awkward_keys_exactly(awkward):
    expected = sorted(AWKWARD_KEYS)
    assert [item["Key"] for item in awkward.list_objects_v2(Bucket=BUCKET)["Contents"]] \
        == expected
    assert [item["Key"] for item in awkward.list_objects(Bucket=BUCKET)["Contents"]] \
        == expected
    assert [item["Key"] for item in awkward.list_object_versions(Bucket=BUCKET)["Versions"]] \
        == expected
    # boto3 asks ListMultipartUploads for url-encoded keys only when told to, and leaves
    # decoding them to its caller.
    from urllib.parse import unquote_plus

    uploads = awkward.list_multipart_uploads(Bucket=BUCKET, EncodingType="url")["Uploads"]
    assert sorted(unquote_plus(item["Key"]) for item in uploads) == expected
    for upload in uploads:
        upload["Key"] = unquote_plus(upload["Key"])
    for upload in uploads:          # ListParts, InitiateMultipartUpload: no encoding-type
        awkward.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for key in AWKWARD_KEYS:
        assert awkward.get_object(Bucket=BUCKET, Key=key)["Body"].read() == key.encode()


@pytest.mark.parametrize("query", [{"list-type": "2"}, {}, {"versions": ""}, {"uploads": ""}])
def test_listings_without_encoding_type_still_parse(live, awkward, query):
    response = send(live, "GET", f"/{BUCKET}", query=query)
    assert response.status_code == 200
    keys = [element.text for element in ET.fromstring(response.content).iter()
            if element.tag.endswith("}Key")]
    assert len(keys) == len(AWKWARD_KEYS)
    # What XML can carry comes back as it is, a CR included; what it cannot is replaced.
    assert "cr\rkey" in keys and "esc\ufffd[0m" in keys


@pytest.mark.parametrize("key", ["missing\x01", "missing\x00", "missing\ufffe"])
def test_error_bodies_naming_awkward_keys_parse(live, s3, key):
    response = send(live, "GET", f"/{BUCKET}/{key}")
    assert_error(response, "NoSuchKey", 404)
    response = send(live, "GET", f"/{BUCKET}/ten", query={"versionId": key})
    assert response.status_code == 400 and error_code(response) == "InvalidArgument"


# --- aws-chunked bodies: every framing fault is a 4xx and leaves nothing behind ----------

BAD_CHUNKED = [
    b"zz\r\nhello\r\n0\r\n\r\n",                       # size not hex
    b"-5\r\nhello\r\n0\r\n\r\n",                       # negative
    b"\xc3\xa9\r\nhello\r\n0\r\n\r\n",                 # not ASCII
    "\u0665\r\nhello\r\n0\r\n\r\n".encode(),           # an Arabic-Indic five
    b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n",         # far more than is sent
    b"1" + b"0" * 40 + b"\r\nhello\r\n0\r\n\r\n",      # more digits than any size
    b"5\r\nhello\r\n",                                 # no final chunk
    b"5\r\nhello",                                     # ends inside the framing
    b"3\r\nhello\r\n0\r\n\r\n",                        # data longer than its size
    b"5\r\nhello\r\n0\r\nno-colon-here\r\n\r\n",       # malformed trailer
    b"5\r\nhello\r\n0\r\n:empty-name\r\n\r\n",         # trailer without a name
    b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:\xff\xfe\r\n\r\n",   # not UTF-8
    b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:@@@@\r\n\r\n",      # not base64
    b"5\r\nhello\r\n0\r\n" + b"x-a:" + b"v" * 9000 + b"\r\n\r\n",  # a line too long
    b"5\r\nhello\r\n0\r\n\r\nextra",                   # data after the end
    b"5;chunk-signature=\r\nhello\r\n0\r\n\r\n",      # a stray (unsigned) extension
]


@pytest.mark.parametrize("body,http_chunked", [(body, False) for body in BAD_CHUNKED] + [
    (BAD_CHUNKED[0], True), (BAD_CHUNKED[4], True), (BAD_CHUNKED[6], True)])
def test_bad_aws_chunked_bodies_are_4xx_and_leave_nothing(live, s3, body, http_chunked):
    from pathlib import Path

    data = Path(live.app.config["EUCALITE"]["data_dir"]) / "s3"
    # object data and temp files; not s3/keys, where the first write makes the SSE master key
    files = lambda: {path for path in data.rglob("*")                   # noqa: E731
                     if path.is_file() and path.parent.name != "keys"}
    before = files()
    response = send(live, "PUT", f"/{BUCKET}/chunky", body=body, http_chunked=http_chunked,
                    payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                    headers={"Content-Encoding": "aws-chunked",
                             "x-amz-decoded-content-length": "5",
                             "x-amz-trailer": "x-amz-checksum-crc32"
                             if b"x-amz-checksum" in body else ""})
    if response.status_code == 200:
        # Only the stray extension is harmless: unsigned chunks carry no signature.
        assert body.startswith(b"5;chunk-signature=")
        return
    assert 400 <= response.status_code < 500, response.text
    assert error_code(response) in ("IncompleteBody", "InvalidRequest", "InvalidArgument",
                                    "MalformedTrailerError", "BadDigest")
    assert_error(send(live, "GET", f"/{BUCKET}/chunky"), "NoSuchKey", 404)
    assert files() == before


def test_copy_racing_a_delete_of_its_source_is_no_such_key(live, s3, monkeypatch):
    from eucalite.s3.store import ObjectStore

    s3.put_object(Bucket=BUCKET, Key="source", Body=b"source bytes")
    pause = Pause(ObjectStore.link)
    monkeypatch.setattr(ObjectStore, "link", pause)
    copy = _in_thread(lambda: send(live, "PUT", f"/{BUCKET}/copy",
                                   headers={"x-amz-copy-source": f"/{BUCKET}/source"}))
    assert pause.reached.wait(30)
    s3.delete_object(Bucket=BUCKET, Key="source")
    pause.release()
    assert_error(copy(), "NoSuchKey", 404)
    assert_error(send(live, "GET", f"/{BUCKET}/copy"), "NoSuchKey", 404)


def test_upload_part_copy_racing_a_delete_of_its_source_is_no_such_key(live, s3, monkeypatch):
    from eucalite.s3.store import ObjectStore

    s3.put_object(Bucket=BUCKET, Key="source", Body=b"source bytes")
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="copy")["UploadId"]
    pause = Pause(ObjectStore.read)           # UploadPartCopy reads through sse.read
    monkeypatch.setattr(ObjectStore, "read", pause)
    copy = _in_thread(lambda: send(live, "PUT", f"/{BUCKET}/copy",
                                   query={"partNumber": "1", "uploadId": upload},
                                   headers={"x-amz-copy-source": f"/{BUCKET}/source"}))
    assert pause.reached.wait(30)
    s3.delete_object(Bucket=BUCKET, Key="source")
    pause.release()
    assert_error(copy(), "NoSuchKey", 404)
    assert s3.list_parts(Bucket=BUCKET, Key="copy", UploadId=upload).get("Parts", []) == []


@pytest.mark.parametrize("then", ["overwrite", "delete"])
def test_get_racing_an_overwrite_sends_one_whole_version(live, s3, monkeypatch, then):
    from eucalite.s3.store import ObjectStore

    old = [b"a" * (5 * MIB), b"b" * 1000]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big")["UploadId"]
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=BUCKET, Key="big", UploadId=upload,
                                                     PartNumber=n, Body=body)["ETag"]}
             for n, body in enumerate(old, start=1)]
    s3.complete_multipart_upload(Bucket=BUCKET, Key="big", UploadId=upload,
                                 MultipartUpload={"Parts": parts})
    # The GET has found the version and is about to read its parts...
    pause = Pause(ObjectStore.read)
    monkeypatch.setattr(ObjectStore, "read", pause)
    get = _in_thread(lambda: send(live, "GET", f"/{BUCKET}/big"))
    assert pause.reached.wait(30)
    # ...when another client replaces (or deletes) the object and its part files go.
    if then == "overwrite":
        s3.put_object(Bucket=BUCKET, Key="big", Body=b"new")
    else:
        s3.delete_object(Bucket=BUCKET, Key="big")
    pause.release()
    response = get()
    if then == "overwrite":
        assert (response.status_code, response.content) in ((200, b"".join(old)),
                                                            (200, b"new"))
    else:
        assert_error(response, "NoSuchKey", 404)


@pytest.mark.parametrize("version_id", ["٣", "é", "ａ"])
def test_version_ids_are_ascii(live, ten_bytes, version_id):
    # A version id is echoed in x-amz-version-id: one HTTP cannot carry broke the response.
    for method in ("DELETE", "GET"):
        response = send(live, method, f"/{BUCKET}/ten", query={"versionId": version_id})
        assert_error(response, "InvalidArgument")


@pytest.mark.parametrize("name", ["trailing-newline\n", "trailing-newline\r\n"])
def test_bucket_names_end_at_the_end(live, s3, name):
    # '$' also matches before a final newline: such a name was accepted and created.
    assert_error(send(live, "PUT", f"/{name}"), "InvalidBucketName")
    assert name not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


# --- dates at the edge of what a datetime holds --------------------------------------------

@pytest.mark.parametrize("header", ["If-Modified-Since", "If-Unmodified-Since",
                                    "x-amz-copy-source-if-modified-since"])
def test_conditional_dates_beyond_a_datetime_are_ignored(live, ten_bytes, header):
    # Moving 9999-12-31 23:59:59 -2359 to UTC overflows; S3 ignores a date it cannot use.
    headers = {header: "Fri, 31 Dec 9999 23:59:59 -2359"}
    if header.startswith("x-amz-copy-source"):
        headers["x-amz-copy-source"] = f"/{BUCKET}/ten"
        response = send(live, "PUT", f"/{BUCKET}/copied", headers=headers)
    else:
        response = send(live, "GET", f"/{BUCKET}/ten", headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("date", ["9999-12-31T00:00:00-23:59", "0001-01-01T00:00:00+01:00"])
def test_lifecycle_dates_beyond_a_datetime_are_malformed_xml(live, s3, date):
    body = (f"<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix></Prefix></Filter>"
            f"<Status>Enabled</Status><Expiration><Date>{date}</Date></Expiration>"
            f"</Rule></LifecycleConfiguration>").encode()
    response = send(live, "PUT", f"/{BUCKET}", query={"lifecycle": ""}, body=body,
                    headers={"Content-MD5": _md5(body)})
    assert response.status_code == 400 and error_code(response) in ("MalformedXML",
                                                                    "InvalidArgument")
