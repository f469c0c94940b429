"""The EDGE network plan of every node, built from the database and pushed to the nodes.

Call :func:`sync` after committing any change that alters what the network enforces (an
instance launched or ended, a rule authorised or revoked, an address associated or
released): afterwards every node enforces the state now in the database.

Applies are serialised by a file lock in the data dir and the plan is built inside it, so
two workers (threads or processes) never install an older plan over a newer one.
"""
from __future__ import annotations

import fcntl
import logging
import weakref
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..cluster import nodes
from ..cluster.edge.firewall import FirewallError
from ..cluster.edge.plan import Group, NetworkPlan, Port, Rule, tap_name
from ..cluster.service import ClusterService
from ..cluster.models import Node as NodeRow
from ..cluster.virt.driver import DriverError
from ..cluster.virt.network_xml import mac_for
from ..db import db
from ..errors import ServiceUnavailable
from . import states
from .models import Instance, InstanceSecurityGroup, SecurityGroupRule

log = logging.getLogger(__name__)

#: The plan each node (its Node object's id) last applied from this process, per cluster
#: service: a sync skips a node whose plan did not change (a launch changes its own node's
#: plan, not a hundred others'); a reconcile pass (*reread*) pushes to every node all the
#: same, so a node whose kernel lost its tables (a reboot) is repaired within a pass.
_pushed: "weakref.WeakKeyDictionary[ClusterService, dict[str, tuple[int, NetworkPlan]]]" = \
    weakref.WeakKeyDictionary()
#: Nodes a sync pushes to at once.
PUSH_THREADS = 16
#: How a node says it cannot apply a plan (logged without a traceback).
REFUSALS = (FirewallError, DriverError, ValueError, ServiceUnavailable)


def sync(cluster: ClusterService, reread: bool = False) -> None:
    """Push its current plan to every node the cluster can drive (after the change is
    committed): this host's (unless its data plane is off: ``network_problem``) and the
    joined ones, at once (a slow node delays the sync by its own time, not the sum of
    all), skipping a node whose plan is the one this process last pushed there. A node
    that refuses or cannot be reached is logged, not raised, and the others still get
    theirs (the change is committed; the reconciler's next pass applies the plans again).
    Unreachable nodes are skipped: their next pass after they are back repairs them.
    *reread*: each node compares with what its kernel holds, not with what it applied last
    (the reconciler's passes: repairs a lost or changed rule)."""
    targets = [node for node in cluster.reachable()
               if node.node_id != cluster.local_node_id or not cluster.network_problem]
    if not targets:
        return
    down = set(db.session.execute(db.select(NodeRow.id).where(
        NodeRow.state == nodes.UNREACHABLE)).scalars())
    pushed = _pushed.setdefault(cluster, {})
    with apply_lock(Path(cluster.config["data_dir"])):
        # plans are read here (the database); the nodes apply them on the pool's threads
        work = []
        for node in targets:
            if node.node_id in down:
                continue
            plan = build(node.node_id)
            if reread or pushed.get(node.node_id) != (id(node), plan):
                pushed.pop(node.node_id, None)
                work.append((node, plan))
        if len(work) == 1:
            _push(pushed, *work[0], reread)
        elif work:
            with ThreadPoolExecutor(min(len(work), PUSH_THREADS),
                                    thread_name_prefix="netplan") as pool:
                for node, plan in work:
                    pool.submit(_push, pushed, node, plan, reread)


def _push(pushed: dict, node, plan: NetworkPlan, reread: bool) -> None:
    """Apply *plan* on *node*, recording it in *pushed* once applied; a failure logged."""
    try:
        node.apply_network(plan, reread)
        pushed[node.node_id] = (id(node), plan)
    except REFUSALS as error:
        log.warning("cannot apply the network plan on node %s: %s", node.node_id, error)
    except Exception:  # noqa: BLE001 - one node never blocks the others
        log.exception("applying the network plan on node %s failed", node.node_id)


@contextmanager
def apply_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's network-plan lock (exclusive, across processes and threads)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "edge.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _live():
    """The clause selecting instances whose address is in use on a node."""
    return (Instance.state != states.TERMINATED, Instance.node_id.is_not(None),
            Instance.private_ip.is_not(None))


def build(node_id: str) -> NetworkPlan:
    """The plan of *node_id*: every instance placed there that has not ended (pending
    ones included, so rules are in place before the guest's first packet), the rules of
    their groups and the members (cloud-wide) of every group those rules name. Reads
    columns, never cached rows, so it sees what is committed now."""
    rows = db.session.execute(
        db.select(Instance.id, Instance.mac, Instance.private_ip, Instance.public_ip)
        .where(Instance.node_id == node_id, *_live()).order_by(Instance.private_ip)).all()
    ids = [row.id for row in rows]
    memberships: dict[str, list[str]] = defaultdict(list)
    for instance_id, group_id in db.session.execute(
            db.select(InstanceSecurityGroup.instance_id, InstanceSecurityGroup.group_id)
            .where(InstanceSecurityGroup.instance_id.in_(ids))
            .order_by(InstanceSecurityGroup.position, InstanceSecurityGroup.group_id)):
        memberships[instance_id].append(group_id)
    ports = tuple(Port(instance_id=row.id, tap=tap_name(row.private_ip),
                       mac=row.mac or mac_for(row.private_ip),
                       private_ip=row.private_ip, public_ip=row.public_ip,
                       groups=tuple(memberships[row.id])) for row in rows)
    groups = _groups({g for port in ports for g in port.groups})
    peers = {rule.group for group in groups.values()
             for rule in (*group.ingress, *group.egress) if rule.group}
    return NetworkPlan(ports=ports, groups=groups, members=_members(peers))


def _groups(group_ids: set[str]) -> dict[str, Group]:
    """Group id -> its rules, in the order they were made."""
    rules: dict[tuple[str, bool], list[Rule]] = defaultdict(list)
    for row in db.session.execute(
            db.select(SecurityGroupRule.group_id, SecurityGroupRule.egress,
                      SecurityGroupRule.protocol, SecurityGroupRule.from_port,
                      SecurityGroupRule.to_port, SecurityGroupRule.cidr,
                      SecurityGroupRule.peer_group_id)
            .where(SecurityGroupRule.group_id.in_(group_ids))
            .order_by(SecurityGroupRule.created, SecurityGroupRule.id)):
        rules[(row.group_id, bool(row.egress))].append(
            Rule(protocol=row.protocol, from_port=row.from_port, to_port=row.to_port,
                 cidr=row.cidr, group=row.peer_group_id))
    return {g: Group(g, ingress=tuple(rules[(g, False)]), egress=tuple(rules[(g, True)]))
            for g in sorted(group_ids)}


def _members(group_ids: set[str]) -> dict[str, tuple[str, ...]]:
    """Group id -> private IPs of its live members on any node."""
    members: dict[str, list[str]] = {g: [] for g in group_ids}
    for group_id, ip in db.session.execute(
            db.select(InstanceSecurityGroup.group_id, Instance.private_ip)
            .join(Instance, Instance.id == InstanceSecurityGroup.instance_id)
            .where(InstanceSecurityGroup.group_id.in_(group_ids), *_live())
            .order_by(Instance.private_ip)):
        members[group_id].append(ip)
    return {g: tuple(ips) for g, ips in sorted(members.items())}
