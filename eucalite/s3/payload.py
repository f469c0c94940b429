"""Decoding and verifying S3 request bodies (PutObject, UploadPart) while they stream in.

:func:`open_body` wraps the WSGI input in a :class:`BodyReader` whose ``read`` returns the
*decoded* object bytes and checks them on the way: nothing is ever buffered whole, so memory
stays bounded however large the object or its aws-chunked chunks are. Every failure is the
:class:`~eucalite.errors.AwsError` S3 returns; the ones that need the whole body (hashes,
lengths, trailers) are raised by the ``read`` that reaches the end, so a caller must not
commit what it wrote until ``read`` has returned ``b""``.

The body's framing follows ``x-amz-content-sha256`` (the hash the request signature covers,
:attr:`eucalite.auth.AuthResult.payload_sha256`):

* a hex SHA-256: the plain body must hash to it (``XAmzContentSHA256Mismatch``);
* ``UNSIGNED-PAYLOAD``, or none at all (Signature V2, anonymous): plain body, unchecked;
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``: aws-chunked, every chunk signed, each signature
  chaining from the previous one, the first from the request's (seed) signature;
* ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER``: the same, then trailing headers signed by
  ``x-amz-trailer-signature``;
* ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``: aws-chunked without signatures, then trailers.
  A request with no ``x-amz-content-sha256`` whose ``Content-Encoding`` lists ``aws-chunked``
  (an anonymous SDK upload over HTTPS) is read this way too.

Independently of the framing it checks ``Content-MD5`` and the flexible checksum
(``x-amz-checksum-<alg>`` header or trailer, see :mod:`eucalite.s3.checksums`), and it always
computes the MD5 (the object's ETag) and, when the client names an algorithm, the checksum
to store. The raw stream and the aws-chunked framing are :mod:`eucalite.s3.chunked`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import BinaryIO, Iterator, Mapping

from .. import integers, sigv4
from ..auth import AuthResult
from ..errors import BAD_PAYLOAD, AuthError, AwsError
from ..errors import s3 as s3_errors
from ..errors.s3 import (BadDigest, IncompleteBody, InvalidDigest, InvalidRequest,
                         MalformedTrailerError)
from . import checksums
from .chunked import ChunkedDecoder, ChunkSigner, PlainDecoder, Source

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
READ_ALL_BLOCK = 1024 * 1024    # block size when read() is asked for everything

_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}\Z")


# --- errors ---------------------------------------------------------------------------

def bad_digest(what: str) -> BadDigest:
    """The body does not match the Content-MD5 or checksum (*what*) the client sent."""
    if what == "Content-MD5":
        return BadDigest("The Content-MD5 you specified did not match what we received.")
    return BadDigest(f"The {what} you specified did not match the calculated checksum.")


# --- the reader callers use -----------------------------------------------------------

class BodyReader:
    """The decoded object bytes of one request, verified as they are read.

    ``read(n)`` returns up to *n* bytes (everything left for n < 0), ``b""`` at the end;
    the read that reaches the end checks the whole body and raises what S3 would. Once it
    has returned ``b""``: ``size``, ``md5_hex`` (the ETag), ``checksum_algorithm`` and
    ``checksum_b64`` (None unless the client sent or asked for a checksum) and ``trailers``.
    A reader that raised raises the same error again on every later read.
    """

    def __init__(self, decoder: PlainDecoder | ChunkedDecoder, *,
                 content_sha256: str | None = None, content_md5: bytes | None = None,
                 checksum_algorithm: str | None = None, checksum_header: bytes | None = None,
                 decoded_length: int | None = None):
        self._decoder = decoder
        self._content_sha256 = content_sha256
        self._content_md5 = content_md5
        self._checksum_header = checksum_header
        self._decoded_length = decoded_length
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256() if content_sha256 else None
        self._checksum = checksums.new(checksum_algorithm) if checksum_algorithm else None
        self._failure: AwsError | None = None
        self.size = 0
        self.finished = False
        self.md5_hex: str | None = None
        self.checksum_algorithm = checksum_algorithm
        self.checksum_b64: str | None = None
        self.trailers: dict[str, str] = {}

    def read(self, n: int = -1) -> bytes:
        if self._failure is not None:
            raise self._failure
        if self.finished or n == 0:
            return b""
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(READ_ALL_BLOCK), b""))
        try:
            data = self._decoder.read(n)
            if data:
                self._account(data)
            else:
                self._finish()
        except AwsError as error:
            self._failure = error
            raise
        return data

    def require_checksum(self, algorithm: str, optional: bool) -> None:
        """Compute *algorithm* (a multipart upload's) whatever the request names, before the
        first read. A request naming another algorithm, or none unless *optional* (a
        FULL_OBJECT upload), is InvalidRequest as in S3."""
        if self.checksum_algorithm is None and optional:
            self.checksum_algorithm, self._checksum = algorithm, checksums.new(algorithm)
        elif self.checksum_algorithm != algorithm:
            raise InvalidRequest("Checksum Type mismatch occurred, expected checksum Type: "
                                 f"{algorithm.lower()}, actual checksum Type: "
                                 f"{(self.checksum_algorithm or 'null').lower()}")

    def default_checksum(self, algorithm: str) -> None:
        """Compute *algorithm* when the request names no checksum (call before the first
        read): S3 gives every object uploaded without one a CRC64NVME checksum."""
        if self.checksum_algorithm is None:
            self.checksum_algorithm, self._checksum = algorithm, checksums.new(algorithm)

    def __iter__(self) -> Iterator[bytes]:
        """Blocks of up to 1 MiB until the (verified) end of the body."""
        return iter(lambda: self.read(READ_ALL_BLOCK), b"")

    def _account(self, data: bytes) -> None:
        self.size += len(data)
        if self._decoded_length is not None and self.size > self._decoded_length:
            raise IncompleteBody("The decoded body is longer than x-amz-decoded-content-"
                                 "length.")
        self._md5.update(data)
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._checksum is not None:
            self._checksum.update(data)

    def _finish(self) -> None:
        self._check_length()
        self._check_sha256()
        self._check_md5()
        self._check_checksum()
        self.trailers = dict(self._decoder.trailers)
        self.md5_hex = self._md5.hexdigest()
        self.finished = True

    def _check_length(self) -> None:
        if self._decoded_length is not None and self.size != self._decoded_length:
            raise IncompleteBody(f"The decoded body is {self.size} bytes but "
                                 f"x-amz-decoded-content-length says "
                                 f"{self._decoded_length}.")

    def _check_sha256(self) -> None:
        if self._sha256 is None:
            return
        computed = self._sha256.hexdigest()
        if computed != self._content_sha256.lower():
            raise AuthError(BAD_PAYLOAD, "The provided 'x-amz-content-sha256' header does "
                            "not match what was computed.",
                            ClientComputedContentSHA256=self._content_sha256,
                            S3ComputedContentSHA256=computed).for_service("s3")

    def _check_md5(self) -> None:
        if self._content_md5 is not None and self._md5.digest() != self._content_md5:
            raise bad_digest("Content-MD5")

    def _check_checksum(self) -> None:
        if self._checksum is None:
            self._reject_stray_checksum_trailers()
            return
        algorithm = self.checksum_algorithm
        computed = self._checksum.digest()
        sent = [self._checksum_header] if self._checksum_header is not None else []
        sent += self._trailer_checksums(algorithm)
        if any(value != computed for value in sent):
            raise bad_digest(algorithm)
        self.checksum_b64 = self._checksum.b64()

    def _trailer_checksums(self, algorithm: str) -> list[bytes]:
        """Raw digests of the checksum trailers; a trailer of another algorithm is
        MalformedTrailerError, one that is not valid base64 of the digest InvalidRequest."""
        values = []
        for name, value in self._decoder.trailers.items():
            if not name.startswith(checksums.HEADER_PREFIX):
                continue
            if name != checksums.header_name(algorithm):
                raise MalformedTrailerError(f"The trailer {name} does not match the checksum "
                                            f"algorithm {algorithm} the request names.")
            raw = checksums.decode(algorithm, value)
            if raw is None:
                raise InvalidRequest(f"Value for {name} trailing header is invalid.")
            values.append(raw)
        return values

    def _reject_stray_checksum_trailers(self) -> None:
        for name in self._decoder.trailers:
            if name.startswith(checksums.HEADER_PREFIX):
                raise MalformedTrailerError(f"The trailer {name} was not announced by "
                                            "x-amz-trailer.")


# --- opening a body -------------------------------------------------------------------

def _declared_payload(headers: Mapping[str, str], auth: AuthResult | None) -> str | None:
    """What ``x-amz-content-sha256`` says the body is (see the module docstring)."""
    if auth is not None and auth.payload_sha256:
        return auth.payload_sha256
    declared = headers.get("x-amz-content-sha256", "").strip()
    if declared:
        return declared
    if "aws-chunked" in content_encodings(headers):
        return STREAMING_UNSIGNED_TRAILER
    return None


def content_encodings(headers: Mapping[str, str]) -> list[str]:
    """The ``Content-Encoding`` tokens, lower-case, in order."""
    return [token.strip().lower() for token in headers.get("content-encoding", "").split(",")
            if token.strip()]


def stored_content_encoding(headers: Mapping[str, str]) -> str | None:
    """``Content-Encoding`` as S3 stores it: without ``aws-chunked`` (None if that is all)."""
    kept = [token.strip() for token in headers.get("content-encoding", "").split(",")
            if token.strip() and token.strip().lower() != "aws-chunked"]
    return ", ".join(kept) or None


def _content_md5(headers: Mapping[str, str]) -> bytes | None:
    """The raw digest ``Content-MD5`` carries; InvalidDigest unless base64 of 16 bytes."""
    value = headers.get("content-md5")
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise InvalidDigest("The Content-MD5 you specified was invalid.",
                            **{"Content-MD5": value})
    return raw


def _checksum_header(headers: Mapping[str, str], algorithm: str | None) -> bytes | None:
    """The raw digest of the ``x-amz-checksum-<alg>`` header; InvalidRequest if malformed."""
    if algorithm is None:
        return None
    name = checksums.header_name(algorithm)
    value = headers.get(name)
    if value is None:
        return None
    raw = checksums.decode(algorithm, value)
    if raw is None:
        raise InvalidRequest(f"Value for {name} header is invalid.")
    return raw


def _declared_trailers(headers: Mapping[str, str]) -> list[str]:
    return [name.strip().lower() for name in headers.get("x-amz-trailer", "").split(",")
            if name.strip()]


def _decoded_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("x-amz-decoded-content-length")
    if value is None:
        return None
    length = integers.parse(value.strip())
    if length is None:
        raise InvalidRequest(f"x-amz-decoded-content-length {value[:40]!r} is not a number.")
    return length


def _signer(auth: AuthResult | None, declared: str) -> ChunkSigner:
    if auth is None or not (auth.signing_key and auth.seed_signature and auth.amz_date
                            and auth.scope):
        raise InvalidRequest(f"x-amz-content-sha256 {declared} needs a request signed "
                             "with Signature Version 4.")
    return ChunkSigner(auth)


def open_body(stream: BinaryIO, headers: Mapping[str, str], auth: AuthResult | None,
              content_length: int | None) -> BodyReader:
    """A :class:`BodyReader` over the request body in *stream* (the WSGI input).

    *headers* have lower-case names; *auth* is the request's
    :class:`~eucalite.auth.AuthResult` (None when anonymous); *content_length* is the
    ``Content-Length`` (None: read until the stream ends). Header problems that need no
    body (``InvalidDigest``, a malformed checksum header, ...) are raised here.
    """
    declared = _declared_payload(headers, auth)
    content_md5 = _content_md5(headers)
    algorithm = checksums.algorithm_from_headers(headers)
    checksum_header = _checksum_header(headers, algorithm)
    source = Source(stream, content_length)
    expectations = dict(content_md5=content_md5, checksum_algorithm=algorithm,
                        checksum_header=checksum_header)

    if declared is None or declared == sigv4.UNSIGNED_PAYLOAD:
        return BodyReader(PlainDecoder(source), **expectations)
    if _HEX_SHA256.match(declared):
        return BodyReader(PlainDecoder(source), content_sha256=declared, **expectations)
    if declared in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
        signer = None if declared == STREAMING_UNSIGNED_TRAILER else _signer(auth, declared)
        with_trailers = declared != STREAMING_SIGNED
        decoder = ChunkedDecoder(source, signer, with_trailers,
                                  _declared_trailers(headers) if with_trailers else [])
        return BodyReader(decoder, decoded_length=_decoded_length(headers), **expectations)
    raise s3_errors.NotImplemented(f"x-amz-content-sha256 {declared} is not supported.")
