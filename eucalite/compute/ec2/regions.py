"""EC2 actions about where things run: DescribeRegions, DescribeAvailabilityZones,
DescribeAccountAttributes.

DescribeAvailabilityZones takes every filter AWS documents; the zones are this cloud's
availability zones (no Local or Wavelength zones, so ``AllAvailabilityZones`` changes
nothing). At Eucalyptus' classic path a ``region-name`` filter is accepted and ignored, as
Eucalyptus 3 did: libcloud's Eucalyptus driver sends ``region-name=us-east-1`` whatever the
cloud, and must get this cloud's zones. For the cloud admin, the zone name ``verbose`` adds
Eucalyptus' listing of how many instances of each type fit, and each node's use and overcommit
ratios (see :func:`_capacity_items`).

A zone is a cluster; its state comes from its nodes (:func:`eucalite.cluster.nodes.zone_states`):
``available`` while one of them takes instances (or it has none yet), ``impaired`` with
messages saying why when all of its nodes are disabled, draining or unreachable. Each zone's
verbose listing counts only its own nodes.
"""
from __future__ import annotations

from flask import request

from ...errors import InvalidParameterValue
from . import filters
from .actions import CLASSIC_EC2_PATH, registry

OPT_IN = "opt-in-not-required"


@registry.action("DescribeRegions", params=("RegionName", "Filter", "AllRegions"))
def describe_regions(call):
    regions = call.services.compute.regions()
    names = call.params.get_list("RegionName")
    call.params.get_bool("AllRegions")              # validated; we have no opt-in regions
    known = {region.name for region in regions}
    for name in names:
        if name not in known:
            raise InvalidParameterValue(f"Invalid region: {name}")
    if names:
        regions = [region for region in regions if region.name in names]
    regions = filters.apply(regions, filters.parse(call.params), {
        "endpoint": lambda region: region.endpoint,
        "region-name": lambda region: region.name,
        "opt-in-status": lambda region: OPT_IN,
    })
    return {"regionInfo": [{"regionName": region.name, "regionEndpoint": region.endpoint,
                            "optInStatus": OPT_IN} for region in regions]}


_ZONE_GETTERS: filters.Getters = {
    "zone-name": lambda zone: zone.name,
    "zone-id": lambda zone: zone.zone_id,
    "region-name": lambda zone: zone.region,
    "state": lambda zone: zone.state,
    "message": lambda zone: list(zone.messages),
    "group-name": lambda zone: zone.region,
    "opt-in-status": lambda zone: OPT_IN,
    "zone-type": lambda zone: "availability-zone",
    # Only Local and Wavelength zones have a parent zone: no availability zone matches.
    "parent-zone-id": lambda zone: None,
    "parent-zone-name": lambda zone: None,
}


@registry.action("DescribeAvailabilityZones",
                 params=("ZoneName", "ZoneId", "Filter", "AllAvailabilityZones"))
def describe_availability_zones(call):
    zones = call.services.compute.zones()
    names, zone_ids = call.params.get_list("ZoneName"), call.params.get_list("ZoneId")
    verbose = "verbose" in names
    names = [name for name in names if name != "verbose"]
    call.params.get_bool("AllAvailabilityZones")    # validated; every zone is opted in
    unknown = [name for name in names if name not in {zone.name for zone in zones}]
    unknown += [zid for zid in zone_ids if zid not in {zone.zone_id for zone in zones}]
    if unknown:
        raise InvalidParameterValue(f"Invalid availability zone: [{', '.join(unknown)}]")
    if names or zone_ids:
        zones = [zone for zone in zones if zone.name in names or zone.zone_id in zone_ids]
    zone_filters = filters.parse(call.params)
    if request.path.rstrip("/") == CLASSIC_EC2_PATH:
        # Eucalyptus 3 accepted region-name here and ignored it (see the module docstring)
        zone_filters = [(name, values) for name, values in zone_filters
                        if name != "region-name"]
    zones = filters.apply(zones, zone_filters, _ZONE_GETTERS)
    capacity = call.services.compute.capacity() \
        if verbose and call.principal.is_cloud_admin else None
    specs = {t.name: t for t in call.services.compute.list_instance_types()} \
        if capacity is not None else {}
    items = []
    for zone in zones:
        items.append({
            "zoneName": zone.name,
            "zoneState": zone.state,
            "regionName": zone.region,
            "zoneId": zone.zone_id,
            "zoneType": "availability-zone",
            "optInStatus": OPT_IN,
            "groupName": zone.region,
            "networkBorderGroup": zone.region,
            "messageSet": [{"message": message} for message in zone.messages],
        })
        if capacity is not None:
            items.extend(_capacity_items(zone, capacity, specs))
    return {"availabilityZoneInfo": items}


def _capacity_items(zone, capacity: dict, specs: dict) -> list[dict]:
    """Eucalyptus' ``verbose`` listing: free / max instances per type, as extra zone items
    (what euca-describe-availability-zones verbose prints), then each of the zone's nodes
    with its use, what it may hold and the overcommit ratios that give it (``*``: the node's
    own, else the cloud's), for the cloud admin. *capacity* is
    :meth:`ComputeService.capacity`: ``types`` is zone -> [(type, free, max)], counted in the
    nodes' overcommitted capacity (what the scheduler admits), ``nodes`` the nodes; *specs*
    maps each type's name to its row."""
    rows = [{"zoneName": "|- vm types", "zoneState": "free / max   cpu   ram  disk",
             "regionName": zone.region}]
    for name, free, maximum in capacity["types"].get(zone.name, []):
        spec = specs[name]
        rows.append({"zoneName": f"|- {name}",
                     "zoneState": f"{free:04d} / {maximum:04d}   {spec.cpu:>3}  "
                                  f"{spec.memory_mb:>5}  {spec.disk_gb:>4}",
                     "regionName": zone.region})
    entries = [entry for entry in capacity["nodes"] if entry.node.zone == zone.name]
    if entries:
        rows.append({"zoneName": "|- nodes", "zoneState": "state  vcpus used/max  "
                     "memory used/max  disk used/max  cpu_overcommit  memory_overcommit",
                     "regionName": zone.region})
    for entry in entries:
        node = entry.node
        rows.append({"zoneName": f"|- node {node.id}",
                     "zoneState": f"{node.state}  {node.used_cores:04d}/{entry.cores:04d}  "
                                  f"{node.used_memory_mb}/{entry.memory_mb}  "
                                  f"{node.used_disk_gb}/{node.disk_gb}  "
                                  f"{entry.ratio_text('cpu')}  "
                                  f"{entry.ratio_text('memory')}",
                     "regionName": zone.region})
    return rows



@registry.action("DescribeAccountAttributes", params=("AttributeName",))
def describe_account_attributes(call):
    attributes = call.services.compute.account_attributes()
    wanted = call.params.get_list("AttributeName")
    for name in wanted:
        if name not in attributes:
            raise InvalidParameterValue(f"Value ({name}) for parameter attributeName is "
                                        f"invalid. Valid values: {', '.join(attributes)}")
    names = wanted or list(attributes)
    return {"accountAttributeSet": [{
        "attributeName": name,
        "attributeValueSet": [{"attributeValue": value} for value in attributes[name]],
    } for name in names]}
