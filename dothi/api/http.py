"""HTTP plumbing shared by the NGSI-LD routers: tenants, @context negotiation, bodies,
content types and responses (clause 6.3)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, get_route_path
from starlette.types import Scope

from dothi.auth import access as auth
from dothi.broker.broker import Broker
from dothi.broker.forwarding import Forward
from dothi.errors import (
    BadRequestData,
    Forbidden,
    InvalidRequest,
    NotAcceptable,
    NotAuthenticated,
    TooLarge,
    UnsupportedMediaType,
)
from dothi.ngsild.context import CORE_CONTEXT_URL, ActiveContext
from dothi.store.base import DEFAULT_TENANT

JSONLD_REL = "http://www.w3.org/ns/json-ld#context"
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"


PROBLEM_SCHEMA = {"type": "object", "properties": {
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
    "detail": {"type": "string"}}, "required": ["type", "title"]}
# What any route may answer besides its own success: NGSI-LD problem details (clause
# 5.5.2), documented in the OpenAPI description so that clients (and Schemathesis) know.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {
        "application/problem+json": {"schema": PROBLEM_SCHEMA}}}
    for status, description in (
        (400, "Bad request (BadRequestData, InvalidRequest)"),
        (401, "No credentials, or credentials that are not valid"),
        (403, "Credentials that do not allow this, or too many results"),
        (404, "No such resource (ResourceNotFound)"),
        (405, "Method not allowed (the Allow header lists the allowed ones)"),
        (406, "Not acceptable"), (409, "Already exists, or a conflict"),
        (413, "Too large"), (415, "Unsupported media type"),
        (422, "Operation not supported"), (429, "Too many requests"),
        (500, "Internal error"), (501, "Not implemented"),
        (503, "Store or @context unavailable"), (508, "Loop detected"))}


class Router(APIRouter):
    """An APIRouter that turns away a path outside its prefix before trying its routes,
    and documents the problem details any of its routes may answer.

    FastAPI (0.165) tries an app's included routers one after the other, and each tries
    every one of its routes, at a few microseconds each: a request for the last routers
    (OGC, Open311, KPI) spent about 170 us on routing before its handler ran. Every route
    of a router starts with its prefix, so a path that does not cannot match any of them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "responses": {**PROBLEMS,
                                                    **(kwargs.get("responses") or {})}})

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.prefix and not get_route_path(scope).startswith(self.prefix):
            return Match.NONE, {}
        return super().matches(scope)


def broker(request: Request) -> Broker:
    return request.app.state.broker  # type: ignore[no-any-return]


def forward_of(request: Request) -> Forward:
    """What a request to be forwarded to context sources carries on."""
    return Forward(params=dict(request.query_params),
                   headers={k.lower(): v for k, v in request.headers.items()})


def tenant(request: Request) -> str:
    return tenant_named(request.headers.get("ngsild-tenant"))


def tenant_named(value: str | None) -> str:
    if value is None or value == "":
        return DEFAULT_TENANT
    if not re.fullmatch(r"[A-Za-z0-9_:\-.]+", value):
        raise BadRequestData(f"Invalid NGSILD-Tenant {value!r}")
    return value


def link_context(request: Request) -> str | None:
    """The @context URL of a JSON-LD Link header, if any (clause 6.3.5)."""
    found: list[str] = []
    for header in request.headers.getlist("link"):
        for match in _LINK.finditer(header):
            if JSONLD_REL in match.group(2):
                found.append(match.group(1).strip())
    if len(found) > 1:
        raise BadRequestData("Only one JSON-LD @context Link header may be given")
    return found[0] if found else None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(
    request: Request, *, allow_merge_patch: bool = False
) -> tuple[Any, ActiveContext, Any]:
    """(parsed body, ActiveContext, context value as given) for a JSON write request."""
    ctype = media_type(request)
    allowed = {JSON, JSONLD} | ({MERGE_PATCH} if allow_merge_patch else set())
    if ctype not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join(sorted(allowed))}, got {ctype or 'none'!r}"
        )
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The payload is larger than {limit} bytes")
    raw = await request.body()
    if len(raw) > limit:
        raise TooLarge(f"The payload is larger than {limit} bytes")
    if not raw:
        raise InvalidRequest("The request has no body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The payload is not valid JSON: {exc}") from None
    b = broker(request)
    if ctype == JSONLD:
        value = _body_context(body)
        return body, await _activate(b, value), value
    if _has_context(body):
        raise BadRequestData("A JSON-LD @context in the body needs Content-Type "
                             "application/ld+json")
    value = link_context(request)
    return body, await _activate(b, value), value


def _has_context(body: Any) -> bool:
    if isinstance(body, dict):
        return "@context" in body
    if isinstance(body, list):
        return any(isinstance(x, dict) and "@context" in x for x in body)
    return False


def _body_context(body: Any) -> Any:
    if isinstance(body, dict):
        if "@context" not in body:
            raise BadRequestData("An application/ld+json payload must carry an @context")
        return body["@context"]
    if isinstance(body, list):
        # Batch payloads: every entity carries its own @context; the per-item contexts
        # are resolved by the batch router.
        return None
    raise BadRequestData("The payload must be a JSON object or array")


async def _activate(b: Broker, value: Any) -> ActiveContext:
    # Resolving may read the store or the network: off the event loop.
    return await run_in_threadpool(b.resolver.active, value)


async def request_context(request: Request) -> tuple[ActiveContext, str | None]:
    """The context for a GET/DELETE request: only the Link header."""
    value = link_context(request)
    return await _activate(broker(request), value), value


def accepted(request: Request, *, geo: bool = True) -> str:
    """Negotiate the response media type (application/json unless asked otherwise)."""
    header = request.headers.get("accept", "")
    if not header.strip():
        return JSON
    best: tuple[float, str] | None = None
    for part in header.split(","):
        bits = [b.strip() for b in part.split(";")]
        mtype = bits[0].lower()
        q = 1.0
        for b in bits[1:]:
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        candidates = {
            JSON: JSON, JSONLD: JSONLD, "*/*": JSON, "application/*": JSON,
        }
        if geo:
            candidates[GEOJSON] = GEOJSON
        chosen = candidates.get(mtype)
        if chosen and q > 0 and (best is None or q > best[0]):
            best = (q, chosen)
    if best is None:
        raise NotAcceptable(f"Cannot produce any of {header!r}")
    return best[1]


def context_link(url: str | None) -> str:
    return f'<{url or CORE_CONTEXT_URL}>; rel="{JSONLD_REL}"; type="application/ld+json"'


def json_response(
    content: Any,
    *,
    status: int = 200,
    mtype: str = JSON,
    context_url: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render with the @context where the media type wants it (body or Link header)."""
    hdrs = dict(headers or {})
    if mtype in (JSON, GEOJSON):
        link_url = context_url if isinstance(context_url, str) else None
        hdrs["Link"] = context_link(link_url)
    return Response(orjson.dumps(content), status_code=status, media_type=mtype, headers=hdrs)


def with_context(entity: dict, context_value: Any) -> dict:
    return {**entity, "@context": context_value if context_value is not None else CORE_CONTEXT_URL}


def bool_param(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value in ("true", "false"):
        return value == "true"
    raise BadRequestData(f"{name} must be true or false")


def int_param(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequestData(f"{name} must be an integer, got {value!r}") from None
    if number < 0:
        raise BadRequestData(f"{name} must not be negative")
    return number


def split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise BadRequestData("An empty list was given")
    return items


def require(request: Request, action: str, what: str) -> auth.Access:
    """Refuse the request unless its principal may take ``action`` (``dothi.auth``) in
    its tenant: 401 without a credential, 403 with one that does not allow it."""
    access = auth.current()
    access.need(action, what, tenant(request))
    return access


def on_behalf(request: Request, action: str, what: str) -> auth.Access:
    """``require``, then the rest of the request runs with the platform's own access: for
    the platform's APIs whose own code decides what the action may touch (a citizen's
    report opens an incident the citizen could not write). The audit log still names who
    asked."""
    access = require(request, action, what)
    auth.set_current(auth.SYSTEM)
    return access


def official(request: Request, action: str = "enter") -> str:
    """For an action done in someone's name (an indicator's value, a register's record, a
    review): who it is, as the audit log names them (``user:lan``, ``official#1``). A
    request without a credential is refused even where anonymous requests may do
    everything, for there would be no one to name."""
    access = auth.current()
    if not access.principal.identified:
        raise NotAuthenticated("Sign in to act in your name (Authorization: Bearer <token "
                               "or key>)")
    on_behalf(request, action, _IN_ONES_NAME.get(action, action))
    return access.principal.subject


_IN_ONES_NAME = {"enter": "act as an official", "assess": "assess",
                 "read-personal": "see who made a report or a comment",
                 "erase-personal": "erase who made a report or a comment"}


def for_unit(request: Request, unit: str, action: str = "programme") -> str:
    """As ``official``, for what a reporting unit of the national programme sends (a
    province, a ministry): a principal with an agency acts only for its own unit, unless
    it coordinates the programme."""
    access = auth.current()
    who = official(request, action)
    agency = access.principal.agency
    if agency is not None and agency != unit and not access.may("coordinate"):
        raise Forbidden(f"{who} reports for {agency}, not for {unit}")
    return who


def assessor(request: Request) -> str:
    """As ``official``, for the assessors who review cities' self-assessments and
    certify products."""
    return official(request, "assess")


async def json_object(request: Request) -> dict[str, Any]:
    """The body of a request to one of the platform's own APIs: one JSON object."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestData("The body must be a JSON object")
    return body
