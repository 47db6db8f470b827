"""Subscriptions and their notification outbox in SQLite (clauses 5.8, 5.11).

A notification is written to the outbox in the same transaction as the entity change that
caused it, so a committed change always has its notifications and a restart loses none.
Each outbox row is owned by the process that wrote it (it holds the subscription's
delivery state in memory) under a lease that the owner renews; rows whose owner stopped
(lease run out, or released at shutdown) are taken over by any other process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from dothi.store.base import Notice, PendingNotice, SubscriptionRecord, SubscriptionStats

SCHEMA = """
-- kind: "entity" (/subscriptions) or "csource" (/csourceSubscriptions, on registrations).
CREATE TABLE subscriptions (
    tenant TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, doc TEXT NOT NULL,
    times_sent INTEGER NOT NULL DEFAULT 0, times_failed INTEGER NOT NULL DEFAULT 0,
    last_notification TEXT, last_success TEXT, last_failure TEXT,
    next_due INTEGER,
    PRIMARY KEY (tenant, id)
);
-- Bumped by every change of a kind of record that processes keep compiled in memory
-- (subscriptions, registrations), so each process knows when to reload.
CREATE TABLE change_counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO change_counters VALUES ('subscriptions', 0);
CREATE TABLE notifications (
    nid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, sub TEXT NOT NULL, reason TEXT NOT NULL,
    due INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT, lease INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL
);
CREATE INDEX notifications_owner ON notifications (owner, due);
"""

_COLUMNS = "tenant, id, kind, doc, times_sent, times_failed, last_notification, " \
           "last_success, last_failure"


def _record(row: Sequence[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(
        tenant=row[0], id=row[1], kind=row[2], doc=orjson.loads(row[3]),
        stats=SubscriptionStats(*row[4:9]),
    )


def bump(conn: sqlite3.Connection, name: str = "subscriptions") -> None:
    conn.execute("UPDATE change_counters SET n = n + 1 WHERE name=?", (name,))


def version(conn: sqlite3.Connection, name: str = "subscriptions") -> int:
    return int(conn.execute("SELECT n FROM change_counters WHERE name=?",
                            (name,)).fetchone()[0])


def insert(conn: sqlite3.Connection, tenant: str, sid: str, kind: str, doc: dict,
           next_due: int | None) -> bool:
    cur = conn.execute(
        "INSERT OR IGNORE INTO subscriptions (tenant, id, kind, doc, next_due) "
        "VALUES (?, ?, ?, ?, ?)", (tenant, sid, kind, orjson.dumps(doc), next_due))
    if cur.rowcount:
        bump(conn)
    return cur.rowcount > 0


def get(conn: sqlite3.Connection, tenant: str, sid: str,
        kind: str | None) -> SubscriptionRecord | None:
    """One subscription; ``kind`` None finds either kind (ids are unique across both)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM subscriptions WHERE tenant=? AND id=? "
                       "AND kind = coalesce(?, kind)", (tenant, sid, kind)).fetchone()
    return _record(row) if row else None


def page(conn: sqlite3.Connection, tenant: str, kind: str, limit: int,
         offset: int) -> tuple[list[SubscriptionRecord], int]:
    total = conn.execute("SELECT count(*) FROM subscriptions WHERE tenant=? AND kind=?",
                         (tenant, kind)).fetchone()[0]
    rows = conn.execute(f"SELECT {_COLUMNS} FROM subscriptions WHERE tenant=? AND kind=? "
                        "ORDER BY rowid LIMIT ? OFFSET ?", (tenant, kind, limit, offset))
    return [_record(r) for r in rows], int(total)


def everything(conn: sqlite3.Connection) -> list[SubscriptionRecord]:
    return [_record(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM subscriptions")]


def replace(conn: sqlite3.Connection, tenant: str, sid: str, doc: dict,
            next_due: int | None) -> None:
    conn.execute("UPDATE subscriptions SET doc=?, next_due=? WHERE tenant=? AND id=?",
                 (orjson.dumps(doc), next_due, tenant, sid))
    bump(conn)


def delete(conn: sqlite3.Connection, tenant: str, sid: str, kind: str) -> bool:
    cur = conn.execute("DELETE FROM subscriptions WHERE tenant=? AND id=? AND kind=?",
                       (tenant, sid, kind))
    if cur.rowcount:
        conn.execute("DELETE FROM notifications WHERE tenant=? AND sub=?", (tenant, sid))
        bump(conn)
    return cur.rowcount > 0


# -- outbox ----------------------------------------------------------------------------


def enqueue(conn: sqlite3.Connection, tenant: str, notices: Iterable[Notice], owner: str,
            now_ms: int, lease_ms: int) -> int:
    rows = [(tenant, n.subscription, n.reason, now_ms, owner, now_ms + lease_ms, n.payload)
            for n in notices]
    conn.executemany(
        "INSERT INTO notifications (tenant, sub, reason, due, owner, lease, payload) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def pending(conn: sqlite3.Connection, owner: str, now_ms: int,
            limit: int) -> list[PendingNotice]:
    rows = conn.execute(
        "SELECT nid, tenant, sub, reason, attempts, payload FROM notifications "
        "WHERE owner=? AND due<=? ORDER BY nid LIMIT ?", (owner, now_ms, limit))
    return [PendingNotice(nid, tenant, sub, reason, attempts, payload)
            for nid, tenant, sub, reason, attempts, payload in rows]


def next_due(conn: sqlite3.Connection, owner: str) -> int | None:
    row = conn.execute("SELECT min(due) FROM notifications WHERE owner=?", (owner,)).fetchone()
    return None if row[0] is None else int(row[0])


def claim(conn: sqlite3.Connection, owner: str, now_ms: int, lease_ms: int) -> int:
    """Renew this owner's leases and take over rows nobody holds any more."""
    conn.execute("UPDATE notifications SET lease=? WHERE owner=?", (now_ms + lease_ms, owner))
    cur = conn.execute(
        "UPDATE notifications SET owner=?, lease=? WHERE owner IS NULL OR lease < ?",
        (owner, now_ms + lease_ms, now_ms))
    return cur.rowcount


def release(conn: sqlite3.Connection, owner: str) -> None:
    conn.execute("UPDATE notifications SET owner=NULL WHERE owner=?", (owner,))


def settle(conn: sqlite3.Connection, done: Sequence[int],
           retry: Sequence[tuple[int, int, int]],
           stats: Sequence[tuple[str, str, SubscriptionStats]]) -> None:
    """Remove delivered (or abandoned) rows, reschedule failed ones (nid, due, attempts)
    and add the delivery counters of each subscription."""
    conn.executemany("DELETE FROM notifications WHERE nid=?", [(n,) for n in done])
    conn.executemany("UPDATE notifications SET due=?, attempts=? WHERE nid=?",
                     [(due, attempts, nid) for nid, due, attempts in retry])
    conn.executemany(
        "UPDATE subscriptions SET times_sent = times_sent + ?, "
        "times_failed = times_failed + ?, "
        "last_notification = coalesce(?, last_notification), "
        "last_success = coalesce(?, last_success), "
        "last_failure = coalesce(?, last_failure) WHERE tenant=? AND id=?",
        [(s.times_sent, s.times_failed, s.last_notification, s.last_success, s.last_failure,
          tenant, sid) for tenant, sid, s in stats])


def periodic_due(conn: sqlite3.Connection, now_ms: int) -> list[tuple[str, str, int]]:
    return list(conn.execute(
        "SELECT tenant, id, next_due FROM subscriptions WHERE next_due <= ?", (now_ms,)))


def periodic_claim(conn: sqlite3.Connection, tenant: str, sid: str, expected: int,
                   following: int) -> bool:
    """Move a periodic subscription's next run on, if nobody else did first."""
    cur = conn.execute(
        "UPDATE subscriptions SET next_due=? WHERE tenant=? AND id=? AND next_due=?",
        (following, tenant, sid, expected))
    return cur.rowcount > 0
