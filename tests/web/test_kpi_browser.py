"""The demo city's assessment report in Debian's chromium (Playwright), as `make demo`
leaves it: Đà Nẵng's self-assessments of 2024-2026 (the last computed partly from the
demo city's own entities), the level reached, the radar of the dimension scores, their
trend, the criteria passed or not and why, the ranking of the four demo cities with its
sensitivity, each indicator with its trend, the coverage of each dimension and the
database quality; what the page shows is what the API holds, in Vietnamese and English,
and the XLSX it offers is the same assessment."""

from __future__ import annotations

import io
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


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("kpi") / "city.db"
    done = subprocess.run([sys.executable, "-m", "dothi.cli", "demo", "--db", str(db),
                           "--no-serve"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    with running_server(Path(db)) as url:
        yield url


def test_the_report_shows_values_trends_and_quality(assessed: str, browser: Any) -> None:
    from dothi.web.browser import open_page

    with httpx.Client(base_url=assessed, timeout=10) as http:
        values = http.get("/kpi/values", params={"city": "danang"}).json()
        quality = http.get("/kpi/quality").json()
    assert values["periods"] == ["2024", "2025", "2026"]
    air = next(i for i in values["indicators"] if i["code"] == "EN: EN: AQ: 1C")
    latest = air["values"]["2026"]["value"]

    page, errors = open_page(browser, assessed, "/kpi/report?city=danang", "kpiReady")
    assert page.locator("#period").input_value() == "2026"
    row = page.locator("[data-testid=indicator][data-code='EN: EN: AQ: 1C']")
    assert row.locator("[data-testid=value]").inner_text().startswith(
        f"{latest:.2f}".replace(".", ","))
    assert row.locator("svg").get_attribute("data-points") == "3"
    assert "thấp hơn là tốt" in row.inner_text() and "Ô nhiễm không khí" in row.inner_text()
    missing = page.locator("[data-testid=indicator][data-code='SC: EH: H: 4A']")
    assert "chưa có số liệu" in missing.inner_text()
    computed = sum(1 for i in values["indicators"] if "2026" in i["values"])
    assert page.locator("[data-testid=tile-computed] .figure").inner_text() == str(computed)
    assert page.locator("[data-testid=quality-row]").count() == len(quality)
    assert page.locator("[data-testid=coverage-row]").count() == 3

    choose(page, "2025")
    assert row.locator("[data-testid=value]").inner_text().startswith("26,1")
    page.locator("[data-testid=lang]").click()
    assert page.locator("#assessment + #tiles + h2").inner_text() == "Data coverage by dimension"
    assert row.locator("[data-testid=value]").inner_text().startswith("26.1")
    assert "lower is better" in row.inner_text() and "Air Pollution" in row.inner_text()
    assert errors == []


def choose(page: Any, period: str) -> None:
    page.locator("#period").select_option(period)
    page.wait_for_function("window.kpiReady === true")


def test_the_full_assessment_report(assessed: str, browser: Any) -> None:
    from openpyxl import load_workbook

    from dothi.web.browser import open_page

    with httpx.Client(base_url=assessed, timeout=10) as http:
        framework = http.get("/kpi/framework").json()
        trend = http.get("/kpi/assessment/trend", params={"city": "danang"}).json()
        ranking = http.get("/kpi/ranking", params={"period": "2026"}).json()
    assert [a["period"] for a in trend] == ["2024", "2025", "2026"]
    assert {a["status"] for a in trend} == {"accepted"}
    latest = trend[-1]

    page, errors = open_page(browser, assessed, "/kpi/report?city=danang", "kpiReady")
    badge = page.locator("[data-testid=level-badge]")
    assert badge.get_attribute("data-level") == str(latest["level"])
    assert latest["levelName"]["vi"] in badge.inner_text()
    assert page.locator("[data-testid=status]").inner_text() == \
        f"Đã chấp thuận · phiên bản {latest['version']}"

    # The radar: one point per dimension at the API's score, and last year dashed.
    for d in framework["dimensions"]:
        dot = page.locator(f"[data-testid=radar] circle[data-dimension='{d['id']}']")
        assert float(dot.get_attribute("data-score")) == latest["scores"][d["id"]]
    assert page.locator("[data-testid=radar] polygon[stroke-dasharray]").count() == 1
    # The trend: the composite over the three years, and each dimension's line.
    composite = page.locator("[data-testid=trend] polyline[data-line=composite]")
    assert composite.get_attribute("data-points") == "3"
    assert page.locator("[data-testid=trend] polyline").count() == \
        1 + len(framework["dimensions"])
    box = page.locator("[data-testid=radar]").bounding_box()
    assert box and box["width"] > 250 and box["height"] > 250, "the radar is drawn large"

    # Each criterion, passed or not as the API says, with the reason of a failure.
    rows = page.locator("[data-testid=criterion]")
    assert rows.count() == len(framework["criteria"])
    for c in framework["criteria"]:
        row = page.locator(f"[data-testid=criterion][data-code='{c['code']}']")
        outcome = latest["outcomes"][c["code"]]
        assert row.get_attribute("data-passed") == str(outcome["passed"]).lower()
    pm25 = page.locator("[data-testid=criterion][data-code='DT-1.07']")
    assert "Không đạt" in pm25.inner_text() and "chưa đạt mục tiêu" in pm25.inner_text()
    assert "≤ 25" in pm25.inner_text()

    # The ranking as the API gives it, with each city's range under other weightings.
    shown = page.locator("[data-testid=rank-row]")
    assert [shown.nth(i).get_attribute("data-city") for i in range(shown.count())] == \
        [r["city"] for r in ranking["rows"]]
    for i, r in enumerate(ranking["rows"]):
        best, worst = r["sensitivity"]["best"], r["sensitivity"]["worst"]
        assert shown.nth(i).locator("[data-testid=rank-range]").inner_text() == (
            str(best) if best == worst else f"{best}–{worst}")
    assert "haiphong (Bị trả lại)" in page.locator("#ranking").inner_text()
    assert "trung bình có trọng số" in page.locator("[data-testid=method]").inner_text()

    # The workbook the page offers holds the same assessment.
    with page.expect_download() as info:
        page.locator("[data-testid=xlsx-vi]").click()
    book = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))
    summary = {row[0]: row[1] for row in book["Tổng quan"].iter_rows(values_only=True) if row}
    assert summary["Cấp độ đạt được"] == f"{latest['level']}: {latest['levelName']['vi']}"
    assert summary["Điểm tổng hợp"] == latest["composite"]
    assert len(book["Tổng quan"]._charts) == 1 and len(book["Xu hướng"]._charts) == 1

    # An earlier year, then the same in English.
    choose(page, "2024")
    assert badge.get_attribute("data-level") == str(trend[0]["level"])
    assert page.locator("[data-testid=radar] polygon[stroke-dasharray]").count() == 0
    page.locator("[data-testid=lang]").click()
    assert page.locator("#assessment h2").first.inner_text() == "Assessment criteria"
    assert pm25.locator(".fail").inner_text() == "Failed"
    assert errors == []
