// The indicators' report of a city: for one period, each indicator's value with its trend
// over the periods computed, grouped by dimension; how much of each dimension has data;
// and the database quality scores. Vietnamese first.
"use strict";

const TEXT = {
  vi: {
    title: "Báo cáo chỉ số đô thị thông minh", period: "Kỳ đánh giá",
    coverage: "Mức độ có số liệu theo lĩnh vực", quality: "Chất lượng cơ sở dữ liệu",
    method: "Giá trị tính từ dữ liệu của nền tảng (dothi kpi compute) hoặc từ số liệu gốc; mỗi giá trị kèm nguồn gốc.",
    computed: "Chỉ số có giá trị", withMethod: "Chỉ số tính được từ dữ liệu", qualityMean: "Điểm chất lượng dữ liệu trung bình",
    code: "Mã", indicator: "Chỉ số", value: "Giá trị", trend: "Xu hướng", missing: "chưa có số liệu",
    higher: "cao hơn là tốt", lower: "thấp hơn là tốt", provenance: "nguồn gốc",
    dataset: "Bộ dữ liệu", agency: "Đơn vị", score: "Điểm", entities: "Số thực thể",
    of: "trên", none: "Chưa có giá trị nào cho thành phố này.",
    dims: {Economy: "Kinh tế", Environment: "Môi trường", "Society and Culture": "Văn hóa – xã hội"},
  },
  en: {
    title: "Smart city indicators report", period: "Period",
    coverage: "Data coverage by dimension", quality: "Database quality",
    method: "Values computed from the platform's data (dothi kpi compute) or from raw values; each keeps its provenance.",
    computed: "Indicators with a value", withMethod: "Indicators computable from data", qualityMean: "Mean data quality score",
    code: "Code", indicator: "Indicator", value: "Value", trend: "Trend", missing: "no data yet",
    higher: "higher is better", lower: "lower is better", provenance: "provenance",
    dataset: "Dataset", agency: "Agency", score: "Score", entities: "Entities",
    of: "of", none: "No values for this city yet.",
    dims: {},
  },
};

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  city: params.get("city") || "danang",
  data: null, quality: [], period: params.get("period"),
};

function t(key) { return TEXT[state.lang][key] || TEXT.vi[key] || key; }

function number(value) {
  return new Intl.NumberFormat(state.lang === "en" ? "en-GB" : "vi-VN", {maximumFractionDigits: 2}).format(value);
}

function dimensionName(d) { return TEXT[state.lang].dims[d] || d; }

// A line through the indicator's values over the periods, the chosen one marked.
function sparkline(values, periods) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 24");
  svg.setAttribute("width", "100");
  svg.setAttribute("height", "24");
  const points = periods.map((p, i) => [i, values[p] ? values[p].value : null]).filter(([, v]) => v !== null);
  svg.dataset.points = String(points.length);
  if (!points.length) return svg;
  const vs = points.map(([, v]) => v);
  const lo = Math.min(...vs), hi = Math.max(...vs);
  const x = i => periods.length > 1 ? 4 + 92 * i / (periods.length - 1) : 50;
  const y = v => hi > lo ? 20 - 16 * (v - lo) / (hi - lo) : 12;
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map(([i, v]) => `${x(i)},${y(v)}`).join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#0b63b6");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  for (const [i, v] of points) {
    const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    dot.setAttribute("cx", x(i));
    dot.setAttribute("cy", y(v));
    dot.setAttribute("r", periods[i] === state.period ? 3 : 2);
    dot.setAttribute("fill", periods[i] === state.period ? "#d7263d" : "#0b63b6");
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = `${periods[i]}: ${number(v)}`;
    dot.append(title);
    svg.append(dot);
  }
  return svg;
}

function render() {
  document.documentElement.lang = state.lang;
  document.getElementById("lang").textContent = state.lang === "vi" ? "EN" : "VI";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.getElementById("city").textContent = state.city;
  document.title = `${t("title")} — ${state.city}`;
  const data = state.data;
  const select = document.getElementById("period");
  select.replaceChildren(...data.periods.map(p => el("option", {value: p}, p)));
  select.value = state.period || "";
  const indicators = data.indicators;
  const withValue = indicators.filter(i => i.values[state.period]);
  const scores = state.quality.map(q => q.score).filter(s => typeof s === "number");
  document.getElementById("tiles").replaceChildren(
    tile(t("computed"), `${withValue.length}`, "tile-computed"),
    tile(t("withMethod"), `${indicators.filter(i => i.method).length}`),
    tile(t("qualityMean"), scores.length ? number(scores.reduce((a, b) => a + b, 0) / scores.length) : "—"));
  const byDimension = new Map();
  for (const i of indicators) {
    if (!byDimension.has(i.dimension)) byDimension.set(i.dimension, []);
    byDimension.get(i.dimension).push(i);
  }
  document.getElementById("coverage").replaceChildren(el("table", {}, el("tbody", {},
    ...[...byDimension].map(([d, list]) => {
      const have = list.filter(i => i.values[state.period]).length;
      return el("tr", {"data-testid": "coverage-row"}, el("td", {}, dimensionName(d)),
        el("td", {}, el("span", {class: "bar ok", style: `width:${Math.round(200 * have / list.length)}px`}),
           el("span", {class: "bar", style: `width:${Math.round(200 * (1 - have / list.length))}px;opacity:.25`})),
        el("td", {class: "value"}, `${have} ${t("of")} ${list.length}`));
    }))));
  document.getElementById("dimensions").replaceChildren(...[...byDimension].map(([d, list]) =>
    el("section", {}, el("h2", {}, dimensionName(d)), el("table", {},
      el("thead", {}, el("tr", {}, ...["code", "indicator", "value", "trend"].map(k => el("th", {}, t(k))))),
      el("tbody", {}, ...list.map(i => row(i, data.periods)))))));
  document.getElementById("quality").replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, ...["dataset", "agency", "entities", "score"].map(k => el("th", {}, t(k))))),
    el("tbody", {}, ...state.quality.map(q => el("tr", {"data-testid": "quality-row"},
      el("td", {}, q.assessedType), el("td", {}, q.agency), el("td", {class: "value"}, number(q.entities)),
      el("td", {class: "value"}, el("span", {class: "bar ok", style: `width:${Math.round(q.score || 0)}px`}),
         ` ${q.score === undefined ? "—" : number(q.score)}`))))));
}

function tile(label, figure, testid) {
  return el("div", {class: "tile", "data-testid": testid || null},
            el("div", {class: "figure"}, figure), el("div", {class: "label"}, label));
}

function row(indicator, periods) {
  const current = indicator.values[state.period];
  const direction = indicator.direction === "higher" || indicator.direction === "lower" ? ` (${t(indicator.direction)})` : "";
  return el("tr", {"data-testid": "indicator", "data-code": indicator.code},
    el("td", {}, indicator.code),
    el("td", {}, indicator.name, el("div", {class: "note"}, indicator.unit + direction)),
    el("td", {class: "value", "data-testid": "value"}, current ? number(current.value) : el("span", {class: "missing"}, t("missing")),
       current ? el("details", {}, el("summary", {}, t("provenance")),
                    el("pre", {}, JSON.stringify(current.provenance, null, 1))) : null),
    el("td", {}, sparkline(indicator.values, periods)));
}

async function start() {
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    render();
  });
  document.getElementById("period").addEventListener("change", e => { state.period = e.target.value; render(); });
  [state.data, state.quality] = await Promise.all([
    api(`/kpi/values?city=${encodeURIComponent(state.city)}`), api("/kpi/quality")]);
  if (!state.period || !state.data.periods.includes(state.period)) {
    state.period = state.data.periods[state.data.periods.length - 1] || null;
  }
  render();
  window.kpiReady = true;
}

window.kpi = {state};
start();
