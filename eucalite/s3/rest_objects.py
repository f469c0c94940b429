"""S3 controllers for objects: PUT (and copy), GET, HEAD, DELETE, and an object's ACL and
tags. Bodies stream both ways: a PUT goes through a verifying reader straight to disk, a
GET streams the stored segments (or the requested range)."""
from __future__ import annotations

import datetime as dt
import email.utils
import re
from urllib.parse import unquote

from flask import Response

from .. import integers
from ..errors.s3 import (InvalidArgument, InvalidPartNumber, InvalidRange, InvalidRequest,
                         InvalidStorageClass, MetadataTooLarge, NotModified,
                         SlowDown)
from . import (acl, buckets, conditions, expiry, objects, ownership, rest_encryption, sse,
               tagging)
from . import metavalues
from . import authz, checksums, multipart, objectlock, requestkeys
from .conditions import etag_matches as _etag_matches, precondition_failed
from .models import ObjectVersion
from .rest_common import acl_from_request, acl_response
from .routing import S3Request, empty, route, xml_response
from .store import Gone
from .xmlout import add, root

STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding",
                  "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
STORAGE_CLASSES = {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                   "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}
MAX_USER_METADATA = 2 * 1024


# --- request attributes -------------------------------------------------------------------

def attributes_from(req: S3Request, owner_id: str | None,
                    bucket_owner_id: str) -> objects.Attributes:
    """What a PUT / CreateMultipartUpload / REPLACE copy says about the new object."""
    headers = {}
    for name in STORED_HEADERS:
        value = req.header(name)
        if name == "content-encoding" and value:
            # aws-chunked is transfer framing, not part of the object's encoding.
            value = ",".join(part.strip() for part in value.split(",")
                             if part.strip() and part.strip() != "aws-chunked")
        if value:
            headers[name] = value
    meta = {name[len("x-amz-meta-"):]: metavalues.stored(value)
            for name, value in req.headers.items()
            if name.startswith("x-amz-meta-")}
    if sum(len(key) + len(value) for key, value in meta.items()) > MAX_USER_METADATA:
        raise MetadataTooLarge("Your metadata headers exceed the maximum "
                               "allowed metadata size.", MaxSizeAllowed=str(MAX_USER_METADATA))
    storage_class = req.header("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise InvalidStorageClass("The storage class you specified is not "
                                  "valid", StorageClassRequested=storage_class)
    ownership.check_write_acl(req.bucket, req.headers)
    acl_json = None
    if owner_id is not None:
        parsed = acl.acl_from_headers(req.headers, acl.canonical_id(owner_id),
                                      acl.canonical_id(bucket_owner_id))
        acl_json = parsed.to_json() if parsed else None
    tags = None
    if req.header("x-amz-tagging") is not None:
        tags = tagging.parse_tagging_header(req.header("x-amz-tagging"))
    encryption, customer = rest_encryption.requested(req.headers, req.s3.config)
    return objects.Attributes(content_type=req.header("content-type"), headers=headers,
                              meta=meta, acl=acl_json, tags=tags,
                              storage_class=storage_class, sse=encryption,
                              sse_customer=customer)


class BucketFacts:
    """What response headers need from a bucket, read once before a write ends the
    transaction (reading the row again afterwards would cost another query)."""

    def __init__(self, bucket):
        self.versioning = bucket.versioning
        self._lifecycle = bucket.get_json("lifecycle")

    def get_json(self, name: str, default=None):
        return self._lifecycle if name == "lifecycle" else default


def version_headers(version: ObjectVersion, bucket) -> dict[str, str]:
    """x-amz-version-id and x-amz-expiration for *version*. *bucket* may be a Bucket row or
    a ``BucketFacts`` snapshot taken earlier in the request."""
    headers = {}
    if bucket.versioning is not None:
        headers["x-amz-version-id"] = version.version_id
    rules = bucket.get_json("lifecycle")
    if rules and not version.delete_marker:
        expiration = expiry.expiration_header(rules, version.key, version.size,
                                              version.get_json("tags", {}),
                                              version.last_modified)
        if expiration:
            headers["x-amz-expiration"] = expiration
    return headers


def checksum_headers(version: ObjectVersion) -> dict[str, str]:
    if not version.checksum_algorithm:
        return {}
    return {f"x-amz-checksum-{version.checksum_algorithm.lower()}": version.checksum_value,
            "x-amz-checksum-type": version.checksum_type or "FULL_OBJECT"}


# --- PUT ----------------------------------------------------------------------------------

@route("PUT", "object")
def put_object(req: S3Request) -> Response:
    if req.header("x-amz-copy-source"):
        return copy_object(req)
    bucket = buckets.read(req.bucket)
    facts = BucketFacts(bucket)
    owner_id = req.requester.account_id if req.requester else None
    attributes = attributes_from(req, owner_id, bucket.owner_id)
    objectlock.apply_headers(req.headers, req.requester, bucket, req.key, attributes)
    objectlock.require_integrity(req.headers, bucket, attributes)
    condition = conditions.checked_write_condition(req.requester, req.headers, bucket, req.key)
    reader = req.stream()
    reader.default_checksum(checksums.DEFAULT)
    version = objects.put(req.s3.store, req.requester, req.bucket, req.key, reader, attributes,
                          bucket=bucket, precondition=condition and condition.recheck)
    headers = {"ETag": f'"{version.etag}"', **version_headers(version, facts),
               **sse.headers(version.get_json("sse")), **checksum_headers(version)}
    return empty(200, headers)


def _copy_source(req: S3Request) -> tuple[str, str, str | None]:
    raw = req.header("x-amz-copy-source")
    path, _, query = raw.partition("?")
    path = unquote(path).lstrip("/")
    bucket, _, key = path.partition("/")
    version_id = None
    if query:
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if name == "versionId":
                version_id = unquote(value)
    if not bucket or not key:
        raise InvalidArgument("Copy Source must mention the source bucket "
                              "and key: sourcebucket/sourcekey", ArgumentName="x-amz-copy-source",
                              ArgumentValue=raw)
    return bucket, key, version_id


def copy_source_version(req: S3Request) -> ObjectVersion:
    """The version x-amz-copy-source names, readable by the requester, conditions checked."""
    bucket, key, version_id = _copy_source(req)
    source = objects.get(req.requester, bucket, key, version_id)
    _check_read_conditions(req, source, prefix="x-amz-copy-source-")
    return source


def copy_object(req: S3Request) -> Response:
    source = copy_source_version(req)
    bucket = buckets.find(req.bucket)
    directive = req.header("x-amz-metadata-directive", "COPY").upper()
    tag_directive = req.header("x-amz-tagging-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE") or tag_directive not in ("COPY", "REPLACE"):
        raise InvalidArgument("Unknown metadata or tagging directive.")
    owner_id = req.requester.account_id if req.requester else None
    attributes = attributes_from(req, owner_id, bucket.owner_id)
    objectlock.apply_headers(req.headers, req.requester, bucket, req.key, attributes)
    if directive == "COPY":
        attributes.content_type = source.content_type
        attributes.headers = source.get_json("headers", {})
        attributes.meta = source.get_json("meta", {})
    if tag_directive == "COPY":
        attributes.tags = source.get_json("tags")
    source_bucket_name, _, source_version_id = _copy_source(req)
    source_bucket = buckets.find(source_bucket_name)
    # Copying the current object onto itself changes nothing, versioned bucket or not;
    # naming a source version (restoring an older one) is a real copy.
    if (source_bucket.id == bucket.id and source.key == req.key and directive == "COPY"
        and attributes.storage_class == source.storage_class
        and source_version_id is None and not rest_encryption.asks_encryption(req)):
        raise InvalidRequest("This copy request is illegal because it is "
                             "trying to copy an object to itself without changing the object's "
                             "metadata, storage class, website redirect location or encryption "
                             "attributes.")
    condition = conditions.checked_write_condition(req.requester, req.headers, bucket, req.key)
    version = objects.copy(req.s3.store, req.requester, source, req.bucket, req.key, attributes,
                           rest_encryption.source_key(req),
                           precondition=condition and condition.recheck)
    document = root("CopyObjectResult")
    add(document, "LastModified", version.last_modified)
    add(document, "ETag", f'"{version.etag}"')
    if version.checksum_algorithm:
        add(document, "ChecksumType", version.checksum_type or checksums.FULL_OBJECT)
        add(document, f"Checksum{version.checksum_algorithm}", version.checksum_value)
    headers = {**version_headers(version, buckets.find(req.bucket)),
               **sse.headers(version.get_json("sse"))}
    if source_bucket.versioning is not None:
        headers["x-amz-copy-source-version-id"] = source.version_id
    return xml_response(document, headers=headers)


# --- GET / HEAD ---------------------------------------------------------------------------

def _http_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
        return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo \
            else parsed
    except (TypeError, ValueError, IndexError, OverflowError):   # ignored, as S3 does
        return None


def _check_read_conditions(req: S3Request, version: ObjectVersion, prefix: str = "") -> None:
    """If-Match / If-None-Match / If-(Un)Modified-Since, combined as S3 (RFC 7232) does."""
    modified = version.last_modified.replace(microsecond=0)
    match = req.header(prefix + "if-match")
    none_match = req.header(prefix + "if-none-match")
    since = _http_time(req.header(prefix + "if-modified-since"))
    unmodified = _http_time(req.header(prefix + "if-unmodified-since"))
    if match is not None:
        if not _etag_matches(match, version.etag):
            raise precondition_failed(prefix + "If-Match")
    elif unmodified is not None and modified > unmodified:
        raise precondition_failed(prefix + "If-Unmodified-Since")
    not_modified = _not_modified(version) if not prefix else precondition_failed(
        prefix + "If-None-Match")
    if none_match is not None:
        if _etag_matches(none_match, version.etag):
            raise not_modified
    elif since is not None and modified <= since and since <= dt.datetime.utcnow():
        raise not_modified if not prefix else precondition_failed(prefix + "If-Modified-Since")


def _not_modified(version: ObjectVersion) -> NotModified:
    """304, with the validators a 200 would have carried (RFC 7232 4.1), so a cache can
    refresh its copy."""
    error = NotModified("Not Modified")
    error.headers = {"ETag": f'"{version.etag}"',
                     "Last-Modified": objects.http_date(version.last_modified)}
    return error


_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single byte range; None for none or an unparseable one
    (S3 then sends the whole object); InvalidRange when it cannot be satisfied."""
    if not header:
        return None
    found = _RANGE.fullmatch(header.strip())
    if not found or (not found.group(1) and not found.group(2)):
        return None
    first, last = (integers.parse(value) if value else None for value in found.groups())
    if (found.group(1) and first is None) or (found.group(2) and last is None):
        return None                     # more digits than any object has bytes
    if first is not None:
        start = first
        end = min(last, size - 1) if last is not None else size - 1
        if last is not None and last < start:
            return None
    else:
        suffix = last
        if suffix == 0:
            raise _invalid_range(header, size)
        start, end = max(size - suffix, 0), size - 1
    if start >= size:
        raise _invalid_range(header, size)
    return start, end


def _invalid_range(header: str, size: int) -> InvalidRange:
    error = InvalidRange("The requested range is not satisfiable",
                         RangeRequested=header, ActualObjectSize=str(size))
    error.headers = {"Content-Range": f"bytes */{size}"}
    return error


def _read_version(req: S3Request) -> tuple[ObjectVersion, object]:
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"))
    return version, buckets.find(req.bucket)


def _object_headers(req: S3Request, version: ObjectVersion, bucket) -> dict[str, str]:
    headers = {
        "Content-Type": version.content_type or "binary/octet-stream",
        "ETag": f'"{version.etag}"',
        "Last-Modified": objects.http_date(version.last_modified),
        "Accept-Ranges": "bytes",
        # Objects share the console's origin (same host and port): a sandboxed document runs
        # in an opaque origin, so an uploaded HTML page cannot script the signed-in console.
        "Content-Security-Policy": "sandbox",
    }
    for name, value in version.get_json("headers", {}).items():
        headers["-".join(part.capitalize() for part in name.split("-"))] = value
    for name, value in version.get_json("meta", {}).items():
        headers[f"x-amz-meta-{name}"] = metavalues.returned(value)
    tags = version.get_json("tags")
    if tags:
        headers["x-amz-tagging-count"] = str(len(tags))
    if version.storage_class != "STANDARD":
        headers["x-amz-storage-class"] = version.storage_class
    headers.update(version_headers(version, bucket))
    if version.lock_mode or version.legal_hold is not None:
        headers.update(objectlock.response_headers(req.requester, bucket, version))
    if _checksum_mode(req):
        headers.update(checksum_headers(version))
    overrides = {name: value for name, value in req.query.items() if name in RESPONSE_OVERRIDES}
    if overrides:
        if req.requester is None:
            raise InvalidRequest("Request specific response headers cannot be "
                                 "used for anonymous GET requests.")
        for name, value in overrides.items():
            objects.check_header(RESPONSE_OVERRIDES[name], value)
            headers[RESPONSE_OVERRIDES[name]] = value
    return headers


def _checksum_mode(req: S3Request) -> bool:
    """Whether a GET/HEAD asks for the object's checksum (x-amz-checksum-mode: ENABLED)."""
    return (req.header("x-amz-checksum-mode") or "").upper() == "ENABLED"


def _selected_range(req: S3Request, version: ObjectVersion) -> tuple[tuple[int, int] | None, dict]:
    """The byte range to send and extra headers, from partNumber or Range (a part's
    checksum, with checksum mode, replaces the whole object's)."""
    part = req.query.get("partNumber")
    if part is not None and req.header("range"):
        raise InvalidRequest("Cannot specify both Range header and partNumber "
                             "query parameter")
    if part is not None:
        number = integers.parse(part) or 0
        segments = version.segments
        count = len(segments) if version.parts_count else 1
        if not 1 <= number <= max(count, 1):
            raise InvalidPartNumber("The requested partnumber is not "
                                    "satisfiable", PartNumberRequested=part,
                                    ActualPartCount=str(count))
        if not version.parts_count:
            # A single-part object: part 1 is the whole object, still sent as a range (206
            # with Content-Range), as S3 does.
            return ((0, version.size - 1) if version.size else None), {}
        start = sum(size for _, size in segments[:number - 1])
        return (start, start + segments[number - 1][1] - 1), {
            "x-amz-mp-parts-count": str(version.parts_count),
            **(multipart.part_checksum_headers(version, number) if _checksum_mode(req)
               else {})}
    return parse_range(req.header("range"), version.size), {}


@route("GET", "object")
def get_object(req: S3Request) -> Response:
    return _serve(req, with_body=True)


@route("HEAD", "object")
def head_object(req: S3Request) -> Response:
    return _serve(req, with_body=False)


#: How often a GET looks an object up again when its data was freed between the lookup
#: and the read (another client replaced or deleted it), before answering SlowDown.
READ_ATTEMPTS = 3


def _serve(req: S3Request, with_body: bool) -> Response:
    for _attempt in range(READ_ATTEMPTS):
        try:
            return _serve_once(req, with_body)
        except Gone:
            continue
    raise SlowDown("Please reduce your request rate.")


def _serve_once(req: S3Request, with_body: bool) -> Response:
    """GET or HEAD of the version the request names; Gone when its data was freed after
    it was looked up (the body is opened before any header is sent)."""
    version, bucket = _read_version(req)
    customer = rest_encryption.object_read_key(req)
    sse.check_key(version.get_json("sse"), customer)
    _check_read_conditions(req, version)
    headers = {**_object_headers(req, version, bucket), **sse.headers(version.get_json("sse"))}
    byte_range, extra = _selected_range(req, version)
    status = 200
    length = version.size
    if byte_range is not None:
        start, end = byte_range
        length = end - start + 1
        headers["Content-Range"] = f"bytes {start}-{end}/{version.size}"
        status = 206
        headers.pop("x-amz-checksum-" + (version.checksum_algorithm or "").lower(), None)
    headers.update(extra)
    headers["Content-Length"] = str(length)
    if not with_body:
        response = Response(b"", status=status)
    else:
        start, end = byte_range if byte_range is not None else (0, version.size - 1)
        body = sse.read(req.s3.store, version, start, end, customer)
        response = Response(body, status=status, direct_passthrough=True)
    for name, value in headers.items():
        response.headers[name] = value
    return response


# --- DELETE -------------------------------------------------------------------------------

@route("DELETE", "object")
def delete_object(req: S3Request) -> Response:
    deleted = objects.delete(req.s3.store, req.requester, req.bucket, req.key,
                             req.query.get("versionId"),
                             bypass_governance=objectlock.bypass_requested(req.headers))
    headers = {}
    if deleted.version_id:
        headers["x-amz-version-id"] = deleted.version_id
    if deleted.delete_marker:
        headers["x-amz-delete-marker"] = "true"
    return empty(204, headers)


# --- object ACL and tags ------------------------------------------------------------------

@route("GET", "object", "acl")
def get_object_acl(req: S3Request) -> Response:
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"),
                          action="s3:GetObjectAcl")
    return acl_response(*ownership.acl_shown(buckets.find(req.bucket), version.acl_json,
                                             version.owner_id))


@route("PUT", "object", "acl")
def put_object_acl(req: S3Request) -> Response:
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"),
                          action="s3:PutObjectAcl")
    bucket = buckets.find(req.bucket)
    requested = acl_from_request(req, version.owner_id, bucket.owner_id)
    ownership.check_acl_update(bucket, req.header("x-amz-acl"), requested)
    objects.set_document(req.requester, version, "acl", requested.to_json())
    return empty(200)


@route("GET", "object", "tagging")
def get_object_tagging(req: S3Request) -> Response:
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"),
                          action="s3:GetObjectTagging")
    headers = {"x-amz-version-id": version.version_id} if version.version_id != "null" else {}
    response = Response(tagging.tagging_to_xml(version.get_json("tags", {}) or {}),
                        status=200, mimetype="application/xml")
    for name, value in headers.items():
        response.headers[name] = value
    return response


@route("PUT", "object", "tagging")
def put_object_tagging(req: S3Request) -> Response:
    tags = tagging.parse_tagging(req.body(), limit=10)
    authz.add_request_context(requestkeys.request_tags(tags))
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"),
                          action="s3:PutObjectTagging")
    objects.set_document(req.requester, version, "tags", tags or None)
    return empty(200, {"x-amz-version-id": version.version_id}
                 if version.version_id != "null" else {})


@route("DELETE", "object", "tagging")
def delete_object_tagging(req: S3Request) -> Response:
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"),
                          action="s3:DeleteObjectTagging")
    objects.set_document(req.requester, version, "tags", None)
    return empty(204, {"x-amz-version-id": version.version_id}
                 if version.version_id != "null" else {})
