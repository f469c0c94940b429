"""The slow half of volume changes, run as jobs on the worker the storage controller was
given, in an app context.

Each job takes the service object (:class:`eucalite.ebs.service.EbsService`) first,
re-reads the volume, does its work, and records the outcome with a transition on the
volume's or the attachment's state machine (:mod:`eucalite.ebs.states`), so a job that lost
a race (the volume was deleted or force-detached meanwhile) leaves newer state alone. A
failed job logs why and leaves the volume in a state the user can act on (``error``, or
detached again).
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import func

from .. import tags
from ..accounts import utcnow
from ..cluster.models import NodeCredential
from ..cluster.virt.driver import DiskSpec, DriverError
from ..db import db
from ..errors import AwsError
from . import snapshots
from .export import ExportDriver, ExportError
from .models import Volume, VolumeModification
from .states import (ATTACHED, ATTACHING, ATTACHMENT, AVAILABLE, COMPLETED, CREATING,
                     DELETING, DETACHING, ERROR, FAILED, IN_USE, MODIFICATION, MODIFYING,
                     NO_ATTACHMENT, OPTIMIZING, VOLUME)

log = logging.getLogger(__name__)


def make_volume(ebs, volume_id: str) -> None:
    """creating -> available: an empty volume of its size on its backend, or the
    snapshot's data."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.state != CREATING:
        return
    try:
        _make_data(ebs, volume)
    except Exception as error:  # noqa: BLE001 - whatever failed, it must not stay creating
        log_failure("creating", volume_id, error)
        db.session.rollback()
        VOLUME.transition(volume_id, ERROR, expected={CREATING},
                          state_reason=str(error)[:255])
        return
    VOLUME.transition(volume_id, AVAILABLE, expected={CREATING})


def make_launch_volume(ebs, volume_id: str, instance_id: str) -> None:
    """creating -> in-use: the data of a volume *instance_id*'s launch recorded, written on
    its first boot (run in the spawn, not as a job of its own). A volume whose data cannot
    be written is of no use to anyone: it goes, and the error is raised (the launch
    fails)."""
    volume = db.session.get(Volume, volume_id)
    try:
        _make_data(ebs, volume)
    except BaseException:
        db.session.rollback()
        discard_unmade(ebs, volume_id)
        raise
    if not VOLUME.transition(volume_id, IN_USE, expected={CREATING}):
        raise AwsError(f"The volume {volume_id} of {instance_id} changed state while it "
                       "was made.")


def _make_data(ebs, volume: Volume) -> None:
    """The volume's data on its backend: the snapshot's, or empty (sparse)."""
    if volume.snapshot_id:
        snapshots.restore_into(ebs, volume.snapshot_id, volume)
    else:
        ebs.backing_of(volume).create(volume.id, volume.size_gb * 2**30)


def destroy_volume(ebs, volume_id: str) -> None:
    """deleting -> gone: the data, the tags, its last modification and the row. Data that
    cannot be removed now (Ceph unreachable) leaves the volume ``deleting``; the next
    start tries again."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.state != DELETING:
        return
    try:
        ebs.backing_of(volume).delete(volume_id)
    except Exception as error:  # noqa: BLE001 - recover() at the next start retries
        log_failure("deleting", volume_id, error)
        db.session.rollback()
        return
    tags.delete_all(volume_id)
    db.session.execute(db.delete(VolumeModification).where(
        VolumeModification.volume_id == volume_id))
    db.session.delete(volume)
    db.session.commit()


def modify_volume(ebs, volume_id: str) -> None:
    """modifying -> optimizing -> completed: grow the volume's data to the target size,
    tell its guest if it is attached, then record the new size and type on the volume with
    the move to optimizing (AWS's Size changes there), and complete. The data grows before
    the size is recorded, so a crash between leaves a volume holding at least what it
    says; the restart runs this again (growing is idempotent) and finishes. A failure to
    grow the data ends the modification ``failed`` with the reason, the volume unchanged."""
    modification = db.session.get(VolumeModification, volume_id)
    if modification is None or modification.state not in (MODIFYING, OPTIMIZING):
        return
    volume = db.session.get(Volume, volume_id)
    if modification.state == MODIFYING:
        try:
            if volume is None or volume.state in (DELETING, ERROR):
                raise AwsError(f"The volume {volume_id} was deleted.")
            ebs.backing_of(volume).resize(volume_id, modification.target_size * 2**30)
        except Exception as error:  # noqa: BLE001 - whatever failed, it must not stay modifying
            log_failure("modifying", volume_id, error)
            db.session.rollback()
            MODIFICATION.transition(volume_id, FAILED, expected={MODIFYING},
                                    status_message=str(error)[:255], end_time=utcnow())
            return
        _tell_guest(ebs, volume, modification.target_size * 2**30)
        target_size, target_type = modification.target_size, modification.target_type

        def record_volume() -> None:
            db.session.execute(db.update(Volume).where(Volume.id == volume_id).values(
                size_gb=target_size, volume_type=target_type))
        if not MODIFICATION.transition(volume_id, OPTIMIZING, expected={MODIFYING},
                                       progress=50, on_win=record_volume):
            return
    MODIFICATION.transition(volume_id, COMPLETED, expected={OPTIMIZING}, progress=100,
                            end_time=utcnow())


def _tell_guest(ebs, volume: Volume, size_bytes: int) -> None:
    """An attached volume's guest sees its new size at once where QEMU opens the data
    itself (a local file, an RBD image): the node resizes the disk (libvirt's
    blockResize). An iSCSI export (tgt, LIO) keeps the LUN size it was made with, so the
    guest sees the new size at the volume's next attach (the new export reads the grown
    file). Failing to tell the guest does not fail the modification: the data has grown."""
    export = json.loads(volume.export_json) if volume.export_json else {}
    if volume.attach_state != ATTACHED or volume.target is None \
            or export.get("driver") not in ("local", "rbd"):
        return
    try:
        instance = ebs.cloud.instance(volume.instance_id)
        if instance is None:
            return
        ebs.cluster.node_for(instance.node_id).resize_volume(
            volume.instance_id, volume.target, size_bytes)
    except Exception as error:  # noqa: BLE001 - the guest sees the size at its next attach
        log_failure(f"telling {volume.instance_id} of the new size of", volume.id, error)
        db.session.rollback()


def free_target(used: list[str]) -> str:
    """The first virtio target after the root (vda) and ephemeral (vdb) disks."""
    for letter in "cdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise DriverError("no free disk target left on the instance")


def plug(ebs, volume_id: str) -> None:
    """attaching -> attached: export the volume and hot-plug it into the running guest
    (its serial is the volume id). On failure the volume is detached again."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.attach_state != ATTACHING:
        return
    instance_id = volume.instance_id
    export = None
    try:
        instance = ebs.cloud.instance(instance_id)
        if instance is None:
            raise AwsError(f"The instance {instance_id} is gone.")
        node = ebs.cluster.node_for(instance.node_id)
        exporter, export = _export(ebs, volume, instance.node_id)
        target = free_target(node.disks(instance_id))
        node.attach_volume(instance_id, exporter.disk_spec(volume.id, export,
                                                           str(ebs.path(volume.id)), target))
    except Exception as error:  # noqa: BLE001 - whatever failed, the volume must not stay attaching
        log_failure("attaching", volume_id, error)
        db.session.rollback()
        if export is not None:
            remove_export(ebs, volume.id, export)
        if not VOLUME.transition(volume_id, AVAILABLE, expected={IN_USE},
                                 state_reason=f"attach failed: {error}"[:255], **NO_ATTACHMENT):
            _refused(volume_id, "available (attach failed)")
        return
    if not ATTACHMENT.transition(volume_id, ATTACHED, expected={ATTACHING}, target=target,
                                 export_json=export_json(export)):
        # detached (forced) while we plugged: undo
        _unplug_quietly(node, instance_id, target)
        remove_export(ebs, volume.id, export)


def unplug(ebs, volume_id: str, force: bool = False) -> None:
    """detaching -> available: unplug from the guest, then drop the export. *force* clears
    the attachment even when the hypervisor cannot unplug (the guest may lose data)."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.attach_state != DETACHING:
        return
    try:
        instance = ebs.cloud.instance(volume.instance_id)
        if instance is not None and volume.target:
            node = ebs.cluster.node_for(instance.node_id)
            if volume.instance_id in node.domains():
                node.detach_volume(volume.instance_id, volume.target)
    except Exception as error:  # noqa: BLE001 - whatever failed, it must not stay detaching
        log_failure("detaching (forced)" if force else "detaching", volume_id, error)
        db.session.rollback()
        if not force:
            if not ATTACHMENT.transition(volume_id, ATTACHED, expected={DETACHING}):
                _refused(volume_id, "attached (detach failed)")
            return
    finish_detach(ebs, volume)


def finish_detach(ebs, volume: Volume) -> None:
    """The guest no longer has the volume: drop its export and mark it available."""
    export = volume.get_json("export")
    if export:
        remove_export(ebs, volume.id, export)
    VOLUME.transition(volume.id, AVAILABLE, expected={IN_USE}, export_json=None,
                      **NO_ATTACHMENT)


def discard_unmade(ebs, volume_id: str) -> None:
    """A volume a launch was making (its root or a data volume) whose making failed or
    died with the launch: nobody will ever finish it, so it goes (creating -> deleting ->
    gone)."""
    if VOLUME.transition(volume_id, DELETING, expected={CREATING}, **NO_ATTACHMENT):
        destroy_volume(ebs, volume_id)


def replug(ebs, node, volume: Volume) -> None:
    """Export *volume* again and plug it back into its instance's domain on *node* at its
    target."""
    exporter, export = _export(ebs, volume, node.node_id)
    node.attach_volume(volume.instance_id, exporter.disk_spec(
        volume.id, export, str(ebs.path(volume.id)), volume.target))
    VOLUME.note(volume.id, {IN_USE}, export_json=export_json(export))


def _export(ebs, volume: Volume, node_id: str | None) -> tuple[ExportDriver, dict]:
    """Export *volume* to the node *node_id* its instance runs on, the way
    :meth:`~eucalite.ebs.service.EbsService.exporter_for` says: (driver, export record)."""
    exporter, remote = ebs.exporter_for(node_id, volume.backend)
    if remote is not None:
        _renew_if_rejoined(exporter, remote)
    return exporter, exporter.create_export(volume.id, str(ebs.path(volume.id)),
                                            node_id=remote)


def _renew_if_rejoined(exporter: ExportDriver, node_id: str) -> None:
    """A node that joined (again) after its CHAP secret was made gets a new one: the host
    that left under that name keeps no way into the new one's volumes."""
    joined = db.session.execute(db.select(func.max(NodeCredential.created)).where(
        NodeCredential.node_id == node_id, NodeCredential.revoked_at.is_(None))).scalar()
    accounts = exporter.node_accounts
    if joined is not None and accounts is not None and accounts.renew_if_older(
            node_id, joined.replace(tzinfo=dt.timezone.utc).timestamp()):
        log.info("node %s joined again: it gets a new CHAP secret", node_id)


def export_attached(ebs, volume: Volume) -> DiskSpec:
    """Export an in-use volume its instance boots with (the root, or a data volume) to the
    instance's node; its attachment is then attached (a first boot's was attaching). The
    disk for the domain, at the volume's target."""
    instance = ebs.cloud.instance(volume.instance_id)
    exporter, export = _export(ebs, volume, instance.node_id if instance else None)
    VOLUME.note(volume.id, {IN_USE}, export_json=export_json(export))
    ATTACHMENT.transition(volume.id, ATTACHED, expected={ATTACHING})
    return exporter.disk_spec(volume.id, export, str(ebs.path(volume.id)), volume.target)


def log_failure(doing: str, volume_id: str, error: Exception) -> None:
    """Log a failed volume job: a warning for the failures expected of hypervisors, exports
    and files, the traceback for anything else (a bug)."""
    expected = isinstance(error, (DriverError, AwsError, ExportError, OSError))
    (log.warning if expected else log.exception)("%s %s failed: %s", doing, volume_id, error)


def _refused(volume_id: str, target: str) -> None:
    """A failure path's compare-and-swap changed nothing: say so loudly, with the state
    that won."""
    db.session.expire_all()
    fresh = db.session.get(Volume, volume_id)
    log.error("volume %s: could not record %s: it is %s now", volume_id, target,
              f"{fresh.state}/{fresh.attach_state}" if fresh is not None else "gone")


def remove_export(ebs, volume_id: str, export: dict) -> None:
    try:
        ebs.driver_of(export).remove_export(volume_id, export)
    except Exception as error:  # noqa: BLE001 - the reconciler retries; never block a detach
        log.warning("removing the export of %s failed: %s", volume_id, error)


def _unplug_quietly(node, instance_id: str, target: str) -> None:
    try:
        node.detach_volume(instance_id, target)
    except DriverError as error:
        log.warning("unplugging %s from %s failed: %s", target, instance_id, error)


def export_json(value) -> str:
    return json.dumps(value, sort_keys=True)
