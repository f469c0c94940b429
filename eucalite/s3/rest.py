"""The S3 REST adapter: every path not claimed by another API is an S3 request.

S3 sits at the root of the endpoint so path-style clients (s3cmd, rclone, boto3 with an IP
endpoint) need only host and port. Requests are authenticated here with the shared
:mod:`eucalite.auth`; errors use S3's ``<Error>`` envelope. The object store itself arrives
with the Walrus issue: until then an authenticated request is answered ``NotImplemented``.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request

from .. import auth, xmlutil
from ..api import services
from ..errors import AuthError, AwsError, InternalError

log = logging.getLogger(__name__)

blueprint = Blueprint("s3", __name__)


def error_response(error: AwsError, request_id: str, resource: str = "") -> Response:
    extra = dict(error.extra)
    if resource and "Resource" not in extra:
        extra["Resource"] = resource
    body = xmlutil.s3_error(error.code, error.message, request_id, extra)
    # HEAD responses carry no body; the status and headers tell the client.
    return Response(b"" if request.method == "HEAD" else body, status=error.status,
                    mimetype="application/xml")


@blueprint.route("/", defaults={"key": ""}, methods=["GET", "PUT", "POST", "DELETE", "HEAD"])
@blueprint.route("/<path:key>", methods=["GET", "PUT", "POST", "DELETE", "HEAD"])
def endpoint(key: str):
    view = auth.RequestView.from_environ(request.environ)
    try:
        try:
            result = auth.authenticate(view, "s3", max_skew=services().config["max_clock_skew"])
        except AuthError as error:
            raise error.for_service("s3")
        g.principal = result.principal
        raise AwsError("The object store (Walrus) is not available in this release yet.",
                       code="NotImplemented", status=501)
    except AwsError as error:
        return error_response(error, g.request_id, view.raw_path)
    except Exception:  # noqa: BLE001
        log.exception("InternalError in s3 request %s", g.request_id)
        return error_response(InternalError(), g.request_id, view.raw_path)
