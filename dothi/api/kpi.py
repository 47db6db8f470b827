"""Indicators over HTTP (``/kpi``): a city's values by period as JSON, values officials
enter with their evidence, the database quality scores, and the report page that charts
them (``/kpi/report``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import (
    Router,
    assessor,
    broker,
    json_object,
    json_response,
    official,
    on_behalf,
    tenant,
)
from dothi.errors import BadRequestData, only_members
from dothi.kpi.catalogue import Catalogue
from dothi.kpi.compute import Computer, city_values, entity_id
from dothi.kpi.export import city_workbook
from dothi.kpi.quality import ASSESSMENT
from dothi.kpi.ranking import rank
from dothi.kpi.selfassess import SelfAssessment, check_city_period
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

router = Router(prefix="/kpi", tags=["Indicators"])
KEY_VALUES = RenderOptions(fmt="keyValues")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _catalogue(request: Request) -> Catalogue:
    return request.app.state.kpi_catalogue  # type: ignore[no-any-return]


@router.get("/report", include_in_schema=False)
async def page() -> Response:
    return FileResponse(WEB / "static" / "kpi.html", media_type="text/html")


@router.get("/values", summary="A city's indicator values by period, with their provenance")
async def values(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    city = request.query_params.get("city")
    if not city or '"' in city or "\\" in city:
        raise BadRequestData("give city (as dothi kpi compute was given it)")
    catalogue = _catalogue(request)
    targets = request.app.state.self_assessment.framework.targets()

    def work() -> dict[str, Any]:
        by_code = city_values(broker(request), tenant(request), city)
        periods = {p for values in by_code.values() for p in values}
        codes = sorted(set(by_code) | set(catalogue.methods) | set(targets))
        indicators = []
        for code in codes:
            indicator = catalogue.indicators.get(code)
            if indicator is None:
                continue
            indicators.append({"code": code, "name": indicator.name,
                               "nameVi": indicator.name_vi or None,
                               "catalogue": indicator.catalogue,
                               "dimension": indicator.dimension, "unit": indicator.unit,
                               "direction": indicator.direction, "core": indicator.core,
                               "method": code in catalogue.methods,
                               "target": targets.get(code),
                               "values": by_code.get(code, {})})
        return {"city": city, "periods": sorted(periods), "indicators": indicators}

    return json_response(await run_in_threadpool(work))


@router.post("/values", status_code=201,
             summary="Enter an indicator's value with its evidence (officials)")
async def enter(request: Request) -> Response:
    """``{"city", "period", "code", "numerator", "denominator", "evidence", "note"}``: the
    value is computed at the indicator's scale, like raw values, and kept with the
    evidence (an http(s) link to the document) and the key that entered it."""
    who = official(request)
    body = await json_object(request)
    only_members(body, {"city", "period", "code", "numerator", "denominator", "evidence",
                        "note"})
    city, period = check_city_period(body.get("city"), body.get("period"))
    evidence = body.get("evidence")
    if not isinstance(evidence, str) or not evidence.startswith(("https://", "http://")):
        raise BadRequestData("evidence is an http(s) link to the document the value comes "
                             "from")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise BadRequestData("note is a text of at most 2,000 characters")
    row = {"city": city, "period": period, "code": str(body.get("code") or ""),
           "numerator": str(body.get("numerator") if body.get("numerator") is not None
                            else ""),
           "denominator": "" if body.get("denominator") is None else str(body["denominator"])}
    b, catalogue = broker(request), _catalogue(request)

    def work() -> dict[str, Any]:
        computer = Computer(b, catalogue, request.app.state.assessor,
                            _desk(request).framework.targets())
        (result,) = computer.from_raw([row], f"entered by {who}")
        if result.value is None:
            raise BadRequestData(f"{row['code']}: {result.missing}")
        result.source = f"entered by {who}"
        result.measures["evidence"] = evidence
        if note:
            result.measures["note"] = note
        computer.store(tenant(request), [result])
        return {"id": entity_id(city, result.code, result.period), "value": result.value}

    return json_response(await run_in_threadpool(work), status=201)


@router.get("/quality", summary="The latest database quality scores, best first")
async def quality(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    b = broker(request)
    ctx = b.resolver.core

    def work() -> list[dict[str, Any]]:
        docs = query_all(b.store, tenant(request), EntityQuery(
            selectors=[Selector(types=parse_type_expr(ASSESSMENT, ctx.expand))],
            expand=ctx.expand, limit=1000))
        rows = [render_entity(d, ctx, KEY_VALUES) for d in docs]
        return sorted(rows, key=lambda r: -(r.get("score") or 0))

    return json_response(await run_in_threadpool(work))


# -- the self-assessment, its review, the ranking and the workbook ---------------------


def _desk(request: Request) -> SelfAssessment:
    return request.app.state.self_assessment  # type: ignore[no-any-return]


def _city_period(request: Request) -> tuple[str, str]:
    return check_city_period(request.query_params.get("city"),
                             request.query_params.get("period"))


@router.get("/framework", summary="The maturity framework: levels, dimensions, criteria")
async def framework(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    return json_response(_desk(request).framework.describe())


@router.get("/assessment", summary="A city's self-assessment of a period, as it stands")
async def assessment(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    city, period = _city_period(request)
    return json_response(await run_in_threadpool(
        _desk(request).get, tenant(request), city, period))


@router.put("/assessment/answers/{code}",
            summary="Declare a criterion met, with its evidence, or not (city officials)")
async def answer(request: Request, code: str) -> Response:
    """``{"met": true, "evidence": "https://…", "note": "…"}``; only while the assessment
    is a draft or has been returned."""
    who = official(request)
    city, period = _city_period(request)
    body = await json_object(request)
    only_members(body, {"met", "evidence", "note"})
    return json_response(await run_in_threadpool(
        _desk(request).answer, tenant(request), city, period, code, body.get("met"),
        body.get("evidence"), body.get("note"), who))


@router.post("/assessment/submit", summary="Submit the self-assessment (city officials)")
async def submit(request: Request) -> Response:
    who = official(request)
    city, period = _city_period(request)
    return json_response(await run_in_threadpool(
        _desk(request).submit, tenant(request), city, period, who))


@router.post("/assessment/review", summary="Accept or return a submitted self-assessment "
             "(assessors)")
async def review(request: Request) -> Response:
    """``{"decision": "accept" | "return", "comments": "…", "rejected": {code: reason}}``;
    a return needs comments or rejected criteria."""
    who = assessor(request)
    city, period = _city_period(request)
    body = await json_object(request)
    only_members(body, {"decision", "comments", "rejected"})
    return json_response(await run_in_threadpool(
        _desk(request).review, tenant(request), city, period, body.get("decision"),
        body.get("comments"), body.get("rejected"), who))


@router.get("/assessment/versions", summary="Every version of a self-assessment")
async def versions(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    city, period = _city_period(request)
    return json_response(await run_in_threadpool(
        _desk(request).versions, tenant(request), city, period))


@router.get("/assessment/trend", summary="A city's assessments over the periods")
async def trend(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    city, _ = check_city_period(request.query_params.get("city"), "2000")
    return json_response(await run_in_threadpool(
        _desk(request).trend, tenant(request), city))


@router.get("/ranking", summary="The cities' accepted assessments of a period, ranked")
async def ranking(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    _, period = check_city_period("all", request.query_params.get("period"))
    desk = _desk(request)
    found = await run_in_threadpool(desk.cities, tenant(request), period)
    return json_response(rank(desk.framework, found))


@router.get("/report.xlsx", summary="A city's assessment report as an XLSX workbook")
async def workbook_export(request: Request) -> Response:
    on_behalf(request, "read", "read the indicators")
    city, period = _city_period(request)
    lang = request.query_params.get("lang", "vi")
    if lang not in ("vi", "en"):
        raise BadRequestData('lang is "vi" or "en"')
    _, book = await run_in_threadpool(city_workbook, _desk(request), _catalogue(request),
                                      tenant(request), city, period, lang)
    return Response(book, media_type=XLSX, headers={
        "Content-Disposition": f'attachment; filename="dothi-{city}-{period.replace("/", "_")}'
                               f'-{lang}.xlsx"'})
