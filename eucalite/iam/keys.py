"""Access keys of a user through IAM: at most two per user (accounts.create_access_key
keeps that rule), status, deletion and last use. Every function is scoped to the account
whose id it is given: a key of another account is NoSuchEntity, as if it did not exist."""
from __future__ import annotations

from .. import accounts
from ..accounts import AccessKey
from ..db import db
from ..errors.iam import ValidationError
from . import users


def of_user(account_id: str, user_name: str) -> list[AccessKey]:
    user = users.get(account_id, user_name)
    return sorted(user.keys, key=lambda key: (key.created, key.id))


def create(account_id: str, account_name: str, user_name: str) -> AccessKey:
    users.get(account_id, user_name)
    return accounts.create_access_key(account_name, user_name)


def get(account_id: str, access_key_id: str, user_name: str | None = None) -> AccessKey:
    """The key, if it belongs to the account (and to *user_name* when given)."""
    key = db.session.get(AccessKey, access_key_id)
    if key is None or key.user.account_id != account_id or \
            (user_name is not None and key.user.name != user_name):
        raise accounts.key_not_found(access_key_id)
    return key


def set_status(account_id: str, access_key_id: str, user_name: str | None,
               status: str) -> None:
    if status not in ("Active", "Inactive"):
        raise ValidationError(f"1 validation error detected: Value '{status}' at 'status' "
                              "failed to satisfy constraint: Member must satisfy enum value "
                              "set: [Active, Inactive]")
    get(account_id, access_key_id, user_name)
    accounts.set_access_key_status(access_key_id, status)


def delete(account_id: str, access_key_id: str, user_name: str | None) -> None:
    get(account_id, access_key_id, user_name)
    accounts.delete_access_key(access_key_id)
