"""EBS on Ceph RBD (issue 20), on the throwaway Ceph cluster of the test command
(tests/ceph/cluster.sh; skipped without it) and the fake hypervisor: volumes are RBD images
in the pool, snapshots kept in Ceph are protected RBD snapshots and volumes made from them
copy-on-write clones (checked on the pool itself); removal is deferred while clones or
snapshots still need an image; snapshots kept in the object store cross backends both ways;
an attached volume is a network disk QEMU opens with librbd, its cephx key in a libvirt
secret and never in the domain XML; a cloud whose Ceph is missing or unreachable still
serves, and CreateVolume says what to fix.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import cephutil
import pytest
from awsutil import error_code
from cephutil import needs_ceph
from ebsutil import (read_volume, running_instance, settle, volume, volume_backing,
                     volume_digest, wait_snapshot, write_pattern)
from liveutil import start_live_node, stop_live

from eucalite import ceph
from eucalite.cluster.virt import domain_xml
from eucalite.db import db
from eucalite.ebs.models import Snapshot, Volume

MiB = 2**20
ZONE = "eucalyptus-1a"


def _cloud(tmp_path, **options):
    return start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                           max_volume_gb=100, max_total_volume_gb=150, **options)


@pytest.fixture
def rbd_cloud(tmp_path):
    """A live cloud (fake hypervisor) whose new volumes are RBD images in the test pool,
    their snapshots kept in Ceph."""
    live, server = _cloud(tmp_path, rbd_snapshots="ceph", **cephutil.rbd_options())
    yield live
    stop_live(live, server)


@pytest.fixture
def pool():
    """The test pool, read directly with the rbd bindings: image name -> its facts."""
    rados, rbd = cephutil.rados_modules()
    cluster = rados.Rados(conffile=cephutil.CONF, rados_id=cephutil.USER,
                          conf={"keyring": cephutil.KEYRING})
    cluster.connect(timeout=10)
    ioctx = cluster.open_ioctx(cephutil.POOL)

    class Pool:
        def names(self) -> set[str]:
            return set(rbd.RBD().list(ioctx))

        def image(self, name: str) -> dict:
            """size, snaps {name: protected}, parent (image, snap) or None."""
            with rbd.Image(ioctx, name, read_only=True) as image:
                snaps = {s["name"]: image.is_protected_snap(s["name"])
                         for s in image.list_snaps()}
                try:
                    spec = image.get_parent_image_spec()
                    parent = (spec["image_name"], spec["snap_name"])
                except rbd.ImageNotFound:
                    parent = None
                return {"size": image.size(), "snaps": snaps, "parent": parent}
    yield Pool()
    ioctx.close()
    cluster.shutdown()


def _row(live, model, row_id):
    with live.app.app_context():
        row = db.session.get(model, row_id)
        return None if row is None else {"backend": row.backend,
                                         "stored": getattr(row, "stored_bytes", None)}


def _new(live, ec2, **kwargs) -> str:
    volume_id = ec2.create_volume(AvailabilityZone=ZONE, **kwargs)["VolumeId"]
    settle(live)
    assert volume(ec2, volume_id)["State"] == "available", volume(ec2, volume_id)
    return volume_id


@needs_ceph
def test_volumes_are_images_and_snapshots_clone_copy_on_write(rbd_cloud, pool):
    ec2 = rbd_cloud.client("ec2")
    source = _new(rbd_cloud, ec2, Size=1)
    assert _row(rbd_cloud, Volume, source)["backend"] == "rbd"
    assert source in pool.names()
    assert pool.image(source) == {"size": 2**30, "snaps": {}, "parent": None}
    assert volume_backing(rbd_cloud, source).usage(source)[1] == 0     # sparse
    pattern = os.urandom(3 * MiB)
    write_pattern(rbd_cloud, source, 7 * MiB, pattern)

    snapshot_id = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    assert wait_snapshot(rbd_cloud, ec2, snapshot_id)["State"] == "completed"
    assert _row(rbd_cloud, Snapshot, snapshot_id) == {"backend": "rbd", "stored": 0}
    assert pool.image(source)["snaps"] == {snapshot_id: True}           # protected
    write_pattern(rbd_cloud, source, 7 * MiB, b"changed after the snapshot")

    # a bigger volume from the snapshot: a clone of it, grown, holding the snapshot's data
    clone = _new(rbd_cloud, ec2, SnapshotId=snapshot_id, Size=2)
    assert pool.image(clone) == {"size": 2 * 2**30, "snaps": {},
                                 "parent": (source, snapshot_id)}
    assert read_volume(rbd_cloud, clone, 7 * MiB, len(pattern)) == pattern
    assert read_volume(rbd_cloud, clone, 2**30, MiB) == bytes(MiB)      # the grown part

    # the source goes: its image stays, hidden, while its snapshot exists
    ec2.delete_volume(VolumeId=source)
    settle(rbd_cloud)
    assert error_code(lambda: volume(ec2, source)) == "InvalidVolume.NotFound"
    assert source in pool.names()
    again = _new(rbd_cloud, ec2, SnapshotId=snapshot_id)      # the snapshot still restores
    assert read_volume(rbd_cloud, again, 7 * MiB, len(pattern)) == pattern
    # the snapshot goes: its RBD snapshot stays while clones use it
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert error_code(lambda: ec2.describe_snapshots(SnapshotIds=[snapshot_id])) == \
        "InvalidSnapshot.NotFound"
    assert snapshot_id in pool.image(source)["snaps"]
    assert read_volume(rbd_cloud, clone, 7 * MiB, len(pattern)) == pattern
    ec2.delete_volume(VolumeId=clone)
    settle(rbd_cloud)
    assert clone not in pool.names() and snapshot_id in pool.image(source)["snaps"]
    # the last clone goes: the snapshot and the hidden source image go with it
    ec2.delete_volume(VolumeId=again)
    settle(rbd_cloud)
    assert not pool.names() & {source, clone, again}


@needs_ceph
def test_snapshots_in_the_object_store_cross_backends(tmp_path, pool):
    """rbd_snapshots = objectstore: an RBD volume's snapshot is chunks in the object store,
    restored into an RBD image (no clone) or a file; a file volume's snapshot restores into
    RBD; an RBD snapshot kept in Ceph restores into a file volume."""
    live, server = _cloud(tmp_path, rbd_snapshots="objectstore", **cephutil.rbd_options())
    try:
        ec2 = live.client("ec2")
        config = live.services.ebs.config
        on_rbd = _new(live, ec2, Size=1)
        write_pattern(live, on_rbd, 5 * MiB, b"rbd data " * 1000)
        chunked = ec2.create_snapshot(VolumeId=on_rbd)["SnapshotId"]
        assert wait_snapshot(live, ec2, chunked)["State"] == "completed"
        assert _row(live, Snapshot, chunked)["backend"] == "objectstore"
        assert _row(live, Snapshot, chunked)["stored"] > 0
        assert pool.image(on_rbd)["snaps"] == {}        # the copy's RBD snapshot is gone
        restored = _new(live, ec2, SnapshotId=chunked)
        assert pool.image(restored)["parent"] is None            # written, not cloned
        assert volume_digest(live, restored) == volume_digest(live, on_rbd)

        # attached: the guest is held for an RBD snapshot only; the copy is read from it
        instance_id = running_instance(live, ec2)
        ec2.attach_volume(VolumeId=on_rbd, InstanceId=instance_id, Device="/dev/sdf")
        settle(live)
        write_pattern(live, on_rbd, 600 * MiB, b"while attached")
        held = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=on_rbd)["SnapshotId"])
        assert held["State"] == "completed" and pool.image(on_rbd)["snaps"] == {}
        write_pattern(live, on_rbd, 600 * MiB, b"after the snapshot")
        from_held = _new(live, ec2, SnapshotId=held["SnapshotId"])
        assert read_volume(live, from_held, 600 * MiB, 14) == b"while attached"
        ec2.detach_volume(VolumeId=on_rbd)
        settle(live)

        config["rbd_snapshots"] = "ceph"
        kept = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=on_rbd)["SnapshotId"])
        assert _row(live, Snapshot, kept["SnapshotId"])["backend"] == "rbd"

        config["ebs_backend"] = "file"                  # new volumes in files from here
        as_file = _new(live, ec2, SnapshotId=chunked)
        from_ceph = _new(live, ec2, SnapshotId=kept["SnapshotId"], Size=2)
        assert _row(live, Volume, as_file)["backend"] == "file"
        assert volume_digest(live, as_file) == volume_digest(live, restored)
        assert volume_backing(live, from_ceph).usage(from_ceph)[0] == 2 * 2**30
        assert read_volume(live, from_ceph, 5 * MiB, 9000) == b"rbd data " * 1000
        write_pattern(live, as_file, 0, b"file data")
        file_snapshot = wait_snapshot(live, ec2,
                                      ec2.create_snapshot(VolumeId=as_file)["SnapshotId"])
        assert _row(live, Snapshot, file_snapshot["SnapshotId"])["backend"] == "objectstore"

        config["ebs_backend"] = "rbd"
        back = _new(live, ec2, SnapshotId=file_snapshot["SnapshotId"])
        assert _row(live, Volume, back)["backend"] == "rbd" and back in pool.names()
        assert volume_digest(live, back) == volume_digest(live, as_file)
        for volume_id in (on_rbd, restored, from_held, as_file, from_ceph, back):
            ec2.delete_volume(VolumeId=volume_id)
        settle(live)
        for snapshot_id in (chunked, held["SnapshotId"], kept["SnapshotId"],
                            file_snapshot["SnapshotId"]):
            ec2.delete_snapshot(SnapshotId=snapshot_id)
        assert not pool.names() & {on_rbd, restored, from_held, back}
    finally:
        stop_live(live, server)


@needs_ceph
def test_an_attached_volume_is_a_librbd_disk_whose_key_is_no_part_of_the_xml(rbd_cloud):
    ec2 = rbd_cloud.client("ec2")
    instance_id = running_instance(rbd_cloud, ec2)
    volume_id = _new(rbd_cloud, ec2, Size=1)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    settle(rbd_cloud)
    assert volume(ec2, volume_id)["Attachments"][0]["State"] == "attached"
    with rbd_cloud.app.app_context():
        export = db.session.get(Volume, volume_id).get_json("export")
    assert export["driver"] == "rbd" and export["image"] == volume_id
    exporter = rbd_cloud.services.ebs.driver_of(export)
    spec = exporter.disk_spec(volume_id, export, "", "vdc")
    key = ceph.cephx_key(cephutil.rbd_options())
    assert spec.network["password"] == key              # handed to the node's libvirt ...
    xml = domain_xml.disk_xml(spec)
    assert key not in xml                               # ... never written in the XML
    disk = ET.fromstring(xml)
    source = disk.find("source")
    assert (source.get("protocol"), source.get("name")) == ("rbd", f"{cephutil.POOL}/{volume_id}")
    assert [host.get("name") for host in source.findall("host")] == ["127.0.0.1"]
    assert source.find("auth").get("username") == cephutil.USER
    secret = source.find("auth/secret")
    assert secret.get("type") == "ceph" and secret.get("usage") == export["secret_usage"]
    assert disk.findtext("serial") == volume_id.replace("-", "")
    ec2.detach_volume(VolumeId=volume_id)
    settle(rbd_cloud)
    assert volume(ec2, volume_id)["State"] == "available"


def test_a_cloud_without_its_ceph_serves_and_create_volume_says_what_to_fix(tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\nmon host = 127.0.0.1:9\n")      # nothing listens there
    keyring = tmp_path / "keyring"
    keyring.write_text("[client.eucalite]\n\tkey = AQCcLBVrCZZ4NBAAHHP7P1IwFDDo5R1/vceNbQ==\n")
    live, server = _cloud(tmp_path, ebs_backend="rbd", ceph_conf=str(conf),
                          ceph_keyring=str(keyring), rbd_pool="volumes")
    try:
        ceph.modules()
        why = f"cannot connect to the Ceph cluster of {conf} as client.eucalite"
    except ceph.CephUnavailable:                    # a host without Debian's bindings
        why = "the Ceph Python bindings are missing"
    try:
        ebs = live.services.ebs
        line = ebs.describe_backend()
        assert line.startswith(f"volumes as RBD images in pool volumes of the Ceph cluster "
                               f"in {conf} (UNREACHABLE: {why}")
        ec2 = live.client("ec2")
        assert ec2.describe_volumes()["Volumes"] == []             # still serving
        with pytest.raises(Exception) as caught:
            ec2.create_volume(Size=1, AvailabilityZone=ZONE)
        error = caught.value.response["Error"]
        assert error["Code"] == "Unsupported"
        assert why in error["Message"]
        assert ec2.describe_volumes()["Volumes"] == []             # nothing half-made

        ebs.config["ceph_conf"] = str(tmp_path / "missing.conf")
        ebs._backings.clear()
        if "bindings" not in why:
            assert "UNREACHABLE: no Ceph config file" in ebs.describe_backend()
        ebs.config["ebs_backend"] = "file"
        assert ebs.describe_backend() == f"volumes in files under {ebs.volumes_dir}"
    finally:
        stop_live(live, server)


def test_monitor_addresses_for_libvirt():
    class Conf:
        def __init__(self, text):
            self.text = text

        def conf_get(self, _name):
            return self.text
    assert ceph.mon_hosts(Conf("[v2:10.0.0.1:3300,v1:10.0.0.1:6789],[v2:10.0.0.2:3300]")) \
        == [("10.0.0.1", 6789), ("10.0.0.2", 3300)]
    assert ceph.mon_hosts(Conf("10.0.0.1, 10.0.0.2:6790")) == [("10.0.0.1", 6789),
                                                              ("10.0.0.2", 6790)]
    assert ceph.mon_hosts(Conf("v2:127.0.0.1:37923")) == [("127.0.0.1", 37923)]


@needs_ceph
def test_the_console_shows_which_backend_holds_a_volume(tmp_path):
    from consoleutil import Console, console_app

    app = console_app(tmp_path, **cephutil.rbd_options())
    try:
        admin = Console(app)
        assert "<th>Backend</th>" in admin.text("/console/volumes")
        admin.page("/console/volumes/create", {"size": "1", "zone": ZONE})
        app.extensions["eucalite"].config["ebs_backend"] = "file"
        admin.page("/console/volumes/create", {"size": "1", "zone": ZONE})
        app.extensions["eucalite"].compute.worker.wait(timeout=60)
        with app.app_context():
            made = {row.id: row.backend for row in db.session.execute(
                db.select(Volume)).scalars()}
        rows = admin.text("/console/volumes/rows")
        assert sorted(made.values()) == ["file", "rbd"]
        for volume_id, backend in made.items():
            shown = {"rbd": "Ceph RBD", "file": "file"}[backend]
            row = rows[rows.index(f'<tr data-id="{volume_id}">'):]
            assert row[:row.index("</tr>")].count(f'<td class="backend">{shown}</td>') == 1
            admin.page(f"/console/volumes/{volume_id}/delete")
        app.extensions["eucalite"].compute.worker.wait(timeout=60)
    finally:
        app.extensions["eucalite"].compute.worker.shutdown()


@needs_ceph
def test_a_node_on_another_host_opens_the_image_itself_without_iscsi(tmp_path, monkeypatch):
    """An instance on a node on another host gets the same librbd disk as this host's: no
    iSCSI target (none can run here: no LIO, no tgtd), no node CHAP account."""
    from ec2util import make_image, wait_for_state

    from eucalite.cluster import network, nodes
    from eucalite.cluster.localnode import LocalNode
    from eucalite.cluster.virt.driver import HostCapacity
    from eucalite.cluster.virt.fake import FakeDriver
    from eucalite.ebs.export import lio, tgt

    monkeypatch.setattr(tgt.TgtExport, "problem", lambda self: "tgt is not installed")
    monkeypatch.setattr(lio.LioExport, "problem", lambda self: "LIO is not available")
    live, server = _cloud(tmp_path, storage_address="192.0.2.10", **cephutil.rbd_options())
    try:
        config, cluster = live.app.config["EUCALITE"], live.services.cluster
        with live.app.app_context():
            nodes.register("node-far", config["zones"][0], HostCapacity(8, 16384, 200),
                           "fake://")
            cluster.set_node_state(cluster.local_node_id, "disabled")
        driver = FakeDriver()
        driver.ensure_network(network.spec(config))
        far = LocalNode("node-far", driver, cluster.image_cache, config, None)
        cluster.attach(far)
        plugged = []
        attach = far.attach_volume
        monkeypatch.setattr(far, "attach_volume",
                            lambda iid, disk: (attach(iid, disk), plugged.append(disk)))
        ec2 = live.client("ec2")
        instance_id = ec2.run_instances(ImageId=make_image(live), MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        wait_for_state(ec2, [instance_id], "running")
        volume_id = _new(live, ec2, Size=1)
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
        settle(live)
        assert volume(ec2, volume_id)["Attachments"][0]["State"] == "attached"
        [disk] = plugged
        assert disk.network["protocol"] == "rbd"
        assert disk.network["name"] == f"{cephutil.POOL}/{volume_id}"
        assert disk.target in driver.disks(instance_id)
        data_dir = live.app.config["EUCALITE"]["data_dir"]
        assert not os.path.exists(os.path.join(data_dir, "exports", "nodes", "node-far.json"))
        ec2.detach_volume(VolumeId=volume_id)
        settle(live)
        assert volume(ec2, volume_id)["State"] == "available"
        ec2.terminate_instances(InstanceIds=[instance_id])
        ec2.delete_volume(VolumeId=volume_id)
        settle(live)
    finally:
        stop_live(live, server)


@needs_ceph
def test_a_restart_while_a_volume_was_made_makes_it_again_whole(rbd_cloud, pool):
    """A volume left ``creating`` by a restart (its clone or restored image there, or
    half-written) is made again from scratch at the next start: whole, not doubled."""
    from eucalite.ebs import states

    ec2 = rbd_cloud.client("ec2")
    source = _new(rbd_cloud, ec2, Size=1)
    write_pattern(rbd_cloud, source, 0, b"the snapshot's data")
    snapshot_id = wait_snapshot(rbd_cloud, ec2,
                                ec2.create_snapshot(VolumeId=source)["SnapshotId"])["SnapshotId"]
    clone = _new(rbd_cloud, ec2, SnapshotId=snapshot_id)
    write_pattern(rbd_cloud, clone, 0, b"half-made garbage!!")     # as if cut short
    with rbd_cloud.app.app_context():
        db.session.get(Volume, clone).state = states.CREATING
        db.session.commit()
        assert clone in rbd_cloud.services.ebs.recover()
    settle(rbd_cloud)
    assert volume(ec2, clone)["State"] == "available"
    assert read_volume(rbd_cloud, clone, 0, 19) == b"the snapshot's data"
    assert pool.image(clone)["parent"] == (source, snapshot_id)
    for volume_id in (clone, source):
        ec2.delete_volume(VolumeId=volume_id)
    settle(rbd_cloud)
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    assert not pool.names() & {clone, source}


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@needs_ceph
def test_a_backing_that_goes_away_shuts_its_ceph_connection(tmp_path):
    """Each connection runs a dozen librados threads that forgetting it does not stop: a
    closed backing, and one garbage-collected, must leave none behind (a worker that made
    hundreds of apps once aborted in librados)."""
    import gc

    from eucalite.ebs.backing import RbdBacking

    before = _threads()
    backing = RbdBacking(cephutil.rbd_options(), tmp_path)
    assert backing.problem() is None
    assert _threads() > before                      # connected: librados' threads run
    backing.close()
    assert _threads() == before
    assert backing.problem() is None                # usable again: it reconnects
    del backing
    gc.collect()
    assert _threads() == before


@needs_ceph
def test_closing_waits_for_the_calls_using_the_connection(tmp_path):
    """librados aborts the whole process when a connection is shut under an open image:
    close() waits for the calls in flight, and the backing connects again afterwards."""
    import threading

    from eucalite.ebs.backing import RbdBacking

    backing = RbdBacking(cephutil.rbd_options(), tmp_path)
    name = "vol-close-" + os.urandom(4).hex()
    backing.create(name, MiB)
    held, release = threading.Event(), threading.Event()

    def in_flight():
        with backing._ioctx():
            held.set()
            release.wait(30)

    user = threading.Thread(target=in_flight)
    user.start()
    assert held.wait(30)
    closer = threading.Thread(target=backing.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive(), "close() shut the connection under a call using it"
    release.set()
    closer.join(30)
    user.join(30)
    assert not closer.is_alive()
    backing.write(name, 0, b"back")
    assert backing.read(name, 0, 4) == b"back"
    backing.delete(name)
    backing.close()
