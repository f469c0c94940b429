"""AWS Signature Version 4, the algorithm itself: canonical request, string to sign, signing
key and signature, in the steps AWS documents them.

One implementation for everything that signs or checks a V4 signature: the request verifier
(:mod:`eucalite.auth`), S3's aws-chunked chunk signatures and POST-policy signatures, and
the presigned links the console hands out (:func:`presigned_query`), so a link is signed
exactly the way the verifier recomputes it. Pure functions over text and bytes: no request
objects, no errors of their own.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import posixpath
from typing import Iterable, Iterator, Mapping
from urllib.parse import quote, unquote

V4_ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TERMINATOR = "aws4_request"


def uri_encode(text: str, safe: str = "-_.~") -> str:
    """RFC 3986 percent-encoding as SigV4 specifies it (upper-case hex, UTF-8)."""
    return quote(text, safe=safe)


def canonical_uri_candidates(raw_path: str, service: str) -> Iterator[str]:
    """Canonical URIs a correct client may have signed for *raw_path*, each once, most
    likely first.

    botocore signs S3 paths exactly as sent and other services' paths normalized and encoded
    once more; other SDKs re-encode the decoded path. Trying each costs one HMAC; a lazy
    sequence, so a request signed the usual way builds only its own.
    """
    seen = set()
    for candidate in _uri_candidates(raw_path, service):
        if candidate not in seen:
            seen.add(candidate)
            yield candidate


def _uri_candidates(raw_path: str, service: str) -> Iterator[str]:
    if service != "s3":
        normalized = posixpath.normpath(raw_path) if raw_path not in ("", "/") else "/"
        if raw_path.endswith("/") and normalized != "/":
            normalized += "/"
        yield uri_encode(normalized, safe="/~")
    yield raw_path
    yield uri_encode(unquote(raw_path), safe="/-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]], skip: str | None = None) -> str:
    """The canonical query string: every pair encoded, sorted, joined; *skip* names a
    parameter left out (``X-Amz-Signature`` of a presigned request)."""
    encoded = sorted((uri_encode(key), uri_encode(value)) for key, value in pairs if key != skip)
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> str:
    """``name:value\\n`` for each signed header (lower-case names, every one present in
    *headers*), runs of whitespace in the value folded to one space."""
    return "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)


def canonical_request(method: str, uri: str, query: str, headers_block: str,
                      signed: Iterable[str], payload_hash: str) -> str:
    """The canonical request: method, canonical URI, canonical query string, canonical
    headers, signed header names and the payload hash, one per line."""
    return "\n".join([method, uri, query, headers_block, ";".join(signed), payload_hash])


def credential_scope(date: str, region: str, service: str) -> str:
    """``YYYYMMDD/region/service/aws4_request``."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """The string to sign for *canonical* (a canonical request) at *amz_date*
    (``YYYYMMDDTHHMMSSZ``) in credential scope *scope*."""
    return "\n".join([V4_ALGORITHM, amz_date, scope,
                      hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode("utf-8"), "sha256")


# Every request of a client signs with the same derived key all day: remembering the last
# few saves four HMACs a request. Keyed by the secret itself, so a changed secret never
# meets an old key; which secret is the caller's is still looked up per request.
@functools.lru_cache(maxsize=256)
def v4_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key derived from *secret* for one day, region and service."""
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def signature(signing_key: bytes, text: str) -> str:
    """The hex signature of *text* (a string to sign) under *signing_key*."""
    return _hmac(signing_key, text).hex()


def same_signature(expected: str, given: str) -> bool:
    """Constant-time comparison of the signature we computed with the client's, which may
    hold any character (``hmac.compare_digest`` raises on non-ASCII text)."""
    return hmac.compare_digest(expected.encode("ascii"),
                               given.encode("utf-8", "surrogatepass"))


def presigned_query(method: str, host: str, path: str, *, access_key_id: str, secret: str,
                    region: str, service: str, expires: int, now: dt.datetime) -> str:
    """The query string of a presigned (query-signed) request for *path* (already
    URI-encoded) at *host*, valid *expires* seconds from *now*: host signed, payload
    unsigned, as botocore's presigner makes them. Ends with ``X-Amz-Signature``."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = credential_scope(amz_date[:8], region, service)
    query = canonical_query([("X-Amz-Algorithm", V4_ALGORITHM),
                             ("X-Amz-Credential", f"{access_key_id}/{scope}"),
                             ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)),
                             ("X-Amz-SignedHeaders", "host")])
    canonical = canonical_request(method, path, query, canonical_headers({"host": host},
                                                                         ["host"]),
                                  ["host"], UNSIGNED_PAYLOAD)
    key = v4_signing_key(secret, amz_date[:8], region, service)
    return f"{query}&X-Amz-Signature={signature(key, string_to_sign(amz_date, scope, canonical))}"
