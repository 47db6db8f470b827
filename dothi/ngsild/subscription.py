"""Subscriptions (clauses 5.2.12, 5.2.14, 5.8, 5.11): validation, the stored form, what a
change means for a subscription, and rendering back to clients.

The stored form is the subscription as its creator wrote it (names compact, as in its
``@context``) with the creation ``@context`` beside it under ``"@context"``: names are
expanded with that context when the subscription is compiled for matching, and compacted
with the reader's context when it is rendered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from dothi.errors import BadRequestData, TooComplexQuery
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.entity import is_uri
from dothi.ngsild.geo import GeoQuery, parse_geoquery
from dothi.ngsild.qlang import And, compile_pattern, parse_q, parse_scope_q
from dothi.ngsild.render import FORMATS
from dothi.ngsild.temporal import iso_to_ms
from dothi.ngsild.timeutil import normalize_datetime
from dothi.ngsild.typeexpr import TypeExpr, parse_type_expr
from dothi.store.base import SubscriptionStats

TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted",
            "attributeCreated", "attributeUpdated", "attributeDeleted")
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
# Where a stored subscription keeps who made it, when their access is limited
# (dothi.auth): never rendered, never writable by a client.
READER = "dothi:reader"
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
SCHEMES = ("http", "https", "mqtt", "mqtts")
# Members a client may write; the rest of a rendered subscription is the broker's.
WRITABLE = frozenset({
    "id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
    "notificationTrigger", "timeInterval", "q", "geoQ", "csf", "scopeQ", "lang", "isActive",
    "notification", "expiresAt", "throttling", "jsonldContext", "datasetId",
})
_NOTIFICATION_WRITABLE = frozenset({"attributes", "sysAttrs", "format", "showChanges",
                                    "endpoint", "pick", "omit"})
_BROKER_NOTIFICATION = frozenset({"status", "timesSent", "timesFailed", "lastNotification",
                                  "lastSuccess", "lastFailure"})


def new_id() -> str:
    return f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"


def validate(body: Any, context: Any, now: str) -> dict:
    """The stored form of a subscription body, or BadRequestData saying what is wrong."""
    if not isinstance(body, dict):
        raise BadRequestData("A subscription must be a JSON object")
    doc = {k: v for k, v in body.items() if k != "@context"}
    unknown = set(doc) - WRITABLE - {"status", "createdAt", "modifiedAt"}
    if unknown:
        raise BadRequestData(f"Unknown subscription member(s): {', '.join(sorted(unknown))}")
    for key in ("status", "createdAt", "modifiedAt"):
        doc.pop(key, None)  # the broker's own; ignored as other brokers do
    if doc.get("type") != "Subscription":
        raise BadRequestData('A subscription needs "type": "Subscription"')
    if "id" in doc:
        if not is_uri(doc["id"]):
            raise BadRequestData(f"Subscription id must be a URI: {doc['id']!r}")
    else:
        doc["id"] = new_id()
    _check(doc, now)
    doc["@context"] = context
    return doc


def patch(stored: dict, fragment: Any, request_ctx: ActiveContext,
          stored_ctx: ActiveContext, now: str) -> dict:
    """Apply an update fragment (clause 5.8.2): the members given replace the stored ones,
    ``notification`` member by member; null removes."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("An update must be a non-empty JSON object")
    fragment = {k: v for k, v in fragment.items() if k != "@context"}
    if "id" in fragment and fragment["id"] != stored["id"]:
        raise BadRequestData("A subscription's id cannot be changed")
    if "type" in fragment and fragment["type"] != "Subscription":
        raise BadRequestData('A subscription\'s type is "Subscription"')
    unknown = set(fragment) - WRITABLE
    if unknown:
        raise BadRequestData(f"Unknown subscription member(s): {', '.join(sorted(unknown))}")
    # Names in the fragment are in the request's context; the stored ones in the creator's.
    fragment = _recompact(fragment, request_ctx, stored_ctx)
    doc = {k: v for k, v in stored.items() if k != "@context"}
    for key, value in fragment.items():
        if key == "notification" and isinstance(value, dict) and isinstance(doc.get(key), dict):
            merged = {**doc[key], **value}
            doc[key] = {k: v for k, v in merged.items() if v is not None}
        elif value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    _check(doc, now, expiry_may_pass="expiresAt" not in fragment)
    doc["@context"] = stored.get("@context")
    return doc


def _check(doc: dict, now: str, *, expiry_may_pass: bool = False) -> None:
    """Every rule of a stored subscription; normalizes timestamps in place."""
    entities = doc.get("entities")
    watched = doc.get("watchedAttributes")
    if entities is not None:
        if not isinstance(entities, list) or not entities:
            raise BadRequestData("entities must be a non-empty array of EntitySelectors")
        for sel in entities:
            _check_selector(sel)
    if watched is not None:
        _check_names(watched, "watchedAttributes")
    interval = doc.get("timeInterval")
    if entities is None and watched is None:
        raise BadRequestData("A subscription needs entities or watchedAttributes")
    if interval is not None:
        _positive(interval, "timeInterval")
        if watched is not None:
            raise BadRequestData("timeInterval and watchedAttributes cannot be used together")
        if doc.get("throttling") is not None:
            raise BadRequestData("timeInterval and throttling cannot be used together")
    if doc.get("throttling") is not None:
        _positive(doc["throttling"], "throttling")
    triggers = doc.get("notificationTrigger")
    if triggers is not None:
        if not isinstance(triggers, list) or not triggers or \
                any(t not in TRIGGERS for t in triggers):
            raise BadRequestData(f"notificationTrigger must be a non-empty array of "
                                 f"{', '.join(TRIGGERS)}")
    for key, parser in (("q", parse_q), ("scopeQ", parse_scope_q), ("csf", parse_q)):
        if doc.get(key) is not None:
            if not isinstance(doc[key], str):
                raise BadRequestData(f"{key} must be a string")
            parser(unquote(doc[key]))
    if doc.get("datasetId") is not None:
        ids = doc["datasetId"]
        if not isinstance(ids, list) or not all(is_uri(i) or i == "@none" for i in ids):
            raise BadRequestData("datasetId must be an array of URIs")
    if doc.get("geoQ") is not None:
        _geo(doc["geoQ"])
    if "isActive" in doc and not isinstance(doc["isActive"], bool):
        raise BadRequestData("isActive must be true or false")
    for key in ("subscriptionName", "description", "lang"):
        if key in doc and not isinstance(doc[key], str):
            raise BadRequestData(f"{key} must be a string")
    if doc.get("jsonldContext") is not None and not is_uri(doc["jsonldContext"]):
        raise BadRequestData("jsonldContext must be a URI")
    if doc.get("expiresAt") is not None:
        doc["expiresAt"] = normalize_datetime(doc["expiresAt"], "expiresAt")
        if doc["expiresAt"] <= now and not expiry_may_pass:
            raise BadRequestData("expiresAt must be in the future")
    _check_notification(doc.get("notification"))


def _check_selector(sel: Any) -> None:
    if not isinstance(sel, dict):
        raise BadRequestData("Each EntitySelector must be a JSON object")
    if not isinstance(sel.get("type"), str) or not sel["type"]:
        raise BadRequestData("Each EntitySelector needs a type")
    parse_type_expr(sel["type"], lambda name: name)
    if "id" in sel and not is_uri(sel["id"]):
        raise BadRequestData(f"EntitySelector id must be a URI: {sel['id']!r}")
    if "idPattern" in sel:
        if not isinstance(sel["idPattern"], str):
            raise BadRequestData("idPattern must be a string")
        compile_pattern(sel["idPattern"])


def _check_names(names: Any, what: str) -> None:
    if not isinstance(names, list) or not names or \
            not all(isinstance(n, str) and n for n in names):
        raise BadRequestData(f"{what} must be a non-empty array of attribute names")


def _positive(value: Any, what: str, unit: str = "seconds") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BadRequestData(f"{what} must be a number of {unit} greater than 0")


def _geo(value: Any) -> GeoQuery:
    if not isinstance(value, dict):
        raise BadRequestData("geoQ must be an object")
    geoproperty = value.get("geoproperty")
    query = parse_geoquery(value.get("georel"), value.get("geometry"),
                           value.get("coordinates"), geoproperty)
    if query is None:
        raise BadRequestData("geoQ needs georel, geometry and coordinates")
    return query


def _check_notification(value: Any) -> None:
    if not isinstance(value, dict):
        raise BadRequestData("A subscription needs a notification object")
    unknown = set(value) - _NOTIFICATION_WRITABLE - _BROKER_NOTIFICATION
    if unknown:
        raise BadRequestData(f"Unknown notification member(s): {', '.join(sorted(unknown))}")
    for key in _BROKER_NOTIFICATION:
        value.pop(key, None)
    for key in ("attributes", "pick", "omit"):
        if value.get(key) is not None:
            _check_names(value[key], f"notification.{key}")
    given = [k for k in ("attributes", "pick", "omit") if value.get(k) is not None]
    if len(given) > 1:
        raise BadRequestData(f"notification.{given[0]} and notification.{given[1]} cannot be "
                             "used together")
    fmt = value.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise BadRequestData(f"notification.format must be one of {', '.join(FORMATS)}")
    if value.get("showChanges") and fmt in ("keyValues", "simplified"):
        raise BadRequestData("showChanges needs the normalized or concise format")
    for key in ("sysAttrs", "showChanges"):
        if key in value and not isinstance(value[key], bool):
            raise BadRequestData(f"notification.{key} must be true or false")
    endpoint = value.get("endpoint")
    if not isinstance(endpoint, dict):
        raise BadRequestData("notification.endpoint is required")
    uri = endpoint.get("uri")
    if not isinstance(uri, str) or not is_uri(uri) or uri.split(":", 1)[0] not in SCHEMES:
        raise BadRequestData("notification.endpoint.uri must be an http(s) or mqtt(s) URI")
    accept = endpoint.get("accept")
    if accept is not None and accept not in ACCEPTS:
        raise BadRequestData(f"notification.endpoint.accept must be one of {', '.join(ACCEPTS)}")
    for key in ("timeout", "cooldown"):
        if key in endpoint:
            _positive(endpoint[key], f"endpoint.{key}", "milliseconds")
    for key in ("receiverInfo", "notifierInfo"):
        pairs = endpoint.get(key)
        if pairs is None:
            continue
        if not isinstance(pairs, list) or not all(
                isinstance(p, dict) and isinstance(p.get("key"), str)
                and isinstance(p.get("value"), str) for p in pairs):
            raise BadRequestData(f"endpoint.{key} must be an array of key/value strings")


# -- names between contexts --------------------------------------------------------------


def _recompact(doc: dict, source: ActiveContext, target: ActiveContext) -> dict:
    """The same subscription with its attribute and type names moved from one @context to
    another (expand with ``source``, compact with ``target``)."""
    if source is target:
        return doc

    def name(n: Any) -> Any:
        return target.compact(source.expand(n)) if isinstance(n, str) else n

    def types(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        expr = parse_type_expr(text, source.expand)
        return _type_text(expr, target.compact)

    out = dict(doc)
    if isinstance(out.get("entities"), list):
        out["entities"] = [{**s, "type": types(s.get("type"))} if isinstance(s, dict) else s
                           for s in out["entities"]]
    if isinstance(out.get("watchedAttributes"), list):
        out["watchedAttributes"] = [name(n) for n in out["watchedAttributes"]]
    if isinstance(out.get("notification"), dict):
        note = dict(out["notification"])
        if isinstance(note.get("attributes"), list):
            note["attributes"] = [name(n) for n in note["attributes"]]
        out["notification"] = note
    if isinstance(out.get("geoQ"), dict) and isinstance(out["geoQ"].get("geoproperty"), str):
        out["geoQ"] = {**out["geoQ"], "geoproperty": name(out["geoQ"]["geoproperty"])}
    return out


def _type_text(expr: TypeExpr, compact: Callable[[str], str]) -> str:
    if expr.op == "type":
        return compact(expr.name)
    joiner = "|" if expr.op == "or" else ";"
    return "(" + joiner.join(_type_text(c, compact) for c in expr.children) + ")" \
        if len(expr.children) > 1 else _type_text(expr.children[0], compact)


# -- rendering ---------------------------------------------------------------------------


def status(doc: dict, now: str) -> str:
    if doc.get("expiresAt") is not None and doc["expiresAt"] <= now:
        return "expired"
    return "active" if doc.get("isActive", True) else "paused"


def render(doc: dict, stats: SubscriptionStats, stored_ctx: ActiveContext,
           ctx: ActiveContext, now: str, sys_attrs: bool) -> dict[str, Any]:
    """The subscription as its creator wrote it, names in the reader's @context, with the
    broker's members: status, the default triggers, and delivery counters once a
    notification has been attempted."""
    out = _recompact({k: v for k, v in doc.items() if k not in ("@context", "createdAt",
                                                                "modifiedAt", READER)},
                     stored_ctx, ctx)
    out["status"] = status(doc, now)
    out.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    if stats.last_notification is not None:
        note = dict(out["notification"])
        note["status"] = "failed" if stats.last_failure and (
            not stats.last_success or stats.last_failure > stats.last_success) else "ok"
        note["timesSent"] = stats.times_sent
        note["timesFailed"] = stats.times_failed
        for key, value in (("lastNotification", stats.last_notification),
                           ("lastSuccess", stats.last_success),
                           ("lastFailure", stats.last_failure)):
            if value is not None:
                note[key] = value
        out["notification"] = note
    if sys_attrs:
        for key in ("createdAt", "modifiedAt"):
            if key in doc:
                out[key] = doc[key]
    return out


# -- compiled for matching ---------------------------------------------------------------


@dataclass
class EntityFilter:
    """One EntitySelector, expanded."""

    types: TypeExpr
    id: str | None = None
    pattern: Any = None  # compiled regular expression

    def matches(self, eid: str, types: set[str]) -> bool:
        if self.id is not None and eid != self.id:
            return False
        if self.pattern is not None:
            try:
                if self.pattern.search(eid) is None:
                    return False
            except TooComplexQuery:
                return False  # a write is never refused for a subscription's pattern
        return self.types.matches(types)


@dataclass
class Compiled:
    """A subscription ready to be matched against changes and to render notifications."""

    tenant: str
    kind: str  # "entity", or "csource": matched against context source registrations
    id: str
    doc: dict
    ctx: ActiveContext
    selectors: list[EntityFilter]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    doc_filter: Callable[[dict], bool] | None  # q and scopeQ, on the stored form
    geo: GeoQuery | None
    geo_attr: str
    expires_ms: int | None
    active: bool
    attributes: frozenset[str] | None
    pick: frozenset[str] | None
    omit: frozenset[str] | None
    fmt: str
    sys_attrs: bool
    show_changes: bool
    endpoint: dict
    throttling_ms: int | None
    interval_ms: int | None
    context_value: Any = field(default=None)
    # Only these attribute instances are notified ("@none" is the default instance).
    datasets: frozenset[str] | None = None
    # The access of who made it (dothi.auth.access.Access), when limited: only what it may
    # read is notified.
    reader: Any = None

    def live(self, now_ms: int) -> bool:
        return self.active and (self.expires_ms is None or now_ms < self.expires_ms)

    def selects(self, doc: dict) -> bool:
        if self.reader is not None and not self.reader.readable(doc):
            return False
        eid = doc["id"]
        types = set(doc.get("type", ()))
        if self.selectors and not any(s.matches(eid, types) for s in self.selectors):
            return False
        if self.geo is not None:
            hit = any(inst.get("type") == "GeoProperty" and isinstance(inst.get("value"), dict)
                      and self.geo.matches(inst["value"]) for inst in doc.get(self.geo_attr, ()))
            if not hit:
                return False
        return self.doc_filter is None or self.doc_filter(doc)


def compile_subscription(
    tenant: str, kind: str, doc: dict, ctx: ActiveContext,
    make_filter: Callable[[Any, Any, Callable[[str], str]], Callable[[dict], bool]],
) -> Compiled:
    """``make_filter(q, scopeQ, expand)`` evaluates q/scopeQ on a stored document."""
    selectors = [EntityFilter(
        types=parse_type_expr(sel["type"], ctx.expand), id=sel.get("id"),
        pattern=compile_pattern(sel["idPattern"]) if sel.get("idPattern") else None,
    ) for sel in doc.get("entities") or ()]
    note = doc["notification"]
    q = parse_q(unquote(doc["q"])) if doc.get("q") else None
    if kind == "csource" and doc.get("csf"):
        # On registrations, csf tests the registration's own members, as q does.
        csf = parse_q(unquote(doc["csf"]))
        q = csf if q is None else And((q, csf))
    scope_q = parse_scope_q(unquote(doc["scopeQ"])) if doc.get("scopeQ") else None
    geo = _geo(doc["geoQ"]) if doc.get("geoQ") else None
    fmt = note.get("format", "normalized")
    return Compiled(
        tenant=tenant, kind=kind, id=doc["id"], doc=doc, ctx=ctx, selectors=selectors,
        watched=frozenset(ctx.expand(n) for n in doc["watchedAttributes"])
        if doc.get("watchedAttributes") else None,
        triggers=frozenset(doc.get("notificationTrigger") or DEFAULT_TRIGGERS),
        doc_filter=make_filter(q, scope_q, ctx.expand) if q or scope_q else None,
        geo=geo,
        geo_attr=ctx.expand((doc.get("geoQ") or {}).get("geoproperty") or "location"),
        expires_ms=iso_to_ms(doc["expiresAt"]) if doc.get("expiresAt") else None,
        active=doc.get("isActive", True),
        attributes=frozenset(ctx.expand(n) for n in note["attributes"])
        if note.get("attributes") else None,
        pick=frozenset(note["pick"]) if note.get("pick") else None,
        omit=frozenset(note["omit"]) if note.get("omit") else None,
        fmt="keyValues" if fmt == "simplified" else fmt,
        sys_attrs=bool(note.get("sysAttrs")),
        show_changes=bool(note.get("showChanges")),
        endpoint=note["endpoint"],
        throttling_ms=int(doc["throttling"] * 1000) if doc.get("throttling") else None,
        interval_ms=int(doc["timeInterval"] * 1000) if doc.get("timeInterval") else None,
        context_value=doc.get("jsonldContext") or doc.get("@context"),
        datasets=frozenset(doc["datasetId"]) if doc.get("datasetId") else None,
    )


def change_reasons(before: dict | None, after: dict | None,
                   watched: frozenset[str] | None) -> list[str]:
    """What a change did, as notification triggers, most specific first; attribute
    triggers count only the watched attributes."""
    if after is None:
        return ["entityDeleted"] if before is not None else []

    def seen(key: str) -> bool:
        return ":" in key and (watched is None or key in watched)

    if before is None:
        attrs = [k for k in after if seen(k)]
        return (["attributeCreated"] if attrs else []) + ["entityCreated"]
    reasons: list[str] = []
    now = after.get("modifiedAt")
    created = any(seen(k) and k not in before for k in after)
    updated = any(seen(k) and k in before and any(i.get("modifiedAt", now) == now
                                                  for i in after[k]) for k in after)
    deleted = any(seen(k) and k not in after for k in before)
    for flag, reason in ((created, "attributeCreated"), (updated, "attributeUpdated"),
                         (deleted, "attributeDeleted")):
        if flag:
            reasons.append(reason)
    if reasons or watched is None:
        reasons.append("entityUpdated")
    return reasons
