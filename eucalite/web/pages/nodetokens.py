"""Join tokens, for the cloud admin: a form on its own page (linked from the Nodes page)
makes a one-time token for a new node and shows it once with the command that joins the
node host (what `eucalite node token` prints). Only the token's hash is kept."""
from __future__ import annotations

from flask import render_template, request

from ... import config as config_module
from ...api import services
from ...cluster import joining
from ...db import db
from ...errors import AwsError
from .. import blueprint
from ..session import admin_required, notify_error, principal


def _page(**extra):
    return render_template("console/nodetokens.html", zones=services().config["zones"],
                           default_lifetime=joining.DEFAULT_TOKEN_LIFETIME, **extra)


@blueprint.route("/nodes/token")
@admin_required
def node_token_form():
    return _page()


@blueprint.route("/nodes/token", methods=["POST"])
@admin_required
def node_token_create():
    config = services().config
    try:
        token, row = joining.create_token(
            request.form.get("zone", ""), config["zones"],
            joining.parse_lifetime(request.form.get("expires", "")),
            principal().arn)
    except AwsError as error:
        db.session.rollback()
        notify_error(error)
        return _page(), 400
    url = config_module.public_url(config, use_served=True)
    return _page(token=token, zone=row.zone, expires=row.expires,
                 command=joining.join_command(url, token),
                 hint=joining.unreachable_url_hint(url))
