"""Where snapshot chunks are kept: :class:`ChunkStore`, the chunks as objects in Walrus.

Bucket :data:`BUCKET` of the cloud-admin account holds one object ``chunks/<sha256 hex>``
per distinct chunk. The chunk engine (:mod:`eucalite.ebs.chunks`) puts and gets chunks
through it; reading a chunk back checks its bytes against its digest.
"""
from __future__ import annotations

import hashlib

from ..accounts import ADMIN_ACCOUNT, ADMIN_USER, get_user, principal_of
from ..db import db
from ..s3 import buckets, objects, sse
from ..s3.models import ObjectVersion

BUCKET = "eucalite-snapshots"
KEY_PREFIX = "chunks/"


class ChunkError(Exception):
    """A chunk cannot be read back as stored: missing, or its bytes are not its digest."""

    def __init__(self, digest: str, message: str):
        super().__init__(f"snapshot chunk {digest}: {message}")
        self.digest = digest


class ChunkMissing(ChunkError):
    pass


class ChunkCorrupt(ChunkError):
    pass


class ChunkStore:
    """Chunks in the object store: bucket :data:`BUCKET` of the cloud-admin account, one
    object ``chunks/<sha256>`` per distinct chunk. Writes and reads go through
    :mod:`eucalite.s3.objects` in process (no HTTP, no access checks: this is the cloud
    itself acting), so they are as durable and crash-safe as any object.

    Construct and use it inside an app context of *app*; *store* is that app's object store
    (``S3Service.store``); :meth:`put_hashed_in_context` (for upload threads) opens an app
    context of *app* of its own. The bucket is created on first use. Writes and deletes
    commit their own transactions (an object write first rolls the session back), so call
    with no uncommitted changes of your own in the session.
    """

    def __init__(self, store, app, bucket: str = BUCKET):
        self.app = app
        self.store = store
        self.bucket = bucket
        # written as the cloud admin (no access key needed)
        self.principal = principal_of(get_user(ADMIN_ACCOUNT, ADMIN_USER))
        buckets.ensure(self.principal, bucket)

    @staticmethod
    def key(digest: str) -> str:
        return KEY_PREFIX + digest

    def _version(self, digest: str):
        version = objects.latest(buckets.find(self.bucket), self.key(digest))
        return None if version is None or version.delete_marker else version

    def has(self, digest: str) -> bool:
        return self._version(digest) is not None

    def put(self, digest: str, data: bytes) -> bool:
        """Store *data* as chunk *digest* unless it is already there; True if it stored.
        Raises ValueError when *data* does not hash to *digest* (a wrong name would poison
        every snapshot sharing the chunk)."""
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"chunk data does not hash to {digest}")
        return self.put_hashed(digest, data)

    def put_hashed(self, digest: str, data: bytes) -> bool:
        """put() for a caller that just computed *digest* from *data* itself."""
        if self.has(digest):
            return False
        self._upload(digest, data)
        return True

    def put_hashed_in_context(self, digest: str, data: bytes) -> bool:
        """put_hashed() from a worker thread: in an app context (and so a database
        session) of its own."""
        with self.app.app_context():
            return self.put_hashed(digest, data)

    def _upload(self, digest: str, data: bytes) -> None:
        objects.put(self.store, self.principal, self.bucket, self.key(digest),
                    _BytesReader(data),
                    objects.Attributes(content_type="application/octet-stream"),
                    check_access=False, limit=None)

    def get(self, digest: str) -> bytes:
        """The chunk's bytes, checked against its digest: raises :class:`ChunkMissing` when
        there is no such chunk, :class:`ChunkCorrupt` when its data is unreadable or does
        not hash to *digest*."""
        version = self._version(digest)
        if version is None:
            raise ChunkMissing(digest, f"no object {self.key(digest)} in bucket {self.bucket}")
        try:
            data = b"".join(sse.read(self.store, version))
        except OSError as error:
            raise ChunkCorrupt(digest, f"stored data unreadable: {error}") from error
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ChunkCorrupt(digest, f"stored data hashes to {actual} (corrupt)")
        return data

    def delete(self, digest: str) -> None:
        """Remove the chunk; removing one that is not there succeeds."""
        objects.delete(self.store, self.principal, self.bucket, self.key(digest),
                       check_access=False)

    def digests(self) -> set[str]:
        """Every chunk digest in the store (for a full garbage sweep)."""
        rows = db.session.execute(db.select(ObjectVersion.key).where(
            ObjectVersion.bucket_id == buckets.find(self.bucket).id,
            ObjectVersion.is_latest.is_(True), ObjectVersion.delete_marker.is_(False),
            ObjectVersion.key.startswith(KEY_PREFIX))).scalars()
        return {key[len(KEY_PREFIX):] for key in rows}


class _BytesReader:
    """The body reader :func:`eucalite.s3.objects.put` wants, over bytes already in memory:
    ``read(n)`` hands out views without copying (s3.store.HashingReader re-slices its
    buffer on every read), and the MD5 the object's ETag needs is taken in one call."""

    def __init__(self, data: bytes):
        self.view = memoryview(data)
        self.position = 0
        self.md5_hex = hashlib.md5(data).hexdigest()

    def read(self, size: int = -1) -> memoryview:
        end = len(self.view) if size < 0 else self.position + size
        piece = self.view[self.position:end]
        self.position += len(piece)
        return piece
