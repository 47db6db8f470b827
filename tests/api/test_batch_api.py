"""Batch operations: per-entity success and error lists, nothing half-written."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import streetlight

OPS = "/ngsi-ld/v1/entityOperations"


def ids(resp: object) -> list[str]:
    return sorted(e["id"] for e in resp.json())  # type: ignore[attr-defined]


def test_batch_create_reports_each_entity(client: TestClient) -> None:
    client.post("/ngsi-ld/v1/entities", json=streetlight(1))
    bad = {"id": "urn:ngsi-ld:Streetlight:dn-9", "type": "Streetlight",
           "r": {"type": "Relationship", "object": "not a uri"}}
    r = client.post(f"{OPS}/create", json=[streetlight(1), streetlight(2), bad, streetlight(3)])
    assert r.status_code == 207
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Streetlight:dn-2", "urn:ngsi-ld:Streetlight:dn-3"]
    errors = {e["entityId"]: e["error"]["status"] for e in body["errors"]}
    assert errors == {"urn:ngsi-ld:Streetlight:dn-1": 409, "urn:ngsi-ld:Streetlight:dn-9": 400}
    assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-9").status_code == 404
    r = client.post(f"{OPS}/create", json=[streetlight(4)])
    assert r.status_code == 201 and r.json() == ["urn:ngsi-ld:Streetlight:dn-4"]


def test_batch_upsert_replace_and_update(client: TestClient) -> None:
    r = client.post(f"{OPS}/upsert", json=[streetlight(1), streetlight(2)])
    assert r.status_code == 201 and sorted(r.json()) == [
        "urn:ngsi-ld:Streetlight:dn-1", "urn:ngsi-ld:Streetlight:dn-2"]
    replace = {"id": "urn:ngsi-ld:Streetlight:dn-1", "type": "Streetlight",
               "status": {"type": "Property", "value": "ok"}}
    r = client.post(f"{OPS}/upsert", json=[replace])
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-1").json()
    assert "powerState" not in got and got["status"]["value"] == "ok"
    r = client.post(f"{OPS}/upsert", params={"options": "update"},
                    json=[{"id": "urn:ngsi-ld:Streetlight:dn-2", "type": "Streetlight",
                           "status": {"type": "Property", "value": "ok"}}])
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-2").json()
    assert got["powerState"]["value"] == "on" and got["status"]["value"] == "ok"


def test_batch_update_merge_delete(client: TestClient) -> None:
    client.post(f"{OPS}/create", json=[streetlight(1), streetlight(2)])
    r = client.post(f"{OPS}/update", params={"options": "noOverwrite"}, json=[
        {"id": "urn:ngsi-ld:Streetlight:dn-1", "powerState": {"type": "Property", "value": "x"}},
        {"id": "urn:ngsi-ld:Streetlight:dn-404", "a": {"type": "Property", "value": 1}},
    ])
    assert r.status_code == 207
    assert r.json()["errors"][0]["error"]["status"] == 404
    r = client.post(f"{OPS}/merge", json=[
        {"id": "urn:ngsi-ld:Streetlight:dn-2", "powerState": "off"}])
    assert r.status_code == 204
    got = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:dn-2").json()
    assert got["powerState"]["value"] == "off"
    r = client.post(f"{OPS}/delete", json=["urn:ngsi-ld:Streetlight:dn-1",
                                            "urn:ngsi-ld:Streetlight:dn-404"])
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:Streetlight:dn-1"]
    assert client.post(f"{OPS}/delete", json="nope").status_code == 400


def test_batch_query(client: TestClient) -> None:
    client.post(f"{OPS}/create", json=[streetlight(1), streetlight(2),
                                       {"id": "urn:ngsi-ld:Bin:1", "type": "WasteContainer",
                                        "fillingLevel": {"type": "Property", "value": 0.9}}])
    r = client.post(f"{OPS}/query", json={"type": "Query",
                                          "entities": [{"type": "WasteContainer"}],
                                          "q": "fillingLevel>0.5"})
    assert r.status_code == 200 and ids(r) == ["urn:ngsi-ld:Bin:1"]
    r = client.post(f"{OPS}/query", params={"count": "true"}, json={
        "type": "Query", "entities": [{"type": "Streetlight"}],
        "geoQ": {"georel": "near;maxDistance==100", "geometry": "Point",
                 "coordinates": [108.2272, 16.0615]}})
    assert r.headers["NGSILD-Results-Count"] == "2"
    assert client.post(f"{OPS}/query", json={"entities": []}).status_code == 400


def test_one_entity_twice_in_a_batch_keeps_each_instance_once(client: TestClient) -> None:
    # Both changes stamp the entity with one modifiedAt: the second must not keep the
    # first one's instance again.
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", params={"options": "update"}, json=[
        {"id": "urn:ngsi-ld:T:twice", "type": "T", "a": {"type": "Property", "value": 1}},
        {"id": "urn:ngsi-ld:T:twice", "type": "T", "b": {"type": "Property", "value": 2}}])
    assert r.status_code == 201, r.text
    history = client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:T:twice").json()
    assert [i["value"] for i in history["a"]] == [1]
    assert [i["value"] for i in history["b"]] == [2]
