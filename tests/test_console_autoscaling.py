"""The console's Auto Scaling pages through Flask's test client, on the in-memory fake
hypervisor: the groups list and one group's page, making a launch configuration and a
group (from a launch configuration or a launch template) with the forms, setting the
desired capacity, changing min and max, suspending and resuming processes, terminating an
instance with and without lowering the desired capacity, deleting a group; refusals shown
as the API's code and message; a user without Auto Scaling permissions refused. The
keeper's passes are run by the test (``run_pass``)."""
from __future__ import annotations

import base64
import html
import re

import pytest

from eucalite import accounts
from eucalite.db import db

from consoleutil import Console, console_app, user_with_policy
from test_console_compute import flashes, make_image, wait

IMAGE = "emi-0a5c0a1e"


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    make_image(app, IMAGE)
    yield app
    wait(app)
    app.extensions["eucalite"].compute.worker.shutdown()


def run_pass(app) -> int:
    """One pass of the Auto Scaling keeper, then the launches it queued."""
    with app.app_context():
        acted = app.extensions["eucalite"].autoscaling.run_pass()
        db.session.remove()
    wait(app)
    return acted


def messages(page: str) -> list[str]:
    return [html.unescape(message) for message in flashes(page)]


def zone(app) -> str:
    with app.app_context():
        return app.extensions["eucalite"].compute.cluster.zone_names()[0]


def cells(page: str, attribute: str) -> dict[str, str]:
    """The ``data-<attribute>="key"`` cells of *page*: key -> text."""
    return dict(re.findall(rf'data-{attribute}="([^"]+)">([^<]*)<', page))


def group_row(page: str, name: str) -> str:
    match = re.search(rf'<tr data-group="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert match, page
    return match.group(1)


def instance_rows(page: str) -> dict[str, str]:
    """Instance id -> its lifecycle state, from a group's page."""
    return dict(re.findall(r'<tr data-instance="(i-[0-9a-f]+)">.*?data-lifecycle>([^<]*)<',
                           page, re.S))


def make_config(console: Console, name="web-lc", **fields) -> str:
    form = {"name": name, "image_id": IMAGE, "instance_type": "m1.small", **fields}
    return console.page("/console/autoscaling/launchconfigs/create", form)


def make_group(console: Console, app, name="web", source="lc:web-lc", **fields) -> str:
    form = {"name": name, "source": source, "min_size": "1", "max_size": "4",
            "desired": "2", "zones": zone(app), **fields}
    return console.page("/console/autoscaling/create", form)


def test_page_is_in_the_nav_and_needs_sign_in(app):
    response = app.test_client().get("/console/autoscaling")
    assert response.status_code == 302 and "/console/login" in response.location
    console = Console(app)
    assert ">Auto Scaling</a>" in console.text("/console/dashboard")
    page = console.text("/console/autoscaling")
    assert 'id="no-groups"' in page
    assert 'id="create-launch-configuration"' in page and 'id="create-group"' in page
    assert f'<option value="{IMAGE}">' in page


def test_create_a_group_and_see_its_instances_and_activities(app):
    console = Console(app)
    page = make_config(console, user_data="#!/bin/sh\necho scaled\n")
    assert "Created launch configuration web-lc." in messages(page)
    assert 'data-config="web-lc"' in page and '<option value="lc:web-lc">' in page
    with app.app_context():
        who = accounts.root_principal(accounts.get_account("eucalyptus").id)
        [config] = app.extensions["eucalite"].autoscaling.describe_launch_configurations(
            who, {})["LaunchConfigurations"]
    assert base64.b64decode(config["UserData"]) == b"#!/bin/sh\necho scaled\n"

    page = make_group(console, app)
    assert "Created Auto Scaling group web." in messages(page)
    assert "Auto Scaling group web" in page          # the new group's own page
    assert cells(page, "count")["Pending"] == "0"

    assert run_pass(app) == 2
    page = console.text("/console/autoscaling/group?name=web")
    states = instance_rows(page)
    assert len(states) == 2 and set(states.values()) <= {"Pending", "InService"}
    for instance_id in states:
        assert f'href="/console/instances/{instance_id}"' in page
    activities = re.findall(r'data-description>([^<]*)<', page)
    assert len(activities) == 2
    assert all(text.startswith("Launching a new EC2 instance: i-") for text in activities)
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td>", page)   # started
    assert "launch configuration web-lc" in page and zone(app) in page

    run_pass(app)
    listed = group_row(console.text("/console/autoscaling"), "web")
    assert '<td data-desired>2</td>' in listed and '<td data-max>4</td>' in listed
    assert '<td data-count="InService">2</td>' in listed
    assert "launch configuration web-lc" in listed


def test_set_desired_bounds_processes_terminate_and_delete(app):
    console = Console(app)
    make_config(console)
    make_group(console, app)
    run_pass(app)
    run_pass(app)

    page = console.page("/console/autoscaling/group/desired", {"name": "web", "desired": "3"})
    assert "The desired capacity of web is now 3." in messages(page)
    assert run_pass(app) == 1
    page = console.text("/console/autoscaling/group?name=web")
    assert len(instance_rows(page)) == 3
    assert "a user request explicitly set group desired capacity" in page

    page = console.page("/console/autoscaling/group/bounds",
                        {"name": "web", "min_size": "1", "max_size": "2"})
    assert "Updated the size bounds of web." in messages(page)
    assert '<span data-desired>2</span>' in page and '<span data-max>2</span>' in page
    run_pass(app)
    run_pass(app)
    page = console.text("/console/autoscaling/group?name=web")
    assert list(instance_rows(page).values()) == ["InService", "InService"]

    page = console.page("/console/autoscaling/group/processes",
                        {"name": "web", "suspend": "yes"})
    assert "Suspended all processes of web." in messages(page)
    suspended = re.search(r"data-suspended>([^<]*)<", page).group(1)
    assert "Launch" in suspended and "Terminate" in suspended
    page = console.page("/console/autoscaling/group/processes",
                        {"name": "web", "suspend": "no"})
    assert re.search(r"data-suspended>([^<]*)<", page).group(1) == "none"

    first, second = sorted(instance_rows(page))
    page = console.page("/console/autoscaling/group/terminate",
                        {"name": "web", "instance_id": first, "decrement": "yes"})
    assert f"Terminating {first}, the desired capacity lowered by one." in messages(page)
    assert '<span data-desired>1</span>' in page
    # at the minimum, terminating with a decrement is refused in the API's words
    page = console.page("/console/autoscaling/group/terminate",
                        {"name": "web", "instance_id": second, "decrement": "yes"})
    assert any(message.startswith("ValidationError: Currently, desiredSize equals minSize")
               for message in messages(page)), messages(page)
    page = console.page("/console/autoscaling/group/terminate",
                        {"name": "web", "instance_id": second})
    assert f"Terminating {second}: the group replaces it." in messages(page)
    run_pass(app)
    run_pass(app)
    page = console.text("/console/autoscaling/group?name=web")
    live = [instance for instance, state in instance_rows(page).items()
            if state in ("Pending", "InService")]
    assert len(live) == 1 and live[0] not in (first, second)

    # not without force while it has instances: the API's ResourceInUse
    page = console.page("/console/autoscaling/group/delete", {"name": "web"})
    assert any(message.startswith("ResourceInUse: You cannot delete an AutoScalingGroup")
               for message in messages(page)), messages(page)
    page = console.page("/console/autoscaling/group/delete", {"name": "web", "force": "yes"})
    assert "Deleting Auto Scaling group web and its instances." in messages(page)
    assert "Delete in progress" in group_row(page, "web")
    for _ in range(4):
        run_pass(app)
    assert 'id="no-groups"' in console.text("/console/autoscaling")


def test_a_group_from_a_launch_template(app):
    console = Console(app)
    page = console.page("/console/launchtemplates/create", {
        "name": "tpl", "image_id": IMAGE, "instance_type": "m1.small"})
    template_id = re.search(r'data-id="(lt-[0-9a-f]+)" data-name="tpl"', page).group(1)
    page = console.text("/console/autoscaling")
    assert f'<option value="lt:{template_id}">' in page
    page = make_group(console, app, name="from-tpl", source=f"lt:{template_id}",
                      version="1", desired="1")
    assert "Created Auto Scaling group from-tpl." in messages(page)
    assert f"<code>{template_id}</code> version 1" in page
    assert run_pass(app) == 1
    [(instance_id, _)] = instance_rows(
        console.text("/console/autoscaling/group?name=from-tpl")).items()
    assert "tpl v1" in console.text("/console/autoscaling/group?name=from-tpl")
    assert instance_id.startswith("i-")


def test_refused_requests_show_the_api_error(app):
    console = Console(app)
    make_config(console)
    # the model's checks: an empty name
    page = make_config(console, name="")
    assert ("ValidationError: 1 validation error detected: Value '' at "
            "'launchConfigurationName' failed to satisfy constraint: Member must have length "
            "greater than or equal to 1") in messages(page), messages(page)
    # the service's: a taken name, a desired capacity above max, an unknown zone
    page = make_config(console)
    assert any(message.startswith("AlreadyExists: Launch Configuration by this name "
                                  "already exists") for message in messages(page))
    page = make_group(console, app, desired="9")
    assert ("ValidationError: Desired capacity:9 must be between the specified min size:1 "
            "and max size:4") in messages(page)
    assert 'id="no-groups"' in page
    page = make_group(console, app, zones="nowhere-1z")
    assert "ValidationError: The availability zone nowhere-1z is not legitimate" in \
        messages(page)
    page = make_group(console, app, min_size="x")
    assert any(message.startswith("InvalidParameterValue: Value (x) for parameter MinSize")
               for message in messages(page)), messages(page)
    make_group(console, app)
    page = console.page("/console/autoscaling/group/desired", {"name": "web", "desired": "7"})
    assert ("ValidationError: New SetDesiredCapacity value 7 is above max value 4 for the "
            "AutoScalingGroup.") in messages(page)
    page = console.page("/console/autoscaling/launchconfigs/delete", {"name": "web-lc"})
    assert ("ResourceInUse: Cannot delete launch configuration web-lc because it is "
            "attached to AutoScalingGroup web") in messages(page)
    make_config(console, name="spare")
    page = console.page("/console/autoscaling/launchconfigs/delete", {"name": "spare"})
    assert "Deleted launch configuration spare." in messages(page)
    assert 'data-config="spare"' not in page and 'data-config="web-lc"' in page
    # a group that does not exist is the 404 page with the API's words
    response = console.get("/console/autoscaling/group?name=nothere")
    assert response.status_code == 404
    assert "AutoScalingGroup nothere not found" in response.get_data(as_text=True)


def test_a_user_without_autoscaling_permissions_is_refused(app):
    admin = Console(app)
    make_config(admin)
    make_group(admin, app)

    nobody = user_with_policy(app, "nobody", {"Effect": "Allow", "Action": "ec2:Describe*",
                                               "Resource": "*"})
    assert ">Auto Scaling</a>" not in nobody.text("/console/dashboard")
    assert nobody.get("/console/autoscaling").status_code == 403
    assert nobody.get("/console/autoscaling/group?name=web").status_code == 403
    # the POST itself is refused by the service, in the API's words, and nothing changes
    page = nobody.post("/console/autoscaling/group/desired",
                       {"name": "web", "desired": "3"}).get_data(as_text=True)
    assert any(message.startswith("AccessDenied: User: ") and
               "is not authorized to perform: autoscaling:SetDesiredCapacity" in message
               for message in messages(page)), messages(page)

    # the group alone: its page shows the refusal of what the user may not read
    groups_only = user_with_policy(app, "groups-only", {
        "Effect": "Allow", "Action": "autoscaling:DescribeAutoScalingGroups",
        "Resource": "*"})
    page = groups_only.text("/console/autoscaling/group?name=web")
    assert '<span data-desired>2</span>' in page
    for listed, action in (("activities", "DescribeScalingActivities"),
                           ("policies", "DescribePolicies"),
                           ("scheduled", "DescribeScheduledActions")):
        refused = re.search(rf'data-refused="{listed}">([^<]*)<', page).group(1)
        assert refused.startswith("AccessDenied: User: ")
        assert refused.endswith(f"is not authorized to perform: autoscaling:{action}")

    viewer = user_with_policy(app, "viewer", {"Effect": "Allow", "Action": [
        "autoscaling:Describe*", "ec2:Describe*"], "Resource": "*"})
    assert ">Auto Scaling</a>" in viewer.text("/console/dashboard")
    page = viewer.text("/console/autoscaling/group?name=web")
    for form in ("set-desired", "set-bounds", "processes", "delete-group"):
        assert f'id="{form}"' not in page
    page = viewer.text("/console/autoscaling")
    assert 'data-group="web"' in page and 'id="create-group"' not in page
    page = viewer.page("/console/autoscaling/group/delete", {"name": "web", "force": "yes"})
    assert any(message.startswith("AccessDenied: ") for message in messages(page))
    assert '<span data-desired>2</span>' in admin.text("/console/autoscaling/group?name=web")


#: Values the forms' fields do not expect: non-ASCII, control characters, digits int()
#: refuses or chokes on, markup, sizes.
ODD = ["é", "\x00", "a\r\nX: 1", "²", "٣", "9" * 5000, "-1", "<b>&", "a" * 3000, " ", ""]
#: Every field the Auto Scaling forms send.
FIELDS = ("name", "image_id", "instance_type", "key_name", "security_groups", "user_data",
          "source", "version", "min_size", "max_size", "desired", "zones", "instance_id",
          "decrement", "suspend", "force")
POSTS = ("/console/autoscaling/launchconfigs/create",
         "/console/autoscaling/launchconfigs/delete", "/console/autoscaling/create", "/console/autoscaling/group/desired",
         "/console/autoscaling/group/bounds", "/console/autoscaling/group/processes",
         "/console/autoscaling/group/terminate", "/console/autoscaling/group/delete")


def test_odd_input_is_never_a_server_error(app):
    console = Console(app)
    make_config(console)
    make_group(console, app)
    page = console.page("/console/launchtemplates/create", {
        "name": "tpl", "image_id": IMAGE, "instance_type": "m1.small"})
    template_id = re.search(r'data-id="(lt-[0-9a-f]+)" data-name="tpl"', page).group(1)
    base = {"name": "web", "source": "lc:web-lc", "min_size": "1", "max_size": "2",
            "desired": "1", "zones": zone(app), "image_id": IMAGE,
            "instance_type": "m1.small"}
    for value in ODD:
        for path in ("/console/autoscaling", "/console/autoscaling/group"):
            for parameter in ("next", "name"):
                response = console.get(path, query_string={parameter: value})
                assert response.status_code < 500, (path, parameter, value)
        for path in POSTS:
            for field in FIELDS:
                response = console.post(path, {**base, field: value}, follow=False)
                assert response.status_code < 500, (path, field, value)
        for source in (f"lt:{value}", f"lc:{value}", value):
            response = console.post("/console/autoscaling/create",
                                    {**base, "name": "other", "source": source},
                                    follow=False)
            assert response.status_code < 500, (source,)
        response = console.post("/console/autoscaling/create", {
            **base, "name": f"tpl-{len(value)}-{ord(value[0]) if value else 0}",
            "source": f"lt:{template_id}", "version": value}, follow=False)
        assert response.status_code < 500, ("version", value)
    assert run_pass(app) >= 0


def test_the_list_is_paged_as_describe_pages(app):
    with app.app_context():
        service = app.extensions["eucalite"].autoscaling
        who = accounts.root_principal(accounts.get_account("eucalyptus").id)
        service.create_launch_configuration(who, {
            "LaunchConfigurationName": "lc", "ImageId": IMAGE, "InstanceType": "m1.small"})
        for number in range(51):
            service.create_group(who, {
                "AutoScalingGroupName": f"g{number:02}", "LaunchConfigurationName": "lc",
                "MinSize": 0, "MaxSize": 1, "AvailabilityZones": [zone(app)]})
    console = Console(app)
    page = console.text("/console/autoscaling")
    names = re.findall(r'<tr data-group="([^"]+)">', page)
    assert names == [f"g{number:02}" for number in range(50)]
    following = re.search(r'<a href="(/console/autoscaling\?next=[^"]+)">Next page</a>', page)
    assert following, page
    page = console.text(html.unescape(following.group(1)))
    assert re.findall(r'<tr data-group="([^"]+)">', page) == ["g50"]
    assert "Next page" not in page
    response = console.get("/console/autoscaling?next=zz")
    assert response.status_code == 400
    assert "ValidationError: The NextToken is not valid." in response.get_data(as_text=True)


def test_the_forms_offer_only_what_the_user_may_read(app):
    admin = Console(app)
    make_config(admin)
    scaler = user_with_policy(app, "scaler", {"Effect": "Allow", "Action": "autoscaling:*",
                                               "Resource": "*"})
    page = scaler.text("/console/autoscaling")
    # no ec2:DescribeImages: the image is typed, not listed; the configuration is offered
    assert f'<option value="{IMAGE}">' not in page
    assert '<input name="image_id" placeholder="emi-…" required>' in page
    assert '<option value="lc:web-lc">' in page and 'id="create-group"' in page
    # and what it makes works all the same
    page = make_group(scaler, app, name="scaled")
    assert "Created Auto Scaling group scaled." in messages(page)
