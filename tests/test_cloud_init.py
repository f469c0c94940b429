"""cloud-init's own EC2 datasource reads eucalite's metadata service.

Not a re-implementation of what cloud-init does: Debian's cloud-init package is unpacked
(not installed: it would run at the next boot) by ``./setup.sh test`` and its
``DataSourceEc2`` crawls a real metadata listener. EUCALITE_TEST_CLOUD_INIT names the
directory holding its ``cloudinit`` package; skipped, with the reason, without it.

Two platforms, as cloud-init sees them: an unknown one (it uses IMDSv1 there, so instances
with the default metadata options), and one identified as EC2 (it asks for an IMDSv2 token
first, so instances may require tokens, and it reads the identity document).
"""
from __future__ import annotations

import os
import socket
import sys
import tempfile

import pytest

from ec2util import make_image

CLOUD_INIT = os.environ.get("EUCALITE_TEST_CLOUD_INIT", "")
USER_DATA = "#cloud-config\nhostname: from-user-data\n"


def _datasource_class():
    if not CLOUD_INIT or not os.path.isdir(os.path.join(CLOUD_INIT, "cloudinit")):
        reason = ("cloud-init is not unpacked here: set EUCALITE_TEST_CLOUD_INIT "
                  "(./setup.sh test unpacks Debian's cloud-init package)")
        print(reason)
        pytest.skip(reason)
    if CLOUD_INIT not in sys.path:
        sys.path.insert(0, CLOUD_INIT)
    from cloudinit import helpers
    from cloudinit.sources import DataSourceEc2

    return DataSourceEc2.DataSourceEc2, helpers.Paths


def _launch(cloud, metadata_options: dict) -> tuple[str, str]:
    """An instance with a key pair and user-data whose private address is 127.0.0.1 (so
    the metadata listener on loopback knows it); returns (instance id, public key)."""
    from eucalite.compute.models import Instance
    from eucalite.db import db

    ec2 = cloud.client("ec2")
    ec2.create_key_pair(KeyName="lab")
    public = ec2.describe_key_pairs(KeyNames=["lab"], IncludePublicKey=True)[
        "KeyPairs"][0]["PublicKey"]
    instance_id = ec2.run_instances(ImageId=make_image(cloud), MinCount=1, MaxCount=1,
                                    KeyName="lab", UserData=USER_DATA,
                                    MetadataOptions=metadata_options)["Instances"][0][
        "InstanceId"]
    cloud.app.extensions["eucalite"].compute.worker.wait()
    with cloud.app.app_context():
        db.session.get(Instance, instance_id).private_ip = "127.0.0.1"
        db.session.commit()
    return instance_id, public


def _crawl(cloud, cloud_name: str):
    """cloud-init's Ec2 datasource after ``_get_data()`` against a listener on loopback."""
    from eucalite.compute import metadata

    datasource, paths = _datasource_class()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = metadata.serve(cloud.app, "127.0.0.1", port)
    try:
        work = tempfile.mkdtemp()
        config = {"datasource": {"Ec2": {"metadata_urls": [f"http://127.0.0.1:{port}"],
                                         "timeout": 5, "max_wait": 10}}}
        source = datasource(config, None, paths({"cloud_dir": work, "run_dir": work}))
        source._cloud_name = cloud_name        # what cloud-init's platform check would say
        assert source._get_data() is True
        return source
    finally:
        listener.shutdown()


def _check(source, instance_id: str, public_key: str) -> None:
    assert source.get_instance_id() == instance_id
    assert source.metadata["local-ipv4"] == "127.0.0.1"
    assert source.metadata["placement"]["availability-zone"] == "eucalyptus-1a"
    assert source.userdata_raw == USER_DATA.encode()
    keys = source.get_public_ssh_keys()
    assert any(key.split()[1] == public_key.split()[1] for key in keys)
    assert source.get_hostname().hostname.startswith("euca-127-0-0-1")


def test_cloud_init_on_an_unknown_platform_reads_it_with_imdsv1(cloud):
    instance_id, public_key = _launch(cloud, {})
    _check(_crawl(cloud, "unknown"), instance_id, public_key)


def test_cloud_init_identified_as_ec2_uses_imdsv2_tokens(cloud):
    instance_id, public_key = _launch(cloud, {"HttpTokens": "required"})
    source = _crawl(cloud, "aws")
    _check(source, instance_id, public_key)
    assert source._api_token                               # it held a token
    assert source.identity["instanceId"] == instance_id
    assert source.identity["region"] == "eucalyptus"
