"""Attribute history in SQLite: every attribute instance written through the entity API
(or the temporal API) is kept as a row, for the temporal API (clauses 6.18–6.22).

An entity's history lives under a ``tid`` of its own (``temporal_entities``), so it
outlives the entity and a deleted entity's history can still be read or removed. Times
are integer milliseconds; ``t`` is when the instance was observed, or written when it
carries no ``observedAt``, and is what ``timeproperty=observedAt`` selects on.

A retention policy (``dothi history prune``) deletes old instances and downsamples older
ones, a bounded chunk of rows per write transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from dothi.ngsild.context import DEFAULT_VOCAB
from dothi.ngsild.temporal import TimeQuery, iso_to_ms, ms_to_iso
from dothi.store.base import Outcome, Selector, TemporalEntity
from dothi.store.changes import new_instances
from dothi.store.sqlite_filters import type_expr_sql

SCHEMA = """
CREATE TABLE temporal_entities (
    tid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, id TEXT NOT NULL, types TEXT NOT NULL,
    UNIQUE (tenant, id)
);
CREATE TABLE temporal_attrs (aid INTEGER PRIMARY KEY, iri TEXT NOT NULL UNIQUE);
CREATE TABLE attr_instances (
    iid INTEGER PRIMARY KEY, tid INTEGER NOT NULL, aid INTEGER NOT NULL, dataset TEXT,
    t INTEGER NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL,
    num REAL, doc TEXT NOT NULL
);
CREATE INDEX attr_instances_t ON attr_instances (tid, aid, t);
"""

INSTANCE_PREFIX = "urn:ngsi-ld:attribute-instance:"
_TIME_COLUMN = {"observedAt": "t", "createdAt": "created", "modifiedAt": "modified"}
_NOT_IN_DOC = ("createdAt", "modifiedAt", "instanceId")
# The sub-property that marks a period average and says how many instances it stands for,
# so that a later prune finding late instances in that period weights the average right.
DOWNSAMPLED = DEFAULT_VOCAB + "downsampledFrom"
_DOWNSAMPLED_PATH = f'$."{DOWNSAMPLED}".value'
_EARLIEST = -(2**63)  # no instance time is smaller (SQLite's smallest integer)


def instance_id(iid: int) -> str:
    return f"{INSTANCE_PREFIX}{iid}"


def parse_instance_id(text: str) -> int | None:
    if not text.startswith(INSTANCE_PREFIX) or not text[len(INSTANCE_PREFIX):].isdigit():
        return None
    return int(text[len(INSTANCE_PREFIX):])


@dataclass(frozen=True)
class Retention:
    """What a prune keeps, in instance times (ms): instances before ``before`` are deleted;
    before ``downsample_before`` (a multiple of ``period``), each attribute, datasetId and
    period keeps one numeric instance, the average, and its last non-numeric one. Periods
    start at multiples of ``period`` from the epoch, so every prune cuts on the same
    boundaries and finds the periods it reduced before already reduced."""

    before: int | None
    downsample_before: int | None
    period: int | None


def retention_rule(before_ms: int | None, downsample_before_ms: int | None,
                   period_ms: int | None) -> Retention:
    """The policy of a prune, the downsampling cutoff rounded down to a period boundary;
    ValueError for half a downsampling policy."""
    downsample_before = None
    if downsample_before_ms is not None and period_ms is not None and period_ms > 0:
        downsample_before = downsample_before_ms // period_ms * period_ms
    elif downsample_before_ms is not None or period_ms is not None:
        raise ValueError("Downsampling needs a cutoff and a period longer than zero")
    return Retention(before_ms, downsample_before, period_ms)


def read_temporal(history: Any, conn: Any, tid: int, eid: str, types: list[str],
                  tq: TimeQuery, cap: int) -> TemporalEntity:
    """One temporal entity as the temporal API asks for it, through either backend's
    ``History`` (the same methods on both)."""
    result = TemporalEntity(eid, types)
    for aid in history.attribute_ids(conn, tid, tq.attrs):
        iri = history.iri(conn, aid)
        if tq.fmt == "aggregatedValues":
            kind, buckets = history.aggregate(conn, tid, aid, tq)
            if buckets:
                result.aggregated[iri] = buckets
                result.kinds[iri] = kind
            continue
        instances, more = history.instances(conn, tid, aid, tq, cap)
        if instances:
            result.attrs[iri] = instances
            result.truncated = result.truncated or more
    return result


def change_instance(history: Any, conn: Any, tenant: str, eid: str, iri: str, iid: int,
                    change: Callable[[dict], dict | None]) -> bool:
    """Replace (or, when ``change`` returns None, delete) one instance, inside the
    caller's write transaction, through either backend's ``History``; False if the
    entity, attribute or instance does not exist."""
    found = history.find_tid(conn, tenant, eid)
    if found is None:
        return False
    current = history.get_instance(conn, found[0], iri, iid)
    if current is None:
        return False
    new = change(current)
    if new is None:
        history.delete_instance(conn, iid)
    else:
        history.replace_instance(conn, found[0], iri, iid, new)
    return True


@dataclass
class PruneState:
    """How far a prune has got, carried from one write transaction to the next."""

    tids: list[int]
    done: int = 0  # entities finished
    aid: int = 0  # attributes of tids[done] below this one are finished
    since: int = _EARLIEST  # where that attribute's downsampling resumes
    emptied: bool = False  # tids[done] lost old instances, so it may now be empty
    deleted: int = 0
    written: int = 0


class History:
    """The history tables, used by ``SQLiteStore`` inside its own transactions."""

    def __init__(self) -> None:
        self._aids: dict[str, int] = {}
        self._iris: dict[int, str] = {}

    # -- ids -----------------------------------------------------------------------------

    def aid(self, conn: sqlite3.Connection, iri: str) -> int:
        found = self._aids.get(iri)
        if found is None:
            conn.execute("INSERT OR IGNORE INTO temporal_attrs (iri) VALUES (?)", (iri,))
            found = conn.execute("SELECT aid FROM temporal_attrs WHERE iri=?", (iri,)).fetchone()[0]
            self._aids[iri] = found
            self._iris[found] = iri
        return found

    def known_aid(self, conn: sqlite3.Connection, iri: str) -> int | None:
        if iri not in self._aids:
            row = conn.execute("SELECT aid FROM temporal_attrs WHERE iri=?", (iri,)).fetchone()
            if row is None:
                return None
            self._aids[iri], self._iris[row[0]] = row[0], iri
        return self._aids[iri]

    def iri(self, conn: sqlite3.Connection, aid: int) -> str:
        if aid not in self._iris:
            (iri,) = conn.execute("SELECT iri FROM temporal_attrs WHERE aid=?", (aid,)).fetchone()
            self._iris[aid], self._aids[iri] = iri, aid
        return self._iris[aid]

    def tid(self, conn: sqlite3.Connection, tenant: str, eid: str,
            types: Sequence[str]) -> tuple[int, bool]:
        """The entity's history id, created on first use: (tid, created)."""
        types_json = orjson.dumps(list(types)).decode()
        row = conn.execute("SELECT tid, types FROM temporal_entities WHERE tenant=? AND id=?",
                           (tenant, eid)).fetchone()
        if row is None:
            cur = conn.execute("INSERT INTO temporal_entities (tenant, id, types) VALUES (?, ?, ?)",
                               (tenant, eid, types_json))
            assert cur.lastrowid is not None
            return cur.lastrowid, True
        if types and row[1] != types_json:
            conn.execute("UPDATE temporal_entities SET types=? WHERE tid=?", (types_json, row[0]))
        return row[0], False

    def find_tid(self, conn: sqlite3.Connection, tenant: str, eid: str) -> tuple[int, list[str]] | None:
        row = conn.execute("SELECT tid, types FROM temporal_entities WHERE tenant=? AND id=?",
                           (tenant, eid)).fetchone()
        return (row[0], orjson.loads(row[1])) if row else None

    # -- writing -------------------------------------------------------------------------

    def record(self, conn: sqlite3.Connection, tenant: str, outcomes: Iterable[Outcome]) -> None:
        """Keep the instances each created or updated entity got in this operation
        (``changes.new_instances``)."""
        rows: list[tuple[Any, ...]] = []
        times: dict[str, int] = {}
        for outcome in outcomes:
            changed = new_instances(outcome)
            if not changed:
                continue
            doc = outcome.after
            assert doc is not None
            tid, _ = self.tid(conn, tenant, doc["id"], doc.get("type", ()))
            for key, inst in changed:
                rows.append(self._row(conn, tid, key, inst, times))
        self._insert(conn, rows)

    def add(self, conn: sqlite3.Connection, tenant: str, eid: str, types: Sequence[str],
            attrs: dict[str, list[dict]]) -> bool:
        """Instances given through the temporal API; True if the temporal entity is new."""
        tid, created = self.tid(conn, tenant, eid, types)
        times: dict[str, int] = {}
        self._insert(conn, [self._row(conn, tid, key, inst, times)
                            for key, instances in attrs.items() for inst in instances])
        return created

    def _row(self, conn: sqlite3.Connection, tid: int, key: str, inst: dict,
             times: dict[str, int]) -> tuple[Any, ...]:
        created = _ms(inst.get("createdAt"), times)
        modified = _ms(inst.get("modifiedAt"), times)
        observed = inst.get("observedAt")
        value = inst.get("value")
        num = value if (inst.get("type") == "Property" and type(value) in (int, float)) else None
        doc = {k: v for k, v in inst.items() if k not in _NOT_IN_DOC}
        return (tid, self.aid(conn, key), inst.get("datasetId"),
                _ms(observed, times) if observed else modified, created, modified, num,
                orjson.dumps(doc))

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        conn.executemany(
            "INSERT INTO attr_instances (tid, aid, dataset, t, created, modified, num, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def delete_entity(self, conn: sqlite3.Connection, tenant: str, eid: str) -> bool:
        found = self.find_tid(conn, tenant, eid)
        if found is None:
            return False
        conn.execute("DELETE FROM attr_instances WHERE tid=?", (found[0],))
        conn.execute("DELETE FROM temporal_entities WHERE tid=?", (found[0],))
        return True

    def delete_attribute(self, conn: sqlite3.Connection, tid: int, iri: str,
                         dataset: str | None, delete_all: bool) -> int:
        aid = self.known_aid(conn, iri)
        if aid is None:
            return 0
        if delete_all:
            cur = conn.execute("DELETE FROM attr_instances WHERE tid=? AND aid=?", (tid, aid))
        elif dataset is None:
            cur = conn.execute("DELETE FROM attr_instances WHERE tid=? AND aid=? AND dataset IS NULL",
                               (tid, aid))
        else:
            cur = conn.execute("DELETE FROM attr_instances WHERE tid=? AND aid=? AND dataset=?",
                               (tid, aid, dataset))
        return cur.rowcount

    def get_instance(self, conn: sqlite3.Connection, tid: int, iri: str,
                     iid: int) -> dict | None:
        aid = self.known_aid(conn, iri)
        if aid is None:
            return None
        row = conn.execute(
            "SELECT iid, t, created, modified, doc FROM attr_instances "
            "WHERE iid=? AND tid=? AND aid=?", (iid, tid, aid)).fetchone()
        return _instance(row) if row else None

    def replace_instance(self, conn: sqlite3.Connection, tid: int, iri: str, iid: int,
                         inst: dict) -> None:
        times: dict[str, int] = {}
        row = self._row(conn, tid, iri, inst, times)
        conn.execute(
            "UPDATE attr_instances SET dataset=?, t=?, created=?, modified=?, num=?, doc=? "
            "WHERE iid=?", (*row[2:], iid))

    def delete_instance(self, conn: sqlite3.Connection, iid: int) -> None:
        conn.execute("DELETE FROM attr_instances WHERE iid=?", (iid,))

    # -- retention -----------------------------------------------------------------------

    def prune_chunk(self, conn: sqlite3.Connection, state: PruneState, rule: Retention,
                    budget: int) -> None:
        """Apply ``rule`` from where ``state`` stands until about ``budget`` rows were
        touched, so that one write transaction stays short."""
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
                    "DELETE FROM temporal_entities WHERE tid=? AND NOT EXISTS "
                    "(SELECT 1 FROM attr_instances WHERE tid=temporal_entities.tid) "
                    "AND NOT EXISTS (SELECT 1 FROM entities e WHERE e.tenant="
                    "temporal_entities.tenant AND e.id=temporal_entities.id)", (tid,))
            state.done, state.aid, state.emptied = state.done + 1, 0, False

    def _prune_attribute(self, conn: sqlite3.Connection, tid: int, aid: int, rule: Retention,
                         state: PruneState, budget: int) -> tuple[int, bool]:
        """(rows touched, whether the attribute is finished)."""
        used = 0
        if rule.before is not None:
            used = conn.execute(
                "DELETE FROM attr_instances WHERE iid IN (SELECT iid FROM attr_instances "
                "WHERE tid=? AND aid=? AND t<? LIMIT ?)", (tid, aid, rule.before, budget)).rowcount
            state.deleted += used
            state.emptied = state.emptied or used > 0
            if used == budget:
                return used, False
        if rule.downsample_before is None:
            return used, True
        read, finished = self._downsample(conn, tid, aid, rule, state, budget - used)
        return used + read, finished

    def _downsample(self, conn: sqlite3.Connection, tid: int, aid: int, rule: Retention,
                    state: PruneState, budget: int) -> tuple[int, bool]:
        """Whole periods from ``state.since`` on, about ``budget`` rows of them:
        (rows read, whether the attribute is finished)."""
        assert rule.downsample_before is not None and rule.period is not None
        period = rule.period
        # The last column is the instance's weight in an average: its DOWNSAMPLED count.
        sql = ("SELECT iid, dataset, t, created, modified, num, doc, "
               "max(1, CAST(coalesce(json_extract(doc, ?), 1) AS INTEGER)) "
               "FROM attr_instances WHERE tid=? AND aid=? AND t>=? AND t<? ORDER BY t, iid")
        rows = conn.execute(f"{sql} LIMIT ?", (_DOWNSAMPLED_PATH, tid, aid, state.since,
                                               rule.downsample_before, budget + 1)).fetchall()
        finished = len(rows) <= budget
        if not finished:
            # The last period read may go on past the limit: it waits for the next chunk,
            # unless it is the only one read, then it is read whole.
            last = rows[-1][2] // period * period
            if rows[0][2] >= last:
                state.since = last + period
                rows = conn.execute(sql, (_DOWNSAMPLED_PATH, tid, aid, last,
                                          state.since)).fetchall()
            else:
                state.since = last
                rows = [r for r in rows if r[2] < last]
        periods: dict[tuple[str | None, int], list[tuple[Any, ...]]] = {}
        for row in rows:
            periods.setdefault((row[1], row[2] // period * period), []).append(row)
        for (_, start), group in periods.items():
            self._merge_period(conn, start, group, state)
        return len(rows), finished

    @staticmethod
    def _merge_period(conn: sqlite3.Connection, start: int, rows: list[tuple[Any, ...]],
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
                "UPDATE attr_instances SET t=?, created=?, modified=?, num=?, doc=? WHERE iid=?",
                (start, min(r[3] for r in numeric), max(r[4] for r in numeric), avg,
                 orjson.dumps(doc), keep[0]))
            state.written += 1
            drop.extend(r[0] for r in numeric[:-1])
        conn.executemany("DELETE FROM attr_instances WHERE iid=?", [(iid,) for iid in drop])
        state.deleted += len(drop)

    # -- reading -------------------------------------------------------------------------

    def select(self, conn: sqlite3.Connection, tenant: str, selectors: Sequence[Selector],
               ids_in: Sequence[str] | None, attrs: frozenset[str] | None, limit: int,
               offset: int, count: bool) -> tuple[list[tuple[int, str, list[str]]], int | None]:
        """Temporal entities matching the selectors and, with ``attrs``, having history of
        at least one of those attributes, in id order."""
        where = ["tenant = ?"]
        params: list[Any] = [tenant]
        if selectors:
            parts = []
            for sel in selectors:
                conds: list[str] = []
                if sel.types is not None:
                    sql, p = type_expr_sql(sel.types, _has_type)
                    conds.append(sql)
                    params.extend(p)
                if sel.ids:
                    conds.append(f"id IN ({','.join('?' * len(sel.ids))})")
                    params.extend(sel.ids)
                if sel.id_pattern is not None:
                    conds.append("id REGEXP ?")
                    params.append(sel.id_pattern)
                parts.append("(" + (" AND ".join(conds) or "1") + ")")
            where.append("(" + " OR ".join(parts) + ")")
        if ids_in is not None:
            where.append("id IN (SELECT value FROM json_each(?))")
            params.append(orjson.dumps(list(ids_in)).decode())
        if attrs is not None:
            aids = [a for a in (self.known_aid(conn, iri) for iri in attrs) if a is not None]
            where.append(
                "EXISTS (SELECT 1 FROM attr_instances i WHERE i.tid = temporal_entities.tid "
                "AND i.aid IN (SELECT value FROM json_each(?)))")
            params.append(orjson.dumps(aids).decode())
        clause = " AND ".join(where)
        total = None
        if count:
            total = conn.execute(f"SELECT count(*) FROM temporal_entities WHERE {clause}",
                                 params).fetchone()[0]
        rows = conn.execute(
            f"SELECT tid, id, types FROM temporal_entities WHERE {clause} ORDER BY id "
            "LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return [(tid, eid, orjson.loads(types)) for tid, eid, types in rows], total

    def attribute_ids(self, conn: sqlite3.Connection, tid: int,
                      wanted: frozenset[str] | None) -> list[int]:
        if wanted is not None:
            return [a for a in (self.known_aid(conn, iri) for iri in sorted(wanted))
                    if a is not None]
        # Skip-scan of the (tid, aid, t) index: one probe per attribute, not per row.
        aids = []
        row = conn.execute("SELECT min(aid) FROM attr_instances WHERE tid=?", (tid,)).fetchone()
        while row is not None and row[0] is not None:
            aids.append(row[0])
            row = conn.execute("SELECT min(aid) FROM attr_instances WHERE tid=? AND aid>?",
                               (tid, row[0])).fetchone()
        return aids

    def instances(self, conn: sqlite3.Connection, tid: int, aid: int, tq: TimeQuery,
                  cap: int) -> tuple[list[dict], bool]:
        """An attribute's instances in time order, at most ``cap`` (True if more exist)."""
        return read_instances(conn, "SELECT iid, t, created, modified, doc FROM attr_instances "
                              "WHERE tid=? AND aid=?", [tid, aid], tq, cap, "?")

    def aggregate(self, conn: sqlite3.Connection, tid: int, aid: int,
                  tq: TimeQuery) -> tuple[str, dict[str | None, list[dict]]]:
        """(attribute type, datasetId -> buckets) with one dict of method values per bucket."""
        col = _TIME_COLUMN[tq.timeproperty]
        where, params = time_where(col, tq)
        # The bounds come from the index; the attribute type from one row, not from every
        # row's document (min(doc) read them all: a tenth of the time over 43,200 rows).
        first = conn.execute(
            f"SELECT min({col}), max({col}), (SELECT json_extract(doc, '$.type') FROM "
            f"attr_instances WHERE tid=?1 AND aid=?2 LIMIT 1) "
            f"FROM attr_instances WHERE tid=?1 AND aid=?2{where}",
            (tid, aid, *params)).fetchone()
        if first[0] is None:
            return "Property", {}
        origin, end, period = aggregation_window(tq, first[0], first[1])
        distinct = ("count(DISTINCT coalesce(num, json_extract(doc, '$.value'), "
                    "json_extract(doc, '$.object')))" if "distinctCount" in tq.aggr_methods
                    else "NULL")
        rows = conn.execute(
            f"SELECT dataset, ({col} - ?) / ? AS b, count(*), {distinct}, sum(num), avg(num), "
            f"min(num), max(num), sum(num * num), count(num) FROM attr_instances "
            f"WHERE tid=? AND aid=?{where} GROUP BY dataset, b ORDER BY dataset, b",
            (origin, period, tid, aid, *params)).fetchall()
        return first[2] or "Property", buckets(rows, origin, end, period, tq)


def _has_type(name: str) -> tuple[str, list[Any]]:
    return "EXISTS (SELECT 1 FROM json_each(types) WHERE value = ?)", [name]


def _instance(row: tuple[Any, ...]) -> dict:
    iid, t, created, modified, doc = row
    inst = orjson.loads(doc)
    inst["instanceId"] = instance_id(iid)
    inst["createdAt"] = ms_to_iso(created)
    inst["modifiedAt"] = ms_to_iso(modified)
    return inst


def time_where(col: str, tq: TimeQuery, mark: str = "?") -> tuple[str, list[int]]:
    """The time window of ``tq`` on ``col``, with ``mark`` as the driver's placeholder."""
    where, params = "", []
    if tq.start is not None:
        where += f" AND {col} >= {mark}"
        params.append(tq.start)
    if tq.end is not None:
        where += f" AND {col} < {mark}"
        params.append(tq.end)
    return where, params


def read_instances(conn: Any, select: str, params: list[Any], tq: TimeQuery, cap: int,
                   mark: str) -> tuple[list[dict], bool]:
    """An attribute's instances in time order, at most ``cap`` (True if more exist), on
    either backend: ``select`` reads (iid, t, created, modified, doc) of one attribute,
    ``mark`` is the driver's placeholder."""
    col = _TIME_COLUMN[tq.timeproperty]
    where, window = time_where(col, tq, mark)
    base, args = select + where, [*params, *window]
    if tq.last_n is not None:
        n = min(tq.last_n, cap)
        rows = conn.execute(f"{base} ORDER BY {col} DESC, iid DESC LIMIT {mark}",
                            (*args, n + 1)).fetchall()
        # Fewer than asked for is a truncation only when the cap, not lastN, cut it.
        more = tq.last_n > cap and len(rows) > n
        rows = rows[:n][::-1]
    else:
        rows = conn.execute(f"{base} ORDER BY {col}, iid LIMIT {mark}",
                            (*args, cap + 1)).fetchall()
        more = len(rows) > cap
        rows = rows[:cap]
    return [_instance(r) for r in rows], more


def aggregation_window(tq: TimeQuery, first: int, last: int) -> tuple[int, int, int]:
    """(origin, end, period) of the buckets, from the query or the instances' span."""
    origin = tq.start if tq.start is not None else first
    end = tq.end if tq.end is not None else last + 1
    return origin, end, tq.aggr_period_ms or max(1, end - origin)


def buckets(rows: Sequence[Sequence[Any]], origin: int, end: int, period: int,
            tq: TimeQuery) -> dict[str | None, list[dict]]:
    """datasetId -> one dict of method values per bucket, from rows of (dataset, bucket
    number, count, distinct count, sum, avg, min, max, sum of squares, numeric count)."""
    out: dict[str | None, list[dict]] = {}
    for dataset, b, total, n_distinct, s, avg, lo, hi, sq, n in rows:
        start = origin + b * period
        std = None
        if n:
            std = max(0.0, sq / n - avg * avg) ** 0.5
        out.setdefault(dataset, []).append({
            "start": start, "end": min(start + period, end) if tq.end else start + period,
            "totalCount": total, "distinctCount": n_distinct, "sum": s, "avg": avg,
            "min": lo, "max": hi, "stddev": std, "sumsq": sq,
        })
    return out


def _ms(text: str | None, cache: dict[str, int]) -> int:
    if text is None:
        raise ValueError("an attribute instance without its timestamps")
    found = cache.get(text)
    if found is None:
        found = cache[text] = iso_to_ms(text)
    return found


