"""The national programme over HTTP (``/program``): tasks and their progress, action
plans, report requests and the reporting calendar, the units' reports and their review,
the consolidated national report (JSON and DOCX), the check that flags what is late, the
weekly digest, and the national dashboard's page and overview."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import (
    Router,
    for_unit,
    json_object,
    json_response,
    official,
    on_behalf,
    tenant,
)
from dothi.errors import BadRequestData, only_members
from dothi.program.consolidation import consolidate, national_docx
from dothi.program.desk import Programme
from dothi.program.fields import parse_date
from dothi.program.reports import check_key
from dothi.program.tasks import FLAGS, check_task, check_unit, today
from dothi.program.units import provinces

router = Router(prefix="/program", tags=["National programme"])
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
READ = "read the national programme"


def _desk(request: Request) -> Programme:
    return request.app.state.programme  # type: ignore[no-any-return]


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang", "vi")
    if lang not in ("vi", "en"):
        raise BadRequestData('lang is "vi" or "en"')
    return lang


def _on(request: Request) -> date | None:
    """The day to see the programme as of (``?on=YYYY-MM-DD``): what was overdue then."""
    on = request.query_params.get("on")
    return parse_date(on, "on") if on else None


@router.get("/dashboard", include_in_schema=False)
async def page() -> Response:
    return FileResponse(WEB / "static" / "programme.html", media_type="text/html")


@router.get("/report", include_in_schema=False)
async def report_page() -> Response:
    """A unit's report form (?request=, ?unit=): writing, submitting and reviewing it."""
    return FileResponse(WEB / "static" / "programme-report.html", media_type="text/html")


# -- tasks ----------------------------------------------------------------------------


@router.get("/tasks", summary="The programme's tasks, with their flags (unit, parent, flag)")
async def tasks(request: Request) -> Response:
    on_behalf(request, "read", READ)
    unit, parent = request.query_params.get("unit"), request.query_params.get("parent")
    wanted = request.query_params.get("flag")
    if wanted is not None and wanted not in FLAGS:
        raise BadRequestData(f"flag is one of {', '.join(FLAGS)}")
    found = await run_in_threadpool(_desk(request).tasks.find, tenant(request), unit, parent)
    return json_response([t for t in found if wanted is None or t.get("flag") == wanted])


@router.get("/tasks/{code}", summary="One task")
async def task(request: Request, code: str) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(_desk(request).tasks.get, tenant(request),
                                                 code))


@router.put("/tasks/{code}", summary="Create or restate a task, with its 6 rõ (coordinators)")
async def put_task(request: Request, code: str) -> Response:
    official(request, "coordinate")
    body = await json_object(request)
    record = check_task({**body, "code": code})
    return json_response(await run_in_threadpool(
        _desk(request).tasks.put, tenant(request), record, None, True))


@router.post("/tasks/{code}/progress",
             summary="Report a task's progress, status and evidence (its unit)")
async def progress(request: Request, code: str) -> Response:
    """``{"progress": 60, "status": "inProgress", "evidence": "https://…", "note": "…"}``;
    a task is done with evidence."""
    desk = _desk(request)
    found = await run_in_threadpool(desk.tasks.get, tenant(request), code)
    who = for_unit(request, found["unit"])
    body = await json_object(request)
    only_members(body, {"progress", "status", "evidence", "note"})
    return json_response(await run_in_threadpool(
        desk.tasks.progress, tenant(request), code, body, who))


# -- action plans ---------------------------------------------------------------------


@router.get("/plans", summary="The units' action plans")
async def plans(request: Request) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(_desk(request).plans.find, tenant(request)))


@router.get("/plans/{unit}/{period}", summary="A unit's action plan for a period")
async def plan(request: Request, unit: str, period: str) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(
        _desk(request).plans.get, tenant(request), unit, period))


@router.put("/plans/{unit}/{period}", summary="Submit a unit's action plan (its unit)")
async def put_plan(request: Request, unit: str, period: str) -> Response:
    """``{"title": "…", "items": [{"code", "refParent": national task id, "name",
    "description", "deadline", "responsiblePerson", "responsibility", "authority",
    "expectedProduct", "leadAgency", …}]}``: each item becomes a task of the unit."""
    who = for_unit(request, check_unit(unit))
    body = await json_object(request)
    only_members(body, {"title", "items"})
    return json_response(await run_in_threadpool(
        _desk(request).plans.submit, tenant(request), unit, period, body, who))


# -- report requests and the calendar -------------------------------------------------


@router.get("/templates", summary="The report templates")
async def templates(request: Request) -> Response:
    on_behalf(request, "read", READ)
    return json_response([t.describe() for t in _desk(request).reporting.templates.values()])


@router.get("/requests", summary="The report requests, soonest due first")
async def requests(request: Request) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(
        _desk(request).reporting.all_requests, tenant(request)))


@router.post("/requests", status_code=201, summary="Ask units for a report (coordinators)")
async def issue(request: Request) -> Response:
    """``{"key", "title", "template", "period", "dueDate", "units", "kind"}``; units
    default to the 34 provinces."""
    who = official(request, "coordinate")
    body = await json_object(request)
    only_members(body, {"key", "title", "template", "period", "dueDate", "units", "kind"})
    return json_response(await run_in_threadpool(
        _desk(request).reporting.issue, tenant(request), body, who), status=201)


@router.post("/calendar/{year}", status_code=201,
             summary="Issue the annual report request of a year (coordinators)")
async def calendar(request: Request, year: int) -> Response:
    """``{"units": [...], "template": "annual"}``, both optional."""
    who = official(request, "coordinate")
    body = await json_object(request) if await request.body() else {}
    only_members(body, {"units", "template"})
    if not 2000 <= year <= 2100:
        raise BadRequestData("year is between 2000 and 2100")
    return json_response(await run_in_threadpool(
        _desk(request).reporting.calendar, tenant(request), year, body.get("units"), who,
        body.get("template", "annual")), status=201)


@router.get("/requests/{key}", summary="A report request, with its template's sections")
async def one_request(request: Request, key: str) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(
        _desk(request).reporting.request, tenant(request), key))


@router.get("/requests/{key}/status", summary="Where each unit asked stands")
async def status(request: Request, key: str) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(
        _desk(request).reporting.status, tenant(request), key, _on(request)))


@router.get("/requests/{key}/national", summary="The consolidated national report")
async def national(request: Request, key: str) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(
        consolidate, _desk(request).reporting, tenant(request), key, _on(request)))


@router.get("/requests/{key}/national.docx",
            summary="The consolidated national report as a DOCX document")
async def national_document(request: Request, key: str) -> Response:
    on_behalf(request, "read", READ)
    lang, on = _lang(request), _on(request)

    def work() -> bytes:
        return national_docx(consolidate(_desk(request).reporting, tenant(request), key, on),
                             lang)

    return Response(await run_in_threadpool(work), media_type=DOCX, headers={
        "Content-Disposition": f'attachment; filename="dothi-{check_key(key)}-{lang}.docx"'})


# -- a unit's report ------------------------------------------------------------------


@router.get("/reports/{key}/{unit}", summary="A unit's report for a request")
async def report(request: Request, key: str, unit: str) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(
        _desk(request).reporting.report, tenant(request), key, unit))


@router.put("/reports/{key}/{unit}", summary="Write a unit's draft report (its unit)")
async def draft(request: Request, key: str, unit: str) -> Response:
    """``{"sections": {key: text}, "indicators": {code: value}}``; what is not given is
    kept."""
    who = for_unit(request, check_unit(unit))
    body = await json_object(request)
    only_members(body, {"sections", "indicators"})
    return json_response(await run_in_threadpool(
        _desk(request).reporting.draft, tenant(request), key, unit, body, who))


@router.post("/reports/{key}/{unit}/submit", summary="Submit a unit's report (its unit)")
async def submit(request: Request, key: str, unit: str) -> Response:
    who = for_unit(request, check_unit(unit))
    return json_response(await run_in_threadpool(
        _desk(request).reporting.submit, tenant(request), key, unit, who))


@router.post("/reports/{key}/{unit}/review",
             summary="Accept a unit's report or return it for correction (coordinators)")
async def review(request: Request, key: str, unit: str) -> Response:
    """``{"decision": "accept" | "return", "comments": "…"}``."""
    who = official(request, "coordinate")
    body = await json_object(request)
    only_members(body, {"decision", "comments"})
    return json_response(await run_in_threadpool(
        _desk(request).reporting.review, tenant(request), key, unit, body.get("decision"),
        body.get("comments"), who))


# -- the check, the digest and the dashboard's overview -------------------------------


@router.post("/check", summary="Flag overdue and at-risk tasks and overdue reports now "
             "(coordinators)")
async def check(request: Request) -> Response:
    official(request, "coordinate")
    return json_response(await run_in_threadpool(_desk(request).check, tenant(request)))


@router.get("/digest", summary="The weekly digest as it would be written today (or ?on=)")
async def digest(request: Request) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(_desk(request).digest, tenant(request),
                                                 _on(request)))


@router.get("/overview", summary="Each province's report status (?request=, ?on=), tasks "
            "and level: the national dashboard's map")
async def overview(request: Request) -> Response:
    on_behalf(request, "read", READ)
    key = request.query_params.get("request")
    desk, on = _desk(request), _on(request)
    assessments = request.app.state.self_assessment

    def work() -> dict[str, Any]:
        t = tenant(request)
        chosen = desk.reporting.request(t, key) if key else None
        rows = {r["unit"]: r for r in desk.reporting.rows(
            chosen, desk.reporting.reports_of(t, chosen["key"]), on)} if chosen else {}
        tasks = desk.tasks.find(t)
        levels = {a["city"]: a for a in assessments.cities(t, chosen["period"])} \
            if chosen else {}
        units = []
        for code, province in sorted(provinces().items()):
            own = [x for x in tasks if x["unit"] == code and x.get("status") != "cancelled"]
            assessment = levels.get(code)
            units.append({
                **province, "report": rows.get(code),
                "tasks": {"count": len(own),
                          "done": sum(1 for x in own if x.get("status") == "done"),
                          "overdue": sum(1 for x in own if x.get("flag") == "overdue"),
                          "atRisk": sum(1 for x in own if x.get("flag") == "atRisk"),
                          "progress": sum(float(x.get("progress") or 0) for x in own)
                          / len(own) if own else None},
                "level": None if assessment is None else {
                    "level": assessment["level"], "name": assessment["levelName"],
                    "status": assessment["status"]}})
        return {"on": (on or today()).isoformat(), "request": chosen, "units": units,
                "overdueTasks": [x for x in tasks if x.get("flag") == "overdue"],
                "requests": desk.reporting.all_requests(t)}

    return json_response(await run_in_threadpool(work))
