"""PostObject: browser form uploads (multipart/form-data POST to a bucket) authorised by a
signed policy document, as S3's "browser-based uploads" work.

The form's signature and policy are verified by :mod:`eucalite.s3.postpolicy`; the file is
streamed into the store like any PUT and gets the same attributes a PUT would.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from flask import Response, redirect, request

from .. import auth
from ..errors.s3 import InvalidArgument, InvalidStorageClass, PreconditionFailed
from . import (acl, buckets, checksums, objects, ownership, postpolicy, rest_encryption,
               sse, tagging)
from . import objectlock
from .rest_objects import STORAGE_CLASSES, STORED_HEADERS
from .routing import S3Request, empty, route, xml_response
from .store import CHUNK, HashingReader
from .xmlout import add, root


#: How much of a field sent as a file part is read (S3 bounds a form's fields at 20 KB).
FIELD_LIMIT = 20 * 1024


def _fields() -> dict[str, str]:
    """The form's text fields, names as sent (S3 matches them case-insensitively). A field
    may arrive as a file part (with a ``filename``), as some form libraries send every
    field: S3 reads it as a field all the same; only ``file`` is the object."""
    fields = {name: value for name, value in request.form.items()}
    for name, part in request.files.items():
        if name.lower() != "file" and name not in fields:
            fields[name] = part.stream.read(FIELD_LIMIT).decode("utf-8", "replace")
    return fields


@route("POST", "bucket")
def post_object(req: S3Request) -> Response:
    if request.mimetype != "multipart/form-data":
        raise PreconditionFailed("Bucket POST must be of the enclosure-type "
                                 "multipart/form-data", Condition="Bucket POST must be of the "
                                 "enclosure-type multipart/form-data")
    fields = _fields()
    upload = request.files.get("file")
    if upload is None:
        raise InvalidArgument("POST requires exactly one file upload per "
                              "request.", ArgumentName="file", ArgumentValue="0")
    lowered = {name.lower(): value for name, value in fields.items()}
    if "key" not in lowered:
        raise InvalidArgument("Bucket POST must contain a field named 'key'. "
                              "If it is specified, please check the order of the fields.",
                              ArgumentName="key", ArgumentValue="")
    size = _size(upload.stream)
    lookup = auth.lookup_with_token("s3", lowered.get("x-amz-security-token"))
    verified = postpolicy.verify_post(fields, req.bucket, lookup,
                                      dt.datetime.now(dt.timezone.utc), file_size=size)
    key = postpolicy.substitute_filename(lowered["key"], upload.filename)
    bucket = buckets.find(req.bucket)
    if lowered.get("acl"):
        ownership.check_write_acl(req.bucket, {"x-amz-acl": lowered["acl"]})
    attributes = _attributes(lowered, verified.principal, bucket.owner_id, upload)
    attributes.sse, attributes.sse_customer = rest_encryption.requested(lowered, req.s3.config)
    objectlock.apply_headers(lowered, verified.principal, bucket, key, attributes)
    target = _redirect_target(lowered)
    if target:                          # refused before anything is stored
        objects.check_header("success_action_redirect", target)
    # S3 gives an object uploaded without a checksum its default one.
    reader = checksums.Summing(HashingReader(iter(lambda: upload.stream.read(CHUNK), b"")),
                               checksums.DEFAULT)
    version = objects.put(req.s3.store, verified.principal, req.bucket, key, reader,
                          attributes)
    return _success(req, lowered, key, version)


def _redirect_target(fields: dict[str, str]) -> str | None:
    return fields.get("success_action_redirect") or fields.get("redirect")


def _size(stream) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def _attributes(fields: dict[str, str], principal, bucket_owner_id: str,
                upload) -> objects.Attributes:
    headers = {name: fields[name] for name in STORED_HEADERS if fields.get(name)}
    meta = {name[len("x-amz-meta-"):]: value for name, value in fields.items()
            if name.startswith("x-amz-meta-")}
    storage_class = fields.get("x-amz-storage-class", "STANDARD")
    if storage_class not in STORAGE_CLASSES:
        raise InvalidStorageClass("The storage class you specified is not "
                                  "valid", StorageClassRequested=storage_class)
    acl_json = None
    owner_id = principal.account_id if principal else bucket_owner_id
    if fields.get("acl"):
        acl_json = acl.canned_acl(fields["acl"], acl.canonical_id(owner_id),
                                  acl.canonical_id(bucket_owner_id)).to_json()
    tags = tagging.parse_tagging(fields["tagging"].encode(), limit=10) \
        if fields.get("tagging") else None
    content_type = fields.get("content-type") or upload.mimetype or None
    return objects.Attributes(content_type=content_type, headers=headers, meta=meta, acl=acl_json,
                              tags=tags, storage_class=storage_class)


def _success(req: S3Request, fields: dict[str, str], key: str, version) -> Response:
    etag = f'"{version.etag}"'
    location = f"/{req.bucket}/{quote(key, safe='/')}"     # a key may hold CR, LF, ...
    target = _redirect_target(fields)
    if target:
        joiner = "&" if "?" in target else "?"
        response = redirect(target + joiner + urlencode(
            {"bucket": req.bucket, "key": key, "etag": etag}), code=303)
        response.headers["ETag"] = etag
        return response
    status = fields.get("success_action_status", "204")
    if status not in ("200", "201", "204"):
        status = "204"
    headers = {"ETag": etag, "Location": location, **sse.headers(version.get_json("sse"))}
    if status == "201":
        document = root("PostResponse")
        add(document, "Location", location)
        add(document, "Bucket", req.bucket)
        add(document, "Key", key)
        add(document, "ETag", etag)
        return xml_response(document, 201, headers)
    return empty(int(status), headers)
