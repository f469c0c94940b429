"""The cloud controller's service object: the whole surface the EC2 adapter, the console and
the CLI call (they call none of the compute modules' functions themselves).

Regions, zones and account attributes; instance types; reading instances and the instance
operations that tie images, instance types, key pairs, tags and the cluster's scheduler
together; importing images; what an account has (the console's dashboard). Images and key
pairs are mixins from :mod:`eucalite.compute.service_images`, security groups and public
addresses from :mod:`~eucalite.compute.service_groups` and
:mod:`~eucalite.compute.service_addresses`, launch templates from
:mod:`~eucalite.compute.service_templates`. Methods take a Principal and plain values (tags as
``dict[str, str]``, user data as ``bytes``, counts as ``int``), never a request or a Query
structure. The services it uses (the cluster controller, Walrus) are given to it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy.exc import IntegrityError

from .. import config as config_module
from .. import tags
from ..credentials import user_certificate
from ..accounts import Principal, utcnow
from ..cluster import imagecache, network, nodes
from ..cluster.scheduler import Need, Overcommit
from ..cluster.service import ClusterService, Zone
from ..datadir import store_writer
from ..db import db, write_lock
from ..ebs.models import Snapshot, Volume
from ..ebs.service import EbsService
from ..errors import AwsError, InvalidParameterValue
from ..errors.ec2 import (IdempotentParameterMismatch, InsufficientInstanceCapacity,
                          UnsupportedOperation)
from ..s3.models import Bucket
from ..s3.service import S3Service
from . import (imageflags, imageimport, images, instance_attributes, instance_status,
               instance_types, instances, keypairs, lifecycle, metadata, netplan, nodeloss,
               secgroups, states)
from . import cloudkey
from .imageimport import ImageFiles
from .instances import LaunchRequest, incorrect_state
from .models import Image, Instance, InstanceType, KeyPair
from .service_addresses import AddressesMixin
from .service_grouprules import SecurityGroupRulesMixin
from .service_groups import SecurityGroupsMixin
from .service_images import ImagesMixin, KeyPairsMixin
from .service_profiles import InstanceProfilesMixin
from .service_templates import LaunchTemplatesMixin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Region:
    name: str
    endpoint: str


#: DescribeAccountAttributes values that are true of every eucalite cloud. EC2-Classic
#: networking (no default VPC) is what Eucalyptus' EDGE mode offers.
ACCOUNT_ATTRIBUTES: dict[str, list[str]] = {
    "supported-platforms": ["EC2"],
    "default-vpc": ["none"],
}


@dataclass
class StateChange:
    instance_id: str
    previous: str
    current: str


class ComputeService(ImagesMixin, KeyPairsMixin, SecurityGroupsMixin, SecurityGroupRulesMixin,
                     AddressesMixin, InstanceProfilesMixin, LaunchTemplatesMixin):
    """The cloud controller's whole surface; images and key pairs come from the mixins of
    :mod:`eucalite.compute.service_images`, security groups from
    :mod:`eucalite.compute.service_groups` and :mod:`~eucalite.compute.service_grouprules`,
    public addresses from
    :mod:`eucalite.compute.service_addresses`, launch templates from
    :mod:`eucalite.compute.service_templates`."""

    def __init__(self, config: Mapping[str, Any], cluster: ClusterService, s3: S3Service,
                 ebs: EbsService):
        self.config = config
        self.cluster = cluster
        self.s3 = s3
        self.ebs = ebs                  # EBS-backed roots and instances' volumes
        self.worker: lifecycle.Worker | None = None     # set by Services.build
        # cloud-bursting (eucalite.burst.service.BurstService), set by Services.build: it
        # places launches on remote clouds and acts on the instances running there
        self.burst = None
        self.metadata_server = None     # the guests' metadata listener, when this is a node
        self.status_board = instance_status.StatusBoard()   # fed by the reconciler

    def regions(self) -> list[Region]:
        """This cloud is one region; its endpoint is the EC2 URL clients use."""
        return [Region(self.config["region"], config_module.endpoints(self.config)["ec2"])]

    def zones(self) -> list[Zone]:
        """The cluster's zones, then one per burst target."""
        return self.cluster.zones() + (self.burst.zones() if self.burst is not None else [])

    def account_attributes(self) -> dict[str, list[str]]:
        return dict(ACCOUNT_ATTRIBUTES)

    # --- instance types -------------------------------------------------------------------

    def list_instance_types(self) -> list[InstanceType]:
        """Every instance type, by name."""
        return instance_types.list_all()

    def modify_instance_type(self, principal: Principal, name: str, cpu: int | None = None,
                             memory_mb: int | None = None,
                             disk_gb: int | None = None) -> InstanceType:
        """Resize a type (cloud admin only; None keeps a size). Running instances keep theirs."""
        return instance_types.modify(principal, name, cpu=cpu, memory_mb=memory_mb,
                                     disk_gb=disk_gb)

    # --- reading instances ------------------------------------------------------------------

    def describe_instances(self, principal: Principal,
                           ids: list[str] | None = None) -> list[Instance]:
        """The caller's instances (all of *ids*, else InvalidInstanceID.NotFound), oldest
        first; terminated ones stay visible for an hour."""
        return instances.visible(principal, ids)

    def instances_page(self, principal: Principal, ids: list[str] | None = None, *,
                       narrowing: instances.Narrowing | None = None, after: str | None = None,
                       limit: int | None = None) -> instances.InstancePage:
        """One page of :meth:`describe_instances`, cut by the database
        (:func:`eucalite.compute.instances.page`): at most *limit* instances after the
        page key *after*, narrowed first by *narrowing*; ``next_key`` resumes after it."""
        return instances.page(principal, ids, narrowing=narrowing, after=after, limit=limit)

    def instance(self, principal: Principal, instance_id: str) -> Instance:
        """One of the caller's instances, or InvalidInstanceID.NotFound."""
        return instances.owned(principal, instance_id)

    def instances_by_id(self, account_id: str, ids: list[str]) -> dict[str, Instance]:
        """The account's instances among *ids* by id, whatever their state (terminated ones
        while their rows last); an id with no row is left out. For services that follow
        instances they launched (Auto Scaling)."""
        if not ids:
            return {}
        return {row.id: row for row in db.session.execute(db.select(Instance).where(
            Instance.owner_id == account_id, Instance.id.in_(ids))).scalars()}

    def instances_tagged(self, account_id: str, key: str, value: str) -> list[Instance]:
        """The account's instances, terminated ones left out, tagged *key* = *value*."""
        tagged = db.select(tags.Tag.resource_id).where(
            tags.Tag.owner_id == account_id, tags.Tag.key == key, tags.Tag.value == value)
        return list(db.session.execute(db.select(Instance).where(
            Instance.owner_id == account_id, Instance.id.in_(tagged),
            Instance.state != states.TERMINATED)).scalars())

    # --- what an account has --------------------------------------------------------------

    def summary(self, principal: Principal) -> dict:
        """Instances by state (terminated ones not counted), and how many volumes,
        snapshots, buckets, images and key pairs the caller's account owns."""
        account_id = principal.account_id

        def count(model) -> int:
            return db.session.execute(db.select(db.func.count()).select_from(model)
                                      .filter_by(owner_id=account_id)).scalar()

        by_state = dict(db.session.execute(
            db.select(Instance.state, db.func.count()).filter_by(owner_id=account_id)
            .where(Instance.state != states.TERMINATED).group_by(Instance.state)).all())
        return {"instances": by_state, "volumes": count(Volume), "snapshots": count(Snapshot),
                "buckets": count(Bucket), "images": count(Image), "keypairs": count(KeyPair)}

    def remove_lost_node(self, node_id: str):
        """Remove a node that stopped answering together with its instances, which end as
        if their domains vanished (:func:`.nodeloss.remove_lost_node`); returns its row."""
        return nodeloss.remove_lost_node(self.cluster, self.ebs, node_id)

    def capacity(self) -> dict:
        """The cloud's nodes (``NodeCapacity``: use and what each may hold), and per zone how
        many more instances of each type fit (free) and would fit on an empty cloud (max)."""
        types = [(t.name, t.cpu, t.memory_mb, t.disk_gb)
                 for t in self.list_instance_types()]
        return {"nodes": self.cluster.node_capacities(),
                "types": {zone.name: nodes.zone_capacity(zone.name, types,
                                                         Overcommit.of(self.config))
                          for zone in self.zones()}}

    # --- images -----------------------------------------------------------------------------

    def import_images(self, principal: Principal, files: ImageFiles, *,
                      name: str | None = None, arch: str = "x86_64",
                      bucket: str = imageimport.DEFAULT_BUCKET,
                      progress: imageimport.Progress | None = None) -> dict[str, str]:
        """Bundle, upload and register kernel/ramdisk/root files as *principal*:
        :func:`eucalite.compute.imageimport.import_images` (``{kind: image id}``), holding
        the store's writer lock, so a process beside the server may call it too."""
        extra = {"progress": progress} if progress is not None else {}
        with store_writer(self.config["data_dir"]):
            return imageimport.import_images(self.s3.store, principal, files, name=name,
                                             arch=arch, bucket=bucket, **extra)

    # --- launching ----------------------------------------------------------------------

    def check_launch(self, principal: Principal, *, image_id: str, instance_type: str,
                     key_name: str | None = None, security_groups: list[str] = ()) -> None:
        """The EC2 error RunInstances would answer for this launch's image, instance type,
        key pair and security groups (names or ``sg-`` ids), if any; without launching.
        Auto Scaling checks a launch configuration with it when one is created."""
        self._launch_parts(principal, LaunchRequest(
            image_id=image_id, instance_type=instance_type, key_name=key_name,
            security_groups=[group for group in security_groups
                             if not group.startswith("sg-")],
            security_group_ids=[group for group in security_groups
                                if group.startswith("sg-")]))

    @staticmethod
    def _earlier_launch(principal: Principal, request: LaunchRequest) -> list[Instance]:
        """The instances an earlier RunInstances with *request*'s ClientToken made (none
        without a token); IdempotentParameterMismatch if it launched something else."""
        if not request.client_token:
            return []
        earlier = instances.by_client_token(principal, request.client_token)
        if earlier and (earlier[0].image_id != request.image_id or
                        earlier[0].instance_type != request.instance_type):
            raise IdempotentParameterMismatch(
                "Client token already used with different parameters.")
        return earlier

    def _launch_parts(self, principal: Principal, request: LaunchRequest):
        """What *request* launches, each checked as RunInstances checks it: (the image,
        kernel id, ramdisk id, instance type, key pair or None)."""
        image = images.launchable(principal, request.image_id)
        kernel_id = request.kernel_id or image.kernel_id
        ramdisk_id = request.ramdisk_id or image.ramdisk_id
        for part_id, kind in ((kernel_id, "kernel"), (ramdisk_id, "ramdisk")):
            if part_id:
                images.launchable_part(principal, part_id, kind)
        itype = instance_types.get(request.instance_type)
        key = keypairs.get(principal.account_id, request.key_name) if request.key_name else None
        instances.check_user_data(request.user_data)
        secgroups.check_launch_groups(principal.account_id, request.security_groups or (),
                                      request.security_group_ids or (),
                                      int(self.config.get("security_groups_per_instance", 5)))
        return image, kernel_id, ramdisk_id, itype, key

    def run_instances(self, principal: Principal, request: LaunchRequest) -> list[Instance]:
        """RunInstances: all of MinCount..MaxCount that fit, or nothing at all."""
        earlier = self._earlier_launch(principal, request)
        if earlier:
            return earlier
        if request.min_count < 1 or request.max_count < request.min_count:
            raise InvalidParameterValue("MinCount must be at least 1 and at most MaxCount.")
        image, kernel_id, ramdisk_id, itype, key = self._launch_parts(principal, request)
        request = imageflags.with_image_defaults(request, image)     # its ImdsSupport
        zones = self.cluster.zone_names()
        # a burst target (eucalite.burst) takes the launch: the zone asked for, its policy
        burst = self.burst.first(principal, request, image.id, itype.name) \
            if self.burst is not None else None
        if request.zone and request.zone not in zones and burst is None:
            raise InvalidParameterValue(f"Invalid availability zone: [{request.zone}]")
        if request.zones:
            if not set(request.zones) <= set(zones):
                raise InvalidParameterValue(f"Invalid availability zones: {request.zones}")
            zones = request.zones
        need = Need(itype.cpu, itype.memory_mb, itype.disk_gb)
        try:    # no zone asked for: the one where most fit (nodes.reserve_placed)
            zone, node_ids = (burst.zone, [None] * request.max_count) if burst else \
                nodes.reserve_placed(
                    request.zone, zones, need, request.min_count, request.max_count,
                    self.config.get("scheduler", "GREEDY"), Overcommit.of(self.config),
                    attached=self.cluster.attached_ids())
        except InsufficientInstanceCapacity as error:
            if self.cluster.node_problem:
                # Say why this host is not a node, and what to install, in the API error.
                error.message = f"{error.message} On this host: {self.cluster.node_problem}"
                error.args = (error.message,)
            if self.burst is None:
                raise
            # what this cloud cannot take, a when-full burst target may (else: error again)
            burst = self.burst.overflow(request, image.id, itype.name, error)
            zone, node_ids = burst.zone, [None] * request.max_count

        def tag_and_mark(ids: list[str]) -> None:
            """In the launch's transaction: the instances' tags, and their burst target."""
            tags.tag_new_resources(principal, "instance", ids, request.tags or {})
            tags.tag_system(principal.account_id, "instance", ids, request.system_tags)
            if burst:
                self.burst.mark(ids, burst)

        def record_volumes(row: Instance, planned: list) -> None:
            """In the launch's transaction: the volumes an instance's launch makes, with
            the request's volume tags."""
            made = self.ebs.record_launch_volumes(
                owner_id=row.owner_id, creator_user_id=row.creator_user_id,
                instance_id=row.id, zone=row.zone, planned=planned)
            tags.tag_new_resources(principal, "volume", made, request.volume_tags or {})

        try:
            rows = instances.record_launch(
                principal, request, image=image, kernel_id=kernel_id, ramdisk_id=ramdisk_id,
                itype=itype, key=key, zone=zone, node_ids=node_ids,
                # a burst instance's addresses and volumes are the remote cloud's
                allocate_ips=None if burst else lambda count: network.allocate(
                    self.config, count, *instances.addresses_in_use()),
                public_pool=None if burst else self.launch_pool(),
                tag=tag_and_mark,
                record_volumes=(lambda row, planned: None) if burst else record_volumes)
        except BaseException as error:
            db.session.rollback()
            for node_id in filter(None, node_ids):
                nodes.release(node_id, need)
            # the same ClientToken in a concurrent call, which recorded its launch first:
            # answer what it made, as a retry after it would get
            earlier = self._earlier_launch(principal, request) \
                if isinstance(error, IntegrityError) else None
            if earlier:
                return earlier
            raise
        if burst:
            self.burst.launch_later([row.id for row in rows])
            return rows
        for row in rows:
            self.worker.submit(lifecycle.spawn, self.cluster, self.ebs, row.id)
        return rows

    # --- changing state ------------------------------------------------------------------

    def terminate(self, principal: Principal, ids: list[str]) -> list[StateChange]:
        acts = states.ACTIONS["terminate"].acts
        changes = []
        rows = instances.visible(principal, ids)
        instance_attributes.check_terminable(rows)
        for instance in rows:
            previous = instance.state
            if previous not in acts:
                changes.append(StateChange(instance.id, previous, previous))
                continue
            if states.transition(instance.id, states.SHUTTING_DOWN, task=states.TASK_TERMINATING,
                                 expected=acts):
                if instance.burst_target:
                    self.burst.act("terminate", instance.id)
                else:
                    self.worker.submit(lifecycle.terminate, self.cluster, self.ebs,
                                       instance.id)
                changes.append(StateChange(instance.id, previous, states.SHUTTING_DOWN))
            else:
                fresh = db.session.get(Instance, instance.id)
                changes.append(StateChange(instance.id, previous, fresh.state))
        return changes

    def reboot(self, principal: Principal, ids: list[str]) -> None:
        action = states.ACTIONS["reboot"]
        for instance in instances.visible(principal, ids):
            if instance.state not in action.accepted:
                raise incorrect_state(instance, "rebooted")
        for instance in instances.visible(principal, ids):
            if instance.state in action.acts and instance.burst_target:
                self.burst.act("reboot", instance.id)
            elif instance.state in action.acts:
                self.worker.submit(lifecycle.reboot, self.cluster, instance.id)

    def stop_or_start(self, principal: Principal, ids: list[str],
                      action: str) -> list[StateChange]:
        """StopInstances / StartInstances: only instances with an EBS root can be stopped,
        as in Eucalyptus; instance-store instances are UnsupportedOperation. A stop gives
        the node's capacity back; a start schedules the instance again (its private
        address and volumes stay)."""
        rows = instances.visible(principal, ids)
        for instance in rows:
            if instance.root_device_type != "ebs":
                raise UnsupportedOperation(
                    f"The instance '{instance.id}' does not have an 'ebs' root device type "
                    + ("and cannot be stopped." if action == "stop" else
                       "and cannot be started."))
        if action == "stop":
            instance_attributes.check_stoppable(rows)
        accepted = states.ACTIONS[action].accepted
        for instance in rows:
            if instance.state not in accepted:
                raise incorrect_state(instance, f"{action}ped" if action == "stop"
                                      else "started")
        if action == "stop":
            return [self._stop(row) for row in rows]
        nodes_for = self._reserve_for_start(rows)
        return [self._start(row, nodes_for.get(row.id)) for row in rows]

    def _reserve_for_start(self, rows: list[Instance]) -> dict[str, str]:
        """Instance id -> the node reserved for each stopped one among *rows*: all of them,
        or (InsufficientInstanceCapacity) none, so a start never half-happens."""
        reserved: dict[str, str] = {}
        try:
            for instance in rows:
                if instance.state in states.ACTIONS["start"].acts and \
                        not instance.burst_target:      # a burst one uses no node
                    [reserved[instance.id]] = nodes.reserve(
                        instance.zone, _need(instance), 1, 1,
                        self.config.get("scheduler", "GREEDY"), Overcommit.of(self.config))
        except BaseException:
            by_id = {row.id: row for row in rows}
            for instance_id, node_id in reserved.items():
                nodes.release(node_id, _need(by_id[instance_id]))
            raise
        return reserved

    def _stop(self, instance: Instance) -> StateChange:
        previous = instance.state
        if previous in states.ACTIONS["stop"].acts and states.transition(
                instance.id, states.STOPPING, expected={states.RUNNING}, task=states.TASK_STOPPING,
                reason="Client.UserInitiatedShutdown: User initiated shutdown"):
            if instance.burst_target:
                self.burst.act("stop", instance.id)
            else:
                self.worker.submit(lifecycle.stop, self.cluster, self.ebs, instance.id)
            return StateChange(instance.id, previous, states.STOPPING)
        return StateChange(instance.id, previous, db.session.get(Instance, instance.id).state)

    def _start(self, instance: Instance, node_id: str | None) -> StateChange:
        """stopped -> pending on *node_id* (reserved for it); the reservation is released
        when the instance is no longer stopped."""
        previous = instance.state
        burst = bool(instance.burst_target)     # runs remotely: no node, no local address
        if node_id is None and not burst:
            return StateChange(instance.id, previous, previous)
        if states.transition(instance.id, states.PENDING, expected={states.STOPPED},
                             task=states.TASK_STARTING, node_id=node_id,
                             state_reason=None,
                             # its status checks start again (instance_status)
                             status_checked_at=None, status_impaired_since=None,
                             on_win=None if burst else
                             lambda: self.give_launch_address(instance)):
            if burst:
                self.burst.act("start", instance.id)
            else:
                self.worker.submit(lifecycle.spawn, self.cluster, self.ebs, instance.id)
            return StateChange(instance.id, previous, states.PENDING)
        if node_id:
            nodes.release(node_id, _need(instance))
        return StateChange(instance.id, previous, db.session.get(Instance, instance.id).state)

    def set_monitoring(self, principal: Principal, ids: list[str], enabled: bool) -> list[str]:
        """MonitorInstances (*enabled*) / UnmonitorInstances: the caller's instances get
        detailed (``enabled``) or basic (``disabled``) CloudWatch monitoring, which the
        collector (:mod:`eucalite.cloudwatch.collector`) follows from its next pass.
        InvalidInstanceID.NotFound for an id not the caller's; returns the ids in order."""
        write_lock()
        try:
            rows = instances.visible(principal, ids)
            for row in rows:
                row.monitoring = "enabled" if enabled else "disabled"
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        by_id = {row.id for row in rows}
        return [instance_id for instance_id in dict.fromkeys(ids) if instance_id in by_id]

    def console_output(self, principal: Principal, instance_id: str) -> tuple[str, bytes]:
        """(instance id, the last 64 KiB of its serial console output)."""
        instance = instances.owned(principal, instance_id)
        output = b""
        if instance.burst_target:
            output = self.burst.console_output(instance)
        elif instance.node_id:
            try:
                # the node keeps a terminated instance's log until the instance is purged
                output = self.cluster.node_for(instance.node_id).console_output(instance.id)
            except AwsError:
                output = b""
        return instance.id, output

    def describe_instance_attribute(self, principal: Principal, instance_id: str,
                                    attribute: str) -> tuple[Instance, Any]:
        """DescribeInstanceAttribute: (the instance, the value of *attribute*) as
        :func:`eucalite.compute.instance_attributes.read` gives it."""
        instance = instances.owned(principal, instance_id)
        instance_attributes.check_name(attribute)
        return instance, instance_attributes.read(
            instance, attribute, groups=secgroups.instance_groups([instance.id])[instance.id],
            volumes=self.ebs.attachments(instance.id))

    def modify_instance(self, principal: Principal, instance_id: str,
                        changes: Mapping[str, Any]) -> Instance:
        """ModifyInstanceAttribute: *changes* maps one EC2 attribute name to its new value
        (rules and value types: :mod:`eucalite.compute.instance_attributes`). A new
        ``groupSet`` reaches the node's firewall before this returns."""
        write_lock()            # the state checked is the state changed
        try:
            instance = instances.owned(principal, instance_id)
            attribute, value = instance_attributes.check_change(
                principal, instance, changes,
                int(self.config.get("security_groups_per_instance", 5)))
            instance_attributes.apply(instance, attribute, value,
                                      volumes=self.ebs.attachments(instance.id), ebs=self.ebs)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        if attribute == "groupSet":
            netplan.sync(self.cluster)
        return instance

    def instance_status(self, principal: Principal, ids: list[str] | None = None,
                        include_all: bool = False
                        ) -> list[tuple[Instance, instance_status.InstanceStatus]]:
        """DescribeInstanceStatus: the caller's running instances (every visible one with
        *include_all*) with their status checks and events
        (:func:`eucalite.compute.instance_status.status_of`)."""
        rows = instances.visible(principal, ids)
        if not include_all:
            rows = [row for row in rows if row.state == states.RUNNING]
        node_states = {node.id: node for node in nodes.list_nodes()}
        result = []
        for row in rows:
            node = node_states.get(row.node_id)
            result.append((row, instance_status.status_of(
                row, node.state if node else None, self.status_board,
                node.last_seen if node else None)))
        return result

    def report_instance_status(self, principal: Principal, ids: list[str], status: str | None,
                               reasons: list[str]) -> None:
        """ReportInstanceStatus: the instances are the caller's and the report well formed;
        it is accepted (AWS keeps it for its own operators; this cloud logs it)."""
        instance_status.check_report(status, reasons)
        rows = instances.visible(principal, ids)
        log.info("instance status report from %s: %s %s (%s)", principal.arn,
                 [row.id for row in rows], status, ", ".join(reasons))

    def cloud_certificate_path(self) -> Path:
        """The cloud's certificate file (a eucarc's ``EUCALYPTUS_CERT``: :mod:`.cloudkey`)."""
        return cloudkey.cloud_certificate_path(self.config["data_dir"]).resolve()

    def user_certificate(self, account_id: str, user: str) -> tuple[bytes, bytes]:
        """A new X.509 key pair for *user* signed by the cloud's key (a credentials zip's
        ``EC2_PRIVATE_KEY``/``EC2_CERT``): :func:`eucalite.credentials.user_certificate`."""
        data_dir = self.config["data_dir"]
        return user_certificate(cloudkey.cloud_private_key(data_dir),
                                cloudkey.cloud_certificate_path(data_dir).read_bytes(),
                                account_id, user)

    def password_data(self, principal: Principal, instance_id: str) -> Instance:
        """GetPasswordData: the instance, if it is the caller's. Its password data is empty:
        eucalite's guests are Linux, which has no Windows password to encrypt."""
        return instances.owned(principal, instance_id)

    def modify_metadata_options(self, principal: Principal, instance_id: str,
                                options: Mapping[str, Any]) -> Instance:
        """ModifyInstanceMetadataOptions: options not given keep their value; the change
        takes effect at the next request to the metadata service."""
        instance = instances.owned(principal, instance_id)
        changes = metadata.validate_metadata_options(options)
        if instance.state == states.TERMINATED:
            raise incorrect_state(instance, "modified")
        instance.set_json("metadata_options", {**metadata.metadata_options(instance),
                                               **changes})
        db.session.commit()
        return instance

    def purge_terminated(self) -> int:
        """Forget instances terminated more than an hour ago (they left DescribeInstances)."""
        cutoff = utcnow() - instances.TERMINATED_VISIBLE
        old = list(db.session.execute(db.select(Instance).where(
            Instance.state == states.TERMINATED, Instance.terminated_at < cutoff)).scalars())
        for instance in old:
            tags.delete_all(instance.id)
            imagecache.remove_work(imagecache.work_dir(self.config["data_dir"], instance.id))
            db.session.delete(instance)
        db.session.commit()
        return len(old)


def _need(instance: Instance) -> Need:
    """What *instance* holds on its node while it runs."""
    return Need(instance.cpu, instance.memory_mb, instance.disk_gb)
