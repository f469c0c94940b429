"""The user, group or role a policy action names, found in the caller's account as a
:class:`~.policies.Holder` (NoSuchEntity in IAM's words when there is none)."""
from __future__ import annotations

from ..errors.iam import NoSuchEntity
from ..policy import arns
from . import common, groups, roles, users
from .policies import Holder


def entity(account_id: str, kind: str, name: str) -> Holder:
    """The user, group or role *name* of the account; NoSuchEntity when there is none."""
    if kind == "user":
        row = users.get(account_id, common.user_name(name))
    elif kind == "group":
        row = groups.get(account_id, common.group_name(name))
    else:
        row = roles.get(account_id, name)
    return Holder(kind, row.id, row.name, row.path, account_id)


def entity_arn(account_id: str, kind: str, name: str) -> str:
    """The ARN of *name* with its path (``/`` when there is no such entity), for the
    permission check that comes before looking it up."""
    try:
        return entity(account_id, kind, name).arn
    except NoSuchEntity:
        return arns.iam(account_id, kind, name)
