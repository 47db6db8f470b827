"""Subscriptions: the /subscriptions resource, and notifications delivered to a real HTTP
receiver on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.settings import Settings
from tests.conftest import CORE, streetlight
from tests.receiver import Receiver, receiver, until

E = "/ngsi-ld/v1/entities"
S = "/ngsi-ld/v1/subscriptions"
LIGHT = "urn:ngsi-ld:Streetlight:dn-1"


@pytest.fixture
def sink() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def subscription(sink: Receiver, **extra: object) -> dict:
    body: dict = {
        "type": "Subscription",
        "entities": [{"type": "Streetlight"}],
        "notification": {"endpoint": {"uri": sink.url, "accept": "application/json"}},
    }
    body.update(extra)
    return body


def subscribe(client: TestClient, body: dict) -> str:
    r = client.post(S, json=body)
    assert r.status_code == 201, r.text
    return r.headers["Location"].rsplit("/", 1)[-1]


def set_power(client: TestClient, state: str) -> None:
    r = client.patch(f"{E}/{LIGHT}/attrs", json={"powerState": {"type": "Property",
                                                                  "value": state}})
    assert r.status_code == 204, r.text


# -- the resource ----------------------------------------------------------------------


def test_create_and_retrieve_gives_back_what_was_written(client: TestClient,
                                                         sink: Receiver) -> None:
    body = subscription(sink, id="urn:ngsi-ld:Subscription:s1",
                        watchedAttributes=["powerState"], q="powerState==\"on\"")
    r = client.post(S, json=body)
    assert r.status_code == 201
    assert r.headers["Location"] == f"{S}/urn:ngsi-ld:Subscription:s1"
    got = client.get(f"{S}/urn:ngsi-ld:Subscription:s1")
    assert got.status_code == 200
    assert got.json() == {**body, "status": "active",
                          "notificationTrigger": ["attributeCreated", "attributeUpdated"]}
    assert got.headers["Link"].startswith(f"<{CORE}>")
    again = client.post(S, json=body)
    assert again.status_code == 409
    assert again.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"


def test_an_id_is_made_when_none_is_given(client: TestClient, sink: Receiver) -> None:
    sid = subscribe(client, subscription(sink))
    assert sid.startswith("urn:ngsi-ld:Subscription:")
    assert client.get(f"{S}/{sid}").json()["id"] == sid


@pytest.mark.parametrize("change", [
    {"type": "Subscriptions"},
    {"id": "not a uri"},
    {"notification": None},
    {"notification": {"endpoint": {"uri": "ftp://example.org/x"}}},
    {"entities": None, "watchedAttributes": None},
    {"entities": [{"id": "urn:ngsi-ld:Streetlight:dn-1"}]},
    {"timeInterval": 10, "throttling": 5},
    {"throttling": -1},
    {"expiresAt": "2020-01-01T00:00:00Z"},
    {"notificationTrigger": ["entityChanged"]},
    {"q": "powerState=="},
    {"jsonldContext": "unknownContext"},
    {"unknownMember": 1},
])
def test_bad_subscriptions_are_refused_and_nothing_is_stored(
        client: TestClient, sink: Receiver, change: dict) -> None:
    body = {k: v for k, v in {**subscription(sink), **change}.items() if v is not None}
    r = client.post(S, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert r.json()["title"]
    assert client.get(S).json() == []


@pytest.mark.parametrize("note", [
    {"format": "keyValues", "showChanges": True},
    {"pick": ["id"], "omit": ["type"]},
    {"attributes": []},
    {"endpoint": {"uri": "http://x.org", "receiverInfo": [{"key": "a", "value": 1}]}},
])
def test_bad_notification_parameters_are_refused(client: TestClient, sink: Receiver,
                                                  note: dict) -> None:
    body = subscription(sink)
    body["notification"] = {"endpoint": {"uri": sink.url}, **note}
    assert client.post(S, json=body).status_code == 400


def test_malformed_json_is_an_invalid_request(client: TestClient) -> None:
    r = client.post(S, content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["type"].endswith("/InvalidRequest")


def test_query_pages_with_links_and_count(client: TestClient, sink: Receiver) -> None:
    for n in range(3):
        subscribe(client, subscription(sink, id=f"urn:ngsi-ld:Subscription:{n}"))
    r = client.get(S, params={"limit": 1, "offset": 1, "count": "true"})
    assert r.status_code == 200
    assert [s["id"] for s in r.json()] == ["urn:ngsi-ld:Subscription:1"]
    assert r.headers["NGSILD-Results-Count"] == "3"
    links = r.headers.get_list("Link")
    assert f'<{S}?limit=1&offset=0>; rel="prev"; type="application/ld+json"' in links[1]
    assert f'<{S}?limit=1&offset=2>; rel="next"' in links[1]
    assert client.get(f"{S}/", params={"limit": 5}).status_code == 200


def test_names_are_compacted_with_the_readers_context(client: TestClient,
                                                      sink: Receiver) -> None:
    ctx = {"@context": [{"Lamp": "https://example.org/Lamp", "power": "https://example.org/p"},
                        CORE]}
    client.post("/ngsi-ld/v1/jsonldContexts", json=ctx)
    url = client.get("/ngsi-ld/v1/jsonldContexts").json()[-1]
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    body = subscription(sink, entities=[{"type": "Lamp"}], watchedAttributes=["power"])
    r = client.post(S, json=body, headers={"Link": link})
    sid = r.headers["Location"].rsplit("/", 1)[-1]
    plain = client.get(f"{S}/{sid}").json()
    assert plain["entities"] == [{"type": "https://example.org/Lamp"}]
    assert plain["watchedAttributes"] == ["https://example.org/p"]
    linked = client.get(f"{S}/{sid}", headers={"Link": link,
                                                "Accept": "application/ld+json"}).json()
    assert linked["entities"] == [{"type": "Lamp"}]
    assert linked["@context"] == url


def test_update_merges_and_status_follows_isactive_and_expiry(client: TestClient,
                                                              sink: Receiver) -> None:
    sid = subscribe(client, subscription(sink))
    r = client.patch(f"{S}/{sid}", json={"isActive": False,
                                         "notification": {"format": "keyValues"}})
    assert r.status_code == 204
    got = client.get(f"{S}/{sid}").json()
    assert got["status"] == "paused"
    assert got["notification"] == {"endpoint": {"uri": sink.url, "accept": "application/json"},
                                   "format": "keyValues"}
    client.patch(f"{S}/{sid}", json={"isActive": True})
    assert client.get(f"{S}/{sid}").json()["status"] == "active"
    bad = client.patch(f"{S}/{sid}", json={"notification": {"endpoint": None}})
    assert bad.status_code == 400
    assert client.patch(f"{S}/{sid}", json={"expiresAt": "2001-01-01T00:00:00Z"}) \
        .status_code == 400
    assert client.get(f"{S}/{sid}").json()["notification"]["format"] == "keyValues"


def test_delete_and_the_errors_of_unknown_ids(client: TestClient, sink: Receiver) -> None:
    sid = subscribe(client, subscription(sink))
    assert client.delete(f"{S}/{sid}").status_code == 204
    assert client.get(f"{S}/{sid}").status_code == 404
    assert client.delete(f"{S}/{sid}").status_code == 404
    assert client.patch(f"{S}/{sid}", json={"isActive": False}).status_code == 404
    assert client.get(f"{S}/not-a-uri").status_code == 400
    assert client.patch(f"{S}/", json={"isActive": False}).status_code == 405


# -- notifications ---------------------------------------------------------------------


def test_create_and_update_notify_the_watched_attribute(client: TestClient,
                                                        sink: Receiver) -> None:
    sid = subscribe(client, subscription(sink, watchedAttributes=["powerState"]))
    client.post(E, json=streetlight(1))
    first = sink.next()
    assert first.body["type"] == "Notification"
    assert first.body["subscriptionId"] == sid
    assert first.body["id"].startswith("urn:ngsi-ld:Notification:")
    assert first.body["triggerReason"] == "attributeCreated"
    assert first.body["data"][0]["powerState"] == {"type": "Property", "value": "on"}
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Link"].startswith(f"<{CORE}>")
    # An attribute nobody watches changes nothing; the next notification is the watched one.
    client.patch(f"{E}/{LIGHT}/attrs", json={"illuminanceLevel": {"type": "Property",
                                                                   "value": 0.1}})
    set_power(client, "off")
    second = sink.next()
    assert second.body["triggerReason"] == "attributeUpdated"
    assert second.body["data"][0]["powerState"]["value"] == "off"
    stats = until(lambda: (n := client.get(f"{S}/{sid}").json()["notification"])
                  ["timesSent"] == 2 and n)
    assert stats["status"] == "ok"
    assert "lastSuccess" in stats and "lastNotification" in stats


def test_format_attributes_and_receiver_info(client: TestClient, sink: Receiver) -> None:
    body = subscription(sink)
    body["notification"] = {
        "format": "keyValues", "attributes": ["powerState"],
        "endpoint": {"uri": sink.url, "accept": "application/json",
                     "receiverInfo": [{"key": "X-City", "value": "Da Nang"}]}}
    subscribe(client, body)
    client.post(E, json=streetlight(1))
    got = sink.next()
    assert got.body["data"] == [{"id": LIGHT, "type": "Streetlight", "powerState": "on"}]
    assert got.headers["X-City"] == "Da Nang"


def test_ld_json_notifications_carry_the_context_in_the_body(client: TestClient,
                                                              sink: Receiver) -> None:
    body = subscription(sink)
    body["notification"]["endpoint"]["accept"] = "application/ld+json"
    subscribe(client, body)
    client.post(E, json=streetlight(1))
    got = sink.next()
    assert got.headers["Content-Type"] == "application/ld+json"
    assert "Link" not in got.headers
    assert got.body["data"][0]["@context"] == CORE


def test_q_and_geoq_select_what_is_notified(client: TestClient, sink: Receiver) -> None:
    subscribe(client, subscription(sink, q="illuminanceLevel>0.5", geoQ={
        "georel": "near;maxDistance==2000", "geometry": "Point",
        "coordinates": [108.2272, 16.0612]}))
    far = streetlight(2, location={"type": "GeoProperty", "value": {
        "type": "Point", "coordinates": [105.85, 21.03]}})
    dim = streetlight(3, illuminanceLevel={"type": "Property", "value": 0.2})
    for entity in (far, dim, streetlight(1)):
        client.post(E, json=entity)
    assert [d["id"] for d in sink.next().body["data"]] == [LIGHT]


def test_entity_deleted_and_attribute_deleted(client: TestClient, sink: Receiver) -> None:
    subscribe(client, subscription(sink, notificationTrigger=["attributeDeleted",
                                                              "entityDeleted"]))
    client.post(E, json=streetlight(1))
    client.delete(f"{E}/{LIGHT}/attrs/illuminanceLevel")
    got = sink.next()
    assert got.body["triggerReason"] == "attributeDeleted"
    assert got.body["data"][0]["illuminanceLevel"] == {"type": "Property",
                                                      "value": "urn:ngsi-ld:null"}
    assert got.body["data"][0]["powerState"]["value"] == "on"
    client.delete(f"{E}/{LIGHT}")
    gone = sink.next().body["data"][0]
    assert set(gone) == {"id", "type", "deletedAt"}
    assert gone["id"] == LIGHT and gone["type"] == "Streetlight"


def test_show_changes_gives_the_previous_value(client: TestClient, sink: Receiver) -> None:
    body = subscription(sink, watchedAttributes=["powerState"])
    body["notification"]["showChanges"] = True
    client.post(E, json=streetlight(1))
    subscribe(client, body)
    set_power(client, "off")
    attr = sink.next().body["data"][0]["powerState"]
    assert attr == {"type": "Property", "value": "off", "previousValue": "on"}


def test_paused_subscriptions_send_nothing_until_resumed(client: TestClient,
                                                         sink: Receiver) -> None:
    sid = subscribe(client, subscription(sink, isActive=False))
    client.post(E, json=streetlight(1))
    client.patch(f"{S}/{sid}", json={"isActive": True})
    set_power(client, "off")
    got = sink.next()
    assert got.body["data"][0]["powerState"]["value"] == "off"
    assert sink.nothing_queued()


def test_throttling_holds_the_next_notification_back(client: TestClient,
                                                     sink: Receiver) -> None:
    subscribe(client, subscription(sink, throttling=1))
    client.post(E, json=streetlight(1))
    first = sink.next()
    set_power(client, "off")
    second = sink.next()
    assert second.body["data"][0]["powerState"]["value"] == "off"
    gap = _ms(second.body["notifiedAt"]) - _ms(first.body["notifiedAt"])
    assert gap >= 1000


def test_time_interval_sends_the_current_state(client: TestClient, sink: Receiver) -> None:
    client.post(E, json=streetlight(1))
    client.post(E, json=streetlight(2))
    subscribe(client, subscription(sink, timeInterval=1))
    got = sink.next()
    assert got.body["triggerReason"] == "timeInterval"
    assert sorted(d["id"] for d in got.body["data"]) == [LIGHT, "urn:ngsi-ld:Streetlight:dn-2"]


def test_failed_delivery_is_retried_and_counted(client: TestClient, sink: Receiver) -> None:
    sink.statuses = [500]
    sid = subscribe(client, subscription(sink))
    client.post(E, json=streetlight(1))
    got = sink.next()
    assert got.body["data"][0]["id"] == LIGHT
    stats = until(lambda: (n := client.get(f"{S}/{sid}").json()["notification"])
                  ["timesSent"] == 2 and n)
    assert stats["timesFailed"] == 1
    assert stats["status"] == "ok" and "lastFailure" in stats


def test_an_unreachable_endpoint_marks_the_subscription_failed(
        client: TestClient, sink: Receiver) -> None:
    sid = subscribe(client, subscription(sink))
    client.patch(f"{S}/{sid}", json={"notification": {
        "endpoint": {"uri": "http://127.0.0.1:9/nobody"}}})
    client.post(E, json=streetlight(1))
    # The failure is recorded by the notifier; a second subscription to a live receiver
    # tells us when the same delivery round has finished.
    subscribe(client, subscription(sink, entities=[{"type": "Marker"}]))
    client.post(E, json={"id": "urn:ngsi-ld:Marker:1", "type": "Marker",
                         "n": {"type": "Property", "value": 1}})
    sink.next()
    stats = client.get(f"{S}/{sid}").json()["notification"]
    assert stats["status"] == "failed" and stats["timesFailed"] >= 1


def test_pending_notifications_survive_a_restart(database_url: Callable[[str], str],
                                                 sink: Receiver) -> None:
    settings = Settings(database_url=database_url("restart"), context_fetch=False)
    sink.statuses = [503] * 100  # down while the first process runs
    with TestClient(create_app(settings)) as first:
        subscribe(first, subscription(sink))
        first.post(E, json=streetlight(1))
    assert sink.nothing_queued()
    sink.statuses = []
    with TestClient(create_app(settings)):
        got = sink.next()
    assert got.body["data"][0]["id"] == LIGHT


def _ms(text: str) -> int:
    from dothi.ngsild.temporal import iso_to_ms

    return iso_to_ms(text)


def test_dataset_ids_narrow_what_is_notified(client: TestClient, sink: Receiver) -> None:
    subscribe(client, subscription(sink, datasetId=["urn:ngsi-ld:Dataset:lux"]))
    client.post(E, json=streetlight(1, illuminanceLevel=[
        {"type": "Property", "value": 0.8},
        {"type": "Property", "value": 120, "datasetId": "urn:ngsi-ld:Dataset:lux"}]))
    data = sink.next().body["data"][0]
    assert data["illuminanceLevel"] == {"type": "Property", "value": 120,
                                        "datasetId": "urn:ngsi-ld:Dataset:lux"}
    assert "powerState" not in data


def test_notifications_name_their_tenant(client: TestClient, sink: Receiver) -> None:
    tenant = {"NGSILD-Tenant": "urn:ngsi-ld:tenant:danang"}
    r = client.post(S, json=subscription(sink), headers=tenant)
    assert r.status_code == 201
    assert client.get(S).json() == []  # another tenant's subscriptions are not listed
    client.post(E, json=streetlight(1))  # the default tenant: not notified
    client.post(E, json=streetlight(2), headers=tenant)
    got = sink.next()
    assert got.headers["NGSILD-Tenant"] == "urn:ngsi-ld:tenant:danang"
    assert [d["id"] for d in got.body["data"]] == ["urn:ngsi-ld:Streetlight:dn-2"]


def test_geojson_notifications_are_feature_collections(client: TestClient,
                                                       sink: Receiver) -> None:
    body = subscription(sink)
    body["notification"]["endpoint"]["accept"] = "application/geo+json"
    subscribe(client, body)
    client.post(E, json=streetlight(1))
    got = sink.next()
    assert got.headers["Content-Type"] == "application/geo+json"
    feature = got.body["data"]["features"][0]
    assert feature["type"] == "Feature" and feature["id"] == LIGHT
    assert feature["geometry"] == {"type": "Point", "coordinates": [108.2272, 16.0612]}


def test_an_expired_subscription_says_so_and_sends_nothing(client: TestClient,
                                                           sink: Receiver) -> None:
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(milliseconds=300)).isoformat()
    sid = subscribe(client, subscription(sink, expiresAt=soon,
                                         entities=[{"type": "Streetlight"}]))
    live = subscribe(client, subscription(sink, entities=[{"type": "Marker"}]))
    # Wait for the expiry by watching the subscription's status (an event, no sleep).
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while client.get(f"{S}/{sid}").json()["status"] != "expired":
        assert datetime.now(UTC) < deadline, "the subscription never expired"
    client.post(E, json=streetlight(1))
    client.post(E, json={"id": "urn:ngsi-ld:Marker:1", "type": "Marker",
                         "n": {"type": "Property", "value": 1}})
    got = sink.next()
    assert got.body["subscriptionId"] == live
    assert sink.nothing_queued()


def test_the_endpoint_timeout_is_in_milliseconds(client: TestClient, sink: Receiver) -> None:
    import socket
    import time as clock

    silent = socket.socket()  # takes connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        body = subscription(sink)
        body["notification"]["endpoint"] = {
            "uri": f"http://127.0.0.1:{silent.getsockname()[1]}/n", "timeout": 200}
        sid = subscribe(client, body)
        client.post(E, json=streetlight(1))
        # Watch the subscription until the failure shows: well before the default 10 s.
        deadline = clock.monotonic() + 5
        while client.get(f"{S}/{sid}").json()["notification"].get("status") != "failed":
            assert clock.monotonic() < deadline, "a 200 ms timeout did not fail in 5 s"
    finally:
        silent.close()
