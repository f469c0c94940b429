"""Who may do what to a bucket or object: one decision point for every S3 operation.

:func:`allowed` combines the bucket policy (explicit Deny wins), ownership, and the ACL of
the bucket or object, using :mod:`eucalite.s3.policy` and :mod:`eucalite.s3.acl`. Each S3
action maps to the ACL
permission that grants it (``PERMISSIONS``); actions with no ACL permission (bucket
configuration) are for the owner or whoever the bucket policy allows.

The request-level facts policy conditions read (source address, TLS, current time) are set
once per request by the adapter with :func:`set_request_context`.
"""
from __future__ import annotations

import contextvars
import functools
import json
from typing import Any, Mapping

from ..accounts import Principal
from ..errors.s3 import AccessDenied
from ..policy import arns, evaluation
from . import acl, policy

#: action -> (ACL target, ACL permission)
PERMISSIONS: dict[str, tuple[str, str]] = {
    "s3:ListBucket": ("bucket", "READ"),
    "s3:ListBucketVersions": ("bucket", "READ"),
    "s3:ListBucketMultipartUploads": ("bucket", "READ"),
    "s3:PutObject": ("bucket", "WRITE"),
    "s3:DeleteObject": ("bucket", "WRITE"),
    "s3:DeleteObjectVersion": ("bucket", "WRITE"),
    "s3:AbortMultipartUpload": ("bucket", "WRITE"),
    "s3:ListMultipartUploadParts": ("bucket", "WRITE"),
    "s3:GetBucketAcl": ("bucket", "READ_ACP"),
    "s3:PutBucketAcl": ("bucket", "WRITE_ACP"),
    "s3:GetObject": ("object", "READ"),
    "s3:GetObjectVersion": ("object", "READ"),
    "s3:GetObjectTagging": ("object", "READ"),
    "s3:GetObjectVersionTagging": ("object", "READ"),
    "s3:GetObjectAcl": ("object", "READ_ACP"),
    "s3:GetObjectVersionAcl": ("object", "READ_ACP"),
    "s3:PutObjectAcl": ("object", "WRITE_ACP"),
    "s3:PutObjectVersionAcl": ("object", "WRITE_ACP"),
}

_request_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "s3_request_context", default={})


def set_request_context(context: Mapping[str, Any]) -> None:
    """Facts about the current request that policy conditions may test."""
    _request_context.set(dict(context))


@functools.lru_cache(maxsize=256)
def _policy(text: str, bucket: str):
    return policy.parse_policy(text, bucket)


def allowed(requester: Principal | None, action: str, bucket, obj=None, *, key: str | None = None,
            context: Mapping[str, Any] | None = None) -> bool:
    """May *requester* perform *action* on *bucket* (or on object version *obj* / *key*)?"""
    target, permission = PERMISSIONS.get(action, ("bucket", None))
    if target == "object" and obj is not None:
        owner, acl_json = obj.owner_id, obj.acl_json
    else:
        owner, acl_json = bucket.owner_id, bucket.acl_json
    owner_canonical = acl.canonical_id(owner)
    stored_acl = acl.Acl.from_json(json.loads(acl_json)) if acl_json else \
        acl.Acl(owner_canonical, [])
    policy_text = bucket.get_json("policy")
    bucket_policy = _policy(policy_text, bucket.name) if policy_text else None
    if key is None and obj is not None:
        key = obj.key
    full_context = evaluation.request_context(policy.caller(requester),
                                              {**_request_context.get(), **(context or {})})
    is_owner = requester is not None and requester.account_id == owner
    return policy.decide(requester, is_owner=is_owner, acl=stored_acl, permission=permission,
                         policy=bucket_policy, action=action,
                         resource=arns.s3(bucket.name, key), context=full_context)


def require(requester: Principal | None, action: str, bucket, obj=None, *,
            key: str | None = None, context: Mapping[str, Any] | None = None) -> None:
    if not allowed(requester, action, bucket, obj, key=key, context=context):
        raise AccessDenied()
