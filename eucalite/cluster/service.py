"""The cluster controller's service object: zones, this host's node duty and its driver.

One availability zone per cluster, named in config (``zones``). With node duty on, this host
is a node: :meth:`ClusterService.start_node_duty` opens the hypervisor driver and registers
the node with its capacity. With node duty off no hypervisor connection is ever opened, and
whoever asks for the driver is told plainly why there is none.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import ServiceUnavailable
from .virt.driver import DriverError, HypervisorDriver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Zone:
    name: str
    zone_id: str
    region: str
    state: str = "available"
    messages: tuple[str, ...] = field(default_factory=tuple)


class ClusterService:
    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        region = config["region"]
        prefix = "".join(ch for ch in region if ch.isalnum())[:4] or "zone"
        self._zones = [Zone(name=name, zone_id=f"{prefix}-az{index}", region=region)
                       for index, name in enumerate(config["zones"], 1)]
        self._driver: HypervisorDriver | None = None
        self._lock = threading.Lock()
        #: Why node duty is not running on this host (None when it is, or was not asked for).
        self.node_problem: str | None = None
        self.local_node_id: str | None = None

    def zones(self) -> list[Zone]:
        """Every availability zone, in configured order."""
        return list(self._zones)

    def open_driver(self) -> HypervisorDriver:
        """The configured hypervisor driver (raises DriverError with what to install)."""
        kind = self.config.get("hypervisor", "libvirt")
        if kind == "fake":
            from .virt.fake import FakeDriver

            return FakeDriver()
        if kind == "libvirt":
            from .virt.libvirt_driver import LibvirtDriver

            return LibvirtDriver(self.config["libvirt_uri"], state_dir=self.config["data_dir"])
        raise DriverError(f"Unknown hypervisor {kind!r}: use libvirt or fake.")

    def start_node_duty(self) -> str | None:
        """Open the driver and register this host as a node (needs an app context).

        Returns None on success, else the reason node duty is off, which is also kept in
        ``node_problem`` for the start-up banner and API errors.
        """
        if not self.config.get("node"):
            self.node_problem = "node duty is off on this host (--no-node)"
            return self.node_problem
        try:
            driver = self.open_driver()
            capacity = driver.capacity()
        except (DriverError, ImportError) as error:
            self.node_problem = (f"node duty is off: {error}. Install and start libvirt "
                                 "(apt install libvirt-daemon-system qemu-system-x86; "
                                 "virtlogd -d; libvirtd -d) or serve with --no-node.")
            log.warning(self.node_problem)
            return self.node_problem
        from . import nodes

        with self._lock:
            self._driver = driver
        node = nodes.register_local(self.config, capacity, self.config.get("libvirt_uri", ""))
        self.local_node_id = node.id if hasattr(node, "id") else node
        self.node_problem = None
        return None

    def driver_for(self, node_id: str | None) -> HypervisorDriver:
        """The driver that runs *node_id*'s domains (only this host's node for now)."""
        with self._lock:
            driver = self._driver
        if driver is None or node_id != self.local_node_id:
            reason = self.node_problem or f"node {node_id} is not reachable from this host"
            raise ServiceUnavailable(f"No hypervisor for node {node_id}: {reason}")
        return driver

    def close_driver(self) -> None:
        """Close the hypervisor connection (before a fork; node duty state is kept)."""
        with self._lock:
            driver, self._driver = self._driver, None
        if driver is not None:
            driver.close()

    @property
    def driver(self) -> HypervisorDriver | None:
        with self._lock:
            return self._driver
