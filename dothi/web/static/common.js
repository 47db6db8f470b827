// What the platform's pages share: the tenant of the page (?tenant=), building elements,
// and calling the API with errors that say what the server said.
"use strict";

const params = new URLSearchParams(location.search);
const TENANT = params.get("tenant") || "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child);
  }
  return node;
}

// Problem details (NGSI-LD) and Open311's [{code, description}] both become the message.
async function api(path, options) {
  const headers = Object.assign({"Accept": "application/json"}, (options || {}).headers);
  if (TENANT) headers["NGSILD-Tenant"] = TENANT;
  // A signed-in person's changes carry the session's anti-forgery token.
  const csrf = document.cookie.split("; ").find(c => c.startsWith("dothi_csrf="));
  if (csrf) headers["X-CSRF-Token"] = decodeURIComponent(csrf.slice("dothi_csrf=".length));
  const response = await fetch(path, Object.assign({}, options, {headers}));
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const problem = await response.json();
      detail = Array.isArray(problem) ? problem[0].description : problem.detail || problem.title;
    } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : null;
}

// A page's readiness, which the browser tests wait for: window[flag] is true when none of
// the work (promises) given to the returned function is still running.
function readiness(flag) {
  let pending = 0;
  window[flag] = false;
  return work => {
    pending += 1;
    window[flag] = false;
    return work.finally(() => {
      pending -= 1;
      window[flag] = pending === 0;
    });
  };
}

// A map that has loaded its style (layers can be given data). map.loaded() is false again
// whenever a frame is due, and "load" fires only once: a map asked after its load waits
// for its next "idle" instead.
function mapReady(map) {
  return new Promise(done => {
    if (map.loaded()) return done();
    map.once("load", done);
    map.once("idle", done);
  });
}

// "2026-12-15" as 15/12/2026.
function dayText(iso) {
  if (!iso) return "";
  const [y, m, d] = iso.slice(0, 10).split("-");
  return `${d}/${m}/${y}`;
}

// An instant as 26/11/2026 16:53, in Vietnam's time.
function momentText(iso) {
  if (!iso) return "";
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).formatToParts(new Date(iso))
    .map(p => [p.type, p.value]));
  return `${parts.day}/${parts.month}/${parts.year} ${parts.hour}:${parts.minute}`;
}

// The page in its language: <html lang>, the language button (which offers the other
// language), and every element marked data-i18n, through the page's own t().
function translatePage(lang, t) {
  document.documentElement.lang = lang;
  document.getElementById("lang").textContent = lang === "vi" ? "EN" : "VI";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
}

// A text in the page's language, from {"vi": ..., "en": ...} (Vietnamese when the other is
// missing); anything else as it is.
function pick(texts, lang) {
  return texts && typeof texts === "object" ? texts[lang] || texts.vi : texts;
}

// The bounds of a GeoJSON collection of polygons, to fit a map to the city.
function polygonBounds(collection) {
  const bounds = new maplibregl.LngLatBounds();
  for (const f of collection.features) {
    const rings = f.geometry.type === "Polygon" ? f.geometry.coordinates : f.geometry.coordinates.flat();
    for (const ring of rings) for (const c of ring) bounds.extend(c);
  }
  return bounds;
}

// Planning zones' colours by land use (the keys of dothi/gis/planning.py's LAND_USE).
const LAND_USE_COLOURS = {residential: "#f4c28a", commercial: "#e58a8a", mixed: "#d9a3d6",
  green: "#8cc98c", public: "#b8b0e0", education: "#f2e08a", health: "#9fd3d6",
  industrial: "#b5a89a", transport: "#c9cdd2", water: "#8fc1e8"};

function landUseColour() {
  return ["match", ["get", "landUse"], ...Object.entries(LAND_USE_COLOURS).flat(), "#cfcfcf"];
}

// Entities of the given types as GeoJSON (NGSI-LD's own GeoJSON representation).
function entitiesGeoJSON(types, q) {
  const filter = q ? `&q=${encodeURIComponent(q)}` : "";
  return api(`/ngsi-ld/v1/entities?type=${types}&options=keyValues&limit=1000${filter}`,
             {headers: {"Accept": "application/geo+json"}});
}
