"""The user, group or role a policy action names, found in the caller's account as a
:class:`~.policies.Holder` (NoSuchEntity in IAM's words when there is none)."""
from __future__ import annotations

from ..db import db
from ..errors.iam import NoSuchEntity
from ..identity import Role
from ..policy import arns
from . import common, groups, users
from .policies import ROLE_NAME, Holder


def find_role(account_id: str, name: str) -> Role | None:
    return db.session.execute(db.select(Role).filter_by(account_id=account_id, name=name)
                              ).scalar_one_or_none()


def entity(account_id: str, kind: str, name: str) -> Holder:
    """The user, group or role *name* of the account; NoSuchEntity when there is none."""
    if kind == "user":
        row = users.get(account_id, common.user_name(name))
    elif kind == "group":
        row = groups.get(account_id, common.group_name(name))
    else:
        row = find_role(account_id, common.check(name, ROLE_NAME, "RoleName"))
        if row is None:
            raise NoSuchEntity(f"The role with name {name} cannot be found.")
    return Holder(kind, row.id, row.name, row.path, account_id)


def entity_arn(account_id: str, kind: str, name: str) -> str:
    """The ARN of *name* with its path (``/`` when there is no such entity), for the
    permission check that comes before looking it up."""
    try:
        return entity(account_id, kind, name).arn
    except NoSuchEntity:
        return arns.iam(account_id, kind, name)
