"""The internal API's routes for image data for the node's image cache: an image's bundle
described (parts, digests, the AES key and IV of an encrypted one) and each part streamed
from Walrus. Who may read what, and why the key and IV may travel here:
:mod:`..nodeimages`. The bundles are reached through ``ClusterService.bundles``, which the
wiring gives the cluster service (the cloud controller's reader)."""
from __future__ import annotations

from flask import Response

from ...api import services
from ...errors import ServiceUnavailable
from ...errors.node import NodeImageNotFound
from ..node import IMAGE_PARTS
from ..nodeimages import BundleReader
from . import blueprint, node_route


def _bundles() -> BundleReader:
    reader = services().cluster.bundles
    if reader is None:
        raise ServiceUnavailable("This controller serves no images to nodes.")
    return reader


def _part(part: str) -> str:
    if part not in IMAGE_PARTS:
        raise NodeImageNotFound(f"An image part is one of {', '.join(IMAGE_PARTS)}, "
                                f"not {part!r}.")
    return part


@blueprint.get("/nodes/<node_id>/images/<image_id>/<part>")
@node_route
def image_bundle(node_id: str, image_id: str, part: str) -> dict:
    return _bundles().describe(node_id, image_id, _part(part)).to_json()


@blueprint.get("/nodes/<node_id>/images/<image_id>/<part>/parts/<int:index>")
@node_route
def image_part(node_id: str, image_id: str, part: str, index: int) -> Response:
    _part(part)
    size, chunks = _bundles().read_part(node_id, image_id, index)
    # streamed as stored: the node checks the part's SHA1 against the manifest
    return Response(chunks, mimetype="application/octet-stream",
                    headers={"Content-Length": str(size)}, direct_passthrough=True)
