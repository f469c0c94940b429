"""Directory fsyncs shared by concurrent writers (a group commit for directory entries).

A new segment is durable only once the directory holding its name is fsynced. Writers that
rename into the same directory at about the same time need not each pay for a flush of
their own: one fsync of the directory that *starts* after a writer's rename covers that
writer's entry, whoever called it. :class:`DirSyncs` hands each caller such a flush — its
own, or one another caller starts after it arrived — and returns only when it has ended.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from .. import fsutil


class _Directory:
    """The flushes of one directory: tickets handed out, and up to which one is covered."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.arrived = 0            # tickets handed out (one per caller, in arrival order)
        self.covered = 0            # every ticket up to this one is flushed
        self.running = False        # a flush is under way


class DirSyncs:
    """``sync(directory)``: returns once a flush of *directory* that began after the call
    has ended. *flush* is the fsync (a parameter so tests can watch it)."""

    def __init__(self, flush: Callable[[Path], None] = fsutil.fsync_dir) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._directories: dict[Path, _Directory] = {}

    def sync(self, directory: Path) -> None:
        with self._lock:
            state = self._directories.setdefault(directory, _Directory())
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
                    self._flush(directory)
                except BaseException:
                    state.changed.acquire()
                    state.running = False
                    state.changed.notify_all()      # a waiter leads the next attempt
                    raise
                state.changed.acquire()
                state.running = False
                state.covered = max(state.covered, upto)
                state.changed.notify_all()

    def waiting(self, directory: Path) -> int:
        """Callers that arrived for *directory* and are not covered yet (for tests)."""
        state = self._directories.get(directory)
        if state is None:
            return 0
        with state.changed:
            return state.arrived - state.covered
