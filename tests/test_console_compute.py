"""The console's compute pages (instances, images, key pairs) through Flask's test client,
on the in-memory fake hypervisor."""
from __future__ import annotations

import base64
import re

import pytest

from eucalite import accounts
from eucalite.compute.models import Image, Instance
from eucalite.db import db
from eucalite.web.session import set_password

from consoleutil import PASSWORD, Console, console_app

@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    yield app
    app.extensions["eucalite"].compute.worker.wait()
    app.extensions["eucalite"].compute.worker.shutdown()


def make_image(app, image_id="emi-0a1b2c3d", account="eucalyptus", **fields) -> str:
    with app.app_context():
        owner = accounts.get_account(account).id
        db.session.add(Image(id=image_id, owner_id=owner, kind="machine", name=image_id,
                             state="available", **fields))
        db.session.commit()
    return image_id


def wait(app):
    app.extensions["eucalite"].compute.worker.wait()


def instance_ids(app) -> list[str]:
    with app.app_context():
        return [row.id for row in db.session.execute(
            db.select(Instance).order_by(Instance.launch_time)).scalars()]


def row_state(html: str, instance_id: str) -> str:
    match = re.search(rf'<tr data-id="{instance_id}" data-state="([^"]+)"', html)
    assert match, html
    return match.group(1)


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash (?:ok|error)"[^>]*>([^<]*)</p>', html)


def test_pages_need_sign_in_and_are_in_the_nav(app):
    client = app.test_client()
    for path in ("/console/instances", "/console/images", "/console/keypairs",
                 "/console/instances/rows"):
        response = client.get(path)
        assert response.status_code == 302 and "/console/login" in response.location
    page = Console(app).text("/console/dashboard")
    for label in ("Instances", "Images", "Key pairs"):
        assert f">{label}</a>" in page


def test_launch_run_console_tags_terminate(app):
    console = Console(app)
    image = make_image(app)
    page = console.text("/console/instances")
    assert f'<option value="{image}">' in page and "m1.small" in page
    assert 'data-refresh="/console/instances/rows"' in page

    page = console.post("/console/instances/launch", {
        "image_id": image, "instance_type": "m1.small", "count": "1", "key_name": "",
        "user_data": "#!/bin/sh\necho hi\n", "zone": "", "name": "web"}
    ).get_data(as_text=True)
    [instance_id] = instance_ids(app)
    assert f"Launched {instance_id}." in flashes(page)
    with app.app_context():
        row = db.session.get(Instance, instance_id)
        assert base64.b64decode(row.user_data) == b"#!/bin/sh\necho hi\n"
    wait(app)
    rows = console.text("/console/instances/rows")
    assert row_state(rows, instance_id) == "running"
    assert '<span class="state running">running</span>' in rows
    assert "<td>web</td>" in rows and "<html" not in rows
    assert row_state(console.text("/console/instances"), instance_id) == "running"

    detail = console.text(f"/console/instances/{instance_id}")
    assert f"eucalite fake console for {instance_id}" in detail
    assert '<pre class="console">' in detail and "echo hi" in detail
    assert "No volumes attached." in detail
    # an attached volume (recorded directly: attaching has its own tests) is listed
    from eucalite.ebs.models import Volume

    with app.app_context():
        db.session.add(Volume(id="vol-0123456789abcdef0", owner_id=row.owner_id, size_gb=1,
                              zone=row.zone, state="in-use", instance_id=instance_id,
                              device="/dev/sdf", attach_state="attached"))
        db.session.commit()
    detail = console.text(f"/console/instances/{instance_id}")
    assert re.search(r'<tr data-id="vol-0123456789abcdef0"><td>vol-0123456789abcdef0</td>'
                     r'<td>/dev/sdf</td>\s*<td><span class="state attached">attached', detail)
    with app.app_context():
        db.session.delete(db.session.get(Volume, "vol-0123456789abcdef0"))
        db.session.commit()

    # tags: add, overwrite, remove
    page = console.post(f"/console/instances/{instance_id}/tags",
                        {"op": "add", "key": "env", "value": "lab"}).get_data(as_text=True)
    assert '<tr data-tag="env"><td>env</td><td>lab</td>' in page
    page = console.post(f"/console/instances/{instance_id}/tags",
                        {"op": "delete", "key": "env"}).get_data(as_text=True)
    assert 'data-tag="env"' not in page and 'data-tag="Name"' in page
    page = console.post(f"/console/instances/{instance_id}/tags",
                        {"op": "add", "key": "", "value": "x"}).get_data(as_text=True)
    assert any(message.startswith("InvalidParameterValue") or
               message.startswith("MissingParameter") for message in flashes(page))

    # reboot works; stop is refused for an instance-store instance (AWS-style message)
    page = console.post(f"/console/instances/{instance_id}/action",
                        {"action": "reboot"}).get_data(as_text=True)
    assert f"Rebooting {instance_id}." in flashes(page)
    page = console.post(f"/console/instances/{instance_id}/action",
                        {"action": "stop", "next": "detail"}).get_data(as_text=True)
    assert any(message.startswith("UnsupportedOperation: ") for message in flashes(page))
    assert f"<h1>{instance_id}" in page
    wait(app)

    page = console.post(f"/console/instances/{instance_id}/action",
                        {"action": "terminate"}).get_data(as_text=True)
    assert f"Terminating {instance_id}." in flashes(page)
    assert row_state(page, instance_id) in ("shutting-down", "terminated")
    wait(app)
    assert row_state(console.text("/console/instances/rows"), instance_id) == "terminated"
    # the detail page still answers for a terminated instance
    assert '<span class="state terminated">' in console.text(f"/console/instances/{instance_id}")


def test_launch_errors_are_flashed_not_500(app):
    console = Console(app)
    make_image(app)
    for data, code in (
            ({"image_id": "emi-deadbeef"}, "InvalidAMIID.NotFound"),
            ({"image_id": "nonsense"}, "InvalidAMIID.Malformed"),
            ({"image_id": "emi-0a1b2c3d", "count": "many"}, "InvalidParameterValue"),
            ({"image_id": "emi-0a1b2c3d", "count": "0"}, "InvalidParameterValue"),
            ({"image_id": "emi-0a1b2c3d", "count": "500"}, "InsufficientInstanceCapacity"),
            ({"image_id": "emi-0a1b2c3d", "key_name": "nokey"}, "InvalidKeyPair.NotFound"),
            ({"image_id": "emi-0a1b2c3d", "instance_type": "z9.huge"},
             "InvalidParameterValue")):
        response = console.post("/console/instances/launch", data)
        assert response.status_code == 200
        messages = flashes(response.get_data(as_text=True))
        assert any(message.startswith(f"{code}: ") for message in messages), (data, messages)
    assert instance_ids(app) == []
    # an unknown action, and an action on an unknown instance
    page = console.post("/console/instances/i-0123456789abcdef0/action",
                        {"action": "terminate"}).get_data(as_text=True)
    assert any(m.startswith("InvalidInstanceID.NotFound: ") for m in flashes(page))
    page = console.post("/console/instances/i-0123456789abcdef0/action",
                        {"action": "explode"}).get_data(as_text=True)
    assert any(m.startswith("InvalidParameterValue: ") for m in flashes(page))


def test_csrf_is_required(app):
    console = Console(app)
    make_image(app)
    response = console.client.post("/console/instances/launch",
                                   data={"image_id": "emi-0a1b2c3d"})
    assert response.status_code == 400
    response = console.client.post("/console/keypairs/create", data={"name": "k"})
    assert response.status_code == 400
    response = console.client.post("/console/images/import", data={"name": "x"})
    assert response.status_code == 400
    assert instance_ids(app) == []


def test_key_pairs(app):
    console = Console(app)
    response = console.post("/console/keypairs/create", {"name": "mykey", "key_type": "rsa"},
                            follow=False)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="mykey.pem"')
    assert response.get_data(as_text=True).startswith("-----BEGIN RSA PRIVATE KEY-----")
    page = console.text("/console/keypairs")
    assert 'data-name="mykey"' in page and "PRIVATE KEY" not in page

    response = console.post("/console/keypairs/create",
                            {"name": "edkey", "key_type": "ed25519"}, follow=False)
    assert b"BEGIN OPENSSH PRIVATE KEY" in response.get_data()

    # a duplicate is the AWS error on the page, not a download or a 500
    response = console.post("/console/keypairs/create", {"name": "mykey"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert any(m.startswith("InvalidKeyPair.Duplicate: ") for m in flashes(page))
    assert "Content-Disposition" not in response.headers

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    page = console.post("/console/keypairs/import",
                        {"name": "laptop", "public_key": public + " me@laptop"}
                        ).get_data(as_text=True)
    assert "Imported key pair laptop." in flashes(page) and 'data-name="laptop"' in page
    page = console.post("/console/keypairs/import",
                        {"name": "bad", "public_key": "not a key"}).get_data(as_text=True)
    assert any(m.startswith("InvalidKeyPair.Format: ") for m in flashes(page))

    # the key pair is offered at launch
    assert '<option value="laptop">laptop</option>' in console.text("/console/instances")

    key_id = re.search(r'<tr data-id="(key-[^"]+)" data-name="laptop"', page).group(1)
    page = console.post("/console/keypairs/delete", {"key_pair_id": key_id, "name": "laptop"}
                        ).get_data(as_text=True)
    assert "Deleted key pair laptop." in flashes(page) and 'data-name="laptop"' not in page
    assert 'data-name="mykey"' in page and 'data-name="edkey"' in page


def test_image_import_permissions_deregister(app, tmp_path):
    import io

    console = Console(app)
    response = console.post("/console/images/import", follow=False, data={
        "kernel": (io.BytesIO(b"K" * 4096), "vmlinuz-test"),
        "ramdisk": (io.BytesIO(b"R" * 3000), "initrd-test.img"),
        "root": (io.BytesIO(b"\0" * 8192), "root.img"),
        "name": "test-linux"}, content_type="multipart/form-data",
        headers={"X-Requested-With": "fetch"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    ids = re.findall(r"\b(e[kmr]i-[0-9a-f]{8})\b", body)
    assert [i[:3] for i in ids] == ["eki", "eri", "emi"]
    eki, eri, emi = ids
    page = console.text("/console/images")
    for image_id in ids:
        assert f'<tr data-id="{image_id}">' in page
    assert "test-linux-kernel" in page and "test-linux-ramdisk" in page
    # temp files are gone
    scratch = tmp_path / "data" / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []

    detail = console.text(f"/console/images/{emi}")
    assert f"{eki} / {eri}" in detail and "eucalite-images/test-linux/" in detail

    # a root disk alone is a bootable (HVM) image; a kernel alone is refused
    response = console.post("/console/images/import", follow=False, data={
        "root": (io.BytesIO(b"\1" * 2048), "disk.qcow2")}, content_type="multipart/form-data")
    assert response.status_code == 200 and re.search(r"emi-[0-9a-f]{8}", response.get_data(
        as_text=True))
    response = console.post("/console/images/import", follow=False, data={
        "kernel": (io.BytesIO(b"K" * 100), "vmlinuz")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("MissingParameter: ")
    # the same name again: the AWS error as text
    response = console.post("/console/images/import", follow=False, data={
        "root": (io.BytesIO(b"\1" * 2048), "disk.qcow2")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_data(as_text=True).startswith("InvalidAMIName.Duplicate: ")

    # launch permissions
    with app.app_context():
        other = accounts.create_account("other")
        other_id = other.id
        set_password("other", "admin", PASSWORD)
    page = console.post(f"/console/images/{emi}/permissions",
                        {"op": "add", "account_id": other_id}).get_data(as_text=True)
    assert f'<tr data-account="{other_id}">' in page
    page = console.post(f"/console/images/{emi}/permissions",
                        {"op": "add", "account_id": "123"}).get_data(as_text=True)
    assert any(m.startswith("InvalidAMIAttributeItemValue: ") for m in flashes(page))

    second = Console(app, account="other")
    shared = second.text("/console/images")
    assert f'<tr data-id="{emi}">' in shared and f'<tr data-id="{eki}">' not in shared
    assert f'<option value="{emi}">' in second.text("/console/instances")
    assert "Launch permissions" not in second.text(f"/console/images/{emi}")
    page = second.post(f"/console/images/{emi}/deregister").get_data(as_text=True)
    assert any(m.startswith("AuthFailure: ") for m in flashes(page))
    assert second.get(f"/console/images/{eki}").status_code == 404

    page = console.post(f"/console/images/{emi}/permissions",
                        {"op": "remove", "account_id": other_id}).get_data(as_text=True)
    assert f'data-account="{other_id}"' not in page
    assert f'<tr data-id="{emi}">' not in second.text("/console/images")
    page = console.post(f"/console/images/{eki}/permissions",
                        {"op": "public"}).get_data(as_text=True)
    assert "Every account may launch this image." in page
    assert f'<tr data-id="{eki}">' in second.text("/console/images")
    console.post(f"/console/images/{eki}/permissions", {"op": "private"})
    assert f'<tr data-id="{eki}">' not in second.text("/console/images")

    page = console.post(f"/console/images/{emi}/deregister").get_data(as_text=True)
    assert f"Deregistered {emi}." in flashes(page) and f'data-id="{emi}"' not in page


def test_accounts_see_only_their_own(app):
    console = Console(app)
    image = make_image(app)
    console.post("/console/keypairs/create", {"name": "adminkey"}, follow=False)
    console.post("/console/instances/launch", {"image_id": image, "name": "secret-box"})
    [instance_id] = instance_ids(app)
    wait(app)
    with app.app_context():
        accounts.create_account("other")
        set_password("other", "admin", PASSWORD)
    other = Console(app, account="other")
    assert instance_id not in other.text("/console/instances")
    assert instance_id not in other.text("/console/instances/rows")
    assert "adminkey" not in other.text("/console/keypairs")
    assert image not in other.text("/console/images")
    response = other.get(f"/console/instances/{instance_id}")
    assert response.status_code == 404
    assert "InvalidInstanceID.NotFound" in response.get_data(as_text=True)
    assert "eucalite fake console" not in response.get_data(as_text=True)
    for path, data in ((f"/console/instances/{instance_id}/action", {"action": "terminate"}),
                       (f"/console/instances/{instance_id}/tags",
                        {"op": "add", "key": "x", "value": "y"})):
        page = other.post(path, data).get_data(as_text=True)
        assert [m.split(":")[0] for m in flashes(page)] == ["InvalidInstanceID.NotFound"]
    # the other account cannot launch the private image either
    page = other.post("/console/instances/launch", {"image_id": image}).get_data(as_text=True)
    assert any(m.startswith("InvalidAMIID.NotFound: ") for m in flashes(page))
    with app.app_context():
        assert db.session.get(Instance, instance_id).state == "running"
    console.post(f"/console/instances/{instance_id}/action", {"action": "terminate"})
    wait(app)
