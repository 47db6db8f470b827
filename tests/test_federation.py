"""Distributed operations: a national broker that registers a city's broker as a context
source. The city is a real ``dothi serve`` process on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import streetlight
from tests.server import running_server

E = "/ngsi-ld/v1/entities"
R = "/ngsi-ld/v1/csourceRegistrations"
LIGHT = "urn:ngsi-ld:Streetlight:dn-1"


@pytest.fixture(scope="module")
def city_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("city") / "city.db") as base:
        yield base


@pytest.fixture
def city(city_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=city_url, timeout=10) as http:
        yield http
        # Each test starts from an empty city.
        found = http.get(E, params={"type": "Streetlight", "limit": 1000}).json()
        for entity in found:
            http.delete(f"{E}/{entity['id']}")


def register(national: TestClient, city_url: str, **extra: object) -> str:
    body = {"type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Streetlight"}]}],
            "endpoint": city_url, **extra}
    r = national.post(R, json=body)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[-1]


def test_a_query_at_the_national_broker_returns_the_citys_entities(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    for n in (1, 2):
        assert city.post(E, json=streetlight(n)).status_code == 201
    client.post(E, json=streetlight(3))
    register(client, city_url)
    r = client.get(E, params={"type": "Streetlight", "count": "true"})
    assert r.status_code == 200
    assert sorted(e["id"] for e in r.json()) == [LIGHT, "urn:ngsi-ld:Streetlight:dn-2",
                                                 "urn:ngsi-ld:Streetlight:dn-3"]
    assert r.headers["NGSILD-Results-Count"] == "3"
    assert r.json()[0]["id"] == "urn:ngsi-ld:Streetlight:dn-3"  # its own first
    one = client.get(f"{E}/{LIGHT}", params={"options": "keyValues"})
    assert one.status_code == 200 and one.json()["powerState"] == "on"
    picked = client.get(f"{E}/{LIGHT}", params={"options": "keyValues",
                                                "pick": "id,powerState"})
    assert picked.json() == {"id": LIGHT, "powerState": "on"}
    local = client.get(E, params={"type": "Streetlight", "local": "true"})
    assert [e["id"] for e in local.json()] == ["urn:ngsi-ld:Streetlight:dn-3"]


def test_a_query_body_is_forwarded_as_a_query_body(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    city.post(E, json=streetlight(1))
    register(client, city_url)
    r = client.post("/ngsi-ld/v1/entityOperations/query",
                    json={"type": "Query", "entities": [{"type": "Streetlight"}],
                          "q": 'powerState=="on"'})
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == [LIGHT]


def test_answers_for_one_entity_are_merged_attribute_by_attribute(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    city.post(E, json={"id": LIGHT, "type": "Streetlight",
                       "illuminanceLevel": {"type": "Property", "value": 0.3}})
    client.post(E, json={"id": LIGHT, "type": "Streetlight",
                         "powerState": {"type": "Property", "value": "off"}})
    register(client, city_url)
    got = client.get(f"{E}/{LIGHT}", params={"options": "keyValues"}).json()
    assert got == {"id": LIGHT, "type": "Streetlight", "powerState": "off",
                   "illuminanceLevel": 0.3}
    found = client.get(E, params={"type": "Streetlight", "options": "keyValues"}).json()
    assert found == [got]


def test_an_auxiliary_source_never_overrides_what_is_held_here(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    city.post(E, json=streetlight(1, powerState={"type": "Property", "value": "city",
                                                 "observedAt": "2030-01-01T00:00:00Z"}))
    client.post(E, json=streetlight(1, powerState={"type": "Property", "value": "mine"}))
    register(client, city_url, mode="auxiliary")
    assert client.get(f"{E}/{LIGHT}").json()["powerState"]["value"] == "mine"


def test_an_unreachable_source_is_a_warning_not_a_failure(client: TestClient) -> None:
    client.post(E, json=streetlight(1))
    register(client, "http://127.0.0.1:9")
    r = client.get(E, params={"type": "Streetlight"})
    assert r.status_code == 200
    assert [e["id"] for e in r.json()] == [LIGHT]
    assert r.headers["NGSILD-Warning"].startswith("299 http://127.0.0.1:9")


def test_redirected_writes_go_to_the_source_only(client: TestClient, city: httpx.Client,
                                                  city_url: str) -> None:
    register(client, city_url, mode="redirect", operations=["redirectionOps"])
    assert client.post(E, json=streetlight(1)).status_code == 201
    assert city.get(f"{E}/{LIGHT}").status_code == 200
    assert client.get(E, params={"type": "Streetlight", "local": "true"}).json() == []
    r = client.patch(f"{E}/{LIGHT}/attrs", json={"powerState": {"type": "Property",
                                                               "value": "off"}})
    assert r.status_code == 204, r.text
    assert city.get(f"{E}/{LIGHT}").json()["powerState"]["value"] == "off"
    assert client.delete(f"{E}/{LIGHT}").status_code == 204
    assert city.get(f"{E}/{LIGHT}").status_code == 404


def test_exclusive_attributes_live_at_the_source(client: TestClient, city: httpx.Client,
                                                  city_url: str) -> None:
    register(client, city_url, mode="exclusive", operations=["redirectionOps"],
             information=[{"entities": [{"id": LIGHT, "type": "Streetlight"}],
                           "propertyNames": ["illuminanceLevel"]}])
    assert client.post(E, json=streetlight(1)).status_code == 201
    at_city = city.get(f"{E}/{LIGHT}").json()
    assert set(at_city) == {"id", "type", "illuminanceLevel"}
    here = client.get(f"{E}/{LIGHT}", params={"local": "true"}).json()
    assert "illuminanceLevel" not in here and here["powerState"]["value"] == "on"
    merged = client.get(f"{E}/{LIGHT}", params={"options": "keyValues"}).json()
    assert merged["illuminanceLevel"] == 0.8 and merged["powerState"] == "on"


def test_a_write_that_fails_here_but_succeeds_there_is_a_multi_status(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    client.post(E, json=streetlight(1))
    register(client, city_url, operations=["createEntity", "queryEntity"])
    r = client.post(E, json=streetlight(1))
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["success"] == [LIGHT]
    assert body["errors"][0]["error"]["status"] == 409
    assert city.get(f"{E}/{LIGHT}").status_code == 200


def test_operations_not_registered_are_not_forwarded(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    city.post(E, json=streetlight(1))
    register(client, city_url, operations=["updateOps"])
    assert client.get(f"{E}/{LIGHT}").status_code == 404


def test_a_request_that_comes_back_is_refused(client: TestClient, city_url: str) -> None:
    register(client, city_url)
    broker_id = client.app.state.broker.forwarder.broker_id
    r = client.get(E, params={"type": "Streetlight"},
                   headers={"Via": f"1.1 other, 1.1 {broker_id}"})
    assert r.status_code == 508
    assert r.json()["type"].endswith("/LoopDetected")


def test_two_dothi_processes_national_and_city(database_url: Callable[[str], str]) -> None:
    """The issue's end-to-end case: two servers on loopback, the city registered at the
    national instance, a query at the national instance returns the city's entities."""
    with running_server(database_url("city")) as city_base, \
            running_server(database_url("national")) as national_base, \
            httpx.Client(timeout=10) as http:
        for n in range(1, 6):
            assert http.post(f"{city_base}{E}", json=streetlight(n)).status_code == 201
        r = http.post(f"{national_base}{R}", json={
            "type": "ContextSourceRegistration", "registrationName": "Đà Nẵng",
            "information": [{"entities": [{"type": "Streetlight"}]}],
            "endpoint": city_base})
        assert r.status_code == 201
        found = http.get(f"{national_base}{E}", params={"type": "Streetlight", "limit": 3,
                                                       "count": "true"})
        assert found.status_code == 200
        assert len(found.json()) == 3
        assert found.headers["NGSILD-Results-Count"] == "5"
        assert http.get(f"{national_base}{E}",
                        params={"type": "Streetlight", "local": "true"}).json() == []


def test_batches_are_split_one_request_per_source(client: TestClient, city: httpx.Client,
                                                  city_url: str) -> None:
    register(client, city_url, mode="redirect", operations=["redirectionOps"],
             information=[{"entities": [{"type": "Streetlight",
                                         "idPattern": "urn:ngsi-ld:Streetlight:dn-[12]$"}]}])
    r = client.post("/ngsi-ld/v1/entityOperations/create",
                    json=[streetlight(1), streetlight(2), streetlight(3)])
    assert r.status_code == 201, r.text
    assert sorted(r.json()) == [LIGHT, "urn:ngsi-ld:Streetlight:dn-2",
                                "urn:ngsi-ld:Streetlight:dn-3"]
    at_city = city.get(E, params={"type": "Streetlight"}).json()
    assert sorted(e["id"] for e in at_city) == [LIGHT, "urn:ngsi-ld:Streetlight:dn-2"]
    here = client.get(E, params={"type": "Streetlight", "local": "true"}).json()
    assert [e["id"] for e in here] == ["urn:ngsi-ld:Streetlight:dn-3"]
    again = client.post("/ngsi-ld/v1/entityOperations/create", json=[streetlight(1)])
    assert again.status_code == 207
    assert again.json()["errors"][0]["entityId"] == LIGHT
    assert again.json()["errors"][0]["error"]["status"] == 409
    deleted = client.post("/ngsi-ld/v1/entityOperations/delete",
                          json=[LIGHT, "urn:ngsi-ld:Streetlight:dn-3"])
    assert deleted.status_code == 204, deleted.text
    assert city.get(f"{E}/{LIGHT}").status_code == 404


def test_attribute_and_entity_level_writes_follow_the_registration(
        client: TestClient, city: httpx.Client, city_url: str) -> None:
    register(client, city_url, mode="exclusive", operations=["redirectionOps"],
             information=[{"entities": [{"id": LIGHT, "type": "Streetlight"}],
                           "propertyNames": ["illuminanceLevel"]}])
    client.post(E, json=streetlight(1))
    lux = {"type": "Property", "value": 0.1}
    assert client.patch(f"{E}/{LIGHT}/attrs/illuminanceLevel", json=lux).status_code == 204
    assert city.get(f"{E}/{LIGHT}").json()["illuminanceLevel"]["value"] == 0.1
    power = {"type": "Property", "value": "off"}
    assert client.patch(f"{E}/{LIGHT}/attrs/powerState", json=power).status_code == 204
    assert "powerState" not in city.get(f"{E}/{LIGHT}").json()
    here = client.get(f"{E}/{LIGHT}", params={"local": "true"}).json()
    assert here["powerState"]["value"] == "off" and "illuminanceLevel" not in here
    merged = client.patch(f"{E}/{LIGHT}", json={"illuminanceLevel": 0.5, "powerState": "on"})
    assert merged.status_code == 204, merged.text
    assert city.get(f"{E}/{LIGHT}").json()["illuminanceLevel"]["value"] == 0.5
    assert client.get(f"{E}/{LIGHT}", params={"local": "true"}).json()["powerState"][
        "value"] == "on"
    assert client.delete(f"{E}/{LIGHT}/attrs/illuminanceLevel").status_code == 204
    assert "illuminanceLevel" not in city.get(f"{E}/{LIGHT}").json()


def test_types_and_attributes_include_the_sources(client: TestClient, city: httpx.Client,
                                                   city_url: str) -> None:
    city.post(E, json=streetlight(1))
    city.post(E, json=streetlight(2))
    client.post(E, json=streetlight(3, brightness={"type": "Property", "value": 1}))
    register(client, city_url)
    assert "Streetlight" in client.get("/ngsi-ld/v1/types").json()["typeList"]
    info = client.get("/ngsi-ld/v1/types/Streetlight").json()
    assert info["entityCount"] == 3
    names = {a["attributeName"] for a in info["attributeDetails"]}
    assert {"powerState", "illuminanceLevel", "brightness"} <= names
    attrs = client.get("/ngsi-ld/v1/attributes").json()["attributeList"]
    assert "illuminanceLevel" in attrs
    local = client.get("/ngsi-ld/v1/types/Streetlight", params={"local": "true"}).json()
    assert local["entityCount"] == 1
