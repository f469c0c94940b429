"""Walrus' object store: the one door to object data, whichever backend holds it.

:class:`ObjectStore` routes each call to a backend (:mod:`eucalite.s3.backends`): a read,
copy or delete to the backend its segment path names, a write to the backend the store is
bound to (:meth:`ObjectStore.on` a bucket's ``backend``; unbound: the config's
``s3_backend``). Its :attr:`~ObjectStore.root` is the data directory's ``s3`` folder, where
the file backend keeps segments and SSE keeps its key material whatever the backend.

The rules callers rely on (the backends keep them, see :mod:`.backends.base`): a write is
durable before it returns and leaves nothing on failure, so the caller records its row
after it and deletes the segment if that fails; a read raises :class:`Gone` before it
returns when the version was freed meanwhile, and otherwise keeps sending that version's
bytes; an unreachable backend is a 503 ServiceUnavailable naming it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors.s3 import ServiceUnavailable
from .backends import from_config
from .backends.base import (CHUNK, Backend, Gone, HashingReader, Readable, Stored,  # noqa: F401
                            TooLarge, ranges_of)
from .backends.file import FAN_OUT_RUN  # noqa: F401 - re-exported


class ObjectStore:
    def __init__(self, root: Path | str, config: Mapping[str, Any] | None = None,
                 backends: dict[str, Backend] | None = None, default: str | None = None):
        config = config or {}
        self.root = Path(root)
        self.backends = backends if backends is not None else from_config(config, self.root)
        self.default = default or config.get("s3_backend") or "file"
        if self.default not in self.backends:
            raise ValueError(f"s3_backend {self.default!r}: no such backend configured "
                             "(s3 needs s3_backend_url)" if self.default == "s3" else
                             f"s3_backend {self.default!r}: expected file or s3")

    def on(self, backend: str) -> "ObjectStore":
        """This store with writes going to *backend* (a bucket's ``backend``)."""
        if backend == self.default:
            return self
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.default = backend
        return view

    # --- routing -----------------------------------------------------------------------

    def _writer(self) -> Backend:
        return self._named(self.default)

    def _named(self, name: str) -> Backend:
        backend = self.backends.get(name)
        if backend is None:
            raise ServiceUnavailable(
                f"This bucket's data is held by the {name} storage backend, which this cloud "
                "no longer configures (s3_backend_url).")
        return backend

    def backend_of(self, path: str) -> Backend:
        """The backend holding segment *path*."""
        for backend in self.backends.values():
            if backend.name != "file" and backend.owns(path):
                return backend
        if ":" in path:
            return self._named(path.split(":", 1)[0])
        return self.backends["file"]

    # --- the operations ----------------------------------------------------------------

    def path(self, relative: str) -> Path:
        """The file of a file-backend segment (for tests and tools that look at files)."""
        return self.backends["file"].path(relative)

    def write(self, reader: Readable, limit: int | None = None) -> Stored:
        """Stream *reader* to a new segment in the bound backend; returns it once durable.

        *reader* may raise (bad checksum, client gone): then nothing partial is left and the
        exception propagates. More than *limit* bytes raises :class:`TooLarge` for the
        caller to map.
        """
        return self._writer().write(reader, limit)

    def link(self, relative: str, size: int) -> Stored:
        """A new segment with the bytes of *relative* (*size* bytes) in the bound backend
        (CopyObject of a whole object): made inside the backend when the source is there
        too (a hard link, the backend's CopyObject), else streamed across. :class:`Gone`
        when the segment was freed meanwhile."""
        source, target = self.backend_of(relative), self._writer()
        if source is target:
            return target.copy(relative)
        if size == 0:
            return target.write(HashingReader(iter(())))
        return target.write(HashingReader(source.read([(relative, 0, size)])))

    def read(self, segments: Iterable[tuple[str, int]], start: int = 0,
             end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (inclusive) of the concatenated segments, in chunks.

        The first segment is reached before this returns (:class:`Gone` when it was already
        freed), and the bytes are those of the version the caller looked up even if it is
        replaced or deleted while they stream (each backend says how it keeps that).
        """
        ranges = ranges_of(segments, start, end)
        groups: list[tuple[Backend, list]] = []
        for piece in ranges:
            backend = self.backend_of(piece[0])
            if groups and groups[-1][0] is backend:
                groups[-1][1].append(piece)
            else:
                groups.append((backend, [piece]))
        if not groups:
            return iter(())
        first = groups[0][0].read(groups[0][1])
        return _chain(first, groups[1:]) if len(groups) > 1 else first

    def reader(self, segments: Iterable[tuple[str, int]], start: int = 0,
               end: int | None = None) -> HashingReader:
        """A file-like view of a byte range that also computes its MD5 (UploadPartCopy)."""
        return HashingReader(self.read(list(segments), start, end))

    def delete(self, paths: Iterable[str]) -> None:
        """Free segments after the commit that stopped naming them (never raises for a
        missing segment or an unreachable backend: start-up recovery removes those)."""
        by_backend: dict[str, list[str]] = {}
        for path in paths:
            try:
                backend = self.backend_of(path)
            except ServiceUnavailable:
                continue                    # a backend no longer configured: nothing to do
            by_backend.setdefault(backend.name, []).append(path)
        for name, names in by_backend.items():
            self.backends[name].delete(names)

    def recover(self, referenced: set[str]) -> tuple[int, int]:
        """Remove unfinished writes and segments no metadata row references, in every
        backend. Call only at start-up, before any request is served. Returns (unfinished
        writes, orphans) counts."""
        temps = orphans = 0
        for backend in self.backends.values():
            mine = {path for path in referenced if backend.owns(path)}
            found = backend.recover(mine)
            temps, orphans = temps + found[0], orphans + found[1]
        return temps, orphans

    def usage(self) -> int:
        """Bytes used by finished segments in the bound backend (reports and benchmarks)."""
        return self._writer().usage()

    def describe(self) -> str:
        """Where new buckets' object data goes, and whether it is reachable (the banner)."""
        return self._writer().describe()


def _chain(first: Iterator[bytes], rest: list[tuple[Backend, list]]) -> Iterator[bytes]:
    """*first*'s chunks, then each later group's, opened as the stream reaches it (segments
    of one object in several backends: a multipart upload completed after a switch)."""
    current = first
    try:
        yield from current
        for backend, ranges in rest:
            current = backend.read(ranges)
            yield from current
    finally:
        close = getattr(current, "close", None)
        if close is not None:
            close()
