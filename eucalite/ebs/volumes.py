"""EBS volume rows: who sees which, the checks CreateVolume, AttachVolume and ModifyVolume
make, recording a new volume (a user's, or one an instance's launch makes) and recording a
volume's modification.

The states and their one table of moves are in :mod:`eucalite.ebs.states`. The request
thread validates and records a change; the slow half (making the file, exporting it,
hot-plugging it into the guest) runs as a job (:mod:`eucalite.ebs.jobs`).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .. import ids, quotas, tags
from ..accounts import Principal, utcnow
from ..db import db, write_lock
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import (IncorrectModificationState, IncorrectState, InvalidVolumeNotFound,
                          VolumeLimitExceeded, VolumeModificationRateExceeded)
from .models import Snapshot, Volume, VolumeModification
from .states import (ATTACHING, AVAILABLE, CREATING, DELETING, FAILED, IN_USE, MODIFYING,
                     OPTIMIZING)

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
    check_growth(config, sizes, sum(sizes))


def check_growth(config: Mapping[str, Any], sizes: list[int], added_gb: int) -> None:
    """The one place the size limits live: each of *sizes* (volumes as they will be) within
    the per-volume limit, and the cloud's storage grown by *added_gb* within its total.
    ModifyVolume checks a grown volume's new size and its growth with it."""
    limit = min(int(config.get("max_volume_gb", 1024)), MAX_SIZE_GB)
    for size_gb in sizes:
        if size_gb < 1 or size_gb > limit:
            raise InvalidParameterValue(f"Volume of {size_gb}GiB is too large; the size must "
                                        f"be between 1 and {limit} GiB.")
    total = db.session.execute(db.select(db.func.coalesce(db.func.sum(Volume.size_gb), 0))
                               .where(Volume.state != DELETING)).scalar()
    allowed = int(config.get("max_total_volume_gb", 10240))
    if total + added_gb > allowed:
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


def performance(volume_type: str, size_gb: int) -> tuple[int | None, int | None]:
    """(IOPS, throughput MiB/s) AWS reports for a volume of *volume_type* and *size_gb*
    when none were asked for: gp2's 3 IOPS per GiB (100 to 16000), gp3's baseline 3000 and
    125, io1/io2's minimum 100; None where the type has no such figure."""
    if volume_type == "gp2":
        return max(100, min(16000, 3 * size_gb)), None
    if volume_type == "gp3":
        return 3000, 125
    if volume_type in ("io1", "io2"):
        return 100, None
    return None, None


def record_modification(principal: Principal, volume_id: str, *, config: Mapping[str, Any],
                        size_gb: int, volume_type: str, iops: int | None,
                        throughput: int | None) -> VolumeModification:
    """Write the volume's new modification as ``modifying`` (replacing its last one), in
    one write transaction with the checks that need it: the volume is available or in-use,
    no modification of it is under way (IncorrectModificationState), it had fewer than
    ``volume_modifications_per_day`` in the last 24 hours (VolumeModificationRateExceeded),
    and the growth fits the cloud's limits and the caller's volume-size quota."""
    write_lock()
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.state not in (AVAILABLE, IN_USE):
        db.session.rollback()
        raise incorrect_state(volume) if volume else not_found(volume_id)
    last = db.session.get(VolumeModification, volume_id)
    if last is not None and last.state in (MODIFYING, OPTIMIZING):
        db.session.rollback()
        raise IncorrectModificationState(
            f"Volume {volume_id} is already being modified.")
    now = utcnow()
    earlier = json.loads(last.recent_starts_json or "[]") if last is not None else []
    recent = [start for start in earlier
              if dt.datetime.fromisoformat(start) > now - dt.timedelta(days=1)]
    per_day = int(config.get("volume_modifications_per_day", 4))
    if per_day and len(recent) >= per_day:
        db.session.rollback()
        retry = dt.datetime.fromisoformat(recent[-per_day]) + dt.timedelta(days=1)
        raise VolumeModificationRateExceeded(
            f"You've reached the maximum modification rate per volume limit: {per_day} "
            f"modifications in 24 hours. Retry after {retry:%Y-%m-%dT%H:%M:%SZ}.")
    growth = size_gb - volume.size_gb
    try:
        check_growth(config, [size_gb], growth)
    except Exception:
        db.session.rollback()
        raise
    quotas.check(principal, "ec2:CreateVolume", {"ec2:quota-volumetotalsize": growth})
    # the figures the last modification set still hold while the type is the one it set
    kept = last is not None and last.state != FAILED and last.target_type == volume.volume_type
    original_iops, original_throughput = (last.target_iops, last.target_throughput) if kept \
        else performance(volume.volume_type, volume.size_gb)
    # figures not asked for: the type's baseline, or what the volume had if its type stays
    # (gp2's IOPS follow the size)
    default_iops, default_throughput = (original_iops, original_throughput) \
        if volume_type == volume.volume_type != "gp2" else performance(volume_type, size_gb)
    if last is not None:
        db.session.delete(last)
        db.session.flush()
    modification = VolumeModification(
        volume_id=volume_id, owner_id=volume.owner_id, state=MODIFYING,
        original_size=volume.size_gb, target_size=size_gb,
        original_type=volume.volume_type, target_type=volume_type,
        original_iops=original_iops, target_iops=iops or default_iops,
        original_throughput=original_throughput,
        target_throughput=throughput or default_throughput, progress=0, start_time=now,
        recent_starts_json=json.dumps(recent + [now.isoformat()]))
    db.session.add(modification)
    db.session.commit()
    return modification


def modifications(principal: Principal, ids: list[str] | None) -> list[VolumeModification]:
    """DescribeVolumesModifications' set: the last modification of each of the caller's
    volumes (of those named by *ids*, any of which not the caller's is NotFound), by volume
    id; volumes never modified have none."""
    if ids:
        visible(principal, ids)
    query = db.select(VolumeModification).join(
        Volume, Volume.id == VolumeModification.volume_id).where(
        Volume.owner_id == principal.account_id)
    if ids:
        query = query.where(VolumeModification.volume_id.in_(ids))
    return list(db.session.execute(query.order_by(VolumeModification.volume_id)).scalars())


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
