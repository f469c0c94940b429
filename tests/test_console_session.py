"""Console sessions: sign-in and sign-out, CSRF on every POST, expiry (kept on the server)
and its setting, the cookie's flags, no open redirect after sign-in, static files, and the
/console prefix the S3 API cannot take."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import botocore.exceptions
import pytest
from awsutil import error_code

from eucalite import accounts, create_app
from eucalite.db import db
from eucalite.web.session import set_password

from consoleutil import token_of

PUBLIC = {"console.login", "console.static", "console.home"}
#: The session cookie has Path=/console: session_transaction() must open it for a console
#: path (with the default "/" it would start an empty session and overwrite the real one).
SESSION_PATH = "/console/"


def make_app(tmp_path, **config):
    app = create_app({"data_dir": str(tmp_path / "data"), "node": False, **config})
    with app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, "password123")
    return app


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


def sign_in(client, password="password123", next_url=None):
    token = token_of(client.get("/console/login"))
    path = "/console/login" + (f"?next={next_url}" if next_url is not None else "")
    return client.post(path, data={"account": "eucalyptus", "user": "admin",
                                   "password": password, "csrf_token": token})


def console_rules(app, method):
    """(endpoint, path with every argument filled in) of the console's routes for *method*."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and method in rule.methods:
            path = rule.rule
            for argument in rule.arguments:
                path = re.sub(rf"<(?:[^:<>]+:)?{argument}>", "x-1", path)
            yield rule.endpoint, path


def test_unauthenticated_pages_redirect_to_sign_in(app):
    client = app.test_client()
    checked = 0
    for endpoint, path in console_rules(app, "GET"):
        if endpoint in PUBLIC:
            continue
        response = client.get(path)
        assert response.status_code == 302, path
        location = urlsplit(response.headers["Location"])
        assert location.path == "/console/login", path
        assert parse_qs(location.query)["next"][0] == path, path
        checked += 1
    assert checked >= 4          # dashboard, accounts, nodes, credentials at least

    # signing in from there returns to the page asked for
    response = client.get("/console/accounts")
    next_url = parse_qs(urlsplit(response.headers["Location"]).query)["next"][0]
    response = sign_in(client, next_url=next_url)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/accounts"


def test_wrong_password(app):
    client = app.test_client()
    response = sign_in(client, password="not-the-password")
    assert response.status_code == 401
    assert "Wrong account, user or password." in response.get_data(as_text=True)
    with client.session_transaction(SESSION_PATH) as session:
        assert "account" not in session and "user" not in session
    assert client.get("/console/dashboard").status_code == 302
    # an account or user that does not exist: the same answer
    token = token_of(client.get("/console/login"))
    response = client.post("/console/login", data={"account": "nobody", "user": "admin",
                                                   "password": "password123",
                                                   "csrf_token": token})
    assert response.status_code == 401


def test_sign_in_and_out(app):
    client = app.test_client()
    response = sign_in(client)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/dashboard"
    page = client.get("/console/dashboard")
    assert page.status_code == 200 and "admin@eucalyptus" in page.get_data(as_text=True)

    token = token_of(page)
    response = client.post("/console/logout", data={"csrf_token": token},
                           follow_redirects=True)
    assert response.request.path == "/console/login"
    assert "Signed out." in response.get_data(as_text=True)
    with client.session_transaction(SESSION_PATH) as session:
        assert "account" not in session
    response = client.get("/console/dashboard")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/login"


def test_every_post_needs_the_csrf_token(app, tmp_path):
    client = app.test_client()
    assert sign_in(client).status_code == 302
    token = token_of(client.get("/console/dashboard"))
    other = app.test_client()
    assert sign_in(other).status_code == 302
    other_token = token_of(other.get("/console/dashboard"))
    assert other_token != token

    posts = list(console_rules(app, "POST"))
    endpoints = {endpoint for endpoint, _ in posts}
    assert {"console.logout", "console.account_create", "console.account_delete",
            "console.user_create", "console.user_password", "console.access_key_create",
            "console.access_key_status", "console.access_key_delete",
            "console.node_state"} <= endpoints
    for endpoint, path in posts:
        form = {"name": "csrf-test", "user": "csrf-test", "state": "disabled",
                "status": "Inactive", "password": "password123", "account": "eucalyptus"}
        for sent in (None, "wrong", other_token):
            data = dict(form) if sent is None else dict(form, csrf_token=sent)
            response = client.post(path, data=data)
            assert response.status_code == 400, (endpoint, sent)
            assert "security token" in response.get_data(as_text=True)
        # the header fetch/XHR use is checked the same way
        response = client.post(path, data=form, headers={"X-CSRF-Token": other_token})
        assert response.status_code == 400, endpoint

    # nothing happened: still signed in, no account made
    assert client.get("/console/dashboard").status_code == 200
    with app.app_context():
        assert "csrf-test" not in [account.name for account in accounts.list_accounts()]
    # and the right token works
    response = client.post("/console/accounts/create",
                           data={"name": "csrf-test", "csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        assert accounts.get_account("csrf-test")
    response = client.post("/console/logout", headers={"X-CSRF-Token": token})
    assert response.status_code == 302


def test_sign_in_needs_the_csrf_token(app):
    client = app.test_client()
    client.get("/console/login")
    response = client.post("/console/login", data={"account": "eucalyptus", "user": "admin",
                                                   "password": "password123"})
    assert response.status_code == 400
    with client.session_transaction(SESSION_PATH) as session:
        assert "account" not in session


def age_sessions(app, by: dt.timedelta) -> list[dt.timedelta]:
    """Move every console session's last request *by* into the past; returns how long
    ago each one's last request now is."""
    with app.app_context():
        rows = db.session.execute(db.select(accounts.ConsoleSession)).scalars().all()
        for row in rows:
            row.last_seen -= by
        db.session.commit()
        return [accounts.utcnow() - row.last_seen for row in rows]


def test_session_expiry(app):
    client = app.test_client()
    sign_in(client)
    assert client.get("/console/dashboard").status_code == 200
    age_sessions(app, dt.timedelta(minutes=481))
    response = client.get("/console/dashboard")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/login"
    page = client.get(response.headers["Location"])
    assert "Your session expired" in page.get_data(as_text=True)
    with client.session_transaction(SESSION_PATH) as session:
        assert "session" not in session
    assert client.get("/console/dashboard").status_code == 302


def test_session_lifetime_setting(tmp_path):
    for minutes, data in ((5, "five"), (None, "default")):
        config = {} if minutes is None else {"console_session_minutes": minutes}
        app = make_app(tmp_path / data, **config)
        try:
            lifetime = dt.timedelta(minutes=minutes or 480)
            client = app.test_client()
            sign_in(client)
            # a minute short of the lifetime: still signed in, and the request slides the
            # expiry on
            age_sessions(app, lifetime - dt.timedelta(minutes=1))
            assert client.get("/console/dashboard").status_code == 200
            assert max(age_sessions(app, dt.timedelta(0))) < dt.timedelta(minutes=1)
            age_sessions(app, lifetime - dt.timedelta(minutes=1))
            assert client.get("/console/dashboard").status_code == 200
            # a minute past it: signed out
            age_sessions(app, lifetime + dt.timedelta(minutes=1))
            assert client.get("/console/dashboard").status_code == 302
        finally:
            app.extensions["eucalite"].compute.worker.shutdown()


def test_session_cookie_flags(app, tmp_path):
    response = sign_in(app.test_client())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("eucalite_console=")
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/console" in flags
    assert "secure" not in flags
    # served over HTTPS: the cookie is Secure too
    secure_app = make_app(tmp_path / "https", public_url="https://cloud.example")
    try:
        cookie = sign_in(secure_app.test_client()).headers["Set-Cookie"]
        assert "secure" in [part.strip().lower() for part in cookie.split(";")]
    finally:
        secure_app.extensions["eucalite"].compute.worker.shutdown()


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example",
                                    "//evil.example/console", "http://evil.example/console",
                                    "/\\evil.example", "javascript:alert(1)"])
def test_no_open_redirect_after_sign_in(app, target):
    from urllib.parse import quote

    response = sign_in(app.test_client(), next_url=quote(target, safe=""))
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert not location.netloc or location.netloc == "localhost"
    assert location.path == "/console/dashboard"


def test_home_and_static(app):
    client = app.test_client()
    response = client.get("/console/")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/dashboard"
    css = client.get("/console/static/console.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "table.grid" in css.get_data(as_text=True)
    js = client.get("/console/static/console.js")
    assert js.status_code == 200 and "csrfToken" in js.get_data(as_text=True)


def test_a_bucket_named_console_cannot_shadow_the_console(live):
    s3 = live.client("s3")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.create_bucket(Bucket="console")
    assert error_code(raised) == "InvalidBucketName"
    assert "console" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    # /console still answers as the console
    import urllib.request

    with urllib.request.urlopen(live.base_url + "/console/login") as response:
        assert response.status == 200
        assert "Sign in to eucalite" in response.read().decode()


def test_objects_cannot_script_the_console(tmp_path):
    """An HTML object is served from the console's own origin; it comes sandboxed (an opaque
    origin), so a page someone uploaded cannot read console pages with the viewer's cookie."""
    from liveutil import start_live
    from s3util import acl_bucket

    live, server = start_live(tmp_path / "data")
    try:
        s3 = live.client("s3")
        acl_bucket(s3, "pages")         # its page is public-read
        s3.put_object(Bucket="pages", Key="evil.html", Body=b"<script>fetch('/console/')</script>",
                      ContentType="text/html", ACL="public-read")
        import requests

        response = requests.get(f"{live.base_url}/pages/evil.html", timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == "sandbox"
    finally:
        server.shutdown()
