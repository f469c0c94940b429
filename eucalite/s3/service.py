"""Walrus' service object: the object store (whichever backends hold the data) plus
start-up recovery and the banner's line about where object data lives.

Operations live in ``buckets``, ``objects``, ``listing`` and ``multipart``; they take this
service's :attr:`store`. :meth:`recover` runs once at server start, before requests, and
removes what a crash or kill left half-written.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

from ..db import db
from .models import ObjectVersion, UploadPart
from .store import ObjectStore

log = logging.getLogger(__name__)


class S3Service:
    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.store = ObjectStore(Path(config["data_dir"]) / "s3", config)

    def recover(self) -> tuple[int, int]:
        """Delete unfinished writes and data no object or part references, in every
        backend (needs an app context; call before serving; a backend that cannot be
        reached is logged and skipped, never fatal). Returns (unfinished writes, orphan
        segments) removed."""
        referenced: set[str] = set()
        for (segments_json,) in db.session.execute(db.select(ObjectVersion.segments_json)):
            referenced.update(path for path, _ in json.loads(segments_json))
        referenced.update(path for (path,) in db.session.execute(db.select(UploadPart.path)))
        db.session.rollback()
        temps, orphans = self.store.recover(referenced)
        if temps or orphans:
            log.warning("Walrus recovery removed %d unfinished upload(s) and %d orphan "
                        "segment(s)", temps, orphans)
        return temps, orphans

    def describe_backend(self) -> str:
        """One line for the serve banner: where new buckets' object data goes, e.g.
        "object data in files under X" or "object data in s3 bucket B at URL (reachable)"
        / "(UNREACHABLE: why)". Asks the backend, so it may take its connect timeout."""
        return self.store.describe()
