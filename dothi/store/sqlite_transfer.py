"""Bulk reading and writing of a whole SQLite instance, for ``dothi migrate-store``
(``dothi.store.migrate`` holds the backend-neutral part and the row shapes).

Reading happens in one read transaction (a consistent snapshot) on a read-only
connection; writing happens in one transaction per batch. Entities are written through
the store itself (so its indexes are built as by any write), the rest table by table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from dothi.errors import DothiError
from dothi.ngsild.entity import inflate
from dothi.store import audit
from dothi.store.base import ChangeFn, Store
from dothi.store.changes import GEO_SLOTS
from dothi.store.sqlite import SQLiteStore

Rows = list[tuple[Any, ...]]


def path_from_url(url: str) -> str:
    """The file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db``, as
    ``SQLiteStore.from_url`` reads it."""
    path = url.removeprefix("sqlite:").removeprefix("//")
    return path[1:] if path.startswith("/") else path or "dothi.db"


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# What makes a target "not empty" (refused), by table.
OCCUPYING = {"entities": "entities", "temporal entities": "temporal_entities",
             "instances": "attr_instances", "subscriptions": "subscriptions",
             "notifications": "notifications", "registrations": "csource_registrations",
             "audit rows": "audit_log"}


def occupied(url: str) -> dict[str, int]:
    """Rows the database already holds, by kind, read without writing anything (a file
    that does not exist yet holds nothing)."""
    path = path_from_url(url)
    if not Path(path).exists():
        return {}
    conn = _connect_ro(path)
    try:
        tables = _tables(conn)
        return {kind: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for kind, table in OCCUPYING.items() if table in tables}
    finally:
        conn.close()


def _connect_ro(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True,
                           isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def _bytes(doc: bytes | str) -> bytes:
    """A JSON document as the store writes it (compact orjson bytes)."""
    return doc if isinstance(doc, bytes) else orjson.dumps(orjson.loads(doc))


def _put(doc: dict) -> ChangeFn:
    return lambda _old: doc


def write_through(store: Store, tenant: str, rows: Rows) -> list[tuple[str, str]]:
    """Create entities (id, stored doc) in this order through the store, so that its
    indexes and type summary are built as by any write: the (id, error) of those the
    store refused, the others written."""
    changes = [(eid, _put(inflate(orjson.loads(doc)))) for eid, doc in rows]
    try:
        outcomes = store.apply(tenant, changes)
    except DothiError:
        outcomes = []
        failed = []
        for change in changes:  # one by one, to find the culprits
            try:
                outcomes.extend(store.apply(tenant, [change]))
            except DothiError as exc:
                failed.append((change[0], str(exc)))
        return failed + [(o.id, o.status) for o in outcomes if o.status != "created"]
    return [(o.id, o.status) for o in outcomes if o.status != "created"]


class SQLiteSide:
    """One SQLite database seen by a migration: ``readonly`` to read it (one snapshot),
    else to write it."""

    def __init__(self, url: str, *, readonly: bool) -> None:
        self.url = url
        self.path = path_from_url(url)
        self.readonly = readonly
        if readonly:
            if not Path(self.path).exists():
                raise FileNotFoundError(f"No SQLite database at {self.path}")
            self.conn = _connect_ro(self.path)
            self._tables = _tables(self.conn)
            self.conn.execute("BEGIN")  # the snapshot starts with the first read
        else:
            # Entities go through the store (whose apply keeps their order and builds
            # their indexes); opening it also creates or upgrades the schema.
            self.store = SQLiteStore(self.path, keep_history=False, audit=False)
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._tables = _tables(self.conn)

    def close(self) -> None:
        if self.readonly:
            self.conn.execute("COMMIT")
        else:
            self.store.close()
        self.conn.close()

    # -- reading ---------------------------------------------------------------------------

    def _stream(self, table: str, sql: str, batch: int,
                params: Sequence[Any] = ()) -> Iterator[Rows]:
        if table not in self._tables:  # an older schema: the table is empty
            return
        cur = self.conn.execute(sql, params)
        while rows := cur.fetchmany(batch):
            yield rows

    def counts(self) -> dict[str, int]:
        tables = {"tenants": "tenants", "contexts": "jsonld_contexts", **OCCUPYING,
                  "type summary": "type_attrs"}
        out = {kind: int(self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
               if t in self._tables else 0 for kind, t in tables.items()}
        out["indexes"] = sum(int(self.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                             for t in ("entity_types", "geo_rtree") if t in self._tables)
        return out

    def tenants(self, batch: int) -> Iterator[Rows]:
        """(name, created_at)"""
        return self._stream("tenants", "SELECT name, created_at FROM tenants", batch)

    def contexts(self, batch: int) -> Iterator[Rows]:
        """(url, doc text, kind, created_at)"""
        return self._stream("jsonld_contexts",
                            "SELECT url, doc, kind, created_at FROM jsonld_contexts", batch)

    def entities(self, batch: int) -> Iterator[Rows]:
        """(tenant, id, stored doc) in the order they were created."""
        return self._stream("entities", "SELECT tenant, id, doc FROM entities ORDER BY rowid",
                            batch)

    def temporal_entities(self, batch: int) -> Iterator[Rows]:
        """(tid, tenant, id, types list)"""
        for rows in self._stream("temporal_entities",
                                 "SELECT tid, tenant, id, types FROM temporal_entities "
                                 "ORDER BY tid", batch):
            yield [(tid, tenant, eid, orjson.loads(types)) for tid, tenant, eid, types in rows]

    def attributes(self) -> dict[int, str]:
        """aid -> attribute IRI"""
        if "temporal_attrs" not in self._tables:
            return {}
        return dict(self.conn.execute("SELECT aid, iri FROM temporal_attrs").fetchall())

    def instances(self, batch: int) -> Iterator[Rows]:
        """(iid, tid, aid, dataset, t, created, modified, num, doc)"""
        return self._stream("attr_instances",
                            "SELECT iid, tid, aid, dataset, t, created, modified, num, doc "
                            "FROM attr_instances ORDER BY iid", batch)

    def iid_high_water(self) -> int:
        """The largest instance id handed out (SQLite reuses none below its max)."""
        if "attr_instances" not in self._tables:
            return 0
        return int(self.conn.execute("SELECT max(iid) FROM attr_instances").fetchone()[0] or 0)

    def subscriptions(self, batch: int) -> Iterator[Rows]:
        """(tenant, id, kind, doc, times_sent, times_failed, last_notification,
        last_success, last_failure, next_due) in the order they were made."""
        return self._stream(
            "subscriptions",
            "SELECT tenant, id, kind, doc, times_sent, times_failed, last_notification, "
            "last_success, last_failure, next_due FROM subscriptions ORDER BY rowid", batch)

    def notifications(self, batch: int) -> Iterator[Rows]:
        """(tenant, sub, reason, due, attempts, payload bytes) in outbox order."""
        for rows in self._stream("notifications",
                                 "SELECT tenant, sub, reason, due, attempts, payload "
                                 "FROM notifications ORDER BY nid", batch):
            yield [(*r[:5], r[5].encode() if isinstance(r[5], str) else r[5]) for r in rows]

    def registrations(self, batch: int) -> Iterator[Rows]:
        """(tenant, id, doc) in the order they were made."""
        return self._stream("csource_registrations",
                            "SELECT tenant, id, doc FROM csource_registrations ORDER BY rowid",
                            batch)

    def audit(self, batch: int) -> Iterator[Rows]:
        """The audit log's rows (seq, at, tenant, who, origin, action, target, detail,
        hash) in chain order."""
        return self._stream("audit_log",
                            f"SELECT {audit.COLUMNS} FROM audit_log ORDER BY seq", batch)

    def type_summary(self, batch: int) -> Iterator[Rows]:
        """(tenant, type, attribute, attribute type, n): the /types summary."""
        return self._stream("type_attrs",
                            "SELECT tenant, type, attr, attr_type, n FROM type_attrs", batch)

    def indexes(self, batch: int) -> Iterator[Rows]:
        """("type", tenant, id, type) and ("geo", tenant, id, slot, attribute): the index
        rows of the entities."""
        yield from self._stream(
            "entity_types", "SELECT 'type', t.tenant, e.id, t.type FROM entity_types t "
            "JOIN entities e ON e.rowid = t.entity", batch)
        yield from self._stream(
            "geo_rtree", f"SELECT 'geo', e.tenant, e.id, g.id % {GEO_SLOTS}, g.attr "
            "FROM geo_rtree g JOIN entities e ON e.rowid = g.entity", batch)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.executemany(sql, rows)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def write_tenants(self, rows: Rows) -> None:
        self._write("INSERT INTO tenants VALUES (?, ?) ON CONFLICT (name) "
                    "DO UPDATE SET created_at = excluded.created_at", rows)

    def write_entities(self, tenant: str, rows: Rows) -> list[tuple[str, str]]:
        return write_through(self.store, tenant, rows)

    def write_contexts(self, rows: Rows) -> None:
        self._write("INSERT OR REPLACE INTO jsonld_contexts VALUES (?, ?, ?, ?)",
                    [(url, doc.decode() if isinstance(doc, bytes) else doc, kind, created)
                     for url, doc, kind, created in rows])

    def write_temporal_entities(self, rows: Rows) -> None:
        self._write("INSERT INTO temporal_entities (tid, tenant, id, types) VALUES (?, ?, ?, ?)",
                    [(tid, tenant, eid, orjson.dumps(list(types)).decode())
                     for tid, tenant, eid, types in rows])

    def attribute_ids(self, iris: Sequence[str]) -> dict[str, int]:
        """The aid of each IRI, made where missing."""
        self._write("INSERT OR IGNORE INTO temporal_attrs (iri) VALUES (?)",
                    [(iri,) for iri in iris])
        return {iri: aid for aid, iri in self.conn.execute("SELECT aid, iri FROM temporal_attrs")}

    def write_instances(self, rows: Rows) -> None:
        """Rows as ``instances`` reads them, with this database's aids."""
        self._write("INSERT INTO attr_instances (iid, tid, aid, dataset, t, created, modified, "
                    "num, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*r[:8], _bytes(r[8])) for r in rows])

    def write_subscriptions(self, rows: Rows) -> None:
        self._write("INSERT INTO subscriptions (tenant, id, kind, doc, times_sent, times_failed, "
                    "last_notification, last_success, last_failure, next_due) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*r[:3], _bytes(r[3]), *r[4:]) for r in rows])

    def write_notifications(self, rows: Rows) -> None:
        """Owned by nobody: the first process to claim the outbox delivers them."""
        self._write("INSERT INTO notifications (tenant, sub, reason, due, attempts, owner, "
                    "lease, payload) VALUES (?, ?, ?, ?, ?, NULL, 0, ?)",
                    [(*r[:5], bytes(r[5])) for r in rows])

    def write_registrations(self, rows: Rows) -> None:
        self._write("INSERT INTO csource_registrations (tenant, id, doc) VALUES (?, ?, ?)",
                    [(tenant, rid, _bytes(doc)) for tenant, rid, doc in rows])

    def write_audit(self, rows: Rows) -> None:
        self._write(f"INSERT INTO audit_log ({audit.COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def finish(self, iid_high_water: int) -> None:
        """Running processes reload subscriptions and registrations. (SQLite hands out
        max(iid) + 1 next: ``iid_high_water`` beyond that cannot be kept.)"""
        self._write("UPDATE change_counters SET n = n + 1 WHERE name = ?",
                    [("subscriptions",), ("registrations",)])
