"""What the audit log costs writers: one command, one table (also bench/results/audit.txt).

    python bench/audit.py [--writes 2000] [--batches 20] [--threads 4]

Through the broker (expansion, history, type statistics, the audit log when on), on
SQLite and on PostgreSQL, each on a fresh database, the audit log off and then on:

- single writes: ``--threads`` threads each creating entities one per transaction (the
  worst case for the log: one chain append, and on PostgreSQL one wait for the chain's
  lock, per entity);
- batches: upserts of 1,000 entities per transaction (device ingestion's shape).

The baseline, measured in the same run: the same entities as one row each in a plain
SQLite table, one transaction per row and per 1,000 rows. Then ``dothi audit verify``'s
speed over the log the run wrote.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from dothi.app import build_broker
from dothi.settings import Settings
from dothi.store import audit
from dothi.store.base import DEFAULT_TENANT

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HERE = Path(__file__).resolve().parent
console = Console(width=150)


def lamp(run: str, n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Streetlight:{run}-{n}", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on"},
            "illuminanceLevel": {"type": "Property", "value": 0.8, "unitCode": "C62"},
            "location": {"type": "GeoProperty", "value": {
                "type": "Point", "coordinates": [108.2 + n * 1e-5, 16.06]}}}


def fresh_postgres(name: str) -> str:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_postgres(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def single_writes(broker: Any, run: str, writes: int, threads: int) -> float:
    """Entities created per second, one per transaction, by ``threads`` threads."""
    ctx = broker.resolver.core
    share = writes // threads

    def work(k: int) -> None:
        with audit.acting(f"bench#{k}", "127.0.0.1"):
            for n in range(share):
                broker.create(DEFAULT_TENANT, lamp(f"{run}-{k}", n), ctx)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    began = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return share * threads / (time.perf_counter() - began)


def batch_writes(broker: Any, run: str, batches: int) -> float:
    ctx = broker.resolver.core
    began = time.perf_counter()
    for b in range(batches):
        items = [lamp(run, b * 1000 + n) for n in range(1000)]
        broker.batch(DEFAULT_TENANT, "upsert", items, lambda _item: ctx)
    return batches * 1000 / (time.perf_counter() - began)


def sqlite_baseline(folder: Path, writes: int, batches: int) -> tuple[float, float]:
    import sqlite3

    conn = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, doc TEXT)")
    began = time.perf_counter()
    for n in range(writes):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t VALUES (?, ?)",
                     (f"s{n}", orjson.dumps(lamp("s", n)).decode()))
        conn.execute("COMMIT")
    single = writes / (time.perf_counter() - began)
    began = time.perf_counter()
    for b in range(batches):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [
            (f"b{b * 1000 + n}", orjson.dumps(lamp("b", b * 1000 + n)).decode())
            for n in range(1000)])
        conn.execute("COMMIT")
    batched = batches * 1000 / (time.perf_counter() - began)
    conn.close()
    return single, batched


def measure(fresh: Callable[[str], str], args: argparse.Namespace) -> dict[str, float]:
    """Each figure on a database of its own, made by ``fresh(name)``: the second run on
    one database would meet a larger table, and on PostgreSQL older statistics."""
    out: dict[str, float] = {}
    for on in (False, True):
        label = "on" if on else "off"
        broker = build_broker(Settings(database_url=fresh(f"audit_{label}"),
                                       context_fetch=False))
        try:
            broker.store.audit = on  # type: ignore[attr-defined]
            console.print(f"  {broker.store.__class__.__name__}, audit {label}")
            out[f"single {label}"] = single_writes(broker, "one", args.writes, args.threads)
            out[f"batch {label}"] = batch_writes(broker, "many", args.batches)
            if on:
                began = time.perf_counter()
                checked = audit.verify(audit.stored(broker.store))
                out["verify"] = checked.rows / (time.perf_counter() - began)
                assert checked.ok and checked.rows == args.writes // args.threads \
                    * args.threads + args.batches * 1000, checked
        finally:
            broker.store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        console.print("baseline: plain SQLite rows")
        base_single, base_batch = sqlite_baseline(folder, args.writes, args.batches)
        results = {"SQLite": measure(lambda name: f"sqlite:///{folder / name}.db", args)}
        made: list[str] = []

        def postgres(name: str) -> str:
            made.append(f"dothi_bench_{name}")
            return fresh_postgres(made[-1])

        try:
            results["PostgreSQL"] = measure(postgres, args)
        finally:
            for name in made:
                drop_postgres(name)
    table = Table(title=f"The audit log's cost to writers ({args.threads} threads of single "
                        "writes; batches of 1,000)")
    table.add_column("", min_width=22)
    for backend in results:
        for label in ("audit off", "audit on", "on/off"):
            table.add_column(f"{backend}\n{label}", justify="right")
    table.add_column("plain SQLite\nrows", justify="right")
    for kind, base in (("single", base_single), ("batch", base_batch)):
        cells = []
        for figures in results.values():
            off, on = figures[f"{kind} off"], figures[f"{kind} on"]
            cells += [f"{off:,.0f}", f"{on:,.0f}", f"{on / off:.2f}"]
        table.add_row(f"{kind} writes (entities/s)", *cells, f"{base:,.0f}")
    cells = []
    for figures in results.values():
        cells += ["", f"{figures['verify']:,.0f}", ""]
    table.add_row("verify (rows/s)", *cells, "")
    console.print(table)
    (HERE / "results").mkdir(exist_ok=True)
    with (HERE / "results" / "audit.txt").open("w") as f:
        Console(file=f, width=140).print(table)


if __name__ == "__main__":
    main()
