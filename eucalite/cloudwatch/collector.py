"""Eucalite's own measurements, published into CloudWatch as AWS's services publish theirs.

Every pass (:meth:`Collector.collect`, run every ``detailed_metrics_interval`` seconds by
:func:`start`) asks each node for the cumulative counters of its running domains
(:meth:`eucalite.cluster.node.Node.counters`: one call per node) and turns the change since
an instance's previous sample into its metrics, once that sample is an interval old: every
``metrics_interval`` (60 s) for basic monitoring, every ``detailed_metrics_interval`` (10 s,
stored at 1-second resolution) for instances with detailed monitoring
(MonitorInstances). What is published, into the owner's account:

* ``AWS/EC2`` per InstanceId: CPUUtilization (Percent: CPU time used over the wall time
  times the vCPUs), DiskRead/WriteBytes and DiskRead/WriteOps of the instance-store disks
  (Sum over the interval, as AWS counts them: EBS volumes are AWS/EBS's), NetworkIn/Out
  (Bytes) and NetworkPacketsIn/Out (Count), and StatusCheckFailed, _Instance and _System
  (0 or 1) from the checks the reconciler keeps (:mod:`eucalite.compute.instance_status`).
  The same data also per AutoScalingGroupName (instances tagged ``aws:autoscaling:
  groupName``) and, for detailed instances as on AWS, per ImageId, per InstanceType and
  across all instances (no dimension).
* ``AWS/EBS`` per VolumeId of each attached volume: VolumeRead/WriteBytes,
  VolumeRead/WriteOps and VolumeIdleTime (the interval's seconds when it saw no I/O), into
  the volume owner's account.
* ``AWS/S3`` once a UTC day per bucket: BucketSizeBytes (StorageType=StandardStorage:
  every version's bytes) and NumberOfObjects (StorageType=AllStorageTypes: every version
  and delete marker), stamped at the day's midnight; a restart the same day does not
  publish them twice.
* ``Eucalite/Node`` per NodeId, for the cloud admin (the ``eucalyptus`` account) every
  ``metrics_interval``: vCPUs and MiB of memory allocated and free (overcommit applied)
  and the instances running there: capacity planning.

An instance's first sample only primes its counters; a counter lower than before (the guest
rebooted, or stopped and started) primes them again. A node that keeps no statistics
(libvirt's test driver: NotSupported) or cannot be reached is skipped for that pass.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import func, select

from .. import duty, tags
from ..accounts import ADMIN_ACCOUNT, get_account
from ..cluster.virt.driver import DiskCounters, DomainCounters, NotSupported
from ..compute import instance_status, states
from ..compute.models import Instance
from ..db import db
from ..ebs.models import Volume
from ..errors.iam import NoSuchEntity
from ..s3.models import Bucket, ObjectVersion
from . import store
from .datums import Datum, single
from .levels import LEVELS

log = logging.getLogger(__name__)

#: The namespace of the nodes' own metrics, in the cloud admin's account.
NODE_NAMESPACE = "Eucalite/Node"
#: The tag EC2 Auto Scaling puts on its instances (their AutoScalingGroupName dimension).
ASG_TAG = "aws:autoscaling:groupName"
DAY = 86400


@dataclass
class _Sample:
    """An instance's last counters and when they were read (epoch seconds)."""

    at: float
    counters: DomainCounters


@dataclass(frozen=True)
class _Watched:
    """What the collector needs of a running instance (read once per pass)."""

    id: str
    owner_id: str
    node_id: str
    image_id: str
    instance_type: str
    detailed: bool
    status: Any                   # instance_status.InstanceStatus


def _values(counters: DomainCounters) -> list[int]:
    """Every counter in a fixed order: what "went backwards" compares."""
    values = [counters.cpu_time_ns]
    for group in (counters.disks, counters.nics):
        for name in sorted(group):
            values.extend(dataclasses.astuple(group[name]))
    return values


def restarted(old: DomainCounters, new: DomainCounters) -> bool:
    """Whether *new* cannot follow *old* (a counter went down, devices changed): the domain
    started again, or a disk was plugged or unplugged."""
    if set(old.disks) != set(new.disks) or set(old.nics) != set(new.nics):
        return True
    return any(b < a for a, b in zip(_values(old), _values(new)))


def cpu_utilization(old: _Sample, new: _Sample) -> float:
    """Percent of the instance's vCPUs busy between two samples (0 to 100)."""
    wall = new.at - old.at
    if wall <= 0:
        return 0.0
    used = (new.counters.cpu_time_ns - old.counters.cpu_time_ns) / 1e9
    return max(0.0, min(100.0, used / (wall * new.counters.vcpus) * 100.0))



def _disk_delta(old: DiskCounters | None, new: DiskCounters) -> DiskCounters:
    old = old or DiskCounters()
    return DiskCounters(*(b - a for a, b in zip(dataclasses.astuple(old),
                                                 dataclasses.astuple(new))))


class Collector:
    """The samples between passes and the daily S3 mark; one per serving process.
    *services* is the service bundle (:mod:`eucalite.services`)."""

    def __init__(self, services: Any, config: dict[str, Any]):
        self.services = services
        # at least a second each (a 0 would spin the loop); basic never finer than detailed
        self.detailed = max(1.0, float(config.get("detailed_metrics_interval", 10)))
        self.basic = max(self.detailed, float(config.get("metrics_interval", 60)))
        self._samples: dict[str, _Sample] = {}
        self._checked: dict[str, float] = {}     # instance id -> when its checks were sent
        self._node_published = 0.0
        self._s3_day: int | None = None
        self._problems: dict[str, str] = {}      # node id -> the sampling error last logged

    # --- one pass ---------------------------------------------------------------------------

    def collect(self, now: float | None = None) -> int:
        """Sample the nodes and publish what is due (see the module docstring); returns how
        many datapoints were published. Needs an app context."""
        now = time.time() if now is None else now
        by_owner: dict[tuple[str, str], list[Datum]] = {}
        watched = self._running()
        for node_id, instances in _by_node(watched).items():
            due = [item for item in instances if self._due(self._samples, item, now)]
            counters = self._sample(node_id) if due else None
            if counters is not None:
                self._instance_data(due, counters, now, by_owner)
        self._status_data(watched, now, by_owner)
        live = {item.id for item in watched}
        for kept in (self._samples, self._checked):
            for instance_id in set(kept) - live:
                del kept[instance_id]
        if now - self._node_published >= self.basic - self.detailed / 2:
            self._node_published = now
            admin = _admin_account_id()
            if admin is not None:
                by_owner.setdefault((admin, NODE_NAMESPACE), []).extend(
                    _node_data(self.services, watched, int(now)))
        for (account_id, namespace), data in by_owner.items():
            self.services.cloudwatch.publish(account_id, namespace, data)
        return sum(len(data) for data in by_owner.values()) + self._s3_daily(now)

    def _running(self) -> list[_Watched]:
        """Every running instance with a node, with its status checks."""
        rows = list(db.session.execute(select(Instance).where(
            Instance.state == states.RUNNING, Instance.node_id.is_not(None))).scalars())
        compute = self.services.compute
        nodes = {node.id: node for node in self.services.cluster.list_nodes()}
        watched = []
        for row in rows:
            node = nodes.get(row.node_id)
            status = instance_status.status_of(row, node.state if node else None,
                                               compute.status_board,
                                               node.last_seen if node else None)
            watched.append(_Watched(row.id, row.owner_id, row.node_id, row.image_id,
                                    row.instance_type, row.monitoring == "enabled", status))
        db.session.rollback()       # a read only: release the snapshot
        return watched

    def _interval(self, item: _Watched) -> float:
        return self.detailed if item.detailed else self.basic

    def _due(self, last: dict, item: _Watched, now: float) -> bool:
        """Whether *item* has no entry in *last* (instance id -> a sample, or a time) or
        it is an interval old (less half a pass, for jitter)."""
        seen = last.get(item.id)
        if seen is None:
            return True
        at = seen.at if isinstance(seen, _Sample) else seen
        return now - at >= self._interval(item) - self.detailed / 2

    def _sample(self, node_id: str) -> dict[str, DomainCounters] | None:
        """The node's counters, or None when it keeps none or cannot answer now."""
        try:
            counters = self.services.cluster.node_for(node_id).counters()
        except Exception as error:  # noqa: BLE001 - one node's failure must not stop a pass
            # said once per node and problem, not every pass
            if self._problems.get(node_id) != str(error):
                self._problems[node_id] = str(error)
                if isinstance(error, NotSupported):
                    log.info("node %s keeps no domain statistics: %s", node_id, error)
                else:
                    log.warning("cannot sample node %s: %s", node_id, error)
            return None
        self._problems.pop(node_id, None)
        return counters

    # --- AWS/EC2 and AWS/EBS ----------------------------------------------------------------

    def _instance_data(self, due: list[_Watched], counters: dict[str, DomainCounters],
                       now: float, by_owner: dict) -> None:
        """The due instances' datapoints, by (account, namespace), into *by_owner*."""
        ids = [item.id for item in due]
        volumes = _attached_volumes(ids)
        groups = _asg_names(due)
        for item in due:
            current = counters.get(item.id)
            if current is None:         # not running on the node (paused, stopped meanwhile)
                self._samples.pop(item.id, None)
                continue
            new = _Sample(now, current)
            old = self._samples.get(item.id)
            self._samples[item.id] = new
            if old is None or restarted(old.counters, current):
                continue
            resolution = 1 if item.detailed else 60
            at = int(now)
            dimension_sets = self._dimension_sets(item, groups)
            ec2, ebs = _instance_metrics(old, new, volumes.get(item.id, {}))
            data = by_owner.setdefault((item.owner_id, "AWS/EC2"), [])
            for name, unit, value in ec2:
                data.extend(single(name, dims, at, unit, value, resolution)
                            for dims in dimension_sets)
            for (volume_id, owner_id), metrics in ebs.items():
                by_owner.setdefault((owner_id, "AWS/EBS"), []).extend(
                    single(name, [["VolumeId", volume_id]], at, unit, value, resolution)
                    for name, unit, value in metrics)

    @staticmethod
    def _dimension_sets(item: _Watched, groups: dict[str, str]) -> list[list[list[str]]]:
        """The dimension sets AWS publishes an instance's metrics under: its InstanceId,
        its AutoScalingGroupName, and for detailed monitoring ImageId, InstanceType and
        none (across all instances)."""
        sets = [[["InstanceId", item.id]]]
        if item.id in groups:
            sets.append([["AutoScalingGroupName", groups[item.id]]])
        if item.detailed:
            sets += [[["ImageId", item.image_id]], [["InstanceType", item.instance_type]], []]
        return sets

    def _status_data(self, watched: list[_Watched], now: float, by_owner: dict) -> None:
        """StatusCheckFailed(_Instance/_System) of every running instance whose interval
        has passed, whether or not its node answered (an unreachable node is what
        StatusCheckFailed_System reports)."""
        due = [item for item in watched if self._due(self._checked, item, now)]
        groups = _asg_names(due)
        for item in due:
            metrics = _status_metrics(item.status)
            if not metrics:
                continue
            self._checked[item.id] = now
            resolution = 1 if item.detailed else 60
            data = by_owner.setdefault((item.owner_id, "AWS/EC2"), [])
            for dims in self._dimension_sets(item, groups):
                data.extend(single(name, dims, int(now), unit, value, resolution)
                            for name, unit, value in metrics)

    # --- AWS/S3 -----------------------------------------------------------------------------

    def _s3_daily(self, now: float) -> int:
        """Once a UTC day: every bucket's size and object count (see the module docstring);
        returns the datapoints published."""
        day = int(now) - int(now) % DAY
        if self._s3_day == day:
            return 0
        self._s3_day = day
        by_owner: dict[str, list[Datum]] = {}
        for name, owner_id, size, count in _bucket_usage():
            if _published_on(owner_id, name, day):
                continue
            by_owner.setdefault(owner_id, []).extend([
                single("BucketSizeBytes", [["BucketName", name],
                                           ["StorageType", "StandardStorage"]],
                       day, "Bytes", size, 60),
                single("NumberOfObjects", [["BucketName", name],
                                           ["StorageType", "AllStorageTypes"]],
                       day, "Count", count, 60)])
        db.session.rollback()
        for owner_id, data in by_owner.items():
            self.services.cloudwatch.publish(owner_id, "AWS/S3", data)
        return sum(len(data) for data in by_owner.values())


def _by_node(watched: Iterable[_Watched]) -> dict[str, list[_Watched]]:
    grouped: dict[str, list[_Watched]] = {}
    for item in watched:
        grouped.setdefault(item.node_id, []).append(item)
    return grouped


def _instance_metrics(old: _Sample, new: _Sample, volumes: dict[str, tuple[str, str]]):
    """``([(name, unit, value)] of AWS/EC2, {(volume id, owner): [(name, unit, value)]} of
    AWS/EBS)`` between two samples; *volumes*: disk target -> (volume id, owner) of the
    instance's EBS volumes (the other disks are instance store)."""
    seconds = new.at - old.at
    store_io = DiskCounters()
    ebs = {}
    for target, counters in new.counters.disks.items():
        delta = _disk_delta(old.counters.disks.get(target), counters)
        if target in volumes:
            idle = seconds if delta.read_ops + delta.write_ops == 0 else 0.0
            ebs[volumes[target]] = [
                ("VolumeReadBytes", "Bytes", delta.read_bytes),
                ("VolumeWriteBytes", "Bytes", delta.write_bytes),
                ("VolumeReadOps", "Count", delta.read_ops),
                ("VolumeWriteOps", "Count", delta.write_ops),
                ("VolumeIdleTime", "Seconds", idle)]
        else:
            store_io = DiskCounters(*(a + b for a, b in zip(dataclasses.astuple(store_io),
                                                           dataclasses.astuple(delta))))
    net = [0, 0, 0, 0]
    for nic, counters in new.counters.nics.items():
        before = old.counters.nics.get(nic)
        for index, (a, b) in enumerate(zip(dataclasses.astuple(before),
                                           dataclasses.astuple(counters))):
            net[index] += b - a
    rx_bytes, tx_bytes, rx_packets, tx_packets = net
    ec2 = [("CPUUtilization", "Percent", cpu_utilization(old, new)),
           ("DiskReadBytes", "Bytes", store_io.read_bytes),
           ("DiskWriteBytes", "Bytes", store_io.write_bytes),
           ("DiskReadOps", "Count", store_io.read_ops),
           ("DiskWriteOps", "Count", store_io.write_ops),
           ("NetworkIn", "Bytes", rx_bytes), ("NetworkOut", "Bytes", tx_bytes),
           ("NetworkPacketsIn", "Count", rx_packets),
           ("NetworkPacketsOut", "Count", tx_packets)]
    return ec2, ebs


def _status_metrics(status) -> list[tuple[str, str, float]]:
    """StatusCheckFailed, _Instance and _System (1 failed, 0 passed); none while a check
    is still initializing (AWS reports no data then either)."""
    checks = (status.instance.status, status.system.status)
    if any(check not in (instance_status.OK, instance_status.IMPAIRED) for check in checks):
        return []
    instance, system = (float(check == instance_status.IMPAIRED) for check in checks)
    return [("StatusCheckFailed_Instance", "Count", instance),
            ("StatusCheckFailed_System", "Count", system),
            ("StatusCheckFailed", "Count", max(instance, system))]


def _attached_volumes(instance_ids: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """Instance id -> disk target -> (volume id, owner) of its attached EBS volumes."""
    found: dict[str, dict[str, tuple[str, str]]] = {}
    for chunk in range(0, len(instance_ids), store.CHUNK):
        rows = db.session.execute(select(Volume.id, Volume.owner_id, Volume.instance_id,
                                         Volume.target).where(
            Volume.instance_id.in_(instance_ids[chunk:chunk + store.CHUNK]),
            Volume.target.is_not(None)))
        for volume_id, owner_id, instance_id, target in rows:
            found.setdefault(instance_id, {})[target] = (volume_id, owner_id)
    return found


def _asg_names(items: list[_Watched]) -> dict[str, str]:
    """Instance id -> its Auto Scaling group's name, for the instances tagged with one."""
    names: dict[str, str] = {}
    owners: dict[str, list[str]] = {}
    for item in items:
        owners.setdefault(item.owner_id, []).append(item.id)
    for owner_id, ids in owners.items():
        for instance_id, tag_map in tags.tags_for(owner_id, ids).items():
            if ASG_TAG in tag_map:
                names[instance_id] = tag_map[ASG_TAG]
    return names


def _node_data(services: Any, watched: list[_Watched], at: int) -> list[Datum]:
    """Eucalite/Node's datapoints for every registered node."""
    running: dict[str, int] = {}
    for item in watched:
        running[item.node_id] = running.get(item.node_id, 0) + 1
    data = []
    for capacity in services.cluster.node_capacities():
        node = capacity.node
        dims = [["NodeId", node.id]]
        data += [single(name, dims, at, unit, value, 60) for name, unit, value in (
            ("CPUAllocated", "Count", node.used_cores),
            ("CPUFree", "Count", max(0, capacity.cores - node.used_cores)),
            ("MemoryAllocated", "Megabytes", node.used_memory_mb),
            ("MemoryFree", "Megabytes", max(0, capacity.memory_mb - node.used_memory_mb)),
            ("Instances", "Count", running.get(node.id, 0)))]
    db.session.rollback()
    return data


def _admin_account_id() -> str | None:
    """The cloud admin's account id (None before it exists)."""
    try:
        return get_account(ADMIN_ACCOUNT).id
    except NoSuchEntity:
        return None
    finally:
        db.session.rollback()


def _bucket_usage() -> list[tuple[str, str, int, int]]:
    """(bucket name, owner, bytes of every version, versions and delete markers) of every
    bucket, empty ones included."""
    usage = (select(ObjectVersion.bucket_id, func.coalesce(func.sum(ObjectVersion.size), 0)
                    .label("size"), func.count(ObjectVersion.id).label("count"))
             .group_by(ObjectVersion.bucket_id).subquery())
    rows = db.session.execute(
        select(Bucket.name, Bucket.owner_id, func.coalesce(usage.c.size, 0),
               func.coalesce(usage.c.count, 0))
        .outerjoin(usage, usage.c.bucket_id == Bucket.id).order_by(Bucket.name))
    return [(name, owner, int(size), int(count)) for name, owner, size, count in rows]


def _published_on(owner_id: str, bucket: str, day: int) -> bool:
    """Whether the bucket's daily size is already stored for *day* (a restart that day)."""
    metric_id = store.find(owner_id, "AWS/S3", "BucketSizeBytes",
                           [["BucketName", bucket], ["StorageType", "StandardStorage"]])
    if metric_id is None:
        return False
    return bool(store.cells(metric_id, LEVELS[1], day, day + LEVELS[1].seconds, None))


# --- the background loop ------------------------------------------------------------------

def start(app) -> threading.Event:
    """Collect every ``detailed_metrics_interval`` seconds in a daemon thread of the
    serving process; set the returned event to stop it."""
    services = app.extensions["eucalite"]
    collector = Collector(services, services.config)
    return duty.every(app, "cloudwatch-collector", collector.detailed, collector.collect)
