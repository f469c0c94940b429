"""An EBS-backed image's data volumes at launch, through boto3 on a live cloud (fake
hypervisor, volumes as files): RunInstances makes a volume from each non-root snapshot the
image maps (or an empty one of VolumeSize), attached at its device with its type and
DeleteOnTermination, in the domain from its first boot; DescribeInstances and
DescribeVolumes show them; termination deletes those marked so and detaches the others; a
launch that fails leaves none of them behind. CreateImage's data-volume snapshots come back
the same way. RunInstances' own BlockDeviceMapping overrides, adds and suppresses the
image's, and bad ones are refused before anything launches. The same with a real guest is
tests/test_ebs_real.py."""
from __future__ import annotations

import time

from awsutil import error_code
from ebsutil import new_volume, read_volume, settle, volume, wait_snapshot, write_pattern
from ec2util import make_image

from eucalite.ebs import jobs as ebs_jobs, snapshots as ebs_snapshots

DATA = b"data volume bytes " * 64


def _snapshot(live, ec2, data: bytes, size: int = 1) -> str:
    source = new_volume(live, ec2, size=size)
    write_pattern(live, source, 0, data)
    return wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])[
        "SnapshotId"]


def _image(live, ec2, extra: list[dict]) -> str:
    root = _snapshot(live, ec2, b"root")
    return ec2.register_image(Name=f"img-{time.monotonic_ns()}", RootDeviceName="/dev/sda1",
                              BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                    "Ebs": {"SnapshotId": root}}] + extra
                              )["ImageId"]


def _described(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


def _read(live, volume_id, size) -> bytes:
    return read_volume(live, volume_id, 0, size)


def test_launch_makes_and_attaches_the_images_data_volumes(ebs):
    ec2 = ebs.client("ec2")
    driver = ebs.services.cluster.driver
    data_snap = _snapshot(ebs, ec2, DATA)
    image_id = _image(ebs, ec2, [
        {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data_snap, "VolumeSize": 2,
                                           "VolumeType": "gp2"}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 3, "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdh", "Ebs": {"VolumeSize": 1}, "NoDevice": ""},
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}])

    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    item = _described(ec2, instance_id)
    assert item["State"]["Name"] == "running"
    mapped = {m["DeviceName"]: m["Ebs"] for m in item["BlockDeviceMappings"]}
    assert set(mapped) == {"/dev/sda1", "/dev/sdf", "/dev/sdg"}     # no NoDevice, ephemeral
    assert all(m["Status"] == "attached" for m in mapped.values())
    assert (mapped["/dev/sdf"]["DeleteOnTermination"],
            mapped["/dev/sdg"]["DeleteOnTermination"]) == (True, False)

    sdf, sdg = volume(ec2, mapped["/dev/sdf"]["VolumeId"]), volume(ec2, mapped["/dev/sdg"][
        "VolumeId"])
    assert (sdf["State"], sdf["Size"], sdf["VolumeType"], sdf["SnapshotId"]) == (
        "in-use", 2, "gp2", data_snap)
    assert (sdg["State"], sdg["Size"], sdg["SnapshotId"]) == ("in-use", 3, "")
    for vol, device in ((sdf, "/dev/sdf"), (sdg, "/dev/sdg")):
        [attachment] = vol["Attachments"]
        assert (attachment["InstanceId"], attachment["Device"], attachment["State"]) == (
            instance_id, device, "attached")
    assert _read(ebs, sdf["VolumeId"], len(DATA)) == DATA              # the snapshot's data
    assert _read(ebs, sdg["VolumeId"], 4096) == bytes(4096)             # empty
    # in the domain from its first boot (not hot-plugged after), each at its own disk
    assert sorted(driver.disks(instance_id)) == ["vda", "vdc", "vdd"]

    ec2.terminate_instances(InstanceIds=[instance_id])
    settle(ebs)
    left = {v["VolumeId"]: v for v in ec2.describe_volumes()["Volumes"]}
    assert sdf["VolumeId"] not in left                                  # DeleteOnTermination
    assert (left[sdg["VolumeId"]]["State"], left[sdg["VolumeId"]]["Attachments"]) == (
        "available", [])


def test_data_volumes_stay_across_stop_and_start(ebs):
    ec2 = ebs.client("ec2")
    driver = ebs.services.cluster.driver
    image_id = _image(ebs, ec2, [{"DeviceName": "/dev/sdf",
                                  "Ebs": {"SnapshotId": _snapshot(ebs, ec2, DATA)}}])
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    first = {m["DeviceName"]: m["Ebs"]["VolumeId"]
             for m in _described(ec2, instance_id)["BlockDeviceMappings"]}
    write_pattern(ebs, first["/dev/sdf"], 0, b"written while running")
    ec2.stop_instances(InstanceIds=[instance_id])
    settle(ebs)
    ec2.start_instances(InstanceIds=[instance_id])
    settle(ebs)
    again = {m["DeviceName"]: m["Ebs"]["VolumeId"]
             for m in _described(ec2, instance_id)["BlockDeviceMappings"]}
    assert again == first                           # the same volumes, none made anew
    assert _read(ebs, first["/dev/sdf"], 21) == b"written while running"
    assert sorted(driver.disks(instance_id)) == ["vda", "vdc"]
    assert len(ec2.describe_volumes()["Volumes"]) == 2 + 2      # 2 snapshot sources + 2


def test_a_failed_launch_leaves_no_volume_behind(ebs, monkeypatch):
    ec2 = ebs.client("ec2")
    image_id = _image(ebs, ec2, [
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": _snapshot(ebs, ec2, DATA)}}])
    before = {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]}

    def broken(*args):
        raise OSError("the snapshot's chunks are unreadable")
    # the root and the empty sdf are made; sdg's data cannot be written
    restore = ebs_snapshots.restore_into
    calls = []

    def second_fails(store, snapshot_id, volume):
        calls.append(snapshot_id)
        if len(calls) == 2:
            broken()
        return restore(store, snapshot_id, volume)
    monkeypatch.setattr(ebs_snapshots, "restore_into", second_fails)
    made = []
    make_data = ebs_jobs._make_data
    monkeypatch.setattr(ebs_jobs, "_make_data",
                        lambda service, row: made.append(row.id) or make_data(service, row))
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    item = _described(ec2, instance_id)
    assert item["State"]["Name"] == "terminated"
    assert "unreadable" in item["StateReason"]["Message"]
    assert len(calls) == 2
    assert {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]} == before
    backing = ebs.services.ebs.backing(ebs.services.ebs.new_volume_backend())
    if backing.name == "file":
        assert sorted(p.name for p in ebs.services.ebs.volumes_dir.glob("vol-*")) == sorted(
            f"{vid}.raw" for vid in before)
    else:                                   # the pool is shared: look for the launch's own
        assert len(made) == 3 and not set(made) & set(backing.images())


def test_create_image_data_volumes_come_back_at_launch(ebs):
    ec2 = ebs.client("ec2")
    image_id = _image(ebs, ec2, [])
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    data = new_volume(ebs, ec2, size=2)
    write_pattern(ebs, data, 0, DATA)
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdk")
    settle(ebs)

    made = ec2.create_image(InstanceId=instance_id, Name="with-data")["ImageId"]
    deadline = time.monotonic() + 60
    while ec2.describe_images(ImageIds=[made])["Images"][0]["State"] == "pending":
        assert time.monotonic() < deadline, "image still pending"
        settle(ebs)
        time.sleep(0.05)
    second = ec2.run_instances(ImageId=made, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"]
    settle(ebs)
    mapped = {m["DeviceName"]: m["Ebs"]["VolumeId"]
              for m in _described(ec2, second)["BlockDeviceMappings"]}
    assert set(mapped) == {"/dev/sda1", "/dev/sdk"}
    assert mapped["/dev/sdk"] != data
    assert volume(ec2, mapped["/dev/sdk"])["Size"] == 2
    assert _read(ebs, mapped["/dev/sdk"], len(DATA)) == DATA


def test_run_instances_mappings_override_add_and_suppress_the_images(ebs):
    ec2 = ebs.client("ec2")
    data_snap = _snapshot(ebs, ec2, DATA)
    image_id = _image(ebs, ec2, [
        {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": data_snap}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 1}}])
    overrides = [
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 3}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdg", "NoDevice": ""},
        {"DeviceName": "/dev/sdh", "Ebs": {"VolumeSize": 4, "VolumeType": "gp3"}}]
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    BlockDeviceMappings=overrides)["Instances"][0]["InstanceId"]
    settle(ebs)
    mapped = {m["DeviceName"]: m["Ebs"] for m in _described(ec2, instance_id)[
        "BlockDeviceMappings"]}
    assert set(mapped) == {"/dev/sda1", "/dev/sdf", "/dev/sdh"}
    sizes = {device: volume(ec2, m["VolumeId"])["Size"] for device, m in mapped.items()}
    assert sizes == {"/dev/sda1": 3, "/dev/sdf": 2, "/dev/sdh": 4}
    assert mapped["/dev/sdf"]["DeleteOnTermination"] is False
    assert volume(ec2, mapped["/dev/sdh"]["VolumeId"])["VolumeType"] == "gp3"
    assert _read(ebs, mapped["/dev/sdf"]["VolumeId"], len(DATA)) == DATA
    # the image itself is unchanged: the next plain launch gets its own mapping
    plain = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"]
    settle(ebs)
    assert {m["DeviceName"] for m in _described(ec2, plain)["BlockDeviceMappings"]} == {
        "/dev/sda1", "/dev/sdf", "/dev/sdg"}


def test_bad_run_instances_mappings_are_refused_before_anything_launches(ebs):
    ec2 = ebs.client("ec2")
    snap = _snapshot(ebs, ec2, DATA, size=2)
    image_id = _image(ebs, ec2, [])
    before = ec2.describe_instances()["Reservations"]

    def launch(mappings, image=image_id):
        return error_code(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                          BlockDeviceMappings=mappings)
    assert launch([{"DeviceName": "/dev/sda1", "NoDevice": ""}]) == \
        "InvalidBlockDeviceMapping"
    assert launch([{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-12345678"}}]) == \
        "InvalidSnapshot.NotFound"
    assert launch([{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snap,
                                                      "VolumeSize": 1}}]) == \
        "InvalidParameterValue"
    assert launch([{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}]) == \
        "MissingParameter"
    assert ec2.describe_instances()["Reservations"] == before


def test_an_instance_store_instance_launches_with_ebs_volumes_too(ebs):
    """AWS lets an instance-store instance's launch mapping add EBS volumes: its root
    stays the bundle's, the volumes come attached after the ephemeral disk (vdb)."""
    ec2 = ebs.client("ec2")
    driver = ebs.services.cluster.driver
    snap = _snapshot(ebs, ec2, DATA)
    instance_id = ec2.run_instances(
        ImageId=make_image(ebs), MinCount=1, MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snap}},
                             {"DeviceName": "/dev/sdg", "Ebs": {
                                 "VolumeSize": 2, "DeleteOnTermination": False}}])[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    item = _described(ec2, instance_id)
    assert (item["State"]["Name"], item["RootDeviceType"]) == ("running", "instance-store")
    mapped = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in item["BlockDeviceMappings"]}
    assert set(mapped) == {"/dev/sdf", "/dev/sdg"}
    assert _read(ebs, mapped["/dev/sdf"], len(DATA)) == DATA
    assert {"vdc", "vdd"} <= set(driver.disks(instance_id))

    ec2.terminate_instances(InstanceIds=[instance_id])
    settle(ebs)
    left = {v["VolumeId"]: v["State"] for v in ec2.describe_volumes()["Volumes"]}
    assert mapped["/dev/sdf"] not in left and left[mapped["/dev/sdg"]] == "available"
