"""DescribeInstances at scale, over HTTP with boto3 on the fake hypervisor: the database
statements an answer costs do not grow with the number of instances (tags, groups, volumes
and metadata options are read once per page, never per instance), and instances whose
values an answer writes once and shares (state, zone, security groups, metadata options)
each still show their own. Also: :class:`eucalite.xmlutil.Serialised` values are written
exactly as the plain values would be."""
from __future__ import annotations

import datetime as dt
import threading
from xml.etree import ElementTree as ET

import pytest
from ec2util import make_image, wait_for_state
from sqlalchemy import event

from eucalite import xmlutil
from eucalite.db import db





def items(reply) -> list[dict]:
    return [item for reservation in reply["Reservations"] for item in reservation["Instances"]]


def launch_mixed(ec2, image, count: int, web: str) -> list[str]:
    """*count* running instances in three reservations: the default group; group *web*
    with IMDSv2 required; both groups. Every instance is tagged."""
    third = count // 3
    ids = []
    for size, kwargs in (
            (third, {}),
            (third, {"SecurityGroupIds": [web],
                     "MetadataOptions": {"HttpTokens": "required"}}),
            (count - 2 * third, {"SecurityGroupIds": [web], "SecurityGroups": ["default"]})):
        reply = ec2.run_instances(ImageId=image, MinCount=size, MaxCount=size, **kwargs)
        ids += [item["InstanceId"] for item in reply["Instances"]]
    ec2.create_tags(Resources=ids, Tags=[{"Key": "team", "Value": "blue"}])
    wait_for_state(ec2, ids, "running")
    return ids


def attach_volume(ec2, instance_id: str, zone: str) -> None:
    volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume],
                                            WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    ec2.attach_volume(VolumeId=volume, InstanceId=instance_id, Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume],
                                         WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


def statements_per_answer(roomy, ec2, **kwargs) -> tuple[int, dict]:
    """(the statements the request thread of one DescribeInstances ran, the answer)."""
    statements: list[tuple[int, str]] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append((threading.get_ident(), statement))

    with roomy.app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        reply = ec2.describe_instances(**kwargs)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # The request's thread is the one that read the page (instances in launch order).
    [thread] = {ident for ident, text in statements
                if "FROM instances" in text and "ORDER BY instances.launch_time" in text}
    return sum(1 for ident, _ in statements if ident == thread), reply


def test_statements_per_answer_do_not_grow_with_the_instances(roomy):
    ec2 = roomy.client("ec2")
    image = make_image(roomy)
    web = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    first = launch_mixed(ec2, image, 5, web)
    zone = items(ec2.describe_instances(InstanceIds=first[:1]))[0]["Placement"][
        "AvailabilityZone"]
    attach_volume(ec2, first[0], zone)
    filtered = {"Filters": [{"Name": "group-name", "Values": ["w?b"]},
                            {"Name": "tag:team", "Values": ["blue"]}]}

    small, reply = statements_per_answer(roomy, ec2)
    assert len(items(reply)) == 5
    small_filtered, reply = statements_per_answer(roomy, ec2, **filtered)
    assert len(items(reply)) == 4

    more = launch_mixed(ec2, image, 45, web)
    attach_volume(ec2, more[-1], zone)
    large, reply = statements_per_answer(roomy, ec2)
    assert len(items(reply)) == 50
    assert sum(len(item["BlockDeviceMappings"]) for item in items(reply)) == 2
    large_filtered, reply = statements_per_answer(roomy, ec2, **filtered)
    assert len(items(reply)) == 4 + 30

    assert (small, small_filtered) == (large, large_filtered)


def test_shared_values_stay_each_instances_own(roomy):
    """State, groups and metadata options are written once per answer for all the
    instances that share them: every instance still shows its own."""
    ec2 = roomy.client("ec2")
    image = make_image(roomy)
    web = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    ids = launch_mixed(ec2, image, 6, web)
    ec2.terminate_instances(InstanceIds=[ids[0], ids[2]])
    wait_for_state(ec2, [ids[0], ids[2]], "terminated")

    reply = ec2.describe_instances()
    by_id = {item["InstanceId"]: item for item in items(reply)}
    assert [by_id[i]["State"]["Name"] for i in ids] == \
        ["terminated", "running", "terminated", "running", "running", "running"]
    groups = [[group["GroupName"] for group in by_id[i]["SecurityGroups"]] for i in ids]
    # (a launch lists groups named by name before those named by id)
    assert groups == [["default"]] * 2 + [["web"]] * 2 + [["default", "web"]] * 2
    tokens = [by_id[i]["MetadataOptions"]["HttpTokens"] for i in ids]
    assert tokens == ["optional"] * 2 + ["required"] * 2 + ["optional"] * 2
    # A reservation's groups are its instances' groups (EC2-Classic).
    assert sorted([group["GroupName"] for group in reservation["Groups"]]
                  for reservation in reply["Reservations"]) == \
        [["default"], ["default", "web"], ["web"]]
    assert all(item["Tags"] == [{"Key": "team", "Value": "blue"}] for item in by_id.values())

    # RunInstances renders its new instances the same way.
    launched = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2,
                                 SecurityGroupIds=[web], SecurityGroups=["default"])
    assert [[group["GroupName"] for group in item["SecurityGroups"]]
            for item in launched["Instances"]] == [["default", "web"]] * 2
    assert [group["GroupName"] for group in launched["Groups"]] == ["default", "web"]
    assert {item["State"]["Name"] for item in launched["Instances"]} == {"pending"}


def test_serialised_values_are_written_as_the_plain_values():
    """A value written ahead (:func:`xmlutil.serialised`) gives the same bytes as the
    value itself, in the direct writer and in the ElementTree one."""
    values = {
        "state": {"code": 16, "name": "running"},
        "text": "a<b>&c",
        "awkward": {"key": "cr\r and bell\x07 and \ud800", "value": "caf\u00e9"},
        "empty": "",
        "emptyList": [],
        "emptyDict": {"skipped": None},
        "items": [{"key": "k", "value": ""}, None, ("x", 1), True],
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
        "nested": {"set": [{"groupId": "sg-1", "groupName": "web & co"}]},
    }
    plain = {"reservationSet": [dict(values, id="r-1")], "nextToken": None}
    ahead = {"reservationSet": [dict({key: xmlutil.serialised(value)
                                      for key, value in values.items()}, id="r-1")],
             "nextToken": None}
    written = xmlutil.query_response("DescribeInstances", xmlutil.EC2_NAMESPACE, "req-1",
                                     plain)
    assert xmlutil.query_response("DescribeInstances", xmlutil.EC2_NAMESPACE, "req-1",
                                  ahead) == written
    root = ET.Element("DescribeInstancesResponse", xmlns=xmlutil.EC2_NAMESPACE)
    ET.SubElement(root, "requestId").text = "req-1"
    xmlutil.fill(root, ahead)
    assert xmlutil.document(root) == written
    assert b"<emptyDict />" in written and b"<item />" in written


@pytest.mark.parametrize("value", ["plain", "caf\u00e9 \u2603", "tab\tnew\nline\rcr",
                                   "bell\x07", "caf\u00e9\x1f", "\ufffe", "x\uffffy",
                                   "lone \udc80", "\u00e9\ud800\r"])
def test_answers_replace_what_xml_cannot_carry(value):
    """The direct writer's check for characters XML cannot carry (on the encoded bytes)
    finds them as the ElementTree writer's expression does, ASCII or not."""
    body = {"tagSet": [{"key": "k", "value": value}]}
    root = ET.Element("DescribeTagsResponse", xmlns=xmlutil.EC2_NAMESPACE)
    ET.SubElement(root, "requestId").text = "req-1"
    xmlutil.fill(root, body)
    written = xmlutil.query_response("DescribeTags", xmlutil.EC2_NAMESPACE, "req-1", body)
    assert written == xmlutil.document(root)
    ET.fromstring(written)                      # and it parses
