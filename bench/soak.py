"""Soak: an hour of mixed load on one ``dothi serve``, its memory watched, then everything
counted. One command, one table (also bench/results/soak.txt and soak.csv).

    python bench/soak.py [--minutes 60] [--backend sqlite|postgresql] [--workers 1]

Load, on fixed schedules, from several client threads:

- sensor readings: ``--rate`` FloodMonitoring updates/s in batches of 10 through
  ``POST /entityOperations/update``, each reading with a sequence number (``seq``);
- new entities: ``--creates`` Streetlights/s through ``POST /entities``;
- queries: ``--queries``/s, by type with q, near a point, by id, and the temporal API;
- citizens' reports: ``--reports``/s through Open311 (form posts, with an app's key);
- subscriptions: ``--subscriptions`` watch every sensor's reading and notify a receiver
  in its own process; every 30 s one more is made and deleted again.

Every ``--sample`` seconds the resident memory of the server's processes is read. At the
end, after the outbox has drained, it checks that nothing was lost: each sensor holds its
last reading, each subscription was notified of every reading exactly once, every
Streetlight and every report is there, no answer was a 5xx, and the audit log's chain
verifies. Memory is flat when the last tenth of the run averages within 10 % (or 20 MB)
of the tenth after the first five minutes.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import notifications  # bench/ is the script's folder, first on sys.path
import orjson
import run
from backends import ADMIN, fresh_postgres
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
console = Console(width=120)
JSON = {"Content-Type": "application/json"}
SENSORS = 200
APP_KEY = "soak-app"


def rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
    return total


class Tally:
    """What the clients did, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: Counter[str] = Counter()  # "what status", e.g. "update 204"
        self.last_seq: dict[int, int] = {}  # sensor -> last seq written
        self.seqs = 0  # readings written (seq 1..seqs)
        self.created = 0
        self.reports: set[str] = set()
        self.failures: list[str] = []

    def saw(self, what: str, response: httpx.Response) -> None:
        with self.lock:
            self.status[f"{what} {response.status_code}"] += 1
            if response.status_code >= 500 and len(self.failures) < 20:
                self.failures.append(f"{what}: {response.status_code} {response.text[:200]}")


def paced(rate: float, until: float, step: Callable[[int], None]) -> None:
    """Call ``step(n)`` ``rate`` times a second until ``until`` (a monotonic time), on a
    fixed schedule: a slow step delays the next ones, it does not drop them."""
    began = time.monotonic()
    n = 0
    while True:
        due = began + n / rate
        if due >= until:
            return
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        step(n)
        n += 1


def load(base: str, args: argparse.Namespace, tally: Tally, receiver: str) -> None:
    until = time.monotonic() + args.minutes * 60
    rng = random.Random(20261126)
    lock = threading.Lock()

    def readings(_n: int) -> None:
        with lock:
            batch = []
            for _ in range(10):
                tally.seqs += 1
                sensor = rng.randrange(SENSORS)
                tally.last_seq[sensor] = tally.seqs
                batch.append({"id": notifications.sensor_id(sensor),
                              "type": notifications.TYPE,
                              notifications.ATTR: {
                                  "type": "Property", "value": round(rng.random() * 3, 3),
                                  "seq": {"type": "Property", "value": tally.seqs}}})
            # Sent under the lock: the store sees the readings in seq order, so each
            # sensor's last reading is the one with its highest seq.
            r = client.post("/ngsi-ld/v1/entityOperations/update", content=orjson.dumps(batch),
                            headers=JSON)
        tally.saw("update", r)

    def creates(n: int) -> None:
        r = client.post("/ngsi-ld/v1/entities", headers=JSON, content=orjson.dumps({
            "id": f"urn:ngsi-ld:Streetlight:soak-{n}", "type": "Streetlight",
            "powerState": {"type": "Property", "value": "on"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [
                108.20 + (n % 100) * 1e-4, 16.05 + (n // 100 % 100) * 1e-4]}}}))
        tally.saw("create", r)
        if r.status_code == 201:
            with tally.lock:
                tally.created += 1

    def queries(n: int) -> None:
        kind = n % 4
        if kind == 0:
            r = client.get("/ngsi-ld/v1/entities", params={
                "type": notifications.TYPE, "q": f"{notifications.ATTR}>2.5", "limit": 50})
        elif kind == 1:
            r = client.get("/ngsi-ld/v1/entities", params={
                "type": "Streetlight", "georel": "near;maxDistance==300", "geometry": "Point",
                "coordinates": "[108.205,16.055]", "limit": 50})
        elif kind == 2:
            r = client.get(f"/ngsi-ld/v1/entities/{notifications.sensor_id(n % SENSORS)}")
        else:
            r = client.get(f"/ngsi-ld/v1/temporal/entities/"
                           f"{notifications.sensor_id(n % SENSORS)}",
                           params={"lastN": 10, "attrs": notifications.ATTR})
        tally.saw("query", r)

    def reports(n: int) -> None:
        r = client.post("/open311/v2/requests.json", data={
            "api_key": APP_KEY, "service_code": "flooding", "attribute[depth]": "knee",
            "lat": f"{16.0598 + rng.random() * 1e-3:.6f}",
            "long": f"{108.2145 + rng.random() * 1e-3:.6f}",
            "description": f"Ngập đường, báo cáo thử số {n}"})
        tally.saw("report", r)
        if r.status_code == 201:
            with tally.lock:
                tally.reports.add(r.json()[0]["service_request_id"])

    def churn(n: int) -> None:
        r = client.post("/ngsi-ld/v1/subscriptions", headers=JSON, content=orjson.dumps({
            "type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {"uri": receiver + "/churn"}}}))
        tally.saw("subscription", r)
        if r.status_code == 201:
            r = client.delete(r.headers["location"])
            tally.saw("subscription", r)

    client = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=20))
    threads = [threading.Thread(target=paced, args=(rate, until, step)) for rate, step in (
        (args.rate / 10, readings), (args.creates, creates), (args.queries / 2, queries),
        (args.queries / 2, queries), (args.reports, reports), (1 / 30, churn)) if rate > 0]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()


def setup(client: httpx.Client, receiver: str, subscriptions: int) -> None:
    """The demo city's wards (reports are placed in them), the sensors, and the
    subscriptions that watch every reading."""
    from dothi.demo import build_demo_city

    areas = [e for e in build_demo_city() if e["type"] == "AdministrativeArea"]
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", content=orjson.dumps(areas),
                    headers={"Content-Type": "application/ld+json"})
    assert r.status_code in (201, 204), r.text[:300]
    sensors = [{"id": notifications.sensor_id(n), "type": notifications.TYPE,
                notifications.ATTR: {"type": "Property", "value": 0.0,
                                     "seq": {"type": "Property", "value": 0}},
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [
                    108.15 + (n % 20) * 0.005, 16.0 + (n // 20) * 0.005]}}}
               for n in range(SENSORS)]
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", content=orjson.dumps(sensors),
                    headers=JSON)
    assert r.status_code in (201, 204), r.text[:300]
    for k in range(subscriptions):
        r = client.post("/ngsi-ld/v1/subscriptions", headers=JSON, content=orjson.dumps({
            "id": f"urn:ngsi-ld:Subscription:soak-{k}", "type": "Subscription",
            "entities": [{"type": notifications.TYPE}],
            "watchedAttributes": [notifications.ATTR],
            "notification": {"endpoint": {"uri": f"{receiver}/soak-{k}"}}}))
        assert r.status_code == 201, r.text[:300]


def sample(pid: int, every: float, stop: threading.Event,
           out: list[tuple[float, float]]) -> None:
    began = time.monotonic()
    while True:
        out.append((time.monotonic() - began, rss_mb(run.server_pids(pid))))
        if stop.wait(every):
            return


def drained(db: str) -> bool:
    """The server's outbox is empty."""
    if db.startswith("sqlite:"):
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            return conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0
    import psycopg

    with psycopg.connect(db) as conn:
        row = conn.execute("SELECT count(*) FROM notifications").fetchone()
        return row is not None and row[0] == 0


def check(base: str, db: str, receiver: str, tally: Tally,
          subscriptions: int) -> list[tuple[str, str, bool]]:
    """(what, found, as it should be) for every count the run can be held to."""
    out = []
    deadline = time.monotonic() + 300
    while not drained(db) and time.monotonic() < deadline:
        time.sleep(1)
    with httpx.Client(base_url=base, timeout=120) as client:
        def count(etype: str) -> int:
            r = client.get("/ngsi-ld/v1/entities", params={"type": etype, "count": "true",
                                                            "limit": 0})
            return int(r.headers["NGSILD-Results-Count"])

        lights = count("Streetlight")
        out.append(("Streetlights", f"{lights:,} of {tally.created:,}", lights == tally.created))
        reports = count("ServiceRequest")
        out.append(("citizens' reports", f"{reports:,} of {len(tally.reports):,}",
                     reports == len(tally.reports)))
        stale = 0
        for sensor, seq in tally.last_seq.items():
            r = client.get(f"/ngsi-ld/v1/entities/{notifications.sensor_id(sensor)}")
            held = r.json()[notifications.ATTR]["seq"]["value"] if r.status_code == 200 else 0
            stale += held != seq
        out.append(("sensors holding their last reading",
                    f"{len(tally.last_seq) - stale} of {len(tally.last_seq)}", stale == 0))
    posts = orjson.loads(httpx.get(f"{receiver}/-/posts", timeout=300).content)
    got: dict[str, Counter[int]] = {}
    for sid, _arrival, seqs in posts:
        got.setdefault(sid, Counter()).update(s for s in seqs if s > 0)
    expected = set(range(1, tally.seqs + 1))
    for k in range(subscriptions):
        seen = got.get(f"urn:ngsi-ld:Subscription:soak-{k}", Counter())
        missing = len(expected - set(seen))
        twice = sum(1 for n in seen.values() if n > 1)
        out.append((f"subscription soak-{k}: readings notified",
                    f"{len(seen):,} of {len(expected):,}, {twice} twice",
                    missing == 0 and twice == 0))
    errors = sum(n for what, n in tally.status.items() if int(what.rsplit(" ", 1)[1]) >= 500)
    out.append(("answers 5xx", str(errors), errors == 0))
    return out


def audit_verified(db: str) -> tuple[str, str, bool]:
    from dothi.store import audit
    from dothi.store.base import open_store

    store = open_store(db)
    try:
        result = audit.verify(audit.stored(store))
    finally:
        store.close()
    return ("audit log chain", f"{result.rows:,} rows, {'intact' if result.ok else 'BROKEN'}",
            result.ok)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200, help="readings/s")
    parser.add_argument("--creates", type=float, default=5, help="new entities/s")
    parser.add_argument("--queries", type=float, default=20, help="queries/s")
    parser.add_argument("--reports", type=float, default=1, help="citizens' reports/s")
    parser.add_argument("--subscriptions", type=int, default=3)
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples")
    args = parser.parse_args()
    os.environ.update({"DOTHI_OPEN311_API_KEYS": APP_KEY,
                       "DOTHI_CITIZEN_HOURLY_LIMIT": "10000000"})
    tally = Tally()
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = (fresh_postgres(ADMIN, "dothi_soak") if args.backend == "postgresql"
              else f"sqlite:///{Path(tmp) / 'soak.db'}")
        receiver_proc, receiver = notifications.start_receiver()
        proc, base = run.start_server(db, args.workers)  # type: ignore[arg-type]
        stop = threading.Event()
        try:
            with httpx.Client(base_url=base, timeout=120) as client:
                setup(client, receiver, args.subscriptions)
            sampler = threading.Thread(target=sample, args=(proc.pid, args.sample, stop,
                                                            samples))
            sampler.start()
            console.print(f"Soaking for {args.minutes:g} minutes on {args.backend}...")
            load(base, args, tally, receiver)
            stop.set()
            sampler.join()
            checks = check(base, db, receiver, tally, args.subscriptions)
        finally:
            stop.set()
            proc.terminate()
            proc.wait(30)
            receiver_proc.kill()
        checks.append(audit_verified(db))
    report(args, tally, samples, checks)


def report(args: argparse.Namespace, tally: Tally, samples: list[tuple[float, float]],
           checks: list[tuple[str, str, bool]]) -> None:
    warm = [mb for t, mb in samples if t >= min(300, args.minutes * 60 / 4)]
    tenth = max(1, len(warm) // 10)
    early, late = warm[:tenth], warm[-tenth:]
    early_mb, late_mb = sum(early) / len(early), sum(late) / len(late)
    flat = late_mb <= early_mb + max(20, early_mb * 0.10)
    checks.append(("memory flat", f"{early_mb:.0f} MB after warm-up, {late_mb:.0f} MB at "
                   "the end", flat))
    table = Table(title=f"Soak: {args.minutes:g} min on {args.backend}, {args.workers} "
                        f"worker(s), {args.rate:g} readings/s, {args.creates:g} creates/s, "
                        f"{args.queries:g} queries/s, {args.reports:g} reports/s")
    table.add_column("check")
    table.add_column("found", justify="right")
    table.add_column("")
    for what, found, ok in checks:
        table.add_row(what, found, "[green]ok" if ok else "[red]FAILED")
    memory = Table(title="Resident memory of the server (MB)")
    memory.add_column("minute", justify="right")
    memory.add_column("MB", justify="right")
    memory.add_column("")
    top = max(mb for _, mb in samples)
    low = min(mb for _, mb in samples) * 0.9  # bars from 90 % of the least, to show change
    step = max(1, len(samples) // 12)
    for t, mb in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        memory.add_row(f"{t / 60:.1f}", f"{mb:.0f}", "█" * round(40 * (mb - low) / (top - low)))
    requests = Table(title="Answers")
    requests.add_column("request and status")
    requests.add_column("count", justify="right")
    for what, n in sorted(tally.status.items()):
        requests.add_row(what, f"{n:,}")
    (HERE / "results").mkdir(exist_ok=True)
    with (HERE / "results" / "soak.txt").open("w") as f:
        for out in (console, Console(file=f, width=120)):
            out.print(table, memory, requests)
            for failure in tally.failures:
                out.print(failure, markup=False)
    with (HERE / "results" / "soak.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seconds", "rss_mb"])
        writer.writerows((f"{t:.1f}", f"{mb:.1f}") for t, mb in samples)
    if not all(ok for _, _, ok in checks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
