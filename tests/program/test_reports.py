"""Periodic reports on both backends: the annual calendar, a unit's draft checked against
the template at submission, lateness against the end of the due day, return for
correction and acceptance, the units overdue on a request (told to a subscriber once),
the consolidated national report and its DOCX, the weekly digest; and who may do what
(a province's reporter only for its own province)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from docx import Document
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, key_hash
from dothi.kpi.compute import TZ
from dothi.program.reports import due_end
from dothi.program.tasks import today
from dothi.settings import Settings
from tests.program.conftest import OFFICIAL
from tests.receiver import receiver

TENANT = "urn:ngsi-ld:tenant:default"
TEXTS = {"overview": "Năm 2026 thành phố vận hành nền tảng dữ liệu đô thị và IOC.",
         "difficulties": "Thiếu nhân lực công nghệ."}
VALUES = {"EC: ICT: ICT: 4C": 97, "EN: EN: AQ: 1C": 22.5}


def day(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


def ask(http: TestClient, key: str, due: str, units: list[str]) -> None:
    r = http.post("/program/requests", headers=OFFICIAL, json={
        "key": key, "template": "annual", "period": "2026", "dueDate": due, "units": units})
    assert r.status_code == 201, r.text


def write(http: TestClient, key: str, unit: str, sections: dict | None = None,
          indicators: dict | None = None, headers: dict | None = None) -> int:
    return http.put(f"/program/reports/{key}/{unit}", headers=headers or OFFICIAL, json={
        "sections": TEXTS if sections is None else sections,
        "indicators": VALUES if indicators is None else indicators}).status_code


def test_the_calendar_asks_every_province_for_the_annual_report(http: TestClient) -> None:
    r = http.post("/program/calendar/2026", headers=OFFICIAL)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["key"], made["dueDate"], made["kind"]) == ("annual-2026", "2026-12-15",
                                                             "annual")
    assert len(made["units"]) == 34 and "48" in made["units"]
    assert made["title"]["vi"].endswith("2026")
    assert http.post("/program/calendar/2026", headers=OFFICIAL).status_code == 409
    assert http.post("/program/calendar/1999", headers=OFFICIAL).status_code == 400
    sections = http.get("/program/requests/annual-2026").json()["templateSections"]
    assert [s["key"] for s in sections["sections"]] == [
        "overview", "indicators", "tasks", "difficulties", "proposals"]
    pm = sections["sections"][1]["indicatorDetails"][2]
    assert (pm["code"], pm["unit"]) == ("EN: EN: AQ: 1C", "ug/m3 (annual mean) per pollutant")
    assert pm["nameVi"] == "Ô nhiễm không khí"


def test_a_request_with_bad_input_is_refused(http: TestClient) -> None:
    good = {"key": "adhoc-1", "template": "annual", "period": "2026", "dueDate": day(5),
            "units": ["48"]}
    for bad in ({"key": "a b"}, {"template": "weekly"}, {"period": "last year"},
                {"dueDate": "15/12/2026"}, {"units": ["48", "48"]}, {"units": "48"},
                {"kind": "monthly"}, {"colour": 1}):
        assert http.post("/program/requests", headers=OFFICIAL, json={**good, **bad}
                         ).status_code == 400, bad
    assert http.get("/program/requests").json() == []


def test_a_report_is_checked_submitted_returned_and_accepted(http: TestClient) -> None:
    ask(http, "annual-2026", day(10), ["48", "46"])
    assert write(http, "annual-2026", "79") == 400  # not asked
    assert write(http, "annual-2026", "48", indicators={"EC: ICT: ICT: 4C": "97%"}) == 400
    assert write(http, "annual-2026", "48", indicators={"SC: SH: SA: 9C": 1}) == 400
    assert write(http, "annual-2026", "48", sections={"summary": "x"}) == 400
    assert write(http, "annual-2026", "48", sections={"overview": "Ngắn"},
                 indicators={"EC: ICT: ICT: 4C": 97}) == 200
    r = http.post("/program/reports/annual-2026/48/submit", headers=OFFICIAL)
    assert r.status_code == 400
    for lacking in ("section overview", "section difficulties", "EN: EN: AQ: 1C"):
        assert lacking in r.json()["detail"]
    assert http.get("/program/reports/annual-2026/48").json()["status"] == "draft"

    # A value once given is taken back with null.
    assert write(http, "annual-2026", "48", sections={},
                 indicators={"EC: ICT: T: 2C": 18}) == 200
    assert write(http, "annual-2026", "48", sections={},
                 indicators={"EC: ICT: T: 2C": None}) == 200
    assert set(http.get("/program/reports/annual-2026/48").json()["indicators"]) == {
        "EC: ICT: ICT: 4C"}
    assert write(http, "annual-2026", "48") == 200
    r = http.post("/program/reports/annual-2026/48/submit", headers=OFFICIAL)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["status"], report["late"], report["lateDays"]) == ("submitted", False, 0)
    assert write(http, "annual-2026", "48") == 409  # submitted: not changed any more
    # The values submitted are the province's indicator values of the period.
    kpi = http.get("/kpi/values", params={"city": "48"}).json()
    values = {i["code"]: i["values"]["2026"]["value"] for i in kpi["indicators"]
              if "2026" in i["values"]}
    assert values == {"EC: ICT: ICT: 4C": 97, "EN: EN: AQ: 1C": 22.5}

    review = "/program/reports/annual-2026/48/review"
    assert http.post(review, headers=OFFICIAL, json={"decision": "return"}).status_code == 400
    assert http.post(review, headers=OFFICIAL, json={"decision": "maybe"}).status_code == 400
    r = http.post(review, headers=OFFICIAL, json={"decision": "return",
                                             "comments": "Bổ sung số liệu PM2.5 quý IV"})
    assert r.json()["status"] == "returned"
    assert write(http, "annual-2026", "48", indicators={"EN: EN: AQ: 1C": 24.1}) == 200
    r = http.post("/program/reports/annual-2026/48/submit", headers=OFFICIAL)
    assert (r.json()["status"], r.json()["indicators"]["EN: EN: AQ: 1C"]["value"]) == (
        "submitted", 24.1)
    r = http.post(review, headers=OFFICIAL, json={"decision": "accept"})
    assert r.json()["status"] == "accepted"
    assert http.post(review, headers=OFFICIAL, json={"decision": "accept"}).status_code == 409
    log = [(e["version"], e["action"]) for e in r.json()["log"]]
    assert [a for _, a in log] == ["edit", "edit", "edit", "edit", "submit", "return",
                                   "edit", "submit", "accept"]
    assert [v for v, _ in log] == list(range(1, 10))


def test_lateness_is_counted_from_the_end_of_the_due_day(http: TestClient) -> None:
    ask(http, "adhoc-late", day(-3), ["48", "46", "01"])
    write(http, "adhoc-late", "48")
    r = http.post("/program/reports/adhoc-late/48/submit", headers=OFFICIAL)
    assert (r.json()["late"], r.json()["lateDays"]) == (True, 3)
    rows = {r["unit"]: r for r in http.get("/program/requests/adhoc-late/status").json()}
    assert (rows["48"]["status"], rows["48"]["overdue"]) == ("submitted", False)
    assert (rows["46"]["status"], rows["46"]["overdue"], rows["46"]["daysOverdue"]) == (
        "missing", True, 3)
    # As of the due day itself, nobody was overdue yet.
    then = http.get("/program/requests/adhoc-late/status", params={"on": day(-3)}).json()
    assert not any(r["overdue"] for r in then)
    end = due_end("2026-12-15")
    assert end.tzinfo == TZ and end < datetime(2026, 12, 16, tzinfo=TZ) <= end + timedelta(
        microseconds=1)


def test_overdue_units_are_flagged_once_and_told(http: TestClient) -> None:
    ask(http, "adhoc-1", day(-1), ["48", "46"])
    ask(http, "adhoc-2", day(7), ["48"])
    with receiver() as sink:
        r = http.post("/ngsi-ld/v1/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "ReportRequest"}],
            "watchedAttributes": ["overdueUnits"], "notification": {
                "attributes": ["overdueUnits"], "format": "keyValues",
                "endpoint": {"uri": sink.url, "accept": "application/json"}}})
        assert r.status_code == 201
        r = http.post("/program/check", headers=OFFICIAL)
        assert r.status_code == 200, r.text
        assert r.json()["overdueReports"] == {"adhoc-1": ["48", "46"]}
        told = sink.next().body["data"]
        assert [(e["id"], e["overdueUnits"]) for e in told] == [
            ("urn:ngsi-ld:ReportRequest:adhoc-1", ["48", "46"])]
        write(http, "adhoc-1", "48")
        http.post("/program/reports/adhoc-1/48/submit", headers=OFFICIAL)
        assert http.post("/program/check", headers=OFFICIAL).json()["overdueReports"] == {
            "adhoc-1": ["46"]}
        assert sink.next().body["data"][0]["overdueUnits"] == ["46"]
        assert http.post("/program/check", headers=OFFICIAL).json()["overdueReports"] == {}
        assert sink.nothing_queued()


def test_the_national_report_consolidates_the_units(http: TestClient, tmp_path: Path) -> None:
    ask(http, "annual-2026", day(1), ["48", "46", "01"])
    write(http, "annual-2026", "48")
    write(http, "annual-2026", "01", indicators={"EC: ICT: ICT: 4C": 99, "EN: EN: AQ: 1C": 40})
    for unit in ("48", "01"):
        http.post(f"/program/reports/annual-2026/{unit}/submit", headers=OFFICIAL)
    write(http, "annual-2026", "46")  # a draft, never submitted
    as_of = day(2)
    national = http.get("/program/requests/annual-2026/national",
                        params={"on": as_of}).json()
    assert national["counts"] == {"asked": 3, "onTime": 2, "late": 0, "overdue": 1,
                                  "missing": 1, "accepted": 0}
    pm = next(i for i in national["indicators"] if i["code"] == "EN: EN: AQ: 1C")
    assert (pm["values"], pm["mean"], pm["min"], pm["max"]) == (
        {"48": 22.5, "01": 40}, 31.25, 22.5, 40)
    assert set(national["texts"]["overview"]["units"]) == {"48", "01"}

    r = http.get("/program/requests/annual-2026/national.docx",
                 params={"on": as_of, "lang": "en"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    doc = Document(io.BytesIO(r.content))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Units asked: 3; Submitted on time: 2; Submitted late: 0; Not submitted: 1" in text
    status = {row.cells[0].text: row.cells[1].text for row in doc.tables[0].rows[1:]}
    assert status == {"Thành phố Đà Nẵng (48)": "Submitted",
                      "Thành phố Hà Nội (01)": "Submitted",
                      "Thành phố Huế (46)": "Overdue, not submitted"}
    pm_table = next(t for t in doc.tables[1:] if t.rows[1].cells[1].text in ("22.5", "40"))
    assert {r.cells[0].text: r.cells[1].text for r in pm_table.rows[1:]} == {
        "Thành phố Đà Nẵng": "22.5", "Thành phố Hà Nội": "40"}
    assert len(doc.inline_shapes) == 2  # a chart per indicator with values
    vi = http.get("/program/requests/annual-2026/national.docx", params={"on": as_of})
    assert "Tình hình nộp báo cáo" in "\n".join(
        p.text for p in Document(io.BytesIO(vi.content)).paragraphs)


def test_the_digest_names_what_is_late(http: TestClient) -> None:
    # An instance that runs no programme (a city's) gets no empty digests.
    assert http.post("/program/check", headers=OFFICIAL).json()["digest"] is None
    task = {"name": "Trung tâm IOC", "description": "Đầu tư IOC", "leadAgency": "Sở KHCN",
            "responsiblePerson": "Giám đốc Sở KHCN", "responsibility": "Sở KHCN",
            "authority": "UBND tỉnh", "expectedProduct": "IOC vận hành"}
    http.put("/program/tasks/T-late", headers=OFFICIAL, json={**task, "deadline": day(-1)})
    http.put("/program/tasks/T-soon", headers=OFFICIAL, json={**task, "deadline": day(5)})
    http.put("/program/tasks/T-far", headers=OFFICIAL, json={**task, "deadline": day(300)})
    ask(http, "adhoc-1", day(-2), ["48", "46"])
    digest = http.get("/program/digest").json()
    assert [t["code"] for t in digest["overdueTasks"]] == ["T-late"]
    assert [t["code"] for t in digest["dueSoonTasks"]] == ["T-soon"]
    assert [t["code"] for t in digest["atRiskTasks"]] == ["T-soon"]
    assert digest["requests"][0]["overdueUnits"] == ["48", "46"]
    assert "quá hạn: Thành phố Đà Nẵng, Thành phố Huế" in digest["text"]["vi"]
    assert "Overdue tasks: 1\n- T-late Trung tâm IOC" in digest["text"]["en"]
    # The check writes the week's digest once, as an entity subscribers are sent.
    first = http.post("/program/check", headers=OFFICIAL).json()
    assert first["digest"] == digest["week"]
    assert http.post("/program/check", headers=OFFICIAL).json()["digest"] is None
    stored = http.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:ProgrammeDigest:{digest['week']}",
                      params={"options": "keyValues"}).json()
    assert stored["text"]["vi"] == digest["text"]["vi"]


@pytest.fixture
def secured(database_url: Callable[[str], str], tmp_path: Path) -> Iterator[TestClient]:
    accounts = Accounts(tmp_path / "accounts.yaml", Policy.load())
    for name, role, agency in (("hue", "reporter", "46"), ("danang", "reporter", "48"),
                               ("ministry", "city-admin", None),
                               ("assessor", "assessor", None)):
        accounts.add(Account("keys", name, role, key_hash(f"dothi_key-{name}"), agency=agency))
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        auth_accounts=tmp_path / "accounts.yaml", auth_anonymous="public",
                        auth_key_file=tmp_path / "auth.key")
    with TestClient(create_app(settings)) as client:
        yield client


def by(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dothi_key-{name}"}


def test_a_reporter_reports_for_its_own_province_only(secured: TestClient) -> None:
    http = secured
    assert http.post("/program/requests", json={}).status_code == 401
    assert http.post("/program/calendar/2026", headers=by("danang")).status_code == 403
    assert http.post("/program/calendar/2026", headers=by("assessor")).status_code == 403
    assert http.post("/program/calendar/2026", headers=by("ministry")).status_code == 201
    assert write(http, "annual-2026", "48", headers=by("hue")) == 403
    assert write(http, "annual-2026", "48", headers={}) == 401
    assert write(http, "annual-2026", "48", headers=by("danang")) == 200
    assert http.post("/program/reports/annual-2026/48/submit",
                     headers=by("hue")).status_code == 403
    r = http.post("/program/reports/annual-2026/48/submit", headers=by("danang"))
    assert r.status_code == 200 and r.json()["log"][-1]["by"] == "key:danang"
    assert http.post("/program/reports/annual-2026/48/review", headers=by("danang"),
                     json={"decision": "accept"}).status_code == 403
    assert http.post("/program/reports/annual-2026/48/review", headers=by("ministry"),
                     json={"decision": "accept"}).status_code == 200
    # Anyone may read where the provinces stand: it is the programme's open data.
    assert http.get("/program/requests/annual-2026/status").status_code == 200
