"""Images: register, describe, deregister, launch permissions; what RunInstances may launch.

A bundled image (instance-store) is registered from its manifest in the object store
(``bucket/prefix.manifest.xml``), read *as the caller*, so nobody can register a bundle they
cannot read. Registration is synchronous: the manifest is parsed and every part's existence
checked before the row is written, so an image is ``available`` from the moment it exists
(the parts' digests are verified when a node unbundles it, see :func:`read_part_fn`).

Ids follow Eucalyptus: ``emi-``/``eki-``/``eri-`` by the manifest's image type, with 8 hex
digits. An account sees (and may launch) its own images, public ones and those whose launch
permission lists it. Functions take a Principal and plain values, never a request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from sqlalchemy import or_

from .. import integers
from .. import ids
from ..accounts import Account, Principal
from ..db import db, write_lock
from ..errors import AwsError, ClientError, InvalidParameterValue, MissingParameter
from ..query import Struct, check_text
from . import bundle
from .models import Image

PREFIXES = {"machine": "emi", "kernel": "eki", "ramdisk": "eri"}
KINDS_BY_PREFIX = {"emi": "machine", "ami": "machine", "eki": "kernel", "aki": "kernel",
                   "eri": "ramdisk", "ari": "ramdisk"}
ARCHITECTURES = ("i386", "x86_64")
VIRTUALIZATION_TYPES = ("paravirtual", "hvm")
_IMAGE_ID = re.compile(r"^[ae][mkr]i-([0-9a-f]{8}|[0-9a-f]{17})\Z")
#: AWS: 3-128 letters, digits, ( ) [ ] space . / - ' @ _
_NAME = re.compile(r"^[A-Za-z0-9()\[\] ./\-'@_]{3,128}\Z")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}\Z")
MAX_DESCRIPTION = 255


class ImageNotFound(AwsError):
    code, status = "InvalidAMIID.NotFound", 400

    def __init__(self, image_id: str):
        super().__init__(f"The image id '[{image_id}]' does not exist")


def auth_failure(image_id: str) -> AwsError:
    """What EC2 answers a non-owner changing an image it can see."""
    return AwsError(f"Not authorized for image: {image_id}", code="AuthFailure", status=403)


def attribute_value_error(message: str) -> ClientError:
    return ClientError(message, code="InvalidAMIAttributeItemValue")


# --- ids and lookups ----------------------------------------------------------------------

def new_image_id(kind: str) -> str:
    """A fresh Eucalyptus-style id (``emi-0a1b2c3d``) not used by any image."""
    while True:
        image_id = ids.resource_id(PREFIXES[kind], digits=8)
        if db.session.get(Image, image_id) is None:
            return image_id


def check_id(image_id: str) -> str:
    """*image_id* if well formed, else ``InvalidAMIID.Malformed``."""
    if not isinstance(image_id, str) or not _IMAGE_ID.match(image_id):
        raise ClientError(f"Invalid id: \"{image_id}\" (expecting \"emi-...\")",
                          code="InvalidAMIID.Malformed")
    return image_id


def launch_permissions(image: Image) -> list[str]:
    """Account ids (besides the owner) that may launch *image*."""
    return list(image.get_json("launch_permissions", []) or [])


def can_launch(account_id: str, image: Image) -> bool:
    """Own, public or shared with the account: what makes an image visible and launchable."""
    return (image.owner_id == account_id or image.is_public
            or account_id in launch_permissions(image))


def visible(principal: Principal, image_id: str) -> Image:
    """The image if the caller may see it; else InvalidAMIID.NotFound (never revealing it)."""
    image = db.session.get(Image, check_id(image_id))
    if image is None or not can_launch(principal.account_id, image):
        raise ImageNotFound(image_id)
    return image


def owned(principal: Principal, image_id: str) -> Image:
    """The image if the caller owns it; AuthFailure if it can only see it."""
    image = visible(principal, image_id)
    if image.owner_id != principal.account_id:
        raise auth_failure(image_id)
    return image


def launchable(principal: Principal, image_id: str) -> Image:
    """The machine image RunInstances may start for *principal*.

    Unknown, invisible and non-machine images are InvalidAMIID.NotFound (EC2 launches only
    machine images); an image not ``available`` is InvalidAMIID.Unavailable.
    """
    image = visible(principal, image_id)
    if image.kind != "machine":
        raise ImageNotFound(image_id)
    if image.state != "available":
        raise AwsError(f"Image {image_id} is not available (state: {image.state}).",
                       code="InvalidAMIID.Unavailable", status=400)
    return image


def _check_part_image(principal: Principal, image_id: str, kind: str) -> str:
    """A KernelId/RamdiskId the caller gives must be an existing, launchable image of *kind*."""
    image = visible(principal, image_id)
    if image.kind != kind:
        raise InvalidParameterValue(f"Image {image_id} is a {image.kind} image, not a {kind}.")
    if image.state != "available":
        raise ImageNotFound(image_id)
    return image.id


# --- registration -------------------------------------------------------------------------

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
    block_devices: list[dict] = field(default_factory=list)   # BlockDeviceMapping.N structs


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ClientError(f"AMI names must be between 3 and 128 characters long, and may "
                          f"contain letters, numbers, '(', ')', '.', '-', '/', '_', '[', "
                          f"']', ' ', '@' and \"'\": {name!r}", code="InvalidAMIName.Malformed")
    return name


def validate_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidParameterValue(f"The description exceeds {MAX_DESCRIPTION} characters.")
    return check_text(description, "Description")


def split_location(location: str) -> tuple[str, str]:
    """``bucket/key`` of an ImageLocation (a leading ``/`` or ``s3://`` is tolerated)."""
    text = location.strip()
    if text.startswith("s3://"):
        text = text[5:]
    bucket_name, _, key = text.lstrip("/").partition("/")
    if not bucket_name or not key:
        raise ClientError(f"The ImageLocation {location!r} is not bucket/prefix.manifest.xml.",
                          code="InvalidManifest")
    return bucket_name, key


def read_manifest(principal: Principal, store, location: str) -> bundle.Manifest:
    """Parse the manifest at *location*, read as *principal*, and check every part exists.

    Whatever stops it (no bucket, no key, no access, bad XML, a missing part) is EC2's
    ``InvalidManifest``: the message says which.
    """
    from ..s3 import objects

    bucket_name, key = split_location(location)
    try:
        version = objects.get(principal, bucket_name, key)
        if version.size > bundle.MAX_MANIFEST_BYTES:
            raise bundle.InvalidManifest("The manifest is larger than any bundle manifest.")
        xml = b"".join(store.read(version.segments))
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


def _block_device_mappings(principal: Principal, items: list[dict]) -> list[dict]:
    """BlockDeviceMapping.N as stored: {device, virtual?, ebs?, no_device?}. An
    ``Ebs.SnapshotId`` must name a completed snapshot the caller may create volumes from."""
    mappings = []
    for index, item in enumerate(items, 1):
        item = Struct.of(item, f"BlockDeviceMapping.{index}")
        device = item.get("DeviceName")
        if not device:
            raise MissingParameter(f"The request must contain the parameter "
                                   f"{item.name}.DeviceName")
        mapping: dict = {"device": device}
        if item.get("VirtualName") is not None:
            mapping["virtual"] = item["VirtualName"]
        if "NoDevice" in item:
            mapping["no_device"] = True
        if "Ebs" in item:
            mapping["ebs"] = _ebs_mapping(principal, item.struct("Ebs"), index)
        mappings.append(mapping)
    return mappings


def _ebs_mapping(principal: Principal, ebs: Struct, index: int) -> dict:
    """One mapping's ``Ebs`` struct, checked: its snapshot, size and deletion flag."""
    from ..ebs.volumes import MAX_SIZE_GB

    text = ebs.get("VolumeSize")
    size = None if text is None else integers.parse(text, minimum=1, maximum=MAX_SIZE_GB)
    if text is not None and size is None:
        raise InvalidParameterValue(f"Value ({text}) for parameter "
                                    f"BlockDeviceMapping.{index}.Ebs.VolumeSize is invalid. "
                                    f"Expected an integer between 1 and {MAX_SIZE_GB}.")
    snapshot_id = ebs.get("SnapshotId")
    if snapshot_id:
        from ..ebs import snapshots

        snapshot = snapshots.restorable(principal, snapshot_id)
        if size is not None and size < snapshot.volume_size_gb:
            raise InvalidParameterValue(
                f"Volume of {size}GiB is smaller than snapshot '{snapshot_id}', which is "
                f"{snapshot.volume_size_gb}GiB.")
        size = size or snapshot.volume_size_gb
    return {"snapshot_id": snapshot_id, "volume_size": size,
            "delete_on_termination":
                str(ebs.get("DeleteOnTermination", "true")).lower() == "true",
            "volume_type": ebs.get("VolumeType") or "standard"}


def ebs_root(image: Image) -> dict | None:
    """The root device's EBS mapping of an EBS-backed image (None for instance-store)."""
    for mapping in image.get_json("block_devices", []) or []:
        if mapping.get("device") == image.root_device_name and mapping.get("ebs"):
            return mapping["ebs"]
    return None


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
    mappings = _block_device_mappings(principal, request.block_devices)
    if manifest is None:
        return _register_ebs(principal, request, name, description, architecture, mappings)
    kernel_id = ramdisk_id = None
    if kind == "machine":
        kernel_id = request.kernel_id or manifest.kernel_id
        ramdisk_id = request.ramdisk_id or manifest.ramdisk_id
        if kernel_id:
            kernel_id = _check_part_image(principal, kernel_id, "kernel")
        if ramdisk_id:
            ramdisk_id = _check_part_image(principal, ramdisk_id, "ramdisk")
    virtualization = request.virtualization_type or (
        "paravirtual" if kernel_id or kind != "machine" else "hvm")
    if virtualization not in VIRTUALIZATION_TYPES:
        raise InvalidParameterValue(f"Value ({virtualization}) for parameter "
                                    f"virtualizationType is invalid. Valid values: "
                                    f"{', '.join(VIRTUALIZATION_TYPES)}")
    root_device = request.root_device_name or "/dev/sda1"
    write_lock()
    try:
        _check_unique_name(principal.account_id, name)
        image = Image(id=new_image_id(kind), owner_id=principal.account_id, kind=kind,
                      name=name, description=description, state="available",
                      location=request.location.strip().lstrip("/"),
                      architecture=architecture, kernel_id=kernel_id, ramdisk_id=ramdisk_id,
                      root_device_name=root_device, root_device_type="instance-store",
                      virtualization_type=virtualization, is_public=False,
                      size_bytes=manifest.image_size)
        image.set_json("launch_permissions", [])
        image.set_json("block_devices", (mappings or _manifest_mappings(manifest)) or None)
        image.set_json("manifest", manifest.to_json())
        db.session.add(image)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return image


def _register_ebs(principal: Principal, request: Registration, name: str,
                  description: str | None, architecture: str, mappings: list[dict]) -> Image:
    """An EBS-backed EMI: its root device maps a snapshot; each instance boots a new volume
    made from it (paravirtual with a kernel and ramdisk, else HVM from the disk)."""
    root = request.root_device_name or "/dev/sda1"
    root_ebs = next((m["ebs"] for m in mappings
                     if m["device"] == root and (m.get("ebs") or {}).get("snapshot_id")), None)
    if root_ebs is None:
        raise ClientError(f"The root device {root} must map an EBS snapshot "
                          "(BlockDeviceMapping.N.Ebs.SnapshotId).",
                          code="InvalidBlockDeviceMapping")
    kernel_id = _check_part_image(principal, request.kernel_id, "kernel") \
        if request.kernel_id else None
    ramdisk_id = _check_part_image(principal, request.ramdisk_id, "ramdisk") \
        if request.ramdisk_id else None
    virtualization = request.virtualization_type or ("paravirtual" if kernel_id else "hvm")
    if virtualization not in VIRTUALIZATION_TYPES:
        raise InvalidParameterValue(f"Value ({virtualization}) for parameter "
                                    f"virtualizationType is invalid.")
    write_lock()
    try:
        _check_unique_name(principal.account_id, name)
        image = Image(id=new_image_id("machine"), owner_id=principal.account_id,
                      kind="machine", name=name, description=description, state="available",
                      location=None, architecture=architecture, kernel_id=kernel_id,
                      ramdisk_id=ramdisk_id, root_device_name=root, root_device_type="ebs",
                      virtualization_type=virtualization, is_public=False,
                      size_bytes=root_ebs["volume_size"] * 2**30)
        image.set_json("launch_permissions", [])
        image.set_json("block_devices", mappings)
        db.session.add(image)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return image


def _check_unique_name(owner_id: str, name: str) -> None:
    taken = db.session.execute(db.select(Image.id).where(
        Image.owner_id == owner_id, Image.name == name)).first()
    if taken is not None:
        raise ClientError(f"AMI name {name} is already in use by AMI {taken[0]}",
                          code="InvalidAMIName.Duplicate")


def deregister(principal: Principal, image_id: str) -> None:
    """DeregisterImage: owner only. The row goes, so it can be neither seen nor launched;
    its tags go with it. The bundle stays in the bucket, as in EC2."""
    owned(principal, image_id)
    write_lock()
    try:
        image = db.session.get(Image, image_id)
        if image is not None:
            _drop_tags(image_id)
            db.session.delete(image)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _drop_tags(image_id: str) -> None:
    try:
        from .. import tags
    except ImportError:          # tags arrive in their own issue
        return
    tags.delete_all(image_id)


# --- describing ---------------------------------------------------------------------------

def describe(principal: Principal, image_ids: Iterable[str] = (),
             owners: Iterable[str] = (), executable_by: Iterable[str] = ()) -> list[Image]:
    """DescribeImages' selection (before filters), ordered by id for stable paging.

    Explicit ids must all be visible (else InvalidAMIID.NotFound naming them). *owners*:
    ``self`` or account ids (``amazon``/``aws-marketplace`` own nothing here).
    *executable_by*: ``self``, ``all`` (public) or an account id.
    """
    me = principal.account_id
    image_ids = [check_id(image_id) for image_id in image_ids]
    if image_ids:
        rows = list(db.session.execute(db.select(Image).where(
            Image.id.in_(image_ids))).scalars())
        found = {row.id for row in rows if can_launch(me, row)}
        missing = [image_id for image_id in image_ids if image_id not in found]
        if missing:
            raise ClientError(f"The image id '[{', '.join(missing)}]' does not exist",
                              code="InvalidAMIID.NotFound")
    else:
        # Narrow in SQL to what may be visible; can_launch below decides exactly.
        rows = list(db.session.execute(db.select(Image).where(or_(
            Image.owner_id == me, Image.is_public.is_(True),
            Image.launch_permissions_json.contains(f'"{me}"')))).scalars())
    rows = [row for row in rows if can_launch(me, row)]
    owner_ids = _owner_ids(principal, owners)
    if owner_ids is not None:
        rows = [row for row in rows if row.owner_id in owner_ids]
    executable_by = list(executable_by)
    if executable_by:
        rows = [row for row in rows if _executable_by(principal, row, executable_by)]
    return sorted(rows, key=lambda row: row.id)


def _owner_ids(principal: Principal, owners: Iterable[str]) -> set[str] | None:
    owners = list(owners)
    if not owners:
        return None
    ids: set[str] = set()
    for owner in owners:
        if owner == "self":
            ids.add(principal.account_id)
        elif owner in ("amazon", "aws-marketplace"):
            continue                  # no image here is Amazon's
        elif _ACCOUNT_ID.match(owner):
            ids.add(owner)
        else:
            raise ClientError(f"Invalid user id: \"{owner}\"", code="InvalidUserID.Malformed")
    return ids


def _executable_by(principal: Principal, image: Image, wanted: list[str]) -> bool:
    """ExecutableBy (boto3's ExecutableUsers), as the EC2 reference scopes it: ``all``
    matches public images; ``self`` or an account id matches images *shared* with that
    account through an explicit launch permission (not the images it owns)."""
    for who in wanted:
        if who == "all":
            if image.is_public:
                return True
            continue
        if who != "self" and not _ACCOUNT_ID.match(who):
            raise ClientError(f"Invalid user id: \"{who}\"", code="InvalidUserID.Malformed")
        account = principal.account_id if who == "self" else who
        if account in launch_permissions(image):
            return True
    return False


# --- attributes ---------------------------------------------------------------------------

ATTRIBUTES = ("description", "kernel", "ramdisk", "launchPermission", "blockDeviceMapping")


def check_attribute(name: str | None, allowed: Iterable[str] = ATTRIBUTES) -> str:
    if not name:
        raise MissingParameter("The request must contain the parameter Attribute")
    allowed = tuple(allowed)
    if name not in allowed:
        raise InvalidParameterValue(f"Value ({name}) for parameter attribute is invalid. "
                                    f"Valid values: {', '.join(allowed)}")
    return name


def attribute(principal: Principal, image_id: str, name: str):
    """DescribeImageAttribute's value: launch permissions are for the owner's eyes only."""
    check_attribute(name)
    image = owned(principal, image_id) if name == "launchPermission" else \
        visible(principal, image_id)
    return image


@dataclass
class PermissionChange:
    """LaunchPermission.Add / .Remove, as account ids and whether ``Group=all`` is named."""

    add_users: list[str] = field(default_factory=list)
    add_all: bool = False
    remove_users: list[str] = field(default_factory=list)
    remove_all: bool = False

    def empty(self) -> bool:
        return not (self.add_users or self.add_all or self.remove_users or self.remove_all)


def check_group(group: str) -> bool:
    if group != "all":
        raise attribute_value_error(f"Invalid attribute item value \"{group}\" for "
                                    f"UserGroup item type (only 'all' is allowed).")
    return True


def check_user(account_id: str) -> str:
    """A launch-permission account id: 12 digits, an existing account."""
    if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id) or \
            db.session.get(Account, account_id) is None:
        raise attribute_value_error(f"Invalid attribute item value \"{account_id}\" for "
                                    f"UserId item type.")
    return account_id


def modify_launch_permission(principal: Principal, image_id: str,
                             change: PermissionChange) -> None:
    """Add then remove accounts and ``all`` from the image's launch permission (owner only)."""
    owned(principal, image_id)
    if change.empty():
        raise MissingParameter("The request must contain the parameter LaunchPermission "
                               "(Add or Remove) or UserId/UserGroup with OperationType")
    for account_id in change.add_users + change.remove_users:
        check_user(account_id)
    write_lock()
    try:
        image = db.session.get(Image, image_id)
        if image is None:
            raise ImageNotFound(image_id)
        users = launch_permissions(image)
        users += [user for user in change.add_users
                  if user not in users and user != image.owner_id]
        users = [user for user in users if user not in change.remove_users]
        image.set_json("launch_permissions", users)
        if change.add_all:
            image.is_public = True
        if change.remove_all:
            image.is_public = False
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def modify(principal: Principal, image_id: str, name: str, value: str | None) -> None:
    """ModifyImageAttribute for description, kernel and ramdisk (owner only)."""
    check_attribute(name, ("description", "kernel", "ramdisk"))
    image = owned(principal, image_id)
    if name == "description":
        value = validate_description(value if value is not None else "")
    else:
        if not value:
            raise MissingParameter(f"The request must contain the parameter Value for "
                                   f"attribute {name}")
        if image.kind != "machine":
            raise InvalidParameterValue(f"Only machine images have a {name}.")
        value = _check_part_image(principal, value, name)
    write_lock()
    try:
        image = db.session.get(Image, image_id)
        if image is None:
            raise ImageNotFound(image_id)
        column = {"description": "description", "kernel": "kernel_id",
                  "ramdisk": "ramdisk_id"}[name]
        setattr(image, column, value)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def reset(principal: Principal, image_id: str, name: str) -> None:
    """ResetImageAttribute: only ``launchPermission`` (back to private, no accounts)."""
    check_attribute(name, ("launchPermission",))
    owned(principal, image_id)
    write_lock()
    try:
        image = db.session.get(Image, image_id)
        if image is not None:
            image.is_public = False
            image.set_json("launch_permissions", [])
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


# --- reading bundles (for the node that unpacks an image) ----------------------------------

def read_part_fn(store, image: Image) -> Callable[[str], Iterator[bytes]]:
    """``read_part(filename)`` for :func:`eucalite.compute.bundle.unbundle` of *image*.

    Reads with the cloud's authority, not the launcher's: whoever may launch an image may
    use its bundle even without access to the owner's bucket (as in EC2).
    """
    from ..s3 import buckets, objects

    bucket_name, key = split_location(image.location or "")
    directory = key.rpartition("/")[0]

    def read_part(filename: str) -> Iterator[bytes]:
        part_key = f"{directory}/{filename}" if directory else filename
        version = objects.latest(buckets.find(bucket_name), part_key)
        if version is None or version.delete_marker:
            raise bundle.CorruptBundle(f"Part {bucket_name}/{part_key} is gone.")
        segments = version.segments
        db.session.rollback()          # hold no transaction while streaming
        return store.read(segments)
    return read_part


def manifest_of(image: Image) -> bundle.Manifest:
    return bundle.Manifest.from_json(image.get_json("manifest"))


def register_tag_resources() -> None:
    """Let emi-/eki-/eri- ids be tagged by their owners (if the tags service exists)."""
    try:
        from .. import tags
    except ImportError:
        return

    def owned_by(owner_id: str, resource_id: str) -> bool:
        image = db.session.get(Image, resource_id)
        return image is not None and image.owner_id == owner_id

    for prefix in PREFIXES.values():
        tags.register_resource(prefix + "-", "image", owned_by)


register_tag_resources()
