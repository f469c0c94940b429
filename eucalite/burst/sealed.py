"""Burst targets' credentials at rest: sealed with AES-GCM under a key file of the data
directory (:func:`eucalite.datadir.secret_key`, made 0600 on first use), the target's name
as associated data (a sealed value copied to another target does not open). The same key
gives this cloud its identity on remotes (:func:`cloud_id`)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..datadir import secret_key

KEY_FILE = "burst-credentials.key"


def seal(data_dir: str, name: str, access_key_id: str, secret_access_key: str) -> str:
    """The text to store for target *name*'s credentials."""
    nonce = os.urandom(12)
    plain = json.dumps({"access_key_id": access_key_id,
                        "secret_access_key": secret_access_key}).encode()
    sealed = AESGCM(secret_key(data_dir, KEY_FILE)).encrypt(nonce, plain, name.encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(data_dir: str, name: str, text: str) -> tuple[str, str]:
    """(access key id, secret) from :func:`seal`'s *text* (InvalidTag if tampered with)."""
    raw = base64.b64decode(text)
    plain = AESGCM(secret_key(data_dir, KEY_FILE)).decrypt(raw[:12], raw[12:], name.encode())
    values = json.loads(plain)
    return values["access_key_id"], values["secret_access_key"]


def cloud_id(data_dir: str) -> str:
    """This cloud's identity on remotes (the ``eucalite:cloud`` tag): stable for its data
    directory, and revealing nothing of the key."""
    return hmac.new(secret_key(data_dir, KEY_FILE), b"eucalite burst cloud id",
                    hashlib.sha256).hexdigest()[:20]
