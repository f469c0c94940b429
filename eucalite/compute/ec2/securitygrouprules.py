"""EC2 security-group rule actions: AuthorizeSecurityGroupIngress/Egress,
RevokeSecurityGroupIngress/Egress, DescribeSecurityGroupRules, ModifySecurityGroupRules and
UpdateSecurityGroupRuleDescriptionsIngress/Egress.

Rules come as ``IpPermissions.N`` (``IpProtocol``, ``FromPort``, ``ToPort``,
``IpRanges.N.CidrIp``, ``Groups.N.GroupId``/``GroupName``/``UserId``, each with a
``Description``) or, for ingress, as the legacy flat parameters: ``IpProtocol``/``FromPort``/
``ToPort``/``CidrIp`` (one CIDR rule), or ``SourceSecurityGroupName`` (+
``SourceSecurityGroupOwnerId`` for another account's group), which grants that group all of
TCP, UDP and ICMP, as EC2-Classic did. The two forms do not mix. Both become
:class:`~eucalite.compute.secrules.Permission` records; what is valid is the service's to say.
"""
from __future__ import annotations

from ... import integers, tags
from ...errors import InvalidParameterCombination, InvalidParameterValue, MissingParameter
from ...paging import Paging
from ...query import QueryParams, Struct
from ..secrules import (ICMP, MAX_PORT, TCP, UDP, Peer, Permission, permission_item,
                        protocol_name)
from . import filters
from .actions import registry
from .tagparams import specified_tags, tag_set

#: The legacy single-rule parameters (AuthorizeSecurityGroupIngress' original form).
FLAT = ("IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId")
_GROUP = ("GroupId", "GroupName")


# --- reading permissions ------------------------------------------------------------------

def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    number = integers.parse(value, signed=True, max_digits=10)
    if number is None:
        raise InvalidParameterValue(f"Value ({value}) for parameter {name} is invalid. "
                                    "Expected an integer.")
    return number


def _no_ipv6(item: Struct, ipv6: str, prefix_lists: str) -> None:
    """Refuse IPv6 ranges and prefix lists, which this cloud's network does not have."""
    if item.structs(ipv6):
        raise InvalidParameterValue(f"{item.name}.{ipv6}: this cloud has no IPv6 network; "
                                    "use IPv4 CIDRs (IpRanges).")
    if item.structs(prefix_lists):
        raise InvalidParameterValue(f"{item.name}.{prefix_lists}: this cloud has no prefix "
                                    "lists; use CIDRs (IpRanges) or security groups.")


def _permission(item: Struct) -> Permission:
    """One ``IpPermissions.N`` structure."""
    _no_ipv6(item, "Ipv6Ranges", "PrefixListIds")
    peers = []
    for cidr in item.structs("IpRanges"):
        if not cidr.get("CidrIp"):
            raise MissingParameter(f"The request must contain the parameter {cidr.name}.CidrIp")
        peers.append(Peer(cidr=cidr["CidrIp"], description=cidr.get("Description")))
    for pair in item.structs("Groups"):
        if pair.get("VpcPeeringConnectionId"):
            raise InvalidParameterValue(f"{pair.name}.VpcPeeringConnectionId: this cloud has "
                                        "no VPC peering.")
        if not pair.get("GroupId") and not pair.get("GroupName"):
            raise MissingParameter(f"The request must contain the parameter {pair.name}."
                                   "GroupId or GroupName")
        peers.append(Peer(group_id=pair.get("GroupId"), group_name=pair.get("GroupName"),
                          owner_id=pair.get("UserId"), description=pair.get("Description")))
    return Permission(protocol=item.get("IpProtocol"),
                      from_port=_int(item.get("FromPort"), f"{item.name}.FromPort"),
                      to_port=_int(item.get("ToPort"), f"{item.name}.ToPort"),
                      peers=tuple(peers))


def _flat(params: QueryParams) -> list[Permission]:
    """The legacy flat form: one CIDR rule, or a source group granted TCP, UDP and ICMP."""
    group_name = params.get("SourceSecurityGroupName")
    owner_id = params.get("SourceSecurityGroupOwnerId")
    if group_name or owner_id:
        mixed = [name for name in ("CidrIp", "IpProtocol", "FromPort", "ToPort")
                 if params.get(name) is not None]
        if mixed:
            raise InvalidParameterCombination(f"The parameter {mixed[0]} cannot be used with "
                                              "the parameter SourceSecurityGroupName; give "
                                              "IpPermissions for a protocol or ports.")
        if not group_name:
            raise MissingParameter("The request must contain the parameter "
                                   "SourceSecurityGroupName")
        peer = Peer(group_name=group_name, owner_id=owner_id)
        return [Permission(TCP, 0, MAX_PORT, (peer,)), Permission(UDP, 0, MAX_PORT, (peer,)),
                Permission(ICMP, -1, -1, (peer,))]
    cidr = params.get("CidrIp")
    return [Permission(protocol=params.get("IpProtocol"),
                       from_port=_int(params.get("FromPort"), "FromPort"),
                       to_port=_int(params.get("ToPort"), "ToPort"),
                       peers=(Peer(cidr=cidr),) if cidr else ())]


def permissions(params: QueryParams, egress: bool) -> list[Permission]:
    """The permissions of a request: ``IpPermissions.N``, or (ingress only) the flat
    parameters; not both. Empty when neither is given."""
    structured = params.get_struct_list("IpPermissions")
    flat = [name for name in FLAT if params.get(name) is not None]
    if structured and flat:
        raise InvalidParameterCombination(f"The parameter {flat[0]} cannot be used with the "
                                          "parameter IpPermissions")
    if flat and egress:
        raise InvalidParameterValue(f"The parameter {flat[0]} is not supported for outbound "
                                    "rules: give them as IpPermissions.")
    if structured:
        return [_permission(item) for item in structured]
    return _flat(params) if flat else []


def _group(call, egress: bool):
    """The caller's group the request names: by GroupId, or (ingress) by GroupName."""
    params = call.params
    group_id = params.get("GroupId")
    if egress and not group_id:
        raise MissingParameter("The request must contain the parameter GroupId")
    return call.services.compute.security_group(call.principal, group_id=group_id,
                                                group_name=params.get("GroupName"))


# --- rendering ------------------------------------------------------------------------------

def _ports(rule) -> tuple[int, int]:
    """A rule's ports as SecurityGroupRule items show them: -1 where the protocol has none."""
    if rule.from_port is None:
        return -1, -1
    return rule.from_port, rule.to_port


def _render(rule, owner_id: str, tag_map: dict[str, str], region: str) -> dict:
    """A SecurityGroupRule item (Authorize's and DescribeSecurityGroupRules')."""
    from_port, to_port = _ports(rule)
    return {
        "securityGroupRuleId": rule.id,
        "groupId": rule.group_id,
        "groupOwnerId": owner_id,
        "isEgress": rule.egress,
        "ipProtocol": protocol_name(rule.protocol),
        "fromPort": from_port,
        "toPort": to_port,
        "cidrIpv4": rule.cidr,
        "referencedGroupInfo": ({"groupId": rule.peer_group_id, "userId": rule.peer_owner_id}
                                if rule.peer_group_id else None),
        "description": rule.description,
        "tagSet": tag_set(tag_map),
        "securityGroupRuleArn": f"arn:aws:ec2:{region}:{owner_id}:security-group-rule/"
                                f"{rule.id}",
    }


def _render_revoked(rule) -> dict:
    """A RevokedSecurityGroupRule item."""
    from_port, to_port = _ports(rule)
    return {"securityGroupRuleId": rule.id, "groupId": rule.group_id, "isEgress": rule.egress,
            "ipProtocol": protocol_name(rule.protocol), "fromPort": from_port,
            "toPort": to_port, "cidrIpv4": rule.cidr, "referencedGroupId": rule.peer_group_id,
            "description": rule.description}


def _rule_set(call, rules) -> list[dict]:
    owner = call.principal.account_id
    tag_maps = tags.tags_for(owner, [rule.id for rule in rules])
    region = call.services.compute.regions()[0].name
    return [_render(rule, owner, tag_maps[rule.id], region) for rule in rules]


# --- actions --------------------------------------------------------------------------------

def _authorize(call, egress: bool) -> dict:
    params = call.params
    tag_map = specified_tags(params, "security-group-rule")
    wanted = permissions(params, egress)
    group = _group(call, egress)
    rules = call.services.compute.authorize_security_group(call.principal, group, wanted,
                                                           egress, tag_map=tag_map)
    return {"return": True, "securityGroupRuleSet": _rule_set(call, rules)}


def _revoke(call, egress: bool) -> dict:
    params = call.params
    wanted = permissions(params, egress)
    rule_ids = params.get_list("SecurityGroupRuleId")
    group = _group(call, egress)
    revoked, unknown = call.services.compute.revoke_security_group(
        call.principal, group, wanted, egress=egress, rule_ids=rule_ids)
    return {"return": True,
            "unknownIpPermissionSet": [permission_item(p) for p in unknown] or None,
            "revokedSecurityGroupRuleSet": [_render_revoked(rule) for rule in revoked]}


def _update_descriptions(call, egress: bool) -> dict:
    params = call.params
    wanted = [_permission(item) for item in params.get_struct_list("IpPermissions")]
    descriptions = {}
    for item in params.get_struct_list("SecurityGroupRuleDescription"):
        if not item.get("SecurityGroupRuleId"):
            raise MissingParameter(f"The request must contain the parameter {item.name}."
                                   "SecurityGroupRuleId")
        descriptions[item["SecurityGroupRuleId"]] = item.get("Description")
    group = _group(call, egress=False)
    call.services.compute.update_rule_descriptions(call.principal, group, egress,
                                                   permissions=wanted,
                                                   descriptions=descriptions)
    return {"return": True}


_PERMISSION_PARAMS = _GROUP + ("IpPermissions",)


@registry.action("AuthorizeSecurityGroupIngress",
                 params=_PERMISSION_PARAMS + FLAT + ("TagSpecification",))
def authorize_ingress(call):
    return _authorize(call, egress=False)


@registry.action("AuthorizeSecurityGroupEgress",
                 params=("GroupId", "IpPermissions", "TagSpecification") + FLAT)
def authorize_egress(call):
    return _authorize(call, egress=True)


@registry.action("RevokeSecurityGroupIngress",
                 params=_PERMISSION_PARAMS + FLAT + ("SecurityGroupRuleId",))
def revoke_ingress(call):
    return _revoke(call, egress=False)


@registry.action("RevokeSecurityGroupEgress",
                 params=("GroupId", "IpPermissions", "SecurityGroupRuleId") + FLAT)
def revoke_egress(call):
    return _revoke(call, egress=True)


@registry.action("UpdateSecurityGroupRuleDescriptionsIngress",
                 params=_PERMISSION_PARAMS + ("SecurityGroupRuleDescription",))
def update_descriptions_ingress(call):
    return _update_descriptions(call, egress=False)


@registry.action("UpdateSecurityGroupRuleDescriptionsEgress",
                 params=_PERMISSION_PARAMS + ("SecurityGroupRuleDescription",))
def update_descriptions_egress(call):
    return _update_descriptions(call, egress=True)


def _rule_change(item: Struct) -> tuple[str, Permission]:
    """One ``SecurityGroupRule.N`` of ModifySecurityGroupRules: (rule id, the new rule)."""
    rule_id = item.get("SecurityGroupRuleId")
    if not rule_id:
        raise MissingParameter(f"The request must contain the parameter {item.name}."
                               "SecurityGroupRuleId")
    rule = item.struct("SecurityGroupRule")
    if rule.get("CidrIpv6"):
        raise InvalidParameterValue(f"{rule.name}.CidrIpv6: this cloud has no IPv6 network.")
    if rule.get("PrefixListId"):
        raise InvalidParameterValue(f"{rule.name}.PrefixListId: this cloud has no prefix "
                                    "lists.")
    peer = Peer(cidr=rule.get("CidrIpv4"), group_id=rule.get("ReferencedGroupId"),
                description=rule.get("Description"))
    return rule_id, Permission(protocol=rule.get("IpProtocol"),
                               from_port=_int(rule.get("FromPort"), f"{rule.name}.FromPort"),
                               to_port=_int(rule.get("ToPort"), f"{rule.name}.ToPort"),
                               peers=(peer,))


@registry.action("ModifySecurityGroupRules", params=("GroupId", "SecurityGroupRule"))
def modify_rules(call):
    params = call.params
    group_id = params.require("GroupId")
    changes = dict(_rule_change(item) for item in params.get_struct_list("SecurityGroupRule"))
    group = call.services.compute.security_group(call.principal, group_id=group_id)
    call.services.compute.modify_security_group_rules(call.principal, group, changes)
    return {"return": True}


PAGING = Paging(minimum=5, maximum=1000)


@registry.action("DescribeSecurityGroupRules",
                 params=("SecurityGroupRuleId", "Filter", "MaxResults", "NextToken"))
def describe_rules(call):
    params = call.params
    request = PAGING.read(params)
    rules = call.services.compute.describe_security_group_rules(
        call.principal, params.get_list("SecurityGroupRuleId"))
    tag_maps = tags.tags_for(call.principal.account_id, [rule.id for rule in rules])
    rules = filters.apply(rules, filters.parse(params), {
        "group-id": lambda rule: rule.group_id,
        "security-group-rule-id": lambda rule: rule.id,
        **filters.tag_getters(lambda rule: tag_maps[rule.id]),
    })
    page, next_token = request.page(rules)
    return {"securityGroupRuleSet": _rule_set(call, page), "nextToken": next_token}
