"""The S3 hot path's plain rows (models.LoadedBucket / LoadedVersion, read and written with
Core statements): what they answer is what the database holds, and they never stand in for
a mapped object a writer changes."""
from __future__ import annotations

import datetime as dt

from eucalite import accounts
from eucalite.db import db, write_lock
from eucalite.s3 import buckets, objects
from eucalite.s3.models import Bucket, LoadedBucket, LoadedVersion, ObjectVersion
from eucalite.s3.store import HashingReader


def _admin():
    return accounts.principal_of(accounts.get_user("eucalyptus", "admin"))


def _put(app, bucket: str, key: str, body: bytes, attributes: objects.Attributes):
    return objects.put(app.extensions["eucalite"].s3.store, _admin(), bucket, key,
                       HashingReader(iter([body])), attributes)


def _columns(row) -> dict:
    return {column.key: getattr(row, column.key) for column in ObjectVersion.__table__.c}


def test_a_put_answers_every_column_as_stored(app):
    """The version a PUT returns (built from the INSERT's values, no query) holds every
    column, each equal to what a fresh read of the row finds: the answer's headers can
    be trusted, also for columns the write left at their defaults."""
    with app.app_context():
        buckets.ensure(_admin(), "stored")
        answer = _put(app, "stored", "k", b"hello", objects.Attributes(
            content_type="text/plain", headers={"cache-control": "no-cache"},
            meta={"colour": "blue"}, tags={"t": "1"}, storage_class="STANDARD_IA",
            lock_mode="GOVERNANCE", lock_until=dt.datetime(2031, 1, 2, 3, 4, 5)))
        assert isinstance(answer, LoadedVersion)
        db.session.remove()
        stored = db.session.get(ObjectVersion, answer.id)
        assert _columns(answer) == _columns(stored)
        assert (stored.size, stored.delete_marker, stored.is_latest,
                stored.get_json("meta"), stored.storage_class) == (
            5, False, True, {"colour": "blue"}, "STANDARD_IA")


def test_a_get_reads_plain_copies_and_an_overwrite_replaces_the_row(app):
    """objects.get answers plain copies of the bucket and version rows (remembered for the
    transaction, so a later buckets.find in it costs no query); an overwrite in a bucket
    without versioning leaves one row, the new one."""
    with app.app_context():
        buckets.ensure(_admin(), "plain")
        _put(app, "plain", "k", b"one", objects.Attributes())
        second = _put(app, "plain", "k", b"two!", objects.Attributes())
        db.session.remove()
        version = objects.get(_admin(), "plain", "k")
        assert isinstance(version, LoadedVersion)
        assert (version.id, version.size, version.version_id) == (second.id, 4, "null")
        assert isinstance(buckets.find("plain"), LoadedBucket)
        rows = db.session.execute(db.select(ObjectVersion.size).filter_by(key="k")).scalars()
        assert list(rows) == [4]


def test_a_writer_after_a_plain_read_changes_the_mapped_row(app):
    """A plain copy remembered by a read is never what a writer's find answers: the write
    lock starts a transaction of its own, where find loads the mapped row, and its
    change is saved."""
    with app.app_context():
        buckets.ensure(_admin(), "writer")
        _put(app, "writer", "k", b"x", objects.Attributes())
        db.session.remove()
        objects.get(_admin(), "writer", "k")
        assert isinstance(buckets.find("writer"), LoadedBucket)
        write_lock()
        bucket = buckets.find("writer")
        assert isinstance(bucket, Bucket)
        bucket.versioning = "Suspended"
        db.session.commit()
        db.session.remove()
        assert db.session.execute(db.select(Bucket.versioning).filter_by(
            name="writer")).scalar_one() == "Suspended"
