"""The gunicorn worker class ``eucalite serve`` runs: gunicorn's master keeps what it is good
at (signals, respawning a dead worker, the access log's handlers); this worker serves the
master's listening sockets on an asyncio loop (:mod:`.connection`) with the WSGI app in a
pool of ``threads`` threads.

Signals, as gunicorn's own workers: SIGTERM stops accepting, closes idle connections and
lets running requests finish for up to ``graceful_timeout`` seconds; SIGINT and SIGQUIT stop
at once.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import sys
import signal
from concurrent.futures import ThreadPoolExecutor

from gunicorn.sock import ssl_context
from gunicorn.workers import base

from . import Limits
from .connection import Connection
from .shared import Server


SWITCH_INTERVAL = 0.001


class Worker(base.Worker):
    def init_process(self):
        # The loop thread hands every request to the pool and every response to the socket:
        # it must get the GIL back soon from threads running Python (default: 5 ms turns).
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._stopping = asyncio.Event()
        self._quick = False
        self._access_lines: list[str] = []
        super().init_process()

    def init_signals(self):
        for signum in self.SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop, False)
        self.loop.add_signal_handler(signal.SIGINT, self._stop, True)
        self.loop.add_signal_handler(signal.SIGQUIT, self._stop, True)
        self.loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        self.loop.add_signal_handler(signal.SIGABRT, self._stop, True)
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)

    def _stop(self, quick: bool) -> None:
        self.alive = False
        self._quick = self._quick or quick
        self._stopping.set()

    def run(self):
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        limits = Limits.from_config(self.wsgi.config["EUCALITE"])
        # never more connections than descriptors: accept() failing with EMFILE would stall
        # the listener for everyone
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if files != resource.RLIM_INFINITY and limits.max_connections > files - 128:
            limits = dataclasses.replace(limits, max_connections=max(16, files - 128))
        pool = ThreadPoolExecutor(max_workers=limits.threads,
                                  thread_name_prefix="eucalite-request")
        server = Server(self.wsgi, pool, limits, scheme="https" if self.cfg.is_ssl else "http",
                        access=self._access)
        context = None
        if self.cfg.is_ssl:
            context = ssl_context(self.cfg)
        listeners = [await self.loop.create_server(
            lambda: Connection(server), sock=listener.sock, ssl=context,
            ssl_handshake_timeout=limits.header_timeout if context else None)
            for listener in self.sockets]
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("the master went away; worker %s stops", self.pid)
                break
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
        for listener in listeners:
            listener.close()
        server.close_idle()
        deadline = self.loop.time() + self.cfg.graceful_timeout
        while not self._quick and server.busy() and self.loop.time() < deadline:
            self.notify()
            await asyncio.sleep(0.1)
        server.abort_all()              # wakes any thread still waiting on its client
        await asyncio.sleep(0)
        pool.shutdown(wait=not self._quick, cancel_futures=True)
        self._write_access()

    def _access(self, line: str) -> None:
        """Log a response's access line, with the others of this turn of the loop."""
        if not self.cfg.accesslog:
            return
        if not self._access_lines:
            self.loop.call_soon(self._write_access)
        self._access_lines.append(line)

    def _write_access(self) -> None:
        """The access lines of one turn of the loop as one record, one write (under load,
        several responses go out per turn). The access log's format is the bare message
        (gunicorn's ``%(message)s``), so the log holds the same lines."""
        lines, self._access_lines = self._access_lines, []
        if lines:
            self.log.access_log.info("\n".join(lines))
