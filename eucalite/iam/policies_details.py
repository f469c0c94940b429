"""GetAccountAuthorizationDetails: every user, group and role of an account with the
policies it holds, and the managed policies with all their versions, in one listing.

:func:`entries` lists what a filter asks for, in IAM's order (users, groups, roles, then
policies), cheaply: one row each, so a page can be cut first; :func:`detail` then gathers
what one entry shows (inline policies, groups, attachments, tags, instance profiles,
versions) for the entries of that page only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..accounts import Group, GroupMember, User, UserTag
from ..db import db
from ..identity import (InlinePolicy, InstanceProfile, InstanceProfileRole, ManagedPolicy,
                        PolicyAttachment, Role, RoleTag)
from . import policies_managed

#: GetAccountAuthorizationDetails' Filter values, and what no filter means: all of them.
FILTERS = ("User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy")


@dataclass(frozen=True)
class Entry:
    """One thing listed: *kind* ``user``, ``group``, ``role`` or ``policy`` and its row (a
    policy's :class:`~.policies_managed.Listed`)."""

    kind: str
    row: Any

    @property
    def key(self) -> str:
        """Its place in the listing (and paging key)."""
        row = self.row.policy if self.kind == "policy" else self.row
        return f"{'ugrp'.index(self.kind[0])}{row.name}\n{row.id}"


@dataclass
class Detail:
    """What one entry shows beside its row."""

    entry: Entry
    inline: list[tuple[str, str]] = field(default_factory=list)      # (name, document)
    attached: list[ManagedPolicy] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    profiles: list[InstanceProfile] = field(default_factory=list)
    versions: list = field(default_factory=list)


def entries(account_id: str, filters: list[str]) -> list[Entry]:
    """What *filters* (none: all) ask for in the account: users, groups, roles (each by
    name), then its own policies and AWS's attached in it (by name)."""
    wanted = set(filters or FILTERS)
    found: list[Entry] = []
    for kind, model in (("User", User), ("Group", Group), ("Role", Role)):
        if kind in wanted:
            rows = db.session.execute(db.select(model).filter_by(account_id=account_id)
                                      .order_by(model.name)).scalars()
            found += [Entry(kind.lower(), row) for row in rows]
    if wanted & {"LocalManagedPolicy", "AWSManagedPolicy"}:
        for item in policies_managed.listed(account_id, "All", False, "/", None):
            aws = policies_managed.is_aws(item.policy)
            if (aws and "AWSManagedPolicy" in wanted and item.attachments) or \
                    (not aws and "LocalManagedPolicy" in wanted):
                found.append(Entry("policy", item))
    return found


def _inline(column, entity_id: str) -> list[tuple[str, str]]:
    return list(db.session.execute(db.select(InlinePolicy.name, InlinePolicy.document)
                                   .where(column == entity_id).order_by(InlinePolicy.name)).all())


def _attached(column, entity_id: str) -> list[ManagedPolicy]:
    return list(db.session.execute(
        db.select(ManagedPolicy).join(PolicyAttachment,
                                      PolicyAttachment.policy_id == ManagedPolicy.id)
        .where(column == entity_id).order_by(ManagedPolicy.name)).scalars())


def _tags(model, column, entity_id: str) -> dict[str, str]:
    return dict(db.session.execute(db.select(model.key, model.value).where(column == entity_id)
                                   .order_by(model.key)).all())


def detail(entry: Entry) -> Detail:
    """Everything *entry* shows."""
    found = Detail(entry)
    if entry.kind == "policy":
        found.versions = policies_managed.versions(entry.row.policy)
        return found
    entity_id = entry.row.id
    inline_column = getattr(InlinePolicy, f"{entry.kind}_id")
    found.inline = _inline(inline_column, entity_id)
    found.attached = _attached(getattr(PolicyAttachment, f"{entry.kind}_id"), entity_id)
    if entry.kind == "user":
        found.groups = list(db.session.execute(
            db.select(Group.name).join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == entity_id).order_by(Group.name)).scalars())
        found.tags = _tags(UserTag, UserTag.user_id, entity_id)
    elif entry.kind == "role":
        found.tags = _tags(RoleTag, RoleTag.role_id, entity_id)
        found.profiles = list(db.session.execute(
            db.select(InstanceProfile).join(InstanceProfileRole,
                                            InstanceProfileRole.profile_id == InstanceProfile.id)
            .where(InstanceProfileRole.role_id == entity_id)
            .order_by(InstanceProfile.name)).scalars())
    return found
