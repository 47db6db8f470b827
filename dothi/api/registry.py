"""The registers over HTTP (``/registry``): anyone reads and searches them (the page, the
records as JSON or GeoJSON); officials register and change records, assessors certify."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from dothi.api.dashboard import WEB
from dothi.api.http import (
    GEOJSON,
    Router,
    assessor,
    json_object,
    json_response,
    official,
    on_behalf,
    tenant,
)
from dothi.errors import BadRequestData
from dothi.registry.registry import Registry

router = Router(prefix="/registry", tags=["Registers"])
RECORD = "/records/{rid}"


def _registry(request: Request) -> Registry:
    return request.app.state.registry  # type: ignore[no-any-return]


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise BadRequestData("bbox is west,south,east,north (four numbers)") from None
    if west > east or south > north:
        raise BadRequestData("bbox is west,south,east,north with west <= east, south <= north")
    return west, south, east, north


@router.get("", include_in_schema=False)
async def page() -> Response:
    return FileResponse(WEB / "static" / "registry.html", media_type="text/html")


@router.get("/registers", summary="The registers: fields, lifecycle, certification criteria")
async def registers(request: Request) -> Response:
    on_behalf(request, "read", "read the registers")
    regs = _registry(request).registers
    return json_response({"registers": [r.describe() for r in regs.registers.values()],
                          "criteria": {k: {"pass": c.passing, "weights": c.weights,
                                           "titles": c.titles}
                                       for k, c in regs.criteria.items()}})


@router.get("/records", summary="Search the records: words (with or without diacritics), "
            "register, status, bbox; f=geojson for a map")
async def records(request: Request, register: str | None = None, q: str = "",
                  status: str | None = None, bbox: str | None = None,
                  f: str = "json") -> Response:
    on_behalf(request, "read", "read the registers")
    if f not in ("json", "geojson"):
        raise BadRequestData("f is json or geojson")
    found = await run_in_threadpool(_registry(request).search, tenant(request), register, q,
                                    status, _bbox(bbox))
    if f == "geojson":
        return json_response({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": r["registryId"], "geometry": r.get("location"),
             "properties": {k: v for k, v in r.items() if k != "location"}} for r in found]},
            mtype=GEOJSON)
    return json_response({"records": found})


@router.post("/registers/{register}/records", status_code=201,
             summary="Register a record (officials)")
async def create(request: Request, register: str) -> Response:
    by = official(request)
    body = await json_object(request)
    made = await run_in_threadpool(_registry(request).create, tenant(request), register, body,
                                   by=by)
    return json_response(made, status=201,
                         headers={"Location": f"/registry/records/{made['registryId']}"})


@router.get(RECORD, summary="One record, by its identifier")
async def one(request: Request, rid: str) -> Response:
    on_behalf(request, "read", "read the registers")
    reg = _registry(request)
    _, doc = await run_in_threadpool(reg.get, tenant(request), rid)
    return json_response(reg.view(doc))


@router.patch(RECORD, summary="Change a record's fields (officials)")
async def update(request: Request, rid: str) -> Response:
    official(request)
    body = await json_object(request)
    return json_response(await run_in_threadpool(_registry(request).update, tenant(request),
                                                 rid, body))


@router.post(RECORD + "/status", summary="Move a record along its lifecycle (officials)")
async def move(request: Request, rid: str) -> Response:
    by = official(request)
    body = await json_object(request)
    return json_response(await run_in_threadpool(
        lambda: _registry(request).move(tenant(request), rid, body.get("to"),
                                        note=body.get("note"), decision=body.get("decision"),
                                        by=by)))


@router.post(RECORD + "/documents", summary="Attach a document (officials)")
async def document(request: Request, rid: str) -> Response:
    return await _with_body(request, rid, "add_document", official(request))


@router.post(RECORD + "/reports", summary="A sandbox's periodic report (officials)")
async def report(request: Request, rid: str) -> Response:
    return await _with_body(request, rid, "add_report", official(request))


@router.post(RECORD + "/certification", summary="Apply for certification with evidence "
             "(officials)")
async def certification(request: Request, rid: str) -> Response:
    return await _with_body(request, rid, "apply_for_certification",
                            official(request))


@router.post(RECORD + "/certification/assessment", summary="Score an application against "
             "the criteria; the result is published (assessors)")
async def assessment(request: Request, rid: str) -> Response:
    return await _with_body(request, rid, "assess", assessor(request))


async def _with_body(request: Request, rid: str, action: str, by: str) -> Response:
    body: Any = await json_object(request)
    do = getattr(_registry(request), action)
    return json_response(await run_in_threadpool(lambda: do(tenant(request), rid, body,
                                                            by=by)))
