"""The storage controller's service object: its whole surface, for the EC2 adapter, the
console and the cloud controller.

Volumes are sparse raw files in ``<data_dir>/volumes/`` or RBD images in a Ceph pool
(config ``ebs_backend``; each volume keeps the backend it was made on:
:mod:`eucalite.ebs.backing`). A file volume is exported (local file, tgt or LIO iSCSI:
:mod:`eucalite.ebs.export`) only while it is attached, so no target stays open for a volume
nobody uses; an RBD volume is opened by the node's QEMU itself. Methods take a Principal and plain values; the slow
half of each change runs as a job (:mod:`eucalite.ebs.jobs`) on the worker given at wiring.

The storage controller sits below the cloud controller and never imports it: what it must
know of instances and images it asks through a :class:`CloudView`, which the cloud
controller implements (:class:`eucalite.compute.ebsroot.ComputeView`) and the wiring
(:mod:`eucalite.services`) hands in.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from .. import tags
from ..accounts import Principal, utcnow
from ..cluster import nodes
from ..cluster.service import ClusterService
from ..cluster.virt.driver import DiskSpec
from ..db import db
from ..errors import (AwsError, InvalidParameterCombination, InvalidParameterValue,
                      MissingParameter)
from ..errors.ec2 import (IncorrectState, InvalidAttachmentNotFound, OperationNotPermitted,
                          Unsupported, VolumeInUse)
from ..s3.store import ObjectStore
from . import backing, jobs, snapshots, volumes
from .backing import RbdBacking, VolumeBacking
from .chunkstore import ChunkStore
from .export import ExportDriver, ExportUnavailable, choose, choose_iscsi, make, \
    storage_address
from .export.rbd import RbdExport
from .models import Snapshot, Volume, VolumeModification
from .states import (ATTACHED, ATTACHING, ATTACHMENT, AVAILABLE, CREATING, DELETING,
                     DETACHING, ERROR, IN_USE, MODIFYING, OPTIMIZING, PENDING, VOLUME)

log = logging.getLogger(__name__)

VOLUME_TYPES = ("standard", "gp2", "gp3", "io1", "io2", "sc1", "st1")


@dataclass(frozen=True)
class InstanceRef:
    """What the storage controller needs to know of an instance. *state_error* is the
    error an attach must fail with because of the instance's state (None: it is running)."""

    id: str
    zone: str
    node_id: str | None
    root_device_name: str | None
    state_error: AwsError | None = None


class CloudView(Protocol):
    """What the storage controller asks of the cloud controller."""

    def attach_target(self, principal: Principal, instance_id: str) -> InstanceRef:
        """The caller's instance *instance_id*; its NotFound error if the caller has none."""

    def instance(self, instance_id: str) -> InstanceRef | None:
        """The instance, whoever owns it; None if there is none."""

    def image_using_snapshot(self, snapshot_id: str) -> str | None:
        """The id of a registered image made from the snapshot, if any."""


class EbsService:
    """The storage controller. *cluster* reaches the nodes volumes are plugged into,
    *store* is the object store snapshot chunks are kept in, *cloud* answers what it asks
    of the cloud controller; :meth:`bind` gives it the app and the job worker."""

    def __init__(self, config: Mapping[str, Any], cluster: ClusterService, store: ObjectStore,
                 cloud: CloudView):
        self.config = config
        self.cluster = cluster
        self.store = store
        self.cloud = cloud
        self.app = None                 # } set once by bind(), before any job runs
        self.worker = None              # }
        self.volumes_dir = Path(config["data_dir"]) / "volumes"
        self._export = None
        self._iscsi = None
        self._rbd_export = None
        self._backings: dict[str, VolumeBacking] = {}
        self._lock = threading.Lock()

    def bind(self, app, worker) -> None:
        """Wiring: *worker* runs our jobs (``worker.submit(job, *args)``, each in an app
        context of *app*); snapshot uploads open contexts of *app* on threads of their own."""
        self.app, self.worker = app, worker

    # --- plumbing ----------------------------------------------------------------------

    def path(self, volume_id: str) -> Path:
        """The data file of a volume kept in a file."""
        return self.volumes_dir / f"{volume_id}.raw"

    def backing(self, name: str) -> VolumeBacking:
        """The volume backing called *name* (``file``, ``rbd``), made once."""
        with self._lock:
            if name not in self._backings:
                made = backing.make(name, self.config, self.volumes_dir)
                if isinstance(made, RbdBacking):
                    made.wanted = _row_exists
                self._backings[name] = made
            return self._backings[name]

    def backing_of(self, volume: Volume) -> VolumeBacking:
        """Where *volume*'s blocks are (the backend it was made on)."""
        return self.backing(volume.backend or "file")

    def rbd(self) -> RbdBacking:
        """The RBD backing (snapshots kept in Ceph live there whatever ebs_backend says)."""
        return self.backing("rbd")

    def new_volume_backend(self) -> str:
        """The backend new volumes are made on (config ``ebs_backend``); Unsupported,
        saying what to install or fix, when it cannot make volumes now."""
        name = str(self.config.get("ebs_backend") or "file").strip().lower()
        try:
            problem = self.backing(name).problem()
        except ValueError as error:
            raise Unsupported(f"The storage controller cannot make volumes: {error}")
        if problem is not None:
            raise Unsupported(f"The storage controller cannot make volumes: {problem}")
        return name

    def describe_backend(self) -> str:
        """One line for the start-up banner: where new volumes are kept, and whether that
        works ("volumes in files under X", "volumes as RBD images in pool P of the Ceph
        cluster in CONF (reachable|UNREACHABLE: why)")."""
        name = str(self.config.get("ebs_backend") or "file").strip().lower()
        try:
            return self.backing(name).describe()
        except ValueError as error:
            return f"OFF: {error}"

    def chunk_store(self) -> ChunkStore:
        """Where snapshot chunks are kept (needs an app context)."""
        return ChunkStore(self.store, self.app)

    def export_driver(self):
        """The configured export driver (``ebs_export``), chosen once; an API error saying
        why (and what to install) when the configured one cannot run here."""
        with self._lock:
            if self._export is None:
                try:
                    self._export = choose(self.config)
                except ExportUnavailable as error:
                    raise Unsupported(f"The storage controller cannot export volumes: {error}")
            return self._export

    def exporter_for(self, node_id: str | None, backend: str = "file"
                     ) -> tuple[ExportDriver, str | None]:
        """How a volume on *backend* reaches an instance on *node_id*: (the export driver,
        the node whose CHAP account alone may log in to the target, or None). An RBD
        volume: the RBD export wherever the node is (QEMU opens the image). This host's node (or an
        instance on no node): the configured driver, local files or iSCSI with one CHAP
        account per volume, as before nodes could join. A node on another host: iSCSI even
        where config chooses local files (:func:`~.export.choose_iscsi`), at
        ``storage_address``, guarded by that node's own account. Unsupported when no
        driver can."""
        if backend == "rbd":
            images = self.rbd()
            with self._lock:
                if self._rbd_export is None:
                    self._rbd_export = RbdExport(images)
            return self._rbd_export, None
        if node_id is None or node_id == self.cluster.local_node_id:
            return self.export_driver(), None
        with self._lock:
            if self._iscsi is None:
                try:
                    self._iscsi = choose_iscsi(self.config)
                except ExportUnavailable as error:
                    raise Unsupported(f"The storage controller cannot export volumes to "
                                      f"node {node_id}: {error}")
            return self._iscsi, node_id

    def driver_of(self, export: dict) -> ExportDriver:
        """The driver that made the export record *export* (to withdraw it)."""
        backend = "rbd" if export.get("driver") == "rbd" else "file"
        return self.exporter_for(export.get("node_id"), backend)[0]

    def remote_problem(self) -> str | None:
        """Why nodes on other hosts cannot reach volumes although some joined: the storage
        address is loopback (needs an app context); None when they can or none joined."""
        address = storage_address(self.config)
        try:
            loopback = ipaddress.ip_address(address).is_loopback
        except ValueError:
            loopback = address == "localhost"
        if not loopback:
            return None
        here = {self.cluster.local_node_id, nodes.local_node_id(self.config)}
        others = [row.id for row in self.cluster.list_nodes() if row.id not in here]
        if not others:
            return None
        return (f"WARNING: volumes are served at {address}, which nodes on other hosts "
                f"({', '.join(others[:5])}) cannot reach: set storage_address to this "
                "host's address on their network and let tgtd listen there")

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
            skipped = [f"{name}: {make(name, self.config).problem()}"
                       for name in ("lio", "tgt") if name != driver.name]
            line += f" (no iSCSI by {'; '.join(skipped)})" if driver.name == "local" else \
                f" ({skipped[0]})"
        line += f"; nodes on other hosts reach them at {storage_address(self.config)}"
        if self.app is not None:
            with self.app.app_context():
                problem = self.remote_problem()
            if problem:
                log.warning(problem)
                line += f". {problem}"
        return line

    def _submit(self, job, *args) -> None:
        self.worker.submit(job, self, *args)

    def _zone(self, zone: str | None) -> str:
        names = [z.name for z in self.cluster.zones()]
        zone = zone or names[0]
        if zone not in names:
            raise InvalidParameterValue(f"Invalid availability zone: [{zone}]")
        return zone

    # --- volumes -----------------------------------------------------------------------

    def visible_volumes(self, principal: Principal, ids: list[str] | None = None
                        ) -> list[Volume]:
        """DescribeVolumes' set: the caller's volumes, oldest first; only those named by
        *ids* if given, and InvalidVolume.NotFound if any of those is not the caller's."""
        return volumes.visible(principal, ids)

    def owned_volume(self, principal: Principal, volume_id: str) -> Volume:
        """The caller's volume *volume_id*; InvalidVolume.NotFound if it has none."""
        return volumes.owned(principal, volume_id)

    def create_volume(self, principal: Principal, *, size_gb: int | None,
                      snapshot_id: str | None, zone: str | None, volume_type: str | None,
                      tag_map: Mapping[str, str] | None = None) -> Volume:
        """CreateVolume: a sparse volume of *size_gb*, or one holding a snapshot's data,
        with the tags *tag_map*."""
        zone = self._zone(zone)
        snapshot = snapshots.restorable(principal, snapshot_id) if snapshot_id else None
        if size_gb is None:
            if snapshot is None:
                raise MissingParameter("The request must contain the parameter size or "
                                       "snapshotId")
            size_gb = snapshot.volume_size_gb
        if snapshot is not None and size_gb < snapshot.volume_size_gb:
            raise InvalidParameterValue(f"Volume of {size_gb}GiB is smaller than snapshot "
                                        f"'{snapshot.id}', which is {snapshot.volume_size_gb}GiB.")
        volume_type = volume_type or "standard"
        if volume_type not in VOLUME_TYPES:
            raise InvalidParameterValue(f"Value ({volume_type}) for parameter volumeType is "
                                        "invalid.")
        tag_map = tags.check_new_tags(tag_map)        # validate up front
        volumes.check_size(self.config, size_gb)
        backend = self.new_volume_backend()
        if snapshot is not None and snapshot.backend == "rbd" and backend != "rbd":
            self._check_rbd_snapshots()
        volume = volumes.record(
            principal, size_gb=size_gb, zone=zone, snapshot=snapshot, volume_type=volume_type,
            backend=backend,
            tag=lambda vid: tags.tag_new_resources(principal, "volume", [vid], tag_map))
        self._submit(jobs.make_volume, volume.id)
        return volume

    def delete_volume(self, principal: Principal, volume_id: str) -> None:
        volume = volumes.owned(principal, volume_id)
        if volume.attach_state is not None:
            raise VolumeInUse(f"Volume {volume.id} is currently attached to "
                              f"{volume.instance_id}")
        if volume.state not in (AVAILABLE, ERROR):
            raise volumes.incorrect_state(volume)
        if not VOLUME.transition(volume.id, DELETING, expected={AVAILABLE, ERROR}):
            raise volumes.incorrect_state(db.session.get(Volume, volume.id))
        self._submit(jobs.destroy_volume, volume.id)

    def modify_volume(self, principal: Principal, volume_id: str, *, size_gb: int | None,
                      volume_type: str | None, iops: int | None,
                      throughput: int | None) -> VolumeModification:
        """ModifyVolume: grow the volume to *size_gb* and/or give it *volume_type* (IOPS and
        throughput are recorded as asked, not enforced: eucalite does not throttle volumes).
        Returns the modification, ``modifying``; a job grows the data (the file or the RBD
        image) and, for an attached volume, tells its guest (:func:`jobs.modify_volume`).
        Errors as AWS: a smaller size is InvalidParameterValue, a modification under way
        IncorrectModificationState, a volume neither available nor in-use IncorrectState.
        AWS's wait of six hours between two modifications of a volume is not made here."""
        volume = volumes.owned(principal, volume_id)
        if size_gb is None and volume_type is None and iops is None and throughput is None:
            raise MissingParameter("The request must contain at least one of the parameters "
                                   "size, volumeType, iops or throughput")
        if volume.state not in (AVAILABLE, IN_USE):
            raise volumes.incorrect_state(volume)
        if size_gb is not None and size_gb < volume.size_gb:
            raise InvalidParameterValue("New size cannot be smaller than existing size")
        target_type = volume_type or volume.volume_type
        if target_type not in VOLUME_TYPES:
            raise InvalidParameterValue(f"Value ({target_type}) for parameter volumeType is "
                                        "invalid.")
        if iops is not None and target_type not in ("io1", "io2", "gp3"):
            raise InvalidParameterCombination(f"The parameter iops is not supported for "
                                              f"{target_type} volumes.")
        if throughput is not None and target_type != "gp3":
            raise InvalidParameterCombination(f"The parameter throughput is not supported "
                                              f"for {target_type} volumes.")
        modification = volumes.record_modification(
            principal, volume.id, config=self.config,
            size_gb=volume.size_gb if size_gb is None else size_gb, volume_type=target_type,
            iops=iops, throughput=throughput)
        self._submit(jobs.modify_volume, volume.id)
        return modification

    def volume_modifications(self, principal: Principal, ids: list[str] | None = None
                             ) -> list[VolumeModification]:
        """DescribeVolumesModifications' set: the last modification of each of the caller's
        volumes (named by *ids*, if given: NotFound for any not the caller's)."""
        return volumes.modifications(principal, ids)

    def modify_attribute(self, principal: Principal, volume_id: str,
                         auto_enable_io: bool | None) -> None:
        volume = volumes.owned(principal, volume_id)
        if auto_enable_io is None:
            raise MissingParameter("The request must contain the parameter AutoEnableIO")
        VOLUME.note(volume.id, {volume.state}, auto_enable_io=auto_enable_io)

    # --- attachments -------------------------------------------------------------------

    def attach(self, principal: Principal, volume_id: str, instance_id: str,
               device: str | None) -> Volume:
        """AttachVolume: records ``attaching`` and hot-plugs the volume in a job. Not while
        its data is growing (a modification ``modifying``: OperationNotPermitted, as AWS),
        so a guest never opens a volume midway through a resize."""
        device = volumes.check_device(device)
        volume = volumes.owned(principal, volume_id)
        instance = self.cloud.attach_target(principal, instance_id)
        if volume.attach_state is not None or volume.state == IN_USE:
            raise VolumeInUse(f"vol '{volume.id}' is already attached to an instance")
        if volume.state != AVAILABLE:
            raise volumes.incorrect_state(volume)
        modification = db.session.get(VolumeModification, volume.id)
        if modification is not None and modification.state == MODIFYING:
            raise OperationNotPermitted(f"Cannot attach volume {volume.id} when it is in "
                                        "modification state: MODIFYING")
        if instance.state_error is not None:
            raise instance.state_error
        if volume.zone != instance.zone:
            raise InvalidParameterValue(f"Volume '{volume.id}' is in zone {volume.zone}; "
                                        f"instance '{instance.id}' is in {instance.zone}.")
        if volumes.device_in_use(instance.id, device) or device == instance.root_device_name:
            raise InvalidParameterValue(f"Attachment point {device} is already in use")
        self.exporter_for(instance.node_id, volume.backend)   # fail now, in the API error
        # the attachment begins with the volume's move to in-use
        if not VOLUME.transition(volume.id, IN_USE, expected={AVAILABLE},
                                 instance_id=instance.id, device=device,
                                 attach_state=ATTACHING, attach_time=utcnow()):
            raise volumes.incorrect_state(db.session.get(Volume, volume.id))
        self._submit(jobs.plug, volume.id)
        return db.session.get(Volume, volume.id)

    def detach(self, principal: Principal, volume_id: str, instance_id: str | None,
               device: str | None, force: bool) -> Volume:
        """DetachVolume: records ``detaching`` and unplugs the volume in a job."""
        volume = volumes.owned(principal, volume_id)
        if volume.attach_state is None:
            raise IncorrectState(f"Volume '{volume.id}' is in the 'available' state.")
        if volume.target == volumes.ROOT_TARGET:
            raise IncorrectState(f"Volume '{volume.id}' is the root device of instance "
                                 f"'{volume.instance_id}' and cannot be detached.")
        if volume.state == CREATING:
            # a pending launch's volume: its instance's first boot makes and plugs it
            raise volumes.incorrect_state(volume)
        if instance_id and instance_id != volume.instance_id:
            raise InvalidAttachmentNotFound(f"Volume '{volume.id}' is not attached to "
                                            f"instance '{instance_id}'.")
        if device and device != volume.device:
            raise InvalidAttachmentNotFound(f"Volume '{volume.id}' is not attached at "
                                            f"'{device}'.")
        expected = {ATTACHED, ATTACHING} | ({DETACHING} if force else set())
        if not ATTACHMENT.transition(volume.id, DETACHING, expected=expected):
            raise volumes.incorrect_state(db.session.get(Volume, volume.id))
        self._submit(jobs.unplug, volume.id, force)
        return db.session.get(Volume, volume.id)

    # --- snapshots ---------------------------------------------------------------------

    def create_snapshot(self, principal: Principal, volume_id: str,
                        description: str | None = None,
                        tag_map: Mapping[str, str] | None = None) -> Snapshot:
        """CreateSnapshot: records ``pending`` with the tags *tag_map*; a job copies the
        volume and chunks it, in chunks of ``snapshot_chunk_mb`` (config) MiB."""
        chunk_size = int(self.config.get("snapshot_chunk_mb", 1)) * 2**20
        snapshot = snapshots.record(principal, volume_id, description or "", tag_map,
                                    chunk_size, self.snapshot_backend)
        self._submit(snapshots.take, snapshot.id)
        return snapshot

    def create_snapshots(self, principal: Principal, volume_ids: list[str], description: str,
                         tag_map: Mapping[str, str] | None = None,
                         hold: snapshots.Hold | None = None) -> list[Snapshot]:
        """Snapshots of several volumes at one point in time (CreateImage's), in the order
        of *volume_ids*: each recorded ``pending`` with the tags *tag_map*, then ONE job
        copies every volume inside *hold* (a context manager factory the caller gives, e.g.
        its guest shut off; by default each attached guest is paused once for all its
        volumes), and chunks the copies after."""
        chunk_size = int(self.config.get("snapshot_chunk_mb", 1)) * 2**20
        made: list[Snapshot] = []
        try:
            for volume_id in volume_ids:
                made.append(snapshots.record(principal, volume_id, description, tag_map,
                                             chunk_size, self.snapshot_backend))
        except Exception as error:
            # no job will take those already recorded: they end failed, not pending forever
            for snapshot in made:
                snapshots.fail(snapshot.id, error)
            raise
        self._submit(snapshots.take_together, [snapshot.id for snapshot in made], hold)
        return made

    def snapshot_backend(self, volume: Volume) -> str:
        """Where a new snapshot of *volume* is kept: ``rbd`` (an RBD snapshot in Ceph) for
        an RBD volume when config ``rbd_snapshots`` is ``ceph``, else ``objectstore``
        (incremental chunks in the object store)."""
        keep_in_ceph = str(self.config.get("rbd_snapshots") or "ceph").lower() == "ceph"
        return "rbd" if volume.backend == "rbd" and keep_in_ceph else "objectstore"

    def _check_rbd_snapshots(self) -> None:
        """Unsupported, saying why, when snapshots kept in Ceph cannot be read now."""
        problem = self.rbd().problem()
        if problem is not None:
            raise Unsupported(f"The snapshot is kept in Ceph, which the storage controller "
                              f"cannot reach: {problem}")

    def delete_snapshot(self, principal: Principal, snapshot_id: str) -> None:
        """DeleteSnapshot: a completed or failed snapshot no image is made from."""
        snapshots.delete(self, principal, snapshot_id)

    def visible_snapshots(self, principal: Principal, ids: list[str] | None = None,
                          owners: list[str] | None = None,
                          restorable_by: list[str] | None = None) -> list[Snapshot]:
        """DescribeSnapshots' set, by id: the caller's own snapshots and those shared with
        it, narrowed by *ids* (InvalidSnapshot.NotFound if one is not visible), *owners*
        (``self`` or account ids) and *restorable_by* (``self``, account ids or ``all``)."""
        return snapshots.visible(principal, ids or [], owners or [], restorable_by or [])

    def owned_snapshot(self, principal: Principal, snapshot_id: str) -> Snapshot:
        """The caller's own snapshot *snapshot_id*; InvalidSnapshot.NotFound if it has
        none (a snapshot merely shared with the caller is not its own)."""
        return snapshots.owned(principal, snapshot_id)

    def snapshot_permissions(self, snapshot: Snapshot) -> list[str]:
        """The createVolumePermission of *snapshot* (a row :meth:`owned_snapshot` or
        :meth:`visible_snapshots` gave the caller, which decided who may see it): the
        account ids (or ``all``) it is shared with besides its owner."""
        return snapshots.permissions(snapshot)

    def modify_snapshot_permission(self, principal: Principal, snapshot_id: str,
                                   add: list[str], remove: list[str]) -> None:
        """ModifySnapshotAttribute createVolumePermission on the caller's own snapshot:
        shares it with the account ids (12 digits) or ``all`` in *add*, stops sharing with
        those in *remove* (InvalidParameterValue for anything else)."""
        snapshots.modify_permission(principal, snapshot_id, add, remove)

    # --- for the cloud controller: instances' volumes ----------------------------------

    def attachments(self, instance_id: str) -> list[Volume]:
        """The volumes attached (attaching, detaching) to the instance, by device."""
        return volumes.on_instance(instance_id)

    def attachments_of(self, instance_ids: list[str]) -> dict[str, list[Volume]]:
        """Instance id -> the volumes attached (attaching, detaching) to it, by device, for
        a whole page of instances in one query; instances without volumes are left out."""
        return volumes.on_instances(instance_ids)

    def end_attachment(self, volume_id: str, delete: bool) -> None:
        """The volume's instance ended: the volume is detached, and deleted if *delete*.
        A volume still being made (its launch died) is deleted whatever *delete* says."""
        volume = db.session.get(Volume, volume_id)
        if volume is None:
            return
        if volume.state == CREATING:
            jobs.discard_unmade(self, volume.id)
            return
        jobs.finish_detach(self, volume)
        if delete and VOLUME.transition(volume_id, DELETING, expected={AVAILABLE}):
            jobs.destroy_volume(self, volume_id)

    def set_delete_on_termination(self, volume_id: str, delete: bool) -> None:
        """Whether the attached volume is deleted when its instance ends (ModifyInstance
        Attribute's blockDeviceMapping). Made in the caller's write transaction, which
        commits it with the rest of its change."""
        volume = db.session.get(Volume, volume_id)
        if volume is None or volume.instance_id is None:
            raise IncorrectState(f"Volume '{volume_id}' is not attached.")
        volume.delete_on_termination = bool(delete)

    def drop_exports(self, instance_id: str) -> None:
        """The instance's domain is gone but it will start again: its volumes stay
        attached, their exports are dropped (made again at start)."""
        for volume in volumes.on_instance(instance_id):
            export = volume.get_json("export")
            if export:
                jobs.remove_export(self, volume.id, export)
                VOLUME.note(volume.id, {volume.state}, export_json=None)

    def root_volume(self, instance_id: str, device: str | None) -> Volume | None:
        """The root volume of an EBS-backed instance, once made."""
        return volumes.root_of(instance_id, device)

    def find_snapshot(self, snapshot_id: str) -> Snapshot | None:
        return snapshots.find(snapshot_id)

    def record_launch_volumes(self, *, owner_id: str, creator_user_id: str | None,
                              instance_id: str, zone: str,
                              planned: list[volumes.LaunchVolume]) -> list[str]:
        """Record the volumes an instance's launch makes (``creating``, attaching at their
        devices: the root at disk vda, the others at the next free disks) in the caller's
        write transaction, RunInstances', which counted them against the volume quotas:
        recorded with the instances, concurrent launches cannot pass a quota together. The
        cloud's storage limit holds (VolumeLimitExceeded). The instance's first boot
        writes their data (:meth:`make_launch_volumes`). Returns their ids."""
        volumes.check_sizes(self.config, [v.size_gb for v in planned])
        backend = self.new_volume_backend() if planned else "file"
        targets: list[str] = []
        made = []
        for wanted in planned:
            target = volumes.ROOT_TARGET if wanted.root else jobs.free_target(targets)
            targets.append(target)
            made.append(volumes.record_attached(
                owner_id=owner_id, instance_id=instance_id, zone=zone, device=wanted.device,
                target=target, snapshot_id=wanted.snapshot_id, size_gb=wanted.size_gb,
                volume_type=wanted.volume_type,
                delete_on_termination=wanted.delete_on_termination,
                creator_user_id=creator_user_id, backend=backend).id)
        return made

    def make_launch_volumes(self, instance_id: str, root_device: str | None) -> None:
        """An instance's first boot: the volumes its launch recorded and nobody has made
        yet (``creating``) get their data, the root (at *root_device*) first, and go
        in-use. A volume whose data cannot be written is deleted and the error raised
        (the launch fails; the launch's other volumes go with it)."""
        unmade = [v for v in volumes.on_instance(instance_id) if v.state == CREATING]
        for volume in sorted(unmade, key=lambda v: (v.device != root_device, v.device)):
            jobs.make_launch_volume(self, volume.id, instance_id)

    def boot_volumes(self, instance_id: str) -> list[Volume]:
        """The instance's attached volumes other than its root, by device: the data
        volumes its domain boots with (those a hot-plug is under way for excluded)."""
        return [volume for volume in volumes.on_instance(instance_id)
                if volume.target not in (None, volumes.ROOT_TARGET)
                and volume.attach_state in (ATTACHING, ATTACHED)]

    def export_attached(self, volume_id: str) -> DiskSpec:
        """Export a volume its instance boots with to the instance's node: the disk, at
        the volume's target (vda for the root)."""
        return jobs.export_attached(self, db.session.get(Volume, volume_id))

    def replug_missing(self, node, instance_ids: list[str]) -> list[str]:
        """Volumes recorded as attached to these running instances on *node* whose
        disk the domain lacks (the instance was stopped and started, or the export vanished
        with a target daemon restart) are exported and plugged again. Returns their ids.
        Root volumes are the domain's own disk and never re-plugged."""
        if not instance_ids:
            return []
        fixed = []
        rows = db.session.execute(db.select(Volume).where(
            Volume.attach_state == ATTACHED, Volume.instance_id.in_(instance_ids),
            Volume.target != volumes.ROOT_TARGET).order_by(Volume.id)).scalars().all()
        for volume in rows:
            try:
                if volume.target in node.disks(volume.instance_id):
                    continue
                jobs.replug(self, node, volume)
                fixed.append(volume.id)
            except Exception as error:  # noqa: BLE001 - one volume's failure must not stop the rest
                jobs.log_failure(f"re-attaching to {volume.instance_id}", volume.id, error)
                db.session.rollback()
        return fixed

    def recover(self) -> list[str]:
        """At start: resume what a restart interrupted, so no volume stays stuck in a
        passing state. Creating/deleting volumes and attaching/detaching ones get their job
        again; a snapshot the restart cut short ends in ``error`` (its copy is gone); a
        modification still modifying or optimizing gets its job again (growing is
        idempotent), which finishes it. Returns the ids acted on (needs an app context)."""
        acted = []
        for volume in db.session.execute(db.select(Volume)).scalars().all():
            job = {CREATING: jobs.make_volume, DELETING: jobs.destroy_volume}.get(volume.state)
            if volume.attach_state == ATTACHING:
                # a volume a launch makes (a target given at once) is made and plugged by
                # its instance's spawn; one the restart interrupted goes with that launch
                # (the reconciler ends it). AttachVolume's get their target when plugged.
                job = jobs.plug if volume.target is None else None
            elif volume.attach_state == DETACHING:
                job = jobs.unplug
            if job is not None:
                self._submit(job, volume.id)
                acted.append(volume.id)
        unfinished = db.session.execute(db.select(VolumeModification.volume_id).where(
            VolumeModification.state.in_((MODIFYING, OPTIMIZING)))).scalars().all()
        for volume_id in unfinished:
            self._submit(jobs.modify_volume, volume_id)
            acted.append(volume_id)
        pending = db.session.execute(db.select(Snapshot.id).filter_by(
            state=PENDING)).scalars().all()
        acted += [snapshot_id for snapshot_id in pending if snapshots.interrupted(snapshot_id)]
        return acted


def _row_exists(name: str) -> bool:
    """A volume (``vol-``) or snapshot (``snap-``) of that id is recorded: its RBD image or
    snapshot must stay (:attr:`eucalite.ebs.backing.RbdBacking.wanted`)."""
    model = Volume if name.startswith("vol-") else Snapshot if name.startswith("snap-") \
        else None
    return model is None or db.session.get(model, name) is not None
