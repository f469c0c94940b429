"""One HTTP/1.1 connection on the event loop, from accept to close.

A connection waits for a request head (``keepalive_timeout`` idle, then ``header_timeout``
from the request's first byte), reads a body of up to ``buffered_body`` bytes whole in the
loop (a client trickling it holds no thread), and only then runs the app in the pool, at
most ``max_requests_per_client`` at once per client address. A larger or chunked body
streams to the app as it arrives. A body must keep coming: no byte for ``body_timeout``
seconds, or an average below ``min_body_rate`` after that, ends it as ``RequestTimeout``.
The server's own rejections are the service's XML error (see :mod:`.errors`).

While the app runs, the client is not read from (a pipelined request waits its turn): on a
plain TCP connection the transport is paused only once the client does send more, so the
usual keep-alive request costs no pause and resume of reading.

Everything here runs on the loop's thread, except :meth:`Connection._app_thread`.
"""
from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus

import h11

from .. import ids
from . import errors
from .shared import Server
from .wsgi import Body, ClientGone, Outbox, environ

log = logging.getLogger(__name__)

STREAM_HIGH = 4 * 1024 * 1024       # body bytes waiting for the app before reading pauses
STREAM_LOW = 1024 * 1024            # ...and resumes
DRAIN_LIMIT = 4 * 1024 * 1024       # unread body discarded to keep the connection open
WRITE_HIGH = 2 * 1024 * 1024           # response bytes buffered before the app is paused
WRITE_LOW = 1024 * 1024
SNIFF = 2048                        # bytes of a request head kept to name its service

HEAD, BUFFER, STREAM, RUNNING, DRAIN, CLOSED = (
    "head", "buffer", "stream", "running", "drain", "closed")


class Connection(asyncio.Protocol):
    def __init__(self, server: Server):
        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.state = HEAD
        self.transport = None
        self.address = "?"
        self._admitted = False
        self._over_cap = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._head = bytearray()          # the first bytes of the current request head
        self._reading_paused = False
        self._pause_lazily = False          # plain TCP: see the module's docstring
        self._writing_paused = False
        self._unsent = 0                  # response bytes written while writing was paused
        self._must_close = False
        self.request: h11.Request | None = None
        self.body: Body | None = None
        self.outbox: Outbox | None = None

    @property
    def idle(self) -> bool:
        return self.state == HEAD and not self._head

    # -- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        # TLS transports: paused at once, their end of stream not seen while the app runs
        self._pause_lazily = transport.get_extra_info("sslcontext") is None
        # a deeper buffer than asyncio's 64 KiB keeps large responses flowing while the
        # app's thread produces the next chunk (memory: only pool threads produce)
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer, self.address = peer, str(peer[0])
        admission = self.server.admit(self.address) if not self.server.closing else "full"
        if admission == "full":
            transport.abort()
            return
        self._admitted = True
        self._over_cap = admission == "over"
        self.server.connections.add(self)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=(
            self.limits.max_header_bytes + self.limits.max_uri_bytes))
        self._set_deadline(self.limits.header_timeout)

    def connection_lost(self, exc) -> None:
        self.state = CLOSED
        self._cancel_timer()
        if self._admitted:
            self._admitted = False
            self.server.connections.discard(self)
            self.server.release(self.address)
        if self.body is not None:
            self.body.fail(errors.exception(errors.INCOMPLETE_BODY))
        if self.outbox is not None:
            self.outbox.close()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._unsent and self.outbox is not None:
            self.outbox.sent(self._unsent)
        self._unsent = 0

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        if self.state == HEAD:
            if not self._head:                         # a request begins: its head's clock
                self._set_deadline(self.limits.header_timeout)
            if len(self._head) < SNIFF:
                self._head += data[:SNIFF - len(self._head)]
        elif self.state == RUNNING:
            self._pause_reading()               # more while the app runs: it waits
        self.h11.receive_data(data)
        self._advance()

    def eof_received(self):
        """The client finished sending (half-close): a request it sent is still answered;
        h11 then makes this side close."""
        if self.state != CLOSED:
            self.h11.receive_data(b"")
            self._advance()
        # asyncio's TLS transports cannot stay half-open (and warn when asked)
        return self.transport.get_extra_info("sslcontext") is None

    # -- parsing ---------------------------------------------------------------------------
    def _advance(self) -> None:
        while self.state in (HEAD, BUFFER, STREAM, DRAIN):
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                self._protocol_error(error)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._on_request(event)
            elif isinstance(event, h11.Data):
                self._on_data(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._on_end()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()

    def _on_request(self, request: h11.Request) -> None:
        self.request = request
        self.started = self.loop.time()
        if len(request.target) > self.limits.max_uri_bytes:
            return self.reject(errors.URI_TOO_LONG)
        # h11 bounds only a head that arrives in pieces; one that came whole is measured here
        if sum(len(name) + len(value) + 4 for name, value in request.headers) > \
                self.limits.max_header_bytes:
            return self.reject(errors.HEADER_TOO_LARGE)
        expect = [value.lower() for name, value in request.headers if name == b"expect"]
        if expect and expect != [b"100-continue"]:
            return self.reject(errors.BAD_EXPECT)
        if self._over_cap:
            return self.reject(errors.SLOW_DOWN)
        self.state, self._buffered, self._size = BUFFER, [], 0
        self._body_started = self._last_data = self.started
        self._received = 0
        self._body_deadline()
        if self.h11.they_are_waiting_for_100_continue:
            # The app runs now and the client hears 100 Continue only when it reads the
            # body: a request refused anyway (signature, missing bucket) gets its final
            # answer instead, and the body is never sent.
            self._dispatch(complete=False)
            self.body.on_first_read(lambda: self.server.from_thread(self._continue))

    def _continue(self) -> None:
        """On the loop: tell a client waiting on ``Expect: 100-continue`` to send its body,
        unless the answer already went out."""
        if self.state != CLOSED and self.h11.they_are_waiting_for_100_continue \
                and self.h11.our_state is h11.SEND_RESPONSE:
            self.transport.write(self.h11.send(h11.InformationalResponse(
                status_code=100, headers=[], reason=b"Continue")))

    def _on_data(self, data: bytes) -> None:
        self._received += len(data)
        self._last_data = self.loop.time()
        if self.state == BUFFER:
            self._buffered.append(data)
            self._size += len(data)
            if self._size > self.limits.buffered_body:
                self._dispatch(complete=False)
        elif self.state == STREAM:
            if self.body.feed(data) > STREAM_HIGH:
                self._pause_reading()
                self.body.wake_below(STREAM_LOW, self._resume_threadsafe)
        elif self.state == DRAIN and self._received > DRAIN_LIMIT:
            self.close()
            return
        self._body_deadline()

    def _on_end(self) -> None:
        if self.state == BUFFER:
            self._dispatch(complete=True)
        elif self.state == STREAM:
            self.body.finish()
            self.state = RUNNING
            self._stop_reading()                # a pipelined request waits for this one
        elif self.state == DRAIN:
            self._next_cycle()

    def _protocol_error(self, error: h11.RemoteProtocolError) -> None:
        if self.state == STREAM:                # a broken chunked body: the app sees it end
            self.body.fail(errors.exception(errors.INCOMPLETE_BODY))
            self._must_close = True
            self.state = RUNNING
            return
        if self.state in (HEAD, BUFFER):
            status = error.error_status_hint
            kind = (errors.HEADER_TOO_LARGE if status == 431 else
                    errors.NOT_IMPLEMENTED if status == 501 else
                    (400, "BadRequest", f"{errors.BAD_REQUEST[2]}: {error}"))
            return self.reject(kind)
        self.close()

    # -- running the app -------------------------------------------------------------------
    def _dispatch(self, complete: bool) -> None:
        self.body = Body()
        for chunk in self._buffered:
            self.body.feed(chunk)
        self._buffered = []
        if complete:
            self.body.finish()
            self.state = RUNNING
            self._stop_reading()
        else:
            self.state = STREAM
        self.outbox = Outbox(self.server.from_thread, self._deliver, self.limits.send_timeout)
        self._status = 0
        self._sent_bytes = 0
        server = self.transport.get_extra_info("sockname") or ("", 0)
        env = environ(self.request, self.body, server=server, peer=self.peer,
                      scheme=self.server.scheme)
        outbox = self.outbox
        self.server.run(self.address, lambda: self._start_app(env, outbox))

    def _start_app(self, env: dict, outbox: Outbox) -> bool:
        """A slot of this client is free: the app runs in the pool, unless the connection
        closed while it waited."""
        if self.state == CLOSED:
            return False
        self.server.pool.submit(self._app_thread, env, outbox)
        return True

    def _app_thread(self, env: dict, outbox: Outbox) -> None:
        """In a pool thread: run the app, then free the client's slot."""
        try:
            self._run_app(env, outbox)
        finally:
            self.server.from_thread(self.server.finished, self.address)

    def _run_app(self, env: dict, outbox: Outbox) -> None:
        """In a pool thread: call the app and hand its response to the loop."""
        response: list = []
        sent = [False]
        head = env["REQUEST_METHOD"] == "HEAD"

        def start_response(status, headers, exc_info=None):
            if exc_info and sent[0]:
                raise exc_info[1].with_traceback(exc_info[2])
            response[:] = [status, headers]

        def emit(chunks: list[bytes], end: bool) -> None:
            events = []
            if not sent[0]:
                status, headers = response
                code, _, reason = status.partition(" ")
                events.append(h11.Response(
                    status_code=int(code), reason=reason.encode("latin-1"),
                    headers=[(name.encode("latin-1"), value.encode("latin-1"))
                             for name, value in headers]))
                sent[0] = True
            if not head:
                events.extend(h11.Data(data=chunk) for chunk in chunks if chunk)
            if end:
                events.append(h11.EndOfMessage())
            outbox.put(events, 0 if head else sum(len(chunk) for chunk in chunks))

        try:
            result = self.server.app(env, start_response)
            try:
                held = None
                for chunk in result:
                    if held:
                        emit([held], False)
                    held = chunk
                emit([held] if held else [], True)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except ClientGone as error:
            log.info("response to %s not delivered: %s", self.address, error)
            self.server.from_thread(self.abort)
        except Exception:  # noqa: BLE001 - the app must not take the worker down
            log.exception("error serving %s %s", env["REQUEST_METHOD"], env["RAW_URI"])
            if sent[0]:
                self.server.from_thread(self.abort)
                return
            status, code, message = errors.INTERNAL_ERROR
            content_type, body = self.server.error_body(env["PATH_INFO"], code, message,
                                                        ids.request_id())
            response[:] = [f"{status} Internal Server Error",
                           [("Content-Type", content_type),
                            ("Content-Length", str(len(body)))]]
            try:
                emit([body], True)
            except ClientGone:
                pass

    def _deliver(self, events: list, size: int) -> None:
        """On the loop: write the app's response events."""
        if self.state == CLOSED:
            return
        out: list = []                  # one write, one system call, for all of them
        try:
            for event in events:
                if isinstance(event, h11.Response):
                    self._status = event.status_code
                data = self.h11.send_with_data_passthrough(event)
                if data:
                    out += data
        except h11.LocalProtocolError as error:
            if out:
                self.transport.writelines(out)
            log.error("cannot send the response to %s: %s", self.address, error)
            if self._sent_bytes == 0 and isinstance(events[0], h11.Response):
                self._status = 0
                return self.reject(errors.INTERNAL_ERROR)
            return self.abort()
        if out:
            self.transport.writelines(out)
        self._sent_bytes += size
        if self._writing_paused:
            self._unsent += size
        else:
            self.outbox.sent(size)
        if isinstance(events[-1], h11.EndOfMessage):
            self._log_access(self._status, self._sent_bytes)
            self._response_done()

    def _response_done(self) -> None:
        if self.h11.our_state is h11.MUST_CLOSE or self._must_close or self.server.closing:
            return self.close()
        if self.h11.their_state is h11.DONE:
            return self._next_cycle()
        if self.h11.their_state is h11.SEND_BODY and self._received == 0 and \
                self.request is not None and any(
                    name == b"expect" for name, _ in self.request.headers):
            return self.close()     # answered before a 100 Continue: the body never comes
        if self.h11.their_state is h11.SEND_BODY and self.state in (STREAM, RUNNING):
            # the app answered without reading the whole body: discard the rest, within
            # limits, to keep the connection
            if self.body is not None:
                self.body.fail(errors.exception(errors.INCOMPLETE_BODY))
            self.state = DRAIN
            self._resume_reading()
            self._body_deadline()
            return self._advance()
        self.close()

    def _next_cycle(self) -> None:
        try:
            self.h11.start_next_cycle()
        except h11.LocalProtocolError:
            return self.close()
        self.state, self.request, self.body, self.outbox = HEAD, None, None, None
        self._head = bytearray()
        self._set_deadline(self.limits.keepalive_timeout)
        self._resume_reading()
        self._advance()
        if self.state == HEAD and self.h11.trailing_data[0]:
            # a pipelined request already arrived: it has begun
            self._head += self.h11.trailing_data[0][:SNIFF]
            self._set_deadline(self.limits.header_timeout)

    # -- rejections and closing ------------------------------------------------------------
    def reject(self, kind: tuple[int, str, str]) -> None:
        """Answer with the server's own error in the service's envelope, then close."""
        status, code, message = kind
        target = self.request.target if self.request is not None else bytes(self._head)
        path = errors.path_of(b"GET " + target + b" ") if self.request is not None \
            else errors.path_of(target)
        request_id = ids.request_id()
        content_type, body = self.server.error_body(path, code, message, request_id)
        reason = HTTPStatus(status).phrase
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nx-amz-request-id: {request_id}\r\n"
            f"Connection: close\r\n\r\n".encode() + body)
        self._log_access(status, len(body))
        self.close()

    def close(self) -> None:
        """Close once what is written has gone out."""
        if self.state != CLOSED:
            self.state = CLOSED
            self._cancel_timer()
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.state = CLOSED
            self.transport.abort()

    def _log_access(self, status: int, size: int) -> None:
        request = self.request
        line = (f"{request.method.decode()} {request.target.decode('latin-1')} "
                f"HTTP/{request.http_version.decode()}" if request is not None
                else bytes(self._head[:80]).split(b"\r\n")[0].decode("latin-1"))
        took = (self.loop.time() - self.started) * 1000 if request is not None else 0
        self.server.access(f'{self.address} "{line}" {status} {size} {took:.0f}ms')

    # -- timers and flow control -----------------------------------------------------------
    def _set_deadline(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds
        if self._timer is None or self._timer.when() > self._deadline:
            self._cancel_timer()
            self._timer = self.loop.call_at(self._deadline, self._on_timer)

    def _body_deadline(self) -> None:
        """Body time: no byte for body_timeout, or below min_body_rate on average after."""
        if self._reading_paused:
            return
        limits = self.limits
        stalled = self._last_data + limits.body_timeout
        slow = self._body_started + limits.body_timeout + \
            self._received / max(1, limits.min_body_rate)
        self._set_deadline(min(stalled, slow) - self.loop.time())

    def _clear_deadline(self) -> None:
        self._deadline = None
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._deadline is None or self.state == CLOSED:
            return
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        self._deadline = None
        if self.state == HEAD and not self._head:
            self.close()                        # idle: nothing to answer
        elif self.state in (HEAD, BUFFER):
            self.reject(errors.REQUEST_TIMEOUT)
        elif self.state == STREAM:
            self.body.fail(errors.exception(errors.REQUEST_TIMEOUT))
            self._must_close = True
            self.state = RUNNING
            self._pause_reading()
        else:
            self.close()

    def _stop_reading(self) -> None:
        """The request is whole and the app runs: its clock stops, and reading pauses (on
        plain TCP only once the client sends more: see the module's docstring)."""
        if self._pause_lazily:
            self._clear_deadline()
        else:
            self._pause_reading()

    def _pause_reading(self) -> None:
        """Stop reading; the body's clock stops too (waiting on the app is not the
        client's delay)."""
        if not self._reading_paused and self.state != CLOSED:
            self._reading_paused = True
            self.transport.pause_reading()
            self._paused_at = self.loop.time()
            self._clear_deadline()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.state != CLOSED:
            self._reading_paused = False
            self.transport.resume_reading()
            if self.state in (STREAM, DRAIN):     # time paused does not count against it
                paused = self.loop.time() - self._paused_at
                self._body_started += paused
                self._last_data += paused
                self._body_deadline()

    def _resume_threadsafe(self) -> None:
        self.server.from_thread(self._resume_reading)
