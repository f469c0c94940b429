"""Images: describe, deregister, launch permissions and attributes; what may be launched.

Registering and importing images is :mod:`eucalite.compute.imageimport`. Ids follow
Eucalyptus: ``emi-``/``eki-``/``eri-`` by the manifest's image type, with 8 hex digits. An
account sees (and may launch) its own images, public ones and those whose launch permission
lists it: :func:`can_launch` is that rule, :func:`launchable` and :func:`launchable_part`
what RunInstances and RegisterImage apply. Functions take a Principal and plain values,
never a request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from sqlalchemy import or_

from .. import tags
from .. import ids
from ..accounts import Account, Principal
from ..db import db, write_lock
from ..errors import InvalidParameterValue, MissingParameter
from ..errors import ec2 as ec2_errors
from ..query import check_text
from ..ebs import snapshots
from ..s3 import buckets, objects, sse
from ..s3.models import ObjectVersion
from . import bundle, imageflags
from .models import Image, Instance

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


class ImageNotFound(ec2_errors.InvalidAMIIDNotFound):
    def __init__(self, image_id: str):
        super().__init__(f"The image id '[{image_id}]' does not exist")


def auth_failure(image_id: str) -> ec2_errors.AuthFailure:
    """What EC2 answers a non-owner changing an image it can see."""
    return ec2_errors.AuthFailure(f"Not authorized for image: {image_id}")


def attribute_value_error(message: str) -> ec2_errors.InvalidAMIAttributeItemValue:
    return ec2_errors.InvalidAMIAttributeItemValue(message)


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
        raise ec2_errors.InvalidAMIIDMalformed(
            f"Invalid id: \"{image_id}\" (expecting \"emi-...\")")
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


def find(image_id: str | None) -> Image | None:
    """The image, whoever owns it (None if there is none)."""
    return db.session.get(Image, image_id) if image_id else None


def by_client_token(owner_id: str, token: str) -> Image | None:
    """The image *owner_id*'s CopyImage made with ClientToken *token*, if any."""
    return db.session.execute(db.select(Image).where(
        Image.owner_id == owner_id, Image.client_token == token)).scalars().first()


def settle(rows: Iterable[Image]) -> None:
    """Bring the ``pending`` images among *rows* (those CreateImage made) up to date with
    their snapshots: ``available`` once every snapshot their mapping names is completed,
    ``failed`` with the reason once one is in error or gone. Decided when an image is read,
    so no job has to wait for the snapshots; commits only when a state changes."""
    changes = {}
    for image in rows:
        if image.state == "pending":
            outcome = _snapshots_outcome(image)
            if outcome is not None:
                changes[image.id] = outcome
    if not changes:
        return
    write_lock()
    try:
        for image_id, (state, reason) in changes.items():
            image = db.session.get(Image, image_id)
            if image is not None and image.state == "pending":
                image.state, image.state_reason = state, reason
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _snapshots_outcome(image: Image) -> tuple[str, str | None] | None:
    """(state, reason) a pending image has come to, or None while a snapshot is pending."""
    for snapshot_id in snapshot_ids(image):
        snapshot = snapshots.find(snapshot_id)
        if snapshot is None or snapshot.state == "error":
            why = snapshot.state_message if snapshot is not None else "it is gone"
            return "failed", f"Snapshot {snapshot_id} failed: {why}"[:255]
        if snapshot.state != "completed":
            return None
    return "available", None


def launchable(principal: Principal, image_id: str) -> Image:
    """The machine image RunInstances may start for *principal*.

    Unknown, invisible and non-machine images are InvalidAMIID.NotFound (EC2 launches only
    machine images); an image not ``available`` is InvalidAMIID.Unavailable.
    """
    image = visible(principal, image_id)
    if image.kind != "machine":
        raise ImageNotFound(image_id)
    settle([image])
    if image.state != "available":
        raise ec2_errors.InvalidAMIIDUnavailable(
            f"Image {image_id} is not available (state: {image.state}).")
    return image


def launchable_part(principal: Principal, image_id: str, kind: str) -> str:
    """*image_id* if it is a kernel or ramdisk (*kind*) the caller may boot: visible to it
    (else InvalidAMIID.NotFound or .Malformed), of that kind (else InvalidParameterValue)
    and available (else InvalidAMIID.NotFound). RunInstances, RegisterImage and
    ModifyImageAttribute all check a KernelId/RamdiskId with this."""
    image = visible(principal, image_id)
    if image.kind != kind:
        raise InvalidParameterValue(f"Image {image_id} is a {image.kind} image, not a {kind}.")
    if image.state != "available":
        raise ImageNotFound(image_id)
    return image.id


# --- names ----------------------------------------------------------------------------------

def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ec2_errors.InvalidAMINameMalformed(
            f"AMI names must be between 3 and 128 characters long, and may contain letters, "
            f"numbers, '(', ')', '.', '-', '/', '_', '[', ']', ' ', '@' and \"'\": {name!r}")
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
        raise ec2_errors.InvalidManifest(
            f"The ImageLocation {location!r} is not bucket/prefix.manifest.xml.")
    return bucket_name, key


def ebs_root(image: Image) -> dict | None:
    """The root device's EBS mapping of an EBS-backed image (None for instance-store)."""
    for mapping in image.get_json("block_devices", []) or []:
        if mapping.get("device") == image.root_device_name and mapping.get("ebs"):
            return mapping["ebs"]
    return None


def snapshot_ids(image: Image) -> list[str]:
    """The snapshots *image*'s block device mapping names, by device."""
    mappings = image.get_json("block_devices", []) or []
    return [m["ebs"]["snapshot_id"] for m in mappings if (m.get("ebs") or {}).get("snapshot_id")]


def deregister(principal: Principal, image_id: str) -> None:
    """DeregisterImage: owner only, and refused while deregistration protection holds the
    image (:func:`eucalite.compute.imageflags.check_deregistrable`). The row goes, so it
    can be neither seen nor launched; its tags go with it. The bundle stays in the bucket,
    as in EC2."""
    imageflags.check_deregistrable(owned(principal, image_id))
    write_lock()
    try:
        image = db.session.get(Image, image_id)
        if image is not None:
            tags.delete_all(image_id)
            db.session.delete(image)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


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
            raise ec2_errors.InvalidAMIIDNotFound(
                f"The image id '[{', '.join(missing)}]' does not exist")
    else:
        # Narrow in SQL to what may be visible; can_launch below decides exactly.
        rows = list(db.session.execute(db.select(Image).where(or_(
            Image.owner_id == me, Image.is_public.is_(True),
            Image.launch_permissions_json.contains(f'"{me}"')))).scalars())
    rows = [row for row in rows if can_launch(me, row)]
    settle(rows)
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
            raise ec2_errors.InvalidUserIDMalformed(f"Invalid user id: \"{owner}\"")
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
            raise ec2_errors.InvalidUserIDMalformed(f"Invalid user id: \"{who}\"")
        account = principal.account_id if who == "self" else who
        if account in launch_permissions(image):
            return True
    return False


# --- attributes ---------------------------------------------------------------------------

#: Every attribute DescribeImageAttribute names (AWS's list).
ATTRIBUTES = ("description", "kernel", "ramdisk", "launchPermission", "productCodes",
              "blockDeviceMapping", "sriovNetSupport", "bootMode", "tpmSupport", "uefiData",
              "lastLaunchedTime", "imdsSupport", "deregistrationProtection")
#: Those ModifyImageAttribute changes here: AWS's description, imdsSupport and
#: launchPermission, and Eucalyptus' kernel and ramdisk. (AWS's productCodes are for the
#: Marketplace only.)
MODIFIABLE = ("description", "kernel", "ramdisk", "launchPermission", "imdsSupport")
#: Those ResetImageAttribute puts back.
RESETTABLE = ("launchPermission",)


def check_attribute(name: str | None, allowed: Iterable[str] = ATTRIBUTES) -> str:
    if not name:
        raise MissingParameter("The request must contain the parameter Attribute")
    allowed = tuple(allowed)
    if name not in allowed:
        raise InvalidParameterValue(f"Value ({name}) for parameter attribute is invalid. "
                                    f"Valid values: {', '.join(allowed)}")
    return name


def attribute(principal: Principal, image_id: str, name: str):
    """The image whose attribute *name* DescribeImageAttribute reads: launch permissions
    are for the owner's eyes only."""
    check_attribute(name)
    image = owned(principal, image_id) if name == "launchPermission" else \
        visible(principal, image_id)
    settle([image])
    return image


def last_launched(image_ids: Iterable[str]) -> dict:
    """When an instance was last launched from each of *image_ids* (lastLaunchedTime), by
    image id; an image nothing was launched from is absent. One query for them all."""
    image_ids = list(image_ids)
    if not image_ids:
        return {}
    return dict(db.session.execute(
        db.select(Instance.image_id, db.func.max(Instance.launch_time))
        .where(Instance.image_id.in_(image_ids)).group_by(Instance.image_id)).all())


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
        value = launchable_part(principal, value, name)
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
    check_attribute(name, RESETTABLE)
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

def part_version(image: Image, filename: str) -> ObjectVersion:
    """The object holding the part *filename* of *image*'s bundle, beside its manifest;
    CorruptBundle when the part is gone. Read its bytes with sse.read."""
    bucket_name, key = split_location(image.location or "")
    directory = key.rpartition("/")[0]
    part_key = f"{directory}/{filename}" if directory else filename
    version = objects.latest(buckets.find(bucket_name), part_key)
    if version is None or version.delete_marker:
        raise bundle.CorruptBundle(f"Part {bucket_name}/{part_key} is gone.")
    return version


def read_part_fn(store, image: Image) -> Callable[[str], Iterator[bytes]]:
    """``read_part(filename)`` for :func:`eucalite.compute.bundle.unbundle` of *image*.

    Reads with the cloud's authority, not the launcher's: whoever may launch an image may
    use its bundle even without access to the owner's bucket (as in EC2).
    """
    def read_part(filename: str) -> Iterator[bytes]:
        body = sse.read(store, part_version(image, filename))
        db.session.rollback()          # hold no transaction while streaming
        return body
    return read_part


def manifest_of(image: Image) -> bundle.Manifest:
    return bundle.Manifest.from_json(image.get_json("manifest"))
