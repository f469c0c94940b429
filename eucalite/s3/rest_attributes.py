"""GetObjectAttributes (``GET /bucket/key?attributes``): what HeadObject and ListParts
would tell about one object version, in one XML answer.

The ``x-amz-object-attributes`` header selects the elements (ETag, Checksum, ObjectParts,
StorageClass, ObjectSize); ObjectParts pages the parts a multipart object was completed
from (``x-amz-max-parts``, ``x-amz-part-number-marker``), as recorded in the version's
``parts_json``. Access needs both what a GET needs and the attributes action
(``s3:GetObject`` + ``s3:GetObjectAttributes``, or with a version id
``s3:GetObjectVersion`` + ``s3:GetObjectVersionAttributes``), as AWS documents; an SSE-C
object's attributes need its key.
"""
from __future__ import annotations

from flask import Response

from ..errors.s3 import InvalidArgument
from . import authz, buckets, objects, rest_encryption, sse
from .models import ObjectVersion
from .routing import S3Request, route, xml_response
from .xmlout import add, root

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000


def _selected(req: S3Request) -> set[str]:
    """The attributes ``x-amz-object-attributes`` asks for (a comma-separated list)."""
    text = req.header("x-amz-object-attributes") or ""
    names = {name.strip() for name in text.split(",") if name.strip()}
    if not names:
        raise InvalidArgument("The x-amz-object-attributes header specifying the attributes "
                              "to be retrieved is either missing or empty",
                              ArgumentName="x-amz-object-attributes", ArgumentValue=text)
    unknown = sorted(names - set(ATTRIBUTES))
    if unknown:
        raise InvalidArgument("Invalid attribute name specified.",
                              ArgumentName="x-amz-object-attributes", ArgumentValue=unknown[0])
    return names


def _parts(version: ObjectVersion) -> list[dict]:
    """The parts of a multipart object: as recorded at completion, or, for objects completed
    before parts were recorded, numbered from the segments."""
    recorded = version.get_json("parts")
    if recorded:
        return recorded
    return [{"PartNumber": number, "Size": size}
            for number, (_path, size) in enumerate(version.segments, start=1)]


def _add_parts(document, req: S3Request, version: ObjectVersion) -> None:
    parts = _parts(version)
    max_parts = req.int_header("x-amz-max-parts", MAX_PARTS, MAX_PARTS)
    marker = req.int_header("x-amz-part-number-marker", 0, 10000)
    following = [part for part in parts if part["PartNumber"] > marker]
    page = following[:max_parts]
    element = add(document, "ObjectParts")
    add(element, "PartsCount", len(parts))
    add(element, "PartNumberMarker", marker)
    if page:
        add(element, "NextPartNumberMarker", page[-1]["PartNumber"])
    add(element, "MaxParts", max_parts)
    add(element, "IsTruncated", len(following) > len(page))
    # S3 lists the parts only of objects uploaded with an additional checksum.
    if version.checksum_algorithm:
        for part in page:
            add(element, "Part", **part)


@route("GET", "object", "attributes")
def get_object_attributes(req: S3Request) -> Response:
    wanted = _selected(req)
    version_id = req.query.get("versionId")
    version = objects.get(req.requester, req.bucket, req.key, version_id)
    bucket = buckets.find(req.bucket)
    action = "s3:GetObjectVersionAttributes" if version_id else "s3:GetObjectAttributes"
    authz.require(req.requester, action, bucket, version)
    # An SSE-C object's attributes need its key, as its data does (checked, never used).
    sse.check_key(version.get_json("sse"), rest_encryption.read_key(req))
    document = root("GetObjectAttributesResponse")
    if "ETag" in wanted:
        add(document, "ETag", version.etag)
    if "Checksum" in wanted and version.checksum_algorithm:
        checksum = add(document, "Checksum")
        # The part count a COMPOSITE value carries ("...-3") is ObjectParts' business here
        add(checksum, f"Checksum{version.checksum_algorithm}",
            version.checksum_value.split("-", 1)[0])
        add(checksum, "ChecksumType", version.checksum_type or "FULL_OBJECT")
    if "ObjectParts" in wanted and version.parts_count:
        _add_parts(document, req, version)
    if "StorageClass" in wanted:
        add(document, "StorageClass", version.storage_class)
    if "ObjectSize" in wanted:
        add(document, "ObjectSize", version.size)
    headers = {"Last-Modified": objects.http_date(version.last_modified)}
    if bucket.versioning is not None:
        headers["x-amz-version-id"] = version.version_id
    return xml_response(document, headers=headers)
