"""Inline policies of one account's users, groups and roles (put, get, delete, list), the
IAM entities that hold policies (:class:`Holder`; :mod:`.policies_entities` finds them), and
the rule that an entity holding policies cannot be deleted (:func:`refuse_delete_while_held`).

A document is validated by the policy engine with its kind's grammar (MalformedPolicyDocument,
or LimitExceeded past the kind's size) and stored as sent; IAM also limits the *sum* of an
entity's inline policies to that size (2,048 characters for a user, 5,120 for a group,
10,240 for a role, counted without whitespace as the engine counts one). Every function is
scoped to the account whose id it is given.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..db import db, writing
from ..errors.iam import DeleteConflict, LimitExceeded, NoSuchEntity
from ..identity import InlinePolicy, PolicyAttachment
from ..policy import arns, document, grammar
from . import common

POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
# IAM's policyDocumentType: tab, LF, CR and Latin-1 only.
POLICY_DOCUMENT = re.compile(r"[\t\n\r\x20-\xff]+")
MAX_DOCUMENT = 131072

#: Per kind of holder: its inline grammar, and the columns naming it in the policy tables.
_KINDS = {
    "user": (grammar.IAM_INLINE_USER, InlinePolicy.user_id, PolicyAttachment.user_id),
    "group": (grammar.IAM_INLINE_GROUP, InlinePolicy.group_id, PolicyAttachment.group_id),
    "role": (grammar.IAM_INLINE_ROLE, InlinePolicy.role_id, PolicyAttachment.role_id),
}


def policy_name(value: str, name: str = "PolicyName") -> str:
    return common.check(value, POLICY_NAME, name)


def policy_document(value: str, name: str = "PolicyDocument") -> str:
    """A document parameter as IAM's model allows it (the grammar checks the rest)."""
    return common.check(value, POLICY_DOCUMENT, name, MAX_DOCUMENT)


@dataclass(frozen=True)
class Holder:
    """A user, group or role of an account, as policies name it."""

    kind: str                    # "user", "group" or "role"
    id: str
    name: str
    path: str
    account_id: str

    @property
    def arn(self) -> str:
        return arns.iam(self.account_id, self.kind, self.name, self.path)

    @property
    def grammar(self) -> grammar.Grammar:
        return _KINDS[self.kind][0]

    @property
    def inline_column(self):
        return _KINDS[self.kind][1]

    @property
    def attachment_column(self):
        return _KINDS[self.kind][2]


# --- inline policies ----------------------------------------------------------------

def _size(text: str) -> int:
    """A stored (valid) document's size as the grammar counts it: without whitespace."""
    return len(json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
               .encode("utf-8"))


def _find(holder: Holder, name: str) -> InlinePolicy | None:
    return db.session.execute(db.select(InlinePolicy).where(
        holder.inline_column == holder.id, InlinePolicy.name == name)).scalar_one_or_none()


def put(holder: Holder, name: str, text: str) -> None:
    """Embed policy *name* in the holder, replacing one of that name."""
    policy_name(name)
    document.parse(policy_document(text), holder.grammar)
    limit = holder.grammar.max_size
    with writing():
        others = db.session.execute(db.select(InlinePolicy.document).where(
            holder.inline_column == holder.id, InlinePolicy.name != name)).scalars()
        if sum(map(_size, others)) + _size(text) > limit:
            raise LimitExceeded(f"Maximum policy size of {limit} bytes exceeded for "
                                f"{holder.kind} {holder.name}")
        row = _find(holder, name)
        if row is None:
            row = InlinePolicy(name=name, document=text)
            setattr(row, f"{holder.kind}_id", holder.id)
            db.session.add(row)
        else:
            row.document = text
    # writing() serialises writers, so the unique (holder, name) cannot race here.


def get(holder: Holder, name: str) -> InlinePolicy:
    row = _find(holder, policy_name(name))
    if row is None:
        raise NoSuchEntity(f"The {holder.kind} policy with name {name} cannot be found.")
    return row


def delete(holder: Holder, name: str) -> None:
    db.session.delete(get(holder, name))
    db.session.commit()


def names(holder: Holder) -> list[str]:
    """The holder's inline policy names, sorted."""
    return list(db.session.execute(db.select(InlinePolicy.name).where(
        holder.inline_column == holder.id).order_by(InlinePolicy.name)).scalars())


# --- deleting an entity ---------------------------------------------------------------

def refuse_delete_while_held(kind: str, entity_id: str) -> None:
    """DeleteConflict while the user, group or role *entity_id* has inline policies or
    attached managed policies, with AWS's messages (DeleteUser, DeleteGroup, DeleteRole)."""
    _grammar, inline_column, attachment_column = _KINDS[kind]
    if db.session.execute(db.select(InlinePolicy.id).where(inline_column == entity_id)
                          ).first():
        raise DeleteConflict("Cannot delete entity, must delete policies first.")
    if db.session.execute(db.select(PolicyAttachment.id).where(
            attachment_column == entity_id)).first():
        raise DeleteConflict("Cannot delete entity, must detach all policies first.")
