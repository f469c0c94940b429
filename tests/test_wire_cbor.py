"""eucalite.wire.cbor against RFC 8949's examples and botocore's own CBOR serializer and
parser (what SDKs speaking Smithy RPC v2 CBOR send and expect)."""
from __future__ import annotations

import datetime as dt
import io
import math

import botocore.loaders
import botocore.model
import pytest
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer

from eucalite.wire import cbor
from eucalite.wire.cbor import CBORDecodeError, Tag

UTC = dt.timezone.utc


def cloudwatch_operation(name):
    loader = botocore.loaders.create_loader()
    model = botocore.model.ServiceModel(loader.load_service_model("cloudwatch", "service-2"),
                                        "cloudwatch")
    return model.operation_model(name)


# RFC 8949 appendix A: (value, encoding) pairs decode and (where canonical) encode alike.
RFC_EXAMPLES = [
    (0, "00"), (1, "01"), (10, "0a"), (23, "17"), (24, "1818"), (25, "1819"), (100, "1864"),
    (1000, "1903e8"), (1000000, "1a000f4240"), (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"), (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"), (-10, "29"), (-100, "3863"), (-1000, "3903e7"),
    (False, "f4"), (True, "f5"), (None, "f6"),
    (b"", "40"), (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("a", "6161"),
    ("IETF", "6449455446"), ("\"\\", "62225c"), ("\u00fc", "62c3bc"), ("\u6c34", "63e6b0b4"),
    ("\U00010151", "64f0908591"), ([], "80"), ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"), ({}, "a0"), ({1: 2, 3: 4}, "a201020304"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"), (["a", {"b": "c"}], "826161a161626163"),
    (1.1, "fb3ff199999999999a"), (-4.1, "fbc010666666666666"), (1.0e300, "fb7e37e43c8800759c"),
]


@pytest.mark.parametrize("value,encoded", RFC_EXAMPLES)
def test_rfc_examples_encode_and_decode(value, encoded):
    assert cbor.encode(value).hex() == encoded
    assert cbor.decode(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize("encoded,value", [
    ("f90000", 0.0), ("f93c00", 1.0), ("f9c400", -4.0), ("f97bff", 65504.0),
    ("fa47c35000", 100000.0), ("fa7f7fffff", 3.4028234663852886e38), ("f97c00", math.inf),
    ("f9fc00", -math.inf), ("fb7ff0000000000000", math.inf),
    ("f7", None),                                            # undefined reads as null
    ("5f42010243030405ff", b"\x01\x02\x03\x04\x05"),        # indefinite byte string
    ("7f657374726561646d696e67ff", "streaming"),            # indefinite text string
    ("9fff", []), ("9f018202039f0405ffff", [1, [2, 3], [4, 5]]),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}),
    ("c11a514b67b0", dt.datetime(2013, 3, 21, 20, 4, tzinfo=UTC)),
    ("c1fb41d452d9ec200000", dt.datetime(2013, 3, 21, 20, 4, 0, 500000, tzinfo=UTC)),
    ("d74401020304", Tag(23, b"\x01\x02\x03\x04")),
])
def test_decodes_every_form_an_encoder_may_send(encoded, value):
    assert cbor.decode(bytes.fromhex(encoded)) == value


def test_nan_decodes_from_each_width():
    for encoded in ("f97e00", "fa7fc00000", "fb7ff8000000000000"):
        assert math.isnan(cbor.decode(bytes.fromhex(encoded)))


def test_datetimes_encode_as_tag_1_over_epoch_seconds_keeping_milliseconds():
    when = dt.datetime(2026, 12, 6, 2, 25, 47, 123000, tzinfo=UTC)
    encoded = cbor.encode(when)
    assert encoded[0] == 0xC1 and encoded[1] == 0xFB
    assert cbor.decode(encoded) == when
    with pytest.raises(ValueError):
        cbor.encode(dt.datetime(2026, 1, 1))                 # naive: no epoch time


def test_encode_refuses_what_cbor_cannot_carry():
    with pytest.raises(ValueError):
        cbor.encode(2**64)
    with pytest.raises(ValueError):
        cbor.encode(-2**64 - 1)
    with pytest.raises(TypeError):
        cbor.encode({1, 2})


@pytest.mark.parametrize("encoded,why", [
    ("", "empty"), ("18", "truncated argument"), ("1c", "reserved additional info"),
    ("62c3", "string shorter than its length"), ("9b00000000ffffffff", "forged array length"),
    ("820102ff", "break after a definite array"), ("ff", "a lone break"),
    ("0001", "trailing bytes"), ("5f6161ff", "text chunk in a byte string"),
    ("5f5f4101ffff", "nested indefinite chunk"), ("62c328", "invalid UTF-8"),
    ("a16161", "map without the value"), ("a2616101616102", "duplicate key"),
    ("a1800102", "array as a map key"), ("c16161", "tag 1 over text"),
    ("c1f97c00", "tag 1 over infinity"), ("c11bffffffffffffffff", "tag 1 out of range"),
    ("f0", "unassigned simple value"), ("f820", "one-byte simple value"),
    ("9f01", "indefinite array never ended"), ("bf6161ff", "indefinite map: key, no value"),
])
def test_malformed_input_raises_a_value_error(encoded, why):
    with pytest.raises(CBORDecodeError):
        cbor.decode(bytes.fromhex(encoded))
    assert issubclass(CBORDecodeError, ValueError)


def test_nesting_is_bounded():
    assert cbor.decode(b"\x81" * cbor.MAX_DEPTH + b"\x00") is not None
    with pytest.raises(CBORDecodeError):
        cbor.decode(b"\x81" * (cbor.MAX_DEPTH + 1) + b"\x00")
    with pytest.raises(CBORDecodeError):
        cbor.decode(b"\x9f" * 100_000)


def test_decodes_what_botocore_sends():
    """A PutMetricData body as botocore's RPC v2 CBOR serializer writes it."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    params = {"Namespace": "Lab/\u00fcber", "StrictEntityValidation": True,
              "MetricData": [{"MetricName": "x" * 300, "Value": -1.5, "Timestamp": when,
                              "Values": [1.0, 2.5e300], "Counts": [3.0, 4.0],
                              "StorageResolution": 2**31 - 1,
                              "Dimensions": [{"Name": "a", "Value": "b"}]}],
              "EntityMetricData": [{"Entity": {"KeyAttributes": {"k": "v", "k2": "v2"}}}]}
    body = RpcV2CBORSerializer().serialize_to_request(
        params, cloudwatch_operation("PutMetricData"))["body"]
    assert cbor.decode(body) == params


def test_botocore_reads_what_we_encode():
    """A GetMetricStatistics answer as eucalite encodes it, read by botocore's parser."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    document = {"Label": "cpu", "Datapoints": [
        {"Timestamp": when, "Average": 0.25, "Maximum": -2.0, "SampleCount": 1e300,
         "Unit": "Percent", "ExtendedStatistics": {"p99": 9.5}}]}
    parsed = RpcV2CBORParser().parse(
        {"body": cbor.encode(document), "headers": {}, "status_code": 200},
        cloudwatch_operation("GetMetricStatistics").output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == document


def test_round_trip_through_botocore_parser_for_big_and_negative_ints():
    for value in (0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, -1, -24,
                  -25, -2**32, -2**63, -2**64):
        encoded = cbor.encode(value)
        parser = RpcV2CBORParser()
        assert parser.parse_data_item(io.BufferedReader(io.BytesIO(encoded))) == value
        assert cbor.decode(encoded) == value
