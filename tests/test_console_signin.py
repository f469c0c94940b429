"""Console sign-in: sessions end on the server (sign-out, a password change in the console
or from the command line, the user or account deleted), and sign-in throttling per client
address and per account+user."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from eucalite import accounts
from eucalite.cli import main as cli_main
from eucalite.web.session import set_password

from consoleutil import PASSWORD, console_app, cookie_of, is_signed_in, replayed, signed_in


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
    copy = replayed(app, cookie)
    assert not is_signed_in(copy)
    # nor can the copy act: a POST with the old token is sent to sign in, not obeyed
    response = copy.post("/console/accounts/create", data={"name": "replayed",
                                                           "csrf_token": token})
    assert response.status_code in (302, 400)
    with app.app_context():
        assert "replayed" not in [a.name for a in accounts.list_accounts()]


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


