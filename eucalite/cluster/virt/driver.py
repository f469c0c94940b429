"""The hypervisor driver contract every node-controller backend implements.

Drivers run domains and report facts; they never touch the database (services record what
drivers report). Every method's docstring states its postcondition; the contract test suite
(tests/test_virt_contract.py) checks them against every driver available on the machine.
Domain names are ``eucalite-<instance id>``; drivers list and touch only such domains.
"""
from __future__ import annotations

import abc
import enum
import os
from dataclasses import dataclass, field

DOMAIN_PREFIX = "eucalite-"
CONSOLE_TAIL = 64 * 1024


def read_tail(path: str, limit: int = CONSOLE_TAIL) -> bytes:
    """The last *limit* bytes of the file at *path* (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read(limit)
    except OSError:
        return b""


class PowerState(str, enum.Enum):
    RUNNING = "running"
    SHUTOFF = "shutoff"       # defined, not running (stopped or shut down from inside)
    PAUSED = "paused"
    CRASHED = "crashed"
    ABSENT = "absent"         # no such domain


class DriverError(Exception):
    """A hypervisor operation failed; the message says what and why, for logs and users."""


class NotSupported(DriverError):
    """The driver cannot do this at all (e.g. hot-plug on libvirt's test driver)."""


@dataclass
class DiskSpec:
    """A disk for a domain: a file on this host, or a network (iSCSI/NBD) source."""

    target: str                       # vda, vdb, ...
    path: str | None = None           # file path (qcow2 or raw)
    format: str = "qcow2"             # qcow2 | raw
    serial: str | None = None         # shows in the guest as /sys/block/*/serial
    read_only: bool = False
    network: dict | None = None       # {"protocol": "iscsi", "name": ..., "host": ..., ...}


@dataclass
class DomainSpec:
    """Everything needed to start one instance's domain."""

    instance_id: str
    vcpus: int
    memory_mb: int
    kernel: str | None = None         # direct kernel boot (EKI) ...
    ramdisk: str | None = None        # ... with its ramdisk (ERI)
    cmdline: str = "console=ttyS0 root=/dev/vda"
    disks: list[DiskSpec] = field(default_factory=list)
    mac: str | None = None
    network: str | None = None        # libvirt network name the NIC joins
    tap: str | None = None            # the NIC's host-side name (None: the hypervisor's)
    console_log: str | None = None    # file the serial console is written to
    cloud: str | None = None          # id of the eucalite that owns it (domain metadata)

    @property
    def name(self) -> str:
        return DOMAIN_PREFIX + self.instance_id


@dataclass(frozen=True)
class NetworkSpec:
    """The node's private instance network: a bridge with a subnet and static DHCP.

    The bridge gets ``gateway``/``prefix``; every instance gets a fixed address through a
    DHCP host entry (MAC -> IP) and ``gateway`` as its router, so the metadata address
    ``metadata_ip`` (placed on the bridge too, by the host side) is reachable from any guest.
    """

    name: str = "eucalite"
    bridge: str = "eucabr0"
    gateway: str = "10.211.0.1"
    prefix: int = 24
    lease_minutes: int = 10
    metadata_ip: str | None = "169.254.169.254"
    #: routed to and from the rest of the host (libvirt's ``<forward mode='open'/>``: no
    #: firewall rules of libvirt's own; eucalite's data plane filters): when the cloud has
    #: a public interface. Else isolated.
    routed: bool = False


@dataclass(frozen=True)
class DiskCounters:
    """A disk's I/O since its domain started: bytes and requests read and written."""

    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0


@dataclass(frozen=True)
class NicCounters:
    """A NIC's traffic since its domain started, as the guest sees it: received (rx) and
    sent (tx) bytes and packets."""

    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0


@dataclass(frozen=True)
class DomainCounters:
    """A running domain's cumulative counters: CPU time of all its vCPUs (ns), its vCPU
    count, and per disk target (vda, ...) and per NIC (its host-side name) the I/O since it
    started. CloudWatch's metrics are deltas of two samples (:mod:`eucalite.cloudwatch.
    collector`); a counter lower than before means the domain started again."""

    cpu_time_ns: int
    vcpus: int
    disks: dict[str, DiskCounters] = field(default_factory=dict)
    nics: dict[str, NicCounters] = field(default_factory=dict)


@dataclass(frozen=True)
class HostCapacity:
    cores: int
    memory_mb: int
    disk_gb: int


class HypervisorDriver(abc.ABC):
    """What the node controller needs from a hypervisor."""

    #: short name for logs and errors ("fake", "libvirt")
    name = "abstract"
    #: whether domains really read the disk, kernel and console files named in their specs
    #: (so the node must make them); drivers that only pretend (fake, libvirt's test
    #: driver) let launches skip the image cache
    uses_host_files = True

    @abc.abstractmethod
    def spawn(self, spec: DomainSpec) -> None:
        """Define and start the domain, with what its disks need on the node (the CHAP
        secrets of iSCSI disks, kept until the domain is destroyed or the disk detached).
        Afterwards ``power_state`` is RUNNING. If spawn fails, nothing of the domain is left
        (not defined, not running, no secret it defined) and DriverError is raised.
        Spawning a name that already exists raises DriverError."""

    @abc.abstractmethod
    def destroy(self, instance_id: str) -> None:
        """Stop the domain at once and undefine it. Idempotent: afterwards the state is
        ABSENT whether or not it existed."""

    @abc.abstractmethod
    def reboot(self, instance_id: str) -> None:
        """Restart a running domain; afterwards it is RUNNING. DriverError if absent."""

    @abc.abstractmethod
    def power_off(self, instance_id: str) -> None:
        """Stop the domain but keep it defined; afterwards SHUTOFF. Idempotent for a
        domain already off; DriverError if absent."""

    @abc.abstractmethod
    def shutdown(self, instance_id: str) -> None:
        """Ask the guest to power itself off cleanly (ACPI's power button); returns at once.
        The domain is SHUTOFF, still defined, once the guest complied; a guest that
        ignores the request runs on (the caller waits with a deadline, then
        ``power_off``). Nothing for a domain already off; DriverError if absent."""

    @abc.abstractmethod
    def power_on(self, instance_id: str) -> None:
        """Start a defined, stopped domain; afterwards RUNNING. DriverError if absent."""

    @abc.abstractmethod
    def pause(self, instance_id: str) -> None:
        """Stop the guest's vCPUs (it keeps its memory and devices); afterwards PAUSED.
        DriverError if absent or not running."""

    @abc.abstractmethod
    def resume(self, instance_id: str) -> None:
        """Let a paused guest run on; afterwards RUNNING. Idempotent for a running one."""

    @abc.abstractmethod
    def power_state(self, instance_id: str) -> PowerState:
        """The domain's state now (ABSENT when there is no such domain)."""

    @abc.abstractmethod
    def list_domains(self) -> dict[str, PowerState]:
        """Instance id -> state for every domain named with DOMAIN_PREFIX, and no other;
        where the driver was made for one cloud, only the domains that cloud spawned (so
        two eucalites sharing a hypervisor never take each other's domains for orphans)."""

    @abc.abstractmethod
    def console_output(self, instance_id: str) -> bytes:
        """The last CONSOLE_TAIL bytes the guest wrote to its serial console (b"" if none);
        still available after the domain stops, until it is destroyed."""

    @abc.abstractmethod
    def attach_disk(self, instance_id: str, disk: DiskSpec) -> None:
        """Hot-plug *disk* into the running domain; afterwards it is listed by
        ``disks``. NotSupported where the driver cannot hot-plug."""

    @abc.abstractmethod
    def detach_disk(self, instance_id: str, target: str) -> None:
        """Unplug the disk at *target*; afterwards it is not listed. Idempotent."""

    @abc.abstractmethod
    def resize_disk(self, instance_id: str, target: str, size_bytes: int) -> None:
        """The running domain's disk at *target* (its data already grown to *size_bytes*)
        is *size_bytes* to the guest from now on. NotSupported where the driver cannot."""

    @abc.abstractmethod
    def disks(self, instance_id: str) -> list[str]:
        """Targets of the disks the domain has now (vda, vdb, ...)."""

    # -- the instance network ------------------------------------------------------------------

    @abc.abstractmethod
    def ensure_network(self, spec: NetworkSpec) -> None:
        """Afterwards the network *spec* names exists, is active and starts with the host,
        and every instance address of its subnet is reserved by DHCP for the MAC derived
        from it (``network_xml.mac_for``) unless another entry holds it. An existing network
        of that name with another bridge or subnet is a DriverError (never silently
        reconfigured: running guests may be on it)."""

    @abc.abstractmethod
    def add_dhcp_host(self, network: str, mac: str, ip: str) -> None:
        """Afterwards *mac* gets *ip* by DHCP on *network* (listed by ``dhcp_hosts``).
        Idempotent; replaces an older entry for the same MAC or IP."""

    @abc.abstractmethod
    def remove_dhcp_host(self, network: str, mac: str) -> None:
        """Afterwards *mac* has no entry on *network*, and any lease it holds is released
        where the host can release leases. Idempotent."""

    @abc.abstractmethod
    def dhcp_hosts(self, network: str) -> dict[str, str]:
        """MAC -> IP of every DHCP host entry on *network* ({} if it does not exist)."""

    def dhcp_host(self, network: str, mac: str) -> str | None:
        """The IP *mac* is reserved on *network*, or None."""
        return self.dhcp_hosts(network).get(mac.lower())

    def release_lease(self, network: str, mac: str, ip: str) -> None:
        """Make the DHCP server forget *mac*'s lease of *ip* where the host can (default:
        nothing to release; the lease expires by itself)."""

    def dhcp_leases(self, network: str) -> dict[str, str]:
        """MAC -> IP of the leases the DHCP server holds now ({} where unknown)."""
        return {}

    @abc.abstractmethod
    def capacity(self) -> HostCapacity:
        """What this host offers to instances."""

    @abc.abstractmethod
    def counters(self) -> dict[str, DomainCounters]:
        """Instance id -> the cumulative counters of every *running* domain that
        ``list_domains`` lists, read in one pass (domains not running are left out). Each
        counter never decreases while its domain keeps running (a reboot or power cycle may
        restart it from 0); ``vcpus`` >= 1; the disk targets are among ``disks``.
        NotSupported where the hypervisor keeps no such statistics (libvirt's test
        driver)."""

    def close(self) -> None:
        """Release the hypervisor connection (default: nothing to release)."""
