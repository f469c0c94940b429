"""The AWS Query protocol (EC2, IAM): parameter parsing and the action registry.

Query parameters are flat ``name=value`` pairs whose names encode structure:
``InstanceId.1``/``InstanceId.2`` are a list, ``Placement.AvailabilityZone`` is a struct
member, ``Filter.1.Name`` + ``Filter.1.Value.1`` a list of structs holding a list.
:class:`QueryParams` turns them into a tree once and offers typed accessors that raise the
AWS error a client expects (``MissingParameter``, ``InvalidParameterValue``).

:class:`ActionRegistry` is the explicit map from ``Action`` to handler: an unknown action is
``InvalidAction``, a parameter the handler did not declare is ``UnknownParameter``, and
one holding a control character (which no XML answer could echo) ``InvalidParameterValue``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import integers, xmlutil
from .errors import (InvalidAction, InvalidParameterValue, MalformedQueryString, MissingAction,
                     MissingParameter, UnknownParameter)

#: Parameters any Query request may carry besides the action's own.
COMMON_PARAMETERS = frozenset({
    "Action", "Version", "AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
    "Timestamp", "Expires", "SecurityToken", "X-Amz-Algorithm", "X-Amz-Credential",
    "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
    "X-Amz-Security-Token", "X-Amz-Content-Sha256",
})


class QueryParams:
    """The parameters of one Query request, flat and as a tree."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self.flat: dict[str, str] = {}
        for key, value in pairs:
            self.flat[key] = value          # last one wins, as AWS does
        #: The first action parameter whose name or value holds a character XML cannot
        #: carry (AWS refuses those up front; ActionRegistry.lookup does, after auth).
        self.unrepresentable = next(
            (key for key, value in self.flat.items() if key not in COMMON_PARAMETERS
             and not (xmlutil.representable(key) and xmlutil.representable(value))), None)
        self.tree: dict[str, Any] = {}
        for key, value in self.flat.items():
            if key in COMMON_PARAMETERS:
                continue
            self._insert(key, value)

    def _insert(self, key: str, value: str) -> None:
        node = self.tree
        parts = key.split(".")
        if any(part == "" for part in parts):
            raise MalformedQueryString(f"Malformed parameter name {key!r}.")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidParameterValue(f"Parameter {key!r} conflicts with "
                                            f"{'.'.join(parts[:parts.index(part) + 1])!r}.")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise InvalidParameterValue(f"Parameter {key!r} conflicts with its members.")
        node[parts[-1]] = value

    # --- top level ------------------------------------------------------------------

    @property
    def action(self) -> str:
        action = self.flat.get("Action")
        if not action:
            raise MissingAction("The request must contain the parameter Action.")
        return action

    def names(self) -> set[str]:
        """Top-level parameter names other than the common ones."""
        return set(self.tree)

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.tree.get(name, default)
        if isinstance(value, dict):
            raise InvalidParameterValue(f"Parameter {name} must be a single value.")
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise MissingParameter(f"The request must contain the parameter {name}.")
        return value

    def get_int(self, name: str, default: int | None = None, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        text = self.get(name)
        if text is None:
            return default
        value = integers.parse(text, signed=True)
        if value is None:
            raise InvalidParameterValue(f"Value ({text}) for parameter {name} is invalid. "
                                        "Expected an integer.")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None \
                else f"at least {minimum}"
            raise InvalidParameterValue(f"Value ({value}) for parameter {name} is invalid. "
                                        f"Expected a value {bounds}.")
        return value

    def get_bool(self, name: str, default: bool = False) -> bool:
        text = self.get(name)
        if text is None:
            return default
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise InvalidParameterValue(f"Value ({text}) for parameter {name} is invalid. "
                                        "Expected: 'true' or 'false'.")
        return lowered == "true"

    def get_list(self, name: str) -> list[str]:
        """``Name.1``, ``Name.2``… in index order (gaps allowed, as AWS allows)."""
        return scalar_list(self.tree.get(name), name)

    def get_struct(self, name: str) -> "Struct":
        """``Name.Member…`` (empty when absent)."""
        return Struct.of(self.tree.get(name), name)

    def get_struct_list(self, name: str) -> list["Struct"]:
        """``Name.N.Member…`` as structures, in index order."""
        return as_struct_list(self.tree.get(name), name)


class Struct(dict):
    """The members of one structure parameter (``Name.Member=…``).

    :meth:`get` and ``[]`` give single values only: a member sent as a subtree
    (``Placement.AvailabilityZone.1=x``) is InvalidParameterValue, so a dict never reaches a
    service where a string belongs. Members that are themselves structures or lists are
    read with :meth:`struct`, :meth:`scalars` and :meth:`structs`.
    """

    def __init__(self, node: dict, name: str):
        super().__init__(node)
        self.name = name

    @classmethod
    def of(cls, node: Any, name: str) -> "Struct":
        """*node* (a parsed subtree, a plain dict, or None for absent) as a Struct."""
        if isinstance(node, Struct):
            return node
        if node is None:
            return cls({}, name)
        if not isinstance(node, dict):
            raise InvalidParameterValue(f"Parameter {name} must be a structure.")
        return cls(node, name)

    def _scalar(self, key: str, value: Any) -> Any:
        if isinstance(value, dict):
            raise InvalidParameterValue(f"Parameter {self.name}.{key} must be a single value.")
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self._scalar(key, super().get(key, default))

    def __getitem__(self, key: str) -> Any:
        return self._scalar(key, super().__getitem__(key))

    def scalar_members(self) -> dict[str, str]:
        """Every member, each a single value (for a structure of plain options)."""
        return {key: self.get(key) for key in self}

    def struct(self, key: str) -> "Struct":
        """Member *key* as a structure (empty when absent)."""
        return Struct.of(super().get(key), f"{self.name}.{key}")

    def scalars(self, key: str) -> list[str]:
        """Member *key* as a list of single values (``Key.1``, ``Key.2``…)."""
        return scalar_list(super().get(key), f"{self.name}.{key}")

    def structs(self, key: str) -> list["Struct"]:
        """Member *key* as a list of structures (``Key.1.Member``…)."""
        return as_struct_list(super().get(key), f"{self.name}.{key}")


def as_list(node: Any, name: str) -> list[Any]:
    """The members of the list *node* (the subtree under ``name.1``, ``name.2``…) in index
    order; gaps are allowed, as AWS allows them. An index must be ASCII digits of sane length
    (``Filter.²``, or one of thousands of digits, is refused, not a crash)."""
    return [item for _, item in _indexed(node, name)]


def _indexed(node: Any, name: str) -> list[tuple[int, Any]]:
    """(index, member) pairs of the list *node*, in index order (see :func:`as_list`)."""
    if node is None:
        return []
    if not isinstance(node, dict):
        raise InvalidParameterValue(f"Parameter {name} must be a list: {name}.1, {name}.2, …")
    indexed = []
    for key, item in node.items():
        index = integers.parse(key)
        if index is None:
            raise InvalidParameterValue(f"Parameter {name} must be a list: {name}.1, "
                                        f"{name}.2, …")
        indexed.append((index, item))
    return sorted(indexed, key=lambda pair: pair[0])


def scalar_list(node: Any, name: str) -> list[str]:
    """Like :func:`as_list` for a list of single values (``name.N=value``)."""
    items = as_list(node, name)
    if any(isinstance(item, dict) for item in items):
        raise InvalidParameterValue(f"Members of {name} must be single values.")
    return items


def as_struct_list(node: Any, name: str) -> list[Struct]:
    """Like :func:`as_list` for a list of structures (``name.N.Member``); each one's name
    for error messages is ``name.N``."""
    items = []
    for index, item in _indexed(node, name):
        if not isinstance(item, dict):
            raise InvalidParameterValue(f"Parameter {name} must be a list of structures.")
        items.append(Struct.of(item, f"{name}.{index}"))
    return items


# --- registry -------------------------------------------------------------------------

@dataclass
class Action:
    name: str
    handler: Callable[..., Any]
    params: frozenset[str] = field(default_factory=frozenset)


class ActionRegistry:
    """Explicit ``Action`` → handler map for one Query API."""

    def __init__(self, service: str):
        self.service = service
        self.actions: dict[str, Action] = {}

    def action(self, name: str, params: Iterable[str] = ()) -> Callable:
        """Register the decorated function as the handler of *name*.

        *params* are the top-level parameter names the action accepts (``Filter`` covers
        ``Filter.N.*``); anything else is rejected with ``UnknownParameter``.
        """
        def register(handler: Callable) -> Callable:
            if name in self.actions:
                raise ValueError(f"{self.service}: action {name} registered twice")
            self.actions[name] = Action(name, handler, frozenset(params))
            return handler
        return register

    def lookup(self, params: QueryParams) -> Action:
        name = params.action
        action = self.actions.get(name)
        if action is None:
            raise InvalidAction(f"The action {name} is not valid for this web service.")
        unknown = sorted(params.names() - action.params)
        if unknown:
            raise UnknownParameter(f"The parameter {unknown[0]} is not recognized.")
        if params.unrepresentable is not None:
            raise _unrepresentable(params.unrepresentable)
        return action


def check_text(value: str | None, name: str) -> str | None:
    """*value* of parameter *name*, if XML can carry it: services call this for text they
    store from any source (the console too), as the Query APIs check every parameter."""
    if value is not None and not xmlutil.representable(value):
        raise _unrepresentable(name)
    return value


def _unrepresentable(name: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Value for parameter {name} is invalid. Character sets "
                                 "beyond XML 1.0 (control characters) are not allowed.")
