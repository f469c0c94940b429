"""IAM policies in the console: managed policies (the account's and AWS's: list, create,
versions, default version, delete, where attached), the policies of a user, group or role
(inline: write with the JSON editor, delete; managed: attach, detach), and the editor's
"Validate" (:func:`validate`), which answers with the engine's own sentence.

A document is saved only by the IAM service, which parses it with the same grammar: a
refused one is shown again in the editor with the service's error and nothing is stored.
Buttons appear only for what the gate lets the signed-in user do (:func:`.iam_common.may`).
"""
from __future__ import annotations

from flask import jsonify, redirect, render_template, request, url_for

from ...db import db
from ...errors import AwsError
from ...errors.iam import ValidationError
from ...policy import document
from .. import blueprint
from ..session import act, login_required, notify, notify_error, principal
from . import add_nav
from .iam_common import (ENTITY_KINDS, EXAMPLE, GRAMMARS, entity_arn, iam, may,
                         policy_arn, refused)

add_nav("console.iam_policies", "Policies", visible=lambda: may("ListPolicies"))

SCOPES = ("All", "Local", "AWS")


def _kind(kind: str) -> str:
    if kind not in ENTITY_KINDS:
        raise ValidationError(f"Unknown entity kind {kind!r}: user, group or role.")
    return kind


def entity_page(kind: str, name: str):
    """Where an action on *kind* *name*'s policies returns: its detail page (the
    policies' list for a kind that is none)."""
    if kind not in ENTITY_KINDS:
        return redirect(url_for("console.iam_policies"))
    return redirect(url_for(f"console.iam_{kind}", name=name))


# --- the editor's validation ----------------------------------------------------------

@blueprint.route("/iam/validate", methods=["POST"])
@login_required
def iam_validate():
    """JSON ``{"valid": bool, "code", "message"}``: the policy engine's verdict on the
    posted ``document`` for ``kind`` (user, group, role, managed, trust), the sentence the
    IAM service refuses it with on saving."""
    kind = request.form.get("kind", "")
    if kind not in GRAMMARS:
        return jsonify(valid=False, code="ValidationError",
                       message=f"Unknown policy kind {kind!r}."), 400
    error = document.check(request.form.get("document", ""), GRAMMARS[kind])
    if error is None:
        return jsonify(valid=True, code=None, message="The policy is valid.")
    return jsonify(valid=False, code=error.code, message=error.message)


# --- what a user, group or role holds ----------------------------------------------

def holdings(kind: str, name: str, path: str = "/") -> dict:
    """The template context of *kind* *name*'s policies section: inline names and attached
    policies (each None when the user may not list them), the policies one may attach,
    and which actions to offer."""
    who, service = principal(), iam()
    arn = entity_arn(kind, name, path)
    title = kind.title()

    def listed(call):
        try:
            return call()
        except AwsError:
            db.session.rollback()
            return None

    attachable = []
    can_attach = may(f"Attach{title}Policy", arn)
    if can_attach:
        attachable = listed(lambda: service.list_policies(who, "All", False, "/", None)) or []
    return {
        "kind": kind, "entity": name,
        "inline": listed(lambda: service.entity_policy_names(who, kind, name)),
        "attached": listed(lambda: service.attached_entity_policies(who, kind, name, "/")),
        "attachable": [item.policy for item in attachable],
        "can_put": may(f"Put{title}Policy", arn), "can_delete": may(f"Delete{title}Policy", arn),
        "can_attach": can_attach, "can_detach": may(f"Detach{title}Policy", arn),
        "arn_of": policy_arn,
    }


@blueprint.route("/iam/<kind>/<name>/inline", methods=["GET", "POST"])
@login_required
def iam_inline(kind: str, name: str):
    """The editor for an inline policy of *kind* *name* (``?policy=`` to edit one); POST
    saves it through the service, or shows it again with the service's refusal."""
    who = principal()
    try:
        _kind(kind)
    except AwsError as error:
        return refused(error)
    policy_name = (request.values.get("policy_name") or request.args.get("policy") or "").strip()
    text = ""
    if request.method == "POST":
        text = request.form.get("document", "")
        try:
            iam().put_entity_policy(who, kind, name, policy_name, text)
        except AwsError as error:
            db.session.rollback()
            notify_error(error)
            return render_template("console/iam_inline.html", kind=kind, entity=name,
                                   policy_name=policy_name, document=text, example=EXAMPLE,
                                   error=error), 400
        notify(f"Policy {policy_name} of {kind} {name} saved.")
        return entity_page(kind, name)
    if policy_name:
        try:
            _, stored = iam().get_entity_policy(who, kind, name, policy_name)
            text = stored.document
        except AwsError as error:
            return refused(error)
    return render_template("console/iam_inline.html", kind=kind, entity=name,
                           policy_name=policy_name, document=text, example=EXAMPLE, error=None)


@blueprint.route("/iam/<kind>/<name>/inline/delete", methods=["POST"])
@login_required
def iam_inline_delete(kind: str, name: str):
    policy_name = request.form.get("policy_name", "")
    act(lambda: iam().delete_entity_policy(principal(), _kind(kind), name, policy_name),
        f"Policy {policy_name} of {kind} {name} deleted.")
    return entity_page(kind, name)


@blueprint.route("/iam/<kind>/<name>/attach", methods=["POST"])
@login_required
def iam_attach(kind: str, name: str):
    arn = request.form.get("arn", "")
    if request.form.get("op") == "detach":
        act(lambda: iam().detach_entity_policy(principal(), _kind(kind), name, arn),
            f"{arn} detached from {kind} {name}.")
    else:
        act(lambda: iam().attach_entity_policy(principal(), _kind(kind), name, arn),
            f"{arn} attached to {kind} {name}.")
    back = request.form.get("back")
    if back:
        return redirect(url_for("console.iam_policy", arn=back))
    return entity_page(kind, name)


# --- managed policies ----------------------------------------------------------------

@blueprint.route("/iam/policies", endpoint="iam_policies")
@login_required
def iam_policies_page():
    scope = request.args.get("scope", "All")
    scope = scope if scope in SCOPES else "All"
    try:
        rows = iam().list_policies(principal(), scope, False, "/", None)
    except AwsError as error:
        return refused(error)
    return render_template("console/iam_policies.html", rows=rows, scope=scope,
                           scopes=SCOPES, arn_of=policy_arn, example=EXAMPLE,
                           can_create=may("CreatePolicy"), document="")


@blueprint.route("/iam/policies/create", methods=["POST"])
@login_required
def iam_policy_create():
    form = request.form
    name, text = form.get("name", "").strip(), form.get("document", "")
    try:
        listed = iam().create_policy(principal(), name, form.get("path") or "/",
                                     form.get("description") or None, text, {})
    except AwsError as error:
        db.session.rollback()
        notify_error(error)
        rows = iam().list_policies(principal(), "All", False, "/", None)
        return render_template("console/iam_policies.html", rows=rows, scope="All",
                               scopes=SCOPES, arn_of=policy_arn, example=EXAMPLE,
                               can_create=True, document=text, name=name), 400
    notify(f"Policy {name} created.")
    return redirect(url_for("console.iam_policy", arn=policy_arn(listed.policy)))


@blueprint.route("/iam/policy")
@login_required
def iam_policy():
    """One managed policy (``?arn=``): its versions (``?version=`` shows one), where it is
    attached, and a new version with the editor."""
    who, service = principal(), iam()
    arn = request.args.get("arn", "")
    try:
        listed = service.get_policy(who, arn)
        versions = service.list_policy_versions(who, arn)
    except AwsError as error:
        return refused(error)
    wanted = request.args.get("version") or listed.policy.default_version
    shown = next((v for v, _ in versions if v.version_id == wanted), versions[0][0])
    try:
        entities = service.entities_for_policy(who, arn, None, "/", None)
    except AwsError:
        db.session.rollback()
        entities = None
    aws = listed.policy.account_id is None
    return render_template(
        "console/iam_policy.html", listed=listed, policy=listed.policy, arn=arn,
        versions=versions, shown=shown, entities=entities,
        can_version=not aws and may("CreatePolicyVersion", arn),
        can_default=not aws and may("SetDefaultPolicyVersion", arn),
        can_delete_version=not aws and may("DeletePolicyVersion", arn),
        can_delete=not aws and may("DeletePolicy", arn), document="")


@blueprint.route("/iam/policy/version", methods=["POST"])
@login_required
def iam_policy_version():
    """A new version (``op=create``, from the editor), the default (``op=default``) or
    deleting one (``op=delete``)."""
    form, who = request.form, principal()
    arn, op, version_id = form.get("arn", ""), form.get("op", ""), form.get("version", "")
    if op == "create":
        text = form.get("document", "")
        try:
            version, _ = iam().create_policy_version(who, arn, text,
                                                     form.get("set_default") == "yes")
        except AwsError as error:
            db.session.rollback()
            notify_error(error)
            return render_template("console/iam_version_new.html", arn=arn, document=text,
                                   error=error), 400
        notify(f"Version {version.version_id} created.")
    elif op == "default":
        act(lambda: iam().set_default_policy_version(who, arn, version_id),
            f"{version_id} is now the default version.")
    else:
        act(lambda: iam().delete_policy_version(who, arn, version_id),
            f"Version {version_id} deleted.")
    return redirect(url_for("console.iam_policy", arn=arn))


@blueprint.route("/iam/policy/delete", methods=["POST"])
@login_required
def iam_policy_delete():
    arn = request.form.get("arn", "")
    if act(lambda: iam().delete_policy(principal(), arn), f"Policy {arn} deleted."):
        return redirect(url_for("console.iam_policies"))
    return redirect(url_for("console.iam_policy", arn=arn))
