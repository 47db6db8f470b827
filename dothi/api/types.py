"""Type and attribute discovery (clause 5.7.5–5.7.10): /types and /attributes."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    JSONLD,
    Router,
    accepted,
    bool_param,
    broker,
    forward_of,
    json_response,
    request_context,
    tenant,
    with_context,
)
from dothi.errors import ResourceNotFound
from dothi.ngsild.context import ActiveContext
from dothi.store.base import TypeStat

router = Router(prefix="/ngsi-ld/v1", tags=["Types and attributes"])


def _wrap(body: dict[str, Any] | list[Any], mtype: str, ctx_value: Any) -> Any:
    if mtype != JSONLD:
        return body
    if isinstance(body, list):
        return [with_context(b, ctx_value) for b in body]
    return with_context(body, ctx_value)


async def _stats(request: Request, ctx: ActiveContext, only: str | None = None
                 ) -> tuple[list[TypeStat], list[str]]:
    """Types held here and at the context sources (see Broker.type_stats)."""
    return await run_in_threadpool(broker(request).type_stats, tenant(request),
                                   forward_of(request), ctx, only)


def _respond(body: Any, mtype: str, ctx_value: Any, warnings: list[str]) -> Response:
    response = json_response(_wrap(body, mtype, ctx_value), mtype=mtype,
                             context_url=ctx_value)
    for warning in warnings:
        response.headers.append("NGSILD-Warning", warning)
    return response


@router.get("/types", summary="Available entity types")
async def list_types(request: Request, details: str | None = None) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    stats, warnings = await _stats(request, ctx)
    if bool_param(details, "details"):
        body: Any = [
            {
                "id": s.type,
                "type": "EntityType",
                "typeName": ctx.compact(s.type),
                "attributeNames": sorted(ctx.compact(a) for a in s.attributes),
            }
            for s in stats
        ]
    else:
        body = {
            "id": "urn:ngsi-ld:EntityTypeList:" + tenant(request).rsplit(":", 1)[-1],
            "type": "EntityTypeList",
            "typeList": sorted(ctx.compact(s.type) for s in stats),
        }
    return _respond(body, mtype, ctx_value, warnings)


@router.get("/types/{type}", summary="Details of one entity type")
async def type_info(request: Request, type: str) -> Response:  # noqa: A002
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    iri = ctx.expand(type)
    stats, warnings = await _stats(request, ctx, iri)
    stat = next((s for s in stats if s.type == iri), None)
    if stat is None:
        raise ResourceNotFound(f"No entity of type {type}")
    body = {
        "id": iri,
        "type": "EntityTypeInfo",
        "typeName": ctx.compact(iri),
        "entityCount": stat.entities,
        "attributeDetails": [
            {
                "id": attr,
                "type": "Attribute",
                "attributeName": ctx.compact(attr),
                "attributeTypes": sorted(kinds),
            }
            for attr, kinds in sorted(stat.attributes.items())
        ],
    }
    return _respond(body, mtype, ctx_value, warnings)


def _attributes(stats: list[TypeStat]) -> dict[str, tuple[set[str], set[str], int]]:
    out: dict[str, tuple[set[str], set[str], int]] = {}
    for s in stats:
        for attr, kinds in s.attributes.items():
            types, atypes, _ = out.setdefault(attr, (set(), set(), 0))
            types.add(s.type)
            atypes.update(kinds)
    return out


@router.get("/attributes", summary="Available attributes")
async def list_attributes(request: Request, details: str | None = None) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    stats, warnings = await _stats(request, ctx)
    attrs = _attributes(stats)
    if bool_param(details, "details"):
        body: Any = [
            {
                "id": attr,
                "type": "Attribute",
                "attributeName": ctx.compact(attr),
                "typeNames": sorted(ctx.compact(t) for t in types),
            }
            for attr, (types, _, _) in sorted(attrs.items())
        ]
    else:
        body = {
            "id": "urn:ngsi-ld:AttributeList:" + tenant(request).rsplit(":", 1)[-1],
            "type": "AttributeList",
            "attributeList": sorted(ctx.compact(a) for a in attrs),
        }
    return _respond(body, mtype, ctx_value, warnings)


@router.get("/attributes/{attrId}", summary="Details of one attribute")
async def attribute_info(request: Request, attrId: str) -> Response:
    mtype = accepted(request, geo=False)
    ctx, ctx_value = await request_context(request)
    iri = ctx.expand(attrId)
    stats, warnings = await _stats(request, ctx)
    attrs = _attributes(stats)
    if iri not in attrs:
        raise ResourceNotFound(f"No attribute {attrId}")
    types, atypes, _ = attrs[iri]
    count = sum(s.attribute_counts.get(iri, 0) for s in stats)
    body = {
        "id": iri,
        "type": "Attribute",
        "attributeName": ctx.compact(iri),
        "attributeTypes": sorted(atypes),
        "typeNames": sorted(ctx.compact(t) for t in types),
        "attributeCount": count,
    }
    return _respond(body, mtype, ctx_value, warnings)
