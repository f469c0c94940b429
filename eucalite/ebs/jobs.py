"""The slow half of volume changes, run on the compute worker in an app context.

Each job re-reads the volume, does its work, and records the outcome with a
compare-and-swap (:func:`eucalite.ebs.volumes.transition`), so a job that lost a race (the
volume was deleted meanwhile) leaves newer state alone. A failed job logs why and leaves the
volume in a state the user can act on (``error``, or detached again).
"""
from __future__ import annotations

import logging
import os

from ..cluster.virt.driver import DriverError
from ..db import db
from ..errors import AwsError
from . import volumes
from .models import Volume

log = logging.getLogger(__name__)


def _services():
    from flask import current_app

    return current_app.extensions["eucalite"]


def make_volume(volume_id: str) -> None:
    """creating -> available: a sparse file of the volume's size, or the snapshot's data."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.state != volumes.CREATING:
        return
    ebs = _services().ebs
    path = ebs.path(volume.id)
    try:
        ebs.volumes_dir.mkdir(parents=True, exist_ok=True)
        if volume.snapshot_id:
            from . import snapshots

            snapshots.restore_into(volume.snapshot_id, path, volume.size_gb)
        else:
            partial = path.with_suffix(".partial")
            with open(partial, "wb") as f:
                f.truncate(volume.size_gb * 2**30)      # sparse: a 100 GiB volume is instant
                os.fsync(f.fileno())
            partial.replace(path)
    except Exception as error:  # noqa: BLE001 - whatever failed, it must not stay creating
        _log_failure("creating", volume_id, error)
        db.session.rollback()
        volumes.transition(volume_id, {volumes.CREATING}, state=volumes.ERROR,
                           state_reason=str(error)[:255])
        return
    volumes.transition(volume_id, {volumes.CREATING}, state=volumes.AVAILABLE)


def destroy_volume(volume_id: str) -> None:
    """deleting -> gone: the file, the tags and the row."""
    from .. import tags

    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.state != volumes.DELETING:
        return
    ebs = _services().ebs
    ebs.path(volume_id).unlink(missing_ok=True)
    ebs.path(volume_id).with_suffix(".partial").unlink(missing_ok=True)
    tags.delete_all(volume_id)
    db.session.delete(volume)
    db.session.commit()


def _free_target(used: list[str]) -> str:
    """The first virtio target after the root (vda) and ephemeral (vdb) disks."""
    for letter in "cdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in used:
            return f"vd{letter}"
    raise DriverError("no free disk target left on the instance")


def plug(volume_id: str) -> None:
    """attaching -> attached: export the volume and hot-plug it into the running guest
    (its serial is the volume id). On failure the volume is detached again."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.attach_state != volumes.ATTACHING:
        return
    services = _services()
    ebs = services.ebs
    export = None
    try:
        from ..compute.models import Instance

        instance = db.session.get(Instance, volume.instance_id)
        node = services.cluster.node_for(instance.node_id)
        exporter = ebs.export_driver()
        export = exporter.create_export(volume.id, str(ebs.path(volume.id)))
        target = _free_target(node.disks(instance.id))
        node.attach_volume(instance.id, exporter.disk_spec(volume.id, export,
                                                           str(ebs.path(volume.id)), target))
    except Exception as error:  # noqa: BLE001 - whatever failed, the volume must not stay attaching
        _log_failure("attaching", volume_id, error)
        db.session.rollback()
        if export is not None:
            _remove_export(ebs, volume.id, export)
        if not volumes.transition(volume_id, {volumes.IN_USE}, state=volumes.AVAILABLE,
                                  state_reason=f"attach failed: {error}"[:255],
                                  **volumes.DETACHED):
            _refused(volume_id, "available (attach failed)")
        return
    if not volumes.attach_transition(volume_id, {volumes.ATTACHING}, attach_state=volumes.ATTACHED,
                                     target=target, export_json=_json(export)):
        # detached (forced) while we plugged: undo
        _unplug_quietly(node, instance.id, target)
        _remove_export(ebs, volume.id, export)


def unplug(volume_id: str, force: bool = False) -> None:
    """detaching -> available: unplug from the guest, then drop the export. *force* clears
    the attachment even when the hypervisor cannot unplug (the guest may lose data)."""
    volume = db.session.get(Volume, volume_id)
    if volume is None or volume.attach_state != volumes.DETACHING:
        return
    services = _services()
    try:
        from ..compute.models import Instance

        instance = db.session.get(Instance, volume.instance_id)
        if instance is not None and volume.target:
            node = services.cluster.node_for(instance.node_id)
            if instance.id in node.domains():
                node.detach_volume(instance.id, volume.target)
    except Exception as error:  # noqa: BLE001 - whatever failed, it must not stay detaching
        _log_failure("detaching (forced)" if force else "detaching", volume_id, error)
        db.session.rollback()
        if not force:
            if not volumes.attach_transition(volume_id, {volumes.DETACHING},
                                             attach_state=volumes.ATTACHED):
                _refused(volume_id, "attached (detach failed)")
            return
    finish_detach(volume)


def finish_detach(volume: Volume) -> None:
    """The guest no longer has the volume: drop its export and mark it available."""
    export = volume.get_json("export")
    if export:
        _remove_export(_services().ebs, volume.id, export)
    volumes.transition(volume.id, {volumes.IN_USE}, state=volumes.AVAILABLE, export_json=None,
                       **volumes.DETACHED)


def instance_ended(instance_id: str) -> None:
    """The instance's domain is gone: its volumes are detached (and deleted when marked
    delete-on-termination; a root still being made is deleted)."""
    for volume in volumes.on_instance(instance_id):
        if volume.state == volumes.CREATING:
            # a root whose making died with its launch: nobody will ever finish it
            if volumes.transition(volume.id, {volumes.CREATING}, state=volumes.DELETING,
                                  **volumes.DETACHED):
                destroy_volume(volume.id)
            continue
        delete = volume.delete_on_termination
        finish_detach(volume)
        if delete and volumes.transition(volume.id, {volumes.AVAILABLE},
                                         state=volumes.DELETING):
            destroy_volume(volume.id)


def _log_failure(doing: str, volume_id: str, error: Exception) -> None:
    """Log a failed volume job: a warning for the failures expected of hypervisors, exports
    and files, the traceback for anything else (a bug)."""
    from .export import ExportError

    expected = isinstance(error, (DriverError, AwsError, ExportError, OSError))
    (log.warning if expected else log.exception)("%s %s failed: %s", doing, volume_id, error)


def _refused(volume_id: str, target: str) -> None:
    """A failure path's compare-and-swap changed nothing: say so loudly, with the state
    that won."""
    db.session.expire_all()
    fresh = db.session.get(Volume, volume_id)
    log.error("volume %s: could not record %s: it is %s now", volume_id, target,
              f"{fresh.state}/{fresh.attach_state}" if fresh is not None else "gone")


def _remove_export(ebs, volume_id: str, export: dict) -> None:
    try:
        ebs.export_driver().remove_export(volume_id, export)
    except Exception as error:  # noqa: BLE001 - the reconciler retries; never block a detach
        log.warning("removing the export of %s failed: %s", volume_id, error)


def _unplug_quietly(node, instance_id: str, target: str) -> None:
    try:
        node.detach_volume(instance_id, target)
    except DriverError as error:
        log.warning("unplugging %s from %s failed: %s", target, instance_id, error)


def _json(value) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def recover(worker) -> list[str]:
    """At start: resume what a restart interrupted, so no volume stays stuck in a passing
    state. Creating/deleting volumes and attaching/detaching ones get their job again;
    a snapshot the restart cut short ends in ``error`` (its copy is gone). Returns the ids
    acted on (needs an app context)."""
    from . import snapshots
    from .models import Snapshot

    acted = []
    for volume in db.session.execute(db.select(Volume)).scalars().all():
        job = {volumes.CREATING: make_volume, volumes.DELETING: destroy_volume}.get(volume.state)
        if volume.attach_state == volumes.ATTACHING:
            # a root volume is made and plugged by its instance's spawn; one the restart
            # interrupted goes with that launch (the reconciler ends it)
            job = plug if volume.target != "vda" else None
        elif volume.attach_state == volumes.DETACHING:
            job = unplug
        if job is not None:
            worker.submit(job, volume.id)
            acted.append(volume.id)
    for snapshot in db.session.execute(db.select(Snapshot).filter_by(
            state=snapshots.PENDING)).scalars().all():
        snapshot.state = snapshots.ERROR
        snapshot.state_message = "interrupted by a restart of the storage controller"
        acted.append(snapshot.id)
    db.session.commit()
    return acted


def root_disk(instance):
    """The DiskSpec of an EBS-backed instance's root volume (vda), creating the volume from
    the image's snapshot on the first boot (later boots reuse it: its data persists across
    stop and start), and exporting it to the node."""
    from ..compute import images
    from ..compute.models import Image
    from . import snapshots

    ebs = _services().ebs
    volume = db.session.execute(db.select(Volume).filter_by(
        instance_id=instance.id, device=instance.root_device_name)).scalar()
    if volume is None:
        image = db.session.get(Image, instance.image_id)
        mapping = images.ebs_root(image) if image is not None else None
        snapshot = db.session.get(snapshots.Snapshot, mapping["snapshot_id"]) \
            if mapping is not None else None
        if snapshot is None:
            raise AwsError(f"The image {instance.image_id} has no EBS root snapshot.",
                           code="InvalidAMIID.Unavailable", status=400)
        # the cloud's storage limit holds for root volumes too (Client.VolumeLimitExceeded)
        volumes.check_size(_services().config, instance.owner_id,
                           mapping["volume_size"] or snapshot.volume_size_gb)
        volume = volumes.record_root(instance, snapshot, mapping)
        try:
            ebs.volumes_dir.mkdir(parents=True, exist_ok=True)
            snapshots.restore_into(snapshot.id, ebs.path(volume.id), volume.size_gb)
        except BaseException:
            # a root with no data is of no use to anyone: it goes, with the failed launch
            db.session.rollback()
            if volumes.transition(volume.id, {volumes.CREATING}, state=volumes.DELETING,
                                  **volumes.DETACHED):
                destroy_volume(volume.id)
            raise
        if not volumes.transition(volume.id, {volumes.CREATING}, state=volumes.IN_USE):
            raise AwsError(f"The root volume {volume.id} of {instance.id} changed state "
                           "while it was made.")
    exporter = ebs.export_driver()
    export = exporter.create_export(volume.id, str(ebs.path(volume.id)))
    volumes.transition(volume.id, {volumes.IN_USE}, export_json=_json(export),
                       attach_state=volumes.ATTACHED)
    return exporter.disk_spec(volume.id, export, str(ebs.path(volume.id)), "vda")


def instance_stopped(instance_id: str) -> None:
    """The instance's domain is gone but it will start again: its volumes stay attached,
    their exports are dropped (made again at start)."""
    for volume in volumes.on_instance(instance_id):
        export = volume.get_json("export")
        if export:
            _remove_export(_services().ebs, volume.id, export)
            volumes.transition(volume.id, {volume.state}, export_json=None)


def recheck_attached(node, node_id: str, instance_id: str | None = None) -> list[str]:
    """Volumes recorded as attached to this node's running instances (or just
    *instance_id*) whose disk the domain lacks (the instance was stopped and started, or the
    export vanished with a target daemon restart) are exported and plugged again. Returns
    their ids. Root volumes are the domain's own disk and never re-plugged."""
    from ..compute.models import Instance

    ebs = _services().ebs
    fixed = []
    query = db.select(Volume, Instance).join(
        Instance, Instance.id == Volume.instance_id).where(
        Volume.attach_state == volumes.ATTACHED, Instance.node_id == node_id,
        Instance.state == "running", Volume.target != "vda")
    if instance_id:
        query = query.where(Instance.id == instance_id)
    for volume, instance in db.session.execute(query).all():
        try:
            if volume.target in node.disks(instance.id):
                continue
            exporter = ebs.export_driver()
            export = exporter.create_export(volume.id, str(ebs.path(volume.id)))
            node.attach_volume(instance.id, exporter.disk_spec(
                volume.id, export, str(ebs.path(volume.id)), volume.target))
            volumes.transition(volume.id, {volumes.IN_USE}, export_json=_json(export))
            fixed.append(volume.id)
        except Exception as error:  # noqa: BLE001 - one volume's failure must not stop the rest
            _log_failure(f"re-attaching to {instance.id}", volume.id, error)
            db.session.rollback()
    return fixed
