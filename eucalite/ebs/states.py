"""The storage controller's state machines: a volume's state, its attachment's state, a
snapshot's state and a volume modification's state, one table of allowed moves each
(:mod:`eucalite.statemachine`).

Every state change of a volume, an attachment or a snapshot is a ``transition`` on one of
the machines below, a compare-and-swap on the row: a job that lost a race (the volume was
deleted or detached meanwhile) changes nothing and learns so from the False it gets back.
"""
from __future__ import annotations

from ..statemachine import StateMachine
from .models import Snapshot, Volume, VolumeModification

# --- volumes: creating -> available <-> in-use ... -> deleting -> (the row goes) -----------

CREATING, AVAILABLE, IN_USE = "creating", "available", "in-use"
DELETING, ERROR = "deleting", "error"

#: creating -> in-use is an EBS root made for its instance (attached from the start);
#: creating -> deleting a root whose launch failed (or died) while it was made.
VOLUME = StateMachine(Volume, {
    CREATING: {AVAILABLE, ERROR, IN_USE, DELETING},
    AVAILABLE: {IN_USE, DELETING},
    IN_USE: {AVAILABLE},
    ERROR: {DELETING},
    DELETING: set(),
})

# --- attachments: (detached) -> attaching -> attached -> detaching -> (detached) -----------

ATTACHING, ATTACHED, DETACHING = "attaching", "attached", "detaching"
DETACHED = None

#: An attachment exists only while its volume is in-use: it begins with the volume's move
#: to in-use (recorded ``attaching``) and ends with its move back to available, which
#: clears it (:data:`NO_ATTACHMENT`). detaching -> attached is a detach the hypervisor
#: refused; detaching -> detaching a forced detach of one already detaching.
ATTACHMENT = StateMachine(Volume, {
    DETACHED: {ATTACHING},
    ATTACHING: {ATTACHED, DETACHING},
    ATTACHED: {DETACHING},
    DETACHING: {ATTACHED, DETACHING},
}, column="attach_state")

#: The attachment columns of a detached volume.
NO_ATTACHMENT = dict(instance_id=None, device=None, target=None, attach_state=DETACHED,
                     attach_time=None, delete_on_termination=False)

# --- snapshots: pending -> completed | error ------------------------------------------------

PENDING, COMPLETED = "pending", "completed"

SNAPSHOT = StateMachine(Snapshot, {
    PENDING: {COMPLETED, ERROR},
    COMPLETED: set(),
    ERROR: set(),
})

# --- volume modifications: modifying -> optimizing -> completed | failed --------------------

MODIFYING, OPTIMIZING, FAILED = "modifying", "optimizing", "failed"

#: modifying -> optimizing is the data grown and the volume's new size and type recorded
#: (AWS: "the new size takes effect" there); here optimizing ends at once, as nothing is
#: re-laid out. A modification that ended (completed, failed) lets the next one begin.
MODIFICATION = StateMachine(VolumeModification, {
    MODIFYING: {OPTIMIZING, FAILED},
    OPTIMIZING: {COMPLETED, FAILED},
    COMPLETED: set(),
    FAILED: set(),
})
