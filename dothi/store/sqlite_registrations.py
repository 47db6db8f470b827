"""Context source registrations in SQLite (clause 5.9): few and read often, so every
process keeps them compiled and reloads when their change counter moves."""

from __future__ import annotations

import sqlite3

import orjson

from dothi.store import sqlite_subscriptions as subs

SCHEMA = """
CREATE TABLE csource_registrations (
    tenant TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tenant, id)
);
INSERT INTO change_counters VALUES ('registrations', 0);
"""
COUNTER = "registrations"


def insert(conn: sqlite3.Connection, tenant: str, rid: str, doc: dict) -> bool:
    cur = conn.execute("INSERT OR IGNORE INTO csource_registrations VALUES (?, ?, ?)",
                       (tenant, rid, orjson.dumps(doc)))
    if cur.rowcount:
        subs.bump(conn, COUNTER)
    return cur.rowcount > 0


def get(conn: sqlite3.Connection, tenant: str, rid: str) -> dict | None:
    row = conn.execute("SELECT doc FROM csource_registrations WHERE tenant=? AND id=?",
                       (tenant, rid)).fetchone()
    return orjson.loads(row[0]) if row else None


def replace(conn: sqlite3.Connection, tenant: str, rid: str, doc: dict) -> None:
    conn.execute("UPDATE csource_registrations SET doc=? WHERE tenant=? AND id=?",
                 (orjson.dumps(doc), tenant, rid))
    subs.bump(conn, COUNTER)


def delete(conn: sqlite3.Connection, tenant: str, rid: str) -> bool:
    cur = conn.execute("DELETE FROM csource_registrations WHERE tenant=? AND id=?",
                       (tenant, rid))
    if cur.rowcount:
        subs.bump(conn, COUNTER)
    return cur.rowcount > 0


def everything(conn: sqlite3.Connection) -> list[tuple[str, dict]]:
    """(tenant, doc) of every registration, in the order they were made."""
    return [(tenant, orjson.loads(doc)) for tenant, doc in conn.execute(
        "SELECT tenant, doc FROM csource_registrations ORDER BY rowid")]
