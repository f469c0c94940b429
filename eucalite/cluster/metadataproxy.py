"""The metadata service on a joined node: guests of this node ask 169.254.169.254 on its
bridge, and the node asks the controller for them.

Each guest request goes, signed with the node's key, to the internal API's
``/nodes/<node id>/metadata/<guest IP>/<path>`` (:mod:`.internalapi.network`) with the
guest's method and IMDS headers; the guest IP is the request's source address on the
node's bridge, which the node's data plane lets only that guest send from. The controller's
answer (status, body, content type, the token TTL header) goes back to the guest as it is.
When the controller cannot be reached or refuses the node, the guest gets a plain 503 and
the node logs why.

Standard library and the package's own front end only: no database on the node.
"""
from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.request
from typing import Iterable
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from ..httpserver import Limits
from ..httpserver.embedded import Embedded, listen, plain_text_error
from .nodeclient import API_PATH, NodeCredentials, sign

#: Guests' headers passed on (IMDSv2 tokens and their TTL; a proxy's X-Forwarded-For, which
#: makes the token PUT refused as on AWS).
FORWARDED = ("X-aws-ec2-metadata-token", "X-aws-ec2-metadata-token-ttl-seconds",
             "X-Forwarded-For")
#: The controller's response headers passed back.
RETURNED = ("Content-Type", "X-aws-ec2-metadata-token-ttl-seconds", "Allow")
#: As the controller's own metadata listener, but each request waits on the controller:
#: a few more threads, and seconds a guest waits for it at most.
PROXY_LIMITS = Limits(threads=8, header_timeout=5, keepalive_timeout=5, body_timeout=5,
                      max_connections=1024, max_connections_per_client=16,
                      max_requests_per_client=2)
CONTROLLER_TIMEOUT = 10

log = logging.getLogger(__name__)


def _unavailable() -> Response:
    return Response("503 - Service Unavailable\n", status=503, mimetype="text/plain")


def make_app(controller_url: str, credentials: NodeCredentials, cafile: str | None = None):
    """The WSGI app forwarding each guest's request to the controller (see the module
    docstring)."""
    base = controller_url.rstrip("/") + API_PATH + f"/nodes/{quote(credentials.node_id)}"
    context = ssl.create_default_context(cafile=cafile) if cafile else None

    def forward(request: Request) -> Response:
        guest = request.remote_addr or ""
        url = f"{base}/metadata/{quote(guest)}/{quote(request.path.lstrip('/'))}"
        method = request.method if request.method in ("GET", "HEAD", "PUT") else "GET"
        headers = sign(method, url, b"", credentials.access_key_id,
                       credentials.secret_access_key, credentials.region)
        headers.update({name: request.headers[name] for name in FORWARDED
                        if name in request.headers})
        outgoing = urllib.request.Request(url, data=b"" if method == "PUT" else None,
                                          headers=headers, method=method)
        try:
            with urllib.request.urlopen(outgoing, timeout=CONTROLLER_TIMEOUT,
                                        context=context) as answer:
                return _relay(answer.status, answer.headers.items(), answer.read())
        except urllib.error.HTTPError as error:
            if error.headers.get("Content-Type", "").startswith("application/json"):
                # the internal API refused the node itself, not the guest's request
                log.warning("the controller refused metadata for guest %s: %s %s", guest,
                            error.code, error.read()[:300].decode("utf-8", "replace"))
                return _unavailable()
            return _relay(error.code, error.headers.items(), error.read())
        except (urllib.error.URLError, OSError) as error:
            log.warning("metadata for guest %s: cannot reach the controller: %s", guest,
                        getattr(error, "reason", error))
            return _unavailable()

    def app(environ, start_response):
        return forward(Request(environ))(environ, start_response)

    return app


def _relay(status: int, headers: Iterable[tuple[str, str]], body: bytes) -> Response:
    response = Response(body, status=status)
    for name, value in headers:
        if name.title() in {h.title() for h in RETURNED}:
            response.headers[name] = value
    return response


def serve(controller_url: str, credentials: NodeCredentials, host: str, port: int = 80,
          cafile: str | None = None) -> Embedded:
    """Serve :func:`make_app` on *host*:*port* (the metadata address on the node's bridge)
    from a background thread; ``shutdown()`` stops it. OSError if it cannot be bound."""
    return Embedded(make_app(controller_url, credentials, cafile), listen(host, port),
                    PROXY_LIMITS, name="imds-proxy", error_body=plain_text_error)


def start(config, credentials: NodeCredentials, guests_are_real: bool) -> Embedded | None:
    """A joined node's metadata service, as the agent starts it once its node runs: on
    ``metadata_address``:``metadata_port`` (on the node's bridge), forwarding to the
    controller the node joined (``controller_url`` overrides it). None, with the reason
    logged, when metadata is off, the node's guests are not real (fake or test hypervisor)
    or the address cannot be bound."""
    address = config.get("metadata_address")
    if not address or not guests_are_real:
        return None
    try:
        return serve(config.get("controller_url") or credentials.controller_url, credentials,
                     address, int(config.get("metadata_port", 80)),
                     credentials.cafile or None)
    except OSError as error:
        log.warning("the metadata service cannot listen on %s:%s: %s; guests of this node "
                    "will get no metadata", address, config.get("metadata_port", 80), error)
        return None
