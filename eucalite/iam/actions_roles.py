"""IAM role and instance profile actions: CreateRole, GetRole, UpdateRole,
UpdateRoleDescription, UpdateAssumeRolePolicy, DeleteRole, ListRoles, TagRole, UntagRole,
ListRoleTags; CreateInstanceProfile, GetInstanceProfile, DeleteInstanceProfile,
ListInstanceProfiles, ListInstanceProfilesForRole, AddRoleToInstanceProfile,
RemoveRoleFromInstanceProfile. Handlers call only :class:`.service.IamService`."""
from __future__ import annotations

from urllib.parse import quote

from ..identity import InstanceProfile, Role
from . import common, roles
from .actions import PAGED, member_list, path_prefix, read_tags, registry, tag_list


def role(row: Role, tags: dict[str, str] | None = None, last_used: bool = False) -> dict:
    """AWS's Role: the trust policy URL-encoded, as IAM returns every policy document;
    RoleLastUsed only where GetRole gives it."""
    used = None
    if last_used:
        used = {"LastUsedDate": row.last_used} if row.last_used else {}
    return {"Path": row.path, "RoleName": row.name, "RoleId": row.id,
            "Arn": common.arn(row.account_id, "role", row.path, row.name),
            "CreateDate": row.created,
            "AssumeRolePolicyDocument": quote(row.trust_policy, safe=""),
            "Description": row.description, "MaxSessionDuration": row.max_session_duration,
            "Tags": tag_list(tags) if tags else None, "RoleLastUsed": used}


def profile(item: tuple[InstanceProfile, Role | None]) -> dict:
    row, its_role = item
    return {"Path": row.path, "InstanceProfileName": row.name, "InstanceProfileId": row.id,
            "Arn": common.arn(row.account_id, "instance-profile", row.path, row.name),
            "CreateDate": row.created, "Roles": [role(its_role)] if its_role else []}


def _role_name(call) -> str:
    return common.required(call.params, "RoleName")


def _profile_name(call) -> str:
    return common.required(call.params, "InstanceProfileName")


# --- roles ----------------------------------------------------------------------------

@registry.action("CreateRole", params=("RoleName", "Path", "AssumeRolePolicyDocument",
                                       "Description", "MaxSessionDuration", "Tags"))
def create_role(call):
    params = call.params
    tags = read_tags(params)
    row = call.services.iam.create_role(
        call.principal, _role_name(call), common.path(params.get("Path")),
        common.required(params, "AssumeRolePolicyDocument"),
        roles.description(params.get("Description")),
        roles.session_duration(params.get("MaxSessionDuration")), tags)
    return {"Role": role(row, tags)}


@registry.action("GetRole", params=("RoleName",))
def get_role(call):
    row, tags = call.services.iam.get_role(call.principal, _role_name(call))
    return {"Role": role(row, tags, last_used=True)}


@registry.action("UpdateRole", params=("RoleName", "Description", "MaxSessionDuration"))
def update_role(call):
    params = call.params
    call.services.iam.update_role(call.principal, _role_name(call),
                                  roles.description(params.get("Description")),
                                  roles.session_duration(params.get("MaxSessionDuration")))
    return {}


@registry.action("UpdateRoleDescription", params=("RoleName", "Description"))
def update_role_description(call):
    text = roles.description(common.required(call.params, "Description"))
    row, tags = call.services.iam.update_role_description(call.principal, _role_name(call),
                                                          text)
    return {"Role": role(row, tags)}


@registry.action("UpdateAssumeRolePolicy", params=("RoleName", "PolicyDocument"))
def update_assume_role_policy(call):
    call.services.iam.update_assume_role_policy(
        call.principal, _role_name(call), common.required(call.params, "PolicyDocument"))
    return None


@registry.action("DeleteRole", params=("RoleName",))
def delete_role(call):
    call.services.iam.delete_role(call.principal, _role_name(call))
    return None


@registry.action("ListRoles", params=("PathPrefix",) + PAGED)
def list_roles(call):
    page = common.Page(call.params)
    rows = call.services.iam.list_roles(call.principal, path_prefix(call.params))
    return page.result("Roles", rows, lambda row: row.name, role)


@registry.action("TagRole", params=("RoleName", "Tags"))
def tag_role(call):
    call.services.iam.tag_role(call.principal, _role_name(call), read_tags(call.params))
    return None


@registry.action("UntagRole", params=("RoleName", "TagKeys"))
def untag_role(call):
    call.services.iam.untag_role(call.principal, _role_name(call),
                                 member_list(call.params, "TagKeys"))
    return None


@registry.action("ListRoleTags", params=("RoleName",) + PAGED)
def list_role_tags(call):
    page = common.Page(call.params)
    tags = call.services.iam.role_tags(call.principal, _role_name(call))
    return page.result("Tags", list(tags.items()), lambda pair: pair[0],
                       lambda pair: tag_list(dict([pair]))[0])


# --- instance profiles ----------------------------------------------------------------

@registry.action("CreateInstanceProfile", params=("InstanceProfileName", "Path"))
def create_instance_profile(call):
    row = call.services.iam.create_instance_profile(call.principal, _profile_name(call),
                                                    common.path(call.params.get("Path")))
    return {"InstanceProfile": profile((row, None))}


@registry.action("GetInstanceProfile", params=("InstanceProfileName",))
def get_instance_profile(call):
    item = call.services.iam.get_instance_profile(call.principal, _profile_name(call))
    return {"InstanceProfile": profile(item)}


@registry.action("DeleteInstanceProfile", params=("InstanceProfileName",))
def delete_instance_profile(call):
    call.services.iam.delete_instance_profile(call.principal, _profile_name(call))
    return None


@registry.action("ListInstanceProfiles", params=("PathPrefix",) + PAGED)
def list_instance_profiles(call):
    page = common.Page(call.params)
    items = call.services.iam.list_instance_profiles(call.principal,
                                                     path_prefix(call.params))
    return page.result("InstanceProfiles", items, lambda item: item[0].name, profile)


@registry.action("ListInstanceProfilesForRole", params=("RoleName",) + PAGED)
def list_instance_profiles_for_role(call):
    page = common.Page(call.params)
    items = call.services.iam.list_instance_profiles_for_role(call.principal,
                                                              _role_name(call))
    return page.result("InstanceProfiles", items, lambda item: item[0].name, profile)


@registry.action("AddRoleToInstanceProfile", params=("InstanceProfileName", "RoleName"))
def add_role_to_instance_profile(call):
    call.services.iam.add_role_to_instance_profile(call.principal, _profile_name(call),
                                                   _role_name(call))
    return None


@registry.action("RemoveRoleFromInstanceProfile",
                 params=("InstanceProfileName", "RoleName"))
def remove_role_from_instance_profile(call):
    call.services.iam.remove_role_from_instance_profile(call.principal, _profile_name(call),
                                                        _role_name(call))
    return None
