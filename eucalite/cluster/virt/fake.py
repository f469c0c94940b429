"""An in-memory hypervisor driver for service tests and development without libvirt.

``FakeDriver`` keeps domains in a dict behind a lock and honours every postcondition of
``HypervisorDriver`` (driver.py), so services tested on it behave the same on libvirt. It
validates specs with the same builder the libvirt driver uses (domain_xml.py), so a spec the
fake accepts is one libvirt would be given too.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass, field

from . import domain_xml as dx
from . import network_xml as nx
from .driver import (CONSOLE_TAIL, DOMAIN_PREFIX, DiskCounters, DiskSpec, DomainCounters,
                     DomainSpec, DriverError, HostCapacity, HypervisorDriver, NetworkSpec,
                     NicCounters, PowerState)


@dataclass
class _FakeDomain:
    """What the fake knows of one domain."""

    spec: DomainSpec
    state: PowerState = PowerState.RUNNING
    disks: dict[str, DiskSpec] = field(default_factory=dict)
    #: the size the guest was last told a disk has (``resize_disk``), by target
    disk_sizes: dict[str, int] = field(default_factory=dict)
    console: bytearray = field(default_factory=bytearray)
    boots: int = 0
    #: power operations asked of it, in order ("pause", "resume", "shutdown", "power_off",
    #: "power_on", "reboot"): what tests check a consistency rule against
    history: list[str] = field(default_factory=list)
    #: usage since the last boot, as tests set it (:meth:`FakeDriver.add_usage`)
    cpu_time_ns: int = 0
    disk_io: dict[str, DiskCounters] = field(default_factory=dict)
    nic_io: dict[str, NicCounters] = field(default_factory=dict)

    @property
    def nic(self) -> str:
        """The NIC's host-side name (its tap, else what libvirt would name it)."""
        return self.spec.tap or "vnet0"


class FakeDriver(HypervisorDriver):
    """Domains in memory; every operation is instant and thread-safe."""

    name = "fake"
    uses_host_files = False

    def __init__(self, capacity: HostCapacity | None = None, *, cores: int = 8,
                 memory_mb: int = 16384, disk_gb: int = 200):
        self._capacity = capacity or HostCapacity(cores, memory_mb, disk_gb)
        #: instance ids whose guests ignore ``shutdown`` (as a guest without ACPI would)
        self.ignore_shutdown: set[str] = set()
        self._domains: dict[str, _FakeDomain] = {}
        self._networks: dict[str, NetworkSpec] = {}
        self._hosts: dict[str, dict[str, str]] = {}      # network -> MAC -> IP
        self._lock = threading.Lock()

    # -- helpers (call with the lock held) ---------------------------------------------------

    def _get(self, instance_id: str) -> _FakeDomain:
        """The domain, or DriverError naming it when absent."""
        dom = self._domains.get(instance_id)
        if dom is None:
            raise DriverError(f"{DOMAIN_PREFIX}{instance_id}: no such domain")
        return dom

    @staticmethod
    def _boot(dom: _FakeDomain) -> None:
        """Mark the domain running and append a fake boot log to its console."""
        dom.boots += 1
        dom.state = PowerState.RUNNING
        dom.cpu_time_ns, dom.disk_io, dom.nic_io = 0, {}, {}    # counters restart at boot
        dom.console += (f"eucalite fake console for {dom.spec.instance_id} "
                        f"(boot {dom.boots})\n").encode()
        # keep memory bounded like a real console tail would be
        if len(dom.console) > CONSOLE_TAIL:
            del dom.console[:-CONSOLE_TAIL]

    # -- the contract ------------------------------------------------------------------------

    def spawn(self, spec: DomainSpec) -> None:
        try:
            dx.domain_xml(spec)     # same validation as the libvirt driver
        except ValueError as exc:
            raise DriverError(f"cannot spawn {spec.name}: {exc}") from exc
        with self._lock:
            if spec.instance_id in self._domains:
                raise DriverError(f"cannot spawn {spec.name}: domain already exists")
            # a private copy: callers mutating their spec must not change our domain
            spec = copy.deepcopy(spec)
            dom = _FakeDomain(spec=spec, disks={d.target: d for d in spec.disks})
            self._boot(dom)
            self._domains[spec.instance_id] = dom

    def destroy(self, instance_id: str) -> None:
        with self._lock:
            self._domains.pop(instance_id, None)

    def reboot(self, instance_id: str) -> None:
        with self._lock:
            dom = self._get(instance_id)
            dom.history.append("reboot")
            self._boot(dom)

    def power_off(self, instance_id: str) -> None:
        with self._lock:
            dom = self._get(instance_id)
            dom.history.append("power_off")
            dom.state = PowerState.SHUTOFF

    def shutdown(self, instance_id: str) -> None:
        with self._lock:
            dom = self._get(instance_id)
            dom.history.append("shutdown")
            if dom.state == PowerState.RUNNING and instance_id not in self.ignore_shutdown:
                dom.state = PowerState.SHUTOFF      # a fake guest powers off at once

    def power_on(self, instance_id: str) -> None:
        with self._lock:
            dom = self._get(instance_id)
            dom.history.append("power_on")
            if dom.state != PowerState.RUNNING:
                self._boot(dom)

    def pause(self, instance_id: str) -> None:
        with self._lock:
            dom = self._get(instance_id)
            if dom.state not in (PowerState.RUNNING, PowerState.PAUSED):
                raise DriverError(f"{DOMAIN_PREFIX}{instance_id} is not running")
            dom.history.append("pause")
            dom.state = PowerState.PAUSED

    def resume(self, instance_id: str) -> None:
        with self._lock:
            dom = self._get(instance_id)
            dom.history.append("resume")
            if dom.state == PowerState.PAUSED:
                dom.state = PowerState.RUNNING

    def history(self, instance_id: str) -> list[str]:
        """The power operations asked of the domain so far, in order ([] when absent)."""
        with self._lock:
            dom = self._domains.get(instance_id)
            return list(dom.history) if dom else []

    def power_state(self, instance_id: str) -> PowerState:
        with self._lock:
            dom = self._domains.get(instance_id)
            return dom.state if dom else PowerState.ABSENT

    def list_domains(self) -> dict[str, PowerState]:
        with self._lock:
            return {iid: dom.state for iid, dom in self._domains.items()}

    def console_output(self, instance_id: str) -> bytes:
        with self._lock:
            dom = self._domains.get(instance_id)
            return bytes(dom.console[-CONSOLE_TAIL:]) if dom else b""

    def attach_disk(self, instance_id: str, disk: DiskSpec) -> None:
        try:
            dx.validate_disk(disk)
        except ValueError as exc:
            raise DriverError(f"cannot attach to {DOMAIN_PREFIX}{instance_id}: {exc}") from exc
        with self._lock:
            dom = self._get(instance_id)
            if disk.target in dom.disks:
                raise DriverError(f"{dom.spec.name}: target {disk.target} is in use")
            dom.disks[disk.target] = copy.deepcopy(disk)

    def detach_disk(self, instance_id: str, target: str) -> None:
        with self._lock:
            self._get(instance_id).disks.pop(target, None)

    def resize_disk(self, instance_id: str, target: str, size_bytes: int) -> None:
        with self._lock:
            dom = self._get(instance_id)
            if target not in dom.disks:
                raise DriverError(f"{dom.spec.name}: no disk at {target}")
            dom.disk_sizes[target] = size_bytes

    def disks(self, instance_id: str) -> list[str]:
        with self._lock:
            return list(self._get(instance_id).disks)   # plug order, as libvirt lists them

    def ensure_network(self, spec: NetworkSpec) -> None:
        with self._lock:
            known = self._networks.get(spec.name)
            if known is not None and (known.bridge, known.gateway, known.prefix) != \
                    (spec.bridge, spec.gateway, spec.prefix):
                raise DriverError(f"network {spec.name} exists with bridge {known.bridge} "
                                  f"and address {known.gateway}/{known.prefix}")
            nx.validate_network(spec)
            self._networks[spec.name] = spec
            hosts = self._hosts.setdefault(spec.name, {})
            if known is None:       # every instance address reserved for its own MAC
                hosts.update({nx.mac_for(ip): ip for ip in nx.instance_addresses(spec)})

    def add_dhcp_host(self, network: str, mac: str, ip: str) -> None:
        with self._lock:
            if network not in self._networks:
                raise DriverError(f"no network {network}")
            hosts = self._hosts[network]
            for old_mac in [m for m, i in hosts.items() if i == ip]:
                del hosts[old_mac]
            hosts[mac.lower()] = ip

    def remove_dhcp_host(self, network: str, mac: str) -> None:
        with self._lock:
            self._hosts.get(network, {}).pop(mac.lower(), None)

    def dhcp_hosts(self, network: str) -> dict[str, str]:
        with self._lock:
            return dict(self._hosts.get(network, {}))

    def dhcp_host(self, network: str, mac: str) -> str | None:
        with self._lock:
            return self._hosts.get(network, {}).get(mac.lower())

    def capacity(self) -> HostCapacity:
        return self._capacity

    def counters(self) -> dict[str, DomainCounters]:
        with self._lock:
            return {iid: DomainCounters(
                cpu_time_ns=dom.cpu_time_ns, vcpus=dom.spec.vcpus,
                disks={target: dom.disk_io.get(target, DiskCounters())
                       for target in dom.disks},
                nics={dom.nic: dom.nic_io.get(dom.nic, NicCounters())})
                for iid, dom in self._domains.items() if dom.state == PowerState.RUNNING}

    def add_usage(self, instance_id: str, cpu_seconds: float = 0.0,
                  disks: dict[str, DiskCounters] | None = None,
                  nic: NicCounters | None = None) -> None:
        """Tests: the guest used *cpu_seconds* of CPU time (all vCPUs together), the I/O
        in *disks* (target -> amounts) and the traffic *nic* since the last call; its
        counters grow by that much. DriverError if absent."""
        with self._lock:
            dom = self._get(instance_id)
            dom.cpu_time_ns += round(cpu_seconds * 1e9)
            for target, more in (disks or {}).items():
                dom.disk_io[target] = _sum(dom.disk_io.get(target, DiskCounters()), more)
            if nic is not None:
                dom.nic_io[dom.nic] = _sum(dom.nic_io.get(dom.nic, NicCounters()), nic)


def _sum(old, more):
    """The counters record *old* plus *more*, field by field."""
    return type(old)(*(a + b for a, b in zip(dataclasses.astuple(old),
                                              dataclasses.astuple(more))))
