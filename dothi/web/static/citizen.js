// The citizens' page: report a problem with a point on the map and a photo (Open311),
// follow one's own reports, see what was fixed nearby, the planning rules of a place and
// the public warnings in force there. Vietnamese first; the reports one made are
// remembered by this browser only (their ids, in localStorage), never by an account.
"use strict";

const TZ = "Asia/Ho_Chi_Minh";
const MINE_KEY = "dothi.myReports";
const PLACE_KEY = "dothi.place";
const NEARBY_METRES = 1000;
const PHOTO_SIDE = 1600;

const TEXT = {
  vi: {
    title: "Phản ánh hiện trường", tabReport: "Gửi phản ánh", tabMine: "Của tôi",
    tabNearby: "Quanh đây", tabPlanning: "Quy hoạch",
    pickPlace: "Chạm vào bản đồ để chọn vị trí.", place: "Vị trí đã chọn",
    service: "Loại phản ánh", description: "Mô tả", photo: "Ảnh (không bắt buộc)",
    contact: "Thông tin liên hệ (không bắt buộc, không công khai)", name: "Họ và tên",
    phone: "Điện thoại", email: "Thư điện tử", send: "Gửi phản ánh", sending: "Đang gửi…",
    sent: "Đã gửi. Mã phản ánh của bạn:", needPlace: "Hãy chạm vào bản đồ để chọn vị trí trước.",
    choose: "— Chọn —", noMine: "Bạn chưa gửi phản ánh nào từ trình duyệt này.",
    noNearby: "Chưa có phản ánh nào đã xử lý xong trong vòng 1 km.",
    open: "Đang xử lý", closed: "Đã xử lý xong", sentAt: "Gửi lúc", updatedAt: "Cập nhật",
    expected: "Dự kiến xong", agency: "Đơn vị xử lý", warning: "Cảnh báo",
    planningNone: "Chọn một vị trí trên bản đồ để xem quy hoạch tại đó.",
    zone: "Ô quy hoạch", areas: "Thuộc", refresh: "Cập nhật",
    noMap: "Chưa cài thư viện bản đồ MapLibre GL: chạy `make install` (cần npm).",
  },
  en: {
    title: "Report a problem", tabReport: "Report", tabMine: "Mine", tabNearby: "Nearby",
    tabPlanning: "Planning",
    pickPlace: "Tap the map to choose the place.", place: "Place chosen",
    service: "What is wrong", description: "Description", photo: "Photo (optional)",
    contact: "Contact details (optional, never public)", name: "Name", phone: "Phone",
    email: "E-mail", send: "Send report", sending: "Sending…",
    sent: "Sent. Your report's number:", needPlace: "Tap the map to choose the place first.",
    choose: "— Choose —", noMine: "You have sent no reports from this browser.",
    noNearby: "No report within 1 km has been resolved yet.",
    open: "Being handled", closed: "Resolved", sentAt: "Sent", updatedAt: "Updated",
    expected: "Expected by", agency: "Handled by", warning: "Warning",
    planningNone: "Choose a place on the map to see its planning.",
    zone: "Planning zone", areas: "In", refresh: "Refresh",
    noMap: "The MapLibre GL map library is not installed: run `make install` (needs npm).",
  },
};

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  tab: "report",
  point: JSON.parse(localStorage.getItem(PLACE_KEY) || "null"),  // [lon, lat]
  services: [],
  map: null,
};

function t(key) { return TEXT[state.lang][key] || TEXT.vi[key] || key; }

function mine() { return JSON.parse(localStorage.getItem(MINE_KEY) || "[]"); }

function time(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(state.lang === "en" ? "en-GB" : "vi-VN",
    {dateStyle: "short", timeStyle: "short", timeZone: TZ}).format(new Date(iso));
}

// -- language and tabs --------------------------------------------------------------------

async function applyLanguage() {
  translatePage(state.lang, t);
  document.title = `${t("title")} — dothi`;
  showPlace();
  await loadServices();
  await refresh();
}

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === tab));
  }
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== tab;
  return refresh();
}

// What the tab shows depends on the place and the language: read it again.
async function refresh() {
  const work = [loadWarnings()];
  if (state.tab === "mine") work.push(loadMine());
  if (state.tab === "nearby") work.push(loadNearby());
  if (state.tab === "planning") work.push(loadPlanning());
  await Promise.all(work);
}

// -- the map ------------------------------------------------------------------------------

function makeMap() {
  if (typeof maplibregl === "undefined") {
    document.getElementById("no-map").hidden = false;
    return null;
  }
  const empty = {type: "FeatureCollection", features: []};
  const map = new maplibregl.Map({
    container: "map",
    style: {
      version: 8,
      sources: {areas: {type: "geojson", data: empty}, zones: {type: "geojson", data: empty},
                streets: {type: "geojson", data: empty}, place: {type: "geojson", data: empty},
                nearby: {type: "geojson", data: empty}},
      layers: [
        {id: "background", type: "background", paint: {"background-color": "#e8eef3"}},
        {id: "areas-fill", type: "fill", source: "areas", paint: {"fill-color": "#fff", "fill-opacity": 0.8}},
        {id: "zones", type: "fill", source: "zones",
         paint: {"fill-color": landUseColour(), "fill-opacity": 0.45, "fill-outline-color": "#7a6a80"}},
        {id: "streets", type: "line", source: "streets", paint: {"line-color": "#9aa7b4", "line-width": 3}},
        {id: "areas-line", type: "line", source: "areas", paint: {"line-color": "#6b7d90", "line-width": 1.2}},
        {id: "nearby", type: "circle", source: "nearby",
         paint: {"circle-radius": 6, "circle-color": "#2e7d32", "circle-stroke-color": "#fff", "circle-stroke-width": 1.5}},
        {id: "place", type: "circle", source: "place",
         paint: {"circle-radius": 9, "circle-color": "#0b63b6", "circle-stroke-color": "#fff", "circle-stroke-width": 3}},
      ],
    },
    center: state.point || [108.2, 16.05], zoom: 11, attributionControl: false,
  });
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
  map.addControl(new maplibregl.GeolocateControl({trackUserLocation: false}), "top-right");
  map.on("click", e => choosePlace([e.lngLat.lng, e.lngLat.lat]));
  map.on("geolocate", e => choosePlace([e.coords.longitude, e.coords.latitude]));
  return map;
}

// The map has no basemap: the city's own layers give the place its context (boundaries,
// the streets its sensors watch, planning zones).
async function loadAreas() {
  const [areas, streets, zones] = await Promise.all([
    api("/ioc/map/areas"), entitiesGeoJSON("TrafficFlowObserved,StreetlightGroup"),
    entitiesGeoJSON("PlanningZone")]);
  if (!state.map) return;
  await mapReady(state.map);
  state.map.getSource("areas").setData(areas);
  state.map.getSource("streets").setData(streets);
  state.map.getSource("zones").setData(zones);
  const bounds = polygonBounds(areas);
  if (!bounds.isEmpty() && !state.point) state.map.fitBounds(bounds, {padding: 20, duration: 0});
  drawPlace();
}

function drawPlace() {
  if (!state.map || !state.point) return;
  state.map.getSource("place").setData({type: "FeatureCollection", features: [
    {type: "Feature", geometry: {type: "Point", coordinates: state.point}, properties: {}}]});
}

function showPlace() {
  const node = document.getElementById("place");
  node.textContent = state.point
    ? `${t("place")}: ${state.point[1].toFixed(5)}, ${state.point[0].toFixed(5)}`
    : t("pickPlace");
}

async function choosePlace(point) {
  state.point = [Number(point[0].toFixed(6)), Number(point[1].toFixed(6))];
  localStorage.setItem(PLACE_KEY, JSON.stringify(state.point));
  drawPlace();
  showPlace();
  await refresh();
}

// -- warnings -----------------------------------------------------------------------------

async function loadWarnings() {
  const box = document.getElementById("warnings");
  if (!state.point) { box.replaceChildren(); return; }
  const [lon, lat] = state.point;
  const messages = await api(`/citizen/warnings?lat=${lat}&lon=${lon}`);
  box.replaceChildren(...messages.map(m => el("article", {class: "warning", "data-testid": "warning"},
    el("h2", {}, `${t("warning")}: ${pick(m.info.headline, state.lang)}`),
    m.info.description ? el("p", {}, pick(m.info.description, state.lang)) : null,
    m.info.instruction ? el("p", {}, el("strong", {}, pick(m.info.instruction, state.lang))) : null,
    el("p", {class: "meta"}, `${pick(m.area.description, state.lang)} · ${time(m.sent)}`))));
}

// -- reporting ----------------------------------------------------------------------------

async function loadServices() {
  state.services = await api(`/open311/v2/services.json?locale=${state.lang}`);
  const select = document.getElementById("service");
  const chosen = select.value;
  select.replaceChildren(el("option", {value: ""}, t("choose")),
    ...state.services.map(s => el("option", {value: s.service_code}, s.service_name)));
  select.value = chosen;
  await loadAttributes();
}

async function loadAttributes() {
  const box = document.getElementById("attributes");
  const service = state.services.find(s => s.service_code === document.getElementById("service").value);
  if (!service || !service.metadata) { box.replaceChildren(); return; }
  const definition = await api(`/open311/v2/services/${service.service_code}.json?locale=${state.lang}`);
  box.replaceChildren(...definition.attributes.map(a => {
    const name = `attribute[${a.code}]`;
    const input = a.datatype.endsWith("valuelist")
      ? el("select", {name, "data-testid": `attribute-${a.code}`, multiple: a.datatype === "multivaluelist" ? "" : null},
          el("option", {value: ""}, t("choose")),
          ...a.values.map(v => el("option", {value: v.key}, v.name)))
      : el("input", {name, "data-testid": `attribute-${a.code}`, type: a.datatype === "number" ? "number" : "text"});
    return el("label", {}, el("span", {}, a.description + (a.required ? " *" : "")), input);
  }));
}

// A phone's photo is large and carries where it was taken: it is redrawn smaller here
// (the server cleans it again whatever the client does).
async function shrink(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = el("canvas", {width: Math.round(bitmap.width * scale), height: Math.round(bitmap.height * scale)});
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return new Promise(done => canvas.toBlob(done, "image/jpeg", 0.85));
}

async function send(event) {
  event.preventDefault();
  const form = event.target;
  const result = document.getElementById("report-result");
  const button = form.querySelector("[type=submit]");
  result.className = "";
  if (!state.point) { result.className = "error"; result.textContent = t("needPlace"); return; }
  button.disabled = true;
  result.textContent = t("sending");
  try {
    const body = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (typeof v === "string" && v !== "") body.append(k, v);
    body.set("lat", state.point[1]);
    body.set("long", state.point[0]);
    const file = document.getElementById("photo").files[0];
    if (file) {
      const photo = await api("/citizen/media", {method: "POST", body: await shrink(file),
                                                 headers: {"Content-Type": "image/jpeg"}});
      body.set("media_url", photo.media_url);
    }
    const [answer] = await api(`/open311/v2/requests.json?locale=${state.lang}`, {method: "POST", body,
      headers: {"Content-Type": "application/x-www-form-urlencoded"}});
    const ids = mine().filter(id => id !== answer.service_request_id);
    localStorage.setItem(MINE_KEY, JSON.stringify([answer.service_request_id, ...ids].slice(0, 50)));
    result.className = "ok";
    result.replaceChildren(`${t("sent")} `, el("strong", {"data-testid": "report-id"}, answer.service_request_id),
                           el("br"), answer.service_notice || "");
    form.reset();
    await loadAttributes();
  } catch (error) {
    result.className = "error";
    result.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// -- lists of reports ---------------------------------------------------------------------

function reportItem(r) {
  return el("li", {"data-testid": "report", "data-id": r.service_request_id, "data-status": r.status},
    el("h3", {}, `${r.service_name} `, el("span", {class: `badge ${r.status}`}, t(r.status))),
    el("div", {class: "meta"}, `#${r.service_request_id} · ${t("sentAt")} ${time(r.requested_datetime)}`),
    r.description ? el("p", {}, r.description) : null,
    el("p", {"data-testid": "status-notes"}, r.status_notes || ""),
    el("div", {class: "meta"}, `${t("agency")}: ${r.agency_responsible || "—"} · ${t("updatedAt")} ${time(r.updated_datetime)}`
      + (r.expected_datetime ? ` · ${t("expected")} ${time(r.expected_datetime)}` : "")),
    r.media_url ? el("img", {src: r.media_url, alt: r.service_name, loading: "lazy"}) : null);
}

async function loadMine() {
  const list = document.getElementById("mine");
  const ids = mine();
  if (!ids.length) { list.replaceChildren(el("li", {}, t("noMine"))); return; }
  const reports = await api(`/open311/v2/requests.json?locale=${state.lang}&service_request_id=${ids.join(",")}`);
  list.replaceChildren(...reports.map(reportItem));
}

async function loadNearby() {
  const list = document.getElementById("nearby");
  if (!state.point) { list.replaceChildren(el("li", {}, t("pickPlace"))); return; }
  const [lon, lat] = state.point;
  const reports = await api(`/open311/v2/requests.json?locale=${state.lang}&status=closed`
                            + `&lat=${lat}&long=${lon}&radius=${NEARBY_METRES}`);
  list.replaceChildren(...(reports.length ? reports.map(reportItem) : [el("li", {}, t("noNearby"))]));
  if (state.map) {
    state.map.getSource("nearby").setData({type: "FeatureCollection", features: reports
      .filter(r => r.lat !== null)
      .map(r => ({type: "Feature", geometry: {type: "Point", coordinates: [r.long, r.lat]}, properties: {}}))});
  }
}

// -- planning -----------------------------------------------------------------------------

async function loadPlanning() {
  const box = document.getElementById("planning");
  if (!state.point) { box.replaceChildren(el("p", {}, t("planningNone"))); return; }
  const [lon, lat] = state.point;
  const found = await api(`/planning/lookup?lat=${lat}&lon=${lon}`);
  box.replaceChildren(
    el("p", {"data-testid": "planning-summary"}, found.summary[state.lang]),
    found.areas.length ? el("p", {class: "meta"}, `${t("areas")}: ${found.areas.map(a => pick(a.name, state.lang)).join(", ")}`) : null,
    ...found.zones.map(z => el("table", {"data-testid": "zone"},
      el("caption", {}, `${t("zone")} ${z.zoneCode || ""}`),
      ...z.rules.map(r => el("tr", {},
        el("th", {}, r[state.lang]),
        el("td", {}, state.lang === "en" ? r.valueEn || String(r.value) : r.valueVi || String(r.value)))))));
}

// -- start --------------------------------------------------------------------------------

async function start() {
  document.getElementById("lang").addEventListener("click", async () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    await applyLanguage();
  });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  document.getElementById("service").addEventListener("change", loadAttributes);
  document.getElementById("report").addEventListener("submit", send);
  state.map = makeMap();
  await Promise.all([applyLanguage(), state.map ? loadAreas() : null]);
  await showTab("report");
  window.citizenReady = true;
}

window.citizen = {state, choosePlace};
start();
