"""Sustained write load on PostgreSQL: can dothi hold a big city's sensors reporting?

    python bench/sustained.py [--sensors 100000] [--rate 17000] [--duration 300]
                              [--ramp 5000,10000,17000] [--workers 2] [--batch 100]

100,000 sensors reporting once a minute make about 1,700 attribute updates/s; the target
is ten times that. ``--sensors`` TrafficFlowObserved entities are loaded, then batches of
``--batch`` sensors, each with two attributes (intensity, averageVehicleSpeed with
observedAt), go to ``POST /entityOperations/update`` on an open-loop schedule: requests
are due at fixed times whatever the server does, so a server that falls behind shows as
latency (measured from when the request was due, and from when it was sent), not as a
politely slower client. ``--ramp`` first runs 30 s at each rate to show where it
saturates. Every attribute update also writes its history instance.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import orjson
import psycopg
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import run  # bench/ is the script's folder, first on sys.path
from backends import ADMIN, fresh_postgres

ATTRS = 2


def sensor(n: int) -> str:
    return f"urn:ngsi-ld:TrafficFlowObserved:s-{n}"


def preload(client: httpx.Client, sensors: int, progress: Progress) -> None:
    task = progress.add_task("sensors", total=sensors)
    for start in range(0, sensors, 1000):
        body = [{"id": sensor(n), "type": "TrafficFlowObserved",
                 "intensity": {"type": "Property", "value": 0},
                 "averageVehicleSpeed": {"type": "Property", "value": 0.0, "unitCode": "KMH"},
                 "location": {"type": "GeoProperty", "value": {
                     "type": "Point", "coordinates": [108.15 + (n % 400) * 0.0003,
                                                      16.0 + (n // 400) * 0.0003]}}}
                for n in range(start, min(start + 1000, sensors))]
        r = client.post("/ngsi-ld/v1/entityOperations/upsert", content=orjson.dumps(body),
                        headers={"Content-Type": "application/json"})
        assert r.status_code in (201, 204), r.text[:300]
        progress.advance(task, len(body))


def bodies(sensors: int, batch: int) -> list[bytes]:
    """One body per group of ``batch`` sensors: every sensor is in exactly one."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for start in range(0, sensors - batch + 1, batch):
        out.append(orjson.dumps([
            {"id": sensor(n), "type": "TrafficFlowObserved",
             "intensity": {"type": "Property", "value": n % 97, "observedAt": stamp},
             "averageVehicleSpeed": {"type": "Property", "value": (n % 60) + 0.5,
                                     "unitCode": "KMH", "observedAt": stamp}}
            for n in range(start, start + batch)]))
    return out


def drive(base: str, payloads: list[bytes], rate: float, duration: float, batch: int,
          senders: int, progress: Progress | None) -> dict[str, float]:
    """Send at ``rate`` attribute updates/s for ``duration`` seconds."""
    per_request = batch * ATTRS
    interval = per_request / rate
    count = int(duration / interval)
    due_lat: list[float] = []
    sent_lat: list[float] = []
    done_at: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    local = threading.local()
    task = progress.add_task(f"{rate:,.0f}/s", total=count) if progress else None
    t0 = time.perf_counter() + 0.5

    def one(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, timeout=60)
        due = t0 + i * interval
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        start = time.perf_counter()
        r = client.post("/ngsi-ld/v1/entityOperations/update",
                        content=payloads[i % len(payloads)],
                        headers={"Content-Type": "application/json"})
        end = time.perf_counter()
        with lock:
            if r.status_code != 204:
                errors.append(f"{r.status_code} {r.text[:200]}")
            due_lat.append((end - due) * 1000)
            sent_lat.append((end - start) * 1000)
            done_at.append(end - t0)
        if progress is not None and task is not None:
            progress.advance(task)

    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(one, range(count)))
    elapsed = max(done_at)
    # The worst 10-second window: a rate held on average but not throughout is not held.
    windows = [0] * (int(elapsed // 10) + 1)
    for t in done_at:
        windows[int(t // 10)] += per_request
    full = windows[:-1] or windows
    due_lat.sort()
    sent_lat.sort()
    return {
        "rate": rate, "requests": count, "achieved": count * per_request / elapsed,
        "worst10s": min(full) / 10, "errors": len(errors),
        "p50": statistics.median(sent_lat), "p95": sent_lat[int(len(sent_lat) * 0.95) - 1],
        "p99": sent_lat[int(len(sent_lat) * 0.99) - 1],
        "due_p95": due_lat[int(len(due_lat) * 0.95) - 1],
        "first_error": errors[0] if errors else "",
    }


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / 100
    return total


def postgres_pids() -> list[int]:
    with psycopg.connect(ADMIN) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=17_000)
    parser.add_argument("--duration", type=float, default=300)
    parser.add_argument("--ramp", default="", help="rates to try for 30 s each first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=16, help="client threads")
    parser.add_argument("--postgres", default=ADMIN)
    args = parser.parse_args()
    url = fresh_postgres(args.postgres, "dothi_bench_sustained")
    proc, base = run.start_server(url, args.workers)  # type: ignore[arg-type]
    rows = []
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=run.console) as progress:
            with httpx.Client(base_url=base, timeout=300) as client:
                preload(client, args.sensors, progress)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")  # what autovacuum does a minute after a bulk load
            payloads = bodies(args.sensors, args.batch)
            for rate in [float(r) for r in args.ramp.split(",") if r]:
                rows.append(("ramp 30 s", drive(base, payloads, rate, 30, args.batch,
                                                args.senders, progress)))
            pids = run.server_pids(proc.pid)
            server0, pg0, wall0 = cpu_seconds(pids), cpu_seconds(postgres_pids()), time.time()
            result = drive(base, payloads, args.rate, args.duration, args.batch, args.senders,
                           progress)
            wall = time.time() - wall0
            server_cpu = (cpu_seconds(pids) - server0) / wall
            pg_cpu = (cpu_seconds(postgres_pids()) - pg0) / wall
            rows.append((f"sustained {args.duration:.0f} s", result))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    table = Table(title=f"Sustained attribute updates on PostgreSQL ({args.sensors:,} sensors, "
                        f"{args.batch} sensors x {ATTRS} attributes per request, "
                        f"{args.workers} workers, history on)")
    for col in ("run", "target/s", "achieved/s", "worst 10 s", "errors", "p50 ms",
                "p95 ms", "p99 ms", "p95 from due ms"):
        table.add_column(col, justify="right")
    for name, r in rows:
        table.add_row(name, f"{r['rate']:,.0f}", f"{r['achieved']:,.0f}",
                      f"{r['worst10s']:,.0f}", f"{r['errors']:.0f}", f"{r['p50']:.1f}",
                      f"{r['p95']:.1f}", f"{r['p99']:.1f}", f"{r['due_p95']:.1f}")
    run.show_and_save(table, "sustained.txt")
    run.console.print(f"CPU during the sustained run: server {server_cpu:.2f} cores, "
                      f"PostgreSQL {pg_cpu:.2f} cores (of 2)")
    if rows[-1][1]["first_error"]:
        run.console.print(f"first error: {rows[-1][1]['first_error']}")


if __name__ == "__main__":
    main()
