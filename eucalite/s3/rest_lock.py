"""S3 controllers for Object Lock: a bucket's lock configuration (``?object-lock``), and a
version's retention (``?retention``) and legal hold (``?legal-hold``). The rules are
:mod:`eucalite.s3.objectlock`'s; these parse, look the version up and render."""
from __future__ import annotations

from flask import Response

from . import buckets, objectlock, objects
from .routing import S3Request, empty, route, xml_response
from .xmlout import add, root


@route("GET", "bucket", "object-lock")
def get_object_lock_configuration(req: S3Request) -> Response:
    rule = objectlock.get_configuration(req.requester, req.bucket)
    document = root("ObjectLockConfiguration")
    add(document, "ObjectLockEnabled", "Enabled")
    if rule:
        add(add(document, "Rule"), "DefaultRetention", Mode=rule["Mode"],
            Days=rule.get("Days"), Years=rule.get("Years"))
    return xml_response(document)


@route("PUT", "bucket", "object-lock")
def put_object_lock_configuration(req: S3Request) -> Response:
    rule = objectlock.parse_configuration(req.body())
    objectlock.put_configuration(req.requester, req.bucket, rule)
    return empty(200)


def _version(req: S3Request, action: str):
    """(bucket, version) the request names, readable for *action*."""
    version = objects.get(req.requester, req.bucket, req.key, req.query.get("versionId"),
                          action=action)
    return buckets.find(req.bucket), version


@route("GET", "object", "retention")
def get_object_retention(req: S3Request) -> Response:
    mode, until = objectlock.get_retention(*_version(req, "s3:GetObjectRetention"))
    document = root("Retention")
    add(document, "Mode", mode)
    add(document, "RetainUntilDate", objectlock.iso(until))
    return xml_response(document)


@route("PUT", "object", "retention")
def put_object_retention(req: S3Request) -> Response:
    mode, until = objectlock.parse_retention(req.body())
    bucket, version = _version(req, "s3:PutObjectRetention")
    objectlock.put_retention(req.requester, bucket, version, mode, until,
                             bypass=objectlock.bypass_requested(req.headers))
    return empty(200)


@route("GET", "object", "legal-hold")
def get_object_legal_hold(req: S3Request) -> Response:
    on = objectlock.get_legal_hold(*_version(req, "s3:GetObjectLegalHold"))
    document = root("LegalHold")
    add(document, "Status", "ON" if on else "OFF")
    return xml_response(document)


@route("PUT", "object", "legal-hold")
def put_object_legal_hold(req: S3Request) -> Response:
    on = objectlock.parse_legal_hold(req.body())
    objectlock.put_legal_hold(*_version(req, "s3:PutObjectLegalHold"), on)
    return empty(200)
