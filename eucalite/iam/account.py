"""The account as IAM shows it: its alias (one per account, unique across the cloud) and
GetAccountSummary's counts and quotas."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from ..accounts import Account, Group, User
from ..db import db
from ..errors.iam import EntityAlreadyExists, NoSuchEntity
from . import common, groups

#: IAM's default quotas that eucalite enforces or reports as AWS does.
QUOTAS = {"UsersQuota": 5000, "GroupsQuota": 300,
          "GroupsPerUserQuota": groups.GROUPS_PER_USER, "AccessKeysPerUserQuota": 2}


def aliases(account_id: str) -> list[str]:
    alias = db.session.get(Account, account_id).alias
    return [alias] if alias else []


def create_alias(account_id: str, alias: str) -> None:
    """Set the account's alias (replacing its old one, as AWS does)."""
    common.check(alias, common.ACCOUNT_ALIAS, "AccountAlias", 63)
    account = db.session.get(Account, account_id)
    if account.alias == alias:
        return
    taken = db.session.execute(db.select(Account.id).filter_by(alias=alias)).first()
    if taken is not None:
        raise EntityAlreadyExists(f"The account alias {alias} already exists.")
    account.alias = alias
    try:
        db.session.commit()
    except IntegrityError:                  # another account took it first
        db.session.rollback()
        raise EntityAlreadyExists(f"The account alias {alias} already exists.")


def delete_alias(account_id: str, alias: str) -> None:
    account = db.session.get(Account, account_id)
    if account.alias != alias:
        raise NoSuchEntity(f"The account alias {alias} cannot be found.")
    account.alias = None
    db.session.commit()


def summary(account_id: str) -> dict[str, int]:
    """GetAccountSummary's entries for what exists so far (users, groups, keys, passwords)."""
    user_rows = list(db.session.execute(db.select(User).filter_by(account_id=account_id))
                     .scalars())
    groups = db.session.execute(db.select(db.func.count()).select_from(Group).filter_by(
        account_id=account_id)).scalar_one()
    root = next((user for user in user_rows if user.name == "admin"), None)
    return {"Users": len(user_rows), "Groups": groups, **QUOTAS,
            "AccountAccessKeysPresent": int(bool(root and root.keys)),
            "AccountPasswordPresent": int(bool(root and root.password_hash)),
            "AccountMFAEnabled": 0, "MFADevices": 0, "MFADevicesInUse": 0}
