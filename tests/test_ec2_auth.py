"""EC2 Query API authentication over real HTTP, with boto3 and hand-made requests.

Each case asserts the AWS error code a real client sees.
"""
from __future__ import annotations

import datetime as dt
import urllib.parse
from unittest import mock

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from awsutil import error_code, xml_error_code
from ec2util import signed_post

from eucalite import accounts


def test_boto3_sigv4_describe_regions(live):
    regions = live.client("ec2").describe_regions()["Regions"]
    assert [region["RegionName"] for region in regions] == ["eucalyptus"]
    assert regions[0]["Endpoint"] == live.endpoints["ec2"]


def test_boto3_sigv2_query(live):
    ec2 = live.client("ec2", signature_version="v2")
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [zone["ZoneName"] for zone in zones] == ["eucalyptus-1a"]
    assert zones[0]["State"] == "available"


def test_sigv2_wrong_secret_is_auth_failure(live):
    ec2 = live.client("ec2", secret="x" * 40, signature_version="v2")
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_regions()
    assert error_code(excinfo) == "AuthFailure"


def test_presigned_v4_url(live):
    # botocore presigns Query API calls with the operation's method, POST, and no body.
    url = live.client("ec2").generate_presigned_url("describe_regions", ExpiresIn=60)
    response = requests.post(url)
    assert response.status_code == 200, response.text
    assert "<regionName>eucalyptus</regionName>" in response.text


def test_presigned_v4_url_tampered_parameter(live):
    url = live.client("ec2").generate_presigned_url(
        "describe_regions", Params={"RegionNames": ["eucalyptus"]}, ExpiresIn=60)
    assert requests.post(url).status_code == 200
    response = requests.post(url.replace("RegionName.1=eucalyptus", "RegionName.1=other"))
    assert response.status_code == 403
    assert xml_error_code(response) == "AuthFailure"


def test_presigned_v4_url_expired(live):
    # The pure-Python signer, whose clock can be moved (botocore's CRT signer reads its own).
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    request = AWSRequest(method="POST",
                         url=live.endpoints["ec2"] + "?Action=DescribeRegions&Version=2016-11-15")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=past):
        botocore.auth.SigV4QueryAuth(Credentials(live.key_id, live.secret), "ec2", live.region,
                                     expires=60).add_auth(request)
    response = requests.post(request.url)
    assert response.status_code == 400
    assert xml_error_code(response) == "RequestExpired"


def test_wrong_secret_is_auth_failure(live):
    with pytest.raises(ClientError) as excinfo:
        live.client("ec2", secret="wrong" * 8).describe_regions()
    assert error_code(excinfo) == "AuthFailure"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_access_key(live):
    with pytest.raises(ClientError) as excinfo:
        live.client("ec2", key_id="AKIANOTAREALKEY00000").describe_regions()
    assert error_code(excinfo) == "InvalidClientTokenId"


def test_inactive_access_key_is_refused(live):
    with live.app.app_context():
        accounts.set_access_key_status(live.key_id, "Inactive")
    with pytest.raises(ClientError) as excinfo:
        live.client("ec2").describe_regions()
    assert error_code(excinfo) == "InvalidClientTokenId"


@pytest.mark.parametrize("minutes", [-16, 16])
def test_skewed_date_is_request_expired(live, minutes):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    response = signed_post(live, "Action=DescribeRegions&Version=2016-11-15", when=when)
    assert response.status_code == 400
    assert xml_error_code(response) == "RequestExpired"


def test_small_skew_is_accepted(live):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=14)
    response = signed_post(live, "Action=DescribeRegions&Version=2016-11-15", when=when)
    assert response.status_code == 200, response.text


def test_tampered_body_fails_signature(live):
    body = "Action=DescribeRegions&Version=2016-11-15&RegionName.1=eucalyptus"
    assert signed_post(live, body).status_code == 200
    response = signed_post(live, body, send_body=body.replace("eucalyptus", "elsewhere"))
    assert response.status_code == 403
    assert xml_error_code(response) == "AuthFailure"


def test_declared_payload_hash_must_match_body(live):
    body = "Action=DescribeRegions&Version=2016-11-15"
    url = live.endpoints["ec2"]
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Amz-Content-SHA256": "0" * 64})
    botocore.auth.SigV4Auth(Credentials(live.key_id, live.secret), "ec2",
                            live.region).add_auth(request)
    response = requests.post(url, data=body, headers=dict(request.prepare().headers))
    assert response.status_code == 403
    assert xml_error_code(response) == "SignatureDoesNotMatch"


def test_unsigned_request_is_refused(live):
    response = requests.post(live.endpoints["ec2"],
                             data={"Action": "DescribeRegions", "Version": "2016-11-15"})
    assert response.status_code == 403
    assert xml_error_code(response) == "MissingAuthenticationToken"


def test_malformed_authorization_header(live):
    response = requests.post(live.endpoints["ec2"], data={"Action": "DescribeRegions"},
                             headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x"})
    assert response.status_code == 400
    assert xml_error_code(response) == "IncompleteSignature"


def test_credential_scoped_to_another_service(live):
    response = signed_post(live, "Action=DescribeRegions", service="ec2")
    assert response.status_code == 200
    # Signed for IAM but sent to EC2.
    url = live.endpoints["ec2"]
    request = AWSRequest(method="POST", url=url, data="Action=DescribeRegions",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    botocore.auth.SigV4Auth(Credentials(live.key_id, live.secret), "iam",
                            live.region).add_auth(request)
    response = requests.post(url, data="Action=DescribeRegions",
                             headers=dict(request.prepare().headers))
    assert xml_error_code(response) == "IncompleteSignature"


def test_sigv4_get_with_query_parameters(live):
    """Query APIs accept GET with parameters in the query string, signed in the header."""
    params = {"Action": "DescribeAvailabilityZones", "Version": "2016-11-15",
              "ZoneName.1": "eucalyptus-1a"}
    url = live.endpoints["ec2"] + "?" + urllib.parse.urlencode(params)
    request = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4Auth(Credentials(live.key_id, live.secret), "ec2",
                            live.region).add_auth(request)
    response = requests.get(url, headers=dict(request.prepare().headers))
    assert response.status_code == 200, response.text
    assert "<zoneName>eucalyptus-1a</zoneName>" in response.text


def test_presigned_v4_get_url(live):
    """A presigned GET (the form curl and browsers use) with parameters in the query."""
    url = live.endpoints["ec2"] + "?Action=DescribeRegions&Version=2016-11-15"
    request = AWSRequest(method="GET", url=url)
    botocore.auth.SigV4QueryAuth(Credentials(live.key_id, live.secret), "ec2", live.region,
                                 expires=60).add_auth(request)
    response = requests.get(request.url)
    assert response.status_code == 200, response.text
    assert "<regionName>eucalyptus</regionName>" in response.text
