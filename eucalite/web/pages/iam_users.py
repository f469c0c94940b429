"""IAM users in the console: the account's users (create, delete) and one user's page: its
groups (add, remove), access keys (create, with the secret shown once; activate,
deactivate, delete), console password (its login profile: set, change, require a reset at
next sign-in, remove) and policies (:func:`.iam_policies.holdings`).

Every call goes to the IAM service as the signed-in user, which the gate checks; the page
offers only the actions the gate would allow (:func:`.iam_common.may`)."""
from __future__ import annotations

from flask import redirect, render_template, request, session, url_for

from ...db import db
from ...errors import AwsError
from ...errors.iam import ValidationError
from .. import blueprint
from ..session import act, login_required, principal
from . import add_nav
from .iam_common import entity_arn, iam, may, refused
from .iam_policies import holdings

#: Session key: the id of an access key made on the previous request (secret shown once).
NEW_KEY = "iam_new_access_key"

add_nav("console.iam_users", "Users", visible=lambda: may("ListUsers"))


def _back(name: str):
    return redirect(url_for("console.iam_user", name=name))


@blueprint.route("/iam/users", endpoint="iam_users")
@login_required
def iam_users_page():
    try:
        rows = iam().list_users(principal(), "/")
    except AwsError as error:
        return refused(error)
    return render_template("console/iam_users.html", rows=rows,
                           can_create=may("CreateUser", entity_arn("user", "*")))


@blueprint.route("/iam/users/create", methods=["POST"])
@login_required
def iam_user_create():
    name = request.form.get("name", "").strip()
    if act(lambda: iam().create_user(principal(), name, request.form.get("path") or "/", {}),
           f"User {name} created."):
        return _back(name)
    return redirect(url_for("console.iam_users"))


@blueprint.route("/iam/users/<name>/delete", methods=["POST"])
@login_required
def iam_user_delete(name: str):
    who = principal()

    def delete():
        if name == who.user_name:
            raise ValidationError("You cannot delete the user you are signed in as.")
        iam().delete_user(who, name)

    if act(delete, f"User {name} deleted."):
        return redirect(url_for("console.iam_users"))
    return _back(name)


def _listed(call, default=None):
    try:
        return call()
    except AwsError:
        db.session.rollback()
        return default


@blueprint.route("/iam/users/<name>", endpoint="iam_user")
@login_required
def iam_user_page(name: str):
    who, service = principal(), iam()
    try:
        user, tags = service.get_user(who, name)
    except AwsError as error:
        return refused(error)
    arn = entity_arn("user", user.name, user.path)
    groups = _listed(lambda: service.groups_for_user(who, name))
    all_groups = _listed(lambda: service.list_groups(who, "/"), []) \
        if may("AddUserToGroup", "*") or may("ListGroups") else []
    keys = _listed(lambda: service.list_access_keys(who, name)[1])
    new_key = None
    key_id = session.pop(NEW_KEY, None)
    if key_id and keys:
        new_key = next(((k.id, k.secret) for k in keys if k.id == key_id), None)
    return render_template(
        "console/iam_user.html", user=user, tags=sorted(tags.items()), arn=arn,
        groups=groups, other_groups=[g for g in all_groups
                                     if groups is None or g.name not in {x.name for x in groups}],
        keys=keys, new_key=new_key, has_password=user.password_hash is not None,
        can={action: may(action, arn) for action in (
            "DeleteUser", "AddUserToGroup", "RemoveUserFromGroup", "CreateAccessKey",
            "UpdateAccessKey", "DeleteAccessKey", "CreateLoginProfile",
            "UpdateLoginProfile", "DeleteLoginProfile")},
        **holdings("user", user.name, user.path))


@blueprint.route("/iam/users/<name>/groups", methods=["POST"])
@login_required
def iam_user_groups(name: str):
    """Add the user to (or ``op=remove`` from) ``group``; a group's page names the user in
    the form (``user``)."""
    name = request.form.get("user") or name
    group = request.form.get("group", "")
    if request.form.get("op") == "remove":
        act(lambda: iam().remove_user_from_group(principal(), group, name),
            f"{name} removed from {group}.")
    else:
        act(lambda: iam().add_user_to_group(principal(), group, name),
            f"{name} added to {group}.")
    if request.form.get("back") == "group":
        return redirect(url_for("console.iam_group", name=group))
    return _back(name)


@blueprint.route("/iam/users/<name>/keys", methods=["POST"])
@login_required
def iam_user_keys(name: str):
    """``op``: ``create``, ``Active``/``Inactive`` (the key's new status) or ``delete``."""
    form, who = request.form, principal()
    op, key_id = form.get("op", ""), form.get("key_id", "")
    if op == "create":
        def create():
            session[NEW_KEY] = iam().create_access_key(who, name).id
        act(create, "Access key created: copy its secret now, it is shown only once.")
    elif op in ("Active", "Inactive"):
        act(lambda: iam().update_access_key(who, name, key_id, op),
            f"Access key {key_id} is now {op}.")
    else:
        act(lambda: iam().delete_access_key(who, name, key_id), f"Access key {key_id} deleted.")
    return _back(name)


@blueprint.route("/iam/users/<name>/login", methods=["POST"])
@login_required
def iam_user_login(name: str):
    """The user's console password: ``op`` ``set`` (create or change, with the "require
    a reset" choice) or ``delete``."""
    form, who, service = request.form, principal(), iam()
    reset = form.get("reset_required") == "yes"
    if form.get("op") == "delete":
        act(lambda: service.delete_login_profile(who, name),
            f"{name} can no longer sign in to the console.")
        return _back(name)
    password = form.get("password", "")

    def set_password():
        if _listed(lambda: service.get_login_profile(who, name)) is None:
            service.create_login_profile(who, name, password, reset)
        else:
            service.update_login_profile(who, name, password, reset)

    act(set_password, f"Console password of {name} set"
        + (": they must choose a new one at sign-in." if reset else "."))
    return _back(name)
