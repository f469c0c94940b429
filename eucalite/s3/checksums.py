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
from dataclasses import dataclass
from typing import Callable, Mapping

from awscrt import checksums as _crt

from ..errors.s3 import BadDigest, InvalidPart, InvalidRequest

ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")

HEADER_PREFIX = "x-amz-checksum-"
#: What S3 computes for an object uploaded without a checksum (since December 2024).
DEFAULT = "CRC64NVME"
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


class Summing:
    """A reader (``read(n)``) that also computes *algorithm*'s checksum of the bytes read
    through it: S3's default checksum for a write whose body is not a
    :class:`~eucalite.s3.payload.BodyReader` (POST Object, a copied part). Once it has
    returned ``b""``, ``checksum_algorithm`` and ``checksum_b64`` are the object's; every
    other attribute is the inner reader's."""

    def __init__(self, reader, algorithm: str):
        self._reader, self._checksum = reader, new(algorithm)
        self.checksum_algorithm = self._checksum.algorithm

    def read(self, n: int = -1) -> bytes:
        data = self._reader.read(n)
        self._checksum.update(data)
        return data

    @property
    def checksum_b64(self) -> str:
        return self._checksum.b64()

    def __getattr__(self, name):
        return getattr(self._reader, name)


def of_chunks(algorithm: str, chunks) -> str:
    """*algorithm*'s checksum (base64) of the bytes of the iterable *chunks*."""
    checksum = new(algorithm)
    for chunk in chunks:
        checksum.update(chunk)
    return checksum.b64()


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


def without_values(headers: Mapping[str, str]) -> dict[str, str]:
    """*headers* less the ``x-amz-checksum-<alg>`` values (CompleteMultipartUpload's are
    the object's checksum, not its body's)."""
    return {name: value for name, value in headers.items()
            if not name.startswith(HEADER_PREFIX) or name in _NOT_VALUE_HEADERS}


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


# --- multipart checksum types ---------------------------------------------------------

COMPOSITE, FULL_OBJECT = "COMPOSITE", "FULL_OBJECT"
TYPE_HEADER = "x-amz-checksum-type"

#: The checksum types each algorithm allows on a multipart upload, its default first: only
#: a CRC can be combined from its parts, and CRC64NVME has no composite form.
_TYPES = {"CRC32": (COMPOSITE, FULL_OBJECT), "CRC32C": (COMPOSITE, FULL_OBJECT),
          "CRC64NVME": (FULL_OBJECT,), "SHA1": (COMPOSITE,), "SHA256": (COMPOSITE,)}


def upload_type(algorithm: str | None, requested: str | None) -> str | None:
    """The checksum type of a new multipart upload (CreateMultipartUpload's
    ``x-amz-checksum-algorithm`` and ``x-amz-checksum-type``): the requested one when the
    algorithm allows it, else the algorithm's default; None without an algorithm.
    InvalidRequest, worded as S3, for an unknown type, a type without an algorithm, or a
    pairing S3 refuses (SHA as FULL_OBJECT, CRC64NVME as COMPOSITE)."""
    if requested is None:
        return _TYPES[normalize(algorithm)][0] if algorithm else None
    name = requested.strip().upper()
    if name not in (COMPOSITE, FULL_OBJECT):
        raise InvalidRequest("Value for x-amz-checksum-type header is invalid.")
    if not algorithm:
        raise InvalidRequest("The x-amz-checksum-type header can only be used with the "
                             "x-amz-checksum-algorithm header.")
    algorithm = normalize(algorithm)
    if name not in _TYPES[algorithm]:
        raise InvalidRequest(f"The {name} checksum type cannot be used with the "
                             f"{algorithm.lower()} checksum algorithm.")
    return name


# --- combining CRCs -------------------------------------------------------------------

#: Width and reflected polynomial of each CRC. All three start from and finish with all
#: ones, so crc(A + B) = crc(A) * x^(8 * len(B)) mod P  xor  crc(B) (zlib's crc32_combine).
_CRCS = {"CRC32": (32, 0xEDB88320), "CRC32C": (32, 0x82F63B78),
         "CRC64NVME": (64, 0x9A6C9329AC4BC9B5)}


def _multiply(a: int, b: int, width: int, poly: int) -> int:
    """a * b modulo the polynomial, both in reflected form (bit width-1 is x^0)."""
    product, mask = 0, 1 << (width - 1)
    while a:
        if a & mask:
            product ^= b
            a ^= mask
        mask >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1
    return product


def _power_of_x(bits: int, width: int, poly: int) -> int:
    """x^bits modulo the polynomial, by repeated squaring."""
    result, square = 1 << (width - 1), 1 << (width - 2)          # x^0, x^1
    while bits:
        if bits & 1:
            result = _multiply(square, result, width, poly)
        square = _multiply(square, square, width, poly)
        bits >>= 1
    return result


def combine(algorithm: str, first: int, second: int, second_length: int) -> int:
    """The CRC of A + B from crc(A) = *first*, crc(B) = *second* and len(B) in bytes."""
    width, poly = _CRCS[normalize(algorithm)]
    return _multiply(_power_of_x(8 * second_length, width, poly), first, width, poly) ^ second


def full_object(algorithm: str, parts: list[tuple[bytes, int]]) -> str:
    """The FULL_OBJECT checksum (base64) of an object made of *parts*: (raw CRC, size)
    each, in order."""
    value = 0
    for raw, size in parts:
        value = combine(algorithm, value, int.from_bytes(raw, "big"), size) if size else value
    return base64.b64encode(value.to_bytes(digest_size(algorithm), "big")).decode("ascii")


# --- CompleteMultipartUpload ----------------------------------------------------------

@dataclass
class PartClaim:
    """One part of a CompleteMultipartUpload: what was stored and what the client sent."""
    number: int
    size: int
    stored: str | None                  # base64 checksum kept at UploadPart
    algorithm: str | None = None        # of the Checksum<ALG> element sent, if any
    sent: str | None = None


def _claimed_value(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """(algorithm, value) of the one whole-object ``x-amz-checksum-<alg>`` header."""
    algorithms = _value_header_algorithms(headers)
    if len(algorithms) > 1:
        raise InvalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum "
                             "Types are not allowed.")
    if not algorithms:
        return None
    return algorithms[0], headers[header_name(algorithms[0])].strip()


def of_multipart(algorithm: str | None, checksum_type: str | None, parts: list[PartClaim],
                 headers: Mapping[str, str], upload_id: str) -> tuple[str, str, str] | None:
    """(algorithm, value, type) of the object a CompleteMultipartUpload makes, or None when
    it can have no checksum; raises S3's errors for what the request claims. An upload
    created without an algorithm gets S3's default, a FULL_OBJECT :data:`DEFAULT` combined
    from the one each part was given when uploaded (*parts*' ``stored``).

    *headers* (lower-case names) may carry ``x-amz-checksum-type`` (must be the upload's),
    the whole object's ``x-amz-checksum-<alg>`` (the upload's algorithm, well-formed; a
    mismatch is BadDigest) and ``x-amz-mp-object-size``. A part's Checksum<ALG> must be the
    upload's algorithm and match what UploadPart stored (InvalidPart); a COMPOSITE upload
    needs one for every part.
    """
    sent_type = headers.get(TYPE_HEADER)
    if sent_type is not None and sent_type.strip().upper() != (checksum_type or ""):
        raise InvalidRequest(f"The upload was created using the {checksum_type or 'null'} "
                             "checksum mode. The complete request must use the same "
                             "checksum mode.")
    _check_object_size(headers, parts)
    claimed = _claimed_value(headers)
    if algorithm is None:
        if claimed is not None:
            raise InvalidRequest("The upload was created without a checksum algorithm; the "
                                 f"complete request may not carry x-amz-checksum-"
                                 f"{claimed[0].lower()}.")
        if not parts or not all(part.stored for part in parts):
            return None                 # parts from before S3's default checksum
        return DEFAULT, full_object(DEFAULT, [(base64.b64decode(part.stored), part.size)
                                              for part in parts]), FULL_OBJECT
    for part in parts:
        _check_part(algorithm, checksum_type, part, upload_id)
    if not all(part.stored for part in parts):
        return None                     # parts from before the upload kept checksums
    raw = [base64.b64decode(part.stored) for part in parts]
    if checksum_type == FULL_OBJECT:
        value = full_object(algorithm, list(zip(raw, (part.size for part in parts))))
    else:
        value = composite(algorithm, raw)
    if claimed is not None:
        _check_claim(algorithm, claimed, value)
    return algorithm, value, checksum_type or COMPOSITE


def _check_object_size(headers: Mapping[str, str], parts: list[PartClaim]) -> None:
    text = headers.get("x-amz-mp-object-size")
    if text is None:
        return
    size = sum(part.size for part in parts)
    if not text.strip().isdigit():
        raise InvalidRequest("Value for x-amz-mp-object-size header is invalid.")
    if int(text) != size:
        raise InvalidRequest(f"The provided 'x-amz-mp-object-size' header value {text.strip()} "
                             f"does not match what was computed: {size}")


def _check_part(algorithm: str, checksum_type: str | None, part: PartClaim,
                upload_id: str) -> None:
    if part.algorithm is None:
        if checksum_type != FULL_OBJECT:
            raise InvalidRequest(f"The upload was created using a {algorithm.lower()} "
                                 "checksum. The complete request must include the checksum "
                                 f"for each part. It was missing for part {part.number} in "
                                 "the request.")
        return
    if part.algorithm != algorithm:
        raise InvalidRequest(f"The upload was created using a {algorithm.lower()} checksum. "
                             "The complete request must use the same checksum algorithm "
                             f"for each part; part {part.number} has "
                             f"{part.algorithm.lower()}.")
    if decode(algorithm, part.sent or "") is None or part.sent.strip() != part.stored:
        raise InvalidPart("One or more of the specified parts could not be found. The part "
                          "may not have been uploaded, or the specified entity tag may not "
                          "match the part's entity tag.", UploadId=upload_id,
                          PartNumber=str(part.number))


def _check_claim(algorithm: str, claimed: tuple[str, str], value: str) -> None:
    name, sent = claimed
    if name != algorithm:
        raise InvalidRequest(f"The upload was created using a {algorithm.lower()} checksum. "
                             "The complete request must use the same checksum algorithm.")
    bare = sent.rsplit("-", 1)[0] if "-" in sent else sent
    if decode(algorithm, bare) is None:
        raise InvalidRequest(f"Value for {header_name(algorithm)} header is invalid.")
    if bare != value.split("-", 1)[0]:
        raise BadDigest(f"The {algorithm} you specified did not match the calculated "
                        "checksum.")
