// The city's registers: search the records of every register (without diacritics too),
// see them on a map coloured by register, and open one to read its fields, lifecycle,
// documents, certification (smart buildings and areas) or window and reports (sandboxes).
"use strict";

const TEXT = {
  vi: {
    title: "Sổ đăng ký đô thị",
    lead: "Quy hoạch, dự án, công trình và khu đô thị thông minh, vùng thử nghiệm có kiểm soát mà thành phố đăng ký, công khai cho mọi người tra cứu.",
    search: "Tìm hồ sơ", placeholder: "tên, mã số, mô tả…", register: "Sổ đăng ký", status: "Trạng thái",
    allRegisters: "Tất cả các sổ", allStatuses: "Mọi trạng thái", found: "{n} hồ sơ",
    none: "Không tìm thấy hồ sơ nào.", noMap: "Chưa cài thư viện bản đồ MapLibre GL: chạy `make install` (cần npm).",
    expiring: "Sắp hết hạn", expired: "Đã hết hạn", certified: "Đã chứng nhận",
    registryId: "Mã số", registerOf: "Sổ", currentStatus: "Trạng thái hiện tại", modified: "Cập nhật lần cuối",
    fields: "Thông tin đăng ký", lifecycle: "Quá trình", registered: "Đăng ký",
    decision: "Quyết định", note: "Ghi chú", documents: "Tài liệu", noDocuments: "Chưa có tài liệu.",
    certification: "Chứng nhận thông minh", score: "Điểm", passMark: "đạt từ {p}", validUntil: "Hiệu lực đến",
    criterion: "Tiêu chí", weight: "Trọng số", criterionScore: "Điểm", evidence: "Hồ sơ minh chứng",
    certStatus: {none: "Chưa đề nghị chứng nhận", applied: "Đã nộp hồ sơ, đang thẩm định",
                 certified: "Đã chứng nhận", refused: "Không đạt"},
    window: "Thời hạn thử nghiệm", reports: "Báo cáo định kỳ", noReports: "Chưa có báo cáo.",
    submitted: "nộp ngày",
    choices: {general: "Quy hoạch chung", zoning: "Quy hoạch phân khu", detailed: "Quy hoạch chi tiết",
              technology: "Công nghệ", businessModel: "Mô hình kinh doanh", service: "Dịch vụ"},
  },
  en: {
    title: "The city's registers",
    lead: "The plans, projects, smart buildings and urban areas, and controlled-testing zones the city registers, open for anyone to look up.",
    search: "Search records", placeholder: "name, identifier, description…", register: "Register", status: "Status",
    allRegisters: "All registers", allStatuses: "Any status", found: "{n} records",
    none: "No record found.", noMap: "The MapLibre GL map library is not installed: run `make install` (needs npm).",
    expiring: "Expiring", expired: "Expired", certified: "Certified",
    registryId: "Identifier", registerOf: "Register", currentStatus: "Current status", modified: "Last changed",
    fields: "Registered details", lifecycle: "Lifecycle", registered: "Registered",
    decision: "Decision", note: "Note", documents: "Documents", noDocuments: "No documents yet.",
    certification: "Smart certification", score: "Score", passMark: "pass mark {p}", validUntil: "Valid until",
    criterion: "Criterion", weight: "Weight", criterionScore: "Score", evidence: "Evidence",
    certStatus: {none: "Not applied for", applied: "Applied, being assessed",
                 certified: "Certified", refused: "Refused"},
    window: "Testing window", reports: "Periodic reports", noReports: "No reports yet.",
    submitted: "submitted",
    choices: {general: "General plan", zoning: "Zoning plan", detailed: "Detailed plan",
              technology: "Technology", businessModel: "Business model", service: "Service"},
  },
};
// Each register's colour on the map and in the list (others are grey).
const COLOURS = {plan: "#7a5cc4", project: "#e0701a", building: "#0b63b6", area: "#2e9b4f", sandbox: "#d23f7a"};
const OTHER = "#7d8894";
const ZONE = "Asia/Ho_Chi_Minh";

const state = {lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
               registers: [], criteria: {}, records: [], names: {}, record: null,
               chosen: params.get("record"), map: null, searches: 0, opened: 0};
window.registry = {state};

// window.registryReady is true when nothing the page started is still loading (the
// browser tests wait for it).
const settle = readiness("registryReady");

function t(key, values) {
  let text = TEXT[state.lang][key] || TEXT.vi[key] || key;
  for (const [k, v] of Object.entries(values || {})) text = text.replace(`{${k}}`, v);
  return text;
}

function locale() { return state.lang === "en" ? "en-GB" : "vi-VN"; }

function number(value) {
  return new Intl.NumberFormat(locale(), {maximumFractionDigits: 1}).format(value);
}

// An instant in Vietnam's time; a calendar date ("2026-06-27") as it is written.
function when(iso) {
  return new Date(iso).toLocaleString(locale(), {timeZone: ZONE, day: "2-digit", month: "2-digit", year: "numeric",
                                                 hour: "2-digit", minute: "2-digit"});
}

function day(text) {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(text) ? new Date(`${text}T00:00:00Z`) : new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  const zone = /^\d{4}-\d{2}-\d{2}$/.test(text) ? "UTC" : ZONE;
  return date.toLocaleDateString(locale(), {timeZone: zone, day: "2-digit", month: "2-digit", year: "numeric"});
}

function registerOf(record) {
  return state.registers.find(r => r.type === record.type) || {key: "", title: record.type, fields: {}, statuses: {}};
}

function statusTitle(register, status) {
  if (status === null || status === undefined) return t("registered");
  const known = register.statuses[status];
  return known ? pick(known.title, state.lang) : status;
}

function badges(record) {
  const out = [];
  if (record.expiry === "expiring") out.push(el("span", {class: "badge expiring", "data-testid": "badge-expiring"}, t("expiring")));
  if (record.expiry === "expired") out.push(el("span", {class: "badge expired", "data-testid": "badge-expired"}, t("expired")));
  if (record.certification && record.certification.status === "certified") {
    out.push(el("span", {class: "badge certified", "data-testid": "badge-certified"}, t("certified")));
  }
  return out;
}

// The filters, from the registers the server describes.
function fillFilters(first) {
  const registerSelect = document.getElementById("register");
  const chosen = first ? params.get("register") || "" : registerSelect.value;
  registerSelect.replaceChildren(el("option", {value: ""}, t("allRegisters")),
    ...state.registers.map(r => el("option", {value: r.key}, pick(r.title, state.lang))));
  registerSelect.value = state.registers.some(r => r.key === chosen) ? chosen : "";
  fillStatuses(first);
}

// Statuses are a register's own (the same word means different steps in two registers),
// so they are offered once a register is chosen.
function fillStatuses(first) {
  const statusSelect = document.getElementById("status");
  const register = state.registers.find(r => r.key === document.getElementById("register").value);
  const chosen = first ? params.get("status") || "" : statusSelect.value;
  const statuses = register ? Object.entries(register.statuses) : [];
  statusSelect.replaceChildren(el("option", {value: ""}, t("allStatuses")),
    ...statuses.map(([key, s]) => el("option", {value: key}, pick(s.title, state.lang))));
  statusSelect.value = statuses.some(([key]) => key === chosen) ? chosen : "";
  statusSelect.disabled = !register;
}

function legend() {
  document.getElementById("legend").replaceChildren(...state.registers.map(r =>
    el("span", {}, el("i", {style: `background: ${COLOURS[r.key] || OTHER}`}), pick(r.title, state.lang))));
}

function remember(key, value) {
  const url = new URL(location.href);
  if (value) url.searchParams.set(key, value);
  else url.searchParams.delete(key);
  history.replaceState(null, "", url);
}

// The records matching the search and filters, as GeoJSON: the list and the map both
// come from it. Only the latest search asked for is shown.
async function search() {
  const q = document.getElementById("search").value.trim();
  const register = document.getElementById("register").value;
  const status = document.getElementById("status").value;
  remember("q", q);
  remember("register", register);
  remember("status", status);
  const query = new URLSearchParams({f: "geojson"});
  if (q) query.set("q", q);
  if (register) query.set("register", register);
  if (status) query.set("status", status);
  const mine = ++state.searches;
  const list = document.getElementById("records");
  let data;
  try {
    data = await api(`/registry/records?${query}`);
  } catch (e) {
    if (mine === state.searches) list.replaceChildren(el("li", {class: "error"}, e.message));
    return;
  }
  if (mine !== state.searches) return;
  const order = Object.fromEntries(state.registers.map((r, i) => [r.type, i]));
  state.records = data.features.map(f => Object.assign({}, f.properties, {location: f.geometry}))
    .sort((a, b) => (order[a.type] ?? 99) - (order[b.type] ?? 99) || a.registryId.localeCompare(b.registryId));
  for (const r of state.records) state.names[r.registryId] = r.name;
  showList();
  await draw(mine);
}

function showList() {
  const list = document.getElementById("records");
  list.replaceChildren(...state.records.map(card));
  if (!state.records.length) list.append(el("li", {class: "sub", "data-testid": "none"}, t("none")));
  document.getElementById("count").textContent = t("found", {n: state.records.length});
}

function card(record) {
  const register = registerOf(record);
  return el("li", {class: record.registryId === state.chosen ? "record chosen" : "record", "data-testid": "record",
                   "data-id": record.registryId, style: `--colour: ${COLOURS[register.key] || OTHER}`,
                   onclick: () => settle(choose(record.registryId, {show: true}))},
    el("h2", {}, record.name),
    el("div", {class: "meta"}, el("span", {class: "rid"}, record.registryId), ` · ${pick(register.title, state.lang)}`),
    el("div", {}, el("span", {class: "badge status", "data-testid": "record-status"}, statusTitle(register, record.status)),
       ...badges(record)));
}

// The map: no basemap offline, only the records' polygons (the largest underneath, so a
// small building inside a plan's area is on top and can be clicked).
async function makeMap() {
  if (typeof maplibregl === "undefined") {
    document.getElementById("map").replaceChildren(el("p", {class: "sub error"}, t("noMap")));
    return;
  }
  const colour = ["match", ["get", "register"], ...Object.entries(COLOURS).flat(), OTHER];
  const chosen = ["==", ["get", "registryId"], state.chosen || ""];
  const map = new maplibregl.Map({container: "map", attributionControl: false, center: [108.2, 16.05], zoom: 10,
    style: {version: 8, sources: {records: {type: "geojson", data: {type: "FeatureCollection", features: []}}},
      layers: [{id: "bg", type: "background", paint: {"background-color": "#e8eef3"}},
               {id: "fill", type: "fill", source: "records", paint: {"fill-color": colour, "fill-opacity": 0.18}},
               {id: "line", type: "line", source: "records", paint: {"line-color": colour, "line-width": 1.5}},
               {id: "chosen-fill", type: "fill", source: "records", filter: chosen,
                paint: {"fill-color": colour, "fill-opacity": 0.4}},
               {id: "chosen-line", type: "line", source: "records", filter: chosen,
                paint: {"line-color": "#0f2a44", "line-width": 3}}]}});
  map.addControl(new maplibregl.NavigationControl({showCompass: false}));
  // Where polygons overlap, the smallest one clicked is the one meant.
  map.on("click", "fill", e => {
    const hits = (e.features || []).map(f => state.records.find(r => r.registryId === f.properties.registryId))
      .filter(Boolean).map(r => [area(r.location), r.registryId]).sort((a, b) => a[0] - b[0]);
    if (hits.length) settle(choose(hits[0][1]));
  });
  map.on("mouseenter", "fill", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "fill", () => { map.getCanvas().style.cursor = ""; });
  state.map = map;
  await mapReady(map);
}

function idle(map) {
  return new Promise(done => {
    map.once("idle", done);
    map.triggerRepaint();
  });
}

function extent(geometry) {  // [west, south, east, north]
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = c => {
    if (typeof c[0] === "number") {
      box[0] = Math.min(box[0], c[0]); box[1] = Math.min(box[1], c[1]);
      box[2] = Math.max(box[2], c[0]); box[3] = Math.max(box[3], c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return box;
}

function area(geometry) {
  const box = extent(geometry);
  return (box[2] - box[0]) * (box[3] - box[1]);
}

async function draw(mine) {
  const map = state.map;
  if (!map) return;
  const container = map.getContainer();
  delete container.dataset.features;
  const shown = state.records.filter(r => r.location && r.location.coordinates);
  const features = shown.map(r => ({type: "Feature", geometry: r.location,
    properties: {registryId: r.registryId, name: r.name, register: registerOf(r).key}}))
    .sort((a, b) => area(b.geometry) - area(a.geometry));
  map.getSource("records").setData({type: "FeatureCollection", features});
  if (features.length) {
    const box = features.map(f => extent(f.geometry)).reduce((a, b) =>
      [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])]);
    map.fitBounds([[box[0], box[1]], [box[2], box[3]]], {padding: 30, duration: 0, maxZoom: 16});
  }
  await idle(map);
  if (mine === state.searches) container.dataset.features = String(features.length);
}

function highlight() {
  for (const node of document.querySelectorAll(".record")) node.classList.toggle("chosen", node.dataset.id === state.chosen);
  if (!state.map) return;
  const chosen = ["==", ["get", "registryId"], state.chosen || ""];
  state.map.setFilter("chosen-fill", chosen);
  state.map.setFilter("chosen-line", chosen);
}

// A record chosen in the list (or in the address) is also shown on the map; one clicked on
// the map stays where it is.
async function choose(id, {show = false} = {}) {
  state.chosen = id;
  remember("record", id);
  highlight();
  const mine = ++state.opened;
  const detail = document.getElementById("detail");
  let record;
  try {
    record = await api(`/registry/records/${encodeURIComponent(id)}`);
  } catch (e) {
    if (mine !== state.opened) return;
    state.record = null;
    detail.hidden = false;
    detail.replaceChildren(el("p", {class: "error", "data-testid": "detail-error"}, e.message));
    return;
  }
  if (mine !== state.opened) return;
  state.record = record;
  state.names[record.registryId] = record.name;
  showRecord();
  if (!state.map) return;
  if (show && record.location && record.location.coordinates) {
    const box = extent(record.location);
    state.map.fitBounds([[box[0], box[1]], [box[2], box[3]]], {padding: 60, duration: 0, maxZoom: 15});
  }
  await idle(state.map);
}

function showRecord() {
  const record = state.record;
  const detail = document.getElementById("detail");
  if (!record) return;
  const register = registerOf(record);
  const rows = [
    [t("registryId"), el("span", {class: "rid", "data-testid": "detail-id"}, record.registryId)],
    [t("registerOf"), el("span", {"data-testid": "detail-register"}, pick(register.title, state.lang))],
    [t("currentStatus"), el("span", {"data-testid": "detail-status"}, statusTitle(register, record.status))],
  ];
  if (register.window && (record.startDate || record.endDate)) {
    rows.push([t("window"), el("span", {"data-testid": "window"},
      `${record.startDate ? day(record.startDate) : "…"} – ${record.endDate ? day(record.endDate) : "…"}`)]);
  }
  if (record.modifiedAt) rows.push([t("modified"), when(record.modifiedAt)]);
  detail.hidden = false;
  detail.replaceChildren(...[
    el("h2", {"data-testid": "detail-title"}, record.name),
    el("div", {}, ...badges(record)),
    record.description ? el("p", {}, record.description) : null,
    definitions(rows),
    el("h3", {}, t("fields")),
    definitions(Object.entries(register.fields)
      .filter(([name]) => present(record[name]))
      .map(([name, field]) => [pick(field.title, state.lang), value(field, record[name])]), "fields"),
    register.certified ? certification(register, record.certification || {status: "none"}) : null,
    register.window ? reports(record.reports || []) : null,
    el("h3", {}, t("lifecycle")), lifecycle(register, record.statusHistory || []),
    el("h3", {}, t("documents")), documents(record.documents || [])].filter(Boolean));
}

function present(v) {
  return v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && !v.length);
}

function definitions(rows, testid) {
  return el("dl", {"data-testid": testid}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function value(field, v) {
  switch (field.kind) {
    case "number": return typeof v === "number" ? number(v) : String(v);
    case "date": return day(v);
    case "url": return el("a", {href: v, rel: "noopener"}, v);
    case "list": return Array.isArray(v) ? v.join("; ") : String(v);
    case "choice": return TEXT[state.lang].choices[v] || v;
    case "ref": return el("a", {href: `?record=${encodeURIComponent(v)}`, "data-testid": "ref", onclick: e => {
      e.preventDefault();
      settle(choose(v, {show: true}));
    }}, state.names[v] ? `${state.names[v]} (${v})` : v);
    default: return String(v);
  }
}

function lifecycle(register, moves) {
  return el("ol", {class: "lifecycle", "data-testid": "lifecycle"}, ...moves.map(m =>
    el("li", {"data-testid": "move"},
      el("span", {class: "when"}, when(m.at)),
      m.from ? `${statusTitle(register, m.from)} → ${statusTitle(register, m.to)}`
             : `${t("registered")}: ${statusTitle(register, m.to)}`,
      m.decision ? el("div", {}, `${t("decision")}: `, el("span", {class: "decision"}, m.decision)) : null,
      m.note ? el("div", {class: "sub"}, `${t("note")}: ${m.note}`) : null)));
}

function documents(docs) {
  if (!docs.length) return el("p", {class: "sub", "data-testid": "documents"}, t("noDocuments"));
  return el("ul", {"data-testid": "documents"}, ...docs.map(d =>
    el("li", {}, el("a", {href: d.url, rel: "noopener"}, d.title), d.addedAt ? el("span", {class: "sub"}, ` · ${day(d.addedAt)}`) : null)));
}

function certification(register, cert) {
  const criteria = state.criteria[register.key] || {weights: {}, titles: {}};
  const scores = cert.scores || {};
  const names = Object.keys(criteria.weights).concat(Object.keys(scores).filter(k => !(k in criteria.weights)));
  const section = el("section", {"data-testid": "certification"},
    el("h3", {}, t("certification")),
    el("div", {}, el("span", {class: cert.status === "certified" ? "badge certified" : "badge status", "data-testid": "cert-status"},
      TEXT[state.lang].certStatus[cert.status] || cert.status)));
  if (typeof cert.score === "number") {
    section.append(el("p", {}, `${t("score")}: `, el("span", {class: "score", "data-testid": "cert-score"}, `${number(cert.score)}/100`),
      " ", el("span", {class: "sub"}, `(${t("passMark", {p: number(cert.pass ?? criteria.pass)})})`)));
  }
  if (cert.validUntil) section.append(el("p", {}, `${t("validUntil")}: `, el("span", {"data-testid": "cert-valid"}, day(cert.validUntil))));
  if (Object.keys(scores).length || cert.status !== "none") {
    section.append(el("table", {"data-testid": "criteria"},
      el("thead", {}, el("tr", {}, el("th", {}, t("criterion")), el("th", {class: "num"}, t("weight")),
                                  el("th", {class: "num"}, t("criterionScore")), el("th", {}, t("note")))),
      el("tbody", {}, ...names.map(name => {
        const s = scores[name] || {};
        return el("tr", {"data-testid": "criterion", "data-criterion": name},
          el("td", {}, pick(criteria.titles[name], state.lang) || name),
          el("td", {class: "num"}, name in criteria.weights ? number(criteria.weights[name]) : "—"),
          el("td", {class: "num"}, typeof s.score === "number" ? number(s.score) : "—"),
          el("td", {class: "sub"}, s.note || ""));
      }))));
  }
  if ((cert.evidence || []).length) {
    section.append(el("div", {class: "sub"}, `${t("evidence")}: `,
      ...cert.evidence.flatMap((e, i) => [i ? ", " : "", el("a", {href: e.url, rel: "noopener"}, e.title)])));
  }
  return section;
}

function reports(items) {
  const section = el("section", {"data-testid": "reports"}, el("h3", {}, t("reports")));
  if (!items.length) section.append(el("p", {class: "sub"}, t("noReports")));
  else {
    section.append(el("ul", {}, ...items.map(r => el("li", {"data-testid": "report"},
      r.period ? el("strong", {}, `${r.period}: `) : null, r.summary || "",
      r.url ? [" ", el("a", {href: r.url, rel: "noopener"}, "↗")] : null,
      r.submittedAt ? el("span", {class: "sub"}, ` (${t("submitted")} ${day(r.submittedAt)})`) : null))));
  }
  return section;
}

function translate() {
  translatePage(state.lang, t);
  document.title = `${t("title")} — dothi`;
  document.getElementById("search").placeholder = t("placeholder");
}

async function start() {
  translate();
  const search_ = document.getElementById("search");
  search_.value = params.get("q") || "";
  const described = await api("/registry/registers");
  state.registers = described.registers;
  state.criteria = described.criteria;
  fillFilters(true);
  legend();
  await makeMap();
  let timer = null;
  search_.addEventListener("input", () => {
    clearTimeout(timer);
    window.registryReady = false;
    timer = setTimeout(() => settle(search()), 150);
  });
  document.getElementById("register").addEventListener("change", () => {
    fillStatuses();
    settle(search());
  });
  document.getElementById("status").addEventListener("change", () => settle(search()));
  document.getElementById("lang").addEventListener("click", () => settle((async () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    translate();
    fillFilters();
    legend();
    showList();
    showRecord();
  })()));
  await search();
  if (state.chosen) await choose(state.chosen, {show: true});
}

settle(start().catch(e => {
  document.getElementById("records").replaceChildren(el("li", {class: "error"}, e.message));
}));
