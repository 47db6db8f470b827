"""Context source registrations and the subscriptions on them (clauses 5.9, 5.11): the
CRUD the API calls, the compiled registrations the forwarding reads, and the
notifications of /csourceSubscriptions when a registration comes, changes or goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import orjson

from dothi.auth import access as auth
from dothi.broker.subscriptions import Subscriptions
from dothi.errors import AlreadyExists, BadRequestData, DothiError, ResourceNotFound
from dothi.ngsild import registration as model
from dothi.ngsild.context import ActiveContext, ContextResolver
from dothi.ngsild.entity import is_uri
from dothi.ngsild.geo import GeoQuery
from dothi.ngsild.qlang import QExpr, ScopeExpr, compile_pattern
from dothi.ngsild.subscription import Compiled as CompiledSubscription
from dothi.ngsild.temporal import iso_to_ms
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import TypeExpr
from dothi.store.base import Notice, Store
from dothi.store.sqlite_filters import DocFilter


def _now_ms() -> int:
    return int(time.time() * 1000)


class Registry:
    def __init__(self, store: Store, resolver: ContextResolver,
                 subscriptions: Subscriptions) -> None:
        self.store = store
        self.resolver = resolver
        self.subscriptions = subscriptions
        self._filter = DocFilter()
        self._lock = threading.Lock()
        self._version = -1
        self._compiled: dict[str, list[model.Compiled]] = {}
        subscriptions.csource_snapshot = self.snapshot

    # -- CRUD ----------------------------------------------------------------------------

    def create(self, tenant: str, body: object, ctx: ActiveContext) -> str:
        _manage(tenant)
        now = now_iso()
        doc = model.validate(body, ctx.source, now)
        new = model.compile_registration(tenant, doc, self.context_of(doc))
        doc["createdAt"] = doc["modifiedAt"] = now

        def check() -> None:
            model.check_conflicts(new, self.registrations(tenant), self._local_attrs(tenant))

        if not self.store.registration_create(tenant, doc["id"], doc, check):
            raise AlreadyExists(f"Registration {doc['id']} already exists")
        self._notify(tenant, None, doc)
        return str(doc["id"])

    def get(self, tenant: str, rid: str) -> dict:
        _manage(tenant)
        _check_id(rid)
        found = self.store.registration_get(tenant, rid)
        if found is None:
            raise ResourceNotFound(f"Registration {rid} does not exist")
        return found

    def update(self, tenant: str, rid: str, fragment: object, ctx: ActiveContext) -> None:
        _manage(tenant)
        _check_id(rid)
        old: dict = {}

        def change(stored: dict) -> dict:
            old.update(stored)
            now = now_iso()
            # Names in the fragment are moved into the creator's context first.
            moved = model.recompact(fragment, ctx, self.context_of(stored)) \
                if isinstance(fragment, dict) else fragment
            doc = model.patch(stored, moved, now)
            new = model.compile_registration(tenant, doc, self.context_of(doc))
            model.check_conflicts(new, self.registrations(tenant), self._local_attrs(tenant))
            doc["modifiedAt"] = now
            return doc

        doc = self.store.registration_change(tenant, rid, change)
        if doc is None:
            raise ResourceNotFound(f"Registration {rid} does not exist")
        self._notify(tenant, old, doc)

    def delete(self, tenant: str, rid: str) -> None:
        stored = self.get(tenant, rid)
        if not self.store.registration_delete(tenant, rid):
            raise ResourceNotFound(f"Registration {rid} does not exist")
        self._notify(tenant, stored, None)

    def query(self, tenant: str, types: TypeExpr | None, ids: Sequence[str] | None,
              id_pattern: str | None, attrs: Sequence[str] | None, q: QExpr | None,
              csf: QExpr | None, scope_q: ScopeExpr | None, geo: GeoQuery | None,
              expand: Callable[[str], str],
              when: tuple[int | None, int | None, str] | None = None) -> list[dict]:
        """Registrations whose information covers the selection, and whose own members
        satisfy q/csf, scopeQ, geoQ and the temporal query ``when`` (start, end, time
        property: observedAt looks at observationInterval, createdAt/modifiedAt at
        managementInterval) (clause 5.10.2)."""
        _manage(tenant)
        pattern = compile_pattern(id_pattern) if id_pattern else None
        filters = [self._filter.compile(c, None, expand) for c in (q, csf) if c is not None]
        if scope_q is not None:
            filters.append(self._filter.compile(None, scope_q, expand))
        out = []
        for reg in self.registrations(tenant):
            if not reg.matches(None, ids, types, attrs):
                continue
            if pattern is not None and not reg.may_hold_pattern(pattern):
                continue
            if filters:
                as_entity = model.as_entity(reg.doc, reg.ctx)
                if not all(f(as_entity) for f in filters):
                    continue
            if geo is not None:
                where = reg.doc.get("location")
                if not isinstance(where, dict) or not geo.matches(where):
                    continue
            if when is not None and not _during(reg.doc, *when):
                continue
            out.append(reg.doc)
        return out

    def render(self, doc: dict, ctx: ActiveContext, sys_attrs: bool) -> dict:
        return model.render(doc, self.context_of(doc), ctx, now_iso(), sys_attrs)

    def context_of(self, doc: dict) -> ActiveContext:
        return self.resolver.active(doc.get("@context"))

    def _local_attrs(self, tenant: str) -> Callable[[str], frozenset[str] | None]:
        def attrs(eid: str) -> frozenset[str] | None:
            doc = self.store.get(tenant, eid)
            return None if doc is None else frozenset(k for k in doc if ":" in k)
        return attrs

    # -- the compiled set ----------------------------------------------------------------

    def registrations(self, tenant: str) -> list[model.Compiled]:
        """The live registrations of a tenant, compiled, oldest first."""
        version = self.store.registrations_version()
        if version != self._version:
            with self._lock:
                compiled: dict[str, list[model.Compiled]] = {}
                for owner, doc in self.store.registrations_all():
                    try:
                        reg = model.compile_registration(owner, doc, self.context_of(doc))
                    except DothiError:
                        continue  # its @context is gone: it cannot be matched until fixed
                    compiled.setdefault(owner, []).append(reg)
                self._compiled, self._version = compiled, version
        now = _now_ms()
        return [r for r in self._compiled.get(tenant, ()) if r.live(now)]

    # -- /csourceSubscriptions -----------------------------------------------------------

    def initial(self, tenant: str, sid: str) -> None:
        """A csource subscription just made or changed is told of every registration it
        matches now."""
        sub = self.subscriptions.compiled(tenant, sid)
        if sub is None or sub.kind != "csource" or not sub.live(_now_ms()):
            return
        notice = self.snapshot(sub, "newlyMatching")
        if notice is not None:
            self._queue(tenant, [notice])

    def snapshot(self, sub: CompiledSubscription, reason: str) -> Notice | None:
        """A notification of every registration ``sub`` matches now (None if none)."""
        docs = [r.doc for r in self.registrations(sub.tenant) if self._matches(sub, r.doc)]
        return self._notice(sub, reason, docs) if docs else None

    def _notice(self, sub: CompiledSubscription, reason: str, docs: list[dict]) -> Notice:
        # Rendered now, in the subscription's context: the notifier only sends it.
        rendered = [self.render(d, sub.ctx, sub.sys_attrs) for d in docs]
        return Notice(sub.id, reason, orjson.dumps({"registrations": rendered}))

    def _notify(self, tenant: str, before: dict | None, after: dict | None) -> None:
        notices = []
        now = _now_ms()
        for sub in self.subscriptions.of_kind(tenant, "csource"):
            if not sub.live(now) or sub.interval_ms is not None:
                continue
            was = before is not None and self._matches(sub, before)
            if after is not None and self._matches(sub, after):
                notices.append(self._notice(sub, "updated" if was else "newlyMatching",
                                            [after]))
            elif was and before is not None:
                notices.append(self._notice(sub, "noLongerMatching", [before]))
        self._queue(tenant, notices)

    def _queue(self, tenant: str, notices: list[Notice]) -> None:
        if notices:
            self.store.outbox_add(tenant, notices)
            if self.subscriptions.wake is not None:
                self.subscriptions.wake()

    def _matches(self, sub: CompiledSubscription, doc: dict) -> bool:
        try:
            reg = model.compile_registration(sub.tenant, doc, self.context_of(doc))
        except DothiError:
            return False
        if sub.selectors and not any(
                reg.matches(s.id, None, s.types, None) for s in sub.selectors):
            return False
        if sub.watched is not None and not reg.matches(None, None, None, sub.watched):
            return False
        if sub.doc_filter is not None and not sub.doc_filter(model.as_entity(doc, sub.ctx)):
            return False
        if sub.geo is not None:
            where = doc.get("location")
            if not isinstance(where, dict) or not sub.geo.matches(where):
                return False
        return True


def _during(doc: dict, start: int | None, end: int | None, prop: str) -> bool:
    """Whether the registration's interval overlaps [start, end)."""
    interval = doc.get("observationInterval" if prop == "observedAt"
                       else "managementInterval")
    if not isinstance(interval, dict):
        return False
    begins = iso_to_ms(interval["startAt"])
    ends = iso_to_ms(interval["endAt"]) if interval.get("endAt") else None
    return (end is None or begins < end) and (start is None or ends is None or ends >= start)


def _manage(tenant: str) -> None:
    """Context source registrations are the instance's plumbing: only those who manage
    it (dothi.auth) see or change them."""
    access = auth.current()
    if not access.unlimited:
        access.need("manage", "see or change context source registrations", tenant)


def _check_id(rid: str) -> None:
    if not is_uri(rid):
        raise BadRequestData(f"Registration id must be a URI: {rid!r}")
