"""The operations-centre dashboard (``/ioc/dashboard``): the page, its map layers as
GeoJSON, and the live feed (server-sent events) that keeps it current without reloading.

The page draws with MapLibre GL, installed from npm at build time (``make install``) and
served from ``/-/static/vendor/maplibre-gl``; there are no basemap tiles, so the map is
the platform's own layers: administrative areas, sensors and incidents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from dothi.api.http import GEOJSON, Router, broker, json_response, require, tenant, tenant_named
from dothi.auth import access as auth
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector
from dothi.web.live import Differ

router = Router(prefix="/ioc", tags=["Operations centre"])
GEOJSON_OK: dict[int | str, dict[str, Any]] = {200: {"content": {GEOJSON: {}}}}
WEB = Path(str(resources.files("dothi.web")))
MAPLIBRE = WEB / "node_modules" / "maplibre-gl" / "dist"


def mount_assets(app: FastAPI) -> None:
    app.mount("/-/static/web", StaticFiles(directory=WEB / "static"), name="web-assets")
    if MAPLIBRE.is_dir():
        app.mount("/-/static/vendor/maplibre-gl", StaticFiles(directory=MAPLIBRE),
                  name="maplibre-gl")


@router.get("/dashboard", include_in_schema=False)
async def page(request: Request) -> Response:
    """The operators' page; whoever may not read incidents signs in first."""
    if not auth.current().may("read-internal"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/auth/login?next=" + quote(here, safe="/"), 303)
    return FileResponse(WEB / "static" / "dashboard.html", media_type="text/html")


@router.get("/layers", summary="The dashboard's sensor layers: type, domain, headline, chart")
async def layers(request: Request) -> Response:
    require(request, "read", "read the map's layers")
    snapshots = request.app.state.ioc.snapshots
    return json_response({
        "maplibre": MAPLIBRE.is_dir(),
        "layers": [{"type": la.type, "category": la.category, "headline": la.headline,
                    "unit": la.unit, "chart": list(la.chart)}
                   for la in snapshots.layers.values()]})


@router.get("/map/areas", summary="Administrative areas as GeoJSON (the map's boundaries)",
            responses=GEOJSON_OK)
async def areas(request: Request) -> Response:
    require(request, "read", "read the map")
    b = broker(request)
    ctx = b.resolver.core
    desk = request.app.state.ioc.desk
    query = EntityQuery(selectors=[Selector(types=parse_type_expr("AdministrativeArea",
                                                                   ctx.expand))],
                        expand=ctx.expand, limit=10_000)
    docs, _ = await run_in_threadpool(b.store.query, tenant(request), query)
    features = []
    for doc in docs:
        geometry = desk.value(doc, "location")
        if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon",
                                                                           "MultiPolygon"):
            continue
        name = doc.get(ctx.expand("name")) or [{}]
        names = name[0].get("languageMap") or {"vi": desk.value(doc, "name")}
        features.append({"type": "Feature", "id": doc["id"], "geometry": geometry,
                         "properties": {"id": doc["id"], "name": _languages(names),
                                        "level": desk.value(doc, "administrativeLevel"),
                                        "population": desk.value(doc, "population")}})
    return Response(orjson.dumps({"type": "FeatureCollection", "features": features}),
                    media_type=GEOJSON)


def _languages(names: Any) -> dict[str, str]:
    """{"vi": ..., "en": ...} from a LanguageProperty's expanded map (a list of
    {"@language", "@value"}) or a plain map."""
    if isinstance(names, list):
        return {str(n.get("@language")): str(n.get("@value")) for n in names
                if isinstance(n, dict)}
    if isinstance(names, dict):
        return {str(k): str(v) for k, v in names.items()}
    return {}


@router.get("/map/sensors", summary="The map's sensors as GeoJSON, with their state",
            responses=GEOJSON_OK)
async def sensors(request: Request) -> Response:
    require(request, "read", "read the map")
    snapshot = await run_in_threadpool(request.app.state.ioc.snapshots.build, tenant(request))
    return Response(orjson.dumps({"type": "FeatureCollection",
                                  "features": snapshot["sensors"]}), media_type=GEOJSON)


@router.get("/stream", summary="Live dashboard feed (server-sent events)",
            response_class=StreamingResponse)
async def stream(request: Request) -> StreamingResponse:
    """Events ``sensors`` and ``incidents`` ({changed, removed}) and ``summary`` (the
    tiles); the first of each holds everything, later ones only what changed. Browsers'
    EventSource cannot send headers: the tenant may be given as ``?tenant=``."""
    name = tenant_named(request.query_params["tenant"]) \
        if "tenant" in request.query_params else tenant(request)
    access = auth.current()
    access.need("read-internal", "follow the operations centre", name)
    hub = request.app.state.ioc.live

    async def events() -> AsyncIterator[bytes]:
        differ = Differ()
        yield b"retry: 3000\n\n"
        async for snapshot in hub.follow(name):
            if snapshot is not None and not access.unlimited:
                # An agency's or a ward's officer follows its own incidents only.
                snapshot = {**snapshot, "incidents": [
                    i for i in snapshot.get("incidents", []) if access.sees_view(i)]}
            if snapshot is None:
                yield b": still here\n\n"
                continue
            for kind, data in differ.events(snapshot):
                yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache",
                                      "X-Accel-Buffering": "no"})

