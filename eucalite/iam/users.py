"""IAM users of one account: create, read, rename, delete (AWS's DeleteConflict rule),
list by path prefix, and their tags. Each change commits; every function is scoped to the
account whose id it is given, so no account sees another's users."""
from __future__ import annotations

import re

from .. import accounts, quotas
from ..accounts import GroupMember, User, UserTag
from ..db import db, writing
from ..errors.iam import (DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity,
                          ValidationError)
from . import common, policies

MAX_TAGS = 50
TAG_KEY = r"[\w\s.:/=+\-@]{1,128}"


def find(account_id: str, name: str) -> User | None:
    return db.session.execute(db.select(User).filter_by(account_id=account_id, name=name)
                              ).scalar_one_or_none()


def get(account_id: str, name: str) -> User:
    user = find(account_id, name)
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    return user


def create(account_name: str, name: str, path: str, tags: dict[str, str]) -> User:
    """A new user (accounts.create_user: the CLI's rules) with *tags*."""
    common.user_name(name)
    check_tags(tags, {})
    with writing():                     # the quota counts under the one writer
        quotas.check_account(accounts.get_account(account_name).id, "iam:CreateUser",
                             {"iam:quota-usernumber": 1})
        user = accounts.create_user(account_name, name, path)
        for key, value in tags.items():
            db.session.add(UserTag(user_id=user.id, key=key, value=value))
        db.session.commit()
        return user


def update(account_id: str, name: str, new_name: str | None, new_path: str | None) -> None:
    user = get(account_id, name)
    if new_name is not None and new_name != name:
        common.user_name(new_name, "NewUserName")
        if name == accounts.ADMIN_USER:
            raise ValidationError("The account's root user admin cannot be renamed.")
        if find(account_id, new_name) is not None:
            raise EntityAlreadyExists(f"User with name {new_name} already exists.")
        user.name = new_name
    if new_path is not None:
        user.path = common.path(new_path, "NewPath")
    db.session.commit()


def delete(account_id: str, name: str) -> None:
    """Delete the user once nothing hangs on it: AWS refuses (DeleteConflict) while it has
    access keys, a login profile, group memberships or policies."""
    user = get(account_id, name)
    if name == accounts.ADMIN_USER:
        raise DeleteConflict("The account's root user admin cannot be deleted.")
    if user.keys:
        raise DeleteConflict("Cannot delete entity, must delete access keys first.")
    if user.password_hash is not None:
        raise DeleteConflict("Cannot delete entity, must delete login profile first.")
    if db.session.execute(db.select(GroupMember).filter_by(user_id=user.id)).first():
        raise DeleteConflict("Cannot delete entity, must remove users from group first.")
    policies.refuse_delete_while_held("user", user.id)
    db.session.delete(user)
    db.session.commit()


def listed(account_id: str, path_prefix: str) -> list[User]:
    """The account's users whose path starts with *path_prefix*, by name."""
    return common.by_path(User, account_id, path_prefix)


# --- tags -----------------------------------------------------------------------------

def tags_of(user: User) -> dict[str, str]:
    rows = db.session.execute(db.select(UserTag).filter_by(user_id=user.id)
                              .order_by(UserTag.key)).scalars()
    return {row.key: row.value for row in rows}


def check_tags(new: dict[str, str], existing: dict[str, str]) -> None:
    for key, value in new.items():
        if not re.fullmatch(TAG_KEY, key):
            raise common.invalid(key, "tags.member.key", "Member must satisfy regular "
                                 r"expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+")
        if len(value) > 256 or not re.fullmatch(r"[\w\s.:/=+\-@]*", value):
            raise common.invalid(value, "tags.member.value", "Member must satisfy regular "
                                 r"expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*")
        if key.lower().startswith("aws:"):
            raise ValidationError("Tag keys beginning with aws: are reserved.")
    if len(set(existing) | set(new)) > MAX_TAGS:
        raise LimitExceeded(f"The number of tags has reached the maximum limit: {MAX_TAGS}.")


def tag(account_id: str, name: str, tags: dict[str, str]) -> None:
    user = get(account_id, name)
    existing = tags_of(user)
    check_tags(tags, existing)
    for key, value in tags.items():
        row = db.session.get(UserTag, (user.id, key))
        if row is None:
            db.session.add(UserTag(user_id=user.id, key=key, value=value))
        else:
            row.value = value
    db.session.commit()


def untag(account_id: str, name: str, keys: list[str]) -> None:
    user = get(account_id, name)
    db.session.execute(db.delete(UserTag).where(UserTag.user_id == user.id,
                                                UserTag.key.in_(keys)))
    db.session.commit()
