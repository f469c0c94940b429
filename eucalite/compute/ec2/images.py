"""EC2 image actions: RegisterImage, CreateImage, CopyImage, DescribeImages,
DeregisterImage, the image attributes (Describe/Modify/ResetImageAttribute) and
Enable/DisableImageDeregistrationProtection. Parse, call the compute service, render."""
from __future__ import annotations

from flask import request

from ... import tags
from ...errors import InvalidParameterValue, MissingParameter
from ...errors.ec2 import AuthFailure
from ...paging import Paging
from ..createimage import CopyRequest, ImageRequest
from ..imageimport import Registration
# Pure checks of request values (no state): the adapter validates with them before it calls
# the service, as EC2 reports a bad attribute or group before looking the image up.
from ..images import MODIFIABLE, PermissionChange, check_attribute, check_group
from ..models import Image
from . import filters
from .actions import registry
from .blockdevices import parse_block_device_mappings
from .instance_types import eucalyptus_namespace
from .tagparams import parse_tags, specified_tags, tag_set

#: eucalite's nodes run KVM through libvirt.
HYPERVISOR = "kvm"


def _block_device_items(image: Image) -> list[dict]:
    items = []
    for mapping in image.get_json("block_devices", []) or []:
        item: dict = {"deviceName": mapping["device"]}
        if mapping.get("virtual"):
            item["virtualName"] = mapping["virtual"]
        if mapping.get("no_device"):
            item["noDevice"] = ""
        if mapping.get("ebs"):
            ebs = mapping["ebs"]
            item["ebs"] = {"snapshotId": ebs.get("snapshot_id"),
                           "volumeSize": ebs.get("volume_size"),
                           "deleteOnTermination": ebs.get("delete_on_termination", True),
                           "volumeType": ebs.get("volume_type")}
        items.append(item)
    return items


def render_image(image: Image, tag_map: dict[str, str] | None, *, protection: str,
                 region: str, last_launched=None) -> dict:
    """One ``imagesSet/item`` as EC2 renders it: *protection* is its
    deregistrationProtection, *region* this cloud's (a copy's sourceImageRegion),
    *last_launched* when an instance was last launched from it (None: never)."""
    return {
        "imageId": image.id,
        "imageLocation": image.location,
        "imageState": image.state,
        "imageOwnerId": image.owner_id,
        "creationDate": image.created,
        "isPublic": image.is_public,
        "architecture": image.architecture,
        "imageType": image.kind,
        "kernelId": image.kernel_id,
        "ramdiskId": image.ramdisk_id,
        "name": image.name,
        "description": image.description,
        "rootDeviceType": image.root_device_type,
        "rootDeviceName": image.root_device_name,
        "blockDeviceMapping": _block_device_items(image),
        "virtualizationType": image.virtualization_type,
        "hypervisor": HYPERVISOR,
        "stateReason": ({"code": image.state, "message": image.state_reason}
                        if image.state_reason else None),
        "tagSet": tag_set(tag_map or {}),
        "imdsSupport": image.imds_support,
        "sourceInstanceId": image.source_instance_id,
        "sourceImageId": image.source_image_id,
        "sourceImageRegion": region if image.source_image_id else None,
        "deregistrationProtection": protection,
        "lastLaunchedTime": last_launched,
    }


# --- RegisterImage ------------------------------------------------------------------------

@registry.action("RegisterImage", params=(
        "ImageLocation", "Name", "Description", "Architecture", "KernelId", "RamdiskId",
        "RootDeviceName", "BlockDeviceMapping", "VirtualizationType", "ImdsSupport"))
def register_image(call):
    params = call.params
    request = Registration(
        name=params.get("Name"), location=params.get("ImageLocation"),
        description=params.get("Description"), architecture=params.get("Architecture"),
        kernel_id=params.get("KernelId"), ramdisk_id=params.get("RamdiskId"),
        root_device_name=params.get("RootDeviceName"),
        virtualization_type=params.get("VirtualizationType"),
        imds_support=params.get("ImdsSupport"),
        block_devices=parse_block_device_mappings(params.get_struct_list("BlockDeviceMapping")))
    if not request.location and request.name is None:
        raise MissingParameter("The request must contain the parameter Name")
    image = call.services.compute.register_image(call.principal, request)
    return {"imageId": image.id}


# --- CreateImage and CopyImage -------------------------------------------------------------

def _requested_mappings(params) -> list[dict]:
    """CreateImage's ``BlockDeviceMapping.N``: an Ebs value the request did not give is
    None (the instance's volume keeps its own), not RegisterImage's default."""
    items = params.get_struct_list("BlockDeviceMapping")
    mappings = parse_block_device_mappings(items)
    for item, mapping in zip(items, mappings):
        if "ebs" in mapping:
            given = item.struct("Ebs")
            for key, member in (("delete_on_termination", "DeleteOnTermination"),
                                ("volume_type", "VolumeType")):
                if given.get(member) is None:
                    mapping["ebs"][key] = None
    return mappings


def _image_and_snapshot_tags(params) -> tuple[dict[str, str], dict[str, str]]:
    """``TagSpecification.N`` of CreateImage: tags for the image and for its snapshots."""
    found: dict[str, dict[str, str]] = {"image": {}, "snapshot": {}}
    for spec in params.get_struct_list("TagSpecification"):
        kind = spec.get("ResourceType")
        if kind is None:
            raise MissingParameter(f"The request must contain the parameter "
                                   f"{spec.name}.ResourceType")
        if kind not in found:
            raise InvalidParameterValue(f"'{kind}' is not a valid taggable resource type for "
                                        "this operation.")
        found[kind].update(parse_tags(spec.structs("Tag"), prefix=f"{spec.name}.Tag"))
    return found["image"], found["snapshot"]


@registry.action("CreateImage", params=(
        "InstanceId", "Name", "Description", "NoReboot", "BlockDeviceMapping",
        "TagSpecification"))
def create_image(call):
    params = call.params
    image_tags, snapshot_tags = _image_and_snapshot_tags(params)
    request = ImageRequest(
        instance_id=params.require("InstanceId"), name=params.require("Name"),
        description=params.get("Description"), no_reboot=params.get_bool("NoReboot"),
        block_devices=_requested_mappings(params), image_tags=image_tags,
        snapshot_tags=snapshot_tags)
    image = call.services.compute.create_image(call.principal, request)
    return {"imageId": image.id}


@registry.action("CopyImage", params=(
        "SourceRegion", "SourceImageId", "Name", "Description", "ClientToken", "Encrypted",
        "KmsKeyId", "DestinationOutpostArn", "CopyImageTags", "TagSpecification",
        "SnapshotCopyCompletionDurationMinutes"))
def copy_image(call):
    params = call.params
    if params.get_bool("Encrypted") or params.get("KmsKeyId"):
        raise InvalidParameterValue("Encrypted copies are not supported: this cloud's EBS "
                                    "has no KMS.")
    if params.get("DestinationOutpostArn"):
        raise InvalidParameterValue("This cloud has no Outposts.")
    request = CopyRequest(
        source_image_id=params.require("SourceImageId"),
        source_region=params.require("SourceRegion"), name=params.require("Name"),
        description=params.get("Description"), copy_tags=params.get_bool("CopyImageTags"),
        image_tags=specified_tags(params, "image"),
        client_token=params.get("ClientToken") or None)
    image = call.services.compute.copy_image(call.principal, request)
    return {"imageId": image.id}


# --- DescribeImages -----------------------------------------------------------------------

def _ebs_values(key: str):
    """A filter getter: *key* of each EBS mapping of an image."""
    def values(image: Image) -> list:
        return [item["ebs"].get(key) for item in image.get_json("block_devices", []) or []
                if item.get("ebs")]
    return values


def _getters(lookup_tags, region: str) -> dict:
    getters = {
        "architecture": lambda image: image.architecture,
        "description": lambda image: image.description,
        "image-id": lambda image: image.id,
        "image-type": lambda image: image.kind,
        "is-public": lambda image: image.is_public,
        "kernel-id": lambda image: image.kernel_id,
        "manifest-location": lambda image: image.location,
        "name": lambda image: image.name,
        "owner-id": lambda image: image.owner_id,
        "ramdisk-id": lambda image: image.ramdisk_id,
        "root-device-name": lambda image: image.root_device_name,
        "root-device-type": lambda image: image.root_device_type,
        "state": lambda image: image.state,
        "virtualization-type": lambda image: image.virtualization_type,
        "hypervisor": lambda image: HYPERVISOR,
        "block-device-mapping.device-name": lambda image: [
            item["device"] for item in image.get_json("block_devices", []) or []],
        "block-device-mapping.snapshot-id": _ebs_values("snapshot_id"),
        "block-device-mapping.volume-size": _ebs_values("volume_size"),
        "block-device-mapping.volume-type": _ebs_values("volume_type"),
        "block-device-mapping.delete-on-termination": _ebs_values("delete_on_termination"),
        "block-device-mapping.encrypted": lambda image: [   # no EBS encryption here
            False] * len(_ebs_values("volume_size")(image)),
        "creation-date": lambda image: image.created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "state-reason-code": lambda image: image.state if image.state_reason else None,
        "state-reason-message": lambda image: image.state_reason,
        "source-instance-id": lambda image: image.source_instance_id,
        "source-image-id": lambda image: image.source_image_id,
        "source-image-region": lambda image: region if image.source_image_id else None,
    }
    getters.update(filters.tag_getters(lookup_tags))
    return getters


PAGING = Paging(maximum=1000, ids="ImageId")


@registry.action("DescribeImages", params=(
        "ImageId", "Owner", "ExecutableBy", "Filter", "MaxResults", "NextToken",
        "IncludeDeprecated", "IncludeDisabled"))
def describe_images(call):
    params = call.params
    image_ids = params.get_list("ImageId")
    request = PAGING.read(params)
    params.get_bool("IncludeDeprecated")           # accepted; nothing here is deprecated
    params.get_bool("IncludeDisabled")
    rows = call.services.compute.describe_images(call.principal, image_ids,
                                                 params.get_list("Owner"),
                                                 params.get_list("ExecutableBy"))
    # Tags are the owner's: another account's view of a shared image carries none of them.
    tag_map = tags.tags_for(call.principal.account_id, [row.id for row in rows])
    compute = call.services.compute
    region = compute.regions()[0].name
    rows = filters.apply(rows, filters.parse(params),
                         _getters(lambda image: tag_map.get(image.id, {}), region))
    page, token = request.page(rows)
    launched = compute.images_last_launched([image.id for image in page])
    body = {"imagesSet": [render_image(image, tag_map.get(image.id), region=region,
                                       protection=compute.deregistration_protection(image),
                                       last_launched=launched.get(image.id))
                          for image in page]}
    if token:
        body["nextToken"] = token
    return body


# --- DeregisterImage ----------------------------------------------------------------------

@registry.action("DeregisterImage", params=("ImageId", "DeleteAssociatedSnapshots"))
def deregister_image(call):
    results = call.services.compute.deregister_image(
        call.principal, call.params.require("ImageId"),
        call.params.get_bool("DeleteAssociatedSnapshots"))
    body: dict = {"return": True}
    if results:
        body["deleteSnapshotResultSet"] = [{"snapshotId": snapshot_id, "returnCode": code}
                                           for snapshot_id, code in results]
    return body


# --- attributes ---------------------------------------------------------------------------

def _launch_permission_items(compute, image: Image) -> list[dict]:
    items = [{"userId": account_id} for account_id in compute.launch_permissions(image)]
    if image.is_public:
        items.append({"group": "all"})
    return items


def _value(value) -> dict:
    """An ``AttributeValue``: ``{"value": ...}``, or empty when there is none."""
    return {"value": value} if value not in (None, "") else {}


def _attribute_value(compute, image: Image, name: str):
    """The rendered value of attribute *name* of *image*."""
    if name == "launchPermission":
        return _launch_permission_items(compute, image)
    if name == "blockDeviceMapping":
        return _block_device_items(image)
    if name == "productCodes":
        return []                              # no Marketplace here
    if name == "lastLaunchedTime":
        return _value(compute.images_last_launched([image.id]).get(image.id))
    if name == "deregistrationProtection":
        return _value(compute.deregistration_protection(image))
    # description, kernel, ramdisk, imdsSupport; and what no image here has set:
    # sriovNetSupport, bootMode, tpmSupport, uefiData (AWS answers those empty when unset)
    return _value({"description": image.description, "kernel": image.kernel_id,
                   "ramdisk": image.ramdisk_id, "imdsSupport": image.imds_support}.get(name))


#: The API version from which AWS answers the deprecated image attribute
#: ``blockDeviceMapping`` with AuthFailure (every current SDK sends it).
CURRENT_API_VERSION = "2016-11-15"


def _deprecated_for(version: str | None, path: str) -> bool:
    """Whether a request of API *version* at *path* gets AWS's AuthFailure for the image
    attribute ``blockDeviceMapping``: a current client does; an older one (an earlier
    dated version, as euca2ools sends) or one of Eucalyptus' own gets the mappings, as
    AWS and Eucalyptus answered them then."""
    if eucalyptus_namespace(version, path) is not None:
        return False
    return not version or version >= CURRENT_API_VERSION


@registry.action("DescribeImageAttribute", params=("ImageId", "Attribute"))
def describe_image_attribute(call):
    name = check_attribute(call.params.get("Attribute"))
    compute = call.services.compute
    image = compute.image_attribute(call.principal, call.params.require("ImageId"), name)
    if name == "blockDeviceMapping" and _deprecated_for(call.params.flat.get("Version"),
                                                        request.path):
        raise AuthFailure("The blockDeviceMapping attribute is deprecated: describe the "
                          "image (DescribeImages) for its block device mappings.")
    return {"imageId": image.id, name: _attribute_value(compute, image, name)}


def _permission_change(params) -> PermissionChange:
    """LaunchPermission.Add.N/.Remove.N (UserId, Group), or the older UserId.N /
    UserGroup.N with OperationType add|remove."""
    change = PermissionChange()
    structure = params.get_struct("LaunchPermission")
    for verb in ("Add", "Remove"):
        for item in structure.structs(verb):
            user, group = item.get("UserId"), item.get("Group")
            if user is None and group is None:
                raise MissingParameter(f"LaunchPermission.{verb}.N needs UserId or Group.")
            if verb == "Add":
                change.add_users += [user] if user is not None else []
                change.add_all |= group is not None and check_group(group)
            else:
                change.remove_users += [user] if user is not None else []
                change.remove_all |= group is not None and check_group(group)
    users, groups = params.get_list("UserId"), params.get_list("UserGroup")
    if users or groups:
        operation = params.get("OperationType")
        if operation not in ("add", "remove"):
            raise InvalidParameterValue(f"Value ({operation}) for parameter OperationType is "
                                        "invalid. Valid values: add, remove")
        public = any(check_group(group) for group in groups)
        if operation == "add":
            change.add_users += users
            change.add_all |= public
        else:
            change.remove_users += users
            change.remove_all |= public
    return change


@registry.action("ModifyImageAttribute", params=(
        "ImageId", "Attribute", "OperationType", "UserId", "UserGroup", "ProductCode",
        "LaunchPermission", "Description", "Value", "OrganizationArn",
        "OrganizationalUnitArn", "ImdsSupport"))
def modify_image_attribute(call):
    params, compute = call.params, call.services.compute
    image_id = params.require("ImageId")
    attribute = params.get("Attribute")
    description = params.get_struct("Description").get("Value") \
        if "Description" in params.names() else None
    if params.get_list("ProductCode"):
        raise InvalidParameterValue("Product codes are not supported.")
    if "ImdsSupport" in params.names() or attribute == "imdsSupport":
        value = params.get_struct("ImdsSupport").get("Value") \
            if "ImdsSupport" in params.names() else params.get("Value")
        compute.set_imds_support(call.principal, image_id, value)
    elif attribute in (None, "launchPermission") and (
            "LaunchPermission" in params.names() or params.get_list("UserId")
            or params.get_list("UserGroup")):
        compute.modify_launch_permission(call.principal, image_id, _permission_change(params))
    elif description is not None or attribute == "description":
        value = description if description is not None else params.get("Value")
        compute.modify_image(call.principal, image_id, "description", value)
    elif attribute in ("kernel", "ramdisk"):
        compute.modify_image(call.principal, image_id, attribute, params.get("Value"))
    elif attribute is None:
        raise MissingParameter("The request must contain the parameter Attribute")
    else:
        check_attribute(attribute, MODIFIABLE)
        compute.modify_launch_permission(call.principal, image_id, PermissionChange())
    return {"return": True}


@registry.action("ResetImageAttribute", params=("ImageId", "Attribute"))
def reset_image_attribute(call):
    call.services.compute.reset_image_attribute(call.principal, call.params.require("ImageId"),
                                                call.params.get("Attribute"))
    return {"return": True}


# --- deregistration protection ------------------------------------------------------------

@registry.action("EnableImageDeregistrationProtection", params=("ImageId", "WithCooldown"))
def enable_image_deregistration_protection(call):
    return {"return": call.services.compute.enable_deregistration_protection(
        call.principal, call.params.require("ImageId"), call.params.get_bool("WithCooldown"))}


@registry.action("DisableImageDeregistrationProtection", params=("ImageId",))
def disable_image_deregistration_protection(call):
    return {"return": call.services.compute.disable_deregistration_protection(
        call.principal, call.params.require("ImageId"))}
