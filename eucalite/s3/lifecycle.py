"""Bucket lifecycle: the ``LifecycleConfiguration`` document, read (validated as S3 does) and
written back. When its actions fall due is :mod:`eucalite.s3.expiry`.

A configuration is a list of rule dicts, JSON-serialisable and shaped as botocore shapes them::

    {"ID": "...", "Status": "Enabled" | "Disabled",
     "Filter": {} | {"Prefix": p} | {"Tag": {"Key": k, "Value": v}}
               | {"ObjectSizeGreaterThan": n} | {"ObjectSizeLessThan": n}
               | {"And": {"Prefix": p, "Tags": [{"Key": k, "Value": v}, ...],
                          "ObjectSizeGreaterThan": n, "ObjectSizeLessThan": n}},
     # or, in the older form, "Prefix": p instead of "Filter"
     "Expiration": {"Days": n} | {"Date": "2012-12-23T00:00:00.000Z"}
                   | {"ExpiredObjectDeleteMarker": bool},
     "NoncurrentVersionExpiration": {"NoncurrentDays": n, "NewerNoncurrentVersions": m},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": n}}

Only the keys a rule has are present. eucalite has one storage class, so ``Transition`` and
``NoncurrentVersionTransition`` are refused (``InvalidArgument``).

"""
from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from typing import Iterable, Mapping
from xml.etree import ElementTree as ET

from .. import integers, utctime
from ..errors.s3 import InvalidArgument, InvalidRequest, MalformedXML
from ..xmlutil import S3_NAMESPACE, document
from .xmlbody import parse

MAX_RULES = 1000
MAX_ID_LENGTH = 255
MAX_OBJECT_SIZE = 1099511627776000          # the largest size filter S3 accepts
UTC = dt.timezone.utc

TRANSITION_MESSAGE = ("eucalite has a single storage class (STANDARD), so lifecycle "
                      "'{action}' actions are not supported; use Expiration instead.")

_RULE_ELEMENTS = {"ID", "Status", "Filter", "Prefix", "Expiration", "Transition",
                  "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
                  "AbortIncompleteMultipartUpload"}
_ACTIONS = ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
                       r"(Z|[+-]\d{2}:?\d{2})?)?", re.ASCII)


# --- reading the document ---------------------------------------------------------------

def _single(element: ET.Element, name: str) -> ET.Element | None:
    """The one child *name* of *element*, None when absent; MalformedXML when repeated."""
    found = element.findall(name)
    if len(found) > 1:
        raise MalformedXML()
    return found[0] if found else None


def _only(element: ET.Element, allowed: set[str]) -> None:
    if any(child.tag not in allowed for child in element):
        raise MalformedXML()


def _integer(element: ET.Element, maximum: int = integers.INT32_MAX) -> int:
    """The element's integer; MalformedXML unless ASCII digits (a ``-`` allowed, so the
    caller can say why a negative value is refused) no greater than *maximum*."""
    value = integers.parse((element.text or "").strip(), signed=True, maximum=maximum)
    if value is None:
        raise MalformedXML()
    return value


def _positive(element: ET.Element | None, name: str, action: str) -> int | None:
    """The value of a day count that must be a positive integer, as S3 words the fault."""
    if element is None:
        return None
    value = _integer(element)
    if value <= 0:
        raise InvalidArgument(f"'{name}' for {action} action must be a positive integer")
    return value


def _size(element: ET.Element, name: str) -> int:
    value = _integer(element, maximum=integers.INT64_MAX)
    low = 1 if name == "ObjectSizeLessThan" else 0
    if not low <= value <= MAX_OBJECT_SIZE:
        raise InvalidRequest(f"'{name}' should be between {low} and {MAX_OBJECT_SIZE}.")
    return value


def _tag(element: ET.Element) -> dict:
    _only(element, {"Key", "Value"})
    key, value = _single(element, "Key"), _single(element, "Value")
    if key is None or not key.text:
        raise MalformedXML()
    return {"Key": key.text, "Value": "" if value is None else value.text or ""}


def _parse_filter(element: ET.Element) -> dict:
    _only(element, {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And"})
    children = list(element)
    if not children:
        return {}
    if len(children) > 1:               # "exactly one of": several need an And
        raise MalformedXML()
    child = children[0]
    if child.tag == "Prefix":
        return {"Prefix": child.text or ""}
    if child.tag == "Tag":
        return {"Tag": _tag(child)}
    if child.tag != "And":
        return {child.tag: _size(child, child.tag)}
    _only(child, {"Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan"})
    if len(child) < 2:
        raise MalformedXML()
    conjunction: dict = {}
    prefix = _single(child, "Prefix")
    if prefix is not None:
        conjunction["Prefix"] = prefix.text or ""
    tags = [_tag(tag) for tag in child.findall("Tag")]
    if len({tag["Key"] for tag in tags}) != len(tags):
        raise InvalidRequest("Duplicate Tag Keys are not allowed.")
    if tags:
        conjunction["Tags"] = tags
    for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        size = _single(child, name)
        if size is not None:
            conjunction[name] = _size(size, name)
    if conjunction.get("ObjectSizeGreaterThan", -1) >= conjunction.get("ObjectSizeLessThan",
                                                                       MAX_OBJECT_SIZE + 1):
        raise InvalidRequest("'ObjectSizeLessThan' has to be a value greater than "
                             "'ObjectSizeGreaterThan'.")
    return {"And": conjunction}


def parse_date(text: str) -> dt.datetime:
    """An ``Expiration`` ``Date``: ISO 8601, at midnight UTC (MalformedXML when it is not a
    date, InvalidArgument when it is not midnight)."""
    text = text.strip()
    if not _ISO_DATE.fullmatch(text):
        raise MalformedXML()
    try:
        when = utctime.aware(dt.datetime.fromisoformat(text))
    except (ValueError, OverflowError):     # no such date, or none in UTC
        raise MalformedXML() from None
    if when.time() != dt.time(0):
        raise InvalidArgument("'Date' must be at midnight GMT")
    return when


def format_date(when: dt.datetime) -> str:
    """A lifecycle ``Date`` as S3 writes timestamps: ``2012-12-23T00:00:00.000Z``."""
    return utctime.aware(when).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_expiration(element: ET.Element) -> dict:
    _only(element, {"Days", "Date", "ExpiredObjectDeleteMarker"})
    days, date = _single(element, "Days"), _single(element, "Date")
    marker = _single(element, "ExpiredObjectDeleteMarker")
    if len(element) != 1:               # exactly one of Days, Date, ExpiredObjectDeleteMarker
        raise MalformedXML()
    if days is not None:
        return {"Days": _positive(days, "Days", "Expiration")}
    if date is not None:
        return {"Date": format_date(parse_date(date.text or ""))}
    flag = (marker.text or "").strip().lower()
    if flag not in ("true", "false", "1", "0"):
        raise MalformedXML()
    return {"ExpiredObjectDeleteMarker": flag in ("true", "1")}


def _parse_noncurrent(element: ET.Element) -> dict:
    _only(element, {"NoncurrentDays", "NewerNoncurrentVersions"})
    action = "NoncurrentVersionExpiration"
    days = _positive(_single(element, "NoncurrentDays"), "NoncurrentDays", action)
    if days is None:
        raise MalformedXML()
    result = {"NoncurrentDays": days}
    newer = _positive(_single(element, "NewerNoncurrentVersions"), "NewerNoncurrentVersions",
                      action)
    if newer is not None:
        result["NewerNoncurrentVersions"] = newer
    return result


def _parse_abort(element: ET.Element) -> dict:
    _only(element, {"DaysAfterInitiation"})
    days = _positive(_single(element, "DaysAfterInitiation"), "DaysAfterInitiation",
                     "AbortIncompleteMultipartUpload")
    if days is None:
        raise MalformedXML()
    return {"DaysAfterInitiation": days}


def _new_id() -> str:
    """An ID for a rule sent without one, in S3's form (base64 of a UUID4's text)."""
    return base64.b64encode(str(uuid.uuid4()).encode()).decode()


def _parse_rule(element: ET.Element) -> dict:
    _only(element, _RULE_ELEMENTS)
    for name in _RULE_ELEMENTS - {"Transition", "NoncurrentVersionTransition"}:
        _single(element, name)          # each at most once
    for name in ("Transition", "NoncurrentVersionTransition"):
        if element.find(name) is not None:
            raise InvalidArgument(TRANSITION_MESSAGE.format(action=name))

    rule: dict = {}
    rule_id = element.findtext("ID")
    if rule_id is not None and len(rule_id) > MAX_ID_LENGTH:
        raise InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID_LENGTH}")
    rule["ID"] = rule_id or _new_id()

    filter_element, prefix = element.find("Filter"), element.find("Prefix")
    if (filter_element is None) == (prefix is None):
        raise MalformedXML()
    if filter_element is not None:
        rule["Filter"] = _parse_filter(filter_element)
    else:
        rule["Prefix"] = prefix.text or ""

    status = element.findtext("Status")
    if status not in ("Enabled", "Disabled"):
        raise MalformedXML()
    rule["Status"] = status

    parsers = {"Expiration": _parse_expiration,
               "NoncurrentVersionExpiration": _parse_noncurrent,
               "AbortIncompleteMultipartUpload": _parse_abort}
    for name in _ACTIONS:
        action = element.find(name)
        if action is not None:
            rule[name] = parsers[name](action)
    if not any(name in rule for name in _ACTIONS):
        raise InvalidRequest("At least one action needs to be specified in a rule")
    _check_combinations(rule)
    return rule


def _check_combinations(rule: dict) -> None:
    """Actions S3 refuses beside some filters."""
    _, tags, greater, less = filter_parts(rule)
    sized = greater is not None or less is not None
    if "AbortIncompleteMultipartUpload" in rule:
        if tags:
            raise InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with "
                                 "Tags.")
        if sized:
            raise InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with "
                                 "Object Size.")
    if "ExpiredObjectDeleteMarker" in rule.get("Expiration", {}):
        if tags:
            raise InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with Tags.")
        if sized:
            raise InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with "
                                 "Object Size.")
    if "Prefix" in rule and "NewerNoncurrentVersions" in rule.get(
            "NoncurrentVersionExpiration", {}):
        raise InvalidRequest("NewerNoncurrentVersions element can only be used in "
                             "Lifecycle V2.")


def _check_configuration(rules: list[dict]) -> None:
    ids = [rule["ID"] for rule in rules]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("Rule ID must be unique. Found same ID for more than one rule")
    first_is_v1 = "Prefix" in rules[0]
    for rule in rules[1:]:
        if ("Prefix" in rule) != first_is_v1:
            raise InvalidRequest(
                "Filter element can only be used in Lifecycle V2." if first_is_v1 else
                "Base level prefix cannot be used in Lifecycle V2, prefixes are only supported "
                "in the Filter.")
    if first_is_v1:                     # the older form forbids overlapping prefixes
        for action in _ACTIONS:
            prefixes = [rule["Prefix"] for rule in rules if action in rule]
            for i, one in enumerate(prefixes):
                for other in prefixes[i + 1:]:
                    if one.startswith(other) or other.startswith(one):
                        raise InvalidRequest(f"Found overlapping prefixes '{one}' and "
                                             f"'{other}' for same action type '{action}'")


def parse_lifecycle(body: bytes) -> list[dict]:
    """The rules of a PutBucketLifecycleConfiguration body, validated as S3 does."""
    root = parse(body, "LifecycleConfiguration")
    if any(child.tag != "Rule" for child in root) or not len(root):
        raise MalformedXML()
    if len(root) > MAX_RULES:
        raise InvalidRequest("The number of lifecycle rules must not exceed the allowed "
                             f"limit of {MAX_RULES} rules.")
    rules = [_parse_rule(element) for element in root]
    _check_configuration(rules)
    return rules


# --- writing it -------------------------------------------------------------------------

def _tag_element(parent: ET.Element, tag: dict) -> None:
    element = ET.SubElement(parent, "Tag")
    ET.SubElement(element, "Key").text = tag["Key"]
    ET.SubElement(element, "Value").text = tag.get("Value", "")


def _filter_element(parent: ET.Element, spec: dict) -> None:
    element = ET.SubElement(parent, "Filter")
    if "Prefix" in spec:
        ET.SubElement(element, "Prefix").text = spec["Prefix"]
    elif "Tag" in spec:
        _tag_element(element, spec["Tag"])
    elif "And" in spec:
        conjunction = ET.SubElement(element, "And")
        if "Prefix" in spec["And"]:
            ET.SubElement(conjunction, "Prefix").text = spec["And"]["Prefix"]
        for tag in spec["And"].get("Tags", ()):
            _tag_element(conjunction, tag)
        for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
            if name in spec["And"]:
                ET.SubElement(conjunction, name).text = str(spec["And"][name])
    for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if name in spec:
            ET.SubElement(element, name).text = str(spec[name])


def _text(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def lifecycle_to_xml(rules: Iterable[dict]) -> bytes:
    """The ``LifecycleConfiguration`` document GetBucketLifecycleConfiguration answers
    (each rule as ``ID``, ``Filter`` or ``Prefix``, ``Status``, then its actions)."""
    root = ET.Element("LifecycleConfiguration", xmlns=S3_NAMESPACE)
    for rule in rules:
        element = ET.SubElement(root, "Rule")
        ET.SubElement(element, "ID").text = rule["ID"]
        if "Filter" in rule:
            _filter_element(element, rule["Filter"])
        else:
            ET.SubElement(element, "Prefix").text = rule.get("Prefix", "")
        ET.SubElement(element, "Status").text = rule["Status"]
        for action in _ACTIONS:
            if action in rule:
                action_element = ET.SubElement(element, action)
                for name, value in rule[action].items():
                    ET.SubElement(action_element, name).text = _text(value)
    return document(root)


# --- the filter, whatever its form ----------------------------------------------------

def filter_parts(rule: Mapping) -> tuple[str, list[dict], int | None, int | None]:
    """A rule's (prefix, tags, ObjectSizeGreaterThan, ObjectSizeLessThan), whatever its form."""
    if "Filter" not in rule:
        return rule.get("Prefix", ""), [], None, None
    spec = rule["Filter"]
    if "And" in spec:
        spec = dict(spec["And"])
    else:
        spec = dict(spec)
        if "Tag" in spec:
            spec["Tags"] = [spec.pop("Tag")]
    return (spec.get("Prefix", ""), list(spec.get("Tags", [])),
            spec.get("ObjectSizeGreaterThan"), spec.get("ObjectSizeLessThan"))
