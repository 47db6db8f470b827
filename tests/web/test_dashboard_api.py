"""What the dashboard reads, on both store backends: its map layers (areas, sensors with
their state), the assets it is served with, and the live feed: a real server's
server-sent events bring an incident opened by another client, then its change."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient

from dothi.store.base import DEFAULT_TENANT
from dothi.web.live import Differ, LiveHub
from tests.server import running_server

AREA = {
    "id": "urn:ngsi-ld:AdministrativeArea:hai-chau", "type": "AdministrativeArea",
    "name": {"type": "LanguageProperty", "languageMap": {"vi": "Hải Châu", "en": "Hai Chau"}},
    "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[
        [108.20, 16.04], [108.23, 16.04], [108.23, 16.08], [108.20, 16.08], [108.20, 16.04]]]}},
}


def gauge(n: int, level: float) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:FloodMonitoring:g{n}", "type": "FloodMonitoring",
            "name": {"type": "Property", "value": f"Gauge {n}"},
            "currentLevel": {"type": "Property", "value": level, "unitCode": "MTR",
                             "observedAt": "2026-11-25T08:00:00Z"},
            "alertLevel": {"type": "Property", "value": 0.2},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [108.21 + n / 1000, 16.06]}}}


def sensors_by_id(client: TestClient) -> dict[str, dict[str, Any]]:
    r = client.get("/ioc/map/sensors")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    return {f["properties"]["id"]: f for f in r.json()["features"]}


def test_sensor_layer_states(client: TestClient) -> None:
    r = client.post("/ngsi-ld/v1/entityOperations/create",
                    json=[AREA, gauge(1, 0.05), gauge(2, 0.1), gauge(3, 0.0)])
    assert r.status_code == 201, r.text
    # Gauge 2 is fed by a device that fell silent; gauge 3 is related to an open incident.
    r = client.post("/ngsi-ld/v1/entities", json={
        "id": "urn:ngsi-ld:Device:d2", "type": "Device",
        "deviceState": {"type": "Property", "value": "silent"},
        "controlledAsset": {"type": "Property", "value": ["urn:ngsi-ld:FloodMonitoring:g2"]}})
    assert r.status_code == 201, r.text
    r = client.post("/ioc/incidents", json={
        "title": "Ngập", "category": "flooding", "severity": "high",
        "related": ["urn:ngsi-ld:FloodMonitoring:g3"],
        "location": {"type": "Point", "coordinates": [108.213, 16.06]}})
    assert r.status_code == 201, r.text
    incident = r.json()["id"]

    sensors = sensors_by_id(client)
    assert set(sensors) == {f"urn:ngsi-ld:FloodMonitoring:g{n}" for n in (1, 2, 3)}
    one = sensors["urn:ngsi-ld:FloodMonitoring:g1"]
    assert one["geometry"] == {"type": "Point", "coordinates": [108.211, 16.06]}
    assert one["properties"] == {
        "id": "urn:ngsi-ld:FloodMonitoring:g1", "entityType": "FloodMonitoring",
        "category": "flooding", "name": "Gauge 1", "value": 0.05, "unit": "m",
        "observedAt": "2026-11-25T08:00:00.000Z", "state": "online", "incident": None}
    assert sensors["urn:ngsi-ld:FloodMonitoring:g2"]["properties"]["state"] == "silent"
    three = sensors["urn:ngsi-ld:FloodMonitoring:g3"]["properties"]
    assert (three["state"], three["incident"]) == ("alarm", incident)

    # Once resolved, the incident no longer marks its sensor.
    for status in ("acknowledged", "assigned", "inProgress", "resolved"):
        r = client.post(f"/ioc/incidents/{incident}/status",
                        json={"status": status, "agency": "drainage"})
        assert r.status_code == 200, r.text
    three = sensors_by_id(client)["urn:ngsi-ld:FloodMonitoring:g3"]["properties"]
    assert (three["state"], three["incident"]) == ("online", None)


def test_areas_layer(client: TestClient) -> None:
    no_polygon = {"id": "urn:ngsi-ld:AdministrativeArea:x", "type": "AdministrativeArea",
                  "location": {"type": "GeoProperty",
                               "value": {"type": "Point", "coordinates": [108.2, 16.0]}}}
    r = client.post("/ngsi-ld/v1/entityOperations/create", json=[AREA, no_polygon])
    assert r.status_code == 201, r.text
    r = client.get("/ioc/map/areas")
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    assert [f["id"] for f in features] == [AREA["id"]]  # a point is no boundary to draw
    assert features[0]["properties"]["name"] == {"vi": "Hải Châu", "en": "Hai Chau"}
    assert features[0]["geometry"] == AREA["location"]["value"]


def test_page_layers_and_assets(client: TestClient) -> None:
    r = client.get("/ioc/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="vi">' in r.text
    for asset in ("/-/static/web/dashboard.js", "/-/static/web/chart.js",
                  "/-/static/web/dashboard.css"):
        assert asset in r.text
        assert client.get(asset).status_code == 200, asset
    layers = client.get("/ioc/layers").json()
    by_type = {la["type"]: la for la in layers["layers"]}
    assert by_type["AirQualityObserved"]["category"] == "airQuality"
    assert by_type["FloodMonitoring"]["chart"] == ["currentLevel"]
    # MapLibre GL comes from npm at install time (make install); the page says so if not.
    # CI installs npm, so there it must be served.
    assert layers["maplibre"] or not os.environ.get("DOTHI_TEST_REQUIRE_BROWSER")
    if layers["maplibre"]:
        r = client.get("/-/static/vendor/maplibre-gl/maplibre-gl.js")
        assert r.status_code == 200 and len(r.content) > 100_000
    workflow_categories = set(client.get("/ioc/workflow").json()["categories"])
    assert {la["category"] for la in layers["layers"]} <= workflow_categories


def test_stream_refuses_a_bad_tenant(client: TestClient) -> None:
    r = client.get("/ioc/stream", params={"tenant": "no spaces allowed"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


def test_differ_sends_everything_first_then_only_changes() -> None:
    def snap(values: dict[str, float], incidents: list[dict], open_total: int) -> dict:
        return {"at": "t",
                "sensors": [{"type": "Feature", "geometry": None,
                             "properties": {"id": k, "value": v}} for k, v in values.items()],
                "incidents": incidents, "summary": {"openIncidentsTotal": open_total}}

    differ = Differ()
    first = dict(differ.events(snap({"a": 1, "b": 2}, [], 0)))
    assert first["sensors"]["full"] and len(first["sensors"]["changed"]) == 2
    assert first["incidents"] == {"full": True, "changed": [], "removed": [], "at": "t"}
    assert first["summary"] == {"openIncidentsTotal": 0}
    assert differ.events(snap({"a": 1, "b": 2}, [], 0)) == []  # nothing new, nothing sent
    later = dict(differ.events(snap({"a": 1, "c": 3}, [{"id": "i1", "status": "detected"}], 1)))
    assert later["sensors"] == {"full": False, "removed": ["b"], "at": "t", "changed": [
        {"type": "Feature", "geometry": None, "properties": {"id": "c", "value": 3}}]}
    assert later["incidents"]["changed"] == [{"id": "i1", "status": "detected"}]
    assert later["summary"] == {"openIncidentsTotal": 1}


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind is not None:
            yield kind, orjson.loads(line[6:])
            kind = None


def next_incidents(stream: Iterator[tuple[str, Any]]) -> dict[str, Any]:
    for kind, data in stream:
        if kind == "incidents":
            return data  # type: ignore[no-any-return]
    raise AssertionError("the stream ended")


def test_live_feed_from_a_real_server(database_url: Callable[[str], str]) -> None:
    # The incident is opened and moved through a second server process on the same store:
    # the feed reads the store, so it shows the writes of any process.
    db = database_url("live")
    with running_server(db) as url, running_server(db) as other, \
            httpx.Client(timeout=20) as http, \
            http.stream("GET", f"{url}/ioc/stream") as response:
        # Reads block at most 20 s: an event that never comes fails the test.
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        first = next_incidents(stream)
        assert (first["full"], first["changed"], first["removed"]) == (True, [], [])
        r = http.post(f"{other}/ioc/incidents", json={
            "title": "Ngập sâu", "category": "flooding", "severity": "high"})
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
        seen = next_incidents(stream)
        assert not seen["full"] and [i["id"] for i in seen["changed"]] == [eid]
        assert seen["changed"][0]["status"] == "detected"
        r = http.post(f"{other}/ioc/incidents/{eid}/status", json={"status": "acknowledged"})
        assert r.status_code == 200, r.text
        seen = next_incidents(stream)
        assert [(i["id"], i["status"]) for i in seen["changed"]] == [(eid, "acknowledged")]


def test_closed_incidents_stay_on_the_list_for_an_hour(client: TestClient) -> None:
    ids = []
    for title in ("Ngập A", "Ngập B", "Ngập C"):
        r = client.post("/ioc/incidents", json={"title": title, "category": "flooding",
                                                "severity": "low"})
        ids.append(r.json()["id"])
    r = client.post(f"/ioc/incidents/{ids[1]}/status",
                    json={"status": "closed", "note": "báo nhầm / false alarm"})
    assert r.status_code == 200, r.text
    # A resolved incident stays until someone closes it.
    for status in ("acknowledged", "assigned", "inProgress", "resolved"):
        r = client.post(f"/ioc/incidents/{ids[2]}/status",
                        json={"status": status, "agency": "drainage"})
        assert r.status_code == 200, r.text
    snapshots = client.app.state.ioc.snapshots  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    shown = {i["id"]: i["status"] for i in snapshots.build(DEFAULT_TENANT, now)["incidents"]}
    assert shown == {ids[0]: "detected", ids[1]: "closed", ids[2]: "resolved"}
    later = snapshots.build(DEFAULT_TENANT, now + timedelta(minutes=61))
    assert {i["id"] for i in later["incidents"]} == {ids[0], ids[2]}


def test_a_failed_rebuild_is_retried() -> None:
    """The store away for a moment: the feed logs it and rebuilds again, and the open
    dashboards get the snapshot once the store answers."""
    calls = []

    def build(tenant: str) -> dict[str, Any]:
        calls.append(tenant)
        if len(calls) == 1:
            raise ConnectionError("store away")
        return {"sensors": [], "incidents": [], "summary": {"n": len(calls)}}

    async def first_snapshot() -> dict[str, Any] | None:
        hub = LiveHub(build, interval=0.01, min_gap=0.01)
        async for snapshot in hub.follow("t", heartbeat=10):
            await hub.close()
            return snapshot
        return None

    assert asyncio.run(first_snapshot()) == {"sensors": [], "incidents": [],
                                             "summary": {"n": 2}}
