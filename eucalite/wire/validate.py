"""An operation's input checked against its model's constraints.

:func:`validate` checks ``required``, length (strings, blobs, lists, maps), range (numbers),
enum and pattern: a missing required member is ``MissingParameter`` ("The parameter X is
required.", X its Query name, as CloudWatch words it on every protocol); every other breach
is listed in one ``ValidationError`` in the words of AWS's Coral services ("1 validation
error detected: Value 'x' at 'namespace' failed to satisfy constraint: Member must have
length less than or equal to 255"), in the model's member order.
"""
from __future__ import annotations

import functools
import re
from typing import Any

from botocore.model import Shape

from ..errors import MissingParameter
from .errors import ValidationError
from .parse import Path


def validate(shape: Shape | None, value: dict) -> None:
    """Check *value* (an operation's input) against *shape*'s constraints; raise
    MissingParameter for the first missing required member, else ValidationError listing
    every other breach."""
    if shape is None:
        return
    missing: list[str] = []
    breaches: list[str] = []
    _check(shape, value, Path(), missing, breaches)
    if missing:
        raise MissingParameter(f"The parameter {missing[0]} is required.")
    if breaches:
        count = len(breaches)
        raise ValidationError(f"{count} validation error{'s' if count > 1 else ''} "
                              f"detected: {'; '.join(breaches)}")


def _check(shape: Shape, value: Any, path: Path, missing: list[str],
           breaches: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure" and not shape.is_document_type:
        for name in shape.required_members:
            if value.get(name) is None:
                missing.append(path.member(name).query)
        for name, member in shape.members.items():       # in the model's order
            if value.get(name) is not None:
                _check(member, value[name], path.member(name), missing, breaches)
        return
    breach = _breach(shape, value)
    if breach:
        breaches.append(f"Value {_show(value)} at '{path.coral}' failed to satisfy "
                        f"constraint: Member must {breach}")
    if kind == "list":
        for index, item in enumerate(value, 1):
            _check(shape.member, item, path.item(index), missing, breaches)
    elif kind == "map":
        for index, (key, item) in enumerate(value.items(), 1):
            _check(shape.key, key, path.entry(index, "key"), missing, breaches)
            _check(shape.value, item, path.entry(index, "value"), missing, breaches)


def _breach(shape: Shape, value: Any) -> str | None:
    """What *value* fails of *shape*'s own constraints, in Coral's words, or None."""
    kind, metadata = shape.type_name, shape.metadata
    low, high = metadata.get("min"), metadata.get("max")
    if kind in ("string", "blob", "list", "map"):
        size = len(value)
        if low is not None and size < low:
            return f"have length greater than or equal to {low}"
        if high is not None and size > high:
            return f"have length less than or equal to {high}"
    elif kind in ("integer", "long", "double", "float"):
        if low is not None and value < low:
            return f"have value greater than or equal to {low}"
        if high is not None and value > high:
            return f"have value less than or equal to {high}"
    if kind == "string":
        enum = metadata.get("enum")
        if enum and value not in enum:
            return f"satisfy enum value set: [{', '.join(enum)}]"
        pattern = _pattern(metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            return f"satisfy regular expression pattern: {metadata['pattern']}"
    return None


@functools.lru_cache(maxsize=256)
def _pattern(text: str | None) -> re.Pattern | None:
    """The model's pattern compiled, or None when absent or in a syntax Python's re does not
    read (Java's ``\\p{...}`` classes): such a pattern is not checked rather than misread."""
    if text is None:
        return None
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None


def _show(value: Any) -> str:
    """*value* as Coral quotes it in a validation message."""
    if isinstance(value, list):
        return "'[" + ", ".join(str(item) for item in value) + "]'"
    if isinstance(value, dict):
        return "'{" + ", ".join(f"{key}={item}" for key, item in value.items()) + "}'"
    return f"'{value}'"
