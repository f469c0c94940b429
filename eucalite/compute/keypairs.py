"""Key pairs: the service behind CreateKeyPair, ImportKeyPair, DeleteKeyPair and
DescribeKeyPairs, and :func:`get` for RunInstances.

Only the public half is stored (in OpenSSH format, for instance metadata); a created key's
private half is returned once and forgotten, as in AWS. Fingerprints follow AWS exactly, so
users can compare them with what AWS tools print:

- created RSA key: SHA-1 of the DER PKCS#8 private key, colon-separated hex;
- imported RSA key: MD5 of the DER SubjectPublicKeyInfo, colon-separated hex;
- ed25519 (created or imported): base64 SHA-256 of the OpenSSH public key blob.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy.exc import IntegrityError

from .. import ids
from ..accounts import Principal
from ..db import db, write_lock
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import (InvalidKeyPairDuplicate, InvalidKeyPairFormat,
                          InvalidKeyPairNotFound)
from .. import tags
from .models import KeyPair

MAX_NAME_LENGTH = 255
KEY_TYPES = ("rsa", "ed25519")
KEY_FORMATS = ("pem", "ppk")
RSA_BITS = 2048
#: AWS accepts imported RSA keys of 1024 to 4096 bits.
RSA_IMPORT_BITS = (1024, 4096)


# --- fingerprints and formats ---------------------------------------------------------

def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in digest)


def _openssh_public(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH).decode("ascii")


def _sha256_fingerprint(public_key) -> str:
    """OpenSSH's SHA256 fingerprint (base64 of the wire blob's digest), as AWS shows it."""
    blob = base64.b64decode(_openssh_public(public_key).split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")


def generate(key_type: str) -> tuple[str, str, str]:
    """A new key: (private key material, OpenSSH public key, fingerprint)."""
    if key_type == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        material = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.OpenSSH,
                                         serialization.NoEncryption())
        fingerprint = _sha256_fingerprint(private.public_key())
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        # "BEGIN RSA PRIVATE KEY", the form AWS returns and old ssh clients read.
        material = private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
        pkcs8 = private.private_bytes(serialization.Encoding.DER,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        fingerprint = _colon_hex(hashlib.sha1(pkcs8).digest())
    return material.decode("ascii"), _openssh_public(private.public_key()), fingerprint


def parse_public_key(material: bytes) -> tuple[str, str, str]:
    """An imported public key (OpenSSH one-liner or PEM) as (key type, OpenSSH public key,
    fingerprint); anything else is InvalidKeyPair.Format."""
    text = material.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            public_key = serialization.load_pem_public_key(text)
        else:
            public_key = serialization.load_ssh_public_key(b" ".join(text.split()[:2]))
    except (ValueError, UnsupportedAlgorithm, IndexError):
        raise InvalidKeyPairFormat("Key is not in valid OpenSSH public key format")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519", _openssh_public(public_key), _sha256_fingerprint(public_key)
    if isinstance(public_key, rsa.RSAPublicKey):
        low, high = RSA_IMPORT_BITS
        if not low <= public_key.key_size <= high:
            raise InvalidKeyPairFormat(f"RSA keys must be {low} to {high} bits long; this one has "
                                f"{public_key.key_size}.")
        der = public_key.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo)
        return "rsa", _openssh_public(public_key), _colon_hex(hashlib.md5(der).digest())
    raise InvalidKeyPairFormat("Only RSA and ED25519 public keys are supported.")


def validate_name(name: Any) -> str:
    """A key name: 1..255 printable ASCII characters."""
    if name is None or name == "":
        raise MissingParameter("The request must contain the parameter KeyName")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameterValue(f"Value ({name}) for parameter keyName is invalid. "
                                    f"Length exceeds maximum of {MAX_NAME_LENGTH}.")
    if not all(32 <= ord(char) < 127 for char in name):
        raise InvalidParameterValue(f"Value ({name}) for parameter keyName is invalid. "
                                    "Character sets beyond ASCII are not supported.")
    return name


# --- service --------------------------------------------------------------------------

def _insert(principal: Principal, name: str, key_type: str, public_key: str,
            fingerprint: str, tag_map: dict[str, str] | None) -> KeyPair:
    """Store a key pair and its tags in one transaction; a taken name is Duplicate."""
    tag_map = tags.check_new_tags(tag_map)      # fail before writing
    write_lock()
    try:
        if _find(principal.account_id, name) is not None:
            raise InvalidKeyPairDuplicate(f"The keypair '{name}' already exists.")
        row = KeyPair(id=ids.resource_id("key"), owner_id=principal.account_id, name=name,
                      key_type=key_type, fingerprint=fingerprint, public_key=public_key)
        db.session.add(row)
        db.session.flush()
        tags.tag_new_resources(principal, "key-pair", [row.id], tag_map)
        db.session.commit()
    except IntegrityError:                    # another database's writer won the name
        db.session.rollback()
        raise InvalidKeyPairDuplicate(f"The keypair '{name}' already exists.")
    except BaseException:
        db.session.rollback()
        raise
    return row


def create(principal: Principal, name: str, key_type: str = "rsa", key_format: str = "pem",
           tag_map: dict[str, str] | None = None) -> tuple[KeyPair, str]:
    """CreateKeyPair: a new key pair and its private key material (returned only now)."""
    name = validate_name(name)
    if key_type not in KEY_TYPES:
        raise InvalidParameterValue(f"Value ({key_type}) for parameter keyType is invalid. "
                                    f"Valid values: {', '.join(KEY_TYPES)}")
    if key_format not in KEY_FORMATS:
        raise InvalidParameterValue(f"Value ({key_format}) for parameter keyFormat is "
                                    f"invalid. Valid values: {', '.join(KEY_FORMATS)}")
    if key_format != "pem":
        # PuTTY's format would need a PPK writer; clients convert PEM with puttygen.
        raise InvalidParameterValue("KeyFormat 'ppk' is not supported by this cloud; use "
                                    "'pem' and convert with puttygen.")
    material, public_key, fingerprint = generate(key_type)
    row = _insert(principal, name, key_type, public_key, fingerprint, tag_map)
    return row, material


def import_key(principal: Principal, name: str, material: bytes,
               tag_map: dict[str, str] | None = None) -> KeyPair:
    """ImportKeyPair: store a public key given as OpenSSH or PEM text."""
    name = validate_name(name)
    key_type, public_key, fingerprint = parse_public_key(material)
    return _insert(principal, name, key_type, public_key, fingerprint, tag_map)


def delete(principal: Principal, name: str | None = None,
           key_pair_id: str | None = None) -> str | None:
    """DeleteKeyPair by name or id; a missing key pair is not an error (as in AWS).

    Returns the id of the deleted key pair, if there was one.
    """
    if not name and not key_pair_id:
        raise MissingParameter("The request must contain the parameter KeyName or KeyPairId")
    write_lock()
    try:
        query = db.select(KeyPair).where(KeyPair.owner_id == principal.account_id)
        query = query.where(KeyPair.id == key_pair_id) if key_pair_id \
            else query.where(KeyPair.name == name)
        row = db.session.execute(query).scalar_one_or_none()
        if row is None:
            db.session.rollback()
            return None
        deleted = row.id
        tags.delete_all(row.id)
        db.session.delete(row)
        db.session.commit()
        return deleted
    except BaseException:
        db.session.rollback()
        raise


def _find(owner_id: str, name: str) -> KeyPair | None:
    return db.session.execute(db.select(KeyPair).filter_by(owner_id=owner_id, name=name)
                              ).scalar_one_or_none()


def get(owner_id: str, name: str) -> KeyPair:
    """The account's key pair *name* (for RunInstances), or InvalidKeyPair.NotFound."""
    row = _find(owner_id, name)
    if row is None:
        raise InvalidKeyPairNotFound(f"The key pair '{name}' does not exist")
    return row


def describe(owner_id: str, names: list[str] = (), key_pair_ids: list[str] = ()
             ) -> list[KeyPair]:
    """The account's key pairs, optionally only those named or with those ids, by name.

    Any requested name or id the account does not have is InvalidKeyPair.NotFound.
    """
    query = db.select(KeyPair).where(KeyPair.owner_id == owner_id).order_by(KeyPair.name)
    rows = list(db.session.execute(query).scalars())
    if not names and not key_pair_ids:
        return rows
    have_names = {row.name for row in rows}
    have_ids = {row.id for row in rows}
    for name in names:
        if name not in have_names:
            raise InvalidKeyPairNotFound(f"The key pair '{name}' does not exist")
    for key_pair_id in key_pair_ids:
        if key_pair_id not in have_ids:
            raise InvalidKeyPairNotFound(f"The key pair ID '{key_pair_id}' does not exist")
    return [row for row in rows if row.name in names or row.id in key_pair_ids]


def _owned(owner_id: str, resource_id: str) -> bool:
    return db.session.execute(db.select(KeyPair.id).where(
        KeyPair.id == resource_id, KeyPair.owner_id == owner_id)).first() is not None


tags.register_resource("key-", "key-pair", _owned)
