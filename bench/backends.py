"""Both backends side by side: one command, one table (also bench/results/backends.txt).

    python bench/backends.py [--entities 100000] [--sensors 100 --days 7] [--queries 100]

The foundation workload (``run.py``: batch upserts of Smart-Data-Model entities, then
queries by id, type + q, near and within) and the temporal one (``temporal.py``: a day of
1-minute readings per request, then hourly aggregates of one sensor and of a district)
run against a real ``dothi serve`` on SQLite and then on PostgreSQL + PostGIS, each on a
fresh database, and the table gives PostgreSQL's figure over SQLite's.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import run  # bench/ is the script's folder, first on sys.path
import temporal

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_postgres(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def analyze(url: str) -> None:
    """Fresh planner statistics after a bulk load on PostgreSQL, as autovacuum gathers
    within about a minute of one (without them the first queries plan as if the tables
    were empty); SQLite plans without statistics."""
    if url.startswith("postgresql:"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def measure(url: str, args: argparse.Namespace) -> dict[str, tuple[float, ...]]:
    """Every figure of one backend, by row name."""
    out: dict[str, tuple[float, ...]] = {}
    proc, base = run.start_server(url, args.workers)  # type: ignore[arg-type]
    try:
        with httpx.Client(base_url=base, timeout=300) as client, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=run.console,
        ) as progress:
            out["upsert (entities/s)"] = (run.load_http(client, 0, args.entities, args.clients,
                                                        progress),)
            analyze(url)
            for name, p50, p95, _ in run.query_suite(client, args.entities, args.queries):
                out[f"{name}, p50 / p95 ms"] = (p50, p95)
            temporal.create_sensors(client, args.sensors)
            out["temporal append (instances/s)"] = (
                temporal.load(client, args.sensors, args.days, progress),)
            analyze(url)
            end = temporal.START + timedelta(days=args.days)
            rnd = random.Random(9)
            p50, p95, _ = temporal.timed(
                client,
                lambda i: f"{temporal.TEMPORAL}/{temporal.sensor_id(rnd.randrange(args.sensors))}",
                lambda i: {"attrs": "pm25", "format": "aggregatedValues",
                           "aggrMethods": "avg,min,max", "aggrPeriodDuration": "PT1H",
                           "timerel": "between", "timeAt": temporal.START.isoformat(),
                           "endTimeAt": end.isoformat()}, args.queries)
            out[f"one sensor, hourly aggregates of {args.days} days, p50 / p95 ms"] = (p50, p95)
            polygon = json.dumps(run.datagen.DISTRICT_POLYGON["coordinates"])

            def district(i: int) -> dict[str, str]:
                day = temporal.START + timedelta(days=i % args.days)
                return {"type": "AirQualityObserved", "attrs": "pm25", "georel": "within",
                        "geometry": "Polygon", "coordinates": polygon,
                        "format": "aggregatedValues", "aggrMethods": "avg,min,max",
                        "aggrPeriodDuration": "PT1H", "timerel": "between",
                        "timeAt": day.isoformat(),
                        "endTimeAt": (day + timedelta(days=1)).isoformat(), "limit": "1000"}

            p50, p95, _ = temporal.timed(client, lambda i: temporal.TEMPORAL, district,
                                         max(5, args.queries // 5))
            out["district, hourly aggregates of a day, p50 / p95 ms"] = (p50, p95)
        out["server peak RSS (MB)"] = (run.tree_peak_rss_mb(proc.pid),)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--postgres", default=ADMIN, help="an admin URL of the server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lite = measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    pg = measure(fresh_postgres(args.postgres, "dothi_bench_backends"), args)
    table = Table(title=f"dothi on SQLite and on PostgreSQL + PostGIS ({args.entities:,} "
                        f"entities, {args.sensors} sensors x {args.days} days of readings, "
                        f"{args.workers} workers)")
    table.add_column("measure")
    table.add_column("SQLite", justify="right")
    table.add_column("PostgreSQL", justify="right")
    table.add_column("PostgreSQL / SQLite", justify="right")
    for name, a in lite.items():
        b = pg[name]
        fmt = ("{:,.0f}" if len(a) == 1 else "{:.1f}")
        table.add_row(name, " / ".join(fmt.format(x) for x in a),
                      " / ".join(fmt.format(x) for x in b),
                      " / ".join(f"{y / x:.2f}" for x, y in zip(a, b, strict=True)))
    run.show_and_save(table, "backends.txt")


if __name__ == "__main__":
    main()
