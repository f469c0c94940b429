"""S3 controllers at the service and bucket level: buckets, listings, bucket settings,
DeleteObjects and CORS preflight. Each parses its request, calls a service function and
renders S3's XML."""
from __future__ import annotations

import base64

from flask import Response

from .. import integers
from ..db import db
from ..errors import AwsError
from ..errors import s3 as s3_errors
from ..errors.s3 import AccessDenied, InvalidArgument, MalformedXML, NoSuchBucket
from . import (acl, buckets, cors, lifecycle, listing, objects, ownership, policy, tagging,
               xmlbody)
from . import objectlock
from .rest_common import (acl_from_request, acl_response, add_encoding_type, add_owner,
                          key_encoder)
from .routing import S3Request, empty, route, xml_response
from .xmlout import add, root

MAX_KEYS = 1000


def _max_keys(req: S3Request) -> int:
    return req.int_arg("max-keys", MAX_KEYS, MAX_KEYS)


# --- service and bucket lifecycle -------------------------------------------------------

@route("GET", "service")
def list_buckets(req: S3Request) -> Response:
    if req.requester is None:
        raise AccessDenied()
    paged = any(name in req.query for name in ("max-buckets", "continuation-token", "prefix",
                                                "bucket-region"))
    region, prefix = req.s3.config["region"], req.query.get("prefix", "")
    limit = _max_buckets(req) if paged else None
    token = req.query.get("continuation-token")
    found, more = buckets.list_page(req.requester, prefix=prefix, limit=limit,
                                    after=_untoken(token) if token else None)
    if req.query.get("bucket-region", region) != region:
        found, more = [], False             # this cloud is one region
    document = root("ListAllMyBucketsResult")
    add_owner(document, req.requester.account_id)
    listing_element = add(document, "Buckets")
    for bucket in found:
        add(listing_element, "Bucket", Name=bucket.name, CreationDate=bucket.created,
            BucketRegion=region)
    if more:
        add(document, "ContinuationToken", _token(found[-1].name))
    if "prefix" in req.query:
        add(document, "Prefix", prefix)
    return xml_response(document)


#: ListBuckets' page size when paging is asked for without max-buckets, and its maximum.
MAX_BUCKETS = 10000


def _max_buckets(req: S3Request) -> int:
    text = req.query.get("max-buckets")
    if text is None:
        return MAX_BUCKETS
    value = integers.parse(text) if text.isascii() and text.isdigit() else None
    if value is None or not 1 <= value <= MAX_BUCKETS:
        raise InvalidArgument(f"Argument max-buckets must be an integer between 1 and "
                              f"{MAX_BUCKETS}", ArgumentName="max-buckets", ArgumentValue=text)
    return value


@route("PUT", "bucket")
def create_bucket(req: S3Request) -> Response:
    location = ""
    raw = req.body()
    if raw.strip():
        config = xmlbody.parse(raw, "CreateBucketConfiguration")
        location = xmlbody.child_text(config, "LocationConstraint", "") or ""
    acl_json = None
    if req.requester is not None:
        owner_canonical = acl.canonical_id(req.requester.account_id)
        parsed = acl.acl_from_headers(req.headers, owner_canonical)
        acl_json = parsed.to_json() if parsed else None
    bucket = buckets.create(req.requester, req.bucket, location, acl_json, req.headers)
    return empty(200, {"Location": f"/{bucket.name}"})


@route("DELETE", "bucket")
def delete_bucket(req: S3Request) -> Response:
    buckets.delete(req.requester, req.bucket, req.s3.store)
    return empty(204)


@route("HEAD", "bucket")
def head_bucket(req: S3Request) -> Response:
    buckets.get(req.requester, req.bucket, "s3:ListBucket")
    return empty(200, {"x-amz-bucket-region": req.s3.config["region"]})


@route("GET", "bucket", "location")
def get_location(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetBucketLocation")
    document = root("LocationConstraint")
    if bucket.location:
        document.text = bucket.location
    return xml_response(document)


# --- listings -----------------------------------------------------------------------------

def _add_page_limits(document, max_keys: int, delimiter: str, truncated: bool, encode) -> None:
    """``MaxKeys``, ``Delimiter`` (when one was given) and ``IsTruncated``, in that order."""
    add(document, "MaxKeys", max_keys)
    if delimiter:
        add(document, "Delimiter", encode(delimiter))
    add(document, "IsTruncated", truncated)


def _listing_args(req: S3Request):
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    return prefix, delimiter, _max_keys(req), key_encoder(req)


def _add_entries(document, bucket, page, encode, with_owner: bool) -> None:
    for version in page.entries:
        item = add(document, "Contents", Key=encode(version.key),
                   LastModified=version.last_modified, ETag=f'"{version.etag}"',
                   Size=version.size)
        if version.checksum_algorithm:
            add(item, "ChecksumAlgorithm", version.checksum_algorithm)
            add(item, "ChecksumType", version.checksum_type or "FULL_OBJECT")
        add(item, "StorageClass", version.storage_class)
        if with_owner:
            add_owner(item, ownership.owner_shown(bucket, version.owner_id))
    for common in page.prefixes:
        add(document, "CommonPrefixes", Prefix=encode(common))


@route("GET", "bucket")
def list_objects(req: S3Request) -> Response:
    if req.query.get("list-type") == "2":
        return list_objects_v2(req)
    prefix, delimiter, max_keys, encode = _listing_args(req)
    bucket = buckets.get(req.requester, req.bucket, "s3:ListBucket",
                         **{"s3:prefix": prefix, "s3:delimiter": delimiter,
                            "s3:max-keys": str(max_keys)})
    marker = req.query.get("marker", "")
    page = listing.list_page(bucket, prefix=prefix, delimiter=delimiter,
                             start_after=marker or None, max_keys=max_keys)
    document = root("ListBucketResult")
    add(document, "Name", bucket.name)
    add(document, "Prefix", encode(prefix))
    add(document, "Marker", encode(marker))
    if page.truncated and delimiter:
        add(document, "NextMarker", encode(page.last))
    _add_page_limits(document, max_keys, delimiter, page.truncated, encode)
    add_encoding_type(document, req)
    _add_entries(document, bucket, page, encode, with_owner=True)
    return xml_response(document)


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("The continuation token provided is incorrect",
                              ArgumentName="continuation-token", ArgumentValue=token)


def list_objects_v2(req: S3Request) -> Response:
    prefix, delimiter, max_keys, encode = _listing_args(req)
    bucket = buckets.get(req.requester, req.bucket, "s3:ListBucket",
                         **{"s3:prefix": prefix, "s3:delimiter": delimiter,
                            "s3:max-keys": str(max_keys)})
    token = req.query.get("continuation-token")
    start_after = req.query.get("start-after", "")
    resume = _untoken(token) if token is not None else (start_after or None)
    page = listing.list_page(bucket, prefix=prefix, delimiter=delimiter,
                             start_after=resume, max_keys=max_keys)
    fetch_owner = req.query.get("fetch-owner", "false").lower() == "true"
    document = root("ListBucketResult")
    add(document, "Name", bucket.name)
    add(document, "Prefix", encode(prefix))
    if token is not None:
        add(document, "ContinuationToken", token)
    if start_after:
        add(document, "StartAfter", encode(start_after))
    add(document, "KeyCount", len(page.entries) + len(page.prefixes))
    _add_page_limits(document, max_keys, delimiter, page.truncated, encode)
    if page.truncated:
        add(document, "NextContinuationToken", _token(page.last))
    add_encoding_type(document, req)
    _add_entries(document, bucket, page, encode, with_owner=fetch_owner)
    return xml_response(document)


@route("GET", "bucket", "versions")
def list_versions(req: S3Request) -> Response:
    prefix, delimiter, max_keys, encode = _listing_args(req)
    bucket = buckets.get(req.requester, req.bucket, "s3:ListBucketVersions",
                         **{"s3:prefix": prefix, "s3:delimiter": delimiter})
    key_marker = req.query.get("key-marker", "")
    version_marker = req.query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise InvalidArgument("A version-id marker cannot be specified "
                              "without a key marker.", ArgumentName="version-id-marker",
                              ArgumentValue=version_marker)
    page = listing.list_page(bucket, prefix=prefix, delimiter=delimiter,
                             start_after=key_marker or None, max_keys=max_keys,
                             versions=True, version_id_marker=version_marker or None)
    document = root("ListVersionsResult")
    add(document, "Name", bucket.name)
    add(document, "Prefix", encode(prefix))
    add(document, "KeyMarker", encode(key_marker))
    add(document, "VersionIdMarker", version_marker)
    if page.truncated:
        add(document, "NextKeyMarker", encode(page.last))
        if page.last_version_id:
            add(document, "NextVersionIdMarker", page.last_version_id)
    _add_page_limits(document, max_keys, delimiter, page.truncated, encode)
    add_encoding_type(document, req)
    for version in page.entries:
        if version.delete_marker:
            item = add(document, "DeleteMarker", Key=encode(version.key),
                       VersionId=version.version_id, IsLatest=version.is_latest,
                       LastModified=version.last_modified)
            add_owner(item, ownership.owner_shown(bucket, version.owner_id))
        else:
            item = add(document, "Version", Key=encode(version.key),
                       VersionId=version.version_id, IsLatest=version.is_latest,
                       LastModified=version.last_modified, ETag=f'"{version.etag}"',
                       Size=version.size, StorageClass=version.storage_class)
            add_owner(item, ownership.owner_shown(bucket, version.owner_id))
    for common in page.prefixes:
        add(document, "CommonPrefixes", Prefix=encode(common))
    return xml_response(document)


# --- DeleteObjects ----------------------------------------------------------------------

@route("POST", "bucket", "delete")
def delete_objects(req: S3Request) -> Response:
    buckets.find(req.bucket)        # a missing bucket fails the request, not each key
    document_in = xmlbody.parse(req.body(), "Delete")
    quiet = (xmlbody.child_text(document_in, "Quiet", "false") or "").lower() == "true"
    items = document_in.findall("Object")
    if not items or len(items) > 1000:
        raise MalformedXML()
    result = root("DeleteResult")
    for item in items:
        key = xmlbody.child_text(item, "Key")
        version_id = xmlbody.child_text(item, "VersionId") or None
        if key is None:
            raise MalformedXML()
        try:
            deleted = objects.delete(req.s3.store, req.requester, req.bucket, key, version_id,
                                     bypass_governance=objectlock.bypass_requested(req.headers))
        except AwsError as error:          # reported per key, as S3 does
            add(result, "Error", Key=key, VersionId=version_id, Code=error.code,
                Message=error.message)
            continue
        if not quiet:
            entry = add(result, "Deleted", Key=key, VersionId=version_id)
            if deleted.delete_marker:
                add(entry, "DeleteMarker", True)
                add(entry, "DeleteMarkerVersionId", deleted.delete_marker_version_id)
    return xml_response(result)


# --- versioning ----------------------------------------------------------------------------

@route("GET", "bucket", "versioning")
def get_versioning(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetBucketVersioning")
    document = root("VersioningConfiguration")
    if bucket.versioning:
        add(document, "Status", bucket.versioning)
    return xml_response(document)


@route("PUT", "bucket", "versioning")
def put_versioning(req: S3Request) -> Response:
    document = xmlbody.parse(req.body(), "VersioningConfiguration")
    status = xmlbody.child_text(document, "Status", "")
    mfa = xmlbody.child_text(document, "MfaDelete")
    if mfa == "Enabled":
        raise s3_errors.NotImplemented("MFA Delete is not supported by eucalite.")
    buckets.set_versioning(req.requester, req.bucket, status)
    return empty(200)


# --- ACL --------------------------------------------------------------------------------

@route("GET", "bucket", "acl")
def get_bucket_acl(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetBucketAcl")
    return acl_response(bucket.acl_json, bucket.owner_id)


@route("PUT", "bucket", "acl")
def put_bucket_acl(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:PutBucketAcl")
    requested = acl_from_request(req, bucket.owner_id)
    ownership.check_acl_update(bucket, req.header("x-amz-acl"), requested)
    buckets.put_setting(req.requester, req.bucket, "acl", requested.to_json())
    return empty(200)


# --- whole-document settings: policy, CORS, lifecycle, tags -------------------------------

def _setting_routes(subresource: str, setting: str, parse, render, mimetype: str,
                    put_status: int) -> None:
    """GET/PUT/DELETE ?<subresource> for a bucket setting stored as one document."""

    def get_setting(req: S3Request) -> Response:
        value = buckets.get_setting(req.requester, req.bucket, setting)
        return Response(render(value), status=200, mimetype=mimetype)

    def put_setting(req: S3Request) -> Response:
        buckets.put_setting(req.requester, req.bucket, setting, parse(req))
        return empty(put_status)

    def delete_setting(req: S3Request) -> Response:
        buckets.delete_setting(req.requester, req.bucket, setting)
        return empty(204)

    route("GET", "bucket", subresource)(get_setting)
    route("PUT", "bucket", subresource)(put_setting)
    route("DELETE", "bucket", subresource)(delete_setting)


def _parse_policy(req: S3Request) -> str:
    text = req.body(limit=20 * 1024 + 1).decode("utf-8", "replace")
    parsed = policy.parse_policy(text, req.bucket)   # MalformedPolicy on a bad document
    ownership.check_policy(buckets.find(req.bucket), parsed)
    return text


_setting_routes("policy", "policy", _parse_policy, lambda text: text, "application/json", 204)
_setting_routes("cors", "cors", lambda req: cors.parse_cors(req.body()), cors.cors_to_xml,
                "application/xml", 200)
_setting_routes("lifecycle", "lifecycle", lambda req: lifecycle.parse_lifecycle(req.body()),
                lifecycle.lifecycle_to_xml, "application/xml", 200)
_setting_routes("tagging", "tags", lambda req: tagging.parse_tagging(req.body(), limit=50),
                tagging.tagging_to_xml, "application/xml", 204)


# --- CORS preflight and response headers ------------------------------------------------

def _cors_rules(bucket_name: str | None):
    if not bucket_name:
        return None
    bucket = db.session.execute(db.select(buckets.Bucket).filter_by(name=bucket_name)
                                ).scalar_one_or_none()
    return bucket.get_json("cors") if bucket is not None else None


def preflight(bucket_name: str | None, key: str | None, headers: dict[str, str]) -> Response:
    """OPTIONS: answer a CORS preflight from the bucket's rules (no credentials needed)."""
    origin = headers.get("origin")
    method = headers.get("access-control-request-method")
    if not origin or not method:
        raise cors.origin_required()
    rules = _cors_rules(bucket_name)
    if bucket_name and rules is None and _bucket_missing(bucket_name):
        raise NoSuchBucket(bucket_name)
    requested = [name.strip() for name in headers.get(
        "access-control-request-headers", "").split(",") if name.strip()]
    answer = cors.preflight(rules or [], origin, method, requested)
    if answer is None:
        raise cors.not_allowed(method, "BUCKET" if not key else "OBJECT")
    return empty(200, answer)


def _bucket_missing(name: str) -> bool:
    return db.session.execute(db.select(buckets.Bucket.id).filter_by(name=name)).first() is None


def cors_headers(bucket_name: str, origin: str, method: str) -> dict[str, str]:
    rules = _cors_rules(bucket_name)
    if not rules:
        return {}
    return cors.actual_headers(rules, origin, method)


