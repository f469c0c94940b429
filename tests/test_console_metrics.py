"""The console's CloudWatch pages through Flask's test client: the metrics browser and the
JSON its charts draw, an instance's monitoring charts, the alarms and one alarm's history
and buttons, the admin dashboard's node utilisation. Data is published through the
CloudWatch service, as the collectors and PutMetricData do; each account sees only its
own."""
from __future__ import annotations

import datetime as dt
import html
import json
import re
import time
from urllib.parse import urlencode

import pytest

from eucalite import accounts
from eucalite.cloudwatch.datums import Datum
from eucalite.cloudwatch.stats import Cell
from eucalite.web.session import set_password

from consoleutil import PASSWORD, Console, console_app
from test_console_compute import flashes, instance_ids, make_image, wait

UTC = dt.timezone.utc


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path)
    with app.app_context():
        accounts.create_account("other")
        set_password("other", "admin", PASSWORD)
    yield app
    app.extensions["eucalite"].compute.worker.wait()
    app.extensions["eucalite"].compute.worker.shutdown()


def cloudwatch(app):
    return app.extensions["eucalite"].cloudwatch


def account_id(app, name):
    with app.app_context():
        return accounts.get_account(name).id


def publish(app, account, namespace, name, dimensions, values, unit="None"):
    """*values* (oldest first) one a minute, the last a minute ago, into *account*."""
    now = int(time.time())
    data = [Datum(name=name, dimensions=sorted(dimensions), unit=unit, resolution=60,
                  timestamp=now - 60 * (len(values) - index), cell=Cell.of_values({value: 1.0}))
            for index, value in enumerate(values)]
    with app.app_context():
        cloudwatch(app).publish(account_id(app, account), namespace, data)


def principal(app, account):
    with app.app_context():
        return accounts.principal_of(accounts.get_user(account, accounts.ADMIN_USER))


def chart_sources(page: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'data-src="([^"]+)"', page)]


def data(console, src, **params):
    response = console.get(src + "&" + urlencode(params) if params else src)
    return response.status_code, response.get_json()


def test_the_metrics_browser_goes_from_namespace_to_a_chart(app):
    publish(app, "eucalyptus", "App", "Latency", [["Host", "a"]], [10.0, 20.0, 30.0])
    publish(app, "eucalyptus", "App", "Latency", [["Host", "b/c=d"]], [5.0])
    publish(app, "eucalyptus", "App", "Errors", [], [1.0])
    publish(app, "other", "Secret", "Hidden", [["Host", "a"]], [99.0])
    console = Console(app)
    page = console.text("/console/dashboard")
    assert ">Metrics</a>" in page and ">Alarms</a>" in page
    page = console.text("/console/metrics")
    assert '<a href="/console/metrics?namespace=App">App</a></td><td>3</td>' in page
    assert "Secret" not in page
    page = console.text("/console/metrics?namespace=App")
    assert re.search(r'metric=Latency">Latency</a></td><td>2</td>', page)
    assert re.search(r'metric=Errors">Errors</a></td><td>1</td>', page)
    page = console.text("/console/metrics?namespace=App&metric=Latency")
    links = [html.unescape(link)
             for link in re.findall(r'href="(/console/metrics\?[^"]*dims=[^"]+)"', page)]
    assert len(links) == 2 and ">Host=b/c=d</a>" in page
    page = console.text(links[0])
    assert "vendor/chart.min.js" in page and "charts.js" in page
    assert '<span data-crumb="dimensions">Host=a</span>' in page
    [src] = chart_sources(page)
    status, answer = data(console, src, stat="Average", range="hour")
    assert status == 200 and answer["period"] == 60 and answer["stat"] == "Average"
    [series] = answer["series"]
    assert [value for _, value in series["points"]] == [10.0, 20.0, 30.0]
    assert answer["start"] <= series["points"][0][0] < series["points"][-1][0] < answer["end"]
    assert answer["end"] - answer["start"] == 3600
    # other statistics and ranges: the day's 5-minute periods hold all three points
    _, answer = data(console, src, stat="Maximum", range="day")
    assert answer["period"] == 300 and answer["end"] - answer["start"] == 86400
    assert sum(len(s["points"]) for s in answer["series"]) in (1, 2)
    assert max(v for s in answer["series"] for _, v in s["points"]) == 30.0
    _, answer = data(console, src, stat="SampleCount", range="week")
    assert answer["period"] == 3600
    assert sum(v for s in answer["series"] for _, v in s["points"]) == 3.0
    # a metric without dimensions charts too
    page = console.text("/console/metrics?" + urlencode(
        {"namespace": "App", "metric": "Errors", "dims": "[]"}))
    assert "(no dimensions)" in page
    _, answer = data(console, chart_sources(page)[0], stat="Sum", range="hour")
    assert [v for _, v in answer["series"][0]["points"]] == [1.0]


def test_another_account_sees_none_of_it(app):
    publish(app, "eucalyptus", "App", "Latency", [["Host", "a"]], [10.0])
    admin, other = Console(app), Console(app, account="other")
    [src] = chart_sources(admin.text("/console/metrics?" + urlencode(
        {"namespace": "App", "metric": "Latency", "dims": '[["Host","a"]]'})))
    assert "App" not in other.text("/console/metrics")
    assert "No metrics yet" in other.text("/console/metrics")
    assert "No metric Latency in App." in other.text(
        "/console/metrics?namespace=App&metric=Latency")
    status, answer = data(other, src, stat="Average", range="hour")
    assert status == 200 and answer["series"][0]["points"] == []


def test_bad_chart_requests_are_aws_style_errors(app):
    console = Console(app)
    series = json.dumps(["App", "Latency", []])
    for params, code in (({"series": series, "stat": "Median"}, "ValidationError"),
                         ({"series": series, "range": "year"}, "InvalidParameterValue"),
                         ({"series": "not json"}, "InvalidParameterValue"),
                         ({"series": json.dumps(["App", "L", [["a"]]])},
                          "InvalidParameterValue"),
                         ({}, "InvalidParameterValue"),
                         ({"series": json.dumps(["", "Latency", []])}, "ValidationError")):
        response = console.get("/console/metrics/data?" + urlencode(params))
        assert response.status_code == 400, (params, response.get_data(as_text=True))
        assert response.get_json()["code"] == code, params
    page = console.get("/console/metrics?namespace=App&metric=L&dims=nope")
    assert page.status_code == 400 and "InvalidParameterValue" in page.get_data(as_text=True)
    assert Console(app).get("/console/metrics/data").status_code == 400
    assert app.test_client().get("/console/metrics/data?series=x").status_code == 302


def test_an_instance_page_charts_its_cpu_disk_and_network(app):
    console = Console(app)
    console.post("/console/instances/launch", {"image_id": make_image(app)})
    [instance_id] = instance_ids(app)
    wait(app)
    publish(app, "eucalyptus", "AWS/EC2", "CPUUtilization", [["InstanceId", instance_id]],
            [12.5, 50.0], unit="Percent")
    publish(app, "eucalyptus", "AWS/EC2", "NetworkIn", [["InstanceId", instance_id]], [100.0],
            unit="Bytes")
    publish(app, "eucalyptus", "AWS/EC2", "NetworkOut", [["InstanceId", instance_id]], [7.0],
            unit="Bytes")
    page = console.text(f"/console/instances/{instance_id}")
    assert "Monitoring" in page and "CPU utilisation" in page
    cpu, disk, network = chart_sources(page)
    _, answer = data(console, cpu, stat="Average", range="hour")
    assert [v for _, v in answer["series"][0]["points"]] == [12.5, 50.0]
    _, answer = data(console, disk, stat="Sum", range="hour")
    assert [s["label"] for s in answer["series"]] == ["DiskReadBytes", "DiskWriteBytes"]
    assert all(s["points"] == [] for s in answer["series"])
    _, answer = data(console, network, stat="Sum", range="hour")
    assert {s["label"]: [v for _, v in s["points"]] for s in answer["series"]} == {
        "NetworkIn": [100.0], "NetworkOut": [7.0]}
    # the other account's chart of the same instance id is empty
    _, answer = data(Console(app, account="other"), cpu, stat="Average", range="hour")
    assert answer["series"][0]["points"] == []
    console.post(f"/console/instances/{instance_id}/action", {"action": "terminate"})
    wait(app)


def test_the_admin_dashboard_charts_node_utilisation(app):
    console = Console(app)
    page = console.text("/console/dashboard")
    assert 'data-empty="node-utilisation"' in page and "chart.min.js" not in page
    publish(app, "eucalyptus", "Eucalite/Node", "CPUAllocated", [["NodeId", "node-a"]], [2.0, 4.0])
    publish(app, "eucalyptus", "Eucalite/Node", "CPUAllocated", [["NodeId", "node-b"]], [1.0])
    page = console.text("/console/dashboard")
    assert "data-empty" not in page and "vCPUs allocated" in page
    cpu = chart_sources(page)[0]
    _, answer = data(console, cpu, stat="Average", range="hour")
    assert {s["label"]: [v for _, v in s["points"]] for s in answer["series"]} == {
        "node-a": [2.0, 4.0], "node-b": [1.0]}
    # not on another account's dashboard, even one that publishes Eucalite/Node itself
    publish(app, "other", "Eucalite/Node", "CPUAllocated", [["NodeId", "fake"]], [1.0])
    page = Console(app, account="other").text("/console/dashboard")
    assert "Node utilisation" not in page and "data-src" not in page


def alarm(app, name, account="eucalyptus"):
    with app.app_context():
        cloudwatch(app).put_metric_alarm(principal(app, account), {
            "AlarmName": name, "Namespace": "App", "MetricName": "Latency",
            "Dimensions": [{"Name": "Host", "Value": "a"}], "Statistic": "Average",
            "Period": 60, "EvaluationPeriods": 1, "Threshold": 80.0,
            "ComparisonOperator": "GreaterThanThreshold", "AlarmDescription": "slow"})


def test_alarms_state_history_actions_and_delete(app):
    alarm(app, "slow/api")
    alarm(app, "theirs", account="other")
    console = Console(app)
    page = console.text("/console/alarms")
    row = re.search(r'<tr data-alarm="slow/api">.*?</tr>', page, re.S).group(0)
    assert "INSUFFICIENT_DATA" in row and "Unchecked: Initial alarm creation" in row
    assert "App Latency Host=a" in row and "GreaterThanThreshold 80.0" in row
    assert "theirs" not in page
    link = html.unescape(re.search(r'href="(/console/alarms/detail\?name=[^"]+)"', row).group(1))
    page = console.text(link)
    assert "<td>slow</td>" in page
    assert 'data-threshold="80.0"' in page and len(chart_sources(page)) == 1

    page = console.page("/console/alarms/state", {"name": "slow/api", "state": "ALARM",
                                                  "reason": "by hand"})
    assert "Alarm slow/api is now ALARM." in flashes(page)
    assert '<span class="state alarm-alarm" data-state>ALARM</span>' in page
    assert "<td data-reason>by hand</td>" in page
    history = re.search(r'data-list="history">.*?</table>', page, re.S).group(0)
    assert "StateUpdate" in history and "Alarm updated from INSUFFICIENT_DATA to ALARM" in history
    # a state the API does not know is its ValidationError, not a 500
    page = console.page("/console/alarms/state", {"name": "slow/api", "state": "BROKEN"})
    assert any(m.startswith("ValidationError: ") for m in flashes(page))
    assert "ALARM" in console.text("/console/alarms?state=ALARM")
    assert "slow/api" not in console.text("/console/alarms?state=OK")

    page = console.page("/console/alarms/actions", {"name": "slow/api", "enabled": "no"})
    assert "Actions of alarm slow/api disabled." in flashes(page)
    assert "Enable actions" in page

    # the other account can neither see nor change it
    other = Console(app, account="other")
    response = other.get(link)
    assert response.status_code == 404 and "ResourceNotFound" in response.get_data(as_text=True)
    page = other.page("/console/alarms/state", {"name": "slow/api", "state": "OK"}, status=404)
    assert any(m.startswith("ResourceNotFound: ") for m in flashes(page))

    page = console.page("/console/alarms/delete", {"name": "slow/api"})
    assert "Deleted alarm slow/api." in flashes(page) and "slow/api" not in page.split(
        "</p>", 1)[1]
    assert console.get(link).status_code == 404
    with app.app_context():
        assert cloudwatch(app).describe_alarms(principal(app, "other"), {})[
            "MetricAlarms"][0]["AlarmName"] == "theirs"


def test_iam_users_see_what_their_policies_allow(app):
    """A user without CloudWatch permissions has no Metrics or Alarms pages, charts or
    monitoring section; one allowed to read sees them and is refused changes."""
    from test_console_roles import allow, doc

    with app.app_context():
        root = principal(app, "other")
        iam = app.extensions["eucalite"].iam
        for name, policy in (("dev", doc(allow(["ec2:Describe*", "ec2:RunInstances"]))),
                             ("watcher", doc(allow(["cloudwatch:ListMetrics",
                                                    "cloudwatch:GetMetricData",
                                                    "cloudwatch:DescribeAlarm*"])))):
            accounts.create_user("other", name)
            set_password("other", name, PASSWORD)
            iam.put_entity_policy(root, "user", name, "console", policy)
    alarm(app, "busy", account="other")
    publish(app, "other", "App", "Latency", [["Host", "a"]], [10.0])
    src = "/console/metrics/data?" + urlencode(
        {"series": json.dumps(["App", "Latency", [["Host", "a"]]])})

    dev = Console(app, "other", "dev")
    page = dev.text("/console/dashboard")
    assert ">Metrics</a>" not in page and ">Alarms</a>" not in page
    for path in ("/console/metrics", "/console/alarms", "/console/alarms/detail?name=busy",
                 src):
        assert dev.get(path).status_code == 403, path
    image = make_image(app, account="other")
    dev.post("/console/instances/launch", {"image_id": image})
    [instance_id] = instance_ids(app)
    wait(app)
    page = dev.text(f"/console/instances/{instance_id}")
    assert "Monitoring" not in page and "data-src" not in page and "chart.min.js" not in page

    watcher = Console(app, "other", "watcher")
    page = watcher.text("/console/dashboard")
    assert ">Metrics</a>" in page and ">Alarms</a>" in page
    assert "App" in watcher.text("/console/metrics")
    status, answer = data(watcher, src)
    assert status == 200 and [v for _, v in answer["series"][0]["points"]] == [10.0]
    assert "busy" in watcher.text("/console/alarms")
    page = watcher.page("/console/alarms/state", {"name": "busy", "state": "ALARM"})
    assert any(m.startswith("AccessDenied: ") and "cloudwatch:SetAlarmState" in m
               for m in flashes(page))
    page = watcher.page("/console/alarms/delete", {"name": "busy"})
    assert any(m.startswith("AccessDenied: ") for m in flashes(page))
    assert "INSUFFICIENT_DATA" in watcher.text("/console/alarms/detail?name=busy")
    Console(app, "other").post(f"/console/instances/{instance_id}/action",
                               {"action": "terminate"})
    wait(app)
