"""HTTP plumbing shared by the Query adapters (EC2, IAM): read, authenticate, dispatch, render.

A Query request's path: read the (bounded) body → parse parameters → authenticate →
look up the action → call its handler with a :class:`Call` → render the result. Every
:class:`~eucalite.errors.AwsError` becomes the protocol's error envelope; anything else is
logged with its traceback and answered with ``InternalError``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from flask import Response, current_app, g, request

from . import auth, config as config_module, xmlutil
from .accounts import Principal
from .errors import (AuthError, AwsError, InternalError, MalformedQueryString, MethodNotAllowed,
                     RequestEntityTooLarge)
from .query import ActionRegistry, QueryParams

log = logging.getLogger(__name__)

#: Query endpoints take every method so that a wrong one gets the Query error envelope
#: instead of falling through to the S3 catch-all.
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]


@dataclass
class Call:
    """What a Query action handler gets: who is calling, with what, and the services."""

    principal: Principal
    params: QueryParams
    services: Any
    request_id: str


@dataclass
class QueryProtocol:
    """How one Query API (EC2 or IAM) signs, renders results and renders errors."""

    service: str                                   # signing name: "ec2", "iam"
    registry: ActionRegistry
    render: Callable[[str, str, Any], bytes]       # (action, request_id, result) -> XML
    render_error: Callable[[AwsError, str], bytes]  # (error, request_id) -> XML
    before_call: Callable[[Call], None] | None = None


def services():
    """The service bundle (:class:`eucalite.services.Services`) of the app serving this
    request: how adapters reach the services."""
    return current_app.extensions["eucalite"]


def read_body(limit: int) -> bytes:
    """The whole request body, refusing more than *limit* bytes (without reading them)."""
    length = request.content_length
    if length is not None and length > limit:
        raise RequestEntityTooLarge(f"Request body of {length} bytes exceeds the "
                                    f"{limit}-byte limit.")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge(f"Request body exceeds the {limit}-byte limit.")
    return body


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """The parameters of a Query request's form body (none for another content type)."""
    content_type = (request.mimetype or "").lower()
    if not body or content_type not in ("application/x-www-form-urlencoded", ""):
        return []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedQueryString("The request body is not valid UTF-8.")
    # Form bodies encode spaces as '+'; query strings signed by AWS clients never do.
    return auth.parse_query(text.replace("+", "%20"))


def serve_query(protocol: QueryProtocol) -> Response:
    """Handle the current Flask request as a call to *protocol*'s Query API."""
    request_id = g.request_id
    try:
        if request.method not in ("GET", "POST"):
            raise MethodNotAllowed(f"The {request.method} method is not allowed; Query APIs "
                                   "take GET or POST.")
        config = services().config
        body = read_body(config["max_query_body"])
        form = form_pairs(body)
        view = auth.RequestView.from_environ(request.environ, form)
        params = QueryParams(view.query_pairs() + form)
        try:
            result = auth.authenticate(view, protocol.service, body=body,
                                       max_skew=config["max_clock_skew"])
        except AuthError as error:
            raise error.for_service(protocol.service)
        g.principal = result.principal
        action = protocol.registry.lookup(params)
        g.action = action.name
        call = Call(result.principal, params, services(), request_id)
        if protocol.before_call is not None:
            protocol.before_call(call)
        payload = protocol.render(action.name, request_id, action.handler(call))
        return Response(payload, status=200, mimetype="text/xml")
    except AwsError as error:
        return _error_response(protocol, error, request_id)
    except Exception:  # noqa: BLE001 - the one place unexpected errors are turned into 500s
        log.exception("InternalError in %s request %s", protocol.service, request_id)
        return _error_response(protocol, InternalError(), request_id)


def unknown_service(path: str) -> Response:
    """``/services/<name>`` that no adapter serves: a 404 in the Query error envelope."""
    known = ", ".join(config_module.endpoints(services().config).values())
    message = f"No service is served at {path}. Endpoints: {known}"
    return Response(xmlutil.ec2_error("NotFound", message, g.request_id), status=404,
                    mimetype="text/xml")


def _error_response(protocol: QueryProtocol, error: AwsError, request_id: str) -> Response:
    return Response(protocol.render_error(error, request_id), status=error.status,
                    mimetype="text/xml")
