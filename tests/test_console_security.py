"""Console hardening: protective headers and a nonce'd script on every console response,
Secure cookies over TLS, and bad input (the sign-in redirect, the CSRF token, any form field
or id in a URL) refused with a 4xx, never a 500."""
from __future__ import annotations

import re
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
