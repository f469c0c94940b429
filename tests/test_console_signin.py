"""Console sign-in: sessions end on the server (sign-out, a password change in the console
or from the command line, the user or account deleted), a new CSRF token at sign-in, and
sign-in throttling per client address and per account+user."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from eucalite import accounts
from eucalite.cli import main as cli_main
from eucalite.web.session import set_password

from consoleutil import (PASSWORD, console_app, cookie_of, is_signed_in, replayed, signed_in,
                         token_of)


@pytest.fixture
def app(tmp_path):
    """The console app with a second user, bob, who has the same password as the admin."""
    app = console_app(tmp_path)
    with app.app_context():
        accounts.create_user("eucalyptus", "bob")
        set_password("eucalyptus", "bob", PASSWORD)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


# --- sessions end on the server -------------------------------------------------------------

def test_a_cookie_replayed_after_sign_out_is_refused(app):
    client, token = signed_in(app)
    cookie = cookie_of(client)
    assert is_signed_in(replayed(app, cookie))
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert not is_signed_in(replayed(app, cookie))
    # nor can a copy act: a POST with the cookie's own token is sent to sign in, not obeyed
    response = replayed(app, cookie).post("/console/accounts/create",
                                          data={"name": "replayed", "csrf_token": token})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/console/login"
    with app.app_context():
        assert "replayed" not in [a.name for a in accounts.list_accounts()]


def test_signing_in_gives_a_new_csrf_token(app):
    """Someone who planted their own (anonymous) console cookie in a browser knows its CSRF
    token; once the user signs in with that browser, the token is worth nothing."""
    client = app.test_client()
    planted = token_of(client.get("/console/login"))
    response = client.post("/console/login", data={"account": "eucalyptus", "user": "admin",
                                                   "password": PASSWORD,
                                                   "csrf_token": planted})
    assert response.status_code == 302
    assert token_of(client.get("/console/dashboard")) != planted
    response = client.post("/console/accounts/create", data={"name": "planted",
                                                             "csrf_token": planted})
    assert response.status_code == 400
    with app.app_context():
        assert "planted" not in [a.name for a in accounts.list_accounts()]


def test_signing_out_ends_only_that_session(app):
    first, token = signed_in(app, user="bob")
    second, _ = signed_in(app, user="bob")
    first.post("/console/logout", data={"csrf_token": token})
    assert not is_signed_in(first) and is_signed_in(second)


def test_a_password_change_in_the_console_ends_the_users_sessions(app):
    bob, _ = signed_in(app, user="bob")
    bob_cookie = cookie_of(bob)
    admin, token = signed_in(app)
    other_admin, _ = signed_in(app)
    response = admin.post("/console/accounts/eucalyptus/users/bob/password",
                          data={"password": "another-pass-1", "csrf_token": token})
    assert response.status_code == 302
    assert not is_signed_in(bob) and not is_signed_in(replayed(app, bob_cookie))
    assert is_signed_in(other_admin)
    signed_in(app, user="bob", password="another-pass-1")

    # the admin changing their own password stays signed in here, and only here
    response = admin.post("/console/accounts/eucalyptus/users/admin/password",
                          data={"password": "new-admin-pass", "csrf_token": token})
    assert response.status_code == 302
    assert is_signed_in(admin)
    assert not is_signed_in(other_admin)


def test_a_password_change_from_the_command_line_ends_the_users_sessions(app):
    bob, _ = signed_in(app, user="bob")
    result = CliRunner().invoke(cli_main, [
        "account", "password", "eucalyptus", "bob", "--password", "from-the-cli",
        "--data-dir", app.config["EUCALITE"]["data_dir"]])
    assert result.exit_code == 0, result.output
    assert not is_signed_in(bob)


def test_deleting_the_user_ends_its_sessions_even_if_recreated(app):
    bob, _ = signed_in(app, user="bob")
    cookie = cookie_of(bob)
    admin, token = signed_in(app)
    admin.post("/console/accounts/eucalyptus/users/bob/delete", data={"csrf_token": token})
    with app.app_context():                  # a new user of the same name and password
        accounts.create_user("eucalyptus", "bob")
        set_password("eucalyptus", "bob", PASSWORD)
    assert not is_signed_in(replayed(app, cookie))


def test_deleting_the_account_ends_its_users_sessions(app):
    with app.app_context():
        accounts.create_account("research")
        set_password("research", "admin", PASSWORD)
    user, _ = signed_in(app, account="research")
    cookie = cookie_of(user)
    with app.app_context():
        accounts.delete_account("research")
        accounts.create_account("research")
        set_password("research", "admin", PASSWORD)
    assert not is_signed_in(replayed(app, cookie))




# --- sign-in throttling ----------------------------------------------------------------------

class Clock:
    """A clock the test moves by hand (the throttle's delays without sleeping)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app):
    clock = Clock()
    throttle(app).clock = clock
    return clock


def throttle(app):
    from eucalite.web.throttle import of_app

    return of_app(app)


def attempt(app, address, password="wrong-password", user="admin"):
    """One sign-in from client *address* (a fresh browser each time)."""
    client = app.test_client()
    environ = {"REMOTE_ADDR": address}
    token = token_of(client.get("/console/login", environ_base=environ))
    return client.post("/console/login", environ_base=environ,
                       data={"account": "eucalyptus", "user": user, "password": password,
                             "csrf_token": token})


def refused_for(response) -> int:
    """Seconds a refused (429) sign-in says to wait."""
    assert response.status_code == 429, response.status_code
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    return int(response.headers["Retry-After"])


def test_wrong_passwords_from_one_address_meet_a_growing_delay(app, clock):
    free = throttle(app).free_per_address
    statuses = [attempt(app, "192.0.2.1").status_code for _ in range(30)]
    assert statuses == [401] * free + [429] * (30 - free)
    # even the right password waits: the password is not even looked at
    assert refused_for(attempt(app, "192.0.2.1", PASSWORD)) == 1
    waits = []
    for _ in range(4):
        waits.append(refused_for(attempt(app, "192.0.2.1")))
        clock.now += waits[-1]
        assert attempt(app, "192.0.2.1").status_code == 401
    assert waits == [1, 2, 4, 8]
    # up to the cap, and never more however long it goes on
    cap = throttle(app).max_delay
    while waits[-1] < cap:
        waits.append(refused_for(attempt(app, "192.0.2.1")))
        clock.now += waits[-1]
        assert attempt(app, "192.0.2.1").status_code == 401
    assert waits[4:] == [16, 32, 64, 128, 256, 512, cap]
    assert refused_for(attempt(app, "192.0.2.1")) == cap
    # another address is not held up by this one (for another user: this one's own count
    # holds up new addresses now; see below)
    assert attempt(app, "192.0.2.2", PASSWORD, user="bob").status_code == 302
    # and a quiet while later, the address starts afresh
    clock.now += throttle(app).forget_after + throttle(app).max_delay
    assert attempt(app, "192.0.2.1", PASSWORD).status_code == 302


def test_an_ipv6_client_cannot_dodge_by_changing_its_address(app, clock):
    free = throttle(app).free_per_address
    for n in range(free):
        assert attempt(app, f"2001:db8::{n + 1:x}").status_code == 401
    assert attempt(app, "2001:db8::ffff").status_code == 429    # the same /64
    assert attempt(app, "2001:db8:0:1::1", PASSWORD).status_code == 302


def test_guessing_one_users_password_from_many_addresses(app, clock):
    """Past the per-user allowance, the user's sign-in waits from any new address; but an
    address the user signed in from before still gets in, so an attacker elsewhere cannot
    lock the real user out."""
    assert attempt(app, "198.51.100.7", PASSWORD).status_code == 302
    free = throttle(app).free_per_user
    for n in range(free):
        assert attempt(app, f"192.0.2.{n + 1}").status_code == 401
    assert refused_for(attempt(app, "203.0.113.9", PASSWORD)) >= 1
    assert attempt(app, "198.51.100.7", PASSWORD).status_code == 302
    # other users are not affected
    assert attempt(app, "203.0.113.9", PASSWORD, user="bob").status_code == 302
    # the real user's sign-in cleared the count: a new address gets in again
    assert attempt(app, "203.0.113.10", PASSWORD).status_code == 302


def test_parallel_guesses_cannot_slip_past_the_allowance(app, clock):
    """Attempts are counted when they start, not when their password check ends: 30 at
    once from one address get no more password checks than 30 in a row."""
    import threading

    free = throttle(app).free_per_address
    barrier = threading.Barrier(12)
    statuses = []

    def guess():
        client = app.test_client()
        environ = {"REMOTE_ADDR": "192.0.2.50"}
        token = token_of(client.get("/console/login", environ_base=environ))
        barrier.wait()
        statuses.append(client.post("/console/login", environ_base=environ, data={
            "account": "eucalyptus", "user": "admin", "password": "wrong-password",
            "csrf_token": token}).status_code)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * free + [429] * (12 - free)


def test_an_unknown_user_costs_the_same_password_check(app, monkeypatch):
    """A missing account or user is checked against a hash as a real one is, so the answer
    takes as long and does not tell which accounts and users exist."""
    import werkzeug.security

    checks = []
    real = werkzeug.security.check_password_hash
    monkeypatch.setattr(werkzeug.security, "check_password_hash",
                        lambda *args: checks.append(1) or real(*args))
    for user in ("admin", "nobody"):
        checks.clear()
        assert attempt(app, "192.0.2.60", user=user).status_code == 401
        assert len(checks) == 1, user
