"""The IoT side of one server process: the registry, the writer, device health, commands
and, when ``DOTHI_IOT_MQTT_URL`` is set, the MQTT client; started and stopped with the
HTTP app."""

from __future__ import annotations

import logging
import os

from dothi.broker.broker import Broker
from dothi.iot.commands import Commands
from dothi.iot.health import DeviceHealth
from dothi.iot.ingest import Ingestor
from dothi.iot.mqtt import MqttTransport
from dothi.iot.registry import DeviceRegistry
from dothi.iot.validation import default_catalogue
from dothi.settings import Settings

log = logging.getLogger(__name__)


class IotService:
    def __init__(self, broker: Broker, settings: Settings, group: str) -> None:
        self.broker = broker
        self.registry = DeviceRegistry(broker)
        self.catalogue = default_catalogue()  # one per process: schemas compile once
        self.ingestor = Ingestor(broker, self.registry, self.catalogue,
                                 max_batch=settings.iot_batch, max_queue=settings.iot_queue)
        self.health = DeviceHealth(self.registry, interval=settings.iot_health_interval)
        self.ingestor.seen = self.health.seen
        self.commands = Commands(self.registry, timeout=settings.iot_command_timeout)
        self.mqtt: MqttTransport | None = None
        if settings.iot_mqtt_url:
            self.mqtt = MqttTransport(settings.iot_mqtt_url, group, self.ingestor,
                                      self.commands.ack)
            self.commands.publish = self.mqtt.publish

    def start(self) -> None:
        self.registry.reload()
        self.broker.write_listeners.append(self.commands.on_write)
        self.ingestor.start()
        self.health.start()
        self.commands.start()
        if self.mqtt is not None:
            self.mqtt.start()

    def stop(self) -> None:
        """Stops taking messages first, then writes what was taken."""
        if self.mqtt is not None:
            self.mqtt.stop()
        self.ingestor.stop()
        self.commands.stop()
        self.health.stop()
        if self.commands.on_write in self.broker.write_listeners:
            self.broker.write_listeners.remove(self.commands.on_write)

    def about(self) -> dict:
        return {
            # Each server process counts its own share (with --workers N, the MQTT
            # broker splits the messages between them): say which process this is.
            "process": os.getpid(),
            "mqtt": None if self.mqtt is None else {
                "broker": self.mqtt.parts.netloc.rsplit("@", 1)[-1],
                "connected": self.mqtt.connected.is_set()},
            "serviceGroups": len(self.registry.groups),
            "devices": len(self.registry.bindings),
            "ingestion": self.ingestor.stats.as_dict(),
            "queued": self.ingestor.queue.qsize(),
            "commands": {"sent": self.commands.sent,
                         "acknowledged": self.commands.acknowledged,
                         "pending": len(self.commands.pending)},
        }
