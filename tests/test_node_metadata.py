"""The metadata service of a joined node: its guests ask 169.254.169.254 on the node, the
node's proxy (eucalite.cluster.metadataproxy) asks the controller over the internal API
(GET/PUT /nodes/{id}/metadata/{private_ip}/{path}, node-signed), and the controller answers
as its own metadata service does, only for instances placed on that node. A live controller
in the test's process; the proxy is driven as a WSGI app with the guest's source address."""
from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pytest
from werkzeug.test import Client

from eucalite.cluster import joining, metadataproxy
from eucalite.cluster.nodeclient import NodeClient, NodeCredentials, sign
from liveutil import free_port, start_live
from test_edge_plan import add_instance

CAPACITY = {"cores": 4, "memory_mb": 8192, "disk_gb": 100}


@pytest.fixture
def controller(tmp_path):
    live, server = start_live(tmp_path / "data", zones=["zone"])
    yield live
    server.shutdown()


def join(live, name: str) -> NodeCredentials:
    """A node joined and registered (fake hypervisor) as *name*."""
    with live.app.app_context():
        token, _ = joining.create_token("zone", ["zone"], dt.timedelta(hours=1), "test")
    answer = NodeClient(live.base_url).join(token, name)
    credentials = NodeCredentials(live.base_url, answer["node_id"], answer["zone"],
                                  answer["region"], answer["access_key_id"],
                                  answer["secret_access_key"])
    NodeClient(live.base_url, credentials).call(
        "PUT", f"/nodes/{answer['node_id']}", {"capacity": CAPACITY,
                                               "hypervisor_uri": "fake://"})
    return credentials


@pytest.fixture
def nodes(controller):
    """Two joined nodes with one running instance each: name -> (credentials, instance id,
    private IP)."""
    found = {}
    for name in ("node-a", "node-b"):
        credentials = join(controller, name)
        with controller.app.app_context():
            instance_id, ip = add_instance(node=name)
        found[name] = (credentials, instance_id, ip)
    return found


class Guest(Client):
    """A client asking the node's metadata proxy *app* from the guest address *ip*."""

    def __init__(self, app, ip: str):
        super().__init__(app)
        self.ip = ip

    def open(self, *args, **kwargs):
        kwargs.setdefault("environ_base", {"REMOTE_ADDR": self.ip})
        return super().open(*args, **kwargs)


def guest(live, credentials: NodeCredentials, ip: str) -> Guest:
    return Guest(metadataproxy.make_app(live.base_url, credentials), ip)


def test_a_nodes_guest_gets_its_own_metadata(controller, nodes):
    credentials, instance_id, ip = nodes["node-a"]
    client = guest(controller, credentials, ip)
    answer = client.get("/latest/meta-data/instance-id")
    assert answer.status_code == 200 and answer.text == instance_id
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == client.get("/2009-04-04/meta-data/instance-id").text
    assert "instance-id" in client.get("/latest/meta-data/").text.splitlines()
    assert "latest" in client.get("/").text.splitlines()
    assert client.get("/latest/meta-data/local-ipv4").text == ip


def test_imdsv2_tokens_pass_through_the_node(controller, nodes):
    credentials, instance_id, ip = nodes["node-a"]
    client = guest(controller, credentials, ip)
    token = client.put("/latest/api/token",
                       headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    assert token.status_code == 200
    assert token.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "60"
    answer = client.get("/latest/meta-data/instance-id",
                        headers={"X-aws-ec2-metadata-token": token.text})
    assert answer.text == instance_id
    assert int(answer.headers["X-aws-ec2-metadata-token-ttl-seconds"]) <= 60
    bad = client.get("/latest/meta-data/instance-id",
                     headers={"X-aws-ec2-metadata-token": "bogus"})
    assert bad.status_code == 401
    # a token is the instance's own: another node's guest cannot use it
    other_credentials, _, other_ip = nodes["node-b"]
    stolen = guest(controller, other_credentials, other_ip).get(
        "/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token.text})
    assert stolen.status_code == 401
    # a token asked through a proxy on the guest is refused, as on AWS
    proxied = client.put("/latest/api/token", headers={
        "X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.9"})
    assert proxied.status_code == 403


def test_a_node_gets_nothing_for_an_instance_on_another_node(controller, nodes):
    credentials = nodes["node-a"][0]
    _, _, other_ip = nodes["node-b"]
    answer = guest(controller, credentials, other_ip).get("/latest/meta-data/instance-id")
    assert answer.status_code == 404
    assert nodes["node-b"][1] not in answer.text
    # the node that runs it does get it
    own = guest(controller, nodes["node-b"][0], other_ip).get("/latest/meta-data/instance-id")
    assert own.text == nodes["node-b"][1]
    unknown = guest(controller, credentials, "10.211.0.250").get("/latest/meta-data/")
    assert unknown.status_code == 404


def _signed(live, credentials: NodeCredentials, path: str) -> tuple[int, dict | str]:
    url = live.base_url + "/internal/v1" + path
    headers = sign("GET", url, b"", credentials.access_key_id,
                   credentials.secret_access_key, credentials.region)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_node_key_cannot_ask_on_another_nodes_path(controller, nodes):
    credentials = nodes["node-a"][0]
    _, _, other_ip = nodes["node-b"]
    status, body = _signed(controller, credentials,
                           f"/nodes/node-b/metadata/{other_ip}/latest/meta-data/instance-id")
    assert status == 403 and body["error"]["code"] == "AccessDenied"
    status, _ = _signed(controller, credentials,
                        f"/nodes/node-a/metadata/{nodes['node-a'][2]}/latest/meta-data/")
    assert status == 200


def test_a_malformed_address_and_an_unsigned_request_are_refused(controller, nodes):
    credentials, _, ip = nodes["node-a"]
    status, body = _signed(controller, credentials, "/nodes/node-a/metadata/not-an-ip/latest/")
    assert status == 400 and body["error"]["code"] == "InvalidParameterValue"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(controller.base_url +
                               f"/internal/v1/nodes/node-a/metadata/{ip}/latest/meta-data/")
    assert refused.value.code in (401, 403)


def test_the_guest_gets_a_503_when_the_controller_cannot_be_reached(nodes):
    credentials, _, ip = nodes["node-a"]
    proxy = metadataproxy.make_app(f"http://127.0.0.1:{free_port()}", credentials)
    answer = Guest(proxy, ip).get("/latest/meta-data/")
    assert answer.status_code == 503


def test_the_nodes_listener_serves_its_guests(controller, nodes):
    """metadataproxy.start as the agent calls it: a listener on the metadata address (here
    loopback, where the "guest" is 127.0.0.1) forwarding to the controller it joined."""
    credentials = nodes["node-a"][0]
    with controller.app.app_context():
        instance_id, _ = add_instance(node="node-a", ip="127.0.0.1")
    port = free_port()
    config = {"metadata_address": "127.0.0.1", "metadata_port": port}
    assert metadataproxy.start(config, credentials, guests_are_real=False) is None
    listener = metadataproxy.start(config, credentials, guests_are_real=True)
    try:
        url = f"http://127.0.0.1:{port}/latest/meta-data/instance-id"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.read().decode() == instance_id
    finally:
        listener.shutdown()
    assert metadataproxy.start({"metadata_address": ""}, credentials, True) is None
