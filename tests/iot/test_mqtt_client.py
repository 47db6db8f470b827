"""dothi's own MQTT 3.1.1 reader: packet framing, and coming back after the link to the
broker breaks (through a proxy on loopback that the test cuts), against Mosquitto."""

from __future__ import annotations

import queue
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dothi.iot.mqtt_client import PUBLISH, MqttClient, ProtocolError, packet, split_packets
from tests.conftest import MQTT, needs_mosquitto


def test_packets_are_cut_from_any_read() -> None:
    small = packet(PUBLISH, b"\x00\x01t" + b"x")
    big = packet(PUBLISH, b"\x00\x01t" + b"y" * 300)  # two-byte remaining length
    stream = small + big + small
    assert big[1] & 0x80 and len(big) == 1 + 2 + 303
    for cut in range(len(stream) + 1):
        head, tail = stream[:cut], stream[cut:]
        found, used = split_packets(head)
        rest = head[used:] + tail
        more, used2 = split_packets(rest)
        assert [b for _, b in found + more] == [small[2:], big[3:], small[2:]]
        assert used2 == len(rest)
    with pytest.raises(ProtocolError):
        split_packets(b"\x30\xff\xff\xff\xff\x01")


class Proxy:
    """Forwards TCP connections to Mosquitto until told to cut them all."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.links: list[socket.socket] = []  # open now
        self.made: list[socket.socket] = []  # every socket, closed at the end
        self.accepted = threading.Semaphore(0)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(MQTT)
            self.links += [client, upstream]
            self.made += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
            self.accepted.release()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        for link in self.links:
            try:
                link.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.links.clear()

    def close(self) -> None:
        self.cut()
        self.server.close()
        for s in self.made:
            s.close()


@contextmanager
def proxy() -> Iterator[Proxy]:
    p = Proxy()
    try:
        yield p
    finally:
        p.close()


@needs_mosquitto
def test_the_client_comes_back_after_the_link_breaks() -> None:
    topic = f"/t{uuid.uuid4().hex[:8]}/dev/attrs"
    inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
    with proxy() as link:
        client = MqttClient("127.0.0.1", link.port, client_id=f"test-{uuid.uuid4().hex[:8]}",
                            subscriptions=[(topic, 1)],
                            on_message=lambda t, p: inbox.put((t, p)))
        client.start()
        try:
            assert client.connected.wait(10)
            client.publish(topic, b"one")  # QoS 1: returns once the broker has it
            assert inbox.get(timeout=10) == (topic, b"one")
            link.cut()
            assert link.accepted.acquire(timeout=10)  # the first connection
            assert link.accepted.acquire(timeout=15)  # the reconnection
            assert client.connected.wait(10)
            # Subscribed again: a message published now arrives.
            for _ in range(50):
                try:
                    client.publish(topic, b"two", timeout=2)
                    break
                except OSError:
                    continue  # the SUBSCRIBE may still be on its way
            assert inbox.get(timeout=10) == (topic, b"two")
        finally:
            client.stop()
    assert not client.connected.is_set()
