"""RolesApi: IamService's roles and instance profiles (a mixin :class:`.service.IamService`
inherits). Each method validates the names it is given, passes the gate for
``iam:<Action>`` on the entity's ARN (:meth:`IamService._on_account`), then does the work in
:mod:`.roles` or :mod:`.profiles`, in the caller's own account."""
from __future__ import annotations

from ..accounts import Principal
from ..identity import InstanceProfile, Role
from . import common, policies, profiles, roles

ProfileWithRole = tuple[InstanceProfile, "Role | None"]


class RolesApi:
    # --- helpers --------------------------------------------------------------------

    def _role_arn(self, principal: Principal, name: str) -> str:
        common.check(name, policies.ROLE_NAME, "RoleName")
        role = roles.find(principal.account_id, name)
        return common.arn(principal.account_id, "role", role.path if role else "/", name)

    def _profile_arn(self, principal: Principal, name: str) -> str:
        profile = profiles.find(principal.account_id, profiles.name(name))
        return common.arn(principal.account_id, "instance-profile",
                          profile.path if profile else "/", name)

    # --- roles ----------------------------------------------------------------------

    def create_role(self, principal: Principal, name: str, path: str, trust: str,
                    description: str | None, max_session: int | None,
                    tags: dict[str, str]) -> Role:
        common.check(name, policies.ROLE_NAME, "RoleName")
        self._on_account(principal, "CreateRole",
                         common.arn(principal.account_id, "role", path, name))
        return roles.create(principal.account_id, name, path, trust, description,
                            max_session, tags)

    def get_role(self, principal: Principal, name: str) -> tuple[Role, dict[str, str]]:
        self._on_account(principal, "GetRole", self._role_arn(principal, name))
        role = roles.get(principal.account_id, name)
        return role, roles.tags_of(role)

    def update_role(self, principal: Principal, name: str, description: str | None,
                    max_session: int | None) -> None:
        self._on_account(principal, "UpdateRole", self._role_arn(principal, name))
        roles.update(principal.account_id, name, description, max_session)

    def update_role_description(self, principal: Principal, name: str, description: str
                                ) -> tuple[Role, dict[str, str]]:
        self._on_account(principal, "UpdateRoleDescription", self._role_arn(principal, name))
        role = roles.update(principal.account_id, name, description, None)
        return role, roles.tags_of(role)

    def update_assume_role_policy(self, principal: Principal, name: str, trust: str) -> None:
        self._on_account(principal, "UpdateAssumeRolePolicy", self._role_arn(principal, name))
        roles.update_trust(principal.account_id, name, trust)

    def delete_role(self, principal: Principal, name: str) -> None:
        self._on_account(principal, "DeleteRole", self._role_arn(principal, name))
        roles.delete(principal.account_id, name)

    def list_roles(self, principal: Principal, path_prefix: str) -> list[Role]:
        self._on_account(principal, "ListRoles")
        return roles.listed(principal.account_id, path_prefix)

    def tag_role(self, principal: Principal, name: str, tags: dict[str, str]) -> None:
        self._on_account(principal, "TagRole", self._role_arn(principal, name))
        roles.tag(principal.account_id, name, tags)

    def untag_role(self, principal: Principal, name: str, keys_: list[str]) -> None:
        self._on_account(principal, "UntagRole", self._role_arn(principal, name))
        roles.untag(principal.account_id, name, keys_)

    def role_tags(self, principal: Principal, name: str) -> dict[str, str]:
        self._on_account(principal, "ListRoleTags", self._role_arn(principal, name))
        return roles.tags_of(roles.get(principal.account_id, name))

    # --- instance profiles ----------------------------------------------------------

    def create_instance_profile(self, principal: Principal, name: str, path: str
                                ) -> InstanceProfile:
        profiles.name(name)
        self._on_account(principal, "CreateInstanceProfile",
                         common.arn(principal.account_id, "instance-profile", path, name))
        return profiles.create(principal.account_id, name, path)

    def get_instance_profile(self, principal: Principal, name: str) -> ProfileWithRole:
        self._on_account(principal, "GetInstanceProfile", self._profile_arn(principal, name))
        return profiles.get(principal.account_id, name)

    def delete_instance_profile(self, principal: Principal, name: str) -> None:
        self._on_account(principal, "DeleteInstanceProfile",
                         self._profile_arn(principal, name))
        profiles.delete(principal.account_id, name)

    def list_instance_profiles(self, principal: Principal, path_prefix: str
                               ) -> list[ProfileWithRole]:
        self._on_account(principal, "ListInstanceProfiles")
        return profiles.listed(principal.account_id, path_prefix)

    def list_instance_profiles_for_role(self, principal: Principal, role: str
                                        ) -> list[ProfileWithRole]:
        self._on_account(principal, "ListInstanceProfilesForRole",
                         self._role_arn(principal, role))
        return profiles.of_role(principal.account_id, role)

    def add_role_to_instance_profile(self, principal: Principal, profile: str,
                                     role: str) -> None:
        common.check(role, policies.ROLE_NAME, "RoleName")
        self._on_account(principal, "AddRoleToInstanceProfile",
                         self._profile_arn(principal, profile))
        profiles.add_role(principal.account_id, profile, role)

    def remove_role_from_instance_profile(self, principal: Principal, profile: str,
                                          role: str) -> None:
        common.check(role, policies.ROLE_NAME, "RoleName")
        self._on_account(principal, "RemoveRoleFromInstanceProfile",
                         self._profile_arn(principal, profile))
        profiles.remove_role(principal.account_id, profile, role)
