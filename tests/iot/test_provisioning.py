"""Provisioning (/iot/services, /iot/devices) and measures over HTTP (/iot/json, /iot/d),
on both store backends, through the HTTP API as an IoT Agent client would use it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from dothi.store import audit

ENTITIES = "/ngsi-ld/v1/entities"
LAMP = "urn:ngsi-ld:Streetlight:dn-lamp-1"

GROUP = {
    "apikey": "dn-lights", "entity_type": "Streetlight", "protocol": "UL",
    "attributes": [
        {"object_id": "l", "name": "illuminanceLevel", "type": "Number", "unitCode": "C62"},
        {"object_id": "p", "name": "powerState", "type": "Text"},
        {"object_id": "w", "name": "powerConsumption", "type": "Number", "unitCode": "WTT",
         "expression": "w * 1000"},
    ],
    "commands": [{"name": "dim", "type": "command"}],
    "explicitAttrs": True,
}
DEVICE = {
    "device_id": "lamp-1", "apikey": "dn-lights", "entity_name": LAMP,
    "timezone": "Asia/Ho_Chi_Minh",
    "static_attributes": [
        {"name": "location", "type": "GeoProperty",
         "value": {"type": "Point", "coordinates": [108.2272, 16.0612]}},
        {"name": "name", "type": "Text", "value": "Cầu Rồng 1"}],
}


def provision(client: TestClient, group: dict | None = None, device: dict | None = None,
              ) -> None:
    r = client.post("/iot/services", json={"services": [group or GROUP]})
    assert r.status_code == 201, r.text
    r = client.post("/iot/devices", json={"devices": [device or DEVICE]})
    assert r.status_code == 201, r.text


def entity(client: TestClient, eid: str = LAMP, **params: str) -> dict[str, Any]:
    r = client.get(f"{ENTITIES}/{eid}", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_provisioning_creates_the_entity_and_its_device(client: TestClient) -> None:
    provision(client)
    lamp = entity(client)
    assert lamp["type"] == "Streetlight"
    assert lamp["location"]["value"]["coordinates"] == [108.2272, 16.0612]
    assert lamp["name"]["value"] == "Cầu Rồng 1"
    assert lamp["dim_status"]["value"] == "UNKNOWN"
    device = entity(client, "urn:ngsi-ld:Device:lamp-1", options="keyValues")
    assert device["type"] == "Device"
    assert device["deviceState"] == "unknown"
    assert device["controlledAsset"] == [LAMP]
    assert set(device["controlledProperty"]) == {
        "illuminanceLevel", "powerState", "powerConsumption"}
    listed = client.get("/iot/devices").json()
    assert listed["count"] == 1
    assert listed["devices"][0]["device_id"] == "lamp-1"
    assert client.get("/iot/services").json()["services"][0]["apikey"] == "dn-lights"
    assert client.get("/iot/devices/lamp-1").json()["entity_name"] == LAMP


def test_bad_and_duplicate_provisioning_changes_nothing(client: TestClient) -> None:
    provision(client)
    r = client.post("/iot/services", json={"services": [GROUP]})
    assert r.status_code == 409
    r = client.post("/iot/devices", json={"devices": [
        {**DEVICE, "device_id": "lamp-2", "entity_name": "urn:ngsi-ld:Streetlight:x"},
        DEVICE]})
    assert r.status_code == 409, r.text
    # All or nothing: lamp-2, which came first, was not provisioned either.
    assert client.get("/iot/devices/lamp-2").status_code == 404
    assert client.get(f"{ENTITIES}/urn:ngsi-ld:Streetlight:x").status_code == 404
    for body, words in [
        ({"services": [{**GROUP, "apikey": "b", "attributes": [
            {"object_id": "x", "name": "x", "type": "Nonsense"}]}]}, "unknown attribute type"),
        ({"services": [{**GROUP, "apikey": "c", "attributes": [
            {"object_id": "x", "name": "x", "expression": "x * * 2"}]}]}, "bad expression"),
        ({"services": [{**GROUP, "apikey": "d", "timezone": "Mars/Olympus"}]}, "time zone"),
        ({"services": []}, "at least one"),
        ({"services": [{"apikey": "e"}]}, "entity_type"),
    ]:
        r = client.post("/iot/services", json=body)
        assert r.status_code == 400, r.text
        assert words in r.json()["detail"], r.json()
    r = client.post("/iot/devices", json={"devices": [{"device_id": "z", "apikey": "nope"}]})
    assert r.status_code == 400
    assert "no service group has apikey nope" in r.json()["detail"]
    assert client.get("/iot/services").json()["count"] == 1
    assert client.get("/iot/devices").json()["count"] == 1


def test_measures_over_http_become_attributes(client: TestClient) -> None:
    provision(client)
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"},
                    content="l|0.6|p|on|w|0.0946|ignored|1",
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text
    lamp = entity(client)
    assert lamp["illuminanceLevel"]["value"] == 0.6
    assert lamp["illuminanceLevel"]["unitCode"] == "C62"
    assert lamp["powerState"]["value"] == "on"
    assert abs(lamp["powerConsumption"]["value"] - 94.6) < 1e-9  # the expression
    assert lamp["powerConsumption"]["unitCode"] == "WTT"
    assert "observedAt" in lamp["illuminanceLevel"]
    assert "ignored" not in lamp  # explicitAttrs
    # A local time without offset is read in the device's time zone (UTC+7).
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"},
                    content="2026-11-25T18:00:00|l|0.3")
    assert r.status_code == 200, r.text
    assert entity(client)["illuminanceLevel"]["observedAt"] == "2026-11-25T11:00:00.000Z"
    history = client.get(f"/ngsi-ld/v1/temporal/entities/{LAMP}",
                         params={"attrs": "illuminanceLevel", "lastN": "10"}).json()
    # History is in observation order, and 18:00 local came before the first message.
    assert [i["value"] for i in history["illuminanceLevel"]] == [0.3, 0.6]


def test_json_device_and_measure_groups(client: TestClient) -> None:
    provision(client, {"apikey": "dn-air", "entity_type": "AirQualityObserved",
                       "protocol": "JSON",
                       "attributes": [{"object_id": "pm25", "name": "pm25", "type": "Number",
                                       "unitCode": "GQ"}]},
              {"device_id": "aq-1", "apikey": "dn-air"})
    eid = "urn:ngsi-ld:AirQualityObserved:aq-1"
    r = client.post("/iot/json", params={"k": "dn-air", "i": "aq-1"}, json=[
        {"pm25": 31.5, "TimeInstant": "2026-11-25T10:00:00Z"},
        {"pm25": 35.0, "TimeInstant": "2026-11-25T10:05:00Z", "note": "rush hour"}])
    assert r.status_code == 200, r.text
    air = entity(client, eid)
    assert air["pm25"]["value"] == 35.0
    assert air["pm25"]["observedAt"] == "2026-11-25T10:05:00.000Z"
    assert air["note"]["value"] == "rush hour"  # not explicit: unmapped measures pass
    history = client.get(f"/ngsi-ld/v1/temporal/entities/{eid}",
                         params={"attrs": "pm25"}).json()
    assert [i["value"] for i in history["pm25"]] == [31.5, 35.0]


def test_refused_messages_are_counted_and_change_nothing(client: TestClient) -> None:
    provision(client)
    client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|0.5")
    before = entity(client)
    cases = [
        ({"k": "dn-lights", "i": "ghost"}, "l|1", 404, "unknown-device"),
        ({"k": "nokey", "i": "lamp-1"}, "l|1", 404, "unknown-apikey"),
        ({"k": "dn-lights", "i": "lamp-1"}, "l|0.9|p", 400, "malformed"),
        # The second value cannot be a number: the first is not written either.
        ({"k": "dn-lights", "i": "lamp-1"}, "p|off|l|bright", 400, "malformed"),
        ({"k": "dn-lights", "i": "lamp-1"}, "l|0.9#p|off|l|dim", 400, "malformed"),
    ]
    for params, body, status, reason in cases:
        r = client.post("/iot/d", params=params, content=body)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    after = entity(client)
    assert after["illuminanceLevel"] == before["illuminanceLevel"]
    assert "powerState" not in after
    stats = client.get("/iot/about").json()["ingestion"]
    assert stats["rejected"] == {"unknown-device": 1, "unknown-apikey": 1, "malformed": 3}
    assert stats["applied"] == 1
    assert stats["recentProblems"][-1]["deviceId"] == "lamp-1"
    r = client.post("/iot/json", params={"k": "dn-lights", "i": "lamp-1"}, content=b"{")
    assert r.status_code == 400


def test_schema_validation_rejects_or_reports(client: TestClient) -> None:
    group = {**GROUP, "schema_validation": "reject", "explicitAttrs": False}
    provision(client, group)
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|7|p|on")
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "illuminanceLevel" in detail and "maximum" in detail, detail
    assert "illuminanceLevel" not in entity(client)
    r = client.put("/iot/services", params={"apikey": "dn-lights"},
                   json={"schema_validation": "report"})
    assert r.status_code == 204, r.text
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|7")
    assert r.status_code == 200, r.text
    assert entity(client)["illuminanceLevel"]["value"] == 7
    stats = client.get("/iot/about").json()["ingestion"]
    assert stats["rejected"] == {"schema": 1}
    assert stats["schemaReported"] == {"schema": 1}
    r = client.post("/iot/services", json={"services": [
        {"apikey": "x", "entity_type": "NoSuchModel", "schema_validation": "reject"}]})
    assert r.status_code == 400
    assert "NoSuchModel" in r.json()["detail"]


def test_update_and_delete(client: TestClient) -> None:
    provision(client)
    r = client.put("/iot/devices/lamp-1", json={"device_id": "other"})
    assert r.status_code == 400
    r = client.put("/iot/devices/lamp-1", json={"static_attributes": [
        {"name": "name", "type": "Text", "value": "Renamed"}]})
    assert r.status_code == 204, r.text
    assert entity(client)["name"]["value"] == "Renamed"
    assert client.delete("/iot/devices/lamp-1").status_code == 204
    assert client.get("/iot/devices/lamp-1").status_code == 404
    assert client.get(f"{ENTITIES}/urn:ngsi-ld:Device:lamp-1").status_code == 404
    entity(client)  # the measured entity stays
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|1")
    assert r.status_code == 404
    assert client.delete("/iot/services", params={"apikey": "dn-lights"}).status_code == 204
    assert client.get("/iot/services").json()["count"] == 0


def test_autoprovision_and_tenants(client: TestClient) -> None:
    headers = {"fiware-service": "hue"}
    r = client.post("/iot/services", headers=headers, json={"services": [
        {"apikey": "hue-bins", "entity_type": "WasteContainer", "protocol": "JSON",
         "autoprovision": True}]})
    assert r.status_code == 201, r.text
    r = client.post("/iot/json", params={"k": "hue-bins", "i": "bin-9"},
                    json={"fillingLevel": 0.4})
    assert r.status_code == 200, r.text
    r = client.get(f"{ENTITIES}/urn:ngsi-ld:WasteContainer:bin-9",
                   headers={"NGSILD-Tenant": "hue"})
    assert r.json()["fillingLevel"]["value"] == 0.4
    assert client.get(f"{ENTITIES}/urn:ngsi-ld:WasteContainer:bin-9").status_code == 404
    assert client.get("/iot/devices", headers=headers).json()["count"] == 1
    assert client.get("/iot/devices").json()["count"] == 0
    # An API key is one tenant's: another tenant cannot take it.
    r = client.post("/iot/services", json={"services": [
        {"apikey": "hue-bins", "entity_type": "WasteContainer"}]})
    assert r.status_code == 409


def test_settings_page_hides_broker_passwords(tmp_path: Any) -> None:
    from dothi.app import create_app
    from dothi.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path}/x.db", context_fetch=False,
                        iot_mqtt_url="mqtt://iot:s3cret@127.0.0.1:1")
    with TestClient(create_app(settings)) as client:
        shown = client.get("/-/settings").json()
    assert shown["iot_mqtt_url"] == "mqtt://iot:***@127.0.0.1:1"
    assert "s3cret" not in str(shown)


def test_a_full_queue_refuses_with_503_and_counts(client: TestClient) -> None:
    from dothi.iot.ingest import Ingestor, Rejected

    provision(client)
    iot = client.app.state.iot  # type: ignore[attr-defined]
    # A writer that is not running and room for one message: the second waits 0 s.
    stalled = Ingestor(iot.broker, iot.registry, iot.catalogue, max_queue=1)
    stalled.measures("dn-lights", "lamp-1", b"l|0.1", timeout=0)
    try:
        stalled.measures("dn-lights", "lamp-1", b"l|0.2", timeout=0)
    except Rejected as exc:
        assert exc.status == 503
        assert exc.to_problem()["type"] == "urn:dothi:errors:Overloaded"
    else:
        raise AssertionError("a full queue took a message")
    assert stalled.stats.rejected == {"overloaded": 1}


def test_measure_groups_each_keep_their_own_instances(client: TestClient) -> None:
    provision(client)
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|0.1#p|on")
    assert r.status_code == 200, r.text
    history = client.get(f"/ngsi-ld/v1/temporal/entities/{LAMP}",
                         params={"attrs": "illuminanceLevel,powerState"}).json()
    assert [i["value"] for i in history["illuminanceLevel"]] == [0.1]
    assert [i["value"] for i in history["powerState"]] == ["on"]


def test_measures_are_audited_as_their_device(client: TestClient) -> None:
    """Devices' measures are written in batches of many devices; each entity's row in
    the audit log names the device that sent it, and the chain still verifies."""
    provision(client)
    assert client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"},
                       content="l|0.5").status_code == 200
    store = client.app.state.broker.store  # type: ignore[attr-defined]
    rows = store.audit_rows(limit=10, where=audit.Filter(
        target=LAMP, newest_first=True))
    assert rows[0].who == "device:lamp-1" and rows[0].action == "entity.update"
    assert audit.verify(audit.stored(store)).broken_at is None
