"""The cloud controller's service object: what the EC2 adapter calls.

Regions, zones and account attributes, and the instance operations that tie images, instance
types, key pairs, tags and the cluster's scheduler together. Functions take a Principal and
plain values, never a request.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping

from .. import config as config_module
from ..accounts import Principal, utcnow
from ..cluster.service import ClusterService, Zone
from ..db import db
from ..ebs.service import EbsService
from ..errors import AwsError, InvalidParameterValue
from . import instances, lifecycle, states
from .instances import LaunchRequest, incorrect_state
from .models import Image, Instance


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


class ComputeService:
    def __init__(self, config: Mapping[str, Any], cluster: ClusterService, ebs: EbsService):
        self.config = config
        self.cluster = cluster
        self.ebs = ebs                  # EBS-backed roots and instances' volumes
        self.worker: lifecycle.Worker | None = None     # set by create_app
        self.metadata_server = None     # the guests' metadata listener, when this is a node

    def regions(self) -> list[Region]:
        """This cloud is one region; its endpoint is the EC2 URL clients use."""
        return [Region(self.config["region"], config_module.endpoints(self.config)["ec2"])]

    def zones(self) -> list[Zone]:
        return self.cluster.zones()

    def account_attributes(self) -> dict[str, list[str]]:
        return dict(ACCOUNT_ATTRIBUTES)

    # --- launching ----------------------------------------------------------------------

    def run_instances(self, principal: Principal, request: LaunchRequest) -> list[Instance]:
        """RunInstances: all of MinCount..MaxCount that fit, or nothing at all."""
        from ..cluster import network, nodes
        from ..cluster.scheduler import Need
        from .. import tags
        from . import images, instance_types, keypairs

        if request.client_token:
            earlier = instances.by_client_token(principal, request.client_token)
            if earlier:
                if earlier[0].image_id != request.image_id or \
                        earlier[0].instance_type != request.instance_type:
                    raise AwsError("Client token already used with different parameters.",
                                   code="IdempotentParameterMismatch", status=400)
                return earlier
        if request.min_count < 1 or request.max_count < request.min_count:
            raise InvalidParameterValue("MinCount must be at least 1 and at most MaxCount.")
        image = images.launchable(principal, request.image_id)
        kernel_id = request.kernel_id or image.kernel_id
        ramdisk_id = request.ramdisk_id or image.ramdisk_id
        for part_id, kind in ((kernel_id, "kernel"), (ramdisk_id, "ramdisk")):
            if part_id:
                self._check_part(principal, part_id, kind)
        itype = instance_types.get(request.instance_type)
        key = keypairs.get(principal.account_id, request.key_name) if request.key_name else None
        instances.decode_user_data(request.user_data)
        # Tags for the instances; other resource types (volumes) have nothing to tag yet.
        instance_specs = [spec for spec in request.tag_specifications or []
                          if spec.get("ResourceType") == "instance"]
        tags.parse_tag_specifications("instance", instance_specs)     # validate up front
        zone = request.zone or self.zones()[0].name
        if zone not in {item.name for item in self.zones()}:
            raise InvalidParameterValue(f"Invalid availability zone: [{zone}]")
        need = Need(itype.cpu, itype.memory_mb, itype.disk_gb)
        try:
            node_ids = nodes.reserve(zone, need, request.min_count, request.max_count,
                                     self.config.get("scheduler", "GREEDY"))
        except AwsError as error:
            if error.code == "InsufficientInstanceCapacity" and self.cluster.node_problem:
                # Say why this host is not a node, and what to install, in the API error.
                error.message = f"{error.message} On this host: {self.cluster.node_problem}"
                error.args = (error.message,)
            raise
        try:
            rows = instances.record_launch(
                principal, request, image=image, kernel_id=kernel_id, ramdisk_id=ramdisk_id,
                itype=itype, key=key, zone=zone, node_ids=node_ids,
                allocate_ips=lambda count: network.allocate(self.config, count,
                                                             *instances.addresses_in_use()),
                tag=lambda ids: tags.apply_tag_specifications(principal, "instance", ids,
                                                              instance_specs))
        except BaseException:
            db.session.rollback()
            for node_id in node_ids:
                nodes.release(node_id, need)
            raise
        for row in rows:
            self.worker.submit(lifecycle.spawn, self.cluster, self.ebs, row.id)
        return rows

    @staticmethod
    def _check_part(principal: Principal, image_id: str, kind: str) -> None:
        """A kernel (eki-) or ramdisk (eri-) the caller may launch with."""
        image = db.session.get(Image, image_id)
        prefix = {"kernel": "eki-", "ramdisk": "eri-"}[kind]
        launchable = image is not None and image.kind == kind and image.state == "available" \
            and (image.owner_id == principal.account_id or image.is_public or
                 principal.account_id in (image.get_json("launch_permissions", []) or []))
        if not launchable or not image_id.startswith(prefix):
            raise AwsError(f"The image id '[{image_id}]' does not exist",
                           code="InvalidAMIID.NotFound", status=400)

    # --- changing state ------------------------------------------------------------------

    def terminate(self, principal: Principal, ids: list[str]) -> list[StateChange]:
        changes = []
        for instance in instances.visible(principal, ids):
            previous = instance.state
            if previous in (states.TERMINATED, states.SHUTTING_DOWN):
                changes.append(StateChange(instance.id, previous, previous))
                continue
            if states.transition(instance.id, states.SHUTTING_DOWN, task="terminating",
                                 expected={states.PENDING, states.RUNNING, states.STOPPING,
                                           states.STOPPED}):
                self.worker.submit(lifecycle.terminate, self.cluster, self.ebs, instance.id)
                changes.append(StateChange(instance.id, previous, states.SHUTTING_DOWN))
            else:
                fresh = db.session.get(Instance, instance.id)
                changes.append(StateChange(instance.id, previous, fresh.state))
        return changes

    def reboot(self, principal: Principal, ids: list[str]) -> None:
        for instance in instances.visible(principal, ids):
            if instance.state in (states.TERMINATED, states.SHUTTING_DOWN):
                raise incorrect_state(instance, "rebooted")
        for instance in instances.visible(principal, ids):
            if instance.state == states.RUNNING:
                self.worker.submit(lifecycle.reboot, self.cluster, instance.id)

    def stop_or_start(self, principal: Principal, ids: list[str], action: str) -> list[StateChange]:
        """StopInstances / StartInstances: only instances with an EBS root can be stopped,
        as in Eucalyptus; instance-store instances are UnsupportedOperation. A stop gives
        the node's capacity back; a start schedules the instance again (its private
        address and volumes stay)."""
        rows = instances.visible(principal, ids)
        for instance in rows:
            if instance.root_device_type != "ebs":
                raise AwsError(f"The instance '{instance.id}' does not have an 'ebs' root "
                               f"device type and cannot be {action}ped."
                               if action == "stop" else
                               f"The instance '{instance.id}' does not have an 'ebs' root "
                               "device type and cannot be started.",
                               code="UnsupportedOperation", status=400)
        wanted = {states.RUNNING, states.STOPPING} if action == "stop" else \
            {states.STOPPED, states.PENDING}
        for instance in rows:
            if instance.state not in wanted | ({states.STOPPED} if action == "stop" else
                                               {states.RUNNING}):
                raise incorrect_state(instance, f"{action}ped" if action == "stop"
                                      else "started")
        if action == "stop":
            return [self._stop(row) for row in rows]
        nodes_for = self._reserve_for_start(rows)
        return [self._start(row, nodes_for.get(row.id)) for row in rows]

    def _reserve_for_start(self, rows: list[Instance]) -> dict[str, str]:
        """Instance id -> the node reserved for each stopped one among *rows*: all of them,
        or (InsufficientInstanceCapacity) none, so a start never half-happens."""
        from ..cluster import nodes

        reserved: dict[str, str] = {}
        try:
            for instance in rows:
                if instance.state == states.STOPPED:
                    [reserved[instance.id]] = nodes.reserve(
                        instance.zone, _need(instance), 1, 1,
                        self.config.get("scheduler", "GREEDY"))
        except BaseException:
            by_id = {row.id: row for row in rows}
            for instance_id, node_id in reserved.items():
                nodes.release(node_id, _need(by_id[instance_id]))
            raise
        return reserved

    def _stop(self, instance: Instance) -> StateChange:
        previous = instance.state
        if previous == states.RUNNING and states.transition(
                instance.id, states.STOPPING, expected={states.RUNNING}, task="stopping",
                reason="Client.UserInitiatedShutdown: User initiated shutdown"):
            self.worker.submit(lifecycle.stop, self.cluster, self.ebs, instance.id)
            return StateChange(instance.id, previous, states.STOPPING)
        return StateChange(instance.id, previous, db.session.get(Instance, instance.id).state)

    def _start(self, instance: Instance, node_id: str | None) -> StateChange:
        """stopped -> pending on *node_id* (reserved for it); the reservation is released
        when the instance is no longer stopped."""
        from ..cluster import nodes

        previous = instance.state
        if node_id is None:
            return StateChange(instance.id, previous, previous)
        if states.transition(instance.id, states.PENDING, expected={states.STOPPED},
                             task=states.TASK_STARTING, node_id=node_id,
                             state_reason=None):
            self.worker.submit(lifecycle.spawn, self.cluster, self.ebs, instance.id)
            return StateChange(instance.id, previous, states.PENDING)
        nodes.release(node_id, _need(instance))
        return StateChange(instance.id, previous, db.session.get(Instance, instance.id).state)

    def console_output(self, principal: Principal, instance_id: str) -> tuple[str, str]:
        """(instance id, base64 of the last 64 KiB of serial console output)."""
        instance = instances.owned(principal, instance_id)
        output = b""
        if instance.node_id:
            try:
                # the node keeps a terminated instance's log until the instance is purged
                output = self.cluster.node_for(instance.node_id).console_output(instance.id)
            except AwsError:
                output = b""
        return instance.id, base64.b64encode(output).decode()

    def purge_terminated(self) -> int:
        """Forget instances terminated more than an hour ago (they left DescribeInstances)."""
        from .. import tags

        cutoff = utcnow() - instances.TERMINATED_VISIBLE
        old = list(db.session.execute(db.select(Instance).where(
            Instance.state == states.TERMINATED, Instance.terminated_at < cutoff)).scalars())
        from ..cluster import imagecache

        for instance in old:
            tags.delete_all(instance.id)
            imagecache.remove_work(imagecache.work_dir(self.config["data_dir"], instance.id))
            db.session.delete(instance)
        db.session.commit()
        return len(old)


def _need(instance: Instance):
    """What *instance* holds on its node while it runs."""
    from ..cluster.scheduler import Need

    return Need(instance.cpu, instance.memory_mb, instance.disk_gb)
