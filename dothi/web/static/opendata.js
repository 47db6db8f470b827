// The open-data portal: search the catalogue (without diacritics too), open a dataset to
// see its metadata, preview it on a chart (values over time) or a map (where its entities
// are), and download it.
"use strict";

const TEXT = {
  vi: {
    title: "Dữ liệu mở của thành phố",
    lead: "Dữ liệu đô thị không chứa thông tin cá nhân, để người dân, doanh nghiệp và nhà nghiên cứu sử dụng lại.",
    search: "Tìm dữ liệu", dcat: "Danh mục DCAT-AP (JSON-LD)",
    open: "Mở", closed: "Không công khai", personal: "Dữ liệu cá nhân",
    none: "Không tìm thấy tập dữ liệu nào.", entities: "bản ghi",
    publisher: "Cơ quan công bố", licence: "Giấy phép", frequency: "Tần suất cập nhật",
    modified: "Cập nhật lần cuối", quality: "Điểm chất lượng dữ liệu", keywords: "Từ khóa",
    coverage: "Phạm vi không gian", attributes: "Thuộc tính",
    now: "Tải dữ liệu hiện tại", history: "Tải chuỗi số liệu theo thời gian",
    from: "Từ ngày", to: "Đến ngày", attribute: "Chỉ tiêu",
    mean: "trung bình", max: "cao nhất", loading: "Đang tải…",
    notPublished: "Tập dữ liệu này chưa được công bố; chỉ cơ quan quản lý được xem.",
    mapNote: "Vị trí các bản ghi",
    freq: {CONT: "liên tục", HOURLY: "hằng giờ", DAILY: "hằng ngày", WEEKLY: "hằng tuần",
           MONTHLY: "hằng tháng", ANNUAL: "hằng năm", IRREG: "không định kỳ"},
  },
  en: {
    title: "The city's open data",
    lead: "The city's non-personal urban data, for citizens, businesses and researchers to reuse.",
    search: "Search datasets", dcat: "DCAT-AP catalogue (JSON-LD)",
    open: "Open", closed: "Not public", personal: "Personal data",
    none: "No dataset found.", entities: "records",
    publisher: "Publisher", licence: "Licence", frequency: "Update frequency",
    modified: "Last changed", quality: "Data quality score", keywords: "Keywords",
    coverage: "Spatial coverage", attributes: "Attributes",
    now: "Download the current data", history: "Download values over time",
    from: "From", to: "To", attribute: "Measure",
    mean: "mean", max: "highest", loading: "Loading…",
    notPublished: "This dataset is not published; only the agencies that manage it can see it.",
    mapNote: "Where the records are",
    freq: {CONT: "continuous", HOURLY: "hourly", DAILY: "daily", WEEKLY: "weekly",
           MONTHLY: "monthly", ANNUAL: "annual", IRREG: "irregular"},
  },
};
const FORMATS = [["csv", "CSV"], ["geojson", "GeoJSON"], ["jsonld", "NGSI-LD JSON-LD"], ["parquet", "Parquet"]];
const DAY = 86400000;

const state = {lang: params.get("lang") || localStorage.getItem("dothi.lang") || "vi",
               datasets: [], chosen: params.get("dataset"), previews: 0};

// window.opendataReady is true when nothing the page started is still loading (the
// browser tests wait for it).
const settle = readiness("opendataReady");

function t(key) { return TEXT[state.lang][key] || TEXT.vi[key] || key; }

function number(value) {
  return new Intl.NumberFormat(state.lang === "en" ? "en-GB" : "vi-VN", {maximumFractionDigits: 1}).format(value);
}

function localDate(ms) {  // yyyy-mm-dd in Vietnam's time
  return new Date(ms + 7 * 3600000).toISOString().slice(0, 10);
}

async function search() {
  const q = document.getElementById("search").value;
  const list = document.getElementById("datasets");
  try {
    state.datasets = (await api(`/opendata/datasets?q=${encodeURIComponent(q)}`)).datasets;
  } catch (e) {
    list.replaceChildren(el("li", {class: "error"}, e.message));
    return;
  }
  list.replaceChildren(...state.datasets.map(card));
  if (!state.datasets.length) list.append(el("li", {class: "sub", "data-testid": "none"}, t("none")));
}

function badges(d) {
  if (d.personal) return [el("span", {class: "badge personal"}, t("personal"))];
  return [el("span", {class: d.open ? "badge" : "badge closed"}, d.open ? t("open") : t("closed"))];
}

function card(d) {
  return el("li", {class: d.id === state.chosen ? "dataset chosen" : "dataset", "data-testid": "dataset",
                   "data-id": d.id, onclick: () => settle(choose(d.id))},
    el("h2", {}, pick(d.title, state.lang)),
    el("div", {class: "meta"}, ...badges(d), `${pick(d.publisher.name, state.lang)} · `,
       `${number(d.entities)} ${t("entities")}`,
       d.quality !== null ? ` · ${t("quality")}: ${number(d.quality)}/100` : ""));
}

async function choose(id) {
  state.chosen = id;
  const url = new URL(location.href);
  url.searchParams.set("dataset", id);
  history.replaceState(null, "", url);
  for (const node of document.querySelectorAll(".dataset")) node.classList.toggle("chosen", node.dataset.id === id);
  const d = await api(`/opendata/datasets/${encodeURIComponent(id)}`);
  const detail = document.getElementById("detail");
  detail.hidden = false;
  const lang = state.lang;
  const rows = [
    [t("publisher"), pick(d.publisher.name, lang)],
    [t("licence"), el("a", {href: d.licence.page, "data-testid": "licence", rel: "license"}, d.licence.title)],
    [t("frequency"), d.frequency ? TEXT[lang].freq[d.frequency] || d.frequency : "—"],
    [t("modified"), d.modified ? new Date(d.modified).toLocaleString(lang === "en" ? "en-GB" : "vi-VN", {timeZone: "Asia/Ho_Chi_Minh"}) : "—"],
    [t("quality"), d.quality !== null ? `${number(d.quality)}/100` : "—"],
    [t("keywords"), (d.keywords[lang] || []).join(", ") || "—"],
    [t("coverage"), d.bbox ? d.bbox.map(v => v.toFixed(3)).join(", ") : "—"],
    [t("attributes"), d.attributes.join(", ") || "—"],
  ];
  detail.replaceChildren(
    el("h2", {"data-testid": "detail-title"}, pick(d.title, lang)),
    el("div", {}, ...badges(d)),
    el("p", {}, pick(d.description, lang)),
    el("dl", {"data-testid": "metadata"}, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
  if (!d.open) {
    detail.append(el("p", {class: "sub"}, t("notPublished")));
    return;
  }
  const preview = el("div", {id: "preview", "data-testid": "preview"});
  const base = `/opendata/datasets/${encodeURIComponent(d.id)}`;
  detail.append(el("h3", {}, t("now")), el("div", {class: "downloads"},
    ...FORMATS.map(([f, label]) => el("a", {href: `${base}/data.${f}`, download: "", "data-testid": `download-${f}`}, label))));
  if (d.history.length) {
    const to = Date.now(), from = to - 30 * DAY;
    const fromInput = el("input", {type: "date", value: localDate(from), "data-testid": "from"});
    const toInput = el("input", {type: "date", value: localDate(to), "data-testid": "to"});
    const attribute = el("select", {"data-testid": "attribute"}, ...d.history.map(a => el("option", {value: a}, a)));
    const links = el("span", {class: "downloads"});
    const refresh = () => {
      const range = `from=${fromInput.value}&to=${toInput.value}`;
      links.replaceChildren(
        el("a", {href: `${base}/history.csv?${range}`, download: "", "data-testid": "history-csv"}, "CSV"),
        el("a", {href: `${base}/history.parquet?${range}`, download: "", "data-testid": "history-parquet"}, "Parquet"));
      return previewHistory(base, fromInput.value, toInput.value, attribute.value);
    };
    for (const input of [fromInput, toInput, attribute]) input.addEventListener("change", () => settle(refresh()));
    detail.append(el("h3", {}, t("history")), el("div", {class: "range"},
      el("label", {}, `${t("from")} `, fromInput), el("label", {}, `${t("to")} `, toInput),
      el("label", {}, `${t("attribute")} `, attribute), links), preview);
    await refresh();
  } else {
    detail.append(preview);
    await previewMap(base);
  }
}

// The chart: for each hour, the mean and the highest value over the dataset's entities,
// read from the same CSV a download gives.
// Only the latest preview asked for is drawn.
async function previewHistory(base, from, to, attribute) {
  const preview = document.getElementById("preview");
  const mine = ++state.previews;
  preview.replaceChildren(el("p", {class: "sub"}, t("loading")));
  const response = await fetch(`${base}/history.csv?from=${from}&to=${to}`);
  const body = await response.text();
  if (mine !== state.previews) return;
  if (!response.ok) {
    preview.replaceChildren(el("p", {class: "error"}, `${response.status}: ${JSON.parse(body).detail}`));
    return;
  }
  const lines = body.replace(/^\ufeff/, "").trim().split(/\r?\n/);
  const column = lines[0].split(",").indexOf(attribute);
  const byTime = new Map();
  for (const line of lines.slice(1)) {
    const cells = line.split(",");
    const value = parseFloat(cells[column]);
    if (Number.isNaN(value)) continue;
    const when = Date.parse(cells[1]);
    if (!byTime.has(when)) byTime.set(when, []);
    byTime.get(when).push(value);
  }
  const times = [...byTime.keys()].sort((a, b) => a - b);
  const mean = times.map(w => [w, byTime.get(w).reduce((a, b) => a + b, 0) / byTime.get(w).length]);
  const max = times.map(w => [w, Math.max(...byTime.get(w))]);
  const start = Date.parse(`${from}T00:00:00+07:00`), end = Date.parse(`${to}T00:00:00+07:00`) + DAY;
  const span = end - start;
  const chart = lineChart([{name: `${attribute}, ${t("mean")}`, points: mean},
                           {name: `${attribute}, ${t("max")}`, points: max}],
    {from: new Date(start), to: new Date(end), width: 720, height: 240, sameScale: true, locale: state.lang === "en" ? "en-GB" : "vi-VN",
     tickMs: span > 10 * DAY ? 7 * DAY : DAY,
     tickFormat: new Intl.DateTimeFormat(state.lang === "en" ? "en-GB" : "vi-VN", {day: "2-digit", month: "2-digit", timeZone: "Asia/Ho_Chi_Minh"})});
  chart.setAttribute("data-testid", "chart");
  chart.setAttribute("data-points", String(times.length));
  preview.replaceChildren(chart);
}

// The map: the dataset's entities, from its GeoJSON download.
async function previewMap(base) {
  const preview = document.getElementById("preview");
  if (typeof maplibregl === "undefined") return;
  preview.replaceChildren(el("div", {id: "map", "data-testid": "map"}), el("p", {class: "sub"}, t("mapNote")));
  const data = await api(`${base}/data.geojson`);
  const map = new maplibregl.Map({container: "map", style: {version: 8, sources: {d: {type: "geojson", data}},
    layers: [{id: "bg", type: "background", paint: {"background-color": "#e8eef3"}},
             {id: "fill", type: "fill", source: "d", filter: ["==", ["geometry-type"], "Polygon"],
              paint: {"fill-color": "#0b63b6", "fill-opacity": 0.25}},
             {id: "line", type: "line", source: "d", paint: {"line-color": "#0b63b6"}},
             {id: "pt", type: "circle", source: "d", filter: ["==", ["geometry-type"], "Point"],
              paint: {"circle-radius": 4, "circle-color": "#d7263d"}}]},
    center: [108.2, 16.05], zoom: 10, attributionControl: false});
  const bounds = new maplibregl.LngLatBounds();
  const walk = c => typeof c[0] === "number" ? bounds.extend(c) : c.forEach(walk);
  data.features.forEach(f => f.geometry && walk(f.geometry.coordinates));
  if (!bounds.isEmpty()) map.fitBounds(bounds, {padding: 30, duration: 0});
  await mapReady(map);
  map.getContainer().dataset.features = String(data.features.length);
}

function translate() {
  translatePage(state.lang, t);
  document.getElementById("search").placeholder = state.lang === "vi" ? "không khí, giao thông, quy hoạch…" : "air quality, traffic, planning…";
}

async function start() {
  translate();
  let timer = null;
  document.getElementById("search").addEventListener("input", () => {
    clearTimeout(timer);
    window.opendataReady = false;
    timer = setTimeout(() => settle(search()), 150);
  });
  document.getElementById("lang").addEventListener("click", () => settle((async () => {
    state.lang = state.lang === "vi" ? "en" : "vi";
    localStorage.setItem("dothi.lang", state.lang);
    translate();
    await search();
    if (state.chosen) await choose(state.chosen);
  })()));
  await search();
  if (state.chosen && state.datasets.some(d => d.id === state.chosen)) await choose(state.chosen);
}

settle(start());
