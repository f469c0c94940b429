"""Volumes attach to instances on a node on another host over iSCSI with that node's own
CHAP account (ebs/service.py exporter_for, ebs/export per-node accounts).

The choice, on a live cloud with node duty on the fake hypervisor, volumes exported as local
files by config, and a second node under another id (what a joined host is to the storage
controller): its instance's volume goes over iSCSI at ``storage_address`` with the node's
account (LIO, on an in-memory rtslib); this host's instance's stays a local file. Then the
binding on the real tgtd (127.0.0.1:3260, QEMU's own initiator): node A's account logs in
to A's volumes' targets only, and loses a target when its volume is detached or moved.
Last, AttachVolume through the command channel to a joined node's agent, and an EBS-backed
instance that boots, stops and starts there from its root volume over iSCSI."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from awsutil import error_code
from ebsutil import file_volumes_only, new_volume, settle, volume
from ec2util import make_image, wait_for_state
from liveutil import start_live_node, stop_live
from test_ebs_export import fake_rtslib, tgtd  # noqa: F401 - tgtd is a fixture used below
from agentutil import ZONE, Cloud, Far
from serverutil import wait_until

from eucalite.cluster import network, nodes
from eucalite.cluster.localnode import LocalNode
from eucalite.cluster.virt.driver import HostCapacity
from eucalite.cluster.virt.fake import FakeDriver
from eucalite.ebs.export import base, tgt

STORAGE_ADDRESS = "192.0.2.10"          # TEST-NET-1: nothing here connects to it
REMOTE = "node-r"

pytestmark = file_volumes_only
MIB = 1024 * 1024


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    """(live, the fake rtslib): this host's node and REMOTE, one instance on each
    ({node id: instance id} at ``live.instances``), the DiskSpecs the nodes are given for
    volumes recorded (``live.plugged``)."""
    rtslib = fake_rtslib()
    monkeypatch.setitem(sys.modules, "rtslib_fb", rtslib)
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                                   storage_address=STORAGE_ADDRESS, max_volume_gb=10)
    config, cluster = live.app.config["EUCALITE"], live.services.cluster
    with live.app.app_context():
        nodes.register(REMOTE, config["zones"][0], HostCapacity(8, 16384, 200), "fake://")
    driver = FakeDriver()
    driver.ensure_network(network.spec(config))
    cluster.attach(LocalNode(REMOTE, driver, cluster.image_cache, config, None))
    live.plugged = {}           # volume serial -> the DiskSpec a node was given
    for node in cluster.reachable():
        monkeypatch.setattr(node, "attach_volume", _recording(node.attach_volume,
                                                              live.plugged))
    ec2 = live.client("ec2")
    image = make_image(live)
    live.instances = {}
    for node_id in (cluster.local_node_id, REMOTE):
        with live.app.app_context():
            for other in (cluster.local_node_id, REMOTE):
                cluster.set_node_state(other, "enabled" if other == node_id else "disabled")
        instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        wait_for_state(ec2, [instance_id], "running")
        live.instances[node_id] = instance_id
    yield live, rtslib
    stop_live(live, server)


def _recording(attach, plugged: dict):
    def attach_volume(instance_id, disk):
        attach(instance_id, disk)
        plugged[disk.serial] = disk
    return attach_volume


def _attach(live, ec2, instance_id: str, device: str) -> str:
    volume_id = new_volume(live, ec2)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
    settle(live)
    assert volume(ec2, volume_id)["Attachments"][0]["State"] == "attached"
    return volume_id


def _node_account(live, node_id: str) -> dict:
    path = Path(live.app.config["EUCALITE"]["data_dir"]) / "exports" / "nodes" / \
        f"{node_id}.json"
    return json.loads(path.read_text())


def _plugged(live, instance_id: str, volume_id: str):
    """The DiskSpec the node of *instance_id* was given for *volume_id* (now plugged)."""
    disk = live.plugged[base.serial_for(volume_id)]
    assert disk.target in live.services.cluster.node_for(
        _node_of(live, instance_id)).disks(instance_id)
    return disk


def _node_of(live, instance_id: str) -> str:
    return next(node for node, instance in live.instances.items() if instance == instance_id)


def test_a_remote_nodes_volume_goes_over_iscsi_with_the_nodes_account(cloud):
    live, rtslib = cloud
    ec2 = live.client("ec2")
    instance_id = live.instances[REMOTE]
    first = _attach(live, ec2, instance_id, "/dev/sdf")
    second = _attach(live, ec2, instance_id, "/dev/sdg")
    account = _node_account(live, REMOTE)
    assert account["username"] == base.NODE_USER_PREFIX + REMOTE
    for volume_id in (first, second):
        disk = _plugged(live, instance_id, volume_id)
        assert disk.path is None and disk.network["protocol"] == "iscsi"
        assert (disk.network["host"], disk.network["port"]) == (STORAGE_ADDRESS, 3260)
        assert disk.network["name"] == f"{base.iqn_for(volume_id)}/0"
        # one account per node, whatever the volume
        assert (disk.network["username"], disk.network["password"]) == \
            (account["username"], account["password"])
        tpg = rtslib.targets[base.iqn_for(volume_id)].tpgs[0]
        assert (tpg.chap_userid, tpg.chap_password) == \
            (account["username"], account["password"])
    # detached: the target (and with it the account's binding) is gone
    ec2.detach_volume(VolumeId=first)
    settle(live)
    assert volume(ec2, first)["State"] == "available"
    assert base.iqn_for(first) not in rtslib.targets
    assert base.iqn_for(second) in rtslib.targets


def test_this_hosts_volume_stays_a_local_file(cloud):
    live, rtslib = cloud
    ec2 = live.client("ec2")
    instance_id = live.instances[live.services.cluster.local_node_id]
    volume_id = _attach(live, ec2, instance_id, "/dev/sdf")
    disk = _plugged(live, instance_id, volume_id)
    assert disk.network is None
    assert disk.path == str(live.services.ebs.path(volume_id))
    assert rtslib.targets == {}


def test_a_remote_attach_without_any_iscsi_target_is_refused_up_front(cloud, monkeypatch):
    live, _rtslib = cloud
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake_rtslib(kernel_target=False))
    monkeypatch.setattr(tgt.TgtExport, "problem", lambda self: "tgt is not installed")
    ec2 = live.client("ec2")
    volume_id = new_volume(live, ec2)
    assert error_code(ec2.attach_volume, VolumeId=volume_id, Device="/dev/sdf",
                      InstanceId=live.instances[REMOTE]) == "Unsupported"
    assert volume(ec2, volume_id)["State"] == "available"


def test_the_start_banner_warns_when_nodes_cannot_reach_a_loopback_portal(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local")
    try:
        assert "WARNING" not in live.services.ebs.describe_export()
        with live.app.app_context():
            nodes.register(REMOTE, live.app.config["EUCALITE"]["zones"][0],
                           HostCapacity(1, 1024, 10))
        line = live.services.ebs.describe_export()
        assert "WARNING" in line and "127.0.0.1" in line and REMOTE in line
        assert "storage_address" in line
    finally:
        stop_live(live, server)


# --- the per-node binding on the real tgtd ------------------------------------------------

def _volume_file(directory: Path, seed: int) -> tuple[str, str, bytes]:
    """(volume id, path, its first 512 bytes) of a new 16 MiB volume file."""
    volume_id = "vol-" + uuid.uuid4().hex[:17]
    path = directory / f"{volume_id}.raw"
    head = random.Random(seed).randbytes(512)
    with open(path, "wb") as f:
        f.write(head)
        f.truncate(16 * MIB)
    path.chmod(0o644)
    return volume_id, str(path), head


def _login_read(record: dict, user: str, password: str) -> bytes | None:
    """The first 512 bytes of *record*'s target read with QEMU's initiator logged in as
    *user*/*password*, or None when the login (or read) is refused."""
    opts = ",".join([
        "driver=raw", "file.driver=iscsi", "file.transport=tcp",
        f"file.portal={record['host']}:{record['port']}", f"file.target={record['iqn']}",
        f"file.lun={record['lun']}", f"file.user={user}", "file.password-secret=s0"])
    done = subprocess.run(["qemu-io", "-r", "--object", f"secret,id=s0,data={password}",
                           "--image-opts", opts, "-c", "read -v 0 512"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or "read 512/512" not in done.stdout:
        return None
    data = bytearray()
    for line in done.stdout.splitlines():
        if len(line) > 10 and line[8:10] == ": ":
            data += bytes.fromhex(line[10:58].replace(" ", ""))
    return bytes(data)


@pytest.fixture
def exporter(tgtd, tmp_path):  # noqa: F811 - the fixture imported above
    if shutil.which("qemu-io") is None:
        pytest.skip("qemu-utils is not installed (apt install qemu-utils qemu-block-extra)")
    made = tgt.TgtExport(str(tmp_path / "tgt-state"), portal="127.0.0.1:3260",
                         node_accounts=base.NodeAccounts(str(tmp_path / "nodes")))
    mine: list[str] = []
    run = uuid.uuid4().hex[:8]              # tgtd outlives the test: names of this run
    nodes_made = [f"a-{run}", f"b-{run}"]
    yield made, mine, nodes_made
    for volume_id in made.exported() & set(mine):
        made.remove_export(volume_id, {})
    for node_id in nodes_made:
        subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "account",
                        "--user", base.NODE_USER_PREFIX + node_id], capture_output=True)


def test_a_nodes_account_logs_in_only_to_its_own_volumes_targets(exporter, tmp_path):
    made, mine, (node_a, node_b) = exporter
    vol_a, path_a, head_a = _volume_file(tmp_path, 1)
    vol_a2, path_a2, head_a2 = _volume_file(tmp_path, 2)
    vol_b, path_b, head_b = _volume_file(tmp_path, 3)
    mine += [vol_a, vol_a2, vol_b]
    rec_a = made.create_export(vol_a, path_a, node_id=node_a)
    rec_a2 = made.create_export(vol_a2, path_a2, node_id=node_a)
    rec_b = made.create_export(vol_b, path_b, node_id=node_b)
    creds_a = (rec_a["username"], rec_a["password"])
    creds_b = (rec_b["username"], rec_b["password"])
    assert (rec_a2["username"], rec_a2["password"]) == creds_a != creds_b
    assert rec_a["node_id"] == node_a

    assert _login_read(rec_a, *creds_a) == head_a
    assert _login_read(rec_a2, *creds_a) == head_a2
    assert _login_read(rec_b, *creds_b) == head_b
    # A's account on B's target, and B's on A's: refused
    assert _login_read(rec_b, *creds_a) is None
    assert _login_read(rec_a, *creds_b) is None

    # the same export again changes nothing
    assert made.create_export(vol_a, path_a, node_id=node_a) == rec_a

    # detached: A loses that target and keeps the other
    made.remove_export(vol_a2, rec_a2)
    assert _login_read(rec_a2, *creds_a) is None
    assert _login_read(rec_a, *creds_a) == head_a

    # the volume moves to an instance on B: A is shut out, B gets in with its own account
    moved = made.create_export(vol_a, path_a, node_id=node_b)
    assert (moved["username"], moved["password"]) == creds_b
    assert _login_read(moved, *creds_a) is None
    assert _login_read(moved, *creds_b) == head_a
    # A has no target left: its account is gone from tgtd (its secret stays saved)
    assert creds_a[0] not in _tgt_accounts()
    assert creds_b[0] in _tgt_accounts()
    made.remove_export(vol_b, rec_b)
    assert creds_b[0] in _tgt_accounts()            # still bound to the moved volume
    made.remove_export(vol_a, moved)
    assert creds_b[0] not in _tgt_accounts()
    again = made.create_export(vol_b, path_b, node_id=node_b)
    assert (again["username"], again["password"]) == creds_b
    assert _login_read(again, *creds_b) == head_b


def _tgt_accounts() -> set[str]:
    return tgt.parse_accounts(subprocess.run(
        ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "account"],
        capture_output=True, text=True, check=True).stdout)


def test_a_node_keeps_its_secret_when_tgtd_forgets_everything(exporter, tmp_path):
    """tgtd keeps targets and accounts in memory: after it restarts, the export is made
    again with the node's same account, so the node's initiator (and the libvirt secret it
    holds) still logs in."""
    made, mine, (node_a, _node_b) = exporter
    volume_id, path, head = _volume_file(tmp_path, 4)
    mine.append(volume_id)
    record = made.create_export(volume_id, path, node_id=node_a)
    subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "target",
                    "--tid", str(record["tid"]), "--force"], check=True)
    subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "account",
                    "--user", record["username"]], check=True)
    again = made.create_export(volume_id, path, node_id=node_a)
    assert (again["username"], again["password"]) == (record["username"], record["password"])
    assert _login_read(again, again["username"], again["password"]) == head


# --- through the command channel to a joined node's agent ---------------------------------

@pytest.fixture
def joined(tmp_path, monkeypatch):
    """(a controller with a node joined in ZONE on the fake hypervisor, volumes exported by
    LIO on an in-memory rtslib at STORAGE_ADDRESS, that rtslib)."""
    rtslib = fake_rtslib()
    monkeypatch.setitem(sys.modules, "rtslib_fb", rtslib)
    monkeypatch.setenv("EUCALITE_STORAGE_ADDRESS", STORAGE_ADDRESS)
    cloud = Cloud(tmp_path)
    yield cloud, rtslib
    cloud.far.stop()
    cloud.stop_controller()


def test_attach_volume_reaches_a_joined_nodes_agent_over_iscsi(joined, monkeypatch):
    """AttachVolume on an instance of a joined node (a node agent on the fake hypervisor,
    driven through its command channel): the agent's hypervisor gets the iSCSI disk at
    storage_address with the node's account; DetachVolume unplugs it and drops the target."""
    cloud, rtslib = joined
    live, far = cloud.live, cloud.far
    ec2 = live.client("ec2")
    instance_id = ec2.run_instances(ImageId=make_image(live), MinCount=1, MaxCount=1,
                                    Placement={"AvailabilityZone": ZONE})[
        "Instances"][0]["InstanceId"]
    wait_for_state(ec2, [instance_id], "running", timeout=30)
    volume_id = ec2.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
    live.services.compute.worker.wait(timeout=60)
    plugged = {}
    monkeypatch.setattr(far.agent.node, "attach_volume",
                        _recording(far.agent.node.attach_volume, plugged))
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    live.services.compute.worker.wait(timeout=60)
    assert volume(ec2, volume_id)["Attachments"][0]["State"] == "attached"
    disk = plugged[base.serial_for(volume_id)]
    assert disk.target in far.driver.disks(instance_id)
    account = _node_account(live, "far-node")
    assert (disk.network["host"], disk.network["username"], disk.network["password"]) \
        == (STORAGE_ADDRESS, account["username"], account["password"])
    ec2.detach_volume(VolumeId=volume_id)
    live.services.compute.worker.wait(timeout=60)
    assert volume(ec2, volume_id)["State"] == "available"
    assert disk.target not in far.driver.disks(instance_id)
    assert base.iqn_for(volume_id) not in rtslib.targets


def test_a_node_that_joins_again_under_its_name_gets_a_new_secret(tmp_path, monkeypatch):
    """A node removed and joined again under the same name is another host: its volumes'
    targets open to a new secret, never to the one the host that left knew."""
    monkeypatch.setitem(sys.modules, "rtslib_fb", fake_rtslib())
    cloud = Cloud(tmp_path)
    live = cloud.live
    ec2 = live.client("ec2")
    image = make_image(live)

    def attach_one() -> tuple[str, str]:
        instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                        Placement={"AvailabilityZone": ZONE})[
            "Instances"][0]["InstanceId"]
        wait_for_state(ec2, [instance_id], "running", timeout=30)
        volume_id = ec2.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
        live.services.compute.worker.wait(timeout=60)
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
        live.services.compute.worker.wait(timeout=60)
        assert volume(ec2, volume_id)["Attachments"][0]["State"] == "attached"
        return instance_id, _node_account(live, "far-node")["password"]

    try:
        (one, first), (two, again) = attach_one(), attach_one()
        assert again == first                           # the same node keeps its secret
        ec2.terminate_instances(InstanceIds=[one, two])
        wait_for_state(ec2, [one, two], "terminated")
        live.services.compute.worker.wait(timeout=60)
        with live.app.app_context():
            live.services.cluster.remove_node("far-node")
        cloud.far.stop()
        cloud.far = Far(live, tmp_path / "new-host", name="far-node")
        wait_until(lambda: "far-node" in live.services.cluster.attached_ids(),
                   "the node to attach again")
        assert attach_one()[1] != first
    finally:
        cloud.far.stop()
        cloud.stop_controller()


def test_an_ebs_backed_instance_boots_stops_and_starts_on_a_joined_node(joined, monkeypatch):
    """An EBS root on a joined node: its spawn carries the root over iSCSI at
    storage_address with the node's account; Stop gives the node's capacity back and keeps
    the root attached; Start boots it there again from the same volume."""
    cloud, _ = joined
    live, far = cloud.live, cloud.far
    ec2 = live.client("ec2")
    source = ec2.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
    settle(live)
    snapshot = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0][
        "State"] == "completed", "the snapshot", timeout=60)
    image = ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snapshot}}])["ImageId"]
    spawned = []
    monkeypatch.setattr(far.agent.node, "spawn",
                        _recording_spawn(far.agent.node.spawn, spawned))
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                    Placement={"AvailabilityZone": ZONE})[
        "Instances"][0]["InstanceId"]
    wait_for_state(ec2, [instance_id], "running", timeout=30)
    root = spawned[-1].root_volume
    account = _node_account(live, "far-node")
    assert (root.target, root.network["host"], root.network["username"]) == \
        ("vda", STORAGE_ADDRESS, account["username"])
    assert instance_id in far.driver.list_domains()

    ec2.stop_instances(InstanceIds=[instance_id])
    wait_for_state(ec2, [instance_id], "stopped", timeout=30)
    assert instance_id not in far.driver.list_domains()
    [mapping] = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["BlockDeviceMappings"]
    assert volume(ec2, mapping["Ebs"]["VolumeId"])["State"] == "in-use"

    ec2.start_instances(InstanceIds=[instance_id])
    wait_for_state(ec2, [instance_id], "running", timeout=30)
    assert instance_id in far.driver.list_domains()
    assert spawned[-1].root_volume.serial == root.serial       # the same volume


def _recording_spawn(spawn, launches: list):
    def recorded(launch):
        launches.append(launch)
        return spawn(launch)
    return recorded
