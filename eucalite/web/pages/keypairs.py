"""Key pairs: list, create (the private key is downloaded once and never stored), import an
OpenSSH public key, delete. The same service functions as CreateKeyPair, ImportKeyPair,
DeleteKeyPair and DescribeKeyPairs (the compute service's key pair methods)."""
from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from ...api import services
from ...compute.keypairs import KEY_TYPES
from ...db import db
from ...errors import AwsError
from .. import blueprint
from ..session import act, login_required, notify_error, principal
from . import add_nav, attachment

add_nav("console.keypairs", "Key pairs")


@blueprint.route("/keypairs", endpoint="keypairs")
@login_required
def keypairs_page():
    rows = services().compute.describe_key_pairs(principal())
    return render_template("console/keypairs.html", keypairs=rows, key_types=KEY_TYPES)


@blueprint.route("/keypairs/create", methods=["POST"])
@login_required
def keypairs_create():
    """The new key's private half as a file download: shown this once, never stored."""
    name = request.form.get("name", "").strip()
    key_type = request.form.get("key_type") or "rsa"
    try:
        row, material = services().compute.create_key_pair(principal(), name,
                                                           key_type=key_type)
    except AwsError as error:
        db.session.rollback()
        notify_error(error)
        return redirect(url_for("console.keypairs"))
    return Response(material, mimetype="application/x-pem-file", headers={
        "Content-Disposition": attachment(f"{row.name}.pem"), "Cache-Control": "no-store"})


@blueprint.route("/keypairs/import", methods=["POST"])
@login_required
def keypairs_import():
    name = request.form.get("name", "").strip()
    material = request.form.get("public_key", "").encode("utf-8", "replace")
    act(lambda: services().compute.import_key_pair(principal(), name, material),
        f"Imported key pair {name}.")
    return redirect(url_for("console.keypairs"))


@blueprint.route("/keypairs/delete", methods=["POST"])
@login_required
def keypairs_delete():
    key_pair_id = request.form.get("key_pair_id", "").strip()
    act(lambda: services().compute.delete_key_pair(principal(), key_pair_id=key_pair_id or None),
        f"Deleted key pair {request.form.get('name') or key_pair_id}.")
    return redirect(url_for("console.keypairs"))
