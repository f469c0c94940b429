"""IAM groups in the console: the account's groups (create, delete) and one group's page:
its members (add, remove) and policies (:func:`.iam_policies.holdings`). Calls go to the
IAM service as the signed-in user; only actions the gate allows are offered."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...errors import AwsError
from .. import blueprint
from ..session import act, login_required, principal
from . import add_nav
from .iam_common import entity_arn, iam, may, refused
from .iam_policies import holdings

add_nav("console.iam_groups", "Groups", visible=lambda: may("ListGroups"))


@blueprint.route("/iam/groups", endpoint="iam_groups")
@login_required
def iam_groups_page():
    try:
        rows = iam().list_groups(principal(), "/")
    except AwsError as error:
        return refused(error)
    return render_template("console/iam_groups.html", rows=rows,
                           can_create=may("CreateGroup", entity_arn("group", "*")))


@blueprint.route("/iam/groups/create", methods=["POST"])
@login_required
def iam_group_create():
    name = request.form.get("name", "").strip()
    if act(lambda: iam().create_group(principal(), name, request.form.get("path") or "/"),
           f"Group {name} created."):
        return redirect(url_for("console.iam_group", name=name))
    return redirect(url_for("console.iam_groups"))


@blueprint.route("/iam/groups/<name>/delete", methods=["POST"])
@login_required
def iam_group_delete(name: str):
    if act(lambda: iam().delete_group(principal(), name), f"Group {name} deleted."):
        return redirect(url_for("console.iam_groups"))
    return redirect(url_for("console.iam_group", name=name))


@blueprint.route("/iam/groups/<name>", endpoint="iam_group")
@login_required
def iam_group_page(name: str):
    who, service = principal(), iam()
    try:
        group, members = service.get_group(who, name)
    except AwsError as error:
        return refused(error)
    arn = entity_arn("group", group.name, group.path)
    users = []
    if may("AddUserToGroup", arn):
        try:
            users = [u for u in service.list_users(who, "/")
                     if u.name not in {m.name for m in members}]
        except AwsError:
            users = []
    return render_template("console/iam_group.html", group=group, members=members,
                           users=users, arn=arn,
                           can={action: may(action, arn) for action in (
                               "DeleteGroup", "AddUserToGroup", "RemoveUserFromGroup")},
                           **holdings("group", group.name, group.path))
