"""The open-data portal in Debian's chromium (Playwright), tried as a business that has
never seen it would: on the demo city that `make demo` leaves, it searches "khong khi"
without diacritics, finds the air-quality dataset with its licence and publisher, previews
a month of hourly values on a chart, and downloads them as CSV; the file holds exactly
what the NGSI-LD temporal API holds for that month."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import needs_chromium

pytestmark = needs_chromium

STATION = "urn:ngsi-ld:AirQualityObserved:danang-aq-le-duan"


@pytest.fixture
def portal(city: str, browser: Any) -> Iterator[tuple[Any, list[str]]]:
    from dothi.web.browser import open_page

    page, errors = open_page(browser, city, "/opendata", "opendataReady")
    yield page, errors
    page.close()


def settled(page: Any) -> None:
    page.wait_for_function("window.opendataReady === true")


def test_a_business_finds_previews_and_downloads_a_month_of_air_quality(
        portal: tuple[Any, list[str]], city: str, tmp_path: Path) -> None:
    page, errors = portal
    assert page.locator("[data-testid=dataset]").count() >= 10  # the whole catalogue
    page.fill("[data-testid=search]", "khong khi")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=dataset]').length === 1")
    settled(page)
    card = page.locator("[data-testid=dataset]")
    assert "Chất lượng không khí quan trắc tự động" in card.inner_text()
    assert "Sở Nông nghiệp và Môi trường" in card.inner_text()

    card.click()
    settled(page)
    metadata = page.locator("[data-testid=metadata]").inner_text()
    assert "Sở Nông nghiệp và Môi trường" in metadata and "hằng giờ" in metadata
    licence = page.locator("[data-testid=licence]")
    assert "CC BY 4.0" in licence.inner_text()
    assert licence.get_attribute("href").startswith("https://creativecommons.org/licenses/by/4.0")

    # The demo keeps the 30 days before 18:00 on 24 November (Vietnam): ask for that month.
    page.fill("[data-testid=from]", "2026-10-25")
    page.fill("[data-testid=to]", "2026-11-24")
    settled(page)
    chart = page.locator("[data-testid=chart]")
    hours = int(chart.get_attribute("data-points"))
    assert hours == 30 * 24 + 1  # and the reading of 24 November 18:00 itself
    assert chart.locator("path").count() == 2  # the stations' mean and their highest

    with page.expect_download() as download:
        page.click("[data-testid=history-csv]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "AirQualityObserved-20261025-20261124.csv"
    with saved.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 * hours
    assert {"pm25", "pm10", "no2", "o3", "co", "airQualityIndex"} <= set(rows[0])
    mine = [r for r in rows if r["id"] == STATION]
    times = [datetime.fromisoformat(r["observedAt"].replace("Z", "+00:00")) for r in mine]
    assert all((b - a).total_seconds() == 3600 for a, b in zip(times, times[1:]))

    with httpx.Client(base_url=city, timeout=30) as http:
        r = http.get(f"/ngsi-ld/v1/temporal/entities/{STATION}", params={
            "attrs": "pm25", "timerel": "between", "timeAt": "2026-10-24T17:00:00Z",
            "endTimeAt": "2026-11-24T17:00:00Z", "options": "temporalValues",
            "lastN": 1000})
    assert r.status_code == 200, r.text
    api = {when: value for value, when in r.json()["pm25"]["values"]}
    assert {r["observedAt"]: float(r["pm25"]) for r in mine} == api

    page.locator("[data-testid=lang]").click()
    settled(page)
    assert page.locator("[data-testid=detail-title]").inner_text() == \
        "Air quality observed by automatic stations"
    assert "Department of Agriculture and Environment" in \
        page.locator("[data-testid=metadata]").inner_text()
    assert errors == []


def test_a_dataset_without_history_is_previewed_on_a_map(
        portal: tuple[Any, list[str]]) -> None:
    page, errors = portal
    page.locator("[data-testid=dataset][data-id=PlanningZone]").click()
    settled(page)
    shown = page.locator("[data-testid=map]").get_attribute("data-features")
    assert shown is not None and int(shown) == 32
    assert page.locator("[data-testid=download-geojson]").get_attribute("href") == \
        "/opendata/datasets/PlanningZone/data.geojson"
    assert errors == []
