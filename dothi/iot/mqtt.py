"""The MQTT side: one paho client per process, subscribed to the IoT Agents' topics
through a shared subscription (``$share/<group>/...``), so that the workers of one
instance split the devices' messages between them instead of each writing every one.

Topics (the API key first, as the IoT Agents have them; a ``/json`` or ``/ul`` prefix
says the payload's protocol, else the device's own is used):

    /{apikey}/{device_id}/attrs          measures (JSON object or UltraLight 2.0)
    /{apikey}/{device_id}/attrs/{attr}   one measure
    /{apikey}/{device_id}/cmdexe         command results
    /{apikey}/{device_id}/cmd            where commands are published (by dothi)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from dothi.iot.ingest import Ingestor, Rejected
from dothi.iot.mqtt_client import MqttClient

FILTERS = ("/+/+/attrs", "/+/+/attrs/+", "/+/+/cmdexe",
           "/json/+/+/attrs", "/ul/+/+/attrs", "/json/+/+/cmdexe", "/ul/+/+/cmdexe")
PREFIXES = {"json": "JSON", "ul": "UL"}

AckHandler = Callable[[str, str, str | None, bytes], None]


def parse_topic(topic: str) -> tuple[str, str, str, str | None, str | None] | None:
    """(kind, apikey, device id, protocol or None, attribute or None), kind being
    ``attrs`` or ``cmdexe``; None for a topic that is not one of ours."""
    levels = topic.split("/")
    if len(levels) < 4 or levels[0] != "":
        return None
    protocol = None
    if levels[1] in PREFIXES and len(levels) == 5:
        protocol = PREFIXES[levels[1]]
        levels = ["", *levels[2:]]
    if len(levels) == 4 and levels[3] in ("attrs", "cmdexe"):
        return levels[3], levels[1], levels[2], protocol, None
    if len(levels) == 5 and levels[3] == "attrs" and protocol is None:
        return "attrs", levels[1], levels[2], None, levels[4]
    return None


class MqttTransport:
    def __init__(self, url: str, group: str, ingestor: Ingestor, on_ack: AckHandler, *,
                 qos: int = 1) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"not an MQTT broker URL: {url!r} (mqtt://host:port)")
        self.parts = parts
        self.ingestor = ingestor
        self.on_ack = on_ack
        self.client = MqttClient(
            parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883),
            client_id=f"{group}-{uuid.uuid4().hex[:12]}",
            subscriptions=[(f"$share/{group}/{f}", qos) for f in FILTERS],
            on_message=self._on_message, username=parts.username, password=parts.password,
            tls=parts.scheme == "mqtts")
        self.connected = self.client.connected

    def start(self) -> None:
        self.client.start()  # a broker that is not up yet is tried again in the background

    def stop(self) -> None:
        self.client.stop()

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish with QoS 1 and wait for the broker to take it; OSError if it does not."""
        self.client.publish(topic, payload, qos=1, timeout=timeout)

    def _on_message(self, topic: str, payload: bytes) -> None:
        found = parse_topic(topic)
        if found is None:
            return
        kind, apikey, device_id, protocol, attr = found
        try:
            if kind == "attrs":
                self.ingestor.measures(apikey, device_id, payload, protocol=protocol,
                                       attr=attr, source="mqtt")
            else:
                self.on_ack(apikey, device_id, protocol, payload)
        except Rejected:
            pass  # counted, with its reason, in the ingestion statistics
