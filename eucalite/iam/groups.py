"""IAM groups of one account and their members. Each change commits; every function is
scoped to the account whose id it is given."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from .. import ids, quotas
from ..accounts import Group, GroupMember, User
from ..db import db, writing
from ..errors.iam import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from . import common, policies, users

#: IAM's quota of groups a user may belong to (GetAccountSummary's GroupsPerUserQuota).
GROUPS_PER_USER = 10


def find(account_id: str, name: str) -> Group | None:
    return db.session.execute(db.select(Group).filter_by(account_id=account_id, name=name)
                              ).scalar_one_or_none()


def get(account_id: str, name: str) -> Group:
    group = find(account_id, name)
    if group is None:
        raise NoSuchEntity(f"The group with name {name} cannot be found.")
    return group


def create(account_id: str, name: str, path: str) -> Group:
    common.group_name(name)
    with writing():                     # the quota counts under the one writer
        quotas.check_account(account_id, "iam:CreateGroup", {"iam:quota-groupnumber": 1})
        if find(account_id, name) is not None:
            raise EntityAlreadyExists(f"Group with name {name} already exists.")
        group = Group(id=ids.unique_id("AGPA"), account_id=account_id, name=name, path=path)
        db.session.add(group)
        try:
            db.session.commit()
        except IntegrityError:                  # another writer made it first
            db.session.rollback()
            raise EntityAlreadyExists(f"Group with name {name} already exists.")
        return group


def update(account_id: str, name: str, new_name: str | None, new_path: str | None) -> None:
    group = get(account_id, name)
    if new_name is not None and new_name != name:
        common.group_name(new_name, "NewGroupName")
        if find(account_id, new_name) is not None:
            raise EntityAlreadyExists(f"Group with name {new_name} already exists.")
        group.name = new_name
    if new_path is not None:
        group.path = common.path(new_path, "NewPath")
    db.session.commit()


def delete(account_id: str, name: str) -> None:
    """Delete an empty group (AWS: DeleteConflict while it has members or policies)."""
    group = get(account_id, name)
    if db.session.execute(db.select(GroupMember).filter_by(group_id=group.id)).first():
        raise DeleteConflict("Cannot delete entity, must remove users from group first.")
    policies.refuse_delete_while_held("group", group.id)
    db.session.delete(group)
    db.session.commit()


def listed(account_id: str, path_prefix: str) -> list[Group]:
    return common.by_path(Group, account_id, path_prefix)


def members(group: Group) -> list[User]:
    return list(db.session.execute(
        db.select(User).join(GroupMember, GroupMember.user_id == User.id)
        .where(GroupMember.group_id == group.id).order_by(User.name)).scalars())


def of_user(account_id: str, user_name: str) -> list[Group]:
    user = users.get(account_id, user_name)
    return list(db.session.execute(
        db.select(Group).join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id).order_by(Group.name)).scalars())


def add_user(account_id: str, group_name: str, user_name: str) -> None:
    group = get(account_id, group_name)
    user = users.get(account_id, user_name)
    if db.session.get(GroupMember, (group.id, user.id)) is None:
        if len(of_user(account_id, user_name)) >= GROUPS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {GROUPS_PER_USER}")
        db.session.add(GroupMember(group_id=group.id, user_id=user.id))
        try:
            db.session.commit()
        except IntegrityError:              # another writer added it first: same result
            db.session.rollback()


def remove_user(account_id: str, group_name: str, user_name: str) -> None:
    group = get(account_id, group_name)
    user = users.get(account_id, user_name)
    row = db.session.get(GroupMember, (group.id, user.id))
    if row is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found in group "
                           f"{group_name}.")
    db.session.delete(row)
    db.session.commit()
