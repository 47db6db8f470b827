"""The national programme's dashboard in Debian's chromium (Playwright), on an instance
holding the national tasks and, made through the API: a request whose due day has
passed (one province submitted late, one accepted, one returned, one with a draft only,
one with nothing), a request not yet due, three provinces' action plans with their
progress and a self-assessment. What a person sees is checked against the API: the
34 circles coloured as the API's figures say (the pixel at a circle's centre is the
legend's colour for the province's category), for each of the three measures and both
requests; the submissions table, its counts and its overdue marking; a clicked
province's panel; the overdue tasks; the indicators' bars; English; and the DOCX."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import needs_chromium
from tests.server import running_server

pytestmark = needs_chromium
OFFICIAL = {"Authorization": "Bearer programme-officer"}
PAST, FUTURE = "annual-past", "plan-next"
TEXTS = {"overview": "Đã vận hành trung tâm điều hành đô thị thông minh và nền tảng dữ liệu.",
         "difficulties": "Thiếu nhân lực công nghệ thông tin."}
COVERAGE, PM25 = "EC: ICT: ICT: 4C", "EN: EN: AQ: 1C"
DA_NANG, HUE, HA_NOI, HCM, HAI_PHONG, CAN_THO = "48", "46", "01", "79", "31", "92"


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, (str(response.request.url), response.text)
    return response.json()


def report(http: httpx.Client, key: str, unit: str, values: dict[str, float] | None,
           submit: bool = True) -> None:
    ok(http.put(f"/program/reports/{key}/{unit}", headers=OFFICIAL,
                json={"sections": TEXTS, "indicators": values or {COVERAGE: 90, PM25: 25}}))
    if submit:
        ok(http.post(f"/program/reports/{key}/{unit}/submit", headers=OFFICIAL))


def task(code: str, name: str, start: date, deadline: date) -> dict[str, Any]:
    return {"code": code, "refParent": "urn:ngsi-ld:ProgrammeTask:DT950-4.1",
            "name": {"vi": name, "en": f"{name} (EN)"}, "description": "Triển khai " + name,
            "startDate": start.isoformat(), "deadline": deadline.isoformat(),
            "responsiblePerson": "Giám đốc Sở Khoa học và Công nghệ",
            "responsibility": "Sở Khoa học và Công nghệ", "authority": "UBND tỉnh",
            "expectedProduct": name, "leadAgency": "Sở Khoa học và Công nghệ"}


def seed(http: httpx.Client) -> None:
    today = date.fromisoformat(ok(http.get("/program/overview"))["on"])
    ok(http.post("/program/requests", headers=OFFICIAL, json={
        "key": PAST, "template": "annual", "period": str(today.year - 1),
        "dueDate": (today - timedelta(days=30)).isoformat(),
        "units": [DA_NANG, HUE, HA_NOI, HCM, HAI_PHONG]}))
    ok(http.post("/program/requests", headers=OFFICIAL, json={
        "key": FUTURE, "template": "annual", "period": str(today.year),
        "dueDate": (today + timedelta(days=60)).isoformat(),
        "units": [DA_NANG, HA_NOI, CAN_THO]}))
    report(http, PAST, DA_NANG, {COVERAGE: 97, PM25: 22.5})
    report(http, PAST, HUE, {COVERAGE: 88, PM25: 31})
    ok(http.post(f"/program/reports/{PAST}/{HUE}/review", headers=OFFICIAL,
                 json={"decision": "accept"}))
    report(http, PAST, HAI_PHONG, {COVERAGE: 70, PM25: 40})
    ok(http.post(f"/program/reports/{PAST}/{HAI_PHONG}/review", headers=OFFICIAL,
                 json={"decision": "return", "comments": "Bổ sung số liệu chất lượng không khí"}))
    report(http, PAST, HA_NOI, None, submit=False)
    report(http, FUTURE, DA_NANG, None)
    report(http, FUTURE, HA_NOI, None, submit=False)

    # Đà Nẵng: one task due within a month at 40 % (at risk), one far off at 90 %, one
    # done: a mean of 76.7 %. Hà Nội: one task past its deadline at 10 %.
    period = str(today.year)
    ok(http.put(f"/program/plans/{DA_NANG}/{period}", headers=OFFICIAL, json={"items": [
        task("1", "Trung tâm IOC", today - timedelta(days=30), today + timedelta(days=20)),
        task("2", "Bản đồ số", today - timedelta(days=30), today + timedelta(days=400)),
        task("3", "Cổng dữ liệu mở", today - timedelta(days=30), today + timedelta(days=400))]}))
    for code, body in (("1", {"progress": 40}), ("2", {"progress": 90}),
                       ("3", {"progress": 100, "status": "done",
                              "evidence": "https://opendata.danang.gov.vn"})):
        ok(http.post(f"/program/tasks/{DA_NANG}-{period}-{code}/progress", headers=OFFICIAL,
                     json=body))
    ok(http.put(f"/program/plans/{HA_NOI}/{period}", headers=OFFICIAL, json={"items": [
        task("1", "Cơ sở dữ liệu đô thị", today - timedelta(days=100),
             today - timedelta(days=10))]}))
    ok(http.post(f"/program/tasks/{HA_NOI}-{period}-1/progress", headers=OFFICIAL,
                 json={"progress": 10}))
    ok(http.post("/program/check", headers=OFFICIAL))
    # Đà Nẵng's self-assessment of the past request's period: submitted, below level 1.
    ok(http.put("/kpi/assessment/answers/DT-1.01", headers=OFFICIAL,
                params={"city": DA_NANG, "period": str(today.year - 1)},
                json={"met": True, "evidence": "https://danang.gov.vn/ioc.pdf"}))
    ok(http.post("/kpi/assessment/submit", headers=OFFICIAL,
                 params={"city": DA_NANG, "period": str(today.year - 1)}))


@pytest.fixture(scope="module")
def programme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("programme") / "national.db"
    done = subprocess.run([sys.executable, "-m", "dothi.cli", "program", "load-tasks",
                           "--db", str(db)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    with running_server(Path(db), env={"DOTHI_OFFICIAL_KEYS": "programme-officer"}) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            seed(http)
        yield url


# -- what the API's figures mean on the map (the page's legend, worked out here) ------


def status_category(report: dict[str, Any] | None) -> str:
    if report is None:
        return "notAsked"
    if report["overdue"]:
        return "overdue"
    if report["status"] == "submitted":
        return "late" if report["late"] else "onTime"
    return {"missing": "pending"}.get(report["status"], report["status"])


def progress_category(tasks: dict[str, Any]) -> str:
    if not tasks["count"] or tasks["progress"] is None:
        return "none"
    return f"p{min(4, int(tasks['progress'] // 20))}"


def level_category(level: dict[str, Any] | None) -> str:
    return "none" if level is None else f"level{level['level']}"


CATEGORY = {"status": lambda u: status_category(u["report"]),
            "progress": lambda u: progress_category(u["tasks"]),
            "level": lambda u: level_category(u["level"])}

DRAWN = """() => {
    const m = window.programme.state.map;
    const box = m.getCanvas().getBoundingClientRect();
    const out = {};
    for (const f of m.queryRenderedFeatures({layers: ['provinces']})) {
        const p = m.project(f.geometry.coordinates);
        out[f.properties.code] = {category: f.properties.category, colour: f.properties.colour,
                                  x: box.left + p.x, y: box.top + p.y};
    }
    return out;
}"""


def rgb(colour: str) -> tuple[int, int, int]:
    if colour.startswith("#"):
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    r, g, b = colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]
    return int(r), int(g), int(b)


def pixel(page: Any, x: float, y: float) -> tuple[int, int, int]:
    """The colour on the screen at (x, y)."""
    from PIL import Image

    shot = page.screenshot(clip={"x": x - 2, "y": y - 2, "width": 5, "height": 5})
    r, g, b = Image.open(io.BytesIO(shot)).convert("RGB").getpixel((2, 2))  # type: ignore[misc]
    return r, g, b


def legend(page: Any) -> dict[str, str]:
    """The legend's colour of each category; each swatch shows the colour it claims."""
    items = page.locator("[data-testid=legend-item]")
    out = {}
    for i in range(items.count()):
        item = items.nth(i)
        colour = item.get_attribute("data-colour")
        shown = item.locator(".swatch").evaluate("n => getComputedStyle(n).backgroundColor")
        assert rgb(shown) == rgb(colour)
        out[item.get_attribute("data-key")] = colour
    return out


def check_map(page: Any, overview: dict[str, Any], measure: str,
              looked_at: tuple[str, ...]) -> dict[str, str]:
    """Every province drawn in its category's colour for ``measure``, the legend's
    counts right, and the pixels at the centres of ``looked_at`` in those colours."""
    assert page.locator("#legend").get_attribute("data-measure") == measure
    colours = legend(page)
    drawn = page.evaluate(DRAWN)
    units = overview["units"]
    assert sorted(drawn) == sorted(u["code"] for u in units), "all 34 circles are drawn"
    expected = {u["code"]: CATEGORY[measure](u) for u in units}
    for code, key in expected.items():
        assert drawn[code]["category"] == key, code
        assert drawn[code]["colour"] == colours[key], code
    for key in colours:
        count = page.locator(f"[data-testid=legend-item][data-key='{key}'] "
                             "[data-testid=legend-count]").inner_text()
        assert int(count) == sum(1 for k in expected.values() if k == key), key
    for code in looked_at:
        seen = pixel(page, drawn[code]["x"], drawn[code]["y"])
        want = rgb(colours[expected[code]])
        assert all(abs(a - b) <= 6 for a, b in zip(seen, want, strict=True)), \
            (code, measure, seen, want)
    return expected


def wait(page: Any) -> None:
    page.wait_for_function("window.programmeReady === true")


def moment(iso: str | None) -> str:
    if iso is None:
        return ""
    when = datetime.fromisoformat(iso).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    return when.strftime("%d/%m/%Y %H:%M")


def day(iso: str) -> str:
    return date.fromisoformat(iso).strftime("%d/%m/%Y")


def check_table(page: Any, rows: list[dict[str, Any]], lang: str) -> None:
    shown = page.locator("[data-testid=status-row]")
    assert [shown.nth(i).get_attribute("data-unit") for i in range(shown.count())] == \
        [r["unit"] for r in rows]
    for r in rows:
        row = page.locator(f"[data-testid=status-row][data-unit='{r['unit']}']")
        assert row.locator("[data-testid=row-status]").inner_text().strip() == \
            r["statusTitle"][lang]
        assert row.locator("[data-testid=row-submitted]").inner_text() == moment(r["submittedAt"])
        assert row.locator("[data-testid=row-late]").inner_text() == \
            (str(r["lateDays"]) if r["late"] else "")
        assert row.get_attribute("data-overdue") == str(r["overdue"]).lower()
        marked = row.evaluate("n => n.classList.contains('overdue') "
                              "&& getComputedStyle(n).backgroundColor !== 'rgba(0, 0, 0, 0)'")
        assert marked == r["overdue"], r["unit"]
        flag = row.locator("[data-testid=row-overdue]").inner_text()
        words = "quá hạn {} ngày" if lang == "vi" else "overdue by {} days"
        assert flag == (words.format(r["daysOverdue"]) if r["overdue"] else "")


# -- the tests -------------------------------------------------------------------------


def test_the_map_the_table_and_a_province_as_the_api_says(programme: str,
                                                          browser: Any) -> None:
    from dothi.web.browser import open_page, point_on_map

    with httpx.Client(base_url=programme, timeout=20) as http:
        requests = ok(http.get("/program/requests"))
        overview = ok(http.get("/program/overview", params={"request": PAST}))
        rows = ok(http.get(f"/program/requests/{PAST}/status"))
        national = ok(http.get(f"/program/requests/{PAST}/national"))
        mine = ok(http.get(f"/program/reports/{PAST}/{DA_NANG}"))
    assert [r["key"] for r in requests] == [PAST, FUTURE]

    page, errors = open_page(browser, programme, "/program/dashboard", "programmeReady")
    page.set_viewport_size({"width": 1440, "height": 1000})
    wait(page)
    assert page.locator("[data-testid=request]").input_value() == PAST
    expected = check_map(page, overview, "status",
                         (DA_NANG, HUE, HA_NOI, HCM, HAI_PHONG, CAN_THO))
    assert {c: expected[c] for c in (DA_NANG, HUE, HA_NOI, HCM, HAI_PHONG, CAN_THO)} == {
        DA_NANG: "late", HUE: "accepted", HA_NOI: "overdue", HCM: "overdue",
        HAI_PHONG: "returned", CAN_THO: "notAsked"}

    # The submissions: every unit asked, as /status says, overdue rows marked; the counts.
    check_table(page, rows, "vi")
    counts = national["counts"]
    for testid, key in (("asked", "asked"), ("onTime", "onTime"), ("late", "late"),
                        ("overdueCount", "overdue")):
        figure = page.locator(f"[data-testid=count-{testid}] .figure").inner_text()
        assert int(figure) == counts[key], testid
    assert (counts["asked"], counts["late"], counts["overdue"]) == (5, 3, 2)

    # The overdue tasks: the national ones past their deadline and Hà Nội's.
    tasks = page.locator("[data-testid=overdue-task]")
    assert sorted(tasks.nth(i).get_attribute("data-code") for i in range(tasks.count())) == \
        sorted(t["code"] for t in overview["overdueTasks"])
    hanoi_task = next(t for t in overview["overdueTasks"] if t["unit"] == HA_NOI)
    row = page.locator(f"[data-testid=overdue-task][data-code='{hanoi_task['code']}']")
    assert row.locator("[data-testid=task-name]").inner_text() == hanoi_task["name"]["vi"]
    assert row.locator("[data-testid=task-unit]").inner_text().startswith("Hà Nội")
    assert row.locator("[data-testid=task-deadline]").inner_text() == day(hanoi_task["deadline"])
    assert row.locator("[data-testid=task-progress]").inner_text().strip() == "10%"

    # The indicators' bars: the values the units submitted.
    bars = page.locator(f"[data-testid=indicator-chart][data-code='{COVERAGE}'] rect")
    coverage = next(i for i in national["indicators"] if i["code"] == COVERAGE)
    assert {bars.nth(i).get_attribute("data-unit"): float(bars.nth(i).get_attribute("data-value"))
            for i in range(bars.count())} == coverage["values"]

    # Đà Nẵng, clicked on the map: its report, tasks and level, and its report's link.
    danang = next(u for u in overview["units"] if u["code"] == DA_NANG)
    point_on_map(page, "programme", *danang["point"])
    page.locator(f"[data-testid=detail-name][data-unit='{DA_NANG}']").wait_for()
    wait(page)
    panel = page.locator("[data-testid=detail]")
    assert danang["name"] in panel.locator("[data-testid=detail-name]").inner_text()
    assert panel.locator("[data-testid=detail-category]").get_attribute("data-key") == "late"
    assert panel.locator("[data-testid=detail-status]").inner_text() == \
        danang["report"]["statusTitle"]["vi"]
    assert panel.locator("[data-testid=detail-submitted]").inner_text() == \
        moment(danang["report"]["submittedAt"])
    assert danang["report"]["lateDays"] >= 30
    assert panel.locator("[data-testid=detail-late]").inner_text() == \
        f"trễ {danang['report']['lateDays']} ngày"
    assert panel.locator("[data-testid=detail-overdue]").count() == 0
    figures = {k: panel.locator(f"[data-testid=detail-tasks-{k}]").inner_text()
               for k in ("count", "done", "overdue", "atrisk", "progress")}
    assert danang["tasks"] == {"count": 3, "done": 1, "overdue": 0, "atRisk": 1,
                               "progress": pytest.approx(230 / 3)}
    assert figures == {"count": "3", "done": "1", "overdue": "0", "atrisk": "1",
                       "progress": "76,7%"}
    assert panel.locator("[data-testid=detail-level]").get_attribute("data-level") == "0"
    assert danang["level"]["name"]["vi"] in panel.locator("[data-testid=detail-level]").inner_text()
    link = panel.locator("[data-testid=detail-report-link]")
    assert link.get_attribute("href") == f"/program/reports/{PAST}/{DA_NANG}"
    assert mine["status"] == "submitted" and mine["unit"] == DA_NANG
    selected = page.locator(f"[data-testid=status-row][data-unit='{DA_NANG}']")
    assert "selected" in (selected.get_attribute("class") or "")

    # Hồ Chí Minh, which sent nothing: overdue by the days past due, no report to open.
    hcm = next(u for u in overview["units"] if u["code"] == HCM)
    point_on_map(page, "programme", *hcm["point"])
    page.locator(f"[data-testid=detail-name][data-unit='{HCM}']").wait_for()
    wait(page)
    assert panel.locator("[data-testid=detail-overdue]").inner_text() == \
        f"quá hạn {hcm['report']['daysOverdue']} ngày"
    assert hcm["report"]["daysOverdue"] == 30
    assert panel.locator("[data-testid=detail-report-link]").count() == 0
    assert panel.locator("[data-testid=detail-tasks-count]").inner_text() == "0"
    assert panel.locator("[data-testid=detail-level]").get_attribute("data-level") == ""
    assert errors == []


def test_measures_requests_english_and_the_docx(programme: str, browser: Any) -> None:
    from dothi.web.browser import open_page

    with httpx.Client(base_url=programme, timeout=20) as http:
        past = ok(http.get("/program/overview", params={"request": PAST}))
        future = ok(http.get("/program/overview", params={"request": FUTURE}))
        future_rows = ok(http.get(f"/program/requests/{FUTURE}/status"))

    page, errors = open_page(browser, programme, "/program/dashboard", "programmeReady")
    page.set_viewport_size({"width": 1440, "height": 1000})
    wait(page)
    measure = page.locator("[data-testid=measure]")

    # Task progress: Đà Nẵng's mean in the 60-79 class, Hà Nội's in the first, the rest grey.
    measure.select_option("progress")
    wait(page)
    shown = check_map(page, past, "progress", (DA_NANG, HA_NOI, HUE))
    assert (shown[DA_NANG], shown[HA_NOI], shown[HUE]) == ("p3", "p0", "none")
    # The assessed level: Đà Nẵng below level 1, the others not assessed.
    measure.select_option("level")
    wait(page)
    shown = check_map(page, past, "level", (DA_NANG, HUE))
    assert (shown[DA_NANG], shown[HUE]) == ("level0", "none")

    # The request not yet due: on time, a draft, not yet submitted, and not asked.
    measure.select_option("status")
    wait(page)
    page.locator("[data-testid=request]").select_option(FUTURE)
    wait(page)
    shown = check_map(page, future, "status", (DA_NANG, HA_NOI, CAN_THO, HCM))
    assert (shown[DA_NANG], shown[HA_NOI], shown[CAN_THO], shown[HCM]) == \
        ("onTime", "draft", "pending", "notAsked")
    check_table(page, future_rows, "vi")
    assert page.locator("[data-testid=count-overdueCount] .figure").inner_text() == "0"

    # In English: the headings, the statuses the API titles, the legend, the link.
    page.locator("[data-testid=lang]").click()
    wait(page)
    assert page.locator("h1").inner_text() == \
        "Sustainable smart city development programme — national dashboard"
    assert page.locator("[data-testid=lang]").inner_text() == "VI"
    check_table(page, future_rows, "en")
    assert page.locator("[data-testid=legend-item][data-key=onTime]").inner_text().startswith(
        "Submitted on time")
    assert page.locator("#tasks th").first.inner_text() == "Code"
    docx = page.locator("[data-testid=docx]")
    assert docx.get_attribute("href") == f"/program/requests/{FUTURE}/national.docx?lang=en"
    with page.expect_download() as info:
        docx.click()
    assert info.value.suggested_filename == f"dothi-{FUTURE}-en.docx"
    assert Path(info.value.path()).read_bytes()[:2] == b"PK"
    assert errors == []
