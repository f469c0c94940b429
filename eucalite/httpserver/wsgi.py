"""What crosses between the event loop and the pool thread running the WSGI app.

* :func:`environ` — the PEP 3333 environ of an h11 request.
* :class:`Body` — ``wsgi.input``: the loop feeds it the request body as it arrives, the
  app's thread reads it, blocking; a timeout or a vanished client raises the AWS error.
* :class:`Outbox` — the app's thread hands response events to the loop, which writes them;
  at most :data:`WINDOW` bytes are in flight, so a client that reads slowly slows the app
  down instead of filling memory, and one that stops reading for ``send_timeout`` ends it.
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Callable
from urllib.parse import unquote_to_bytes

import h11

from ..errors import AwsError

WINDOW = 2 * 1024 * 1024          # response bytes handed to the loop but not yet sent


def environ(request: h11.Request, body: "Body", *, server: tuple, peer: tuple,
            scheme: str) -> dict:
    """The WSGI environ for *request*; ``wsgi.input`` is *body*, which ends with the
    request's body whatever its framing (``wsgi.input_terminated``)."""
    target = request.target.decode("latin-1")
    path, _, query = target.partition("?")
    env = {
        "REQUEST_METHOD": request.method.decode("ascii"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": target,
        "REQUEST_URI": target,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
        "REMOTE_ADDR": str(peer[0]),
        "REMOTE_PORT": str(peer[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers:
        if b"_" in name:
            continue        # X_Forwarded vs X-Forwarded: both would be HTTP_X_FORWARDED
        key = name.decode("ascii").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        env[key] = f"{env[key]},{text}" if key in env else text
    return env


class Body:
    """``wsgi.input``, fed by the loop (:meth:`feed`, :meth:`finish`, :meth:`fail`) and read
    by one pool thread."""

    def __init__(self):
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._ended = False
        self._error: AwsError | None = None
        self._ready = threading.Condition()
        self._wake: tuple[int, Callable[[], None]] | None = None
        self._first_read: Callable[[], None] | None = None

    # -- the loop's side --
    def feed(self, data: bytes) -> int:
        """Add body bytes; returns how many are now waiting to be read."""
        with self._ready:
            self._chunks.append(data)
            self._buffered += len(data)
            self._ready.notify()
            return self._buffered

    def finish(self) -> None:
        with self._ready:
            self._ended = True
            self._ready.notify()

    def wake_below(self, low: int, wake: Callable[[], None]) -> None:
        """Call *wake* (once, from the reading thread) when fewer than *low* bytes wait:
        the loop paused reading the connection and resumes it then."""
        with self._ready:
            self._wake = (low, wake)

    def on_first_read(self, callback: Callable[[], None]) -> None:
        """Call *callback* (once, from the reading thread) when the app first reads: the
        moment a client waiting on ``Expect: 100-continue`` is told to send its body."""
        self._first_read = callback

    def fail(self, error: AwsError) -> None:
        """The body will not arrive (timeout, client gone): the next read raises *error*."""
        with self._ready:
            if not self._ended:
                self._error = error
                self._ready.notify()

    # -- the app's side --
    def _take(self, size: int) -> bytes:
        first_read, self._first_read = self._first_read, None
        if first_read is not None:
            first_read()
        with self._ready:
            while not self._chunks and not self._ended and self._error is None:
                self._ready.wait()
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
            first = self._chunks[0]
            if size < 0 or len(first) <= size:
                data = self._chunks.popleft()
            else:
                data, self._chunks[0] = first[:size], first[size:]
            self._buffered -= len(data)
            wake = self._woken()
        if wake:
            wake()
        return data

    def _woken(self) -> Callable[[], None] | None:
        """The wake-up to call now that bytes were taken, if it is due (lock held)."""
        if self._wake is not None and self._buffered < self._wake[0]:
            wake, self._wake = self._wake[1], None
            return wake
        return None

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self._take(-1), b""))
        parts, missing = [], size
        while missing > 0:
            data = self._take(missing)
            if not data:
                break
            parts.append(data)
            missing -= len(data)
            if not self._chunks:
                break       # return what has arrived rather than wait to fill *size*
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            with self._ready:
                while not self._chunks and not self._ended and self._error is None:
                    self._ready.wait()
                if not self._chunks and self._error is not None:
                    raise self._error
                if not self._chunks:
                    break
                first = self._chunks[0]
                end = first.find(b"\n") + 1 or len(first)
                if size is not None and size >= 0:
                    end = min(end, size - len(line))
                data, rest = first[:end], first[end:]
                if rest:
                    self._chunks[0] = rest
                else:
                    self._chunks.popleft()
                self._buffered -= len(data)
                wake = self._woken()
            if wake:
                wake()
            line += data
            if line.endswith(b"\n"):
                break
        return bytes(line)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


class ClientGone(Exception):
    """The response cannot be delivered: the client left or stopped reading."""


class Outbox:
    """Response events from the app's thread to the loop, at most :data:`WINDOW` bytes in
    flight. *deliver(events, size)* runs on the loop (*post(deliver, events, size)* gets
    it there) and writes them; the loop calls :meth:`sent` once those bytes left for the
    socket and :meth:`close` when the connection is gone."""

    def __init__(self, post: Callable[..., None], deliver: Callable[[list, int], None],
                 send_timeout: float):
        self._post = post
        self._deliver = deliver
        self._send_timeout = send_timeout
        self._in_flight = 0
        self._closed = False
        self._room = threading.Condition()

    def put(self, events: list, size: int) -> None:
        """Queue *events* (*size* body bytes) for the loop; waits while the window is full.
        Raises :class:`ClientGone` when the connection closed or made no progress for
        ``send_timeout`` seconds."""
        with self._room:
            progress = self._in_flight
            deadline = time.monotonic() + self._send_timeout
            while self._in_flight > WINDOW and not self._closed:
                if self._in_flight < progress:                  # some went out: wait on
                    progress = self._in_flight
                    deadline = time.monotonic() + self._send_timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClientGone(f"no progress sending for {self._send_timeout:g} s")
                self._room.wait(left)
            if self._closed:
                raise ClientGone("the connection closed")
            self._in_flight += size
        self._post(self._deliver, events, size)

    def sent(self, size: int) -> None:
        with self._room:
            self._in_flight -= size
            self._room.notify()

    def close(self) -> None:
        with self._room:
            self._closed = True
            self._room.notify_all()
