"""Images reach a node on another host over the internal API (cluster/nodeimages.py and the
image routes): the node's image source, signed with a joined node's key, writes exactly the
image; a part changed in Walrus fails its digest and the cache keeps nothing; a node with no
instance of the image, another node's key and an unsigned request are refused.

A live controller (no node duty of its own) in the test's process; the node is a joined
NodeClient. Its instance is placed by RunInstances on the joined node, driven here by an
in-memory node (the fake hypervisor, which reads no files) under the joined node's id. Last,
a joined node's own agent (tests/agentutil.py's) fills its cache through it."""
from __future__ import annotations

import datetime as dt
import io
import os
import urllib.error
import urllib.request

import pytest
from openapi_schema_validator import OAS30Validator

from eucalite.cluster import joining, network
from eucalite.cluster.internalapi import document
from eucalite.cluster.imagecache import GiB, ImageCache
from eucalite.cluster.localnode import LocalNode
from eucalite.cluster.node import ImageRef
from eucalite.cluster.nodeclient import InternalApiError, NodeClient, NodeCredentials
from eucalite.cluster.nodeimages import image_path, remote_image_source
from eucalite.cluster.unbundle import CorruptBundle
from eucalite.cluster.virt.fake import FakeDriver
from eucalite.compute import bundling, cloudkey
from ec2util import wait_for_state
from liveutil import start_live
from agentutil import ZONE, Cloud

BUCKET = "bundles"
CAPACITY = {"cores": 4, "memory_mb": 8192, "disk_gb": 100}


@pytest.fixture
def controller(tmp_path):
    live, server = start_live(tmp_path / "data", hypervisor="fake")
    yield live
    server.shutdown()
    live.app.extensions["eucalite"].compute.worker.shutdown()


def _joined(live, name: str) -> NodeClient:
    """A node joined and registered under *name*: its signed client."""
    with live.app.app_context():
        config = live.app.config["EUCALITE"]
        token, _ = joining.create_token(config["zones"][0], config["zones"],
                                        dt.timedelta(hours=1), "test")
    answer = NodeClient(live.base_url).join(token, name)
    client = NodeClient(live.base_url, NodeCredentials(
        live.base_url, answer["node_id"], answer["zone"], answer["region"],
        answer["access_key_id"], answer["secret_access_key"]))
    client.call("PUT", f"/nodes/{name}", {"capacity": CAPACITY, "hypervisor_uri": "fake://"})
    return client


def _register(live, tmp_path, name: str, encrypted: bool, size: int = 300_000) -> tuple:
    """A machine image bundled in parts of 64 KiB (encrypted to the cloud's key or not):
    (image id, the image's bytes, the parts' keys in Walrus)."""
    data = os.urandom(size // 2) + b"\0" * (size - size // 2)
    path = tmp_path / f"{name}.img"
    path.write_bytes(data)
    key = cloudkey.cloud_private_key(live.app.config["EUCALITE"]["data_dir"]).public_key() \
        if encrypted else None
    manifest_xml, parts = bundling.make_bundle(path, name, "machine", part_size=64 * 1024,
                                               encrypt_with=key)
    s3 = live.client("s3")
    keys = []
    for filename, body in parts:
        keys.append(f"{name}/{filename}")
        s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=body)
    s3.put_object(Bucket=BUCKET, Key=f"{name}/{name}.manifest.xml", Body=manifest_xml)
    image_id = live.client("ec2").register_image(
        ImageLocation=f"{BUCKET}/{name}/{name}.manifest.xml", Name=name)["ImageId"]
    return image_id, data, keys


def _place(live, client: NodeClient, image_id: str) -> str:
    """An instance of *image_id* placed on *client*'s node and running there."""
    config = live.app.config["EUCALITE"]
    driver = FakeDriver()
    driver.ensure_network(network.spec(config))
    live.app.extensions["eucalite"].cluster.attach(LocalNode(
        client.credentials.node_id, driver, ImageCache(config["data_dir"] + "/unused", GiB),
        config, None))
    ec2 = live.client("ec2")
    instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                    InstanceType="m1.small")["Instances"][0]["InstanceId"]
    wait_for_state(ec2, [instance_id], "running")
    return instance_id


@pytest.fixture
def placed(controller, tmp_path):
    """(live, node client, {encrypted: (image id, bytes, part keys)}) with one instance of
    each image on the node."""
    controller.client("s3").create_bucket(Bucket=BUCKET)
    node = _joined(controller, "node-a")
    images = {encrypted: _register(controller, tmp_path, f"img{int(encrypted)}", encrypted)
              for encrypted in (False, True)}
    for image_id, _data, _keys in images.values():
        _place(controller, node, image_id)
    return controller, node, images


def _fetch(client: NodeClient, image_id: str, part: str = "root") -> bytes:
    out = io.BytesIO()
    remote_image_source(client)(ImageRef(image_id, part, "ignored"), out)
    return out.getvalue()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_the_node_gets_exactly_the_image(placed, encrypted):
    _live, node, images = placed
    image_id, data, keys = images[encrypted]
    assert len(keys) > 2                       # several parts, each streamed on its own
    assert _fetch(node, image_id) == data


def test_the_description_carries_the_key_only_for_an_encrypted_bundle(placed):
    _live, node, images = placed
    node_id = node.credentials.node_id
    plain = node.call("GET", image_path(node_id, images[False][0], "root"))
    encrypted = node.call("GET", image_path(node_id, images[True][0], "root"))
    spec = document()
    for answer in (plain, encrypted):       # as the OpenAPI document says
        OAS30Validator({**spec["components"]["schemas"]["ImageBundle"],
                        "components": spec["components"]}).validate(answer)
    assert plain["encryption"] is None
    assert encrypted["encryption"]["cipher"] == "aes-128-cbc"
    assert len(bytes.fromhex(encrypted["encryption"]["key"])) == 16
    assert [part["name"] for part in plain["parts"]] == \
        [key.rsplit("/", 1)[1] for key in images[False][2]]
    assert sum(part["size"] for part in plain["parts"]) == plain["bundled_size"]


def test_a_part_changed_in_walrus_fails_its_digest_and_nothing_is_cached(placed, tmp_path):
    live, node, images = placed
    image_id, _data, keys = images[True]
    s3 = live.client("s3")
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=keys[1])["Body"].read())
    body[100] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=bytes(body))
    cache = ImageCache(tmp_path / "node-cache", GiB)
    source = remote_image_source(node)
    with pytest.raises(CorruptBundle, match="digest"):
        cache.ensure(image_id, "root", lambda out: source(ImageRef(image_id, "root", ""), out))
    assert not cache.path(image_id, "root").exists()
    assert list((tmp_path / "node-cache").rglob("*.partial")) == []


def test_a_node_without_an_instance_of_the_image_is_refused(placed):
    live, _node, images = placed
    other = _joined(live, "node-b")
    for image_id, _data, _keys in images.values():
        with pytest.raises(InternalApiError) as caught:
            _fetch(other, image_id)
        assert (caught.value.status, caught.value.code) == (403, "AccessDenied")
        with pytest.raises(InternalApiError) as caught:
            list(other.stream(image_path("node-b", image_id, "root") + "/parts/0"))
        assert caught.value.status == 403
    # an image that does not exist is refused the same way (no probing for ids)
    with pytest.raises(InternalApiError) as caught:
        _fetch(other, "emi-00000000")
    assert caught.value.status == 403


def test_another_nodes_key_and_no_signature_are_refused(placed):
    live, node, images = placed
    image_id = images[False][0]
    other = _joined(live, "node-b")
    # node-b's key on node-a's path
    with pytest.raises(InternalApiError) as caught:
        other.call("GET", image_path(node.credentials.node_id, image_id, "root"))
    assert (caught.value.status, caught.value.code) == (403, "AccessDenied")
    with pytest.raises(InternalApiError) as caught:
        list(other.stream(image_path(node.credentials.node_id, image_id, "root") + "/parts/0"))
    assert caught.value.status == 403
    # no signature at all
    unsigned = NodeClient(live.base_url)
    for path in (image_path("node-a", image_id, "root"),
                 image_path("node-a", image_id, "root") + "/parts/0"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(unsigned.base + path, timeout=10)
        assert caught.value.code in (401, 403)


def test_a_wrong_part_or_index_is_not_found(placed):
    _live, node, images = placed
    image_id = images[False][0]
    for path in (image_path("node-a", image_id, "kernel"),
                 image_path("node-a", image_id, "root") + "/parts/99"):
        with pytest.raises(InternalApiError) as caught:
            list(node.stream(path))
        assert (caught.value.status, caught.value.code) == (404, "ImageNotFound")


def test_a_joined_nodes_agent_fills_its_cache_from_the_controller(tmp_path):
    """The agent of a joined node (the fake hypervisor, in a thread) fetches an image its
    instance boots from into its own image cache, byte for byte, once."""
    cloud = Cloud(tmp_path)
    try:
        live, far = cloud.live, cloud.far
        live.client("s3").create_bucket(Bucket=BUCKET)
        image_id, data, _keys = _register(live, tmp_path, "far-img", encrypted=True)
        ec2 = live.client("ec2")
        instance_id = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1,
                                        Placement={"AvailabilityZone": ZONE})[
            "Instances"][0]["InstanceId"]
        wait_for_state(ec2, [instance_id], "running", timeout=30)
        ref = ImageRef(image_id, "root", f"{BUCKET}/far-img/far-img.manifest.xml")
        path = far.agent.node.fetch_image(ref)
        assert path.startswith(str(tmp_path / "node"))          # the node's own cache
        with open(path, "rb") as cached:
            assert cached.read() == data
        assert far.agent.node.fetch_image(ref) == path
        assert far.agent.node.cache.misses == 1
    finally:
        cloud.far.stop()
        cloud.stop_controller()
