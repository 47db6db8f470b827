"""Delivering notifications from the outbox over HTTP(S) and MQTT (clauses 5.8.x, 7.x):
one task per server process, woken by its own commits and by a clock for retries,
throttled and periodic subscriptions and rows taken over from stopped processes.

Rows are read in bounded batches, so memory stays flat however far behind a receiver is;
a row leaves the outbox only when its notification was delivered, or after the last retry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson

from dothi.broker.subscriptions import Subscriptions
from dothi.ngsild import notification
from dothi.ngsild.subscription import Compiled
from dothi.ngsild.timeutil import now_iso
from dothi.store.base import DEFAULT_TENANT, PendingNotice, Store, SubscriptionStats

log = logging.getLogger("dothi.notifier")
BATCH = 2000
MAX_PARALLEL = 64


@dataclass
class NotifierSettings:
    timeout: float = 10.0  # seconds per delivery attempt, unless the endpoint says
    retries: int = 10  # attempts before a notification is given up
    tick: float = 1.0  # seconds between looks at retries, periodic runs and leases
    lease: float = 30.0


class DeliveryError(Exception):
    pass


def _now_ms() -> int:
    return int(time.time() * 1000)


def backoff_ms(attempts: int) -> int:
    """Wait before the next attempt: 0.5 s, 1 s, 2 s ... up to a minute."""
    return int(min(60.0, 0.5 * 2 ** max(0, attempts - 1)) * 1000)


class Notifier:
    def __init__(self, subscriptions: Subscriptions, store: Store,
                 settings: NotifierSettings) -> None:
        self.subs = subscriptions
        self.store = store
        self.settings = settings
        self._event: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._mqtt = _MqttClients()
        # Last delivery per subscription, for throttling (kept per process).
        self._last_sent: dict[tuple[str, str], int] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._event = event

        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        self.subs.wake = wake
        self._task = asyncio.create_task(self._run(), name="dothi-notifier")

    async def stop(self) -> None:
        self.subs.wake = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._http is not None:
            await self._http.aclose()
        self._mqtt.close()
        # What this process still holds is handed on at once, not after the lease.
        await asyncio.to_thread(self.store.outbox_release)

    async def _run(self) -> None:
        assert self._event is not None
        last_tick = 0
        while True:
            try:
                now = _now_ms()
                if now - last_tick >= self.settings.tick * 1000:
                    last_tick = now
                    await asyncio.to_thread(self._housekeeping, now)
                self._event.clear()
                rows = await asyncio.to_thread(self.store.outbox_pending, now, BATCH)
                if rows:
                    await self._deliver(rows)
                    continue
                due = await asyncio.to_thread(self.store.outbox_next_due)
                wait = self.settings.tick
                if due is not None:
                    wait = min(wait, max(0.0, (due - _now_ms()) / 1000))
                try:
                    await asyncio.wait_for(self._event.wait(), wait)
                except TimeoutError:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification delivery failed; retrying in a moment")
                await asyncio.sleep(self.settings.tick)

    def _housekeeping(self, now: int) -> None:
        self.store.outbox_claim(now)
        self.subs.periodic(now)
        self.subs.refresh()

    async def _deliver(self, rows: Sequence[PendingNotice]) -> None:
        await asyncio.to_thread(self.subs.refresh)
        groups: dict[tuple[str, str, str], list[PendingNotice]] = {}
        for row in rows:
            groups.setdefault((row.tenant, row.subscription, row.reason), []).append(row)
        done: list[int] = []
        retry: list[tuple[int, int, int]] = []
        stats: list[tuple[str, str, SubscriptionStats]] = []
        gate = asyncio.Semaphore(MAX_PARALLEL)

        async def one(key: tuple[str, str, str], items: list[PendingNotice]) -> None:
            tenant, sid, reason = key
            now = _now_ms()
            sub = self.subs.compiled(tenant, sid)
            if sub is None or not sub.live(now):
                done.extend(r.nid for r in items)  # deleted, paused or expired meanwhile
                return
            if sub.throttling_ms is not None:
                last = self._last_sent.get((tenant, sid))
                if last is not None and now - last < sub.throttling_ms:
                    retry.extend((r.nid, last + sub.throttling_ms, r.attempts) for r in items)
                    return
                self._last_sent[(tenant, sid)] = now
            async with gate:
                stamp = now_iso()
                body = notification.build(sub, reason, [r.payload for r in items], stamp)
                try:
                    await self._send(sub, tenant, body)
                except DeliveryError as exc:
                    log.info("notification for %s failed: %s", sid, exc)
                    stats.append((tenant, sid, SubscriptionStats(
                        1, 1, stamp, None, stamp)))
                    for r in items:
                        if r.attempts + 1 >= self.settings.retries:
                            done.append(r.nid)
                        else:
                            retry.append((r.nid, _now_ms() + backoff_ms(r.attempts + 1),
                                          r.attempts + 1))
                    return
                stats.append((tenant, sid, SubscriptionStats(1, 0, stamp, stamp, None)))
                done.extend(r.nid for r in items)

        await asyncio.gather(*(one(k, v) for k, v in groups.items()))
        await asyncio.to_thread(self.store.outbox_settle, done, retry, stats)

    async def _send(self, sub: Compiled, tenant: str, body: dict[str, Any]) -> None:
        uri = sub.endpoint["uri"]
        headers = notification.headers(sub, tenant, DEFAULT_TENANT)
        timeout = float(sub.endpoint.get("timeout") or self.settings.timeout)
        if uri.startswith(("mqtt:", "mqtts:")):
            info = {p["key"]: p["value"] for p in sub.endpoint.get("notifierInfo") or ()}
            message = orjson.dumps({"metadata": headers, "body": body})
            await asyncio.to_thread(self._mqtt.publish, uri, message, info, timeout)
            return
        if self._http is None:
            # Made on first use: building its TLS context costs tens of milliseconds.
            self._http = httpx.AsyncClient(timeout=self.settings.timeout)
        try:
            response = await self._http.post(uri, content=orjson.dumps(body),
                                             headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"{uri} answered {response.status_code}")


class _MqttClients:
    """One connection per broker and credentials, opened on first use and kept."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def publish(self, uri: str, message: bytes, info: dict[str, str], timeout: float) -> None:
        parts = urlsplit(uri)
        topic = unquote(parts.path.lstrip("/"))
        if not topic or parts.hostname is None:
            raise DeliveryError(f"MQTT endpoint {uri} names no host or topic")
        try:
            qos = int(info.get("MQTT-QoS", "0"))
        except ValueError:
            qos = 0
        version = info.get("MQTT-Version", "mqtt3.1.1")
        key = (parts.scheme, parts.hostname, parts.port, parts.username, parts.password,
               version)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._connect(parts, version, timeout)
                self._clients[key] = client
        result = client.publish(topic, message, qos=min(max(qos, 0), 2))
        try:
            result.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            self._drop(key)
            raise DeliveryError(f"MQTT publish to {uri} failed: {exc}") from None
        if not result.is_published():
            self._drop(key)
            raise DeliveryError(f"MQTT publish to {uri} was not acknowledged")

    @staticmethod
    def _connect(parts: Any, version: str, timeout: float) -> Any:
        import paho.mqtt.client as mqtt

        protocol = mqtt.MQTTv5 if version.startswith("mqtt5") else mqtt.MQTTv311
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
        if parts.username:
            client.username_pw_set(unquote(parts.username),
                                   unquote(parts.password) if parts.password else None)
        if parts.scheme == "mqtts":
            client.tls_set()
        connected = threading.Event()
        client.on_connect = lambda *args: connected.set()
        try:
            client.connect(parts.hostname, parts.port or (8883 if parts.scheme == "mqtts"
                                                          else 1883))
        except OSError as exc:
            raise DeliveryError(f"cannot reach MQTT broker {parts.hostname}: {exc}") from None
        client.loop_start()
        if not connected.wait(timeout):
            client.loop_stop()
            raise DeliveryError(f"MQTT broker {parts.hostname} did not accept the connection")
        return client

    def _drop(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            client = self._clients.pop(key, None)
        if client is not None:
            client.loop_stop()
            client.disconnect()

    def close(self) -> None:
        for key in list(self._clients):
            self._drop(key)
