"""Temporal operations (clauses 5.6.11–5.6.12, 5.7.3–5.7.4, 6.18–6.22), independent of HTTP.

History is written by the store whenever the entity API changes an attribute; the
temporal API adds, reads, corrects and removes instances of that history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dothi.auth import access as auth
from dothi.errors import BadRequestData, Forbidden, ResourceNotFound
from dothi.ngsild.context import ActiveContext
from dothi.ngsild.entity import ENTITY_MEMBERS, expand_attribute, expand_entity, is_uri
from dothi.ngsild.temporal import TimeQuery
from dothi.ngsild.timeutil import now_iso
from dothi.store.base import EntityQuery, Selector, Store, TemporalEntity
from dothi.store.sqlite_history import parse_instance_id

# Entities a q/geoQ/scopeQ temporal query may match through their current state.
MAX_FILTERED_ENTITIES = 10_000


class Temporal:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _may_write(self, tenant: str, eid: str, types: Sequence[str] = ()) -> None:
        """Refuse a write of ``eid``'s history unless the reader's access (dothi.auth) may
        write the entity as it now is (or, with no current entity, of ``types``)."""
        access = auth.current()
        if access.unlimited:
            return
        access.need("write", "change entity histories", tenant)
        doc = self.store.get(tenant, eid) or {"id": eid, "type": list(types)}
        if not access.writable(doc):
            raise Forbidden(f"{access.principal.subject} may not change entity {eid}")

    def upsert(self, tenant: str, body: Any, ctx: ActiveContext) -> tuple[str, bool]:
        """Create or extend a temporal entity: (id, created)."""
        if not isinstance(body, dict):
            raise BadRequestData("A temporal entity must be a JSON object")
        now = now_iso()
        doc = expand_entity({k: v for k, v in body.items() if k in ENTITY_MEMBERS}, ctx, now)
        attrs = _instances(body, ctx, now)
        self._may_write(tenant, doc["id"], doc.get("type", []))
        created = self.store.temporal_add(tenant, doc["id"], doc.get("type", []), attrs)
        return doc["id"], bool(created)

    def append(self, tenant: str, eid: str, body: Any, ctx: ActiveContext) -> None:
        _check_id(eid)
        if not isinstance(body, dict):
            raise BadRequestData("The payload must be a JSON object of attributes")
        attrs = _instances(body, ctx, now_iso())
        if not attrs:
            raise BadRequestData("No attribute to add")
        self._may_write(tenant, eid)
        if self.store.temporal_add(tenant, eid, (), attrs, must_exist=True) is None:
            raise ResourceNotFound(f"No temporal entity {eid}")

    def retrieve(self, tenant: str, eid: str, tq: TimeQuery, cap: int) -> TemporalEntity:
        _check_id(eid)
        access = auth.current()
        if not access.unlimited:
            access.need("read", "read entity histories", tenant)
        found = self.store.temporal_get(tenant, eid, tq, cap)
        if found is not None and not access.unlimited and not access.readable(
                self.store.get(tenant, eid) or {"id": eid, "type": found.types}):
            found = None
        if found is None:
            raise ResourceNotFound(f"No temporal entity {eid}")
        return found

    def query(self, tenant: str, selectors: Sequence[Selector], current: EntityQuery | None,
              tq: TimeQuery, limit: int, offset: int, count: bool,
              cap: int) -> tuple[list[TemporalEntity], int | None]:
        """``current`` carries q/geoQ/scopeQ, which select entities by their current state.
        A reader whose access hides some entities (dothi.auth) sees the histories of
        entities that now exist and that it may read."""
        access = auth.current()
        if not access.unlimited:
            access.need("read", "read entity histories", tenant)
            rules = access.read_rules()
            if rules:
                current = current or EntityQuery(selectors=list(selectors))
                current.hidden = [*current.hidden, *rules]
        ids_in = None
        if current is not None:
            current.limit, current.offset, current.count = MAX_FILTERED_ENTITIES, 0, False
            current.ids_only = True
            docs, _ = self.store.query(tenant, current)
            ids_in = [d["id"] for d in docs]
        return self.store.temporal_query(tenant, selectors, ids_in, tq, limit, offset, count,
                                         cap)

    def delete(self, tenant: str, eid: str) -> None:
        _check_id(eid)
        self._may_write(tenant, eid)
        if not self.store.temporal_delete(tenant, eid):
            raise ResourceNotFound(f"No temporal entity {eid}")

    def delete_attribute(self, tenant: str, eid: str, attr: str, ctx: ActiveContext,
                         dataset: str | None, delete_all: bool) -> None:
        _check_id(eid)
        if dataset is not None and not is_uri(dataset):
            raise BadRequestData("datasetId must be a URI")
        self._may_write(tenant, eid)
        found = self.store.temporal_delete_attribute(tenant, eid, ctx.expand(attr), dataset,
                                                     delete_all)
        if found is None:
            raise ResourceNotFound(f"No temporal entity {eid}")
        if not found:
            raise ResourceNotFound(f"Temporal entity {eid} has no attribute {attr}"
                                   + (f" with datasetId {dataset}" if dataset else ""))

    def modify_instance(self, tenant: str, eid: str, attr: str, instance: str, body: Any,
                        ctx: ActiveContext) -> None:
        """Replace the members given in the body; the instance keeps its identity."""
        _check_id(eid)
        iid = _instance(instance)
        self._may_write(tenant, eid)
        if not isinstance(body, dict):
            raise BadRequestData("The payload must be a JSON object")
        name = ctx.compact(ctx.expand(attr))
        value = body.get(name, body.get(attr, body))
        if isinstance(value, list):
            if len(value) != 1:
                raise BadRequestData("Give exactly one instance")
            value = value[0]
        now = now_iso()
        fresh = expand_attribute(attr, value, ctx, now)[0]

        def change(current: dict) -> dict:
            merged = {**current, **{k: v for k, v in fresh.items() if k != "createdAt"}}
            merged["modifiedAt"] = now
            merged.pop("instanceId", None)
            if fresh.get("type") != current.get("type"):
                raise BadRequestData("An instance keeps its attribute type")
            return merged

        if not self.store.temporal_change_instance(tenant, eid, ctx.expand(attr), iid, change):
            raise ResourceNotFound(f"No instance {instance} of {attr} in {eid}")

    def delete_instance(self, tenant: str, eid: str, attr: str, instance: str,
                        ctx: ActiveContext) -> None:
        _check_id(eid)
        iid = _instance(instance)
        self._may_write(tenant, eid)
        if not self.store.temporal_change_instance(tenant, eid, ctx.expand(attr), iid,
                                                   lambda current: None):
            raise ResourceNotFound(f"No instance {instance} of {attr} in {eid}")


def _instances(body: dict, ctx: ActiveContext, now: str) -> dict[str, list[dict]]:
    """Attribute IRI -> instances of a temporal payload, where one attribute may hold many
    instances of the same datasetId (its values over time)."""
    out: dict[str, list[dict]] = {}
    for name, value in body.items():
        if name in ENTITY_MEMBERS:
            continue
        items = value if isinstance(value, list) and value and all(
            isinstance(v, dict) for v in value) else [value]
        out[ctx.expand(name)] = [expand_attribute(name, v, ctx, now)[0] for v in items]
    return out


def _check_id(eid: str) -> None:
    if not is_uri(eid):
        raise BadRequestData(f"Entity id must be a URI: {eid!r}")


def _instance(text: str) -> int:
    iid = parse_instance_id(text)
    if iid is None:
        if not is_uri(text):
            raise BadRequestData(f"instanceId must be a URI: {text!r}")
        raise ResourceNotFound(f"No attribute instance {text}")
    return iid
