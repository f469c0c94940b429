"""What a worker's connections share: the app, the thread pool, the limits, who is
connected (per client address: connections, and the requests it has running or waiting),
and the way pool threads hand work back to the loop."""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
from typing import Callable, Protocol

from . import Limits, errors

log = logging.getLogger(__name__)


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
    connections and running requests per client address. Made on the loop's thread; all
    but :meth:`from_thread` are called on it."""

    def __init__(self, app, pool, limits: Limits, *, scheme: str = "http", access=None,
                 error_body=None):
        self.app, self.pool, self.limits, self.scheme = app, pool, limits, scheme
        self.access = access or (lambda line: None)
        #: (path, code, message, request id) -> (content type, body) of a rejection
        self.error_body = error_body or errors.xml_error
        self.connections: set[Connection] = set()
        self.per_client: collections.Counter[str] = collections.Counter()
        self.running: collections.Counter[str] = collections.Counter()
        self.waiting: dict[str, collections.deque[Callable[[], bool]]] = {}
        self.closing = False
        self._loop = asyncio.get_running_loop()
        self._inbox: list[tuple[Callable, tuple]] = []
        self._inbox_lock = threading.Lock()

    # -- from pool threads to the loop -----------------------------------------------------
    def from_thread(self, callback: Callable, *args) -> None:
        """Call *callback(*args)* on the loop, in the order called, from any thread.

        Calls made while the loop has not yet taken the previous ones join them and cost
        no wake-up of their own: under load, many responses go out per wake-up of the loop
        (each wake-up is a system call on both sides, and the loop's thread waiting for the
        interpreter lock again)."""
        with self._inbox_lock:
            self._inbox.append((callback, args))
            if len(self._inbox) > 1:
                return                  # the loop is already called to take them
        self._loop.call_soon_threadsafe(self._take_inbox)

    def _take_inbox(self) -> None:
        with self._inbox_lock:
            calls, self._inbox = self._inbox, []
        for callback, args in calls:
            try:
                callback(*args)
            except Exception:  # noqa: BLE001 - as the loop itself does with a callback's
                log.exception("error in %r", callback)

    # -- running requests ------------------------------------------------------------------
    def run(self, address: str, start: Callable[[], bool]) -> None:
        """Call *start()* once fewer than ``max_requests_per_client`` requests of
        *address* run (now, or when one ends): it puts its request in the pool and returns
        True, which must then call :meth:`finished`; or returns False (its connection went
        away meanwhile)."""
        if self.running[address] < self.limits.max_requests_per_client:
            if start():
                self.running[address] += 1
        else:
            self.waiting.setdefault(address, collections.deque()).append(start)

    def finished(self, address: str) -> None:
        """One request of *address* ended: the next one waiting may start."""
        self.running[address] -= 1
        waiting = self.waiting.get(address)
        while waiting and self.running[address] < self.limits.max_requests_per_client:
            if waiting.popleft()():
                self.running[address] += 1
        if not waiting:
            self.waiting.pop(address, None)
        if self.running[address] <= 0:
            del self.running[address]

    def admit(self, address: str) -> str:
        """'ok', 'over' (this address has too many connections: answer SlowDown) or
        'full' (too many in all: drop it)."""
        if len(self.connections) >= self.limits.max_connections:
            return "full"
        self.per_client[address] += 1
        return "over" if self.per_client[address] > \
            self.limits.max_connections_per_client else "ok"

    def release(self, address: str) -> None:
        self.per_client[address] -= 1
        if self.per_client[address] <= 0:
            del self.per_client[address]

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
