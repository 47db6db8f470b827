"""Getting measures to the server and answering its commands: MQTT, HTTP, or nowhere.

One paho client carries every device's measures (a real deployment would have one connection
per device; one shared connection keeps 5 000 simulated devices cheap while the topics are
exactly the devices' own). The same client answers commands: it subscribes to
``/<apikey>/+/cmd`` for the simulation's apikeys and replies on ``.../cmdexe``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from dothi.simulate import codec
from dothi.simulate.city import Device

# Answers a command: (device, command, parameter) -> None when done, or why it failed.
CommandHandler = Callable[[Device, str, str], str | None]


class LineWriter(Protocol):
    """Where a dry run writes its ``topic payload`` lines: a text file, sys.stdout..."""

    def write(self, text: str, /) -> object: ...


class TransportError(RuntimeError):
    """The broker or server cannot be used at all."""


@dataclass
class Stats:
    """Counters shared by the publishing loop, the MQTT network thread and HTTP workers."""

    sent: int = 0
    errors: int = 0
    commands: int = 0
    command_errors: int = 0
    skipped: int = 0  # publication slots dropped because the loop fell a whole period behind
    last_error: str | None = None
    by_kind: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_sent(self, kind: str) -> None:
        with self._lock:
            self.sent += 1
            self.by_kind[kind] += 1

    def count_error(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message

    def count_command(self, failed: bool) -> None:
        with self._lock:
            self.commands += 1
            self.command_errors += failed


class Sink:
    """Where measures go. ``send`` must not block for long: the publishing loop is paced."""

    def send(self, device: Device, payload: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _mqtt_client(url: str, client_id: str) -> tuple[mqtt.Client, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise TransportError(f"not an MQTT URL: {url!r} (mqtt://host:port or mqtts://...)")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if parts.username:
        client.username_pw_set(unquote(parts.username),
                               unquote(parts.password) if parts.password else None)
    if parts.scheme == "mqtts":
        client.tls_set()
    default = 8883 if parts.scheme == "mqtts" else 1883
    return client, parts.hostname, parts.port or default


class MqttLink(Sink):
    """Publishes measures and answers commands over one MQTT connection."""

    def __init__(self, url: str, client_id: str, qos: int, stats: Stats,
                 devices: Iterable[Device], on_command: CommandHandler | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.qos = qos
        self.stats = stats
        self.on_command = on_command
        self.devices: Mapping[tuple[str, str], Device] = {
            (d.apikey, d.device_id): d for d in devices}
        # Only the apikeys of kinds that take commands need listening to.
        self.apikeys = sorted({d.apikey for d in self.devices.values() if d.kind.commands})
        self.client, host, port = _mqtt_client(url, client_id)
        # Bounded: a stalled broker must cost dropped QoS 0 messages, not unbounded memory.
        self.client.max_queued_messages_set(50_000)
        self.client.reconnect_delay_set(1, 10)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._pending_subs: set[int] = set()
        self._refused: str | None = None
        self._last: mqtt.MQTTMessageInfo | None = None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise TransportError(f"cannot reach MQTT broker {host}:{port}: {exc}") from None
        self.client.loop_start()
        ready = self._subscribed if on_command and self.apikeys else self._connected
        if not ready.wait(connect_timeout):
            self.client.loop_stop()
            raise TransportError(self._refused or f"MQTT broker {host}:{port} did not answer")

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            self._refused = f"MQTT broker refused the connection: {reason}"
            return
        self._connected.set()
        if self.on_command is None or not self.apikeys:
            return
        # Subscribed again on every reconnection: the session is clean.
        result, mid = client.subscribe([(codec.cmd_topic(k, "+"), 1) for k in self.apikeys])
        if result == mqtt.MQTT_ERR_SUCCESS and mid is not None:
            self._pending_subs.add(mid)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Any) -> None:
        if mid in self._pending_subs:
            self._pending_subs.discard(mid)
            self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) != 4 or parts[0] or parts[3] != "cmd" or self.on_command is None:
            return
        device = self.devices.get((parts[1], parts[2]))
        if device is None:
            return  # a device of another simulation sharing the apikey
        try:
            commands = codec.decode_commands(device.kind.protocol, device.device_id,
                                             message.payload)
        except ValueError as exc:
            self.stats.count_error(f"bad command on {message.topic}: {exc}")
            return
        results = [(name, self._apply(device, name, param)) for name, param in commands]
        for _name, error in results:
            self.stats.count_command(error is not None)
        reply = codec.encode_reply(device.kind.protocol, device.device_id, results)
        client.publish(codec.cmdexe_topic(device.apikey, device.device_id), reply, qos=self.qos)

    def _apply(self, device: Device, name: str, param: str) -> str | None:
        assert self.on_command is not None
        try:
            return self.on_command(device, name, param)
        except Exception as exc:  # noqa: BLE001 - the network thread must survive it
            self.stats.count_error(f"command {name} on {device.device_id}: {exc!r}")
            return "internal error"

    def send(self, device: Device, payload: bytes) -> None:
        info = self.client.publish(codec.attrs_topic(device.apikey, device.device_id), payload,
                                   qos=self.qos)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self._last = info
            self.stats.count_sent(device.kind.slug)
        else:
            self.stats.count_error(f"MQTT publish: {mqtt.error_string(info.rc)}")

    def close(self) -> None:
        # Let the queued messages out before hanging up; QoS 0 ones would otherwise be lost.
        # Messages leave in order, so the last one written means all were.
        if self._last is not None:
            try:
                self._last.wait_for_publish(timeout=5.0)
            except (RuntimeError, ValueError):
                pass  # disconnected meanwhile: nothing more can be flushed
        self.client.disconnect()
        self.client.loop_stop()


class HttpSink(Sink):
    """POSTs measures to the server's HTTP southbound, a few requests in flight at once on one
    keep-alive client (httpx clients may be shared between threads)."""

    def __init__(self, base_url: str, tenant: str | None, stats: Stats, workers: int = 8) -> None:
        self.stats = stats
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        self.client = httpx.Client(
            base_url=base_url, headers=headers, timeout=10.0,
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="dothi-sim-http")
        self.slots = threading.BoundedSemaphore(workers * 4)

    def send(self, device: Device, payload: bytes) -> None:
        if not self.slots.acquire(timeout=1.0):
            self.stats.count_error("HTTP: server too slow, measure dropped")
            return
        self.pool.submit(self._post, device, payload)

    def _post(self, device: Device, payload: bytes) -> None:
        try:
            r = self.client.post(codec.http_path(device.kind.protocol), content=payload,
                                 params={"k": device.apikey, "i": device.device_id},
                                 headers={"Content-Type": codec.content_type(
                                     device.kind.protocol)})
            if r.status_code < 300:
                self.stats.count_sent(device.kind.slug)
            else:
                self.stats.count_error(f"HTTP {r.status_code}: {r.text[:200]}")
        except httpx.HTTPError as exc:
            self.stats.count_error(f"HTTP: {exc!r}")
        finally:
            self.slots.release()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()


class DryRunSink(Sink):
    """Sends nothing: writes ``topic payload`` lines (or nothing) and counts."""

    def __init__(self, stats: Stats, out: LineWriter | None) -> None:
        self.stats = stats
        self.out = out

    def send(self, device: Device, payload: bytes) -> None:
        if self.out is not None:
            topic = codec.attrs_topic(device.apikey, device.device_id)
            self.out.write(f"{topic} {payload.decode()}\n")
        self.stats.count_sent(device.kind.slug)
