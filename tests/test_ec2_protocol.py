"""EC2 Query protocol over real HTTP: actions, parameters, filters and error envelopes."""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.exceptions import ClientError

from awsutil import error_code, xml_error_code
from ec2util import signed_post
from liveutil import start_live


def test_unknown_action(live):
    response = signed_post(live, "Action=DescribeUnicorns&Version=2016-11-15")
    assert response.status_code == 400
    assert xml_error_code(response) == "InvalidAction"
    root = ET.fromstring(response.content)
    assert root.tag == "Response" and root.find("RequestID").text
    assert response.headers["x-amzn-RequestId"] == root.find("RequestID").text


def test_missing_action(live):
    response = signed_post(live, "Version=2016-11-15")
    assert response.status_code == 400
    assert xml_error_code(response) == "MissingAction"


def test_unknown_parameter(live):
    response = signed_post(live, "Action=DescribeRegions&Version=2016-11-15&Bogus=1")
    assert response.status_code == 400
    assert xml_error_code(response) == "UnknownParameter"


@pytest.mark.parametrize("body, code", [
    ("Action=DescribeRegions&RegionName.x=eucalyptus", "InvalidParameterValue"),
    ("Action=DescribeRegions&RegionName.1.Foo=eucalyptus", "InvalidParameterValue"),
    ("Action=DescribeRegions&Filter.1.Value.1=x", "MissingParameter"),
    ("Action=DescribeRegions&Filter.1.Name=region-name", "InvalidParameterValue"),
    ("Action=DescribeRegions&AllRegions=maybe", "InvalidParameterValue"),
    ("Action=DescribeRegions&RegionName..1=x", "MalformedQueryString"),
])
def test_malformed_parameters(live, body, code):
    response = signed_post(live, body + "&Version=2016-11-15")
    assert response.status_code == 400, response.text
    assert xml_error_code(response) == code


def test_response_shape_and_namespace(live):
    response = signed_post(live, "Action=DescribeRegions&Version=2016-11-15")
    root = ET.fromstring(response.content)
    ns = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
    assert root.tag == ns + "DescribeRegionsResponse"
    assert root.find(ns + "requestId").text == response.headers["x-amzn-RequestId"]
    item = root.find(f"{ns}regionInfo/{ns}item")
    assert item.find(ns + "regionName").text == "eucalyptus"


def test_describe_regions_filters_and_names(live):
    ec2 = live.client("ec2")
    assert ec2.describe_regions(RegionNames=["eucalyptus"])["Regions"]
    assert ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["euca*"]}])["Regions"]
    assert ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["us-*"]}])["Regions"] == []
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_regions(RegionNames=["us-east-1"])
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_regions(Filters=[{"Name": "color", "Values": ["blue"]}])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_describe_availability_zones(live):
    ec2 = live.client("ec2")
    zones = ec2.describe_availability_zones(ZoneNames=["eucalyptus-1a"])["AvailabilityZones"]
    assert zones[0]["RegionName"] == "eucalyptus" and zones[0]["ZoneType"] == "availability-zone"
    by_state = ec2.describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
    assert [zone["ZoneName"] for zone in by_state] == ["eucalyptus-1a"]
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_availability_zones(ZoneNames=["nowhere-1z"])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_zone_names_come_from_config(tmp_path, monkeypatch):
    with monkeypatch.context() as env:         # set while the server reads its config only
        env.setenv("EUCALITE_ZONES", "rack-a, rack-b")
        live, server = start_live(tmp_path / "zones")
    try:
        zones = live.client("ec2").describe_availability_zones()["AvailabilityZones"]
        assert [zone["ZoneName"] for zone in zones] == ["rack-a", "rack-b"]
        assert len({zone["ZoneId"] for zone in zones}) == 2
    finally:
        server.shutdown()


def test_describe_account_attributes(live):
    ec2 = live.client("ec2")
    attributes = ec2.describe_account_attributes(AttributeNames=["supported-platforms"])
    values = attributes["AccountAttributes"][0]["AttributeValues"]
    assert values == [{"AttributeValue": "EC2"}]
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_account_attributes(AttributeNames=["max-unicorns"])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_dry_run(live):
    with pytest.raises(ClientError) as excinfo:
        live.client("ec2").describe_regions(DryRun=True)
    assert error_code(excinfo) == "DryRunOperation"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_dry_run_still_requires_valid_credentials(live):
    with pytest.raises(ClientError) as excinfo:
        live.client("ec2", secret="y" * 40).describe_regions(DryRun=True)
    assert error_code(excinfo) == "AuthFailure"


def test_wrong_method_gets_an_xml_error(live):
    response = requests.put(live.endpoints["ec2"], data="x")
    assert response.status_code == 405
    assert xml_error_code(response) == "MethodNotAllowed"


def test_oversized_body_is_refused(live):
    body = "Action=DescribeRegions&Version=2016-11-15&Pad=" + "x" * (3 * 1024 * 1024)
    response = requests.post(live.endpoints["ec2"], data=body,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert xml_error_code(response) == "RequestEntityTooLarge"


def test_unexpected_exception_is_internal_error_without_traceback(live, monkeypatch, caplog):
    def explode():
        raise RuntimeError("secret detail from deep inside")
    monkeypatch.setattr(live.app.extensions["eucalite"].compute, "regions", explode)
    with caplog.at_level(logging.ERROR):
        response = signed_post(live, "Action=DescribeRegions&Version=2016-11-15")
    assert response.status_code == 500
    assert xml_error_code(response) == "InternalError"
    assert "secret detail" not in response.text and "Traceback" not in response.text
    assert "secret detail from deep inside" in caplog.text


def test_iam_endpoint_authenticates_and_refuses_actions_it_lacks(live):
    iam = live.client("iam")
    with pytest.raises(ClientError) as excinfo:
        iam.list_saml_providers()
    assert error_code(excinfo) == "InvalidAction"
    with pytest.raises(ClientError) as excinfo:
        live.client("iam", secret="z" * 40).get_user()
    assert error_code(excinfo) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as excinfo:
        live.client("iam", key_id="AKIANOTAREALKEY00000").get_user()
    assert error_code(excinfo) == "InvalidClientTokenId"


def test_unknown_service_path_is_not_s3(live):
    response = requests.post(live.base_url + "/services/Nowhere", data="Action=X")
    assert response.status_code == 404
    assert xml_error_code(response) == "NotFound"
    assert live.endpoints["ec2"] in response.text
