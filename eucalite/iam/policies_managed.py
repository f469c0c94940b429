"""Managed policies: an account's own (``arn:aws:iam::<account>:policy/<path><name>``) and
AWS's (``arn:aws:iam::aws:policy/...``, seen by every account, changed by none), with
their versions (at most five; one is the default, the one in force).

Functions take the caller's account id and a policy ARN, and find only that account's
policies and AWS's: another account's policy is not there (NoSuchEntity). Changes to a
policy run in one write transaction (:func:`eucalite.db.writing`), so two racing
CreatePolicyVersion calls cannot both take the fifth place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .. import ids
from ..accounts import Group, User, utcnow
from ..db import db, writing
from ..errors.iam import (DeleteConflict, EntityAlreadyExists, InvalidInput, LimitExceeded,
                          NoSuchEntity)
from ..identity import AWS_ACCOUNT, ManagedPolicy, PolicyAttachment, PolicyVersion, Role
from ..policy import arns, document, grammar
from . import common
from .policies import policy_document, policy_name

#: IAM's quota of versions per managed policy.
MAX_VERSIONS = 5
POLICY_PATH = re.compile(r"((/[A-Za-z0-9.,+@=_-]+)*)/")
VERSION_ID = re.compile(r"v[1-9][0-9]*(\.[A-Za-z0-9-]*)?")
_ARN = re.compile(r"arn:aws:iam::([0-9]{12}|aws):policy(/.*)?/([^/]+)")
SCOPES = ("All", "AWS", "Local")


def policy_path(value: str | None, name: str = "Path") -> str:
    return "/" if value is None else common.check(value, POLICY_PATH, name, common.MAX_PATH)


def arn_of(policy: ManagedPolicy) -> str:
    return arns.iam(policy.account_id or AWS_ACCOUNT, "policy", policy.name, policy.path)


def is_aws(policy: ManagedPolicy) -> bool:
    return policy.account_id is None


# --- finding a policy -----------------------------------------------------------------

def _parse_arn(arn: str) -> tuple[str, str, str]:
    """(account field, path, name) of a policy ARN; InvalidInput when it is none."""
    match = _ARN.fullmatch(arn)
    if match is None:
        raise InvalidInput(f"ARN {arn} is not valid.")
    return match.group(1), (match.group(2) or "") + "/", match.group(3)


def find(account_id: str, arn: str) -> ManagedPolicy | None:
    """The policy *arn* names, if the caller's account (*account_id*) sees it."""
    owner, path, name = _parse_arn(arn)
    if owner not in (account_id, AWS_ACCOUNT):
        return None
    owner_column = ManagedPolicy.account_id.is_(None) if owner == AWS_ACCOUNT else \
        ManagedPolicy.account_id == owner
    policy = db.session.execute(db.select(ManagedPolicy).where(
        owner_column, ManagedPolicy.name == name)).scalar_one_or_none()
    return policy if policy is not None and policy.path == path else None


def get(account_id: str, arn: str, attaching: bool = False) -> ManagedPolicy:
    """The policy *arn* names; NoSuchEntity in AWS's words (*attaching*: AttachXPolicy's)."""
    policy = find(account_id, arn)
    if policy is None:
        raise NoSuchEntity(f"Policy {arn} does not exist or is not attachable."
                           if attaching else f"Policy {arn} was not found.")
    return policy


def check_arn(arn: str) -> str:
    """*arn* once it parses as a policy ARN (InvalidInput otherwise): the resource of the
    permission check made before the policy is looked up."""
    _parse_arn(arn)
    return arn


# --- the policy -----------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    """A policy with its attachment count in the caller's account."""

    policy: ManagedPolicy
    attachments: int


def attachment_counts(account_id: str, policy_ids: list[str] | None = None) -> dict[str, int]:
    """How many of the account's users, groups and roles each policy is attached to (an
    AWS policy's count is the caller's account's, as IAM shows it)."""
    entity = db.or_(
        PolicyAttachment.user_id.in_(db.select(User.id).where(User.account_id == account_id)),
        PolicyAttachment.group_id.in_(db.select(Group.id).where(Group.account_id == account_id)),
        PolicyAttachment.role_id.in_(db.select(Role.id).where(Role.account_id == account_id)))
    query = db.select(PolicyAttachment.policy_id, db.func.count()).where(entity) \
        .group_by(PolicyAttachment.policy_id)
    if policy_ids is not None:
        query = query.where(PolicyAttachment.policy_id.in_(policy_ids))
    return dict(db.session.execute(query).all())


def counted(account_id: str, policy: ManagedPolicy) -> Listed:
    return Listed(policy, attachment_counts(account_id, [policy.id]).get(policy.id, 0))


def create(account_id: str, name: str, path: str, description: str | None,
           text: str) -> ManagedPolicy:
    """A new policy of the account with version v1 (its default) holding *text*."""
    policy_name(name)
    if description is not None and len(description) > 1000:
        raise common.invalid(description, "description",
                             "Member must have length less than or equal to 1000")
    document.parse(policy_document(text), grammar.IAM_MANAGED)
    now = utcnow()
    policy = ManagedPolicy(id=ids.unique_id("ANPA"), account_id=account_id, name=name,
                           path=path, description=description, default_version="v1",
                           next_version=2, created=now, updated=now)
    with writing():             # one writer at a time: the name check cannot race
        if db.session.execute(db.select(ManagedPolicy.id).filter_by(
                account_id=account_id, name=name)).first():
            raise EntityAlreadyExists(f"A policy called {name} already exists. Duplicate "
                                      "names are not allowed.")
        db.session.add(policy)
        db.session.flush()
        db.session.add(PolicyVersion(policy_id=policy.id, version_id="v1", document=text,
                                     created=now))
    return policy


def delete(account_id: str, policy: ManagedPolicy) -> None:
    """Delete an account's policy: AWS refuses (DeleteConflict) while it is attached or
    has versions besides its default, which goes with it."""
    with writing():
        if attachment_counts(account_id, [policy.id]):
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if len(versions(policy)) > 1:
            raise DeleteConflict("This policy has more than one version. Before you delete a "
                                 "policy, you must delete the policy's versions. The default "
                                 "version is deleted with the policy.")
        db.session.execute(db.delete(PolicyVersion).where(PolicyVersion.policy_id == policy.id))
        db.session.execute(db.delete(ManagedPolicy).where(ManagedPolicy.id == policy.id))


def listed(account_id: str, scope: str, only_attached: bool, path_prefix: str,
           usage: str | None) -> list[Listed]:
    """The policies the account sees, by name (then ARN): *scope* ``All``, ``AWS`` or
    ``Local``; *only_attached* those attached to one of its entities; *path_prefix* on the
    policy's path; *usage* ``PermissionsBoundary`` lists none (no boundaries here)."""
    if usage == "PermissionsBoundary":
        return []
    owners = {"All": db.or_(ManagedPolicy.account_id == account_id,
                            ManagedPolicy.account_id.is_(None)),
              "AWS": ManagedPolicy.account_id.is_(None),
              "Local": ManagedPolicy.account_id == account_id}[scope]
    rows = db.session.execute(db.select(ManagedPolicy).where(owners)).scalars()
    counts = attachment_counts(account_id)
    found = [Listed(policy, counts.get(policy.id, 0)) for policy in rows
             if policy.path.startswith(path_prefix)
             and (not only_attached or counts.get(policy.id))]
    return sorted(found, key=list_key)


def list_key(item: Listed) -> str:
    """The order (and paging key) of policy listings: name, then ARN."""
    return f"{item.policy.name}\n{arn_of(item.policy)}"


# --- versions -------------------------------------------------------------------------

def versions(policy: ManagedPolicy) -> list[PolicyVersion]:
    """The policy's versions, newest first (as IAM lists them)."""
    rows = db.session.execute(db.select(PolicyVersion).where(
        PolicyVersion.policy_id == policy.id)).scalars()
    return sorted(rows, key=lambda row: int(row.version_id[1:].split(".")[0]), reverse=True)


def get_version(policy: ManagedPolicy, arn: str, version_id: str) -> PolicyVersion:
    common.check(version_id, VERSION_ID, "VersionId")
    row = db.session.get(PolicyVersion, (policy.id, version_id))
    if row is None:
        raise NoSuchEntity(f"Policy {arn} version {version_id} does not exist or is not "
                           "attachable.")
    return row


def create_version(policy: ManagedPolicy, text: str, set_default: bool) -> PolicyVersion:
    """A new version (the next number IAM has not used for this policy)."""
    document.parse(policy_document(text), grammar.IAM_MANAGED)
    with writing():
        db.session.refresh(policy)
        if len(versions(policy)) >= MAX_VERSIONS:
            raise LimitExceeded(f"A managed policy can have up to {MAX_VERSIONS} versions. "
                                "Before you create a new version, you must delete an "
                                "existing version.")
        row = PolicyVersion(policy_id=policy.id, version_id=f"v{policy.next_version}",
                            document=text)
        db.session.add(row)
        policy.next_version += 1
        policy.updated = utcnow()
        if set_default:
            policy.default_version = row.version_id
    return row


def delete_version(policy: ManagedPolicy, arn: str, version_id: str) -> None:
    with writing():
        db.session.refresh(policy)
        row = get_version(policy, arn, version_id)
        if version_id == policy.default_version:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        db.session.delete(row)


def set_default(policy: ManagedPolicy, arn: str, version_id: str) -> None:
    with writing():
        db.session.refresh(policy)
        get_version(policy, arn, version_id)
        policy.default_version = version_id
        policy.updated = utcnow()
