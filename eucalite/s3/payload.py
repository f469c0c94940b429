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
to store.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import BinaryIO, Iterator, Mapping

from werkzeug.exceptions import ClientDisconnected

from .. import integers
from ..auth import EMPTY_SHA256, UNSIGNED_PAYLOAD, V4_ALGORITHM, AuthResult, same_signature
from ..errors import BAD_PAYLOAD, BAD_SIGNATURE, AuthError, AwsError
from . import checksums

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
CHUNK_ALGORITHM = V4_ALGORITHM + "-PAYLOAD"         # chunk string-to-sign, first line
TRAILER_ALGORITHM = V4_ALGORITHM + "-TRAILER"       # trailer string-to-sign, first line
TRAILER_SIGNATURE = "x-amz-trailer-signature"

MAX_LINE = 4096                 # a chunk header or trailer line
MAX_TRAILERS = 16 * 1024        # all trailer lines together
READ_AHEAD = 8192               # what a line read pulls from the stream at a time
READ_ALL_BLOCK = 1024 * 1024    # block size when read() is asked for everything

_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}\Z")
_HEX_SIZE = re.compile(r"^[0-9a-fA-F]{1,16}\Z")


# --- errors ---------------------------------------------------------------------------

def _error(code: str, message: str, status: int = 400, **extra: str) -> AwsError:
    return AwsError(message, code=code, status=status, **extra)


def incomplete_body(message: str = "You did not provide the number of bytes specified by "
                                   "the Content-Length HTTP header.") -> AwsError:
    return _error("IncompleteBody", message)


def invalid_request(message: str) -> AwsError:
    return _error("InvalidRequest", message)


def malformed_trailer(message: str = "The request contained trailing data that was not "
                                     "well-formed or did not conform to our published "
                                     "schema.") -> AwsError:
    return _error("MalformedTrailerError", message)


def bad_digest(what: str) -> AwsError:
    if what == "Content-MD5":
        return _error("BadDigest", "The Content-MD5 you specified did not match what we "
                                   "received.")
    return _error("BadDigest", f"The {what} you specified did not match the calculated "
                               "checksum.")


def _signature_mismatch(string_to_sign: str) -> AuthError:
    error = AuthError(BAD_SIGNATURE, "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.",
                      StringToSign=string_to_sign)
    return error.for_service("s3")


# --- the raw stream -------------------------------------------------------------------

class _Source:
    """The request body as sent: never reads past *length* (None: until the stream ends),
    and a stream that ends before *length* bytes is ``IncompleteBody``."""

    def __init__(self, stream: BinaryIO, length: int | None):
        self._stream = stream
        self._left = length
        self._ended = length == 0
        self._buffer = b""              # read ahead by read_line, at most ~READ_AHEAD bytes

    def _pull(self, n: int) -> bytes:
        """Up to *n* bytes from the stream; b"" once the body is over."""
        if self._ended:
            return b""
        want = n if self._left is None else min(n, self._left)
        try:
            data = self._stream.read(want)
        except ClientDisconnected:      # werkzeug's word for a body cut short
            data = b""
        if not data:
            self._ended = True
            if self._left:
                raise incomplete_body()
            return b""
        if self._left is not None:
            self._left -= len(data)
            self._ended = self._left == 0
        return data

    def read(self, n: int) -> bytes:
        """Up to *n* (> 0) bytes, b"" only at the end of the body."""
        if self._buffer:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
            return data
        return self._pull(n)

    def read_exact(self, n: int) -> bytes:
        """Exactly *n* bytes; IncompleteBody if the body ends first."""
        parts, missing = [], n
        while missing:
            data = self.read(missing)
            if not data:
                raise incomplete_body("The request body ended inside an aws-chunked chunk.")
            parts.append(data)
            missing -= len(data)
        return b"".join(parts)

    def read_line(self) -> bytes | None:
        """The next CRLF-terminated line without its CRLF; None when the body is over."""
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 2:]
                return line
            if len(self._buffer) > MAX_LINE:
                raise invalid_request("An aws-chunked chunk header or trailer line is "
                                      "too long.")
            more = self._pull(READ_AHEAD)
            if not more:
                if self._buffer:
                    raise incomplete_body("The request body ended inside an aws-chunked "
                                          "chunk header.")
                return None
            self._buffer += more

    def expect_end(self) -> None:
        """The body must be over: data after the aws-chunked framing is InvalidRequest."""
        if self._buffer or self._pull(1):
            raise invalid_request("The request body continues after its final aws-chunked "
                                  "chunk and trailers.")


# --- decoders: raw body -> object bytes -----------------------------------------------

class _PlainDecoder:
    """A body that is the object itself."""

    def __init__(self, source: _Source):
        self._source = source
        self.trailers: dict[str, str] = {}

    def read(self, n: int) -> bytes:
        return self._source.read(n)


class _ChunkSigner:
    """Verifies the chain of aws-chunked chunk signatures and the trailer signature."""

    def __init__(self, auth: AuthResult):
        self._key = auth.signing_key
        self._date, self._scope = auth.amz_date, auth.scope
        self._previous = auth.seed_signature

    def _check(self, string_to_sign: str, sent: str | None) -> None:
        expected = hmac.new(self._key, string_to_sign.encode("utf-8"),
                            hashlib.sha256).hexdigest()
        if not sent or not same_signature(expected, sent.lower()):
            raise _signature_mismatch(string_to_sign)
        self._previous = expected

    def verify_chunk(self, sent: str | None, data_sha256: str) -> None:
        """*sent* must sign the chunk whose data hashes to *data_sha256* (hex)."""
        self._check("\n".join([CHUNK_ALGORITHM, self._date, self._scope, self._previous,
                               EMPTY_SHA256, data_sha256]), sent)

    def verify_trailer(self, sent: str | None, trailers: list[tuple[str, str]]) -> None:
        """*sent* must sign the trailer lines, each canonical as ``name:value\\n``."""
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
        self._check("\n".join([TRAILER_ALGORITHM, self._date, self._scope, self._previous,
                               hashlib.sha256(canonical.encode("utf-8")).hexdigest()]), sent)


def _parse_chunk_header(line: bytes) -> tuple[int, str | None]:
    """``<hex-size>[;name=value]...`` -> (size, chunk-signature or None)."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise invalid_request("An aws-chunked chunk header is not ASCII.")
    size_text, _, extensions = text.partition(";")
    if not _HEX_SIZE.match(size_text.strip()):
        raise invalid_request(f"An aws-chunked chunk header has no valid hex size: "
                              f"{text[:80]!r}.")
    signature = None
    for extension in extensions.split(";"):
        name, _, value = extension.partition("=")
        if name.strip().lower() == "chunk-signature":
            signature = value.strip()
    return int(size_text, 16), signature


def _parse_trailer_line(line: bytes) -> tuple[str, str]:
    """``name:value`` -> (lower-case name, trimmed value)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed_trailer()
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise malformed_trailer()
    return name.strip().lower(), value.strip()


class _ChunkedDecoder:
    """An aws-chunked body: ``<hex-size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``...,
    a zero-size chunk, then (trailer modes) ``name:value\\r\\n`` lines and a blank line.

    With a *signer*, every chunk and the trailers must carry valid chained signatures.
    *declared* lists the trailer names ``x-amz-trailer`` announced; each must arrive.
    """

    def __init__(self, source: _Source, signer: _ChunkSigner | None, with_trailers: bool,
                 declared: list[str]):
        self._source = source
        self._signer = signer
        self._with_trailers = with_trailers
        self._declared = declared
        self._left = 0                  # data bytes of the current chunk not yet read
        self._chunk_hash = hashlib.sha256()
        self._chunk_signature: str | None = None
        self._done = False
        self.trailers: dict[str, str] = {}

    def read(self, n: int) -> bytes:
        while not self._left:
            if self._done:
                return b""
            self._open_chunk()
        data = self._source.read(min(n, self._left))
        if not data:
            raise incomplete_body("The request body ended inside an aws-chunked chunk.")
        self._left -= len(data)
        if self._signer:
            self._chunk_hash.update(data)
        if not self._left:
            self._close_chunk()
        return data

    def _open_chunk(self) -> None:
        line = self._source.read_line()
        if line is None:
            raise incomplete_body("The request body ended before the final (zero-size) "
                                  "aws-chunked chunk.")
        size, self._chunk_signature = _parse_chunk_header(line)
        self._chunk_hash = hashlib.sha256()
        if size:
            self._left = size
            return
        self._verify_chunk()
        self._read_trailers()
        self._source.expect_end()
        self._done = True

    def _close_chunk(self) -> None:
        if self._source.read_exact(2) != b"\r\n":
            raise invalid_request("aws-chunked chunk data is longer than its header says "
                                  "(no CRLF after it).")
        self._verify_chunk()

    def _verify_chunk(self) -> None:
        if self._signer:
            self._signer.verify_chunk(self._chunk_signature, self._chunk_hash.hexdigest())

    def _read_trailers(self) -> None:
        lines: list[tuple[str, str]] = []
        total = 0
        while True:
            line = self._source.read_line()
            if line is None or not line.strip():
                break
            total += len(line)
            if total > MAX_TRAILERS:
                raise malformed_trailer("The request's trailers are too large.")
            lines.append(_parse_trailer_line(line))
        if lines and not self._with_trailers:
            raise malformed_trailer("The request body carries trailers but its "
                                    "x-amz-content-sha256 does not announce any.")
        signature = [value for name, value in lines if name == TRAILER_SIGNATURE]
        lines = [(name, value) for name, value in lines if name != TRAILER_SIGNATURE]
        if self._signer and self._with_trailers:
            self._signer.verify_trailer(signature[0] if len(signature) == 1 else None, lines)
        self.trailers = dict(lines)
        missing = [name for name in self._declared if name not in self.trailers]
        if missing:
            raise malformed_trailer(f"The trailer {', '.join(missing)} announced by "
                                    "x-amz-trailer is missing from the request body.")


# --- the reader callers use -----------------------------------------------------------

class BodyReader:
    """The decoded object bytes of one request, verified as they are read.

    ``read(n)`` returns up to *n* bytes (everything left for n < 0), ``b""`` at the end;
    the read that reaches the end checks the whole body and raises what S3 would. Once it
    has returned ``b""``: ``size``, ``md5_hex`` (the ETag), ``checksum_algorithm`` and
    ``checksum_b64`` (None unless the client sent or asked for a checksum) and ``trailers``.
    A reader that raised raises the same error again on every later read.
    """

    def __init__(self, decoder: _PlainDecoder | _ChunkedDecoder, *,
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

    def __iter__(self) -> Iterator[bytes]:
        """Blocks of up to 1 MiB until the (verified) end of the body."""
        return iter(lambda: self.read(READ_ALL_BLOCK), b"")

    def _account(self, data: bytes) -> None:
        self.size += len(data)
        if self._decoded_length is not None and self.size > self._decoded_length:
            raise incomplete_body("The decoded body is longer than x-amz-decoded-content-"
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
            raise incomplete_body(f"The decoded body is {self.size} bytes but "
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
                raise malformed_trailer(f"The trailer {name} does not match the checksum "
                                        f"algorithm {algorithm} the request names.")
            raw = checksums.decode(algorithm, value)
            if raw is None:
                raise invalid_request(f"Value for {name} trailing header is invalid.")
            values.append(raw)
        return values

    def _reject_stray_checksum_trailers(self) -> None:
        for name in self._decoder.trailers:
            if name.startswith(checksums.HEADER_PREFIX):
                raise malformed_trailer(f"The trailer {name} was not announced by "
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
        raise _error("InvalidDigest", "The Content-MD5 you specified was invalid.",
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
        raise invalid_request(f"Value for {name} header is invalid.")
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
        raise invalid_request(f"x-amz-decoded-content-length {value[:40]!r} is not a number.")
    return length


def _signer(auth: AuthResult | None, declared: str) -> _ChunkSigner:
    if auth is None or not (auth.signing_key and auth.seed_signature and auth.amz_date
                            and auth.scope):
        raise invalid_request(f"x-amz-content-sha256 {declared} needs a request signed "
                              "with Signature Version 4.")
    return _ChunkSigner(auth)


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
    source = _Source(stream, content_length)
    expectations = dict(content_md5=content_md5, checksum_algorithm=algorithm,
                        checksum_header=checksum_header)

    if declared is None or declared == UNSIGNED_PAYLOAD:
        return BodyReader(_PlainDecoder(source), **expectations)
    if _HEX_SHA256.match(declared):
        return BodyReader(_PlainDecoder(source), content_sha256=declared, **expectations)
    if declared in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER):
        signer = None if declared == STREAMING_UNSIGNED_TRAILER else _signer(auth, declared)
        with_trailers = declared != STREAMING_SIGNED
        decoder = _ChunkedDecoder(source, signer, with_trailers,
                                  _declared_trailers(headers) if with_trailers else [])
        return BodyReader(decoder, decoded_length=_decoded_length(headers), **expectations)
    raise _error("NotImplemented", f"x-amz-content-sha256 {declared} is not supported.",
                 status=501)
