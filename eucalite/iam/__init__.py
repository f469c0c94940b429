"""The IAM (Eucalyptus "Euare") Query endpoint at ``/services/Euare``.

Requests are authenticated and dispatched like EC2's, with IAM's envelopes. Each topic has
its module registering its actions on :data:`.actions.registry` (users, groups, access keys
and login profiles, the account); importing this package imports them all, so the registry
it serves is complete. Actions not implemented yet are answered ``InvalidAction``.
"""
from __future__ import annotations

from flask import Blueprint

from .. import api, xmlutil
from . import actions_account, actions_groups, actions_keys, actions_users  # noqa: F401
from . import actions_policies  # noqa: F401
from . import actions_roles  # noqa: F401
from . import actions_quotas  # noqa: F401
from .actions import registry

IAM_PATH = "/services/Euare"

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
