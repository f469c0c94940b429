"""Instance status checks and scheduled events (DescribeInstanceStatus), fed by the reconciler.

The reconciler (:mod:`eucalite.compute.reconcile`) tells a :class:`StatusBoard` after each
pass whether it could reach the node's hypervisor and which instances' domains it saw
running. From that and the node's recorded state the checks read as AWS's:

* system status (the node): ``ok`` while the node answers, ``impaired`` when the last pass
  could not reach it or the cluster marked it unreachable (the failure monitor,
  :func:`eucalite.cluster.nodes.mark_silent`: silent for longer than ``node_timeout``, its
  ``status_impaired_since`` the last time it was heard from), ``initializing`` before any
  pass saw it; a node an administrator disabled shows a ``system-maintenance`` event;
* instance status (the guest): ``ok`` once a pass saw its domain running, ``impaired`` when the
  last pass saw it not running, ``initializing`` until a pass has looked;
* ``not-applicable`` for both while the instance is not running.

The board is kept in the database (``status_checked_at`` / ``status_impaired_since`` on nodes
and instances: a check has been made, and since when it fails), so the checks read the same
after a restart as before it, with no pass in between. A pass writes only what changed: a
first look, a check starting or ceasing to fail; a pass that sees what the last one saw writes
nothing. StartInstances clears an instance's check, so a started instance is
``initializing`` again until a pass looks, as AWS's.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..accounts import utcnow
from ..cluster.models import Node
from ..db import db, writing
from ..errors import InvalidParameterValue, MissingParameter
from . import states
from .models import Instance

OK, IMPAIRED, INITIALIZING, NOT_APPLICABLE = "ok", "impaired", "initializing", "not-applicable"
STATUSES = (OK, IMPAIRED, "insufficient-data", NOT_APPLICABLE, INITIALIZING)
#: A check's detail (``reachability``) status for each summary status.
DETAIL = {OK: "passed", IMPAIRED: "failed", INITIALIZING: "initializing",
          NOT_APPLICABLE: "not-applicable", "insufficient-data": "insufficient-data"}


@dataclass(frozen=True)
class Check:
    status: str                         # one of STATUSES
    impaired_since: dt.datetime | None = None

    @property
    def detail(self) -> str:
        return DETAIL[self.status]


@dataclass(frozen=True)
class Event:
    code: str                           # system-maintenance, instance-reboot, ...
    description: str
    not_before: dt.datetime


@dataclass(frozen=True)
class InstanceStatus:
    system: Check
    instance: Check
    events: list[Event] = field(default_factory=list)


def check_of(row) -> Check | None:
    """The check recorded on *row* (a node or an instance); None when no pass has made one."""
    if row is None or row.status_checked_at is None:
        return None
    if row.status_impaired_since is not None:
        return Check(IMPAIRED, row.status_impaired_since)
    return Check(OK)


def _record(row, passed: bool, now: dt.datetime) -> bool:
    """Set *row*'s check after a pass that found it passing or failing; whether anything
    changed. A failure keeps the time of the first one."""
    checked_at = row.status_checked_at or now
    since = None if passed else (row.status_impaired_since or now)
    if (checked_at, since) == (row.status_checked_at, row.status_impaired_since):
        return False
    row.status_checked_at, row.status_impaired_since = checked_at, since
    return True


class StatusBoard:
    """What the reconciler last saw, kept in the nodes' and instances' rows: per node,
    reachable or not (and since when it is not); per instance, its domain running or not (and
    since when it is not)."""

    def saw(self, node_id: str, reachable: bool, running: dict[str, bool]) -> None:
        """One reconcile pass over *node_id*: its hypervisor answered (*reachable*) and, for
        each of its instances recorded as running, whether the domain runs.

        Only a pass that changes a check writes (one transaction): the changes are first
        worked out without the write lock, and done again under it if there are any."""
        now = utcnow()
        with db.session.no_autoflush:
            changed = self._record(node_id, reachable, running, now)
        db.session.rollback()               # ends the read, dropping the trial changes
        if changed:
            with writing():
                self._record(node_id, reachable, running, now)

    @staticmethod
    def _record(node_id: str, reachable: bool, running: dict[str, bool],
                now: dt.datetime) -> bool:
        node = db.session.get(Node, node_id)
        changed = node is not None and _record(node, reachable, now)
        if running:
            rows = db.session.execute(
                db.select(Instance).where(Instance.id.in_(list(running)))).scalars()
            for row in rows:
                changed = _record(row, running[row.id], now) or changed
        return changed

    @staticmethod
    def node(node_id: str | None) -> Check | None:
        """The system check of *node_id* (None: no pass has reached it, or no node)."""
        return check_of(db.session.get(Node, node_id)) if node_id else None


def status_of(instance, node_state: str | None, board: StatusBoard,
              node_changed: dt.datetime | None = None) -> InstanceStatus:
    """The checks and events of *instance*, whose node is in *node_state* (``enabled``,
    ``disabled``, ``unreachable``; None: no node)."""
    events = []
    if node_state == "disabled":
        events.append(Event("system-maintenance",
                            "The instance's node is disabled for maintenance.",
                            node_changed or utcnow()))
    if instance.state != states.RUNNING:
        return InstanceStatus(Check(NOT_APPLICABLE), Check(NOT_APPLICABLE), events)
    system = board.node(instance.node_id) or Check(INITIALIZING)
    if node_state == "unreachable":
        system = Check(IMPAIRED, system.impaired_since or node_changed or utcnow())
    guest = check_of(instance) or Check(INITIALIZING)
    return InstanceStatus(system, guest, events)


#: ReportInstanceStatus' Status values and ReasonCode.N values (AWS's lists).
REPORT_STATUSES = ("ok", "impaired")
REPORT_REASONS = ("instance-stuck-in-state", "unresponsive", "not-accepting-credentials",
                  "password-not-available", "performance-network",
                  "performance-instance-store", "performance-ebs-volume", "performance-other",
                  "other")


def check_report(status: str | None, reasons: list[str]) -> None:
    """ReportInstanceStatus' Status and ReasonCode.N as AWS checks them."""
    if not status:
        raise MissingParameter("The request must contain the parameter Status")
    if status not in REPORT_STATUSES:
        raise InvalidParameterValue(f"Value ({status}) for parameter status is invalid. "
                                    f"Valid values are: {', '.join(REPORT_STATUSES)}.")
    if not reasons:
        raise MissingParameter("The request must contain the parameter ReasonCode")
    for reason in reasons:
        if reason not in REPORT_REASONS:
            raise InvalidParameterValue(f"Value ({reason}) for parameter reasonCode is "
                                        f"invalid. Valid values are: "
                                        f"{', '.join(REPORT_REASONS)}.")
