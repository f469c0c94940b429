"""S3 flexible checksums: the algorithms, their header names, and multipart composites.

S3 lets a client protect an upload with one of :data:`ALGORITHMS`, sent either as a header
``x-amz-checksum-<alg>`` (base64 of the raw big-endian digest) or as an aws-chunked trailer
of the same name announced by ``x-amz-trailer``; ``x-amz-sdk-checksum-algorithm`` alone asks
S3 to compute and store it. This module holds the incremental digests (:func:`new`), the
``COMPOSITE`` checksum of a multipart object (:func:`composite`) and the rule picking the
algorithm a request uses (:func:`algorithm_from_headers`). Verifying a body against the value
the client sent is :mod:`eucalite.s3.payload`'s job.

CRC32 comes from :mod:`zlib`, CRC32C and CRC64NVME from ``awscrt.checksums`` (the C
implementations the AWS SDKs use), SHA-1 and SHA-256 from :mod:`hashlib`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from typing import Callable, Mapping

from awscrt import checksums as _crt

from ..errors.s3 import InvalidRequest

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")

HEADER_PREFIX = "x-amz-checksum-"
SDK_ALGORITHM_HEADER = "x-amz-sdk-checksum-algorithm"
TRAILER_HEADER = "x-amz-trailer"

#: ``x-amz-checksum-*`` headers that name something other than a checksum value
#: (``x-amz-checksum-type`` on multipart, ``x-amz-checksum-algorithm`` on CreateMultipartUpload,
#: ``x-amz-checksum-mode`` on GetObject).
_NOT_VALUE_HEADERS = frozenset({"x-amz-checksum-type", "x-amz-checksum-algorithm",
                                "x-amz-checksum-mode"})


def normalize(algorithm: str) -> str:
    """*algorithm* as listed in :data:`ALGORITHMS` (case-insensitive), else InvalidRequest."""
    name = (algorithm or "").strip().upper()
    if name not in ALGORITHMS:
        raise InvalidRequest(f"Checksum algorithm {algorithm!r} is not supported; "
                             f"use one of {', '.join(ALGORITHMS)}.")
    return name


def header_name(algorithm: str) -> str:
    """The header (and trailer) carrying *algorithm*'s value: ``x-amz-checksum-crc32``..."""
    return HEADER_PREFIX + normalize(algorithm).lower()


class Checksum:
    """An incremental digest: ``update`` with bytes, then ``digest`` (raw) or ``b64``."""

    algorithm: str = ""
    size: int = 0                         # bytes in the raw digest

    def update(self, data: bytes) -> None:
        raise NotImplementedError

    def digest(self) -> bytes:
        raise NotImplementedError

    def b64(self) -> str:
        """The digest as the ``x-amz-checksum-*`` header carries it."""
        return base64.b64encode(self.digest()).decode("ascii")


class _CrcChecksum(Checksum):
    """A CRC kept as an integer; the digest is its big-endian bytes."""

    def __init__(self, algorithm: str, size: int, function: Callable[[bytes, int], int]):
        self.algorithm, self.size, self._function = algorithm, size, function
        self._value = 0

    def update(self, data: bytes) -> None:
        if data:
            self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self.size, "big")


class _HashChecksum(Checksum):
    """A :mod:`hashlib` digest."""

    def __init__(self, algorithm: str, hash_name: str):
        self.algorithm = algorithm
        self._hash = hashlib.new(hash_name)
        self.size = self._hash.digest_size

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


_FACTORIES: dict[str, Callable[[], Checksum]] = {
    "CRC32": lambda: _CrcChecksum("CRC32", 4, zlib.crc32),
    "CRC32C": lambda: _CrcChecksum("CRC32C", 4, _crt.crc32c),
    "CRC64NVME": lambda: _CrcChecksum("CRC64NVME", 8, _crt.crc64nvme),
    "SHA1": lambda: _HashChecksum("SHA1", "sha1"),
    "SHA256": lambda: _HashChecksum("SHA256", "sha256"),
}


def new(algorithm: str) -> Checksum:
    """A fresh incremental checksum for *algorithm*; InvalidRequest if it is unknown."""
    return _FACTORIES[normalize(algorithm)]()


def digest_size(algorithm: str) -> int:
    """Bytes in *algorithm*'s raw digest (4, 8, 20 or 32)."""
    return new(algorithm).size


def decode(algorithm: str, value: str) -> bytes | None:
    """The raw digest a base64 header value stands for, or None when it is not valid
    base64 of exactly *algorithm*'s digest size."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == digest_size(algorithm) else None


def composite(algorithm: str, part_digests: list[bytes]) -> str:
    """The ``COMPOSITE`` checksum of a multipart object: *algorithm* over the concatenated
    raw part digests, base64, then ``-N`` for N parts."""
    checksum = new(algorithm)
    for digest in part_digests:
        checksum.update(digest)
    return f"{checksum.b64()}-{len(part_digests)}"


def _value_header_algorithms(headers: Mapping[str, str]) -> list[str]:
    """Algorithms named by the ``x-amz-checksum-<alg>`` value headers present."""
    found = []
    for name in headers:
        if name.startswith(HEADER_PREFIX) and name not in _NOT_VALUE_HEADERS:
            found.append(normalize(name[len(HEADER_PREFIX):]))
    return found


def _trailer_algorithm(headers: Mapping[str, str]) -> str | None:
    """The algorithm of the checksum trailer ``x-amz-trailer`` announces, if any."""
    names = [part.strip().lower() for part in headers.get(TRAILER_HEADER, "").split(",")]
    checksums = [normalize(name[len(HEADER_PREFIX):]) for name in names
                 if name.startswith(HEADER_PREFIX)]
    if len(checksums) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- trailer. Multiple "
                             "checksum types are not allowed.")
    return checksums[0] if checksums else None


def algorithm_from_headers(headers: Mapping[str, str]) -> str | None:
    """The checksum algorithm a request uses (*headers* have lower-case names), or None.

    Taken from ``x-amz-sdk-checksum-algorithm``, the single ``x-amz-checksum-<alg>`` value
    header, or the ``x-amz-checksum-<alg>`` trailer named by ``x-amz-trailer``. Sources that
    disagree, or several value headers, are InvalidRequest as in S3.
    """
    sdk = headers.get(SDK_ALGORITHM_HEADER)
    sources = {"x-amz-sdk-checksum-algorithm": normalize(sdk)} if sdk else {}
    values = _value_header_algorithms(headers)
    if len(values) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum "
                             "Types are not allowed.")
    if values:
        sources["x-amz-checksum-" + values[0].lower()] = values[0]
    trailer = _trailer_algorithm(headers)
    if trailer:
        sources["x-amz-trailer"] = trailer
    if len(set(sources.values())) > 1:
        described = ", ".join(f"{name}: {alg}" for name, alg in sources.items())
        raise InvalidRequest(f"The checksum algorithms the request names disagree "
                             f"({described}).")
    return next(iter(sources.values()), None)
