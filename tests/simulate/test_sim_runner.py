"""The publishing loop, the background entry and the HTTP transport (no MQTT, no dothi)."""

from __future__ import annotations

import itertools
import json
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dothi.simulate import Simulation, SimulationOptions, parse_rate
from dothi.simulate.city import DANANG


class Recorder:
    """A text stream that notes when each dry-run line was written."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str]] = []

    def write(self, text: str) -> int:
        topic, payload = text.rstrip("\n").split(" ", 1)
        self.lines.append((time.monotonic(), topic, payload))
        return len(text)

    def flush(self) -> None:
        pass


def test_rates() -> None:
    assert parse_rate("1/min") == pytest.approx(1 / 60)
    assert parse_rate("2/s") == 2.0
    assert parse_rate("0.5 / s") == 0.5
    assert parse_rate("12/h") == pytest.approx(12 / 3600)
    for bad in ("fast", "0/min", "1/day", "-1/s"):
        with pytest.raises(ValueError, match="rate must look like"):
            parse_rate(bad)


def test_bad_options_are_refused() -> None:
    for options in (SimulationOptions(transport="coap"), SimulationOptions(qos=3),
                    SimulationOptions(devices=0), SimulationOptions(city="hue"),
                    SimulationOptions(rate="often")):
        with pytest.raises(ValueError):
            Simulation(options)


def test_each_device_publishes_at_its_rate_with_phases_spread() -> None:
    out = Recorder()
    options = SimulationOptions(devices=20, rate="10/s", duration=2.0, dry_run=True,
                                start=datetime(2026, 11, 24, 18, 0, tzinfo=DANANG.tz))
    report = Simulation(options, dry_run_out=out).run()
    assert report.failure is None and report.errors == 0
    assert report.sent + report.skipped == 400  # 20 devices x 10/s x 2 s, exactly
    assert report.sent == len(out.lines)
    times: dict[str, list[float]] = defaultdict(list)
    for at, topic, _payload in out.lines:
        times[topic].append(at)
    assert len(times) == 20
    gaps = [b - a for ts in times.values() for a, b in itertools.pairwise(ts)]
    assert statistics.median(gaps) == pytest.approx(0.1, abs=0.02)
    # Phases spread evenly: no burst, every 100 ms window carries about a tenth of a second's
    # worth (200 messages/s), never the whole fleet at once.
    start = out.lines[0][0]
    windows: dict[int, int] = defaultdict(int)
    for at, _topic, _payload in out.lines:
        windows[int((at - start) / 0.1)] += 1
    assert max(windows.values()) <= 40
    assert sorted(windows.values())[len(windows) // 2] >= 12
    # Simulated time starts where asked and runs at real speed.
    assert options.start is not None and report.sim_start == options.start
    assert report.sim_end is not None
    assert 1.5 < (report.sim_end - options.start).total_seconds() < 5


def test_background_start_and_stop() -> None:
    sim = Simulation(SimulationOptions(devices=30, rate="20/s", dry_run=True, speed=60.0))
    sim.start()
    assert sim.wait_ready(10)
    deadline = time.monotonic() + 10
    while sim.stats.sent < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.running
    report = sim.stop()
    assert not sim.running
    assert report.sent >= 100 and report.failure is None
    assert set(report.by_kind) == {"streetlight", "waste", "traffic", "flood", "air"}
    assert report.sim_end is not None and report.sim_start is not None
    # Speed 60: a simulated minute per real second.
    assert (report.sim_end - report.sim_start).total_seconds() > 30 * report.wall_seconds


def test_a_failed_background_run_reports_why() -> None:
    sim = Simulation(SimulationOptions(devices=5, url="http://127.0.0.1:9", duration=1.0))
    sim.start()
    assert sim.wait_ready(30)
    report = sim.join(30)
    assert report.failure is not None and "cannot reach" in report.failure


@contextmanager
def fake_agent() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A throwaway HTTP server standing in for the IoT-Agent side: records every request."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the simulator's client expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            url = urlsplit(self.path)
            seen.append({"path": url.path, "query": parse_qs(url.query), "body": body,
                         "type": self.headers.get("Content-Type"),
                         "tenant": self.headers.get("NGSILD-Tenant")})
            code = 201 if url.path.startswith("/iot/services") or url.path.startswith(
                "/iot/devices") else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_transport_provisions_then_posts_measures() -> None:
    with fake_agent() as (url, seen):
        report = Simulation(SimulationOptions(
            devices=12, rate="4/s", duration=1.0, transport="http", url=url,
            tenant="urn:ngsi-ld:tenant:danang")).run()
    assert report.failure is None and report.errors == 0, report.last_error
    assert report.sent == 48
    assert all(r["tenant"] == "urn:ngsi-ld:tenant:danang" for r in seen)
    services = [r for r in seen if r["path"] == "/iot/services"]
    devices = [r for r in seen if r["path"] == "/iot/devices"]
    measures = [r for r in seen if r["path"] in ("/iot/d", "/iot/json")]
    assert len(services) == 1 and len(devices) == 1 and len(measures) == 48
    groups = json.loads(services[0]["body"])["services"]
    assert {g["transport"] for g in groups} == {"HTTP"}
    assert len(json.loads(devices[0]["body"])["devices"]) == 12
    for r in measures:
        (apikey,), (device_id,) = r["query"]["k"], r["query"]["i"]
        assert apikey.startswith("dn-") and device_id[2] == "-"
        if r["path"] == "/iot/d":
            assert r["type"] == "text/plain"
            assert apikey in ("dn-streetlight", "dn-waste")
            assert len(r["body"].decode().split("|")) % 2 == 0
        else:
            assert r["type"] == "application/json"
            assert isinstance(json.loads(r["body"]), dict)
    assert {r["path"] for r in measures} == {"/iot/d", "/iot/json"}
