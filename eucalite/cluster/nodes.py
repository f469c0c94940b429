"""Nodes of the cluster: registration, capacity reservations and the admin's on/off switch.

A node is a host with node duty (it runs VMs). ``eucalite serve`` registers its own host with
:func:`register_local`; RunInstances calls :func:`reserve` to place instances and
:func:`release` gives their resources back when they end. Every function commits its own
change. Reservations read and update node usage inside one write transaction
(:func:`eucalite.db.write_lock`), so concurrent requests never oversubscribe a node.

A node records its physical capacity and what instances reserved (``used_*``, always the exact
sum of their sizes); what it may hold is that capacity times its ratios: its own
(:func:`set_overcommit`, an administrator's), else the caller's
:class:`~.scheduler.Overcommit` (the config's ``cpu_overcommit``/``memory_overcommit``), as
:meth:`~.scheduler.Overcommit.for_node` decides. Changing a ratio takes effect at once, for
instances already running too.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import socket
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..accounts import utcnow
from ..db import db, write_lock
from ..errors import InvalidParameterValue
from ..errors.ec2 import InsufficientInstanceCapacity
from . import scheduler
from .models import Node, NodeCredential
from .scheduler import PHYSICAL, Need, NodeView, Overcommit
from .virt.driver import HostCapacity

log = logging.getLogger(__name__)

ENABLED = "enabled"
DISABLED = "disabled"
#: Being emptied for removal: no new instances, the running ones stay (until they end, or
#: are moved by their owners); :func:`remove` then takes the node out.
DRAINING = "draining"
UNREACHABLE = "unreachable"
#: States an administrator may set; UNREACHABLE is set by the cluster when a node is lost.
ADMIN_STATES = (ENABLED, DISABLED, DRAINING)


def local_node_id(config: Mapping[str, Any]) -> str:
    """This host's node id: the ``node_name`` setting, else the host name."""
    return config.get("node_name") or socket.gethostname()


def _transaction(function):
    """Run *function* as one write transaction: lock first, roll back on any error.

    The rollback also releases the write lock, so a failed request never blocks the next.
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        write_lock()
        try:
            return function(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            raise
    return wrapper


def local_zone(config: Mapping[str, Any]) -> str:
    """This host's node's zone: the ``node_zone`` setting, else the first of ``zones``
    (``config.load`` checks that ``node_zone`` is one of them)."""
    return config.get("node_zone") or config["zones"][0]


def register_local(config: Mapping[str, Any], capacity: HostCapacity,
                   hypervisor_uri: str) -> Node:
    """Create or update this host's Node (:func:`register`) in its zone (:func:`local_zone`)
    and log what it may hold."""
    node = register(local_node_id(config), local_zone(config), capacity, hypervisor_uri)
    overcommit = Overcommit.of(config).for_node(node)
    log.info("node %s registered in zone %s: %d cores, %d MiB, %d GiB (%s); instances may "
             "have %d vCPUs (cpu_overcommit %g) and %d MiB (memory_overcommit %g)", node.id,
             node.zone, node.cores, node.memory_mb, node.disk_gb, node.state,
             overcommit.cores(node.cores), overcommit.cpu,
             overcommit.memory_mb(node.memory_mb), overcommit.memory)
    return node


@_transaction
def register(node_id: str, zone: str, capacity: HostCapacity, hypervisor_uri: str = "",
             address: str = "") -> Node:
    """Create or update the node *node_id* in *zone* with its capacity; it is seen now.

    A new node starts enabled. An existing one keeps an administrator's ``disabled`` or
    ``draining``; a node that was unreachable is back, so it is enabled again. Reservations
    already recorded (``used_*``) are kept: instances still running on the host hold them.
    """
    node = db.session.get(Node, node_id)
    if node is None:
        node = Node(id=node_id, state=ENABLED, used_cores=0, used_memory_mb=0,
                    used_disk_gb=0, last_chosen=0)
        db.session.add(node)
    elif node.state == UNREACHABLE:
        node.state = ENABLED
    node.zone = zone
    node.hypervisor_uri = hypervisor_uri
    node.address = address or node.address or ""
    node.cores, node.memory_mb, node.disk_gb = (
        capacity.cores, capacity.memory_mb, capacity.disk_gb)
    node.last_seen = utcnow()
    db.session.commit()
    return node


def _view(node: Node, overcommit: Overcommit) -> NodeView:
    """What the scheduler needs to know about *node*: what is free of its overcommitted
    capacity (its ratios, else *overcommit*'s; negative when a ratio was lowered below what
    instances already hold)."""
    overcommit = overcommit.for_node(node)
    return NodeView(id=node.id,
                    free_cores=overcommit.cores(node.cores) - node.used_cores,
                    free_memory_mb=overcommit.memory_mb(node.memory_mb) - node.used_memory_mb,
                    free_disk_gb=node.disk_gb - node.used_disk_gb, used=node.used_cores,
                    last_chosen=node.last_chosen, enabled=node.state == ENABLED)


def _no_nodes_message(zone: str) -> str:
    return (f"Insufficient capacity: availability zone {zone} has no nodes, because node "
            "duty is off on every host of this cloud. Run `eucalite serve` with node duty on "
            "(the default; --node, or node = true in eucalite.toml) on a host with libvirt "
            "(libvirtd running, qemu/KVM installed).")


@_transaction
def reserve(zone: str, need: Need, min_count: int, max_count: int, policy: str,
            overcommit: Overcommit = PHYSICAL) -> list[str]:
    """Reserve *need* for between *min_count* and *max_count* instances in *zone*, on nodes
    whose reservations stay within their capacity times their ratios (a node's own, else
    *overcommit*). Only enabled nodes take instances (not disabled, draining or
    unreachable ones).

    Returns one node id per instance (as many as fit, up to *max_count*). Raises
    InsufficientInstanceCapacity, reserving nothing, when fewer than *min_count* fit.
    """
    return _reserve(zone, need, min_count, max_count, policy, overcommit)


@_transaction
def reserve_placed(zone: str | None, zones: list[str], need: Need, min_count: int,
                   max_count: int, policy: str, overcommit: Overcommit = PHYSICAL,
                   attached: frozenset[str] | None = None) -> tuple[str, list[str]]:
    """:func:`reserve` in *zone* when one is asked for (RunInstances'
    ``Placement.AvailabilityZone``), else in one of *zones* (the configured ones) chosen as
    the policy places on nodes: ROUNDROBIN spreads, so the zone where most instances of
    *need* fit now; GREEDY and POWERSAVE fill, so the first configured zone where
    *min_count* fit (the first zone when none does: its error says why). All of a request's
    instances go to one zone, as AWS's. *attached*: the nodes this controller can drive
    (None: all); a node registered but not among them takes nothing. Returns ``(zone, node
    ids)``."""
    if zone is None:
        room = {name: sum(scheduler.fits(view.free_cores, view.free_memory_mb,
                                         view.free_disk_gb, need)
                          for view in _zone_views(name, overcommit, attached)
                          if view.enabled)
                for name in zones}
        if scheduler.validate_policy(policy) == scheduler.ROUNDROBIN:
            zone = min(zones, key=lambda name: (-room[name], zones.index(name)))
        else:
            zone = next((name for name in zones if room[name] >= min_count), zones[0])
    return zone, _reserve(zone, need, min_count, max_count, policy, overcommit, attached)


def _zone_views(zone: str, overcommit: Overcommit,
                attached: frozenset[str] | None = None) -> list[NodeView]:
    return [_view(node, overcommit) for node in db.session.execute(
        db.select(Node).filter_by(zone=zone)).scalars()
        if attached is None or node.id in attached]


def _reserve(zone: str, need: Need, min_count: int, max_count: int, policy: str,
             overcommit: Overcommit, attached: frozenset[str] | None = None) -> list[str]:
    """:func:`reserve` inside the caller's write transaction (it commits), on the
    *attached* nodes only when given (see :func:`reserve_placed`)."""
    if not 1 <= min_count <= max_count:
        raise InvalidParameterValue(
            f"MinCount ({min_count}) must be at least 1 and at most MaxCount ({max_count}).")
    nodes = {node.id: node for node in db.session.execute(
        db.select(Node).filter_by(zone=zone)).scalars()}
    if not nodes:
        raise InsufficientInstanceCapacity(_no_nodes_message(zone))
    drivable = [node for node in nodes.values() if attached is None or node.id in attached]
    chosen = scheduler.choose([_view(node, overcommit) for node in drivable], need,
                              max_count, policy)
    if len(chosen) < min_count:
        if any(node.state == ENABLED for node in nodes.values()) and \
                not any(node.state == ENABLED for node in drivable):
            raise InsufficientInstanceCapacity(
                f"Insufficient capacity: no enabled node of availability zone {zone} can "
                "be driven from this controller now (a joined node is driven once it "
                "registers; this host's own node while its node duty runs).")
        if not any(node.state == ENABLED for node in nodes.values()):
            raise InsufficientInstanceCapacity(
                f"Insufficient capacity: no node of availability zone {zone} is enabled "
                "(see `eucalite node list`; `eucalite node enable NODE` turns one on).")
        raise InsufficientInstanceCapacity("Insufficient capacity.")
    # Later choices get higher stamps, so ROUNDROBIN next starts after the last node used.
    stamp = max(node.last_chosen for node in nodes.values())
    for node_id in chosen:
        node = nodes[node_id]
        node.used_cores += need.cores
        node.used_memory_mb += need.memory_mb
        node.used_disk_gb += need.disk_gb
        stamp += 1
        node.last_chosen = stamp
    db.session.commit()
    return chosen


@_transaction
def release(node_id: str, need: Need) -> None:
    """Give back one instance's reservation on *node_id* (usage never goes below zero).

    A node that no longer exists has nothing to give back; that is logged, not raised, so
    terminating an instance always completes.
    """
    give_back(node_id, need)
    db.session.commit()


def give_back(node_id: str, need: Need) -> None:
    """:func:`release` inside the caller's write transaction (no commit), so an instance's
    end and the return of its capacity are one change."""
    node = db.session.get(Node, node_id)
    if node is None:
        log.warning("release on unknown node %s ignored", node_id)
        return
    node.used_cores = max(0, node.used_cores - need.cores)
    node.used_memory_mb = max(0, node.used_memory_mb - need.memory_mb)
    node.used_disk_gb = max(0, node.used_disk_gb - need.disk_gb)


def joined() -> list[tuple[str, str, str]]:
    """``(node id, hypervisor uri, state)`` of every registered node that joined over the
    internal API and still holds a live key, by id."""
    live_key = db.select(NodeCredential.node_id).where(NodeCredential.revoked_at.is_(None))
    return [tuple(row) for row in db.session.execute(
        db.select(Node.id, Node.hypervisor_uri, Node.state)
        .where(Node.id.in_(live_key)).order_by(Node.id))]


def list_nodes() -> list[Node]:
    """Every node, by zone then id."""
    return list(db.session.execute(
        db.select(Node).order_by(Node.zone, Node.id)).scalars())


@_transaction
def set_state(node_id: str, state: str) -> Node:
    """Enable, disable or drain *node_id* (an administrator's choice). Disabled and
    draining nodes get no new instances; the ones they run keep running. An unreachable
    node an administrator enables is enabled (the monitor marks it again if it stays
    silent)."""
    if state not in ADMIN_STATES:
        raise InvalidParameterValue(
            f"Node state must be one of {', '.join(ADMIN_STATES)}, not {state!r}.")
    node = db.session.get(Node, node_id)
    if node is None:
        raise InvalidParameterValue(f"The node '{node_id}' does not exist.")
    node.state = state
    db.session.commit()
    return node


#: :func:`set_overcommit`'s "leave this ratio as it is".
KEEP = object()


@_transaction
def set_overcommit(node_id: str, cpu: Any = KEEP, memory: Any = KEEP) -> Node:
    """Set *node_id*'s own overcommit ratios (an administrator's choice, effective at once):
    a number or its text, ``default`` (or None) for the cloud's setting, :data:`KEEP` to
    leave one as it is. InvalidParameterValue for a ratio :func:`~.scheduler.node_ratio`
    refuses or an unknown node; nothing changes then."""
    node = db.session.get(Node, node_id)
    if node is None:
        raise InvalidParameterValue(f"The node '{node_id}' does not exist.")
    ratios = {}
    for kind, value in (("cpu", cpu), ("memory", memory)):
        if value is KEEP:
            continue
        try:
            ratios[kind] = None if value is None else scheduler.node_ratio(kind, value)
        except ValueError as error:
            raise InvalidParameterValue(str(error)) from None
    if "cpu" in ratios:
        node.cpu_overcommit = ratios["cpu"]
    if "memory" in ratios:
        node.memory_overcommit = ratios["memory"]
    db.session.commit()
    return node


@dataclass(frozen=True)
class NodeCapacity:
    """One node as an administrator reads it: the row, the ratios that apply to it and
    whether they are its own (each ratio: True when the node sets it, False for the
    cloud's)."""

    node: Node
    overcommit: Overcommit
    own_cpu: bool
    own_memory: bool

    @property
    def cores(self) -> int:
        """The vCPUs the node may hold (its cores times the cpu ratio)."""
        return self.overcommit.cores(self.node.cores)

    @property
    def memory_mb(self) -> int:
        """The MiB of instance memory the node may hold (its RAM times the memory ratio)."""
        return self.overcommit.memory_mb(self.node.memory_mb)

    def ratio_text(self, kind: str) -> str:
        """The *kind* (``cpu``/``memory``) ratio as text, ``*`` marking the node's own
        (``8*``, ``1.5``): how `eucalite node list` and DescribeAvailabilityZones verbose
        show it."""
        own = self.own_cpu if kind == "cpu" else self.own_memory
        return f"{getattr(self.overcommit, kind):g}{'*' if own else ''}"


def node_capacities(overcommit: Overcommit = PHYSICAL) -> list[NodeCapacity]:
    """Every node (by zone then id) with what it may hold: its ratios, else *overcommit*."""
    return [NodeCapacity(node, overcommit.for_node(node), node.cpu_overcommit is not None,
                         node.memory_overcommit is not None) for node in list_nodes()]


@_transaction
def mark_unreachable(node_id: str) -> None:
    """Record that *node_id* stopped answering, so no new instance goes there.

    Only an enabled node changes: an administrator's ``disabled`` stays as it is, and
    :func:`register_local` enables the node again when it comes back.
    """
    node = db.session.get(Node, node_id)
    if node is not None and node.state == ENABLED:
        node.state = UNREACHABLE
        log.warning("node %s is unreachable; no new instances go there", node_id)
    db.session.commit()


@_transaction
def mark_silent(timeout: float, now: dt.datetime | None = None) -> list[str]:
    """The failure monitor: every node not heard from (``last_seen``) for more than
    *timeout* seconds before *now* fails its system check (``status_impaired_since``), and
    an enabled one becomes ``unreachable``, so the scheduler skips it. An administrator's
    ``disabled``/``draining`` stays (its instances read impaired all the same). Its
    reservations stay as they are: its instances still hold them, so capacity is neither
    lost nor counted twice when it returns. Returns the ids of the nodes newly silent."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(seconds=timeout)
    silent = []
    for node in db.session.execute(db.select(Node).where(Node.last_seen < cutoff)).scalars():
        newly = node.state == ENABLED or node.status_impaired_since is None
        if node.state == ENABLED:
            node.state = UNREACHABLE
        if node.status_impaired_since is None:
            node.status_checked_at = node.status_checked_at or node.last_seen
            node.status_impaired_since = node.last_seen
        if newly:
            silent.append(node.id)
            log.warning("node %s has not answered since %s (node_timeout %gs): %s", node.id,
                        node.last_seen, timeout, "no new instances go there"
                        if node.state == UNREACHABLE else f"it stays {node.state}")
    db.session.commit()
    return silent


@_transaction
def heard_from(node_id: str, capacity: HostCapacity | None = None,
               now: dt.datetime | None = None) -> Node | None:
    """*node_id* answered (its hypervisor, or its heartbeat): it is seen *now*, its system
    check passes, an unreachable node is enabled again (an administrator's state stays) and
    *capacity*, when given, replaces its recorded size. None for a node not registered
    (removed meanwhile): the caller should refuse it."""
    node = db.session.get(Node, node_id)
    if node is None:
        db.session.rollback()
        return None
    if node.state == UNREACHABLE:
        node.state = ENABLED
        log.warning("node %s answers again; it takes new instances", node_id)
    node.last_seen = now or utcnow()
    node.status_impaired_since = None       # the system check passes again
    if capacity is not None:
        node.cores, node.memory_mb, node.disk_gb = (
            capacity.cores, capacity.memory_mb, capacity.disk_gb)
    db.session.commit()
    return node


@_transaction
def remove(node_id: str) -> Node:
    """Take *node_id* out of the cluster and return its (deleted) row, for whoever must
    forget it too (its credentials, its Node object). Refused (InvalidParameterValue)
    while instances hold capacity on it (running, pending or stopping ones): drain it and
    let them end first. Stopped instances hold none; they start on another node."""
    node = db.session.get(Node, node_id)
    if node is None:
        raise InvalidParameterValue(f"The node '{node_id}' does not exist.")
    if node.used_cores or node.used_memory_mb or node.used_disk_gb:
        raise InvalidParameterValue(
            f"The node '{node_id}' still runs instances (it holds {node.used_cores} vCPUs, "
            f"{node.used_memory_mb} MiB): drain it (`eucalite node drain {node_id}`) and "
            "remove it once they have ended.")
    db.session.delete(node)
    db.session.commit()
    log.warning("node %s removed from zone %s", node_id, node.zone)
    return node


def zone_states(zones: Iterable[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each zone's DescribeAvailabilityZones state and messages: ``available`` while one of
    its nodes is enabled, or while it has no node at all (a cloud whose hosts have node duty
    off, as Eucalyptus showed a registered cluster with no nodes: RunInstances then says
    why); ``impaired`` when it has nodes but none takes instances, the messages saying
    how many are unreachable, disabled or draining."""
    by_zone: dict[str, dict[str, int]] = {zone: {} for zone in zones}
    for zone, state, count in db.session.execute(
            db.select(Node.zone, Node.state, db.func.count()).group_by(Node.zone, Node.state)):
        if zone in by_zone:
            by_zone[zone][state] = count
    result = {}
    for zone, counts in by_zone.items():
        if not counts or counts.get(ENABLED):
            result[zone] = ("available", ())
        else:
            result[zone] = ("impaired", tuple(
                f"no node takes instances: {count} {state}"
                for state, count in sorted(counts.items())))
    return result


def zone_capacity(zone: str, types: Iterable[tuple[str, int, int, int]],
                  overcommit: Overcommit = PHYSICAL) -> list[tuple[str, int, int]]:
    """For each ``(name, cores, memory_mb, disk_gb)``: ``(name, free_count, max_count)``.

    *free_count* is how many more instances of the type fit in the enabled nodes' free
    resources, *max_count* how many would fit in their whole capacity, both of the
    capacity times each node's ratios, else *overcommit* (what :func:`reserve` admits);
    counted per node, as an instance cannot span nodes. This is DescribeAvailabilityZones'
    verbose listing.
    """
    rows = list(db.session.execute(
        db.select(Node).filter_by(zone=zone, state=ENABLED)).scalars())
    free_now = [_view(row, overcommit) for row in rows]
    result = []
    for name, cores, memory_mb, disk_gb in types:
        need = Need(cores, memory_mb, disk_gb)
        free = sum(scheduler.fits(view.free_cores, view.free_memory_mb, view.free_disk_gb,
                                  need) for view in free_now)
        total = sum(scheduler.fits(overcommit.for_node(row).cores(row.cores),
                                   overcommit.for_node(row).memory_mb(row.memory_mb),
                                   row.disk_gb, need)
                    for row in rows)
        result.append((name, free, total))
    return result
