"""Context source endpoints (clauses 6.8–6.9, 6.12–6.13): /csourceRegistrations and
/csourceSubscriptions."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    JSONLD,
    Router,
    accepted,
    bool_param,
    broker,
    json_response,
    read_body,
    request_context,
    split_list,
    tenant,
    with_context,
)
from dothi.api.subscriptions import page_window, subscription_router, with_page_links
from dothi.errors import BadRequestData
from dothi.ngsild.entity import is_uri
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import compile_pattern, parse_q, parse_scope_q
from dothi.ngsild.render import parse_options
from dothi.ngsild.temporal import parse_time_query
from dothi.ngsild.typeexpr import parse_type_expr

PATH = "/ngsi-ld/v1/csourceRegistrations"
registrations = Router(prefix=PATH, tags=["Context sources"])


@registrations.post("", status_code=201, summary="Register a context source")
@registrations.post("/", status_code=201, include_in_schema=False)
async def create_registration(request: Request) -> Response:
    body, ctx, _ = await read_body(request)
    rid = await run_in_threadpool(broker(request).registry.create, tenant(request), body, ctx)
    return Response(status_code=201, headers={"Location": f"{PATH}/{rid}"})


@registrations.get("", summary="Query context source registrations")
@registrations.get("/", include_in_schema=False)
async def query_registrations(
    request: Request, id: str | None = None, type: str | None = None,  # noqa: A002
    idPattern: str | None = None, attrs: str | None = None, q: str | None = None,
    csf: str | None = None, scopeQ: str | None = None, georel: str | None = None,
    geometry: str | None = None, coordinates: str | None = None,
    geoproperty: str | None = None, limit: str | None = None, offset: str | None = None,
    count: str | None = None, options: str | None = None, timerel: str | None = None,
    timeAt: str | None = None,
) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    has_geo = any(v is not None for v in (georel, geometry, coordinates))
    if not (id or type or idPattern or attrs or q or csf or scopeQ or has_geo):
        raise BadRequestData("Say which registrations: give at least one of id, type, "
                             "idPattern, attrs, q, csf, scopeQ or a geo-query")
    ids = split_list(id)
    if ids and not all(is_uri(i) for i in ids):
        raise BadRequestData("id must be a list of URIs")
    tq = parse_time_query(request.query_params, ctx, need_timerel=False)
    if idPattern:
        compile_pattern(idPattern)
    size, start = page_window(request, limit, offset)
    _, sys_attrs = parse_options(options, None)
    names = split_list(attrs)
    registry = broker(request).registry
    found = await run_in_threadpool(
        registry.query, tenant(request),
        parse_type_expr(type, ctx.expand) if type else None, ids, idPattern,
        [ctx.expand(a) for a in names] if names else None,
        parse_q(q) if q else None, parse_q(csf) if csf else None,
        parse_scope_q(scopeQ) if scopeQ else None,
        parse_geoquery(georel, geometry, coordinates, geoproperty) if has_geo else None,
        ctx.expand, (tq.start, tq.end, tq.timeproperty) if timerel else None)
    page = [registry.render(doc, ctx, sys_attrs) for doc in found[start:start + size]]
    if mtype == JSONLD:
        page = [with_context(r, ctx_value) for r in page]
    headers = {"NGSILD-Results-Count": str(len(found))} if bool_param(count, "count") else {}
    response = json_response(page, mtype=mtype, context_url=ctx_value, headers=headers)
    return with_page_links(response, PATH, start, size, len(found))


@registrations.get("/{rid}", summary="Retrieve a context source registration")
async def retrieve_registration(request: Request, rid: str,
                                options: str | None = None) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    _, sys_attrs = parse_options(options, None)
    registry = broker(request).registry
    doc = await run_in_threadpool(registry.get, tenant(request), rid)
    rendered = registry.render(doc, ctx, sys_attrs)
    if mtype == JSONLD:
        rendered = with_context(rendered, ctx_value)
    return json_response(rendered, mtype=mtype, context_url=ctx_value)


@registrations.patch("/{rid}", status_code=204, summary="Update a registration")
async def update_registration(request: Request, rid: str) -> Response:
    body, ctx, _ = await read_body(request)
    await run_in_threadpool(broker(request).registry.update, tenant(request), rid, body, ctx)
    return Response(status_code=204)


@registrations.delete("/{rid}", status_code=204, summary="Delete a registration")
async def delete_registration(request: Request, rid: str) -> Response:
    await run_in_threadpool(broker(request).registry.delete, tenant(request), rid)
    return Response(status_code=204)


router = Router()
router.include_router(registrations)
router.include_router(subscription_router("/ngsi-ld/v1/csourceSubscriptions", "csource",
                                          "Context source subscriptions"))
