"""The internal API's routes for what a node's instance network needs from the controller:
the metadata of the node's own instances.

A joined node answers 169.254.169.254 for the guests it runs (:mod:`..metadataproxy`) by
forwarding each guest request here, naming the guest by the private IP it came from on the
node's bridge. The controller answers as its own metadata service does (the same code,
given to the cluster as ``ClusterService.node_metadata``), and only for an instance with
that private IP placed on that node: any other address is the metadata service's 404, so
a node cannot read the metadata of another node's instances.
"""
from __future__ import annotations

import ipaddress
import io

from flask import Response, current_app, request

from ...errors import InvalidParameterValue, ServiceUnavailable
from . import blueprint, node_route

#: The request headers of the guest the node passes on (IMDSv2 and its proxy check).
FORWARDED_HEADERS = ("X-aws-ec2-metadata-token", "X-aws-ec2-metadata-token-ttl-seconds",
                     "X-Forwarded-For")


@blueprint.route("/nodes/<node_id>/metadata/<private_ip>/", defaults={"path": ""},
                 methods=["GET", "PUT"])
@blueprint.route("/nodes/<node_id>/metadata/<private_ip>/<path:path>", methods=["GET", "PUT"])
@node_route
def instance_metadata(node_id: str, private_ip: str, path: str) -> Response:
    try:
        ipaddress.IPv4Address(private_ip)
    except ValueError:
        raise InvalidParameterValue(f"private_ip: {private_ip!r} is not an IPv4 address")
    answer = current_app.extensions["eucalite"].cluster.node_metadata
    if answer is None:
        raise ServiceUnavailable("This controller serves no instance metadata.")
    return answer(node_id, private_ip, guest_environ(private_ip, path))


def guest_environ(private_ip: str, path: str) -> dict:
    """The WSGI environ of the guest's own request: its method, ``/<path>``, the forwarded
    headers, and the guest's address as the caller (what the metadata service goes by)."""
    environ = {key: value for key, value in request.environ.items()
               if not key.startswith("HTTP_") and key not in ("CONTENT_TYPE",
                                                                "CONTENT_LENGTH")}
    environ.update({"PATH_INFO": "/" + path, "SCRIPT_NAME": "", "QUERY_STRING": "",
                    "REMOTE_ADDR": private_ip, "CONTENT_LENGTH": "0",
                    "wsgi.input": io.BytesIO(b"")})
    for name in FORWARDED_HEADERS:
        if name in request.headers:
            environ["HTTP_" + name.upper().replace("-", "_")] = request.headers[name]
    return environ
