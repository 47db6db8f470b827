"""Provincial smart-city schemes and plans over HTTP, on both store backends: a draft and
its versions, public consultation with comments, the coordination council with a late
opinion and a disagreement, approval that must overrule it, publication that creates the
scheme's tasks under the national ones, periodic review and the list of what is overdue;
revision back to draft keeping what was said; each step refused in the wrong state, bad
input refused, and a unit's reporter kept to its own unit, each refusal changing nothing.

Days are counted from today in Asia/Ho_Chi_Minh; a deadline that has passed is made by
moving the stored date back (tests do not wait)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.auth.access import Policy
from dothi.auth.accounts import Account, Accounts, key_hash
from dothi.program.records import Records
from dothi.store.base import DEFAULT_TENANT
from tests.auth.conftest import accounts_file, secured_settings
from tests.program.conftest import OFFICIAL

S = "/program/schemes"
DN = f"{S}/48/de-an-dtmt"  # Đà Nẵng's scheme
SID = "urn:ngsi-ld:SmartCityScheme:48:de-an-dtmt"
NATIONAL = "urn:ngsi-ld:ProgrammeTask:DT950-3.1"
COUNCIL = ["Sở Xây dựng", "Sở Khoa học và Công nghệ", "Công an thành phố"]


def today(days: int = 0) -> str:
    return (datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days)).isoformat()


def draft(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "scheme",
        "title": {"vi": "Đề án phát triển đô thị thông minh Đà Nẵng",
                  "en": "Da Nang smart-city development scheme"},
        "document": "https://danang.gov.vn/du-thao/de-an-dtmt-v1.pdf",
        "summary": "Dự thảo lần 1",
        "period": "2026-2030",
        "tasks": [
            {"code": "1.1", "name": {"vi": "Nền tảng dữ liệu đô thị", "en": "Urban data "
                                     "platform"},
             "deadline": "2027-12-31", "expectedProduct": "Nền tảng vận hành",
             "leadAgency": "Sở Khoa học và Công nghệ", "refNational": NATIONAL,
             "responsiblePerson": "Giám đốc Sở KH&CN"},
            {"code": "2.1", "name": "Trung tâm điều hành IOC", "deadline": "2028-06-30",
             "expectedProduct": "IOC hoạt động", "leadAgency": "Sở Xây dựng",
             "refNational": "urn:ngsi-ld:ProgrammeTask:DT950-2.4"}]}
    body.update(changes)
    return body


def move(client: TestClient, part: str | None, name: str, value: str) -> None:
    """Set a stored date as if time had passed."""
    def change(old: dict[str, Any] | None) -> dict[str, Any]:
        assert old is not None
        if part is None:
            return {**old, name: value}
        return {**old, part: {**old[part], name: value}}

    Records(client.app.state.broker, "SmartCityScheme").save(  # type: ignore[attr-defined]
        DEFAULT_TENANT, SID, change)


def step(client: TestClient, name: str, body: dict[str, Any], status: int = 200,
         headers: dict[str, str] = OFFICIAL) -> dict[str, Any]:
    r = client.post(f"{DN}/{name}", headers=headers, json=body)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def to_council(client: TestClient, members: list[str] = COUNCIL) -> dict[str, Any]:
    r = client.put(DN, headers=OFFICIAL, json=draft())
    assert r.status_code in (200, 201), r.text
    step(client, "consultation", {"closes": today(14)})
    return step(client, "council", {"deadline": today(7), "members": members,
                                    "closeNow": True})


def test_draft_consult_council_approve_publish_review(http: TestClient) -> None:
    r = http.put(DN, headers=OFFICIAL, json=draft())
    assert r.status_code == 201, r.text
    assert r.headers["location"] == DN
    first = r.json()
    assert (first["status"], first["version"], first["unit"], first["key"]) == \
        ("draft", 1, "48", "de-an-dtmt")
    assert first["tasks"][1]["name"] == {"vi": "Trung tâm điều hành IOC",
                                         "en": "Trung tâm điều hành IOC"}
    # The same content again is no new version; a change is.
    assert http.put(DN, headers=OFFICIAL, json=draft()).json()["version"] == 1
    r = http.put(DN, headers=OFFICIAL, json=draft(summary="Dự thảo lần 2"))
    assert (r.status_code, r.json()["version"], r.json()["summary"]) == (200, 2,
                                                                         "Dự thảo lần 2")
    assert [(e["version"], e["action"], e["by"]) for e in r.json()["log"]] == [
        (1, "drafted", "official#1"), (2, "drafted", "official#1")]

    opened = step(http, "consultation", {"closes": today(14)})
    assert opened["status"] == "consultation"
    assert opened["consultation"] == {"opens": today(), "closes": today(14), "comments": []}
    assert http.put(DN, headers=OFFICIAL, json=draft(summary="v3")).status_code == 409
    # Anyone may comment (the anonymous here, and an official), as no more than a subject.
    said = step(http, "comments", {"text": "  Cần ưu tiên chống ngập.  "}, 201, {})
    assert (said["by"], said["text"]) == ("anonymous", "Cần ưu tiên chống ngập.")
    step(http, "comments", {"text": "Bổ sung dữ liệu giao thông."}, 201)
    assert step(http, "council", {"deadline": today(7)}, 409)["detail"].startswith(
        f"The consultation is open until {today(14)}")

    council = step(http, "council", {"deadline": today(7), "members": COUNCIL,
                                     "closeNow": True})
    assert council["status"] == "council" and council["version"] == 2
    assert council["consultation"]["closes"] == today()
    assert council["consultation"]["closedEarly"] is True
    assert [c["by"] for c in council["consultation"]["comments"]] == ["anonymous",
                                                                      "official#1"]
    assert council["council"] == {"deadline": today(7), "members": COUNCIL, "opinions": []}
    step(http, "comments", {"text": "Muộn rồi"}, 409)

    agree = step(http, "opinions", {"member": "Sở Xây dựng", "agency": "Sở Xây dựng",
                                    "position": "agree"}, 201)
    assert "late" not in agree and agree["by"] == "official#1"
    step(http, "opinions", {"member": "Ông Trần Văn B", "agency": "Sở Khoa học và Công nghệ",
                            "position": "disagree", "text": "Kinh phí chưa khả thi"}, 201)
    # Công an thành phố has not answered and has until the deadline.
    refused = step(http, "approve", {"decisionNumber": "1234/QĐ-UBND", "date": today(),
                                     "overrule": "x"}, 409)
    assert "Công an thành phố" in refused["detail"]
    assert http.get(DN).json()["status"] == "council"

    move(http, "council", "deadline", today(-1))
    late = step(http, "opinions", {"member": "Công an thành phố", "agency": "Công an",
                                   "position": "agreeWithComments", "text": "Bảo mật"}, 201)
    assert late["late"] is True
    due = http.get(S, params={"due": "true"}).json()
    assert [(d["id"], [w["reason"] for w in d["due"]]) for d in due] == [
        (SID, ["councilDeadlinePassed"])]
    assert due[0]["due"][0]["since"] == today(-1) and due[0]["due"][0]["text"]["vi"]

    # The disagreement must be overruled, with a reason.
    refused = step(http, "approve", {"decisionNumber": "1234/QĐ-UBND", "date": today()}, 409)
    assert "Ông Trần Văn B disagreed" in refused["detail"]
    assert http.get(DN).json()["status"] == "council"
    approved = step(http, "approve", {"decisionNumber": "1234/QĐ-UBND", "date": today(),
                                      "overrule": "Kinh phí đã được HĐND bố trí"})
    assert approved["status"] == "approved"
    assert approved["approval"]["overruled"] == ["Ông Trần Văn B"]
    assert approved["approval"]["decisionNumber"] == "1234/QĐ-UBND"
    step(http, "approve", {"decisionNumber": "1234/QĐ-UBND", "date": today()}, 409)
    assert http.get(S, params={"due": "true"}).json() == []

    published = step(http, "publish", {"url": "https://danang.gov.vn/qd-1234.pdf"})
    ids = ["urn:ngsi-ld:ProgrammeTask:48-de-an-dtmt-1.1",
           "urn:ngsi-ld:ProgrammeTask:48-de-an-dtmt-2.1"]
    assert published["status"] == "published" and published["taskIds"] == ids
    assert published["publication"]["url"] == "https://danang.gov.vn/qd-1234.pdf"
    next_year = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    assert date.fromisoformat(published["nextReview"]).year == next_year.year + 1
    task = http.get(f"/ngsi-ld/v1/entities/{ids[0]}", params={"options": "keyValues"}).json()
    assert task == {"id": ids[0], "type": "ProgrammeTask", "code": "48-de-an-dtmt-1.1",
                    "name": {"vi": "Nền tảng dữ liệu đô thị", "en": "Urban data platform"},
                    "description": "Nền tảng dữ liệu đô thị", "unit": "48",
                    "leadAgency": "Sở Khoa học và Công nghệ", "deadline": "2027-12-31",
                    "expectedProduct": "Nền tảng vận hành", "status": "notStarted",
                    "progress": 0, "refParent": NATIONAL, "refScheme": SID,
                    "responsiblePerson": "Giám đốc Sở KH&CN", "flag": "onTrack"}
    normalized = http.get(f"/ngsi-ld/v1/entities/{ids[1]}").json()
    assert normalized["refParent"] == {"type": "Relationship",
                                       "object": "urn:ngsi-ld:ProgrammeTask:DT950-2.4"}
    assert normalized["refScheme"] == {"type": "Relationship", "object": SID}
    step(http, "publish", {"url": "https://danang.gov.vn/qd-1234.pdf"}, 409)

    reviewed = step(http, "reviews", {"findings": "Đạt 40% chỉ tiêu năm đầu",
                                      "nextReview": today(180)}, 201)
    assert reviewed["nextReview"] == today(180) and reviewed["by"] == "official#1"
    kept = http.get(DN).json()
    assert kept["nextReview"] == today(180) and len(kept["reviews"]) == 1
    assert [e["action"] for e in kept["log"]] == [
        "drafted", "drafted", "consultationOpened", "sentToCouncil", "approved", "published",
        "reviewed"]
    move(http, None, "nextReview", today(-2))
    due = http.get(S, params={"due": "true", "unit": "48"}).json()
    assert [w["reason"] for w in due[0]["due"]] == ["reviewOverdue"]
    assert http.get(S, params={"due": "true", "unit": "01"}).json() == []
    # The programme's weekly digest names it too.
    digest = http.get("/program/digest").json()
    assert [(s["unit"], s["key"]) for s in digest["schemes"]] == [("48", "de-an-dtmt")]
    assert "Thành phố Đà Nẵng: Đề án" in digest["text"]["vi"].split(
        "Đề án, kế hoạch cần xử lý\n")[1]


def test_revise_keeps_what_was_said_and_all_answers_allow_approval(http: TestClient) -> None:
    http.put(DN, headers=OFFICIAL, json=draft())
    step(http, "consultation", {"closes": today(10)})
    step(http, "comments", {"text": "Góp ý thứ nhất"}, 201)
    move(http, "consultation", "closes", today(-1))
    assert [w["reason"] for w in http.get(S, params={"due": "true"}).json()[0]["due"]] == \
        ["consultationClosed"]
    step(http, "comments", {"text": "Quá hạn"}, 409)

    revised = step(http, "revise", {"reason": "Tiếp thu ý kiến nhân dân"})
    assert (revised["status"], revised["version"]) == ("draft", 2)
    assert "consultation" not in revised
    entry = revised["log"][-1]
    assert (entry["version"], entry["action"], entry["reason"]) == (
        1, "revised", "Tiếp thu ý kiến nhân dân")
    assert [c["text"] for c in entry["consultation"]["comments"]] == ["Góp ý thứ nhất"]
    assert http.put(DN, headers=OFFICIAL, json=draft(summary="Sau góp ý")).json()[
        "version"] == 3

    # No closeNow needed once the consultation has closed.
    step(http, "consultation", {"closes": today(5)})
    move(http, "consultation", "closes", today(-1))
    step(http, "council", {"deadline": today(7), "members": ["Sở Xây dựng"]})
    step(http, "opinions", {"member": "Nguyễn Văn A", "agency": "Sở Xây dựng",
                            "position": "disagree", "text": "Chưa đạt"}, 201)
    again = step(http, "revise", {})
    assert again["version"] == 4
    assert again["log"][-1]["council"]["opinions"][0]["position"] == "disagree"
    assert "council" not in again

    to_council(http, members=["Sở Xây dựng", "Sở Tài chính"])
    step(http, "opinions", {"member": "Nguyễn Văn A", "agency": "Sở Xây dựng",
                            "position": "disagree", "text": "Chưa đạt"}, 201)
    step(http, "opinions", {"member": "Lê Thị C", "agency": "Sở Tài chính",
                            "position": "agree"}, 201)
    # Every member has answered, before the deadline; the one who disagreed then agreed
    # (a member's latest opinion counts), so nothing is overruled.
    step(http, "opinions", {"member": "Nguyễn Văn A", "agency": "Sở Xây dựng",
                            "position": "agreeWithComments", "text": "Đã tiếp thu"}, 201)
    approved = step(http, "approve", {"decisionNumber": "15/2026/QĐ-UBND",
                                      "date": today(-1)})
    assert approved["status"] == "approved" and "overruled" not in approved["approval"]
    assert len(approved["council"]["opinions"]) == 3


def test_without_members_approval_waits_for_the_deadline(http: TestClient) -> None:
    to_council(http, members=[])
    approval = {"decisionNumber": "45/KH-UBND", "date": today()}
    assert "until" in step(http, "approve", approval, 409)["detail"]
    move(http, "council", "deadline", today(-1))
    assert step(http, "approve", approval)["status"] == "approved"


WRONG_STATE = [("consultation", {"closes": today(3)}), ("comments", {"text": "x"}),
               ("council", {"deadline": today(3), "closeNow": True}),
               ("opinions", {"member": "A", "agency": "B", "position": "agree"}),
               ("revise", {}), ("approve", {"decisionNumber": "1/QĐ-UBND", "date": today()}),
               ("publish", {"url": "https://example.vn/qd.pdf"}),
               ("reviews", {"findings": "x", "nextReview": today(30)})]
ALLOWED_IN = {"consultation": "draft", "comments": "consultation", "council": "consultation",
              "opinions": "council", "revise": ("consultation", "council"),
              "approve": "council", "publish": "approved", "reviews": "published"}


def test_each_step_in_the_wrong_state_is_refused_and_changes_nothing(
        http: TestClient) -> None:
    http.put(DN, headers=OFFICIAL, json=draft())

    def approve() -> None:
        move(http, "council", "deadline", today(-1))
        step(http, "approve", {"decisionNumber": "7/QĐ-UBND", "date": today()})

    states: dict[str, Callable[[], object]] = {
        "draft": lambda: None,
        "consultation": lambda: step(http, "consultation", {"closes": today(9)}),
        "council": lambda: step(http, "council", {"deadline": today(3), "closeNow": True}),
        "approved": approve,
        "published": lambda: step(http, "publish", {"url": "https://x.vn/q.pdf"})}
    refused = 0
    for state, reach in states.items():
        reach()
        before = http.get(DN).json()
        assert before["status"] == state
        for name, body in WRONG_STATE:
            allowed = ALLOWED_IN[name]
            if state == allowed or state in allowed and isinstance(allowed, tuple):
                continue
            r = http.post(f"{DN}/{name}", headers=OFFICIAL, json=body)
            assert r.status_code == 409, (state, name, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            refused += 1
        if state != "draft":
            assert http.put(DN, headers=OFFICIAL, json=draft(summary="x")).status_code == 409
        assert http.get(DN).json() == before
    assert refused == 31


def test_bad_input_is_refused_and_changes_nothing(http: TestClient) -> None:
    task = draft()["tasks"][0]
    bad_drafts = [draft(kind="program"), draft(period="2030-2026"), draft(period="2026-30"),
                  draft(document="ftp://danang.gov.vn/a.pdf"), draft(title=""),
                  draft(title={"vi": "Đề án", "fr": "x"}), draft(summary=""),
                  draft(tasks=[{**task, "refNational": "urn:ngsi-ld:Task:1"}]),
                  draft(tasks=[task, task]), draft(tasks=[{**task, "code": "1-1"}]),
                  draft(tasks=[{k: v for k, v in task.items() if k != "leadAgency"}]),
                  draft(tasks=[{**task, "deadline": "31/12/2027"}]),
                  draft(tasks=[{**task, "owner": "x"}]), draft(tasks={"1": task}),
                  {**draft(), "status": "approved"}]
    for body in bad_drafts:
        r = http.put(DN, headers=OFFICIAL, json=body)
        assert r.status_code == 400, (body, r.text)
    assert http.put(f"{S}/4-8/x", headers=OFFICIAL, json=draft()).status_code == 400
    assert http.put(f"{S}/48/bad.key", headers=OFFICIAL, json=draft()).status_code == 400
    assert http.put(DN, headers=OFFICIAL, content=b"[1]").status_code == 400
    assert http.get(S).json() == []

    to_council(http, members=["Sở Xây dựng"])
    before = http.get(DN).json()
    bad_steps: list[tuple[str, dict[str, Any]]] = [
        ("consultation", {"closes": today()}), ("consultation", {"closes": "soon"}),
        ("comments", {"text": ""}), ("comments", {"text": "x" * 5001}),
        ("comments", {"text": "x", "name": "Lan"}),
        ("council", {"deadline": today(), "closeNow": True}),
        ("council", {"deadline": today(3), "members": ["A", "A"]}),
        ("council", {"deadline": today(3), "closeNow": "yes"}),
        ("opinions", {"member": "A", "agency": "B", "position": "maybe"}),
        ("opinions", {"member": "A", "agency": "B", "position": "disagree"}),
        ("opinions", {"member": "", "agency": "B", "position": "agree"}),
        ("revise", {"reason": ""}),
        ("approve", {"decisionNumber": "QĐ 1234", "date": today()}),
        ("approve", {"decisionNumber": "1234/QĐ-UBND", "date": today(1)}),
        ("approve", {"decisionNumber": "1234/QĐ-UBND", "date": today(),
                     "overrule": ""}),
        ("publish", {"url": "danang.gov.vn"}),
        ("publish", {"url": "https://x.vn/q.pdf", "nextReview": today()}),
        ("reviews", {"findings": "", "nextReview": today(9)}),
        ("reviews", {"findings": "x", "nextReview": today(-1)})]
    for name, body in bad_steps:
        r = http.post(f"{DN}/{name}", headers=OFFICIAL, json=body)
        assert r.status_code == 400, (name, body, r.text)
    assert http.get(DN).json() == before
    for params in ({"status": "done"}, {"due": "yes"}, {"unit": "4-8"}):
        assert http.get(S, params=params).status_code == 400


def test_unknown_scheme_and_listing(http: TestClient) -> None:
    assert http.get(DN).status_code == 404
    assert http.post(f"{DN}/consultation", headers=OFFICIAL,
                     json={"closes": today(3)}).status_code == 404
    assert http.post(f"{DN}/comments", json={"text": "x"}).status_code == 404
    http.put(DN, headers=OFFICIAL, json=draft())
    http.put(f"{S}/79/ke-hoach-2026", headers=OFFICIAL, json=draft(kind="plan", period="2026"))
    step(http, "consultation", {"closes": today(3)})
    assert [s["id"] for s in http.get(S).json()] == [
        SID, "urn:ngsi-ld:SmartCityScheme:79:ke-hoach-2026"]
    assert [s["key"] for s in http.get(S, params={"unit": "79"}).json()] == ["ke-hoach-2026"]
    assert [s["key"] for s in http.get(S, params={"status": "consultation"}).json()] == [
        "de-an-dtmt"]
    assert http.get(S, params={"status": "draft", "unit": "48"}).json() == []


def test_publication_refuses_to_take_over_another_task(http: TestClient) -> None:
    to_council(http, members=[])
    move(http, "council", "deadline", today(-1))
    step(http, "approve", {"decisionNumber": "9/QĐ-UBND", "date": today()})
    taken = "urn:ngsi-ld:ProgrammeTask:48-de-an-dtmt-2.1"
    r = http.post("/ngsi-ld/v1/entities", json={
        "id": taken, "type": "ProgrammeTask", "code": {"type": "Property", "value": "x"}})
    assert r.status_code == 201, r.text
    assert taken in step(http, "publish", {"url": "https://x.vn/q.pdf"}, 409)["detail"]
    assert http.get(DN).json()["status"] == "approved"
    assert http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:ProgrammeTask:48-de-an-dtmt-1.1"
                    ).status_code == 404


@pytest.fixture
def secured(database_url: Callable[[str], str], tmp_path: Path) -> Iterator[TestClient]:
    """Sign-in enforced (the anonymous are the public), with the keys of tests/auth and
    two reporting units' keys: Đà Nẵng (48) and Hồ Chí Minh City (79)."""
    accounts_file(tmp_path / "accounts.yaml")
    accounts = Accounts(tmp_path / "accounts.yaml", Policy.load())
    for unit in ("48", "79"):
        accounts.add(Account("keys", f"reporter-{unit}", "reporter",
                             key_hash(f"dothi_test-reporter-{unit}"), agency=unit))
    with TestClient(create_app(secured_settings(database_url("test"), tmp_path))) as client:
        yield client


def key(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dothi_test-{name}"}


def test_a_unit_acts_for_itself_only(secured: TestClient) -> None:
    r = secured.put(DN, headers=key("reporter-48"), json=draft())
    assert r.status_code == 201, r.text
    assert r.json()["log"][0]["by"] == "key:reporter-48"
    before = secured.get(DN).json()  # the public reads
    r = secured.put(f"{S}/79/de-an", headers=key("reporter-48"), json=draft())
    assert r.status_code == 403, r.text
    assert secured.get(f"{S}/79/de-an").status_code == 404
    for name, body in (("consultation", {"closes": today(5)}),
                       ("revise", {"reason": "x"})):
        assert secured.post(f"{DN}/{name}", headers=key("reporter-79"),
                            json=body).status_code == 403
    assert secured.put(DN, headers=key("reporter-79"), json=draft()).status_code == 403
    assert secured.put(DN, json=draft(summary="x")).status_code == 401  # the public
    assert secured.put(DN, headers=key("officer"), json=draft(summary="x")).status_code == 403
    assert secured.get(DN).json() == before

    step(secured, "consultation", {"closes": today(5)}, headers=key("reporter-48"))
    assert step(secured, "comments", {"text": "Ý kiến"}, 201, {})["by"] == "anonymous"
    assert step(secured, "comments", {"text": "Ý kiến"}, 201, key("citizen"))["by"] == \
        "key:citizen"
    # A reporting unit may comment as the public may; its comment names its key.
    assert step(secured, "comments", {"text": "x"}, 201, key("reporter-48"))["by"] == \
        "key:reporter-48"
    assert step(secured, "comments", {"text": "x"}, 403, key("assessor"))["status"] == 403
    # A coordinator (city-admin) acts for any unit.
    council = step(secured, "council", {"deadline": today(5), "closeNow": True},
                   headers=key("city-admin"))
    assert council["log"][-1]["by"] == "key:city-admin"
    step(secured, "opinions", {"member": "A", "agency": "B", "position": "agree"}, 403,
         key("reporter-79"))
    assert secured.get(DN).json()["council"]["opinions"] == []
