"""Device health on the ``Device`` entity, seen by subscriptions, and commands to an HTTP
device (a real HTTP server on loopback), on both store backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tests.iot.test_provisioning import DEVICE, ENTITIES, GROUP, LAMP, entity, provision
from tests.receiver import receiver, until

DEVICE_ID = "urn:ngsi-ld:Device:lamp-1"


def test_health_online_then_silent_then_online(client: TestClient) -> None:
    group = {**GROUP, "silent_after": 120,
             "attributes": [*GROUP["attributes"],  # type: ignore[list-item]
                            {"object_id": "b", "name": "batteryLevel", "type": "Number"}]}
    provision(client, group)
    health = client.app.state.iot.health  # type: ignore[attr-defined]
    with receiver() as rec:
        r = client.post("/ngsi-ld/v1/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "Device"}],
            "watchedAttributes": ["deviceState"], "q": 'deviceState=="silent"',
            "notification": {"endpoint": {"uri": rec.url}, "attributes": ["deviceState"]}})
        assert r.status_code == 201, r.text
        for level in ("0.9", "0.8"):
            r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"},
                            content=f"l|0.5|b|{level}")
            assert r.status_code == 200
        health.flush(everything=True)
        device = entity(client, DEVICE_ID, options="keyValues")
        assert device["deviceState"] == "online"
        assert device["batteryLevel"] == 0.8
        # A rate needs an interval: the first write has none, the next one counts since.
        r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|0.6")
        assert r.status_code == 200
        health.flush(everything=True)
        device = entity(client, DEVICE_ID, options="keyValues")
        assert device["messageRate"] > 0
        reported = device["dateLastValueReported"]
        assert reported["@type"] == "DateTime" and reported["@value"].endswith("Z")
        # Nothing is silent yet; two minutes and a second later the device is.
        assert health.mark_silent() == 0
        later = datetime.now(UTC) + timedelta(seconds=121)
        assert health.mark_silent(later) == 1
        assert health.mark_silent(later) == 0  # once
        note = rec.next()
        assert note.body["data"][0]["id"] == DEVICE_ID
        assert note.body["data"][0]["deviceState"]["value"] == "silent"
    r = client.post("/iot/d", params={"k": "dn-lights", "i": "lamp-1"}, content="l|0.4")
    assert r.status_code == 200
    health.flush(everything=True)
    assert entity(client, DEVICE_ID, options="keyValues")["deviceState"] == "online"


def test_a_device_that_never_reports_goes_silent(client: TestClient) -> None:
    provision(client, {**GROUP, "silent_after": 60})
    health = client.app.state.iot.health  # type: ignore[attr-defined]
    assert entity(client, DEVICE_ID, options="keyValues")["deviceState"] == "unknown"
    assert health.mark_silent(datetime.now(UTC) + timedelta(seconds=61)) == 1
    assert entity(client, DEVICE_ID, options="keyValues")["deviceState"] == "silent"


def test_command_to_an_http_device(client: TestClient) -> None:
    with receiver() as device:
        provision(client, {**GROUP, "protocol": "JSON"},
                  {**DEVICE, "transport": "HTTP", "endpoint": device.url})
        r = client.patch(f"{ENTITIES}/{LAMP}/attrs/dim",
                         json={"type": "Property", "value": 0.5})
        assert r.status_code == 204, r.text
        sent = device.next()
        assert sent.body == {"dim": 0.5}
        assert sent.headers["Content-Type"] == "application/json"
        until(lambda: entity(client)["dim_status"]["value"] == "OK")
        # A device that cannot be reached: the command's status says so.
        device.statuses.append(500)
        client.patch(f"{ENTITIES}/{LAMP}/attrs/dim", json={"type": "Property", "value": 0.1})
        until(lambda: entity(client)["dim_status"]["value"] == "ERROR")
        assert "500" in entity(client)["dim_info"]["value"]
    assert entity(client)["dim"]["value"] == 0.1


def test_command_without_mqtt_is_an_error_not_a_silence(client: TestClient) -> None:
    provision(client)
    client.patch(f"{ENTITIES}/{LAMP}/attrs/dim", json={"type": "Property", "value": 0.5})
    until(lambda: entity(client)["dim_status"]["value"] == "ERROR")
    assert "DOTHI_IOT_MQTT_URL" in entity(client)["dim_info"]["value"]


def test_message_rate_is_per_minute_over_the_interval_and_smoothed() -> None:
    from dothi.iot.health import _rate

    t0 = [{"modifiedAt": "2026-11-25T10:00:00Z"}]
    assert _rate(None, None, 3, "2026-11-25T10:01:00Z") is None  # no interval yet
    assert _rate(None, t0, 10, "2026-11-25T10:01:00Z") == 10.0  # 10 in one minute
    previous = [{"value": 10.0, "modifiedAt": "2026-11-25T10:01:00Z"}]
    assert _rate(previous, t0, 10, "2026-11-25T10:01:30Z") == 15.0  # (10 + 20) / 2
