"""The burst reconciler: per target, one listing of this cloud's remote instances (one
paginated DescribeInstances filtered by the cloud tag) against one query of the local rows
on that target, then only the changes:

* a remote instance whose row is terminated, purged or missing, or that is not the one
  its row recorded (a launch retried by an endpoint that ignores ClientToken), is
  terminated remotely: nothing runs there that this cloud believes ended;
* a row whose recorded remote instance is gone ends terminated, saying so, once it is
  :data:`LISTING_LAG` past its launch (a listing may begin before a launch is recorded,
  and EC2's listings lag behind its launches); a pending row whose launch never reached
  the remote (its job died with a restart) is launched again (the remote sees the same
  ClientToken); a shutting-down row whose terminate failed is terminated again;
* every other row follows its remote instance's state and addresses (:mod:`.mirror`).

A target that does not answer is marked unreachable with the error (its ``last_error``)
and nothing of it changes: its instances keep their last state until it answers again.
The listing comes before the rows are read, so a remote instance launched meanwhile always
finds its row. :func:`start` runs a pass every ``burst_interval`` seconds in a daemon thread.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from .. import duty
from ..accounts import utcnow
from ..compute import states
from ..compute.models import Instance
from ..db import db
from . import targets
from .mirror import ENDED, follow
from .models import BurstTarget
from .remote import RemoteError, RemoteInstance

log = logging.getLogger(__name__)

#: How long after its launch a burst instance missing from its target's listing is given
#: to appear there before it counts as vanished.
LISTING_LAG = dt.timedelta(seconds=120)

#: Local states on the way to another: the reconciler follows them up soon.
TRANSIT = frozenset({states.PENDING, states.STOPPING, states.SHUTTING_DOWN})


@dataclass
class Report:
    """What one pass over one target did (instance ids are local unless said)."""

    target: str
    unreachable: str | None = None          # the error, when it did not answer
    remote_terminated: list[str] = field(default_factory=list)     # remote ids
    vanished: list[str] = field(default_factory=list)
    relaunched: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)           # id -> new state
    listed: int = 0
    in_transit: int = 0     # rows left pending, stopping or shutting-down after the pass


def _choose(rows: dict[str, Instance], found: list[RemoteInstance]
            ) -> tuple[dict[str, RemoteInstance], list[str]]:
    """(local id -> its remote instance, remote ids to terminate) from one listing."""
    current: dict[str, RemoteInstance] = {}
    doomed: list[str] = []
    for item in found:
        row = rows.get(item.local_id)
        alive = item.state not in ENDED
        if row is None or row.state == states.TERMINATED or \
                (row.remote_id and row.remote_id != item.remote_id):
            if alive:
                doomed.append(item.remote_id)
            continue
        if row.remote_id is None and item.local_id in current:
            # two launches for one row (the ClientToken ignored): keep the one alive
            kept = current[item.local_id]
            if kept.state in ENDED and alive:
                current[item.local_id] = item
            elif alive:
                doomed.append(item.remote_id)
            continue
        current[item.local_id] = item
    return current, doomed


def reconcile_target(target: BurstTarget, remote, relaunch: Callable[[str], None],
                     launching: set[str]) -> Report:
    """One pass over *target* (needs an app context). *remote* is its Remote; *relaunch*
    submits a launch job for a local id; *launching* holds ids whose launch job is in
    flight in this process."""
    name = target.name
    report = Report(name)
    db.session.rollback()
    try:
        found = remote.ours()
    except RemoteError as error:
        report.unreachable = str(error)
        (log.warning if not target.unreachable else log.debug)(
            "burst target %s is unreachable: %s", name, error)
        targets.record_health(name, str(error))
        return report
    targets.record_health(name, None)
    report.listed = len(found)
    rows = {row.id: row for row in db.session.execute(
        db.select(Instance).where(Instance.burst_target == name)).scalars()}
    current, doomed = _choose(rows, found)
    for row in rows.values():
        if row.state == states.TERMINATED:
            continue
        item = current.get(row.id)
        if item is None:
            _missing(row, name, relaunch, launching, report)
            continue
        if row.state == states.SHUTTING_DOWN and item.state not in ENDED:
            if row.task is None:        # its terminate failed: again
                doomed.append(item.remote_id)
            continue
        moved = follow(row, item, name)
        if moved is not None:
            report.changed[row.id] = moved
    report.in_transit = sum(1 for row in rows.values()
                            if report.changed.get(row.id, row.state) in TRANSIT)
    if doomed:
        try:
            remote.terminate(doomed)
            report.remote_terminated = doomed
        except RemoteError as error:
            log.warning("burst target %s: cannot terminate %s yet: %s", name, doomed, error)
    db.session.rollback()
    return report


def _missing(row: Instance, target: str, relaunch: Callable[[str], None],
             launching: set[str], report: Report) -> None:
    """*row* has no instance on its target."""
    if row.id in launching:
        return                  # its launch job is at work (and may record one any moment)
    if row.remote_id and row.launch_time > utcnow() - LISTING_LAG:
        return      # launched after the listing began, or not listed yet (EC2's listings
                    # are eventually consistent): not taken for vanished yet
    if row.remote_id:
        if states.transition(row.id, states.TERMINATED, expected={row.state}, task=None,
                             reason=f"Server.InternalError: the remote instance "
                                    f"{row.remote_id} vanished from burst target {target}",
                             private_ip=None, public_ip=None):
            report.vanished.append(row.id)
    elif row.state == states.SHUTTING_DOWN:
        if states.transition(row.id, states.TERMINATED, expected={row.state}, task=None):
            report.changed[row.id] = states.TERMINATED
    elif row.state == states.PENDING:
        relaunch(row.id)
        report.relaunched.append(row.id)


#: Seconds between passes while some burst instance is on its way somewhere (pending,
#: stopping, shutting-down): its user waits for the remote's answer, not for the interval.
FOLLOW_UP = 2.0


def start(app, interval: float) -> threading.Event:
    """A pass over every target every *interval* seconds (:func:`eucalite.duty.every`),
    every :data:`FOLLOW_UP` seconds while an instance is in transit, and at once after the
    burst service is woken (:attr:`BurstService.wake`: a launch, an action); set the
    returned event to stop it (at its next wake-up)."""
    burst = app.extensions["eucalite"].burst

    def one_pass() -> float | None:
        reports = burst.reconcile()
        return FOLLOW_UP if any(report.in_transit for report in reports) else None

    return duty.every(app, "burst-reconciler", interval, one_pass, wake=burst.wake)
