"""The policy simulator: "may this principal (or these policies) take these actions on these
resources?", answered by the engine that authorises every request
(:func:`eucalite.policy.evaluation.authorize`), over the same policies
(:func:`eucalite.identity.policies_of` for a user or a role).

:func:`principal_sources` gives a user's, group's or role's policies as :class:`Source` s
(with the id and type IAM's SimulatePrincipalPolicy reports); :func:`custom_sources` parses
policies given as text; :func:`simulate` evaluates every action on every resource. The
console's simulator calls these through IamService as the Query API does.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..accounts import Group, Principal, User
from ..db import db
from ..errors import AwsError
from ..errors.iam import InvalidInput, NoSuchEntity
from ..identity import (InlinePolicy, ManagedPolicy, PolicyAttachment, PolicyVersion, Role,
                        caller_of, policies_of)
from ..policy import document, evaluation, grammar
from . import common

#: SimulatePrincipalPolicy's source: a user, group or role ARN (path optional).
_ENTITY_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):(user|group|role)/(?:.*/)?([^/]+)")
CONTEXT_TYPES = ("string", "stringList", "numeric", "numericList", "boolean", "booleanList",
                 "ip", "ipList", "binary", "binaryList", "date", "dateList")
_DECISIONS = {evaluation.ALLOW: "allowed", evaluation.DENY: "explicitDeny",
              evaluation.IMPLICIT_DENY: "implicitDeny"}


@dataclass(frozen=True)
class Source:
    """A policy in a simulation: its id and type as IAM reports them in MatchedStatements
    (an inline or managed policy's name with ``user``/``group``/``role`` or
    ``user-managed``/``aws-managed``; ``PolicyInputList.N`` with ``none``)."""

    policy_id: str
    kind: str
    policy: document.Policy


@dataclass(frozen=True)
class Result:
    """One action on one resource: IAM's *decision* (``allowed``, ``explicitDeny``,
    ``implicitDeny``), the source that decided (None for an implicit deny) and a sentence
    saying so (:meth:`eucalite.policy.evaluation.Decision.explain`); *missing* are the
    condition keys (lower-case, as the engine reads them) of statements about this action
    and resource that the request did not give, on which the answer may hang."""

    action: str
    resource: str
    decision: str
    matched: Source | None
    explanation: str
    missing: tuple[str, ...] = ()


# --- whose policies -------------------------------------------------------------------

def _classify(account_id: str, label: str, policy: document.Policy) -> Source:
    """A :func:`policies_of` pair as a Source: its labels read ``<kind> inline policy
    <name>`` or ``managed policy <name>`` (an account's own when it has one of that name,
    else AWS's)."""
    kind, inline, name = label.partition(" inline policy ")
    if inline:
        return Source(name, kind, policy)
    name = label.removeprefix("managed policy ")
    local = db.session.execute(db.select(ManagedPolicy.id).filter_by(
        account_id=account_id, name=name)).first()
    return Source(name, "user-managed" if local else "aws-managed", policy)


def _group_sources(group: Group) -> list[Source]:
    """A group's own policies: inline, then attached (each at its default version)."""
    inline = db.session.execute(db.select(InlinePolicy.name, InlinePolicy.document)
                                .where(InlinePolicy.group_id == group.id)
                                .order_by(InlinePolicy.name)).all()
    attached = db.session.execute(
        db.select(ManagedPolicy.name, ManagedPolicy.account_id, PolicyVersion.document)
        .join(PolicyAttachment, PolicyAttachment.policy_id == ManagedPolicy.id)
        .join(PolicyVersion, (PolicyVersion.policy_id == ManagedPolicy.id)
              & (PolicyVersion.version_id == ManagedPolicy.default_version))
        .where(PolicyAttachment.group_id == group.id).order_by(ManagedPolicy.name)).all()
    return ([Source(name, "group", document.parse(text, grammar.IAM_INLINE_GROUP))
             for name, text in inline]
            + [Source(name, "aws-managed" if owner is None else "user-managed",
                      document.parse(text, grammar.IAM_MANAGED))
               for name, owner, text in attached])


def _entity(principal: Principal, arn: str) -> tuple[str, User | Group | Role]:
    """The user, group or role of the caller's account that *arn* names."""
    match = _ENTITY_ARN.fullmatch(arn)
    if match is None:
        raise InvalidInput(f"Invalid ARN: {arn}")
    account_id, kind, name = match.groups()
    model = {"user": User, "group": Group, "role": Role}[kind]
    row = db.session.execute(db.select(model).filter_by(
        account_id=principal.account_id, name=name)).scalar_one_or_none()
    if account_id != principal.account_id or row is None:
        raise NoSuchEntity(f"Entity {arn} does not exist.")
    return kind, row


def _as_principal(principal: Principal, kind: str, row: User | Role) -> Principal:
    """The principal a user or a role's session would be, for policies_of and caller_of."""
    if kind == "user":
        return Principal(principal.account_id, principal.account_name, row.id, row.name, "")
    return Principal(principal.account_id, principal.account_name, f"{row.id}:simulation",
                     row.name, "", role_id=row.id, role_name=row.name,
                     session_name="simulation")


def principal_sources(principal: Principal, source_arn: str
                      ) -> tuple[list[Source], evaluation.Caller | None]:
    """The policies of the user, group or role *source_arn* names (a user's with its
    groups') and the caller they act as (None for a group, which never calls)."""
    kind, row = _entity(principal, source_arn)
    if kind == "group":
        return _group_sources(row), None
    subject = _as_principal(principal, kind, row)
    sources = [_classify(principal.account_id, label, policy)
               for label, policy in policies_of(subject)]
    return sources, caller_of(subject)


def caller_named(principal: Principal, caller_arn: str) -> evaluation.Caller:
    """The simulated caller *caller_arn* names: a user of the caller's account."""
    kind, row = _entity(principal, caller_arn)
    if kind != "user":
        raise InvalidInput(f"CallerArn {caller_arn} must be the ARN of an IAM user.")
    return caller_of(_as_principal(principal, kind, row))


def custom_sources(texts: Sequence[str]) -> list[Source]:
    """Policies given as text (PolicyInputList), each checked as a managed policy;
    InvalidInput naming the one the engine refuses."""
    sources = []
    for number, text in enumerate(texts, 1):
        try:
            policy = document.parse(text, grammar.IAM_MANAGED)
        except AwsError as error:
            raise InvalidInput(f"PolicyInputList.{number}: {error.message}") from None
        sources.append(Source(f"PolicyInputList.{number}", "none", policy))
    return sources


# --- the simulation -------------------------------------------------------------------

def context_keys(entries: Sequence[tuple[str, str, list[str]]]) -> dict[str, list[str]]:
    """ContextEntries (name, type, values) as the engine's request keys."""
    keys = {}
    for name, kind, values in entries:
        if not 5 <= len(name) <= 256:
            raise common.invalid(name, "contextEntries.member.contextKeyName",
                                 "Member must have length between 5 and 256")
        if kind not in CONTEXT_TYPES:
            raise common.invalid(kind, "contextEntries.member.contextKeyType",
                                 "Member must satisfy enum value set: "
                                 f"[{', '.join(CONTEXT_TYPES)}]")
        keys[name] = list(values)
    return keys


def simulate(caller: evaluation.Caller | None, sources: Sequence[Source],
             actions: Sequence[str], resources: Sequence[str],
             keys: Mapping[str, list[str]]) -> list[Result]:
    """Each of *actions* on each of *resources* (``*`` when none), decided over *sources*
    for *caller* with the request keys *keys* (and those the caller and clock give)."""
    context = evaluation.request_context(caller, keys)
    # Each policy is named as IAM reports it; two of one name (inline policies of two
    # groups) report alike, so either stands for the match.
    identity = [(f"{source.kind} policy {source.policy_id}", source.policy)
                for source in sources]
    named = {name: source for (name, _), source in zip(identity, sources)}
    results = []
    for action in actions:
        for resource in resources or ["*"]:
            decision = evaluation.authorize(caller, action, resource, identity=identity,
                                            context=context)
            matched = decision.decided_by
            results.append(Result(action, resource, _DECISIONS[decision.effect],
                                  named[matched.policy] if matched else None,
                                  decision.explain(),
                                  _missing(sources, caller, action, resource, context)))
    return results


def _missing(sources: Sequence[Source], caller: evaluation.Caller | None, action: str,
             resource: str, context: Mapping[str, list[str]]) -> tuple[str, ...]:
    """Condition keys absent from *context* in the statements that speak about *action*
    on *resource* (their conditions aside)."""
    keys = set()
    for source in sources:
        for statement in source.policy.statements:
            absent = [c.key for c in statement.conditions if c.key not in context]
            if absent and evaluation.statement_applies(
                    dataclasses.replace(statement, conditions=()), caller, action, resource,
                    context, source.policy.uses_variables):
                keys.update(absent)
    return tuple(sorted(keys))
