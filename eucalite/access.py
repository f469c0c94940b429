"""The one gate: may this principal perform this action on this resource? Every EC2, S3 and
IAM request (and the console, before it shows a button) asks here.

The rules in front of the policy engine live here and nowhere else:

* the account's root (:attr:`~eucalite.accounts.Principal.is_root`, a session of it too)
  may do anything to its own account's resources (and to those with no account or AWS's:
  S3's ARNs, public images, AWS's managed policies), whatever policies say; the cloud admin is
  the ``eucalyptus`` account's root, so it passes here as every root does, and the powers
  beyond its account (capacity, instance types, every account's users) stay where they are
  checked today (``is_cloud_admin``);
* a session from GetSessionToken (key ``ASIA...`` with no role) may not call IAM at all, as
  on AWS without MFA;
* every other principal (users, role sessions, users' sessions) is decided by
  :func:`eucalite.policy.evaluation.authorize` over :func:`eucalite.identity.policies_of`
  and the resource's own policy when the service has one (S3's bucket policy).

The caller's identity (path, tags, policies) is loaded once per request (kept on
``flask.g``), never once per resource. Request facts every service puts in the context
(``aws:SourceIp``, ``aws:SecureTransport``) come from the Flask request; the clock and the
principal's keys from :func:`eucalite.policy.evaluation.request_context`.

A refusal is :class:`Denied`, neutral: each adapter turns it into its service's error. EC2
gives the caller an *encoded authorization message* (:func:`encode_authorization_message`),
opaque to the caller (AES-GCM with a key kept in the data directory), which STS's
DecodeAuthorizationMessage turns back into AWS's JSON (:func:`decode_authorization_message`).
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import secrets
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, g, has_app_context, has_request_context, request

from . import identity
from .accounts import Principal
from .datadir import secret_key
from .errors.iam import InvalidAuthorizationMessageException
from .policy import arns, evaluation
from .policy.document import ALLOW, DENY, Policy

#: The statement-like answer a root's request gets (a Decision always names what decided).
ROOT = evaluation.Match("the account's root user", 0, "RootUser", ALLOW)


@dataclass(frozen=True)
class Identity:
    """The caller as the engine sees it: its :class:`~eucalite.policy.evaluation.Caller`,
    its ARN (with its path) and its identity policies."""

    caller: evaluation.Caller
    arn: str
    policies: Sequence[tuple[str, Policy]]


class Denied(Exception):
    """The gate's refusal: what was asked, by whom, and the :class:`Decision`."""

    def __init__(self, principal: Principal, action: str, resource: str,
                 decision: evaluation.Decision, context: Mapping[str, list[str]],
                 caller_arn: str):
        super().__init__(f"{caller_arn} may not {action} on {resource}")
        self.principal = principal
        self.action = action
        self.resource = resource
        self.decision = decision
        self.context = context
        self.caller_arn = caller_arn

    @property
    def explicit(self) -> bool:
        return self.decision.effect == DENY


# --- who is asking (once per request) -------------------------------------------------

def _load(principal: Principal) -> Identity:
    caller = identity.caller_of(principal)
    # A role session's ARN is its assumed-role ARN; the Caller's (aws:PrincipalArn) is
    # its role's.
    arn = principal.arn if principal.role_id is not None else caller.arn
    policies = [] if principal.is_root else identity.policies_of(principal)
    return Identity(caller, arn, policies)


def identity_of(principal: Principal) -> Identity:
    """*principal*'s :class:`Identity`, loaded once per request."""
    if not has_request_context():
        return _load(principal)
    cache = g.setdefault("access_identities", {})
    key = (principal.access_key_id, principal.user_id, principal.role_id)
    if key not in cache:
        cache[key] = _load(principal)
    return cache[key]


def request_keys() -> dict[str, Any]:
    """The condition keys the HTTP request itself gives (none outside a request)."""
    if not has_request_context():
        return {}
    return {"aws:SourceIp": request.remote_addr or "",
            "aws:SecureTransport": request.scheme == "https"}


def context_for(principal: Principal | None, keys: Mapping[str, Any] | None = None
                ) -> dict[str, list[str]]:
    """The full, normalized condition context of a request by *principal* (None:
    anonymous): clock, principal, HTTP request, then the service's *keys*."""
    if principal is None:
        return evaluation.request_context(None, {**request_keys(), **(keys or {})})
    return evaluation.request_context(identity_of(principal).caller,
                                      {**request_keys(), **(keys or {})})


# --- the decision ---------------------------------------------------------------------

def decide(principal: Principal, action: str, resource: str, *,
           context: Mapping[str, Any] | None = None,
           resource_policy: Policy | None = None) -> evaluation.Decision:
    """The decision for *principal* doing *action* (``service:Action``) on *resource* (an
    ARN or ``*``): the root of the resource's account is allowed (a GetSessionToken session
    never reaches IAM: :mod:`eucalite.auth` refuses it first, as AWS does); everyone else gets what their identity policies and
    *resource_policy* say (AWS's logic inside one account). *context*: the service's
    condition keys (``ec2:ResourceTag/...``, ``s3:prefix``...)."""
    return _decide(principal, action, resource, context, resource_policy)[0]


def unrestricted(principal: Principal, action: str) -> bool:
    """Does *principal* pass the gate for *action* on any resource of its own account,
    whatever policies say (the account's root)? Services skip their resource lookups
    then."""
    return principal.is_root


def _decide(principal: Principal, action: str, resource: str,
            keys: Mapping[str, Any] | None, resource_policy: Policy | None
            ) -> tuple[evaluation.Decision, dict[str, list[str]]]:
    if unrestricted(principal, action) and \
            arns.account_of(resource) in ("", identity.AWS_ACCOUNT, principal.account_id):
        return evaluation.Decision(ALLOW, ROOT), {}
    context = context_for(principal, keys)
    who = identity_of(principal)
    caller = who.caller
    decision = evaluation.authorize(caller, action, resource, identity=who.policies,
                                    resource_policy=resource_policy, context=context)
    return decision, context


def require(principal: Principal, action: str, resource: str, *,
            context: Mapping[str, Any] | None = None,
            resource_policy: Policy | None = None) -> evaluation.Decision:
    """:func:`decide`, raising :class:`Denied` unless allowed; returns the decision."""
    decision, full = _decide(principal, action, resource, context, resource_policy)
    if not decision.allowed:
        raise Denied(principal, action, resource, decision, full,
                     identity_of(principal).arn)
    return decision


# --- encoded authorization messages ---------------------------------------------------

KEY_FILE = "authorization-message.key"


@functools.cache
def _key(data_dir: str) -> bytes:
    """The data directory's message key (AES-256), made on first use (0600)."""
    return secret_key(data_dir, KEY_FILE)


def _message_key() -> bytes:
    if not has_app_context():
        raise RuntimeError("authorization messages need the app (its data directory)")
    return _key(str(current_app.config["EUCALITE"]["data_dir"]))


def _items(values: Sequence[Any]) -> dict[str, list]:
    return {"items": list(values)}


def _statement_json(match: evaluation.Match, principal_id: str) -> dict:
    return {"statementId": match.sid or f"{match.policy}#{match.index + 1}",
            "effect": match.effect.upper(), "policy": match.policy,
            "principals": _items([{"value": principal_id}]),
            "principalGroups": _items([]), "actions": _items([]), "resources": _items([]),
            "conditions": _items([])}


def encode_authorization_message(decision: evaluation.Decision, principal: Principal,
                                 action: str, resource: str,
                                 context: Mapping[str, list[str]]) -> str:
    """The opaque text EC2 puts after "Encoded authorization failure message:": AWS's
    decoded-message JSON for this decision, encrypted and authenticated with the data
    directory's key (the caller can neither read nor forge it)."""
    matched = [_statement_json(decision.decided_by, principal.user_id)] \
        if decision.decided_by is not None else []
    message = {
        "allowed": decision.allowed, "explicitDeny": decision.effect == DENY,
        "matchedStatements": _items(matched), "failures": _items([]),
        "context": {
            "principal": {"id": principal.user_id, "name": principal.user_name,
                          "arn": identity_of(principal).arn},
            "action": action, "resource": resource,
            "conditions": _items([{"key": key, "values": _items([{"value": v}
                                                                  for v in values])}
                                  for key, values in sorted(context.items())]),
        },
    }
    plain = json.dumps({"account": principal.account_id, "message": message},
                       separators=(",", ":")).encode()
    nonce = secrets.token_bytes(12)
    sealed = nonce + AESGCM(_message_key()).encrypt(nonce, plain, None)
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def decode_authorization_message(principal: Principal, text: str) -> str:
    """The DecodedMessage JSON of an encoded message made for *principal*'s account
    (``InvalidAuthorizationMessageException`` for anything else: tampered, truncated, made
    by another cloud or for another account)."""
    invalid = InvalidAuthorizationMessageException(
        "The encoded authorization message is invalid.")
    try:
        sealed = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
        plain = AESGCM(_message_key()).decrypt(sealed[:12], sealed[12:], None)
        wrapped = json.loads(plain)
    except (binascii.Error, ValueError, InvalidTag):
        raise invalid from None
    if wrapped.get("account") != principal.account_id:
        raise invalid
    return json.dumps(wrapped["message"], separators=(",", ":"))

