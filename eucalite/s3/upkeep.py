"""Lifecycle expiration: the periodic sweep that makes expired objects really go away.

:func:`sweep` applies every bucket's enabled lifecycle rules once: it expires current
versions (a delete marker in versioned buckets, a real delete otherwise), permanently
deletes noncurrent versions, removes expired delete markers and aborts stale multipart
uploads. :func:`start` runs it every ``lifecycle_interval`` seconds in a daemon thread of
the serving process. When each action falls due is :mod:`eucalite.s3.expiry`'s rule.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from ..db import db, load_json, write_lock
from . import expiry, objectlock, objects
from .models import Bucket, MultipartUpload, ObjectVersion, UploadPart
from .store import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    expired: int = 0
    noncurrent_deleted: int = 0
    markers_removed: int = 0
    uploads_aborted: int = 0


def _enabled_rules(lifecycle_json: str) -> list[dict]:
    return [rule for rule in load_json(lifecycle_json, []) or []
            if rule.get("Status") == "Enabled"]


def sweep(store: ObjectStore, now: dt.datetime | None = None) -> SweepReport:
    """Apply every bucket's lifecycle rules once (needs an app context).

    Buckets are independent: one whose rules fail (a rule stored by an older release, data
    the rules do not expect) is logged and skipped, and the others are still swept.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    report = SweepReport()
    with_rules = list(db.session.execute(db.select(
        Bucket.name, Bucket.id, Bucket.lifecycle_json).where(
        Bucket.lifecycle_json.is_not(None))))
    db.session.rollback()
    for name, bucket_id, lifecycle_json in with_rules:
        try:
            rules = _enabled_rules(lifecycle_json)
            if rules:
                _sweep_bucket(store, name, bucket_id, rules, now, report)
        except Exception:  # noqa: BLE001 - one bucket's failure must not stop the others
            db.session.rollback()
            log.exception("lifecycle sweep of bucket %s failed; sweeping the others", name)
    return report


def _sweep_bucket(store: ObjectStore, name: str, bucket_id: int, rules: list[dict],
                  now: dt.datetime, report: SweepReport) -> None:
    versions = list(db.session.execute(db.select(ObjectVersion).filter_by(
        bucket_id=bucket_id).order_by(ObjectVersion.key, ObjectVersion.id.desc())).scalars())
    db.session.rollback()
    by_key: dict[str, list[ObjectVersion]] = {}
    for version in versions:
        by_key.setdefault(version.key, []).append(version)     # newest first
    for key, history in by_key.items():
        current = history[0] if history[0].is_latest else None
        tags = current.get_json("tags", {}) if current is not None else {}
        if current is not None and not current.delete_marker and any(
                expiry.expiry_due(rule, key=key, size=current.size, tags=tags,
                                  last_modified=current.last_modified, now=now)
                for rule in rules if "Expiration" in rule):
            objects.delete(store, None, name, key, check_access=False)
            report.expired += 1
            continue
        noncurrent = history[1:] if current is not None else history
        for index, version in enumerate(noncurrent):
            successor = history[history.index(version) - 1]
            if objectlock.protected(version):
                continue                    # Object Lock keeps it: skipped, not deleted
            if any(expiry.noncurrent_due(
                    rule, key=key, size=version.size, tags=version.get_json("tags", {}) or {},
                    became_noncurrent=successor.last_modified, newer_noncurrent_count=index,
                    now=now) for rule in rules if "NoncurrentVersionExpiration" in rule):
                objects.delete(store, None, name, key, version.version_id, check_access=False)
                report.noncurrent_deleted += 1
        if current is not None and current.delete_marker:
            remaining = db.session.execute(db.select(db.func.count()).select_from(
                ObjectVersion).filter_by(bucket_id=bucket_id, key=key)).scalar_one() - 1
            db.session.rollback()
            if any(expiry.delete_marker_due(rule, key=key, last_modified=current.last_modified,
                                            noncurrent_versions=remaining, now=now)
                   for rule in rules if "Expiration" in rule):
                objects.delete(store, None, name, key, current.version_id, check_access=False)
                report.markers_removed += 1
    _abort_stale_uploads(store, bucket_id, rules, now, report)


def _abort_stale_uploads(store: ObjectStore, bucket_id: int, rules: list[dict],
                         now: dt.datetime, report: SweepReport) -> None:
    uploads = list(db.session.execute(db.select(MultipartUpload).filter_by(
        bucket_id=bucket_id)).scalars())
    stale = [upload.id for upload in uploads if any(
        expiry.abort_due(rule, key=upload.key, initiated=upload.initiated, now=now)
        for rule in rules if "AbortIncompleteMultipartUpload" in rule)]
    for upload_id in stale:
        write_lock()
        upload = db.session.get(MultipartUpload, upload_id)
        if upload is None:
            db.session.rollback()
            continue
        paths = [path for (path,) in db.session.execute(
            db.select(UploadPart.path).filter_by(upload_id=upload_id))]
        db.session.delete(upload)
        db.session.commit()
        store.delete(paths)
        report.uploads_aborted += 1


def start(app, store: ObjectStore, interval: float) -> threading.Event:
    """Run :func:`sweep` every *interval* seconds in a daemon thread; set the returned
    event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            try:
                with app.app_context():
                    report = sweep(store)
                    db.session.remove()
                if any(vars(report).values()):
                    log.info("lifecycle sweep: %s", report)
            except Exception:  # noqa: BLE001 - a failed sweep must not end the thread
                log.exception("lifecycle sweep failed")

    threading.Thread(target=loop, name="s3-lifecycle", daemon=True).start()
    return stop
