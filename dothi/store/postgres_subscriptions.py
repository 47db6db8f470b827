"""Subscriptions, their notification outbox and context source registrations in
PostgreSQL: the same tables and rules as ``sqlite_subscriptions`` and
``sqlite_registrations`` (read those for the design), with row locks where SQLite had its
single writer.

Every server process delivers the notifications its own writes put in the outbox, so a
change is notified exactly once whichever worker took it; the outbox lives in the same
database and transaction as the change. A process that stops hands its rows over through
the lease, as with SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import psycopg

from dothi.store.base import Notice, PendingNotice, SubscriptionRecord, SubscriptionStats

SCHEMA = """
CREATE TABLE subscriptions (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    tenant text NOT NULL, id text NOT NULL, kind text NOT NULL, doc text NOT NULL,
    times_sent bigint NOT NULL DEFAULT 0, times_failed bigint NOT NULL DEFAULT 0,
    last_notification text, last_success text, last_failure text,
    next_due bigint,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX subscriptions_page ON subscriptions (tenant, kind, seq);
CREATE INDEX subscriptions_due ON subscriptions (next_due) WHERE next_due IS NOT NULL;
CREATE TABLE change_counters (name text PRIMARY KEY, n bigint NOT NULL);
INSERT INTO change_counters VALUES ('subscriptions', 0), ('registrations', 0);
CREATE TABLE notifications (
    nid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant text NOT NULL,
    sub text NOT NULL, reason text NOT NULL, due bigint NOT NULL,
    attempts integer NOT NULL DEFAULT 0, owner text, lease bigint NOT NULL DEFAULT 0,
    payload bytea NOT NULL
);
CREATE INDEX notifications_owner ON notifications (owner, due);
CREATE INDEX notifications_sub ON notifications (tenant, sub);
CREATE TABLE csource_registrations (
    seq bigint GENERATED ALWAYS AS IDENTITY,
    tenant text NOT NULL, id text NOT NULL, doc text NOT NULL, PRIMARY KEY (tenant, id)
);
"""

_COLUMNS = ("tenant, id, kind, doc, times_sent, times_failed, last_notification, "
            "last_success, last_failure")
REGISTRATIONS = "registrations"


def _record(row: Sequence[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(
        tenant=row[0], id=row[1], kind=row[2], doc=orjson.loads(row[3]),
        stats=SubscriptionStats(*row[4:9]),
    )


def _json(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def bump(conn: psycopg.Connection, name: str = "subscriptions") -> None:
    conn.execute("UPDATE change_counters SET n = n + 1 WHERE name = %s", (name,))


def version(conn: psycopg.Connection, name: str = "subscriptions") -> int:
    row = conn.execute("SELECT n FROM change_counters WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def insert(conn: psycopg.Connection, tenant: str, sid: str, kind: str, doc: dict,
           next_due: int | None) -> bool:
    cur = conn.execute(
        "INSERT INTO subscriptions (tenant, id, kind, doc, next_due) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant, sid, kind, _json(doc), next_due))
    if cur.rowcount:
        bump(conn)
    return cur.rowcount > 0


def get(conn: psycopg.Connection, tenant: str, sid: str, kind: str | None, *,
        lock: bool = False) -> SubscriptionRecord | None:
    """One subscription; ``kind`` None finds either kind (ids are unique across both);
    ``lock`` holds its row until the transaction ends."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE tenant = %s AND id = %s "
        f"AND kind = coalesce(%s, kind){' FOR UPDATE' if lock else ''}",
        (tenant, sid, kind)).fetchone()
    return _record(row) if row else None


def page(conn: psycopg.Connection, tenant: str, kind: str, limit: int,
         offset: int) -> tuple[list[SubscriptionRecord], int]:
    total = conn.execute("SELECT count(*) FROM subscriptions WHERE tenant = %s AND kind = %s",
                         (tenant, kind)).fetchone()
    rows = conn.execute(f"SELECT {_COLUMNS} FROM subscriptions WHERE tenant = %s AND kind = %s "
                        "ORDER BY seq LIMIT %s OFFSET %s", (tenant, kind, limit, offset))
    return [_record(r) for r in rows], int(total[0]) if total else 0


def everything(conn: psycopg.Connection) -> list[SubscriptionRecord]:
    return [_record(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM subscriptions ORDER BY seq")]


def replace(conn: psycopg.Connection, tenant: str, sid: str, doc: dict,
            next_due: int | None) -> None:
    conn.execute("UPDATE subscriptions SET doc = %s, next_due = %s "
                 "WHERE tenant = %s AND id = %s", (_json(doc), next_due, tenant, sid))
    bump(conn)


def delete(conn: psycopg.Connection, tenant: str, sid: str, kind: str) -> bool:
    cur = conn.execute("DELETE FROM subscriptions WHERE tenant = %s AND id = %s AND kind = %s",
                       (tenant, sid, kind))
    if cur.rowcount:
        conn.execute("DELETE FROM notifications WHERE tenant = %s AND sub = %s", (tenant, sid))
        bump(conn)
    return cur.rowcount > 0


# -- outbox ----------------------------------------------------------------------------


def enqueue(conn: psycopg.Connection, tenant: str, notices: Iterable[Notice], owner: str,
            now_ms: int, lease_ms: int) -> None:
    rows = [(n.subscription, n.reason, n.payload) for n in notices]
    if not rows:
        return
    subs, reasons, payloads = zip(*rows, strict=True)
    conn.execute(
        "INSERT INTO notifications (tenant, sub, reason, due, owner, lease, payload) "
        "SELECT %s, u.sub, u.reason, %s, %s, %s, u.payload "
        "FROM unnest(%s::text[], %s::text[], %s::bytea[]) AS u(sub, reason, payload)",
        (tenant, now_ms, owner, now_ms + lease_ms, list(subs), list(reasons), list(payloads)))


def pending(conn: psycopg.Connection, owner: str, now_ms: int,
            limit: int) -> list[PendingNotice]:
    rows = conn.execute(
        "SELECT nid, tenant, sub, reason, attempts, payload FROM notifications "
        "WHERE owner = %s AND due <= %s ORDER BY nid LIMIT %s", (owner, now_ms, limit))
    return [PendingNotice(nid, tenant, sub, reason, attempts, bytes(payload))
            for nid, tenant, sub, reason, attempts, payload in rows]


def next_due(conn: psycopg.Connection, owner: str) -> int | None:
    row = conn.execute("SELECT min(due) FROM notifications WHERE owner = %s",
                       (owner,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def claim(conn: psycopg.Connection, owner: str, now_ms: int, lease_ms: int) -> int:
    """Renew this owner's leases and take over rows nobody holds any more; rows another
    process is claiming at this moment are left to it (SKIP LOCKED)."""
    conn.execute("UPDATE notifications SET lease = %s WHERE owner = %s",
                 (now_ms + lease_ms, owner))
    cur = conn.execute(
        "UPDATE notifications SET owner = %s, lease = %s WHERE nid IN (SELECT nid FROM "
        "notifications WHERE owner IS NULL OR lease < %s FOR UPDATE SKIP LOCKED)",
        (owner, now_ms + lease_ms, now_ms))
    return cur.rowcount


def release(conn: psycopg.Connection, owner: str) -> None:
    conn.execute("UPDATE notifications SET owner = NULL WHERE owner = %s", (owner,))


def settle(conn: psycopg.Connection, done: Sequence[int],
           retry: Sequence[tuple[int, int, int]],
           stats: Sequence[tuple[str, str, SubscriptionStats]]) -> None:
    """Remove delivered (or abandoned) rows, reschedule failed ones (nid, due, attempts)
    and add the delivery counters of each subscription."""
    if done:
        conn.execute("DELETE FROM notifications WHERE nid = ANY(%s)", (list(done),))
    if retry:
        nids, dues, attempts = zip(*retry, strict=True)
        conn.execute(
            "UPDATE notifications AS n SET due = u.due, attempts = u.attempts "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS u(nid, due, attempts) "
            "WHERE n.nid = u.nid", (list(nids), list(dues), list(attempts)))
    # In a fixed order: two processes settling the same subscriptions never deadlock.
    for tenant, sid, s in sorted(stats, key=lambda x: (x[0], x[1])):
        conn.execute(
            "UPDATE subscriptions SET times_sent = times_sent + %s, "
            "times_failed = times_failed + %s, "
            "last_notification = coalesce(%s, last_notification), "
            "last_success = coalesce(%s, last_success), "
            "last_failure = coalesce(%s, last_failure) WHERE tenant = %s AND id = %s",
            (s.times_sent, s.times_failed, s.last_notification, s.last_success,
             s.last_failure, tenant, sid))


def periodic_due(conn: psycopg.Connection, now_ms: int) -> list[tuple[str, str, int]]:
    return [(t, i, int(d)) for t, i, d in conn.execute(
        "SELECT tenant, id, next_due FROM subscriptions WHERE next_due <= %s", (now_ms,))]


def periodic_claim(conn: psycopg.Connection, tenant: str, sid: str, expected: int,
                   following: int) -> bool:
    """Move a periodic subscription's next run on, if nobody else did first."""
    cur = conn.execute(
        "UPDATE subscriptions SET next_due = %s WHERE tenant = %s AND id = %s "
        "AND next_due = %s", (following, tenant, sid, expected))
    return cur.rowcount > 0


# -- context source registrations ------------------------------------------------------


def registration_insert(conn: psycopg.Connection, tenant: str, rid: str, doc: dict) -> bool:
    cur = conn.execute("INSERT INTO csource_registrations (tenant, id, doc) "
                       "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                       (tenant, rid, _json(doc)))
    if cur.rowcount:
        bump(conn, REGISTRATIONS)
    return cur.rowcount > 0


def registration_get(conn: psycopg.Connection, tenant: str, rid: str, *,
                     lock: bool = False) -> dict | None:
    row = conn.execute("SELECT doc FROM csource_registrations WHERE tenant = %s AND "
                       f"id = %s{' FOR UPDATE' if lock else ''}", (tenant, rid)).fetchone()
    return orjson.loads(row[0]) if row else None


def registration_replace(conn: psycopg.Connection, tenant: str, rid: str, doc: dict) -> None:
    conn.execute("UPDATE csource_registrations SET doc = %s "
                 "WHERE tenant = %s AND id = %s", (_json(doc), tenant, rid))
    bump(conn, REGISTRATIONS)


def registration_delete(conn: psycopg.Connection, tenant: str, rid: str) -> bool:
    cur = conn.execute("DELETE FROM csource_registrations WHERE tenant = %s AND id = %s",
                       (tenant, rid))
    if cur.rowcount:
        bump(conn, REGISTRATIONS)
    return cur.rowcount > 0


def registrations_all(conn: psycopg.Connection) -> list[tuple[str, dict]]:
    """(tenant, doc) of every registration, in the order they were made."""
    return [(tenant, orjson.loads(doc)) for tenant, doc in conn.execute(
        "SELECT tenant, doc FROM csource_registrations ORDER BY seq")]
