"""MaxResults/NextToken and the tag filters across the EC2 Describe actions, over HTTP with
boto3 on the fake hypervisor: DescribeInstances paged by the database at 120 instances
(complete, in launch order, stable across changes, a constant number of queries per page),
every pageable Describe walked by boto3's paginators, the legacy ``tag-key``/``tag-value``
filters on every Describe that takes tag filters, and bad tokens and page sizes."""
from __future__ import annotations

import threading

import pytest
from awsutil import error_code
from ec2util import make_image
from serverutil import wait_until
from sqlalchemy import event

from eucalite.db import db





def instance_ids(pages) -> list[str]:
    return [item["InstanceId"] for page in pages for reservation in page["Reservations"]
            for item in reservation["Instances"]]


def launch_120(ec2, image) -> list[str]:
    """120 instances in launch order; every third is tagged team=blue, the others red."""
    ids = []
    for _ in range(3):
        reply = ec2.run_instances(ImageId=image, MinCount=40, MaxCount=40)
        ids += [item["InstanceId"] for item in sorted(reply["Instances"],
                                                       key=lambda i: i["AmiLaunchIndex"])]
    ec2.create_tags(Resources=ids[::3], Tags=[{"Key": "team", "Value": "blue"}])
    ec2.create_tags(Resources=[i for n, i in enumerate(ids) if n % 3],
                    Tags=[{"Key": "team", "Value": "red"}])
    return ids


def test_describe_instances_pages_are_complete_and_ordered(roomy):
    ec2 = roomy.client("ec2")
    ids = launch_120(ec2, make_image(roomy))
    everything = instance_ids([ec2.describe_instances()])
    assert sorted(everything) == sorted(ids)
    for size in (5, 7, 50, 119, 120, 1000):
        pages = list(ec2.get_paginator("describe_instances").paginate(
            PaginationConfig={"PageSize": size}))
        # every instance once, in the same order as the unpaginated answer
        assert instance_ids(pages) == everything, size
        assert all(len(instance_ids([page])) <= size for page in pages)
        assert "NextToken" not in pages[-1]
    first = ec2.describe_instances(MaxResults=50)
    assert len(instance_ids([first])) == 50 and first["NextToken"]

    # Filters the database applies (literal) and those applied after it (wildcards) page
    # to the same complete answer; a page may hold fewer than MaxResults.
    blue = [i for n, i in enumerate(ids) if n % 3 == 0]
    for value in ("blue", "bl*"):
        pages = list(ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:team", "Values": [value]}],
            PaginationConfig={"PageSize": 10}))
        assert sorted(instance_ids(pages)) == sorted(blue), value
    red = [i for i in ids if i not in blue]
    for filters, expected in (
            ([("tag-key", ["team"])], ids),
            ([("tag-value", ["red"])], red),
            ([("tag-value", ["r?d"])], red),
            ([("instance-state-name", ["pending", "running"]), ("tag-value", ["red"])], red),
            ([("instance-state-name", ["stopped"])], []),
            ([("instance-id", [ids[7], ids[90]])], [ids[7], ids[90]])):
        pages = list(ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": name, "Values": values} for name, values in filters],
            PaginationConfig={"PageSize": 6}))
        found = instance_ids(pages)
        assert found == [i for i in everything if i in expected], filters


def test_instance_pages_survive_changes_between_calls(roomy):
    ec2 = roomy.client("ec2")
    image = make_image(roomy)
    ids = launch_120(ec2, image)
    first = ec2.describe_instances(MaxResults=30)
    seen = instance_ids([first])
    # The last instance of the page goes away (terminated, then out of the filter) and new
    # ones arrive: the rest of the walk neither skips nor repeats what was there.
    ec2.terminate_instances(InstanceIds=[seen[-1]])
    ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)
    token = first["NextToken"]
    while token:
        page = ec2.describe_instances(MaxResults=30, NextToken=token,
                                      Filters=[{"Name": "tag-key", "Values": ["team"]}])
        seen += instance_ids([page])
        token = page.get("NextToken")
    assert sorted(seen) == sorted(ids)


def test_a_page_costs_the_same_queries_whatever_its_size(roomy):
    """Tags, groups and volumes are read per page, not per instance (no N+1)."""
    ec2 = roomy.client("ec2")
    launch_120(ec2, make_image(roomy))
    statements: list[tuple[int, str]] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append((threading.get_ident(), statement))

    with roomy.app.app_context():
        engine = db.engine
    counts = {}
    event.listen(engine, "before_cursor_execute", record)
    try:
        for size in (5, 120):
            statements.clear()
            assert len(instance_ids([ec2.describe_instances(MaxResults=size)])) == size
            # the request's thread is the one that cut the page (LIMIT on instances)
            [thread] = {ident for ident, text in statements
                        if "FROM instances" in text and "LIMIT" in text}
            counts[size] = sum(1 for ident, _ in statements if ident == thread)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert counts[5] == counts[120], counts


def test_bad_paging_parameters(roomy):
    ec2 = roomy.client("ec2")
    ids = launch_120(ec2, make_image(roomy))[:2]
    tags_token = ec2.describe_tags(MaxResults=5)["NextToken"]
    for token in ("garbage", "Zm9v", tags_token):
        assert error_code(ec2.describe_instances, NextToken=token) == "InvalidPaginationToken"
    for size in (4, 1001):
        assert error_code(ec2.describe_instances, MaxResults=size) == "InvalidParameterValue"
    assert error_code(ec2.describe_instances, MaxResults=5, InstanceIds=ids) == \
        "InvalidParameterCombination"
    # Ids without MaxResults: all of them, and an unknown one is NotFound as ever.
    assert sorted(instance_ids([ec2.describe_instances(InstanceIds=ids)])) == sorted(ids)
    assert error_code(ec2.describe_instances, InstanceIds=[ids[0], "i-0123456789abcdef0"]) \
        == "InvalidInstanceID.NotFound"


# --- every Describe ------------------------------------------------------------------------

#: boto3 operation -> (its result key, the id field of an item, extra arguments).
PAGEABLE = {
    "describe_instances": ("Reservations", None, {}),
    "describe_instance_status": ("InstanceStatuses", "InstanceId",
                                 {"IncludeAllInstances": True}),
    "describe_images": ("Images", "ImageId", {}),
    "describe_volumes": ("Volumes", "VolumeId", {}),
    "describe_volume_status": ("VolumeStatuses", "VolumeId", {}),
    "describe_snapshots": ("Snapshots", "SnapshotId", {"OwnerIds": ["self"]}),
    "describe_security_groups": ("SecurityGroups", "GroupId", {}),
    "describe_security_group_rules": ("SecurityGroupRules", "SecurityGroupRuleId", {}),
    "describe_tags": ("Tags", None, {}),
    "describe_instance_types": ("InstanceTypes", "InstanceType", {}),
}


def items_of(operation: str, page: dict) -> list:
    key, field, _ = PAGEABLE[operation]
    if operation == "describe_instances":
        return instance_ids([page])
    if operation == "describe_tags":
        return [(tag["ResourceId"], tag["Key"]) for tag in page[key]]
    return [item[field] for item in page[key]]


@pytest.fixture
def resources(roomy):
    """At least eleven of everything the pageable Describes list, each tagged team=blue
    except the last of each kind (team=red), plus one untagged key pair."""
    ec2 = roomy.client("ec2")
    made: dict[str, list[str]] = {}
    images = [make_image(roomy, image_id=f"emi-0000000{n:x}") for n in range(11)]
    made["images"] = images
    reply = ec2.run_instances(ImageId=images[0], MinCount=11, MaxCount=11)
    made["instances"] = [item["InstanceId"] for item in reply["Instances"]]
    made["volumes"] = [ec2.create_volume(Size=1, AvailabilityZone=lab_zone(ec2))["VolumeId"]
                       for _ in range(11)]
    # a volume is 'creating' until its job ran: CreateSnapshot refuses it then, as on AWS
    wait_until(lambda: {volume["State"] for volume in ec2.describe_volumes(
        VolumeIds=made["volumes"])["Volumes"]} == {"available"}, "the volumes")
    made["snapshots"] = [ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
                         for volume in made["volumes"]]
    made["groups"] = [ec2.create_security_group(GroupName=f"g{n}", Description="d")["GroupId"]
                      for n in range(11)]
    made["rules"] = [ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                       "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])[
        "SecurityGroupRules"][0]["SecurityGroupRuleId"] for group in made["groups"]]
    made["keys"] = [ec2.create_key_pair(KeyName=f"k{n}", KeyType="ed25519")["KeyPairId"]
                    for n in range(3)]
    for ids in made.values():
        ec2.create_tags(Resources=ids[:-1], Tags=[{"Key": "team", "Value": "blue"}])
        ec2.create_tags(Resources=ids[-1:], Tags=[{"Key": "team", "Value": "red"}])
    ec2.create_key_pair(KeyName="untagged", KeyType="ed25519")
    return made


def lab_zone(ec2) -> str:
    return ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]


@pytest.mark.parametrize("operation", sorted(PAGEABLE))
def test_every_describe_pages_with_boto3_paginators(roomy, resources, operation):
    ec2 = roomy.client("ec2")
    extra = PAGEABLE[operation][2]
    everything = items_of(operation, getattr(ec2, operation)(**extra))
    assert len(everything) >= 11, operation
    pages = list(ec2.get_paginator(operation).paginate(**extra,
                                                      PaginationConfig={"PageSize": 5}))
    walked = [item for page in pages for item in items_of(operation, page)]
    assert sorted(walked) == sorted(everything) and len(walked) == len(set(walked))
    assert len(pages) >= 3 and all(len(items_of(operation, page)) <= 5 for page in pages)
    # botocore checks AWS's bounds itself where its model has them: send them anyway
    call = getattr(roomy.client("ec2", parameter_validation=False), operation)
    assert error_code(call, **extra, MaxResults=5, NextToken="garbage") == \
        "InvalidPaginationToken"
    assert error_code(call, **extra, MaxResults=4) == "InvalidParameterValue"


def test_volumes_and_snapshots_take_the_cli_default_page_size(roomy, resources):
    """The aws CLI sends MaxResults=1000 to describe-volumes and describe-snapshots; AWS
    answers with at most 500 volumes (1,000 snapshots) rather than an error."""
    ec2 = roomy.client("ec2")
    assert len(ec2.describe_volumes(MaxResults=1000)["Volumes"]) == 11
    assert len(ec2.describe_snapshots(MaxResults=5000, OwnerIds=["self"])["Snapshots"]) == 11


#: Describe -> (result key, id field) for every one that takes tag filters.
TAGGED = {
    "describe_instances": ("instances", "Reservations", None),
    "describe_images": ("images", "Images", "ImageId"),
    "describe_volumes": ("volumes", "Volumes", "VolumeId"),
    "describe_snapshots": ("snapshots", "Snapshots", "SnapshotId"),
    "describe_security_groups": ("groups", "SecurityGroups", "GroupId"),
    "describe_security_group_rules": ("rules", "SecurityGroupRules", "SecurityGroupRuleId"),
    "describe_key_pairs": ("keys", "KeyPairs", "KeyPairId"),
}


@pytest.mark.parametrize("operation", sorted(TAGGED))
def test_legacy_tag_key_and_tag_value_filters(roomy, resources, operation):
    ec2 = roomy.client("ec2")
    kind, key, field = TAGGED[operation]
    mine = resources[kind]

    def found(*filters) -> list[str]:
        reply = getattr(ec2, operation)(Filters=[{"Name": n, "Values": v} for n, v in filters])
        if operation == "describe_instances":
            return sorted(instance_ids([reply]))
        return sorted(item[field] for item in reply[key])

    assert found(("tag-key", ["team"])) == sorted(mine)
    assert found(("tag-key", ["te*"])) == sorted(mine)
    assert found(("tag-key", ["nobody"])) == []
    assert found(("tag-value", ["red"])) == mine[-1:]
    assert found(("tag-value", ["bl?e", "red"])) == sorted(mine)
    # tag-key and tag-value each need some tag to match (not necessarily the same one)
    assert found(("tag-key", ["team"]), ("tag-value", ["blue"])) == sorted(mine[:-1])
    assert found(("tag:team", ["red"])) == mine[-1:]


def test_describe_tags_every_filter(roomy, resources):
    ec2 = roomy.client("ec2")

    def found(*filters) -> set[tuple[str, str]]:
        pages = ec2.get_paginator("describe_tags").paginate(
            Filters=[{"Name": n, "Values": v} for n, v in filters],
            PaginationConfig={"PageSize": 5})
        return {(tag["ResourceId"], tag["ResourceType"]) for page in pages
                for tag in page["Tags"]}

    every = found()
    assert {rtype for _, rtype in every} == {"instance", "image", "volume", "snapshot",
                                            "security-group", "security-group-rule",
                                            "key-pair"}
    assert found(("resource-type", ["volume"])) == {(v, "volume") for v in resources["volumes"]}
    assert found(("resource-id", [resources["keys"][0]])) == {(resources["keys"][0],
                                                               "key-pair")}
    assert len(found(("key", ["team"]))) == len(every)
    red = {resource_id for ids in resources.values() for resource_id in ids[-1:]}
    assert {rid for rid, _ in found(("value", ["red"]))} == red
    assert {rid for rid, _ in found(("tag:team", ["r*"]))} == red
    assert found(("key", ["nothing"])) == set()
    for size in (4, 1001):
        assert error_code(ec2.describe_tags, MaxResults=size) == "InvalidParameterValue"
    assert error_code(ec2.describe_tags, Filters=[{"Name": "tag-colour", "Values": ["x"]}]) \
        == "InvalidParameterValue"
