"""The slow half of the instance lifecycle, off the request thread.

Jobs (spawn, destroy, stop, start, reboot) run on a small thread pool inside an app context;
each talks to the node's hypervisor driver and records the outcome with a compare-and-swap
transition, so a job that lost a race (the instance was terminated while it spawned) does
the right cleanup instead of overwriting newer state.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..cluster import imagecache, network
from ..cluster.virt.driver import DiskSpec, DomainSpec, DriverError, PowerState
from ..db import db
from ..errors import AwsError
from . import states
from .models import Image, Instance

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


def domain_spec(instance: Instance, data_dir: str, network: str | None = None,
                disks: dict | None = None, parts: dict | None = None,
                root: DiskSpec | None = None) -> DomainSpec:
    """What the hypervisor runs for *instance*: its root (and ephemeral) disk from the work
    files (*disks*) or, for an EBS root, the volume's disk (*root*), kernel and ramdisk from
    the image cache (*parts*), its NIC on *network*. Without *disks*/*parts* (drivers that
    read no files) the paths are where they would be."""

    work = imagecache.work_dir(data_dir, instance.id)
    disks = disks or {"root": work / "root.qcow2"}
    parts = parts or {}
    cache = Path(data_dir) / "image-cache"
    kernel = parts.get("kernel") or (cache / instance.kernel_id / "kernel"
                                     if instance.kernel_id else None)
    ramdisk = parts.get("ramdisk") or (cache / instance.ramdisk_id / "ramdisk"
                                       if instance.ramdisk_id else None)
    specs = [root or DiskSpec(target="vda", path=str(disks["root"]), format="qcow2")]
    if disks.get("ephemeral0") and root is None:
        specs.append(DiskSpec(target="vdb", path=str(disks["ephemeral0"]), format="qcow2",
                              serial="ephemeral0"))
    return DomainSpec(
        instance_id=instance.id, vcpus=instance.cpu, memory_mb=instance.memory_mb,
        mac=instance.mac, network=network,
        kernel=str(kernel) if kernel else None, ramdisk=str(ramdisk) if ramdisk else None,
        disks=specs, console_log=str(work / "console.log"))


def _filler(image: Image, store, data_dir: str):
    """``fill(out)`` writing *image*'s bundle, verified against its manifest, into *out*."""
    from . import bundle, cloudkey, images

    def fill(out) -> None:
        manifest = images.manifest_of(image)
        key = cloudkey.cloud_private_key(data_dir) if manifest.encrypted else None
        bundle.unbundle(manifest, images.read_part_fn(store, image), out, key)
    return fill


def cached_parts(instance: Instance, services) -> dict[str, Path]:
    """The instance's root image, kernel and ramdisk in the node's image cache, fetched
    from the object store on first use (a cache miss) and verified against the manifest."""
    cache = services.cluster.image_cache
    data_dir = services.config["data_dir"]
    parts = {}
    root_image = instance.image_id if instance.root_device_type != "ebs" else None
    for image_id, part in ((root_image, "root"), (instance.kernel_id, "kernel"),
                           (instance.ramdisk_id, "ramdisk")):
        if not image_id:
            continue
        image = db.session.get(Image, image_id)
        if image is None or not image.location:
            raise AwsError(f"The image {image_id} is gone or has no bundle.",
                           code="InvalidAMIID.Unavailable", status=400)
        db.session.rollback()           # hold no transaction while copying the image
        parts[part] = cache.ensure(image_id, part, _filler(image, services.s3.store, data_dir))
    return parts


def images_in_use(node_id: str | None) -> set[str]:
    """Image ids (EMI, EKI, ERI) of the instances on *node_id* that have not ended."""
    rows = db.session.execute(db.select(Instance.image_id, Instance.kernel_id,
                                        Instance.ramdisk_id).where(
        Instance.node_id == node_id, Instance.state != states.TERMINATED)).all()
    return {image_id for row in rows for image_id in row if image_id}


def prepare(instance: Instance, driver, services) -> DomainSpec:
    """Everything the node makes before a domain can start: cached images, the instance's
    work directory (its console log goes there whatever its root) and disks, its DHCP
    entry; returns the domain's spec."""
    config = services.config
    if driver.uses_host_files:
        imagecache.work_dir(config["data_dir"], instance.id).mkdir(parents=True,
                                                                   exist_ok=True)
    net = network.plug(driver, config, instance.mac, instance.private_ip) \
        if instance.private_ip else None
    if instance.root_device_type == "ebs":
        from ..ebs import jobs as ebs_jobs

        root = ebs_jobs.root_disk(instance)     # made from the image's snapshot on first boot
        parts = cached_parts(instance, services) if driver.uses_host_files else {}
        return domain_spec(instance, config["data_dir"], net, parts=parts, root=root)
    if not driver.uses_host_files:
        return domain_spec(instance, config["data_dir"], net)
    parts = cached_parts(instance, services)
    if "root" not in parts:
        raise AwsError(f"The image {instance.image_id} has no root disk.",
                       code="InvalidAMIID.Unavailable", status=400)
    disks = imagecache.make_disks(imagecache.work_dir(config["data_dir"], instance.id),
                                  parts["root"], instance.disk_gb)
    services.cluster.image_cache.evict(images_in_use(instance.node_id))
    return domain_spec(instance, config["data_dir"], net, disks, parts)


def release_node_resources(instance: Instance, driver, services) -> None:
    """Undo :func:`prepare` for an ended instance: its DHCP lease and its disks (the
    console log stays until the instance is forgotten); its volumes are detached."""
    _unplug(instance, driver, services)
    imagecache.remove_disks(imagecache.work_dir(services.config["data_dir"], instance.id))
    from ..ebs import jobs as ebs_jobs

    ebs_jobs.instance_ended(instance.id)


def _unplug(instance: Instance, driver, services) -> None:
    """Free the instance's DHCP entry (logged, not raised, when the host refuses)."""
    if instance.private_ip and driver is not None:
        try:
            network.unplug(driver, services.config, instance.mac, instance.private_ip)
        except DriverError as error:
            log.warning("cannot release the DHCP lease of %s: %s", instance.id, error)


def _refused(instance_id: str, target: str, why: str) -> None:
    """A failure path's compare-and-swap changed nothing: say so loudly, with the state
    that won (a newer request, e.g. a terminate, which then does its own cleanup)."""
    db.session.expire_all()
    fresh = db.session.get(Instance, instance_id)
    log.error("instance %s: could not record %s after %s: it is %s now", instance_id,
              target, why, fresh.state if fresh is not None else "gone")


def spawn(instance_id: str) -> None:
    """pending -> running. On failure the launch ends visibly (:func:`launch_failed`)."""
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.PENDING:
        return
    services = _services()
    driver = None
    try:
        driver = services.cluster.driver_for(instance.node_id)
        driver.spawn(prepare(instance, driver, services))
    except Exception as error:  # noqa: BLE001 - whatever failed, the launch must end visibly
        expected = isinstance(error, (DriverError, AwsError, imagecache.CacheError, OSError))
        (log.warning if expected else log.exception)("spawn of %s failed: %s", instance_id,
                                                    error)
        db.session.rollback()
        instance = db.session.get(Instance, instance_id)
        if instance is not None:
            launch_failed(instance, driver, services, states.failure_reason(error))
        return
    if states.transition(instance_id, states.RUNNING, expected={states.PENDING}, task=None):
        if instance.root_device_type == "ebs":
            from ..ebs import jobs as ebs_jobs

            ebs_jobs.recheck_attached(driver, instance.node_id, instance_id)   # after a stop
    else:
        # Terminated while we spawned: the newer request wins; tidy up.
        fresh = db.session.get(Instance, instance_id)
        if fresh is not None and fresh.state in (states.SHUTTING_DOWN, states.TERMINATED):
            driver.destroy(instance_id)
            release_node_resources(fresh, driver, services)


def launch_failed(instance: Instance, driver, services, reason: str) -> bool:
    """End a launch that cannot finish, with *reason* as its state reason (EC2's
    ``Code: message``). A StartInstances of a stopped EBS instance goes back to
    ``stopped``: its volumes, root included, stay attached, their exports are dropped. A
    first launch ends ``terminated``: its disks go, its volumes are detached and those
    marked delete-on-termination (the root it made) deleted. Either way its domain, DHCP
    entry and node capacity are given back; *driver* may be None (no node reached).
    Returns False (and logs it) when the instance had meanwhile moved on (terminated)."""
    if driver is not None:
        try:
            driver.destroy(instance.id)     # a driver keeping its spawn promise left none
        except DriverError as error:
            log.warning("cannot destroy the failed launch %s: %s", instance.id, error)
    if instance.task == states.TASK_STARTING:
        from ..ebs import jobs as ebs_jobs

        _unplug(instance, driver, services)
        ebs_jobs.instance_stopped(instance.id)
        target, changes = states.STOPPED, {"node_id": None}
    else:
        release_node_resources(instance, driver, services)
        target, changes = states.TERMINATED, {}
    if states.transition(instance.id, target, expected={states.PENDING}, reason=reason,
                         task=None, on_win=release_capacity(instance), **changes):
        return True
    _refused(instance.id, target, reason)
    return False


def terminate(instance_id: str) -> None:
    """shutting-down -> terminated: the domain is destroyed and capacity released. When the
    hypervisor cannot destroy it, it stays shutting-down with the reason and no task, for
    the reconciler to retry."""
    instance = db.session.get(Instance, instance_id)
    if instance is None:
        return
    if instance.node_id:
        services = _services()
        try:
            driver = services.cluster.driver_for(instance.node_id)
            driver.destroy(instance_id)
        except (DriverError, AwsError) as error:
            log.warning("destroy of %s failed (the reconciler retries): %s", instance_id,
                        error)
            # no job in flight any more (task None): the reconciler's next pass retries
            states.note(instance_id, states.SHUTTING_DOWN, task=None,
                        state_reason=states.failure_reason(error, "terminate failed"))
            return
        release_node_resources(instance, driver, services)
    else:       # stopped: no domain and no lease, but its volumes still end with it
        from ..ebs import jobs as ebs_jobs

        ebs_jobs.instance_ended(instance.id)
    states.transition(instance_id, states.TERMINATED, expected={states.SHUTTING_DOWN},
                      task=None, on_win=release_capacity(instance))


def stop(instance_id: str) -> None:
    """stopping -> stopped (EBS roots only): the domain goes and the node's capacity is
    given back; the volumes, root included, stay attached for the next start. When the
    hypervisor cannot destroy the domain, the guest still runs: back to running, with
    the reason."""
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.STOPPING:
        return
    services = _services()
    if instance.node_id:
        driver = None
        try:
            driver = services.cluster.driver_for(instance.node_id)
            driver.destroy(instance_id)
        except (DriverError, AwsError) as error:
            log.warning("stop of %s failed: %s", instance_id, error)
            reason = states.failure_reason(error, "stop failed")
            if not states.transition(instance_id, states.RUNNING, expected={states.STOPPING},
                                     task=None, reason=reason):
                _refused(instance_id, states.RUNNING, reason)
            return
        _unplug(instance, driver, services)
    from ..ebs import jobs as ebs_jobs

    ebs_jobs.instance_stopped(instance_id)
    # the state reason is the one the stop was asked with (by the user or the reconciler)
    states.transition(instance_id, states.STOPPED, expected={states.STOPPING}, task=None,
                      node_id=None, on_win=release_capacity(instance))


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
