"""Making EC2 / euca2ools AMI bundles (the format is described in
:mod:`eucalite.compute.bundle`): an image file through ``tar → gzip → AES-128-CBC (or not)
→ split`` into parts, and the manifest describing them. Pure: no database.

:func:`make_bundle` spools the bundled bytes to an anonymous temporary file (the manifest
needs every part's digest before any part can be handed out), so memory stays at a few
chunks whatever the image size.
"""
from __future__ import annotations

import binascii
import hashlib
import os
import secrets
import tarfile
import tempfile
import zlib
from typing import BinaryIO, Iterator
from xml.etree import ElementTree as ET

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .bundle import KINDS, PART_SIZE

MANIFEST_VERSION = "2007-10-10"
BUNDLER = ("eucalite", "1.0", "1")
#: euca2ools' default mapping for instance-store images.
DEFAULT_BLOCK_DEVICES = {"ami": "sda1", "root": "/dev/sda1", "ephemeral0": "sda2",
                         "swap": "sda3"}


class _PartWriter:
    """Writes the bundled stream to *spool*, cutting it into parts and hashing each."""

    def __init__(self, spool: BinaryIO, part_size: int):
        self.spool = spool
        self.part_size = part_size
        self.parts: list[tuple[int, str]] = []          # (size, sha1 hex)
        self._hash = hashlib.sha1()
        self._filled = 0
        self.total = 0

    def write(self, data: bytes) -> None:
        while data:
            room = self.part_size - self._filled
            piece, data = data[:room], data[room:]
            self.spool.write(piece)
            self._hash.update(piece)
            self._filled += len(piece)
            self.total += len(piece)
            if self._filled == self.part_size:
                self._cut()

    def _cut(self) -> None:
        self.parts.append((self._filled, self._hash.hexdigest()))
        self._hash, self._filled = hashlib.sha1(), 0

    def close(self) -> None:
        if self._filled or not self.parts:      # an empty bundle still has one part
            self._cut()


class _TarSink:
    """What tarfile writes into: hashes the tar stream, gzips it, encrypts it (or not)."""

    def __init__(self, out: _PartWriter, key: bytes | None, iv: bytes | None):
        self.out = out
        self.sha1 = hashlib.sha1()
        self.gzip = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self.encryptor = self.padder = None
        if key is not None:
            self.encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
            self.padder = padding.PKCS7(128).padder()

    def write(self, data: bytes) -> int:
        self.sha1.update(data)
        self._emit(self.gzip.compress(data))
        return len(data)

    def _emit(self, data: bytes, final: bool = False) -> None:
        if self.encryptor is not None:
            data = self.encryptor.update(self.padder.update(data))
            if final:
                data += self.encryptor.update(self.padder.finalize()) + \
                    self.encryptor.finalize()
        if data:
            self.out.write(data)

    def finish(self) -> None:
        self._emit(self.gzip.flush(), final=True)


def make_bundle(source: str | os.PathLike, name: str, kind: str = "machine",
                arch: str = "x86_64", *, encrypt_with=None, kernel_id: str | None = None,
                ramdisk_id: str | None = None, part_size: int = PART_SIZE,
                user: str = "", user_key=None, sign_with=None,
                block_devices: dict[str, str] | None = None
                ) -> tuple[bytes, Iterator[tuple[str, bytes]]]:
    """Bundle the image file *source* as *name*: ``(manifest XML, iterator of parts)``.

    *encrypt_with* is the cloud's RSA public key (a ``cryptography`` key): the AES key and IV
    are encrypted to it, as euca-bundle-image does with the cloud certificate; None makes an
    unencrypted bundle. *user_key* (public) adds the ``user_encrypted_*`` copies and
    *sign_with* (private) fills ``<signature>``; both are optional here because eucalite
    neither issues user certificates nor verifies bundle signatures. The parts iterator
    reads from a temporary file that is removed once the iterator is exhausted or dropped.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    key = iv = None
    if encrypt_with is not None:
        key, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    spool = tempfile.TemporaryFile()
    try:
        writer = _PartWriter(spool, part_size)
        sink = _TarSink(writer, key, iv)
        image_size = os.path.getsize(source)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            tar.add(os.fspath(source), arcname=os.path.basename(source), recursive=False)
        sink.finish()
        writer.close()
    except BaseException:
        spool.close()
        raise
    filenames = [f"{name}.part.{index:02d}" for index in range(len(writer.parts))]
    manifest = _manifest_xml(
        name=name, kind=kind, arch=arch, kernel_id=kernel_id, ramdisk_id=ramdisk_id,
        user=user, digest=sink.sha1.hexdigest(), image_size=image_size,
        bundled_size=writer.total, key=key, iv=iv, cloud_key=encrypt_with,
        user_key=user_key, sign_with=sign_with,
        parts=[(filename, digest) for filename, (_, digest) in zip(filenames, writer.parts)],
        block_devices=DEFAULT_BLOCK_DEVICES if block_devices is None else block_devices)
    sizes = [size for size, _ in writer.parts]
    return manifest, _read_parts(spool, filenames, sizes)


def _read_parts(spool: BinaryIO, filenames: list[str],
                sizes: list[int]) -> Iterator[tuple[str, bytes]]:
    """Hand out the spooled parts one at a time; closing the spool deletes it."""
    try:
        spool.seek(0)
        for filename, size in zip(filenames, sizes):
            yield filename, spool.read(size)
    finally:
        spool.close()


def _rsa_encrypt_hex(public_key, secret: bytes) -> str:
    # euca2ools encrypts the hex text of the key, not the raw bytes.
    return public_key.encrypt(binascii.hexlify(secret), rsa_padding.PKCS1v15()).hex()


def _manifest_xml(*, name, kind, arch, kernel_id, ramdisk_id, user, digest, image_size,
                  bundled_size, key, iv, cloud_key, user_key, sign_with, parts,
                  block_devices) -> bytes:
    root = ET.Element("manifest")
    ET.SubElement(root, "version").text = MANIFEST_VERSION
    bundler = ET.SubElement(root, "bundler")
    for tag, value in zip(("name", "version", "release"), BUNDLER):
        ET.SubElement(bundler, tag).text = value
    machine = ET.SubElement(root, "machine_configuration")
    ET.SubElement(machine, "architecture").text = arch
    if block_devices:
        mapping = ET.SubElement(machine, "block_device_mapping")
        for virtual, device in block_devices.items():
            item = ET.SubElement(mapping, "mapping")
            ET.SubElement(item, "virtual").text = virtual
            ET.SubElement(item, "device").text = device
    if kernel_id:
        ET.SubElement(machine, "kernel_id").text = kernel_id
    if ramdisk_id:
        ET.SubElement(machine, "ramdisk_id").text = ramdisk_id
    image = ET.SubElement(root, "image")
    ET.SubElement(image, "name").text = name
    ET.SubElement(image, "user").text = user
    ET.SubElement(image, "type").text = kind
    ET.SubElement(image, "digest", algorithm="SHA1").text = digest
    ET.SubElement(image, "size").text = str(image_size)
    ET.SubElement(image, "bundled_size").text = str(bundled_size)
    if key is not None:
        ET.SubElement(image, "ec2_encrypted_key", algorithm="AES-128-CBC").text = \
            _rsa_encrypt_hex(cloud_key, key)
        if user_key is not None:
            ET.SubElement(image, "user_encrypted_key", algorithm="AES-128-CBC").text = \
                _rsa_encrypt_hex(user_key, key)
        ET.SubElement(image, "ec2_encrypted_iv").text = _rsa_encrypt_hex(cloud_key, iv)
        if user_key is not None:
            ET.SubElement(image, "user_encrypted_iv").text = _rsa_encrypt_hex(user_key, iv)
    parts_element = ET.SubElement(image, "parts", count=str(len(parts)))
    for index, (filename, part_digest) in enumerate(parts):
        part = ET.SubElement(parts_element, "part", index=str(index))
        ET.SubElement(part, "filename").text = filename
        ET.SubElement(part, "digest", algorithm="SHA1").text = part_digest
    signature = ""
    if sign_with is not None:
        signed = ET.tostring(machine) + ET.tostring(image)
        signature = sign_with.sign(signed, rsa_padding.PKCS1v15(), hashes.SHA1()).hex()
    ET.SubElement(root, "signature").text = signature
    return b'<?xml version="1.0" ?>\n' + ET.tostring(root)
