"""Debian's chromium driven by Playwright, for the browser tests and ``dothi screenshots``.
No browser is downloaded: Playwright is pointed at the system's chromium. MapLibre needs
WebGL, which headless chromium gives through SwiftShader (software rendering)."""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("DOTHI_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--lang=vi-VN"]


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def open_dashboard(browser: Any, url: str, *, lang: str = "vi",
                   size: tuple[int, int] = (1440, 900)) -> tuple[Any, list[str]]:
    """A page on the dashboard, once its map has drawn the sensors the feed sent, and the
    list that collects the page's script errors from then on."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]},
                            locale="vi-VN" if lang == "vi" else "en-GB")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/ioc/dashboard?lang={lang}")
    page.wait_for_function("window.dashboardReady === true")
    page.wait_for_function("window.dashboard.drawnSensors() > 0")
    if errors:
        raise RuntimeError(f"the dashboard failed in the browser: {errors}")
    return page, errors


def open_sensor(page: Any, sensor: str | None) -> None:
    """Centre the map on ``sensor`` (else the first flood gauge drawn), click it where it
    is drawn, and wait for its chart."""
    page.evaluate("""id => {
        const m = window.dashboard.state.map;
        const all = m.queryRenderedFeatures({layers: ['sensors']});
        const f = all.find(f => f.properties.id === id)
            || all.find(f => f.properties.entityType === 'FloodMonitoring') || all[0];
        window.clickedSensor = f.properties.id;
        m.jumpTo({center: f.geometry.coordinates, zoom: 14});
    }""", sensor)
    settle(page)
    xy = page.evaluate("""() => {
        const m = window.dashboard.state.map;
        const f = m.queryRenderedFeatures({layers: ['sensors']})
            .find(f => f.properties.id === window.clickedSensor);
        const p = m.project(f.geometry.coordinates);
        const box = m.getCanvas().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""")
    page.mouse.click(*xy)
    page.locator("[data-testid=sensor-chart] svg").first.wait_for()


def settle(page: Any) -> None:
    """Wait until the map has drawn its last change (MapLibre's idle event)."""
    page.evaluate("""() => new Promise(done => {
        const m = window.dashboard.state.map;
        m.once('idle', () => done());
        m.triggerRepaint();
    })""")
