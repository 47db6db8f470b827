"""Notification benchmark: one command, prints a table (and writes
bench/results/notifications.txt).

    python bench/notifications.py [--subscriptions 1000] [--rate 2000] [--seconds 30]
                                  [--workers 2]

A real ``dothi serve`` and a real notification receiver (a raw asyncio HTTP server in its
own process), both on 127.0.0.1. ``--sensors`` FloodMonitoring entities spread over Đà
Nẵng, then:

1. Baseline: ``--rate`` currentLevel updates/s for ``--seconds`` through
   ``POST /entityOperations/update`` (``--batch`` entities per request, ``--clients``
   threads, paced to a fixed schedule) with no subscriptions.
2. ``--subscriptions`` subscriptions: 94% watch one sensor each, 5% a type with a q alert
   threshold, 1% a type inside a district-sized box (geoQ within); all at the receiver.
3. The same updates again. Each reading carries a sequence number (a ``seq``
   sub-property), so the receiver knows which update every notified entity stands for;
   which (subscription, update) pairs must arrive is computed here from the subscription
   definitions. Latency is the receiver's arrival time minus the time the client started
   sending the update request, and minus the time its answer came (one machine, one
   clock). Delivery has drained when the server's outbox is empty.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import multiprocessing
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import orjson
from rich.table import Table

import run  # bench/ is the script's folder, first on sys.path

TYPE = "FloodMonitoring"
ATTR = "currentLevel"
JSON_HEADERS = {"Content-Type": "application/json"}
# Readings above this are rare (5%); the q subscriptions' alert thresholds lie above it.
ALERT_FROM, ALERT_TO = 1.9, 3.2
# Side of a geoQ box in degrees (about 3 km): each holds about 2% of the city's sensors.
BOX = 0.028


def sensor_id(n: int) -> str:
    return f"urn:ngsi-ld:{TYPE}:bench-{n}"


# -- the receiver ------------------------------------------------------------------------


class _Inbox:
    """What the receiver got: per POST, (subscription id, arrival time, seq of each entity)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, float, list[int]]] = []

    def add(self, body: bytes, arrival: float) -> None:
        note = orjson.loads(body)
        # -1 marks an entity that carries no sequence number: counted as unexpected.
        seqs = [e.get(ATTR, {}).get("seq", {}).get("value", -1) for e in note["data"]]
        self.posts.append((note["subscriptionId"], arrival, seqs))


class _Http(asyncio.Protocol):
    """Just enough HTTP/1.1 for the notifier (keep-alive, Content-Length bodies): a
    protocol callback per read, no framework, so that the receiver is never the
    bottleneck. A request's arrival time is when the read that completed it began.
    ``GET /-/posts`` answers what was received."""

    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrival = time.time()
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return  # the rest of the body is still on its way
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            self._answer(head[0].split(" ")[:2], body, arrival)

    def _answer(self, request: list[str], body: bytes, arrival: float) -> None:
        assert self.transport is not None
        if request == ["GET", "/-/posts"]:
            out = orjson.dumps(self.inbox.posts)
        else:
            self.inbox.add(body, arrival)
            out = b""
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(out), out))


def _receiver_main(port_out: Connection) -> None:
    async def serve() -> None:
        inbox = _Inbox()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Http(inbox), "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(serve())


def start_receiver() -> tuple[multiprocessing.process.BaseProcess, str]:
    """The receiver in its own process, so that it has its own interpreter lock."""
    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_receiver_main, args=(theirs,),
                                                       daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{ours.recv()}"


# -- the plan: sensors, subscriptions, updates and what each update must notify -----------


@dataclass
class Plan:
    sensors: list[tuple[float, float]]
    subscriptions: list[dict]
    # Per sensor, the subscriptions that select it whatever its reading (by id or geoQ).
    static: list[list[int]]
    # The q subscriptions in order of threshold, and the thresholds: a reading notifies
    # the first bisect(thresholds, level) of them.
    by_threshold: list[int]
    thresholds: list[float]
    kinds: dict[str, int]  # how many subscriptions of each kind

    def matching(self, sensor: int, level: float) -> list[int]:
        return self.static[sensor] + self.by_threshold[:bisect.bisect_left(self.thresholds,
                                                                           level)]


def make_plan(sensors: int, count: int, receiver: str) -> Plan:
    rnd = random.Random(11)
    lon0, lat0, lon1, lat1 = run.datagen.BBOX
    points = [(round(rnd.uniform(lon0, lon1), 6), round(rnd.uniform(lat0, lat1), 6))
              for _ in range(sensors)]
    n_geo = max(1, count // 100)
    n_q = max(1, count // 20)
    n_id = count - n_geo - n_q
    if n_id > sensors:
        raise SystemExit(f"--sensors must be at least {n_id} (one per sensor subscription)")
    endpoint = {"uri": f"{receiver}/notify", "accept": "application/json"}
    common = {"type": "Subscription", "watchedAttributes": [ATTR],
              "notification": {"attributes": [ATTR], "endpoint": endpoint}}
    subs: list[dict] = []
    static: list[list[int]] = [[] for _ in range(sensors)]
    for n in range(n_id):
        static[n].append(len(subs))
        subs.append({**common, "id": f"urn:ngsi-ld:Subscription:bench-sensor-{n}",
                     "entities": [{"id": sensor_id(n), "type": TYPE}]})
    # Thresholds end in 5 at the third decimal; readings have two: no reading equals one.
    thresholds = sorted(round(ALERT_FROM + (ALERT_TO - ALERT_FROM) * k / n_q, 2) + 0.005
                        for k in range(n_q))
    by_threshold = []
    for n, threshold in enumerate(thresholds):
        by_threshold.append(len(subs))
        subs.append({**common, "id": f"urn:ngsi-ld:Subscription:bench-alert-{n}",
                     "entities": [{"type": TYPE}], "q": f"{ATTR}>{threshold:.3f}"})
    for n in range(n_geo):
        x, y = rnd.uniform(lon0, lon1 - BOX), rnd.uniform(lat0, lat1 - BOX)
        ring = [[x, y], [x + BOX, y], [x + BOX, y + BOX], [x, y + BOX], [x, y]]
        for s, (lon, lat) in enumerate(points):
            if x < lon < x + BOX and y < lat < y + BOX:
                static[s].append(len(subs))
        subs.append({**common, "id": f"urn:ngsi-ld:Subscription:bench-area-{n}",
                     "entities": [{"type": TYPE}],
                     "geoQ": {"georel": "within", "geometry": "Polygon",
                              "coordinates": [ring]}})
    return Plan(points, subs, static, by_threshold, thresholds,
                {"one sensor by id": n_id, "type + q threshold": n_q, "type + geoQ within": n_geo})


def reading(seq: int) -> float:
    """The level of update ``seq``: mostly normal, 5% above ALERT_FROM (deterministic)."""
    rnd = random.Random(seq)
    if rnd.random() < 0.05:
        return round(rnd.uniform(ALERT_FROM, ALERT_TO), 2)
    return round(rnd.uniform(0.3, ALERT_FROM), 2)


def update_bodies(first_seq: int, total: int, batch: int, sensors: int) -> list[bytes]:
    """Request bodies for updates first_seq..first_seq+total; update ``seq`` goes to sensor
    ``seq % sensors``, so a batch never names a sensor twice."""
    bodies = []
    for start in range(first_seq, first_seq + total, batch):
        bodies.append(orjson.dumps([
            {"id": sensor_id(seq % sensors), "type": TYPE,
             ATTR: {"type": "Property", "value": reading(seq), "unitCode": "MTR",
                    "seq": {"type": "Property", "value": seq}}}
            for seq in range(start, min(start + batch, first_seq + total))]))
    return bodies


# -- driving the updates -----------------------------------------------------------------


@dataclass
class Drive:
    sent: list[float]  # per request: when the client started sending it (time.time())
    done: list[float]
    rate: float  # updates/s achieved
    cpu: float  # server CPU seconds per wall second (cores busy)


def drive(client: httpx.Client, bodies: list[bytes], updates: int, batch: int, rate: float,
          clients: int, server_pid: int) -> Drive:
    """Send ``bodies`` on a fixed schedule (request k is due at k * batch / rate seconds),
    from ``clients`` threads; a request that falls behind schedule goes at once."""
    sent = [0.0] * len(bodies)
    done = [0.0] * len(bodies)
    order = itertools.count()  # next() on a count is atomic under the interpreter lock
    interval = batch / rate
    cpu0 = server_cpu_s(server_pid)
    t0 = time.time() + 0.05

    def worker() -> None:
        while (k := next(order)) < len(bodies):
            wait = t0 + k * interval - time.time()
            if wait > 0:
                time.sleep(wait)
            sent[k] = time.time()
            try:
                r = client.post("/ngsi-ld/v1/entityOperations/update", content=bodies[k],
                                headers=JSON_HEADERS)
            except httpx.HTTPError as exc:
                raise SystemExit(f"update failed: {exc!r}\nserver said: "
                                 f"{''.join(run.SERVER_LOG[-20:])}") from None
            done[k] = time.time()
            if r.status_code != 204:
                raise SystemExit(f"update failed: {r.status_code} {r.text[:300]}")

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    wall = max(done) - t0
    return Drive(sent, done, updates / wall, (server_cpu_s(server_pid) - cpu0) / wall)


def server_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the server and its workers so far."""
    return sum(cpu_s(p) for p in run.server_pids(pid))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- after the run -----------------------------------------------------------------------


def wait_until(done: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while not done():
        if time.time() > deadline:
            return False
        time.sleep(poll)
    return True


def outbox_rows(db: Path) -> int:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM notifications").fetchone()[0])


def delivery_counters(db: Path) -> tuple[int, int]:
    """(times sent, times failed) over all subscriptions, as the server counted them."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        sent, failed = conn.execute(
            "SELECT sum(times_sent), sum(times_failed) FROM subscriptions").fetchone()
    return int(sent or 0), int(failed or 0)


def ms(values: list[float]) -> str:
    """p50 / p95 / p99 / max of sorted seconds, in milliseconds."""
    marks = [values[min(len(values) - 1, int(len(values) * p))] for p in (0.5, 0.95, 0.99)]
    return " / ".join(f"{v * 1000:,.0f}" for v in [*marks, values[-1]])


@dataclass
class Outcome:
    baseline: Drive
    loaded: Drive
    posts: list[tuple[str, float, list[int]]]  # what the receiver got
    drain_s: float | None  # None: the outbox did not empty in time
    receiver_cpu: float  # cores, while updates ran and notifications drained
    sent: int  # notifications the server counted as sent / failed
    failed: int
    rss_mb: float


def run_phases(args: argparse.Namespace, plan: Plan, receiver_pid: int, receiver_url: str,
               total: int) -> Outcome:
    baseline_bodies = update_bodies(0, total, args.batch, args.sensors)
    bodies = update_bodies(total, total, args.batch, args.sensors)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "notifications.db"
        proc, base = run.start_server(db, args.workers)
        try:
            limits = httpx.Limits(max_connections=args.clients + 8)
            with httpx.Client(base_url=base, timeout=60, limits=limits) as client, \
                    httpx.Client(base_url=receiver_url, timeout=60) as inbox:
                r = client.post("/ngsi-ld/v1/entityOperations/upsert", headers=JSON_HEADERS,
                                content=orjson.dumps([
                                    {"id": sensor_id(n), "type": TYPE,
                                     "location": {"type": "GeoProperty", "value": {
                                         "type": "Point", "coordinates": list(p)}},
                                     ATTR: {"type": "Property", "value": 0.5,
                                            "unitCode": "MTR"}}
                                    for n, p in enumerate(plan.sensors)]))
                assert r.status_code == 201, r.text[:300]
                run.console.print(f"baseline: {total:,} updates at {args.rate:,.0f}/s, "
                                  "no subscriptions")
                baseline = drive(client, baseline_bodies, total, args.batch, args.rate,
                                 args.clients, proc.pid)
                run.console.print(f"creating {len(plan.subscriptions):,} subscriptions")

                def subscribe(body: dict) -> None:
                    r = client.post("/ngsi-ld/v1/subscriptions", json=body)
                    assert r.status_code == 201, r.text[:300]

                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(subscribe, plan.subscriptions))
                run.console.print(f"{total:,} updates at {args.rate:,.0f}/s with subscriptions")
                cpu0, t0 = cpu_s(receiver_pid), time.time()
                loaded = drive(client, bodies, total, args.batch, args.rate, args.clients,
                               proc.pid)
                last = max(loaded.done)
                drained = wait_until(lambda: outbox_rows(db) == 0,
                                     timeout=max(60.0, args.seconds))
                receiver_cpu = (cpu_s(receiver_pid) - cpu0) / (time.time() - t0)
                drain_s = time.time() - last if drained else None
                posts = orjson.loads(inbox.get("/-/posts").content)
            sent, failed = delivery_counters(db)
            rss = run.tree_peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return Outcome(baseline, loaded, posts, drain_s, receiver_cpu, sent, failed, rss)


def report(args: argparse.Namespace, plan: Plan, out: Outcome, total: int,
           expected: set[tuple[int, int]]) -> Table:
    """Pairs (subscription, update) against what was expected; latencies of the first
    arrival of each, from the moment its update request was sent and from its answer."""
    index = {body["id"]: n for n, body in enumerate(plan.subscriptions)}
    from_sent: list[float] = []
    from_done: list[float] = []
    seen: set[tuple[int, int]] = set()
    received = duplicates = unexpected = 0
    for sid, arrival, seqs in out.posts:
        for seq in seqs:
            received += 1
            key = (index.get(sid, -1), seq)
            if key not in expected:
                unexpected += 1
            elif key in seen:
                duplicates += 1
            else:
                seen.add(key)
                request = (seq - total) // args.batch
                from_sent.append(arrival - out.loaded.sent[request])
                from_done.append(arrival - out.loaded.done[request])
    from_sent.sort()
    from_done.sort()
    base, loaded = out.baseline, out.loaded
    table = Table(title=f"dothi notification benchmark ({args.sensors:,} sensors, target "
                        f"{args.rate:,.0f} attribute updates/s for {args.seconds:g} s, "
                        f"{args.batch} per request, {args.workers} workers)")
    table.add_column("measure")
    table.add_column("no subscriptions", justify="right")
    table.add_column(f"{len(plan.subscriptions):,} subscriptions", justify="right")
    table.add_row("subscriptions", "",
                  ", ".join(f"{n:,} {kind}" for kind, n in plan.kinds.items()))
    table.add_row("updates/s achieved", f"{base.rate:,.0f}", f"{loaded.rate:,.0f}")
    requests = [sorted(b - a for a, b in zip(d.sent, d.done)) for d in (base, loaded)]
    table.add_row("update request p50 / p95 / p99 / max ms", ms(requests[0]), ms(requests[1]))
    table.add_row("server CPU (cores)", f"{base.cpu:.2f}", f"{loaded.cpu:.2f}")
    table.add_row("notified entities expected", "", f"{len(expected):,}")
    table.add_row("delivered / missing", "", f"{len(seen):,} / {len(expected) - len(seen):,}")
    table.add_row("duplicates / unexpected", "", f"{duplicates:,} / {unexpected:,}")
    table.add_row("POSTs received (entities per POST)", "",
                  f"{len(out.posts):,} ({received / max(1, len(out.posts)):.1f})")
    table.add_row("server: sent / failed", "", f"{out.sent:,} / {out.failed:,}")
    table.add_row("latency from update sent, p50 / p95 / p99 / max ms", "",
                  ms(from_sent) if from_sent else "-")
    table.add_row("latency from update answered, p50 / p95 / p99 / max ms", "",
                  ms(from_done) if from_done else "-")
    table.add_row("outbox drained after the last update (s)", "",
                  "not in time" if out.drain_s is None else f"{out.drain_s:.1f}")
    table.add_row("receiver CPU (cores)", "", f"{out.receiver_cpu:.2f}")
    table.add_row("server peak RSS (MB)", "", f"{out.rss_mb:,.0f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000, help="attribute updates/s")
    parser.add_argument("--seconds", type=float, default=30, help="per phase")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--sensors", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100, help="entities per update request")
    parser.add_argument("--clients", type=int, default=4, help="update client threads")
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    # Started before this process has any thread, as it is forked.
    receiver, receiver_url = start_receiver()
    try:
        plan = make_plan(args.sensors, args.subscriptions, receiver_url)
        expected = {(sub, seq) for seq in range(total, 2 * total)
                    for sub in plan.matching(seq % args.sensors, reading(seq))}
        assert receiver.pid is not None
        out = run_phases(args, plan, receiver.pid, receiver_url, total)
    finally:
        receiver.terminate()
    run.show_and_save(report(args, plan, out, total, expected), "notifications.txt")


if __name__ == "__main__":
    main()
