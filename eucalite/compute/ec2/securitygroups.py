"""EC2 security group actions: CreateSecurityGroup, DeleteSecurityGroup,
DescribeSecurityGroups (rule changes are :mod:`.securitygrouprules`')."""
from __future__ import annotations

from ... import tags
from ...errors.ec2 import InvalidVpcIDNotFound
from ...paging import Paging
# Pure helpers: rules folded into IpPermissions items, and the filters over those items.
from ..secrules import ip_permissions, permission_filters
from . import filters
from .actions import registry
from .tagparams import specified_tags, tag_set


def _arn(call, group) -> str:
    region = call.services.compute.regions()[0].name
    return f"arn:aws:ec2:{region}:{group.owner_id}:security-group/{group.id}"


@registry.action("CreateSecurityGroup", params=("GroupName", "GroupDescription", "VpcId",
                                                "TagSpecification"))
def create_security_group(call):
    params = call.params
    vpc_id = params.get("VpcId")
    if vpc_id:          # EC2-Classic: this cloud has no VPCs
        raise InvalidVpcIDNotFound(f"The vpc ID '{vpc_id}' does not exist")
    group = call.services.compute.create_security_group(
        call.principal, params.get("GroupName"), params.get("GroupDescription"),
        tags=specified_tags(params, "security-group"))
    tag_map = tags.tags_for(call.principal.account_id, [group.id])[group.id]
    return {"return": True, "groupId": group.id, "tagSet": tag_set(tag_map),
            "securityGroupArn": _arn(call, group)}


@registry.action("DeleteSecurityGroup", params=("GroupId", "GroupName"))
def delete_security_group(call):
    group = call.services.compute.delete_security_group(
        call.principal, group_id=call.params.get("GroupId"),
        group_name=call.params.get("GroupName"))
    return {"return": True, "groupId": group.id}


def _permissions(call, rows) -> dict[str, tuple[list[dict], list[dict]]]:
    """``{group id: (ipPermissions, ipPermissionsEgress)}`` of the groups *rows*."""
    rules = call.services.compute.group_rules([row.id for row in rows])
    return {row.id: (ip_permissions(rule for rule in rules.get(row.id, []) if not rule.egress),
                     ip_permissions(rule for rule in rules.get(row.id, []) if rule.egress))
            for row in rows}


def _getters(permissions, tag_maps) -> dict:
    """DescribeSecurityGroups' filters; *permissions* as :func:`_permissions` gives them."""
    return {
        "description": lambda row: row.description,
        "group-id": lambda row: row.id,
        "group-name": lambda row: row.name,
        "owner-id": lambda row: row.owner_id,
        "vpc-id": lambda row: None,             # EC2-Classic groups belong to no VPC
        **filters.tag_getters(lambda row: tag_maps[row.id]),
        **permission_filters(lambda row: permissions[row.id][0], "ip-permission"),
        **permission_filters(lambda row: permissions[row.id][1], "egress.ip-permission"),
    }


# AWS refuses MaxResults beside either list of groups.
PAGING_IDS = Paging(maximum=1000, ids="GroupId", conflict=("groupIdSet", "maxResults"))
PAGING_NAMES = Paging(maximum=1000, ids="GroupName", conflict=("groupNameSet", "maxResults"))


@registry.action("DescribeSecurityGroups", params=("GroupName", "GroupId", "Filter",
                                                   "MaxResults", "NextToken"))
def describe_security_groups(call):
    params = call.params
    request = PAGING_IDS.read(params)
    PAGING_NAMES.read(params)
    rows = call.services.compute.describe_security_groups(
        call.principal, params.get_list("GroupId"), params.get_list("GroupName"))
    tag_maps = tags.tags_for(call.principal.account_id, [row.id for row in rows])
    wanted = filters.parse(params)
    # Rules are folded for every group only when a filter looks at them.
    by_rules = any("ip-permission." in name for name, _ in wanted)
    permissions = _permissions(call, rows) if by_rules else {}
    rows = filters.apply(rows, wanted, _getters(permissions, tag_maps))
    page, next_token = request.page(rows)
    if not by_rules:
        permissions = _permissions(call, page)
    return {"securityGroupInfo": [{
        "ownerId": row.owner_id,
        "groupId": row.id,
        "groupName": row.name,
        "groupDescription": row.description,
        "ipPermissions": permissions[row.id][0],
        "ipPermissionsEgress": permissions[row.id][1],
        "tagSet": tag_set(tag_maps[row.id]),
        "securityGroupArn": _arn(call, row),
    } for row in page], "nextToken": next_token}
