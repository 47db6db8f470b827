"""The programme's tasks on both backends: the Decision 950 structure loaded by a command,
the "6 rõ" demanded of every task, flags by the rules of dothi.program.tasks, progress
with its evidence, action plans whose items become child tasks, and a subscription told
once when a task's flag changes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dothi.app import create_app
from dothi.cli import app as cli
from dothi.program.tasks import flag, today
from dothi.settings import Settings
from tests.program.conftest import OFFICIAL
from tests.receiver import receiver

TASK = {"name": {"vi": "Nền tảng dữ liệu đô thị", "en": "Urban data platform"},
        "description": "Triển khai nền tảng dữ liệu đô thị dùng chung.",
        "responsiblePerson": "Giám đốc Sở Khoa học và Công nghệ",
        "responsibility": "Sở Khoa học và Công nghệ chịu trách nhiệm trước UBND thành phố.",
        "authority": "Chủ tịch UBND thành phố phê duyệt.",
        "expectedProduct": "Nền tảng vận hành, kết nối 10 hệ thống",
        "leadAgency": "Sở Khoa học và Công nghệ",
        "coordinatingAgencies": ["Sở Xây dựng"],
        "fundingSource": "Ngân sách địa phương"}


def days(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


def test_flags_follow_the_rules() -> None:
    on = date(2026, 6, 1)
    task = {"startDate": "2026-01-01", "deadline": "2026-12-31", "status": "inProgress"}
    assert flag({**task, "progress": 40}, on) == "onTrack"  # 41 % of the time gone
    assert flag({**task, "progress": 15}, on) == "atRisk"  # trails by 26 points
    assert flag({**task, "progress": 17}, on) == "onTrack"  # trails by 24
    assert flag({**task, "progress": 70}, date(2026, 12, 10)) == "atRisk"  # due in 21 days
    assert flag({**task, "progress": 80}, date(2026, 12, 10)) == "onTrack"
    assert flag({**task, "progress": 99}, date(2027, 1, 1)) == "overdue"
    assert flag({**task, "progress": 100, "status": "done"}, date(2027, 1, 1)) == "done"
    assert flag({"status": "inProgress"}, on) == "unclear"


def test_the_decision_950_tasks_are_loaded_by_a_command(tmp_path: Path) -> None:
    db = str(tmp_path / "national.db")
    first = CliRunner().invoke(cli, ["program", "load-tasks", "--db", db])
    assert first.exit_code == 0, first.output
    assert "13 tasks loaded" in first.output
    settings = Settings(database_url=f"sqlite:///{db}", context_fetch=False,
                        official_keys="ministry")
    with TestClient(create_app(settings)) as http:
        tasks = http.get("/program/tasks").json()
        assert len(tasks) == 13
        assert sorted({t["group"] for t in tasks}) == [str(g) for g in range(1, 8)]
        pilot = http.get("/program/tasks/DT950-7.1").json()
        assert pilot["leadAgency"] == "Bộ Xây dựng"
        assert "Bộ Tài chính" in pilot["coordinatingAgencies"]
        assert pilot["groupName"]["en"] == "International cooperation, pilots and resources"
        for field in ("responsiblePerson", "description", "deadline", "responsibility",
                      "authority", "expectedProduct", "fundingSource"):
            assert pilot[field], field
        r = http.post("/program/tasks/DT950-7.1/progress", headers=OFFICIAL,
                      json={"progress": 35, "status": "inProgress"})
        assert r.status_code == 200, r.text
        stamp = http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:ProgrammeTask:DT950-7.1",
                         params={"options": "sysAttrs"}).json()["modifiedAt"]
    again = CliRunner().invoke(cli, ["program", "load-tasks", "--db", db])
    assert again.exit_code == 0, again.output
    with TestClient(create_app(settings)) as http:
        # Loading again restates the tasks and keeps the progress reported; a task it
        # does not change is not written again.
        assert http.get("/program/tasks/DT950-7.1").json()["progress"] == 35
        history = http.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:ProgrammeTask:DT950-7.1",
                           params={"attrs": "progress,name"}).json()
        assert [i["value"] for i in history["progress"]] == [0, 35]
        assert len(history["name"]) == 1
        assert http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:ProgrammeTask:DT950-7.1",
                        params={"options": "sysAttrs"}).json()["modifiedAt"] == stamp


def test_a_file_with_an_unclear_task_loads_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.yaml"
    good = {"code": "X-1", "deadline": "2030-12-31", **TASK}
    unclear = {k: v for k, v in good.items() if k != "authority"} | {"code": "X-2"}
    bad.write_text(yaml.safe_dump({"groups": [{"code": "1", "name": "Nhóm",
                                               "tasks": [good, unclear]}]},
                                  allow_unicode=True), encoding="utf-8")
    db = str(tmp_path / "n.db")
    r = CliRunner().invoke(cli, ["program", "load-tasks", str(bad), "--db", db])
    assert r.exit_code == 2
    assert "X-2 is not clear on: authority (rõ thẩm quyền" in r.output
    settings = Settings(database_url=f"sqlite:///{db}", context_fetch=False)
    with TestClient(create_app(settings)) as http:
        assert http.get("/program/tasks").json() == []


def test_a_task_states_its_six_clear_points(http: TestClient) -> None:
    r = http.put("/program/tasks/DN-1", headers=OFFICIAL,
                 json={"name": "Nhiệm vụ", "leadAgency": "Sở Xây dựng"})
    assert r.status_code == 400
    for missing in ("rõ người", "rõ việc", "rõ thời gian", "rõ trách nhiệm",
                    "rõ thẩm quyền", "rõ sản phẩm"):
        assert missing in r.json()["detail"]
    for bad in ({"deadline": "31/12/2026"}, {"deadline": "2026-12-31", "progress": 101},
                {"deadline": "2026-12-31", "startDate": "2027-01-01"},
                {"deadline": "2026-12-31", "status": "finished"},
                {"deadline": "2026-12-31", "refParent": "urn:ngsi-ld:Streetlight:1"},
                {"deadline": "2026-12-31", "colour": "red"}):
        r = http.put("/program/tasks/DN-1", headers=OFFICIAL, json={**TASK, **bad})
        assert r.status_code == 400, bad
    assert http.get("/program/tasks/DN-1").status_code == 404
    r = http.put("/program/tasks/DN-1", headers=OFFICIAL,
                 json={**TASK, "startDate": days(-100), "deadline": days(100)})
    assert r.status_code == 200, r.text
    assert r.json()["flag"] == "atRisk"  # half the time gone, nothing done


def test_progress_is_reported_with_evidence(http: TestClient) -> None:
    http.put("/program/tasks/DN-2", headers=OFFICIAL, json={**TASK, "deadline": days(200)})
    done = {"status": "done"}
    r = http.post("/program/tasks/DN-2/progress", headers=OFFICIAL, json=done)
    assert r.status_code == 400 and "evidence" in r.json()["detail"]
    for bad in ({"progress": -1}, {"progress": "half"}, {"evidence": "file:///x.pdf"},
                {}, {"progress": 10, "extra": 1}):
        assert http.post("/program/tasks/DN-2/progress", headers=OFFICIAL, json=bad
                         ).status_code == 400, bad
    assert http.get("/program/tasks/DN-2").json()["progress"] == 0
    r = http.post("/program/tasks/DN-2/progress", headers=OFFICIAL,
                  json={**done, "evidence": "https://danang.gov.vn/nen-tang.pdf",
                        "note": "Nghiệm thu"})
    assert r.status_code == 200, r.text
    task = r.json()
    assert (task["status"], task["progress"], task["flag"]) == ("done", 100, "done")
    assert task["evidence"][0]["url"] == "https://danang.gov.vn/nen-tang.pdf"
    assert task["evidence"][0]["by"] == "official#1"
    assert http.post("/program/tasks/NOPE/progress", headers=OFFICIAL,
                     json={"progress": 5}).status_code == 404
    # Each attribute's history holds its own changes: the progress moved twice, the name
    # never did.
    history = http.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:ProgrammeTask:DN-2",
                       params={"attrs": "progress,name,status"}).json()
    assert [i["value"] for i in history["progress"]] == [0, 100]
    assert [i["value"] for i in history["status"]] == ["notStarted", "done"]
    assert len(history["name"]) == 1 and history["name"][0]["value"] == TASK["name"]


def plan_item(code: str, parent: str, **extra: Any) -> dict[str, Any]:
    return {**TASK, "code": code, "refParent": f"urn:ngsi-ld:ProgrammeTask:{parent}",
            "startDate": days(-10), "deadline": days(300), **extra}


def test_an_action_plan_makes_child_tasks(http: TestClient) -> None:
    http.put("/program/tasks/N-4.1", headers=OFFICIAL, json={**TASK, "deadline": "2030-12-31"})
    r = http.put("/program/plans/48/2026", headers=OFFICIAL,
                 json={"items": [plan_item("1", "N-4.1"), plan_item("2", "N-9.9")]})
    assert r.status_code == 400 and "item 2: no national task" in r.json()["detail"]
    r = http.put("/program/plans/48/2026", headers=OFFICIAL, json={"items": [
        plan_item("1", "N-4.1"), {k: v for k, v in plan_item("2", "N-4.1").items()
                                  if k != "expectedProduct"}]})
    assert r.status_code == 400 and "item 2" in r.json()["detail"]
    assert http.get("/program/tasks", params={"unit": "48"}).json() == []

    r = http.put("/program/plans/48/2026", headers=OFFICIAL, json={
        "title": "Kế hoạch 2026", "items": [plan_item("1", "N-4.1"), plan_item("2", "N-4.1")]})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    children = http.get("/program/tasks", params={"parent": "N-4.1"}).json()
    assert [c["code"] for c in children] == ["48-2026-1", "48-2026-2"]
    assert all(c["unit"] == "48" and c["refActionPlan"] == "urn:ngsi-ld:ActionPlan:48:2026"
               for c in children)
    http.post("/program/tasks/48-2026-1/progress", headers=OFFICIAL, json={"progress": 30})
    # Submitted again without item 2: item 1 keeps its progress, item 2 is cancelled.
    r = http.put("/program/plans/48/2026", headers=OFFICIAL,
                 json={"items": [plan_item("1", "N-4.1", name="Nền tảng (điều chỉnh)")]})
    assert r.json()["version"] == 2 and r.json()["dropped"] == ["48-2026-2"]
    one, two = (http.get(f"/program/tasks/48-2026-{n}").json() for n in (1, 2))
    assert (one["progress"], one["name"]["vi"]) == (30, "Nền tảng (điều chỉnh)")
    assert (two["status"], two["flag"]) == ("cancelled", "cancelled")


def test_a_subscription_is_told_when_a_flag_changes(http: TestClient) -> None:
    http.put("/program/tasks/DN-3", headers=OFFICIAL, json={**TASK, "deadline": days(0)})
    assert http.get("/program/tasks/DN-3").json()["flag"] == "atRisk"
    with receiver() as sink:
        r = http.post("/ngsi-ld/v1/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "ProgrammeTask"}],
            "watchedAttributes": ["flag"], "notification": {
                "attributes": ["flag", "deadline"], "format": "keyValues",
                "endpoint": {"uri": sink.url, "accept": "application/json"}}})
        assert r.status_code == 201, r.text
        desk = http.app.state.programme  # type: ignore[attr-defined]
        tenant = "urn:ngsi-ld:tenant:default"
        assert desk.check(tenant, today()).get("flagged") == {}
        checked = desk.check(tenant, today() + timedelta(days=1))
        assert checked["flagged"] == {"urn:ngsi-ld:ProgrammeTask:DN-3": "overdue"}
        told = sink.next()
        assert [(e["id"], e["flag"]) for e in told.body["data"]] == [
            ("urn:ngsi-ld:ProgrammeTask:DN-3", "overdue")]
        # Checking again changes nothing, and tells no one.
        assert desk.check(tenant, today() + timedelta(days=2))["flagged"] == {}
        assert sink.nothing_queued()
