"""The snapshot chunk engine (eucalite.ebs.chunks): sparse-file extents, incremental
snapshots into the object store, restore, garbage collection and corruption handling."""
from __future__ import annotations

import hashlib
import os
import random
import time

import pytest
import storeutil

from eucalite.ebs import chunks as engine
from eucalite.ebs.chunkstore import BUCKET, ChunkCorrupt, ChunkMissing, ChunkStore

MiB = 2**20


def make_volume(path, size: int, writes: list[tuple[int, bytes]]) -> None:
    """A sparse file of *size* bytes holding *writes* (offset, data); holes elsewhere."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in writes:
            handle.seek(offset)
            handle.write(data)


def overwrite(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def require_sparse_support(path) -> None:
    """Skip where the filesystem reports a sparse file as all data (no SEEK_HOLE)."""
    probe = f"{path}.probe"
    make_volume(probe, 4 * MiB, [(MiB, b"x" * 4096)])
    ranges = engine.data_ranges(probe)
    os.unlink(probe)
    if ranges == [(0, 4 * MiB)]:
        pytest.skip("filesystem does not report holes")


@pytest.fixture
def store(app):
    """A ChunkStore on the app's object store, inside an app context."""
    with app.app_context():
        yield ChunkStore(app.extensions["eucalite"].s3.store, app)


# --- data_ranges ---------------------------------------------------------------------------

def test_data_ranges_of_sparse_files(tmp_path):
    require_sparse_support(tmp_path / "v")
    empty = tmp_path / "empty"
    make_volume(empty, 0, [])
    assert engine.data_ranges(empty) == []
    hole = tmp_path / "hole"
    make_volume(hole, 16 * MiB, [])
    assert engine.data_ranges(hole) == []
    mixed = tmp_path / "mixed"
    make_volume(mixed, 16 * MiB, [(MiB, b"a" * 65536), (5 * MiB, b"b" * MiB)])
    assert engine.data_ranges(mixed) == [(MiB, MiB + 65536), (5 * MiB, 6 * MiB)]
    tail = tmp_path / "tail"                    # data up to the end: no trailing hole
    make_volume(tail, 3 * MiB, [(2 * MiB, b"c" * MiB)])
    assert engine.data_ranges(tail) == [(2 * MiB, 3 * MiB)]
    dense = tmp_path / "dense"
    dense.write_bytes(b"d" * 10000)
    assert engine.data_ranges(dense) == [(0, 10000)]


def test_data_ranges_fall_back_to_the_whole_file(tmp_path, monkeypatch):
    path = tmp_path / "v"
    make_volume(path, 8 * MiB, [(MiB, b"a" * 4096)])

    def unsupported(fd, offset, whence):
        raise OSError(22, "Invalid argument")   # EINVAL: no SEEK_DATA here
    monkeypatch.setattr(engine.os, "lseek", unsupported)
    assert engine.data_ranges(path) == [(0, 8 * MiB)]


# --- snapshot, incremental snapshot, restore, delete ---------------------------------------

def scattered_writes(rng: random.Random, size: int, pieces: int, piece: int):
    """*pieces* random blocks of *piece* bytes at distinct piece-aligned offsets."""
    slots = rng.sample(range(size // piece), pieces)
    return [(slot * piece, rng.randbytes(piece)) for slot in sorted(slots)]


def test_incremental_snapshots_restore_and_delete(tmp_path, store, monkeypatch):
    require_sparse_support(tmp_path / "v")
    rng = random.Random(7)
    volume = tmp_path / "vol"
    size, chunk = 64 * MiB, MiB
    writes = scattered_writes(rng, size, 10, MiB)          # 10 MiB of random data
    make_volume(volume, size, writes)
    ranges = engine.data_ranges(volume)
    assert sum(end - start for start, end in ranges) == 10 * MiB

    # Every read the engine makes lies inside a data range: holes are never read.
    reads = []
    real_preadv = os.preadv

    def spy(fd, buffers, offset):
        reads.append((offset, offset + sum(len(b) for b in buffers)))
        return real_preadv(fd, buffers, offset)
    monkeypatch.setattr(engine.os, "preadv", spy)
    percents = []
    first = engine.snapshot(volume, chunk_size=chunk, previous={}, chunks=store,
                            progress=percents.append)
    monkeypatch.setattr(engine.os, "preadv", real_preadv)
    assert all(any(s <= lo and hi <= e for s, e in ranges) for lo, hi in reads)
    assert first.read_bytes == 10 * MiB
    assert first.stored_bytes == 10 * MiB
    assert sorted(first.chunks) == [offset // chunk for offset, _ in writes]
    assert all(size_ == chunk for _, size_ in first.chunks.values())
    assert percents[0] == 0 and percents[-1] == 100 and percents == sorted(percents)
    first_sha = file_sha256(volume)

    # Change 1 MiB inside an existing data chunk: only that chunk is stored again, and only
    # it needs a store lookup (the previous snapshot vouches for the rest).
    changed_offset = writes[3][0]
    overwrite(volume, changed_offset, rng.randbytes(MiB))
    lookups = []
    real_has = store.has
    monkeypatch.setattr(store, "has", lambda digest: lookups.append(digest) or real_has(digest))
    previous = {index: digest for index, (digest, _) in first.chunks.items()}
    second = engine.snapshot(volume, chunk_size=chunk, previous=previous, chunks=store)
    monkeypatch.setattr(store, "has", real_has)
    assert second.stored_bytes == MiB
    assert len(lookups) == 1
    differing = [i for i in second.chunks if second.chunks[i] != first.chunks.get(i)]
    assert differing == [changed_offset // chunk]
    second_sha = file_sha256(volume)

    # Each snapshot restores to a byte-identical, still sparse file.
    for name, result, expected in (("r1", first, first_sha), ("r2", second, second_sha)):
        target = tmp_path / name
        engine.restore(target, size, result.chunks, store, chunk_size=chunk)
        assert os.path.getsize(target) == size
        assert file_sha256(target) == expected
        assert allocated(target) <= 11 * MiB

    # Deleting the first snapshot frees the one chunk only it had; the second still restores.
    first_digests = {digest for digest, _ in first.chunks.values()}
    second_digests = {digest for digest, _ in second.chunks.values()}
    assert engine.delete_unreferenced(first_digests, second_digests, store) == 1
    assert store.digests() == second_digests
    engine.restore(tmp_path / "r2", size, second.chunks, store, chunk_size=chunk)
    assert file_sha256(tmp_path / "r2") == second_sha
    with pytest.raises(ChunkMissing):
        engine.restore(tmp_path / "r1-again", size, first.chunks, store, chunk_size=chunk)
    assert not (tmp_path / "r1-again").exists()


def test_unaligned_data_and_a_short_last_chunk(tmp_path, store):
    rng = random.Random(3)
    volume = tmp_path / "vol"
    size = 10 * MiB + 12345                     # not a whole number of chunks
    writes = [(123, rng.randbytes(5000)), (4 * MiB - 100, rng.randbytes(300)),
              (size - 7000, rng.randbytes(7000))]
    make_volume(volume, size, writes)
    result = engine.snapshot(volume, chunks=store)
    assert sorted(result.chunks) == [0, 1, 2]
    assert result.chunks[2][1] == size - 2 * engine.CHUNK_SIZE
    target = tmp_path / "restored"
    engine.restore(target, size, result.chunks, store)
    assert file_sha256(target) == file_sha256(volume)


def test_identical_chunks_are_stored_once(tmp_path, store):
    data = random.Random(5).randbytes(MiB)
    volume = tmp_path / "vol"
    make_volume(volume, 8 * MiB, [(0, data), (3 * MiB, data), (6 * MiB, data)])
    result = engine.snapshot(volume, chunk_size=MiB, chunks=store)
    assert len(result.chunks) == 3 and len({d for d, _ in result.chunks.values()}) == 1
    assert result.stored_bytes == MiB
    again = engine.snapshot(volume, chunk_size=MiB, chunks=store)   # no previous: has()
    assert again.stored_bytes == 0 and again.chunks == result.chunks


def test_all_zero_chunks_are_not_stored(tmp_path, store):
    volume = tmp_path / "vol"
    # Zeros written out (allocated, so read as data), and one real chunk.
    make_volume(volume, 16 * MiB, [(0, bytes(8 * MiB)), (12 * MiB, b"\x01" * MiB)])
    result = engine.snapshot(volume, chunks=store)
    assert list(result.chunks) == [3]
    assert result.stored_bytes == engine.CHUNK_SIZE
    assert len(store.digests()) == 1
    target = tmp_path / "restored"
    engine.restore(target, 16 * MiB, result.chunks, store)
    assert file_sha256(target) == file_sha256(volume)
    # The zero chunks and the zero part of chunk 3 stay holes.
    assert allocated(target) <= MiB + 64 * 1024


# --- corruption and failures --------------------------------------------------------------

def snapshot_one_chunk(tmp_path, store):
    volume = tmp_path / "vol"
    make_volume(volume, 8 * MiB, [(MiB, random.Random(1).randbytes(MiB))])
    result = engine.snapshot(volume, chunks=store)
    (digest, _), = result.chunks.values()
    return result, digest


def segment_of(digest) -> str:
    """The store segment holding chunk *digest*."""
    from eucalite.s3 import buckets, objects

    version = objects.latest(buckets.find(BUCKET), ChunkStore.key(digest))
    (relative, _size), = version.segments
    return relative


def test_corrupt_segment_fails_restore_and_leaves_nothing(tmp_path, app, store):
    result, digest = snapshot_one_chunk(tmp_path, store)
    storeutil.rewrite_segment(app.extensions["eucalite"].s3.store, segment_of(digest),
                              lambda data: storeutil.flip_byte(data, MiB + 10))  # at rest
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    target = volumes / "restored"
    target.write_bytes(b"the old volume")
    with pytest.raises(ChunkCorrupt, match=digest):
        engine.restore(target, 8 * MiB, result.chunks, store)
    assert target.read_bytes() == b"the old volume"      # untouched
    assert [p.name for p in volumes.iterdir()] == ["restored"]     # no temp file left
    target.unlink()
    with pytest.raises(ChunkCorrupt):
        engine.restore(target, 8 * MiB, result.chunks, store)
    assert not target.exists()


def test_wrong_bytes_under_a_chunk_key_fail_restore(tmp_path, app, store):
    from eucalite.s3 import objects
    from eucalite.s3.store import HashingReader

    result, digest = snapshot_one_chunk(tmp_path, store)
    objects.put(app.extensions["eucalite"].s3.store, store.principal, BUCKET,
                ChunkStore.key(digest), HashingReader(iter([b"not the chunk"])),
                objects.Attributes(), check_access=False)
    with pytest.raises(ChunkCorrupt):
        store.get(digest)
    with pytest.raises(ChunkCorrupt):
        engine.restore(tmp_path / "restored", 8 * MiB, result.chunks, store)
    assert not (tmp_path / "restored").exists()


def test_missing_segment_file_is_corrupt(tmp_path, app, store):
    result, digest = snapshot_one_chunk(tmp_path, store)
    storeutil.remove_segment(app.extensions["eucalite"].s3.store, segment_of(digest))
    with pytest.raises(ChunkCorrupt):
        store.get(digest)


def test_chunk_store_contract(store):
    data = b"chunk data"
    digest = hashlib.sha256(data).hexdigest()
    assert not store.has(digest)
    with pytest.raises(ChunkMissing):
        store.get(digest)
    with pytest.raises(ValueError):
        store.put(hashlib.sha256(b"other").hexdigest(), data)
    assert store.put(digest, data) is True
    assert store.put(digest, data) is False     # already there: not written again
    assert store.has(digest) and store.get(digest) == data
    assert store.digests() == {digest}
    store.delete(digest)
    store.delete(digest)                        # deleting what is gone succeeds
    assert not store.has(digest) and store.digests() == set()
    # A second ChunkStore finds the bucket it already created.
    again = ChunkStore(store.store, store.app)
    assert again.put(digest, data) is True and store.has(digest)


def test_should_stop_aborts_and_reports_what_it_stored(tmp_path, store):
    volume = tmp_path / "vol"
    rng = random.Random(2)
    make_volume(volume, 8 * MiB, [(i * MiB, rng.randbytes(MiB)) for i in range(8)])
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3
    with pytest.raises(engine.SnapshotStopped) as stopped:
        engine.snapshot(volume, chunk_size=MiB, chunks=store, should_stop=stop_after_three)
    assert len(stopped.value.stored) == 3
    assert store.digests() == stopped.value.stored
    assert engine.delete_unreferenced(stopped.value.stored, set(), store) == 3
    assert store.digests() == set()


def test_restore_rejects_a_chunk_past_the_end(tmp_path, store):
    result, _digest = snapshot_one_chunk(tmp_path, store)
    with pytest.raises(ValueError):
        engine.restore(tmp_path / "small", MiB, result.chunks, store)
    assert not (tmp_path / "small").exists()


def test_serial_and_parallel_uploads_agree(tmp_path, app):
    rng = random.Random(9)
    volume = tmp_path / "vol"
    make_volume(volume, 16 * MiB, scattered_writes(rng, 16 * MiB, 6, MiB))
    results = []
    with app.app_context():
        for workers, bucket in ((1, "serial-chunks"), (4, "parallel-chunks")):
            store = ChunkStore(app.extensions["eucalite"].s3.store, app, bucket=bucket)
            results.append(engine.snapshot(volume, chunk_size=MiB, chunks=store,
                                           workers=workers))
            assert store.digests() == {d for d, _ in results[-1].chunks.values()}
    assert results[0] == results[1]
    assert results[0].stored_bytes == 6 * MiB


def test_a_failed_upload_fails_the_snapshot(tmp_path, store, monkeypatch):
    volume = tmp_path / "vol"
    rng = random.Random(4)
    make_volume(volume, 8 * MiB, [(i * MiB, rng.randbytes(MiB)) for i in range(8)])
    calls = []
    real_upload = store._upload

    def flaky(digest, data):
        calls.append(digest)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_upload(digest, data)
    monkeypatch.setattr(store, "_upload", flaky)
    with pytest.raises(OSError, match="No space"):
        engine.snapshot(volume, chunk_size=MiB, chunks=store)
    in_flight = len(calls)
    assert store.digests() <= set(calls) and len(store.digests()) == in_flight - 1
    time.sleep(0.2)
    assert len(calls) == in_flight              # no upload runs on after the call
