"""Serving a model-driven service: the handler registry and the request path.

A service makes one :class:`Operations` from its model, registers handlers and mounts it::

    ops = Operations(model.load("cloudwatch"))

    @ops.handler("PutMetricData")
    def put_metric_data(call: Call) -> dict | None:
        ...                     # call.input: the parsed, validated input dict

    mount(blueprint, "/services/CloudWatch", ops)

:func:`serve` handles one request: read the bounded body (gunzipped when the client
compressed it, as botocore does for large PutMetricData) → detect the protocol (an
``X-Amz-Target`` header is awsJson; the ``…/service/<Service>/operation/<Op>`` route is RPC v2
CBOR; anything else awsQuery) → authenticate under the model's signing name, the body's hash
checked → find the operation → parse and validate its input → call the handler → render its
output dict. An :class:`~eucalite.errors.AwsError` becomes the protocol's error; anything
else is logged with its traceback and answered as the service's internal error (500).

An operation the model has but no handler serves is ``InvalidAction`` on Query and
``UnknownOperationException`` on JSON/CBOR, saying eucalite does not support it.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any, Callable

from botocore.model import OperationModel
from flask import Blueprint, Response, g, request

from .. import api, auth
from ..accounts import Principal
from ..errors import (AuthError, AwsError, InvalidAction, MethodNotAllowed,
                      RequestEntityTooLarge)
from ..query import QueryParams
from . import parse, render, validate
from .errors import SerializationException, UnknownOperationException
from .model import ServiceModel
from .render import CBOR, JSON, QUERY

log = logging.getLogger(__name__)


@dataclass
class Call:
    """What an operation handler gets: who is calling, the input, and the services."""

    principal: Principal
    input: dict
    request_id: str
    services: Any
    operation: str


Handler = Callable[[Call], "dict | None"]


class Operations:
    """The handlers of one service's operations, by operation name."""

    def __init__(self, model: ServiceModel):
        self.model = model
        self.handlers: dict[str, Handler] = {}

    def handler(self, name: str) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of operation *name*, which the
        model must have."""
        if name not in self.model.operation_names:
            raise ValueError(f"{self.model.name} has no operation {name}")

        def register(function: Handler) -> Handler:
            if name in self.handlers:
                raise ValueError(f"{self.model.name}: {name} registered twice")
            self.handlers[name] = function
            return function
        return register

    def internal_error(self) -> AwsError:
        """The error a crash is answered with: the model's 500 error (CloudWatch's
        ``InternalServiceError``), else AWS's common ``InternalFailure``."""
        code = next((error.code for error in self.model.errors.values()
                     if error.status == 500), "InternalFailure")
        return AwsError("An internal error has occurred. See the server log.", code=code,
                        status=500)


def mount(blueprint: Blueprint, path: str, ops: Operations) -> None:
    """Serve *ops* at *path* (awsQuery and awsJson) and at RPC v2 CBOR's
    ``path/service/<Service>/operation/<Op>`` below it."""
    endpoint = ops.model.name

    def view() -> Response:
        return serve(ops)

    def rpc_view(service: str, operation: str) -> Response:
        return serve(ops, rpc=(service, operation))

    blueprint.add_url_rule(path, f"wire_{endpoint}", view, methods=api.ALL_METHODS,
                           strict_slashes=False)
    blueprint.add_url_rule(f"{path.rstrip('/')}/service/<service>/operation/<operation>",
                           f"wire_{endpoint}_rpc", rpc_view, methods=api.ALL_METHODS)


def serve(ops: Operations, rpc: tuple[str, str] | None = None) -> Response:
    """Handle the current Flask request as a call to *ops*' service. *rpc* is the
    (service, operation) of an RPC v2 CBOR route, None on the service's own path."""
    request_id = g.request_id
    protocol = _protocol(rpc)
    try:
        reply = _call(ops, protocol, rpc, request_id)
    except AwsError as failure:
        reply = render.error(protocol, ops.model, failure, request_id, _called(ops))
    except Exception:  # noqa: BLE001 - the one place unexpected errors become 500s here
        log.exception("internal error in %s request %s", ops.model.name, request_id)
        reply = render.error(protocol, ops.model, ops.internal_error(), request_id,
                             _called(ops))
    return Response(reply.body, status=reply.status, headers=reply.headers)


def _called(ops: Operations) -> OperationModel | None:
    """The operation this request named, once known (:func:`_operation` notes it)."""
    return ops.model.operation(getattr(g, "action", None) or "")


def _protocol(rpc: tuple[str, str] | None) -> str:
    if rpc is not None:
        return CBOR
    return JSON if request.headers.get("X-Amz-Target") else QUERY


def _call(ops: Operations, protocol: str, rpc: tuple[str, str] | None,
          request_id: str) -> render.Reply:
    allowed = ("GET", "POST") if protocol == QUERY else ("POST",)
    if request.method not in allowed:
        raise MethodNotAllowed(f"The {request.method} method is not allowed here; use "
                               f"{' or '.join(allowed)}.")
    if protocol == CBOR and request.headers.get("smithy-protocol") != "rpc-v2-cbor":
        raise SerializationException("An RPC v2 CBOR request must carry the header "
                                     "smithy-protocol: rpc-v2-cbor.")
    config = api.services().config
    raw = api.read_body(config["max_query_body"])
    body = _decoded(raw, config["max_query_body"])
    form = api.form_pairs(body) if protocol == QUERY else []
    view = auth.RequestView.from_environ(request.environ, form)
    try:
        result = auth.authenticate(view, ops.model.signing_name, body=raw,
                                   max_skew=config["max_clock_skew"])
    except AuthError as failure:
        raise failure.for_service(ops.model.signing_name)
    g.principal = result.principal
    if protocol == QUERY:
        params = QueryParams(view.query_pairs() + form)
        operation = _operation(ops, params.action, protocol)
        data = parse.from_query(operation.input_shape, params)
    else:
        name = _json_target(ops) if protocol == JSON else _rpc_target(ops, rpc)
        operation = _operation(ops, name, protocol)
        reader = parse.from_json if protocol == JSON else parse.from_cbor
        data = reader(operation.input_shape, body)
    validate.validate(operation.input_shape, data)
    call = Call(result.principal, data, request_id, api.services(), operation.name)
    output = ops.handlers[operation.name](call)
    return render.result(protocol, ops.model, operation, output, request_id)


def _decoded(raw: bytes, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip, as botocore compresses request bodies
    of operations modeled with ``requestcompression``), at most *limit* bytes."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise SerializationException(f"Content-Encoding {encoding} is not supported.")
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = decompressor.decompress(raw, limit + 1)
    except zlib.error:
        raise SerializationException("The gzip-encoded body is not valid gzip.") from None
    if len(body) > limit or decompressor.unconsumed_tail:
        raise RequestEntityTooLarge(f"The decompressed body exceeds the {limit}-byte limit.")
    if not decompressor.eof:
        raise SerializationException("The gzip-encoded body is truncated.")
    return body


def _operation(ops: Operations, name: str, protocol: str) -> OperationModel:
    operation = ops.model.operation(name)
    g.action = name
    if operation is None:
        if protocol == QUERY:
            raise InvalidAction(f"The action {name} is not valid for this web service.")
        raise UnknownOperationException(f"{ops.model.title} has no operation {name}.")
    if name not in ops.handlers:
        message = f"eucalite does not support the {ops.model.title} operation {name} yet."
        if protocol == QUERY:
            raise InvalidAction(message)
        raise UnknownOperationException(message)
    return operation


def _json_target(ops: Operations) -> str:
    """The operation ``X-Amz-Target: <targetPrefix>.<Op>`` names."""
    prefix, _, name = request.headers["X-Amz-Target"].rpartition(".")
    if prefix != ops.model.target_prefix or not name:
        raise UnknownOperationException(f"{request.headers['X-Amz-Target']} is not an "
                                        f"operation of {ops.model.title}.")
    return name


def _rpc_target(ops: Operations, rpc: tuple[str, str]) -> str:
    service, name = rpc
    if service != ops.model.target_prefix:
        raise UnknownOperationException(f"{service} is not {ops.model.title}'s service "
                                        f"name ({ops.model.target_prefix}).")
    return name
