"""Indicators over HTTP (``/kpi``): a city's values by period as JSON, values officials
enter with their evidence, the database quality scores, and the report page that charts
them (``/kpi/report``)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import broker, json_object, json_response, official, tenant
from dothi.errors import BadRequestData
from dothi.kpi.catalogue import Catalogue
from dothi.kpi.compute import KPI, Computer, entity_id, period_bounds
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


@router.post("/values", status_code=201,
             summary="Enter an indicator's value with its evidence (officials)")
async def enter(request: Request) -> Response:
    """``{"city", "period", "code", "numerator", "denominator", "evidence", "note"}``: the
    value is computed at the indicator's scale, like raw values, and kept with the
    evidence (an http(s) link to the document) and the key that entered it."""
    number = official(request)
    body = await json_object(request)
    unknown = set(body) - {"city", "period", "code", "numerator", "denominator", "evidence",
                           "note"}
    if unknown:
        raise BadRequestData(f"Unknown members {sorted(unknown)}")
    city, period, evidence = body.get("city"), body.get("period"), body.get("evidence")
    if not isinstance(city, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", city):
        raise BadRequestData("city is a name of letters, digits, - and _")
    try:
        period_bounds(str(period))
    except ValueError as exc:
        raise BadRequestData(str(exc)) from None
    if not isinstance(evidence, str) or not evidence.startswith(("https://", "http://")):
        raise BadRequestData("evidence is an http(s) link to the document the value comes "
                             "from")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise BadRequestData("note is a text of at most 2,000 characters")
    row = {"city": city, "period": str(period), "code": str(body.get("code") or ""),
           "numerator": str(body.get("numerator") if body.get("numerator") is not None
                            else ""),
           "denominator": "" if body.get("denominator") is None else str(body["denominator"])}
    b, catalogue = broker(request), _catalogue(request)

    def work() -> dict[str, Any]:
        computer = Computer(b, catalogue, request.app.state.assessor)
        (result,) = computer.from_raw([row], f"entered with official key #{number}")
        if result.value is None:
            raise BadRequestData(f"{row['code']}: {result.missing}")
        result.source = f"entered with official key #{number}"
        result.measures["evidence"] = evidence
        if note:
            result.measures["note"] = note
        computer.store(tenant(request), [result])
        return {"id": entity_id(city, result.code, result.period), "value": result.value}

    return json_response(await run_in_threadpool(work), status=201)


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
