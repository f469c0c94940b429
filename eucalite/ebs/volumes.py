"""EBS volume rows: who sees which, the checks CreateVolume and AttachVolume make, and
recording a new volume (a user's, or one an instance's launch makes).

The states and their one table of moves are in :mod:`eucalite.ebs.states`. The request
thread validates and records a change; the slow half (making the file, exporting it,
hot-plugging it into the guest) runs as a job (:mod:`eucalite.ebs.jobs`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .. import ids, quotas, tags
from ..accounts import Principal, utcnow
from ..db import db, write_lock
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import IncorrectState, InvalidVolumeNotFound, VolumeLimitExceeded
from .models import Snapshot, Volume
from .states import ATTACHING, CREATING, DELETING

MAX_SIZE_GB = 16384          # AWS' largest standard volume
#: Device names a user may give AttachVolume (as EC2 accepts for paravirtual guests).
DEVICE_RE = re.compile(r"^/dev/(sd[b-z]|xvd[b-z]|vd[b-z])[0-9]{0,2}\Z")
#: The disk target of an EBS-backed instance's root volume.
ROOT_TARGET = "vda"


def not_found(volume_id: str) -> InvalidVolumeNotFound:
    return InvalidVolumeNotFound(f"The volume '{volume_id}' does not exist.")


def incorrect_state(volume: Volume) -> IncorrectState:
    return IncorrectState(f"Volume '{volume.id}' is in the '{volume.state}' state.")


def visible(principal: Principal, ids: list[str] | None = None) -> list[Volume]:
    """The caller's volumes (all, or those named: any missing one is NotFound)."""
    query = db.select(Volume).filter_by(owner_id=principal.account_id)
    if ids:
        query = query.where(Volume.id.in_(ids))
    rows = list(db.session.execute(query.order_by(Volume.created, Volume.id)).scalars())
    if ids:
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            raise not_found(missing[0])
    return rows


def owned(principal: Principal, volume_id: str) -> Volume:
    return visible(principal, [volume_id])[0]


def on_instance(instance_id: str) -> list[Volume]:
    """The volumes attached (or attaching/detaching) to *instance_id*, by device."""
    return list(db.session.execute(db.select(Volume).filter_by(
        instance_id=instance_id).order_by(Volume.device)).scalars())


def on_instances(instance_ids: list[str]) -> dict[str, list[Volume]]:
    """:func:`on_instance` for many instances in one query: instance id -> its volumes, by
    device; instances without volumes are left out."""
    found: dict[str, list[Volume]] = {}
    if instance_ids:
        for volume in db.session.execute(db.select(Volume).where(
                Volume.instance_id.in_(instance_ids)).order_by(Volume.device)).scalars():
            found.setdefault(volume.instance_id, []).append(volume)
    return found


def root_of(instance_id: str, device: str | None) -> Volume | None:
    """The root volume of an EBS-backed instance (attached at its root *device*), if made."""
    return db.session.execute(db.select(Volume).filter_by(
        instance_id=instance_id, device=device)).scalar()


def check_size(config: Mapping[str, Any], size_gb: int) -> None:
    """Per-volume and per-cloud size limits: InvalidParameterValue for a volume too large
    (as AWS), VolumeLimitExceeded when the cloud's storage would exceed its total."""
    check_sizes(config, [size_gb])


def check_sizes(config: Mapping[str, Any], sizes: list[int]) -> None:
    """:func:`check_size` for several new volumes at once (a launch's): each within the
    per-volume limit, and all of them together within the cloud's total."""
    limit = min(int(config.get("max_volume_gb", 1024)), MAX_SIZE_GB)
    for size_gb in sizes:
        if size_gb < 1 or size_gb > limit:
            raise InvalidParameterValue(f"Volume of {size_gb}GiB is too large; the size must "
                                        f"be between 1 and {limit} GiB.")
    total = db.session.execute(db.select(db.func.coalesce(db.func.sum(Volume.size_gb), 0))
                               .where(Volume.state != DELETING)).scalar()
    allowed = int(config.get("max_total_volume_gb", 10240))
    if total + sum(sizes) > allowed:
        raise VolumeLimitExceeded(f"You have exceeded the cloud's volume storage limit of "
                                  f"{allowed} GiB ({total} GiB in use).")


def record(principal: Principal, *, size_gb: int, zone: str, snapshot: Snapshot | None,
           volume_type: str, backend: str = "file", tag=None) -> Volume:
    """Write a new volume as ``creating``, kept on *backend* (``file``, ``rbd``); *tag*
    (given its id) runs in the same transaction, so the volume and its tags appear
    together."""
    write_lock()
    quotas.check(principal, "ec2:CreateVolume",
                 {"ec2:quota-volumenumber": 1, "ec2:quota-volumetotalsize": size_gb})
    volume = Volume(id=ids.resource_id("vol"), owner_id=principal.account_id, size_gb=size_gb,
                    zone=zone, state=CREATING, snapshot_id=snapshot.id if snapshot else None,
                    volume_type=volume_type, created=utcnow(), backend=backend,
                    creator_user_id=quotas.creator(principal))
    db.session.add(volume)
    db.session.flush()
    if tag is not None:
        tag(volume.id)
    db.session.commit()
    return volume


@dataclass(frozen=True)
class LaunchVolume:
    """A volume an instance's launch makes: its EBS *root* or a data volume of its block
    device mapping, at *device*, from *snapshot_id* (or empty) of *size_gb*."""

    device: str
    root: bool
    snapshot_id: str | None
    size_gb: int
    volume_type: str
    delete_on_termination: bool


def record_attached(*, owner_id: str, instance_id: str, zone: str, device: str, target: str,
                    snapshot_id: str | None, size_gb: int, volume_type: str,
                    delete_on_termination: bool, creator_user_id: str | None = None,
                    backend: str = "file") -> Volume:
    """A volume an instance's launch makes (its EBS root at ROOT_TARGET, or a data volume
    of its block device mapping), recorded ``creating`` and attaching at *device* (disk
    *target*), created by *creator_user_id* (the launching user, as CreateVolume's are),
    kept on *backend*;
    its data comes from the snapshot *snapshot_id*, or it starts empty (the instance's
    first boot writes it). Added in the caller's write transaction (RunInstances': the
    launch's volumes are recorded, and counted against the volume quotas, with its
    instances), which commits it."""
    volume = Volume(id=ids.resource_id("vol"), owner_id=owner_id, size_gb=size_gb, zone=zone,
                    state=CREATING, snapshot_id=snapshot_id, volume_type=volume_type,
                    created=utcnow(), instance_id=instance_id, device=device,
                    target=target, attach_state=ATTACHING, attach_time=utcnow(),
                    delete_on_termination=delete_on_termination,
                    creator_user_id=creator_user_id, backend=backend)
    db.session.add(volume)
    return volume


def check_device(device: str | None) -> str:
    if not device:
        raise MissingParameter("The request must contain the parameter device")
    if not DEVICE_RE.match(device):
        raise InvalidParameterValue(f"Value ({device}) for parameter device is invalid. "
                                    f"{device} is not a valid EBS device name.")
    return device


def device_in_use(instance_id: str, device: str) -> bool:
    return any(v.device == device for v in on_instance(instance_id))


# vol- and snap- ids may be tagged by their owners.
tags.register_resource("vol-", "volume", tags.row_owned(Volume))
tags.register_resource("snap-", "snapshot", tags.row_owned(Snapshot))
