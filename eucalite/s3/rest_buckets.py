"""S3 controllers at the service and bucket level: buckets, listings, bucket settings,
DeleteObjects and CORS preflight. Each parses its request, calls a service function and
renders S3's XML."""
from __future__ import annotations

import base64
from urllib.parse import quote_plus

from flask import Response

from ..db import db
from ..errors import AwsError
from . import access, buckets, cors, lifecycle, listing, objects, tagging, xmlbody
from .buckets import S3Error
from .rest import S3Request, empty, route, xml_response
from .xmlout import add, owner, root

MAX_KEYS = 1000


def _owner(parent, account_id: str) -> None:
    owner(parent, access.canonical_id(account_id), buckets.owner_name(account_id))


def _max_keys(req: S3Request) -> int:
    return req.int_arg("max-keys", MAX_KEYS, MAX_KEYS)


# --- service and bucket lifecycle -------------------------------------------------------

@route("GET", "service")
def list_buckets(req: S3Request) -> Response:
    if req.requester is None:
        from .authz import access_denied
        raise access_denied()
    document = root("ListAllMyBucketsResult")
    _owner(document, req.requester.account_id)
    listing_element = add(document, "Buckets")
    for bucket in buckets.list_for(req.requester):
        add(listing_element, "Bucket", Name=bucket.name, CreationDate=bucket.created)
    return xml_response(document)


@route("PUT", "bucket")
def create_bucket(req: S3Request) -> Response:
    location = ""
    raw = req.body()
    if raw.strip():
        config = xmlbody.parse(raw, "CreateBucketConfiguration")
        location = xmlbody.child_text(config, "LocationConstraint", "") or ""
    acl = None
    if req.requester is not None:
        owner_canonical = access.canonical_id(req.requester.account_id)
        parsed = access.acl_from_headers(req.headers, owner_canonical)
        acl = parsed.to_json() if parsed else None
    bucket = buckets.create(req.requester, req.bucket, location, acl)
    return empty(200, {"Location": f"/{bucket.name}"})


@route("DELETE", "bucket")
def delete_bucket(req: S3Request) -> Response:
    buckets.delete(req.requester, req.bucket)
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

def _encoder(req: S3Request):
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return lambda value: value
    if encoding != "url":
        raise S3Error("InvalidArgument", 400, "Invalid Encoding Method specified in Request",
                      ArgumentName="encoding-type", ArgumentValue=encoding)
    return lambda value: None if value is None else quote_plus(value, safe="/")


def _listing_args(req: S3Request):
    prefix = req.query.get("prefix", "")
    delimiter = req.query.get("delimiter", "")
    return prefix, delimiter, _max_keys(req), _encoder(req)


def _add_entries(document, page, encode, with_owner: bool) -> None:
    for version in page.entries:
        item = add(document, "Contents", Key=encode(version.key),
                   LastModified=version.last_modified, ETag=f'"{version.etag}"',
                   Size=version.size)
        if version.checksum_algorithm:
            add(item, "ChecksumAlgorithm", version.checksum_algorithm)
            add(item, "ChecksumType", version.checksum_type or "FULL_OBJECT")
        add(item, "StorageClass", version.storage_class)
        if with_owner:
            _owner(item, version.owner_id)
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
    add(document, "MaxKeys", max_keys)
    if delimiter:
        add(document, "Delimiter", encode(delimiter))
    add(document, "IsTruncated", page.truncated)
    if "encoding-type" in req.query:
        add(document, "EncodingType", "url")
    _add_entries(document, page, encode, with_owner=True)
    return xml_response(document)


def _token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode()


def _untoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise S3Error("InvalidArgument", 400, "The continuation token provided is incorrect",
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
    add(document, "MaxKeys", max_keys)
    if delimiter:
        add(document, "Delimiter", encode(delimiter))
    add(document, "IsTruncated", page.truncated)
    if page.truncated:
        add(document, "NextContinuationToken", _token(page.last))
    if "encoding-type" in req.query:
        add(document, "EncodingType", "url")
    _add_entries(document, page, encode, with_owner=fetch_owner)
    return xml_response(document)


@route("GET", "bucket", "versions")
def list_versions(req: S3Request) -> Response:
    prefix, delimiter, max_keys, encode = _listing_args(req)
    bucket = buckets.get(req.requester, req.bucket, "s3:ListBucketVersions",
                         **{"s3:prefix": prefix, "s3:delimiter": delimiter})
    key_marker = req.query.get("key-marker", "")
    version_marker = req.query.get("version-id-marker", "")
    if version_marker and not key_marker:
        raise S3Error("InvalidArgument", 400, "A version-id marker cannot be specified "
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
    add(document, "MaxKeys", max_keys)
    if delimiter:
        add(document, "Delimiter", encode(delimiter))
    add(document, "IsTruncated", page.truncated)
    if "encoding-type" in req.query:
        add(document, "EncodingType", "url")
    for version in page.entries:
        if version.delete_marker:
            item = add(document, "DeleteMarker", Key=encode(version.key),
                       VersionId=version.version_id, IsLatest=version.is_latest,
                       LastModified=version.last_modified)
            _owner(item, version.owner_id)
        else:
            item = add(document, "Version", Key=encode(version.key),
                       VersionId=version.version_id, IsLatest=version.is_latest,
                       LastModified=version.last_modified, ETag=f'"{version.etag}"',
                       Size=version.size, StorageClass=version.storage_class)
            _owner(item, version.owner_id)
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
        raise xmlbody.MalformedXML()
    result = root("DeleteResult")
    for item in items:
        key = xmlbody.child_text(item, "Key")
        version_id = xmlbody.child_text(item, "VersionId") or None
        if key is None:
            raise xmlbody.MalformedXML()
        try:
            deleted = objects.delete(req.s3.store, req.requester, req.bucket, key, version_id)
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
        raise S3Error("NotImplemented", 501, "MFA Delete is not supported by eucalite.")
    buckets.set_versioning(req.requester, req.bucket, status)
    return empty(200)


# --- ACL --------------------------------------------------------------------------------

@route("GET", "bucket", "acl")
def get_bucket_acl(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetBucketAcl")
    return _acl_response(bucket.acl_json, bucket.owner_id)


def _acl_response(acl_json: str | None, owner_id: str) -> Response:
    import json

    owner_canonical = access.canonical_id(owner_id)
    acl = access.Acl.from_json(json.loads(acl_json)) if acl_json else \
        access.canned_acl("private", owner_canonical)
    body = access.acl_to_xml(acl, _display_name)
    return Response(body, status=200, mimetype="application/xml")


def _display_name(canonical: str) -> str | None:
    from ..accounts import Account

    for (account_id, name) in db.session.execute(db.select(Account.id, Account.name)):
        if access.canonical_id(account_id) == canonical:
            return name
    return None


def known_canonical(canonical: str) -> bool:
    return _display_name(canonical) is not None


def acl_from_request(req: S3Request, owner_id: str, bucket_owner_id: str | None = None):
    """The ACL a PUT ?acl request sets: from the body if it has one, else from headers."""
    owner_canonical = access.canonical_id(owner_id)
    bucket_owner = access.canonical_id(bucket_owner_id) if bucket_owner_id else None
    body = req.body()
    from_headers = access.acl_from_headers(req.headers, owner_canonical, bucket_owner)
    if body.strip():
        if from_headers is not None:
            raise S3Error("UnexpectedContent", 400, "This request does not support content")
        return access.acl_from_xml(body, owner_canonical, known_canonical)
    if from_headers is None:
        raise S3Error("MissingSecurityHeader", 400, "Your request was missing a required "
                      "header", MissingHeaderName="x-amz-acl")
    return from_headers


@route("PUT", "bucket", "acl")
def put_bucket_acl(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:PutBucketAcl")
    acl = acl_from_request(req, bucket.owner_id)
    buckets.put_setting(req.requester, req.bucket, "acl", acl.to_json())
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
    access.parse_policy(text, req.bucket)        # MalformedPolicy on a bad document
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
        raise S3Error("BadRequest", 400, "Insufficient information. Origin request header "
                      "needed.")
    rules = _cors_rules(bucket_name)
    if bucket_name and rules is None and _bucket_missing(bucket_name):
        raise buckets.NoSuchBucket(bucket_name)
    requested = [name.strip() for name in headers.get(
        "access-control-request-headers", "").split(",") if name.strip()]
    answer = cors.preflight(rules or [], origin, method, requested)
    if answer is None:
        raise S3Error("AccessForbidden", 403, "CORSResponse: This CORS request is not "
                      "allowed. This is usually because the evalution of Origin, request "
                      "method / Access-Control-Request-Method or Access-Control-Request-"
                      "Headers are not whitelisted by the resource's CORS spec.",
                      Method=method, ResourceType="BUCKET" if not key else "OBJECT")
    return empty(200, answer)


def _bucket_missing(name: str) -> bool:
    return db.session.execute(db.select(buckets.Bucket.id).filter_by(name=name)).first() is None


def cors_headers(bucket_name: str, origin: str, method: str) -> dict[str, str]:
    rules = _cors_rules(bucket_name)
    if not rules:
        return {}
    return cors.actual_headers(rules, origin, method)


