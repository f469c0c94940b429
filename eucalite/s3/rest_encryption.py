"""S3 controllers for bucket default encryption (Put/Get/DeleteBucketEncryption) and the
request side of server-side encryption: reading a write's ``x-amz-server-side-encryption``
and the SSE-C ``x-amz-server-side-encryption-customer-*`` headers (or their copy-source and
POST-form forms) into what :mod:`eucalite.s3.sse` works with.

Every bucket without a configuration of its own encrypts new objects with SSE-S3, as AWS
has since 2023: GetBucketEncryption of such a bucket answers that default rule, and
DeleteBucketEncryption returns a bucket to it.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from typing import Mapping

from flask import Response, request

from ..db import db, write_lock
from ..errors.s3 import InvalidArgument, InvalidEncryptionAlgorithmError, InvalidRequest, \
    MalformedXML
from . import buckets, sse, xmlbody
from .models import MultipartUpload
from .routing import S3Request, empty, route, xml_response
from .xmlout import add, root

SSE_HEADER = "x-amz-server-side-encryption"
CUSTOMER = "x-amz-server-side-encryption-customer-"
COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-"
DEFAULT_RULE = {"SSEAlgorithm": sse.AES256, "BucketKeyEnabled": False}


# --- request headers ---------------------------------------------------------------------

def requested(fields: Mapping[str, str], config) -> tuple[dict | None, sse.CustomerKey | None]:
    """What a write (PUT, POST form, CreateMultipartUpload, the target of a copy) asks for:
    (record request, SSE-C key). (None, None) asks for nothing: the bucket's default.
    *fields* has lower-case names (request headers or a POST form's fields)."""
    value = fields.get(SSE_HEADER)
    customer = customer_key(fields, CUSTOMER, config)
    if value is not None:
        if customer is not None:
            raise InvalidArgument("Server Side Encryption with Customer provided key is "
                                  "incompatible with the encryption method specified",
                                  ArgumentName=SSE_HEADER, ArgumentValue=value)
        if value in sse.KMS_ALGORITHMS:
            raise sse.kms_unavailable(SSE_HEADER, value)
        if value != sse.AES256:
            raise InvalidArgument("The encryption method specified is not supported",
                                  ArgumentName=SSE_HEADER, ArgumentValue=value)
        return {"alg": sse.AES256}, None
    kms_key = fields.get(SSE_HEADER + "-aws-kms-key-id")
    if kms_key is not None:
        raise sse.kms_unavailable(SSE_HEADER + "-aws-kms-key-id", kms_key)
    if customer is not None:
        return sse.customer_record(customer), customer
    return None, None


def customer_key(fields: Mapping[str, str], prefix: str, config) -> sse.CustomerKey | None:
    """The SSE-C key the ``<prefix>algorithm/key/key-MD5`` fields carry, checked as AWS
    checks it; None when none of them is there."""
    algorithm = fields.get(prefix + "algorithm")
    encoded = fields.get(prefix + "key")
    digest = fields.get(prefix + "key-md5")
    if algorithm is None and encoded is None and digest is None:
        return None
    _require_secure(config)
    if algorithm is None:
        raise InvalidArgument("Requests specifying Server Side Encryption with Customer "
                              "provided keys must provide a valid encryption algorithm.",
                              ArgumentName=prefix + "algorithm", ArgumentValue="null")
    if algorithm != sse.AES256:
        raise InvalidEncryptionAlgorithmError("The encryption request you specified is not "
                                              "valid. The valid value is AES256.",
                                              ArgumentName=prefix + "algorithm",
                                              ArgumentValue=algorithm)
    if encoded is None:
        raise InvalidArgument("Requests specifying Server Side Encryption with Customer "
                              "provided keys must provide an appropriate secret key.",
                              ArgumentName=prefix + "key", ArgumentValue="null")
    if digest is None:
        raise InvalidArgument("Requests specifying Server Side Encryption with Customer "
                              "provided keys must provide the client calculated MD5 of the "
                              "secret key.", ArgumentName=prefix + "key-MD5",
                              ArgumentValue="null")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise InvalidArgument("The secret key was invalid for the specified algorithm.",
                              ArgumentName=prefix + "key", ArgumentValue="null")
    if base64.b64encode(hashlib.md5(key).digest()).decode() != digest:
        raise InvalidArgument("The calculated MD5 hash of the key did not match the hash "
                              "that was provided.", ArgumentName=prefix + "key-MD5",
                              ArgumentValue=digest)
    return sse.CustomerKey(key, digest)


def _require_secure(config) -> None:
    """SSE-C only over TLS, as AWS (a key in clear text on the wire is given away), unless
    the client is on this host or ``s3_sse_c_allow_http`` says plain HTTP is fine here."""
    if request.is_secure or str(config.get("public_url") or "").startswith("https://"):
        return
    if config.get("s3_sse_c_allow_http"):
        return
    try:
        if ipaddress.ip_address(request.remote_addr or "").is_loopback:
            return
    except ValueError:
        pass
    raise InvalidRequest("Requests specifying Server Side Encryption with Customer provided "
                         "keys must be made over a secure connection.")


def read_key(req: S3Request) -> sse.CustomerKey | None:
    """The SSE-C key a GET/HEAD/UploadPart sends."""
    return customer_key(req.headers, CUSTOMER, req.s3.config)


def object_read_key(req: S3Request) -> sse.CustomerKey | None:
    """The SSE-C key of a GET/HEAD, which must not name x-amz-server-side-encryption:
    AWS answers 400 to a read that does (only a write chooses the encryption)."""
    value = req.header(SSE_HEADER)
    if value is not None:
        raise InvalidArgument("x-amz-server-side-encryption header is not supported for "
                              "this operation.", ArgumentName=SSE_HEADER, ArgumentValue=value)
    return read_key(req)


def source_key(req: S3Request) -> sse.CustomerKey | None:
    """The SSE-C key of a copy's source (x-amz-copy-source-server-side-encryption-...)."""
    return customer_key(req.headers, COPY_SOURCE_CUSTOMER, req.s3.config)


def asks_encryption(req: S3Request) -> bool:
    """Whether a copy names the target's encryption (so copying an object onto itself
    changes something, as AWS allows)."""
    return req.header(SSE_HEADER) is not None or req.header(CUSTOMER + "algorithm") is not None


# --- bucket default encryption -----------------------------------------------------------

def bucket_rule(bucket) -> dict:
    """The bucket's default-encryption rule (AWS's SSE-S3 default when it has none)."""
    return bucket.get_json("encryption") or DEFAULT_RULE


@route("GET", "bucket", "encryption")
def get_bucket_encryption(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetEncryptionConfiguration")
    rule = bucket_rule(bucket)
    document = root("ServerSideEncryptionConfiguration")
    item = add(document, "Rule")
    add(item, "ApplyServerSideEncryptionByDefault", SSEAlgorithm=rule["SSEAlgorithm"])
    add(item, "BucketKeyEnabled", bool(rule.get("BucketKeyEnabled")))
    return xml_response(document)


@route("PUT", "bucket", "encryption")
def put_bucket_encryption(req: S3Request) -> Response:
    buckets.get(req.requester, req.bucket, "s3:PutEncryptionConfiguration")
    _store(req, _parse(req.body()))
    return empty(200)


@route("DELETE", "bucket", "encryption")
def delete_bucket_encryption(req: S3Request) -> Response:
    buckets.get(req.requester, req.bucket, "s3:PutEncryptionConfiguration")
    _store(req, None)
    return empty(204)


def _store(req: S3Request, rule: dict | None) -> None:
    write_lock()
    bucket = buckets.find(req.bucket)
    bucket.set_json("encryption", rule)
    db.session.commit()


def _parse(body: bytes) -> dict:
    """One Rule with ApplyServerSideEncryptionByDefault (AES256; KMS refused, see
    sse.kms_unavailable) and an optional BucketKeyEnabled, as AWS takes it."""
    document = xmlbody.parse(body, "ServerSideEncryptionConfiguration")
    rules = document.findall("Rule")
    if len(rules) != 1:
        raise MalformedXML()
    default = rules[0].find("ApplyServerSideEncryptionByDefault")
    algorithm = xmlbody.child_text(default, "SSEAlgorithm") if default is not None else None
    if algorithm is None:
        raise MalformedXML()
    algorithm = algorithm.strip()
    if algorithm in sse.KMS_ALGORITHMS:
        raise sse.kms_unavailable("SSEAlgorithm", algorithm)
    if algorithm != sse.AES256:
        raise MalformedXML()
    if xmlbody.child_text(default, "KMSMasterKeyID") is not None:
        raise InvalidArgument("a KMSMasterKeyID is not applicable if the default sse "
                              "algorithm is not aws:kms or aws:kms:dsse",
                              ArgumentName="ApplyServerSideEncryptionByDefault")
    enabled = (xmlbody.child_text(rules[0], "BucketKeyEnabled") or "false").strip().lower()
    if enabled not in ("true", "false"):
        raise MalformedXML()
    return {"SSEAlgorithm": algorithm, "BucketKeyEnabled": enabled == "true"}


def upload_headers(upload_id: str) -> dict[str, str]:
    """The encryption headers of an UploadPart(Copy) response: the upload's."""
    upload = db.session.get(MultipartUpload, upload_id)
    return sse.headers(upload.get_json("sse")) if upload is not None else {}
