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

import logging
import threading
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from dothi.iot.ingest import Ingestor, Rejected

log = logging.getLogger(__name__)
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
        self.group = group
        self.ingestor = ingestor
        self.on_ack = on_ack
        self.qos = qos
        self.connected = threading.Event()
        self.client = self._client()

    def _client(self):  # type: ignore[no-untyped-def]
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"{self.group}-{uuid.uuid4().hex[:12]}",
                             protocol=mqtt.MQTTv5)
        if self.parts.username:
            client.username_pw_set(self.parts.username, self.parts.password)
        if self.parts.scheme == "mqtts":
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        return client

    def start(self) -> None:
        port = self.parts.port or (8883 if self.parts.scheme == "mqtts" else 1883)
        # connect_async: a broker that is not up yet is retried in the background.
        self.client.connect_async(self.parts.hostname or "", port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish and wait for the broker to take it (QoS 1); raises OSError if it
        does not."""
        info = self.client.publish(topic, payload, qos=self.qos)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise OSError(f"the MQTT broker did not take the message on {topic}")

    # -- callbacks (paho's network thread) --------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties):  # type: ignore[no-untyped-def]
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.parts.netloc, reason)
            return
        client.subscribe([(f"$share/{self.group}/{f}", self.qos) for f in FILTERS])
        self.connected.set()
        log.info("listening to devices on %s", self.parts.netloc)

    def _on_disconnect(self, client, userdata, flags, reason, properties):  # type: ignore[no-untyped-def]
        self.connected.clear()

    def _on_message(self, client, userdata, msg):  # type: ignore[no-untyped-def]
        found = parse_topic(msg.topic)
        if found is None:
            return
        kind, apikey, device_id, protocol, attr = found
        try:
            if kind == "attrs":
                self.ingestor.measures(apikey, device_id, msg.payload, protocol=protocol,
                                       attr=attr, source="mqtt")
            else:
                self.on_ack(apikey, device_id, protocol, msg.payload)
        except Rejected:
            pass  # counted, with its reason, in the ingestion statistics
        except Exception:  # noqa: BLE001 - one bad message must not stop the client
            log.exception("MQTT message on %s could not be handled", msg.topic)
