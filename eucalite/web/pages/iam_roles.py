"""IAM roles and instance profiles in the console: the account's roles (create with a trust
policy written in the JSON editor, delete), one role's page (its trust policy, description,
instance profiles, policies) and the account's instance profiles (create, delete, put a
role in or take it out). Calls go to the IAM service as the signed-in user; a refused
trust policy is shown again in the editor with the service's sentence, nothing saved."""
from __future__ import annotations

import json

from flask import redirect, render_template, request, url_for

from ...db import db
from ...errors import AwsError
from .. import blueprint
from ..session import act, login_required, notify, notify_error, principal
from . import add_nav
from .iam_common import EXAMPLE_TRUST, entity_arn, iam, may, refused
from .iam_policies import holdings

add_nav("console.iam_roles", "Roles", visible=lambda: may("ListRoles"))


def _pretty(text: str) -> str:
    """A stored document indented for reading (as sent when it is not JSON)."""
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


def _roles_page(status: int = 200, **form):
    who, service = principal(), iam()
    try:
        rows = service.list_roles(who, "/")
    except AwsError as error:
        return refused(error)
    try:
        profiles = service.list_instance_profiles(who, "/")
    except AwsError:
        db.session.rollback()
        profiles = None
    return render_template(
        "console/iam_roles.html", rows=rows, profiles=profiles, example=EXAMPLE_TRUST,
        can_create=may("CreateRole", entity_arn("role", "*")),
        can_profile=may("CreateInstanceProfile", entity_arn("instance-profile", "*")),
        can_profile_delete=may("DeleteInstanceProfile",
                               entity_arn("instance-profile", "*")),
        can_profile_role=may("AddRoleToInstanceProfile",
                             entity_arn("instance-profile", "*")),
        form={"name": "", "description": "", "document": "", **form}), status


@blueprint.route("/iam/roles", endpoint="iam_roles")
@login_required
def iam_roles_page():
    return _roles_page()


@blueprint.route("/iam/roles/create", methods=["POST"])
@login_required
def iam_role_create():
    form = request.form
    name, text = form.get("name", "").strip(), form.get("document", "")
    try:
        iam().create_role(principal(), name, form.get("path") or "/", text,
                          form.get("description") or None, None, {})
    except AwsError as error:
        db.session.rollback()
        notify_error(error)
        return _roles_page(400, name=name, description=form.get("description", ""),
                           document=text)
    notify(f"Role {name} created.")
    return redirect(url_for("console.iam_role", name=name))


@blueprint.route("/iam/roles/<name>/delete", methods=["POST"])
@login_required
def iam_role_delete(name: str):
    if act(lambda: iam().delete_role(principal(), name), f"Role {name} deleted."):
        return redirect(url_for("console.iam_roles"))
    return redirect(url_for("console.iam_role", name=name))


def _role_page(name: str, status: int = 200, trust_text: str | None = None):
    who, service = principal(), iam()
    try:
        role, tags = service.get_role(who, name)
    except AwsError as error:
        return refused(error)
    arn = entity_arn("role", role.name, role.path)
    try:
        profiles = service.list_instance_profiles_for_role(who, name)
    except AwsError:
        db.session.rollback()
        profiles = None
    return render_template(
        "console/iam_role.html", role=role, tags=sorted(tags.items()), arn=arn,
        profiles=profiles,
        trust=_pretty(role.trust_policy) if trust_text is None else trust_text,
        can={action: may(action, arn) for action in (
            "DeleteRole", "UpdateAssumeRolePolicy", "UpdateRoleDescription")},
        **holdings("role", role.name, role.path)), status


@blueprint.route("/iam/roles/<name>", endpoint="iam_role")
@login_required
def iam_role_page(name: str):
    return _role_page(name)


@blueprint.route("/iam/roles/<name>/trust", methods=["POST"])
@login_required
def iam_role_trust(name: str):
    text = request.form.get("document", "")
    try:
        iam().update_assume_role_policy(principal(), name, text)
    except AwsError as error:
        db.session.rollback()
        notify_error(error)
        return _role_page(name, 400, trust_text=text)
    notify(f"Trust policy of {name} saved.")
    return redirect(url_for("console.iam_role", name=name))


@blueprint.route("/iam/roles/<name>/description", methods=["POST"])
@login_required
def iam_role_description(name: str):
    act(lambda: iam().update_role_description(principal(), name,
                                              request.form.get("description", "")),
        f"Description of {name} saved.")
    return redirect(url_for("console.iam_role", name=name))


@blueprint.route("/iam/instance-profiles", methods=["POST"])
@login_required
def iam_profiles():
    """``op``: ``create`` (``name``, optional ``role`` put in it), ``delete``, ``add`` or
    ``remove`` (the ``role``); back to the role's page when ``back`` names one."""
    form, who, service = request.form, principal(), iam()
    op, profile, role = form.get("op", ""), form.get("name", "").strip(), form.get("role", "")
    if op == "create":
        def create():
            service.create_instance_profile(who, profile, form.get("path") or "/")
            if role:
                service.add_role_to_instance_profile(who, profile, role)
        act(create, f"Instance profile {profile} created.")
    elif op == "delete":
        act(lambda: service.delete_instance_profile(who, profile),
            f"Instance profile {profile} deleted.")
    elif op == "remove":
        act(lambda: service.remove_role_from_instance_profile(who, profile, role),
            f"Role {role} taken out of {profile}.")
    else:
        act(lambda: service.add_role_to_instance_profile(who, profile, role),
            f"Role {role} put in {profile}.")
    if form.get("back"):
        return redirect(url_for("console.iam_role", name=form["back"]))
    return redirect(url_for("console.iam_roles"))
