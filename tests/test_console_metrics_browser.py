"""The console's CloudWatch charts in a real browser (Playwright driving Debian's Chromium):
Chart.js and charts.js load under the console's Content-Security-Policy, fetch the chart
JSON and draw the published points; the range picker redraws. Only a browser proves the
charts are drawn. Skipped, with the reason, when Chromium or Playwright is missing."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from consoleutil import PASSWORD, browser_sign_in, chromium_page
from liveutil import start_live_node, stop_live
from eucalite import accounts
from eucalite.cloudwatch.datums import Datum
from eucalite.cloudwatch.stats import Cell
from eucalite.web.session import set_password

#: The chart's Chart.js instance's datasets, as (label, number of points) pairs.
DATASETS = """(selector) => {
  const chart = Chart.getChart(document.querySelector(selector + " canvas"));
  return chart ? chart.data.datasets.map((d) => [d.label, d.data.length]) : null;
}"""


@pytest.fixture
def page(tmp_path):
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    with live.app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    try:
        with chromium_page(live) as page:
            page.problems = []
            # script errors and CSP refusals; failed loads through their responses, where
            # the browser's own /favicon.ico (no such page) can be told apart
            page.on("console", lambda message: page.problems.append(message.text)
                    if message.type == "error"
                    and not message.text.startswith("Failed to load resource") else None)
            page.on("pageerror", lambda error: page.problems.append(str(error)))
            page.on("response", lambda response: page.problems.append(
                f"{response.status} {response.url}") if response.status >= 400
                and not response.url.endswith("/favicon.ico") else None)
            yield page
    finally:
        stop_live(live, server)


def publish(live, namespace, name, dimensions, values):
    """*values* one a minute, the last a minute ago, into the cloud admin's account."""
    now = int(time.time())
    data = [Datum(name=name, dimensions=dimensions, unit="None", resolution=60,
                  timestamp=now - 60 * (len(values) - index), cell=Cell.of_values({v: 1.0}))
            for index, v in enumerate(values)]
    with live.app.app_context():
        owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        live.services.cloudwatch.publish(owner, namespace, data)


def test_metric_and_node_charts_are_drawn(page):
    publish(page.live, "App", "Latency", [["Host", "a"]], [10.0, 20.0, 30.0, 25.0])
    publish(page.live, "Eucalite/Node", "CPUAllocated", [["NodeId", "node-a"]], [1.0, 2.0])
    base = page.base
    browser_sign_in(page)

    # the dashboard's node utilisation: one line for the node that published
    page.wait_for_selector("figure[data-chart][data-points]")
    first = "figure[data-chart]:first-of-type"
    assert page.evaluate(DATASETS, first) == [["node-a", 2]]

    # the metrics browser, clicked through to the chart
    page.goto(f"{base}/metrics")
    page.click("a:has-text('App')")
    page.click("a:has-text('Latency')")
    page.click("a:has-text('Host=a')")
    page.wait_for_selector("figure[data-chart][data-points]")
    assert page.evaluate(DATASETS, "figure[data-chart]") == [["a", 4]]
    assert page.get_attribute("figure[data-chart]", "data-points") == "4"
    box = page.locator("figure[data-chart] canvas").bounding_box()
    assert box["width"] > 100 and box["height"] > 100
    # another statistic: SampleCount over the day's 5-minute periods adds up to 4 points
    page.select_option("select[data-stat]", "SampleCount")
    page.click("button[data-range=day]")
    page.wait_for_function("""() => {
      const chart = Chart.getChart(document.querySelector("figure[data-chart] canvas"));
      return chart.options.scales.x.max - chart.options.scales.x.min === 86400; }""")
    total = page.evaluate("""() => Chart.getChart(document.querySelector(
        "figure[data-chart] canvas")).data.datasets[0].data.reduce((n, p) => n + p.y, 0)""")
    assert total == 4
    # a gap in the data breaks the line (a null point) rather than joining across it
    now = int(time.time())
    with page.live.app.app_context():
        page.live.services.cloudwatch.publish(
            accounts.get_account(accounts.ADMIN_ACCOUNT).id, "App",
            [Datum(name="Gappy", dimensions=[], unit="None", resolution=60, timestamp=at,
                   cell=Cell.of_values({1.0: 1.0})) for at in (now - 660, now - 600, now - 60)])
    page.goto(f"{base}/metrics?" + urlencode({"namespace": "App", "metric": "Gappy",
                                                "dims": "[]"}))
    page.wait_for_selector("figure[data-chart][data-points='3']")
    assert page.evaluate("""() => Chart.getChart(document.querySelector(
        "figure[data-chart] canvas")).data.datasets[0].data.map((p) => p.y)""") == \
        [1, 1, None, 1]
    # a metric with no data in range says so instead of drawing nothing silently
    page.goto(f"{base}/metrics?" + urlencode({"namespace": "App", "metric": "Latency",
                                                "dims": '[["Host","zzz"]]'}))
    page.wait_for_selector("figure[data-chart][data-points='0']")
    assert page.text_content("figure[data-chart] .chart-status") == \
        "No data in this range yet."
    # nothing was refused by the Content-Security-Policy, nothing threw
    assert page.problems == []
