"""EC2 instance attributes: DescribeInstanceAttribute, ModifyInstanceAttribute and
ModifyInstanceMetadataOptions.

ModifyInstanceAttribute comes in two forms, both parsed here into one ``{attribute: value}``
with plain values (booleans, text, user data as bytes, group ids, ``{device: delete on
termination}``): ``Attribute=…&Value=…`` (the aws CLI's ``--attribute``/``--value``, old
clients) and the structured parameters (``InstanceType.Value``, ``GroupId.N``,
``BlockDeviceMapping.N.Ebs.DeleteOnTermination``…, boto3's). The rules are the cloud
controller's (:mod:`eucalite.compute.instance_attributes`).
"""
from __future__ import annotations

from ...errors import InvalidParameterValue, MissingParameter
# Pure request helper (no state): user data's wire encoding.
from ..instances import decode_user_data
from .actions import registry
from .instances import group_set, render_metadata_options

#: Structured ModifyInstanceAttribute parameters ``Name.Value`` and the attribute each sets.
VALUE_PARAMS = {"InstanceType": "instanceType", "Kernel": "kernel", "Ramdisk": "ramdisk",
                "UserData": "userData", "DisableApiTermination": "disableApiTermination",
                "DisableApiStop": "disableApiStop",
                "InstanceInitiatedShutdownBehavior": "instanceInitiatedShutdownBehavior",
                "EbsOptimized": "ebsOptimized", "EnaSupport": "enaSupport",
                "SriovNetSupport": "sriovNetSupport", "SourceDestCheck": "sourceDestCheck"}
BOOLEAN = frozenset({"disableApiTermination", "disableApiStop", "ebsOptimized", "enaSupport",
                     "sourceDestCheck"})


def _render_value(attribute: str, value) -> object:
    if attribute == "groupSet":
        return group_set(value)
    if attribute == "blockDeviceMapping":
        return [{"deviceName": volume.device,
                 "ebs": {"volumeId": volume.id, "status": volume.attach_state,
                         "attachTime": volume.attach_time,
                         "deleteOnTermination": volume.delete_on_termination}}
                for volume in value]
    if attribute == "productCodes":
        return value
    return {} if value is None else {"value": value}


@registry.action("DescribeInstanceAttribute", params=("InstanceId", "Attribute"))
def describe_instance_attribute(call):
    attribute = call.params.require("Attribute")
    instance, value = call.services.compute.describe_instance_attribute(
        call.principal, call.params.require("InstanceId"), attribute)
    return {"instanceId": instance.id, attribute: _render_value(attribute, value)}


def _boolean(attribute: str, text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise InvalidParameterValue(f"Value ({text}) for parameter {attribute} is invalid. "
                                    "Expected: 'true' or 'false'.")
    return text.lower() == "true"


def _typed(attribute: str, text: str):
    """*text* sent for *attribute* as the value the compute service takes."""
    if attribute in BOOLEAN:
        return _boolean(attribute, text)
    if attribute == "userData":               # base64 on the wire; the service takes bytes
        return decode_user_data(text)
    if attribute == "groupSet":
        return [text]
    if attribute == "blockDeviceMapping":
        raise InvalidParameterValue("Modify blockDeviceMapping with "
                                    "BlockDeviceMapping.N.DeviceName and "
                                    "BlockDeviceMapping.N.Ebs.DeleteOnTermination.")
    return text


def requested_changes(params) -> dict:
    """Every attribute change a ModifyInstanceAttribute request names, typed."""
    changes: dict = {}
    names = params.names()
    for name, attribute in VALUE_PARAMS.items():
        if name in names:
            value = params.get_struct(name).get("Value")
            if value is None:
                raise MissingParameter(f"The request must contain the parameter {name}.Value")
            changes[attribute] = _typed(attribute, value)
    if "GroupId" in names:
        changes["groupSet"] = params.get_list("GroupId")
    if "BlockDeviceMapping" in names:
        mapping = {}
        for item in params.get_struct_list("BlockDeviceMapping"):
            device = item.get("DeviceName")
            delete = item.struct("Ebs").get("DeleteOnTermination")
            if not device or delete is None:
                raise MissingParameter("The request must contain the parameters "
                                       "BlockDeviceMapping.N.DeviceName and "
                                       "BlockDeviceMapping.N.Ebs.DeleteOnTermination")
            mapping[device] = _boolean("DeleteOnTermination", delete)
        changes["blockDeviceMapping"] = mapping
    attribute = params.get("Attribute")
    if attribute is not None:
        value = params.get("Value")
        if value is None:
            raise MissingParameter("The request must contain the parameter Value")
        changes[attribute] = _typed(attribute, value)
    return changes


@registry.action("ModifyInstanceAttribute", params=(
    "InstanceId", "Attribute", "Value", "GroupId", "BlockDeviceMapping") + tuple(VALUE_PARAMS))
def modify_instance_attribute(call):
    instance_id = call.params.require("InstanceId")
    call.services.compute.modify_instance(call.principal, instance_id,
                                          requested_changes(call.params))
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
