"""Resource identifiers: prefixed random hex ids, account numbers, access keys, S3 version
and upload ids, request ids.

EC2-style ids are ``<prefix>-<hex digits>`` (i-, r-, emi-, eki-, eri-, vol-, snap-, sg-,
eipalloc-, key-): 17 digits as AWS now makes them, or 8 as Eucalyptus did (images keep that
shape); clients accept both. Every id the cloud mints comes from a function here.
"""
from __future__ import annotations

import base64
import secrets
import string
import uuid

_ALNUM_UPPER = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def resource_id(prefix: str, digits: int = 17) -> str:
    """A new random id such as ``i-0a1b2c3d4e5f60718`` (*digits* 17) or ``emi-0a1b2c3d``
    (8)."""
    return f"{prefix}-{secrets.token_hex((digits + 1) // 2)[:digits]}"


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


def _url_token(nbytes: int) -> str:
    """URL-safe base64 of *nbytes* random bytes, with ``.`` in place of ``-`` so that no id
    starts with a dash: command-line parsers (the aws CLI's ``--version-id``/``--upload-id``)
    take a leading dash for an option and refuse the value."""
    return base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode().replace("-", ".")


def version_id() -> str:
    """An S3 object version id: 32 URL-safe characters, never starting with ``-``."""
    return _url_token(24)


def upload_id() -> str:
    """An S3 multipart upload id: 48 URL-safe characters, never starting with ``-``."""
    return _url_token(36)


def request_id() -> str:
    """The id of one API request (``x-amz-request-id``, the error envelopes' RequestId)."""
    return str(uuid.uuid4())


def session_key_id() -> str:
    """``ASIA`` + 16 upper-case letters/digits, the shape of a temporary (STS) access key."""
    return "ASIA" + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(16))


def session_token() -> str:
    """An STS session token: opaque, 256 base64 characters of randomness (AWS's tokens are
    long base64 strings too; clients only pass them back)."""
    return base64.b64encode(secrets.token_bytes(192)).decode()
