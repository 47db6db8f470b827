// The planners' page: draw an area on the map, choose one or two plan variants (planning
// layers), and read the area's figures side by side: residents, green space per resident,
// the share of residents near a school, a clinic and a bus stop, floods of the last year,
// the variant's land-use mix and the floor area it allows.
"use strict";

const TEXT = {
  vi: {
    title: "Hỗ trợ quyết định quy hoạch",
    howTo: "Chọn các phương án, bấm \"Vẽ vùng\" rồi chạm vào bản đồ để đặt các đỉnh; bấm \"Xong\" để khép vùng.",
    variantA: "Phương án 1", variantB: "Phương án 2 (so sánh)", none: "— Không —",
    draw: "Vẽ vùng", finish: "Xong", clear: "Xóa", assess: "Đánh giá vùng",
    drawing: "Chạm vào bản đồ để đặt đỉnh ({n} đỉnh).", working: "Đang tính…",
    figure: "Chỉ tiêu", allZones: "Mọi quy hoạch", area: "Diện tích (ha)",
    residents: "Dân số hiện có", density: "Mật độ (người/km²)",
    green: "Cây xanh (m²)", greenPer: "Cây xanh (m²/người)",
    near: "Dân trong bán kính {m} m", floods: "Sự cố ngập trong {d} ngày",
    floor: "Tổng diện tích sàn tối đa (m²)", landUse: "Cơ cấu sử dụng đất",
    noMap: "Chưa cài thư viện bản đồ MapLibre GL: chạy `make install` (cần npm).",
  },
  en: {
    title: "Planning decision support",
    howTo: "Choose the variants, press \"Draw area\" and tap the map to place its corners; press \"Done\" to close it.",
    variantA: "Variant 1", variantB: "Variant 2 (to compare)", none: "— None —",
    draw: "Draw area", finish: "Done", clear: "Clear", assess: "Assess the area",
    drawing: "Tap the map to place a corner ({n} so far).", working: "Working…",
    figure: "Figure", allZones: "All plans", area: "Area (ha)",
    residents: "Residents now", density: "Density (per km²)",
    green: "Green space (m²)", greenPer: "Green space (m² per resident)",
    near: "Residents within {m} m", floods: "Flood incidents, last {d} days",
    floor: "Maximum floor area (m²)", landUse: "Land-use mix",
    noMap: "The MapLibre GL map library is not installed: run `make install` (needs npm).",
  },
};

const state = {
  lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
  layers: [],  // planning layers: {id, title}
  corners: [],  // [lon, lat] while drawing, or the closed ring's corners
  drawing: false, closed: false,
  result: null, map: null,
};

function t(key, values) {
  let text = TEXT[state.lang][key] || TEXT.vi[key] || key;
  for (const [k, v] of Object.entries(values || {})) text = text.replace(`{${k}}`, v);
  return text;
}

function number(value, digits) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat(state.lang === "en" ? "en-GB" : "vi-VN",
    {maximumFractionDigits: digits || 0}).format(value);
}

function applyLanguage() {
  translatePage(state.lang, t);
  document.title = `${t("title")} — dothi`;
  fillVariants();
  showStatus();
  render();
}

// -- the map ------------------------------------------------------------------------------

function makeMap() {
  if (typeof maplibregl === "undefined") { document.getElementById("no-map").hidden = false; return null; }
  const empty = {type: "FeatureCollection", features: []};
  const map = new maplibregl.Map({
    container: "map",
    style: {version: 8,
      sources: {areas: {type: "geojson", data: empty}, zones: {type: "geojson", data: empty},
                amenities: {type: "geojson", data: empty}, drawn: {type: "geojson", data: empty}},
      layers: [
        {id: "background", type: "background", paint: {"background-color": "#e8eef3"}},
        {id: "areas-fill", type: "fill", source: "areas", paint: {"fill-color": "#fff", "fill-opacity": 0.8}},
        {id: "areas-line", type: "line", source: "areas", paint: {"line-color": "#6b7d90", "line-width": 1.2}},
        {id: "zones", type: "fill", source: "zones",
         paint: {"fill-color": landUseColour(), "fill-opacity": 0.6, "fill-outline-color": "#7a6a80"}},
        {id: "amenities", type: "circle", source: "amenities",
         paint: {"circle-radius": 4, "circle-color": "#0f2a44", "circle-stroke-color": "#fff", "circle-stroke-width": 1}},
        {id: "drawn-fill", type: "fill", source: "drawn", filter: ["==", ["geometry-type"], "Polygon"],
         paint: {"fill-color": "#0b63b6", "fill-opacity": 0.15}},
        {id: "drawn-line", type: "line", source: "drawn", paint: {"line-color": "#0b63b6", "line-width": 2.5}},
        {id: "drawn-corners", type: "circle", source: "drawn", filter: ["==", ["geometry-type"], "Point"],
         paint: {"circle-radius": 5, "circle-color": "#0b63b6"}},
      ]},
    center: [108.2, 16.05], zoom: 11, attributionControl: false,
  });
  map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
  map.addControl(new maplibregl.ScaleControl(), "bottom-right");
  map.on("click", e => {
    if (!state.drawing) return;
    state.corners.push([Number(e.lngLat.lng.toFixed(6)), Number(e.lngLat.lat.toFixed(6))]);
    drawArea();
  });
  return map;
}

async function loadLayers() {
  const [areas, layers, amenities] = await Promise.all([
    api("/ioc/map/areas"),
    api(`/ngsi-ld/v1/entities?type=GisLayer&q=${encodeURIComponent('featureType=="PlanningZone"')}&options=keyValues&limit=1000`),
    entitiesGeoJSON("PointOfInterest", 'category=="school"|category=="clinic"|category=="hospital"|category=="busStop"')]);
  state.layers = layers.map(l => ({id: l.id, title: l.title}));
  fillVariants();
  if (!state.map) return;
  await mapReady(state.map);
  state.map.getSource("areas").setData(areas);
  state.map.getSource("amenities").setData(amenities);
  const bounds = polygonBounds(areas);
  if (!bounds.isEmpty()) state.map.fitBounds(bounds, {padding: 20, duration: 0});
  await showZones();
}

function fillVariants() {
  for (const [id, blank] of [["variant-a", false], ["variant-b", true]]) {
    const select = document.getElementById(id);
    const chosen = select.value;
    select.replaceChildren(
      ...(blank ? [el("option", {value: ""}, t("none"))] : [el("option", {value: ""}, t("allZones"))]),
      ...state.layers.map(l => el("option", {value: l.id}, pick(l.title, state.lang) || l.id)));
    select.value = chosen;
  }
}

// The zones of the first variant (or all planning zones) drawn under the area.
async function showZones() {
  if (!state.map) return;
  const variant = document.getElementById("variant-a").value;
  const zones = await entitiesGeoJSON("PlanningZone", variant ? `refGisLayer=="${variant}"` : null);
  state.map.getSource("zones").setData(zones);
}

function drawArea() {
  const features = state.corners.map(c => ({type: "Feature", geometry: {type: "Point", coordinates: c}, properties: {}}));
  if (state.closed) {
    features.push({type: "Feature", properties: {},
                   geometry: {type: "Polygon", coordinates: [[...state.corners, state.corners[0]]]}});
  } else if (state.corners.length > 1) {
    features.push({type: "Feature", properties: {}, geometry: {type: "LineString", coordinates: state.corners}});
  }
  if (state.map) state.map.getSource("drawn").setData({type: "FeatureCollection", features});
  document.getElementById("finish").disabled = !state.drawing || state.corners.length < 3;
  document.getElementById("assess").disabled = !state.closed;
  showStatus();
}

function showStatus(message, isError) {
  const node = document.getElementById("status");
  node.className = isError ? "error" : "";
  node.textContent = message || (state.drawing ? t("drawing", {n: state.corners.length}) : "");
}

// -- the figures --------------------------------------------------------------------------

async function assess() {
  const area = {type: "Polygon", coordinates: [[...state.corners, state.corners[0]]]};
  const a = document.getElementById("variant-a").value || null;
  const b = document.getElementById("variant-b").value || null;
  showStatus(t("working"));
  try {
    if (a && b) {
      state.result = (await api("/planning/compare", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({area, variants: [a, b]})})).variants;
    } else {
      state.result = [await api("/planning/assess", {method: "POST",
        headers: {"Content-Type": "application/json"}, body: JSON.stringify({area, variant: a || b})})];
    }
    showStatus("");
  } catch (error) {
    state.result = null;
    showStatus(error.message, true);
  }
  render();
}

function share(value) {
  if (value === null || value === undefined) return "—";
  return el("span", {}, el("span", {class: "bar", style: `width:${Math.round(value * 80)}px`}),
            `${Math.round(value * 100)}%`);
}

function landUseBar(uses) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 10");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "14");
  let x = 0;
  for (const u of uses) {
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    for (const [k, v] of Object.entries({x, y: 0, width: u.share * 100, height: 10,
                                         fill: LAND_USE_COLOURS[u.landUse] || "#cfcfcf"})) rect.setAttribute(k, v);
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = `${u[state.lang]}: ${Math.round(u.share * 100)}%`;
    rect.append(title);
    svg.append(rect);
    x += u.share * 100;
  }
  return svg;
}

function render() {
  const box = document.getElementById("results");
  if (!state.result) { box.replaceChildren(); return; }
  const results = state.result;
  const title = r => r.variant ? pick((state.layers.find(l => l.id === r.variant) || {}).title, state.lang) || r.variant : t("allZones");
  const first = results[0];
  const rows = [
    [t("area"), r => number(r.area.ha, 1)],
    [t("residents"), r => number(r.population.residents)],
    [t("density"), r => number(r.population.perKm2)],
    [t("green"), r => number(r.greenSpace.m2)],
    [t("greenPer"), r => number(r.greenSpace.perResident, 1), "green-per"],
    ...Object.keys(first.access).filter(k => k !== "metres").map(k =>
      [`${t("near", {m: first.access.metres})}: ${first.access[k][state.lang]}`, r => share(r.access[k].share), `near-${k}`]),
    [t("floods", {d: first.floodIncidents.days}), r => number(r.floodIncidents.count)],
    [t("floor"), r => number(r.grossFloorArea.m2), "floor"],
    [t("landUse"), r => landUseBar(r.landUse)],
  ];
  const used = new Set(results.flatMap(r => r.landUse.map(u => u.landUse)));
  box.replaceChildren(
    el("table", {"data-testid": "figures"},
      el("thead", {}, el("tr", {}, el("th", {}, t("figure")), ...results.map(r => el("th", {}, title(r))))),
      el("tbody", {}, ...rows.map(([label, cell, id]) =>
        el("tr", {"data-testid": id || null}, el("td", {}, label), ...results.map(r => el("td", {}, cell(r))))))),
    el("div", {class: "legend"}, ...[...used].map(u => {
      const names = first.landUse.concat(...results.map(r => r.landUse)).find(x => x.landUse === u);
      return el("span", {}, el("i", {style: `background:${LAND_USE_COLOURS[u] || "#cfcfcf"}`}), names[state.lang]);
    })));
}

// -- start --------------------------------------------------------------------------------

async function start() {
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    applyLanguage();
  });
  document.getElementById("draw").addEventListener("click", () => {
    state.drawing = true; state.closed = false; state.corners = []; state.result = null;
    drawArea(); render();
  });
  document.getElementById("finish").addEventListener("click", () => {
    state.drawing = false; state.closed = true; drawArea();
  });
  document.getElementById("clear").addEventListener("click", () => {
    state.drawing = false; state.closed = false; state.corners = []; state.result = null;
    drawArea(); render();
  });
  document.getElementById("assess").addEventListener("click", assess);
  document.getElementById("variant-a").addEventListener("change", showZones);
  state.map = makeMap();
  applyLanguage();
  await loadLayers();
  window.planningReady = true;
}

window.planning = {state};
start();
