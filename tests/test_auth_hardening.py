"""Authentication on hostile input: every malformed signature, date, expiry or credential is
the service's own authentication error (4xx, in its XML envelope), never a 500.

The sweep at the top calls :func:`eucalite.auth.authenticate` directly with each hostile value
in each field of each signing scheme; the HTTP cases below check the exact AWS code a client
sees on EC2, IAM and S3.
"""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import requests

from eucalite import auth, sigv4
from eucalite.accounts import Principal
from eucalite.errors import BAD_SIGNATURE, AuthError

from liveutil import start_live

NOW = dt.datetime(2026, 12, 5, 12, 0, 0, tzinfo=dt.timezone.utc)
AMZ_DATE = NOW.strftime("%Y%m%dT%H%M%SZ")
DAY = AMZ_DATE[:8]
HTTP_DATE = NOW.strftime("%a, %d %b %Y %H:%M:%S GMT")

#: Values that have each broken a parser somewhere: non-ASCII, digits Python's int() takes
#: but AWS does not, numbers past any date, thousands of digits, control characters.
HOSTILE = [
    "é", "\x00", "\x01", "²", "٣", "١٠", "1_0", " 1", "+1", "-1", "", "%", "é/é/é/é/é",
    "99999999999999999999", "-99999999999999999999", "9" * 5000, "-" + "9" * 5000,
    "99991231T235959Z", "00010101T000000Z", "٢٠٢٦1205T120000Z", "20261305T120000Z",
    "Mon, 01 Jan 99999999999999999999 00:00:00 GMT", "Mon, 31 Dec 9999 23:59:59 -2359",
    "Mon, 01 Jan 2000 00:00:00 +99999999999999999999", "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00", "2026-12-05T12:00:00+99:00",
]

PRINCIPAL = Principal(account_id="000000000001", account_name="acct", user_id="u",
                      user_name="admin", access_key_id="AKIDEXAMPLE")


def _lookup(key_id: str):
    return (PRINCIPAL, "secret") if key_id == "AKIDEXAMPLE" else None


def _views(value: str):
    """(service, view, body) for each signing scheme with *value* in one of its fields."""
    credential = f"AKIDEXAMPLE/{DAY}/eucalyptus/SERVICE/aws4_request"
    for service in ("ec2", "s3"):
        cred = credential.replace("SERVICE", service)
        # V4 header: each field of Authorization, and the date headers.
        fields = {"Credential": cred, "SignedHeaders": "host;x-amz-date", "Signature": "ab"}
        for name in fields:
            header = ", ".join(f"{k}={value if k == name else v}" for k, v in fields.items())
            yield service, {"authorization": "AWS4-HMAC-SHA256 " + header,
                            "x-amz-date": AMZ_DATE, "host": "h",
                            "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, ""
        for part in range(5):
            parts = cred.split("/")
            parts[part] = value
            yield service, {"authorization": f"AWS4-HMAC-SHA256 Credential={'/'.join(parts)}, "
                            "SignedHeaders=host, Signature=ab", "x-amz-date": AMZ_DATE,
                            "host": "h", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, ""
        yield service, {"authorization": f"AWS4-HMAC-SHA256 Credential={cred}, "
                        "SignedHeaders=host, Signature=ab", "x-amz-date": value, "host": "h",
                        "x-amz-content-sha256": value}, ""
        yield service, {"authorization": f"AWS4-HMAC-SHA256 Credential={cred}, "
                        "SignedHeaders=host, Signature=ab", "date": value, "host": "h"}, ""
        # V4 presigned: each query parameter.
        query = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": cred,
                 "X-Amz-Date": AMZ_DATE, "X-Amz-Expires": "60",
                 "X-Amz-SignedHeaders": "host", "X-Amz-Signature": "ab"}
        for name in query:
            yield service, {"host": "h"}, "&".join(
                f"{k}={quote(value if k == name else v, safe='')}" for k, v in query.items())
    # V2 query (EC2): each parameter.
    v2 = {"AWSAccessKeyId": "AKIDEXAMPLE", "SignatureVersion": "2",
          "SignatureMethod": "HmacSHA256", "Timestamp": "2026-12-05T12:00:00Z",
          "Signature": "ab"}
    for name in list(v2) + ["Expires"]:
        params = dict(v2)
        if name == "Expires":
            del params["Timestamp"]
        params[name] = value
        yield "ec2", {"host": "h"}, "&".join(f"{k}={quote(v, safe='')}"
                                              for k, v in params.items())
    # V2 S3 header and presigned.
    yield "s3", {"authorization": f"AWS AKIDEXAMPLE:{value}", "date": HTTP_DATE, "host": "h"}, ""
    yield "s3", {"authorization": f"AWS {value}:ab", "date": HTTP_DATE, "host": "h"}, ""
    yield "s3", {"authorization": "AWS AKIDEXAMPLE:ab", "date": value, "host": "h"}, ""
    yield "s3", {"authorization": "AWS AKIDEXAMPLE:ab", "x-amz-date": value, "host": "h"}, ""
    s3v2 = {"AWSAccessKeyId": "AKIDEXAMPLE", "Expires": "1900000000", "Signature": "ab"}
    for name in s3v2:
        yield "s3", {"host": "h"}, "&".join(
            f"{k}={quote(value if k == name else v, safe='')}" for k, v in s3v2.items())


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:24]))
def test_hostile_values_in_every_auth_field_are_auth_errors(value):
    """Whatever a client puts in any field a signature scheme reads, authenticate() answers
    with an AuthError (which every adapter renders as its service's 4xx), nothing else."""
    for service, headers, raw_query in _views(value):
        # WSGI hands over header values as latin-1 text; a UTF-8 client's é arrives as 'Ã©'.
        headers = {k: v.encode("utf-8", "surrogatepass").decode("latin-1")
                   for k, v in headers.items()}
        view = auth.RequestView("GET", "/", raw_query, headers, [])
        body = b"" if service != "s3" else None
        try:
            auth.authenticate(view, service, body=body, lookup=_lookup, now=NOW)
        except AuthError as error:
            error.for_service(service)
            assert 400 <= error.status < 500
        else:  # pragma: no cover - a hostile value never signs a request
            pytest.fail(f"{service} {headers} {raw_query[:80]} authenticated")


def test_each_signature_is_checked_with_the_claimed_keys_current_secret():
    """Signatures are checked with the secret of the key the request names, as it is now,
    whatever was verified just before with the same day, region and service (derived
    signing keys are remembered between requests): one user's secret never signs for
    another's key id, and a secret that changed no longer signs."""
    secrets = {"AKIDALICE": "alice-secret", "AKIDBOB": "bob-secret"}

    def lookup(key_id: str):
        if key_id not in secrets:
            return None
        return Principal(account_id="000000000001", account_name="acct", user_id=key_id,
                         user_name=key_id, access_key_id=key_id), secrets[key_id]

    def request(key_id: str, secret: str) -> auth.RequestView:
        query = sigv4.presigned_query("GET", "h", "/b/k", access_key_id=key_id, secret=secret,
                                      region="eucalyptus", service="s3", expires=60, now=NOW)
        return auth.RequestView("GET", "/b/k", query, {"host": "h"}, [])

    def who(view: auth.RequestView) -> str:
        return auth.authenticate(view, "s3", lookup=lookup, now=NOW).principal.user_id

    assert who(request("AKIDALICE", "alice-secret")) == "AKIDALICE"
    assert who(request("AKIDBOB", "bob-secret")) == "AKIDBOB"
    for forged in (request("AKIDBOB", "alice-secret"), request("AKIDALICE", "bob-secret")):
        with pytest.raises(AuthError) as refused:
            who(forged)
        assert refused.value.kind == BAD_SIGNATURE
    signed_before = request("AKIDALICE", "alice-secret")
    secrets["AKIDALICE"] = "alice-new-secret"
    with pytest.raises(AuthError) as refused:
        who(signed_before)
    assert refused.value.kind == BAD_SIGNATURE
    assert who(request("AKIDALICE", "alice-new-secret")) == "AKIDALICE"


# --- over HTTP: the code each service answers --------------------------------------------

@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    live, server = start_live(tmp_path_factory.mktemp("auth") / "data")
    yield live
    server.shutdown()


def refusal(response: requests.Response) -> tuple[int, str]:
    """(status, AWS code) of an error response, whose body must parse as XML."""
    root = ET.fromstring(response.content)
    code = root.find(".//{*}Code")
    if code is None:
        code = root.find(".//Code")
    return response.status_code, code.text


def _now_fields() -> tuple[str, str, str]:
    now = dt.datetime.now(dt.timezone.utc)
    amz = now.strftime("%Y%m%dT%H%M%SZ")
    return amz, amz[:8], now.strftime("%Y-%m-%dT%H:%M:%SZ")


SIGNATURE_MISMATCH = {"ec2": "AuthFailure", "iam": "SignatureDoesNotMatch",
                      "s3": "SignatureDoesNotMatch"}


@pytest.mark.parametrize("service", ["ec2", "iam", "s3"])
def test_non_ascii_v4_header_signature_is_a_mismatch(cloud, service):
    amz, day, _ = _now_fields()
    authorization = (f"AWS4-HMAC-SHA256 Credential={cloud.key_id}/{day}/{cloud.region}/"
                     f"{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=é")
    response = requests.get(cloud.endpoints[service] + "?Action=DescribeRegions", headers={
        "Authorization": authorization.encode("utf-8"), "X-Amz-Date": amz,
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert refusal(response) == (403, SIGNATURE_MISMATCH[service])


@pytest.mark.parametrize("service", ["ec2", "iam", "s3"])
def test_non_ascii_presigned_v4_signature_is_a_mismatch(cloud, service):
    amz, day, _ = _now_fields()
    url = (f"{cloud.endpoints[service]}?Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256"
           f"&X-Amz-Credential={cloud.key_id}%2F{day}%2F{cloud.region}%2F{service}%2F"
           f"aws4_request&X-Amz-Date={amz}&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
           f"&X-Amz-Signature=%C3%A9")
    assert refusal(requests.get(url)) == (403, SIGNATURE_MISMATCH[service])


@pytest.mark.parametrize("service", ["ec2", "iam"])
def test_non_ascii_v2_query_signature_is_a_mismatch(cloud, service):
    _, _, timestamp = _now_fields()
    url = (f"{cloud.endpoints[service]}?Action=DescribeRegions&AWSAccessKeyId={cloud.key_id}"
           f"&SignatureVersion=2&SignatureMethod=HmacSHA256&Timestamp={timestamp}"
           f"&Signature=%C3%A9")
    assert refusal(requests.get(url)) == (403, SIGNATURE_MISMATCH[service])


def test_non_ascii_s3_v2_header_signature_is_a_mismatch(cloud):
    date = dt.datetime.now(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    response = requests.get(cloud.base_url + "/", headers={
        "Authorization": f"AWS {cloud.key_id}:é".encode("utf-8"), "Date": date})
    assert refusal(response) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("expires, expected", [
    ("99999999999999999999", (403, "SignatureDoesNotMatch")),   # far future: not expired
    ("-1", (403, "AccessDenied")),                               # expired
    ("-99999999999999999999", (403, "AccessDenied")),            # expired, before year 1
    ("%D9%A1%D9%A0", (403, "AccessDenied")),                     # Arabic-Indic "10"
    ("1_0", (403, "AccessDenied")),
    ("9" * 5000, (403, "AccessDenied")),
])
def test_s3_v2_presigned_expires(cloud, expires, expected):
    url = (f"{cloud.base_url}/?AWSAccessKeyId={cloud.key_id}&Expires={expires}"
           f"&Signature=%C3%A9")
    assert refusal(requests.get(url)) == expected


@pytest.mark.parametrize("service, code", [("s3", "AuthorizationQueryParametersError"),
                                           ("ec2", "IncompleteSignature")])
@pytest.mark.parametrize("expires", ["-1", "604801", "%D9%A1%D9%A0", "1_0", "%C2%B2",
                                     "9" * 5000, ""])
def test_presigned_v4_expires_out_of_bounds(cloud, service, code, expires):
    amz, day, _ = _now_fields()
    url = (f"{cloud.endpoints[service]}?Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256"
           f"&X-Amz-Credential={cloud.key_id}%2F{day}%2F{cloud.region}%2F{service}%2F"
           f"aws4_request&X-Amz-Date={amz}&X-Amz-Expires={expires}"
           f"&X-Amz-SignedHeaders=host&X-Amz-Signature=ab")
    assert refusal(requests.get(url)) == (400, code)


@pytest.mark.parametrize("service, code", [("s3", "AuthorizationQueryParametersError"),
                                           ("iam", "IncompleteSignature")])
@pytest.mark.parametrize("date", ["%D9%A2%D9%A0%D9%A2%D9%A61205T120000Z", "99999999T999999Z",
                                  "2026-12-05T12:00:00Z"])
def test_presigned_v4_date_not_in_basic_format(cloud, service, code, date):
    _, day, _ = _now_fields()
    url = (f"{cloud.endpoints[service]}?Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256"
           f"&X-Amz-Credential={cloud.key_id}%2F{day}%2F{cloud.region}%2F{service}%2F"
           f"aws4_request&X-Amz-Date={date}&X-Amz-Expires=60"
           f"&X-Amz-SignedHeaders=host&X-Amz-Signature=ab")
    assert refusal(requests.get(url)) == (400, code)


@pytest.mark.parametrize("date", ["Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
                                  "Mon, 01 Jan 2000 00:00:00 +99999999999999999999"])
@pytest.mark.parametrize("service", ["ec2", "s3"])
def test_date_header_past_any_calendar(cloud, service, date):
    _, day, _ = _now_fields()
    response = requests.get(cloud.endpoints[service] + "?Action=DescribeRegions", headers={
        "Authorization": f"AWS4-HMAC-SHA256 Credential={cloud.key_id}/{day}/{cloud.region}/"
                         f"{service}/aws4_request, SignedHeaders=host, Signature=ab",
        "Date": date, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    status, _code = refusal(response)
    assert 400 <= status < 500
    s3_v2 = requests.get(cloud.base_url + "/", headers={
        "Authorization": f"AWS {cloud.key_id}:ab", "Date": date})
    assert refusal(s3_v2) == (403, "AccessDenied")
