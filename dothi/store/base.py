"""The storage protocol every backend implements (SQLite now, PostgreSQL later).

Backends store the documents described in ``dothi.ngsild.entity`` and keep the indexes
that type, id, attribute, scope and geo selection need. Read-modify-write happens inside
``apply`` so that concurrent writers never lose each other's changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dothi.ngsild.typeexpr import TypeExpr

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


class Store(Protocol):
    def tenant_exists(self, tenant: str) -> bool: ...

    def tenants(self) -> list[str]: ...

    def get(self, tenant: str, eid: str) -> dict | None: ...

    def apply(self, tenant: str, changes: Sequence[tuple[str, ChangeFn]]) -> list[Outcome]: ...

    def query(self, tenant: str, query: EntityQuery) -> tuple[list[dict], int | None]: ...

    def type_stats(self, tenant: str) -> list[TypeStat]: ...

    def contexts(self) -> list[tuple[str, Any, str, str]]: ...

    def get_context(self, url: str) -> tuple[Any, str, str] | None: ...

    def put_context(self, url: str, document: Any, kind: str, created_at: str) -> None: ...

    def delete_context(self, url: str) -> bool: ...

    def temporal_add(self, tenant: str, eid: str, types: Sequence[str],
                     attrs: dict[str, list[dict]]) -> bool: ...

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

    def close(self) -> None: ...


def open_store(url: str, *, keep_history: bool = True) -> Store:
    """The backend a database URL names; ``keep_history`` keeps every attribute instance
    written for the temporal API."""
    if url.startswith("sqlite:"):
        from dothi.store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, keep_history=keep_history)
    if url.startswith(("postgresql:", "postgres:")):
        raise ValueError("This dothi build has only the embedded SQLite backend (sqlite:///path.db)")
    raise ValueError(f"Unknown database URL {url!r}: use sqlite:///path.db")
