"""Euare's account-policy actions (Eucalyptus' extension of IAM, for the cloud admin):
PutAccountPolicy, GetAccountPolicy, DeleteAccountPolicy and ListAccountPolicies, with
AccountName, PolicyName and PolicyDocument. An account's policies are its ``admin`` user's
inline policies: where its quotas (``"Effect": "Limit"`` statements) are kept."""
from __future__ import annotations

from . import common
from .actions import PAGED, policy_text, registry


@registry.action("PutAccountPolicy", params=("AccountName", "PolicyName", "PolicyDocument"))
def put_account_policy(call):
    params = call.params
    call.services.iam.put_account_policy(
        call.principal, common.required(params, "AccountName"),
        common.required(params, "PolicyName"), common.required(params, "PolicyDocument"))
    return None


@registry.action("GetAccountPolicy", params=("AccountName", "PolicyName"))
def get_account_policy(call):
    params = call.params
    account, name = common.required(params, "AccountName"), common.required(params,
                                                                            "PolicyName")
    text = call.services.iam.get_account_policy(call.principal, account, name)
    return {"AccountName": account, "PolicyName": name, "PolicyDocument": policy_text(text)}


@registry.action("DeleteAccountPolicy", params=("AccountName", "PolicyName"))
def delete_account_policy(call):
    params = call.params
    call.services.iam.delete_account_policy(call.principal,
                                            common.required(params, "AccountName"),
                                            common.required(params, "PolicyName"))
    return None


@registry.action("ListAccountPolicies", params=("AccountName",) + PAGED)
def list_account_policies(call):
    page = common.Page(call.params)
    names = call.services.iam.account_policy_names(call.principal,
                                                   common.required(call.params, "AccountName"))
    return page.result("PolicyNames", names, lambda name: name, lambda name: name)
