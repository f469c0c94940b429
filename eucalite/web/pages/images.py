"""Images: those the account owns and those it may launch (DescribeImages' selection), a
detail page with launch permissions (accounts, public/private) and deregistration, and an
import route that takes kernel/ramdisk/root files from the browser and bundles, uploads and
registers them as ``eucalite image import`` does
(:meth:`eucalite.compute.service.ComputeService.import_images`).
"""
from __future__ import annotations

import os
import shutil
import tempfile

from flask import redirect, render_template, request, url_for
from werkzeug.utils import secure_filename

from ...api import services
from ...compute.imageimport import ImageFiles
from ...compute.images import PermissionChange, validate_name
from ...db import db
from ...errors import AwsError
from .. import blueprint
from ..errors import hidden
from ..session import act, login_required, principal
from . import add_nav

add_nav("console.images", "Images")

UPLOAD_FIELDS = ("kernel", "ramdisk", "root")


@blueprint.route("/images", endpoint="images")
@login_required
def images_page():
    who = principal()
    rows = services().compute.describe_images(who)
    return render_template("console/images.html", images=rows,
                           owned=[row for row in rows if row.owner_id == who.account_id],
                           shared=[row for row in rows if row.owner_id != who.account_id])


@blueprint.route("/images/<image_id>")
@login_required
def image(image_id: str):
    who = principal()
    try:
        row = services().compute.image(who, image_id)
    except AwsError as error:
        return hidden(error)
    mine = row.owner_id == who.account_id
    return render_template("console/images_detail.html", image=row, mine=mine,
                           permissions=services().compute.launch_permissions(row) if mine
                           else [],
                           block_devices=row.get_json("block_devices", []) or [],
                           protection=services().compute.deregistration_protection(row))


@blueprint.route("/images/<image_id>/permissions", methods=["POST"])
@login_required
def image_permissions(image_id: str):
    op = request.form.get("op", "")
    account_id = request.form.get("account_id", "").strip()
    change = PermissionChange()
    done = {"add": f"{account_id} may now launch {image_id}.",
            "remove": f"{account_id} may no longer launch {image_id}.",
            "public": f"{image_id} is public.", "private": f"{image_id} is private."}
    if op == "add":
        change.add_users = [account_id]
    elif op == "remove":
        change.remove_users = [account_id]
    elif op == "public":
        change.add_all = True
    elif op == "private":
        change.remove_all = True
    act(lambda: services().compute.modify_launch_permission(principal(), image_id, change),
        done.get(op))
    return redirect(url_for("console.image", image_id=image_id))


@blueprint.route("/images/<image_id>/deregister", methods=["POST"])
@login_required
def image_deregister(image_id: str):
    if act(lambda: services().compute.deregister_image(principal(), image_id),
           f"Deregistered {image_id}."):
        return redirect(url_for("console.images"))
    return redirect(url_for("console.image", image_id=image_id))


def _text(body: str, status: int = 200):
    return body, status, {"Content-Type": "text/plain; charset=utf-8"}


@blueprint.route("/images/import", methods=["POST"])
@login_required
def images_import():
    """Upload route (XHR from a ``data-upload`` form): each file is streamed to a temporary
    directory under the data dir, bundled, uploaded to the ``eucalite-images`` bucket and
    registered as the signed-in user. Answers the new ids as text, or "Code: message"."""
    who = principal()
    compute = services().compute
    uploads = {field: request.files.get(field) for field in UPLOAD_FIELDS}
    uploads = {field: upload for field, upload in uploads.items()
               if upload is not None and upload.filename}
    if "root" not in uploads and not ("kernel" in uploads and "ramdisk" in uploads):
        return _text("MissingParameter: give a kernel and a ramdisk (and optionally a root "
                     "disk), or a root disk image alone (a bootable disk).", 400)
    name = request.form.get("name", "").strip() or None
    if name is not None:
        try:
            validate_name(name)        # before the upload, not after it
        except AwsError as error:
            return _text(f"{error.code}: {error.message}", error.status)
    scratch = os.path.join(compute.config["data_dir"], "tmp")
    os.makedirs(scratch, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="console-import-", dir=scratch)
    try:
        paths = {}
        for field, upload in uploads.items():
            base = secure_filename(upload.filename) or field
            if len(base) < 3:
                base = f"{field}-{base}"
            # one subdirectory per field, so two files of the same name do not collide
            os.makedirs(os.path.join(workdir, field))
            path = os.path.join(workdir, field, base)
            with open(path, "wb") as out:
                shutil.copyfileobj(upload.stream, out, 1024 * 1024)
            if os.path.getsize(path) == 0:
                return _text(f"InvalidParameterValue: the {field} file is empty.", 400)
            paths[field] = path
        db.session.rollback()          # hold no transaction: the import writes in its own
        files = ImageFiles(paths.get("kernel"), paths.get("ramdisk"), paths.get("root"))
        try:
            ids = list(compute.import_images(who, files, name=name).values())
        except AwsError as error:
            status = error.status if 400 <= error.status < 500 else 400
            return _text(f"{error.code}: {error.message}", status)
        except ValueError as error:             # a file the bundler cannot take
            return _text(f"InvalidParameterValue: {error}", 400)
        return _text("Registered " + " ".join(ids) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
