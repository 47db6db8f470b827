"""Indicators over HTTP (``/kpi``): a city's values by period as JSON, the database quality
scores, and the report page that charts them (``/kpi/report``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import broker, json_response, tenant
from dothi.errors import BadRequestData
from dothi.kpi.catalogue import Catalogue
from dothi.kpi.compute import KPI
from dothi.kpi.quality import ASSESSMENT
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

router = APIRouter(prefix="/kpi", tags=["Indicators"])
KEY_VALUES = RenderOptions(fmt="keyValues")


def _catalogue(request: Request) -> Catalogue:
    return request.app.state.kpi_catalogue  # type: ignore[no-any-return]


@router.get("/report", include_in_schema=False)
async def page() -> Response:
    return FileResponse(WEB / "static" / "kpi.html", media_type="text/html")


@router.get("/values", summary="A city's indicator values by period, with their provenance")
async def values(request: Request) -> Response:
    city = request.query_params.get("city")
    if not city or '"' in city or "\\" in city:
        raise BadRequestData("give city (as dothi kpi compute was given it)")
    b, catalogue = broker(request), _catalogue(request)
    ctx = b.resolver.core

    def work() -> dict[str, Any]:
        docs = query_all(b.store, tenant(request), EntityQuery(
            selectors=[Selector(types=parse_type_expr(KPI, ctx.expand))],
            q=parse_q(f'city=="{city}"'), expand=ctx.expand, limit=1000))
        by_code: dict[str, dict[str, Any]] = defaultdict(dict)
        periods: set[str] = set()
        for doc in docs:
            item = render_entity(doc, ctx, KEY_VALUES)
            by_code[item["kpiCode"]][item["period"]] = {
                "value": item["kpiValue"], "provenance": item.get("provenance"),
                "formula": item.get("calculationFormula")}
            periods.add(item["period"])
        codes = sorted(set(by_code) | set(catalogue.methods))
        indicators = []
        for code in codes:
            indicator = catalogue.indicators.get(code)
            if indicator is None:
                continue
            indicators.append({"code": code, "name": indicator.name,
                               "catalogue": indicator.catalogue,
                               "dimension": indicator.dimension, "unit": indicator.unit,
                               "direction": indicator.direction, "core": indicator.core,
                               "method": code in catalogue.methods,
                               "values": by_code.get(code, {})})
        return {"city": city, "periods": sorted(periods), "indicators": indicators}

    return json_response(await run_in_threadpool(work))


@router.get("/quality", summary="The latest database quality scores, best first")
async def quality(request: Request) -> Response:
    b = broker(request)
    ctx = b.resolver.core

    def work() -> list[dict[str, Any]]:
        docs = query_all(b.store, tenant(request), EntityQuery(
            selectors=[Selector(types=parse_type_expr(ASSESSMENT, ctx.expand))],
            expand=ctx.expand, limit=1000))
        rows = [render_entity(d, ctx, KEY_VALUES) for d in docs]
        return sorted(rows, key=lambda r: -(r.get("score") or 0))

    return json_response(await run_in_threadpool(work))
