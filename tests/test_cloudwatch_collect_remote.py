"""The collector on a joined node: the counters travel over the command channel
(``Node.counters`` on a :class:`~eucalite.cluster.remotenode.RemoteNode`, run by the node's
agent on its fake hypervisor) and become the same AWS/EC2 metrics as on a local node."""
from __future__ import annotations

import time

import pytest
from agentutil import ZONE, Cloud
from ec2util import make_image, wait_for_state

from eucalite import accounts
from eucalite.cloudwatch import store
from eucalite.cloudwatch.collector import Collector
from eucalite.cloudwatch.levels import LEVELS
from eucalite.cluster.virt.driver import DiskCounters

T0 = int(time.time()) // 60 * 60 - 1200


@pytest.fixture
def cloud(tmp_path):
    cloud = Cloud(tmp_path)
    yield cloud.live, cloud.far
    cloud.far.stop()
    cloud.stop_controller()


def test_a_joined_nodes_instances_are_measured_through_the_command_channel(cloud):
    live, far = cloud
    ec2 = live.client("ec2")
    instance = ec2.run_instances(ImageId=make_image(live), MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": ZONE})["Instances"][0]
    wait_for_state(ec2, [instance["InstanceId"]], "running", timeout=30)
    iid = instance["InstanceId"]
    collector = Collector(live.services, {"metrics_interval": 60,
                                          "detailed_metrics_interval": 10})
    with live.app.app_context():
        collector.collect(now=T0)
    vcpus = far.driver.counters()[iid].vcpus
    far.driver.add_usage(iid, cpu_seconds=0.4 * 60 * vcpus,
                         disks={"vda": DiskCounters(write_bytes=1 << 20, write_ops=8)})
    with live.app.app_context():
        collector.collect(now=T0 + 60)
        account = accounts.get_account(accounts.ADMIN_ACCOUNT).id

        def total(name):
            metric_id = store.find(account, "AWS/EC2", name, [["InstanceId", iid]])
            cells = store.cells(metric_id, LEVELS[1], 0, 2 ** 40, None)
            return [(cell.count, cell.total) for _, _, cell in cells]

        assert total("CPUUtilization") == [(1, pytest.approx(40.0))]
        assert total("DiskWriteBytes") == [(1, 1 << 20)]
        assert total("DiskWriteOps") == [(1, 8)]
