"""The planners' assessment of an area drawn on the map, on both store backends, over a
made-up district whose figures can be worked out by hand: residents from overlapping
population polygons (the ward inside the district counts there), the share living within
500 m of a school and a clinic, green space, floods of the last year, and two plan
variants side by side."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

W, E, S, N = 108.20, 108.22, 16.04, 16.06  # the district: two 0.01° halves, west and east
MID = (W + E) / 2


def box(west: float, east: float, south: float = S, north: float = N) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}


def geo(value: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": value}


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def layer(name: str, zones: list[tuple[str, dict[str, Any], str, float]]) -> list[dict]:
    lid = f"urn:ngsi-ld:GisLayer:{name}"
    out: list[dict] = [{"id": lid, "type": "GisLayer", "title": prop(name)}]
    for code, where, use, ratio in zones:
        out.append({"id": f"urn:ngsi-ld:PlanningZone:{name}:{code}", "type": "PlanningZone",
                    "zoneCode": prop(code), "landUse": prop(use),
                    "maxFloorAreaRatio": prop(ratio),
                    "refGisLayer": {"type": "Relationship", "object": lid},
                    "location": geo(where)})
    return out


@pytest.fixture
def city(client: TestClient) -> TestClient:
    entities = [
        {"id": "urn:ngsi-ld:AdministrativeArea:district", "type": "AdministrativeArea",
         "population": prop(10_000), "location": geo(box(W, E))},
        {"id": "urn:ngsi-ld:AdministrativeArea:ward", "type": "AdministrativeArea",
         "population": prop(8_000), "location": geo(box(W, MID))},
        {"id": "urn:ngsi-ld:PointOfInterest:school", "type": "PointOfInterest",
         "category": prop(["school"]),
         "location": geo({"type": "Point", "coordinates": [(W + MID) / 2, (S + N) / 2]})},
        {"id": "urn:ngsi-ld:PointOfInterest:hospital", "type": "PointOfInterest",
         "category": prop(["hospital"]),  # 300 m east of the district
         "location": geo({"type": "Point", "coordinates": [E + 0.0028, (S + N) / 2]})},
        {"id": "urn:ngsi-ld:PointOfInterest:museum", "type": "PointOfInterest",
         "category": prop(["museum"]),
         "location": geo({"type": "Point", "coordinates": [MID + 0.005, (S + N) / 2]})},
        *layer("variant-a", [("A1", box(W, MID), "residential", 3.0),
                             ("A2", box(MID, E), "green", 0.1)]),
        *layer("variant-b", [("B1", box(W, MID + 0.005), "residential", 4.0),
                             ("B2", box(MID + 0.005, E), "green", 0.1)]),
    ]
    r = client.post("/ngsi-ld/v1/entityOperations/create", json=entities)
    assert r.status_code == 201, r.text
    desk = client.app.state.ioc.desk  # type: ignore[attr-defined]
    tenant = "urn:ngsi-ld:tenant:default"
    for n, (lon, days) in enumerate([(W + 0.002, 10), (E - 0.002, 200), (E + 0.01, 5),
                                     (W + 0.005, 400)]):
        desk.open(tenant, title=f"Ngập {n}", category="flooding", severity="low",
                  location={"type": "Point", "coordinates": [lon, (S + N) / 2]},
                  now=datetime.now(UTC) - timedelta(days=days))
    return client


def test_an_area_s_figures(city: TestClient) -> None:
    r = city.post("/planning/assess", json={"area": box(W, E)})
    assert r.status_code == 200, r.text
    got = r.json()
    assert 4.6e6 < got["area"]["m2"] < 4.8e6  # 0.02° × 0.02° at 16° N: about 2.14 × 2.21 km
    # The ward's 8,000, plus the district's other half at the district's density: 5,000.
    assert got["population"]["residents"] == pytest.approx(13_000, rel=0.01)
    # The school serves a 500 m circle inside the ward (8,000 over half the district).
    circle = 3.14159 * 0.5 ** 2 * 8_000 / (got["area"]["m2"] / 2e6)
    assert got["access"]["school"]["share"] == pytest.approx(circle / 13_000, abs=0.02)
    assert got["access"]["school"]["inArea"] == 1
    # The hospital, 300 m outside, serves a strip of the eastern half only.
    assert 0 < got["access"]["clinic"]["share"] < 0.1
    assert got["access"]["clinic"]["inArea"] == 0
    assert got["access"]["busStop"] == {"vi": "Điểm dừng xe buýt", "en": "Bus stops",
                                        "inArea": 0, "share": 0.0}
    # Without a variant, every green planning zone counts (the two variants overlap).
    assert got["greenSpace"]["m2"] == pytest.approx(got["area"]["m2"] / 2, rel=0.01)
    assert got["floodIncidents"] == {"count": 2, "days": 365}
    assert got["landUse"] == [] and got["grossFloorArea"] == {"m2": None}


def test_two_variants_side_by_side(city: TestClient) -> None:
    r = city.post("/planning/compare", json={
        "area": box(W, E), "variants": ["urn:ngsi-ld:GisLayer:variant-a",
                                        "urn:ngsi-ld:GisLayer:variant-b"]})
    assert r.status_code == 200, r.text
    a, b = r.json()["variants"]
    area = a["area"]["m2"]
    assert a["population"] == b["population"]
    assert [(u["landUse"], u["share"]) for u in a["landUse"]] == [
        ("residential", pytest.approx(0.5, abs=0.005)), ("green", pytest.approx(0.5, abs=0.005))]
    assert a["landUse"][0]["vi"] == "Đất ở"
    assert [(u["landUse"], u["share"]) for u in b["landUse"]] == [
        ("residential", pytest.approx(0.75, abs=0.005)), ("green", pytest.approx(0.25, abs=0.005))]
    assert a["greenSpace"]["m2"] == pytest.approx(area / 2, rel=0.01)
    assert b["greenSpace"]["m2"] == pytest.approx(area / 4, rel=0.01)
    assert a["greenSpace"]["perResident"] == pytest.approx(area / 2 / 13_000, rel=0.02)
    assert a["grossFloorArea"]["m2"] == pytest.approx(area / 2 * 3 + area / 2 * 0.1, rel=0.01)
    assert b["grossFloorArea"]["m2"] == pytest.approx(area * 0.75 * 4 + area / 4 * 0.1,
                                                      rel=0.01)


@pytest.mark.parametrize(("path", "body", "status", "says"), [
    ("assess", {"area": {"type": "Point", "coordinates": [108.2, 16.0]}}, 400, "Polygon"),
    ("assess", {"area": {"type": "Polygon", "coordinates": [[[108.2, 16.0], [108.21, 16.01],
                                                             [108.21, 16.0], [108.2, 16.01],
                                                             [108.2, 16.0]]]}},
     400, "valid polygon"),
    ("assess", {"area": box(107.0, 108.0, 15.0, 16.0)}, 400, "larger than 500 km²"),
    ("assess", {"area": box(W, E), "variant": "urn:ngsi-ld:GisLayer:none"}, 404, "none"),
    ("assess", {"area": box(W, E), "colour": "red"}, 400, "Unknown members"),
    ("compare", {"area": box(W, E), "variants": ["urn:ngsi-ld:GisLayer:variant-a"]}, 400,
     "2 to 4"),
])
def test_bad_requests(city: TestClient, path: str, body: dict[str, Any], status: int,
                      says: str) -> None:
    r = city.post(f"/planning/{path}", json=body)
    assert r.status_code == status and says in r.json()["detail"], r.text
