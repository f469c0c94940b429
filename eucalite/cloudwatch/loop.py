"""The monitoring role's background duty in the serving process: every
``alarm_interval`` seconds, evaluate every alarm; once an hour, drop metric data and alarm
history past their retention."""
from __future__ import annotations

import logging
import threading
import time

from .. import duty

log = logging.getLogger(__name__)

#: Seconds between retention sweeps.
SWEEP_EVERY = 3600


def start(app, interval: float) -> threading.Event:
    """Run the duty in a daemon thread (:func:`eucalite.duty.every`); set the returned event
    to stop it."""
    service = app.extensions["eucalite"].cloudwatch
    swept = [0.0]

    def one_pass() -> None:
        changed = service.evaluate_alarms()
        if time.monotonic() - swept[0] >= SWEEP_EVERY:
            service.upkeep()
            swept[0] = time.monotonic()
        if changed:
            log.info("alarms: %d changed state", changed)

    return duty.every(app, "cloudwatch-alarms", interval, one_pass)
