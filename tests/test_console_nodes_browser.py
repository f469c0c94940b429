"""The nodes page's per-node overcommit form in a real browser (Playwright driving Debian's
Chromium): the fields sit in table cells and reach their form through the ``form``
attribute, which only a browser proves. Skipped, with the reason, when Chromium or
Playwright is missing."""
from __future__ import annotations

import pytest

from consoleutil import PASSWORD, browser_sign_in, chromium_page
from liveutil import start_live_node, stop_live
from eucalite import accounts
from eucalite.web.session import set_password



@pytest.fixture
def page(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", cpu_overcommit=2.0)
    with live.app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    try:
        with chromium_page(live) as page:
            yield page
    finally:
        stop_live(live, server)


def test_a_node_s_ratios_are_set_from_the_nodes_page(page):
    base = page.base
    browser_sign_in(page)
    page.goto(f"{base}/nodes")
    assert page.get_attribute("td[data-cores]", "data-cores") == "0/16"
    page.fill("input[name=cpu_overcommit]", "3")
    page.fill("input[name=memory_overcommit]", "1.5")
    page.click("button:has-text('Save')")
    page.wait_for_selector("td[data-cpu-ratio-of=node]")
    assert page.get_attribute("td[data-cores]", "data-cores") == "0/24"
    assert page.get_attribute("td[data-memory]", "data-memory") == "0/24576"
    page.fill("input[name=cpu_overcommit]", "")
    page.click("button:has-text('Save')")
    page.wait_for_selector("td[data-cpu-ratio-of=cloud]")
    assert page.get_attribute("td[data-cores]", "data-cores") == "0/16"
    assert page.get_attribute("td[data-memory]", "data-memory") == "0/24576"
