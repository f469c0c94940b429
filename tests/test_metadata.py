"""The instance metadata service (IMDSv1 and IMDSv2) through its WSGI app, and
MetadataOptions in the EC2 API (RunInstances, DescribeInstances,
ModifyInstanceMetadataOptions).

Instances are launched through the real API; their private addresses are set on the rows
directly (address allocation has its own tests)."""
from __future__ import annotations

import json
import os
import stat
import urllib.request

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from awsutil import error_code
from ec2util import make_image
from liveutil import free_port
from eucalite.compute import metadata
from eucalite.compute.models import Instance
from eucalite.db import db

TTL = metadata.TTL_HEADER
TOKEN = metadata.TOKEN_HEADER


def launch(live, private_ip: str, **kwargs) -> str:
    """One instance launched through the API, answering from *private_ip*."""
    ec2 = live.client("ec2")
    image = kwargs.pop("ImageId", None) or image_for(live)
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                    **kwargs)["Instances"][0]["InstanceId"]
    set_ip(live, instance_id, private_ip)
    return instance_id


def image_for(live) -> str:
    """The test image, registered on first use."""
    from eucalite.compute.models import Image

    with live.app.app_context():
        if db.session.get(Image, "emi-0a1b2c3d") is not None:
            return "emi-0a1b2c3d"
    return make_image(live)


def set_ip(live, instance_id: str, private_ip: str) -> None:
    with live.app.app_context():
        db.session.get(Instance, instance_id).private_ip = private_ip
        db.session.commit()


class Imds:
    """The metadata app seen from one source address."""

    def __init__(self, live, address: str):
        self.client = Client(metadata.make_app(live.app))
        self.address = address

    def request(self, method: str, path: str, headers=None):
        return self.client.open(path, method=method, headers=headers or {},
                                environ_overrides={"REMOTE_ADDR": self.address})

    def get(self, path: str, token: str | None = None):
        return self.request("GET", path, {TOKEN: token} if token else None)

    def text(self, path: str, token: str | None = None) -> str:
        response = self.get(path, token)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def token(self, ttl: int | str = 21600) -> str:
        response = self.request("PUT", "/latest/api/token", {TTL: str(ttl)})
        assert response.status_code == 200
        assert response.headers[TTL] == str(ttl)
        return response.get_data(as_text=True)


def test_listings_and_leaves(cloud):
    ec2 = cloud.client("ec2")
    key = ec2.create_key_pair(KeyName="mykey")
    instance_id = launch(cloud, "10.9.0.5", KeyName="mykey",
                         UserData="#!/bin/sh\necho hi\n")
    imds = Imds(cloud, "10.9.0.5")

    versions = imds.text("/").splitlines()
    assert versions[0] == "1.0" and versions[-1] == "latest"
    assert {"2007-01-19", "2009-04-04", "2016-09-02", "2018-09-24",
            "2021-03-23"} <= set(versions)
    assert imds.text("/latest/").splitlines() == ["dynamic", "meta-data", "user-data"]

    listing = imds.text("/latest/meta-data/").splitlines()
    for name in ("ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/",
                 "hostname", "instance-action", "instance-id", "instance-type",
                 "local-hostname", "local-ipv4", "mac", "network/", "placement/",
                 "public-keys/", "reservation-id", "security-groups", "services/"):
        assert name in listing, name
    assert "public-ipv4" not in listing and "kernel-id" not in listing
    assert "tags/" not in listing           # InstanceMetadataTags is off by default

    # Every version serves the same tree; leaves answer with or without a trailing slash.
    for version in ("1.0", "2009-04-04", "2021-03-23", "latest"):
        assert imds.text(f"/{version}/meta-data/instance-id") == instance_id
    assert imds.text("/latest/meta-data/instance-id/") == instance_id
    assert imds.text("/latest/meta-data") == imds.text("/latest/meta-data/")
    assert imds.text("/latest/meta-data/local-ipv4") == "10.9.0.5"
    assert imds.text("/latest/meta-data/hostname") \
        == imds.text("/latest/meta-data/local-hostname") \
        == "euca-10-9-0-5.eucalyptus.internal"
    assert imds.text("/latest/meta-data/instance-type") == "m1.small"
    assert imds.text("/latest/meta-data/ami-launch-index") == "0"
    assert imds.text("/latest/meta-data/security-groups") == "default"
    assert imds.text("/latest/meta-data/placement/availability-zone") \
        == ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
            "Instances"][0]["Placement"]["AvailabilityZone"]
    assert imds.text("/latest/meta-data/placement/region") == cloud.region
    assert imds.text("/latest/meta-data/block-device-mapping/").splitlines() \
        == ["ami", "ephemeral0", "root"]
    assert imds.text("/latest/meta-data/block-device-mapping/ami") == "sda1"
    assert imds.text("/latest/meta-data/block-device-mapping/root") == "/dev/sda1"
    assert imds.text("/latest/meta-data/block-device-mapping/ephemeral0") == "sda2"

    mac = imds.text("/latest/meta-data/mac")
    assert imds.text("/latest/meta-data/network/interfaces/macs/") == mac + "/"
    nic = f"/latest/meta-data/network/interfaces/macs/{mac}/"
    assert imds.text(nic + "local-ipv4s") == "10.9.0.5"
    assert imds.text(nic + "device-number") == "0"

    # public-keys as cloud-init crawls it: "0=<name>", then 0/openssh-key.
    assert imds.text("/latest/meta-data/public-keys/") == "0=mykey"
    assert imds.text("/latest/meta-data/public-keys/0/") == "openssh-key"
    openssh = imds.text("/latest/meta-data/public-keys/0/openssh-key")
    assert openssh.startswith("ssh-") and openssh.endswith("\n")
    assert key["KeyFingerprint"]

    user_data = imds.get("/latest/user-data")
    assert user_data.status_code == 200 and user_data.data == b"#!/bin/sh\necho hi\n"

    assert imds.get("/latest/meta-data/no-such-key").status_code == 404
    assert imds.get("/latest/meta-data/instance-id/extra").status_code == 404
    assert imds.get("/1999-01-01/meta-data/").status_code == 404
    assert imds.get("/latest/meta-data/").headers["Content-Type"].startswith("text/plain")


def test_identity_document_and_optional_entries(cloud):
    instance_id = launch(cloud, "10.9.0.6")
    imds = Imds(cloud, "10.9.0.6")
    assert imds.text("/latest/dynamic/").splitlines() == ["instance-identity/"]
    # cloud-init asks for the identity listing without the trailing slash.
    assert imds.text("/latest/dynamic/instance-identity") == "document"
    text = imds.text("/latest/dynamic/instance-identity/document")
    assert text.startswith('{\n  "accountId" : "')
    document = json.loads(text)
    with cloud.app.app_context():
        row = db.session.get(Instance, instance_id)
        owner, zone = row.owner_id, row.zone
    assert document["accountId"] == owner
    assert document["instanceId"] == instance_id
    assert document["imageId"] == "emi-0a1b2c3d"
    assert document["instanceType"] == "m1.small"
    assert document["privateIp"] == "10.9.0.6"
    assert document["availabilityZone"] == zone
    assert document["region"] == cloud.region
    assert document["architecture"] == "x86_64"
    assert document["version"] == "2017-09-30"
    assert document["pendingTime"].endswith("Z") and "T" in document["pendingTime"]
    for key in ("billingProducts", "devpayProductCodes", "marketplaceProductCodes",
                "kernelId", "ramdiskId"):
        assert key in document and document[key] is None

    # No user data, key or public address: those entries are absent.
    assert imds.text("/latest/").splitlines() == ["dynamic", "meta-data"]
    assert imds.get("/latest/user-data").status_code == 404
    listing = imds.text("/latest/meta-data/").splitlines()
    assert "public-keys/" not in listing and "public-hostname" not in listing
    assert imds.get("/latest/meta-data/public-keys/").status_code == 404

    with cloud.app.app_context():
        db.session.get(Instance, instance_id).public_ip = "192.0.2.10"
        db.session.commit()
    assert imds.text("/latest/meta-data/public-ipv4") == "192.0.2.10"
    assert imds.text("/latest/meta-data/public-hostname") == "euca-192-0-2-10.eucalyptus.lab"


def test_unknown_source_and_methods(cloud):
    launch(cloud, "10.9.0.7")
    assert Imds(cloud, "10.9.0.99").get("/latest/meta-data/").status_code == 404
    imds = Imds(cloud, "10.9.0.7")
    assert imds.request("POST", "/latest/meta-data/").status_code == 405
    assert imds.request("DELETE", "/latest/meta-data/instance-id").status_code == 405
    assert imds.request("GET", "/latest/api/token").status_code == 405
    assert imds.request("HEAD", "/latest/meta-data/").status_code == 200


def test_terminated_instance_yields_the_address(cloud):
    ec2 = cloud.client("ec2")
    old = launch(cloud, "10.9.0.8")
    ec2.terminate_instances(InstanceIds=[old])
    with cloud.app.app_context():
        db.session.get(Instance, old).state = "terminated"
        db.session.commit()
    assert Imds(cloud, "10.9.0.8").get("/latest/meta-data/").status_code == 404
    new = launch(cloud, "10.9.0.8")
    assert Imds(cloud, "10.9.0.8").text("/latest/meta-data/instance-id") == new


def test_imdsv2_tokens(cloud):
    a = launch(cloud, "10.9.1.1")
    launch(cloud, "10.9.1.2")
    imds_a, imds_b = Imds(cloud, "10.9.1.1"), Imds(cloud, "10.9.1.2")

    token = imds_a.token(60)
    response = imds_a.get("/latest/meta-data/instance-id", token)
    assert response.status_code == 200 and response.get_data(as_text=True) == a
    assert 0 < int(response.headers[TTL]) <= 60
    # Tokens are optional by default, but a bad one is refused all the same.
    assert imds_a.get("/latest/meta-data/instance-id", "bogus").status_code == 401
    assert imds_a.get("/latest/meta-data/instance-id", token[:-4] + "AAA=").status_code \
        == 401
    # A token is bound to the instance that asked for it.
    assert imds_b.get("/latest/meta-data/instance-id", token).status_code == 401

    # TTL bounds and presence.
    for ttl in ("0", "21601", "-5", "abc", ""):
        assert imds_a.request("PUT", "/latest/api/token", {TTL: ttl}).status_code == 400
    assert imds_a.request("PUT", "/latest/api/token").status_code == 400
    imds_a.token(1)
    imds_a.token(21600)
    # A PUT relayed through a proxy is refused.
    assert imds_a.request("PUT", "/latest/api/token",
                          {TTL: "60", "X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert imds_a.request("PUT", "/latest/meta-data/", {TTL: "60"}).status_code == 405


def test_token_ttl_must_be_a_plain_number(cloud):
    """A TTL that str.isdigit() accepts but is not a plain ASCII number (a superscript
    two, thousands of digits) is refused with 400 like any bad TTL, not a server error."""
    launch(cloud, "10.9.1.3")
    imds = Imds(cloud, "10.9.1.3")
    for ttl in ("²", "٣", "9" * 5000, "+60", "6_0"):
        assert imds.request("PUT", "/latest/api/token", {TTL: ttl}).status_code == 400, ttl


def test_token_expiry_and_secret():
    secret = b"k" * 32
    token = metadata.issue_token(secret, "i-1", 10, now=1000)
    assert metadata.token_seconds_left(secret, "i-1", token, now=1005) == 5
    assert metadata.token_seconds_left(secret, "i-1", token, now=1010) is None
    assert metadata.token_seconds_left(secret, "i-2", token, now=1005) is None
    assert metadata.token_seconds_left(b"x" * 32, "i-1", token, now=1005) is None


def test_tokens_survive_restart_and_secret_is_private(cloud):
    instance_id = launch(cloud, "10.9.1.3")
    token = Imds(cloud, "10.9.1.3").token(300)
    # A new app over the same data directory (a restart) accepts the token.
    assert Imds(cloud, "10.9.1.3").text("/latest/meta-data/instance-id", token) \
        == instance_id
    path = os.path.join(cloud.app.config["EUCALITE"]["data_dir"], metadata.SECRET_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_modify_metadata_options(cloud):
    ec2 = cloud.client("ec2")
    instance_id = launch(cloud, "10.9.2.1")
    imds = Imds(cloud, "10.9.2.1")

    options = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["MetadataOptions"]
    assert options == {"State": "applied", "HttpTokens": "optional",
                       "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled",
                       "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "disabled"}

    result = ec2.modify_instance_metadata_options(InstanceId=instance_id,
                                                  HttpTokens="required",
                                                  HttpPutResponseHopLimit=2)
    assert result["InstanceId"] == instance_id
    assert result["InstanceMetadataOptions"]["HttpTokens"] == "required"
    assert result["InstanceMetadataOptions"]["HttpPutResponseHopLimit"] == 2
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]["MetadataOptions"]
    assert described["HttpTokens"] == "required"
    assert described["HttpPutResponseHopLimit"] == 2
    assert described["HttpEndpoint"] == "enabled"     # untouched options keep their value

    # Required tokens: IMDSv1 is refused, IMDSv2 works.
    assert imds.get("/latest/meta-data/instance-id").status_code == 401
    assert imds.get("/").status_code == 401
    assert imds.text("/latest/meta-data/instance-id", imds.token()) == instance_id

    # Instance tags in the metadata, once enabled.
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": "web"},
                                                   {"Key": "env", "Value": "prod"}])
    token = imds.token()
    assert imds.get("/latest/meta-data/tags/instance/", token).status_code == 404
    ec2.modify_instance_metadata_options(InstanceId=instance_id,
                                         InstanceMetadataTags="enabled")
    assert "tags/" in imds.text("/latest/meta-data/", token).splitlines()
    assert imds.text("/latest/meta-data/tags/instance/", token).splitlines() \
        == ["Name", "env"]
    assert imds.text("/latest/meta-data/tags/instance/env", token) == "prod"

    # The endpoint turned off: everything is forbidden, the token PUT too.
    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpEndpoint="disabled")
    assert imds.get("/latest/meta-data/instance-id", token).status_code == 403
    assert imds.request("PUT", "/latest/api/token", {TTL: "60"}).status_code == 403

    for bad in ({"HttpTokens": "sometimes"}, {"HttpEndpoint": "on"},
                {"HttpPutResponseHopLimit": 65}, {"HttpPutResponseHopLimit": 0},
                {"InstanceMetadataTags": "yes"}):
        assert error_code(lambda: ec2.modify_instance_metadata_options(
            InstanceId=instance_id, **bad)) == "InvalidParameterValue", bad
    assert error_code(lambda: ec2.modify_instance_metadata_options(
        InstanceId="i-0123456789abcdef0", HttpTokens="required")) \
        == "InvalidInstanceID.NotFound"


def test_modify_is_owner_only(cloud):
    from s3util import second_account

    instance_id = launch(cloud, "10.9.2.2")
    other, _ = second_account(cloud, service="ec2")
    assert error_code(lambda: other.modify_instance_metadata_options(
        InstanceId=instance_id, HttpTokens="required")) == "InvalidInstanceID.NotFound"


def test_run_instances_with_metadata_options(cloud):
    ec2 = cloud.client("ec2")
    image = image_for(cloud)
    reservation = ec2.run_instances(
        ImageId=image, MinCount=2, MaxCount=2,
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 3,
                         "InstanceMetadataTags": "enabled"})
    for item in reservation["Instances"]:
        assert item["MetadataOptions"]["HttpTokens"] == "required"
        assert item["MetadataOptions"]["HttpPutResponseHopLimit"] == 3
        assert item["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
        assert item["MetadataOptions"]["HttpEndpoint"] == "enabled"
    ids = [item["InstanceId"] for item in reservation["Instances"]]
    set_ip(cloud, ids[1], "10.9.3.2")
    imds = Imds(cloud, "10.9.3.2")
    assert imds.get("/latest/meta-data/ami-id").status_code == 401
    assert imds.text("/latest/meta-data/ami-id", imds.token()) == image

    for bad in ({"HttpTokens": "Required"}, {"HttpPutResponseHopLimit": 100},
                {"HttpEndpoint": "off"}, {"HttpProtocolIpv6": "enabled"}):
        with pytest.raises(ClientError) as excinfo:
            ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, MetadataOptions=bad)
        assert error_code(excinfo) == "InvalidParameterValue", bad


def test_validate_metadata_options():
    assert metadata.validate_metadata_options(
        {"HttpTokens": "required", "HttpPutResponseHopLimit": "64"}) \
        == {"HttpTokens": "required", "HttpPutResponseHopLimit": 64}
    assert metadata.validate_metadata_options({"HttpEndpoint": None}) == {}
    from eucalite.errors import InvalidParameterValue

    with pytest.raises(InvalidParameterValue):
        metadata.validate_metadata_options({"Bogus": "x"})
    with pytest.raises(InvalidParameterValue):
        metadata.validate_metadata_options({"HttpPutResponseHopLimit": "x"})
    # only plain ASCII numbers: int() would take Arabic-Indic digits and underscores
    for limit in ("٣", "1_0", "²", "9" * 5000):
        with pytest.raises(InvalidParameterValue):
            metadata.validate_metadata_options({"HttpPutResponseHopLimit": limit})


def test_serve_over_http(cloud):
    instance_id = launch(cloud, "127.0.0.1")
    port = free_port()
    server = metadata.serve(cloud.app, "127.0.0.1", port)
    try:
        base = f"http://127.0.0.1:{port}"
        put = urllib.request.Request(base + "/latest/api/token", method="PUT",
                                     headers={TTL: "120"})
        with urllib.request.urlopen(put, timeout=5) as response:
            token = response.read().decode()
            assert response.headers[TTL] == "120"
        get = urllib.request.Request(base + "/latest/meta-data/instance-id",
                                     headers={TOKEN: token})
        with urllib.request.urlopen(get, timeout=5) as response:
            assert response.read().decode() == instance_id
        with urllib.request.urlopen(base + "/latest/meta-data/local-ipv4",
                                    timeout=5) as response:
            assert response.read() == b"127.0.0.1"
        # The port is taken now: a second listener reports it instead of exiting.
        with pytest.raises(OSError):
            metadata.serve(cloud.app, "127.0.0.1", port)
    finally:
        server.shutdown()


def test_cloud_init_style_crawl(cloud):
    """Walk meta-data/ as cloud-init's MetadataMaterializer does: lines ending in "/" are
    directories, "N=name" lines are keys fetched at N/openssh-key, the rest leaves."""
    ec2 = cloud.client("ec2")
    ec2.create_key_pair(KeyName="crawl")
    instance_id = launch(cloud, "10.9.4.1", KeyName="crawl")
    imds = Imds(cloud, "10.9.4.1")
    token = imds.token()

    def crawl(url: str) -> dict:
        result = {}
        for field in imds.text(url, token).splitlines():
            field = field.strip()
            if field.endswith("/"):
                result[field[:-1]] = crawl(url + field)
                continue
            name, resource = field, field
            if "=" in field:
                ident, name = field.split("=", 1)
                resource = f"{int(ident)}/openssh-key"
            result[name] = imds.text(url + resource, token)
        return result

    tree = crawl("/2009-04-04/meta-data/")
    assert tree["instance-id"] == instance_id
    assert tree["public-keys"]["crawl"].startswith("ssh-")
    assert tree["placement"]["availability-zone"]
    full = crawl("/2021-03-23/meta-data/")
    assert full["network"]["interfaces"]["macs"][full["mac"]]["local-ipv4s"] == "10.9.4.1"
    identity = crawl("/2021-03-23/dynamic/instance-identity/")
    assert json.loads(identity["document"])["instanceId"] == instance_id
