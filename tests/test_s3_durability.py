"""Small objects at disk speed, durability kept: what a 4 KiB PUT and GET cost in database
statements, and that the shortcuts taken for them keep the answers right — a row looked up
once per transaction (db.once_per_transaction), a new version's row inserted with one
statement and answered from what was written (objects.record), fsyncs shared by concurrent writers (fsutil.GroupSync: directory
entries, SQLite's log through db.write_lock's group commit) — and that a kill -9 among
concurrent writers loses nothing acknowledged and leaves nothing partial (one upload cut
short is tests/test_s3_objects.py's). The load generator bench/bench_s3.py uses is
smoke-tested here.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
import storeutil

from eucalite import accounts
from eucalite.db import db, once_per_transaction
from eucalite.errors.s3 import NoSuchBucket
from eucalite.s3 import buckets
from eucalite.s3.models import Bucket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))


@contextmanager
def statements():
    """Every SQL statement run while the block runs, as (thread id, text)."""
    seen: list[tuple[int, str]] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append((threading.get_ident(), " ".join(statement.split())))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def request_statements(seen: list[tuple[int, str]]) -> list[str]:
    """The statements of the threads that served a signed request (they looked up its
    access key), leaving out whatever a background duty ran meanwhile."""
    threads = {thread for thread, text in seen if "FROM access_keys" in text}
    return [text for thread, text in seen if thread in threads]


def test_a_4kib_put_and_get_cost_few_statements(live):
    s3 = live.client("s3")
    s3.create_bucket(Bucket="small")
    body = os.urandom(4096)
    s3.put_object(Bucket="small", Key="warm", Body=body)
    with statements() as seen:
        etag = s3.put_object(Bucket="small", Key="k", Body=body)["ETag"]
    put = request_statements(seen)
    with statements() as seen:
        got = s3.get_object(Bucket="small", Key="k")
        assert got["Body"].read() == body and got["ETag"] == etag
    get = request_statements(seen)
    # PUT: key, bucket; under the write lock: bucket again, the rows it replaces, the insert
    # (no reload of the row just written). GET: key, bucket (once), version.
    assert len(put) <= 6, put
    assert sum("FROM s3_buckets" in text for text in put) == 2, put
    assert not any(text.startswith("SELECT") for text in put[put.index(
        next(text for text in put if text.startswith("INSERT INTO s3_objects"))) + 1:]), put
    assert len(get) <= 3, get
    assert sum("FROM s3_buckets" in text for text in get) == 1, get


def test_once_per_transaction_queries_again_in_the_next_one(app):
    with app.app_context():
        root = accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT,
                                                       accounts.ADMIN_USER))
        first = buckets.create(root, "memo", "", None)
        first_id = first.id
        db.session.remove()
        with statements() as seen:
            assert buckets.find("memo").id == first_id
            assert buckets.find("memo").id == first_id
        assert len(seen) == 1
        # another session replaces the bucket between this session's transactions
        db.session.rollback()
        other = db.session.session_factory()
        other.delete(other.get(Bucket, first_id))
        other.commit()                      # (a flush would insert before it deletes)
        other.add(Bucket(name="memo", owner_id=root.account_id, location="elsewhere"))
        other.commit()
        other.close()
        assert buckets.find("memo").location == "elsewhere"
        # a row deleted in this transaction is not handed back
        db.session.delete(buckets.find("memo"))
        db.session.flush()
        with pytest.raises(NoSuchBucket):
            buckets.find("memo")
        db.session.rollback()
        assert once_per_transaction(("other", 1), lambda: 42) == 42


def test_a_put_answers_with_the_version_it_wrote(live):
    """The answer comes from the row as written (objects.record): its version id and ETag
    are what a later listing shows, and a later change to the object is saved."""
    s3 = live.client("s3")
    s3.create_bucket(Bucket="versions")
    s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    answers = [s3.put_object(Bucket="versions", Key="k", Body=f"v{n}".encode())
               for n in range(3)]
    listed = s3.list_object_versions(Bucket="versions")["Versions"]
    assert [(v["VersionId"], v["ETag"]) for v in listed] == \
        [(a["VersionId"], a["ETag"]) for a in reversed(answers)]
    s3.put_object_tagging(Bucket="versions", Key="k", VersionId=answers[1]["VersionId"],
                          Tagging={"TagSet": [{"Key": "t", "Value": "1"}]})
    assert s3.get_object_tagging(Bucket="versions", Key="k",
                                 VersionId=answers[1]["VersionId"])["TagSet"] == \
        [{"Key": "t", "Value": "1"}]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (setup.sh)")
def test_bench_load_generator_puts_through_presigned_urls(live, tmp_path):
    import s3load

    s3 = live.client("s3")
    s3.create_bucket(Bucket="bench")
    keys = [f"wrk/{index}" for index in range(20)]
    prefix = len(live.base_url)
    paths = [s3.generate_presigned_url("put_object", Params={"Bucket": "bench", "Key": key},
                                       ExpiresIn=600)[prefix:] for key in keys]
    rate = s3load.wrk_run(live.base_url, "PUT", paths, connections=2, seconds=1)
    assert rate.errors == 0 and rate.ops > 0
    listed = s3.list_objects_v2(Bucket="bench")["Contents"]
    assert {item["Key"] for item in listed} == set(keys)
    assert {item["Size"] for item in listed} == {4096}
    disk = s3load.fsync_rate(str(tmp_path), processes=2, seconds=0.2)
    assert disk.ops > 0 and disk.p50 <= disk.p99


def test_concurrent_directory_syncs_share_one_fsync_that_began_after_them(tmp_path):
    """Five writers renamed into one directory while an fsync of it was under way: that
    one does not cover them (it began before their renames), one more does, for all four."""
    import threading as _threading
    import time

    from eucalite.fsutil import GroupSync

    release = _threading.Event()
    flushes: list[int] = []

    def flush(directory):
        flushes.append(syncs.waiting(directory))
        if len(flushes) == 1:
            release.wait(30)

    syncs = GroupSync(flush)
    first = _threading.Thread(target=syncs.sync, args=(tmp_path,))
    first.start()
    deadline = time.monotonic() + 30
    while not flushes and time.monotonic() < deadline:
        time.sleep(0.01)
    later = [_threading.Thread(target=syncs.sync, args=(tmp_path,)) for _ in range(4)]
    for thread in later:
        thread.start()
    while syncs.waiting(tmp_path) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert syncs.waiting(tmp_path) == 5
    release.set()
    for thread in [first, *later]:
        thread.join(30)
        assert not thread.is_alive()
    # the first flush was for the first writer alone; the second covered the other four
    assert flushes == [1, 4]
    assert syncs.waiting(tmp_path) == 0


def test_a_failed_directory_sync_fails_its_caller_and_the_next_one_flushes_again(tmp_path):
    from eucalite.fsutil import GroupSync

    calls: list[int] = []

    def flush(_directory):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("EIO")

    syncs = GroupSync(flush)
    with pytest.raises(OSError):
        syncs.sync(tmp_path)
    syncs.sync(tmp_path)
    assert len(calls) == 2 and syncs.waiting(tmp_path) == 0


def test_a_writer_commits_as_one_of_a_group_and_returns_after_the_log_is_flushed(app,
                                                                                 monkeypatch):
    """write_lock's transaction commits without holding the writer lock through the fsync
    of SQLite's log, and returns only after a flush of the log that began after it."""
    from sqlalchemy import text

    from eucalite import db as db_module
    from eucalite.fsutil import GroupSync

    flushed: list[tuple[str, bool]] = []

    def flush(path):
        flushed.append((path.name, db_module._sqlite_writer.locked()))

    monkeypatch.setattr(db_module, "_wal_syncs", GroupSync(flush))
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the group commit is SQLite's")
        accounts.create_account("grouped")          # a plain commit: no group, no flush
        assert flushed == []
        db_module.write_lock()
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 1     # NORMAL
        accounts.Account.query.filter_by(name="grouped").one().name = "regrouped"
        db.session.commit()
        assert flushed == [(Path(db.engine.url.database).name + "-wal", False)]
        # the connection is back to FULL for what runs on it next
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 2
        db.session.rollback()
        db_module.write_lock()
        db.session.rollback()                       # a writer that gives up flushes nothing
        assert len(flushed) == 1
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 2


@storeutil.file_backend_only
def test_kill9_under_concurrent_puts_keeps_every_acknowledged_object_whole(tmp_path):
    """8 writers PUT small objects (their commits grouped) until the server is killed -9:
    after a restart every acknowledged PUT reads back whole, and every object listed is
    whole too (a PUT cut short by the kill either landed entirely or not at all)."""
    import hashlib
    import time

    from liveutil import Live, free_port
    from test_s3_objects import _admin_app, _client, _files, _kill9, _serve

    data = tmp_path / "data"
    app, key_id, secret, region = _admin_app(data)

    def body(name: str) -> bytes:
        return hashlib.sha256(name.encode()).digest() * 128          # 4 KiB, from the key

    port = free_port()
    process = _serve(data, port)
    try:
        s3 = _client(Live(app, port, key_id, secret, region))
        s3.create_bucket(Bucket="crash")
        acknowledged: list[str] = []
        stop = threading.Event()

        def writer(index: int) -> None:
            client = _client(Live(app, port, key_id, secret, region))
            count = 0
            while not stop.is_set():
                name = f"w{index}/{count}"
                try:
                    client.put_object(Bucket="crash", Key=name, Body=body(name))
                except Exception:  # noqa: BLE001 - the kill cuts requests short
                    return
                acknowledged.append(name)
                count += 1

        writers = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
        for thread in writers:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 80 and time.monotonic() < deadline:
            time.sleep(0.01)
        _kill9(process)
        stop.set()
        for thread in writers:
            thread.join(30)
        assert len(acknowledged) >= 80

        port = free_port()
        process = _serve(data, port)
        s3 = _client(Live(app, port, key_id, secret, region))
        listed = {item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket="crash") for item in page.get("Contents", [])}
        assert set(acknowledged) <= listed
        for name in listed:
            assert s3.get_object(Bucket="crash", Key=name)["Body"].read() == body(name)
        assert _files(data / "s3" / "tmp") == []
        assert len(_files(data / "s3" / "objects")) == len(listed)
    finally:
        if process.poll() is None:
            _kill9(process)
