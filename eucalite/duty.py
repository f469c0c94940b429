"""Background duties of the serving process: a pass run again and again in a daemon thread
(the reconciler, the metrics collector, alarm evaluation, Auto Scaling's keeper, the burst
reconciler), written once here.

Each pass runs inside an application context and ends with the database session removed; a
pass that raises is logged with its traceback and the next one runs as usual, so one bad
pass never ends the duty.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from .db import db

log = logging.getLogger(__name__)


def every(app, name: str, interval: float, work: Callable[[], float | None], *,
          wake: threading.Event | None = None) -> threading.Event:
    """Run ``work()`` every *interval* seconds in a daemon thread called *name*, and at
    once whenever *wake* is set (it is cleared before each pass). *work* may return the
    seconds to wait before its next pass (None: *interval*). Set the returned event to stop
    the duty (at its next wake-up)."""
    stop = threading.Event()
    trigger = wake if wake is not None else stop

    def loop() -> None:
        wait = interval
        while True:
            trigger.wait(wait)
            if stop.is_set():
                return
            if wake is not None:
                wake.clear()
            try:
                with app.app_context():
                    try:
                        asked = work()
                    finally:
                        db.session.remove()
                wait = interval if asked is None else asked
            except Exception:  # noqa: BLE001 - a failed pass must not end the duty
                log.exception("%s: pass failed", name)
                wait = interval

    threading.Thread(target=loop, name=name, daemon=True).start()
    return stop
