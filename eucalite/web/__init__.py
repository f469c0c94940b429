"""Management console: a browser console over the same services the APIs use.

One blueprint at ``/console`` (:data:`blueprint`), server-rendered HTML from
``eucalite/templates/console/`` with a little JavaScript from ``eucalite/static/`` (no CDN:
the lab may be offline). Pages call the service functions the EC2 and S3 adapters call,
with the signed-in user's Principal, so every rule (ownership, states, limits) is the one
the APIs enforce and every failure shows the same AWS-style code and message.

Modules: :mod:`.session` (sign-in, CSRF, expiry, who is signed in), :mod:`.headers` (the
protective headers on every console response, the Secure cookie over TLS), :mod:`.pages`
(one module per resource family registering its views on the blueprint).
"""
from __future__ import annotations

from flask import Blueprint

URL_PREFIX = "/console"

blueprint = Blueprint("console", __name__, url_prefix=URL_PREFIX,
                      template_folder="../templates", static_folder="../static",
                      static_url_path="/static")


def init_app(app) -> None:
    """Register the console on *app*: session secret and cookie settings, the blueprint."""
    from . import session

    session.configure(app)
    app.register_blueprint(blueprint)


# Importing the view modules registers their routes (and hooks) on the blueprint.
from . import headers as _headers  # noqa: E402,F401
from . import session as _session  # noqa: E402,F401
from .pages import load_all  # noqa: E402

load_all()
