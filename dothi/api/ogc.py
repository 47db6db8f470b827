"""OGC API - Features (Part 1 core, GeoJSON, HTML, OpenAPI; Part 3 filtering with CQL2
text and JSON) over the layers ``dothi import`` made (``/ogc``).

A collection is a ``GisLayer``; its items are the layer's entities, queried through the
store with the same indexes as NGSI-LD queries: ``bbox`` and a CQL2 spatial predicate
become the geo-query, property filters and CQL2 comparisons the q expression."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import GEOJSON, Router, broker, int_param, tenant
from dothi.auth import access as auth
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.gis import cql
from dothi.gis.importer import LAYER_TYPE, layer_id
from dothi.gis.layers import LayerDescriptions
from dothi.ngsild import qlang
from dothi.ngsild.geo import GeoQuery, parse_geoquery
from dothi.ngsild.qlang import DATETIME, NUMBER, STRING, AttrPath, Literal, QExpr, Term
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector

router = Router(prefix="/ogc", tags=["OGC API - Features"])
KEY_VALUES = RenderOptions(fmt="keyValues")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
DEFAULT_LIMIT, MAX_LIMIT = 10, 10_000
NOT_PROPERTIES = {"id", "type", "location", "refGisLayer", "@context"}
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
]
ITEM_PARAMS = {"bbox", "bbox-crs", "limit", "offset", "datetime", "filter", "filter-lang",
               "filter-crs", "f"}


# -- negotiation ------------------------------------------------------------------------------

def _wants_html(request: Request) -> bool:
    f = request.query_params.get("f")
    if f is not None:
        if f not in ("json", "html"):
            raise BadRequestData(f"f={f!r}: json or html")
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _json(body: Any, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), media_type=media_type)


# -- layers -----------------------------------------------------------------------------------

def _layers(request: Request) -> list[dict[str, Any]]:
    b = broker(request)
    ctx = b.resolver.core
    query = EntityQuery(selectors=[Selector(types=parse_type_expr(LAYER_TYPE, ctx.expand))],
                        expand=ctx.expand, limit=1000)
    docs = b.query(tenant(request), query).docs
    return sorted((render_entity(d, ctx, KEY_VALUES) for d in docs), key=lambda d: d["name"])


async def _layer(request: Request, cid: str) -> dict[str, Any]:
    layers: LayerDescriptions = request.app.state.layers
    t = tenant(request)
    layer = layers.kept(t, cid) or await run_in_threadpool(layers.read, t, cid)
    if layer is None:
        raise ResourceNotFound(f"No collection {cid!r}")
    return layer


def _collection(layer: dict[str, Any], base: str) -> dict[str, Any]:
    cid = layer["name"]
    url = f"{base}/collections/{quote(cid)}"
    out: dict[str, Any] = {
        "id": cid, "title": layer.get("title", cid), "itemType": "feature",
        "description": f"{layer.get('featureCount', 0)} {layer.get('featureType')} "
                       f"from {layer.get('sourceFile')} ({layer.get('sourceCrs')})",
        "crs": [CRS84], "storageCrs": CRS84,
        "links": [
            {"href": url, "rel": "self", "type": "application/json", "title": "This collection"},
            {"href": f"{url}?f=html", "rel": "alternate", "type": "text/html", "title": "HTML"},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "Features"},
            {"href": f"{url}/items?f=html", "rel": "items", "type": "text/html",
             "title": "Features (HTML)"},
            {"href": f"{url}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/"
             "queryables", "type": "application/schema+json", "title": "Queryables"}],
    }
    box = layer.get("location")
    if isinstance(box, dict) and box.get("type") == "Polygon":
        ring = box["coordinates"][0]
        out["extent"] = {"spatial": {"bbox": [[ring[0][0], ring[0][1], ring[2][0],
                                               ring[2][1]]], "crs": CRS84}}
    period = layer.get("temporalExtent")
    if isinstance(period, list) and len(period) == 2:
        out.setdefault("extent", {})["temporal"] = {
            "interval": [period], "trs": "http://www.opengis.net/def/uri/ISO-8601/0/Gregorian"}
    return out


def _queryables(layer: dict[str, Any]) -> set[str]:
    return {f["name"] for f in layer.get("fields", []) if isinstance(f, dict)}


# -- endpoints --------------------------------------------------------------------------------

@router.get("", summary="Landing page")
async def landing(request: Request) -> Response:
    base = _base(request)
    body: dict[str, Any] = {"title": "dothi — OGC API - Features",
            "description": "Lớp dữ liệu không gian đô thị / The city's GIS layers",
            "links": [
                {"href": base, "rel": "self", "type": "application/json", "title": "This page"},
                {"href": f"{base}?f=html", "rel": "alternate", "type": "text/html",
                 "title": "HTML"},
                {"href": str(request.base_url) + "openapi.json", "rel": "service-desc",
                 "type": "application/vnd.oai.openapi+json;version=3.0", "title": "OpenAPI"},
                {"href": str(request.base_url) + "docs", "rel": "service-doc",
                 "type": "text/html", "title": "API documentation"},
                {"href": f"{base}/conformance", "rel": "conformance",
                 "type": "application/json", "title": "Conformance"},
                {"href": f"{base}/collections", "rel": "data", "type": "application/json",
                 "title": "Collections"}]}
    if _wants_html(request):
        return _page(body["title"], _links_html(body["links"]))
    return _json(body)


@router.get("/conformance", summary="Conformance classes")
async def conformance(request: Request) -> Response:
    if _wants_html(request):
        return _page("Conformance", "<ul>" + "".join(
            f"<li>{html.escape(c)}</li>" for c in CONFORMANCE) + "</ul>")
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", summary="The layers")
async def collections(request: Request) -> Response:
    base = _base(request)
    layers = await run_in_threadpool(_layers, request)
    body: dict[str, Any] = {"links": [{"href": f"{base}/collections", "rel": "self",
                       "type": "application/json", "title": "This page"}],
            "collections": [_collection(la, base) for la in layers], "crs": [CRS84]}
    if _wants_html(request):
        rows = "".join(
            f"<tr><td><a href='{html.escape(c['id'])}?f=html'>{html.escape(c['id'])}</a></td>"
            f"<td>{html.escape(str(c['title']))}</td><td>{html.escape(c['description'])}"
            "</td></tr>" for c in body["collections"])
        return _page("Collections", "<table><tr><th>id</th><th>title</th><th></th></tr>"
                     f"{rows}</table>")
    return _json(body)


@router.get("/collections/{cid}", summary="One layer")
async def collection(request: Request, cid: str) -> Response:
    layer = await _layer(request, cid)
    body = _collection(layer, _base(request))
    if _wants_html(request):
        return _page(str(body["title"]), f"<p>{html.escape(body['description'])}</p>"
                     + _links_html(body["links"]))
    return _json(body)


@router.get("/collections/{cid}/queryables", summary="The layer's queryable properties")
async def queryables(request: Request, cid: str) -> Response:
    layer = await _layer(request, cid)
    props: dict[str, Any] = {"geometry": {"$ref": "https://geojson.org/schema/Geometry.json"}}
    for f in layer.get("fields", []):
        props[f["name"]] = {"title": f.get("source", f["name"])}
    return _json({"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"{_base(request)}/collections/{quote(cid)}/queryables",
                  "type": "object", "title": layer.get("title", cid), "properties": props},
                 "application/schema+json")


@router.get("/collections/{cid}/items", summary="Features, by bbox, properties and CQL2")
async def items(request: Request, cid: str) -> Response:
    params = request.query_params
    layer = await _layer(request, cid)
    names = _queryables(layer)
    limit = _bounded(int_param(params.get("limit"), "limit", DEFAULT_LIMIT), "limit",
                     MAX_LIMIT)
    offset = int_param(params.get("offset"), "offset", 0)
    terms: list[QExpr] = []
    geo = None
    if params.get("bbox") is not None:
        crs = params.get("bbox-crs")
        if crs not in (None, CRS84):
            raise BadRequestData(f"bbox-crs {crs!r}: only {CRS84}")
        geo = _geo("intersects", _bbox(params["bbox"]))
    if params.get("datetime") is not None:
        field = layer.get("temporalField")
        if not isinstance(field, str):
            raise BadRequestData("datetime: this collection's features have no temporal "
                                 "property (dothi import --datetime FIELD gives them one)")
        terms.extend(_datetime_terms(field, params["datetime"]))
    for name, value in params.items():
        if name in ITEM_PARAMS:
            continue
        if name not in names:
            raise BadRequestData(f"unknown parameter {name!r}; queryables: "
                                 f"{', '.join(sorted(names)) or 'none'}")
        terms.append(Term(AttrPath((name,)), "==", _value_literal(value)))
    if params.get("filter") is not None:
        if params.get("filter-crs") not in (None, CRS84):
            raise BadRequestData(f"filter-crs: only {CRS84}")
        try:
            translated = cql.translate(cql.parse(params["filter"], params.get("filter-lang")),
                                       names)
        except ValueError as exc:
            raise BadRequestData(f"filter: {exc}") from None
        if translated.q is not None:
            terms.append(translated.q)
        if translated.georel is not None:
            if geo is not None:
                raise BadRequestData("bbox and a spatial filter together are not supported: "
                                     "put the box in the filter (S_INTERSECTS(geometry, "
                                     "BBOX(...)) AND ...)")
            assert translated.geometry is not None
            geo = _geo(translated.georel, translated.geometry)
    b = broker(request)
    ctx = b.resolver.core
    # The layer last: every candidate of the index passes it, so SQLite, which checks an
    # AND's terms in order, checks it only on what the client's terms left.
    terms.append(Term(AttrPath(("refGisLayer",)), "==", Literal(STRING, layer_id(cid))))
    q = qlang.join(qlang.And, terms)
    query = EntityQuery(selectors=[Selector(types=parse_type_expr(
        str(layer.get("featureType", "GisFeature")), ctx.expand))], q=q, geo=geo,
        geo_attr=ctx.expand("location"), expand=ctx.expand, limit=limit, offset=offset)
    docs, matched = await run_in_threadpool(_page_and_count, b, tenant(request), query)
    features = [_feature(render_entity(d, ctx, KEY_VALUES), cid) for d in docs]
    url = f"{_base(request)}/collections/{quote(cid)}/items"
    kept = {k: v for k, v in params.items() if k not in ("offset", "f")}
    links = [{"href": f"{url}?{urlencode({**kept, 'offset': offset})}", "rel": "self",
              "type": GEOJSON, "title": "This page"},
             {"href": f"{url}?{urlencode({**kept, 'offset': offset, 'f': 'html'})}",
              "rel": "alternate", "type": "text/html", "title": "HTML"},
             {"href": f"{_base(request)}/collections/{quote(cid)}", "rel": "collection",
              "type": "application/json", "title": "The collection"}]
    if offset + len(features) < (matched or 0):
        links.append({"href": f"{url}?{urlencode({**kept, 'offset': offset + limit})}",
                      "rel": "next", "type": GEOJSON, "title": "Next page"})
    if offset > 0:
        links.append({"href": f"{url}?{urlencode({**kept, 'offset': max(0, offset - limit)})}",
                      "rel": "prev", "type": GEOJSON, "title": "Previous page"})
    body = {"type": "FeatureCollection", "features": features,
            "numberMatched": matched, "numberReturned": len(features),
            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace(
                "+00:00", "Z"), "links": links}
    if _wants_html(request):
        return _map_page(str(layer.get("title", cid)), body)
    return _json(body, GEOJSON)


@router.get("/collections/{cid}/items/{fid}", summary="One feature")
async def item(request: Request, cid: str, fid: str) -> Response:
    layer = await _layer(request, cid)
    b = broker(request)
    eid = f"urn:ngsi-ld:{layer.get('featureType', 'GisFeature')}:{cid}:{fid}"
    doc = await run_in_threadpool(b.store.get, tenant(request), eid)
    if doc is None or not auth.current().readable(doc):
        raise ResourceNotFound(f"No feature {fid!r} in {cid!r}")
    feature = _feature(render_entity(doc, b.resolver.core, KEY_VALUES), cid)
    url = f"{_base(request)}/collections/{quote(cid)}"
    feature["links"] = [
        {"href": f"{url}/items/{quote(fid)}", "rel": "self", "type": GEOJSON},
        {"href": url, "rel": "collection", "type": "application/json"}]
    if _wants_html(request):
        return _map_page(fid, {"type": "FeatureCollection", "features": [feature]})
    return _json(feature, GEOJSON)


# -- helpers ----------------------------------------------------------------------------------

def _feature(entity: dict[str, Any], cid: str) -> dict[str, Any]:
    fid = entity["id"].split(f":{cid}:", 1)[-1]
    return {"type": "Feature", "id": fid, "geometry": entity.get("location"),
            "properties": {k: v for k, v in entity.items() if k not in NOT_PROPERTIES}}


def _page_and_count(b: Any, name: str, query: EntityQuery) -> tuple[list[dict], int]:
    """The page, and how many match in all. A page that is not full (and not past the
    end) already tells the total, so the count query runs only behind a full page."""
    docs = b.query(name, query).docs
    if docs and len(docs) < query.limit or not docs and query.offset == 0:
        return docs, query.offset + len(docs)
    counting = EntityQuery(selectors=query.selectors, q=query.q, geo=query.geo,
                           geo_attr=query.geo_attr, expand=query.expand, limit=0, count=True,
                           ids_only=True)
    total = b.query(name, counting).count
    return docs, int(total or 0)


def _geo(georel: str, geometry: dict[str, Any]) -> GeoQuery:
    """A geo-query on the features' location, the geometry checked as NGSI-LD's are."""
    try:
        found = parse_geoquery(georel, geometry.get("type"), geometry.get("coordinates"), None)
    except BadRequestData as exc:
        raise BadRequestData(f"geometry: {exc.detail}") from None
    assert found is not None
    return found


def _datetime_terms(field: str, text: str) -> list[QExpr]:
    """OGC API's datetime (an instant, a date, or an interval a/b with .. or nothing for an
    open end) as q terms on the layer's temporal field."""
    def instant(part: str, *, end: bool) -> str | None:
        part = part.strip()
        if part in ("", ".."):
            return None
        try:
            if len(part) == 10:  # a date: the whole day
                day = datetime.fromisoformat(part).replace(tzinfo=UTC)
                when = day + timedelta(days=1) - timedelta(milliseconds=1) if end else day
            else:
                when = datetime.fromisoformat(part.replace("Z", "+00:00"))
                if when.tzinfo is None:
                    raise ValueError("no time zone")
        except ValueError:
            raise BadRequestData(f"datetime {text!r}: RFC 3339 instants, dates or intervals "
                                 "(a/b, ../b, a/..)") from None
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    if "/" in text:
        start_text, _, end_text = text.partition("/")
    else:
        start_text = end_text = text
    start, end = instant(start_text, end=False), instant(end_text, end=True)
    if start is None and end is None:
        raise BadRequestData(f"datetime {text!r}: an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise BadRequestData(f"datetime {text!r}: the interval ends before it starts")
    path = AttrPath((field,))
    return [Term(path, op, Literal(DATETIME, when))
            for op, when in ((">=", start), ("<=", end)) if when is not None]


def _bounded(value: int, name: str, high: int) -> int:
    if not 1 <= value <= high:
        raise BadRequestData(f"{name} must be 1..{high}")
    return value


def _bbox(text: str) -> dict[str, Any]:
    try:
        numbers = [float(v) for v in text.split(",")]
    except ValueError:
        raise BadRequestData("bbox is minx,miny,maxx,maxy (numbers)") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or numbers[0] > numbers[2] or numbers[1] > numbers[3]:
        raise BadRequestData("bbox is minx,miny,maxx,maxy with min ≤ max")
    x0, y0, x1, y1 = numbers
    if x0 == x1 or y0 == y1:  # a degenerate box is still a place: widen it a hair
        x0, y0, x1, y1 = x0 - 1e-9, y0 - 1e-9, x1 + 1e-9, y1 + 1e-9
    return cql.box(x0, y0, x1, y1)


def _value_literal(text: str) -> Literal:
    """A property filter's value: a number as a number, anything else as a string."""
    for number in (int, float):
        try:
            value = number(text)
        except ValueError:
            continue
        if math.isfinite(value):
            return Literal(NUMBER, value)
    return Literal(STRING, text)


def _links_html(links: list[dict[str, Any]]) -> str:
    return "<ul>" + "".join(
        f"<li><a href='{html.escape(link['href'])}'>{html.escape(link.get('title', link['rel']))}"
        f"</a> ({html.escape(link['rel'])})</li>" for link in links) + "</ul>"


PAGE = """<!doctype html><html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
{head}<style>body{{font-family:system-ui,sans-serif;margin:1rem 2rem;color:#1d2733}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #dde3ea;padding:.3rem .5rem;
text-align:left;font-size:.9rem}}#map{{height:420px;margin:1rem 0;background:#e8eef3}}</style>
</head><body><p><a href="/ogc?f=html">OGC API - Features</a> ·
<a href="/ogc/collections?f=html">Collections</a></p><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, head: str = "") -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body, head=head))


def _map_page(title: str, collection: dict[str, Any]) -> HTMLResponse:
    features = collection["features"]
    keys = sorted({k for f in features for k in f["properties"]})
    rows = "".join("<tr><td>" + html.escape(str(f["id"])) + "</td>" + "".join(
        f"<td>{html.escape(str(f['properties'].get(k, '')))}</td>" for k in keys) + "</tr>"
        for f in features)
    head = ('<link rel="stylesheet" href="/-/static/vendor/maplibre-gl/maplibre-gl.css">'
            '<script src="/-/static/vendor/maplibre-gl/maplibre-gl.js"></script>')
    data = orjson.dumps({"type": "FeatureCollection", "features": features}).decode()
    script = """<div id="map"></div><script>
const data = %s;
if (typeof maplibregl !== 'undefined') {
  const map = new maplibregl.Map({container: 'map', style: {version: 8, sources: {f: {type:
    'geojson', data}}, layers: [{id: 'bg', type: 'background', paint: {'background-color':
    '#e8eef3'}}, {id: 'fill', type: 'fill', source: 'f', filter: ['==', ['geometry-type'],
    'Polygon'], paint: {'fill-color': '#0b63b6', 'fill-opacity': 0.3}}, {id: 'line', type:
    'line', source: 'f', paint: {'line-color': '#0b63b6'}}, {id: 'pt', type: 'circle',
    source: 'f', filter: ['==', ['geometry-type'], 'Point'], paint: {'circle-radius': 5,
    'circle-color': '#d7263d'}}]}, center: [108.2, 16.05], zoom: 10});
  const b = new maplibregl.LngLatBounds();
  const walk = c => typeof c[0] === 'number' ? b.extend(c) : c.forEach(walk);
  data.features.forEach(f => f.geometry && walk(f.geometry.coordinates));
  if (!b.isEmpty()) map.fitBounds(b, {padding: 30, duration: 0});
}
</script>""" % data.replace("</", "<\\/")
    counts = ""
    if "numberMatched" in collection:
        counts = (f"<p>{collection['numberReturned']} / {collection['numberMatched']}</p>"
                  + _links_html([link for link in collection["links"]
                                 if link["rel"] in ("next", "prev")]))
    table = ("<table><tr><th>id</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys)
             + f"</tr>{rows}</table>")
    return _page(title, script + counts + table, head)
