"""Device ingestion end to end: MQTT messages/s into the store, and the latency from
publish to a value a query returns.

    python bench/iot.py [--devices 5000] [--rates 1000,2500,5000,7500] [--duration 20]
                        [--qos 0] [--db sqlite|postgresql://...]

A real ``dothi serve`` (SQLite by default, history on) listens to Mosquitto on
127.0.0.1:1883. ``--devices`` streetlight controllers are provisioned (one UltraLight
service group, three mapped attributes with units and an expression). For each rate a
separate publisher process sends UltraLight measures on an open-loop schedule (messages
are due at fixed times whatever the server does), round robin over the devices.

Meanwhile this process measures the publish-to-queryable latency: five times a second it
publishes a marker value for one device and polls the device's last instances
(``GET /temporal/entities/{id}?lastN=5``) until the value is there. The server's own figure (arrival to commit) comes from ``/iot/about``. Every
message is accounted for at the end (applied + refused = published) after the queue
drains. The baseline, measured in the same run, is raw SQLite: rows/s of the entities as
JSON in a plain table, batches of 1,000 (``bench/run.py``'s).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import run  # bench/ is the script's folder, first on sys.path
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from dothi.iot.mqtt_client import CONNECT, DISCONNECT, PUBLISH, encode_string, packet

MQTT = ("127.0.0.1", 1883)
APIKEY = "bench-lights"
console = Console(width=200)


def device_id(n: int) -> str:
    return f"sl-{n:06d}"


def provision(client: httpx.Client, devices: int) -> None:
    r = client.post("/iot/services", json={"services": [{
        "apikey": APIKEY, "entity_type": "Streetlight", "protocol": "UL",
        "explicitAttrs": True, "silent_after": 3600,
        "attributes": [
            {"object_id": "l", "name": "illuminanceLevel", "type": "Number", "unitCode": "C62"},
            {"object_id": "p", "name": "powerState", "type": "Text"},
            {"object_id": "w", "name": "powerConsumption", "type": "Number",
             "unitCode": "WTT", "expression": "w * 1000"}]}]})
    assert r.status_code == 201, r.text
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("provisioning devices", total=devices)
        for start in range(0, devices, 1000):
            chunk = [{"device_id": device_id(n), "apikey": APIKEY,
                      "static_attributes": [{"name": "location", "type": "GeoProperty",
                                             "value": {"type": "Point", "coordinates": [
                                                 108.15 + (n % 300) * 0.0004,
                                                 16.0 + (n // 300) * 0.0004]}}]}
                     for n in range(start, min(start + 1000, devices))]
            r = client.post("/iot/devices", json={"devices": chunk}, timeout=120)
            assert r.status_code == 201, r.text
            progress.advance(task, len(chunk))


def publisher(rate: int, duration: float, devices: int, qos: int, out: Any) -> None:
    """Runs in its own process: open-loop publishing, then reports what it sent.

    QoS 0 messages are written as raw MQTT 3.1.1 PUBLISH packets on one socket: a load
    generator as cheap as possible, so that on a two-core machine the CPU goes to the
    server under test rather than to a client library (paho spent about 0.4 core here
    at 5,000 messages/s). QoS 1 goes through paho, which handles the acknowledgements.
    """
    import socket

    sock = socket.create_connection(MQTT)
    if qos == 0:
        sock.sendall(packet(CONNECT, encode_string("MQTT") + bytes([4, 0x02, 0, 0])
                            + encode_string(f"bench-{os.getpid()}")))
        assert sock.recv(4)[:2] == b"\x20\x02", "Mosquitto refused the connection"

        def send(topic: str, payload: str) -> None:
            sock.sendall(packet(PUBLISH, encode_string(topic) + payload.encode()))
    else:
        import paho.mqtt.client as mqtt

        sock.close()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.max_queued_messages_set(0)
        client.connect(*MQTT)
        client.loop_start()

        def send(topic: str, payload: str) -> None:
            client.publish(topic, payload, qos=qos)
    sent = 0
    start = time.perf_counter()
    while True:
        now = time.perf_counter() - start
        if now >= duration:
            break
        due = min(int(now * rate), int(duration * rate))
        while sent < due:
            payload = f"l|{(sent % 100) / 100:.2f}|p|on|w|0.{sent % 97:03d}"
            send(f"/{APIKEY}/{device_id(sent % devices)}/attrs", payload)
            sent += 1
        time.sleep(0.005)  # publish in small bursts: the schedule, not a sleep per message
    elapsed = time.perf_counter() - start
    if qos == 0:
        sock.sendall(packet(DISCONNECT))
        sock.close()
    else:
        client.loop_stop()
        client.disconnect()
    out.send((sent, elapsed))


class Prober:
    """Publish a marker for one device, poll until a query returns it."""

    def __init__(self, url: str, devices: int, qos: int) -> None:
        import paho.mqtt.client as mqtt

        self.http = httpx.Client(base_url=url, timeout=30)
        self.devices = devices
        self.qos = qos
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.mqtt.connect(*MQTT)
        self.mqtt.loop_start()
        self.latencies: list[float] = []
        self.sent = 0
        self.stop = threading.Event()
        self.marker = 1000.0

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stop.is_set():
            d = rng.randrange(self.devices)
            self.marker += 1
            marker = self.marker
            eid = f"urn:ngsi-ld:Streetlight:{device_id(d)}"
            t0 = time.perf_counter()
            self.mqtt.publish(f"/{APIKEY}/{device_id(d)}/attrs", f"l|{marker}", qos=self.qos)
            self.sent += 1
            while time.perf_counter() - t0 < 30:
                # The device's own next measure may replace the marker within a second:
                # it is looked for among the last instances, not only the current value.
                r = self.http.get(f"/ngsi-ld/v1/temporal/entities/{eid}", params={
                    "attrs": "illuminanceLevel", "lastN": "5", "options": "temporalValues"})
                if any(v[0] == marker for v in r.json().get(
                        "illuminanceLevel", {}).get("values", [])):
                    self.latencies.append((time.perf_counter() - t0) * 1000)
                    break
                # Poll every 2 ms, backing off to a tenth of the wait so far: an
                # overloaded server is not also flooded with the prober's queries.
                time.sleep(max(0.002, (time.perf_counter() - t0) / 10))
            self.stop.wait(0.2)

    def close(self) -> None:
        self.mqtt.loop_stop()
        self.mqtt.disconnect()
        self.http.close()


def _cpu(pid: int) -> float:
    total = 0.0
    for p in run.server_pids(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def about(client: httpx.Client) -> dict[str, Any]:
    return client.get("/iot/about").json()  # type: ignore[no-any-return]


def counters(url: str, workers: int) -> dict[str, Any]:
    """The ingestion counters of every server process, added up: each process counts
    its own share, and a fresh connection reaches a process at random, so ask until
    every process has answered once."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(200):
        if len(seen) == workers:
            break
        body = httpx.get(url + "/iot/about", timeout=30).json()
        seen[body["process"]] = body["ingestion"]
    else:
        raise SystemExit(f"only {len(seen)} of {workers} server processes answered")
    total: dict[str, Any] = {"applied": 0, "rejected": 0, "batches": 0, "p50": [], "p95": []}
    for ingestion in seen.values():
        total["applied"] += ingestion["applied"]
        total["rejected"] += sum(ingestion["rejected"].values())
        total["batches"] += ingestion["batches"]
        total["p50"].append(ingestion["latencyMs"]["p50"] or 0)
        total["p95"].append(ingestion["latencyMs"]["p95"] or 0)
    return total


def phase(url: str, pid: int, rate: int, args: argparse.Namespace) -> dict[str, Any]:
    before = counters(url, args.workers)
    cpu0 = _cpu(pid)
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=publisher,
                                   args=(rate, args.duration, args.devices, args.qos, child))
    prober = Prober(url, args.devices, args.qos)
    probe = threading.Thread(target=prober.run, daemon=True)
    t0 = time.perf_counter()
    proc.start()
    probe.start()
    proc.join()
    window = time.perf_counter() - t0
    cpu = _cpu(pid) - cpu0
    in_window = counters(url, args.workers)
    prober.stop.set()
    probe.join()
    prober.close()
    sent, send_time = parent.recv()
    total = sent + prober.sent
    # Drain: everything published is either applied or refused, or it was lost.
    deadline = time.monotonic() + 60
    while True:
        now = counters(url, args.workers)
        done = (now["applied"] - before["applied"]) + (now["rejected"] - before["rejected"])
        if done >= total or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lat = sorted(prober.latencies)
    return {
        "rate": rate, "published": sent / send_time,
        "applied": (in_window["applied"] - before["applied"]) / window,
        "lost": total - done, "refused": now["rejected"] - before["rejected"],
        # Per process, the worst one's (the server keeps its last 10,000 messages).
        "server_p50": max(now["p50"]), "server_p95": max(now["p95"]),
        "probe_p50": statistics.median(lat) if lat else float("nan"),
        "probe_p95": lat[int(0.95 * (len(lat) - 1))] if lat else float("nan"),
        "probes": len(lat), "cpu": cpu / window,
        "batch": (now["applied"] - before["applied"])
        / max(now["batches"] - before["batches"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--rates", default="1000,2500,5000,7500")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--qos", type=int, default=0, choices=(0, 1))
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (they split the messages: shared subscription)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    baseline = run.raw_sqlite_rate(100_000)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DOTHI_IOT_MQTT_URL"] = f"mqtt://{MQTT[0]}:{MQTT[1]}"
        os.environ["DOTHI_IOT_HEALTH_INTERVAL"] = "60"
        proc, url = run.start_server(Path(tmp) / "iot.db", workers=args.workers)
        try:
            client = httpx.Client(base_url=url, timeout=60)
            provision(client, args.devices)
            deadline = time.monotonic() + 10
            while not (about(client)["mqtt"] or {}).get("connected"):
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not connect to Mosquitto")
                time.sleep(0.1)
            results = []
            for rate in rates:
                console.print(f"[bold]{rate:,} messages/s for {args.duration:g} s ...")
                results.append(phase(url, proc.pid, rate, args))
            rss = run.tree_peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)

    table = Table(title=f"MQTT ingestion into SQLite: {args.devices:,} devices, UltraLight, "
                        f"QoS {args.qos}, 3 attributes per message, history on, "
                        f"{args.workers} server process(es)")
    for col in ("target msg/s", "published/s", "applied/s", "lost", "refused",
                "server p50 ms", "server p95 ms", "publish→query p50 ms",
                "publish→query p95 ms", "probes", "messages per transaction",
                "server CPU (cores)"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(f"{r['rate']:,}", f"{r['published']:,.0f}", f"{r['applied']:,.0f}",
                      str(r["lost"]), str(r["refused"]), str(r["server_p50"]),
                      str(r["server_p95"]), f"{r['probe_p50']:.1f}", f"{r['probe_p95']:.1f}",
                      str(r["probes"]), f"{r['batch']:.0f}", f"{r['cpu']:.2f}")
    console.print(table)
    console.print(f"Baseline, same run: raw SQLite inserts {baseline:,.0f} rows/s "
                  f"(entities as JSON rows, batches of 1,000); server peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main()
