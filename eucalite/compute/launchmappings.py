"""RunInstances' ``BlockDeviceMapping`` over the image's: the volumes an instance launches
with.

AWS's rule: the launch's mappings override the image's, device by device. ``NoDevice``
drops the image's mapping at that device (never the root's); ``VirtualName`` maps an
instance-store disk there instead; ``Ebs`` changes the image's volume there (a larger
``VolumeSize``, its ``DeleteOnTermination`` or ``VolumeType``, or another snapshot) or adds
a volume (from a snapshot the caller may restore, or empty of ``VolumeSize``). The merged
mapping is checked when RunInstances is asked (an AWS error, nothing launched), and the
volumes it makes (:func:`volumes`) are recorded with the instances, counted against the
volume quotas; the first boot writes their data (:mod:`eucalite.compute.ebsroot`). An
instance-store image's instances take ``Ebs`` mappings too, as AWS's do: their data
volumes (the root stays the bundle's).

Mappings are the plain dicts :func:`eucalite.compute.ec2.blockdevices.parse_block_device_mappings`
reads and images store: ``{"device", "virtual"?, "no_device"?, "ebs"?: {"snapshot_id",
"volume_size", "delete_on_termination", "volume_type"}}``.
"""
from __future__ import annotations

import copy

from ..accounts import Principal
from ..ebs import snapshots
from ..ebs.volumes import LaunchVolume
from ..errors import InvalidParameterValue, MissingParameter
from ..errors.ec2 import InvalidAMIIDUnavailable, InvalidBlockDeviceMapping
from .models import Image


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


def volumes(image: Image, merged: list[dict] | None) -> list[LaunchVolume]:
    """The volumes each instance of a launch of *image* makes, given the launch's merged
    mapping (None: the image's own): an EBS-backed image's root first, then one per other
    EBS mapping by device (instance-store and NoDevice mappings make none), each of its
    VolumeSize and at least its snapshot's size. Known when RunInstances is asked, so the
    launch records them with its instances and its volume quotas are checked up front;
    InvalidAMIID.Unavailable when a snapshot the image maps is gone."""
    plan = merged if merged is not None else (image.get_json("block_devices", []) or [])
    root = image.root_device_name
    found = []
    for mapping in sorted(plan, key=lambda m: (m["device"] != root, m["device"])):
        ebs, is_root = mapping.get("ebs"), mapping["device"] == root
        if not ebs or mapping.get("no_device") or \
                (is_root and image.root_device_type != "ebs"):
            continue
        snapshot = snapshots.find(ebs["snapshot_id"]) if ebs.get("snapshot_id") else None
        if ebs.get("snapshot_id") and snapshot is None:
            raise InvalidAMIIDUnavailable(f"The snapshot {ebs['snapshot_id']} that "
                                          f"{image.id} maps at {mapping['device']} is gone.")
        size = max(ebs.get("volume_size") or 0, snapshot.volume_size_gb if snapshot else 0)
        if not size or (is_root and snapshot is None):
            raise InvalidAMIIDUnavailable(f"{image.id} maps {mapping['device']} with "
                                          "neither a snapshot nor a size.")
        found.append(LaunchVolume(
            device=mapping["device"], root=is_root, snapshot_id=ebs.get("snapshot_id"),
            size_gb=size, volume_type=ebs.get("volume_type") or "standard",
            delete_on_termination=ebs.get("delete_on_termination", True) is not False))
    if image.root_device_type == "ebs" and not (found and found[0].root):
        raise InvalidAMIIDUnavailable(f"The image {image.id} has no EBS root snapshot.")
    return found
