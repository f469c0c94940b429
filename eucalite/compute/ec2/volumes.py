"""EC2 volume actions: CreateVolume, DeleteVolume, DescribeVolumes, DescribeVolumeStatus,
AttachVolume, DetachVolume, DescribeVolumeAttribute, ModifyVolumeAttribute, ModifyVolume and
DescribeVolumesModifications."""
from __future__ import annotations

from ... import tags
from ...ebs import states as ebs_states
from ...errors import InvalidParameterValue
from ...paging import Paging
from . import filters
from .actions import registry
from .tagparams import specified_tags, tag_set


def _attachment(volume) -> dict | None:
    if volume.attach_state is None:
        return None
    return {"volumeId": volume.id, "instanceId": volume.instance_id, "device": volume.device,
            "status": volume.attach_state, "attachTime": volume.attach_time,
            "deleteOnTermination": volume.delete_on_termination}


def render(volume, tag_map: dict[str, str]) -> dict:
    """One volume as DescribeVolumes' ``volumeSet`` item (and CreateVolume's response)."""
    attachment = _attachment(volume)
    return {
        "volumeId": volume.id,
        "size": volume.size_gb,
        "snapshotId": volume.snapshot_id or "",
        "availabilityZone": volume.zone,
        "status": volume.state,
        "createTime": volume.created,
        "attachmentSet": [attachment] if attachment else [],
        "tagSet": tag_set(tag_map),
        "volumeType": volume.volume_type,
        "encrypted": False,
        "multiAttachEnabled": False,
    }


FILTERS = {
    "volume-id": lambda v: v.id,
    "status": lambda v: v.state,
    "size": lambda v: v.size_gb,
    "snapshot-id": lambda v: v.snapshot_id,
    "availability-zone": lambda v: v.zone,
    "create-time": lambda v: v.created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    "volume-type": lambda v: v.volume_type,
    "encrypted": lambda v: False,
    "multi-attach-enabled": lambda v: False,
    "attachment.instance-id": lambda v: v.instance_id,
    "attachment.status": lambda v: v.attach_state,
    "attachment.device": lambda v: v.device,
    "attachment.delete-on-termination": lambda v: (v.delete_on_termination
                                                   if v.attach_state else None),
    "attachment.attach-time": lambda v: (v.attach_time.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                                         if v.attach_time else None),
}


PAGING = Paging(maximum=500, ids="VolumeId", conflict=("volumeSet", "maxResults"), clamp=True)


def _described(call):
    """The caller's volumes named by VolumeId.N, filtered, one page: (rows, tags, token)."""
    params = call.params
    ids = params.get_list("VolumeId")
    request = PAGING.read(params)
    rows = sorted(call.services.ebs.visible_volumes(call.principal, ids), key=lambda v: v.id)
    tag_map = tags.tags_for(call.principal.account_id, [v.id for v in rows])
    rows = filters.apply(rows, filters.parse(params), {
        **FILTERS, **filters.tag_getters(lambda v: tag_map.get(v.id, {}))})
    page, token = request.page(rows)
    return page, tag_map, token


@registry.action("CreateVolume", params=(
        "Size", "SnapshotId", "AvailabilityZone", "VolumeType", "Iops", "Encrypted",
        "KmsKeyId", "TagSpecification", "MultiAttachEnabled", "Throughput", "ClientToken",
        "OutpostArn"))
def create_volume(call):
    params = call.params
    if params.get_bool("Encrypted"):
        raise InvalidParameterValue("Encrypted volumes are not supported by this cloud.")
    if params.get_bool("MultiAttachEnabled"):
        raise InvalidParameterValue("Multi-Attach volumes are not supported by this cloud.")
    # Accepted within AWS's bounds and not enforced: volumes here are plain files.
    params.get_int("Iops", minimum=100, maximum=256000)
    params.get_int("Throughput", minimum=125, maximum=1000)
    volume = call.services.ebs.create_volume(
        call.principal, size_gb=params.get_int("Size"), snapshot_id=params.get("SnapshotId"),
        zone=params.get("AvailabilityZone"), volume_type=params.get("VolumeType"),
        tag_map=specified_tags(params, "volume"))
    tag_map = tags.tags_for(call.principal.account_id, [volume.id])[volume.id]
    body = render(volume, tag_map)
    del body["attachmentSet"]
    return body


@registry.action("DeleteVolume", params=("VolumeId",))
def delete_volume(call):
    call.services.ebs.delete_volume(call.principal, call.params.require("VolumeId"))
    return {"return": True}


@registry.action("DescribeVolumes", params=("VolumeId", "Filter", "MaxResults", "NextToken"))
def describe_volumes(call):
    page, tag_map, token = _described(call)
    return {"volumeSet": [render(v, tag_map.get(v.id, {})) for v in page], "nextToken": token}


@registry.action("DescribeVolumeStatus", params=("VolumeId", "Filter", "MaxResults",
                                                 "NextToken"))
def describe_volume_status(call):
    page, _tags, token = _described(call)

    def status(v) -> dict:
        ok = v.state != ebs_states.ERROR
        return {"volumeId": v.id, "availabilityZone": v.zone,
                "volumeStatus": {"status": "ok" if ok else "impaired",
                                 "details": [{"name": "io-enabled",
                                              "status": "passed" if ok else "failed"}]},
                "eventsSet": [], "actionsSet": []}
    return {"volumeStatusSet": [status(v) for v in page], "nextToken": token}


def _attachment_response(volume) -> dict:
    return {"volumeId": volume.id, "instanceId": volume.instance_id, "device": volume.device,
            "status": volume.attach_state, "attachTime": volume.attach_time,
            "deleteOnTermination": volume.delete_on_termination}


@registry.action("AttachVolume", params=("VolumeId", "InstanceId", "Device"))
def attach_volume(call):
    params = call.params
    volume = call.services.ebs.attach(call.principal, params.require("VolumeId"),
                               params.require("InstanceId"), params.get("Device"))
    return _attachment_response(volume)


@registry.action("DetachVolume", params=("VolumeId", "InstanceId", "Device", "Force"))
def detach_volume(call):
    params = call.params
    volume = call.services.ebs.detach(call.principal, params.require("VolumeId"),
                               params.get("InstanceId"), params.get("Device"),
                               params.get_bool("Force"))
    return _attachment_response(volume)


@registry.action("DescribeVolumeAttribute", params=("VolumeId", "Attribute"))
def describe_volume_attribute(call):
    params = call.params
    volume = call.services.ebs.owned_volume(call.principal, params.require("VolumeId"))
    attribute = params.require("Attribute")
    if attribute == "autoEnableIO":
        return {"volumeId": volume.id, "autoEnableIO": {"value": volume.auto_enable_io}}
    if attribute == "productCodes":
        return {"volumeId": volume.id, "productCodes": []}
    raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid. "
                                "Valid values: autoEnableIO, productCodes")


@registry.action("ModifyVolumeAttribute", params=("VolumeId", "AutoEnableIO"))
def modify_volume_attribute(call):
    params = call.params
    value = params.get_struct("AutoEnableIO").get("Value")
    call.services.ebs.modify_attribute(
        call.principal, params.require("VolumeId"),
        None if value is None else str(value).lower() == "true")
    return {"return": True}


def render_modification(modification) -> dict:
    """One modification as ModifyVolume's ``volumeModification`` and
    DescribeVolumesModifications' ``volumeModificationSet`` item (AWS's VolumeModification:
    None values are left out)."""
    return {
        "volumeId": modification.volume_id,
        "modificationState": modification.state,
        "statusMessage": modification.status_message,
        "targetSize": modification.target_size,
        "targetIops": modification.target_iops,
        "targetVolumeType": modification.target_type,
        "targetThroughput": modification.target_throughput,
        "targetMultiAttachEnabled": False,
        "originalSize": modification.original_size,
        "originalIops": modification.original_iops,
        "originalVolumeType": modification.original_type,
        "originalThroughput": modification.original_throughput,
        "originalMultiAttachEnabled": False,
        "progress": modification.progress,
        "startTime": modification.start_time,
        "endTime": modification.end_time,
    }


def _stamp(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z") if value else None


#: DescribeVolumesModifications' filters, as AWS documents them.
MODIFICATION_FILTERS = {
    "volume-id": lambda m: m.volume_id,
    "modification-state": lambda m: m.state,
    "original-size": lambda m: m.original_size,
    "original-iops": lambda m: m.original_iops,
    "original-volume-type": lambda m: m.original_type,
    "original-multi-attach-enabled": lambda m: False,
    "target-size": lambda m: m.target_size,
    "target-iops": lambda m: m.target_iops,
    "target-volume-type": lambda m: m.target_type,
    "target-throughput": lambda m: m.target_throughput,
    "target-multi-attach-enabled": lambda m: False,
    "start-time": lambda m: _stamp(m.start_time),
}

MODIFICATIONS_PAGING = Paging(maximum=500)


@registry.action("ModifyVolume", params=(
        "VolumeId", "Size", "VolumeType", "Iops", "Throughput", "MultiAttachEnabled"))
def modify_volume(call):
    params = call.params
    if params.get_bool("MultiAttachEnabled"):
        raise InvalidParameterValue("Multi-Attach volumes are not supported by this cloud.")
    modification = call.services.ebs.modify_volume(
        call.principal, params.require("VolumeId"),
        size_gb=params.get_int("Size", minimum=1),
        volume_type=params.get("VolumeType"),
        iops=params.get_int("Iops", minimum=100, maximum=256000),
        throughput=params.get_int("Throughput", minimum=125, maximum=1000))
    return {"volumeModification": render_modification(modification)}


@registry.action("DescribeVolumesModifications", params=(
        "VolumeId", "Filter", "MaxResults", "NextToken"))
def describe_volumes_modifications(call):
    params = call.params
    request = MODIFICATIONS_PAGING.read(params)
    rows = call.services.ebs.volume_modifications(call.principal,
                                                  params.get_list("VolumeId"))
    rows = filters.apply(rows, filters.parse(params), MODIFICATION_FILTERS)
    page, token = request.page(rows, key=lambda m: m.volume_id)
    return {"volumeModificationSet": [render_modification(m) for m in page],
            "nextToken": token}
