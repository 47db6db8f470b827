"""NGSI-LD entity endpoints (clause 6.4–6.7, 6.14): /entities and its attributes."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    GEOJSON,
    JSONLD,
    Router,
    accepted,
    bool_param,
    broker,
    forward_of,
    json_response,
    read_body,
    request_context,
    tenant,
    with_context,
)
from dothi.api.query import ParsedQuery, from_params, render_options
from dothi.broker.forwarding import Forward
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.render import render_entity, to_feature

router = Router(prefix="/ngsi-ld/v1", tags=["Entities"])


async def query_response(
    request: Request, parsed: ParsedQuery, ctx: ActiveContext, ctx_value: object, mtype: str,
    forward: Forward | None = None,
) -> Response:
    """Run a parsed query (distributed when ``forward`` is given) and render the page,
    with count, pagination and warning headers."""
    result = await run_in_threadpool(broker(request).query, tenant(request), parsed.query,
                                     forward, ctx)
    docs, total = result.docs, result.count
    if mtype == GEOJSON:
        features = [to_feature(d, ctx, parsed.render, parsed.geometry_property) for d in docs]
        body: object = {"type": "FeatureCollection", "features": features}
    else:
        rendered = [render_entity(d, ctx, parsed.render) for d in docs]
        body = [with_context(e, ctx_value) for e in rendered] if mtype == JSONLD else rendered
    response = json_response(body, mtype=mtype, context_url=ctx_value,
                             headers=page_headers(request, parsed, len(docs), total))
    for warning in result.warnings:
        response.headers.append("NGSILD-Warning", warning)
    return with_pagination_links(response)


def with_pagination_links(response: Response) -> Response:
    """The context Link and the pagination Links are separate header lines."""
    pagination = response.headers.get("link-pagination")
    if pagination:
        del response.headers["link-pagination"]
        response.headers.append("Link", pagination)
    return response


def page_headers(request: Request, parsed: ParsedQuery, returned: int,
                 total: int | None) -> dict[str, str]:
    q = parsed.query
    links = []
    params = dict(request.query_params)
    base = str(request.url.remove_query_params(list(params)))
    if q.offset > 0:
        params["offset"] = str(max(0, q.offset - q.limit))
        links.append(f'<{base}?{urlencode(params)}>; rel="prev"; type="application/json"')
    more = returned == q.limit and (total is None or q.offset + q.limit < total)
    if more and q.limit > 0:
        params["offset"] = str(q.offset + q.limit)
        links.append(f'<{base}?{urlencode(params)}>; rel="next"; type="application/json"')
    headers = {}
    if total is not None:
        headers["NGSILD-Results-Count"] = str(total)
    if links:
        headers["Link-Pagination"] = ", ".join(links)
    return headers


@router.get("/entities", summary="Query entities")
async def query_entities(
    request: Request,
    id: str | None = None, type: str | None = None, idPattern: str | None = None,  # noqa: A002
    attrs: str | None = None, pick: str | None = None, omit: str | None = None, q: str | None = None,
    scopeQ: str | None = None, georel: str | None = None, geometry: str | None = None,
    coordinates: str | None = None, geoproperty: str | None = None,
    geometryProperty: str | None = None, csf: str | None = None, lang: str | None = None,
    limit: str | None = None, offset: str | None = None, count: str | None = None,
    options: str | None = None, format: str | None = None, local: str | None = None,  # noqa: A002
) -> Response:
    mtype = accepted(request)
    ctx, ctx_value = await request_context(request)
    parsed = from_params(request.query_params, ctx, request.app.state.settings)
    return await query_response(request, parsed, ctx, ctx_value, mtype, forward_of(request))


@router.post("/entities", status_code=201, summary="Create entity")
async def create_entity(request: Request) -> Response:
    body, ctx, _ = await read_body(request)
    eid = await run_in_threadpool(broker(request).create, tenant(request), body, ctx,
                                  forward_of(request))
    return Response(status_code=201, headers={"Location": f"/ngsi-ld/v1/entities/{eid}"})


@router.get("/entities/{entityId}", summary="Retrieve entity")
async def retrieve_entity(
    request: Request, entityId: str,
    type: str | None = None, attrs: str | None = None, pick: str | None = None,  # noqa: A002
    omit: str | None = None, geometryProperty: str | None = None, lang: str | None = None,
    options: str | None = None, format: str | None = None,  # noqa: A002
) -> Response:
    b = broker(request)
    mtype = accepted(request)
    ctx, ctx_value = await request_context(request)
    opts = render_options(request.query_params, ctx)
    doc = await run_in_threadpool(b.retrieve, tenant(request), entityId, forward_of(request),
                                  ctx, [ctx.expand(a) for a in attrs.split(",")] if attrs
                                  else None)
    if type is not None:
        wanted = {ctx.expand(t) for t in type.split(",")}
        if not wanted & set(doc.get("type", [])):
            raise ResourceNotFound(f"Entity {entityId} is not of type {type}")
    if mtype == GEOJSON:
        body: object = to_feature(doc, ctx, opts, ctx.expand(geometryProperty or "location"))
    else:
        body = render_entity(doc, ctx, opts)
        if mtype == JSONLD:
            body = with_context(body, ctx_value)  # type: ignore[arg-type]
    return json_response(body, mtype=mtype, context_url=ctx_value)


@router.put("/entities/{entityId}", status_code=204, summary="Replace entity")
async def replace_entity(request: Request, entityId: str) -> Response:
    body, ctx, _ = await read_body(request)
    await run_in_threadpool(broker(request).replace, tenant(request), entityId, body, ctx,
                            forward_of(request))
    return Response(status_code=204)


@router.patch("/entities/{entityId}", status_code=204, summary="Merge entity")
async def merge_entity(request: Request, entityId: str) -> Response:
    body, ctx, _ = await read_body(request, allow_merge_patch=True)
    await run_in_threadpool(broker(request).merge, tenant(request), entityId, body, ctx,
                            forward_of(request))
    return Response(status_code=204)


@router.delete("/entities/{entityId}", status_code=204, summary="Delete entity")
async def delete_entity(request: Request, entityId: str) -> Response:
    await run_in_threadpool(broker(request).delete, tenant(request), entityId,
                            forward_of(request))
    return Response(status_code=204)


def _update_result(request: Request, not_updated: list[str], ctx: ActiveContext,
                   updated: list[str]) -> Response:
    if not not_updated:
        return Response(status_code=204)
    body = {
        "updated": [ctx.compact(i) for i in updated],
        "notUpdated": [
            {"attributeName": ctx.compact(i),
             "reason": "The attribute (instance) exists and noOverwrite was asked, or it "
                       "does not exist and cannot be updated"}
            for i in not_updated
        ],
    }
    return json_response(body, status=207)


@router.post("/entities/{entityId}/attrs", status_code=204, summary="Append attributes")
async def append_attrs(request: Request, entityId: str, options: str | None = None) -> Response:
    body, ctx, _ = await read_body(request)
    if options not in (None, "noOverwrite"):
        raise BadRequestData(f"Unknown option {options!r}")
    overwrite = options != "noOverwrite"
    skipped = await run_in_threadpool(
        broker(request).append, tenant(request), entityId, body, ctx, overwrite,
        forward_of(request),
    )
    names = [ctx.expand(k) for k in body if k not in ("@context", "id", "type")]
    return _update_result(request, skipped, ctx, [n for n in names if n not in skipped])


@router.patch("/entities/{entityId}/attrs", status_code=204, summary="Update attributes")
async def update_attrs(request: Request, entityId: str) -> Response:
    body, ctx, _ = await read_body(request)
    skipped = await run_in_threadpool(broker(request).update, tenant(request), entityId, body,
                                      ctx, forward_of(request))
    names = [ctx.expand(k) for k in body if k not in ("@context", "id", "type")]
    return _update_result(request, skipped, ctx, [n for n in names if n not in skipped])


@router.patch("/entities/{entityId}/attrs/{attrId}", status_code=204,
              summary="Partial attribute update")
async def patch_attr(request: Request, entityId: str, attrId: str) -> Response:
    body, ctx, _ = await read_body(request)
    await run_in_threadpool(broker(request).patch_attribute, tenant(request), entityId, attrId,
                            body, ctx, forward_of(request))
    return Response(status_code=204)


@router.put("/entities/{entityId}/attrs/{attrId}", status_code=204,
            summary="Replace attribute")
async def replace_attr(request: Request, entityId: str, attrId: str) -> Response:
    body, ctx, _ = await read_body(request)
    await run_in_threadpool(broker(request).replace_attribute, tenant(request), entityId,
                            attrId, body, ctx, forward_of(request))
    return Response(status_code=204)


@router.delete("/entities/{entityId}/attrs/{attrId}", status_code=204,
               summary="Delete attribute")
async def delete_attr(
    request: Request, entityId: str, attrId: str,
    datasetId: str | None = None, deleteAll: str | None = None,
) -> Response:
    ctx, _ = await request_context(request)
    await run_in_threadpool(
        broker(request).delete_attribute, tenant(request), entityId, attrId, ctx, datasetId,
        bool_param(deleteAll, "deleteAll"), forward_of(request),
    )
    return Response(status_code=204)
