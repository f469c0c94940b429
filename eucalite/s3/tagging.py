"""Object and bucket tags: the ``Tagging`` document and the ``x-amz-tagging`` header.

Tags are a plain ``dict`` of key to value, in the order given. Validation follows S3:

* at most 10 tags on an object and 50 on a bucket (``BadRequest`` "Object tags cannot be
  greater than 10" / "Bucket tag count cannot be greater than 50");
* keys unique (``InvalidTag`` "Cannot provide multiple Tags with the same key");
* no key under the reserved ``aws:`` prefix (``InvalidTag``);
* keys of 1-128 and values of 0-256 Unicode characters, drawn from letters, digits, white
  space and ``_ . : / = + - @`` (``InvalidTag`` "The TagKey/TagValue you have provided is
  invalid", with ``TagKey``/``TagValue`` elements naming the culprit);
* a document without ``TagSet``, or a ``Tag`` without ``Key`` or ``Value``, is
  ``MalformedXML``.

The header is URL query syntax (``k1=v1&k2``); a duplicate or empty name, or bytes that are
not UTF-8, is ``InvalidArgument`` with S3's message about the header's encoding.
"""
from __future__ import annotations

import unicodedata
from typing import Mapping
from urllib.parse import quote, unquote_plus
from xml.etree import ElementTree as ET

from ..errors.s3 import BadRequest, InvalidArgument, InvalidTag, MalformedXML
from ..xmlutil import S3_NAMESPACE, document, to_element
from .xmlbody import parse

OBJECT_TAG_LIMIT = 10
BUCKET_TAG_LIMIT = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
_SYMBOLS = frozenset("_.:/=+-@")

HEADER_MESSAGE = ("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL "
                  "query parameters without tag name duplicates.")


def _valid_text(text: str, low: int, high: int) -> bool:
    """Whether *text* has low..high characters, each a letter, digit, space or symbol S3 allows."""
    if not low <= len(text) <= high:
        return False
    return all(ch in _SYMBOLS or unicodedata.category(ch)[0] in "LNZ" for ch in text)


def _kind(limit: int, kind: str | None) -> str:
    return kind or ("object" if limit <= OBJECT_TAG_LIMIT else "bucket")


def validate_tags(pairs: list[tuple[str, str]], *, limit: int, kind: str | None = None
                  ) -> dict[str, str]:
    """Check (key, value) *pairs* as S3 does and return them as a dict.

    *kind* ("object" or "bucket") picks S3's wording; by default it follows *limit*
    (10 for objects, 50 for buckets).
    """
    kind = _kind(limit, kind)
    if len(pairs) > limit:
        message = (f"Object tags cannot be greater than {limit}" if kind == "object"
                   else f"Bucket tag count cannot be greater than {limit}")
        raise BadRequest(message)
    tags: dict[str, str] = {}
    for key, value in pairs:
        if key in tags:
            raise InvalidTag("Cannot provide multiple Tags with the same key", TagKey=key)
        if key[:4].lower() == "aws:":
            message = ("Your TagKey cannot be prefixed with aws:" if kind == "object"
                       else "System tags cannot be added/updated by requester")
            raise InvalidTag(message, TagKey=key)
        if not _valid_text(key, 1, MAX_KEY_LENGTH):
            raise InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if not _valid_text(value, 0, MAX_VALUE_LENGTH):
            raise InvalidTag("The TagValue you have provided is invalid", TagKey=key,
                             TagValue=value)
        tags[key] = value
    return tags


def parse_tagging(body: bytes, *, limit: int, kind: str | None = None) -> dict[str, str]:
    """The tags of a ``<Tagging><TagSet><Tag><Key/><Value/></Tag>…</TagSet></Tagging>`` body.

    *limit* is :data:`OBJECT_TAG_LIMIT` for PutObjectTagging and :data:`BUCKET_TAG_LIMIT` for
    PutBucketTagging. An empty ``TagSet`` gives ``{}`` (S3 then removes the tags).
    """
    root = parse(body, "Tagging")
    tag_sets = [child for child in root if child.tag == "TagSet"]
    if len(tag_sets) != 1 or len(root) != 1:
        raise MalformedXML()
    pairs = []
    for tag in tag_sets[0]:
        if tag.tag != "Tag":
            raise MalformedXML()
        keys = tag.findall("Key")
        values = tag.findall("Value")
        if len(keys) != 1 or len(values) != 1 or len(tag) != 2:
            raise MalformedXML()
        pairs.append((keys[0].text or "", values[0].text or ""))
    return validate_tags(pairs, limit=limit, kind=kind)


def parse_tagging_header(value: str, *, limit: int = OBJECT_TAG_LIMIT) -> dict[str, str]:
    """The tags of an ``x-amz-tagging: k1=v1&k2=v2`` header (form-URL-encoded, ``+`` is a
    space; a name without ``=`` has the empty value)."""
    def refuse() -> InvalidArgument:
        return InvalidArgument(HEADER_MESSAGE, ArgumentName="x-amz-tagging",
                               ArgumentValue=value)

    pairs: list[tuple[str, str]] = []
    for part in value.split("&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition("=")
        try:
            key = unquote_plus(raw_key, errors="strict")
            tag_value = unquote_plus(raw_value, errors="strict")
        except UnicodeDecodeError:
            raise refuse() from None
        if not key or any(key == seen for seen, _ in pairs):
            raise refuse()
        pairs.append((key, tag_value))
    return validate_tags(pairs, limit=limit, kind="object")


def tagging_to_xml(tags: Mapping[str, str]) -> bytes:
    """The ``Tagging`` document GetObjectTagging and GetBucketTagging answer."""
    root = ET.Element("Tagging", xmlns=S3_NAMESPACE)
    tag_set = ET.SubElement(root, "TagSet")
    for key, value in tags.items():
        tag_set.append(to_element("Tag", {"Key": key, "Value": value}))
    return document(root)


def tagging_header_value(tags: Mapping[str, str]) -> str:
    """*tags* in ``x-amz-tagging`` form (for CopyObject with ``COPY``, replication, tests)."""
    return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}"
                    for key, value in tags.items())
