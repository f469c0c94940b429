"""The rules of CreateImage (an EMI from an EBS-backed instance) and CopyImage (a copy of an
image within this region).

CreateImage takes a snapshot of every EBS volume attached to the instance (its root and its
data volumes), through the storage controller, and registers a new EMI whose block device
mapping names those snapshots. The image is ``pending`` until every snapshot is
``completed``, then ``available``; ``failed`` (with a StateReason) if one ends in
``error`` (:func:`eucalite.compute.images.settle` decides, whenever the image is read).

Consistency, as AWS's ``NoReboot`` chooses (:mod:`eucalite.compute.quiesce`): every volume
of a running instance is copied inside ONE hold, so the snapshots are of one instant.
Without ``NoReboot`` (AWS's default) the guest is shut down cleanly (ACPI; forced off after
``image_shutdown_seconds``), the volumes copied while it is off (what its OS cached is on
disk) and the same domain started again; the instance shows ``running`` throughout, as on
AWS. With ``NoReboot`` the guest is paused for the copies and runs on (crash-consistent).
A stopped instance is simply copied. Chunking and uploading the copies happens after the
hold, while the guest runs.

CopyImage copies within this region only. An instance-store copy is a new registration of
the same bundle (its manifest in the object store, which the copy reads as the original
does). An EBS-backed copy maps the same snapshots: they are read-only, every launch makes
new volumes from them, and a snapshot an image maps cannot be deleted (the storage
controller has no snapshot copy yet).

Functions take a Principal and plain values, never a request.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from .. import tags
from ..accounts import Principal
from ..ebs.service import EbsService
from ..errors import InvalidParameterValue, MissingParameter
from ..errors import ec2 as ec2_errors
from . import imageimport, images, instances, quiesce, states
from .models import Image, Instance

#: The states AWS images an instance in.
IMAGEABLE = (states.RUNNING, states.STOPPED)


@dataclass
class ImageRequest:
    """What CreateImage says, as plain values. *block_devices* are the request's
    mappings as :func:`eucalite.compute.ec2.blockdevices.parse_block_device_mappings`
    reads them, an ``ebs`` value left None where the request did not give it."""

    instance_id: str
    name: str | None
    description: str | None = None
    no_reboot: bool = False
    block_devices: list[dict] = field(default_factory=list)
    image_tags: Mapping[str, str] | None = None
    snapshot_tags: Mapping[str, str] | None = None


@dataclass
class CopyRequest:
    """What CopyImage says, as plain values."""

    source_image_id: str
    source_region: str
    name: str | None
    description: str | None = None
    copy_tags: bool = False
    image_tags: Mapping[str, str] | None = None
    client_token: str | None = None


# --- CreateImage ----------------------------------------------------------------------------

def imageable(principal: Principal, instance_id: str) -> Instance:
    """The caller's EBS-backed instance, running or stopped; else InvalidInstanceID.*,
    UnsupportedOperation (instance-store: bundle it instead) or IncorrectInstanceState."""
    instance = instances.owned(principal, instance_id)
    if instance.root_device_type != "ebs":
        raise ec2_errors.UnsupportedOperation(
            f"The instance '{instance.id}' is not EBS-backed: CreateImage images EBS-backed "
            "instances only (bundle an instance-store instance with BundleInstance).")
    if instance.state not in IMAGEABLE:
        raise instances.incorrect_state(instance, "imaged")
    return instance


def plan_mappings(instance: Instance, volumes: list, source: Image | None,
                  requested: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """The new image's block device mapping, and device -> volume id of the volumes to
    snapshot for it.

    Start from the instance's attached volumes (size, delete-on-termination and type as
    they are) and the source image's ephemeral mappings; then each requested mapping
    overrides its device: ``NoDevice`` suppresses it (never the root), ``VirtualName``
    maps an ephemeral disk, ``Ebs`` changes an attached volume's size (not smaller),
    delete-on-termination or type, or adds a volume (from a snapshot the caller may use,
    or an empty one of ``VolumeSize``)."""
    plan: dict[str, dict] = {}
    to_snapshot: dict[str, str] = {}
    for mapping in (source.get_json("block_devices", []) or []) if source else []:
        if mapping.get("virtual") and not mapping.get("ebs"):
            plan[mapping["device"]] = {"device": mapping["device"],
                                       "virtual": mapping["virtual"]}
    for volume in volumes:
        if not volume.device:
            continue
        plan[volume.device] = {"device": volume.device, "ebs": {
            "volume_size": volume.size_gb, "volume_type": volume.volume_type,
            "delete_on_termination": bool(volume.delete_on_termination)}}
        to_snapshot[volume.device] = volume.id
    for wanted in requested:
        _apply(instance, plan, to_snapshot, wanted)
    return [plan[device] for device in sorted(plan)], to_snapshot


def _apply(instance: Instance, plan: dict, to_snapshot: dict, wanted: dict) -> None:
    device = wanted["device"]
    if wanted.get("no_device"):
        if device == instance.root_device_name:
            raise ec2_errors.InvalidBlockDeviceMapping(
                f"The root device {device} cannot be suppressed (NoDevice).")
        plan[device] = {"device": device, "no_device": True}
        to_snapshot.pop(device, None)
        return
    if wanted.get("virtual"):
        if device == instance.root_device_name:
            raise ec2_errors.InvalidBlockDeviceMapping(
                f"The root device {device} cannot be an instance store volume.")
        plan[device] = {"device": device, "virtual": wanted["virtual"]}
        to_snapshot.pop(device, None)
        return
    ebs = wanted.get("ebs")
    if ebs is None:
        raise ec2_errors.InvalidBlockDeviceMapping(
            f"The mapping for {device} needs Ebs, VirtualName or NoDevice.")
    current = plan.get(device, {}).get("ebs") if device in to_snapshot else None
    if current is not None:
        if ebs.get("snapshot_id"):
            raise ec2_errors.InvalidBlockDeviceMapping(
                f"{device} is a volume of {instance.id}: its snapshot is taken by "
                "CreateImage, it cannot name another.")
        size = ebs.get("volume_size")
        if size is not None and size < current["volume_size"]:
            raise InvalidParameterValue(
                f"Volume of {size}GiB for {device} is smaller than the instance's volume, "
                f"which is {current['volume_size']}GiB.")
        for key in ("volume_size", "volume_type", "delete_on_termination"):
            if ebs.get(key) is not None:
                current[key] = ebs[key]
        return
    if device == instance.root_device_name:
        raise ec2_errors.InvalidBlockDeviceMapping(
            f"The instance has no root volume at {device}.")
    if not ebs.get("snapshot_id") and not ebs.get("volume_size"):
        raise MissingParameter(f"The mapping for {device} needs Ebs.SnapshotId or "
                               "Ebs.VolumeSize.")
    added = {"snapshot_id": ebs.get("snapshot_id"), "volume_size": ebs.get("volume_size"),
             "volume_type": ebs.get("volume_type") or "standard",
             "delete_on_termination": ebs.get("delete_on_termination") is not False}
    plan[device] = {"device": device, "ebs": added}


def create(principal: Principal, ebs: EbsService, request: ImageRequest) -> Image:
    """CreateImage: every check first, then a snapshot per volume to keep (tagged with
    *snapshot_tags*, described as AWS describes them), then the image, ``pending``."""
    instance = imageable(principal, request.instance_id)
    if request.name is None:
        raise MissingParameter("The request must contain the parameter Name")
    name = images.validate_name(request.name)
    description = images.validate_description(request.description)
    imageimport.check_unique_name(principal.account_id, name)
    source = images.find(instance.image_id)
    mappings, to_snapshot = plan_mappings(instance, ebs.attachments(instance.id), source,
                                          request.block_devices)
    mappings = imageimport.check_block_devices(principal, mappings)
    tags.check_new_tags(request.image_tags)           # before any snapshot is taken
    tags.check_new_tags(request.snapshot_tags)
    image_id = images.new_image_id("machine")
    by_device = {m["device"]: m for m in mappings}
    devices = sorted(to_snapshot)
    made = ebs.create_snapshots(
        principal, [to_snapshot[device] for device in devices],
        description=f"Created by CreateImage({instance.id}) for {image_id}",
        tag_map=request.snapshot_tags, hold=_hold(ebs, instance, request.no_reboot))
    for device, snapshot in zip(devices, made):
        by_device[device]["ebs"]["snapshot_id"] = snapshot.id
    return imageimport.insert(
        principal, "machine", mappings, None, image_id=image_id, state="pending",
        tag_map=request.image_tags, name=name, description=description, location=None,
        architecture=source.architecture if source else "x86_64",
        kernel_id=instance.kernel_id, ramdisk_id=instance.ramdisk_id,
        root_device_name=instance.root_device_name, root_device_type="ebs",
        virtualization_type=source.virtualization_type if source else
        ("paravirtual" if instance.kernel_id else "hvm"),
        size_bytes=(by_device.get(instance.root_device_name, {}).get("ebs") or {}).get(
            "volume_size", 0) * 2**30 or None, source_instance_id=instance.id,
        imds_support=source.imds_support if source else None)


def _hold(ebs: EbsService, instance: Instance, no_reboot: bool):
    """The hold the copies of *instance*'s volumes are made in: rebooted (the default) or
    paused (NoReboot) when it runs, none when it is stopped. The guest is reached through
    the storage controller's cluster, the one its volumes are plugged into."""
    if instance.state != states.RUNNING:
        return _nothing_to_hold
    if no_reboot:
        return quiesce.paused(ebs.cluster, instance.id)
    return quiesce.rebooted(ebs.cluster, instance.id, float(ebs.config.get(
        "image_shutdown_seconds", quiesce.DEFAULT_SHUTDOWN_SECONDS)))


@contextmanager
def _nothing_to_hold() -> Iterator[None]:
    yield


# --- CopyImage ------------------------------------------------------------------------------

def copy(principal: Principal, region: str, request: CopyRequest,
         source_tags: Mapping[str, str]) -> Image:
    """CopyImage within *region* (this cloud's): a new image of the caller's with the
    source's registration (see the module docstring), ``available`` when the source is.
    *source_tags* are the source's tags, copied when ``copy_tags``."""
    if request.source_region != region:
        raise InvalidParameterValue(f"Invalid value '{request.source_region}' for "
                                    f"SourceRegion: this cloud is the one region {region}.")
    earlier = _earlier_copy(principal, request)
    if earlier is not None:
        return earlier
    source = images.visible(principal, request.source_image_id)
    if source.kind != "machine":
        raise InvalidParameterValue(f"Image {source.id} is a {source.kind} image; CopyImage "
                                    "copies machine images.")
    if source.state != "available":
        raise ec2_errors.InvalidAMIIDUnavailable(
            f"Image {source.id} is not available (state: {source.state}).")
    if request.name is None:
        raise MissingParameter("The request must contain the parameter Name")
    name = images.validate_name(request.name)
    description = images.validate_description(request.description)
    imageimport.check_unique_name(principal.account_id, name)
    tag_map = dict(source_tags) if request.copy_tags else {}
    tag_map.update(request.image_tags or {})
    return imageimport.insert(
        principal, "machine", source.get_json("block_devices"), source.get_json("manifest"),
        tag_map=tag_map, name=name, description=description, location=source.location,
        architecture=source.architecture, kernel_id=source.kernel_id,
        ramdisk_id=source.ramdisk_id, root_device_name=source.root_device_name,
        root_device_type=source.root_device_type,
        virtualization_type=source.virtualization_type, size_bytes=source.size_bytes,
        source_image_id=source.id, imds_support=source.imds_support,
        client_token=request.client_token)


#: AWS's limit on a client token: up to 64 ASCII characters.
MAX_CLIENT_TOKEN = 64


def _earlier_copy(principal: Principal, request: CopyRequest) -> Image | None:
    """The copy an earlier CopyImage with the same ClientToken made for the caller (a
    retry answers it and makes nothing new), or None; IdempotentParameterMismatch if that
    copy was asked with another source, name or description. Two retries racing past this
    check cannot both copy: the second's name is already taken."""
    token = request.client_token
    if not token:
        return None
    if len(token) > MAX_CLIENT_TOKEN or not token.isascii():
        raise InvalidParameterValue("The ClientToken must be 1 to 64 ASCII characters.")
    earlier = images.by_client_token(principal.account_id, token)
    if earlier is None:
        return None
    if (earlier.source_image_id, earlier.name, earlier.description) != (
            request.source_image_id, request.name, request.description):
        raise ec2_errors.IdempotentParameterMismatch(
            f"The ClientToken {token} was used by an earlier CopyImage with different "
            f"parameters (it made {earlier.id}).")
    return earlier

