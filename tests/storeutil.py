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
