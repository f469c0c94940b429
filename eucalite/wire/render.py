"""Answers on the wire: an operation's output dict, or an error, as each protocol sends it.

Handlers return output dicts keyed by the model's member names, with Python values (lists,
dicts, str, int, float, bool, bytes, aware datetimes); a key the output shape has no member
for is a bug in the handler and raises ValueError. Each protocol gets a :class:`Reply`:

* Query: ``<OpResponse xmlns=…><OpResult>…</OpResult><ResponseMetadata><RequestId>``, lists
  as ``<member>``, maps as ``<entry><key/><value/></entry>``, timestamps ISO-8601 with
  milliseconds; errors ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>``.
* awsJson 1.0: the output as a JSON object, timestamps as epoch seconds, blobs base64;
  errors ``{"__type": …, "message": …}``.
* RPC v2 CBOR: the same document in CBOR (timestamps as tag 1, blobs as byte strings), with
  ``smithy-protocol: rpc-v2-cbor``.

JSON and CBOR errors name the model's error shape in ``__type`` when the code is modeled
(``MissingParameter`` is ``MissingRequiredParameterException``) and carry
``x-amzn-query-error: <Query code>;Sender`` (``Receiver`` for 5xx), which botocore reads for
``awsQueryCompatible`` services: a client sees the same Error.Code on every protocol.
Protocol-level errors (``SerializationException``, ``UnknownOperationException``) have no
Query code and get no such header.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from botocore.model import OperationModel, Shape

from .. import xmlutil
from ..errors import AwsError
from . import cbor
from .model import ServiceModel, query_name

QUERY, JSON, CBOR = "query", "json", "cbor"

_CONTENT_TYPES = {QUERY: "text/xml", JSON: "application/x-amz-json-1.0",
                  CBOR: "application/cbor"}
_UTC = dt.timezone.utc


@dataclass
class Reply:
    """A rendered answer: status, body and the headers the protocol requires."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _headers(protocol: str) -> dict[str, str]:
    headers = {"Content-Type": _CONTENT_TYPES[protocol]}
    if protocol == CBOR:
        headers["smithy-protocol"] = "rpc-v2-cbor"
    return headers


# --- results ----------------------------------------------------------------------------

def result(protocol: str, model: ServiceModel, operation: OperationModel,
           output: dict | None, request_id: str) -> Reply:
    """*output* (the handler's dict, None for no output) as *protocol*'s 200 answer."""
    shape = operation.output_shape
    output = output or {}
    if protocol == QUERY:
        body = _query_result(model, operation, shape, output, request_id)
    else:
        document = _document(shape, output, protocol) if shape is not None else {}
        body = json.dumps(document).encode() if protocol == JSON else cbor.encode(document)
    return Reply(200, body, _headers(protocol))


def _query_result(model: ServiceModel, operation: OperationModel, shape: Shape | None,
                  output: dict, request_id: str) -> bytes:
    root = ET.Element(f"{operation.name}Response", xmlns=model.xml_namespace)
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
        _xml_structure(ET.SubElement(root, wrapper), shape, output)
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id
    return xmlutil.document(root)


def _members(shape: Shape, value: dict, model_names: bool = False):
    """(name, member shape, item) of each member *value* sets: the name the JSON/CBOR
    document gives it, or with *model_names* the model's."""
    for name, item in value.items():
        member = shape.members.get(name)
        if member is None:
            raise ValueError(f"{shape.name} has no member {name!r}")
        if item is not None:
            yield (name if model_names else member.serialization.get("name", name)), \
                member, item


def _xml_structure(element: ET.Element, shape: Shape, value: dict) -> None:
    for name, member, item in _members(shape, value, model_names=True):
        if member.serialization.get("flattened"):
            _xml_flattened(element, query_name(name, member), member, item)
        else:
            _xml_value(ET.SubElement(element, query_name(name, member)), member, item)


def _xml_flattened(parent: ET.Element, name: str, shape: Shape, value: Any) -> None:
    if shape.type_name == "list":
        for item in value:
            _xml_value(ET.SubElement(parent, name), shape.member, item)
    else:
        for key, item in value.items():
            _xml_entry(ET.SubElement(parent, name), shape, key, item)


def _xml_entry(element: ET.Element, shape: Shape, key: Any, item: Any) -> None:
    _xml_value(ET.SubElement(element, shape.key.serialization.get("name", "key")),
               shape.key, key)
    _xml_value(ET.SubElement(element, shape.value.serialization.get("name", "value")),
               shape.value, item)


def _xml_value(element: ET.Element, shape: Shape, value: Any) -> None:
    kind = shape.type_name
    if kind == "structure":
        _xml_structure(element, shape, value)
    elif kind == "list":
        if shape.serialization.get("flattened"):
            raise ValueError(f"flattened list {shape.name} outside a structure")
        for item in value:
            _xml_value(ET.SubElement(element, shape.member.serialization.get(
                "name", "member")), shape.member, item)
    elif kind == "map":
        for key, item in value.items():
            _xml_entry(ET.SubElement(element, "entry"), shape, key, item)
    else:
        element.text = _xml_scalar(kind, value)


def _xml_scalar(kind: str, value: Any) -> str:
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return iso8601(value)
    if kind == "blob":
        return base64.b64encode(value).decode()
    if kind in ("double", "float"):
        return _double_text(float(value))
    if kind in ("integer", "long"):
        return str(_integer(value))
    return str(value)


def _integer(value: Any) -> int:
    """An integer member's value as an int (a handler may compute 60.0 for 60); a fraction
    there is a handler bug."""
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value} is not an integer")
    return int(value)


def iso8601(when: dt.datetime) -> str:
    """*when* (aware) as the Query protocol writes timestamps: UTC, milliseconds, ``Z``."""
    when = _aware(when).astimezone(_UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _aware(when: dt.datetime) -> dt.datetime:
    """*when*, which must carry its timezone: a naive datetime would be read in the server's
    local time, silently wrong wherever that is not UTC, so it is a handler bug."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when} in an answer: give it a timezone")
    return when


def _double_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _document(shape: Shape, value: Any, protocol: str) -> Any:
    """*value* of *shape* as the JSON (or CBOR) document holds it."""
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        return {wire_name: _document(member, item, protocol)
                for wire_name, member, item in _members(shape, value)}
    if kind == "list":
        return [_document(shape.member, item, protocol) for item in value]
    if kind == "map":
        return {key: _document(shape.value, item, protocol) for key, item in value.items()}
    if kind == "timestamp":
        return value if protocol == CBOR else _aware(value).timestamp()
    if kind == "blob":
        return bytes(value) if protocol == CBOR else base64.b64encode(value).decode()
    if kind in ("double", "float"):
        value = float(value)
        return value if protocol == CBOR or math.isfinite(value) else _double_text(value)
    if kind in ("integer", "long"):
        return _integer(value)
    if kind == "boolean":
        return bool(value)
    return value


# --- errors -----------------------------------------------------------------------------

def error(protocol: str, model: ServiceModel, failure: AwsError, request_id: str,
          operation: OperationModel | None = None) -> Reply:
    """*failure* as *protocol*'s error answer (status from the error); *operation*, when
    known, picks among error shapes sharing the code."""
    fault = "Receiver" if failure.status >= 500 else "Sender"
    headers = _headers(protocol)
    if protocol == QUERY:
        root = ET.Element("ErrorResponse", xmlns=model.xml_namespace)
        element = ET.SubElement(root, "Error")
        ET.SubElement(element, "Type").text = fault
        ET.SubElement(element, "Code").text = failure.code
        ET.SubElement(element, "Message").text = failure.message
        ET.SubElement(root, "RequestId").text = request_id
        return Reply(failure.status, xmlutil.document(root), headers)
    modeled = model.error(failure.code, operation)
    document = {"__type": modeled.name if modeled else failure.code,
                "message": failure.message}
    if not getattr(failure, "protocol_level", False):
        headers["x-amzn-query-error"] = f"{failure.code};{fault}"
    body = json.dumps(document).encode() if protocol == JSON else cbor.encode(document)
    return Reply(failure.status, body, headers)
