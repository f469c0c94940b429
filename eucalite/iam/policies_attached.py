"""Managed policies attached to users, groups and roles: attach (at most ten per entity,
IAM's default quota), detach, what an entity has attached, and which entities a policy is
attached to. An account attaches its own policies and AWS's; attachments are counted and
listed per account, so no account sees another's."""
from __future__ import annotations

from dataclasses import dataclass

from ..accounts import Group, User
from ..db import db, writing
from ..errors.iam import LimitExceeded, NoSuchEntity
from ..identity import ManagedPolicy, PolicyAttachment, Role
from .policies import Holder
from .policies_managed import arn_of

#: IAM's default quota of managed policies attached to one user, group or role.
MAX_ATTACHED = 10
ENTITY_FILTERS = ("User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy")


def attach(holder: Holder, policy: ManagedPolicy) -> None:
    """Attach *policy* to the holder (attaching it again changes nothing)."""
    with writing():
        attached = db.session.execute(db.select(PolicyAttachment.policy_id).where(
            holder.attachment_column == holder.id)).scalars().all()
        if policy.id in attached:
            return
        if len(attached) >= MAX_ATTACHED:
            raise LimitExceeded(f"Cannot exceed quota for PoliciesPer{holder.kind.title()}: "
                                f"{MAX_ATTACHED}")
        row = PolicyAttachment(policy_id=policy.id)
        setattr(row, f"{holder.kind}_id", holder.id)
        db.session.add(row)


def detach(holder: Holder, policy: ManagedPolicy) -> None:
    with writing():
        row = db.session.execute(db.select(PolicyAttachment).where(
            holder.attachment_column == holder.id,
            PolicyAttachment.policy_id == policy.id)).scalar_one_or_none()
        if row is None:
            raise NoSuchEntity(f"Policy {arn_of(policy)} was not found.")
        db.session.delete(row)


def attached_to(holder: Holder, path_prefix: str) -> list[ManagedPolicy]:
    """The policies attached to the holder whose path starts with *path_prefix*, by name
    (then ARN)."""
    rows = db.session.execute(db.select(ManagedPolicy).join(
        PolicyAttachment, PolicyAttachment.policy_id == ManagedPolicy.id).where(
        holder.attachment_column == holder.id)).scalars()
    return sorted((row for row in rows if row.path.startswith(path_prefix)),
                  key=lambda row: (row.name, arn_of(row)))


@dataclass(frozen=True)
class Entity:
    """A user, group or role a policy is attached to."""

    kind: str                   # "group", "user" or "role" (the order IAM lists them)
    name: str
    id: str

    @property
    def key(self) -> str:
        """Its place in a listing (and paging key): groups, then users, then roles."""
        return f"{'gur'.index(self.kind[0])}{self.name}"


def entities(account_id: str, policy: ManagedPolicy, entity_filter: str | None,
             path_prefix: str, usage: str | None) -> list[Entity]:
    """The account's groups, users and roles *policy* is attached to (in that order, each
    by name): *entity_filter* ``User``, ``Group`` or ``Role`` keeps one kind (the policy
    kinds keep none); *path_prefix* is on the entity's path; *usage*
    ``PermissionsBoundary`` keeps none (no boundaries here)."""
    if usage == "PermissionsBoundary":
        return []
    found = []
    for kind, model, column in (("group", Group, PolicyAttachment.group_id),
                                ("user", User, PolicyAttachment.user_id),
                                ("role", Role, PolicyAttachment.role_id)):
        if entity_filter is not None and entity_filter.lower() != kind:
            continue
        rows = db.session.execute(db.select(model).join(
            PolicyAttachment, column == model.id).where(
            PolicyAttachment.policy_id == policy.id, model.account_id == account_id)
            .order_by(model.name)).scalars()
        found += [Entity(kind, row.name, row.id) for row in rows
                  if row.path.startswith(path_prefix)]
    return found
