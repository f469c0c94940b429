"""The raw body of an S3 request and its ``aws-chunked`` framing, below
:mod:`eucalite.s3.payload`'s verifying reader.

* :class:`Source` - the body as sent, never read past Content-Length; a body that ends early
  is ``IncompleteBody``.
* :class:`PlainDecoder` - an unframed body, passed through.
* :class:`ChunkedDecoder` - ``<hex-size>;chunk-signature=...CRLF<data>CRLF`` chunks up to the
  zero-size one, then trailer lines; with a :class:`ChunkSigner` each chunk's signature (and
  the trailers') is checked, chained from the request's seed signature as SigV4 defines it.
"""
from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from werkzeug.exceptions import ClientDisconnected

from .. import sigv4
from ..auth import AuthResult
from ..errors import BAD_SIGNATURE, AuthError
from ..errors.s3 import IncompleteBody, InvalidRequest, MalformedTrailerError

CHUNK_ALGORITHM = sigv4.V4_ALGORITHM + "-PAYLOAD"       # chunk string-to-sign, first line
TRAILER_ALGORITHM = sigv4.V4_ALGORITHM + "-TRAILER"     # trailer string-to-sign, first line
TRAILER_SIGNATURE = "x-amz-trailer-signature"

MAX_LINE = 4096                 # a chunk header or trailer line
MAX_TRAILERS = 16 * 1024        # all trailer lines together
READ_AHEAD = 8192               # what a line read pulls from the stream at a time

_HEX_SIZE = re.compile(r"^[0-9a-fA-F]{1,16}\Z")


def _signature_mismatch(string_to_sign: str) -> AuthError:
    error = AuthError(BAD_SIGNATURE, "The request signature we calculated does not match the "
                      "signature you provided. Check your key and signing method.",
                      StringToSign=string_to_sign)
    return error.for_service("s3")


# --- the raw stream -------------------------------------------------------------------

class Source:
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
                raise IncompleteBody()
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
                raise IncompleteBody("The request body ended inside an aws-chunked chunk.")
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
                raise InvalidRequest("An aws-chunked chunk header or trailer line is "
                                     "too long.")
            more = self._pull(READ_AHEAD)
            if not more:
                if self._buffer:
                    raise IncompleteBody("The request body ended inside an aws-chunked "
                                         "chunk header.")
                return None
            self._buffer += more

    def expect_end(self) -> None:
        """The body must be over: data after the aws-chunked framing is InvalidRequest."""
        if self._buffer or self._pull(1):
            raise InvalidRequest("The request body continues after its final aws-chunked "
                                 "chunk and trailers.")


# --- decoders: raw body -> object bytes -----------------------------------------------

class PlainDecoder:
    """A body that is the object itself."""

    def __init__(self, source: Source):
        self._source = source
        self.trailers: dict[str, str] = {}

    def read(self, n: int) -> bytes:
        return self._source.read(n)


class ChunkSigner:
    """Verifies the chain of aws-chunked chunk signatures and the trailer signature."""

    def __init__(self, auth: AuthResult):
        self._key = auth.signing_key
        self._date, self._scope = auth.amz_date, auth.scope
        self._previous = auth.seed_signature

    def _check(self, string_to_sign: str, sent: str | None) -> None:
        expected = sigv4.signature(self._key, string_to_sign)
        if not sent or not sigv4.same_signature(expected, sent.lower()):
            raise _signature_mismatch(string_to_sign)
        self._previous = expected

    def verify_chunk(self, sent: str | None, data_sha256: str) -> None:
        """*sent* must sign the chunk whose data hashes to *data_sha256* (hex)."""
        self._check("\n".join([CHUNK_ALGORITHM, self._date, self._scope, self._previous,
                               sigv4.EMPTY_SHA256, data_sha256]), sent)

    def verify_trailer(self, sent: str | None, trailers: list[tuple[str, str]]) -> None:
        """*sent* must sign the trailer lines, each canonical as ``name:value\\n``."""
        canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
        self._check("\n".join([TRAILER_ALGORITHM, self._date, self._scope, self._previous,
                               hashlib.sha256(canonical.encode("utf-8")).hexdigest()]), sent)


def parse_chunk_header(line: bytes) -> tuple[int, str | None]:
    """``<hex-size>[;name=value]...`` -> (size, chunk-signature or None)."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("An aws-chunked chunk header is not ASCII.")
    size_text, _, extensions = text.partition(";")
    if not _HEX_SIZE.match(size_text.strip()):
        raise InvalidRequest(f"An aws-chunked chunk header has no valid hex size: "
                             f"{text[:80]!r}.")
    signature = None
    for extension in extensions.split(";"):
        name, _, value = extension.partition("=")
        if name.strip().lower() == "chunk-signature":
            signature = value.strip()
    return int(size_text, 16), signature


def parse_trailer_line(line: bytes) -> tuple[str, str]:
    """``name:value`` -> (lower-case name, trimmed value)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedTrailerError()
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise MalformedTrailerError()
    return name.strip().lower(), value.strip()


class ChunkedDecoder:
    """An aws-chunked body: ``<hex-size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``...,
    a zero-size chunk, then (trailer modes) ``name:value\\r\\n`` lines and a blank line.

    With a *signer*, every chunk and the trailers must carry valid chained signatures.
    *declared* lists the trailer names ``x-amz-trailer`` announced; each must arrive.
    """

    def __init__(self, source: Source, signer: ChunkSigner | None, with_trailers: bool,
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
            raise IncompleteBody("The request body ended inside an aws-chunked chunk.")
        self._left -= len(data)
        if self._signer:
            self._chunk_hash.update(data)
        if not self._left:
            self._close_chunk()
        return data

    def _open_chunk(self) -> None:
        line = self._source.read_line()
        if line is None:
            raise IncompleteBody("The request body ended before the final (zero-size) "
                                 "aws-chunked chunk.")
        size, self._chunk_signature = parse_chunk_header(line)
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
            raise InvalidRequest("aws-chunked chunk data is longer than its header says "
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
                raise MalformedTrailerError("The request's trailers are too large.")
            lines.append(parse_trailer_line(line))
        if lines and not self._with_trailers:
            raise MalformedTrailerError("The request body carries trailers but its "
                                        "x-amz-content-sha256 does not announce any.")
        signature = [value for name, value in lines if name == TRAILER_SIGNATURE]
        lines = [(name, value) for name, value in lines if name != TRAILER_SIGNATURE]
        if self._signer and self._with_trailers:
            self._signer.verify_trailer(signature[0] if len(signature) == 1 else None, lines)
        self.trailers = dict(lines)
        missing = [name for name in self._declared if name not in self.trailers]
        if missing:
            raise MalformedTrailerError(f"The trailer {', '.join(missing)} announced by "
                                        "x-amz-trailer is missing from the request body.")
