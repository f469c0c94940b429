"""The console's Quotas page: the cloud admin sees and edits every account's and user's
limits beside their usage, an account's root reads its account's and edits its users',
any other user reads its own; edits reach the enforcement the API sees."""
from __future__ import annotations

import re

import pytest

from eucalite import accounts
from eucalite.web.session import set_password

from consoleutil import PASSWORD, Console, console_app


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    with app.app_context():
        accounts.create_account("acme")
        accounts.create_user("acme", "dev")
        set_password("acme", "admin", PASSWORD)
        set_password("acme", "dev", PASSWORD)
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


def _row(text: str, key: str) -> str:
    match = re.search(rf'<tr data-id="{re.escape(key)}">(.*?)</tr>', text, re.S)
    assert match, key
    return match.group(1)


def test_cloud_admin_edits_account_and_user_quotas(app):
    admin = Console(app)
    text = admin.text("/console/quotas?account=acme")
    assert 'href="/console/quotas"' in text                     # in the nav
    assert 'name="ec2:quota-vminstancenumber"' in text           # editable
    page = admin.page("/console/quotas/set", {"account": "acme",
                                              "ec2:quota-vminstancenumber": "4",
                                              "s3:quota-bucketnumber": "2"})
    assert "Quotas saved." in page
    assert 'value="4"' in _row(page, "ec2:quota-vminstancenumber")
    assert 'value=""' in _row(page, "ec2:quota-snapshotnumber")
    # a user's own quotas
    page = admin.page("/console/quotas/set", {"account": "acme", "user": "dev",
                                              "ec2:quota-volumenumber": "3"})
    assert 'value="3"' in _row(page, "ec2:quota-volumenumber")
    with app.app_context():
        from eucalite import quotas
        acme = accounts.get_account("acme").id
        dev = accounts.get_user("acme", "dev").id
        assert quotas.limits(acme) == {"ec2:quota-vminstancenumber": 4,
                                       "s3:quota-bucketnumber": 2}
        assert quotas.limits(acme, dev) == {"ec2:quota-volumenumber": 3}
    # clearing every limit removes them
    admin.page("/console/quotas/set", {"account": "acme"})
    with app.app_context():
        assert quotas.limits(acme) == {}


def test_account_root_reads_its_own_and_edits_its_users(app):
    admin = Console(app)
    admin.page("/console/quotas/set", {"account": "acme", "ec2:quota-volumenumber": "7"})
    root = Console(app, account="acme")
    text = root.text("/console/quotas")
    assert "<td data-limit>7</td>" in _row(text, "ec2:quota-volumenumber")   # read-only
    assert "<input" not in _row(text, "ec2:quota-volumenumber")
    assert "/console/quotas?account=acme&amp;user=dev" in text
    page = root.page("/console/quotas/set", {"account": "acme",
                                             "ec2:quota-volumenumber": "99"})
    assert "AccessDenied" in page                        # its own account's: refused
    assert "<td data-limit>7</td>" in _row(page, "ec2:quota-volumenumber")
    page = root.page("/console/quotas/set", {"account": "acme", "user": "dev",
                                             "ec2:quota-volumenumber": "2"})
    assert 'value="2"' in _row(page, "ec2:quota-volumenumber")
    # another account's quotas are not its business
    assert root.get("/console/quotas?account=eucalyptus").status_code == 403


def test_a_user_reads_only_its_own(app):
    admin = Console(app)
    admin.page("/console/quotas/set", {"account": "acme", "user": "dev",
                                       "ec2:quota-snapshotnumber": "5"})
    dev = Console(app, account="acme", user="dev")
    text = dev.text("/console/quotas")
    assert "Quotas: acme / dev" in text
    assert "<td data-limit>5</td>" in _row(text, "ec2:quota-snapshotnumber")
    assert "<input name=" not in text
    assert dev.get("/console/quotas?account=acme&user=admin").status_code == 403
    page = dev.page("/console/quotas/set", {"account": "acme", "user": "dev",
                                            "ec2:quota-snapshotnumber": "50"})
    assert "AccessDenied" in page
