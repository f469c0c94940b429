"""AWS request authentication shared by every API: Signature V4 and V2, header and query.

:func:`authenticate` takes a WSGI request, works out which scheme signed it, recomputes the
signature with the caller's secret and returns an :class:`AuthResult` naming the
:class:`~eucalite.accounts.Principal`. Every failure is an :class:`~eucalite.errors.AuthError`
whose *kind* the adapter maps to its service's code (``for_service``).

Schemes:

* V4 header: ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``
* V4 query (presigned): ``X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=…``
* V2 query (EC2/IAM Query APIs): ``SignatureVersion=2&SignatureMethod=HmacSHA256&…``
* V2 header (S3): ``Authorization: AWS AKID:signature``; V2 query (S3 presigned):
  ``AWSAccessKeyId=…&Expires=…&Signature=…``

Temporary credentials (STS sessions, ``ASIA...`` keys, :mod:`eucalite.sessions`) sign
the same way and carry their session token where each scheme puts it: the
``X-Amz-Security-Token`` header (V4, and S3's V2 as ``x-amz-security-token``) or query
parameter (V4 presigned; S3's V2 presigned as ``x-amz-security-token``), or the
``SecurityToken`` parameter (Query V2). A session key without its token, with another
token, or past its expiry is refused in each service's words; so is a token beside a
long-term key, as AWS does.

Payload integrity: for Query APIs the caller passes the body, which is hashed into the V4
canonical request (a tampered body fails the signature). S3 bodies are streamed, so the
result carries the declared ``x-amz-content-sha256`` for the S3 layer to check as it reads.

The V4 algorithm itself (canonical request, string to sign, signing key) is
:mod:`eucalite.sigv4`, which presigned links use too; this module verifies requests with it.
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping
from urllib.parse import quote, unquote

from . import accounts, integers, requesttime, sessions, sigv4
from .accounts import Principal
from .errors import (AuthError, BAD_PAYLOAD, BAD_QUERY_AUTH, BAD_SIGNATURE, BAD_TOKEN, DENIED,
                     EXPIRED, EXPIRED_TOKEN, INCOMPLETE, MISSING, SKEWED, UNKNOWN_KEY)
from .httpserver.errors import WALRUS_PATH
from .sigv4 import UNSIGNED_PAYLOAD, V4_ALGORITHM, same_signature, uri_encode

MAX_PRESIGN_SECONDS = 7 * 24 * 3600

#: S3 sub-resources that are part of a V2 CanonicalizedResource.
S3_V2_SUBRESOURCES = frozenset("""
    accelerate acl analytics cors delete encryption intelligent-tiering inventory legal-hold
    lifecycle location logging metrics notification object-lock ownershipControls partNumber
    policy publicAccessBlock replication requestPayment response-cache-control
    response-content-disposition response-content-encoding response-content-language
    response-content-type response-expires restore retention tagging torrent uploadId
    uploads versionId versioning versions website
""".split())

_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")

# A client's requests within one second carry the same X-Amz-Date (a presigned link always
# the same): parsing one (strptime) costs more than the rest of the claim's checks.
_amz_date = functools.lru_cache(maxsize=64)(requesttime.amz_date)


@functools.lru_cache(maxsize=64)
def _amz_text(when: dt.datetime) -> str:
    """*when* as SigV4 signs it (``YYYYMMDDTHHMMSSZ``); remembered for the same reason."""
    return when.strftime("%Y%m%dT%H%M%SZ")


#: Looks up an access key id; returns (principal, secret) or None. Injectable for tests.
KeyLookup = Callable[[str], "tuple[Principal, str] | None"]
#: What a scheme calls with the request's access key id: (principal, secret), or AuthError.
Resolve = Callable[[str], "tuple[Principal, str]"]


@dataclass
class AuthResult:
    """Who signed the request, and what the caller still has to verify about the body.

    ``payload_sha256`` is the hash the signature covers: a hex digest the S3 layer must check
    while streaming the body, ``UNSIGNED-PAYLOAD``, a ``STREAMING-…`` marker (aws-chunked),
    or None when the body was already verified here (Query APIs) or is not covered (V2).
    ``signing_key``/``seed_signature``/``amz_date``/``scope`` let S3 verify aws-chunked
    chunk signatures, which chain from the request's (seed) signature.
    """

    principal: Principal
    scheme: str                       # "v4-header", "v4-query", "v2-query", "v2-header"
    payload_sha256: str | None = None
    signing_key: bytes | None = None
    seed_signature: str | None = None
    amz_date: str | None = None
    scope: str | None = None


@dataclass
class RequestView:
    """The parts of an HTTP request a signature covers, exactly as the client sent them."""

    method: str
    raw_path: str                     # percent-encoded path, without the query
    raw_query: str                    # the query string as sent
    headers: Mapping[str, str]        # lower-case names
    form: list[tuple[str, str]]       # decoded form-body parameters (Query APIs), else []
    # (raw_query, its pairs): authentication and the S3 layer each read the query.
    _parsed: tuple[str, list[tuple[str, str]]] | None = field(default=None, repr=False,
                                                              compare=False)

    @classmethod
    def from_environ(cls, environ: Mapping, form: Iterable[tuple[str, str]] = ()) -> "RequestView":
        raw_path, raw_query = raw_target(environ)
        headers = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers[key[5:].replace("_", "-").lower()] = value
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = environ["CONTENT_LENGTH"]
        return cls(environ["REQUEST_METHOD"].upper(), raw_path, raw_query, headers, list(form))

    def query_pairs(self) -> list[tuple[str, str]]:
        """:func:`parse_query` of the raw query (parsed once; a fresh list each call)."""
        if self._parsed is None or self._parsed[0] != self.raw_query:
            self._parsed = (self.raw_query, parse_query(self.raw_query))
        return list(self._parsed[1])


def raw_target(environ: Mapping) -> tuple[str, str]:
    """The request target as the client wrote it: (percent-encoded path, raw query)."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        if "://" in target.split("?", 1)[0]:       # absolute-form: http://host/path?q
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path, _, query = target.partition("?")
        return path or "/", query
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"
    path = path.encode("latin-1").decode("utf-8", "replace")
    return quote(path, safe="/~!$&'()*+,;=:@"), environ.get("QUERY_STRING", "")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decoded (key, value) pairs in order; ``a`` without ``=`` gives ``("a", "")``.

    ``+`` is kept literally: AWS clients encode a space as ``%20``.
    """
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _check_skew(when: dt.datetime, now: dt.datetime, max_skew: int) -> None:
    if abs((now - when).total_seconds()) > max_skew:
        raise AuthError(SKEWED, "The difference between the request time and the current "
                        "time is too large.",
                        RequestTime=when.strftime("%Y%m%dT%H%M%SZ"),
                        ServerTime=now.strftime("%Y%m%dT%H%M%SZ"),
                        MaxAllowedSkewMilliseconds=str(max_skew * 1000))


def _unknown_key(access_key_id: str, service: str) -> AuthError:
    if service == "s3":
        message = "The AWS Access Key Id you provided does not exist in our records."
    else:
        message = "The security token included in the request is invalid."
    return AuthError(UNKNOWN_KEY, message, AWSAccessKeyId=access_key_id)


def _bad_token(service: str) -> AuthError:
    if service == "s3":
        return AuthError(BAD_TOKEN, "The provided token is malformed or otherwise invalid.")
    return AuthError(BAD_TOKEN, "The security token included in the request is invalid.")


def _expired_token(service: str) -> AuthError:
    if service == "s3":
        return AuthError(EXPIRED_TOKEN, "The provided token has expired.")
    if service == "ec2":
        return AuthError(EXPIRED_TOKEN, "Request has expired.")
    return AuthError(EXPIRED_TOKEN, "The security token included in the request is expired")


def _resolver(lookup: KeyLookup, service: str, token: str | None,
              with_sessions: bool) -> Resolve:
    """How the scheme finds the signer's secret: long-term keys through *lookup*; with
    *with_sessions*, ``ASIA...`` keys are STS sessions whose *token* (what the request
    carries, or None) must be theirs and which must not have expired."""

    def resolve(access_key_id: str) -> tuple[Principal, str]:
        if with_sessions and sessions.is_session_key(access_key_id):
            return _session(access_key_id, service, token)
        found = lookup(access_key_id)
        if found is None:
            raise _unknown_key(access_key_id, service)
        if with_sessions and token is not None:
            raise _bad_token(service)
        return found

    return resolve


def lookup_with_token(service: str, token: str | None) -> KeyLookup:
    """A :data:`KeyLookup` for signatures checked outside :func:`authenticate` (S3's POST
    forms): long-term keys, and STS session keys with their *token*. None for a key that
    does not exist (the caller says so in its words); AuthError (in *service*'s codes) for
    a session key whose token is missing, wrong or expired."""
    resolve = _resolver(accounts.principal_for_key, service, token, True)

    def lookup(access_key_id: str) -> tuple[Principal, str] | None:
        try:
            return resolve(access_key_id)
        except AuthError as error:
            if error.kind == UNKNOWN_KEY:
                return None
            raise error.for_service(service)

    return lookup


def _session(access_key_id: str, service: str, token: str | None) -> tuple[Principal, str]:
    found = sessions.resolve(access_key_id)
    if found is None or token is None:
        raise _unknown_key(access_key_id, service)
    if not hmac.compare_digest(found.token.encode(), token.encode()):
        raise _bad_token(service)
    if found.expired():
        raise _expired_token(service)
    # IAM takes no GetSessionToken credentials (without MFA, which eucalite has not): AWS
    # answers that their token is invalid.
    if service == "iam" and found.user_session:
        raise _bad_token(service)
    return found.principal, found.secret


def _token(view: RequestView, query: Mapping[str, str], name: str) -> str | None:
    """The session token in header *name* (lower-case) or query parameter *name*, if any."""
    value = view.headers.get(name.lower())
    if value is None:       # S3's V2 presigned URLs spell it in lower case
        value = next((text for key, text in query.items() if key.lower() == name.lower()),
                     None)
    return value or None


def _signature_mismatch(service: str, string_to_sign: str, canonical: str = "") -> AuthError:
    if service == "s3":
        message = ("The request signature we calculated does not match the signature you "
                   "provided. Check your key and signing method.")
    else:
        message = ("The request signature we calculated does not match the signature you "
                   "provided. Check your AWS Secret Access Key and signing method. Consult "
                   "the service documentation for details.")
    extra = {"StringToSign": string_to_sign}
    if canonical:
        extra["CanonicalRequest"] = canonical
    return AuthError(BAD_SIGNATURE, message, **extra)


def authenticate(view: RequestView, service: str, *, body: bytes | None = None,
                 lookup: KeyLookup = accounts.principal_for_key,
                 now: dt.datetime | None = None, max_skew: int = 900,
                 virtual_bucket: str | None = None) -> AuthResult:
    """Verify the request's signature and return who made it.

    *service* is the signing name ("ec2", "iam", "s3"). *body* is the whole request body for
    Query APIs (then payload hashes are checked here) and None for S3 (streamed).
    *virtual_bucket* is the bucket named by the Host header in virtual-host S3 requests (V2
    signs it into the resource). Raises AuthError; the caller maps it with ``for_service``.
    An account key's use is recorded (:func:`accounts.note_key_used`). With the default
    *lookup*, STS session keys are accepted too (with their token; see the module's text).
    """
    result = _verify(view, service, body, lookup, now, max_skew, virtual_bucket)
    if lookup is accounts.principal_for_key and not sessions.is_session_key(
            result.principal.access_key_id):
        region = result.scope.split("/")[1] if result.scope else None
        accounts.note_key_used(result.principal.access_key_id, service, region)
    return result


def _verify(view: RequestView, service: str, body: bytes | None, lookup: KeyLookup,
            now: dt.datetime | None, max_skew: int, virtual_bucket: str | None
            ) -> AuthResult:
    """:func:`authenticate`'s signature check, by the scheme the request uses."""
    now = now or dt.datetime.now(dt.timezone.utc)
    authorization = view.headers.get("authorization", "")
    query = dict(view.query_pairs())
    with_sessions = lookup is accounts.principal_for_key

    def resolver(token: str | None) -> Resolve:
        return _resolver(lookup, service, token, with_sessions)

    amz_token = _token(view, query, "X-Amz-Security-Token")
    if authorization.startswith(V4_ALGORITHM):
        return _v4(view, service, body, resolver(amz_token), now, max_skew, authorization,
                   None)
    if query.get("X-Amz-Algorithm") is not None:
        if query["X-Amz-Algorithm"] != V4_ALGORITHM:
            raise AuthError(INCOMPLETE, "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        return _v4(view, service, body, resolver(amz_token), now, max_skew, None, query)
    if authorization.startswith("AWS ") and service == "s3":
        return _s3_v2(view, resolver(amz_token), now, max_skew, authorization[4:], None,
                      virtual_bucket)
    if authorization:
        raise AuthError(INCOMPLETE, "Unsupported Authorization Type")
    if service == "s3" and "Signature" in query and "AWSAccessKeyId" in query:
        return _s3_v2(view, resolver(amz_token), now, max_skew, None, query, virtual_bucket)
    params = dict(view.query_pairs() + view.form)
    if "Signature" in params and "AWSAccessKeyId" in params and service != "s3":
        return _query_v2(view, service, params, resolver(params.get("SecurityToken") or None),
                         now, max_skew)
    if service == "s3":
        raise AuthError(MISSING, "Access Denied")
    raise AuthError(MISSING, "Request is missing Authentication Token")


# --- Signature V4 ---------------------------------------------------------------------

def _parse_v4_header(value: str) -> dict[str, str]:
    fields = {}
    for part in value[len(V4_ALGORITHM):].split(","):
        name, sep, field = part.strip().partition("=")
        if sep:
            fields[name.strip()] = field.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        raise AuthError(INCOMPLETE, "Authorization header requires " + ", ".join(
            f"'{name}'" for name in missing) + f" parameter(s). Authorization={value}")
    return fields


def _signed_headers(view: RequestView, signed_headers: str) -> list[str]:
    """The names in SignedHeaders, lower-case; each must be in the request."""
    signed = [name.strip().lower() for name in signed_headers.split(";") if name.strip()]
    for name in signed:
        if name not in view.headers:
            raise AuthError(INCOMPLETE, f"Header {name} is signed but missing from the request.")
    return signed


def _v4_presigned_expiry(query: dict[str, str], when: dt.datetime, now: dt.datetime,
                         max_skew: int) -> None:
    """Refuse a presigned V4 request whose ``X-Amz-Expires`` is malformed or has passed."""
    text = query.get("X-Amz-Expires", "0")
    expires = integers.parse(text, signed=True)
    if expires is None:
        raise AuthError(BAD_QUERY_AUTH, "X-Amz-Expires should be a number")
    if expires < 0:
        raise AuthError(BAD_QUERY_AUTH, "X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_SECONDS:
        raise AuthError(BAD_QUERY_AUTH, "X-Amz-Expires must be less than a week (in seconds); "
                        "that is, the given X-Amz-Expires must be less than 604800 seconds")
    if (when - now).total_seconds() > max_skew:
        _check_skew(when, now, max_skew)
    if now > when + dt.timedelta(seconds=expires):
        raise AuthError(EXPIRED, "Request has expired", **{"X-Amz-Expires": str(expires)},
                        Expires=(when + dt.timedelta(seconds=expires)).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"),
                        ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"))


@dataclass
class _V4Claim:
    """What a V4-signed request says about its own signature, before it is checked."""

    access_key_id: str
    scope_date: str
    region: str
    signed_headers: str
    signature: str
    when: dt.datetime
    amz_date: str = field(init=False)     # *when* as SigV4 signs it

    def __post_init__(self) -> None:
        self.amz_date = _amz_text(self.when)


def _v4(view: RequestView, service: str, body: bytes | None, resolve: Resolve,
        now: dt.datetime, max_skew: int, authorization: str | None,
        query: dict[str, str] | None) -> AuthResult:
    """Verify a V4 signature (header, or presigned when *query* is given) step by step:
    the claim (credential scope and date), its time, the key, the payload hash, then the
    signature over each canonical request a correct client may have signed."""
    presigned = query is not None
    claim = _v4_claim(view, service, authorization, query)
    if presigned:
        _v4_presigned_expiry(query, claim.when, now, max_skew)
    else:
        _check_skew(claim.when, now, max_skew)
    principal, secret = resolve(claim.access_key_id)
    payloads = _v4_payload_candidates(view, body, presigned)
    signed = _signed_headers(view, claim.signed_headers)
    headers_block = sigv4.canonical_headers(view.headers, signed)
    query_string = sigv4.canonical_query(view.query_pairs(),
                                         skip="X-Amz-Signature" if presigned else None)
    scope = sigv4.credential_scope(claim.scope_date, claim.region, service)
    signing_key = sigv4.v4_signing_key(secret, claim.scope_date, claim.region, service)

    first_string = first_canonical = ""
    for uri in sigv4.canonical_uri_candidates(view.raw_path, service):
        for payload in payloads:
            canonical = sigv4.canonical_request(view.method, uri, query_string, headers_block,
                                                signed, payload)
            string_to_sign = sigv4.string_to_sign(claim.amz_date, scope, canonical)
            if same_signature(sigv4.signature(signing_key, string_to_sign), claim.signature):
                return AuthResult(principal, "v4-query" if presigned else "v4-header",
                                  payload_sha256=None if body is not None else payload,
                                  signing_key=signing_key, seed_signature=claim.signature,
                                  amz_date=claim.amz_date, scope=scope)
            if not first_string:
                first_string, first_canonical = string_to_sign, canonical
    raise _signature_mismatch(service, first_string, first_canonical)


def _v4_claim(view: RequestView, service: str, authorization: str | None,
              query: dict[str, str] | None) -> _V4Claim:
    """Credential, signed headers, signature and date from the Authorization header or
    the presigned query; the scope must name *service* and the request's date."""
    presigned = query is not None
    # S3 names a malformed presigned URL apart from a malformed Authorization header.
    malformed = BAD_QUERY_AUTH if presigned else INCOMPLETE
    if presigned:
        needed = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature")
        missing = [name for name in needed if not query.get(name)]
        if missing:
            raise AuthError(malformed, "Query-string authentication version 4 requires the "
                            "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                            "X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
        credential, signed_headers = query["X-Amz-Credential"], query["X-Amz-SignedHeaders"]
        signature, amz_date_text = query["X-Amz-Signature"], query["X-Amz-Date"]
    else:
        fields = _parse_v4_header(authorization)
        credential, signed_headers = fields["Credential"], fields["SignedHeaders"]
        signature = fields["Signature"]
        amz_date_text = view.headers.get("x-amz-date") or view.headers.get("date", "")

    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != sigv4.TERMINATOR:
        raise AuthError(malformed, f"Credential should be scoped to a valid region, not "
                        f"{credential!r}; expected AKID/YYYYMMDD/region/service/aws4_request.")
    access_key_id, scope_date, region, scope_service, _ = parts
    if scope_service != service:
        raise AuthError(malformed, f"Credential should be scoped to correct service: "
                        f"'{service}'.")

    if presigned:
        when = _amz_date(amz_date_text)
        if when is None:
            raise AuthError(malformed, "X-Amz-Date must be in the ISO8601 Long Format "
                            "\"yyyyMMdd'T'HHmmss'Z'\"")
    else:
        when = _amz_date(amz_date_text) or requesttime.http_date(amz_date_text)
        if when is None:
            raise AuthError(malformed, "Authorization requires a valid X-Amz-Date or Date "
                            f"header; got {amz_date_text!r}.")
    claim = _V4Claim(access_key_id, scope_date, region, signed_headers, signature, when)
    if scope_date != claim.amz_date[:8]:
        raise AuthError(malformed, f"Date in Credential scope does not match YYYYMMDD from "
                        f"ISO-8601 version of date from HTTP: '{scope_date}' != "
                        f"'{claim.amz_date[:8]}'")
    return claim


def _v4_payload_candidates(view: RequestView, body: bytes | None,
                           presigned: bool) -> list[str]:
    """The payload hashes the signature may cover. With the body in hand (Query APIs) its
    hash, checked against a declared ``x-amz-content-sha256``; for streamed S3 bodies the
    declared value, which the S3 layer checks as it reads."""
    declared = view.headers.get("x-amz-content-sha256")
    if body is not None:
        actual = hashlib.sha256(body).hexdigest()
        if declared and declared != actual and not (declared == UNSIGNED_PAYLOAD and not body):
            raise AuthError(BAD_PAYLOAD, "The provided 'x-amz-content-sha256' header does not "
                            "match what was computed.")
        return [actual, UNSIGNED_PAYLOAD] if presigned and not body else [actual]
    if declared:
        if not (_HEX64.match(declared) or declared == UNSIGNED_PAYLOAD
                or declared.startswith("STREAMING-")):
            raise AuthError(INCOMPLETE, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                            "STREAMING-… or a valid sha256 value.")
        return [declared]
    if presigned:
        return [UNSIGNED_PAYLOAD]
    raise AuthError(INCOMPLETE, "Missing required header for this request: "
                    "x-amz-content-sha256")


# --- Signature V2, Query APIs (EC2, IAM) ----------------------------------------------

def v2_signature(secret: str, string_to_sign: str, digest=hashlib.sha1) -> str:
    """A Signature Version 2 signature: base64 of the HMAC (SHA-1 unless *digest* says
    otherwise) of *string_to_sign* under *secret*. S3's POST policies are signed so too."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"),
                                     digest).digest()).decode()


def _query_v2(view: RequestView, service: str, params: dict[str, str], resolve: Resolve,
              now: dt.datetime, max_skew: int) -> AuthResult:
    if params.get("SignatureVersion") != "2":
        raise AuthError(INCOMPLETE, "Only SignatureVersion 2 and Signature V4 are supported; "
                        f"got SignatureVersion={params.get('SignatureVersion')!r}.")
    method = params.get("SignatureMethod", "")
    digest = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}.get(method)
    if digest is None:
        raise AuthError(INCOMPLETE, "SignatureMethod must be HmacSHA256 or HmacSHA1.")
    if "Timestamp" in params and "Expires" in params:
        raise AuthError(INCOMPLETE, "Use either Timestamp or Expires, not both.")
    if "Timestamp" in params:
        when = requesttime.iso8601(params["Timestamp"])
        if when is None:
            raise AuthError(INCOMPLETE, f"Invalid Timestamp {params['Timestamp']!r}.")
        _check_skew(when, now, max_skew)
    elif "Expires" in params:
        expires = requesttime.iso8601(params["Expires"])
        if expires is None:
            raise AuthError(INCOMPLETE, f"Invalid Expires {params['Expires']!r}.")
        if now > expires:
            raise AuthError(EXPIRED, "Request has expired.")
    else:
        raise AuthError(INCOMPLETE, "Signature V2 requires a Timestamp or Expires parameter.")

    principal, secret = resolve(params["AWSAccessKeyId"])
    pairs = sorted((key, value) for key, value in params.items() if key != "Signature")
    canonical = "&".join(f"{uri_encode(key)}={uri_encode(value)}" for key, value in pairs)
    path = unquote(view.raw_path) or "/"
    host = view.headers.get("host", "")
    for host_form in dict.fromkeys([host.lower(), host]):
        string_to_sign = f"{view.method}\n{host_form}\n{uri_encode(path, '/-_.~')}\n{canonical}"
        if same_signature(v2_signature(secret, string_to_sign, digest), params["Signature"]):
            return AuthResult(principal, "v2-query")
    raise _signature_mismatch(service, string_to_sign)


# --- Signature V2, S3 (header and presigned query) ------------------------------------

def _s3_v2(view: RequestView, resolve: Resolve, now: dt.datetime, max_skew: int,
           header_value: str | None, query: dict[str, str] | None,
           virtual_bucket: str | None) -> AuthResult:
    """Verify an S3 V2 signature (Authorization header, or presigned when *query* is
    given): the claim and its time, the key, then the string to sign for each Date line a
    correct client may have used."""
    access_key_id, signature, date_lines = _s3_v2_claim(view, now, max_skew, header_value,
                                                        query)
    principal, secret = resolve(access_key_id)
    string_to_sign = ""
    for path in _s3_v2_paths(view.raw_path):
        tail = _s3_v2_headers_and_resource(view, virtual_bucket, path, query is not None)
        for date_line in date_lines:
            string_to_sign = "\n".join([view.method, view.headers.get("content-md5", ""),
                                        view.headers.get("content-type", ""), date_line]) \
                + "\n" + tail
            if same_signature(v2_signature(secret, string_to_sign), signature):
                return AuthResult(principal,
                                  "v2-header" if header_value is not None else "v2-query")
    raise _signature_mismatch("s3", string_to_sign)


def _s3_v2_paths(raw_path: str) -> list[str]:
    """The paths a correct V2 client may have signed: the path as sent; below
    :data:`WALRUS_PATH` also the path without it (botocore signs the path its model builds,
    leaving out the endpoint's; Eucalyptus' Walrus accepted both); and for a bucket
    (``/bucket``) also ``/bucket/``, which botocore signs for it."""
    paths = [raw_path]
    if raw_path.startswith(WALRUS_PATH + "/"):
        paths.append(raw_path[len(WALRUS_PATH):])
    paths += [path + "/" for path in list(paths) if path.count("/") == 1 and len(path) > 1]
    return paths


def _s3_v2_claim(view: RequestView, now: dt.datetime, max_skew: int,
                 header_value: str | None, query: dict[str, str] | None
                 ) -> tuple[str, str, list[str]]:
    """(access key id, signature, the Date lines to try) from the Authorization header or
    the presigned query, after checking the request's time (or the link's expiry)."""
    if header_value is not None:
        access_key_id, sep, signature = header_value.strip().rpartition(":")
        if not sep or not access_key_id:
            raise AuthError(INCOMPLETE, "Authorization header is invalid -- one and only one "
                            "' ' (space) required and AKID:signature expected.")
        date_text = view.headers.get("x-amz-date") or view.headers.get("date", "")
        when = requesttime.http_date(date_text) if date_text else None
        if when is None:
            raise AuthError(DENIED, "AWS authentication requires a valid Date or "
                            "x-amz-date header")
        _check_skew(when, now, max_skew)
        # With x-amz-date set, the Date line of the string to sign is empty; some clients
        # still put the Date header there.
        date_lines = ["", view.headers.get("date", "")] if "x-amz-date" in view.headers \
            else [view.headers.get("date", "")]
    else:
        access_key_id, signature = query["AWSAccessKeyId"], query["Signature"]
        if "Expires" not in query:
            raise AuthError(DENIED, "Query-string authentication requires the Signature, "
                            "Expires and AWSAccessKeyId parameters")
        expires = integers.parse(query["Expires"], signed=True)
        if expires is None:
            raise AuthError(DENIED, "Invalid date (should be seconds since epoch): "
                            + query["Expires"])
        if now.timestamp() > expires:
            raise AuthError(EXPIRED, "Request has expired",
                            Expires=requesttime.epoch_text(expires),
                            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        date_lines = [query["Expires"]]             # signed as sent
    return access_key_id, signature, date_lines


def _s3_v2_headers_and_resource(view: RequestView, virtual_bucket: str | None,
                                path: str, presigned: bool = False) -> str:
    """The end of the string to sign: CanonicalizedAmzHeaders (``x-amz-*`` lower-case,
    sorted, repeated values joined by commas) then CanonicalizedResource (the bucket of a
    virtual-host request, *path*, and the sub-resources that are signed). A *presigned*
    URL carries its ``x-amz-*`` headers (``x-amz-security-token``) as query parameters:
    they are signed as headers."""
    amz_headers: dict[str, list[str]] = {}
    carried = view.headers.items()
    if presigned:
        carried = list(carried) + [(name.lower(), value) for name, value in view.query_pairs()
                                   if name.lower().startswith("x-amz-")]
    for name, value in carried:
        if name.startswith("x-amz-"):
            amz_headers.setdefault(name, []).append(" ".join(value.split()))
    amz_block = "".join(f"{name}:{','.join(values)}\n"
                        for name, values in sorted(amz_headers.items()))
    resource = (f"/{virtual_bucket}" if virtual_bucket else "") + path
    subresources = sorted((key, value) for key, value in view.query_pairs()
                          if key in S3_V2_SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{key}={value}" if value else key
                                   for key, value in subresources)
    return amz_block + resource
