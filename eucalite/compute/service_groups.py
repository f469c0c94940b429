"""ComputeService's security-group methods (a mixin; the rules of the groups themselves live
in :mod:`eucalite.compute.secgroups`, those of their rules in
:mod:`eucalite.compute.secrules`)."""
from __future__ import annotations

from typing import Iterable

from ..accounts import Principal
from . import secgroups
from .models import SecurityGroup


class SecurityGroupsMixin:
    """Security groups and instance membership, for the EC2 adapter and the console. Needs
    ``self.config`` (``security_group_limit``)."""

    def describe_security_groups(self, principal: Principal, group_ids: Iterable[str] = (),
                                 group_names: Iterable[str] = ()) -> list[SecurityGroup]:
        """The caller's groups by id, or only those with *group_ids* / *group_names*
        (InvalidGroup.NotFound naming any missing one, InvalidGroupId.Malformed for an id
        that cannot be one). Makes the caller's ``default`` group on first use."""
        secgroups.ensure_default(principal.account_id)
        return secgroups.describe(principal.account_id, group_ids, group_names)

    def security_group(self, principal: Principal, group_id: str | None = None,
                       group_name: str | None = None) -> SecurityGroup:
        """One of the caller's groups by id, else by name (InvalidGroup.NotFound;
        MissingParameter when neither is given). Makes the ``default`` group on first use."""
        secgroups.ensure_default(principal.account_id)
        return secgroups.find(principal.account_id, group_id, group_name)

    def create_security_group(self, principal: Principal, name: str, description: str,
                              tags: dict[str, str] | None = None) -> SecurityGroup:
        """CreateSecurityGroup: a new group with no rules, and its tags."""
        return secgroups.create(principal, name, description, tags,
                                limit=int(self.config.get("security_group_limit", 2500)))

    def delete_security_group(self, principal: Principal, group_id: str | None = None,
                              group_name: str | None = None) -> SecurityGroup:
        """DeleteSecurityGroup by id or name: never the default group (CannotDelete), nor
        one in use by a live instance or named by another group's rule
        (InvalidGroup.InUse). Returns the deleted group."""
        return secgroups.delete(principal, group_id, group_name)

    def instance_groups(self, instance_ids: Iterable[str]
                        ) -> dict[str, list[secgroups.GroupRef]]:
        """``{instance id: its groups (id and name), in the order the launch named them}``."""
        return secgroups.instance_groups(instance_ids)
