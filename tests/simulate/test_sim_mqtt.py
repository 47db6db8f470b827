"""Against a real broker: Mosquitto on 127.0.0.1:1883 (skipped when there is none).

Each test uses its own apikey prefix, so parallel runs, or a simulation someone runs against
the same broker, cannot mix their messages into ours.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dothi.simulate import Simulation, SimulationOptions
from dothi.simulate.city import DANANG, City, build_population
from dothi.simulate.kinds import KINDS
from tests.conftest import MQTT as BROKER
from tests.conftest import needs_mosquitto

pytestmark = needs_mosquitto


def private_city() -> City:
    return dataclasses.replace(DANANG, apikey_prefix=f"t{uuid.uuid4().hex[:10]}")


@contextmanager
def listener(topics: list[str]) -> Iterator[tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]]:
    """A paho client subscribed to ``topics`` (SUBACK received) that queues what arrives."""
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[int] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: inbox.put(message)
    client.on_subscribe = lambda *args: subscribed.put(1)
    client.connect(*BROKER)
    client.loop_start()
    try:
        client.subscribe([(t, 1) for t in topics])
        subscribed.get(timeout=10)
        yield client, inbox
    finally:
        client.disconnect()
        client.loop_stop()


def test_measures_arrive_well_formed_on_the_devices_topics() -> None:
    city = private_city()
    devices = {(d.apikey, d.device_id): d for d in build_population(city, 12)}
    topics = [f"/{city.apikey(k)}/+/attrs" for k in KINDS]
    with listener(topics) as (_client, inbox):
        report = Simulation(SimulationOptions(
            city=city, devices=12, rate="10/s", duration=1.0, provision=False,
            start=datetime(2026, 11, 24, 19, 0, tzinfo=city.tz))).run()
        assert report.failure is None and report.errors == 0, report.last_error
        # 12 devices x 10/s x 1 s; on a loaded machine the last slots may fall past the
        # second and are counted as skipped, never lost silently.
        assert report.sent + report.skipped == 120 and report.sent >= 12
        messages = [inbox.get(timeout=10) for _ in range(report.sent)]
    per_device: Counter[str] = Counter()
    protocols = set()
    for message in messages:
        empty, apikey, device_id, leaf = message.topic.split("/")
        assert (empty, leaf) == ("", "attrs")
        device = devices[(apikey, device_id)]
        per_device[device_id] += 1
        kind = device.kind
        protocols.add(kind.protocol)
        types = {a.object_id: a.type for a in kind.attrs}
        if kind.protocol == "UL":
            fields = message.payload.decode().split("|")
            assert len(fields) % 2 == 0
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            assert set(values) == set(types)
            for object_id, value in values.items():
                if types[object_id] == "Number":
                    float(value)
        else:
            body = json.loads(message.payload)
            assert set(body) == set(types)
            for object_id, value in body.items():
                expected: dict[str, tuple[type, ...]] = {
                    "Number": (int, float), "Integer": (int,), "Boolean": (bool,),
                    "Text": (str,), "DateTime": (str,)}
                assert isinstance(value, expected[types[object_id]]), (object_id, value)
    assert protocols == {"UL", "JSON"}
    # Every device at its own rate: slots go round the devices in turn.
    assert len(per_device) == 12 and max(per_device.values()) - min(per_device.values()) <= 1
    assert report.skipped or set(per_device.values()) == {10}
    lights = [m for m in messages if m.topic.startswith(f"/{city.apikey(KINDS[0])}/")]
    assert lights and all(b"ps|" in m.payload for m in lights)


def test_commands_are_answered_and_change_the_devices() -> None:
    city = private_city()
    night = datetime(2026, 11, 24, 20, 0, tzinfo=city.tz)
    sim = Simulation(SimulationOptions(city=city, devices=300, rate="1/min", provision=False,
                                       start=night))
    light = next(d for d in sim.devices if d.device_id == "sl-0001")
    gate = next(d for d in sim.devices if d.kind.slug == "gate")
    assert light.params["status"] == "ok"
    sim.start()
    try:
        assert sim.wait_ready(15) and sim.report.failure is None
        clock = sim.clock
        assert clock is not None
        replies = [f"/{light.apikey}/{light.device_id}/cmdexe",
                   f"/{gate.apikey}/{gate.device_id}/cmdexe"]
        with listener(replies) as (client, inbox):
            def ask(device_topic: str, payload: bytes) -> tuple[str, bytes]:
                client.publish(device_topic, payload, qos=1)
                message = inbox.get(timeout=10)
                return message.topic, bytes(message.payload)

            light_cmd = f"/{light.apikey}/{light.device_id}/cmd"
            assert ask(light_cmd, b"sl-0001@dim|0.3") == (replies[0], b"sl-0001@dim|OK")
            m = sim.world.measures(light, clock.now())
            assert (m["powerState"], m["illuminanceLevel"]) == ("low", 0.3)
            assert ask(light_cmd, b"sl-0001@dim|7") == (
                replies[0], b"sl-0001@dim|ERROR: dim takes a level between 0 and 1")
            assert ask(light_cmd, b"sl-0001@switch|off") == (replies[0], b"sl-0001@switch|OK")
            m = sim.world.measures(light, clock.now())
            assert m["powerState"] == "off"
            topic, payload = ask(f"/{gate.apikey}/{gate.device_id}/cmd", b'{"gate": "open"}')
            assert (topic, json.loads(payload)) == (replies[1], {"gate": "OK"})
            m = sim.world.measures(gate, clock.now())
            assert m["gateState"] == "open"
            topic, payload = ask(f"/{gate.apikey}/{gate.device_id}/cmd", b'{"flush": 1}')
            assert json.loads(payload) == {"flush": "ERROR: unknown command flush"}
    finally:
        report = sim.stop()
    assert report.commands == 5 and report.command_errors == 2
    assert report.failure is None
