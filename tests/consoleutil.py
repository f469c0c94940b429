"""What the console's test-client tests share: an app with node duty on the fake
hypervisor and the cloud admin's console password, signing in with a CSRF token, a
signed-in `Console` that GETs pages and POSTs forms, and whether a client (or a copy of
its cookie) is still signed in; and for the browser tests, a headless Chromium page on a
live server's console (:func:`chromium_page`)."""
from __future__ import annotations

import re
import shutil
import json
from contextlib import contextmanager

import pytest

from eucalite import accounts, create_app
from eucalite.web.session import set_password

PASSWORD = "password123"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: Debian's Chromium, which Playwright drives (setup.sh installs it).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def chromium_page(live):
    """A page of a headless Chromium driven by Playwright, with ``page.live`` and
    ``page.base`` (*live*'s console URL); the test is skipped, with the reason, when
    Playwright or Chromium is missing."""
    playwright_api = pytest.importorskip("playwright.sync_api",
                                        reason="playwright is not installed")
    if not shutil.which(CHROMIUM):
        pytest.skip("Chromium is not installed (apt install chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page()
            page.live = live
            page.base = f"http://127.0.0.1:{live.port}/console"
            yield page
        finally:
            browser.close()


def browser_sign_in(page, account: str = accounts.ADMIN_ACCOUNT,
                    user: str = accounts.ADMIN_USER, password: str = PASSWORD) -> None:
    """Sign *page* (a :func:`chromium_page`) in through the login form and wait for the
    dashboard."""
    page.goto(f"{page.base}/login")
    page.fill("input[name=account]", account)
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r".*/console/dashboard"))


def console_app(tmp_path, **config):
    """An app with node duty on the fake hypervisor, volumes as local files, and the
    admin's console password PASSWORD. Shut its worker down after the test."""
    app = create_app({"data_dir": str(tmp_path / "data"), "node": True, "hypervisor": "fake",
                      "ebs_export": "local", **config})
    with app.app_context():
        assert app.extensions["eucalite"].cluster.start_node_duty() is None
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    return app


def token_of(response) -> str:
    """The CSRF token in a console page."""
    return TOKEN.search(response.get_data(as_text=True)).group(1)


def signed_in(app, account="eucalyptus", user="admin", password=PASSWORD):
    """(test client signed in as *user* of *account*, its session's CSRF token)."""
    client = app.test_client()
    token = token_of(client.get("/console/login"))
    response = client.post("/console/login", data={"account": account, "user": user,
                                                   "password": password,
                                                   "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client, token_of(client.get("/console/dashboard"))   # a new token once signed in



class Console:
    """A test client signed in to the console as *user* of *account*: `client` (the Flask
    test client, for requests the helpers below do not make) and `token` (its session's
    CSRF token), which every `post` and `page` adds to the form."""

    def __init__(self, app, account="eucalyptus", user="admin", password=PASSWORD):
        self.app = app
        self.client, self.token = signed_in(app, account, user, password)

    def get(self, path, **kwargs):
        """The response to GET *path* (redirects not followed unless asked in *kwargs*)."""
        return self.client.get(path, **kwargs)

    def text(self, path, **kwargs) -> str:
        """The HTML of GET *path*, asserting it answered 200."""
        response = self.client.get(path, **kwargs)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)

    def post(self, path, data=None, follow=True, **kwargs):
        """The response to POSTing the form *data* (plus the CSRF token) to *path*,
        after following its redirect when *follow*."""
        return self.client.post(path, data=dict(data or {}, csrf_token=self.token),
                                follow_redirects=follow, **kwargs)

    def page(self, path, data=None, status=200, **kwargs) -> str:
        """The HTML of the page POSTing the form *data* to *path* leads to (after its
        redirect, so it shows the flashed message), asserting it answered *status*."""
        response = self.post(path, data, **kwargs)
        assert response.status_code == status, (path, response.status_code,
                                                response.get_data(as_text=True))
        return response.get_data(as_text=True)

COOKIE = "eucalite_console"


def cookie_of(client) -> str:
    """The value of *client*'s console session cookie."""
    return client.get_cookie(COOKIE, path="/console").value


def replayed(app, cookie: str):
    """A fresh client that sends *cookie* (a copy of someone's session cookie)."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie, path="/console")
    return client


def is_signed_in(client) -> bool:
    """Whether *client* gets the dashboard (rather than the way to the sign-in page)."""
    response = client.get("/console/dashboard")
    assert response.status_code in (200, 302), response.status_code
    return response.status_code == 200


def user_with_policy(app, user: str, *statements) -> Console:
    """A console signed in as a new user of the admin's account whose one inline policy
    holds *statements*."""
    with app.app_context():
        accounts.create_user("eucalyptus", user)
        set_password("eucalyptus", user, f"{user}-password")
        root = accounts.principal_of(accounts.get_user("eucalyptus", accounts.ADMIN_USER))
        app.extensions["eucalite"].iam.put_entity_policy(root, "user", user, "p", json.dumps(
            {"Version": "2012-10-17", "Statement": list(statements)}))
    return Console(app, "eucalyptus", user, f"{user}-password")
