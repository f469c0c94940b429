"""The internal API between the cluster controller and its nodes, at ``/internal/v1``.

The node calls the controller (never the other way), so a node behind a firewall that lets
it reach the controller only works. JSON in and out; errors are
``{"error": {"code", "message", "request_id"}}`` with the HTTP status. Documented in
``openapi.json`` beside this module (served at ``/internal/v1/openapi.json``), which
tests/test_internalapi.py holds against these routes.

Every route but the document and ``join`` is signed with the node's own key
(:mod:`.nodeauth`) and acts for that node only (``/nodes/<its id>/...``). ``join`` is
authenticated by the one-time token in its body. Routes for the command channel (commands,
results) are added here the same way, behind :func:`node_route`.
"""
from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ...errors import AwsError, InvalidParameterValue, RequestEntityTooLarge
from .. import joining
from ..nodeclient import API_PATH, version
from .nodeauth import ReplayCache, authenticate_node, require_node

DOCUMENT = Path(__file__).with_name("openapi.json")
DEFAULT_HEARTBEAT_INTERVAL = 10
#: Largest request body: a heartbeat lists every domain of its node in a few KiB.
MAX_BODY = 1024 * 1024

log = logging.getLogger(__name__)

blueprint = Blueprint("internalapi", __name__, url_prefix=API_PATH)


def _json(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


@blueprint.errorhandler(AwsError)
def _error(error: AwsError) -> Response:
    return _json({"error": {"code": error.code, "message": error.message,
                            "request_id": getattr(g, "request_id", "")}}, error.status)


@blueprint.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    """Anything else still answers in the API's error shape (a node parses no HTML)."""
    if isinstance(error, HTTPException):
        return _error(AwsError(error.description or error.name, code=error.name.replace(" ", ""),
                               status=error.code or 500))
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


def _body() -> dict:
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


def _config() -> dict:
    return current_app.config["EUCALITE"]


def _heartbeat_interval() -> int:
    return max(1, int(_config().get("heartbeat_interval") or DEFAULT_HEARTBEAT_INTERVAL))


def node_route(function):
    """A route under ``/nodes/<node_id>``: signed by that node's key, else refused."""
    @functools.wraps(function)
    def route(node_id: str, **kwargs):
        identity = authenticate_node(request.environ, _raw_body(), _replay_cache())
        require_node(identity, node_id)
        return function(node_id, **kwargs)
    return route


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    return Response(DOCUMENT.read_bytes(), mimetype="application/json")


@blueprint.post("/join")
def join() -> Response:
    body = _body()
    joined = joining.exchange(body.get("token"), body.get("node_name"))
    return _json({"node_id": joined.node_id, "zone": joined.zone,
                  "region": _config()["region"], "access_key_id": joined.access_key_id,
                  "secret_access_key": joined.secret_access_key,
                  "heartbeat_interval": _heartbeat_interval()}, 201)


def _node_document(node) -> dict:
    config = _config()
    return {"node_id": node.id, "zone": node.zone, "region": config["region"],
            "state": node.state, "heartbeat_interval": _heartbeat_interval(),
            "instance_subnet": config["instance_subnet"],
            "controller_version": version()}


def _known(node_id: str):
    node = joining.node_row(node_id)
    if node is None:
        raise joining.not_found(node_id)
    return node


@blueprint.get("/nodes/<node_id>")
@node_route
def node_info(node_id: str) -> Response:
    return _json(_node_document(_known(node_id)))


@blueprint.put("/nodes/<node_id>")
@node_route
def register(node_id: str) -> Response:
    body = _body()
    hypervisor_uri, address = body.get("hypervisor_uri"), body.get("address")
    if not isinstance(hypervisor_uri, str):
        raise InvalidParameterValue("hypervisor_uri: a string")
    if address is not None and not isinstance(address, str):
        raise InvalidParameterValue("address: a string")
    node = joining.register(node_id, joining.capacity_of(body), hypervisor_uri,
                            address or request.remote_addr or "")
    return _json(_node_document(node))


@blueprint.post("/nodes/<node_id>/heartbeat")
@node_route
def heartbeat(node_id: str) -> Response:
    body = _body()
    domains = body.get("domains", {})
    if not isinstance(domains, dict) or not all(isinstance(v, str) for v in domains.values()):
        raise InvalidParameterValue("domains: an object of instance id to power state")
    node = joining.heartbeat(node_id, joining.capacity_of(body))
    return _json({"state": node.state, "heartbeat_interval": _heartbeat_interval()})
