"""How a remote instance's state becomes its local row's: the one rule the launch job and
the reconciler share.

Every change is a compare-and-swap transition (:func:`eucalite.compute.states.transition`)
from the state the row was read in, so a user's newer request (a terminate) always wins
over what the remote said a moment earlier. Nothing is written when nothing changed (the
reconciler's pass over a thousand quiet instances writes nothing).
"""
from __future__ import annotations

from ..compute import lifecycle, states
from ..compute.models import Instance
from .remote import RemoteInstance

#: Remote EC2 states that mean the remote instance has ended or is ending.
ENDED = frozenset({"shutting-down", "terminated"})

#: local state -> {remote state: the local state it leads to}.
FOLLOWS: dict[str, dict[str, str]] = {
    states.PENDING: {"running": states.RUNNING, "stopped": states.STOPPED},
    states.RUNNING: {"stopping": states.STOPPING, "stopped": states.STOPPED},
    states.STOPPING: {"stopped": states.STOPPED},
}


def addresses_of(item: RemoteInstance) -> dict[str, str | None]:
    return {"private_ip": item.private_ip, "public_ip": item.public_ip}


def follow(row: Instance, item: RemoteInstance, target: str) -> str | None:
    """Bring *row* (as read) in line with its remote instance *item* on *target*; returns
    the state it moved to, or None (no change of state; addresses may have been noted).

    A remote instance that ended ends the row (terminated, with the remote's reason);
    a shutting-down row whose remote ended is terminated; otherwise states move as
    :data:`FOLLOWS` says. A stopped row of a remote that is running again stays stopped
    (StartInstances goes through this cloud)."""
    changes = {key: value for key, value in addresses_of(item).items()
               if getattr(row, key) != value}
    if row.remote_id != item.remote_id:
        changes["remote_id"] = item.remote_id
    if row.state == states.TERMINATED:
        return None
    if item.state in ENDED:
        if item.state == "shutting-down" and row.state == states.SHUTTING_DOWN:
            return None             # still going
        reason = (None if row.state == states.SHUTTING_DOWN else
                  item.state_reason or
                  f"Server.InternalError: the instance ended on burst target {target}")
        if states.transition(row.id, states.TERMINATED, reason=reason, task=None,
                             expected={row.state}, on_win=lifecycle.release_capacity(row),
                             private_ip=None, public_ip=None,
                             **{k: v for k, v in changes.items() if k == "remote_id"}):
            return states.TERMINATED
        return None
    # a StartInstances not yet through to the remote: its instance is still stopped there
    starting = row.state == states.PENDING and row.task == states.TASK_STARTING
    target_state = None if starting else FOLLOWS.get(row.state, {}).get(item.state)
    if target_state is not None:
        if states.transition(row.id, target_state, expected={row.state}, task=None,
                             **changes):
            return target_state
        return None
    if changes:
        states.note(row.id, row.state, **changes)
    return None
