"""What every S3 controller works with: the parsed :class:`S3Request`, the route registry
the ``rest_*`` modules register into with :func:`route`, and the response builders.

The blueprint (:mod:`eucalite.s3.rest`) imports the controller modules and looks their
handlers up in :data:`ROUTES`; the controllers import only this module, so the registry and
the modules that fill it never import each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Response, request

from .. import integers, xmlutil
from ..accounts import Principal
from ..api import services
from ..auth import AuthResult
from ..errors.s3 import InvalidArgument, MaxMessageLengthExceeded, MissingContentLength
from . import payload

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


def subresource_of(query: dict[str, str]) -> str | None:
    """The first of :data:`SUBRESOURCES` the query names, None for a plain request."""
    for name in SUBRESOURCES:
        if name in query:
            return name
    return None


def capped_int(name: str, text: str | None, default: int, maximum: int) -> int:
    """*text*, the value of parameter *name*, as a non-negative integer capped at
    *maximum* (*default* when absent or empty); InvalidArgument unless ASCII digits within
    S3's integer range."""
    if text is None or text == "":
        return default
    value = integers.parse(text, maximum=integers.INT32_MAX)
    if value is None:
        raise InvalidArgument(f"Provided {name} not an integer or within integer range",
                              ArgumentName=name, ArgumentValue=text)
    return min(value, maximum)


@dataclass
class S3Request:
    """One S3 request, parsed: what every controller works from."""

    method: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]             # lower-case names
    requester: Principal | None
    auth: AuthResult | None
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
        return capped_int(name, self.query.get(name), default, maximum)

    def int_header(self, name: str, default: int, maximum: int) -> int:
        """A non-negative integer header (x-amz-max-parts...), as :meth:`int_arg`."""
        return capped_int(name, self.header(name), default, maximum)

    def body(self, limit: int = 1024 * 1024, headers: dict[str, str] | None = None) -> bytes:
        """The whole (small) body of a configuration request, decoded and verified against
        *headers* (default: the request's)."""
        reader = payload.open_body(request.stream, self.headers if headers is None else headers,
                                   self.auth, request.content_length)
        data = bytearray()
        while True:
            chunk = reader.read(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > limit:
                raise MaxMessageLengthExceeded("Your request was too big.")
        return bytes(data)

    def stream(self):
        """The body as a verifying reader (payload.BodyReader), for object data."""
        if request.content_length is None and "chunked" not in (
                request.headers.get("Transfer-Encoding", "").lower()):
            raise MissingContentLength("You must provide the Content-Length HTTP header.")
        return payload.open_body(request.stream, self.headers, self.auth,
                                 request.content_length)


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
