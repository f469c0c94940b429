"""Security groups, the groups themselves: names and their checks, the ``default`` group every
account gets on first use, lookups by id and name, instance membership, and what makes a group
impossible to delete. (Rules are :mod:`eucalite.compute.secrules`'.)

The behaviour is EC2-Classic's, as Eucalyptus' EDGE mode exposes it: group names are unique
per account and may be any printable ASCII except a leading ``sg-``; the ``default`` group
(members talk to each other, everything may go out) is made the first time anything needs
it (DescribeSecurityGroups, a launch, a rule change) and cannot be deleted; a group is in use
while an instance that has not terminated is in it, or another group's rule names it.

Functions that write do so in the caller's transaction unless they say they commit; the
ones that may create the default group need the caller to hold the write lock
(:func:`eucalite.db.write_lock`), except :func:`ensure_default`, which takes it itself.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError

from .. import ids, tags
from ..accounts import Principal
from ..db import db, write_lock
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import (CannotDelete, InvalidGroupDuplicate, InvalidGroupIdMalformed,
                          InvalidGroupInUse, InvalidGroupNotFound, InvalidGroupReserved,
                          SecurityGroupLimitExceeded, SecurityGroupsPerInstanceLimitExceeded)
from . import secrules, states
from .models import Instance, InstanceSecurityGroup, SecurityGroup, SecurityGroupRule

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "default group"
MAX_LENGTH = 255                        # names and descriptions alike
_GROUP_ID = re.compile(r"^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")


# --- checks --------------------------------------------------------------------------------

def _check_text(value: str | None, parameter: str) -> str:
    """A group name or description: 1..255 printable ASCII characters (EC2-Classic's rule)."""
    if not value:
        raise MissingParameter(f"The request must contain the parameter {parameter}")
    if len(value) > MAX_LENGTH:
        raise InvalidParameterValue(f"Value ({value}) for parameter {parameter} is invalid. "
                                    f"Length exceeds maximum of {MAX_LENGTH}.")
    if not all(32 <= ord(char) < 127 for char in value):
        raise InvalidParameterValue(f"Value ({value}) for parameter {parameter} is invalid. "
                                    "Character sets beyond ASCII are not supported.")
    return value


def check_name(name: str | None) -> str:
    """A name for a new group; ``sg-…`` is refused, as it would read as an id."""
    name = _check_text(name, "GroupName")
    if name.startswith("sg-"):
        raise InvalidParameterValue(f"Value ({name}) for parameter GroupName is invalid. "
                                    "Group names may not be in the format sg-*.")
    return name


def check_description(description: str | None) -> str:
    return _check_text(description, "GroupDescription")


def check_group_id(group_id: str) -> str:
    """*group_id* if it has the shape of a group id (``sg-`` and 8 or 17 hex digits), else
    InvalidGroupId.Malformed."""
    if not _GROUP_ID.match(group_id or ""):
        raise InvalidGroupIdMalformed(f'Invalid id: "{group_id}" (expecting "sg-...")')
    return group_id


def not_found(missing: list[str]) -> InvalidGroupNotFound:
    """InvalidGroup.NotFound naming every missing group (ids or names)."""
    if len(missing) == 1:
        return InvalidGroupNotFound(f"The security group '{missing[0]}' does not exist")
    return InvalidGroupNotFound(f"The security groups '{', '.join(missing)}' do not exist")


def check_launch_groups(owner_id: str, names: Iterable[str], group_ids: Iterable[str],
                        limit: int) -> None:
    """RunInstances' SecurityGroup.N / SecurityGroupId.N before anything is reserved or
    written: ids well formed, at most *limit* distinct groups per instance, and each one the
    account's (``default`` may be yet to make). :func:`launch_groups` resolves them again in
    the launch's transaction."""
    names, group_ids = set(names), set(group_ids)
    for group_id in group_ids:
        check_group_id(group_id)
    if len(names) + len(group_ids) > limit:
        raise SecurityGroupsPerInstanceLimitExceeded(
            f"The maximum number of security groups per instance ({limit}) has been "
            "exceeded.")
    describe(owner_id, sorted(group_ids), sorted(names - {DEFAULT_NAME}))


# --- the default group ---------------------------------------------------------------------

def _find_default(owner_id: str) -> SecurityGroup | None:
    return db.session.execute(db.select(SecurityGroup).filter_by(
        owner_id=owner_id, name=DEFAULT_NAME)).scalar_one_or_none()


def default_group(owner_id: str) -> SecurityGroup:
    """The account's default group, made (with its rules) in the caller's write transaction
    if the account has none yet."""
    group = _find_default(owner_id)
    if group is None:
        group = SecurityGroup(id=ids.resource_id("sg"), owner_id=owner_id, name=DEFAULT_NAME,
                              description=DEFAULT_DESCRIPTION)
        db.session.add(group)
        db.session.flush()
        db.session.add_all(secrules.default_rules(group))
        db.session.flush()
    return group


def ensure_default(owner_id: str) -> None:
    """Make the account's default group if it has none, in a transaction of its own
    (committed); a read when it exists."""
    if _find_default(owner_id) is not None:
        return
    write_lock()
    try:
        default_group(owner_id)
        db.session.commit()
    except IntegrityError:              # another database writer made it first
        db.session.rollback()
    except BaseException:
        db.session.rollback()
        raise


# --- lookups -------------------------------------------------------------------------------

def describe(owner_id: str, group_ids: Iterable[str] = (),
             names: Iterable[str] = ()) -> list[SecurityGroup]:
    """The account's groups by id (the paging order), only those named or with those ids if
    any are given; a malformed id is InvalidGroupId.Malformed, any missing one
    InvalidGroup.NotFound (another account's group is missing here, as in AWS)."""
    group_ids, names = list(dict.fromkeys(group_ids)), list(dict.fromkeys(names))
    for group_id in group_ids:
        check_group_id(group_id)
    query = db.select(SecurityGroup).filter_by(owner_id=owner_id).order_by(SecurityGroup.id)
    if group_ids or names:
        query = query.where(SecurityGroup.id.in_(group_ids) | SecurityGroup.name.in_(names))
    rows = list(db.session.execute(query).scalars())
    missing = ([group_id for group_id in group_ids if group_id not in {r.id for r in rows}]
               + [name for name in names if name not in {r.name for r in rows}])
    if missing:
        raise not_found(missing)
    return rows


def find(owner_id: str, group_id: str | None = None,
         name: str | None = None) -> SecurityGroup:
    """One of the account's groups, by id (checked first) or else by name; MissingParameter
    when neither is given."""
    if group_id:
        return describe(owner_id, group_ids=[group_id])[0]
    if name:
        return describe(owner_id, names=[name])[0]
    raise MissingParameter("The request must contain the parameter GroupName or GroupId")


def launch_groups(owner_id: str, names: Iterable[str] | None,
                  group_ids: Iterable[str] | None) -> list[SecurityGroup]:
    """The groups a launch puts its instances in, in the order named (names first, as
    RunInstances lists SecurityGroup.N before SecurityGroupId.N), without repeats; the
    default group when none is named. Call with the write lock held: it may make the
    default group."""
    names, group_ids = list(names or ()), list(group_ids or ())
    if not names and not group_ids:
        return [default_group(owner_id)]
    if DEFAULT_NAME in names:
        default_group(owner_id)
    rows = describe(owner_id, group_ids=group_ids, names=names)
    by_name = {row.name: row for row in rows}
    by_id = {row.id: row for row in rows}
    ordered = [by_name[name] for name in names] + [by_id[group_id] for group_id in group_ids]
    return list({row.id: row for row in ordered}.values())


class GroupRef(NamedTuple):
    """A security group as an instance's membership names it."""

    id: str
    name: str


def instance_groups(instance_ids: Iterable[str]) -> dict[str, list[GroupRef]]:
    """``{instance id: its groups in launch order}``; every id is a key. One query per
    500 instances, reading ids and names only (a page of a thousand instances lists its
    groups in a few milliseconds; whole SecurityGroup objects took ten times as long)."""
    wanted = list(dict.fromkeys(instance_ids))
    result: dict[str, list[GroupRef]] = {instance_id: [] for instance_id in wanted}
    refs: dict[str, GroupRef] = {}          # one GroupRef per group, shared by its members
    # SQLite allows some hundreds of bound parameters per statement; chunk to stay under.
    for start in range(0, len(wanted), 500):
        rows = db.session.execute(_MEMBERSHIPS, {"ids": wanted[start:start + 500]})
        for instance_id, group_id, name in rows:
            ref = refs.get(group_id)
            if ref is None:
                ref = refs[group_id] = GroupRef(group_id, name)
            result[instance_id].append(ref)
    return result


#: (instance id, group id, group name) of the instances in the bound list ``ids``, each
#: instance's groups in launch order (the list bound at execution: no per-id coercion).
_MEMBERSHIPS = (
    db.select(InstanceSecurityGroup.instance_id, SecurityGroup.id, SecurityGroup.name)
    .join(SecurityGroup, SecurityGroup.id == InstanceSecurityGroup.group_id)
    .where(InstanceSecurityGroup.instance_id.in_(bindparam("ids", expanding=True)))
    .order_by(InstanceSecurityGroup.instance_id, InstanceSecurityGroup.position))


def add_members(instance_ids: Iterable[str], groups: list[SecurityGroup]) -> None:
    """Put new instances in *groups* (in that order), in the caller's transaction."""
    db.session.add_all([InstanceSecurityGroup(instance_id=instance_id, group_id=group.id,
                                              position=position)
                        for instance_id in instance_ids
                        for position, group in enumerate(groups)])


# --- creating and deleting -----------------------------------------------------------------

def create(principal: Principal, name: str, description: str,
           tag_map: dict[str, str] | None = None, limit: int = 2500) -> SecurityGroup:
    """CreateSecurityGroup: a new group with the rules every group starts with
    (:func:`eucalite.compute.secrules.default_rules`), committed with its tags. The name
    ``default`` is reserved; the account holds at most *limit* groups, its default one
    included."""
    name, description = check_name(name), check_description(description)
    tag_map = tags.check_new_tags(tag_map)          # fail before writing
    if name == DEFAULT_NAME:
        raise InvalidGroupReserved("The name 'default' is reserved, and cannot be used to "
                                   "create a new security group.")
    owner_id = principal.account_id
    write_lock()
    try:
        default_group(owner_id)
        if db.session.execute(db.select(SecurityGroup.id).filter_by(
                owner_id=owner_id, name=name)).first() is not None:
            raise InvalidGroupDuplicate(f"The security group '{name}' already exists")
        count = db.session.execute(db.select(db.func.count()).select_from(SecurityGroup)
                                   .filter_by(owner_id=owner_id)).scalar()
        if count >= limit:
            raise SecurityGroupLimitExceeded(
                f"The maximum number of security groups ({limit}) has been reached.")
        group = SecurityGroup(id=ids.resource_id("sg"), owner_id=owner_id, name=name,
                              description=description)
        db.session.add(group)
        db.session.flush()
        db.session.add_all(secrules.default_rules(group))
        tags.tag_new_resources(principal, "security-group", [group.id], tag_map)
        db.session.commit()
    except IntegrityError:                  # another database's writer won the name
        db.session.rollback()
        raise InvalidGroupDuplicate(f"The security group '{name}' already exists")
    except BaseException:
        db.session.rollback()
        raise
    return group


def _check_unused(group: SecurityGroup) -> None:
    """InvalidGroup.InUse while an instance that has not terminated is in *group*, or a rule
    of another group names it as its peer."""
    member = db.session.execute(
        db.select(Instance.id).join(InstanceSecurityGroup,
                                    InstanceSecurityGroup.instance_id == Instance.id)
        .where(InstanceSecurityGroup.group_id == group.id,
               Instance.state != states.TERMINATED).limit(1)).scalar()
    if member is not None:
        raise InvalidGroupInUse(f"There are active instances using security group "
                                f"'{group.name}'")
    referring = sorted(set(db.session.execute(
        db.select(SecurityGroupRule.group_id).where(
            SecurityGroupRule.peer_group_id == group.id,
            SecurityGroupRule.group_id != group.id)).scalars()))
    if referring:
        raise InvalidGroupInUse(f"Group {group.id} is used by groups: {' '.join(referring)}")


def delete(principal: Principal, group_id: str | None = None,
           name: str | None = None) -> SecurityGroup:
    """DeleteSecurityGroup by id or name (id wins when both are given): the group, its
    rules, its tags and the memberships terminated instances kept go (committed). The
    default group cannot be deleted (CannotDelete), a group in use neither
    (InvalidGroup.InUse). Returns the deleted group (detached)."""
    if group_id:
        check_group_id(group_id)
    elif not name:
        raise MissingParameter("The request must contain the parameter GroupName or GroupId")
    write_lock()
    try:
        default_group(principal.account_id)     # so deleting it is CannotDelete, not NotFound
        group = find(principal.account_id, group_id, name)
        if group.name == DEFAULT_NAME:
            raise CannotDelete(f'the specified group: "{group.id}" name: "{group.name}" '
                               f'owner: "{group.owner_id}" cannot be deleted by a user')
        _check_unused(group)
        db.session.execute(db.delete(InstanceSecurityGroup).where(
            InstanceSecurityGroup.group_id == group.id))
        rule_ids = list(db.session.execute(db.select(SecurityGroupRule.id).where(
            SecurityGroupRule.group_id == group.id)).scalars())
        for rule_id in rule_ids + [group.id]:
            tags.delete_all(rule_id)
        db.session.execute(db.delete(SecurityGroupRule).where(
            SecurityGroupRule.group_id == group.id))
        db.session.delete(group)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return group


def _rule_owned(owner_id: str, rule_id: str) -> bool:
    return db.session.execute(
        db.select(SecurityGroupRule.id).join(SecurityGroup,
                                             SecurityGroup.id == SecurityGroupRule.group_id)
        .where(SecurityGroupRule.id == rule_id, SecurityGroup.owner_id == owner_id)
    ).first() is not None


tags.register_resource("sg-", "security-group", tags.row_owned(SecurityGroup))
tags.register_resource("sgr-", "security-group-rule", _rule_owned)
