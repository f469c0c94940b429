"""EC2 instance type actions: DescribeInstanceTypes, and Eucalyptus'
ModifyInstanceTypeAttribute (the cloud admin resizes a type).

DescribeInstanceTypes answers in AWS's shape (``instanceTypeSet``), or in Eucalyptus' own
(``instanceTypeDetails`` items of name/cpu/disk/memory in the ``http://msgs.eucalyptus.com/
<version>`` namespace) for a client written for Eucalyptus: one whose Version is in
Eucalyptus' numbering (``3.3.0``, ``4.4``), or any client at Eucalyptus' classic path, where
libcloud's Eucalyptus driver sends AWS's Version yet reads Eucalyptus' shape.
"""
from __future__ import annotations

import re

from flask import request

from ...errors.ec2 import InvalidInstanceType
from ..instance_types import is_current_generation
from ...paging import Paging
from . import filters
from .actions import CLASSIC_EC2_PATH, NamespacedBody, registry

ROOT_DEVICE_TYPES = ["ebs", "instance-store"]
VIRTUALIZATION_TYPES = ["hvm", "paravirtual"]
ARCHITECTURES = ["i386", "x86_64"]


def _render(row) -> dict:
    """One instance type as DescribeInstanceTypes' ``instanceTypeSet`` item."""
    return {
        "instanceType": row.name,
        "currentGeneration": is_current_generation(row.name),
        "freeTierEligible": False,
        "supportedUsageClasses": ["on-demand"],
        "supportedRootDeviceTypes": ROOT_DEVICE_TYPES,
        "supportedVirtualizationTypes": VIRTUALIZATION_TYPES,
        "bareMetal": False,
        "hypervisor": "kvm",
        "processorInfo": {"supportedArchitectures": ARCHITECTURES},
        "vCpuInfo": {"defaultVCpus": row.cpu, "defaultCores": row.cpu,
                     "defaultThreadsPerCore": 1},
        "memoryInfo": {"sizeInMiB": row.memory_mb},
        # Every type has a local disk: the instance-store root the node carves out.
        "instanceStorageSupported": True,
        "instanceStorageInfo": {
            "totalSizeInGB": row.disk_gb,
            "disks": [{"sizeInGB": row.disk_gb, "count": 1, "type": "hdd"}],
        },
        "ebsInfo": {"ebsOptimizedSupport": "unsupported", "encryptionSupport": "unsupported"},
        "burstablePerformanceSupported": False,
        "hibernationSupported": False,
        "autoRecoverySupported": False,
        "dedicatedHostsSupported": False,
    }


_GETTERS = {
    "instance-type": lambda row: row.name,
    "vcpu-info.default-vcpus": lambda row: row.cpu,
    "vcpu-info.default-cores": lambda row: row.cpu,
    "memory-info.size-in-mib": lambda row: row.memory_mb,
    "instance-storage-info.total-size-in-gb": lambda row: row.disk_gb,
    "instance-storage-supported": lambda row: True,
    "current-generation": lambda row: is_current_generation(row.name),
    "free-tier-eligible": lambda row: False,
    "bare-metal": lambda row: False,
    "hypervisor": lambda row: "kvm",
    "supported-root-device-type": lambda row: ROOT_DEVICE_TYPES,
    "supported-virtualization-type": lambda row: VIRTUALIZATION_TYPES,
    "supported-usage-class": lambda row: "on-demand",
    "processor-info.supported-architecture": lambda row: ARCHITECTURES,
}


PAGING = Paging(maximum=100)

#: Eucalyptus numbered its API by its release (AWS by date: 2016-11-15).
_EUCALYPTUS_VERSION = re.compile(r"\d+(\.\d+){1,2}")
#: The release libcloud's Eucalyptus driver reads by default.
DEFAULT_EUCALYPTUS_VERSION = "3.3.0"


def eucalyptus_namespace(version: str | None, path: str) -> str | None:
    """The namespace of Eucalyptus' own answer for a request with *version* at *path*, or
    None when the client wants AWS's shape."""
    if version and _EUCALYPTUS_VERSION.fullmatch(version):
        return f"http://msgs.eucalyptus.com/{version}"
    if path.rstrip("/") == CLASSIC_EC2_PATH:
        return f"http://msgs.eucalyptus.com/{DEFAULT_EUCALYPTUS_VERSION}"
    return None


def _render_eucalyptus(row, capacity: dict | None = None) -> dict:
    """One instance type as Eucalyptus' ``instanceTypeDetails`` item, its VmTypeDetails
    (memory in MiB, disk in GiB; one network interface, as every instance here has); with
    *capacity* (:meth:`ComputeService.capacity`'s ``types``) its ``availability`` per zone
    (VmTypeZoneStatus)."""
    item = {"name": row.name, "cpu": row.cpu, "disk": row.disk_gb, "memory": row.memory_mb,
            "networkInterfaces": 1}
    if capacity is not None:
        item["availability"] = [
            {"name": row.name, "zoneName": zone, "max": maximum, "available": free}
            for zone, counts in sorted(capacity.items())
            for name, free, maximum in counts if name == row.name]
    return item


@registry.action("DescribeInstanceTypes", params=("InstanceType", "Filter", "MaxResults",
                                                  "NextToken", "Availability", "Verbose"))
def describe_instance_types(call):
    """AWS's answer, or Eucalyptus' (see the module docstring), where ``Availability=true``
    (euca-describe-instance-types --show-capacity) adds, for the cloud admin, each zone's
    free and maximum count of the type. ``Verbose`` is Eucalyptus' "types not enabled
    too": every type here is enabled, so it changes nothing."""
    params = call.params
    paging = PAGING.read(params)
    rows = call.services.compute.list_instance_types()
    names = params.get_list("InstanceType")
    if names:
        known = {row.name for row in rows}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise InvalidInstanceType(f"The following supplied instance types do not exist: "
                                      f"[{', '.join(unknown)}]")
        rows = [row for row in rows if row.name in names]
    rows = filters.apply(rows, filters.parse(params), _GETTERS)
    page, next_token = paging.page(rows, key=lambda row: row.name)
    namespace = eucalyptus_namespace(params.flat.get("Version"), request.path)
    availability = params.get_bool("Availability")
    params.get_bool("Verbose")
    if namespace is not None:
        capacity = call.services.compute.capacity()["types"] \
            if availability and call.principal.is_cloud_admin else None
        return NamespacedBody(namespace, {
            "instanceTypeDetails": [_render_eucalyptus(row, capacity) for row in page],
            "nextToken": next_token})
    return {"instanceTypeSet": [_render(row) for row in page], "nextToken": next_token}


@registry.action("ModifyInstanceTypeAttribute", params=("InstanceType", "Cpu", "Memory",
                                                        "Disk"))
def modify_instance_type_attribute(call):
    params = call.params
    row = call.services.compute.modify_instance_type(
        call.principal, params.require("InstanceType"), cpu=params.get_int("Cpu", minimum=1),
        memory_mb=params.get_int("Memory", minimum=1), disk_gb=params.get_int("Disk", minimum=1))
    return {"return": True,
            "instanceType": {"name": row.name, "cpu": row.cpu, "memory": row.memory_mb,
                             "disk": row.disk_gb}}
