"""Subscription endpoints (clauses 6.10–6.11, 6.12–6.13): /subscriptions and
/csourceSubscriptions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    JSONLD,
    Router,
    accepted,
    bool_param,
    broker,
    int_param,
    json_response,
    read_body,
    request_context,
    tenant,
    with_context,
)
from dothi.errors import TooManyResults
from dothi.ngsild.render import parse_options


def subscription_router(path: str, kind: str, tag: str) -> APIRouter:
    """The five operations on subscriptions of one kind: entity subscriptions
    (/subscriptions) and subscriptions on context source registrations
    (/csourceSubscriptions, which are told at once of what they match already)."""
    router = Router(prefix=path, tags=[tag])

    def told(request: Request, sid: str) -> None:
        if kind == "csource":
            broker(request).registry.initial(tenant(request), sid)

    @router.post("", status_code=201, summary=f"Create {tag[:-1].lower()}")
    @router.post("/", status_code=201, include_in_schema=False)
    async def create(request: Request) -> Response:
        body, ctx, _ = await read_body(request)
        sid = await run_in_threadpool(broker(request).subscriptions.create, tenant(request),
                                      body, ctx, kind)
        await run_in_threadpool(told, request, sid)
        return Response(status_code=201, headers={"Location": f"{path}/{sid}"})

    @router.get("", summary=f"Query {tag.lower()}")
    @router.get("/", include_in_schema=False)
    async def query(request: Request, limit: str | None = None, offset: str | None = None,
                    count: str | None = None, options: str | None = None) -> Response:
        mtype = accepted(request, geo=False)
        ctx, ctx_value = await request_context(request)
        size, start = page_window(request, limit, offset)
        _, sys_attrs = parse_options(options, None)
        subs = broker(request).subscriptions
        records, total = await run_in_threadpool(subs.page, tenant(request), size, start,
                                                 kind)
        rendered = [subs.render(r, ctx, sys_attrs) for r in records]
        if mtype == JSONLD:
            rendered = [with_context(r, ctx_value) for r in rendered]
        headers: dict[str, str] = {}
        if bool_param(count, "count"):
            headers["NGSILD-Results-Count"] = str(total)
        response = json_response(rendered, mtype=mtype, context_url=ctx_value,
                                 headers=headers)
        return with_page_links(response, path, start, size, total)

    @router.get("/{sid}", summary=f"Retrieve {tag[:-1].lower()}")
    async def retrieve(request: Request, sid: str, options: str | None = None) -> Response:
        mtype = accepted(request, geo=False)
        ctx, ctx_value = await request_context(request)
        _, sys_attrs = parse_options(options, None)
        subs = broker(request).subscriptions
        record = await run_in_threadpool(subs.get, tenant(request), sid, kind)
        rendered = subs.render(record, ctx, sys_attrs)
        if mtype == JSONLD:
            rendered = with_context(rendered, ctx_value)
        return json_response(rendered, mtype=mtype, context_url=ctx_value)

    @router.patch("/{sid}", status_code=204, summary=f"Update {tag[:-1].lower()}")
    async def update(request: Request, sid: str) -> Response:
        body, ctx, _ = await read_body(request)
        await run_in_threadpool(broker(request).subscriptions.update, tenant(request), sid,
                                body, ctx, kind)
        await run_in_threadpool(told, request, sid)
        return Response(status_code=204)

    @router.delete("/{sid}", status_code=204, summary=f"Delete {tag[:-1].lower()}")
    async def delete(request: Request, sid: str) -> Response:
        await run_in_threadpool(broker(request).subscriptions.delete, tenant(request), sid,
                                kind)
        return Response(status_code=204)

    return router


def page_window(request: Request, limit: str | None, offset: str | None) -> tuple[int, int]:
    """(limit, offset) of a paged listing, checked against the settings."""
    settings = request.app.state.settings
    size = int_param(limit, "limit", settings.default_limit)
    if size > settings.max_limit:
        raise TooManyResults(f"limit may be at most {settings.max_limit}")
    return size, int_param(offset, "offset", 0)


def with_page_links(response: Response, path: str, start: int, size: int,
                    total: int) -> Response:
    """The prev/next Links of a listing of ``total`` items, as one header line."""
    links = []
    if start > 0:
        links.append((max(0, start - size), "prev"))
    if size > 0 and start + size < total:
        links.append((start + size, "next"))
    if links:
        response.headers.append("Link", ", ".join(
            f'<{path}?limit={size}&offset={at}>; rel="{rel}"; type="application/ld+json"'
            for at, rel in links))
    return response


router = subscription_router("/ngsi-ld/v1/subscriptions", "entity", "Subscriptions")
