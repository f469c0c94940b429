"""Instance types: DescribeInstanceTypes with boto3, Eucalyptus' ModifyInstanceTypeAttribute
(cloud admin only), the service functions and the `instance-type` CLI group."""
from __future__ import annotations

import pytest
from awsutil import error_code, xml_error_code
from botocore.exceptions import ClientError
from click.testing import CliRunner
from ec2util import signed_post
from s3util import second_account

from eucalite import accounts
from eucalite.compute import instance_types
from eucalite.cli.instance_types import instance_type_group


def describe_all(ec2, **kwargs) -> dict[str, dict]:
    pages = ec2.get_paginator("describe_instance_types").paginate(**kwargs)
    return {item["InstanceType"]: item for page in pages for item in page["InstanceTypes"]}


def test_defaults_and_shape(live):
    ec2 = live.client("ec2")
    types = describe_all(ec2)
    assert len(types) == len(instance_types.DEFAULTS)
    small = types["m1.small"]
    assert small["VCpuInfo"]["DefaultVCpus"] == 1
    assert small["MemoryInfo"]["SizeInMiB"] == 256
    assert small["InstanceStorageSupported"] is True
    assert small["InstanceStorageInfo"]["TotalSizeInGB"] == 5
    assert small["SupportedRootDeviceTypes"] == ["ebs", "instance-store"]
    assert small["CurrentGeneration"] is False
    assert types["t2.micro"]["CurrentGeneration"] is True
    assert types["cr1.8xlarge"]["MemoryInfo"]["SizeInMiB"] == 16384
    assert types["cg1.4xlarge"]["InstanceStorageInfo"]["TotalSizeInGB"] == 200
    one = ec2.describe_instance_types(InstanceTypes=["c1.medium"])["InstanceTypes"]
    assert [item["InstanceType"] for item in one] == ["c1.medium"]
    assert one[0]["VCpuInfo"]["DefaultVCpus"] == 2


def test_unknown_type_and_bad_filter(live):
    ec2 = live.client("ec2")
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_instance_types(InstanceTypes=["m1.small", "x9.huge"])
    assert error_code(excinfo) == "InvalidInstanceType"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_instance_types(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_filters(live):
    ec2 = live.client("ec2")

    def names(filters):
        return sorted(describe_all(ec2, Filters=filters))

    assert names([{"Name": "instance-type", "Values": ["t2.*"]}]) == [
        "t2.medium", "t2.micro", "t2.nano", "t2.small"]
    assert names([{"Name": "vcpu-info.default-vcpus", "Values": ["16"]}]) == [
        "cc2.8xlarge", "cg1.4xlarge", "cr1.8xlarge"]
    assert names([{"Name": "memory-info.size-in-mib", "Values": ["256"]}]) == [
        "m1.small", "t1.micro"]
    assert names([{"Name": "instance-storage-info.total-size-in-gb", "Values": ["1?0"]}]) == [
        "cc2.8xlarge", "hi1.4xlarge"]
    assert names([{"Name": "current-generation", "Values": ["true"]},
                  {"Name": "vcpu-info.default-vcpus", "Values": ["2"]}]) == ["t2.medium"]


def test_pagination(live):
    ec2 = live.client("ec2")
    first = ec2.describe_instance_types(MaxResults=5)
    assert len(first["InstanceTypes"]) == 5 and first["NextToken"]
    second = ec2.describe_instance_types(MaxResults=5, NextToken=first["NextToken"])
    assert not {i["InstanceType"] for i in first["InstanceTypes"]} & {
        i["InstanceType"] for i in second["InstanceTypes"]}
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_instance_types(MaxResults=101)
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_instance_types(NextToken="garbage")
    assert error_code(excinfo) == "InvalidPaginationToken"


def test_modify_instance_type_attribute(live):
    response = signed_post(live, "Action=ModifyInstanceTypeAttribute&Version=2016-11-15"
                                 "&InstanceType=m1.small&Cpu=2&Memory=1024&Disk=20")
    assert response.status_code == 200, response.text
    assert b"<return>true</return>" in response.content
    small = live.client("ec2").describe_instance_types(
        InstanceTypes=["m1.small"])["InstanceTypes"][0]
    assert small["VCpuInfo"]["DefaultVCpus"] == 2 and small["MemoryInfo"]["SizeInMiB"] == 1024
    assert small["InstanceStorageInfo"]["TotalSizeInGB"] == 20

    response = signed_post(live, "Action=ModifyInstanceTypeAttribute&Version=2016-11-15"
                                 "&InstanceType=x9.huge&Cpu=2")
    assert response.status_code == 400 and xml_error_code(response) == "InvalidParameterValue"
    response = signed_post(live, "Action=ModifyInstanceTypeAttribute&Version=2016-11-15"
                                 "&InstanceType=m1.small&Cpu=0")
    assert response.status_code == 400 and xml_error_code(response) == "InvalidParameterValue"


def test_modify_refused_to_other_accounts(live):
    second_account(live, "other", "ec2")[0]
    with live.app.app_context():
        key = accounts.first_active_key("other", accounts.ADMIN_USER)
        key_id, secret = key.id, key.secret
    response = signed_post(live, "Action=ModifyInstanceTypeAttribute&Version=2016-11-15"
                                 "&InstanceType=m1.small&Cpu=8", key_id=key_id, secret=secret)
    assert response.status_code == 403 and xml_error_code(response) == "UnauthorizedOperation"


def test_service_functions(live):
    with live.app.app_context():
        instance_types.ensure_defaults()
        instance_types.ensure_defaults()                     # idempotent
        assert [row.name for row in instance_types.list_all()][:2] == ["t1.micro", "m1.small"]
        assert instance_types.get(instance_types.DEFAULT_TYPE).memory_mb == 256
        with pytest.raises(Exception) as excinfo:
            instance_types.get("x9.huge")
        assert excinfo.value.code == "InvalidParameterValue"
        assert "Invalid value 'x9.huge' for InstanceType." in excinfo.value.message


def test_cli_list_and_set(tmp_path):
    runner = CliRunner()
    data_dir = str(tmp_path / "data")
    result = runner.invoke(instance_type_group, ["list", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    assert "m1.small\t1\t256\t5" in result.output
    result = runner.invoke(instance_type_group, ["set", "m1.small", "--cpu", "4", "--memory",
                                                 "2048", "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    result = runner.invoke(instance_type_group, ["list", "--data-dir", data_dir])
    assert "m1.small\t4\t2048\t5" in result.output
    result = runner.invoke(instance_type_group, ["set", "x9.huge", "--cpu", "1",
                                                 "--data-dir", data_dir])
    assert result.exit_code == 1 and "InvalidParameterValue" in result.output
    result = runner.invoke(instance_type_group, ["set", "m1.small", "--data-dir", data_dir])
    assert result.exit_code == 2
