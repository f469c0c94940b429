"""Sign-in throttling: after a few wrong passwords, further sign-ins wait a growing delay.

Two counts, each allowing some failures free and then doubling a delay from one second up
to :attr:`Throttle.max_delay`:

- per client address (an IPv6 client by its /64, which one host can fill with addresses),
  whatever user it tries: one machine guessing;
- per account+user, whatever the address: many machines guessing one password. This one
  does not hold up addresses the user has signed in from before, so an attacker elsewhere
  cannot lock the real user out of the machine they use; a right password clears it.

An attempt is counted when it starts (as a failure until it succeeds), not when its
password check ends, so parallel guesses cannot all pass the check before any is counted.
A refused attempt changes nothing (it never reaches the password). Counts are forgotten
after :attr:`Throttle.forget_after` seconds without a failure, and the tables are bounded,
so memory stays small whatever an attacker sends. Counts live in this process (the server
runs one), behind one lock; every operation is a few dictionary steps.
"""
from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

EXTENSION = "eucalite.console.throttle"


@dataclass
class _Count:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


def client_key(address: str | None) -> str:
    """The throttled unit of a client address: the address, or an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return str(address)[:64]
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:          # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f"{parsed}/64", strict=False))


class Throttle:
    """Counts of failed sign-ins; :meth:`attempt` before checking a password,
    :meth:`succeeded` when it was right. *clock* gives seconds (monotonic)."""

    free_per_address = 5
    free_per_user = 10
    first_delay = 1
    max_delay = 15 * 60
    forget_after = 60 * 60
    #: Most counts (and users with known addresses) kept; the oldest go first.
    max_entries = 10_000
    #: Addresses remembered per user as "signed in from here before".
    known_per_user = 8

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, _Count] = OrderedDict()
        self._users: OrderedDict[tuple[str, str], _Count] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], list[str]] = OrderedDict()

    def attempt(self, address: str | None, account: str, user: str) -> int:
        """0 if a sign-in may go ahead (it is counted as a failure until
        :meth:`succeeded`), else the seconds to wait before trying again."""
        client, who = client_key(address), (account[:64], user[:64])
        with self._lock:
            now = self.clock()
            by_address = self._count(self._addresses, client, now)
            by_user = self._count(self._users, who, now)
            waits = [by_address.locked_until - now]
            if client not in self._known.get(who, ()):
                waits.append(by_user.locked_until - now)
            if max(waits) > 0:
                return math.ceil(max(waits))
            self._fail(by_address, self.free_per_address, now)
            self._fail(by_user, self.free_per_user, now)
            return 0

    def succeeded(self, address: str | None, account: str, user: str) -> None:
        """The attempt had the right password: take back its failure from the address's
        count, forget the user's count, and remember the address for the user."""
        client, who = client_key(address), (account[:64], user[:64])
        with self._lock:
            by_address = self._addresses.get(client)
            if by_address is not None:
                by_address.failures = max(0, by_address.failures - 1)
                if by_address.failures < self.free_per_address:
                    by_address.locked_until = 0.0
            self._users.pop(who, None)
            known = [client] + [a for a in self._known.pop(who, []) if a != client]
            self._known[who] = known[:self.known_per_user]
            self._trim(self._known)

    # --- inside the lock ---

    def _count(self, table: OrderedDict, key, now: float) -> _Count:
        count = table.get(key)
        if count is None or (now - count.last_failure > self.forget_after
                             and now >= count.locked_until):
            count = table[key] = _Count()
            self._trim(table)
        table.move_to_end(key)
        return count

    def _fail(self, count: _Count, free: int, now: float) -> None:
        count.failures += 1
        count.last_failure = now
        over = count.failures - free
        if over >= 0:
            delay = self.first_delay * 2 ** min(over, 32)
            count.locked_until = now + min(delay, self.max_delay)

    def _trim(self, table: OrderedDict) -> None:
        while len(table) > self.max_entries:
            table.popitem(last=False)


def init_app(app) -> None:
    app.extensions[EXTENSION] = Throttle()


def of_app(app) -> Throttle:
    """The app's throttle."""
    return app.extensions[EXTENSION]
