"""Browser-based uploads (POST Object): checking the form's signature and its POST policy.

The adapter parses the ``multipart/form-data`` body, substitutes ``${filename}``
(:func:`substitute_filename`) and calls :func:`verify_post` with the text fields (field names
are case-insensitive). The form is signed in one of three ways:

* Signature V4: ``x-amz-algorithm`` (``AWS4-HMAC-SHA256``), ``x-amz-credential``,
  ``x-amz-date`` and ``x-amz-signature``, the hex HMAC-SHA256 of the base64 ``policy`` text
  under the V4 signing key of the credential's scope;
* Signature V2: ``AWSAccessKeyId`` and ``signature``, the base64 HMAC-SHA1 of the ``policy``
  text under the secret key;
* none of those: the request is anonymous (principal None); whether the bucket takes
  anonymous writes is the adapter's decision.

The policy is base64 JSON ``{"expiration": "…Z", "conditions": [...]}``. Each condition is an
exact match (``{"acl": "public-read"}`` or ``["eq", "$acl", "public-read"]``), a prefix
(``["starts-with", "$key", "user/"]``; the empty prefix allows any value) or a size range
(``["content-length-range", min, max]``). Every form field other than ``file``, ``policy``,
the signature fields, ``bucket`` and ``x-ignore-*`` must be named by a condition.

Errors are S3's: a missing required field is ``InvalidArgument`` naming it; an unknown key
``InvalidAccessKeyId`` and a wrong signature ``SignatureDoesNotMatch`` (both 403, raised as
:class:`~eucalite.errors.AuthError` mapped for S3); a policy that cannot be read
``InvalidPolicyDocument`` (400, "Invalid Policy: …"); an expired policy, a failed condition
or an uncovered field ``AccessDenied`` (403, "Invalid according to Policy: …"); a file outside
the size range ``EntityTooSmall``/``EntityTooLarge`` (400).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import integers, sigv4
from ..accounts import Principal
from ..auth import KeyLookup, v2_signature
from ..errors import BAD_SIGNATURE, UNKNOWN_KEY, AuthError
from ..errors.s3 import (AccessDenied, EntityTooLarge, EntityTooSmall, InvalidArgument,
                         InvalidPolicyDocument)

UTC = dt.timezone.utc

#: Form fields no policy condition needs to name.
EXEMPT_FIELDS = frozenset({"file", "policy", "x-amz-signature", "signature", "awsaccesskeyid",
                           "bucket"})
_V4_FIELDS = (("x-amz-algorithm", "X-Amz-Algorithm"), ("x-amz-credential", "X-Amz-Credential"),
              ("x-amz-date", "X-Amz-Date"), ("x-amz-signature", "X-Amz-Signature"),
              ("policy", "Policy"))
_V2_FIELDS = (("awsaccesskeyid", "AWSAccessKeyId"), ("signature", "Signature"),
              ("policy", "Policy"))
_EXPIRATION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z", re.ASCII)
_OPERATIONS = ("eq", "starts-with", "content-length-range")


# --- errors -----------------------------------------------------------------------------

def _denied(reason: str) -> AccessDenied:
    """403 AccessDenied "Invalid according to Policy: <reason>"."""
    return AccessDenied(f"Invalid according to Policy: {reason}")


def _bad_policy(reason: str) -> InvalidPolicyDocument:
    """400 InvalidPolicyDocument "Invalid Policy: <reason>"."""
    return InvalidPolicyDocument(f"Invalid Policy: {reason}")


def _invalid_argument(message: str, name: str, value: str) -> InvalidArgument:
    return InvalidArgument(message, ArgumentName=name, ArgumentValue=value)


def _missing(name: str) -> InvalidArgument:
    return _invalid_argument(f"Bucket POST must contain a field named '{name}'.  If it is "
                             "specified, please check the order of the fields.", name, "")


# --- the result -------------------------------------------------------------------------

@dataclass
class Condition:
    """One policy condition: *operation* ``eq``, ``starts-with`` or
    ``content-length-range``; *field* the lower-case form field it names (None when the
    policy wrote no ``$``); *value* the operand(s); *text* how S3 quotes it in errors."""

    operation: str
    field: str | None
    value: Any
    text: str


@dataclass
class PostResult:
    """What a verified POST form authorises."""

    principal: Principal | None        # None: anonymous
    key: str                           # the ``key`` field (after ``${filename}``)
    scheme: str | None = None          # "v4", "v2", or None when anonymous
    fields: dict[str, str] = field(default_factory=dict)   # lower-case names
    conditions: list[Condition] = field(default_factory=list)
    expiration: dt.datetime | None = None
    #: (min, max) bytes from ``content-length-range``, inclusive; None when unbounded.
    length_range: tuple[int, int] | None = None

    @property
    def max_length(self) -> int | None:
        """The most bytes the file may have (to stop a stream early), or None."""
        return None if self.length_range is None else self.length_range[1]

    def check_length(self, size: int) -> None:
        """EntityTooSmall/EntityTooLarge (400) when *size* is outside the policy's range."""
        if self.length_range is None:
            return
        low, high = self.length_range
        if size > high:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size",
                                 ProposedSize=str(size), MaxSizeAllowed=str(high))
        if size < low:
            raise EntityTooSmall("Your proposed upload is smaller than the minimum allowed size",
                                 ProposedSize=str(size), MinSizeAllowed=str(low))


# --- helpers for the adapter ------------------------------------------------------------

def substitute_filename(key: str, filename: str | None) -> str:
    """*key* with ``${filename}`` replaced by the uploaded file's name, without any
    directory part a browser sent (``C:\\dir\\a.txt`` gives ``a.txt``). With no filename at
    all (*filename* None, a file part without the parameter) S3 keeps the key literally."""
    if filename is None:
        return key
    base = re.split(r"[/\\]", filename)[-1]
    return key.replace("${filename}", base)


# --- signatures -------------------------------------------------------------------------

def _lookup(lookup: KeyLookup, access_key_id: str) -> tuple[Principal, str]:
    found = lookup(access_key_id)
    if found is None:
        raise AuthError(UNKNOWN_KEY, "The AWS Access Key Id you provided does not exist in "
                        "our records.", AWSAccessKeyId=access_key_id).for_service("s3")
    return found


def _check_signature(expected: str, provided: str, access_key_id: str, policy: str) -> None:
    if hmac.compare_digest(expected.encode(), provided.encode()):
        return
    raise AuthError(BAD_SIGNATURE, "The request signature we calculated does not match the "
                    "signature you provided. Check your key and signing method.",
                    AWSAccessKeyId=access_key_id, StringToSign=policy,
                    SignatureProvided=provided,
                    StringToSignBytes=" ".join(f"{byte:02x}" for byte in policy.encode())
                    ).for_service("s3")


def _verify_v4(fields: Mapping[str, str], lookup: KeyLookup, region: str | None) -> Principal:
    algorithm = fields["x-amz-algorithm"]
    if algorithm != sigv4.V4_ALGORITHM:
        raise _invalid_argument(f'X-Amz-Algorithm only supports "{sigv4.V4_ALGORITHM}"',
                                "X-Amz-Algorithm", algorithm)
    credential = fields["x-amz-credential"]
    parts = credential.split("/")

    def bad_credential(message: str) -> InvalidArgument:
        return _invalid_argument(message, "X-Amz-Credential", credential)

    if len(parts) != 5:
        raise bad_credential('the Credential is mal-formed; expecting '
                             '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    access_key_id, date, scope_region, service, terminal = parts
    if not access_key_id:
        raise bad_credential("a non-empty Access Key (AKID) must be provided in the "
                             "credential.")
    if not re.fullmatch(r"[0-9]{8}", date):
        raise bad_credential(f'incorrect date format "{date}". This date in the credential '
                             'must be in the format "yyyyMMdd".')
    if region is not None and scope_region != region:
        error = bad_credential(f"the region '{scope_region}' is wrong; expecting '{region}'")
        error.extra["Region"] = region
        raise error
    if service != "s3":
        raise bad_credential(f'incorrect service "{service}". This endpoint belongs to "s3".')
    if terminal != "aws4_request":
        raise bad_credential(f'incorrect terminal "{terminal}". This endpoint uses '
                             '"aws4_request".')
    try:
        dt.datetime.strptime(fields["x-amz-date"], "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise _invalid_argument("X-Amz-Date must be formated via ISO8601 Long format",
                                "X-Amz-Date", fields["x-amz-date"]) from None
    principal, secret = _lookup(lookup, access_key_id)
    policy = fields["policy"]
    key = sigv4.v4_signing_key(secret, date, scope_region, service)
    expected = sigv4.signature(key, policy)
    _check_signature(expected, fields["x-amz-signature"], access_key_id, policy)
    return principal


def _verify_v2(fields: Mapping[str, str], lookup: KeyLookup) -> Principal:
    access_key_id = fields["awsaccesskeyid"]
    principal, secret = _lookup(lookup, access_key_id)
    policy = fields["policy"]
    _check_signature(v2_signature(secret, policy), fields["signature"], access_key_id, policy)
    return principal


# --- the policy document ----------------------------------------------------------------

def _no_float(text: str) -> Any:
    raise ValueError(f"not an integer: {text}")


def decode_policy(policy: str) -> tuple[dt.datetime, list[Condition]]:
    """The expiration and conditions of a base64 POST policy; InvalidPolicyDocument (400)
    when it cannot be read."""
    try:
        raw = base64.b64decode("".join(policy.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _bad_policy("invalid Base64 encoding.") from None
    try:
        document = json.loads(raw.decode("utf-8"), parse_float=_no_float,
                              parse_constant=_no_float)
    except ValueError:                  # UnicodeDecodeError and JSONDecodeError included
        raise _bad_policy("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise _bad_policy("Invalid JSON.")
    for name in document:
        if name not in ("expiration", "conditions"):
            raise _bad_policy(f"Unexpected: '{name.lower()}'")
    if "expiration" not in document:
        raise _bad_policy("Policy missing expiration.")
    if "conditions" not in document:
        raise _bad_policy("Policy missing conditions.")
    expiration = document["expiration"]
    expires = _expiration(expiration)
    if not isinstance(document["conditions"], list):
        raise _bad_policy("Invalid 'conditions' value: must be a List.")
    return expires, [_condition(item) for item in document["conditions"]]


def _expiration(value: Any) -> dt.datetime:
    """The policy's ``expiration``: a real UTC instant written ``YYYY-MM-DDThh:mm:ss[.f]Z``
    (no 13th month, no February 30th, nothing after the ``Z``)."""
    problem = _bad_policy(f"Invalid 'expiration' value: '{value}'")
    if not isinstance(value, str) or not _EXPIRATION.fullmatch(value):
        raise problem
    try:
        return dt.datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise problem from None


def _field_name(operand: str) -> str | None:
    return operand[1:].lower() if operand.startswith("$") else None


def _condition(item: Any) -> Condition:
    if isinstance(item, dict):
        if len(item) != 1:
            raise _bad_policy("Invalid Simple-Condition: Simple-Conditions must have exactly "
                              "one property specified.")
        (name, value), = item.items()
        if value is None:
            raise _bad_policy("Invalid JSON.")
        if not isinstance(value, str):
            raise _bad_policy("Invalid Simple-Condition: value must be a string.")
        return Condition("eq", name.lower(), value, json.dumps(["eq", f"${name}", value]))
    if not isinstance(item, list):
        raise _bad_policy("Invalid condition test: must be a List or Object.")
    if not item or not isinstance(item[0], str):
        raise _bad_policy("Invalid Condition: missing operation identifier.")
    operation = item[0].lower()
    if operation not in _OPERATIONS:
        raise _bad_policy(f"Invalid Condition: unknown operation '{item[0]}'.")
    if len(item) != 3:
        raise _bad_policy(f"Invalid {item[0]}: wrong number of arguments.")
    text = json.dumps(item)
    if operation == "content-length-range":
        for bound in item[1:]:
            if isinstance(bound, bool) or not isinstance(bound, (int, str)):
                raise _bad_policy("Invalid JSON.")
            if isinstance(bound, int) and bound < 0:
                raise _bad_policy(f"Invalid {item[0]}: the bounds must not be negative.")
        return Condition(operation, None, (item[1], item[2]), text)
    if not all(isinstance(operand, str) for operand in item[1:]):
        raise _bad_policy("Invalid JSON.")
    return Condition(operation, _field_name(item[1]), item[2], text)


def _length_bounds(condition: Condition) -> tuple[int, int]:
    low, high = (bound if isinstance(bound, int) else integers.parse(bound, signed=True)
                 for bound in condition.value)
    if low is None or high is None:
        raise _denied(f"Policy Condition failed: {condition.text}")
    if low < 0:
        raise _bad_policy("Invalid content-length-range: the bounds must not be negative.")
    return low, high


def _holds(condition: Condition, fields: Mapping[str, str], bucket: str) -> bool:
    if condition.field is None:
        return False
    actual = bucket if condition.field == "bucket" else fields.get(condition.field)
    if actual is None:                  # a condition on an absent field fails, even ""
        return False
    if condition.operation == "eq":
        return actual == condition.value
    if condition.field == "content-type" and "," in actual:
        return all(part.strip().startswith(condition.value) for part in actual.split(","))
    return actual.startswith(condition.value)


# --- the whole check --------------------------------------------------------------------

def verify_post(fields: Mapping[str, str], bucket: str, lookup: KeyLookup, now: dt.datetime,
                file_size: int | None = None, *, region: str | None = None) -> PostResult:
    """Verify a POST Object form: its signature, its policy, and (if *file_size* is given)
    the file's size; return who signed it and what the policy allows.

    *fields* are the form's text fields as sent (names in any case; ``file`` may be among
    them and is ignored). *region*, when given, is the region the credential scope must name.
    """
    lowered: dict[str, str] = {}
    for name, value in fields.items():
        lowered.setdefault(name.lower(), value)
    if "key" not in lowered:
        raise _missing("key")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)

    principal, scheme = None, None
    if any(name in lowered for name, _ in _V4_FIELDS[:4]):
        scheme, required = "v4", _V4_FIELDS
    elif any(name in lowered for name, _ in _V2_FIELDS[:2]):
        scheme, required = "v2", _V2_FIELDS
    if scheme:
        for name, shown in required:
            if name not in lowered:
                raise _missing(shown)
        principal = (_verify_v4(lowered, lookup, region) if scheme == "v4"
                     else _verify_v2(lowered, lookup))

    result = PostResult(principal, lowered["key"], scheme, lowered)
    if "policy" not in lowered:         # anonymous and unconstrained
        return result

    result.expiration, result.conditions = decode_policy(lowered["policy"])
    if now > result.expiration:
        raise _denied("Policy expired.")
    covered = set()
    for condition in result.conditions:
        if condition.operation == "content-length-range":
            low, high = _length_bounds(condition)
            if result.length_range is not None:
                low, high = max(low, result.length_range[0]), min(high, result.length_range[1])
            result.length_range = (low, high)
            continue
        if not _holds(condition, lowered, bucket):
            raise _denied(f"Policy Condition failed: {condition.text}")
        covered.add(condition.field)
    for name in fields:
        lower = name.lower()
        if lower in EXEMPT_FIELDS or lower.startswith("x-ignore-") or lower in covered:
            continue
        raise _denied(f"Extra input fields: {name}")
    if file_size is not None:
        result.check_length(file_size)
    return result
