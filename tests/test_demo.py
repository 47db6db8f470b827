"""Checks of the Đà Nẵng demo city (dothi.demo) and of the benchmark generator (bench/datagen.py).

The demo is both the first thing a user loads and a fixture for other tests, so these tests pin
down what other code relies on: stable content, unique ids, valid GeoJSON in the right place,
and strictly normalized NGSI-LD attributes.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from shapely.geometry import Point, Polygon, shape

from dothi.demo import CORE_CONTEXT, build_demo_city, demo_aqi, write_demo_file

REPO = Path(__file__).resolve().parents[1]

# A generous box around Đà Nẵng, including Bà Nà and the Hải Vân pass.
LON_MIN, LON_MAX, LAT_MIN, LAT_MAX = 107.9, 108.4, 15.9, 16.25

EXPECTED_COUNTS = {
    "Streetlight": (100, 140),
    "AirQualityObserved": (10, 15),
    "FloodMonitoring": (15, 25),
    "TrafficFlowObserved": (25, 35),
    "WasteContainer": (50, 80),
    "PointOfInterest": (45, 60),
    "AdministrativeArea": (6, 6),
}

ATTRIBUTE_TYPES = {"Property", "GeoProperty", "Relationship", "LanguageProperty"}
# Members of an attribute that are not sub-attributes.
ATTRIBUTE_META = {"type", "value", "object", "languageMap", "observedAt", "unitCode", "datasetId",
                  "createdAt", "modifiedAt", "objectType"}
ENTITY_CORE = {"id", "type", "@context"}


@pytest.fixture(scope="module")
def city() -> list[dict[str, Any]]:
    return build_demo_city()


def _by_type(city: list[dict[str, Any]], entity_type: str) -> list[dict[str, Any]]:
    return [e for e in city if e["type"] == entity_type]


def _check_geometry(geom: Any, where: str) -> list[tuple[float, float]]:
    """Validate a GeoJSON geometry's structure; return its positions."""
    assert isinstance(geom, dict), where
    kind, coords = geom.get("type"), geom.get("coordinates")

    def position(p: Any) -> tuple[float, float]:
        assert isinstance(p, list) and len(p) == 2, f"{where}: bad position {p!r}"
        assert all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p), where
        return (float(p[0]), float(p[1]))

    if kind == "Point":
        return [position(coords)]
    if kind == "LineString":
        assert isinstance(coords, list) and len(coords) >= 2, where
        return [position(p) for p in coords]
    if kind == "Polygon":
        assert isinstance(coords, list) and coords, where
        out = []
        for ring in coords:
            assert len(ring) >= 4, f"{where}: ring too short"
            assert ring[0] == ring[-1], f"{where}: ring not closed"
            out.extend(position(p) for p in ring)
        return out
    raise AssertionError(f"{where}: unexpected geometry type {kind!r}")


def _check_attribute(name: str, attr: Any, where: str) -> None:
    assert isinstance(attr, dict), f"{where}.{name} is not an object"
    kind = attr.get("type")
    assert kind in ATTRIBUTE_TYPES, f"{where}.{name} has type {kind!r}"
    if kind in ("Property", "GeoProperty"):
        assert "value" in attr, f"{where}.{name} has no value"
        assert "object" not in attr and "languageMap" not in attr, f"{where}.{name}"
    if kind == "GeoProperty":
        _check_geometry(attr["value"], f"{where}.{name}")
    if kind == "Relationship":
        assert isinstance(attr.get("object"), str), f"{where}.{name} has no object"
        assert attr["object"].startswith("urn:ngsi-ld:"), f"{where}.{name}"
        assert "value" not in attr, f"{where}.{name}"
    if kind == "LanguageProperty":
        lang_map = attr.get("languageMap")
        assert isinstance(lang_map, dict) and lang_map, f"{where}.{name} has no languageMap"
        assert all(isinstance(v, str) and v for v in lang_map.values()), f"{where}.{name}"
        assert "value" not in attr, f"{where}.{name}"
    if "unitCode" in attr:
        assert re.fullmatch(r"[A-Z0-9]{2,3}", attr["unitCode"]), f"{where}.{name}"
    if "observedAt" in attr:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", attr["observedAt"]), where
    for sub_name, sub in attr.items():
        if sub_name not in ATTRIBUTE_META:
            _check_attribute(sub_name, sub, f"{where}.{name}")


def _check_normalized(entity: dict[str, Any]) -> None:
    for name, attr in entity.items():
        if name not in ENTITY_CORE:
            _check_attribute(name, attr, entity["id"])


# --- the demo city ---------------------------------------------------------------------------


def test_demo_is_deterministic(city: list[dict[str, Any]]) -> None:
    again = build_demo_city()
    assert again == city
    assert json.dumps(again, ensure_ascii=False) == json.dumps(city, ensure_ascii=False)


def test_demo_types_and_counts(city: list[dict[str, Any]]) -> None:
    counts = Counter(e["type"] for e in city)
    for entity_type, (low, high) in EXPECTED_COUNTS.items():
        assert low <= counts[entity_type] <= high, (entity_type, counts[entity_type])
    assert 300 <= len(city) <= 400


def test_demo_ids_unique_and_well_formed(city: list[dict[str, Any]]) -> None:
    ids = [e["id"] for e in city]
    assert len(ids) == len(set(ids))
    for entity in city:
        pattern = rf"urn:ngsi-ld:{entity['type']}:danang-[a-z0-9]+(-[a-z0-9]+)*"
        assert re.fullmatch(pattern, entity["id"]), entity["id"]


def test_demo_uses_only_core_context(city: list[dict[str, Any]]) -> None:
    for entity in city:
        assert entity["@context"] == [CORE_CONTEXT], entity["id"]
    assert CORE_CONTEXT == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"


def test_demo_locations_valid_and_in_da_nang(city: list[dict[str, Any]]) -> None:
    for entity in city:
        loc = entity.get("location")
        assert isinstance(loc, dict) and loc.get("type") == "GeoProperty", entity["id"]
        positions = _check_geometry(loc["value"], entity["id"])
        for lon, lat in positions:
            assert LON_MIN <= lon <= LON_MAX and LAT_MIN <= lat <= LAT_MAX, (entity["id"], lon, lat)
        assert shape(loc["value"]).is_valid, entity["id"]


def test_demo_district_polygons(city: list[dict[str, Any]]) -> None:
    areas = _by_type(city, "AdministrativeArea")
    names = {a["name"]["languageMap"]["vi"] for a in areas}
    for district in ("Hải Châu", "Thanh Khê", "Sơn Trà", "Ngũ Hành Sơn", "Liên Chiểu", "Cẩm Lệ"):
        assert any(district in n for n in names), district
    polygons = []
    for area in areas:
        geom = area["location"]["value"]
        assert geom["type"] == "Polygon"
        ring = geom["coordinates"][0]
        assert 8 <= len(ring) - 1 <= 20, (area["id"], len(ring) - 1)
        poly = shape(geom)
        assert poly.is_valid and poly.area > 0, area["id"]
        assert set(area["name"]["languageMap"]) == {"vi", "en"}
        assert "former" in area["description"]["value"].lower()
        polygons.append(poly)
    # Neighbouring outlines may touch but must not overlap noticeably (> ~0.01 km²).
    for i, a in enumerate(polygons):
        for b in polygons[i + 1:]:
            assert a.intersection(b).area < 1e-6


def _to_metres(lon: float, lat: float) -> tuple[float, float]:
    # Equirectangular around Đà Nẵng's latitude: error well under 1 % at city scale.
    return (lon * 111_320.0 * math.cos(math.radians(16.05)), lat * 110_574.0)


def test_demo_streetlights_lie_in_the_districts(city: list[dict[str, Any]]) -> None:
    districts = [
        Polygon([_to_metres(*p) for p in a["location"]["value"]["coordinates"][0]])
        for a in _by_type(city, "AdministrativeArea")
    ]
    lights = _by_type(city, "Streetlight")
    assert lights
    for light in lights:
        point = Point(_to_metres(*light["location"]["value"]["coordinates"]))
        nearest = min(d.distance(point) for d in districts)
        assert nearest <= 1000.0, (light["id"], nearest)


def test_demo_attributes_are_normalized(city: list[dict[str, Any]]) -> None:
    for entity in city:
        _check_normalized(entity)


def test_demo_relationships_and_names(city: list[dict[str, Any]]) -> None:
    ids = {e["id"] for e in city}
    for light in _by_type(city, "Streetlight"):
        assert light["refStreetlightGroup"]["object"] in ids
        assert light["powerState"]["value"] in {"bootingUp", "low", "off", "on"}
        assert light["status"]["value"] in {"brokenLantern", "columnIssue", "defectiveLamp", "ok"}
        assert 0.0 <= light["illuminanceLevel"]["value"] <= 1.0
    pois = {p["name"]["languageMap"]["en"]: p for p in _by_type(city, "PointOfInterest")}
    for landmark in ("Dragon Bridge", "Han Market", "Con Market", "Marble Mountains",
                     "My Khe Beach", "Museum of Cham Sculpture", "Da Nang International Airport",
                     "Da Nang Railway Station", "Da Nang Cathedral", "Asia Park"):
        assert landmark in pois, landmark
        assert pois[landmark]["name"]["languageMap"]["vi"]
    assert pois["Dragon Bridge"]["name"]["languageMap"]["vi"] == "Cầu Rồng"


def test_demo_measurements_have_units_and_ranges(city: list[dict[str, Any]]) -> None:
    for aq in _by_type(city, "AirQualityObserved"):
        for name in ("pm25", "pm10", "no2", "o3", "co", "temperature", "relativeHumidity"):
            assert "observedAt" in aq[name], (aq["id"], name)
        assert aq["pm25"]["unitCode"] == "GQ" and aq["temperature"]["unitCode"] == "CEL"
        assert 0.0 <= aq["relativeHumidity"]["value"] <= 1.0
        index = demo_aqi(*(aq[k]["value"] for k in ("pm25", "pm10", "no2", "o3", "co")))
        assert aq["airQualityIndex"]["value"] == index.aqi
        assert aq["airQualityLevel"]["value"] == index.level.name
    for bin_ in _by_type(city, "WasteContainer"):
        assert 0.0 <= bin_["fillingLevel"]["value"] <= 1.0
    for flood in _by_type(city, "FloodMonitoring"):
        current = flood["currentLevel"]["value"]
        expected = flood["referenceLevel"]["value"] - flood["measuredDistance"]["value"]
        assert current == pytest.approx(expected, abs=0.011)
    for flow in _by_type(city, "TrafficFlowObserved"):
        assert 0.0 <= flow["occupancy"]["value"] <= 1.0
        assert flow["location"]["value"]["type"] in {"Point", "LineString"}


def test_write_demo_file(tmp_path: Path, city: list[dict[str, Any]]) -> None:
    target = write_demo_file(tmp_path / "sub" / "danang.json")
    raw = target.read_bytes()
    assert "Cầu Rồng".encode() in raw  # UTF-8, not \u escapes
    assert json.loads(raw.decode("utf-8")) == city


# --- the benchmark generator -----------------------------------------------------------------


@pytest.fixture(scope="module")
def datagen() -> ModuleType:
    path = REPO / "bench" / "datagen.py"
    spec = importlib.util.spec_from_file_location("bench_datagen", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_datagen_count_uniqueness_determinism(datagen: ModuleType) -> None:
    first = list(datagen.generate(2000, seed=7))
    assert len(first) == 2000
    assert len({e["id"] for e in first}) == 2000
    assert list(datagen.generate(2000, seed=7)) == first
    assert list(datagen.generate(2000, seed=8)) != first
    assert list(datagen.generate(0)) == []


def test_datagen_shape(datagen: ModuleType) -> None:
    entities = list(datagen.generate(1000))
    counts = Counter(e["type"] for e in entities)
    assert counts == {"Streetlight": 400, "WasteContainer": 200, "AirQualityObserved": 150,
                      "TrafficFlowObserved": 150, "FloodMonitoring": 100}
    for i, entity in enumerate(entities):
        assert entity["id"] == f"urn:ngsi-ld:{entity['type']}:bench-{i}"
        assert "@context" not in entity
        assert 6 <= len(entity) - 2 <= 10, entity["id"]
        lon, lat = entity["location"]["value"]["coordinates"]
        assert 108.10 <= lon <= 108.30 and 15.95 <= lat <= 16.15
        _check_normalized(entity)
    # Fresh objects every time: mutating one entity must not leak into another.
    entities[0]["location"]["value"]["coordinates"][0] = 0.0
    assert all(e["location"]["value"]["coordinates"][0] != 0.0 for e in entities[1:])


def test_datagen_query_fixtures(datagen: ModuleType) -> None:
    polygon = shape(datagen.DISTRICT_POLYGON)
    assert polygon.is_valid
    assert polygon.contains(Point(108.2150, 16.0600))  # central Hải Châu
    assert datagen.SAMPLE_POINT["type"] == "Point"
    lon, lat = datagen.SAMPLE_POINT["coordinates"]
    assert 108.10 <= lon <= 108.30 and 15.95 <= lat <= 16.15
