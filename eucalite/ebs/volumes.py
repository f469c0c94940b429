"""EBS volumes: create, delete, describe, attach and detach, with Eucalyptus' states.

Volume states: creating -> available -> in-use -> available ... -> deleting -> (gone);
``error`` when creation fails. Attachment states: attaching -> attached -> detaching ->
(detached: the attachment is cleared). The request thread validates and records the
change; the slow half (making the file, exporting it, hot-plugging it into the guest) runs
on the compute worker (:mod:`eucalite.ebs.jobs`), and every state change is a
compare-and-swap on the row, so a job that lost a race does not overwrite newer state.
"""
from __future__ import annotations

import re
import secrets
from typing import Any, Mapping

from ..accounts import Principal, utcnow
from ..db import db, write_lock
from ..errors import AwsError, ClientError, InvalidParameterValue
from .models import Snapshot, Volume

CREATING, AVAILABLE, IN_USE, DELETING, ERROR = "creating", "available", "in-use", "deleting", "error"
ATTACHING, ATTACHED, DETACHING = "attaching", "attached", "detaching"
MAX_SIZE_GB = 16384          # AWS' largest standard volume
#: Device names a user may give AttachVolume (as EC2 accepts for paravirtual guests).
DEVICE_RE = re.compile(r"^/dev/(sd[b-z]|xvd[b-z]|vd[b-z])[0-9]{0,2}\Z")


class VolumeNotFound(ClientError):
    code = "InvalidVolume.NotFound"

    def __init__(self, volume_id: str):
        super().__init__(f"The volume '{volume_id}' does not exist.")


def incorrect_state(volume: Volume) -> ClientError:
    return ClientError(f"Volume '{volume.id}' is in the '{volume.state}' state.",
                       code="IncorrectState")


def new_volume_id() -> str:
    return "vol-" + secrets.token_hex(9)[:17]


def visible(principal: Principal, ids: list[str] | None = None) -> list[Volume]:
    """The caller's volumes (all, or those named: any missing one is NotFound)."""
    query = db.select(Volume).filter_by(owner_id=principal.account_id)
    if ids:
        query = query.where(Volume.id.in_(ids))
    rows = list(db.session.execute(query.order_by(Volume.created, Volume.id)).scalars())
    if ids:
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            raise VolumeNotFound(missing[0])
    return rows


def owned(principal: Principal, volume_id: str) -> Volume:
    return visible(principal, [volume_id])[0]


def on_instance(instance_id: str) -> list[Volume]:
    """The volumes attached (or attaching/detaching) to *instance_id*, by device."""
    return list(db.session.execute(db.select(Volume).filter_by(
        instance_id=instance_id).order_by(Volume.device)).scalars())


def check_size(config: Mapping[str, Any], owner_id: str, size_gb: int) -> None:
    """Per-volume and per-cloud size limits: InvalidParameterValue for a volume too large
    (as AWS), VolumeLimitExceeded when the cloud's storage would exceed its total."""
    limit = min(int(config.get("max_volume_gb", 1024)), MAX_SIZE_GB)
    if size_gb < 1 or size_gb > limit:
        raise InvalidParameterValue(f"Volume of {size_gb}GiB is too large; the size must be "
                                    f"between 1 and {limit} GiB.")
    total = db.session.execute(db.select(db.func.coalesce(db.func.sum(Volume.size_gb), 0))
                               .where(Volume.state != DELETING)).scalar()
    allowed = int(config.get("max_total_volume_gb", 10240))
    if total + size_gb > allowed:
        raise AwsError(f"You have exceeded the cloud's volume storage limit of {allowed} GiB "
                       f"({total} GiB in use).", code="VolumeLimitExceeded", status=400)


def record(principal: Principal, *, size_gb: int, zone: str, snapshot: Snapshot | None,
           volume_type: str, tag=None) -> Volume:
    """Write a new volume as ``creating``; *tag* (given its id) runs in the same
    transaction, so the volume and its tags appear together."""
    write_lock()
    volume = Volume(id=new_volume_id(), owner_id=principal.account_id, size_gb=size_gb,
                    zone=zone, state=CREATING, snapshot_id=snapshot.id if snapshot else None,
                    volume_type=volume_type, created=utcnow())
    db.session.add(volume)
    db.session.flush()
    if tag is not None:
        tag(volume.id)
    db.session.commit()
    return volume


def record_root(instance, snapshot: Snapshot, mapping: dict) -> Volume:
    """The root volume of an EBS-backed instance, recorded ``creating`` and attached at its
    root device; its data comes from *snapshot*."""
    write_lock()
    volume = Volume(id=new_volume_id(), owner_id=instance.owner_id,
                    size_gb=mapping["volume_size"] or snapshot.volume_size_gb,
                    zone=instance.zone, state=CREATING, snapshot_id=snapshot.id,
                    volume_type=mapping.get("volume_type") or "standard", created=utcnow(),
                    instance_id=instance.id, device=instance.root_device_name, target="vda",
                    attach_state=ATTACHING, attach_time=utcnow(),
                    delete_on_termination=mapping.get("delete_on_termination", True))
    db.session.add(volume)
    db.session.commit()
    return volume


def transition(volume_id: str, expected: set[str], **changes) -> bool:
    """Update the volume if its state is one of *expected*; True if this call did it.
    Commits either way."""
    write_lock()
    done = db.session.execute(db.update(Volume).where(
        Volume.id == volume_id, Volume.state.in_(expected)).values(**changes)).rowcount == 1
    db.session.commit()
    return done


def attach_transition(volume_id: str, expected: set[str | None], **changes) -> bool:
    """Update the volume if its attachment state is one of *expected* (None: detached)."""
    write_lock()
    condition = Volume.attach_state.in_([s for s in expected if s is not None])
    if None in expected:
        condition = condition | Volume.attach_state.is_(None)
    done = db.session.execute(db.update(Volume).where(
        Volume.id == volume_id, condition).values(**changes)).rowcount == 1
    db.session.commit()
    return done


DETACHED = dict(instance_id=None, device=None, target=None, attach_state=None,
                attach_time=None, delete_on_termination=False)


def check_device(device: str | None) -> str:
    if not device:
        raise ClientError("The request must contain the parameter device",
                          code="MissingParameter")
    if not DEVICE_RE.match(device):
        raise InvalidParameterValue(f"Value ({device}) for parameter device is invalid. "
                                    f"{device} is not a valid EBS device name.")
    return device


def device_in_use(instance_id: str, device: str) -> bool:
    return any(v.device == device for v in on_instance(instance_id))


def _register_tag_resources() -> None:
    """Let vol- and snap- ids be tagged by their owners."""
    from .. import tags
    from .models import Snapshot

    def owner_of(model):
        def owned_by(owner_id: str, resource_id: str) -> bool:
            row = db.session.get(model, resource_id)
            return row is not None and row.owner_id == owner_id
        return owned_by

    tags.register_resource("vol-", "volume", owner_of(Volume))
    tags.register_resource("snap-", "snapshot", owner_of(Snapshot))


_register_tag_resources()
