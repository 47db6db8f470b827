"""Rules turning changes into incidents, on both store backends: thresholds, thresholds
relative to the entity's own levels held for a duration (read from history), hysteresis,
equality (devices gone silent), counting instead of duplicating, and rules as data (the
shipped packs, and rules added through /ioc/rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.errors import BadRequestData
from dothi.ioc.rules import PACKS, load_packs, parse_rule

E = "/ngsi-ld/v1/entities"


def settle(client: TestClient) -> None:
    """Wait until the rule engine has judged every change so far (an event: its queue
    is joined, nothing is slept)."""
    client.app.state.ioc.engine.queue.join()  # type: ignore[attr-defined]


def incidents(client: TestClient, **params: str) -> list[dict[str, Any]]:
    settle(client)
    r = client.get("/ioc/incidents", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def at(minutes_ago: float) -> str:
    when = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bin_level(client: TestClient, level: float) -> None:
    r = client.patch(f"{E}/urn:ngsi-ld:WasteContainer:b1/attrs",
                     json={"fillingLevel": {"type": "Property", "value": level}})
    assert r.status_code == 204, r.text


def test_shipped_packs_load() -> None:
    rules = load_packs(PACKS)
    assert {r.pack for r in rules} == {"flooding", "air_quality", "traffic", "lighting",
                                       "waste", "water", "devices"}
    assert len({r.id for r in rules}) == len(rules)


def test_a_threshold_opens_one_incident_and_counts_again(client: TestClient) -> None:
    r = client.post(E, json={"id": "urn:ngsi-ld:WasteContainer:b1", "type": "WasteContainer",
                             "name": {"type": "Property", "value": "Chợ Hàn"},
                             "fillingLevel": {"type": "Property", "value": 0.4},
                             "location": {"type": "GeoProperty", "value": {
                                 "type": "Point", "coordinates": [108.2242, 16.0683]}}})
    assert r.status_code == 201
    assert incidents(client) == []
    bin_level(client, 0.95)
    [opened] = incidents(client)
    assert opened["category"] == "waste" and opened["severity"] == "low"
    assert opened["name"] == "Thùng rác sắp tràn: Chợ Hàn (0.95)"
    assert opened["description"] == "Waste bin nearly overflowing: Chợ Hàn (0.95)"
    assert opened["alertSource"] == "rule:waste-bin-full"
    assert opened["relatedEntities"] == ["urn:ngsi-ld:WasteContainer:b1"]
    assert opened["location"]["coordinates"] == [108.2242, 16.0683]
    bin_level(client, 0.97)
    [same] = incidents(client)
    assert same["id"] == opened["id"] and same["occurrences"] == 2
    # A change of another attribute is no news for the rule.
    client.patch(f"{E}/urn:ngsi-ld:WasteContainer:b1/attrs",
                 json={"temperature": {"type": "Property", "value": 30}})
    assert incidents(client)[0]["occurrences"] == 2

    # Hysteresis: once resolved, a new incident only after the bin was emptied (<= 0.5).
    eid = opened["id"]
    for status, extra in [("acknowledged", {}), ("assigned", {"agency": "sanitation"}),
                          ("inProgress", {}), ("resolved", {})]:
        r = client.post(f"/ioc/incidents/{eid}/status", json={"status": status, **extra})
        assert r.status_code == 200, r.text
    bin_level(client, 0.96)
    assert [i["id"] for i in incidents(client)] == [eid]
    bin_level(client, 0.7)  # below the threshold, not yet back to normal
    bin_level(client, 0.95)
    assert [i["id"] for i in incidents(client)] == [eid]
    bin_level(client, 0.3)
    bin_level(client, 0.92)
    found = incidents(client)
    assert len(found) == 2 and found[0]["id"] != eid


def flood(client: TestClient, value: float, minutes_ago: float) -> None:
    r = client.patch(f"{E}/urn:ngsi-ld:FloodMonitoring:f1/attrs", json={
        "currentLevel": {"type": "Property", "value": value, "unitCode": "MTR",
                         "observedAt": at(minutes_ago)}})
    assert r.status_code == 204, r.text


def test_a_duration_is_read_from_history(client: TestClient) -> None:
    r = client.post(E, json={"id": "urn:ngsi-ld:FloodMonitoring:f1", "type": "FloodMonitoring",
                             "name": {"type": "Property", "value": "Sông Hàn"},
                             "alertLevel": {"type": "Property", "value": 1.0},
                             "dangerLevel": {"type": "Property", "value": 2.0},
                             "currentLevel": {"type": "Property", "value": 0.5,
                                              "observedAt": at(60)}})
    assert r.status_code == 201
    # The alert rule wants the level above 1.0 for ten minutes (PT10M) of observations.
    def alerts() -> list[dict[str, Any]]:
        return [i for i in incidents(client) if i["alertSource"] == "rule:flood-station-alert"]

    flood(client, 1.3, 50)
    flood(client, 0.9, 32)
    flood(client, 1.4, 29)
    flood(client, 1.5, 23)  # ten minutes back: 0.9 at -32 min is inside them
    assert alerts() == []
    flood(client, 1.45, 20)  # ten minutes back, 0.9 was still the level in force
    assert alerts() == []
    flood(client, 1.5, 15)  # since 1.4 at -29 min, above 1.0 all along
    [opened] = alerts()
    assert opened["severity"] == "high"
    assert opened["name"] == "Mực nước vượt báo động tại Sông Hàn: 1.5 m"


def test_a_rate_of_change_is_read_from_history(client: TestClient) -> None:
    r = client.post(E, json={"id": "urn:ngsi-ld:FloodMonitoring:f1", "type": "FloodMonitoring",
                             "name": {"type": "Property", "value": "Cầu Rồng"},
                             "alertLevel": {"type": "Property", "value": 5.0},
                             "dangerLevel": {"type": "Property", "value": 6.0},
                             "currentLevel": {"type": "Property", "value": 1.0,
                                              "observedAt": at(90)}})
    assert r.status_code == 201

    def rising() -> list[dict[str, Any]]:
        return [i for i in incidents(client)
                if i["alertSource"] == "rule:flood-station-rising"]

    flood(client, 1.2, 50)  # +0.2 on what was in force 30 min earlier (1.0, at -90 min)
    flood(client, 1.25, 25)  # +0.25 on 1.0: at -55 min, 1.2 had not come yet
    assert rising() == []
    flood(client, 1.6, 10)  # +0.4 on 1.2, in force 30 min earlier (at -40 min)
    [opened] = rising()
    assert opened["name"] == "Nước lên nhanh tại Cầu Rồng: 1.6 m"


def test_devices_gone_silent_and_rules_added_through_the_api(client: TestClient) -> None:
    r = client.post(E, json={"id": "urn:ngsi-ld:Device:d1", "type": "Device",
                             "deviceState": {"type": "Property", "value": "online"}})
    assert r.status_code == 201
    client.patch(f"{E}/urn:ngsi-ld:Device:d1/attrs",
                 json={"deviceState": {"type": "Property", "value": "silent"}})
    [opened] = incidents(client)
    assert opened["category"] == "device" and opened["name"] == "Thiết bị mất kết nối: d1"

    rule = {"id": "noise-night", "entityType": "NoiseLevelObserved", "attribute": "LAeq",
            "above": 55, "category": "other", "severity": "low",
            "title": {"vi": "Ồn về đêm: {value} dB", "en": "Night noise: {value} dB"}}
    r = client.post("/ioc/rules", json=rule)
    assert r.status_code == 201, r.text
    listed = {x["id"]: x for x in client.get("/ioc/rules").json()}
    assert listed["noise-night"]["pack"] is None
    assert listed["waste-bin-full"]["pack"] == "waste"
    client.post(E, json={"id": "urn:ngsi-ld:NoiseLevelObserved:n1",
                         "type": "NoiseLevelObserved",
                         "LAeq": {"type": "Property", "value": 61}})
    assert [i["name"] for i in incidents(client, category="other")] == ["Ồn về đêm: 61 dB"]
    assert client.delete("/ioc/rules/noise-night").status_code == 204
    assert client.delete("/ioc/rules/noise-night").status_code == 404
    assert client.delete("/ioc/rules/waste-bin-full").status_code == 404  # shipped
    assert "noise-night" not in {x["id"] for x in client.get("/ioc/rules").json()}


@pytest.mark.parametrize("change,words", [
    ({"id": "bad id!"}, "needs an id"),
    ({"attribute": None}, "attribute is required"),
    ({"above": 1, "below": 0}, "exactly one of above, below, equals"),
    ({"above": {"attr": "x"}}, "above is a number or"),
    ({"for": "ten minutes"}, "ISO 8601 duration"),
    ({"severity": "extreme"}, "severity must be one of"),
    ({"colour": "red"}, "Unknown rule members"),
    ({"id": "waste-bin-full"}, "a shipped rule's id"),
])
def test_bad_rules_are_refused(client: TestClient, change: dict[str, Any],
                               words: str) -> None:
    rule = {"id": "r1", "entityType": "T", "attribute": "a", "above": 1,
            "category": "other", "severity": "low", "title": "T {value}", **change}
    r = client.post("/ioc/rules", json={k: v for k, v in rule.items() if v is not None})
    assert r.status_code == 400, r.text
    assert words in r.json()["detail"]
    assert "r1" not in {x["id"] for x in client.get("/ioc/rules").json()}


def test_parse_rule_reads_relative_thresholds() -> None:
    rule = parse_rule({"id": "x", "entityType": "FloodMonitoring", "attribute": "currentLevel",
                       "above": {"attribute": "alertLevel", "offset": 0.5},
                       "clear": {"attribute": "alertLevel"}, "for": "P1DT2H3M4S",
                       "category": "flooding", "severity": "high", "title": "x"})
    levels = {"alertLevel": 2.0}.get
    assert rule.for_seconds == 93784
    assert rule.fires(2.6, levels) and not rule.fires(2.4, levels)
    assert rule.cleared(2.0, levels) and not rule.cleared(2.3, levels)
    with pytest.raises(BadRequestData):
        parse_rule({"id": "x"})


def test_rate_rules_are_checked() -> None:
    base = {"id": "r", "entityType": "T", "attribute": "a", "category": "other",
            "severity": "low", "title": "t"}
    rule = parse_rule({**base, "falls": {"by": 2, "within": "PT1H"}})
    assert rule.rate is not None and rule.rate.by == -2 and rule.rate.within_seconds == 3600
    assert rule.fires(5, {}.get, 7.5) and not rule.fires(6, {}.get, 7.5)
    assert not rule.fires(5, {}.get, None)  # nothing in force back then
    for bad in ({"rises": {"by": 0, "within": "PT1H"}}, {"rises": {"by": 1}},
                {"rises": {"by": 1, "within": "PT1H"}, "for": "PT5M"}):
        with pytest.raises(BadRequestData):
            parse_rule({**base, **bad})


def test_an_area_rule_opens_one_incident_for_the_ward(client: TestClient) -> None:
    ring = [[108.20, 16.05], [108.23, 16.05], [108.23, 16.08], [108.20, 16.08],
            [108.20, 16.05]]
    r = client.post(E, json={"id": "urn:ngsi-ld:AdministrativeArea:hai-chau",
                             "type": "AdministrativeArea",
                             "name": {"type": "LanguageProperty",
                                      "languageMap": {"vi": "Hải Châu", "en": "Hai Chau"}},
                             "location": {"type": "GeoProperty", "value": {
                                 "type": "Polygon", "coordinates": [ring]}}})
    assert r.status_code == 201, r.text
    stations = [(108.21, 16.06), (108.22, 16.07), (108.215, 16.075), (108.30, 16.10)]
    for n, (lon, lat) in enumerate(stations):
        r = client.post(E, json={
            "id": f"urn:ngsi-ld:FloodMonitoring:s{n}", "type": "FloodMonitoring",
            "alertLevel": {"type": "Property", "value": 1.0},
            "currentLevel": {"type": "Property", "value": 0.95},
            "location": {"type": "GeoProperty", "value": {
                "type": "Point", "coordinates": [lon, lat]}}})
        assert r.status_code == 201, r.text

    def widespread() -> list[dict[str, Any]]:
        return [i for i in incidents(client)
                if i["alertSource"] == "rule:flood-ward-widespread"]

    def level(n: int, value: float) -> None:
        r = client.patch(f"{E}/urn:ngsi-ld:FloodMonitoring:s{n}/attrs", json={
            "currentLevel": {"type": "Property", "value": value}})
        assert r.status_code == 204

    level(3, 1.4)  # outside the ward
    level(0, 1.2)
    level(1, 1.1)
    assert widespread() == []  # two in the ward
    level(2, 1.3)
    [opened] = widespread()
    assert opened["ward"] == "Hải Châu"
    assert opened["name"] == "Ngập diện rộng tại Hải Châu: 3 trạm vượt mức báo động"
    assert opened["relatedEntities"] == [f"urn:ngsi-ld:FloodMonitoring:s{n}" for n in range(3)]
    assert opened["location"]["type"] == "Polygon"
    level(0, 1.25)  # still three: the same incident counts again
    [same] = widespread()
    assert same["id"] == opened["id"] and same["occurrences"] == 2


def test_a_geofence_fires_on_entering_and_leaving(client: TestClient) -> None:
    square = [[108.20, 16.05], [108.21, 16.05], [108.21, 16.06], [108.20, 16.06],
              [108.20, 16.05]]
    r = client.post(E, json={"id": "urn:ngsi-ld:RestrictedTrafficArea:old-quarter",
                             "type": "RestrictedTrafficArea",
                             "name": {"type": "Property", "value": "Phố cổ"},
                             "location": {"type": "GeoProperty", "value": {
                                 "type": "Polygon", "coordinates": [square]}}})
    assert r.status_code == 201
    for kind in ("enters", "leaves"):
        r = client.post("/ioc/rules", json={
            "id": f"truck-{kind}", "entityType": "Vehicle", "attribute": "location",
            kind: "RestrictedTrafficArea", "category": "traffic", "severity": "low",
            "title": {"vi": f"{{name}} {kind} {{value}}", "en": f"{{name}} {kind} {{value}}"}})
        assert r.status_code == 201, r.text

    def move(lon: float, lat: float) -> None:
        r = client.patch(f"{E}/urn:ngsi-ld:Vehicle:truck-7/attrs", json={
            "location": {"type": "GeoProperty", "value": {
                "type": "Point", "coordinates": [lon, lat]}}})
        assert r.status_code == 204

    client.post(E, json={"id": "urn:ngsi-ld:Vehicle:truck-7", "type": "Vehicle",
                         "name": {"type": "Property", "value": "43C-123.45"},
                         "location": {"type": "GeoProperty", "value": {
                             "type": "Point", "coordinates": [108.25, 16.07]}}})
    move(108.24, 16.07)  # still outside
    assert incidents(client) == []
    move(108.205, 16.055)  # in
    [entered] = incidents(client)
    assert entered["name"] == "43C-123.45 enters Phố cổ"
    assert entered["relatedEntities"] == ["urn:ngsi-ld:Vehicle:truck-7",
                                          "urn:ngsi-ld:RestrictedTrafficArea:old-quarter"]
    move(108.206, 16.056)  # moving inside: nothing new
    assert len(incidents(client)) == 1
    move(108.30, 16.10)  # out
    names = sorted(i["name"] for i in incidents(client))
    assert names == ["43C-123.45 enters Phố cổ", "43C-123.45 leaves Phố cổ"]


def test_a_rule_engine_that_falls_behind_counts_what_it_skips(client: TestClient) -> None:
    from dothi.ioc.engine import RuleEngine

    ioc = client.app.state.ioc  # type: ignore[attr-defined]
    stalled = RuleEngine(ioc.broker, ioc.desk)  # not started: nothing drains its queue
    stalled.queue.maxsize = 1
    doc = {"id": "urn:ngsi-ld:WasteContainer:x",
           "type": ["https://uri.etsi.org/ngsi-ld/default-context/WasteContainer"],
           "modifiedAt": "2026-11-25T00:00:00Z",
           "https://uri.etsi.org/ngsi-ld/default-context/fillingLevel": [
               {"type": "Property", "value": 0.95, "modifiedAt": "2026-11-25T00:00:00Z"}]}
    from dothi.store.base import Outcome

    for _ in range(3):
        stalled.on_write("t", [Outcome(doc["id"], "updated", None, None, doc)])
    assert stalled.queue.qsize() == 1 and stalled.dropped == 2
    assert client.get("/ioc/summary").json()["changesNotJudged"] == 0  # the app's own
