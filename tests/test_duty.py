"""eucalite.duty.every: passes run in an app context, a failing pass does not end the duty,
a wake runs a pass at once, a pass may ask for its next wait, and stopping stops it."""
from __future__ import annotations

import threading

from flask import current_app

from eucalite import duty


def test_passes_survive_failures_wake_and_stop(app):
    passes: list[str] = []
    changed = threading.Condition()
    wake = threading.Event()

    def work():
        with changed:
            passes.append(current_app.name)      # inside an application context
            changed.notify_all()
        if len(passes) == 1:
            raise RuntimeError("a bad pass")
        return 3600.0                             # then wait long: only a wake runs one

    def passes_reach(count: int, timeout: float = 5) -> bool:
        with changed:
            return changed.wait_for(lambda: len(passes) >= count, timeout)

    stop = duty.every(app, "test-duty", 0.01, work, wake=wake)
    assert passes_reach(2)                        # the failing first pass did not end it
    assert not passes_reach(3, timeout=0.2)       # the second asked for a long wait
    wake.set()
    assert passes_reach(3)                        # a wake runs one at once
    stop.set()
    wake.set()                                    # it stops at its next wake-up
    assert not passes_reach(4, timeout=0.2)
