"""The controller's command queues, one per joined node: how a :class:`~.remotenode.RemoteNode`
call reaches a node that only ever calls the controller.

:meth:`CommandQueue.submit` queues a command (a Node method's name and JSON arguments) and
blocks its caller until the node posts the result (:meth:`CommandQueue.complete`) or the
deadline passes. The node fetches its commands with a long poll (:meth:`CommandQueue.take`:
what is queued at once, else it waits up to ``wait`` seconds for one).

In memory: the server runs one worker process, so every request and job shares these
queues. A command that outlives its deadline is forgotten (its late result is refused).

A node counts as *down*, and a submit to it fails at once instead of after its deadline,
when the failure monitor marked it (:meth:`CommandQueue.mark_down`, until it polls again)
or when it has not polled for *node_timeout* seconds (since the queue started, for a node
that has not polled yet); a submit already waiting fails as soon as its node counts as down
(a running node polls on while it carries out long commands).

A waiting poll holds one of the server's request threads, so at most *max_waiters* polls
wait at once (half the server's ``threads``); any other poll is answered at once with no
command and :data:`RETRY_AFTER`, the seconds after which the node should poll again.
"""
from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors.node import CommandConflict, CommandNotFound
from .virt.driver import DriverError

#: Seconds a node without a waiting slot waits before it polls again.
RETRY_AFTER = 2
#: The longest a poll may wait (the node's HTTP timeout must exceed it).
MAX_WAIT = 25
#: Seconds between a waiting submit's checks that its node still polls.
CHECK_EVERY = 1.0


@dataclass
class _Command:
    id: str
    node_id: str
    method: str
    args: Any
    done: threading.Event = field(default_factory=threading.Event)
    taken: bool = False
    result: Any = None
    error: Any = None
    #: why the controller ended it without the node's answer (down, restarted, removed)
    failure: DriverError | None = None


@dataclass
class _NodeQueue:
    queued: deque = field(default_factory=deque)
    #: monotonic time the node's last poll ended, None while one is open
    last_poll: float | None = None
    polling: int = 0
    down: str | None = None


class CommandQueue:
    """Every joined node's commands (see the module docstring). *clock* is for tests."""

    def __init__(self, node_timeout: float = 90, max_waiters: int = 8,
                 clock: Callable[[], float] = time.monotonic):
        self.node_timeout = node_timeout
        self.max_waiters = max(1, max_waiters)
        self.clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._nodes: dict[str, _NodeQueue] = {}
        self._commands: dict[str, _Command] = {}
        self._waiting = 0
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)

    def _node(self, node_id: str) -> _NodeQueue:
        queue = self._nodes.get(node_id)
        if queue is None:
            queue = self._nodes[node_id] = _NodeQueue(last_poll=self._started)
        return queue

    # -- the controller's side ---------------------------------------------------------------

    def down_reason(self, node_id: str) -> str | None:
        """Why *node_id* takes no commands now (None: it polls)."""
        with self._lock:
            return self._down_reason(self._node(node_id))

    def _down_reason(self, queue: _NodeQueue) -> str | None:
        if queue.down:
            return queue.down
        if queue.polling:
            return None
        silent = self.clock() - queue.last_poll
        if silent > self.node_timeout:
            return (f"it has not asked for commands for {silent:.0f} s "
                    f"(node_timeout {self.node_timeout:g} s)")
        return None

    def submit(self, node_id: str, method: str, args: Any, timeout: float) -> Any:
        """Queue *method*(*args*) for *node_id* and return the result the node posts.

        Raises DriverError when the node is down (at once, or as soon as it is marked down
        or restarts), when it does not answer within *timeout* seconds, and NodeFailed (the
        node's error as a ``{"type", "message"}`` object in :attr:`NodeFailed.error`) when
        the command failed there."""
        with self._lock:
            queue = self._node(node_id)
            reason = self._down_reason(queue)
            if reason:
                raise DriverError(f"node {node_id} is down: {reason}")
            command = _Command(id=f"cmd-{self._prefix}-{next(self._ids)}", node_id=node_id,
                               method=method, args=args)
            self._commands[command.id] = command
            queue.queued.append(command)
            self._arrived.notify_all()
        deadline = self.clock() + timeout
        while not command.done.wait(min(CHECK_EVERY, max(0.0, deadline - self.clock()))):
            with self._lock:
                # a node that died after the command was queued stops polling: its caller
                # hears so after node_timeout, not after the method's whole deadline
                reason = self._down_reason(queue)
                if reason and not command.done.is_set():
                    self._fail(command, f"node {node_id} is down: {reason}")
                elif self.clock() >= deadline and not command.done.is_set():
                    self._commands.pop(command.id, None)
                    if command in queue.queued:
                        queue.queued.remove(command)
                    raise DriverError(f"node {node_id} did not answer {method} within "
                                      f"{timeout:g} s")
        with self._lock:
            self._commands.pop(command.id, None)
        if command.failure is not None:
            raise command.failure
        if command.error is not None:
            raise NodeFailed(command.error)
        return command.result

    def mark_down(self, node_id: str, reason: str) -> None:
        """The node stopped answering (the failure monitor): waiting submits fail now, new
        ones fail at once, until the node polls again."""
        with self._lock:
            queue = self._node(node_id)
            queue.down = reason
            for command in [c for c in self._commands.values() if c.node_id == node_id]:
                self._fail(command, f"node {node_id} is down: {reason}")

    def restarted(self, node_id: str) -> None:
        """The node registered again (its agent restarted): commands it had taken are lost
        with the process that took them, so their callers hear it now."""
        with self._lock:
            for command in [c for c in self._commands.values()
                            if c.node_id == node_id and c.taken]:
                self._fail(command, f"node {node_id} restarted while running {command.method}")

    def forget(self, node_id: str) -> None:
        """The node left the cluster: its waiting submits fail, its queue goes."""
        self.mark_down(node_id, "removed from the cluster")
        with self._lock:
            self._nodes.pop(node_id, None)

    def _fail(self, command: _Command, message: str) -> None:
        """(lock held) End *command* with DriverError *message*."""
        command.failure = DriverError(message)
        self._commands.pop(command.id, None)
        queue = self._nodes.get(command.node_id)
        if queue is not None and command in queue.queued:
            queue.queued.remove(command)
        command.done.set()

    # -- the node's side ---------------------------------------------------------------------

    def take(self, node_id: str, wait: float) -> tuple[list[dict], int | None]:
        """The commands queued for *node_id* (``{"id", "method", "args"}`` each), waiting
        up to *wait* seconds for one when none is queued and a waiting slot is free. Returns
        them and, when the poll could not wait, the seconds until the node should poll
        again (else None). A poll brings a node marked down back."""
        wait = max(0.0, min(float(wait), MAX_WAIT))
        with self._lock:
            queue = self._node(node_id)
            queue.polling += 1
            queue.down = None
            retry = None
            try:
                if not queue.queued and wait > 0:
                    if self._waiting >= self.max_waiters:
                        retry = RETRY_AFTER
                    else:
                        self._waiting += 1
                        try:
                            end = self.clock() + wait
                            while not queue.queued and (left := end - self.clock()) > 0:
                                self._arrived.wait(left)
                        finally:
                            self._waiting -= 1
                taken = []
                while queue.queued:
                    command = queue.queued.popleft()
                    command.taken = True
                    taken.append({"id": command.id, "method": command.method,
                                  "args": command.args})
                return taken, retry
            finally:
                queue.polling -= 1
                queue.last_poll = self.clock()

    def complete(self, node_id: str, command_id: str, result: Any = None,
                 error: Any = None) -> None:
        """*node_id* posts the outcome of *command_id*: its *result*, or *error* (``{"type",
        "message"}``). CommandNotFound for an unknown, answered or expired command,
        CommandConflict for another node's."""
        with self._lock:
            command = self._commands.get(command_id)
            if command is None:
                raise CommandNotFound(
                    f"No command {command_id} is waiting for a result: it is unknown, was "
                    "answered already, or its caller stopped waiting (expired).")
            if command.node_id != node_id:
                raise CommandConflict(f"Command {command_id} was not sent to node {node_id}.")
            if not command.taken:
                raise CommandConflict(f"Command {command_id} has not been taken yet: poll "
                                      "for it first.")
            command.result, command.error = result, error
            del self._commands[command_id]
            command.done.set()

    def waiting_polls(self) -> int:
        """How many polls wait now (for tests and diagnostics)."""
        with self._lock:
            return self._waiting

    def queued(self, node_id: str) -> list[str]:
        """The ids of the commands queued for *node_id*, not yet taken (for tests and
        diagnostics)."""
        with self._lock:
            queue = self._nodes.get(node_id)
            return [command.id for command in queue.queued] if queue else []


class NodeFailed(Exception):
    """The command failed on the node; :attr:`error` is its ``{"type", "message"}``."""

    def __init__(self, error: Any):
        super().__init__(str(error))
        self.error = error
