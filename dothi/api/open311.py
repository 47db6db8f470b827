"""Citizens' field reports over Open311 GeoReport v2 (``/open311/v2``): the service
discovery file, services and their definitions, reporting (a form-encoded POST, as the
specification says), requests by id, by token and by filters; each resource as JSON or XML
by its extension (``requests.xml``; none means JSON), errors as Open311's
``[{"code", "description"}]``. Texts are Vietnamese unless ``locale=en``.

Officials read who made a report at ``/ioc/service-requests/{id}/reporter`` with one of
``DOTHI_OFFICIAL_KEYS`` as a bearer token; every such read is logged."""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    PROBLEMS,
    Router,
    json_response,
    media_type,
    official,
    on_behalf,
    tenant,
)
from dothi.citizen.catalogue import LOCALES
from dothi.citizen.reports import ReportDesk
from dothi.errors import (
    BadRequestData,
    DothiError,
    Forbidden,
    ResourceNotFound,
    TooLarge,
    UnsupportedMediaType,
)
from dothi.settings import listed
from dothi.store import audit

# Open311's own errors, in JSON or XML, as documented besides the platform's problem
# details (which a request the framework refuses still gets).
ERRORS: dict[int | str, dict[str, Any]] = {status: {**spec, "content": {
    **spec["content"],
    "application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
        "code": {"type": "integer"}, "description": {"type": "string"}}}}},
    "text/xml": {"schema": {"type": "string"}}}} for status, spec in PROBLEMS.items()}
router = Router(prefix="/open311/v2", tags=["Citizens' reports (Open311 GeoReport v2)"],
                responses=ERRORS)
officials = Router(prefix="/ioc", tags=["Operations centre"])
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
FORM = "application/x-www-form-urlencoded"
MAX_FORM = 64 * 1024
# XML: the element of each item of a list, by the list's element.
ITEMS = {"services": "service", "service_requests": "request", "attributes": "attribute",
         "values": "value", "errors": "error", "endpoints": "endpoint",
         "formats": "format"}


def _desk(request: Request) -> ReportDesk:
    return request.app.state.reports  # type: ignore[no-any-return]


def _locale(request: Request) -> str:
    locale = request.query_params.get("locale", "vi").split("-")[0].lower()
    if locale not in LOCALES:
        raise BadRequestData(f"locale is {' or '.join(LOCALES)}")
    return locale


async def _answer(fmt: str, root: str, work: Callable[[], Any], status: int | None = 200
                  ) -> Response:
    """Runs ``work`` off the event loop and renders what it returns, or its error, as
    Open311 does, in ``fmt``; with ``status`` None, ``work`` returns (body, status)."""
    try:
        if fmt not in FORMATS:
            fmt = "json"
            raise ResourceNotFound(f"Open311 answers in {' or '.join(FORMATS)}")
        body = await run_in_threadpool(work)
        if status is None:
            body, status_code = body
        else:
            status_code = status
    except DothiError as exc:
        body, root, status_code = [{"code": exc.status, "description": exc.detail}], \
            "errors", exc.status
    content = orjson.dumps(body) if fmt == "json" else to_xml(root, body)
    return Response(content, status_code=status_code, media_type=FORMATS[fmt])


def to_xml(root: str, body: Any) -> bytes:
    """Open311's XML: a list under ``root`` becomes one element per item (named by
    ``ITEMS``), a dict one element per member; true/false for booleans, empty elements
    for nothing."""

    def fill(element: ET.Element, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                fill(ET.SubElement(element, ITEMS.get(element.tag, "item")), item)
        elif isinstance(value, dict):
            for name, member in value.items():
                fill(ET.SubElement(element, name), member)
        elif isinstance(value, bool):
            element.text = "true" if value else "false"
        elif value is not None:
            element.text = str(value)

    top = ET.Element(root)
    fill(top, body)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8",
                                                                      xml_declaration=False)


# -- discovery and services -------------------------------------------------------------


@router.get("/discovery", summary="Open311 service discovery")
@router.get("/discovery.{fmt}", summary="Open311 service discovery, as json or xml")
async def discovery(request: Request, fmt: str = "json") -> Response:
    on_behalf(request, "read", "read reports")
    base = str(request.base_url).rstrip("/") + router.prefix

    def work() -> dict[str, Any]:
        return {"changeset": "2026-11-25T00:00:00Z", "contact": None, "key_service": None,
                "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                               "url": base, "changeset": "2026-11-25T00:00:00Z",
                               "type": "production", "formats": ["text/xml",
                                                                 "application/json"]}]}

    return await _answer(fmt, "discovery", work)


@router.get("/services", summary="The services citizens can report on")
@router.get("/services.{fmt}", summary="The services, as json or xml")
async def services(request: Request, fmt: str = "json") -> Response:
    on_behalf(request, "read", "read reports")
    return await _answer(fmt, "services", lambda: _desk(request).catalogue.listing(
        _locale(request)))


@router.get("/services/{code}.{fmt}", summary="A service's definition: its attributes")
async def service_definition(request: Request, code: str, fmt: str) -> Response:
    on_behalf(request, "read", "read reports")
    return await _answer(fmt, "service_definition", lambda: _desk(request).catalogue.definition(
        code, _locale(request)))


@router.get("/services/{code}", summary="A service's definition (JSON)")
async def service_definition_json(request: Request, code: str) -> Response:
    return await service_definition(request, code, "json")


# -- requests ---------------------------------------------------------------------------


@router.post("/requests", summary="Report a problem (form-encoded, as Open311 says)")
@router.post("/requests.{fmt}", summary="Report a problem, answered as json or xml")
async def create_request(request: Request, fmt: str = "json") -> Response:
    on_behalf(request, "report", "report problems")
    desk, where, ctype = _desk(request), tenant(request), media_type(request)
    raw = await request.body()

    def work() -> tuple[list[dict[str, Any]], int]:
        fields = _form(ctype, raw)
        answer, new = desk.submit(where, fields,
                                  client_of(request, (fields.get("api_key") or [""])[0]))
        return [answer], 201 if new else 200

    return await _answer(fmt, "service_requests", work, status=None)


@router.get("/requests", summary="Reports, newest first, by id, service, status, dates")
@router.get("/requests.{fmt}", summary="Reports, as json or xml")
async def list_requests(request: Request, fmt: str = "json") -> Response:
    on_behalf(request, "read", "read reports")
    desk, where, params = _desk(request), tenant(request), request.query_params

    def work() -> list[dict[str, Any]]:
        locale = _locale(request)
        return [desk.view(d, locale) for d in desk.listing(where, params)]

    return await _answer(fmt, "service_requests", work)


@router.get("/requests/{rid}.{fmt}", summary="One report, as json or xml")
async def get_request(request: Request, rid: str, fmt: str) -> Response:
    on_behalf(request, "read", "read reports")
    desk, where = _desk(request), tenant(request)
    return await _answer(fmt, "service_requests", lambda: [
        desk.view(desk.get(where, rid), _locale(request))])


@router.get("/requests/{rid}", summary="One report (JSON)")
async def get_request_json(request: Request, rid: str) -> Response:
    return await get_request(request, rid, "json")


@router.get("/tokens/{token}.{fmt}", summary="The report a token stands for")
async def request_by_token(request: Request, token: str, fmt: str) -> Response:
    on_behalf(request, "read", "read reports")
    desk, where = _desk(request), tenant(request)
    return await _answer(fmt, "service_requests", lambda: [
        {"service_request_id": desk.by_token(where, token), "token": token}])


@router.get("/tokens/{token}", summary="The report a token stands for (JSON)")
async def request_by_token_json(request: Request, token: str) -> Response:
    return await request_by_token(request, token, "json")


@officials.get("/service-requests/{rid}/reporter",
               summary="Who made a report (officials only; every read is logged)")
async def reporter(request: Request, rid: str) -> Response:
    official(request, "read-personal")
    found = await run_in_threadpool(_desk(request).reporter, tenant(request), rid)
    return json_response(found, headers={"Cache-Control": "no-store"})


@officials.delete("/service-requests/{rid}/reporter", status_code=204,
                  summary="Forget who made a report, on their request (officials only)")
async def forget_reporter(request: Request, rid: str) -> Response:
    official(request, "erase-personal")
    if not await run_in_threadpool(_desk(request).erase_reporter, tenant(request), rid):
        raise ResourceNotFound(f"Report {rid} holds no personal data (any more)")
    return Response(status_code=204)


# -- plumbing ---------------------------------------------------------------------------


def _form(ctype: str, raw: bytes) -> dict[str, list[str]]:
    if ctype != FORM:
        raise UnsupportedMediaType(f"Open311 reports are posted as {FORM}")
    if len(raw) > MAX_FORM:
        raise TooLarge(f"A report's form is at most {MAX_FORM} bytes; photos go by "
                       "media_url (upload them to /citizen/media)")
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                        max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequestData(f"The form is not UTF-8 form encoding: {exc}") from None


def client_of(request: Request, given: str | None) -> str:
    """Who is reporting, for the hourly limits: a known app's API key, or the address."""
    if given:
        known = listed(request.app.state.settings.open311_api_keys)
        number = next((n for n, k in enumerate(known, 1) if hmac.compare_digest(given, k)),
                      None)
        if number is None:
            raise Forbidden("Unknown api_key; leave it out to report without one")
        audit.set_actor(f"app#{number}")
        return f"key:{given}"
    return f"address:{request.client.host if request.client else '?'}"
