"""Launch templates: the account's templates with their versions, a form that makes one
(image, instance type, key pair, security groups, user data), setting the default version,
launching from a template, and deleting a template or a version. The same service methods as
CreateLaunchTemplate, DescribeLaunchTemplates, DescribeLaunchTemplateVersions,
ModifyLaunchTemplate, RunInstances with a template, DeleteLaunchTemplate and
DeleteLaunchTemplateVersions (the compute service's launch template methods)."""
from __future__ import annotations

import base64

from flask import redirect, render_template, request, url_for

from ...api import services
from .. import blueprint
from ..session import act, login_required, notify, principal
from . import add_nav

add_nav("console.launchtemplates", "Launch templates")


def _compute():
    return services().compute


def _choices() -> dict:
    """What the create form offers: launchable machine images, instance types, key pairs
    and security groups."""
    who, compute = principal(), _compute()
    return {"images": [image for image in compute.describe_images(who)
                       if image.kind == "machine" and image.state == "available"],
            "types": compute.list_instance_types(),
            "keys": compute.describe_key_pairs(who),
            "groups": compute.describe_security_groups(who)}


@blueprint.route("/launchtemplates", endpoint="launchtemplates")
@login_required
def launchtemplates_page():
    who, compute = principal(), _compute()
    templates = compute.describe_launch_templates(who)
    versions = {template.id: [row for _, row in compute.describe_launch_template_versions(
        who, template_id=template.id)] for template in templates}
    return render_template("console/launchtemplates.html", templates=templates,
                           versions=versions, **_choices())


def _form_data() -> dict:
    """The create form as LaunchTemplateData (empty fields left out)."""
    form = request.form
    data: dict = {}
    for field, key in (("image_id", "ImageId"), ("instance_type", "InstanceType"),
                       ("key_name", "KeyName")):
        if form.get(field, "").strip():
            data[key] = form[field].strip()
    groups = [group for group in form.getlist("security_group_ids") if group]
    if groups:
        data["SecurityGroupIds"] = groups
    if form.get("user_data"):
        data["UserData"] = base64.b64encode(form["user_data"].encode()).decode()
    return data


@blueprint.route("/launchtemplates/create", methods=["POST"])
@login_required
def launchtemplates_create():
    name = request.form.get("name", "").strip()
    act(lambda: _compute().create_launch_template(
        principal(), name, _form_data(),
        description=request.form.get("description", "").strip() or None),
        f"Created launch template {name}.")
    return redirect(url_for("console.launchtemplates"))


@blueprint.route("/launchtemplates/<template_id>/default", methods=["POST"])
@login_required
def launchtemplate_default(template_id: str):
    version = request.form.get("version", "").strip()
    act(lambda: _compute().modify_launch_template(principal(), version,
                                                  template_id=template_id),
        f"Version {version} is now the default of {template_id}.")
    return redirect(url_for("console.launchtemplates"))


@blueprint.route("/launchtemplates/<template_id>/launch", methods=["POST"])
@login_required
def launchtemplate_launch(template_id: str):
    """One instance from the version chosen (the default when none is)."""
    launched: list[str] = []
    version = request.form.get("version", "").strip() or None

    def launch():
        compute, who = _compute(), principal()
        launch_request = compute.launch_template_request(who, template_id=template_id,
                                                         version=version)
        launched.extend(row.id for row in compute.run_instances(who, launch_request))

    if act(launch):
        notify(f"Launched {', '.join(launched)} from {template_id}.")
    return redirect(url_for("console.launchtemplates"))


@blueprint.route("/launchtemplates/<template_id>/delete", methods=["POST"])
@login_required
def launchtemplate_delete(template_id: str):
    act(lambda: _compute().delete_launch_template(principal(), template_id=template_id),
        f"Deleted launch template {request.form.get('name') or template_id}.")
    return redirect(url_for("console.launchtemplates"))


@blueprint.route("/launchtemplates/<template_id>/delete-version", methods=["POST"])
@login_required
def launchtemplate_delete_version(template_id: str):
    version = request.form.get("version", "").strip()

    def delete():
        _, _, failed = _compute().delete_launch_template_versions(
            principal(), [version], template_id=template_id)
        for failure in failed:
            notify(f"{failure.code}: {failure.message}", "error")
        if not failed:
            notify(f"Deleted version {version} of {template_id}.")

    act(delete)
    return redirect(url_for("console.launchtemplates"))
