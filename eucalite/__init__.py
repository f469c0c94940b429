"""eucalite: a private AWS-compatible cloud (EC2 + S3) in one Python process.

:func:`create_app` builds the one Flask application: configuration, database (migrated to
the newest schema), the cloud-admin account, the service objects and every API adapter.
Nothing happens at import time.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

# ``db`` stays the module here (``eucalite.db``), not the SQLAlchemy object it holds
from . import accounts, config as config_module, db as db_module, ids, iam, sts, web
from .autoscaling import api as autoscaling_api
from .cloudwatch import api as cloudwatch_api
from .cluster.internalapi import routes as internalapi
from .cluster.scheduler import validate_policy
from .compute import ec2
from .compute.addresses import parse_pool
from .httpserver import errors as http_errors
from .iam import awspolicies
from .s3 import rest as s3_rest
from .services import Services

log = logging.getLogger(__name__)


def create_app(overrides: Mapping[str, Any] | None = None, *, environ=None) -> Flask:
    """Build the application.

    *overrides* win over the config file and ``EUCALITE_*`` environment (tests and CLI
    options use them). The data directory is created (mode 0700: it holds secrets), the
    database is migrated to the newest revision and the cloud-admin account bootstrapped.
    """
    config = config_module.load(overrides, environ)
    # Checked here, not in config (which no role may import), so that a typo in
    # ``scheduler`` stops the start instead of failing the first RunInstances.
    config["scheduler"] = validate_policy(config["scheduler"])
    parse_pool(config)      # likewise a malformed ``public_ips`` (ValueError naming it)
    data_dir = Path(config["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    # private to this user; node duty may have added search permission for QEMU (o+x, see
    # cluster.service.open_work_dirs), which is kept
    os.chmod(data_dir, stat.S_IMODE(data_dir.stat().st_mode) & 0o711 | 0o700)

    app = Flask(__name__, static_folder=None)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=db_module.engine_url(config["database_url"]),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(config["database_url"]),
        EUCALITE=config,
    )
    app.url_map.merge_slashes = False   # S3 keys may contain '//'
    db_module.db.init_app(app)
    db_module.upgrade(config["database_url"])
    with app.app_context():
        accounts.bootstrap()
        awspolicies.seed()              # AWS's managed policies, every account's

    app.extensions["eucalite"] = Services.build(config, app)

    app.register_blueprint(ec2.blueprint)
    app.register_blueprint(iam.blueprint)
    app.register_blueprint(sts.blueprint)
    app.register_blueprint(cloudwatch_api.blueprint)
    app.register_blueprint(autoscaling_api.blueprint)
    app.register_blueprint(internalapi.blueprint)  # /internal/v1: the nodes' API
    web.init_app(app)                           # /console, before S3 claims every path
    app.register_blueprint(s3_rest.blueprint)   # last: it claims every other path

    @app.before_request
    def _start_request():
        g.request_id = ids.request_id()

    @app.after_request
    def _tag_response(response: Response) -> Response:
        request_id = getattr(g, "request_id", None)
        if request_id:
            response.headers["x-amzn-RequestId"] = request_id
            response.headers["x-amz-request-id"] = request_id
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        """Routing errors (405, 404...) still answer in the API's XML envelope."""
        request_id = getattr(g, "request_id", None) or ids.request_id()
        code = {405: "MethodNotAllowed", 404: "NotFound"}.get(error.code or 400, "BadRequest")
        body = http_errors.document(request.path, code, error.description or code, request_id)
        return Response(body, status=error.code or 400, mimetype="application/xml")

    return app


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # One connection per thread; the busy timeout (db._connection_setup) serializes writers.
        # The pool keeps one for each request thread (``threads``, 16 by default) and the
        # background duties, so a request under load never opens one (and runs its pragmas).
        return {"connect_args": {"check_same_thread": False, "timeout": 30},
                "pool_size": 32, "max_overflow": 32}
    # Beyond the pool's 5 kept connections, up to 20 more for bursts (the WSGI threads, the
    # job worker and node duty each hold one while they run); a dropped connection (server
    # restart) is replaced before use.
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 20}
