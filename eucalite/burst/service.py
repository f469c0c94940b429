"""The cloud-bursting service object: what the cloud controller, the CLI and the console
call. Admin methods (targets) take plain values; the cloud controller's hooks place a
launch (:meth:`BurstService.first`, :meth:`~BurstService.overflow`,
:meth:`~BurstService.mark`) and hand the remote work to the compute worker
(:meth:`~BurstService.launch_later`, :meth:`~BurstService.act`)."""
from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from ..accounts import Principal
from ..cluster.service import Zone
from ..compute.instances import LaunchRequest
from ..compute.models import Instance
from ..db import db
from ..errors.ec2 import InsufficientInstanceCapacity
from . import jobs, placement, sealed, targets
from .models import BurstTarget
from .placement import Placement
from .reconcile import Report, reconcile_target
from .remote import Remote, RemoteError

log = logging.getLogger(__name__)


class BurstService:
    """Burst targets, their remotes (one cached :class:`Remote` per target setting) and the
    jobs acting on burst instances. ``worker`` (the compute worker) is set by
    :meth:`eucalite.services.Services.build`."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.data_dir = str(config["data_dir"])
        self.worker = None
        self._remotes: dict[tuple, Remote] = {}
        self._lock = threading.Lock()
        self.launching: set[str] = set()        # ids whose launch job is queued or running
        # set when an instance starts moving (launch, terminate, stop...): the reconciler
        # follows it up soon instead of at its next interval
        self.wake = threading.Event()

    # --- targets (the cloud admin) ---------------------------------------------------

    def add_target(self, name: str, **settings) -> BurstTarget:
        """A new target: :func:`eucalite.burst.targets.add`'s settings."""
        return targets.add(self.data_dir, name, **settings)

    def targets(self) -> list[BurstTarget]:
        return targets.list_all()

    def target(self, name: str) -> BurstTarget:
        return targets.get(name)

    def change_target(self, name: str, changes: Mapping[str, Any], **credentials
                      ) -> BurstTarget:
        """Change settings (:data:`eucalite.burst.targets.SETTABLE`) and credentials."""
        return targets.change(self.data_dir, name, changes, **credentials)

    @staticmethod
    def live_instances(name: str) -> int:
        """How many instances on target *name* have not ended."""
        return targets.live_instances(name)

    @staticmethod
    def instances_on(name: str) -> list[Instance]:
        """The instances on target *name* that have not ended, oldest first."""
        return targets.instances_on(name)

    def remove_target(self, name: str) -> None:
        targets.remove(name)

    def check_target(self, name: str) -> str | None:
        """Ask target *name* whether it answers with its credentials now; the error, or
        None. Its health records the answer (a refusal, such as AuthFailure, makes it
        unusable too, as in the reconciler's listing)."""
        target = targets.get(name)
        try:
            remote = self.remote(target)
            db.session.rollback()
            remote.check()
        except RemoteError as error:
            targets.record_health(name, str(error))
            return str(error)
        targets.record_health(name, None)
        return None

    def cloud_id(self) -> str:
        """This cloud's ``eucalite:cloud`` tag on remotes."""
        return sealed.cloud_id(self.data_dir)

    def remote(self, target: BurstTarget) -> Remote:
        """*target*'s Remote, made once per endpoint, region and credentials."""
        key = (target.name, target.endpoint_url, target.region, target.credentials)
        with self._lock:
            remote = self._remotes.get(key)
            if remote is None:
                remote = self._remotes[key] = Remote(
                    targets.endpoint(self.data_dir, target), self.cloud_id())
            return remote

    def zones(self) -> list[Zone]:
        """One availability zone per target: available while it is enabled and answered
        at its last contact, else unavailable with the reason."""
        region = self.config["region"]
        result = []
        for target in targets.list_all():
            messages: tuple[str, ...] = ()
            if not target.enabled:
                messages = ("burst target disabled",)
            elif target.unreachable:
                messages = (f"burst target unreachable: {target.last_error}",)
            result.append(Zone(target.zone, f"{region}-{target.zone}", region,
                               "unavailable" if messages else "available", messages))
        return result

    # --- placement (the cloud controller's RunInstances) ------------------------------

    def first(self, principal: Principal, request: LaunchRequest, image_id: str,
              instance_type: str) -> Placement | None:
        """:func:`eucalite.burst.placement.first`."""
        return placement.first(principal, request, image_id, instance_type)

    def overflow(self, request: LaunchRequest, image_id: str, instance_type: str,
                 error: InsufficientInstanceCapacity) -> Placement:
        """:func:`eucalite.burst.placement.overflow`."""
        return placement.overflow(request, image_id, instance_type, error)

    @staticmethod
    def mark(instance_ids: list[str], where: Placement) -> None:
        placement.mark(instance_ids, where)

    # --- jobs --------------------------------------------------------------------------

    def launch_later(self, instance_ids: list[str]) -> None:
        """Launch the new burst instances remotely on the compute worker."""
        for instance_id in instance_ids:
            with self._lock:
                self.launching.add(instance_id)
            self.worker.submit(self._launch, instance_id)
        self.wake.set()

    def _launch(self, instance_id: str) -> None:
        try:
            jobs.launch(self.remote, instance_id)
        finally:
            with self._lock:
                self.launching.discard(instance_id)

    def act(self, action: str, instance_id: str) -> None:
        """Run *action* (terminate, reboot, stop, start: :mod:`eucalite.burst.jobs`) on the
        remote instance, on the compute worker."""
        self.worker.submit(getattr(jobs, action), self.remote, instance_id)
        self.wake.set()

    def console_output(self, instance: Instance) -> bytes:
        """The remote instance's console output (b"" when it has none or the remote does
        not answer)."""
        target = db.session.get(BurstTarget, instance.burst_target)
        if target is None or not instance.remote_id:
            return b""
        try:
            return self.remote(target).console_output(instance.remote_id)
        except RemoteError as error:
            log.info("console output of %s from %s: %s", instance.id, target.name, error)
            return b""

    # --- reconciling -------------------------------------------------------------------

    def reconcile(self) -> list[Report]:
        """One reconciler pass over every target (:mod:`eucalite.burst.reconcile`)."""
        reports = []
        for target in targets.list_all():
            with self._lock:
                launching = set(self.launching)
            try:
                remote = self.remote(target)
            except RemoteError as error:        # its credentials cannot be unsealed
                targets.record_health(target.name, str(error))
                reports.append(Report(target.name, unreachable=str(error)))
                continue
            reports.append(reconcile_target(target, remote,
                                            lambda instance_id: self.launch_later([instance_id]),
                                            launching))
        return reports
