"""Broker operations: what the NGSI-LD API does, independent of HTTP.

Every write goes through ``Store.apply`` with a change function, so validation happens
before anything is written and read-modify-write is atomic per entity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dothi.auth import access as auth
from dothi.broker.forwarding import Forward, Forwarder
from dothi.broker.forwarding import merge as merge_sources
from dothi.broker.registry import Registry
from dothi.broker.routing import Routing
from dothi.broker.subscriptions import Subscriptions
from dothi.broker.temporal import Temporal
from dothi.errors import (
    AlreadyExists,
    BadRequestData,
    DothiError,
    Forbidden,
    NonexistentTenant,
    PartialSuccess,
    RemoteError,
    ResourceNotFound,
)
from dothi.ngsild import merge
from dothi.ngsild.context import ActiveContext, CachedContext, ContextCache, ContextResolver
from dothi.ngsild.entity import (
    body_types,
    check_scope,
    expand_attribute,
    expand_attributes,
    expand_entity,
    is_uri,
    item_id,
)
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import TypeExpr
from dothi.store import audit
from dothi.store.base import (
    DEFAULT_TENANT,
    UNCHANGED,
    EntityQuery,
    Outcome,
    Selector,
    Store,
    TypeStat,
)


@dataclass
class BatchResult:
    success: list[str] = field(default_factory=list)
    errors: list[tuple[str | None, DothiError]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


@dataclass
class QueryResult:
    docs: list[dict]
    count: int | None = None
    # NGSILD-Warning values for context sources that could not answer.
    warnings: list[str] = field(default_factory=list)


class Broker:
    def __init__(self, store: Store, cache: ContextCache, *, broker_id: str = "dothi",
                 forward_timeout: float = 5.0) -> None:
        self.store = store
        self.cache = cache
        self.resolver = ContextResolver(cache)
        self.temporal = Temporal(store)
        self.subscriptions = Subscriptions(store, self.resolver)
        self.registry = Registry(store, self.resolver, self.subscriptions)
        self.broker_id = broker_id
        self.forwarder = Forwarder(self.registry, broker_id, forward_timeout)
        self.routing = Routing(store, self.forwarder)
        self.write_listeners: list[Callable[[str, list[Outcome]], None]] = []
        for url, doc, kind, created in store.contexts():
            cache.add(url, doc, kind=kind, created_at=created)
        cache.loader = self._stored_context

    def _stored_context(self, url: str) -> CachedContext | None:
        found = self.store.get_context(url)
        if found is None:
            return None
        doc, kind, created = found
        return CachedContext(url, doc, kind, created)

    # -- helpers -----------------------------------------------------------------------

    def has_tenant(self, tenant: str) -> bool:
        return tenant == DEFAULT_TENANT or self.store.tenant_exists(tenant)

    def check_tenant(self, tenant: str) -> None:
        if not self.has_tenant(tenant):
            raise NonexistentTenant(f"Tenant {tenant} does not exist")

    def apply(self, tenant: str, changes: list[tuple[str, Any]]) -> list[Outcome]:
        """The one write path: ``changes`` are (entity id, change function) pairs applied
        in one transaction (see ``Store.apply``). Domain services that build their own
        documents (device ingestion, provisioning) write through here too, so their
        changes are notified and kept in history like any other. After the commit, each
        of ``write_listeners`` is told (tenant, outcomes); a listener must be quick and
        must not raise."""
        access = auth.current()
        if not access.unlimited:
            access.need("write", "change entities", tenant)
            changes = [(eid, _guarded(access, eid, fn)) for eid, fn in changes]
        outcomes = self.store.apply(tenant, changes)
        self.subscriptions.committed()
        for listener in self.write_listeners:
            listener(tenant, outcomes)
        return outcomes

    def apply_one(self, tenant: str, eid: str, fn: Any) -> Outcome:
        """``apply`` of one change, whose error (if any) is raised."""
        outcome = self.apply(tenant, [(eid, fn)])[0]
        if outcome.error is not None:
            raise outcome.error
        return outcome

    @staticmethod
    def _need(doc: dict | None, eid: str) -> dict:
        if doc is None:
            raise ResourceNotFound(f"Entity {eid} does not exist")
        return doc

    # -- single entity -----------------------------------------------------------------

    def create(self, tenant: str, body: Any, ctx: ActiveContext,
               forward: Forward | None = None) -> str:
        doc = expand_entity(body, ctx, now_iso())
        eid = str(doc["id"])

        def local(part: Any) -> None:
            mine = expand_entity(part, ctx, doc["createdAt"])

            def fn(old: dict | None) -> dict:
                if old is not None:
                    raise AlreadyExists(f"Entity {eid} already exists")
                return mine

            self.apply_one(tenant, eid, fn)

        self._distributed_write(tenant, "createEntity", eid, doc.get("type"), body, ctx,
                                forward, "POST", "/ngsi-ld/v1/entities", local)
        return eid

    def retrieve(self, tenant: str, eid: str, forward: Forward | None = None,
                 ctx: ActiveContext | None = None, attrs: list[str] | None = None) -> dict:
        """The entity as held here, merged with what matching context sources hold."""
        _check_id(eid)
        local = self.store.get(tenant, eid)
        sources = self.forwarder.sources(tenant, "retrieveEntity", forward, eid=eid,
                                         attrs=attrs) if ctx is not None else []
        if sources:
            assert forward is not None and ctx is not None
            answers = self.forwarder.retrieve(sources, eid, forward, ctx)
            local = merge_sources(local, [(a.reg.mode, d) for a in answers for d in a.docs
                                          if d["id"] == eid])
        elif local is None:
            self.check_tenant(tenant)
        access = auth.current()
        if local is not None and not access.unlimited:
            access.need("read", "read entities", tenant)
            if not access.readable(local):
                local = None
        return self._need(local, eid)

    def delete(self, tenant: str, eid: str, forward: Forward | None = None) -> None:
        _check_id(eid)

        def local(_: Any) -> None:
            self.check_tenant(tenant)
            self.apply_one(tenant, eid, lambda old: self._need(old, eid) and None)

        self._distributed_write(tenant, "deleteEntity", eid, None, None, None, forward,
                                "DELETE", f"/ngsi-ld/v1/entities/{eid}", local)

    def replace(self, tenant: str, eid: str, body: Any, ctx: ActiveContext,
                forward: Forward | None = None) -> None:
        _check_id(eid)
        if isinstance(body, dict):
            body_id = body.get("id", body.get("@id"))
            if body_id is not None and body_id != eid:
                raise BadRequestData(f"The body's id {body_id} differs from the URL's {eid}")
            body = {**body, "id": eid}
        now = now_iso()
        expand_entity(body, ctx, now, need_type=False)

        def local(part: Any) -> None:
            self.check_tenant(tenant)
            new = expand_entity(part, ctx, now, need_type=False)
            self.apply_one(tenant, eid,
                         lambda old: merge.replace_entity(self._need(old, eid), new))

        self._distributed_write(tenant, "replaceEntity", eid, None, body, ctx, forward,
                                "PUT", f"/ngsi-ld/v1/entities/{eid}", local)

    def append(
        self, tenant: str, eid: str, body: Any, ctx: ActiveContext, overwrite: bool,
        forward: Forward | None = None,
    ) -> list[str]:
        _check_id(eid)
        _check_fragment_id(body, eid)
        now = now_iso()
        expand_attributes(body, ctx, now)  # the whole body is checked before anything
        skipped: list[str] = []

        def local(part: Any) -> None:
            nonlocal skipped
            self.check_tenant(tenant)
            attrs = expand_attributes(part, ctx, now)
            types = body_types(part, ctx)

            def fn(old: dict | None) -> dict:
                nonlocal skipped
                doc, skipped = merge.append(self._need(old, eid), attrs, now,
                                            overwrite=overwrite)
                if types:
                    doc["type"] = list(dict.fromkeys([*doc.get("type", []), *types]))
                return doc

            self.apply_one(tenant, eid, fn)

        self._distributed_write(tenant, "appendAttrs", eid, None, body, ctx, forward,
                                "POST", f"/ngsi-ld/v1/entities/{eid}/attrs", local)
        return skipped

    def update(self, tenant: str, eid: str, body: Any, ctx: ActiveContext,
               forward: Forward | None = None) -> list[str]:
        _check_id(eid)
        _check_fragment_id(body, eid)
        now = now_iso()
        if not expand_attributes(body, ctx, now):
            raise BadRequestData("No attribute to update")
        skipped: list[str] = []

        def local(part: Any) -> None:
            nonlocal skipped
            self.check_tenant(tenant)
            attrs = expand_attributes(part, ctx, now)

            def fn(old: dict | None) -> dict | Any:
                nonlocal skipped
                doc, skipped = merge.update(self._need(old, eid), attrs, now)
                return UNCHANGED if len(skipped) == len(attrs) else doc

            self.apply_one(tenant, eid, fn)

        self._distributed_write(tenant, "updateAttrs", eid, None, body, ctx, forward,
                                "PATCH", f"/ngsi-ld/v1/entities/{eid}/attrs", local)
        return skipped

    def patch_attribute(
        self, tenant: str, eid: str, name: str, body: Any, ctx: ActiveContext,
        forward: Forward | None = None,
    ) -> None:
        _check_id(eid)
        if not isinstance(body, dict) or not body:
            raise BadRequestData("The payload must be a non-empty JSON object")
        now = now_iso()
        iri = ctx.expand(name)
        fragment = _fragment(name, body, ctx, now, allow_null=True)

        def local(_: Any) -> None:
            self.check_tenant(tenant)
            self.apply_one(tenant, eid, lambda old: merge.patch_attribute(
                self._need(old, eid), iri, fragment, now, name))

        self._distributed_write(tenant, "updateAttrs", eid, None, body, ctx, forward,
                                "PATCH", f"/ngsi-ld/v1/entities/{eid}/attrs/{name}", local,
                                attr=iri)

    def replace_attribute(
        self, tenant: str, eid: str, name: str, body: Any, ctx: ActiveContext,
        forward: Forward | None = None,
    ) -> None:
        _check_id(eid)
        now = now_iso()
        iri = ctx.expand(name)
        instances = expand_attribute(name, _strip_context(body), ctx, now)

        def local(_: Any) -> None:
            self.check_tenant(tenant)
            self.apply_one(tenant, eid, lambda old: merge.replace_attribute(
                self._need(old, eid), iri, instances, now, name))

        self._distributed_write(tenant, "replaceAttrs", eid, None, body, ctx, forward,
                                "PUT", f"/ngsi-ld/v1/entities/{eid}/attrs/{name}", local,
                                attr=iri)

    def delete_attribute(
        self, tenant: str, eid: str, name: str, ctx: ActiveContext,
        dataset_id: str | None, delete_all: bool, forward: Forward | None = None,
    ) -> None:
        _check_id(eid)
        if dataset_id is not None and not is_uri(dataset_id):
            raise BadRequestData("datasetId must be a URI")
        iri = ctx.expand(name)
        now = now_iso()

        def local(_: Any) -> None:
            self.check_tenant(tenant)
            self.apply_one(tenant, eid, lambda old: merge.delete_attribute(
                self._need(old, eid), iri, dataset_id, delete_all, now, name))

        self._distributed_write(tenant, "deleteAttrs", eid, None, None, ctx, forward,
                                "DELETE", f"/ngsi-ld/v1/entities/{eid}/attrs/{name}", local,
                                attr=iri)

    def merge(self, tenant: str, eid: str, body: Any, ctx: ActiveContext,
              forward: Forward | None = None) -> None:
        _check_id(eid)
        _check_fragment_id(body, eid)
        now = now_iso()
        self._merge_parts(body, ctx, now)

        def local(part: Any) -> None:
            self.check_tenant(tenant)
            attrs, types, scope = self._merge_parts(part, ctx, now)
            self.apply_one(tenant, eid, lambda old: merge.merge_patch(
                self._need(old, eid), types, scope, attrs, now))

        self._distributed_write(tenant, "mergeEntity", eid, None, body, ctx, forward,
                                "PATCH", f"/ngsi-ld/v1/entities/{eid}", local)

    @staticmethod
    def _merge_parts(
        body: Any, ctx: ActiveContext, now: str
    ) -> tuple[dict[str, list[dict]], list[str] | None, list[str] | None]:
        attrs = expand_attributes(
            body, ctx, now, allow_null=True,
            skip=frozenset({"@context", "id", "@id", "type", "@type", "scope",
                            "createdAt", "modifiedAt"}),
        )
        types = body_types(body, ctx)
        scope = check_scope(body["scope"]) if "scope" in body else None
        return attrs, types, scope

    # -- batch -------------------------------------------------------------------------

    def batch(
        self, tenant: str, op: str, items: Any, ctx_for: Any, options: str = "",
        forward: Forward | None = None,
    ) -> BatchResult:
        """``ctx_for(item)`` gives the ActiveContext of one entity (ld+json bodies may
        carry one per entity). Items that context sources take (see forwarding) are sent
        on, one batch request per source."""
        if not isinstance(items, list):
            raise BadRequestData("A batch operation takes a JSON array")
        access = auth.current()
        if not access.unlimited:  # before anything is sent on to context sources
            access.need("write", "change entities", tenant)
        items, remote = self.routing.batch(tenant, op, items, ctx_for, forward)
        result = BatchResult()
        plan: list[tuple[str, Any]] = []
        now = now_iso()
        if items and op != "create" and op != "upsert":
            self.check_tenant(tenant)
        for item in items:
            try:
                plan.append(self._plan(op, item, ctx_for, now, options))
            except DothiError as exc:
                eid = item.get("id") if isinstance(item, dict) else (
                    item if isinstance(item, str) else None)
                result.errors.append((eid, exc))
        if plan:
            for outcome in self.apply(tenant, plan):
                if outcome.error is not None:
                    assert isinstance(outcome.error, DothiError)
                    result.errors.append((outcome.id, outcome.error))
                else:
                    result.success.append(outcome.id)
                    if outcome.status == "created":
                        result.created.append(outcome.id)
        failed = {eid for eid, _ in result.errors} | {eid for eid, _ in remote.errors}
        for eid in remote.success:
            if eid not in result.success:
                result.success.append(eid)
                if op in ("create", "upsert"):
                    result.created.append(eid)
        result.success = [eid for eid in result.success if eid not in failed]
        result.errors += remote.errors
        return result

    def _plan(self, op: str, item: Any, ctx_for: Any, now: str, options: str) -> tuple[str, Any]:
        if op == "delete":
            if not isinstance(item, str) or not is_uri(item):
                raise BadRequestData(f"Batch delete takes entity ids (URIs), got {item!r}")
            return item, lambda old: self._need(old, item) and None
        ctx = ctx_for(item)
        if op == "create":
            doc = expand_entity(item, ctx, now)

            def create(old: dict | None) -> dict:
                if old is not None:
                    raise AlreadyExists(f"Entity {doc['id']} already exists")
                return doc

            return doc["id"], create
        if op == "upsert":
            doc = expand_entity(item, ctx, now)
            if options == "update":
                attrs = expand_attributes(item, ctx, now)

                def upsert_update(old: dict | None) -> dict:
                    if old is None:
                        return doc
                    new, _ = merge.append(old, attrs, now, overwrite=True)
                    new["type"] = list(dict.fromkeys([*old.get("type", []), *doc["type"]]))
                    return new

                return doc["id"], upsert_update
            return doc["id"], lambda old: doc if old is None else merge.replace_entity(old, doc)
        if op == "update":
            eid = item_id(item)
            attrs = expand_attributes(item, ctx, now, skip=frozenset(
                {"@context", "id", "@id", "type", "@type", "scope", "createdAt", "modifiedAt"}))
            overwrite = options != "noOverwrite"
            return eid, lambda old: merge.append(
                self._need(old, eid), attrs, now, overwrite=overwrite)[0]
        if op == "merge":
            eid = item_id(item)
            attrs, types, scope = self._merge_parts(item, ctx, now)
            return eid, lambda old: merge.merge_patch(
                self._need(old, eid), types, scope, attrs, now)
        raise BadRequestData(f"Unknown batch operation {op}")

    # -- distributed writes ----------------------------------------------------------------

    def _distributed_write(
        self, tenant: str, operation: str, eid: str, types: list[str] | None, body: Any,
        ctx: ActiveContext | None, forward: Forward | None, method: str, path: str,
        local: Any, attr: str | None = None,
    ) -> None:
        """Do a write here and at the context sources that take it (see forwarding).
        ``local(part)`` applies to this broker the part of ``body`` that stays here;
        ``attr`` names the one attribute an attribute-level operation writes. Only a
        principal that may write here (dothi.auth) has writes sent on."""
        access = auth.current()
        if not access.unlimited:
            access.need("write", "change entities", tenant)
        route = self.routing.route(tenant, operation, eid, types, body, ctx, forward,
                                   always_local=operation == "createEntity", attr=attr)
        if not route.parts:
            local(body)
            return
        assert forward is not None
        sent = self.forwarder.write(list(route.parts.values()), method, path, forward,
                                    None if body is None else forward.headers.get(
                                        "content-type", "application/json"))
        errors: list[tuple[str, DothiError]] = []
        succeeded = 0
        if route.local is not None:
            try:
                local(route.local)
                succeeded += 1
            except DothiError as exc:
                errors.append((eid, exc))
        for answer in sent:
            if answer.problem is None:
                succeeded += 1
            else:
                errors.append((eid, RemoteError(answer.problem, answer.reg.endpoint)))
        if not errors:
            return
        if not succeeded:
            raise errors[0][1]
        raise PartialSuccess([eid], errors)

    # -- queries -----------------------------------------------------------------------

    def query(self, tenant: str, query: EntityQuery, forward: Forward | None = None,
              ctx: ActiveContext | None = None) -> QueryResult:
        """Entities held here and, unless ``local=true``, at the context sources whose
        registrations cover the query; merged by id, this broker's first. Only what
        the reader may see (``dothi.auth``) comes back."""
        access = auth.current()
        if not access.unlimited:
            access.need("read", "read entities", tenant)
            query = replace(query, hidden=[*query.hidden, *access.read_rules()])
        sources = []
        if forward is not None and ctx is not None:
            attrs = query.attrs_any
            operation = "queryEntity" if forward.body is None else "queryBatch"
            sources = [r for r in self.forwarder.sources(tenant, operation, forward)
                       if any(r.matches(None, s.ids, s.types, attrs)
                              for s in query.selectors or [Selector()])]
        if not sources:
            self.check_tenant(tenant)
            docs, count = self.store.query(tenant, query)
            return QueryResult(docs, count)
        assert forward is not None and ctx is not None
        wide = replace(query, limit=query.offset + query.limit, offset=0)
        # A tenant may exist only at the sources: nothing of it here is no error.
        docs, count = self.store.query(tenant, wide) if self.has_tenant(tenant) \
            else ([], 0 if query.count else None)
        answers = self.forwarder.query(sources, query, forward, ctx)
        by_id: dict[str, dict] = {d["id"]: d for d in docs}
        extra: dict[str, list[tuple[str, dict]]] = {}
        for answer in answers:
            for doc in answer.docs:
                extra.setdefault(doc["id"], []).append((answer.reg.mode, doc))
            if count is not None and answer.count is not None:
                count += answer.count
        order = list(by_id) + [i for i in extra if i not in by_id]
        merged = [merge_sources(by_id.get(i), extra.get(i, [])) for i in order]
        page = [d for d in merged if d is not None and access.readable(d)][
            query.offset:query.offset + query.limit]
        return QueryResult(page, count, [a.warning for a in answers if a.warning])

    def type_stats(self, tenant: str, forward: Forward | None = None,
                   ctx: ActiveContext | None = None,
                   only: str | None = None) -> tuple[list[TypeStat], list[str]]:
        """Entity types held here and, unless ``local=true``, at the context sources that
        serve type discovery, merged by type; ``only`` (an IRI) asks for one type. Also
        the warnings of sources that could not answer."""
        access = auth.current()
        if not access.unlimited:
            access.need("read", "read entity types", tenant)
        stats, warnings = self._type_stats(tenant, forward, ctx, only)
        return [s for s in stats if access.sees_type(s.type)], warnings

    def _type_stats(self, tenant: str, forward: Forward | None, ctx: ActiveContext | None,
                    only: str | None) -> tuple[list[TypeStat], list[str]]:
        operation = "retrieveEntityTypes" if only is None else "retrieveEntityTypeInfo"
        sources = self.forwarder.sources(
            tenant, operation, forward,
            types=TypeExpr("type", name=only) if only is not None else None) \
            if ctx is not None else []
        if not sources:
            self.check_tenant(tenant)
            return self.store.type_stats(tenant), []
        mine = self.store.type_stats(tenant) if self.has_tenant(tenant) else []
        assert forward is not None and ctx is not None
        theirs, warnings = self.forwarder.type_stats(sources, forward, ctx, only)
        merged: dict[str, TypeStat] = {}
        for stat in [*mine, *theirs]:
            into = merged.setdefault(stat.type, TypeStat(stat.type, 0, {}))
            into.entities += stat.entities
            for attr, kinds in stat.attributes.items():
                into.attributes.setdefault(attr, set()).update(kinds)
            for attr, n in stat.attribute_counts.items():
                into.attribute_counts[attr] = into.attribute_counts.get(attr, 0) + n
        return list(merged.values()), warnings

    # -- contexts ----------------------------------------------------------------------

    def add_context(self, url: str, document: Any) -> None:
        auth.current().need("manage", "add @contexts")
        created = now_iso()
        self.cache.add(url, document, kind="Hosted", created_at=created)
        self.store.put_context(url, document, "Hosted", created)
        self.resolver.forget()

    def delete_context(self, url: str) -> None:
        auth.current().need("manage", "delete @contexts")
        if not self.cache.remove(url):
            raise ResourceNotFound(f"@context {url} is not held by this broker")
        self.store.delete_context(url)
        self.resolver.forget()


def _guarded(access: auth.Access, eid: str, fn: Any) -> Any:
    """``fn`` (a change of one entity), refused unless ``access`` may write the entity as
    it was and as it would be."""

    def change(old: dict | None) -> Any:
        if old is not None and not access.writable(old):
            raise Forbidden(f"{access.principal.subject} may not change entity {eid}")
        new = fn(old)
        if isinstance(new, dict) and not access.writable(new):
            raise Forbidden(f"{access.principal.subject} may not write entity {eid} as it "
                            "would be (its type, agency or area)")
        return new

    # Who the change is done for (a device) stays with it.
    return audit.ChangeBy(change, fn.who) if isinstance(fn, audit.ChangeBy) else change


def _check_id(eid: str) -> None:
    if not is_uri(eid):
        raise BadRequestData(f"Entity id must be a URI: {eid!r}")


def _check_fragment_id(body: Any, eid: str) -> None:
    if isinstance(body, dict):
        bid = body.get("id", body.get("@id"))
        if bid is not None and bid != eid:
            raise BadRequestData(f"The body's id {bid} differs from the URL's {eid}")


def _strip_context(body: Any) -> Any:
    if isinstance(body, dict) and "@context" in body:
        return {k: v for k, v in body.items() if k != "@context"}
    return body


def _fragment(
    name: str, body: dict, ctx: ActiveContext, now: str, allow_null: bool
) -> list[dict]:
    """A partial attribute body: the members given, with type inferred only if present."""
    body = _strip_context(body)
    instances = expand_attribute(name, body, ctx, now, allow_null=allow_null)
    if "type" not in body:
        for inst in instances:
            # The type was inferred from the members present; do not force a type change.
            inst.pop("type", None)
    for inst in instances:
        inst.pop("createdAt", None)
    return instances
