"""The embedded backend: one SQLite file in WAL mode.

One writer connection behind a lock (every write is one ``BEGIN IMMEDIATE`` transaction),
readers on their own per-thread connections. Indexes: (tenant, id) for entities,
(tenant, type, rowid) for type selection, an R*Tree over GeoProperty bounding boxes, and a
per-tenant summary of types and attributes kept up to date by the writer so that ``/types``
and ``/attributes`` never scan entities.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from dothi.errors import InternalError
from dothi.ngsild.entity import deflate, inflate
from dothi.ngsild.geo import geometry_bbox
from dothi.ngsild.temporal import TimeQuery
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import TypeExpr
from dothi.store import audit
from dothi.store import sqlite_registrations as registrations
from dothi.store import sqlite_subscriptions as subs
from dothi.store.base import (
    ChangeFn,
    ChangeHook,
    EntityQuery,
    Notice,
    Outcome,
    PendingNotice,
    Selector,
    SubscriptionRecord,
    SubscriptionStats,
    TemporalEntity,
    TypeStat,
)
from dothi.store.changes import GEO_SLOTS, Signature, expand_stats, geo_instances, run_changes
from dothi.store.sqlite_filters import (
    client_patterns,
    q_to_sql,
    read_rule_sql,
    register_sqlite_functions,
    scope_q_to_sql,
    type_expr_sql,
)
from dothi.store.sqlite_history import SCHEMA as HISTORY_SCHEMA
from dothi.store.sqlite_history import (
    History,
    PruneState,
    change_instance,
    read_temporal,
    retention_rule,
)

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_entities",
        """
        CREATE TABLE tenants (name TEXT PRIMARY KEY, created_at TEXT NOT NULL);
        CREATE TABLE entities (
            rowid INTEGER PRIMARY KEY,
            tenant TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE TABLE entity_types (
            tenant TEXT NOT NULL, type TEXT NOT NULL, entity INTEGER NOT NULL,
            PRIMARY KEY (tenant, type, entity)
        ) WITHOUT ROWID;
        -- One row per GeoProperty instance; id = entity rowid * 64 + instance slot, so an
        -- entity's rows are found from its document alone. px/py keep a point's exact
        -- coordinates (the R*Tree itself holds float32 boxes).
        CREATE VIRTUAL TABLE geo_rtree USING rtree (
            id, minx, maxx, miny, maxy, +entity INTEGER, +attr TEXT, +px REAL, +py REAL
        );
        CREATE TABLE type_attrs (
            tenant TEXT NOT NULL, type TEXT NOT NULL, attr TEXT NOT NULL, attr_type TEXT NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (tenant, type, attr, attr_type)
        ) WITHOUT ROWID;
        CREATE TABLE jsonld_contexts (
            url TEXT PRIMARY KEY, doc TEXT NOT NULL, kind TEXT NOT NULL, created_at TEXT NOT NULL
        );
        """,
    ),
    ("0002_history", HISTORY_SCHEMA),
    ("0003_subscriptions", subs.SCHEMA),
    ("0004_csource_registrations", registrations.SCHEMA),
    (
        "0005_audit",
        """
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY, at TEXT NOT NULL, tenant TEXT NOT NULL,
            who TEXT NOT NULL, origin TEXT NOT NULL, action TEXT NOT NULL,
            target TEXT NOT NULL, detail TEXT NOT NULL, hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_target ON audit_log (tenant, target);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """,
    ),
]


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
    )
    done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        # executescript commits on its own, so the step and its record go in one script.
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{sql}\n"
            f"INSERT INTO schema_migrations VALUES ('{name}', '{now_iso()}');\nCOMMIT;"
        )


# SQLite's page cache, per connection: the writer's, and each reader's (one per server
# thread, up to anyio's 40). They fill as the file grows and never shrink, so together
# they bound the store's memory: 16 + 40 x 2 MiB. With 32 and 8 MiB, an hour of
# bench/soak.py still grew the server after warm-up (2.6 MB/min; 1.2 with 2 MiB readers)
# while its Python heap stayed flat; the operating system's cache holds the rest.
WRITER_CACHE_KIB = 16 * 1024
READER_CACHE_KIB = 2 * 1024


class _Reader(sqlite3.Connection):
    """A reader's connection: unlike the base class, it can be weakly referenced."""


def _connect(path: str, cache_kib: int,
             factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30,
                           factory=factory)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Fewer, larger checkpoints: hot index pages are copied back once, not per batch.
    conn.execute("PRAGMA wal_autocheckpoint=16384")
    conn.execute("PRAGMA temp_store=MEMORY")
    # Page caches are per connection and there is one reader per server thread: keep them
    # modest and let the operating system's page cache hold the rest of the file.
    conn.execute(f"PRAGMA cache_size=-{cache_kib}")
    register_sqlite_functions(conn)
    _register_geo(conn)
    return conn


class SQLiteStore:
    def __init__(self, path: str | Path, *, keep_history: bool = True,
                 lease_ms: int = 30_000, audit: bool = True) -> None:
        self.path = str(path)
        # Every write goes to the audit log (off only for a migration's target, which
        # receives the source's log as it is).
        self.audit = audit
        self.change_hook: ChangeHook | None = None
        # This process's name on the outbox rows it delivers, and how long another
        # process waits before taking them over should this one stop without a word.
        self.owner = uuid.uuid4().hex
        self.lease_ms = lease_ms
        # Every attribute instance written is kept for the temporal API.
        self.keep_history = keep_history
        self.history = History()
        self._write_lock = threading.Lock()
        # Writers in other processes (serve --workers N, the CLI) queue on this lock file:
        # a blocked flock wakes the moment it is released, where SQLite's busy handler
        # would sleep for up to 100 ms between retries.
        self._lock_file = open(self.path + ".writelock", "a+b")  # noqa: SIM115
        self._writer = _connect(self.path, cache_kib=WRITER_CACHE_KIB)
        _migrate(self._writer)
        self._local = threading.local()
        # Weakly: a reader lives as long as its thread. The server's worker threads come
        # and go (anyio ends one idle for 10 s), and holding every reader they ever made,
        # each with its page cache, grew a server by 1.9 GB in an hour of bench/soak.py.
        self._readers: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._readers_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, keep_history: bool = True,
                 lease_ms: int = 30_000) -> SQLiteStore:
        """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's form)."""
        path = url.removeprefix("sqlite:").removeprefix("//")
        return cls(path[1:] if path.startswith("/") else path or "dothi.db",
                   keep_history=keep_history, lease_ms=lease_ms)

    def _max(self, sql: str) -> int:
        value = self._writer.execute(sql).fetchone()[0]
        return int(value or 0)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, cache_kib=READER_CACHE_KIB, factory=_Reader)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.add(conn)
        return conn

    def analyze(self) -> None:
        with self._write_lock, _file_lock(self._lock_file):
            self._writer.execute("ANALYZE")

    def close(self) -> None:
        with self._readers_lock:
            for conn in list(self._readers):
                conn.close()
            self._readers.clear()
        self._writer.close()
        self._lock_file.close()

    # -- tenants -----------------------------------------------------------------------

    def tenant_exists(self, tenant: str) -> bool:
        row = self._reader().execute("SELECT 1 FROM tenants WHERE name=?", (tenant,)).fetchone()
        return row is not None

    def tenants(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT name FROM tenants ORDER BY name")]

    # -- entities ----------------------------------------------------------------------

    def get(self, tenant: str, eid: str) -> dict | None:
        row = self._reader().execute(
            "SELECT doc FROM entities WHERE tenant=? AND id=?", (tenant, eid)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the shared file, across threads and processes."""
        with self._write_lock, _file_lock(self._lock_file):
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def apply(self, tenant: str, changes: Sequence[tuple[str, ChangeFn]]) -> list[Outcome]:
        with self._transaction() as conn:
            # Allocated under the write lock of the database, so several processes
            # sharing one file never hand out the same rowid.
            self._next_rowid = self._max("SELECT max(rowid) FROM entities") + 1
            outcomes = self._apply(conn, tenant, changes)
            if self.keep_history:
                self.history.record(conn, tenant, outcomes)
            if self.change_hook is not None:
                notices = self.change_hook(tenant, outcomes)
                if notices:
                    subs.enqueue(conn, tenant, notices, self.owner, _now_ms(), self.lease_ms)
            self._audit(conn, audit.entity_entries(tenant, outcomes, changes))
        return outcomes

    def _apply(
        self, conn: sqlite3.Connection, tenant: str, changes: Sequence[tuple[str, ChangeFn]]
    ) -> list[Outcome]:
        ids = list(dict.fromkeys(eid for eid, _ in changes))
        current: dict[str, dict | None] = dict.fromkeys(ids)
        rowids: dict[str, int] = {}
        original: dict[str, tuple[int, dict]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rowid, eid, doc in conn.execute(
                f"SELECT rowid, id, doc FROM entities WHERE tenant=? AND id IN ({marks})",
                (tenant, *chunk),
            ):
                rowids[eid] = rowid
                held = inflate(orjson.loads(doc))
                current[eid] = held
                original[eid] = (rowid, held)
        outcomes, stats = run_changes(changes, current)
        final: dict[str, tuple[int, dict] | None] = {}
        for eid, doc in current.items():
            if doc is None:
                final[eid] = None
            else:
                if eid not in rowids:
                    rowids[eid] = self._alloc_rowid()
                final[eid] = (rowids[eid], doc)
        self._persist(conn, tenant, final, original)
        self._persist_stats(conn, tenant, stats)
        if any(o.status in ("created", "updated") for o in outcomes):
            conn.execute(
                "INSERT OR IGNORE INTO tenants VALUES (?, ?)", (tenant, now_iso())
            )
        return outcomes

    def _alloc_rowid(self) -> int:
        rowid = self._next_rowid
        self._next_rowid += 1
        return rowid

    def _persist(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        final: dict[str, tuple[int, dict] | None],
        original: dict[str, tuple[int, dict]],
    ) -> None:
        old_types: list[tuple[str, str, int]] = []
        old_geo: list[tuple[int]] = []
        # Index rows of an entity whose types (or geometries) did not change stay as they
        # are: most writes are measures, and not rewriting those rows took device ingestion
        # from 10,782 to 11,547 messages/s (in-process, no MQTT).
        same_types: set[str] = set()
        new_geo: dict[str, list[tuple[int, str, dict]] | None] = {}  # None: unchanged
        for eid, (rowid, doc) in original.items():
            held = final[eid]
            if held is not None and held[1].get("type") == doc.get("type"):
                same_types.add(eid)
            else:
                old_types.extend((tenant, t, rowid) for t in doc.get("type", ()))
            geo = geo_instances(doc)
            after = geo_instances(held[1]) if held is not None else []
            if held is not None and after == geo:
                new_geo[eid] = None
            else:
                new_geo[eid] = after
                # The stored document says which index rows it owns: deleted by key.
                old_geo.extend((rowid * GEO_SLOTS + slot,) for slot, _, _ in geo)
        conn.executemany(
            "DELETE FROM entity_types WHERE tenant = ? AND type = ? AND entity = ?", old_types)
        conn.executemany("DELETE FROM geo_rtree WHERE id = ?", old_geo)
        deletes = [(held[0],) for eid, held in original.items() if final[eid] is None]
        if deletes:
            conn.executemany("DELETE FROM entities WHERE rowid=?", deletes)
        rows = []
        type_rows: list[tuple[str, str, int]] = []
        geo_rows = []
        for eid, held in final.items():
            if held is None:
                continue
            rowid, doc = held
            rows.append((rowid, tenant, eid, orjson.dumps(deflate(doc))))
            if eid not in same_types:
                type_rows.extend((tenant, t, rowid) for t in doc.get("type", ()))
            placed = new_geo[eid] if eid in new_geo else geo_instances(doc)
            for slot, key, value in placed or ():
                minx, maxx, miny, maxy = geometry_bbox(value)
                point = value.get("type") == "Point"
                geo_rows.append((rowid * GEO_SLOTS + slot, minx, maxx, miny, maxy, rowid, key,
                                 minx if point else None, miny if point else None))
        conn.executemany("INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?)", rows)
        conn.executemany("INSERT OR IGNORE INTO entity_types VALUES (?, ?, ?)", type_rows)
        conn.executemany("INSERT INTO geo_rtree VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", geo_rows)

    def _persist_stats(
        self, conn: sqlite3.Connection, tenant: str, stats: Counter[Signature]
    ) -> None:
        rows = [(tenant, t, a, at, n) for t, a, at, n in expand_stats(stats)]
        if not rows:
            return
        conn.executemany(
            "INSERT INTO type_attrs VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE "
            "SET n = n + excluded.n",
            rows,
        )
        conn.execute("DELETE FROM type_attrs WHERE tenant=? AND n <= 0", (tenant,))

    # -- queries -----------------------------------------------------------------------

    def query(self, tenant: str, query: EntityQuery) -> tuple[list[dict], int | None]:
        conn = self._reader()
        source, key, where, params = self._plan(tenant, query)
        count = None
        docs: list[dict] = []
        _running.geo = query.geo
        try:
            with client_patterns():
                if query.count:
                    count = conn.execute(
                        f"SELECT count(DISTINCT {key}) FROM {source} WHERE {where}", params
                    ).fetchone()[0]
                if query.limit > 0:
                    # DISTINCT only where one entity can come back twice (several geometries).
                    distinct = "DISTINCT " if query.geo is not None else ""
                    order = "" if query.geo is not None else f" ORDER BY {key}"
                    column = "e.id" if query.ids_only else "e.doc"
                    sql = (f"SELECT {distinct}e.rowid, {column} FROM {source} WHERE {where}"
                           f"{order} LIMIT ? OFFSET ?")
                    rows = conn.execute(sql, (*params, query.limit, query.offset))
                    docs = [{"id": r[1]} if query.ids_only else orjson.loads(r[1]) for r in rows]
        finally:
            _running.geo = None
        return docs, count

    def _plan(self, tenant: str, query: EntityQuery) -> tuple[str, str, str, list[Any]]:
        """(FROM clause, entity key, WHERE clause, parameters).

        The driving index is chosen by what is most selective and streams in a stable
        order so that LIMIT stops early: the R*Tree for geo-queries, the type index for a
        single-type selection, the entity table otherwise. Other conditions are checked
        per row through primary-key lookups.
        """
        clauses: list[str] = []
        params: list[Any] = []
        drive_type: str | None = None
        sels = list(query.selectors)
        if (query.geo is None or query.geo.prefilter_bbox() is None) and len(sels) == 1 \
                and sels[0].types is not None and sels[0].types.op == "type":
            drive_type = sels[0].types.name
            sels = [replace(sels[0], types=None)]
        if query.geo is not None and query.geo.prefilter_bbox() is not None:
            minx, maxx, miny, maxy = query.geo.prefilter_bbox()
            source = "geo_rtree g JOIN entities e ON e.rowid = g.entity"
            key = "e.rowid"
            clauses.append("g.maxx >= ? AND g.minx <= ? AND g.maxy >= ? AND g.miny <= ?"
                           " AND g.attr = ? AND e.tenant = ?")
            params.extend([minx, maxx, miny, maxy, query.geo_attr, tenant])
        elif drive_type is not None:
            source = "entity_types t JOIN entities e ON e.rowid = t.entity"
            key = "t.entity"
            clauses.append("t.tenant = ? AND t.type = ?")
            params.extend([tenant, drive_type])
        else:
            source = "entities e"
            key = "e.rowid"
            clauses.append("e.tenant = ?")
            params.append(tenant)
        if query.geo is not None and query.geo.prefilter_bbox() is None:
            clauses.append("dothi_geo(json_extract(e.doc, ?))")
            params.append(_json_path(query.geo_attr))
        # Conditions that need only the index row are written against it, so SQLite checks
        # them before it reads the entity's page.
        entity_key = "g.entity" if source.startswith("geo_rtree") else "e.rowid"
        alternatives = []
        for sel in sels:
            parts: list[str] = []
            if sel.ids:
                parts.append(f"e.id IN ({','.join('?' * len(sel.ids))})")
                params.extend(sel.ids)
            if sel.id_pattern is not None:
                parts.append("regexp(?, e.id)")
                params.append(sel.id_pattern)
            if sel.types is not None:
                sql, p = _type_sql(sel.types, tenant, entity_key)
                parts.append(sql)
                params.extend(p)
            alternatives.append(" AND ".join(parts) if parts else "1")
        if alternatives and alternatives != ["1"]:
            clauses.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
        if query.attrs_any:
            ors = []
            for iri in query.attrs_any:
                ors.append("json_type(e.doc, ?) IS NOT NULL")
                params.append(_json_path(iri))
            clauses.append("(" + " OR ".join(ors) + ")")
        if query.q is not None:
            sql, p = q_to_sql(query.q, query.expand, "e.doc")
            clauses.append(f"({sql})")
            params.extend(p)
        if query.scope_q is not None:
            sql, p = scope_q_to_sql(query.scope_q, "e.doc")
            clauses.append(f"({sql})")
            params.extend(p)
        for rule in query.hidden:
            sql, p = read_rule_sql(rule, lambda t: _types_any_sql(t, tenant, entity_key),
                                   q_to_sql)
            clauses.append(sql)
            params.extend(p)
        if source.startswith("geo_rtree"):
            # Last, so the cheap index checks above have already thrown most rows out.
            # Points are decided from the index row; other shapes from the document.
            clauses.append("(g.px IS NULL OR dothi_geo_point(g.px, g.py) != 0)")
            rect = query.geo.rectangle() if query.geo is not None else None
            if rect is not None:
                # A shape whose index box lies inside a query rectangle intersects it and
                # is within it: no document is read for it. (The R*Tree rounds its boxes
                # outwards, so its box inside means the true box inside.)
                clauses.append("(g.px IS NOT NULL OR (g.minx >= ? AND g.miny >= ? AND "
                               "g.maxx <= ? AND g.maxy <= ?) OR "
                               "dothi_geo(json_extract(e.doc, ?)))")
                params.extend([*rect, _json_path(query.geo_attr)])
            else:
                clauses.append("(g.px IS NOT NULL OR dothi_geo(json_extract(e.doc, ?)))")
                params.append(_json_path(query.geo_attr))
        return source, key, " AND ".join(clauses), params

    # -- types and attributes ----------------------------------------------------------

    def type_stats(self, tenant: str) -> list[TypeStat]:
        stats: dict[str, TypeStat] = {}
        for etype, attr, attr_type, n in self._reader().execute(
            "SELECT type, attr, attr_type, n FROM type_attrs WHERE tenant=? ORDER BY type, attr",
            (tenant,),
        ):
            stat = stats.setdefault(etype, TypeStat(etype, 0, {}))
            if attr == "":
                stat.entities = n
            else:
                stat.attributes.setdefault(attr, set()).add(attr_type)
                stat.attribute_counts[attr] = max(stat.attribute_counts.get(attr, 0), n)
        return list(stats.values())

    def type_extent(self, tenant: str, etype: str, geo_attr: str
                    ) -> tuple[tuple[float, float, float, float] | None, str | None]:
        conn = self._reader()
        # One pass over the R*Tree (it is looked up by rowid only, never by a range of
        # them); its boxes are float32, a hair larger than the geometries.
        box = conn.execute(
            "SELECT min(g.minx), min(g.miny), max(g.maxx), max(g.maxy) FROM geo_rtree g "
            "WHERE g.attr = ? AND g.entity IN (SELECT entity FROM entity_types "
            "WHERE tenant = ? AND type = ?)", (geo_attr, tenant, etype)).fetchone()
        modified = conn.execute(
            "SELECT max(json_extract(e.doc, '$.modifiedAt')) FROM entity_types t "
            "JOIN entities e ON e.rowid = t.entity WHERE t.tenant = ? AND t.type = ?",
            (tenant, etype)).fetchone()[0]
        return (None if box[0] is None else tuple(box)), modified  # type: ignore[return-value]

    # -- @context documents ------------------------------------------------------------

    def contexts(self) -> list[tuple[str, Any, str, str]]:
        return [
            (url, json.loads(doc), kind, created)
            for url, doc, kind, created in self._reader().execute(
                "SELECT url, doc, kind, created_at FROM jsonld_contexts ORDER BY url"
            )
        ]

    def get_context(self, url: str) -> tuple[Any, str, str] | None:
        row = self._reader().execute(
            "SELECT doc, kind, created_at FROM jsonld_contexts WHERE url=?", (url,)
        ).fetchone()
        return (json.loads(row[0]), row[1], row[2]) if row else None

    def put_context(self, url: str, document: Any, kind: str, created_at: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO jsonld_contexts VALUES (?, ?, ?, ?)",
                (url, json.dumps(document, ensure_ascii=False), kind, created_at),
            )
            self._audit(conn, [audit.context_entry("context.store", url, kind)])

    def delete_context(self, url: str) -> bool:
        with self._transaction() as conn:
            deleted = conn.execute("DELETE FROM jsonld_contexts WHERE url=?",
                                   (url,)).rowcount > 0
            if deleted:
                self._audit(conn, [audit.context_entry("context.delete", url)])
        return deleted

    # -- history (temporal API) ----------------------------------------------------------

    def temporal_add(self, tenant: str, eid: str, types: Sequence[str],
                     attrs: dict[str, list[dict]], *, must_exist: bool = False) -> bool | None:
        """Add instances; True if the temporal entity is new. With ``must_exist``, None
        (and nothing written) if it does not exist: checked in the same transaction, so
        a concurrent delete cannot be undone by the add."""
        with self._transaction() as conn:
            if must_exist and self.history.find_tid(conn, tenant, eid) is None:
                return None
            created = self.history.add(conn, tenant, eid, types, attrs)
            conn.execute("INSERT OR IGNORE INTO tenants VALUES (?, ?)", (tenant, now_iso()))
            self._audit(conn, [audit.history_add_entry(tenant, eid, attrs)])
        return created

    def temporal_query(
        self, tenant: str, selectors: Sequence[Selector], ids_in: Sequence[str] | None,
        tq: TimeQuery, limit: int, offset: int, count: bool, cap: int,
    ) -> tuple[list[TemporalEntity], int | None]:
        conn = self._reader()
        with client_patterns():
            found, total = self.history.select(conn, tenant, selectors, ids_in, tq.attrs,
                                               limit, offset, count)
        return [read_temporal(self.history, conn, tid, eid, types, tq, cap)
                for tid, eid, types in found], total

    def temporal_get(self, tenant: str, eid: str, tq: TimeQuery,
                     cap: int) -> TemporalEntity | None:
        conn = self._reader()
        found = self.history.find_tid(conn, tenant, eid)
        if found is None:
            return None
        return read_temporal(self.history, conn, found[0], eid, found[1], tq, cap)


    def temporal_delete(self, tenant: str, eid: str) -> bool:
        with self._transaction() as conn:
            deleted = self.history.delete_entity(conn, tenant, eid)
            if deleted:
                self._audit(conn, [audit.Entry(tenant, "history.delete", eid)])
            return deleted

    def temporal_delete_attribute(self, tenant: str, eid: str, iri: str,
                                  dataset: str | None, delete_all: bool) -> bool | None:
        """None if there is no such temporal entity, else whether instances were deleted."""
        with self._transaction() as conn:
            found = self.history.find_tid(conn, tenant, eid)
            if found is None:
                return None
            deleted = self.history.delete_attribute(conn, found[0], iri, dataset,
                                                    delete_all) > 0
            if deleted:
                self._audit(conn, [audit.history_attribute_entry(tenant, eid, iri, dataset)])
            return deleted

    def temporal_change_instance(
        self, tenant: str, eid: str, iri: str, iid: int,
        change: Callable[[dict], dict | None],
    ) -> bool:
        """Replace (or, when ``change`` returns None, delete) one instance; False if the
        entity, attribute or instance does not exist."""
        with self._transaction() as conn:
            changed = change_instance(self.history, conn, tenant, eid, iri, iid, change)
            if changed:
                self._audit(conn, [audit.history_instance_entry(tenant, eid, iri, iid)])
            return changed

    # Rows one write transaction of a prune touches at most: other writers wait for
    # milliseconds between chunks, not for the whole prune.
    prune_chunk_rows = 5000

    def prune_history(
        self, before_ms: int | None, downsample_before_ms: int | None, period_ms: int | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[int, int]:
        """Apply a retention policy to the history of every tenant (see ``Retention``;
        ``downsample_before_ms`` is rounded down to a period boundary), one chunk per
        transaction, calling ``progress(entities done, entities)`` after each:
        (instances deleted, instances rewritten as period averages)."""
        rule = retention_rule(before_ms, downsample_before_ms, period_ms)
        state = PruneState([r[0] for r in self._reader().execute(
            "SELECT tid FROM temporal_entities ORDER BY tid")])
        while state.done < len(state.tids):
            with self._transaction() as conn:
                self.history.prune_chunk(conn, state, rule, self.prune_chunk_rows)
            if progress is not None:
                progress(state.done, len(state.tids))
        self.audit_append([audit.prune_entry(state.deleted, state.written)])
        return state.deleted, state.written

    # -- subscriptions and their outbox --------------------------------------------------

    def subscription_create(self, tenant: str, sid: str, kind: str, doc: dict,
                            next_due: int | None) -> bool:
        with self._transaction() as conn:
            if subs.get(conn, tenant, sid, None) is not None:
                return False  # one id space for both kinds: notifications find theirs
            created = subs.insert(conn, tenant, sid, kind, doc, next_due)
            if created:
                conn.execute("INSERT OR IGNORE INTO tenants VALUES (?, ?)", (tenant, now_iso()))
                self._audit(conn, [audit.Entry(tenant, "subscription.create", sid)])
            return created

    def subscription_get(self, tenant: str, sid: str,
                         kind: str | None) -> SubscriptionRecord | None:
        return subs.get(self._reader(), tenant, sid, kind)

    def subscription_page(self, tenant: str, kind: str, limit: int,
                          offset: int) -> tuple[list[SubscriptionRecord], int]:
        return subs.page(self._reader(), tenant, kind, limit, offset)

    def subscription_change(
        self, tenant: str, sid: str, kind: str,
        change: Callable[[dict], tuple[dict, int | None]],
    ) -> SubscriptionRecord | None:
        """Read-modify-write one subscription; ``change`` gives (new doc, next periodic
        run) or raises. None if there is no such subscription."""
        with self._transaction() as conn:
            found = subs.get(conn, tenant, sid, kind)
            if found is None:
                return None
            doc, next_due = change(found.doc)
            subs.replace(conn, tenant, sid, doc, next_due)
            self._audit(conn, [audit.Entry(tenant, "subscription.update", sid)])
            found.doc = doc
            return found

    def subscription_delete(self, tenant: str, sid: str, kind: str) -> bool:
        with self._transaction() as conn:
            deleted = subs.delete(conn, tenant, sid, kind)
            if deleted:
                self._audit(conn, [audit.Entry(tenant, "subscription.delete", sid)])
            return deleted

    def subscriptions_version(self) -> int:
        return subs.version(self._reader())

    def subscriptions_all(self) -> list[SubscriptionRecord]:
        return subs.everything(self._reader())

    # -- context source registrations ----------------------------------------------------

    def registration_create(self, tenant: str, rid: str, doc: dict,
                            check: Callable[[], None]) -> bool:
        """Store a new registration; ``check`` runs first inside the write transaction
        (conflict rules that depend on what else is registered or stored)."""
        with self._transaction() as conn:
            check()
            created = registrations.insert(conn, tenant, rid, doc)
            if created:
                conn.execute("INSERT OR IGNORE INTO tenants VALUES (?, ?)", (tenant, now_iso()))
                self._audit(conn, [audit.Entry(tenant, "registration.create", rid)])
            return created

    def registration_get(self, tenant: str, rid: str) -> dict | None:
        return registrations.get(self._reader(), tenant, rid)

    def registration_change(self, tenant: str, rid: str,
                            change: Callable[[dict], dict]) -> dict | None:
        with self._transaction() as conn:
            found = registrations.get(conn, tenant, rid)
            if found is None:
                return None
            doc = change(found)
            registrations.replace(conn, tenant, rid, doc)
            self._audit(conn, [audit.Entry(tenant, "registration.update", rid)])
            return doc

    def registration_delete(self, tenant: str, rid: str) -> bool:
        with self._transaction() as conn:
            deleted = registrations.delete(conn, tenant, rid)
            if deleted:
                self._audit(conn, [audit.Entry(tenant, "registration.delete", rid)])
            return deleted

    def registrations_version(self) -> int:
        return subs.version(self._reader(), registrations.COUNTER)

    def registrations_all(self) -> list[tuple[str, dict]]:
        return registrations.everything(self._reader())

    def outbox_add(self, tenant: str, notices: Sequence[Notice]) -> None:
        with self._transaction() as conn:
            subs.enqueue(conn, tenant, notices, self.owner, _now_ms(), self.lease_ms)

    def outbox_pending(self, now_ms: int, limit: int) -> list[PendingNotice]:
        return subs.pending(self._reader(), self.owner, now_ms, limit)

    def outbox_next_due(self) -> int | None:
        return subs.next_due(self._reader(), self.owner)

    def outbox_claim(self, now_ms: int) -> int:
        with self._transaction() as conn:
            return subs.claim(conn, self.owner, now_ms, self.lease_ms)

    def outbox_release(self) -> None:
        with self._transaction() as conn:
            subs.release(conn, self.owner)

    def outbox_settle(self, done: Sequence[int], retry: Sequence[tuple[int, int, int]],
                      stats: Sequence[tuple[str, str, SubscriptionStats]]) -> None:
        with self._transaction() as conn:
            subs.settle(conn, done, retry, stats)

    def periodic_due(self, now_ms: int) -> list[tuple[str, str, int]]:
        return subs.periodic_due(self._reader(), now_ms)

    def periodic_claim(self, tenant: str, sid: str, expected: int, following: int) -> bool:
        with self._transaction() as conn:
            return subs.periodic_claim(conn, tenant, sid, expected, following)

    # -- audit log -----------------------------------------------------------------------

    def _audit(self, conn: sqlite3.Connection, entries: Sequence[audit.Entry]) -> None:
        """Append to the audit log inside the caller's write transaction (which holds
        the database's write lock, so the chain's head cannot move meanwhile)."""
        if not self.audit or not entries:
            return
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                            ).fetchone()
        rows = audit.chain(head, now_iso(), audit.current(), entries)
        conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [r.fields() for r in rows])

    def audit_append(self, entries: Sequence[audit.Entry]) -> None:
        with self._transaction() as conn:
            self._audit(conn, entries)

    def audit_rows(self, *, after: int = 0, limit: int = 1000,
                   where: audit.Filter | None = None) -> list[audit.Row]:
        sql, params = audit.select_sql(after, limit, where, "?")
        return [audit.Row(*r) for r in self._reader().execute(sql, params)]


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def _file_lock(handle: Any) -> Iterator[None]:
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _json_path(iri: str) -> str:
    if '"' in iri:
        raise InternalError(f"Attribute IRI with a quote cannot be indexed: {iri}")
    return f'$."{iri}"'


def _type_sql(expr: TypeExpr, tenant: str, key: str) -> tuple[str, list[Any]]:
    return type_expr_sql(expr, lambda name: (
        "EXISTS (SELECT 1 FROM entity_types x WHERE x.tenant = ? AND x.type = ?"
        f" AND x.entity = {key})", [tenant, name]))


def _types_any_sql(types: frozenset[str], tenant: str, key: str) -> tuple[str, list[Any]]:
    """The entity has one of ``types``: one look in the type index."""
    return (f"EXISTS (SELECT 1 FROM entity_types x WHERE x.tenant = ? AND x.entity = {key}"
            f" AND x.type IN ({','.join('?' * len(types))}))", [tenant, *sorted(types)])


# The geo-query of the query this thread is running, read by the SQL functions below.
# They are registered once per connection: registering a function expires every prepared
# statement of the connection, so registering them per query made SQLite compile the next
# statements again (the store's query for bench/ogc.py's CQL2 filter: 3.1 ms, now 2.1).
_running = threading.local()


def _geo_point(px: float | None, py: float | None) -> int:
    if px is None or py is None:
        return 2  # not a point: decide from the document
    return 1 if _running.geo.matches_point(px, py) else 0


def _geo_doc(text: str | None) -> int:
    if text is None:
        return 0
    geo = _running.geo
    for inst in orjson.loads(text):
        value = inst.get("value")
        if inst.get("type") == "GeoProperty" and isinstance(value, dict) \
                and geo.matches(value):
            return 1
    return 0


def _register_geo(conn: sqlite3.Connection) -> None:
    """SQL functions that test a stored point or document against the running geo-query."""
    conn.create_function("dothi_geo_point", 2, _geo_point)
    conn.create_function("dothi_geo", 1, _geo_doc)
