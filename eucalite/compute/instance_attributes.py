"""Instance attributes: what DescribeInstanceAttribute reads and ModifyInstanceAttribute may
change, and the protections and shutdown behaviour the other instance operations obey.

Values are plain Python (booleans, text, ``bytes`` user data, group ids, ``{device:
delete on termination}``). The attributes eucalite keeps beyond the instance's columns
(``disableApiTermination``, ``disableApiStop``, ``instanceInitiatedShutdownBehavior``) live in
the instance's ``attributes`` JSON under those names; absent means AWS's default (false,
false, ``stop``).

AWS's rules, as enforced here: one attribute per call; instanceType, kernel, ramdisk,
userData, ebsOptimized, enaSupport and sriovNetSupport change only while the instance is
stopped (``IncorrectInstanceState``); nothing changes on a terminated instance; an unknown
type is ``InvalidInstanceAttributeValue``; ``sourceDestCheck`` is a VPC attribute, and this
cloud is EC2-Classic (``InvalidParameterCombination``, AWS's answer for a Classic instance);
ENA, SR-IOV and EBS-optimised I/O do not exist on eucalite's virtio guests, so turning them
on is ``UnsupportedOperation`` (turning them off is accepted and changes nothing).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from ..accounts import Principal
from ..db import db
from ..ebs.service import EbsService
from ..errors import InvalidParameterCombination, InvalidParameterValue, MissingParameter
from ..errors.ec2 import (IncorrectInstanceState, InvalidInstanceAttributeValue,
                          OperationNotPermitted, UnsupportedOperation)
from . import images, instance_types, instances, secgroups, states
from .models import Instance, InstanceSecurityGroup

#: Every attribute AWS lists for DescribeInstanceAttribute, in its order.
ATTRIBUTES = ("instanceType", "kernel", "ramdisk", "userData", "disableApiTermination",
              "instanceInitiatedShutdownBehavior", "rootDeviceName", "blockDeviceMapping",
              "productCodes", "sourceDestCheck", "groupSet", "ebsOptimized", "sriovNetSupport",
              "enaSupport", "disableApiStop")

#: What may change only while the instance is stopped.
STOPPED_ONLY = frozenset({"instanceType", "kernel", "ramdisk", "userData", "ebsOptimized",
                          "enaSupport", "sriovNetSupport"})

#: Read-only attributes (AWS has no way to modify them).
READ_ONLY = frozenset({"rootDeviceName", "productCodes"})

SHUTDOWN_BEHAVIOURS = ("stop", "terminate")
_DEFAULTS = {"disableApiTermination": False, "disableApiStop": False,
             "instanceInitiatedShutdownBehavior": "stop"}


def check_name(attribute: str) -> str:
    """*attribute* if AWS lists it, else InvalidParameterValue (AWS's words)."""
    if attribute not in ATTRIBUTES:
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid. "
                                    "Unknown attribute.")
    return attribute


def check_shutdown_behaviour(value: str | None) -> str | None:
    """An InstanceInitiatedShutdownBehavior (``stop``/``terminate``; None: not given)."""
    if value is not None and value not in SHUTDOWN_BEHAVIOURS:
        raise InvalidParameterValue(f"Value ({value}) for parameter "
                                    "instanceInitiatedShutdownBehavior is invalid. "
                                    "Valid values are 'stop' and 'terminate'.")
    return value


# --- the stored attributes ----------------------------------------------------------------

def stored(instance: Instance, name: str) -> Any:
    """One of the attributes kept in the instance's JSON, or its AWS default."""
    return (instance.get_json("attributes") or {}).get(name, _DEFAULTS[name])


def store(instance: Instance, values: Mapping[str, Any]) -> None:
    """Keep *values* (names of ``_DEFAULTS``) in the instance's JSON beside what others keep
    there (private addressing); the caller commits."""
    instance.set_json("attributes", {**(instance.get_json("attributes") or {}), **values})


def shutdown_behaviour(instance: Instance) -> str:
    """What a guest powering itself off does: ``terminate`` when the attribute says so or
    the root is instance-store (which cannot be stopped), else ``stop``."""
    if instance.root_device_type != "ebs":
        return "terminate"
    return stored(instance, "instanceInitiatedShutdownBehavior")


def check_terminable(rows: Iterable[Instance]) -> None:
    """OperationNotPermitted (the whole TerminateInstances fails) if any of *rows* that has
    not ended is protected by ``disableApiTermination``."""
    for instance in rows:
        if instance.state != states.TERMINATED and stored(instance, "disableApiTermination"):
            raise OperationNotPermitted(
                f"The instance '{instance.id}' may not be terminated. Modify its "
                "'disableApiTermination' instance attribute and try again.")


def check_stoppable(rows: Iterable[Instance]) -> None:
    """OperationNotPermitted (the whole StopInstances fails) if any of *rows* is protected by
    ``disableApiStop``."""
    for instance in rows:
        if stored(instance, "disableApiStop"):
            raise OperationNotPermitted(
                f"The instance '{instance.id}' may not be stopped. Modify its "
                "'disableApiStop' instance attribute and try again.")


# --- reading --------------------------------------------------------------------------------

def read(instance: Instance, attribute: str, *, groups: list, volumes: list) -> Any:
    """The value of *attribute* (checked by :func:`check_name`): text, a boolean, None for
    no value, the instance's security groups (*groups*) for ``groupSet``, its attached
    volumes (*volumes*) for ``blockDeviceMapping``, ``[]`` for ``productCodes``."""
    if attribute == "sourceDestCheck":
        raise InvalidParameterCombination("You may only describe the sourceDestCheck "
                                          "attribute for VPC instances")
    if attribute in _DEFAULTS:
        return stored(instance, attribute)
    return {
        "instanceType": lambda: instance.instance_type,
        "kernel": lambda: instance.kernel_id,
        "ramdisk": lambda: instance.ramdisk_id,
        "userData": lambda: instance.user_data,         # stored base64, as EC2 returns it
        "rootDeviceName": lambda: instance.root_device_name,
        "blockDeviceMapping": lambda: volumes,
        "productCodes": lambda: [],
        "groupSet": lambda: groups,
        "ebsOptimized": lambda: False,
        "enaSupport": lambda: False,
        "sriovNetSupport": lambda: None,
    }[attribute]()


# --- changing -------------------------------------------------------------------------------

def check_change(principal: Principal, instance: Instance, changes: Mapping[str, Any],
                 group_limit: int) -> tuple[str, Any]:
    """The one (attribute, value) of *changes*, valid for *instance* in its current state,
    or the error AWS gives; a ``groupSet`` names 1..*group_limit* of the account's groups."""
    if not changes:
        raise MissingParameter("The request must contain an attribute to modify.")
    if len(changes) > 1:
        raise InvalidParameterCombination("Only one attribute may be modified at a time.")
    [(attribute, value)] = changes.items()
    check_name(attribute)
    if attribute in READ_ONLY:
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid. "
                                    "The attribute cannot be modified.")
    if attribute == "sourceDestCheck":
        raise InvalidParameterCombination("You may only modify the sourceDestCheck "
                                          "attribute for VPC instances")
    if instance.state == states.TERMINATED:
        raise instances.incorrect_state(instance, "modified")
    if attribute in STOPPED_ONLY and instance.state != states.STOPPED:
        raise IncorrectInstanceState(f"The instance '{instance.id}' is not in the 'stopped' "
                                     "state.")
    return attribute, _checked_value(principal, attribute, value, group_limit)


def _checked_value(principal: Principal, attribute: str, value: Any,
                   group_limit: int) -> Any:
    if attribute == "instanceType":
        row = instance_types.find(value) if value else None
        if row is None:
            raise InvalidInstanceAttributeValue(f"The instanceType '{value}' is invalid.")
        return row.name
    if attribute in ("kernel", "ramdisk"):
        return images.launchable_part(principal, value, attribute) if value else None
    if attribute == "userData":
        return instances.encode_user_data(value)
    if attribute == "instanceInitiatedShutdownBehavior":
        return check_shutdown_behaviour(value)
    if attribute == "groupSet":
        if not value:
            raise MissingParameter("The request must contain the parameter groupId")
        secgroups.check_launch_groups(principal.account_id, (), value, group_limit)
        return list(dict.fromkeys(value))
    if attribute in ("ebsOptimized", "enaSupport", "sriovNetSupport") and value not in (
            False, None, ""):
        raise UnsupportedOperation(f"The instance attribute '{attribute}' cannot be enabled: "
                                   "eucalite's guests use virtio devices.")
    return value


def apply(instance: Instance, attribute: str, value: Any, *, volumes: list,
          ebs: EbsService) -> None:
    """Make one checked change (:func:`check_change`) in the caller's transaction.
    ``groupSet`` replaces the instance's groups (the caller syncs the network plan after
    committing); ``blockDeviceMapping`` (``{device: delete on termination}``) sets the
    flag on the attached *volumes* through the storage controller *ebs*,
    InvalidInstanceAttributeValue for a device with none."""
    if attribute == "instanceType":
        instance.instance_type = value
    elif attribute == "kernel":
        instance.kernel_id = value
    elif attribute == "ramdisk":
        instance.ramdisk_id = value
    elif attribute == "userData":
        instance.user_data = value
    elif attribute in _DEFAULTS:
        store(instance, {attribute: value})
    elif attribute == "groupSet":
        _replace_groups(instance, value)
    elif attribute == "blockDeviceMapping":
        by_device = {volume.device: volume for volume in volumes}
        for device, delete in value.items():
            if device not in by_device:
                raise InvalidInstanceAttributeValue(f"No device is currently mapped at "
                                                    f"{device}")
            ebs.set_delete_on_termination(by_device[device].id, delete)


def _replace_groups(instance: Instance, group_ids: list[str]) -> None:
    """The instance's security groups become *group_ids* (checked), in that order."""
    groups = secgroups.launch_groups(instance.owner_id, None, group_ids)
    db.session.execute(db.delete(InstanceSecurityGroup).filter_by(instance_id=instance.id))
    secgroups.add_members([instance.id], groups)


def launch_attributes(disable_api_termination: bool, disable_api_stop: bool,
                      shutdown_behaviour: str | None) -> dict:
    """RunInstances' DisableApiTermination, DisableApiStop and
    InstanceInitiatedShutdownBehavior, checked, as the stored attributes that differ from
    AWS's defaults (what :attr:`LaunchRequest.attributes` holds)."""
    values = {"disableApiTermination": disable_api_termination,
              "disableApiStop": disable_api_stop,
              "instanceInitiatedShutdownBehavior":
                  check_shutdown_behaviour(shutdown_behaviour) or "stop"}
    return {name: value for name, value in values.items() if value != _DEFAULTS[name]}
