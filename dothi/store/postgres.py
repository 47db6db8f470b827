"""The scale-out backend: PostgreSQL 15 with PostGIS, shared by any number of processes.

Entities are JSONB documents (the stored form of ``dothi.ngsild.entity``) with a
``(tenant, type, rid)`` index table for type selection and one PostGIS row per
GeoProperty instance under a GiST index; history is partitioned by month
(``postgres_history``). Every write is one transaction that first takes transaction-level
advisory locks on the ids it touches, in a fixed order, so concurrent writers of one
entity queue up (also to create it) and writers of different entities never wait for
each other. Connections come from a pool; reads run in autocommit, and reads made by a
thread inside its own write transaction use that transaction's connection.

A lost database (restart, network) surfaces as ``StoreUnavailable`` (503); the pool drops
broken connections and opens new ones when the database is back, so processes recover
without a restart.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from dothi.errors import BadRequestData, DothiError, StoreUnavailable, TooComplexQuery
from dothi.ngsild.entity import deflate, inflate
from dothi.ngsild.temporal import TimeQuery
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import TypeExpr
from dothi.store import audit
from dothi.store import postgres_subscriptions as subs
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
from dothi.store.changes import Signature, expand_stats, geo_instances, run_changes
from dothi.store.postgres_filters import FUNCTIONS as FILTER_FUNCTIONS
from dothi.store.postgres_filters import q_to_sql, scope_q_to_sql
from dothi.store.postgres_history import SCHEMA as HISTORY_SCHEMA
from dothi.store.postgres_history import History, MissingPartitions
from dothi.store.sqlite_filters import read_rule_sql, type_expr_sql
from dothi.store.sqlite_history import (
    PruneState,
    change_instance,
    read_temporal,
    retention_rule,
)

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_entities",
        """
        CREATE EXTENSION IF NOT EXISTS postgis;
        CREATE TABLE tenants (name text PRIMARY KEY, created_at text NOT NULL);
        CREATE TABLE entities (
            rid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant text NOT NULL,
            id text NOT NULL,
            doc jsonb NOT NULL,
            UNIQUE (tenant, id)
        );
        CREATE INDEX entities_order ON entities (tenant, rid);
        CREATE TABLE entity_types (
            tenant text NOT NULL, type text NOT NULL,
            rid bigint NOT NULL REFERENCES entities ON DELETE CASCADE,
            PRIMARY KEY (tenant, type, rid)
        );
        CREATE INDEX entity_types_rid ON entity_types (rid);
        -- One row per GeoProperty instance (slot as in dothi.store.changes.geo_instances).
        CREATE TABLE entity_geo (
            rid bigint NOT NULL REFERENCES entities ON DELETE CASCADE,
            slot smallint NOT NULL, attr text NOT NULL,
            geom geometry(Geometry, 4326) NOT NULL,
            PRIMARY KEY (rid, slot)
        );
        CREATE INDEX entity_geo_gist ON entity_geo USING gist (geom);
        CREATE TABLE type_attrs (
            tenant text NOT NULL, type text NOT NULL, attr text NOT NULL,
            attr_type text NOT NULL, n bigint NOT NULL,
            PRIMARY KEY (tenant, type, attr, attr_type)
        );
        CREATE TABLE jsonld_contexts (
            url text PRIMARY KEY, doc text NOT NULL, kind text NOT NULL,
            created_at text NOT NULL
        );
        """ + FILTER_FUNCTIONS,
    ),
    ("0002_history", HISTORY_SCHEMA),
    ("0003_subscriptions", subs.SCHEMA),
    (
        "0004_audit",
        """
        CREATE TABLE audit_log (
            seq bigint PRIMARY KEY, at text NOT NULL, tenant text NOT NULL,
            who text NOT NULL, origin text NOT NULL, action text NOT NULL,
            target text NOT NULL, detail text NOT NULL, hash text NOT NULL
        );
        CREATE INDEX audit_log_target ON audit_log (tenant, target);
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
        CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
        """,
    ),
]

# Keys of the session-level advisory lock that serialises schema migrations, and of the
# transaction-level ones that serialise registration changes (their conflict checks read
# what else is registered) and appends to the audit log's hash chain (taken last in a
# transaction, after any entity's lock, so that no two writers wait for each other).
_MIGRATION_LOCK = 0x646F746869_01
_REGISTRATION_LOCK = 0x646F746869_02
_AUDIT_LOCK = 0x646F746869_03
_RETRIES = 5


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations this database lacks, one transaction each; the names applied.
    Processes starting together wait for each other on an advisory lock."""
    conn.execute("SET statement_timeout = 0")  # a migration of a big table takes its time
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                     "(name text PRIMARY KEY, applied_at text NOT NULL)")
        done = {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (name, now_iso()))
            applied.append(name)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        conn.execute("RESET statement_timeout")


def _lock_key(tenant: str, eid: str) -> int:
    digest = hashlib.blake2b(f"{tenant}\x00{eid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _json(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def _jsonb(value: Any) -> Jsonb:
    """A JSON parameter serialised by orjson straight to the bytes sent."""
    return Jsonb(value, dumps=orjson.dumps)


class PostgresStore:
    def __init__(self, url: str, *, keep_history: bool = True, lease_ms: int = 30_000,
                 pool_size: int = 10, timeout_s: float = 5.0, audit: bool = True,
                 statement_timeout_s: float = 60.0) -> None:
        self.url = url
        self.audit = audit  # as SQLiteStore's
        self.change_hook: ChangeHook | None = None
        self.owner = uuid.uuid4().hex
        self.lease_ms = lease_ms
        self.keep_history = keep_history
        self.history = History()
        self._local = threading.local()
        self._tenants: set[str] = set()  # known to be in the tenants table
        self._pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, timeout=timeout_s, open=False,
            # JIT compiling the q translation's statements costs far more than running
            # them (about 0.9 s each, measured): these are short OLTP queries.
            # A statement past statement_timeout_s is stopped by the server (a runaway
            # regular expression or a query too broad), not left to hold a connection.
            kwargs={"autocommit": True, "options": "-c jit=off -c statement_timeout="
                    f"{round(statement_timeout_s * 1000)}"}, name="dothi")
        try:
            self._pool.open(wait=True, timeout=timeout_s)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(f"Cannot connect to the database: {exc}") from exc
        with self._connection() as conn:
            migrate(conn)
            self.history.load_partitions(conn)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> PostgresStore:
        return cls(url.replace("postgres://", "postgresql://", 1), **kwargs)

    def analyze(self) -> None:
        with self._pool.connection() as conn:
            conn.execute("SET statement_timeout = 0")
            conn.execute("ANALYZE entities, entity_types, entity_geo")
            conn.execute("RESET statement_timeout")

    def close(self) -> None:
        self._pool.close()

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """This thread's transaction connection if it is inside one, else a pooled one."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.errors.TransactionRollback:
            raise  # a deadlock or serialization failure: the write is tried again
        except psycopg.errors.QueryCanceled as exc:
            raise TooComplexQuery("The database stopped a statement that ran longer than "
                                  "DOTHI_DATABASE_STATEMENT_TIMEOUT: narrow the query") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # The other idle connections likely died with this one (a restart): drop the
            # broken ones now, so that one failed request, not one per pooled
            # connection, tells this process the database went away.
            if not isinstance(exc, PoolTimeout):
                self._pool.check()
            raise StoreUnavailable(f"The database is unavailable: {exc}") from exc

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self._connection() as conn:
            if getattr(self._local, "conn", None) is not None:
                with conn.transaction():  # nested: a savepoint
                    yield conn
                return
            try:
                with conn.transaction():
                    self._local.conn = conn
                    yield conn
            finally:
                self._local.conn = None

    def _retrying(self, work: Callable[[psycopg.Connection], Any]) -> Any:
        """Run ``work`` in a write transaction, again after creating the history
        partitions it lacked or after losing a deadlock."""
        for attempt in range(_RETRIES):
            try:
                with self._transaction() as conn:
                    return work(conn)
            except MissingPartitions as missing:
                with self._connection() as conn:
                    self.history.create_partitions(conn, missing.months)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
            except psycopg.errors.UntranslatableCharacter as exc:
                raise BadRequestData(f"Text the database cannot store: {exc}") from exc
        raise StoreUnavailable("The write could not be completed; try again")

    @staticmethod
    def _lock(conn: psycopg.Connection, tenant: str, ids: Sequence[str]) -> None:
        keys = sorted({_lock_key(tenant, eid) for eid in ids})
        conn.execute("SELECT count(pg_advisory_xact_lock(k)) FROM "
                     "(SELECT k FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(k, n) "
                     "ORDER BY n) AS o", (keys,))

    def _note_tenant(self, conn: psycopg.Connection, tenant: str) -> None:
        if tenant not in self._tenants:
            conn.execute("INSERT INTO tenants VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (tenant, now_iso()))

    def _create(self, tenant: str, insert: Callable[[psycopg.Connection], bool]) -> bool:
        """Run ``insert`` in a write transaction; if it made something, the tenant exists
        from that transaction on."""

        def work(conn: psycopg.Connection) -> bool:
            created = insert(conn)
            if created:
                self._note_tenant(conn, tenant)
            return created

        created = bool(self._retrying(work))
        if created:
            self._tenants.add(tenant)
        return created

    # -- tenants -------------------------------------------------------------------------

    def tenant_exists(self, tenant: str) -> bool:
        if tenant in self._tenants:
            return True
        with self._connection() as conn:
            found = conn.execute("SELECT 1 FROM tenants WHERE name = %s",
                                 (tenant,)).fetchone() is not None
        if found:
            self._tenants.add(tenant)
        return found

    def tenants(self) -> list[str]:
        with self._connection() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM tenants ORDER BY name")]

    # -- entities ------------------------------------------------------------------------

    def get(self, tenant: str, eid: str) -> dict | None:
        with self._connection() as conn:
            row = conn.execute("SELECT doc::text FROM entities WHERE tenant = %s AND id = %s",
                               (tenant, eid)).fetchone()
        return orjson.loads(row[0]) if row else None

    def apply(self, tenant: str, changes: Sequence[tuple[str, ChangeFn]]) -> list[Outcome]:
        outcomes: list[Outcome] = self._retrying(lambda conn: self._apply(conn, tenant, changes))
        if any(o.status in ("created", "updated") for o in outcomes):
            self._tenants.add(tenant)
        return outcomes

    def _apply(self, conn: psycopg.Connection, tenant: str,
               changes: Sequence[tuple[str, ChangeFn]]) -> list[Outcome]:
        ids = list(dict.fromkeys(eid for eid, _ in changes))
        self._lock(conn, tenant, ids)
        current: dict[str, dict | None] = dict.fromkeys(ids)
        # rid, types and geometries as read, before any change function saw the document.
        original: dict[str, tuple[int, list[str], bytes]] = {}
        for rid, eid, text in conn.execute(
                "SELECT rid, id, doc::text FROM entities WHERE tenant = %s AND id = ANY(%s)",
                (tenant, ids)):
            doc = inflate(orjson.loads(text))
            current[eid] = doc
            original[eid] = (rid, list(doc.get("type", ())), _geo_key(doc))
        outcomes, stats = run_changes(changes, current)
        # In the order of the changes, so that new entities are numbered (and listed) in it.
        touched = list(dict.fromkeys(o.id for o in outcomes
                                     if o.status in ("created", "updated")))
        self._persist(conn, tenant, current, original, touched)
        self._persist_stats(conn, tenant, stats)
        if touched:
            self._note_tenant(conn, tenant)
        if self.keep_history:
            self.history.record(conn, tenant, outcomes)
        if self.change_hook is not None:
            notices = self.change_hook(tenant, outcomes)
            if notices:
                subs.enqueue(conn, tenant, notices, self.owner, _now_ms(), self.lease_ms)
        self._audit(conn, audit.entity_entries(tenant, outcomes, changes))
        return outcomes

    def _persist(self, conn: psycopg.Connection, tenant: str, final: dict[str, dict | None],
                 original: dict[str, tuple[int, list[str], bytes]], touched: list[str]) -> None:
        deleted = [held[0] for eid, held in original.items() if final[eid] is None]
        if deleted:  # their type and geo rows go with them (ON DELETE CASCADE)
            conn.execute("DELETE FROM entities WHERE rid = ANY(%s)", (deleted,))
        updates: list[dict[str, Any]] = []
        creates: list[dict[str, Any]] = []
        reindex: list[int] = []  # rows whose types or geometries changed
        for eid in touched:
            doc = final[eid]
            if doc is None:
                continue
            if eid in original:
                rid, types, geo = original[eid]
                updates.append({"rid": rid, "doc": deflate(doc)})
                if list(doc.get("type", ())) != types or _geo_key(doc) != geo:
                    reindex.append(rid)
            else:
                creates.append({"id": eid, "doc": deflate(doc)})
        rids: dict[str, int] = {eid: held[0] for eid, held in original.items()}
        # Rows travel as one JSON parameter (orjson out, PostgreSQL's parser in): binding
        # text arrays cost more than the statements themselves.
        if updates:
            updates.sort(key=lambda u: u["rid"])
            conn.execute(
                "UPDATE entities AS e SET doc = u.doc FROM jsonb_to_recordset(%s) "
                "AS u(rid bigint, doc jsonb) WHERE e.rid = u.rid", (_jsonb(updates),))
        if reindex:
            conn.execute("DELETE FROM entity_types WHERE rid = ANY(%s)", (reindex,))
            conn.execute("DELETE FROM entity_geo WHERE rid = ANY(%s)", (reindex,))
        if creates:
            cur = conn.execute(
                "INSERT INTO entities (tenant, id, doc) SELECT %s, u.id, u.doc "
                "FROM ROWS FROM (jsonb_to_recordset(%s) AS (id text, doc jsonb)) "
                "WITH ORDINALITY AS u(id, doc, n) "
                "ORDER BY u.n RETURNING rid, id", (tenant, _jsonb(creates)))
            rids.update((eid, rid) for rid, eid in cur.fetchall())
        indexed = set(reindex)
        type_rows: list[tuple[str, int]] = []
        geo_rows: list[tuple[int, int, str, str]] = []
        for eid in touched:
            doc = final[eid]
            if doc is None or (eid in original and rids[eid] not in indexed):
                continue
            rid = rids[eid]
            type_rows.extend((t, rid) for t in doc.get("type", ()))
            geo_rows.extend((rid, slot, key, _json(value))
                            for slot, key, value in geo_instances(doc))
        if type_rows:
            conn.execute(
                "INSERT INTO entity_types (tenant, type, rid) SELECT %s, u.type, u.rid "
                "FROM unnest(%s::text[], %s::bigint[]) AS u(type, rid) ON CONFLICT DO NOTHING",
                (tenant, [r[0] for r in type_rows], [r[1] for r in type_rows]))
        if geo_rows:
            try:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO entity_geo (rid, slot, attr, geom) SELECT u.rid, u.slot, "
                        "u.attr, ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON(u.g), 4326)) FROM "
                        "unnest(%s::bigint[], %s::int[], %s::text[], %s::text[]) "
                        "AS u(rid, slot, attr, g)",
                        ([g[0] for g in geo_rows], [g[1] for g in geo_rows],
                         [g[2] for g in geo_rows], [g[3] for g in geo_rows]))
            except (psycopg.errors.InternalError_, psycopg.errors.DataError) as exc:
                raise BadRequestData(f"A geometry PostGIS cannot read: {exc}") from exc

    @staticmethod
    def _persist_stats(conn: psycopg.Connection, tenant: str,
                       stats: Counter[Signature]) -> None:
        rows = expand_stats(stats)
        if not rows:
            return
        types, attrs, kinds, counts = (list(c) for c in zip(*rows, strict=True))
        conn.execute(
            "INSERT INTO type_attrs AS s (tenant, type, attr, attr_type, n) "
            "SELECT %s, u.t, u.a, u.k, u.n FROM unnest(%s::text[], %s::text[], %s::text[], "
            "%s::bigint[]) WITH ORDINALITY AS u(t, a, k, n, o) ORDER BY u.o "
            "ON CONFLICT (tenant, type, attr, attr_type) DO UPDATE SET n = s.n + excluded.n",
            (tenant, types, attrs, kinds, counts))
        conn.execute("DELETE FROM type_attrs WHERE tenant = %s AND n <= 0", (tenant,))

    # -- queries -------------------------------------------------------------------------

    def query(self, tenant: str, query: EntityQuery) -> tuple[list[dict], int | None]:
        where, params = self._where(tenant, query)
        with self._connection() as conn:
            count = None
            if query.count:
                row = conn.execute(f"SELECT count(*) FROM entities e WHERE {where}",
                                   params).fetchone()
                count = int(row[0]) if row else 0
            docs: list[dict] = []
            if query.limit > 0:
                # The page's rows are chosen first and only their documents read and
                # turned into text: not those of every candidate the sort looked at.
                column = "e.id" if query.ids_only else "e.doc::text"
                rows = conn.execute(
                    f"SELECT {column} FROM entities e JOIN (SELECT e.rid FROM entities e "
                    f"WHERE {where} ORDER BY e.rid LIMIT %s OFFSET %s) AS page USING (rid) "
                    "ORDER BY e.rid", (*params, query.limit, query.offset))
                docs = [{"id": r[0]} if query.ids_only else orjson.loads(r[0]) for r in rows]
        return docs, count

    def _where(self, tenant: str, query: EntityQuery) -> tuple[str, list[Any]]:
        clauses = ["e.tenant = %s"]
        params: list[Any] = [tenant]
        alternatives = []
        for sel in query.selectors:
            parts: list[str] = []
            if sel.ids:
                parts.append("e.id = ANY(%s)")
                params.append(list(sel.ids))
            if sel.id_pattern is not None:
                parts.append("e.id ~ %s")
                params.append(sel.id_pattern)
            if sel.types is not None:
                sql, p = _type_sql(sel.types, tenant)
                parts.append(sql)
                params.extend(p)
            alternatives.append(" AND ".join(parts) if parts else "TRUE")
        if alternatives and alternatives != ["TRUE"]:
            clauses.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")")
        if query.attrs_any:
            clauses.append("e.doc ?| %s")
            params.append(list(query.attrs_any))
        if query.q is not None:
            sql, p = q_to_sql(query.q, query.expand, "e.doc")
            clauses.append(f"({sql})")
            params.extend(p)
        if query.scope_q is not None:
            sql, p = scope_q_to_sql(query.scope_q, "e.doc")
            clauses.append(f"({sql})")
            params.extend(p)
        for rule in query.hidden:
            sql, p = read_rule_sql(rule, lambda t: (
                "EXISTS (SELECT 1 FROM entity_types x WHERE x.tenant = %s AND x.rid = e.rid "
                "AND x.type = ANY(%s))", [tenant, sorted(t)]), q_to_sql)
            clauses.append(sql)
            params.extend(p)
        if query.geo is not None:
            sql, p = _geo_sql(query.geo, query.geo_attr)
            clauses.append(sql)
            params.extend(p)
        return " AND ".join(clauses), params

    # -- types and attributes ------------------------------------------------------------

    def type_stats(self, tenant: str) -> list[TypeStat]:
        stats: dict[str, TypeStat] = {}
        with self._connection() as conn:
            rows = conn.execute("SELECT type, attr, attr_type, n FROM type_attrs "
                                "WHERE tenant = %s ORDER BY type, attr", (tenant,)).fetchall()
        for etype, attr, attr_type, n in rows:
            stat = stats.setdefault(etype, TypeStat(etype, 0, {}))
            if attr == "":
                stat.entities = int(n)
            else:
                stat.attributes.setdefault(attr, set()).add(attr_type)
                stat.attribute_counts[attr] = max(stat.attribute_counts.get(attr, 0), int(n))
        return list(stats.values())

    def type_extent(self, tenant: str, etype: str, geo_attr: str
                    ) -> tuple[tuple[float, float, float, float] | None, str | None]:
        with self._connection() as conn:
            box = conn.execute(
                "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT "
                "ST_Extent(g.geom) AS x FROM entity_types t JOIN entity_geo g ON g.rid = t.rid "
                "WHERE t.tenant = %s AND t.type = %s AND g.attr = %s) extent",
                (tenant, etype, geo_attr)).fetchone()
            modified = conn.execute(
                "SELECT max(e.doc->>'modifiedAt') FROM entity_types t JOIN entities e "
                "ON e.rid = t.rid WHERE t.tenant = %s AND t.type = %s",
                (tenant, etype)).fetchone()
        west, south, east, north = box if box is not None else (None,) * 4
        return (None if west is None else (west, south, east, north)), (
            modified[0] if modified else None)

    # -- @context documents --------------------------------------------------------------

    def contexts(self) -> list[tuple[str, Any, str, str]]:
        with self._connection() as conn:
            rows = conn.execute("SELECT url, doc, kind, created_at FROM jsonld_contexts "
                                "ORDER BY url").fetchall()
        return [(url, orjson.loads(doc), kind, created) for url, doc, kind, created in rows]

    def get_context(self, url: str) -> tuple[Any, str, str] | None:
        with self._connection() as conn:
            row = conn.execute("SELECT doc, kind, created_at FROM jsonld_contexts "
                               "WHERE url = %s", (url,)).fetchone()
        return (orjson.loads(row[0]), row[1], row[2]) if row else None

    def put_context(self, url: str, document: Any, kind: str, created_at: str) -> None:
        def work(conn: psycopg.Connection) -> None:
            conn.execute(
                "INSERT INTO jsonld_contexts VALUES (%s, %s, %s, %s) ON CONFLICT (url) "
                "DO UPDATE SET doc = excluded.doc, kind = excluded.kind, "
                "created_at = excluded.created_at", (url, _json(document), kind, created_at))
            self._audit(conn, [audit.context_entry("context.store", url, kind)])

        self._retrying(work)

    def delete_context(self, url: str) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            deleted = conn.execute("DELETE FROM jsonld_contexts WHERE url = %s",
                                   (url,)).rowcount > 0
            if deleted:
                self._audit(conn, [audit.context_entry("context.delete", url)])
            return deleted

        return bool(self._retrying(work))

    # -- history (temporal API) ----------------------------------------------------------

    def temporal_add(self, tenant: str, eid: str, types: Sequence[str],
                     attrs: dict[str, list[dict]], *, must_exist: bool = False) -> bool | None:
        """As ``SQLiteStore.temporal_add``: the entity's lock makes the existence check
        and the add one step."""

        def work(conn: psycopg.Connection) -> bool | None:
            self._lock(conn, tenant, [eid])
            if must_exist and self.history.find_tid(conn, tenant, eid) is None:
                return None
            created = self.history.add(conn, tenant, eid, types, attrs)
            self._note_tenant(conn, tenant)
            self._audit(conn, [audit.history_add_entry(tenant, eid, attrs)])
            return created

        created = self._retrying(work)
        if created is not None:
            self._tenants.add(tenant)
        return created

    def temporal_query(
        self, tenant: str, selectors: Sequence[Selector], ids_in: Sequence[str] | None,
        tq: TimeQuery, limit: int, offset: int, count: bool, cap: int,
    ) -> tuple[list[TemporalEntity], int | None]:
        with self._connection() as conn:
            found, total = self.history.select(conn, tenant, selectors, ids_in, tq.attrs,
                                               limit, offset, count)
            return [read_temporal(self.history, conn, tid, eid, types, tq, cap)
                    for tid, eid, types in found], total

    def temporal_get(self, tenant: str, eid: str, tq: TimeQuery,
                     cap: int) -> TemporalEntity | None:
        with self._connection() as conn:
            found = self.history.find_tid(conn, tenant, eid)
            if found is None:
                return None
            return read_temporal(self.history, conn, found[0], eid, found[1], tq, cap)


    def temporal_delete(self, tenant: str, eid: str) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            self._lock(conn, tenant, [eid])
            deleted = self.history.delete_entity(conn, tenant, eid)
            if deleted:
                self._audit(conn, [audit.Entry(tenant, "history.delete", eid)])
            return deleted

        return bool(self._retrying(work))

    def temporal_delete_attribute(self, tenant: str, eid: str, iri: str,
                                  dataset: str | None, delete_all: bool) -> bool | None:
        def work(conn: psycopg.Connection) -> bool | None:
            self._lock(conn, tenant, [eid])
            found = self.history.find_tid(conn, tenant, eid)
            if found is None:
                return None
            deleted = self.history.delete_attribute(conn, found[0], iri, dataset,
                                                    delete_all) > 0
            if deleted:
                self._audit(conn, [audit.history_attribute_entry(tenant, eid, iri, dataset)])
            return deleted

        result: bool | None = self._retrying(work)
        return result

    def temporal_change_instance(
        self, tenant: str, eid: str, iri: str, iid: int,
        change: Callable[[dict], dict | None],
    ) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            self._lock(conn, tenant, [eid])
            changed = change_instance(self.history, conn, tenant, eid, iri, iid, change)
            if changed:
                self._audit(conn, [audit.history_instance_entry(tenant, eid, iri, iid)])
            return changed

        return bool(self._retrying(work))

    prune_chunk_rows = 5000

    def prune_history(
        self, before_ms: int | None, downsample_before_ms: int | None, period_ms: int | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[int, int]:
        """As ``SQLiteStore.prune_history``: one chunk per transaction."""
        rule = retention_rule(before_ms, downsample_before_ms, period_ms)
        with self._connection() as conn:
            tids = [r[0] for r in conn.execute("SELECT tid FROM temporal_entities ORDER BY tid")]
        state = PruneState(tids)
        while state.done < len(state.tids):
            self._retrying(lambda conn: self.history.prune_chunk(
                conn, state, rule, self.prune_chunk_rows))
            if progress is not None:
                progress(state.done, len(state.tids))
        self.audit_append([audit.prune_entry(state.deleted, state.written)])
        return state.deleted, state.written

    # -- subscriptions and their outbox --------------------------------------------------

    def subscription_create(self, tenant: str, sid: str, kind: str, doc: dict,
                            next_due: int | None) -> bool:
        def insert(conn: psycopg.Connection) -> bool:
            created = subs.insert(conn, tenant, sid, kind, doc, next_due)
            if created:
                self._audit(conn, [audit.Entry(tenant, "subscription.create", sid)])
            return created

        return self._create(tenant, insert)

    def subscription_get(self, tenant: str, sid: str,
                         kind: str | None) -> SubscriptionRecord | None:
        with self._connection() as conn:
            return subs.get(conn, tenant, sid, kind)

    def subscription_page(self, tenant: str, kind: str, limit: int,
                          offset: int) -> tuple[list[SubscriptionRecord], int]:
        with self._connection() as conn:
            return subs.page(conn, tenant, kind, limit, offset)

    def subscription_change(
        self, tenant: str, sid: str, kind: str,
        change: Callable[[dict], tuple[dict, int | None]],
    ) -> SubscriptionRecord | None:
        def work(conn: psycopg.Connection) -> SubscriptionRecord | None:
            found = subs.get(conn, tenant, sid, kind, lock=True)
            if found is None:
                return None
            doc, next_due = change(found.doc)
            subs.replace(conn, tenant, sid, doc, next_due)
            self._audit(conn, [audit.Entry(tenant, "subscription.update", sid)])
            found.doc = doc
            return found

        result: SubscriptionRecord | None = self._retrying(work)
        return result

    def subscription_delete(self, tenant: str, sid: str, kind: str) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            deleted = subs.delete(conn, tenant, sid, kind)
            if deleted:
                self._audit(conn, [audit.Entry(tenant, "subscription.delete", sid)])
            return deleted

        return bool(self._retrying(work))

    def subscriptions_version(self) -> int:
        with self._connection() as conn:
            return subs.version(conn)

    def subscriptions_all(self) -> list[SubscriptionRecord]:
        with self._connection() as conn:
            return subs.everything(conn)

    # -- context source registrations ----------------------------------------------------

    def registration_create(self, tenant: str, rid: str, doc: dict,
                            check: Callable[[], None]) -> bool:
        def insert(conn: psycopg.Connection) -> bool:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_REGISTRATION_LOCK,))
            check()
            created = subs.registration_insert(conn, tenant, rid, doc)
            if created:
                self._audit(conn, [audit.Entry(tenant, "registration.create", rid)])
            return created

        return self._create(tenant, insert)

    def registration_get(self, tenant: str, rid: str) -> dict | None:
        with self._connection() as conn:
            return subs.registration_get(conn, tenant, rid)

    def registration_change(self, tenant: str, rid: str,
                            change: Callable[[dict], dict]) -> dict | None:
        def work(conn: psycopg.Connection) -> dict | None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_REGISTRATION_LOCK,))
            found = subs.registration_get(conn, tenant, rid, lock=True)
            if found is None:
                return None
            doc = change(found)
            subs.registration_replace(conn, tenant, rid, doc)
            self._audit(conn, [audit.Entry(tenant, "registration.update", rid)])
            return doc

        result: dict | None = self._retrying(work)
        return result

    def registration_delete(self, tenant: str, rid: str) -> bool:
        def work(conn: psycopg.Connection) -> bool:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_REGISTRATION_LOCK,))
            deleted = subs.registration_delete(conn, tenant, rid)
            if deleted:
                self._audit(conn, [audit.Entry(tenant, "registration.delete", rid)])
            return deleted

        return bool(self._retrying(work))

    def registrations_version(self) -> int:
        with self._connection() as conn:
            return subs.version(conn, subs.REGISTRATIONS)

    def registrations_all(self) -> list[tuple[str, dict]]:
        with self._connection() as conn:
            return subs.registrations_all(conn)

    def outbox_add(self, tenant: str, notices: Sequence[Notice]) -> None:
        self._retrying(lambda conn: subs.enqueue(conn, tenant, notices, self.owner,
                                                 _now_ms(), self.lease_ms))

    def outbox_pending(self, now_ms: int, limit: int) -> list[PendingNotice]:
        with self._connection() as conn:
            return subs.pending(conn, self.owner, now_ms, limit)

    def outbox_next_due(self) -> int | None:
        with self._connection() as conn:
            return subs.next_due(conn, self.owner)

    def outbox_claim(self, now_ms: int) -> int:
        return int(self._retrying(lambda conn: subs.claim(conn, self.owner, now_ms,
                                                          self.lease_ms)))

    def outbox_release(self) -> None:
        self._retrying(lambda conn: subs.release(conn, self.owner))

    def outbox_settle(self, done: Sequence[int], retry: Sequence[tuple[int, int, int]],
                      stats: Sequence[tuple[str, str, SubscriptionStats]]) -> None:
        self._retrying(lambda conn: subs.settle(conn, done, retry, stats))

    def periodic_due(self, now_ms: int) -> list[tuple[str, str, int]]:
        with self._connection() as conn:
            return subs.periodic_due(conn, now_ms)

    def periodic_claim(self, tenant: str, sid: str, expected: int, following: int) -> bool:
        return bool(self._retrying(
            lambda conn: subs.periodic_claim(conn, tenant, sid, expected, following)))

    # -- audit log -----------------------------------------------------------------------

    def _audit(self, conn: psycopg.Connection, entries: Sequence[audit.Entry]) -> None:
        """Append to the audit log inside the caller's transaction. The chain's lock is
        held until that transaction ends; the head read after taking it sees every row
        committed before (READ COMMITTED takes a new snapshot per statement)."""
        if not self.audit or not entries:
            return
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                            ).fetchone()
        rows = audit.chain(head, now_iso(), audit.current(), entries)
        with conn.cursor() as cur, cur.copy(f"COPY audit_log ({audit.COLUMNS}) FROM STDIN"
                                            ) as copy:
            for row in rows:
                copy.write_row(row.fields())

    def audit_append(self, entries: Sequence[audit.Entry]) -> None:
        self._retrying(lambda conn: self._audit(conn, entries))

    def audit_rows(self, *, after: int = 0, limit: int = 1000,
                   where: audit.Filter | None = None) -> list[audit.Row]:
        query, params = audit.select_sql(after, limit, where, "%s")
        with self._connection() as conn:
            return [audit.Row(*r) for r in conn.execute(query.encode(), params)]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _geo_key(doc: dict) -> bytes:
    """The geometries of a document as they are indexed, to tell whether a write moved
    any (most updates do not, and then keep their index rows)."""
    return orjson.dumps([(slot, key, value) for slot, key, value in geo_instances(doc)])


def _type_sql(expr: TypeExpr, tenant: str) -> tuple[str, list[Any]]:
    return type_expr_sql(expr, lambda name: (
        "EXISTS (SELECT 1 FROM entity_types x WHERE x.tenant = %s AND x.type = %s "
        "AND x.rid = e.rid)", [tenant, name]))


_RELATIONS = {
    "within": "ST_Contains(q.g, g.geom)",
    "contains": "ST_Contains(g.geom, q.g)",
    "intersects": "ST_Intersects(g.geom, q.g)",
    "disjoint": "ST_Disjoint(g.geom, q.g)",
    "equals": "ST_Equals(g.geom, q.g)",
    "overlaps": "ST_Overlaps(g.geom, q.g)",
}


def _geo_sql(geo: Any, attr: str) -> tuple[str, list[Any]]:
    """An entity matches when one of its geometries of ``attr`` stands in the relation.
    Planar predicates on WGS 84 coordinates as shapely decides them; distances on the
    sphere (PostGIS's mean radius, within a millimetre per kilometre of ours)."""
    conds = ["g.rid = e.rid", "g.attr = %s"]
    params: list[Any] = [orjson.dumps(geo.geometry).decode(), attr]
    bbox = geo.prefilter_bbox()
    if bbox is not None:
        minx, maxx, miny, maxy = bbox
        conds.append("g.geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)")
        params.extend([minx, miny, maxx, maxy])
    if geo.georel == "near":
        if geo.max_distance is not None:
            conds.append("ST_DWithin(g.geom::geography, q.g::geography, %s, false)")
            params.append(geo.max_distance)
        if geo.min_distance is not None:
            conds.append("NOT ST_DWithin(g.geom::geography, q.g::geography, %s, false)")
            params.append(geo.min_distance)
    elif geo.georel in _RELATIONS:
        conds.append(_RELATIONS[geo.georel])
    else:
        raise DothiError(f"Unknown georel {geo.georel!r}")
    return ("EXISTS (SELECT 1 FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326) AS g) "
            f"AS q, entity_geo g WHERE {' AND '.join(conds)})"), params
