"""IamService: the IAM role's one entry point, for the Query adapter (and later the
console). Every method takes the calling :class:`~eucalite.accounts.Principal`, acts in the
caller's own account, and checks who may call first (:func:`.common.authorize`, the one
gate: the account's root may do anything in it, any other caller what its policies allow);
the work
is done by the topic modules (users, groups, keys, logins, account)."""
from __future__ import annotations

from typing import Any

from ..accounts import AccessKey, Group, Principal, User
from . import account, common, groups, keys, logins, users
from .service_policies import PoliciesApi
from .service_quotas import QuotasApi
from .service_roles import RolesApi


class IamService(PoliciesApi, RolesApi, QuotasApi):
    def __init__(self, config: dict[str, Any]):
        self.config = config

    # --- helpers --------------------------------------------------------------------

    def _user_arn(self, principal: Principal, name: str) -> str:
        user = users.find(principal.account_id, name)
        return common.arn(principal.account_id, "user", user.path if user else "/", name)

    def _group_arn(self, principal: Principal, name: str) -> str:
        group = groups.find(principal.account_id, name)
        return common.arn(principal.account_id, "group", group.path if group else "/", name)

    def _on_user(self, principal: Principal, action: str, name: str) -> None:
        """The gate for ``iam:<action>`` on user *name* (its ARN with its path)."""
        common.authorize(principal, action, self._user_arn(principal, name))

    def _on_account(self, principal: Principal, action: str, resource: str = "*") -> None:
        """The gate for ``iam:<action>`` on *resource* (an entity's ARN, or ``*``)."""
        common.authorize(principal, action, resource)

    def target(self, principal: Principal, user_name: str | None) -> str:
        """The user an action names, or the caller when it names none (AWS's rule)."""
        return principal.user_name if user_name is None else common.user_name(user_name)

    # --- users ----------------------------------------------------------------------

    def create_user(self, principal: Principal, name: str, path: str,
                    tags: dict[str, str]) -> User:
        common.user_name(name)
        self._on_user(principal, "CreateUser", name)
        return users.create(principal.account_name, name, path, tags)

    def get_user(self, principal: Principal, name: str | None) -> tuple[User, dict]:
        name = self.target(principal, name)
        self._on_user(principal, "GetUser", name)
        user = users.get(principal.account_id, name)
        return user, users.tags_of(user)

    def update_user(self, principal: Principal, name: str, new_name: str | None,
                    new_path: str | None) -> None:
        self._on_user(principal, "UpdateUser", common.user_name(name))
        users.update(principal.account_id, name, new_name, new_path)

    def delete_user(self, principal: Principal, name: str) -> None:
        self._on_user(principal, "DeleteUser", common.user_name(name))
        users.delete(principal.account_id, name)

    def list_users(self, principal: Principal, path_prefix: str) -> list[User]:
        self._on_account(principal, "ListUsers")
        return users.listed(principal.account_id, path_prefix)

    def tag_user(self, principal: Principal, name: str, tags: dict[str, str]) -> None:
        self._on_user(principal, "TagUser", common.user_name(name))
        users.tag(principal.account_id, name, tags)

    def untag_user(self, principal: Principal, name: str, keys_: list[str]) -> None:
        self._on_user(principal, "UntagUser", common.user_name(name))
        users.untag(principal.account_id, name, keys_)

    def user_tags(self, principal: Principal, name: str) -> dict[str, str]:
        self._on_user(principal, "ListUserTags", common.user_name(name))
        return users.tags_of(users.get(principal.account_id, name))

    # --- groups ---------------------------------------------------------------------

    def create_group(self, principal: Principal, name: str, path: str) -> Group:
        common.group_name(name)
        self._on_account(principal, "CreateGroup",
                         common.arn(principal.account_id, "group", path, name))
        return groups.create(principal.account_id, name, path)

    def get_group(self, principal: Principal, name: str) -> tuple[Group, list[User]]:
        common.group_name(name)
        self._on_account(principal, "GetGroup", self._group_arn(principal, name))
        group = groups.get(principal.account_id, name)
        return group, groups.members(group)

    def update_group(self, principal: Principal, name: str, new_name: str | None,
                     new_path: str | None) -> None:
        common.group_name(name)
        self._on_account(principal, "UpdateGroup", self._group_arn(principal, name))
        groups.update(principal.account_id, name, new_name, new_path)

    def delete_group(self, principal: Principal, name: str) -> None:
        common.group_name(name)
        self._on_account(principal, "DeleteGroup", self._group_arn(principal, name))
        groups.delete(principal.account_id, name)

    def list_groups(self, principal: Principal, path_prefix: str) -> list[Group]:
        self._on_account(principal, "ListGroups")
        return groups.listed(principal.account_id, path_prefix)

    def add_user_to_group(self, principal: Principal, group: str, user: str) -> None:
        common.group_name(group)
        common.user_name(user)
        self._on_account(principal, "AddUserToGroup", self._group_arn(principal, group))
        groups.add_user(principal.account_id, group, user)

    def remove_user_from_group(self, principal: Principal, group: str, user: str) -> None:
        common.group_name(group)
        common.user_name(user)
        self._on_account(principal, "RemoveUserFromGroup", self._group_arn(principal, group))
        groups.remove_user(principal.account_id, group, user)

    def groups_for_user(self, principal: Principal, user: str) -> list[Group]:
        self._on_user(principal, "ListGroupsForUser", common.user_name(user))
        return groups.of_user(principal.account_id, user)

    # --- access keys ----------------------------------------------------------------

    def create_access_key(self, principal: Principal, user_name: str | None) -> AccessKey:
        name = self.target(principal, user_name)
        self._on_user(principal, "CreateAccessKey", name)
        return keys.create(principal.account_id, principal.account_name, name)

    def list_access_keys(self, principal: Principal, user_name: str | None
                         ) -> tuple[str, list[AccessKey]]:
        name = self.target(principal, user_name)
        self._on_user(principal, "ListAccessKeys", name)
        return name, keys.of_user(principal.account_id, name)

    def update_access_key(self, principal: Principal, user_name: str | None, key_id: str,
                          status: str) -> None:
        name = self.target(principal, user_name)
        self._on_user(principal, "UpdateAccessKey", name)
        keys.set_status(principal.account_id, key_id, name, status)

    def delete_access_key(self, principal: Principal, user_name: str | None,
                          key_id: str) -> None:
        name = self.target(principal, user_name)
        self._on_user(principal, "DeleteAccessKey", name)
        keys.delete(principal.account_id, key_id, name)

    def access_key_last_used(self, principal: Principal, key_id: str) -> AccessKey:
        key = keys.get(principal.account_id, key_id)
        self._on_user(principal, "GetAccessKeyLastUsed", key.user.name)
        return key

    # --- login profiles -------------------------------------------------------------

    def create_login_profile(self, principal: Principal, user_name: str | None,
                             password: str, reset_required: bool) -> User:
        name = self.target(principal, user_name)
        self._on_user(principal, "CreateLoginProfile", name)
        return logins.create(principal.account_id, principal.account_name, name, password,
                             reset_required)

    def get_login_profile(self, principal: Principal, user_name: str | None) -> User:
        name = self.target(principal, user_name)
        self._on_user(principal, "GetLoginProfile", name)
        return logins.get(principal.account_id, name)

    def update_login_profile(self, principal: Principal, user_name: str,
                             password: str | None, reset_required: bool | None) -> None:
        name = common.user_name(user_name)
        self._on_user(principal, "UpdateLoginProfile", name)
        logins.update(principal.account_id, principal.account_name, name, password,
                      reset_required)

    def delete_login_profile(self, principal: Principal, user_name: str | None) -> None:
        name = self.target(principal, user_name)
        self._on_user(principal, "DeleteLoginProfile", name)
        logins.delete(principal.account_id, name)

    def change_password(self, principal: Principal, old: str, new: str,
                        keep_session: str | None = None) -> None:
        """The caller's own password: free while its login profile requires a reset (AWS
        lets that user set one at sign-in), else ``iam:ChangePassword`` on itself."""
        user = logins.get(principal.account_id, principal.user_name)
        if not user.password_reset_required:
            self._on_user(principal, "ChangePassword", principal.user_name)
        logins.change(principal.account_id, principal.account_name, principal.user_name,
                      old, new, keep_session)

    # --- the account ----------------------------------------------------------------

    def create_account_alias(self, principal: Principal, alias: str) -> None:
        self._on_account(principal, "CreateAccountAlias")
        account.create_alias(principal.account_id, alias)

    def delete_account_alias(self, principal: Principal, alias: str) -> None:
        self._on_account(principal, "DeleteAccountAlias")
        account.delete_alias(principal.account_id, alias)

    def account_aliases(self, principal: Principal) -> list[str]:
        self._on_account(principal, "ListAccountAliases")
        return account.aliases(principal.account_id)

    def account_summary(self, principal: Principal) -> dict[str, int]:
        self._on_account(principal, "GetAccountSummary")
        return account.summary(principal.account_id)
