"""The slow half of the instance lifecycle, off the request thread.

Jobs (spawn, destroy, stop, start, reboot) run on a small thread pool inside an app context;
each talks to the node's hypervisor driver and records the outcome with a compare-and-swap
transition, so a job that lost a race (the instance was terminated while it spawned) does
the right cleanup instead of overwriting newer state.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from ..cluster.virt.driver import DomainSpec, DriverError, PowerState
from ..db import db
from ..errors import AwsError
from . import states
from .models import Instance

log = logging.getLogger(__name__)


class Worker:
    """Runs jobs in an app context on a few threads; ``wait()`` is for tests and shutdown."""

    def __init__(self, app, threads: int = 4):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="compute-job")
        self.pending: set[Future] = set()

    def submit(self, job: Callable, *args) -> Future:
        def run():
            with self.app.app_context():
                try:
                    job(*args)
                except Exception:  # noqa: BLE001 - a failed job is logged, never lost silently
                    log.exception("compute job %s%r failed", job.__name__, args)
                finally:
                    db.session.remove()
        future = self.pool.submit(run)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future

    def wait(self, timeout: float = 30) -> None:
        for future in list(self.pending):
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)


def _services():
    from flask import current_app

    return current_app.extensions["eucalite"]


def release_capacity(instance: Instance):
    """A callback for ``states.transition(on_win=...)`` returning *instance*'s node
    capacity in the same transaction as its end."""
    from ..cluster import nodes
    from ..cluster.scheduler import Need

    node_id, need = instance.node_id, Need(instance.cpu, instance.memory_mb, instance.disk_gb)

    def give_back() -> None:
        if node_id:
            nodes.give_back(node_id, need)
    return give_back


def domain_spec(instance: Instance, data_dir: str) -> DomainSpec:
    """What the hypervisor runs for *instance*: its root disk (and kernel/ramdisk when the
    image boots directly) at the places the node's image cache fills. The cache itself
    arrives with the node-controller issue; until then a real hypervisor finds no files
    there and the launch fails with that reason, while the fake and test drivers run."""
    from pathlib import Path

    from ..cluster.virt.driver import DiskSpec

    work = Path(data_dir) / "instances" / instance.id
    cache = Path(data_dir) / "image-cache"
    return DomainSpec(
        instance_id=instance.id, vcpus=instance.cpu, memory_mb=instance.memory_mb,
        mac=instance.mac,
        kernel=str(cache / instance.kernel_id / "kernel") if instance.kernel_id else None,
        ramdisk=str(cache / instance.ramdisk_id / "ramdisk") if instance.ramdisk_id else None,
        disks=[DiskSpec(target="vda", path=str(work / "root.qcow2"), format="qcow2")],
        console_log=str(work / "console.log"))


def spawn(instance_id: str) -> None:
    """pending -> running; on failure -> terminated with the reason, capacity released."""
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.PENDING:
        return
    services = _services()
    try:
        driver = services.cluster.driver_for(instance.node_id)
        driver.spawn(domain_spec(instance, services.config["data_dir"]))
    except (DriverError, AwsError) as error:
        log.warning("spawn of %s failed: %s", instance_id, error)
        states.transition(instance_id, states.TERMINATED, expected={states.PENDING},
                          reason=f"Server.InternalError: {error}", task=None,
                          on_win=release_capacity(instance))
        return
    if not states.transition(instance_id, states.RUNNING, expected={states.PENDING},
                             task=None):
        # Terminated (or stopped) while we spawned: the newer request wins; tidy up.
        fresh = db.session.get(Instance, instance_id)
        if fresh is not None and fresh.state in (states.SHUTTING_DOWN, states.TERMINATED):
            driver.destroy(instance_id)


def terminate(instance_id: str) -> None:
    """shutting-down -> terminated: the domain is destroyed and capacity released."""
    instance = db.session.get(Instance, instance_id)
    if instance is None:
        return
    if instance.node_id:
        try:
            _services().cluster.driver_for(instance.node_id).destroy(instance_id)
        except DriverError as error:
            log.warning("destroy of %s failed (will be reconciled): %s", instance_id, error)
            return
    states.transition(instance_id, states.TERMINATED, expected={states.SHUTTING_DOWN},
                      task=None, on_win=release_capacity(instance))


def reboot(instance_id: str) -> None:
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.RUNNING:
        return
    try:
        _services().cluster.driver_for(instance.node_id).reboot(instance_id)
    except DriverError as error:
        log.warning("reboot of %s failed: %s", instance_id, error)


def observed_state(instance: Instance) -> PowerState:
    return _services().cluster.driver_for(instance.node_id).power_state(instance.id)
