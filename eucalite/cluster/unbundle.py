"""Unpacking an EC2 bundle's parts back into its image file, as a node does to fill its cache.

A bundle is one image file put through ``tar → gzip → AES-128-CBC → split`` (the format and
its manifest: :mod:`eucalite.compute.bundle`). :func:`unpack` reverses it from plain values
(the parts' names and SHA1s, the tar stream's SHA1, the sizes and the AES key and IV already
decrypted), so it runs where the cloud's private key is not: on a node that fetched the
parts over the internal API (:mod:`.nodeimages`) as on the controller's own host.

Everything streams: parts are piped through decryption, gunzip and untar chunk by chunk, so
memory stays at a few chunks plus one part (spooled to disk when large) whatever the image
size. A part is released downstream only once its SHA1 matches, so a corrupt part is
reported as such rather than as whatever decryption or gunzip makes of it.
"""
from __future__ import annotations

import hashlib
import tarfile
import tempfile
import zlib
from typing import BinaryIO, Callable, Iterable, Iterator, Sequence

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ..errors import ec2 as ec2_errors

CHUNK = 1024 * 1024
#: A part up to this size is checked in memory before it goes downstream, a larger one on disk.
SPOOL_IN_MEMORY = 20 * 1024 * 1024


class CorruptBundle(ec2_errors.InvalidManifest):
    """The parts do not match their manifest (digest, size, padding, archive)."""


def _decrypted(chunks: Iterable[bytes], key: bytes, iv: bytes) -> Iterator[bytes]:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    for chunk in chunks:
        yield unpadder.update(decryptor.update(chunk))
    try:
        yield unpadder.update(decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise CorruptBundle("The bundle does not decrypt (bad padding): wrong key or "
                            "truncated parts.")


def _verified_parts(parts: Sequence[tuple[str, str]], bundled_size: int | None,
                    read_part: Callable[[str], Iterable[bytes]]) -> Iterator[bytes]:
    """Every part's bytes in order, each released only once its SHA1 matches."""
    total = 0
    for filename, expected in parts:
        digest = hashlib.sha1()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            for chunk in read_part(filename):
                digest.update(chunk)
                total += len(chunk)
                spool.write(chunk)
            if digest.hexdigest() != expected:
                raise CorruptBundle(f"Part {filename} does not match its digest in the "
                                    "manifest.")
            spool.seek(0)
            while chunk := spool.read(CHUNK):
                yield chunk
    if bundled_size is not None and total != bundled_size:
        raise CorruptBundle(f"The parts hold {total} bytes; the manifest says "
                            f"{bundled_size}.")


def _gunzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        for chunk in chunks:
            while chunk:
                # Bounded output per step: a gzip bomb cannot balloon memory.
                yield inflater.decompress(chunk, CHUNK)
                chunk = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as error:
        raise CorruptBundle(f"The bundle is not a gzip stream: {error}")
    if not inflater.eof:
        raise CorruptBundle("The bundle's gzip stream is truncated.")


class _HashingStream:
    """``read(n)`` over an iterator of chunks, hashing (SHA1) everything read."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = bytearray()
        self.sha1 = hashlib.sha1()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        self.sha1.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def unpack(parts: Sequence[tuple[str, str]], read_part: Callable[[str], Iterable[bytes]],
           write: BinaryIO, *, digest: str | None, image_size: int | None,
           bundled_size: int | None, key: bytes | None = None,
           iv: bytes | None = None) -> int:
    """Reassemble a bundle's image into the file *write*; returns its size.

    *parts*: (filename, SHA1 hex) in order; *read_part(filename)* yields that part's bytes.
    Each part's SHA1, the parts' total (*bundled_size*), the tar stream's SHA1 (*digest*)
    and the image's size are verified when given (:class:`CorruptBundle` otherwise). *key*
    and *iv* (16 bytes each) decrypt an encrypted bundle; without them the parts are taken
    as plain gzip. On an error *write* holds a partial image: the caller discards it.
    """
    chunks: Iterable[bytes] = _verified_parts(parts, bundled_size, read_part)
    if key is not None:
        if iv is None or len(key) != 16 or len(iv) != 16:
            raise CorruptBundle("The bundle's AES key and IV must be 128-bit values.")
        chunks = _decrypted(chunks, key, iv)
    stream = _HashingStream(iter(_gunzipped(chunks)))
    written = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                source = tar.extractfile(member)
                while True:
                    block = source.read(CHUNK)
                    if not block:
                        break
                    write.write(block)
                    written += len(block)
                break           # one image per bundle; the digest still covers the rest
            else:
                raise CorruptBundle("The bundle's archive holds no image file.")
    except tarfile.TarError as error:
        raise CorruptBundle(f"The bundle's archive is unreadable: {error}")
    stream.drain()              # the digest covers the tar padding after the file
    if digest is not None and stream.sha1.hexdigest() != digest:
        raise CorruptBundle("The image does not match the manifest's digest.")
    if image_size is not None and written != image_size:
        raise CorruptBundle(f"The image holds {written} bytes; the manifest says "
                            f"{image_size}.")
    return written
