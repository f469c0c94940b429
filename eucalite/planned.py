"""Eucalyptus' classic paths of the services eucalite does not have yet: Auto Scaling at
``/services/AutoScaling``.

A client pointed there (a eucarc's AWS_CLOUDWATCH_URL, AWS_AUTO_SCALING_URL) is
answered in that service's own protocol rather than with a 404 or another service's
envelope: a Query request is authenticated under the service's signing name like any other,
then every action is ``InvalidAction`` with a message saying the service is not served yet; a
JSON request (``X-Amz-Target``, how current SDKs call JSON services) gets the same error as
a JSON body, unauthenticated: there is nothing behind it to protect.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, request

from . import api, xmlutil
from .errors import InvalidAction
from .query import ActionRegistry

#: (path, signing name, what the service is) of each service still to come.
PLANNED = [
    ("/services/AutoScaling", "autoscaling", "Auto Scaling"),
]


class PlannedRegistry(ActionRegistry):
    """A registry with no actions whose every lookup says the service is not here yet."""

    def __init__(self, service: str, title: str):
        super().__init__(service)
        self.title = title

    def lookup(self, params):
        raise InvalidAction(f"eucalite does not serve {self.title} yet: the action "
                            f"{params.action} is not available.")


def _protocol(service: str, title: str) -> api.QueryProtocol:
    return api.QueryProtocol(
        service=service,
        registry=PlannedRegistry(service, title),
        render=lambda action, request_id, result: xmlutil.iam_response(action, request_id,
                                                                       result),
        render_error=lambda error, request_id: xmlutil.iam_error(error.code, error.message,
                                                                 request_id, error.status),
    )


blueprint = Blueprint("planned", __name__)


def _json_error(title: str, target: str) -> Response:
    """awsJson's error body for the call X-Amz-Target *target* names."""
    action = target.rsplit(".", 1)[-1]
    body = {"__type": "InvalidAction",
            "message": f"eucalite does not serve {title} yet: the action {action} is not "
                       "available."}
    return Response(json.dumps(body), status=400, mimetype="application/x-amz-json-1.0")


def _register(path: str, service: str, title: str) -> None:
    protocol = _protocol(service, title)

    def view():
        target = request.headers.get("X-Amz-Target")
        if target:
            return _json_error(title, target)
        return api.serve_query(protocol)

    blueprint.add_url_rule(path, f"planned_{service}", view, methods=api.ALL_METHODS,
                           strict_slashes=False)


for _path, _service, _title in PLANNED:
    _register(_path, _service, _title)
