"""The command channel: a joined node runs instances for the controller.

The JSON codec of the Node protocol (every record round-trips, the OpenAPI document
describes what it sends), the controller's command queue (answers, deadlines, nodes that
are down, the bound on waiting polls, results refused), and a live controller driving a
node agent on the fake hypervisor (in a thread, as `eucalite serve --node-only` runs it):
launch, reboot, console output, power and volume calls, terminate on the node, a node's
error raised as its own class, a stopped agent failing calls at once and its instances
impaired, the agent back and reconciled, a controller restart that keeps driving the node,
and a node removed by another process forgotten."""
from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from openapi_schema_validator import OAS30Validator

from eucalite.accounts import utcnow
from eucalite.cluster import joining, nodes, wire
from eucalite.cluster.commands import CommandQueue, NodeFailed
from eucalite.cluster.edge.plan import Group, NetworkPlan, Port, Rule
from eucalite.cluster.imagecache import CacheError
from eucalite.cluster.internalapi import document
from eucalite.cluster.node import Endpoint, ImageRef, Launch, Node
from eucalite.cluster.nodeclient import InternalApiError, NodeClient
from eucalite.cluster.remotenode import RemoteNode
from eucalite.cluster.unbundle import CorruptBundle
from eucalite.cluster.virt.driver import DiskCounters, DiskSpec, DomainCounters, DriverError, \
    HostCapacity, NicCounters, NotSupported, PowerState
from eucalite.compute import reconcile
from eucalite.errors import ServiceUnavailable
from eucalite.errors.ec2 import InvalidManifest
from eucalite.errors.node import CommandConflict, CommandNotFound
from agentutil import ZONE, Cloud
from ec2util import make_image, wait_for_state
from serverutil import wait_until

SPEC = document()

DISK = DiskSpec(target="vdc", serial="vol-0123abcd", format="raw", network={
    "protocol": "iscsi", "name": "iqn.2026-12.eucalite:vol-0123abcd/1", "host": "10.0.0.1",
    "port": 3260, "username": "node-far", "password": "s3cret",
    "secret_usage": "eucalite-vol-0123abcd"})
LAUNCH = Launch(
    instance_id="i-0123456789abcdef0", vcpus=2, memory_mb=512, disk_gb=5,
    endpoint=Endpoint("d0:0d:0a:d3:00:05", "10.211.0.5"),
    root_image=ImageRef("emi-0a1b2c3d", "root", "bucket/image.manifest.xml"),
    kernel=ImageRef("eki-0a1b2c3d", "kernel", "bucket/kernel.manifest.xml"),
    ramdisk=ImageRef("eri-0a1b2c3d", "ramdisk", ""),
    volumes=[DISK], images_in_use=["emi-0a1b2c3d", "eki-0a1b2c3d"])
PLAN = NetworkPlan(
    ports=(Port("i-0123456789abcdef0", "eu0ad30005", "d0:0d:0a:d3:00:05", "10.211.0.5",
                "192.0.2.7", ("sg-1", "sg-2")),),
    groups={"sg-1": Group("sg-1", ingress=(Rule("6", 22, 22, cidr="0.0.0.0/0"),
                                           Rule("-1", group="sg-2")),
                          egress=(Rule("-1", cidr="0.0.0.0/0"),)),
            "sg-2": Group("sg-2")},
    members={"sg-2": ("10.211.0.5", "10.211.0.9")})

#: one call of every Node method: (arguments, an answer it may give)
SAMPLES = {
    "capacity": ((), HostCapacity(8, 16384, 200)),
    "domains": ((), {"i-1": PowerState.RUNNING, "i-2": PowerState.SHUTOFF}),
    "power_state": (("i-1",), PowerState.PAUSED),
    "counters": ((), {"i-1": DomainCounters(
        cpu_time_ns=12_000_000_000, vcpus=2,
        disks={"vda": DiskCounters(4096, 8192, 1, 2), "vdb": DiskCounters()},
        nics={"eu0ad30005": NicCounters(rx_bytes=100, tx_bytes=200, rx_packets=1,
                                        tx_packets=2)})}),
    "fetch_image": ((LAUNCH.root_image,), "/var/lib/eucalite/image-cache/emi/root"),
    "spawn": ((LAUNCH,), None),
    "destroy": (("i-1",), None),
    "reboot": (("i-1",), None),
    "shutdown": (("i-1",), None),
    "power_off": (("i-1",), None),
    "power_on": (("i-1",), None),
    "pause": (("i-1",), None),
    "resume": (("i-1",), None),
    "remove_disks": (("i-1",), None),
    "sweep_work": (({"i-1": True, "i-2": False},), ["i-1"]),
    "console_output": (("i-1",), b"\x00boot\xff log\n"),
    "attach_volume": (("i-1", DISK), None),
    "detach_volume": (("i-1", "vdc"), None),
    "resize_volume": (("i-1", "vdc", 2 * 2**30), None),
    "disks": (("i-1",), ["vda", "vdc"]),
    "plug": ((LAUNCH.endpoint,), "eucalite"),
    "unplug": ((LAUNCH.endpoint,), None),
    "apply_network": ((PLAN, True), None),
}


def _valid(schema: dict, value) -> None:
    OAS30Validator({**schema, "components": SPEC["components"]}).validate(value)


# --- the codec ----------------------------------------------------------------------------

def test_every_record_round_trips_through_json():
    for kind, value in ((Launch, LAUNCH), (DiskSpec, DISK), (NetworkPlan, PLAN),
                        (ImageRef, LAUNCH.kernel), (Endpoint, LAUNCH.endpoint),
                        (HostCapacity, HostCapacity(4, 2048, 10)),
                        (PowerState, PowerState.CRASHED),
                        (dict[str, PowerState], {"i-1": PowerState.ABSENT}),
                        (list[str], ["a", "b"]), (bytes, bytes(range(256))),
                        (Launch, Launch("i-2", 1, 128, 1))):
        sent = json.loads(json.dumps(wire.encode(value)))
        assert wire.decode(kind, sent) == value
    # tuples stay tuples (frozen records compare and hash by them)
    assert hash(wire.decode(NetworkPlan, wire.encode(PLAN)).ports[0]) == hash(PLAN.ports[0])


def test_every_method_and_answer_round_trips_and_matches_the_document():
    assert set(SAMPLES) == set(wire.METHODS)
    schemas = SPEC["components"]["schemas"]
    for method, (args, answer) in SAMPLES.items():
        payload = wire.encode_args(method, *args)
        _valid({"$ref": "#/components/schemas/Command"},
               {"id": "cmd-1", "method": method, "args": payload})
        params = [name for name, _, _ in wire.signature(method)[0]]
        assert wire.decode_args(method, payload) == dict(zip(params, args))
        encoded = wire.encode_result(method, answer)
        _valid(schemas[f"Command_{method}"]["x-result"], encoded)
        _valid({"$ref": "#/components/schemas/CommandResult"}, {"result": encoded})
        assert wire.decode_result(method, encoded) == answer


def test_malformed_json_is_refused_naming_where():
    with pytest.raises(wire.WireError, match=r"spawn.launch.vcpus: expected int"):
        wire.decode_args("spawn", {"launch": {**wire.encode(LAUNCH), "vcpus": "2"}})
    with pytest.raises(wire.WireError, match="not a node method"):
        wire.decode_args("__init__", {})
    with pytest.raises(wire.WireError, match="takes no"):
        wire.decode_args("destroy", {"instance_id": "i-1", "force": True})
    with pytest.raises(wire.WireError, match="is not a PowerState"):
        wire.decode_result("power_state", "exploded")


def test_errors_cross_as_their_own_class():
    for error in (DriverError("no such domain"), NotSupported("no hot-plug"),
                  CacheError("disk full"), InvalidManifest("digest mismatch")):
        sent = wire.encode_error(error)
        _valid({"$ref": "#/components/schemas/CommandError"}, sent)
        again = wire.decode_error(sent, "far")
        assert type(again) is type(error) and str(again) == str(error)
    unknown = wire.decode_error({"type": "KeyError", "message": "'x'"}, "far")
    assert type(unknown) is DriverError and "KeyError" in str(unknown)
    assert type(wire.decode_error({"type": 3}, "far")) is DriverError


# --- the queue ----------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _answer(queue, node_id, outcome):
    """A node in a thread: one poll, then the outcome posted for each command taken."""
    def run():
        commands, _ = queue.take(node_id, 5)
        for command in commands:
            queue.complete(node_id, command["id"], **outcome(command))
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_submit_returns_what_the_node_posts():
    queue = CommandQueue(node_timeout=90)
    thread = _answer(queue, "far", lambda c: {"result": [c["method"], c["args"]]})
    assert queue.submit("far", "disks", {"instance_id": "i-1"}, 10) == \
        ["disks", {"instance_id": "i-1"}]
    thread.join()
    thread = _answer(queue, "far", lambda c: {"error": {"type": "NotSupported",
                                                        "message": "no"}})
    with pytest.raises(NodeFailed) as failed:
        queue.submit("far", "detach_volume", {}, 10)
    assert failed.value.error == {"type": "NotSupported", "message": "no"}
    thread.join()


def test_a_node_that_does_not_answer_fails_the_call_at_its_deadline():
    queue = CommandQueue(node_timeout=90)
    with pytest.raises(DriverError, match="did not answer destroy within 0.2 s"):
        queue.submit("far", "destroy", {}, 0.2)
    assert queue.take("far", 0) == ([], None)     # the expired command is not handed out


def test_a_node_down_or_silent_fails_calls_at_once():
    clock = Clock()
    queue = CommandQueue(node_timeout=90, clock=clock)
    waiting = []
    caller = threading.Thread(target=lambda: waiting.append(
        pytest.raises(DriverError, queue.submit, "far", "domains", {}, 600)))
    caller.start()
    wait_until(lambda: queue.queued("far"), "the command to be queued")
    queue.mark_down("far", "no heartbeat for 90 s")
    caller.join()           # the waiting call failed when the node was marked down
    assert "down" in str(waiting[0].value)
    with pytest.raises(DriverError, match="no heartbeat for 90 s"):
        queue.submit("far", "domains", {}, 600)
    queue.take("far", 0)    # it polls again: back
    assert queue.down_reason("far") is None
    clock.now += 91         # and then silent for longer than node_timeout
    with pytest.raises(DriverError, match="has not asked for commands for 91 s"):
        queue.submit("far", "domains", {}, 600)


def test_a_waiting_call_fails_once_its_node_stops_polling():
    """A node that dies after a command was queued: its caller hears it after node_timeout
    without the failure monitor's help, not after the method's whole deadline."""
    clock = Clock()
    queue = CommandQueue(node_timeout=90, clock=clock)
    queue.take("far", 0)        # it polled once, then died
    waiting = []
    caller = threading.Thread(target=lambda: waiting.append(
        pytest.raises(DriverError, queue.submit, "far", "domains", {}, 600)))
    caller.start()
    wait_until(lambda: queue.queued("far"), "the command to be queued")
    clock.now += 91
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert "has not asked for commands for 91 s" in str(waiting[0].value)
    assert queue.queued("far") == []


def test_commands_a_restarted_node_had_taken_fail_and_queued_ones_wait_for_it():
    queue = CommandQueue()
    outcomes = {}

    def call(method):
        try:
            outcomes[method] = queue.submit("far", method, {}, 30)
        except DriverError as error:
            outcomes[method] = error
    spawn = threading.Thread(target=call, args=("spawn",))
    spawn.start()
    wait_until(lambda: queue.queued("far"), "the spawn")
    assert [c["method"] for c in queue.take("far", 0)[0]] == ["spawn"]   # then it dies
    destroy = threading.Thread(target=call, args=("destroy",))
    destroy.start()
    wait_until(lambda: queue.queued("far"), "the destroy")
    queue.restarted("far")              # the node registers again
    spawn.join()
    assert "restarted while running spawn" in str(outcomes["spawn"])
    (command,), _ = queue.take("far", 0)     # the new process gets what was still queued
    queue.complete("far", command["id"], result="done")
    destroy.join()
    assert outcomes["destroy"] == "done"


def test_waiting_polls_are_bounded():
    queue = CommandQueue(max_waiters=1)
    first = threading.Thread(target=queue.take, args=("a", 2))
    first.start()
    wait_until(lambda: queue.waiting_polls() == 1, "the first poll to wait")
    assert queue.take("b", 20) == ([], 2)     # no slot: at once, poll again in 2 s
    first.join()


def test_results_for_unknown_foreign_or_untaken_commands_are_refused():
    queue = CommandQueue()
    with pytest.raises(CommandNotFound):
        queue.complete("far", "cmd-nope", result=None)
    caller = threading.Thread(target=lambda: pytest.raises(
        DriverError, queue.submit, "far", "destroy", {}, 1))
    caller.start()
    command_id = wait_until(lambda: queue.queued("far"), "a command")[0]
    with pytest.raises(CommandConflict, match="not been taken"):
        queue.complete("far", command_id, result=None)
    queue.take("far", 0)
    with pytest.raises(CommandConflict, match="not sent to node other"):
        queue.complete("other", command_id, result=None)
    caller.join()


# --- a live controller and a node agent (tests/agentutil.py) -------------------------------

@pytest.fixture
def cloud(tmp_path):
    cloud = Cloud(tmp_path)
    yield cloud.live, cloud.far
    cloud.far.stop()
    cloud.stop_controller()


@pytest.fixture
def restartable(tmp_path):
    cloud = Cloud(tmp_path)
    yield cloud
    cloud.far.stop()
    cloud.stop_controller()


def _run(live, ec2, image, **kwargs) -> str:
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                    Placement={"AvailabilityZone": ZONE},
                                    **kwargs)["Instances"][0]["InstanceId"]
    wait_for_state(ec2, [instance_id], "running", timeout=30)
    return instance_id


def _status(ec2, instance_id) -> str:
    statuses = ec2.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    return statuses[0]["SystemStatus"]["Status"]


def _pass(live):
    with live.app.app_context():
        return reconcile.reconcile(live.services.cluster, live.services.ebs,
                                   board=live.services.compute.status_board)


def test_the_node_is_a_remote_node(cloud):
    live, far = cloud
    node = live.services.cluster.node_for("far-node")
    assert isinstance(node, RemoteNode) and isinstance(node, Node)
    assert node.uses_host_files is False           # it registered the fake hypervisor
    assert node.domains() == {}
    with live.app.app_context():
        assert node.capacity() == HostCapacity(8, 16384, 200)


def test_an_instance_runs_on_the_joined_node_through_its_lifecycle(cloud):
    live, far = cloud
    ec2 = live.client("ec2")
    instance_id = _run(live, ec2, make_image(live))
    described = ec2.describe_instances(InstanceIds=[instance_id])
    assert described["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"] == ZONE
    assert far.driver.list_domains() == {instance_id: PowerState.RUNNING}

    ec2.reboot_instances(InstanceIds=[instance_id])
    wait_until(lambda: far.driver.history(instance_id) == ["reboot"], "the reboot on the node")
    output = ec2.get_console_output(InstanceId=instance_id)["Output"]   # decoded by boto3
    assert f"fake console for {instance_id} (boot 2)" in output

    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_for_state(ec2, [instance_id], "terminated")
    assert far.driver.list_domains() == {}


def test_power_and_volume_calls_act_on_the_nodes_hypervisor(cloud):
    """What StopInstances/StartInstances, CreateImage and AttachVolume ask of a node (an
    EBS-backed instance on another host needs an iSCSI target: the real multi-host tests
    cover that part)."""
    live, far = cloud
    ec2 = live.client("ec2")
    instance_id = _run(live, ec2, make_image(live))
    node = live.services.cluster.node_for("far-node")
    node.shutdown(instance_id)
    assert node.power_state(instance_id) == PowerState.SHUTOFF
    node.power_on(instance_id)
    node.pause(instance_id)
    assert far.driver.power_state(instance_id) == PowerState.PAUSED
    node.resume(instance_id)
    node.power_off(instance_id)
    assert far.driver.history(instance_id) == ["shutdown", "power_on", "pause", "resume",
                                               "power_off"]
    node.power_on(instance_id)
    node.attach_volume(instance_id, DiskSpec(target="vdc", path="/nowhere/vol.raw",
                                             format="raw", serial="vol-0a1b2c3d"))
    assert node.disks(instance_id) == far.driver.disks(instance_id) == ["vda", "vdc"]
    node.detach_volume(instance_id, "vdc")
    assert node.disks(instance_id) == ["vda"]
    assert node.domains() == {instance_id: PowerState.RUNNING}


def test_a_nodes_error_reaches_the_caller_as_its_class(cloud, monkeypatch):
    live, far = cloud
    node = live.services.cluster.node_for("far-node")
    with pytest.raises(DriverError, match="no such domain"):
        node.reboot("i-00000000000000000")

    def refuses(error):
        def call(*args, **kwargs):
            raise error
        return call
    monkeypatch.setattr(far.agent.node.driver, "attach_disk",
                        refuses(NotSupported("no hot-plug here")))
    with pytest.raises(NotSupported, match="no hot-plug here"):
        node.attach_volume("i-00000000000000000", DISK)
    monkeypatch.setattr(far.agent.node, "fetch_image",
                        refuses(CorruptBundle("part 2 fails its digest")))
    with pytest.raises(CorruptBundle, match="part 2 fails its digest"):
        node.fetch_image(ImageRef("emi-0a1b2c3d", "root", "b/k"))
    monkeypatch.setattr(far.agent.node, "disks", refuses(KeyError("vdz")))
    with pytest.raises(DriverError, match="KeyError"):
        node.disks("i-00000000000000000")


def test_results_for_another_nodes_or_unknown_commands_are_refused(cloud):
    live, far = cloud
    client = NodeClient(live.base_url, far.credentials)
    path = "/nodes/far-node/commands/cmd-unknown/result"
    with pytest.raises(InternalApiError) as refused:
        client.call("POST", path, {"result": None})
    assert (refused.value.status, refused.value.code) == (404, "CommandNotFound")
    with pytest.raises(InternalApiError) as refused:
        client.call("POST", path, {"result": None, "error": {"type": "x", "message": "y"}})
    assert refused.value.status == 400
    with pytest.raises(InternalApiError) as refused:
        client.call("GET", "/nodes/far-node/commands?wait=300")
    assert refused.value.status == 400
    with pytest.raises(InternalApiError) as refused:
        client.call("GET", "/nodes/other-node/commands?wait=0")
    assert refused.value.status == 403


def test_a_stopped_node_fails_calls_at_once_and_is_reconciled_when_back(cloud):
    live, far = cloud
    ec2 = live.client("ec2")
    image = make_image(live)
    kept, ended = _run(live, ec2, image), _run(live, ec2, image)
    node = far.agent.node
    far.stop()
    cluster = live.services.cluster
    with live.app.app_context():        # the failure monitor, node_timeout later
        assert cluster.check_nodes(now=utcnow() + dt.timedelta(seconds=91)) == ["far-node"]
    with pytest.raises(DriverError, match="far-node is down"):
        cluster.node_for("far-node").domains()
    _pass(live)                         # copes: the node is skipped
    assert _status(ec2, kept) == "impaired"
    ec2.terminate_instances(InstanceIds=[ended])     # cannot reach the node meanwhile
    live.services.compute.worker.wait()
    assert ec2.describe_instances(InstanceIds=[ended])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "shutting-down"

    far.start(node)                     # the agent back; its hypervisor kept the domains
    wait_until(lambda: cluster.commands.down_reason("far-node") is None, "the node to poll")
    report = _pass(live)
    assert report.finished_terminations == [ended]
    wait_for_state(ec2, [ended], "terminated")
    assert far.driver.list_domains() == {kept: PowerState.RUNNING}
    _pass(live)
    assert _status(ec2, kept) == "ok"


def test_a_restarted_controller_keeps_driving_the_node(restartable):
    cloud = restartable
    ec2 = cloud.live.client("ec2")
    instance_id = _run(cloud.live, ec2, make_image(cloud.live))
    cloud.restart_controller()
    # driven at once, before the node polls or heartbeats again
    assert "far-node" in cloud.live.services.cluster.attached_ids()
    ec2 = cloud.live.client("ec2")
    ec2.reboot_instances(InstanceIds=[instance_id])
    wait_until(lambda: cloud.far.driver.history(instance_id) == ["reboot"],
               "the reboot on the node")
    assert _pass(cloud.live).vanished == []
    assert _status(ec2, instance_id) == "ok"
    second = _run(cloud.live, ec2, make_image(cloud.live, "emi-0a1b2c3e"))
    assert set(cloud.far.driver.list_domains()) == {instance_id, second}
    ec2.terminate_instances(InstanceIds=[instance_id, second])
    wait_for_state(ec2, [instance_id, second], "terminated")
    assert cloud.far.driver.list_domains() == {}


def test_a_node_removed_elsewhere_is_forgotten_and_its_agent_stops(cloud):
    live, far = cloud
    cluster = live.services.cluster
    with live.app.app_context():        # `eucalite node remove` in another process
        nodes.remove("far-node")
        joining.revoke("far-node")
        cluster.check_nodes()
    assert "far-node" not in cluster.attached_ids()
    with pytest.raises(ServiceUnavailable):
        cluster.node_for("far-node")
    far.thread.join(timeout=30)         # its next request is refused: the agent ends
    assert far.status == [1]
