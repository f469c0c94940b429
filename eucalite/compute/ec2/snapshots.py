"""EC2 snapshot actions: CreateSnapshot, DeleteSnapshot, DescribeSnapshots and the
createVolumePermission attribute (Describe/Modify/ResetSnapshotAttribute)."""
from __future__ import annotations

from ... import tags
from ...errors import InvalidParameterValue, MissingParameter
from ...paging import Paging
from . import filters
from .actions import registry
from .tagparams import specified_tags, tag_set


def render(snapshot, tag_map: dict[str, str]) -> dict:
    """One snapshot as DescribeSnapshots' ``snapshotSet`` item."""
    return {
        "snapshotId": snapshot.id,
        "volumeId": snapshot.volume_id,
        "status": snapshot.state,
        "statusMessage": snapshot.state_message,
        "startTime": snapshot.started,
        "progress": f"{snapshot.progress}%",
        "ownerId": snapshot.owner_id,
        "volumeSize": snapshot.volume_size_gb,
        "description": snapshot.description,
        "encrypted": False,
        "storageTier": "standard",
        "tagSet": tag_set(tag_map),
    }


FILTERS = {
    "snapshot-id": lambda s: s.id,
    "volume-id": lambda s: s.volume_id,
    "status": lambda s: s.state,
    "progress": lambda s: f"{s.progress}%",
    "owner-id": lambda s: s.owner_id,
    "volume-size": lambda s: s.volume_size_gb,
    "description": lambda s: s.description,
    "start-time": lambda s: s.started.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    "encrypted": lambda s: False,
    "storage-tier": lambda s: "standard",
}


@registry.action("CreateSnapshot", params=("VolumeId", "Description", "TagSpecification",
                                           "OutpostArn"))
def create_snapshot(call):
    params = call.params
    snapshot = call.services.ebs.create_snapshot(
        call.principal, params.require("VolumeId"), params.get("Description"),
        specified_tags(params, "snapshot"))
    tag_map = tags.tags_for(call.principal.account_id, [snapshot.id])[snapshot.id]
    return render(snapshot, tag_map)


@registry.action("DeleteSnapshot", params=("SnapshotId",))
def delete_snapshot(call):
    call.services.ebs.delete_snapshot(call.principal, call.params.require("SnapshotId"))
    return {"return": True}


PAGING = Paging(maximum=1000, ids="SnapshotId", conflict=("snapshotSet", "maxResults"),
                clamp=True)


@registry.action("DescribeSnapshots", params=("SnapshotId", "Owner", "RestorableBy", "Filter",
                                              "MaxResults", "NextToken"))
def describe_snapshots(call):
    params = call.params
    ids = params.get_list("SnapshotId")
    request = PAGING.read(params)
    rows = call.services.ebs.visible_snapshots(call.principal, ids, params.get_list("Owner"),
                                               params.get_list("RestorableBy"))
    # Tags are the owner's: a snapshot shared with the caller shows (and matches) none.
    tag_maps = tags.tags_for(call.principal.account_id, [s.id for s in rows])
    rows = filters.apply(rows, filters.parse(params), {
        **FILTERS, **filters.tag_getters(lambda s: tag_maps.get(s.id, {}))})
    page, token = request.page(rows)
    return {"snapshotSet": [render(s, tag_maps.get(s.id, {})) for s in page],
            "nextToken": token}


def _check_attribute(name: str | None) -> None:
    if not name:
        raise MissingParameter("The request must contain the parameter Attribute")
    if name not in ("createVolumePermission", "productCodes"):
        raise InvalidParameterValue(f"Value ({name}) for parameter attribute is invalid. "
                                    "Valid values: createVolumePermission, productCodes")


def _attribute_of_owned(call):
    """(Attribute, the caller's own snapshot SnapshotId) of a Describe/Reset request."""
    attribute = call.params.get("Attribute")
    _check_attribute(attribute)
    return attribute, call.services.ebs.owned_snapshot(call.principal,
                                                      call.params.require("SnapshotId"))


@registry.action("DescribeSnapshotAttribute", params=("SnapshotId", "Attribute"))
def describe_snapshot_attribute(call):
    attribute, snapshot = _attribute_of_owned(call)
    if attribute == "productCodes":
        return {"snapshotId": snapshot.id, "productCodes": []}
    return {"snapshotId": snapshot.id, "createVolumePermission": [
        {"group": "all"} if who == "all" else {"userId": who}
        for who in call.services.ebs.snapshot_permissions(snapshot)]}


def _permission_entries(items) -> list[str]:
    """Account ids / "all" from ``CreateVolumePermission.Add.N`` or ``.Remove.N``."""
    result = []
    for item in items:
        group, user = item.get("Group"), item.get("UserId")
        if group:
            if group != "all":
                raise InvalidParameterValue(f"Invalid group: {group}")
            result.append("all")
        if user:
            result.append(user)
    return result


@registry.action("ModifySnapshotAttribute", params=(
        "SnapshotId", "Attribute", "CreateVolumePermission", "OperationType", "UserId",
        "UserGroup"))
def modify_snapshot_attribute(call):
    params = call.params
    attribute = params.get("Attribute") or "createVolumePermission"
    if attribute != "createVolumePermission":
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid. "
                                    "Only createVolumePermission can be modified.")
    permission = params.get_struct("CreateVolumePermission")
    add = _permission_entries(permission.structs("Add"))
    remove = _permission_entries(permission.structs("Remove"))
    # the older form: OperationType=add|remove with UserId.N / UserGroup.N
    operation = params.get("OperationType")
    if operation:
        if operation not in ("add", "remove"):
            raise InvalidParameterValue(f"Value ({operation}) for parameter operationType is "
                                        "invalid. Valid values: add, remove")
        named = params.get_list("UserId") + ["all" for g in params.get_list("UserGroup")
                                             if g == "all"]
        (add if operation == "add" else remove).extend(named)
    if not add and not remove:
        raise MissingParameter("The request must contain the parameter createVolumePermission")
    call.services.ebs.modify_snapshot_permission(call.principal, params.require("SnapshotId"),
                                                 add, remove)
    return {"return": True}


@registry.action("ResetSnapshotAttribute", params=("SnapshotId", "Attribute"))
def reset_snapshot_attribute(call):
    _, snapshot = _attribute_of_owned(call)
    ebs = call.services.ebs
    ebs.modify_snapshot_permission(call.principal, snapshot.id, [],
                                   ebs.snapshot_permissions(snapshot))
    return {"return": True}
