"""The file backend: segments as immutable files in the data directory, written
atomically, read as streams.

Layout under ``<data_dir>/s3``: ``tmp/`` holds writes in progress; ``objects/<xx>/<hex>``
holds finished segments, named by random ids (never by key), in one of 256 fan-out
directories; a segment's path is ``<xx>/<hex>``. A write goes to a temp file, is fsynced,
renamed into ``objects/`` and the directory fsynced; only then does the caller commit the
metadata row that makes it visible. Writers at about the same time rename into the same
fan-out directory (it moves on every :data:`FAN_OUT_RUN` segments), so one directory fsync
covers several of them (:class:`~eucalite.fsutil.GroupSync`). A crash before the commit
leaves an orphan file, which :meth:`FileBackend.recover` removes at the next start; it can
never leave a visible object with missing or partial data.

Segments are freed (unlinked) as soon as the row naming them is replaced or deleted, while
other requests may still be about to read them: :meth:`FileBackend.read` therefore opens
every segment it will send before it returns (an open file outlives its unlink), and a
segment already gone is :class:`Gone`, for the caller to look the object up again.
"""
from __future__ import annotations

import itertools
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from ... import fsutil
from .base import CHUNK, Backend, Gone, Readable, Stored, TooLarge

#: Segments written into one fan-out directory before the next is used: concurrent writers
#: share a directory (and its fsync) while segments still spread over all 256.
FAN_OUT_RUN = 64



class FileBackend(Backend):
    name = "file"

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

    def owns(self, path: str) -> bool:
        """Every path without a backend's ``name:`` prefix (the paths of rows written
        before there were other backends)."""
        return ":" not in path

    def path(self, relative: str) -> Path:
        return self.objects / relative

    def write(self, reader: Readable, limit: int | None = None) -> Stored:
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

    def copy(self, path: str) -> Stored:
        """A hard link (segments are immutable, so sharing the inode is safe): even a large
        copy moves no data. Falls back to a copy where links fail."""
        name = uuid.uuid4().hex
        source = self.path(path)
        target_relative = self._new_relative(name)
        target = self.objects / target_relative
        try:
            _link_or_copy(source, target, self.tmp / name)
        except FileNotFoundError:
            raise Gone(path) from None
        self._syncs.sync(target.parent)
        return Stored(target_relative, target.stat().st_size)

    def read(self, ranges: list[tuple[str, int, int]]) -> Iterator[bytes]:
        """Every segment in *ranges* is opened before this returns (one descriptor each
        until the stream ends or is closed), so the bytes are those of the version the
        caller looked up even if it is replaced or deleted while they stream."""
        opened: list[tuple] = []
        try:
            for relative, lo, length in ranges:
                try:
                    handle = open(self.path(relative), "rb")
                except FileNotFoundError:
                    raise Gone(relative) from None
                opened.append((handle, lo, length, relative))
        except BaseException:
            for handle, *_ in opened:
                handle.close()
            raise
        return _stream(opened)

    def delete(self, paths: Iterable[str]) -> None:
        for relative in paths:
            self.path(relative).unlink(missing_ok=True)

    def recover(self, referenced: set[str]) -> tuple[int, int]:
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

    def segments(self) -> Iterator[Stored]:
        for directory in self.objects.iterdir():
            if directory.is_dir():
                for entry in directory.iterdir():
                    yield Stored(f"{directory.name}/{entry.name}", entry.stat().st_size)

    def describe(self) -> str:
        return f"object data in files under {self.objects}"


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
