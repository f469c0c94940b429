"""Fuzz every endpoint with malformed requests, signed and unsigned: none may get a 5xx, and
every AWS error must be the service's XML envelope (EC2 ``<Response><Errors>``, IAM
``<ErrorResponse>``, S3 ``<Error>``); XML bodies must parse.

EC2 gets every registered action with parameters from botocore's model of it, mutated;
IAM the Query plumbing; S3 every operation and sub-resource with mutated query strings,
headers, keys, XML and JSON bodies, aws-chunked bodies and presigned URLs; the console
every page and form (signed in, with a CSRF token); the metadata service every path and
header it reads. Signed requests are signed by botocore as boto3 signs them, so they get
past authentication into the handlers.

Seeded generators make the inputs (the Query APIs' here, S3's in tests/fuzz_s3.py, the
console's and the metadata service's in tests/fuzz_web.py, the values, signing, sending and
checks in tests/fuzzutil.py): a run repeats exactly, and the counts are bounded so the
whole file takes well under a minute on 2 cores. Volume goes through the Flask test
client; a smaller set goes over real HTTP to a live server. A failure lists each distinct
problem once, with where the server's traceback ended.
"""
from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import botocore.session
import pytest
from werkzeug.test import Client

from liveutil import start_live, stop_live
from consoleutil import PASSWORD, signed_in
from eucalite import accounts
from eucalite.compute import metadata
from eucalite.compute.ec2 import registry as ec2_registry
from eucalite.iam import registry as iam_registry
from eucalite.sts.actions import registry as sts_registry
from eucalite.compute.models import Instance
from eucalite.db import db
from eucalite.web.session import set_password
import fuzz_s3
import fuzz_web
from fuzzutil import (Findings, Signer, TracebackCatcher, Wire, broken_auth, encode_pairs,
                      maybe_nasty, nasty, send_http, send_wsgi, serve_front_end)
from ec2util import make_image

#: The suite's seed is fixed so a run repeats exactly; EUCALITE_FUZZ_SEED explores another
#: and EUCALITE_FUZZ_SCALE multiplies the counts (by hand, looking for new problems).
SEED = int(os.environ.get("EUCALITE_FUZZ_SEED", "20261205"))
SCALE = float(os.environ.get("EUCALITE_FUZZ_SCALE", "1"))
PRIVATE_IP = "127.0.0.5"       # the fuzz instance's address: its metadata requests come
                                # from there (all of 127/8 is loopback)
S3_DOMAIN = "s3.fuzz.test"      # virtual-host style names a bucket in the Host header

#: Problems the fuzz finds that are owned and being fixed elsewhere, each named here by
#: where its traceback ends (file in function: exception); counted apart, not failures.
#: Empty when every problem is fixed: keep it so.
KNOWN_OPEN: frozenset[str] = frozenset()

#: Requests per endpoint through the test client, and over real HTTP.
COUNTS = {name: int(count * SCALE) for name, count in
          {"ec2": 2000, "iam": 800, "sts": 200, "s3": 3000, "console": 600, "imds": 600,
           "http": 400}.items()}


# --- the cloud under fuzz ---------------------------------------------------------------

class Cloud:
    """A live server with node duty on the fake hypervisor, holding one of each resource
    the fuzz can name: an image, an instance with a private address, a volume, a snapshot,
    a key pair, a bucket with objects and multipart uploads."""

    def __init__(self, tmp: Path):
        # a public pool (on the fake data plane: nothing on the host changes), so the
        # address actions are on like every other duty
        self.live, self.server = start_live(tmp / "data", node=True, hypervisor="fake",
                                            ebs_export="local", s3_domain=S3_DOMAIN,
                                            public_interface="eulab0",
                                            public_ips=["198.51.100.10-198.51.100.30"])
        app = self.live.app
        with app.app_context():
            assert app.extensions["eucalite"].cluster.start_node_duty() is None
            set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
        ec2, s3 = self.live.client("ec2"), self.live.client("s3")
        self.image = make_image(self.live)
        self.instance = ec2.run_instances(ImageId=self.image, MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        with app.app_context():
            db.session.get(Instance, self.instance).private_ip = PRIVATE_IP
            db.session.commit()
        zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
        self.zone = zone
        self.volume = ec2.create_volume(Size=1, AvailabilityZone=zone)["VolumeId"]
        ec2.get_waiter("volume_available").wait(VolumeIds=[self.volume],
                                                 WaiterConfig={"Delay": 0.2})
        self.snapshot = ec2.create_snapshot(VolumeId=self.volume)["SnapshotId"]
        ec2.create_key_pair(KeyName="fuzz")
        s3.create_bucket(Bucket="fuzz")
        for key in ("obj", "a/b", "é/x"):
            s3.put_object(Bucket="fuzz", Key=key, Body=b"hello world")
        self.uploads = [s3.create_multipart_upload(Bucket="fuzz", Key=f"mp{i}")["UploadId"]
                        for i in range(6)]
        for i, upload in enumerate(self.uploads):
            s3.upload_part(Bucket="fuzz", Key=f"mp{i}", UploadId=upload, PartNumber=1,
                           Body=b"x" * 10)
        with app.app_context():       # what the console's admin pages may act on
            accounts.create_account("fuzzacct")
            other = accounts.create_access_key("fuzzacct", "admin").id
        self.console_ids = ["fuzzacct", "admin", other, "eucalyptus", "fuzz/obj"]
        self.catcher = TracebackCatcher()
        logging.getLogger().addHandler(self.catcher)
        self.client = app.test_client()
        host = f"127.0.0.1:{self.live.port}"
        self.signer = Signer(self.live.key_id, self.live.secret, self.live.region, host)

    def ids(self) -> list[str]:
        return [self.image, self.instance, self.volume, self.snapshot, "fuzz", self.zone,
                "m1.small", "emi-00000000", "i-0000000000000000", "vol-00000000"]

    def close(self) -> None:
        logging.getLogger().removeHandler(self.catcher)
        stop_live(self.live, self.server)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """One Cloud for the module (overrides conftest's per-test `cloud`): the tests below
    share its resources, and the console's test, last, may delete some."""
    made = Cloud(tmp_path_factory.mktemp("fuzz"))
    yield made
    made.close()


def run(cloud, service: str, requests) -> Findings:
    """Send *requests* through the test client; what came back, checked."""
    findings = Findings(known=KNOWN_OPEN)
    for wire in requests:
        findings.record(service, wire, send_wsgi(cloud.client, wire, cloud.catcher))
    return findings


def assert_clean(findings: Findings) -> None:
    print(findings.report())            # with -s: what came back, even when all is well
    assert not findings.by_key, findings.report()


# --- Query APIs (EC2, IAM) ----------------------------------------------------------------

def _query_name(shape, default: str) -> str:
    serialization = shape.serialization
    if "queryName" in serialization:
        return serialization["queryName"]
    if "name" in serialization:
        return serialization["name"][0].upper() + serialization["name"][1:]
    return default


def _leaves(shape, prefix: str = "", depth: int = 0, seen: tuple = ()):
    """(flat name, type, enum) of every scalar in an EC2 input shape, lists at index 1."""
    if shape.type_name == "structure":
        if depth > 4 or shape.name in seen:
            return
        for name, member in shape.members.items():
            yield from _leaves(member, (prefix + "." if prefix else "") +
                               _query_name(member, name), depth + 1, seen + (shape.name,))
    elif shape.type_name == "list":
        yield from _leaves(shape.member, prefix + ".1", depth + 1, seen)
    elif shape.type_name != "map":
        yield prefix, shape.type_name, list(getattr(shape, "enum", None) or [])


def registered_actions(service: str, registry) -> dict[str, list[tuple[str, str, list]]]:
    """Every action registered on *registry* with the parameters it declares, typed from
    botocore's model of *service* where botocore knows the action (strings otherwise)."""
    model = botocore.session.get_session().get_service_model(service)
    actions = {}
    for name, action in registry.actions.items():
        leaves = []
        if name in model.operation_names:
            shape = model.operation_model(name).input_shape
            leaves = [leaf for leaf in (_leaves(shape) if shape is not None else [])
                      if leaf[0].split(".")[0] in action.params]
        known = {leaf[0].split(".")[0] for leaf in leaves}
        leaves += [(param, "string", []) for param in action.params - known]
        actions[name] = leaves
    return actions


def _good_value(rng, kind: str, enum: list, cloud) -> str:
    if enum:
        return rng.choice(enum)
    if kind in ("integer", "long"):
        return str(rng.choice([1, 2, 8, 100]))
    if kind == "boolean":
        return rng.choice(["true", "false"])
    if kind == "timestamp":
        return "2030-01-01T00:00:00Z"
    if kind == "blob":
        return "aGVsbG8="
    return rng.choice(cloud.ids() + ["tag:Name", "instance-state-name", "*", "a*b?"])


def _mutate_name(rng, name: str) -> str:
    """A parameter name with a bad list index or a bad shape."""
    if ".1" in name and rng.random() < 0.7:
        bad = rng.choice(["0", "-1", "²", "٣", "01", "9" * 30, "9" * 5000, "", "1.1", "a"])
        return name.replace(".1", "." + bad, 1)
    return rng.choice([name + ".1", name + ".Name", name + "..x", "." + name, name + "\x00",
                       name.lower(), name + "é"])


def query_params(rng, action: str, leaves, cloud) -> list[tuple[str, str]]:
    pairs = [("Action", action), ("Version", "2016-11-15")]
    for name, kind, enum in rng.sample(leaves, min(len(leaves), rng.randint(0, 5))):
        value = maybe_nasty(rng, _good_value(rng, kind, enum, cloud), 0.45)
        if rng.random() < 0.2:
            name = _mutate_name(rng, name)
        pairs.append((name, value))
        if rng.random() < 0.1:
            pairs.append((name, nasty(rng, value)))            # duplicated parameter
    if rng.random() < 0.1:
        pairs[0] = ("Action", nasty(rng, action))
    return pairs


def sign_query(rng, cloud, service: str, path: str, pairs) -> Wire:
    """A Query request for *pairs*, signed one of the ways clients sign (or broken)."""
    label = f"{service} {pairs[0][1]!r}"
    form = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
    signer, roll = cloud.signer, rng.random()
    if roll < 0.6:
        wire = signer.v4(Wire("POST", path, headers=form, body=encode_pairs(pairs).encode(),
                              label=label + " v4"), service)
        if rng.random() < 0.1:          # the body changed after signing, or is not UTF-8
            wire.body = rng.choice([b"Action=\xff\xfe", wire.body[:-3], wire.body + b"&x=1"])
        if rng.random() < 0.05:         # a Content-Length that is not the body's
            wire.content_length = rng.choice(["abc", "-1", "²", "9" * 30, "",
                                              str(len(wire.body) + 5)])
        return wire
    if roll < 0.7:
        return signer.v4(Wire("GET", path, query=encode_pairs(pairs), label=label + " v4 GET"),
                         service)
    if roll < 0.78:
        return signer.v4_presigned(Wire("GET", path, query=encode_pairs(pairs),
                                        label=label + " v4 presigned"), service)
    if roll < 0.86:
        stamp = rng.choice(["2030-01-01T00:00:00Z", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime())])
        if rng.random() < 0.3:
            stamp = nasty(rng, stamp)
        return signer.query_v2(Wire("GET", path, label=label + " v2"), pairs, stamp)
    wire = Wire("POST", path, headers=form, body=encode_pairs(pairs).encode(),
                label=label + " broken auth")
    return broken_auth(rng, wire, cloud.live.key_id)


def ec2_requests(rng, cloud, count: int):
    actions = registered_actions("ec2", ec2_registry)
    names = sorted(actions)
    for i in range(count):
        action = names[i % len(names)]          # every action, evenly
        yield sign_query(rng, cloud, "ec2", "/services/compute",
                         query_params(rng, action, actions[action], cloud))


def iam_requests(rng, cloud, count: int):
    actions = registered_actions("iam", iam_registry)
    actions.update({"": [], "é": [], "ListRoles": []})      # unknown and not yet served
    names = sorted(actions)
    for i in range(count):
        action = names[i % len(names)]          # every action, evenly
        pairs = query_params(rng, action, actions[action], cloud)
        pairs[1] = ("Version", "2010-05-08")
        yield sign_query(rng, cloud, "iam", "/services/Euare", pairs)


def sts_requests(rng, cloud, count: int):
    actions = registered_actions("sts", sts_registry)
    actions.update({"": [], "é": [], "GetFederationToken": []})   # unknown and not served
    names = sorted(actions)
    for i in range(count):
        action = names[i % len(names)]          # every action, evenly
        pairs = query_params(rng, action, actions[action], cloud)
        pairs[1] = ("Version", "2011-06-15")
        yield sign_query(rng, cloud, "sts", "/services/Tokens", pairs)


def test_ec2_every_action(cloud):
    rng = random.Random(SEED)
    assert_clean(run(cloud, "ec2", ec2_requests(rng, cloud, COUNTS["ec2"])))


def test_iam(cloud):
    rng = random.Random(SEED + 1)
    assert_clean(run(cloud, "iam", iam_requests(rng, cloud, COUNTS["iam"])))


def test_sts(cloud):
    rng = random.Random(SEED + 6)
    assert_clean(run(cloud, "sts", sts_requests(rng, cloud, COUNTS["sts"])))


# --- S3 -------------------------------------------------------------------------------------

def test_s3_every_operation(cloud):
    rng = random.Random(SEED + 2)
    requests = (fuzz_s3.s3_request(rng, cloud.signer, cloud.uploads, i, S3_DOMAIN)
                for i in range(COUNTS["s3"]))
    assert_clean(run(cloud, "s3", requests))


# --- the instance metadata service ------------------------------------------------------

def imds_token(cloud) -> str:
    """A valid IMDSv2 token of the fuzz instance."""
    imds = Client(metadata.make_app(cloud.live.app))
    return imds.put("/latest/api/token", headers={metadata.TTL_HEADER: "600"},
                    environ_overrides={"REMOTE_ADDR": PRIVATE_IP}).get_data(as_text=True)


def test_metadata_service(cloud):
    rng = random.Random(SEED + 3)
    imds = Client(metadata.make_app(cloud.live.app))
    token = imds_token(cloud)
    addresses = [PRIVATE_IP] * 8 + ["127.0.0.1", "::1", ""]
    findings = Findings(known=KNOWN_OPEN)
    for _ in range(COUNTS["imds"]):
        wire = fuzz_web.imds_request(rng, token)
        findings.record("imds", wire, send_wsgi(imds, wire, cloud.catcher,
                                                remote_addr=rng.choice(addresses)))
    assert_clean(findings)


# --- over real HTTP ---------------------------------------------------------------------

@pytest.fixture
def front_ends(cloud):
    """The fuzz cloud's app, and its metadata service, each behind eucalite's own HTTP
    front end as `eucalite serve` runs them: their ports."""
    api = serve_front_end(cloud.live.app)
    imds = metadata.serve(cloud.live.app, "127.0.0.1", 0)
    yield api.port, imds.port
    imds.shutdown()
    api.shutdown()


def test_over_http(cloud, front_ends):
    """A smaller mix sent over TCP through eucalite's HTTP front end (what `eucalite serve`
    runs): what the test client cannot show (the server's own parsing and rejections)
    answers no 5xx and the service's XML envelope either."""
    rng = random.Random(SEED + 4)
    api, imds = front_ends
    actions = registered_actions("ec2", ec2_registry)
    names = sorted(actions)
    findings = Findings(known=KNOWN_OPEN)
    routes = fuzz_web.console_routes(cloud.live.app)
    fields = fuzz_web.console_field_names()
    token = imds_token(cloud)
    for i in range(COUNTS["http"]):
        port, source = api, "127.0.0.1"
        if i % 4 == 0:
            service = "ec2"
            wire = sign_query(rng, cloud, "ec2", "/services/compute",
                              query_params(rng, names[i % len(names)],
                                           actions[names[i % len(names)]], cloud))
        elif i % 4 == 1:
            service, wire = "s3", fuzz_s3.s3_request(rng, cloud.signer, cloud.uploads, i,
                                                      S3_DOMAIN)
        elif i % 4 == 2:
            service = "console"     # not signed in: every route must still answer sanely
            wire = fuzz_web.console_request(rng, routes, fields, cloud.ids(), "x", i)
        else:
            service, wire = "imds", fuzz_web.imds_request(rng, token)
            port, source = imds, rng.choice([PRIVATE_IP, PRIVATE_IP, "127.0.0.1"])
        cloud.catcher.take()
        answer = send_http(port, wire, source=source)
        if answer.status >= 500:
            answer.origin = cloud.catcher.take()
        findings.record(service, wire, answer)
    assert_clean(findings)


# --- the console (last: its admin pages may delete what the other tests use) -------------

def test_console_every_page_and_form(cloud):
    rng = random.Random(SEED + 5)
    app = cloud.live.app
    routes = fuzz_web.console_routes(app)
    fields = fuzz_web.console_field_names()
    findings = Findings(known=KNOWN_OPEN)
    with app.app_context():     # the IAM fuzz may have changed it (UpdateLoginProfile)
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    client, token = signed_in(app)
    for i in range(COUNTS["console"]):
        wire = fuzz_web.console_request(rng, routes, fields, cloud.ids() + cloud.console_ids,
                                        token, i)
        # from another address than the sign-ins below, which the fuzz's failed sign-ins
        # would otherwise throttle
        answer = send_wsgi(client, wire, cloud.catcher, remote_addr="127.0.0.9")
        findings.record("console", wire, answer)
        if answer.status == 302 and "/console/login" in answer.headers.get("location", "") \
                or "logout" in wire.path or "password" in wire.path:
            with app.app_context():           # a fuzzed form may have changed it
                set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
            client, token = signed_in(app)
    assert_clean(findings)
