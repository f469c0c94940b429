"""The cloud controller's side of images for nodes on other hosts: the
:class:`~eucalite.cluster.nodeimages.BundleReader` the internal API's image routes use.

A node may read an image's bundle only while an instance placed on it (not terminated)
boots from that image (:func:`eucalite.compute.lifecycle.images_in_use`: its EMI, EKI or
ERI). Bundles are read with the cloud's authority, as for this host's node; the AES key and
IV of an encrypted bundle are decrypted here with the cloud's private key and handed to
the node, which never sees the private key itself.
"""
from __future__ import annotations

from typing import Iterator

from ..cluster.nodeimages import BundlePart, ImageBundle
from ..db import db
from ..errors.node import NodeAccessDenied, NodeImageNotFound
from ..s3 import sse
from . import bundle, cloudkey, images, lifecycle
from .models import Image

#: The image kind each cached part comes from.
KIND_OF_PART = {"root": "machine", "kernel": "kernel", "ramdisk": "ramdisk"}


class NodeBundles:
    """Bundles in Walrus (*store*), read for nodes; *data_dir* holds the cloud's key."""

    def __init__(self, store, data_dir: str):
        self.store = store
        self.data_dir = data_dir

    @staticmethod
    def _image(node_id: str, image_id: str) -> Image:
        """*image_id*, if an instance on *node_id* boots from it and it has a bundle."""
        if image_id not in lifecycle.images_in_use(node_id):
            raise NodeAccessDenied(f"No instance on node {node_id} boots from {image_id}.")
        image = db.session.get(Image, image_id)
        if image is None or not image.location:
            raise NodeImageNotFound(f"The image {image_id} has no bundle.")
        return image

    def describe(self, node_id: str, image_id: str, part: str) -> ImageBundle:
        image = self._image(node_id, image_id)
        if KIND_OF_PART.get(part) != image.kind:
            raise NodeImageNotFound(f"The image {image_id} is a {image.kind} image: it has "
                                    f"no {part} part.")
        manifest = images.manifest_of(image)
        key = cloudkey.cloud_private_key(self.data_dir) if manifest.encrypted else None
        key_iv = bundle.bundle_key(manifest, key)
        parts = tuple(BundlePart(name, images.part_version(image, name).size, sha1)
                      for name, sha1 in manifest.parts)
        db.session.rollback()
        return ImageBundle(image_id=image_id, part=part, parts=parts, digest=manifest.digest,
                           image_size=manifest.image_size,
                           bundled_size=manifest.bundled_size,
                           key=key_iv[0] if key_iv else None, iv=key_iv[1] if key_iv else None)

    def read_part(self, node_id: str, image_id: str, index: int) -> tuple[int, Iterator[bytes]]:
        image = self._image(node_id, image_id)
        parts = images.manifest_of(image).parts
        if not 0 <= index < len(parts):
            raise NodeImageNotFound(f"The bundle of {image_id} has {len(parts)} parts; "
                                    f"there is no part {index}.")
        version = images.part_version(image, parts[index][0])
        size, body = version.size, sse.read(self.store, version)
        db.session.rollback()          # hold no transaction while the part streams
        return size, body
