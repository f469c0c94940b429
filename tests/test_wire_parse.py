"""eucalite.wire.parse, .validate and .render on the real CloudWatch model: requests as
botocore writes them on each protocol read to the same input dict; constraint breaches reported in
AWS's words; answers botocore reads back unchanged."""
from __future__ import annotations

import copy
import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest
from botocore.parsers import JSONParser, QueryParser, RpcV2CBORParser
from botocore.serialize import JSONSerializer, QuerySerializer, RpcV2CBORSerializer

from eucalite.errors import AuthError, ClientError, InvalidParameterValue, MissingParameter
from eucalite.query import QueryParams
from eucalite.wire import cbor, model, parse, render, validate
from eucalite.wire.errors import SerializationException, UnknownOperationException, \
    ValidationError

UTC = dt.timezone.utc


class ResourceNotFound(ClientError):
    code, status = "ResourceNotFound", 404


CLOUDWATCH = model.load("cloudwatch")
PUT = CLOUDWATCH.operation("PutMetricData")
NAMESPACE = "http://monitoring.amazonaws.com/doc/2010-08-01/"

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
PUT_INPUT = {
    "Namespace": "Lab/app",
    "MetricData": [
        {"MetricName": "latency", "Dimensions": [{"Name": "host", "Value": "h1"},
                                                 {"Name": "zone", "Value": "z\u00fc"}],
         "Timestamp": WHEN, "Values": [1.5, -2.0, 1e300], "Counts": [1.0, 2.0, 3.0],
         "Unit": "Milliseconds", "StorageResolution": 1},
        {"MetricName": "errors", "Value": 0.0, "Dimensions": [],
         "StatisticValues": {"SampleCount": 2.0, "Sum": 3.0, "Minimum": 1.0,
                             "Maximum": 2.0}},
    ],
    "EntityMetricData": [{"Entity": {"KeyAttributes": {"Type": "Service", "Name": "web"},
                                     "Attributes": {}},
                          "MetricData": [{"MetricName": "m", "Value": 1.0}]}],
    "StrictEntityValidation": False,
}


def read(protocol, operation, params):
    """*params* as botocore sends them on *protocol*, read back by eucalite.wire.parse."""
    if protocol == "query":
        body = QuerySerializer().serialize_to_request(params, operation)["body"]
        pairs = [(key, str(value)) for key, value in body.items()
                 if key not in ("Action", "Version")]
        return parse.from_query(operation.input_shape, QueryParams(pairs))
    if protocol == "json":
        body = JSONSerializer().serialize_to_request(params, operation)["body"]
        return parse.from_json(operation.input_shape, body)
    body = RpcV2CBORSerializer().serialize_to_request(params, operation)["body"]
    return parse.from_cbor(operation.input_shape, body)


@pytest.mark.parametrize("protocol", ["query", "json", "cbor"])
def test_every_protocol_reads_botocores_request_to_the_same_input(protocol):
    expected = PUT_INPUT
    if protocol == "query":     # an empty map sends no parameter at all: it reads as absent
        expected = copy.deepcopy(PUT_INPUT)
        del expected["EntityMetricData"][0]["Entity"]["Attributes"]
    assert read(protocol, PUT, PUT_INPUT) == expected


@pytest.mark.parametrize("protocol", ["query", "json", "cbor"])
def test_timestamps_ints_bools_and_enums_of_another_operation(protocol):
    operation = CLOUDWATCH.operation("GetMetricData")
    params = {"MetricDataQueries": [{"Id": "q1", "Expression": "SUM(METRICS())",
                                     "Period": 60, "ReturnData": True}],
              "StartTime": WHEN, "EndTime": WHEN + dt.timedelta(hours=1),
              "MaxDatapoints": 100800, "ScanBy": "TimestampDescending",
              "LabelOptions": {"Timezone": "+0130"}}
    assert read(protocol, operation, params) == params


def test_query_reads_iso8601_with_and_without_zone_or_fraction():
    shape = CLOUDWATCH.operation("GetMetricStatistics").input_shape
    for text in ("2026-01-02T03:04:05.678Z", "2026-01-02T04:04:05.678+01:00",
                 "2026-01-02T03:04:05.678"):
        data = parse.from_query(shape, QueryParams([("StartTime", text)]))
        assert data["StartTime"] == WHEN
    assert parse.from_query(shape, QueryParams([("StartTime", "1767323045.678")])) \
        ["StartTime"].replace(microsecond=0) == WHEN.replace(microsecond=0)


@pytest.mark.parametrize("name,value,message", [
    ("MetricData.member.1.Value", "abc",
     "Value (abc) for parameter MetricData.member.1.Value is invalid. Expected a number."),
    ("MetricData.member.1.StorageResolution", "1.5",
     "Value (1.5) for parameter MetricData.member.1.StorageResolution is invalid. "
     "Expected an integer."),
    ("MetricData.member.1.StorageResolution", "4294967296",
     "Value (4294967296) for parameter MetricData.member.1.StorageResolution is invalid. "
     "Expected an integer."),
    ("MetricData.member.1.Timestamp", "yesterday",
     "Value (yesterday) for parameter MetricData.member.1.Timestamp is invalid. "
     "Expected an ISO-8601 timestamp."),
    ("StrictEntityValidation", "yes",
     "Value (yes) for parameter StrictEntityValidation is invalid. Expected 'true' or "
     "'false'."),
])
def test_query_values_that_do_not_read_as_their_type(name, value, message):
    params = QueryParams([("Namespace", "n"), ("MetricData.member.1.MetricName", "m"),
                          (name, value)])
    with pytest.raises(InvalidParameterValue) as caught:
        parse.from_query(PUT.input_shape, params)
    assert caught.value.message == message


def test_query_flattened_lists_and_maps_as_botocore_sends_them():
    """CloudWatch has none; other Query services (SQS, SNS) do."""
    raw = {"metadata": {"apiVersion": "2020-01-01", "endpointPrefix": "t", "serviceId": "T",
                        "protocol": "query", "xmlNamespace": "urn:t"},
           "operations": {"Op": {"name": "Op", "http": {"method": "POST", "requestUri": "/"},
                                 "input": {"shape": "In"},
                                 "output": {"shape": "In", "resultWrapper": "OpResult"}}},
           "shapes": {
               "In": {"type": "structure", "members": {
                   "Names": {"shape": "NameList"}, "Plain": {"shape": "PlainList"},
                   "Attrs": {"shape": "AttrMap", "locationName": "Attribute"},
                   "Tags": {"shape": "TagMap"}}},
               "NameList": {"type": "list", "member": {"shape": "S", "locationName": "Name"},
                            "flattened": True},
               "PlainList": {"type": "list", "member": {"shape": "S"}, "flattened": True},
               "AttrMap": {"type": "map", "key": {"shape": "S", "locationName": "Name"},
                           "value": {"shape": "S", "locationName": "Value"},
                           "flattened": True},
               "TagMap": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
               "S": {"type": "string"}}}
    service = model.ServiceModel(raw, "t")
    operation = service.operation("Op")
    params = {"Names": ["a", "b"], "Plain": ["c"], "Attrs": {"k": "v", "k2": "v2"},
              "Tags": {"t": "u"}}
    body = QuerySerializer().serialize_to_request(params, operation)["body"]
    assert body["Name.2"] == "b" and body["Attribute.1.Name"] == "k"
    pairs = [(key, value) for key, value in body.items() if key not in ("Action", "Version")]
    assert parse.from_query(operation.input_shape, QueryParams(pairs)) == params
    # and back: the same shape as an answer, read by botocore
    reply = render.result("query", service, operation, params, "r")
    assert b"<Name>a</Name><Name>b</Name>" in reply.body
    parsed = QueryParser().parse({"body": reply.body, "headers": {}, "status_code": 200},
                                 operation.output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == params


def test_query_structure_errors_and_ignored_unknowns():
    shape = PUT.input_shape
    with pytest.raises(InvalidParameterValue):       # a list sent as one value
        parse.from_query(shape, QueryParams([("MetricData", "x")]))
    with pytest.raises(InvalidParameterValue):       # a list without .member
        parse.from_query(shape, QueryParams([("MetricData.1.MetricName", "x")]))
    with pytest.raises(InvalidParameterValue):       # index 0
        parse.from_query(shape, QueryParams([("MetricData.member.0.MetricName", "x")]))
    data = parse.from_query(shape, QueryParams([("Namespace", "n"), ("Bogus.1", "x"),
                                                ("MetricData.member.3.MetricName", "b"),
                                                ("MetricData.member.1.MetricName", "a")]))
    assert data == {"Namespace": "n", "MetricData": [{"MetricName": "a"},
                                                     {"MetricName": "b"}]}


@pytest.mark.parametrize("body,message", [
    (b"{", "not valid JSON"), (b"[]", "must be a structure"), (b"\xff", "not valid JSON"),
    (b'{"Namespace": 5}', "The value at 'namespace' must be a string."),
    (b'{"Namespace": "n", "MetricData": {}}', "The value at 'metricData' must be a list."),
    (b'{"Namespace": "n", "MetricData": [{"MetricName": "m", "Value": "1"}]}',
     "The value at 'metricData.1.member.value' must be a number."),
    (b'{"Namespace": "n", "MetricData": [{"MetricName": "m", "Timestamp": "2026-01-01"}]}',
     "must be a timestamp"),
    (b'{"Namespace": "n", "MetricData": [{"MetricName": "m", "StorageResolution": 1e10}]}',
     "must be an integer between"),
    (b'{"StrictEntityValidation": "true"}', "must be a boolean"),
])
def test_json_bodies_not_of_the_input_shape(body, message):
    with pytest.raises(SerializationException) as caught:
        parse.from_json(PUT.input_shape, body)
    assert message in caught.value.message


def test_json_nested_beyond_the_parsers_stack_is_a_serialization_error():
    with pytest.raises(SerializationException):
        parse.from_json(PUT.input_shape, b'{"Namespace": ' + b"[" * 200_000 + b"]" * 200_000
                        + b"}")


def test_json_accepts_special_doubles_and_ignores_unknown_members():
    data = parse.from_json(PUT.input_shape, json.dumps(
        {"Namespace": "n", "Unknown": [1], "MetricData": [
            {"MetricName": "m", "Value": "NaN", "Values": ["Infinity", 2]}]}).encode())
    value = data["MetricData"][0]
    assert value["Value"] != value["Value"] and value["Values"] == [float("inf"), 2.0]


def test_cbor_bodies_not_of_the_input_shape():
    for document in ([1], {"Namespace": b"bytes"}, {"Namespace": "n", "MetricData": [
            {"MetricName": "m", "Timestamp": "2026"}]}):
        with pytest.raises(SerializationException):
            parse.from_cbor(PUT.input_shape, cbor.encode(document))
    with pytest.raises(SerializationException):
        parse.from_cbor(PUT.input_shape, b"\xa1")
    assert parse.from_cbor(PUT.input_shape, b"") == {}


# --- constraints --------------------------------------------------------------------------

def test_missing_required_members_are_missing_parameter_named_as_query_names_them():
    with pytest.raises(MissingParameter) as caught:
        validate.validate(PUT.input_shape, {"MetricData": []})
    assert caught.value.message == "The parameter Namespace is required."
    with pytest.raises(MissingParameter) as caught:
        validate.validate(PUT.input_shape, {"Namespace": "n", "MetricData": [
            {"MetricName": "a"}, {"Dimensions": [{"Name": "d"}]}]})
    assert caught.value.message == "The parameter MetricData.member.2.MetricName is required."


def test_constraint_breaches_in_corals_words():
    with pytest.raises(ValidationError) as caught:
        validate.validate(PUT.input_shape, {"Namespace": "n" * 256})
    assert caught.value.code == "ValidationError" and caught.value.status == 400
    assert caught.value.message == (
        f"1 validation error detected: Value '{'n' * 256}' at 'namespace' failed to satisfy "
        "constraint: Member must have length less than or equal to 255")

    with pytest.raises(ValidationError) as caught:
        validate.validate(PUT.input_shape, {"Namespace": ":x", "MetricData": [
            {"MetricName": "m", "Unit": "Parsecs", "StorageResolution": 0,
             "Dimensions": [{"Name": "", "Value": "v"}]}]})
    assert caught.value.message == (
        "4 validation errors detected: "
        "Value ':x' at 'namespace' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [^:].*; "
        "Value '' at 'metricData.1.member.dimensions.1.member.name' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1; "
        "Value 'Parsecs' at 'metricData.1.member.unit' failed to satisfy constraint: Member "
        "must satisfy enum value set: [" + ", ".join(
            PUT.input_shape.members["MetricData"].member.members["Unit"].enum) + "]; "
        "Value '0' at 'metricData.1.member.storageResolution' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")


def test_list_and_map_lengths():
    dimensions = [{"Name": f"d{i}", "Value": "v"} for i in range(31)]
    with pytest.raises(ValidationError) as caught:
        validate.validate(PUT.input_shape, {"Namespace": "n", "MetricData": [
            {"MetricName": "m", "Dimensions": dimensions}]})
    assert "at 'metricData.1.member.dimensions' failed to satisfy constraint: Member must " \
           "have length less than or equal to 30" in caught.value.message
    with pytest.raises(ValidationError) as caught:
        validate.validate(PUT.input_shape, {"Namespace": "n", "EntityMetricData": [
            {"Entity": {"KeyAttributes": {"Type": "x"}}}]})
    assert "Value '{Type=x}' at 'entityMetricData.1.member.entity.keyAttributes' failed to " \
           "satisfy constraint: Member must have length greater than or equal to 2" \
           in caught.value.message
    validate.validate(PUT.input_shape, PUT_INPUT)          # the full example is valid


# --- rendering ----------------------------------------------------------------------------

DATAPOINTS = {"Label": "cpu", "Datapoints": [
    {"Timestamp": WHEN, "Average": 0.25, "Maximum": 2.0, "SampleCount": 3.0,
     "Unit": "Percent", "ExtendedStatistics": {"p99": 9.5, "p50": 1.0}}]}


IMAGE = {"MetricWidgetImage": b"\x89PNG\r\n\x00\xff"}
LISTING = {"Metrics": [{"Namespace": "n", "MetricName": "m",
                        "Dimensions": [{"Name": "a", "Value": "b"}]}, {"MetricName": "x"}],
           "NextToken": "t", "OwningAccounts": []}


@pytest.mark.parametrize("protocol,parser", [("query", QueryParser), ("json", JSONParser),
                                             ("cbor", RpcV2CBORParser)])
@pytest.mark.parametrize("operation,output", [("GetMetricStatistics", DATAPOINTS),
                                              ("GetMetricWidgetImage", IMAGE),
                                              ("ListMetrics", LISTING)])
def test_botocore_reads_rendered_results_unchanged(protocol, parser, operation, output):
    operation = CLOUDWATCH.operation(operation)
    reply = render.result(protocol, CLOUDWATCH, operation, output, "req-1")
    parsed = parser().parse({"body": reply.body, "headers": reply.headers,
                             "status_code": 200}, operation.output_shape)
    parsed.pop("ResponseMetadata", None)
    assert parsed == output


def test_query_result_document():
    operation = CLOUDWATCH.operation("GetMetricStatistics")
    reply = render.result("query", CLOUDWATCH, operation, DATAPOINTS, "req-1")
    assert reply.status == 200 and reply.headers == {"Content-Type": "text/xml"}
    root = ET.fromstring(reply.body)
    ns = {"c": NAMESPACE}
    assert root.tag == f"{{{NAMESPACE}}}GetMetricStatisticsResponse"
    point = root.find("c:GetMetricStatisticsResult/c:Datapoints/c:member", ns)
    assert point.findtext("c:Timestamp", namespaces=ns) == "2026-01-02T03:04:05.678Z"
    assert point.findtext("c:Average", namespaces=ns) == "0.25"
    entries = point.findall("c:ExtendedStatistics/c:entry", ns)
    assert [(e.findtext("c:key", namespaces=ns), e.findtext("c:value", namespaces=ns))
            for e in entries] == [("p99", "9.5"), ("p50", "1.0")]
    assert root.findtext("c:ResponseMetadata/c:RequestId", namespaces=ns) == "req-1"


def test_no_output_renders_an_empty_answer_every_protocol_accepts():
    assert render.result("json", CLOUDWATCH, PUT, None, "r").body == b"{}"
    assert render.result("cbor", CLOUDWATCH, PUT, None, "r").body == b"\xa0"
    root = ET.fromstring(render.result("query", CLOUDWATCH, PUT, None, "r").body)
    assert [child.tag.split("}")[1] for child in root] == ["ResponseMetadata"]


@pytest.mark.parametrize("protocol,parser", [("query", QueryParser), ("json", JSONParser),
                                             ("cbor", RpcV2CBORParser)])
def test_numbers_are_written_as_their_members_type(protocol, parser):
    """A handler's 60.0 for an integer member is 60 on the wire, its 3 for a double 3.0."""
    operation = CLOUDWATCH.operation("DescribeAlarms")
    output = {"MetricAlarms": [{"AlarmName": "a", "Period": 60.0, "EvaluationPeriods": 2,
                                "Threshold": 3, "ActionsEnabled": 1}]}
    reply = render.result(protocol, CLOUDWATCH, operation, output, "r")
    parsed = parser().parse({"body": reply.body, "headers": reply.headers,
                             "status_code": 200}, operation.output_shape)
    alarm = parsed["MetricAlarms"][0]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"],
            alarm["ActionsEnabled"]) == (60, 2, 3.0, True)
    assert type(alarm["Period"]) is int and type(alarm["Threshold"]) is float
    with pytest.raises(ValueError):
        render.result(protocol, CLOUDWATCH, operation,
                      {"MetricAlarms": [{"Period": 60.5}]}, "r")
    with pytest.raises(ValueError):                 # naive: local time, wrong off UTC
        render.result(protocol, CLOUDWATCH, operation, {"MetricAlarms": [
            {"StateUpdatedTimestamp": dt.datetime(2026, 1, 1)}]}, "r")


def test_an_output_member_the_model_lacks_is_a_handler_bug():
    with pytest.raises(ValueError):
        render.result("json", CLOUDWATCH, CLOUDWATCH.operation("ListMetrics"),
                      {"Metric": []}, "r")


def test_error_envelopes():
    failure = MissingParameter("The parameter Namespace is required.")
    reply = render.error("query", CLOUDWATCH, failure, "req-2")
    root = ET.fromstring(reply.body)
    ns = {"c": NAMESPACE}
    assert reply.status == 400 and root.tag == f"{{{NAMESPACE}}}ErrorResponse"
    assert [root.findtext(f"c:Error/c:{name}", namespaces=ns)
            for name in ("Type", "Code", "Message")] == \
        ["Sender", "MissingParameter", "The parameter Namespace is required."]
    assert root.findtext("c:RequestId", namespaces=ns) == "req-2"

    reply = render.error("json", CLOUDWATCH, failure, "req-2")
    assert json.loads(reply.body) == {"__type": "MissingRequiredParameterException",
                                      "message": "The parameter Namespace is required."}
    assert reply.headers == {"Content-Type": "application/x-amz-json-1.0",
                             "x-amzn-query-error": "MissingParameter;Sender"}

    reply = render.error("cbor", CLOUDWATCH, AuthError("bad-signature", "no").for_service(
        "monitoring"), "req-2")
    assert reply.status == 403
    assert cbor.decode(reply.body) == {"__type": "SignatureDoesNotMatch", "message": "no"}
    assert reply.headers == {"Content-Type": "application/cbor",
                             "smithy-protocol": "rpc-v2-cbor",
                             "x-amzn-query-error": "SignatureDoesNotMatch;Sender"}

    reply = render.error("json", CLOUDWATCH, UnknownOperationException("gone"), "r")
    assert "x-amzn-query-error" not in reply.headers
    assert json.loads(reply.body)["__type"] == "UnknownOperationException"


def test_an_error_code_two_shapes_share_is_named_as_the_operation_declares_it():
    failure = ResourceNotFound("Dashboard d does not exist.")
    for operation, shape in (("GetDashboard", "DashboardNotFoundError"),
                             ("DescribeAlarmHistory", "ResourceNotFound"),
                             (None, "ResourceNotFound")):
        reply = render.error("json", CLOUDWATCH, failure, "r",
                             operation and CLOUDWATCH.operation(operation))
        assert json.loads(reply.body)["__type"] == shape
        assert reply.headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
