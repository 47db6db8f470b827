"""The operations centre under a city's load: the dashboard's live feed and VN_AQI.

    python bench/ioc.py [--sensors 264,5000] [--events 30] [--stations 30]

For each size, a real ``dothi serve`` (SQLite, history on) holds that many sensors (flood
gauges, air-quality stations, traffic counters, street lights and bins in the demo city's
proportions, each fed by a ``Device``) and a second ``dothi serve`` shares its database.
Measured:

- the dashboard snapshot a process rebuilds (``GET /ioc/map/sensors``: every sensor with
  its state, the incidents, the tiles), against the baseline of the same run: listing the
  same entities through the NGSI-LD API (``GET /ngsi-ld/v1/entities?type=...``, keyValues);
- the size of the first live event (everything) a dashboard receives;
- live latency: an incident opened through the *other* process (and then through the same
  one), until the event that brings it arrives on the feed (``/ioc/stream``) of the first:
  what an operator waits;
- VN_AQI: ``--stations`` stations with 12 hours of one-minute PM2.5, PM10, NO2, O3 and CO
  readings; the time of one full recomputation, per station, against reading the same
  history through the temporal API (hourly averages).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Queue
from typing import Any

import httpx
import orjson
import run  # bench/ is the script's folder, first on sys.path
from rich.table import Table

MIX = {"Streetlight": 0.55, "WasteContainer": 0.2, "TrafficFlowObserved": 0.1,
       "AirQualityObserved": 0.05, "FloodMonitoring": 0.1}


def sensors(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out: list[dict[str, Any]] = []
    for etype, share in MIX.items():
        for k in range(max(1, round(n * share))):
            eid = f"urn:ngsi-ld:{etype}:b{k:06d}"
            value = {"FloodMonitoring": ("currentLevel", 0.1), "Streetlight": ("powerState", "on"),
                     "WasteContainer": ("fillingLevel", 0.4),
                     "TrafficFlowObserved": ("averageVehicleSpeed", 32.0),
                     "AirQualityObserved": ("airQualityIndex", 60)}[etype]
            out.append({"id": eid, "type": etype,
                        "name": {"type": "Property", "value": f"{etype} {k}"},
                        value[0]: {"type": "Property", "value": value[1], "observedAt": now},
                        "location": {"type": "GeoProperty", "value": {
                            "type": "Point", "coordinates": [108.15 + (k % 100) / 1000,
                                                             16.0 + (k // 100) / 1000]}}})
            out.append({"id": f"urn:ngsi-ld:Device:b-{etype}-{k:06d}", "type": "Device",
                        "deviceState": {"type": "Property", "value": "online"},
                        "controlledAsset": {"type": "Property", "value": [eid]}})
    return out[:2 * n]


def load(client: httpx.Client, entities: list[dict[str, Any]]) -> None:
    for i in range(0, len(entities), 1000):
        r = client.post("/ngsi-ld/v1/entityOperations/upsert", json=entities[i:i + 1000])
        assert r.status_code in (201, 204), r.text


def timed(fn: Any, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def listing(client: httpx.Client) -> None:
    for etype in MIX:
        offset = 0
        while True:
            r = client.get("/ngsi-ld/v1/entities", params={
                "type": etype, "limit": 1000, "offset": offset, "options": "keyValues"})
            offset += 1000
            if len(r.json()) < 1000:
                break


def live_latency(url: str, other: str, events: int) -> tuple[float, float, int]:
    """Open ``events`` incidents through ``other``; time each until ``url``'s feed has it."""
    arrived: Queue[tuple[str, float]] = Queue()
    first_size = [0]

    def follow() -> None:
        with httpx.Client(timeout=None) as http, \
                http.stream("GET", f"{url}/ioc/stream") as response:
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "sensors" and not first_size[0]:
                    first_size[0] = len(line)
                elif line.startswith("data: ") and kind == "incidents":
                    for item in orjson.loads(line[6:])["changed"]:
                        arrived.put((item["id"], time.perf_counter()))

    threading.Thread(target=follow, daemon=True).start()
    latencies = []
    with httpx.Client(base_url=other, timeout=30) as http:
        while not first_size[0]:
            time.sleep(0.05)  # the feed's first events: the bench waits, no test does
        while not arrived.empty():
            arrived.get()
        for k in range(events):
            sent = time.perf_counter()
            r = http.post("/ioc/incidents", json={
                "title": f"bench {k}", "category": "other", "severity": "low"})
            eid = r.json()["id"]
            while True:
                got, at = arrived.get(timeout=30)
                if got == eid:
                    latencies.append((at - sent) * 1000)
                    break
    latencies.sort()
    return (statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))],
            first_size[0])


def aqi_history(client: httpx.Client, stations: int) -> list[str]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    ids = []
    for s in range(stations):
        eid = f"urn:ngsi-ld:AirQualityObserved:aq{s:03d}"
        ids.append(eid)

        def reading(minute: int, base: float, unit: str = "GQ") -> dict[str, Any]:
            t = (now - timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
            return {"type": "Property", "value": round(base + (minute % 60) / 10, 2),
                    "unitCode": unit, "observedAt": t}

        params = {"pm25": 30.0, "pm10": 55.0, "no2": 40.0, "o3": 60.0}
        entity: dict[str, Any] = {"id": eid, "type": "AirQualityObserved",
                                  **{p: reading(0, b) for p, b in params.items()},
                                  "co": reading(0, 0.8, "GP")}
        client.post("/ngsi-ld/v1/entities", json=entity)
        history = {p: [reading(m, b) for m in range(1, 720)] for p, b in params.items()}
        history["co"] = [reading(m, 0.8, "GP") for m in range(1, 720)]
        r = client.post(f"/ngsi-ld/v1/temporal/entities/{eid}/attrs", json=history)
        assert r.status_code == 204, r.text
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", default="264,5000")
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--stations", type=int, default=30)
    args = parser.parse_args()
    table = Table(title="Operations centre: live dashboard and VN_AQI (SQLite, 2 processes)")
    for column in ("sensors", "measure", "dothi", "baseline (same run)", "note"):
        table.add_column(column, justify="right" if column != "note" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sensors.split(",")]:
            db = Path(tmp) / f"ioc-{size}.db"
            proc, url = run.start_server(db, 1)
            other_proc, other = run.start_server(db, 1)
            try:
                with httpx.Client(base_url=url, timeout=120) as client:
                    load(client, sensors(size))
                    snap = timed(lambda: client.get("/ioc/map/sensors").raise_for_status(), 5)
                    base = timed(lambda: listing(client), 5)
                    table.add_row(str(size), "dashboard snapshot, ms (p50 / max of 5)",
                                  f"{snap[0]:.0f} / {snap[1]:.0f}",
                                  f"{base[0]:.0f} / {base[1]:.0f}",
                                  "baseline: the same entities listed by NGSI-LD, keyValues")
                    p50, p95, first = live_latency(url, other, args.events)
                    table.add_row(str(size), "first live event, KB", f"{first / 1024:.0f}", "",
                                  "every sensor with its state")
                    table.add_row(str(size), "incident opened elsewhere -> on the feed, ms",
                                  f"{p50:.0f} p50 / {p95:.0f} p95", "",
                                  f"{args.events} incidents through the other process, "
                                  "each right after an event: the worst case of the 2 s poll")
                    p50, p95, _ = live_latency(url, url, args.events)
                    table.add_row(str(size), "incident opened here -> on the feed, ms",
                                  f"{p50:.0f} p50 / {p95:.0f} p95", "",
                                  "through the process serving the feed (its write wakes it)")
                    if size == max(int(s) for s in args.sensors.split(",")):
                        ids = aqi_history(client, args.stations)
                        keeper = timed(lambda: client.get("/ioc/aqi").raise_for_status(), 3)
                        start = (datetime.now(UTC) - timedelta(hours=12)).isoformat()
                        hourly = timed(lambda: [client.get(
                            f"/ngsi-ld/v1/temporal/entities/{i}", params={
                                "timerel": "after", "timeAt": start.replace("+00:00", "Z"),
                                "aggrMethods": "avg", "aggrPeriodDuration": "PT1H",
                                "options": "aggregatedValues"}).raise_for_status()
                            for i in ids], 3)
                        table.add_row(
                            str(args.stations), "VN_AQI of every station, ms (p50 / max)",
                            f"{keeper[0]:.0f} / {keeper[1]:.0f}",
                            f"{hourly[0]:.0f} / {hourly[1]:.0f}",
                            "12 h of 1-min readings, 5 parameters; baseline: the same "
                            "hourly means through the temporal API")
            finally:
                for p in (proc, other_proc):
                    p.terminate()
                    p.wait(timeout=30)
    run.show_and_save(table, "ioc.txt")


if __name__ == "__main__":
    main()
