"""The internal API (/internal/v1): its OpenAPI document against the routes and bodies, and
who may call it: a node's own SigV4 key, once per signed request, for its own node only.

A live controller in the test's process; the node side is eucalite.cluster.nodeclient, the
client `eucalite join` uses, wrapped to check every body against the document."""
from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request

import botocore.exceptions
import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from eucalite.auth import RequestView, authenticate
from eucalite.cluster import joining, nodes
from eucalite.cluster.internalapi import document
from eucalite.cluster.internalapi.nodeauth import ReplayCache
from eucalite.errors.node import RequestReplayed
from eucalite.cluster.models import Node
from eucalite.cluster.nodeclient import InternalApiError, NodeClient, NodeCredentials, sign
from eucalite.db import db
from eucalite.errors import AuthError, AwsError
from liveutil import start_live

SPEC = document()
CAPACITY = {"cores": 4, "memory_mb": 8192, "disk_gb": 100}


def _schema_check(schema: dict, value) -> None:
    """Validate *value* against *schema* of the document (its $refs resolved there)."""
    OAS30Validator({**schema, "components": SPEC["components"]}).validate(value)


def _operation(method: str, path: str) -> dict:
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def _resolve(ref_or_item: dict) -> dict:
    while "$ref" in ref_or_item:
        section, name = ref_or_item["$ref"].split("/")[-2:]
        ref_or_item = SPEC["components"][section][name]
    return ref_or_item


class CheckedClient(NodeClient):
    """The node's client, holding each request and response body to the document."""

    def call(self, method, path, payload=None):
        operation = _operation(method, path)
        if payload is not None:
            _schema_check(operation["requestBody"]["content"]["application/json"]["schema"],
                          payload)
        try:
            answer = super().call(method, path, payload)
        except InternalApiError as error:
            assert str(error.status) in operation["responses"], (method, path, error.status)
            raise
        success = [code for code in operation["responses"] if code.startswith("2")]
        schema = _resolve(operation["responses"][success[0]])["content"][
            "application/json"]["schema"]
        _schema_check(schema, answer)
        return answer


@pytest.fixture
def controller(tmp_path):
    live, server = start_live(tmp_path / "data", heartbeat_interval=1)
    yield live
    server.shutdown()


def _token(live, zone=None, lifetime=dt.timedelta(hours=1)) -> str:
    with live.app.app_context():
        config = live.app.config["EUCALITE"]
        token, _ = joining.create_token(zone or config["zones"][0], config["zones"],
                                        lifetime, "test")
    return token


def _joined(live, name: str) -> CheckedClient:
    answer = CheckedClient(live.base_url).join(_token(live), name)
    credentials = NodeCredentials(live.base_url, answer["node_id"], answer["zone"],
                                  answer["region"], answer["access_key_id"],
                                  answer["secret_access_key"])
    return CheckedClient(live.base_url, credentials)


def _node(live, node_id: str) -> Node | None:
    with live.app.app_context():
        node = db.session.get(Node, node_id)
        if node is not None:
            db.session.expunge(node)
        return node


def _refused(call) -> InternalApiError:
    with pytest.raises(InternalApiError) as caught:
        call()
    return caught.value


# --- the document -----------------------------------------------------------------------

def test_openapi_document_is_valid_and_describes_exactly_the_routes(app):
    validate(SPEC)
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/internal/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/internal/v1"):])
            served.setdefault(path, set()).update(
                method.lower() for method in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: {key for key in item if key in ("get", "put", "post", "delete",
                                                         "patch")}
                  for path, item in SPEC["paths"].items()}
    assert served == documented


def test_the_document_is_served(controller):
    with urllib.request.urlopen(controller.base_url + "/internal/v1/openapi.json") as answer:
        assert answer.headers["Content-Type"] == "application/json"
        assert json.load(answer) == SPEC


# --- joining and what a node reports ----------------------------------------------------

def test_a_node_joins_registers_and_heartbeats(controller):
    client = _joined(controller, "node-b")
    assert client.credentials.access_key_id.startswith("NODE")
    assert _node(controller, "node-b") is None             # joined, not registered yet
    missing = _refused(lambda: client.call("GET", "/nodes/node-b"))
    assert (missing.status, missing.code) == (404, "NodeNotFound")
    document = client.call("PUT", "/nodes/node-b",
                           {"capacity": CAPACITY, "hypervisor_uri": "qemu:///system",
                            "address": "192.0.2.7", "version": "1"})
    assert (document["zone"], document["state"], document["heartbeat_interval"]) == \
        ("eucalyptus-1a", "enabled", 1)
    node = _node(controller, "node-b")
    assert (node.cores, node.memory_mb, node.disk_gb, node.address, node.hypervisor_uri) == \
        (4, 8192, 100, "192.0.2.7", "qemu:///system")
    assert client.call("GET", "/nodes/node-b")["node_id"] == "node-b"

    with controller.app.app_context():
        nodes.mark_unreachable("node-b")
    assert _node(controller, "node-b").state == "unreachable"
    seen = _node(controller, "node-b").last_seen
    answer = client.call("POST", "/nodes/node-b/heartbeat",
                         {"capacity": {**CAPACITY, "cores": 6}, "domains": {"i-1": "running"}})
    assert (answer["state"], answer["heartbeat_interval"]) == ("enabled", 1)
    node = _node(controller, "node-b")
    assert (node.state, node.cores) == ("enabled", 6) and node.last_seen >= seen


def test_bad_bodies_are_refused_in_the_error_shape(controller):
    client = _joined(controller, "node-c")
    client.call("PUT", "/nodes/node-c", {"capacity": CAPACITY, "hypervisor_uri": ""})
    error = _refused(lambda: NodeClient.call(client, "POST", "/nodes/node-c/heartbeat",
                                             {"capacity": {"cores": -1}}))
    assert (error.status, error.code) == (400, "InvalidParameterValue")
    status, answer = _raw(controller.base_url + "/internal/v1/nodes/node-c/heartbeat", "POST",
                          b" " * (2 * 1024 * 1024), {"content-type": "application/json"})
    assert (status, answer["error"]["code"]) == (413, "RequestEntityTooLarge")


def test_unknown_paths_and_methods_answer_in_the_error_shape(controller):
    """A node parses JSON: a path no route has, or a method a route lacks, is no XML page."""
    status, answer = _raw(controller.base_url + "/internal/v1/no-such-thing", "GET", b"", {})
    assert (status, answer["error"]["code"]) == (404, "NotFound")
    status, answer = _raw(controller.base_url + "/internal/v1/join", "GET", b"", {})
    assert (status, answer["error"]["code"]) == (405, "MethodNotAllowed")


def test_a_failure_answers_in_the_error_shape(controller, monkeypatch):
    client = _joined(controller, "node-e")

    def broken(*args):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(joining, "register", broken)
    error = _refused(lambda: NodeClient.call(client, "PUT", "/nodes/node-e",
                                             {"capacity": CAPACITY, "hypervisor_uri": ""}))
    assert (error.status, error.code) == (500, "InternalError")
    assert "disk on fire" not in error.message


def test_tokens_work_once_and_only_until_they_expire(controller):
    token = _token(controller)
    CheckedClient(controller.base_url).join(token, "first")
    used = _refused(lambda: CheckedClient(controller.base_url).join(token, "second"))
    assert (used.status, used.code) == (403, "InvalidJoinToken") and "already used" in \
        used.message
    forged = _refused(lambda: CheckedClient(controller.base_url).join("ejt-made-up", "x"))
    assert (forged.status, forged.code) == (403, "InvalidJoinToken")
    expired_token = _token(controller, lifetime=dt.timedelta(seconds=-1))
    expired = _refused(lambda: CheckedClient(controller.base_url).join(expired_token, "y"))
    assert (expired.status, expired.code) == (403, "InvalidJoinToken") and "expired" in \
        expired.message
    taken = _refused(lambda: CheckedClient(controller.base_url).join(_token(controller),
                                                                       "first"))
    assert (taken.status, taken.code) == (409, "NodeAlreadyExists")
    assert _node(controller, "second") is None and _node(controller, "y") is None


def test_a_join_command_on_loopback_says_what_to_change():
    assert "public_url" in joining.unreachable_url_hint("http://127.0.0.1:8773")
    assert joining.unreachable_url_hint("https://localhost:8773") is not None
    assert joining.unreachable_url_hint("http://192.0.2.10:8773") is None
    assert joining.unreachable_url_hint("https://cloud.lab.example:8773") is None


def test_a_token_names_one_of_the_zones(controller):
    with controller.app.app_context(), pytest.raises(Exception, match="Invalid availability"):
        joining.create_token("nowhere-1a", ["eucalyptus-1a"], dt.timedelta(hours=1), "t")
    assert joining.parse_lifetime("90m") == dt.timedelta(minutes=90)
    for bad in ("0", "1w", "8d", "-1h", ""):
        with pytest.raises(Exception, match="Invalid token lifetime"):
            joining.parse_lifetime(bad)


# --- who may call -----------------------------------------------------------------------

def _raw(url: str, method: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_forged_signature_is_refused(controller):
    client = _joined(controller, "node-f")
    creds = client.credentials
    forger = NodeClient(controller.base_url, NodeCredentials(
        creds.controller_url, creds.node_id, creds.zone, creds.region, creds.access_key_id,
        "not-the-secret"))
    error = _refused(lambda: forger.call("GET", "/nodes/node-f"))
    assert (error.status, error.code) == (403, "SignatureDoesNotMatch")
    unsigned = _refused(lambda: NodeClient(controller.base_url).call("GET", "/nodes/node-f"))
    assert (unsigned.status, unsigned.code) == (403, "MissingAuthenticationToken")


def test_a_replayed_request_is_refused(controller):
    client = _joined(controller, "node-r")
    client.call("PUT", "/nodes/node-r", {"capacity": CAPACITY, "hypervisor_uri": ""})
    creds = client.credentials
    url = controller.base_url + "/internal/v1/nodes/node-r/heartbeat"
    body = json.dumps({"capacity": CAPACITY}).encode()
    headers = sign("POST", url, body, creds.access_key_id, creds.secret_access_key,
                   creds.region)
    headers["content-type"] = "application/json"
    assert _raw(url, "POST", body, headers)[0] == 200
    status, answer = _raw(url, "POST", body, headers)
    assert (status, answer["error"]["code"]) == (403, "RequestReplayed")
    # a request signed too long ago is refused by its date, whatever the cache holds
    stale = sign("POST", url, body, creds.access_key_id, creds.secret_access_key,
                 creds.region, now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=6))
    status, answer = _raw(url, "POST", body, {**stale, "content-type": "application/json"})
    assert (status, answer["error"]["code"]) == (400, "RequestExpired")
    # the same call signed anew goes through
    assert client.call("POST", "/nodes/node-r/heartbeat", {"capacity": CAPACITY})


def test_a_node_key_acts_for_its_own_node_only(controller):
    first, second = _joined(controller, "node-1"), _joined(controller, "node-2")
    error = _refused(lambda: first.call("POST", "/nodes/node-2/heartbeat",
                                        {"capacity": CAPACITY}))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert _node(controller, "node-2") is None
    assert second.call("PUT", "/nodes/node-2", {"capacity": CAPACITY, "hypervisor_uri": ""})
    assert second.call("POST", "/nodes/node-2/heartbeat", {"capacity": CAPACITY})


def test_a_user_key_is_refused_by_the_internal_api(controller):
    user = NodeClient(controller.base_url, NodeCredentials(
        controller.base_url, "node-u", "eucalyptus-1a", controller.region, controller.key_id,
        controller.secret))
    _joined(controller, "node-u")
    error = _refused(lambda: user.call("GET", "/nodes/node-u"))
    assert (error.status, error.code) == (403, "InvalidClientTokenId")


def _user_api_error(live, key_id: str, secret: str) -> list[str]:
    calls = [("ec2", "describe_instances"), ("s3", "list_buckets"), ("iam", "get_user")]
    codes = []
    for service, action in calls:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            getattr(live.client(service, key_id, secret), action)()
        codes.append(caught.value.response["Error"]["Code"])
    return codes


def test_a_node_key_is_refused_by_the_user_apis(controller):
    """EC2, S3 and IAM know a node key no better than a made-up one."""
    creds = _joined(controller, "node-k").credentials
    made_up = _user_api_error(controller, "AKIAMADEUPMADEUP1234", "x" * 40)
    assert made_up == ["InvalidClientTokenId", "InvalidAccessKeyId", "InvalidClientTokenId"]
    assert _user_api_error(controller, creds.access_key_id, creds.secret_access_key) == \
        made_up


def test_a_removed_nodes_key_is_refused_at_the_next_request(controller):
    client = _joined(controller, "node-v")
    assert client.call("PUT", "/nodes/node-v", {"capacity": CAPACITY, "hypervisor_uri": ""})
    with controller.app.app_context():
        controller.app.extensions["eucalite"].cluster.remove_node("node-v")
    error = _refused(lambda: client.call("GET", "/nodes/node-v"))
    assert (error.status, error.code) == (403, "InvalidClientTokenId")


def test_the_replay_cache_forgets_what_its_window_refuses_and_stays_bounded():
    cache = ReplayCache(window=300, capacity=2)
    now = dt.datetime(2026, 12, 5, 12, tzinfo=dt.timezone.utc)
    cache.remember("a", now, now)
    with pytest.raises(RequestReplayed):
        cache.remember("a", now, now + dt.timedelta(seconds=299))
    cache.remember("b", now, now)
    with pytest.raises(AwsError) as full:
        cache.remember("c", now, now)
    assert (full.value.status, full.value.code) == (503, "SlowDown")
    later = now + dt.timedelta(seconds=301)        # a and b are past their window
    cache.remember("c", later, later)
    assert len(cache) == 1


def test_the_nodes_signer_and_the_verifier_agree_on_queries():
    """What the command channel will need (long polls with ?wait=): a query is signed as
    the verifier reads it, and a changed query fails."""
    url = "http://cc:8773/internal/v1/nodes/n/commands?wait=20&tag=a%20b"
    headers = sign("GET", url, b"", "NODEKEY", "secret", "eucalyptus")

    def verify(query: str):
        view = RequestView("GET", "/internal/v1/nodes/n/commands", query, headers, [])
        return authenticate(view, "eucalite-node", body=b"", max_skew=300,
                            lookup=lambda key: ("node n", "secret"))
    assert verify("wait=20&tag=a%20b").principal == "node n"
    with pytest.raises(AuthError):
        verify("wait=21&tag=a%20b")
