"""The EC2 Query API adapter: one blueprint at ``/services/compute`` (and Eucalyptus' classic
``/services/Eucalyptus``, for clients written for Eucalyptus), one registry of actions.

Each resource family has its own module registering its actions on
:data:`.actions.registry`; a handler reads ``call.params``, calls a service, and returns the
response body as plain data for :func:`eucalite.xmlutil.query_response`. Importing this
package imports every handler module, so the registry it serves is complete.
"""
from __future__ import annotations

from flask import Blueprint, g

from ... import api, xmlutil
from ...errors import DryRunOperation
# Importing the handler modules registers their actions.
from . import (images, instance_types, instances, keypairs, regions, snapshots,  # noqa: F401
               tags, volumes)
from . import securitygroups  # noqa: F401
from . import securitygrouprules  # noqa: F401
from . import addresses  # noqa: F401
from . import instance_attributes, instance_status  # noqa: F401
from . import iamprofiles  # noqa: F401
from . import monitoring  # noqa: F401
from . import launchtemplates  # noqa: F401
from . import permissions
from .actions import CLASSIC_EC2_PATH, registry

EC2_PATH = "/services/compute"


def _authorize_then_dry_run(call: api.Call) -> None:
    # AWS answers an unauthorised dry run UnauthorizedOperation and an authorised one
    # DryRunOperation: the policy check comes first.
    permissions.authorize(call.services, call.principal, g.action, call.params)
    if call.params.get_bool("DryRun"):
        raise DryRunOperation()


protocol = api.QueryProtocol(
    service="ec2",
    registry=registry,
    render=lambda action, request_id, body: xmlutil.query_response(
        action, getattr(body, "namespace", xmlutil.EC2_NAMESPACE), request_id, body),
    render_error=lambda error, request_id: xmlutil.ec2_error(error.code, error.message,
                                                             request_id),
    before_call=_authorize_then_dry_run,
)

blueprint = Blueprint("ec2", __name__)


@blueprint.route(EC2_PATH, methods=api.ALL_METHODS, strict_slashes=False)
@blueprint.route(CLASSIC_EC2_PATH, methods=api.ALL_METHODS, strict_slashes=False)
def endpoint():
    return api.serve_query(protocol)


@blueprint.route("/services", defaults={"rest": ""}, methods=api.ALL_METHODS)
@blueprint.route("/services/<path:rest>", methods=api.ALL_METHODS)
def unknown_service(rest: str):
    """Everything under /services/ belongs to the Query APIs, never to S3."""
    return api.unknown_service("/services/" + rest)
