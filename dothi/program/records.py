"""The programme's records as entities: a record is a flat mapping of names to JSON values
(a task, a report, a plan), kept as an entity whose attributes are Properties, and
Relationships for the names that start with ``ref``. Each change is one read-modify-write
in the store's transaction, so two writers never lose each other's change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dothi.broker.broker import Broker
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes, expand_entity, prop
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.render import RenderOptions, render_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import UNCHANGED, EntityQuery, Selector, query_all

KEY_VALUES = RenderOptions(fmt="keyValues")
RESERVED = frozenset({"id", "type", "createdAt", "modifiedAt", "@context"})
BATCH = 500
Change = Callable[[dict[str, Any] | None], dict[str, Any]]


def body(eid: str, etype: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record as an NGSI-LD entity body (normalized); None values are left out."""
    out: dict[str, Any] = {"id": eid, "type": etype}
    for name, value in record.items():
        if value is None or name in ("id", "type"):
            continue
        if name.startswith("ref") and isinstance(value, str):
            out[name] = {"type": "Relationship", "object": value}
        else:
            out[name] = prop(value)
    return out


class Records:
    """Reads and writes one kind of record (one entity type) in a broker."""

    def __init__(self, broker: Broker, etype: str) -> None:
        self.broker = broker
        self.etype = etype
        self.ctx = broker.resolver.core

    def get(self, tenant: str, eid: str) -> dict[str, Any] | None:
        doc = self.broker.store.get(tenant, eid)
        return None if doc is None else self.render(doc)

    def find(self, tenant: str, q: str | None = None) -> list[dict[str, Any]]:
        docs = query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(self.etype, self.ctx.expand))],
            q=parse_q(q) if q else None, expand=self.ctx.expand, limit=1000))
        return [self.render(d) for d in docs]

    def render(self, doc: dict) -> dict[str, Any]:
        return render_entity(doc, self.ctx, KEY_VALUES)

    def save(self, tenant: str, eid: str, change: Change) -> dict[str, Any]:
        """Write what ``change`` makes of the record as it is (None: there is none yet),
        in one transaction; ``change`` raises to refuse, and nothing is written then.
        Names the new record leaves out are deleted."""
        written: list[dict[str, Any]] = []
        self.broker.apply_one(tenant, eid, self._write(eid, change, written))
        return {"id": eid, "type": self.etype, **written[-1]}

    def save_many(self, tenant: str, changes: dict[str, Change]) -> list[Exception]:
        """``save`` of many records, in one transaction per ``BATCH``: the errors of those
        refused (the others are written)."""
        errors: list[Exception] = []
        items = list(changes.items())
        for start in range(0, len(items), BATCH):
            outcomes = self.broker.apply(tenant, [
                (eid, self._write(eid, change, [])) for eid, change in items[start:start + BATCH]])
            errors.extend(o.error for o in outcomes if o.error is not None)
        return errors

    def _write(self, eid: str, change: Change,
               written: list[dict[str, Any]]) -> Callable[[dict | None], Any]:
        """The store's change of one entity: the record ``change`` makes, as a document."""
        def fn(old: dict | None) -> Any:
            before = None if old is None else self.render(old)
            record = change(None if before is None else dict(before))
            record = {k: v for k, v in record.items()
                      if k not in ("id", "type") and v is not None}
            written.append(record)
            stamp = now_iso()
            if old is None:
                return expand_entity(body(eid, self.etype, record), self.ctx, stamp)
            assert before is not None
            # Only what changed is written, so each attribute's history holds its changes
            # (a task's progress over the months), not a copy of every value per save.
            changed = {k: v for k, v in record.items() if before.get(k) != v}
            if not changed and set(record) == set(before) - {"id", "type"}:
                return UNCHANGED  # no new modification, history, audit or notification
            attrs = expand_attributes(
                {k: v for k, v in body(eid, self.etype, changed).items()
                 if k not in ("id", "type")}, self.ctx, stamp)
            dropped = {self.ctx.expand(k) for k in before} - {self.ctx.expand(k) for k in record}
            kept = {k: v for k, v in old.items() if k not in dropped or k in RESERVED}
            doc, _ = merge.append(kept, attrs, stamp, overwrite=True)
            return doc

        return fn
