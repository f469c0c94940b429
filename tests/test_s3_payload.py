"""S3 request bodies: aws-chunked decoding, chunk and trailer signatures, and checksums.

No server: bodies are built the way clients build them. Unsigned trailer bodies come from
botocore itself (its ``AwsChunkedWrapper``, and whole ``put_object`` requests captured just
before they would be sent, then authenticated with :func:`eucalite.auth.authenticate`).
Signed chunks are signed here by an independent implementation of the AWS documentation's
algorithm, checked first against the documentation's worked examples (known secret, date,
seed and chunk signatures).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import os
import tracemalloc
import zlib
from typing import Iterable, Iterator
from urllib.parse import urlsplit

import boto3
import botocore
import pytest
from botocore import httpchecksum
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from eucalite.accounts import Principal
from eucalite.auth import AuthResult, RequestView, authenticate
from eucalite.sigv4 import v4_signing_key
from eucalite.errors import AwsError
from eucalite.s3 import checksums
from eucalite.s3.payload import (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER,
                                 STREAMING_UNSIGNED_TRAILER, open_body,
                                 stored_content_encoding)

# --- the AWS documentation's example request ------------------------------------------

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
KEY = v4_signing_key(SECRET, "20130524", "us-east-1", "s3")
PRINCIPAL = Principal("123456789012", "example", "AIDAEXAMPLE", "alice", ACCESS_KEY)

DOC_DATA = b"a" * 66560
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_SIGNATURES = ["ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"]
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_SIGNATURES = ["b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
                          "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
                          "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"]
DOC_TRAILER = "x-amz-checksum-crc32c:sOO8/Q=="
DOC_TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"

#: botocore's own implementations, to check ours against.
BOTOCORE_CHECKSUMS = {
    "CRC32": httpchecksum.Crc32Checksum,
    "CRC32C": httpchecksum.CrtCrc32cChecksum,
    "CRC64NVME": httpchecksum.CrtCrc64NvmeChecksum,
    "SHA1": httpchecksum.Sha1Checksum,
    "SHA256": httpchecksum.Sha256Checksum,
}

DATA = os.urandom(300 * 1024 + 17)


# --- helpers: signing as a client does, independently of eucalite ----------------------

def _hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def chunk_signatures(seed: str, chunks: Iterable[bytes], key: bytes = KEY) -> list[str]:
    """The chained chunk signatures for *chunks* (the last one should be b"")."""
    signatures, previous = [], seed
    for data in chunks:
        previous = _hmac_hex(key, "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", AMZ_DATE, SCOPE, previous,
            hashlib.sha256(b"").hexdigest(), hashlib.sha256(data).hexdigest()]))
        signatures.append(previous)
    return signatures


def trailer_signature(previous: str, trailer_lines: str, key: bytes = KEY) -> str:
    """*trailer_lines* is ``name:value\\n`` per trailer."""
    return _hmac_hex(key, "\n".join([
        "AWS4-HMAC-SHA256-TRAILER", AMZ_DATE, SCOPE, previous,
        hashlib.sha256(trailer_lines.encode()).hexdigest()]))


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] + [b""]


def framed(chunks: list[bytes], signatures: list[str] | None, trailer: bytes = b"") -> bytes:
    """aws-chunked framing of *chunks* (ending with b""), then *trailer* and a blank line."""
    out = []
    for index, data in enumerate(chunks):
        extension = f";chunk-signature={signatures[index]}" if signatures else ""
        out.append(b"%x%s\r\n" % (len(data), extension.encode()))
        if data:
            out.append(data + b"\r\n")
    out.append(trailer + b"\r\n")
    return b"".join(out)


def signed_body(data: bytes, chunk_size: int, seed: str = DOC_SEED) -> bytes:
    chunks = split(data, chunk_size)
    return framed(chunks, chunk_signatures(seed, chunks))


def signed_trailer_body(data: bytes, chunk_size: int, trailers: list[tuple[str, str]],
                        seed: str = DOC_SEED) -> bytes:
    chunks = split(data, chunk_size)
    signatures = chunk_signatures(seed, chunks)
    lines = "".join(f"{name}:{value}\n" for name, value in trailers)
    trailer = "".join(f"{name}:{value}\r\n" for name, value in trailers)
    trailer += f"x-amz-trailer-signature:{trailer_signature(signatures[-1], lines)}\r\n"
    return framed(chunks, signatures, trailer.encode())


def botocore_chunked(data: bytes, algorithm: str | None, chunk_size: int = 64 * 1024) -> bytes:
    """An unsigned aws-chunked body exactly as botocore frames it."""
    if algorithm is None:
        wrapper = httpchecksum.AwsChunkedWrapper(io.BytesIO(data), chunk_size=chunk_size)
    else:
        wrapper = httpchecksum.AwsChunkedWrapper(
            io.BytesIO(data), checksum_cls=BOTOCORE_CHECKSUMS[algorithm],
            checksum_name=checksums.header_name(algorithm), chunk_size=chunk_size)
    return wrapper.read()


def checksum_b64(algorithm: str, data: bytes) -> str:
    checksum = BOTOCORE_CHECKSUMS[algorithm]()
    checksum.update(data)
    return checksum.b64digest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def v4_auth(payload: str, seed: str = DOC_SEED) -> AuthResult:
    return AuthResult(PRINCIPAL, "v4-header", payload_sha256=payload, signing_key=KEY,
                      seed_signature=seed, amz_date=AMZ_DATE, scope=SCOPE)


def chunked_headers(decoded_length: int, trailer: str | None = None, **extra: str) -> dict:
    headers = {"content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(decoded_length)}
    if trailer:
        headers["x-amz-trailer"] = trailer
    headers.update(extra)
    return headers


def open_bytes(body: bytes, headers: dict, auth: AuthResult | None = None,
               length: int | None = -1):
    return open_body(io.BytesIO(body), headers, auth, len(body) if length == -1 else length)


def read_all(reader, size: int = 4096) -> bytes:
    return b"".join(iter(lambda: reader.read(size), b""))


def failure(reader_or_call, size: int = 4096) -> AwsError:
    """The AwsError reading to the end raises (or calling, for a callable)."""
    with pytest.raises(AwsError) as excinfo:
        if callable(reader_or_call):
            reader_or_call()
        else:
            read_all(reader_or_call, size)
    return excinfo.value


def assert_error(error: AwsError, code: str, status: int) -> None:
    assert (error.code, error.status) == (code, status), error.message


# --- checksums ------------------------------------------------------------------------

def test_crc32_known_answer():
    checksum = checksums.new("CRC32")
    checksum.update(b"hello ")
    checksum.update(b"world")
    assert checksum.b64() == "DUoRhQ=="
    assert checksum.digest() == zlib.crc32(b"hello world").to_bytes(4, "big")


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_each_algorithm_matches_botocore(algorithm):
    checksum = checksums.new(algorithm.lower())
    for piece in split(DATA, 7777):
        checksum.update(piece)
    assert checksum.b64() == checksum_b64(algorithm, DATA)
    assert len(checksum.digest()) == {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20,
                                      "SHA256": 32}[algorithm]
    assert checksums.header_name(algorithm) == "x-amz-checksum-" + algorithm.lower()


def test_unknown_algorithm_names_the_valid_ones():
    error = failure(lambda: checksums.new("MD5"))
    assert_error(error, "InvalidRequest", 400)
    assert all(name in error.message for name in checksums.ALGORITHMS)


@pytest.mark.parametrize("algorithm", ["CRC32", "SHA256", "CRC64NVME"])
def test_composite_is_checksum_of_part_digests(algorithm):
    parts = [DATA[:100000], DATA[100000:200000], DATA[200000:]]
    digests = [base64.b64decode(checksum_b64(algorithm, part)) for part in parts]
    expected = checksum_b64(algorithm, b"".join(digests)) + "-3"
    assert checksums.composite(algorithm, digests) == expected


def test_algorithm_from_headers():
    pick = checksums.algorithm_from_headers
    assert pick({}) is None
    assert pick({"x-amz-sdk-checksum-algorithm": "crc32c"}) == "CRC32C"
    assert pick({"x-amz-checksum-sha1": "x"}) == "SHA1"
    assert pick({"x-amz-trailer": "x-amz-checksum-crc64nvme"}) == "CRC64NVME"
    assert pick({"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-crc32": "x",
                 "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-checksum-type": "COMPOSITE"}) \
        == "CRC32"
    for bad in ({"x-amz-checksum-crc32": "x", "x-amz-checksum-sha1": "y"},
                {"x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-sha256": "x"},
                {"x-amz-sdk-checksum-algorithm": "MD5"},
                {"x-amz-trailer": "x-amz-checksum-md5"}):
        assert_error(failure(lambda: pick(bad)), "InvalidRequest", 400)


# --- plain bodies ---------------------------------------------------------------------

def test_hex_sha256_body_is_verified():
    headers = {"x-amz-content-sha256": hashlib.sha256(DATA).hexdigest()}
    reader = open_bytes(DATA, headers, v4_auth(headers["x-amz-content-sha256"]))
    assert read_all(reader, 1000) == DATA
    assert reader.finished and reader.size == len(DATA)
    assert reader.md5_hex == hashlib.md5(DATA).hexdigest()
    assert reader.checksum_algorithm is None and reader.checksum_b64 is None


def test_hex_sha256_mismatch():
    declared = hashlib.sha256(b"something else").hexdigest()
    error = failure(open_bytes(DATA, {}, v4_auth(declared)))
    assert_error(error, "XAmzContentSHA256Mismatch", 400)
    assert error.extra["S3ComputedContentSHA256"] == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("auth", [v4_auth("UNSIGNED-PAYLOAD"), None,
                                  AuthResult(PRINCIPAL, "v2-header")])
def test_unsigned_anonymous_and_v2_bodies_are_not_hashed(auth):
    reader = open_bytes(DATA, {}, auth)
    assert reader.read() == DATA
    assert reader.read() == b"" and reader.md5_hex == hashlib.md5(DATA).hexdigest()


def test_never_reads_past_content_length():
    stream = io.BytesIO(DATA + b"next request on the connection")
    reader = open_body(stream, {}, None, len(DATA))
    assert read_all(reader, 65536) == DATA
    assert stream.tell() == len(DATA)


def test_truncated_plain_body_is_incomplete():
    reader = open_bytes(DATA[:1000], {}, v4_auth("UNSIGNED-PAYLOAD"), length=len(DATA))
    assert_error(failure(reader), "IncompleteBody", 400)


def test_body_cut_short_under_werkzeug_is_incomplete():
    """werkzeug's stream raises ClientDisconnected when the client sends less than its
    Content-Length: that is the client's short body, not a server error."""
    from werkzeug.wsgi import LimitedStream

    stream = LimitedStream(io.BytesIO(DATA[:1000]), len(DATA))
    reader = open_body(stream, {}, v4_auth("UNSIGNED-PAYLOAD"), len(DATA))
    assert_error(failure(reader), "IncompleteBody", 400)


def test_content_md5():
    reader = open_bytes(DATA, {"content-md5": md5_b64(DATA)})
    assert read_all(reader) == DATA
    error = failure(open_bytes(DATA, {"content-md5": md5_b64(b"other")}))
    assert_error(error, "BadDigest", 400)
    for invalid in ("not base64!", base64.b64encode(b"x" * 15).decode(), ""):
        error = failure(lambda: open_bytes(DATA, {"content-md5": invalid}))
        assert_error(error, "InvalidDigest", 400)


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_checksum_header_right_and_wrong(algorithm):
    name = checksums.header_name(algorithm)
    reader = open_bytes(DATA, {name: checksum_b64(algorithm, DATA)})
    assert read_all(reader, 5000) == DATA
    assert (reader.checksum_algorithm, reader.checksum_b64) == \
        (algorithm, checksum_b64(algorithm, DATA))

    error = failure(open_bytes(DATA, {name: checksum_b64(algorithm, b"other")}))
    assert_error(error, "BadDigest", 400)
    assert error.message == f"The {algorithm} you specified did not match the calculated " \
                            "checksum."

    error = failure(lambda: open_bytes(DATA, {name: "AAAA"}))      # wrong digest size
    assert_error(error, "InvalidRequest", 400)


def test_sdk_algorithm_alone_computes_the_checksum_to_store():
    reader = open_bytes(b"hello world", {"x-amz-sdk-checksum-algorithm": "CRC32"})
    assert reader.read() == b"hello world" and reader.read() == b""
    assert (reader.checksum_algorithm, reader.checksum_b64) == ("CRC32", "DUoRhQ==")


def test_a_failed_reader_keeps_failing():
    reader = open_bytes(DATA, {"content-md5": md5_b64(b"other")})
    error = failure(reader)
    with pytest.raises(AwsError) as again:
        reader.read(10)
    assert again.value is error


# --- signed aws-chunked ---------------------------------------------------------------

def test_chunk_signing_helper_reproduces_the_aws_examples():
    chunks = [DOC_DATA[:65536], DOC_DATA[65536:], b""]
    assert chunk_signatures(DOC_SEED, chunks) == DOC_SIGNATURES
    assert chunk_signatures(DOC_TRAILER_SEED, chunks) == DOC_TRAILER_SIGNATURES
    assert trailer_signature(DOC_TRAILER_SIGNATURES[-1], DOC_TRAILER + "\n") \
        == DOC_TRAILER_SIGNATURE


def test_aws_documentation_example_end_to_end():
    """The documented chunked PUT, authenticated by eucalite.auth, then decoded."""
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": AMZ_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE},SignedHeaders="
                         "content-encoding;content-length;host;x-amz-content-sha256;"
                         f"x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
                         f"Signature={DOC_SEED}",
        "x-amz-content-sha256": STREAMING_SIGNED,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    view = RequestView("PUT", "/examplebucket/chunkObject.txt", "", headers, [])
    auth = authenticate(view, "s3", lookup=lambda key: (PRINCIPAL, SECRET),
                        now=dt.datetime(2013, 5, 24, 0, 0, 30, tzinfo=dt.timezone.utc))
    assert auth.seed_signature == DOC_SEED and auth.payload_sha256 == STREAMING_SIGNED
    body = framed([DOC_DATA[:65536], DOC_DATA[65536:], b""], DOC_SIGNATURES)
    assert len(body) == 66824
    reader = open_bytes(body, headers, auth)
    assert read_all(reader, 1000) == DOC_DATA
    assert reader.md5_hex == hashlib.md5(DOC_DATA).hexdigest()
    assert stored_content_encoding(headers) is None
    assert stored_content_encoding({"content-encoding": "gzip,aws-chunked"}) == "gzip"


@pytest.mark.parametrize("read_size", [1, 1000, 4096, 200 * 1024, 10 ** 7])
def test_signed_multi_chunk_body(read_size):
    data = DATA if read_size > 1 else DATA[:5000]
    body = signed_body(data, 100 * 1024 if read_size > 1 else 1024)
    reader = open_bytes(body, chunked_headers(len(data)), v4_auth(STREAMING_SIGNED))
    assert read_all(reader, read_size) == data
    assert reader.size == len(data)


def test_signed_empty_body():
    body = signed_body(b"", 1024)
    reader = open_bytes(body, chunked_headers(0), v4_auth(STREAMING_SIGNED))
    assert reader.read() == b"" and reader.finished
    assert reader.md5_hex == hashlib.md5(b"").hexdigest()


def test_signed_chunk_with_tampered_data():
    body = bytearray(signed_body(DATA, 64 * 1024))
    body[70000] ^= 1
    reader = open_bytes(bytes(body), chunked_headers(len(DATA)), v4_auth(STREAMING_SIGNED))
    error = failure(reader)
    assert_error(error, "SignatureDoesNotMatch", 403)
    assert error.extra["StringToSign"].startswith("AWS4-HMAC-SHA256-PAYLOAD\n")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_signed_chunk_with_tampered_signature(index):
    signatures = list(DOC_SIGNATURES)
    signatures[index] = signatures[index][:-1] + ("0" if signatures[index][-1] != "0" else "1")
    body = framed([DOC_DATA[:65536], DOC_DATA[65536:], b""], signatures)
    reader = open_bytes(body, chunked_headers(66560), v4_auth(STREAMING_SIGNED))
    assert_error(failure(reader), "SignatureDoesNotMatch", 403)


def test_signed_chunks_out_of_order_break_the_chain():
    chunks = split(DATA[:3 * 4096], 4096)
    signatures = chunk_signatures(DOC_SEED, chunks)
    order = [1, 0, 2, 3]
    body = framed([chunks[i] for i in order], [signatures[i] for i in order])
    reader = open_bytes(body, chunked_headers(3 * 4096), v4_auth(STREAMING_SIGNED))
    assert_error(failure(reader), "SignatureDoesNotMatch", 403)


def test_signed_chunk_without_signature():
    body = framed(split(DATA, 64 * 1024), None)
    reader = open_bytes(body, chunked_headers(len(DATA)), v4_auth(STREAMING_SIGNED))
    assert_error(failure(reader), "SignatureDoesNotMatch", 403)


@pytest.mark.parametrize("declared", [len(DATA) - 1, len(DATA) + 1, 0])
def test_wrong_decoded_content_length(declared):
    body = signed_body(DATA, 64 * 1024)
    reader = open_bytes(body, chunked_headers(declared), v4_auth(STREAMING_SIGNED))
    assert_error(failure(reader), "IncompleteBody", 400)


def test_truncated_signed_body():
    body = signed_body(DATA, 64 * 1024)
    for cut in (10, 1000, 100000, body.rindex(b"0;chunk-signature=")):
        reader = open_bytes(body[:cut], chunked_headers(len(DATA)), v4_auth(STREAMING_SIGNED),
                            length=len(body))
        assert_error(failure(reader), "IncompleteBody", 400)
        # Without a Content-Length, the framing alone shows the body is cut short.
        reader = open_bytes(body[:cut], chunked_headers(len(DATA)), v4_auth(STREAMING_SIGNED),
                            length=None)
        assert_error(failure(reader), "IncompleteBody", 400)


def test_malformed_framing():
    body = signed_body(DATA, 64 * 1024)
    auth, headers = v4_auth(STREAMING_SIGNED), chunked_headers(len(DATA))
    bad = {
        "size is not hex": b"zz" + body,
        "bare LF after header": body.replace(b"\r\n", b"\n", 1),
        "chunk longer than declared": body.replace(b"10000;", b"ffff;", 1),
        "data after the final chunk": body + b"extra",
    }
    for what, broken in bad.items():
        error = failure(open_bytes(broken, headers, auth))
        assert error.code == "InvalidRequest" and error.status == 400, what


def test_signed_streaming_needs_a_v4_signature():
    body = signed_body(DATA, 64 * 1024)
    for auth in (None, AuthResult(PRINCIPAL, "v2-header", payload_sha256=STREAMING_SIGNED)):
        error = failure(lambda: open_bytes(body, {"x-amz-content-sha256": STREAMING_SIGNED},
                                           auth))
        assert_error(error, "InvalidRequest", 400)


# --- signed aws-chunked with trailers -------------------------------------------------

def test_aws_documentation_trailer_example():
    body = framed([DOC_DATA[:65536], DOC_DATA[65536:], b""], DOC_TRAILER_SIGNATURES,
                  f"{DOC_TRAILER}\r\nx-amz-trailer-signature:{DOC_TRAILER_SIGNATURE}\r\n"
                  .encode())
    headers = chunked_headers(66560, "x-amz-checksum-crc32c")
    reader = open_bytes(body, headers, v4_auth(STREAMING_SIGNED_TRAILER, DOC_TRAILER_SEED))
    assert read_all(reader, 777) == DOC_DATA
    assert (reader.checksum_algorithm, reader.checksum_b64) == ("CRC32C", "sOO8/Q==")
    assert reader.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}

    tampered = body.replace(b"sOO8/Q==", b"sOO8/A==")
    reader = open_bytes(tampered, headers, v4_auth(STREAMING_SIGNED_TRAILER, DOC_TRAILER_SEED))
    error = failure(reader)
    assert_error(error, "SignatureDoesNotMatch", 403)
    assert error.extra["StringToSign"].startswith("AWS4-HMAC-SHA256-TRAILER\n")


@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_signed_trailer_each_algorithm(algorithm):
    name = checksums.header_name(algorithm)
    headers = chunked_headers(len(DATA), name)
    auth = v4_auth(STREAMING_SIGNED_TRAILER)
    body = signed_trailer_body(DATA, 100 * 1024, [(name, checksum_b64(algorithm, DATA))])
    reader = open_bytes(body, headers, auth)
    assert read_all(reader, 3000) == DATA
    assert reader.checksum_b64 == checksum_b64(algorithm, DATA)

    # Signed correctly, but over a checksum of other bytes.
    body = signed_trailer_body(DATA, 100 * 1024, [(name, checksum_b64(algorithm, b"other"))])
    error = failure(open_bytes(body, headers, auth))
    assert_error(error, "BadDigest", 400)
    assert algorithm in error.message


def test_signed_trailer_without_its_signature():
    name = "x-amz-checksum-crc32"
    body = signed_trailer_body(DATA, 100 * 1024, [(name, checksum_b64("CRC32", DATA))])
    start = body.index(b"x-amz-trailer-signature:")
    body = body[:start] + body[body.index(b"\r\n", start) + 2:]
    reader = open_bytes(body, chunked_headers(len(DATA), name), v4_auth(STREAMING_SIGNED_TRAILER))
    assert_error(failure(reader), "SignatureDoesNotMatch", 403)


def test_signed_trailer_with_a_non_ascii_signature():
    """A trailer signature that is not ASCII is a mismatch (hmac.compare_digest raised
    TypeError on it: a 500)."""
    name = "x-amz-checksum-crc32"
    body = signed_trailer_body(DATA, 100 * 1024, [(name, checksum_b64("CRC32", DATA))])
    start = body.index(b"x-amz-trailer-signature:") + len(b"x-amz-trailer-signature:")
    body = body[:start] + "é".encode() + body[body.index(b"\r\n", start):]
    reader = open_bytes(body, chunked_headers(len(DATA), name), v4_auth(STREAMING_SIGNED_TRAILER))
    assert_error(failure(reader), "SignatureDoesNotMatch", 403)


# --- unsigned aws-chunked with trailers (botocore's framing) --------------------------

@pytest.mark.parametrize("algorithm", checksums.ALGORITHMS)
def test_unsigned_trailer_each_algorithm(algorithm):
    name = checksums.header_name(algorithm)
    headers = chunked_headers(len(DATA), name)
    body = botocore_chunked(DATA, algorithm)
    reader = open_bytes(body, headers, v4_auth(STREAMING_UNSIGNED_TRAILER))
    assert read_all(reader, 1000) == DATA
    assert (reader.checksum_algorithm, reader.checksum_b64) == \
        (algorithm, checksum_b64(algorithm, DATA))

    tampered = bytearray(body)
    tampered[200] ^= 1                      # inside the first chunk's data
    error = failure(open_bytes(bytes(tampered), headers, v4_auth(STREAMING_UNSIGNED_TRAILER)))
    assert_error(error, "BadDigest", 400)
    assert error.message == f"The {algorithm} you specified did not match the calculated " \
                            "checksum."


def test_unsigned_trailer_problems():
    body = botocore_chunked(DATA, "CRC32")
    auth = v4_auth(STREAMING_UNSIGNED_TRAILER)
    headers = chunked_headers(len(DATA), "x-amz-checksum-crc32")
    missing = body[:body.rindex(b"x-amz-checksum-crc32:")] + b"\r\n"
    assert_error(failure(open_bytes(missing, headers, auth)), "MalformedTrailerError", 400)
    other = body.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-crc32c:")
    assert_error(failure(open_bytes(other, headers, auth)), "MalformedTrailerError", 400)
    not_base64 = body[:body.rindex(b":") + 1] + b"!!!!\r\n\r\n"
    assert_error(failure(open_bytes(not_base64, headers, auth)), "InvalidRequest", 400)
    undeclared = chunked_headers(len(DATA))
    assert_error(failure(open_bytes(body, undeclared, auth)), "MalformedTrailerError", 400)


def test_unsigned_chunked_without_trailer_may_end_after_the_last_chunk():
    body = botocore_chunked(DATA, None)
    assert body.endswith(b"\r\n0\r\n\r\n")
    for complete in (body, body[:-2]):
        reader = open_bytes(complete, chunked_headers(len(DATA)),
                            v4_auth(STREAMING_UNSIGNED_TRAILER))
        assert read_all(reader) == DATA


def test_unsigned_chunks_ignore_extensions():
    body = framed(split(DATA, 50000), ["whatever"] * 8)
    reader = open_bytes(body, chunked_headers(len(DATA)), v4_auth(STREAMING_UNSIGNED_TRAILER))
    assert read_all(reader) == DATA


# --- real boto3 requests --------------------------------------------------------------

class _EmptyRaw:
    def stream(self, **kwargs) -> Iterator[bytes]:
        return iter(())


def captured_put_object(data: bytes, *, anonymous: bool = False, **params) -> tuple[dict, bytes]:
    """Headers and body of the PutObject request boto3 would send (over HTTPS)."""
    config = Config(signature_version=botocore.UNSIGNED if anonymous else "s3v4",
                    s3={"addressing_style": "path"},
                    request_checksum_calculation="when_supported")
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", endpoint_url="https://s3.example.test",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET, config=config)
    seen: dict = {}

    def send(request, **kwargs):
        body = request.body
        seen["body"] = body.read() if hasattr(body, "read") else bytes(body or b"")
        seen["url"] = request.url
        seen["headers"] = {name.lower(): value.decode() if isinstance(value, bytes) else value
                           for name, value in request.headers.items()}
        return AWSResponse(request.url, 200, {}, _EmptyRaw())

    client.meta.events.register("before-send.s3.PutObject", send)
    client.put_object(Bucket="bucket", Key="some/key", Body=data, **params)
    seen["headers"].setdefault("host", urlsplit(seen["url"]).netloc)
    return seen, seen["body"]


@pytest.mark.parametrize("algorithm", [None, "CRC32C", "CRC64NVME", "SHA256"])
def test_boto3_put_object_end_to_end(algorithm):
    params = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    seen, body = captured_put_object(DATA, **params)
    headers = seen["headers"]
    view = RequestView("PUT", urlsplit(seen["url"]).path, "", headers, [])
    auth = authenticate(view, "s3", lookup=lambda key: (PRINCIPAL, SECRET))
    assert auth.payload_sha256 == STREAMING_UNSIGNED_TRAILER
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    reader = open_body(io.BytesIO(body), headers, auth, None)
    assert read_all(reader, 10000) == DATA
    expected = algorithm or "CRC32"          # botocore's default when the operation supports it
    assert (reader.checksum_algorithm, reader.checksum_b64) == \
        (expected, checksum_b64(expected, DATA))


def test_boto3_anonymous_put_object():
    seen, body = captured_put_object(DATA, anonymous=True, ChecksumAlgorithm="SHA1")
    headers = seen["headers"]
    assert "authorization" not in headers
    assert headers["x-amz-content-sha256"] == STREAMING_UNSIGNED_TRAILER
    # Without x-amz-content-sha256 (other SDKs), Content-Encoding: aws-chunked says the same.
    bare = {name: value for name, value in headers.items() if name != "x-amz-content-sha256"}
    for request_headers in (headers, bare):
        reader = open_body(io.BytesIO(body), request_headers, None, None)
        assert read_all(reader) == DATA
        assert reader.checksum_b64 == checksum_b64("SHA1", DATA)


# --- bounded memory -------------------------------------------------------------------

BIG = 64 * 1024 * 1024
BLOCK = os.urandom(64 * 1024)


class GeneratorStream:
    """A file-like over a generator of pieces, like a socket: nothing held but one piece."""

    def __init__(self, pieces: Iterator[bytes]):
        self._pieces, self._pending = pieces, b""

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if not self._pending:
                self._pending = next(self._pieces, b"")
                if not self._pending:
                    break
            take = n - len(out)
            out += self._pending[:take]
            self._pending = self._pending[take:]
        return bytes(out)


def _blocks(total: int) -> Iterator[bytes]:
    for _ in range(total // len(BLOCK)):
        yield BLOCK


def _digest_of_blocks(factory, total: int):
    digest = factory()
    for block in _blocks(total):
        digest.update(block)
    return digest


def _peak_while_reading(stream, headers, auth, length, read_size: int) -> tuple[int, object]:
    tracemalloc.start()
    try:
        reader = open_body(stream, headers, auth, length)
        while reader.read(read_size):
            pass
        return tracemalloc.get_traced_memory()[1], reader
    finally:
        tracemalloc.stop()


def test_64_mib_plain_body_is_streamed():
    sha256 = _digest_of_blocks(hashlib.sha256, BIG).hexdigest()
    stream = GeneratorStream(_blocks(BIG))
    peak, reader = _peak_while_reading(stream, {}, v4_auth(sha256), BIG, 1024 * 1024)
    assert reader.size == BIG
    assert reader.md5_hex == _digest_of_blocks(hashlib.md5, BIG).hexdigest()
    assert peak < 8 * 1024 * 1024, peak


def test_64_mib_signed_chunked_body_with_16_mib_chunks_is_streamed():
    chunk_size = 16 * 1024 * 1024
    chunk_hashes = [_digest_of_blocks(hashlib.sha256, chunk_size).hexdigest()] * 4
    signatures, previous = [], DOC_SEED
    for digest in chunk_hashes + [hashlib.sha256(b"").hexdigest()]:
        previous = _hmac_hex(KEY, "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", AMZ_DATE, SCOPE,
                                             previous, hashlib.sha256(b"").hexdigest(),
                                             digest]))
        signatures.append(previous)
    crc = checksums.new("CRC32C")
    for block in _blocks(BIG):
        crc.update(block)
    trailer = f"x-amz-checksum-crc32c:{crc.b64()}"
    trailer_sig = trailer_signature(signatures[-1], trailer + "\n")

    def pieces() -> Iterator[bytes]:
        for index in range(4):
            yield b"%x;chunk-signature=%s\r\n" % (chunk_size, signatures[index].encode())
            yield from _blocks(chunk_size)
            yield b"\r\n"
        yield f"0;chunk-signature={signatures[4]}\r\n{trailer}\r\n" \
              f"x-amz-trailer-signature:{trailer_sig}\r\n\r\n".encode()

    length = sum(len(piece) for piece in pieces())
    headers = chunked_headers(BIG, "x-amz-checksum-crc32c",
                              **{"content-md5": base64.b64encode(
                                  _digest_of_blocks(hashlib.md5, BIG).digest()).decode()})
    peak, reader = _peak_while_reading(GeneratorStream(pieces()), headers,
                                       v4_auth(STREAMING_SIGNED_TRAILER), length, 1024 * 1024)
    assert reader.size == BIG and reader.checksum_b64 == crc.b64()
    assert peak < 8 * 1024 * 1024, peak
