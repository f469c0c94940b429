"""The account as IAM shows it: its alias (one per account, unique across the cloud) and
GetAccountSummary's counts and quotas."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from ..accounts import Account, Group, User
from ..db import db
from ..errors.iam import EntityAlreadyExists, NoSuchEntity
from ..identity import InstanceProfile, ManagedPolicy, Role
from ..policy import grammar
from . import common, groups, policies_attached, policies_managed, profiles, roles

#: IAM's default quotas that eucalite enforces or reports as AWS does.
QUOTAS = {"UsersQuota": 5000, "GroupsQuota": 300,
          "GroupsPerUserQuota": groups.GROUPS_PER_USER, "AccessKeysPerUserQuota": 2,
          "RolesQuota": roles.ROLES_PER_ACCOUNT,
          "InstanceProfilesQuota": profiles.PROFILES_PER_ACCOUNT,
          "PoliciesQuota": 1500, "PolicyVersionsInUseQuota": 10000,
          "VersionsPerPolicyQuota": policies_managed.MAX_VERSIONS,
          "AttachedPoliciesPerUserQuota": policies_attached.MAX_ATTACHED,
          "AttachedPoliciesPerGroupQuota": policies_attached.MAX_ATTACHED,
          "AttachedPoliciesPerRoleQuota": policies_attached.MAX_ATTACHED,
          "PolicySizeQuota": grammar.IAM_MANAGED.max_size,
          "UserPolicySizeQuota": grammar.IAM_INLINE_USER.max_size,
          "GroupPolicySizeQuota": grammar.IAM_INLINE_GROUP.max_size,
          "RolePolicySizeQuota": grammar.IAM_INLINE_ROLE.max_size,
          "AssumeRolePolicySizeQuota": grammar.IAM_TRUST.max_size,
          "ServerCertificatesQuota": 20, "SigningCertificatesPerUserQuota": 2}


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


def _count(model, account_id: str) -> int:
    return db.session.execute(db.select(db.func.count()).select_from(model).filter_by(
        account_id=account_id)).scalar_one()


def summary(account_id: str) -> dict[str, int]:
    """GetAccountSummary's entries: every key AWS returns, counted from this account's
    users, groups, roles, instance profiles and managed policies (PolicyVersionsInUse: the
    attachments of managed policies, AWS's own included, to its users, groups and roles);
    what this cloud does not have (MFA, server and signing certificates, identity
    providers) counts 0."""
    user_rows = list(db.session.execute(db.select(User).filter_by(account_id=account_id))
                     .scalars())
    root = next((user for user in user_rows if user.name == "admin"), None)
    return {"Users": len(user_rows), "Groups": _count(Group, account_id),
            "Roles": _count(Role, account_id),
            "InstanceProfiles": _count(InstanceProfile, account_id),
            "Policies": _count(ManagedPolicy, account_id),
            "PolicyVersionsInUse": sum(policies_managed.attachment_counts(account_id)
                                       .values()),
            **QUOTAS,
            "AccountAccessKeysPresent": int(bool(root and root.keys)),
            "AccountPasswordPresent": int(bool(root and root.password_hash)),
            "AccountSigningCertificatesPresent": 0, "ServerCertificates": 0, "Providers": 0,
            "AccountMFAEnabled": 0, "MFADevices": 0, "MFADevicesInUse": 0,
            "GlobalEndpointTokenVersion": 1}
