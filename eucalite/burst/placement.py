"""Where a launch goes: which burst target, if any, takes it.

* A launch naming a burst zone (``burst-<name>``) goes to that target; it must be enabled
  and map the image and the instance type (else InvalidParameterValue, before anything is
  recorded), and have answered at its last contact (else InsufficientInstanceCapacity
  saying so).
* A launch naming no zone goes first to an enabled ``always`` target listing the caller's
  account or the launch's Auto Scaling group (``aws:autoscaling:groupName``) that maps its
  image and type and answered at its last contact.
* A launch naming no zone that local capacity cannot take (InsufficientInstanceCapacity)
  goes to the first (by name) enabled ``when-full`` target that maps its image and type
  and answered at its last contact; when the only ones that would have taken it are
  unreachable, the capacity error says so.
* Auto Scaling aims a group's launch at one of its local zones with
  ``LaunchRequest.zones`` and no zone, so these rules apply to it as to a launch naming no
  zone.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..accounts import Principal
from ..db import db
from ..errors import InvalidParameterValue
from ..errors.ec2 import InsufficientInstanceCapacity
from ..compute.instances import LaunchRequest
from ..compute.models import Instance
from . import targets
from .models import ALWAYS, WHEN_FULL, ZONE_PREFIX, BurstTarget

GROUP_TAG = "aws:autoscaling:groupName"


@dataclass(frozen=True)
class Placement:
    """A launch placed on burst target *target* (its zone *zone*)."""

    target: str
    zone: str


def takes(target: BurstTarget, image_id: str, instance_type: str) -> bool:
    """*target* is enabled and maps both the image and the instance type."""
    return target.enabled and image_id in target.get_json("image_map", {}) and \
        instance_type in target.get_json("type_map", {})


def _group(request: LaunchRequest) -> str | None:
    return {**(request.tags or {}), **(request.system_tags or {})}.get(GROUP_TAG)


def first(principal: Principal, request: LaunchRequest, image_id: str,
          instance_type: str) -> Placement | None:
    """The placement decided before local capacity is tried (the zone asked for, an
    ``always`` target); None: try locally."""
    if request.zone and request.zone.startswith(ZONE_PREFIX):
        target = db.session.get(BurstTarget, request.zone[len(ZONE_PREFIX):])
        if target is not None:
            if not takes(target, image_id, instance_type):
                raise InvalidParameterValue(
                    f"The availability zone {request.zone} (a burst target) "
                    + ("is disabled." if not target.enabled else
                       f"cannot run {image_id} as {instance_type}: it maps no such "
                       "image or instance type."))
            if target.unreachable:
                raise InsufficientInstanceCapacity(
                    f"Insufficient capacity in {request.zone}: burst target {target.name} is "
                    f"unreachable: {target.last_error}")
            return Placement(target.name, target.zone)
    if request.zone:
        return None             # a zone of this cloud was asked for
    group = _group(request)
    for target in targets.list_all():
        if target.policy == ALWAYS and not target.unreachable and \
                takes(target, image_id, instance_type) and (
                    principal.account_id in target.get_json("accounts", []) or
                    (group is not None and group in target.get_json("groups", []))):
            return Placement(target.name, target.zone)
    return None


def overflow(request: LaunchRequest, image_id: str, instance_type: str,
             error: InsufficientInstanceCapacity) -> Placement:
    """The ``when-full`` target that takes a launch local capacity refused with *error*;
    *error* again (naming the unreachable targets that would have taken it) if none."""
    if request.zone:
        raise error             # a zone of this cloud was asked for
    down = []
    for target in targets.list_all():
        if target.policy == WHEN_FULL and takes(target, image_id, instance_type):
            if not target.unreachable:
                return Placement(target.name, target.zone)
            down.append(f"burst target {target.name} is unreachable: {target.last_error}")
    if down:
        error.message = f"{error.message} {'; '.join(down)}"
        error.args = (error.message,)
    raise error


def mark(instance_ids: list[str], placement: Placement) -> None:
    """Record the new instances *instance_ids* as running on *placement*'s target (in the
    launch's transaction)."""
    db.session.execute(db.update(Instance).where(Instance.id.in_(instance_ids))
                       .values(burst_target=placement.target))
