"""Apache libcloud's Eucalyptus driver against a live cloud (fake hypervisor, volumes as
files): the client labs that ran Eucalyptus still use. It signs SigV2 queries at the classic
``/services/Eucalyptus`` path, reads DescribeInstanceTypes in Eucalyptus' own shape and
asks for one key pair with the unnumbered ``KeyName``; everything it shows is checked
against what boto3 sees at ``/services/compute``."""
from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from libcloud.common.types import InvalidCredsError
from libcloud.compute.drivers.ec2 import EC2NodeLocation, ExEC2AvailabilityZone
from libcloud.compute.providers import get_driver
from libcloud.compute.types import KeyPairDoesNotExistError, NodeState, Provider

from ebsutil import settle
from ec2util import make_image


@pytest.fixture
def driver(ebs):
    """libcloud's Eucalyptus driver for the cloud admin, at its default path."""
    return get_driver(Provider.EUCALYPTUS)(ebs.key_id, ebs.secret, host="127.0.0.1",
                                           port=ebs.port, secure=False)


def until(check, what: str, timeout: float = 30):
    """Poll *check* until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_wrong_secret_is_refused(ebs):
    wrong = get_driver(Provider.EUCALYPTUS)(ebs.key_id, "x" * 40, host="127.0.0.1",
                                            port=ebs.port, secure=False)
    with pytest.raises(InvalidCredsError):
        wrong.list_key_pairs()


def test_sizes_are_the_clouds_instance_types(ebs, driver):
    types = ebs.client("ec2").describe_instance_types()["InstanceTypes"]
    expected = {t["InstanceType"]: (t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"],
                                    t["InstanceStorageInfo"]["TotalSizeInGB"]) for t in types}
    sizes = driver.list_sizes()
    assert {size.id: (size.extra["cpu"], size.ram, size.disk) for size in sizes} == expected
    assert "m1.small" in expected


def test_images_and_locations(ebs, driver):
    image_id = make_image(ebs)
    assert [image.id for image in driver.list_images()] == [image_id]
    # The driver itself refuses list_locations (it never asked Eucalyptus for them).
    with pytest.raises(NotImplementedError):
        driver.list_locations()


def test_availability_zones(ebs, driver):
    expected = [zone["ZoneName"] for zone in
                ebs.client("ec2").describe_availability_zones()["AvailabilityZones"]]
    assert [zone.name for zone in driver.ex_list_availability_zones()] == expected


def test_key_pairs(driver):
    created = driver.create_key_pair("lab")
    assert "PRIVATE KEY" in created.private_key
    # get_key_pair sends the old unnumbered KeyName=lab.
    assert driver.get_key_pair("lab").fingerprint == created.fingerprint
    assert [pair.name for pair in driver.list_key_pairs()] == ["lab"]
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key() \
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    imported = driver.import_key_pair_from_string("mine", public.decode() + " me@lab")
    assert sorted(pair.name for pair in driver.list_key_pairs()) == ["lab", "mine"]
    assert driver.delete_key_pair(imported) is True
    assert driver.delete_key_pair(created) is True
    assert driver.list_key_pairs() == []
    # InvalidKeyPair.NotFound, which the driver turns into its own error.
    with pytest.raises(KeyPairDoesNotExistError):
        driver.get_key_pair("lab")


def test_node_lifecycle(ebs, driver):
    make_image(ebs)
    size = next(size for size in driver.list_sizes() if size.id == "m1.small")
    node = driver.create_node(name="lab-node", size=size, image=driver.list_images()[0])
    assert node.id.startswith("i-") and node.extra["instance_type"] == "m1.small"
    # No public IPs are configured here: wait for the private address.
    [(running, addresses)] = driver.wait_until_running([node], wait_period=0.1, timeout=30,
                                                       ssh_interface="private_ips")
    assert running.state == NodeState.RUNNING and addresses
    listed = {item.id: item for item in driver.list_nodes()}
    assert listed[node.id].name == "lab-node"
    assert listed[node.id].private_ips == addresses

    assert driver.destroy_node(node) is True
    ec2 = ebs.client("ec2")
    until(lambda: ec2.describe_instances(InstanceIds=[node.id])["Reservations"][0][
        "Instances"][0]["State"]["Name"] == "terminated", "the node to terminate")
    assert {item.id: item.state for item in driver.list_nodes()}[node.id] \
        == NodeState.TERMINATED


def test_volumes(ebs, driver):
    make_image(ebs)
    ec2 = ebs.client("ec2")
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]
    # list_locations is not there for Eucalyptus: name the zone as its location would.
    location = EC2NodeLocation(zone["ZoneName"], zone["ZoneName"], "", driver,
                               ExEC2AvailabilityZone(zone["ZoneName"], zone["State"],
                                                     zone["RegionName"]))
    volume = driver.create_volume(1, "lab-volume", location=location)
    assert volume.size == 1
    settle(ebs)
    assert [item.id for item in driver.list_volumes()] == [volume.id]

    node = driver.create_node(name="n", size=driver.list_sizes()[0],
                              image=driver.list_images()[0])
    driver.wait_until_running([node], wait_period=0.1, timeout=30, ssh_interface="private_ips")
    assert driver.attach_volume(node, volume, "/dev/sdf") is True
    settle(ebs)
    attachment = until(lambda: ec2.describe_volumes(VolumeIds=[volume.id])["Volumes"][0][
        "Attachments"], "the attachment")
    assert attachment[0]["InstanceId"] == node.id and attachment[0]["State"] == "attached"
    assert [item.id for item in driver.list_volumes(node)] == [volume.id]

    assert driver.detach_volume(volume) is True
    settle(ebs)
    until(lambda: ec2.describe_volumes(VolumeIds=[volume.id])["Volumes"][0]["State"]
          == "available", "the volume to detach")
    assert driver.destroy_volume(volume) is True
    settle(ebs)
    assert driver.list_volumes() == []
    driver.destroy_node(node)
