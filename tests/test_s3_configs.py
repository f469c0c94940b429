"""Pure S3 configuration logic: CORS, lifecycle, tagging and POST policies (no HTTP, no DB)."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET

import boto3
import pytest
from botocore.config import Config

from eucalite.accounts import Principal
from eucalite.errors import AuthError, AwsError
from eucalite.errors.s3 import MalformedXML
from eucalite.s3 import cors, expiry, lifecycle, postpolicy, tagging
from eucalite.xmlutil import S3_NAMESPACE

UTC = dt.timezone.utc
NS = {"s3": S3_NAMESPACE}


def code_of(call, *args, **kwargs) -> AwsError:
    with pytest.raises(AwsError) as excinfo:
        call(*args, **kwargs)
    return excinfo.value


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# === CORS ================================================================================

def cors_body(*rules: str) -> bytes:
    inner = "".join(f"<CORSRule>{rule}</CORSRule>" for rule in rules)
    return f'<CORSConfiguration xmlns="{S3_NAMESPACE}">{inner}</CORSConfiguration>'.encode()


FULL_RULE = ("<ID>web</ID><AllowedOrigin>http://www.example.com</AllowedOrigin>"
             "<AllowedOrigin>http://*.example.org</AllowedOrigin>"
             "<AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>"
             "<AllowedMethod>DELETE</AllowedMethod>"
             "<AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>Content-Type</AllowedHeader>"
             "<ExposeHeader>ETag</ExposeHeader><ExposeHeader>x-amz-meta-custom</ExposeHeader>"
             "<MaxAgeSeconds>3000</MaxAgeSeconds>")
ANY_GET = "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"


def test_cors_parse_full_rule_and_namespace_free_document():
    rules = cors.parse_cors(cors_body(FULL_RULE, ANY_GET))
    assert rules[0] == {"ID": "web",
                        "AllowedOrigins": ["http://www.example.com", "http://*.example.org"],
                        "AllowedMethods": ["PUT", "POST", "DELETE"],
                        "AllowedHeaders": ["x-amz-*", "Content-Type"],
                        "ExposeHeaders": ["ETag", "x-amz-meta-custom"], "MaxAgeSeconds": 3000}
    assert rules[1] == {"ID": None, "AllowedOrigins": ["*"], "AllowedMethods": ["GET"],
                        "AllowedHeaders": [], "ExposeHeaders": [], "MaxAgeSeconds": None}
    plain = b"<CORSConfiguration><CORSRule>" + ANY_GET.encode() + b"</CORSRule></CORSConfiguration>"
    assert cors.parse_cors(plain) == rules[1:]
    json.dumps(rules)                   # storable as JSON


def test_cors_round_trips_through_xml():
    rules = cors.parse_cors(cors_body(FULL_RULE, ANY_GET))
    xml = cors.cors_to_xml(rules)
    assert xml.startswith(b"<?xml")
    root = ET.fromstring(xml)
    assert root.tag == f"{{{S3_NAMESPACE}}}CORSConfiguration"
    assert cors.parse_cors(xml) == rules
    assert root.find("s3:CORSRule/s3:ID", NS).text == "web"
    assert root.findall("s3:CORSRule", NS)[1].find("s3:ID", NS) is None


def test_cors_parses_what_botocore_sends():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a",
                          aws_secret_access_key="b")
    request = {}

    def capture(params, **kwargs):          # before-call sees the serialized request
        request["body"] = params["body"]
        raise RuntimeError("stop")

    client.meta.events.register("before-call.s3.PutBucketCors", capture)
    with pytest.raises(RuntimeError):
        client.put_bucket_cors(Bucket="b", CORSConfiguration={"CORSRules": [
            {"ID": "x", "AllowedOrigins": ["https://a.test"], "AllowedMethods": ["GET", "HEAD"],
             "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})
    assert cors.parse_cors(request["body"]) == [
        {"ID": "x", "AllowedOrigins": ["https://a.test"], "AllowedMethods": ["GET", "HEAD"],
         "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]


@pytest.mark.parametrize("body", [
    b"",
    b"<CORSConfiguration>",
    b"<CORSConfiguration/>",                                       # no rules
    b"<Other><CORSRule/></Other>",
    cors_body(""),                                                 # empty rule
    cors_body("<AllowedMethod>GET</AllowedMethod>"),               # no origin
    cors_body("<AllowedOrigin>*</AllowedOrigin>"),                 # no method
    cors_body(ANY_GET + "<MaxAgeSeconds>soon</MaxAgeSeconds>"),
    cors_body(ANY_GET + "<MaxAgeSeconds>-1</MaxAgeSeconds>"),
    cors_body(ANY_GET + "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>"),
    cors_body(ANY_GET + "<Unknown>x</Unknown>"),
    cors_body(*[ANY_GET] * 101),
])
def test_cors_malformed(body):
    assert isinstance(code_of(cors.parse_cors, body), MalformedXML)


def test_cors_hundred_rules_is_the_limit():
    assert len(cors.parse_cors(cors_body(*[ANY_GET] * 100))) == 100


@pytest.mark.parametrize("rule, message", [
    ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>",
     "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
    ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>",
     "Found unsupported HTTP method in CORS config. Unsupported method is get"),
    ("<AllowedOrigin>*</AllowedOrigin><AllowedMethod></AllowedMethod>",
     "Found unsupported HTTP method in CORS config. Unsupported method is "),
    ("<AllowedOrigin>http://*.*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
     'AllowedOrigin "http://*.*.com" can not have more than one wildcard.'),
    (ANY_GET + "<AllowedHeader>x-*-*</AllowedHeader>",
     'AllowedHeader "x-*-*" can not have more than one wildcard.'),
    (ANY_GET + "<ExposeHeader>*</ExposeHeader>",
     'ExposeHeader "*" contains wildcard. We currently do not support wildcard for '
     "ExposeHeader."),
])
def test_cors_invalid_request(rule, message):
    error = code_of(cors.parse_cors, cors_body(rule))
    assert (error.code, error.status, error.message) == ("InvalidRequest", 400, message)


def test_cors_id_too_long():
    error = code_of(cors.parse_cors, cors_body(f"<ID>{'i' * 256}</ID>" + ANY_GET))
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert cors.parse_cors(cors_body(f"<ID>{'i' * 255}</ID>" + ANY_GET))


@pytest.mark.parametrize("pattern, origin, expected", [
    ("*", "http://anything:8080", True),
    ("*", "", True),
    ("http://*.example.com", "http://www.example.com", True),
    ("http://*.example.com", "http://a.b.example.com", True),
    ("http://*.example.com", "https://www.example.com", False),
    ("http://*.example.com", "http://example.com", False),
    ("http://*.example.com", "http://www.example.com.evil.test", False),
    ("http://www.example.com", "http://www.example.com:80", False),
    ("http://www.example.com", "http://www.example.com/", False),
    ("*suffix", "foo.suffix", True),
    ("start*end", "startend", True),          # * matches the empty run
    ("start*end", "0start12end", False),      # anchored
    ("prefix*", "bla.prefix", False),
    ("a*a", "a", False),                       # head and tail may not overlap
])
def test_cors_origin_wildcards(pattern, origin, expected):
    assert cors.wildcard_match(pattern, origin) is expected


def test_preflight_specific_origin_gets_credentials_and_rule_headers():
    rules = cors.parse_cors(cors_body(FULL_RULE, ANY_GET))
    headers = cors.preflight(rules, "http://www.example.com", "PUT",
                             ["X-Amz-Meta-Owner", "content-type"])
    assert headers == {
        "Access-Control-Allow-Origin": "http://www.example.com",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "PUT, POST, DELETE",
        "Access-Control-Allow-Headers": "x-amz-meta-owner, content-type",
        "Access-Control-Expose-Headers": "ETag, x-amz-meta-custom",
        "Access-Control-Max-Age": "3000",
        "Vary": "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    }


def test_preflight_wildcard_origin_rule():
    rules = cors.parse_cors(cors_body(FULL_RULE, ANY_GET))
    assert cors.preflight(rules, "http://shop.example.org", "DELETE", [])[
        "Access-Control-Allow-Origin"] == "http://shop.example.org"
    headers = cors.preflight(rules, "http://random:1234", "GET", [])
    assert headers == {"Access-Control-Allow-Origin": "*",
                       "Access-Control-Allow-Methods": "GET", "Vary": cors.VARY}


def test_preflight_first_matching_rule_wins_and_refusals():
    rules = cors.parse_cors(cors_body(FULL_RULE, ANY_GET))
    # GET is only in the second rule: the first is skipped even for its own origin.
    assert cors.preflight(rules, "http://www.example.com", "GET", [])[
        "Access-Control-Allow-Origin"] == "*"
    assert cors.preflight(rules, "http://evil.test", "PUT", []) is None
    assert cors.preflight(rules, "http://www.example.com", "PUT", ["x-custom"]) is None
    # a rule without AllowedHeader allows no requested header
    assert cors.preflight(rules, "http://evil.test", "GET", ["x-amz-date"]) is None
    assert cors.preflight(rules, "http://www.example.com", "HEAD", []) is None


def test_preflight_header_matching_is_case_insensitive():
    rules = cors.parse_cors(cors_body(
        "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>"
        "<AllowedHeader>x-AMZ-server-SIDE-encryption</AllowedHeader>"
        "<AllowedHeader>X-Amz-Meta-*</AllowedHeader>"))
    headers = cors.preflight(rules, "o", "PUT", cors.split_header_list(
        "X-AMZ-Server-Side-Encryption,x-amz-meta-A , , x-amz-META-b"))
    assert headers["Access-Control-Allow-Headers"] == \
        "x-amz-server-side-encryption, x-amz-meta-a, x-amz-meta-b"
    assert cors.preflight(rules, "o", "PUT", ["x-amz-request-payer"]) is None
    star = cors.parse_cors(cors_body("<AllowedOrigin>*</AllowedOrigin>"
                                     "<AllowedMethod>PUT</AllowedMethod>"
                                     "<AllowedHeader>*</AllowedHeader>"))
    assert cors.preflight(star, "o", "PUT", ["Authorization", "X-Anything"])[
        "Access-Control-Allow-Headers"] == "authorization, x-anything"


def test_actual_request_headers():
    rules = cors.parse_cors(cors_body(FULL_RULE, ANY_GET))
    assert cors.actual_headers(rules, "http://www.example.com", "PUT") == {
        "Access-Control-Allow-Origin": "http://www.example.com",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "PUT, POST, DELETE",
        "Access-Control-Expose-Headers": "ETag, x-amz-meta-custom",
        "Access-Control-Max-Age": "3000",
        "Vary": cors.VARY,
    }
    assert cors.actual_headers(rules, "http://x.test", "GET") == {
        "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET",
        "Vary": cors.VARY}
    assert cors.actual_headers(rules, "http://x.test", "PUT") == {}


def test_cors_refusal_errors():
    error = cors.not_allowed("PUT")
    assert (error.code, error.status) == ("AccessForbidden", 403)
    assert error.message.startswith("CORSResponse: This CORS request is not allowed.")
    assert error.extra == {"Method": "PUT", "ResourceType": "OBJECT"}
    error = cors.not_enabled("OPTIONS")
    assert error.message == "CORSResponse: CORS is not enabled for this bucket."
    assert error.extra["ResourceType"] == "BUCKET"
    error = cors.origin_required()
    assert (error.code, error.status) == ("BadRequest", 400)


# === Tagging =============================================================================

def tagging_body(*pairs, raw: str | None = None) -> bytes:
    tags = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return f"<Tagging><TagSet>{tags if raw is None else raw}</TagSet></Tagging>".encode()


def test_tagging_parse_and_round_trip():
    body = tagging_body(("b c+d-e=f.g_h:i/j@k", "2 + 2 = 4"), ("empty", ""), ("ü", "文"))
    tags = tagging.parse_tagging(body, limit=tagging.OBJECT_TAG_LIMIT)
    assert tags == {"b c+d-e=f.g_h:i/j@k": "2 + 2 = 4", "empty": "", "ü": "文"}
    xml = tagging.tagging_to_xml(tags)
    root = ET.fromstring(xml)
    assert root.tag == f"{{{S3_NAMESPACE}}}Tagging"
    assert tagging.parse_tagging(xml, limit=10) == tags
    assert list(tags) == [tag.findtext("s3:Key", namespaces=NS)
                          for tag in root.iterfind("s3:TagSet/s3:Tag", NS)]
    assert tagging.parse_tagging(tagging_body(), limit=10) == {}
    empty_value = b"<Tagging><TagSet><Tag><Key>a</Key><Value/></Tag></TagSet></Tagging>"
    assert tagging.parse_tagging(empty_value, limit=10) == {"a": ""}


def test_tag_limits_object_and_bucket():
    ten = [(f"k{i}", "v") for i in range(10)]
    assert len(tagging.parse_tagging(tagging_body(*ten), limit=10)) == 10
    error = code_of(tagging.parse_tagging, tagging_body(*ten, ("k10", "v")), limit=10)
    assert (error.code, error.status, error.message) == \
        ("BadRequest", 400, "Object tags cannot be greater than 10")
    fifty = [(f"k{i}", "v") for i in range(50)]
    assert len(tagging.parse_tagging(tagging_body(*fifty), limit=50)) == 50
    error = code_of(tagging.parse_tagging, tagging_body(*fifty, ("x", "y")), limit=50)
    assert (error.code, error.message) == ("BadRequest",
                                           "Bucket tag count cannot be greater than 50")


def test_tag_key_and_value_lengths():
    assert tagging.parse_tagging(tagging_body(("k" * 128, "v" * 256)), limit=10)
    error = code_of(tagging.parse_tagging, tagging_body(("k" * 129, "v")), limit=10)
    assert (error.code, error.status, error.message) == \
        ("InvalidTag", 400, "The TagKey you have provided is invalid")
    assert error.extra == {"TagKey": "k" * 129}
    error = code_of(tagging.parse_tagging, tagging_body(("k", "v" * 257)), limit=10)
    assert (error.code, error.message) == ("InvalidTag",
                                           "The TagValue you have provided is invalid")
    assert error.extra == {"TagKey": "k", "TagValue": "v" * 257}
    error = code_of(tagging.parse_tagging, tagging_body(("", "v")), limit=10)
    assert error.message == "The TagKey you have provided is invalid"


@pytest.mark.parametrize("bad", ["a,b", "a;b", "a?b", "a*b", "a#b", "a%b", "a(b)", "a\tb", "😀"])
def test_tag_characters(bad):
    error = code_of(tagging.validate_tags, [(bad, "v")], limit=10)
    assert (error.code, error.message) == ("InvalidTag", "The TagKey you have provided is invalid")
    error = code_of(tagging.validate_tags, [("k", bad)], limit=10)
    assert error.message == "The TagValue you have provided is invalid"


def test_tag_duplicates_and_system_prefix():
    error = code_of(tagging.parse_tagging, tagging_body(("a", "1"), ("a", "2")), limit=10)
    assert (error.code, error.status, error.message, error.extra) == (
        "InvalidTag", 400, "Cannot provide multiple Tags with the same key", {"TagKey": "a"})
    error = code_of(tagging.parse_tagging, tagging_body(("aws:cost", "1")), limit=10)
    assert (error.code, error.message) == ("InvalidTag",
                                           "Your TagKey cannot be prefixed with aws:")
    error = code_of(tagging.parse_tagging, tagging_body(("AWS:cost", "1")), limit=50)
    assert (error.code, error.message) == ("InvalidTag",
                                           "System tags cannot be added/updated by requester")
    assert tagging.parse_tagging(tagging_body(("something:aws:x", "1")), limit=50)


@pytest.mark.parametrize("body", [
    b"<Tagging></Tagging>",
    b"<Tagging><TagSet>",
    b"<Tags><TagSet/></Tags>",
    b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
    b"<Tagging><TagSet><Tag><Value>a</Value></Tag></TagSet></Tagging>",
    b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value><Value>2</Value></Tag></TagSet>"
    b"</Tagging>",
    b"<Tagging><TagSet/><TagSet/></Tagging>",
    b"<Tagging><TagSet><Other/></TagSet></Tagging>",
])
def test_tagging_malformed(body):
    assert isinstance(code_of(tagging.parse_tagging, body, limit=10), MalformedXML)


@pytest.mark.parametrize("header, tags", [
    ("a=1&b=2", {"a": "1", "b": "2"}),
    ("a&b=", {"a": "", "b": ""}),
    ("a%20b=c%2Bd&e+f=g=h", {"a b": "c+d", "e f": "g=h"}),
    ("%C3%BC=%E6%96%87", {"ü": "文"}),
    ("", {}),
])
def test_tagging_header(header, tags):
    assert tagging.parse_tagging_header(header) == tags


@pytest.mark.parametrize("header", ["a=1&a=2", "=1", "a=%FF", "a=&a="])
def test_tagging_header_refused(header):
    error = code_of(tagging.parse_tagging_header, header)
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message == tagging.HEADER_MESSAGE
    assert error.extra == {"ArgumentName": "x-amz-tagging", "ArgumentValue": header}


def test_tagging_header_limits():
    eleven = "&".join(f"k{i}=" for i in range(11))
    assert code_of(tagging.parse_tagging_header, eleven).code == "BadRequest"
    assert code_of(tagging.parse_tagging_header, "a%2Cb=1").extra == {"TagKey": "a,b"}
    assert code_of(tagging.parse_tagging_header, "aws:cost=1").code == "InvalidTag"
    assert tagging.parse_tagging_header(tagging.tagging_header_value(
        {"a b": "c+d=e", "ü": ""})) == {"a b": "c+d=e", "ü": ""}


# === Lifecycle ===========================================================================

def lc_body(*rules: str) -> bytes:
    inner = "".join(f"<Rule>{rule}</Rule>" for rule in rules)
    return (f'<LifecycleConfiguration xmlns="{S3_NAMESPACE}">{inner}'
            "</LifecycleConfiguration>").encode()


def lc_rule(actions="<Expiration><Days>1</Days></Expiration>", filter="<Filter/>",
            status="Enabled", rule_id="r") -> str:
    id_part = f"<ID>{rule_id}</ID>" if rule_id is not None else ""
    return f"{id_part}{filter}<Status>{status}</Status>{actions}"


def one_rule(**kwargs) -> dict:
    return lifecycle.parse_lifecycle(lc_body(lc_rule(**kwargs)))[0]


def test_lifecycle_parse_the_forms():
    rules = lifecycle.parse_lifecycle(lc_body(
        lc_rule(filter="<Filter><Prefix>logs/</Prefix></Filter>", rule_id="a"),
        lc_rule(filter="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                rule_id="b", actions="<Expiration><Date>2012-12-23T00:00:00Z</Date>"
                                     "</Expiration>"),
        lc_rule(filter="<Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value>"
                       "</Tag><Tag><Key>k2</Key><Value></Value></Tag>"
                       "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
                       "<ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter>",
                rule_id="c", status="Disabled",
                actions="<NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays>"
                        "<NewerNoncurrentVersions>2</NewerNoncurrentVersions>"
                        "</NoncurrentVersionExpiration>"),
        lc_rule(filter="<Filter><ObjectSizeLessThan>1</ObjectSizeLessThan></Filter>",
                rule_id="d", actions="<Expiration><Days>3</Days></Expiration>"),
        lc_rule(rule_id="e", actions="<AbortIncompleteMultipartUpload><DaysAfterInitiation>7"
                                     "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
                                     "<Expiration><ExpiredObjectDeleteMarker>true"
                                     "</ExpiredObjectDeleteMarker></Expiration>"),
    ))
    assert rules == [
        {"ID": "a", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
         "Expiration": {"Days": 1}},
        {"ID": "b", "Filter": {"Tag": {"Key": "k", "Value": "v"}}, "Status": "Enabled",
         "Expiration": {"Date": "2012-12-23T00:00:00.000Z"}},
        {"ID": "c", "Filter": {"And": {
            "Prefix": "p/", "Tags": [{"Key": "k", "Value": "v"}, {"Key": "k2", "Value": ""}],
            "ObjectSizeGreaterThan": 10, "ObjectSizeLessThan": 100}},
         "Status": "Disabled",
         "NoncurrentVersionExpiration": {"NoncurrentDays": 5, "NewerNoncurrentVersions": 2}},
        {"ID": "d", "Filter": {"ObjectSizeLessThan": 1}, "Status": "Enabled",
         "Expiration": {"Days": 3}},
        {"ID": "e", "Filter": {}, "Status": "Enabled",
         "Expiration": {"ExpiredObjectDeleteMarker": True},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
    ]
    json.dumps(rules)
    xml = lifecycle.lifecycle_to_xml(rules)
    assert lifecycle.parse_lifecycle(xml) == rules
    first = ET.fromstring(xml).find("s3:Rule", NS)
    assert [child.tag.split("}")[1] for child in first] == ["ID", "Filter", "Status",
                                                             "Expiration"]


def test_lifecycle_legacy_prefix_and_generated_ids():
    rules = lifecycle.parse_lifecycle(lc_body(
        "<Prefix>a/</Prefix><Status>Enabled</Status><Expiration><Days>2</Days></Expiration>",
        "<ID></ID><Prefix>b/</Prefix><Status>Enabled</Status>"
        "<Expiration><Days>2</Days></Expiration>"))
    assert [rule["Prefix"] for rule in rules] == ["a/", "b/"]
    assert all(len(rule["ID"]) == 48 for rule in rules)
    assert rules[0]["ID"] != rules[1]["ID"]
    assert base64.b64decode(rules[0]["ID"]).count(b"-") == 4
    assert lifecycle.parse_lifecycle(lifecycle.lifecycle_to_xml(rules)) == rules
    assert b"<Filter" not in lifecycle.lifecycle_to_xml(rules)


def test_lifecycle_parses_what_botocore_sends():
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a",
                          aws_secret_access_key="b")
    captured = {}

    def capture(params, **kwargs):
        captured["body"] = params["body"]
        raise RuntimeError("stop")

    client.meta.events.register("before-call.s3.PutBucketLifecycleConfiguration", capture)
    with pytest.raises(RuntimeError):
        client.put_bucket_lifecycle_configuration(Bucket="b", LifecycleConfiguration={"Rules": [
            {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
             "Expiration": {"Date": dt.datetime(2030, 1, 1)}},
            {"ID": "y", "Status": "Enabled", "Filter": {},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]})
    rules = lifecycle.parse_lifecycle(captured["body"])
    assert rules[0]["Expiration"] == {"Date": "2030-01-01T00:00:00.000Z"}
    assert rules[1]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}


@pytest.mark.parametrize("body", [
    lc_body(),                                                          # no rules
    b"<LifecycleConfiguration><Other/></LifecycleConfiguration>",
    lc_body(lc_rule(status="enabled")),
    lc_body(lc_rule(status="")),
    lc_body(lc_rule(filter="")),                                        # no Filter, no Prefix
    lc_body(lc_rule(filter="<Filter/><Prefix>a</Prefix>")),             # both
    lc_body(lc_rule(filter="<Filter><Prefix>a</Prefix>"
                           "<ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></Filter>")),
    lc_body(lc_rule(filter="<Filter><Prefix>a</Prefix><And><Prefix>b</Prefix>"
                           "<Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>")),
    lc_body(lc_rule(filter="<Filter><And><Prefix>a</Prefix></And></Filter>")),
    lc_body(lc_rule(filter="<Filter><Tag><Value>v</Value></Tag></Filter>")),
    lc_body(lc_rule(actions="<Expiration/>")),
    lc_body(lc_rule(actions="<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true"
                            "</ExpiredObjectDeleteMarker></Expiration>")),
    lc_body(lc_rule(actions="<Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date>"
                            "</Expiration>")),
    lc_body(lc_rule(actions="<Expiration><Days>one</Days></Expiration>")),
    lc_body(lc_rule(actions="<Expiration><Date>Fri, 01 Jan 2016 00:00:00 GMT</Date>"
                            "</Expiration>")),
    lc_body(lc_rule(actions="<Expiration><ExpiredObjectDeleteMarker>yes"
                            "</ExpiredObjectDeleteMarker></Expiration>")),
    lc_body(lc_rule(actions="<NoncurrentVersionExpiration/>")),
    lc_body(lc_rule(actions="<NoncurrentVersionExpiration><NewerNoncurrentVersions>2"
                            "</NewerNoncurrentVersions></NoncurrentVersionExpiration>")),
    lc_body(lc_rule(actions="<AbortIncompleteMultipartUpload/>")),
    lc_body(lc_rule() + "<Expiration><Days>2</Days></Expiration>"),     # action twice
    lc_body(lc_rule() + "<Unknown/>"),
])
def test_lifecycle_malformed(body):
    assert isinstance(code_of(lifecycle.parse_lifecycle, body), MalformedXML)


@pytest.mark.parametrize("actions, message", [
    ("<Expiration><Days>0</Days></Expiration>",
     "'Days' for Expiration action must be a positive integer"),
    ("<Expiration><Days>-3</Days></Expiration>",
     "'Days' for Expiration action must be a positive integer"),
    ("<Expiration><Date>2030-01-01T12:00:00Z</Date></Expiration>",
     "'Date' must be at midnight GMT"),
    ("<Expiration><Date>2030-01-01T00:00:00+02:00</Date></Expiration>",
     "'Date' must be at midnight GMT"),
    ("<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
     "</NoncurrentVersionExpiration>",
     "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer"),
    ("<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation>"
     "</AbortIncompleteMultipartUpload>",
     "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive "
     "integer"),
    ("<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>",
     lifecycle.TRANSITION_MESSAGE.format(action="Transition")),
    ("<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
     "<StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>",
     lifecycle.TRANSITION_MESSAGE.format(action="NoncurrentVersionTransition")),
])
def test_lifecycle_invalid_argument(actions, message):
    error = code_of(lifecycle.parse_lifecycle, lc_body(lc_rule(actions=actions)))
    assert (error.code, error.status, error.message) == ("InvalidArgument", 400, message)


def test_lifecycle_dates_accepted():
    for text in ("2030-01-01T00:00:00Z", "2030-01-01T00:00:00.000Z", "2030-01-01",
                 "2030-01-01T02:00:00+02:00"):
        rule = one_rule(actions=f"<Expiration><Date>{text}</Date></Expiration>")
        assert rule["Expiration"]["Date"] == "2030-01-01T00:00:00.000Z"


def test_lifecycle_ids():
    error = code_of(lifecycle.parse_lifecycle, lc_body(lc_rule(rule_id="i" * 256)))
    assert (error.code, error.message) == ("InvalidArgument",
                                           "ID length should not exceed allowed limit of 255")
    assert one_rule(rule_id="i" * 255)["ID"] == "i" * 255
    error = code_of(lifecycle.parse_lifecycle, lc_body(lc_rule(), lc_rule()))
    assert (error.code, error.message) == (
        "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")


def test_lifecycle_rule_count():
    many = [lc_rule(rule_id=f"r{i}") for i in range(1000)]
    assert len(lifecycle.parse_lifecycle(lc_body(*many))) == 1000
    error = code_of(lifecycle.parse_lifecycle, lc_body(*many, lc_rule(rule_id="extra")))
    assert (error.code, error.status) == ("InvalidRequest", 400)
    assert "1000" in error.message


TAG_FILTER = "<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
SIZE_FILTER = "<Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>"
AND_TAGS = ("<Filter><And><Prefix/><Tag><Key>k</Key><Value>v</Value></Tag></And>"
            "</Filter>")
ABORT = ("<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
         "</AbortIncompleteMultipartUpload>")
EODM = "<Expiration><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker></Expiration>"


@pytest.mark.parametrize("rules, message", [
    ([lc_rule(actions="")], "At least one action needs to be specified in a rule"),
    ([lc_rule(filter=TAG_FILTER, actions=ABORT)],
     "AbortIncompleteMultipartUpload cannot be specified with Tags."),
    ([lc_rule(filter=AND_TAGS, actions=ABORT)],
     "AbortIncompleteMultipartUpload cannot be specified with Tags."),
    ([lc_rule(filter=SIZE_FILTER, actions=ABORT)],
     "AbortIncompleteMultipartUpload cannot be specified with Object Size."),
    ([lc_rule(filter=SIZE_FILTER, actions=EODM)],
     "ExpiredObjectDeleteMarker cannot be specified with Object Size."),
    ([lc_rule(filter=TAG_FILTER, actions=EODM)],
     "ExpiredObjectDeleteMarker cannot be specified with Tags."),
    ([lc_rule(filter="<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag>"
                     "<Tag><Key>k</Key><Value>2</Value></Tag></And></Filter>")],
     "Duplicate Tag Keys are not allowed."),
    ([lc_rule(filter="<Filter><ObjectSizeLessThan>0</ObjectSizeLessThan></Filter>")],
     "'ObjectSizeLessThan' should be between 1 and 1099511627776000."),
    ([lc_rule(filter="<Filter><ObjectSizeGreaterThan>-1</ObjectSizeGreaterThan></Filter>")],
     "'ObjectSizeGreaterThan' should be between 0 and 1099511627776000."),
    ([lc_rule(filter="<Filter><And><ObjectSizeGreaterThan>9</ObjectSizeGreaterThan>"
                     "<ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter>")],
     "'ObjectSizeLessThan' has to be a value greater than 'ObjectSizeGreaterThan'."),
    (["<ID>a</ID><Prefix>x</Prefix><Status>Enabled</Status>"
      "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
      "<NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>"],
     "NewerNoncurrentVersions element can only be used in Lifecycle V2."),
    (["<ID>a</ID><Prefix>x</Prefix><Status>Enabled</Status>"
      "<Expiration><Days>1</Days></Expiration>", lc_rule(rule_id="b")],
     "Filter element can only be used in Lifecycle V2."),
    ([lc_rule(rule_id="b"), "<ID>a</ID><Prefix>x</Prefix><Status>Enabled</Status>"
      "<Expiration><Days>1</Days></Expiration>"],
     "Base level prefix cannot be used in Lifecycle V2, prefixes are only supported in the "
     "Filter."),
    (["<ID>a</ID><Prefix></Prefix><Status>Enabled</Status><Expiration><Days>1</Days>"
      "</Expiration>", "<ID>b</ID><Prefix>a</Prefix><Status>Enabled</Status>"
      "<Expiration><Days>9</Days></Expiration>"],
     "Found overlapping prefixes '' and 'a' for same action type 'Expiration'"),
])
def test_lifecycle_invalid_request(rules, message):
    error = code_of(lifecycle.parse_lifecycle, lc_body(*rules))
    assert (error.code, error.status, error.message) == ("InvalidRequest", 400, message)


def test_lifecycle_and_with_empty_prefix_and_one_tag_is_accepted():
    rule = one_rule(filter=AND_TAGS)
    assert rule["Filter"] == {"And": {"Prefix": "", "Tags": [{"Key": "k", "Value": "v"}]}}


# --- evaluation ---

def test_days_round_up_to_the_next_midnight():
    rule = one_rule(actions="<Expiration><Days>3</Days></Expiration>")
    created = when("2014-01-15T10:30:00")
    assert expiry.expiry_date(rule, created) == when("2014-01-19T00:00:00")
    kwargs = dict(key="k", size=1, tags={}, last_modified=created)
    assert not expiry.expiry_due(rule, now=when("2014-01-18T23:59:59"), **kwargs)
    assert expiry.expiry_due(rule, now=when("2014-01-19T00:00:00"), **kwargs)
    # just before and just after midnight: the day boundary decides
    one_day = one_rule(actions="<Expiration><Days>1</Days></Expiration>")
    assert expiry.expiry_date(one_day, when("2014-01-02T23:59:59")) == \
        when("2014-01-04T00:00:00")
    assert expiry.expiry_date(one_day, when("2014-01-03T00:05:00")) == \
        when("2014-01-05T00:00:00")
    # naive and non-UTC inputs are handled as the instants they are
    assert expiry.expiry_date(one_day, dt.datetime(2014, 1, 2, 0, 5)) == \
        when("2014-01-04T00:00:00")
    paris = dt.timezone(dt.timedelta(hours=1))
    assert expiry.expiry_date(one_day, dt.datetime(2014, 1, 3, 0, 30, tzinfo=paris)) == \
        when("2014-01-04T00:00:00")


def test_date_rules_apply_from_the_date_on():
    rule = one_rule(actions="<Expiration><Date>2030-06-01T00:00:00Z</Date></Expiration>")
    kwargs = dict(key="k", size=1, tags={}, last_modified=when("2020-01-01T00:00:00"))
    assert not expiry.expiry_due(rule, now=when("2030-05-31T23:59:59"), **kwargs)
    assert expiry.expiry_due(rule, now=when("2030-06-01T00:00:00"), **kwargs)
    assert expiry.expiry_due(rule, now=when("2040-01-01T00:00:00"), **kwargs)


def test_disabled_rules_and_rules_without_expiration_do_nothing():
    kwargs = dict(key="k", size=1, tags={}, last_modified=when("2014-01-01T00:00:00"),
                  now=when("2099-01-01T00:00:00"))
    assert not expiry.expiry_due(one_rule(status="Disabled"), **kwargs)
    assert not expiry.rule_matches(one_rule(status="Disabled"), "k", 1, {})
    abort_only = one_rule(actions=ABORT)
    assert not expiry.expiry_due(abort_only, **kwargs)
    assert expiry.expiration_header([abort_only, one_rule(status="Disabled")], "k", 1, {},
                                    when("2014-01-01T00:00:00")) is None


def test_rule_matches_prefix_tags_and_sizes():
    prefix = one_rule(filter="<Filter><Prefix>logs/</Prefix></Filter>")
    assert expiry.rule_matches(prefix, "logs/a", 1, {})
    assert not expiry.rule_matches(prefix, "log/a", 1, {})
    legacy = lifecycle.parse_lifecycle(lc_body(
        "<ID>l</ID><Prefix>tmp/</Prefix><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration>"))[0]
    assert expiry.rule_matches(legacy, "tmp/x", None, {})
    assert not expiry.rule_matches(legacy, "x/tmp/", None, {})

    tag = one_rule(filter=TAG_FILTER)
    assert expiry.rule_matches(tag, "any", 1, {"k": "v", "other": "x"})
    assert not expiry.rule_matches(tag, "any", 1, {"k": "V"})
    assert not expiry.rule_matches(tag, "any", 1, {})

    both = one_rule(filter="<Filter><And><Prefix>p/</Prefix>"
                           "<Tag><Key>a</Key><Value>1</Value></Tag>"
                           "<Tag><Key>b</Key><Value>2</Value></Tag>"
                           "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
                           "<ObjectSizeLessThan>20</ObjectSizeLessThan></And></Filter>")
    good = {"a": "1", "b": "2"}
    assert expiry.rule_matches(both, "p/x", 15, good)
    assert not expiry.rule_matches(both, "p/x", 15, {"a": "1", "b": "3"})
    assert not expiry.rule_matches(both, "q/x", 15, good)
    assert not expiry.rule_matches(both, "p/x", 10, good)      # bounds are exclusive
    assert not expiry.rule_matches(both, "p/x", 20, good)
    assert expiry.rule_matches(both, "p/x", 11, good)
    assert not expiry.rule_matches(both, "p/x", None, good)

    small = one_rule(filter="<Filter><ObjectSizeLessThan>1</ObjectSizeLessThan></Filter>")
    assert expiry.rule_matches(small, "k", 0, {})
    assert not expiry.rule_matches(small, "k", 1, {})
    assert expiry.rule_matches(one_rule(), "anything", None, {})


def test_noncurrent_expiration():
    rule = one_rule(actions="<NoncurrentVersionExpiration><NoncurrentDays>5</NoncurrentDays>"
                            "</NoncurrentVersionExpiration>")
    kwargs = dict(key="photo.gif", size=1, tags={}, newer_noncurrent_count=0,
                  became_noncurrent=when("2014-01-02T11:30:00"))
    assert not expiry.noncurrent_due(rule, now=when("2014-01-07T23:59:59"), **kwargs)
    assert expiry.noncurrent_due(rule, now=when("2014-01-08T00:00:00"), **kwargs)
    assert not expiry.noncurrent_due(one_rule(), now=when("2099-01-01T00:00:00"), **kwargs)


def test_newer_noncurrent_versions_keeps_the_newest():
    rule = one_rule(actions="<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                            "<NewerNoncurrentVersions>5</NewerNoncurrentVersions>"
                            "</NoncurrentVersionExpiration>")
    now = when("2014-02-01T00:00:00")
    due = [expiry.noncurrent_due(rule, key="k", size=1, tags={}, now=now,
                                 became_noncurrent=when("2014-01-01T00:00:00"),
                                 newer_noncurrent_count=count) for count in range(9)]
    # 9 noncurrent versions: the 5 newest stay, 4 go
    assert due == [False] * 5 + [True] * 4
    assert not expiry.noncurrent_due(rule, key="k", size=1, tags={}, now=now,
                                     became_noncurrent=when("2014-01-31T12:00:00"),
                                     newer_noncurrent_count=8)


def test_abort_incomplete_multipart_upload():
    rule = one_rule(filter="<Filter><Prefix>up/</Prefix></Filter>",
                    actions=ABORT.replace(">1<", ">7<"))
    started = when("2025-08-11T15:00:00")
    assert not expiry.abort_due(rule, key="up/a", initiated=started,
                                now=when("2025-08-18T23:59:59"))
    assert expiry.abort_due(rule, key="up/a", initiated=started,
                            now=when("2025-08-19T00:00:00"))
    assert not expiry.abort_due(rule, key="down/a", initiated=started,
                                now=when("2030-01-01T00:00:00"))
    assert expiry.abort_headers([rule], "up/a", started) == {
        "x-amz-abort-date": "Tue, 19 Aug 2025 00:00:00 GMT", "x-amz-abort-rule-id": "r"}
    assert expiry.abort_headers([rule], "down/a", started) == {}


def test_delete_marker_cleanup():
    marker_rule = one_rule(actions="<Expiration><ExpiredObjectDeleteMarker>true"
                                   "</ExpiredObjectDeleteMarker></Expiration>")
    kwargs = dict(key="k", last_modified=when("2020-01-01T00:00:00"),
                  now=when("2020-01-01T00:00:01"))
    assert expiry.delete_marker_due(marker_rule, noncurrent_versions=0, **kwargs)
    assert not expiry.delete_marker_due(marker_rule, noncurrent_versions=1, **kwargs)
    days = one_rule(actions="<Expiration><Days>2</Days></Expiration>")
    assert not expiry.delete_marker_due(days, noncurrent_versions=0, **kwargs)
    assert expiry.delete_marker_due(days, noncurrent_versions=0, key="k",
                                    last_modified=when("2020-01-01T00:00:00"),
                                    now=when("2020-01-04T00:00:00"))
    # an ExpiredObjectDeleteMarker rule does not expire current objects
    assert expiry.expiration_header([marker_rule], "k", 1, {},
                                    when("2020-01-01T00:00:00")) is None


def test_expiration_header():
    rules = lifecycle.parse_lifecycle(lc_body(
        lc_rule(rule_id="Delete after 14 days",
                actions="<Expiration><Days>14</Days></Expiration>"),
        lc_rule(rule_id="picture-deletion-rule", filter="<Filter><Prefix>pics/</Prefix></Filter>",
                actions="<Expiration><Date>2012-12-23T00:00:00Z</Date></Expiration>"),
        lc_rule(rule_id="tagged", filter=TAG_FILTER,
                actions="<Expiration><Days>1</Days></Expiration>"),
    ))
    written = when("2012-12-01T08:00:00")
    assert expiry.expiration_header(rules, "pics/a.jpg", 5, {}, written) == \
        'expiry-date="Sun, 16 Dec 2012 00:00:00 GMT", rule-id="Delete after 14 days"'
    assert expiry.expiration_header(rules, "pics/a.jpg", 5, {}, when("2012-12-20T00:00:00")) \
        == 'expiry-date="Sun, 23 Dec 2012 00:00:00 GMT", rule-id="picture-deletion-rule"'
    assert expiry.expiration_header(rules, "x", 5, {"k": "v"}, written) == \
        'expiry-date="Mon, 03 Dec 2012 00:00:00 GMT", rule-id="tagged"'
    tie = lifecycle.parse_lifecycle(lc_body(lc_rule(rule_id="first"), lc_rule(rule_id="second")))
    assert 'rule-id="first"' in expiry.expiration_header(tie, "k", 1, {}, written)
    odd = [dict(tie[0], ID='say "hi" ü')]
    assert expiry.expiration_header(odd, "k", 1, {}, written).endswith(
        'rule-id="say %22hi%22 %C3%BC"')


# === POST policy =========================================================================

ALICE = Principal(account_id="123456789012", account_name="acme", user_id="AIDA1",
                  user_name="alice", access_key_id="AKIAALICE")
ALICE_SECRET = "alice-secret-key"
EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE = Principal("111122223333", "example", "AIDA2", "example", EXAMPLE_KEY)


def lookup(access_key_id: str):
    return {"AKIAALICE": (ALICE, ALICE_SECRET),
            EXAMPLE_KEY: (EXAMPLE, EXAMPLE_SECRET)}.get(access_key_id)


def presigned(bucket="bkt", key="uploads/${filename}", fields=None, conditions=None,
              signature_version="s3v4", expires=3600, secret=ALICE_SECRET):
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIAALICE",
                          aws_secret_access_key=secret, endpoint_url="http://127.0.0.1:1",
                          config=Config(signature_version=signature_version))
    return client.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions,
                                          ExpiresIn=expires)["fields"]


def now():
    return dt.datetime.now(UTC)


def sign_v4(policy_json: str, secret=ALICE_SECRET, key_id="AKIAALICE",
            date="20300101T000000Z", region="us-east-1") -> dict:
    policy = base64.b64encode(policy_json.encode()).decode()
    from eucalite.sigv4 import v4_signing_key
    signing_key = v4_signing_key(secret, date[:8], region, "s3")
    return {"policy": policy, "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": f"{key_id}/{date[:8]}/{region}/s3/aws4_request",
            "x-amz-date": date,
            "x-amz-signature": hmac.new(signing_key, policy.encode(),
                                        hashlib.sha256).hexdigest()}


def policy_fields(conditions, expiration="2099-01-01T00:00:00Z", **form) -> dict:
    """A V4-signed form: *form* fields plus a policy of *conditions* and the auth fields."""
    auth_conditions = [{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                       {"x-amz-credential": "AKIAALICE/20300101/us-east-1/s3/aws4_request"},
                       {"x-amz-date": "20300101T000000Z"}]
    auth = sign_v4(json.dumps({"expiration": expiration,
                               "conditions": conditions + auth_conditions}))
    return {**form, **auth}


def test_botocore_v4_post_verifies():
    fields = presigned(fields={"acl": "public-read"},
                       conditions=[{"acl": "public-read"}, ["content-length-range", 1, 100]])
    fields["key"] = postpolicy.substitute_filename(fields["key"], "C:\\tmp\\cat.jpg")
    fields["file"] = "ignored"
    result = postpolicy.verify_post(fields, "bkt", lookup, now(), file_size=50,
                                    region="us-east-1")
    assert result.principal == ALICE
    assert result.key == "uploads/cat.jpg"
    assert result.scheme == "v4"
    assert result.length_range == (1, 100) and result.max_length == 100
    assert result.expiration > now()
    assert {c.operation for c in result.conditions} == {"eq", "starts-with",
                                                        "content-length-range"}


def test_botocore_v2_post_verifies():
    fields = presigned(key="exact.txt", signature_version="s3")
    assert "signature" in fields and "AWSAccessKeyId" in fields
    result = postpolicy.verify_post(fields, "bkt", lookup, now())
    assert (result.principal, result.key, result.scheme) == (ALICE, "exact.txt", "v2")


def test_field_names_are_case_insensitive():
    fields = presigned(key="k")
    renamed = {name.upper() if name != "key" else "Key": value for name, value in fields.items()}
    renamed["Policy"] = renamed.pop("POLICY")
    assert postpolicy.verify_post(renamed, "bkt", lookup, now()).principal == ALICE
    v2 = presigned(key="k", signature_version="s3")
    v2["awsaccesskeyid"] = v2.pop("AWSAccessKeyId")
    v2["Signature"] = v2.pop("signature")
    assert postpolicy.verify_post(v2, "bkt", lookup, now()).scheme == "v2"


def test_aws_documented_v4_example():
    policy_json = (
        '{ "expiration": "2015-12-30T12:00:00.000Z",\r\n'
        '  "conditions": [\r\n'
        '    {"bucket": "sigv4examplebucket"},\r\n'
        '    ["starts-with", "$key", "user/user1/"],\r\n'
        '    {"acl": "public-read"},\r\n'
        '    {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/'
        'successful_upload.html"},\r\n'
        '    ["starts-with", "$Content-Type", "image/"],\r\n'
        '    {"x-amz-meta-uuid": "14365123651274"},\r\n'
        '    {"x-amz-server-side-encryption": "AES256"},\r\n'
        '    ["starts-with", "$x-amz-meta-tag", ""],\r\n'
        '\r\n'
        '    {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},'
        '\r\n'
        '    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},\r\n'
        '    {"x-amz-date": "20151229T000000Z" }\r\n'
        '  ]\r\n'
        '}')
    fields = {
        "key": postpolicy.substitute_filename("user/user1/${filename}", "photo.jpg"),
        "acl": "public-read",
        "success_action_redirect":
            "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
        "Content-Type": "image/jpeg", "x-amz-meta-uuid": "14365123651274",
        "x-amz-server-side-encryption": "AES256",
        "X-Amz-Credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": "20151229T000000Z",
        "x-amz-meta-tag": "",
        "Policy": base64.b64encode(policy_json.encode()).decode(),
        "X-Amz-Signature": "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e",
    }
    assert len(fields["Policy"]) == 864
    result = postpolicy.verify_post(fields, "sigv4examplebucket", lookup,
                                    when("2015-12-29T01:00:00"))
    assert result.principal == EXAMPLE and result.key == "user/user1/photo.jpg"
    expired = code_of(postpolicy.verify_post, fields, "sigv4examplebucket", lookup,
                      when("2015-12-30T12:00:01"))
    assert (expired.code, expired.status, expired.message) == (
        "AccessDenied", 403, "Invalid according to Policy: Policy expired.")


def test_wrong_signature_and_unknown_key():
    fields = presigned(key="k")
    fields["x-amz-signature"] = "0" * 64
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now())
    assert isinstance(error, AuthError)
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.extra["StringToSign"] == fields["policy"]
    assert error.extra["SignatureProvided"] == "0" * 64
    assert bytes.fromhex(error.extra["StringToSignBytes"].replace(" ", "")).decode() == \
        fields["policy"]

    tampered = presigned(key="k")
    tampered["policy"] = tampered["policy"][:-2]
    assert code_of(postpolicy.verify_post, tampered, "bkt", lookup, now()).code == \
        "SignatureDoesNotMatch"
    wrong_secret = presigned(key="k", secret="not-the-secret")
    assert code_of(postpolicy.verify_post, wrong_secret, "bkt", lookup, now()).code == \
        "SignatureDoesNotMatch"
    v2 = presigned(key="k", signature_version="s3", secret="nope")
    assert code_of(postpolicy.verify_post, v2, "bkt", lookup, now()).code == \
        "SignatureDoesNotMatch"

    unknown = presigned(key="k")
    unknown["x-amz-credential"] = unknown["x-amz-credential"].replace("AKIAALICE", "AKIANOBODY")
    error = code_of(postpolicy.verify_post, unknown, "bkt", lookup, now())
    assert isinstance(error, AuthError)
    assert (error.code, error.status) == ("InvalidAccessKeyId", 403)
    assert error.extra == {"AWSAccessKeyId": "AKIANOBODY"}
    v2 = presigned(key="k", signature_version="s3")
    v2["AWSAccessKeyId"] = "foo"
    assert code_of(postpolicy.verify_post, v2, "bkt", lookup, now()).code == \
        "InvalidAccessKeyId"


@pytest.mark.parametrize("drop, named", [
    ("key", "key"),
    ("x-amz-signature", "X-Amz-Signature"),
    ("x-amz-algorithm", "X-Amz-Algorithm"),
    ("x-amz-date", "X-Amz-Date"),
    ("policy", "Policy"),
])
def test_missing_fields_v4(drop, named):
    fields = presigned(key="k")
    del fields[drop]
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now())
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message == (f"Bucket POST must contain a field named '{named}'.  If it is "
                             "specified, please check the order of the fields.")
    assert error.extra == {"ArgumentName": named, "ArgumentValue": ""}


def test_missing_fields_v2():
    for drop, named in (("signature", "Signature"), ("AWSAccessKeyId", "AWSAccessKeyId"),
                        ("policy", "Policy")):
        fields = presigned(key="k", signature_version="s3")
        del fields[drop]
        assert code_of(postpolicy.verify_post, fields, "bkt", lookup, now()).extra[
            "ArgumentName"] == named


def test_credential_and_date_faults():
    def with_field(name, value):
        fields = presigned(key="k")
        fields[name] = value
        return code_of(postpolicy.verify_post, fields, "bkt", lookup, now(), region="us-east-1")

    error = with_field("x-amz-credential", "AKIAALICE/20300101/us-west-1/s3/aws4_request")
    assert (error.code, error.message) == ("InvalidArgument",
                                           "the region 'us-west-1' is wrong; expecting "
                                           "'us-east-1'")
    assert error.extra["Region"] == "us-east-1"
    assert with_field("x-amz-credential", "AKIAALICE/20300101").message.startswith(
        "the Credential is mal-formed")
    assert with_field("x-amz-credential", "/20300101/us-east-1/s3/aws4_request").message == \
        "a non-empty Access Key (AKID) must be provided in the credential."
    assert with_field("x-amz-credential", "AKIAALICE/2030-1-1/us-east-1/s3/aws4_request"
                      ).message.startswith("incorrect date format")
    assert with_field("x-amz-credential", "AKIAALICE/20300101/us-east-1/ec2/aws4_request"
                      ).message.startswith("incorrect service")
    assert with_field("x-amz-date", "2030-01-01").extra == {
        "ArgumentName": "X-Amz-Date", "ArgumentValue": "2030-01-01"}
    assert with_field("x-amz-algorithm", "AWS4-HMAC-SHA1").extra["ArgumentName"] == \
        "X-Amz-Algorithm"


def test_anonymous_post():
    result = postpolicy.verify_post({"key": "public/${filename}", "acl": "public-read",
                                     "Content-Type": "text/plain", "file": "x"},
                                    "bkt", lookup, now())
    assert result.principal is None and result.scheme is None
    assert result.key == "public/${filename}" and result.length_range is None


def test_expired_policy():
    fields = policy_fields([{"key": "k"}, {"bucket": "bkt"}], key="k",
                           expiration="2020-01-01T00:00:00Z")
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now())
    assert (error.code, error.status, error.message) == (
        "AccessDenied", 403, "Invalid according to Policy: Policy expired.")
    botocore_fields = presigned(key="k", expires=60)
    assert code_of(postpolicy.verify_post, botocore_fields, "bkt", lookup,
                   now() + dt.timedelta(minutes=2)).message.endswith("Policy expired.")


@pytest.mark.parametrize("conditions, form, failed", [
    ([{"bucket": "other"}], {}, '["eq", "$bucket", "other"]'),
    ([["eq", "$key", "x"]], {}, '["eq", "$key", "x"]'),
    ([["starts-with", "$key", "z"]], {}, '["starts-with", "$key", "z"]'),
    ([{"acl": "public-read"}], {"acl": "private"}, '["eq", "$acl", "public-read"]'),
    ([{"acl": "public-read"}], {}, '["eq", "$acl", "public-read"]'),        # field absent
    ([["starts-with", "$x-amz-meta-a", ""]], {}, '["starts-with", "$x-amz-meta-a", ""]'),
    ([["eq", "key", "k"]], {}, '["eq", "key", "k"]'),                       # no $
    ([{"success_action_redirect": "http://a.test/"}],
     {"success_action_redirect": "HTTP://a.test/"},
     '["eq", "$success_action_redirect", "http://a.test/"]'),             # values: case
    ([["starts-with", "$Content-Type", "image/"]], {"Content-Type": "image/jpg,text/plain"},
     '["starts-with", "$Content-Type", "image/"]'),
    ([["content-length-range", "test", "10"]], {}, '["content-length-range", "test", "10"]'),
])
def test_failed_conditions(conditions, form, failed):
    fields = policy_fields([{"key": "k"}] + conditions, key="k", **form)
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now())
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert error.message == f"Invalid according to Policy: Policy Condition failed: {failed}"


def test_passing_conditions():
    conditions = [{"bucket": "bkt"}, ["starts-with", "$key", ""], {"AcL": "public-read"},
                  ["StArTs-WiTh", "$content-type", "image/"], ["eq", "$x-amz-meta-Test-2", "v"],
                  ["starts-with", "$x-amz-meta-tag", ""], ["starts-with", "$tagging", "<"],
                  {"success_action_status": "201"}]
    fields = policy_fields(conditions, key="any/key", acl="public-read",
                           **{"Content-Type": "image/jpg,image/png", "x-amz-meta-TEST-2": "v",
                              "x-amz-meta-tag": "", "tagging": "<Tagging/>",
                              "success_action_status": "201", "x-ignore-me": "1",
                              "bucket": "bkt", "file": "data"})
    result = postpolicy.verify_post(fields, "bkt", lookup, now())
    assert result.fields["content-type"] == "image/jpg,image/png"


def test_extra_input_fields():
    fields = policy_fields([{"key": "k"}], key="k", Filename="cat.jpg")
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now())
    assert (error.code, error.status, error.message) == (
        "AccessDenied", 403, "Invalid according to Policy: Extra input fields: Filename")
    # botocore: a field passed without a matching condition is extra
    fields = presigned(key="k", fields={"acl": "public-read"})
    assert code_of(postpolicy.verify_post, fields, "bkt", lookup, now()).message.endswith(
        "Extra input fields: acl")
    # content-length-range names no field
    fields = policy_fields([{"key": "k"}, ["content-length-range", 0, 10]], key="k",
                           **{"content-length-range": "5"})
    assert code_of(postpolicy.verify_post, fields, "bkt", lookup, now()).message.endswith(
        "Extra input fields: content-length-range")


def test_content_length_range():
    fields = policy_fields([{"key": "k"}, ["content-length-range", 5, 10]], key="k")
    for size in (5, 7, 10):
        assert postpolicy.verify_post(fields, "bkt", lookup, now(), file_size=size)
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now(), file_size=12)
    assert (error.code, error.status, error.message) == (
        "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size")
    assert error.extra == {"ProposedSize": "12", "MaxSizeAllowed": "10"}
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now(), file_size=1)
    assert (error.code, error.message) == (
        "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
    assert error.extra == {"ProposedSize": "1", "MinSizeAllowed": "5"}
    # string bounds work; several ranges intersect; the adapter can check while streaming
    fields = policy_fields([{"key": "k"}, ["content-length-range", "5", "10"],
                            ["content-length-range", 0, 8]], key="k")
    result = postpolicy.verify_post(fields, "bkt", lookup, now())
    assert result.length_range == (5, 8)
    with pytest.raises(AwsError):
        result.check_length(9)
    result.check_length(8)


def encoded(document: str) -> str:
    return base64.b64encode(document.encode()).decode()


@pytest.mark.parametrize("policy, message", [
    ("!!!not base64", "Invalid Policy: invalid Base64 encoding."),
    (encoded("{not json"), "Invalid Policy: Invalid JSON."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range",'
             ' 0, 512.0]]}'), "Invalid Policy: Invalid JSON."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [{"a": null}]}'),
     "Invalid Policy: Invalid JSON."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [{"a": 5}]}'),
     "Invalid Policy: Invalid Simple-Condition: value must be a string."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [{}]}'),
     "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one "
     "property specified."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [{"a": "1", "b": "2"}]}'),
     "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have exactly one "
     "property specified."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [[]]}'),
     "Invalid Policy: Invalid Condition: missing operation identifier."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [["ends-with", "$k", ""]]}'),
     "Invalid Policy: Invalid Condition: unknown operation 'ends-with'."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range",'
             ' 0]]}'), "Invalid Policy: Invalid content-length-range: wrong number of arguments."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": ["key"]}'),
     "Invalid Policy: Invalid condition test: must be a List or Object."),
    (encoded('{"expiration": "2099-01-01T00:00:00Z"}'),
     "Invalid Policy: Policy missing conditions."),
    (encoded('{"conditions": []}'), "Invalid Policy: Policy missing expiration."),
    (encoded('{"EXPIRATION": "2099-01-01T00:00:00Z", "conditions": []}'),
     "Invalid Policy: Unexpected: 'expiration'"),
    (encoded('{"expiration": "2099-01-01T00:00:00Z", "conditions": {}}'),
     "Invalid Policy: Invalid 'conditions' value: must be a List."),
    (encoded('{"expiration": "2099-01-01 00:00:00", "conditions": []}'),
     "Invalid Policy: Invalid 'expiration' value: '2099-01-01 00:00:00'"),
    (encoded('{"expiration": "2099-01-01T00:00:00+02:00", "conditions": []}'),
     "Invalid Policy: Invalid 'expiration' value: '2099-01-01T00:00:00+02:00'"),
])
def test_invalid_policy_document(policy, message):
    fields = {"key": "k", "policy": policy}          # unsigned: decoding is the same
    error = code_of(postpolicy.verify_post, fields, "bkt", lookup, now())
    assert (error.code, error.status, error.message) == ("InvalidPolicyDocument", 400, message)


def test_negative_length_bound_is_an_invalid_policy():
    fields = policy_fields([{"key": "k"}, ["content-length-range", -1, 0]], key="k")
    assert code_of(postpolicy.verify_post, fields, "bkt", lookup, now()).code == \
        "InvalidPolicyDocument"


def test_policy_with_line_breaks_in_base64_and_milliseconds():
    document = json.dumps({"expiration": "2099-01-01T00:00:00.000Z",
                           "conditions": [{"key": "k"}]})
    wrapped = base64.encodebytes(document.encode()).decode()     # 76-column lines
    assert "\n" in wrapped
    result = postpolicy.verify_post({"key": "k", "policy": wrapped}, "bkt", lookup, now())
    assert result.expiration == when("2099-01-01T00:00:00")


def test_substitute_filename():
    assert postpolicy.substitute_filename("u/${filename}", "a.txt") == "u/a.txt"
    assert postpolicy.substitute_filename("u/${filename}", "C:\\Program Files\\d\\f.txt") == \
        "u/f.txt"
    assert postpolicy.substitute_filename("u/${filename}", "/home/me/x.png") == "u/x.png"
    assert postpolicy.substitute_filename("u/${filename}", "") == "u/"
    assert postpolicy.substitute_filename("u/${filename}", None) == "u/${filename}"
    assert postpolicy.substitute_filename("plain", "a") == "plain"
