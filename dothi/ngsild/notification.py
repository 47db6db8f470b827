"""Notifications as receivers get them (clause 5.3.1, 5.8.x): the envelope, the entities
in the subscription's format and @context, ``showChanges`` and the MQTT message form."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from dothi.ngsild.context import CORE_CONTEXT_URL
from dothi.ngsild.entity import ATTRIBUTE_TYPES, NULL
from dothi.ngsild.render import RenderOptions, render_entity, to_feature
from dothi.ngsild.subscription import Compiled

JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
# The member holding the previous value, by attribute type (showChanges).
_PREVIOUS = {"Property": "previousValue", "GeoProperty": "previousValue",
             "Relationship": "previousObject", "LanguageProperty": "previousLanguageMap",
             "ListProperty": "previousValueList", "ListRelationship": "previousObjectList",
             "JsonProperty": "previousJson", "VocabProperty": "previousVocab"}


def media_type(sub: Compiled) -> str:
    return str(sub.endpoint.get("accept") or JSON)


def context_url(sub: Compiled) -> str:
    value = sub.context_value
    return value if isinstance(value, str) else CORE_CONTEXT_URL


def build(sub: Compiled, reason: str, payloads: list[bytes], now: str) -> dict[str, Any]:
    """One notification carrying every change in ``payloads`` (outbox rows, oldest first)."""
    if sub.kind == "csource":
        return _envelope(sub, "ContextSourceNotification", reason, now, [
            reg for raw in payloads for reg in orjson.loads(raw)["registrations"]])
    opts = RenderOptions(fmt=sub.fmt, sys_attrs=sub.sys_attrs, attrs=sub.attributes,
                         pick=sub.pick, omit=sub.omit,
                         lang=[sub.doc["lang"]] if sub.doc.get("lang") else None)
    mtype = media_type(sub)
    previous = sub.show_changes and reason not in ("entityCreated", "attributeCreated")
    data: list[dict[str, Any]] = []
    for raw in payloads:
        stored = orjson.loads(raw)
        changes: list[tuple[dict, dict]]
        if "entities" in stored:  # a periodic notification: current state only
            changes = [(doc, {}) for doc in stored["entities"]]
        else:
            changes = [_notified(stored, sub, reason)]
        for doc, before in changes:
            if sub.datasets is not None:
                doc = _only_datasets(doc, sub.datasets)
            if mtype == GEOJSON:
                data.append(to_feature(doc, sub.ctx, opts, sub.ctx.expand("location")))
                continue
            entity = render_entity(doc, sub.ctx, opts)
            if "deletedAt" in doc:
                entity["deletedAt"] = doc["deletedAt"]
            if previous and before and opts.fmt != "keyValues":
                _add_previous(entity, doc, before, sub)
            if mtype == JSONLD:
                entity["@context"] = _context_value(sub)
            data.append(entity)
    return _envelope(sub, "Notification", reason, now,
                     {"type": "FeatureCollection", "features": data} if mtype == GEOJSON
                     else data)


def _envelope(sub: Compiled, kind: str, reason: str, now: str, data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": kind,
        "subscriptionId": sub.id,
        "notifiedAt": now,
        "data": data,
        "triggerReason": reason,
    }
    if media_type(sub) == JSONLD:
        body["@context"] = _context_value(sub)
    return body


def _only_datasets(doc: dict, datasets: frozenset[str]) -> dict:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if ":" not in key:
            out[key] = value
            continue
        kept = [i for i in value if i.get("datasetId", "@none") in datasets]
        if kept:
            out[key] = kept
    return out


def _context_value(sub: Compiled) -> Any:
    return sub.context_value if sub.context_value is not None else CORE_CONTEXT_URL


def _notified(stored: dict, sub: Compiled, reason: str) -> tuple[dict, dict]:
    """(the entity to render, its attributes before the change): deleted attributes are
    shown with the NGSI-LD Null as their value."""
    entity = stored["entity"]
    before = stored.get("before") or {}
    when = entity.get("deletedAt") or entity.get("modifiedAt")
    if "deletedAt" in entity:
        if reason == "attributeDeleted":
            gone = [k for k in before if sub.watched is None or k in sub.watched]
        else:
            gone = list(before) if sub.show_changes else []
        whole = True
    else:
        gone = [k for k in before if k not in entity]
        whole = False
    if not gone:
        return entity, before
    doc = dict(entity)
    for key in gone:
        doc[key] = [_nulled(inst, when, whole) for inst in before[key]]
    return doc, before


def _nulled(inst: dict, when: Any, whole_entity: bool) -> dict:
    atype = inst.get("type", "Property")
    member = ATTRIBUTE_TYPES.get(atype, "value")
    empty: Any = NULL
    if atype == "LanguageProperty" and not whole_entity:
        empty = {"@none": NULL}
    out = {"type": atype, member: empty}
    if "datasetId" in inst:
        out["datasetId"] = inst["datasetId"]
    if when is not None:
        out["deletedAt"] = when
    return out


def _add_previous(entity: dict, doc: dict, previous: dict, sub: Compiled) -> None:
    """Give each changed default instance its value before the change."""
    for iri, instances in doc.items():
        if ":" not in iri or iri not in previous:
            continue
        name = sub.ctx.compact(iri)
        rendered = entity.get(name)
        if not isinstance(rendered, dict):
            continue  # several datasets, or concise bare values: no place for it
        old = next((i for i in previous[iri] if "datasetId" not in i), None)
        new = next((i for i in instances if "datasetId" not in i), None)
        if old is None or new is None:
            continue
        atype = old.get("type", "Property")
        member = ATTRIBUTE_TYPES.get(atype, "value")
        if old.get(member) != new.get(member):
            rendered[_PREVIOUS.get(atype, "previousValue")] = old.get(member)


def headers(sub: Compiled, tenant: str, default_tenant: str) -> dict[str, str]:
    """HTTP headers of a notification (also the MQTT message's metadata)."""
    mtype = media_type(sub)
    out = {"Content-Type": mtype}
    if mtype != JSONLD:
        out["Link"] = (f'<{context_url(sub)}>; rel="http://www.w3.org/ns/json-ld#context"; '
                       'type="application/ld+json"')
    if tenant != default_tenant:
        out["NGSILD-Tenant"] = tenant
    for pair in sub.endpoint.get("receiverInfo") or ():
        out[pair["key"]] = pair["value"]
    return out
