// The operations-centre dashboard: a MapLibre map of the platform's own layers (areas,
// sensors by state, incidents), the summary tiles, and the incident list and detail with
// the workflow's actions. Kept current by the server-sent events of /ioc/stream.
"use strict";

const TZ = "Asia/Ho_Chi_Minh";

const TEXT = {
  vi: {
    title: "Trung tâm giám sát, điều hành đô thị thông minh", signOut: "Đăng xuất",
    live: "Trực tiếp", offline: "Mất kết nối — đang thử lại", connecting: "Đang kết nối",
    layers: "Lớp bản đồ", areas: "Ranh giới hành chính", incidentsLayer: "Sự cố",
    show: "Hiển thị", openOnly: "Đang mở", all: "Tất cả", domain: "Lĩnh vực",
    incidents: "Sự cố", noIncidents: "Không có sự cố.",
    noMap: "Chưa cài thư viện bản đồ MapLibre GL: chạy `make install` (cần npm).",
    tileOpen: "Sự cố đang mở", tileOverdue: "Quá hạn xử lý", tileDevices: "Thiết bị trực tuyến",
    tileSilent: "im lặng", tileAqi: "VN_AQI cao nhất", tileFlood: "Điểm vượt báo động ngập",
    tileWarnings: "Cảnh báo đang hiệu lực",
    state_online: "Hoạt động", state_silent: "Mất tín hiệu", state_unknown: "Chưa rõ",
    state_alarm: "Đang có sự cố",
    sev_critical: "Nghiêm trọng", sev_high: "Cao", sev_medium: "Trung bình", sev_low: "Thấp",
    sev_informational: "Thông tin",
    category: "Lĩnh vực", severity: "Mức độ", status: "Trạng thái", ward: "Khu vực",
    issued: "Phát hiện lúc", due: "Hạn", agency: "Đơn vị xử lý", occurrences: "Số lần",
    escalation: "Cấp báo động", description: "Mô tả", comments: "Ý kiến",
    note: "Ghi chú", addComment: "Gửi ý kiến", overdue: "Quá hạn", close: "Đóng",
    moveTo: "Chuyển sang", chooseAgency: "Chọn đơn vị", latest: "Giá trị mới nhất",
    last24h: "24 giờ qua (trung bình 15 phút)", noData: "không có dữ liệu",
    warn: "Phát cảnh báo công cộng (CAP)", warnings: "Cảnh báo công cộng",
    newIncident: "+ Mở sự cố", newTitle: "Tiêu đề", create: "Mở sự cố", cancel: "Hủy",
    pickPlace: "Bấm vào bản đồ để chọn vị trí", place: "Vị trí",
  },
  en: {
    title: "Smart city operations centre", signOut: "Sign out",
    live: "Live", offline: "Disconnected — retrying", connecting: "Connecting",
    layers: "Map layers", areas: "Administrative boundaries", incidentsLayer: "Incidents",
    show: "Show", openOnly: "Open", all: "All", domain: "Domain",
    incidents: "Incidents", noIncidents: "No incidents.",
    noMap: "The MapLibre GL map library is not installed: run `make install` (needs npm).",
    tileOpen: "Open incidents", tileOverdue: "Overdue", tileDevices: "Devices online",
    tileSilent: "silent", tileAqi: "Highest VN_AQI", tileFlood: "Points above flood alert",
    tileWarnings: "Warnings in force",
    state_online: "Online", state_silent: "Silent", state_unknown: "Unknown",
    state_alarm: "Incident open",
    sev_critical: "Critical", sev_high: "High", sev_medium: "Medium", sev_low: "Low",
    sev_informational: "Informational",
    category: "Domain", severity: "Severity", status: "Status", ward: "Area",
    issued: "Detected at", due: "Due", agency: "Agency", occurrences: "Occurrences",
    escalation: "Escalation level", description: "Description", comments: "Comments",
    note: "Note", addComment: "Add comment", overdue: "Overdue", close: "Close",
    moveTo: "Move to", chooseAgency: "Choose an agency", latest: "Latest values",
    last24h: "Last 24 hours (15-minute averages)", noData: "no data",
    warn: "Issue a public warning (CAP)", warnings: "Public warnings",
    newIncident: "+ New incident", newTitle: "Title", create: "Open incident", cancel: "Cancel",
    pickPlace: "Click the map to choose the place", place: "Place",
  },
};
const STATE_COLOUR = {online: "#2e9d4a", silent: "#8a94a0", unknown: "#b9c3cf", alarm: "#d7263d"};
const SEVERITY_COLOUR = {critical: "#8b0000", high: "#d7263d", medium: "#f08c00",
                         low: "#f2c94c", informational: "#6c8ebf"};
const CATEGORY_COLOUR = {flooding: "#1f78b4", airQuality: "#8a4fbd", traffic: "#e6550d",
                         lighting: "#e3b505", waste: "#6b8e23", water: "#17becf",
                         device: "#555", other: "#999"};

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  workflow: null, layers: [], map: null,
  sensors: new Map(), incidents: new Map(), summary: {},
  selected: null, form: {}, creating: null, hidden: new Set(), lastEvent: null, warnings: [],
};

function t(key) { return (TEXT[state.lang] || TEXT.vi)[key] || TEXT.vi[key] || key; }
function label(map, key) {
  const entry = map && map[key];
  return entry ? (entry[state.lang] || entry.vi || key) : key;
}
// keyValues render a DateTime as {"@type": "DateTime", "@value": ...}.
function when(v) { return v && typeof v === "object" ? v["@value"] : v; }
function fmtTime(value) {
  const iso = when(value);
  if (!iso) return "—";
  return new Intl.DateTimeFormat(state.lang === "en" ? "en-GB" : "vi-VN",
    {dateStyle: "short", timeStyle: "short", timeZone: TZ}).format(new Date(iso));
}

// -- texts that follow the language -----------------------------------------------------

function applyLanguage() {
  translatePage(state.lang, t);
  document.title = `IOC — ${t("title")}`;
  buildToggles();
  renderLegend();
  renderTiles();
  renderIncidents();
  renderDetail();
  renderWho();
  setLive(state.liveStatus || "connecting");
}

// Who is signed in (their role in the page's language), and the way out.
function renderWho() {
  const who = document.getElementById("who");
  const me = state.me;
  if (!me || !me.identified) { who.replaceChildren(); return; }
  who.replaceChildren(`${pick(me.title, state.lang)} · ${me.subject.replace(/^user:/, "")} · `,
                      el("a", {href: "/auth/logout", "data-testid": "sign-out"}, t("signOut")));
}

function setLive(status) {
  state.liveStatus = status;
  const node = document.getElementById("live");
  node.className = "live " + (status === "live" ? "on" : status === "offline" ? "off" : "");
  const when = state.lastEvent ? " · " + fmtTime(state.lastEvent) : "";
  document.getElementById("live-text").textContent =
    (status === "live" ? t("live") : status === "offline" ? t("offline") : t("connecting")) + when;
}

// -- tiles -------------------------------------------------------------------------------

function renderTiles() {
  const s = state.summary || {};
  const tiles = document.getElementById("tiles");
  tiles.replaceChildren();
  const tile = (key, figure, sub, warn, testid, colour) => tiles.append(
    el("div", {class: "tile" + (warn ? " warn" : ""), "data-testid": testid,
               style: colour ? `border-left: 6px solid ${colour}` : null},
       el("div", {class: "label"}, t(key)), el("div", {class: "figure"}, String(figure)),
       sub ? el("div", {class: "sub"}, sub) : null));
  const byCategory = Object.entries(s.openIncidents || {})
    .map(([c, n]) => `${label(state.workflow && state.workflow.categories, c)}: ${n}`).join(" · ");
  tile("tileOpen", s.openIncidentsTotal ?? "—", byCategory, s.openIncidentsTotal > 0, "tile-open");
  tile("tileOverdue", s.overdueIncidents ?? "—", null, s.overdueIncidents > 0, "tile-overdue");
  const devices = s.devices || {};
  const total = (devices.online || 0) + (devices.silent || 0) + (devices.unknown || 0);
  tile("tileDevices", total ? `${devices.online || 0}/${total}` : "—",
       devices.silent ? `${devices.silent} ${t("tileSilent")}` : null, devices.silent > 0,
       "tile-devices");
  const level = s.aqiLevel;
  tile("tileAqi", s.aqiMax ?? "—", level ? (level[state.lang] || level.vi) : null,
       s.aqiMax > 100, "tile-aqi", level ? `rgb(${level.rgb.join(",")})` : null);
  tile("tileFlood", s.floodStationsAboveAlert ?? "—", null, s.floodStationsAboveAlert > 0,
       "tile-flood");
  tile("tileWarnings", s.warningsInForce ?? "—", null, s.warningsInForce > 0, "tile-warnings");
}

// -- map ---------------------------------------------------------------------------------

function emptyCollection() { return {type: "FeatureCollection", features: []}; }

function createMap() {
  if (typeof maplibregl === "undefined") {
    document.getElementById("no-map").hidden = false;
    return null;
  }
  const map = new maplibregl.Map({
    container: "map",
    style: {
      version: 8,
      sources: {
        areas: {type: "geojson", data: emptyCollection()},
        sensors: {type: "geojson", data: emptyCollection()},
        incidents: {type: "geojson", data: emptyCollection()},
      },
      layers: [
        {id: "background", type: "background", paint: {"background-color": "#e8eef3"}},
        {id: "areas-fill", type: "fill", source: "areas",
         paint: {"fill-color": "#ffffff", "fill-opacity": 0.75}},
        {id: "areas-line", type: "line", source: "areas",
         paint: {"line-color": "#6b7d90", "line-width": 1.2}},
        {id: "incident-areas", type: "fill", source: "incidents",
         filter: ["==", ["geometry-type"], "Polygon"],
         paint: {"fill-color": "#d7263d", "fill-opacity": 0.18}},
        {id: "sensors", type: "circle", source: "sensors",
         paint: {
           "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 3, 15, 7],
           "circle-color": ["match", ["get", "state"], "alarm", STATE_COLOUR.alarm,
                            "silent", STATE_COLOUR.silent, "unknown", STATE_COLOUR.unknown,
                            STATE_COLOUR.online],
           "circle-stroke-color": ["get", "ring"], "circle-stroke-width": 1.5}},
        {id: "incident-points", type: "circle", source: "incidents",
         filter: ["==", ["geometry-type"], "Point"],
         paint: {"circle-radius": 11, "circle-color": "rgba(0,0,0,0)",
                 "circle-stroke-color": ["get", "colour"], "circle-stroke-width": 3}},
      ],
    },
    center: [108.2, 16.05], zoom: 11, attributionControl: false,
  });
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
  map.addControl(new maplibregl.ScaleControl(), "bottom-right");
  map.on("click", e => { if (state.creating) place(e.lngLat); });
  map.on("click", "sensors", e => { if (!state.creating) sensorPopup(e.features[0], e.lngLat); });
  map.on("click", "incident-points", e => { if (!state.creating) select(e.features[0].properties.id); });
  map.on("click", "incident-areas", e => {
    // A click on a sensor or an incident point inside an incident's area is about them.
    if (state.creating) return;
    if (map.queryRenderedFeatures(e.point, {layers: ["sensors", "incident-points"]}).length) return;
    select(e.features[0].properties.id);
  });
  for (const layer of ["sensors", "incident-points", "incident-areas"]) {
    map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
  }
  return map;
}

async function loadAreas() {
  const areas = await api("/ioc/map/areas");
  if (!state.map) return;
  await mapReady(state.map);
  state.map.getSource("areas").setData(areas);
  const bounds = polygonBounds(areas);
  if (!bounds.isEmpty()) state.map.fitBounds(bounds, {padding: 30, duration: 0});
  state.map.on("click", "areas-fill", e => {
    if (state.map.queryRenderedFeatures(e.point, {layers: ["sensors", "incident-points"]}).length) return;
    const names = JSON.parse(e.features[0].properties.name || "{}");
    new maplibregl.Popup().setLngLat(e.lngLat)
      .setDOMContent(el("div", {class: "popup"}, el("h4", {}, names[state.lang] || names.vi || "")))
      .addTo(state.map);
  });
}

function sensorData() {
  const features = [];
  for (const f of state.sensors.values()) {
    if (state.hidden.has(f.properties.category)) continue;
    f.properties.ring = CATEGORY_COLOUR[f.properties.category] || "#999";
    features.push(f);
  }
  return {type: "FeatureCollection", features};
}

function incidentData() {
  const features = [];
  if (state.hidden.has("incidents")) return emptyCollection();
  for (const i of state.incidents.values()) {
    if (!i.location || !isOpen(i)) continue;
    features.push({type: "Feature", geometry: i.location,
                   properties: {id: i.id, colour: SEVERITY_COLOUR[i.severity] || "#d7263d"}});
  }
  return {type: "FeatureCollection", features};
}

function redrawMap() {
  if (!state.map || !state.map.getSource("sensors")) return;
  state.map.getSource("sensors").setData(sensorData());
  state.map.getSource("incidents").setData(incidentData());
  state.map.setLayoutProperty("areas-fill", "visibility", state.hidden.has("areas") ? "none" : "visible");
  state.map.setLayoutProperty("areas-line", "visibility", state.hidden.has("areas") ? "none" : "visible");
}

function buildToggles() {
  const box = document.getElementById("toggles");
  box.querySelectorAll("label").forEach(n => n.remove());
  const categories = [...new Set(state.layers.map(l => l.category))];
  const toggle = (key, text, colour) => box.append(el("label", {},
    el("input", {type: "checkbox", "data-testid": "toggle-" + key,
                 ...(state.hidden.has(key) ? {} : {checked: ""}),
                 onchange: e => { e.target.checked ? state.hidden.delete(key) : state.hidden.add(key); redrawMap(); }}),
    " ", colour ? el("span", {class: "swatch", style: `background:${colour}`}) : null, text));
  toggle("areas", t("areas"));
  toggle("incidents", t("incidentsLayer"), "#d7263d");
  for (const c of categories) {
    toggle(c, label(state.workflow && state.workflow.categories, c), CATEGORY_COLOUR[c]);
  }
}

function renderLegend() {
  const legend = document.getElementById("legend");
  legend.replaceChildren(...Object.entries(STATE_COLOUR).map(([s, colour]) =>
    el("span", {}, el("span", {class: "swatch", style: `display:inline-block;width:.7rem;height:.7rem;border-radius:50%;background:${colour}`}),
       " ", t("state_" + s))));
}

async function sensorPopup(feature, lngLat) {
  const p = feature.properties;
  const layer = state.layers.find(l => l.type === p.entityType) || {chart: []};
  const body = el("div", {class: "popup", "data-testid": "sensor-popup"},
    el("h4", {}, p.name),
    el("div", {class: "state"}, `${p.entityType} · `,
       el("b", {style: `color:${STATE_COLOUR[p.state]}`}, t("state_" + p.state))),
    el("div", {}, `${layer.headline || ""}: `, el("b", {}, String(p.value ?? "—")), ` ${p.unit || ""}`),
    el("div", {class: "meta"}, fmtTime(p.observedAt)));
  const latest = el("table", {});
  const chartBox = el("div", {"data-testid": "sensor-chart"});
  body.append(el("h4", {}, t("latest")), latest, el("h4", {}, t("last24h")), chartBox);
  new maplibregl.Popup({maxWidth: "24rem"}).setLngLat(lngLat).setDOMContent(body).addTo(state.map);
  try {
    const entity = await api(`/ngsi-ld/v1/entities/${encodeURIComponent(p.id)}?options=keyValues`);
    for (const [k, v] of Object.entries(entity)) {
      if (["id", "type", "location", "@context", "address"].includes(k)) continue;
      if (v !== null && typeof v === "object") continue;
      latest.append(el("tr", {}, el("td", {}, k), el("td", {}, el("b", {}, String(v)))));
    }
  } catch (e) { latest.append(el("tr", {}, el("td", {}, e.message))); }
  if (!layer.chart.length) return;
  const to = new Date(), from = new Date(to.getTime() - 24 * 3600 * 1000);
  try {
    const q = new URLSearchParams({attrs: layer.chart.join(","), timerel: "after",
      timeAt: from.toISOString(), options: "aggregatedValues", aggrMethods: "avg",
      aggrPeriodDuration: "PT15M"});
    const history = await api(`/ngsi-ld/v1/temporal/entities/${encodeURIComponent(p.id)}?${q}`);
    const series = layer.chart.map(name => {
      const attr = [].concat(history[name] || []);
      const points = [];
      for (const a of attr) {
        for (const [value, start] of (a.avg || [])) {
          if (typeof value === "number") points.push([new Date(start).getTime(), value]);
        }
      }
      points.sort((a, b) => a[0] - b[0]);
      return {name, points};
    });
    chartBox.append(lineChart(series, {from, to, locale: state.lang === "en" ? "en-GB" : "vi-VN",
                                       timeZone: TZ, empty: t("noData")}));
  } catch (e) { chartBox.append(el("div", {class: "error"}, e.message)); }
}

// -- incidents ---------------------------------------------------------------------------

function isOpen(i) { return state.workflow && state.workflow.open.includes(i.status); }

function visibleIncidents() {
  const status = document.getElementById("f-status").value;
  const category = document.getElementById("f-category").value;
  return [...state.incidents.values()]
    .filter(i => status === "all" || isOpen(i))
    .filter(i => !category || i.category === category)
    .sort((a, b) => (isOpen(b) - isOpen(a)) || (severityRank(a) - severityRank(b))
          || String(when(b.dateIssued)).localeCompare(String(when(a.dateIssued))));
}

// Most severe first, as the workflow file lists the severities.
function severityRank(i) {
  const order = Object.keys(state.workflow.severities);
  const k = order.indexOf(i.severity);
  return k < 0 ? order.length : k;
}

function incidentTitle(i) { return i.name || i.id; }

function renderIncidents() {
  if (!state.workflow) return;
  const list = document.getElementById("incidents");
  const items = visibleIncidents();
  document.getElementById("count").textContent = `(${items.length})`;
  list.replaceChildren(...items.map(i => el("li", {
      class: (i.id === state.selected ? "selected " : "") + (isOpen(i) ? "" : "done"),
      style: `--sev:${SEVERITY_COLOUR[i.severity] || "#999"}`,
      "data-testid": "incident", "data-id": i.id, "data-status": i.status,
      onclick: () => select(i.id)},
    el("div", {}, el("b", {}, incidentTitle(i))),
    el("div", {class: "meta"},
       el("span", {class: "badge"}, label(state.workflow.statuses, i.status)),
       el("span", {class: "badge"}, label(state.workflow.categories, i.category)),
       el("span", {class: "badge"}, t("sev_" + i.severity)),
       i.escalationLevel > 0 ? el("span", {class: "badge overdue"}, t("overdue")) : null,
       fmtTime(i.dateIssued), i.ward ? ` · ${i.ward}` : ""))));
  if (!items.length) list.append(el("li", {class: "done"}, t("noIncidents")));
}

function select(id) {
  if (state.creating) stopCreating();
  if (id !== state.selected) state.form = {};
  state.selected = id;
  state.detailError = null;
  renderIncidents();
  renderDetail();
  const i = state.incidents.get(id);
  if (state.map && i && i.location) {
    const c = i.location.type === "Point" ? i.location.coordinates : i.location.coordinates[0][0];
    state.map.easeTo({center: c, duration: 300});
  }
}

// -- an incident opened by hand --------------------------------------------------------

function startCreating() {
  state.selected = null;
  state.form = {};
  state.creating = {point: null};
  state.detailError = null;
  renderIncidents();
  renderDetail();
}

function place(lngLat) {
  state.creating.point = [Number(lngLat.lng.toFixed(6)), Number(lngLat.lat.toFixed(6))];
  if (!state.marker) state.marker = new maplibregl.Marker({color: "#d7263d"});
  state.marker.setLngLat(state.creating.point).addTo(state.map);
  renderDetail();
}

function stopCreating() {
  state.creating = null;
  if (state.marker) state.marker.remove();
  renderDetail();
}

function renderCreate(box) {
  const wf = state.workflow, c = state.creating, form = state.form;
  const keep = key => e => { form[key] = e.target.value; };
  const field = (key, node) => el("label", {class: "field"}, el("span", {}, t(key)), node);
  const title = el("input", {type: "text", "data-testid": "new-title", value: form.title,
                             oninput: keep("title")});
  const category = el("select", {"data-testid": "new-category", onchange: keep("category")},
    ...Object.keys(wf.categories).map(k => el("option", {value: k, ...(k === form.category ? {selected: ""} : {})}, label(wf.categories, k))));
  const severity = el("select", {"data-testid": "new-severity", onchange: keep("severity")},
    ...Object.keys(wf.severities).map(k => el("option", {value: k, ...(k === (form.severity || "medium") ? {selected: ""} : {})}, t("sev_" + k))));
  const description = el("textarea", {rows: 2, "data-testid": "new-description",
                                      oninput: keep("description")}, form.description || "");
  box.replaceChildren(...[
    el("div", {class: "head"}, el("h3", {}, t("newIncident").replace("+ ", "")),
       el("button", {type: "button", "aria-label": t("cancel"), onclick: stopCreating}, "×")),
    field("newTitle", title), field("category", category), field("severity", severity),
    field("description", description),
    el("div", {class: "meta", "data-testid": "new-place"},
       c.point ? `${t("place")}: ${c.point[1]}, ${c.point[0]}` : t("pickPlace")),
    state.detailError ? el("div", {class: "error", "data-testid": "detail-error"}, state.detailError) : null,
    el("div", {class: "actions"},
       el("button", {type: "button", class: "primary", "data-testid": "new-create",
                     onclick: () => create(title.value, category.value, severity.value,
                                           description.value)}, t("create")),
       el("button", {type: "button", onclick: stopCreating}, t("cancel")))].filter(Boolean));
}

async function create(title, category, severity, description) {
  const body = {title, category, severity, by: "operator"};
  if (description) body.description = description;
  if (state.creating.point) body.location = {type: "Point", coordinates: state.creating.point};
  try {
    const made = await api("/ioc/incidents", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    stopCreating();
    state.form = {};
    await refreshIncident(made.id);
    select(made.id);
  } catch (e) { state.detailError = e.message; renderDetail(); }
}

function renderDetail() {
  const box = document.getElementById("detail");
  if (state.creating && state.workflow) { box.hidden = false; renderCreate(box); return; }
  const i = state.incidents.get(state.selected);
  if (!i || !state.workflow) { box.hidden = true; return; }
  box.hidden = false;
  const wf = state.workflow;
  const row = (key, value) => value === undefined || value === null || value === "" ? [] :
    [el("dt", {}, t(key)), el("dd", {"data-testid": "detail-" + key}, String(value))];
  // What the operator is typing or choosing survives the re-renders the live feed causes.
  const form = state.form;
  const keep = key => e => { form[key] = e.target.value; };
  const note = el("input", {type: "text", placeholder: t("note"), "data-testid": "move-note",
                            value: form.note, oninput: keep("note")});
  const chosen = form.agency ?? i.assignedAgency ?? "";
  const agencies = el("select", {"data-testid": "move-agency", onchange: keep("agency")},
    el("option", {value: ""}, t("chooseAgency")),
    ...Object.keys(wf.agencies).map(a => el("option", {value: a, ...(a === chosen ? {selected: ""} : {})}, label(wf.agencies, a))));
  const moves = (wf.moves[i.status] || []).map(to => el("button", {
      type: "button", class: "primary", "data-testid": "move-" + to,
      onclick: () => move(i.id, to, agencies.value, note.value)},
    `${t("moveTo")}: ${label(wf.statuses, to)}`));
  const comment = el("input", {type: "text", placeholder: t("comments"), "data-testid": "comment-text",
                               value: form.comment, oninput: keep("comment")});
  box.replaceChildren(...[
    el("div", {class: "head"}, el("h3", {"data-testid": "detail-title"}, incidentTitle(i)),
       el("button", {type: "button", "aria-label": t("close"), onclick: () => select(null)}, "×")),
    el("dl", {},
       row("status", label(wf.statuses, i.status)),
       row("category", label(wf.categories, i.category)),
       row("severity", t("sev_" + i.severity)),
       row("ward", i.ward),
       row("issued", fmtTime(i.dateIssued)),
       row("due", i.dueAt ? fmtTime(i.dueAt) : null),
       row("agency", i.assignedAgency ? label(wf.agencies, i.assignedAgency) : null),
       row("occurrences", i.occurrences > 1 ? i.occurrences : null),
       row("escalation", i.escalationLevel > 0 ? i.escalationLevel : null),
       row("description", i.description)),
    moves.length ? el("div", {class: "actions"}, agencies, note) : null,
    el("div", {class: "actions"}, ...moves),
    state.detailError ? el("div", {class: "error", "data-testid": "detail-error"}, state.detailError) : null,
    isOpen(i) ? el("div", {class: "actions"}, el("button", {type: "button",
      "data-testid": "issue-warning", onclick: () => issueWarning(i.id)}, t("warn"))) : null,
    ...warningsOf(i.id),
    el("h4", {}, t("comments")),
    el("ul", {class: "comments"}, ...(i.comments || []).map(c =>
      el("li", {}, el("b", {}, c.by || ""), ` ${fmtTime(c.at)}: ${c.text}`))),
    el("div", {class: "actions"}, comment,
       el("button", {type: "button", onclick: () => addComment(i.id, comment.value)}, t("addComment")))]
    .filter(Boolean));
}

async function move(id, to, agency, note) {
  const body = {status: to, by: "operator"};
  if (agency) body.agency = agency;
  if (note) body.note = note;
  try {
    await api(`/ioc/incidents/${encodeURIComponent(id)}/status`, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    state.detailError = null;
    state.form = {};
    await refreshIncident(id);
  } catch (e) { state.detailError = e.message; renderDetail(); }
}

function warningsOf(id) {
  const mine = state.warnings.filter(w => w.incident === id);
  if (!mine.length) return [];
  return [el("h4", {}, t("warnings")), el("ul", {class: "comments", "data-testid": "warnings"},
    ...mine.map(w => el("li", {}, el("a", {href: `/ioc/warnings/${encodeURIComponent(w.identifier)}.xml`,
                                           target: "_blank"}, `${w.msgType} · ${fmtTime(w.sent)}`))))];
}

async function loadWarnings() {
  try { state.warnings = await api("/ioc/warnings"); } catch (e) { state.warnings = []; }
  renderDetail();
}

async function issueWarning(id) {
  try {
    await api("/ioc/warnings", {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify({incident: id})});
    state.detailError = null;
    await loadWarnings();
  } catch (e) { state.detailError = e.message; renderDetail(); }
}

async function addComment(id, text) {
  if (!text) return;
  try {
    await api(`/ioc/incidents/${encodeURIComponent(id)}/comments`, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({text, by: "operator"})});
    state.form.comment = "";
    await refreshIncident(id);
  } catch (e) { state.detailError = e.message; renderDetail(); }
}

async function refreshIncident(id) {
  // The live feed brings the change too; reading it now answers the click at once.
  state.incidents.set(id, await api(`/ioc/incidents/${encodeURIComponent(id)}`));
  renderIncidents(); renderDetail(); redrawMap();
}

// -- live feed ---------------------------------------------------------------------------

function merge(target, data, key) {
  if (data.full) target.clear();
  for (const item of data.changed) {
    // A snapshot built just before this page's own change may arrive after it: the
    // older copy of an incident never replaces the newer one.
    const held = target.get(key(item));
    if (held && held.modifiedAt && item.modifiedAt && item.modifiedAt < held.modifiedAt) continue;
    target.set(key(item), item);
  }
  for (const id of data.removed) target.delete(id);
}

function connect() {
  const source = new EventSource("/ioc/stream" + (TENANT ? `?tenant=${encodeURIComponent(TENANT)}` : ""));
  source.onopen = () => setLive("live");
  source.onerror = () => setLive("offline");
  source.addEventListener("sensors", e => {
    const data = JSON.parse(e.data);
    merge(state.sensors, data, f => f.properties.id);
    state.lastEvent = data.at; setLive("live");
    redrawMap();
  });
  source.addEventListener("incidents", e => {
    const data = JSON.parse(e.data);
    merge(state.incidents, data, i => i.id);
    state.lastEvent = data.at; setLive("live");
    renderIncidents(); redrawMap();
    // The detail is redrawn only when its incident changed: an operator typing a note
    // keeps the field and its focus.
    if (data.full || data.removed.includes(state.selected)
        || data.changed.some(i => i.id === state.selected)) renderDetail();
  });
  source.addEventListener("summary", e => {
    const before = state.summary.warningsInForce;
    state.summary = JSON.parse(e.data);
    renderTiles();
    if (state.summary.warningsInForce !== before) loadWarnings();
  });
  state.source = source;
}

async function main() {
  [state.workflow, state.layers, state.me] = await Promise.all([
    api("/ioc/workflow"), api("/ioc/layers").then(r => r.layers), api("/auth/me")]);
  const categories = document.getElementById("f-category");
  for (const c of Object.keys(state.workflow.categories)) {
    categories.append(el("option", {value: c, "data-category": c}));
  }
  const relabel = () => { for (const o of categories.querySelectorAll("[data-category]")) o.textContent = label(state.workflow.categories, o.value); };
  document.getElementById("new").onclick = startCreating;
  document.getElementById("f-status").onchange = renderIncidents;
  categories.onchange = renderIncidents;
  document.getElementById("lang").onclick = () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    applyLanguage(); relabel();
  };
  state.map = createMap();
  applyLanguage(); relabel();
  connect();
  await loadAreas();
  redrawMap();
  window.dashboardReady = true;
}

// For tests and scripts: what the map draws now.
window.dashboard = {
  state,
  drawnIncidents: () => state.map ? state.map.querySourceFeatures("incidents").map(f => f.properties.id) : [],
  drawnSensors: () => state.map ? state.map.querySourceFeatures("sensors").length : 0,
};

main().catch(e => { document.body.prepend(el("div", {class: "error"}, e.message)); });
