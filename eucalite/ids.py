"""Resource identifiers: prefixed random hex ids, account numbers and access keys.

EC2-style ids are ``<prefix>-<17 hex digits>`` (i-, r-, emi-, eki-, eri-, vol-, snap-, sg-,
eipalloc-, key-); Eucalyptus used 8 hex digits, AWS now uses 17, and clients accept both.
"""
from __future__ import annotations

import secrets
import string
import uuid

_ALNUM_UPPER = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def resource_id(prefix: str) -> str:
    """A new id such as ``i-0a1b2c3d4e5f60718``."""
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def account_number() -> str:
    """A 12-digit account id that does not start with 0, as AWS account ids look."""
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def access_key_id() -> str:
    """``AKIA`` + 16 upper-case letters/digits, the shape of a long-term AWS access key."""
    return "AKIA" + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(16))


def secret_access_key() -> str:
    """40 characters, the shape of an AWS secret access key."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def unique_id(prefix: str) -> str:
    """IAM-style unique id (``AIDA…`` for users) of 21 characters."""
    return prefix + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(17))


def request_id() -> str:
    return str(uuid.uuid4())
