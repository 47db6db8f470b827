"""Attribute history in PostgreSQL: the twin of ``dothi.store.sqlite_history`` (same
methods, same results), used by the PostgreSQL store inside its own transactions.

``attr_instances`` is partitioned by calendar month (UTC) of ``t``. Creating a partition
locks the parent table strongly, so it never happens inside a write transaction: a write
that needs a month with no partition raises ``MissingPartitions`` before writing anything,
and the store rolls back, calls ``create_partitions`` on an autocommit connection and runs
the transaction again. There is no default partition.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import orjson
import psycopg
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from dothi.ngsild.temporal import TimeQuery, ms_to_iso
from dothi.store.base import Outcome, Selector
from dothi.store.changes import new_instances
from dothi.store.sqlite_filters import type_expr_sql
from dothi.store.sqlite_history import (
    _EARLIEST,
    _NOT_IN_DOC,
    _TIME_COLUMN,
    DOWNSAMPLED,
    INSTANCE_PREFIX,
    PruneState,
    Retention,
    _instance,
    _ms,
    aggregation_window,
    buckets,
    instance_id,
    parse_instance_id,
    read_instances,
    time_where,
)

__all__ = [
    "DOWNSAMPLED", "INSTANCE_PREFIX", "SCHEMA", "History", "MissingPartitions", "PruneState",
    "Retention", "instance_id", "month_start", "next_month", "parse_instance_id",
]

Conn = psycopg.Connection[Any]

# Ids sort bytewise, as in SQLite, so pages come in the same order on both backends.
SCHEMA = """
CREATE TABLE temporal_entities (
    tid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant text NOT NULL,
    id text COLLATE "C" NOT NULL, types jsonb NOT NULL, UNIQUE (tenant, id)
);
CREATE TABLE temporal_attrs (
    aid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, iri text NOT NULL UNIQUE
);
CREATE SEQUENCE attr_instances_iid_seq;
CREATE TABLE attr_instances (
    iid bigint NOT NULL DEFAULT nextval('attr_instances_iid_seq'), tid bigint NOT NULL,
    aid integer NOT NULL, dataset text, t bigint NOT NULL, created bigint NOT NULL,
    modified bigint NOT NULL, num double precision, doc jsonb NOT NULL
) PARTITION BY RANGE (t);
ALTER SEQUENCE attr_instances_iid_seq OWNED BY attr_instances.iid;
CREATE INDEX attr_instances_t ON attr_instances (tid, aid, t);
CREATE INDEX attr_instances_iid ON attr_instances (iid);
"""

_DAY = 86_400_000
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")
_INT64 = (-(2**63), 2**63 - 1)
_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


class MissingPartitions(Exception):
    """A write needs months (their starts, in ms) that have no partition yet: roll back,
    ``create_partitions`` outside the transaction, and try again."""

    def __init__(self, months: set[int]) -> None:
        super().__init__("attr_instances has no partition for "
                         + ", ".join(ms_to_iso(m)[:7] for m in sorted(months)))
        self.months = months


def month_start(ms: int) -> int:
    """The start (ms) of the UTC calendar month holding ``ms``."""
    day = date.fromordinal(_EPOCH_DAY + ms // _DAY)
    return (day.replace(day=1).toordinal() - _EPOCH_DAY) * _DAY


def next_month(ms: int) -> int:
    """The start of the month after the one holding ``ms`` (year 10000 for 9999-12)."""
    start = month_start(ms)
    day = date.fromordinal(_EPOCH_DAY + start // _DAY)
    return start + calendar.monthrange(day.year, day.month)[1] * _DAY


def _partition_name(start: int) -> str:
    day = date.fromordinal(_EPOCH_DAY + start // _DAY)
    return f"attr_instances_y{day.year:04d}m{day.month:02d}"


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


class History:
    """The history tables, used by the PostgreSQL store inside its own transactions."""

    def __init__(self) -> None:
        self._aids: dict[str, int] = {}
        self._iris: dict[int, str] = {}
        # Attributes inserted here: IRI -> transaction id -> aid. They are cached only once
        # seen committed, as a rollback (say, to create partitions) would leave the cache
        # pointing at no row.
        self._pending: dict[str, dict[str, int]] = {}
        self.partitions: set[int] = set()  # month starts (ms) known to have a partition

    # -- partitions ----------------------------------------------------------------------

    def load_partitions(self, conn: Conn) -> set[int]:
        """Read the months that have a partition from the catalog (a partition someone
        made wider than a month covers every whole month inside it)."""
        found: set[int] = set()
        rows = conn.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'attr_instances'::regclass").fetchall()
        for (bound,) in rows:
            match = _BOUND.search(bound or "")
            if match is None:
                continue  # MINVALUE/MAXVALUE bounds: not ours, left alone
            low, high = int(match[1]), int(match[2])
            month = month_start(low)
            if month < low:
                month = next_month(month)
            while next_month(month) <= high:
                found.add(month)
                month = next_month(month)
        self.partitions = found
        return found

    def create_partitions(self, conn: Conn, months: Iterable[int]) -> None:
        """Create the partitions of ``months`` (any time in each), on a connection that is
        not in the middle of a write transaction (autocommit). Another process creating
        the same partition at the same time is fine."""
        for month in sorted({month_start(m) for m in months}):
            stmt = sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF attr_instances "
                "FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(_partition_name(month)), sql.Literal(month),
                sql.Literal(next_month(month)))
            try:
                with conn.transaction():
                    conn.execute(stmt)
            except (errors.DuplicateTable, errors.UniqueViolation):
                pass  # a concurrent process won the race
        wanted = {month_start(m) for m in months}
        missing = wanted - self.load_partitions(conn)
        if missing:
            names = ", ".join(_partition_name(m) for m in sorted(missing))
            raise RuntimeError(f"Tables {names} exist but are not partitions of attr_instances")

    def _check_months(self, times: Iterable[int]) -> None:
        """Raise ``MissingPartitions`` if any of these instance times has no partition."""
        missing: set[int] = set()
        low = high = 0
        for t in times:
            if low <= t < high:
                continue
            low = month_start(t)
            high = next_month(low)
            if low not in self.partitions:
                missing.add(low)
        if missing:
            raise MissingPartitions(missing)

    # -- ids -----------------------------------------------------------------------------

    def aid(self, conn: Conn, iri: str) -> int:
        found = self._aids.get(iri)
        if found is None:
            found = self._lookup(conn, iri)
            if found is None:
                row = conn.execute(
                    "INSERT INTO temporal_attrs (iri) VALUES (%s) ON CONFLICT (iri) DO NOTHING "
                    "RETURNING aid, pg_current_xact_id_if_assigned()::text", (iri,)).fetchone()
                if row is not None:
                    self._pending.setdefault(iri, {})[row[1]] = row[0]
                    self._iris[row[0]] = iri
                    return int(row[0])
                found = self._lookup(conn, iri)  # a concurrent process's, now committed
                assert found is not None
        return found

    def known_aid(self, conn: Conn, iri: str) -> int | None:
        found = self._aids.get(iri)
        return found if found is not None else self._lookup(conn, iri)

    def _lookup(self, conn: Conn, iri: str) -> int | None:
        """The aid of ``iri`` past the cache; cached unless the current transaction
        inserted it."""
        row = conn.execute("SELECT aid, pg_current_xact_id_if_assigned()::text "
                           "FROM temporal_attrs WHERE iri=%s", (iri,)).fetchone()
        pending = self._pending.get(iri, {})
        if row is None:
            return None  # (a savepoint that inserted it was rolled back, maybe)
        if pending.get(row[1]) == row[0]:
            return int(row[0])
        # Not inserted by this transaction, so committed: whoever else had it pending
        # has finished (the unique index made them wait or fail).
        self._pending.pop(iri, None)
        self._aids[iri], self._iris[row[0]] = row[0], iri
        return int(row[0])

    def iri(self, conn: Conn, aid: int) -> str:
        if aid not in self._iris:
            # An aid is never handed out twice, so this maps right even if uncommitted.
            row = conn.execute("SELECT iri FROM temporal_attrs WHERE aid=%s", (aid,)).fetchone()
            assert row is not None
            self._iris[aid] = row[0]
        return self._iris[aid]

    def tid(self, conn: Conn, tenant: str, eid: str, types: Sequence[str]) -> tuple[int, bool]:
        """The entity's history id, created on first use: (tid, created)."""
        found = self.tids(conn, tenant, {eid: types})
        return found[eid]

    def tids(self, conn: Conn, tenant: str,
             entities: dict[str, Sequence[str]]) -> dict[str, tuple[int, bool]]:
        """History ids of several entities (id -> types), created on first use, in three
        statements at most whatever their number: id -> (tid, created)."""
        out: dict[str, tuple[int, bool]] = {}
        retype: list[dict[str, Any]] = []
        sel = "SELECT tid, id, types FROM temporal_entities WHERE tenant=%s AND id = ANY(%s)"
        for tid, eid, types in conn.execute(sel, (tenant, list(entities))):
            out[eid] = (tid, False)
            wanted = list(entities[eid])
            if wanted and types != wanted:
                retype.append({"tid": tid, "types": wanted})
        missing = [{"id": eid, "types": list(types)} for eid, types in entities.items()
                   if eid not in out]
        if missing:
            for tid, eid in conn.execute(
                    "INSERT INTO temporal_entities (tenant, id, types) SELECT %s, x.id, x.types "
                    "FROM jsonb_to_recordset(%s::jsonb) AS x(id text, types jsonb) "
                    "ON CONFLICT (tenant, id) DO NOTHING RETURNING tid, id",
                    (tenant, _dumps(missing))):
                out[eid] = (tid, True)
            late = [m["id"] for m in missing if m["id"] not in out]
            if late:  # made by a concurrent process meanwhile
                for tid, eid, _ in conn.execute(sel, (tenant, late)):
                    out[eid] = (tid, False)
        if retype:
            conn.execute("UPDATE temporal_entities AS t SET types = x.types FROM "
                         "jsonb_to_recordset(%s::jsonb) AS x(tid bigint, types jsonb) "
                         "WHERE t.tid = x.tid", (_dumps(retype),))
        return out

    def find_tid(self, conn: Conn, tenant: str, eid: str) -> tuple[int, list[str]] | None:
        row = conn.execute("SELECT tid, types FROM temporal_entities WHERE tenant=%s AND id=%s",
                           (tenant, eid)).fetchone()
        return (row[0], row[1]) if row else None

    # -- writing -------------------------------------------------------------------------

    def record(self, conn: Conn, tenant: str, outcomes: Iterable[Outcome]) -> None:
        """Keep the instances each created or updated entity got in this operation
        (``changes.new_instances``)."""
        times: dict[str, int] = {}
        entities: list[tuple[dict, list[tuple[Any, ...]]]] = []
        for outcome in outcomes:
            changed = [_values(key, inst, times) for key, inst in new_instances(outcome)]
            if changed:
                assert outcome.after is not None
                entities.append((outcome.after, changed))
        self._check_months(v[2] for _, values in entities for v in values)
        if not entities:
            return
        tids = self.tids(conn, tenant, {doc["id"]: doc.get("type", ()) for doc, _ in entities})
        rows: list[tuple[Any, ...]] = []
        aids: dict[str, int] = {}
        for doc, values in entities:
            tid = tids[doc["id"]][0]
            rows.extend(self._row(conn, tid, v, aids) for v in values)
        self._insert(conn, rows)

    def add(self, conn: Conn, tenant: str, eid: str, types: Sequence[str],
            attrs: dict[str, list[dict]]) -> bool:
        """Instances given through the temporal API; True if the temporal entity is new."""
        times: dict[str, int] = {}
        values = [_values(key, inst, times) for key, instances in attrs.items()
                  for inst in instances]
        self._check_months(v[2] for v in values)
        tid, created = self.tid(conn, tenant, eid, types)
        aids: dict[str, int] = {}
        self._insert(conn, [self._row(conn, tid, v, aids) for v in values])
        return created

    def _row(self, conn: Conn, tid: int, values: tuple[Any, ...],
             aids: dict[str, int]) -> tuple[Any, ...]:
        key = values[0]
        aid = aids.get(key)
        if aid is None:
            aid = aids[key] = self.aid(conn, key)
        return (tid, aid, *values[1:])

    @staticmethod
    def _insert(conn: Conn, rows: list[tuple[Any, ...]]) -> None:
        """All rows in one statement: one JSON parameter that orjson writes and
        PostgreSQL reads in C (binding arrays per column cost more than the insert)."""
        if rows:
            conn.execute(
                "INSERT INTO attr_instances (tid, aid, dataset, t, created, modified, num, doc) "
                "SELECT r.* FROM jsonb_to_recordset(%s) AS r(tid bigint, aid integer, "
                "dataset text, t bigint, created bigint, modified bigint, "
                "num double precision, doc jsonb)",
                (Jsonb([dict(zip(_ROW_KEYS, (*row[:7], row[7].obj), strict=True))
                        for row in rows], dumps=orjson.dumps),))

    def delete_entity(self, conn: Conn, tenant: str, eid: str) -> bool:
        found = self.find_tid(conn, tenant, eid)
        if found is None:
            return False
        conn.execute("DELETE FROM attr_instances WHERE tid=%s", (found[0],))
        conn.execute("DELETE FROM temporal_entities WHERE tid=%s", (found[0],))
        return True

    def delete_attribute(self, conn: Conn, tid: int, iri: str, dataset: str | None,
                         delete_all: bool) -> int:
        aid = self.known_aid(conn, iri)
        if aid is None:
            return 0
        sql_text = "DELETE FROM attr_instances WHERE tid=%s AND aid=%s"
        if delete_all:
            cur = conn.execute(sql_text, (tid, aid))
        elif dataset is None:
            cur = conn.execute(f"{sql_text} AND dataset IS NULL", (tid, aid))
        else:
            cur = conn.execute(f"{sql_text} AND dataset=%s", (tid, aid, dataset))
        return cur.rowcount

    def get_instance(self, conn: Conn, tid: int, iri: str, iid: int) -> dict | None:
        aid = self.known_aid(conn, iri)
        if aid is None:
            return None
        row = conn.execute(
            "SELECT iid, t, created, modified, doc::text FROM attr_instances "
            "WHERE iid=%s AND tid=%s AND aid=%s", (iid, tid, aid)).fetchone()
        return _instance(row) if row else None

    def replace_instance(self, conn: Conn, tid: int, iri: str, iid: int, inst: dict) -> None:
        """May move the row to another month's partition (PostgreSQL does that itself)."""
        values = _values(iri, inst, {})
        self._check_months([values[2]])
        self.aid(conn, iri)  # as in SQLite: the attribute is known from now on
        conn.execute(
            "UPDATE attr_instances SET dataset=%s, t=%s, created=%s, modified=%s, num=%s, "
            "doc=%s WHERE iid=%s", (*values[1:], iid))

    def delete_instance(self, conn: Conn, iid: int) -> None:
        conn.execute("DELETE FROM attr_instances WHERE iid=%s", (iid,))

    # -- retention -----------------------------------------------------------------------

    def prune_chunk(self, conn: Conn, state: PruneState, rule: Retention, budget: int) -> None:
        """Apply ``rule`` from where ``state`` stands until about ``budget`` rows were
        touched, so that one write transaction stays short. If it raises (say,
        ``MissingPartitions`` for a period average), ``state`` is as it was, so the store
        can run the chunk again in a new transaction."""
        saved = dict(vars(state))
        try:
            self._prune_chunk(conn, state, rule, budget)
        except BaseException:
            vars(state).update(saved)
            raise

    def _prune_chunk(self, conn: Conn, state: PruneState, rule: Retention, budget: int) -> None:
        while budget > 0 and state.done < len(state.tids):
            tid = state.tids[state.done]
            for aid in self.attribute_ids(conn, tid, None):
                if aid < state.aid:
                    continue
                # Each call finishes the attribute or moves it on (rows deleted, a period
                # read), so every chunk gets somewhere, however small the budget.
                used, finished = self._prune_attribute(conn, tid, aid, rule, state, budget)
                budget -= used + 1  # the attribute's index probes count as a row
                if finished:
                    state.aid, state.since = aid + 1, _EARLIEST
                if not finished or budget <= 0:
                    return
            budget -= 1
            if state.emptied:
                # Kept while its entity exists; a deleted entity whose history has all
                # expired would otherwise leave an empty temporal entity forever.
                conn.execute(
                    "DELETE FROM temporal_entities WHERE tid=%s AND NOT EXISTS "
                    "(SELECT 1 FROM attr_instances WHERE tid=temporal_entities.tid) "
                    "AND NOT EXISTS (SELECT 1 FROM entities e WHERE e.tenant="
                    "temporal_entities.tenant AND e.id=temporal_entities.id)", (tid,))
            state.done, state.aid, state.emptied = state.done + 1, 0, False

    def _prune_attribute(self, conn: Conn, tid: int, aid: int, rule: Retention,
                         state: PruneState, budget: int) -> tuple[int, bool]:
        """(rows touched, whether the attribute is finished)."""
        used = 0
        if rule.before is not None:
            # The oldest rows: their time range keeps the delete from reading the others.
            used = conn.execute(
                "WITH doomed AS (SELECT iid, t FROM attr_instances "
                "WHERE tid=%s AND aid=%s AND t<%s ORDER BY t LIMIT %s) "
                "DELETE FROM attr_instances WHERE tid=%s AND aid=%s "
                "AND t >= (SELECT min(t) FROM doomed) AND t <= (SELECT max(t) FROM doomed) "
                "AND iid IN (SELECT iid FROM doomed)",
                (tid, aid, rule.before, budget, tid, aid)).rowcount
            state.deleted += used
            state.emptied = state.emptied or used > 0
            if used == budget:
                return used, False
        if rule.downsample_before is None:
            return used, True
        read, finished = self._downsample(conn, tid, aid, rule, state, budget - used)
        return used + read, finished

    def _downsample(self, conn: Conn, tid: int, aid: int, rule: Retention,
                    state: PruneState, budget: int) -> tuple[int, bool]:
        """Whole periods from ``state.since`` on, about ``budget`` rows of them:
        (rows read, whether the attribute is finished)."""
        assert rule.downsample_before is not None and rule.period is not None
        period = rule.period
        # The last column gives the instance's weight in an average: its DOWNSAMPLED count.
        query = ("SELECT iid, dataset, t, created, modified, num, doc::text, "
                 "(doc -> %s -> 'value')::text FROM attr_instances "
                 "WHERE tid=%s AND aid=%s AND t>=%s AND t<%s ORDER BY t, iid")
        rows = conn.execute(f"{query} LIMIT %s", (DOWNSAMPLED, tid, aid, state.since,
                                                  rule.downsample_before, budget + 1)).fetchall()
        finished = len(rows) <= budget
        if not finished:
            # The last period read may go on past the limit: it waits for the next chunk,
            # unless it is the only one read, then it is read whole.
            last = rows[-1][2] // period * period
            if rows[0][2] >= last:
                state.since = last + period
                rows = conn.execute(query, (DOWNSAMPLED, tid, aid, last,
                                            state.since)).fetchall()
            else:
                state.since = last
                rows = [r for r in rows if r[2] < last]
        periods: dict[tuple[str | None, int], list[tuple[Any, ...]]] = {}
        for row in rows:
            row = (*row[:7], _weight(row[7]))
            periods.setdefault((row[1], row[2] // period * period), []).append(row)
        # Averages move to their period's start, maybe into an earlier month.
        self._check_months(start for (_, start), group in periods.items()
                           if sum(r[5] is not None for r in group) > 1)
        for (_, start), group in periods.items():
            self._merge_period(conn, start, period, group, state)
        return len(rows), finished

    @staticmethod
    def _merge_period(conn: Conn, start: int, period: int, rows: list[tuple[Any, ...]],
                      state: PruneState) -> None:
        """One period of one attribute and datasetId, rows in time order. The last numeric
        instance becomes the average (so it keeps its instanceId, unitCode and other
        sub-attributes); the last non-numeric one stays as it is."""
        numeric = [r for r in rows if r[5] is not None]
        drop = [r[0] for r in rows if r[5] is None][:-1]
        if len(numeric) > 1:
            weight = sum(r[7] for r in numeric)
            avg = sum(r[5] * r[7] for r in numeric) / weight
            keep = numeric[-1]
            doc = orjson.loads(keep[6])
            doc.update({"value": avg, "observedAt": ms_to_iso(start),
                        DOWNSAMPLED: {"type": "Property", "value": weight}})
            # createdAt/modifiedAt span the merged instances: a prune is no new change.
            conn.execute(
                "UPDATE attr_instances SET t=%s, created=%s, modified=%s, num=%s, doc=%s "
                "WHERE iid=%s AND t=%s",
                (start, min(r[3] for r in numeric), max(r[4] for r in numeric), avg,
                 Jsonb(doc, dumps=_dumps), keep[0], keep[2]))
            state.written += 1
            drop.extend(r[0] for r in numeric[:-1])
        if drop:
            # The period's bounds spare PostgreSQL a look into every partition.
            conn.execute("DELETE FROM attr_instances WHERE iid = ANY(%s) AND t >= %s AND t < %s",
                         (drop, start, start + period))
        state.deleted += len(drop)

    # -- reading -------------------------------------------------------------------------

    def select(self, conn: Conn, tenant: str, selectors: Sequence[Selector],
               ids_in: Sequence[str] | None, attrs: frozenset[str] | None, limit: int,
               offset: int, count: bool) -> tuple[list[tuple[int, str, list[str]]], int | None]:
        """Temporal entities matching the selectors and, with ``attrs``, having history of
        at least one of those attributes, in id order."""
        where = ["tenant = %s"]
        params: list[Any] = [tenant]
        if selectors:
            parts = []
            for sel in selectors:
                conds: list[str] = []
                if sel.types is not None:
                    text, p = type_expr_sql(sel.types, _has_type)
                    conds.append(text)
                    params.extend(p)
                if sel.ids:
                    conds.append("id = ANY(%s)")
                    params.append(list(sel.ids))
                if sel.id_pattern is not None:
                    conds.append("id ~ %s")
                    params.append(sel.id_pattern)
                parts.append("(" + (" AND ".join(conds) or "true") + ")")
            where.append("(" + " OR ".join(parts) + ")")
        if ids_in is not None:
            where.append("id = ANY(%s)")
            params.append(list(ids_in))
        if attrs is not None:
            aids = [a for a in (self.known_aid(conn, iri) for iri in attrs) if a is not None]
            where.append(
                "EXISTS (SELECT 1 FROM attr_instances i WHERE i.tid = temporal_entities.tid "
                "AND i.aid = ANY(%s::integer[]))")
            params.append(aids)
        clause = " AND ".join(where)
        total = None
        if count:
            found = conn.execute(f"SELECT count(*) FROM temporal_entities WHERE {clause}",
                                 params).fetchone()
            assert found is not None
            total = found[0]
        rows = conn.execute(
            f"SELECT tid, id, types FROM temporal_entities WHERE {clause} ORDER BY id "
            "LIMIT %s OFFSET %s", (*params, limit, offset)).fetchall()
        return [(tid, eid, types) for tid, eid, types in rows], total

    def attribute_ids(self, conn: Conn, tid: int, wanted: frozenset[str] | None) -> list[int]:
        if wanted is not None:
            return [a for a in (self.known_aid(conn, iri) for iri in sorted(wanted))
                    if a is not None]
        # Skip-scan of the (tid, aid, t) index: one probe per attribute, not per row.
        rows = conn.execute(
            "WITH RECURSIVE a(aid) AS ("
            " SELECT min(aid) FROM attr_instances WHERE tid=%s"
            " UNION ALL"
            " SELECT (SELECT min(i.aid) FROM attr_instances i WHERE i.tid=%s AND i.aid > a.aid)"
            " FROM a WHERE a.aid IS NOT NULL"
            ") SELECT aid FROM a WHERE aid IS NOT NULL", (tid, tid)).fetchall()
        return [r[0] for r in rows]

    def instances(self, conn: Conn, tid: int, aid: int, tq: TimeQuery,
                  cap: int) -> tuple[list[dict], bool]:
        """An attribute's instances in time order, at most ``cap`` (True if more exist)."""
        return read_instances(conn, "SELECT iid, t, created, modified, doc::text FROM "
                              "attr_instances WHERE tid=%s AND aid=%s", [tid, aid], tq, cap,
                              "%s")

    def aggregate(self, conn: Conn, tid: int, aid: int,
                  tq: TimeQuery) -> tuple[str, dict[str | None, list[dict]]]:
        """(attribute type, datasetId -> buckets) with one dict of method values per bucket."""
        col = _TIME_COLUMN[tq.timeproperty]
        where, params = time_where(col, tq, "%s")
        first = conn.execute(
            f"SELECT min({col}), max({col}), (SELECT doc ->> 'type' FROM attr_instances "
            f"WHERE tid=%s AND aid=%s LIMIT 1) FROM attr_instances WHERE tid=%s AND aid=%s{where}",
            (tid, aid, tid, aid, *params)).fetchone()
        assert first is not None
        if first[0] is None:
            return "Property", {}
        origin, end, period = aggregation_window(tq, first[0], first[1])
        # JSON null is no value, as SQLite's json_extract makes it NULL.
        distinct = ("count(DISTINCT coalesce(to_jsonb(num), nullif(doc -> 'value', 'null'), "
                    "nullif(doc -> 'object', 'null')))" if "distinctCount" in tq.aggr_methods
                    else "NULL::bigint")
        # bigint division truncates like SQLite's, and no time lies before the origin.
        rows = conn.execute(
            f"SELECT dataset, ({col} - %s::bigint) / %s::bigint AS b, count(*), {distinct}, "
            f"sum(num), avg(num), min(num), max(num), sum(num * num), count(num) "
            f"FROM attr_instances WHERE tid=%s AND aid=%s{where} GROUP BY dataset, b "
            f'ORDER BY dataset COLLATE "C" NULLS FIRST, b',
            (origin, period, tid, aid, *params)).fetchall()
        return first[2] or "Property", buckets(rows, origin, end, period, tq)


_ROW_KEYS = ("tid", "aid", "dataset", "t", "created", "modified", "num", "doc")


def _values(key: str, inst: dict, times: dict[str, int]) -> tuple[Any, ...]:
    """(attribute IRI, dataset, t, created, modified, num, doc) of one instance."""
    created = _ms(inst.get("createdAt"), times)
    modified = _ms(inst.get("modifiedAt"), times)
    observed = inst.get("observedAt")
    value: Any = inst.get("value")
    num = float(value) if (inst.get("type") == "Property"
                           and type(value) in (int, float)) else None
    doc = {k: v for k, v in inst.items() if k not in _NOT_IN_DOC}
    return (key, inst.get("datasetId"), _ms(observed, times) if observed else modified,
            created, modified, num, Jsonb(doc, dumps=_dumps))


def _weight(text: str | None) -> int:
    """An instance's DOWNSAMPLED count as SQLite reads it:
    ``max(1, CAST(coalesce(value, 1) AS INTEGER))``."""
    if text is None:
        return 1
    value = orjson.loads(text)
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        number = int(value) if abs(value) < 2**63 else (_INT64[1] if value > 0 else _INT64[0])
    elif isinstance(value, str):
        match = _LEADING_INT.match(value)
        number = int(match[1]) if match else 0
    else:
        return 1  # an object or array: SQLite casts its JSON text, to 0
    return max(1, min(number, _INT64[1]))


def _has_type(name: str) -> tuple[str, list[Any]]:
    return "types ? %s", [name]
