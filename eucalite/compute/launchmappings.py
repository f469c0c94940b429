"""RunInstances' ``BlockDeviceMapping`` over the image's: the volumes an instance launches
with.

AWS's rule: the launch's mappings override the image's, device by device. ``NoDevice``
drops the image's mapping at that device (never the root's); ``VirtualName`` maps an
instance-store disk there instead; ``Ebs`` changes the image's volume there (a larger
``VolumeSize``, its ``DeleteOnTermination`` or ``VolumeType``, or another snapshot) or adds
a volume (from a snapshot the caller may restore, or empty of ``VolumeSize``). The merged
mapping is checked when RunInstances is asked (an AWS error, nothing launched) and kept
in the instance's attributes JSON (:data:`LAUNCH_MAPPINGS`), which the first boot makes the
volumes from (:mod:`eucalite.compute.ebsroot`). An instance-store image's instances take
``Ebs`` mappings too, as AWS's do: their data volumes (the root stays the bundle's).

Mappings are the plain dicts :func:`eucalite.compute.ec2.blockdevices.parse_block_device_mappings`
reads and images store: ``{"device", "virtual"?, "no_device"?, "ebs"?: {"snapshot_id",
"volume_size", "delete_on_termination", "volume_type"}}``.
"""
from __future__ import annotations

import copy

from ..accounts import Principal
from ..ebs import snapshots
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import InvalidBlockDeviceMapping
from .models import Image, Instance

#: The key of the merged mapping in an instance's attributes JSON (beside the attributes
#: :mod:`.instance_attributes` keeps there).
LAUNCH_MAPPINGS = "launchBlockDevices"


def merge(principal: Principal, image: Image, requested: list[dict]) -> list[dict]:
    """The image's mapping with *requested* (RunInstances') over it, checked (see the
    module docstring), by device."""
    plan = {m["device"]: copy.deepcopy(m) for m in image.get_json("block_devices", []) or []}
    root = image.root_device_name
    for wanted in requested:
        device = wanted["device"]
        if wanted.get("no_device"):
            if device == root:
                raise InvalidBlockDeviceMapping(f"The root device {device} cannot be "
                                                "suppressed (NoDevice).")
            plan[device] = {"device": device, "no_device": True}
        elif wanted.get("virtual"):
            if device == root:
                raise InvalidBlockDeviceMapping(f"The root device {device} cannot be an "
                                                "instance store volume.")
            plan[device] = {"device": device, "virtual": wanted["virtual"]}
        elif wanted.get("ebs") is not None:
            plan[device] = _ebs_over(principal, plan.get(device), device, root,
                                     wanted["ebs"])
        else:
            raise InvalidBlockDeviceMapping(f"The mapping for {device} needs Ebs, "
                                            "VirtualName or NoDevice.")
    return [plan[device] for device in sorted(plan)]


def _ebs_over(principal: Principal, current: dict | None, device: str, root: str | None,
              ebs: dict) -> dict:
    """The EBS mapping at *device* once *ebs* is applied over the image's (*current*)."""
    base = dict((current or {}).get("ebs") or {})
    if not base and device == root:
        raise InvalidBlockDeviceMapping(f"The image has no EBS root at {device}.")
    snapshot_id = ebs.get("snapshot_id") or base.get("snapshot_id")
    snapshot = snapshots.restorable(principal, snapshot_id) if ebs.get("snapshot_id") else \
        (snapshots.find(snapshot_id) if snapshot_id else None)
    size = ebs.get("volume_size") or base.get("volume_size") or \
        (snapshot.volume_size_gb if snapshot is not None else None)
    if size is None:
        raise MissingParameter(f"The mapping for {device} needs Ebs.SnapshotId or "
                               "Ebs.VolumeSize.")
    if snapshot is not None and size < snapshot.volume_size_gb:
        raise InvalidParameterValue(
            f"Volume of {size}GiB for {device} is smaller than snapshot '{snapshot.id}', "
            f"which is {snapshot.volume_size_gb}GiB.")
    return {"device": device, "ebs": {
        "snapshot_id": snapshot_id, "volume_size": size,
        "volume_type": ebs.get("volume_type") or base.get("volume_type") or "standard",
        "delete_on_termination": ebs.get("delete_on_termination",
                                         base.get("delete_on_termination", True)) is not False}}


def remember(instance: Instance, merged: list[dict]) -> None:
    """Keep the launch's merged mapping in *instance*'s attributes JSON (the caller
    commits)."""
    instance.set_json("attributes", {**(instance.get_json("attributes") or {}),
                                     LAUNCH_MAPPINGS: merged})


def of_instance(instance: Instance, image: Image | None) -> list[dict]:
    """The mapping *instance* launches with: its launch's merged one, else its image's."""
    kept = (instance.get_json("attributes") or {}).get(LAUNCH_MAPPINGS)
    if kept is not None:
        return kept
    return (image.get_json("block_devices", []) or []) if image is not None else []


def root_of(instance: Instance, image: Image | None) -> dict | None:
    """The EBS mapping of *instance*'s root device in :func:`of_instance` (None if none)."""
    for mapping in of_instance(instance, image):
        if mapping.get("device") == instance.root_device_name and mapping.get("ebs"):
            return mapping["ebs"]
    return None
