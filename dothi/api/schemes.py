"""Provincial smart-city schemes and plans (``/program/schemes``, ``dothi.program.schemes``):
a province's officials draft, consult, ask the coordination council, approve, publish and
review; anyone who may comment comments during the public consultation; anyone who may
read reads them, and lists what is overdue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    Router,
    bool_param,
    for_unit,
    json_object,
    json_response,
    on_behalf,
    tenant,
)
from dothi.program.schemes import Schemes

router = Router(prefix="/program/schemes", tags=["National programme"])
Step = Callable[..., dict[str, Any]]


def _schemes(request: Request) -> Schemes:
    return request.app.state.programme.schemes  # type: ignore[no-any-return]


async def _run(request: Request, unit: str, key: str, step: Step, by: str,
               status: int = 200) -> Response:
    body = await json_object(request)
    done = await run_in_threadpool(step, tenant(request), unit, key, body, by)
    return json_response(done, status=status)


@router.get("", summary="The schemes and plans; with due=true, those with something overdue")
async def schemes(request: Request, unit: str | None = None, status: str | None = None,
                  due: str | None = None) -> Response:
    on_behalf(request, "read", "read provincial schemes")
    desk, where = _schemes(request), tenant(request)
    if bool_param(due, "due"):
        return json_response(await run_in_threadpool(desk.due, where, unit, status))
    return json_response(await run_in_threadpool(desk.find, where, unit, status))


@router.get("/{unit}/{key}", summary="One scheme or plan, with its versions' log")
async def scheme(request: Request, unit: str, key: str) -> Response:
    on_behalf(request, "read", "read provincial schemes")
    return json_response(await run_in_threadpool(_schemes(request).get, tenant(request),
                                                 unit, key))


@router.put("/{unit}/{key}", summary="Create a draft or replace its content (a new version)",
            responses={201: {"description": "A new draft"}})
async def draft(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    body = await json_object(request)
    record, created = await run_in_threadpool(_schemes(request).put, tenant(request), unit,
                                              key, body, by)
    headers = {"Location": f"/program/schemes/{unit}/{key}"} if created else None
    return json_response(record, status=201 if created else 200, headers=headers)


@router.post("/{unit}/{key}/consultation", summary="Open the draft for public consultation")
async def consultation(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).consult, by)


@router.post("/{unit}/{key}/comments", status_code=201,
             summary="Comment on a draft open for public consultation")
async def comment(request: Request, unit: str, key: str) -> Response:
    by = on_behalf(request, "comment", "comment on a scheme").principal.subject
    return await _run(request, unit, key, _schemes(request).comment, by, 201)


@router.post("/{unit}/{key}/council", summary="Ask the coordination council's opinions")
async def council(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).to_council, by)


@router.post("/{unit}/{key}/opinions", status_code=201,
             summary="Record a council member's opinion")
async def opinion(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).opinion, by, 201)


@router.post("/{unit}/{key}/revise", summary="Back to draft, as a new version")
async def revise(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).revise, by)


@router.post("/{unit}/{key}/approve", summary="Record the approval decision")
async def approve(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).approve, by)


@router.post("/{unit}/{key}/publish",
             summary="Publish the approved scheme and create its tasks")
async def publish(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).publish, by)


@router.post("/{unit}/{key}/reviews", status_code=201,
             summary="Record a periodic review of a published scheme")
async def review(request: Request, unit: str, key: str) -> Response:
    by = for_unit(request, unit)
    return await _run(request, unit, key, _schemes(request).review, by, 201)
