"""The S3 REST adapter: every path not claimed by another API is an S3 request.

S3 sits at the root of the endpoint so path-style clients (s3cmd, rclone, boto3 with an IP
endpoint) need only host and port; a Host of ``<bucket>.<s3_domain>`` selects the bucket
virtual-host style. A request is parsed into an :class:`~eucalite.s3.routing.S3Request`,
authenticated (or left anonymous), and dispatched on (method, level, sub-resource) to one
small controller from ``rest_buckets``, ``rest_objects``, ``rest_multipart`` or
``rest_post`` — one controller per operation, as swift's s3api does, instead of one long
if/elif. Those modules register into :mod:`eucalite.s3.routing`; this one imports them so
their routes exist before the first request.

The same store is also served path-style under Eucalyptus' classic ``/services/Walrus``
(``/services/Walrus/<bucket>/<key>``), where clients written for Eucalyptus find it; they
sign the whole path, prefix included, as every path-style client does.
"""
from __future__ import annotations

import logging
from urllib.parse import unquote, unquote_to_bytes

from flask import Blueprint, Response, g, request
from werkzeug.routing import PathConverter

from .. import auth, xmlutil
from ..api import ALL_METHODS, services
from ..errors import AuthError, AwsError, InternalError, MISSING
from ..errors import s3 as s3_errors
from ..httpserver.errors import WALRUS_PATH
from . import authz, conditions, requestkeys, rest_buckets
# Imported for their @route registrations, which _handler_for looks up in ROUTES.
from . import (rest_attributes, rest_encryption, rest_lock, rest_multipart,  # noqa: F401
               rest_objects, rest_ownership, rest_post)
from .routing import ROUTES, Handler, S3Request, subresource_of

log = logging.getLogger(__name__)

blueprint = Blueprint("s3", __name__)


class _AnyPath(PathConverter):
    """Werkzeug's ``path``, but matching every character: an object key may hold CR and LF,
    which ``path`` (``.`` without DOTALL) left to Flask's HTML 404."""

    regex = "(?s:[^/].*?)"


# Registered before the routes below are, so their rules can use it.
blueprint.record_once(lambda state: state.app.url_map.converters.setdefault("s3path",
                                                                            _AnyPath))

METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS"]


def split_target(raw_path: str, host: str,
                 s3_domain: str) -> tuple[str | None, str | None, bool]:
    """(bucket, key, virtual) from a virtual-host Host header or else the request path."""
    path = unquote(raw_path)
    if path == WALRUS_PATH or path.startswith(WALRUS_PATH + "/"):
        path = path[len(WALRUS_PATH):]
    hostname = host.rsplit(":", 1)[0].lower() if host and not host.startswith("[") else host
    if s3_domain and hostname and hostname.endswith("." + s3_domain.lower()):
        bucket = hostname[: -len(s3_domain) - 1]
        return bucket, path[1:] or None, True
    if path in ("", "/"):
        return None, None, False
    bucket, _, key = path[1:].partition("/")
    return bucket or None, key or None, False


def _check_utf8(raw_path: str) -> None:
    """S3 names (keys, buckets) are UTF-8: a path whose percent-decoded bytes are not is
    InvalidURI, before anything else is looked at (it was read as U+FFFD, a different key)."""
    try:
        unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise s3_errors.InvalidURI() from None


def error_response(error: AwsError, request_id: str, resource: str = "") -> Response:
    extra = dict(error.extra)
    if resource and "Resource" not in extra:
        extra["Resource"] = resource
    body = xmlutil.s3_error(error.code, error.message, request_id, extra)
    if request.method == "HEAD" or error.status == 304:
        body = b""         # HEAD and 304 carry no body; the status tells the client
    response = Response(body, status=error.status, mimetype="application/xml")
    for name, value in getattr(error, "headers", {}).items():
        response.headers[name] = value
    return response


@blueprint.route("/", defaults={"path": ""}, methods=METHODS)
@blueprint.route("/<s3path:path>", methods=METHODS)
def endpoint(path: str):
    view = auth.RequestView.from_environ(request.environ)
    config = services().config
    bucket, key, is_virtual = split_target(view.raw_path, view.headers.get("host", ""),
                                           config.get("s3_domain", ""))
    virtual = bucket if is_virtual else None
    try:
        _check_utf8(view.raw_path)
        if request.method == "OPTIONS":
            return rest_buckets.preflight(bucket, key, view.headers)
        requester, result = _authenticate(view, config, virtual)
        query = dict(view.query_pairs())
        authz.set_request_context({
            "aws:SourceIp": request.remote_addr or "",
            "aws:SecureTransport": "true" if request.scheme == "https" else "false",
            "aws:UserAgent": view.headers.get("user-agent", ""),
            "aws:Referer": view.headers.get("referer", ""),
            **requestkeys.from_request(view.headers, query),
        })
        s3request = S3Request(request.method, bucket, key, query,
                              view.headers, requester, result, g.request_id, view.raw_path)
        handler = _handler_for(s3request)
        conditions.check_expected_owners(bucket, view.headers)
        response = handler(s3request)
        return _with_cors(response, bucket, view.headers)
    except AwsError as error:
        return _with_cors(error_response(error, g.request_id, view.raw_path), bucket,
                          view.headers)
    except Exception:  # noqa: BLE001 - the one place unexpected errors become 500s
        log.exception("InternalError in s3 request %s", g.request_id)
        return error_response(InternalError(), g.request_id, view.raw_path)


# A view of its own: rules of one view with the same defaults make werkzeug redirect "/".
# Every method, so that one S3 refuses is not left to the catch-all of /services/.
@blueprint.route(WALRUS_PATH, methods=ALL_METHODS, strict_slashes=False)
@blueprint.route(WALRUS_PATH + "/<s3path:path>", methods=ALL_METHODS)
def classic_endpoint(path: str = ""):
    """Eucalyptus' classic path: the same S3 (:func:`split_target` drops the prefix)."""
    return endpoint(path)


def _authenticate(view: auth.RequestView, config, virtual: str | None):
    """(principal, AuthResult), or (None, None) for a request with no credentials at all:
    S3 serves those as the anonymous user, whom only ACLs and policies can let in."""
    try:
        result = auth.authenticate(view, "s3", max_skew=config["max_clock_skew"],
                                   virtual_bucket=virtual)
    except AuthError as error:
        if error.kind == MISSING:
            return None, None
        raise error.for_service("s3")
    g.principal = result.principal
    return result.principal, result


def _handler_for(req: S3Request) -> Handler:
    subresource = subresource_of(req.query)
    handler = ROUTES.get((req.method, req.level, subresource))
    if handler is None and subresource is not None and req.level != "service":
        known = {sub for (_, level, sub) in ROUTES if level == req.level}
        if subresource not in known:
            raise s3_errors.NotImplemented(
                f"The {subresource} sub-resource is not implemented by eucalite.")
    if handler is None:
        raise s3_errors.MethodNotAllowed(
            "The specified method is not allowed against this resource.", Method=req.method,
            ResourceType=req.level.upper())
    return handler


def _with_cors(response: Response, bucket: str | None, headers: dict[str, str]) -> Response:
    """Add the bucket's CORS headers to an actual (non-preflight) cross-origin request."""
    origin = headers.get("origin")
    if not origin or not bucket:
        return response
    for name, value in rest_buckets.cors_headers(bucket, origin, request.method).items():
        response.headers[name] = value
    return response
