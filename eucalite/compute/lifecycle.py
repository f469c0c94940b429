"""The slow half of the instance lifecycle, off the request thread.

Jobs (spawn, destroy, stop, start, reboot) run on a small thread pool inside an app context.
Each is given the services it uses (the cluster; the storage controller for volumes),
reaches the instance's node through the :class:`~eucalite.cluster.node.Node` protocol
(turning the Instance row into the plain records the node takes) and records the outcome
with a compare-and-swap transition, so a job that lost a race (the instance was terminated
while it spawned) does the right cleanup instead of overwriting newer state.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Callable

from ..cluster import nodes
from ..cluster.imagecache import CacheError
from ..cluster.localnode import ImageSource
from ..cluster.node import Endpoint, ImageRef, Launch, Node
from ..cluster.scheduler import Need
from ..cluster.service import ClusterService
from ..cluster.virt.driver import DriverError
from ..db import db
from ..ebs.service import EbsService
from ..errors import AwsError
from ..errors.ec2 import InvalidAMIIDUnavailable
from . import addresses, bundle, cloudkey, ebsroot, images, netplan, states
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


def release_capacity(instance: Instance):
    """A callback for ``states.transition(on_win=...)`` returning *instance*'s node
    capacity and its public IPs (launch address to the pool, elastic IP disassociated, as
    EC2-Classic does when an instance stops or ends) in the same transaction as its end."""
    instance_id = instance.id
    node_id, need = instance.node_id, Need(instance.cpu, instance.memory_mb, instance.disk_gb)

    def give_back() -> None:
        if node_id:
            nodes.give_back(node_id, need)
        addresses.instance_left(instance_id)
    return give_back


def bundle_source(store, data_dir: str) -> ImageSource:
    """The image source that fills this cloud's nodes' image caches: ``source(image, out)``
    writes the image's bundle, read from Walrus with the cloud's authority and verified
    against its manifest (decrypted with the cloud's key), into *out*."""
    def source(ref: ImageRef, out: BinaryIO) -> None:
        image = db.session.get(Image, ref.image_id)
        if image is None or not image.location:
            raise InvalidAMIIDUnavailable(f"The image {ref.image_id} is gone or has no bundle.")
        manifest = images.manifest_of(image)
        key = cloudkey.cloud_private_key(data_dir) if manifest.encrypted else None
        bundle.unbundle(manifest, images.read_part_fn(store, image), out, key)
    return source


def image_refs(instance: Instance) -> dict[str, ImageRef]:
    """Part -> ImageRef of the images *instance* boots from (its root image unless the root
    is an EBS volume, its kernel and ramdisk). InvalidAMIID.Unavailable when one is gone."""
    root_image = instance.image_id if instance.root_device_type != "ebs" else None
    refs = {}
    for image_id, part in ((root_image, "root"), (instance.kernel_id, "kernel"),
                           (instance.ramdisk_id, "ramdisk")):
        if not image_id:
            continue
        image = db.session.get(Image, image_id)
        if image is None or not image.location:
            raise InvalidAMIIDUnavailable(f"The image {image_id} is gone or has no bundle.")
        refs[part] = ImageRef(image_id, part, image.location)
    return refs


def images_in_use(node_id: str | None) -> set[str]:
    """Image ids (EMI, EKI, ERI) of the instances on *node_id* that have not ended."""
    rows = db.session.execute(db.select(Instance.image_id, Instance.kernel_id,
                                        Instance.ramdisk_id).where(
        Instance.node_id == node_id, Instance.state != states.TERMINATED)).all()
    return {image_id for row in rows for image_id in row if image_id}


def launch_of(instance: Instance, node: Node, ebs: EbsService) -> Launch:
    """What *node* needs to start *instance*: its size, network endpoint, images and, for
    an EBS root, the root and data volumes (made from the image's mapping on first boot),
    for an instance-store root the launch mapping's data volumes, exported to the node. Ends the session's transaction (*instance* reloads on use)."""
    launch = Launch(instance_id=instance.id, vcpus=instance.cpu, memory_mb=instance.memory_mb,
                    disk_gb=instance.disk_gb, endpoint=_endpoint(instance))
    refs = image_refs(instance) if node.uses_host_files else {}
    if instance.root_device_type == "ebs":
        launch.root_volume = ebsroot.root_disk(ebs, instance)
        launch.volumes = ebsroot.data_disks(ebs, instance.id)
    elif node.uses_host_files:
        if "root" not in refs:
            raise InvalidAMIIDUnavailable(f"The image {instance.image_id} has no root disk.")
        launch.root_image = refs["root"]
        launch.images_in_use = sorted(images_in_use(instance.node_id))
    if instance.root_device_type != "ebs":
        launch.volumes = ebsroot.store_backed_volumes(ebs, instance)
    # a node that reads no files fetches nothing: its refs only name what it would boot
    for part in ("kernel", "ramdisk"):
        image_id = getattr(instance, f"{part}_id")
        if image_id:
            setattr(launch, part, refs.get(part) or ImageRef(image_id, part, ""))
    db.session.rollback()   # the node's work (image copies, disks) holds no transaction
    return launch


def _endpoint(instance: Instance) -> Endpoint | None:
    """The instance's place on its node's network (None before it has an address)."""
    return Endpoint(instance.mac, instance.private_ip) if instance.private_ip else None


def release_node_resources(instance: Instance, node: Node | None, ebs: EbsService) -> None:
    """Undo a spawn for an ended instance: its DHCP lease and its disks (the console log
    stays until the instance is forgotten); its volumes are detached."""
    _unplug(instance, node)
    if node is not None:
        node.remove_disks(instance.id)
    ebsroot.instance_ended(ebs, instance.id)


def _unplug(instance: Instance, node: Node | None) -> None:
    """Free the instance's DHCP entry (logged, not raised, when the host refuses)."""
    endpoint = _endpoint(instance)
    if endpoint is not None and node is not None:
        try:
            node.unplug(endpoint)
        except DriverError as error:
            log.warning("cannot release the DHCP lease of %s: %s", instance.id, error)


def _refused(instance_id: str, target: str, why: str) -> None:
    """A failure path's compare-and-swap changed nothing: say so loudly, with the state
    that won (a newer request, e.g. a terminate, which then does its own cleanup)."""
    db.session.expire_all()
    fresh = db.session.get(Instance, instance_id)
    log.error("instance %s: could not record %s after %s: it is %s now", instance_id,
              target, why, fresh.state if fresh is not None else "gone")


def spawn(cluster: ClusterService, ebs: EbsService, instance_id: str) -> None:
    """pending -> running. On failure the launch ends visibly (:func:`launch_failed`)."""
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.PENDING:
        return
    node = None
    try:
        node = cluster.node_for(instance.node_id)
        launch = launch_of(instance, node, ebs)
        netplan.sync(cluster)       # its rules are in place before the guest's first packet
        node.spawn(launch)
    except Exception as error:  # noqa: BLE001 - whatever failed, the launch must end visibly
        expected = isinstance(error, (DriverError, AwsError, CacheError, OSError))
        (log.warning if expected else log.exception)("spawn of %s failed: %s", instance_id,
                                                    error)
        db.session.rollback()
        instance = db.session.get(Instance, instance_id)
        if instance is not None:
            launch_failed(instance, node, ebs, states.failure_reason(error))
            netplan.sync(cluster)
        return
    if states.transition(instance_id, states.RUNNING, expected={states.PENDING}, task=None):
        if instance.root_device_type == "ebs":
            ebsroot.recheck_attached(ebs, node, instance_id)   # after a stop
    else:
        # Terminated while we spawned: the newer request wins; tidy up.
        fresh = db.session.get(Instance, instance_id)
        if fresh is not None and fresh.state in (states.SHUTTING_DOWN, states.TERMINATED):
            node.destroy(instance_id)
            release_node_resources(fresh, node, ebs)
            netplan.sync(cluster)


def launch_failed(instance: Instance, node: Node | None, ebs: EbsService,
                  reason: str) -> bool:
    """End a launch that cannot finish, with *reason* as its state reason (EC2's
    ``Code: message``). A StartInstances of a stopped EBS instance goes back to
    ``stopped``: its volumes, root included, stay attached, their exports are dropped. A
    first launch ends ``terminated``: its disks go, and the volumes it made (root and data
    volumes) are deleted whatever their DeleteOnTermination. Either way its domain, DHCP
    entry and node capacity are given back; *node* may be None (no node reached).
    Returns False (and logs it) when the instance had meanwhile moved on (terminated)."""
    if node is not None:
        try:
            node.destroy(instance.id)     # a node keeping its spawn promise left none
        except DriverError as error:
            log.warning("cannot destroy the failed launch %s: %s", instance.id, error)
    if instance.task == states.TASK_STARTING:
        _unplug(instance, node)
        ebsroot.instance_stopped(ebs, instance.id)
        target, changes = states.STOPPED, {"node_id": None}
    else:
        ebsroot.launch_undone(ebs, instance.id)
        release_node_resources(instance, node, ebs)
        target, changes = states.TERMINATED, {}
    if states.transition(instance.id, target, expected={states.PENDING}, reason=reason,
                         task=None, on_win=release_capacity(instance), **changes):
        return True
    _refused(instance.id, target, reason)
    return False


def terminate(cluster: ClusterService, ebs: EbsService, instance_id: str) -> None:
    """shutting-down -> terminated: the domain is destroyed and capacity released. When the
    hypervisor cannot destroy it, it stays shutting-down with the reason and no task, for
    the reconciler to retry."""
    instance = db.session.get(Instance, instance_id)
    if instance is None:
        return
    if instance.node_id:
        try:
            node = cluster.node_for(instance.node_id)
            node.destroy(instance_id)
        except (DriverError, AwsError) as error:
            log.warning("destroy of %s failed (the reconciler retries): %s", instance_id,
                        error)
            # no job in flight any more (task None): the reconciler's next pass retries
            states.note(instance_id, states.SHUTTING_DOWN, task=None,
                        state_reason=states.failure_reason(error, "terminate failed"))
            return
        release_node_resources(instance, node, ebs)
    else:       # stopped: no domain and no lease, but its volumes still end with it
        ebsroot.instance_ended(ebs, instance.id)
    if states.transition(instance_id, states.TERMINATED, expected={states.SHUTTING_DOWN},
                         task=None, on_win=release_capacity(instance)):
        netplan.sync(cluster)       # its rules and public address go


def stop(cluster: ClusterService, ebs: EbsService, instance_id: str) -> None:
    """stopping -> stopped (EBS roots only): the domain goes and the node's capacity is
    given back; the volumes, root included, stay attached for the next start. When the
    hypervisor cannot destroy the domain, the guest still runs: back to running, with
    the reason."""
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.STOPPING:
        return
    if instance.node_id:
        node = None
        try:
            node = cluster.node_for(instance.node_id)
            node.destroy(instance_id)
        except (DriverError, AwsError) as error:
            log.warning("stop of %s failed: %s", instance_id, error)
            reason = states.failure_reason(error, "stop failed")
            if not states.transition(instance_id, states.RUNNING, expected={states.STOPPING},
                                     task=None, reason=reason):
                _refused(instance_id, states.RUNNING, reason)
            return
        _unplug(instance, node)
    ebsroot.instance_stopped(ebs, instance_id)
    # the state reason is the one the stop was asked with (by the user or the reconciler)
    if states.transition(instance_id, states.STOPPED, expected={states.STOPPING}, task=None,
                         node_id=None, on_win=release_capacity(instance)):
        netplan.sync(cluster)


def reboot(cluster: ClusterService, instance_id: str) -> None:
    """Restart a running instance's guest (a failure is logged: the guest runs on). Not
    while CreateImage holds its domain off for the copies of its volumes: starting it then
    would let the guest write into them, and the hold ends by starting it anyway."""
    instance = db.session.get(Instance, instance_id)
    if instance is None or instance.state != states.RUNNING or \
            instance.task == states.TASK_IMAGING:
        return
    try:
        cluster.node_for(instance.node_id).reboot(instance_id)
    except DriverError as error:
        log.warning("reboot of %s failed: %s", instance_id, error)
