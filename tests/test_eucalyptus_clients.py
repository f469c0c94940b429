"""Clients written for Eucalyptus against a live cloud: EC2 at the classic
``/services/Eucalyptus``, Walrus at ``/services/Walrus``, the classic paths of services still to
come answering in their own protocol, DescribeInstanceTypes in Eucalyptus' shape, the old
unnumbered list parameters, and ``eucalite credentials --format eucarc`` sourced by a shell.
(libcloud's Eucalyptus driver has its own file: tests/test_libcloud.py.)"""
from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import boto3
import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from click.testing import CliRunner

from eucalite.cli import main
from eucalite.config import SERVED_FILE
from eucalite.httpserver import errors as http_errors
from ec2util import make_image
from eucarcutil import check_euca2ools_values, sourced
from serverutil import AWS

EUCA_3_3 = "http://msgs.eucalyptus.com/3.3.0"


def client(live, service: str, path: str, **config):
    """A boto3 client for *service* at *path* of the live server, never retrying."""
    return boto3.client(service, endpoint_url=live.base_url + path,
                        aws_access_key_id=live.key_id, aws_secret_access_key=live.secret,
                        region_name=live.region,
                        config=Config(retries={"max_attempts": 1}, **config))


def query(live, path: str, params: dict, service: str = "ec2") -> requests.Response:
    """A Query request of *params* POSTed to *path*, signed with SigV4 for *service*."""
    url = live.base_url + path
    body = urlencode(params)
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(Credentials(live.key_id, live.secret), service,
                            live.region).add_auth(request)
    return requests.post(url, data=body, headers=dict(request.prepare().headers))


def error_code(response: requests.Response) -> str:
    return ET.fromstring(response.content).find("./Errors/Error/Code").text


# --- EC2 at /services/Eucalyptus -------------------------------------------------------

def test_ec2_is_served_at_the_classic_path(live):
    classic = client(live, "ec2", "/services/Eucalyptus")
    assert classic.describe_regions()["Regions"] == \
        live.client("ec2").describe_regions()["Regions"]
    classic.create_key_pair(KeyName="classic")
    assert [pair["KeyName"] for pair in live.client("ec2").describe_key_pairs()["KeyPairs"]] \
        == ["classic"]
    with pytest.raises(ClientError) as caught:
        classic.describe_images(ImageIds=["ami-12345678"])
    assert caught.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


def test_aws_cli_at_the_classic_path(live):
    env = live.env()
    env["AWS_ENDPOINT_URL_EC2"] = live.base_url + "/services/Eucalyptus"
    result = subprocess.run([AWS, "ec2", "describe-availability-zones", "--output", "json"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    zones = live.client("ec2").describe_availability_zones()["AvailabilityZones"]
    assert json.loads(result.stdout)["AvailabilityZones"] == zones


def test_instance_types_in_eucalyptus_shape_when_the_version_asks(cloud):
    live = cloud
    aws = live.client("ec2").describe_instance_types()["InstanceTypes"]
    small = next(item for item in aws if item["InstanceType"] == "m1.small")
    expected = {"name": "m1.small", "cpu": str(small["VCpuInfo"]["DefaultVCpus"]),
                "memory": str(small["MemoryInfo"]["SizeInMiB"]),
                "disk": str(small["InstanceStorageInfo"]["TotalSizeInGB"]),
                "networkInterfaces": "1"}

    for version, path in (("3.3.0", "/services/compute"), ("4.4", "/services/compute"),
                          ("2016-11-15", "/services/Eucalyptus")):
        response = query(live, path, {"Action": "DescribeInstanceTypes", "Version": version})
        assert response.status_code == 200, response.text
        namespace = EUCA_3_3 if version.startswith("20") \
            else f"http://msgs.eucalyptus.com/{version}"
        root = ET.fromstring(response.content)
        assert root.tag == f"{{{namespace}}}DescribeInstanceTypesResponse"
        items = root.findall(f"{{{namespace}}}instanceTypeDetails/{{{namespace}}}item")
        assert len(items) == len(aws)
        found = {child.tag.split("}")[1]: child.text
                 for child in next(item for item in items
                                   if item.find(f"{{{namespace}}}name").text == "m1.small")}
        assert found == expected

    # euca-describe-instance-types --show-capacity: the admin sees each zone's free / max.
    response = query(live, "/services/Eucalyptus", {"Action": "DescribeInstanceTypes",
                                                    "Version": "3.3.0", "Availability": "true",
                                                    "InstanceType.1": "m1.small"})
    ns = {"e": EUCA_3_3}
    zones = ET.fromstring(response.content).findall(
        "e:instanceTypeDetails/e:item/e:availability/e:item", ns)
    capacity = live.app.extensions["eucalite"].compute
    with live.app.app_context():
        expected_zones = {zone: next((free, maximum) for name, free, maximum in counts
                                     if name == "m1.small")
                          for zone, counts in capacity.capacity()["types"].items()}
    assert all(maximum > 0 for _, maximum in expected_zones.values())
    assert {zone.find("e:zoneName", ns).text: (int(zone.find("e:available", ns).text),
                                               int(zone.find("e:max", ns).text))
            for zone in zones} == expected_zones and expected_zones

    # AWS's Version at AWS's path: AWS's shape.
    plain = query(live, "/services/compute", {"Action": "DescribeInstanceTypes",
                                              "Version": "2016-11-15"})
    assert b"instanceTypeSet" in plain.content and b"instanceTypeDetails" not in plain.content


# --- old singular parameter forms ------------------------------------------------------

def test_image_block_device_mapping_attribute_by_api_version(cloud):
    """AWS answers the deprecated image attribute blockDeviceMapping with AuthFailure;
    clients of an older API version (euca2ools) or of Eucalyptus' get the mappings."""
    image = make_image(cloud, root_device_type="ebs", root_device_name="/dev/sda1",
                       block_devices_json='[{"device": "/dev/sdb", "virtual": "ephemeral0"}]')
    params = {"Action": "DescribeImageAttribute", "ImageId": image,
              "Attribute": "blockDeviceMapping"}
    with pytest.raises(ClientError) as caught:
        cloud.client("ec2").describe_image_attribute(ImageId=image,
                                                     Attribute="blockDeviceMapping")
    assert caught.value.response["Error"]["Code"] == "AuthFailure"
    for path, version in (("/services/compute", "2014-06-15"),
                          ("/services/compute", "3.3.0"), ("/services/Eucalyptus", None)):
        answer = query(cloud, path, {**params, **({"Version": version} if version else {})})
        assert answer.status_code == 200, answer.text
        assert b"<deviceName>/dev/sdb</deviceName>" in answer.content
        assert b"<virtualName>ephemeral0</virtualName>" in answer.content


def test_unnumbered_list_parameters(cloud):
    ec2 = cloud.client("ec2")
    image = make_image(cloud)
    ec2.create_key_pair(KeyName="a")
    ec2.create_key_pair(KeyName="b")
    response = query(cloud, "/services/compute", {"Action": "DescribeKeyPairs",
                                                  "Version": "2016-11-15", "KeyName": "b"})
    assert response.status_code == 200, response.text
    assert b"<keyName>b</keyName>" in response.content and b"<keyName>a<" not in response.content

    images = query(cloud, "/services/compute", {"Action": "DescribeImages",
                                                "Version": "2016-11-15", "ImageId": image})
    assert f"<imageId>{image}</imageId>".encode() in images.content

    ids = [ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"] for _ in range(2)]
    described = query(cloud, "/services/compute", {"Action": "DescribeInstances",
                                                   "Version": "2016-11-15",
                                                   "InstanceId": ids[1]})
    assert ids[1].encode() in described.content and ids[0].encode() not in described.content
    terminated = query(cloud, "/services/compute", {"Action": "TerminateInstances",
                                                    "Version": "2016-11-15",
                                                    "InstanceId": ids[0]})
    assert terminated.status_code == 200, terminated.text
    states = {item["InstanceId"]: item["State"]["Name"] for reservation in
              ec2.describe_instances(InstanceIds=ids)["Reservations"]
              for item in reservation["Instances"]}
    assert states[ids[0]] in ("shutting-down", "terminated")
    assert states[ids[1]] in ("pending", "running")

    # Not every list takes it: CreateTags' ResourceId is numbered only, as in AWS.
    refused = query(cloud, "/services/compute", {"Action": "CreateTags", "Version": "2016-11-15",
                                                 "ResourceId": ids[1], "Tag.1.Key": "k",
                                                 "Tag.1.Value": "v"})
    assert refused.status_code == 400 and error_code(refused) == "InvalidParameterValue"


# --- Walrus at /services/Walrus --------------------------------------------------------

@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_walrus_path_style_under_the_classic_path(live, signature):
    walrus = client(live, "s3", "/services/Walrus", signature_version=signature,
                    s3={"addressing_style": "path"})
    walrus.create_bucket(Bucket="classic")
    walrus.put_object(Bucket="classic", Key="dir/file.txt", Body=b"walrus")
    assert [item["Key"] for item in walrus.list_objects_v2(Bucket="classic")["Contents"]] \
        == ["dir/file.txt"]
    assert walrus.get_object(Bucket="classic", Key="dir/file.txt")["Body"].read() == b"walrus"
    assert "classic" in [bucket["Name"] for bucket in walrus.list_buckets()["Buckets"]]
    url = walrus.generate_presigned_url("get_object",
                                        Params={"Bucket": "classic", "Key": "dir/file.txt"})
    assert "/services/Walrus/classic/" in url and requests.get(url).content == b"walrus"
    # The same store as at the root.
    assert live.client("s3").get_object(Bucket="classic", Key="dir/file.txt")["Body"].read() \
        == b"walrus"
    missing = requests.get(live.base_url + "/services/Walrus/nobucket")
    assert missing.status_code == 404 and b"<Code>NoSuchBucket</Code>" in missing.content
    # What the routing refuses there is in S3's envelope too, not EC2's.
    refused = requests.patch(live.base_url + "/services/Walrus/classic")
    assert refused.status_code == 405
    assert ET.fromstring(refused.content).tag == "Error"


def test_front_end_rejections_under_walrus_are_in_s3s_envelope():
    """What the HTTP front end refuses before the app runs (a timeout, an oversized head)
    is written as the service at the path would: S3 under /services/Walrus."""
    walrus = ET.fromstring(http_errors.document("/services/Walrus/bucket/key", "RequestTimeout",
                                                "slow", "r-1"))
    assert walrus.tag == "Error" and walrus.find("Resource").text == "/services/Walrus/bucket/key"
    ec2 = ET.fromstring(http_errors.document("/services/Eucalyptus", "RequestTimeout", "slow",
                                             "r-1"))
    assert ec2.tag == "Response" and ec2.find("./Errors/Error/Code").text == "RequestTimeout"


# --- Auto Scaling at its classic path -----------------------------------------------------

def test_auto_scaling_answers_at_its_classic_path(live):
    """A eucarc's AWS_AUTO_SCALING_URL (/services/AutoScaling) serves Auto Scaling."""
    answer = client(live, "autoscaling", "/services/AutoScaling").describe_auto_scaling_groups()
    assert answer["AutoScalingGroups"] == []


def test_auto_scaling_authenticates_first(live):
    wrong = boto3.client("autoscaling", endpoint_url=live.base_url + "/services/AutoScaling",
                         aws_access_key_id=live.key_id, aws_secret_access_key="x" * 40,
                         region_name=live.region, config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as caught:
        wrong.describe_auto_scaling_groups()
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = requests.get(live.base_url + "/services/Nothing")
    assert unknown.status_code == 404


# --- eucarc ----------------------------------------------------------------------------

def test_credentials_eucarc_sourced_by_a_shell(live, tmp_path):
    data_dir = live.app.config["EUCALITE"]["data_dir"]
    (tmp_path / "data" / SERVED_FILE).write_text(live.base_url)
    result = CliRunner().invoke(main, ["credentials", "--data-dir", data_dir,
                                       "--format", "eucarc"])
    assert result.exit_code == 0, result.output
    eucarc = tmp_path / "eucarc"
    eucarc.write_text(result.output)
    check_euca2ools_values(live, sourced(eucarc), live.key_id, live.secret)
