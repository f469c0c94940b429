"""IAM access key and login profile actions: CreateAccessKey, UpdateAccessKey,
DeleteAccessKey, ListAccessKeys, GetAccessKeyLastUsed; CreateLoginProfile,
GetLoginProfile, UpdateLoginProfile, DeleteLoginProfile."""
from __future__ import annotations

from . import common
from .actions import PAGED, optional_bool, registry


@registry.action("CreateAccessKey", params=("UserName",))
def create_access_key(call):
    key = call.services.iam.create_access_key(call.principal, call.params.get("UserName"))
    return {"AccessKey": {"UserName": key.user.name, "AccessKeyId": key.id,
                          "Status": key.status, "SecretAccessKey": key.secret,
                          "CreateDate": key.created}}


@registry.action("ListAccessKeys", params=("UserName",) + PAGED)
def list_access_keys(call):
    page = common.Page(call.params)
    name, rows = call.services.iam.list_access_keys(call.principal,
                                                    call.params.get("UserName"))
    return page.result("AccessKeyMetadata", rows, lambda key: key.id, lambda key: {
        "UserName": name, "AccessKeyId": key.id, "Status": key.status,
        "CreateDate": key.created})


@registry.action("UpdateAccessKey", params=("UserName", "AccessKeyId", "Status"))
def update_access_key(call):
    params = call.params
    call.services.iam.update_access_key(call.principal, params.get("UserName"),
                                        common.required(params, "AccessKeyId"),
                                        common.required(params, "Status"))
    return None


@registry.action("DeleteAccessKey", params=("UserName", "AccessKeyId"))
def delete_access_key(call):
    params = call.params
    call.services.iam.delete_access_key(call.principal, params.get("UserName"),
                                        common.required(params, "AccessKeyId"))
    return None


@registry.action("GetAccessKeyLastUsed", params=("AccessKeyId",))
def get_access_key_last_used(call):
    key = call.services.iam.access_key_last_used(call.principal,
                                                 common.required(call.params, "AccessKeyId"))
    # AWS answers N/A for a key that has not been used (and no date).
    return {"UserName": key.user.name, "AccessKeyLastUsed": {
        "LastUsedDate": key.last_used, "ServiceName": key.last_used_service or "N/A",
        "Region": key.last_used_region or "N/A"}}


def _profile(user) -> dict:
    return {"LoginProfile": {"UserName": user.name,
                             "CreateDate": user.password_created or user.created,
                             "PasswordResetRequired": user.password_reset_required}}


@registry.action("CreateLoginProfile", params=("UserName", "Password",
                                               "PasswordResetRequired"))
def create_login_profile(call):
    params = call.params
    user = call.services.iam.create_login_profile(
        call.principal, params.get("UserName"), common.required(params, "Password"),
        params.get_bool("PasswordResetRequired"))
    return _profile(user)


@registry.action("GetLoginProfile", params=("UserName",))
def get_login_profile(call):
    return _profile(call.services.iam.get_login_profile(call.principal,
                                                        call.params.get("UserName")))


@registry.action("UpdateLoginProfile", params=("UserName", "Password",
                                               "PasswordResetRequired"))
def update_login_profile(call):
    params = call.params
    call.services.iam.update_login_profile(call.principal, common.required(params, "UserName"),
                                           params.get("Password"),
                                           optional_bool(params, "PasswordResetRequired"))
    return None


@registry.action("DeleteLoginProfile", params=("UserName",))
def delete_login_profile(call):
    call.services.iam.delete_login_profile(call.principal, call.params.get("UserName"))
    return None
