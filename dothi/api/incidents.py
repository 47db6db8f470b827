"""The operations centre over HTTP (``/ioc``): incidents (open, list, read, move, comment,
attach) and the rules that open them.
Incidents are NGSI-LD entities too (type ``Incident``): the NGSI-LD API reads them, the
temporal API gives their history and subscriptions watch them; these endpoints are the
only way to change their workflow, so no move skips a step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dothi.api.http import (
    Router,
    broker,
    int_param,
    json_object,
    json_response,
    require,
    tenant,
)
from dothi.auth import access as auth
from dothi.errors import BadRequestData, ResourceNotFound, only_members
from dothi.ioc.aqi import METHOD, round_index
from dothi.ioc.cap import atom_feed, to_xml
from dothi.ioc.incidents import IncidentDesk
from dothi.ioc.summary import summary
from dothi.ngsild import qlang
from dothi.ngsild.temporal import ms_to_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector

router = Router(prefix="/ioc", tags=["Operations centre"])


def _desk(request: Request) -> IncidentDesk:
    return request.app.state.ioc.desk  # type: ignore[no-any-return]


def _known(body: dict[str, Any], allowed: set[str], texts: set[str]) -> None:
    """Only the ``allowed`` members, and those of ``texts`` strings when given."""
    only_members(body, allowed, f"; allowed: {sorted(allowed)}")
    for name in texts:
        if name in body and not isinstance(body[name], str):
            raise BadRequestData(f"{name} must be a string")


@router.get("/workflow", summary="Statuses, moves, agencies, severities and categories")
async def workflow(request: Request) -> Response:
    require(request, "read", "read the workflow")
    flow = _desk(request).flow
    return json_response({"statuses": flow.statuses, "moves": flow.moves,
                          "open": sorted(flow.open), "agencies": flow.agencies,
                          "severities": flow.severities, "categories": flow.categories})


@router.post("/incidents", summary="Open an incident (or count one more occurrence)")
async def open_incident(request: Request) -> Response:
    require(request, "handle-incidents", "open incidents")
    body = await json_object(request)
    texts = {"title", "category", "severity", "description", "subCategory", "ward", "by",
             "dedupKey"}
    _known(body, texts | {"location", "related"}, texts)
    related = body.get("related")
    if related is not None and (not isinstance(related, list)
                                or not all(isinstance(r, str) for r in related)):
        raise BadRequestData("related is a list of entity ids")
    eid, created = await run_in_threadpool(
        _desk(request).open, tenant(request), title=body.get("title"),
        category=body.get("category"), severity=body.get("severity"),
        description=body.get("description"), sub_category=body.get("subCategory"),
        location=body.get("location"), ward=body.get("ward"), by=_by(body),
        related=related, dedup_key=body.get("dedupKey"))
    return json_response({"id": eid, "created": created}, status=201 if created else 200,
                         headers={"Location": f"/ioc/incidents/{eid}"})


@router.get("/incidents", summary="Incidents, newest first, by status, category, ...")
async def list_incidents(request: Request) -> Response:
    access = require(request, "read-internal", "read incidents")
    desk = _desk(request)
    flow = desk.flow
    params = request.query_params
    terms = []
    for name, vocabulary, attr in (("status", flow.statuses, "status"),
                                   ("category", flow.categories, "category"),
                                   ("severity", flow.severities, "severity"),
                                   ("agency", flow.agencies, "assignedAgency")):
        wanted = [v for v in (params.get(name) or "").split(",") if v]
        for value in wanted:
            if value not in vocabulary:
                raise BadRequestData(f"{name} {value!r} is not one of {sorted(vocabulary)}")
        if wanted:
            terms.append("(" + "|".join(f'{attr}=="{v}"' for v in wanted) + ")")
    if params.get("ward"):
        terms.append(f"ward=={qlang.quote(params['ward'])}")
    limit = int_param(params.get("limit"), "limit", 100)
    if not 1 <= limit <= 1000:
        raise BadRequestData("limit must be 1..1000")
    docs = [d for d in await run_in_threadpool(desk.incidents, tenant(request),
                                               ";".join(terms) or "status")
            if access.readable(d)]
    docs.sort(key=lambda d: str(desk.value(d, "dateIssued")), reverse=True)
    return json_response([desk.view(d) for d in docs[:limit]],
                         headers={"NGSILD-Results-Count": str(len(docs))})


@router.get("/incidents/{eid}", summary="One incident")
async def get_incident(request: Request, eid: str) -> Response:
    access = require(request, "read-internal", "read incidents")
    b = broker(request)
    doc = await run_in_threadpool(b.store.get, tenant(request), eid)
    if doc is None or b.resolver.core.expand("Incident") not in doc.get("type", ()) \
            or not access.readable(doc):
        raise ResourceNotFound(f"No incident {eid}")
    return json_response(_desk(request).view(doc))


@router.post("/incidents/{eid}/status", summary="Move an incident in its workflow")
async def move(request: Request, eid: str) -> Response:
    require(request, "handle-incidents", "move incidents")
    body = await json_object(request)
    _known(body, {"status", "by", "agency", "note"}, {"status", "by", "agency", "note"})
    if "status" not in body:
        raise BadRequestData("status is required")
    left = await run_in_threadpool(_desk(request).move, tenant(request), eid,
                                   body["status"], by=_by(body),
                                   agency=body.get("agency"), note=body.get("note"))
    return json_response({"id": eid, "from": left, "status": body["status"]})


@router.post("/incidents/{eid}/comments", status_code=201, summary="Comment on an incident")
async def comment(request: Request, eid: str) -> Response:
    require(request, "handle-incidents", "comment incidents")
    body = await json_object(request)
    _known(body, {"text", "by"}, {"text", "by"})
    await run_in_threadpool(_desk(request).comment, tenant(request), eid, body.get("text"),
                            by=_by(body))
    return Response(status_code=201)


@router.post("/incidents/{eid}/attachments", status_code=201,
             summary="Attach a document or photo (by URL) to an incident")
async def attach(request: Request, eid: str) -> Response:
    require(request, "handle-incidents", "attach to incidents")
    body = await json_object(request)
    _known(body, {"url", "title", "by"}, {"url", "title", "by"})
    await run_in_threadpool(_desk(request).attach, tenant(request), eid, body.get("url"),
                            title=body.get("title"), by=_by(body))
    return Response(status_code=201)


@router.get("/rules", summary="The rules: shipped packs and those added here")
async def list_rules(request: Request) -> Response:
    require(request, "read-internal", "read the rules")
    engine = request.app.state.ioc.engine
    return json_response([{**rule.source, "pack": rule.pack} for rule in engine.rules()])


@router.post("/rules", status_code=201, summary="Add (or replace) a rule")
async def add_rule(request: Request) -> Response:
    require(request, "manage", "add rules")
    rule = await run_in_threadpool(request.app.state.ioc.engine.add, await json_object(request))
    return json_response({"id": rule.id}, status=201)


@router.delete("/rules/{rule_id}", status_code=204, summary="Remove a rule added here")
async def remove_rule(request: Request, rule_id: str) -> Response:
    require(request, "manage", "remove rules")
    await run_in_threadpool(request.app.state.ioc.engine.remove, rule_id)
    return Response(status_code=204)


def _by(body: dict[str, Any]) -> Any:
    """Who does it: the signed-in person or key (the body cannot say otherwise); without
    a credential, whoever the body names."""
    principal = auth.current().principal
    return principal.subject if principal.identified else body.get("by")


# -- public warnings (CAP 1.2) --------------------------------------------------------------

CAP_XML = "application/cap+xml"


def _incident_for_warning(request: Request, eid: Any) -> dict[str, Any]:
    """The parts of an incident a warning takes by default."""
    b = broker(request)
    doc = b.store.get(tenant(request), eid) if isinstance(eid, str) else None
    desk = _desk(request)
    if doc is None or b.resolver.core.expand("Incident") not in doc.get("type", ()):
        raise BadRequestData(f"incident {eid!r} is not an incident")
    title = desk.value(doc, "name")
    return {"id": eid, "category": desk.value(doc, "category"),
            "severity": desk.value(doc, "severity"),
            "event": {"vi": title, "en": desk.value(doc, "description") or title},
            "areaDesc": desk.value(doc, "ward") or title,
            "location": desk.value(doc, "location")}


@router.post("/warnings", status_code=201, summary="Issue a public warning (CAP 1.2)")
async def issue_warning(request: Request) -> Response:
    require(request, "warn", "issue warnings")
    body = await json_object(request)
    warnings = request.app.state.ioc.warnings

    def issue() -> str:
        incident = None
        if "incident" in body:
            incident = _incident_for_warning(request, body["incident"])
        return str(warnings.issue(tenant(request), body, incident=incident))

    identifier = await run_in_threadpool(issue)
    return json_response({"identifier": identifier}, status=201,
                         headers={"Location": f"/ioc/warnings/{identifier}.xml"})


@router.post("/warnings/{identifier}/update", status_code=201,
             summary="Update a warning (a new message that references it)")
async def update_warning(request: Request, identifier: str) -> Response:
    require(request, "warn", "update warnings")
    body = await json_object(request)
    new = await run_in_threadpool(request.app.state.ioc.warnings.update, tenant(request),
                                  identifier, body)
    return json_response({"identifier": new}, status=201,
                         headers={"Location": f"/ioc/warnings/{new}.xml"})


@router.post("/warnings/{identifier}/cancel", status_code=201, summary="Cancel a warning")
async def cancel_warning(request: Request, identifier: str) -> Response:
    require(request, "warn", "cancel warnings")
    body = await json_object(request)
    _known(body, {"note"}, {"note"})
    new = await run_in_threadpool(request.app.state.ioc.warnings.cancel, tenant(request),
                                  identifier, body.get("note"))
    return json_response({"identifier": new}, status=201,
                         headers={"Location": f"/ioc/warnings/{new}.xml"})


@router.get("/warnings", summary="The warnings in force")
async def current_warnings(request: Request) -> Response:
    require(request, "read", "read warnings")
    messages = await run_in_threadpool(request.app.state.ioc.warnings.current,
                                       tenant(request))
    return json_response([{k: v for k, v in m.items() if k != "input"} for m in messages])


@router.get("/warnings/feed.atom", summary="The warnings in force, as an Atom feed",
            responses={200: {"content": {"application/atom+xml": {}}}})
async def warnings_feed(request: Request) -> Response:
    require(request, "read", "read warnings")
    messages = await run_in_threadpool(request.app.state.ioc.warnings.current,
                                       tenant(request))
    base = str(request.base_url).rstrip("/")
    return Response(atom_feed(messages, base, datetime.now(UTC)),
                    media_type="application/atom+xml")


@router.get("/warnings/{identifier}.xml", summary="One warning as CAP 1.2 XML")
async def warning_xml(request: Request, identifier: str) -> Response:
    require(request, "read", "read warnings")
    message = await run_in_threadpool(request.app.state.ioc.warnings.get, tenant(request),
                                      identifier)
    return Response(to_xml(message), media_type=CAP_XML)


@router.get("/aqi", summary="Each air-quality station's hourly VN_AQI now")
async def air_quality(request: Request) -> Response:
    """Computed from each station's history now (the same calculation that writes
    ``airQualityIndex`` every ``DOTHI_IOC_AQI_INTERVAL``): the index, its band, the
    dominant parameter and every parameter's sub-index."""
    require(request, "read", "read the air quality")
    keeper = request.app.state.ioc.aqi
    b = broker(request)
    ctx = b.resolver.core

    def compute() -> list[dict[str, Any]]:
        query = EntityQuery(selectors=[Selector(types=parse_type_expr(
            "AirQualityObserved", ctx.expand))], expand=ctx.expand, limit=10_000)
        out = []
        for doc in b.store.query(tenant(request), query)[0]:
            found = keeper.station(tenant(request), doc)
            if found is None:
                continue
            index, observed = found
            level = index.level
            out.append({"id": doc["id"], "aqi": index.aqi,
                        "level": {"name": level.name, "vi": level.vi, "en": level.en,
                                  "rgb": list(level.rgb), "health": dict(level.health)},
                        "dominantPollutant": index.dominant,
                        "subIndices": {k: round_index(v) for k, v in index.sub_indices.items()},
                        "observedAt": ms_to_iso(observed), "method": METHOD})
        return sorted(out, key=lambda s: -s["aqi"])

    return json_response(await run_in_threadpool(compute))


@router.get("/summary", summary="The figures of the dashboard's tiles")
async def ioc_summary(request: Request) -> Response:
    require(request, "read-internal", "read the operations summary")
    ioc = request.app.state.ioc
    figures = await run_in_threadpool(summary, broker(request), ioc.desk, ioc.warnings,
                                      tenant(request), ioc.engine.dropped)
    return json_response(figures)
