"""Public comment on a plan, on both store backends: an authority opens a planning layer
for comment for a period; citizens comment at a point or over an area; nothing is public
before an official approves it, and nothing about its author ever is; the summary counts
positions per planning zone for the authority."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings

OFFICIAL = {"Authorization": "Bearer official-key-1"}
LAYER = "urn:ngsi-ld:GisLayer:phan-khu-hai-chau"


def zone(code: str, west: float, use: str) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:PlanningZone:phan-khu-hai-chau:{code}", "type": "PlanningZone",
            "zoneCode": {"type": "Property", "value": code},
            "landUse": {"type": "Property", "value": use},
            "refGisLayer": {"type": "Relationship", "object": LAYER},
            "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[
                [west, 16.05], [west + 0.01, 16.05], [west + 0.01, 16.06], [west, 16.06],
                [west, 16.05]]]}}}


@pytest.fixture
def plan(database_url: Callable[[str], str]) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        official_keys="official-key-1", citizen_hourly_limit=5)
    with TestClient(create_app(settings)) as client:
        entities = [{"id": LAYER, "type": "GisLayer",
                     "title": {"type": "Property", "value": "Phân khu Hải Châu"}},
                    zone("HC-01", 108.20, "residential"), zone("HC-02", 108.21, "green")]
        r = client.post("/ngsi-ld/v1/entityOperations/create", json=entities)
        assert r.status_code == 201, r.text
        now = datetime.now(UTC)
        r = client.post("/planning/consultations", headers=OFFICIAL, json={
            "plan": LAYER,
            "title": {"vi": "Lấy ý kiến phân khu Hải Châu", "en": "Hai Chau zoning plan"},
            "description": {"vi": "Điều chỉnh ô HC-02", "en": "Changes to zone HC-02"},
            "opens": (now - timedelta(days=1)).isoformat(),
            "closes": (now + timedelta(days=30)).isoformat()})
        assert r.status_code == 201, r.text
        yield client, r.json()["id"]


def comment(client: TestClient, cid: str, **body: Any) -> Any:
    payload = {"text": "Giữ công viên", "position": "support",
               "location": {"type": "Point", "coordinates": [108.215, 16.055]}, **body}
    return client.post(f"/planning/consultations/{cid}/comments", json=payload)


def test_comments_are_moderated_and_summarised(plan: tuple[TestClient, str]) -> None:
    client, cid = plan
    (listed,) = client.get("/planning/consultations").json()
    assert (listed["id"], listed["status"], listed["publishedComments"]) == (cid, "open", 0)
    assert listed["title"]["en"] == "Hai Chau zoning plan"

    keep = comment(client, cid, first_name="Trần Văn Nam", email="nam@example.vn")
    assert keep.status_code == 201, keep.text
    assert keep.json()["moderation"] == "pending"
    both = comment(client, cid, text="Ô HC-01 cao quá", position="oppose", location={
        "type": "Polygon", "coordinates": [[[108.205, 16.052], [108.215, 16.052],
                                            [108.215, 16.058], [108.205, 16.058],
                                            [108.205, 16.052]]]})
    spam = comment(client, cid, text="mua bán đất giá rẻ, gọi ngay", position="suggestion")
    nowhere = comment(client, cid, text="Cần thêm trường học", position="suggestion",
                      location=None)
    for r in (both, spam, nowhere):
        assert r.status_code == 201, r.text

    # Nothing is public before moderation.
    assert client.get(f"/planning/consultations/{cid}/comments").json() == []
    assert client.get("/ngsi-ld/v1/entities", params={"type": "PlanComment"}).json() == []
    assert client.get(f"/planning/consultations/{cid}/moderation").status_code == 401
    waiting = client.get(f"/planning/consultations/{cid}/moderation", headers=OFFICIAL).json()
    assert [c["text"] for c in waiting] == ["Giữ công viên", "Ô HC-01 cao quá",
                                            "mua bán đất giá rẻ, gọi ngay",
                                            "Cần thêm trường học"]
    assert waiting[0]["zones"] == ["HC-02"] and waiting[1]["zones"] == ["HC-01", "HC-02"]
    ids = [c["id"] for c in waiting]

    def moderate(mid: str, decision: str, **extra: Any) -> Any:
        return client.post(f"/planning/consultations/{cid}/comments/{mid}/moderation",
                           headers=OFFICIAL, json={"decision": decision, **extra})

    assert moderate(ids[0], "approved").status_code == 200
    assert moderate(ids[1], "approved").status_code == 200
    assert moderate(ids[2], "rejected", note="quảng cáo").status_code == 200
    assert moderate(ids[2], "approved").status_code == 409  # decided already
    assert moderate(ids[3], "maybe").status_code == 400
    r = client.post(f"/planning/consultations/{cid}/comments/{ids[3]}/moderation",
                    json={"decision": "approved"})
    assert r.status_code == 401

    public = client.get(f"/planning/consultations/{cid}/comments").json()
    assert [c["text"] for c in public] == ["Giữ công viên", "Ô HC-01 cao quá"]
    everything = client.get("/ngsi-ld/v1/entities", params={"type": "PlanComment"}).text
    assert "Nam" not in everything and "nam@example.vn" not in everything
    assert "client" not in everything and "rẻ" not in everything
    assert client.get("/planning/consultations").json()[0]["publishedComments"] == 2

    author = client.get(f"/planning/consultations/{cid}/comments/{ids[0]}/author",
                        headers=OFFICIAL).json()
    assert author["first_name"] == "Trần Văn Nam" and author["email"] == "nam@example.vn"
    assert client.get(f"/planning/consultations/{cid}/comments/{ids[1]}/author",
                      headers=OFFICIAL).json()["anonymous"] is True

    summary = client.get(f"/planning/consultations/{cid}/summary", headers=OFFICIAL).json()
    assert summary["total"] == 4
    assert summary["moderation"] == {"pending": 1, "approved": 2, "rejected": 1}
    assert summary["positions"] == {"support": 1, "oppose": 1, "suggestion": 1,
                                    "question": 0}
    zones = {z["zone"]: z["positions"] for z in summary["zones"]}
    assert zones["HC-02"] == {"support": 1, "oppose": 1, "suggestion": 0, "question": 0}
    assert zones["HC-01"]["oppose"] == 1 and zones["-"]["suggestion"] == 1
    assert summary["text"]["en"].startswith("4 comments (1 rejected)")
    assert client.get(f"/planning/consultations/{cid}/summary").status_code == 401


@pytest.mark.parametrize(("body", "says"), [
    ({"text": ""}, "text is the comment"),
    ({"position": "angry"}, "position is one of"),
    ({"location": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, "Point or Polygon"),
    ({"location": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1],
                                                        [0, 0]]]}}, "must be valid"),
    ({"location": {"type": "Point", "coordinates": [500, 0]}}, "in lon/lat"),
    ({"email": "nope"}, "not an e-mail address"),
    ({"rating": 5}, "Unknown members"),
])
def test_bad_comments_are_refused(plan: tuple[TestClient, str], body: dict[str, Any],
                                  says: str) -> None:
    client, cid = plan
    r = comment(client, cid, **body)
    assert r.status_code == 400 and says in r.json()["detail"], r.text
    waiting = client.get(f"/planning/consultations/{cid}/moderation", headers=OFFICIAL)
    assert waiting.json() == []


def test_comment_only_while_open_and_within_limits(plan: tuple[TestClient, str]) -> None:
    client, cid = plan
    now = datetime.now(UTC)
    r = client.post("/planning/consultations", headers=OFFICIAL, json={
        "plan": LAYER, "title": {"vi": "Đã đóng", "en": "Closed"},
        "opens": (now - timedelta(days=60)).isoformat(),
        "closes": (now - timedelta(days=30)).isoformat()})
    closed = r.json()["id"]
    assert comment(client, closed).status_code == 409
    for n in range(5):
        assert comment(client, cid, text=f"ý kiến {n}").status_code == 201
    assert comment(client, cid, text="thứ sáu").status_code == 429
    for bad in ({"plan": "urn:ngsi-ld:GisLayer:none", "title": {"vi": "a", "en": "b"},
                 "closes": now.isoformat()},
                {"plan": LAYER, "title": "only one language", "closes": now.isoformat()},
                {"plan": LAYER, "title": {"vi": "a", "en": "b"},
                 "opens": now.isoformat(), "closes": (now - timedelta(days=1)).isoformat()},
                {"plan": LAYER, "title": {"vi": "a", "en": "b"}, "closes": "tomorrow"}):
        r = client.post("/planning/consultations", headers=OFFICIAL, json=bad)
        assert r.status_code == 400, bad
    r = client.post("/planning/consultations", json={"plan": LAYER})
    assert r.status_code == 401
    assert client.get("/planning/consultations/urn:ngsi-ld:PlanConsultation:x").status_code \
        == 404
