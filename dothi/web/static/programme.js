// The national programme's dashboard, for the Ministry of Construction: the 34 provinces
// on a map (a circle at each one's representative point; no basemap tiles) coloured by
// their report status for a chosen request, their tasks' progress or their assessed
// level; a province's figures on a click; the submissions of the request, the overdue
// tasks, the indicators the units reported, and the consolidated report as DOCX.
// Everything comes from /program/overview, /program/requests/{key}/status and
// /program/requests/{key}/national. Vietnamese first, English on the button.
"use strict";

const TEXT = {
  vi: {
    title: "Chương trình phát triển đô thị thông minh bền vững — Bảng theo dõi toàn quốc",
    request: "Yêu cầu báo cáo", measure: "Tô màu bản đồ theo",
    measure_status: "Tình hình nộp báo cáo", measure_progress: "Tiến độ nhiệm vụ",
    measure_level: "Cấp độ đô thị thông minh",
    noMap: "Chưa cài thư viện bản đồ MapLibre GL: chạy `make install` (cần npm).",
    pick: "Bấm vào một tỉnh, thành phố trên bản đồ hoặc trong bảng để xem chi tiết.",
    submissions: "Tình hình nộp báo cáo", unit: "Đơn vị", status: "Trạng thái",
    submittedAt: "Ngày nộp", lateDays: "Trễ hạn (ngày)", overdue: "Quá hạn",
    overdueTasks: "Nhiệm vụ quá hạn", code: "Mã", task: "Nhiệm vụ", deadline: "Thời hạn",
    progress: "Tiến độ", indicators: "Chỉ số các đơn vị đã nộp",
    docx: "Tải báo cáo tổng hợp (DOCX)", on: "Số liệu ngày {0}", due: "hạn nộp {0}",
    legend_status: "Tình hình nộp báo cáo", legend_progress: "Tiến độ bình quân các nhiệm vụ",
    legend_level: "Cấp độ tự đánh giá",
    st_accepted: "Đã chấp nhận", st_onTime: "Đã nộp đúng hạn", st_late: "Đã nộp, trễ hạn",
    st_returned: "Trả lại để chỉnh sửa", st_draft: "Đang soạn", st_overdue: "Quá hạn, chưa nộp",
    st_pending: "Chưa nộp (chưa đến hạn)", st_notAsked: "Không thuộc yêu cầu",
    pr_none: "Không có nhiệm vụ", lv_none: "Chưa tự đánh giá", level0: "Chưa đạt cấp độ 1",
    levelN: "Cấp độ {0}",
    asked: "Đơn vị được yêu cầu", onTime: "Nộp đúng hạn", late: "Nộp trễ hạn",
    overdueCount: "Quá hạn, chưa nộp",
    report: "Báo cáo", tasks: "Nhiệm vụ", level: "Cấp độ đô thị thông minh",
    taskCount: "Số nhiệm vụ", done: "Hoàn thành", tasksOverdue: "Quá hạn",
    atRisk: "Có nguy cơ chậm", meanProgress: "Tiến độ bình quân",
    lateBy: "trễ {0} ngày", overdueBy: "quá hạn {0} ngày", version: "Phiên bản",
    reportJson: "Xem báo cáo của đơn vị (JSON)", notAskedNote: "Đơn vị không thuộc yêu cầu báo cáo này.",
    noLevel: "Chưa có tự đánh giá cho kỳ {0}.", noLevelNoRequest: "Chọn một yêu cầu báo cáo để xem cấp độ của kỳ.",
    national: "Trung ương", noRequests: "Chưa có yêu cầu báo cáo nào.",
    noOverdue: "Không có nhiệm vụ quá hạn.", noValues: "Chưa có đơn vị nào nộp số liệu chỉ số.",
    mean: "trung bình", period: "Kỳ", assessment: "Hồ sơ",
    as_draft: "dự thảo", as_submitted: "đã nộp", as_returned: "bị trả lại", as_accepted: "đã chấp thuận",
  },
  en: {
    title: "Sustainable smart city development programme — national dashboard",
    request: "Report request", measure: "Colour the map by",
    measure_status: "Report submission", measure_progress: "Task progress",
    measure_level: "Smart city level",
    noMap: "The MapLibre GL map library is not installed: run `make install` (needs npm).",
    pick: "Click a province or city on the map or in the table to see its figures.",
    submissions: "Report submissions", unit: "Unit", status: "Status",
    submittedAt: "Submitted", lateDays: "Late (days)", overdue: "Overdue",
    overdueTasks: "Overdue tasks", code: "Code", task: "Task", deadline: "Deadline",
    progress: "Progress", indicators: "Indicators of the units that submitted",
    docx: "Download the national report (DOCX)", on: "Figures as of {0}", due: "due {0}",
    legend_status: "Report submission", legend_progress: "Mean progress of the tasks",
    legend_level: "Self-assessed level",
    st_accepted: "Accepted", st_onTime: "Submitted on time", st_late: "Submitted late",
    st_returned: "Returned for correction", st_draft: "Draft", st_overdue: "Overdue, not submitted",
    st_pending: "Not submitted yet (not due)", st_notAsked: "Not asked",
    pr_none: "No tasks", lv_none: "Not assessed", level0: "Below level 1",
    levelN: "Level {0}",
    asked: "Units asked", onTime: "On time", late: "Late",
    overdueCount: "Overdue, not submitted",
    report: "Report", tasks: "Tasks", level: "Smart city level",
    taskCount: "Tasks", done: "Done", tasksOverdue: "Overdue",
    atRisk: "At risk", meanProgress: "Mean progress",
    lateBy: "late by {0} days", overdueBy: "overdue by {0} days", version: "Version",
    reportJson: "Open the unit's report (JSON)", notAskedNote: "The unit is not asked for this report.",
    noLevel: "No self-assessment for {0} yet.", noLevelNoRequest: "Choose a report request to see the period's level.",
    national: "National", noRequests: "No report requests yet.",
    noOverdue: "No overdue tasks.", noValues: "No unit has submitted indicator values yet.",
    mean: "mean", period: "Period", assessment: "Assessment",
    as_draft: "draft", as_submitted: "submitted", as_returned: "returned", as_accepted: "accepted",
  },
};

// The map's colours, one per category of each measure (the legend is made from these).
const STATUS_COLOURS = {
  overdue: "#d7263d", late: "#f29e4c", returned: "#8e5ea2", draft: "#4a90c2",
  pending: "#f2dc6b", onTime: "#74c476", accepted: "#1b7837", notAsked: "#c9cfd6",
};
const NONE = "#c9cfd6";
// Mean progress in five classes of 20 points, light to dark.
const PROGRESS_COLOURS = ["#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494"];
const LEVEL_COLOURS = {level0: "#fcae91", level1: "#c7e9c0", level2: "#74c476", level3: "#238b45"};
// The circles' radius by zoom.
const RADIUS = [[4, 7], [6, 10], [9, 16]];

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  measure: ["status", "progress", "level"].includes(params.get("measure")) ? params.get("measure") : "status",
  key: params.get("request") || "",
  requests: [], overview: null, status: [], national: null,
  selected: params.get("unit") || null, map: null, mapLoaded: null, labels: new Map(), fitted: false,
};
const ready = readiness("programmeReady");

function t(key, ...args) {
  const text = (TEXT[state.lang] || TEXT.vi)[key] ?? TEXT.vi[key] ?? key;
  return args.reduce((s, a, i) => s.replace(`{${i}}`, a), text);
}

function number(value, digits = 1) {
  return new Intl.NumberFormat(state.lang === "en" ? "en-GB" : "vi-VN",
                               {maximumFractionDigits: digits}).format(value);
}

function percent(value) { return value === null || value === undefined ? "—" : `${number(value)}%`; }

// -- the measures ---------------------------------------------------------------------

// Where a unit stands on the request: overdue first (not submitted and the due day has
// passed, even with a draft), then by its report's status.
function reportCategory(report) {
  if (!report) return "notAsked";
  if (report.overdue) return "overdue";
  if (report.status === "submitted") return report.late ? "late" : "onTime";
  if (report.status === "missing") return "pending";
  return report.status;  // accepted, returned, draft
}

function progressCategory(tasks) {
  if (!tasks || !tasks.count || tasks.progress === null || tasks.progress === undefined) return "none";
  return "p" + Math.min(4, Math.floor(tasks.progress / 20));
}

function levelCategory(level) {
  return level ? "level" + level.level : "none";
}

function category(unit, measure) {
  if (measure === "progress") return progressCategory(unit.tasks);
  if (measure === "level") return levelCategory(unit.level);
  return reportCategory(unit.report);
}

// The legend of a measure: [{key, label, colour}], in the order shown.
function legendItems(measure) {
  if (measure === "progress") {
    return [...PROGRESS_COLOURS.map((colour, i) => ({
      key: "p" + i, colour, label: `${i * 20}–${i === 4 ? 100 : (i + 1) * 20 - 1} %`})),
      {key: "none", colour: NONE, label: t("pr_none")}];
  }
  if (measure === "level") {
    return [...Object.entries(LEVEL_COLOURS).map(([key, colour], i) => ({
      key, colour, label: i === 0 ? t("level0") : t("levelN", i)})),
      {key: "none", colour: NONE, label: t("lv_none")}];
  }
  return Object.entries(STATUS_COLOURS).map(([key, colour]) => ({key, colour, label: t("st_" + key)}));
}

function colourOf(measure, key) {
  const item = legendItems(measure).find(i => i.key === key);
  return item ? item.colour : NONE;
}

function units() { return state.overview ? state.overview.units : []; }
function unitOf(code) { return units().find(u => u.code === code); }

// -- the map --------------------------------------------------------------------------

function emptyCollection() { return {type: "FeatureCollection", features: []}; }

function radiusAt(zoom) {
  if (zoom <= RADIUS[0][0]) return RADIUS[0][1];
  for (let i = 1; i < RADIUS.length; i++) {
    const [z0, r0] = RADIUS[i - 1], [z1, r1] = RADIUS[i];
    if (zoom <= z1) return r0 + (r1 - r0) * (zoom - z0) / (z1 - z0);
  }
  return RADIUS[RADIUS.length - 1][1];
}

function createMap() {
  if (typeof maplibregl === "undefined") {
    document.getElementById("no-map").hidden = false;
    return null;
  }
  const radius = grow => ["interpolate", ["linear"], ["zoom"], ...RADIUS.flatMap(([z, r]) => [z, r + grow])];
  const map = new maplibregl.Map({
    container: "map", attributionControl: false,
    bounds: [[102.1, 8.4], [109.5, 23.4]], fitBoundsOptions: {padding: 30},
    style: {
      version: 8,
      sources: {provinces: {type: "geojson", data: emptyCollection()}},
      layers: [
        {id: "background", type: "background", paint: {"background-color": "#e8eef3"}},
        {id: "provinces", type: "circle", source: "provinces",
         paint: {"circle-radius": radius(0), "circle-color": ["get", "colour"],
                 "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.5}},
        {id: "selected", type: "circle", source: "provinces", filter: ["==", ["get", "code"], ""],
         paint: {"circle-radius": radius(4), "circle-color": "rgba(0,0,0,0)",
                 "circle-stroke-color": "#0f2a44", "circle-stroke-width": 3}},
      ],
    },
  });
  state.mapLoaded = mapReady(map);
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
  map.on("click", "provinces", e => ready(select(e.features[0].properties.code)));
  map.on("mouseenter", "provinces", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "provinces", () => { map.getCanvas().style.cursor = ""; });
  map.on("moveend", () => placeLabels());
  return map;
}

function features() {
  return {type: "FeatureCollection", features: units().map(u => {
    const key = category(u, state.measure);
    return {type: "Feature", geometry: {type: "Point", coordinates: u.point},
            properties: {code: u.code, short: u.short, category: key,
                         colour: colourOf(state.measure, key)}};
  })};
}

// Give the map the provinces as they now stand, and wait until it has drawn them.
async function drawMap() {
  const map = state.map;
  if (!map) return;
  await state.mapLoaded;
  if (!state.fitted && units().length) {
    const bounds = new maplibregl.LngLatBounds();
    for (const u of units()) bounds.extend(u.point);
    map.fitBounds(bounds, {padding: 40, duration: 0});
    state.fitted = true;
  }
  const drawn = new Promise(done => map.once("idle", done));
  map.getSource("provinces").setData(features());
  map.setFilter("selected", ["==", ["get", "code"], state.selected || ""]);
  map.triggerRepaint();
  await drawn;
  makeLabels();
  placeLabels();
}

// A label beside each circle (an HTML marker: the map has no glyphs to draw text with).
function makeLabels() {
  for (const u of units()) {
    if (state.labels.has(u.code)) continue;
    const node = el("div", {class: "label", "data-testid": "label", "data-unit": u.code}, u.short);
    const marker = new maplibregl.Marker({element: node, anchor: "center"}).setLngLat(u.point).addTo(state.map);
    state.labels.set(u.code, {node, marker, point: u.point});
  }
}

// Show the labels that fit, each below, above, beside or diagonally off its circle,
// wherever it first covers no other label and no circle: the selected province's first,
// then those with something to say on the measure, then the others. A label of the first
// two kinds that fits nowhere may cover the circles of the last kind.
function placeLabels() {
  const map = state.map;
  if (!map || !state.labels.size) return;
  const r = radiusAt(map.getZoom()) + 1;
  const weight = code => {
    if (code === state.selected) return 0;
    const u = unitOf(code);
    const key = u ? category(u, state.measure) : "none";
    return key === "none" || key === "notAsked" ? 2 : 1;
  };
  const circles = [...state.labels.entries()].map(([code, l]) => {
    const p = map.project(l.point);
    return {x0: p.x - r, y0: p.y - r, x1: p.x + r, y1: p.y + r, weight: weight(code)};
  });
  const order = [...state.labels.entries()].sort((a, b) => weight(a[0]) - weight(b[0]) || a[0].localeCompare(b[0]));
  const kept = [];
  const overlaps = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  for (const [code, label] of order) {
    const p = map.project(label.point);
    const mine = weight(code), rr = mine === 0 ? r + 6 : r;  // the selected one wears a ring
    const w = label.node.offsetWidth, h = label.node.offsetHeight, d = rr * 0.7;
    const spots = [[0, rr + h / 2], [0, -rr - h / 2], [rr + w / 2, 0], [-rr - w / 2, 0],
                   [d + w / 2, d + h / 2], [d + w / 2, -d - h / 2], [-d - w / 2, d + h / 2], [-d - w / 2, -d - h / 2]];
    const boxAt = ([dx, dy]) => ({x0: p.x + dx - w / 2, y0: p.y + dy - h / 2, x1: p.x + dx + w / 2, y1: p.y + dy + h / 2});
    const fits = (spot, covering) => {
      const box = boxAt(spot);
      return !kept.some(k => overlaps(k, box))
        && !circles.some(c => overlaps(c, box) && !(covering && c.weight === 2));
    };
    const spot = spots.find(s => fits(s, false)) || (mine < 2 ? spots.find(s => fits(s, true)) : undefined);
    if (spot) {
      kept.push(boxAt(spot));
      label.marker.setOffset(spot);
    }
    label.node.style.visibility = spot ? "visible" : "hidden";
  }
}

function renderLegend() {
  const items = legendItems(state.measure);
  const counts = {};
  for (const u of units()) {
    const key = category(u, state.measure);
    counts[key] = (counts[key] || 0) + 1;
  }
  const box = document.getElementById("legend");
  box.replaceChildren(el("h3", {}, t("legend_" + state.measure)),
    ...items.map(item => el("div", {class: "item", "data-testid": "legend-item", "data-key": item.key,
                                    "data-colour": item.colour},
      el("i", {class: "swatch", style: `background:${item.colour}`}),
      el("span", {class: "name"}, item.label),
      el("span", {class: "n", "data-testid": "legend-count"}, String(counts[item.key] || 0)))));
  box.dataset.measure = state.measure;
}

// -- the province's panel -------------------------------------------------------------

async function select(code) {
  state.selected = code;
  renderDetail();
  markRows();
  await drawMap();
}

function field(label, value, testid, cls) {
  return el("div", {class: "field" + (cls ? " " + cls : "")}, el("span", {class: "k"}, label),
            el("span", {class: "v", "data-testid": testid}, value));
}

function renderDetail() {
  const box = document.getElementById("detail");
  const u = state.selected && unitOf(state.selected);
  if (!u) {
    box.replaceChildren(el("p", {class: "muted"}, t("pick")));
    return;
  }
  const lang = state.lang, req = state.overview.request;
  const report = u.report, key = reportCategory(report);
  const reportPart = [el("h3", {}, t("report"), req ? el("span", {class: "muted"}, " · " + pick(req.title, lang)) : null)];
  if (!report) {
    reportPart.push(el("p", {class: "muted", "data-testid": "detail-category", "data-key": key},
                       req ? t("notAskedNote") : t("noRequests")));
  } else {
    reportPart.push(
      el("p", {class: "badge", "data-testid": "detail-category", "data-key": key},
         el("i", {class: "swatch", style: `background:${STATUS_COLOURS[key]}`}), t("st_" + key)),
      field(t("status"), pick(report.statusTitle, lang), "detail-status"),
      report.submittedAt ? field(t("submittedAt"), momentText(report.submittedAt), "detail-submitted") : null,
      report.late ? field(t("late"), t("lateBy", report.lateDays), "detail-late", "warn") : null,
      report.overdue ? field(t("overdue"), t("overdueBy", report.daysOverdue), "detail-overdue", "alarm") : null,
      report.version ? field(t("version"), String(report.version), "detail-version") : null);
    if (report.status !== "missing") {
      const href = `/program/reports/${encodeURIComponent(req.key)}/${encodeURIComponent(u.code)}`;
      reportPart.push(el("p", {}, el("a", {href, target: "_blank", rel: "noopener",
                                           "data-testid": "detail-report-link", onclick: viaTenant},
                                     t("reportJson"))));
    }
  }
  const tasks = u.tasks;
  const tasksPart = [el("h3", {}, t("tasks")),
    el("div", {class: "figures"},
       field(t("taskCount"), String(tasks.count), "detail-tasks-count"),
       field(t("done"), String(tasks.done), "detail-tasks-done"),
       field(t("tasksOverdue"), String(tasks.overdue), "detail-tasks-overdue", tasks.overdue ? "alarm" : ""),
       field(t("atRisk"), String(tasks.atRisk), "detail-tasks-atrisk", tasks.atRisk ? "warn" : ""),
       field(t("meanProgress"), percent(tasks.progress), "detail-tasks-progress"))];
  if (tasks.progress !== null && tasks.progress !== undefined) {
    tasksPart.push(el("div", {class: "meter"}, el("span", {style: `width:${Math.round(tasks.progress)}%`})));
  }
  const levelPart = [el("h3", {}, t("level"))];
  if (u.level) {
    levelPart.push(el("p", {class: "badge", "data-testid": "detail-level", "data-level": String(u.level.level)},
      el("i", {class: "swatch", style: `background:${colourOf("level", levelCategory(u.level))}`}),
      u.level.level ? `${t("levelN", u.level.level)}: ${pick(u.level.name, lang)}` : pick(u.level.name, lang)),
      el("p", {class: "muted"}, `${t("period")} ${req.period} · ${t("assessment")} ${t("as_" + u.level.status)}`));
  } else {
    levelPart.push(el("p", {class: "muted", "data-testid": "detail-level", "data-level": ""},
                      req ? t("noLevel", req.period) : t("noLevelNoRequest")));
  }
  box.replaceChildren(el("h2", {"data-testid": "detail-name", "data-unit": u.code}, u.name,
                         el("span", {class: "muted"}, ` (${u.code})`)),
                      el("section", {}, reportPart), el("section", {}, tasksPart),
                      el("section", {}, levelPart));
}

// A link of the API opened with the page's tenant (a plain link cannot send the header).
async function viaTenant(event) {
  if (!TENANT) return;
  event.preventDefault();
  const a = event.currentTarget;
  const response = await fetch(a.href, {headers: {"NGSILD-Tenant": TENANT}});
  const url = URL.createObjectURL(await response.blob());
  const save = el("a", {href: url, download: a.getAttribute("download") || ""});
  if (a.hasAttribute("download")) save.click(); else window.open(url, "_blank");
}

// -- the request's submissions --------------------------------------------------------

function renderCounts() {
  const rows = state.status;
  const counts = {
    asked: rows.length,
    onTime: rows.filter(r => r.submittedAt && !r.late).length,
    late: rows.filter(r => r.late).length,
    overdueCount: rows.filter(r => r.overdue).length,
  };
  document.getElementById("counts").replaceChildren(...Object.entries(counts).map(([key, n]) =>
    el("div", {class: "tile" + (key === "overdueCount" && n ? " alarm" : key === "late" && n ? " warn" : ""),
               "data-testid": "count-" + key},
       el("div", {class: "figure"}, String(n)), el("div", {class: "label"}, t(key)))));
}

function renderStatus() {
  const lang = state.lang;
  const req = state.overview && state.overview.request;
  document.getElementById("request-title").textContent = req ? "· " + pick(req.title, lang) : "";
  const body = document.querySelector("#status tbody");
  if (!req) {
    body.replaceChildren(el("tr", {}, el("td", {colspan: 5, class: "muted"}, t("noRequests"))));
    document.getElementById("counts").replaceChildren();
    return;
  }
  renderCounts();
  const onMap = new Set(units().map(u => u.code));
  body.replaceChildren(...state.status.map(r => {
    const key = reportCategory(r);
    return el("tr", {"data-testid": "status-row", "data-unit": r.unit, "data-status": r.status,
                     "data-category": key, "data-overdue": String(r.overdue),
                     class: (r.overdue ? "overdue" : "") + (onMap.has(r.unit) ? " clickable" : ""),
                     onclick: onMap.has(r.unit) ? () => ready(select(r.unit)) : null},
      el("td", {}, r.name, el("span", {class: "muted"}, ` (${r.unit})`)),
      el("td", {"data-testid": "row-status"},
         el("i", {class: "swatch", style: `background:${STATUS_COLOURS[key]}`}), pick(r.statusTitle, lang)),
      el("td", {"data-testid": "row-submitted"}, momentText(r.submittedAt)),
      el("td", {"data-testid": "row-late", class: "num"}, r.late ? String(r.lateDays) : ""),
      el("td", {"data-testid": "row-overdue"},
         r.overdue ? el("span", {class: "flag"}, t("overdueBy", r.daysOverdue)) : ""));
  }));
  markRows();
}

function markRows() {
  for (const row of document.querySelectorAll("#status tbody tr[data-unit]")) {
    row.classList.toggle("selected", row.dataset.unit === state.selected);
  }
}

// -- overdue tasks and indicators -----------------------------------------------------

function unitLabel(code) {
  if (code === "national") return t("national");
  const u = unitOf(code);
  return u ? u.short : code;
}

function renderTasks() {
  const tasks = [...(state.overview ? state.overview.overdueTasks : [])]
    .sort((a, b) => (a.deadline || "").localeCompare(b.deadline || "") || a.code.localeCompare(b.code));
  document.getElementById("overdue-count").textContent = tasks.length ? `(${tasks.length})` : "";
  const body = document.querySelector("#tasks tbody");
  if (!tasks.length) {
    body.replaceChildren(el("tr", {}, el("td", {colspan: 5, class: "muted"}, t("noOverdue"))));
    return;
  }
  body.replaceChildren(...tasks.map(task => el("tr", {"data-testid": "overdue-task", "data-code": task.code},
    el("td", {class: "code"}, task.code),
    el("td", {"data-testid": "task-name"}, pick(task.name, state.lang)),
    el("td", {"data-testid": "task-unit"}, unitLabel(task.unit),
       task.leadAgency ? el("div", {class: "sub"}, task.leadAgency) : null),
    el("td", {"data-testid": "task-deadline"}, dayText(task.deadline)),
    el("td", {"data-testid": "task-progress", class: "num"},
       el("span", {class: "meter small"}, el("span", {style: `width:${Math.round(task.progress || 0)}%`})),
       " ", percent(task.progress || 0)))));
}

// One small bar chart per indicator that some unit reported: a bar per unit, and the mean.
function renderIndicators() {
  const box = document.getElementById("indicators");
  const items = state.national ? state.national.indicators.filter(i => Object.keys(i.values).length) : [];
  if (!items.length) {
    box.replaceChildren(el("p", {class: "muted"}, t("noValues")));
    return;
  }
  box.replaceChildren(...items.map(item => {
    const name = state.lang === "vi" && item.nameVi ? item.nameVi : item.name;
    const entries = Object.entries(item.values).sort((a, b) => b[1] - a[1]);
    const width = 360, row = 20, left = 90, right = 56, top = 6;
    const height = top * 2 + row * entries.length;
    const top_ = Math.max(...entries.map(e => e[1]), 0) || 1;
    const x = v => left + (width - left - right) * Math.max(v, 0) / top_;
    const svg = svgEl("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", "data-testid": "indicator-bars"});
    entries.forEach(([unit, value], i) => {
      const y = top + i * row;
      svg.append(svgEl("text", {x: left - 6, y: y + 14, "text-anchor": "end"}, unitLabel(unit)));
      svg.append(titled(svgEl("rect", {x: left, y: y + 3, width: Math.max(x(value) - left, 1), height: row - 6,
                                       fill: "#0b63b6", "data-unit": unit, "data-value": value}),
                        `${unitLabel(unit)}: ${number(value, 2)}`));
      svg.append(svgEl("text", {x: x(value) + 4, y: y + 14}, number(value, 2)));
    });
    if (item.mean !== null) {
      svg.append(titled(svgEl("line", {x1: x(item.mean), x2: x(item.mean), y1: 2, y2: height - 2,
                                       stroke: "#d7263d", "stroke-dasharray": "4 3", "data-mean": item.mean}),
                        `${t("mean")}: ${number(item.mean, 2)}`));
    }
    return el("figure", {"data-testid": "indicator-chart", "data-code": item.code},
      el("figcaption", {}, name, item.unit ? el("span", {class: "muted"}, ` (${item.unit})`) : null,
         el("div", {class: "sub"}, `${item.code} · ${t("mean")} ${number(item.mean, 2)}`)),
      svg);
  }));
}

// -- the page -------------------------------------------------------------------------

function renderControls() {
  const chooser = document.getElementById("request");
  chooser.replaceChildren(...state.requests.map(r => el("option", {value: r.key},
    `${pick(r.title, state.lang)} — ${r.period} (${r.key})`)));
  chooser.disabled = !state.requests.length;
  if (!state.requests.length) chooser.append(el("option", {value: ""}, t("noRequests")));
  chooser.value = state.key;
  document.getElementById("measure").value = state.measure;
  const req = state.overview && state.overview.request;
  document.getElementById("due").textContent = req ? t("due", dayText(req.dueDate)) : "";
  document.getElementById("on").textContent = state.overview ? t("on", dayText(state.overview.on)) : "";
  const docx = document.getElementById("docx");
  docx.hidden = !req;
  if (req) {
    docx.href = `/program/requests/${encodeURIComponent(req.key)}/national.docx?lang=${state.lang}`;
    docx.setAttribute("download", `dothi-${req.key}-${state.lang}.docx`);
    docx.textContent = t("docx");
  }
}

async function render() {
  translatePage(state.lang, t);
  document.title = `${t("title")} — dothi`;
  renderControls();
  renderLegend();
  renderStatus();
  renderTasks();
  renderIndicators();
  renderDetail();
  await drawMap();
}

function remember() {
  const url = new URL(location.href);
  if (state.key) url.searchParams.set("request", state.key); else url.searchParams.delete("request");
  url.searchParams.set("measure", state.measure);
  if (state.selected) url.searchParams.set("unit", state.selected); else url.searchParams.delete("unit");
  history.replaceState(null, "", url);
}

async function load(key) {
  state.key = key || "";
  const path = state.key ? `/program/overview?request=${encodeURIComponent(state.key)}` : "/program/overview";
  const k = encodeURIComponent(state.key);
  const [overview, status, national] = await Promise.all([
    api(path),
    state.key ? api(`/program/requests/${k}/status`) : [],
    state.key ? api(`/program/requests/${k}/national`) : null]);
  state.overview = overview;
  state.requests = overview.requests;
  state.status = status;
  state.national = national;
  remember();
  await render();
}

async function guarded(work) {
  const problem = document.getElementById("problem");
  try {
    await work;
    problem.hidden = true;
  } catch (exc) {
    problem.textContent = String(exc.message || exc);
    problem.hidden = false;
  }
}

async function start() {
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    ready(render());
  });
  document.getElementById("request").addEventListener("change", e => {
    ready(guarded(load(e.target.value)));
  });
  document.getElementById("measure").addEventListener("change", e => {
    state.measure = e.target.value;
    remember();
    renderLegend();
    ready(drawMap());
  });
  document.getElementById("docx").addEventListener("click", viaTenant);
  state.map = createMap();
  if (!state.key) {
    const requests = await api("/program/requests");
    state.key = requests.length ? requests[0].key : "";
  }
  await load(state.key);
}

window.programme = {state, category, legendItems, select: code => ready(select(code))};
ready(guarded(start()));
