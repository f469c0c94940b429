"""The cloud's own RSA key pair (Eucalyptus' cloud-cert / cloud-pk).

Bundlers (euca-bundle-image, :func:`eucalite.compute.bundling.make_bundle`) encrypt each
bundle's AES key to the cloud's public key, so only the cloud can unpack a bundled image.
The private key lives in ``<data_dir>/cloud-key.pem`` (PKCS#8 PEM, mode 0600), created on
first use; losing it makes every encrypted bundle unreadable, so it is never replaced.
``<data_dir>/cloud-cert.pem`` is a self-signed certificate of its public half, Eucalyptus'
``cloud-cert.pem`` (a eucarc's ``EUCALYPTUS_CERT``, what ``euca-bundle-image`` encrypts to).
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..credentials import signed_certificate

KEY_FILE = "cloud-key.pem"
KEY_BITS = 2048
CERT_FILE = "cloud-cert.pem"
CERT_DAYS = 3650


def key_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / KEY_FILE


def cloud_private_key(data_dir: str | os.PathLike):
    """The cloud's RSA private key (a ``cryptography`` key), created if missing."""
    path = key_path(data_dir)
    if not path.exists():
        _create(path)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def cloud_public_key(data_dir: str | os.PathLike):
    return cloud_private_key(data_dir).public_key()


def cloud_public_key_pem(data_dir: str | os.PathLike) -> bytes:
    """The public half in PEM (SubjectPublicKeyInfo), for bundlers to encrypt to."""
    return cloud_public_key(data_dir).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def cloud_certificate_path(data_dir: str | os.PathLike) -> Path:
    """The path of the cloud's certificate (PEM), written from the cloud key if missing."""
    path = Path(data_dir) / CERT_FILE
    if not path.exists():
        key = cloud_private_key(data_dir)
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "eucalite cloud")])
        cert = signed_certificate(name, name, key.public_key(), key, CERT_DAYS)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        os.replace(temp, path)      # a public certificate: a concurrent writer's is as good
    return path


def _create(path: Path) -> None:
    """Write a new key atomically; if another process won the race, keep its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # 0600 from the start: the secret is never readable by others, even briefly.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)         # fails if the key exists: never overwrite one
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)
