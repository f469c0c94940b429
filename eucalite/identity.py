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

from .accounts import GroupMember, utcnow
from .db import db
from .policy import document, grammar

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
