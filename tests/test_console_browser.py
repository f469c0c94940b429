"""The management console in a real browser: Playwright driving Debian's Chromium.

One walk through what a lab user does: sign in, import the tiny guest image with the upload
form, launch an instance and watch it reach ``running`` without reloading, read its console
output, create a volume and attach it, create a bucket, upload a file and download it again
(same bytes), create a user and sign in as them, and check that a second account sees none
of the first one's resources; the Content-Security-Policy blocks nothing on the way. A
second walk, on the fake hypervisor with a public pool, goes through security groups (the
rule editor), addresses and the launch form's group choice. A screenshot of every page is
saved under ``$EUCALITE_TEST_OUTPUT/console`` (default ``test-output/console``).

Guests are real (QEMU through libvirt) when EUCALITE_TEST_LIBVIRT_URI names a real libvirt
(``./setup.sh test`` does), else the fake hypervisor runs them. Skipped, with the reason,
when Chromium or Playwright is missing.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from guestutil import qemu_reachable_dir
from liveutil import start_live, start_live_node, stop_live

REAL_URI = os.environ.get("EUCALITE_TEST_LIBVIRT_URI", "")
GUEST_DIR = os.environ.get("EUCALITE_TEST_GUEST_DIR", "")
OUTPUT = Path(os.environ.get("EUCALITE_TEST_OUTPUT", "test-output")) / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery"
REAL = REAL_URI.startswith("qemu") and os.geteuid() == 0
BOOT_TIMEOUT_MS = 180_000 if REAL else 30_000


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not os.path.exists(CHROMIUM):
        return "Chromium is not installed (apt install chromium)"
    return None


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """A live eucalite with node duty (real guests when possible), the admin's password set,
    and the tiny guest's files ready to upload."""
    from eucalite.cluster import guest
    from eucalite.server import start_node_services
    from eucalite.web.session import set_password

    reason = _missing()
    if reason:
        print(f"skipping the browser test: {reason}")
        pytest.skip(reason)
    top = qemu_reachable_dir("eucalite-console-test-")
    if REAL:
        options = dict(hypervisor="libvirt", libvirt_uri=REAL_URI,
                       instance_subnet="10.215.0.0/24", instance_network="eucalite-webtest",
                       instance_bridge="euwebbr0")
        files = guest.build(Path(GUEST_DIR) if GUEST_DIR else top / "guest",
                            log=lambda *args: None)
    else:
        options = dict(hypervisor="fake")
        files = _fake_guest(top / "guest")
    live, server = start_live(top / "data", node=True, ebs_export="local",
                              reconcile_interval=3600, **options)
    services = live.app.extensions["eucalite"]
    try:
        start_node_services(live.app)
        assert services.cluster.node_problem is None, services.cluster.node_problem
        with live.app.app_context():
            set_password("eucalyptus", "admin", PASSWORD)
        live.files = files
        live.url = f"http://127.0.0.1:{live.port}/console"
        yield live
    finally:
        stop_live(live, server, "eucalite-webtest" if REAL else None)
        shutil.rmtree(top, ignore_errors=True)


def _fake_guest(directory: Path):
    """Small stand-in files for the image import when no real hypervisor runs them."""
    from types import SimpleNamespace

    directory.mkdir(parents=True)
    paths = {}
    for name, size in (("vmlinuz", 64 * 1024), ("initrd.gz", 32 * 1024), ("root.img", 2**20)):
        paths[name] = directory / name
        paths[name].write_bytes(os.urandom(size))
    return SimpleNamespace(kernel=paths["vmlinuz"], ramdisk=paths["initrd.gz"],
                           root=paths["root.img"])


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield browser
        browser.close()


class Shots:
    """Screenshots of each page, numbered in the order they were taken."""

    def __init__(self):
        OUTPUT.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, page, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(OUTPUT / f"{self.count:02d}-{name}.png"), full_page=True)


def _sign_in(page, base: str, account: str, user: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=account]", account)
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(re.compile(r".*/console/dashboard"))


def _sign_out(page) -> None:
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r".*/console/login"))


def test_a_lab_user_runs_the_cloud_from_the_browser(console, browser, tmp_path):
    shot = Shots()
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())          # data-confirm prompts
    # anything the Content-Security-Policy blocks shows as a console error: there must be none
    blocked = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)
    base = console.url

    _sign_in(page, base, "eucalyptus", "admin", PASSWORD)
    shot(page, "dashboard")

    # import the tiny guest: three files through the upload form with its progress bar
    page.goto(f"{base}/images")
    page.set_input_files("input[name=kernel]", str(console.files.kernel))
    page.set_input_files("input[name=ramdisk]", str(console.files.ramdisk))
    page.set_input_files("input[name=root]", str(console.files.root))
    page.fill("input[name=name]", "tiny")
    page.click("button:has-text('Import')")
    page.wait_for_selector("text=/emi-[0-9a-f]{8}/", timeout=60_000)
    emi = re.search(r"emi-[0-9a-f]{8}", page.content()).group(0)
    shot(page, "images")

    # launch it and watch it reach running without reloading the page
    page.goto(f"{base}/instances")
    page.select_option("select[name=image_id]", emi)
    page.fill("textarea[name=user_data]", "hello from the console")
    page.fill("input[name=name]", "web-1")
    page.click("button:has-text('Launch')")
    row = page.wait_for_selector("tr[data-state=running]", timeout=BOOT_TIMEOUT_MS)
    instance_id = row.get_attribute("data-id")
    assert instance_id.startswith("i-")
    shot(page, "instances")

    # its console output
    page.goto(f"{base}/instances/{instance_id}")
    marker = "EUCALITE-GUEST ready" if REAL else f"eucalite fake console for {instance_id}"
    for _ in range(BOOT_TIMEOUT_MS // 2000):
        if marker in page.inner_text("pre.console"):
            break
        page.wait_for_timeout(2000)
        page.reload()
    assert marker in page.inner_text("pre.console")
    if REAL:
        assert f"EUCALITE-GUEST instance-id={instance_id}" in page.inner_text("pre.console")
    shot(page, "instance-detail")

    # a volume, attached to the instance
    page.goto(f"{base}/volumes")
    page.fill("input[name=size]", "1")
    page.click("button:has-text('Create volume')")
    volume_row = page.wait_for_selector("tr[data-id^=vol-]:has(button:has-text('Attach'))",
                                        timeout=30_000)
    volume_id = volume_row.get_attribute("data-id")
    volume_row.query_selector("select[name=instance_id]").select_option(instance_id)
    volume_row.query_selector("button:has-text('Attach')").click()
    page.wait_for_selector(f"tr[data-id={volume_id}]:has-text('attached')", timeout=60_000)
    shot(page, "volumes")

    # a bucket: upload a file, download it again
    page.goto(f"{base}/buckets")
    page.fill("input[name=name]", "console-test-bucket")
    page.click("button:has-text('Create bucket')")
    page.click("a:has-text('console-test-bucket')")
    payload = os.urandom(300_000)
    upload = tmp_path / "report.bin"
    upload.write_bytes(payload)
    page.set_input_files("input[name=file]", str(upload))
    page.click("button:has-text('Upload')")
    page.wait_for_selector("a:has-text('report.bin')", timeout=30_000)
    shot(page, "bucket")
    with page.expect_download() as download_info:
        page.click("a:has-text('Download')")
    assert Path(download_info.value.path()).read_bytes() == payload

    # a user of this account, and a second account
    page.goto(f"{base}/accounts/eucalyptus")
    page.fill("input[name=user]", "alice")
    page.click("button:has-text('Create user')")
    alice = page.locator("section[data-user=alice]")
    alice.locator("input[name=password]").fill(PASSWORD)
    alice.locator("button:has-text('Set password')").click()
    page.wait_for_selector("section[data-user=alice] [data-password=yes]")
    shot(page, "account")
    # a user may do only what a policy allows: let alice see the account's instances
    page.goto(f"{base}/iam/user/alice/inline")
    page.fill("input[name=policy_name]", "read-instances")
    page.fill("textarea[name=document]", '{"Version": "2012-10-17", "Statement": [{"Effect": '
                                         '"Allow", "Action": "ec2:Describe*", "Resource": "*"}]}')
    page.click("button:has-text('Save policy')")
    page.wait_for_selector("#inline-policies [data-policy=read-instances]")
    page.goto(f"{base}/accounts")
    page.fill("input[name=name]", "other")
    page.click("button:has-text('Create account')")
    page.goto(f"{base}/accounts/other")
    other_admin = page.locator("section[data-user=admin]")
    other_admin.locator("input[name=password]").fill(PASSWORD)
    other_admin.locator("button:has-text('Set password')").click()
    page.wait_for_selector("section[data-user=admin] [data-password=yes]")
    page.goto(f"{base}/nodes")
    shot(page, "nodes")
    _sign_out(page)

    # alice belongs to the same account: she sees its instance
    _sign_in(page, base, "eucalyptus", "alice", PASSWORD)
    page.goto(f"{base}/instances")
    assert page.query_selector(f"tr[data-id={instance_id}]") is not None
    assert page.query_selector(f"tr[data-id={instance_id}] button") is None   # may not act
    assert page.query_selector("#launch") is None
    shot(page, "alice-instances")
    _sign_out(page)

    # the second account sees none of it
    _sign_in(page, base, "other", "admin", PASSWORD)
    for path, resource in (("instances", instance_id), ("volumes", volume_id),
                           ("buckets", "console-test-bucket"), ("images", emi)):
        page.goto(f"{base}/{path}")
        assert resource not in page.content(), f"account other sees {resource} on {path}"
    shot(page, "other-account")
    page.goto(f"{base}/accounts")                # nor is it the cloud admin
    assert "Access denied" in page.content()
    shot(page, "other-denied")
    _sign_out(page)

    # back as the admin: terminate through the console
    _sign_in(page, base, "eucalyptus", "admin", PASSWORD)
    page.goto(f"{base}/instances")
    page.locator(f"tr[data-id={instance_id}] button:has-text('Terminate')").click()
    page.wait_for_selector(f"tr[data-id={instance_id}][data-state=terminated]",
                           timeout=60_000)
    shot(page, "terminated")
    context.close()
    assert blocked == []


@pytest.fixture
def network_console(tmp_path):
    """A live eucalite on the fake hypervisor (its firewall in memory, so the host's network
    is untouched) with a public pool of three addresses, a machine image and the admin's
    password: the network pages' flow needs no real guest."""
    from eucalite import accounts
    from eucalite.compute.models import Image
    from eucalite.db import db
    from eucalite.web.session import set_password

    reason = _missing()
    if reason:
        pytest.skip(reason)
    live, server = start_live_node(tmp_path / "data", hypervisor="fake", ebs_export="local",
                                   reconcile_interval=3600, public_interface="lab0",
                                   public_ips=["198.51.100.10-198.51.100.12"])
    try:
        with live.app.app_context():
            set_password("eucalyptus", "admin", PASSWORD)
            db.session.add(Image(id="emi-0a1b2c3d", owner_id=accounts.get_account(
                "eucalyptus").id, kind="machine", name="tiny", state="available"))
            db.session.commit()
        live.url = f"http://127.0.0.1:{live.port}/console"
        yield live
    finally:
        stop_live(live, server)


def test_security_groups_and_addresses_from_the_browser(network_console, browser):
    """Create a group, add a rule with the rule editor, allocate an address, launch into the
    group and see the instance's public IP, associate the address, release it."""
    shot = Shots()
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    blocked = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)
    base = network_console.url
    pool = {"198.51.100.10", "198.51.100.11", "198.51.100.12"}
    _sign_in(page, base, "eucalyptus", "admin", PASSWORD)

    page.goto(f"{base}/securitygroups")
    page.fill("#create-group input[name=name]", "web")
    page.fill("#create-group input[name=description]", "web servers")
    page.click("button:has-text('Create group')")
    page.wait_for_selector("h1:has-text('web')")
    group_id = re.search(r"sg-[0-9a-f]+", page.inner_text("h1")).group(0)
    page.select_option("#add-rule select[name=protocol]", "tcp")
    page.fill("#add-rule input[name=ports]", "80")
    page.fill("#add-rule input[name=cidr]", "198.51.100.0/24")
    page.fill("#add-rule input[name=description]", "http from the lab")
    page.click("button:has-text('Add rule')")
    rule = page.wait_for_selector("#inbound tr[data-rule]:has-text('http from the lab')")
    assert "tcp" in rule.inner_text() and "198.51.100.0/24" in rule.inner_text()
    shot(page, "security-group")
    page.goto(f"{base}/securitygroups")
    assert page.inner_text(f"tr[data-id={group_id}] td[data-count=inbound]") == "1"

    page.goto(f"{base}/addresses")
    page.click("button:has-text('Allocate address')")
    elastic = page.wait_for_selector("#addresses tr[data-ip]").get_attribute("data-ip")
    assert elastic in pool

    page.goto(f"{base}/instances")
    page.select_option("select[name=image_id]", "emi-0a1b2c3d")
    page.select_option("select[name=security_group_ids]", [group_id])
    page.click("button:has-text('Launch')")
    row = page.wait_for_selector("tr[data-state=running]", timeout=30_000)
    instance_id = row.get_attribute("data-id")
    launch_ip = page.inner_text(f"tr[data-id={instance_id}] td.public-ip")
    assert launch_ip in pool - {elastic}
    shot(page, "instance-public-ip")
    page.goto(f"{base}/instances/{instance_id}")
    assert page.inner_text(f"a[href$='/securitygroups/{group_id}']") == "web"

    page.goto(f"{base}/addresses")
    address = page.locator(f"tr[data-ip='{elastic}']")
    address.locator("select[name=instance_id]").select_option(instance_id)
    address.locator("button:has-text('Associate')").click()
    page.wait_for_selector(f"tr[data-ip='{elastic}'][data-instance={instance_id}]")
    shot(page, "address-associated")
    page.goto(f"{base}/instances")
    assert page.inner_text(f"tr[data-id={instance_id}] td.public-ip") == elastic

    page.goto(f"{base}/addresses")
    page.locator(f"tr[data-ip='{elastic}'] button:has-text('Disassociate')").click()
    page.wait_for_selector(f"tr[data-ip='{elastic}'][data-instance='']")
    page.locator(f"tr[data-ip='{elastic}'] button:has-text('Release')").click()
    page.wait_for_selector(f"text=Released {elastic}.")
    assert page.query_selector(f"tr[data-ip='{elastic}']") is None
    shot(page, "address-released")
    context.close()
    assert blocked == []
