"""IAM roles of one account: create (with a trust policy checked as IAM checks it), read,
update, delete (AWS's DeleteConflict rules), list by path prefix, and their tags. Each
change commits; every function is scoped to the account whose id it is given, so no
account sees another's roles."""
from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from .. import identity, ids, quotas
from ..db import db, writing
from ..errors.iam import DeleteConflict, EntityAlreadyExists, LimitExceeded, NoSuchEntity
from ..identity import InstanceProfileRole, Role, RoleTag
from ..policy import document, grammar
from . import common, policies, users

#: IAM's default quota of roles per account (GetAccountSummary's RolesQuota).
ROLES_PER_ACCOUNT = 1000
MIN_SESSION, MAX_SESSION = 3600, 43200
DESCRIPTION = re.compile(r"[\t\n\r\x20-\x7e\xa1-\xff]*")
MAX_DESCRIPTION = 1000


def find(account_id: str, name: str) -> Role | None:
    return db.session.execute(db.select(Role).filter_by(account_id=account_id, name=name)
                              ).scalar_one_or_none()


def get(account_id: str, name: str) -> Role:
    role = find(account_id, common.check(name, policies.ROLE_NAME, "RoleName"))
    if role is None:
        raise NoSuchEntity(f"The role with name {name} cannot be found.")
    return role


def check_trust(text: str, name: str = "AssumeRolePolicyDocument") -> str:
    """*text* if it is a trust policy IAM accepts: the document's characters and length,
    then the trust grammar with every principal existing in this cloud
    (MalformedPolicyDocument: ``Invalid principal in policy: ...`` otherwise)."""
    common.check(text, policies.POLICY_DOCUMENT, name, policies.MAX_DOCUMENT)
    document.parse(text, grammar.IAM_TRUST, principal_exists=identity.principal_exists)
    return text


def description(value: str | None, name: str = "Description") -> str | None:
    return None if value is None else common.check(value, DESCRIPTION, name, MAX_DESCRIPTION)


def session_duration(text: str | None) -> int | None:
    """MaxSessionDuration in seconds (None when absent): 3600 to 43200."""
    if text is None:
        return None
    value = int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None
    if value is None or not MIN_SESSION <= value <= MAX_SESSION:
        raise common.invalid(text, "maxSessionDuration",
                             f"Member must have value between {MIN_SESSION} and {MAX_SESSION}")
    return value


def create(account_id: str, name: str, path: str, trust: str, about: str | None,
           max_session: int | None, tags: dict[str, str]) -> Role:
    common.check(name, policies.ROLE_NAME, "RoleName")
    users.check_tags(tags, {})
    check_trust(trust)
    with writing():                     # the quota counts under the one writer
        quotas.check_account(account_id, "iam:CreateRole", {"iam:quota-rolenumber": 1})
        if find(account_id, name) is not None:
            raise EntityAlreadyExists(f"Role with name {name} already exists.")
        count = db.session.execute(db.select(db.func.count()).select_from(Role)
                                   .filter_by(account_id=account_id)).scalar_one()
        if count >= ROLES_PER_ACCOUNT:
            raise LimitExceeded(f"Cannot exceed quota for RolesPerAccount: {ROLES_PER_ACCOUNT}.")
        role = Role(id=ids.unique_id("AROA"), account_id=account_id, name=name, path=path,
                    trust_policy=trust, description=about,
                    max_session_duration=max_session or MIN_SESSION)
        db.session.add(role)
        db.session.add_all(RoleTag(role_id=role.id, key=key, value=value)
                           for key, value in tags.items())
        try:
            db.session.commit()
        except IntegrityError:                  # another writer made it first
            db.session.rollback()
            raise EntityAlreadyExists(f"Role with name {name} already exists.")
        return role


def update(account_id: str, name: str, about: str | None, max_session: int | None) -> Role:
    """UpdateRole and UpdateRoleDescription: what is given changes, the rest stays."""
    role = get(account_id, name)
    if about is not None:
        role.description = about
    if max_session is not None:
        role.max_session_duration = max_session
    db.session.commit()
    return role


def update_trust(account_id: str, name: str, trust: str) -> None:
    role = get(account_id, name)
    role.trust_policy = check_trust(trust, "PolicyDocument")
    db.session.commit()


def delete(account_id: str, name: str) -> None:
    """Delete the role once nothing hangs on it: AWS refuses (DeleteConflict) while it is
    in an instance profile or has inline or attached policies."""
    role = get(account_id, name)
    if db.session.execute(db.select(InstanceProfileRole.profile_id)
                          .filter_by(role_id=role.id)).first():
        raise DeleteConflict(
            "Cannot delete entity, must remove roles from instance profile first.")
    policies.refuse_delete_while_held("role", role.id)
    db.session.delete(role)
    db.session.commit()


def listed(account_id: str, path_prefix: str) -> list[Role]:
    """The account's roles whose path starts with *path_prefix*, by name."""
    return common.by_path(Role, account_id, path_prefix)


# --- tags -----------------------------------------------------------------------------

def tags_of(role: Role) -> dict[str, str]:
    rows = db.session.execute(db.select(RoleTag).filter_by(role_id=role.id)
                              .order_by(RoleTag.key)).scalars()
    return {row.key: row.value for row in rows}


def tag(account_id: str, name: str, tags: dict[str, str]) -> None:
    """Add or overwrite *tags* (users' tag rules: :func:`.users.check_tags`)."""
    role = get(account_id, name)
    users.check_tags(tags, tags_of(role))
    for key, value in tags.items():
        row = db.session.get(RoleTag, (role.id, key))
        if row is None:
            db.session.add(RoleTag(role_id=role.id, key=key, value=value))
        else:
            row.value = value
    db.session.commit()


def untag(account_id: str, name: str, keys: list[str]) -> None:
    role = get(account_id, name)
    db.session.execute(db.delete(RoleTag).where(RoleTag.role_id == role.id,
                                                RoleTag.key.in_(keys)))
    db.session.commit()
