"""EC2 actions on instance-profile associations: AssociateIamInstanceProfile,
ReplaceIamInstanceProfileAssociation, DisassociateIamInstanceProfile,
DescribeIamInstanceProfileAssociations (filters ``instance-id`` and ``state``, paging)."""
from __future__ import annotations

from ...errors import MissingParameter
from ...paging import Paging
from . import filters
from .actions import registry
from .instances import instance_profile_param

PAGING = Paging(minimum=5, maximum=1000, ids="AssociationId",
                conflict=("associationIds", "maxResults"))


def _render(association) -> dict:
    return {"associationId": association.association_id,
            "instanceId": association.instance_id,
            "iamInstanceProfile": {"arn": association.arn, "id": association.profile_id},
            "state": association.state}


def _profile(params) -> tuple[str, str]:
    given = instance_profile_param(params)
    if given is None:
        raise MissingParameter("The request must contain the parameter IamInstanceProfile")
    return given


@registry.action("AssociateIamInstanceProfile", params=("IamInstanceProfile", "InstanceId"))
def associate_iam_instance_profile(call):
    association = call.services.compute.associate_instance_profile(
        call.principal, call.params.require("InstanceId"), _profile(call.params))
    return {"iamInstanceProfileAssociation": _render(association)}


@registry.action("ReplaceIamInstanceProfileAssociation",
                 params=("IamInstanceProfile", "AssociationId"))
def replace_iam_instance_profile_association(call):
    association = call.services.compute.replace_instance_profile_association(
        call.principal, call.params.require("AssociationId"), _profile(call.params))
    return {"iamInstanceProfileAssociation": _render(association)}


@registry.action("DisassociateIamInstanceProfile", params=("AssociationId",))
def disassociate_iam_instance_profile(call):
    association = call.services.compute.disassociate_instance_profile(
        call.principal, call.params.require("AssociationId"))
    return {"iamInstanceProfileAssociation": _render(association)}


@registry.action("DescribeIamInstanceProfileAssociations",
                 params=("AssociationId", "Filter", "MaxResults", "NextToken"))
def describe_iam_instance_profile_associations(call):
    params = call.params
    paging = PAGING.read(params)
    rows = call.services.compute.instance_profile_associations(
        call.principal, params.get_list("AssociationId"))
    rows = filters.apply(rows, filters.parse(params), {
        "instance-id": lambda row: row.instance_id, "state": lambda row: row.state})
    page, next_token = paging.page(rows, key=lambda row: row.association_id)
    return {"iamInstanceProfileAssociationSet": [_render(row) for row in page],
            "nextToken": next_token}
