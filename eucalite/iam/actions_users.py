"""IAM user actions: CreateUser, GetUser, UpdateUser, DeleteUser, ListUsers, TagUser,
UntagUser, ListUserTags."""
from __future__ import annotations

from . import common
from .actions import PAGED, path_prefix, read_tags, registry, member_list, tag_list, user


@registry.action("CreateUser", params=("UserName", "Path", "Tags", "PermissionsBoundary"))
def create_user(call):
    params = call.params
    tags = read_tags(params)
    row = call.services.iam.create_user(call.principal, common.required(params, "UserName"),
                                        common.path(params.get("Path")), tags)
    return {"User": user(row, tags)}


@registry.action("GetUser", params=("UserName",))
def get_user(call):
    row, tags = call.services.iam.get_user(call.principal, call.params.get("UserName"))
    return {"User": user(row, tags)}


@registry.action("UpdateUser", params=("UserName", "NewUserName", "NewPath"))
def update_user(call):
    params = call.params
    call.services.iam.update_user(call.principal, common.required(params, "UserName"),
                                  params.get("NewUserName"), params.get("NewPath"))
    return None


@registry.action("DeleteUser", params=("UserName",))
def delete_user(call):
    call.services.iam.delete_user(call.principal, common.required(call.params, "UserName"))
    return None


@registry.action("ListUsers", params=("PathPrefix",) + PAGED)
def list_users(call):
    page = common.Page(call.params)
    rows = call.services.iam.list_users(call.principal, path_prefix(call.params))
    return page.result("Users", rows, lambda row: row.name, user)


@registry.action("TagUser", params=("UserName", "Tags"))
def tag_user(call):
    params = call.params
    call.services.iam.tag_user(call.principal, common.required(params, "UserName"),
                               read_tags(params))
    return None


@registry.action("UntagUser", params=("UserName", "TagKeys"))
def untag_user(call):
    params = call.params
    call.services.iam.untag_user(call.principal, common.required(params, "UserName"),
                                 member_list(params, "TagKeys"))
    return None


@registry.action("ListUserTags", params=("UserName",) + PAGED)
def list_user_tags(call):
    page = common.Page(call.params)
    tags = call.services.iam.user_tags(call.principal,
                                       common.required(call.params, "UserName"))
    return page.result("Tags", list(tags.items()), lambda pair: pair[0],
                       lambda pair: tag_list(dict([pair]))[0])
