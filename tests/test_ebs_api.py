"""EBS volumes and snapshots through boto3 against a live eucalite (fake hypervisor, local
export): states, attachments, errors, filters, paging, permissions and the data chain
volume -> snapshot -> volume. The same chain over real iSCSI into a real guest is in
tests/test_ebs_real.py."""
from __future__ import annotations

import os

from awsutil import error_code
from ebsutil import (new_volume, running_instance, settle, volume, volume_backing,
                     volume_digest, wait_snapshot, write_pattern)
from ec2util import used_cores
from s3util import second_account

MiB = 2**20


def test_volume_lifecycle_is_sparse_and_reported(ebs):
    ec2 = ebs.client("ec2")
    created = ec2.create_volume(Size=100, AvailabilityZone="eucalyptus-1a", TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}])
    assert created["State"] == "creating" and created["Size"] == 100
    volume_id = created["VolumeId"]
    settle(ebs)
    item = volume(ec2, volume_id)
    assert item["State"] == "available" and item["Attachments"] == []
    assert item["Tags"] == [{"Key": "Name", "Value": "data"}]
    backing = volume_backing(ebs, volume_id)
    size, allocated = backing.usage(volume_id)
    assert size == 100 * 2**30
    assert allocated < MiB                              # sparse: nothing written yet
    status = ec2.describe_volume_status(VolumeIds=[volume_id])["VolumeStatuses"][0]
    assert status["VolumeStatus"]["Status"] == "ok"
    attribute = ec2.describe_volume_attribute(VolumeId=volume_id, Attribute="autoEnableIO")
    assert attribute["AutoEnableIO"]["Value"] is False
    ec2.modify_volume_attribute(VolumeId=volume_id, AutoEnableIO={"Value": True})
    assert ec2.describe_volume_attribute(VolumeId=volume_id, Attribute="autoEnableIO")[
        "AutoEnableIO"]["Value"] is True

    ec2.delete_volume(VolumeId=volume_id)
    settle(ebs)
    assert error_code(lambda: volume(ec2, volume_id)) == "InvalidVolume.NotFound"
    if backing.name == "file":
        assert not backing.path(volume_id).exists()
    else:
        assert volume_id not in backing.images()


def test_volume_errors_and_limits(ebs):
    ec2 = ebs.client("ec2")
    assert error_code(lambda: ec2.create_volume(Size=0, AvailabilityZone="eucalyptus-1a")) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_volume(Size=101, AvailabilityZone="eucalyptus-1a")) \
        == "InvalidParameterValue"                     # over max_volume_gb
    assert error_code(lambda: ec2.create_volume(Size=1, AvailabilityZone="nowhere")) \
        == "InvalidParameterValue"
    assert error_code(lambda: ec2.create_volume(AvailabilityZone="eucalyptus-1a")) \
        == "MissingParameter"
    assert error_code(lambda: ec2.create_volume(
        AvailabilityZone="eucalyptus-1a", SnapshotId="snap-0123456789abcdef0")) \
        == "InvalidSnapshot.NotFound"
    new_volume(ebs, ec2, size=100)
    assert error_code(lambda: ec2.create_volume(Size=60, AvailabilityZone="eucalyptus-1a")) \
        == "VolumeLimitExceeded"                       # 100 + 60 > max_total_volume_gb
    for call in (lambda: ec2.delete_volume(VolumeId="vol-0123456789abcdef0"),
                 lambda: ec2.describe_volumes(VolumeIds=["vol-0123456789abcdef0"]),
                 lambda: ec2.attach_volume(VolumeId="vol-0123456789abcdef0",
                                           InstanceId="i-0123456789abcdef0", Device="/dev/sdf")):
        assert error_code(call) == "InvalidVolume.NotFound"


def test_filters_and_paging(ebs):
    ec2 = ebs.client("ec2")
    ids = sorted(new_volume(ebs, ec2, size=size) for size in (1, 1, 2, 2, 2, 3, 3))
    two = ec2.describe_volumes(Filters=[{"Name": "size", "Values": ["2"]}])["Volumes"]
    assert len(two) == 3
    assert len(ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["available"]}])[
        "Volumes"]) == 7
    assert ec2.describe_volumes(Filters=[{"Name": "attachment.status",
                                          "Values": ["attached"]}])["Volumes"] == []
    seen, token = [], None
    while True:
        kwargs = {"MaxResults": 5, **({"NextToken": token} if token else {})}
        page = ec2.describe_volumes(**kwargs)
        seen += [v["VolumeId"] for v in page["Volumes"]]
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(seen) == ids
    assert error_code(lambda: ec2.describe_volumes(VolumeIds=ids[:1], MaxResults=5)) \
        == "InvalidParameterCombination"


def test_attach_detach_and_terminate(ebs):
    ec2 = ebs.client("ec2")
    instance_id = running_instance(ebs, ec2)
    volume_id = new_volume(ebs, ec2)
    attached = ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    assert attached["State"] == "attaching" and attached["Device"] == "/dev/sdf"
    settle(ebs)
    item = volume(ec2, volume_id)
    assert item["State"] == "in-use"
    assert item["Attachments"][0]["State"] == "attached"
    assert item["Attachments"][0]["InstanceId"] == instance_id
    driver = ebs.services.cluster.driver
    assert "vdc" in driver.disks(instance_id)        # after the root (vda) and ephemeral (vdb)
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    assert described["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sdf"
    assert described["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] == volume_id
    assert ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                          "Values": [instance_id]}])["Volumes"][0][
        "VolumeId"] == volume_id

    other = new_volume(ebs, ec2)
    assert error_code(lambda: ec2.attach_volume(VolumeId=other, InstanceId=instance_id,
                                                Device="/dev/sdf")) == "InvalidParameterValue"
    assert error_code(lambda: ec2.attach_volume(VolumeId=other, InstanceId=instance_id,
                                                Device="/dev/bogus")) == "InvalidParameterValue"
    assert error_code(lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id,
                                                Device="/dev/sdg")) == "VolumeInUse"
    assert error_code(lambda: ec2.delete_volume(VolumeId=volume_id)) == "VolumeInUse"
    assert error_code(lambda: ec2.detach_volume(VolumeId=other)) == "IncorrectState"
    assert error_code(lambda: ec2.detach_volume(VolumeId=volume_id,
                                                InstanceId="i-0123456789abcdef0")) \
        == "InvalidAttachment.NotFound"
    assert error_code(lambda: ec2.detach_volume(VolumeId=volume_id, Device="/dev/sdz")) \
        == "InvalidAttachment.NotFound"

    detached = ec2.detach_volume(VolumeId=volume_id)
    assert detached["State"] == "detaching"
    settle(ebs)
    assert volume(ec2, volume_id)["State"] == "available"
    assert "vdc" not in driver.disks(instance_id)

    ec2.attach_volume(VolumeId=other, InstanceId=instance_id, Device="/dev/sdh")
    settle(ebs)
    ec2.terminate_instances(InstanceIds=[instance_id])
    settle(ebs)
    item = volume(ec2, other)
    assert item["State"] == "available" and item["Attachments"] == []


def test_snapshot_chain_is_incremental_and_shares_by_permission(ebs):
    ec2 = ebs.client("ec2")
    volume_id = new_volume(ebs, ec2, size=1)
    first_data = os.urandom(3 * MiB)
    write_pattern(ebs, volume_id, 10 * MiB, first_data)
    snap1 = ec2.create_snapshot(VolumeId=volume_id, Description="first")
    assert snap1["State"] == "pending"
    done1 = wait_snapshot(ebs, ec2, snap1["SnapshotId"])
    assert (done1["State"], done1["Progress"], done1["VolumeSize"]) == ("completed", "100%", 1)

    write_pattern(ebs, volume_id, 500 * MiB, os.urandom(MiB))        # change one chunk
    snap2 = wait_snapshot(ebs, ec2, ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"])
    with ebs.app.app_context():
        from eucalite.db import db
        from eucalite.ebs.models import Snapshot

        stored = {s: db.session.get(Snapshot, s).stored_bytes
                  for s in (snap1["SnapshotId"], snap2["SnapshotId"])}
        kept = {db.session.get(Snapshot, s).backend
                for s in (snap1["SnapshotId"], snap2["SnapshotId"])}
    if kept == {"objectstore"}:
        assert stored[snap1["SnapshotId"]] >= 3 * MiB
        assert stored[snap2["SnapshotId"]] <= 4 * MiB    # only the changed chunk was stored
    else:                       # RBD snapshots kept in Ceph: nothing in the object store
        assert kept == {"rbd"} and set(stored.values()) == {0}
    original = volume_digest(ebs, volume_id)

    # the first snapshot goes; the second still restores everything
    ec2.delete_snapshot(SnapshotId=snap1["SnapshotId"])
    copy = ec2.create_volume(SnapshotId=snap2["SnapshotId"], AvailabilityZone="eucalyptus-1a")
    assert copy["SnapshotId"] == snap2["SnapshotId"] and copy["Size"] == 1
    settle(ebs)
    assert volume(ec2, copy["VolumeId"])["State"] == "available"
    assert volume_digest(ebs, copy["VolumeId"]) == original
    assert error_code(lambda: ec2.create_volume(SnapshotId=snap2["SnapshotId"], Size=0,
                                                AvailabilityZone="eucalyptus-1a")) \
        == "InvalidParameterValue"

    # another account sees it only once it is shared
    other, other_id = second_account(ebs, "ebs-peer", "ec2")
    assert other.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"] == []
    assert error_code(lambda: other.create_volume(SnapshotId=snap2["SnapshotId"],
                                                  AvailabilityZone="eucalyptus-1a")) \
        == "InvalidSnapshot.NotFound"
    ec2.modify_snapshot_attribute(SnapshotId=snap2["SnapshotId"],
                                  Attribute="createVolumePermission",
                                  CreateVolumePermission={"Add": [{"UserId": other_id}]})
    permission = ec2.describe_snapshot_attribute(SnapshotId=snap2["SnapshotId"],
                                                 Attribute="createVolumePermission")
    assert permission["CreateVolumePermissions"] == [{"UserId": other_id}]
    shared = other.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]
    assert [s["SnapshotId"] for s in shared] == [snap2["SnapshotId"]]
    assert other.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    theirs = other.create_volume(SnapshotId=snap2["SnapshotId"],
                                 AvailabilityZone="eucalyptus-1a")["VolumeId"]
    settle(ebs)
    assert volume_digest(ebs, theirs) == original
    ec2.reset_snapshot_attribute(SnapshotId=snap2["SnapshotId"],
                                 Attribute="createVolumePermission")
    assert other.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"] == []

    assert error_code(lambda: ec2.delete_snapshot(SnapshotId="snap-0123456789abcdef0")) \
        == "InvalidSnapshot.NotFound"
    assert error_code(lambda: other.delete_snapshot(SnapshotId=snap2["SnapshotId"])) \
        == "InvalidSnapshot.NotFound"


def test_snapshot_of_an_attached_volume_pauses_the_guest_only_for_the_copy(ebs):
    ec2 = ebs.client("ec2")
    instance_id = running_instance(ebs, ec2)
    volume_id = new_volume(ebs, ec2)
    write_pattern(ebs, volume_id, 0, b"x" * MiB)
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)
    driver = ebs.services.cluster.driver
    paused = []
    real_pause = driver.pause
    driver.pause = lambda iid: (paused.append(iid), real_pause(iid))
    snapshot = wait_snapshot(ebs, ec2, ec2.create_snapshot(VolumeId=volume_id)["SnapshotId"])
    assert snapshot["State"] == "completed"
    assert paused == [instance_id]
    assert driver.power_state(instance_id).value == "running"     # resumed
    assert volume(ec2, volume_id)["State"] == "in-use"


def test_restart_resumes_interrupted_work_and_reattaches(ebs):
    """What a crash interrupted is finished at the next start; an attachment the domain lost
    behind eucalite's back is restored by the reconciler."""
    from eucalite.compute import reconcile
    from eucalite.db import db
    from eucalite.ebs import states
    from eucalite.ebs.models import Snapshot, Volume

    ec2 = ebs.client("ec2")
    instance_id = running_instance(ebs, ec2)
    attached = new_volume(ebs, ec2)
    ec2.attach_volume(VolumeId=attached, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)
    stuck = new_volume(ebs, ec2)
    snap = wait_snapshot(ebs, ec2, ec2.create_snapshot(VolumeId=stuck)["SnapshotId"])
    with ebs.app.app_context():
        # as if the process died mid-way: a volume still creating, a snapshot still pending
        db.session.get(Volume, stuck).state = states.CREATING
        db.session.get(Snapshot, snap["SnapshotId"]).state = "pending"
        db.session.commit()
        acted = ebs.services.ebs.recover()
    assert stuck in acted and snap["SnapshotId"] in acted
    settle(ebs)
    assert volume(ec2, stuck)["State"] == "available"
    failed = ec2.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"][0]
    assert failed["State"] == "error" and "restart" in failed["StateMessage"]

    driver = ebs.services.cluster.driver
    driver.detach_disk(instance_id, "vdc")           # the domain lost the disk
    with ebs.app.app_context():
        report = reconcile.reconcile(ebs.services.cluster, ebs.services.ebs)
    assert report.volumes_reattached == [attached]
    assert "vdc" in driver.disks(instance_id)


def test_ebs_backed_image_boots_from_its_snapshot_and_stops_and_starts(ebs):

    ec2 = ebs.client("ec2")
    source = new_volume(ebs, ec2, size=1)
    write_pattern(ebs, source, 0, b"bootable root " * 1000)
    snap = wait_snapshot(ebs, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
    image_id = ec2.register_image(
        Name="ebs-root", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["RootDeviceType"] == "ebs"
    assert image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap["SnapshotId"]
    assert error_code(lambda: ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])) \
        == "InvalidSnapshot.InUse"

    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    settle(ebs)
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    assert described["State"]["Name"] == "running"
    assert described["RootDeviceType"] == "ebs"
    [root] = [m for m in described["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sda1"]
    root_id = root["Ebs"]["VolumeId"]
    assert volume(ec2, root_id)["State"] == "in-use"
    assert volume_digest(ebs, root_id) == volume_digest(ebs, source)
    assert error_code(lambda: ec2.detach_volume(VolumeId=root_id)) == "IncorrectState"
    data = new_volume(ebs, ec2)
    ec2.attach_volume(VolumeId=data, InstanceId=instance_id, Device="/dev/sdf")
    settle(ebs)
    cores = used_cores(ebs)

    stopping = ec2.stop_instances(InstanceIds=[instance_id])["StoppingInstances"][0]
    assert stopping["CurrentState"]["Name"] == "stopping"
    settle(ebs)
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "stopped"
    assert used_cores(ebs) == cores - 1                   # the node's capacity is free
    assert instance_id not in ebs.services.cluster.driver.list_domains()
    assert volume(ec2, root_id)["Attachments"][0]["State"] == "attached"   # kept, as in EC2
    assert error_code(lambda: ec2.attach_volume(VolumeId=new_volume(ebs, ec2),
                                                InstanceId=instance_id, Device="/dev/sdg")) \
        == "IncorrectInstanceState"

    starting = ec2.start_instances(InstanceIds=[instance_id])["StartingInstances"][0]
    assert (starting["PreviousState"]["Name"], starting["CurrentState"]["Name"]) == \
        ("stopped", "pending")
    settle(ebs)
    assert ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "running"
    disks = ebs.services.cluster.driver.disks(instance_id)
    assert "vda" in disks and "vdc" in disks               # root and the data volume again

    ec2.terminate_instances(InstanceIds=[instance_id])
    settle(ebs)
    assert error_code(lambda: volume(ec2, root_id)) == "InvalidVolume.NotFound"  # deleted
    assert volume(ec2, data)["State"] == "available"       # detached, kept
