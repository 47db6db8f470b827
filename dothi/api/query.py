"""Query parameters (GET /entities) and Query bodies (POST /entityOperations/query) into
an ``EntityQuery`` plus ``RenderOptions`` (clauses 5.7.2, 6.4.3.2, 5.2.23)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dothi.api.http import bool_param, int_param, split_list
from dothi.errors import BadRequestData, TooManyResults
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import compile_pattern, parse_q, parse_scope_q
from dothi.ngsild.render import RenderOptions, parse_lang, parse_options
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.settings import Settings
from dothi.store.base import EntityQuery, Selector


@dataclass
class ParsedQuery:
    query: EntityQuery
    render: RenderOptions
    geometry_property: str


def _checked_pattern(pattern: str) -> str:
    compile_pattern(pattern)  # a bad regular expression is the client's error, said now
    return pattern


def render_options(params: Mapping[str, Any], ctx: ActiveContext) -> RenderOptions:
    fmt, sys_attrs = parse_options(params.get("options"), params.get("format"))
    attrs = split_list(params.get("attrs"))
    pick = split_list(params.get("pick"))
    omit = split_list(params.get("omit"))
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    return RenderOptions(
        fmt=fmt,
        sys_attrs=sys_attrs,
        attrs=frozenset(ctx.expand(a) for a in attrs) if attrs else None,
        pick=frozenset(pick) if pick else None,
        omit=frozenset(omit) if omit else None,
        lang=parse_lang(params.get("lang")),
    )


def from_params(params: Mapping[str, Any], ctx: ActiveContext, settings: Settings) -> ParsedQuery:
    types = params.get("type")
    ids = split_list(params.get("id"))
    id_pattern = params.get("idPattern")
    attrs = split_list(params.get("attrs"))
    q = params.get("q")
    scope_q = params.get("scopeQ")
    georel = params.get("georel")
    has_geo = any(params.get(k) is not None for k in ("georel", "geometry", "coordinates"))
    local = bool_param(params.get("local"), "local")
    if not (types or ids or id_pattern or attrs or q or scope_q or has_geo or local):
        raise BadRequestData(
            "Say which entities: give at least one of type, id, idPattern, attrs, q, geoQ, "
            "scopeQ or local=true"
        )
    selector = Selector(
        types=parse_type_expr(types, ctx.expand) if types else None,
        ids=ids,
        id_pattern=_checked_pattern(id_pattern) if id_pattern else None,
    )
    geo_query = parse_geoquery(
        georel, params.get("geometry"), params.get("coordinates"), params.get("geoproperty")
    ) if has_geo else None
    return _finish(params, ctx, settings, [selector], attrs, q, scope_q, geo_query,
                   params.get("geoproperty"))


def from_body(body: Any, ctx: ActiveContext, settings: Settings,
              params: Mapping[str, Any]) -> ParsedQuery:
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise BadRequestData('A query body must be a JSON object with "type": "Query"')
    selectors: list[Selector] = []
    for sel in body.get("entities") or []:
        if not isinstance(sel, dict):
            raise BadRequestData("entities must be an array of EntitySelector objects")
        t = sel.get("type")
        if t is not None and not isinstance(t, str):
            raise BadRequestData("EntitySelector type must be a string")
        eid = sel.get("id")
        ids = eid if isinstance(eid, list) else ([eid] if eid else None)
        pattern = sel.get("idPattern")
        selectors.append(Selector(
            types=parse_type_expr(t, ctx.expand) if t else None,
            ids=ids,
            id_pattern=_checked_pattern(pattern) if pattern else None,
        ))
    attrs = body.get("attrs")
    if attrs is not None and (not isinstance(attrs, list) or
                              not all(isinstance(a, str) for a in attrs)):
        raise BadRequestData("attrs must be an array of attribute names")
    geo = body.get("geoQ")
    geo_query = None
    geoproperty = None
    if geo is not None:
        if not isinstance(geo, dict):
            raise BadRequestData("geoQ must be an object")
        geoproperty = geo.get("geoproperty")
        geo_query = parse_geoquery(
            geo.get("georel"), geo.get("geometry"), geo.get("coordinates"), geoproperty
        )
    q = body.get("q")
    scope_q = body.get("scopeQ")
    if not (selectors or attrs or q or scope_q or geo_query):
        raise BadRequestData("A query needs entities, attrs, q, geoQ or scopeQ")
    merged = dict(params)
    if body.get("lang") is not None:
        merged["lang"] = body["lang"]
    if attrs:
        merged["attrs"] = ",".join(attrs)
    return _finish(merged, ctx, settings, selectors, attrs, q, scope_q, geo_query, geoproperty)


def _finish(
    params: Mapping[str, Any], ctx: ActiveContext, settings: Settings,
    selectors: list[Selector], attrs: list[str] | None, q: str | None, scope_q: str | None,
    geo_query: Any, geoproperty: str | None,
) -> ParsedQuery:
    limit = int_param(params.get("limit"), "limit", settings.default_limit)
    offset = int_param(params.get("offset"), "offset", 0)
    count = bool_param(params.get("count"), "count")
    if limit > settings.max_limit:
        raise TooManyResults(f"limit may be at most {settings.max_limit}")
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    if q is not None and not isinstance(q, str):
        raise BadRequestData("q must be a string")
    if scope_q is not None and not isinstance(scope_q, str):
        raise BadRequestData("scopeQ must be a string")
    query = EntityQuery(
        selectors=selectors,
        q=parse_q(q) if q else None,
        scope_q=parse_scope_q(scope_q) if scope_q else None,
        geo=geo_query,
        geo_attr=ctx.expand(geoproperty or "location"),
        attrs_any=[ctx.expand(a) for a in attrs] if attrs else None,
        expand=ctx.expand,
        limit=limit,
        offset=offset,
        count=count,
    )
    geometry_property = params.get("geometryProperty") or "location"
    return ParsedQuery(query, render_options(params, ctx), ctx.expand(geometry_property))
