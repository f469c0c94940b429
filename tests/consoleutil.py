"""What the console's test-client tests share: an app with node duty on the fake
hypervisor and the cloud admin's console password, signing in with a CSRF token, and
whether a client (or a copy of its cookie) is still signed in."""
from __future__ import annotations

import re

from eucalite import accounts, create_app
from eucalite.web.session import set_password

PASSWORD = "password123"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


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
