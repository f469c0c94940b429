"""The storage controller's service object: what the EC2 adapter calls for volumes.

Volumes are sparse raw files in ``<data_dir>/volumes/``. A volume is exported (local file,
tgt or LIO iSCSI: :mod:`eucalite.ebs.export`) only while it is attached, so no target
stays open for a volume nobody uses. Functions take a Principal and plain values; the slow
half of each change runs as a job on the compute worker (:mod:`eucalite.ebs.jobs`).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from ..accounts import Principal, utcnow
from ..db import db
from ..errors import AwsError, ClientError, InvalidParameterValue
from . import volumes
from .models import Volume


class EbsService:
    def __init__(self, config: Mapping[str, Any], cluster, compute):
        self.config = config
        self.cluster = cluster
        self.compute = compute          # its worker runs our jobs; its instances we attach to
        self.volumes_dir = Path(config["data_dir"]) / "volumes"
        self._export = None
        self._lock = threading.Lock()

    # --- plumbing ----------------------------------------------------------------------

    def path(self, volume_id: str) -> Path:
        """The volume's data file."""
        return self.volumes_dir / f"{volume_id}.raw"

    def export_driver(self):
        """The configured export driver (``ebs_export``), chosen once; an API error saying
        why (and what to install) when the configured one cannot run here."""
        from .export import ExportUnavailable, choose

        with self._lock:
            if self._export is None:
                try:
                    self._export = choose(self.config)
                except ExportUnavailable as error:
                    raise AwsError(f"The storage controller cannot export volumes: {error}",
                                   code="Unsupported", status=400)
            return self._export

    def describe_export(self) -> str:
        """One line for the start-up banner: which export driver serves volumes, or why
        none can."""
        try:
            driver = self.export_driver()
        except AwsError as error:
            return f"OFF: {error.message}"
        where = {"local": "as local files (this host is the node)",
                 "tgt": f"over iSCSI by tgt at {self.config.get('iscsi_portal')}",
                 "lio": f"over iSCSI by LIO at {self.config.get('iscsi_portal')}"}
        line = f"exported {where.get(driver.name, 'by ' + driver.name)}, in {self.volumes_dir}"
        if driver.name != "lio" and self.config.get("ebs_export", "auto") == "auto":
            from .export import make

            skipped = [f"{name}: {make(name, self.config).problem()}"
                       for name in ("lio", "tgt") if name != driver.name]
            line += f" (no iSCSI by {'; '.join(skipped)})" if driver.name == "local" else \
                f" ({skipped[0]})"
        return line

    def _submit(self, job, *args) -> None:
        self.compute.worker.submit(job, *args)

    def _zone(self, zone: str | None) -> str:
        names = [z.name for z in self.cluster.zones()]
        zone = zone or names[0]
        if zone not in names:
            raise InvalidParameterValue(f"Invalid availability zone: [{zone}]")
        return zone

    # --- volumes -----------------------------------------------------------------------

    def create_volume(self, principal: Principal, *, size_gb: int | None,
                      snapshot_id: str | None, zone: str | None, volume_type: str | None,
                      tag_map: dict[str, str] | None) -> Volume:
        """CreateVolume: a sparse volume of *size_gb*, or one holding a snapshot's data."""
        from .. import tags
        from . import jobs, snapshots

        zone = self._zone(zone)
        snapshot = snapshots.restorable(principal, snapshot_id) if snapshot_id else None
        if size_gb is None:
            if snapshot is None:
                raise ClientError("The request must contain the parameter size or snapshotId",
                                  code="MissingParameter")
            size_gb = snapshot.volume_size_gb
        if snapshot is not None and size_gb < snapshot.volume_size_gb:
            raise InvalidParameterValue(f"Volume of {size_gb}GiB is smaller than snapshot "
                                        f"'{snapshot.id}', which is {snapshot.volume_size_gb}GiB.")
        volume_type = volume_type or "standard"
        if volume_type not in ("standard", "gp2", "gp3", "io1", "io2", "sc1", "st1"):
            raise InvalidParameterValue(f"Value ({volume_type}) for parameter volumeType is "
                                        "invalid.")
        tag_map = tags.check_new_tags(tag_map)        # validate up front
        volumes.check_size(self.config, principal.account_id, size_gb)
        volume = volumes.record(
            principal, size_gb=size_gb, zone=zone, snapshot=snapshot, volume_type=volume_type,
            tag=lambda vid: tags.tag_new_resources(principal, "volume", [vid], tag_map))
        self._submit(jobs.make_volume, volume.id)
        return volume

    def delete_volume(self, principal: Principal, volume_id: str) -> None:
        from . import jobs

        volume = volumes.owned(principal, volume_id)
        if volume.attach_state is not None:
            raise ClientError(f"Volume {volume.id} is currently attached to "
                              f"{volume.instance_id}", code="VolumeInUse")
        if volume.state not in (volumes.AVAILABLE, volumes.ERROR):
            raise volumes.incorrect_state(volume)
        if not volumes.transition(volume.id, {volumes.AVAILABLE, volumes.ERROR},
                                  state=volumes.DELETING):
            raise volumes.incorrect_state(db.session.get(Volume, volume.id))
        self._submit(jobs.destroy_volume, volume.id)

    # --- attachments -------------------------------------------------------------------

    def attach(self, principal: Principal, volume_id: str, instance_id: str,
               device: str | None) -> Volume:
        """AttachVolume: records ``attaching`` and hot-plugs the volume in a job."""
        from ..compute import instances, states
        from . import jobs

        device = volumes.check_device(device)
        volume = volumes.owned(principal, volume_id)
        instance = instances.owned(principal, instance_id)
        if volume.attach_state is not None or volume.state == volumes.IN_USE:
            raise ClientError(f"vol '{volume.id}' is already attached to an instance",
                              code="VolumeInUse")
        if volume.state != volumes.AVAILABLE:
            raise volumes.incorrect_state(volume)
        if instance.state != states.RUNNING:
            raise instances.incorrect_state(instance, "attached to")
        if volume.zone != instance.zone:
            raise InvalidParameterValue(f"Volume '{volume.id}' is in zone {volume.zone}; "
                                        f"instance '{instance.id}' is in {instance.zone}.")
        if volumes.device_in_use(instance.id, device) or device == instance.root_device_name:
            raise InvalidParameterValue(f"Attachment point {device} is already in use")
        self.export_driver()            # fail now, in the API error, if nothing can export
        if not volumes.transition(volume.id, {volumes.AVAILABLE}, state=volumes.IN_USE,
                                  instance_id=instance.id, device=device,
                                  attach_state=volumes.ATTACHING, attach_time=utcnow()):
            raise volumes.incorrect_state(db.session.get(Volume, volume.id))
        self._submit(jobs.plug, volume.id)
        return db.session.get(Volume, volume.id)

    def detach(self, principal: Principal, volume_id: str, instance_id: str | None,
               device: str | None, force: bool) -> Volume:
        """DetachVolume: records ``detaching`` and unplugs the volume in a job."""
        from . import jobs

        volume = volumes.owned(principal, volume_id)
        if volume.attach_state is None:
            raise ClientError(f"Volume '{volume.id}' is in the 'available' state.",
                              code="IncorrectState")
        if volume.target == "vda":
            raise ClientError(f"Volume '{volume.id}' is the root device of instance "
                              f"'{volume.instance_id}' and cannot be detached.",
                              code="IncorrectState")
        if instance_id and instance_id != volume.instance_id:
            raise ClientError(f"Volume '{volume.id}' is not attached to instance "
                              f"'{instance_id}'.", code="InvalidAttachment.NotFound")
        if device and device != volume.device:
            raise ClientError(f"Volume '{volume.id}' is not attached at '{device}'.",
                              code="InvalidAttachment.NotFound")
        expected = {volumes.ATTACHED, volumes.ATTACHING} | ({volumes.DETACHING} if force else set())
        if not volumes.attach_transition(volume.id, expected, attach_state=volumes.DETACHING):
            raise volumes.incorrect_state(db.session.get(Volume, volume.id))
        self._submit(jobs.unplug, volume.id, force)
        return db.session.get(Volume, volume.id)

    def modify_attribute(self, principal: Principal, volume_id: str,
                         auto_enable_io: bool | None) -> None:
        volume = volumes.owned(principal, volume_id)
        if auto_enable_io is None:
            raise ClientError("The request must contain the parameter AutoEnableIO",
                              code="MissingParameter")
        volumes.transition(volume.id, {volume.state}, auto_enable_io=auto_enable_io)
