"""ComputeService's instance-profile associations (a mixin): AssociateIamInstanceProfile,
ReplaceIamInstanceProfileAssociation, DisassociateIamInstanceProfile and
DescribeIamInstanceProfileAssociations over the instance's own columns
(``iam_instance_profile_arn``/``_id``), which RunInstances' ``IamInstanceProfile`` sets too.

An instance has at most one association, so its id (``iip-assoc-...``) is derived from the
instance and the profile rather than stored: the same pair always has the same id, and
another profile gives another. A change takes effect at once (the state AWS reports while
it propagates, ``associating``/``disassociating``, is what the changing call answers;
Describe says ``associated``): the metadata service's next read hands out the new role's
credentials (:func:`eucalite.sessions.instance_role`); the old role's stay valid until
they expire, as on AWS.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..accounts import Principal
from ..db import writing
from ..errors.ec2 import IncorrectState, InvalidAssociationIDNotFound
from . import instances, states
from .models import Instance

#: States in which an instance's profile may change (AWS: running or stopped).
_CHANGEABLE = (states.PENDING, states.RUNNING, states.STOPPING, states.STOPPED)


@dataclass(frozen=True)
class ProfileAssociation:
    """One instance's association with an instance profile, as EC2 renders it."""

    association_id: str
    instance_id: str
    arn: str
    profile_id: str
    state: str


def association_id(instance_id: str, profile_id: str) -> str:
    digest = hashlib.sha256(f"{instance_id}/{profile_id}".encode()).hexdigest()
    return f"iip-assoc-{digest[:17]}"


def _association(instance: Instance, state: str) -> ProfileAssociation:
    return ProfileAssociation(association_id(instance.id, instance.iam_instance_profile_id),
                              instance.id, instance.iam_instance_profile_arn,
                              instance.iam_instance_profile_id, state)


class InstanceProfilesMixin:
    """Instance-profile associations, for the EC2 adapter."""

    def associate_instance_profile(self, principal: Principal, instance_id: str,
                                   profile: tuple[str, str]) -> ProfileAssociation:
        """Give *instance_id* the profile *profile* (``("arn"|"name", value)``);
        IncorrectState when it has one already."""
        with writing():
            instance = instances.owned(principal, instance_id)
            _check_changeable(instance)
            if instance.iam_instance_profile_id:
                raise IncorrectState(f"There is an existing association for instance "
                                     f"{instance_id}")
            _set(instance, instances.launch_profile(principal.account_id, profile))
            return _association(instance, "associating")

    def replace_instance_profile_association(self, principal: Principal, association: str,
                                             profile: tuple[str, str]) -> ProfileAssociation:
        with writing():
            instance = _associated(principal, association)
            _check_changeable(instance)
            _set(instance, instances.launch_profile(principal.account_id, profile))
            return _association(instance, "associating")

    def disassociate_instance_profile(self, principal: Principal,
                                      association: str) -> ProfileAssociation:
        with writing():
            instance = _associated(principal, association)
            _check_changeable(instance)
            answer = _association(instance, "disassociating")
            _set(instance, None)
            return answer

    def instance_profile_associations(self, principal: Principal,
                                      association_ids: list[str]) -> list[ProfileAssociation]:
        """The caller's associations (of instances not terminated), in launch order; with
        *association_ids*, those (InvalidAssociationID.NotFound for one that is not)."""
        found = [_association(row, "associated") for row in instances.visible(principal)
                 if row.iam_instance_profile_id and row.state != states.TERMINATED]
        if association_ids:
            known = {item.association_id for item in found}
            missing = [wanted for wanted in association_ids if wanted not in known]
            if missing:
                raise _not_found(missing[0])
            found = [item for item in found if item.association_id in association_ids]
        return found


def _not_found(association: str) -> InvalidAssociationIDNotFound:
    return InvalidAssociationIDNotFound(f"An association with ID {association} does not "
                                        "exist.")


def _associated(principal: Principal, association: str) -> Instance:
    for row in instances.visible(principal):
        if row.iam_instance_profile_id and row.state != states.TERMINATED and \
                association_id(row.id, row.iam_instance_profile_id) == association:
            return row
    raise _not_found(association)


def _check_changeable(instance: Instance) -> None:
    if instance.state not in _CHANGEABLE:
        raise IncorrectState(f"The instance '{instance.id}' is not in a valid state for this "
                             "operation.")


def _set(instance: Instance, profile: tuple[str, str] | None) -> None:
    instance.iam_instance_profile_arn, instance.iam_instance_profile_id = \
        profile if profile is not None else (None, None)
