"""The node boundary: what the cloud and cluster controllers ask of a node, as one protocol.

A node is a host that runs instances. Everything above this line (the instance lifecycle,
the reconciler, the storage controller's attach and detach) reaches a node only through
:class:`Node`, with plain, serialisable arguments: the records below hold str, int, bool,
lists and dicts, never an ORM row, a Flask app or a callable. So a node on another host can
sit behind the same protocol (its calls sent over the internal API) and nothing above it has
to change.

Implemented today by :class:`eucalite.cluster.localnode.LocalNode`: this host's hypervisor
driver, image cache and instance network.

The records:

* :class:`ImageRef`: an image part the node keeps in its image cache (which image, which
  part, where its bundle's manifest is in Walrus).
* :class:`Endpoint`: an instance's place on the node's instance network (MAC and IP).
* :class:`Launch`: everything the node needs to start one instance.
* a volume's connection is a :class:`~eucalite.cluster.virt.driver.DiskSpec`: the disk
  target (vdb, ...), the serial the guest sees, and either a file on the node (``path``) or
  an iSCSI source (``network``: ``protocol``, ``name`` = ``<iqn>/<lun>``, ``host``,
  ``port``, CHAP ``username``/``password`` and the ``secret_usage`` the node keeps the
  password under), as the storage controller's export drivers make it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .edge.plan import NetworkPlan
from .virt.driver import DiskSpec, DomainCounters, HostCapacity, PowerState

#: The parts of an image a node caches.
IMAGE_PARTS = ("root", "kernel", "ramdisk")


@dataclass(frozen=True)
class ImageRef:
    """One part of an image (``root`` of an EMI, ``kernel`` of an EKI, ``ramdisk`` of an ERI)
    to fetch into the node's cache: *location* is the bundle's manifest in Walrus
    (``bucket/key``), whose parts and digests the fetch verifies (empty for a node that
    reads no files: it fetches nothing)."""

    image_id: str
    part: str
    location: str

    def __post_init__(self) -> None:
        if self.part not in IMAGE_PARTS:
            raise ValueError(f"image part must be one of {IMAGE_PARTS}, not {self.part!r}")


@dataclass(frozen=True)
class Endpoint:
    """An instance's network endpoint on the node: its MAC gets its fixed IP by DHCP."""

    mac: str
    ip: str


@dataclass
class Launch:
    """One instance to start on a node.

    The root disk is either an instance-store image (*root_image*: the node makes a
    copy-on-write overlay on its cached copy, plus an ephemeral disk for the rest of
    *disk_gb*) or an EBS volume (*root_volume*, already exported: a volume connection at
    target ``vda``). *kernel*/*ramdisk* are booted directly. *images_in_use* are the image
    ids of every live instance on the node, which the cache must not evict.
    """

    instance_id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    endpoint: Endpoint | None = None
    root_image: ImageRef | None = None
    kernel: ImageRef | None = None
    ramdisk: ImageRef | None = None
    root_volume: DiskSpec | None = None
    #: EBS data volumes, already exported: volume connections at their targets (vdc, ...)
    volumes: list[DiskSpec] = field(default_factory=list)
    images_in_use: list[str] = field(default_factory=list)


@runtime_checkable
class Node(Protocol):
    """What a node does for the controllers above it. Every method's docstring is its
    contract; failures are :class:`~eucalite.cluster.virt.driver.DriverError` (the node's
    hypervisor refused), :class:`~eucalite.cluster.imagecache.CacheError` (a disk could not
    be made) or the image source's error (a bundle that fails its digests)."""

    #: the node's id (its host name, or ``node_name`` from config)
    node_id: str
    #: whether instances really read files on the node (disks, kernel, console log); the
    #: fake and libvirt's test driver do not, and their launches skip the image cache
    uses_host_files: bool

    def capacity(self) -> HostCapacity:
        """What the node offers to instances (cores, memory, disk)."""

    def domains(self) -> dict[str, PowerState]:
        """Instance id -> power state of every instance domain this cloud runs there."""

    def power_state(self, instance_id: str) -> PowerState:
        """The instance's domain state now (ABSENT when there is none)."""

    def counters(self) -> dict[str, DomainCounters]:
        """Instance id -> cumulative CPU, disk and network counters of every running
        instance domain this cloud runs there, read at once (the CloudWatch collector's
        sample: :meth:`~.virt.driver.HypervisorDriver.counters`). NotSupported where the
        hypervisor keeps no statistics."""

    def fetch_image(self, image: ImageRef) -> str:
        """Afterwards *image* is in the node's cache, verified against its manifest (fetched
        from Walrus on a miss; nothing is kept when it fails). Returns its path on the
        node (meaningful there only)."""

    def spawn(self, launch: Launch) -> None:
        """Fetch the launch's images, make its work files and disks, plug its endpoint and
        start its domain; afterwards the domain is RUNNING. If the domain cannot start,
        nothing of it runs (DriverError); the work files and the DHCP entry stay until
        :meth:`unplug` and :meth:`remove_disks`, which the caller's failure path calls."""

    def destroy(self, instance_id: str) -> None:
        """Stop the instance's domain at once and undefine it. Idempotent."""

    def reboot(self, instance_id: str) -> None:
        """Restart the running domain. DriverError if there is none."""

    def shutdown(self, instance_id: str) -> None:
        """Ask the guest to power itself off cleanly (ACPI); returns at once, the domain
        SHUTOFF (still defined) once the guest complied."""

    def power_off(self, instance_id: str) -> None:
        """Pull the plug on the domain, keeping it defined; afterwards SHUTOFF."""

    def power_on(self, instance_id: str) -> None:
        """Start the defined, shut-off domain again, with the disks it had."""

    def pause(self, instance_id: str) -> None:
        """Freeze the guest's vCPUs (for a consistent copy of its volumes)."""

    def resume(self, instance_id: str) -> None:
        """Let a paused guest run on. Idempotent for a running one."""

    def remove_disks(self, instance_id: str) -> None:
        """Remove an ended instance's disks on the node; its console log stays."""

    def sweep_work(self, known: dict[str, bool]) -> list[str]:
        """After a crash: remove the node's files of every instance not in *known*
        (instance id -> whether it ended) and the disks of those that ended. Returns the
        instance ids tidied."""

    def console_output(self, instance_id: str) -> bytes:
        """The last 64 KiB the guest wrote to its serial console: from the domain while it
        exists, else from the log the node keeps until the instance is forgotten (b""
        when there is none)."""

    def attach_volume(self, instance_id: str, disk: DiskSpec) -> None:
        """Hot-plug the volume connection *disk* into the running domain at ``disk.target``
        (secrets it needs are kept on the node until it is detached). NotSupported where
        the hypervisor cannot hot-plug."""

    def detach_volume(self, instance_id: str, target: str) -> None:
        """Unplug the disk at *target*; afterwards it is not listed. Idempotent."""

    def resize_volume(self, instance_id: str, target: str, size_bytes: int) -> None:
        """Tell the running domain its disk at *target* now holds *size_bytes* (the volume
        grew), so the guest sees the new size at once. NotSupported where the hypervisor
        cannot."""

    def disks(self, instance_id: str) -> list[str]:
        """Targets (vda, vdb, ...) of the disks the domain has now."""

    def plug(self, endpoint: Endpoint) -> str:
        """Afterwards *endpoint*'s MAC gets its IP by DHCP on the node's instance network;
        returns the network's name for the domain's NIC."""

    def unplug(self, endpoint: Endpoint) -> None:
        """The instance ended: its DHCP lease is released, so the address is free at once
        (the reservation stays for the next instance of that address)."""

    def apply_network(self, plan: NetworkPlan, reread: bool = False) -> None:
        """Afterwards the node's data plane enforces exactly *plan* (see
        :mod:`.edge.plan`): rules of instances no longer in it are gone, unchanged ones
        untouched. Idempotent; safe to call with the same plan again (a reconcile pass).
        *reread*: check against what the kernel holds, not what was applied last, so a
        rule lost or changed behind the node's back is repaired (a reconcile pass)."""
