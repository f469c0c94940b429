"""The console's Auto Scaling pages in a real browser (Playwright driving Debian's
Chromium) against a live cloud on the fake hypervisor: a launch configuration and a group
made through the forms, the group's instances and scaling activities shown after the
keeper's passes (run by the test: the live server runs no background loop), the desired
capacity set from the group's page, and the group deleted with its instances after the
confirmation. Skipped, with the reason, when Chromium or Playwright is missing."""
from __future__ import annotations

import re

import pytest

from consoleutil import PASSWORD, browser_sign_in, chromium_page
from ec2util import make_image
from liveutil import start_live_node, stop_live
from eucalite import accounts
from eucalite.db import db
from eucalite.web.session import set_password

IMAGE = "emi-0a5c0a1e"


@pytest.fixture
def page(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    make_image(live, IMAGE)
    with live.app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    try:
        with chromium_page(live) as page:
            page.problems = []
            page.on("pageerror", lambda error: page.problems.append(str(error)))
            page.on("response", lambda response: page.problems.append(
                f"{response.status} {response.url}") if response.status >= 400
                and not response.url.endswith("/favicon.ico") else None)
            yield page
    finally:
        stop_live(live, server)


def run_pass(live) -> int:
    with live.app.app_context():
        acted = live.services.autoscaling.run_pass()
        db.session.remove()
    return acted


def instance_states(page) -> dict[str, str]:
    """Instance id -> lifecycle state, as the group's page shows them."""
    return {row.get_attribute("data-instance"): row.locator("[data-lifecycle]").inner_text()
            for row in page.locator("tr[data-instance]").all()}


def test_create_a_group_and_watch_it_scale(page):
    browser_sign_in(page)

    page.click("nav a:has-text('Auto Scaling')")
    page.wait_for_url(re.compile(r".*/console/autoscaling$"))
    assert page.locator("#no-groups").is_visible()

    form = page.locator("#create-launch-configuration")
    form.locator("input[name=name]").fill("web-lc")
    form.locator("select[name=image_id]").select_option(IMAGE)
    form.locator("select[name=instance_type]").select_option("m1.small")
    form.locator("textarea[name=user_data]").fill("#!/bin/sh\necho hi\n")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("p.flash.ok:has-text('Created launch configuration web-lc.')")

    form = page.locator("#create-group")
    form.locator("input[name=name]").fill("web")
    form.locator("select[name=source]").select_option("lc:web-lc")
    form.locator("input[name=min_size]").fill("1")
    form.locator("input[name=desired]").fill("2")
    form.locator("input[name=max_size]").fill("3")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("p.flash.ok:has-text('Created Auto Scaling group web.')")
    assert page.locator("h1").inner_text() == "Auto Scaling group web"

    assert run_pass(page.live) == 2
    page.reload()
    states = instance_states(page)
    assert len(states) == 2 and set(states.values()) <= {"Pending", "InService"}
    descriptions = page.locator("tr[data-activity] [data-description]").all_inner_texts()
    assert sorted(descriptions) == sorted(f"Launching a new EC2 instance: {instance_id}"
                                          for instance_id in states)

    # an instance's id leads to its page
    first = sorted(states)[0]
    page.click(f"a:has-text('{first}')")
    page.wait_for_url(re.compile(rf".*/console/instances/{first}$"))
    page.go_back()

    page.fill("#set-desired input[name=desired]", "3")
    page.click("#set-desired button[type=submit]")
    page.wait_for_selector("p.flash.ok:has-text('The desired capacity of web is now 3.')")
    assert page.locator("#settings [data-desired]").inner_text() == "3"
    assert run_pass(page.live) == 1
    page.reload()
    assert len(instance_states(page)) == 3
    assert page.locator("tr[data-activity]").count() == 3

    # a refusal shows the API's words
    page.fill("#set-desired input[name=desired]", "5")
    page.click("#set-desired button[type=submit]")
    page.wait_for_selector("p.flash.error:has-text('ValidationError: New SetDesiredCapacity "
                           "value 5 is above max value 3')")

    # delete with its instances, after the confirmation
    page.once("dialog", lambda dialog: dialog.accept())
    page.check("#delete-group input[name=force]")
    page.click("#delete-group button[type=submit]")
    page.wait_for_selector("p.flash.ok:has-text('Deleting Auto Scaling group web and its "
                           "instances.')")
    assert "Delete in progress" in page.locator("tr[data-group=web]").inner_text()
    for _ in range(4):
        run_pass(page.live)
    page.reload()
    assert page.locator("#no-groups").is_visible()
    assert page.problems == []
