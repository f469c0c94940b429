"""Who may do what to a bucket or object: one decision point for every S3 operation.

:func:`allowed` combines the caller's identity policies (:mod:`eucalite.access`, the one
gate), the bucket policy (explicit Deny wins), ownership, and the ACL of the bucket or
object, using :mod:`eucalite.s3.policy` and :mod:`eucalite.s3.acl`, as the bucket's
ownership controls and Block Public Access let them count (:func:`.ownership.in_force`).
Each S3 action maps to the ACL permission that grants it (``PERMISSIONS``); actions with no
ACL permission (bucket configuration) are for the owner or whoever the bucket policy
allows.

The request-level facts policy conditions read (source address, TLS, current time, the
request's S3 condition keys) are set once per request by the adapter with
:func:`set_request_context`; they live in the request's app context (``flask.g``), so a
request that sets none (a console page) never sees another's, even on a reused thread.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Mapping

from flask import g, has_app_context

from .. import access
from ..accounts import Principal
from ..errors.s3 import AccessDenied
from ..policy import arns, evaluation
from ..policy.document import ALLOW, DENY
from . import acl, ownership, policy, requestkeys

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
    "s3:GetObjectAttributes": ("object", "READ"),
    "s3:GetObjectVersionAttributes": ("object", "READ"),
    "s3:GetObjectTagging": ("object", "READ"),
    "s3:GetObjectVersionTagging": ("object", "READ"),
    "s3:GetObjectAcl": ("object", "READ_ACP"),
    "s3:GetObjectVersionAcl": ("object", "READ_ACP"),
    "s3:PutObjectAcl": ("object", "WRITE_ACP"),
    "s3:PutObjectVersionAcl": ("object", "WRITE_ACP"),
}

def set_request_context(context: Mapping[str, Any]) -> None:
    """Facts about the current request that policy conditions may test."""
    g.s3_request_context = dict(context)


def add_request_context(context: Mapping[str, Any]) -> None:
    """More such facts, learnt once the request's body is read (a PutObjectTagging's tags)."""
    g.s3_request_context = {**request_context(), **context}


def request_context() -> dict[str, Any]:
    """The current request's facts ({} outside a request or when none were set)."""
    return g.get("s3_request_context", {}) if has_app_context() else {}


@functools.lru_cache(maxsize=256)
def _policy(text: str, bucket: str):
    return policy.parse_policy(text, bucket)


def _group_grant(stored: acl.Acl, permission: str | None) -> bool:
    """Does the ACL grant *permission* to everyone or every signed requester?"""
    return bool(permission) and any(
        grant.permission in (permission, acl.FULL_CONTROL)
        and grant.grantee in (acl.ALL_USERS, acl.AUTHENTICATED_USERS)
        for grant in stored.grants)


def _bucket_policy_says(bucket_policy, requester: Principal, action: str, resource: str,
                        context: Mapping[str, list[str]]) -> tuple[str | None, bool]:
    """What the bucket policy says (``Deny``, ``Allow`` or None) and whether an allowing
    statement names the requester itself (its user, role, session, or everyone) rather than
    its account: naming the account only delegates to the account's own policies."""
    caller = policy.caller(requester)
    verdict, direct = None, False
    for statement in bucket_policy.statements:
        if not evaluation.statement_applies(statement, caller, action, resource, context,
                                            bucket_policy.uses_variables):
            continue
        if statement.effect == DENY:
            return DENY, False
        verdict = ALLOW
        own = tuple(p for p in statement.principals or () if p[0] != "account")
        direct = direct or bool(own) and evaluation.statement_applies(
            dataclasses.replace(statement, principals=own), caller, action, resource,
            context, bucket_policy.uses_variables)
    return verdict, direct


def allowed(requester: Principal | None, action: str, bucket, obj=None, *, key: str | None = None,
            context: Mapping[str, Any] | None = None) -> bool:
    """May *requester* perform *action* on *bucket* (or on object version *obj* / *key*)?

    AWS's rules: anonymous and account roots as :func:`.policy.decide` says (the owner's
    root may, another account's root needs the bucket policy or ACL); for users and role
    sessions (:mod:`eucalite.access`) an explicit Deny in their policies or the bucket
    policy refuses; inside the owner's account an Allow in their policies grants, and so
    does one in the bucket policy that names them (one naming their account delegates to
    their policies; ACL grants to the account are its root's; grants to everyone count);
    across accounts both their policies and the bucket policy or ACL must allow."""
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
    owner, stored_acl, bucket_policy = ownership.in_force(bucket, owner, stored_acl,
                                                          bucket_policy, requester)
    if key is None and obj is not None:
        key = obj.key
    resource = arns.s3(bucket.name, key)
    keys = {**request_context(), **requestkeys.existing_tags(obj), **(context or {})}
    is_owner = requester is not None and requester.account_id == owner
    if requester is None or access.unrestricted(requester, action):
        full_context = evaluation.request_context(policy.caller(requester), keys)
        return policy.decide(requester, is_owner=is_owner, acl=stored_acl,
                             permission=permission, policy=bucket_policy, action=action,
                             resource=resource, context=full_context)
    mine = access.decide(requester, action, resource, context=keys)
    verdict, direct = None, False
    if bucket_policy is not None:
        verdict, direct = _bucket_policy_says(bucket_policy, requester, action, resource,
                                              access.context_for(requester, keys))
    if mine.effect == DENY or verdict == DENY:
        return False
    if is_owner:
        return mine.allowed or direct or _group_grant(stored_acl, permission)
    return mine.allowed and (verdict == ALLOW or
                             bool(permission and acl.acl_allows(stored_acl, requester,
                                                                permission)))


def require(requester: Principal | None, action: str, bucket, obj=None, *,
            key: str | None = None, context: Mapping[str, Any] | None = None) -> None:
    if not allowed(requester, action, bucket, obj, key=key, context=context):
        raise AccessDenied()


def require_identity(requester: Principal, action: str, bucket: str | None = None) -> None:
    """AccessDenied unless *requester*'s own policies allow *action* on *bucket*'s ARN
    (None: ``*``): the actions no bucket policy can grant (``s3:ListAllMyBuckets``,
    ``s3:CreateBucket``)."""
    resource = "*" if bucket is None else arns.s3(bucket)
    if not access.decide(requester, action, resource,
                         context=request_context()).allowed:
        raise AccessDenied()
