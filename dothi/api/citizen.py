"""The citizens' page (``/citizen``) and what it needs beside Open311 and the planning
look-up: photo uploads (``/citizen/media``) and the public warnings in force at a place
(``/citizen/warnings``)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import Router, json_response, on_behalf, tenant
from dothi.api.open311 import client_of
from dothi.api.planning import number_param
from dothi.citizen.media import MAX_UPLOAD, MediaDesk
from dothi.errors import BadRequestData, ResourceNotFound, TooLarge

router = Router(prefix="/citizen", tags=["Citizens"])


def _media(request: Request) -> MediaDesk:
    return request.app.state.media  # type: ignore[no-any-return]


@router.get("", include_in_schema=False)
async def page() -> Response:
    return FileResponse(WEB / "static" / "citizen.html", media_type="text/html")


@router.post("/media", status_code=201,
             summary="Upload a photo for a report (the body is the JPEG, PNG or WebP image)")
async def upload(request: Request) -> Response:
    on_behalf(request, "report", "send photos")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD:
        raise TooLarge(f"A photo is at most {MAX_UPLOAD // 1024 // 1024} MB")
    raw = await request.body()
    client = client_of(request, request.headers.get("x-api-key"))
    mid = await run_in_threadpool(_media(request).upload, tenant(request), raw, client)
    url = str(request.base_url).rstrip("/") + f"/citizen/media/{mid}.jpg"
    return json_response({"id": mid, "media_url": url}, status=201,
                         headers={"Location": url})


@router.get("/media/{name}", summary="A report's photo")
async def photo(request: Request, name: str) -> Response:
    on_behalf(request, "read", "see photos")
    mid, _, ext = name.partition(".")
    if ext != "jpg" or not mid.isalnum():
        raise ResourceNotFound(f"No photo {name}")
    data = await run_in_threadpool(_media(request).photo, tenant(request), mid)
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})


@router.get("/warnings", summary="The public warnings (CAP) in force at a place")
async def warnings_here(request: Request) -> Response:
    on_behalf(request, "read", "read warnings")
    lat = number_param(request.query_params.get("lat"), "lat")
    lon = number_param(request.query_params.get("lon"), "lon")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadRequestData("give lat and lon (WGS 84 degrees)")
    messages = await run_in_threadpool(request.app.state.ioc.warnings.covering,
                                       tenant(request), lon, lat)
    return json_response([{k: v for k, v in m.items() if k != "input"} for m in messages])
