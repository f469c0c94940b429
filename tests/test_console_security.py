"""Console hardening: protective headers and a nonce'd script on every console response,
Secure cookies over TLS, and bad input (the sign-in redirect, the CSRF token, any form field
or id in a URL) refused with a 4xx, never a 500."""
from __future__ import annotations

import random
import re
import string
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes, urlsplit

import pytest

from consoleutil import PASSWORD, console_app, is_signed_in, signed_in, token_of

TEMPLATES = Path(__file__).parent.parent / "eucalite" / "templates"


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


# --- protective headers ----------------------------------------------------------------------

def test_console_pages_send_protective_headers(app):
    client, token = signed_in(app)
    anonymous = app.test_client()
    responses = {
        "login": anonymous.get("/console/login"),
        "dashboard": client.get("/console/dashboard"),
        "rows": client.get("/console/instances/rows"),
        "error page": client.get("/console/images/emi-00000000"),
        "csrf refusal": client.post("/console/logout", data={"csrf_token": "wrong"}),
        "redirect": anonymous.get("/console/dashboard"),
        "static": client.get("/console/static/console.js"),
    }
    for what, response in responses.items():
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp, what
        assert "object-src 'none'" in csp and "base-uri 'none'" in csp, what
        assert headers.get("X-Frame-Options") == "DENY", what
        assert headers.get("X-Content-Type-Options") == "nosniff", what
        assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), what


def test_only_the_consoles_own_nonced_script_may_run(app):
    """script-src names a fresh nonce, not 'self': a script an attacker stores in a bucket
    (same origin) cannot run on a console page, and inline scripts never can."""
    client, _ = signed_in(app)
    nonces = []
    for _ in range(2):
        page = client.get("/console/dashboard")
        csp = page.headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", csp).group(1).split()
        assert len(script_src) == 1 and script_src[0].startswith("'nonce-"), csp
        nonce = script_src[0][len("'nonce-"):-1]
        html = page.get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_templates_hold_no_inline_script_or_style():
    """What the policy would block anyway, caught here rather than in a browser."""
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert " src=" in tag and "nonce=" in tag, (path.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), path.name
        assert not re.search(r"\sstyle\s*=", text), path.name
        assert "javascript:" not in text, path.name


# --- Secure cookies over TLS -----------------------------------------------------------------

def sign_in_response(app, base_url="http://localhost"):
    client = app.test_client()
    token = token_of(client.get("/console/login", base_url=base_url))
    return client.post("/console/login", base_url=base_url,
                       data={"account": "eucalyptus", "user": "admin",
                             "password": PASSWORD, "csrf_token": token})


def cookie_flags(response) -> list[str]:
    assert response.status_code == 302
    return [part.strip().lower() for part in response.headers["Set-Cookie"].split(";")]


def test_the_cookie_is_secure_when_the_request_came_over_https(app):
    assert "secure" in cookie_flags(sign_in_response(app, "https://localhost"))
    assert "secure" not in cookie_flags(sign_in_response(app))


# --- bad input is refused, never a 500 ------------------------------------------------------

@pytest.mark.parametrize("target", ["/console/x\r\nSet-Cookie: a=b", "/console/\nx",
                                    "/console/a\x00b", "/console/\x7f", "/console/é",
                                    "/console/\ta", "/console/" + "a" * 5000])
def test_control_characters_in_next_never_reach_location(app, target):
    client = app.test_client()
    token = token_of(client.get("/console/login"))
    response = client.post("/console/login?next=" + quote(target, safe=""),
                           data={"account": "eucalyptus", "user": "admin",
                                 "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert all(0x21 <= ord(c) < 0x7f for c in location), location
    assert urlsplit(location).path.startswith("/console")


@pytest.mark.parametrize("raw", ["%C3%A9", "tok%C3%A9n", "%00", "%ED%A0%80", "%FF",
                                 "a" * 100000])
def test_a_non_ascii_csrf_token_is_a_400(app, raw):
    client, token = signed_in(app)
    response = client.post("/console/logout", data=f"csrf_token={raw}",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    # the header: its bytes arrive as Latin-1 text
    header = unquote_to_bytes(raw).decode("latin-1")
    response = client.post("/console/logout", headers={"X-CSRF-Token": header})
    assert response.status_code == 400
    assert is_signed_in(client)


#: Values no console field expects: non-ASCII, control characters, a header split, digits
#: int() refuses or chokes on, markup, path tricks, and sizes.
WEIRD = ["é", "中", "\x00", "a\r\nX-Injected: 1", "x\n", "²", "٣", "9" * 5000, "-1",
         "../../x", "<b>&", "a" * 3000, "%ff", " ",
         "".join(random.Random(11).choices(string.ascii_letters, k=5000))]   # no compression
#: Every form and query field a console view reads.
FIELDS = ("name", "user", "account", "password", "status", "state", "key", "value", "op",
          "action", "next", "count", "image_id", "instance_type", "key_name", "user_data",
          "zone", "size", "snapshot_id", "instance_id", "device", "force", "description",
          "account_id", "operation", "key_pair_id", "public_key", "key_type", "prefix", "acl",
          "after", "profile", "snapshot", "back")


def console_routes(app):
    """(endpoint, method, rule) of every console route but sign-in and sign-out; every
    GET first (a POST may delete what a GET would have shown)."""
    for method in ("GET", "POST"):
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith("console.") and method in rule.methods and \
                    rule.endpoint not in ("console.login", "console.logout", "console.static"):
                yield rule.endpoint, method, rule


def headers_fit_the_wire(response) -> bool:
    """Whether a WSGI server can send *response*'s headers (ISO-8859-1 text, one line
    each); the test client would pass what a real server fails on."""
    try:
        for name, value in response.headers.items():
            value.encode("latin-1")
            if any(c in value for c in "\r\n\x00"):
                return False
            # browsers drop a cookie over 4 KB (the messages for the next page ride in it)
            if name == "Set-Cookie" and len(value) > 4093:
                return False
    except UnicodeEncodeError:
        return False
    return True


def test_no_console_input_is_a_server_error(app):
    """Every console route, with each odd value in its URL's ids and in every field it
    could read: a page, a redirect or a 4xx, with headers a server can send; never a 500."""
    from eucalite import accounts as accounts_module

    client, token = signed_in(app)
    with app.app_context():
        key_id = accounts_module.first_active_key("eucalyptus", "admin").id
    client.post("/console/buckets/create", data={"name": "sweep", "csrf_token": token})
    real = {"key_id": key_id, "name": "sweep"}
    failures = []
    for endpoint, method, rule in console_routes(app):
        for weird in WEIRD:
            for in_path in (True, False):
                if in_path and not rule.arguments:
                    continue
                path = rule.rule
                for argument in rule.arguments:
                    value = weird if in_path else real.get(argument, "x-1")
                    path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", quote(value, safe=""), path)
                fields = {field: weird for field in FIELDS}
                # redirects followed as a browser would (that shows, and so drops, the
                # messages for the next page)
                if method == "GET":
                    response = client.get(path, query_string=fields, follow_redirects=True)
                else:
                    response = client.post(path, data=dict(fields, csrf_token=token),
                                           follow_redirects=True)
                for step in [*response.history, response]:
                    if step.status_code >= 500 or not headers_fit_the_wire(step):
                        failures.append((endpoint, method, path[:80], weird[:20]))
    assert is_signed_in(client)
    assert not failures, failures


@pytest.mark.parametrize("raw", [b"name=%FF%FE", b"name=" + b"%C3%A9" * 20000,
                                 b"%00=%00&name", b"name=a&name=b&" * 2000])
def test_malformed_form_bodies_are_not_server_errors(app, raw):
    client, token = signed_in(app)
    for path in ("/console/accounts/create", "/console/keypairs/import",
                 "/console/instances/launch", "/console/volumes/create"):
        response = client.post(path, data=raw + b"&csrf_token=" + token.encode(),
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500, path


def put_object(app, bucket: str, key: str, content_type: str | None = None) -> None:
    """Store *key* = b"contents" in *bucket* (made if missing) as the cloud admin, as any
    S3 client could, whatever characters key and type hold."""
    from eucalite import accounts as accounts_module
    from eucalite.s3 import buckets, objects
    from eucalite.s3.store import HashingReader

    with app.app_context():
        admin = accounts_module.principal_of(accounts_module.get_user("eucalyptus", "admin"))
        buckets.ensure(admin, bucket)
        objects.put(app.extensions["eucalite"].s3.store, admin, bucket, key,
                    HashingReader(iter([b"contents"])),
                    objects.Attributes(content_type=content_type))


@pytest.mark.parametrize("key", ["line\nbreak.txt", "cr\rhere", "ctl\x01.txt", "tab\t.txt",
                                 'q"uote\\.txt', "中文.txt", "dir/é.txt"])
def test_any_object_key_downloads_with_a_sendable_file_name(app, key):
    """S3 keys may hold any character; the download's Content-Disposition names the file
    in plain ASCII (and exactly in filename*), never with a control character."""
    from urllib.parse import unquote

    client, _ = signed_in(app)
    put_object(app, "downloads", key)
    response = client.get("/console/buckets/downloads/download", query_string={"key": key})
    assert response.status_code == 200 and response.get_data() == b"contents"
    assert headers_fit_the_wire(response)
    disposition = response.headers["Content-Disposition"]
    assert all(" " <= c < "\x7f" for c in disposition), disposition
    exact = re.search(r"filename\*=UTF-8''(\S+)", disposition).group(1)
    assert unquote(exact) == key.rsplit("/", 1)[-1]


@pytest.mark.parametrize("content_type", ["text/plain\r\nX-Injected: 1", "text/\x01plain",
                                          "text/中"])
def test_a_stored_content_type_a_header_cannot_carry_is_not_sent(app, content_type):
    """S3 refuses such a type on the way in now; an object stored before that check (or
    by any other path) must still download with a type a header can carry."""
    from eucalite.db import db
    from eucalite.s3.models import ObjectVersion

    client, _ = signed_in(app)
    put_object(app, "downloads", "file.txt")
    with app.app_context():
        db.session.execute(db.update(ObjectVersion).where(ObjectVersion.key == "file.txt")
                           .values(content_type=content_type))
        db.session.commit()
    response = client.get("/console/buckets/downloads/download",
                          query_string={"key": "file.txt"})
    assert response.status_code == 200 and response.get_data() == b"contents"
    assert headers_fit_the_wire(response)
    assert response.headers["Content-Type"] == "binary/octet-stream"


@pytest.mark.parametrize("number", ["٣", "²", "1_0", "+3", "9" * 4000])
def test_numbers_are_ascii_digits_as_the_api_takes_them(app, number):
    """A count or size is ASCII digits, as EC2 reads it: '٣' (Arabic-Indic three) used to
    make a 3 GiB volume, and a 4000-digit count was taken as a number."""
    from eucalite.ebs import volumes

    client, token = signed_in(app)
    for path, field in (("/console/volumes/create", "size"),
                        ("/console/instances/launch", "count")):
        response = client.post(path, data={field: number, "zone": "eucalyptus-1a",
                                           "image_id": "emi-00000000", "csrf_token": token},
                               follow_redirects=True)
        assert response.status_code == 200
        assert f"InvalidParameterValue: Value ({number[:20]}" in response.get_data(
            as_text=True), path
    with app.app_context():
        from eucalite import accounts as accounts_module

        admin = accounts_module.principal_of(accounts_module.get_user("eucalyptus", "admin"))
        assert volumes.visible(admin) == []


def test_served_over_tls_the_cookie_is_secure_with_no_more_configuration(tmp_path):
    """`eucalite serve` with only tls_cert/tls_key set (no https public_url): the console's
    cookie is Secure, so it never travels over plain http."""
    import subprocess

    import requests

    from consoleutil import TOKEN
    from liveutil import free_port
    from serverutil import EUCALITE, cli_env, self_signed, stop, wait_for_port

    cert, key = self_signed(tmp_path)
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path / "data"), EUCALITE_TLS_CERT=cert,
                  EUCALITE_TLS_KEY=key)
    subprocess.run([EUCALITE, "account", "password", "eucalyptus", "admin", "--password",
                    PASSWORD], env=env, check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        wait_for_port(port, process)
        browser = requests.Session()
        base = f"https://127.0.0.1:{port}/console"
        page = browser.get(f"{base}/login", verify=cert, timeout=30)
        token = TOKEN.search(page.text).group(1)
        response = browser.post(f"{base}/login", verify=cert, timeout=30,
                                allow_redirects=False,
                                data={"account": "eucalyptus", "user": "admin",
                                      "password": PASSWORD, "csrf_token": token})
        assert "secure" in cookie_flags(response)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    finally:
        output = stop(process)
    assert process.returncode == 0, output


@pytest.mark.parametrize("name", ["bob\n", "用户", "josé", "a b"])
def test_user_names_are_iams_ascii_characters(app, name):
    """IAM user names are ASCII letters, digits and +=,.@_- ; a name with a line break or
    outside ASCII (the pattern's \\w and $ let both through) ended up in the credentials
    files' Content-Disposition, which a header cannot carry."""
    from eucalite import accounts as accounts_module

    with app.app_context():
        with pytest.raises(accounts_module.ValidationError):
            accounts_module.create_user("eucalyptus", name)
    if name != name.strip():
        return                  # the console's form takes the name without its spaces
    client, token = signed_in(app)
    page = client.post("/console/accounts/eucalyptus/users/create",
                       data={"user": name, "csrf_token": token}, follow_redirects=True)
    assert "ValidationError" in page.get_data(as_text=True)
    with app.app_context():
        assert name not in [u.name for u in accounts_module.list_users("eucalyptus")]


def test_an_account_name_cannot_end_in_a_line_break(app):
    from eucalite import accounts as accounts_module

    with app.app_context():
        with pytest.raises(accounts_module.ValidationError):
            accounts_module.create_account("research\n")
        assert "research\n" not in [a.name for a in accounts_module.list_accounts()]


def test_downloads_name_their_file_in_ascii(app):
    from eucalite.web.pages import attachment

    for filename, shown in (("eucarc-acct-用户", "eucarc-acct-__"), ("a\nb\"c.pem", "a_b_c.pem"),
                            ("plain.ini", "plain.ini")):
        value = attachment(filename)
        assert value.startswith(f'attachment; filename="{shown}"; filename*=UTF-8\'\'')
        assert all(" " <= c < "\x7f" for c in value)


# --- the console's own error pages ---------------------------------------------------------

def test_an_unknown_console_path_is_the_consoles_404_page(app):
    client, _ = signed_in(app)
    for path in ("/console/no-such-page", "/console/instances/i-0123456789abcdef0/nope",
                 "/console/iam/groups/a%2Fb%0D%0A?policy=x"):     # a line break in the path
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/html", path
        body = response.get_data(as_text=True)
        assert "There is no console page at" in body and "<Error>" not in body, path
    # signed out, it is a page like any other: sign in first
    response = app.test_client().get("/console/no-such-page")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/login"


def test_an_unexpected_error_in_a_page_is_a_console_500_with_the_request_id(app, monkeypatch,
                                                                           caplog):
    client, _ = signed_in(app)
    compute = app.extensions["eucalite"].compute

    def broken(principal):
        raise RuntimeError("the secret detail")
    monkeypatch.setattr(compute, "summary", broken)
    response = client.get("/console/dashboard")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    request_id = response.headers["x-amz-request-id"]
    assert request_id and request_id in body
    assert "InternalError" in body and "<Error>" not in body
    assert "the secret detail" not in body                  # logged, never shown
    assert "the secret detail" in caplog.text
    # the page still carries the console's protective headers
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
