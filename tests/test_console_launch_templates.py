"""The console's Launch templates page through Flask's test client, on the in-memory fake
hypervisor: listing templates and versions, creating one from the form, launching from it,
setting the default version, deleting versions and templates, and what a user without the
EC2 permissions is offered."""
from __future__ import annotations

import base64
import re

import pytest

from eucalite import accounts
from eucalite.compute.models import Image, Instance
from eucalite.db import db
from eucalite.web.session import UNAUTHORIZED

from consoleutil import Console, console_app, user_with_policy


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    yield app
    app.extensions["eucalite"].compute.worker.wait()
    app.extensions["eucalite"].compute.worker.shutdown()


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash (?:ok|error)"[^>]*>([^<]*)</p>', html)


def _image(app, image_id="emi-0a1b2c3d") -> str:
    with app.app_context():
        owner = accounts.get_account("eucalyptus").id
        db.session.add(Image(id=image_id, owner_id=owner, kind="machine", name=image_id,
                             state="available"))
        db.session.commit()
    return image_id


def _template_id(page: str, name: str) -> str:
    match = re.search(rf'data-id="(lt-[0-9a-f]+)" data-name="{re.escape(name)}"', page)
    assert match, page
    return match.group(1)


def test_page_is_in_the_nav_and_needs_sign_in(app):
    response = app.test_client().get("/console/launchtemplates")
    assert response.status_code == 302 and "/console/login" in response.location
    console = Console(app)
    assert ">Launch templates</a>" in console.text("/console/dashboard")
    assert 'id="no-templates"' in console.text("/console/launchtemplates")


def test_create_launch_default_and_delete(app):
    image = _image(app)
    console = Console(app)
    compute = app.extensions["eucalite"].compute
    page = console.text("/console/launchtemplates")
    assert f'<option value="{image}">' in page         # the form offers the image
    page = console.post("/console/launchtemplates/create", {
        "name": "web", "description": "first", "image_id": image,
        "instance_type": "m1.large", "user_data": "#!/bin/sh\necho hi\n"}
    ).get_data(as_text=True)
    assert "Created launch template web." in flashes(page)
    template_id = _template_id(page, "web")
    with app.app_context():
        who = accounts.root_principal(accounts.get_account("eucalyptus").id)
        [(_, version)] = compute.describe_launch_template_versions(who, template_id=template_id)
        data = version.get_json("data")
        assert data["ImageId"] == image and data["InstanceType"] == "m1.large"
        assert base64.b64decode(data["UserData"]) == b"#!/bin/sh\necho hi\n"
        compute.create_launch_template_version(who, {"InstanceType": "m1.small"},
                                               template_id=template_id, source_version="1")

    # a bad name is the API's error on the page
    page = console.post("/console/launchtemplates/create", {"name": "x"}).get_data(
        as_text=True)
    assert any(m.startswith("InvalidLaunchTemplateName.MalformedException: ")
               for m in flashes(page))

    page = console.post(f"/console/launchtemplates/{template_id}/launch",
                        {"version": "2"}).get_data(as_text=True)
    assert any(m.startswith("Launched i-") for m in flashes(page)), flashes(page)
    with app.app_context():
        [instance] = db.session.execute(db.select(Instance)).scalars().all()
        assert instance.instance_type == "m1.small" and instance.image_id == image

    page = console.post(f"/console/launchtemplates/{template_id}/default",
                        {"version": "2"}).get_data(as_text=True)
    assert f"Version 2 is now the default of {template_id}." in flashes(page)
    assert "default version 2 · latest 2" in page
    page = console.post(f"/console/launchtemplates/{template_id}/delete-version",
                        {"version": "1"}).get_data(as_text=True)
    assert f"Deleted version 1 of {template_id}." in flashes(page)
    assert 'data-version="1"' not in page and 'data-version="2"' in page
    page = console.post(f"/console/launchtemplates/{template_id}/delete-version",
                        {"version": "2"}).get_data(as_text=True)
    assert any(m.startswith("unexpectedError: ") for m in flashes(page))
    page = console.post(f"/console/launchtemplates/{template_id}/delete",
                        {"name": "web"}).get_data(as_text=True)
    assert "Deleted launch template web." in flashes(page) and 'id="no-templates"' in page


def test_a_user_sees_and_is_offered_only_what_policies_allow(app):
    image = _image(app)
    page = Console(app).post("/console/launchtemplates/create",
                             {"name": "kept", "image_id": image}).get_data(as_text=True)
    template_id = _template_id(page, "kept")

    nobody = user_with_policy(app, "nobody", {"Effect": "Allow", "Action": "s3:ListBucket",
                                               "Resource": "*"})
    assert ">Launch templates</a>" not in nobody.text("/console/dashboard")
    assert nobody.get("/console/launchtemplates").status_code == 403

    viewer = user_with_policy(app, "viewer", {"Effect": "Allow", "Action": [
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeImages", "ec2:DescribeKeyPairs", "ec2:DescribeSecurityGroups"],
        "Resource": "*"})
    page = viewer.text("/console/launchtemplates")
    assert f'data-id="{template_id}"' in page
    assert "create-launch-template" not in page
    for action in ("delete", "launch", "default"):
        assert f"/console/launchtemplates/{template_id}/{action}" not in page
    # the POST itself is refused too, and the template stays
    page = viewer.post(f"/console/launchtemplates/{template_id}/delete").get_data(
        as_text=True)
    assert flashes(page) == [UNAUTHORIZED]
    assert f'data-id="{template_id}"' in Console(app).text("/console/launchtemplates")
