"""The IoT Agent side over HTTP: provisioning (``/iot/services``, ``/iot/devices``, the
FIWARE IoT Agents' API and payloads) and measures from HTTP devices (``/iot/json`` for
JSON, ``/iot/d`` for UltraLight 2.0). The tenant is ``NGSILD-Tenant`` or, as IoT Agent
clients send it, ``fiware-service``."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import Router, int_param, json_response, require
from dothi.api.http import tenant as ngsild_tenant
from dothi.auth import access as auth
from dothi.errors import BadRequestData, InvalidRequest, StoreUnavailable
from dothi.iot.config import DeviceConfig, ServiceGroup, dump, parse_documents
from dothi.iot.service import IotService
from dothi.iot.validation import InvalidSchema
from dothi.store.base import DEFAULT_TENANT

router = Router(prefix="/iot", tags=["Devices (IoT Agent API)"])


def _iot(request: Request) -> IotService:
    return request.app.state.iot  # type: ignore[no-any-return]


def _tenant(request: Request) -> str:
    if request.headers.get("ngsild-tenant"):
        return ngsild_tenant(request)
    value = request.headers.get("fiware-service")
    if not value:
        return DEFAULT_TENANT
    if not re.fullmatch(r"[A-Za-z0-9_]{1,50}", value):
        raise BadRequestData(f"Invalid fiware-service {value!r}")
    return value


async def _json(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None


# -- service groups -------------------------------------------------------------------


@router.post("/services", status_code=201, summary="Provision service groups")
async def create_services(request: Request) -> Response:
    require(request, "manage", "provision devices")
    groups = parse_documents(ServiceGroup, await _json(request), "services")
    iot = _iot(request)
    for group in groups:
        _check_schema(iot, group)
    await run_in_threadpool(iot.registry.create_groups, _tenant(request), groups)
    return Response(status_code=201)


def _check_schema(iot: IotService, group: ServiceGroup) -> None:
    if group.schema_validation != "off":
        try:
            iot.catalogue.find(group.entity_type, group.schema_)
        except (LookupError, InvalidSchema) as exc:
            raise BadRequestData(f"schema_validation is {group.schema_validation} but "
                                 f"{exc}") from None


@router.get("/services", summary="List service groups")
async def list_services(request: Request) -> Response:
    require(request, "manage", "provision devices")
    groups = await run_in_threadpool(_iot(request).registry.list_groups, _tenant(request))
    return _listing(request, "services", sorted(groups, key=lambda g: g.apikey))


def _listing(request: Request, key: str, docs: list[Any]) -> Response:
    """The IoT Agents' list shape: the total, and one page of documents."""
    limit = int_param(request.query_params.get("limit"), "limit", 20)
    offset = int_param(request.query_params.get("offset"), "offset", 0)
    if not 1 <= limit <= 1000 or offset < 0:
        raise BadRequestData("limit must be 1..1000 and offset at least 0")
    return json_response({"count": len(docs),
                          key: [dump(d) for d in docs[offset:offset + limit]]})


def _apikey(request: Request) -> str:
    apikey = request.query_params.get("apikey")
    if not apikey:
        raise BadRequestData("Say which service group with ?apikey=")
    return apikey


@router.put("/services", status_code=204, summary="Change a service group")
async def update_service(request: Request) -> Response:
    require(request, "manage", "provision devices")
    iot = _iot(request)
    patch = await _json(request)
    group = await run_in_threadpool(iot.registry.update_group, _tenant(request),
                                    _apikey(request), patch)
    _check_schema(iot, group)
    return Response(status_code=204)


@router.delete("/services", status_code=204, summary="Remove a service group")
async def delete_service(request: Request) -> Response:
    require(request, "manage", "provision devices")
    await run_in_threadpool(_iot(request).registry.delete_group, _tenant(request),
                            _apikey(request))
    return Response(status_code=204)


# -- devices --------------------------------------------------------------------------


@router.post("/devices", status_code=201, summary="Provision devices")
async def create_devices(request: Request) -> Response:
    require(request, "manage", "provision devices")
    devices = parse_documents(DeviceConfig, await _json(request), "devices")
    await run_in_threadpool(_iot(request).registry.create_devices, _tenant(request), devices)
    return Response(status_code=201)


@router.get("/devices", summary="List devices")
async def list_devices(request: Request) -> Response:
    require(request, "manage", "provision devices")
    devices = await run_in_threadpool(_iot(request).registry.list_devices, _tenant(request))
    return _listing(request, "devices", sorted(devices, key=lambda d: d.device_id))


@router.get("/devices/{device_id}", summary="One device")
async def get_device(request: Request, device_id: str) -> Response:
    require(request, "manage", "provision devices")
    device = await run_in_threadpool(_iot(request).registry.get_device, _tenant(request),
                                     device_id)
    return json_response(dump(device))


@router.put("/devices/{device_id}", status_code=204, summary="Change a device")
async def update_device(request: Request, device_id: str) -> Response:
    require(request, "manage", "provision devices")
    patch = await _json(request)
    await run_in_threadpool(_iot(request).registry.update_device, _tenant(request),
                            device_id, patch)
    return Response(status_code=204)


@router.delete("/devices/{device_id}", status_code=204, summary="Remove a device")
async def delete_device(request: Request, device_id: str) -> Response:
    require(request, "manage", "provision devices")
    await run_in_threadpool(_iot(request).registry.delete_device, _tenant(request),
                            device_id)
    return Response(status_code=204)


# -- measures over HTTP ---------------------------------------------------------------


async def _measures(request: Request, protocol: str, payload: bytes) -> Response:
    """Answers once the measures are written (or refused), as the IoT Agents do."""
    apikey = request.query_params.get("k")
    device_id = request.query_params.get("i")
    # A device shows its service group's apikey and its id, as with the FIWARE IoT
    # Agents (and over MQTT); provisioning, which hands those out, is for managers only.
    auth.set_current(auth.SYSTEM)
    if not apikey or not device_id:
        raise BadRequestData("Measures need ?k=<apikey>&i=<device id>")
    iot = _iot(request)
    loop = asyncio.get_running_loop()
    written: asyncio.Future[BaseException | None] = loop.create_future()

    def done(error: BaseException | None) -> None:
        loop.call_soon_threadsafe(written.set_result, error)

    await run_in_threadpool(iot.ingestor.measures, apikey, device_id, payload,
                            protocol=protocol, source="http", done=done, timeout=5.0)
    error = await written
    if error is not None:
        raise StoreUnavailable(f"The measures could not be written: {error}")
    return Response(status_code=200)


@router.post("/json", summary="Measures from a JSON device")
async def measures_json(request: Request) -> Response:
    return await _measures(request, "JSON", await request.body())


@router.post("/d", summary="Measures from an UltraLight 2.0 device")
async def measures_ultralight(request: Request) -> Response:
    return await _measures(request, "UL", await request.body())


@router.get("/d", summary="Measures from an UltraLight 2.0 device, in ?d=")
async def measures_ultralight_get(request: Request) -> Response:
    payload = request.query_params.get("d")
    if not payload:
        raise BadRequestData("GET /iot/d carries the measures in ?d=")
    return await _measures(request, "UL", payload.encode())


@router.get("/about", summary="Ingestion counters, MQTT link and device totals")
async def about(request: Request) -> Response:
    require(request, "read-internal", "read the device counters")
    return json_response(_iot(request).about())

