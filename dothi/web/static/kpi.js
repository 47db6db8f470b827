// The assessment report of a city: for one period, the level reached and the criteria
// (passed or not, and why), a radar of the dimension scores against the previous period,
// their trend, the ranking of the cities with its sensitivity; each indicator's value
// with its trend, grouped by dimension; how much of each dimension has data; and the
// database quality scores. Vietnamese first; the XLSX workbook in either language.
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
    radar: "Điểm theo lĩnh vực", trendTitle: "Điểm qua các kỳ", criteria: "Tiêu chí đánh giá",
    ranking: "Xếp hạng các đô thị", levelReached: "Cấp độ", composite: "Điểm tổng hợp",
    version: "phiên bản", draft: "Dự thảo", submitted: "Đã nộp", returned: "Bị trả lại", accepted: "Đã chấp thuận",
    required: "bắt buộc", optional: "tự chọn", target: "Mục tiêu", result: "Kết quả", evidence: "minh chứng",
    passed: "Đạt", failed: "Không đạt", met: "đạt", "below-target": "chưa đạt mục tiêu", "no-value": "chưa có số liệu",
    "not-met": "chưa đáp ứng", "no-evidence": "thiếu minh chứng", rejected: "không được chấp nhận",
    level0: "Chưa đạt cấp độ 1", levelWord: "Cấp độ", rank: "Hạng", city: "Đô thị", range: "Hạng theo các phương án trọng số",
    tieShared: "đồng hạng với", tieLevel: "bằng điểm với {0}; xếp theo cấp độ", tieRequired: "bằng điểm với {0}; xếp theo số tiêu chí bắt buộc đạt",
    notRanked: "Chưa xếp hạng (chưa được chấp thuận)", comments: "Nhận xét của đơn vị đánh giá",
    xlsx: "Tải XLSX", compositeLine: "Tổng hợp", previous: "Kỳ trước", noAssessment: "Chưa có đánh giá cho kỳ này.",
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
    radar: "Scores by dimension", trendTitle: "Scores over the periods", criteria: "Assessment criteria",
    ranking: "Cities ranked", levelReached: "Level", composite: "Composite score",
    version: "version", draft: "Draft", submitted: "Submitted", returned: "Returned", accepted: "Accepted",
    required: "required", optional: "optional", target: "Target", result: "Result", evidence: "evidence",
    passed: "Passed", failed: "Failed", met: "met", "below-target": "target not reached", "no-value": "no value",
    "not-met": "not met", "no-evidence": "no evidence", rejected: "rejected by the assessor",
    level0: "Below level 1", levelWord: "Level", rank: "Rank", city: "City", range: "Rank under the other weightings",
    tieShared: "shares the rank with", tieLevel: "same score as {0}; ordered by level", tieRequired: "same score as {0}; ordered by required criteria passed",
    notRanked: "Not ranked (not accepted yet)", comments: "Assessor's comments",
    xlsx: "Download XLSX", compositeLine: "Composite", previous: "Previous period", noAssessment: "No assessment for this period yet.",
  },
};

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  city: params.get("city") || "danang",
  data: null, quality: [], period: params.get("period"),
  framework: null, trend: [], assessment: null, ranking: null,
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
  translatePage(state.lang, t);
  document.getElementById("city").textContent = state.city;
  document.title = `${t("title")} — ${state.city}`;
  const data = state.data;
  const select = document.getElementById("period");
  select.replaceChildren(...periods().map(p => el("option", {value: p}, p)));
  select.value = state.period || "";
  renderAssessment();
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

function periods() {
  return [...new Set([...state.data.periods, ...state.trend.map(a => a.period)])].sort();
}

function text(key, ...args) {
  return args.reduce((out, arg, i) => out.replace(`{${i}}`, arg), t(key));
}

// The assessment of the chosen period: level, radar, trend, criteria, ranking.
function renderAssessment() {
  const a = state.assessment, fw = state.framework, lang = state.lang;
  document.getElementById("downloads").replaceChildren(...["vi", "en"].map(l => el("a", {
    href: `/kpi/report.xlsx?city=${encodeURIComponent(state.city)}&period=${encodeURIComponent(state.period)}&lang=${l}`,
    "data-testid": `xlsx-${l}`}, `${t("xlsx")} (${l.toUpperCase()})`)));
  if (!a) {
    document.getElementById("level").replaceChildren(el("span", {class: "missing"}, t("noAssessment")));
    for (const id of ["radar", "trend", "criteria"]) document.getElementById(id).replaceChildren();
  } else {
    document.getElementById("level").replaceChildren(
      el("span", {class: `badge level-${a.level}`, "data-testid": "level-badge", "data-level": a.level},
         a.level ? `${t("levelWord")} ${a.level}: ${pick(a.levelName, lang)}` : t("level0")),
      el("span", {"data-testid": "status"}, `${t(a.status)} · ${t("version")} ${a.version}`),
      el("span", {"data-testid": "composite"}, `${t("composite")}: ${number(a.composite)}`),
      ...(a.comments ? [el("span", {class: "note"}, `${t("comments")}: ${a.comments}`)] : []));
    const axes = fw.dimensions.map(d => ({id: d.id, label: pick(d.name, lang)}));
    const previous = state.trend.filter(x => x.period < state.period).pop();
    const series = [{label: state.period, scores: a.scores}];
    if (previous) series.push({label: `${t("previous")} (${previous.period})`, scores: previous.scores, dashed: true});
    document.getElementById("radar").replaceChildren(radarChart(axes, series, number));
    const byPeriod = key => Object.fromEntries(state.trend.map(x => [x.period, key(x)]));
    const lines = [{id: "composite", label: t("compositeLine"), values: byPeriod(x => x.composite), bold: true},
                   ...fw.dimensions.map(d => ({id: d.id, label: pick(d.name, lang), values: byPeriod(x => x.scores[d.id])}))];
    document.getElementById("trend").replaceChildren(trendChart(state.trend.map(x => x.period), lines, number));
    document.getElementById("criteria").replaceChildren(criteriaTable(a));
  }
  document.getElementById("ranking").replaceChildren(rankingTable());
}

function criteriaTable(a) {
  const fw = state.framework, lang = state.lang;
  const dims = Object.fromEntries(fw.dimensions.map(d => [d.id, pick(d.name, lang)]));
  const rows = [];
  for (const level of fw.levels) {
    rows.push(el("tr", {class: "level-head"}, el("td", {colspan: 5}, `${t("levelWord")} ${level.level}: ${pick(level.name, lang)}`)));
    for (const c of fw.criteria.filter(c => c.level === level.level)) {
      const out = a.outcomes[c.code] || {};
      const target = c.target ? (c.target.atLeast !== undefined ? `≥ ${number(c.target.atLeast)}` : `≤ ${number(c.target.atMost)}`) : "";
      rows.push(el("tr", {"data-testid": "criterion", "data-code": c.code, "data-passed": String(!!out.passed)},
        el("td", {}, c.code),
        el("td", {}, pick(c.name, lang), el("div", {class: "sub"},
          `${dims[c.dimension]} · ${t(c.required ? "required" : "optional")}${c.kpi ? ` · ${c.kpi}` : ""}`)),
        el("td", {class: "value"}, out.value === null || out.value === undefined ? "" : number(out.value)),
        el("td", {class: "value"}, target),
        el("td", {}, el("span", {class: out.passed ? "pass" : "fail"}, t(out.passed ? "passed" : "failed")),
           out.passed ? null : el("div", {class: "sub"}, t(out.reason) + (out.comment ? `: ${out.comment}` : "")),
           out.evidence ? el("div", {}, el("a", {href: out.evidence, rel: "noopener"}, t("evidence"))) : null)));
    }
  }
  return el("table", {}, el("thead", {}, el("tr", {}, ...["code", "indicator", "value", "target", "result"].map(k =>
    el("th", {}, k === "indicator" ? t("criteria") : t(k))))), el("tbody", {}, ...rows));
}

function rankingTable() {
  const r = state.ranking;
  if (!r) return el("div");
  const lang = state.lang;
  const tie = row => {
    if (!row.tie) return null;
    const others = row.tie.with.join(", ");
    return el("div", {class: "tie", "data-testid": "tie"}, row.tie.settledBy === "shared" ? `${t("tieShared")} ${others}`
      : text(row.tie.settledBy === "level" ? "tieLevel" : "tieRequired", others));
  };
  return el("div", {},
    el("table", {}, el("thead", {}, el("tr", {}, ...["rank", "city", "composite", "levelReached", "range"].map(k => el("th", {}, t(k))))),
      el("tbody", {}, ...r.rows.map(row => el("tr", {"data-testid": "rank-row", "data-city": row.city, class: row.city === state.city ? "mine" : null},
        el("td", {class: "value"}, String(row.rank)),
        el("td", {}, row.city, tie(row)),
        el("td", {class: "value"}, number(row.composite)),
        el("td", {class: "value"}, String(row.level)),
        el("td", {class: "value", "data-testid": "rank-range"},
           row.sensitivity.best === row.sensitivity.worst ? String(row.sensitivity.best) : `${row.sensitivity.best}–${row.sensitivity.worst}`))))),
    r.notRanked.length ? el("p", {class: "note"}, `${t("notRanked")}: ${r.notRanked.map(n => `${n.city} (${t(n.status)})`).join(", ")}`) : null,
    el("p", {class: "note", "data-testid": "method"}, pick(r.method, lang)));
}

async function loadPeriod() {
  const stored = state.trend.find(a => a.period === state.period);
  const query = `city=${encodeURIComponent(state.city)}&period=${encodeURIComponent(state.period)}`;
  [state.assessment, state.ranking] = state.period ? await Promise.all([
    stored ? Promise.resolve(stored) : api(`/kpi/assessment?${query}`),
    api(`/kpi/ranking?period=${encodeURIComponent(state.period)}`)]) : [null, null];
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
    el("td", {}, state.lang === "vi" && indicator.nameVi ? indicator.nameVi : indicator.name,
       el("div", {class: "note"}, indicator.unit + direction)),
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
  document.getElementById("period").addEventListener("change", async e => {
    state.period = e.target.value;
    window.kpiReady = false;
    await loadPeriod();
    render();
    window.kpiReady = true;
  });
  const city = encodeURIComponent(state.city);
  [state.data, state.quality, state.framework, state.trend] = await Promise.all([
    api(`/kpi/values?city=${city}`), api("/kpi/quality"), api("/kpi/framework"),
    api(`/kpi/assessment/trend?city=${city}`)]);
  const all = periods();
  if (!state.period || !all.includes(state.period)) state.period = all[all.length - 1] || null;
  await loadPeriod();
  render();
  window.kpiReady = true;
}

window.kpi = {state};
start();
