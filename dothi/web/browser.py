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


def settle(page: Any, state: str = "dashboard") -> None:
    """Wait until the map of ``window.{state}.state.map`` has drawn its last change
    (MapLibre's idle event)."""
    page.evaluate("""state => new Promise(done => {
        const m = window[state].state.map;
        m.once('idle', () => done());
        m.triggerRepaint();
    })""", state)


def open_page(browser: Any, url: str, path: str, ready: str, *, lang: str = "vi",
              phone: bool = False) -> tuple[Any, list[str]]:
    """A page of the platform (``ready``: the global it sets once drawn), on a desk's
    screen or a phone's touch screen, and the list that collects its script errors."""
    size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 800}
    page = browser.new_page(viewport=size, is_mobile=phone, has_touch=phone,
                            locale="vi-VN" if lang == "vi" else "en-GB")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}{path}{'&' if '?' in path else '?'}lang={lang}")
    page.wait_for_function(f"window.{ready} === true")
    return page, errors


def point_on_map(page: Any, state: str, lon: float, lat: float,
                 zoom: float | None = None) -> None:
    """Click (or, on a touch screen, tap) the map of ``window.{state}.state.map`` where
    (lon, lat) is drawn, after centring it there at ``zoom`` if given."""
    if zoom is not None:
        page.evaluate("""([state, lon, lat, zoom]) => new Promise(done => {
            const m = window[state].state.map;
            m.once('idle', () => done());
            m.jumpTo({center: [lon, lat], zoom});
        })""", [state, lon, lat, zoom])
    x, y = page.evaluate("""([state, lon, lat]) => {
        const m = window[state].state.map;
        const p = m.project([lon, lat]);
        const box = m.getCanvas().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", [state, lon, lat])
    if page.evaluate("navigator.maxTouchPoints > 0"):
        page.touchscreen.tap(x, y)
    else:
        page.mouse.click(x, y)


def draw_area(page: Any, corners: list[tuple[float, float]], *, finish: bool = True) -> None:
    """On the planners' page: draw the polygon of ``corners`` (lon, lat), corner by corner
    on the map centred on them, and close it with the Done button if ``finish``."""
    lon = sum(c[0] for c in corners) / len(corners)
    lat = sum(c[1] for c in corners) / len(corners)
    page.evaluate("""([lon, lat]) => new Promise(done => {
        const m = window.planning.state.map;
        m.once('idle', () => done());
        m.jumpTo({center: [lon, lat], zoom: 14});
    })""", [lon, lat])
    page.locator("[data-testid=draw]").click()
    for corner in corners:
        point_on_map(page, "planning", *corner)
    if finish:
        page.locator("[data-testid=finish]").click()
