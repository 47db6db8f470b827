"""Planning look-up for citizens and officials (``/planning``): which planning zones and
rules apply at a point or on a parcel, in Vietnamese and English."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import broker, json_response, tenant
from dothi.errors import BadRequestData
from dothi.gis.planning import lookup

router = APIRouter(prefix="/planning", tags=["Planning"])


@router.get("/lookup", summary="The planning zones and rules at a point (lat, lon) or parcel")
async def planning_lookup(request: Request) -> Response:
    params = request.query_params
    lon = number_param(params.get("lon"), "lon")
    lat = number_param(params.get("lat"), "lat")
    found = await run_in_threadpool(lookup, broker(request), tenant(request), lon=lon,
                                    lat=lat, parcel=params.get("parcel"))
    return json_response(found)


def number_param(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise BadRequestData(f"{name} must be a number (WGS 84 degrees)") from None
