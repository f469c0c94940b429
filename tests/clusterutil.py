"""A fake multi-node cluster for the fast suite: a live server (node duty off on its own
host) whose cluster has N more nodes in several zones, each a
:class:`~eucalite.cluster.localnode.LocalNode` over its own in-memory hypervisor, registered
in the nodes table (:func:`eucalite.cluster.nodes.register`) and attached to the server's
:class:`~eucalite.cluster.service.ClusterService`, as a joined node will be. RunInstances,
the job worker, the reconciler and the failure monitor then run unchanged over them; only
the hypervisors are fakes, and a test can make one go silent (:meth:`FakeCluster.silence`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eucalite.cluster import network, nodes
from eucalite.cluster.edge.firewall import FakeFirewall
from eucalite.cluster.localnode import LocalNode
from eucalite.cluster.virt.driver import DriverError, HostCapacity
from eucalite.cluster.virt.fake import FakeDriver
from eucalite.compute import reconcile

from liveutil import start_live, stop_live

#: What a silent host stops answering (every call the node makes on its hypervisor).
_HYPERVISOR_CALLS = frozenset({
    "spawn", "destroy", "list_domains", "power_state", "reboot", "shutdown", "power_off",
    "power_on", "pause", "resume", "console_output", "disks", "attach_disk", "detach_disk",
    "capacity", "ensure_network", "add_dhcp_host", "remove_dhcp_host"})


class SilentableDriver(FakeDriver):
    """The in-memory hypervisor of a host that may stop answering: while ``silent`` every
    hypervisor call raises DriverError, as a dead host's connection does. Its domains stay
    as they were (a host cut off keeps running its guests)."""

    silent = False

    def __getattribute__(self, name):
        if name in _HYPERVISOR_CALLS and object.__getattribute__(self, "silent"):
            raise DriverError(f"cannot reach the hypervisor ({name}): host silent")
        return super().__getattribute__(name)


@dataclass
class FakeCluster:
    """The fake nodes of a live server: node id -> its driver, and their zones."""

    live: object
    server: object
    drivers: dict[str, SilentableDriver] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)       # node id -> zone

    @property
    def services(self):
        return self.live.app.extensions["eucalite"]

    def in_zone(self, zone: str) -> list[str]:
        return sorted(node_id for node_id, name in self.zones.items() if name == zone)

    def silence(self, node_id: str) -> None:
        """*node_id*'s host stops answering."""
        self.drivers[node_id].silent = True

    def revive(self, node_id: str) -> None:
        """*node_id*'s host answers again (with the domains it kept)."""
        self.drivers[node_id].silent = False

    def reconcile(self, **kwargs):
        """One reconciler pass over every attached node, the status board fed."""
        with self.live.app.app_context():
            return reconcile.reconcile(self.services.cluster, self.services.ebs,
                                       board=self.services.compute.status_board, **kwargs)

    def check_nodes(self, now):
        """The failure monitor's pass as if at *now* (a datetime): the silent nodes' ids."""
        with self.live.app.app_context():
            return self.services.cluster.check_nodes(now)

    def domains(self) -> dict[str, str]:
        """Every domain on every fake host: instance id -> node id."""
        return {instance_id: node_id for node_id, driver in self.drivers.items()
                for instance_id in FakeDriver.list_domains(driver)}

    def stop(self) -> None:
        stop_live(self.live, self.server)


def node_name(zone: str, index: int) -> str:
    return f"{zone}-node{index:03d}"


def attach_fake_node(services, node_id: str, zone: str, capacity: HostCapacity,
                     driver: SilentableDriver | None = None) -> SilentableDriver:
    """Register *node_id* in *zone* and attach its LocalNode over *driver* (a new one by
    default) to the cluster: what joining and the node's first heartbeat will do."""
    config = services.config
    driver = driver or SilentableDriver(capacity)
    driver.ensure_network(network.spec(config))
    nodes.register(node_id, zone, capacity, "fake://")
    services.cluster.attach(LocalNode(node_id, driver, services.cluster.image_cache, config,
                                      None, FakeFirewall(network.edge_host(config))))
    return driver


def start_cluster(data_dir: Path, zones: dict[str, int], *, cores: int = 4,
                  memory_mb: int = 8192, disk_gb: int = 200, **config) -> FakeCluster:
    """A live server whose cluster has ``zones[name]`` fake nodes in each zone *name* (the
    config's ``zones``, in that order), each of *cores*/*memory_mb*/*disk_gb*. *config*
    goes to the server's config (``scheduler``, ``node_timeout``, ``cpu_overcommit``...).
    Stop it with :meth:`FakeCluster.stop`."""
    config.setdefault("cpu_overcommit", 1.0)
    live, server = start_live(data_dir, hypervisor="fake", zones=list(zones), **config)
    live.services = live.app.extensions["eucalite"]
    cluster = FakeCluster(live, server)
    capacity = HostCapacity(cores, memory_mb, disk_gb)
    with live.app.app_context():
        for zone, count in zones.items():
            for index in range(count):
                node_id = node_name(zone, index)
                cluster.drivers[node_id] = attach_fake_node(live.services, node_id, zone,
                                                            capacity)
                cluster.zones[node_id] = zone
    return cluster


def restart(cluster: FakeCluster, data_dir: Path, **config) -> FakeCluster:
    """A new server over the same data dir (the same database), its cluster reattached to
    the same hosts (their drivers, with the domains they run): a controller restart. The
    old server is stopped first, leaving the hosts' domains as they are."""
    config.setdefault("cpu_overcommit", 1.0)
    old = cluster.services
    cluster.server.shutdown()
    old.compute.worker.shutdown()
    zones = list(dict.fromkeys(cluster.zones.values()))
    live, server = start_live(data_dir, hypervisor="fake", zones=zones, **config)
    live.services = live.app.extensions["eucalite"]
    new = FakeCluster(live, server, dict(cluster.drivers), dict(cluster.zones))
    with live.app.app_context():
        for node_id, driver in new.drivers.items():
            live.services.cluster.attach(LocalNode(
                node_id, driver, live.services.cluster.image_cache, live.services.config,
                None, FakeFirewall(network.edge_host(live.services.config))))
    return new
