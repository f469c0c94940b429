"""Which resources each EC2 action touches, as the policy engine sees them, and the check
every EC2 request passes before its handler runs (:func:`authorize`).

:data:`PERMISSIONS` says, per registered action, which request parameters name resources
(:class:`Named`: their ARN kind, ``instance``, ``volume``, ``security-group``...) and which
resources it creates (:class:`New`: ``arn:...:<kind>/*``, with ``aws:RequestTag/<k>`` and
``aws:TagKeys`` from the request's tag specifications); an action with neither (every
Describe*) is authorised on ``*``, as AWS does where it supports no resource-level
permission. Each resource is authorised on its own, with ``ec2:ResourceTag/<k>`` (and
``aws:ResourceTag/<k>``) from its tags: the request passes only if every one is allowed.

A refusal is ``UnauthorizedOperation`` with an encoded authorization message
(:func:`eucalite.access.encode_authorization_message`). The console asks :func:`may`, the
same table through the same gate, before it offers an action.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ... import access, identity, tags
from ...accounts import Principal
from ...errors import AwsError
from ...errors.ec2 import UnauthorizedOperation
from ...policy import arns
from ...query import QueryParams
from .instances import instance_profile_param
from .tagparams import parse_tags


@dataclass(frozen=True)
class Named:
    """Parameter *param* (one value or a list) names existing resources of ARN *kind*;
    kind None: each id's own (CreateTags' ``ResourceId``). Kinds ending ``-name``/``-ip``
    are looked up: a security group by name, a key pair by id, an address by IP."""

    param: str
    kind: str | None


@dataclass(frozen=True)
class New:
    """The action creates a resource of ARN *kind*; its tags come from the request's
    ``TagSpecification`` of resource type *kind* (``Tag.N`` for CreateTags)."""

    kind: str


_INSTANCE = Named("InstanceId", "instance")
_VOLUME = Named("VolumeId", "volume")
_SNAPSHOT = Named("SnapshotId", "snapshot")
_IMAGE = Named("ImageId", "image")
_GROUP = (Named("GroupId", "security-group"), Named("GroupName", "security-group-name"))
_ADDRESS = (Named("AllocationId", "elastic-ip"), Named("PublicIp", "elastic-ip-ip"))
_TEMPLATE = (Named("LaunchTemplateId", "launch-template"),
             Named("LaunchTemplateName", "launch-template-name"))

#: action -> what it touches; () is ``*``. Every registered action has an entry (a test
#: walks the registry), so a new action's resources are named deliberately; one missing
#: here is authorised on ``*`` only.
PERMISSIONS: dict[str, tuple[Named | New, ...]] = {
    # nothing resource-level (AWS supports none for these)
    **{name: () for name in (
        "DescribeAccountAttributes", "DescribeAddresses", "DescribeAddressesAttribute",
        "DescribeAvailabilityZones", "DescribeImageAttribute", "DescribeImages",
        "DescribeInstanceAttribute", "DescribeInstanceStatus", "DescribeInstanceTypes",
        "DescribeInstances", "DescribeKeyPairs", "DescribeRegions",
        "DescribeSecurityGroupRules", "DescribeSecurityGroups", "DescribeSnapshotAttribute",
        "DescribeSnapshots", "DescribeTags", "DescribeVolumeAttribute",
        "DescribeVolumeStatus", "DescribeVolumes", "DescribeVolumesModifications",
        "ModifyInstanceTypeAttribute",
        "DescribeIamInstanceProfileAssociations",
        # an association id names no ARN: AWS authorises these on "*" too
        "ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile")},
    # instances
    "RunInstances": (New("instance"), _IMAGE, Named("SecurityGroupId", "security-group"),
                     Named("SecurityGroup", "security-group-name"),
                     Named("KeyName", "key-pair")),
    **{name: (_INSTANCE,) for name in (
        "TerminateInstances", "StopInstances", "StartInstances", "RebootInstances",
        "GetConsoleOutput", "GetPasswordData", "ReportInstanceStatus",
        "ModifyInstanceAttribute", "ModifyInstanceMetadataOptions",
        "AssociateIamInstanceProfile", "MonitorInstances", "UnmonitorInstances")},
    # images
    "RegisterImage": (New("image"),),
    "CreateImage": (New("image"), _INSTANCE),
    "CopyImage": (New("image"), Named("SourceImageId", "image")),
    **{name: (_IMAGE,) for name in (
        "DeregisterImage", "ModifyImageAttribute", "ResetImageAttribute",
        "EnableImageDeregistrationProtection", "DisableImageDeregistrationProtection")},
    # key pairs
    "CreateKeyPair": (Named("KeyName", "key-pair"),),
    "ImportKeyPair": (Named("KeyName", "key-pair"),),
    "DeleteKeyPair": (Named("KeyName", "key-pair"), Named("KeyPairId", "key-pair-id")),
    # volumes and snapshots
    "CreateVolume": (New("volume"), _SNAPSHOT),
    "DeleteVolume": (_VOLUME,),
    "ModifyVolumeAttribute": (_VOLUME,),
    "ModifyVolume": (_VOLUME,),
    "AttachVolume": (_VOLUME, _INSTANCE),
    "DetachVolume": (_VOLUME, _INSTANCE),
    "CreateSnapshot": (New("snapshot"), _VOLUME),
    **{name: (_SNAPSHOT,) for name in (
        "DeleteSnapshot", "ModifySnapshotAttribute", "ResetSnapshotAttribute")},
    # security groups
    "CreateSecurityGroup": (New("security-group"),),
    **{name: _GROUP for name in (
        "DeleteSecurityGroup", "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
        "RevokeSecurityGroupEgress", "UpdateSecurityGroupRuleDescriptionsIngress",
        "UpdateSecurityGroupRuleDescriptionsEgress", "ModifySecurityGroupRules")},
    # addresses
    "AllocateAddress": (New("elastic-ip"),),
    "AssociateAddress": (*_ADDRESS, _INSTANCE),
    "DisassociateAddress": (Named("PublicIp", "elastic-ip-ip"),),
    "ReleaseAddress": _ADDRESS,
    # launch templates
    "CreateLaunchTemplate": (New("launch-template"),),
    **{name: _TEMPLATE for name in (
        "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "DeleteLaunchTemplate",
        "DeleteLaunchTemplateVersions")},
    "DescribeLaunchTemplates": (),
    "DescribeLaunchTemplateVersions": (),
    "GetLaunchTemplateData": (_INSTANCE,),
    # tags
    "CreateTags": (Named("ResourceId", None),),
    "DeleteTags": (Named("ResourceId", None),),
}


# --- from a request to (ARN, condition keys) pairs -------------------------------------

def _values(params: QueryParams, name: str) -> list[str]:
    value = params.tree.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else params.get_list(name)


def _resolve(services: Any, principal: Principal, kind: str, value: str
             ) -> tuple[str, str, str | None]:
    """(ARN kind, ARN id, id whose tags apply) of *value* named as *kind*. A name that
    finds nothing stays as given: the handler then answers its NotFound, if allowed."""
    compute = services.compute
    try:
        if kind == "security-group-name":
            group = compute.describe_security_groups(principal, (), [value])[0]
            return "security-group", group.id, group.id
        if kind == "key-pair":
            rows = compute.describe_key_pairs(principal, [value])
            return "key-pair", value, rows[0].id if rows else None
        if kind == "key-pair-id":
            row = compute.describe_key_pairs(principal, (), [value])[0]
            return "key-pair", row.name, row.id
        if kind == "elastic-ip-ip":
            row = compute.describe_addresses(principal, [value])[0]
            return "elastic-ip", row.allocation_id or value, row.allocation_id
        if kind == "launch-template-name":
            template = compute.launch_template(principal, name=value)
            return "launch-template", template.id, template.id
    except (AwsError, IndexError):
        base = {"security-group-name": "security-group", "key-pair-id": "key-pair",
                "elastic-ip-ip": "elastic-ip",
                "launch-template-name": "launch-template"}.get(kind, kind)
        return base, value, None
    if kind is None or kind == "*":
        try:
            kind = tags.resource_kind(value).resource_type
        except AwsError:
            return "", value, None          # a malformed id: the handler refuses it
    return kind, value, value


def _arn(services: Any, principal: Principal, kind: str, resource_id: str) -> str:
    # Images may be another account's or the cloud's: AWS's image ARNs carry no account.
    account = "" if kind == "image" else principal.account_id
    return arns.ec2(services.config["region"], account, kind, resource_id)


def _request_tags(params: QueryParams, action: str, kind: str) -> dict[str, str]:
    if action == "CreateTags":
        return parse_tags(params.get_struct_list("Tag"))
    found: dict[str, str] = {}
    for spec in params.get_struct_list("TagSpecification"):
        if spec.get("ResourceType") == kind:
            found.update(parse_tags(spec.structs("Tag"), prefix=f"{spec.name}.Tag"))
    return found


def _request_keys(params: QueryParams, action: str, kind: str) -> dict[str, Any]:
    requested = _request_tags(params, action, kind)
    if action == "DeleteTags":
        keys = [item.get("Key") for item in params.get_struct_list("Tag") if item.get("Key")]
        return {"aws:TagKeys": keys} if keys else {}
    if not requested:
        return {}
    return {"aws:TagKeys": list(requested),
            **{f"aws:RequestTag/{key}": value for key, value in requested.items()}}


def resources(services: Any, principal: Principal, action: str, params: QueryParams
              ) -> list[tuple[str, dict[str, Any]]]:
    """Every (ARN, condition keys) the request touches, as :data:`PERMISSIONS` says;
    ``[("*", {})]`` when it names none."""
    found: list[tuple[str, dict[str, Any]]] = []
    tagged: list[tuple[str, str | None, dict[str, Any]]] = []
    for entry in PERMISSIONS.get(action, ()):
        if isinstance(entry, New):
            keys = _request_keys(params, action, entry.kind)
            found.append((_arn(services, principal, entry.kind, "*"), keys))
            continue
        for value in _values(params, entry.param):
            kind, resource_id, tag_id = _resolve(services, principal, entry.kind or "*", value)
            if not kind:
                continue
            keys = _request_keys(params, action, kind) if action.endswith("Tags") else {}
            tagged.append((_arn(services, principal, kind, resource_id), tag_id, keys))
    if action == "RunInstances":
        for named_kind, value in _from_template(services, principal, params):
            kind, resource_id, tag_id = _resolve(services, principal, named_kind, value)
            tagged.append((_arn(services, principal, kind, resource_id), tag_id, {}))
    on = tags.tags_for(principal.account_id, [t for _, t, _ in tagged if t])
    for arn, tag_id, keys in tagged:
        for key, value in on.get(tag_id, {}).items() if tag_id else ():
            keys = {**keys, f"ec2:ResourceTag/{key}": value, f"aws:ResourceTag/{key}": value}
        found.append((arn, keys))
    return found or [("*", {})]


def _template_launch(services: Any, principal: Principal, params: QueryParams
                     ) -> tuple[str | None, dict[str, Any]]:
    """(the template's id, its version's data) of RunInstances' ``LaunchTemplate``; (None,
    {}) without one, or when it is not found (the handler then answers the error)."""
    given = params.tree.get("LaunchTemplate")
    if not isinstance(given, dict):
        return None, {}
    try:
        template = services.compute.launch_template(
            principal, template_id=given.get("LaunchTemplateId") or None,
            name=given.get("LaunchTemplateName") or None)
        return template.id, services.compute.launch_template_data(
            principal, template_id=template.id, version=given.get("Version"))
    except AwsError:
        return None, {}


def _from_template(services: Any, principal: Principal, params: QueryParams
                   ) -> list[tuple[str, str]]:
    """RunInstances from a launch template touches the template and what its version names
    that the request does not replace (image, key pair, groups): (kind, value) of each, so
    a policy sees the launch the template makes, not only the request's parameters."""
    template_id, data = _template_launch(services, principal, params)
    if template_id is None:
        return []
    named = [("launch-template", template_id)]
    if not params.get("ImageId") and data.get("ImageId"):
        named.append(("image", data["ImageId"]))
    if not params.get("KeyName") and data.get("KeyName"):
        named.append(("key-pair", data["KeyName"]))
    if not (params.get_list("SecurityGroup") or params.get_list("SecurityGroupId")):
        named += [("security-group-name", name) for name in data.get("SecurityGroups") or ()]
        named += [("security-group", group) for group in data.get("SecurityGroupIds") or ()]
    return named


#: Actions that hand an instance a role (``IamInstanceProfile``): as on AWS, the caller
#: must also be allowed ``iam:PassRole`` on the role, or any user who may launch could
#: take any role's credentials from the metadata service.
PASSES_ROLE = ("RunInstances", "AssociateIamInstanceProfile",
               "ReplaceIamInstanceProfileAssociation")


def passed_roles(services: Any, principal: Principal, action: str, params: QueryParams
                 ) -> list[str]:
    """The ARN of the role the request's instance profile (or its launch template's)
    holds ([] when it names none, or one that does not exist: the handler then answers
    InvalidParameterValue)."""
    given = instance_profile_param(params) if action in PASSES_ROLE else None
    if given is None and action == "RunInstances":
        profile = _template_launch(services, principal, params)[1].get("IamInstanceProfile")
        if profile:
            given = ("arn", profile["Arn"]) if profile.get("Arn") else ("name", profile["Name"])
    if given is None:
        return []
    try:
        _, role = identity.instance_profile(principal.account_id, given[1])
    except AwsError:
        return []
    return [identity.role_arn(role)] if role is not None else []


# --- the check ------------------------------------------------------------------------

def _region_keys(services: Any) -> dict[str, str]:
    return {"ec2:Region": services.config["region"], "aws:RequestedRegion":
            services.config["region"]}


def authorize(services: Any, principal: Principal, action: str, params: QueryParams) -> None:
    """UnauthorizedOperation, with an encoded authorization message, unless the gate
    allows ``ec2:<action>`` on every resource the request touches (and ``iam:PassRole`` on
    the role it hands an instance)."""
    name = f"ec2:{action}"
    if access.unrestricted(principal, name):
        return                      # no lookups for whom no policy can restrict
    checks = [(name, arn, keys) for arn, keys in resources(services, principal, action, params)]
    roles = passed_roles(services, principal, action, params)
    checks += [("iam:PassRole", arn, {}) for arn in roles]
    for wanted, arn, keys in checks:
        try:
            access.require(principal, wanted, arn, context={**_region_keys(services), **keys})
        except access.Denied as denied:
            encoded = access.encode_authorization_message(
                denied.decision, principal, wanted, arn, denied.context)
            raise UnauthorizedOperation("You are not authorized to perform this operation. "
                                        f"Encoded authorization failure message: {encoded}"
                                        ) from None


def may(services: Any, principal: Principal, action: str,
        resource_ids: Iterable[str] = ()) -> bool:
    """Would ``ec2:<action>`` on the resources with *resource_ids* (none: the action as
    such) be allowed? For the console, which offers only what the caller may do."""
    if access.unrestricted(principal, f"ec2:{action}"):
        return True
    named = []
    for resource_id in resource_ids:
        kind, arn_id, _ = _resolve(services, principal, "*", resource_id)
        named.append((_arn(services, principal, kind, arn_id), resource_id))
    on = tags.tags_for(principal.account_id, [rid for _, rid in named])
    targets = [(arn, {f"ec2:ResourceTag/{k}": v for k, v in on.get(rid, {}).items()})
               for arn, rid in named] or [("*", {})]
    return all(access.decide(principal, f"ec2:{action}", arn,
                             context={**_region_keys(services), **keys}).allowed
               for arn, keys in targets)
