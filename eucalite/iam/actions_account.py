"""IAM account actions: CreateAccountAlias, DeleteAccountAlias, ListAccountAliases,
GetAccountSummary."""
from __future__ import annotations

from .. import xmlutil
from . import common
from .actions import PAGED, registry


@registry.action("CreateAccountAlias", params=("AccountAlias",))
def create_account_alias(call):
    call.services.iam.create_account_alias(call.principal,
                                           common.required(call.params, "AccountAlias"))
    return None


@registry.action("DeleteAccountAlias", params=("AccountAlias",))
def delete_account_alias(call):
    call.services.iam.delete_account_alias(call.principal,
                                           common.required(call.params, "AccountAlias"))
    return None


@registry.action("ListAccountAliases", params=PAGED)
def list_account_aliases(call):
    page = common.Page(call.params)
    aliases = call.services.iam.account_aliases(call.principal)
    return page.result("AccountAliases", aliases, lambda alias: alias, lambda alias: alias)


@registry.action("GetAccountSummary")
def get_account_summary(call):
    entries = [{"key": key, "value": value}
               for key, value in call.services.iam.account_summary(call.principal).items()]
    # A map is <entry><key/><value/></entry> items, not the <member> lists elsewhere.
    return {"SummaryMap": xmlutil.serialised(entries, item_tag="entry")}
