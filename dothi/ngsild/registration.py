"""Context source registrations (clauses 5.2.9, 4.3.6): validation, the stored form, which
requests a registration serves, and rendering back to clients.

As with subscriptions, the stored form is the registration as its creator wrote it, with
the creation ``@context`` under ``"@context"``; names are expanded with it for matching
and compacted with the reader's context for rendering.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dothi.errors import BadRequestData, Conflict
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.entity import is_uri
from dothi.ngsild.geo import check_geometry
from dothi.ngsild.qlang import compile_pattern
from dothi.ngsild.temporal import iso_to_ms, parse_duration_ms
from dothi.ngsild.timeutil import normalize_datetime
from dothi.ngsild.typeexpr import TypeExpr

MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
# Operation groups (clause 4.20, table of operations), as the single operations they stand
# for; only the operations dothi forwards are listed.
READ_OPS = frozenset({"retrieveEntity", "queryEntity", "queryBatch"})
WRITE_OPS = frozenset({"createEntity", "updateEntity", "appendAttrs", "updateAttrs",
                       "deleteAttrs", "deleteEntity", "replaceEntity", "replaceAttrs",
                       "mergeEntity", "createBatch", "upsertBatch", "updateBatch",
                       "deleteBatch", "mergeBatch"})
GROUPS: dict[str, frozenset[str]] = {
    "federationOps": READ_OPS | {"retrieveEntityTypes", "retrieveEntityTypeDetails",
                                 "retrieveEntityTypeInfo", "retrieveAttrTypes",
                                 "retrieveAttrTypeDetails", "retrieveAttrTypeInfo",
                                 "createSubscription", "updateSubscription",
                                 "retrieveSubscription", "querySubscription",
                                 "deleteSubscription"},
    "updateOps": frozenset({"updateEntity", "updateAttrs", "replaceEntity",
                            "replaceAttrs"}),
    "retrieveOps": frozenset({"retrieveEntity", "queryEntity"}),
    "redirectionOps": READ_OPS | WRITE_OPS,
}
KNOWN_OPS = frozenset().union(*GROUPS.values()) | WRITE_OPS
RESERVED = frozenset({
    "id", "type", "registrationName", "description", "information", "tenant",
    "observationInterval", "managementInterval", "location", "observationSpace",
    "operationSpace", "expiresAt", "endpoint", "contextSourceInfo", "scope", "mode",
    "operations", "refreshRate", "management", "localOnly",
})
_BROKER_MEMBERS = ("status", "timesSent", "timesFailed", "lastSuccess", "lastFailure",
                   "createdAt", "modifiedAt")


def new_id() -> str:
    return f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}"


def validate(body: Any, context: Any, now: str) -> dict:
    """The stored form of a registration body, or BadRequestData saying what is wrong."""
    if not isinstance(body, dict):
        raise BadRequestData("A registration must be a JSON object")
    doc = {k: v for k, v in body.items() if k != "@context" and k not in _BROKER_MEMBERS}
    if doc.get("type") != "ContextSourceRegistration":
        raise BadRequestData('A registration needs "type": "ContextSourceRegistration"')
    if "id" in doc:
        if not is_uri(doc["id"]):
            raise BadRequestData(f"Registration id must be a URI: {doc['id']!r}")
    else:
        doc["id"] = new_id()
    _check(doc, now)
    doc["@context"] = context
    return doc


def patch(stored: dict, fragment: Any, now: str) -> dict:
    """Member-level merge (clause 5.9.3); null removes a member."""
    if not isinstance(fragment, dict) or not fragment:
        raise BadRequestData("An update must be a non-empty JSON object")
    if "id" in fragment and fragment["id"] != stored["id"]:
        raise BadRequestData("A registration's id cannot be changed")
    if "type" in fragment and fragment["type"] != "ContextSourceRegistration":
        raise BadRequestData('A registration\'s type is "ContextSourceRegistration"')
    doc = {k: v for k, v in stored.items() if k != "@context"}
    for key, value in fragment.items():
        if key == "@context" or key in _BROKER_MEMBERS:
            continue
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    _check(doc, now)
    doc["@context"] = stored.get("@context")
    return doc


def _check(doc: dict, now: str) -> None:
    info = doc.get("information")
    if not isinstance(info, list) or not info:
        raise BadRequestData("information must be a non-empty array of RegistrationInfo")
    for item in info:
        _check_info(item)
    endpoint = doc.get("endpoint")
    if not isinstance(endpoint, str) or not is_uri(endpoint) or \
            endpoint.split(":", 1)[0] not in ("http", "https"):
        raise BadRequestData("endpoint must be an http(s) URI")
    mode = doc.get("mode", "inclusive")
    if mode not in MODES:
        raise BadRequestData(f"mode must be one of {', '.join(MODES)}")
    ops = doc.get("operations")
    if ops is not None:
        if not isinstance(ops, list) or not ops or \
                any(o not in KNOWN_OPS and o not in GROUPS for o in ops):
            raise BadRequestData("operations must be a non-empty array of operation names "
                                 f"or groups ({', '.join(GROUPS)})")
        if mode == "auxiliary" and operations(doc) & WRITE_OPS:
            raise BadRequestData("An auxiliary registration may only serve reads")
    if mode == "exclusive":
        for item in info:
            entities = item.get("entities") or []
            if not entities or any("id" not in e for e in entities) or not (
                    item.get("propertyNames") or item.get("relationshipNames")):
                raise BadRequestData("An exclusive registration names entity ids and "
                                     "their attributes")
    pairs = doc.get("contextSourceInfo")
    if pairs is not None and (not isinstance(pairs, list) or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str)
            and isinstance(p.get("value"), str) for p in pairs)):
        raise BadRequestData("contextSourceInfo must be an array of key/value strings")
    if doc.get("tenant") is not None and not isinstance(doc["tenant"], str):
        raise BadRequestData("tenant must be a string")
    if doc.get("expiresAt") is not None:
        doc["expiresAt"] = normalize_datetime(doc["expiresAt"], "expiresAt")
        if doc["expiresAt"] <= now:
            raise BadRequestData("expiresAt must be in the future")
    for key in ("observationInterval", "managementInterval"):
        if doc.get(key) is not None:
            _check_interval(doc[key], key)
    for key in ("location", "observationSpace", "operationSpace"):
        if doc.get(key) is not None:
            check_geometry(doc[key])
    _check_management(doc.get("management"))
    if "localOnly" in doc and not isinstance(doc["localOnly"], bool):
        raise BadRequestData("localOnly must be true or false")


def _check_info(item: Any) -> None:
    if not isinstance(item, dict):
        raise BadRequestData("Each RegistrationInfo must be a JSON object")
    entities = item.get("entities")
    names = [item.get("propertyNames"), item.get("relationshipNames")]
    if entities is None and all(n is None for n in names):
        raise BadRequestData("A RegistrationInfo needs entities, propertyNames or "
                             "relationshipNames")
    if entities is not None:
        if not isinstance(entities, list) or not entities:
            raise BadRequestData("RegistrationInfo entities must be a non-empty array")
        for sel in entities:
            if not isinstance(sel, dict) or not isinstance(sel.get("type"), str):
                raise BadRequestData("Each EntityInfo needs a type")
            if "id" in sel and not is_uri(sel["id"]):
                raise BadRequestData(f"EntityInfo id must be a URI: {sel['id']!r}")
            if "idPattern" in sel:
                if not isinstance(sel["idPattern"], str):
                    raise BadRequestData("idPattern must be a string")
                compile_pattern(sel["idPattern"])
    for value in names:
        if value is not None and (not isinstance(value, list) or
                                  not all(isinstance(n, str) and n for n in value)):
            raise BadRequestData("propertyNames and relationshipNames must be arrays of "
                                 "names")


def _check_interval(value: Any, what: str) -> None:
    if not isinstance(value, dict) or "startAt" not in value:
        raise BadRequestData(f"{what} needs startAt (and may have endAt)")
    for key in ("startAt", "endAt"):
        if key in value:
            value[key] = normalize_datetime(value[key], f"{what}.{key}")


def _check_management(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise BadRequestData("management must be an object")
    if "localOnly" in value and not isinstance(value["localOnly"], bool):
        raise BadRequestData("management.localOnly must be true or false")
    if "cacheDuration" in value:
        if not isinstance(value["cacheDuration"], str):
            raise BadRequestData("management.cacheDuration must be an ISO 8601 duration")
        parse_duration_ms(value["cacheDuration"])
    for key in ("timeout", "cooldown"):
        if key in value and (isinstance(value[key], bool) or
                             not isinstance(value[key], (int, float)) or value[key] <= 0):
            raise BadRequestData(f"management.{key} must be a number greater than 0")


def operations(doc: dict) -> frozenset[str]:
    """The single operations a registration serves (groups opened)."""
    out: set[str] = set()
    for name in doc.get("operations") or ["federationOps"]:
        out |= GROUPS.get(name, {name})
    return frozenset(out)


def local_only(doc: dict) -> bool:
    return bool(doc.get("localOnly") or (doc.get("management") or {}).get("localOnly"))


# -- names between contexts ----------------------------------------------------------------


def recompact(doc: dict, source: ActiveContext, target: ActiveContext) -> dict:
    """The registration with its type and attribute names moved from one @context to
    another."""
    if source is target:
        return doc

    def name(n: Any) -> Any:
        return target.compact(source.expand(n)) if isinstance(n, str) else n

    out = dict(doc)
    if "information" not in doc:
        return _recompact_members(out, name)
    info = []
    for item in doc.get("information") or ():
        item = dict(item)
        if isinstance(item.get("entities"), list):
            item["entities"] = [{**e, "type": name(e.get("type"))} for e in item["entities"]]
        for key in ("propertyNames", "relationshipNames"):
            if isinstance(item.get(key), list):
                item[key] = [name(n) for n in item[key]]
        info.append(item)
    out["information"] = info
    return _recompact_members(out, name)


def _recompact_members(doc: dict, name: Callable[[Any], Any]) -> dict:
    """Context source properties (the members the specification does not define) are
    names in the @context too."""
    for key in list(doc):
        if key not in RESERVED and ":" not in key and key != "@context":
            doc[name(key)] = doc.pop(key)
    return doc


def render(doc: dict, stored_ctx: ActiveContext, ctx: ActiveContext, now: str,
           sys_attrs: bool) -> dict[str, Any]:
    """As written, names in the reader's context, with the defaults the broker applies
    (mode, operations) and its status."""
    out = recompact({k: v for k, v in doc.items()
                     if k not in ("@context", "createdAt", "modifiedAt")}, stored_ctx, ctx)
    out.setdefault("mode", "inclusive")
    out.setdefault("operations", ["federationOps"])
    out["status"] = "expired" if doc.get("expiresAt") and doc["expiresAt"] <= now else "ok"
    if sys_attrs:
        for key in ("createdAt", "modifiedAt"):
            if key in doc:
                out[key] = doc[key]
    return out


def as_entity(doc: dict, ctx: ActiveContext) -> dict:
    """The registration's own members as an entity in stored form, so that q, csf and
    scopeQ are decided on it by the same code as on entities."""
    out: dict[str, Any] = {"id": doc["id"], "type": ["ContextSourceRegistration"]}
    if doc.get("scope") is not None:
        scope = doc["scope"]
        out["scope"] = scope if isinstance(scope, list) else [scope]
    for key, value in doc.items():
        if key in ("id", "type", "@context", "scope", "information"):
            continue
        if isinstance(value, dict) and value.get("type") in ("Property", "Relationship"):
            inst = value
        else:
            inst = {"type": "Property", "value": value}
        out[ctx.expand(key)] = [inst]
    return out


# -- compiled for matching -----------------------------------------------------------------


@dataclass(frozen=True)
class Info:
    """One RegistrationInfo, expanded."""

    entities: tuple[tuple[str, str | None, Any], ...]  # (type IRI, id, compiled idPattern)
    attrs: frozenset[str] | None  # None: every attribute

    def covers_entity(self, eid: str | None, types: Iterable[str] | None) -> bool:
        if not self.entities:
            return True
        wanted = set(types) if types is not None else None
        for etype, iid, pattern in self.entities:
            if wanted is not None and etype not in wanted:
                continue
            if eid is not None:
                if iid is not None and iid != eid:
                    continue
                if pattern is not None and pattern.search(eid) is None:
                    continue
            return True
        return False


@dataclass
class Compiled:
    tenant: str
    id: str
    doc: dict
    ctx: ActiveContext
    infos: list[Info]
    mode: str
    ops: frozenset[str]
    endpoint: str
    remote_tenant: str | None
    headers: list[tuple[str, str]]
    local_only: bool
    expires_ms: int | None

    def live(self, now_ms: int) -> bool:
        return self.expires_ms is None or now_ms < self.expires_ms

    def serves(self, operation: str) -> bool:
        return operation in self.ops

    def matches(self, eid: str | None, ids: Iterable[str] | None, types: TypeExpr | None,
                attrs: Iterable[str] | None) -> bool:
        """Whether some RegistrationInfo covers the entities and attributes asked for:
        ``eid`` one entity, or ``ids``/``types`` a query's selection (None: any)."""
        type_names = types.names() if types is not None else None
        wanted = set(attrs) if attrs is not None else None
        for info in self.infos:
            if wanted is not None and info.attrs is not None and not wanted & info.attrs:
                continue
            if eid is not None:
                if info.covers_entity(eid, type_names):
                    return True
            elif ids:
                if any(info.covers_entity(i, type_names) for i in ids):
                    return True
            elif info.covers_entity(None, type_names):
                return True
        return False

    def may_hold_pattern(self, pattern: Any) -> bool:
        """Whether entities whose ids match ``pattern`` may be held by this source."""
        for info in self.infos:
            if not info.entities:
                return True
            for _, iid, _ in info.entities:
                if iid is None or pattern.search(iid):
                    return True
        return False

    def registered_attrs(self, eid: str, types: Iterable[str]) -> frozenset[str] | None:
        """The attributes this registration holds for one entity (None: all of them)."""
        found: set[str] = set()
        for info in self.infos:
            if info.covers_entity(eid, types):
                if info.attrs is None:
                    return None
                found |= info.attrs
        return frozenset(found)


def compile_registration(tenant: str, doc: dict, ctx: ActiveContext) -> Compiled:
    infos = []
    for item in doc["information"]:
        names = [*(item.get("propertyNames") or ()), *(item.get("relationshipNames") or ())]
        infos.append(Info(
            entities=tuple((ctx.expand(e["type"]), e.get("id"),
                            compile_pattern(e["idPattern"]) if e.get("idPattern") else None)
                           for e in item.get("entities") or ()),
            attrs=frozenset(ctx.expand(n) for n in names) if names else None,
        ))
    return Compiled(
        tenant=tenant, id=doc["id"], doc=doc, ctx=ctx, infos=infos,
        mode=doc.get("mode", "inclusive"), ops=operations(doc),
        endpoint=doc["endpoint"].rstrip("/"), remote_tenant=doc.get("tenant"),
        headers=[(p["key"], p["value"]) for p in doc.get("contextSourceInfo") or ()],
        local_only=local_only(doc),
        expires_ms=iso_to_ms(doc["expiresAt"]) if doc.get("expiresAt") else None,
    )


def check_conflicts(new: Compiled, others: Iterable[Compiled],
                    local_attrs: Callable[[str], frozenset[str] | None]) -> None:
    """Exclusive and redirect registrations own what they register (clause 4.3.6.2): a
    second exclusive registration over the same entity and attribute, or an exclusive
    one over what is held here, is a conflict. ``local_attrs(id)`` gives the attributes
    a local entity has (None if there is none)."""
    if new.mode not in ("exclusive", "redirect"):
        return
    for info in new.infos:
        for _, eid, _ in info.entities:
            if eid is None:
                continue
            for other in others:
                if other.id == new.id or other.mode != "exclusive":
                    continue
                held = other.registered_attrs(eid, [t for t, _, _ in info.entities])
                if held is None or info.attrs is None or held & info.attrs:
                    raise Conflict(
                        f"Entity {eid} is already registered exclusively by {other.id}")
            present = local_attrs(eid)
            if present is None:
                continue
            if new.mode == "redirect" or info.attrs is None or present & info.attrs:
                raise Conflict(f"Entity {eid} is held by this broker")
