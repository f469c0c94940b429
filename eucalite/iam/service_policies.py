"""IamService's policy methods (:class:`PoliciesApi`, a mixin of
:class:`~eucalite.iam.service.IamService`): inline policies of users, groups and roles,
managed policies with their versions and attachments, and the policy simulator.

Each method checks the caller first through IamService's gate helpers (``_on_user``,
``_on_account``) with the action's IAM name and the entity's or policy's ARN, then lets
the topic modules (:mod:`.policies`, :mod:`.policies_managed`, :mod:`.policies_attached`,
:mod:`.policies_simulate`) do the work in the caller's account. AWS's managed policies may
be read and attached by anyone allowed to, and changed by no one (AccessDenied).
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..accounts import Principal
from ..errors.iam import AccessDenied
from ..identity import InlinePolicy, ManagedPolicy, PolicyVersion
from ..policy import arns
from . import (policies, policies_attached, policies_details, policies_entities,
               policies_managed, policies_simulate, users)
from .policies_managed import Listed

class PoliciesApi:
    """The policy half of IamService (it provides ``_on_user`` and ``_on_account``)."""

    # --- helpers --------------------------------------------------------------------

    def _on_entity(self, principal: Principal, action: str, kind: str, name: str) -> None:
        """The gate for ``iam:<action>`` on user, group or role *name*."""
        if kind == "user":
            self._on_user(principal, action, name)
        else:
            self._on_account(principal, action,
                             policies_entities.entity_arn(principal.account_id, kind, name))

    def _on_policy(self, principal: Principal, action: str, arn: str) -> ManagedPolicy:
        """The gate for ``iam:<action>`` on policy *arn*, then the policy it names."""
        self._on_account(principal, action, policies_managed.check_arn(arn))
        return policies_managed.get(principal.account_id, arn)

    def _own_policy(self, principal: Principal, action: str, arn: str) -> ManagedPolicy:
        """:meth:`_on_policy` for a change: AWS's own policies are changed by no one."""
        policy = self._on_policy(principal, action, arn)
        if policies_managed.is_aws(policy):
            raise AccessDenied(f"User: {principal.arn} is not authorized to perform: "
                               f"iam:{action} on resource: policy {arn}")
        return policy

    # --- inline policies ------------------------------------------------------------

    def put_entity_policy(self, principal: Principal, kind: str, entity: str, name: str,
                          text: str) -> None:
        """PutUserPolicy, PutGroupPolicy, PutRolePolicy (*kind* ``user``/``group``/``role``)."""
        self._on_entity(principal, f"Put{kind.title()}Policy", kind, entity)
        self._guard_limits(principal, kind, entity, name, text)
        policies.put(policies_entities.entity(principal.account_id, kind, entity), name, text)

    def get_entity_policy(self, principal: Principal, kind: str, entity: str, name: str
                          ) -> tuple[policies.Holder, InlinePolicy]:
        self._on_entity(principal, f"Get{kind.title()}Policy", kind, entity)
        holder = policies_entities.entity(principal.account_id, kind, entity)
        return holder, policies.get(holder, name)

    def delete_entity_policy(self, principal: Principal, kind: str, entity: str,
                             name: str) -> None:
        self._on_entity(principal, f"Delete{kind.title()}Policy", kind, entity)
        self._guard_limits(principal, kind, entity, name)
        policies.delete(policies_entities.entity(principal.account_id, kind, entity), name)

    def entity_policy_names(self, principal: Principal, kind: str, entity: str) -> list[str]:
        self._on_entity(principal, f"List{kind.title()}Policies", kind, entity)
        return policies.names(policies_entities.entity(principal.account_id, kind, entity))

    # --- managed policies -----------------------------------------------------------

    def create_policy(self, principal: Principal, name: str, path: str,
                      description: str | None, text: str, tags: dict[str, str]) -> Listed:
        """A new managed policy of the caller's account. *tags* are checked as IAM checks
        them but not kept (no table holds policy tags yet)."""
        policies.policy_name(name)
        arn = arns.iam(principal.account_id, "policy", name, path)
        self._on_account(principal, "CreatePolicy", arn)
        users.check_tags(tags, {})
        policy = policies_managed.create(principal.account_id, name, path, description, text)
        return Listed(policy, 0)

    def get_policy(self, principal: Principal, arn: str) -> Listed:
        policy = self._on_policy(principal, "GetPolicy", arn)
        return policies_managed.counted(principal.account_id, policy)

    def delete_policy(self, principal: Principal, arn: str) -> None:
        policy = self._own_policy(principal, "DeletePolicy", arn)
        policies_managed.delete(principal.account_id, policy)

    def list_policies(self, principal: Principal, scope: str, only_attached: bool,
                      path_prefix: str, usage: str | None) -> list[Listed]:
        self._on_account(principal, "ListPolicies")
        return policies_managed.listed(principal.account_id, scope, only_attached,
                                       path_prefix, usage)

    # --- versions -------------------------------------------------------------------

    def create_policy_version(self, principal: Principal, arn: str, text: str,
                              set_default: bool) -> tuple[PolicyVersion, bool]:
        """The new version and whether it is the default."""
        policy = self._own_policy(principal, "CreatePolicyVersion", arn)
        version = policies_managed.create_version(policy, text, set_default)
        return version, policy.default_version == version.version_id

    def get_policy_version(self, principal: Principal, arn: str, version_id: str
                           ) -> tuple[PolicyVersion, bool]:
        policy = self._on_policy(principal, "GetPolicyVersion", arn)
        version = policies_managed.get_version(policy, arn, version_id)
        return version, policy.default_version == version.version_id

    def list_policy_versions(self, principal: Principal, arn: str
                             ) -> list[tuple[PolicyVersion, bool]]:
        """Newest first, each with whether it is the default."""
        policy = self._on_policy(principal, "ListPolicyVersions", arn)
        return [(version, policy.default_version == version.version_id)
                for version in policies_managed.versions(policy)]

    def delete_policy_version(self, principal: Principal, arn: str, version_id: str) -> None:
        policy = self._own_policy(principal, "DeletePolicyVersion", arn)
        policies_managed.delete_version(policy, arn, version_id)

    def set_default_policy_version(self, principal: Principal, arn: str,
                                   version_id: str) -> None:
        policy = self._own_policy(principal, "SetDefaultPolicyVersion", arn)
        policies_managed.set_default(policy, arn, version_id)

    # --- attachments ----------------------------------------------------------------

    def attach_entity_policy(self, principal: Principal, kind: str, entity: str,
                             arn: str) -> None:
        """AttachUserPolicy, AttachGroupPolicy, AttachRolePolicy."""
        policies_managed.check_arn(arn)
        self._on_entity(principal, f"Attach{kind.title()}Policy", kind, entity)
        holder = policies_entities.entity(principal.account_id, kind, entity)
        policy = policies_managed.get(principal.account_id, arn, attaching=True)
        policies_attached.attach(holder, policy)

    def detach_entity_policy(self, principal: Principal, kind: str, entity: str,
                             arn: str) -> None:
        policies_managed.check_arn(arn)
        self._on_entity(principal, f"Detach{kind.title()}Policy", kind, entity)
        holder = policies_entities.entity(principal.account_id, kind, entity)
        policies_attached.detach(holder, policies_managed.get(principal.account_id, arn))

    def attached_entity_policies(self, principal: Principal, kind: str, entity: str,
                                 path_prefix: str) -> list[ManagedPolicy]:
        self._on_entity(principal, f"ListAttached{kind.title()}Policies", kind, entity)
        return policies_attached.attached_to(
            policies_entities.entity(principal.account_id, kind, entity), path_prefix)

    def entities_for_policy(self, principal: Principal, arn: str, entity_filter: str | None,
                            path_prefix: str, usage: str | None
                            ) -> list[policies_attached.Entity]:
        policy = self._on_policy(principal, "ListEntitiesForPolicy", arn)
        return policies_attached.entities(principal.account_id, policy, entity_filter,
                                          path_prefix, usage)

    # --- the simulator --------------------------------------------------------------

    def simulate_principal_policy(self, principal: Principal, source_arn: str,
                                  actions: Sequence[str], resources: Sequence[str] = (),
                                  context: Sequence[tuple[str, str, list[str]]] = (),
                                  extra_policies: Sequence[str] = (),
                                  caller_arn: str | None = None
                                  ) -> list[policies_simulate.Result]:
        """May the user, group or role *source_arn* (with its groups' policies for a
        user, and *extra_policies* given as text) take each of *actions* on each of
        *resources* (``*`` when none)? *context* holds (key, type, values) entries;
        *caller_arn* names the user the request's keys come from (default: the source,
        when it is a user)."""
        self._on_account(principal, "SimulatePrincipalPolicy", source_arn)
        sources, caller = policies_simulate.principal_sources(principal, source_arn)
        if caller_arn is not None:
            caller = policies_simulate.caller_named(principal, caller_arn)
        sources += policies_simulate.custom_sources(extra_policies)
        return policies_simulate.simulate(caller, sources, actions, resources,
                                          policies_simulate.context_keys(context))

    def simulate_custom_policy(self, principal: Principal, texts: Sequence[str],
                               actions: Sequence[str], resources: Sequence[str] = (),
                               context: Sequence[tuple[str, str, list[str]]] = (),
                               caller_arn: str | None = None
                               ) -> list[policies_simulate.Result]:
        """:meth:`simulate_principal_policy` for policies given as text only."""
        self._on_account(principal, "SimulateCustomPolicy")
        sources = policies_simulate.custom_sources(texts)
        caller = (policies_simulate.caller_named(principal, caller_arn)
                  if caller_arn is not None else None)
        return policies_simulate.simulate(caller, sources, actions, resources,
                                          policies_simulate.context_keys(context))

    # --- the whole account ----------------------------------------------------------

    def authorization_details(
            self, principal: Principal, filters: Sequence[str],
            cut: Callable[[list], tuple[list, str | None]] = lambda items: (items, None)
    ) -> tuple[list[policies_details.Detail], str | None]:
        """GetAccountAuthorizationDetails: the account's users, groups, roles and managed
        policies (*filters*: which of :data:`.policies_details.FILTERS`, none for all),
        each with what it holds. *cut* takes one page of the listing (and gives the next
        marker), so only that page's details are read."""
        self._on_account(principal, "GetAccountAuthorizationDetails")
        page, marker = cut(policies_details.entries(principal.account_id, list(filters)))
        return [policies_details.detail(entry) for entry in page], marker
