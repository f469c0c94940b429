"""Bucket lifecycle: the ``LifecycleConfiguration`` document, and when its actions fall due.

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

Timing, as S3 computes it: an action *n* days after time *t* falls due at midnight UTC of the
day after *t* + *n* days (an object written 2014-01-15 10:30 with ``Days`` 3 expires
2014-01-19 00:00 UTC). A ``Date`` action applies from that midnight on. Disabled rules never
apply. All datetimes may be aware or naive; naive ones are taken as UTC. Day counts are
S3's 32-bit integers; one that reaches past what a datetime holds falls due at
:data:`NEVER`, the last midnight there is, instead of failing every request that asks.
"""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import re
import uuid
from typing import Iterable, Mapping
from urllib.parse import quote
from xml.etree import ElementTree as ET

from .. import integers
from ..errors import AwsError
from ..xmlutil import S3_NAMESPACE, document
from .xmlbody import MalformedXML, parse

MAX_RULES = 1000
MAX_ID_LENGTH = 255
MAX_OBJECT_SIZE = 1099511627776000          # the largest size filter S3 accepts
UTC = dt.timezone.utc
#: When an action too far in the future to compute falls due.
NEVER = dt.datetime(9999, 12, 31, tzinfo=UTC)

TRANSITION_MESSAGE = ("eucalite has a single storage class (STANDARD), so lifecycle "
                      "'{action}' actions are not supported; use Expiration instead.")

_RULE_ELEMENTS = {"ID", "Status", "Filter", "Prefix", "Expiration", "Transition",
                  "NoncurrentVersionTransition", "NoncurrentVersionExpiration",
                  "AbortIncompleteMultipartUpload"}
_ACTIONS = ("Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
                       r"(Z|[+-]\d{2}:?\d{2})?)?", re.ASCII)


def _invalid_argument(message: str) -> AwsError:
    return AwsError(message, code="InvalidArgument", status=400)


def _invalid_request(message: str) -> AwsError:
    return AwsError(message, code="InvalidRequest", status=400)


def _utc(when: dt.datetime) -> dt.datetime:
    """*when* as an aware UTC datetime (naive means UTC)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


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
        raise _invalid_argument(f"'{name}' for {action} action must be a positive integer")
    return value


def _size(element: ET.Element, name: str) -> int:
    value = _integer(element, maximum=integers.INT64_MAX)
    low = 1 if name == "ObjectSizeLessThan" else 0
    if not low <= value <= MAX_OBJECT_SIZE:
        raise _invalid_request(f"'{name}' should be between {low} and {MAX_OBJECT_SIZE}.")
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
        raise _invalid_request("Duplicate Tag Keys are not allowed.")
    if tags:
        conjunction["Tags"] = tags
    for name in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        size = _single(child, name)
        if size is not None:
            conjunction[name] = _size(size, name)
    if conjunction.get("ObjectSizeGreaterThan", -1) >= conjunction.get("ObjectSizeLessThan",
                                                                       MAX_OBJECT_SIZE + 1):
        raise _invalid_request("'ObjectSizeLessThan' has to be a value greater than "
                               "'ObjectSizeGreaterThan'.")
    return {"And": conjunction}


def parse_date(text: str) -> dt.datetime:
    """An ``Expiration`` ``Date``: ISO 8601, at midnight UTC (MalformedXML when it is not a
    date, InvalidArgument when it is not midnight)."""
    text = text.strip()
    if not _ISO_DATE.fullmatch(text):
        raise MalformedXML()
    try:
        when = _utc(dt.datetime.fromisoformat(text))
    except (ValueError, OverflowError):     # no such date, or none in UTC
        raise MalformedXML() from None
    if when.time() != dt.time(0):
        raise _invalid_argument("'Date' must be at midnight GMT")
    return when


def format_date(when: dt.datetime) -> str:
    """A lifecycle ``Date`` as S3 writes timestamps: ``2012-12-23T00:00:00.000Z``."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%S.000Z")


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
            raise _invalid_argument(TRANSITION_MESSAGE.format(action=name))

    rule: dict = {}
    rule_id = element.findtext("ID")
    if rule_id is not None and len(rule_id) > MAX_ID_LENGTH:
        raise _invalid_argument(f"ID length should not exceed allowed limit of {MAX_ID_LENGTH}")
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
        raise _invalid_request("At least one action needs to be specified in a rule")
    _check_combinations(rule)
    return rule


def _check_combinations(rule: dict) -> None:
    """Actions S3 refuses beside some filters."""
    _, tags, greater, less = filter_parts(rule)
    sized = greater is not None or less is not None
    if "AbortIncompleteMultipartUpload" in rule:
        if tags:
            raise _invalid_request("AbortIncompleteMultipartUpload cannot be specified with "
                                   "Tags.")
        if sized:
            raise _invalid_request("AbortIncompleteMultipartUpload cannot be specified with "
                                   "Object Size.")
    if "ExpiredObjectDeleteMarker" in rule.get("Expiration", {}):
        if tags:
            raise _invalid_request("ExpiredObjectDeleteMarker cannot be specified with Tags.")
        if sized:
            raise _invalid_request("ExpiredObjectDeleteMarker cannot be specified with "
                                   "Object Size.")
    if "Prefix" in rule and "NewerNoncurrentVersions" in rule.get(
            "NoncurrentVersionExpiration", {}):
        raise _invalid_request("NewerNoncurrentVersions element can only be used in "
                               "Lifecycle V2.")


def _check_configuration(rules: list[dict]) -> None:
    ids = [rule["ID"] for rule in rules]
    if len(set(ids)) != len(ids):
        raise _invalid_argument("Rule ID must be unique. Found same ID for more than one rule")
    first_is_v1 = "Prefix" in rules[0]
    for rule in rules[1:]:
        if ("Prefix" in rule) != first_is_v1:
            raise _invalid_request(
                "Filter element can only be used in Lifecycle V2." if first_is_v1 else
                "Base level prefix cannot be used in Lifecycle V2, prefixes are only supported "
                "in the Filter.")
    if first_is_v1:                     # the older form forbids overlapping prefixes
        for action in _ACTIONS:
            prefixes = [rule["Prefix"] for rule in rules if action in rule]
            for i, one in enumerate(prefixes):
                for other in prefixes[i + 1:]:
                    if one.startswith(other) or other.startswith(one):
                        raise _invalid_request(f"Found overlapping prefixes '{one}' and "
                                               f"'{other}' for same action type '{action}'")


def parse_lifecycle(body: bytes) -> list[dict]:
    """The rules of a PutBucketLifecycleConfiguration body, validated as S3 does."""
    root = parse(body, "LifecycleConfiguration")
    if any(child.tag != "Rule" for child in root) or not len(root):
        raise MalformedXML()
    if len(root) > MAX_RULES:
        raise _invalid_request("The number of lifecycle rules must not exceed the allowed "
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


# --- evaluation -------------------------------------------------------------------------

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


def rule_matches(rule: Mapping, key: str, size: int | None, tags: Mapping[str, str]) -> bool:
    """Whether *rule* is enabled and its filter selects the object: the key starts with its
    prefix, the object carries each of its tags with the same value, and its size is
    strictly inside its size bounds (an unknown *size* fails a size bound)."""
    if rule.get("Status") != "Enabled":
        return False
    prefix, rule_tags, greater, less = filter_parts(rule)
    if not key.startswith(prefix):
        return False
    if any(tags.get(tag["Key"]) != tag.get("Value", "") for tag in rule_tags):
        return False
    if greater is not None and (size is None or size <= greater):
        return False
    if less is not None and (size is None or size >= less):
        return False
    return True


def due_date(start: dt.datetime, days: int) -> dt.datetime:
    """When an action *days* after *start* falls due: midnight UTC after *start* + *days*
    (:data:`NEVER` when that is past the year 9999)."""
    try:
        day = (_utc(start) + dt.timedelta(days=days)).date() + dt.timedelta(days=1)
    except OverflowError:
        return NEVER
    return dt.datetime.combine(day, dt.time(0), tzinfo=UTC)


def expiry_date(rule: Mapping, last_modified: dt.datetime) -> dt.datetime | None:
    """When *rule*'s Expiration (Days or Date) removes a current version written at
    *last_modified*; None when the rule has no such action."""
    expiration = rule.get("Expiration") or {}
    if "Days" in expiration:
        return due_date(last_modified, expiration["Days"])
    if "Date" in expiration:
        return _utc(dt.datetime.fromisoformat(expiration["Date"]))
    return None


def expiry_due(rule: Mapping, *, key: str, size: int | None, tags: Mapping[str, str],
               last_modified: dt.datetime, now: dt.datetime) -> bool:
    """Whether *rule* expires the current version described (by Days or Date)."""
    if not rule_matches(rule, key, size, tags):
        return False
    when = expiry_date(rule, last_modified)
    return when is not None and _utc(now) >= when


def noncurrent_due(rule: Mapping, *, key: str, size: int | None, tags: Mapping[str, str],
                   became_noncurrent: dt.datetime, newer_noncurrent_count: int,
                   now: dt.datetime) -> bool:
    """Whether *rule* permanently deletes a noncurrent version.

    *became_noncurrent* is when its successor was written; *newer_noncurrent_count* how many
    noncurrent versions of the key are newer than it. With ``NewerNoncurrentVersions`` N the
    N newest noncurrent versions are kept: both the days and the count must be reached.
    """
    action = rule.get("NoncurrentVersionExpiration")
    if not action or not rule_matches(rule, key, size, tags):
        return False
    if _utc(now) < due_date(became_noncurrent, action["NoncurrentDays"]):
        return False
    keep = action.get("NewerNoncurrentVersions")
    return keep is None or newer_noncurrent_count >= keep


def delete_marker_due(rule: Mapping, *, key: str, last_modified: dt.datetime,
                      noncurrent_versions: int, now: dt.datetime) -> bool:
    """Whether *rule* removes a current delete marker that has *noncurrent_versions* other
    versions: only a marker with none ("expired"), by ``ExpiredObjectDeleteMarker`` at once,
    or by ``Days`` once the marker is that old."""
    expiration = rule.get("Expiration") or {}
    if noncurrent_versions or not rule_matches(rule, key, 0, {}):
        return False
    if expiration.get("ExpiredObjectDeleteMarker"):
        return True
    return "Days" in expiration and _utc(now) >= due_date(last_modified, expiration["Days"])


def abort_date(rule: Mapping, *, key: str, initiated: dt.datetime) -> dt.datetime | None:
    """When *rule* aborts a multipart upload of *key* begun at *initiated*, or None."""
    action = rule.get("AbortIncompleteMultipartUpload")
    if not action or not rule_matches(rule, key, None, {}):
        return None
    return due_date(initiated, action["DaysAfterInitiation"])


def abort_due(rule: Mapping, *, key: str, initiated: dt.datetime, now: dt.datetime) -> bool:
    """Whether *rule* aborts an incomplete multipart upload of *key* begun at *initiated*."""
    when = abort_date(rule, key=key, initiated=initiated)
    return when is not None and _utc(now) >= when


def http_date(when: dt.datetime) -> str:
    """``Fri, 23 Dec 2012 00:00:00 GMT``."""
    return email.utils.format_datetime(_utc(when), usegmt=True)


def _header_id(rule_id: str) -> str:
    """A rule ID as S3 puts it in a header: as is, URL-encoding only what a header cannot
    carry (quotes, percent signs, controls and non-ASCII)."""
    return quote(rule_id, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def expiration_header(rules: Iterable[Mapping], key: str, size: int | None,
                      tags: Mapping[str, str], last_modified: dt.datetime) -> str | None:
    """The ``x-amz-expiration`` value for a current version (PUT, GET, HEAD), naming the rule
    that expires it first (the first listed on a tie); None when no rule expires it."""
    best = None
    for rule in rules:
        if not rule_matches(rule, key, size, tags):
            continue
        when = expiry_date(rule, last_modified)
        if when is not None and (best is None or when < best[0]):
            best = (when, rule["ID"])
    if best is None:
        return None
    return f'expiry-date="{http_date(best[0])}", rule-id="{_header_id(best[1])}"'


def abort_headers(rules: Iterable[Mapping], key: str, initiated: dt.datetime
                  ) -> dict[str, str]:
    """``x-amz-abort-date`` and ``x-amz-abort-rule-id`` for CreateMultipartUpload and
    ListParts (``{}`` when no rule aborts the upload)."""
    best = None
    for rule in rules:
        when = abort_date(rule, key=key, initiated=initiated)
        if when is not None and (best is None or when < best[0]):
            best = (when, rule["ID"])
    if best is None:
        return {}
    return {"x-amz-abort-date": http_date(best[0]), "x-amz-abort-rule-id": _header_id(best[1])}
