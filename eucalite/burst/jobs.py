"""The slow half of a burst instance's lifecycle: the calls to the remote cloud, run on the
compute worker (:class:`eucalite.compute.lifecycle.Worker`) as a local instance's node
jobs are, each recording its outcome with a compare-and-swap transition.

A remote that fails a call is never waited on: the launch ends the instance terminated
with the reason, a terminate leaves it shutting-down for the reconciler to retry, a stop
leaves it running, a start leaves it stopped. Anything a lost race leaves on the remote
(an instance launched for a row terminated meanwhile) carries this cloud's tags, and the
reconciler terminates it (:mod:`.reconcile`).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Callable

from .. import tags
from ..compute import instances, lifecycle, states
from ..compute.models import Instance
from ..db import db
from . import targets
from .mirror import follow
from .models import BurstTarget
from .remote import Remote, RemoteError

log = logging.getLogger(__name__)

#: Gives the Remote of a target row (the service's cache).
RemoteOf = Callable[[BurstTarget], Remote]


def _failed(error: RemoteError, target: str, doing: str) -> str:
    """The state reason for a remote call that failed (EC2's ``Code: message``)."""
    code = "Server.InsufficientInstanceCapacity" if doing == "launch" else \
        "Server.InternalError"
    return f"{code}: burst target {target} could not {doing}: {error}"[:255]


def _called(target: str, error: RemoteError | None) -> None:
    """Note the target's health after a call (an answer, even a refusal, is contact)."""
    targets.record_health(target, str(error) if error is not None and error.unreachable
                          else None)


def remote_key_name(public_key: str) -> str:
    """The remote key pair's name for a local public key: the same key, one name."""
    return "eucalite-" + hashlib.sha256(public_key.encode()).hexdigest()[:16]


def _load(instance_id: str) -> tuple[Instance, BurstTarget] | None:
    row = db.session.get(Instance, instance_id)
    if row is None or not row.burst_target:
        return None
    target = db.session.get(BurstTarget, row.burst_target)
    if target is None:
        return None
    return row, target


def launch(remote_of: RemoteOf, instance_id: str) -> None:
    """pending -> (remote launched) -> running as the remote says. The remote instance
    gets the row's user data, key (imported under :func:`remote_key_name`) and user tags
    (``aws:`` ones are the remote's to set), mapped image and type."""
    loaded = _load(instance_id)
    if loaded is None or loaded[0].state != states.PENDING or loaded[0].remote_id:
        return
    row, target = loaded
    image = target.get_json("image_map", {}).get(row.image_id)
    itype = target.get_json("type_map", {}).get(row.instance_type)
    user_tags = {key: value for key, value in
                 tags.tags_for(row.owner_id, [row.id]).get(row.id, {}).items()
                 if not key.startswith("aws:")}
    user_data = instances.decode_user_data(row.user_data)
    public_key, name = row.key_public, target.name
    local_image, local_type = row.image_id, row.instance_type
    try:
        remote = remote_of(target)
        db.session.rollback()       # no transaction held across the remote call
        if image is None or itype is None:      # the maps changed since it was placed
            unmapped = [what for what, value in ((f"image {local_image}", image),
                                                 (f"instance type {local_type}", itype))
                        if value is None]
            raise RemoteError(f"it maps no {' and no '.join(unmapped)}", code="Unmapped")
        key_name = None
        if public_key:
            key_name = remote_key_name(public_key)
            remote.import_key(key_name, public_key)
        made = remote.run(instance_id, image, itype, user_data=user_data, tags=user_tags,
                          key_name=key_name)
    except RemoteError as error:
        _called(name, error)
        log.warning("burst launch of %s on %s failed: %s", instance_id, name, error)
        row = db.session.get(Instance, instance_id)
        if not states.transition(instance_id, states.TERMINATED, expected={states.PENDING},
                                 reason=_failed(error, name, "launch"), task=None,
                                 on_win=lifecycle.release_capacity(row)):
            log.info("burst launch of %s: it ended meanwhile", instance_id)
        return
    _called(name, None)
    if states.note(instance_id, states.PENDING, remote_id=made.remote_id,
                   private_ip=made.private_ip, public_ip=made.public_ip):
        row = db.session.get(Instance, instance_id)
        follow(row, made, name)
        return
    # terminated while the remote launched: the remote instance goes too
    try:
        remote.terminate([made.remote_id])
    except RemoteError as error:
        log.warning("burst: cannot terminate %s (%s) on %s yet, the reconciler will: %s",
                    made.remote_id, instance_id, name, error)


def terminate(remote_of: RemoteOf, instance_id: str) -> None:
    """shutting-down -> terminated once the remote terminated its instance (or never
    launched one). When the remote fails, it stays shutting-down with the reason and no
    task: the reconciler retries."""
    loaded = _load(instance_id)
    if loaded is None:
        return
    row, target = loaded
    if row.remote_id:
        remote_id, name = row.remote_id, target.name
        try:
            remote = remote_of(target)
            db.session.rollback()
            remote.terminate([remote_id])
        except RemoteError as error:
            _called(name, error)
            log.warning("burst terminate of %s (%s) failed (the reconciler retries): %s",
                        instance_id, remote_id, error)
            states.note(instance_id, states.SHUTTING_DOWN, task=None,
                        state_reason=_failed(error, name, "terminate"))
            return
        _called(name, None)
        row = db.session.get(Instance, instance_id)
    states.transition(instance_id, states.TERMINATED, expected={states.SHUTTING_DOWN},
                      task=None, on_win=lifecycle.release_capacity(row))


def _act(remote_of: RemoteOf, instance_id: str, state: str, call: str,
         undo: str | None) -> None:
    """Ask the remote to *call* (reboot, stop, start) the instance if the row is in
    *state*; on failure move the row back to *undo* (None: leave it) with the reason. The
    reconciler follows the remote's new state."""
    loaded = _load(instance_id)
    if loaded is None or loaded[0].state != state or not loaded[0].remote_id:
        return
    row, target = loaded
    remote_id, name = row.remote_id, target.name
    try:
        remote = remote_of(target)
        db.session.rollback()
        getattr(remote, call)(remote_id)
    except RemoteError as error:
        _called(name, error)
        log.warning("burst %s of %s (%s) failed: %s", call, instance_id, remote_id, error)
        if undo is not None:
            states.transition(instance_id, undo, expected={state}, task=None,
                              reason=_failed(error, name, call))
        return
    _called(name, None)
    if call == "start":         # the remote has it: from now on the row follows the remote
        states.note(instance_id, state, task=None)


def reboot(remote_of: RemoteOf, instance_id: str) -> None:
    _act(remote_of, instance_id, states.RUNNING, "reboot", None)


def stop(remote_of: RemoteOf, instance_id: str) -> None:
    """stopping -> (the reconciler) stopped; back to running if the remote refuses."""
    _act(remote_of, instance_id, states.STOPPING, "stop", states.RUNNING)


def start(remote_of: RemoteOf, instance_id: str) -> None:
    """pending -> (the reconciler) running; back to stopped if the remote refuses."""
    _act(remote_of, instance_id, states.PENDING, "start", states.STOPPED)
