"""CBOR (RFC 8949), the part Smithy RPC v2 uses: :func:`encode` and :func:`decode`.

Python values map to CBOR items as follows: int (within 64 bits, negative too) to major
types 0/1; bytes to byte strings; str to text strings; list/tuple to arrays; dict to maps;
float to a double; True/False/None to the simple values; an aware datetime to tag 1 over
its epoch seconds (a double, so milliseconds survive). :class:`Tag` carries any other tag.

Decoding accepts what any encoder may send: definite and indefinite lengths, half, single
and double floats, ``undefined`` (read as None), tag 1 over an int or a float (read as an
aware UTC datetime). Anything malformed (truncated, trailing bytes, a reserved additional
info, a break out of place, invalid UTF-8, nesting deeper than :data:`MAX_DEPTH`) raises
:class:`CBORDecodeError`, a ValueError.
"""
from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass
from typing import Any

#: Deepest nesting of arrays, maps and tags a decoded document may have: deep enough for
#: any model's shapes, shallow enough that a hostile body cannot exhaust the stack.
MAX_DEPTH = 64

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_BREAK = 0xFF
_INDEFINITE = 31


class CBORDecodeError(ValueError):
    """The bytes are not one well-formed CBOR data item."""


@dataclass(frozen=True)
class Tag:
    """A tagged item other than tag 1 (which decodes to a datetime)."""

    tag: int
    value: Any


# --- encoding ---------------------------------------------------------------------------

def encode(value: Any) -> bytes:
    """*value* as one CBOR data item (definite lengths). Raises TypeError for a type CBOR
    has no item for here, ValueError for an int beyond 64 bits or a naive datetime."""
    out = bytearray()
    _encode(out, value)
    return bytes(out)


def _head(out: bytearray, major: int, argument: int) -> None:
    """The initial byte of an item of *major* type and its argument (a length or value)."""
    if argument < 24:
        out.append(major << 5 | argument)
    elif argument < 0x100:
        out += bytes((major << 5 | 24, argument))
    elif argument < 0x10000:
        out.append(major << 5 | 25)
        out += argument.to_bytes(2, "big")
    elif argument < 0x100000000:
        out.append(major << 5 | 26)
        out += argument.to_bytes(4, "big")
    elif argument < 0x10000000000000000:
        out.append(major << 5 | 27)
        out += argument.to_bytes(8, "big")
    else:
        raise ValueError(f"integer {argument} does not fit CBOR's 64 bits")


def _encode(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _head(out, 2, len(value))
        out += value
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _head(out, 3, len(data))
        out += data
    elif isinstance(value, (list, tuple)):
        _head(out, 4, len(value))
        for item in value:
            _encode(out, item)
    elif isinstance(value, dict):
        _head(out, 5, len(value))
        for key, item in value.items():
            _encode(out, key)
            _encode(out, item)
    elif isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime has no epoch time; give it a timezone")
        _head(out, 6, 1)
        _encode(out, (value - _EPOCH) / dt.timedelta(seconds=1))
    elif isinstance(value, Tag):
        _head(out, 6, value.tag)
        _encode(out, value.value)
    else:
        raise TypeError(f"no CBOR item for {type(value).__name__}")


# --- decoding ---------------------------------------------------------------------------

def decode(data: bytes) -> Any:
    """The one data item *data* holds (see the module's text for the mapping)."""
    reader = _Reader(bytes(data))
    value = reader.item(0)
    if value is _BREAK_MARK:
        raise CBORDecodeError("a break code outside an indefinite-length item")
    if reader.pos != len(reader.data):
        raise CBORDecodeError(f"{len(reader.data) - reader.pos} bytes after the data item")
    return value


_BREAK_MARK = object()      # what item() returns for 0xFF, for its indefinite callers


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise CBORDecodeError("the data ends in the middle of an item")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def argument(self, info: int) -> int:
        """The argument that *info* (the initial byte's low 5 bits) announces."""
        if info < 24:
            return info
        if info <= 27:
            return int.from_bytes(self.take(1 << (info - 24)), "big")
        raise CBORDecodeError(f"reserved additional information {info}")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CBORDecodeError(f"nesting deeper than {MAX_DEPTH}")
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if initial == _BREAK:
            return _BREAK_MARK
        if major == 0:
            return self.argument(info)
        if major == 1:
            return -1 - self.argument(info)
        if major in (2, 3):
            return self.string(major, info)
        if major == 4:
            return self.array(info, depth)
        if major == 5:
            return self.map(info, depth)
        if major == 6:
            return self.tag(info, depth)
        return self.simple(info)

    def string(self, major: int, info: int) -> bytes | str:
        if info == _INDEFINITE:
            chunks = []
            while True:
                initial = self.take(1)[0]
                if initial == _BREAK:
                    break
                if initial >> 5 != major or initial & 0x1F == _INDEFINITE:
                    raise CBORDecodeError("an indefinite string's chunk must be a definite "
                                          "string of the same type")
                chunks.append(self.take(self.argument(initial & 0x1F)))
            raw = b"".join(chunks)
        else:
            raw = self.take(self.argument(info))
        if major == 2:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CBORDecodeError("a text string that is not UTF-8") from None

    def array(self, info: int, depth: int) -> list:
        items = []
        if info == _INDEFINITE:
            while (item := self.item(depth + 1)) is not _BREAK_MARK:
                items.append(item)
            return items
        for _ in range(self.length(info)):
            items.append(self.present(self.item(depth + 1)))
        return items

    def map(self, info: int, depth: int) -> dict:
        result = {}
        indefinite = info == _INDEFINITE
        count = None if indefinite else self.length(info)
        while count is None or len(result) < count:
            key = self.item(depth + 1)
            if key is _BREAK_MARK and indefinite:
                break
            key = self.present(key)
            if isinstance(key, (list, dict)):
                raise CBORDecodeError("a map key must be a single value")
            if key in result:
                raise CBORDecodeError(f"map key {key!r} appears twice")
            result[key] = self.present(self.item(depth + 1))
        return result

    def length(self, info: int) -> int:
        """A definite array/map length, refused when the remaining bytes cannot hold it
        (each item takes at least one byte), so a forged length allocates nothing."""
        count = self.argument(info)
        if count > len(self.data) - self.pos:
            raise CBORDecodeError("the data ends in the middle of an item")
        return count

    def tag(self, info: int, depth: int) -> Any:
        number = self.argument(info)
        value = self.present(self.item(depth + 1))
        if number != 1:
            return Tag(number, value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise CBORDecodeError("tag 1 (epoch time) must hold a finite number")
        try:
            return _EPOCH + dt.timedelta(seconds=value)
        except OverflowError:
            raise CBORDecodeError(f"epoch time {value} is out of range") from None

    def simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):            # null, undefined
            return None
        if info == 25:
            return struct.unpack(">e", self.take(2))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        raise CBORDecodeError(f"unsupported simple value (additional information {info})")

    @staticmethod
    def present(value: Any) -> Any:
        if value is _BREAK_MARK:
            raise CBORDecodeError("a break code outside an indefinite-length item")
        return value
