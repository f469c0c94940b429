"""The snapshot chunk engine: incremental EBS snapshots kept in the object store.

A volume is a sparse raw file. A snapshot of it is a map *chunk index -> (sha256 digest,
size)*; the chunk bytes live in the object store (Walrus), one object per chunk, kept by
:class:`eucalite.ebs.chunkstore.ChunkStore`. Chunks are content-addressed, so a chunk that
did not change since an earlier snapshot (or that another volume happens to share) is
stored once; a chunk object is deleted only when no snapshot lists it any more (the
caller, which owns the tables, decides which those are, and :func:`delete_unreferenced`
removes the rest).

This module holds:

* :func:`data_ranges`: the allocated extents of a sparse file, so holes are never read;
* :func:`snapshot`: chunk, hash and upload what is new; all-zero chunks are left out;
* :func:`restore`: rebuild a sparse volume file from a chunk map, atomically;
* :func:`delete_unreferenced`: garbage-collect chunks no snapshot lists.

Consistency is the caller's business: :func:`snapshot` reads the file as it is while it
runs, so the caller pauses the guest (or snapshots a copy) for a crash-consistent image.
Everything here needs a Flask app context (the object store's metadata is in the database).
"""
from __future__ import annotations

import collections
import errno
import functools
import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .. import fsutil
from .chunkstore import ChunkCorrupt, ChunkStore

CHUNK_SIZE = 4 * 2**20
# Restore writes a chunk in blocks of this size and skips the all-zero ones, so a chunk only
# partly written in the volume is only partly allocated in the restored file.
SPARSE_BLOCK = 64 * 1024
_ZERO_BLOCK = bytes(SPARSE_BLOCK)
# Chunk uploads in flight at once: each waits mostly on fsyncs (segment, directory, database
# commit), which overlap well; memory held is about this many chunks.
UPLOAD_WORKERS = 4

ChunkMap = dict[int, tuple[str, int]]
Progress = Callable[[int], None]


class SnapshotStopped(Exception):
    """``should_stop()`` said stop. *stored* holds the digests this run added to the store:
    no snapshot lists them yet, so the caller may pass them to :func:`delete_unreferenced`."""

    def __init__(self, stored: set[str]):
        super().__init__(f"snapshot stopped ({len(stored)} new chunks stored)")
        self.stored = stored


# --- sparse files ---------------------------------------------------------------------------

def data_ranges(path: str | os.PathLike) -> list[tuple[int, int]]:
    """The file's data extents as sorted, disjoint ``(start, end)`` byte ranges (end
    exclusive), found with ``SEEK_DATA``/``SEEK_HOLE``; everything outside them reads as
    zeros. Where the platform or filesystem cannot tell, the whole file is one range.
    Extents are as the filesystem reports them (block-granular, and preallocated blocks
    count as data), so a range may hold zeros, never the reverse."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _data_ranges(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    if size == 0:
        return []
    if not hasattr(os, "SEEK_DATA"):
        return [(0, size)]
    ranges: list[tuple[int, int]] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:          # no data past offset: a trailing hole
                break
            if error.errno in (errno.EINVAL, errno.EOPNOTSUPP) and not ranges:
                return [(0, size)]
            raise
        if start >= size:
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        ranges.append((start, end))
        offset = end
    return ranges


def _chunk_pieces(ranges: list[tuple[int, int]], chunk_size: int
                  ) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """``(chunk index, [(start, end), ...])``: the data ranges cut at chunk boundaries and
    grouped by chunk, in order; chunks wholly in holes do not appear."""
    index, pieces = -1, []
    for start, end in ranges:
        while start < end:
            here = start // chunk_size
            stop = min(end, (here + 1) * chunk_size)
            if here != index:
                if pieces:
                    yield index, pieces
                index, pieces = here, []
            pieces.append((start, stop))
            start = stop
    if pieces:
        yield index, pieces


@functools.lru_cache(maxsize=8)
def _zero_digest(size: int) -> str:
    """sha256 of *size* zero bytes: a chunk hashing to it is all zeros (and is left out)."""
    return hashlib.sha256(bytes(size)).hexdigest()


# --- snapshot -------------------------------------------------------------------------------

@dataclass
class SnapshotResult:
    """*chunks*: index -> (digest, size) of every chunk not all zeros; *stored_bytes*: bytes
    this run added to the store (chunks it was first to store); *read_bytes*: bytes read
    from the volume file (its data ranges only)."""

    chunks: ChunkMap = field(default_factory=dict)
    stored_bytes: int = 0
    read_bytes: int = 0


class _Percent:
    """Calls *progress* with a whole percent, only when it changes."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.last = progress, total, -1

    def __call__(self, done: int) -> None:
        if self.progress is None:
            return
        percent = 100 if self.total <= 0 else min(100, done * 100 // self.total)
        if percent != self.last:
            self.last = percent
            self.progress(percent)


def snapshot(path: str | os.PathLike, *, chunk_size: int = CHUNK_SIZE,
             previous: dict[int, str] | None = None, chunks: ChunkStore,
             progress: Progress | None = None,
             should_stop: Callable[[], bool] | None = None,
             workers: int = UPLOAD_WORKERS) -> SnapshotResult:
    """Snapshot the volume file at *path* into *chunks*.

    Reads only the file's data ranges; a chunk wholly in holes, or all zeros, is left out of
    the result (restoring leaves it sparse). Every other chunk is hashed and uploaded unless
    the store has it already; *previous* (index -> digest of the volume's previous snapshot)
    saves the store lookup for chunks unchanged since, so it must name a snapshot whose
    chunks stay stored until this one is recorded. ``progress(percent)`` is called as data
    ranges are processed; ``should_stop()``, checked between chunks, aborts the run with
    :class:`SnapshotStopped`. Up to *workers* uploads run at once on threads of their own
    (1: all in the calling thread).

    The file is read as it is while this runs, without any lock: for a consistent snapshot
    the caller pauses the guest or snapshots a copy. On any error, chunks already uploaded
    stay in the store unreferenced (``SnapshotStopped.stored`` lists them when stopped;
    :meth:`ChunkStore.digests` finds them for a sweep).
    """
    previous = previous or {}
    result = SnapshotResult()
    seen: set[str] = set()              # digests in the store, or on their way there
    fd = os.open(path, os.O_RDONLY)
    try:
        with _Uploader(chunks, workers) as uploader:
            size = os.fstat(fd).st_size
            ranges = _data_ranges(fd, size)
            report = _Percent(progress, sum(end - start for start, end in ranges))
            report(0)
            buffer = bytearray(chunk_size)
            for index, pieces in _chunk_pieces(ranges, chunk_size):
                if should_stop is not None and should_stop():
                    uploader.finish()
                    raise SnapshotStopped(uploader.stored)
                length = min(chunk_size, size - index * chunk_size)
                data = _read_chunk(fd, buffer, index * chunk_size, length, pieces)
                result.read_bytes += sum(end - start for start, end in pieces)
                digest = hashlib.sha256(data).hexdigest()
                if digest != _zero_digest(length):
                    result.chunks[index] = (digest, length)
                    # unchanged since the previous snapshot, or met earlier in this one
                    if previous.get(index) != digest and digest not in seen:
                        uploader.submit(digest, bytes(data))
                        seen.add(digest)
                report(result.read_bytes)
            uploader.finish()
            result.stored_bytes = uploader.stored_bytes
        report(result.read_bytes)
    finally:
        os.close(fd)
    return result


class _Uploader:
    """Puts chunks into a ChunkStore, up to *workers* at once on threads (each with its own
    app context and database session), and counts what was new to the store. ``submit``
    blocks while *workers* are busy, so memory stays bounded; an upload's error is raised
    from a later ``submit`` or from ``finish``. Leaving the ``with`` block waits for every
    upload in flight, so none outlives the call."""

    def __init__(self, chunks: ChunkStore, workers: int):
        self.chunks, self.workers = chunks, max(1, workers)
        self.pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        self.pending: collections.deque = collections.deque()
        self.stored: set[str] = set()
        self.stored_bytes = 0

    def submit(self, digest: str, data: bytes) -> None:
        if self.pool is None:
            self._count(digest, len(data), self.chunks.put_hashed(digest, data))
            return
        while len(self.pending) >= self.workers:
            self._collect_oldest()
        future = self.pool.submit(self.chunks.put_hashed_in_context, digest, data)
        self.pending.append((digest, len(data), future))

    def _collect_oldest(self) -> None:
        digest, size, future = self.pending.popleft()
        self._count(digest, size, future.result())

    def _count(self, digest: str, size: int, was_new: bool) -> None:
        if was_new:
            self.stored.add(digest)
            self.stored_bytes += size

    def finish(self) -> None:
        """Wait for every upload; raise the first one's error."""
        while self.pending:
            self._collect_oldest()

    def __enter__(self) -> "_Uploader":
        return self

    def __exit__(self, *exc_info) -> None:
        # On an error: let the uploads in flight end (their own errors are dropped, the
        # first error is already on its way) so nothing runs on after snapshot() returns.
        for digest, size, future in self.pending:
            try:
                self._count(digest, size, future.result())
            except Exception:
                pass
        self.pending.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def _read_chunk(fd: int, buffer: bytearray, offset: int, length: int,
                pieces: list[tuple[int, int]]) -> memoryview:
    """The chunk at *offset* as a view of *buffer*: its data *pieces* read from the file,
    zeros elsewhere (holes are not read). A piece cut short (the file shrank meanwhile)
    reads as zeros past its end."""
    view = memoryview(buffer)[:length]
    if sum(end - start for start, end in pieces) < length:
        view[:] = bytes(length)
    for start, end in pieces:
        target = view[start - offset:end - offset]
        done = 0
        while done < len(target):
            count = os.preadv(fd, [target[done:]], start + done)
            if count == 0:
                target[done:] = bytes(len(target) - done)
                break
            done += count
    return view


# --- restore --------------------------------------------------------------------------------

def restore(path: str | os.PathLike, size_bytes: int, chunk_map: ChunkMap,
            chunks: ChunkStore, progress: Progress | None = None, *,
            chunk_size: int = CHUNK_SIZE) -> None:
    """Write the volume a snapshot describes to *path*: a sparse file of *size_bytes* with
    each chunk of *chunk_map* (index -> (digest, size)) at ``index * chunk_size`` and zeros
    (holes) elsewhere.

    The file is built at a temporary name beside *path*, fsynced and renamed over *path*,
    so *path* only ever holds a whole volume (or what it held before). A chunk that is
    missing or corrupt raises :class:`~eucalite.ebs.chunkstore.ChunkError` and leaves
    nothing behind.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f".{os.path.basename(path)}.restore-{uuid.uuid4().hex[:8]}")
    total = sum(size for _digest, size in chunk_map.values())
    report = _Percent(progress, total)
    report(0)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size_bytes)
        done = 0
        for index in sorted(chunk_map):
            digest, size = chunk_map[index]
            offset = index * chunk_size
            if offset + size > size_bytes:
                raise ValueError(f"chunk {index} ({size} bytes) lies past the volume's end")
            data = chunks.get(digest)
            if len(data) != size:
                raise ChunkCorrupt(digest, f"{len(data)} bytes stored, {size} recorded")
            _write_sparse(fd, data, offset)
            done += size
            report(done)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    fsutil.fsync_dir(directory)


def _write_sparse(fd: int, data: bytes, offset: int) -> None:
    """Write *data* at *offset*, skipping all-zero blocks (they stay holes); each run of
    blocks with data goes in one write."""
    view = memoryview(data)
    run = None                                  # where the current run of data blocks began
    for position in range(0, len(data), SPARSE_BLOCK):
        block = data[position:position + SPARSE_BLOCK]
        if block != _ZERO_BLOCK[:len(block)]:
            if run is None:
                run = position
        elif run is not None:
            _pwrite_all(fd, view[run:position], offset + run)
            run = None
    if run is not None:
        _pwrite_all(fd, view[run:], offset + run)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while len(view):
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


# --- garbage collection ---------------------------------------------------------------------

def delete_unreferenced(candidate_digests: set[str], still_referenced: set[str],
                        chunks: ChunkStore) -> int:
    """Delete every candidate chunk that is not in *still_referenced*; returns how many
    candidates that was. The caller computes *still_referenced* from the tables after
    removing the snapshot rows that listed the candidates, and must keep concurrent
    snapshots (which may have found a candidate already stored) counted as referencing."""
    doomed = set(candidate_digests) - set(still_referenced)
    for digest in sorted(doomed):
        chunks.delete(digest)
    return len(doomed)
