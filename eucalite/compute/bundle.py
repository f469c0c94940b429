"""The EC2 / euca2ools AMI bundle format: the manifest, parsing it, unpacking bundles.
Pure: no database. Making bundles is :mod:`eucalite.compute.bundling`.

A bundle is one image file put through ``tar → gzip → AES-128-CBC → split`` into parts of
(by default) 10 MiB, named ``NAME.part.NN``, plus ``NAME.manifest.xml`` describing them::

    <manifest>
      <version>2007-10-10</version>
      <bundler><name/><version/><release/></bundler>
      <machine_configuration>architecture, kernel_id, ramdisk_id, block_device_mapping
      </machine_configuration>
      <image>
        name, user, type (machine|kernel|ramdisk), digest (SHA1 of the tar stream),
        size (the image file's), bundled_size (all parts), ec2_encrypted_key/iv (the AES key
        and IV, hex, RSA-encrypted PKCS#1 v1.5 to the cloud's key, hex), user_encrypted_*,
        parts count=N / part index=i / filename, digest (SHA1 of the part)
      </image>
      <signature/>   (the bundling user's RSA-SHA1 signature of machine_configuration+image)
    </manifest>

As euca2ools does, the RSA-encrypted plaintext is the *hex text* of the key and IV.
eucalite's own importer makes unencrypted bundles (tar → gzip → split): their manifests have
no ``ec2_encrypted_key`` element, which is how :func:`unbundle` knows to skip AES.

Everything streams: :func:`eucalite.compute.bundling.make_bundle` spools the bundled bytes
to an anonymous temporary file (the manifest needs every part's digest before any part can
be handed out) and :func:`unbundle` pipes parts through decryption, gunzip and untar chunk
by chunk (:mod:`eucalite.cluster.unbundle`, which a node runs with the AES key and IV the
controller decrypted for it: :func:`bundle_key`), so memory stays at a few chunks plus one
part (spooled to disk when large) whatever the image size.
"""
from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable
from xml.etree import ElementTree as ET

from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding

from .. import integers
from ..cluster.unbundle import CorruptBundle, unpack
from ..errors import ec2 as ec2_errors

PART_SIZE = 10 * 1024 * 1024
KINDS = ("machine", "kernel", "ramdisk")
#: A manifest is a few KiB even for a 100-part image; refuse anything absurd before parsing.
MAX_MANIFEST_BYTES = 1024 * 1024


class InvalidManifest(ec2_errors.InvalidManifest):
    """The manifest cannot be read, parsed or trusted."""


@dataclass
class Manifest:
    """What a manifest says, as plain values."""

    name: str
    kind: str                                   # machine | kernel | ramdisk
    arch: str | None
    parts: list[tuple[str, str]]                # (filename, sha1 hex), in index order
    image_size: int | None
    bundled_size: int | None
    digest: str | None                          # SHA1 hex of the tar stream
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    user: str | None = None
    encrypted_key: str | None = None            # hex of the RSA ciphertext, None: plain
    encrypted_iv: str | None = None
    block_devices: dict[str, str] = field(default_factory=dict)   # virtual -> device

    @property
    def encrypted(self) -> bool:
        return self.encrypted_key is not None

    def to_json(self) -> dict:
        """What :class:`~eucalite.compute.models.Image` keeps in ``manifest_json``."""
        return {"name": self.name, "kind": self.kind, "parts": [list(p) for p in self.parts],
                "image_size": self.image_size, "bundled_size": self.bundled_size,
                "digest": self.digest, "encrypted_key": self.encrypted_key,
                "encrypted_iv": self.encrypted_iv, "arch": self.arch,
                "kernel_id": self.kernel_id, "ramdisk_id": self.ramdisk_id,
                "user": self.user, "block_devices": self.block_devices}

    @classmethod
    def from_json(cls, data: dict) -> "Manifest":
        data = dict(data)
        data["parts"] = [tuple(part) for part in data.get("parts", [])]
        return cls(**data)


# --- parsing -----------------------------------------------------------------------------

def parse_manifest(xml: bytes) -> Manifest:
    """Parse a bundle manifest; anything malformed is :class:`InvalidManifest`."""
    if len(xml) > MAX_MANIFEST_BYTES:
        raise InvalidManifest("The manifest is larger than any bundle manifest can be.")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:
        # No entity expansion from user-supplied XML (billion laughs).
        raise InvalidManifest("The manifest must not contain a DOCTYPE.")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as error:
        raise InvalidManifest(f"The manifest is not well-formed XML: {error}")
    if root.tag != "manifest":
        raise InvalidManifest(f"The manifest's root element is <{root.tag}>, not <manifest>.")
    image = _required(root, "image")
    machine = root.find("machine_configuration")
    kernel_id = _text(machine, "kernel_id")
    ramdisk_id = _text(machine, "ramdisk_id")
    kind = _text(image, "type")
    if kind is None:
        # Older euca2ools marked kernels and ramdisks with kernel_id/ramdisk_id "true".
        kind = ("kernel" if kernel_id == "true" else
                "ramdisk" if ramdisk_id == "true" else "machine")
    if kind not in KINDS:
        raise InvalidManifest(f"Unknown image type {kind!r} in the manifest.")
    if kernel_id == "true":
        kernel_id = None
    if ramdisk_id == "true":
        ramdisk_id = None
    name = _text(image, "name")
    if not name:
        raise InvalidManifest("The manifest has no image name.")
    return Manifest(
        name=name, kind=kind, arch=_text(machine, "architecture"),
        kernel_id=kernel_id, ramdisk_id=ramdisk_id, user=_text(image, "user"),
        parts=_parts(image), image_size=_int(image, "size"),
        bundled_size=_int(image, "bundled_size"), digest=_hex(image, "digest"),
        encrypted_key=_hex(image, "ec2_encrypted_key"),
        encrypted_iv=_hex(image, "ec2_encrypted_iv"),
        block_devices=_block_devices(machine))


def _required(parent: ET.Element, tag: str) -> ET.Element:
    element = parent.find(tag)
    if element is None:
        raise InvalidManifest(f"The manifest has no <{tag}> element.")
    return element


def _text(parent: ET.Element | None, tag: str) -> str | None:
    if parent is None:
        return None
    element = parent.find(tag)
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _int(parent: ET.Element, tag: str) -> int | None:
    text = _text(parent, tag)
    if text is None:
        return None
    value = integers.parse(text)
    if value is None:
        raise InvalidManifest(f"<{tag}> must be a number of bytes, not {text[:40]!r}.")
    return value


def _hex(parent: ET.Element, tag: str) -> str | None:
    text = _text(parent, tag)
    if text is None:
        return None
    try:
        bytes.fromhex(text)
    except ValueError:
        raise InvalidManifest(f"<{tag}> must be hexadecimal.")
    return text.lower()


def _parts(image: ET.Element) -> list[tuple[str, str]]:
    parts_element = _required(image, "parts")
    indexed = []
    for part in parts_element.findall("part"):
        index = integers.parse(part.get("index", ""))
        filename, digest = _text(part, "filename"), _hex(part, "digest")
        if index is None or not filename or not digest:
            raise InvalidManifest("Each <part> needs an index, a <filename> and a <digest>.")
        if "/" in filename or filename in (".", ".."):
            raise InvalidManifest(f"Part filename {filename!r} must not name a directory.")
        indexed.append((index, filename, digest))
    indexed.sort()
    if not indexed or [index for index, _, _ in indexed] != list(range(len(indexed))):
        raise InvalidManifest("The manifest's parts must be numbered 0, 1, 2, … without gaps.")
    count = parts_element.get("count")
    if count is not None and count != str(len(indexed)):
        raise InvalidManifest(f"The manifest lists {len(indexed)} parts but says count={count}.")
    return [(filename, digest) for _, filename, digest in indexed]


def _block_devices(machine: ET.Element | None) -> dict[str, str]:
    if machine is None:
        return {}
    mappings = {}
    for mapping in machine.findall("block_device_mapping/mapping"):
        virtual, device = _text(mapping, "virtual"), _text(mapping, "device")
        if virtual and device:
            mappings[virtual] = device
    return mappings


# --- unpacking ---------------------------------------------------------------------------

def _rsa_decrypt(private_key, ciphertext_hex: str, what: str) -> bytes:
    try:
        plain = private_key.decrypt(bytes.fromhex(ciphertext_hex), rsa_padding.PKCS1v15())
    except ValueError:
        raise CorruptBundle(f"The bundle's {what} was not encrypted to this cloud's key.")
    if len(plain) == 32:                 # hex text, as euca2ools encrypts it
        try:
            return binascii.unhexlify(plain)
        except binascii.Error:
            pass
    if len(plain) == 16:                 # raw bytes, as some other bundlers do
        return plain
    raise CorruptBundle(f"The bundle's {what} is not a 128-bit AES value.")


def bundle_key(manifest: Manifest, private_key) -> tuple[bytes, bytes] | None:
    """The AES (key, IV) of an encrypted bundle, decrypted with the cloud's *private_key*;
    None for a plain one. CorruptBundle when they were not encrypted to that key."""
    if not manifest.encrypted:
        return None
    if private_key is None:
        raise CorruptBundle("The bundle is encrypted and no cloud key was given.")
    if manifest.encrypted_iv is None:
        raise InvalidManifest("The manifest has an encrypted key but no encrypted IV.")
    return (_rsa_decrypt(private_key, manifest.encrypted_key, "AES key"),
            _rsa_decrypt(private_key, manifest.encrypted_iv, "AES IV"))


def unbundle(manifest: Manifest, read_part: Callable[[str], Iterable[bytes]],
             write: BinaryIO, private_key=None) -> int:
    """Reassemble the image of *manifest* into the file *write*; returns its size.

    *read_part(filename)* yields a part's bytes. Each part's SHA1 and the tar stream's SHA1
    are verified (:class:`CorruptBundle` otherwise); an encrypted bundle needs the cloud's
    *private_key*. On an error *write* holds a partial image: the caller discards it.
    The unpacking itself is :func:`eucalite.cluster.unbundle.unpack`, which nodes run too.
    """
    key, iv = bundle_key(manifest, private_key) or (None, None)
    return unpack(manifest.parts, read_part, write, digest=manifest.digest,
                  image_size=manifest.image_size, bundled_size=manifest.bundled_size,
                  key=key, iv=iv)
