"""The contract every Walrus data backend keeps, and the types it speaks in.

A backend holds *segments*: immutable byte strings, each written once by :meth:`Backend.write`
and named by the path it returns (a string the metadata rows record, unique across
backends: each backend's paths are recognisably its own, see :meth:`Backend.owns`). The
database says which segments make an object; a backend knows nothing of buckets, keys,
accounts, ACLs or versions, and holds no key material (SSE keys stay in the data
directory, :mod:`eucalite.s3.sse`).

The rules every backend keeps:

* :meth:`~Backend.write` returns only once the segment is durable; on any failure (the
  reader's, the backend's, too large) nothing of it is left, and the error propagates.
  The caller records the segment's row after the write, and deletes the segment if that
  fails, so a visible object never lacks its data.
* A backend that cannot be reached raises :class:`eucalite.errors.s3.ServiceUnavailable`
  (503) naming itself and what failed, never something that becomes a 500.
* :meth:`~Backend.read` raises :class:`Gone` before it returns when the first segment it
  must send was freed (the caller looks the object up again), and keeps the bytes of the
  version the caller looked up even if that is replaced or deleted while they stream
  (each backend says how).
* :meth:`~Backend.delete` runs after the commit that freed the segments: it never raises
  for a missing segment or an unreachable backend (what it could not delete, start-up
  recovery removes).
* :meth:`~Backend.recover` runs at start-up, before requests: it removes what no row names
  (unfinished writes, orphan segments) and logs rather than raises when the backend is down.
"""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

# Bytes read and written per step. Each stream holds about one chunk at a time, so it is
# what many concurrent large transfers cost in memory (8 streams: 8 of them beside the HTTP
# server's own buffers); 256 KiB is already past the size where a bigger step is faster.
CHUNK = 256 * 1024


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Stored:
    """A finished segment: the path that names it (in its backend), and its size."""

    path: str
    size: int


class Backend(abc.ABC):
    """Where segments live. See the module docstring for the rules every method keeps."""

    #: The name buckets record (``Bucket.backend``) and the config's ``s3_backend`` uses.
    name: str

    @abc.abstractmethod
    def owns(self, path: str) -> bool:
        """Whether *path* names a segment of this backend."""

    @abc.abstractmethod
    def write(self, reader: Readable, limit: int | None = None) -> Stored:
        """Stream *reader* into a new segment, returned once durable. More than *limit*
        bytes raises :class:`TooLarge`; nothing partial is left on any error."""

    @abc.abstractmethod
    def copy(self, path: str) -> Stored:
        """A new segment with the bytes of segment *path*, made inside the backend (no data
        through this process where the backend can avoid it). :class:`Gone` when *path*
        was freed meanwhile."""

    @abc.abstractmethod
    def read(self, ranges: list[tuple[str, int, int]]) -> Iterator[bytes]:
        """The bytes of each (path, offset, length) range in order, in chunks of at most
        :data:`CHUNK`. :class:`Gone` (raised before this returns) when the first was freed.
        Closing the iterator early releases whatever it holds."""

    @abc.abstractmethod
    def delete(self, paths: Iterable[str]) -> None:
        """Free segments (missing ones are no error; never raises for the backend)."""

    @abc.abstractmethod
    def recover(self, referenced: set[str]) -> tuple[int, int]:
        """Remove unfinished writes and segments of this backend not in *referenced*.
        Start-up only. Returns (unfinished writes, orphan segments) removed."""

    @abc.abstractmethod
    def segments(self) -> Iterator[Stored]:
        """Every finished segment held (for usage, checks and tests), in no order."""

    def usage(self) -> int:
        """Bytes held by finished segments (reports and benchmarks)."""
        return sum(segment.size for segment in self.segments())

    @abc.abstractmethod
    def describe(self) -> str:
        """One line for the serve banner: where the data is, and whether it is reachable."""


def ranges_of(segments: Iterable[tuple[str, int]], start: int = 0,
              end: int | None = None) -> list[tuple[str, int, int]]:
    """The (path, offset, length) pieces of the concatenated *segments* that make bytes
    ``start..end`` (inclusive; *end* None: to the end); empty segments are skipped."""
    ranges, offset = [], 0
    for path, size in segments:
        seg_start, seg_end = offset, offset + size - 1
        offset += size
        if size == 0 or seg_end < start or (end is not None and seg_start > end):
            continue
        lo = max(start - seg_start, 0)
        hi = size - 1 if end is None else min(end - seg_start, size - 1)
        ranges.append((path, lo, hi - lo + 1))
    return ranges


class Gone(FileNotFoundError):
    """A segment a metadata row named is no longer in its backend: the row was replaced or
    deleted after the caller read it. Look the object up again."""

    def __init__(self, relative: str):
        super().__init__(f"segment {relative} was freed")
        self.relative = relative


class TooLarge(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class HashingReader:
    """Adapts an iterator of chunks to ``read(n)`` while computing MD5 and size."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""
        self.md5 = hashlib.md5()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        self.md5.update(data)
        self.size += len(data)
        return data

    @property
    def md5_hex(self) -> str:
        return self.md5.hexdigest()
