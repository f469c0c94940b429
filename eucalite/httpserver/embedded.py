"""The front end on a background thread of the serving process, for a listener beside the
main one (the instance metadata service guests reach): its own event loop and small thread
pool, the same limits and timeouts, no gunicorn."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from . import Limits
from .connection import Connection
from .shared import Server

log = logging.getLogger(__name__)


def plain_text_error(path: str, code: str, message: str, request_id: str):
    """Rejections as text, for a service that does not speak AWS XML (the metadata one)."""
    return "text/plain", f"{code}: {message}\n".encode()


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on *host*:*port* (IPv4 or IPv6 by the address's form), for
    :class:`Embedded`; OSError (nothing left open) if it cannot be bound."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class Embedded:
    """Serves *app* on *listener* (bound and listening; taken over) until
    :meth:`shutdown`."""

    def __init__(self, app, listener: socket.socket, limits: Limits, name: str = "http",
                 error_body=None):
        self.port = listener.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.pool = ThreadPoolExecutor(max_workers=limits.threads,
                                       thread_name_prefix=f"{name}-request")
        started = threading.Event()

        async def main():
            server = Server(app, self.pool, limits, access=log.debug, error_body=error_body)
            listening = await self.loop.create_server(lambda: Connection(server),
                                                      sock=listener)
            self._stop = asyncio.Event()
            started.set()
            await self._stop.wait()
            listening.close()
            server.abort_all()
            await asyncio.sleep(0)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       name=name, daemon=True)
        self.thread.start()
        started.wait(10)

    def shutdown(self) -> None:
        """Stop listening, drop the connections and wait for the loop's thread."""
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout=5)
        self.pool.shutdown(wait=False, cancel_futures=True)
