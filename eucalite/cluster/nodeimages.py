"""Images for a node on another host: what it may fetch, and how it fills its cache.

The controller's side (the routes in :mod:`.internalapi.images`) answers two questions a
node asks over the internal API, through a :class:`BundleReader` the cloud controller gives
the cluster service (``ClusterService.bundles``, wired by :mod:`eucalite.services`; the
cluster controller knows nothing of images' rows):

* ``GET /nodes/{node_id}/images/{image_id}/{part}``: the :class:`ImageBundle`: the bundle's
  parts (name, size, SHA1), the image's digest and sizes, and for an encrypted bundle its
  AES key and IV, which the controller decrypts with the cloud's private key. The key and
  IV travel only over this signed channel, to a node that may launch the image; the cloud's
  private key never leaves the controller.
* ``GET /nodes/{node_id}/images/{image_id}/{part}/parts/{n}``: part *n*'s bytes, streamed
  from Walrus as they are.

The rule: a node may read an image only while an instance placed on it (not terminated)
boots from it (its EMI, EKI or ERI). The controller places an instance before it asks the
node to start it, so every image a node is asked to launch is readable, and nothing else.

The node's side is :func:`remote_image_source`: the image source of its
:class:`~.localnode.LocalNode`, which checks every part's SHA1 and the image's digest as it
unpacks (:func:`.unbundle.unpack`), so the node trusts the manifest the controller read,
not the bytes on the wire; any mismatch raises and the image cache keeps nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol

from .localnode import ImageSource
from .node import IMAGE_PARTS, ImageRef
from .nodeclient import NodeClient
from .unbundle import CorruptBundle, unpack

#: The only cipher bundles use (EC2's AMI tools and euca2ools).
CIPHER = "aes-128-cbc"


@dataclass(frozen=True)
class BundlePart:
    """One part of a bundle: its file name in the manifest, size and SHA1 (hex)."""

    name: str
    size: int
    sha1: str


@dataclass(frozen=True)
class ImageBundle:
    """What a node needs to unpack one image part (see the module docstring)."""

    image_id: str
    part: str
    parts: tuple[BundlePart, ...]
    digest: str | None              # SHA1 hex of the tar stream
    image_size: int | None
    bundled_size: int | None
    key: bytes | None = None        # AES-128 key and IV of an encrypted bundle
    iv: bytes | None = None

    def to_json(self) -> dict:
        return {"image_id": self.image_id, "part": self.part,
                "parts": [{"name": p.name, "size": p.size, "sha1": p.sha1}
                          for p in self.parts],
                "digest": self.digest, "image_size": self.image_size,
                "bundled_size": self.bundled_size,
                "encryption": None if self.key is None else
                {"cipher": CIPHER, "key": self.key.hex(), "iv": (self.iv or b"").hex()}}

    @classmethod
    def from_json(cls, data: dict) -> "ImageBundle":
        """Parse the controller's answer; CorruptBundle when it is not one."""
        try:
            encryption = data.get("encryption")
            if encryption is not None and encryption.get("cipher") != CIPHER:
                raise CorruptBundle(f"Unknown bundle cipher {encryption.get('cipher')!r}.")
            return cls(image_id=str(data["image_id"]), part=str(data["part"]),
                       parts=tuple(BundlePart(str(p["name"]), int(p["size"]), str(p["sha1"]))
                                   for p in data["parts"]),
                       digest=data.get("digest"), image_size=data.get("image_size"),
                       bundled_size=data.get("bundled_size"),
                       key=bytes.fromhex(encryption["key"]) if encryption else None,
                       iv=bytes.fromhex(encryption["iv"]) if encryption else None)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CorruptBundle(f"The controller's description of the image is not "
                                f"readable: {error!r}") from None


class BundleReader(Protocol):
    """The controller's access to bundles in Walrus, on behalf of nodes (implemented by the
    cloud controller: :mod:`eucalite.compute.nodebundles`). Both raise NodeAccessDenied
    (403) when no instance on *node_id* boots from *image_id*, NodeImageNotFound (404) when
    the image has no such bundle or part; both need an app context."""

    def describe(self, node_id: str, image_id: str, part: str) -> ImageBundle:
        """The bundle of *image_id* as *part* (root of an EMI, kernel of an EKI, ramdisk of
        an ERI), its key and IV decrypted."""

    def read_part(self, node_id: str, image_id: str, index: int) -> tuple[int, Iterator[bytes]]:
        """Part *index* of the image's bundle: (size, its bytes in chunks). The iterator
        holds no database transaction (it may outlive the request's)."""


def image_path(node_id: str, image_id: str, part: str) -> str:
    """The internal API path of *image_id*'s *part* for *node_id*."""
    if part not in IMAGE_PARTS:
        raise ValueError(f"image part must be one of {IMAGE_PARTS}, not {part!r}")
    return f"/nodes/{node_id}/images/{image_id}/{part}"


def remote_image_source(client: NodeClient) -> ImageSource:
    """The image source of a node on another host: ``source(ref, out)`` asks the controller
    (through *client*, signed with the node's key) for *ref*'s bundle, streams each part,
    checks each part's SHA1, the parts' total, the image's digest and size, decrypts, and
    writes the image to *out*. Raises InternalApiError when the controller refuses (e.g.
    403: no instance on this node uses the image) and CorruptBundle on any mismatch."""
    if client.credentials is None:
        raise ValueError("a node's image source needs the node's credentials")
    node_id = client.credentials.node_id

    def source(ref: ImageRef, out: BinaryIO) -> None:
        path = image_path(node_id, ref.image_id, ref.part)
        bundle = ImageBundle.from_json(client.call("GET", path))
        if (bundle.image_id, bundle.part) != (ref.image_id, ref.part):
            raise CorruptBundle(f"Asked for {ref.image_id}/{ref.part}, the controller "
                                f"described {bundle.image_id}/{bundle.part}.")
        index = {part.name: number for number, part in enumerate(bundle.parts)}

        def read_part(name: str) -> Iterator[bytes]:
            return client.stream(f"{path}/parts/{index[name]}")

        unpack([(part.name, part.sha1) for part in bundle.parts], read_part, out,
               digest=bundle.digest, image_size=bundle.image_size,
               bundled_size=bundle.bundled_size, key=bundle.key, iv=bundle.iv)
    return source
