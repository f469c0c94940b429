"""The console's Bursting page (cloud admin only): targets with their state and the
instances on them; adding, disabling, checking and removing a target; bad input is the
AWS-style error on the page."""
from __future__ import annotations

import pytest

from burstutil import FakeRemote
from consoleutil import Console, console_app
from eucalite.burst.models import BurstTarget
from eucalite.db import db


@pytest.fixture
def app(tmp_path, monkeypatch):
    app = console_app(tmp_path)
    fake = FakeRemote()
    monkeypatch.setattr(app.extensions["eucalite"].burst, "remote", lambda target: fake)
    app.fake = fake
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


def test_the_admin_adds_checks_disables_and_removes_a_target(app):
    admin = Console(app)
    assert "No burst targets." in admin.text("/console/burst")
    assert 'href="/console/burst"' in admin.text("/console/dashboard")
    page = admin.page("/console/burst/add", {
        "name": "far", "endpoint": "https://ec2.far.test", "region": "far-1",
        "access_key_id": "AKIDFAR", "secret_access_key": "far-secret",
        "images": "emi-0a1b2c3d=ami-1\n", "types": "m1.small=t3.micro", "policy": "when-full"})
    assert "Burst target far is added (zone burst-far)." in page
    assert 'data-id="far" data-state="available"' in page
    assert "far-secret" not in page and "AKIDFAR" not in page
    assert "<code>emi-0a1b2c3d</code> → <code>ami-1</code>" in page
    with app.app_context():
        assert db.session.get(BurstTarget, "far").get_json("type_map") == {"m1.small": "t3.micro"}

    assert "Burst target far answers." in admin.page("/console/burst/far/check")
    app.fake.down = True
    page = admin.page("/console/burst/far/check")
    assert "Burst target far does not answer" in page
    assert 'data-state="unreachable"' in page
    app.fake.down = False
    page = admin.page("/console/burst/far/check")
    assert "Burst target far answers." in page and 'data-state="available"' in page

    # an instance placed there is listed under it, and keeps the target from going
    with app.app_context():
        from eucalite import accounts
        from eucalite.compute.instances import LaunchRequest
        from eucalite.compute.models import Image
        admin_account = accounts.get_account(accounts.ADMIN_ACCOUNT)
        db.session.add(Image(id="emi-0a1b2c3d", owner_id=admin_account.id, kind="machine",
                             name="img", state="available"))
        db.session.commit()
        principal = accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT,
                                                            accounts.ADMIN_USER))
        [row] = app.extensions["eucalite"].compute.run_instances(principal, LaunchRequest(
            "emi-0a1b2c3d", instance_type="m1.small", zone="burst-far"))
        instance_id = row.id
    app.extensions["eucalite"].compute.worker.wait()
    page = admin.text("/console/burst")
    assert 'data-instances="far"' in page and f'data-id="{instance_id}"' in page
    assert "terminate them first" in admin.page("/console/burst/far/remove")
    with app.app_context():
        app.extensions["eucalite"].compute.terminate(principal, [instance_id])
    app.extensions["eucalite"].compute.worker.wait()

    page = admin.page("/console/burst/far/enabled", {"enabled": "false"})
    assert "Burst target far is now disabled." in page and 'data-state="disabled"' in page
    assert "Burst target far is removed." in admin.page("/console/burst/far/remove")
    assert "No burst targets." in admin.text("/console/burst")


def test_bad_input_is_the_aws_style_error(app):
    admin = Console(app)
    page = admin.page("/console/burst/add", {
        "name": "x", "endpoint": "not-a-url", "region": "r", "access_key_id": "a",
        "secret_access_key": "b"})
    assert "InvalidParameterValue" in page and "not an http(s) URL" in page
    page = admin.page("/console/burst/add", {
        "name": "y", "endpoint": "https://e.test", "region": "r", "access_key_id": "a",
        "secret_access_key": "b", "images": "no-equals-sign"})
    assert "InvalidParameterValue" in page and "LOCAL=REMOTE" in page
    assert "InvalidParameterValue" in admin.page("/console/burst/nope/remove")


def test_the_page_is_for_the_cloud_admin_only(app):
    from eucalite import accounts
    from eucalite.web.session import set_password
    with app.app_context():
        accounts.create_account("other")
        set_password("other", "admin", "other-admin-pw")
    user = Console(app, "other", "admin", "other-admin-pw")
    assert user.get("/console/burst").status_code == 403
    assert user.post("/console/burst/add", {"name": "sneaky"}, follow=False).status_code == 403
    with app.app_context():
        assert db.session.get(BurstTarget, "sneaky") is None
