"""The incident workflow through /ioc, on both store backends: opening (by hand, and
counted again instead of duplicated), the moves and the ones refused, service-level due
times and escalation, comments and attachments, and the history the temporal API keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.receiver import receiver

FLOOD = {
    "title": "Ngập sâu 40 cm đường Nguyễn Văn Linh", "category": "flooding",
    "severity": "high", "subCategory": "flood", "ward": "Hải Châu",
    "location": {"type": "Point", "coordinates": [108.2145, 16.0598]},
    "by": "operator-1", "related": ["urn:ngsi-ld:FloodMonitoring:danang-flood-01"],
}


def open_incident(client: TestClient, **extra: Any) -> str:
    r = client.post("/ioc/incidents", json={**FLOOD, **extra})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/ioc/incidents/{r.json()['id']}"
    return str(r.json()["id"])


def incident(client: TestClient, eid: str) -> dict[str, Any]:
    r = client.get(f"/ioc/incidents/{eid}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def move(client: TestClient, eid: str, status: str, **extra: Any) -> Any:
    return client.post(f"/ioc/incidents/{eid}/status", json={"status": status, **extra})


def test_an_incident_goes_through_its_workflow(client: TestClient) -> None:
    eid = open_incident(client)
    got = incident(client, eid)
    assert got["type"] == "Incident"
    assert got["status"] == "detected"
    assert got["category"] == "flooding" and got["severity"] == "high"
    assert got["location"]["coordinates"] == [108.2145, 16.0598]
    issued = datetime.fromisoformat(got["dateIssued"]["@value"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(got["dueAt"]["@value"].replace("Z", "+00:00"))
    assert due - issued == timedelta(minutes=15)  # high: acknowledged within 15 min
    assert move(client, eid, "acknowledged", by="operator-1").json() == {
        "id": eid, "from": "detected", "status": "acknowledged"}
    r = move(client, eid, "assigned", by="operator-1")
    assert r.status_code == 400 and "agency" in r.json()["detail"]
    assert move(client, eid, "assigned", agency="drainage", by="operator-1").status_code == 200
    got = incident(client, eid)
    assert got["assignedAgency"] == "drainage"
    due = datetime.fromisoformat(got["dueAt"]["@value"].replace("Z", "+00:00"))
    assert due - issued == timedelta(minutes=240)  # high: resolved within 4 h of detection
    assert move(client, eid, "inProgress", by="drainage-team").status_code == 200
    assert move(client, eid, "resolved", by="drainage-team",
                note="Bơm xong, nước đã rút / pumped, water gone").status_code == 200
    assert move(client, eid, "closed", by="operator-1").status_code == 200
    got = incident(client, eid)
    assert got["status"] == "closed" and "dueAt" not in got
    assert "dateResolved" in got and "dateClosed" in got
    assert [c["status"] for c in got["comments"]] == [
        "acknowledged", "assigned", "inProgress", "resolved", "closed"]
    assert got["comments"][3]["text"].startswith("Bơm xong")
    # The full history is the temporal API's.
    history = client.get(f"/ngsi-ld/v1/temporal/entities/{eid}",
                         params={"attrs": "status", "options": "temporalValues"}).json()
    assert [v[0] for v in history["status"]["values"]] == [
        "detected", "acknowledged", "assigned", "inProgress", "resolved", "closed"]


def test_moves_that_skip_steps_are_refused_and_change_nothing(client: TestClient) -> None:
    eid = open_incident(client)
    r = move(client, eid, "resolved")
    assert r.status_code == 409
    assert r.json()["type"] == "urn:dothi:errors:InvalidTransition"
    assert "can become acknowledged, closed" in r.json()["detail"]
    r = move(client, eid, "closed")
    assert r.status_code == 400 and "note" in r.json()["detail"]
    for body, words in [({"status": "flying"}, "status must be one of"),
                        ({"status": "assigned", "agency": "aliens"}, "agency must be one of"),
                        ({"status": "acknowledged", "by": ["x"]}, "by must be a string"),
                        ({"status": "acknowledged", "colour": "red"}, "Unknown members")]:
        r = client.post(f"/ioc/incidents/{eid}/status", json=body)
        assert r.status_code == 400, r.text
        assert words in r.json()["detail"]
    assert incident(client, eid)["status"] == "detected"
    assert move(client, eid, "closed", note="Báo nhầm / false alarm").status_code == 200
    assert move(client, eid, "acknowledged").status_code == 409  # closed is the end
    assert move(client, "urn:ngsi-ld:Incident:nope", "acknowledged").status_code == 404


def test_bad_incidents_are_refused(client: TestClient) -> None:
    for change, words in [({"category": "volcano"}, "category must be one of"),
                          ({"severity": "apocalyptic"}, "severity must be one of"),
                          ({"title": ""}, "title must be a non-empty string"),
                          ({"title": 5}, "title must be a string"),
                          ({"location": {"type": "Point", "coordinates": [500, 0]}},
                           "location"),
                          ({"related": "urn:x"}, "related is a list")]:
        r = client.post("/ioc/incidents", json={**FLOOD, **change})
        assert r.status_code == 400, (change, r.text)
        assert words in r.json()["detail"], r.json()
    assert client.get("/ioc/incidents").json() == []


def test_the_same_condition_does_not_open_duplicates(client: TestClient) -> None:
    eid = open_incident(client, dedupKey="flood:nguyen-van-linh")
    r = client.post("/ioc/incidents", json={**FLOOD, "dedupKey": "flood:nguyen-van-linh"})
    assert r.status_code == 200
    assert r.json() == {"id": eid, "created": False}
    assert incident(client, eid)["occurrences"] == 2
    # Once resolved, the condition coming back is a new incident.
    for status, extra in [("acknowledged", {}), ("assigned", {"agency": "drainage"}),
                          ("inProgress", {}), ("resolved", {})]:
        assert move(client, eid, status, **extra).status_code == 200
    again = open_incident(client, dedupKey="flood:nguyen-van-linh")
    assert again != eid


def test_list_filters_and_workflow(client: TestClient) -> None:
    flood = open_incident(client)
    air = open_incident(client, title="PM2.5 cao", category="airQuality", severity="medium",
                        ward="Sơn Trà")
    move(client, flood, "acknowledged")
    listed = client.get("/ioc/incidents")
    assert [i["id"] for i in listed.json()] == [air, flood]  # newest first
    assert listed.headers["NGSILD-Results-Count"] == "2"
    assert [i["id"] for i in client.get(
        "/ioc/incidents", params={"status": "detected,assigned"}).json()] == [air]
    assert [i["id"] for i in client.get(
        "/ioc/incidents", params={"category": "flooding"}).json()] == [flood]
    assert [i["id"] for i in client.get(
        "/ioc/incidents", params={"ward": "Sơn Trà"}).json()] == [air]
    r = client.get("/ioc/incidents", params={"status": "lost"})
    assert r.status_code == 400
    flow = client.get("/ioc/workflow").json()
    assert flow["statuses"]["detected"] == {"vi": "Phát hiện", "en": "Detected"}
    assert flow["moves"]["detected"] == ["acknowledged", "closed"]
    assert "drainage" in flow["agencies"]
    # Incidents are entities like any other.
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Incident", "q": "status==\"detected\""})
    assert [e["id"] for e in r.json()] == [air]


def test_comments_and_attachments(client: TestClient) -> None:
    eid = open_incident(client)
    r = client.post(f"/ioc/incidents/{eid}/comments",
                    json={"text": "Đã cử đội bơm / pump team sent", "by": "operator-2"})
    assert r.status_code == 201
    r = client.post(f"/ioc/incidents/{eid}/attachments",
                    json={"url": "https://example.org/photo.jpg", "title": "Ảnh hiện trường"})
    assert r.status_code == 201
    assert client.post(f"/ioc/incidents/{eid}/attachments",
                       json={"url": "file:///etc/passwd"}).status_code == 400
    assert client.post(f"/ioc/incidents/{eid}/comments", json={"text": ""}).status_code == 400
    got = incident(client, eid)
    assert got["comments"][0]["text"] == "Đã cử đội bơm / pump team sent"
    assert got["comments"][0]["by"] == "operator-2"
    assert got["attachments"][0]["url"] == "https://example.org/photo.jpg"


def test_overdue_incidents_escalate_once_per_period(client: TestClient) -> None:
    desk = client.app.state.ioc.desk  # type: ignore[attr-defined]
    eid = open_incident(client, severity="critical")  # acknowledge within 5 min
    done = open_incident(client, severity="critical")
    move(client, done, "closed", note="duplicate")
    with receiver() as rec:
        r = client.post("/ngsi-ld/v1/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "Incident"}],
            "watchedAttributes": ["escalationLevel"],
            "notification": {"endpoint": {"uri": rec.url},
                             "attributes": ["escalationLevel"]}})
        assert r.status_code == 201, r.text
        now = datetime.now(UTC)
        assert desk.escalate(now + timedelta(minutes=4)) == 0
        assert desk.escalate(now + timedelta(minutes=6)) == 1  # the closed one never
        assert desk.escalate(now + timedelta(minutes=7)) == 0  # due again 5 min later
        assert desk.escalate(now + timedelta(minutes=12)) == 1
        note = rec.next()
        assert note.body["data"][0]["id"] == eid
        assert note.body["data"][0]["escalationLevel"]["value"] == 1
    got = incident(client, eid)
    assert got["escalationLevel"] == 2
    assert "dateEscalated" in got


def test_the_summary_counts_what_an_operator_watches(client: TestClient) -> None:
    flood = open_incident(client)
    open_incident(client, category="airQuality", title="PM2.5")
    closed = open_incident(client, category="waste", title="Bin")
    move(client, closed, "closed", note="duplicate")
    client.app.state.ioc.desk.escalate(  # type: ignore[attr-defined]
        datetime.now(UTC) + timedelta(hours=1))
    for n, (level, alert) in enumerate([(1.2, 1.0), (0.5, 1.0)]):
        client.post("/ngsi-ld/v1/entities", json={
            "id": f"urn:ngsi-ld:FloodMonitoring:s{n}", "type": "FloodMonitoring",
            "currentLevel": {"type": "Property", "value": level},
            "alertLevel": {"type": "Property", "value": alert}})
    client.post("/ngsi-ld/v1/entities", json={
        "id": "urn:ngsi-ld:AirQualityObserved:a1", "type": "AirQualityObserved",
        "pm25": {"type": "Property", "value": 38.5}})
    for n, state in enumerate(["online", "online", "silent"]):
        client.post("/ngsi-ld/v1/entities", json={
            "id": f"urn:ngsi-ld:Device:d{n}", "type": "Device",
            "deviceState": {"type": "Property", "value": state}})
    client.app.state.ioc.engine.queue.join()  # type: ignore[attr-defined]
    figures = client.get("/ioc/summary").json()
    # The silent device opened an incident of its own (the devices rule pack).
    assert figures["openIncidents"] == {"flooding": 1, "airQuality": 1, "device": 1}
    assert figures["openIncidentsTotal"] == 3
    assert figures["overdueIncidents"] == 2
    assert figures["devices"] == {"online": 2, "silent": 1, "unknown": 0}
    assert figures["floodStationsAboveAlert"] == 1
    assert figures["pm25Max"] == 38.5
    assert figures["warningsInForce"] == 0
    assert incident(client, flood)["escalationLevel"] == 1
