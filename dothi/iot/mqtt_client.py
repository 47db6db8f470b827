"""A small MQTT 3.1.1 client for the devices' side: subscribe, receive, acknowledge,
publish commands, keep the connection alive and come back after the broker does.

Why not paho (which the notifier uses): paho reads each packet with several socket
calls, and every socket call hands the GIL over; at thousands of device messages a
second its thread and the store's writer thread spent their time taking the GIL from
each other, and one process held about 4,700 messages/s. This reader takes whatever the
socket has (up to 64 KiB) in one call and cuts every complete packet out of it, and the
acknowledgements of one read go back in one write (bench/iot.py: see docs/devices.md).

Only what dothi needs: clean sessions, QoS 0 and 1 (subscriptions ask for at most 1, so
the broker never sends QoS 2), username/password, TLS for ``mqtts``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 0x82, 0x90, 0xC0, 0xD0, 0xE0
READ_SIZE = 65536


class ProtocolError(OSError):
    """The broker sent something this client cannot take; the connection is dropped."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return len(raw).to_bytes(2, "big") + raw


def packet(kind: int, body: bytes = b"") -> bytes:
    return bytes([kind]) + _varint(len(body)) + body


def split_packets(buf: bytearray | bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The complete packets at the start of ``buf`` as (first byte, body), and how many
    bytes they took; an incomplete packet at the end waits for the next read."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    end = len(buf)
    while pos + 2 <= end:
        length = 0
        shift = 0
        i = pos + 1
        while True:
            if i >= end:
                return out, pos
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("malformed remaining length")
        if i + length > end:
            return out, pos
        out.append((buf[pos], bytes(buf[i:i + length])))
        pos = i + length
    return out, pos


class MqttClient:
    def __init__(self, host: str, port: int, *, client_id: str,
                 subscriptions: Sequence[tuple[str, int]],
                 on_message: Callable[[str, bytes], None],
                 username: str | None = None, password: str | None = None,
                 tls: bool = False, keepalive: int = 30) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.subscriptions = list(subscriptions)
        self.on_message = on_message
        self.username, self.password = username, password
        self.tls = tls
        self.keepalive = keepalive
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._last_sent = 0.0
        self._next_id = 0
        self._acks: dict[int, threading.Event] = {}
        self._thread: threading.Thread | None = None

    # -- life -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.client_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                self._send(packet(DISCONNECT))
            except OSError:
                pass
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.connected.clear()

    def _run(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                self._session()
                delay = 1.0
            except OSError as exc:
                if self._stop.is_set():
                    break
                log.warning("MQTT broker %s:%s: %s; trying again in %g s", self.host,
                            self.port, exc, delay)
            finally:
                self.connected.clear()
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
                for event in self._acks.values():
                    event.set()  # publishers waiting on this connection give up now
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)

    def _session(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=10)
        if self.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self._sock = sock
        flags = 0x02  # clean session
        payload = encode_string(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += encode_string(self.username)
            if self.password is not None:
                flags |= 0x40
                payload += encode_string(self.password)
        self._send(packet(CONNECT, encode_string("MQTT") + bytes([4, flags])
                          + self.keepalive.to_bytes(2, "big") + payload))
        buf = bytearray()
        sock.settimeout(self.keepalive / 2)
        connack = self._read_one(sock, buf)
        if connack[0] != CONNACK or len(connack[1]) != 2:
            raise ProtocolError(f"expected CONNACK, got packet type {connack[0] >> 4}")
        if connack[1][1] != 0:
            raise ProtocolError(f"the broker refused the connection (code {connack[1][1]})")
        body = b"".join(encode_string(t) + bytes([q]) for t, q in self.subscriptions)
        self._send(packet(SUBSCRIBE, self._packet_id().to_bytes(2, "big") + body))
        self.connected.set()
        log.info("listening to devices on %s:%s", self.host, self.port)
        self._read(sock, buf)

    def _read_one(self, sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
        while True:
            found, used = split_packets(buf)
            if found:
                del buf[:len(packet(found[0][0], found[0][1]))]
                return found[0]
            chunk = sock.recv(READ_SIZE)
            if not chunk:
                raise ProtocolError("the broker closed the connection")
            buf += chunk

    def _read(self, sock: socket.socket, buf: bytearray) -> None:
        while not self._stop.is_set():
            try:
                chunk = sock.recv(READ_SIZE)
            except TimeoutError:
                chunk = None
            if chunk == b"":
                raise ProtocolError("the broker closed the connection")
            if chunk:
                buf += chunk
                found, used = split_packets(buf)
                del buf[:used]
                acks = self._handle(found)
                if acks:
                    self._send(acks)
            if time.monotonic() - self._last_sent > self.keepalive / 2:
                self._send(packet(PINGREQ))

    def _handle(self, packets: list[tuple[int, bytes]]) -> bytes:
        acks = bytearray()
        for first, body in packets:
            kind = first & 0xF0
            if kind == PUBLISH:
                qos = (first >> 1) & 0x03
                size = int.from_bytes(body[:2], "big")
                topic = body[2:2 + size].decode("utf-8", "replace")
                start = 2 + size
                if qos:
                    acks += bytes([PUBACK, 2]) + body[start:start + 2]
                    start += 2
                try:
                    self.on_message(topic, body[start:])
                except Exception:  # noqa: BLE001 - one message must not drop the link
                    log.exception("MQTT message on %s could not be handled", topic)
            elif kind == PUBACK:
                event = self._acks.pop(int.from_bytes(body[:2], "big"), None)
                if event is not None:
                    event.set()
            elif kind == SUBACK:
                refused = [t for (t, _), code in zip(self.subscriptions, body[2:], strict=False)
                           if code == 0x80]
                if refused:
                    log.error("the MQTT broker refused the subscriptions %s", refused)
            elif kind != PINGRESP:
                raise ProtocolError(f"unexpected packet type {kind >> 4}")
        return bytes(acks)

    # -- sending ----------------------------------------------------------------------

    def _packet_id(self) -> int:
        with self._send_lock:
            self._next_id = self._next_id % 65535 + 1
            return self._next_id

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise OSError("not connected to the MQTT broker")
        with self._send_lock:
            sock.sendall(data)
            self._last_sent = time.monotonic()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1,
                timeout: float = 5.0) -> None:
        """Publish; with QoS 1, return once the broker acknowledged it, else raise
        OSError."""
        if not self.connected.is_set():
            raise OSError(f"not connected to the MQTT broker {self.host}:{self.port}")
        if qos == 0:
            self._send(packet(PUBLISH, encode_string(topic) + payload))
            return
        pid = self._packet_id()
        event = threading.Event()
        self._acks[pid] = event
        self._send(packet(PUBLISH | 0x02, encode_string(topic) + pid.to_bytes(2, "big") + payload))
        if not event.wait(timeout) or pid in self._acks:
            self._acks.pop(pid, None)
            raise OSError(f"the MQTT broker did not acknowledge the message on {topic}")
