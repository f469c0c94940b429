"""Locks on a data directory (advisory ``flock``; the kernel drops them when their holder dies).

* :func:`hold_server_lock` — one ``eucalite serve`` per data directory: the server takes it
  before touching anything and holds it for its whole life (its worker inherits it).
* :func:`secret_key` — a 256-bit key kept in a file of the data directory, made (0600) on
  first use; the first of racing writers wins and every process reads its key.
* :func:`store_writer` / :func:`recovery_lock` — the object store's writers hold the store
  lock shared while they write; start-up recovery, which deletes unfinished writes, holds it
  exclusive, so it never runs while another process (a `eucalite image import`, a previous
  worker not yet dead) may still be writing.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from pathlib import Path
from typing import Callable, Iterator

SERVER_LOCK = "server.lock"
STORE_LOCK = "store.lock"


class InUse(RuntimeError):
    """Another live process holds the data directory's server lock."""


def _open(data_dir: str | os.PathLike, name: str) -> int:
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_CLOEXEC: programs the server runs (qemu-img, tgtadm...) must not keep a lock alive
    return os.open(directory / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def secret_key(data_dir: str | os.PathLike, name: str) -> bytes:
    """The 256-bit key in file *name* of *data_dir*, made on first use (mode 0600): written
    to a private temp file then hard-linked into place, so racing processes agree on the
    first writer's key and a crash leaves either no key file or a whole one."""
    path = Path(data_dir) / name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(partial, path)          # the first writer wins; the others read its key
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return path.read_bytes()


def hold_server_lock(data_dir: str | os.PathLike) -> int:
    """Take the data directory's server lock and record this pid in it; returns the open
    descriptor, to keep open while serving. Raises :class:`InUse` naming the holder's pid
    when another process serves this data directory."""
    fd = _open(data_dir, SERVER_LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise InUse(f"data dir {Path(data_dir)} in use by pid {holder} (another eucalite "
                    f"serve); stop it first") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def store_writer(data_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the store lock shared while writing objects from outside the server; waits
    while a server recovers the store."""
    fd = _open(data_dir, STORE_LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def recovery_lock(data_dir: str | os.PathLike, waiting: Callable[[], None],
                  poll: float = 0.5) -> int:
    """Take the store lock exclusive, calling *waiting* every *poll* seconds until no other
    writer holds it; returns the descriptor. The caller recovers the store, then calls
    :func:`become_writer` and keeps the descriptor open while it serves."""
    fd = _open(data_dir, STORE_LOCK)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        waiting()
        time.sleep(poll)


def become_writer(fd: int) -> None:
    """After recovery: let other writers in beside this one (exclusive → shared)."""
    fcntl.flock(fd, fcntl.LOCK_SH)
