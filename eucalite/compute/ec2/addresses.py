"""EC2 address actions: AllocateAddress, AssociateAddress, DisassociateAddress,
ReleaseAddress, DescribeAddresses and DescribeAddressesAttribute (EC2-Classic, as Eucalyptus
EDGE: a ``standard`` address is named by its public IP, a ``vpc`` one also has allocation and
association ids)."""
from __future__ import annotations

from ...errors import InvalidParameterValue, MissingParameter
from ...errors.ec2 import UnsupportedOperation
from ...paging import Paging
from ..addresses import PUBLIC_IPV4_POOL, filter_getters
from ..metadata import public_dns_name
from . import filters
from .actions import registry
from .tagparams import specified_tags, tag_set


def _border_group(call) -> str:
    """The network border group of every address: the region, as AWS names it."""
    return call.services.config["region"]


def _check_border_group(call) -> None:
    group = call.params.get("NetworkBorderGroup")
    if group is not None and group != _border_group(call):
        raise InvalidParameterValue(f"Invalid value '{group}' for NetworkBorderGroup: this "
                                    f"cloud has one, {_border_group(call)}.")


@registry.action("AllocateAddress", params=(
    "Domain", "Address", "PublicIpv4Pool", "NetworkBorderGroup", "CustomerOwnedIpv4Pool",
    "TagSpecification"))
def allocate_address(call):
    params = call.params
    _check_border_group(call)
    pool = params.get("PublicIpv4Pool")
    if pool is not None and pool != PUBLIC_IPV4_POOL:
        raise InvalidParameterValue(f"Invalid value '{pool}' for PublicIpv4Pool: this cloud "
                                    f"has one, {PUBLIC_IPV4_POOL}.")
    if params.get("CustomerOwnedIpv4Pool") is not None:
        raise UnsupportedOperation("Customer-owned address pools are not supported.")
    row = call.services.compute.allocate_address(
        call.principal, domain=params.get("Domain") or "standard",
        tags=specified_tags(params, "elastic-ip") or None, public_ip=params.get("Address"))
    return {"publicIp": row.public_ip, "domain": row.domain,
            "allocationId": row.allocation_id, "publicIpv4Pool": PUBLIC_IPV4_POOL,
            "networkBorderGroup": _border_group(call)}


@registry.action("AssociateAddress", params=(
    "PublicIp", "AllocationId", "InstanceId", "AllowReassociation", "NetworkInterfaceId",
    "PrivateIpAddress"))
def associate_address(call):
    params = call.params
    if params.get("NetworkInterfaceId") is not None:
        raise UnsupportedOperation("Network interfaces do not exist on EC2-Classic: name the "
                                   "instance (InstanceId).")
    instance_id = params.get("InstanceId")
    if not instance_id:
        raise MissingParameter("The request must contain the parameter InstanceId")
    private_ip = params.get("PrivateIpAddress")
    if private_ip is not None:
        instance = call.services.compute.instance(call.principal, instance_id)
        if private_ip != instance.private_ip:
            raise InvalidParameterValue(f"The private IP address {private_ip} is not the "
                                        f"address of instance {instance_id}.")
    row = call.services.compute.associate_address(
        call.principal, instance_id, public_ip=params.get("PublicIp"),
        allocation_id=params.get("AllocationId"),
        allow_reassociation=params.get_bool("AllowReassociation"))
    return {"return": True, "associationId": row.association_id}


@registry.action("DisassociateAddress", params=("PublicIp", "AssociationId"))
def disassociate_address(call):
    if not call.params.get("PublicIp") and not call.params.get("AssociationId"):
        raise MissingParameter("Either public IP or association id must be specified")
    call.services.compute.disassociate_address(
        call.principal, public_ip=call.params.get("PublicIp"),
        association_id=call.params.get("AssociationId"))
    return {"return": True}


@registry.action("ReleaseAddress", params=("PublicIp", "AllocationId", "NetworkBorderGroup"))
def release_address(call):
    _check_border_group(call)
    call.services.compute.release_address(call.principal, public_ip=call.params.get("PublicIp"),
                                          allocation_id=call.params.get("AllocationId"))
    return {"return": True}


def _render(call, row, tag_maps: dict, private_ips: dict) -> dict:
    """One address as DescribeAddresses' ``addressesSet`` item."""
    return {
        "publicIp": row.public_ip,
        "allocationId": row.allocation_id,
        "domain": row.domain,
        "instanceId": row.instance_id,
        "associationId": row.association_id,
        "privateIpAddress": private_ips.get(row.instance_id) if row.instance_id else None,
        "tagSet": tag_set(tag_maps.get(row.allocation_id or "", {})),
        "publicIpv4Pool": PUBLIC_IPV4_POOL,
        "networkBorderGroup": _border_group(call),
    }


@registry.action("DescribeAddresses", params=("PublicIp", "AllocationId", "Filter"))
def describe_addresses(call):
    compute = call.services.compute
    wanted = filters.parse(call.params)
    rows = compute.describe_addresses(call.principal, call.params.get_list("PublicIp"),
                                      call.params.get_list("AllocationId"))
    tag_maps = compute.address_tags(call.principal, rows)
    private_ips = compute.address_private_ips(rows)
    if wanted:
        getters = filter_getters(private_ips, _border_group(call))
        getters.update(filters.tag_getters(
            lambda row: tag_maps.get(row.allocation_id or "", {})))
        rows = filters.apply(rows, wanted, getters)
    return {"addressesSet": [_render(call, row, tag_maps, private_ips) for row in rows]}


ATTRIBUTE_PAGING = Paging(minimum=1, maximum=1000)


@registry.action("DescribeAddressesAttribute", params=("AllocationId", "Attribute",
                                                       "MaxResults", "NextToken"))
def describe_addresses_attribute(call):
    """The reverse DNS name of ``vpc`` addresses: the public DNS name the cloud gives
    them (``domain-name``, the one attribute AWS has)."""
    request = ATTRIBUTE_PAGING.read(call.params)
    attribute = call.params.get("Attribute")
    if attribute is not None and attribute != "domain-name":
        raise InvalidParameterValue(f"Value ({attribute}) for parameter attribute is invalid.")
    rows = sorted((row for row in call.services.compute.describe_addresses(
        call.principal, allocation_ids=call.params.get_list("AllocationId"))
        if row.allocation_id), key=lambda row: row.allocation_id)
    page, next_token = request.page(rows, key=lambda row: row.allocation_id)
    return {"addressSet": [{"publicIp": row.public_ip, "allocationId": row.allocation_id,
                            "ptrRecord": public_dns_name(row.public_ip) + "."}
                           for row in page], "nextToken": next_token}
