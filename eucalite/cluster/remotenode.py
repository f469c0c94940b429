"""A node on another host, behind the same :class:`~.node.Node` protocol as this host's.

Every method becomes a command on the node's queue (:mod:`.commands`): its arguments in
their JSON form (:mod:`.wire`), carried to the node's agent by its long poll, executed there
on the node's :class:`~.localnode.LocalNode`, and its result or error posted back. The
caller blocks until then, as with a local node; a node that is down fails the call at once
with DriverError, one that does not answer in time fails it at its deadline
(:data:`TIMEOUTS`). An error raised on the node is raised here as the same class
(:func:`.wire.decode_error`).
"""
from __future__ import annotations

from typing import Any

from ..db import db
from . import wire
from .commands import CommandQueue, NodeFailed
from .edge.plan import NetworkPlan
from .models import Node as NodeRow
from .node import Endpoint, ImageRef, Launch
from .virt.driver import DiskSpec, DomainCounters, DriverError, HostCapacity, PowerState

#: Seconds a caller waits for each method's answer; a spawn fetches images (minutes on a
#: cold cache), every other method is quick on a node that answers.
TIMEOUTS = {"spawn": 900.0, "fetch_image": 900.0}
DEFAULT_TIMEOUT = 60.0


def uses_host_files(hypervisor_uri: str) -> bool:
    """Whether the node's instances read files there, from the hypervisor it registered:
    not on the fake (``fake://``) or libvirt's test driver (``test://...``)."""
    scheme = hypervisor_uri.partition(":")[0].partition("+")[0]
    return scheme not in ("fake", "test")


class RemoteNode:
    """The node *node_id* on another host, driven through *queue* (see the module
    docstring). *hypervisor_uri*: what it registered (decides :attr:`uses_host_files`)."""

    def __init__(self, node_id: str, queue: CommandQueue, hypervisor_uri: str = ""):
        self.node_id = node_id
        self.queue = queue
        self.hypervisor_uri = hypervisor_uri
        self.uses_host_files = uses_host_files(hypervisor_uri)

    def __repr__(self) -> str:
        return f"RemoteNode({self.node_id!r}, {self.hypervisor_uri!r})"

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run *method* on the node and return its decoded answer (see the module
        docstring)."""
        payload = wire.encode_args(method, *args, **kwargs)
        try:
            answer = self.queue.submit(self.node_id, method, payload,
                                       TIMEOUTS.get(method, DEFAULT_TIMEOUT))
        except NodeFailed as failed:
            raise wire.decode_error(failed.error, self.node_id) from None
        try:
            return wire.decode_result(method, answer)
        except wire.WireError as error:
            raise DriverError(f"node {self.node_id} answered {method} with something "
                              f"else: {error}") from None

    def capacity(self) -> HostCapacity:
        """What the node registered or last reported in its heartbeat (no round trip)."""
        row = db.session.get(NodeRow, self.node_id)
        if row is None:
            raise DriverError(f"node {self.node_id} is not registered")
        return HostCapacity(row.cores, row.memory_mb, row.disk_gb)

    # -- every other method is a command on the node ------------------------------------------

    def domains(self) -> dict[str, PowerState]:
        return self.call("domains")

    def power_state(self, instance_id: str) -> PowerState:
        return self.call("power_state", instance_id)

    def counters(self) -> dict[str, DomainCounters]:
        return self.call("counters")

    def fetch_image(self, image: ImageRef) -> str:
        return self.call("fetch_image", image)

    def spawn(self, launch: Launch) -> None:
        self.call("spawn", launch)

    def destroy(self, instance_id: str) -> None:
        self.call("destroy", instance_id)

    def reboot(self, instance_id: str) -> None:
        self.call("reboot", instance_id)

    def shutdown(self, instance_id: str) -> None:
        self.call("shutdown", instance_id)

    def power_off(self, instance_id: str) -> None:
        self.call("power_off", instance_id)

    def power_on(self, instance_id: str) -> None:
        self.call("power_on", instance_id)

    def pause(self, instance_id: str) -> None:
        self.call("pause", instance_id)

    def resume(self, instance_id: str) -> None:
        self.call("resume", instance_id)

    def remove_disks(self, instance_id: str) -> None:
        self.call("remove_disks", instance_id)

    def sweep_work(self, known: dict[str, bool]) -> list[str]:
        return self.call("sweep_work", known)

    def console_output(self, instance_id: str) -> bytes:
        return self.call("console_output", instance_id)

    def attach_volume(self, instance_id: str, disk: DiskSpec) -> None:
        self.call("attach_volume", instance_id, disk)

    def detach_volume(self, instance_id: str, target: str) -> None:
        self.call("detach_volume", instance_id, target)

    def resize_volume(self, instance_id: str, target: str, size_bytes: int) -> None:
        self.call("resize_volume", instance_id, target, size_bytes)

    def disks(self, instance_id: str) -> list[str]:
        return self.call("disks", instance_id)

    def plug(self, endpoint: Endpoint) -> str:
        return self.call("plug", endpoint)

    def unplug(self, endpoint: Endpoint) -> None:
        self.call("unplug", endpoint)

    def apply_network(self, plan: NetworkPlan, reread: bool = False) -> None:
        self.call("apply_network", plan, reread)
