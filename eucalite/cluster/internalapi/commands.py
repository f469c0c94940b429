"""The internal API's routes for the command channel: a node long-polls for the commands its
RemoteNode queued (:mod:`..commands`) and posts their results.

The controller that serves these routes drives every node that joined it from its start
(:meth:`~..service.ClusterService.attach_joined`, when the app registers the API), so a
restart needs no node to join again; and a registered node that polls is driven from then
on (:meth:`~..service.ClusterService.attach_remote`).
"""
from __future__ import annotations

from flask import Response, current_app, request

from ...db import db
from ...errors import InvalidParameterValue
from .. import joining
from ..commands import MAX_WAIT
from . import blueprint, json_body, json_response, node_route

#: Seconds a poll waits for a command when it does not say (``?wait=``).
DEFAULT_WAIT = 20


def _cluster():
    return current_app.extensions["eucalite"].cluster


@blueprint.record_once
def _drive_joined_nodes(state) -> None:
    with state.app.app_context():
        state.app.extensions["eucalite"].cluster.attach_joined()


def _wait() -> float:
    text = request.args.get("wait", str(DEFAULT_WAIT))
    try:
        wait = float(text)
    except ValueError:
        raise InvalidParameterValue(f"wait: a number of seconds (0 to {MAX_WAIT}), not "
                                    f"{text!r:.40}") from None
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidParameterValue(f"wait: a number of seconds from 0 to {MAX_WAIT}")
    return wait


@blueprint.get("/nodes/<node_id>/commands")
@node_route
def take_commands(node_id: str) -> Response:
    wait = _wait()
    node = joining.node_row(node_id)
    if node is None:
        raise joining.not_found(node_id)
    cluster = _cluster()
    hypervisor_uri = node.hypervisor_uri
    db.session.rollback()           # hold no transaction (nor connection) while it waits
    cluster.attach_remote(node_id, hypervisor_uri)
    commands, retry_after = cluster.commands.take(node_id, wait)
    answer: dict = {"commands": commands}
    if retry_after is not None:
        answer["retry_after"] = retry_after
    return json_response(answer)


@blueprint.post("/nodes/<node_id>/commands/<command_id>/result")
@node_route
def post_result(node_id: str, command_id: str) -> Response:
    body = json_body()
    if set(body) not in ({"result"}, {"error"}):
        raise InvalidParameterValue("A result is {\"result\": ...} or {\"error\": {\"type\", "
                                    "\"message\"}}.")
    error = body.get("error")
    if "error" in body and not (isinstance(error, dict) and
                                isinstance(error.get("type"), str) and
                                isinstance(error.get("message"), str)):
        raise InvalidParameterValue("error: an object with type and message strings")
    _cluster().commands.complete(node_id, command_id, body.get("result"), error)
    return Response(status=204)
