"""Planning for citizens, officials and planners (``/planning``): which planning zones and
rules apply at a point or on a parcel, in Vietnamese and English; and the figures of an
area drawn on the map, for one plan variant or several side by side."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import Router, broker, json_object, json_response, on_behalf, tenant
from dothi.errors import BadRequestData, only_members
from dothi.gis.assessment import Assessor
from dothi.gis.planning import lookup

router = Router(prefix="/planning", tags=["Planning"])


@router.get("/lookup", summary="The planning zones and rules at a point (lat, lon) or parcel")
async def planning_lookup(request: Request) -> Response:
    on_behalf(request, "read", "read the plans")
    params = request.query_params
    lon = number_param(params.get("lon"), "lon")
    lat = number_param(params.get("lat"), "lat")
    found = await run_in_threadpool(lookup, broker(request), tenant(request), lon=lon,
                                    lat=lat, parcel=params.get("parcel"))
    return json_response(found)


@router.get("/studio", include_in_schema=False)
async def page() -> Response:
    return FileResponse(WEB / "static" / "planning.html", media_type="text/html")


def _assessor(request: Request) -> Assessor:
    return request.app.state.assessor  # type: ignore[no-any-return]


@router.post("/assess", summary="An area's residents, green space, access to amenities, "
             "floods and (for a plan variant) land use")
async def assess(request: Request) -> Response:
    on_behalf(request, "read", "read the plans")
    body = await json_object(request)
    only_members(body, {"area", "variant"}, "; give area and variant")
    variant = body.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise BadRequestData("variant is a planning layer's id")
    return json_response(await run_in_threadpool(_assessor(request).assess, tenant(request),
                                                 body.get("area"), variant))


@router.post("/compare", summary="Plan variants side by side over one area")
async def compare(request: Request) -> Response:
    on_behalf(request, "read", "read the plans")
    body = await json_object(request)
    only_members(body, {"area", "variants"}, "; give area and variants")
    return json_response(await run_in_threadpool(_assessor(request).compare, tenant(request),
                                                 body.get("area"), body.get("variants")))


def number_param(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise BadRequestData(f"{name} must be a number (WGS 84 degrees)") from None
