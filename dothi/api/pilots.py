"""Calls for smart-city pilots over HTTP (``/program/pilots``): the national programme's
coordinators open a call with its criteria, budget and candidate wards, read the ranking
and record the decision (``dothi.program.pilots``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import Router, json_object, json_response, official, on_behalf, tenant
from dothi.program.pilots import Pilots

router = Router(prefix="/program/pilots", tags=["National programme"])
READ = "read the national programme"


def _pilots(request: Request) -> Pilots:
    return request.app.state.programme.pilots  # type: ignore[no-any-return]


@router.get("", summary="The calls for smart-city pilots: id, title, period, status")
async def calls(request: Request) -> Response:
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(_pilots(request).calls, tenant(request)))


@router.get("/{key}", summary="A call for pilots with its candidates ranked")
async def call(request: Request, key: str) -> Response:
    """Open calls are ranked on the indicator values stored now; a decided call shows the
    ranking its decision was taken on (``ranking.frozen``)."""
    on_behalf(request, "read", READ)
    return json_response(await run_in_threadpool(_pilots(request).get, tenant(request), key))


@router.put("/{key}", summary="Open a call for pilots, or replace an open one (coordinators)",
            responses={201: {"description": "A new call"}})
async def put(request: Request, key: str) -> Response:
    """``{"title": {"vi", "en"}, "period", "budget", "criteria": [{"kpi", "weight",
    "direction"}], "readinessWeight", "candidates": [{"area", "readiness", "cost",
    "note"}]}``; 201 when opened, 200 when replaced, 409 once decided."""
    who = official(request, "coordinate")
    body = await json_object(request)
    view, created = await run_in_threadpool(_pilots(request).put, tenant(request), key,
                                            body, who)
    headers = {"Location": f"/program/pilots/{key}"} if created else None
    return json_response(view, status=201 if created else 200, headers=headers)


@router.post("/{key}/decision", status_code=201,
             summary="Record the decision on a call for pilots (coordinators)")
async def decide(request: Request, key: str) -> Response:
    """``{"selected": [area, ...], "decisionNumber", "date", "note"}``; the note is
    required when an area the budget pass did not fund is selected."""
    who = official(request, "coordinate")
    body = await json_object(request)
    return json_response(await run_in_threadpool(_pilots(request).decide, tenant(request),
                                                 key, body, who), status=201)
