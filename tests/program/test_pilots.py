"""Calls for smart-city pilots over HTTP, on both store backends: candidates ranked on the
indicator values entered for their ward codes (scores worked out by hand below), lower
is better, missing values, ties, the budget pass; the decision recorded with its ranking
frozen, its justification required, a second one refused; bad input refused with nothing
stored; coordinators only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.program.pilots import rank
from tests.program.conftest import OFFICIAL

COVERAGE = "EC: ICT: ICT: 4C"  # wireless broadband coverage, %: higher is better
PM25 = "EN: EN: AQ: 1C"  # fine particles, ug/m3: lower is better
BA_DINH, HAI_VAN, PHU_XUAN, NGOC_HA = "00004", "20194", "19753", "00008"
CALL: dict[str, Any] = {
    "title": {"vi": "Thí điểm đô thị thông minh cấp phường 2026",
              "en": "Ward-level smart-city pilots 2026"},
    "period": "2026", "budget": 10_000_000_000,
    "criteria": [{"kpi": COVERAGE, "weight": 0.4, "direction": "higher"},
                 {"kpi": PM25, "weight": 0.3, "direction": "lower"}],
    "readinessWeight": 0.3,
    "candidates": [
        {"area": BA_DINH, "readiness": 80, "cost": 6_000_000_000, "note": "Có trung tâm IOC"},
        {"area": HAI_VAN, "readiness": 60, "cost": 3_000_000_000},
        {"area": PHU_XUAN, "readiness": 100, "cost": 5_000_000_000}]}
# (coverage %, PM2.5) of the 2026 values entered for each ward.
VALUES = {BA_DINH: (90, 20), HAI_VAN: (70, 40), PHU_XUAN: (80, 30)}


def enter(http: TestClient, area: str, code: str, value: float, period: str = "2026") -> None:
    # Coverage is a percentage: over a denominator of 100 its value is the numerator.
    r = http.post("/kpi/values", headers=OFFICIAL, json={
        "city": area, "period": period, "code": code, "numerator": value,
        "denominator": 100 if code == COVERAGE else None,
        "evidence": f"https://{area}.example.vn/so-lieu-{period}.pdf"})
    assert r.status_code == 201 and r.json()["value"] == value, r.text


def enter_all(http: TestClient) -> None:
    for area, (coverage, pm25) in VALUES.items():
        enter(http, area, COVERAGE, coverage)
        enter(http, area, PM25, pm25)


def open_call(http: TestClient, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.put(f"/program/pilots/{key}", headers=OFFICIAL, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


def by_area(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["area"]: c for c in view["ranking"]["candidates"]}


def test_candidates_are_ranked_by_hand_computed_scores(http: TestClient) -> None:
    enter_all(http)
    # A value of another period, and one of a ward that is no candidate, count for nothing.
    enter(http, HAI_VAN, COVERAGE, 100, period="2025")
    enter(http, NGOC_HA, COVERAGE, 10)
    r = http.put("/program/pilots/phuong-2026", headers=OFFICIAL, json=CALL)
    assert r.status_code == 201 and r.headers["location"] == "/program/pilots/phuong-2026"
    view = http.get("/program/pilots/phuong-2026").json()
    assert view["status"] == "open" and view["ranking"]["frozen"] is False
    ranked = view["ranking"]["candidates"]
    # Coverage 90/70/80 -> 1, 0, 0.5; PM2.5 20/40/30, lower better -> 1, 0, 0.5.
    # Ba Đình   (0.4·1   + 0.3·1   + 0.3·0.8) / 1.0 = 0.94
    # Phú Xuân  (0.4·0.5 + 0.3·0.5 + 0.3·1.0) / 1.0 = 0.65
    # Hải Vân   (0.4·0   + 0.3·0   + 0.3·0.6) / 1.0 = 0.18
    assert [(c["area"], c["rank"]) for c in ranked] == [(BA_DINH, 1), (PHU_XUAN, 2),
                                                         (HAI_VAN, 3)]
    assert [c["score"] for c in ranked] == pytest.approx([0.94, 0.65, 0.18])
    assert not any(c["tie"] or c["missing"] for c in ranked)
    first = ranked[0]
    assert (first["name"], first["province"]) == ("Phường Ba Đình", "Thành phố Hà Nội")
    assert [(p["kpi"], p["raw"], p["normalised"]) for p in first["criteria"]] == [
        (COVERAGE, 90, 1), (PM25, 20, 1)]
    assert first["criteria"][0]["entity"] == \
        "urn:ngsi-ld:KeyPerformanceIndicator:00004:EC-ICT-ICT-4C:2026"
    assert [p["normalised"] for p in by_area(view)[PHU_XUAN]["criteria"]] == [0.5, 0.5]
    assert by_area(view)[HAI_VAN]["criteria"][0]["raw"] == 70  # not 2025's 100
    # Budget 10 bn: Ba Đình (6) funded; Phú Xuân would make 11, skipped; Hải Vân (3) fits.
    assert [c["budgetStatus"] for c in ranked] == ["funded", "overBudget", "funded"]
    assert (view["ranking"]["committed"], view["ranking"]["remaining"]) == (
        9_000_000_000, 1_000_000_000)
    method = view["ranking"]["method"]
    assert list(method) == ["vi", "en"] and "min–max" in method["vi"] + method["en"]
    assert view["title"]["vi"].startswith("Thí điểm")
    assert http.get("/program/pilots").json() == [{
        "id": "urn:ngsi-ld:PilotSelection:phuong-2026", "key": "phuong-2026",
        "title": CALL["title"], "period": "2026", "status": "open"}]


def test_lower_is_better_reverses_the_order(http: TestClient) -> None:
    enter_all(http)
    for direction, expected in (("lower", [BA_DINH, PHU_XUAN, HAI_VAN]),
                                ("higher", [HAI_VAN, PHU_XUAN, BA_DINH])):
        body = {**CALL, "readinessWeight": 0,
                "criteria": [{"kpi": PM25, "weight": 1, "direction": direction}]}
        ranked = open_call(http, f"pm-{direction}", body)["ranking"]["candidates"]
        assert [c["area"] for c in ranked] == expected
        assert [c["score"] for c in ranked] == [1, 0.5, 0]


def test_a_missing_value_scores_zero_and_is_named(http: TestClient) -> None:
    enter_all(http)
    enter(http, NGOC_HA, PM25, 5, period="2025")  # the best PM2.5, but not of 2026
    body = copy.deepcopy(CALL)
    body["candidates"].append({"area": NGOC_HA, "readiness": 100, "cost": 1})
    ranked = open_call(http, "thieu-so-lieu", body)["ranking"]["candidates"]
    missing = next(c for c in ranked if c["area"] == NGOC_HA)
    # Only readiness counts: 0.3·1.0 / 1.0; a missing lower-is-better value is no best.
    assert missing["score"] == pytest.approx(0.3)
    assert missing["missing"] == [COVERAGE, PM25]
    assert [(p["raw"], p["normalised"]) for p in missing["criteria"]] == [(None, 0), (None, 0)]
    # The others are normalised among themselves as before.
    assert [c["area"] for c in ranked] == [BA_DINH, PHU_XUAN, NGOC_HA, HAI_VAN]
    assert [c["score"] for c in ranked] == pytest.approx([0.94, 0.65, 0.3, 0.18])


def test_ties_share_a_rank_and_the_cheaper_comes_first(http: TestClient) -> None:
    for area, coverage in ((BA_DINH, 80), (HAI_VAN, 80), (PHU_XUAN, 60), (NGOC_HA, 80)):
        enter(http, area, COVERAGE, coverage)
    body = {**CALL, "budget": 8, "readinessWeight": 0.5,
            "criteria": [{"kpi": COVERAGE, "weight": 0.5, "direction": "higher"}],
            "candidates": [{"area": BA_DINH, "readiness": 50, "cost": 5},
                           {"area": HAI_VAN, "readiness": 50, "cost": 4},
                           {"area": PHU_XUAN, "readiness": 50, "cost": 3},
                           {"area": NGOC_HA, "readiness": 40, "cost": 1}]}
    ranked = open_call(http, "dong-hang", body)["ranking"]["candidates"]
    # (0.5·1 + 0.5·0.5) = 0.75 for the two at 80 with readiness 50; Ngọc Hà 0.7, Phú Xuân
    # 0.25: ranks 1, 1, 3, 4.
    assert [(c["area"], c["rank"], c["tie"]) for c in ranked] == [
        (HAI_VAN, 1, True), (BA_DINH, 1, True), (NGOC_HA, 3, False), (PHU_XUAN, 4, False)]
    assert [c["score"] for c in ranked] == pytest.approx([0.75, 0.75, 0.7, 0.25])
    # Budget 8: 4 funded, 4+5 over, 4+1 funded, 5+3 funded.
    assert [c["budgetStatus"] for c in ranked] == ["funded", "overBudget", "funded", "funded"]


def test_all_equal_values_normalise_to_one_and_rounding_makes_ties() -> None:
    call = {"period": "2026", "budget": 10, "readinessWeight": 0.3,
            "criteria": [{"kpi": "a", "weight": 0.1, "direction": "higher"},
                         {"kpi": "b", "weight": 0.2, "direction": "lower"}],
            "candidates": [{"area": "x", "name": "X", "province": "P", "readiness": 0,
                            "cost": 1},
                           {"area": "y", "name": "Y", "province": "P", "readiness": 100,
                            "cost": 2}]}
    # x is best on both criteria: (0.1 + 0.2) / 0.6, which is 0.5000000000000001 in
    # floating point; y has only readiness: 0.3 / 0.6 = 0.5. They are one score.
    ranked = rank(call, {"x": {"a": (9.0, "e1"), "b": (1.0, "e2")},
                         "y": {"a": (3.0, "e3"), "b": (7.0, "e4")}})["candidates"]
    assert [(c["area"], c["rank"], c["score"], c["tie"]) for c in ranked] == [
        ("x", 1, 0.5, True), ("y", 1, 0.5, True)]
    equal = rank(call, {"x": {"a": (5.0, "e1"), "b": (5.0, "e2")},
                        "y": {"a": (5.0, "e3"), "b": (5.0, "e4")}})["candidates"]
    assert [[p["normalised"] for p in c["criteria"]] for c in equal] == [[1, 1], [1, 1]]
    assert [c["area"] for c in equal] == ["y", "x"]  # readiness decides


def test_a_decision_is_recorded_with_its_ranking_frozen(http: TestClient) -> None:
    enter_all(http)
    open_call(http, "phuong-2026", CALL)
    decision = {"selected": [BA_DINH, PHU_XUAN], "decisionNumber": "125/QĐ-BXD",
                "date": "2026-03-15"}
    # Phú Xuân is over the budget in the ranking: its selection must be justified.
    r = http.post("/program/pilots/phuong-2026/decision", headers=OFFICIAL, json=decision)
    assert r.status_code == 400 and PHU_XUAN in r.json()["detail"], r.text
    assert http.get("/program/pilots/phuong-2026").json()["status"] == "open"
    r = http.post("/program/pilots/phuong-2026/decision", headers=OFFICIAL, json={
        **decision, "note": "Tỉnh cam kết đối ứng 1 tỷ đồng"})
    assert r.status_code == 201, r.text
    done = r.json()
    assert done["status"] == "decided" and done["ranking"]["frozen"] is True
    assert done["decision"]["selected"] == [BA_DINH, PHU_XUAN]
    assert done["decision"]["outsideFunded"] == [PHU_XUAN]
    assert done["decision"]["selectedCost"] == 11_000_000_000
    assert done["decision"]["decidedBy"] == "official#1"
    assert (done["decision"]["decisionNumber"], done["decision"]["date"]) == (
        "125/QĐ-BXD", "2026-03-15")
    entity = http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:PilotSelection:phuong-2026",
                      params={"options": "keyValues"}).json()
    assert entity["status"] == "decided"
    assert [c["area"] for c in entity["decision"]["ranking"]["candidates"]] == [
        BA_DINH, PHU_XUAN, HAI_VAN]

    # Hải Vân's coverage improves: a new call ranks it first, the decided one does not move.
    enter(http, HAI_VAN, COVERAGE, 100)
    enter(http, HAI_VAN, PM25, 10)
    assert open_call(http, "lan-2", CALL)["ranking"]["candidates"][0]["area"] == HAI_VAN
    kept = http.get("/program/pilots/phuong-2026").json()
    assert [c["area"] for c in kept["ranking"]["candidates"]] == [BA_DINH, PHU_XUAN, HAI_VAN]
    assert by_area(kept)[HAI_VAN]["score"] == pytest.approx(0.18)

    again = http.post("/program/pilots/phuong-2026/decision", headers=OFFICIAL,
                      json={**decision, "selected": [BA_DINH], "decisionNumber": "126"})
    assert again.status_code == 409, again.text
    replaced = http.put("/program/pilots/phuong-2026", headers=OFFICIAL, json=CALL)
    assert replaced.status_code == 409, replaced.text
    assert http.get("/program/pilots/phuong-2026").json()["decision"]["decisionNumber"] == \
        "125/QĐ-BXD"


def test_funded_selection_needs_no_note_and_an_open_call_can_be_replaced(
        http: TestClient) -> None:
    enter_all(http)
    first = open_call(http, "phuong-2026", CALL)
    assert first["revision"] == 1
    cheaper = {**CALL, "budget": 20_000_000_000}
    r = http.put("/program/pilots/phuong-2026", headers=OFFICIAL, json=cheaper)
    assert r.status_code == 200 and r.json()["revision"] == 2, r.text
    assert {c["budgetStatus"] for c in r.json()["ranking"]["candidates"]} == {"funded"}
    r = http.post("/program/pilots/phuong-2026/decision", headers=OFFICIAL, json={
        "selected": [PHU_XUAN, BA_DINH], "decisionNumber": "7/QĐ", "date": "2026-01-02"})
    assert r.status_code == 201 and r.json()["decision"]["outsideFunded"] == [], r.text
    assert "note" not in r.json()["decision"]


def bad(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(CALL)
    change(body)
    return body


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for name in parents:
            target = target[int(name)] if name.isdigit() else target[name]
        if value is _DROP:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return change


_DROP = object()


@pytest.mark.parametrize(("change", "says"), [
    (_set("title", "Thí điểm"), "title must be an object"),
    (_set("title.en", _DROP), "title.en"),
    (_set("title.fr", "Pilotes"), "Unknown members"),
    (_set("period", "next year"), "period"),
    (_set("period", 2026), "period must be a text"),
    (_set("budget", 0), "budget must be a number > 0"),
    (_set("budget", "lots"), "budget"),
    (_set("budget", True), "budget"),
    (_set("criteria", []), "criteria must be a list"),
    (_set("criteria.0.kpi", "XX: 1"), "no indicator"),
    (_set("criteria.0.kpi", [COVERAGE]), "no indicator"),
    (_set("criteria.0.weight", -0.1), "criteria[0].weight"),
    (_set("criteria.1.direction", "up"), "criteria[1].direction"),
    (_set("criteria.1.kpi", COVERAGE), "twice"),
    (_set("criteria.0.colour", "red"), "Unknown members"),
    (_set("readinessWeight", _DROP), "readinessWeight"),
    (lambda b: b.update(readinessWeight=0, criteria=[{**c, "weight": 0} for c in
                                                     b["criteria"]]), "add up to 0"),
    (_set("candidates.0.area", "99999"), "not the code of a ward"),
    (_set("candidates.0.area", 20194), "not the code of a ward"),
    (_set("candidates.0.readiness", 101), "candidates[0].readiness"),
    (_set("candidates.1.readiness", -1), "candidates[1].readiness"),
    (_set("candidates.2.cost", 0), "candidates[2].cost"),
    (_set("candidates.0.note", ""), "candidates[0].note"),
    (_set("candidates.2.area", BA_DINH), "twice"),
    (lambda b: b.update(candidates=b["candidates"][:1]), "candidates must be a list of 2"),
    (_set("colour", "red"), "Unknown members"),
])
def test_bad_calls_are_refused_and_nothing_is_stored(
        http: TestClient, change: Callable[[dict[str, Any]], None], says: str) -> None:
    r = http.put("/program/pilots/xau", headers=OFFICIAL, json=bad(change))
    assert r.status_code == 400 and says in r.json()["detail"], r.text
    assert r.json()["type"].endswith("BadRequestData")
    assert http.get("/program/pilots/xau").status_code == 404
    assert http.get("/program/pilots").json() == []


def test_bad_keys_and_bodies_are_refused(http: TestClient) -> None:
    r = http.put("/program/pilots/" + "k" * 65, headers=OFFICIAL, json=CALL)
    assert r.status_code == 400 and "key" in r.json()["detail"], r.text
    r = http.put("/program/pilots/x.y", headers=OFFICIAL, json=CALL)
    assert r.status_code == 400, r.text
    r = http.put("/program/pilots/k", headers=OFFICIAL, json=[CALL])
    assert r.status_code == 400, r.text
    assert http.get("/program/pilots").json() == []


@pytest.mark.parametrize(("change", "says"), [
    ({"selected": []}, "selected must be a list"),
    ({"selected": [NGOC_HA]}, "not a candidate"),
    ({"selected": [BA_DINH, BA_DINH]}, "twice"),
    ({"selected": [[BA_DINH]]}, "not a candidate"),
    ({"selected": BA_DINH}, "selected must be a list"),
    ({"date": "2026-02-30"}, "date"),
    ({"date": "15/03/2026"}, "date"),
    ({"decisionNumber": " "}, "decisionNumber"),
    ({"signedBy": "Bộ trưởng"}, "Unknown members"),
])
def test_bad_decisions_are_refused_and_the_call_stays_open(
        http: TestClient, change: dict[str, Any], says: str) -> None:
    open_call(http, "phuong-2026", CALL)
    body = {"selected": [BA_DINH], "decisionNumber": "125/QĐ-BXD", "date": "2026-03-15",
            **change}
    r = http.post("/program/pilots/phuong-2026/decision", headers=OFFICIAL, json=body)
    assert r.status_code == 400 and says in r.json()["detail"], r.text
    view = http.get("/program/pilots/phuong-2026").json()
    assert view["status"] == "open" and "decision" not in view


def test_only_coordinators_open_and_decide(http: TestClient) -> None:
    assert http.put("/program/pilots/k", json=CALL).status_code == 401
    assert http.put("/program/pilots/k", json=CALL,
                    headers={"Authorization": "Bearer guess"}).status_code == 401
    assert http.get("/program/pilots").json() == []
    open_call(http, "k", CALL)
    r = http.post("/program/pilots/k/decision", json={
        "selected": [BA_DINH], "decisionNumber": "1", "date": "2026-01-01"})
    assert r.status_code == 401, r.text
    assert http.get("/program/pilots/k").json()["status"] == "open"
    assert http.get("/program/pilots/nothing").status_code == 404
    assert http.post("/program/pilots/nothing/decision", headers=OFFICIAL, json={
        "selected": [BA_DINH], "decisionNumber": "1", "date": "2026-01-01"}
    ).status_code == 404
