"""EC2 instance actions: RunInstances, DescribeInstances, TerminateInstances,
RebootInstances, StopInstances, StartInstances and GetConsoleOutput, and how an instance
renders (attributes: :mod:`.instance_attributes`; status: :mod:`.instance_status`)."""
from __future__ import annotations

import base64
from typing import Any, Callable

from ... import tags, xmlutil
from ...accounts import utcnow
from ...errors import InvalidParameterValue, MissingParameter, UnknownParameter
from .. import states
# Pure request/row helpers (no state): wire encodings and the metadata options' shape.
from ..instance_attributes import check_shutdown_behaviour
from ..instances import Narrowing, decode_user_data
from ..launchtemplates import build_launch
from ..metadata import (metadata_options, private_dns_name, public_dns_name,
                        validate_metadata_options)
from ...paging import Paging, encode_token
from . import filters
from .actions import registry
from .blockdevices import parse_block_device_mappings
from .tagparams import specified_tags, tag_set


def render_state(name: str) -> dict:
    return {"code": states.CODES[name], "name": name}


def _private_dns(instance) -> str:
    return private_dns_name(instance.private_ip)


def _public_dns(instance) -> str:
    return public_dns_name(instance.public_ip)


def render_metadata_options(instance) -> dict:
    """``metadataOptions`` / ``instanceMetadataOptions``: the stored options, in force at
    once (the metadata service reads them on every request), hence "applied"."""
    options = metadata_options(instance)
    return {"state": "applied", "httpTokens": options["HttpTokens"],
            "httpPutResponseHopLimit": options["HttpPutResponseHopLimit"],
            "httpEndpoint": options["HttpEndpoint"],
            "httpProtocolIpv6": options["HttpProtocolIpv6"],
            "instanceMetadataTags": options["InstanceMetadataTags"]}


def group_set(groups) -> list[dict]:
    """Security groups as a ``groupSet``."""
    return [{"groupId": group.id, "groupName": group.name} for group in groups]


#: ``monitoring`` for each state of the instance's column (``enabled``: detailed
#: CloudWatch monitoring, :mod:`.monitoring`).
_MONITORING = {state: xmlutil.serialised({"state": state}) for state in ("disabled", "enabled")}


def _shared(memo: dict, key: tuple, make: Callable[[], Any]) -> xmlutil.Serialised:
    """*make()* written once per answer (*memo*), for values many instances share."""
    written = memo.get(key)
    if written is None:
        written = memo[key] = xmlutil.serialised(make())
    return written


def render_instance(instance, tag_map: dict, groups=(), volumes=(),
                    memo: dict | None = None) -> dict:
    """One ``instancesSet`` item; *groups* are the instance's security groups, *volumes*
    its attached EBS volumes. Values instances share (state, placement, groups, metadata
    options) are written once per *memo*: pass one dict for a whole answer."""
    memo = {} if memo is None else memo
    state, zone, options = instance.state, instance.zone, instance.metadata_options_json
    return {
        "instanceId": instance.id,
        "imageId": instance.image_id,
        "instanceState": _shared(memo, ("state", state), lambda: render_state(state)),
        "privateDnsName": _private_dns(instance),
        "dnsName": _public_dns(instance),
        "reason": instance.state_reason or "",
        "keyName": instance.key_name,
        "amiLaunchIndex": instance.launch_index,
        "productCodes": [],
        "instanceType": instance.instance_type,
        "launchTime": instance.launch_time,
        "placement": _shared(memo, ("placement", zone), lambda: {
            "availabilityZone": zone, "groupName": "", "tenancy": "default"}),
        "kernelId": instance.kernel_id,
        "ramdiskId": instance.ramdisk_id,
        "monitoring": _MONITORING[instance.monitoring or "disabled"],
        "privateIpAddress": instance.private_ip,
        "ipAddress": instance.public_ip,
        "groupSet": _shared(memo, ("groups", tuple(groups)), lambda: group_set(groups)),
        "stateReason": ({"code": instance.state_reason.split(":")[0],
                         "message": instance.state_reason}
                        if instance.state_reason else None),
        "architecture": "x86_64",
        "rootDeviceType": instance.root_device_type,
        "rootDeviceName": instance.root_device_name,
        "blockDeviceMapping": [_block_device_item(volume) for volume in volumes],
        "virtualizationType": "paravirtual",
        "clientToken": instance.client_token or "",
        "tagSet": tag_set(tag_map.get(instance.id, {})),
        "hypervisor": "kvm",
        "ebsOptimized": False,
        "metadataOptions": _shared(memo, ("metadata", options),
                                   lambda: render_metadata_options(instance)),
        "iamInstanceProfile": ({"arn": instance.iam_instance_profile_arn,
                                "id": instance.iam_instance_profile_id}
                               if instance.iam_instance_profile_id else None),
    }


def _block_device_item(volume) -> dict:
    """An attached EBS volume as an instance's ``blockDeviceMapping`` item."""
    return {"deviceName": volume.device,
            "ebs": {"volumeId": volume.id, "status": volume.attach_state,
                    "attachTime": volume.attach_time,
                    "deleteOnTermination": volume.delete_on_termination}}


def _reservations(call, rows, tag_map, groups=None) -> list[dict]:
    """*rows* (instances in launch order) as a ``reservationSet``; *groups*: their
    security groups if already read (:meth:`instance_groups`)."""
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.reservation_id, []).append(row)
    ids = [row.id for row in rows]
    devices = call.services.ebs.attachments_of(ids)
    if groups is None:
        groups = call.services.compute.instance_groups(ids)
    memo: dict = {}
    return [{
        "reservationId": reservation_id,
        "ownerId": members[0].owner_id,
        "groupSet": _shared(memo, ("groups", tuple(groups[members[0].id])),
                            lambda: group_set(groups[members[0].id])),
        "instancesSet": [render_instance(row, tag_map, groups[row.id], devices.get(row.id, ()),
                                         memo) for row in members],
    } for reservation_id, members in grouped.items()]


def _wants_public_ip(params) -> bool:
    """False when RunInstances asks for no public IP: Eucalyptus' ``AddressingType=private``
    or a ``NetworkInterface.N.AssociatePublicIpAddress=false``."""
    addressing = params.get("AddressingType")
    if addressing not in (None, "public", "private"):
        raise InvalidParameterValue(f"Invalid value '{addressing}' for AddressingType: "
                                    "public or private.")
    return addressing != "private" and not any(
        str(item.get("AssociatePublicIpAddress")).lower() == "false"
        for item in params.get_struct_list("NetworkInterface"))


def _monitoring_param(params) -> bool:
    """``Monitoring.Enabled``: whether the instances start with detailed monitoring
    (InvalidParameterValue unless true or false)."""
    enabled = params.get_struct("Monitoring").get("Enabled")
    if enabled is None:
        return False
    if enabled.lower() not in ("true", "false"):
        raise InvalidParameterValue(f"Value ({enabled}) for parameter Monitoring.Enabled is "
                                    "invalid. Expected: 'true' or 'false'.")
    return enabled.lower() == "true"


def instance_profile_param(params) -> tuple[str, str] | None:
    """``IamInstanceProfile.Arn`` (which wins) or ``.Name``: ("arn"|"name", value)."""
    given = params.get_struct("IamInstanceProfile")
    if given.get("Arn"):
        return "arn", given.get("Arn")
    if given.get("Name"):
        return "name", given.get("Name")
    return None


def _explicit_settings(params) -> dict:
    """The launch settings a RunInstances request gives itself, only those it sends (the
    keys of :func:`eucalite.compute.launchtemplates.build_launch`): over a launch
    template's, they win; without one, LaunchRequest's defaults fill the rest."""
    settings: dict[str, Any] = {}
    for name, field in (("ImageId", "image_id"), ("InstanceType", "instance_type"),
                        ("KeyName", "key_name"), ("KernelId", "kernel_id"),
                        ("RamdiskId", "ramdisk_id"), ("ClientToken", "client_token")):
        if params.get(name):
            settings[field] = params.get(name)
    groups, group_ids = params.get_list("SecurityGroup"), params.get_list("SecurityGroupId")
    if groups or group_ids:
        settings["security_groups"] = groups or None
        settings["security_group_ids"] = group_ids or None
    if "AddressingType" in params.tree or "NetworkInterface" in params.tree:
        settings["public_ip"] = _wants_public_ip(params)
    if params.get("UserData"):
        settings["user_data"] = decode_user_data(params.get("UserData"))
    zone = params.get_struct("Placement").get("AvailabilityZone")
    if zone:
        settings["zone"] = zone
    for kind, field in (("instance", "tags"), ("volume", "volume_tags")):
        specified = specified_tags(params, kind, other_types=True)
        if specified:
            settings[field] = specified
    options = validate_metadata_options(params.get_struct("MetadataOptions").scalar_members())
    if options:
        settings["metadata_options"] = options
    for name, field in (("DisableApiTermination", "disable_api_termination"),
                        ("DisableApiStop", "disable_api_stop")):
        if params.get(name) is not None:
            settings[field] = params.get_bool(name)
    if params.get("InstanceInitiatedShutdownBehavior") is not None:
        settings["shutdown_behaviour"] = check_shutdown_behaviour(
            params.get("InstanceInitiatedShutdownBehavior"))
    mappings = parse_block_device_mappings(params.get_struct_list("BlockDeviceMapping"))
    if mappings:
        settings["block_devices"] = mappings
    profile = instance_profile_param(params)
    if profile:
        settings["iam_instance_profile"] = profile
    if params.get_struct("Monitoring").get("Enabled") is not None:
        settings["monitoring"] = _monitoring_param(params)
    return settings


@registry.action("RunInstances", params=(
    "ImageId", "MinCount", "MaxCount", "InstanceType", "KeyName", "SecurityGroup",
    "SecurityGroupId", "UserData", "Placement", "KernelId", "RamdiskId", "ClientToken",
    "TagSpecification", "Monitoring", "DisableApiTermination",
    "InstanceInitiatedShutdownBehavior", "EbsOptimized", "BlockDeviceMapping",
    "AdditionalInfo", "MetadataOptions", "InstanceMarketOptions", "CreditSpecification",
    "AddressingType", "NetworkInterface", "DisableApiStop", "IamInstanceProfile",
    "LaunchTemplate"))
def run_instances(call):
    """With ``LaunchTemplate.*``, the template version's parameters under the request's
    own (:func:`eucalite.compute.launchtemplates.build_launch`)."""
    params = call.params
    template = params.get_struct("LaunchTemplate")
    if not template:
        params.require("ImageId")
    min_count = params.get_int("MinCount", minimum=1)
    max_count = params.get_int("MaxCount", minimum=1)
    if min_count is None:
        raise MissingParameter("The request must contain the parameter MinCount")
    if max_count is None:
        raise MissingParameter("The request must contain the parameter MaxCount")
    if min_count > max_count:
        raise InvalidParameterValue("MinCount must be less than or equal to MaxCount")
    explicit = {**_explicit_settings(params), "min_count": min_count, "max_count": max_count}
    if template:
        for member in template:
            if member not in ("LaunchTemplateId", "LaunchTemplateName", "Version"):
                raise UnknownParameter(f"The parameter LaunchTemplate.{member} is not "
                                       "recognized.")
        request = call.services.compute.launch_template_request(
            call.principal, template_id=template.get("LaunchTemplateId") or None,
            name=template.get("LaunchTemplateName") or None, version=template.get("Version"),
            overrides=explicit)
    else:
        request = build_launch({}, explicit)
    rows = call.services.compute.run_instances(call.principal, request)
    tag_map = tags.tags_for(call.principal.account_id, [row.id for row in rows])
    reservation = _reservations(call, rows, tag_map)[0]
    reservation["requesterId"] = None
    return reservation


INSTANCE_FILTERS = {
    "instance-id": lambda row: row.id,
    "instance-state-name": lambda row: row.state,
    "instance-state-code": lambda row: states.CODES[row.state],
    "image-id": lambda row: row.image_id,
    "instance-type": lambda row: row.instance_type,
    "key-name": lambda row: row.key_name,
    "reservation-id": lambda row: row.reservation_id,
    "availability-zone": lambda row: row.zone,
    "ip-address": lambda row: row.public_ip,
    "private-ip-address": lambda row: row.private_ip,
    "dns-name": _public_dns,
    "private-dns-name": _private_dns,
    "kernel-id": lambda row: row.kernel_id,
    "ramdisk-id": lambda row: row.ramdisk_id,
    "launch-index": lambda row: row.launch_index,
    "root-device-type": lambda row: row.root_device_type,
    "owner-id": lambda row: row.owner_id,
    "client-token": lambda row: row.client_token,
    "monitoring-state": lambda row: row.monitoring,
    "architecture": lambda row: "x86_64",
}


#: Filters on instance columns that the database can test first, and those columns.
_NARROWED_COLUMNS = {"instance-id": "id", "instance-state-name": "state",
                     "reservation-id": "reservation_id", "image-id": "image_id",
                     "instance-type": "instance_type", "availability-zone": "zone",
                     "key-name": "key_name"}


def _narrowing(wanted) -> Narrowing:
    """What of the filters *wanted* the database applies before it cuts a page: those
    on a column or a tag whose values are all literal. The page is filtered again in full
    afterwards (:func:`_filtered`), so this only saves work, never decides a match."""
    columns, tag_values, tag_keys = [], [], []
    for name, values in wanted:
        exact = filters.literal(values)
        if exact is None:
            continue
        if name in _NARROWED_COLUMNS:
            columns.append((_NARROWED_COLUMNS[name], exact))
        elif name.startswith("tag:"):
            tag_values.append((name[4:], exact))
        elif name == "tag-key":
            tag_keys.append(exact)
    return Narrowing(tuple(columns), tuple(tag_values), tuple(tag_keys))


def _filtered(call, rows, wanted):
    """(the rows matching every filter in *wanted*, their tags, their groups): tags and
    groups read for the whole page at once."""
    tag_map = tags.tags_for(call.principal.account_id, [row.id for row in rows])
    groups = call.services.compute.instance_groups([row.id for row in rows])
    getters = dict(INSTANCE_FILTERS)
    getters.update(filters.tag_getters(lambda row: tag_map.get(row.id, {})))
    # EC2-Classic: a reservation's groups are its instances' groups.
    for prefix in ("", "instance."):
        getters[prefix + "group-id"] = lambda row: [group.id for group in groups[row.id]]
        getters[prefix + "group-name"] = lambda row: [group.name for group in groups[row.id]]
    return filters.apply(rows, wanted, getters), tag_map, groups


PAGING = Paging(maximum=1000, ids="InstanceId", conflict=("instancesSet", "maxResults"))


@registry.action("DescribeInstances", params=("InstanceId", "Filter", "MaxResults",
                                              "NextToken"))
def describe_instances(call):
    """The database cuts the page (so it costs the same at 10 or 10,000 instances) after
    the literal filters; the rest apply to that page, which may then hold fewer than
    MaxResults instances beside a NextToken, as AWS allows."""
    request = PAGING.read(call.params)
    wanted = filters.parse(call.params)
    found = call.services.compute.instances_page(
        call.principal, call.params.get_list("InstanceId") or None,
        narrowing=_narrowing(wanted), after=request.after, limit=request.max_results)
    rows, tag_map, groups = _filtered(call, found.rows, wanted)
    return {"reservationSet": _reservations(call, rows, tag_map, groups),
            "nextToken": encode_token(found.next_key) if found.next_key else None}


def _changes(changes, tag: str) -> dict:
    return {tag: [{"instanceId": change.instance_id,
                   "currentState": render_state(change.current),
                   "previousState": render_state(change.previous)} for change in changes]}


def instance_ids(call) -> list[str]:
    """``InstanceId.N`` (MissingParameter when none)."""
    ids = call.params.get_list("InstanceId")
    if not ids:
        raise MissingParameter("The request must contain the parameter InstanceId")
    return ids


@registry.action("TerminateInstances", params=("InstanceId",))
def terminate_instances(call):
    return _changes(call.services.compute.terminate(call.principal, instance_ids(call)),
                    "instancesSet")


@registry.action("RebootInstances", params=("InstanceId",))
def reboot_instances(call):
    call.services.compute.reboot(call.principal, instance_ids(call))
    return {"return": True}


@registry.action("StopInstances", params=("InstanceId", "Force", "Hibernate"))
def stop_instances(call):
    return _changes(call.services.compute.stop_or_start(call.principal, instance_ids(call),
                                                        "stop"), "instancesSet")


@registry.action("StartInstances", params=("InstanceId", "AdditionalInfo"))
def start_instances(call):
    return _changes(call.services.compute.stop_or_start(call.principal, instance_ids(call),
                                                        "start"), "instancesSet")


@registry.action("GetConsoleOutput", params=("InstanceId", "Latest"))
def get_console_output(call):
    instance_id, output = call.services.compute.console_output(
        call.principal, call.params.require("InstanceId"))
    return {"instanceId": instance_id, "timestamp": utcnow(),
            "output": base64.b64encode(output).decode()}
