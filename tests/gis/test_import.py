"""``dothi import``: real files written with GDAL (pyogrio) in WGS 84 and in VN-2000, each
feature an entity of a named layer, invalid geometries refused or repaired with their
feature number, and a layer imported again replaced."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pyogrio.raw
import pytest
import shapely
from pyproj import Transformer

from dothi.app import build_broker
from dothi.gis.importer import LayerImporter, attribute_name
from dothi.settings import Settings
from dothi.store.base import DEFAULT_TENANT

# Hội An's old town and Đà Nẵng's Dragon Bridge, as a control: lon/lat, and the same in
# VN-2000 / TM-3 107°45' (EPSG:5899, Đà Nẵng's and Quảng Nam's provincial zone).
POINTS = {"Cầu Rồng": (108.2272, 16.0611), "Phố cổ Hội An": (108.3279, 15.8770)}
TO_VN2000 = Transformer.from_crs("EPSG:4326", "EPSG:5899", always_xy=True)


def write(path: Path, shapes: list[Any], fields: dict[str, list[Any]], crs: str,
          driver: str | None = None) -> Path:
    pyogrio.raw.write(path, numpy.array(shapely.to_wkb(shapes), dtype=object),
                      [numpy.array(v) for v in fields.values()], fields=list(fields),
                      geometry_type=shapes[0].geom_type, crs=crs, driver=driver)
    return path


def run(db: str, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dothi.cli", "import", str(path), "--db", db,
                           *args], capture_output=True, text=True, timeout=120)


def entities(db: str, entity_type: str) -> dict[str, dict[str, Any]]:
    from fastapi.testclient import TestClient

    from dothi.app import create_app

    with TestClient(create_app(Settings(database_url=db, context_fetch=False))) as c:
        r = c.get("/ngsi-ld/v1/entities", params={"type": entity_type, "limit": 1000,
                                                  "options": "keyValues"})
        return {e["id"]: e for e in r.json()}


def test_vn2000_shapefile_is_reprojected(tmp_path: Path,
                                          database_url: Callable[[str], str]) -> None:
    db = database_url("gis")
    shapes = [shapely.Point(*TO_VN2000.transform(*p)) for p in POINTS.values()]
    assert 500_000 < shapes[0].x < 560_000 and 1_770_000 < shapes[0].y < 1_780_000
    path = write(tmp_path / "landmarks.shp", shapes, {
        "Tên": list(POINTS), "Năm xây": [2013, 1600]}, "EPSG:5899")
    done = run(db, path, "--type", "Landmark")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 features imported as Landmark from EPSG:5899" in done.stderr
    found = entities(db, "Landmark")
    assert set(found) == {"urn:ngsi-ld:Landmark:landmarks:0", "urn:ngsi-ld:Landmark:landmarks:1"}
    for entity in found.values():
        lon, lat = entity["location"]["coordinates"]
        assert (lon, lat) == pytest.approx(POINTS[entity["Ten"]], abs=1e-7)
        assert entity["refGisLayer"] == "urn:ngsi-ld:GisLayer:landmarks"
    assert {e["Nam_xay"] for e in found.values()} == {2013, 1600}
    layer = entities(db, "GisLayer")["urn:ngsi-ld:GisLayer:landmarks"]
    assert layer["featureCount"] == 2 and layer["featureType"] == "Landmark"
    assert layer["sourceCrs"].startswith("EPSG:5899 (VN-2000 / TM-3 107-45)")
    assert {"name": "Ten", "source": "Tên"} in layer["fields"]


def test_invalid_geometries_refused_or_repaired(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'zones.db'}"
    square = shapely.box(108.20, 16.05, 108.21, 16.06)
    bowtie = shapely.Polygon([(108.22, 16.05), (108.23, 16.06), (108.23, 16.05),
                              (108.22, 16.06), (108.22, 16.05)])
    path = write(tmp_path / "zones.gpkg", [square, bowtie, square.buffer(0.001)], {
        "code": ["A1", "B2", "C3"], "far": [2.5, 4.0, 1.2]}, "EPSG:4326")
    done = run(db, path, "--type", "PlanningZone", "--layer", "quy-hoach")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "feature 2: refused, invalid geometry: Self-intersection" in done.stderr
    assert set(entities(db, "PlanningZone")) == {
        "urn:ngsi-ld:PlanningZone:quy-hoach:1", "urn:ngsi-ld:PlanningZone:quy-hoach:3"}

    done = run(db, path, "--type", "PlanningZone", "--layer", "quy-hoach", "--repair")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "feature 2: repaired (Self-intersection" in done.stderr
    fixed = entities(db, "PlanningZone")["urn:ngsi-ld:PlanningZone:quy-hoach:2"]
    assert fixed["geometryRepaired"] is True and "Self-intersection" in fixed["geometryProblem"]
    assert fixed["location"]["type"] == "MultiPolygon"  # the bow tie's two triangles
    assert shapely.from_geojson(json.dumps(fixed["location"])).area == pytest.approx(
        shapely.make_valid(bowtie).area)


def test_reimport_replaces_the_layer_and_csv_kml_geojson(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'stops.db'}"
    csv = tmp_path / "stops.csv"
    csv.write_text("ma,ten,kinh_do,vi_do\nB1,Bến xe trung tâm,108.1717,16.0601\n"
                   "B2,Chợ Hàn,108.2243,16.0687\nB3,Sai,x,y\n", encoding="utf-8")
    done = run(db, csv, "--type", "BusStop")
    assert done.returncode == 1 and "feature 3: refused, no geometry" in done.stderr
    assert {e["ten"] for e in entities(db, "BusStop").values()} == {"Bến xe trung tâm",
                                                                     "Chợ Hàn"}
    csv.write_text("ma,ten,kinh_do,vi_do\nB1,Bến xe trung tâm,108.1717,16.0601\n",
                   encoding="utf-8")
    done = run(db, csv, "--type", "BusStop")
    assert done.returncode == 0 and "1 removed" in done.stderr
    assert list(entities(db, "BusStop")) == ["urn:ngsi-ld:BusStop:stops:1"]

    kml = write(tmp_path / "parks.kml", [shapely.box(108.21, 16.06, 108.22, 16.07)],
                {"Name": ["Công viên APEC"]}, "EPSG:4326", driver="KML")
    done = run(db, kml, "--type", "Park")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [e["Name"] for e in entities(db, "Park").values()] == ["Công viên APEC"]

    geojson = tmp_path / "wards.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"ma": "20194", "ten": "Hải Châu"},
         "geometry": {"type": "Polygon", "coordinates": [[[108.2, 16.0], [108.25, 16.0],
                                                          [108.25, 16.1], [108.2, 16.0]]]}}]}))
    done = run(db, geojson, "--type", "AdministrativeArea")
    assert done.returncode == 0, done.stdout + done.stderr


def test_projected_coordinates_without_a_crs_are_refused(tmp_path: Path) -> None:
    csv = tmp_path / "metres.csv"
    csv.write_text("x,y,name\n548000,1776000,somewhere\n")
    done = run(f"sqlite:///{tmp_path / 'm.db'}", csv)
    assert done.returncode == 2
    assert "not longitude/latitude" in done.stderr and "--crs" in done.stderr
    done = run(f"sqlite:///{tmp_path / 'm.db'}", csv, "--crs", "EPSG:5899")
    assert done.returncode == 0, done.stderr


def test_attribute_names() -> None:
    assert attribute_name("Tên đường") == "Ten_duong"
    assert attribute_name("Đơn vị") == "Don_vi"
    assert attribute_name("2020 dân số") == "f_2020_dan_so"
    assert attribute_name("id") == "prop_id" and attribute_name("type") == "prop_type"


def test_in_process_report(tmp_path: Path) -> None:
    broker = build_broker(Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}",
                                   context_fetch=False))
    path = write(tmp_path / "p.geojson", [shapely.Point(108.2, 16.0)], {"n": [1]},
                 "EPSG:4326", driver="GeoJSON")
    seen: list[tuple[int, int]] = []
    report = LayerImporter(broker, DEFAULT_TENANT).run(
        path, progress=lambda done, total: seen.append((done, total)))
    broker.store.close()
    assert (report.imported, report.refused, report.bbox) == (1, [], [108.2, 16.0, 108.2, 16.0])
    assert seen == [(1, 1)]
