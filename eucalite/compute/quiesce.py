"""Holding a running instance's guest still while its volumes are copied (CreateImage).

A hold is a context manager factory (:data:`eucalite.ebs.snapshots.Hold`): the storage
controller copies every volume of the image inside ONE hold, so the copies are of one
instant. Two holds, as CreateImage's ``NoReboot`` chooses:

* :func:`rebooted` (the default, as AWS's): the guest is asked to shut down cleanly (ACPI's
  power button: its OS flushes what it cached), given ``image_shutdown_seconds`` (config)
  to power off, then forced off; the copies are taken while it is off; the same domain is
  started again, with the disks it had. The instance stays ``running`` throughout, as
  DescribeInstances shows it on AWS; its task is ``imaging`` meanwhile, so the reconciler
  does not take the shut-off domain for a guest-initiated shutdown.
* :func:`paused` (``NoReboot``): the guest's vCPUs are frozen for the copies and then run
  on: all volumes crash-consistent at one instant, nothing the guest cached in memory.

Both run in the snapshot job (an app context, off the request thread). An instance that
left ``running`` before the job started (stopped or terminated meanwhile) is simply
copied as it is.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Iterator

from ..cluster.service import ClusterService
from ..cluster.virt.driver import DriverError, PowerState
from ..db import db
from ..ebs.snapshots import Hold
from . import states
from .models import Instance

log = logging.getLogger(__name__)

#: Seconds a guest is given to power off cleanly before it is forced off.
DEFAULT_SHUTDOWN_SECONDS = 120
_POLL = 0.2


def _running_node(cluster: ClusterService, instance_id: str):
    """The node of *instance_id* if it is running there now, else None."""
    db.session.expire_all()
    instance = db.session.get(Instance, instance_id)
    node_id = instance.node_id if instance is not None and \
        instance.state == states.RUNNING else None
    db.session.rollback()
    return cluster.node_for(node_id) if node_id else None


def paused(cluster: ClusterService, instance_id: str) -> Hold:
    """NoReboot: the guest frozen for the copies (libvirt suspend), resumed after."""
    @contextmanager
    def hold() -> Iterator[None]:
        node = _running_node(cluster, instance_id)
        if node is not None:
            node.pause(instance_id)
        try:
            yield
        finally:
            if node is not None:
                node.resume(instance_id)
    return hold


def rebooted(cluster: ClusterService, instance_id: str,
             shutdown_seconds: float = DEFAULT_SHUTDOWN_SECONDS) -> Hold:
    """The default: the guest shut down cleanly (forced off after *shutdown_seconds*) for
    the copies, its domain started again after (see the module docstring)."""
    @contextmanager
    def hold() -> Iterator[None]:
        node = _running_node(cluster, instance_id)
        if node is None or not states.note(instance_id, states.RUNNING,
                                           task=states.TASK_IMAGING):
            yield
            return
        try:
            _power_down(node, instance_id, shutdown_seconds)
            yield
        finally:
            _power_up(node, instance_id)
    return hold


def _power_down(node, instance_id: str, shutdown_seconds: float) -> None:
    """Ask the guest to power off; pull the plug when it has not within the deadline."""
    node.shutdown(instance_id)
    deadline = time.monotonic() + shutdown_seconds
    while node.power_state(instance_id) not in (PowerState.SHUTOFF, PowerState.ABSENT):
        if time.monotonic() >= deadline:
            log.warning("CreateImage: %s did not shut down within %ss: forced off",
                        instance_id, shutdown_seconds)
            node.power_off(instance_id)
            return
        time.sleep(_POLL)


def _power_up(node, instance_id: str) -> None:
    """Start the domain again, unless the instance left ``running`` meanwhile (a stop or
    terminate destroyed the domain); its task is cleared either way. A start the
    hypervisor refuses is logged: the reconciler then sees the domain off and stops the
    instance, with the reason."""
    try:
        if node.power_state(instance_id) == PowerState.SHUTOFF:
            node.power_on(instance_id)
    except DriverError as error:
        log.warning("CreateImage: cannot start %s again: %s", instance_id, error)
    finally:
        states.note(instance_id, states.RUNNING, task=None)
