"""IAM group actions: CreateGroup, GetGroup, UpdateGroup, DeleteGroup, ListGroups,
AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser."""
from __future__ import annotations

from . import common
from .actions import PAGED, group, path_prefix, registry, user


@registry.action("CreateGroup", params=("GroupName", "Path"))
def create_group(call):
    params = call.params
    row = call.services.iam.create_group(call.principal, common.required(params, "GroupName"),
                                         common.path(params.get("Path")))
    return {"Group": group(row)}


@registry.action("GetGroup", params=("GroupName",) + PAGED)
def get_group(call):
    page = common.Page(call.params)
    row, members = call.services.iam.get_group(call.principal,
                                               common.required(call.params, "GroupName"))
    return {"Group": group(row), **page.result("Users", members, lambda item: item.name,
                                               user)}


@registry.action("UpdateGroup", params=("GroupName", "NewGroupName", "NewPath"))
def update_group(call):
    params = call.params
    call.services.iam.update_group(call.principal, common.required(params, "GroupName"),
                                   params.get("NewGroupName"), params.get("NewPath"))
    return None


@registry.action("DeleteGroup", params=("GroupName",))
def delete_group(call):
    call.services.iam.delete_group(call.principal, common.required(call.params, "GroupName"))
    return None


@registry.action("ListGroups", params=("PathPrefix",) + PAGED)
def list_groups(call):
    page = common.Page(call.params)
    rows = call.services.iam.list_groups(call.principal, path_prefix(call.params))
    return page.result("Groups", rows, lambda row: row.name, group)


@registry.action("AddUserToGroup", params=("GroupName", "UserName"))
def add_user_to_group(call):
    params = call.params
    call.services.iam.add_user_to_group(call.principal, common.required(params, "GroupName"),
                                        common.required(params, "UserName"))
    return None


@registry.action("RemoveUserFromGroup", params=("GroupName", "UserName"))
def remove_user_from_group(call):
    params = call.params
    call.services.iam.remove_user_from_group(
        call.principal, common.required(params, "GroupName"),
        common.required(params, "UserName"))
    return None


@registry.action("ListGroupsForUser", params=("UserName",) + PAGED)
def list_groups_for_user(call):
    page = common.Page(call.params)
    rows = call.services.iam.groups_for_user(call.principal,
                                             common.required(call.params, "UserName"))
    return page.result("Groups", rows, lambda row: row.name, group)
