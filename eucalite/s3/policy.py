"""S3 bucket policies: S3's grammar for the one policy engine (:mod:`eucalite.policy`),
its rules only S3 has, and :func:`decide`, the rule that combines a policy with ownership
and the ACL.

* :func:`parse_policy` checks a PutBucketPolicy document (``MalformedPolicy`` with S3's
  messages) into a :class:`~eucalite.policy.document.Policy`.
* :func:`evaluate` answers ``"Allow"``, ``"Deny"`` or None for one request.
* :func:`decide` - explicit Deny, then ownership, then policy Allow, then the ACL
  (:mod:`eucalite.s3.acl`).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from ..accounts import Principal
from ..errors.s3 import MalformedPolicy
from ..policy import document, evaluation
from ..policy.conditions import normalize_context, wildcard
from ..policy.document import ALLOW, DENY, Policy, Statement
from ..policy.grammar import Grammar, Malformed
from .acl import Acl, acl_allows, canonical_id, is_canonical_id

# --- S3's grammar ---------------------------------------------------------------------

#: S3 caps a bucket policy at 20 KB (measured on the document without whitespace).
MAX_POLICY_SIZE = 20 * 1024
S3_ARN_PREFIX = "arn:aws:s3:::"

#: S3's sentences for each broken rule (see :class:`eucalite.policy.grammar.Grammar`).
MESSAGES: Mapping[str, str] = {
    "syntax": "This policy contains invalid Json",
    "json": "This policy contains invalid Json",
    "json_first_byte": "Policies must be valid JSON and the first byte must be '{{'",
    "size": "Policies must be less than 20 KB",
    "unknown_field": "Unknown field {name}",
    "version": "The policy must contain a valid version string",
    "old_version": "The policy must contain a valid version string",
    "id_type": "Policy Id must be a string",
    "missing_statement": "Missing required field Statement",
    "empty_statement": "Could not parse the policy: Statement is empty!",
    "both": "Statement cannot contain both {first} and {second}",
    "missing_principal": "Missing required field {name}",
    "missing_action": "Missing required field {name}",
    "missing_resource": "Missing required field {name}",
    "missing_effect": "Missing required field {name}",
    "effect": "Invalid effect: {effect}",
    "sid_type": "Statement Sid must be a string",
    "sid_unique": "Statement IDs (SID) in a single policy must be unique",
    "principal": "Invalid principal in policy",
    "action": "Policy has invalid action",
    "resource": "Policy has invalid resource",
    "action_resource": "Action does not apply to any resource(s) in statement",
    "condition_type": "Invalid Condition type : {operator}",
    "condition_value_type": "Invalid value for condition {operator}",
    "condition_key": "Policy has an invalid condition key",
    "condition_ip": "Invalid IP address in Conditions",
    "condition_value": "Invalid value {values!r} for condition {operator}",
}

#: Actions on objects (Resource arn:aws:s3:::bucket/key), lower-case.
OBJECT_ACTIONS = frozenset(f"s3:{name}".lower() for name in (
    "AbortMultipartUpload", "BypassGovernanceRetention", "DeleteObject", "DeleteObjectTagging",
    "DeleteObjectVersion", "DeleteObjectVersionTagging", "GetObject", "GetObjectAcl",
    "GetObjectAttributes", "GetObjectLegalHold", "GetObjectRetention", "GetObjectTagging",
    "GetObjectTorrent", "GetObjectVersion", "GetObjectVersionAcl",
    "GetObjectVersionAttributes", "GetObjectVersionForReplication",
    "GetObjectVersionTagging", "GetObjectVersionTorrent", "InitiateReplication",
    "ListMultipartUploadParts", "ObjectOwnerOverrideToBucketOwner", "PutObject",
    "PutObjectAcl", "PutObjectLegalHold", "PutObjectRetention", "PutObjectTagging",
    "PutObjectVersionAcl", "PutObjectVersionTagging", "ReplicateDelete", "ReplicateObject",
    "ReplicateTags", "RestoreObject"))

#: Actions on buckets (Resource arn:aws:s3:::bucket), lower-case.
BUCKET_ACTIONS = frozenset(f"s3:{name}".lower() for name in (
    "DeleteBucket", "DeleteBucketPolicy", "DeleteBucketWebsite", "GetAccelerateConfiguration",
    "GetAnalyticsConfiguration", "GetBucketAcl", "GetBucketCORS", "GetBucketLocation",
    "GetBucketLogging", "GetBucketNotification", "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls", "GetBucketPolicy", "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock", "GetBucketRequestPayment", "GetBucketTagging",
    "GetBucketVersioning", "GetBucketWebsite", "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration", "GetInventoryConfiguration",
    "GetLifecycleConfiguration", "GetMetricsConfiguration", "GetReplicationConfiguration",
    "ListBucket", "ListBucketMultipartUploads", "ListBucketVersions",
    "PutAccelerateConfiguration", "PutAnalyticsConfiguration", "PutBucketAcl",
    "PutBucketCORS", "PutBucketLogging", "PutBucketNotification",
    "PutBucketObjectLockConfiguration", "PutBucketOwnershipControls", "PutBucketPolicy",
    "PutBucketPublicAccessBlock", "PutBucketRequestPayment", "PutBucketTagging",
    "PutBucketVersioning", "PutBucketWebsite", "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration", "PutInventoryConfiguration",
    "PutLifecycleConfiguration", "PutMetricsConfiguration", "PutReplicationConfiguration"))

#: Policy actions only the account that owns the bucket may use, and whose admin user
#: (the account's root) keeps even when the policy denies them: no owner locks itself out.
POLICY_ACTIONS = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy",
                            "s3:deletebucketpolicy"})


def _names_bucket(pattern: str, bucket: str) -> bool:
    """Can resource *pattern* match the bucket or an object in it?"""
    rest = pattern[len(S3_ARN_PREFIX):]
    head = rest.split("/", 1)[0]
    if "/" in rest:
        return wildcard(head, False).matches(bucket)
    return wildcard(rest, False).matches(bucket)


def _check_resources(resources: tuple[str, ...] | None, bucket: str) -> None:
    for resource in resources or ():
        if not resource.startswith(S3_ARN_PREFIX) or not _names_bucket(resource, bucket):
            raise Malformed("resource")


def _check_action_resource_types(actions: tuple[str, ...], resources: tuple[str, ...],
                                 bucket: str) -> None:
    """S3 refuses a statement naming an action that applies to none of its resources."""
    rests = [resource[len(S3_ARN_PREFIX):] for resource in resources]
    has_object = any("/" in rest or "*" in rest for rest in rests)
    has_bucket = any(wildcard(rest, False).matches(bucket) for rest in rests)
    for action in actions:
        name = action.lower()
        if (name in OBJECT_ACTIONS and not has_object) or \
                (name in BUCKET_ACTIONS and not has_bucket):
            raise Malformed("action_resource")


def grammar(bucket: str) -> Grammar:
    """The grammar of a policy for *bucket*: S3's actions and condition keys, a Principal,
    resources naming this bucket or its objects, actions that apply to them."""
    def check_statement(statement: Statement) -> None:
        _check_resources(statement.resources, bucket)
        _check_resources(statement.not_resources, bucket)
        if statement.actions and statement.resources:
            _check_action_resource_types(statement.actions, statement.resources, bucket)

    return Grammar(name="bucket policy", error=MalformedPolicy, messages=MESSAGES,
                   max_size=MAX_POLICY_SIZE, principal="required", action_services=("s3",),
                   condition_key=re.compile(r"^(aws|s3):\S+\Z", re.IGNORECASE),
                   canonical_id=is_canonical_id, check_statement=check_statement,
                   # AWS lets a resource policy name a role (all its sessions) or one
                   # role session, as trust policies do.
                   role_principals=True)


def parse_policy(text: str | bytes, bucket: str, *,
                 principal_exists: Callable[[str], bool] | None = None) -> Policy:
    """Validate a PutBucketPolicy document for *bucket*; ``MalformedPolicy`` when invalid.

    What every policy is checked for (:func:`eucalite.policy.document.parse`, Version
    defaulting to 2008-10-17, 20 KB), plus S3's own: ``s3:`` actions, resources naming this
    bucket or its objects, actions applicable to those resources, ``aws:``/``s3:``
    condition keys. *principal_exists*: see :func:`eucalite.policy.document.parse`.
    """
    return document.parse(text, grammar(bucket), principal_exists=principal_exists)


def caller(requester: Principal | None) -> evaluation.Caller | None:
    """The policy engine's view of an S3 requester (None: anonymous)."""
    if requester is None:
        return None
    # a role session matches its role's and its session's principals, never a user's
    return evaluation.Caller(account_id=requester.account_id, user_name=requester.user_name,
                             user_id=requester.user_id,
                             canonical_id=canonical_id(requester.account_id),
                             role_name=requester.role_name,
                             session_name=requester.session_name)


def evaluate(policy: Policy, requester: Principal | None, action: str, resource: str,
             context: Mapping[str, Any] | None = None) -> str | None:
    """``"Deny"`` if any applicable statement denies, else ``"Allow"`` if one allows, else
    None (the policy says nothing about this request).

    *action* is an IAM action (``s3:GetObject``; matched case-insensitively), *resource* an
    ARN (``arn:aws:s3:::bucket`` or ``arn:aws:s3:::bucket/key``). *context* holds condition
    keys (looked up case-insensitively) mapped to a string, a boolean or a list of strings.
    Principals: ``*`` matches anyone, anonymous included; an account (``123456789012`` or
    ``arn:aws:iam::123456789012:root``) any of its users; a user ARN that user.
    """
    match = evaluation.evaluate(policy, caller(requester), action, resource,
                                normalize_context(context))
    return None if match is None else match.effect


# --- the decision ---------------------------------------------------------------------

def decide(requester: Principal | None, *, is_owner: bool, acl: Acl | None,
           permission: str | None, policy: Policy | None, action: str, resource: str,
           context: Mapping[str, Any] | None = None) -> bool:
    """May *requester* perform *action* on *resource*?

    In order: an explicit policy Deny refuses (except that the owning account's admin user
    keeps Get/Put/DeleteBucketPolicy, so an owner cannot lock itself out); the owner
    (*is_owner*, the requester's account owns the bucket or object) may; a policy Allow
    grants; an ACL grant of *permission* (None: the action has no ACL permission) grants;
    anything else is refused.
    """
    verdict = None
    if policy is not None:
        verdict = evaluate(policy, requester, action, resource, context)
    if verdict == DENY:
        return bool(is_owner and requester is not None and requester.is_root
                    and action.lower() in POLICY_ACTIONS)
    if is_owner or verdict == ALLOW:
        return True
    return bool(acl is not None and permission and acl_allows(acl, requester, permission))
