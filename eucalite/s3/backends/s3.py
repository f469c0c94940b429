"""The S3 backend: segments as objects of one bucket on another S3 endpoint (a Ceph RADOS
Gateway, MinIO, AWS) that belongs to this cloud alone.

Eucalite keeps everything else (accounts, keys, ACLs, policies, versioning, listings, SSE
keys) in its database and data directory; the backend bucket holds only segment bytes, one
backend object per segment under a random key (the segment's path is ``s3:<key>``). The
bucket is made on first use when missing. Start-up recovery deletes every object and aborts
every multipart upload in it that no row names, so it must never be shared with anything
else.

Writes stream: up to :data:`PART_SIZE` bytes are buffered; a body that ends within that is
one PutObject, a longer one a backend multipart upload of :data:`PART_SIZE` parts (aborted
on any error, so nothing partial is left; an abort that cannot reach the backend leaves an
upload that start-up recovery aborts). A part is sent to the backend while the next is
read from the client, so a stream holds at most two parts in memory.

Copies (CopyObject of a whole object under the same encryption) are the backend's
CopyObject (a multipart UploadPartCopy past 5 GiB): no data passes through eucalite.
Walrus' own multipart uploads are *not* one backend multipart upload: each Walrus part is a
segment of its own (itself a backend multipart upload when large), and completing the
Walrus upload only records the chosen segments. A backend part needs its length before it
is sent and must be at least 5 MiB, while a Walrus part streams with a length not always
known (aws-chunked) and may be replaced, listed or left out at completion; SSE gives each
part its own IV (eucalite.s3.sse), which a single backend object would have to reproduce.
Parts as segments keep completion a database commit and every part streamed.

Reads are ranged GetObjects streamed in :data:`~.base.CHUNK` steps. The first one is sent
before :meth:`S3Backend.read` returns (a freed segment is :class:`Gone` while the caller can
still look the object up again); the later ones as the stream reaches them. So that a GET
keeps the bytes of the version it looked up when that version is replaced or deleted while
it streams, every segment of a stream is pinned until the stream ends: :meth:`delete` of a
pinned segment is deferred until the last stream reading it closes (an RGW also keeps
serving an already opened GET of a deleted object: its tail objects wait for its garbage
collector). A process beside the server (``eucalite image import``) does not see the
server's pins; only the backend's own behaviour covers its deletes.
"""
from __future__ import annotations

import collections
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ... import botoclients
from ...errors.s3 import ServiceUnavailable
from .base import CHUNK, Backend, Gone, Readable, Stored, TooLarge

log = logging.getLogger(__name__)

PREFIX = "s3:"
#: Threads uploading parts for all writing streams (each stream has at most one part in
#: flight while it reads the next from its client).
PART_THREADS = 16
#: Bytes buffered per writing stream: a body up to this is one PutObject, a longer one a
#: multipart upload of parts this size (10,000 of them: 80 GiB, past S3's 5 GiB limits).
PART_SIZE = 8 * 1024 * 1024
#: The largest source the backend's CopyObject takes (S3's limit); larger ones are copied
#: with UploadPartCopy in :data:`COPY_PART_SIZE` ranges.
MAX_COPY = 5 * 1024 ** 3
COPY_PART_SIZE = 1024 ** 3
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class S3Backend(Backend):
    name = "s3"

    def __init__(self, url: str, access_key: str, secret_key: str, bucket: str,
                 region: str = "us-east-1", *, connect_timeout: float = 5,
                 read_timeout: float = 60, attempts: int = 3):
        self.url, self.bucket = url, bucket
        self._settings = dict(endpoint_url=url, region_name=region or "us-east-1",
                              aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        self.client = self._new_client(connect_timeout, read_timeout, attempts)
        # uploads the next part while the stream's following part is read from the client
        self._parts = ThreadPoolExecutor(max_workers=PART_THREADS,
                                         thread_name_prefix="walrus-s3-part")
        self._ready = False                 # the backend bucket is known to exist
        self._lock = threading.Lock()
        self._pins: collections.Counter[str] = collections.Counter()
        self._deferred: set[str] = set()    # freed while pinned: deleted at the last unpin

    def _new_client(self, connect_timeout: float, read_timeout: float, attempts: int):
        config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                        retries={"mode": "standard", "max_attempts": attempts},
                        max_pool_connections=64, s3={"addressing_style": "path"},
                        # plain payloads: an RGW of Ceph 16 knows no checksum trailers
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required")
        return botoclients.create_client("s3", **self._settings, config=config)

    def owns(self, path: str) -> bool:
        return path.startswith(PREFIX)

    # --- talking to the backend --------------------------------------------------------

    def _call(self, what: str, method: Callable, **params):
        """One backend request; an unreachable or failing backend is ServiceUnavailable
        naming it and *what* failed (a missing key stays a ClientError for the caller)."""
        try:
            return method(Bucket=self.bucket, **params)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                raise
            raise self._unavailable(what, error) from None
        except BotoCoreError as error:
            raise self._unavailable(what, error) from None

    def _unavailable(self, what: str, error: Exception) -> ServiceUnavailable:
        log.warning("Walrus' s3 backend %s failed to %s: %s", self.url, what, error)
        return ServiceUnavailable(
            f"The storage backend holding this bucket's data (s3 bucket {self.bucket} at "
            f"{self.url}) could not {what}: {_reason(error)}. Try again later.")

    def ensure_bucket(self) -> None:
        """Make the backend bucket unless it is known to exist."""
        if self._ready:
            return
        try:
            self._call("find its bucket", self.client.head_bucket)
        except ClientError:                  # 404: not made yet
            try:
                self._call("create its bucket", self.client.create_bucket)
            except ClientError as error:     # made meanwhile by another thread
                if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                    raise self._unavailable("create its bucket", error) from None
        self._ready = True

    # --- writing -----------------------------------------------------------------------

    def write(self, reader: Readable, limit: int | None = None) -> Stored:
        self.ensure_bucket()
        key = uuid.uuid4().hex
        first, size = _fill(reader, 0, limit)
        if len(first) < PART_SIZE:
            self._call("store an object", self.client.put_object, Key=key, Body=first)
            return Stored(PREFIX + key, size)
        upload_id = self._call("start a multipart upload", self.client.create_multipart_upload,
                               Key=key)["UploadId"]
        parts: list[dict] = []
        in_flight: list = []                # part uploads running while the next is read
        try:
            data = first
            while data:
                number = len(parts) + len(in_flight) + 1
                in_flight.append(self._parts.submit(self._upload_part, key, upload_id,
                                                    number, data))
                if len(in_flight) == 2:
                    parts.append(in_flight.pop(0).result())
                data = b""                  # the upload holds the part; read the next
                data, size = _fill(reader, size, limit)
            while in_flight:
                parts.append(in_flight.pop(0).result())
            self._call("complete a multipart upload", self.client.complete_multipart_upload,
                       Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            for future in in_flight:
                future.cancel() or _settle(future)
            self._abort(key, upload_id)
            raise
        return Stored(PREFIX + key, size)

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict:
        answer = self._call("store an object part", self.client.upload_part, Key=key,
                            UploadId=upload_id, PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as error:
            log.warning("Walrus' s3 backend could not abort upload %s of %s (start-up "
                        "recovery will): %s", upload_id, key, error)

    def copy(self, path: str) -> Stored:
        source = _key(path)
        try:
            size = self._call("find an object", self.client.head_object,
                              Key=source)["ContentLength"]
        except ClientError:
            raise Gone(path) from None
        key = uuid.uuid4().hex
        origin = {"Bucket": self.bucket, "Key": source}
        if size <= MAX_COPY:
            try:
                self._call("copy an object", self.client.copy_object, Key=key,
                           CopySource=origin)
            except ClientError:
                raise Gone(path) from None
            return Stored(PREFIX + key, size)
        upload_id = self._call("start a multipart copy", self.client.create_multipart_upload,
                               Key=key)["UploadId"]
        try:
            parts = []
            for number, lo in enumerate(range(0, size, COPY_PART_SIZE), start=1):
                hi = min(lo + COPY_PART_SIZE, size) - 1
                answer = self._call("copy an object part", self.client.upload_part_copy,
                                    Key=key, UploadId=upload_id, PartNumber=number,
                                    CopySource=origin, CopySourceRange=f"bytes={lo}-{hi}")
                parts.append({"PartNumber": number,
                              "ETag": answer["CopyPartResult"]["ETag"]})
            self._call("complete a multipart copy", self.client.complete_multipart_upload,
                       Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except ClientError:
            self._abort(key, upload_id)
            raise Gone(path) from None
        except BaseException:
            self._abort(key, upload_id)
            raise
        return Stored(PREFIX + key, size)

    # --- reading -----------------------------------------------------------------------

    def read(self, ranges: list[tuple[str, int, int]]) -> Iterator[bytes]:
        if not ranges:
            return iter(())
        paths = [path for path, _, _ in ranges]
        self._pin(paths)
        try:
            first = self._open(*ranges[0])
        except BaseException:
            self._unpin(paths)
            raise
        return _Stream(self, first, ranges, paths)

    def _open(self, path: str, lo: int, length: int):
        """The body of a ranged GET of segment *path* (Gone when it was freed)."""
        try:
            return self._call("read an object", self.client.get_object, Key=_key(path),
                              Range=f"bytes={lo}-{lo + length - 1}")["Body"]
        except ClientError:
            raise Gone(path) from None

    def _pin(self, paths: list[str]) -> None:
        with self._lock:
            self._pins.update(paths)

    def _unpin(self, paths: list[str]) -> None:
        with self._lock:
            self._pins.subtract(paths)
            free = [path for path in set(paths)
                    if self._pins[path] <= 0 and path in self._deferred]
            for path in set(paths):
                if self._pins[path] <= 0:
                    del self._pins[path]
            self._deferred.difference_update(free)
        self._delete_now(free)

    # --- freeing and recovery ----------------------------------------------------------

    def delete(self, paths: Iterable[str]) -> None:
        now = []
        with self._lock:
            for path in paths:
                if self._pins[path] > 0:
                    self._deferred.add(path)
                else:
                    self._pins.pop(path, None)
                    now.append(path)
        self._delete_now(now)

    def _delete_now(self, paths: list[str]) -> None:
        for start in range(0, len(paths), 1000):
            batch = [{"Key": _key(path)} for path in paths[start:start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket,
                                           Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as error:
                log.warning("Walrus' s3 backend %s could not delete %d freed segment(s) "
                            "(start-up recovery will): %s", self.url, len(batch), error)

    def recover(self, referenced: set[str]) -> tuple[int, int]:
        """Abort every backend multipart upload (at start-up none is this cloud's live
        write) and delete every backend object no row names. A backend that cannot be
        reached is logged and left for the next start."""
        try:
            self.ensure_bucket()
            uploads = 0
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket)
            for page in pages:
                for upload in page.get("Uploads", []):
                    self._abort(upload["Key"], upload["UploadId"])
                    uploads += 1
            orphans = []
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket):
                orphans += [PREFIX + item["Key"] for item in page.get("Contents", [])
                            if PREFIX + item["Key"] not in referenced]
            self._delete_now(orphans)
            return uploads, len(orphans)
        except (ServiceUnavailable, BotoCoreError, ClientError) as error:
            log.warning("Walrus' s3 backend %s is unreachable at start-up; its orphans are "
                        "left for the next start: %s", self.url, _reason(error))
            return 0, 0

    def segments(self) -> Iterator[Stored]:
        self.ensure_bucket()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                yield Stored(PREFIX + item["Key"], item["Size"])

    def describe(self) -> str:
        """Asks the backend with a client of its own (one attempt, 3 s to connect): the
        banner is written before the server forks its worker, which must not inherit an
        open connection of this backend's client."""
        where = f"object data in s3 bucket {self.bucket} at {self.url}"
        probe = self._new_client(3, 10, 1)
        try:
            probe.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _NOT_FOUND:
                return f"{where} (UNREACHABLE: {_reason(error)})"
        except BotoCoreError as error:
            return f"{where} (UNREACHABLE: {_reason(error)})"
        finally:
            probe.close()
        return f"{where} (reachable)"


class _Stream:
    """The chunks of a read's ranges: the first GET already open, each later one opened
    as the stream reaches it. Closing it (or its end, or an error) closes the open GET and
    unpins the read's segments, also when it is closed before the first chunk (a
    generator would then skip its clean-up)."""

    def __init__(self, backend: S3Backend, body, ranges: list[tuple[str, int, int]],
                 paths: list[str]):
        self._backend, self._body, self._paths = backend, body, paths
        self._chunks = self._generate(ranges)
        self._closed = False

    def __iter__(self) -> "_Stream":
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def _generate(self, ranges: list[tuple[str, int, int]]) -> Iterator[bytes]:
        for index, (path, lo, remaining) in enumerate(ranges):
            if index:
                self._body.close()
                self._body = self._backend._open(path, lo, remaining)
            while remaining > 0:
                try:
                    chunk = self._body.read(min(CHUNK, remaining))
                except BotoCoreError as error:
                    raise self._backend._unavailable("send an object", error) from None
                if not chunk:
                    raise IOError(f"segment {path} is shorter than recorded")
                remaining -= len(chunk)
                yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._chunks.close()
        self._body.close()
        self._backend._unpin(self._paths)

    def __del__(self) -> None:
        self.close()


def _settle(future) -> None:
    """Wait for a part upload that can no longer be cancelled, whatever it ends with (the
    upload is aborted next, and must not get a part after that)."""
    try:
        future.result()
    except BaseException:  # noqa: BLE001 - the write's own error is the one raised
        pass


def _key(path: str) -> str:
    return path[len(PREFIX):]


def _fill(reader: Readable, size: int, limit: int | None) -> tuple[bytes, int]:
    """Up to :data:`PART_SIZE` more bytes of *reader* (fewer only at its end), and the
    stream's size so far; TooLarge past *limit*."""
    pieces, have = [], 0
    while have < PART_SIZE:
        chunk = reader.read(min(CHUNK, PART_SIZE - have))
        if not chunk:
            break
        pieces.append(chunk)
        have += len(chunk)
        if limit is not None and size + have > limit:
            raise TooLarge(limit)
    return b"".join(pieces), size + have


def _reason(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')} {details.get('Message', '')}".strip()
    return str(error)
