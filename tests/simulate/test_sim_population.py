"""The device population and the provisioning payloads built from it."""

from __future__ import annotations

import json
import re
from collections import Counter

import httpx
import pytest

from dothi.demo import build_demo_city
from dothi.simulate.city import DANANG, build_population, get_city, kind_counts
from dothi.simulate.kinds import KINDS
from dothi.simulate.provision import (
    Provisioner,
    ProvisioningError,
    device_payload,
    group_payloads,
)

SENSOR_TYPES = {"Streetlight", "WasteContainer", "TrafficFlowObserved", "FloodMonitoring",
                "AirQualityObserved"}
ATTR_TYPES = {"Number", "Integer", "Text", "Boolean", "DateTime", "geo:json", "Relationship"}
UNIT_CODES = {"CEL", "MTR", "GQ", "GP", "KMH", "WTT", "KWH", "HTZ", "MMT"}


def test_264_devices_drive_exactly_the_demo_sensors() -> None:
    demo = [e for e in build_demo_city() if e["type"] in SENSOR_TYPES]
    devices = build_population(DANANG, 264)
    assert len(demo) == 264
    assert sorted(d.entity_id for d in devices) == sorted(e["id"] for e in demo)
    by_id = {e["id"]: e for e in demo}
    for device in devices:
        entity = by_id[device.entity_id]
        assert device.demo
        assert device.kind.entity_type == entity["type"]
        assert device.geometry == entity["location"]["value"]
    # The demo's own state carries over: its broken lamps stay broken.
    statuses = Counter(d.params["status"] for d in devices if d.kind.slug == "streetlight")
    assert statuses["defectiveLamp"] == sum(
        1 for e in demo if e["type"] == "Streetlight" and e["status"]["value"] == "defectiveLamp")


def test_fewer_devices_are_a_subset_of_the_demo() -> None:
    devices = build_population(DANANG, 50)
    demo_ids = {e["id"] for e in build_demo_city()}
    assert len(devices) == 50
    assert all(d.entity_id in demo_ids for d in devices)
    assert {d.kind.slug for d in devices} == {"streetlight", "waste", "traffic", "flood", "air"}


def test_5000_devices_have_a_real_citys_proportions() -> None:
    devices = build_population(DANANG, 5000, seed=3)
    counts = kind_counts(DANANG, 5000)
    assert sum(counts.values()) == len(devices) == 5000
    assert Counter(d.kind.slug for d in devices) == counts
    ordered = ["streetlight", "waste", "traffic", "energy", "air", "flood"]
    assert [counts[k] for k in ordered] == sorted((counts[k] for k in ordered), reverse=True)
    assert counts["streetlight"] > 0.5 * 5000
    assert 10 <= counts["rain"] <= 100 and 10 <= counts["gate"] <= 100
    for slug, share in DANANG.shares.items():
        assert counts[slug] == pytest.approx(5000 * share, abs=2)


def test_ids_are_unique_short_and_well_formed() -> None:
    devices = build_population(DANANG, 5000, seed=3)
    assert len({d.device_id for d in devices}) == 5000
    assert len({d.entity_id for d in devices}) == 5000
    for device in devices:
        assert re.fullmatch(r"[a-z]{2}-\d{4}", device.device_id)
        assert device.apikey == f"dn-{device.kind.slug}"
        if not device.demo:
            assert device.entity_id == (f"urn:ngsi-ld:{device.kind.entity_type}:danang-"
                                        f"{device.kind.slug}-sim-{device.index:04d}")
            assert device.device_id == f"{device.kind.prefix}-{device.index:04d}"


def test_every_device_lies_inside_the_city() -> None:
    x0, y0, x1, y1 = DANANG.extent()
    devices = build_population(DANANG, 5000, seed=3)
    for device in devices:
        coords = device.geometry["coordinates"]
        points = coords if device.geometry["type"] == "LineString" else [coords]
        for lon, lat in [*points, device.point]:
            assert x0 <= lon <= x1 and y0 <= lat <= y1, device.device_id
    # Bins, meters and air stations are placed inside a district, on land.
    inland = [d for d in devices if d.kind.slug in ("energy", "air") and not d.demo]
    assert all(d.district is not None for d in inland)


def test_growing_the_deployment_keeps_every_device_in_place() -> None:
    small = {d.device_id: d for d in build_population(DANANG, 1200, seed=3)}
    large = {d.device_id: d for d in build_population(DANANG, 5000, seed=3)}
    assert set(small) <= set(large)
    for device_id, device in small.items():
        assert large[device_id] == device
    other_seed = {d.device_id: d for d in build_population(DANANG, 1200, seed=4)}
    assert any(other_seed[k].point != small[k].point for k in small if not small[k].demo)


def test_unknown_city_is_refused() -> None:
    assert get_city("danang") is DANANG
    with pytest.raises(ValueError, match="unknown city 'hue'"):
        get_city("hue")


# -- provisioning payloads --------------------------------------------------------------------


def test_service_groups_follow_the_contract() -> None:
    devices = build_population(DANANG, 5000)
    groups = group_payloads(DANANG, devices, "mqtt", rate_per_s=1 / 60)
    assert [g["apikey"] for g in groups] == [f"dn-{k.slug}" for k in KINDS]
    protocols = {g["entity_type"]: g["protocol"] for g in groups}
    assert protocols == {"Streetlight": "UL", "WasteContainer": "UL",
                         "TrafficFlowObserved": "JSON", "ACMeasurement": "JSON",
                         "AirQualityObserved": "JSON", "FloodMonitoring": "JSON",
                         "WeatherObserved": "JSON", "SluiceGate": "JSON"}
    for group in groups:
        assert set(group) == {"apikey", "entity_type", "protocol", "transport", "attributes",
                              "commands", "explicitAttrs", "silent_after"}
        assert group["transport"] == "MQTT"
        assert group["explicitAttrs"] is True
        assert group["silent_after"] == 180  # three missed publications at 1/min
        object_ids = [a["object_id"] for a in group["attributes"]]
        assert len(set(object_ids)) == len(object_ids)
        for attr in group["attributes"]:
            assert set(attr) <= {"object_id", "name", "type", "unitCode"}
            assert attr["type"] in ATTR_TYPES
            assert attr.get("unitCode", "CEL") in UNIT_CODES
        for command in group["commands"]:
            assert command["type"] == "command"
    commands = {g["apikey"]: [c["name"] for c in g["commands"]] for g in groups}
    assert commands["dn-streetlight"] == ["dim", "switch"]
    assert commands["dn-gate"] == ["gate"]
    lights = groups[0]["attributes"]
    assert {"object_id": "l", "name": "illuminanceLevel", "type": "Number"} in lights
    assert {"object_id": "p", "name": "powerConsumption", "type": "Number",
            "unitCode": "WTT"} in lights
    air = {a["name"]: a.get("unitCode") for a in groups[4]["attributes"]}
    assert all(air[p] == "GQ" for p in ("pm25", "pm10", "no2", "o3"))
    assert air["co"] == "GP"  # mg/m³, as the demo city's stations have it
    http = group_payloads(DANANG, devices[:10], "http", rate_per_s=1.0)
    assert [g["transport"] for g in http] == ["HTTP"] and http[0]["silent_after"] == 60


def test_device_payload_follows_the_contract() -> None:
    devices = build_population(DANANG, 300)
    light = device_payload(devices[0])
    assert light == {
        "device_id": "sl-0001", "apikey": "dn-streetlight",
        "entity_name": "urn:ngsi-ld:Streetlight:danang-bach-dang-001",
        "entity_type": "Streetlight",
        "static_attributes": [
            {"name": "location", "type": "GeoProperty", "value": devices[0].geometry},
            {"name": "name", "type": "Text", "value": devices[0].name}]}
    assert light["static_attributes"][0]["value"]["type"] == "Point"
    traffic = device_payload(next(d for d in devices if d.kind.slug == "traffic"))
    assert traffic["static_attributes"][0]["value"]["type"] == "LineString"
    json.dumps([device_payload(d) for d in devices])  # plain JSON, nothing exotic


# -- provisioning over HTTP (a fake server) -----------------------------------------------------


class FakeAgent:
    """Just enough of the server's provisioning API: apikeys and device ids that exist."""

    def __init__(self) -> None:
        self.groups: set[str] = set()
        self.devices: set[str] = set()
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if request.url.path == "/iot/services":
            keys = [g["apikey"] for g in body["services"]]
            if self.groups & set(keys):
                return httpx.Response(409, json={"error": "DuplicateGroup"})
            self.groups |= set(keys)
            return httpx.Response(201)
        ids = [d["device_id"] for d in body["devices"]]
        if len(ids) > 500:
            return httpx.Response(400, json={"error": "too many"})
        if self.devices & set(ids):
            return httpx.Response(409, json={"error": "DuplicateDeviceId"})
        self.devices |= set(ids)
        return httpx.Response(201)


def _client(agent: FakeAgent, tenant: str | None) -> httpx.Client:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    return httpx.Client(base_url="http://dothi.test", headers=headers,
                        transport=httpx.MockTransport(agent))


def test_provisioning_is_chunked_and_can_be_repeated() -> None:
    devices = build_population(DANANG, 1200)
    groups = group_payloads(DANANG, devices, "mqtt", 1 / 60)
    payloads = [device_payload(d) for d in devices]
    agent = FakeAgent()
    with _client(agent, "urn:ngsi-ld:tenant:danang") as client:
        first = Provisioner(client)
        assert first.groups(groups).created == len(groups)
        progress: list[int] = []
        done = first.devices(payloads, progress.append)
        assert (done.created, done.existing, done.failed) == (1200, 0, [])
        assert progress == [500, 500, 200]
        # Again, with 100 more devices: the 409s count as existing, the new ones are created.
        more = [device_payload(d) for d in build_population(DANANG, 1300)]
        again = first.groups(groups)
        assert (again.created, again.existing) == (0, len(groups))
        done = first.devices(more)
        assert (done.created, done.existing, done.failed) == (100, 1200, [])
    assert len(agent.devices) == 1300
    assert all(r.headers["NGSILD-Tenant"] == "urn:ngsi-ld:tenant:danang"
               for r in agent.requests)


def test_no_tenant_header_for_the_default_tenant_and_errors_surface() -> None:
    agent = FakeAgent()
    with _client(agent, None) as client:
        Provisioner(client).groups(group_payloads(DANANG, build_population(DANANG, 10),
                                                  "mqtt", 1.0))
    assert all("NGSILD-Tenant" not in r.headers for r in agent.requests)

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    with httpx.Client(base_url="http://dothi.test", transport=httpx.MockTransport(broken)) as c, \
            pytest.raises(ProvisioningError, match="500 boom"):
        Provisioner(c).groups([{"apikey": "x"}])
