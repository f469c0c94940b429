"""The fuzz test's machinery (tests/test_fuzz.py): malformed values, a request on the wire
that can be signed as AWS clients sign, sent through the Flask test client or a raw socket,
and the checks every answer must pass.

Everything random comes from one ``random.Random`` with a fixed seed, so a run repeats
exactly. A finding names the request that produced it and, for a server error, where the
server's traceback ended (the innermost frame in eucalite/), so one bug is one finding
however often the fuzz hits it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import logging
import re
import socket
import traceback
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes
from xml.etree import ElementTree as ET

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

EUCALITE = str(Path(__file__).resolve().parent.parent / "eucalite")

# --- malformed values -----------------------------------------------------------------

#: Characters XML forbids, control characters, CR/LF, non-ASCII (including digits that are
#: not ASCII) and a lone surrogate (sent as its UTF-8 form %ED%A0%80).
NASTY_CHARS = ["\x00", "\x01", "\x1f", "\x7f", "\r\n", "\n", "\r", "é", "²", "٣", "\ud800",
               "\ufffe", "\U0001f600", "<", "&", "]]>", "%", "%zz", "+", "*", "?", "/", "\\",
               '"', "'", " ", "\t", "..", "&amp;", "=", ";", ","]

#: Integers a digit check or int() accepts but a handler may not (the likeliest to break
#: one, a superscript two that str.isdigit() takes and thousands of digits, twice).
NASTY_NUMBERS = ["-1", "0", "-0", "+1", " 1", "1 ", "1.5", "1e3", "0x10", "1_000", "²", "٣",
                 "１", "9" * 30, "9" * 5000, "-" + "9" * 30, "2147483648", "4294967296",
                 "9223372036854775808", "18446744073709551616", "NaN", "inf", "", "00001",
                 "²", "9" * 5000, "3000000"]

NASTY_DATES = ["2026-13-45T00:00:00Z", "2030-02-30T00:00:00Z", "2030-01-01T00:00:00Z\n",
               "0000-00-00T00:00:00Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z",
               "1970-01-01T00:00:00Z", "20300101T000000Z", "Sat, 45 Dec 2026 99:99:99 GMT",
               "yesterday", "-1", "9" * 30]


def nasty(rng, good: str = "x") -> str:
    """A malformed variant of *good*: a nasty value, *good* with one of its numbers
    replaced by a nasty one (``bytes=²-4``), or *good* with nasty characters."""
    roll = rng.random()
    runs = list(re.finditer(r"[0-9]+", good))
    if runs and roll < 0.3:
        run = rng.choice(runs)
        return good[:run.start()] + rng.choice(NASTY_NUMBERS) + good[run.end():]
    roll = rng.random()
    if roll < 0.25:
        return rng.choice(NASTY_NUMBERS)
    if roll < 0.35:
        return rng.choice(NASTY_DATES)
    if roll < 0.45:             # long, but not so long that a server stops reading it
        return (good * rng.choice([2, 100, 3000]))[:max(2 * len(good), 20000)]
    if roll < 0.5:
        return ""
    if roll < 0.55:
        return rng.choice(["true", "false", "TRUE", "yes", "null", "[]", "{}", "*a*a*a*a*b"])
    chars = "".join(rng.choice(NASTY_CHARS) for _ in range(rng.randint(1, 3)))
    at = rng.randint(0, len(good))
    return good[:at] + chars + good[at:]


def maybe_nasty(rng, good: str, chance: float = 0.3) -> str:
    """*good*, or (with *chance*) a malformed variant: a number's mostly malformed numbers."""
    if rng.random() >= chance:
        return good
    if good.isdigit() and rng.random() < 0.6:
        return rng.choice(NASTY_NUMBERS)
    return nasty(rng, good)


# --- encodings ------------------------------------------------------------------------

def utf8(text: str) -> bytes:
    """UTF-8 bytes of *text*; a lone surrogate becomes its (invalid) three-byte form."""
    return text.encode("utf-8", "surrogatepass")


def pct(text: str, safe: str = "-_.~") -> str:
    return quote(utf8(text), safe=safe)


def encode_pairs(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{pct(k)}={pct(v)}" if v is not None else pct(k) for k, v in pairs)


def header_bytes(text: str) -> bytes:
    """A header value on the wire: latin-1 where it can be (as Python's http.client sends
    it), else UTF-8 (as curl sends what it is given)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return utf8(text)


def wsgi_str(text: str) -> str:
    """How a WSGI server hands a header value to the app: its bytes read as latin-1."""
    return header_bytes(text).decode("latin-1")


# --- a request on the wire ------------------------------------------------------------

@dataclass
class Wire:
    """One request as it goes on the wire: the path and query as raw (percent-encoded)
    text, headers in order, the body, and a label saying what it is for a finding."""

    method: str
    path: str
    query: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    label: str = ""
    content_length: str | None = None   # sent instead of len(body) when set

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def with_header(self, name: str, value: str) -> "Wire":
        kept = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        return replace(self, headers=kept + [(name, value)])

    def describe(self) -> str:
        heads = " ".join(f"{k}: {v!r}" for k, v in self.headers
                         if k.lower() not in ("authorization", "x-amz-date",
                                              "x-amz-content-sha256")
                         and not (k.lower() == "host" and v.startswith("127.0.0.1")))
        body = self.body[:160] + (b"..." if len(self.body) > 160 else b"")
        if self.content_length is not None:
            heads += f" Content-Length: {self.content_length!r} (body: {len(self.body)} bytes)"
        return (f"[{self.label}] {self.method} {self.target[:300]}  {heads[:300]}"
                + (f"  body={body!r}" if self.body else ""))


# --- signing (botocore, as boto3 and the aws CLI sign) -----------------------------------

class _S3SigV4Auth(botocore.auth.S3SigV4Auth):
    """botocore's S3 signer, keeping the payload hash the request gives (UNSIGNED-PAYLOAD,
    STREAMING-…) where botocore would hash the body over plain HTTP."""

    def payload(self, request):
        return request.context.get("payload") or super().payload(request)


@dataclass
class Signer:
    key_id: str
    secret: str
    region: str
    host: str                       # the Host header value the request is sent with

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.key_id, self.secret)

    def _botocore(self, wire: Wire, auth, presigned: bool = False) -> Wire:
        headers = [(k, v) for k, v in wire.headers if k.lower() != "host"]
        # a presigned URL covers no body (botocore would move a form body into the query)
        # signed as the server reads them: a WSGI server hands over the bytes as latin-1
        request = AWSRequest(method=wire.method, url=f"http://{self.host}{wire.target}",
                             headers={k: wsgi_str(v) for k, v in headers},
                             data=b"" if presigned else wire.body)
        request.context["payload"] = wire.header("x-amz-content-sha256")
        auth.add_auth(request)
        path, _, query = request.url.split(self.host, 1)[1].partition("?")
        given = {k.lower(): v for k, v in headers}
        signed = [(k, given[k.lower()] if wsgi_str(given.get(k.lower(), "")) == v else v)
                  for k, v in request.headers.items()]
        return replace(wire, path=path, query=query, headers=[("Host", self.host)] + signed)

    def v4(self, wire: Wire, service: str) -> Wire:
        kind = _S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
        return self._botocore(wire, kind(self.credentials, service, self.region))

    def v4_presigned(self, wire: Wire, service: str, expires: int = 300) -> Wire:
        kind = botocore.auth.S3SigV4QueryAuth if service == "s3" else botocore.auth.SigV4QueryAuth
        return self._botocore(wire, kind(self.credentials, service, self.region,
                                         expires=expires), presigned=True)

    def s3_v2(self, wire: Wire) -> Wire:
        wire = wire.with_header("Date", formatdate(usegmt=True))
        return self._botocore(wire, botocore.auth.HmacV1Auth(self.credentials))

    def s3_v2_presigned(self, wire: Wire, expires: int = 300) -> Wire:
        return self._botocore(wire, botocore.auth.HmacV1QueryAuth(self.credentials,
                                                                   expires=expires),
                              presigned=True)

    def query_v2(self, wire: Wire, pairs: list[tuple[str, str]], timestamp: str) -> Wire:
        """EC2/IAM Signature V2 in the query string (GET), written out by hand."""
        pairs = pairs + [("AWSAccessKeyId", self.key_id), ("SignatureMethod", "HmacSHA256"),
                         ("SignatureVersion", "2"), ("Timestamp", timestamp)]
        canonical = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(pairs))
        to_sign = f"GET\n{self.host.lower()}\n{wire.path}\n{canonical}"
        digest = hmac.new(self.secret.encode(), to_sign.encode(), hashlib.sha256).digest()
        pairs.append(("Signature", base64.b64encode(digest).decode()))
        return replace(wire, method="GET", query=encode_pairs(pairs),
                       headers=[("Host", self.host)] + wire.headers)


def broken_auth(rng, wire: Wire, key: str) -> Wire:
    """*wire* with no credentials, or with credentials for access key *key* that are
    malformed in one of the ways that once got past the checks (non-ASCII signatures,
    far expiry times, broken dates)."""
    choice = rng.randrange(7)
    if choice == 0:
        return wire
    if choice == 1:
        return wire.with_header("Date", formatdate(usegmt=True)).with_header(
            "Authorization", f"AWS {key}:{rng.choice(['é', '²', chr(0), 'a' * 500])}")
    if choice == 2:
        return wire.with_header("Authorization", nasty(rng, f"AWS4-HMAC-SHA256 Credential={key}/"
                                "20300101/us-east-1/ec2/aws4_request, SignedHeaders=host, "
                                "Signature=abc"))
    extra = {3: f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={key}%2F20300101%2F"
                f"us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20300101T000000Z&X-Amz-Expires=60&"
                f"X-Amz-SignedHeaders=host&X-Amz-Signature=%C3%A9",
             4: f"AWSAccessKeyId={key}&Expires="
                f"{pct(rng.choice(['9' * 30, '-99999999999', '-1', '²', '253402300800']))}"
                f"&Signature=abc",
             5: f"AWSAccessKeyId={key}&Expires=1&Signature=%C3%A9",
             6: f"X-Amz-Date={pct(nasty(rng, '20300101T000000Z'))}&X-Amz-Expires="
                f"{pct(nasty(rng, '60'))}&X-Amz-Signature=00&X-Amz-Credential={key}"}[choice]
    wire.query = (wire.query + "&" if wire.query else "") + extra
    return wire


# --- sending ----------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    headers: dict[str, str]         # lower-case names
    body: bytes
    origin: str | None = None       # where the server's traceback ended, for a 5xx


class TracebackCatcher(logging.Handler):
    """Collects the tracebacks the app logs (log.exception, Flask's own), so a 5xx can be
    traced to the line that raised."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def take(self) -> str | None:
        records, self.records = self.records, []
        for record in records:
            return origin_of(record.exc_info[1])
        return None


def origin_of(error: BaseException) -> str:
    """``file:line in function: Type: message`` of the innermost eucalite frame."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if frame.filename.startswith(EUCALITE)] or frames
    frame = ours[-1] if ours else None
    where = (f"{frame.filename.replace(EUCALITE, 'eucalite')}:{frame.lineno} in {frame.name}"
             if frame else "?")
    return f"{where}: {type(error).__name__}: {str(error)[:120]}"


def wsgi_request(wire: Wire, remote_addr: str = "127.0.0.1") -> Request:
    """A WSGI request built from *wire* exactly: raw target, header values as a server
    would pass them (no validation), the body and its (maybe false) Content-Length."""
    path = unquote_to_bytes(utf8(wire.path)).decode("latin-1")
    environ = EnvironBuilder(method=wire.method, path="/").get_environ()
    environ.update(PATH_INFO=path, QUERY_STRING=wire.query, RAW_URI=wire.target,
                   REQUEST_URI=wire.target, REMOTE_ADDR=remote_addr,
                   CONTENT_LENGTH=wire.content_length or str(len(wire.body)))
    environ["wsgi.input"] = io.BytesIO(wire.body)
    environ.pop("CONTENT_TYPE", None)
    for name, value in wire.headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key == "CONTENT_LENGTH" and wire.content_length is not None:
                continue
            environ[key] = wsgi_str(value)
        else:
            environ["HTTP_" + key] = wsgi_str(value)
    if "HTTP_HOST" in environ:
        environ["SERVER_NAME"] = environ["HTTP_HOST"].split(":")[0]
    return Request(environ)


def send_wsgi(client, wire: Wire, catcher: TracebackCatcher,
              remote_addr: str = "127.0.0.1") -> Answer:
    """*wire* through a werkzeug/Flask test *client*; an exception that escapes the app
    (a bare WSGI app has no error handler) counts as a 500 with its origin."""
    catcher.take()
    request = wsgi_request(wire, remote_addr)
    try:
        response = client.open(request)
    except Exception as error:  # noqa: BLE001 - that is the finding
        return Answer(500, {}, b"", origin_of(error))
    body = response.get_data()
    headers = {k.lower(): v for k, v in response.headers.items()}
    return Answer(response.status_code, headers, body,
                  catcher.take() if response.status_code >= 500 else None)


def send_http(port: int, wire: Wire, timeout: float = 20, source: str = "127.0.0.1") -> Answer:
    """*wire* over a real TCP connection from *source* to 127.0.0.1:*port* (one request,
    then close).
    CR/LF in header values would change the framing (the front end's own tests cover that),
    so they are sent as spaces here; a false Content-Length is sent when it is not a
    number or less than the body."""
    lines = [f"{wire.method} {wire.target} HTTP/1.1".encode()]
    names = {k.lower() for k, _ in wire.headers}
    if "host" not in names:
        lines.append(f"Host: 127.0.0.1:{port}".encode())
    for name, value in wire.headers:
        if name.lower() not in ("content-length", "connection"):
            lines.append(name.encode() + b": " + header_bytes(value).replace(b"\r", b" ")
                         .replace(b"\n", b" "))
    length = wire.content_length
    if length is None or (length.isascii() and length.isdigit() and int(length) > len(
            wire.body)):
        length = str(len(wire.body))    # a promise of more body would only wait for it
    lines.append(b"Content-Length: " + header_bytes(length))
    lines.append(b"Connection: close")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0)) as sock:
        try:
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + wire.body)
            response = http.client.HTTPResponse(sock, method=wire.method)
            response.begin()
            body = response.read()
        except (ConnectionError, http.client.HTTPException) as error:
            return Answer(0, {}, b"", f"no answer: {type(error).__name__}: {error}")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                      body)


def serve_front_end(app):
    """*app* behind eucalite's own HTTP front end (eucalite.httpserver, what `eucalite
    serve` runs) on a free loopback port, from a thread: it has ``port`` and
    ``shutdown()``."""
    from eucalite.httpserver import Limits
    from eucalite.httpserver.embedded import Embedded

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return Embedded(app, listener, Limits(), name="fuzz-http")


# --- checks -----------------------------------------------------------------------------

#: The root element and the path to the error code of each service's error envelope.
ENVELOPES = {
    "ec2": ("Response", "Errors/Error/Code"),
    "iam": ("{https://iam.amazonaws.com/doc/2010-05-08/}ErrorResponse",
            "{https://iam.amazonaws.com/doc/2010-05-08/}Error/"
            "{https://iam.amazonaws.com/doc/2010-05-08/}Code"),
    "s3": ("Error", "Code"),
}


def origin_signature(origin: str | None) -> str | None:
    """``file in function: ExceptionType`` of an origin (no line number, no message), to
    name a known problem however the lines around it move."""
    found = re.match(r"(\S+?):\d+ in (\S+): (\w+)", origin or "")
    return f"{found[1]} in {found[2]}: {found[3]}" if found else None


def error_code(service: str, answer: Answer) -> str | None:
    """The AWS error code in *answer*'s body, or None when it has none."""
    envelope = ENVELOPES.get(service)
    try:
        root = ET.fromstring(answer.body) if envelope and answer.body else None
    except ET.ParseError:          # still say which error it was meant to be
        found = re.search(rb"<Code>([^<]{1,64})</Code>", answer.body)
        return found.group(1).decode("utf-8", "replace") if found else None
    return root.findtext(envelope[1]) if root is not None else None


def problem(service: str, answer: Answer) -> tuple[str, str] | None:
    """(kind, detail) of what is wrong with *answer*, or None. Every service: no 5xx
    (S3's NotImplemented for a sub-resource eucalite lacks is AWS's own answer). AWS
    services: an error is the service's XML envelope with a code; an XML body parses."""
    envelope = ENVELOPES.get(service)
    code = None
    xml_body = answer.body.lstrip().startswith(b"<?xml") or "xml" in answer.headers.get(
        "content-type", "")
    is_error = answer.status >= 300 and answer.status != 304
    if envelope and answer.body and (is_error or xml_body):
        try:
            root = ET.fromstring(answer.body)
        except ET.ParseError as error:
            return ("body is not XML", f"{answer.status} {error}: {answer.body[:300]!r}")
        code = root.findtext(envelope[1])
        if is_error and (root.tag != envelope[0] or not code):
            return ("error is not the envelope", f"{answer.status}: {answer.body[:300]!r}")
    if answer.status == 0:
        return ("the connection closed without an answer", answer.origin or "")
    for name, value in answer.headers.items():
        try:                            # what a WSGI server must be able to write
            value.encode("latin-1")
        except UnicodeEncodeError:
            return ("a response header cannot go on the wire", f"{name}: {value!r}")
    if answer.status >= 500 and not (answer.status == 501 and code == "NotImplemented"):
        return (f"{answer.status} {code or ''}".strip(), answer.origin or "no traceback logged")
    return None


@dataclass
class Findings:
    """Distinct problems, each once with how often it was hit and the first request that
    hit it: a 5xx by where its traceback ended, another problem by its kind and the
    response's error code. Also what came back, by status and code (to see how much of
    the fuzz got past authentication)."""

    #: Open problems owned elsewhere, by ``file in function: ExceptionType`` of their
    #: origin: counted apart, not failures (each one named where the set is given).
    known: frozenset[str] = frozenset()
    by_key: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    sent: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    known_hits: dict[str, int] = field(default_factory=dict)

    def record(self, service: str, wire: Wire, answer: Answer) -> None:
        self.sent += 1
        code = error_code(service, answer)
        seen = f"{answer.status} {code or ''}".strip()
        self.answers[seen] = self.answers.get(seen, 0) + 1
        found = problem(service, answer)
        if found is None:
            return
        signature = origin_signature(answer.origin) if answer.status else None
        if signature in self.known:
            self.known_hits[signature] = self.known_hits.get(signature, 0) + 1
            return
        kind, detail = found
        if answer.origin and answer.status:
            key = f"{service} {kind} at {answer.origin.split(': ', 1)[0]}"
        else:
            key = f"{service} {kind} ({wire.label.split(' ')[0]} {code or answer.status})"
        count, first, message = self.by_key.get(key, (0, wire.describe(), detail))
        self.by_key[key] = (count + 1, first, message)

    def report(self) -> str:
        lines = [f"{len(self.by_key)} distinct problems in {self.sent} requests "
                 f"(answers: {dict(sorted(self.answers.items(), key=lambda x: -x[1]))}; "
                 f"known and left open: {self.known_hits or 'none'}):"]
        for key, (count, first, message) in sorted(self.by_key.items()):
            lines.append(f"- {key} (x{count})\n    {message}\n    first: {first}")
        return "\n".join(lines)
