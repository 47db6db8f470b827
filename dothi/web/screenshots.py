"""``dothi screenshots``: pictures of the dashboard's main screens, the citizens' page on a
phone and the planners' page, taken in chromium.

Given ``--url``, it photographs that running instance as it is and changes nothing, as
the public sees it: the dashboard only where the public may read incidents (an instance
run with DOTHI_AUTH_ANONYMOUS=operator or above).
Without it, it stages the demo city in a temporary database and serves it: one flood
gauge gets the last 24 hours of a rain event (so that its chart has a curve), then every
gauge reports water above its danger level, so the flooding rules open incidents."""

from __future__ import annotations

import math
import os
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

from dothi.web.browser import (
    draw_area,
    launch,
    open_dashboard,
    open_page,
    open_sensor,
    point_on_map,
    settle,
)

SHOTS = ("dashboard.png", "dashboard-en.png", "incident.png", "sensor.png", "citizen.png",
         "planning.png", "kpi.png", "opendata.png", "registry.png")
# Where the citizen stands, and the area the planner draws (the demo city's illustrative
# zoning plan of central Hải Châu).
CITIZEN_PLACE = (108.2145, 16.0598)
PLAN_AREA = [(108.2110, 16.0540), (108.2230, 16.0540), (108.2230, 16.0700),
             (108.2110, 16.0700)]


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
    # A private server on loopback, gone with the pictures: no one signs in to it.
    proc = subprocess.Popen([sys.executable, "-m", "dothi.cli", "serve", "--db", str(db),
                             "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "DOTHI_AUTH_ANONYMOUS": "system-admin"})
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
            page.close()
            taken.append(_citizen(browser, url, out / "citizen.png", say))
            taken.append(_planner(browser, url, out / "planning.png", say))
            taken.append(_report(browser, url, out / "kpi.png", say))
            taken.append(_opendata(browser, url, out / "opendata.png", say))
            taken.append(_registry(browser, url, out / "registry.png", say))
        finally:
            browser.close()
    return taken


def _citizen(browser: Any, url: str, path: Path, say: Callable[[str], None]) -> Path:
    """The citizens' page on a phone, a place chosen, the first service's form open (a
    look only: nothing is sent)."""
    page, _ = open_page(browser, url, "/citizen", "citizenReady", phone=True)
    point_on_map(page, "citizen", *CITIZEN_PLACE, zoom=15)
    page.wait_for_function("window.citizen.state.point !== null")
    page.locator("[data-testid=service]").select_option(index=1)
    return _shot(page, path, say, state="citizen", full_page=True)


def _planner(browser: Any, url: str, path: Path, say: Callable[[str], None]) -> Path:
    """The planners' page with the area drawn and its plan variants (up to two) side by
    side."""
    page, _ = open_page(browser, url, "/planning/studio", "planningReady")
    variants = page.evaluate("window.planning.state.layers.map(l => l.id)")
    for select, variant in zip(("variant-a", "variant-b"), variants, strict=False):
        page.locator(f"[data-testid={select}]").select_option(variant)
    draw_area(page, PLAN_AREA)
    page.locator("[data-testid=assess]").click()
    page.locator("[data-testid=figures]").wait_for()
    return _shot(page, path, say, state="planning")


def _report(browser: Any, url: str, path: Path, say: Callable[[str], None]) -> Path:
    """The demo city's assessment report: level, radar and trend (a page with no map)."""
    page, _ = open_page(browser, url, "/kpi/report?city=danang", "kpiReady")
    say(f"Writing {path}")
    page.screenshot(path=str(path))
    return path


def _opendata(browser: Any, url: str, path: Path, say: Callable[[str], None]) -> Path:
    """The open-data portal with the air-quality dataset open on the month the demo keeps."""
    page, _ = open_page(browser, url, "/opendata?dataset=AirQualityObserved", "opendataReady")
    page.fill("[data-testid=from]", "2026-10-25")
    page.fill("[data-testid=to]", "2026-11-24")
    page.wait_for_function("window.opendataReady === true")
    say(f"Writing {path}")
    page.screenshot(path=str(path), full_page=True)
    return path


def _registry(browser: Any, url: str, path: Path, say: Callable[[str], None]) -> Path:
    """The registers with the certified smart building open."""
    page, _ = open_page(browser, url, "/registry?record=48-CT-2026-00001-95", "registryReady")
    say(f"Writing {path}")
    page.screenshot(path=str(path))
    return path


def _shot(page: Any, path: Path, say: Callable[[str], None], *, state: str = "dashboard",
          full_page: bool = False) -> Path:
    settle(page, state)
    say(f"Writing {path}")
    page.screenshot(path=str(path), full_page=full_page)
    return path
