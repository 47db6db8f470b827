"""A city's self-assessment over HTTP, on both store backends: officials declare the
criteria no indicator decides, with their evidence, and submit; an assessor returns it
with comments and a rejected criterion, the city corrects, submits again and the assessor
accepts. Each step is a version; wrong roles, wrong states and bad input are refused and
change nothing; two cities are then ranked and the report comes out as a workbook."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

CITY = {"Authorization": "Bearer city-officer"}
ASSESSOR = {"Authorization": "Bearer ministry-assessor"}
FOUNDATION = ("DT-1.01", "DT-1.02", "DT-1.04", "DT-1.05", "DT-1.08")
# Indicator values that pass level 1's coverage and Wi-Fi criteria, and fail PM2.5's.
VALUES = [("EC: ICT: ICT: 4C", 97, 100), ("EC: ICT: ICT: 5C", 120, None),
          ("EN: EN: AQ: 1C", 31.2, None)]


@pytest.fixture
def http(database_url: Callable[[str], str]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        official_keys="city-officer", assessor_keys="ministry-assessor")
    with TestClient(create_app(settings)) as client:
        yield client


def enter_values(http: TestClient, city: str, values: list[tuple[str, float, Any]]) -> None:
    for code, numerator, denominator in values:
        r = http.post("/kpi/values", headers=CITY, json={
            "city": city, "period": "2025", "code": code, "numerator": numerator,
            "denominator": denominator, "evidence": f"https://{city}.gov.vn/so-lieu.pdf"})
        assert r.status_code == 201, r.text


def declare(http: TestClient, city: str, codes: tuple[str, ...]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for code in codes:
        r = http.put(f"/kpi/assessment/answers/{code}", params={"city": city, "period": 2025},
                     headers=CITY, json={"met": True,
                                         "evidence": f"https://{city}.gov.vn/{code}.pdf"})
        assert r.status_code == 200, r.text
        state = r.json()
    return state


def test_submit_return_correct_accept(http: TestClient) -> None:
    where = {"city": "hue", "period": "2025"}
    fresh = http.get("/kpi/assessment", params=where).json()
    assert (fresh["status"], fresh["version"], fresh["level"]) == ("draft", 0, 0)
    assert fresh["outcomes"]["DT-1.03"]["reason"] == "no-value"

    enter_values(http, "hue", VALUES)
    # Each value carries its target, from the framework's criterion on it.
    kept = http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:KeyPerformanceIndicator:hue:"
                    "EC-ICT-ICT-4C:2025", params={"options": "keyValues"}).json()
    assert kept["kpiTarget"] == {"atLeast": 95.0} and kept["kpiValue"] == 97.0
    listed = {i["code"]: i for i in http.get("/kpi/values", params={"city": "hue"}).json()[
        "indicators"]}
    assert listed["EN: EN: AQ: 1C"]["target"] == {"atMost": 25.0}
    assert listed["EN: EN: AQ: 1C"]["nameVi"] == "Ô nhiễm không khí"
    state = declare(http, "hue", FOUNDATION)
    assert state["version"] == len(FOUNDATION)
    assert state["outcomes"]["DT-1.03"] == {"passed": True, "reason": "met", "value": 97.0,
                                            "evidence": None}
    assert state["outcomes"]["DT-1.07"]["reason"] == "below-target"
    assert state["level"] == 1 and state["levelName"]["vi"] == "Xây dựng nền tảng"
    # Level 1's five criteria of 8 passed, and DT-1.06 (Wi-Fi) of the infrastructure's 4.
    assert state["scores"]["infrastructure"] == 75.0

    r = http.post("/kpi/assessment/review", params=where, headers=ASSESSOR,
                  json={"decision": "accept"})
    assert r.status_code == 409, "a draft is not reviewed"
    assert http.post("/kpi/assessment/submit", params=where).status_code == 401
    assert http.post("/kpi/assessment/submit", params=where,
                     headers=ASSESSOR).status_code == 403
    r = http.post("/kpi/assessment/submit", params=where, headers=CITY)
    assert r.status_code == 200 and r.json()["status"] == "submitted"

    # Submitted, it is frozen: no more answers, and a new value changes nothing.
    r = http.put("/kpi/assessment/answers/DT-2.02", params=where, headers=CITY,
                 json={"met": True, "evidence": "https://hue.gov.vn/open-data"})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 409
    enter_values(http, "hue", [("EN: EN: AQ: 1C", 20, None)])
    assert http.get("/kpi/assessment", params=where).json()["outcomes"]["DT-1.07"][
        "value"] == 31.2

    for bad in ({"decision": "maybe"}, {"decision": "return"},
                {"decision": "return", "rejected": {"DT-9.99": "no such criterion"}},
                {"decision": "accept", "extra": 1}):
        r = http.post("/kpi/assessment/review", params=where, headers=ASSESSOR, json=bad)
        assert r.status_code == 400, bad
    assert http.post("/kpi/assessment/review", params=where, headers=CITY,
                     json={"decision": "accept"}).status_code == 403
    r = http.post("/kpi/assessment/review", params=where, headers=ASSESSOR, json={
        "decision": "return", "comments": "Thiếu quyết định phê duyệt đề án",
        "rejected": {"DT-1.05": "The link is the draft, not the approved scheme"}})
    assert r.status_code == 200, r.text
    returned = r.json()
    assert returned["status"] == "returned"
    assert returned["outcomes"]["DT-1.05"]["reason"] == "rejected"
    assert returned["level"] == 0, "a required criterion rejected loses the level"
    # Returned, the values are live again: PM2.5 is now 20, under the target.
    assert returned["outcomes"]["DT-1.07"]["reason"] == "met"

    declare(http, "hue", ("DT-1.05",))
    http.post("/kpi/assessment/submit", params=where, headers=CITY)
    r = http.post("/kpi/assessment/review", params=where, headers=ASSESSOR,
                  json={"decision": "accept", "comments": "Đạt"})
    accepted = r.json()
    assert accepted["status"] == "accepted" and accepted["rejected"] == {}
    assert accepted["level"] == 1
    r = http.put("/kpi/assessment/answers/DT-2.02", params=where, headers=CITY,
                 json={"met": True, "evidence": "https://hue.gov.vn/open-data"})
    assert r.status_code == 409, "an accepted assessment is closed"

    history = http.get("/kpi/assessment/versions", params=where).json()
    assert [v["action"] for v in history] == ["answer"] * 5 + [
        "submit", "return", "answer", "submit", "accept"]
    assert [v["version"] for v in history] == list(range(1, 11))
    assert history[6]["comments"] == "Thiếu quyết định phê duyệt đề án"
    assert history[6]["actor"] == "assessor#1"
    assert history[-1]["level"] == 1


def test_bad_answers_change_nothing(http: TestClient) -> None:
    where = {"city": "hue", "period": "2025"}
    for code, body in (("DT-1.01", {"met": True}),  # no evidence
                       ("DT-1.01", {"met": True, "evidence": "file:///etc/passwd"}),
                       ("DT-1.01", {"met": "yes", "evidence": "https://a.vn/x"}),
                       ("DT-1.03", {"met": True, "evidence": "https://a.vn/x"}),  # a KPI's
                       ("DT-9.99", {"met": True, "evidence": "https://a.vn/x"}),
                       ("DT-1.01", {"met": True, "evidence": "https://a.vn/x", "by": "me"})):
        r = http.put(f"/kpi/assessment/answers/{code}", params=where, headers=CITY,
                     json=body)
        assert r.status_code == 400, (code, body)
    for params in ({"city": "hue"}, {"city": "hue", "period": "năm nay"},
                   {"city": "hue\"", "period": "2025"}):
        assert http.get("/kpi/assessment", params=params).status_code == 400
    assert http.get("/kpi/assessment/versions", params=where).json() == []
    assert http.get("/kpi/assessment", params=where).json()["version"] == 0


def test_two_cities_ranked_and_the_workbook(http: TestClient) -> None:
    from openpyxl import load_workbook

    for city, extra in (("hue", ()), ("cantho", ("DT-2.02", "DT-2.03"))):
        enter_values(http, city, VALUES)
        declare(http, city, FOUNDATION + extra)
        http.post("/kpi/assessment/submit", params={"city": city, "period": 2025},
                  headers=CITY)
        r = http.post("/kpi/assessment/review", params={"city": city, "period": 2025},
                      headers=ASSESSOR, json={"decision": "accept"})
        assert r.json()["status"] == "accepted"
    declare(http, "danang", ("DT-1.01",))  # a draft is listed, not ranked

    ranking = http.get("/kpi/ranking", params={"period": 2025}).json()
    assert [(r["city"], r["rank"]) for r in ranking["rows"]] == [("cantho", 1), ("hue", 2)]
    assert ranking["notRanked"] == [{"city": "danang", "status": "draft"}]
    cantho = ranking["rows"][0]
    framework = http.get("/kpi/framework").json()
    assert len(ranking["scenarios"]) == 2 + 2 * len(framework["dimensions"])
    assert cantho["sensitivity"]["best"] == 1
    assert set(cantho["sensitivity"]["ranks"]) == {s["id"] for s in ranking["scenarios"]}
    assert cantho["composite"] > ranking["rows"][1]["composite"]
    assert "weighted mean" in ranking["method"]["en"]

    r = http.get("/kpi/report.xlsx", params={"city": "hue", "period": 2025, "lang": "en"})
    assert r.status_code == 200
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["Summary", "Criteria", "Trend", "Indicators"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row}
    assert summary["Level reached"] == "1: Building the foundation"
    assert summary["Status"] == "Accepted"
    criteria = {row[0]: row for row in book["Criteria"].iter_rows(min_row=2, values_only=True)}
    assert criteria["DT-1.03"][5] == 97 and criteria["DT-1.03"][7] == "Passed"
    assert criteria["DT-1.07"][8] == "target not reached"
    r = http.get("/kpi/report.xlsx", params={"city": "hue", "period": 2025})
    vi = load_workbook(io.BytesIO(r.content))
    assert vi.sheetnames[0] == "Tổng quan"
    assert http.get("/kpi/report.xlsx", params={"city": "hue", "period": 2025,
                                                "lang": "fr"}).status_code == 400
