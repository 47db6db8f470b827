"""@context management (clause 5.13, 6.30–6.31): /jsonldContexts."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import Router, bool_param, broker, json_response, media_type
from dothi.errors import BadRequestData, InvalidRequest, ResourceNotFound, UnsupportedMediaType
from dothi.ngsild.context import CachedContext

router = Router(prefix="/ngsi-ld/v1/jsonldContexts", tags=["@context"])
PATH = "/ngsi-ld/v1/jsonldContexts/"


def local_id(url: str) -> str:
    if PATH in url:
        return url.rsplit("/", 1)[-1]
    return hashlib.sha256(url.encode()).hexdigest()[:20]


def _details(entry: CachedContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "URL": entry.url,
        "localId": "urn:ngsi-ld:jsonldContext:" + local_id(entry.url),
        "kind": entry.kind,
        "numberOfHits": entry.hits,
    }
    if entry.created_at:
        out["createdAt"] = entry.created_at
    return out


def _find(request: Request, context_id: str) -> CachedContext:
    cache = broker(request).cache
    entry = cache.get_entry(context_id)
    if entry is not None:
        return entry
    wanted = context_id.removeprefix("urn:ngsi-ld:jsonldContext:")
    for entry in cache.entries():
        if local_id(entry.url) == wanted:
            return entry
    raise ResourceNotFound(f"No @context {context_id}")


@router.get("", summary="List @contexts")
async def list_contexts(request: Request, details: str | None = None,
                        kind: str | None = None) -> Response:
    if kind not in (None, "Hosted", "Cached", "ImplicitlyCreated"):
        raise BadRequestData("kind must be Hosted, Cached or ImplicitlyCreated")
    entries = [e for e in broker(request).cache.entries() if kind is None or e.kind == kind]
    if bool_param(details, "details"):
        return json_response([_details(e) for e in entries])
    return json_response([e.url for e in entries])


@router.post("", status_code=201, summary="Add an @context")
async def add_context(request: Request) -> Response:
    if media_type(request) not in ("application/json", "application/ld+json"):
        raise UnsupportedMediaType("An @context is added as application/json or ld+json")
    try:
        doc = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest("The payload is not valid JSON") from None
    if not isinstance(doc, dict) or "@context" not in doc:
        raise BadRequestData("The payload must be a JSON object with an @context member")
    if not isinstance(doc["@context"], (dict, list, str)):
        raise BadRequestData("@context must be an object, an array or a URL")
    new_id = uuid.uuid4().hex
    url = str(request.base_url).rstrip("/") + PATH + new_id
    await run_in_threadpool(broker(request).add_context, url, doc)
    return Response(status_code=201, headers={"Location": PATH + new_id})


@router.get("/{contextId:path}", summary="Serve an @context")
async def get_context(request: Request, contextId: str, details: str | None = None) -> Response:
    entry = _find(request, contextId)
    entry.hits += 1
    if bool_param(details, "details"):
        return json_response(_details(entry))
    return Response(
        content=orjson.dumps(entry.document),
        media_type="application/ld+json",
    )


@router.delete("/{contextId:path}", status_code=204, summary="Delete an @context")
async def delete_context(request: Request, contextId: str, reload: str | None = None) -> Response:
    entry = _find(request, contextId)
    refetch = bool_param(reload, "reload")
    if refetch and entry.kind == "Hosted":
        raise BadRequestData("reload applies to cached @contexts, not hosted ones")
    b = broker(request)
    await run_in_threadpool(b.delete_context, entry.url)
    if refetch:
        await run_in_threadpool(b.cache.resolve, entry.url)
    return Response(status_code=204)
