"""This host as a node: the :class:`~eucalite.cluster.node.Node` protocol over the local
hypervisor driver, image cache and instance network.

What a launch becomes on this host: the image parts in ``<data_dir>/image-cache``, the
instance's work files in ``<data_dir>/instances/<id>`` (a copy-on-write root overlay, an
ephemeral disk, the console log; see :mod:`.imagecache`), a DHCP entry on the instance
network (:mod:`.network`) and a domain built from a :class:`~.virt.driver.DomainSpec`
whose NIC is named after the instance's address (:func:`~.edge.plan.tap_name`), so its
security-group rules (the node's *firewall*, :mod:`.edge.firewall`) are in place before
the domain starts.

The image cache is filled by an *image source*, ``source(image, out)``, which writes the
verified image *image* (an :class:`~.node.ImageRef`) into the binary file *out*; the cloud
controller supplies it (it reads bundles from Walrus), so the node knows nothing of bundles.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

from . import imagecache, network
from .edge.firewall import Firewall
from .edge.plan import NetworkPlan, tap_name
from .imagecache import ImageCache
from .node import Endpoint, ImageRef, Launch
from .virt.driver import DiskSpec, DomainCounters, DomainSpec, DriverError, HostCapacity, \
    PowerState, read_tail

#: ``source(image, out)``: write *image*'s verified bytes into *out* (raise to refuse)
ImageSource = Callable[[ImageRef, BinaryIO], None]


class LocalNode:
    """This host's node (see the module docstring); one per node duty, made by
    :class:`~eucalite.cluster.service.ClusterService` when node duty starts."""

    def __init__(self, node_id: str, driver: HypervisorDriver, cache: ImageCache,
                 config: Mapping[str, Any], image_source: ImageSource | None,
                 firewall: Firewall | None = None):
        self.node_id = node_id
        self.firewall = firewall
        self.driver = driver
        self.cache = cache
        self.config = config
        self.image_source = image_source

    @property
    def uses_host_files(self) -> bool:
        return self.driver.uses_host_files

    def _work(self, instance_id: str) -> Path:
        return imagecache.work_dir(self.config["data_dir"], instance_id)

    # -- facts -------------------------------------------------------------------------------

    def capacity(self) -> HostCapacity:
        return self.driver.capacity()

    def domains(self) -> dict[str, PowerState]:
        return self.driver.list_domains()

    def power_state(self, instance_id: str) -> PowerState:
        return self.driver.power_state(instance_id)

    def counters(self) -> dict[str, DomainCounters]:
        return self.driver.counters()

    def console_output(self, instance_id: str) -> bytes:
        output = self.driver.console_output(instance_id)
        # the domain is gone (terminated) but its log stays until the instance is forgotten
        return output or read_tail(str(self._work(instance_id) / "console.log"))

    def disks(self, instance_id: str) -> list[str]:
        return self.driver.disks(instance_id)

    # -- images ------------------------------------------------------------------------------

    def fetch_image(self, image: ImageRef) -> str:
        if self.image_source is None:
            raise imagecache.CacheError("this node has no image source to fill its cache from")
        source = self.image_source
        return str(self.cache.ensure(image.image_id, image.part,
                                     lambda out: source(image, out)))

    # -- the instance's domain ---------------------------------------------------------------

    def spawn(self, launch: Launch) -> None:
        if self.uses_host_files:
            # the console log goes there whatever the root is
            self._work(launch.instance_id).mkdir(parents=True, exist_ok=True)
        net = self.plug(launch.endpoint) if launch.endpoint else None
        self.driver.spawn(self._domain(launch, net))

    def _domain(self, launch: Launch, net: str | None) -> DomainSpec:
        """The domain of *launch*: its images fetched and its disks made where domains read
        files; elsewhere the paths are where they would be."""
        work = self._work(launch.instance_id)
        parts: dict[str, Path] = {}
        if self.uses_host_files:
            for ref in (launch.root_image, launch.kernel, launch.ramdisk):
                if ref is not None:
                    parts[ref.part] = Path(self.fetch_image(ref))
        disks = {"root": work / "root.qcow2"}
        if launch.root_volume is None and self.uses_host_files:
            disks = imagecache.make_disks(work, parts["root"], launch.disk_gb)
            self.cache.evict(launch.images_in_use)
        kernel = parts.get("kernel") or (self.cache.path(launch.kernel.image_id, "kernel")
                                         if launch.kernel else None)
        ramdisk = parts.get("ramdisk") or (self.cache.path(launch.ramdisk.image_id, "ramdisk")
                                           if launch.ramdisk else None)
        specs = [launch.root_volume or DiskSpec(target="vda", path=str(disks["root"]),
                                                format="qcow2")]
        if disks.get("ephemeral0"):
            specs.append(DiskSpec(target="vdb", path=str(disks["ephemeral0"]), format="qcow2",
                                  serial="ephemeral0"))
        specs += launch.volumes
        return DomainSpec(
            instance_id=launch.instance_id, vcpus=launch.vcpus, memory_mb=launch.memory_mb,
            mac=launch.endpoint.mac if launch.endpoint else None, network=net,
            tap=tap_name(launch.endpoint.ip) if launch.endpoint else None,
            kernel=str(kernel) if kernel else None, ramdisk=str(ramdisk) if ramdisk else None,
            disks=specs, console_log=str(work / "console.log"))

    def destroy(self, instance_id: str) -> None:
        self.driver.destroy(instance_id)

    def reboot(self, instance_id: str) -> None:
        self.driver.reboot(instance_id)

    def shutdown(self, instance_id: str) -> None:
        self.driver.shutdown(instance_id)

    def power_off(self, instance_id: str) -> None:
        self.driver.power_off(instance_id)

    def power_on(self, instance_id: str) -> None:
        self.driver.power_on(instance_id)

    def pause(self, instance_id: str) -> None:
        self.driver.pause(instance_id)

    def resume(self, instance_id: str) -> None:
        self.driver.resume(instance_id)

    def remove_disks(self, instance_id: str) -> None:
        imagecache.remove_disks(self._work(instance_id))

    def sweep_work(self, known: dict[str, bool]) -> list[str]:
        return imagecache.sweep_work_dirs(self.config["data_dir"], known)

    # -- volumes -----------------------------------------------------------------------------

    def attach_volume(self, instance_id: str, disk: DiskSpec) -> None:
        self.driver.attach_disk(instance_id, disk)

    def detach_volume(self, instance_id: str, target: str) -> None:
        self.driver.detach_disk(instance_id, target)

    def resize_volume(self, instance_id: str, target: str, size_bytes: int) -> None:
        self.driver.resize_disk(instance_id, target, size_bytes)

    # -- the instance network ----------------------------------------------------------------

    def plug(self, endpoint: Endpoint) -> str:
        return network.plug(self.driver, self.config, endpoint.mac, endpoint.ip)

    def unplug(self, endpoint: Endpoint) -> None:
        network.unplug(self.driver, self.config, endpoint.mac, endpoint.ip)

    def apply_network(self, plan: NetworkPlan, reread: bool = False) -> None:
        if self.firewall is None:
            raise DriverError("this node has no data plane for security groups")
        self.firewall.apply(plan, reread)
