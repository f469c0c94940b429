"""EC2 instance attributes: DescribeInstanceAttribute, ModifyInstanceAttribute and
ModifyInstanceMetadataOptions."""
from __future__ import annotations

from ...errors import InvalidParameterValue
# Pure request helper (no state): user data's wire encoding.
from ..instances import decode_user_data
from .actions import registry
from .instances import group_set, render_metadata_options


ATTRIBUTES = ("instanceType", "kernel", "ramdisk", "userData", "disableApiTermination",
              "instanceInitiatedShutdownBehavior", "rootDeviceName", "blockDeviceMapping",
              "groupSet", "ebsOptimized", "sourceDestCheck", "productCodes")


@registry.action("DescribeInstanceAttribute", params=("InstanceId", "Attribute"))
def describe_instance_attribute(call):
    instance = call.services.compute.instance(call.principal, call.params.require("InstanceId"))
    attribute = call.params.require("Attribute")
    if attribute not in ATTRIBUTES:
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid. "
                                    "Unknown attribute.")
    value = {
        "instanceType": {"value": instance.instance_type},
        "kernel": {"value": instance.kernel_id},
        "ramdisk": {"value": instance.ramdisk_id},
        "userData": {"value": instance.user_data} if instance.user_data else {},
        "disableApiTermination": {"value": False},
        "instanceInitiatedShutdownBehavior": {"value": "stop"},
        "rootDeviceName": {"value": instance.root_device_name},
        "blockDeviceMapping": [],
        "groupSet": group_set(call.services.compute.instance_groups(
            [instance.id])[instance.id]),
        "ebsOptimized": {"value": False},
        "sourceDestCheck": {"value": True},
        "productCodes": [],
    }[attribute]
    return {"instanceId": instance.id, attribute: value}


@registry.action("ModifyInstanceAttribute", params=(
    "InstanceId", "Attribute", "Value", "InstanceType", "UserData", "Kernel", "Ramdisk",
    "DisableApiTermination", "InstanceInitiatedShutdownBehavior"))
def modify_instance_attribute(call):
    instance_id = call.params.require("InstanceId")
    changes: dict = {}
    attribute, value = call.params.get("Attribute"), call.params.get("Value")
    for name, key in (("InstanceType", "instanceType"), ("UserData", "userData"),
                      ("Kernel", "kernel"), ("Ramdisk", "ramdisk")):
        struct = call.params.get_struct(name) if name in call.params.names() else {}
        if struct.get("Value") is not None:
            changes[key] = struct["Value"]
    if attribute and value is not None:
        changes[attribute] = value
    if "userData" in changes:               # base64 on the wire; the service takes bytes
        changes["userData"] = decode_user_data(changes["userData"])
    call.services.compute.modify_instance(call.principal, instance_id, changes)
    return {"return": True}


METADATA_OPTION_PARAMS = ("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint",
                          "HttpProtocolIpv6", "InstanceMetadataTags")


@registry.action("ModifyInstanceMetadataOptions",
                 params=("InstanceId",) + METADATA_OPTION_PARAMS)
def modify_instance_metadata_options(call):
    instance = call.services.compute.modify_metadata_options(
        call.principal, call.params.require("InstanceId"),
        {name: call.params.get(name) for name in METADATA_OPTION_PARAMS})
    return {"instanceId": instance.id,
            "instanceMetadataOptions": render_metadata_options(instance)}
