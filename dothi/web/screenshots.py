"""``dothi screenshots``: pictures of the dashboard's main screens, taken in chromium.

Given ``--url``, it photographs that running instance as it is and changes nothing.
Without it, it stages the demo city in a temporary database and serves it: one flood
gauge gets the last 24 hours of a rain event (so that its chart has a curve), then every
gauge reports water above its danger level, so the flooding rules open incidents."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from dothi.web.browser import launch, open_dashboard, open_sensor, settle

SHOTS = ("dashboard.png", "dashboard-en.png", "incident.png", "sensor.png")


def take(out: Path, url: str | None, say: Callable[[str], None]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if url is not None:
        return _photograph(url.rstrip("/"), out, say)
    with tempfile.TemporaryDirectory() as tmp, _demo_server(Path(tmp) / "city.db", say) as own:
        gauge = _stage(own, say)
        return _photograph(own, out, say, sensor=gauge)


@contextmanager
def _demo_server(db: Path, say: Callable[[str], None]) -> Iterator[str]:
    say("Loading the demo city")
    subprocess.run([sys.executable, "-m", "dothi.cli", "demo", "--db", str(db),
                    "--no-serve"], check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "dothi.cli", "serve", "--db", str(db),
                             "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not found:
            raise RuntimeError(f"the server did not start: {line}")
        yield found.group(0)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _stage(url: str, say: Callable[[str], None]) -> str:
    """Stage the scenario; returns the id of the gauge with a day of history."""
    now = datetime.now(UTC).replace(microsecond=0)
    with httpx.Client(base_url=url, timeout=30) as http:
        gauges = http.get("/ngsi-ld/v1/entities", params={
            "type": "FloodMonitoring", "limit": 100, "options": "keyValues",
            "attrs": "dangerLevel,alertLevel,currentLevel"}).raise_for_status().json()
        first = gauges[0]
        say(f"Replaying 24 hours of a rain event on {first['id']}")
        base, peak = first["currentLevel"], first["dangerLevel"] + 0.1
        instances = []
        for step in range(96):
            t = now - timedelta(minutes=15 * (96 - step))
            # Dry, then a storm that lifts the river towards its danger level in the last
            # hours: a smooth rise, as a gauge reports it.
            rise = max(0.0, math.sin(math.pi * max(0.0, step - 60) / 72))
            instances.append({"type": "Property", "value": round(base + (peak - base) * rise, 2),
                              "unitCode": "MTR", "observedAt": _iso(t)})
        http.post(f"/ngsi-ld/v1/temporal/entities/{first['id']}/attrs",
                  json={"currentLevel": instances}).raise_for_status()
        say("Flooding: every gauge reports water above its danger level")
        http.post("/ngsi-ld/v1/entityOperations/update", json=[
            {"id": g["id"], "type": "FloodMonitoring",
             "currentLevel": {"type": "Property", "value": round(g["dangerLevel"] + 0.1, 2),
                              "unitCode": "MTR", "observedAt": _iso(now)}}
            for g in gauges]).raise_for_status()
    return str(first["id"])


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _photograph(url: str, out: Path, say: Callable[[str], None],
                sensor: str | None = None) -> list[Path]:
    from playwright.sync_api import sync_playwright

    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page, _ = open_dashboard(browser, url)
            # The flooding incidents, when there are any, come first.
            page.locator("#f-category").select_option("flooding")
            has_flood = page.locator("[data-testid=incident][data-id]").count() > 0
            if not has_flood:
                page.locator("#f-category").select_option("")
            taken.append(_shot(page, out / "dashboard.png", say))
            first = page.locator("[data-testid=incident][data-id]").first
            if first.count():
                first.click()
            taken.append(_shot(page, out / "incident.png", say))
            open_sensor(page, sensor)
            taken.append(_shot(page, out / "sensor.png", say))
            page.close()
            page, _ = open_dashboard(browser, url, lang="en")
            taken.append(_shot(page, out / "dashboard-en.png", say))
        finally:
            browser.close()
    return taken


def _shot(page: Any, path: Path, say: Callable[[str], None]) -> Path:
    settle(page)
    say(f"Writing {path}")
    page.screenshot(path=str(path))
    return path
