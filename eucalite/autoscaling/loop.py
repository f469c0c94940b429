"""Auto Scaling's background duty in the serving process: every ``autoscaling_interval``
seconds, or at once when a request changed a group (:meth:`~.service.AutoScalingService.wake`),
fire due scheduled actions and keep every group; once a minute, publish the group metrics
groups enabled to CloudWatch (``AWS/AutoScaling``)."""
from __future__ import annotations

import logging
import threading
import time

from .. import duty
from ..cloudwatch.datums import single

log = logging.getLogger(__name__)

#: Seconds between group metric publications (their 1Minute granularity).
METRICS_EVERY = 60


def publish_group_metrics(service) -> None:
    """One datapoint of each enabled group metric, dimension AutoScalingGroupName."""
    now = int(time.time())
    for account_id, name, values in service.group_metrics():
        dimensions = [["AutoScalingGroupName", name]]
        service.cloudwatch.publish(account_id, "AWS/AutoScaling", [
            single(metric, dimensions, now, "None", value, 60)
            for metric, value in values.items()])


def start(app, interval: float) -> threading.Event:
    """Run the duty in a daemon thread (:func:`eucalite.duty.every`); set the returned event
    to stop it."""
    service = app.extensions["eucalite"].autoscaling
    published = [0.0]

    def one_pass() -> None:
        acted = service.run_pass()
        if time.monotonic() - published[0] >= METRICS_EVERY:
            publish_group_metrics(service)
            published[0] = time.monotonic()
        if acted:
            log.info("auto scaling: %d instances launched or ended", acted)

    return duty.every(app, "autoscaling", interval, one_pass, wake=service.woken)
