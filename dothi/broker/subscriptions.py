"""Subscription operations and matching (clauses 5.8, 5.11): the CRUD the API calls, and
the hook that turns each committed entity change into notifications in the outbox.

Every process keeps the subscriptions of the whole database compiled in memory, indexed
by entity id and type, and reloads them when the store's subscription version moves (a
subscription written by another worker).
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from dothi.auth import access as auth
from dothi.auth import network
from dothi.errors import AlreadyExists, BadRequestData, DothiError, ResourceNotFound
from dothi.ngsild import subscription as model
from dothi.ngsild.context import ActiveContext, ContextResolver
from dothi.ngsild.entity import is_uri
from dothi.ngsild.geo import geometry_bbox
from dothi.ngsild.qlang import (
    EQ,
    GE,
    GT,
    LE,
    LT,
    NUMBER,
    Literal,
    Or,
    QExpr,
    Term,
    parse_q,
    parse_scope_q,
)
from dothi.ngsild.timeutil import now_iso
from dothi.store.base import (
    EntityQuery,
    Notice,
    Outcome,
    Selector,
    Store,
    SubscriptionRecord,
)
from dothi.store.sqlite_filters import DocFilter

# Entities one periodic (timeInterval) notification carries at most.
PERIODIC_MAX_ENTITIES = 1000


@dataclass
class _TenantIndex:
    by_id: dict[str, list[model.Compiled]] = field(default_factory=dict)
    by_type: dict[str, list[model.Compiled]] = field(default_factory=dict)
    rest: list[model.Compiled] = field(default_factory=list)
    # By id() of the subscription: its screen, where it has one.
    screens: dict[int, Screen] = field(default_factory=dict)

    def add(self, sub: model.Compiled) -> None:
        screen = _screen(sub)
        if screen is not None:
            self.screens[id(sub)] = screen
        sels = sub.selectors
        if sels and all(s.id is not None and s.pattern is None for s in sels):
            for s in sels:
                self.by_id.setdefault(s.id or "", []).append(sub)
        elif sels and all(s.types.op == "type" for s in sels):
            for s in sels:
                self.by_type.setdefault(s.types.name, []).append(sub)
        else:
            self.rest.append(sub)

    def candidates(self, doc: dict) -> list[model.Compiled]:
        found = list(self.by_id.get(doc["id"], ()))
        for t in doc.get("type", ()):
            found.extend(self.by_type.get(t, ()))
        found.extend(self.rest)
        if len(found) > 1:
            found = list({id(s): s for s in found}.values())
        if not self.screens:
            return found
        facts = _Facts(doc)
        return [s for s in found
                if (screen := self.screens.get(id(s))) is None or screen(facts)]


class _Facts:
    """What screens read of one changed entity, each worked out once for all of them."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self._numbers: dict[str, tuple[list[int | float], bool]] = {}
        self._boxes: dict[str, list[tuple[float, float, float, float]] | None] = {}

    def numbers(self, iri: str) -> tuple[list[int | float], bool]:
        found = self._numbers.get(iri)
        if found is None:
            found = self._numbers[iri] = _numbers(self.doc.get(iri))
        return found

    def boxes(self, iri: str) -> list[tuple[float, float, float, float]] | None:
        if iri not in self._boxes:
            self._boxes[iri] = _boxes(self.doc.get(iri))
        return self._boxes[iri]


# A cheap necessary condition of a subscription's q and geoQ, tried before its full match:
# false only where the subscription cannot select the entity. Every change is matched
# inside the write transaction against every subscription to its type, and the exact q
# (SQL, ~15 µs) and geoQ (shapely, ~15 µs) tests were most of the time the lock was held.
Screen = Callable[[_Facts], bool]
# What a look at an entity's numbers says of a q expression: True or False where that
# settles it, None where only the store's SQL can tell.
Decision = Callable[[_Facts], "bool | None"]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Subscriptions:
    def __init__(self, store: Store, resolver: ContextResolver) -> None:
        self.store = store
        self.resolver = resolver
        self._filter = DocFilter()
        self._lock = threading.Lock()
        self._version = -1
        self._compiled: dict[tuple[str, str], model.Compiled] = {}
        self._index: dict[str, _TenantIndex] = {}
        self._produced = False
        # Set by the notifier: called after a commit that wrote notifications.
        self.wake: Callable[[], None] | None = None
        # Set by the registry: the periodic notification of a csource subscription.
        self.csource_snapshot: Callable[[model.Compiled, str], Notice | None] | None = None
        # What the readers of subscriptions made under a limited access may read, and the
        # private networks they may still have notified (dothi.auth; set by the app).
        self.policy = auth.Policy.load()
        self.private_endpoints: tuple[network.Network, ...] = ()
        store.change_hook = self.on_change

    # -- CRUD ----------------------------------------------------------------------------

    def create(self, tenant: str, body: object, ctx: ActiveContext,
               kind: str = "entity") -> str:
        """A subscription made by a reader whose access is limited (dothi.auth) keeps who
        made it: it notifies only what they may read, and only they (or a manager) may
        see, change or delete it."""
        access = auth.current()
        if not access.unlimited:
            entity = kind == "entity"
            access.need("subscribe" if entity else "manage",
                        "subscribe" if entity else "subscribe to context sources", tenant)
        now = now_iso()
        doc = model.validate(body, ctx.source, now)
        if not access.unlimited:
            doc[model.READER] = access.principal.to_doc()
            self._check_endpoint(access, doc)
        self._compile(tenant, kind, doc)  # anything that cannot be matched is refused now
        if doc.get("jsonldContext") is not None:
            # Notifications will be rendered with it: it must be at hand now (503 if not).
            self.resolver.active(doc["jsonldContext"])
        doc["createdAt"] = doc["modifiedAt"] = now
        if not self.store.subscription_create(tenant, doc["id"], kind, doc,
                                              _first_run(doc)):
            raise AlreadyExists(f"Subscription {doc['id']} already exists")
        return str(doc["id"])

    def get(self, tenant: str, sid: str, kind: str = "entity") -> SubscriptionRecord:
        _check_id(sid)
        found = self.store.subscription_get(tenant, sid, kind)
        if found is None or not _mine(found.doc, tenant):
            raise ResourceNotFound(f"Subscription {sid} does not exist")
        return found

    def page(self, tenant: str, limit: int, offset: int,
             kind: str = "entity") -> tuple[list[SubscriptionRecord], int]:
        if _manages(tenant):
            return self.store.subscription_page(tenant, kind, limit, offset)
        records, total = self.store.subscription_page(tenant, kind, 1 << 30, 0)
        mine = [r for r in records if _mine(r.doc, tenant)]
        return mine[offset:offset + limit], len(mine)

    def update(self, tenant: str, sid: str, fragment: object, ctx: ActiveContext,
               kind: str = "entity") -> None:
        _check_id(sid)

        access = auth.current()

        def change(stored: dict) -> tuple[dict, int | None]:
            now = now_iso()
            doc = model.patch(stored, fragment, ctx, self.context_of(stored), now)
            if not access.unlimited:
                self._check_endpoint(access, doc)
            self._compile(tenant, kind, doc)
            doc["createdAt"] = stored.get("createdAt", now)
            doc["modifiedAt"] = now
            return doc, _first_run(doc)

        self.get(tenant, sid, kind)  # someone else's is not there for this reader
        if self.store.subscription_change(tenant, sid, kind, change) is None:
            raise ResourceNotFound(f"Subscription {sid} does not exist")

    def delete(self, tenant: str, sid: str, kind: str = "entity") -> None:
        self.get(tenant, sid, kind)
        if not self.store.subscription_delete(tenant, sid, kind):
            raise ResourceNotFound(f"Subscription {sid} does not exist")

    def _check_endpoint(self, access: auth.Access, doc: dict) -> None:
        """A subscriber who does not manage the platform may not have it send requests
        into its own network (the database, the MQTT broker, internal services: server-side
        request forgery): the endpoint's host must resolve to public addresses only, or
        to the networks of ``private_endpoints``."""
        if not access.may("manage"):
            uri = str(((doc.get("notification") or {}).get("endpoint") or {}).get("uri", ""))
            network.check_public(uri, self.private_endpoints, "The notification endpoint")

    def render(self, record: SubscriptionRecord, ctx: ActiveContext,
               sys_attrs: bool) -> dict:
        return model.render(record.doc, record.stats, self.context_of(record.doc), ctx,
                            now_iso(), sys_attrs)

    def context_of(self, doc: dict) -> ActiveContext:
        return self.resolver.active(doc.get("@context"))

    def _compile(self, tenant: str, kind: str, doc: dict) -> model.Compiled:
        sub = model.compile_subscription(tenant, kind, doc, self.context_of(doc),
                                         self._doc_filter)
        if model.READER in doc:
            sub.reader = auth.Access(auth.Principal.from_doc(doc[model.READER]),
                                     self.policy)
        return sub

    def _doc_filter(self, q: QExpr | None, scope_q: Any,
                    expand: Callable[[str], str]) -> Callable[[dict], bool]:
        """q and scopeQ on a stored document: the store's SQL, unless the numbers settle q."""
        exact = self._filter.compile(q, scope_q, expand)
        decide = _decider(q, expand) if q is not None else None
        if decide is None:
            return exact

        def matches(doc: dict) -> bool:
            decided = decide(_Facts(doc))
            if decided is False or (decided and scope_q is None):
                return decided
            return exact(doc)

        return matches

    # -- the compiled set ----------------------------------------------------------------

    def refresh(self) -> None:
        version = self.store.subscriptions_version()
        if version == self._version:
            return
        with self._lock:
            compiled: dict[tuple[str, str], model.Compiled] = {}
            index: dict[str, _TenantIndex] = {}
            for record in self.store.subscriptions_all():
                try:
                    sub = self._compile(record.tenant, record.kind, record.doc)
                except DothiError:
                    continue  # e.g. its @context is gone: it cannot match until fixed
                compiled[(record.tenant, record.id)] = sub
                if sub.kind == "entity":
                    index.setdefault(record.tenant, _TenantIndex()).add(sub)
            self._compiled, self._index, self._version = compiled, index, version

    def compiled(self, tenant: str, sid: str, *, refresh: bool = True) -> model.Compiled | None:
        """``refresh=False`` for a caller that has just refreshed (it saves a read)."""
        if refresh:
            self.refresh()
        return self._compiled.get((tenant, sid))

    def of_kind(self, tenant: str, kind: str) -> list[model.Compiled]:
        self.refresh()
        return [s for (t, _), s in self._compiled.items() if t == tenant and s.kind == kind]

    # -- matching ------------------------------------------------------------------------

    def on_change(self, tenant: str, outcomes: Sequence[Outcome]) -> list[Notice]:
        """The store's change hook: runs inside the write transaction."""
        self.refresh()
        index = self._index.get(tenant)
        if index is None:
            return []
        now_ms = _now_ms()
        notices: list[Notice] = []
        for outcome in outcomes:
            if outcome.status not in ("created", "updated", "deleted"):
                continue
            doc = outcome.after if outcome.after is not None else outcome.before
            assert doc is not None
            payloads: dict[bool, bytes] = {}
            # Type-wide subscriptions mostly watch the same attributes: one look each.
            reasons_for: dict[frozenset[str] | None, list[str]] = {}
            for sub in index.candidates(doc):
                if sub.interval_ms is not None or not sub.live(now_ms):
                    continue
                reasons = reasons_for.get(sub.watched)
                if reasons is None:
                    reasons = reasons_for[sub.watched] = model.change_reasons(
                        outcome.before, outcome.after, sub.watched)
                reason = next((r for r in reasons if r in sub.triggers), None)
                if reason is None or not sub.selects(doc):
                    continue
                if sub.show_changes not in payloads:
                    payloads[sub.show_changes] = _payload(outcome, sub.show_changes)
                notices.append(Notice(sub.id, reason, payloads[sub.show_changes]))
        if notices:
            self._produced = True
        return notices

    def committed(self) -> None:
        """After a write has committed: wake the notifier if it wrote notifications."""
        if self._produced:
            self._produced = False
            if self.wake is not None:
                self.wake()

    def periodic(self, now_ms: int) -> int:
        """Queue the notifications of periodic subscriptions that are due; how many."""
        queued = 0
        for tenant, sid, due in self.store.periodic_due(now_ms):
            sub = self.compiled(tenant, sid)
            if sub is None or sub.interval_ms is None:
                continue
            if not self.store.periodic_claim(tenant, sid, due, now_ms + sub.interval_ms):
                continue  # another worker took this run
            if not sub.live(now_ms):
                continue
            notice = None
            if sub.kind == "csource":
                if self.csource_snapshot is not None:
                    notice = self.csource_snapshot(sub, "timeInterval")
            else:
                docs, _ = self.store.query(tenant, _entity_query(sub))
                if docs:
                    notice = Notice(sid, "timeInterval", orjson.dumps({"entities": docs}))
            if notice is not None:
                self.store.outbox_add(tenant, [notice])
                queued += 1
        return queued


def _entity_query(sub: model.Compiled) -> EntityQuery:
    doc = sub.doc
    return EntityQuery(
        selectors=[Selector(types=s.types, ids=[s.id] if s.id else None,
                            id_pattern=s.pattern.pattern if s.pattern is not None else None)
                   for s in sub.selectors],
        q=parse_q(unquote(doc["q"])) if doc.get("q") else None,
        scope_q=parse_scope_q(unquote(doc["scopeQ"])) if doc.get("scopeQ") else None,
        geo=sub.geo, geo_attr=sub.geo_attr, expand=sub.ctx.expand,
        limit=PERIODIC_MAX_ENTITIES,
        hidden=sub.reader.read_rules() if sub.reader is not None else (),
    )


def _mine(doc: dict, tenant: str) -> bool:
    """Whether the reader's access (dothi.auth) lets it see this subscription: its own,
    or any in a tenant it manages."""
    return _manages(tenant) or \
        (doc.get(model.READER) or {}).get("subject") == auth.current().principal.subject


def _manages(tenant: str) -> bool:
    """Whether the reader's access (dothi.auth) manages ``tenant``'s subscriptions."""
    access = auth.current()
    return access.unlimited or access.may("manage") and access.tenant_ok(tenant)


def _payload(outcome: Outcome, show_changes: bool) -> bytes:
    """What the outbox keeps of one change: the entity as it now is (for a deletion, who
    it was and when) and, where a notification may need them, its attributes as they were
    (showChanges, deleted attributes)."""
    before = outcome.before
    if outcome.after is None:
        assert before is not None
        entity = {k: before[k] for k in ("id", "type", "createdAt", "modifiedAt")
                  if k in before}
        entity["deletedAt"] = now_iso()
        body: dict = {"entity": entity}
    else:
        body = {"entity": outcome.after}
    if before is not None and (show_changes or outcome.after is None
                               or any(k not in outcome.after for k in before if ":" in k)):
        body["before"] = {k: v for k, v in before.items() if ":" in k}
    return orjson.dumps(body)


_NUMERIC_OPS: dict[str, Callable[[Any, Any], bool]] = {
    EQ: operator.eq, GT: operator.gt, GE: operator.ge, LT: operator.lt, LE: operator.le}
# Where the SQL of a plain attribute term looks for values (clause 4.9): Property and
# GeoProperty ``value`` (and its ``@value``), ListProperty ``valueList``, JsonProperty ``json``.
_VALUE_MEMBERS = ("value", "valueList", "json")


def _screen(sub: model.Compiled) -> Screen | None:
    checks: list[Screen] = []
    decide = _decider(parse_q(unquote(sub.doc["q"])), sub.ctx.expand) \
        if sub.doc.get("q") else None
    if decide is not None:
        checks.append(lambda facts: decide(facts) is not False)
    # The store's own geo-query prefilter: a geometry that can match overlaps this box.
    box = sub.geo.prefilter_bbox() if sub.geo is not None else None
    if box is not None:
        attr = sub.geo_attr
        checks.append(lambda facts: _overlaps(facts.boxes(attr), box))
    if len(checks) < 2:
        return checks[0] if checks else None
    return lambda facts: all(check(facts) for check in checks)


def _decider(expr: QExpr, expand: Callable[[str], str]) -> Decision | None:
    """Decides terms comparing a plain attribute with a number (an alert threshold such as
    ``currentLevel>2.5``): false when no number of the attribute passes; true when one
    does and every instance is a Property with a plain number, where the SQL compares
    exactly those numbers. None for an expression with no such term."""
    if isinstance(expr, Term):
        path, literal = expr.path, expr.value
        if expr.op not in _NUMERIC_OPS or not isinstance(literal, Literal) or \
                literal.kind != NUMBER or len(path.names) != 1 or path.meta or path.member:
            return None
        iri, compare, bound = expand(path.attr), _NUMERIC_OPS[expr.op], literal.value

        def term(facts: _Facts) -> bool | None:
            numbers, plain = facts.numbers(iri)
            for n in numbers:
                if compare(n, bound):
                    return True if plain else None
            return False

        return term
    parts = [_decider(item, expand) for item in expr.items]
    if all(p is None for p in parts):
        return None
    # And: false if one part is, true if all are; Or: true if one part is, false if all are.
    settles = isinstance(expr, Or)

    def combined(facts: _Facts) -> bool | None:
        result: bool | None = not settles
        for part in parts:
            decided = part(facts) if part is not None else None
            if decided is settles:
                return settles
            if decided is None:
                result = None
        return result

    return combined


def _numbers(instances: Any) -> tuple[list[int | float], bool]:
    """Every number inside the value members of an attribute's instances, at any depth (a
    superset of the candidates the SQL compares, so a test over them never rules out a
    match), and whether each instance is a Property whose value is one plain number (then
    they are exactly the SQL's candidates)."""
    if isinstance(instances, dict):
        instances = list(instances.values())  # the SQL walks an object's members as items
    elif not isinstance(instances, list):
        instances = []
    found: list[int | float] = []
    plain = bool(instances)
    for inst in instances:
        value = inst.get("value") if isinstance(inst, dict) else None
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and inst.get("type") == "Property"):
            plain = False
            break
        found.append(value)
    if plain:
        return found, True
    found = []
    stack = [inst.get(m) for inst in instances if isinstance(inst, dict)
             for m in _VALUE_MEMBERS]
    while stack:
        value = stack.pop()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(value)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return found, False


def _boxes(instances: Any) -> list[tuple[float, float, float, float]] | None:
    """Bounding boxes of the geometries a geoQ tests (GeoProperty instances with a value);
    None if one cannot be read, so that the full test decides."""
    boxes = []
    for inst in instances or ():
        if isinstance(inst, dict) and inst.get("type") == "GeoProperty" and \
                isinstance(inst.get("value"), dict):
            try:
                boxes.append(geometry_bbox(inst["value"]))
            except (KeyError, IndexError, TypeError, ValueError):
                return None
    return boxes


def _overlaps(boxes: list[tuple[float, float, float, float]] | None,
              box: tuple[float, float, float, float]) -> bool:
    if boxes is None:
        return True
    minx, maxx, miny, maxy = box
    return any(b[0] <= maxx and b[1] >= minx and b[2] <= maxy and b[3] >= miny
               for b in boxes)


def _first_run(doc: dict) -> int | None:
    """When a periodic subscription first notifies: one interval after it was written."""
    interval = doc.get("timeInterval")
    return _now_ms() + int(interval * 1000) if interval else None


def _check_id(sid: str) -> None:
    if not is_uri(sid):
        raise BadRequestData(f"Subscription id must be a URI: {sid!r}")
