"""Bucket listings in key order: ListObjects (v1, v2) and ListObjectVersions.

Keys are compared as UTF-8 bytes, which is code-point order, as S3 sorts them. Each page is
a few index range scans on (bucket, is_latest, key): a delimiter folds every key under a
common prefix into one entry and the scan jumps past that prefix instead of reading it, so
a page costs about the same in a bucket of 100 or 100,000 keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..db import bytewise, db
from .models import Bucket, ObjectVersion

_MAX_CHAR = "\U0010ffff"

#: Rows under a just-listed common prefix read past before seeking beyond it instead.
SKIP_BEFORE_SEEK = 16


def successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with *prefix* (None: none)."""
    chars = list(prefix)
    while chars:
        last = chars.pop()
        if last != _MAX_CHAR:
            following = ord(last) + 1
            if 0xD800 <= following <= 0xDFFF:
                # Surrogates cannot be encoded (keys are UTF-8): the next character that
                # can, U+E000, is also the next in UTF-8 byte order.
                following = 0xE000
            return "".join(chars) + chr(following)
    return None


@dataclass
class Page:
    entries: list[ObjectVersion] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    truncated: bool = False
    #: the last key or common prefix on this page (NextMarker / continuation point)
    last: str | None = None
    #: for version listings, the version id of the last entry
    last_version_id: str | None = None
    #: most entries plus common prefixes the page may hold (max-keys)
    limit: int = 1000

    def _room(self) -> bool:
        """Whether one more entry or prefix fits; marks the page truncated when not."""
        if len(self.entries) + len(self.prefixes) >= self.limit:
            self.truncated = True
            return False
        return True

    def add_entry(self, row: ObjectVersion) -> bool:
        """Append *row*; False (page truncated, nothing added) when the page is full."""
        if not self._room():
            return False
        self.entries.append(row)
        self.last, self.last_version_id = row.key, row.version_id
        return True

    def add_prefix(self, common: str) -> bool:
        """Append a common prefix; False (page truncated) when the page is full."""
        if not self._room():
            return False
        self.prefixes.append(common)
        self.last, self.last_version_id = common, None
        return True


def _rows(bucket: Bucket, after: str | None, inclusive: bool, upper: str | None, limit: int,
          versions: bool):
    query = db.select(ObjectVersion).where(ObjectVersion.bucket_id == bucket.id)
    if not versions:
        query = query.where(ObjectVersion.is_latest.is_(True),
                            ObjectVersion.delete_marker.is_(False))
    key = bytewise(ObjectVersion.key)        # S3's byte order, on any database
    if after is not None:
        query = query.where(key >= after if inclusive else key > after)
    if upper is not None:
        query = query.where(key < upper)
    order = [key]
    if versions:
        order.append(ObjectVersion.id.desc())     # newest version of a key first
    return list(db.session.execute(query.order_by(*order).limit(limit)).scalars())


def list_page(bucket: Bucket, *, prefix: str = "", delimiter: str = "",
              start_after: str | None = None, max_keys: int = 1000,
              versions: bool = False, version_id_marker: str | None = None) -> Page:
    """One page of at most *max_keys* entries plus common prefixes, after *start_after*.

    With *versions*, every version and delete marker is an entry (newest first within a
    key) and (*start_after*, *version_id_marker*) resumes inside a key's versions.
    """
    page = Page(limit=max_keys)
    if max_keys <= 0:
        return page
    upper = successor(prefix) if prefix else None
    cursor, inclusive = prefix or None, True
    rolled = None
    if start_after is not None and (cursor is None or start_after >= cursor):
        cursor, inclusive = start_after, False
        # A listing is keys and common prefixes merged in order, resumed strictly after
        # the marker. A marker at or inside a common prefix (NextMarker / the continuation
        # token is often the prefix itself) is past that prefix: skip all its keys, or the
        # prefix would be listed again on every page.
        rolled = _common_prefix(start_after, prefix, delimiter)
        if rolled is not None:
            after_rolled = successor(rolled)
            if after_rolled is None:
                return page
            cursor, inclusive = after_rolled, True
    pending_versions: list[ObjectVersion] = []
    if versions and start_after is not None and version_id_marker and rolled is None:
        pending_versions = _versions_after(bucket, start_after, version_id_marker)
    for row in pending_versions:
        if not page.add_entry(row):
            return page

    batch = max(max_keys + 1, 64)
    while True:
        rows = _rows(bucket, cursor, inclusive, upper, batch, versions)
        if not rows:
            return page
        jumped = False
        rolled_up: str | None = None      # the common prefix just listed
        skipped = 0
        for row in rows:
            if rolled_up is not None:
                if row.key.startswith(rolled_up):
                    # Already listed as the common prefix. A few such rows are cheaper to
                    # pass over than a new query; many are skipped by seeking past them.
                    skipped += 1
                    if skipped > SKIP_BEFORE_SEEK:
                        jumped = True
                        break
                    continue
                rolled_up = None
            if delimiter:
                common = _common_prefix(row.key, prefix, delimiter)
                if common is not None:
                    if not page.add_prefix(common):
                        return page
                    after_common = successor(common)
                    if after_common is None:
                        return page
                    cursor, inclusive = after_common, True
                    rolled_up, skipped = common, 0
                    continue
            if not page.add_entry(row):
                return page
            cursor, inclusive = row.key, False
        if not jumped:
            if len(rows) < batch:
                return page
            if versions and rolled_up is None:
                # Resume after the last row seen, inside its key if need be.
                last = rows[-1]
                more = _versions_after(bucket, last.key, last.version_id)
                for row in more:
                    if not page.add_entry(row):
                        return page
                cursor, inclusive = last.key, False


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix *key* rolls up into (through the first *delimiter* after
    *prefix*), or None when it is listed as itself."""
    if not delimiter or not key.startswith(prefix):
        return None
    position = key.find(delimiter, len(prefix))
    return key[:position + len(delimiter)] if position >= 0 else None


def _versions_after(bucket: Bucket, key: str, version_id: str) -> list[ObjectVersion]:
    """Versions of *key* older than *version_id* (newest first)."""
    marker = db.session.execute(db.select(ObjectVersion).filter_by(
        bucket_id=bucket.id, key=key, version_id=version_id)).scalar_one_or_none()
    if marker is None:
        return []
    return list(db.session.execute(db.select(ObjectVersion).where(
        ObjectVersion.bucket_id == bucket.id, ObjectVersion.key == key,
        ObjectVersion.id < marker.id).order_by(ObjectVersion.id.desc())).scalars())
