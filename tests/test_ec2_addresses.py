"""Public and elastic IPs through boto3 on the fake hypervisor, with a pool of five public
addresses on a lab interface (the fake data plane touches nothing on the host): launch-time
addresses, AllocateAddress / AssociateAddress / DisassociateAddress / ReleaseAddress /
DescribeAddresses with their errors and filters, what DescribeInstances, the metadata
service and the node's network plan show, and the pool given back when instances end."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
from werkzeug.test import Client

from awsutil import error_code, failure, xml_error_code
from ebsutil import new_volume, settle, wait_snapshot
from ec2util import make_image, signed_post, wait_for_state
from liveutil import start_live_node, stop_live
from s3util import second_account
from serverutil import AWS

from eucalite import create_app
from eucalite.compute import addresses, metadata
from eucalite.compute.models import Image
from eucalite.db import db

POOL = [f"198.51.100.{n}" for n in range(10, 15)]
LAB = {"hypervisor": "fake", "public_ips": ["198.51.100.10-198.51.100.14"],
       "public_interface": "eulab0"}


@pytest.fixture
def lab(tmp_path):
    live, server = start_live_node(tmp_path / "data", **LAB)
    yield live
    stop_live(live, server)


def launch(live, count=1, **kwargs) -> list[str]:
    """*count* running instances of a recorded image."""
    ec2 = live.client("ec2")
    image = _image(live)
    ids = [item["InstanceId"] for item in ec2.run_instances(
        ImageId=image, MinCount=count, MaxCount=count, **kwargs)["Instances"]]
    wait_for_state(ec2, ids, "running")
    return ids


def _image(live) -> str:
    with live.app.app_context():
        if db.session.get(Image, "emi-0a1b2c3d") is not None:
            return "emi-0a1b2c3d"
    return make_image(live)


def described(ec2, instance_id) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


def public_ip(ec2, instance_id) -> str | None:
    return described(ec2, instance_id).get("PublicIpAddress")


def plan_public_ips(live) -> dict[str, str | None]:
    """Instance id -> public IP in the plan the node's (fake) data plane enforces now."""
    plan = live.services.cluster.local_node.firewall.plan
    return {port.instance_id: port.public_ip for port in plan.ports} if plan else {}


def pool(live) -> dict:
    with live.app.app_context():
        return live.services.compute.address_pool()


def imds_text(live, private_ip: str, path: str) -> str:
    response = Client(metadata.make_app(live.app)).get(
        path, environ_overrides={"REMOTE_ADDR": private_ip})
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


# --- launch-time addresses ---------------------------------------------------------------

def test_launch_gets_a_public_ip_the_guest_and_node_see_and_terminate_returns_it(lab):
    ec2 = lab.client("ec2")
    [instance_id] = launch(lab)
    item = described(ec2, instance_id)
    address = item["PublicIpAddress"]
    assert address in POOL
    assert item["PublicDnsName"] == f"euca-{address.replace('.', '-')}.eucalyptus.lab"
    assert pool(lab) == {"total": 5, "free": 4, "interface": "eulab0"}
    assert plan_public_ips(lab) == {instance_id: address}
    # the guest reads it from the metadata service
    assert imds_text(lab, item["PrivateIpAddress"],
                     "/latest/meta-data/public-ipv4") == address
    assert imds_text(lab, item["PrivateIpAddress"], "/latest/meta-data/public-hostname") \
        == item["PublicDnsName"]
    # DescribeInstances filters on it
    for name, value in (("ip-address", address), ("dns-name", item["PublicDnsName"])):
        found = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])
        assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] \
            == [instance_id]
    # a launch address is not elastic: DescribeAddresses does not list it
    assert ec2.describe_addresses()["Addresses"] == []
    assert error_code(ec2.release_address, PublicIp=address) == "AuthFailure"

    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_for_state(ec2, [instance_id], "terminated")
    assert "PublicIpAddress" not in described(ec2, instance_id)
    assert pool(lab)["free"] == 5
    settle(lab)             # the terminate job pushes the plan after recording the state
    assert plan_public_ips(lab) == {}


def test_private_addressing_gets_no_public_ip(lab):
    ec2 = lab.client("ec2")
    image = _image(lab)
    answer = signed_post(lab, f"Action=RunInstances&Version=2016-11-15&ImageId={image}"
                              "&MinCount=1&MaxCount=1&AddressingType=private")
    assert answer.status_code == 200, answer.text
    by_interface = launch(lab, NetworkInterfaces=[{"DeviceIndex": 0,
                                                   "AssociatePublicIpAddress": False}])
    public = launch(lab)
    rows = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    private = [row for row in rows if row["InstanceId"] not in public]
    assert len(private) == 2 and by_interface[0] in {row["InstanceId"] for row in private}
    assert all("PublicIpAddress" not in row and row["PublicDnsName"] == "" for row in private)
    assert pool(lab)["free"] == 4
    bad = signed_post(lab, f"Action=RunInstances&Version=2016-11-15&ImageId={image}"
                           "&MinCount=1&MaxCount=1&AddressingType=elastic")
    assert xml_error_code(bad) == "InvalidParameterValue"


def test_exhausted_pool_launches_without_and_refuses_elastic_ips(lab):
    ec2 = lab.client("ec2")
    ids = launch(lab, count=6)
    addresses_given = [public_ip(ec2, instance_id) for instance_id in ids]
    assert sorted(a for a in addresses_given if a) == POOL          # every one, once
    assert addresses_given.count(None) == 1                         # as Eucalyptus: none
    assert pool(lab)["free"] == 0
    assert error_code(ec2.allocate_address) == "InsufficientAddressCapacity"
    ec2.terminate_instances(InstanceIds=ids[:1])
    wait_for_state(ec2, ids[:1], "terminated")
    assert ec2.allocate_address()["PublicIp"] == addresses_given[0]


# --- elastic IPs ------------------------------------------------------------------------

def test_standard_elastic_ip_allocate_associate_disassociate_release(lab):
    ec2 = lab.client("ec2")
    [instance_id] = launch(lab)
    launch_address = public_ip(ec2, instance_id)
    allocated = ec2.allocate_address(Domain="standard")
    elastic = allocated["PublicIp"]
    assert allocated["Domain"] == "standard" and "AllocationId" not in allocated
    assert elastic in POOL and elastic != launch_address
    listed = ec2.describe_addresses()["Addresses"]
    assert [(a["PublicIp"], a["Domain"]) for a in listed] == [(elastic, "standard")]
    assert "InstanceId" not in listed[0]

    answer = ec2.associate_address(PublicIp=elastic, InstanceId=instance_id)
    assert "AssociationId" not in answer
    item = described(ec2, instance_id)
    assert item["PublicIpAddress"] == elastic                 # instead of its launch address
    assert imds_text(lab, item["PrivateIpAddress"], "/latest/meta-data/public-ipv4") == elastic
    assert plan_public_ips(lab) == {instance_id: elastic}
    assert pool(lab)["free"] == 4                             # the launch address went back
    [address] = ec2.describe_addresses(PublicIps=[elastic])["Addresses"]
    assert address["InstanceId"] == instance_id
    assert address["PrivateIpAddress"] == item["PrivateIpAddress"]
    # associating again changes nothing
    ec2.associate_address(PublicIp=elastic, InstanceId=instance_id)
    assert public_ip(ec2, instance_id) == elastic

    ec2.disassociate_address(PublicIp=elastic)
    fresh = public_ip(ec2, instance_id)
    assert fresh in POOL and fresh != elastic                 # a fresh launch address
    assert plan_public_ips(lab) == {instance_id: fresh}
    assert "InstanceId" not in ec2.describe_addresses()["Addresses"][0]
    ec2.disassociate_address(PublicIp=elastic)                # not associated: no change

    ec2.associate_address(PublicIp=elastic, InstanceId=instance_id)
    ec2.release_address(PublicIp=elastic)                     # Classic: disassociates first
    assert public_ip(ec2, instance_id) not in (None, elastic)
    assert ec2.describe_addresses()["Addresses"] == []
    assert error_code(ec2.describe_addresses, PublicIps=[elastic]) == "InvalidAddress.NotFound"
    assert error_code(ec2.release_address, PublicIp=elastic) == "InvalidAddress.NotFound"
    assert pool(lab)["free"] == 4


def test_reassociation_moves_the_address(lab):
    ec2 = lab.client("ec2")
    first, second = launch(lab, count=2)
    elastic = ec2.allocate_address()["PublicIp"]
    ec2.associate_address(PublicIp=elastic, InstanceId=first)
    # a standard address moves whatever AllowReassociation says (EC2-Classic)
    ec2.associate_address(PublicIp=elastic, InstanceId=second)
    assert public_ip(ec2, second) == elastic
    assert public_ip(ec2, first) not in (None, elastic)       # it got a launch address
    assert plan_public_ips(lab)[second] == elastic
    assert plan_public_ips(lab)[first] == public_ip(ec2, first)

    vpc = ec2.allocate_address(Domain="vpc")
    assert vpc["Domain"] == "vpc" and vpc["AllocationId"].startswith("eipalloc-")
    association = ec2.associate_address(AllocationId=vpc["AllocationId"],
                                        InstanceId=first)["AssociationId"]
    assert association.startswith("eipassoc-")
    assert error_code(ec2.associate_address, AllocationId=vpc["AllocationId"],
                      InstanceId=second) == "Resource.AlreadyAssociated"
    assert public_ip(ec2, first) == vpc["PublicIp"]
    moved = ec2.associate_address(AllocationId=vpc["AllocationId"], InstanceId=second,
                                  AllowReassociation=True)["AssociationId"]
    assert moved != association
    assert public_ip(ec2, second) == vpc["PublicIp"]
    # the instance's earlier elastic IP is disassociated but stays allocated
    by_ip = {a["PublicIp"]: a for a in ec2.describe_addresses()["Addresses"]}
    assert "InstanceId" not in by_ip[elastic]
    assert by_ip[vpc["PublicIp"]]["InstanceId"] == second
    assert by_ip[vpc["PublicIp"]]["AssociationId"] == moved
    assert error_code(ec2.disassociate_address, AssociationId=association) \
        == "InvalidAssociationID.NotFound"
    # a vpc address is released only once disassociated
    assert error_code(ec2.release_address, AllocationId=vpc["AllocationId"]) \
        == "InvalidIPAddress.InUse"
    ec2.disassociate_address(AssociationId=moved)
    ec2.release_address(AllocationId=vpc["AllocationId"])
    assert error_code(ec2.release_address, AllocationId=vpc["AllocationId"]) \
        == "InvalidAllocationID.NotFound"


def test_terminate_disassociates_the_elastic_ip_and_keeps_it_allocated(lab):
    ec2 = lab.client("ec2")
    [instance_id] = launch(lab)
    vpc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=vpc["AllocationId"], InstanceId=instance_id)
    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_for_state(ec2, [instance_id], "terminated")
    [address] = ec2.describe_addresses()["Addresses"]
    assert address["AllocationId"] == vpc["AllocationId"]
    assert "InstanceId" not in address and "AssociationId" not in address
    assert pool(lab)["free"] == 4                    # the elastic IP only
    assert error_code(ec2.associate_address, AllocationId=vpc["AllocationId"],
                      InstanceId=instance_id) == "IncorrectInstanceState"


def test_address_errors(lab):
    ec2 = lab.client("ec2")
    [instance_id] = launch(lab)
    other, _ = second_account(lab, service="ec2")
    theirs = other.allocate_address()["PublicIp"]
    their_vpc = other.allocate_address(Domain="vpc")
    mine = ec2.allocate_address()["PublicIp"]

    assert error_code(ec2.allocate_address, Domain="classic") == "InvalidParameterValue"
    for call in (lambda: ec2.associate_address(PublicIp=theirs, InstanceId=instance_id),
                 lambda: ec2.disassociate_address(PublicIp=theirs),
                 lambda: ec2.release_address(PublicIp=theirs)):
        code, status, response = failure(call)
        assert (code, status) == ("AuthFailure", 403)
        assert response["Error"]["Message"] == f"The address '{theirs}' does not belong to you."
    assert error_code(ec2.associate_address, AllocationId=their_vpc["AllocationId"],
                      InstanceId=instance_id) == "InvalidAllocationID.NotFound"
    assert error_code(ec2.describe_addresses, PublicIps=[theirs]) == "InvalidAddress.NotFound"
    assert error_code(ec2.describe_addresses, AllocationIds=["eipalloc-0123456789abcdef0"]) \
        == "InvalidAllocationID.NotFound"
    assert error_code(ec2.release_address, PublicIp="203.0.113.9") == "InvalidAddress.NotFound"
    assert error_code(ec2.release_address, PublicIp="not-an-ip") == "InvalidParameterValue"
    assert error_code(ec2.disassociate_address, AssociationId="eipassoc-0123456789abcdef0") \
        == "InvalidAssociationID.NotFound"
    assert error_code(ec2.associate_address, PublicIp=mine,
                      InstanceId="i-0123456789abcdef0") == "InvalidInstanceID.NotFound"
    assert error_code(ec2.associate_address, InstanceId=instance_id) == "MissingParameter"
    assert error_code(ec2.associate_address, PublicIp=mine) == "MissingParameter"
    assert error_code(ec2.disassociate_address) == "MissingParameter"
    # another account's instance is not found either
    assert error_code(other.associate_address, PublicIp=theirs, InstanceId=instance_id) \
        == "InvalidInstanceID.NotFound"
    # tags live on allocation ids: a standard address has none to carry them
    assert error_code(ec2.allocate_address, TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": "k", "Value": "v"}]}]) \
        == "InvalidParameterValue"


def test_address_limit(tmp_path):
    live, server = start_live_node(tmp_path / "data", address_limit=2, **LAB)
    try:
        ec2 = live.client("ec2")
        ec2.allocate_address()
        ec2.allocate_address(Domain="vpc")
        code, _, response = failure(ec2.allocate_address)
        assert code == "AddressLimitExceeded"
        assert response["Error"]["Message"] == "The maximum number of addresses has been reached."
        # the limit is per account
        other, _ = second_account(live, service="ec2")
        assert other.allocate_address()["PublicIp"] in POOL
    finally:
        stop_live(live, server)


def test_describe_addresses_filters_and_tags(lab):
    ec2 = lab.client("ec2")
    [instance_id] = launch(lab)
    private_ip = described(ec2, instance_id)["PrivateIpAddress"]
    standard = ec2.allocate_address()["PublicIp"]
    tagged = ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": "role", "Value": "web"}]}])
    plain = ec2.allocate_address(Domain="vpc")
    ec2.create_tags(Resources=[plain["AllocationId"]], Tags=[{"Key": "team", "Value": "b"}])
    association = ec2.associate_address(AllocationId=tagged["AllocationId"],
                                        InstanceId=instance_id)["AssociationId"]

    def ips(*filters) -> list[str]:
        return sorted(a["PublicIp"] for a in ec2.describe_addresses(
            Filters=[{"Name": name, "Values": values} for name, values in filters])["Addresses"])

    everything = sorted([standard, tagged["PublicIp"], plain["PublicIp"]])
    assert ips() == everything
    assert ips(("domain", ["standard"])) == [standard]
    assert ips(("domain", ["vpc"])) == sorted([tagged["PublicIp"], plain["PublicIp"]])
    assert ips(("allocation-id", [plain["AllocationId"]])) == [plain["PublicIp"]]
    assert ips(("association-id", [association])) == [tagged["PublicIp"]]
    assert ips(("instance-id", [instance_id])) == [tagged["PublicIp"]]
    assert ips(("private-ip-address", [private_ip])) == [tagged["PublicIp"]]
    assert ips(("public-ip", ["198.51.100.*"])) == everything
    assert ips(("public-ip", [standard])) == [standard]
    assert ips(("network-border-group", [lab.region])) == everything
    assert ips(("network-border-group", ["elsewhere"])) == []
    assert ips(("network-interface-id", ["*"])) == []
    assert ips(("network-interface-owner-id", ["*"])) == []
    assert ips(("tag:role", ["web"])) == [tagged["PublicIp"]]
    assert ips(("tag-key", ["team"])) == [plain["PublicIp"]]
    assert ips(("domain", ["vpc"]), ("tag-key", ["role", "team"]),
               ("instance-id", [instance_id])) == [tagged["PublicIp"]]
    assert error_code(ec2.describe_addresses, Filters=[{"Name": "colour", "Values": ["x"]}]) \
        == "InvalidParameterValue"

    [item] = ec2.describe_addresses(AllocationIds=[tagged["AllocationId"]])["Addresses"]
    assert item["Tags"] == [{"Key": "role", "Value": "web"}]
    assert item["AssociationId"] == association and item["NetworkBorderGroup"] == lab.region
    assert item["PublicIpv4Pool"] == "amazon"
    # DescribeTags and DeleteTags reach the allocation id; release drops its tags
    assert [t["ResourceType"] for t in ec2.describe_tags(Filters=[
        {"Name": "resource-id", "Values": [plain["AllocationId"]]}])["Tags"]] == ["elastic-ip"]
    ec2.release_address(AllocationId=plain["AllocationId"])
    assert ec2.describe_tags(Filters=[{"Name": "resource-id",
                                       "Values": [plain["AllocationId"]]}])["Tags"] == []

    attributes = ec2.describe_addresses_attribute(AllocationIds=[tagged["AllocationId"]],
                                                  Attribute="domain-name")["Addresses"]
    assert attributes == [{"PublicIp": tagged["PublicIp"],
                           "AllocationId": tagged["AllocationId"],
                           "PtrRecord": metadata.public_dns_name(tagged["PublicIp"]) + "."}]


def test_allocate_a_chosen_free_address(lab):
    ec2 = lab.client("ec2")
    assert ec2.allocate_address(Address="198.51.100.13")["PublicIp"] == "198.51.100.13"
    assert error_code(ec2.allocate_address, Address="198.51.100.13") \
        == "InvalidAddress.NotFound"
    assert error_code(ec2.allocate_address, Address="203.0.113.1") == "InvalidAddress.NotFound"


def test_stop_gives_the_addresses_back_and_start_takes_a_fresh_one(tmp_path):
    live, server = start_live_node(tmp_path / "data", ebs_export="local", **LAB)
    try:
        ec2 = live.client("ec2")
        source = new_volume(live, ec2, size=1)
        snap = wait_snapshot(live, ec2, ec2.create_snapshot(VolumeId=source)["SnapshotId"])
        image = ec2.register_image(
            Name="ebs-root", RootDeviceName="/dev/sda1",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                  "Ebs": {"SnapshotId": snap["SnapshotId"]}}])["ImageId"]
        instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        settle(live)
        elastic = ec2.allocate_address()["PublicIp"]
        ec2.associate_address(PublicIp=elastic, InstanceId=instance_id)
        ec2.stop_instances(InstanceIds=[instance_id])
        settle(live)
        assert described(ec2, instance_id)["State"]["Name"] == "stopped"
        assert "PublicIpAddress" not in described(ec2, instance_id)
        assert "InstanceId" not in ec2.describe_addresses()["Addresses"][0]   # EC2-Classic
        assert pool(live)["free"] == 4
        assert error_code(ec2.associate_address, PublicIp=elastic, InstanceId=instance_id) \
            == "IncorrectInstanceState"
        ec2.start_instances(InstanceIds=[instance_id])
        settle(live)
        assert described(ec2, instance_id)["State"]["Name"] == "running"
        assert public_ip(ec2, instance_id) in POOL
        assert public_ip(ec2, instance_id) != elastic
    finally:
        stop_live(live, server)


def test_aws_cli_allocate_associate_describe(lab):
    [instance_id] = launch(lab)

    def aws(*args) -> dict:
        done = subprocess.run([AWS, "ec2", *args, "--output", "json"], env=lab.env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    allocated = aws("allocate-address", "--domain", "vpc")
    association = aws("associate-address", "--allocation-id", allocated["AllocationId"],
                      "--instance-id", instance_id)["AssociationId"]
    [address] = aws("describe-addresses", "--filters",
                    f"Name=instance-id,Values={instance_id}")["Addresses"]
    assert (address["PublicIp"], address["AssociationId"]) == (allocated["PublicIp"],
                                                                association)
    aws("disassociate-address", "--association-id", association)
    aws("release-address", "--allocation-id", allocated["AllocationId"])
    assert aws("describe-addresses")["Addresses"] == []


# --- public IPs off, and the pool's configuration ----------------------------------------

def test_without_a_pool_instances_have_no_public_ip_and_allocation_says_why(cloud):
    ec2 = cloud.client("ec2")
    [instance_id] = launch(cloud)
    assert "PublicIpAddress" not in described(ec2, instance_id)
    code, status, response = failure(ec2.allocate_address)
    assert (code, status) == ("ServiceUnavailable", 503)
    assert "public_interface" in response["Error"]["Message"]
    assert "public_ips" in response["Error"]["Message"]
    assert ec2.describe_addresses()["Addresses"] == []


def test_pool_configuration():
    base = {"instance_subnet": "10.9.0.0/16", "public_interface": "eulab0"}
    assert addresses.parse_pool({**base, "public_ips": []}) is None
    pool_ = addresses.parse_pool({**base, "public_ips": [
        "198.51.100.20", "198.51.100.10-198.51.100.12", "192.0.2.0/30", "198.51.100.11"]})
    assert list(pool_) == ["192.0.2.1", "192.0.2.2", "198.51.100.10", "198.51.100.11",
                           "198.51.100.12", "198.51.100.20"]
    assert len(pool_) == 6 and "198.51.100.20" in pool_ and "198.51.100.13" not in pool_
    assert list(addresses.parse_pool({**base, "public_ips": "203.0.113.7, 203.0.113.8"})) \
        == ["203.0.113.7", "203.0.113.8"]
    assert list(addresses.parse_pool({**base, "public_ips": ["203.0.113.9/32"]})) \
        == ["203.0.113.9"]
    for entries, complaint in ((["198.51.100.300"], "198.51.100.300"),
                               (["198.51.100.9-198.51.100.2"], "backwards"),
                               (["198.51.100.1/24"], "198.51.100.1/24"),
                               (["2001:db8::1"], "2001:db8::1"),
                               (["lab"], "lab"),
                               (["10.9.3.1-10.9.3.4"], "instance_subnet")):
        with pytest.raises(ValueError, match=complaint):
            addresses.parse_pool({**base, "public_ips": entries})
    with pytest.raises(ValueError, match="public_interface"):
        addresses.parse_pool({**base, "public_interface": "", "public_ips": ["203.0.113.9"]})


@pytest.mark.parametrize("interface, pool, named", [
    ("eulab0", ["198.51.100.x"], "198.51.100.x"),
    ("eulab0", ["198.51.100.20-198.51.100.10"], "198.51.100.20-198.51.100.10"),
    ("eulab0", ["10.211.0.0/28"], "instance_subnet"),
    ("", ["198.51.100.10"], "public_interface"),
])
def test_a_wrong_pool_stops_the_cloud_from_starting(tmp_path, interface, pool, named):
    """A pool the cloud cannot use is refused when the app is built, naming what is wrong,
    instead of failing the first launch."""
    with pytest.raises(ValueError, match=re.escape(named)):
        create_app({"data_dir": str(tmp_path / "data"), "node": False,
                    "public_interface": interface, "public_ips": pool})
