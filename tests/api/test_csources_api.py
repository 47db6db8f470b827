"""Context source registrations and the subscriptions on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import CORE
from tests.receiver import Receiver, receiver, until

R = "/ngsi-ld/v1/csourceRegistrations"
CS = "/ngsi-ld/v1/csourceSubscriptions"
CITY = "http://127.0.0.1:9/city"


def registration(**extra: object) -> dict:
    body: dict = {
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Streetlight"}],
                         "propertyNames": ["powerState"]}],
        "endpoint": CITY,
    }
    body.update(extra)
    return body


def register(client: TestClient, body: dict) -> str:
    r = client.post(R, json=body)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture
def sink() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def test_create_retrieve_as_written_with_the_defaults(client: TestClient) -> None:
    body = registration(id="urn:ngsi-ld:ContextSourceRegistration:hc", csourceProperty1="a")
    rid = register(client, body)
    assert rid == body["id"]
    got = client.get(f"{R}/{rid}").json()
    assert got == {**body, "mode": "inclusive", "operations": ["federationOps"],
                   "status": "ok"}
    assert client.post(R, json=body).status_code == 409


@pytest.mark.parametrize("change", [
    {"type": "Registration"},
    {"information": []},
    {"information": [{"entities": [{"id": "urn:x:1"}]}]},
    {"endpoint": "not a uri"},
    {"mode": "sometimes"},
    {"mode": "exclusive"},  # an exclusive registration names entity ids
    {"mode": "auxiliary", "operations": ["updateOps"]},
    {"operations": ["teleport"]},
    {"expiresAt": "2001-01-01T00:00:00Z"},
    {"contextSourceInfo": [{"key": "k"}]},
    {"management": {"timeout": -1}},
    {"id": "not-a-uri"},
])
def test_bad_registrations_are_refused(client: TestClient, change: dict) -> None:
    r = client.post(R, json=registration(**change))
    assert r.status_code == 400, r.text
    assert r.json()["type"].endswith("/BadRequestData") and r.json()["title"]
    assert client.get(R, params={"type": "Streetlight"}).json() == []


def test_update_merges_members_and_null_removes(client: TestClient) -> None:
    rid = register(client, registration(expiresAt="2099-01-01T00:00:00Z"))
    r = client.patch(f"{R}/{rid}", json={"expiresAt": None, "registrationName": "Hải Châu"})
    assert r.status_code == 204
    got = client.get(f"{R}/{rid}").json()
    assert "expiresAt" not in got and got["registrationName"] == "Hải Châu"
    assert client.patch(f"{R}/{rid}", json={"ward": "Sơn Trà"}).status_code == 204
    assert client.get(f"{R}/{rid}").json()["ward"] == "Sơn Trà"
    assert client.patch(f"{R}/{rid}", json={"type": "Other"}).status_code == 400
    assert client.patch(f"{R}/urn:x:none", json={"registrationName": "x"}).status_code == 404
    assert client.delete(f"{R}/{rid}").status_code == 204
    assert client.get(f"{R}/{rid}").status_code == 404
    assert client.get(f"{R}/nope").status_code == 400


def test_query_by_type_attrs_id_q_and_geo(client: TestClient) -> None:
    a = register(client, registration(csourceProperty1="aValue", location={
        "type": "Point", "coordinates": [108.22, 16.06]}))
    b = register(client, registration(information=[{"entities": [
        {"id": "urn:ngsi-ld:WasteContainer:1", "type": "WasteContainer"}]}]))

    def ids(**params: str) -> list[str]:
        r = client.get(R, params=params)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()]

    assert ids(type="Streetlight") == [a]
    assert ids(type="WasteContainer") == [b]
    assert ids(type="Streetlight", attrs="powerState") == [a]
    assert ids(type="Streetlight", attrs="fillingLevel") == []
    # a registers every Streetlight, whatever its id: it may hold any id asked for.
    assert ids(id="urn:ngsi-ld:WasteContainer:1") == [a, b]
    assert ids(id="urn:ngsi-ld:WasteContainer:1", type="WasteContainer") == [b]
    assert ids(q='csourceProperty1=="aValue"', type="Streetlight,WasteContainer") == [a]
    assert ids(georel="near;maxDistance==2000", geometry="Point",
               coordinates="[108.221,16.061]") == [a]
    assert client.get(R).status_code == 400
    assert client.get(R, params={"q": "(bad"}).status_code == 400
    assert client.get(R, params={"type": "Streetlight", "timerel": "before"}).status_code \
        == 400


def test_query_by_observation_interval(client: TestClient) -> None:
    old = register(client, registration(observationInterval={
        "startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00Z"}))
    ongoing = register(client, registration(observationInterval={
        "startAt": "2025-01-01T00:00:00Z"}))
    register(client, registration())  # no interval: not selected by time

    def ids(**params: str) -> list[str]:
        return [x["id"] for x in client.get(R, params={"type": "Streetlight",
                                                       **params}).json()]

    assert ids(timerel="before", timeAt="2022-01-01T00:00:00Z") == [old]
    assert ids(timerel="after", timeAt="2022-01-01T00:00:00Z") == [ongoing]
    assert ids(timerel="between", timeAt="2020-06-01T00:00:00Z",
               endTimeAt="2026-01-01T00:00:00Z") == [old, ongoing]


def test_names_follow_the_readers_context(client: TestClient) -> None:
    ctx = {"@context": [{"Lamp": "https://example.org/Lamp"}, CORE]}
    client.post("/ngsi-ld/v1/jsonldContexts", json=ctx)
    url = client.get("/ngsi-ld/v1/jsonldContexts").json()[-1]
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    r = client.post(R, json={**registration(), "information": [{"entities": [
        {"type": "Lamp"}]}]}, headers={"Link": link})
    rid = r.headers["Location"].rsplit("/", 1)[-1]
    plain = client.get(f"{R}/{rid}").json()
    assert plain["information"][0]["entities"][0]["type"] == "https://example.org/Lamp"
    linked = client.get(f"{R}/{rid}", headers={"Link": link}).json()
    assert linked["information"][0]["entities"][0]["type"] == "Lamp"
    assert [x["id"] for x in client.get(R, params={"type": "Lamp"},
                                        headers={"Link": link}).json()] == [rid]


def test_csource_subscriptions_hear_of_registrations(client: TestClient,
                                                    sink: Receiver) -> None:
    before = register(client, registration())
    r = client.post(CS, json={"type": "Subscription", "entities": [{"type": "Streetlight"}],
                              "notification": {"endpoint": {"uri": sink.url}}})
    assert r.status_code == 201, r.text
    sid = r.headers["Location"].rsplit("/", 1)[-1]
    first = sink.next().body
    assert first["type"] == "ContextSourceNotification"
    assert first["triggerReason"] == "newlyMatching"
    assert [x["id"] for x in first["data"]] == [before]
    later = register(client, registration(registrationName="later"))
    assert [x["id"] for x in sink.next().body["data"]] == [later]
    client.patch(f"{R}/{later}", json={"registrationName": "renamed"})
    updated = sink.next().body
    assert updated["triggerReason"] == "updated"
    assert updated["data"][0]["registrationName"] == "renamed"
    client.patch(f"{R}/{later}", json={"information": [{"entities": [{"type": "Bin"}]}]})
    assert sink.next().body["triggerReason"] == "noLongerMatching"
    until(lambda: client.get(f"{CS}/{sid}").json()["notification"]["timesSent"] == 4)
    # Entity subscriptions and csource subscriptions are separate collections.
    assert client.get("/ngsi-ld/v1/subscriptions").json() == []
    assert [s["id"] for s in client.get(CS).json()] == [sid]
    assert client.delete(f"/ngsi-ld/v1/subscriptions/{sid}").status_code == 404
    assert client.delete(f"{CS}/{sid}").status_code == 204


def test_csf_selects_registrations_by_their_own_members(client: TestClient,
                                                       sink: Receiver) -> None:
    r = client.post(CS, json={"type": "Subscription", "entities": [{"type": "Streetlight"}],
                              "csf": 'ward=="Hai Chau"',
                              "notification": {"endpoint": {"uri": sink.url}}})
    assert r.status_code == 201
    register(client, registration(ward="Son Tra"))
    wanted = register(client, registration(ward="Hai Chau"))
    assert [x["id"] for x in sink.next().body["data"]] == [wanted]
    assert sink.nothing_queued()
