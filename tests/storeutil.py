"""What Walrus' store holds, whichever backend a test's cloud writes to (files, or the test
RGW on the Ceph pass): segment sizes and raw (stored, so encrypted) bytes, for tests that
check data is written, freed and encrypted; and the mark for tests about the file backend's
own files."""
from __future__ import annotations

import os

import cephutil
import pytest

#: Tests that look at the file backend's files themselves (its tmp/ directory mid-write, a
#: kill -9 between its rename and fsync): skipped on the pass whose apps keep object data
#: in the test RGW, where tests/test_s3_backend.py covers the same promises.
file_backend_only = pytest.mark.skipif(
    os.environ.get("EUCALITE_TEST_WALRUS_ON_CEPH") == "1" and bool(cephutil.RGW_URL),
    reason="inspects the file backend's files; this pass keeps object data in RGW")


def backend(live):
    """The backend *live*'s new buckets write to."""
    store = live.app.extensions["eucalite"].s3.store
    return store.backends[store.default]


def usage(live) -> int:
    """Bytes held by finished segments."""
    return backend(live).usage()


def segments(live) -> list:
    """Every finished segment held (Stored: path, size)."""
    return list(backend(live).segments())


def segment_bytes(live) -> list[bytes]:
    """The stored bytes of every finished segment (ciphertext for encrypted objects)."""
    held = backend(live)
    return [b"".join(held.read([(item.path, 0, item.size)])) if item.size else b""
            for item in held.segments()]


def rewrite_segment(store, path: str, change) -> None:
    """Replace segment *path*'s stored bytes with ``change(bytes)``, behind Walrus' back (a
    disk or a gateway that damaged data at rest), in whichever backend holds it."""
    held = store.backend_of(path)
    if held.name == "file":
        target = held.path(path)
        target.write_bytes(change(target.read_bytes()))
        return
    size = held.client.head_object(Bucket=held.bucket, Key=path.split(":", 1)[1])[
        "ContentLength"]
    data = b"".join(held.read([(path, 0, size)])) if size else b""
    held.client.put_object(Bucket=held.bucket, Key=path.split(":", 1)[1], Body=change(data))


def remove_segment(store, path: str) -> None:
    """Lose segment *path* behind Walrus' back, in whichever backend holds it."""
    held = store.backend_of(path)
    if held.name == "file":
        held.path(path).unlink()
    else:
        held.client.delete_object(Bucket=held.bucket, Key=path.split(":", 1)[1])


def flip_byte(data: bytes, offset: int) -> bytes:
    """*data* with the byte at *offset* inverted."""
    changed = bytearray(data)
    changed[offset] ^= 0xFF
    return bytes(changed)
