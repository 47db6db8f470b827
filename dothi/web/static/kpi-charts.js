// The assessment report's two charts, drawn as SVG with no library: a radar of the
// dimension scores (0-100) for one or more periods, and the scores' trend over the periods.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#0b63b6", "#d7263d", "#2e7d32", "#f29e4c", "#7b4fa0", "#1b998b", "#5b6775"];

function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const child of children) node.append(child);
  return node;
}

function titled(node, text) {
  node.append(svgEl("title", {}, text));
  return node;
}

// axes: [{id, label}]; series: [{label, scores: {id: 0-100 or null}, dashed}], first on top.
function radarChart(axes, series, format) {
  // Wider than high: the dimensions' names sit left and right of the web.
  const width = 540, height = 330, cx = width / 2, cy = height / 2 + 6, r = 120;
  const svg = svgEl("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", "data-testid": "radar"});
  const at = (i, v) => {
    const angle = -Math.PI / 2 + 2 * Math.PI * i / axes.length;
    return [cx + r * v / 100 * Math.cos(angle), cy + r * v / 100 * Math.sin(angle)];
  };
  for (const level of [25, 50, 75, 100]) {
    svg.append(svgEl("polygon", {points: axes.map((_, i) => at(i, level).join(",")).join(" "),
                                 fill: "none", stroke: "#dde3ea"}));
  }
  axes.forEach((axis, i) => {
    const [x, y] = at(i, 100);
    svg.append(svgEl("line", {x1: cx, y1: cy, x2: x, y2: y, stroke: "#dde3ea"}));
    const [lx, ly] = at(i, 110);
    svg.append(svgEl("text", {x: lx, y: ly < cy - r * 0.9 ? ly - 4 : ly + 12,
                              "text-anchor": Math.abs(lx - cx) < 5 ? "middle" : lx > cx ? "start" : "end"},
                     axis.label));
  });
  [...series].reverse().forEach((s, k) => {
    const colour = PALETTE[(series.length - 1 - k) % PALETTE.length];
    const points = axes.map((a, i) => at(i, s.scores[a.id] || 0));
    svg.append(svgEl("polygon", {points: points.map(p => p.join(",")).join(" "), fill: colour,
                                 "fill-opacity": s.dashed ? 0 : 0.18, stroke: colour, "stroke-width": 2,
                                 "stroke-dasharray": s.dashed ? "5 4" : null}));
    if (!s.dashed) {
      axes.forEach((a, i) => svg.append(titled(svgEl("circle", {
        cx: points[i][0], cy: points[i][1], r: 3.5, fill: colour, "data-dimension": a.id,
        "data-score": s.scores[a.id] === null || s.scores[a.id] === undefined ? "" : s.scores[a.id]}),
        `${a.label}: ${format(s.scores[a.id])}`)));
    }
  });
  return el("div", {}, svg, legend(series.map((s, i) => ({label: s.label, colour: PALETTE[i % PALETTE.length]}))));
}

// periods: ["2024", ...]; lines: [{label, values: {period: 0-100}, bold}].
function trendChart(periods, lines, format) {
  const width = 440, height = 240, left = 34, right = 26, top = 12, bottom = 26;
  const svg = svgEl("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", "data-testid": "trend"});
  const x = i => periods.length > 1 ? left + (width - left - right) * i / (periods.length - 1) : (left + width - right) / 2;
  const y = v => top + (height - top - bottom) * (1 - v / 100);
  for (const v of [0, 25, 50, 75, 100]) {
    svg.append(svgEl("line", {x1: left, x2: width - right, y1: y(v), y2: y(v), stroke: "#eef1f5"}));
    svg.append(svgEl("text", {x: left - 4, y: y(v) + 4, "text-anchor": "end"}, String(v)));
  }
  periods.forEach((p, i) => svg.append(svgEl("text", {x: x(i), y: height - 8, "text-anchor": "middle"}, p)));
  lines.forEach((line, k) => {
    const colour = PALETTE[k % PALETTE.length];
    const points = periods.map((p, i) => [i, line.values[p]]).filter(([, v]) => typeof v === "number");
    svg.append(svgEl("polyline", {points: points.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), fill: "none",
                                  stroke: colour, "stroke-width": line.bold ? 3 : 1.5,
                                  "data-line": line.id, "data-points": points.length}));
    for (const [i, v] of points) {
      svg.append(titled(svgEl("circle", {cx: x(i), cy: y(v), r: line.bold ? 3.5 : 2.5, fill: colour}),
                        `${line.label}, ${periods[i]}: ${format(v)}`));
    }
  });
  return el("div", {}, svg, legend(lines.map((l, i) => ({label: l.label, colour: PALETTE[i % PALETTE.length]}))));
}

function legend(items) {
  return el("div", {class: "legend"}, ...items.map(item =>
    el("span", {}, el("i", {style: `background:${item.colour}`}), item.label)));
}
