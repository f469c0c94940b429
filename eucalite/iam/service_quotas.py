"""IamService's quota methods (:class:`QuotasApi`, a mixin of
:class:`~eucalite.iam.service.IamService`): Euare's account policies (Put/Get/Delete/
ListAccountPolicy: the inline policies of an account's ``admin`` user, where its quotas
live), quota limits and usage per account and user for the CLI and the console, and the
rule that only the cloud admin may put, change or delete Limit statements on an account's
admin user (the account's quotas; its root may read them).

Who may do what: the cloud admin (the ``eucalyptus`` account) everything, in every account.
An account's root reads its account's quotas and sets its users' (any caller whom
``iam:PutUserPolicy`` on the user allows may); any user reads its own.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from .. import accounts, quotas
from ..accounts import ADMIN_USER, Principal
from ..errors.iam import AccessDenied, NoSuchEntity
from ..policy import document, grammar
from . import policies, policies_entities, users


@dataclass(frozen=True)
class QuotaLine:
    """One quota key of an account or user: its *limit* (None: none set) and *used*."""

    key: str
    unit: str
    limit: int | None
    used: int


def _has_limits(text: str) -> bool:
    policy = document.parse(text, grammar.IAM_INLINE_USER)
    return any(s.effect == document.LIMIT for s in policy.statements)


class QuotasApi:
    """The quota part of IamService (it provides ``_on_user``)."""

    # --- the rule on an account's admin user ----------------------------------------

    def _guard_limits(self, principal: Principal, kind: str, entity: str, name: str,
                      text: str | None = None) -> None:
        """AccessDenied when a caller other than the cloud admin would put (*text*),
        change or delete (*text* None) Limit statements on its account's admin user."""
        if kind != "user" or entity != ADMIN_USER or principal.is_cloud_admin:
            return
        holder = policies_entities.entity(principal.account_id, "user", ADMIN_USER)
        try:
            old = policies.get(holder, name).document
        except NoSuchEntity:
            old = None
        if (text is not None and _has_limits(text)) or (old is not None and _has_limits(old)):
            raise AccessDenied(
                f"User: {principal.arn} is not authorized to change the account's quotas "
                f"(Limit statements on user {ADMIN_USER}): only the cloud administrator may.")

    def _admin_of(self, principal: Principal, account_name: str, action: str,
                  read: bool = False) -> policies.Holder:
        """The admin user of *account_name* as a policy holder, for the cloud admin (and,
        reading (*read*), the account's own root); AccessDenied for anyone else."""
        account = accounts.get_account(account_name)
        if not (principal.is_cloud_admin or (read and principal.is_root
                                             and principal.account_id == account.id)):
            raise AccessDenied(f"User: {principal.arn} is not authorized to perform: "
                               f"iam:{action} on resource: account {account_name}")
        return policies_entities.entity(account.id, "user", ADMIN_USER)

    # --- Euare's account policies ---------------------------------------------------

    def put_account_policy(self, principal: Principal, account_name: str, name: str,
                           text: str) -> None:
        policies.put(self._admin_of(principal, account_name, "PutAccountPolicy"), name, text)

    def get_account_policy(self, principal: Principal, account_name: str, name: str) -> str:
        holder = self._admin_of(principal, account_name, "GetAccountPolicy", read=True)
        return policies.get(holder, name).document

    def delete_account_policy(self, principal: Principal, account_name: str,
                              name: str) -> None:
        policies.delete(self._admin_of(principal, account_name, "DeleteAccountPolicy"), name)

    def account_policy_names(self, principal: Principal, account_name: str) -> list[str]:
        return policies.names(self._admin_of(principal, account_name, "ListAccountPolicies",
                                             read=True))

    # --- limits and usage ------------------------------------------------------------

    def _quota_holder(self, principal: Principal, account_name: str, user_name: str | None,
                      change: bool) -> policies.Holder:
        """The user whose Limit statements are the quotas asked for (the admin user for
        the account's), once the caller may read (or *change*) them."""
        if user_name is None or user_name == ADMIN_USER:
            return self._admin_of(principal, account_name,
                                  "PutAccountPolicy" if change else "GetAccountPolicy",
                                  read=not change)
        account = accounts.get_account(account_name)
        if not principal.is_cloud_admin:
            if account.id != principal.account_id:
                raise AccessDenied(f"User: {principal.arn} is not authorized to perform: "
                                   f"iam:GetUserPolicy on resource: account {account_name}")
            if change or principal.user_name != user_name:
                self._on_user(principal, "PutUserPolicy" if change else "GetUserPolicy",
                              user_name)
        return policies_entities.entity(account.id, "user", user_name)

    def quota_report(self, principal: Principal, account_name: str,
                     user_name: str | None = None) -> list[QuotaLine]:
        """Every quota key of the account (or of one user's own quotas): limit and usage
        (the account's holdings, or what the user created; IAM's keys count the account)."""
        holder = self._quota_holder(principal, account_name, user_name, change=False)
        user_id = None if holder.name == ADMIN_USER else holder.id
        limits = quotas.limits(holder.account_id, user_id)
        used = quotas.usage(holder.account_id, user_id)
        return [QuotaLine(key, unit, limits.get(key), used[key])
                for key, unit in grammar.QUOTA_KEYS.items() if key in used]

    def set_quotas(self, principal: Principal, account_name: str, user_name: str | None,
                   values: dict[str, int | None]) -> None:
        """Set (an int) or clear (None) quota keys in the account's or user's
        ``eucalite-quota`` policy (deleted when it holds none); other policies' Limit
        statements stay as they are."""
        holder = self._quota_holder(principal, account_name, user_name, change=True)
        try:
            limits = self._own_quota(holder)
        except NoSuchEntity:
            limits = {}
        for key, value in values.items():
            if key not in grammar.QUOTA_KEYS:
                raise NoSuchEntity(f"No quota key {key}.")
            if value is None:
                limits.pop(key, None)
            else:
                limits[key] = int(value)
        if not limits:
            try:
                policies.delete(holder, quotas.POLICY_NAME)
            except NoSuchEntity:
                pass
            return
        text = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Limit", "Action": "*", "Resource": "*",
            "Condition": {"NumericLessThanEquals": {k: str(v) for k, v in
                                                    sorted(limits.items())}}}]})
        policies.put(holder, quotas.POLICY_NAME, text)

    def _own_quota(self, holder: policies.Holder) -> dict[str, int]:
        """The limits of the holder's ``eucalite-quota`` policy (NoSuchEntity: none)."""
        policy = document.parse(policies.get(holder, quotas.POLICY_NAME).document,
                                grammar.IAM_INLINE_USER)
        return {c.key: int(c.values[0]) for s in policy.statements
                if s.effect == document.LIMIT for c in s.conditions}

    def quota_users(self, principal: Principal, account_name: str) -> list[str]:
        """The users of *account_name* whose quotas the caller may read."""
        account = accounts.get_account(account_name)
        if principal.is_cloud_admin or (principal.is_root
                                         and principal.account_id == account.id):
            return [user.name for user in users.listed(account.id, "/")]
        if principal.account_id == account.id:
            return [principal.user_name]
        return []
