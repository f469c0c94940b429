"""File-system steps that make a write durable, shared by every role that keeps files."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush *directory*'s entries, so a file just created or renamed in it survives a
    crash (fsync on the file alone does not persist its name)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fdatasync_file(path: str | os.PathLike) -> None:
    """Flush the data of the file at *path* (whoever wrote it, through whichever
    descriptor: the flush is of the file, not of a descriptor). A file that is gone has
    nothing left to flush."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


class _Flushes:
    """The flushes of one path: tickets handed out, and up to which one is covered."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.arrived = 0            # tickets handed out (one per caller, in arrival order)
        self.covered = 0            # every ticket up to this one is flushed
        self.running = False        # a flush is under way


class GroupSync:
    """Flushes shared by concurrent callers (a group commit): ``sync(path)`` returns once a
    flush of *path* that began after the call has ended — the caller's own, or one another
    caller started after it arrived. Writers that changed the same file or directory at
    about the same time then pay for one fsync instead of one each, and each still returns
    only when its change is on disk. *flush* is the fsync (:func:`fsync_dir`,
    :func:`fdatasync_file`; a parameter so tests can watch it)."""

    def __init__(self, flush: Callable[[Path], None]) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._paths: dict[Path, _Flushes] = {}

    def sync(self, path: Path) -> None:
        with self._lock:
            state = self._paths.setdefault(path, _Flushes())
        with state.changed:
            state.arrived += 1
            ticket = state.arrived
            while state.covered < ticket:
                if state.running:
                    state.changed.wait()
                    continue
                # Lead a flush for every caller that has arrived so far.
                state.running = True
                upto = state.arrived
                state.changed.release()
                try:
                    self._flush(path)
                except BaseException:
                    state.changed.acquire()
                    state.running = False
                    state.changed.notify_all()      # a waiter leads the next attempt
                    raise
                state.changed.acquire()
                state.running = False
                state.covered = max(state.covered, upto)
                state.changed.notify_all()

    def waiting(self, path: Path) -> int:
        """Callers that arrived for *path* and are not covered yet (for tests)."""
        state = self._paths.get(path)
        if state is None:
            return 0
        with state.changed:
            return state.arrived - state.covered
