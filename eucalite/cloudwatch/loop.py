"""The monitoring role's background duty in the serving process: every
``alarm_interval`` seconds, evaluate every alarm; once an hour, drop metric data and alarm
history past their retention."""
from __future__ import annotations

import logging
import threading
import time

from ..db import db

log = logging.getLogger(__name__)

#: Seconds between retention sweeps.
SWEEP_EVERY = 3600


def start(app, interval: float) -> threading.Event:
    """Run the duty in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    service = app.extensions["eucalite"].cloudwatch

    def loop() -> None:
        swept = 0.0
        while not stop.wait(interval):
            try:
                with app.app_context():
                    changed = service.evaluate_alarms()
                    if time.monotonic() - swept >= SWEEP_EVERY:
                        service.upkeep()
                        swept = time.monotonic()
                    db.session.remove()
                if changed:
                    log.info("alarms: %d changed state", changed)
            except Exception:  # noqa: BLE001 - a failed pass must not end the thread
                log.exception("alarm evaluation failed")

    threading.Thread(target=loop, name="cloudwatch-alarms", daemon=True).start()
    return stop
