"""eucalite.wire.serve end to end: a tiny CloudWatch served by stub handlers on a real
eucalite app, driven by boto3 on each protocol an SDK may speak (awsJson, boto3's default;
awsQuery, older SDKs; Smithy RPC v2 CBOR, newer ones), and by hand-signed raw requests for
what no SDK sends."""
from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest
from botocore.auth import SigV2Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from flask import Blueprint
from liveutil import free_port, serve_in_background
from serverutil import AWS, cli_env, run
from werkzeug.serving import make_server
from wire_clients import client

from eucalite import accounts, create_app
from eucalite.errors import InvalidParameterValue
from eucalite.wire import cbor, model
from eucalite.wire.serve import Call, Operations, mount

UTC = dt.timezone.utc
PROTOCOLS = ["json", "query", "cbor"]
PATH = "/test/CloudWatch"
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@dataclass
class Stub:
    """The test's CloudWatch: what its handlers answer and what they were called with."""

    endpoint: str
    key_id: str
    secret: str
    region: str
    listing: dict = field(default_factory=dict)
    datapoints: dict = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    sent_headers: list[dict] = field(default_factory=list)

    def client(self, protocol: str, secret: str | None = None, **config):
        cw = client("cloudwatch", protocol, self.endpoint, self.key_id, secret or self.secret,
                    self.region, **config)
        cw.meta.events.register("before-send.cloudwatch",
                                lambda request, **_: self.sent_headers.append(
                                    dict(request.headers)))
        return cw


def stub_operations(stub: Stub) -> Operations:
    ops = Operations(model.load("cloudwatch"))

    @ops.handler("ListMetrics")
    def list_metrics(call):
        stub.calls.append(call)
        return stub.listing

    @ops.handler("PutMetricData")
    def put_metric_data(call):
        stub.calls.append(call)
        if call.input["Namespace"].startswith("AWS/"):
            raise InvalidParameterValue(f"The value {call.input['Namespace']} for parameter "
                                        "Namespace is invalid.")

    @ops.handler("GetMetricStatistics")
    def get_metric_statistics(call):
        stub.calls.append(call)
        return stub.datapoints

    @ops.handler("ListTagsForResource")
    def crash(call):
        raise RuntimeError("a handler bug with a secret in its message")

    return ops


@pytest.fixture
def stub(tmp_path):
    """A real eucalite app with the stub CloudWatch mounted at PATH, served on loopback."""
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False})
    port = free_port()
    with app.app_context():
        key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
    stub = Stub(f"http://127.0.0.1:{port}{PATH}", key.id, key.secret,
                app.config["EUCALITE"]["region"])
    blueprint = Blueprint("wire_test", __name__)
    mount(blueprint, PATH, stub_operations(stub))
    app.register_blueprint(blueprint)
    server = make_server("127.0.0.1", port, app, threaded=True)
    serve_in_background(server)
    yield stub
    server.shutdown()


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]


# --- results ------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_handler_output_reaches_boto3(stub, protocol):
    stub.listing = {"Metrics": [{"Namespace": "Lab", "MetricName": "cpu",
                                 "Dimensions": [{"Name": "host", "Value": "h\u00fc"}]},
                                {"Namespace": "Lab", "MetricName": "mem", "Dimensions": []}],
                    "NextToken": "page-2"}
    answer = stub.client(protocol).list_metrics(Namespace="Lab")
    assert answer["Metrics"] == stub.listing["Metrics"]
    assert answer["NextToken"] == "page-2"
    assert stub.calls[-1].input == {"Namespace": "Lab"}
    assert stub.calls[-1].principal.account_name == accounts.ADMIN_ACCOUNT
    assert stub.calls[-1].operation == "ListMetrics"
    assert answer["ResponseMetadata"]["RequestId"] == stub.calls[-1].request_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_handler_gets_the_typed_input(stub, protocol):
    data = [{"MetricName": "latency", "Timestamp": WHEN, "Value": 1.5, "Unit": "Milliseconds",
             "Dimensions": [{"Name": "host", "Value": "h1"}], "StorageResolution": 1},
            {"MetricName": "hist", "Values": [1.0, 2.5], "Counts": [3.0, 1.0]}]
    stub.client(protocol).put_metric_data(Namespace="Lab", MetricData=data)
    assert stub.calls[-1].input == {"Namespace": "Lab", "MetricData": data}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_timestamps_and_doubles_both_ways(stub, protocol):
    stub.datapoints = {"Label": "cpu", "Datapoints": [
        {"Timestamp": WHEN, "Average": 0.25, "SampleCount": 4.0, "Unit": "Percent",
         "ExtendedStatistics": {"p99": 0.5}}]}
    answer = stub.client(protocol).get_metric_statistics(
        Namespace="Lab", MetricName="cpu", StartTime=WHEN, EndTime=WHEN + dt.timedelta(1),
        Period=60, Statistics=["Average", "SampleCount"], ExtendedStatistics=["p99"])
    assert answer["Datapoints"] == stub.datapoints["Datapoints"]
    assert answer["Label"] == "cpu"
    assert stub.calls[-1].input["StartTime"] == WHEN
    assert stub.calls[-1].input["EndTime"] == WHEN + dt.timedelta(1)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_gzipped_requests_are_read(stub, protocol):
    """botocore gzips PutMetricData bodies of 10 KiB and more (the model's
    requestcompression): the signature covers the compressed body, the handler gets all."""
    data = [{"MetricName": f"metric-{i}", "Value": float(i)} for i in range(400)]
    stub.client(protocol).put_metric_data(Namespace="Lab", MetricData=data)
    assert stub.sent_headers[-1].get("Content-Encoding") == b"gzip"
    assert stub.calls[-1].input["MetricData"] == data


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_error_codes_are_the_same_on_every_protocol(stub, protocol):
    cw = stub.client(protocol, parameter_validation=False)
    status, error = error_of(lambda: cw.put_metric_data(MetricData=[]))
    assert (status, error["Code"], error["Message"]) == \
        (400, "MissingParameter", "The parameter Namespace is required.")
    status, error = error_of(lambda: cw.put_metric_data(
        Namespace="Lab", MetricData=[{"Value": 1.0}]))
    assert (status, error["Code"], error["Message"]) == \
        (400, "MissingParameter", "The parameter MetricData.member.1.MetricName is required.")
    status, error = error_of(lambda: cw.put_metric_data(Namespace="n" * 256))
    assert (status, error["Code"]) == (400, "ValidationError")
    assert error["Message"] == (
        f"1 validation error detected: Value '{'n' * 256}' at 'namespace' failed to satisfy "
        "constraint: Member must have length less than or equal to 255")
    status, error = error_of(lambda: cw.put_metric_data(Namespace="AWS/EC2"))
    assert (status, error["Code"], error["Message"]) == \
        (400, "InvalidParameterValue", "The value AWS/EC2 for parameter Namespace is invalid.")
    assert error["Type"] == "Sender"
    # the handler ran for the last call only: the others were refused before it
    assert [call.input.get("Namespace") for call in stub.calls] == ["AWS/EC2"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_modeled_errors_map_to_botocores_exception_classes(stub, protocol):
    cw = stub.client(protocol)
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.put_metric_data(Namespace="AWS/EC2")


@pytest.mark.parametrize("protocol,code", [("json", "UnknownOperationException"),
                                           ("cbor", "UnknownOperationException"),
                                           ("query", "InvalidAction")])
def test_an_operation_without_a_handler_says_so(stub, protocol, code):
    status, error = error_of(stub.client(protocol).describe_alarms)
    assert (status, error["Code"]) == (400, code)
    assert error["Message"] == \
        "eucalite does not support the CloudWatch operation DescribeAlarms yet."


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_bad_signature_is_refused(stub, protocol):
    status, error = error_of(stub.client(protocol, secret="not-the-secret").list_metrics)
    assert (status, error["Code"]) == (403, "SignatureDoesNotMatch")
    cw = client("cloudwatch", protocol, stub.endpoint, "AKIANOSUCHKEY0000000", "x",
                stub.region)
    status, error = error_of(cw.list_metrics)
    assert (status, error["Code"]) == (403, "InvalidClientTokenId")
    assert stub.calls == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_handler_crash_is_a_500_without_its_details(stub, protocol, caplog):
    status, error = error_of(lambda: stub.client(protocol).list_tags_for_resource(
        ResourceARN="arn:aws:cloudwatch:r:1:alarm:a"))
    assert (status, error["Code"]) == (500, "InternalServiceError")
    assert error["Message"] == "An internal error has occurred. See the server log."
    assert "a handler bug" in caplog.text               # logged with its traceback


# --- what no SDK sends --------------------------------------------------------------------

def raw(stub: Stub, path: str, body: bytes, headers: dict, method: str = "POST",
        secret: str | None = None):
    """A SigV4-signed request to the stub: (status, headers, body)."""
    request = AWSRequest(method=method, url=stub.endpoint.replace(PATH, "") + path,
                         data=body, headers=headers)
    SigV4Auth(Credentials(stub.key_id, secret or stub.secret), "monitoring",
              stub.region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=prepared.body or None, method=method,
                                  headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(http) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData"}
RPC_PATH = f"{PATH}/service/GraniteServiceVersion20100801/operation/PutMetricData"
CBOR_HEADERS = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}


def test_json_body_that_is_not_json(stub):
    status, headers, body = raw(stub, PATH, b'{"Namespace": ', JSON_HEADERS)
    assert status == 400
    assert json.loads(body)["__type"] == "SerializationException"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert "x-amzn-query-error" not in headers
    status, _, body = raw(stub, PATH, b'{"Namespace": ["x"]}', JSON_HEADERS)
    assert (status, json.loads(body)) == (400, {
        "__type": "SerializationException", "message": "The value at 'namespace' must be a "
                                                       "string."})


def test_cbor_body_that_is_not_cbor(stub):
    status, headers, body = raw(stub, RPC_PATH, b"\xa1\x61", CBOR_HEADERS)
    assert status == 400 and headers["smithy-protocol"] == "rpc-v2-cbor"
    assert headers["Content-Type"] == "application/cbor"
    assert cbor.decode(body)["__type"] == "SerializationException"


def test_cbor_route_without_its_protocol_header(stub):
    status, headers, body = raw(stub, RPC_PATH, cbor.encode({"Namespace": "n"}),
                                {"Content-Type": "application/cbor"})
    assert status == 400 and cbor.decode(body)["__type"] == "SerializationException"
    assert stub.calls == []


@pytest.mark.parametrize("path,headers", [
    (PATH, dict(JSON_HEADERS, **{"X-Amz-Target": "GraniteServiceVersion20100801.Nope"})),
    (PATH, dict(JSON_HEADERS, **{"X-Amz-Target": "DynamoDB_20120810.PutItem"})),
    (f"{PATH}/service/GraniteServiceVersion20100801/operation/Nope", CBOR_HEADERS),
    (f"{PATH}/service/DynamoDB_20120810/operation/PutMetricData", CBOR_HEADERS),
])
def test_unknown_operations(stub, path, headers):
    status, _, body = raw(stub, path, b"{}" if "X-Amz-Target" in headers else b"\xa0",
                          headers)
    document = json.loads(body) if "X-Amz-Target" in headers else cbor.decode(body)
    assert (status, document["__type"]) == (400, "UnknownOperationException")


def test_query_unknown_action_and_wrong_method(stub):
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    status, _, body = raw(stub, PATH, b"Action=Nope&Version=2010-08-01", form)
    assert status == 400 and b"<Code>InvalidAction</Code>" in body
    status, _, body = raw(stub, PATH, b"Version=2010-08-01", form)
    assert status == 400 and b"<Code>MissingAction</Code>" in body
    status, _, body = raw(stub, PATH, b"{}", JSON_HEADERS, method="PUT")
    assert status == 405 and json.loads(body)["__type"] == "MethodNotAllowed"


def test_gzip_that_is_not_gzip(stub):
    status, _, body = raw(stub, PATH, b"not gzip",
                          dict(JSON_HEADERS, **{"Content-Encoding": "gzip"}))
    assert (status, json.loads(body)["__type"]) == (400, "SerializationException")


def test_query_signed_with_signature_version_2(stub):
    """What euca2ools' euwatch and other Eucalyptus-era clients send: a V2-signed form."""
    stub.listing = {"Metrics": [{"Namespace": "Lab", "MetricName": "cpu"}]}
    form = {"Action": "ListMetrics", "Version": "2010-08-01", "Namespace": "Lab"}
    request = AWSRequest(method="POST", url=stub.endpoint, data=form)
    SigV2Auth(Credentials(stub.key_id, stub.secret)).add_auth(request)
    prepared = request.prepare()
    body = prepared.body.encode()
    http = urllib.request.Request(prepared.url, data=body, method="POST",
                                  headers=dict(prepared.headers))
    with urllib.request.urlopen(http) as response:
        answer = response.read()
    assert b"<MetricName>cpu</MetricName>" in answer
    assert stub.calls[-1].input == {"Namespace": "Lab"}
    http = urllib.request.Request(prepared.url, method="POST", headers=dict(prepared.headers),
                                  data=body.replace(b"=Lab", b"=Lbb"))  # signed for "Lab"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(http)
    assert caught.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in caught.value.read()


def test_the_aws_cli(stub):
    env = cli_env(AWS_ACCESS_KEY_ID=stub.key_id, AWS_SECRET_ACCESS_KEY=stub.secret,
                  AWS_DEFAULT_REGION=stub.region)
    base = [AWS, "cloudwatch", "--endpoint-url", stub.endpoint, "--output", "json"]
    run(*base, "put-metric-data", "--namespace", "Lab", "--metric-name", "m", "--value", "2.5",
        "--timestamp", "2026-01-02T03:04:05Z", "--dimensions", "host=h1", "--unit",
        "Count", env=env)
    assert stub.calls[-1].input == {"Namespace": "Lab", "MetricData": [
        {"MetricName": "m", "Value": 2.5, "Timestamp": WHEN.replace(microsecond=0), "Unit": "Count",
         "Dimensions": [{"Name": "host", "Value": "h1"}]}]}
    stub.listing = {"Metrics": [{"Namespace": "Lab", "MetricName": "m"}]}
    assert json.loads(run(*base, "list-metrics", env=env).stdout) == stub.listing
    failed = run(*base, "put-metric-data", "--namespace", "n" * 256, "--metric-name", "m",
                 "--value", "1", env=env, check=False)
    assert failed.returncode != 0
    assert "(ValidationError) when calling the PutMetricData operation: 1 validation error " \
           "detected" in failed.stderr
