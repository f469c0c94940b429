"""Object data on disk: immutable segment files, written atomically, read as streams.

Layout under ``<data_dir>/s3``: ``tmp/`` holds writes in progress; ``objects/<xx>/<hex>``
holds finished segments, named by random ids (never by key), in one of 256 fan-out
directories. A write goes to a temp file, is fsynced, renamed into ``objects/`` and the
directory fsynced; only then does the caller commit the metadata row that makes it
visible. Writers at about the same time rename into the same fan-out directory (it moves
on every :data:`FAN_OUT_RUN` segments), so one directory fsync covers several of them
(:class:`~eucalite.fsutil.GroupSync`). A crash before the commit leaves an orphan
file, which :meth:`ObjectStore.recover` removes at the next start; it can never leave a
visible object with missing or partial data.

Segments are freed (unlinked) as soon as the row naming them is replaced or deleted, while
other requests may still be about to read them: :meth:`ObjectStore.read` therefore opens
every segment it will send before it returns (an open file outlives its unlink), and a
segment already gone is :class:`Gone`, for the caller to look the object up again.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from .. import fsutil


# Bytes read and written per step. Each stream holds about one chunk at a time, so it is
# what many concurrent large transfers cost in memory (8 streams: 8 of them beside the HTTP
# server's own buffers); 256 KiB is already past the size where a bigger step is faster.
CHUNK = 256 * 1024

#: Segments written into one fan-out directory before the next is used: concurrent writers
#: share a directory (and its fsync) while segments still spread over all 256.
FAN_OUT_RUN = 64


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class Stored:
    """A finished segment: its path relative to the store, and its size."""

    path: str
    size: int


class ObjectStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._made: set[str] = set()       # objects/<xx> directories known to exist
        self._syncs = fsutil.GroupSync(fsutil.fsync_dir)
        # a random start, so that each run does not begin by filling objects/00
        self._written = itertools.count(random.randrange(256 * FAN_OUT_RUN))

    def path(self, relative: str) -> Path:
        return self.objects / relative

    def write(self, reader: Readable, limit: int | None = None) -> Stored:
        """Stream *reader* to a new segment; returns it once durable on disk.

        *reader* may raise (bad checksum, client gone): then the temp file is removed and the
        exception propagates, so nothing partial is ever left. More than *limit* bytes raises
        ``EntityTooLarge``-style ValueError for the caller to map.
        """
        name = uuid.uuid4().hex
        temp = self.tmp / name
        size = 0
        try:
            with open(temp, "wb") as handle:
                while True:
                    chunk = reader.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if limit is not None and size > limit:
                        raise TooLarge(limit)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            return Stored(self._publish(temp, name), size)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _publish(self, temp: Path, name: str) -> str:
        relative = self._new_relative(name)
        final = self.objects / relative
        os.replace(temp, final)
        self._syncs.sync(final.parent)
        return relative

    def _new_relative(self, name: str) -> str:
        """``<xx>/<name>`` in the fan-out directory now in use, made if it has to be (once
        per process: a mkdir per write is a system call each small PUT can do without)."""
        fan_out = f"{next(self._written) // FAN_OUT_RUN % 256:02x}"
        if fan_out not in self._made:
            (self.objects / fan_out).mkdir(exist_ok=True)
            self._made.add(fan_out)
        return f"{fan_out}/{name}"

    def link(self, relative: str) -> Stored:
        """A new name for an existing segment (CopyObject of a whole object copies nothing:
        segments are immutable, so sharing the inode is safe). Falls back to a copy.
        :class:`Gone` when the segment was freed meanwhile."""
        name = uuid.uuid4().hex
        source = self.path(relative)
        target_relative = self._new_relative(name)
        target = self.objects / target_relative
        try:
            _link_or_copy(source, target, self.tmp / name)
        except FileNotFoundError:
            raise Gone(relative) from None
        self._syncs.sync(target.parent)
        return Stored(target_relative, target.stat().st_size)

    def read(self, segments: Iterable[tuple[str, int]], start: int = 0,
             end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of the concatenated segments, in chunks.

        Every segment in the range is opened before this returns (one descriptor each
        until the stream ends or is closed), so the bytes are those of the version the
        caller looked up even if it is replaced or deleted while they stream.
        :class:`Gone` when a segment was already freed.
        """
        opened: list[tuple] = []
        try:
            offset = 0
            for relative, size in segments:
                seg_start, seg_end = offset, offset + size - 1
                offset += size
                if size == 0 or seg_end < start or (end is not None and seg_start > end):
                    continue
                lo = max(start - seg_start, 0)
                hi = size - 1 if end is None else min(end - seg_start, size - 1)
                try:
                    handle = open(self.path(relative), "rb")
                except FileNotFoundError:
                    raise Gone(relative) from None
                opened.append((handle, lo, hi - lo + 1, relative))
        except BaseException:
            for handle, *_ in opened:
                handle.close()
            raise
        return _stream(opened)

    def reader(self, segments: Iterable[tuple[str, int]], start: int = 0,
               end: int | None = None) -> "HashingReader":
        """A file-like view of a byte range that also computes its MD5 (UploadPartCopy)."""
        return HashingReader(self.read(list(segments), start, end))

    def delete(self, paths: Iterable[str]) -> None:
        for relative in paths:
            self.path(relative).unlink(missing_ok=True)

    def recover(self, referenced: set[str]) -> tuple[int, int]:
        """Remove unfinished temp files and segments no metadata row references.

        Call only at start-up, before any request is served. Returns (temp, orphans) counts.
        """
        temps = 0
        for entry in self.tmp.iterdir():
            entry.unlink(missing_ok=True)
            temps += 1
        orphans = 0
        for directory in self.objects.iterdir():
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if f"{directory.name}/{entry.name}" not in referenced:
                    entry.unlink(missing_ok=True)
                    orphans += 1
        return temps, orphans

    def usage(self) -> int:
        """Bytes used by finished segments (for reports and benchmarks)."""
        return sum(entry.stat().st_size for directory in self.objects.iterdir()
                   if directory.is_dir() for entry in directory.iterdir())


def _link_or_copy(source: Path, target: Path, temp: Path) -> None:
    """Hard-link *source* as *target*; copy it (through *temp*) where links fail."""
    try:
        os.link(source, target)
        return
    except FileNotFoundError:
        raise
    except OSError:                     # a file system without hard links
        pass
    try:
        shutil.copyfile(source, temp)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _stream(opened: list[tuple]) -> Iterator[bytes]:
    """The chunks of already opened (handle, offset, length, name) ranges, in order; every
    handle is closed when the stream ends, fails or is closed early (client gone)."""
    try:
        for handle, lo, remaining, relative in opened:
            handle.seek(lo)
            while remaining > 0:
                chunk = handle.read(min(CHUNK, remaining))
                if not chunk:
                    raise IOError(f"segment {relative} is shorter than recorded")
                remaining -= len(chunk)
                yield chunk
    finally:
        for handle, *_ in opened:
            handle.close()


class Gone(FileNotFoundError):
    """A segment a metadata row named is no longer on disk: the row was replaced or
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
