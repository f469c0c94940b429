"""The S3 policy condition keys a request and the object it names give, for bucket and
identity policies alike (:mod:`eucalite.s3.authz` evaluates them).

From the request (:func:`from_request`, once per request): the headers S3 exposes as keys
(``s3:x-amz-acl``, ``s3:x-amz-grant-*``, ``s3:x-amz-server-side-encryption``,
``s3:x-amz-copy-source``, ``s3:x-amz-metadata-directive``, ``s3:x-amz-storage-class``,
``s3:x-amz-content-sha256``, the ``s3:object-lock-*`` settings, ``s3:if-match`` /
``s3:if-none-match``), how it is signed (``s3:signatureversion``, ``s3:authType``), the
``versionId`` query parameter (``s3:VersionId``) and the tags a write asks for
(``s3:RequestObjectTag/<key>``, ``s3:RequestObjectTagKeys``; :func:`request_tags` for a
PutObjectTagging body). From the object version an operation acts on
(:func:`existing_tags`): ``s3:ExistingObjectTag/<key>``. A key is present only when its
header is, so a policy can test for a missing one with ``Null``.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import unquote

from ..errors import AwsError
from . import tagging

#: request header -> condition key (the value is the header's, as sent)
HEADER_KEYS = {
    **{name: f"s3:{name}" for name in (
        "x-amz-acl", "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp",
        "x-amz-grant-write-acp", "x-amz-grant-full-control", "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-customer-algorithm", "x-amz-metadata-directive",
        "x-amz-storage-class", "x-amz-content-sha256")},
    "x-amz-object-lock-mode": "s3:object-lock-mode",
    "x-amz-object-lock-retain-until-date": "s3:object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold": "s3:object-lock-legal-hold",
    "if-match": "s3:if-match",
    "if-none-match": "s3:if-none-match",
}


def from_request(headers: Mapping[str, str], query: Mapping[str, str]) -> dict[str, Any]:
    """The condition keys of a request's *headers* (lower-case names) and *query*."""
    keys: dict[str, Any] = {key: headers[name] for name, key in HEADER_KEYS.items()
                            if name in headers}
    source = headers.get("x-amz-copy-source")
    if source:
        # S3 compares "bucket/key" (policies name the source as in an ARN's resource part)
        keys["s3:x-amz-copy-source"] = unquote(source.partition("?")[0]).lstrip("/")
    if "versionId" in query:
        keys["s3:VersionId"] = query["versionId"]
    keys.update(_signature_keys(headers, query))
    header = headers.get("x-amz-tagging")
    if header is not None:
        try:
            keys.update(request_tags(tagging.parse_tagging_header(header)))
        except AwsError:
            pass                        # the operation refuses the header itself
    return keys


def _signature_keys(headers: Mapping[str, str], query: Mapping[str, str]) -> dict[str, str]:
    """``s3:signatureversion`` (``AWS`` or ``AWS4-HMAC-SHA256``) and ``s3:authType``
    (``REST-HEADER`` or ``REST-QUERY-STRING``) of a signed request; none for an anonymous
    one or a browser form (its signature is in the body)."""
    authorization = headers.get("authorization", "")
    if authorization.startswith("AWS4-HMAC-SHA256"):
        return {"s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "REST-HEADER"}
    if authorization.startswith("AWS "):
        return {"s3:signatureversion": "AWS", "s3:authType": "REST-HEADER"}
    if query.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256":
        return {"s3:signatureversion": "AWS4-HMAC-SHA256", "s3:authType": "REST-QUERY-STRING"}
    if "Signature" in query and "AWSAccessKeyId" in query:
        return {"s3:signatureversion": "AWS", "s3:authType": "REST-QUERY-STRING"}
    return {}


def request_tags(tags: Mapping[str, str] | None) -> dict[str, Any]:
    """``s3:RequestObjectTag/<key>`` for each tag a write asks for, and their keys."""
    tags = tags or {}
    return {"s3:RequestObjectTagKeys": list(tags),
            **{f"s3:RequestObjectTag/{key}": value for key, value in tags.items()}}


def existing_tags(version) -> dict[str, Any]:
    """``s3:ExistingObjectTag/<key>`` for each tag of object *version* (None: none)."""
    if version is None:
        return {}
    tags = version.get_json("tags") or {}
    return {f"s3:ExistingObjectTag/{key}": value for key, value in tags.items()}
