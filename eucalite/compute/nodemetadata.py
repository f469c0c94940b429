"""The metadata service for instances on joined nodes: what the internal API's metadata route
(:mod:`eucalite.cluster.internalapi.network`) answers, given to the cluster by the wiring as
``ClusterService.node_metadata`` (the cluster never imports compute).

It is the controller's own metadata service (:func:`.metadata.make_app`, the same tree,
tokens and options), asked with the guest's request, but only for an instance that has that
private IP and is placed on the asking node: any other address is its 404.
"""
from __future__ import annotations

from typing import Callable

from werkzeug.wrappers import Response

from . import metadata

#: ``answer(node_id, private_ip, environ)``: the guest's response
NodeMetadata = Callable[[str, str, dict], Response]


def answerer(main_app) -> NodeMetadata:
    """The node metadata answerer over *main_app*'s database and config (called inside a
    request of *main_app*)."""
    imds = metadata.make_app(main_app)

    def answer(node_id: str, private_ip: str, environ: dict) -> Response:
        instance = metadata.find_instance(private_ip)
        if instance is None or instance.node_id != node_id:
            return metadata._error(404)     # as for an address no instance has
        return Response.from_app(imds, environ)

    return answer
