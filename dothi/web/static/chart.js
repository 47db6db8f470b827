// A small SVG line chart of values over time (a sensor's last 24 hours, a month of a
// dataset): one line per series, time on the x axis (ticks in the city's time zone). Each
// line is scaled to its own range, so that attributes of different units can share a
// chart, unless options.sameScale; the range is printed beside the series' name.
"use strict";

const CHART_COLOURS = ["#0b63b6", "#d7263d", "#2e9d4a", "#8a4fbd"];

function lineChart(series, options) {
  const width = options.width || 320, height = options.height || 150;
  const pad = {left: 6, right: 6, top: 6, bottom: 30 + 12 * series.length};
  const from = options.from.getTime(), to = options.to.getTime();
  const plotW = width - pad.left - pad.right, plotH = height - pad.top - pad.bottom;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "chart");
  const add = (name, attrs, text) => {
    const el = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.appendChild(el);
    return el;
  };
  const x = t => pad.left + (t - from) / (to - from) * plotW;
  add("rect", {x: pad.left, y: pad.top, width: plotW, height: plotH, fill: "none",
               class: "axis"});
  // Ticks every 6 hours by default; options.tickMs and options.tickFormat (an
  // Intl.DateTimeFormat) for longer spans.
  const tickMs = options.tickMs || 21600000;
  const tickFmt = options.tickFormat || new Intl.DateTimeFormat(options.locale || "vi-VN",
    {hour: "2-digit", minute: "2-digit", timeZone: options.timeZone || "Asia/Ho_Chi_Minh"});
  for (let t = Math.ceil(from / tickMs) * tickMs; t <= to; t += tickMs) {
    add("line", {x1: x(t), x2: x(t), y1: pad.top, y2: pad.top + plotH, class: "axis"});
    add("text", {x: x(t), y: pad.top + plotH + 11, "text-anchor": "middle"},
        tickFmt.format(new Date(t)));
  }
  // options.sameScale: one range for every line (values of one unit), not one each.
  const everyValue = series.flatMap(s => s.points.map(p => p[1]));
  series.forEach((s, k) => {
    const colour = CHART_COLOURS[k % CHART_COLOURS.length];
    const values = s.points.map(p => p[1]);
    const legendY = pad.top + plotH + 24 + 12 * k;
    if (!values.length) {
      add("text", {x: pad.left, y: legendY, fill: colour}, `${s.name}: ${options.empty || "—"}`);
      return;
    }
    const scaled = options.sameScale ? everyValue : values;
    let lo = Math.min(...scaled), hi = Math.max(...scaled);
    if (hi === lo) { hi += 1; lo -= 1; }
    const y = v => pad.top + plotH - (v - lo) / (hi - lo) * plotH;
    const path = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    add("path", {d: path.join(" "), fill: "none", stroke: colour, "stroke-width": 1.6});
    const fmt = v => Number.isInteger(v) ? v : v.toFixed(2);
    add("text", {x: pad.left, y: legendY, fill: colour},
        `${s.name}: ${fmt(Math.min(...values))} – ${fmt(Math.max(...values))}`);
  });
  return svg;
}
