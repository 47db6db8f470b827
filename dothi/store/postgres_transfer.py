"""Bulk reading and writing of a whole PostgreSQL instance, for ``dothi migrate-store``:
the twin of ``sqlite_transfer`` (same methods, same row shapes).

Reading happens in one read-only REPEATABLE READ transaction (a consistent snapshot)
through server-side cursors, so large tables stream. Writing uses COPY for the history
and one transaction per batch; months of history without a partition get one between
batches, outside any transaction, as ``postgres_history`` requires.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import psycopg
import psycopg.errors
from psycopg import sql

from dothi.store import audit
from dothi.store.postgres import PostgresStore
from dothi.store.postgres import migrate as migrate_schema
from dothi.store.postgres_history import History, month_start
from dothi.store.sqlite_transfer import write_through

Rows = list[tuple[Any, ...]]

OCCUPYING = {"entities": "entities", "temporal entities": "temporal_entities",
             "instances": "attr_instances", "subscriptions": "subscriptions",
             "notifications": "notifications", "registrations": "csource_registrations",
             "audit rows": "audit_log"}


def _url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _tables(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')")}


def occupied(url: str) -> dict[str, int]:
    """Rows the database already holds, by kind, read without writing anything."""
    with psycopg.connect(_url(url), autocommit=True, connect_timeout=10) as conn:
        tables = _tables(conn)
        out = {}
        for kind, table in OCCUPYING.items():
            if table in tables:
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(table))).fetchone()
                out[kind] = int(row[0]) if row else 0
        return out


def _text(doc: bytes | str) -> str:
    return doc.decode() if isinstance(doc, bytes) else doc


class PostgresSide:
    """One PostgreSQL database seen by a migration: ``readonly`` to read it (one
    snapshot), else to write it."""

    def __init__(self, url: str, *, readonly: bool) -> None:
        self.url = url
        self.readonly = readonly
        # Autocommit for writing: each batch is its own transaction, and partitions are
        # created between them.
        self.conn = psycopg.connect(_url(url), autocommit=not readonly, connect_timeout=10,
                                    options="-c jit=off")
        if readonly:
            self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            self.conn.read_only = True
        else:
            migrate_schema(self.conn)  # a new database gets its schema
        self._tables = _tables(self.conn)
        self.history = History()
        self._cursors = 0
        # Entities go through the store, which builds their index rows as any write does.
        self.store = None if readonly else PostgresStore(url, keep_history=False, pool_size=1,
                                                          audit=False)
        if not readonly:
            self.history.load_partitions(self.conn)

    def close(self) -> None:
        if self.readonly:
            self.conn.rollback()
        if self.store is not None:
            self.store.close()
        self.conn.close()

    # -- reading ---------------------------------------------------------------------------

    def _stream(self, table: str, query: str, batch: int) -> Iterator[Rows]:
        if table not in self._tables:
            return
        self._cursors += 1
        with self.conn.cursor(name=f"migrate_{self._cursors}") as cur:
            cur.itersize = batch
            cur.execute(query)
            while rows := cur.fetchmany(batch):
                yield rows

    def _count(self, table: str) -> int:
        if table not in self._tables:
            return 0
        row = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        tables = {"tenants": "tenants", "contexts": "jsonld_contexts", **OCCUPYING,
                  "type summary": "type_attrs"}
        out = {kind: self._count(t) for kind, t in tables.items()}
        out["indexes"] = self._count("entity_types") + self._count("entity_geo")
        return out

    def tenants(self, batch: int) -> Iterator[Rows]:
        return self._stream("tenants", "SELECT name, created_at FROM tenants", batch)

    def contexts(self, batch: int) -> Iterator[Rows]:
        return self._stream("jsonld_contexts",
                            "SELECT url, doc, kind, created_at FROM jsonld_contexts", batch)

    def entities(self, batch: int) -> Iterator[Rows]:
        return self._stream("entities",
                            "SELECT tenant, id, doc::text FROM entities ORDER BY rid", batch)

    def temporal_entities(self, batch: int) -> Iterator[Rows]:
        return self._stream("temporal_entities", "SELECT tid, tenant, id, types "
                            "FROM temporal_entities ORDER BY tid", batch)

    def attributes(self) -> dict[int, str]:
        if "temporal_attrs" not in self._tables:
            return {}
        return {aid: iri for aid, iri in self.conn.execute(
            "SELECT aid, iri FROM temporal_attrs")}

    def instances(self, batch: int) -> Iterator[Rows]:
        # Partition by partition, each in about insertion order: no sort of the whole.
        return self._stream("attr_instances",
                            "SELECT iid, tid, aid, dataset, t, created, modified, num, "
                            "doc::text FROM attr_instances", batch)

    def iid_high_water(self) -> int:
        """The largest instance id handed out, deleted ones included."""
        if "attr_instances" not in self._tables:
            return 0
        row = self.conn.execute(
            "SELECT greatest((SELECT max(iid) FROM attr_instances), "
            "(SELECT CASE WHEN is_called THEN last_value END "
            "FROM attr_instances_iid_seq))").fetchone()
        return int(row[0] or 0) if row else 0

    def subscriptions(self, batch: int) -> Iterator[Rows]:
        return self._stream(
            "subscriptions",
            "SELECT tenant, id, kind, doc, times_sent, times_failed, last_notification, "
            "last_success, last_failure, next_due FROM subscriptions ORDER BY seq", batch)

    def notifications(self, batch: int) -> Iterator[Rows]:
        for rows in self._stream("notifications",
                                 "SELECT tenant, sub, reason, due, attempts, payload "
                                 "FROM notifications ORDER BY nid", batch):
            yield [(*r[:5], bytes(r[5])) for r in rows]

    def registrations(self, batch: int) -> Iterator[Rows]:
        return self._stream("csource_registrations",
                            "SELECT tenant, id, doc FROM csource_registrations ORDER BY seq",
                            batch)

    def type_summary(self, batch: int) -> Iterator[Rows]:
        return self._stream("type_attrs",
                            "SELECT tenant, type, attr, attr_type, n FROM type_attrs", batch)

    def audit(self, batch: int) -> Iterator[Rows]:
        return self._stream("audit_log",
                            f"SELECT {audit.COLUMNS} FROM audit_log ORDER BY seq", batch)

    def indexes(self, batch: int) -> Iterator[Rows]:
        yield from self._stream(
            "entity_types", "SELECT 'type', t.tenant, e.id, t.type FROM entity_types t "
            "JOIN entities e ON e.rid = t.rid", batch)
        yield from self._stream(
            "entity_geo", "SELECT 'geo', e.tenant, e.id, g.slot, g.attr FROM entity_geo g "
            "JOIN entities e ON e.rid = g.rid", batch)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.executemany(query, rows)

    def _copy(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.transaction(), self.conn.cursor() as cur, \
                    cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def write_tenants(self, rows: Rows) -> None:
        self._write("INSERT INTO tenants VALUES (%s, %s) ON CONFLICT (name) "
                    "DO UPDATE SET created_at = excluded.created_at", rows)

    def write_contexts(self, rows: Rows) -> None:
        self._write("INSERT INTO jsonld_contexts VALUES (%s, %s, %s, %s) ON CONFLICT (url) "
                    "DO UPDATE SET doc = excluded.doc, kind = excluded.kind, "
                    "created_at = excluded.created_at",
                    [(url, _text(doc), kind, created) for url, doc, kind, created in rows])

    def write_entities(self, tenant: str, rows: Rows) -> list[tuple[str, str]]:
        assert self.store is not None
        return write_through(self.store, tenant, [(eid, _text(doc)) for eid, doc in rows])

    def write_temporal_entities(self, rows: Rows) -> None:
        # COPY keeps the given tid of an identity column (INSERT would need OVERRIDING).
        self._copy("temporal_entities", "tid, tenant, id, types",
                   [(tid, tenant, eid, orjson.dumps(list(types)).decode())
                    for tid, tenant, eid, types in rows])

    def attribute_ids(self, iris: Sequence[str]) -> dict[str, int]:
        with self.conn.transaction():
            self.conn.execute("INSERT INTO temporal_attrs (iri) SELECT unnest(%s::text[]) "
                              "ON CONFLICT (iri) DO NOTHING", (list(iris),))
        return {iri: aid for aid, iri in self.conn.execute("SELECT aid, iri FROM temporal_attrs")}

    def write_instances(self, rows: Rows) -> None:
        months = {month_start(r[4]) for r in rows} - self.history.partitions
        if months:
            self.history.create_partitions(self.conn, months)
        self._copy("attr_instances", "iid, tid, aid, dataset, t, created, modified, num, doc",
                   [(*r[:8], _text(r[8])) for r in rows])

    def write_subscriptions(self, rows: Rows) -> None:
        self._write("INSERT INTO subscriptions (tenant, id, kind, doc, times_sent, times_failed, "
                    "last_notification, last_success, last_failure, next_due) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(*r[:3], _text(r[3]), *r[4:]) for r in rows])

    def write_notifications(self, rows: Rows) -> None:
        self._write("INSERT INTO notifications (tenant, sub, reason, due, attempts, owner, "
                    "lease, payload) VALUES (%s, %s, %s, %s, %s, NULL, 0, %s)",
                    [(*r[:5], bytes(r[5])) for r in rows])

    def write_registrations(self, rows: Rows) -> None:
        self._write("INSERT INTO csource_registrations (tenant, id, doc) VALUES (%s, %s, %s)",
                    [(tenant, rid, _text(doc)) for tenant, rid, doc in rows])

    def write_audit(self, rows: Rows) -> None:
        self._copy("audit_log", audit.COLUMNS, rows)

    def finish(self, iid_high_water: int) -> None:
        """Move the id sequences past the copied ids (the next instance id also past
        ``iid_high_water``, the source's), and make running processes reload
        subscriptions and registrations."""
        with self.conn.transaction():
            self.conn.execute(
                "SELECT setval('attr_instances_iid_seq', m) FROM (SELECT greatest(%s, "
                "(SELECT max(iid) FROM attr_instances)) AS m) AS x WHERE m > 0",
                (iid_high_water,))
            self.conn.execute(
                "SELECT setval(pg_get_serial_sequence('temporal_entities', 'tid'), m) "
                "FROM (SELECT max(tid) AS m FROM temporal_entities) AS x WHERE m IS NOT NULL")
            self.conn.execute("UPDATE change_counters SET n = n + 1 "
                              "WHERE name IN ('subscriptions', 'registrations')")
