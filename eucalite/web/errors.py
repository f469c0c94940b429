"""The console's error pages: whatever goes wrong under ``/console`` answers an HTML page in
the console's frame, never the S3 XML the rest of the server's paths answer.

An unknown console path is a 404 page (after sign-in, like every page, so the answer does
not tell a stranger which pages exist); an HTTP error a view raises (a 405, an ``abort``)
keeps its status with the console's page; an unexpected exception is logged with its
traceback and answers a 500 page showing only the request id (the ``x-amz-request-id``
header, which the log line carries too), so a user can quote it to the operator.
"""
from __future__ import annotations

import logging

from flask import g, render_template
from werkzeug.exceptions import HTTPException, NotFound

from ..db import db
from ..errors import AwsError
from ..ids import request_id
from .session import login_required

log = logging.getLogger(__name__)


@login_required
def not_found(path: str = ""):
    """The catch-all view for ``/console/<path>`` no other route serves."""
    raise NotFound(f"There is no console page at /console/{path}.")


def hidden(error: AwsError):
    """A resource the user may not see (the service's NotFound error) as the 404 page,
    with the code and message the APIs give."""
    db.session.rollback()
    return render_template("console/error.html", code=error.code, message=error.message), 404


def http_error(error: HTTPException):
    """An HTTP error raised under ``/console`` as a console page with its status."""
    return render_template("console/error.html", code=error.name,
                           message=error.description or error.name), error.code or 500


def internal_error(error: Exception):
    """An unexpected exception in a console view: logged, answered with a 500 page."""
    if isinstance(error, HTTPException):
        return http_error(error)
    db.session.rollback()
    rid = getattr(g, "request_id", None) or request_id()
    log.exception("console request %s failed", rid, exc_info=error)
    return render_template("console/error.html", code="InternalError",
                           message="The console could not complete this request.",
                           request_id=rid), 500
