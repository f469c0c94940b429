"""Instances: launch, describe, reboot, stop/start, terminate, console output, attributes.

The request thread validates, reserves node capacity and records the instances as
``pending``; the slow work (spawning or destroying the domain) runs on the compute
service's worker pool (:mod:`eucalite.compute.lifecycle`). Every state change goes through
:func:`eucalite.compute.states.transition`.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import and_, or_

from .. import identity, ids, quotas
from ..accounts import Principal, utcnow
from ..cluster.virt.network_xml import mac_for
from ..db import db, load_json, write_lock
from ..errors import InvalidParameterValue
from ..errors.iam import NoSuchEntity
from ..policy import arns
from ..errors.ec2 import (IncorrectInstanceState, InvalidInstanceIDNotFound,
                          InvalidPaginationToken)
from ..tags import Tag
from . import launchmappings, secgroups, states
from .addresses import assign_at_launch
from .instance_types import DEFAULT_TYPE
from .models import Instance

MAX_USER_DATA = 16 * 1024
TERMINATED_VISIBLE = dt.timedelta(hours=1)


class InstanceNotFound(InvalidInstanceIDNotFound):
    def __init__(self, ids):
        listed = ", ".join(ids) if isinstance(ids, (list, tuple, set)) else ids
        super().__init__(f"The instance ID '{listed}' does not exist")


def incorrect_state(instance: Instance, action: str) -> IncorrectInstanceState:
    return IncorrectInstanceState(f"The instance '{instance.id}' is not in a state from "
                                  f"which it can be {action}.")


def new_instance_id() -> str:
    return ids.resource_id("i")


def new_reservation_id() -> str:
    return ids.resource_id("r")


def new_mac() -> str:
    # d0:0d is Eucalyptus' MAC prefix; the rest random, locally administered range.
    return "d0:0d:" + ":".join(f"{byte:02x}" for byte in secrets.token_bytes(4))


@dataclass
class LaunchRequest:
    """A launch as plain values: what the EC2 adapter parses RunInstances into and the
    console's launch form fills in."""

    image_id: str
    min_count: int = 1
    max_count: int = 1
    instance_type: str = DEFAULT_TYPE
    key_name: str | None = None
    security_groups: list[str] | None = None      # by name (SecurityGroup.N)
    security_group_ids: list[str] | None = None   # by id (SecurityGroupId.N)
    public_ip: bool = True                # False: no public IP at launch (AddressingType=private)
    user_data: bytes = b""                # as the guest reads it (at most MAX_USER_DATA)
    zone: str | None = None
    # with no zone: the local zones it may be placed in (an Auto Scaling group's); None: any
    zones: list[str] | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    client_token: str | None = None
    tags: dict[str, str] | None = None    # for the new instances, validated
    volume_tags: dict[str, str] | None = None   # for the volumes the launch makes, validated
    # ``aws:`` tags the cloud itself sets (Auto Scaling's aws:autoscaling:groupName)
    system_tags: dict[str, str] | None = None
    metadata_options: dict | None = None  # MetadataOptions, validated
    # disableApiTermination / disableApiStop / instanceInitiatedShutdownBehavior, validated
    attributes: dict | None = None
    # BlockDeviceMapping.N as parse_block_device_mappings reads it (over the image's:
    # :mod:`.launchmappings`)
    block_devices: list[dict] | None = None
    # IamInstanceProfile: ("arn" or "name", what the request gives); resolved at launch
    iam_instance_profile: tuple[str, str] | None = None
    monitoring: bool = False              # Monitoring.Enabled: detailed monitoring


def decode_user_data(user_data: str | None) -> bytes:
    """User data as sent over the API and stored (base64) as the bytes the guest reads;
    InvalidParameterValue if it is not base64 or too long."""
    if not user_data:
        return b""
    try:
        raw = base64.b64decode(user_data, validate=False)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("Invalid BASE64 encoding of user data.")
    return check_user_data(raw)


def encode_user_data(raw: bytes) -> str | None:
    """User data as the bytes the guest reads, in its stored form (base64; None if empty);
    InvalidParameterValue if it is too long."""
    return base64.b64encode(check_user_data(raw)).decode() if raw else None


def check_user_data(raw: bytes) -> bytes:
    """*raw* if it is within MAX_USER_DATA, else InvalidParameterValue."""
    if len(raw) > MAX_USER_DATA:
        raise InvalidParameterValue(f"User data is limited to {MAX_USER_DATA} bytes.")
    return raw


def _visible_query(principal: Principal):
    """The caller's instances, terminated ones only for an hour after they ended."""
    cutoff = utcnow() - TERMINATED_VISIBLE
    return db.select(Instance).where(
        Instance.owner_id == principal.account_id,
        or_(Instance.state != states.TERMINATED, Instance.terminated_at.is_(None),
            Instance.terminated_at >= cutoff))


def visible(principal: Principal, ids: list[str] | None = None) -> list[Instance]:
    """The caller's instances (terminated ones for an hour), in launch order; with *ids*,
    all of them or InvalidInstanceID.NotFound naming the missing ones."""
    query = _visible_query(principal)
    if ids:
        query = query.where(Instance.id.in_(ids))
    rows = list(db.session.execute(query.order_by(*_ORDER)).scalars())
    if ids:
        _require_all(ids, [row.id for row in rows])
    return rows


def _require_all(ids: list[str], seen: list[str]) -> None:
    """InvalidInstanceID.NotFound naming those of *ids* not in *seen*, if any."""
    missing = sorted(set(ids) - set(seen))
    if missing:
        raise InstanceNotFound(missing)


#: Launch order, made total by the id: the order of DescribeInstances and of its pages.
_ORDER = (Instance.launch_time, Instance.id)

#: Instance columns a :class:`Narrowing` may test.
NARROWABLE = frozenset({"id", "state", "reservation_id", "image_id", "instance_type", "zone",
                        "key_name"})


@dataclass(frozen=True)
class Narrowing:
    """Exact conditions on instances for the database to apply before a page is cut (the
    literal values of a Describe's filters). Each entry is one condition, all must hold:
    *columns* ``(column, values)``: the column equals one of the values (columns from
    :data:`NARROWABLE`); *tag_values* ``(key, values)``: the instance has tag *key* with
    one of the values; *tag_keys*: the instance has a tag with one of these keys."""

    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tag_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tag_keys: tuple[tuple[str, ...], ...] = ()

    def apply(self, query, owner_id: str):
        for column, values in self.columns:
            if column not in NARROWABLE:
                raise ValueError(f"not a narrowable instance column: {column}")
            query = query.where(getattr(Instance, column).in_(values))
        for key, values in self.tag_values:
            query = query.where(Instance.id.in_(db.select(Tag.resource_id).where(
                Tag.owner_id == owner_id, Tag.key == key, Tag.value.in_(values))))
        for keys in self.tag_keys:
            query = query.where(Instance.id.in_(db.select(Tag.resource_id).where(
                Tag.owner_id == owner_id, Tag.key.in_(keys))))
        return query


class ListedInstance(NamedTuple):
    """An instance as a page lists it: the columns DescribeInstances renders and filters
    on, read as plain rows (loading ORM objects would cost several times as much at a
    thousand instances). Read-only; the attribute names are the model's."""

    id: str
    reservation_id: str
    owner_id: str
    image_id: str
    kernel_id: str | None
    ramdisk_id: str | None
    instance_type: str
    state: str
    state_reason: str | None
    key_name: str | None
    zone: str
    launch_index: int
    client_token: str | None
    launch_time: dt.datetime
    private_ip: str | None
    public_ip: str | None
    root_device_type: str
    root_device_name: str
    metadata_options_json: str | None
    iam_instance_profile_arn: str | None
    iam_instance_profile_id: str | None
    monitoring: str

    def get_json(self, name: str, default=None):
        """A ``<name>_json`` column as a Python value, as :class:`~eucalite.db.JsonFields`."""
        return load_json(getattr(self, name + "_json"), default)


_LISTED_COLUMNS = tuple(getattr(Instance, name) for name in ListedInstance._fields)


@dataclass
class InstancePage:
    """One page of instances in launch order, and the key to resume after (None: last)."""

    rows: list[ListedInstance]
    next_key: str | None


def page_key(instance: Instance | ListedInstance) -> str:
    """The key a page resumes after: launch time and id, the order's own columns."""
    return f"{instance.launch_time.isoformat()}|{instance.id}"


def _after(key: str):
    """The SQL condition "comes after *key*" in launch order; InvalidPaginationToken if
    *key* is not one :func:`page_key` made."""
    when, _, instance_id = key.rpartition("|")
    try:
        launched = dt.datetime.fromisoformat(when)
    except ValueError:
        launched = None
    if launched is None or launched.tzinfo is not None or not instance_id:
        raise InvalidPaginationToken("The specified pagination token is not valid or is "
                                     "expired.")
    return or_(Instance.launch_time > launched,
               and_(Instance.launch_time == launched, Instance.id > instance_id))


def page(principal: Principal, ids: list[str] | None = None, *,
         narrowing: Narrowing | None = None, after: str | None = None,
         limit: int | None = None) -> InstancePage:
    """Up to *limit* (None: all) of the caller's visible instances in launch order, after
    the key *after*, narrowed by *narrowing*, as :class:`ListedInstance` rows: one query
    with ORDER BY and LIMIT, so a page costs the same however many instances the account
    has. With *ids*, every one must be visible (else InvalidInstanceID.NotFound), and only
    they are paged."""
    if ids:
        _require_all(ids, list(db.session.execute(_visible_query(principal).with_only_columns(
            Instance.id).where(Instance.id.in_(ids))).scalars()))
    query = _visible_query(principal).with_only_columns(*_LISTED_COLUMNS)
    if ids:
        query = query.where(Instance.id.in_(ids))
    if narrowing is not None:
        query = narrowing.apply(query, principal.account_id)
    if after:
        query = query.where(_after(after))
    query = query.order_by(*_ORDER)
    if limit is not None:
        query = query.limit(limit + 1)
    rows = [ListedInstance._make(row) for row in db.session.execute(query)]
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        return InstancePage(rows, page_key(rows[-1]))
    return InstancePage(rows, None)


def owned(principal: Principal, instance_id: str) -> Instance:
    return visible(principal, [instance_id])[0]


def by_client_token(principal: Principal, token: str) -> list[Instance]:
    return list(db.session.execute(db.select(Instance).filter_by(
        owner_id=principal.account_id, client_token=token).order_by(
        Instance.launch_index)).scalars())


def addresses_in_use() -> tuple[set[str], str | None]:
    """(the private addresses of instances that have not ended, the address handed out most
    recently): what :func:`eucalite.cluster.network.allocate` needs to choose new ones.
    Read them inside the write transaction that records the new instances."""
    used = set(db.session.execute(db.select(Instance.private_ip).where(
        Instance.state != states.TERMINATED, Instance.private_ip.is_not(None))).scalars())
    last = db.session.execute(db.select(Instance.private_ip).where(
        # a burst instance's address is its remote cloud's, not of this subnet
        Instance.private_ip.is_not(None), Instance.burst_target.is_(None)).order_by(
        Instance.launch_time.desc(), Instance.id.desc()).limit(1)).scalar()
    return used, last


def launch_profile(account_id: str, given: tuple[str, str] | None
                   ) -> tuple[str, str] | None:
    """(ARN, id) of the instance profile a launch names (``("arn"|"name", value)``), or
    None; AWS's InvalidParameterValue when *account_id* has no such profile."""
    if given is None:
        return None
    by, value = given
    try:
        profile, _ = identity.instance_profile(account_id, value)
    except NoSuchEntity:
        raise InvalidParameterValue(
            f"Value ({value}) for parameter iamInstanceProfile.{by} is invalid. Invalid IAM "
            f"Instance Profile {'ARN' if by == 'arn' else 'name'}") from None
    return arns.iam(account_id, "instance-profile", profile.name, profile.path), profile.id


def record_launch(principal: Principal, request: LaunchRequest, *, image, kernel_id,
                  ramdisk_id, itype, key, zone: str, node_ids: list[str],
                  tag=None, allocate_ips=None, public_pool=None,
                  record_volumes=None) -> list[Instance]:
    """Write the new instances as pending, members of the request's security groups (the
    default group when it names none; InvalidGroup.NotFound for one the account lacks), and
    return them; *tag* (given the new ids) runs in the same transaction, so instances and
    their tags appear together, and so does *allocate_ips* (given a count, returns that many
    private addresses), and each gets a launch address from *public_pool* (None: public
    IPs are off) unless the request says ``public_ip=False``. The volumes each instance
    makes (:func:`.launchmappings.volumes`: its EBS root, its mapping's volumes) are
    counted against the volume quotas and recorded by *record_volumes* (given the instance
    and them), in the same transaction."""
    reservation = new_reservation_id()
    mappings = launchmappings.merge(principal, image, request.block_devices) \
        if request.block_devices else None
    profile = launch_profile(principal.account_id, request.iam_instance_profile)
    planned = launchmappings.volumes(image, mappings)
    rows = []
    write_lock()
    # The launch's volumes are recorded below with its instances (their data is written
    # at first boot), so they count against the volume quotas in this one transaction
    # and concurrent launches cannot pass a quota together.
    quotas.check_launch(principal, quotas.launch(
        len(node_ids), itype.cpu, itype.memory_mb, itype.disk_gb,
        tuple(v.size_gb for v in planned)))
    groups = secgroups.launch_groups(principal.account_id, request.security_groups,
                                     request.security_group_ids)
    addresses = allocate_ips(len(node_ids)) if allocate_ips else [None] * len(node_ids)
    for index, node_id in enumerate(node_ids):
        instance = Instance(
            id=new_instance_id(), reservation_id=reservation, owner_id=principal.account_id,
            requester_arn=principal.arn, image_id=image.id, kernel_id=kernel_id,
            ramdisk_id=ramdisk_id, instance_type=itype.name, state=states.PENDING,
            task=states.TASK_SPAWNING, key_name=key.name if key else None,
            key_public=key.public_key if key else None,
            user_data=encode_user_data(request.user_data),
            zone=zone, node_id=node_id, launch_index=index, client_token=request.client_token,
            launch_time=utcnow(), private_ip=addresses[index],
            mac=mac_for(addresses[index]) if addresses[index] else new_mac(),
            root_device_type=image.root_device_type, root_device_name=image.root_device_name,
            cpu=itype.cpu, memory_mb=itype.memory_mb, disk_gb=itype.disk_gb,
            creator_user_id=quotas.creator(principal),
            monitoring="enabled" if request.monitoring else "disabled")
        if request.metadata_options:
            instance.set_json("metadata_options", request.metadata_options)
        if request.attributes:
            instance.set_json("attributes", dict(request.attributes))
        if profile is not None:
            instance.iam_instance_profile_arn, instance.iam_instance_profile_id = profile
        db.session.add(instance)
        rows.append(instance)
    db.session.flush()
    if planned:
        for row in rows:
            record_volumes(row, planned)
    secgroups.add_members([row.id for row in rows], groups)
    assign_at_launch(public_pool, rows, request.public_ip)
    if tag is not None:
        tag([row.id for row in rows])
    db.session.commit()
    return rows
