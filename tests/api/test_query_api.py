"""GET /entities: selection, q, geoQ, scopeQ, pagination, count and GeoJSON output."""

from __future__ import annotations

from fastapi.testclient import TestClient

OPS = "/ngsi-ld/v1/entityOperations"


def light(n: int, lon: float, lat: float, state: str, level: float, **extra: object) -> dict:
    return {
        "id": f"urn:ngsi-ld:Streetlight:{n}", "type": "Streetlight",
        "powerState": {"type": "Property", "value": state},
        "illuminanceLevel": {"type": "Property", "value": level},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        **extra,
    }


HAI_CHAU = [[[108.205, 16.035], [108.235, 16.035], [108.235, 16.085], [108.205, 16.085],
             [108.205, 16.035]]]


def seed(client: TestClient) -> None:
    entities = [
        light(1, 108.2272, 16.0612, "on", 0.9, scope="/VN/DaNang/HaiChau"),  # Dragon Bridge
        light(2, 108.2242, 16.0680, "off", 0.1, scope="/VN/DaNang/HaiChau"),  # Han Market
        light(3, 108.2470, 16.0630, "on", 0.5, scope="/VN/DaNang/SonTra"),  # east bank
        light(4, 108.2630, 15.9990, "on", 0.7),  # Marble Mountains, far
        {"id": "urn:ngsi-ld:AirQualityObserved:1", "type": "AirQualityObserved",
         "pm25": {"type": "Property", "value": 42.0, "unitCode": "GQ"},
         "location": {"type": "GeoProperty",
                      "value": {"type": "Point", "coordinates": [108.2200, 16.0700]}}},
    ]
    assert client.post(f"{OPS}/create", json=entities).status_code == 201


def found(client: TestClient, **params: str) -> list[str]:
    r = client.get("/ngsi-ld/v1/entities", params=params)
    assert r.status_code == 200, r.text
    return sorted(e["id"].rsplit(":", 2)[-2] + ":" + e["id"].rsplit(":", 1)[-1] for e in r.json())


def test_type_id_and_pattern(client: TestClient) -> None:
    seed(client)
    assert len(found(client, type="Streetlight")) == 4
    assert len(found(client, type="Streetlight,AirQualityObserved")) == 5
    assert len(found(client, type="Streetlight|AirQualityObserved")) == 5
    assert found(client, type="Streetlight;AirQualityObserved") == []
    assert found(client, id="urn:ngsi-ld:Streetlight:1,urn:ngsi-ld:Streetlight:3") == [
        "Streetlight:1", "Streetlight:3"]
    assert found(client, idPattern=".*Air.*") == ["AirQualityObserved:1"]
    assert found(client, attrs="pm25") == ["AirQualityObserved:1"]
    assert client.get("/ngsi-ld/v1/entities").status_code == 400
    bad = client.get("/ngsi-ld/v1/entities", params={"idPattern": "(unclosed"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/BadRequestData")


def test_q(client: TestClient) -> None:
    seed(client)
    assert found(client, type="Streetlight", q='powerState=="off"') == ["Streetlight:2"]
    assert found(client, type="Streetlight", q="illuminanceLevel>=0.5;powerState==\"on\"") == [
        "Streetlight:1", "Streetlight:3", "Streetlight:4"]
    assert found(client, type="Streetlight", q="illuminanceLevel==0.4..0.8") == [
        "Streetlight:3", "Streetlight:4"]
    assert found(client, q="pm25>40|illuminanceLevel<0.2") == [
        "AirQualityObserved:1", "Streetlight:2"]
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "q": "powerState=="})
    assert r.status_code == 400 and r.json()["type"].endswith("/BadRequestData")


def test_scope_q(client: TestClient) -> None:
    seed(client)
    assert found(client, scopeQ="/VN/DaNang/#") == ["Streetlight:1", "Streetlight:2",
                                                    "Streetlight:3"]
    assert found(client, scopeQ="/VN/DaNang/SonTra") == ["Streetlight:3"]


def test_geo_queries(client: TestClient) -> None:
    seed(client)
    near = found(client, type="Streetlight", georel="near;maxDistance==1000",
                 geometry="Point", coordinates="[108.2272,16.0612]")
    assert near == ["Streetlight:1", "Streetlight:2"]  # Han Market is ~790 m away
    far = found(client, type="Streetlight", georel="near;minDistance==5000",
                geometry="Point", coordinates="[108.2272,16.0612]")
    assert far == ["Streetlight:4"]
    import json

    within = found(client, type="Streetlight", georel="within", geometry="Polygon",
                   coordinates=json.dumps(HAI_CHAU))
    assert within == ["Streetlight:1", "Streetlight:2"]
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "georel": "within",
                                                   "geometry": "Polygon",
                                                   "coordinates": "[[1,2]]"})
    assert r.status_code == 400
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "georel": "near",
                                                   "geometry": "Point"})
    assert r.status_code == 400


def test_pagination_and_count(client: TestClient) -> None:
    seed(client)
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "limit": "2",
                                                   "count": "true"})
    assert r.headers["NGSILD-Results-Count"] == "4"
    assert len(r.json()) == 2
    links = r.headers.get_list("link")
    assert any('rel="next"' in link and "offset=2" in link for link in links)
    r2 = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "limit": "2",
                                                    "offset": "2"})
    first = {e["id"] for e in r.json()}
    second = {e["id"] for e in r2.json()}
    assert len(first | second) == 4
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "limit": "0",
                                                   "count": "true"})
    assert r.json() == [] and r.headers["NGSILD-Results-Count"] == "4"
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "limit": "5000"})
    assert r.status_code == 403
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "limit": "x"})
    assert r.status_code == 400


def test_geojson_and_keyvalues_lists(client: TestClient) -> None:
    seed(client)
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight", "options": "keyValues"},
                   headers={"Accept": "application/geo+json"})
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    assert fc["features"][0]["properties"]["powerState"] in ("on", "off")


def test_types_and_attributes(client: TestClient) -> None:
    seed(client)
    types = client.get("/ngsi-ld/v1/types").json()
    assert types["typeList"] == ["AirQualityObserved", "Streetlight"]
    detail = client.get("/ngsi-ld/v1/types/Streetlight").json()
    assert detail["entityCount"] == 4
    names = {a["attributeName"] for a in detail["attributeDetails"]}
    assert names == {"powerState", "illuminanceLevel", "location"}
    assert client.get("/ngsi-ld/v1/types/Nope").status_code == 404
    attrs = client.get("/ngsi-ld/v1/attributes").json()["attributeList"]
    assert "pm25" in attrs and "location" in attrs
    loc = client.get("/ngsi-ld/v1/attributes/location").json()
    assert loc["typeNames"] == ["AirQualityObserved", "Streetlight"]
    assert loc["attributeTypes"] == ["GeoProperty"]
    details = client.get("/ngsi-ld/v1/types", params={"details": "true"}).json()
    assert {d["typeName"] for d in details} == {"AirQualityObserved", "Streetlight"}
    client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:1")
    assert client.get("/ngsi-ld/v1/types").json()["typeList"] == ["Streetlight"]
    assert client.get("/ngsi-ld/v1/attributes/pm25").status_code == 404


def test_geo_index_follows_updates_and_shapes(client: TestClient) -> None:
    seed(client)
    import json

    box = json.dumps(HAI_CHAU)
    params = {"type": "Streetlight", "georel": "within", "geometry": "Polygon",
              "coordinates": box}
    # Moving a streetlight out of the polygon takes it out of the answer.
    r = client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:1/attrs/location",
                     json={"value": {"type": "Point", "coordinates": [108.30, 16.00]}})
    assert r.status_code == 204
    assert found(client, **params) == ["Streetlight:2"]
    # A zone polygon and an entity with two geometries (one multi-instance attribute).
    zone = {"id": "urn:ngsi-ld:Zone:1", "type": "Zone", "location": {
        "type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [[
            [108.21, 16.05], [108.22, 16.05], [108.22, 16.06], [108.21, 16.06],
            [108.21, 16.05]]]}}}
    two = {"id": "urn:ngsi-ld:Zone:2", "type": "Zone", "location": [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [108.215, 16.055]}},
        {"type": "GeoProperty", "datasetId": "urn:ngsi-ld:ds:2",
         "value": {"type": "Point", "coordinates": [108.216, 16.056]}}]}
    client.post("/ngsi-ld/v1/entityOperations/create", json=[zone, two])
    r = client.get("/ngsi-ld/v1/entities", params={
        "type": "Zone", "georel": "within", "geometry": "Polygon", "coordinates": box,
        "count": "true"})
    assert sorted(e["id"] for e in r.json()) == ["urn:ngsi-ld:Zone:1", "urn:ngsi-ld:Zone:2"]
    assert r.headers["NGSILD-Results-Count"] == "2"
    r = client.get("/ngsi-ld/v1/entities", params={
        "type": "Zone", "georel": "intersects", "geometry": "Point",
        "coordinates": "[108.215,16.052]"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Zone:1"]
    client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Zone:2")
    r = client.get("/ngsi-ld/v1/entities", params={
        "type": "Zone", "georel": "near;maxDistance==50", "geometry": "Point",
        "coordinates": "[108.2155,16.0555]"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Zone:1"]
