"""The node routes of the internal API: join, registration and heartbeat."""
from __future__ import annotations

from flask import Response, current_app, request

from ...errors import InvalidParameterValue
from .. import joining, overlay
from ..nodeclient import version
from . import blueprint, controller_config, heartbeat_interval, json_body, json_response, \
    node_route


@blueprint.post("/join")
def join() -> Response:
    body = json_body()
    joined = joining.exchange(body.get("token"), body.get("node_name"))
    return json_response({"node_id": joined.node_id, "zone": joined.zone,
                          "region": controller_config()["region"],
                          "access_key_id": joined.access_key_id,
                          "secret_access_key": joined.secret_access_key,
                          "heartbeat_interval": heartbeat_interval()}, 201)


def _node_document(node) -> dict:
    config = controller_config()
    return {"node_id": node.id, "zone": node.zone, "region": config["region"],
            "state": node.state, "heartbeat_interval": heartbeat_interval(),
            "instance_subnet": config["instance_subnet"],
            "controller_version": version(),
            **overlay.answer_fields(node.id, node.zone, node.address, config)}


def _known(node_id: str):
    node = joining.node_row(node_id)
    if node is None:
        raise joining.not_found(node_id)
    return node


@blueprint.get("/nodes/<node_id>")
@node_route
def node_info(node_id: str) -> Response:
    return json_response(_node_document(_known(node_id)))


@blueprint.put("/nodes/<node_id>")
@node_route
def register(node_id: str) -> Response:
    body = json_body()
    hypervisor_uri, address = body.get("hypervisor_uri"), body.get("address")
    if not isinstance(hypervisor_uri, str):
        raise InvalidParameterValue("hypervisor_uri: a string")
    if address is not None and not isinstance(address, str):
        raise InvalidParameterValue("address: a string")
    if address:
        try:
            address = overlay.validate_address(address, "address")
        except ValueError as error:
            raise InvalidParameterValue(str(error)) from None
    node = joining.register(node_id, joining.capacity_of(body), hypervisor_uri,
                            address or request.remote_addr or "")
    # the node's agent (re)started: drive it from now on, failing what its last process took
    current_app.extensions["eucalite"].cluster.attach_remote(node_id, hypervisor_uri,
                                                             restarted=True)
    return json_response(_node_document(node))


@blueprint.post("/nodes/<node_id>/heartbeat")
@node_route
def heartbeat(node_id: str) -> Response:
    body = json_body()
    domains = body.get("domains", {})
    if not isinstance(domains, dict) or not all(isinstance(v, str) for v in domains.values()):
        raise InvalidParameterValue("domains: an object of instance id to power state")
    node = joining.heartbeat(node_id, joining.capacity_of(body))
    current_app.extensions["eucalite"].cluster.attach_remote(node_id, node.hypervisor_uri)
    return json_response({"state": node.state, "heartbeat_interval": heartbeat_interval(),
                          **overlay.answer_fields(node_id, node.zone, node.address,
                                                  controller_config())})
