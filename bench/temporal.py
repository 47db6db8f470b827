"""Temporal benchmark: one command, prints a table (and writes bench/results/temporal.txt).

    python bench/temporal.py [--sensors 100] [--days 30] [--queries 50]

1. ``--sensors`` AirQualityObserved entities spread over Đà Nẵng, then ``--days`` days of
   1-minute pm25 readings for each, sent as temporal entities (one sensor-day, 1,440
   instances, per request) to a real ``dothi serve``: instances/s.
2. Hourly avg,min,max of one sensor over the whole period (p50/p95 over ``--queries``).
3. Hourly avg,min,max over one day for all sensors of the type inside a district polygon.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import run  # bench/ is the script's folder, first on sys.path

console = Console()
START = datetime(2026, 10, 1, tzinfo=timezone.utc)
TEMPORAL = "/ngsi-ld/v1/temporal/entities"


def sensor_id(n: int) -> str:
    return f"urn:ngsi-ld:AirQualityObserved:bench-{n}"


def create_sensors(client: httpx.Client, count: int) -> None:
    rnd = random.Random(3)
    # Around the district polygon, so that the district query has sensors to aggregate.
    ring = run.datagen.DISTRICT_POLYGON["coordinates"][0]
    lon0, lon1 = min(p[0] for p in ring), max(p[0] for p in ring)
    lat0, lat1 = min(p[1] for p in ring), max(p[1] for p in ring)
    body = [{"id": sensor_id(n), "type": "AirQualityObserved",
             "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [
                 round(lon0 + rnd.random() * (lon1 - lon0), 6),
                 round(lat0 + rnd.random() * (lat1 - lat0), 6)]}}}
            for n in range(count)]
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"})
    assert r.status_code in (201, 204), r.text


def day_body(n: int, day: int, rnd: random.Random) -> bytes:
    base = START + timedelta(days=day)
    readings = [{"type": "Property", "value": round(20 + rnd.random() * 30, 1),
                 "observedAt": (base + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")}
                for m in range(1440)]
    return orjson.dumps({"id": sensor_id(n), "type": "AirQualityObserved", "pm25": readings})


def load(client: httpx.Client, sensors: int, days: int, progress: Progress) -> float:
    from concurrent.futures import ThreadPoolExecutor

    task = progress.add_task("readings", total=sensors * days * 1440)
    rnd = random.Random(5)
    elapsed = 0.0
    for day in range(days):
        bodies = [day_body(n, day, rnd) for n in range(sensors)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            for _ in pool.map(lambda b: _post(client, b), bodies):
                progress.advance(task, 1440)
        elapsed += time.perf_counter() - t0
    return sensors * days * 1440 / elapsed


def _post(client: httpx.Client, body: bytes) -> None:
    r = client.post(TEMPORAL, content=body, headers={"Content-Type": "application/json"})
    if r.status_code not in (201, 204):
        raise SystemExit(f"temporal write failed: {r.status_code} {r.text[:300]}")


def timed(client: httpx.Client, path: str, params_for, n: int) -> tuple[float, float, int]:  # noqa: ANN001
    times, sizes = [], []
    for i in range(n + 5):
        t0 = time.perf_counter()
        r = client.get(path(i), params=params_for(i))
        dt = (time.perf_counter() - t0) * 1000
        assert r.status_code == 200, r.text[:300]
        if i >= 5:
            times.append(dt)
            sizes.append(len(r.content))
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], int(statistics.mean(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    end = START + timedelta(days=args.days)
    polygon = json.dumps(run.datagen.DISTRICT_POLYGON["coordinates"])
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = run.start_server(Path(tmp) / "temporal.db", args.workers)
        try:
            with httpx.Client(base_url=base, timeout=300) as client, Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=console,
            ) as progress:
                create_sensors(client, args.sensors)
                rate = load(client, args.sensors, args.days, progress)
            with httpx.Client(base_url=base, timeout=300) as client:
                rnd = random.Random(9)
                one = timed(client, lambda i: f"{TEMPORAL}/{sensor_id(rnd.randrange(args.sensors))}",
                            lambda i: {"attrs": "pm25", "format": "aggregatedValues",
                                       "aggrMethods": "avg,min,max", "aggrPeriodDuration": "PT1H",
                                       "timerel": "between", "timeAt": START.isoformat(),
                                       "endTimeAt": end.isoformat()}, args.queries)

                def district_params(i: int) -> dict[str, str]:
                    day = START + timedelta(days=i % args.days)
                    return {"type": "AirQualityObserved", "attrs": "pm25",
                            "georel": "within", "geometry": "Polygon", "coordinates": polygon,
                            "format": "aggregatedValues", "aggrMethods": "avg,min,max",
                            "aggrPeriodDuration": "PT1H", "timerel": "between",
                            "timeAt": day.isoformat(),
                            "endTimeAt": (day + timedelta(days=1)).isoformat(), "limit": "1000"}

                district = timed(client, lambda i: TEMPORAL, district_params, args.queries)
                found = len(client.get(TEMPORAL, params=district_params(0)).json())
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    total = args.sensors * args.days * 1440
    table = Table(title=f"dothi temporal benchmark ({args.sensors} sensors x {args.days} days "
                        f"x 1-minute = {total:,} instances, {args.workers} workers)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("insert over HTTP (instances/s)", f"{rate:,.0f}", "")
    table.add_row(f"one sensor, hourly avg,min,max over {args.days} days, p50 / p95 ms",
                  f"{one[0]:.1f} / {one[1]:.1f}", "p95 < 200")
    table.add_row(f"{found} sensors in a district, hourly avg,min,max over one day, "
                  "p50 / p95 ms", f"{district[0]:.1f} / {district[1]:.1f}", "")
    run.show_and_save(table, "temporal.txt")


if __name__ == "__main__":
    main()
