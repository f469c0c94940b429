"""The JSON form of the Node protocol: its records, each method's arguments and answer, and
its errors, as the command channel carries them between the controller's
:class:`~.remotenode.RemoteNode` and a joined node's agent.

Decoding is directed by the types the protocol declares (:class:`~.node.Node`'s signatures
and the records' fields), so the JSON stays plain (objects, lists, strings, numbers): a
record is an object of its fields (those that are None left out), a tuple or list a list,
``bytes`` base64 text, a :class:`~.virt.driver.PowerState` its value. The internal API's document
(``internalapi/openapi/commands.json``) describes the same shapes for other languages.

Errors travel as ``{"type", "message"}``: the receiving side raises the same class when it
is one of :data:`ERRORS` (the node's hypervisor, cache, data plane and image errors, and
every AWS error class), else :class:`~.virt.driver.DriverError` naming the type.
"""
from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import inspect
import types
import typing
from typing import Any

from .. import errors as aws_errors
from ..errors import AwsError, ec2 as ec2_errors
from .edge.firewall import FirewallError
from .imagecache import CacheError
from .node import Node
from .unbundle import CorruptBundle
from .virt.driver import DriverError, NotSupported


class WireError(ValueError):
    """A JSON value does not have the shape the protocol declares."""


#: The Node protocol's methods carried over the wire (every callable it declares).
METHODS: tuple[str, ...] = tuple(sorted(
    name for name, member in vars(Node).items()
    if inspect.isfunction(member) and not name.startswith("_")))


@functools.lru_cache(maxsize=None)
def signature(method: str) -> tuple[tuple[tuple[str, Any, Any], ...], Any]:
    """``((name, type, default), ...)`` of *method*'s parameters and its answer's type."""
    if method not in METHODS:
        raise WireError(f"{method!r} is not a node method")
    function = getattr(Node, method)
    hints = typing.get_type_hints(function)
    params = tuple((name, hints[name], param.default)
                   for name, param in inspect.signature(function).parameters.items()
                   if name != "self")
    return params, hints.get("return", type(None))


# -- values ------------------------------------------------------------------------------------

def encode(value: Any) -> Any:
    """*value* (a record, enum, bytes, list/tuple/dict of those, or a JSON scalar) as JSON."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # a field that is None is left out (every optional field defaults to None)
        return {field.name: encode(getattr(value, field.name))
                for field in dataclasses.fields(value) if getattr(value, field.name) is not None}
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {str(key): encode(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise WireError(f"cannot send a {type(value).__name__} over the wire")


def decode(kind: Any, data: Any, where: str = "value") -> Any:
    """The *kind* (a type hint) that the JSON *data* encodes; WireError naming *where* when
    it does not fit."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [arg for arg in args if arg is not type(None)]
        if len(options) == 1:
            return decode(options[0], data, where)
        raise WireError(f"{where}: an ambiguous union {kind}")
    if kind is Any:
        return data
    if kind is type(None):
        if data is not None:
            raise WireError(f"{where}: expected null")
        return None
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise WireError(f"{where}: expected a list")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise WireError(f"{where}: fixed-length tuples are not carried")
        items = [decode(args[0] if args else Any, item, f"{where}[{index}]")
                 for index, item in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict or kind is dict:
        if not isinstance(data, dict):
            raise WireError(f"{where}: expected an object")
        value_kind = args[1] if args else Any
        return {key: decode(value_kind, item, f"{where}.{key}") for key, item in data.items()}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(data)
        except ValueError:
            raise WireError(f"{where}: {data!r} is not a {kind.__name__}") from None
    if dataclasses.is_dataclass(kind):
        return _decode_record(kind, data, where)
    if kind is bytes:
        if not isinstance(data, str):
            raise WireError(f"{where}: expected base64 text")
        try:
            return base64.b64decode(data, validate=True)
        except ValueError:
            raise WireError(f"{where}: not base64") from None
    if kind is float and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if kind in (str, int, bool, float):
        if not isinstance(data, kind) or (kind is int and isinstance(data, bool)):
            raise WireError(f"{where}: expected {kind.__name__}, got {type(data).__name__}")
        return data
    raise WireError(f"{where}: cannot decode {kind}")


def _decode_record(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise WireError(f"{where}: expected a {kind.__name__} object")
    hints = typing.get_type_hints(kind)
    fields = {field.name: field for field in dataclasses.fields(kind)}
    unknown = set(data) - set(fields)
    if unknown:
        raise WireError(f"{where}: {kind.__name__} has no {sorted(unknown)}")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = decode(hints[name], data[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and \
                field.default_factory is dataclasses.MISSING:
            raise WireError(f"{where}: {kind.__name__} needs {name}")
    try:
        return kind(**values)
    except (TypeError, ValueError) as error:
        raise WireError(f"{where}: {error}") from None


# -- a method's arguments and answer --------------------------------------------------------

def encode_args(method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """*method*'s arguments as one JSON object, by parameter name."""
    params, _ = signature(method)
    bound = dict(zip((name for name, _, _ in params), args))
    bound.update(kwargs)
    return {name: encode(value) for name, value in bound.items()}


def decode_args(method: str, data: Any) -> dict[str, Any]:
    """The keyword arguments of *method* from their JSON object (WireError if it misfits)."""
    params, _ = signature(method)
    if not isinstance(data, dict):
        raise WireError(f"{method}: its arguments must be an object")
    unknown = set(data) - {name for name, _, _ in params}
    if unknown:
        raise WireError(f"{method} takes no {sorted(unknown)}")
    values = {}
    for name, kind, default in params:
        if name in data:
            values[name] = decode(kind, data[name], f"{method}.{name}")
        elif default is inspect.Parameter.empty:
            raise WireError(f"{method} needs {name}")
    return values


def encode_result(method: str, value: Any) -> Any:
    return encode(value)


def decode_result(method: str, data: Any) -> Any:
    """*method*'s answer from its JSON (WireError if it misfits its declared type)."""
    _, answer = signature(method)
    return decode(answer, data, f"{method} answer")


# -- errors ------------------------------------------------------------------------------------

def _aws_classes() -> dict[str, type]:
    found = {}
    for module in (aws_errors, ec2_errors):
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, AwsError):
                found.setdefault(name, value)
    return found


#: Error classes a node's failure is raised as on the controller, by name.
ERRORS: dict[str, type[Exception]] = {
    **_aws_classes(),
    **{cls.__name__: cls for cls in (DriverError, NotSupported, CacheError, FirewallError,
                                     CorruptBundle, ValueError)},
}


def encode_error(error: BaseException) -> dict[str, str]:
    """``{"type", "message"}`` of *error* (its class's name and its text)."""
    message = error.message if isinstance(error, AwsError) else str(error)
    return {"type": type(error).__name__, "message": message}


def decode_error(data: Any, node_id: str = "") -> Exception:
    """The exception a node reported: its own class when known, else DriverError saying
    which type it was; a malformed report is a DriverError too."""
    where = f"node {node_id}" if node_id else "the node"
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) or \
            not isinstance(data.get("message"), str):
        return DriverError(f"{where} reported a malformed error: {data!r:.200}")
    cls = ERRORS.get(data["type"])
    if cls is None:
        return DriverError(f"{where} failed: {data['type']}: {data['message']}")
    try:
        return cls(data["message"])
    except TypeError:       # a class that needs more than a message
        return DriverError(f"{where} failed: {data['type']}: {data['message']}")
