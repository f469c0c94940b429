"""Instance status checks and scheduled events (DescribeInstanceStatus), fed by the reconciler.

The reconciler (:mod:`eucalite.compute.reconcile`) tells a :class:`StatusBoard` after each
pass whether it could reach the node's hypervisor and which instances' domains it saw
running. From that and the node's recorded state the checks read as AWS's:

* system status (the node): ``ok`` while the node answers, ``impaired`` when the last pass
  could not reach it or the cluster marked it unreachable, ``initializing`` before any pass
  saw it; a node an administrator disabled shows a ``system-maintenance`` event;
* instance status (the guest): ``ok`` once a pass saw its domain running, ``impaired`` when the
  last pass saw it not running, ``initializing`` until a pass has looked;
* ``not-applicable`` for both while the instance is not running.

The board lives in this process's memory: after a restart the checks are ``initializing``
until the first pass, as AWS's are for a fresh instance.
"""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

from ..accounts import utcnow
from ..errors import InvalidParameterValue, MissingParameter
from . import states

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


class StatusBoard:
    """What the reconciler last saw: per node, reachable or not (and since when it is not);
    per instance, its domain running or not (and since when it is not)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, Check] = {}
        self._instances: dict[str, Check] = {}

    def saw(self, node_id: str, reachable: bool, running: dict[str, bool]) -> None:
        """One reconcile pass over *node_id*: its hypervisor answered (*reachable*) and, for
        each of its instances recorded as running, whether the domain runs."""
        with self._lock:
            self._nodes[node_id] = self._next(self._nodes.get(node_id), reachable)
            for instance_id, up in running.items():
                self._instances[instance_id] = self._next(self._instances.get(instance_id), up)

    @staticmethod
    def _next(previous: Check | None, passed: bool) -> Check:
        if passed:
            return Check(OK)
        since = previous.impaired_since if previous and previous.impaired_since else utcnow()
        return Check(IMPAIRED, since)

    def node(self, node_id: str | None) -> Check | None:
        with self._lock:
            return self._nodes.get(node_id) if node_id else None

    def instance(self, instance_id: str) -> Check | None:
        with self._lock:
            return self._instances.get(instance_id)


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
    guest = board.instance(instance.id) or Check(INITIALIZING)
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
