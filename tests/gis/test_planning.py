"""Planning look-up at a point and on a parcel, from zones and parcels imported from files
(their columns renamed with --field), in Vietnamese and English, on both backends."""

from __future__ import annotations

from pathlib import Path

import numpy
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient

from dothi.gis.importer import LayerImporter
from dothi.store.base import DEFAULT_TENANT


def write(path: Path, shapes: list, fields: dict) -> Path:
    pyogrio.raw.write(path, numpy.array(shapely.to_wkb(shapes), dtype=object),
                      [numpy.array(v) for v in fields.values()], fields=list(fields),
                      geometry_type="Polygon", crs="EPSG:4326")
    return path


@pytest.fixture
def planned(client: TestClient, tmp_path: Path) -> TestClient:
    importer = LayerImporter(client.app.state.broker, DEFAULT_TENANT)  # type: ignore[attr-defined]
    zones = write(tmp_path / "phan-khu.gpkg", [
        shapely.box(108.20, 16.05, 108.21, 16.06), shapely.box(108.21, 16.05, 108.22, 16.06)], {
        "MA_O": ["A1", "B2"], "CHUC_NANG": ["residential", "green"], "HSSDD": [3.5, 0.1],
        "TANG_CAO": [45.0, 6.0], "QD": ["1234/QĐ-UBND", "1234/QĐ-UBND"]})
    report = importer.run(zones, entity_type="PlanningZone", rename={
        "MA_O": "zoneCode", "CHUC_NANG": "landUse", "HSSDD": "maxFloorAreaRatio",
        "TANG_CAO": "maxHeight", "QD": "approvalDecision"})
    assert report.imported == 2
    parcels = write(tmp_path / "thua-dat.gpkg", [shapely.box(108.2095, 16.052, 108.2105, 16.053)],
                    {"SO_THUA": ["DN-12-345"]})
    assert importer.run(parcels, entity_type="LandParcel",
                        rename={"SO_THUA": "parcelId"}).imported == 1
    return client


def test_lookup_at_a_point(planned: TestClient) -> None:
    r = planned.get("/planning/lookup", params={"lat": 16.055, "lon": 108.205})
    assert r.status_code == 200, r.text
    found = r.json()
    [zone] = found["zones"]
    assert (zone["zoneCode"], zone["landUse"], zone["maxFloorAreaRatio"], zone["maxHeight"]) == (
        "A1", "residential", 3.5, 45.0)
    assert zone["layer"] == "phan-khu"
    use = next(rule for rule in zone["rules"] if rule["name"] == "landUse")
    assert (use["vi"], use["valueVi"], use["valueEn"]) == (
        "Chức năng sử dụng đất", "Đất ở", "Residential")
    assert found["summary"] == {
        "vi": "Ô A1: Đất ở, hệ số sử dụng đất tối đa 3.5, cao tối đa 45.0 m.",
        "en": "Zone A1: Residential, maximum floor-area ratio 3.5, maximum height 45.0 m."}
    empty = planned.get("/planning/lookup", params={"lat": 16.5, "lon": 108.5}).json()
    assert empty["zones"] == [] and "Không có ô quy hoạch" in empty["summary"]["vi"]


def test_lookup_by_parcel(planned: TestClient) -> None:
    found = planned.get("/planning/lookup", params={"parcel": "DN-12-345"}).json()
    # The parcel straddles the boundary between the two zones: both apply.
    assert sorted(z["zoneCode"] for z in found["zones"]) == ["A1", "B2"]
    assert found["where"]["type"] == "Polygon"


@pytest.mark.parametrize(("params", "status"), [
    ({}, 400), ({"lat": "x", "lon": "108"}, 400), ({"lat": "95", "lon": "108"}, 400),
    ({"parcel": "nope"}, 404)])
def test_bad_lookups(planned: TestClient, params: dict[str, str], status: int) -> None:
    r = planned.get("/planning/lookup", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_field_renaming_is_checked(planned: TestClient, tmp_path: Path) -> None:
    importer = LayerImporter(planned.app.state.broker, DEFAULT_TENANT)  # type: ignore[attr-defined]
    path = write(tmp_path / "x.gpkg", [shapely.box(108.2, 16.0, 108.3, 16.1)], {"A": ["1"]})
    with pytest.raises(ValueError, match="no field 'B'"):
        importer.run(path, rename={"B": "zoneCode"})
    with pytest.raises(ValueError, match="not an attribute name"):
        importer.run(path, rename={"A": "zone code"})
