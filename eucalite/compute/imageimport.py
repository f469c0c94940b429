"""Getting images in: RegisterImage (a bundle's manifest, or an EBS snapshot as the root),
and importing kernel/ramdisk/root files as bundles in one step.

A bundled image (instance-store) is registered from its manifest in the object store
(``bucket/prefix.manifest.xml``), read *as the caller*, so nobody can register a bundle they
cannot read. Registration is synchronous: the manifest is parsed and every part's existence
checked before the row is written, so an image is ``available`` from the moment it exists
(the parts' digests are verified when a node unbundles it, see
:func:`eucalite.compute.images.read_part_fn`).

:func:`import_images` does in-process what euca-bundle-image + euca-upload-bundle +
euca-register do against a cloud: bundle each file (unencrypted: the data never leaves this
host), upload the manifest and parts to a bucket, and register an EKI, an ERI and (with a
root) an EMI booting that kernel and ramdisk. ``eucalite image import``, ``eucalite guest
build --import`` and the console's image upload all call it through
:meth:`eucalite.compute.service.ComputeService.import_images`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Mapping

from .. import quotas, tags
from ..accounts import Principal
from ..db import db, write_lock
from ..ebs import snapshots
from ..errors import AwsError, InvalidParameterValue, MissingParameter
from ..errors import ec2 as ec2_errors
from ..s3 import buckets, objects, sse
from ..s3.store import HashingReader
from . import bundle, bundling, imageflags
from .images import (ARCHITECTURES, VIRTUALIZATION_TYPES, launchable_part, new_image_id,
                     split_location, validate_description, validate_name)
from .models import Image

#: The bucket imported bundles go to unless the caller names another.
DEFAULT_BUCKET = "eucalite-images"


# --- RegisterImage ------------------------------------------------------------------------

@dataclass
class Registration:
    """What RegisterImage says, as plain values (None: not given)."""

    name: str | None = None
    location: str | None = None
    description: str | None = None
    architecture: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    root_device_name: str | None = None
    virtualization_type: str | None = None
    imds_support: str | None = None        # "v2.0" or None
    #: ``{"device", "virtual"?, "no_device"?, "ebs"?: {"snapshot_id", "volume_size",
    #: "delete_on_termination", "volume_type"}}`` each, as stored on the image
    block_devices: list[dict] = field(default_factory=list)


def read_manifest(principal: Principal, store, location: str) -> bundle.Manifest:
    """Parse the manifest at *location*, read as *principal*, and check every part exists.

    Whatever stops it (no bucket, no key, no access, bad XML, a missing part) is EC2's
    ``InvalidManifest``: the message says which.
    """
    bucket_name, key = split_location(location)
    try:
        version = objects.get(principal, bucket_name, key)
        if version.size > bundle.MAX_MANIFEST_BYTES:
            raise bundle.InvalidManifest("The manifest is larger than any bundle manifest.")
        xml = b"".join(sse.read(store, version))
    except bundle.InvalidManifest:
        raise
    except AwsError as error:
        raise bundle.InvalidManifest(f"Cannot read the manifest {location}: {error.code}: "
                                     f"{error.message}")
    manifest = bundle.parse_manifest(xml)
    directory = key.rpartition("/")[0]
    for filename, _digest in manifest.parts:
        part_key = f"{directory}/{filename}" if directory else filename
        try:
            objects.get(principal, bucket_name, part_key)
        except AwsError as error:
            raise bundle.InvalidManifest(f"Part {bucket_name}/{part_key} of the manifest "
                                         f"cannot be read: {error.code}")
    return manifest


def check_block_devices(principal: Principal, mappings: list[dict]) -> list[dict]:
    """*mappings* as stored, checked: an ``ebs.snapshot_id`` must name a completed snapshot
    the caller may create volumes from, a ``volume_size`` may not be smaller than it (and
    defaults to it)."""
    checked = []
    for mapping in mappings:
        mapping = dict(mapping)
        ebs = mapping.get("ebs")
        if ebs and ebs.get("snapshot_id"):
            ebs = mapping["ebs"] = dict(ebs)
            snapshot = snapshots.restorable(principal, ebs["snapshot_id"])
            size = ebs.get("volume_size")
            if size is not None and size < snapshot.volume_size_gb:
                raise InvalidParameterValue(
                    f"Volume of {size}GiB is smaller than snapshot '{ebs['snapshot_id']}', "
                    f"which is {snapshot.volume_size_gb}GiB.")
            ebs["volume_size"] = size or snapshot.volume_size_gb
        checked.append(mapping)
    return checked


def _manifest_mappings(manifest: bundle.Manifest) -> list[dict]:
    """The manifest's ``virtual -> device`` pairs as stored mappings (ephemeral and swap
    disks; ``ami``/``root`` name the root device, which is reported separately)."""
    out = []
    for virtual, device in manifest.block_devices.items():
        if virtual in ("ami", "root"):
            continue
        out.append({"device": device if device.startswith("/dev/") else f"/dev/{device}",
                    "virtual": virtual})
    return out


def register(principal: Principal, store, request: Registration) -> Image:
    """RegisterImage: a bundled image from its manifest, or one from block device mappings."""
    if request.location:
        manifest = read_manifest(principal, store, request.location)
        kind = manifest.kind
    elif request.block_devices:
        manifest, kind = None, "machine"
    else:
        raise MissingParameter("The request must contain the parameter ImageLocation or "
                               "BlockDeviceMapping (with the root device's snapshot).")
    name = validate_name(request.name or (manifest.name if manifest else None) or "")
    description = validate_description(request.description)
    architecture = request.architecture or (manifest.arch if manifest else None) or "x86_64"
    if architecture not in ARCHITECTURES:
        raise InvalidParameterValue(f"Value ({architecture}) for parameter architecture is "
                                    f"invalid. Valid values: {', '.join(ARCHITECTURES)}")
    imageflags.check_imds_support(request.imds_support)
    mappings = check_block_devices(principal, request.block_devices)
    if manifest is None:
        return _register_ebs(principal, request, name, description, architecture, mappings)
    kernel_id = ramdisk_id = None
    if kind == "machine":
        kernel_id = request.kernel_id or manifest.kernel_id
        ramdisk_id = request.ramdisk_id or manifest.ramdisk_id
        if kernel_id:
            kernel_id = launchable_part(principal, kernel_id, "kernel")
        if ramdisk_id:
            ramdisk_id = launchable_part(principal, ramdisk_id, "ramdisk")
    virtualization = request.virtualization_type or (
        "paravirtual" if kernel_id or kind != "machine" else "hvm")
    if virtualization not in VIRTUALIZATION_TYPES:
        raise InvalidParameterValue(f"Value ({virtualization}) for parameter "
                                    f"virtualizationType is invalid. Valid values: "
                                    f"{', '.join(VIRTUALIZATION_TYPES)}")
    return insert(principal, kind, (mappings or _manifest_mappings(manifest)) or None,
                   manifest.to_json(), name=name, description=description,
                   location=request.location.strip().lstrip("/"), architecture=architecture,
                   kernel_id=kernel_id, ramdisk_id=ramdisk_id,
                   root_device_name=request.root_device_name or "/dev/sda1",
                   root_device_type="instance-store", virtualization_type=virtualization,
                   size_bytes=manifest.image_size, imds_support=request.imds_support)


def _register_ebs(principal: Principal, request: Registration, name: str,
                  description: str | None, architecture: str, mappings: list[dict]) -> Image:
    """An EBS-backed EMI: its root device maps a snapshot; each instance boots a new volume
    made from it (paravirtual with a kernel and ramdisk, else HVM from the disk)."""
    root = request.root_device_name or "/dev/sda1"
    root_ebs = next((m["ebs"] for m in mappings
                     if m["device"] == root and (m.get("ebs") or {}).get("snapshot_id")), None)
    if root_ebs is None:
        raise ec2_errors.InvalidBlockDeviceMapping(
            f"The root device {root} must map an EBS snapshot "
            "(BlockDeviceMapping.N.Ebs.SnapshotId).")
    kernel_id = launchable_part(principal, request.kernel_id, "kernel") \
        if request.kernel_id else None
    ramdisk_id = launchable_part(principal, request.ramdisk_id, "ramdisk") \
        if request.ramdisk_id else None
    virtualization = request.virtualization_type or ("paravirtual" if kernel_id else "hvm")
    if virtualization not in VIRTUALIZATION_TYPES:
        raise InvalidParameterValue(f"Value ({virtualization}) for parameter "
                                    f"virtualizationType is invalid.")
    return insert(principal, "machine", mappings, None, name=name, description=description,
                   location=None, architecture=architecture, kernel_id=kernel_id,
                   ramdisk_id=ramdisk_id, root_device_name=root, root_device_type="ebs",
                   virtualization_type=virtualization,
                   size_bytes=root_ebs["volume_size"] * 2**30,
                   imds_support=request.imds_support)


def insert(principal: Principal, kind: str, block_devices: list[dict] | None,
           manifest: dict | None, *, image_id: str | None = None, state: str = "available",
           tag_map: Mapping[str, str] | None = None, **columns) -> Image:
    """Write the new image (*state*, private, *image_id* or a fresh id of *kind*) with
    *columns* and the tags *tag_map*; InvalidAMIName.Duplicate if the owner already has
    one of that name."""
    tag_map = tags.check_new_tags(tag_map)
    write_lock()
    try:
        check_unique_name(principal.account_id, columns["name"])
        quotas.check(principal, "ec2:RegisterImage", {"ec2:quota-imagenumber": 1})
        image = Image(id=image_id or new_image_id(kind), owner_id=principal.account_id,
                      kind=kind, state=state, is_public=False,
                      creator_user_id=quotas.creator(principal), **columns)
        image.set_json("launch_permissions", [])
        image.set_json("block_devices", block_devices)
        if manifest is not None:
            image.set_json("manifest", manifest)
        db.session.add(image)
        db.session.flush()
        tags.tag_new_resources(principal, "image", [image.id], tag_map)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return image


def check_unique_name(owner_id: str, name: str) -> None:
    taken = db.session.execute(db.select(Image.id).where(
        Image.owner_id == owner_id, Image.name == name)).first()
    if taken is not None:
        raise ec2_errors.InvalidAMINameDuplicate(
            f"AMI name {name} is already in use by AMI {taken[0]}")


# --- importing files ------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageFiles:
    """Paths of the files to import: a kernel and a ramdisk (and optionally a root disk that
    boots with them), or a bootable root disk alone."""

    kernel: str | os.PathLike | None = None
    ramdisk: str | os.PathLike | None = None
    root: str | os.PathLike | None = None

    def check(self) -> None:
        if not self.root and not (self.kernel and self.ramdisk):
            raise MissingParameter("give a kernel and a ramdisk (and optionally a root "
                                   "disk), or a root disk image alone (a bootable disk).")


#: ``progress(label, total_bytes)`` -> a context manager whose value has ``update(nbytes)``
#: (what :func:`click.progressbar` returns), shown while a bundle uploads.
Progress = Callable[[str, int], ContextManager]


class _Silent:
    def update(self, nbytes: int) -> None:
        pass


def _no_progress(label: str, total: int) -> ContextManager:
    return contextlib.nullcontext(_Silent())


def upload_bundle(store, principal: Principal, path: str, bucket: str, prefix: str,
                  kind: str, arch: str, progress: Progress = _no_progress) -> str:
    """Bundle *path* and upload it as *principal* under ``bucket/prefix/``; returns the
    manifest's ImageLocation."""
    base = os.path.basename(path)
    manifest_xml, parts = bundling.make_bundle(path, base, kind, arch)
    total = bundle.parse_manifest(manifest_xml).bundled_size or 0
    with progress(f"uploading {base} ({kind})", total) as bar:
        for filename, data in parts:
            objects.put(store, principal, bucket, f"{prefix}/{filename}",
                        HashingReader(iter([data])),
                        objects.Attributes(content_type="application/octet-stream"))
            bar.update(len(data))
    key = f"{prefix}/{base}.manifest.xml"
    objects.put(store, principal, bucket, key, HashingReader(iter([manifest_xml])),
                objects.Attributes(content_type="application/xml"))
    return f"{bucket}/{key}"


def import_images(store, principal: Principal, files: ImageFiles, *, name: str | None = None,
                  arch: str = "x86_64", bucket: str = DEFAULT_BUCKET,
                  progress: Progress = _no_progress) -> dict[str, str]:
    """Bundle, upload (to *bucket*, made if missing) and register *files* as *principal*.

    Returns ``{"kernel": eki, "ramdisk": eri, "machine": emi}`` for the files given, in that
    order. The kernel and ramdisk are named NAME-kernel and NAME-ramdisk; NAME defaults to
    the root's (else the kernel's) file name. A file the bundler cannot take is ValueError.
    """
    files.check()
    name = name or os.path.basename(files.root or files.kernel)
    buckets.ensure(principal, bucket)
    registered: dict[str, str] = {}
    for kind, path, image_name in (("kernel", files.kernel, f"{name}-kernel"),
                                   ("ramdisk", files.ramdisk, f"{name}-ramdisk"),
                                   ("machine", files.root, name)):
        if not path:
            continue
        location = upload_bundle(store, principal, str(path), bucket, image_name, kind, arch,
                                 progress)
        request = Registration(name=image_name, location=location, architecture=arch)
        if kind == "machine":
            request.kernel_id = registered.get("kernel")
            request.ramdisk_id = registered.get("ramdisk")
        registered[kind] = register(principal, store, request).id
    return registered
