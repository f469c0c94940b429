"""The internal API between the cluster controller and its nodes, at ``/internal/v1``.

The node calls the controller (never the other way), so a node behind a firewall that lets
it reach the controller only works. JSON in and out; errors are
``{"error": {"code", "message", "request_id"}}`` with the HTTP status. Documented in
the ``openapi/`` fragments beside this module (merged, served at
``/internal/v1/openapi.json``), which tests/test_internalapi.py holds against the routes.

Every route but the document and ``join`` is signed with the node's own key
(:mod:`.nodeauth`) and acts for that node only (``/nodes/<its id>/...``). ``join`` is
authenticated by the one-time token in its body. The routes live in one module per topic,
each behind :func:`node_route`: :mod:`.nodes` (join, registration, heartbeat),
:mod:`.commands` (the command channel), :mod:`.images` (image data for node caches),
:mod:`.network` (what the instance network of a node needs from the controller).
"""
from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from ...errors import AwsError, InvalidParameterValue, RequestEntityTooLarge
from ..nodeclient import API_PATH
from .nodeauth import ReplayCache, authenticate_node, require_node

#: The OpenAPI document: ``base.json`` (info, security, the node routes) and one fragment per
#: route module (its paths and schemas), merged by :func:`document`.
DOCUMENT_DIR = Path(__file__).with_name("openapi")
DEFAULT_HEARTBEAT_INTERVAL = 10
#: Largest request body: a heartbeat lists every domain of its node in a few KiB.
MAX_BODY = 1024 * 1024

log = logging.getLogger(__name__)

blueprint = Blueprint("internalapi", __name__, url_prefix=API_PATH)


def json_response(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


@blueprint.errorhandler(AwsError)
def _error(error: AwsError) -> Response:
    return json_response({"error": {"code": error.code, "message": error.message,
                                    "request_id": getattr(g, "request_id", "")}},
                         error.status)


def http_error(error: HTTPException) -> Response:
    """A routing or protocol error (404 for a path no route has, 405...) in the API's error
    shape; the app's error handler sends every such error under ``/internal/`` here."""
    return _error(AwsError(error.description or error.name, code=error.name.replace(" ", ""),
                           status=error.code or 500))


@blueprint.record_once
def _claim_the_prefix(state) -> None:
    """Requests under the API's path that none of its routes takes would fall to another
    route (the object store's path-style ``/<bucket>/<key>``): answer them here instead,
    404 or 405 as the API's own routes decide, in the API's error shape."""
    app = state.app
    own = {}

    def stray() -> Response | None:
        if not request.path.startswith(API_PATH + "/") or request.blueprint == blueprint.name:
            return None
        if "map" not in own:
            own["map"] = Map([Rule(rule.rule, methods=rule.methods)
                              for rule in app.url_map.iter_rules()
                              if rule.endpoint.startswith(blueprint.name + ".")])
        try:
            own["map"].bind("").match(request.path, method=request.method)
        except HTTPException as error:
            return http_error(error)
        return None
    app.before_request(stray)


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    """Anything else still answers in the API's error shape (a node parses no HTML)."""
    if isinstance(error, HTTPException):
        return http_error(error)
    log.exception("internal API request failed")
    return _error(AwsError("The controller failed to handle the request."))


def _raw_body() -> bytes:
    """The request body, read once and at most MAX_BODY bytes (before the signature is
    checked, as the signature covers it: no unauthenticated client makes us hold more)."""
    if "internal_body" not in g:
        data = request.stream.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            raise RequestEntityTooLarge(f"The request body is larger than {MAX_BODY} bytes.")
        g.internal_body = data
    return g.internal_body


def json_body() -> dict:
    """The request's JSON object (InvalidParameterValue for anything else)."""
    try:
        body = json.loads(_raw_body() or b"{}")
    except ValueError:
        raise InvalidParameterValue("The request body is not JSON.")
    if not isinstance(body, dict):
        raise InvalidParameterValue("The request body must be a JSON object.")
    return body


def _replay_cache() -> ReplayCache:
    return current_app.extensions.setdefault("eucalite_internal_replay", ReplayCache())


def controller_config() -> dict:
    return current_app.config["EUCALITE"]


def heartbeat_interval() -> int:
    return max(1, int(controller_config().get("heartbeat_interval")
                      or DEFAULT_HEARTBEAT_INTERVAL))


def node_route(function):
    """A route under ``/nodes/<node_id>``: signed by that node's key, else refused."""
    @functools.wraps(function)
    def route(node_id: str, **kwargs):
        identity = authenticate_node(request.environ, _raw_body(), _replay_cache())
        require_node(identity, node_id)
        return function(node_id, **kwargs)
    return route


def document() -> dict:
    """The whole OpenAPI document: ``base.json`` with every fragment's ``paths`` and
    ``components`` merged in (a name defined twice is an error, so fragments cannot clash)."""
    merged = json.loads((DOCUMENT_DIR / "base.json").read_text())
    for fragment in sorted(DOCUMENT_DIR.glob("*.json")):
        if fragment.name == "base.json":
            continue
        part = json.loads(fragment.read_text())
        for section, items in [("paths", part.get("paths", {}))] + [
                (f"components/{name}", value)
                for name, value in part.get("components", {}).items()]:
            target = merged
            for key in section.split("/"):
                target = target.setdefault(key, {})
            clash = set(target) & set(items)
            if clash:
                raise ValueError(f"{fragment.name} redefines {section}: {sorted(clash)}")
            target.update(items)
    return merged


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    return json_response(document())
