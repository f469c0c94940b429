"""eucalite's HTTP front end: many connections held cheaply, none able to stall the others.

An asyncio event loop accepts the connections and parses requests with h11; the WSGI app
runs in a bounded thread pool. What a slow, idle or hostile client could hold is bounded by
:class:`Limits` (read from the ``http_*`` config keys): the time to send a request head, an
idle keep-alive, a stalled or trickled body, a client that stops reading its response;
header and URI sizes; connections and concurrently running requests per client address.

Modules: :mod:`.errors` (the server's own rejections as the service's XML error),
:mod:`.wsgi` (the WSGI environ, and the request body and response that cross between the
loop and a pool thread), :mod:`.shared` (what a worker's connections share: the pool,
connection counts per client address), :mod:`.connection` (one connection's life) and
:mod:`.worker` (the gunicorn worker class ``eucalite serve`` runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Limits:
    """What one worker allows; see the ``http_*`` keys in :mod:`eucalite.config`."""

    threads: int = 16                     # WSGI requests running at once (the pool)
    header_timeout: float = 10.0          # seconds from a request's first byte to its end
    keepalive_timeout: float = 15.0       # seconds a connection may idle between requests
    body_timeout: float = 20.0            # seconds a body may go without a byte...
    min_body_rate: int = 1024             # ...and bytes/s it must average after that
    send_timeout: float = 60.0            # seconds a response may wait for the client
    max_header_bytes: int = 64 * 1024     # request line and headers together
    max_uri_bytes: int = 16 * 1024        # the request target
    buffered_body: int = 1024 * 1024      # bodies read whole before a thread is used
    max_connections: int = 4096           # open connections, all clients together
    max_connections_per_client: int = 128
    max_requests_per_client: int = 8      # of one client address, running in the pool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "Limits":
        return cls(
            threads=int(config["threads"]),
            header_timeout=float(config["http_header_timeout"]),
            keepalive_timeout=float(config["http_keepalive_timeout"]),
            body_timeout=float(config["http_body_timeout"]),
            min_body_rate=int(config["http_min_body_rate"]),
            send_timeout=float(config["http_send_timeout"]),
            max_header_bytes=int(config["http_max_header_bytes"]),
            max_uri_bytes=int(config["http_max_uri_bytes"]),
            max_connections=int(config["http_max_connections"]),
            max_connections_per_client=int(config["http_max_connections_per_client"]),
            max_requests_per_client=int(config["http_max_requests_per_client"]),
        )
