"""EC2 ``Filter.N``: reading it from a request, and matching items, for every Describe action.

A filter matches an item when any of its values matches any of the item's values for that
name (OR within a filter); all filters must match (AND across filters). Values may use the
EC2 wildcards ``*`` and ``?``; a backslash escapes them. They are matched by
:mod:`eucalite.wildcards`, which never backtracks (a regular expression did, exponentially in
the number of stars).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, TypeVar

from ... import wildcards
from ...errors import InvalidParameterValue, MissingParameter
from ...query import QueryParams

T = TypeVar("T")

#: Filter name -> function giving an item's value(s) for that name (a scalar, a list, or None).
Getters = Mapping[str, Callable[[Any], Any]]


def parse(params: QueryParams) -> list[tuple[str, list[str]]]:
    """``Filter.N.Name`` / ``Filter.N.Value.M`` as [(name, [values…])]."""
    filters = []
    for item in params.get_struct_list("Filter"):
        name = item.get("Name")
        if not name:
            raise MissingParameter(f"The request must contain the parameter {item.name}.Name")
        values = item.scalars("Value")
        if not values:
            raise InvalidParameterValue(f"The filter {name!r} requires at least one "
                                        "value (Filter.N.Value.M).")
        filters.append((name, values))
    return filters


def tag_getters(lookup: Callable[[Any], Mapping[str, str]]) -> dict[str, Callable]:
    """Getters for ``tag:<key>``, ``tag-key`` and ``tag-value``.

    *lookup(item)* returns the item's tags as a dict; merge the result into a Describe
    action's getters for :func:`apply`.
    """
    return {
        "tag:*": lambda item, key: lookup(item).get(key),
        "tag-key": lambda item: list(lookup(item)),
        "tag-value": lambda item: list(lookup(item).values()),
    }


def literal(values: list[str]) -> tuple[str, ...] | None:
    """*values* if none holds a wildcard or an escape (each matches only itself, so a
    database may test them by equality before :func:`apply` runs), else None."""
    if any(char in value for value in values for char in "*?\\"):
        return None
    return tuple(values)


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, (list, tuple, set)):
        return [_as_text(item) for item in raw if item is not None]
    return [_as_text(raw)]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply(items: Iterable[T], filters: list[tuple[str, list[str]]], getters: Getters) -> list[T]:
    """The items matching every filter. An unknown filter name is InvalidParameterValue."""
    compiled = []
    for name, wanted in filters:
        getter = getters.get(name)
        if getter is None and name.startswith("tag:"):
            getter = getters.get("tag:*")
            if getter is not None:
                key = name[4:]
                getter = (lambda inner, k: lambda item: inner(item, k))(getter, key)
        if getter is None:
            raise InvalidParameterValue(f"The filter '{name}' is invalid")
        compiled.append((getter, [wildcards.compile(value) for value in wanted]))
    return [item for item in items
            if all(any(pattern.matches(value) for value in _values(getter(item))
                       for pattern in patterns)
                   for getter, patterns in compiled)]
