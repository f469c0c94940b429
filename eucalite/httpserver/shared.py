"""What a worker's connections share: the app, the thread pool, the limits, and who is
connected (per client address: connections, and the slots that bound running requests)."""
from __future__ import annotations

import asyncio
import collections
from typing import Protocol

from . import Limits, errors


class Connection(Protocol):
    """What the server needs of one connection (:class:`.connection.Connection` is one).

    Stated here, rather than imported, so that this module and the connection module do not
    import each other: connections use the server, the server only counts and closes them.
    """

    @property
    def idle(self) -> bool:
        """True between requests (a graceful shutdown may close it now)."""

    def close(self) -> None:
        """Close once what is written has gone out."""

    def abort(self) -> None:
        """Drop the connection at once."""


class Server:
    """What a worker's connections share: the app, the pool, the limits and the count of
    connections per client address."""

    def __init__(self, app, pool, limits: Limits, *, scheme: str = "http", access=None,
                 error_body=None):
        self.app, self.pool, self.limits, self.scheme = app, pool, limits, scheme
        self.access = access or (lambda line: None)
        #: (path, code, message, request id) -> (content type, body) of a rejection
        self.error_body = error_body or errors.xml_error
        self.connections: set[Connection] = set()
        self.per_client: collections.Counter[str] = collections.Counter()
        self.slots: dict[str, asyncio.Semaphore] = {}
        self.closing = False

    def admit(self, address: str) -> str:
        """'ok', 'over' (this address has too many connections: answer SlowDown) or
        'full' (too many in all: drop it)."""
        if len(self.connections) >= self.limits.max_connections:
            return "full"
        self.per_client[address] += 1
        if address not in self.slots:
            self.slots[address] = asyncio.Semaphore(self.limits.max_requests_per_client)
        return "over" if self.per_client[address] > \
            self.limits.max_connections_per_client else "ok"

    def release(self, address: str) -> None:
        self.per_client[address] -= 1
        if self.per_client[address] <= 0:
            del self.per_client[address]
            self.slots.pop(address, None)

    def busy(self) -> int:
        """Connections in the middle of a request (graceful shutdown waits for them)."""
        return sum(1 for connection in self.connections if not connection.idle)

    def close_idle(self) -> None:
        self.closing = True
        for connection in list(self.connections):
            if connection.idle:
                connection.close()

    def abort_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()
