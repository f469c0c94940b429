"""IAM's records beyond users and keys: policies (inline and managed, with versions and
attachments), roles with their trust policies and tags, instance profiles, and the STS
sessions that temporary credentials stand for; and :func:`policies_of`, the caller's
identity policies as the policy engine takes them.

This module sits beside :mod:`.accounts` (below every role) because every service asks the
policy engine about a caller's policies, and dependencies point from the roles to it. The
IAM API (``eucalite.iam``) manages these records; STS mints sessions; everything else reads.

An attachment or inline policy belongs to exactly one user, group or role (the other two
columns are NULL); deleting that entity, or its account, deletes it (ON DELETE CASCADE).
Managed policies with no account are AWS's (``arn:aws:iam::aws:policy/...``), shared by
every account.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .accounts import Account, GroupMember, User, UserTag, utcnow
from .db import db
from .errors.iam import NoSuchEntity
from .policy import arns, document, evaluation, grammar

if TYPE_CHECKING:
    from .accounts import Principal

#: The account field AWS's own managed policies carry in their ARNs.
AWS_ACCOUNT = "aws"


class ManagedPolicy(db.Model):
    """A managed policy: a named document with versions (one of them the default, which is
    the one in force), attachable to many users, groups and roles of its account."""

    __tablename__ = "iam_policies"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)          # ANPA...
    # None: one of AWS's managed policies, visible to every account.
    account_id: Mapped[str | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), default=None, index=True)
    name: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(512), default="/")
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    default_version: Mapped[str] = mapped_column(String(16), default="v1")
    # IAM never reuses a version id: the next CreatePolicyVersion gets v<next_version>.
    next_version: Mapped[int] = mapped_column(Integer, default=2)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PolicyVersion(db.Model):
    """One version of a managed policy (IAM keeps at most five)."""

    __tablename__ = "iam_policy_versions"

    policy_id: Mapped[str] = mapped_column(ForeignKey("iam_policies.id", ondelete="CASCADE"),
                                           primary_key=True)
    version_id: Mapped[str] = mapped_column(String(16), primary_key=True)   # v1, v2, ...
    document: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PolicyAttachment(db.Model):
    """A managed policy attached to one user, group or role (exactly one column is set)."""

    __tablename__ = "iam_policy_attachments"
    __table_args__ = (UniqueConstraint("policy_id", "user_id"),
                      UniqueConstraint("policy_id", "group_id"),
                      UniqueConstraint("policy_id", "role_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No cascade from the policy: DeletePolicy refuses while it is attached (DeleteConflict).
    policy_id: Mapped[str] = mapped_column(ForeignKey("iam_policies.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True)
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("iam_groups.id", ondelete="CASCADE"), default=None, index=True)
    role_id: Mapped[str | None] = mapped_column(
        ForeignKey("iam_roles.id", ondelete="CASCADE"), default=None, index=True)


class InlinePolicy(db.Model):
    """A policy embedded in one user, group or role (exactly one column is set), named
    uniquely within it."""

    __tablename__ = "iam_inline_policies"
    __table_args__ = (UniqueConstraint("user_id", "name"),
                      UniqueConstraint("group_id", "name"),
                      UniqueConstraint("role_id", "name"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True)
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("iam_groups.id", ondelete="CASCADE"), default=None, index=True)
    role_id: Mapped[str | None] = mapped_column(
        ForeignKey("iam_roles.id", ondelete="CASCADE"), default=None, index=True)
    name: Mapped[str] = mapped_column(String(128))
    document: Mapped[str] = mapped_column(Text)


class Role(db.Model):
    """An IAM role: who may assume it (its trust policy) and, through its own policies,
    what its sessions may do."""

    __tablename__ = "iam_roles"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)          # AROA...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512), default="/")
    trust_policy: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    max_session_duration: Mapped[int] = mapped_column(Integer, default=3600)   # seconds
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used: Mapped[dt.datetime | None] = mapped_column(default=None)


class RoleTag(db.Model):
    """One tag on a role (key unique per role)."""

    __tablename__ = "iam_role_tags"

    role_id: Mapped[str] = mapped_column(ForeignKey("iam_roles.id", ondelete="CASCADE"),
                                         primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")


class InstanceProfile(db.Model):
    """An instance profile: the container that passes a role to instances."""

    __tablename__ = "iam_instance_profiles"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)          # AIPA...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(512), default="/")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InstanceProfileRole(db.Model):
    """The role in an instance profile (IAM allows one per profile)."""

    __tablename__ = "iam_instance_profile_roles"

    profile_id: Mapped[str] = mapped_column(
        ForeignKey("iam_instance_profiles.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[str] = mapped_column(ForeignKey("iam_roles.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)


class StsSession(db.Model):
    """Temporary credentials STS issued: an access key id (ASIA...), its secret and session
    token, valid until *expires*; for a user (GetSessionToken) or a role (AssumeRole, or an
    instance profile's credentials for *instance_id*)."""

    __tablename__ = "sts_sessions"

    access_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Stored as is, as access keys' secrets are: signature checks need them.
    secret: Mapped[str] = mapped_column(String(64))
    token: Mapped[str] = mapped_column(String(1024))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None)
    role_id: Mapped[str | None] = mapped_column(
        ForeignKey("iam_roles.id", ondelete="CASCADE"), default=None)
    session_name: Mapped[str | None] = mapped_column(String(64), default=None)
    instance_id: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime] = mapped_column(index=True)


# --- the caller's identity policies ---------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _parsed(text: str, kind: grammar.Grammar) -> document.Policy:
    # Stored documents were checked when they were saved; parsing again on every request
    # would cost more than evaluating them, so each distinct text is parsed once.
    return document.parse(text, kind)


def _inline(column, entity_id: str, kind: grammar.Grammar, label: str
            ) -> list[tuple[str, document.Policy]]:
    rows = db.session.execute(db.select(InlinePolicy.name, InlinePolicy.document)
                              .where(column == entity_id)).all()
    return [(f"{label} inline policy {name}", _parsed(text, kind)) for name, text in rows]


def _attached(column, entity_ids: list[str]) -> list[tuple[str, document.Policy]]:
    if not entity_ids:
        return []
    rows = db.session.execute(
        db.select(ManagedPolicy.id, ManagedPolicy.name, PolicyVersion.document)
        .join(PolicyAttachment, PolicyAttachment.policy_id == ManagedPolicy.id)
        .join(PolicyVersion, (PolicyVersion.policy_id == ManagedPolicy.id)
              & (PolicyVersion.version_id == ManagedPolicy.default_version))
        .where(column.in_(entity_ids))).all()
    seen: dict[str, tuple[str, document.Policy]] = {}
    for policy_id, name, text in rows:
        seen.setdefault(policy_id, (f"managed policy {name}",
                                    _parsed(text, grammar.IAM_MANAGED)))
    return list(seen.values())


def policies_of(principal: "Principal") -> list[tuple[str, document.Policy]]:
    """The identity policies in force for *principal*, as ``(name, policy)`` pairs for
    :func:`eucalite.policy.evaluation.authorize`: a role session's are its role's (inline
    and attached); a user's are its own and those of every group it belongs to (inline and
    attached, the default version of each managed policy, each policy once)."""
    if principal.role_id is not None:
        return (_inline(InlinePolicy.role_id, principal.role_id, grammar.IAM_INLINE_ROLE,
                        "role")
                + _attached(PolicyAttachment.role_id, [principal.role_id]))
    group_ids = list(db.session.execute(
        db.select(GroupMember.group_id).where(GroupMember.user_id == principal.user_id)
    ).scalars())
    policies = _inline(InlinePolicy.user_id, principal.user_id, grammar.IAM_INLINE_USER,
                       "user")
    for group_id in group_ids:
        policies += _inline(InlinePolicy.group_id, group_id, grammar.IAM_INLINE_GROUP,
                            "group")
    attached = dict.fromkeys(_attached(PolicyAttachment.user_id, [principal.user_id])
                             + _attached(PolicyAttachment.group_id, group_ids))
    return policies + list(attached)


# --- roles: who may assume them -------------------------------------------------------

#: The service principal EC2 takes an instance profile's role as (a trust policy naming
#: ``{"Service": "ec2.amazonaws.com"}`` lets instances have the role's credentials).
EC2_SERVICE = "ec2.amazonaws.com"


def role_arn(role: Role) -> str:
    return arns.iam(role.account_id, "role", role.name, role.path)


def _tags(model, column, entity_id: str) -> dict[str, str]:
    rows = db.session.execute(db.select(model.key, model.value).where(column == entity_id)
                              .order_by(model.key)).all()
    return dict(rows)


def caller_of(principal: "Principal") -> evaluation.Caller:
    """The policy engine's view of *principal*: its account, name, path and tags (a role
    session's are its role's)."""
    if principal.role_id is not None:
        role = db.session.get(Role, principal.role_id)
        return evaluation.Caller(
            account_id=principal.account_id, user_name=principal.role_name or "",
            user_id=principal.user_id, path=role.path if role else "/",
            tags=_tags(RoleTag, RoleTag.role_id, principal.role_id),
            role_name=principal.role_name, session_name=principal.session_name)
    user = db.session.get(User, principal.user_id)
    return evaluation.Caller(account_id=principal.account_id, user_name=principal.user_name,
                             user_id=principal.user_id, path=user.path if user else "/",
                             tags=_tags(UserTag, UserTag.user_id, principal.user_id))


def may_assume(role: Role, principal: "Principal | str", keys: dict | None = None,
               action: str = evaluation.ASSUME_ROLE) -> evaluation.Decision:
    """May *principal* assume *role* (``sts:AssumeRole``; *action* for ``sts:TagSession``
    and the like)? *principal* is a caller, or a service principal's name
    (:data:`EC2_SERVICE` for an instance profile). *keys* are the request's condition keys
    (``aws:SourceIp``, ``sts:ExternalId``, ...). The answer is the role's trust policy
    combined with the caller's own policies (:func:`eucalite.policy.evaluation.trusts`):
    Allow when the trust policy names the caller (or its service) in the role's account,
    or names its account and the caller's policies allow it too (an account's root needs
    no policy); an explicit Deny in either wins."""
    trust = _parsed(role.trust_policy, grammar.IAM_TRUST)
    if isinstance(principal, str):
        caller = evaluation.Caller(account_id="", user_name="", service=principal)
        return evaluation.trusts(trust, caller, role_arn(role), action=action,
                                 context=evaluation.request_context(None, keys))
    caller = caller_of(principal)
    root = principal.is_root
    return evaluation.trusts(trust, caller, role_arn(role), action=action,
                             identity=() if root else policies_of(principal),
                             identity_allows_all=root,
                             context=evaluation.request_context(caller, keys))


def principal_exists(arn: str) -> bool:
    """Does the principal a trust policy names exist in this cloud (an account's root ARN,
    a user's or a role's ARN; for :func:`eucalite.policy.document.parse`)? Paths are not
    compared: the name is unique in its account."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return False
    account_id, resource = parts[4], parts[5]
    if resource == "root":
        return db.session.get(Account, account_id) is not None
    kind, _, rest = resource.partition("/")
    name = rest.rsplit("/", 1)[-1]
    model = {"user": User, "role": Role}.get(kind)
    if model is None:
        return False
    return db.session.execute(db.select(model.id).filter_by(
        account_id=account_id, name=name)).first() is not None


# --- instance profiles ----------------------------------------------------------------

_PROFILE_ARN_PREFIX = "arn:aws:iam::"


def instance_profile(account_id: str, name_or_arn: str
                     ) -> tuple[InstanceProfile, Role | None]:
    """The instance profile of *account_id* named *name_or_arn* (a name or its ARN
    ``arn:aws:iam::<account>:instance-profile/<path><name>``) and its role (None while it
    has none); NoSuchEntity when there is no such profile in that account."""
    name = name_or_arn
    if name_or_arn.startswith(_PROFILE_ARN_PREFIX):
        parts = name_or_arn.split(":", 5)
        kind, _, rest = parts[5].partition("/") if len(parts) == 6 else ("", "", "")
        if parts[4] != account_id or kind != "instance-profile" or not rest:
            raise NoSuchEntity(f"Instance Profile {name_or_arn} cannot be found.")
        name = rest.rsplit("/", 1)[-1]
    profile = db.session.execute(db.select(InstanceProfile).filter_by(
        account_id=account_id, name=name)).scalar_one_or_none()
    if profile is None or (name != name_or_arn
                           and arns.iam(account_id, "instance-profile", name, profile.path)
                           != name_or_arn):
        raise NoSuchEntity(f"Instance Profile {name_or_arn} cannot be found.")
    role = db.session.execute(
        db.select(Role).join(InstanceProfileRole, InstanceProfileRole.role_id == Role.id)
        .where(InstanceProfileRole.profile_id == profile.id)).scalar_one_or_none()
    return profile, role
