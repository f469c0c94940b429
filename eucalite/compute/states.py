"""Instance states: EC2's names and codes, the one table of allowed transitions (on
:class:`eucalite.statemachine.StateMachine`, whose compare-and-swap every state change goes
through), and the one table of which user actions each state allows.

Two racing requests (terminate vs. the spawn finishing, two terminates) cannot both win:
:func:`transition` updates the row only if its state is still one the caller expected.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..accounts import utcnow
from ..errors import AwsError
from ..statemachine import StateMachine
from .models import Instance

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

INSTANCE = StateMachine(Instance, TRANSITIONS)

#: States that hold capacity on a node.
HOLDS_CAPACITY = frozenset({PENDING, RUNNING, STOPPING, SHUTTING_DOWN})

#: ``Instance.task``: the job in flight. A StartInstances' is TASK_STARTING, a first
#: launch's TASK_SPAWNING: a start that fails goes back to stopped, a launch that fails
#: ends terminated.
TASK_SPAWNING, TASK_STARTING = "spawning", "starting"
TASK_STOPPING, TASK_TERMINATING = "stopping", "terminating"
#: CreateImage's reboot: the running instance's domain is shut off for the copies of its
#: volumes and started again (:mod:`.quiesce`); the reconciler leaves it alone meanwhile.
TASK_IMAGING = "imaging"


@dataclass(frozen=True)
class Action:
    """What a user action (RebootInstances, StopInstances, ...) may do in each state.

    ``accepted``: states in which the request succeeds (in any other it is
    IncorrectInstanceState); ``acts``: the states in which it changes something (in the
    others of ``accepted`` it leaves the instance as it is). The console shows an action's
    button where it acts."""

    accepted: frozenset[str]
    acts: frozenset[str]
    ebs_only: bool = False          # only instances with an EBS root (UnsupportedOperation)


ACTIONS: dict[str, Action] = {
    "reboot": Action(accepted=frozenset(TRANSITIONS) - {SHUTTING_DOWN, TERMINATED},
                     acts=frozenset({RUNNING})),
    "stop": Action(accepted=frozenset({RUNNING, STOPPING, STOPPED}),
                   acts=frozenset({RUNNING}), ebs_only=True),
    "start": Action(accepted=frozenset({STOPPED, PENDING, RUNNING}),
                    acts=frozenset({STOPPED}), ebs_only=True),
    "terminate": Action(accepted=frozenset(TRANSITIONS),
                        acts=frozenset(TRANSITIONS) - {SHUTTING_DOWN, TERMINATED}),
}


def possible_actions(instance: Instance) -> frozenset[str]:
    """The actions that would change *instance* now (the console's buttons)."""
    return frozenset(name for name, action in ACTIONS.items()
                     if instance.state in action.acts
                     and (instance.root_device_type == "ebs" or not action.ebs_only))


def failure_reason(error: Exception, doing: str | None = None) -> str:
    """The state reason (EC2's ``Code: message``) for a job that failed with *error*:
    ``Client.<code>`` for an API error the user can act on (``Client.VolumeLimitExceeded``),
    else ``Server.InternalError``; *doing* prefixes the message. At most 255 characters."""
    client = isinstance(error, AwsError) and error.status < 500
    code = f"Client.{error.code}" if client else "Server.InternalError"
    message = error.message if isinstance(error, AwsError) else str(error)
    return f"{code}: {doing + ': ' if doing else ''}{message}"[:255]


def allowed_from(target: str) -> frozenset[str]:
    """Every state from which *target* may be reached."""
    return INSTANCE.allowed_from(target)


def transition(instance_id: str, target: str, *, expected: set[str] | frozenset[str] | None = None,
               reason: str | None = None, on_win=None, **changes) -> bool:
    """Move the instance to *target* if its state is one of *expected* (default: every state
    allowed by the table). Returns True if this call made the change, False if the instance
    was in another state (a race lost); commits either way.

    ValueError when *expected* names a state the table does not allow to move to *target*:
    that move could never happen, and a caller asking for it is a bug to report at once,
    not a no-op to return False for.

    *reason*, if given, becomes the state reason; reaching ``terminated`` stamps
    ``terminated_at``. *on_win*, if given, runs in the same write transaction when the
    change is made (ending an instance returns its node capacity there, so the two are one
    change).
    """
    if reason is not None:
        changes["state_reason"] = reason
    if target == TERMINATED:
        changes.setdefault("terminated_at", utcnow())
    return INSTANCE.transition(instance_id, target, expected=expected, on_win=on_win,
                               **changes)


def note(instance_id: str, state: str, **changes) -> bool:
    """Record *changes* (``task``, ``state_reason``) on the instance if it is still in
    *state*, leaving its state as it is; True if it was. Commits."""
    return INSTANCE.note(instance_id, {state}, **changes)
