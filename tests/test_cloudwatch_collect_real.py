"""CloudWatch's collector on a real libvirtd + QEMU: a guest whose user-data busy-loops shows
CPUUtilization near 100 % while it does and near 0 % once it stops, and the bytes it wrote
to its ephemeral disk show in DiskWriteBytes; an alarm on its idle CPU then terminates the
real VM through the alarm's action.

Runs when EUCALITE_TEST_LIBVIRT_URI names a real libvirt (see tests/guestutil.py); the test
drives the collector's passes itself, with detailed monitoring every few seconds, and polls
with deadlines (the guest's timing on a loaded TCG host is not ours to fix)."""
from __future__ import annotations

import os

import pytest
from guestutil import BOOT_TIMEOUT, MARK, build_guest, busy_loop, guest_console, live_cloud, \
    requires_real_libvirt, terminate
from serverutil import wait_until

from eucalite import accounts
from eucalite.cloudwatch import store
from eucalite.cloudwatch.collector import Collector
from eucalite.cloudwatch.levels import LEVELS

pytestmark = requires_real_libvirt

#: Seconds between the passes of the test's collector (detailed monitoring).
INTERVAL = 3
BUSY_SECONDS = 40
WRITTEN = 4 * 2 ** 20
#: the guest: wait for the first samples, write 4 MiB straight to its ephemeral disk, then
#: keep its vCPU busy for BUSY_SECONDS and say when it stops
SCRIPT = f"""#!/bin/sh
sleep 3
dd if=/dev/zero of=/dev/vdb bs=65536 count={WRITTEN // 65536} oflag=direct conv=fsync
echo {MARK} wrote
""" + busy_loop(BUSY_SECONDS)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the instance bridge and the metadata address need root")
    yield from live_cloud("local", build_guest(tmp_path_factory), "eucalite-cwtest",
                          "eucwbr0", "10.219.0.0/24")


def _points(live, account, name, instance_id) -> list[tuple[int, float]]:
    """(second, value) of every 1-second datapoint of the instance's metric so far."""
    with live.app.app_context():
        metric_id = store.find(account, "AWS/EC2", name, [["InstanceId", instance_id]])
        if metric_id is None:
            return []
        return [(start, cell.maximum) for start, _, cell in
                store.cells(metric_id, LEVELS[0], 0, 2 ** 40, None)]


def test_a_busy_guest_shows_in_cpu_utilization_and_its_writes_in_disk_write_bytes(node):
    ec2 = node.client("ec2")
    services = node.app.extensions["eucalite"]
    collector = Collector(services, {"metrics_interval": 60,
                                     "detailed_metrics_interval": INTERVAL})
    [instance] = ec2.run_instances(
        ImageId=node.image_id, MinCount=1, MaxCount=1, InstanceType="m1.small",
        Monitoring={"Enabled": True},
        UserData=SCRIPT)["Instances"]          # boto3 base64-encodes it
    iid = instance["InstanceId"]
    with node.app.app_context():
        account = accounts.get_account(accounts.ADMIN_ACCOUNT).id
    try:
        def collect_then(check):
            """A pass of the collector, then *check()* (wait_until polls this)."""
            with node.app.app_context():
                collector.collect()
            return check()

        def console():
            return guest_console(ec2, iid)

        def cpu():
            return _points(node, account, "CPUUtilization", iid)

        # busy: some interval reads near 100 % (a loaded host may steal a little)
        busy = wait_until(lambda: collect_then(
            lambda: [value for _, value in cpu() if value >= 80]),
            "CPUUtilization near 100 %", BOOT_TIMEOUT + BUSY_SECONDS, interval=INTERVAL,
            show=lambda: f"{cpu()}\n{console()[-2000:]}")
        assert busy and f"{MARK} busy-start" in console()
        # the writes were counted (the guest wrote them before it got busy)
        written = sum(value for _, value in _points(node, account, "DiskWriteBytes", iid))
        assert written >= WRITTEN, (written, console()[-2000:])
        # once the loop ends, an interval reads near 0 %
        wait_until(lambda: collect_then(lambda: f"{MARK} busy-end" in console()),
                   "the busy loop to end", BUSY_SECONDS + 60, interval=INTERVAL)
        ended = max(second for second, _ in cpu())
        wait_until(lambda: collect_then(
            lambda: [value for second, value in cpu() if second > ended and value <= 10]),
            "CPUUtilization near 0 % after the loop", 60, interval=INTERVAL,
            show=lambda: str(cpu()))
        print(f"CPUUtilization (second, %): {cpu()}; DiskWriteBytes: {written}")
        # an alarm on the idle guest's CPU acts on the real VM: terminated by its action
        cw = node.client("cloudwatch")
        cw.put_metric_alarm(
            AlarmName="idle", Namespace="AWS/EC2", MetricName="CPUUtilization",
            Dimensions=[{"Name": "InstanceId", "Value": iid}], Statistic="Maximum",
            Period=10, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=10.0,
            TreatMissingData="ignore", ComparisonOperator="LessThanThreshold",
            AlarmActions=[f"arn:aws:automate:{node.region}:ec2:terminate"])

        def alarmed():
            with node.app.app_context():
                collector.collect()
                services.cloudwatch.evaluate_alarms()
            return cw.describe_alarms(AlarmNames=["idle"])["MetricAlarms"][0][
                "StateValue"] == "ALARM"
        wait_until(alarmed, "the idle alarm", 60, interval=INTERVAL)
        wait_until(lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0][
            "Instances"][0]["State"]["Name"] == "terminated", "the alarm's terminate",
                   120, interval=1)
    finally:
        terminate(ec2, [iid])
