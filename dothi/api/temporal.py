"""The temporal API (clauses 6.18–6.22): /temporal/entities and its attributes and
instances, and POST /temporal/entityOperations/query."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.entities import page_headers, with_pagination_links
from dothi.api.http import (
    JSONLD,
    Router,
    accepted,
    bool_param,
    broker,
    json_response,
    read_body,
    request_context,
    tenant,
    with_context,
)
from dothi.api.query import ParsedQuery, from_body, from_params
from dothi.errors import BadRequestData
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.temporal import (
    TimeQuery,
    parse_time_query,
    render_aggregated,
    render_temporal,
)
from dothi.store.base import TemporalEntity

router = Router(prefix="/ngsi-ld/v1", tags=["Temporal"])


def _render(found: TemporalEntity, ctx: ActiveContext, tq: TimeQuery) -> dict[str, Any]:
    if tq.fmt == "aggregatedValues":
        return render_aggregated(found.id, found.types, found.aggregated, found.kinds, ctx, tq)
    return render_temporal(found.id, found.types, found.attrs, ctx, tq)


def _content_range(found: list[TemporalEntity], tq: TimeQuery) -> dict[str, str]:
    """Clause 6.3.10: a truncated answer says which time range it covers (206)."""
    if not any(f.truncated for f in found):
        return {}
    times = [i.get(tq.timeproperty) or i["modifiedAt"] for f in found for insts in f.attrs.values()
             for i in insts]
    first, last = min(times), max(times)
    if tq.last_n is not None:
        first, last = last, first
    return {"Content-Range": f"date-time {first}-{last}/*"}


async def _respond(request: Request, found: list[TemporalEntity], tq: TimeQuery,
                   ctx: ActiveContext, ctx_value: Any, mtype: str, *, single: bool,
                   headers: dict[str, str] | None = None) -> Response:
    rendered = [_render(f, ctx, tq) for f in found]
    if mtype == JSONLD:
        rendered = [with_context(e, ctx_value) for e in rendered]
    extra = {**(headers or {}), **_content_range(found, tq)}
    status = 206 if "Content-Range" in extra else 200
    body: Any = rendered[0] if single else rendered
    return json_response(body, status=status, mtype=mtype, context_url=ctx_value, headers=extra)


@router.get("/temporal/entities", summary="Query temporal evolution of entities")
async def query_temporal(
    request: Request,
    id: str | None = None, type: str | None = None, idPattern: str | None = None,  # noqa: A002
    attrs: str | None = None, q: str | None = None, scopeQ: str | None = None,
    georel: str | None = None, geometry: str | None = None, coordinates: str | None = None,
    geoproperty: str | None = None, timerel: str | None = None, timeAt: str | None = None,
    endTimeAt: str | None = None, timeproperty: str | None = None, lastN: str | None = None,
    aggrMethods: str | None = None, aggrPeriodDuration: str | None = None,
    limit: str | None = None, offset: str | None = None, count: str | None = None,
    options: str | None = None, format: str | None = None,  # noqa: A002
) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    params = dict(request.query_params)
    tq = parse_time_query(params, ctx, need_timerel=True)
    params.pop("options", None)
    params.pop("format", None)
    parsed = from_params(params, ctx, request.app.state.settings)
    return await _run_query(request, parsed, tq, ctx, ctx_value, mtype)


@router.post("/temporal/entityOperations/query", summary="Query temporal evolution (POST)")
async def query_temporal_post(request: Request) -> Response:
    mtype = accepted(request, geo=False)
    body, ctx, ctx_value = await read_body(request)
    if not isinstance(body, dict):
        raise BadRequestData('A query body must be a JSON object with "type": "Query"')
    params = dict(request.query_params)
    temporal = body.get("temporalQ") or {}
    if not isinstance(temporal, dict):
        raise BadRequestData("temporalQ must be an object")
    for key in ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"):
        if key in temporal:
            params[key] = str(temporal[key])
    if body.get("attrs"):
        params["attrs"] = ",".join(body["attrs"])
    tq = parse_time_query(params, ctx, need_timerel=True)
    params.pop("options", None)
    params.pop("format", None)
    parsed = from_body({k: v for k, v in body.items() if k != "temporalQ"}, ctx,
                       request.app.state.settings, params)
    return await _run_query(request, parsed, tq, ctx, ctx_value, mtype)


async def _run_query(request: Request, parsed: ParsedQuery, tq: TimeQuery,
                     ctx: ActiveContext, ctx_value: Any, mtype: str) -> Response:
    query = parsed.query
    # q, scopeQ and geoQ select by current state; attrs only name what history to return.
    current = replace(query, attrs_any=None) if (query.q or query.scope_q or query.geo) else None
    settings = request.app.state.settings
    found, total = await run_in_threadpool(
        broker(request).temporal.query, tenant(request), list(query.selectors),
        current, tq, query.limit, query.offset, query.count, settings.temporal_max_instances)
    headers = page_headers(request, parsed, len(found), total)
    return with_pagination_links(await _respond(request, found, tq, ctx, ctx_value, mtype,
                                                single=False, headers=headers))


@router.post("/temporal/entities", summary="Create or update temporal entity")
async def upsert_temporal(request: Request) -> Response:
    body, ctx, _ = await read_body(request)
    eid, created = await run_in_threadpool(broker(request).temporal.upsert, tenant(request),
                                           body, ctx)
    if created:
        return Response(status_code=201,
                        headers={"Location": f"/ngsi-ld/v1/temporal/entities/{eid}"})
    return Response(status_code=204)


@router.get("/temporal/entities/{entityId}", summary="Retrieve temporal evolution of an entity")
async def retrieve_temporal(
    request: Request, entityId: str, attrs: str | None = None,
    timerel: str | None = None, timeAt: str | None = None, endTimeAt: str | None = None,
    timeproperty: str | None = None, lastN: str | None = None,
    aggrMethods: str | None = None, aggrPeriodDuration: str | None = None,
    options: str | None = None, format: str | None = None,  # noqa: A002
) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    tq = parse_time_query(request.query_params, ctx, need_timerel=False)
    found = await run_in_threadpool(broker(request).temporal.retrieve, tenant(request),
                                    entityId, tq, request.app.state.settings.temporal_max_instances)
    return await _respond(request, [found], tq, ctx, ctx_value, mtype, single=True)


@router.delete("/temporal/entities/{entityId}", status_code=204,
               summary="Delete temporal entity")
async def delete_temporal(request: Request, entityId: str) -> Response:
    await run_in_threadpool(broker(request).temporal.delete, tenant(request), entityId)
    return Response(status_code=204)


@router.post("/temporal/entities/{entityId}/attrs", status_code=204,
             summary="Add attributes to temporal entity")
async def append_temporal(request: Request, entityId: str) -> Response:
    body, ctx, _ = await read_body(request)
    await run_in_threadpool(broker(request).temporal.append, tenant(request), entityId, body,
                            ctx)
    return Response(status_code=204)


@router.delete("/temporal/entities/{entityId}/attrs/{attrId}", status_code=204,
               summary="Delete attribute from temporal entity")
async def delete_temporal_attr(request: Request, entityId: str, attrId: str,
                               datasetId: str | None = None,
                               deleteAll: str | None = None) -> Response:
    ctx, _ = await request_context(request)
    await run_in_threadpool(broker(request).temporal.delete_attribute, tenant(request),
                            entityId, attrId, ctx, datasetId, bool_param(deleteAll, "deleteAll"))
    return Response(status_code=204)


@router.patch("/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
              summary="Modify attribute instance in temporal entity")
async def modify_instance(request: Request, entityId: str, attrId: str,
                          instanceId: str) -> Response:
    body, ctx, _ = await read_body(request)
    await run_in_threadpool(broker(request).temporal.modify_instance, tenant(request),
                            entityId, attrId, instanceId, body, ctx)
    return Response(status_code=204)


@router.delete("/temporal/entities/{entityId}/attrs/{attrId}/{instanceId}", status_code=204,
               summary="Delete attribute instance from temporal entity")
async def delete_instance(request: Request, entityId: str, attrId: str,
                          instanceId: str) -> Response:
    ctx, _ = await request_context(request)
    await run_in_threadpool(broker(request).temporal.delete_instance, tenant(request),
                            entityId, attrId, instanceId, ctx)
    return Response(status_code=204)
