"""EC2 launch templates over real HTTP with boto3: create, versions, describe with filters
and paging, default version, deletes, errors, tags, RunInstances from a template (explicit
parameters win), GetLaunchTemplateData, IAM policies on templates and on what a template
launches, the aws CLI, and the service surface Auto Scaling uses."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from awsutil import error_code
from ec2util import make_image, wait_for_state
from liveutil import start_live_node, stop_live
from s3util import second_account

from eucalite import accounts


@pytest.fixture
def node(tmp_path):
    """A live cloud with node duty on the fake hypervisor."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def _create(ec2, name="web", data=None, **kwargs):
    data = {"ImageId": "emi-0a1b2c3d", "InstanceType": "m1.small"} if data is None else data
    return ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data,
                                      **kwargs)["LaunchTemplate"]


# --- create and describe ------------------------------------------------------------

def test_create_and_describe(live):
    ec2 = live.client("ec2")
    made = _create(ec2, "web", VersionDescription="first",
                   TagSpecifications=[{"ResourceType": "launch-template",
                                       "Tags": [{"Key": "team", "Value": "blue"}]}])
    assert made["LaunchTemplateId"].startswith("lt-") and len(made["LaunchTemplateId"]) == 20
    assert made["LaunchTemplateName"] == "web"
    assert made["DefaultVersionNumber"] == 1 and made["LatestVersionNumber"] == 1
    assert made["CreatedBy"].endswith(":user/admin") and "CreateTime" in made
    assert made["Tags"] == [{"Key": "team", "Value": "blue"}]

    by_id = ec2.describe_launch_templates(LaunchTemplateIds=[made["LaunchTemplateId"]])
    by_name = ec2.describe_launch_templates(LaunchTemplateNames=["web"])
    assert by_id["LaunchTemplates"] == by_name["LaunchTemplates"] == [made]

    version = ec2.describe_launch_template_versions(
        LaunchTemplateId=made["LaunchTemplateId"])["LaunchTemplateVersions"]
    assert len(version) == 1
    assert version[0]["VersionNumber"] == 1 and version[0]["DefaultVersion"] is True
    assert version[0]["VersionDescription"] == "first"
    assert version[0]["LaunchTemplateData"] == {"ImageId": "emi-0a1b2c3d",
                                                "InstanceType": "m1.small"}


def test_every_supported_data_member_comes_back(live):
    ec2 = live.client("ec2")
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    data = {
        "ImageId": "emi-0a1b2c3d", "InstanceType": "m1.large", "KeyName": "k",
        "KernelId": "eki-00000001", "RamDiskId": "eri-00000001", "UserData": user_data,
        "SecurityGroups": ["default"], "SecurityGroupIds": ["sg-0123456789abcdef0"],
        "Placement": {"AvailabilityZone": "zone-a"},
        "TagSpecifications": [{"ResourceType": "instance",
                               "Tags": [{"Key": "role", "Value": "web"}]}],
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2,
                            "HttpEndpoint": "enabled"},
        "BlockDeviceMappings": [{"DeviceName": "/dev/sdb",
                                 "Ebs": {"VolumeSize": 2, "DeleteOnTermination": True,
                                         "VolumeType": "standard"}}],
        "IamInstanceProfile": {"Name": "app"},
        "Monitoring": {"Enabled": True},
        "DisableApiTermination": True, "DisableApiStop": False,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": False}],
    }
    made = _create(ec2, "full", data)
    [version] = ec2.describe_launch_template_versions(
        LaunchTemplateId=made["LaunchTemplateId"])["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"] == data


@pytest.mark.parametrize("member, value", [
    ("CpuOptions", {"CoreCount": 2}),
    ("InstanceMarketOptions", {"MarketType": "spot"}),
    ("EbsOptimized", True),
    ("LicenseSpecifications", [{"LicenseConfigurationArn": "arn:aws:x"}]),
    ("Placement", {"Tenancy": "dedicated"}),
    ("BlockDeviceMappings", [{"DeviceName": "/dev/sdb", "Ebs": {"Encrypted": True}}]),
    ("NetworkInterfaces", [{"DeviceIndex": 0, "SubnetId": "subnet-1"}]),
    ("ImageId", "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"),
])
def test_members_this_cloud_cannot_launch_with_are_refused(live, member, value):
    ec2 = live.client("ec2")
    data = {"ImageId": "emi-0a1b2c3d", member: value}
    assert error_code(ec2.create_launch_template, LaunchTemplateName="x-1",
                      LaunchTemplateData=data) == "UnsupportedOperation"
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []


def test_create_errors(live):
    ec2 = live.client("ec2")
    _create(ec2, "taken")
    assert error_code(_create, ec2, "taken") == \
        "InvalidLaunchTemplateName.AlreadyExistsException"
    assert error_code(_create, ec2, "no") == "InvalidLaunchTemplateName.MalformedException"
    assert error_code(_create, ec2, "bad name!") == \
        "InvalidLaunchTemplateName.MalformedException"
    assert error_code(_create, ec2, "x" * 129) == \
        "InvalidLaunchTemplateName.MalformedException"
    assert error_code(_create, ec2, "ok-name", {"UserData": "not base64!"}) == \
        "InvalidParameterValue"
    assert error_code(_create, ec2, "ok-name", {
        "MetadataOptions": {"HttpTokens": "sometimes"}}) == "InvalidParameterValue"
    assert error_code(_create, ec2, "ok-name", {
        "InstanceInitiatedShutdownBehavior": "explode"}) == "InvalidParameterValue"
    assert error_code(_create, ec2, "ok-name", {"TagSpecifications": [
        {"ResourceType": "network-interface", "Tags": [{"Key": "a", "Value": "b"}]}]}) == \
        "InvalidParameterValue"
    assert error_code(_create, ec2, "ok-name", {"NetworkInterfaces": [
        {"DeviceIndex": 1, "AssociatePublicIpAddress": True}]}) == "InvalidParameterValue"
    assert error_code(_create, ec2, "ok-name",
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "a", "Value": "b"}]}]) == \
        "InvalidParameterValue"
    # AWS does not look up what the data names when the template is made
    _create(ec2, "lazy", {"ImageId": "emi-ffffffff", "KeyName": "nowhere"})
    names = [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]]
    assert names == ["taken", "lazy"]


def test_client_token_makes_one_template(live):
    ec2 = live.client("ec2")
    first = _create(ec2, "once", ClientToken="token-1")
    again = _create(ec2, "once", ClientToken="token-1")
    assert again["LaunchTemplateId"] == first["LaunchTemplateId"]
    assert error_code(_create, ec2, "other", ClientToken="token-1") == \
        "IdempotentParameterMismatch"
    assert len(ec2.describe_launch_templates()["LaunchTemplates"]) == 1
    assert error_code(_create, ec2, "long", ClientToken="t" * 65) == "InvalidParameterValue"
    assert error_code(ec2.create_launch_template_version, LaunchTemplateName="once",
                      LaunchTemplateData={}, ClientToken="t" * 65) == "InvalidParameterValue"
    version = ec2.create_launch_template_version(LaunchTemplateName="once",
                                                 LaunchTemplateData={}, ClientToken="v")
    retried = ec2.create_launch_template_version(LaunchTemplateName="once",
                                                 LaunchTemplateData={}, ClientToken="v")
    assert version["LaunchTemplateVersion"]["VersionNumber"] == \
        retried["LaunchTemplateVersion"]["VersionNumber"] == 2


# --- versions -----------------------------------------------------------------------

def test_versions_source_version_and_default(live):
    ec2 = live.client("ec2")
    template_id = _create(ec2, "app", {"ImageId": "emi-0a1b2c3d", "InstanceType": "m1.small",
                                       "KeyName": "k1"})["LaunchTemplateId"]
    second = ec2.create_launch_template_version(
        LaunchTemplateId=template_id, SourceVersion="1", VersionDescription="bigger",
        LaunchTemplateData={"InstanceType": "m1.large"})["LaunchTemplateVersion"]
    assert second["VersionNumber"] == 2 and second["DefaultVersion"] is False
    # inherits what the source had, except what the new data gives
    assert second["LaunchTemplateData"] == {"ImageId": "emi-0a1b2c3d",
                                            "InstanceType": "m1.large", "KeyName": "k1"}
    third = ec2.create_launch_template_version(
        LaunchTemplateName="app", LaunchTemplateData={"ImageId": "emi-11111111"}
    )["LaunchTemplateVersion"]
    assert third["VersionNumber"] == 3
    assert third["LaunchTemplateData"] == {"ImageId": "emi-11111111"}

    def numbers(**kwargs):
        return [v["VersionNumber"] for v in ec2.describe_launch_template_versions(
            LaunchTemplateId=template_id, **kwargs)["LaunchTemplateVersions"]]

    assert numbers() == [3, 2, 1]
    assert numbers(Versions=["$Latest"]) == [3]
    assert numbers(Versions=["$Default"]) == [1]
    assert numbers(Versions=["1", "3"]) == [3, 1]
    assert numbers(MinVersion="2") == [3, 2]
    assert numbers(MaxVersion="2") == [2, 1]
    assert numbers(MinVersion="2", MaxVersion="2") == [2]
    assert numbers(Filters=[{"Name": "instance-type", "Values": ["m1.large"]}]) == [2]
    assert numbers(Filters=[{"Name": "is-default-version", "Values": ["true"]}]) == [1]
    assert numbers(Filters=[{"Name": "image-id", "Values": ["emi-1*"]}]) == [3]

    modified = ec2.modify_launch_template(LaunchTemplateId=template_id,
                                          DefaultVersion="2")["LaunchTemplate"]
    assert modified["DefaultVersionNumber"] == 2 and modified["LatestVersionNumber"] == 3
    assert numbers(Versions=["$Default"]) == [2]
    ec2.modify_launch_template(LaunchTemplateName="app", DefaultVersion="$Latest")
    assert ec2.describe_launch_templates(LaunchTemplateIds=[template_id])[
        "LaunchTemplates"][0]["DefaultVersionNumber"] == 3

    assert error_code(ec2.describe_launch_template_versions, LaunchTemplateId=template_id,
                      Versions=["9"]) == "InvalidLaunchTemplateId.VersionNotFound"
    assert error_code(ec2.modify_launch_template, LaunchTemplateId=template_id,
                      DefaultVersion="9") == "InvalidLaunchTemplateId.VersionNotFound"
    assert error_code(ec2.create_launch_template_version, LaunchTemplateId=template_id,
                      SourceVersion="9", LaunchTemplateData={}) == \
        "InvalidLaunchTemplateId.VersionNotFound"


def test_latest_and_default_of_every_template(live):
    ec2 = live.client("ec2")
    for name in ("one", "two"):
        _create(ec2, name)
        ec2.create_launch_template_version(LaunchTemplateName=name,
                                           LaunchTemplateData={"InstanceType": "m1.large"})
    found = ec2.describe_launch_template_versions(
        Versions=["$Latest", "$Default"])["LaunchTemplateVersions"]
    assert [(v["LaunchTemplateName"], v["VersionNumber"]) for v in found] == \
        [("one", 2), ("one", 1), ("two", 2), ("two", 1)]
    assert error_code(ec2.describe_launch_template_versions) == "MissingParameter"
    assert error_code(ec2.describe_launch_template_versions, Versions=["1"]) == \
        "MissingParameter"


def test_delete_versions_reports_each(live):
    ec2 = live.client("ec2")
    template_id = _create(ec2, "many")["LaunchTemplateId"]
    for _ in range(3):
        ec2.create_launch_template_version(LaunchTemplateId=template_id,
                                           LaunchTemplateData={"KeyName": "k"})
    answer = ec2.delete_launch_template_versions(LaunchTemplateId=template_id,
                                                 Versions=["2", "3", "1", "7"])
    assert [(i["LaunchTemplateId"], i["LaunchTemplateName"], i["VersionNumber"])
            for i in answer["SuccessfullyDeletedLaunchTemplateVersions"]] == \
        [(template_id, "many", 2), (template_id, "many", 3)]
    failed = {i["VersionNumber"]: i["ResponseError"]["Code"]
              for i in answer["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert failed == {1: "unexpectedError", 7: "launchTemplateVersionDoesNotExist"}
    left = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)
    assert [v["VersionNumber"] for v in left["LaunchTemplateVersions"]] == [4, 1]
    # numbers are never reused
    again = ec2.create_launch_template_version(LaunchTemplateId=template_id,
                                               LaunchTemplateData={})
    assert again["LaunchTemplateVersion"]["VersionNumber"] == 5

    missing = ec2.delete_launch_template_versions(LaunchTemplateName="nothing-here",
                                                  Versions=["1"])
    assert missing["SuccessfullyDeletedLaunchTemplateVersions"] == []
    assert [i["ResponseError"]["Code"] for i in
            missing["UnsuccessfullyDeletedLaunchTemplateVersions"]] == \
        ["launchTemplateNameDoesNotExist"]


def test_delete_template_takes_versions_and_tags(live):
    ec2 = live.client("ec2")
    template_id = _create(ec2, "gone", TagSpecifications=[{
        "ResourceType": "launch-template", "Tags": [{"Key": "a", "Value": "b"}]}])[
        "LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={})
    deleted = ec2.delete_launch_template(LaunchTemplateName="gone")["LaunchTemplate"]
    assert deleted["LaunchTemplateId"] == template_id and deleted["LatestVersionNumber"] == 2
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert ec2.describe_tags(Filters=[{"Name": "resource-id",
                                       "Values": [template_id]}])["Tags"] == []
    assert error_code(ec2.delete_launch_template, LaunchTemplateId=template_id) == \
        "InvalidLaunchTemplateId.NotFound"
    # the name is free again
    assert _create(ec2, "gone")["LaunchTemplateId"] != template_id


def test_lookup_errors(live):
    ec2 = live.client("ec2")
    assert error_code(ec2.describe_launch_templates,
                      LaunchTemplateIds=["lt-0123456789abcdef0"]) == \
        "InvalidLaunchTemplateId.NotFound"
    assert error_code(ec2.describe_launch_templates, LaunchTemplateIds=["lt-nope"]) == \
        "InvalidLaunchTemplateId.Malformed"
    assert error_code(ec2.describe_launch_templates, LaunchTemplateNames=["nope"]) == \
        "InvalidLaunchTemplateName.NotFoundException"
    assert error_code(ec2.modify_launch_template, LaunchTemplateName="nope",
                      DefaultVersion="1") == "InvalidLaunchTemplateName.NotFoundException"
    assert error_code(ec2.create_launch_template_version,
                      LaunchTemplateData={"KeyName": "k"}) == "MissingParameter"
    _create(ec2, "both")
    template_id = ec2.describe_launch_templates()["LaunchTemplates"][0]["LaunchTemplateId"]
    assert error_code(ec2.delete_launch_template, LaunchTemplateId=template_id,
                      LaunchTemplateName="both") == "InvalidParameterCombination"


def test_templates_are_the_accounts_own(live):
    ec2 = live.client("ec2")
    template_id = _create(ec2, "mine")["LaunchTemplateId"]
    other, _ = second_account(live, service="ec2")
    assert other.describe_launch_templates()["LaunchTemplates"] == []
    assert error_code(other.delete_launch_template, LaunchTemplateId=template_id) == \
        "InvalidLaunchTemplateId.NotFound"
    assert error_code(other.create_tags, Resources=[template_id],
                      Tags=[{"Key": "a", "Value": "b"}]) == "InvalidLaunchTemplateId.NotFound"
    # the same name in another account is another template
    assert _create(other, "mine")["LaunchTemplateId"] != template_id


# --- describe: filters, tags, paging ------------------------------------------------

def test_filters_and_tags(live):
    ec2 = live.client("ec2")
    blue = _create(ec2, "blue-web")["LaunchTemplateId"]
    _create(ec2, "red-web")
    ec2.create_tags(Resources=[blue], Tags=[{"Key": "colour", "Value": "blue"}])

    def names(filters):
        return [t["LaunchTemplateName"] for t in
                ec2.describe_launch_templates(Filters=filters)["LaunchTemplates"]]

    assert names([{"Name": "launch-template-name", "Values": ["red-*"]}]) == ["red-web"]
    assert names([{"Name": "tag:colour", "Values": ["blue"]}]) == ["blue-web"]
    assert names([{"Name": "tag-key", "Values": ["colour"]}]) == ["blue-web"]
    assert error_code(ec2.describe_launch_templates,
                      Filters=[{"Name": "colour", "Values": ["x"]}]) == "InvalidParameterValue"
    tagged = ec2.describe_tags(Filters=[{"Name": "resource-type",
                                         "Values": ["launch-template"]}])["Tags"]
    assert tagged == [{"ResourceId": blue, "ResourceType": "launch-template",
                       "Key": "colour", "Value": "blue"}]


def test_paging(live):
    ec2 = live.client("ec2")
    made = [_create(ec2, f"tpl-{index:02d}")["LaunchTemplateId"] for index in range(7)]
    seen, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = ec2.describe_launch_templates(MaxResults=3, **kwargs)
        assert len(page["LaunchTemplates"]) <= 3
        seen += [t["LaunchTemplateId"] for t in page["LaunchTemplates"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == made
    paginator = ec2.get_paginator("describe_launch_templates")
    assert [t["LaunchTemplateId"] for p in paginator.paginate(PaginationConfig={"PageSize": 2})
            for t in p["LaunchTemplates"]] == made

    for _ in range(4):
        ec2.create_launch_template_version(LaunchTemplateId=made[0], LaunchTemplateData={})
    pages = ec2.get_paginator("describe_launch_template_versions").paginate(
        LaunchTemplateId=made[0], PaginationConfig={"PageSize": 2})
    assert [v["VersionNumber"] for p in pages for v in p["LaunchTemplateVersions"]] == \
        [5, 4, 3, 2, 1]
    assert error_code(ec2.describe_launch_templates, MaxResults=201) == \
        "InvalidParameterValue"
    assert error_code(ec2.describe_launch_templates, NextToken="garbage") == \
        "InvalidPaginationToken"


# --- launching ----------------------------------------------------------------------

def _instance(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]


def test_run_instances_from_a_template(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    ec2.create_key_pair(KeyName="deploy")
    group = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    user_data = b"#!/bin/sh\necho from-template\n"
    template_id = _create(ec2, "launcher", {
        "ImageId": image, "InstanceType": "m1.large", "KeyName": "deploy",
        "SecurityGroupIds": [group], "UserData": base64.b64encode(user_data).decode(),
        "TagSpecifications": [{"ResourceType": "instance",
                               "Tags": [{"Key": "role", "Value": "web"},
                                        {"Key": "tier", "Value": "front"}]}],
        "DisableApiTermination": True, "Monitoring": {"Enabled": True},
        "MetadataOptions": {"HttpTokens": "required"},
    })["LaunchTemplateId"]

    run = ec2.run_instances(MinCount=1, MaxCount=1,
                            LaunchTemplate={"LaunchTemplateId": template_id})
    instance = run["Instances"][0]
    assert instance["ImageId"] == image and instance["InstanceType"] == "m1.large"
    assert instance["KeyName"] == "deploy"
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [group]
    assert instance["Monitoring"]["State"] == "enabled"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    tags = {t["Key"]: t["Value"] for t in _instance(ec2, instance["InstanceId"])["Tags"]}
    assert tags == {"role": "web", "tier": "front",
                    "aws:ec2launchtemplate:id": template_id,
                    "aws:ec2launchtemplate:version": "1"}
    attribute = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                                Attribute="userData")
    assert base64.b64decode(attribute["UserData"]["Value"]) == user_data
    assert ec2.describe_instance_attribute(
        InstanceId=instance["InstanceId"],
        Attribute="disableApiTermination")["DisableApiTermination"]["Value"] is True
    wait_for_state(ec2, [instance["InstanceId"]], "running")


def test_explicit_parameters_win_over_the_template(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    other_image = make_image(node, "emi-0f0f0f0f")
    ec2.create_key_pair(KeyName="k1")
    ec2.create_key_pair(KeyName="k2")
    ec2.create_launch_template(LaunchTemplateName="base", LaunchTemplateData={
        "ImageId": image, "InstanceType": "m1.small", "KeyName": "k1",
        "TagSpecifications": [{"ResourceType": "instance",
                               "Tags": [{"Key": "role", "Value": "web"},
                                        {"Key": "env", "Value": "test"}]}]})
    ec2.create_launch_template_version(LaunchTemplateName="base",
                                       LaunchTemplateData={"InstanceType": "m1.large"},
                                       SourceVersion="1")
    run = ec2.run_instances(
        MinCount=1, MaxCount=1, ImageId=other_image, KeyName="k2",
        LaunchTemplate={"LaunchTemplateName": "base", "Version": "$Latest"},
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": "env", "Value": "prod"}]}])
    instance = run["Instances"][0]
    assert instance["ImageId"] == other_image and instance["KeyName"] == "k2"
    assert instance["InstanceType"] == "m1.large"        # from version 2
    tags = {t["Key"]: t["Value"] for t in _instance(ec2, instance["InstanceId"])["Tags"]}
    assert tags["role"] == "web" and tags["env"] == "prod"
    assert tags["aws:ec2launchtemplate:version"] == "2"

    default = ec2.run_instances(MinCount=1, MaxCount=1,
                                LaunchTemplate={"LaunchTemplateName": "base"})
    assert default["Instances"][0]["InstanceType"] == "m1.small"     # version 1


def test_the_requests_groups_replace_the_templates(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    web = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    db_group = ec2.create_security_group(GroupName="db", Description="db")["GroupId"]
    ec2.create_launch_template(LaunchTemplateName="grouped", LaunchTemplateData={
        "ImageId": image, "SecurityGroupIds": [web]})
    ran = ec2.run_instances(MinCount=1, MaxCount=1, SecurityGroups=["db"],
                            LaunchTemplate={"LaunchTemplateName": "grouped"})
    assert [g["GroupId"] for g in ran["Instances"][0]["SecurityGroups"]] == [db_group]
    ran = ec2.run_instances(MinCount=1, MaxCount=1,
                            LaunchTemplate={"LaunchTemplateName": "grouped"})
    assert [g["GroupId"] for g in ran["Instances"][0]["SecurityGroups"]] == [web]


def test_volume_tags_reach_the_volumes_a_launch_makes(ebs):
    ec2 = ebs.client("ec2")
    image = make_image(ebs)
    ec2.create_launch_template(LaunchTemplateName="disks", LaunchTemplateData={
        "ImageId": image,
        "BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}],
        "TagSpecifications": [{"ResourceType": "volume",
                               "Tags": [{"Key": "backup", "Value": "daily"},
                                        {"Key": "owner", "Value": "web"}]}]})
    from_template = ec2.run_instances(
        MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "disks"},
        TagSpecifications=[{"ResourceType": "volume",
                            "Tags": [{"Key": "owner", "Value": "ops"}]}])
    plain = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 1}}],
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": "v"}]},
                           {"ResourceType": "instance", "Tags": [{"Key": "i", "Value": "j"}]}])
    by_instance = {}
    for item in ec2.describe_volumes()["Volumes"]:
        [attachment] = item["Attachments"]
        by_instance[attachment["InstanceId"]] = {t["Key"]: t["Value"]
                                                 for t in item.get("Tags", [])}
    assert by_instance[from_template["Instances"][0]["InstanceId"]] == \
        {"backup": "daily", "owner": "ops"}
    assert by_instance[plain["Instances"][0]["InstanceId"]] == {"k": "v"}


def test_run_instances_template_errors(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    template_id = _create(ec2, "broken", {"InstanceType": "m1.small"})["LaunchTemplateId"]
    # the template names no image and neither does the request
    assert error_code(ec2.run_instances, MinCount=1, MaxCount=1,
                      LaunchTemplate={"LaunchTemplateId": template_id}) == "MissingParameter"
    # ... but the request may
    ran = ec2.run_instances(MinCount=1, MaxCount=1, ImageId=image,
                            LaunchTemplate={"LaunchTemplateId": template_id})
    assert ran["Instances"][0]["ImageId"] == image
    assert error_code(ec2.run_instances, MinCount=1, MaxCount=1,
                      LaunchTemplate={"LaunchTemplateId": template_id, "Version": "4"}) == \
        "InvalidLaunchTemplateId.VersionNotFound"
    assert error_code(ec2.run_instances, MinCount=1, MaxCount=1,
                      LaunchTemplate={"LaunchTemplateName": "absent"}) == \
        "InvalidLaunchTemplateName.NotFoundException"
    assert error_code(ec2.run_instances, MinCount=1, MaxCount=1,
                      LaunchTemplate={"LaunchTemplateId": "lt-0123456789abcdef0"}) == \
        "InvalidLaunchTemplateId.NotFound"
    # what the template names is checked at launch, as RunInstances checks it
    ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={
        "ImageId": image, "KeyName": "no-such-key"})
    assert error_code(ec2.run_instances, MinCount=1, MaxCount=1,
                      LaunchTemplate={"LaunchTemplateId": template_id,
                                      "Version": "$Latest"}) == "InvalidKeyPair.NotFound"


def test_get_launch_template_data_from_an_instance(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    ec2.create_key_pair(KeyName="k")
    instance_id = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="m1.large", KeyName="k",
        UserData="hello", TagSpecifications=[{"ResourceType": "instance",
                                              "Tags": [{"Key": "n", "Value": "v"}]}]
    )["Instances"][0]["InstanceId"]
    data = ec2.get_launch_template_data(InstanceId=instance_id)["LaunchTemplateData"]
    assert data["ImageId"] == image and data["InstanceType"] == "m1.large"
    assert data["KeyName"] == "k"
    assert base64.b64decode(data["UserData"]) == b"hello"
    assert data["TagSpecifications"] == [{"ResourceType": "instance",
                                          "Tags": [{"Key": "n", "Value": "v"}]}]
    assert len(data["SecurityGroupIds"]) == 1
    # which makes a template that launches the same
    template_id = _create(ec2, "copy", data)["LaunchTemplateId"]
    again = ec2.run_instances(MinCount=1, MaxCount=1,
                              LaunchTemplate={"LaunchTemplateId": template_id})
    assert again["Instances"][0]["InstanceType"] == "m1.large"
    # the cloud's aws:ec2launchtemplate:* tags are not the user's: not in the data
    copied = ec2.get_launch_template_data(InstanceId=again["Instances"][0]["InstanceId"])
    assert copied["LaunchTemplateData"]["TagSpecifications"] == data["TagSpecifications"]


def test_service_surface_for_auto_scaling(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    template_id = _create(ec2, "asg", {"ImageId": image, "InstanceType": "m1.large"})[
        "LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template_id,
                                       LaunchTemplateData={"ImageId": image})
    compute = node.services.compute
    with node.app.app_context():
        principal = accounts.root_principal(accounts.get_account("eucalyptus").id)
        row = compute.launch_template(principal, name="asg")
        assert (row.id, row.default_version, row.latest_version) == (template_id, 1, 2)
        request = compute.launch_template_request(principal, template_id=template_id)
        assert request.image_id == image and request.instance_type == "m1.large"
        latest = compute.launch_template_request(principal, name="asg", version="$Latest")
        assert latest.instance_type == "m1.small"          # LaunchRequest's default
        assert latest.system_tags["aws:ec2launchtemplate:version"] == "2"
        with pytest.raises(Exception) as caught:
            compute.launch_template_request(principal, name="asg", version="3")
        assert caught.value.code == "InvalidLaunchTemplateId.VersionNotFound"


# --- IAM ----------------------------------------------------------------------------

def _user_with_policy(live, name, *statements):
    """A boto3 EC2 client for a new user of the admin's account with *statements*."""
    iam = live.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return live.client("ec2", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])


def test_policies_see_the_template_and_what_it_launches(node):
    ec2 = node.client("ec2")
    image = make_image(node)
    allowed_image = make_image(node, "emi-0f0f0f0f")
    ec2.create_launch_template(LaunchTemplateName="plain",
                               LaunchTemplateData={"ImageId": image})
    ec2.create_launch_template(
        LaunchTemplateName="prod", LaunchTemplateData={"ImageId": allowed_image},
        TagSpecifications=[{"ResourceType": "launch-template",
                            "Tags": [{"Key": "env", "Value": "prod"}]}])
    user = _user_with_policy(
        node, "dev",
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:RunInstances",
         "Resource": f"arn:aws:ec2:*::image/{image}"},
        {"Effect": "Deny", "Action": ["ec2:RunInstances", "ec2:DeleteLaunchTemplate"],
         "Resource": "arn:aws:ec2:*:*:launch-template/*",
         "Condition": {"StringEquals": {"ec2:ResourceTag/env": "prod"}}})
    # the template's image is denied, though the request names none
    assert error_code(user.run_instances, MinCount=1, MaxCount=1,
                      LaunchTemplate={"LaunchTemplateName": "plain"}) == \
        "UnauthorizedOperation"
    # replacing it with an allowed image in the request lets the launch through
    ran = user.run_instances(MinCount=1, MaxCount=1, ImageId=allowed_image,
                             LaunchTemplate={"LaunchTemplateName": "plain"})
    assert ran["Instances"][0]["ImageId"] == allowed_image
    # a tagged template is denied by its tags, by name or by id
    prod_id = ec2.describe_launch_templates(LaunchTemplateNames=["prod"])[
        "LaunchTemplates"][0]["LaunchTemplateId"]
    for named in ({"LaunchTemplateName": "prod"}, {"LaunchTemplateId": prod_id}):
        assert error_code(user.run_instances, MinCount=1, MaxCount=1,
                          LaunchTemplate=named) == "UnauthorizedOperation"
        assert error_code(user.delete_launch_template, **named) == "UnauthorizedOperation"
    user.delete_launch_template(LaunchTemplateName="plain")


def test_a_user_without_policies_may_not_touch_templates(live):
    ec2 = live.client("ec2")
    _create(ec2, "kept")
    user = _user_with_policy(live, "nobody", {"Effect": "Allow", "Action": "s3:ListBucket",
                                              "Resource": "*"})
    for call, kwargs in ((user.describe_launch_templates, {}),
                         (user.create_launch_template,
                          {"LaunchTemplateName": "x-y", "LaunchTemplateData": {}}),
                         (user.delete_launch_template, {"LaunchTemplateName": "kept"}),
                         (user.create_launch_template_version,
                          {"LaunchTemplateName": "kept", "LaunchTemplateData": {}})):
        assert error_code(call, **kwargs) == "UnauthorizedOperation"


# --- the aws CLI --------------------------------------------------------------------

def test_aws_cli_create_describe_run(node):
    image = make_image(node)
    node.client("ec2").create_key_pair(KeyName="cli-key")
    cli = str(Path(sys.executable).parent / "aws")

    def aws(*args) -> dict:
        result = subprocess.run([cli, "ec2", *args, "--output", "json"], env=node.env(),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    made = aws("create-launch-template", "--launch-template-name", "cli-web",
               "--version-description", "v1", "--launch-template-data",
               json.dumps({"ImageId": image, "InstanceType": "m1.large",
                           "KeyName": "cli-key"}))["LaunchTemplate"]
    aws("create-launch-template-version", "--launch-template-name", "cli-web",
        "--source-version", "1", "--launch-template-data", '{"InstanceType": "m1.small"}')
    described = aws("describe-launch-templates", "--launch-template-names", "cli-web")
    assert described["LaunchTemplates"][0]["LaunchTemplateId"] == made["LaunchTemplateId"]
    assert described["LaunchTemplates"][0]["LatestVersionNumber"] == 2
    versions = aws("describe-launch-template-versions", "--launch-template-id",
                   made["LaunchTemplateId"], "--versions", "$Latest")
    assert versions["LaunchTemplateVersions"][0]["LaunchTemplateData"] == {
        "ImageId": image, "InstanceType": "m1.small", "KeyName": "cli-key"}
    ran = aws("run-instances", "--count", "1", "--launch-template",
              "LaunchTemplateName=cli-web,Version=1")
    assert ran["Instances"][0]["InstanceType"] == "m1.large"
    assert ran["Instances"][0]["KeyName"] == "cli-key"
    aws("modify-launch-template", "--launch-template-name", "cli-web",
        "--default-version", "2")
    ran = aws("run-instances", "--count", "1", "--launch-template",
              f"LaunchTemplateId={made['LaunchTemplateId']}")
    assert ran["Instances"][0]["InstanceType"] == "m1.small"
