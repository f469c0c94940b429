"""ComputeService's security-group rule methods (a mixin; what a rule is, its checks and
matching live in :mod:`eucalite.compute.secrules`, the groups in
:mod:`eucalite.compute.secgroups`).

Every change the network enforces (authorise, revoke, modify) first asks the cluster whether
its data plane is on (``require_network``: ServiceUnavailable saying what to install when it
is not, rather than storing rules nothing enforces), commits, and then pushes the new plan to
every node (:func:`eucalite.compute.netplan.sync`), so running instances get it at once.
Descriptions change nothing on the network, so updating them needs neither.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from .. import tags
from ..accounts import Principal
from ..db import db, writing
from ..errors import InvalidParameterCombination, MissingParameter
from ..errors.ec2 import (InvalidGroupNotFound, InvalidPermissionDuplicate,
                          InvalidPermissionMalformed, InvalidPermissionNotFound,
                          InvalidSecurityGroupRuleIdNotFound,
                          RulesPerSecurityGroupLimitExceeded)
from . import netplan, secgroups, secrules
from .models import SecurityGroup, SecurityGroupRule
from .secrules import Peer, Permission, RuleSpec


class SecurityGroupRulesMixin:
    """Authorising, revoking, modifying and describing security-group rules. Needs
    ``self.config`` (``security_group_rule_limit``) and ``self.cluster``."""

    # --- changes the network enforces -------------------------------------------------------

    def authorize_security_group(self, principal: Principal, group: SecurityGroup,
                                 permissions: list[Permission], egress: bool,
                                 tag_map: Mapping[str, str] | None = None
                                 ) -> list[SecurityGroupRule]:
        """AuthorizeSecurityGroupIngress/Egress: add one rule per peer of every permission
        to the caller's *group*, each tagged with *tag_map*; all or nothing. A rule the
        group has already (or one given twice) is InvalidPermission.Duplicate, more than
        ``security_group_rule_limit`` rules in that direction
        RulesPerSecurityGroupLimitExceeded. Returns the new rules."""
        self.cluster.require_network()
        if not permissions:
            raise MissingParameter("The request must contain the parameter IpPermissions")
        specs = secrules.expand_all(permissions, self._peer_resolver(principal))
        tag_map = tags.check_new_tags(tag_map)
        limit = int(self.config.get("security_group_rule_limit", 60))
        with writing():
            group = _locked_group(principal, group.id)
            existing = _rules(group.id, egress)
            secrules.check_new(specs, existing)
            if len(existing) + len(specs) > limit:
                raise RulesPerSecurityGroupLimitExceeded(
                    f"The maximum number of rules per security group ({limit} per direction) "
                    "has been reached.")
            rows = [spec.row(group, egress) for spec in specs]
            db.session.add_all(rows)
            db.session.flush()
            tags.tag_new_resources(principal, "security-group-rule",
                                   [row.id for row in rows], tag_map)
        netplan.sync(self.cluster)
        return rows

    def revoke_security_group(self, principal: Principal, group: SecurityGroup,
                              permissions: Iterable[Permission] = (), egress: bool = False,
                              rule_ids: Iterable[str] = ()
                              ) -> tuple[list[SecurityGroupRule], list[Permission]]:
        """RevokeSecurityGroupIngress/Egress, by permissions or by rule ids (not both).

        As in EC2-Classic and a default VPC, a permission that matches no rule is no error:
        it comes back among the unknown ones (each with the peers that matched nothing) and
        the rest is revoked. An unknown rule id is InvalidSecurityGroupRuleId.NotFound and
        revokes nothing. Returns (the revoked rules, detached; the unknown permissions)."""
        self.cluster.require_network()
        permissions, rule_ids = list(permissions), list(dict.fromkeys(rule_ids))
        if permissions and rule_ids:
            raise InvalidParameterCombination("The parameter SecurityGroupRuleIds cannot be "
                                              "used with the parameter IpPermissions")
        if not permissions and not rule_ids:
            raise MissingParameter("The request must contain the parameter IpPermissions or "
                                   "SecurityGroupRuleIds")
        for rule_id in rule_ids:
            secrules.check_rule_id(rule_id)
        resolve = self._peer_resolver(principal)
        wanted = [(permission, secrules.expand(permission, resolve))
                  for permission in permissions]
        with writing():
            group = _locked_group(principal, group.id)
            existing = _rules(group.id, egress)
            if rule_ids:
                revoked, unknown = _by_ids(existing, rule_ids), []
            else:
                revoked, unknown = _matching(existing, wanted)
            for rule in revoked:
                tags.delete_all(rule.id)
                db.session.delete(rule)
        if revoked:
            netplan.sync(self.cluster)
        return revoked, unknown

    def modify_security_group_rules(self, principal: Principal, group: SecurityGroup,
                                    changes: Mapping[str, Permission]
                                    ) -> list[SecurityGroupRule]:
        """ModifySecurityGroupRules: replace each rule named in *changes* (rule id ->
        a permission with exactly one peer, its description included) in place, keeping
        its id, direction and tags; all or nothing. A rule id not of *group* is
        InvalidSecurityGroupRuleId.NotFound; a result equal to another rule of the group
        InvalidPermission.Duplicate. Returns the modified rules."""
        self.cluster.require_network()
        if not changes:
            raise MissingParameter("The request must contain the parameter SecurityGroupRule")
        for rule_id in changes:
            secrules.check_rule_id(rule_id)
        resolve = _keeping_peers(self._peer_resolver(principal), _rules(group.id, None))
        specs: dict[str, RuleSpec] = {}
        for rule_id, permission in changes.items():
            expanded = secrules.expand(permission, resolve)
            if len(expanded) != 1:
                raise InvalidPermissionMalformed(
                    f"Rule {rule_id}: give exactly one CIDR or referenced group.")
            specs[rule_id] = expanded[0][1]
        with writing():
            group = _locked_group(principal, group.id)
            rules = {rule.id: rule for rule in _rules(group.id, None)}
            modified = _by_ids(list(rules.values()), list(specs))
            for rule in modified:
                _assign(rule, specs[rule.id])
            db.session.flush()
            for egress in (False, True):
                _check_distinct([rule for rule in rules.values() if rule.egress == egress])
        netplan.sync(self.cluster)
        return modified

    # --- descriptions -----------------------------------------------------------------------

    def update_rule_descriptions(self, principal: Principal, group: SecurityGroup,
                                 egress: bool, permissions: Iterable[Permission] = (),
                                 descriptions: Mapping[str, str | None] | None = None
                                 ) -> list[SecurityGroupRule]:
        """UpdateSecurityGroupRuleDescriptionsIngress/Egress: set the description of each
        rule a permission's peer matches to that peer's (none given clears it), or of each
        rule id in *descriptions*; not both. A permission matching no rule is
        InvalidPermission.NotFound, an unknown rule id InvalidSecurityGroupRuleId.NotFound;
        nothing changes then. Returns the updated rules."""
        permissions, descriptions = list(permissions), dict(descriptions or {})
        if permissions and descriptions:
            raise InvalidParameterCombination("The parameter SecurityGroupRuleDescriptions "
                                              "cannot be used with the parameter IpPermissions")
        if not permissions and not descriptions:
            raise MissingParameter("The request must contain the parameter IpPermissions or "
                                   "SecurityGroupRuleDescriptions")
        for rule_id, text in descriptions.items():
            secrules.check_rule_id(rule_id)
            secrules.check_description(text)
        resolve = self._peer_resolver(principal)
        wanted = [(permission, secrules.expand(permission, resolve))
                  for permission in permissions]
        with writing():
            group = _locked_group(principal, group.id)
            existing = _rules(group.id, egress)
            if descriptions:
                updated = _by_ids(existing, list(descriptions))
                for rule in updated:
                    rule.description = descriptions[rule.id]
            else:
                updated = _described(existing, wanted)
        return updated

    # --- reading ----------------------------------------------------------------------------

    def describe_security_group_rules(self, principal: Principal,
                                      rule_ids: Iterable[str] = ()) -> list[SecurityGroupRule]:
        """The rules of the caller's groups by id, or only those with *rule_ids* (any
        unknown one is InvalidSecurityGroupRuleId.NotFound). Makes the caller's ``default``
        group on first use, as describing its groups does."""
        rule_ids = [secrules.check_rule_id(rule_id) for rule_id in dict.fromkeys(rule_ids)]
        secgroups.ensure_default(principal.account_id)
        query = (db.select(SecurityGroupRule)
                 .join(SecurityGroup, SecurityGroup.id == SecurityGroupRule.group_id)
                 .where(SecurityGroup.owner_id == principal.account_id)
                 .order_by(SecurityGroupRule.id))
        if rule_ids:
            query = query.where(SecurityGroupRule.id.in_(rule_ids))
        rows = list(db.session.execute(query).scalars())
        if rule_ids:
            _by_ids(rows, rule_ids)             # NotFound for any missing one
        return rows

    def group_rules(self, group_ids: Iterable[str]) -> dict[str, list[SecurityGroupRule]]:
        """``{group id: its rules, both directions, in the order they were added}``; every
        id is a key."""
        wanted = list(dict.fromkeys(group_ids))
        result: dict[str, list[SecurityGroupRule]] = {group_id: [] for group_id in wanted}
        for start in range(0, len(wanted), 500):      # SQLite's bound-parameter limit
            rows = db.session.execute(
                db.select(SecurityGroupRule)
                .where(SecurityGroupRule.group_id.in_(wanted[start:start + 500]))
                .order_by(SecurityGroupRule.created, SecurityGroupRule.id)).scalars()
            for rule in rows:
                result[rule.group_id].append(rule)
        return result

    # --- helpers ----------------------------------------------------------------------------

    def _peer_resolver(self, principal: Principal) -> secrules.PeerResolver:
        """Peer groups: the caller's by id or name (its default group made on first use),
        or another account's (``owner_id``, AWS's UserId) by id or name."""
        def resolve(peer: Peer) -> tuple[str, str]:
            if peer.owner_id in (None, "", principal.account_id):
                group = self.security_group(principal, group_id=peer.group_id,
                                            group_name=peer.group_name)
            else:
                group = secgroups.find(peer.owner_id, peer.group_id, peer.group_name)
            return group.id, group.owner_id
        return resolve


def _keeping_peers(resolve: secrules.PeerResolver,
                   rules: list[SecurityGroupRule]) -> secrules.PeerResolver:
    """*resolve*, except that a group id the group's rules already name keeps the owner it
    has there (ModifySecurityGroupRules' ReferencedGroupId carries no owner, and may be
    another account's group)."""
    owners = {rule.peer_group_id: rule.peer_owner_id for rule in rules if rule.peer_group_id}

    def resolved(peer: Peer) -> tuple[str, str]:
        if peer.group_id in owners and not peer.owner_id:
            return peer.group_id, owners[peer.group_id]
        return resolve(peer)
    return resolved


def _locked_group(principal: Principal, group_id: str) -> SecurityGroup:
    """The caller's group *group_id*, read again inside the write transaction (it may have
    been deleted since the caller looked it up)."""
    group = db.session.get(SecurityGroup, group_id)
    if group is None or group.owner_id != principal.account_id:
        raise InvalidGroupNotFound(f"The security group '{group_id}' does not exist")
    return group


def _rules(group_id: str, egress: bool | None) -> list[SecurityGroupRule]:
    """A group's rules in one direction (both when *egress* is None), oldest first."""
    query = db.select(SecurityGroupRule).where(SecurityGroupRule.group_id == group_id)
    if egress is not None:
        query = query.where(SecurityGroupRule.egress == egress)
    return list(db.session.execute(
        query.order_by(SecurityGroupRule.created, SecurityGroupRule.id)).scalars())


def _by_ids(rules: list[SecurityGroupRule], rule_ids: list[str]) -> list[SecurityGroupRule]:
    """The rules with *rule_ids*, in that order; InvalidSecurityGroupRuleId.NotFound naming
    those *rules* lack."""
    by_id = {rule.id: rule for rule in rules}
    missing = [rule_id for rule_id in rule_ids if rule_id not in by_id]
    if missing:
        raise InvalidSecurityGroupRuleIdNotFound(
            f"The security group rule ID{'s' if len(missing) > 1 else ''} "
            f"'{', '.join(missing)}' do{'' if len(missing) > 1 else 'es'} not exist")
    return [by_id[rule_id] for rule_id in rule_ids]


def _matching(rules: list[SecurityGroupRule],
              wanted: list[tuple[Permission, list[tuple[Peer, RuleSpec]]]]
              ) -> tuple[list[SecurityGroupRule], list[Permission]]:
    """The rules each permission's peers match, and per permission whose peers did not all
    match, that permission with just the peers that matched nothing."""
    by_key = {secrules.rule_key(rule): rule for rule in rules}
    matched: dict[str, SecurityGroupRule] = {}
    unknown = []
    for permission, expanded in wanted:
        missed = []
        for peer, spec in expanded:
            rule = by_key.get(spec.key)
            if rule is None:
                missed.append(peer)
            else:
                matched[rule.id] = rule
        if missed:
            unknown.append(Permission(permission.protocol, permission.from_port,
                                      permission.to_port, tuple(missed)))
    return list(matched.values()), unknown


def _described(rules: list[SecurityGroupRule],
               wanted: list[tuple[Permission, list[tuple[Peer, RuleSpec]]]]
               ) -> list[SecurityGroupRule]:
    """Give each rule a permission's peer matches that peer's description;
    InvalidPermission.NotFound if one matches none."""
    by_key = {secrules.rule_key(rule): rule for rule in rules}
    updated = []
    for _, expanded in wanted:
        for _, spec in expanded:
            rule = by_key.get(spec.key)
            if rule is None:
                raise InvalidPermissionNotFound(f'The specified rule "{secrules.describe(spec)}"'
                                                " does not exist in this security group.")
            rule.description = spec.description
            updated.append(rule)
    return updated


def _assign(rule: SecurityGroupRule, spec: RuleSpec) -> None:
    """Make *rule* hold *spec* (ModifySecurityGroupRules)."""
    rule.protocol, rule.from_port, rule.to_port = spec.protocol, spec.from_port, spec.to_port
    rule.cidr, rule.peer_group_id, rule.peer_owner_id = spec.cidr, spec.group_id, spec.owner_id
    rule.description = spec.description


def _check_distinct(rules: list[SecurityGroupRule]) -> None:
    """InvalidPermission.Duplicate if two of one direction's rules are the same rule."""
    seen: dict[tuple, SecurityGroupRule] = {}
    for rule in rules:
        key = secrules.rule_key(rule)
        if key in seen:
            spec = RuleSpec(rule.protocol, rule.from_port, rule.to_port, rule.cidr,
                            rule.peer_group_id)
            raise InvalidPermissionDuplicate(
                f'the specified rule "{secrules.describe(spec)}" already exists')
        seen[key] = rule
