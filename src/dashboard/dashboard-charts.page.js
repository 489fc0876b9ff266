// The dashboard's charts, drawn by uPlot (inlined before this script): per rule, what its verdicts were in each
// point of the range; and how the origin answered. A time axis in the viewer's local time, a y scale, and a legend
// that shows the exact counts of the point under the cursor.

/** Per rule: the outcomes drawn, their labels and colours (canvas needs colours, not CSS variables). */
const RULE_SERIES = [
  { label: "allowed", stroke: "#1a7f37", value: (point) => point.outcomes.allowed },
  { label: "denied", stroke: "#cf222e", value: (point) => point.outcomes.denied },
  { label: "shadow-denied", stroke: "#bf8700", dash: [6, 4], value: (point) => point.outcomes.shadow_denied },
  { label: "near limit", stroke: "#0969da", dash: [2, 3], value: (point) => point.nearLimit },
];

/** The origin's answers drawn: its own by class, and the proxy's 502 and 504. */
const ORIGIN_SERIES = [
  { label: "2xx", stroke: "#1a7f37", value: (origin) => origin.answers["2xx"] },
  { label: "3xx", stroke: "#8250df", value: (origin) => origin.answers["3xx"] },
  { label: "4xx", stroke: "#bf8700", value: (origin) => origin.answers["4xx"] },
  { label: "5xx", stroke: "#cf222e", value: (origin) => origin.answers["5xx"] },
  { label: "502 unreachable", stroke: "#6e7781", dash: [6, 4], value: (origin) => origin.answers.unreachable },
  { label: "504 timeout", stroke: "#57606a", dash: [2, 3], value: (origin) => origin.answers.timeout },
];

const AXIS = { stroke: "#8b949e", grid: { stroke: "rgba(140, 149, 159, 0.2)" }, ticks: { stroke: "rgba(140, 149, 159, 0.4)" } };
const CHART_HEIGHT = 180;

/** The charts drawn, by key (`rule:<name>` or `origin`): each its uPlot and its card. */
const charts = new Map();

/** Every point's start of the range, in epoch seconds (uPlot's unit), the points without a flush included. */
function pointStarts(range) {
  const starts = [];
  for (let startMs = range.startMs; startMs < range.endMs; startMs += range.stepMs) starts.push(startMs / 1000);
  return starts;
}

/** The y axis's label: what one point of the range counts. */
function perPoint(range) {
  return range.stepMs === 60000 ? "per minute" : `per ${range.stepMs / 60000} minutes`;
}

/** uPlot's data for a chart: x, then one array per series, zero where a point had no flush. */
function chartData(stats, seriesList, subjectOf) {
  const byStart = new Map(stats.series.map((point) => [point.startMs / 1000, point]));
  const xs = pointStarts(stats.range);
  return [
    xs,
    ...seriesList.map((series) =>
      xs.map((x) => {
        const point = byStart.get(x);
        const subject = point === undefined ? undefined : subjectOf(point);
        return subject === undefined ? 0 : series.value(subject);
      }),
    ),
  ];
}

function chartWidth(card) {
  return Math.max(200, card.clientWidth - 24);
}

/** Draws (or updates) the chart `key` in `container`. */
function drawChart(container, key, title, seriesList, data, range) {
  let chart = charts.get(key);
  const unit = perPoint(range);
  if (chart && chart.unit !== unit) {
    chart.plot.destroy();
    chart.card.remove();
    charts.delete(key);
    chart = undefined;
  }
  if (!chart) {
    const card = el("article", { className: "chart", dataset: { chart: key } }, el("h3", { textContent: title }));
    container.append(card);
    const options = {
      width: chartWidth(card),
      height: CHART_HEIGHT,
      scales: { x: { time: true } },
      axes: [{ ...AXIS }, { ...AXIS, label: unit, size: 56 }],
      series: [
        { label: "time" },
        ...seriesList.map(({ label, stroke, dash }) => ({
          label,
          stroke,
          width: 2,
          ...(dash ? { dash } : {}),
          value: (_plot, value) => (value === null || value === undefined ? "–" : value.toLocaleString()),
        })),
      ],
      legend: { live: true },
    };
    const plot = new uPlot(options, data, card);
    chart = { plot, card, unit };
    charts.set(key, chart);
  } else {
    chart.plot.setData(data);
  }
}

/** Removes the charts of `prefix` whose keys are not in `kept`. */
function removeChartsExcept(prefix, kept) {
  for (const [key, chart] of charts) {
    if (!key.startsWith(prefix) || kept.has(key)) continue;
    chart.plot.destroy();
    chart.card.remove();
    charts.delete(key);
  }
}

// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.page.js, which is served in the same script.
function renderCharts(stats) {
  $("chart-unit").textContent = `(requests ${perPoint(stats.range)}, ${RANGE_LABELS[stats.range.name]})`;
  const names = Object.keys(stats.inRange.rules).sort();
  const ruleKeys = new Set(names.map((name) => `rule:${name}`));
  removeChartsExcept("rule:", ruleKeys);
  const container = $("charts");
  container.querySelector(":scope > p")?.remove();
  if (names.length === 0) container.replaceChildren(el("p", { className: "muted", textContent: "No decisions in the range." }));
  for (const name of names) {
    drawChart(
      container,
      `rule:${name}`,
      name,
      RULE_SERIES,
      chartData(stats, RULE_SERIES, (point) => point.rules[name]),
      stats.range,
    );
  }
  const origins = $("origin-charts");
  if (stats.inRange.origin === undefined) {
    removeChartsExcept("origin", new Set());
    origins.replaceChildren(el("p", { className: "muted", textContent: "No request went to the origin in the range." }));
    return;
  }
  origins.querySelector(":scope > p")?.remove();
  drawChart(
    origins,
    "origin",
    "Origin answers",
    ORIGIN_SERIES,
    chartData(stats, ORIGIN_SERIES, (point) => point.origin),
    stats.range,
  );
}

// Charts follow their cards' width: two side by side on a desktop, one under another on a phone.
new ResizeObserver(() => {
  for (const { plot, card } of charts.values()) plot.setSize({ width: chartWidth(card), height: CHART_HEIGHT });
}).observe(document.body);
