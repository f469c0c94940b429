"""S3 bucket policies, pure: the JSON document validated the way S3 does it, its
evaluation for one request, and :func:`decide`, the rule that combines a policy with
ownership and the ACL.

* :func:`parse_policy` checks a PutBucketPolicy document (``MalformedPolicy`` with S3's
  messages) into a :class:`Policy`.
* :func:`evaluate` answers ``"Allow"``, ``"Deny"`` or None for one request, conditions
  (:mod:`eucalite.s3.conditions`) included.
* :func:`decide` - explicit Deny, then ownership, then policy Allow, then the ACL
  (:mod:`eucalite.s3.acl`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ..accounts import ADMIN_USER, Principal
from ..errors.s3 import MalformedPolicy
from .acl import Acl, acl_allows, canonical_id, is_canonical_id
from .conditions import (Condition, condition_holds, matches, normalize_context,
                         parse_conditions, wildcard)


# --- model ----------------------------------------------------------------------------

#: S3 caps a bucket policy at 20 KB (measured on the document without whitespace).
MAX_POLICY_SIZE = 20 * 1024
POLICY_VERSIONS = ("2008-10-17", "2012-10-17")
S3_ARN_PREFIX = "arn:aws:s3:::"

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Statement:
    """A validated statement. Principals are tuples such as ``("*",)``,
    ``("account", "123456789012")``, ``("user", "123456789012", "alice")``,
    ``("canonical", hex)`` or ``("service", name)``; exactly one of each Action/NotAction,
    Resource/NotResource and Principal/NotPrincipal pair is set."""

    sid: str | None
    effect: str
    principals: tuple[tuple[str, ...], ...] | None
    not_principals: tuple[tuple[str, ...], ...] | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A parsed bucket policy (see :func:`parse_policy`)."""

    version: str
    id: str | None
    statements: tuple[Statement, ...]

    @property
    def uses_variables(self) -> bool:
        """Policy variables (``${aws:username}``) are substituted only in version 2012."""
        return self.version == "2012-10-17"


# --- parsing --------------------------------------------------------------------------

_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                     "Resource", "NotResource", "Condition"}
_ACTION = re.compile(r"^s3:[A-Za-z0-9*?]+\Z", re.IGNORECASE)
_ACCOUNT_ID = re.compile(r"^[0-9]{12}\Z")
_ROOT_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):root\Z")
_USER_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):user/((?:[A-Za-z0-9_+=,.@-]+/)*)"
                       r"([A-Za-z0-9_+=,.@-]{1,64})\Z")

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


def _string_list(value: Any, message: str) -> tuple[str, ...]:
    """A JSON string or non-empty list of strings, else MalformedPolicy(*message*)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise MalformedPolicy(message)


def _parse_aws_principal(value: str,
                         principal_exists: Callable[[str], bool] | None) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    arn = None
    if _ACCOUNT_ID.match(value):
        principal, arn = ("account", value), f"arn:aws:iam::{value}:root"
    elif (match := _ROOT_ARN.match(value)):
        principal, arn = ("account", match.group(1)), value
    elif (match := _USER_ARN.match(value)):
        principal, arn = ("user", match.group(1), match.group(3)), value
    else:
        raise MalformedPolicy("Invalid principal in policy")
    if principal_exists is not None and not principal_exists(arn):
        raise MalformedPolicy("Invalid principal in policy")
    return principal


def _parse_principal(value: Any, principal_exists: Callable[[str], bool] | None
                     ) -> tuple[tuple[str, ...], ...]:
    """``"*"`` or ``{"AWS": ..., "CanonicalUser": ..., "Service": ...}``."""
    invalid = "Invalid principal in policy"
    if value == "*":
        return (("*",),)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(invalid)
    principals: list[tuple[str, ...]] = []
    for kind, entries in value.items():
        for entry in _string_list(entries, invalid):
            entry = entry.strip()
            if kind == "AWS":
                principals.append(_parse_aws_principal(entry, principal_exists))
            elif kind == "CanonicalUser" and is_canonical_id(entry):
                if principal_exists is not None and not principal_exists(entry):
                    raise MalformedPolicy(invalid)
                principals.append(("canonical", entry))
            elif kind == "Service" and entry:
                principals.append(("service", entry))
            else:
                raise MalformedPolicy(invalid)
    return tuple(principals)


def _parse_actions(value: Any) -> tuple[str, ...]:
    actions = _string_list(value, "Policy has invalid action")
    for action in actions:
        if action != "*" and not _ACTION.match(action):
            raise MalformedPolicy("Policy has invalid action")
    return actions


def _names_bucket(pattern: str, bucket: str) -> bool:
    """Can resource *pattern* match the bucket or an object in it?"""
    rest = pattern[len(S3_ARN_PREFIX):]
    head = rest.split("/", 1)[0]
    if "/" in rest:
        return wildcard(head, False).matches(bucket)
    return wildcard(rest, False).matches(bucket)


def _parse_resources(value: Any, bucket: str) -> tuple[str, ...]:
    resources = _string_list(value, "Policy has invalid resource")
    for resource in resources:
        if not resource.startswith(S3_ARN_PREFIX) or not _names_bucket(resource, bucket):
            raise MalformedPolicy("Policy has invalid resource")
    return resources


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
            raise MalformedPolicy("Action does not apply to any resource(s) in statement")


def _parse_statement(raw: Any, bucket: str,
                     principal_exists: Callable[[str], bool] | None) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicy("This policy contains invalid Json")
    for name in raw:
        if name not in _STATEMENT_FIELDS:
            raise MalformedPolicy(f"Unknown field {name}")
    for first, second in (("Principal", "NotPrincipal"), ("Action", "NotAction"),
                          ("Resource", "NotResource")):
        if first in raw and second in raw:
            raise MalformedPolicy(f"Statement cannot contain both {first} and {second}")
        if first not in raw and second not in raw:
            raise MalformedPolicy(f"Missing required field {first}")
    if "Effect" not in raw:
        raise MalformedPolicy("Missing required field Effect")
    effect = raw["Effect"]
    if effect not in (ALLOW, DENY):
        raise MalformedPolicy(f"Invalid effect: {effect}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise MalformedPolicy("Statement Sid must be a string")

    def optional(name: str, parser: Callable[..., Any], *args: Any) -> Any:
        return parser(raw[name], *args) if name in raw else None

    statement = Statement(
        sid=sid, effect=effect,
        principals=optional("Principal", _parse_principal, principal_exists),
        not_principals=optional("NotPrincipal", _parse_principal, principal_exists),
        actions=optional("Action", _parse_actions),
        not_actions=optional("NotAction", _parse_actions),
        resources=optional("Resource", _parse_resources, bucket),
        not_resources=optional("NotResource", _parse_resources, bucket),
        conditions=parse_conditions(raw.get("Condition", {})))
    if statement.actions and statement.resources:
        _check_action_resource_types(statement.actions, statement.resources, bucket)
    return statement


def _load_json(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPolicy("This policy contains invalid Json")
    if len(text) > 16 * MAX_POLICY_SIZE:
        raise MalformedPolicy("Policies must be less than 20 KB")
    if not text.lstrip().startswith("{"):
        raise MalformedPolicy("Policies must be valid JSON and the first byte must be '{'")
    try:
        data = json.loads(text)
    except ValueError:
        raise MalformedPolicy("This policy contains invalid Json")
    if not isinstance(data, dict):  # pragma: no cover - '{' checked above
        raise MalformedPolicy("This policy contains invalid Json")
    try:
        minified = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:      # a lone surrogate escape ("\ud800"): no text at all
        raise MalformedPolicy("This policy contains invalid Json")
    if len(minified) > MAX_POLICY_SIZE:
        raise MalformedPolicy("Policies must be less than 20 KB")
    return data


def parse_policy(text: str | bytes, bucket: str, *,
                 principal_exists: Callable[[str], bool] | None = None) -> Policy:
    """Validate a PutBucketPolicy document for *bucket*; ``MalformedPolicy`` when invalid.

    Checks what S3 checks: JSON object under 20 KB, Version (default 2008-10-17), a non-empty
    Statement (list or single object) of statements with Effect, Principal/NotPrincipal,
    Action/NotAction (``s3:`` names, ``*``/``?`` wildcards), Resource/NotResource naming this
    bucket or its objects, actions applicable to those resources, unique Sids, and known
    condition operators with well-formed values. *principal_exists*, given an account
    principal's root ARN, a user ARN or a canonical id, says whether it exists (S3 refuses
    principals it cannot resolve); without it any well-formed principal is accepted.
    """
    data = _load_json(text)
    for name in data:
        if name not in ("Version", "Id", "Statement"):
            raise MalformedPolicy(f"Unknown field {name}")
    version = data.get("Version", "2008-10-17")
    if version not in POLICY_VERSIONS:
        raise MalformedPolicy("The policy must contain a valid version string")
    policy_id = data.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise MalformedPolicy("Policy Id must be a string")
    if "Statement" not in data:
        raise MalformedPolicy("Missing required field Statement")
    raw = data["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise MalformedPolicy("Could not parse the policy: Statement is empty!")
    statements = tuple(_parse_statement(item, bucket, principal_exists)
                       for item in raw_statements)
    sids = [statement.sid for statement in statements if statement.sid]
    if len(sids) != len(set(sids)):
        raise MalformedPolicy("Statement IDs (SID) in a single policy must be unique")
    return Policy(version=version, id=policy_id, statements=statements)


# --- evaluation -----------------------------------------------------------------------

def _principalmatches(principal: tuple[str, ...], requester: Principal | None) -> bool:
    kind = principal[0]
    if kind == "*":
        return True
    if requester is None:
        return False
    if kind == "account":
        return requester.account_id == principal[1]
    if kind == "user":
        return requester.account_id == principal[1] and requester.user_name == principal[2]
    if kind == "canonical":
        return canonical_id(requester.account_id) == principal[1]
    return False  # service principals: no eucalite requester is an AWS service


def _statement_applies(statement: Statement, requester: Principal | None, action: str,
                       resource: str, context: Mapping[str, list[str]],
                       variables: bool) -> bool:
    if statement.principals is not None:
        if not any(_principalmatches(p, requester) for p in statement.principals):
            return False
    elif any(_principalmatches(p, requester) for p in statement.not_principals or ()):
        return False

    def action_in(patterns: Iterable[str]) -> bool:
        return any(wildcard(p, True).matches(action) for p in patterns)

    if statement.actions is not None and not action_in(statement.actions):
        return False
    if statement.not_actions is not None and action_in(statement.not_actions):
        return False

    def resource_in(patterns: Iterable[str]) -> bool:
        return any(matches(p, resource, context, variables=variables, wildcards=True)
                   for p in patterns)

    if statement.resources is not None and not resource_in(statement.resources):
        return False
    if statement.not_resources is not None and resource_in(statement.not_resources):
        return False
    return all(condition_holds(c, context, variables) for c in statement.conditions)


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
    normalized = normalize_context(context)
    allowed = False
    for statement in policy.statements:
        if _statement_applies(statement, requester, action, resource, normalized,
                              policy.uses_variables):
            if statement.effect == DENY:
                return DENY
            allowed = True
    return ALLOW if allowed else None


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
        return bool(is_owner and requester is not None and requester.user_name == ADMIN_USER
                    and action.lower() in POLICY_ACTIONS)
    if is_owner or verdict == ALLOW:
        return True
    return bool(acl is not None and permission and acl_allows(acl, requester, permission))
