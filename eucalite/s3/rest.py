"""The S3 REST adapter: every path not claimed by another API is an S3 request.

S3 sits at the root of the endpoint so path-style clients (s3cmd, rclone, boto3 with an IP
endpoint) need only host and port; a Host of ``<bucket>.<s3_domain>`` selects the bucket
virtual-host style. A request is parsed into an :class:`S3Request`, authenticated (or left
anonymous), and dispatched on (method, level, sub-resource) to one small controller from
``rest_buckets``, ``rest_objects`` or ``rest_multipart`` — one controller per operation, as
swift's s3api does, instead of one long if/elif.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from flask import Blueprint, Response, g, request
from werkzeug.routing import PathConverter

from .. import auth, integers, xmlutil
from ..accounts import Principal
from ..api import services
from ..errors import AuthError, AwsError, InternalError, MISSING
from . import authz

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

#: Sub-resources that select an operation, in the order they are looked for.
SUBRESOURCES = ("uploads", "uploadId", "acl", "policy", "cors", "lifecycle", "tagging",
                "versioning", "versions", "location", "delete", "policyStatus",
                "website", "logging", "notification", "replication", "encryption",
                "object-lock", "ownershipControls", "publicAccessBlock", "accelerate",
                "requestPayment", "analytics", "metrics", "inventory", "intelligent-tiering",
                "retention", "legal-hold", "torrent", "restore", "select", "attributes")

Handler = Callable[["S3Request"], Response]
ROUTES: dict[tuple[str, str, str | None], Handler] = {}


def route(method: str, level: str, subresource: str | None = None):
    """Register a controller for *method* on *level* ("service", "bucket", "object")."""
    def register(handler: Handler) -> Handler:
        ROUTES[(method, level, subresource)] = handler
        return handler
    return register


@dataclass
class S3Request:
    """One S3 request, parsed: what every controller works from."""

    method: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]             # lower-case names
    requester: Principal | None
    auth: auth.AuthResult | None
    request_id: str
    raw_path: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def s3(self):
        return services().s3

    @property
    def level(self) -> str:
        return "service" if not self.bucket else ("object" if self.key else "bucket")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def int_arg(self, name: str, default: int, maximum: int) -> int:
        """A non-negative integer query parameter (max-keys, max-parts...), capped at
        *maximum*; InvalidArgument unless ASCII digits within S3's integer range."""
        text = self.query.get(name)
        if text is None or text == "":
            return default
        value = integers.parse(text, maximum=integers.INT32_MAX)
        if value is None:
            raise AwsError(f"Provided {name} not an integer or within integer range",
                           code="InvalidArgument", status=400, ArgumentName=name,
                           ArgumentValue=text)
        return min(value, maximum)

    def body(self, limit: int = 1024 * 1024) -> bytes:
        """The whole (small) body of a configuration request, decoded and verified."""
        from . import payload

        reader = payload.open_body(request.stream, self.headers, self.auth,
                                   request.content_length)
        data = bytearray()
        while True:
            chunk = reader.read(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > limit:
                raise AwsError("Your request was too big.", code="MaxMessageLengthExceeded",
                               status=400)
        return bytes(data)

    def stream(self):
        """The body as a verifying reader (payload.BodyReader), for object data."""
        from . import payload

        if request.content_length is None and "chunked" not in (
                request.headers.get("Transfer-Encoding", "").lower()):
            raise AwsError("You must provide the Content-Length HTTP header.",
                           code="MissingContentLength", status=411)
        return payload.open_body(request.stream, self.headers, self.auth,
                                 request.content_length)


def split_target(raw_path: str, host: str,
                 s3_domain: str) -> tuple[str | None, str | None, bool]:
    """(bucket, key, virtual) from a virtual-host Host header or else the request path."""
    path = unquote(raw_path)
    hostname = host.rsplit(":", 1)[0].lower() if host and not host.startswith("[") else host
    if s3_domain and hostname and hostname.endswith("." + s3_domain.lower()):
        bucket = hostname[: -len(s3_domain) - 1]
        return bucket, path[1:] or None, True
    if path in ("", "/"):
        return None, None, False
    bucket, _, key = path[1:].partition("/")
    return bucket or None, key or None, False


def _subresource(query: dict[str, str]) -> str | None:
    for name in SUBRESOURCES:
        if name in query:
            return name
    return None


def xml_response(root, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(xmlutil.document(root), status=status, mimetype="application/xml")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def empty(status: int = 200, headers: dict | None = None) -> Response:
    response = Response(b"", status=status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


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
        if request.method == "OPTIONS":
            from . import rest_buckets

            return rest_buckets.preflight(bucket, key, view.headers)
        requester, result = _authenticate(view, config, virtual)
        authz.set_request_context({
            "aws:SourceIp": request.remote_addr or "",
            "aws:SecureTransport": "true" if request.scheme == "https" else "false",
            "aws:UserAgent": view.headers.get("user-agent", ""),
            "aws:Referer": view.headers.get("referer", ""),
        })
        s3request = S3Request(request.method, bucket, key, dict(view.query_pairs()),
                              view.headers, requester, result, g.request_id, view.raw_path)
        handler = _handler_for(s3request)
        response = handler(s3request)
        return _with_cors(response, bucket, view.headers)
    except AwsError as error:
        return _with_cors(error_response(error, g.request_id, view.raw_path), bucket,
                          view.headers)
    except Exception:  # noqa: BLE001 - the one place unexpected errors become 500s
        log.exception("InternalError in s3 request %s", g.request_id)
        return error_response(InternalError(), g.request_id, view.raw_path)


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
    from . import rest_buckets, rest_multipart, rest_objects, rest_post  # noqa: F401 - routes

    subresource = _subresource(req.query)
    handler = ROUTES.get((req.method, req.level, subresource))
    if handler is None and subresource is not None and req.level != "service":
        known = {sub for (_, level, sub) in ROUTES if level == req.level}
        if subresource not in known:
            raise AwsError(f"The {subresource} sub-resource is not implemented by eucalite.",
                           code="NotImplemented", status=501)
    if handler is None:
        raise AwsError("The specified method is not allowed against this resource.",
                       code="MethodNotAllowed", status=405, Method=req.method,
                       ResourceType=req.level.upper())
    return handler


def _with_cors(response: Response, bucket: str | None, headers: dict[str, str]) -> Response:
    """Add the bucket's CORS headers to an actual (non-preflight) cross-origin request."""
    origin = headers.get("origin")
    if not origin or not bucket:
        return response
    from . import rest_buckets

    for name, value in rest_buckets.cors_headers(bucket, origin, request.method).items():
        response.headers[name] = value
    return response
