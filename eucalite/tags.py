"""Tags on EC2 resources: the service behind CreateTags/DeleteTags/DescribeTags, and the
helpers every other resource family uses to take tags at creation and look them up.

Tags come and go as plain ``{key: value}`` dicts; the Query shapes (``Tag.N``,
``TagSpecification.N``, ``tagSet``) are the EC2 adapter's
(:mod:`eucalite.compute.ec2.tagparams`).

Tags live in one table keyed by resource id. Which resources may be tagged, and who owns
them, is told by a registry: each resource family calls :func:`register_resource` with its
id prefix, its EC2 resource type and a function saying whether an account owns an id. The
tag service thus never imports the families (dependencies point from them to it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import Index, String, and_, or_
from sqlalchemy.orm import Mapped, mapped_column

from .accounts import Principal
from .db import db, write_lock
from .errors import ClientError, InvalidParameterValue, MissingParameter
from .errors.ec2 import (InvalidAllocationIDNotFound, InvalidAMIIDNotFound, InvalidGroupNotFound,
                         InvalidSecurityGroupRuleIdNotFound,
                         InvalidID, InvalidInstanceIDNotFound, InvalidKeyPairNotFound,
                         InvalidLaunchTemplateIdNotFound,
                         InvalidPaginationToken,
                         InvalidSnapshotNotFound, InvalidVolumeNotFound, TagLimitExceeded)
from .query import check_text

#: AWS limits (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html).
MAX_TAGS_PER_RESOURCE = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256

#: ``<prefix>-<hex>``: Eucalyptus ids have 8 hex digits, AWS ones 17.
_ID = re.compile(r"^([a-z]+)-([0-9a-f]{8}|[0-9a-f]{17})\Z")

#: The NotFound error AWS gives per resource type, for ids that are well formed but unknown.
NOT_FOUND: dict[str, type[ClientError]] = {
    "instance": InvalidInstanceIDNotFound,
    "image": InvalidAMIIDNotFound,
    "key-pair": InvalidKeyPairNotFound,
    "volume": InvalidVolumeNotFound,
    "snapshot": InvalidSnapshotNotFound,
    "security-group": InvalidGroupNotFound,
    "security-group-rule": InvalidSecurityGroupRuleIdNotFound,
    "elastic-ip": InvalidAllocationIDNotFound,
    "launch-template": InvalidLaunchTemplateIdNotFound,
}


class Tag(db.Model):
    """A tag on any EC2 resource, keyed by the resource id (its prefix tells its type)."""

    __tablename__ = "tags"
    __table_args__ = (Index("ix_tags_owner_key", "owner_id", "key"),)

    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    owner_id: Mapped[str] = mapped_column(String(12))
    resource_type: Mapped[str] = mapped_column(String(32))


@dataclass(frozen=True)
class ResourceKind:
    """How tags find out about one resource family."""

    prefix: str
    resource_type: str                       # EC2's name: "instance", "image", "key-pair"
    owned: Callable[[str, str], bool]        # (owner_id, resource_id) -> does it exist & own it
    not_found: type[ClientError]


_RESOURCES: dict[str, ResourceKind] = {}


def register_resource(prefix: str, resource_type: str,
                      owned: Callable[[str, str], bool]) -> None:
    """Let ids starting with *prefix* (``"i-"``, ``"emi-"``…) be tagged as *resource_type*.

    *owned(owner_id, resource_id)* says whether that account owns that existing resource.
    Registering a prefix again replaces the earlier entry, so a family may refine the
    default checks below.
    """
    prefix = prefix.rstrip("-")
    _RESOURCES[prefix] = ResourceKind(prefix, resource_type, owned,
                                      NOT_FOUND.get(resource_type, InvalidID))


def resource_kind(resource_id: str) -> ResourceKind:
    """The registered kind of *resource_id*; a malformed id or unknown prefix is InvalidID."""
    match = _ID.match(resource_id or "")
    kind = _RESOURCES.get(match.group(1)) if match else None
    if kind is None:
        raise InvalidID(f"The ID '{resource_id}' is not valid")
    return kind


def check_owned(owner_id: str, resource_id: str) -> ResourceKind:
    """*resource_id*'s kind, if the account owns it; else that kind's NotFound error."""
    kind = resource_kind(resource_id)
    if not kind.owned(owner_id, resource_id):
        raise kind.not_found(f"The {kind.resource_type} ID '{resource_id}' does not exist")
    return kind


# --- validation -----------------------------------------------------------------------

def validate_key(key: Any) -> str:
    """A tag key as AWS accepts it: 1..128 characters, not starting with ``aws:``."""
    if not isinstance(key, str) or key == "":
        raise InvalidParameterValue("Tag key must not be empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameterValue(f"Tag key exceeds the maximum length of "
                                    f"{MAX_KEY_LENGTH} characters.")
    if key.lower().startswith("aws:"):
        raise InvalidParameterValue("Tag keys starting with 'aws:' are reserved for "
                                    "internal use.")
    return check_text(key, "Tag.Key")


def validate_value(value: Any) -> str:
    """A tag value: at most 256 characters; absent means empty, as in AWS."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameterValue("Tag value must be a single value.")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidParameterValue(f"Tag value exceeds the maximum length of "
                                    f"{MAX_VALUE_LENGTH} characters.")
    return check_text(value, "Tag.Value")


def validate_tags(tag_map: Mapping[str, Any]) -> dict[str, str]:
    """*tag_map* (key -> value) with every key and value checked as AWS checks them."""
    return {validate_key(key): validate_value(value) for key, value in tag_map.items()}


def check_new_tags(tag_map: Mapping[str, Any] | None) -> dict[str, str]:
    """The tags a resource being created gets, checked: keys, values, and at most
    :data:`MAX_TAGS_PER_RESOURCE` of them. Services call this before they write anything."""
    checked = validate_tags(tag_map or {})
    if len(checked) > MAX_TAGS_PER_RESOURCE:
        raise TagLimitExceeded(f"The maximum number of tags ({MAX_TAGS_PER_RESOURCE}) per "
                               "resource has been exceeded.")
    return checked


# --- queries --------------------------------------------------------------------------

def tags_for(owner_id: str, resource_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{resource_id: {key: value}}``: the tags *owner_id* sees on each resource, in one
    query. As in AWS, only a resource's owner sees its tags: another account's resource
    (a shared snapshot, a public image) has none here, so pass the caller's account for
    whatever it describes.

    Every requested id appears in the result, with ``{}`` when it has no tags.
    """
    wanted = list(dict.fromkeys(resource_ids))
    result: dict[str, dict[str, str]] = {resource_id: {} for resource_id in wanted}
    if not wanted:
        return result
    # SQLite allows some hundreds of bound parameters per statement; chunk to stay under.
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = db.session.execute(
            db.select(Tag.resource_id, Tag.key, Tag.value)
            .where(Tag.owner_id == owner_id, Tag.resource_id.in_(chunk))
            .order_by(Tag.resource_id, Tag.key))
        for resource_id, key, value in rows:
            result[resource_id][key] = value
    return result


@dataclass(frozen=True)
class TagQuery:
    """Exact conditions on DescribeTags' rows for the database to apply before it cuts a
    page (the literal values of its filters). Each entry is one condition, all must hold:
    the row's resource id, resource type, key or value is one of the entry's values; for
    *tagged* ``(key, values)``, the row's resource carries tag *key* with one of them."""

    resource_ids: tuple[tuple[str, ...], ...] = ()
    resource_types: tuple[tuple[str, ...], ...] = ()
    keys: tuple[tuple[str, ...], ...] = ()
    values: tuple[tuple[str, ...], ...] = ()
    tagged: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def apply(self, query, owner_id: str):
        for column, conditions in ((Tag.resource_id, self.resource_ids),
                                   (Tag.resource_type, self.resource_types),
                                   (Tag.key, self.keys), (Tag.value, self.values)):
            for values in conditions:
                query = query.where(column.in_(values))
        for key, values in self.tagged:
            query = query.where(Tag.resource_id.in_(db.select(Tag.resource_id).where(
                Tag.owner_id == owner_id, Tag.key == key, Tag.value.in_(values))))
        return query


def page_key(row: Tag) -> str:
    """The key a DescribeTags page resumes after: resource id and tag key, its order."""
    return f"{row.resource_id}\t{row.key}"


def describe(owner_id: str, narrowing: TagQuery | None = None, after: str | None = None,
             limit: int | None = None) -> tuple[list[Tag], str | None]:
    """(Up to *limit* (None: all) of the account's tags after the page key *after*,
    narrowed by *narrowing*, ordered by resource id then key; the key of the last one when
    more follow, else None). One query with ORDER BY and LIMIT: a page costs the same
    however many tags the account has. A malformed *after* is InvalidPaginationToken."""
    query = db.select(Tag).where(Tag.owner_id == owner_id)
    if narrowing is not None:
        query = narrowing.apply(query, owner_id)
    if after is not None:
        resource_id, tab, key = after.partition("\t")
        if not tab:
            raise InvalidPaginationToken("The specified pagination token is not valid or "
                                         "is expired.")
        query = query.where(or_(Tag.resource_id > resource_id,
                                and_(Tag.resource_id == resource_id, Tag.key > key)))
    query = query.order_by(Tag.resource_id, Tag.key)
    if limit is not None:
        query = query.limit(limit + 1)
    rows = list(db.session.execute(query).scalars())
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        return rows, page_key(rows[-1])
    return rows, None


# --- changes --------------------------------------------------------------------------

def _add(owner_id: str, resource_id: str, resource_type: str,
         pairs: list[tuple[str, str]]) -> None:
    """Set *pairs* on one resource inside the caller's transaction, enforcing the limit."""
    existing = {row.key: row for row in db.session.execute(
        db.select(Tag).where(Tag.owner_id == owner_id, Tag.resource_id == resource_id))
        .scalars()}
    added = {key for key, _ in pairs if key not in existing}
    if len(existing) + len(added) > MAX_TAGS_PER_RESOURCE:
        raise TagLimitExceeded(f"The maximum number of tags ({MAX_TAGS_PER_RESOURCE}) for "
                               f"resource {resource_id} has been reached.")
    for key, value in pairs:
        row = existing.get(key)
        if row is None:
            db.session.add(Tag(resource_id=resource_id, key=key, value=value,
                               owner_id=owner_id, resource_type=resource_type))
        else:
            row.value = value


def create_tags(principal: Principal, resource_ids: list[str],
                tag_map: Mapping[str, str]) -> None:
    """CreateTags: add or overwrite *tag_map* (key -> value) on every resource, all or
    nothing."""
    if not resource_ids:
        raise MissingParameter("The request must contain the parameter ResourceId.1")
    if not tag_map:
        raise MissingParameter("The request must contain the parameter Tag.1")
    pairs = list(validate_tags(tag_map).items())
    write_lock()
    try:
        kinds = {resource_id: check_owned(principal.account_id, resource_id)
                 for resource_id in resource_ids}
        for resource_id, kind in kinds.items():
            _add(principal.account_id, resource_id, kind.resource_type, pairs)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def delete_tags(principal: Principal, resource_ids: list[str],
                pairs: list[tuple[str, str | None]] | None) -> None:
    """DeleteTags: remove tags from every resource.

    *pairs* None removes every tag; a pair with value None removes that key whatever its
    value; a pair with a value (even "") removes the key only if its value is that. A key
    may come in several pairs (either value removes it).
    """
    if not resource_ids:
        raise MissingParameter("The request must contain the parameter ResourceId.1")
    if pairs is not None:
        pairs = [(validate_key(key), value) for key, value in pairs]
    write_lock()
    try:
        for resource_id in resource_ids:
            check_owned(principal.account_id, resource_id)
        rows = db.session.execute(db.select(Tag).where(
            Tag.owner_id == principal.account_id, Tag.resource_id.in_(resource_ids))).scalars()
        for row in rows:
            if pairs is None or any(row.key == key and (value is None or row.value == value)
                                    for key, value in pairs):
                db.session.delete(row)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def tag_new_resources(principal: Principal, resource_type: str, resource_ids: list[str],
                      tag_map: Mapping[str, str] | None) -> None:
    """Give resources being created the tags *tag_map* (see :func:`check_new_tags`).

    Runs inside the creating caller's write transaction and does not commit, so the
    resource and its tags appear together or not at all. Ownership is not checked: the
    caller has just created the resources for *principal*.
    """
    pairs = list(check_new_tags(tag_map).items())
    if not pairs:
        return
    for resource_id in resource_ids:
        _add(principal.account_id, resource_id, resource_type, pairs)


def tag_system(account_id: str, resource_type: str, resource_ids: list[str],
               tag_map: Mapping[str, str] | None) -> None:
    """Give resources being created the ``aws:`` tags the cloud itself sets (Auto
    Scaling's ``aws:autoscaling:groupName``), which users cannot set or delete; inside the
    creating caller's write transaction, like :func:`tag_new_resources`."""
    for resource_id in resource_ids:
        _add(account_id, resource_id, resource_type, list((tag_map or {}).items()))


def untag_system(account_id: str, resource_ids: list[str], key: str) -> None:
    """Remove a cloud-set ``aws:`` tag *key* from resources (an instance leaving its Auto
    Scaling group), in the caller's transaction."""
    db.session.execute(db.delete(Tag).where(Tag.owner_id == account_id,
                                            Tag.resource_id.in_(resource_ids), Tag.key == key))


def delete_all(resource_id: str) -> None:
    """Drop every tag of a resource that is going away, in the caller's transaction."""
    db.session.execute(db.delete(Tag).where(Tag.resource_id == resource_id))


def row_owned(model) -> Callable[[str, str], bool]:
    """An ``owned`` check for a table with ``id`` and ``owner_id`` columns."""
    def owned(owner_id: str, resource_id: str) -> bool:
        return db.session.execute(db.select(model.id).where(
            model.id == resource_id, model.owner_id == owner_id)).first() is not None
    return owned
