"""The PostgreSQL attribute history, run side by side with the SQLite one on the same data:
the same calls must give the same answers, on a blank database of the test session's
PostgreSQL server (``DOTHI_TEST_POSTGRES``)."""

from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install "
                              "'psycopg[binary]>=3.2')")

from dothi.ngsild.temporal import AGGR_METHODS, TimeQuery, iso_to_ms, ms_to_iso  # noqa: E402
from dothi.ngsild.typeexpr import parse_type_expr  # noqa: E402
from dothi.store.base import Outcome, Selector  # noqa: E402
from dothi.store.postgres_history import (  # noqa: E402
    SCHEMA,
    History,
    MissingPartitions,
    _weight,
    month_start,
    next_month,
)
from dothi.store.sqlite_filters import register_sqlite_functions  # noqa: E402
from dothi.store.sqlite_history import DOWNSAMPLED, PruneState, Retention  # noqa: E402
from dothi.store.sqlite_history import SCHEMA as SQLITE_SCHEMA  # noqa: E402
from dothi.store.sqlite_history import History as SQLiteHistory  # noqa: E402
from tests.conftest import PostgresDatabases  # noqa: E402

ENTITIES = "CREATE TABLE entities (tenant text, id text, doc jsonb, PRIMARY KEY (tenant, id))"
TENANT = "urn:ngsi-ld:tenant:default"
V = "https://uri.etsi.org/ngsi-ld/default-context/"
PM = V + "pm25"
NAME = V + "name"
NEAR = V + "near"
FLAG = V + "flag"
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def ms(text: str) -> int:
    return iso_to_ms(text if "." in text else text.replace("Z", ".000Z"))


def iso(t: int) -> str:
    return ms_to_iso(t)


def inst(value: Any, observed: int | None, modified: int, *, dataset: str | None = None,
         created: int | None = None, kind: str = "Property", **more: Any) -> dict:
    member = "object" if kind == "Relationship" else "value"
    out = {"type": kind, member: value, "createdAt": iso(modified if created is None else created),
           "modifiedAt": iso(modified), **more}
    if observed is not None:
        out["observedAt"] = iso(observed)
    if dataset is not None:
        out["datasetId"] = dataset
    return out


# -- the two backends ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(postgres_databases: PostgresDatabases | None) -> str:
    if postgres_databases is None:
        pytest.skip("PostgreSQL is not reachable (DOTHI_TEST_POSTGRES)")
    return postgres_databases.blank("history")


class Twin:
    """The same History calls against PostgreSQL and SQLite. PostgreSQL writes run the
    way the store runs them: a transaction, retried after creating missing partitions
    on a separate autocommit connection."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pg = psycopg.connect(url, autocommit=True)
        self.pg.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        self.pg.execute(SCHEMA)
        self.pg.execute(ENTITIES)
        self.admin = psycopg.connect(url, autocommit=True)
        self.ph = History()
        self.ph.load_partitions(self.pg)
        self.lite = sqlite3.connect(":memory:", isolation_level=None)
        register_sqlite_functions(self.lite)
        self.lite.executescript(SQLITE_SCHEMA)
        self.lite.execute("CREATE TABLE entities (tenant TEXT, id TEXT, doc TEXT, "
                          "PRIMARY KEY (tenant, id))")
        self.sh = SQLiteHistory()
        self.missing: list[set[int]] = []  # months each retry had to create

    def close(self) -> None:
        self.pg.close()
        self.admin.close()
        self.lite.close()

    def pg_write(self, fn: Callable[[Any, Any], Any]) -> Any:
        for _ in range(5):
            try:
                with self.pg.transaction():
                    return fn(self.pg, self.ph)
            except MissingPartitions as exc:
                self.missing.append(exc.months)
                self.ph.create_partitions(self.admin, exc.months)
        raise AssertionError("the partitions never appeared")

    def lite_write(self, fn: Callable[[Any, Any], Any]) -> Any:
        self.lite.execute("BEGIN")
        try:
            result = fn(self.lite, self.sh)
        except BaseException:
            self.lite.execute("ROLLBACK")
            raise
        self.lite.execute("COMMIT")
        return result

    def write(self, fn: Callable[[Any, Any], Any]) -> tuple[Any, Any]:
        return self.pg_write(fn), self.lite_write(fn)

    def read(self, fn: Callable[[Any, Any], Any]) -> tuple[Any, Any]:
        return fn(self.pg, self.ph), fn(self.lite, self.sh)

    def add(self, eid: str, attrs: dict[str, list[dict]], types: tuple[str, ...] = (V + "Sensor",)
            ) -> None:
        self.write(lambda c, h: h.add(c, TENANT, eid, types, attrs))

    def tid(self, eid: str) -> tuple[int, int]:
        pg, lite = self.read(lambda c, h: h.find_tid(c, TENANT, eid))
        return pg[0], lite[0]

    def aid(self, iri: str) -> tuple[int, int]:
        pg, lite = self.read(lambda c, h: h.known_aid(c, iri))
        assert pg is not None and lite is not None
        return pg, lite

    def dump(self, tenant: str = TENANT) -> tuple[Any, Any]:
        """Every temporal entity with every instance, minus instanceIds (SQLite reuses
        the largest one after a delete, a PostgreSQL sequence never does)."""
        def one(conn: Any, h: Any) -> list:
            out = []
            found, _ = h.select(conn, tenant, (), None, None, 1000, 0, False)
            for tid, eid, types in found:
                attrs = {}
                for aid in h.attribute_ids(conn, tid, None):
                    got, _ = h.instances(conn, tid, aid, TimeQuery(), 100_000)
                    attrs[h.iri(conn, aid)] = [
                        {k: v for k, v in i.items() if k != "instanceId"} for i in got]
                out.append((eid, types, attrs))
            return out
        return self.read(one)

    def partition_of(self, where: str, params: tuple = ()) -> list[tuple[str, int]]:
        return [(str(r[0]), r[1]) for r in self.pg.execute(
            f"SELECT tableoid::regclass, t FROM attr_instances WHERE {where} ORDER BY t, iid",
            params).fetchall()]


@pytest.fixture
def twin(database: str) -> Iterator[Twin]:
    made = Twin(database)
    yield made
    made.close()


def close(a: Any, b: Any) -> bool:
    """Equal, floats within rounding (sums may add up in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        return (a is not None and b is not None
                and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# -- months and partitions ----------------------------------------------------------------


def test_month_arithmetic() -> None:
    def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
        return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)

    assert month_start(utc(2026, 1, 15, 13, 5)) == utc(2026, 1, 1)
    assert month_start(utc(2026, 1, 1)) == utc(2026, 1, 1)
    assert month_start(utc(2026, 1, 1) - 1) == utc(2025, 12, 1)
    assert next_month(utc(2025, 12, 31, 23, 59)) == utc(2026, 1, 1)
    assert next_month(utc(2024, 2, 10)) == utc(2024, 3, 1)
    assert next_month(utc(2024, 2, 1)) - utc(2024, 2, 1) == 29 * DAY
    assert month_start(-1) == utc(1969, 12, 1)
    first = ms("0001-01-01T00:00:00Z")
    assert month_start(first + 5 * DAY) == first and next_month(first) == first + 31 * DAY
    last = ms("9999-12-01T00:00:00Z")
    assert month_start(ms("9999-12-31T23:59:59.999Z")) == last
    assert next_month(last) == last + 31 * DAY


def test_missing_partitions_are_reported_before_anything_is_written(twin: Twin) -> None:
    jan, feb = ms("2026-01-31T23:59:00Z"), ms("2026-02-01T00:01:00Z")
    eid = "urn:ngsi-ld:Sensor:1"
    doc = {"id": eid, "type": [V + "Sensor"], "modifiedAt": iso(feb),
           PM: [inst(1.5, jan, feb), inst(2.5, feb, feb, dataset="urn:ds:b")]}
    outcome = Outcome(eid, "created", after=doc)
    with pytest.raises(MissingPartitions) as raised:
        with twin.pg.transaction():
            twin.ph.record(twin.pg, TENANT, [outcome])
    assert raised.value.months == {ms("2026-01-01T00:00:00Z"), ms("2026-02-01T00:00:00Z")}
    assert "2026-01" in str(raised.value)
    for table in ("temporal_entities", "temporal_attrs", "attr_instances"):
        assert twin.pg.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert twin.ph._aids == {} and twin.ph._pending == {}

    twin.ph.create_partitions(twin.admin, raised.value.months)
    twin.ph.create_partitions(twin.admin, {jan, feb})  # again: nothing to do
    assert twin.ph.partitions == raised.value.months
    with twin.pg.transaction():
        twin.ph.record(twin.pg, TENANT, [outcome])
    assert twin.partition_of("true") == [("attr_instances_y2026m01", jan),
                                         ("attr_instances_y2026m02", feb)]
    names = [r[0] for r in twin.pg.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'attr_instances'::regclass ORDER BY 1")]
    assert names == ["attr_instances_y2026m01", "attr_instances_y2026m02"]
    # Another process learns them from the catalog; the indexes came with them.
    other = History()
    assert other.load_partitions(twin.pg) == twin.ph.partitions
    indexes = twin.pg.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'attr_instances_y2026m01'").fetchone()
    assert indexes == (2,)


def test_partitions_made_by_someone_else(twin: Twin) -> None:
    # A concurrent process got there first, and an operator made a whole-year partition.
    twin.admin.execute(
        "CREATE TABLE attr_instances_y2026m03 PARTITION OF attr_instances "
        f"FOR VALUES FROM ({ms('2026-03-01T00:00:00Z')}) TO ({ms('2026-04-01T00:00:00Z')})")
    twin.admin.execute(
        "CREATE TABLE attr_instances_2027 PARTITION OF attr_instances "
        f"FOR VALUES FROM ({ms('2027-01-01T00:00:00Z')}) TO ({ms('2028-01-01T00:00:00Z')})")
    found = twin.ph.load_partitions(twin.pg)
    assert ms("2026-03-01T00:00:00Z") in found and len(found) == 13
    assert ms("2027-12-01T00:00:00Z") in found
    twin.ph.partitions.clear()  # as if they were created after this process loaded
    twin.ph.create_partitions(twin.admin, {ms("2026-03-05T00:00:00Z")})
    assert len(twin.ph.partitions) == 13
    # A table that only has the name of a partition is said to be in the way.
    twin.admin.execute("CREATE TABLE attr_instances_y2026m05 (x int)")
    with pytest.raises(RuntimeError, match="attr_instances_y2026m05"):
        twin.ph.create_partitions(twin.admin, {ms("2026-05-05T00:00:00Z")})


def test_concurrent_processes_create_the_same_partitions(twin: Twin) -> None:
    months = {ms(f"2030-{m:02d}-10T00:00:00Z") for m in range(1, 13)}
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with psycopg.connect(twin.url, autocommit=True) as conn:
                barrier.wait()
                History().create_partitions(conn, months)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(twin.ph.load_partitions(twin.pg)) == 12


# -- ids ----------------------------------------------------------------------------------


def test_an_attribute_from_a_rolled_back_transaction_is_not_cached(twin: Twin) -> None:
    h, pg = twin.ph, twin.pg
    with pytest.raises(ZeroDivisionError), pg.transaction():
        first = h.aid(pg, "urn:x")
        assert h.aid(pg, "urn:x") == first and h.known_aid(pg, "urn:x") == first
        1 / 0  # noqa: B018
    assert h.known_aid(pg, "urn:x") is None
    with pg.transaction():
        second = h.aid(pg, "urn:x")
        assert second != first and h.aid(pg, "urn:x") == second
    assert h.known_aid(pg, "urn:x") == second and h.iri(pg, second) == "urn:x"
    assert h._aids == {"urn:x": second} and h._pending == {}
    # The same within a transaction, when a savepoint is rolled back.
    with pg.transaction():
        with pytest.raises(ZeroDivisionError), pg.transaction():
            third = h.aid(pg, "urn:y")
            1 / 0  # noqa: B018
        fourth = h.aid(pg, "urn:y")
        assert fourth != third and h.known_aid(pg, "urn:y") == fourth
    assert h.known_aid(pg, "urn:y") == fourth and h._aids["urn:y"] == fourth


def test_two_processes_adding_the_same_attribute(twin: Twin) -> None:
    other = psycopg.connect(twin.url, autocommit=True)
    got: list[int] = []

    def second() -> None:
        with other.transaction():
            got.append(History().aid(other, "urn:shared"))

    with twin.pg.transaction():
        mine = twin.ph.aid(twin.pg, "urn:shared")
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)  # the other waits on the unique index until this commits
    thread.join()
    other.close()
    assert got == [mine]
    assert twin.pg.execute("SELECT count(*) FROM temporal_attrs").fetchone() == (1,)


def test_temporal_entity_ids_and_types(twin: Twin) -> None:
    eid = "urn:ngsi-ld:Sensor:1"
    pg, lite = twin.write(lambda c, h: h.tid(c, TENANT, eid, [V + "Sensor"]))
    assert pg[1] is True and lite[1] is True
    pg2, lite2 = twin.write(lambda c, h: h.tid(c, TENANT, eid, [V + "Sensor", V + "Device"]))
    assert (pg2, lite2) == ((pg[0], False), (lite[0], False))
    twin.write(lambda c, h: h.tid(c, TENANT, eid, []))  # no types given: kept
    assert twin.read(lambda c, h: h.find_tid(c, TENANT, eid)) == (
        (pg[0], [V + "Sensor", V + "Device"]), (lite[0], [V + "Sensor", V + "Device"]))
    assert twin.read(lambda c, h: h.find_tid(c, "urn:other", eid)) == (None, None)
    assert twin.write(lambda c, h: h.delete_entity(c, TENANT, eid)) == (True, True)
    assert twin.write(lambda c, h: h.delete_entity(c, TENANT, eid)) == (False, False)


# -- writing ------------------------------------------------------------------------------


def test_record_keeps_what_each_operation_changed(twin: Twin) -> None:
    t0 = ms("2026-01-31T23:00:00Z")
    t1 = ms("2026-02-01T01:00:00Z")
    eid = "urn:ngsi-ld:Sensor:1"
    created = {"id": eid, "type": [V + "Sensor"], "modifiedAt": iso(t0), "createdAt": iso(t0),
               PM: [inst(3, t0 - MINUTE, t0, unitCode="GQ"),
                    inst(4.5, None, t0, dataset="urn:ds:b")],
               NAME: [inst("north", None, t0)]}
    updated = {**created, "type": [V + "Sensor", V + "Device"], "modifiedAt": iso(t1),
               PM: [inst(7.25, t1, t1, created=t0), inst(4.5, None, t0, dataset="urn:ds:b")],
               NEAR: [inst("urn:ngsi-ld:Street:1", None, t1, kind="Relationship")]}
    other = {"id": "urn:ngsi-ld:Sensor:2", "type": [V + "Sensor"], "modifiedAt": iso(t1),
             PM: [inst(9, None, t1)]}
    twin.write(lambda c, h: h.record(c, TENANT, [
        Outcome(eid, "created", after=created), Outcome("x", "failed", error=ValueError()),
        Outcome("urn:ngsi-ld:Sensor:2", "unchanged", after=other)]))
    assert twin.missing == [{ms("2026-01-01T00:00:00Z")}]
    twin.write(lambda c, h: h.record(c, TENANT, [
        Outcome(eid, "updated", before=created, after=updated),
        Outcome("urn:ngsi-ld:Sensor:2", "deleted", before=other)]))
    assert twin.missing[1:] == [{ms("2026-02-01T00:00:00Z")}]
    pg, lite = twin.dump()
    assert pg == lite
    assert [e[0] for e in pg] == [eid]
    assert pg[0][1] == [V + "Sensor", V + "Device"]
    assert [i["value"] for i in pg[0][2][PM]] == [3, 4.5, 7.25]
    assert pg[0][2][PM][2]["createdAt"] == iso(t0)
    assert twin.partition_of("true") == [
        ("attr_instances_y2026m01", t0 - MINUTE), ("attr_instances_y2026m01", t0),
        ("attr_instances_y2026m01", t0), ("attr_instances_y2026m02", t1),
        ("attr_instances_y2026m02", t1)]
    # Only numbers of Properties are averaged or summed.
    assert twin.pg.execute("SELECT count(num) FROM attr_instances").fetchone() == (3,)


def test_instances_across_months_lastn_and_cap(twin: Twin) -> None:
    eid = "urn:ngsi-ld:Sensor:1"
    start = ms("2025-12-31T22:00:00Z")
    # Every 20 minutes for three days, across a year and a month boundary, plus two
    # instances observed at the same time (ordered by instanceId).
    readings = [inst(round(i * 0.7, 2), start + i * 20 * MINUTE, start + i * 20 * MINUTE + 5)
                for i in range(216)]
    readings.insert(5, inst(-1, start + 4 * 20 * MINUTE, start + 4 * 20 * MINUTE + 9))
    twin.add(eid, {PM: readings})
    # Then some in February, with other creation times.
    twin.add(eid, {PM: [inst(i, ms("2026-02-03T00:00:00Z") + i * MINUTE,
                              ms("2026-01-01T00:00:00Z") - i * MINUTE) for i in range(3)]})
    months = sorted({r[0] for r in twin.partition_of("true")})
    assert months == ["attr_instances_y2025m12", "attr_instances_y2026m01",
                      "attr_instances_y2026m02"]
    counts = dict(twin.pg.execute(
        "SELECT tableoid::regclass::text, count(*) FROM attr_instances GROUP BY 1").fetchall())
    assert counts == {"attr_instances_y2025m12": 7, "attr_instances_y2026m01": 210,
                      "attr_instances_y2026m02": 3}
    tid_pg, tid_lite = twin.tid(eid)
    aid_pg, aid_lite = twin.aid(PM)
    queries = [
        (TimeQuery(), 1000), (TimeQuery(), 10), (TimeQuery(last_n=5), 1000),
        (TimeQuery(last_n=50), 10), (TimeQuery(last_n=10), 10), (TimeQuery(last_n=500), 1000),
        (TimeQuery(start=ms("2026-01-01T00:00:00Z"), end=ms("2026-01-02T00:00:00Z")), 1000),
        (TimeQuery(start=ms("2026-01-01T00:00:00Z"), end=ms("2026-01-02T00:00:00Z")), 7),
        (TimeQuery(end=ms("2026-01-01T00:00:00Z"), last_n=3), 1000),
        (TimeQuery(start=ms("2026-01-02T00:00:01Z")), 1000),
        (TimeQuery(timeproperty="createdAt"), 1000),
        (TimeQuery(timeproperty="modifiedAt", start=ms("2025-12-31T23:00:00Z"),
                   end=ms("2026-01-01T00:00:00Z")), 1000),
        (TimeQuery(timeproperty="createdAt", last_n=4), 2),
    ]
    for tq, cap in queries:
        pg = twin.ph.instances(twin.pg, tid_pg, aid_pg, tq, cap)
        lite = twin.sh.instances(twin.lite, tid_lite, aid_lite, tq, cap)
        assert pg == lite, tq  # instanceIds too: nothing was deleted
    full, more = twin.ph.instances(twin.pg, tid_pg, aid_pg, TimeQuery(), 10)
    assert more and len(full) == 10 and full[5]["value"] == -1
    last, more = twin.ph.instances(twin.pg, tid_pg, aid_pg, TimeQuery(last_n=5), 10)
    assert not more and [i["value"] for i in last] == [149.8, 150.5, 0, 1, 2]
    assert twin.ph.instances(twin.pg, tid_pg, aid_pg, TimeQuery(last_n=50), 10)[1]


def test_aggregate_matches_sqlite(twin: Twin) -> None:
    rnd = random.Random(7)
    start = ms("2026-01-31T20:00:00Z")
    ds = "urn:ngsi-ld:Dataset:b"
    pm, name, near, flag = [], [], [], []
    for i in range(150):
        t = start + i * 3 * MINUTE + rnd.randrange(1000)
        pm.append(inst(round(rnd.uniform(-5, 80), 3), t, t + 2 * MINUTE, created=t + MINUTE))
        if i % 3 == 0:
            pm.append(inst(rnd.choice([2, 3.5, 10, 2.0]), t, t + 1, dataset=ds))
        name.append(inst(rnd.choice(["north", "south", "east", {"a": 1}, ["x"], None]), t, t + 1))
        near.append(inst(f"urn:ngsi-ld:Street:{rnd.randrange(4)}", t, t + 1, kind="Relationship",
                         dataset=None if i % 2 else "urn:ngsi-ld:Dataset:a"))
        flag.append(inst(rnd.random() < 0.3, t, t + 1))
    twin.add("urn:ngsi-ld:Sensor:1", {PM: pm, NAME: name, NEAR: near, FLAG: flag})
    assert len({r[0] for r in twin.partition_of("true")}) == 2
    tid_pg, tid_lite = twin.tid("urn:ngsi-ld:Sensor:1")
    queries = [
        TimeQuery(aggr_methods=AGGR_METHODS, aggr_period_ms=HOUR),
        TimeQuery(aggr_methods=AGGR_METHODS),
        TimeQuery(aggr_methods=AGGR_METHODS, aggr_period_ms=7 * MINUTE,
                  start=ms("2026-01-31T22:00:00Z"), end=ms("2026-02-01T01:10:00Z")),
        TimeQuery(aggr_methods=AGGR_METHODS, aggr_period_ms=DAY, end=ms("2026-02-01T00:00:00Z")),
        TimeQuery(aggr_methods=AGGR_METHODS, aggr_period_ms=HOUR // 2,
                  start=ms("2026-02-01T00:00:00.001Z")),
        TimeQuery(aggr_methods=("sum", "avg"), aggr_period_ms=HOUR, timeproperty="createdAt"),
        TimeQuery(aggr_methods=AGGR_METHODS, aggr_period_ms=HOUR * 3, timeproperty="modifiedAt"),
        TimeQuery(aggr_methods=AGGR_METHODS, start=ms("2027-01-01T00:00:00Z")),  # nothing
    ]
    compared = 0
    for iri in (PM, NAME, NEAR, FLAG):
        aids = twin.aid(iri)
        for tq in queries:
            pg = twin.ph.aggregate(twin.pg, tid_pg, aids[0], tq)
            lite = twin.sh.aggregate(twin.lite, tid_lite, aids[1], tq)
            assert close(pg, lite), (iri, tq, pg, lite)
            assert list(pg[1]) == list(lite[1])  # datasets in the same order
            compared += sum(len(b) for b in pg[1].values())
    assert compared > 100
    kind, buckets = twin.ph.aggregate(twin.pg, tid_pg, twin.aid(NEAR)[0], queries[1])
    assert kind == "Relationship" and set(buckets) == {None, "urn:ngsi-ld:Dataset:a"}
    _, buckets = twin.ph.aggregate(twin.pg, tid_pg, twin.aid(PM)[0], queries[1])
    assert buckets[ds][0]["distinctCount"] == 3 and buckets[ds][0]["totalCount"] == 50


def test_delete_attribute_variants(twin: Twin) -> None:
    t = ms("2026-03-01T10:00:00Z")
    attrs = {PM: [inst(i, t + i * MINUTE, t, dataset=[None, "urn:a", "urn:b"][i % 3])
                  for i in range(9)],
             NAME: [inst("x", t, t)]}
    twin.add("urn:ngsi-ld:Sensor:1", attrs)
    tids = twin.tid("urn:ngsi-ld:Sensor:1")

    def delete(iri: str, dataset: str | None, delete_all: bool) -> tuple[int, int]:
        pg = twin.pg_write(lambda c, h: h.delete_attribute(c, tids[0], iri, dataset, delete_all))
        lite = twin.lite_write(
            lambda c, h: h.delete_attribute(c, tids[1], iri, dataset, delete_all))
        return pg, lite

    assert delete(PM, None, False) == (3, 3)
    assert delete(PM, "urn:a", False) == (3, 3)
    assert delete(PM, "urn:zzz", False) == (0, 0)
    assert delete(V + "unknown", None, True) == (0, 0)
    pg, lite = twin.dump()
    assert pg == lite and {i["datasetId"] for i in pg[0][2][PM]} == {"urn:b"}
    assert delete(PM, None, True) == (3, 3)
    pg, lite = twin.dump()
    assert pg == lite and list(pg[0][2]) == [NAME]


def test_replace_instance_moves_it_to_another_month(twin: Twin) -> None:
    t = ms("2026-03-31T23:30:00Z")
    twin.add("urn:ngsi-ld:Sensor:1", {PM: [inst(1, t, t), inst(2, t + MINUTE, t)]})
    tid = twin.tid("urn:ngsi-ld:Sensor:1")[0]
    h, pg = twin.ph, twin.pg
    iid = pg.execute("SELECT min(iid) FROM attr_instances").fetchone()[0]
    current = h.get_instance(pg, tid, PM, iid)
    assert current is not None and current["value"] == 1
    assert current["instanceId"] == f"urn:ngsi-ld:attribute-instance:{iid}"
    assert h.get_instance(pg, tid, NAME, iid) is None and h.get_instance(pg, tid, PM, 10**9) is None
    later = ms("2026-04-02T08:00:00Z")
    new = {**current, "value": 1.5, "observedAt": iso(later), "modifiedAt": iso(later)}
    with pytest.raises(MissingPartitions) as raised, pg.transaction():
        h.replace_instance(pg, tid, PM, iid, new)
    assert raised.value.months == {ms("2026-04-01T00:00:00Z")}
    assert h.get_instance(pg, tid, PM, iid) == current
    twin.pg_write(lambda c, hh: hh.replace_instance(c, tid, PM, iid, new))
    assert twin.partition_of("iid=%s", (iid,)) == [("attr_instances_y2026m04", later)]
    got = h.get_instance(pg, tid, PM, iid)
    assert got == {**new, "instanceId": current["instanceId"]}
    twin.pg_write(lambda c, hh: hh.delete_instance(c, iid))
    assert h.get_instance(pg, tid, PM, iid) is None
    assert pg.execute("SELECT count(*) FROM attr_instances").fetchone() == (1,)


def test_select_matches_sqlite(twin: Twin) -> None:
    t = ms("2026-05-01T10:00:00Z")
    for eid, names, attrs in [
        ("urn:ngsi-ld:Sensor:a", ("Sensor",), (PM,)),
        ("urn:ngsi-ld:Sensor:B", ("Sensor", "Device"), (NAME,)),
        ("urn:ngsi-ld:Street:a", ("Street",), (PM, NAME)),
        ("urn:ngsi-ld:sensor:c", ("Device",), (PM,)),
        ("urn:ngsi-ld:Sensor:Ä", ("Sensor",), (NEAR,)),
    ]:
        twin.add(eid, {a: [inst(1, t, t)] for a in attrs}, tuple(V + x for x in names))
    twin.write(lambda c, h: h.add(c, "urn:other", "urn:ngsi-ld:Sensor:a", (V + "Sensor",),
                                  {PM: [inst(2, t, t)]}))

    def types(text: str) -> Selector:
        return Selector(types=parse_type_expr(text, lambda x: V + x))

    cases: list[tuple[Any, ...]] = [
        ((), None, None, 100, 0, True),
        ((types("Sensor"),), None, None, 100, 0, True),
        ((types("Sensor;Device"),), None, None, 100, 0, True),
        ((types("Street|Device"),), None, None, 100, 0, True),
        ((types("(Sensor,Street);Device"),), None, None, 100, 0, False),
        ((Selector(ids=["urn:ngsi-ld:Sensor:a", "urn:ngsi-ld:sensor:c", "urn:x"]),),
         None, None, 100, 0, True),
        ((Selector(id_pattern="Sensor:[a-z]$"),), None, None, 100, 0, True),
        ((Selector(id_pattern="^urn:ngsi-ld:S"), types("Device")), None, None, 100, 0, True),
        ((Selector(types=parse_type_expr("Sensor", lambda x: V + x), id_pattern=":B$"),),
         None, None, 100, 0, True),
        ((), ["urn:ngsi-ld:Street:a", "urn:ngsi-ld:Sensor:B"], None, 100, 0, True),
        ((), [], None, 100, 0, True),
        ((), None, frozenset({PM}), 100, 0, True),
        ((), None, frozenset({NAME, V + "nothing"}), 100, 0, True),
        ((), None, frozenset({V + "nothing"}), 100, 0, True),
        ((types("Sensor"),), None, frozenset({PM, NEAR}), 100, 0, True),
        ((), None, None, 2, 0, True),
        ((), None, None, 2, 3, True),
        ((), None, None, 2, 10, False),
    ]
    for selectors, ids_in, attrs, limit, offset, count in cases:
        pg, lite = twin.read(lambda c, h: h.select(c, TENANT, selectors, ids_in, attrs,
                                                   limit, offset, count))
        assert [e[1:] for e in pg[0]] == [e[1:] for e in lite[0]], selectors
        assert pg[1] == lite[1]
    everything, total = twin.ph.select(twin.pg, TENANT, (), None, None, 100, 0, True)
    # Byte order, as in SQLite: upper case before lower case, non-ASCII last.
    assert [e[1] for e in everything] == [
        "urn:ngsi-ld:Sensor:B", "urn:ngsi-ld:Sensor:a", "urn:ngsi-ld:Sensor:Ä",
        "urn:ngsi-ld:Street:a", "urn:ngsi-ld:sensor:c"]
    assert total == 5


def test_attribute_ids_skip_scan(twin: Twin) -> None:
    t = ms("2026-06-01T00:00:00Z")
    twin.add("urn:ngsi-ld:Sensor:1", {V + f"a{i}": [inst(i, t + j, t) for j in range(3)]
                                      for i in range(6)})
    twin.add("urn:ngsi-ld:Sensor:2", {V + "a3": [inst(1, t, t)], V + "a5": [inst(1, t, t)]})
    for eid in ("urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"):
        tids = twin.tid(eid)
        pg = [twin.ph.iri(twin.pg, a) for a in twin.ph.attribute_ids(twin.pg, tids[0], None)]
        lite = [twin.sh.iri(twin.lite, a) for a in twin.sh.attribute_ids(twin.lite, tids[1], None)]
        assert pg == lite
    assert twin.ph.attribute_ids(twin.pg, 10**6, None) == []
    wanted = frozenset({V + "a5", V + "a1", V + "zzz"})
    pg, lite = twin.read(lambda c, h: [h.iri(c, a) for a in h.attribute_ids(c, 1, wanted)])
    assert pg == lite == [V + "a1", V + "a5"]


# -- retention ----------------------------------------------------------------------------


def prune(twin: Twin, before: int | None, downsample_before: int | None, period: int | None,
          budget: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Both histories pruned the way ``SQLiteStore.prune_history`` drives it."""
    if downsample_before is not None and period is not None:
        downsample_before = downsample_before // period * period
    rule = Retention(before, downsample_before, period)
    out = []
    for write, conn in ((twin.pg_write, twin.pg), (twin.lite_write, twin.lite)):
        state = PruneState([r[0] for r in conn.execute(
            "SELECT tid FROM temporal_entities ORDER BY tid").fetchall()])
        chunks = 0
        def chunk(c: Any, h: Any, state: PruneState = state) -> None:
            h.prune_chunk(c, state, rule, budget)

        while state.done < len(state.tids):
            write(chunk)
            chunks += 1
            assert chunks < 10_000
        out.append((state.deleted, state.written))
    return out[0], out[1]


def retention_data(twin: Twin) -> None:
    rnd = random.Random(3)
    start = ms("2026-01-29T00:00:00Z")
    pm, name, near = [], [], []
    for i in range(5 * 24 * 6):  # every 10 minutes for five days
        t = start + i * 10 * MINUTE + rnd.randrange(60_000)
        pm.append(inst(round(rnd.uniform(0, 100), 2), t, t + 1, unitCode="GQ"))
        if i % 4 == 0:
            pm.append(inst(rnd.randrange(10), t, t + 2, dataset="urn:ngsi-ld:Dataset:b"))
        if i % 5 == 0:
            pm.append(inst("n/a", t, t + 3))  # not a number: only its last one per period stays
        if i % 7 == 0:
            name.append(inst(f"name {i}", t, t + 1))
        if i % 9 == 0:
            near.append(inst(f"urn:ngsi-ld:Street:{i}", t, t + 1, kind="Relationship"))
    twin.add("urn:ngsi-ld:Sensor:1", {PM: pm, NAME: name, NEAR: near})
    for eid in ("urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:3"):  # entities that still exist
        twin.pg.execute("INSERT INTO entities VALUES (%s, %s, '{}')", (TENANT, eid))
        twin.lite.execute("INSERT INTO entities VALUES (?, ?, '{}')", (TENANT, eid))
    # Deleted entities with only old history, and one that still exists.
    twin.add("urn:ngsi-ld:Sensor:2", {PM: [inst(i, start + i * HOUR, start) for i in range(5)]})
    twin.add("urn:ngsi-ld:Sensor:3", {PM: [inst(i, start + i * HOUR, start) for i in range(5)]})
    twin.add("urn:ngsi-ld:Sensor:4", {PM: [inst(i, ms("2026-02-02T00:00:00Z") + i * MINUTE,
                                                  start) for i in range(5)]})


@pytest.mark.parametrize("budget", [1, 7, 60, 100_000])
def test_prune_matches_sqlite(twin: Twin, budget: int) -> None:
    retention_data(twin)
    before = ms("2026-01-30T06:00:00Z")
    downsample_before = ms("2026-02-01T20:30:00Z")
    pg, lite = prune(twin, before, downsample_before, HOUR, budget)
    assert pg == lite and pg[0] > 400 and pg[1] > 40
    after_pg, after_lite = twin.dump()
    assert after_pg == after_lite
    assert [e[0] for e in after_pg] == [
        "urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:3", "urn:ngsi-ld:Sensor:4"]
    averaged = [i for i in after_pg[0][2][PM] if DOWNSAMPLED in i]
    assert all(i["unitCode"] == "GQ" and i[DOWNSAMPLED]["value"] == 6
               for i in averaged if "datasetId" not in i)  # readings every 10 minutes
    assert len(averaged) > 80
    # Late readings in periods already reduced are weighted against their averages.
    late = ms("2026-01-31T10:00:00Z")
    twin.add("urn:ngsi-ld:Sensor:1", {PM: [inst(1000.0, late + i * MINUTE, late)
                                           for i in range(3)]})
    pg, lite = prune(twin, before, downsample_before, HOUR, budget)
    assert pg == lite == (3, 1)
    after_pg, after_lite = twin.dump()
    assert after_pg == after_lite
    pg, lite = prune(twin, before, downsample_before, HOUR, budget)
    assert pg == lite == (0, 0)
    # Everything before a later cutoff goes; only entities that still exist stay.
    pg, lite = prune(twin, ms("2026-03-01T00:00:00Z"), None, None, budget)
    assert pg == lite
    assert twin.dump() == ([("urn:ngsi-ld:Sensor:1", [V + "Sensor"], {}),
                            ("urn:ngsi-ld:Sensor:3", [V + "Sensor"], {})],) * 2


def test_prune_writes_averages_into_an_earlier_month(twin: Twin) -> None:
    # Weeks start on Thursdays (as 1970-01-01 did): 2026-01-29 holds February 2's average,
    # and January has no partition yet.
    start = ms("2026-02-02T00:00:00Z")
    twin.add("urn:ngsi-ld:Sensor:1", {PM: [inst(float(i), start + i * HOUR, start + i * HOUR)
                                           for i in range(24 * 10)]})
    assert twin.missing == [{ms("2026-02-01T00:00:00Z")}]
    pg, lite = prune(twin, None, ms("2026-02-12T00:00:00Z"), 7 * DAY, 50)
    assert pg == lite
    assert twin.missing[1:] == [{ms("2026-01-01T00:00:00Z")}]  # the chunk ran again
    assert twin.dump()[0] == twin.dump()[1]
    assert twin.partition_of("doc ? %s", (DOWNSAMPLED,)) == [
        ("attr_instances_y2026m01", ms("2026-01-29T00:00:00Z")),
        ("attr_instances_y2026m02", ms("2026-02-05T00:00:00Z"))]


def test_downsampled_weight_reads_like_sqlite() -> None:
    lite = sqlite3.connect(":memory:")
    path = f'$."{DOWNSAMPLED}".value'
    samples: list[Any] = [3, 0, -4, 2.7, 1e30, -1e30, "5", " 7x", "2.9", "abc", "", True, False,
                          None, {"a": 1}, [4], "99999999999999999999", 2**62]
    for value in [*samples, "absent"]:
        doc = {} if value == "absent" else {DOWNSAMPLED: {"type": "Property", "value": value}}
        text = orjson.dumps(doc).decode()
        (expected,) = lite.execute(
            "SELECT max(1, CAST(coalesce(json_extract(?, ?), 1) AS INTEGER))",
            (text, path)).fetchone()
        sub = doc.get(DOWNSAMPLED, {}).get("value")
        mine = _weight(None if value == "absent" else orjson.dumps(sub).decode())
        assert mine == expected, value
    lite.close()
