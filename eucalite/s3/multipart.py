"""Multipart uploads: create, upload parts (or copy them), complete, abort, list.

Each part is one immutable segment in the bucket's backend (with the s3 backend a backend
object, itself a backend multipart upload when large: eucalite.s3.backends.s3 says why a
Walrus upload is not one backend upload). Completing an upload makes the chosen parts the
new object's segments in one write transaction, so no byte is copied a second time; parts
left out of the completion are freed.

UploadPartCopy streams the source through this process even on the s3 backend: the part's
ETag is the MD5 of its bytes and its checksum theirs, which a backend-side copy would not
give (and SSE re-encrypts each part under its own IV).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from .. import ids
from ..accounts import Principal, utcnow
from ..db import bytewise, db, write_lock
from ..errors.s3 import (EntityTooLarge, EntityTooSmall, InvalidArgument, InvalidPart,
                         InvalidPartOrder, MalformedXML, NoSuchKey, NoSuchUpload,
                         OperationAborted)
from . import authz, buckets, checksums, objects, sse
from .listing import successor
from .models import Bucket, MultipartUpload, ObjectVersion, UploadPart
from .store import Gone, HashingReader, ObjectStore, TooLarge

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 ** 3
MAX_PARTS = 10000


@dataclass
class Completed:
    number: int
    etag: str
    checksum: str | None = None
    checksum_algorithm: str | None = None       # of the Checksum<ALG> element


def create(requester: Principal | None, bucket_name: str, key: str,
           attributes: objects.Attributes, checksum_algorithm: str | None,
           checksum_type: str | None = None) -> MultipartUpload:
    objects.validate_key(key)
    objects.check_attributes(attributes)
    bucket = buckets.find(bucket_name)
    authz.require(requester, "s3:PutObject", bucket, key=key)
    upload = MultipartUpload(
        id=ids.upload_id(), bucket_id=bucket.id, key=key, initiated=utcnow(),
        owner_id=requester.account_id if requester else bucket.owner_id,
        initiator_arn=requester.arn if requester else "", content_type=attributes.content_type,
        checksum_algorithm=checksum_algorithm, checksum_type=checksum_type,
        storage_class=attributes.storage_class,
        lock_mode=attributes.lock_mode, lock_until=attributes.lock_until,
        legal_hold=attributes.legal_hold)
    upload.set_json("sse", attributes.sse)
    upload.set_json("headers", attributes.headers or None)
    upload.set_json("meta", attributes.meta or None)
    upload.set_json("acl", attributes.acl)
    upload.set_json("tags", attributes.tags or None)
    write_lock()
    db.session.add(upload)
    db.session.commit()
    return upload


def get_upload(requester: Principal | None, bucket_name: str, key: str, upload_id: str,
               action: str = "s3:PutObject") -> MultipartUpload:
    return _find_upload(requester, bucket_name, key, upload_id, action)[1]


def _find_upload(requester: Principal | None, bucket_name: str, key: str, upload_id: str,
                 action: str = "s3:PutObject") -> tuple[Bucket, MultipartUpload]:
    """(bucket, upload) if *requester* may perform *action* on it; else NoSuchUpload."""
    bucket = buckets.find(bucket_name)
    authz.require(requester, action, bucket, key=key)
    upload = db.session.get(MultipartUpload, upload_id)
    if upload is None or upload.bucket_id != bucket.id or upload.key != key:
        raise NoSuchUpload(upload_id)
    return bucket, upload


def _check_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PARTS:
        raise InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                              ArgumentName="partNumber", ArgumentValue=str(number))


def upload_part(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
                upload_id: str, number: int, reader,
                customer: sse.CustomerKey | None = None) -> UploadPart:
    """UploadPart: stream one part to disk, then record it (replacing an earlier upload of
    the same part number). *customer*: the SSE-C key, which must be the upload's."""
    _check_part_number(number)
    bucket, upload = _find_upload(requester, bucket_name, key, upload_id)
    store = store.on(bucket.backend)         # parts go where the bucket's data goes
    algorithm = upload.checksum_algorithm or checksums.DEFAULT
    if upload.checksum_algorithm:
        reader.require_checksum(upload.checksum_algorithm,
                                optional=upload.checksum_type == checksums.FULL_OBJECT)
    else:
        reader.default_checksum(algorithm)
    # The part's checksum in the upload's algorithm, or S3's default for an upload created
    # without one (the client may still have sent another for this part alone).
    summed = reader if reader.checksum_algorithm == algorithm else \
        checksums.Summing(reader, algorithm)
    encrypted, iv = sse.encrypt_part(store.root, upload.get_json("sse"), summed, customer)
    db.session.rollback()
    try:
        stored = store.write(encrypted, limit=MAX_PART_SIZE)
    except TooLarge:
        raise EntityTooLarge("Your proposed upload exceeds the maximum "
                             "allowed size", MaxSizeAllowed=str(MAX_PART_SIZE))
    return _record_part(store, upload_id, number, stored, encrypted.md5_hex,
                        summed.checksum_b64, iv)


def copy_part(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
              upload_id: str, number: int, source: ObjectVersion,
              byte_range: tuple[int, int] | None,
              source_customer: sse.CustomerKey | None = None,
              customer: sse.CustomerKey | None = None) -> UploadPart:
    """UploadPartCopy: the source's bytes (or a range of them), decrypted with the
    source's key, become part *number*, encrypted under the upload's."""
    _check_part_number(number)
    bucket, upload = _find_upload(requester, bucket_name, key, upload_id)
    store = store.on(bucket.backend)
    algorithm, record = upload.checksum_algorithm or checksums.DEFAULT, upload.get_json("sse")
    sse.check_upload_key(record, customer)
    start, end = byte_range if byte_range else (0, source.size - 1)
    try:
        reader = HashingReader(sse.read(store, source, start, end, source_customer))
    except Gone:                        # the source was replaced or deleted meanwhile
        raise NoSuchKey(source.key) from None
    db.session.rollback()               # the source row may be gone once this ends
    summed = checksums.Summing(reader, algorithm)
    encrypted, iv = sse.encrypt_part(store.root, record, summed, customer)
    stored = store.write(encrypted)
    etag = encrypted.md5_hex if sse.is_customer(record) else reader.md5.hexdigest()
    return _record_part(store, upload_id, number, stored, etag, summed.checksum_b64, iv)


def _record_part(store: ObjectStore, upload_id: str, number: int, stored, etag: str,
                 checksum: str | None, iv: str | None = None) -> UploadPart:
    replaced = None
    try:
        write_lock()
        upload = db.session.get(MultipartUpload, upload_id)
        if upload is None:                                        # aborted meanwhile
            raise NoSuchUpload(upload_id)
        part = db.session.get(UploadPart, (upload_id, number))
        if part is not None:
            replaced = part.path
            part.size, part.etag, part.path = stored.size, etag, stored.path
            part.last_modified, part.checksum_value = utcnow(), checksum
        else:
            part = UploadPart(upload_id=upload_id, part_number=number, size=stored.size,
                              etag=etag, path=stored.path, last_modified=utcnow(),
                              checksum_value=checksum)
            db.session.add(part)
        sse.note_part(upload, stored.path, iv, replaced)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        store.delete([stored.path])
        raise
    if replaced:
        store.delete([replaced])
    return part


def parts_of(upload_id: str) -> list[UploadPart]:
    return list(db.session.execute(db.select(UploadPart).filter_by(upload_id=upload_id)
                                   .order_by(UploadPart.part_number)).scalars())


#: How often CompleteMultipartUpload chooses its parts again when parts it chose were
#: uploaded again meanwhile, before it gives up with OperationAborted.
COMPLETE_ATTEMPTS = 3


class _PartsChanged(Exception):
    """A part that completion chose was replaced before completion could record it."""


def complete(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
             upload_id: str, chosen: list[Completed], precondition=None,
             headers: dict[str, str] | None = None) -> ObjectVersion:
    """CompleteMultipartUpload, with S3's checks: parts ascending (InvalidPartOrder), each
    uploaded with the given ETag (InvalidPart), all but the last at least 5 MiB
    (EntityTooSmall). The ETag is the MD5 of the parts' MD5s, then ``-<count>``.

    The parts are chosen outside the write transaction (checking them reads every part
    row), so an UploadPart of the same number may replace one, and free its file, before the
    object is recorded. The transaction that records the object therefore checks that every
    chosen part is still the file it chose; if one is not, the parts are chosen again from
    what is there now (the client's ETag then decides: same bytes complete, other bytes are
    InvalidPart). An object never points at a freed file. *headers* (lower-case names) are
    the request's, for the whole-object checksum it may claim (checksums.of_multipart).
    """
    for _attempt in range(COMPLETE_ATTEMPTS):
        try:
            return _complete_once(store, requester, bucket_name, key, upload_id, chosen,
                                  precondition, headers or {})
        except _PartsChanged:
            continue
        except NoSuchUpload:
            done = _completed_before(bucket_name, key, chosen)
            if done is None:
                raise
            return done
    raise OperationAborted("A conflicting conditional operation is currently "
                           "in progress against this resource. Please try again.")


def _complete_once(store: ObjectStore, requester: Principal | None, bucket_name: str,
                   key: str, upload_id: str, chosen: list[Completed],
                   precondition=None, headers: dict[str, str] | None = None) -> ObjectVersion:
    upload = get_upload(requester, bucket_name, key, upload_id)
    if not chosen:
        raise MalformedXML()
    numbers = [item.number for item in chosen]
    if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
        raise InvalidPartOrder("The list of parts was not in ascending order. "
                               "The parts list must be specified in order by part number.",
                               UploadId=upload_id)
    uploaded = {part.part_number: part for part in parts_of(upload_id)}
    selected: list[UploadPart] = []
    for item in chosen:
        part = uploaded.get(item.number)
        if part is None or item.etag.strip('"') != part.etag:
            raise InvalidPart("One or more of the specified parts could not be found. The part "
                              "may not have been uploaded, or the specified entity tag may not "
                              "match the part's entity tag.", UploadId=upload_id,
                              PartNumber=str(item.number), ETag=item.etag)
        selected.append(part)
    for part in selected[:-1]:
        if part.size < MIN_PART_SIZE:
            raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed "
                                 "object size.", ProposedSize=str(part.size),
                                 MinSizeAllowed=str(MIN_PART_SIZE),
                                 PartNumber=str(part.part_number), ETag=part.etag)
    digest = hashlib.md5(b"".join(bytes.fromhex(part.etag) for part in selected))
    etag = f"{digest.hexdigest()}-{len(selected)}"
    checksum = checksums.of_multipart(
        upload.checksum_algorithm, upload.checksum_type,
        [checksums.PartClaim(part.part_number, part.size, part.checksum_value,
                             item.checksum_algorithm, item.checksum)
         for part, item in zip(selected, chosen)], headers or {}, upload_id)
    parts = _parts_record(upload, selected)
    attributes = objects.Attributes(
        content_type=upload.content_type, headers=upload.get_json("headers", {}),
        meta=upload.get_json("meta", {}), acl=upload.get_json("acl"),
        tags=upload.get_json("tags"), storage_class=upload.storage_class,
        sse=sse.completed(upload.get_json("sse"), [part.path for part in selected]),
        lock_mode=upload.lock_mode, lock_until=upload.lock_until,
        legal_hold=upload.legal_hold)
    segments = [objects.Stored(part.path, part.size) for part in selected]
    chosen_paths = {part.part_number: part.path for part in selected}
    leftovers: list[str] = []

    def finish_upload(_bucket) -> None:
        fresh = db.session.get(MultipartUpload, upload_id)
        if fresh is None:
            raise NoSuchUpload(upload_id)
        now = {part.part_number: part.path for part in parts_of(upload_id)}
        if any(now.get(number) != path for number, path in chosen_paths.items()):
            raise _PartsChanged()
        # Read under the lock too: a part left out may have been replaced meanwhile.
        leftovers.extend(path for number, path in now.items() if number not in chosen_paths)
        db.session.delete(fresh)                  # parts cascade; their files live on

    db.session.rollback()
    # On failure the part files stay: they still belong to the upload, which the client
    # may complete again or abort.
    version = objects.record(store, requester, bucket_name, key, segments, attributes,
                             etag=etag, checksum=checksum, parts_count=len(selected),
                             parts=parts,
                             in_transaction=finish_upload, precondition=precondition,
                             free_on_failure=False)
    store.delete(leftovers)
    return version


def _parts_record(upload: MultipartUpload, parts: list[UploadPart]) -> list[dict]:
    """The completed object's parts as ``parts_json`` keeps them (GetObjectAttributes),
    each with its checksum in the upload's algorithm or S3's default."""
    name = f"Checksum{upload.checksum_algorithm or checksums.DEFAULT}"
    return [{"PartNumber": part.part_number, "Size": part.size,
             **({name: part.checksum_value} if part.checksum_value else {})}
            for part in parts]


def part_checksum_headers(version: ObjectVersion, number: int) -> dict[str, str]:
    """The checksum headers a checksum-mode read of part *number* of multipart object
    *version* carries, as S3: a COMPOSITE object's part has its own checksum (the one it
    was uploaded with, so the client can verify the part); a FULL_OBJECT object's only part
    is the whole object; any other part has none a client could check."""
    if not version.checksum_algorithm:
        return {}
    name = checksums.header_name(version.checksum_algorithm)
    if version.checksum_type == checksums.FULL_OBJECT:
        if version.parts_count != 1:
            return {}
        return {name: version.checksum_value, checksums.TYPE_HEADER: checksums.FULL_OBJECT}
    part = next((part for part in version.get_json("parts") or []
                 if part["PartNumber"] == number), {})
    value = part.get(f"Checksum{version.checksum_algorithm}")
    return {name: value, checksums.TYPE_HEADER: checksums.COMPOSITE} if value else {}


#: How long after completing an upload a retried CompleteMultipartUpload still gets its result.
RETRY_WINDOW = dt.timedelta(hours=1)


def _completed_before(bucket_name: str, key: str,
                      chosen: list[Completed]) -> ObjectVersion | None:
    """The object a retried CompleteMultipartUpload already made, or None.

    A client whose first answer was lost retries; S3 answers 200 with the same result for a
    while after the upload completed. The upload row is gone by then, so the object is
    recognised by what the request names: *key*'s current version made from parts with
    exactly these ETags, recently. (The requester was authorised by the lookup that failed.)
    """
    try:
        digest = hashlib.md5(b"".join(bytes.fromhex(item.etag.strip().strip('"'))
                                      for item in chosen))
    except ValueError:
        return None
    version = objects.latest(buckets.find(bucket_name), key)
    if version is None or version.delete_marker or not chosen or \
            version.etag != f"{digest.hexdigest()}-{len(chosen)}" or \
            version.last_modified < utcnow() - RETRY_WINDOW:
        return None
    return version


def abort(store: ObjectStore, requester: Principal | None, bucket_name: str, key: str,
          upload_id: str) -> None:
    get_upload(requester, bucket_name, key, upload_id, action="s3:AbortMultipartUpload")
    write_lock()
    upload = db.session.get(MultipartUpload, upload_id)
    if upload is None:
        db.session.rollback()
        raise NoSuchUpload(upload_id)
    paths = [part.path for part in parts_of(upload_id)]
    db.session.delete(upload)
    db.session.commit()
    store.delete(paths)


def list_uploads(requester: Principal | None, bucket_name: str, *, prefix: str = "",
                 delimiter: str = "", key_marker: str | None = None,
                 upload_id_marker: str | None = None, max_uploads: int = 1000):
    """ListMultipartUploads: (uploads, common prefixes, truncated), by key then initiation."""
    bucket = buckets.get(requester, bucket_name, "s3:ListBucketMultipartUploads")
    query = db.select(MultipartUpload).filter_by(bucket_id=bucket.id)
    if prefix:
        query = query.where(bytewise(MultipartUpload.key) >= prefix)
        upper = successor(prefix)
        if upper:
            query = query.where(bytewise(MultipartUpload.key) < upper)
    rows = list(db.session.execute(query.order_by(bytewise(MultipartUpload.key),
                                                  MultipartUpload.initiated,
                                                  MultipartUpload.id)).scalars())
    if key_marker is not None:
        if upload_id_marker:
            rows = [row for row in rows if row.key > key_marker or (
                row.key == key_marker and (row.initiated, row.id) > _upload_position(
                    rows, key_marker, upload_id_marker))]
        else:
            rows = [row for row in rows if row.key > key_marker]
        # A marker that is (or lies inside) a common prefix already listed that prefix:
        # its keys are not rolled up into it a second time.
        position = key_marker.find(delimiter, len(prefix)) if delimiter and \
            key_marker.startswith(prefix) else -1
        if position >= 0:
            listed = key_marker[:position + len(delimiter)]
            rows = [row for row in rows if not row.key.startswith(listed)]
    uploads, prefixes = [], []
    for row in rows:
        if delimiter:
            position = row.key.find(delimiter, len(prefix))
            if position >= 0:
                common = row.key[:position + len(delimiter)]
                if common not in prefixes:
                    if len(uploads) + len(prefixes) >= max_uploads:
                        return uploads, prefixes, True
                    prefixes.append(common)
                continue
        if len(uploads) + len(prefixes) >= max_uploads:
            return uploads, prefixes, True
        uploads.append(row)
    return uploads, prefixes, False


def _upload_position(rows, key, upload_id):
    for row in rows:
        if row.key == key and row.id == upload_id:
            return (row.initiated, row.id)
    return (utcnow(), upload_id)
