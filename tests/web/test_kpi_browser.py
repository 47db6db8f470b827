"""The indicators' report in Debian's chromium (Playwright): the demo city's values of two
periods (2025 from raw values, 2026 computed from the store), each indicator with its
trend, the coverage of each dimension and the database quality; what the page shows is
what the API holds, in Vietnamese and in English."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import needs_chromium
from tests.server import running_server

pytestmark = needs_chromium

RAW = """city,period,code,numerator,denominator
danang,2025,EN: EN: AQ: 1C,31.2,
danang,2025,EN: EN: PSN: 1C,90,1000000
"""


def dothi(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dothi.cli", *args], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("kpi")
    db, raw = folder / "city.db", folder / "raw.csv"
    raw.write_text(RAW, encoding="utf-8")
    dothi("demo", "--db", str(db), "--no-serve")
    dothi("kpi", "compute", "--city", "danang", "--period", "2025", "--raw", str(raw),
          "--db", str(db))
    dothi("kpi", "compute", "--city", "danang", "--period", "2026", "--db", str(db))
    dothi("kpi", "quality", "--db", str(db))
    with running_server(Path(db)) as url:
        yield url


def test_the_report_shows_values_trends_and_quality(assessed: str, browser: Any) -> None:
    from dothi.web.browser import open_page

    with httpx.Client(base_url=assessed, timeout=10) as http:
        values = http.get("/kpi/values", params={"city": "danang"}).json()
        quality = http.get("/kpi/quality").json()
    assert values["periods"] == ["2025", "2026"]
    air = next(i for i in values["indicators"] if i["code"] == "EN: EN: AQ: 1C")
    latest = air["values"]["2026"]["value"]

    page, errors = open_page(browser, assessed, "/kpi/report?city=danang", "kpiReady")
    assert page.locator("#period").input_value() == "2026"
    row = page.locator("[data-testid=indicator][data-code='EN: EN: AQ: 1C']")
    assert row.locator("[data-testid=value]").inner_text().startswith(
        f"{latest:.2f}".replace(".", ","))
    assert row.locator("svg").get_attribute("data-points") == "2"
    assert "thấp hơn là tốt" in row.inner_text()
    missing = page.locator("[data-testid=indicator][data-code='EC: ICT: T: 2C']")
    assert "chưa có số liệu" in missing.inner_text()
    computed = sum(1 for i in values["indicators"] if "2026" in i["values"])
    assert page.locator("[data-testid=tile-computed] .figure").inner_text() == str(computed)
    assert page.locator("[data-testid=quality-row]").count() == len(quality)
    assert page.locator("[data-testid=coverage-row]").count() == 3

    page.locator("#period").select_option("2025")
    assert row.locator("[data-testid=value]").inner_text().startswith("31,2")
    page.locator("[data-testid=lang]").click()
    assert page.locator("h2").first.inner_text() == "Data coverage by dimension"
    assert row.locator("[data-testid=value]").inner_text().startswith("31.2")
    assert "lower is better" in row.inner_text()
    assert errors == []
