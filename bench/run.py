"""dothi benchmark: one command, prints a table (and writes bench/results/latest.txt).

    python bench/run.py [--sizes 100000,1000000] [--queries 200]

1. Batch upsert over HTTP (batches of 1,000 Smart-Data-Model-shaped entities) against a
   real ``dothi serve`` process, against two baselines measured in the same run: the input
   entities as one row each in a plain SQLite table, and the rows dothi itself wrote
   copied straight into an empty database of its schema.
2. Query latency p50/p95 at each size: by id; by type with q on one attribute;
   near;maxDistance==500 around a point; within a district polygon (pages of 100).
3. Peak resident memory of the server process (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import datagen  # bench/ is the script's folder, first on sys.path
from dothi.store.changes import GEO_SLOTS

HERE = Path(__file__).resolve().parent

console = Console()
BATCH = 1000
SERVER_LOG: list[str] = []


def start_server(db: Path, workers: int, history: bool = True) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dothi.cli", "serve", "--db", str(db), "--port", "0",
         "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # A lab: a request without a credential may do everything, as in the test suite
        # (bench/auth.py measures what signing in costs).
        env={**os.environ, "DOTHI_CONTEXT_FETCH": "false", "DOTHI_AUTH_ANONYMOUS": "system-admin",
             "DOTHI_HISTORY": "true" if history else "false"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://[\d.]+:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stdout.read()}")
    # Keep reading what the server prints: a full pipe would block its workers.
    threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
    return proc, f"http://127.0.0.1:{match.group(1)}"


def _drain(stream: Any) -> None:
    for line in stream:
        SERVER_LOG.append(line)


def server_pids(pid: int) -> list[int]:
    """The server process and its worker processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in (children.read_text().split() if children.exists() else ()))]


def tree_peak_rss_mb(pid: int) -> float:
    """Peak RSS of the server and its worker processes, added up."""
    return sum(peak_rss_mb(p) for p in server_pids(pid))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_http(client: httpx.Client, start: int, count: int, clients: int,
              progress: Progress) -> float:
    """Upsert entities [start, start+count) and return entities/s.

    Bodies are serialised in chunks before the clock starts, so the figure is the
    server's; ``clients`` threads send concurrently (one per worker is realistic).
    """
    from concurrent.futures import ThreadPoolExecutor

    task = progress.add_task(f"upsert {start:,}..{start + count:,}", total=count)
    gen = datagen.generate(start + count, seed=1)
    for _ in range(start):
        next(gen)
    elapsed = 0.0
    chunk_batches = 50
    with ThreadPoolExecutor(clients) as pool:
        while True:
            bodies = []
            for _ in range(chunk_batches):
                batch = [e for _, e in zip(range(BATCH), gen)]
                if not batch:
                    break
                bodies.append((len(batch), orjson.dumps(batch)))
            if not bodies:
                break
            t0 = time.perf_counter()
            for n in pool.map(lambda nb: _send(client, nb), bodies):
                progress.advance(task, n)
            elapsed += time.perf_counter() - t0
    return count / elapsed


def _send(client: httpx.Client, sized_body: tuple[int, bytes]) -> int:
    n, body = sized_body
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", content=body,
                    headers={"Content-Type": "application/json"})
    if r.status_code not in (201, 204):
        raise SystemExit(f"upsert failed: {r.status_code} {r.text[:500]}\n"
                         f"server said: {''.join(SERVER_LOG[-20:])}")
    return n


def raw_sqlite_rate(count: int) -> float:
    """Baseline: the same entities as JSON rows in a plain table with a unique index."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE e (id TEXT PRIMARY KEY, type TEXT, doc TEXT)")
        conn.execute("CREATE INDEX e_type ON e(type)")
        rows = [(e["id"], e["type"], orjson.dumps(e)) for e in datagen.generate(count, seed=1)]
        t0 = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO e VALUES (?, ?, ?)", rows[i : i + BATCH])
            conn.execute("COMMIT")
        dt = time.perf_counter() - t0
        conn.close()
    return count / dt


def same_rows_rate(source: Path, count: int) -> float:
    """Second baseline: the rows dothi itself wrote for the first ``count`` entities (entity
    documents, type index, R*Tree) copied straight into an empty database of the same
    schema, 1,000 entities per transaction. What is left between this and the HTTP figure
    is dothi's own work: parsing, validation, @context expansion, HTTP."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    schema = [sql for (sql,) in src.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'geo_rtree_%' "
        "AND type IN ('table', 'index') ORDER BY type DESC")]
    rowids = [r for (r,) in src.execute(
        "SELECT rowid FROM entities ORDER BY rowid LIMIT ?", (count,))]
    chunks = []
    for i in range(0, len(rowids), BATCH):
        lo, hi = rowids[i], rowids[min(i + BATCH, len(rowids)) - 1]
        chunks.append((
            src.execute("SELECT rowid, tenant, id, doc FROM entities WHERE rowid BETWEEN ? AND ?",
                        (lo, hi)).fetchall(),
            src.execute("SELECT * FROM entity_types WHERE entity BETWEEN ? AND ?",
                        (lo, hi)).fetchall(),
            src.execute("SELECT * FROM geo_rtree WHERE id BETWEEN ? AND ?",
                        (lo * GEO_SLOTS, hi * GEO_SLOTS + GEO_SLOTS - 1)).fetchall(),
        ))
    src.close()
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "same.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for sql in schema:
            conn.execute(sql)
        t0 = time.perf_counter()
        for entities, types, geo in chunks:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO entities (rowid, tenant, id, doc) VALUES (?, ?, ?, ?)",
                             entities)
            conn.executemany("INSERT INTO entity_types VALUES (?, ?, ?)", types)
            conn.executemany("INSERT INTO geo_rtree VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", geo)
            conn.execute("COMMIT")
        dt = time.perf_counter() - t0
        conn.close()
    return len(rowids) / dt


def latency(client: httpx.Client, make_params: object, n: int) -> tuple[float, float, int]:
    times = []
    sizes = []
    for i in range(n):
        path, params = make_params(i)  # type: ignore[operator]
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"query failed: {r.status_code} {r.text[:300]}")
        body = r.json()
        sizes.append(len(body) if isinstance(body, list) else 1)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    return statistics.median(times), p95, int(statistics.median(sizes))


def query_suite(client: httpx.Client, size: int, n: int) -> list[tuple[str, float, float, int]]:
    rnd = random.Random(7)
    lon, lat = datagen.SAMPLE_POINT["coordinates"]
    polygon = json.dumps(datagen.DISTRICT_POLYGON["coordinates"])
    ids = [e["id"] for e in datagen.generate(min(size, 20000), seed=1)]
    suites = {
        "by id": lambda i: (f"/ngsi-ld/v1/entities/{rnd.choice(ids)}", {}),
        "type + q (one attribute)": lambda i: (
            "/ngsi-ld/v1/entities",
            {"type": "Streetlight", "q": 'powerState=="on"', "limit": "100"}),
        "near;maxDistance==500": lambda i: (
            "/ngsi-ld/v1/entities",
            {"type": "Streetlight", "georel": "near;maxDistance==500", "geometry": "Point",
             "coordinates": json.dumps([lon + rnd.uniform(-0.02, 0.02),
                                        lat + rnd.uniform(-0.02, 0.02)]),
             "limit": "100"}),
        "within district polygon": lambda i: (
            "/ngsi-ld/v1/entities",
            {"type": "Streetlight", "georel": "within", "geometry": "Polygon",
             "coordinates": polygon, "limit": "100"}),
    }
    out = []
    for name, make in suites.items():
        latency(client, make, 10)  # warm caches
        p50, p95, rows = latency(client, make, n)
        out.append((name, p50, p95, rows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--clients", type=int, default=4,
                        help="concurrent upload clients (two per worker keeps both busy)")
    parser.add_argument("--no-history", action="store_true",
                        help="serve with DOTHI_HISTORY=false (no attribute instances kept)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[tuple[int, list[tuple[str, float, float, int]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp) / "bench.db", args.workers,
                                  history=not args.no_history)
        try:
            with httpx.Client(base_url=base, timeout=120) as client, Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=console,
            ) as progress:
                loaded = 0
                rates = []
                for size in sizes:
                    rates.append((size - loaded, load_http(client, loaded, size - loaded,
                                                           args.clients, progress)))
                    loaded = size
                    results.append((size, query_suite(client, size, args.queries)))
            rss = tree_peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        first_batch = min(sizes[0], 100_000)
        same = same_rows_rate(Path(tmp) / "bench.db", first_batch)
    raw = raw_sqlite_rate(first_batch)
    http_rate = rates[0][1]
    table = Table(title=f"dothi benchmark (SQLite store, {args.workers} worker(s), "
                        f"{args.clients} upload client(s), history "
                        f"{'off' if args.no_history else 'on'})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for count, rate in rates:
        table.add_row(f"HTTP batch upsert, {count:,} entities (entities/s)", f"{rate:,.0f}",
                      ">= 10,000")
    table.add_row(f"raw SQLite insert, {first_batch:,} rows (rows/s)", f"{raw:,.0f}", "baseline")
    table.add_row("HTTP upsert / raw SQLite", f"{http_rate / raw:.1%}", ">= 25%")
    table.add_row(f"dothi's own rows straight into SQLite, {first_batch:,} entities "
                  "(entities/s)", f"{same:,.0f}", "baseline")
    table.add_row("HTTP upsert / dothi's own rows", f"{http_rate / same:.1%}", ">= 25%")
    for size, rows in results:
        for name, p50, p95, n in rows:
            table.add_row(f"{size:,} entities: {name} p50 / p95 ms ({n} results)",
                          f"{p50:.1f} / {p95:.1f}", "p95 < 20")
    table.add_row(f"server peak RSS at {sizes[-1]:,} entities (MB)", f"{rss:,.0f}", "< 500")
    show_and_save(table, "latest.txt")


def show_and_save(table: Table, name: str) -> None:
    """Print a result table and keep a copy in bench/results/ (not committed)."""
    console.print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with (out / name).open("w") as fh:
        Console(file=fh, width=120).print(table)


if __name__ == "__main__":
    main()
