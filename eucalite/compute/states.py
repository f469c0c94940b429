"""Instance states: EC2's names and codes, the one table of allowed transitions, and the
compare-and-swap update every state change goes through.

Two racing requests (terminate vs. the spawn finishing, two terminates) cannot both win:
:func:`transition` updates the row only if its state is still one the caller expected.
"""
from __future__ import annotations

from ..accounts import utcnow
from ..db import db

PENDING, RUNNING, SHUTTING_DOWN, TERMINATED = "pending", "running", "shutting-down", "terminated"
STOPPING, STOPPED = "stopping", "stopped"

CODES = {PENDING: 0, RUNNING: 16, SHUTTING_DOWN: 32, TERMINATED: 48, STOPPING: 64, STOPPED: 80}

#: state -> states it may move to. pending -> stopped is a StartInstances whose spawn
#: failed; stopping -> running a stop the hypervisor refused (the guest still runs).
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, SHUTTING_DOWN, TERMINATED, STOPPED}),
    RUNNING: frozenset({STOPPING, SHUTTING_DOWN, TERMINATED, STOPPED}),
    STOPPING: frozenset({STOPPED, SHUTTING_DOWN, TERMINATED, RUNNING}),
    STOPPED: frozenset({PENDING, SHUTTING_DOWN, TERMINATED}),
    SHUTTING_DOWN: frozenset({TERMINATED}),
    TERMINATED: frozenset(),
}

#: States that hold capacity on a node.
HOLDS_CAPACITY = frozenset({PENDING, RUNNING, STOPPING, SHUTTING_DOWN})

#: ``Instance.task`` of a StartInstances in flight (a first launch's is "spawning"): a
#: start that fails goes back to stopped, a launch that fails ends terminated.
TASK_STARTING = "starting"


def failure_reason(error: Exception, doing: str | None = None) -> str:
    """The state reason (EC2's ``Code: message``) for a job that failed with *error*:
    ``Client.<code>`` for an API error the user can act on (``Client.VolumeLimitExceeded``),
    else ``Server.InternalError``; *doing* prefixes the message. At most 255 characters."""
    from ..errors import AwsError

    client = isinstance(error, AwsError) and error.status < 500
    code = f"Client.{error.code}" if client else "Server.InternalError"
    message = error.message if isinstance(error, AwsError) else str(error)
    return f"{code}: {doing + ': ' if doing else ''}{message}"[:255]


def allowed_from(target: str) -> frozenset[str]:
    """Every state from which *target* may be reached."""
    return frozenset(state for state, targets in TRANSITIONS.items() if target in targets)


def transition(instance_id: str, target: str, *, expected: set[str] | frozenset[str] | None = None,
               reason: str | None = None, on_win=None, **changes) -> bool:
    """Move the instance to *target* if its state is one of *expected* (default: every state
    allowed by the table). Returns True if this call made the change, False if the instance
    was in another state (a race lost); commits either way.

    ValueError when *expected* names a state the table does not allow to move to *target*:
    that move could never happen, and a caller asking for it is a bug to report at once,
    not a no-op to return False for.

    *on_win*, if given, runs in the same write transaction when the change is made (ending
    an instance returns its node capacity there, so the two are one change).
    """
    from ..db import write_lock
    from .models import Instance

    sources = set(expected if expected is not None else allowed_from(target))
    forbidden = sources - allowed_from(target)
    if forbidden:
        raise ValueError(f"the instance state table forbids "
                         f"{', '.join(sorted(forbidden))} -> {target}")
    values = dict(changes, state=target)
    if reason is not None:
        values["state_reason"] = reason
    if target == TERMINATED:
        values.setdefault("terminated_at", utcnow())
    write_lock()
    result = db.session.execute(db.update(Instance).where(
        Instance.id == instance_id, Instance.state.in_(sorted(sources))).values(**values))
    won = result.rowcount == 1
    if won and on_win is not None:
        on_win()
    db.session.commit()
    return won


def note(instance_id: str, state: str, **changes) -> bool:
    """Record *changes* (``task``, ``state_reason``) on the instance if it is still in
    *state*, leaving its state as it is; True if it was. Commits."""
    from ..db import write_lock
    from .models import Instance

    write_lock()
    result = db.session.execute(db.update(Instance).where(
        Instance.id == instance_id, Instance.state == state).values(**changes))
    db.session.commit()
    return result.rowcount == 1
