"""S3 controllers for multipart uploads: create, upload part (or copy), complete, abort,
list parts and list uploads."""
from __future__ import annotations

import re

from flask import Response

from .. import integers
from ..errors.s3 import InvalidArgument, MalformedXML
from . import (acl, buckets, checksums, conditions, multipart, objectlock, rest_encryption, sse,
               xmlbody)
from .rest_common import add_encoding_type, add_owner, key_encoder
from .routing import S3Request, empty, route, xml_response
from .rest_objects import attributes_from, copy_source_version, version_headers
from .xmlout import add, root


@route("POST", "object", "uploads")
def create_upload(req: S3Request) -> Response:
    bucket = buckets.find(req.bucket)
    owner_id = req.requester.account_id if req.requester else None
    attributes = attributes_from(req, owner_id, bucket.owner_id)
    objectlock.apply_headers(req.headers, req.requester, bucket, req.key, attributes)
    algorithm = req.header("x-amz-checksum-algorithm")
    if algorithm:
        algorithm = algorithm.upper()
        checksums.new(algorithm)                 # InvalidRequest for an unknown one
    checksum_type = checksums.upload_type(algorithm, req.header(checksums.TYPE_HEADER))
    attributes.sse = sse.prepare(req.s3.store.root, attributes.sse, attributes.sse_customer)
    upload = multipart.create(req.requester, req.bucket, req.key, attributes, algorithm,
                              checksum_type)
    document = root("InitiateMultipartUploadResult")
    add(document, "Bucket", req.bucket)
    add(document, "Key", req.key)
    add(document, "UploadId", upload.id)
    headers = {"x-amz-checksum-algorithm": algorithm} if algorithm else {}
    if algorithm:
        headers[checksums.TYPE_HEADER] = checksum_type
    headers.update(sse.headers(attributes.sse))
    return xml_response(document, headers=headers)


def _part_number(req: S3Request) -> int:
    number = integers.parse(req.query.get("partNumber", ""))
    if number is None:
        raise InvalidArgument("Part number must be an integer between 1 and "
                              "10000, inclusive", ArgumentName="partNumber",
                              ArgumentValue=req.query.get("partNumber", ""))
    return number


@route("PUT", "object", "uploadId")
def upload_part(req: S3Request) -> Response:
    upload_id, number = req.query["uploadId"], _part_number(req)
    if req.header("x-amz-copy-source"):
        return _copy_part(req, upload_id, number)
    reader = req.stream()
    part = multipart.upload_part(req.s3.store, req.requester, req.bucket, req.key, upload_id,
                                 number, reader, rest_encryption.read_key(req))
    headers = {"ETag": f'"{part.etag}"', **rest_encryption.upload_headers(upload_id)}
    if reader.checksum_algorithm:        # what the client sent, or S3's default
        headers[checksums.header_name(reader.checksum_algorithm)] = reader.checksum_b64
    return empty(200, headers)


def _copy_part(req: S3Request, upload_id: str, number: int) -> Response:
    source = copy_source_version(req)
    byte_range = None
    range_header = req.header("x-amz-copy-source-range")
    if range_header:
        byte_range = _copy_range(range_header, source.size)
    part = multipart.copy_part(req.s3.store, req.requester, req.bucket, req.key, upload_id,
                               number, source, byte_range, rest_encryption.source_key(req),
                               rest_encryption.read_key(req))
    document = root("CopyPartResult")
    add(document, "LastModified", part.last_modified)
    add(document, "ETag", f'"{part.etag}"')
    return xml_response(document, headers=rest_encryption.upload_headers(upload_id))


_COPY_RANGE = re.compile(r"bytes=([0-9]+)-([0-9]+)")


def _copy_range(header: str, size: int) -> tuple[int, int]:
    """(first, last) of x-amz-copy-source-range. Unlike a GET's Range, S3 takes only the
    bytes=first-last form and never trims it: a range past the source's end is an error."""
    found = _COPY_RANGE.fullmatch(header.strip())
    first, last = (integers.parse(value) for value in found.groups()) if found else (None, None)
    if first is None or last is None:
        raise InvalidArgument("The x-amz-copy-source-range value must be "
                              "of the form bytes=first-last where first and last are the "
                              "zero-based offsets of the first and last bytes to copy",
                              ArgumentName="x-amz-copy-source-range", ArgumentValue=header)
    if first > last or last >= size:
        raise InvalidArgument("Range specified is not valid for source "
                              f"object of size: {size}", ArgumentName="x-amz-copy-source-range",
                              ArgumentValue=header)
    return first, last


@route("POST", "object", "uploadId")
def complete_upload(req: S3Request) -> Response:
    upload_id = req.query["uploadId"]
    # Its x-amz-checksum-<alg> header is the object's checksum, not the XML body's.
    document_in = xmlbody.parse(req.body(headers=checksums.without_values(req.headers)),
                                "CompleteMultipartUpload")
    chosen = []
    for item in document_in.findall("Part"):
        number_text = xmlbody.child_text(item, "PartNumber")
        etag = xmlbody.child_text(item, "ETag")
        if number_text is None or etag is None:
            raise MalformedXML()
        number = integers.parse(number_text.strip())
        if number is None:
            raise MalformedXML()
        checksum = next(((child.tag[len("Checksum"):].upper(), child.text) for child in item
                         if child.tag.startswith("Checksum") and child.text), (None, None))
        chosen.append(multipart.Completed(number, etag, checksum[1], checksum[0]))
    condition = conditions.checked_write_condition(req.requester, req.headers,
                                                   buckets.find(req.bucket), req.key)
    version = multipart.complete(req.s3.store, req.requester, req.bucket, req.key, upload_id,
                                 chosen, precondition=condition and condition.recheck,
                                 headers=req.headers)
    document = root("CompleteMultipartUploadResult")
    add(document, "Location", f"{req.s3.config.get('public_url') or ''}/{req.bucket}/{req.key}")
    add(document, "Bucket", req.bucket)
    add(document, "Key", req.key)
    add(document, "ETag", f'"{version.etag}"')
    if version.checksum_algorithm:
        add(document, f"Checksum{version.checksum_algorithm}", version.checksum_value)
        add(document, "ChecksumType", version.checksum_type)
    headers = {**version_headers(version, buckets.find(req.bucket)),
               **sse.headers(version.get_json("sse"))}
    return xml_response(document, headers=headers)


@route("DELETE", "object", "uploadId")
def abort_upload(req: S3Request) -> Response:
    multipart.abort(req.s3.store, req.requester, req.bucket, req.key, req.query["uploadId"])
    return empty(204)


@route("GET", "object", "uploadId")
def list_parts(req: S3Request) -> Response:
    upload_id = req.query["uploadId"]
    upload = multipart.get_upload(req.requester, req.bucket, req.key, upload_id,
                                  action="s3:ListMultipartUploadParts")
    max_parts = req.int_arg("max-parts", 1000, 1000)
    marker = req.int_arg("part-number-marker", 0, 10000)
    parts = [part for part in multipart.parts_of(upload_id) if part.part_number > marker]
    truncated = len(parts) > max_parts
    parts = parts[:max_parts]
    document = root("ListPartsResult")
    add(document, "Bucket", req.bucket)
    add(document, "Key", req.key)
    add(document, "UploadId", upload_id)
    add(document, "Initiator", ID=upload.initiator_arn or acl.canonical_id(upload.owner_id),
        DisplayName=buckets.owner_name(upload.owner_id))
    add_owner(document, upload.owner_id)
    add(document, "StorageClass", upload.storage_class)
    add(document, "PartNumberMarker", marker)
    if parts:
        add(document, "NextPartNumberMarker", parts[-1].part_number)
    add(document, "MaxParts", max_parts)
    add(document, "IsTruncated", truncated)
    if upload.checksum_algorithm:
        add(document, "ChecksumAlgorithm", upload.checksum_algorithm)
        add(document, "ChecksumType", upload.checksum_type or checksums.COMPOSITE)
    for part in parts:
        item = add(document, "Part", PartNumber=part.part_number,
                   LastModified=part.last_modified, ETag=f'"{part.etag}"', Size=part.size)
        if upload.checksum_algorithm and part.checksum_value:
            add(item, f"Checksum{upload.checksum_algorithm}", part.checksum_value)
    return xml_response(document)


@route("GET", "bucket", "uploads")
def list_uploads(req: S3Request) -> Response:
    encode = key_encoder(req)
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    key_marker = req.query.get("key-marker", "")
    upload_marker = req.query.get("upload-id-marker", "")
    max_uploads = req.int_arg("max-uploads", 1000, 1000)
    uploads, prefixes, truncated = multipart.list_uploads(
        req.requester, req.bucket, prefix=prefix, delimiter=delimiter,
        key_marker=key_marker or None, upload_id_marker=upload_marker or None,
        max_uploads=max_uploads)
    document = root("ListMultipartUploadsResult")
    add(document, "Bucket", req.bucket)
    add(document, "KeyMarker", encode(key_marker))
    add(document, "UploadIdMarker", upload_marker)
    if truncated:
        # Resume after the last entry, which is a common prefix when that sorts last.
        last_prefix = prefixes[-1] if prefixes else None
        if uploads and (last_prefix is None or uploads[-1].key > last_prefix):
            add(document, "NextKeyMarker", encode(uploads[-1].key))
            add(document, "NextUploadIdMarker", uploads[-1].id)
        elif last_prefix is not None:
            add(document, "NextKeyMarker", encode(last_prefix))
    if delimiter:
        add(document, "Delimiter", encode(delimiter))
    add(document, "Prefix", encode(prefix))
    add(document, "MaxUploads", max_uploads)
    add(document, "IsTruncated", truncated)
    add_encoding_type(document, req)
    for upload in uploads:
        item = add(document, "Upload", Key=encode(upload.key), UploadId=upload.id)
        add(item, "Initiator", ID=upload.initiator_arn or acl.canonical_id(upload.owner_id),
            DisplayName=buckets.owner_name(upload.owner_id))
        add_owner(item, upload.owner_id)
        add(item, "StorageClass", upload.storage_class)
        add(item, "Initiated", upload.initiated)
        if upload.checksum_algorithm:
            add(item, "ChecksumAlgorithm", upload.checksum_algorithm)
            add(item, "ChecksumType", upload.checksum_type or checksums.COMPOSITE)
    for common in prefixes:
        add(document, "CommonPrefixes", Prefix=encode(common))
    return xml_response(document)
