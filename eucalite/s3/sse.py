"""Server-side encryption of object data at rest: SSE-S3 (keys kept by the cloud) and SSE-C
(the customer's key, sent with every request and never stored).

Keys. SSE-S3 is envelope encryption: every object version (and every multipart upload) gets
its own random 256-bit data key, stored only wrapped (AES-GCM) by the cloud's master key,
``<store root>/keys/master.key`` (0600, made atomically at first use, outside ``objects/``
so nothing ever serves it). SSE-C uses the customer's 256-bit key as the data key; what is
kept is its MD5 (echoed as AWS does) and a salted HMAC-SHA256 of it, enough to tell a wrong
key from the right one, not to recover it.

Data. Segments are AES-256-CTR ciphertext, byte for byte as long as the plaintext, so sizes,
ranges and part offsets are the plaintext's and a Range GET decrypts from any offset
(counter = IV + offset // 16). Nonce rule: a (key, IV) pair never encrypts two different
byte streams. Every segment write draws a fresh random 128-bit IV, recorded per segment:

- an object version's record has ``"ivs"``: one hex IV per segment, in segment order;
- a multipart upload's record has ``"parts"``: ``{segment path: hex IV}`` (a part uploaded
  again is a new file with a new IV; the replaced entry is dropped), turned into the
  object's ``"ivs"`` list at completion (:func:`completed`).

CopyObject that keeps the same key (SSE-S3 to SSE-S3, or SSE-C with the same customer key)
hard-links the segments and copies the record (wrapped key and IVs) with them: the same
bytes under the same (key, IV), nothing re-encrypted. Any other copy, and every
UploadPartCopy, decrypts the source and encrypts it again under the target's key with new
IVs (:class:`Rewrite`, :func:`encrypt_part`).

ETags: SSE-S3 keeps S3's plaintext MD5; an SSE-C object's ETag is the MD5 of its
ciphertext (of each part, for multipart), a stable value that reveals nothing of the
plaintext, as AWS's SSE-C ETags are not the data's MD5.

Every reader of object bytes goes through :func:`read`, never ``store.read`` directly.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors.s3 import AccessDenied, InvalidArgument, InvalidRequest
from .store import Stored

AES256 = "AES256"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
_WRAP_AAD = b"eucalite-sse-s3-data-key-v1"
_BLOCK = 16
_masters: dict[str, bytes] = {}
_masters_lock = threading.Lock()
_ciphers: dict[Path, AESGCM] = {}        # store root -> AES-GCM under its master key


@dataclass(frozen=True)
class CustomerKey:
    """An SSE-C key from a request (already checked against its MD5)."""

    key: bytes
    md5: str                            # base64, as the request sent it


def kms_unavailable(name: str, value: str) -> InvalidArgument:
    """The answer to any request for SSE-KMS: eucalite has no key management service, so
    the request is refused rather than stored under another kind of encryption."""
    return InvalidArgument(f"Server-side encryption with AWS KMS ({value}) is not available "
                           "in eucalite: there is no key management service. Use AES256 "
                           "(SSE-S3) or a customer-provided key (SSE-C).",
                           ArgumentName=name, ArgumentValue=value)


# --- master key --------------------------------------------------------------------------

def master_key(root: Path) -> bytes:
    """The cloud's master key under store root *root*, made on first use. Made atomically:
    written to a temp file, fsynced, then hard-linked into place, so two processes racing
    agree on one key and a crash leaves either no key or a whole one."""
    path = Path(root) / "keys" / "master.key"
    with _masters_lock:
        cached = _masters.get(str(path))
        if cached is not None:
            return cached
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temp = path.parent / f".master.{os.getpid()}.{threading.get_ident()}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, os.urandom(32))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temp, path)
            except FileExistsError:
                pass                    # another process made it first: use theirs
            finally:
                temp.unlink(missing_ok=True)
            dirfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
        key = path.read_bytes()
        if len(key) != 32:
            raise RuntimeError(f"{path} is not a 256-bit key")
        _masters[str(path)] = key
        return key


def _master_cipher(root: Path) -> AESGCM:
    """AES-GCM under the master key of *root* (made once per key: every request that reads
    or writes SSE-S3 data wraps or unwraps a data key with it)."""
    cipher = _ciphers.get(root)
    if cipher is None:
        cipher = _ciphers[root] = AESGCM(master_key(root))
    return cipher


def _wrap(root: Path, data_key: bytes) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + _master_cipher(root).encrypt(
        nonce, data_key, _WRAP_AAD)).decode()


def _unwrap(root: Path, wrapped: str) -> bytes:
    raw = base64.b64decode(wrapped)
    return _master_cipher(root).decrypt(raw[:12], raw[12:], _WRAP_AAD)


# --- records -----------------------------------------------------------------------------

def customer_record(customer: CustomerKey) -> dict:
    """The stored record of an SSE-C write: what checks the key, never the key."""
    salt = os.urandom(16)
    return {"alg": AES256, "customer": {
        "md5": customer.md5, "salt": base64.b64encode(salt).decode(),
        "mac": base64.b64encode(hmac.new(salt, customer.key, "sha256").digest()).decode()}}


def is_customer(record: dict | None) -> bool:
    return bool(record and record.get("customer"))


def headers(record: dict | None) -> dict[str, str]:
    """The response headers AWS sends for data stored under *record*."""
    if not record:
        return {}
    if is_customer(record):
        return {"x-amz-server-side-encryption-customer-algorithm": AES256,
                "x-amz-server-side-encryption-customer-key-MD5": record["customer"]["md5"]}
    return {"x-amz-server-side-encryption": record.get("alg", AES256)}


def prepare(root: Path, record: dict | None, customer: CustomerKey | None) -> dict:
    """The complete record for new data: *record* is what the writer asked for (None: the
    bucket default, SSE-S3), a customer record for SSE-C, or a finished record to reuse.
    An SSE-S3 record without a key gets a new random data key here."""
    if customer is not None:
        return record if is_customer(record) else customer_record(customer)
    record = dict(record or {"alg": AES256})
    if not record.get("key"):
        record["key"] = _wrap(root, os.urandom(32))
    return record


def check_key(record: dict | None, customer: CustomerKey | None) -> None:
    """Check the customer's key for data stored under *record* as AWS does: none for an
    SSE-C object is InvalidRequest, a different one AccessDenied, and one sent for data
    that is not SSE-C InvalidRequest."""
    if is_customer(record):
        if customer is None:
            raise InvalidRequest("The object was stored using a form of Server Side "
                                 "Encryption. The correct parameters must be provided to "
                                 "retrieve the object.")
        check_customer(record, customer, AccessDenied("Access Denied"))
    elif customer is not None:
        raise InvalidRequest("The encryption parameters are not applicable to this object.")


def data_key(root: Path, record: dict | None, customer: CustomerKey | None) -> bytes | None:
    """The key that decrypts data stored under *record*, after :func:`check_key`. None for
    data stored in the clear."""
    check_key(record, customer)
    if is_customer(record):
        return customer.key
    if not record:
        return None
    return _unwrap(root, record["key"])


def check_customer(record: dict, customer: CustomerKey, error: Exception) -> None:
    """Raise *error* unless *customer* is the key *record* was written with."""
    stored = record["customer"]
    mac = hmac.new(base64.b64decode(stored["salt"]), customer.key, "sha256").digest()
    if not hmac.compare_digest(mac, base64.b64decode(stored["mac"])):
        raise error


# --- encrypting writes -------------------------------------------------------------------

def _ctr(key: bytes, iv: bytes, offset: int):
    """An AES-CTR transformer positioned at byte *offset* of the stream that starts at
    counter *iv*."""
    counter = (int.from_bytes(iv, "big") + offset // _BLOCK) % (1 << 128)
    cipher = Cipher(algorithms.AES(key), modes.CTR(counter.to_bytes(16, "big"))).encryptor()
    if offset % _BLOCK:
        cipher.update(bytes(offset % _BLOCK))
    return cipher


class Encrypting:
    """A body reader (payload.BodyReader, HashingReader...) whose bytes come out encrypted.

    Everything else (checksums, the plaintext MD5) is the inner reader's, except that for
    SSE-C ``md5_hex`` is the ciphertext's (the ETag, see the module docstring)."""

    def __init__(self, inner, key: bytes, iv: bytes, ciphertext_etag: bool):
        self._inner = inner
        self._cipher = _ctr(key, iv, 0)
        self._md5 = hashlib.md5() if ciphertext_etag else None

    def read(self, size: int = -1) -> bytes:
        data = self._cipher.update(self._inner.read(size))
        if self._md5 is not None:
            self._md5.update(data)
        return data

    @property
    def md5_hex(self) -> str:
        return self._md5.hexdigest() if self._md5 is not None else self._inner.md5_hex

    def __getattr__(self, name):
        return getattr(self._inner, name)


def encrypt(root: Path, reader, record: dict | None,
            customer: CustomerKey | None) -> tuple[Encrypting, dict]:
    """Encrypt a single-segment write (PutObject, POST): the reader to store, and the
    object's record (its IV list has the one segment's IV)."""
    record = prepare(root, record, customer)
    iv = os.urandom(_BLOCK)
    record = {**record, "ivs": [iv.hex()]}
    return Encrypting(reader, data_key(root, record, customer), iv,
                      is_customer(record)), record


def check_upload_key(record: dict | None, customer: CustomerKey | None) -> None:
    """UploadPart / UploadPartCopy: the part must come with the upload's SSE-C key (and
    without one when the upload is not SSE-C)."""
    if is_customer(record):
        if customer is None:
            raise InvalidRequest("The multipart upload initiate requested encryption. "
                                 "Subsequent part requests must include the appropriate "
                                 "encryption parameters.")
        check_customer(record, customer, InvalidRequest(
            "The provided encryption parameters did not match the ones used originally."))
    elif customer is not None:
        raise InvalidRequest("The multipart upload initiate did not request encryption with "
                             "a customer-provided key: a part must not carry one.")


def encrypt_part(root: Path, record: dict | None, reader,
                 customer: CustomerKey | None) -> tuple[object, str | None]:
    """A part of an upload stored under *record*: (reader to store, hex IV to record with
    :func:`note_part`); the reader as is, and no IV, for an upload in the clear."""
    check_upload_key(record, customer)
    if not record:
        return reader, None
    iv = os.urandom(_BLOCK)
    key = customer.key if is_customer(record) else _unwrap(root, record["key"])
    return Encrypting(reader, key, iv, is_customer(record)), iv.hex()


def note_part(upload, path: str, iv: str | None, replaced: str | None) -> None:
    """Record part file *path*'s IV in *upload*'s record (inside the transaction that
    records the part), forgetting the file it replaces."""
    record = upload.get_json("sse")
    if not record or iv is None:
        return
    parts = dict(record.get("parts") or {})
    parts.pop(replaced, None)
    parts[path] = iv
    upload.set_json("sse", {**record, "parts": parts})


def completed(record: dict | None, paths: list[str]) -> dict | None:
    """The finished object's record from its upload's: the chosen parts' IVs, in order."""
    if not record:
        return None
    parts = record.get("parts") or {}
    finished = {name: value for name, value in record.items() if name != "parts"}
    finished["ivs"] = [parts[path] for path in paths]
    return finished


# --- decrypting reads --------------------------------------------------------------------

def read(store, version, start: int = 0, end: int | None = None,
         customer: CustomerKey | None = None) -> Iterator[bytes]:
    """Plaintext bytes ``start..end`` (inclusive) of *version*: the one way object data is
    read. Opens every segment before it returns (as ``store.read``: :class:`store.Gone`
    when one was freed); errors of :func:`data_key` for SSE-C."""
    segments, size = version.segments, version.size
    record = version.get_json("sse")
    end = size - 1 if end is None else end
    if size == 0 or end < start:
        return iter(())
    key = data_key(store.root, record, customer)
    chunks = store.read(segments, start, end)
    if key is None:
        return chunks
    return _decrypt(chunks, _plan(segments, record["ivs"], start, end), key)


def _plan(segments: list[tuple[str, int]], ivs: list[str], start: int,
          end: int) -> list[tuple[bytes, int, int]]:
    """(IV, offset in segment, length) of each segment ``store.read`` sends for the range."""
    plan, offset = [], 0
    for (_path, size), iv in zip(segments, ivs):
        seg_start, seg_end = offset, offset + size - 1
        offset += size
        if size == 0 or seg_end < start or seg_start > end:
            continue
        lo = max(start - seg_start, 0)
        hi = min(end - seg_start, size - 1)
        plan.append((bytes.fromhex(iv), lo, hi - lo + 1))
    return plan


def _decrypt(chunks: Iterator[bytes], plan: list[tuple[bytes, int, int]],
             key: bytes) -> Iterator[bytes]:
    """Decrypt the concatenated ciphertext of *plan*'s segment ranges, switching IV at each
    segment boundary whatever the chunking. Closing it closes *chunks* (their files)."""
    try:
        pending = b""
        for iv, lo, length in plan:
            cipher = _ctr(key, iv, lo)
            while length > 0:
                if not pending:
                    pending = next(chunks, b"")
                    if not pending:
                        raise IOError("segment data ended early")
                piece, pending = pending[:length], pending[length:]
                length -= len(piece)
                yield cipher.update(piece)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


# --- copies ------------------------------------------------------------------------------

class _Limited:
    """``read(n)`` over the next *size* bytes of a chunk iterator, with their MD5."""

    def __init__(self, chunks: Iterator[bytes], size: int):
        self._chunks, self._left = chunks, size
        self._buffer = b""
        self.md5 = hashlib.md5()

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        want = self._left if size < 0 else min(size, self._left)
        while len(self._buffer) < want:
            chunk = next(self._chunks, b"")
            if not chunk:
                raise IOError("source data ended early")
            self._buffer += chunk
        data, self._buffer = self._buffer[:want], self._buffer[want:]
        self._left -= len(data)
        self.md5.update(data)
        return data

    @property
    def md5_hex(self) -> str:
        return self.md5.hexdigest()


class Rewrite:
    """A copy whose data must be encrypted again (another key or a different kind of
    encryption): the source's plaintext, opened now, re-encrypted segment by segment (same
    sizes, so a multipart object keeps its parts) with new IVs."""

    def __init__(self, chunks: Iterator[bytes], segments: list[tuple[str, int]],
                 record: dict, key: bytes, parts_count: int | None):
        self._chunks, self._segments = chunks, segments
        self.record, self._key, self._parts_count = record, key, parts_count

    def write(self, store) -> tuple[list[Stored], str]:
        """The new segments and the copy's ETag; nothing is left behind on failure."""
        written: list[Stored] = []
        digests: list[bytes] = []
        ivs: list[str] = []
        customer = is_customer(self.record)
        try:
            for _path, size in self._segments:
                iv = os.urandom(_BLOCK)
                reader = Encrypting(_Limited(self._chunks, size), self._key, iv, customer)
                written.append(store.write(reader))
                ivs.append(iv.hex())
                digests.append(bytes.fromhex(reader.md5_hex))
        except BaseException:
            store.delete(item.path for item in written)
            raise
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        self.record = {**self.record, "ivs": ivs}
        if self._parts_count:
            etag = f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"
        else:
            etag = digests[0].hex() if digests else hashlib.md5(b"").hexdigest()
        return written, etag


def for_copy(store, source, requested: dict | None, target_customer: CustomerKey | None,
             source_customer: CustomerKey | None) -> tuple[dict, Rewrite | None]:
    """CopyObject's data plan: (the copy's record, None) when the segments can be linked
    (same key: the record with its IVs carries over), else (record, Rewrite) with the
    source already opened. Checks the source's SSE-C key like a GET."""
    record = source.get_json("sse")
    data_key(store.root, record, source_customer)           # checks the source's key
    same_key = (record and not is_customer(record) and target_customer is None
                and not is_customer(requested)) or (
        is_customer(record) and target_customer is not None
        and target_customer.key == source_customer.key)
    if same_key:
        return record, None
    target = prepare(store.root, requested, target_customer)
    key = target_customer.key if target_customer is not None else _unwrap(store.root,
                                                                          target["key"])
    segments = source.segments
    chunks = read(store, source, 0, source.size - 1, source_customer) if source.size \
        else iter(())
    return target, Rewrite(chunks, segments, target, key, source.parts_count)
