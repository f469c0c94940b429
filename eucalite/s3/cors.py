"""Bucket CORS: the ``CORSConfiguration`` document and how S3 answers cross-origin requests.

A configuration is a list of rule dicts (JSON-serialisable, named as botocore names them)::

    {"ID": "id" | None, "AllowedOrigins": [...], "AllowedMethods": [...],
     "AllowedHeaders": [...], "ExposeHeaders": [...], "MaxAgeSeconds": int | None}

S3 uses the *first* rule that matches: the ``Origin`` matches an ``AllowedOrigin`` (which may
hold one ``*`` wildcard, matching any run of characters, the empty one included), the method
(``Access-Control-Request-Method`` on a preflight) is one of ``AllowedMethod``, and, on a
preflight only, every requested header matches an ``AllowedHeader`` (case-insensitively, one
``*`` wildcard allowed).

Answers, as S3 gives them: ``Access-Control-Allow-Origin`` is ``*`` when the rule's origin is
``*``, else the request's origin with ``Access-Control-Allow-Credentials: true``;
``Access-Control-Allow-Methods`` lists the rule's methods; a preflight echoes the requested
headers in lower case in ``Access-Control-Allow-Headers``; ``-Expose-Headers`` and
``-Max-Age`` come from the rule; ``Vary`` names the three request headers CORS depends on.
A preflight no rule allows is refused (:func:`not_allowed`, 403); an actual request no rule
allows is served without CORS headers.
"""
from __future__ import annotations

from typing import Iterable
from xml.etree import ElementTree as ET

from .. import integers
from ..errors.s3 import (AccessForbidden, BadRequest, InvalidArgument, InvalidRequest,
                         MalformedXML)
from ..xmlutil import S3_NAMESPACE, document
from .xmlbody import child_text, parse

METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
MAX_RULES = 100
MAX_ID_LENGTH = 255
#: PutBucketCors documents a 64 KB limit on the document; the adapter bounds the body.
MAX_BODY = 64 * 1024
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

_RULE_ELEMENTS = {"ID", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader",
                  "MaxAgeSeconds"}


# --- the document -----------------------------------------------------------------------

def parse_cors(body: bytes) -> list[dict]:
    """The rules of a PutBucketCors body; MalformedXML, InvalidRequest or InvalidArgument as
    S3 reports a bad configuration."""
    root = parse(body, "CORSConfiguration")
    elements = list(root)
    if not elements or len(elements) > MAX_RULES or any(e.tag != "CORSRule" for e in elements):
        raise MalformedXML()
    return [_parse_rule(element) for element in elements]


def _parse_rule(element: ET.Element) -> dict:
    if any(child.tag not in _RULE_ELEMENTS for child in element):
        raise MalformedXML()

    def texts(name: str) -> list[str]:
        return [child.text or "" for child in element.findall(name)]

    origins, methods = texts("AllowedOrigin"), texts("AllowedMethod")
    headers, expose = texts("AllowedHeader"), texts("ExposeHeader")
    if not origins or not methods or len(element.findall("ID")) > 1 \
            or len(element.findall("MaxAgeSeconds")) > 1:
        raise MalformedXML()
    for method in methods:
        if method not in METHODS:
            raise InvalidRequest("Found unsupported HTTP method in CORS config. "
                                 f"Unsupported method is {method}")
    for origin in origins:
        if origin.count("*") > 1:
            raise InvalidRequest(f'AllowedOrigin "{origin}" can not have more than one '
                                 "wildcard.")
    for header in headers:
        if header.count("*") > 1:
            raise InvalidRequest(f'AllowedHeader "{header}" can not have more than one '
                                 "wildcard.")
    for header in expose:
        if "*" in header:
            raise InvalidRequest(f'ExposeHeader "{header}" contains wildcard. We currently '
                                 "do not support wildcard for ExposeHeader.")
    rule_id = child_text(element, "ID")
    if rule_id is not None and len(rule_id) > MAX_ID_LENGTH:
        raise InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID_LENGTH}")
    max_age = child_text(element, "MaxAgeSeconds")
    if max_age is not None:
        max_age = integers.parse(max_age.strip(), maximum=integers.INT32_MAX)
        if max_age is None:              # ASCII digits only: no sign, no fraction
            raise MalformedXML()
    return {"ID": rule_id, "AllowedOrigins": origins, "AllowedMethods": methods,
            "AllowedHeaders": headers, "ExposeHeaders": expose, "MaxAgeSeconds": max_age}


def cors_to_xml(rules: Iterable[dict]) -> bytes:
    """The ``CORSConfiguration`` document GetBucketCors answers (elements in the API
    reference's order; empty lists and absent values left out)."""
    root = ET.Element("CORSConfiguration", xmlns=S3_NAMESPACE)
    for rule in rules:
        element = ET.SubElement(root, "CORSRule")
        for tag, key in (("AllowedHeader", "AllowedHeaders"), ("AllowedMethod", "AllowedMethods"),
                         ("AllowedOrigin", "AllowedOrigins"), ("ExposeHeader", "ExposeHeaders")):
            for value in rule.get(key) or ():
                ET.SubElement(element, tag).text = value
        if rule.get("ID") is not None:
            ET.SubElement(element, "ID").text = rule["ID"]
        if rule.get("MaxAgeSeconds") is not None:
            ET.SubElement(element, "MaxAgeSeconds").text = str(rule["MaxAgeSeconds"])
    return document(root)


# --- matching ---------------------------------------------------------------------------

def wildcard_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """Whether *text* matches *pattern*, whose one ``*`` matches any run of characters
    (the empty run too); the match is anchored at both ends."""
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    if "*" not in pattern:
        return pattern == text
    head, _, tail = pattern.partition("*")
    return len(text) >= len(head) + len(tail) and text.startswith(head) \
        and text.endswith(tail)


def split_header_list(value: str | None) -> list[str]:
    """The names in an ``Access-Control-Request-Headers`` value (comma-separated, blanks
    and empty items dropped)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _matching_origin(rule: dict, origin: str) -> str | None:
    """The rule's first AllowedOrigin that *origin* matches, or None."""
    for allowed in rule["AllowedOrigins"]:
        if wildcard_match(allowed, origin):
            return allowed
    return None


def _headers_allowed(rule: dict, request_headers: list[str]) -> bool:
    return all(any(wildcard_match(allowed, header, ignore_case=True)
                   for allowed in rule.get("AllowedHeaders") or ())
               for header in request_headers)


def find_rule(rules: Iterable[dict], origin: str, method: str,
              request_headers: list[str] | None = None) -> tuple[dict, str] | None:
    """The first rule allowing *origin*, *method* and (preflight) *request_headers*, with the
    AllowedOrigin it matched; None when none does."""
    for rule in rules:
        allowed_origin = _matching_origin(rule, origin)
        if allowed_origin is None or method not in rule["AllowedMethods"]:
            continue
        if request_headers and not _headers_allowed(rule, request_headers):
            continue
        return rule, allowed_origin
    return None


def _common_headers(rule: dict, allowed_origin: str, origin: str) -> dict[str, str]:
    headers = {}
    if allowed_origin == "*":
        headers["Access-Control-Allow-Origin"] = "*"
    else:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    headers["Access-Control-Allow-Methods"] = ", ".join(rule["AllowedMethods"])
    return headers


def _tail_headers(rule: dict) -> dict[str, str]:
    headers = {}
    if rule.get("ExposeHeaders"):
        headers["Access-Control-Expose-Headers"] = ", ".join(rule["ExposeHeaders"])
    if rule.get("MaxAgeSeconds") is not None:
        headers["Access-Control-Max-Age"] = str(rule["MaxAgeSeconds"])
    headers["Vary"] = VARY
    return headers


def preflight(rules: Iterable[dict], origin: str, method: str,
              request_headers: list[str]) -> dict[str, str] | None:
    """The response headers for an OPTIONS preflight, or None when no rule allows it (the
    adapter then answers :func:`not_allowed`).

    *method* is ``Access-Control-Request-Method``; *request_headers* the names in
    ``Access-Control-Request-Headers`` (see :func:`split_header_list`).
    """
    found = find_rule(rules, origin, method, request_headers)
    if found is None:
        return None
    rule, allowed_origin = found
    headers = _common_headers(rule, allowed_origin, origin)
    if request_headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(h.lower() for h in request_headers)
    headers.update(_tail_headers(rule))
    return headers


def actual_headers(rules: Iterable[dict], origin: str, method: str) -> dict[str, str]:
    """The CORS headers for a non-preflight request carrying ``Origin`` (``{}`` when no rule
    matches: S3 serves the request without them).

    *method* is the request's method, or its ``Access-Control-Request-Method`` header when it
    carries one (S3 matches on that). Request headers are not checked on actual requests.
    """
    found = find_rule(rules, origin, method)
    if found is None:
        return {}
    rule, allowed_origin = found
    headers = _common_headers(rule, allowed_origin, origin)
    headers.update(_tail_headers(rule))
    return headers


# --- refusals ---------------------------------------------------------------------------

def not_allowed(method: str, resource_type: str = "OBJECT") -> AccessForbidden:
    """403 for a preflight no rule allows. *method* is the requested method (``OPTIONS``
    when none was given); *resource_type* ``BUCKET`` or ``OBJECT``."""
    return AccessForbidden("CORSResponse: This CORS request is not allowed. This is usually "
                           "because the evalution of Origin, request method / "
                           "Access-Control-Request-Method or Access-Control-Request-Headers "
                           "are not whitelisted by the resource's CORS spec.",
                           Method=method, ResourceType=resource_type)


def not_enabled(method: str, resource_type: str = "BUCKET") -> AccessForbidden:
    """403 for a preflight on a bucket without a CORS configuration."""
    return AccessForbidden("CORSResponse: CORS is not enabled for this bucket.", Method=method,
                           ResourceType=resource_type)


def origin_required() -> BadRequest:
    """400 for an OPTIONS request without ``Origin``."""
    return BadRequest("Insufficient information. Origin request header needed.")
