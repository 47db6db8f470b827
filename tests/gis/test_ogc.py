"""OGC API - Features over an imported layer, on both backends: each query's features are
checked against the answer computed here from the source data with shapely; bad requests
get problem details; and GDAL's own OAPIF client (ogrinfo, ogr2ogr from Debian's
gdal-bin), a real client not written here, reads the layer from a real server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient

from dothi.app import build_broker
from dothi.gis.importer import LayerImporter, layer_id
from dothi.gis.layers import LayerDescriptions
from dothi.settings import Settings
from dothi.store.base import DEFAULT_TENANT, Outcome
from tests.server import running_server

USES = ["residential", "commercial", "green", "public"]


def zones() -> list[dict[str, Any]]:
    """A 6 x 5 grid of planning zones over central Đà Nẵng, 0.01° each."""
    out = []
    for i in range(6):
        for j in range(5):
            k = i * 5 + j
            out.append({"shape": shapely.box(108.18 + i * 0.01, 16.03 + j * 0.01,
                                             108.19 + i * 0.01, 16.04 + j * 0.01),
                        "code": f"{'ABCDEF'[i]}{j + 1}", "landUse": USES[k % 4],
                        "far": round(0.5 + (k % 7) * 0.5, 1), "maxHeight": 12 + 3 * (k % 9)})
    return out


def write_gpkg(path: Path) -> Path:
    data = zones()
    pyogrio.raw.write(path, numpy.array(shapely.to_wkb([z["shape"] for z in data]),
                                        dtype=object),
                      [numpy.array([z[f] for z in data]) for f in
                       ("code", "landUse", "far", "maxHeight")],
                      fields=["code", "landUse", "far", "maxHeight"], geometry_type="Polygon",
                      crs="EPSG:4326")
    return path


@pytest.fixture
def layer(client: TestClient, tmp_path: Path) -> TestClient:
    report = LayerImporter(client.app.state.broker, DEFAULT_TENANT).run(  # type: ignore[attr-defined]
        write_gpkg(tmp_path / "zones.gpkg"), entity_type="PlanningZone", title="Quy hoạch")
    assert report.imported == 30
    return client


def codes(client: TestClient, **params: Any) -> set[str]:
    r = client.get("/ogc/collections/zones/items", params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"])
    return {f["properties"]["code"] for f in body["features"]}


def expected(test: Any) -> set[str]:
    return {z["code"] for z in zones() if test(z)}


def test_landing_conformance_collections(layer: TestClient) -> None:
    landing = layer.get("/ogc").json()
    assert {link["rel"] for link in landing["links"]} >= {"self", "service-desc",
                                                          "conformance", "data"}
    conf = layer.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text" in conf
    [zones_] = layer.get("/ogc/collections").json()["collections"]
    assert (zones_["id"], zones_["title"]) == ("zones", "Quy hoạch")
    assert zones_["extent"]["spatial"]["bbox"] == [[108.18, 16.03, 108.24, 16.08]]
    q = layer.get("/ogc/collections/zones/queryables").json()
    assert set(q["properties"]) == {"geometry", "code", "landUse", "far", "maxHeight"}
    assert layer.get("/ogc/collections/nope").status_code == 404


def test_paging(layer: TestClient) -> None:
    r = layer.get("/ogc/collections/zones/items")
    body = r.json()
    assert r.headers["content-type"] == "application/geo+json"
    assert (body["numberMatched"], body["numberReturned"]) == (30, 10)
    after = next(link["href"] for link in body["links"] if link["rel"] == "next")
    assert "offset=10" in after
    seen = {f["id"] for f in body["features"]}
    page = layer.get("/ogc/collections/zones/items", params={"offset": 25}).json()
    assert page["numberReturned"] == 5 and not seen & {f["id"] for f in page["features"]}
    assert not [link for link in page["links"] if link["rel"] == "next"]
    one = layer.get("/ogc/collections/zones/items/3").json()  # GeoPackage ids start at 1
    assert one["properties"]["code"] == "A3" and one["geometry"]["type"] == "Polygon"
    assert layer.get("/ogc/collections/zones/items/999").status_code == 404


@pytest.mark.parametrize(("params", "test"), [
    ({"bbox": "108.185,16.035,108.195,16.045"},
     lambda z: z["shape"].intersects(shapely.box(108.185, 16.035, 108.195, 16.045))),
    ({"landUse": "green"}, lambda z: z["landUse"] == "green"),
    ({"far": "2.5"}, lambda z: z["far"] == 2.5),
    ({"filter": "far > 2 AND landUse = 'residential'"},
     lambda z: z["far"] > 2 and z["landUse"] == "residential"),
    ({"filter": "landUse = 'green' OR maxHeight >= 33"},
     lambda z: z["landUse"] == "green" or z["maxHeight"] >= 33),
    ({"filter": json.dumps({"op": "not", "args": [{"op": "or", "args": [
        {"op": "=", "args": [{"property": "landUse"}, "green"]},
        {"op": "<", "args": [{"property": "far"}, 2]}]}]}), "filter-lang": "cql2-json"},
     lambda z: not (z["landUse"] == "green" or z["far"] < 2)),
    ({"filter": "NOT (landUse = 'green' OR far < 2)"},
     lambda z: not (z["landUse"] == "green" or z["far"] < 2)),
    # AND binds tighter than OR, as CQL2 says (pygeofilter 0.4.0 read this as (a OR b) AND c)
    ({"filter": "landUse = 'green' OR far > 3 AND maxHeight < 20"},
     lambda z: z["landUse"] == "green" or z["far"] > 3 and z["maxHeight"] < 20),
    ({"filter": "CASEI(landUse) LIKE CASEI('GR%')"}, lambda z: z["landUse"] == "green"),
    ({"filter": "code LIKE '_2'"}, lambda z: z["code"].endswith("2")),
    ({"filter": json.dumps({"op": "like", "args": [{"property": "code"}, "_3"]}),
      "filter-lang": "cql2-json"}, lambda z: z["code"].endswith("3")),
    ({"filter": json.dumps({"op": "s_within", "args": [
        {"property": "geometry"}, {"bbox": [108.18, 16.03, 108.205, 16.065]}]}),
      "filter-lang": "cql2-json"},
     lambda z: z["shape"].within(shapely.box(108.18, 16.03, 108.205, 16.065))),
    ({"filter": "NOT landUse = 'green'"}, lambda z: z["landUse"] != "green"),
    ({"filter": "code LIKE 'A%'"}, lambda z: z["code"].startswith("A")),
    ({"filter": "far BETWEEN 1 AND 2"}, lambda z: 1 <= z["far"] <= 2),
    ({"filter": "code IN ('A1', 'C3', 'F5')"}, lambda z: z["code"] in ("A1", "C3", "F5")),
    ({"filter": "code NOT IN ('A1', 'C3')"}, lambda z: z["code"] not in ("A1", "C3")),
    ({"filter": "maxHeight IS NOT NULL"}, lambda z: True),
    ({"filter": "S_INTERSECTS(geometry, POINT(108.215 16.055)) AND far > 0"},
     lambda z: z["shape"].intersects(shapely.Point(108.215, 16.055))),
    ({"filter": "S_WITHIN(geometry, BBOX(108.18, 16.03, 108.205, 16.065))"},
     lambda z: z["shape"].within(shapely.box(108.18, 16.03, 108.205, 16.065))),
    ({"filter": json.dumps({"op": "and", "args": [
        {"op": ">=", "args": [{"property": "maxHeight"}, 30]},
        {"op": "s_intersects", "args": [{"property": "geometry"}, {
            "type": "Polygon", "coordinates": [[[108.18, 16.03], [108.215, 16.03],
                                                [108.215, 16.08], [108.18, 16.03]]]}]}]}),
      "filter-lang": "cql2-json"},
     lambda z: z["maxHeight"] >= 30 and z["shape"].intersects(shapely.Polygon(
         [(108.18, 16.03), (108.215, 16.03), (108.215, 16.08)]))),
])
def test_filters_match_shapely(layer: TestClient, params: dict[str, str], test: Any) -> None:
    want = expected(test)
    assert want, "a filter that matches nothing would prove little"
    assert codes(layer, **params) == want


@pytest.mark.parametrize(("params", "says"), [
    ({"filter": "height > 3"}, "not a queryable"),
    ({"filter": "far >"}, "does not parse"),
    ({"filter": "far > 2 landUse"}, "expected AND, OR or the end at position 9"),
    ({"filter": "far BETWEEN 3 AND 1"}, "the low end is above the high end"),
    ({"filter": "built > DATE('2024-01-01')"}, "temporal literals"),
    ({"filter": "code IS NULL"}, "IS NULL is not supported"),
    ({"filter": "far = 1", "filter-lang": "sql"}, "cql2-text or cql2-json"),
    ({"filter": "S_TOUCHES(geometry, POINT(108 16))"}, "not supported"),
    ({"limit": "0"}, "limit must be"),
    ({"bbox": "1,2,3"}, "bbox is"),
    ({"bbox": "108,16,109,17", "filter": "S_INTERSECTS(geometry, POINT(108 16))"},
     "bbox and a spatial filter"),
    ({"zoning": "x"}, "unknown parameter"),
    ({"datetime": "2024-01-01"}, "no temporal property"),
    ({"f": "xml"}, "json or html"),
])
def test_bad_requests(layer: TestClient, params: dict[str, str], says: str) -> None:
    r = layer.get("/ogc/collections/zones/items", params=params)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.json()["detail"]


def test_html(layer: TestClient) -> None:
    r = layer.get("/ogc/collections/zones/items", params={"f": "html", "limit": 3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "maplibregl.Map" in r.text and "<td>A1</td>" in r.text
    r = layer.get("/ogc/collections", headers={"Accept": "text/html"})
    assert "zones" in r.text and r.headers["content-type"].startswith("text/html")


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="no GDAL (Debian gdal-bin)")
def test_gdal_reads_the_layer(tmp_path: Path) -> None:
    db = tmp_path / "gis.db"
    done = subprocess.run([sys.executable, "-m", "dothi.cli", "import",
                           str(write_gpkg(tmp_path / "zones.gpkg")), "--db", str(db),
                           "--type", "PlanningZone"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with running_server(db) as url:
        info = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{url}/ogc", "zones"],
                              capture_output=True, text=True, timeout=60)
        assert info.returncode == 0, info.stderr
        assert "Feature Count: 30" in info.stdout
        out = tmp_path / "copy.geojson"
        copy = subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{url}/ogc",
                               "zones", "-where", "landUse = 'green'",
                               "-spat", "108.18", "16.03", "108.21", "16.08"],
                              capture_output=True, text=True, timeout=60)
        assert copy.returncode == 0, copy.stderr
    got = json.loads(out.read_text())["features"]
    want = expected(lambda z: z["landUse"] == "green" and z["shape"].intersects(
        shapely.box(108.18, 16.03, 108.21, 16.08)))
    assert {f["properties"]["code"] for f in got} == want


def test_datetime(client: TestClient, tmp_path: Path) -> None:
    dates = ["2023-05-10", "2024-02-01T09:30:00+07:00", "2024-08-15", "sai"]
    path = tmp_path / "decisions.gpkg"
    pyogrio.raw.write(path, numpy.array(shapely.to_wkb(
        [shapely.box(108.2 + k / 100, 16.0, 108.205 + k / 100, 16.005) for k in range(4)]),
        dtype=object), [numpy.array(["Q1", "Q2", "Q3", "Q4"]), numpy.array(dates)],
        fields=["code", "NGAY_QD"], geometry_type="Polygon", crs="EPSG:4326")
    report = LayerImporter(client.app.state.broker, DEFAULT_TENANT).run(  # type: ignore[attr-defined]
        path, temporal="NGAY_QD", rename={"NGAY_QD": "approvalDate"})
    assert report.imported == 3 and report.refused == [
        (4, "NGAY_QD: 'sai' is not a date or date-time")]
    collection = client.get("/ogc/collections/decisions").json()
    assert collection["extent"]["temporal"]["interval"] == [
        ["2023-05-10T00:00:00Z", "2024-08-15T00:00:00Z"]]

    def found(when: str) -> set[str]:
        r = client.get("/ogc/collections/decisions/items", params={"datetime": when})
        assert r.status_code == 200, r.text
        return {f["properties"]["code"] for f in r.json()["features"]}

    assert found("2024-01-01/2024-06-30") == {"Q2"}  # 02:30 UTC on 1 February
    assert found("../2023-12-31") == {"Q1"}
    assert found("2024-01-01/..") == {"Q2", "Q3"}
    assert found("2024-08-15") == {"Q3"}  # a date is the whole day
    assert found("2024-02-01T02:30:00Z") == {"Q2"}
    for bad in ("abc", "2024-06-30/2024-01-01", "../..", "2024-02-01T02:30:00"):
        r = client.get("/ogc/collections/decisions/items", params={"datetime": bad})
        assert r.status_code == 400, bad
    r = client.get("/ogc/collections/decisions/items", params={"datetime": "2024-01-01"})
    assert r.json()["numberMatched"] == 0


# -- the layers' descriptions, kept by each server process ------------------------------


def kinds_gpkg(path: Path) -> Path:
    """The same layer's name, now two zones with another field."""
    pyogrio.raw.write(path, numpy.array(shapely.to_wkb(
        [shapely.box(108.2, 16.0, 108.21, 16.01), shapely.box(108.3, 16.0, 108.31, 16.01)]),
        dtype=object), [numpy.array(["K1", "K2"]), numpy.array(["park", "school"])],
        fields=["code", "zoneKind"], geometry_type="Polygon", crs="EPSG:4326")
    return path


def test_a_layer_written_in_this_process_is_seen_at_once(layer: TestClient,
                                                 tmp_path: Path) -> None:
    layers: LayerDescriptions = layer.app.state.layers  # type: ignore[attr-defined]
    layers.max_age_s = 3600.0  # only the write can make the next request read it again
    assert layer.get("/ogc/collections/zones/items", params={"landUse": "green"}).status_code == 200
    assert layers.kept(DEFAULT_TENANT, "zones") is not None

    LayerImporter(layer.app.state.broker, DEFAULT_TENANT).run(  # type: ignore[attr-defined]
        kinds_gpkg(tmp_path / "zones.gpkg"), entity_type="PlanningZone")
    r = layer.get("/ogc/collections/zones/items", params={"zoneKind": "park"})
    assert r.status_code == 200, r.text
    assert [f["properties"]["code"] for f in r.json()["features"]] == ["K1"]
    r = layer.get("/ogc/collections/zones/items", params={"landUse": "green"})
    assert r.status_code == 400 and "unknown parameter 'landUse'" in r.json()["detail"]

    assert layer.delete(f"/ngsi-ld/v1/entities/{layer_id('zones')}").status_code == 204
    assert layer.get("/ogc/collections/zones").status_code == 404
    assert layer.get("/ogc/collections/zones/items").status_code == 404


def test_a_layer_written_by_another_process_is_seen_after_the_maximum_age(
        layer: TestClient, settings: Settings, tmp_path: Path) -> None:
    layers: LayerDescriptions = layer.app.state.layers  # type: ignore[attr-defined]
    layers.max_age_s = 3600.0
    assert layer.get("/ogc/collections/zones").json()["title"] == "Quy hoạch"
    other = build_broker(settings)  # what another server or `dothi import` would open
    try:
        LayerImporter(other, DEFAULT_TENANT).run(write_gpkg(tmp_path / "zones.gpkg"),
                                                 entity_type="PlanningZone", title="Mới")
    finally:
        other.forwarder.close()
        other.store.close()
    assert layer.get("/ogc/collections/zones").json()["title"] == "Quy hoạch"  # kept
    layers.max_age_s = 0.0
    assert layer.get("/ogc/collections/zones").json()["title"] == "Mới"


def test_a_read_that_a_write_overtook_is_not_kept(layer: TestClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    layers: LayerDescriptions = layer.app.state.layers  # type: ignore[attr-defined]
    store = layers.broker.store
    read = store.get

    def overtaken(tenant: str, eid: str) -> dict | None:
        doc = read(tenant, eid)  # the old description; a write commits before we keep it
        layers.on_write(tenant, [Outcome(eid, "updated")])
        return doc

    monkeypatch.setattr(store, "get", overtaken)
    assert layers.read(DEFAULT_TENANT, "zones") is not None
    monkeypatch.undo()
    assert layers.kept(DEFAULT_TENANT, "zones") is None
    assert layers.read(DEFAULT_TENANT, "zones") is not None
    assert layers.kept(DEFAULT_TENANT, "zones") is not None
