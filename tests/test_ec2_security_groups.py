"""EC2 security groups over real HTTP with boto3: CreateSecurityGroup, DeleteSecurityGroup,
DescribeSecurityGroups (lookups, every filter, paging, tags), the default group made on first
use, and groups at launch: RunInstances by name and by id, DescribeInstances' groupSet and
group filters, DescribeInstanceAttribute groupSet, the metadata service's security-groups.
Instances run on the in-memory fake hypervisor."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.test import Client

from awsutil import error_code, failure, xml_error_code
from ec2util import make_image, signed_post, wait_for_state
from liveutil import start_live, start_live_node, stop_live
from s3util import second_account

from eucalite.compute import metadata


@pytest.fixture
def node(tmp_path):
    """A live cloud with node duty on the fake hypervisor."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def groups_named(ec2, *names) -> list[dict]:
    return ec2.describe_security_groups(GroupNames=list(names))["SecurityGroups"]


def ids_of(answer) -> set[str]:
    return {group["GroupId"] for group in answer["SecurityGroups"]}


def instances_of(answer) -> list[dict]:
    return [item for reservation in answer["Reservations"] for item in reservation["Instances"]]


# --- the groups themselves -------------------------------------------------------------------

def test_default_group_appears_on_first_use_with_its_rules(live):
    ec2 = live.client("ec2")
    [default] = ec2.describe_security_groups()["SecurityGroups"]
    assert default["GroupName"] == "default" and default["Description"] == "default group"
    assert default["GroupId"].startswith("sg-") and len(default["GroupId"]) == 20
    assert "VpcId" not in default
    # Members reach each other; everything may go out.
    [ingress] = default["IpPermissions"]
    assert ingress["IpProtocol"] == "-1" and ingress["IpRanges"] == []
    assert [(pair["GroupId"], pair["UserId"]) for pair in ingress["UserIdGroupPairs"]] \
        == [(default["GroupId"], default["OwnerId"])]
    [egress] = default["IpPermissionsEgress"]
    assert egress["IpProtocol"] == "-1"
    assert [r["CidrIp"] for r in egress["IpRanges"]] == ["0.0.0.0/0"]
    # Made once: the next call sees the same group.
    assert ids_of(ec2.describe_security_groups()) == {default["GroupId"]}


def test_create_describe_delete(live):
    ec2 = live.client("ec2")
    created = ec2.create_security_group(GroupName="web", Description="web servers")
    group_id = created["GroupId"]
    assert group_id.startswith("sg-")
    assert created["SecurityGroupArn"].endswith(f":security-group/{group_id}")
    [web] = groups_named(ec2, "web")
    assert web["GroupId"] == group_id and web["Description"] == "web servers"
    assert web["OwnerId"] == ec2.describe_security_groups(GroupIds=[group_id])[
        "SecurityGroups"][0]["OwnerId"]
    assert web["IpPermissions"] == []
    # Both lists together select the union.
    assert {g["GroupName"] for g in ec2.describe_security_groups(
        GroupNames=["default"], GroupIds=[group_id])["SecurityGroups"]} == {"default", "web"}
    assert ec2.delete_security_group(GroupId=group_id)["GroupId"] == group_id
    assert error_code(ec2.describe_security_groups, GroupIds=[group_id]) \
        == "InvalidGroup.NotFound"
    # By name too; the name is free again once deleted.
    ec2.create_security_group(GroupName="web", Description="again")
    ec2.delete_security_group(GroupName="web")
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] \
        == ["default"]


def test_create_errors(live):
    ec2 = live.client("ec2")
    ec2.create_security_group(GroupName="web", Description="web servers")
    assert error_code(ec2.create_security_group, GroupName="web", Description="again") \
        == "InvalidGroup.Duplicate"
    assert error_code(ec2.create_security_group, GroupName="default", Description="x") \
        == "InvalidGroup.Reserved"
    for name in ("sg-web", "x" * 256, "caf\u00e9"):
        assert error_code(ec2.create_security_group, GroupName=name, Description="x") \
            == "InvalidParameterValue", name
    for description in ("d" * 256, "caf\u00e9"):
        assert error_code(ec2.create_security_group, GroupName="g",
                          Description=description) == "InvalidParameterValue"
    assert error_code(ec2.create_security_group, GroupName="g", Description="") \
        == "MissingParameter"
    assert error_code(ec2.create_security_group, GroupName="", Description="x") \
        == "MissingParameter"
    assert xml_error_code(signed_post(
        live, "Action=CreateSecurityGroup&Version=2016-11-15&GroupName=g")) \
        == "MissingParameter"
    assert error_code(ec2.create_security_group, GroupName="g", Description="x",
                      VpcId="vpc-0123abcd") == "InvalidVpcID.NotFound"
    assert error_code(ec2.create_security_group, GroupName="g", Description="x",
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "k", "Value": "v"}]}]) \
        == "InvalidParameterValue"
    # 255 printable ASCII characters are a name; nothing failed above was made.
    longest = "a" * 254 + "~"
    ec2.create_security_group(GroupName=longest, Description="d" * 255)
    assert {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]} \
        == {"default", "web", longest}


def test_group_limit(tmp_path):
    live, server = start_live(tmp_path / "data", security_group_limit=3)
    try:
        ec2 = live.client("ec2")
        ec2.create_security_group(GroupName="one", Description="x")
        ec2.create_security_group(GroupName="two", Description="x")   # default is the third
        assert error_code(ec2.create_security_group, GroupName="three", Description="x") \
            == "SecurityGroupLimitExceeded"
        ec2.delete_security_group(GroupName="one")
        ec2.create_security_group(GroupName="three", Description="x")
    finally:
        server.shutdown()


def test_delete_errors(live):
    ec2 = live.client("ec2")
    default_id = groups_named(ec2, "default")[0]["GroupId"]
    assert error_code(ec2.delete_security_group, GroupName="default") == "CannotDelete"
    assert error_code(ec2.delete_security_group, GroupId=default_id) == "CannotDelete"
    assert error_code(ec2.delete_security_group, GroupName="nope") == "InvalidGroup.NotFound"
    assert error_code(ec2.delete_security_group, GroupId="sg-0123456789abcdef0") \
        == "InvalidGroup.NotFound"
    for malformed in ("sg-xyz", "web", "sg-0123"):
        assert error_code(ec2.delete_security_group, GroupId=malformed) \
            == "InvalidGroupId.Malformed", malformed
    assert error_code(ec2.delete_security_group) == "MissingParameter"
    assert groups_named(ec2, "default")[0]["GroupId"] == default_id


def test_delete_refused_while_another_group_names_it(live):
    ec2 = live.client("ec2")
    db_id = ec2.create_security_group(GroupName="db", Description="database")["GroupId"]
    web_id = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": web_id}]}])
    assert error_code(ec2.delete_security_group, GroupId=web_id) == "InvalidGroup.InUse"
    # A group's rule naming the group itself does not keep it.
    ec2.authorize_security_group_ingress(GroupId=db_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
        "UserIdGroupPairs": [{"GroupId": db_id}]}])
    ec2.delete_security_group(GroupId=db_id)
    ec2.delete_security_group(GroupId=web_id)


def test_describe_lookups_and_errors(live):
    ec2 = live.client("ec2")
    web_id = ec2.create_security_group(GroupName="web", Description="x")["GroupId"]
    assert error_code(ec2.describe_security_groups, GroupNames=["web", "nope"]) \
        == "InvalidGroup.NotFound"
    code, status, response = failure(ec2.describe_security_groups,
                                     GroupIds=["sg-0123456789abcdef0", web_id,
                                               "sg-00000000"])
    assert (code, status) == ("InvalidGroup.NotFound", 400)
    # Every missing one is named.
    assert "sg-0123456789abcdef0" in response["Error"]["Message"]
    assert "sg-00000000" in response["Error"]["Message"]
    assert error_code(ec2.describe_security_groups, GroupIds=["web"]) \
        == "InvalidGroupId.Malformed"

    # Another account sees none of these groups, not even by id; it gets its own default.
    other, other_account = second_account(live, service="ec2")
    assert error_code(other.describe_security_groups, GroupIds=[web_id]) \
        == "InvalidGroup.NotFound"
    [theirs] = other.describe_security_groups()["SecurityGroups"]
    assert theirs["GroupName"] == "default" and theirs["OwnerId"] == other_account
    assert error_code(other.delete_security_group, GroupId=web_id) == "InvalidGroup.NotFound"
    assert groups_named(ec2, "web")[0]["GroupId"] == web_id


def test_describe_filters(live):
    ec2 = live.client("ec2")
    web_id = ec2.create_security_group(
        GroupName="web", Description="web servers",
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": "tier", "Value": "front"}]}])["GroupId"]
    db_id = ec2.create_security_group(GroupName="db", Description="database")["GroupId"]
    default_id = groups_named(ec2, "default")[0]["GroupId"]
    owner = groups_named(ec2, "web")[0]["OwnerId"]
    ec2.authorize_security_group_ingress(GroupId=web_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 443,
         "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_ingress(GroupId=db_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "UserIdGroupPairs": [{"GroupId": web_id}]}])
    ec2.authorize_security_group_egress(GroupId=db_id, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
         "IpRanges": [{"CidrIp": "192.0.2.53/32"}]}])

    def matching(name, *values) -> set[str]:
        return ids_of(ec2.describe_security_groups(
            Filters=[{"Name": name, "Values": list(values)}]))

    everything = {web_id, db_id, default_id}
    assert matching("description", "web*") == {web_id}
    assert matching("group-id", db_id, web_id) == {db_id, web_id}
    assert matching("group-name", "d*") == {db_id, default_id}
    assert matching("owner-id", owner) == everything
    assert matching("vpc-id", "*") == set()
    assert matching("tag:tier", "front") == {web_id}
    assert matching("tag-key", "tier") == {web_id}
    assert matching("tag-value", "fr?nt") == {web_id}
    assert matching("ip-permission.cidr", "198.51.100.0/24") == {web_id}
    assert matching("ip-permission.from-port", "80") == {web_id}
    assert matching("ip-permission.to-port", "443") == {web_id}
    assert matching("ip-permission.protocol", "icmp") == {web_id}
    assert matching("ip-permission.protocol", "tcp") == {web_id, db_id}
    assert matching("ip-permission.protocol", "-1") == {default_id}
    assert matching("ip-permission.group-id", web_id) == {db_id}
    assert matching("ip-permission.group-name", "web") == {db_id}
    assert matching("ip-permission.user-id", owner) == {db_id, default_id}
    assert matching("ip-permission.ipv6-cidr", "*") == set()
    assert matching("ip-permission.prefix-list-id", "*") == set()
    assert matching("egress.ip-permission.cidr", "192.0.2.53/32") == {db_id}
    assert matching("egress.ip-permission.cidr", "0.0.0.0/0") == everything
    assert matching("egress.ip-permission.protocol", "udp") == {db_id}
    assert matching("egress.ip-permission.from-port", "53") == {db_id}
    assert matching("egress.ip-permission.to-port", "53") == {db_id}
    assert matching("egress.ip-permission.group-id", "*") == set()
    assert matching("egress.ip-permission.group-name", "*") == set()
    assert matching("egress.ip-permission.user-id", "*") == set()
    assert matching("egress.ip-permission.ipv6-cidr", "*") == set()
    assert matching("egress.ip-permission.prefix-list-id", "*") == set()
    # Filters AND together; a group's rules need not match in one rule.
    assert ids_of(ec2.describe_security_groups(Filters=[
        {"Name": "ip-permission.protocol", "Values": ["icmp"]},
        {"Name": "ip-permission.from-port", "Values": ["80"]}])) == {web_id}
    assert ids_of(ec2.describe_security_groups(GroupNames=["db"], Filters=[
        {"Name": "group-name", "Values": ["web"]}])) == set()
    assert error_code(ec2.describe_security_groups,
                      Filters=[{"Name": "ip-permission.port", "Values": ["1"]}]) \
        == "InvalidParameterValue"


def test_describe_paging(live):
    ec2 = live.client("ec2")
    made = {ec2.create_security_group(GroupName=f"g{index}", Description="x")["GroupId"]
            for index in range(11)}
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        answer = ec2.describe_security_groups(MaxResults=5, **kwargs)
        pages.append([g["GroupId"] for g in answer["SecurityGroups"]])
        token = answer.get("NextToken")
        if not token:
            break
    assert [len(page) for page in pages] == [5, 5, 2]
    seen = [group_id for page in pages for group_id in page]
    assert len(set(seen)) == 12 and made < set(seen)
    # boto3's paginator walks the same pages.
    paginated = [g["GroupId"] for page in ec2.get_paginator("describe_security_groups")
                 .paginate(PaginationConfig={"PageSize": 5}) for g in page["SecurityGroups"]]
    assert paginated == seen
    unchecked = live.client("ec2", parameter_validation=False)
    for bad in (4, 1001):
        assert error_code(unchecked.describe_security_groups, MaxResults=bad) \
            == "InvalidParameterValue"
    assert error_code(ec2.describe_security_groups, MaxResults=5,
                      GroupIds=sorted(made)[:1]) == "InvalidParameterCombination"
    assert error_code(ec2.describe_security_groups, MaxResults=5, GroupNames=["g1"]) \
        == "InvalidParameterCombination"
    assert error_code(ec2.describe_security_groups, NextToken="bogus") \
        == "InvalidPaginationToken"


def test_tags_on_groups(live):
    ec2 = live.client("ec2")
    created = ec2.create_security_group(
        GroupName="web", Description="x",
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": "Name", "Value": "front"}]}])
    group_id = created["GroupId"]
    assert created["Tags"] == [{"Key": "Name", "Value": "front"}]
    ec2.create_tags(Resources=[group_id], Tags=[{"Key": "env", "Value": "lab"}])
    assert sorted((t["Key"], t["Value"]) for t in groups_named(ec2, "web")[0]["Tags"]) \
        == [("Name", "front"), ("env", "lab")]
    described = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [group_id]}])
    assert {(t["ResourceType"], t["Key"]) for t in described["Tags"]} \
        == {("security-group", "Name"), ("security-group", "env")}
    other, _ = second_account(live, service="ec2")
    assert error_code(other.create_tags, Resources=[group_id],
                      Tags=[{"Key": "k", "Value": "v"}]) == "InvalidGroup.NotFound"
    ec2.delete_security_group(GroupId=group_id)
    assert ec2.describe_tags(Filters=[{"Name": "resource-id",
                                       "Values": [group_id]}])["Tags"] == []


def test_aws_cli(live):
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args) -> subprocess.CompletedProcess:
        return subprocess.run([aws, "ec2", *args, "--output", "json"], env=live.env(),
                              capture_output=True, text=True, timeout=60)

    made = cli("create-security-group", "--group-name", "cli", "--description", "from the CLI")
    assert made.returncode == 0, made.stderr
    group_id = json.loads(made.stdout)["GroupId"]
    listed = cli("describe-security-groups", "--filters", "Name=group-name,Values=cli")
    assert [g["GroupId"] for g in json.loads(listed.stdout)["SecurityGroups"]] == [group_id]
    duplicate = cli("create-security-group", "--group-name", "cli", "--description", "x")
    assert duplicate.returncode != 0 and "InvalidGroup.Duplicate" in duplicate.stderr
    assert cli("delete-security-group", "--group-id", group_id).returncode == 0


# --- groups at launch ------------------------------------------------------------------------

def test_launch_by_name_and_id_shows_groups(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    web_id = ec2.create_security_group(GroupName="web", Description="x")["GroupId"]
    db_id = ec2.create_security_group(GroupName="db", Description="x")["GroupId"]
    reservation = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2,
                                    SecurityGroups=["web"], SecurityGroupIds=[db_id])
    pair = [{"GroupId": web_id, "GroupName": "web"}, {"GroupId": db_id, "GroupName": "db"}]
    assert reservation["Groups"] == pair
    assert [item["SecurityGroups"] for item in reservation["Instances"]] == [pair, pair]
    launched = [item["InstanceId"] for item in reservation["Instances"]]
    plain = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    default_id = groups_named(ec2, "default")[0]["GroupId"]
    assert plain["SecurityGroups"] == [{"GroupId": default_id, "GroupName": "default"}]
    wait_for_state(ec2, launched + [plain["InstanceId"]], "running")

    described = ec2.describe_instances(InstanceIds=launched)
    assert described["Reservations"][0]["Groups"] == pair
    assert all(item["SecurityGroups"] == pair for item in instances_of(described))

    def launched_with(name, value) -> set[str]:
        return {item["InstanceId"] for item in instances_of(ec2.describe_instances(
            Filters=[{"Name": name, "Values": [value]}]))}

    assert launched_with("group-id", web_id) == set(launched)
    assert launched_with("group-name", "db") == set(launched)
    assert launched_with("instance.group-id", default_id) == {plain["InstanceId"]}
    assert launched_with("instance.group-name", "d*") == set(launched) | {plain["InstanceId"]}

    attribute = ec2.describe_instance_attribute(InstanceId=launched[0], Attribute="groupSet")
    assert attribute["Groups"] == pair

    # A group with live members cannot go; once they have terminated it can.
    assert error_code(ec2.delete_security_group, GroupName="web") == "InvalidGroup.InUse"
    ec2.terminate_instances(InstanceIds=launched)
    wait_for_state(ec2, launched, "terminated")
    ec2.delete_security_group(GroupName="web")
    ec2.delete_security_group(GroupId=db_id)


def test_launch_group_errors_launch_nothing(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    ec2.create_security_group(GroupName="web", Description="x")
    assert error_code(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                      SecurityGroups=["web", "nope"]) == "InvalidGroup.NotFound"
    assert error_code(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                      SecurityGroupIds=["sg-0123456789abcdef0"]) == "InvalidGroup.NotFound"
    assert error_code(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                      SecurityGroupIds=["web"]) == "InvalidGroupId.Malformed"
    # The groups are checked before capacity is.
    assert error_code(ec2.run_instances, ImageId=image, MinCount=500, MaxCount=500,
                      SecurityGroups=["nope"]) == "InvalidGroup.NotFound"
    names = [f"g{index}" for index in range(5)]
    for name in names:
        ec2.create_security_group(GroupName=name, Description="x")
    assert error_code(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                      SecurityGroups=names + ["web"]) == "SecurityGroupsPerInstanceLimitExceeded"
    # Another account's group is not one of the caller's.
    other, _ = second_account(node, service="ec2")
    theirs = other.create_security_group(GroupName="theirs", Description="x")["GroupId"]
    assert error_code(ec2.run_instances, ImageId=image, MinCount=1, MaxCount=1,
                      SecurityGroupIds=[theirs]) == "InvalidGroup.NotFound"
    assert instances_of(ec2.describe_instances()) == []
    # Five groups are allowed, and a name given twice counts once.
    item = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                             SecurityGroups=names[:4] + ["web", "web"])["Instances"][0]
    assert [g["GroupName"] for g in item["SecurityGroups"]] == names[:4] + ["web"]


def test_metadata_lists_the_instance_groups(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    web_id = ec2.create_security_group(GroupName="web", Description="x")["GroupId"]
    item = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                             SecurityGroups=["default", "web"])["Instances"][0]
    wait_for_state(ec2, [item["InstanceId"]], "running")
    address = item["PrivateIpAddress"]
    client = Client(metadata.make_app(node.app))

    def text(path: str) -> str:
        answer = client.get(path, environ_overrides={"REMOTE_ADDR": address})
        assert answer.status_code == 200, path
        return answer.get_data(as_text=True)

    assert text("/latest/meta-data/security-groups") == "default\nweb"
    mac = text("/latest/meta-data/mac")
    nic = f"/latest/meta-data/network/interfaces/macs/{mac}/"
    assert text(nic + "security-groups") == "default\nweb"
    default_id = groups_named(ec2, "default")[0]["GroupId"]
    assert text(nic + "security-group-ids") == f"{default_id}\n{web_id}"
