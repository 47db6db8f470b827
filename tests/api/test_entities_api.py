"""Entity CRUD over HTTP, checked against the behaviour clauses 5.6 and 6.4–6.7 describe."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import CORE, streetlight

LD = {"Content-Type": "application/ld+json"}
LINK_SDM = (
    '<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; '
    'type="application/ld+json"'
)


def test_create_retrieve_delete(client: TestClient) -> None:
    r = client.post("/ngsi-ld/v1/entities", json=streetlight())
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1"
    r = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "Streetlight"
    assert body["powerState"] == {"type": "Property", "value": "on"}
    assert body["location"]["value"]["coordinates"] == [108.2272, 16.0612]
    assert CORE in r.headers["link"]
    assert client.delete("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1").status_code == 204
    r = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1")
    assert r.status_code == 404
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    assert r.headers["content-type"] == "application/problem+json"


def test_create_twice_is_conflict_and_keeps_first(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=streetlight())
    other = streetlight(powerState={"type": "Property", "value": "off"})
    r = client.post("/ngsi-ld/v1/entities", json=other)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/AlreadyExists")
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1").json()
    assert got["powerState"]["value"] == "on"


def test_bad_inputs_are_refused_and_change_nothing(client: TestClient) -> None:
    cases = [
        ({"type": "Streetlight"}, 400),  # no id
        ({"id": "not a uri", "type": "Streetlight"}, 400),
        ({"id": "urn:ngsi-ld:X:1"}, 400),  # no type
        ({"id": "urn:ngsi-ld:X:1", "type": "X", "a": {"type": "Property"}}, 400),
        ({"id": "urn:ngsi-ld:X:1", "type": "X", "r": {"type": "Relationship", "object": "x y"}},
         400),
        ({"id": "urn:ngsi-ld:X:1", "type": "X",
          "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}},
         400),
        ({"id": "urn:ngsi-ld:X:1", "type": "X", "bad name": 1}, 400),
    ]
    for body, status in cases:
        r = client.post("/ngsi-ld/v1/entities", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["type"].endswith("/BadRequestData"), body
    r = client.post("/ngsi-ld/v1/entities", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["type"].endswith("/InvalidRequest")
    r = client.post("/ngsi-ld/v1/entities", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.get("/ngsi-ld/v1/entities", params={"type": "X", "local": "true"})
    assert r.status_code == 200 and r.json() == []


def test_json_body_with_context_is_refused_and_ld_body_needs_one(client: TestClient) -> None:
    body = {**streetlight(), "@context": CORE}
    r = client.post("/ngsi-ld/v1/entities", json=body)
    assert r.status_code == 400
    r = client.post("/ngsi-ld/v1/entities", json=streetlight(), headers=LD)
    assert r.status_code == 400
    r = client.post("/ngsi-ld/v1/entities", json=body, headers=LD)
    assert r.status_code == 201


def test_user_context_expands_and_compacts(client: TestClient) -> None:
    ctx = {"@context": {"Streetlight": "https://smartdatamodels.org/dataModel.Streetlighting/Streetlight",
                        "powerState": "https://smartdatamodels.org/powerState"}}
    r = client.post("/ngsi-ld/v1/jsonldContexts", json=ctx)
    assert r.status_code == 201
    url = "http://testserver" + r.headers["location"]
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    assert client.post("/ngsi-ld/v1/entities", json=streetlight(),
                       headers={"Link": link}).status_code == 201
    # Without the user context the names come back as full IRIs.
    plain = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1").json()
    assert plain["type"] == "https://smartdatamodels.org/dataModel.Streetlighting/Streetlight"
    assert "https://smartdatamodels.org/powerState" in plain
    withctx = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1",
                         headers={"Link": link, "Accept": "application/ld+json"}).json()
    assert withctx["type"] == "Streetlight" and "powerState" in withctx
    assert withctx["@context"] == url
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight"})
    assert r.json() == []  # a different type IRI without the context
    r = client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight"}, headers={"Link": link})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Streetlight:dn-1"]


def test_unknown_context_is_503(client: TestClient) -> None:
    r = client.post("/ngsi-ld/v1/entities", json=streetlight(), headers={"Link": LINK_SDM})
    assert r.status_code == 503
    assert r.json()["type"].endswith("/LdContextNotAvailable")


def test_representations(client: TestClient) -> None:
    e = streetlight(name={"type": "LanguageProperty", "languageMap": {"vi": "Đèn", "en": "Lamp"}},
                    refGroup={"type": "Relationship", "object": "urn:ngsi-ld:StreetlightGroup:1"},
                    temperature={"type": "Property", "value": 30,
                                 "observedAt": "2026-11-24T08:00:00Z"})
    client.post("/ngsi-ld/v1/entities", json=e)
    url = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1"
    kv = client.get(url, params={"options": "keyValues"}).json()
    assert kv["powerState"] == "on"
    assert kv["refGroup"] == "urn:ngsi-ld:StreetlightGroup:1"
    assert kv["location"] == {"type": "Point", "coordinates": [108.2272, 16.0612]}
    assert kv["name"] == {"vi": "Đèn", "en": "Lamp"}
    concise = client.get(url, params={"format": "concise"}).json()
    assert concise["powerState"] == "on"
    assert concise["refGroup"] == {"object": "urn:ngsi-ld:StreetlightGroup:1"}
    assert concise["temperature"] == {"value": 30, "observedAt": "2026-11-24T08:00:00.000Z"}
    assert concise["name"] == {"languageMap": {"vi": "Đèn", "en": "Lamp"}}
    lang = client.get(url, params={"lang": "en"}).json()
    assert lang["name"] == {"type": "Property", "value": "Lamp", "lang": "en"}
    sys = client.get(url, params={"options": "sysAttrs"}).json()
    assert sys["createdAt"].endswith("Z") and "modifiedAt" in sys["powerState"]
    picked = client.get(url, params={"pick": "id,powerState"}).json()
    assert picked == {"id": "urn:ngsi-ld:Streetlight:dn-1",
                      "powerState": {"type": "Property", "value": "on"}}
    omitted = client.get(url, params={"omit": "location,name,refGroup,temperature,type"}).json()
    assert set(omitted) == {"id", "powerState", "illuminanceLevel"}
    feature = client.get(url, headers={"Accept": "application/geo+json"}).json()
    assert feature["type"] == "Feature"
    assert feature["geometry"]["coordinates"] == [108.2272, 16.0612]
    assert client.get(url, headers={"Accept": "text/csv"}).status_code == 406


def test_concise_input_is_understood(client: TestClient) -> None:
    body = {"id": "urn:ngsi-ld:X:1", "type": "X", "a": 5, "b": {"value": 1, "unitCode": "MTR"},
            "r": {"object": "urn:ngsi-ld:Y:1"},
            "location": {"type": "Point", "coordinates": [108.2, 16.0]}}
    assert client.post("/ngsi-ld/v1/entities", json=body).status_code == 201
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:X:1").json()
    assert got["a"] == {"type": "Property", "value": 5}
    assert got["b"] == {"type": "Property", "value": 1, "unitCode": "MTR"}
    assert got["r"] == {"type": "Relationship", "object": "urn:ngsi-ld:Y:1"}
    assert got["location"]["type"] == "GeoProperty"


def test_attribute_operations(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=streetlight())
    base = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1"
    # append with noOverwrite keeps the old value and says so
    r = client.post(f"{base}/attrs", params={"options": "noOverwrite"},
                    json={"powerState": {"type": "Property", "value": "off"},
                          "status": {"type": "Property", "value": "ok"}})
    assert r.status_code == 207
    assert r.json()["notUpdated"][0]["attributeName"] == "powerState"
    got = client.get(base).json()
    assert got["powerState"]["value"] == "on" and got["status"]["value"] == "ok"
    # update of an attribute that does not exist is reported, existing one updated
    r = client.patch(f"{base}/attrs", json={"powerState": {"type": "Property", "value": "off"},
                                            "missing": {"type": "Property", "value": 1}})
    assert r.status_code == 207
    assert client.get(base).json()["powerState"]["value"] == "off"
    # partial attribute update keeps other members
    r = client.patch(f"{base}/attrs/illuminanceLevel", json={"value": 0.5})
    assert r.status_code == 204
    assert client.get(base).json()["illuminanceLevel"] == {
        "type": "Property", "value": 0.5, "unitCode": "C62"}
    assert client.patch(f"{base}/attrs/nothing", json={"value": 1}).status_code == 404
    # replace attribute
    r = client.put(f"{base}/attrs/status", json={"type": "Property", "value": "broken"})
    assert r.status_code == 204
    # multi-instance with datasetId, then delete one instance, then all
    r = client.post(f"{base}/attrs", json={"temp": [
        {"type": "Property", "value": 20},
        {"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:ds:a"}]})
    assert r.status_code == 204
    assert len(client.get(base).json()["temp"]) == 2
    r = client.delete(f"{base}/attrs/temp", params={"datasetId": "urn:ngsi-ld:ds:a"})
    assert r.status_code == 204
    assert client.get(base).json()["temp"] == {"type": "Property", "value": 20}
    client.post(f"{base}/attrs", json={"temp": {"type": "Property", "value": 22,
                                                "datasetId": "urn:ngsi-ld:ds:b"}})
    r = client.delete(f"{base}/attrs/temp", params={"deleteAll": "true"})
    assert r.status_code == 204 and "temp" not in client.get(base).json()
    assert client.delete(f"{base}/attrs/temp").status_code == 404


def test_merge_patch_and_replace(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=streetlight())
    base = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1"
    r = client.patch(base, json={"powerState": "off", "illuminanceLevel": "urn:ngsi-ld:null",
                                 "new": {"type": "Property", "value": 1}},
                     headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 204, r.text
    got = client.get(base).json()
    assert got["powerState"]["value"] == "off" and "illuminanceLevel" not in got
    assert got["new"]["value"] == 1
    r = client.put(base, json={"type": "Streetlight", "only": {"type": "Property", "value": 2}})
    assert r.status_code == 204
    got = client.get(base).json()
    assert set(got) == {"id", "type", "only"}
    assert client.put("/ngsi-ld/v1/entities/urn:ngsi-ld:X:none",
                      json={"type": "X"}).status_code == 404


def test_tenants_are_separate(client: TestClient) -> None:
    t = {"NGSILD-Tenant": "urn:ngsi-ld:tenant:hue"}
    assert client.get("/ngsi-ld/v1/entities", params={"type": "Streetlight"},
                      headers=t).status_code == 404
    assert client.post("/ngsi-ld/v1/entities", json=streetlight(), headers=t).status_code == 201
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1").status_code == 404
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1", headers=t)
    assert got.status_code == 200


def test_oversized_payload(client: TestClient) -> None:
    client.app.state.settings.max_body_bytes = 1000  # type: ignore[attr-defined]
    big = streetlight(blob={"type": "Property", "value": "x" * 2000})
    r = client.post("/ngsi-ld/v1/entities", json=big)
    assert r.status_code == 413
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1").status_code == 404


def test_attribute_timestamps_survive_later_changes(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=streetlight())
    base = "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1"
    first = client.get(base, params={"options": "sysAttrs"}).json()
    assert first["powerState"]["createdAt"] == first["createdAt"]
    r = client.patch(f"{base}/attrs/illuminanceLevel", json={"value": 0.3})
    assert r.status_code == 204
    second = client.get(base, params={"options": "sysAttrs"}).json()
    assert second["createdAt"] == first["createdAt"]
    assert second["modifiedAt"] > first["modifiedAt"]
    # The untouched attribute keeps its own times, the changed one moves with the entity.
    assert second["powerState"]["modifiedAt"] == first["powerState"]["modifiedAt"]
    assert second["powerState"]["createdAt"] == first["createdAt"]
    assert second["illuminanceLevel"]["modifiedAt"] == second["modifiedAt"]
    assert second["illuminanceLevel"]["createdAt"] == first["createdAt"]
    client.post(f"{base}/attrs", json={"status": {"type": "Property", "value": "ok"}})
    third = client.get(base, params={"options": "sysAttrs"}).json()
    assert third["illuminanceLevel"]["modifiedAt"] == second["modifiedAt"]
    assert third["status"]["createdAt"] == third["modifiedAt"] > first["createdAt"]
