"""The console's IAM pages in a real browser (Playwright driving Debian's Chromium): the JSON
policy editor (Format re-indents in the page; Validate shows the policy engine's own
sentence, which saving refuses with, nothing stored), the policy simulator naming the
deciding statement, and a project manager whose password must be reset at first sign-in
and whose console then shows the IAM pages and no compute. Skipped, with the reason, when
Chromium or Playwright is missing."""
from __future__ import annotations

import json
import re

import pytest

from consoleutil import PASSWORD, chromium_page
from liveutil import start_live_node, stop_live
from eucalite import accounts
from eucalite.policy import document, grammar
from eucalite.web.session import set_password

ACCOUNT = "lab"
#: Missing its Resource: the engine refuses it.
BAD = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*"}]}'
GOOD = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "ManageUsers", "Effect": "Allow", "Action": "iam:*", "Resource": "*"}]})


@pytest.fixture
def page(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    with live.app.app_context():
        accounts.create_account(ACCOUNT)
        set_password(ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    try:
        with chromium_page(live) as page:
            page.on("dialog", lambda dialog: dialog.accept())
            page.blocked = []
            page.on("console", lambda message: page.blocked.append(message.text)
                    if "Content Security Policy" in message.text else None)
            yield page
    finally:
        stop_live(live, server)


def sign_in(page, user: str, password: str) -> None:
    page.goto(f"{page.base}/login")
    page.fill("input[name=account]", ACCOUNT)
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")


def test_policy_editor_simulator_and_a_project_manager(page):
    base = page.base
    sign_in(page, "admin", PASSWORD)
    page.wait_for_url(re.compile(r".*/console/dashboard"))

    page.goto(f"{base}/iam/users")
    page.fill("#create-user input[name=name]", "pm")
    page.click("button:has-text('Create user')")
    page.wait_for_selector("h1:has-text('User pm')")
    page.fill("#set-password input[name=password]", "first-password")
    page.check("#set-password input[name=reset_required]")
    page.click("#set-password button")
    page.wait_for_selector("[data-reset=yes]")

    # the editor: Format in the page, Validate by the server, a refused save keeps nothing
    page.click("#add-inline")
    page.fill("input[name=policy_name]", "manage-users")
    page.fill("textarea[name=document]", "{not json")
    page.click("button:has-text('Format JSON')")
    page.wait_for_selector(".validation.error:has-text('Not JSON')")
    page.fill("textarea[name=document]", BAD)
    page.click("button:has-text('Format JSON')")
    formatted = page.input_value("textarea[name=document]")
    assert formatted == json.dumps(json.loads(BAD), indent=2)
    page.click("button:has-text('Validate')")
    refusal = document.check(BAD, grammar.IAM_INLINE_USER)
    page.wait_for_selector(".validation.error:has-text('MalformedPolicyDocument')")
    assert page.inner_text(".validation") == f"{refusal.code}: {refusal.message}"
    page.click("button:has-text('Save policy')")
    page.wait_for_selector(f".flash.error:has-text('{refusal.message}')")
    assert page.input_value("textarea[name=document]") == formatted       # kept to fix
    page.fill("textarea[name=document]", GOOD)
    page.click("button:has-text('Validate')")
    page.wait_for_selector(".validation.ok:has-text('The policy is valid.')")
    page.click("button:has-text('Save policy')")
    page.wait_for_selector("#inline-policies [data-policy=manage-users]")
    assert page.locator("#inline-policies tr[data-policy]").count() == 1

    # the simulator: the deciding statement for each action
    page.goto(f"{base}/iam/simulator")
    page.select_option("select[name=source]", label="user pm")
    page.fill("input[name=actions]", "iam:CreateUser ec2:RunInstances")
    page.click("button:has-text('Simulate')")
    page.wait_for_selector("#results")
    assert page.get_attribute("tr[data-action='iam:CreateUser']", "data-decision") == "allowed"
    assert "Allowed by statement 'ManageUsers'" in page.inner_text(
        "tr[data-action='iam:CreateUser'] .explain")
    assert page.get_attribute("tr[data-action='ec2:RunInstances']",
                              "data-decision") == "implicitDeny"
    page.click("button:has-text('Sign out')")

    # the project manager: a new password first, then IAM pages and no compute
    sign_in(page, "pm", "first-password")
    page.wait_for_url(re.compile(r".*/console/password"))
    page.goto(f"{base}/instances")
    page.wait_for_url(re.compile(r".*/console/password"))
    page.fill("input[name=old_password]", "first-password")
    page.fill("input[name=new_password]", "second-password")
    page.fill("input[name=confirm_password]", "second-password")
    page.click("button:has-text('Set password')")
    page.wait_for_url(re.compile(r".*/console/dashboard"))
    nav = page.inner_text("header nav")
    assert "Users" in nav and "Groups" in nav
    assert "Instances" not in nav and "Buckets" not in nav and "Accounts" not in nav
    page.goto(f"{base}/iam/users")
    assert page.locator("#create-user").count() == 1
    response = page.goto(f"{base}/instances")
    assert response.status == 403
    assert page.blocked == []
