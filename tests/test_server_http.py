"""The HTTP front end of `eucalite serve`, black box over raw sockets and boto3: slow, idle and
hostile clients cannot stop the others, everything the server itself rejects is the
service's XML error, and HTTP/1.1 (keep-alive, pipelining, HEAD, chunked bodies,
100-continue) works.

One server per module, with short limits set the way an admin sets them (EUCALITE_HTTP_*):
timeouts of 1-2 s, 4 request threads, 8 connections per client address. Slow clients come
from 127.0.0.2 and up (all of 127/8 is loopback), normal clients from 127.0.0.1.
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from liveutil import free_port
from serverutil import (EUCALITE, cli_env, read_all, self_signed, stop, wait_for_port,
                         wait_ready)

LIMITS = {"EUCALITE_THREADS": "4", "EUCALITE_HTTP_HEADER_TIMEOUT": "1",
          "EUCALITE_HTTP_KEEPALIVE_TIMEOUT": "2", "EUCALITE_HTTP_BODY_TIMEOUT": "1",
          "EUCALITE_HTTP_MIN_BODY_RATE": "1000", "EUCALITE_HTTP_SEND_TIMEOUT": "1",
          "EUCALITE_HTTP_MAX_HEADER_BYTES": "4096", "EUCALITE_HTTP_MAX_URI_BYTES": "1024",
          "EUCALITE_HTTP_MAX_CONNECTIONS_PER_CLIENT": "8",
          "EUCALITE_HTTP_MAX_REQUESTS_PER_CLIENT": "2"}


@dataclass
class Served:
    port: int
    creds: dict

    def client(self, service: str):
        return boto3.session.Session(
            aws_access_key_id=self.creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.creds["AWS_SECRET_ACCESS_KEY"],
            region_name=self.creds["AWS_DEFAULT_REGION"],
        ).client(service, endpoint_url=self.creds[f"AWS_ENDPOINT_URL_{service.upper()}"],
                 config=Config(retries={"max_attempts": 1}, connect_timeout=10,
                               read_timeout=10, s3={"addressing_style": "path"}))


def start_served(tmp_path, *extra, **env_extra) -> tuple[subprocess.Popen, Served]:
    port = free_port()
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path / "data"), **LIMITS, **env_extra)
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port), *extra],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    wait_ready(port, process)
    output = subprocess.run([EUCALITE, "credentials"], env=env, capture_output=True,
                            text=True, check=True).stdout
    creds = {}
    for line in output.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            creds[name] = shlex.split(value)[0] if value else ""
    return process, Served(port, creds)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    process, served = start_served(tmp_path_factory.mktemp("http"))
    s3 = served.client("s3")
    s3.create_bucket(Bucket="front")
    s3.put_object(Bucket="front", Key="small", Body=b"x" * 4096)
    yield served
    stop(process)


# -- raw HTTP ---------------------------------------------------------------------------

def connect(port: int, source: str = "127.0.0.1", timeout: float = 15) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def error_of(raw: bytes) -> tuple[int, str, str]:
    """(status, envelope, code) of an XML error response: envelope is 'ec2', 'iam' or 's3'."""
    status, headers, body = parse(raw)
    assert headers.get("content-type", "").split(";")[0] in ("application/xml", "text/xml"), \
        raw[:300]
    root = ET.fromstring(body)
    tag = root.tag.split("}")[-1]
    if tag == "Response":
        return status, "ec2", root.find("Errors/Error/Code").text
    if tag == "ErrorResponse":
        return status, "iam", root.find("{*}Error/{*}Code").text
    assert tag == "Error", body
    return status, "s3", root.find("Code").text


def exchange(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    with connect(port, source) as sock:
        sock.sendall(request)
        return read_all(sock)


# -- rejections -------------------------------------------------------------------------

REJECTIONS = {
    "bad Content-Length": (b"PUT /front/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
                           400, "s3", "BadRequest"),
    "two Content-Lengths": (b"POST /services/compute HTTP/1.1\r\nHost: h\r\n"
                            b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
                            400, "ec2", "BadRequest"),
    "Expect other than 100-continue": (b"PUT /front/k HTTP/1.1\r\nHost: h\r\nExpect: "
                                       b"202-accepted\r\nContent-Length: 1\r\n\r\nx",
                                       417, "s3", "ExpectationFailed"),
    "header too large": (b"GET /services/compute HTTP/1.1\r\nHost: h\r\nX-Big: "
                         + b"a" * 8000 + b"\r\n\r\n", 400, "ec2",
                         "RequestHeaderSectionTooLarge"),
    "URI too long": (b"GET /front/" + b"k" * 2000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
                     414, "s3", "RequestURITooLong"),
    "bad request line": (b"GET /services/Euare\r\n\r\n", 400, "iam", "BadRequest"),
    "unsupported Transfer-Encoding": (b"PUT /front/k HTTP/1.1\r\nHost: h\r\n"
                                      b"Transfer-Encoding: gzip\r\n\r\n", 501, "s3",
                                      "NotImplemented"),
}


@pytest.mark.parametrize("case", REJECTIONS)
def test_the_servers_own_rejections_are_the_services_xml_error(served, case):
    request, status, envelope, code = REJECTIONS[case]
    assert error_of(exchange(served.port, request)) == (status, envelope, code)


def test_a_trickled_request_head_times_out_as_request_timeout(served):
    with connect(served.port) as sock:
        sock.sendall(b"GET /services/compute?Action=DescribeRegions HTTP/1.1\r\nX-Slow: ")
        deadline = time.monotonic() + 15
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() < deadline and not answer:   # one byte every 0.2 s
            try:
                sock.sendall(b"a")
                answer = sock.recv(65536)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(5)
        answer += read_all(sock)
    assert error_of(answer) == (400, "ec2", "RequestTimeout")


def test_an_idle_connection_is_closed_without_an_answer(served):
    with connect(served.port) as sock:
        assert read_all(sock) == b""


def test_a_trickled_small_body_times_out_before_it_reaches_the_app(served):
    with connect(served.port) as sock:
        sock.sendall(b"POST /services/compute HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\nAction=")
        assert error_of(read_all(sock)) == (400, "ec2", "RequestTimeout")


def test_a_large_upload_that_stalls_is_request_timeout_from_s3(served):
    url = served.client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": "front", "Key": "stalled"})
    target = url.split(str(served.port), 1)[1]
    with connect(served.port) as sock:
        sock.sendall(f"PUT {target} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
                     f"Content-Length: {4 * 1024 * 1024}\r\n\r\n".encode())
        sock.sendall(b"y" * (2 * 1024 * 1024))      # past what is read before the app runs
        assert error_of(read_all(sock)) == (400, "s3", "RequestTimeout")
    s3 = served.client("s3")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="front", Key="stalled")


def test_slow_and_idle_clients_do_not_stop_the_others(served):
    """Three times as many slow connections of each kind as there are request threads."""
    slow = []
    try:
        for index in range(36):
            sock = connect(served.port, f"127.0.0.{2 + index % 6}")
            kind = index % 3
            if kind == 1:
                sock.sendall(b"GET /services/compute HTTP/1.1\r\nX-Slow: ")
            elif kind == 2:
                sock.sendall(b"POST /services/compute HTTP/1.1\r\nHost: h\r\n"
                             b"Content-Length: 100000\r\n\r\nAction=")
            slow.append(sock)
        ec2, s3 = served.client("ec2"), served.client("s3")
        for _ in range(3):
            assert ec2.describe_regions()["Regions"]
            assert s3.get_object(Bucket="front", Key="small")["Body"].read() == b"x" * 4096
            for sock in slow:
                try:
                    sock.send(b"a")
                except OSError:
                    pass              # timed out by the server: as it should be
    finally:
        for sock in slow:
            sock.close()


def test_connections_per_client_address_are_capped_with_slow_down(served):
    held = [connect(served.port, "127.0.0.20") for _ in range(8)]
    try:
        status, envelope, code = error_of(exchange(
            served.port, b"GET /front/small HTTP/1.1\r\nHost: h\r\n\r\n", "127.0.0.20"))
        assert (status, envelope, code) == (503, "s3", "SlowDown")
        assert served.client("ec2").describe_regions()["Regions"]    # others: served
    finally:
        for sock in held:
            sock.close()


# -- HTTP/1.1 ---------------------------------------------------------------------------

def test_keep_alive_pipelining_and_head(served):
    url = served.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": "front", "Key": "small"})
    target = url.split(str(served.port), 1)[1].encode()
    head_url = served.client("s3").generate_presigned_url(
        "head_object", Params={"Bucket": "front", "Key": "small"})
    head_target = head_url.split(str(served.port), 1)[1].encode()
    host = b"Host: 127.0.0.1:%d\r\n" % served.port
    with connect(served.port) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\n" + host + b"\r\n"
                     b"HEAD " + head_target + b" HTTP/1.1\r\n" + host + b"\r\n"
                     b"GET " + target + b" HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
        raw = read_all(sock)
    assert raw.count(b"HTTP/1.1 200 ") == 3
    assert raw.count(b"x" * 4096) == 2               # HEAD has no body


def test_a_client_that_half_closes_after_its_request_gets_the_answer(served):
    with connect(served.port) as sock:
        sock.sendall(b"GET /front/small HTTP/1.1\r\nHost: h\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert error_of(read_all(sock)) == (403, "s3", "AccessDenied")


def test_a_chunked_request_body(served):
    body = b"Action=DescribeRegions&Version=2016-11-15"
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    raw = exchange(served.port, b"POST /services/compute HTTP/1.1\r\nHost: h\r\n"
                   b"Content-Type: application/x-www-form-urlencoded\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   + chunked + b"0\r\n\r\n")
    status, envelope, code = error_of(raw)       # read whole: unsigned, so refused as such
    assert envelope == "ec2" and 400 <= status < 500 and code != "BadRequest"


def test_expect_100_continue_is_answered_before_the_body_is_sent(served):
    url = served.client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": "front", "Key": "continued"})
    target = url.split(str(served.port), 1)[1].encode()
    with connect(served.port) as sock:
        sock.sendall(b"PUT " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % served.port
                     + b"Content-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"hello")
        assert parse(read_all(sock))[0] == 200
    assert served.client("s3").get_object(Bucket="front",
                                          Key="continued")["Body"].read() == b"hello"


def test_a_client_that_stops_reading_is_cut_off_and_others_go_on(served):
    s3 = served.client("s3")
    size = 48 * 1024 * 1024
    s3.put_object(Bucket="front", Key="big", Body=os.urandom(1024) * (size // 1024))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "front", "Key": "big"})
    target = url.split(str(served.port), 1)[1].encode()
    with connect(served.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                     % served.port)
        assert served.client("ec2").describe_regions()["Regions"]
        time.sleep(4)                                # send_timeout is 1 s
        received = len(read_all(sock))
    assert 0 < received < size


def test_large_get_streams_whole(served):
    body = served.client("s3").get_object(Bucket="front", Key="big")["Body"]
    total = sum(len(chunk) for chunk in body.iter_chunks(1024 * 1024))
    assert total == 48 * 1024 * 1024


def test_sigterm_lets_a_running_request_finish(tmp_path):
    process, served = start_served(tmp_path)
    try:
        url = served.client("s3").generate_presigned_url(
            "list_buckets", Params={})
        with connect(served.port) as sock:
            sock.sendall(b"GET /services/compute HTTP/1.1\r\nHost: h\r\n")  # unfinished
            process.send_signal(signal.SIGTERM)
            sock.sendall(b"\r\n")
            answer = read_all(sock)
        assert url and (answer == b"" or parse(answer)[0] < 500)
    finally:
        output = stop(process)
    assert process.returncode == 0, output


def test_every_answer_has_its_line_in_the_access_log(tmp_path):
    process, served = start_served(tmp_path)
    answers = []

    def client(n: int) -> None:         # ten pipelined requests on one connection
        requests = b"".join(b"GET /front/c%d-%d HTTP/1.1\r\nHost: h\r\n%s\r\n" % (
            n, i, b"Connection: close\r\n" if i == 9 else b"") for i in range(10))
        answers.append(exchange(served.port, requests))

    try:
        clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
    finally:
        output = stop(process)
    # no bucket "front" on this server: each request is NoSuchBucket
    assert [answer.count(b"HTTP/1.1 404 ") for answer in answers] == [10] * 4
    logged = [line for line in output.splitlines() if '"GET /front/c' in line]
    assert sorted(line.split('"')[1] for line in logged) == sorted(
        f"GET /front/c{n}-{i} HTTP/1.1" for n in range(4) for i in range(10))
    assert all(line.startswith('127.0.0.1 "') and '" 404 ' in line for line in logged)


# -- TLS and the former server model ----------------------------------------------------

def test_tls_is_one_config_line(tmp_path):
    cert, key = self_signed(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eucalite.toml").write_text(
        f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    port = free_port()
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path / "data"))
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port, process)
        exports = subprocess.run([EUCALITE, "credentials"], env=env, capture_output=True,
                                 text=True, check=True).stdout
        assert f"https://127.0.0.1:{port}/services/compute" in exports
        creds = dict(line[len("export "):].split("=", 1) for line in exports.splitlines()
                     if line.startswith("export "))
        creds = {name: shlex.split(value)[0] for name, value in creds.items()}
        session = boto3.session.Session(aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                                        region_name=creds["AWS_DEFAULT_REGION"])
        config = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
        ec2 = session.client("ec2", endpoint_url=creds["AWS_ENDPOINT_URL_EC2"], verify=cert,
                             config=config)
        assert ec2.describe_regions()["Regions"]
        s3 = session.client("s3", endpoint_url=creds["AWS_ENDPOINT_URL_S3"], verify=cert,
                            config=config)
        s3.create_bucket(Bucket="secure")
        s3.put_object(Bucket="secure", Key="k", Body=b"over tls" * 100000)
        assert s3.get_object(Bucket="secure", Key="k")["Body"].read() == b"over tls" * 100000
        with pytest.raises(Exception, match="certificate verify failed"):
            session.client("ec2", endpoint_url=creds["AWS_ENDPOINT_URL_EC2"],
                           config=config).describe_regions()     # no verify=: refused
    finally:
        output = stop(process)
    assert f"https://127.0.0.1:{port}/services/compute" in output     # the banner
    assert process.returncode == 0, output


def test_tls_with_a_key_that_does_not_match_is_one_clear_line(tmp_path):
    cert, _ = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = self_signed(other)
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path / "data"), EUCALITE_TLS_CERT=cert,
                  EUCALITE_TLS_KEY=wrong_key)
    result = subprocess.run([EUCALITE, "serve", "--no-node", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "tls_cert" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_former_gthread_model_still_serves(tmp_path):
    process, served = start_served(tmp_path, "--server", "gthread")
    try:
        assert served.client("ec2").describe_regions()["Regions"]
    finally:
        output = stop(process)
    assert "Using worker: gthread" in output


# -- malformed requests ---------------------------------------------------------------------

def _mutations(rng) -> list[bytes]:
    """Requests broken the ways clients and attackers break them, then randomly mangled."""
    paths = [b"/", b"/front/small", b"/front/k?uploads", b"/services/compute",
             b"/services/Euare", b"/console/", b"/services/compute?Action=DescribeRegions"]
    methods = [b"GET", b"PUT", b"POST", b"HEAD", b"DELETE", b"OPTIONS", b"CONNECT", b"get",
               b"G\xc3\xa9T", b""]
    versions = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"", b"HTTP/9"]
    headers = [b"Content-Length: 5", b"Content-Length: -1", b"Content-Length: 1e3",
               b"Content-Length: \xc2\xb2", b"Content-Length: " + b"9" * 400,
               b"Content-Length: 3, 4", b"Transfer-Encoding: chunked",
               b"Transfer-Encoding: chunked, chunked", b"Transfer-Encoding: identity",
               b"Transfer-Encoding: Chunked", b"Expect: 100-continue", b"Expect: \xff",
               b"Host: \x00", b"Host:", b"X\x01: y", b" folded: line", b"X: " + b"a" * 9000,
               b"Content-Type: application/x-www-form-urlencoded", b"Authorization: AWS k:\xc3\xa9",
               b"Connection: close", b"Connection: keep-alive, upgrade", b"Upgrade: h2c"]
    bodies = [b"", b"hello", b"Action=DescribeRegions", b"5\r\nhello\r\n0\r\n\r\n",
              b"zz\r\nhello\r\n", b"5\r\nhel", b"\x00" * 64, bytes(range(256))]
    cases = []
    for _ in range(400):
        line = b" ".join(part for part in (rng.choice(methods), rng.choice(paths),
                                           rng.choice(versions)) if part)
        head = [line] + rng.sample(headers, rng.randint(0, 4))
        raw = b"\r\n".join(head) + b"\r\n\r\n" + rng.choice(bodies)
        for _ in range(rng.choice([0, 0, 1, 3])):          # then mangle some bytes
            at = rng.randrange(len(raw))
            raw = raw[:at] + bytes([rng.randrange(256)]) + raw[at + rng.randint(0, 2):]
        cases.append(raw)
    return cases


def test_malformed_requests_never_get_a_server_error_or_a_non_xml_rejection(served):
    import random

    failures = []
    for raw in _mutations(random.Random(11)):
        with connect(served.port, "127.0.0.30") as sock:
            try:
                sock.sendall(raw)
                sock.shutdown(socket.SHUT_WR)     # all there is: no waiting for more
            except OSError:
                pass
            answer = read_all(sock)
        if not answer:
            continue                              # closed unanswered (e.g. nothing to parse)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
        head, _, body = answer.partition(b"\r\n\r\n")
        if status >= 500 and b"<Code>NotImplemented</Code>" not in body or status == 0:
            failures.append((raw[:120], answer[:200]))
        elif body and status >= 400 and b"xml" not in parse(answer)[1].get(
                "content-type", "").encode():
            failures.append((raw[:120], answer[:200]))
    assert not failures, failures[:5]


def test_streamed_responses_are_chunked_for_http11_and_close_delimited_for_http10():
    from eucalite.httpserver import Limits
    from eucalite.httpserver.embedded import Embedded

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])     # no Content-Length
        return iter([b"first,", b"", b"second"])

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = Embedded(app, listener, Limits(threads=2))
    try:
        raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        status, headers, body = parse(raw)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        assert body == b"6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n"
        raw = exchange(server.port, b"GET / HTTP/1.0\r\n\r\n")
        assert parse(raw)[2] == b"first,second"
    finally:
        server.shutdown()
