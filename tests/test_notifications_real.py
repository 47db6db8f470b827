"""Notifications against real peers: Mosquitto on 127.0.0.1:1883 and a real
``dothi serve --workers 2`` process."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import MQTT, needs_mosquitto, streetlight
from tests.receiver import receiver
from tests.server import running_server

E = "/ngsi-ld/v1/entities"
S = "/ngsi-ld/v1/subscriptions"




@needs_mosquitto
@pytest.mark.parametrize("version,qos", [("mqtt3.1.1", "0"), ("mqtt5.0", "1")])
def test_mqtt_notification_reaches_a_subscriber(client: TestClient, version: str,
                                                qos: str) -> None:
    import paho.mqtt.client as mqtt

    topic = f"dothi/test/{uuid.uuid4().hex}"
    inbox: queue.Queue[bytes] = queue.Queue()
    subscribed = queue.Queue[int]()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda c, u, msg: inbox.put(msg.payload)
    listener.on_subscribe = lambda *args: subscribed.put(1)
    listener.connect(*MQTT)
    listener.subscribe(topic, qos=1)
    listener.loop_start()
    try:
        subscribed.get(timeout=10)
        r = client.post(S, json={
            "type": "Subscription", "entities": [{"type": "Streetlight"}],
            "notification": {"endpoint": {
                "uri": f"mqtt://{MQTT[0]}:{MQTT[1]}/{topic}", "accept": "application/json",
                "notifierInfo": [{"key": "MQTT-Version", "value": version},
                                 {"key": "MQTT-QoS", "value": qos}],
                "receiverInfo": [{"key": "X-Ward", "value": "Hai Chau"}]}}})
        assert r.status_code == 201, r.text
        client.post(E, json=streetlight(1))
        message = json.loads(inbox.get(timeout=10))
        assert message["metadata"]["Content-Type"] == "application/json"
        assert message["metadata"]["X-Ward"] == "Hai Chau"
        assert "Link" in message["metadata"]
        body = message["body"]
        assert body["type"] == "Notification"
        assert body["data"][0]["id"] == "urn:ngsi-ld:Streetlight:dn-1"
        assert inbox.empty()
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_two_workers_notify_each_change_exactly_once(
        database_url: Callable[[str], str]) -> None:
    """Writes land on either worker; every change is notified once, none twice."""
    updates = 60
    with receiver() as sink, running_server(database_url("w"), "--workers", "2") as base, \
            httpx.Client(base_url=base, timeout=30) as http:
        r = http.post(S, json={"type": "Subscription", "entities": [{"type": "Streetlight"}],
                               "watchedAttributes": ["illuminanceLevel"],
                               "notification": {"format": "keyValues",
                                                 "attributes": ["illuminanceLevel"],
                                                 "endpoint": {"uri": sink.url}}})
        assert r.status_code == 201
        assert http.post(E, json=streetlight(1)).status_code == 201

        def update(n: int) -> int:
            return http.patch(f"{E}/urn:ngsi-ld:Streetlight:dn-1/attrs", json={
                "illuminanceLevel": {"type": "Property", "value": n}}).status_code

        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(update, range(1, updates + 1))) == {204}
        seen: list[float] = []
        while len(seen) < updates + 1:
            seen.extend(d["illuminanceLevel"] for d in sink.next().body["data"])
        assert sorted(seen) == [0.8, *range(1, updates + 1)]
        stats = http.get(f"{S}/{r.headers['location'].rsplit('/', 1)[-1]}").json()
        assert stats["notification"]["timesFailed"] == 0
    assert sink.nothing_queued()
