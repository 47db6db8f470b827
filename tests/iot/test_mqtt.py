"""Devices over a real MQTT broker (Mosquitto on 127.0.0.1:1883): measures in, commands out
and their answers back, on both store backends. Every test uses its own API key, so runs
sharing the broker do not see each other's messages."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dothi.app import create_app
from dothi.iot.mqtt import parse_topic
from dothi.settings import Settings
from tests.conftest import MQTT, needs_mosquitto
from tests.iot.test_provisioning import ENTITIES, GROUP, entity, provision
from tests.receiver import until

pytestmark = needs_mosquitto


class Peer:
    """A device's side of the broker: publishes, and queues what it is sent."""

    def __init__(self) -> None:
        import paho.mqtt.client as mqtt

        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.inbox.put((m.topic, m.payload))
        self.client.connect(*MQTT)
        self.client.loop_start()

    def subscribe(self, topic: str) -> None:
        info = self.client.subscribe(topic, qos=1)
        assert info[0] == 0

    def publish(self, topic: str, payload: str | bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def next(self, timeout: float = 10.0) -> tuple[str, bytes]:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing received within {timeout} s") from None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_client(database_url: Callable[[str], str]) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url("test"), context_fetch=False,
                        iot_mqtt_url=f"mqtt://{MQTT[0]}:{MQTT[1]}", iot_command_timeout=1.0)
    with TestClient(create_app(settings)) as client:
        assert client.app.state.iot.mqtt.connected.wait(10)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


def _provision(client: TestClient, protocol: str = "UL") -> tuple[str, str]:
    apikey = f"t{uuid.uuid4().hex[:10]}"
    eid = f"urn:ngsi-ld:Streetlight:{apikey}"
    provision(client, {**GROUP, "apikey": apikey, "protocol": protocol},
              {"device_id": "lamp-1", "apikey": apikey, "entity_name": eid})
    return apikey, eid


def _value(client: TestClient, eid: str, attr: str) -> Any:
    return entity(client, eid, options="keyValues").get(attr)


def test_topics() -> None:
    assert parse_topic("/k/d/attrs") == ("attrs", "k", "d", None, None)
    assert parse_topic("/k/d/attrs/t") == ("attrs", "k", "d", None, "t")
    assert parse_topic("/json/k/d/attrs") == ("attrs", "k", "d", "JSON", None)
    assert parse_topic("/ul/k/d/cmdexe") == ("cmdexe", "k", "d", "UL", None)
    assert parse_topic("/k/d/cmd") is None
    assert parse_topic("k/d/attrs") is None


def test_measures_over_mqtt(mqtt_client: TestClient, peer: Peer) -> None:
    apikey, eid = _provision(mqtt_client)
    peer.publish(f"/{apikey}/lamp-1/attrs", "l|0.7|p|on")
    until(lambda: _value(mqtt_client, eid, "illuminanceLevel") == 0.7)
    assert _value(mqtt_client, eid, "powerState") == "on"
    # The JSON prefix says the payload is JSON, whatever the device's own protocol.
    peer.publish(f"/json/{apikey}/lamp-1/attrs", '{"l": 0.2}')
    until(lambda: _value(mqtt_client, eid, "illuminanceLevel") == 0.2)
    peer.publish(f"/{apikey}/lamp-1/attrs/p", "off")
    until(lambda: _value(mqtt_client, eid, "powerState") == "off")
    # Refused: counted, never applied. (The counters are the process's: other runs
    # sharing the broker may add to them, so this test's own problems are looked up.)
    peer.publish(f"/{apikey}/lamp-1/attrs", "l|dark")
    peer.publish(f"/{apikey}/ghost/attrs", "l|1")

    def mine() -> list[tuple[str, str]]:
        recent = mqtt_client.get("/iot/about").json()["ingestion"]["recentProblems"]
        return [(p["reason"], p["deviceId"]) for p in recent if p["apikey"] == apikey]

    until(lambda: len(mine()) == 2)
    assert sorted(mine()) == [("malformed", "lamp-1"), ("unknown-device", "ghost")]
    assert _value(mqtt_client, eid, "illuminanceLevel") == 0.2


@pytest.mark.parametrize("protocol,sent,answer", [
    ("UL", b"lamp-1@dim|0.5", b"lamp-1@dim|dimmed to 50%"),
    ("JSON", b'{"dim":0.5}', b'{"dim": "dimmed to 50%"}'),
])
def test_command_round_trip(mqtt_client: TestClient, peer: Peer, protocol: str,
                            sent: bytes, answer: bytes) -> None:
    apikey, eid = _provision(mqtt_client, protocol)
    peer.subscribe(f"/{apikey}/lamp-1/cmd")
    r = mqtt_client.patch(f"{ENTITIES}/{eid}/attrs/dim",
                          json={"type": "Property", "value": 0.5})
    assert r.status_code == 204, r.text
    topic, payload = peer.next()
    assert topic == f"/{apikey}/lamp-1/cmd"
    assert payload.replace(b" ", b"") == sent
    assert _value(mqtt_client, eid, "dim_status") == "PENDING"
    peer.publish(f"/{apikey}/lamp-1/cmdexe", answer)
    until(lambda: _value(mqtt_client, eid, "dim_status") == "OK")
    assert _value(mqtt_client, eid, "dim_info") == "dimmed to 50%"


def test_unanswered_command_expires(mqtt_client: TestClient, peer: Peer) -> None:
    apikey, eid = _provision(mqtt_client)
    peer.subscribe(f"/{apikey}/lamp-1/cmd")
    mqtt_client.patch(f"{ENTITIES}/{eid}/attrs/dim", json={"type": "Property", "value": 1})
    peer.next()
    until(lambda: _value(mqtt_client, eid, "dim_status") == "EXPIRED")
    assert "no answer" in _value(mqtt_client, eid, "dim_info")
