// eucalite console: CloudWatch charts. Each [data-chart] figure fetches its data-src (the
// console's /metrics/data JSON: {start, end, period, stat, series: [{label, points:
// [[epoch seconds, value], ...]}]}) with its panel's range and statistic and draws it with
// Chart.js (vendor/chart.min.js, loaded before this file): a linear x axis of epoch
// seconds whose ticks are formatted here, so no date adapter is needed.
"use strict";

const COLOURS = ["#1f6f8b", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#c53030",
                 "#2c5282", "#718096"];

// A tick's time: hours and minutes within a day, the date too over longer ranges.
function timeLabel(seconds, span) {
  const when = new Date(seconds * 1000);
  const time = when.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  if (span <= 86400) return time;
  return when.toLocaleDateString([], {month: "short", day: "numeric"}) + " " + time;
}

// Ticks on round local times (every 10 minutes of an hour, 4 hours of a day, a day of a
// week) rather than wherever the linear scale's own steps fall.
const TICK_STEPS = [60, 300, 600, 1800, 3600, 3 * 3600, 4 * 3600, 6 * 3600, 12 * 3600, 86400];

function roundTicks(axis, span) {
  const step = TICK_STEPS.find((s) => span / s <= 8) || 86400;
  const offset = -new Date(axis.min * 1000).getTimezoneOffset() * 60;   // local midnight
  const ticks = [];
  for (let t = Math.ceil((axis.min + offset) / step) * step - offset; t <= axis.max; t += step) {
    ticks.push({value: t});
  }
  axis.ticks = ticks;
}

const compact = new Intl.NumberFormat([], {notation: "compact", maximumFractionDigits: 2});

// A series' points for Chart.js, with a null point where periods are missing (the
// instance was stopped, the collector was not running) so the line breaks there instead of
// joining across the gap.
function withGaps(points, period) {
  const drawn = [];
  points.forEach(([x, y], index) => {
    if (index && x - points[index - 1][0] > period) drawn.push({x: x - period, y: null});
    drawn.push({x, y});
  });
  return drawn;
}

// The chart's Chart.js instance, made on first data and updated after.
function draw(figure, data) {
  const canvas = figure.querySelector("canvas");
  const status = figure.querySelector(".chart-status");
  const span = data.end - data.start;
  const datasets = data.series.map((series, index) => ({
    label: series.label,
    data: withGaps(series.points, data.period),
    borderColor: COLOURS[index % COLOURS.length],
    backgroundColor: COLOURS[index % COLOURS.length],
    borderWidth: 1.5, pointRadius: series.points.length > 60 ? 0 : 2, tension: 0,
  }));
  if (figure.dataset.threshold !== undefined) {
    const threshold = Number(figure.dataset.threshold);
    datasets.push({label: "threshold", data: [{x: data.start, y: threshold},
                                              {x: data.end, y: threshold}],
                   borderColor: "#a32020", borderDash: [6, 4], borderWidth: 1,
                   pointRadius: 0});
  }
  const points = data.series.reduce((n, series) => n + series.points.length, 0);
  status.textContent = points ? "" : "No data in this range yet.";
  figure.dataset.points = String(points);
  const options = {
    animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
    interaction: {mode: "nearest", intersect: false},
    scales: {
      x: {type: "linear", min: data.start, max: data.end,
          afterBuildTicks: (axis) => roundTicks(axis, span),
          ticks: {autoSkip: false, callback: (value) => timeLabel(value, span)}},
      y: {beginAtZero: true, ticks: {callback: (value) => compact.format(value)}},
    },
    plugins: {
      legend: {display: datasets.length > 1},
      tooltip: {callbacks: {title: (items) => items.length ?
        new Date(items[0].parsed.x * 1000).toLocaleString() : ""}},
    },
  };
  if (figure.chart) {
    figure.chart.data.datasets = datasets;
    figure.chart.options = options;
    figure.chart.update();
  } else {
    figure.chart = new Chart(canvas, {type: "line", data: {datasets}, options});
  }
}

async function load(figure, range, stat) {
  const status = figure.querySelector(".chart-status");
  const url = figure.dataset.src + "&range=" + encodeURIComponent(range) +
              "&stat=" + encodeURIComponent(stat || figure.dataset.stat || "Average");
  status.textContent = "Loading…";
  try {
    const response = await fetch(url, {credentials: "same-origin",
                                       headers: {"X-Requested-With": "fetch"}});
    // an expired session redirects to the sign-in page: go there
    if (response.redirected && new URL(response.url).pathname.endsWith("/login")) {
      window.location = response.url;
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("application/json")) {
      status.textContent = "The chart could not be loaded (HTTP " + response.status + ").";
      return;
    }
    const answer = await response.json();
    if (!response.ok) {
      status.textContent = answer.code + ": " + answer.message;
      return;
    }
    draw(figure, answer);
  } catch (e) {
    status.textContent = "The server did not answer: try again.";
  }
}

// A panel: its range buttons and statistic picker reload every chart in it.
function startPanel(panel) {
  const figures = panel.querySelectorAll("[data-chart]");
  const picker = panel.querySelector("select[data-stat]");
  let range = (panel.querySelector("[data-range].here") || {dataset: {range: "hour"}}).dataset.range;
  const reload = () => figures.forEach((figure) => load(figure, range, picker && picker.value));
  panel.querySelectorAll("[data-range]").forEach((button) => {
    button.addEventListener("click", () => {
      panel.querySelectorAll("[data-range]").forEach((b) => b.classList.toggle("here", b === button));
      range = button.dataset.range;
      reload();
    });
  });
  if (picker) picker.addEventListener("change", reload);
  reload();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-chart-panel]").forEach(startPanel);
});
