"""Management console: a browser console over the same services the APIs use.

One blueprint at ``/console`` (:data:`blueprint`), server-rendered HTML from
``eucalite/templates/console/`` with a little JavaScript from ``eucalite/static/`` (no CDN:
the lab may be offline). Pages call the service functions the EC2 and S3 adapters call,
with the signed-in user's Principal, so every rule (ownership, states, limits) is the one
the APIs enforce and every failure shows the same AWS-style code and message.

Modules: :mod:`.session` (sign-in, CSRF, expiry, who is signed in), :mod:`.headers` (the
protective headers on every console response, the Secure cookie over TLS), :mod:`.errors`
(the console's error pages), :mod:`.pages` (one module per resource family registering its
views on the blueprint). Those three plain modules do not know the blueprint: this package
registers their hooks and views on it, so nothing imports the package back.
"""
from __future__ import annotations

from flask import Blueprint, g
from werkzeug.routing import PathConverter

from . import errors, headers, session
from .pages import ADMIN_NAV, NAV, load_all, permitted, shown

URL_PREFIX = "/console"

blueprint = Blueprint("console", __name__, url_prefix=URL_PREFIX,
                      template_folder="../templates", static_folder="../static",
                      static_url_path="/static")

blueprint.after_request(headers.protect)
blueprint.add_app_template_global(headers.csp_nonce)
blueprint.before_request(session.check_csrf)
blueprint.add_app_template_global(session.csrf_token)
blueprint.add_app_template_global(session.csrf_field)
blueprint.add_url_rule("/login", view_func=session.login, methods=["GET", "POST"])
blueprint.add_url_rule("/logout", view_func=session.logout, methods=["POST"])
blueprint.register_error_handler(400, session.bad_request)
blueprint.register_error_handler(Exception, errors.internal_error)


class _AnyPath(PathConverter):
    """A path of any characters: werkzeug's ``path`` stops at a line break, so a path
    holding an encoded CR or LF would miss the console's 404 and reach Walrus as an object
    of a bucket named "console"."""

    regex = r"[^/][\s\S]*?"


blueprint.record_once(lambda state: state.app.url_map.converters.setdefault("anypath",
                                                                            _AnyPath))
# Any other /console path is the console's 404 page (not an S3 bucket named "console").
blueprint.add_url_rule("/<anypath:path>", "not_found", errors.not_found,
                       methods=["GET", "HEAD", "POST", "PUT", "DELETE"])


@blueprint.app_context_processor
def _template_globals():
    who = getattr(g, "principal", None)
    # only the pages the signed-in user's policies let them see
    nav = [(endpoint, label) for endpoint, label in NAV if shown(endpoint)] if who else []
    return {"who": who, "is_admin": bool(who and who.is_cloud_admin),
            "console_nav": nav, "console_admin_nav": ADMIN_NAV,
            # whether to show a form POSTing to an endpoint (the check its POST meets)
            "allowed": lambda endpoint, **view_args: permitted(endpoint, {}, view_args),
            "shown": shown}


def init_app(app) -> None:
    """Register the console on *app*: session secret and cookie settings, the blueprint."""
    session.configure(app)
    app.register_blueprint(blueprint)


# Importing the view modules registers their routes on the blueprint.
load_all()
