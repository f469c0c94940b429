"""Requests to input dicts: one operation's input read from the wire as its model types it
(:mod:`.validate` then checks the model's constraints).

The three readers give the same dict for the same call: structure members by their model
names, lists as lists, maps as dicts, timestamps as aware UTC datetimes, doubles as floats,
integers as ints, booleans as bools, blobs as bytes; absent members are absent.

* :func:`from_query`: awsQuery parameters (``MetricData.member.1.Dimensions.member.2.Name``,
  maps as ``Name.entry.N.key``/``value``, ISO-8601 timestamps). A value that does not read as
  its type is ``InvalidParameterValue``; unknown parameters are ignored, as CloudWatch
  ignores them.
* :func:`from_json`: an awsJson 1.0 body (epoch-second timestamps, base64 blobs).
* :func:`from_cbor`: an RPC v2 CBOR body (tag-1 timestamps, byte-string blobs).
  For these two a body that is not a document of the input's shape is
  ``SerializationException``; unknown members are ignored.

Where a value sits is a :class:`Path`, which names it as Query does and as Coral's
validation messages do.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import math
import re
from typing import Any

from botocore.model import Shape

from .. import integers
from ..errors import InvalidParameterValue, MissingParameter
from ..query import QueryParams
from . import cbor
from .errors import SerializationException
from .model import query_name

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
#: Bounds of the model's integer types.
_INT_BOUNDS = {"integer": (-2**31, 2**31 - 1), "long": (-2**63, 2**63 - 1)}
#: The special doubles awsJson writes as strings (and Query as text).
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")


class Path:
    """Where a value sits in the input, named two ways: as its Query parameter
    (``MetricData.member.1.Value``) and as Coral's validation messages name it
    (``metricData.1.member.value``). Built for every value read, so the names are only
    spelled out when an error message asks for them."""

    __slots__ = ("parent", "kind", "name")

    def __init__(self, parent: "Path | None" = None, kind: str = "", name: str = ""):
        self.parent, self.kind, self.name = parent, kind, name

    def member(self, name: str) -> "Path":
        return Path(self, "member", name)

    def item(self, index: int) -> "Path":
        """The *index*-th (1-based) member of a list."""
        return Path(self, "item", str(index))

    def entry(self, index: int, part: str) -> "Path":
        """The key or value (*part*) of a map's *index*-th (1-based) entry."""
        return Path(self, "entry", f"{index}.{part}")

    def _parts(self, coral: bool) -> list[str]:
        parts, node = [], self
        while node is not None and node.kind:
            if node.kind == "member":
                parts.append(node.name[:1].lower() + node.name[1:] if coral else node.name)
            elif node.kind == "item":
                parts.append(f"{node.name}.member" if coral else f"member.{node.name}")
            else:
                parts.append(node.name if coral else f"entry.{node.name}")
            node = node.parent
        return parts[::-1]

    @property
    def query(self) -> str:
        return ".".join(self._parts(coral=False))

    @property
    def coral(self) -> str:
        return ".".join(self._parts(coral=True))


# --- awsQuery ---------------------------------------------------------------------------

def from_query(shape: Shape | None, params: QueryParams) -> dict:
    """The input of an awsQuery request whose parameters are *params*."""
    if shape is None:
        return {}
    return _query_structure(shape, params.tree, Path())


def _query_node(shape: Shape, node: Any, path: Path) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(node, dict):
            raise InvalidParameterValue(f"Parameter {path.query} must be a structure.")
        return _query_structure(shape, node, path)
    if kind == "list":
        return _query_list(shape, node, path)
    if kind == "map":
        return _query_map(shape, node, path)
    if isinstance(node, dict):
        raise InvalidParameterValue(f"Parameter {path.query} must be a single value.")
    return _query_scalar(shape, node, path)


def _query_structure(shape: Shape, node: dict, path: Path) -> dict:
    result = {}
    for name, member in shape.members.items():
        wire_name = query_name(name, member)
        if wire_name in node:
            result[name] = _query_node(member, node[wire_name], path.member(name))
    return result


def _indexed(node: Any, path: Path, what: str) -> list[tuple[int, Any]]:
    """(index, item) pairs of a Query list or map node, in index order. ``Name=`` (an
    empty value) is the empty list, as botocore sends one."""
    if node == "":
        return []
    if not isinstance(node, dict):
        raise InvalidParameterValue(f"Parameter {path.query} must be a {what}.")
    pairs = []
    for key, item in node.items():
        index = integers.parse(key)
        if index is None or index < 1:
            raise InvalidParameterValue(f"Parameter {path.query}.{key} is not a valid "
                                        f"{what} index.")
        pairs.append((index, item))
    return sorted(pairs, key=lambda pair: pair[0])


def _query_list(shape: Shape, node: Any, path: Path) -> list:
    if not shape.serialization.get("flattened"):
        if node == "":
            return []
        if not isinstance(node, dict) or set(node) - {shape.member.serialization.get(
                "name", "member")}:
            raise InvalidParameterValue(f"Parameter {path.query} must be a list: "
                                        f"{path.query}.member.1, {path.query}.member.2, …")
        node = node.get(shape.member.serialization.get("name", "member"), {})
    return [_query_node(shape.member, item, path.item(index))
            for index, item in _indexed(node, path, "list")]


def _query_map(shape: Shape, node: Any, path: Path) -> dict:
    if not shape.serialization.get("flattened"):
        if node == "":
            return {}
        if not isinstance(node, dict) or set(node) - {"entry"}:
            raise InvalidParameterValue(f"Parameter {path.query} must be a map: "
                                        f"{path.query}.entry.1.key, …")
        node = node.get("entry", {})
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    result = {}
    for index, entry in _indexed(node, path, "map"):
        if not isinstance(entry, dict) or key_name not in entry:
            raise MissingParameter(f"The parameter {path.entry(index, key_name).query} "
                                   "is required.")
        key = _query_node(shape.key, entry[key_name], path.entry(index, key_name))
        if value_name in entry:
            result[key] = _query_node(shape.value, entry[value_name],
                                      path.entry(index, value_name))
    return result


def _query_scalar(shape: Shape, text: str, path: Path) -> Any:
    kind = shape.type_name
    if kind == "string":
        return text
    value = _QUERY_SCALARS.get(kind, lambda text: text)(text)
    if value is None:
        raise InvalidParameterValue(f"Value ({text}) for parameter {path.query} is invalid. "
                                    f"Expected {_EXPECTED[kind]}.")
    if kind in _INT_BOUNDS:
        low, high = _INT_BOUNDS[kind]
        if not low <= value <= high:
            raise InvalidParameterValue(f"Value ({text}) for parameter {path.query} is "
                                        f"invalid. Expected {_EXPECTED[kind]}.")
    return value


def _query_double(text: str) -> float | None:
    if text in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[text]
    return float(text) if _DECIMAL.match(text) else None


def _query_bool(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.lower())


def _query_timestamp(text: str) -> dt.datetime | None:
    """An ISO-8601 date-time (``2026-12-06T02:25:47.123Z``; no zone means UTC), or epoch
    seconds, as Coral's Query readers take both."""
    if _DECIMAL.match(text):
        return _epoch(float(text))
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return value.astimezone(_UTC)


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


_QUERY_SCALARS = {
    "integer": lambda text: integers.parse(text, signed=True),
    "long": lambda text: integers.parse(text, signed=True),
    "double": _query_double, "float": _query_double,
    "boolean": _query_bool, "timestamp": _query_timestamp, "blob": _base64,
}
_EXPECTED = {"integer": "an integer", "long": "an integer", "double": "a number",
             "float": "a number", "boolean": "'true' or 'false'",
             "timestamp": "an ISO-8601 timestamp", "blob": "base64-encoded data"}


def _epoch(seconds: float) -> dt.datetime | None:
    if not math.isfinite(seconds):
        return None
    try:
        return _EPOCH + dt.timedelta(seconds=seconds)
    except OverflowError:
        return None


# --- awsJson and RPC v2 CBOR --------------------------------------------------------------

def from_json(shape: Shape | None, body: bytes) -> dict:
    """The input of an awsJson request whose body is *body* (empty: no input)."""
    if not body.strip():
        document = {}
    else:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as error:     # RecursionError: nested too deep
            raise SerializationException(f"The request body is not valid JSON: {error}.") \
                from None
    return _document(shape, document, "json")


def from_cbor(shape: Shape | None, body: bytes) -> dict:
    """The input of an RPC v2 CBOR request whose body is *body* (empty: no input)."""
    if not body:
        document = {}
    else:
        try:
            document = cbor.decode(body)
        except ValueError as error:
            raise SerializationException(f"The request body is not valid CBOR: {error}.") \
                from None
    return _document(shape, document, "cbor")


def _document(shape: Shape | None, document: Any, protocol: str) -> dict:
    if not isinstance(document, dict):
        raise SerializationException("The request body must be a structure (an object).")
    if shape is None:
        return {}
    return _Typed(protocol).structure(shape, document, Path())


class _Typed:
    """Converts a decoded JSON or CBOR document to the input dict, by the model."""

    def __init__(self, protocol: str):
        self.protocol = protocol

    def value(self, shape: Shape, value: Any, path: Path) -> Any:
        kind = shape.type_name
        if kind == "structure":
            if shape.is_document_type:
                return value
            if not isinstance(value, dict):
                raise self.mismatch(path, "a structure")
            return self.structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                raise self.mismatch(path, "a list")
            return [self.value(shape.member, item, path.item(index))
                    for index, item in enumerate(value, 1) if item is not None]
        if kind == "map":
            if not isinstance(value, dict):
                raise self.mismatch(path, "a map")
            return {self.value(shape.key, key, path.entry(index, "key")):
                    self.value(shape.value, item, path.entry(index, "value"))
                    for index, (key, item) in enumerate(value.items(), 1) if item is not None}
        return getattr(self, f"scalar_{kind}", self.scalar_string)(value, path)

    def structure(self, shape: Shape, document: dict, path: Path) -> dict:
        result = {}
        members = _wire_members(shape)
        for key, value in document.items():
            if value is not None and key in members:
                name, member = members[key]
                result[name] = self.value(member, value, path.member(name))
        return result

    @staticmethod
    def mismatch(path: Path, expected: str) -> SerializationException:
        where = f" at '{path.coral}'" if path.coral else ""
        return SerializationException(f"The value{where} must be {expected}.")

    def scalar_string(self, value: Any, path: Path) -> str:
        if not isinstance(value, str):
            raise self.mismatch(path, "a string")
        return value

    def scalar_boolean(self, value: Any, path: Path) -> bool:
        if not isinstance(value, bool):
            raise self.mismatch(path, "a boolean")
        return value

    def scalar_integer(self, value: Any, path: Path, kind: str = "integer") -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.mismatch(path, "an integer")
        low, high = _INT_BOUNDS[kind]
        if not low <= value <= high:
            raise self.mismatch(path, f"an integer between {low} and {high}")
        return value

    def scalar_long(self, value: Any, path: Path) -> int:
        return self.scalar_integer(value, path, "long")

    def scalar_double(self, value: Any, path: Path) -> float:
        if isinstance(value, str) and value in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.mismatch(path, "a number")
        try:
            return float(value)
        except OverflowError:
            raise self.mismatch(path, "a number within a double's range") from None

    scalar_float = scalar_double

    def scalar_timestamp(self, value: Any, path: Path) -> dt.datetime:
        if isinstance(value, dt.datetime):       # CBOR's tag 1, already read
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.mismatch(path, "a timestamp (epoch seconds)")
        when = _epoch(value)
        if when is None:
            raise self.mismatch(path, "a timestamp within range")
        return when

    def scalar_blob(self, value: Any, path: Path) -> bytes:
        if self.protocol == "cbor" and isinstance(value, bytes):
            return value
        if self.protocol == "json" and isinstance(value, str):
            data = _base64(value)
            if data is not None:
                return data
        raise self.mismatch(path, "a byte string" if self.protocol == "cbor"
                            else "base64-encoded data")


@functools.lru_cache(maxsize=None)
def _wire_members(shape: Shape) -> dict[str, tuple[str, Shape]]:
    """*shape*'s members by the name the document gives them: (model name, shape)."""
    return {member.serialization.get("name", name): (name, member)
            for name, member in shape.members.items()}
