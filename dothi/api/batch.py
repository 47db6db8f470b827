"""Batch operations (clause 6.14–6.19, 6.23): per-entity success and error lists."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.entities import query_response
from dothi.api.http import (
    JSONLD,
    Router,
    accepted,
    broker,
    forward_of,
    json_response,
    media_type,
    read_body,
    tenant,
)
from dothi.api.query import from_body
from dothi.broker.broker import BatchResult
from dothi.errors import BadRequestData, TooLarge

router = Router(prefix="/ngsi-ld/v1/entityOperations", tags=["Batch operations"])


def _result(result: BatchResult, ok_status: int, ok_body: Any = None) -> Response:
    if not result.errors:
        if ok_body is None:
            return Response(status_code=ok_status)
        return json_response(ok_body, status=ok_status)
    body = {
        "success": result.success,
        "errors": [
            {"entityId": eid, "error": err.to_problem()} for eid, err in result.errors
        ],
    }
    return json_response(body, status=207)


async def _run(request: Request, op: str, options: str = "") -> BatchResult:
    body, ctx, _ = await read_body(request)
    b = broker(request)
    if not isinstance(body, list):
        raise BadRequestData("A batch operation takes a JSON array")
    if len(body) > request.app.state.settings.batch_max_entities:
        raise TooLarge(
            f"A batch may hold at most {request.app.state.settings.batch_max_entities} entities"
        )
    ld = media_type(request) == JSONLD

    def ctx_for(item: Any) -> Any:
        if not ld:
            if isinstance(item, dict) and "@context" in item:
                raise BadRequestData("@context in a body needs Content-Type application/ld+json")
            return ctx
        if not isinstance(item, dict) or "@context" not in item:
            raise BadRequestData("Each entity of an application/ld+json batch needs an @context")
        return b.resolver.active(item["@context"])

    return await run_in_threadpool(b.batch, tenant(request), op, body, ctx_for, options,
                                   forward_of(request))


@router.post("/create", summary="Batch entity creation")
async def batch_create(request: Request) -> Response:
    result = await _run(request, "create")
    return _result(result, 201, result.success)


@router.post("/upsert", summary="Batch entity upsert")
async def batch_upsert(request: Request, options: str | None = None) -> Response:
    if options not in (None, "replace", "update"):
        raise BadRequestData("options must be replace or update")
    result = await _run(request, "upsert", options or "replace")
    if result.created:
        return _result(result, 201, result.created)
    return _result(result, 204)


@router.post("/update", summary="Batch entity update")
async def batch_update(request: Request, options: str | None = None) -> Response:
    if options not in (None, "noOverwrite"):
        raise BadRequestData("options must be noOverwrite")
    return _result(await _run(request, "update", options or ""), 204)


@router.post("/delete", summary="Batch entity delete")
async def batch_delete(request: Request) -> Response:
    return _result(await _run(request, "delete"), 204)


@router.post("/merge", summary="Batch entity merge")
async def batch_merge(request: Request) -> Response:
    return _result(await _run(request, "merge"), 204)


@router.post("/query", summary="Query entities via POST")
async def batch_query(
    request: Request, limit: str | None = None, offset: str | None = None, count: str | None = None,
    options: str | None = None, format: str | None = None,  # noqa: A002
) -> Response:
    body, ctx, ctx_value = await read_body(request)
    mtype = accepted(request)
    parsed = from_body(body, ctx, request.app.state.settings, request.query_params)
    forward = forward_of(request)
    forward.body = await request.body()
    return await query_response(request, parsed, ctx, ctx_value, mtype, forward)
