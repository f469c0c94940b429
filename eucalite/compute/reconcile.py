"""Reconciliation: make the recorded instances agree with what the hypervisor runs.

Run at start and periodically (as nova's ``_sync_power_states`` does), over every node the
cluster can reach (:meth:`~eucalite.cluster.service.ClusterService.reachable`). A node whose
hypervisor answers is heard from (:func:`eucalite.cluster.nodes.heard_from`: an unreachable
node is enabled again); one that does not is left as it is (no instance of it changes: its
domains may still run). Then, for each node that answered:

* an instance recorded as running whose domain vanished or shut off is terminated
  (instance-store) or stopped (EBS root), with a state reason saying why; a guest that
  powered itself off with ``instanceInitiatedShutdownBehavior=terminate`` is terminated
  whatever its root (:func:`.instance_attributes.shutdown_behaviour`);
* a pending instance with no spawn job in flight (the server restarted mid-launch) is
  marked running if its domain appeared, else its launch failed (a first launch is
  terminated, a StartInstances goes back to stopped);
* a stopping instance whose stop job died with the previous process is stopped;
* a shutting-down instance whose destroy did not finish (interrupted, or refused by the
  hypervisor) is destroyed again;
* a domain with eucalite's name prefix that no live instance owns is destroyed, and logged;
* every node's network plan is applied again (:func:`.netplan.sync`), so rules lost or left
  stale (a restart, a hand-made change) are repaired, and this host's node joins its zone's
  overlay (:func:`eucalite.cluster.overlay.sync_cluster`: peers that joined or left);
* the status checks' board (:class:`.instance_status.StatusBoard`) learns whether the node's
  hypervisor answered and which running instances' domains run (DescribeInstanceStatus); it
  keeps them in the database, writing only what changed, so a restart keeps the checks.

Restarting eucalite therefore loses no instance record and leaves running instances running,
and a node back from an outage keeps the instances still running there and loses the domains
of those terminated meanwhile (their terminations are retried, or the domain is an orphan).
:func:`start`'s loop also runs the failure monitor
(:meth:`~eucalite.cluster.service.ClusterService.check_nodes`) after each pass.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from .. import duty
from ..cluster import nodes, overlay
from ..cluster.node import Node
from ..cluster.service import ClusterService
from ..cluster.virt.driver import DriverError, PowerState
from ..db import db
from ..ebs.service import EbsService
from . import ebsroot, instance_attributes, lifecycle, netplan, states
from .instance_status import StatusBoard
from .models import Instance

log = logging.getLogger(__name__)
#: Nodes whose last pass could not list their domains (their warning was logged once).
_unanswered: set[str] = set()


@dataclass
class ReconcileReport:
    vanished: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    orphans_destroyed: list[str] = field(default_factory=list)
    finished_terminations: list[str] = field(default_factory=list)
    finished_stops: list[str] = field(default_factory=list)
    work_dirs_removed: list[str] = field(default_factory=list)
    volumes_reattached: list[str] = field(default_factory=list)


def reconcile(cluster: ClusterService, ebs: EbsService, *, startup: bool = False,
              board: StatusBoard | None = None,
              now: dt.datetime | None = None) -> ReconcileReport:
    """One pass over every reachable node (needs an app context). *startup* also settles
    instances whose in-flight job died with the previous process. *board* (the status
    checks' record) learns whether each node answered and which running instances' domains
    run. *now* (default: the clock) is when the nodes that answer are heard from."""
    report = ReconcileReport()
    for node in cluster.reachable():
        _reconcile_node(cluster, ebs, node, startup, board, report, now)
    netplan.sync(cluster, reread=True)
    overlay.sync_cluster(cluster)
    return report


def _reconcile_node(cluster: ClusterService, ebs: EbsService, node: Node, startup: bool,
                    board: StatusBoard | None, report: ReconcileReport,
                    now: dt.datetime | None) -> None:
    """One node's part of :func:`reconcile` (adds to *report*)."""
    node_id = node.node_id
    try:
        domains = node.domains()
    except DriverError as error:
        # skipped until it answers (a node on another host may be down for long): said once
        (log.debug if node_id in _unanswered else log.warning)(
            "reconcile: cannot list the domains of node %s (skipped until it answers): %s",
            node_id, error)
        _unanswered.add(node_id)
        if board is not None:
            board.saw(node_id, False, {})
        return
    _unanswered.discard(node_id)
    if nodes.heard_from(node_id, now=now) is None:
        # removed meanwhile (`eucalite node remove` in another process): forget it here too
        cluster.detach(node_id)
        return
    recorded = {row.id: row for row in db.session.execute(
        db.select(Instance).filter_by(node_id=node_id)).scalars()}
    db.session.rollback()
    if board is not None:
        board.saw(node_id, True, {
            instance_id: domains.get(instance_id) == PowerState.RUNNING
            for instance_id, row in recorded.items() if row.state == states.RUNNING})
    for instance_id, instance in recorded.items():
        observed = domains.get(instance_id, PowerState.ABSENT)
        _settle(cluster, ebs, node, instance, observed, startup, report)
    if startup:
        report.work_dirs_removed += node.sweep_work(
            {instance_id: row.state == states.TERMINATED for instance_id, row in recorded.items()})
    report.volumes_reattached += ebsroot.recheck_attached(ebs, node)
    live = {instance_id for instance_id, row in recorded.items()
            if row.state != states.TERMINATED}
    for instance_id in domains:
        if instance_id not in live:
            log.warning("reconcile: destroying domain %s, which no live instance owns",
                        instance_id)
            try:
                node.destroy(instance_id)
                report.orphans_destroyed.append(instance_id)
            except DriverError as error:
                log.warning("reconcile: could not destroy %s: %s", instance_id, error)


def _settle(cluster: ClusterService, ebs: EbsService, node: Node, instance: Instance,
            observed: PowerState, startup: bool, report: ReconcileReport) -> None:
    """Bring one recorded instance in line with its domain's *observed* state."""
    gone = observed in (PowerState.ABSENT, PowerState.SHUTOFF, PowerState.CRASHED)
    if observed == PowerState.SHUTOFF and instance.task == states.TASK_IMAGING and not startup:
        gone = False        # shut off by CreateImage's reboot, which starts it again
    ended = states.STOPPED if instance.root_device_type == "ebs" else states.TERMINATED
    if instance.state == states.RUNNING and gone:
        reason = ("Server.InternalError: the instance's domain vanished from the hypervisor"
                  if observed == PowerState.ABSENT else
                  "Client.InstanceInitiatedShutdown: Instance initiated shutdown")
        if observed != PowerState.ABSENT and \
                instance_attributes.shutdown_behaviour(instance) == "terminate":
            ended = states.TERMINATED
        if ended == states.STOPPED:
            # an EBS root keeps its data: the instance stops (and may be started again)
            if states.transition(instance.id, states.STOPPING, expected={states.RUNNING},
                                 reason=reason, task=states.TASK_STOPPING):
                lifecycle.stop(cluster, ebs, instance.id)
                report.vanished.append(instance.id)
        elif instance.root_device_type == "ebs":
            # shutdown behaviour terminate: its volumes end as a TerminateInstances ends them
            if states.transition(instance.id, states.SHUTTING_DOWN, expected={states.RUNNING},
                                 reason=reason, task=states.TASK_TERMINATING):
                lifecycle.terminate(cluster, ebs, instance.id)
                report.vanished.append(instance.id)
        elif states.transition(instance.id, ended, expected={states.RUNNING}, reason=reason,
                               task=None, on_win=lifecycle.release_capacity(instance)):
            _destroy_quietly(node, ebs, instance)
            report.vanished.append(instance.id)
    elif instance.state == states.PENDING and startup:
        if observed == PowerState.RUNNING:
            states.transition(instance.id, states.RUNNING, expected={states.PENDING}, task=None)
            report.adopted.append(instance.id)
        elif lifecycle.launch_failed(instance, node, ebs,
                                     "Server.InternalError: launch interrupted by a restart"):
            report.interrupted.append(instance.id)
    elif instance.state == states.STOPPING and startup:
        lifecycle.stop(cluster, ebs, instance.id)    # its stop job died with the previous process
        report.finished_stops.append(instance.id)
    elif instance.state == states.SHUTTING_DOWN and (
            startup or observed == PowerState.ABSENT or instance.task is None):
        # task None: no terminate job in flight (the last one failed): try again
        lifecycle.terminate(cluster, ebs, instance.id)
        report.finished_terminations.append(instance.id)


def _destroy_quietly(node: Node, ebs: EbsService, instance: Instance) -> None:
    """Destroy an ended instance's domain and free its DHCP entry and disks."""
    try:
        node.destroy(instance.id)
    except DriverError as error:
        log.warning("reconcile: could not destroy %s: %s", instance.id, error)
        return
    lifecycle.release_node_resources(instance, node, ebs)


def start(app, interval: float) -> threading.Event:
    """Reconcile every *interval* seconds in a daemon thread; set the event to stop."""
    services = app.extensions["eucalite"]

    def one_pass() -> None:
        reconcile(services.cluster, services.ebs, board=services.compute.status_board)
        services.cluster.check_nodes()
        services.compute.purge_terminated()

    return duty.every(app, "reconciler", interval, one_pass)
