"""IAM instance profiles of one account: create, read, delete (DeleteConflict while a role
is in it), list (all, or those holding a role), and the one role each may hold. Each change
commits; every function is scoped to the account whose id it is given."""
from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from .. import identity, ids, quotas
from ..db import db, writing
from ..errors.iam import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from ..identity import InstanceProfile, InstanceProfileRole, Role
from . import common, roles

PROFILE_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
#: IAM's default quota of instance profiles per account (InstanceProfilesQuota).
PROFILES_PER_ACCOUNT = 1000
#: IAM allows one role per instance profile.
ROLES_PER_PROFILE = 1


def name(value: str, member: str = "InstanceProfileName") -> str:
    return common.check(value, PROFILE_NAME, member)


def find(account_id: str, profile_name: str) -> InstanceProfile | None:
    return db.session.execute(db.select(InstanceProfile).filter_by(
        account_id=account_id, name=profile_name)).scalar_one_or_none()


def get(account_id: str, profile_name: str) -> tuple[InstanceProfile, Role | None]:
    """The profile and its role (None while it has none); NoSuchEntity otherwise."""
    return identity.instance_profile(account_id, name(profile_name))


def create(account_id: str, profile_name: str, path: str) -> InstanceProfile:
    name(profile_name)
    with writing():                     # the quota counts under the one writer
        quotas.check_account(account_id, "iam:CreateInstanceProfile",
                             {"iam:quota-instanceprofilenumber": 1})
        if find(account_id, profile_name) is not None:
            raise EntityAlreadyExists(f"Instance Profile {profile_name} already exists.")
        count = db.session.execute(db.select(db.func.count()).select_from(InstanceProfile)
                                   .filter_by(account_id=account_id)).scalar_one()
        if count >= PROFILES_PER_ACCOUNT:
            raise LimitExceeded("Cannot exceed quota for InstanceProfilesPerAccount: "
                                f"{PROFILES_PER_ACCOUNT}.")
        profile = InstanceProfile(id=ids.unique_id("AIPA"), account_id=account_id,
                                  name=profile_name, path=path)
        db.session.add(profile)
        try:
            db.session.commit()
        except IntegrityError:                  # another writer made it first
            db.session.rollback()
            raise EntityAlreadyExists(f"Instance Profile {profile_name} already exists.")
        return profile


def delete(account_id: str, profile_name: str) -> None:
    """Delete an empty profile (AWS: DeleteConflict while it holds a role)."""
    profile, role = get(account_id, profile_name)
    if role is not None:
        raise DeleteConflict("Cannot delete entity, must remove roles from instance profile "
                             "first.")
    db.session.delete(profile)
    db.session.commit()


def listed(account_id: str, path_prefix: str) -> list[tuple[InstanceProfile, Role | None]]:
    """The account's profiles whose path starts with *path_prefix*, by name, each with
    its role."""
    rows = db.session.execute(
        db.select(InstanceProfile, Role)
        .outerjoin(InstanceProfileRole, InstanceProfileRole.profile_id == InstanceProfile.id)
        .outerjoin(Role, Role.id == InstanceProfileRole.role_id)
        .where(InstanceProfile.account_id == account_id)
        .order_by(InstanceProfile.name)).all()
    return [(profile, role) for profile, role in rows if profile.path.startswith(path_prefix)]


def of_role(account_id: str, role_name: str) -> list[tuple[InstanceProfile, Role]]:
    """The profiles holding role *role_name* (NoSuchEntity when there is no such role)."""
    role = roles.get(account_id, role_name)
    held = db.session.execute(
        db.select(InstanceProfile)
        .join(InstanceProfileRole, InstanceProfileRole.profile_id == InstanceProfile.id)
        .where(InstanceProfileRole.role_id == role.id)
        .order_by(InstanceProfile.name)).scalars()
    return [(profile, role) for profile in held]


def add_role(account_id: str, profile_name: str, role_name: str) -> None:
    """Put the role in the profile: LimitExceeded when the profile already holds one (the
    same role included, as AWS answers). One writer at a time, so two concurrent calls
    cannot both find the profile empty."""
    with writing():
        profile, current = get(account_id, profile_name)
        role = roles.get(account_id, role_name)
        if current is not None:
            raise LimitExceeded("Cannot exceed quota for InstanceSessionsPerInstanceProfile: "
                                f"{ROLES_PER_PROFILE}")
        db.session.add(InstanceProfileRole(profile_id=profile.id, role_id=role.id))


def remove_role(account_id: str, profile_name: str, role_name: str) -> None:
    profile, current = get(account_id, profile_name)
    role = roles.get(account_id, role_name)
    if current is None or current.id != role.id:
        raise NoSuchEntity(f"The role with name {role_name} cannot be found in instance "
                           f"profile {profile_name}.")
    db.session.execute(db.delete(InstanceProfileRole).where(
        InstanceProfileRole.profile_id == profile.id))
    db.session.commit()
