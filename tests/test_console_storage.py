"""The console's storage pages (volumes, snapshots, buckets) through Flask's test client:
fake hypervisor, volumes exported as local files."""
from __future__ import annotations

import datetime
import html
import io
import re
import time
from urllib.parse import urlsplit

import pytest

from eucalite import accounts
from eucalite.db import db
from eucalite.s3 import buckets as s3_buckets, ownership
from eucalite.web import session as console_session

from consoleutil import Console, console_app
from ebsutil import read_volume, write_pattern


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    with app.app_context():
        accounts.create_account("other")
        console_session.set_password("other", "admin", "password456")
    yield app
    app.extensions["eucalite"].compute.worker.shutdown()


def settle(app):
    app.extensions["eucalite"].compute.worker.wait(timeout=60)




def ids(prefix, text) -> list[str]:
    return list(dict.fromkeys(re.findall(rf'data-id="({prefix}-[0-9a-f]+)"', text)))


def row(text, resource_id) -> str:
    match = re.search(rf'<tr data-id="{resource_id}">(.*?)</tr>', text, re.S)
    assert match, f"{resource_id} not listed"
    return match.group(1)


def running_instance(app) -> str:
    from eucalite.compute.instances import LaunchRequest
    from eucalite.compute.models import Image

    with app.app_context():
        owner = accounts.get_account("eucalyptus")
        db.session.add(Image(id="emi-0a1b2c3d", owner_id=owner.id, kind="machine",
                             name="emi-0a1b2c3d", state="available"))
        db.session.commit()
        user = accounts.get_user("eucalyptus", "admin")
        who = accounts.Principal(account_id=owner.id, account_name=owner.name,
                                 user_id=user.id, user_name=user.name, access_key_id="")
        launched = app.extensions["eucalite"].compute.run_instances(
            who, LaunchRequest(image_id="emi-0a1b2c3d", min_count=1, max_count=1))
        instance_id = launched[0].id
    settle(app)
    return instance_id


def wait_snapshot(console, snapshot_id) -> str:
    for _ in range(300):
        settle(console.app)
        rows = console.text("/console/snapshots/rows")
        if "pending" not in row(rows, snapshot_id):
            return row(rows, snapshot_id)
        time.sleep(0.05)
    raise AssertionError("snapshot still pending")


def test_nav_and_csrf(app):
    admin = Console(app, "eucalyptus")
    page = admin.text("/console/dashboard")
    for label in ("Volumes", "Snapshots", "Buckets"):
        assert f">{label}</a>" in page
    # no token: refused before the view runs
    for path in ("/console/volumes/create", "/console/buckets/create",
                 "/console/snapshots/snap-0123456789abcdef0/delete"):
        response = admin.client.post(path, data={"size": "1", "name": "nope-bucket"})
        assert response.status_code == 400
    assert "nope-bucket" not in admin.text("/console/buckets")
    assert ids("vol", admin.text("/console/volumes/rows")) == []
    # signed out: sent to the sign-in page
    assert app.test_client().get("/console/volumes").status_code == 302


def test_pending_snapshot_shows_progress(app):
    from eucalite.ebs.models import Snapshot

    admin = Console(app, "eucalyptus")
    with app.app_context():
        db.session.add(Snapshot(id="snap-0123456789abcdef0", volume_id="vol-0123456789abcdef0",
                                owner_id=accounts.get_account("eucalyptus").id,
                                volume_size_gb=3, state="pending", progress=42,
                                description="half way", chunk_size=2**20))
        db.session.commit()
    snapshot_row = row(admin.text("/console/snapshots"), "snap-0123456789abcdef0")
    assert '<progress max="100" value="42"></progress>' in snapshot_row
    assert "42 %" in snapshot_row and "3 GiB" in snapshot_row and "half way" in snapshot_row
    assert ">Delete</button>" not in snapshot_row and "Create volume" not in snapshot_row
    page = admin.page("/console/snapshots/snap-0123456789abcdef0/delete")
    assert "IncorrectState" in page
    assert "snap-0123456789abcdef0" not in admin.text("/console/volumes")   # not restorable


def test_volumes_and_snapshots(app):
    admin = Console(app, "eucalyptus")
    other = Console(app, "other", password="password456")

    # errors are flashed, never a 500
    page = admin.page("/console/volumes/create", {"size": "0", "zone": ""})
    assert "InvalidParameterValue" in page
    page = admin.page("/console/volumes/create", {"size": "lots"})
    assert "InvalidParameterValue" in page
    page = admin.page("/console/volumes/create", {"size": "1", "zone": "nowhere"})
    assert "InvalidParameterValue: Invalid availability zone" in page
    page = admin.page("/console/volumes/create", {"size": "", "snapshot_id": "snap-0000"})
    assert "InvalidSnapshot.NotFound" in page
    page = admin.page("/console/volumes/vol-00000000000000000/delete")
    assert "InvalidVolume.NotFound" in page
    assert ids("vol", admin.text("/console/volumes/rows")) == []

    page = admin.text("/console/volumes")
    assert 'data-refresh="/console/volumes/rows"' in page and 'name="size"' in page
    page = admin.page("/console/volumes/create", {"size": "1", "zone": "eucalyptus-1a"})
    [volume_id] = ids("vol", page)
    assert f"Creating volume {volume_id}" in page
    settle(app)
    rows = admin.text("/console/volumes/rows")
    assert '<span class="state available">available</span>' in row(rows, volume_id)
    assert "1 GiB" in row(rows, volume_id) and "eucalyptus-1a" in row(rows, volume_id)
    assert "no running instance" in row(rows, volume_id)

    instance_id = running_instance(app)
    rows = admin.text("/console/volumes/rows")
    assert f'<option value="{instance_id}">' in row(rows, volume_id)
    page = admin.page(f"/console/volumes/{volume_id}/attach",
                      {"instance_id": instance_id, "device": "/dev/sdf"})
    assert f"Attaching {volume_id} to {instance_id} as /dev/sdf" in page
    settle(app)
    volume_row = row(admin.text("/console/volumes/rows"), volume_id)
    assert "in-use" in volume_row and instance_id in volume_row and "/dev/sdf" in volume_row
    assert '<span class="state attached">attached</span>' in volume_row
    assert ">Detach</button>" in volume_row and ">Delete</button>" not in volume_row

    # deleting an attached volume is the API's error; attaching it twice too
    page = admin.page(f"/console/volumes/{volume_id}/delete")
    assert f"VolumeInUse: Volume {volume_id} is currently attached to {instance_id}" in page
    page = admin.page(f"/console/volumes/{volume_id}/attach",
                      {"instance_id": instance_id, "device": "/dev/sdg"})
    assert "VolumeInUse" in page
    # another account can do nothing to it
    page = other.page(f"/console/volumes/{volume_id}/detach")
    assert "InvalidVolume.NotFound" in page

    page = admin.page(f"/console/volumes/{volume_id}/detach")
    assert f"Detaching {volume_id}" in page
    settle(app)
    volume_row = row(admin.text("/console/volumes/rows"), volume_id)
    assert "available" in volume_row and "/dev/sdf <span" not in volume_row
    assert ">Detach</button>" not in volume_row and ">Attach</button>" in volume_row

    # write something so the snapshot has data, then snapshot it
    write_pattern(app, volume_id, 4096, b"console snapshot data" * 100)
    page = admin.page(f"/console/volumes/{volume_id}/snapshot", {"description": "nightly"})
    [snapshot_id] = ids("snap", page)
    assert f"Taking snapshot {snapshot_id} of {volume_id}" in page
    assert 'data-refresh="/console/snapshots/rows"' in page
    snapshot_row = wait_snapshot(admin, snapshot_id)
    assert '<span class="state completed">completed</span>' in snapshot_row
    assert "100 %" in snapshot_row and "nightly" in snapshot_row and volume_id in snapshot_row
    assert "shared by" not in snapshot_row

    # a volume from the snapshot (from the snapshots page), then from the volumes form
    page = admin.page(f"/console/snapshots/{snapshot_id}/volume",
                      {"size": "", "zone": "eucalyptus-1a"})
    assert f"from {snapshot_id}" in page
    restored = [v for v in ids("vol", page) if v != volume_id]
    assert len(restored) == 1
    assert f"<option value=\"{snapshot_id}\"" in admin.text("/console/volumes")
    page = admin.page("/console/volumes/create", {"size": "2", "snapshot_id": snapshot_id,
                                                  "zone": "eucalyptus-1a"})
    assert len(ids("vol", page)) == 3
    settle(app)
    rows = admin.text("/console/volumes/rows")
    for vid in ids("vol", rows):
        assert "available" in row(rows, vid)
    assert snapshot_id in row(rows, restored[0])
    assert read_volume(app, restored[0], 4096, 21) == b"console snapshot data"

    # the other account sees none of it until the snapshot is shared with it
    assert ids("vol", other.text("/console/volumes/rows")) == []
    assert ids("snap", other.text("/console/snapshots/rows")) == []
    page = other.page(f"/console/snapshots/{snapshot_id}/delete")
    assert "InvalidSnapshot.NotFound" in page
    with app.app_context():
        other_id = accounts.get_account("other").id
    page = admin.page(f"/console/snapshots/{snapshot_id}/share",
                      {"account_id": "12345", "operation": "add"})
    assert "InvalidParameterValue" in page
    page = admin.page(f"/console/snapshots/{snapshot_id}/share",
                      {"account_id": other_id, "operation": "add"})
    assert f"{snapshot_id} is shared with {other_id}" in page
    assert f'data-shared="{other_id}"' in page
    rows = other.text("/console/snapshots/rows")
    assert ids("snap", rows) == [snapshot_id]
    with app.app_context():
        admin_id = accounts.get_account("eucalyptus").id
    shared_row = row(rows, snapshot_id)
    assert f"shared by {admin_id}" in shared_row
    assert ">Delete</button>" not in shared_row and "Create volume" in shared_row
    page = other.page(f"/console/snapshots/{snapshot_id}/volume", {"zone": "eucalyptus-1a"})
    [theirs] = ids("vol", page)
    settle(app)
    assert "available" in row(other.text("/console/volumes/rows"), theirs)
    page = other.page(f"/console/snapshots/{snapshot_id}/share",
                      {"account_id": admin_id, "operation": "add"})
    assert "InvalidSnapshot.NotFound" in page
    page = admin.page(f"/console/snapshots/{snapshot_id}/share",
                      {"account_id": other_id, "operation": "remove"})
    assert "no longer shared" in page
    assert ids("snap", other.text("/console/snapshots/rows")) == []

    # delete everything
    page = admin.page(f"/console/snapshots/{snapshot_id}/delete")
    assert f"Deleted snapshot {snapshot_id}" in page
    assert ids("snap", admin.text("/console/snapshots/rows")) == []
    for vid in ids("vol", admin.text("/console/volumes/rows")):
        page = admin.page(f"/console/volumes/{vid}/delete")
        assert f"Deleting volume {vid}" in page
    settle(app)
    assert ids("vol", admin.text("/console/volumes/rows")) == []
    assert ids("vol", other.text("/console/volumes/rows")) == [theirs]


def test_buckets_and_objects(app):
    admin = Console(app, "eucalyptus")
    other = Console(app, "other", password="password456")

    page = admin.page("/console/buckets/create", {"name": "Bad_Name"})
    assert "InvalidBucketName" in page
    page = admin.page("/console/buckets/create", {"name": "photos"})
    assert "Created bucket photos" in page and "This bucket is empty." in page
    assert "data-upload" in page and 'class="upload-status"' in page
    page = other.page("/console/buckets/create", {"name": "photos"})
    assert "BucketAlreadyExists" in page
    assert 'data-id="photos"' in admin.text("/console/buckets")
    assert 'data-id="photos"' not in other.text("/console/buckets")
    page = other.text("/console/buckets/photos", follow_redirects=True)
    assert "AccessDenied" in page

    # upload into docs/ the way console.js does (XHR, csrf header)
    data = b"hello from the console\n" * 5000
    response = admin.client.post(
        "/console/buckets/photos/upload",
        data={"prefix": "docs/", "file": (io.BytesIO(data), "hello world.txt")},
        headers={"X-CSRF-Token": admin.token, "X-Requested-With": "fetch"},
        content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "docs/hello world.txt" in response.get_data(as_text=True)
    # without the token: refused
    response = admin.client.post(
        "/console/buckets/photos/upload",
        data={"prefix": "", "file": (io.BytesIO(b"x"), "sneaky.txt")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    # into someone else's bucket: the S3 error as text
    response = other.client.post(
        "/console/buckets/photos/upload",
        data={"prefix": "", "file": (io.BytesIO(b"x"), "sneaky.txt")},
        headers={"X-CSRF-Token": other.token, "X-Requested-With": "fetch"},
        content_type="multipart/form-data")
    assert response.status_code == 403
    assert response.get_data(as_text=True).startswith("AccessDenied:")

    # without JavaScript: a plain form post, redirected back to the folder
    page = admin.page("/console/buckets/photos/upload",
                      {"prefix": "notes/", "file": (io.BytesIO(b"plain"), "plain.txt")},
                      content_type="multipart/form-data")
    assert "Uploaded notes/plain.txt" in page and 'data-key="notes/plain.txt"' in page
    page = admin.page("/console/buckets/photos/upload", {"prefix": "notes/"},
                      content_type="multipart/form-data")
    assert "InvalidArgument: Choose a file to upload." in page
    admin.page("/console/buckets/photos/delete-object", {"key": "notes/plain.txt"})

    top = admin.text("/console/buckets/photos")
    assert 'data-prefix="docs/"' in top and "hello world.txt" not in top
    folder = admin.text("/console/buckets/photos?prefix=docs/")
    assert 'data-key="docs/hello world.txt"' in folder
    assert "112.3 KiB" in folder and "(115000 bytes)" in folder
    assert '<b data-prefix="docs/">docs</b>' in folder
    assert ">private</span>" in folder

    # download
    response = admin.client.get("/console/buckets/photos/download",
                                query_string={"key": "docs/hello world.txt"})
    assert response.status_code == 200
    assert response.get_data() == data
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="hello world.txt"')
    response = other.client.get("/console/buckets/photos/download",
                                query_string={"key": "docs/hello world.txt"},
                                follow_redirects=True)
    assert "AccessDenied" in response.get_data(as_text=True)

    # public / private, seen from the S3 endpoint without credentials. A new bucket has
    # ACLs disabled and public access blocked, as on AWS, until its owner changes both.
    anonymous = app.test_client()
    assert anonymous.get("/photos/docs/hello%20world.txt").status_code == 403
    page = admin.page("/console/buckets/photos/acl", {"key": "docs/hello world.txt",
                                                      "acl": "public-read", "prefix": "docs/"})
    assert "AccessControlListNotSupported" in page
    with app.app_context():
        ownership.store_ownership("photos", ownership.WRITER)
        s3_buckets.find("photos").set_json("public_access_block", None)
        db.session.commit()
    page = admin.page("/console/buckets/photos/acl", {"key": "docs/hello world.txt",
                                                      "acl": "public-read",
                                                      "prefix": "docs/"})
    assert "docs/hello world.txt is now public" in page and ">public</span>" in page
    response = anonymous.get("/photos/docs/hello%20world.txt")
    assert response.status_code == 200 and response.get_data() == data
    page = admin.page("/console/buckets/photos/acl", {"key": "docs/hello world.txt",
                                                      "acl": "private", "prefix": "docs/"})
    assert "is now private" in page
    assert anonymous.get("/photos/docs/hello%20world.txt").status_code == 403
    page = other.page("/console/buckets/photos/acl", {"key": "docs/hello world.txt",
                                                      "acl": "public-read"})
    assert "AccessDenied" in page
    assert anonymous.get("/photos/docs/hello%20world.txt").status_code == 403

    # the presigned link (signed with the admin's access key) works for anyone
    match = re.search(r'data-copy="([^"]+)"', folder)
    assert match
    url = urlsplit(html.unescape(match.group(1)))
    assert "X-Amz-Signature=" in url.query and "X-Amz-Expires=3600" in url.query
    response = anonymous.get(f"{url.path}?{url.query}",
                             base_url=f"{url.scheme}://{url.netloc}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data() == data
    # a key with characters that need encoding, and an expired link
    response = admin.client.post(
        "/console/buckets/photos/upload",
        data={"prefix": "docs/", "file": (io.BytesIO(b"odd"), "\u00fc+&=x (1).txt")},
        headers={"X-CSRF-Token": admin.token, "X-Requested-With": "fetch"},
        content_type="multipart/form-data")
    assert response.status_code == 200
    folder = admin.text("/console/buckets/photos?prefix=docs/")
    links = [html.unescape(link) for link in re.findall(r'data-copy="([^"]+)"', folder)]
    odd = urlsplit(next(link for link in links if "x%20%281%29.txt" in link))
    response = anonymous.get(f"{odd.path}?{odd.query}", base_url=f"{odd.scheme}://{odd.netloc}")
    assert response.status_code == 200 and response.get_data() == b"odd"
    from eucalite.web.pages.buckets import presign_url

    with app.app_context():
        key = accounts.first_active_key("eucalyptus", "admin")
        stale = urlsplit(presign_url(f"{url.scheme}://{url.netloc}", "photos",
                                     "docs/hello world.txt", key.id, key.secret,
                                     app.config["EUCALITE"]["region"], expires=60,
                                     now=datetime.datetime.now(datetime.timezone.utc)
                                     - datetime.timedelta(hours=2)))
    response = anonymous.get(f"{stale.path}?{stale.query}",
                             base_url=f"{stale.scheme}://{stale.netloc}")
    assert response.status_code == 403 and b"expired" in response.get_data()
    admin.page("/console/buckets/photos/delete-object",
               {"key": "docs/\u00fc+&=x (1).txt", "prefix": "docs/"})

    # a user without an access key gets a hint instead of a link
    other.page("/console/buckets/create", {"name": "their-bucket"})
    response = other.client.post(
        "/console/buckets/their-bucket/upload",
        data={"prefix": "", "file": (io.BytesIO(b"x"), "a.txt")},
        headers={"X-CSRF-Token": other.token, "X-Requested-With": "fetch"},
        content_type="multipart/form-data")
    assert response.status_code == 200
    page = other.text("/console/buckets/their-bucket")
    assert 'data-key="a.txt"' in page and "data-copy" not in page
    assert "no active access key" in page
    assert 'data-id="their-bucket"' not in admin.text("/console/buckets")

    # a non-empty bucket cannot go; emptied, it can
    page = admin.page("/console/buckets/photos/delete")
    assert "BucketNotEmpty: The bucket you tried to delete is not empty" in page
    page = other.page("/console/buckets/photos/delete-object",
                      {"key": "docs/hello world.txt"})
    assert "AccessDenied" in page
    page = admin.page("/console/buckets/photos/delete-object",
                      {"key": "docs/hello world.txt", "prefix": "docs/"})
    assert "Deleted docs/hello world.txt" in page and "This folder is empty." in page
    page = admin.page("/console/buckets/photos/delete")
    assert "Deleted bucket photos" in page and 'data-id="photos"' not in page
    assert admin.client.get("/console/buckets/photos",
                            follow_redirects=True).status_code == 200
