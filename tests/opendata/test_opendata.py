"""The open-data catalogue and downloads, on both backends: search without diacritics,
what is published and what is only listed (non-public, personal), every download format
read back by its own reader (csv, orjson, pyarrow) against the stored values with the
withheld attribute gone, the values over time of a period in Vietnam's time, refusals with
problem details, and the DCAT-AP catalogue expanded as JSON-LD with no network."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from pyld import jsonld

from dothi.app import create_app
from dothi.opendata.catalogue import Metadata
from dothi.settings import Settings
from dothi.store.base import DEFAULT_TENANT, partition
from dothi.text import fold

T = DEFAULT_TENANT
START = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # 07:00 on 1 November in Vietnam
HOURS = 48
CATALOGUE = """
catalogue:
  title: {vi: Dữ liệu mở Đà Nẵng, en: Đà Nẵng open data}
  description: {vi: Dữ liệu của thành phố., en: The city's data.}
  publisher: city
  licence: cc-by-4.0
agencies:
  city: {vi: Ủy ban nhân dân thành phố, en: City People's Committee}
  environment: {vi: Sở Nông nghiệp và Môi trường, en: Department of Agriculture and Environment,
                email: stnmt@danang.gov.vn}
licences:
  cc-by-4.0: {title: CC BY 4.0, uri: "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0",
              page: "https://creativecommons.org/licenses/by/4.0/deed.vi"}
datasets:
  AirQualityObserved:
    open: true
    title: {vi: Chất lượng không khí, en: Air quality}
    description: {vi: Bụi mịn theo giờ., en: Hourly particulate matter.}
    publisher: environment
    frequency: HOURLY
    theme: ENVI
    keywords: {vi: [bụi mịn], en: [particulate matter]}
    withhold: [reliability]
    history: [pm25, no2]
  Streetlight:
    open: true
    title: {vi: Đèn đường, en: Street lights}
    description: {vi: Đèn chiếu sáng., en: Public lighting.}
  PlanningZone:
    open: true
    title: {vi: Phân khu quy hoạch, en: Planning zones}
    description: {vi: Các ô quy hoạch., en: Planning zones.}
    publisher: environment
"""


def station(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:AirQualityObserved:s{n}", "type": "AirQualityObserved",
            "name": {"type": "Property", "value": f"Trạm Hải Châu {n}"},
            "pm25": {"type": "Property", "value": 20.5 + n},
            "no2": {"type": "Property", "value": 30 + n},
            "reliability": {"type": "Property", "value": 0.9},
            "address": {"type": "Property", "value": {"addressLocality": "Đà Nẵng"}},
            "location": {"type": "GeoProperty", "value": {
                "type": "Point", "coordinates": [round(108.2 + n / 100, 2), 16.05]}}}


def series(n: int) -> dict[str, Any]:
    """A station's hourly history: pm25 = n*1000 + hour, no2 every other hour only."""
    def at(k: int) -> str:
        return (START + timedelta(hours=k)).isoformat().replace("+00:00", "Z")

    return {"id": f"urn:ngsi-ld:AirQualityObserved:s{n}", "type": "AirQualityObserved",
            "pm25": [{"type": "Property", "value": n * 1000 + k, "observedAt": at(k)}
                     for k in range(HOURS)],
            "no2": [{"type": "Property", "value": k, "observedAt": at(k)}
                    for k in range(0, HOURS, 2)]}


def quality(agency: str, score: float, entities: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:DataQualityAssessment:AirQualityObserved:{agency}",
            "type": "DataQualityAssessment",
            "assessedType": {"type": "Property", "value": "AirQualityObserved"},
            "agency": {"type": "Property", "value": agency},
            "score": {"type": "Property", "value": score},
            "entities": {"type": "Property", "value": entities}}


@pytest.fixture
def portal(database_url: Any, tmp_path: Path) -> Iterator[TestClient]:
    (tmp_path / "datasets.yaml").write_text(CATALOGUE, encoding="utf-8")
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        opendata_datasets=tmp_path / "datasets.yaml")
    with TestClient(create_app(settings)) as client:
        entities = [station(n) for n in range(3)] + [
            {"id": "urn:ngsi-ld:Streetlight:l1", "type": "Streetlight",
             "powerState": {"type": "Property", "value": "on"},
             "location": {"type": "GeoProperty", "value": {"type": "LineString", "coordinates": [
                 [108.21, 16.06], [108.22, 16.07]]}}},
            {"id": "urn:ngsi-ld:ParkingSpot:p1", "type": "ParkingSpot",
             "status": {"type": "Property", "value": "free"}},
            quality("environment", 80.0, 2), quality("district", 50.0, 1)]
        r = client.post("/ngsi-ld/v1/entityOperations/create", json=entities)
        assert r.status_code == 201, r.text
        for n in range(3):
            r = client.post("/ngsi-ld/v1/temporal/entities", json=series(n))
            assert r.status_code in (201, 204), r.text
        broker = client.app.state.broker  # type: ignore[attr-defined]
        broker.create(partition(T, "personal"), {
            "id": "urn:ngsi-ld:ServiceRequestReporter:r1", "type": "ServiceRequestReporter",
            "phone": {"type": "Property", "value": "0905000000"}}, broker.resolver.core)
        yield client


def test_search_lists_every_type_and_publishes_only_what_is_open(portal: TestClient) -> None:
    found = {d["id"]: d for d in portal.get("/opendata/datasets").json()["datasets"]}
    assert set(found) == {"AirQualityObserved", "Streetlight", "ParkingSpot",
                          "DataQualityAssessment", "ServiceRequestReporter"}
    air = found["AirQualityObserved"]
    assert (air["open"], air["personal"], air["entities"]) == (True, False, 3)
    assert air["publisher"]["name"]["vi"] == "Sở Nông nghiệp và Môi trường"
    assert air["licence"]["title"] == "CC BY 4.0"
    assert air["quality"] == 70.0  # 80 for 2 entities and 50 for 1, weighted
    assert air["modified"] == max(e["modifiedAt"] for e in portal.get(
        "/ngsi-ld/v1/entities", params={"type": "AirQualityObserved",
                                        "options": "sysAttrs"}).json())
    west, south, east, north = air["bbox"]  # the stations' box, to about a metre, outwards
    assert 108.2 - 2e-5 <= west <= 108.2 and 16.05 - 2e-5 <= south <= 16.05
    assert 108.22 <= east <= 108.22 + 2e-5 and 16.05 <= north <= 16.05 + 2e-5
    assert "reliability" not in air["attributes"] and "pm25" in air["attributes"]
    assert (found["ParkingSpot"]["open"], found["ParkingSpot"]["personal"]) == (False, False)
    reporter = found["ServiceRequestReporter"]
    assert (reporter["open"], reporter["personal"], reporter["attributes"]) == (False, True, [])

    def ids(q: str) -> list[str]:
        return [d["id"] for d in portal.get("/opendata/datasets", params={"q": q}).json()[
            "datasets"]]

    assert ids("khong khi") == ids("KHÔNG KHÍ") == ids("Không khí") == ["AirQualityObserved"]
    assert ids("bui min") == ids("particulate") == ids("air quality") == ["AirQualityObserved"]
    assert ids("đèn") == ids("den duong") == ["Streetlight"]
    assert ids("nothing like this") == []
    assert fold("Đà Nẵng") == "da nang"


def test_a_new_type_is_listed_at_once(portal: TestClient) -> None:
    assert portal.get("/opendata/datasets/WasteContainer").status_code == 404
    r = portal.post("/ngsi-ld/v1/entities", json={
        "id": "urn:ngsi-ld:WasteContainer:w1", "type": "WasteContainer",
        "fillingLevel": {"type": "Property", "value": 0.4}})
    assert r.status_code == 201
    assert portal.get("/opendata/datasets/WasteContainer").json()["entities"] == 1


def test_each_gis_layer_is_a_dataset_of_its_own(portal: TestClient, tmp_path: Path) -> None:
    from dothi.gis.importer import LayerImporter
    from tests.gis.test_ogc import write_gpkg

    importer = LayerImporter(portal.app.state.broker, T)  # type: ignore[attr-defined]
    importer.run(write_gpkg(tmp_path / "zones.gpkg"), entity_type="PlanningZone",
                 title="Quy hoạch Hải Châu")
    importer.run(write_gpkg(tmp_path / "other.gpkg"), entity_type="PlanningZone")
    found = {d["id"]: d for d in portal.get("/opendata/datasets").json()["datasets"]}
    assert found["PlanningZone"]["entities"] == 60  # both layers' features
    zones = found["layer-zones"]
    assert zones["title"] == {"vi": "Lớp bản đồ: Quy hoạch Hải Châu",
                              "en": "Map layer: Quy hoạch Hải Châu"}
    assert (zones["open"], zones["entities"], zones["layer"]) == (
        True, 30, "urn:ngsi-ld:GisLayer:zones")
    assert zones["publisher"]["key"] == "environment"  # as its feature type's dataset
    assert zones["bbox"] == [108.18, 16.03, 108.24, 16.08]
    rows = list(csv.DictReader(io.StringIO(portal.get(
        "/opendata/datasets/layer-zones/data.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 30 and all(":zones:" in r["id"] for r in rows)
    assert portal.get("/opendata/datasets/layer-other").json()["entities"] == 30


def test_current_data_in_every_format(portal: TestClient) -> None:
    base = "/opendata/datasets/AirQualityObserved/data"
    r = portal.get(f"{base}.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="AirQualityObserved.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row["id"] for row in rows] == [f"urn:ngsi-ld:AirQualityObserved:s{n}" for n in range(3)]
    assert rows[1]["name"] == "Trạm Hải Châu 1" and float(rows[1]["pm25"]) == 21.5
    assert (float(rows[2]["longitude"]), float(rows[2]["latitude"])) == (108.22, 16.05)
    assert orjson.loads(rows[0]["address"]) == {"addressLocality": "Đà Nẵng"}
    assert "reliability" not in rows[0]

    collection = orjson.loads(portal.get(f"{base}.geojson").content)
    assert [f["geometry"]["coordinates"] for f in collection["features"]] == [
        [108.2, 16.05], [108.21, 16.05], [108.22, 16.05]]
    assert "reliability" not in collection["features"][0]["properties"]

    entities = orjson.loads(portal.get(f"{base}.jsonld").content)
    assert entities[0]["pm25"] == {"type": "Property", "value": 20.5}
    assert entities[0]["@context"].endswith("ngsi-ld-core-context-v1.9.jsonld")
    assert all("reliability" not in e for e in entities)

    table = pq.read_table(io.BytesIO(portal.get(f"{base}.parquet").content))
    assert table.column("pm25").to_pylist() == [20.5, 21.5, 22.5]
    assert table.column("no2").to_pylist() == [30, 31, 32]
    assert str(table.schema.field("no2").type) == "int64"
    assert "reliability" not in table.column_names


def test_values_over_a_period(portal: TestClient) -> None:
    base = "/opendata/datasets/AirQualityObserved/history"
    # 1 November in Vietnam starts at 17:00 UTC on 31 October: the first 17 hours count.
    r = portal.get(f"{base}.csv", params={"from": "2026-11-01", "to": "2026-11-01"})
    assert r.status_code == 200, r.text
    assert 'filename="AirQualityObserved-20261101-20261101.csv"' in \
        r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["id", "observedAt", "pm25", "no2"]
    assert len(rows) - 1 == 3 * 17
    first = rows[1]
    assert first[:3] == ["urn:ngsi-ld:AirQualityObserved:s0", "2026-11-01T00:00:00.000Z", "0"]
    assert first[3] == "0" and rows[4][3] == ""  # no2 only every other hour
    assert max(r[1] for r in rows[1:]) == "2026-11-01T16:00:00.000Z"

    r = portal.get(f"{base}.parquet", params={"from": "2026-11-01T00:00:00Z",
                                              "to": "2026-11-03T00:00:00Z"})
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == 3 * HOURS
    assert sorted(table.column("pm25").to_pylist())[-1] == 2000 + HOURS - 1


@pytest.mark.parametrize("path, params, status, says", [
    ("/opendata/datasets/Nothing", {}, 404, "No dataset 'Nothing'"),
    ("/opendata/datasets/ParkingSpot/data.csv", {}, 403, "not published"),
    ("/opendata/datasets/ServiceRequestReporter/data.csv", {}, 403, "personal data"),
    ("/opendata/datasets/AirQualityObserved/data.xml", {}, 400, "csv, geojson, jsonld, parquet"),
    ("/opendata/datasets/AirQualityObserved/history.geojson", {}, 400, "csv, parquet"),
    ("/opendata/datasets/Streetlight/history.csv", {}, 400, "keeps no values over time"),
    ("/opendata/datasets/AirQualityObserved/history.csv", {"from": "hôm qua"}, 400,
     "a date (2026-11-01)"),
    ("/opendata/datasets/AirQualityObserved/history.csv",
     {"from": "2026-11-02", "to": "2026-11-01"}, 400, "from must be before to"),
    ("/opendata/datasets/AirQualityObserved/history.csv",
     {"from": "2024-01-01", "to": "2026-01-01"}, 400, "at most 366 days"),
])
def test_refusals(portal: TestClient, path: str, params: dict[str, str], status: int,
                  says: str) -> None:
    r = portal.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert says in r.json()["detail"]


def test_too_many_values_are_refused(portal: TestClient, monkeypatch: Any) -> None:
    from dothi.opendata import downloads

    monkeypatch.setattr(downloads, "MAX_HISTORY_ROWS", 100)
    r = portal.get("/opendata/datasets/AirQualityObserved/history.csv",
                   params={"from": "2026-11-01", "to": "2026-11-03"})
    assert r.status_code == 403 and "More than 100 rows" in r.json()["detail"]


def test_dcat_catalogue_expands_as_json_ld_offline(portal: TestClient) -> None:
    r = portal.get("/opendata/catalog")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/ld+json")

    def no_network(url: str, options: Any = None) -> Any:
        raise jsonld.JsonLdError(f"no network: {url}", "loading document failed")

    expanded = jsonld.expand(r.json(), {"documentLoader": no_network})
    dcat, dct = "http://www.w3.org/ns/dcat#", "http://purl.org/dc/terms/"
    [catalog] = expanded
    assert catalog["@type"] == [dcat + "Catalog"]
    datasets = {d["@id"].rsplit("/", 1)[1]: d for d in catalog[dcat + "dataset"]}
    air = datasets["AirQualityObserved"]
    assert {(t["@language"], t["@value"]) for t in air[dct + "title"]} == {
        ("vi", "Chất lượng không khí"), ("en", "Air quality")}
    [publisher] = air[dct + "publisher"]
    assert {"@value": "Sở Nông nghiệp và Môi trường", "@language": "vi"} in \
        publisher["http://xmlns.com/foaf/0.1/name"]
    assert air[dct + "accessRights"] == [
        {"@id": "http://publications.europa.eu/resource/authority/access-right/PUBLIC"}]
    downloads = {d[dcat + "downloadURL"][0]["@id"].rsplit("/", 1)[1]: d
                 for d in air[dcat + "distribution"]}
    assert set(downloads) == {"data.csv", "data.geojson", "data.jsonld", "data.parquet",
                              "history.csv", "history.parquet"}
    assert downloads["data.csv"][dct + "license"] == [
        {"@id": "http://publications.europa.eu/resource/authority/licence/CC_BY_4_0"}]
    wkt = air[dct + "spatial"][0][dcat + "bbox"][0]["@value"]
    corners = [tuple(map(float, p.split())) for p in wkt[9:-2].split(", ")]
    assert wkt.startswith("POLYGON((") and len(corners) == 5 and corners[0] == corners[-1]
    assert corners[0] == pytest.approx((108.2, 16.05), abs=2e-5)
    assert corners[2] == pytest.approx((108.22, 16.05), abs=2e-5)
    assert datasets["ParkingSpot"][dct + "accessRights"] == [
        {"@id": "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC"}]
    assert dcat + "distribution" not in datasets["ParkingSpot"]
    for url, d in downloads.items():  # every download the catalogue names answers
        path = d[dcat + "downloadURL"][0]["@id"].split("testserver", 1)[1]
        assert portal.get(path).status_code == 200, url


def test_the_shipped_catalogue_loads_and_a_broken_one_says_where(tmp_path: Path) -> None:
    shipped = Metadata.load()
    assert shipped.datasets["AirQualityObserved"]["open"] is True
    broken = tmp_path / "datasets.yaml"
    broken.write_text(CATALOGUE.replace("publisher: environment", "publisher: nobody"),
                      encoding="utf-8")
    with pytest.raises(ValueError, match="datasets.AirQualityObserved: unknown publisher"):
        Metadata.load(broken)
    broken.write_text(CATALOGUE.replace("frequency: HOURLY", "frequency: often"),
                      encoding="utf-8")
    with pytest.raises(ValueError, match="frequency is one of"):
        Metadata.load(broken)
