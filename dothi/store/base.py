"""The storage protocol every backend implements (SQLite now, PostgreSQL later).

Backends store the documents described in ``dothi.ngsild.entity`` and keep the indexes
that type, id, attribute, scope and geo selection need. Read-modify-write happens inside
``apply`` so that concurrent writers never lose each other's changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from dothi.ngsild.typeexpr import TypeExpr
from dothi.store.audit import Entry, Filter, Row

DEFAULT_TENANT = "urn:ngsi-ld:tenant:default"


class Unchanged:
    """Returned by a change function when the entity must stay as it is."""


UNCHANGED = Unchanged()
# A change function gets the current document (or None) and returns the new one, None to
# delete, or UNCHANGED; raising a DothiError fails that entity only.
ChangeFn = Callable[[dict | None], "dict | None | Unchanged"]


@dataclass
class Outcome:
    id: str
    status: str  # "created", "updated", "deleted", "unchanged" or "failed"
    error: Exception | None = None
    before: dict | None = None
    after: dict | None = None


@dataclass(frozen=True)
class Selector:
    """One entity selector; a query matches an entity that any of its selectors match."""

    types: TypeExpr | None = None
    ids: Sequence[str] | None = None
    id_pattern: str | None = None


@dataclass(frozen=True)
class ReadRule:
    """Entities of ``types`` come back only where ``q`` holds, and never when ``q`` is
    None (``types`` None: every entity): how the reader's access (``dothi.auth``)
    narrows a query. ``expand`` gives the IRIs of the names in ``q``."""

    types: frozenset[str] | None
    q: Any = None
    expand: Callable[[str], str] = field(default=lambda t: t)


@dataclass
class EntityQuery:
    selectors: Sequence[Selector] = ()
    q: Any = None  # dothi.ngsild.qlang expression
    scope_q: Any = None
    geo: Any = None  # dothi.ngsild.geo.GeoQuery
    geo_attr: str = "https://uri.etsi.org/ngsi-ld/location"
    attrs_any: Sequence[str] | None = None  # entity must have one of these attribute IRIs
    expand: Callable[[str], str] = field(default=lambda t: t)
    limit: int = 20
    offset: int = 0
    count: bool = False
    # Only the ids are wanted: documents come back as {"id": ...}.
    ids_only: bool = False
    # What the reader may not see (dothi.auth.access.Access.read_rules).
    hidden: Sequence[ReadRule] = ()


@dataclass
class TypeStat:
    type: str
    entities: int
    attributes: dict[str, set[str]]  # attribute IRI -> attribute types (Property, ...)
    attribute_counts: dict[str, int] = field(default_factory=dict)  # IRI -> entities with it


@dataclass
class TemporalEntity:
    """An entity's history as the store returns it: attribute IRI -> instances in time
    order (each with instanceId, createdAt, modifiedAt), or, for aggregatedValues,
    attribute IRI -> datasetId -> buckets."""

    id: str
    types: list[str]
    attrs: dict[str, list[dict]] = field(default_factory=dict)
    aggregated: dict[str, dict[str | None, list[dict]]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    truncated: bool = False


@dataclass
class SubscriptionStats:
    """Delivery counters of a subscription (or, in ``settle``, what to add to them)."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None


@dataclass
class SubscriptionRecord:
    tenant: str
    id: str
    kind: str  # "entity" or "csource"
    doc: dict
    stats: SubscriptionStats = field(default_factory=SubscriptionStats)


@dataclass(frozen=True)
class Notice:
    """A notification to send, written to the outbox with the change that caused it."""

    subscription: str
    reason: str
    payload: bytes


@dataclass(frozen=True)
class PendingNotice:
    nid: int
    tenant: str
    subscription: str
    reason: str
    attempts: int
    payload: bytes


# Called inside the write transaction with the outcomes of one ``apply``; what it returns
# is stored in the notification outbox by the same transaction.
ChangeHook = Callable[[str, Sequence[Outcome]], Sequence[Notice]]


class Store(Protocol):
    # Set by the broker: turns committed changes into notifications.
    change_hook: ChangeHook | None

    def tenant_exists(self, tenant: str) -> bool: ...

    def tenants(self) -> list[str]: ...

    def get(self, tenant: str, eid: str) -> dict | None: ...

    def apply(self, tenant: str, changes: Sequence[tuple[str, ChangeFn]]) -> list[Outcome]: ...

    def query(self, tenant: str, query: EntityQuery) -> tuple[list[dict], int | None]: ...

    def type_stats(self, tenant: str) -> list[TypeStat]: ...

    def type_extent(self, tenant: str, etype: str, geo_attr: str
                    ) -> tuple[tuple[float, float, float, float] | None, str | None]:
        """The box (west, south, east, north) that the ``geo_attr`` geometries of the
        entities of type ``etype`` (an IRI) cover, from the geo index, and their latest
        modifiedAt."""

    def contexts(self) -> list[tuple[str, Any, str, str]]: ...

    def get_context(self, url: str) -> tuple[Any, str, str] | None: ...

    def put_context(self, url: str, document: Any, kind: str, created_at: str) -> None: ...

    def delete_context(self, url: str) -> bool: ...

    def temporal_add(self, tenant: str, eid: str, types: Sequence[str],
                     attrs: dict[str, list[dict]], *,
                     must_exist: bool = False) -> bool | None: ...

    def temporal_query(
        self, tenant: str, selectors: Sequence[Selector], ids_in: Sequence[str] | None,
        tq: Any, limit: int, offset: int, count: bool, cap: int,
    ) -> tuple[list[TemporalEntity], int | None]: ...

    def temporal_get(self, tenant: str, eid: str, tq: Any, cap: int) -> TemporalEntity | None: ...

    def temporal_delete(self, tenant: str, eid: str) -> bool: ...

    def temporal_delete_attribute(self, tenant: str, eid: str, iri: str,
                                  dataset: str | None, delete_all: bool) -> bool | None: ...

    def temporal_change_instance(self, tenant: str, eid: str, iri: str, iid: int,
                                 change: Callable[[dict], dict | None]) -> bool: ...

    def prune_history(
        self, before_ms: int | None, downsample_before_ms: int | None, period_ms: int | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[int, int]: ...

    # -- subscriptions and their outbox --------------------------------------------------

    def subscription_create(self, tenant: str, sid: str, kind: str, doc: dict,
                            next_due: int | None) -> bool: ...

    def subscription_get(self, tenant: str, sid: str,
                         kind: str | None) -> SubscriptionRecord | None: ...

    def subscription_page(self, tenant: str, kind: str, limit: int,
                          offset: int) -> tuple[list[SubscriptionRecord], int]: ...

    def subscription_change(
        self, tenant: str, sid: str, kind: str,
        change: Callable[[dict], tuple[dict, int | None]],
    ) -> SubscriptionRecord | None: ...

    def subscription_delete(self, tenant: str, sid: str, kind: str) -> bool: ...

    def subscriptions_version(self) -> int: ...

    def subscriptions_all(self) -> list[SubscriptionRecord]: ...

    # -- context source registrations ----------------------------------------------------

    def registration_create(self, tenant: str, rid: str, doc: dict,
                            check: Callable[[], None]) -> bool: ...

    def registration_get(self, tenant: str, rid: str) -> dict | None: ...

    def registration_change(self, tenant: str, rid: str,
                            change: Callable[[dict], dict]) -> dict | None: ...

    def registration_delete(self, tenant: str, rid: str) -> bool: ...

    def registrations_version(self) -> int: ...

    def registrations_all(self) -> list[tuple[str, dict]]: ...

    def outbox_add(self, tenant: str, notices: Sequence[Notice]) -> None: ...

    def outbox_pending(self, now_ms: int, limit: int) -> list[PendingNotice]: ...

    def outbox_next_due(self) -> int | None: ...

    def outbox_claim(self, now_ms: int) -> int: ...

    def outbox_release(self) -> None: ...

    def outbox_settle(self, done: Sequence[int], retry: Sequence[tuple[int, int, int]],
                      stats: Sequence[tuple[str, str, SubscriptionStats]]) -> None: ...

    def periodic_due(self, now_ms: int) -> list[tuple[str, str, int]]: ...

    def periodic_claim(self, tenant: str, sid: str, expected: int, following: int) -> bool: ...

    # The audit log (dothi.store.audit): every write above appends to it in its own
    # transaction; reads of personal data are appended by the services that make them.
    def audit_append(self, entries: Sequence[Entry]) -> None: ...

    def audit_rows(self, *, after: int = 0, limit: int = 1000,
                   where: Filter | None = None) -> list[Row]: ...

    def analyze(self) -> None:
        """Refresh the query planner's statistics, after a bulk load: without them a plan
        made for an empty table can scan every row."""
        ...

    def close(self) -> None: ...


def query_all(store: Store, tenant: str, query: EntityQuery) -> list[dict]:
    """Every entity ``query`` matches, read a page of ``query.limit`` at a time (so no
    single read holds more than a page's rows in the database's result set)."""
    out: list[dict] = []
    page = replace(query, offset=query.offset, count=False)
    while True:
        docs, _ = store.query(tenant, page)
        out.extend(docs)
        if len(docs) < page.limit:
            return out
        page = replace(page, offset=page.offset + page.limit)


def partition(tenant: str, name: str) -> str:
    """The store's tenant that keeps a tenant's ``name`` data apart (its citizens'
    personal data, its uploaded photos). The NGSI-LD API accepts no tenant name with
    ``~`` (``dothi.api.http.tenant_named``), so no query, subscription or export through
    the open API can ever reach a partition: only the service that owns it reads it."""
    return f"{tenant}~{name}"


def open_store(url: str, *, keep_history: bool = True, lease_ms: int = 30_000,
               pool_size: int = 10, timeout_s: float = 5.0,
               statement_timeout_s: float = 60.0) -> Store:
    """The backend a database URL names; ``keep_history`` keeps every attribute instance
    written for the temporal API; ``lease_ms`` is how long pending notifications of a
    process that stopped without a word wait before another process takes them over;
    ``pool_size`` and ``timeout_s`` size PostgreSQL's connection pool and its waits, and
    ``statement_timeout_s`` bounds each of its statements (0: no bound)."""
    if url.startswith("sqlite:"):
        from dothi.store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, keep_history=keep_history, lease_ms=lease_ms)
    if url.startswith(("postgresql:", "postgres:")):
        from dothi.store.postgres import PostgresStore

        return PostgresStore.from_url(url, keep_history=keep_history, lease_ms=lease_ms,
                                      pool_size=pool_size, timeout_s=timeout_s,
                                      statement_timeout_s=statement_timeout_s)
    raise ValueError(f"Unknown database URL {url!r}: use sqlite:///path.db or "
                     "postgresql://user@host/database")
