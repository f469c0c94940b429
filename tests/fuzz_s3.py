"""S3 requests for the fuzz test (tests/test_fuzz.py): every operation and sub-resource
eucalite routes, built as a client would send it and then mutated: query strings,
headers, keys and bucket names, XML and JSON bodies (bad encodings, entity bombs kept
small, truncation, huge and non-ASCII numbers), aws-chunked bodies (bad chunk sizes, no
final chunk), Content-MD5, PostObject forms and policies, and every way of signing
(SigV4 header and presigned, SigV2 header and presigned, anonymous, broken)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import replace
from xml.sax.saxutils import escape

from eucalite.sigv4 import v4_signing_key
from fuzzutil import (NASTY_DATES, NASTY_NUMBERS, Wire, broken_auth, encode_pairs, maybe_nasty,
                      nasty, pct)

# --- bodies -------------------------------------------------------------------------------

#: XML bodies of the configuration operations, with the values a mutation may replace.
XML = {
    "delete": ("<Delete><Quiet>{quiet}</Quiet><Object><Key>{key}</Key>"
               "<VersionId>{version}</VersionId></Object><Object><Key>{key2}</Key></Object>"
               "</Delete>", {"quiet": "true", "key": "obj", "version": "null", "key2": "a/b"}),
    "complete": ("<CompleteMultipartUpload><Part><PartNumber>{part}</PartNumber>"
                 "<ETag>{etag}</ETag></Part><Part><PartNumber>{part2}</PartNumber>"
                 "<ETag>{etag}</ETag></Part></CompleteMultipartUpload>",
                 {"part": "1", "part2": "2", "etag": '"9dd4e461268c8034f5c8564e155c67a6"'}),
    "acl": ('<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner>'
            "<ID>{owner}</ID></Owner><AccessControlList><Grant><Grantee "
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="{type}">'
            "<ID>{owner}</ID><URI>{uri}</URI><EmailAddress>{email}</EmailAddress></Grantee>"
            "<Permission>{permission}</Permission></Grant></AccessControlList>"
            "</AccessControlPolicy>",
            {"owner": "000000000001", "type": "CanonicalUser", "email": "a@b.c",
             "uri": "http://acs.amazonaws.com/groups/global/AllUsers",
             "permission": "FULL_CONTROL"}),
    "cors": ("<CORSConfiguration><CORSRule><ID>{id}</ID><AllowedOrigin>{origin}"
             "</AllowedOrigin><AllowedMethod>{method}</AllowedMethod><AllowedHeader>{header}"
             "</AllowedHeader><ExposeHeader>{expose}</ExposeHeader><MaxAgeSeconds>{age}"
             "</MaxAgeSeconds></CORSRule></CORSConfiguration>",
             {"id": "r1", "origin": "http://example.com", "method": "GET", "header": "*",
              "expose": "ETag", "age": "3000"}),
    "lifecycle": ("<LifecycleConfiguration><Rule><ID>{id}</ID><Filter><And><Prefix>{prefix}"
                  "</Prefix><Tag><Key>{tag}</Key><Value>{value}</Value></Tag>"
                  "<ObjectSizeGreaterThan>{size}</ObjectSizeGreaterThan></And></Filter>"
                  "<Status>{status}</Status><Expiration><{when}>{days}</{when}></Expiration>"
                  "<NoncurrentVersionExpiration><NoncurrentDays>{ndays}</NoncurrentDays>"
                  "</NoncurrentVersionExpiration><AbortIncompleteMultipartUpload>"
                  "<DaysAfterInitiation>{adays}</DaysAfterInitiation>"
                  "</AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>",
                  {"id": "r1", "prefix": "logs/", "tag": "t", "value": "v", "size": "1",
                   "status": "Enabled", "when": "Days", "days": "30", "ndays": "30",
                   "adays": "7"}),
    "tagging": ("<Tagging><TagSet><Tag><Key>{key}</Key><Value>{value}</Value></Tag>"
                "</TagSet></Tagging>", {"key": "k", "value": "v"}),
    "versioning": ("<VersioningConfiguration><Status>{status}</Status><MfaDelete>{mfa}"
                   "</MfaDelete></VersioningConfiguration>",
                   {"status": "Enabled", "mfa": "Disabled"}),
    "create": ("<CreateBucketConfiguration><LocationConstraint>{location}"
               "</LocationConstraint></CreateBucketConfiguration>", {"location": ""}),
}

ENTITY_BOMB = ('<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
               '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>')
EXTERNAL = '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def xml_body(rng, name: str) -> bytes:
    """The *name* XML body, valid or mutated in one of the ways parsers trip over."""
    template, values = XML[name]
    values = dict(values)
    for field in rng.sample(sorted(values), min(len(values), rng.randint(0, 2))):
        raw = maybe_nasty(rng, values[field], 1.0)
        # usually escaped (a client would), sometimes raw (a forbidden character, a tag)
        values[field] = escape(raw) if rng.random() < 0.7 else raw
    if rng.random() < 0.1:
        values[rng.choice(sorted(values))] = rng.choice(["&d;", "&x;"])
    text = template.format(**values)
    roll = rng.random()
    if roll < 0.35:
        return text.encode("utf-8", "surrogatepass")
    if roll < 0.45:
        encoding = rng.choice(["foo", "UTF-16", "latin-1", "ascii", "utf-32", "", "é"])
        return (f'<?xml version="1.0" encoding="{encoding}"?>' + text).encode(
            "utf-8", "surrogatepass")
    if roll < 0.55:
        return (ENTITY_BOMB if rng.random() < 0.7 else EXTERNAL).encode() + text.replace(
            "</", "&d;</", 1).encode("utf-8", "surrogatepass")
    if roll < 0.65:
        data = text.encode("utf-8", "surrogatepass")
        return data[:rng.randrange(max(1, len(data)))]
    if roll < 0.7:
        return ("<a>" * 400 + "</a>" * 400).encode()           # deep nesting
    if roll < 0.8:
        return rng.choice([b"", b"\x00", b"\xff\xfe<\x00a\x00>\x00", b"{}", b"<x/>", b"<?xml?>",
                           text.encode("utf-16", "surrogatepass"), text.encode("latin-1", "replace")])
    # the same element twice, or a rename of the root
    return text.replace("><", "><" + text[1:text.index(">")] + "/><", 1).encode(
        "utf-8", "surrogatepass") if rng.random() < 0.5 else text.replace(
        text[1:text.index(">")].split(" ")[0], "Wrong", 1).encode("utf-8", "surrogatepass")


def policy_body(rng) -> bytes:
    statement = {"Sid": maybe_nasty(rng, "s1"), "Effect": "Allow",
                 "Principal": rng.choice([{"AWS": "*"}, "*", {"AWS": ["*", nasty(rng, "x")]},
                                          {"CanonicalUser": nasty(rng, "x")}, [], 1]),
                 "Action": rng.choice(["s3:GetObject", ["s3:Get*"], nasty(rng, "s3:Get"), 5]),
                 "Resource": rng.choice(["arn:aws:s3:::fuzz/*", nasty(rng, "arn:aws:s3:::fuzz"),
                                         ["arn:aws:s3:::fuzz", "arn:aws:s3:::fuzz/*"], None])}
    if rng.random() < 0.5:
        operator = rng.choice(["IpAddress", "StringLike", "DateGreaterThan", "NumericLessThan",
                               "Bool", "StringEqualsIgnoreCase", nasty(rng, "IpAddress")])
        key = rng.choice(["aws:SourceIp", "aws:CurrentTime", "s3:max-keys", "aws:UserAgent"])
        value = rng.choice([nasty(rng, "10.0.0.0/8"), "999.1.1.1/99", "::1/200",
                            rng.choice(NASTY_DATES), rng.choice(NASTY_NUMBERS), ["a", 1], {}])
        statement["Condition"] = {operator: {key: value}}
    document = {"Version": rng.choice(["2012-10-17", "2008-10-17", nasty(rng, "2012-10-17")]),
                "Statement": [statement] if rng.random() < 0.8 else statement}
    text = json.dumps(document)
    roll = rng.random()
    if roll < 0.1:
        return text.encode()[:rng.randrange(len(text))]
    if roll < 0.15:
        return ("[" * 5000 + "]" * 5000).encode()
    if roll < 0.2:
        return text.replace('"2012', '1e999999', 1).encode()
    return text.encode("utf-8", "surrogatepass")


def chunked_body(rng, data: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    """An aws-chunked body (unsigned, with a trailer) and its headers, maybe broken."""
    size = maybe_nasty(rng, format(len(data), "x"), 0.3)
    frames = [f"{size}\r\n".encode("utf-8", "surrogatepass") + data + b"\r\n"]
    if rng.random() > 0.2:                      # sometimes no final chunk at all
        frames.append(b"0\r\n")
    frames.append(f"x-amz-checksum-crc32:{maybe_nasty(rng, 'DUmz5A==', 0.3)}\r\n\r\n"
                  .encode("utf-8", "surrogatepass"))
    body = b"".join(frames)
    if rng.random() < 0.2:
        body = body[:rng.randrange(len(body))]
    headers = [("Content-Encoding", "aws-chunked"),
               ("x-amz-decoded-content-length", maybe_nasty(rng, str(len(data)), 0.4)),
               ("x-amz-trailer", maybe_nasty(rng, "x-amz-checksum-crc32", 0.2))]
    return body, headers


def signed_chunks(rng, signed: Wire, signer, data: bytes) -> bytes:
    """*data* framed as STREAMING-AWS4-HMAC-SHA256-PAYLOAD: chunk signatures chained from
    the seed signature of the *signed* request (so the decoder, not the signature check,
    meets what is broken), then maybe broken: a bad size or signature, no final chunk."""
    seed = (signed.header("Authorization") or "").rpartition("Signature=")[2]
    amz_date = signed.header("X-Amz-Date") or ""
    scope = f"{amz_date[:8]}/{signer.region}/s3/aws4_request"
    key = v4_signing_key(signer.secret, amz_date[:8], signer.region, "s3")
    frames, previous = [], seed
    for chunk in (data[:5], data[5:], b""):
        previous = hmac.new(key, "\n".join([
            "AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous,
            hashlib.sha256(b"").hexdigest(), hashlib.sha256(chunk).hexdigest()]).encode(),
            hashlib.sha256).hexdigest()
        size = maybe_nasty(rng, format(len(chunk), "x"), 0.1)
        head = f"{size};chunk-signature={maybe_nasty(rng, previous, 0.05)}\r\n"
        frames.append(head.encode("utf-8", "surrogatepass") + (chunk + b"\r\n" if chunk else b""))
    if rng.random() < 0.15:
        frames.pop()                            # no final chunk
    body = b"".join(frames) + b"\r\n"
    return body[:rng.randrange(len(body))] if rng.random() < 0.1 else body


# --- operations ---------------------------------------------------------------------------

#: Headers a request may carry, with a sensible value each (a mutation spoils some).
HEADERS = {
    "Range": "bytes=0-4", "If-Match": '"x"', "If-None-Match": "*",
    "If-Modified-Since": "Sat, 05 Dec 2026 00:00:00 GMT",
    "If-Unmodified-Since": "Sat, 05 Dec 2026 00:00:00 GMT",
    "x-amz-copy-source": "/fuzz/obj", "x-amz-copy-source-range": "bytes=0-4",
    "x-amz-copy-source-if-match": '"x"',
    "x-amz-copy-source-if-modified-since": "Sat, 05 Dec 2026 00:00:00 GMT",
    "x-amz-metadata-directive": "REPLACE", "x-amz-tagging-directive": "COPY",
    "x-amz-acl": "public-read", "x-amz-grant-read": 'id="000000000001"',
    "x-amz-grant-full-control": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
    "x-amz-meta-color": "blue", "x-amz-tagging": "a=b&c=d", "x-amz-storage-class": "STANDARD",
    "Content-Type": "text/plain", "Content-Disposition": "attachment", "Cache-Control": "x",
    "Content-Encoding": "gzip", "Expires": "Sat, 05 Dec 2026 00:00:00 GMT",
    "x-amz-checksum-crc32": "DUmz5A==", "x-amz-checksum-sha256": "x",
    "x-amz-sdk-checksum-algorithm": "CRC32", "x-amz-checksum-mode": "ENABLED",
    "x-amz-server-side-encryption": "AES256", "x-amz-website-redirect-location": "/x",
    "x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date":
        "2030-01-01T00:00:00Z", "x-amz-bucket-object-lock-enabled": "true",
    "x-amz-object-ownership": "BucketOwnerEnforced", "x-amz-mfa": "123 456",
    "x-amz-bypass-governance-retention": "true", "x-amz-expected-bucket-owner": "000000000001",
    "Origin": "http://example.com", "Expect": "100-continue",
    "x-amz-decoded-content-length": "11", "x-amz-request-payer": "requester",
}

#: Query parameters a request may carry.
PARAMS = {
    "prefix": "a/", "delimiter": "/", "marker": "a", "max-keys": "2", "list-type": "2",
    "continuation-token": "x", "start-after": "a", "encoding-type": "url", "fetch-owner": "true",
    "key-marker": "a", "version-id-marker": "null", "upload-id-marker": "x", "max-uploads": "2",
    "max-parts": "2", "part-number-marker": "1", "partNumber": "1", "versionId": "null",
    "response-content-type": "text/plain", "response-content-disposition": "inline",
    "response-content-encoding": "gzip", "response-content-language": "en",
    "response-expires": "Sat, 05 Dec 2026 00:00:00 GMT", "response-cache-control": "no",
    "max-buckets": "2", "x-id": "GetObject",
}

#: (method, target, sub-resource, its query, body kind, headers it usually has)
OPERATIONS = [
    ("GET", "service", None, "", None, []),
    ("PUT", "new-bucket", None, "", "create", ["x-amz-acl"]),
    ("HEAD", "bucket", None, "", None, []),
    ("DELETE", "new-bucket", None, "", None, []),
    ("GET", "bucket", None, "", None, []),
    ("GET", "bucket", None, "list-type=2", None, []),
    ("GET", "bucket", "versions", "versions", None, []),
    ("GET", "bucket", "uploads", "uploads", None, []),
    ("GET", "bucket", "location", "location", None, []),
    ("POST", "bucket", "delete", "delete", "delete", []),
    ("POST", "bucket", None, "", "post", []),
    ("OPTIONS", "object", None, "", None, ["Origin"]),
    ("PUT", "object", None, "", "data", ["Content-Type", "x-amz-meta-color"]),
    ("PUT", "object", None, "", "chunked", []),
    ("PUT", "object", None, "", None, ["x-amz-copy-source", "x-amz-metadata-directive"]),
    ("GET", "object", None, "", None, ["Range"]),
    ("HEAD", "object", None, "", None, ["If-None-Match"]),
    ("DELETE", "object", None, "", None, []),
    ("POST", "object", "uploads", "uploads", None, ["Content-Type"]),
    ("PUT", "upload", "uploadId", "partNumber=1", "data", []),
    ("PUT", "upload", "uploadId", "partNumber=2", None,
     ["x-amz-copy-source", "x-amz-copy-source-range"]),
    ("GET", "upload", "uploadId", "", None, []),
    ("POST", "upload", "uploadId", "", "complete", []),
    ("DELETE", "upload", "uploadId", "", None, []),
]
for _sub in ("acl", "cors", "lifecycle", "policy", "tagging", "versioning"):
    OPERATIONS.append(("GET", "bucket", _sub, _sub, None, []))
    OPERATIONS.append(("PUT", "bucket", _sub, _sub, "policy" if _sub == "policy" else _sub,
                       ["x-amz-acl"] if _sub == "acl" else []))
    if _sub not in ("acl", "versioning"):
        OPERATIONS.append(("DELETE", "bucket", _sub, _sub, None, []))
for _sub in ("acl", "tagging"):
    OPERATIONS += [("GET", "object", _sub, _sub, None, []),
                   ("PUT", "object", _sub, _sub, _sub, []),
                   ("DELETE", "object", _sub, _sub, None, [])]

KEYS = ["obj", "a/b", "é/x", "new", "dir/", "a//b", "%", "sp ace", "+plus", "x" * 1025,
        "\x00", "\x01key", "é", "\ud800", "..", "../../etc", "k\r\nX: y", "~", "?", "#"]


def _put_body(rng, kind: str):
    """(body, extra headers) for an operation's body kind."""
    if kind == "data":
        return maybe_nasty(rng, "hello world", 0.1).encode("utf-8", "surrogatepass"), []
    if kind == "chunked":
        return chunked_body(rng, b"hello world")
    if kind == "policy":
        return policy_body(rng), []
    if kind == "create":
        return (xml_body(rng, "create") if rng.random() < 0.5 else b""), []
    return xml_body(rng, kind), []


def s3_request(rng, signer, uploads: list[str], counter: int, s3_domain: str = "") -> Wire:
    """One S3 request: an operation, built as a client would, then mutated and signed;
    with *s3_domain*, some name their bucket virtual-host style (in the Host header)."""
    method, target, sub, query, kind, usual = OPERATIONS[counter % len(OPERATIONS)]
    bucket = "fuzz"
    key = rng.choice(KEYS[:6]) if rng.random() < 0.8 else rng.choice(KEYS)
    params = [tuple(p.partition("=")[::2]) for p in query.split("&") if p]
    if target == "new-bucket":
        bucket = f"fuzz-{counter}"
    if rng.random() < 0.08:
        bucket = nasty(rng, bucket)
    if target == "upload":
        index = rng.randrange(len(uploads))
        key, upload = f"mp{index}", uploads[index]
        params = [("uploadId", maybe_nasty(rng, upload, 0.2))] + [
            p for p in params if p[0] != "uploadId"]
    if target == "service":
        path = "/"
    elif target in ("bucket", "new-bucket"):
        path = "/" + pct(bucket, safe="")
    else:
        path = "/" + pct(bucket, safe="") + "/" + pct(key, safe="/")
    headers = [(name, HEADERS[name]) for name in usual]
    for name in rng.sample(sorted(HEADERS), rng.randint(0, 3)):
        headers.append((name, HEADERS[name]))
    headers = [(name, maybe_nasty(rng, value, 0.35)) for name, value in headers]
    for name in rng.sample(sorted(PARAMS), rng.randint(0, 2)):
        params.append((name, PARAMS[name]))
    params = [(name, maybe_nasty(rng, value, 0.35) if value else value)
              for name, value in params]
    if params and rng.random() < 0.1:
        params.append((params[-1][0], nasty(rng, params[-1][1] or "x")))   # duplicated
    body, extra = _put_body(rng, kind) if kind not in (None, "post") else (b"", [])
    headers += extra
    if kind in ("delete", "complete") or rng.random() < 0.1:
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        headers.append(("Content-MD5", maybe_nasty(rng, md5, 0.3)))
    label = f"s3 {method} {target}{'?' + sub if sub else ''}"
    wire = Wire(method, path, encode_pairs([(k, v if v else None) for k, v in params]),
                headers, body, label)
    if s3_domain and target != "service" and rng.random() < 0.1:
        port = signer.host.rpartition(":")[2]
        signer = replace(signer, host=f"{pct(bucket, safe='')}.{s3_domain}:{port}")
        wire.path = wire.path[len("/" + pct(bucket, safe="")):] or "/"
        wire.label += " virtual-host"
    if kind == "post":
        return post_object(rng, signer, wire)
    return sign(rng, signer, wire, kind == "chunked")


def sign(rng, signer, wire: Wire, chunked: bool) -> Wire:
    roll = rng.random()
    if roll < 0.55:
        content = rng.choice(["UNSIGNED-PAYLOAD", hashlib.sha256(wire.body).hexdigest()])
        if chunked:
            content = rng.choice(["STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"])
        signed = signer.v4(wire.with_header("x-amz-content-sha256", content), "s3")
        signed.label += " v4"
        if content == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
            signed.body = signed_chunks(rng, signed, signer, b"hello world")
    elif roll < 0.7:
        signed = signer.v4_presigned(wire, "s3", rng.choice([1, 60, 604800]))
        signed.label += " v4 presigned"
        if rng.random() < 0.4:      # a presigned URL edited after signing
            signed.query = signed.query.replace(
                "X-Amz-Expires=", "X-Amz-Expires=" + pct(nasty(rng, "")), 1)
    elif roll < 0.8:
        signed = signer.s3_v2(wire)
        signed.label += " v2"
    elif roll < 0.9:
        signed = signer.s3_v2_presigned(wire)
        signed.label += " v2 presigned"
        if rng.random() < 0.5:
            signed.query = signed.query.replace(
                "Expires=", "Expires=" + pct(rng.choice(["9" * 30, "-", "²", "99999999999"])),
                1)
    elif roll < 0.95:
        signed = wire
        signed.label += " anonymous"
    else:
        signed = broken_auth(rng, wire, signer.key_id)
        signed.label += " broken auth"
    if rng.random() < 0.05:            # a Content-Length that is not the body's
        signed.content_length = rng.choice(["abc", "-1", "²", "9" * 30, str(len(wire.body) + 5),
                                            ""])
    return signed


def post_object(rng, signer, wire: Wire) -> Wire:
    """A browser-form upload (PostObject) with a SigV4 policy, maybe malformed."""
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    credential = f"{signer.key_id}/{date[:8]}/{signer.region}/s3/aws4_request"
    expiration = rng.choice(["2099-01-01T00:00:00Z", "2099-01-01T00:00:00.000Z"])
    if rng.random() < 0.4:
        expiration = rng.choice(NASTY_DATES + ["2026-13-45T00:00:00Z", "2030-02-30T00:00:00Z"])
    conditions = [{"bucket": "fuzz"}, ["starts-with", "$key", ""],
                  {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-credential": credential},
                  {"x-amz-date": date}]
    if rng.random() < 0.5:
        conditions.append(rng.choice([
            ["content-length-range", rng.choice([0, -1, 10 ** 30]), rng.choice([10, "²", 1e99])],
            ["starts-with", nasty(rng, "$key"), "x"], ["eq", "$acl"], {"acl": 5},
            ["content-length-range", "²", "9" * 5000], "x", [], {"a": "b", "c": "d"}]))
    policy_text = json.dumps({"expiration": expiration, "conditions": conditions})
    if rng.random() < 0.1:
        policy_text = policy_text[:rng.randrange(len(policy_text))]
    policy = base64.b64encode(policy_text.encode()).decode()
    if rng.random() < 0.05:
        policy = nasty(rng, policy)
    key = v4_signing_key(signer.secret, date[:8], signer.region, "s3")
    fields = {"key": maybe_nasty(rng, "upload/${filename}", 0.2),
              "x-amz-algorithm": "AWS4-HMAC-SHA256", "x-amz-credential": credential,
              "x-amz-date": date, "policy": policy,
              "x-amz-signature": hmac.new(key, policy.encode("utf-8", "surrogatepass"),
                                          hashlib.sha256).hexdigest()}
    for name in rng.sample(["success_action_status", "success_action_redirect", "acl",
                            "Content-Type", "x-amz-meta-a", "tagging"], rng.randint(0, 2)):
        fields[name] = nasty(rng, {"success_action_status": "201"}.get(name, "x"))
    if rng.random() < 0.2:
        fields[rng.choice(sorted(fields))] = nasty(rng, "x")
    boundary = "fuzzboundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{maybe_nasty(rng, "a.txt", 0.2)}"\r\n\r\nhello\r\n--{boundary}--\r\n')
    body = "".join(parts).encode("utf-8", "surrogatepass")
    if rng.random() < 0.15:
        body = body[:rng.randrange(len(body))]
    content_type = f"multipart/form-data; boundary={boundary}"
    if rng.random() < 0.05:
        content_type = nasty(rng, content_type)
    return replace(wire, headers=[("Host", signer.host), ("Content-Type", content_type)],
                   body=body, label=wire.label + " PostObject")
