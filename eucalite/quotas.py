"""Quotas, the cloud's SLA: Eucalyptus' limit policies, and what they count.

A quota is an IAM statement with ``"Effect": "Limit"`` (grammar :data:`QUOTA_KEYS` under
``NumericLessThanEquals``) in a user's inline policies. An ACCOUNT's quotas are those of its
``admin`` user (Eucalyptus: "a quota policy attached to an account is attached to the
account admin user"); a user's own quotas are its own inline policies. Groups' Limit
statements count for nothing; the cloud admin's account has no quotas. A request is
refused when any quota that applies to it (its Action/Resource match; the smallest value per
key) would be exceeded after it: the account's against everything the account holds, the
user's against what that user created (``creator_user_id``).

:func:`check` must run inside the write transaction that inserts the counted rows
(:func:`eucalite.db.writing`, the one writer): usage is read and the rows written under the
same lock, so concurrent requests cannot pass a limit together.

Usage is read from the tables by name (``db.metadata``): this module sits below the roles
whose tables it counts and imports none of them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from sqlalchemy import func

from .accounts import ADMIN_ACCOUNT, ADMIN_USER, Account, Principal, User
from .db import db
from .errors import AwsError
from .errors import ec2 as ec2_errors
from .errors import iam as iam_errors
from .errors import s3 as s3_errors
from .identity import InlinePolicy
from .policy import document, evaluation, grammar

QUOTA_KEYS = grammar.QUOTA_KEYS
MB = 1024 * 1024

#: The policy name the CLI and the console write quotas under.
POLICY_NAME = "eucalite-quota"


@dataclass(frozen=True)
class Usage:
    """How one key is counted: *table*, the *measure* (a column to sum; None: count
    rows), the rows that are *live*, *scale* (units of the table per unit of the key: bytes
    per MB), whether it is per bucket, and whether a user's quota counts the user's rows
    (*per_user*; IAM's entities carry no creator, so they count per account)."""

    table: str
    measure: str | None = None
    live: Callable[[Any], Any] | None = None
    scale: int = 1
    per_bucket: bool = False
    per_user: bool = True


# Keys with the same table and predicate are counted by one query (:func:`used`).
def _running(t):
    return t.c.state != "terminated"


def _volume_kept(t):
    return t.c.state != "deleted"


def _current_object(t):
    return t.c.is_latest & ~t.c.delete_marker


USAGE: Mapping[str, Usage] = {
    "ec2:quota-vminstancenumber": Usage("instances", live=_running),
    "ec2:quota-cputotalsize": Usage("instances", "cpu", _running),
    "ec2:quota-memorytotalsize": Usage("instances", "memory_mb", _running),
    "ec2:quota-disktotalsize": Usage("instances", "disk_gb", _running),
    "ec2:quota-imagenumber": Usage("images", live=lambda t: t.c.state != "deregistered"),
    "ec2:quota-volumenumber": Usage("volumes", live=_volume_kept),
    "ec2:quota-volumetotalsize": Usage("volumes", "size_gb", _volume_kept),
    "ec2:quota-snapshotnumber": Usage("snapshots"),
    "ec2:quota-addressnumber": Usage("addresses", live=lambda t: t.c.kind == "elastic"),
    "s3:quota-bucketnumber": Usage("s3_buckets"),
    "s3:quota-buckettotalsize": Usage("s3_objects", "size", scale=MB),
    "s3:quota-bucketsize": Usage("s3_objects", "size", scale=MB, per_bucket=True),
    "s3:quota-bucketobjectnumber": Usage("s3_objects", live=_current_object,
                                         per_bucket=True),
    "iam:quota-usernumber": Usage("users", per_user=False),
    "iam:quota-groupnumber": Usage("iam_groups", per_user=False),
    "iam:quota-rolenumber": Usage("iam_roles", per_user=False),
    "iam:quota-instanceprofilenumber": Usage("iam_instance_profiles", per_user=False),
}


def creator(principal: Principal) -> str | None:
    """The ``creator_user_id`` of a row *principal* creates: its user, none for a role."""
    return principal.user_id if principal.role_id is None else None


# --- limits ---------------------------------------------------------------------------

def _limit_policies(account_id: str, user_id: str | None) -> list[document.Policy]:
    """The Limit-bearing inline policies of *user_id*, or of the account's admin user."""
    query = db.select(InlinePolicy.document).join(User, User.id == InlinePolicy.user_id)
    query = query.where(User.id == user_id) if user_id is not None else \
        query.where(User.account_id == account_id, User.name == ADMIN_USER)
    # Only documents that say "Limit" can hold quotas: the others are never parsed here.
    texts = db.session.execute(query.where(InlinePolicy.document.contains("Limit"))).scalars()
    return [_parsed(text) for text in texts]


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> document.Policy:
    # stored documents were checked when saved: each distinct text is parsed once
    return document.parse(text, grammar.IAM_INLINE_USER)


def _merge(policies: list[document.Policy], action: str | None,
           resource: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for policy in policies:
        if action is None:          # every limit the policies declare, whatever the request
            pairs = [(c.key, int(c.values[0])) for s in policy.statements
                     if s.effect == document.LIMIT for c in s.conditions]
        else:
            pairs = list(evaluation.limits(policy, action, resource).items())
        for key, value in pairs:
            found[key] = min(value, found.get(key, value))
    return found


def limits(account_id: str, user_id: str | None = None, action: str | None = None,
           resource: str = "*") -> dict[str, int]:
    """Quota key -> limit of the account (*user_id* None) or of one user's own policies,
    for *action* on *resource* (None: every limit they declare)."""
    return _merge(_limit_policies(account_id, user_id), action, resource)


def _scopes(principal: Principal) -> list[str | None]:
    """The scopes whose quotas bind the caller: the account's (None), then the user's own
    (a user other than the root; a role session has no user)."""
    if principal.role_id is None and not principal.is_root:
        return [None, principal.user_id]
    return [None]


# --- usage ----------------------------------------------------------------------------

def _scope_query(spec: Usage, columns: list, account_id: str, user_id: str | None,
                 bucket_id: int | None):
    """SELECT *columns* over *spec*'s table, limited to the account's (or the user's, or
    the bucket's) live rows."""
    table = db.metadata.tables[spec.table]
    query = db.select(*columns).select_from(table)
    if spec.table == "s3_objects":
        buckets = db.metadata.tables["s3_buckets"]
        query = query.join(buckets, buckets.c.id == table.c.bucket_id).where(
            buckets.c.owner_id == account_id)
        if spec.per_bucket:
            query = query.where(table.c.bucket_id == bucket_id)
        elif user_id is not None:
            query = query.where(buckets.c.creator_user_id == user_id)
    else:
        owner = table.c.account_id if "account_id" in table.c else table.c.owner_id
        query = query.where(owner == account_id)
        if user_id is not None and spec.per_user:
            query = query.where(table.c.creator_user_id == user_id)
    if spec.live is not None:
        query = query.where(spec.live(table))
    return query


def used(keys: list[str], account_id: str, user_id: str | None = None,
         bucket_id: int | None = None) -> dict[str, int]:
    """What each of *keys* counts now in its table's unit (bytes for S3 sizes): the
    account's, or what *user_id* created; per bucket keys count *bucket_id* only (0
    without one). Keys over the same rows are counted by one query."""
    groups: dict[tuple, list[str]] = {}
    for key in keys:
        spec = USAGE[key]
        groups.setdefault((spec.table, spec.live, spec.per_bucket, spec.per_user),
                          []).append(key)
    found: dict[str, int] = {}
    for members in groups.values():
        spec = USAGE[members[0]]
        if spec.per_bucket and bucket_id is None:
            found.update(dict.fromkeys(members, 0))
            continue
        table = db.metadata.tables[spec.table]
        columns = [func.count() if USAGE[key].measure is None else
                   func.coalesce(func.sum(table.c[USAGE[key].measure]), 0)
                   for key in members]
        row = db.session.execute(_scope_query(spec, columns, account_id, user_id,
                                              bucket_id)).one()
        found.update({key: int(value or 0) for key, value in zip(members, row)})
    return found


def usage(account_id: str, user_id: str | None = None) -> dict[str, int]:
    """Every account-wide key's usage in the key's unit (MB rounded up for S3 sizes)."""
    keys = [key for key, spec in USAGE.items() if not spec.per_bucket]
    return {key: -(-value // USAGE[key].scale)
            for key, value in used(keys, account_id, user_id).items()}


# --- the check ------------------------------------------------------------------------

def _error(key: str, limit: int, now: int, amount: int) -> AwsError:
    left = max(0, limit - now)
    if key == "ec2:quota-vminstancenumber":
        return ec2_errors.InstanceLimitExceeded(
            f"Your quota allows for {left} more running instance(s). You requested at least "
            f"{amount}")
    if key == "ec2:quota-cputotalsize":
        return ec2_errors.VcpuLimitExceeded(
            f"You have requested more vCPU capacity than your current vCPU limit of {limit} "
            f"allows ({now} in use, {amount} requested).")
    if key in ("ec2:quota-memorytotalsize", "ec2:quota-disktotalsize"):
        what = "MiB of memory" if key.endswith("memorytotalsize") else "GiB of instance disk"
        return ec2_errors.InstanceLimitExceeded(
            f"Your quota allows for {left} more {what}. You requested {amount}")
    if key == "ec2:quota-volumenumber":
        return ec2_errors.VolumeLimitExceeded(
            f"Maximum number of active volumes limit exceeded (quota {limit}).")
    if key == "ec2:quota-volumetotalsize":
        return ec2_errors.VolumeLimitExceeded(
            f"You have exceeded your maximum storage limit of {limit} GiB ({now} GiB in use, "
            f"{amount} GiB requested).")
    if key == "ec2:quota-snapshotnumber":
        return ec2_errors.SnapshotLimitExceeded(
            f"The maximum number of snapshots has been reached (quota {limit}).")
    if key == "ec2:quota-addressnumber":
        return ec2_errors.AddressLimitExceeded(
            f"The maximum number of addresses has been reached (quota {limit}).")
    if key == "ec2:quota-imagenumber":
        return ec2_errors.ResourceLimitExceeded(
            f"You have exceeded the limit for images (quota {limit}).")
    if key == "s3:quota-bucketnumber":
        return s3_errors.TooManyBuckets(
            "You have attempted to create more buckets than allowed")
    if key in ("s3:quota-bucketsize", "s3:quota-buckettotalsize"):
        scope = "bucket" if key == "s3:quota-bucketsize" else "account's buckets"
        return s3_errors.EntityTooLarge(
            f"Your proposed upload exceeds the {scope} quota of {limit} MB")
    if key == "s3:quota-bucketobjectnumber":
        return s3_errors.QuotaExceeded(
            f"The bucket holds its quota of {limit} objects")
    name = {"iam:quota-usernumber": "UsersPerAccount", "iam:quota-groupnumber":
            "GroupsPerAccount", "iam:quota-rolenumber": "RolesPerAccount",
            "iam:quota-instanceprofilenumber": "InstanceProfilesPerAccount"}[key]
    return iam_errors.LimitExceeded(f"Cannot exceed quota for {name}: {limit}")


def launch(count: int, cpu: int, memory_mb: int, disk_gb: int,
           volume_sizes: tuple[int, ...] = ()) -> dict[str, int]:
    """What launching *count* instances of one type adds (RunInstances' quota keys), each
    instance making volumes of *volume_sizes* GiB (its EBS root, its mapping's volumes)."""
    return {"ec2:quota-vminstancenumber": count, "ec2:quota-cputotalsize": count * cpu,
            "ec2:quota-memorytotalsize": count * memory_mb,
            "ec2:quota-disktotalsize": count * disk_gb,
            "ec2:quota-volumenumber": count * len(volume_sizes),
            "ec2:quota-volumetotalsize": count * sum(volume_sizes)}


def check_launch(principal: Principal, adds: Mapping[str, int]) -> None:
    """:func:`check` for RunInstances adding *adds* (:func:`launch`). The volumes a launch
    makes are volumes created: the quotas written for ec2:CreateVolume bind them too, or
    a launch would be a way around them."""
    check(principal, "ec2:RunInstances", adds)
    check(principal, "ec2:CreateVolume", {key: amount for key, amount in adds.items()
                                          if USAGE[key].table == "volumes"})


def check(principal: Principal, action: str, adds: Mapping[str, int], *,
          resource: str = "*", bucket_id: int | None = None) -> None:
    """Raise the service's limit error if adding *adds* (key -> amount in the table's
    unit) for *action* on *resource* would pass a quota of the caller's account or of the
    caller's own user. Call it inside the write transaction that inserts the rows; a
    refusal rolls that transaction back (letting the write lock go) before it raises."""
    if principal.account_name == ADMIN_ACCOUNT or not any(adds.values()):
        return
    for user_id in _scopes(principal):
        _check(principal.account_id, user_id, action, resource, adds, bucket_id)


def check_account(account_id: str, action: str, adds: Mapping[str, int], *,
                  resource: str = "*", bucket_id: int | None = None) -> None:
    """:func:`check` for the account's quotas only (IAM's keys are per account, as in
    Eucalyptus): for callers that know the account, not the principal."""
    if db.session.get(Account, account_id).name != ADMIN_ACCOUNT:
        _check(account_id, None, action, resource, adds, bucket_id)


def check_object(requester: Principal | None, owner_id: str, bucket_id: int,
                 bucket: str, key: str, size: int) -> None:
    """:func:`check` for writing an object of *size* bytes in a bucket of account
    *owner_id*: a write by the owner's users counts against their quotas; another
    account's or an anonymous write counts against the bucket owner's account."""
    adds = {"s3:quota-bucketsize": size, "s3:quota-buckettotalsize": size,
            "s3:quota-bucketobjectnumber": 1}
    resource = f"arn:aws:s3:::{bucket}/{key}"
    if requester is not None and requester.account_id == owner_id:
        check(requester, "s3:PutObject", adds, resource=resource, bucket_id=bucket_id)
    else:
        check_account(owner_id, "s3:PutObject", adds, resource=resource, bucket_id=bucket_id)


def _check(account_id: str, user_id: str | None, action: str, resource: str,
           adds: Mapping[str, int], bucket_id: int | None) -> None:
    found = limits(account_id, user_id, action, resource)
    keys = [key for key, amount in adds.items() if key in found and amount]
    counts = used(keys, account_id, user_id, bucket_id) if keys else {}
    for key in keys:
        spec, amount, now = USAGE[key], adds[key], counts[key]
        if now + amount > found[key] * spec.scale:
            # the refused request's transaction ends here, and with it the write lock
            db.session.rollback()
            raise _error(key, found[key], -(-now // spec.scale), -(-amount // spec.scale))
