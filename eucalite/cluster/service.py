"""The cluster controller's service object: zones, this host's node duty and its driver.

One availability zone per cluster, named in config (``zones``). With node duty on, this host
is a node: :meth:`ClusterService.start_node_duty` opens the hypervisor driver, registers the
node with its capacity and makes its :class:`~.localnode.LocalNode`. Every node the
controller can reach joins a registry of :class:`~.node.Node` objects by id
(:meth:`ClusterService.attach`: the local node, and remote nodes); whoever needs a node asks
:meth:`ClusterService.node_for` and gets one. :meth:`ClusterService.check_nodes` is the failure
monitor (``node_timeout``). With node duty off no
hypervisor connection is ever opened, and whoever asks for a node is told plainly why there
is none.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ServiceUnavailable
from . import joining, network, nodes
from .commands import CommandQueue
from .edge.firewall import FakeFirewall, Firewall, FirewallError, NftFirewall
from .imagecache import GiB, ImageCache
from .localnode import ImageSource, LocalNode
from .models import Node as NodeRow
from .node import Node
from .nodeimages import BundleReader
from .remotenode import RemoteNode
from .scheduler import Overcommit
from .virt.driver import DriverError, HypervisorDriver
from .virt.fake import FakeDriver
from .virt.libvirt_driver import LibvirtDriver

NETWORK_HINT = ("the instance network needs libvirt's dnsmasq and iproute2 "
                "(apt install dnsmasq-base iproute2)")
NETWORK_OFF = "security groups and public IPs are OFF"

log = logging.getLogger(__name__)


def cloud_id(data_dir: Path) -> str:
    """This cloud's id (made on first use), recorded in the domains it spawns."""
    path = data_dir / "cloud-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        value = str(uuid.uuid4())
        partial = path.with_suffix(".partial")
        partial.write_text(value + "\n")
        partial.replace(path)
        return value


def open_work_dirs(data_dir: Path) -> str | None:
    """Let QEMU, which libvirt runs as its own user, reach the files of instances.

    The data dir gets search permission for others (o+x: enter, not list), and so do its
    ``image-cache``, ``instances`` and ``volumes`` dirs; everything else in the data dir (database, object
    store, keys) loses any access for group and others, so only those two are reachable.
    Returns what is wrong if a parent directory still bars the way.
    """
    shared = {"image-cache", "instances", "volumes"}
    for name in shared:
        (data_dir / name).mkdir(parents=True, exist_ok=True)
    for entry in data_dir.iterdir():
        mode = stat.S_IMODE(entry.lstat().st_mode)
        wanted = (mode | stat.S_IXOTH) if entry.name in shared else (mode & 0o700)
        if wanted != mode and not entry.is_symlink():
            os.chmod(entry, wanted)
    os.chmod(data_dir, stat.S_IMODE(data_dir.stat().st_mode) & 0o700 | stat.S_IXOTH)
    for parent in data_dir.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return (f"QEMU runs as its own user and cannot reach files under {parent} "
                    f"(mode {stat.filemode(parent.stat().st_mode)}): run `chmod o+x "
                    f"{parent}` or choose a data dir under /var/lib")
    return None


class NodeDutyOff(DriverError):
    """This host cannot be a node; the message says why and what to install."""


@dataclass(frozen=True)
class Zone:
    name: str
    zone_id: str
    region: str
    state: str = "available"
    messages: tuple[str, ...] = field(default_factory=tuple)


class ClusterService:
    """Zones and this host's node duty. *image_source* fills the local node's image cache
    (the cloud controller's bundle reader; see :mod:`.localnode`)."""

    def __init__(self, config: Mapping[str, Any], image_source: ImageSource | None = None):
        self.config = config
        self.image_source = image_source
        #: ``answer(node_id, private_ip, environ)``: the metadata service's response to a
        #: guest of a joined node (the internal API's metadata route), given by the wiring
        #: (:func:`eucalite.compute.nodemetadata.answerer`); None: no metadata for them.
        self.node_metadata = None
        region = config["region"]
        prefix = "".join(ch for ch in region if ch.isalnum())[:4] or "zone"
        self._zones = [Zone(name=name, zone_id=f"{prefix}-az{index}", region=region)
                       for index, name in enumerate(config["zones"], 1)]
        #: The reachable nodes' Node objects by node id (this host's, and remote ones).
        self._nodes: dict[str, Node] = {}
        self._lock = threading.Lock()
        #: Why node duty is not running on this host (None when it is, or was not asked for).
        self.node_problem: str | None = None
        #: This host's node id once node duty started (kept when the driver is closed).
        self.local_node_id: str | None = None
        #: Why guests get no metadata although node duty is on (None when they do).
        self.metadata_problem: str | None = None
        #: Why security groups and public IPs are not enforced on this host's node (None
        #: when they are): set when node duty starts its data plane.
        self.network_problem: str | None = None
        self.image_cache = ImageCache(Path(config["data_dir"]) / "image-cache",
                                      int(config.get("image_cache_gb", 20)) * GiB)
        #: Bundles read for nodes on other hosts (the internal API's image routes), given
        #: by the wiring (:class:`~.nodeimages.BundleReader`); None: no images for them.
        self.bundles: BundleReader | None = None
        #: The joined nodes' command queues (their RemoteNodes submit, their agents poll);
        #: half the server's request threads may hold a waiting poll.
        self.commands = CommandQueue(float(config.get("node_timeout", 90)),
                                     max_waiters=int(config.get("threads", 16)) // 2)

    def zones(self) -> list[Zone]:
        """Every availability zone, in configured order, with its state from its nodes
        (:func:`.nodes.zone_states`; needs an app context)."""
        states = nodes.zone_states(zone.name for zone in self._zones)
        return [Zone(zone.name, zone.zone_id, zone.region, *states[zone.name])
                for zone in self._zones]

    def zone_names(self) -> list[str]:
        """The configured zones' names, in order (no database read)."""
        return [zone.name for zone in self._zones]

    # -- the nodes of the cluster, for the administrator (CLI and console) ---------------------

    @staticmethod
    def list_nodes() -> list[NodeRow]:
        """Every registered node (with its capacity and usage), by zone then id."""
        return nodes.list_nodes()

    @staticmethod
    def set_node_state(node_id: str, state: str) -> NodeRow:
        """Enable, disable or drain *node_id* for new instances
        (``enabled``/``disabled``/``draining``); InvalidParameterValue for another state or
        an unknown node."""
        return nodes.set_state(node_id, state)

    def remove_node(self, node_id: str) -> NodeRow:
        """Take *node_id* out of the cluster (:func:`.nodes.remove`: refused while it runs
        instances), revoke its internal-API keys and forget its Node object; returns the
        removed row."""
        row = nodes.remove(node_id)
        joining.revoke(node_id)
        self.detach(node_id)
        self.commands.forget(node_id)
        return row

    def check_nodes(self, now=None) -> list[str]:
        """The failure monitor's pass: nodes silent for longer than ``node_timeout`` seconds
        are marked (:func:`.nodes.mark_silent`; calls to a joined one fail at once from
        now); returns their ids. Joined nodes removed meanwhile (`eucalite node remove` in
        another process) are forgotten. *now* is for tests."""
        timeout = float(self.config.get("node_timeout", 90))
        silent = nodes.mark_silent(timeout, now)
        for node_id in silent:
            if node_id != self.local_node_id:
                self.commands.mark_down(node_id, f"no heartbeat for {timeout:g} s")
        joined = {node_id for node_id, _, _ in nodes.joined()}
        for node in self.reachable():
            if isinstance(node, RemoteNode) and node.node_id not in joined:
                self.detach(node.node_id)
                self.commands.forget(node.node_id)
        return silent

    # -- the registry of reachable nodes -----------------------------------------------------

    def attach(self, node: Node) -> None:
        """Make *node* (its ``node_id`` registered in the nodes table) reachable through
        :meth:`node_for`, replacing an earlier object for the same id."""
        with self._lock:
            self._nodes[node.node_id] = node

    def attach_remote(self, node_id: str, hypervisor_uri: str, restarted: bool = False) -> None:
        """Drive the joined node *node_id* (registered with *hypervisor_uri*) through its
        command queue: a :class:`~.remotenode.RemoteNode` in the registry, unless one for
        that hypervisor is there already. *restarted*: the node's agent has just started
        (it registered), so commands its previous process took are failed now."""
        if node_id == self.local_node_id:
            return
        if restarted:
            self.commands.restarted(node_id)
        with self._lock:
            known = self._nodes.get(node_id)
            if not isinstance(known, RemoteNode) or known.hypervisor_uri != hypervisor_uri:
                self._nodes[node_id] = RemoteNode(node_id, self.commands, hypervisor_uri)

    def attach_joined(self) -> list[str]:
        """At the controller's start: drive every registered node that joined over the
        internal API (its key is live), so a restart needs no node to join again; an
        unreachable one takes no command until it polls. Returns their ids (needs an app
        context)."""
        attached = []
        for node_id, hypervisor_uri, state in nodes.joined():
            self.attach_remote(node_id, hypervisor_uri)
            if state == nodes.UNREACHABLE:
                self.commands.mark_down(node_id, "unreachable when the controller started")
            attached.append(node_id)
        return attached

    def detach(self, node_id: str) -> Node | None:
        """Forget *node_id*'s Node object (None if there was none)."""
        with self._lock:
            return self._nodes.pop(node_id, None)

    def attached_ids(self) -> frozenset[str]:
        """The ids of the nodes this controller can drive (those :meth:`attach`-ed)."""
        with self._lock:
            return frozenset(self._nodes)

    def reachable(self) -> list[Node]:
        """Every attached Node object, by node id (the reconciler's passes go over these)."""
        with self._lock:
            return [self._nodes[node_id] for node_id in sorted(self._nodes)]

    def node_capacities(self) -> list[nodes.NodeCapacity]:
        """Every node, by zone then id, with what it may hold: its own overcommit ratios,
        else the config's."""
        return nodes.node_capacities(Overcommit.of(self.config))

    @staticmethod
    def set_node_overcommit(node_id: str, cpu: Any = nodes.KEEP,
                            memory: Any = nodes.KEEP) -> NodeRow:
        """Set *node_id*'s own overcommit ratios (``default`` for the config's):
        :func:`.nodes.set_overcommit`."""
        return nodes.set_overcommit(node_id, cpu, memory)

    def open_driver(self) -> HypervisorDriver:
        """The configured hypervisor driver (raises DriverError with what to install)."""
        kind = self.config.get("hypervisor", "libvirt")
        if kind == "fake":
            return FakeDriver()
        if kind == "libvirt":
            # libvirt-python itself is imported only now, by the driver (an optional package)
            return LibvirtDriver(self.config["libvirt_uri"], state_dir=self.config["data_dir"],
                                 cloud=cloud_id(Path(self.config["data_dir"])))
        raise DriverError(f"Unknown hypervisor {kind!r}: use libvirt or fake.")

    def start_node_duty(self) -> str | None:
        """Start this host's node duty (:meth:`start_host`) and register it as a node in its
        zone (needs an app context).

        Returns None on success, else the reason node duty is off, which is also kept in
        ``node_problem`` for the start-up banner and API errors.
        """
        if not self.config.get("node"):
            self.node_problem = "node duty is off on this host (--no-node)"
            return self.node_problem
        try:
            local = self.start_host(nodes.local_node_id(self.config), self.image_source)
        except NodeDutyOff as error:
            self.node_problem = str(error)
            log.warning(self.node_problem)
            return self.node_problem
        node = nodes.register_local(self.config, local.capacity(),
                                    self.config.get("libvirt_uri", ""))
        self.local_node_id = node.id
        self.attach(local)
        self.node_problem = None
        return None

    def start_host(self, node_id: str, image_source: ImageSource | None) -> LocalNode:
        """This host as the node *node_id*, with no database: the hypervisor driver, the
        instance network, the work dirs QEMU reads, the data plane (``network_problem``
        says why when security groups cannot be enforced) and the image cache, filled by
        *image_source*. The controller's own node duty and a joined host's agent both
        start here. Raises NodeDutyOff saying why this host cannot be a node."""
        try:
            driver = self.open_driver()
            driver.capacity()
        except (DriverError, ImportError) as error:
            raise NodeDutyOff(f"node duty is off: {error}. Install and start libvirt "
                              "(apt install libvirt-daemon-system qemu-system-x86 "
                              "qemu-utils dnsmasq-base; virtlogd -d; libvirtd -d) or "
                              "serve with --no-node.") from None
        nft = self._nft_firewall(driver)
        try:
            forwarding = nft.global_forwarding() if nft is not None else None
        except FirewallError:
            forwarding = None       # nft's problem() says why below
        try:
            driver.ensure_network(network.spec(self.config))
        except (DriverError, ValueError) as error:
            driver.close()
            raise NodeDutyOff(f"node duty is off: cannot set up the instance network: "
                              f"{error} ({NETWORK_HINT}).") from None
        problem = open_work_dirs(Path(self.config["data_dir"])) if driver.uses_host_files \
            else None
        if problem:
            driver.close()
            raise NodeDutyOff(f"node duty is off: {problem}")
        firewall = self._start_data_plane(nft, forwarding)
        self.image_cache.recover()
        return LocalNode(node_id, driver, self.image_cache, self.config, image_source,
                         firewall)

    def _nft_firewall(self, driver: HypervisorDriver) -> NftFirewall | None:
        """The kernel data plane when config asks for it (``firewall``: nftables, or auto
        where guests are real), else None (the in-memory one, or a wrong setting)."""
        kind = self.config.get("firewall", "auto")
        if kind == "nftables" or (kind == "auto" and driver.uses_host_files):
            return NftFirewall(network.edge_host(self.config), Path(self.config["data_dir"]))
        return None

    def _start_data_plane(self, nft: NftFirewall | None,
                          forwarding: str | None) -> Firewall | None:
        """The node's firewall, its host flags set; None with ``network_problem`` saying
        why when security groups cannot be enforced here. *forwarding*: the global IPv4
        forwarding switch before the instance network started (see NftFirewall.prepare)."""
        kind = self.config.get("firewall", "auto")
        self.network_problem = None
        if nft is None and kind in ("auto", "fake"):
            return FakeFirewall(network.edge_host(self.config))
        if nft is None:
            self.network_problem = (f"{NETWORK_OFF}: unknown firewall {kind!r} in the "
                                    "config (use auto, nftables or fake)")
        else:
            problem = nft.problem()
            if problem is None:
                try:
                    nft.prepare(forwarding)
                    return nft
                except FirewallError as error:
                    problem = f"cannot prepare the host's interfaces: {error}"
            self.network_problem = f"{NETWORK_OFF}: {problem}"
        log.warning(self.network_problem)
        return None

    def node_for(self, node_id: str | None) -> Node:
        """The node *node_id* (an attached one: :meth:`attach`); ServiceUnavailable saying
        why when it cannot be reached."""
        with self._lock:
            node = self._nodes.get(node_id) if node_id else None
        if node is None:
            reason = self.node_problem or f"node {node_id} is not reachable from this host"
            raise ServiceUnavailable(f"No hypervisor for node {node_id}: {reason}")
        return node

    def require_network(self) -> None:
        """ServiceUnavailable saying what is off and what to install, when security groups
        and public IPs cannot be enforced here (``network_problem``); else nothing."""
        if self.network_problem:
            raise ServiceUnavailable(self.network_problem)

    @property
    def local_node(self) -> LocalNode | None:
        """This host's node while node duty runs, else None."""
        with self._lock:
            node = self._nodes.get(self.local_node_id) if self.local_node_id else None
        return node if isinstance(node, LocalNode) else None

    def close_driver(self) -> None:
        """Close the hypervisor connection (before a fork; node duty state is kept)."""
        node = self.local_node
        if node is not None:
            self.detach(node.node_id)
            node.driver.close()

    @property
    def driver(self) -> HypervisorDriver | None:
        """This host's hypervisor driver while node duty runs (for tests and diagnostics;
        services go through :meth:`node_for`)."""
        node = self.local_node
        return node.driver if node is not None else None
