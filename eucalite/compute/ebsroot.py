"""The cloud controller's side of EBS: instances with volumes.

What is about instances lives here and calls the storage controller
(:class:`eucalite.ebs.service.EbsService`) with plain values: an EBS-backed instance's root
volume and its data volumes (recorded by RunInstances) written on first boot and exported
at every boot; its volumes released when it ends (the delete-on-termination ones deleted)
or their exports dropped when it stops; volumes its domain lost plugged again. :class:`ComputeView` answers
what the storage controller asks about instances and images (it is wired into the
EbsService by :mod:`eucalite.services`).
"""
from __future__ import annotations

from ..accounts import Principal
from ..cluster.node import Node
from ..cluster.virt.driver import DiskSpec
from ..db import db
from ..ebs.service import EbsService, InstanceRef
from ..errors.ec2 import InvalidAMIIDUnavailable
from . import instances, states
from .models import Image, Instance


def root_disk(ebs: EbsService, instance: Instance) -> DiskSpec:
    """The disk an EBS-backed instance boots from (vda): its root volume, exported to the
    node. RunInstances recorded the root and the data volumes of its mapping
    (:func:`eucalite.compute.launchmappings.volumes`); the first boot writes their data
    (from the snapshots, or empty); later boots reuse them: their data persists across
    stop and start."""
    volume = ebs.root_volume(instance.id, instance.root_device_name)
    if volume is None:
        raise InvalidAMIIDUnavailable(f"The instance {instance.id} has no root volume.")
    ebs.make_launch_volumes(instance.id, instance.root_device_name)
    return ebs.export_attached(volume.id)


def store_backed_volumes(ebs: EbsService, instance: Instance) -> list[DiskSpec]:
    """An instance-store instance's data volumes (its launch mapping's EBS volumes: it
    boots once, it cannot stop), written on its boot and exported to its node."""
    ebs.make_launch_volumes(instance.id, None)
    return data_disks(ebs, instance.id)


def data_disks(ebs: EbsService, instance_id: str) -> list[DiskSpec]:
    """The data volumes an instance boots with (those its first boot made and, for an
    EBS-backed one, those attached since), exported to its node, by device."""
    return [ebs.export_attached(volume.id) for volume in ebs.boot_volumes(instance_id)]


def launch_undone(ebs: EbsService, instance_id: str) -> None:
    """A first launch failed: every volume it made goes, whatever its DeleteOnTermination
    (the instance never ran, so nothing on them is anyone's)."""
    for volume in ebs.attachments(instance_id):
        ebs.end_attachment(volume.id, delete=True)


def instance_ended(ebs: EbsService, instance_id: str) -> None:
    """The instance's domain is gone for good: its volumes are detached, and those marked
    delete-on-termination deleted."""
    for volume in ebs.attachments(instance_id):
        ebs.end_attachment(volume.id, delete=volume.delete_on_termination)


def instance_stopped(ebs: EbsService, instance_id: str) -> None:
    """The instance's domain is gone but it will start again: its volumes, root included,
    stay attached; their exports are made again at start."""
    ebs.drop_exports(instance_id)


def recheck_attached(ebs: EbsService, node: Node, instance_id: str | None = None) -> list[str]:
    """Plug back the volumes the domains of this node's running instances (or just
    *instance_id*'s) lost; returns their ids."""
    query = db.select(Instance.id).where(Instance.node_id == node.node_id,
                                         Instance.state == states.RUNNING)
    if instance_id:
        query = query.where(Instance.id == instance_id)
    return ebs.replug_missing(node, list(db.session.execute(query).scalars()))


def _ref(instance: Instance, state_error=None) -> InstanceRef:
    return InstanceRef(id=instance.id, zone=instance.zone, node_id=instance.node_id,
                       root_device_name=instance.root_device_name, state_error=state_error)


class ComputeView:
    """What the storage controller asks of the cloud controller
    (:class:`eucalite.ebs.service.CloudView`)."""

    def attach_target(self, principal: Principal, instance_id: str) -> InstanceRef:
        instance = instances.owned(principal, instance_id)
        refusal = None if instance.state == states.RUNNING else \
            instances.incorrect_state(instance, "attached to")
        return _ref(instance, refusal)

    def instance(self, instance_id: str) -> InstanceRef | None:
        instance = db.session.get(Instance, instance_id)
        return _ref(instance) if instance is not None else None

    def image_using_snapshot(self, snapshot_id: str) -> str | None:
        for image in db.session.execute(db.select(Image).where(
                Image.state != "deregistered")).scalars():
            if any((m.get("ebs") or {}).get("snapshot_id") == snapshot_id
                   for m in image.get_json("block_devices", []) or []):
                return image.id
        return None
