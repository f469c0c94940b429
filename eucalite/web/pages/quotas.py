"""Quotas: usage against limit, per account and per user (IamService's quota methods, the
ones the API and ``eucalite quota`` use).

Who sees what follows :mod:`eucalite.iam.service_quotas`: the cloud admin every account
(its limits and its users' editable), an account's root its own account (read-only) and
its users (editable), any other user its own usage and limits (read-only). A limit left
blank in the form is cleared.
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ... import accounts
from ...api import services
from ...errors import AwsError
from ...policy.grammar import QUOTA_KEYS
from .. import blueprint
from ..session import act, login_required, principal
from . import add_nav

add_nav("console.quotas", "Quotas")


def _editable(who: accounts.Principal, account: str, user: str | None) -> bool:
    """The cloud admin edits any quota; an account's root its users' (not its own)."""
    if who.is_cloud_admin:
        return True
    return who.is_root and who.account_name == account and user not in (None,
                                                                        accounts.ADMIN_USER)


@blueprint.route("/quotas", endpoint="quotas")
@login_required
def quotas_page():
    who = principal()
    account = request.args.get("account") or who.account_name
    default_user = None if who.is_root or who.is_cloud_admin else who.user_name
    user = request.args.get("user") or default_user
    iam = services().iam
    try:
        lines = iam.quota_report(who, account, user)
        users = iam.quota_users(who, account)
    except AwsError as error:
        return render_template("console/error.html", code=error.code,
                               message=error.message), error.status
    names = [row.name for row in accounts.list_accounts()] if who.is_cloud_admin else []
    return render_template("console/quotas.html", lines=lines, account=account, user=user,
                           users=users, account_names=names,
                           editable=_editable(who, account, user))


@blueprint.route("/quotas/set", methods=["POST"], endpoint="quotas_set")
@login_required
def quotas_set():
    account = request.form.get("account", "")
    user = request.form.get("user") or None
    values: dict[str, int | None] = {}
    for key in QUOTA_KEYS:
        text = request.form.get(key, "").strip()
        values[key] = int(text) if text.isdigit() else None
    act(lambda: services().iam.set_quotas(principal(), account, user, values),
        "Quotas saved.")
    return redirect(url_for("console.quotas", account=account, user=user))
