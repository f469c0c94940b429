"""Policy evaluation, pure: may this caller perform this action on this resource?

A request is a :class:`Caller` (None: anonymous), an action ``service:Action``, a resource
ARN and condition keys. :func:`request_context` adds the keys AWS derives from the caller
and the clock (``aws:username``, ``aws:userid``, ``aws:PrincipalAccount``,
``aws:PrincipalArn``, ``aws:PrincipalTag/<k>``, ``aws:CurrentTime``, ``aws:EpochTime``)
to those the service passes (``aws:SourceIp``, ``aws:SecureTransport``,
``aws:RequestTag/<k>``, ``aws:TagKeys``, ``ec2:ResourceTag/<k>``, ``s3:prefix``, ...).

:func:`evaluate` answers for one policy (a Deny statement, else an Allow statement, else
nothing); :func:`authorize` combines a caller's identity policies and the resource's
policy with AWS's logic for a request inside one account: an explicit Deny in any policy
denies, else an Allow in any allows, else the request is implicitly denied. Each answer
names the statement that decided it (:class:`Decision`), so a simulator can explain it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from . import arns
from .conditions import condition_holds, glob_matches, matches, normalize_context
from .document import ALLOW, DENY, LIMIT, Policy, Statement

IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Caller:
    """Who asks: a user of an account (the account's root is its ``admin`` user), with the
    user's tags; *canonical_id* is the account's S3 canonical user id when S3 asks.

    A role session sets *role_name* (then *user_name* is the role's name and *path* the
    role's) and *session_name*; an AWS service acting for itself (``ec2.amazonaws.com``
    taking an instance profile's role) sets *service* and belongs to no account."""

    account_id: str
    user_name: str
    user_id: str = ""
    path: str = "/"
    tags: Mapping[str, str] = field(default_factory=dict)
    canonical_id: str | None = None
    role_name: str | None = None
    session_name: str | None = None
    service: str | None = None

    @property
    def arn(self) -> str:
        """The caller's ARN as ``aws:PrincipalArn`` gives it: a role session's is its
        role's."""
        if self.role_name is not None:
            return arns.iam(self.account_id, "role", self.role_name, self.path)
        return arns.user(self.account_id, self.user_name, self.path)


@dataclass(frozen=True)
class Match:
    """A statement that applied: which policy (its name, as the caller gave it), which
    statement (0-based index and Sid) and its effect."""

    policy: str
    index: int
    sid: str | None
    effect: str


@dataclass(frozen=True)
class Decision:
    """The answer: *effect* ``Allow``, ``Deny`` (explicit) or ``ImplicitDeny``, and the
    statement that decided (None for an implicit deny)."""

    effect: str
    decided_by: Match | None = None

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW

    def explain(self) -> str:
        """One sentence for a person: what decided and where."""
        if self.decided_by is None:
            return "Implicitly denied: no statement allows this request."
        match = self.decided_by
        where = f"statement {match.sid!r}" if match.sid else f"statement #{match.index + 1}"
        verb = "Allowed" if match.effect == ALLOW else "Explicitly denied"
        return f"{verb} by {where} of {match.policy}."


# --- context --------------------------------------------------------------------------

def request_context(caller: Caller | None, keys: Mapping[str, Any] | None = None, *,
                    now: dt.datetime | None = None) -> dict[str, list[str]]:
    """The request's condition keys, normalized (see :func:`conditions.normalize_context`):
    the keys the caller and the clock give, then *keys* from the service (which win)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    derived: dict[str, Any] = {"aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "aws:EpochTime": str(int(now.timestamp()))}
    if caller is not None:
        derived.update({"aws:userid": caller.user_id,
                        "aws:PrincipalAccount": caller.account_id,
                        "aws:PrincipalArn": caller.arn})
        if caller.role_name is None and caller.service is None:
            # AWS gives a role session no aws:username: ${aws:username} must never let a
            # role named like a user into that user's resources.
            derived["aws:username"] = caller.user_name
        derived.update({f"aws:PrincipalTag/{key}": value for key, value in caller.tags.items()})
    return normalize_context({**derived, **(keys or {})})


# --- one statement, one policy --------------------------------------------------------

def _principal_matches(principal: tuple[str, ...], caller: Caller | None) -> bool:
    kind = principal[0]
    if kind == "*":
        return True
    if caller is None:
        return False
    if kind == "account":
        return caller.account_id == principal[1]
    if kind == "user":
        return (caller.role_name is None and caller.account_id == principal[1]
                and caller.user_name == principal[2])
    if kind == "canonical":
        return caller.canonical_id == principal[1]
    if kind == "role":          # a role's ARN names every session of it
        return caller.account_id == principal[1] and caller.role_name == principal[2]
    if kind == "session":       # one session of a role
        return (caller.account_id == principal[1] and caller.role_name == principal[2]
                and caller.session_name == principal[3])
    if kind == "service":
        return caller.service is not None and caller.service == principal[1]
    return False


def _principal_applies(statement: Statement, caller: Caller | None) -> bool:
    if statement.principals is not None:
        return any(_principal_matches(p, caller) for p in statement.principals)
    if statement.not_principals is not None:
        return not any(_principal_matches(p, caller) for p in statement.not_principals)
    return True         # an identity policy: its principal is whoever it is attached to


def statement_applies(statement: Statement, caller: Caller | None, action: str,
                      resource: str, context: Mapping[str, list[str]],
                      variables: bool) -> bool:
    """Does *statement* speak about this request (principal, action, resource and every
    condition)? *context* is normalized; *variables* substitutes ``${...}``."""
    if not _principal_applies(statement, caller):
        return False

    def action_in(patterns: Iterable[str]) -> bool:
        return any(glob_matches(p, action, True) for p in patterns)

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


def evaluate(policy: Policy, caller: Caller | None, action: str, resource: str,
             context: Mapping[str, list[str]], name: str = "policy") -> Match | None:
    """The first statement of *policy* that denies this request, else the first that
    allows it, else None. *context* is normalized (:func:`request_context`); *action* is
    matched case-insensitively, *resource* case-sensitively."""
    allowed = None
    for index, statement in enumerate(policy.statements):
        if statement.effect == LIMIT:       # a quota grants and denies nothing
            continue
        if statement_applies(statement, caller, action, resource, context,
                             policy.uses_variables):
            if statement.effect == DENY:
                return Match(name, index, statement.sid, DENY)
            if allowed is None:
                allowed = Match(name, index, statement.sid, ALLOW)
    return allowed


def limits(policy: Policy, action: str, resource: str) -> dict[str, int]:
    """The quotas *policy*'s Limit statements set for this request (those whose
    Action/NotAction and Resource/NotResource match it): quota key -> the smallest limit."""
    found: dict[str, int] = {}
    for statement in policy.statements:
        if statement.effect != LIMIT or not statement_applies(
                replace(statement, conditions=()), None, action, resource, {}, False):
            continue
        for condition in statement.conditions:
            value = int(condition.values[0])
            found[condition.key] = min(value, found.get(condition.key, value))
    return found


# --- the decision ---------------------------------------------------------------------

def authorize(caller: Caller | None, action: str, resource: str, *,
              identity: Sequence[tuple[str, Policy]] = (),
              resource_policy: Policy | None = None,
              context: Mapping[str, list[str]] | None = None) -> Decision:
    """AWS's decision for a request inside one account: *identity* holds the caller's
    policies as (name, policy) pairs (inline and attached, the user's and its groups');
    *resource_policy* is the resource's own (a bucket policy). An explicit Deny anywhere
    denies; else an Allow anywhere allows; else implicit deny. *context* comes from
    :func:`request_context` (built here when None)."""
    if context is None:
        context = request_context(caller)
    policies = [*identity, *((("resource policy", resource_policy),)
                             if resource_policy is not None else ())]
    allowed = None
    for name, policy in policies:
        match = evaluate(policy, caller, action, resource, context, name)
        if match is None:
            continue
        if match.effect == DENY:
            return Decision(DENY, match)
        allowed = allowed or match
    return Decision(ALLOW, allowed) if allowed else Decision(IMPLICIT_DENY)


# --- trust: may a caller assume a role ------------------------------------------------

ASSUME_ROLE = "sts:AssumeRole"


def _names_caller_directly(statement: Statement, caller: Caller) -> bool:
    """Does the Allow *statement* grant to the caller itself (its user, role, session,
    service, or everyone) rather than to its account? An account principal only delegates:
    the account's own policies must then allow too."""
    return any(p[0] != "account" and _principal_matches(p, caller)
               for p in statement.principals or ())


def trusts(trust: Policy, caller: Caller, role_arn: str, *,
           identity: Sequence[tuple[str, Policy]] = (), identity_allows_all: bool = False,
           context: Mapping[str, list[str]] | None = None,
           action: str = ASSUME_ROLE) -> Decision:
    """May *caller* take *action* (``sts:AssumeRole``) on the role *role_arn* whose trust
    policy is *trust*? AWS's rule for a resource policy: an explicit Deny in the trust
    policy or the caller's *identity* policies denies; else the trust policy must allow;
    then a statement naming the caller itself (user, role, session, service or ``*``) in
    the role's own account suffices, while an account principal, or a caller of another
    account, also needs an Allow from its *identity* policies (*identity_allows_all*: the
    caller is its account's root, which needs none)."""
    if context is None:
        context = request_context(caller)
    identity_decision = authorize(caller, action, role_arn, identity=identity,
                                  context=context)
    if identity_decision.effect == DENY:
        return identity_decision
    first_allow, direct = None, False
    for index, statement in enumerate(trust.statements):
        if not statement_applies(statement, caller, action, role_arn, context,
                                 trust.uses_variables):
            continue
        match = Match("the role's trust policy", index, statement.sid, statement.effect)
        if statement.effect == DENY:
            return Decision(DENY, match)
        first_allow = first_allow or match
        direct = direct or _names_caller_directly(statement, caller)
    if first_allow is None:
        return Decision(IMPLICIT_DENY)
    same_account = arns.account_of(role_arn) == caller.account_id
    if caller.service is not None or (direct and same_account):
        return Decision(ALLOW, first_allow)
    if identity_allows_all:
        return Decision(ALLOW, first_allow)
    if identity_decision.allowed:
        return identity_decision
    return Decision(IMPLICIT_DENY)
