"""The IAM (Eucalyptus "Euare") Query endpoint at ``/services/Euare``.

Requests are authenticated and dispatched like EC2's, with IAM's envelopes. No IAM action
is implemented yet (accounts, users and keys are managed with ``eucalite account``), so
every action is answered ``InvalidAction`` rather than pretending.
"""
from __future__ import annotations

from flask import Blueprint

from .. import api, xmlutil
from ..query import ActionRegistry

IAM_PATH = "/services/Euare"

registry = ActionRegistry("iam")

protocol = api.QueryProtocol(
    service="iam",
    registry=registry,
    render=lambda action, request_id, result: xmlutil.iam_response(action, request_id, result),
    render_error=lambda error, request_id: xmlutil.iam_error(error.code, error.message,
                                                             request_id, error.status),
)

blueprint = Blueprint("iam", __name__)


@blueprint.route(IAM_PATH, methods=api.ALL_METHODS, strict_slashes=False)
def endpoint():
    return api.serve_query(protocol)
