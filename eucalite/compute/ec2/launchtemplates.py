"""EC2 launch template actions: CreateLaunchTemplate, CreateLaunchTemplateVersion,
DescribeLaunchTemplates, DescribeLaunchTemplateVersions, ModifyLaunchTemplate,
DeleteLaunchTemplate, DeleteLaunchTemplateVersions and GetLaunchTemplateData; the
``LaunchTemplateData`` Query structure read into the plain dict the service keeps
(:mod:`eucalite.compute.launchtemplates`) and rendered back as AWS's
``ResponseLaunchTemplateData``.

Members of LaunchTemplateData that eucalite cannot launch with (Spot options, CPU options,
licences, elastic GPUs...) are UnsupportedOperation, naming the member: a template is never
kept with part of what it asked for silently dropped.
"""
from __future__ import annotations

from typing import Any

from ... import integers, tags, xmlutil
from ...errors import InvalidParameterValue
from ...errors.ec2 import UnsupportedOperation
from ...paging import Paging
from ...query import Struct
from .. import launchtemplates
from ..instance_attributes import stored
from ..metadata import metadata_options
from . import filters
from .actions import registry
from .blockdevices import parse_block_device_mappings
from .tagparams import parse_tags, specified_tags, tag_set

#: LaunchTemplateData members that are single strings, kept under the same name.
_TEXT = ("ImageId", "InstanceType", "KeyName", "KernelId", "RamDiskId", "UserData",
         "InstanceInitiatedShutdownBehavior")
_FLAGS = ("DisableApiTermination", "DisableApiStop")
#: Members accepted only with the value that asks for what every instance here has.
_NO_OP = {"EbsOptimized": "false"}
#: What a block device mapping's Ebs may say: the rest (encryption, IOPS, throughput) are
#: volume features the storage controller does not have.
_EBS_MEMBERS = {"SnapshotId", "VolumeSize", "DeleteOnTermination", "VolumeType"}
_INTERFACE_MEMBERS = {"DeviceIndex", "AssociatePublicIpAddress", "DeleteOnTermination"}


def _unsupported(name: str) -> UnsupportedOperation:
    return UnsupportedOperation(f"The parameter {name} is not supported by this cloud: "
                                "remove it from the launch template data.")


def _flag(struct: Struct, key: str) -> bool:
    value = str(struct.get(key)).lower()
    if value not in ("true", "false"):
        raise InvalidParameterValue(f"Value ({struct.get(key)}) for parameter "
                                    f"{struct.name}.{key} is invalid. Expected: 'true' or "
                                    "'false'.")
    return value == "true"


def _only(struct: Struct, allowed: set[str]) -> Struct:
    for key in struct:
        if key not in allowed:
            raise _unsupported(f"{struct.name}.{key}")
    return struct


def parse_data(struct: Struct) -> dict[str, Any]:
    """``LaunchTemplateData.*`` as the plain dict :func:`.launchtemplates.check_data`
    checks; UnsupportedOperation for a member eucalite cannot launch with."""
    data: dict[str, Any] = {}
    for key in struct:
        name = f"{struct.name}.{key}"
        if key in _TEXT:
            data[key] = struct.get(key)
        elif key in _FLAGS:
            data[key] = _flag(struct, key)
        elif key in _NO_OP:
            if str(struct.get(key)).lower() != _NO_OP[key]:
                raise _unsupported(name)
        elif key == "SecurityGroup":
            data["SecurityGroups"] = struct.scalars(key)
        elif key == "SecurityGroupId":
            data["SecurityGroupIds"] = struct.scalars(key)
        elif key == "Placement":
            placement = _only(struct.struct(key), {"AvailabilityZone"})
            data["Placement"] = {"AvailabilityZone": placement.get("AvailabilityZone")}
        elif key == "TagSpecification":
            data["TagSpecifications"] = [
                {"ResourceType": spec.get("ResourceType"),
                 "Tags": parse_tags(spec.structs("Tag"), prefix=f"{spec.name}.Tag")}
                for spec in struct.structs(key)]
        elif key == "MetadataOptions":
            data["MetadataOptions"] = struct.struct(key).scalar_members()
        elif key == "BlockDeviceMapping":
            mappings = struct.structs(key)
            for mapping in mappings:
                _only(mapping.struct("Ebs"), _EBS_MEMBERS)
            data["BlockDeviceMappings"] = parse_block_device_mappings(mappings)
        elif key == "IamInstanceProfile":
            profile = _only(struct.struct(key), {"Arn", "Name"})
            data["IamInstanceProfile"] = {member: profile.get(member) for member in profile}
        elif key == "Monitoring":
            data["Monitoring"] = {"Enabled": _flag(_only(struct.struct(key), {"Enabled"}),
                                                   "Enabled")}
        elif key == "NetworkInterface":
            data["NetworkInterfaces"] = [_interface(item) for item in struct.structs(key)]
        else:
            raise _unsupported(name)
    return data


def _interface(item: Struct) -> dict[str, Any]:
    _only(item, _INTERFACE_MEMBERS)
    interface: dict[str, Any] = {}
    if item.get("DeviceIndex") is not None:
        index = integers.parse(item.get("DeviceIndex"))
        if index is None:
            raise InvalidParameterValue(f"Value ({item.get('DeviceIndex')}) for parameter "
                                        f"{item.name}.DeviceIndex is invalid.")
        interface["DeviceIndex"] = index
    for flag in ("AssociatePublicIpAddress", "DeleteOnTermination"):
        if item.get(flag) is not None:
            interface[flag] = _flag(item, flag)
    if interface.get("DeleteOnTermination") is False:
        raise _unsupported(f"{item.name}.DeleteOnTermination=false")
    return interface


def _data_param(call) -> dict[str, Any]:
    """``LaunchTemplateData``, absent read as empty: boto3 and the aws CLI send nothing
    for an empty structure (``LaunchTemplateData={}``), so absent is what they mean."""
    return parse_data(call.params.get_struct("LaunchTemplateData"))


# --- rendering ----------------------------------------------------------------------

def render_data(data: dict[str, Any]) -> dict:
    """A version's data as ``launchTemplateData`` (AWS's ResponseLaunchTemplateData)."""
    options = data.get("MetadataOptions")
    placement = data.get("Placement")
    profile = data.get("IamInstanceProfile")
    return {
        "kernelId": data.get("KernelId"),
        "iamInstanceProfile": ({"arn": profile.get("Arn"), "name": profile.get("Name")}
                               if profile else None),
        "blockDeviceMappingSet": [_render_mapping(m)
                                  for m in data.get("BlockDeviceMappings") or ()] or None,
        "networkInterfaceSet": [
            {"deviceIndex": item.get("DeviceIndex"),
             "associatePublicIpAddress": item.get("AssociatePublicIpAddress"),
             "deleteOnTermination": item.get("DeleteOnTermination")}
            for item in data.get("NetworkInterfaces") or ()] or None,
        "imageId": data.get("ImageId"),
        "instanceType": data.get("InstanceType"),
        "keyName": data.get("KeyName"),
        "monitoring": ({"enabled": data["Monitoring"]["Enabled"]}
                       if "Monitoring" in data else None),
        "placement": ({"availabilityZone": placement.get("AvailabilityZone")}
                      if placement else None),
        "ramDiskId": data.get("RamDiskId"),
        "disableApiTermination": data.get("DisableApiTermination"),
        "instanceInitiatedShutdownBehavior": data.get("InstanceInitiatedShutdownBehavior"),
        "userData": data.get("UserData"),
        "tagSpecificationSet": [{"resourceType": spec["ResourceType"],
                                 "tagSet": tag_set(spec["Tags"])}
                                for spec in data.get("TagSpecifications") or ()] or None,
        "securityGroupIdSet": data.get("SecurityGroupIds") or None,
        "securityGroupSet": data.get("SecurityGroups") or None,
        "metadataOptions": ({"httpTokens": options.get("HttpTokens"),
                             "httpPutResponseHopLimit": options.get("HttpPutResponseHopLimit"),
                             "httpEndpoint": options.get("HttpEndpoint"),
                             "httpProtocolIpv6": options.get("HttpProtocolIpv6"),
                             "instanceMetadataTags": options.get("InstanceMetadataTags")}
                            if options else None),
        "disableApiStop": data.get("DisableApiStop"),
    }


def _render_mapping(mapping: dict) -> dict:
    ebs = mapping.get("ebs")
    return {"deviceName": mapping["device"], "virtualName": mapping.get("virtual"),
            "noDevice": "" if mapping.get("no_device") else None,
            "ebs": ({"snapshotId": ebs.get("snapshot_id"), "volumeSize": ebs.get("volume_size"),
                     "deleteOnTermination": ebs.get("delete_on_termination"),
                     "volumeType": ebs.get("volume_type")} if ebs else None)}


def render_template(template, tag_map: dict[str, str] | None = None) -> dict:
    """One ``launchTemplate`` (DescribeLaunchTemplates' item, and the changing calls')."""
    return {"launchTemplateId": template.id, "launchTemplateName": template.name,
            "createTime": template.created, "createdBy": template.created_by,
            "defaultVersionNumber": template.default_version,
            "latestVersionNumber": template.latest_version,
            "tagSet": tag_set(tag_map) if tag_map else None}


def render_version(template, row) -> dict:
    """One ``launchTemplateVersion``."""
    return {"launchTemplateId": template.id, "launchTemplateName": template.name,
            "versionNumber": row.version_number, "versionDescription": row.description,
            "createTime": row.created, "createdBy": row.created_by,
            "defaultVersion": row.version_number == template.default_version,
            "launchTemplateData": render_data(row.get_json("data", {}))}


def _tags_of(call, template) -> dict[str, str]:
    return tags.tags_for(call.principal.account_id, [template.id])[template.id]


def _named(call) -> dict[str, str | None]:
    return {"template_id": call.params.get("LaunchTemplateId") or None,
            "name": call.params.get("LaunchTemplateName") or None}


# --- actions ------------------------------------------------------------------------

@registry.action("CreateLaunchTemplate", params=(
    "ClientToken", "LaunchTemplateName", "VersionDescription", "LaunchTemplateData",
    "TagSpecification"))
def create_launch_template(call):
    params = call.params
    template = call.services.compute.create_launch_template(
        call.principal, params.get("LaunchTemplateName"), _data_param(call),
        description=params.get("VersionDescription"),
        tag_map=specified_tags(params, "launch-template"),
        client_token=params.get("ClientToken") or None)
    return {"launchTemplate": render_template(template, _tags_of(call, template))}


@registry.action("CreateLaunchTemplateVersion", params=(
    "ClientToken", "LaunchTemplateId", "LaunchTemplateName", "SourceVersion",
    "VersionDescription", "LaunchTemplateData",
    "ResolveAlias"))    # no ImageId here is an alias (resolve:ssm: is refused): nothing to do
def create_launch_template_version(call):
    params = call.params
    template, row = call.services.compute.create_launch_template_version(
        call.principal, _data_param(call), source_version=params.get("SourceVersion"),
        description=params.get("VersionDescription"),
        client_token=params.get("ClientToken") or None, **_named(call))
    return {"launchTemplateVersion": render_version(template, row)}


TEMPLATE_PAGING = Paging(minimum=1, maximum=200)


@registry.action("DescribeLaunchTemplates", params=(
    "LaunchTemplateId", "LaunchTemplateName", "Filter", "MaxResults", "NextToken",
    "IncludeManagedResources"))      # no template here is managed by a service
def describe_launch_templates(call):
    params = call.params
    request = TEMPLATE_PAGING.read(params)
    rows = call.services.compute.describe_launch_templates(
        call.principal, params.get_list("LaunchTemplateId"),
        params.get_list("LaunchTemplateName"))
    tag_maps = tags.tags_for(call.principal.account_id, [row.id for row in rows])
    rows = filters.apply(rows, filters.parse(params), {
        "create-time": lambda row: xmlutil.text(row.created),
        "launch-template-name": lambda row: row.name,
        **filters.tag_getters(lambda row: tag_maps[row.id]),
    })
    page, token = request.page(rows, key=launchtemplates.page_key)
    return {"launchTemplates": [render_template(row, tag_maps[row.id]) for row in page],
            "nextToken": token}


def _data_of(pair) -> dict:
    return pair[1].get_json("data", {})


#: DescribeLaunchTemplateVersions' filters, on a (template, version) pair.
VERSION_FILTERS = {
    "create-time": lambda pair: xmlutil.text(pair[1].created),
    "ebs-optimized": lambda pair: False,
    "iam-instance-profile": lambda pair: list((_data_of(pair).get("IamInstanceProfile")
                                              or {}).values()),
    "image-id": lambda pair: _data_of(pair).get("ImageId"),
    "instance-type": lambda pair: _data_of(pair).get("InstanceType"),
    "is-default-version": lambda pair: pair[1].version_number == pair[0].default_version,
    "kernel-id": lambda pair: _data_of(pair).get("KernelId"),
    "ram-disk-id": lambda pair: _data_of(pair).get("RamDiskId"),
    **{name: (lambda option: lambda pair: (_data_of(pair).get("MetadataOptions")
                                           or {}).get(option))(option)
       for name, option in (("http-endpoint", "HttpEndpoint"), ("http-tokens", "HttpTokens"),
                            ("http-protocol-ipv6", "HttpProtocolIpv6"))},
    # features eucalite has none of: valid filters that match nothing
    "host-resource-group-arn": lambda pair: None,
    "license-configuration-arn": lambda pair: None,
    "network-card-index": lambda pair: None,
}

VERSION_PAGING = Paging(minimum=1, maximum=200)


@registry.action("DescribeLaunchTemplateVersions", params=(
    "LaunchTemplateId", "LaunchTemplateName", "LaunchTemplateVersion", "MinVersion",
    "MaxVersion", "Filter", "MaxResults", "NextToken", "ResolveAlias",
    "IncludeManagedResources"))
def describe_launch_template_versions(call):
    params = call.params
    request = VERSION_PAGING.read(params)
    pairs = call.services.compute.describe_launch_template_versions(
        call.principal, versions=params.get_list("LaunchTemplateVersion"),
        minimum=params.get("MinVersion"), maximum=params.get("MaxVersion"), **_named(call))
    pairs = filters.apply(pairs, filters.parse(params), VERSION_FILTERS)
    page, token = request.page(pairs, key=lambda pair: launchtemplates.page_key(*pair))
    return {"launchTemplateVersionSet": [render_version(*pair) for pair in page],
            "nextToken": token}


@registry.action("ModifyLaunchTemplate", params=(
    "ClientToken", "LaunchTemplateId", "LaunchTemplateName", "SetDefaultVersion"))
def modify_launch_template(call):
    template = call.services.compute.modify_launch_template(
        call.principal, call.params.get("SetDefaultVersion"), **_named(call))
    return {"launchTemplate": render_template(template, _tags_of(call, template))}


@registry.action("DeleteLaunchTemplate", params=("LaunchTemplateId", "LaunchTemplateName"))
def delete_launch_template(call):
    gone = call.services.compute.delete_launch_template(call.principal, **_named(call))
    return {"launchTemplate": render_template(gone)}


@registry.action("DeleteLaunchTemplateVersions", params=(
    "LaunchTemplateId", "LaunchTemplateName", "LaunchTemplateVersion"))
def delete_launch_template_versions(call):
    named = _named(call)
    template, deleted, failed = call.services.compute.delete_launch_template_versions(
        call.principal, call.params.get_list("LaunchTemplateVersion"), **named)
    template_id = template.id if template else named["template_id"]
    name = template.name if template else named["name"]
    return {
        "successfullyDeletedLaunchTemplateVersionSet": [
            {"launchTemplateId": template_id, "launchTemplateName": name,
             "versionNumber": number} for number in deleted],
        "unsuccessfullyDeletedLaunchTemplateVersionSet": [
            {"launchTemplateId": template_id, "launchTemplateName": name,
             "versionNumber": failure.version,
             "responseError": {"code": failure.code, "message": failure.message}}
            for failure in failed],
    }


@registry.action("GetLaunchTemplateData", params=("InstanceId",))
def get_launch_template_data(call):
    """The launch parameters of a running instance, as a template's data would hold them."""
    compute = call.services.compute
    instance = compute.instance(call.principal, call.params.require("InstanceId"))
    groups = compute.instance_groups([instance.id])[instance.id]
    # the cloud's own aws: tags are not the user's to put in a template
    user_tags = {key: value for key, value in tags.tags_for(
        call.principal.account_id, [instance.id])[instance.id].items()
        if not key.startswith("aws:")}
    options = metadata_options(instance)
    data = {
        "ImageId": instance.image_id, "InstanceType": instance.instance_type,
        "KeyName": instance.key_name, "KernelId": instance.kernel_id,
        "RamDiskId": instance.ramdisk_id, "UserData": instance.user_data,
        "SecurityGroupIds": [group.id for group in groups],
        "Placement": {"AvailabilityZone": instance.zone},
        "Monitoring": {"Enabled": instance.monitoring == "enabled"},
        "DisableApiTermination": stored(instance, "disableApiTermination"),
        "DisableApiStop": stored(instance, "disableApiStop"),
        "InstanceInitiatedShutdownBehavior": stored(instance,
                                                    "instanceInitiatedShutdownBehavior"),
        "MetadataOptions": options,
        "TagSpecifications": ([{"ResourceType": "instance", "Tags": user_tags}]
                              if user_tags else None),
        "IamInstanceProfile": ({"Arn": instance.iam_instance_profile_arn}
                               if instance.iam_instance_profile_arn else None),
    }
    return {"launchTemplateData": render_data({k: v for k, v in data.items()
                                               if v is not None})}
