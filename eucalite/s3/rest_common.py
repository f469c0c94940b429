"""What several S3 controller modules render or parse alike: the ``<Owner>`` element, the
``encoding-type=url`` key encoder of listings, and ACL documents in and out."""
from __future__ import annotations

import json
from typing import Callable
from urllib.parse import quote_plus

from flask import Response

from ..accounts import Account
from ..db import db
from ..errors.s3 import InvalidArgument, MissingSecurityHeader, UnexpectedContent
from . import acl, buckets
from .routing import S3Request
from .xmlout import add, owner


def add_owner(parent, account_id: str) -> None:
    """Append ``<Owner>`` (canonical id and display name) of account *account_id*."""
    owner(parent, acl.canonical_id(account_id), buckets.owner_name(account_id))


def key_encoder(req: S3Request) -> Callable[[str | None], str | None]:
    """How a listing writes keys and prefixes: as they are, or URL-encoded when the request
    says ``encoding-type=url`` (any other value is InvalidArgument)."""
    encoding = req.query.get("encoding-type")
    if encoding is None:
        return lambda value: value
    if encoding != "url":
        raise InvalidArgument("Invalid Encoding Method specified in Request",
                              ArgumentName="encoding-type", ArgumentValue=encoding)
    return lambda value: None if value is None else quote_plus(value, safe="/")


def add_encoding_type(document, req: S3Request) -> None:
    """``<EncodingType>url</EncodingType>``, only when the request asked for an encoding (a
    listing's keys are then URL-encoded by :func:`key_encoder`)."""
    if "encoding-type" in req.query:
        add(document, "EncodingType", "url")


def acl_response(acl_json: str | None, owner_id: str) -> Response:
    """GetBucketAcl / GetObjectAcl: the stored ACL, or ``private`` when none is stored."""
    owner_canonical = acl.canonical_id(owner_id)
    stored = acl.Acl.from_json(json.loads(acl_json)) if acl_json else \
        acl.canned_acl("private", owner_canonical)
    body = acl.acl_to_xml(stored, display_name)
    return Response(body, status=200, mimetype="application/xml")


def display_name(canonical: str) -> str | None:
    """The name of the account whose canonical id is *canonical*, None for no account."""
    for (account_id, name) in db.session.execute(db.select(Account.id, Account.name)):
        if acl.canonical_id(account_id) == canonical:
            return name
    return None


def known_canonical(canonical: str) -> bool:
    return display_name(canonical) is not None


def acl_from_request(req: S3Request, owner_id: str, bucket_owner_id: str | None = None):
    """The ACL a PUT ?acl request sets: from the body if it has one, else from headers."""
    owner_canonical = acl.canonical_id(owner_id)
    bucket_owner = acl.canonical_id(bucket_owner_id) if bucket_owner_id else None
    body = req.body()
    from_headers = acl.acl_from_headers(req.headers, owner_canonical, bucket_owner)
    if body.strip():
        if from_headers is not None:
            raise UnexpectedContent("This request does not support content")
        return acl.acl_from_xml(body, owner_canonical, known_canonical)
    if from_headers is None:
        raise MissingSecurityHeader("Your request was missing a required header",
                                    MissingHeaderName="x-amz-acl")
    return from_headers
