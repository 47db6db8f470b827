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
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson

from dothi.broker.subscriptions import Subscriptions
from dothi.ngsild import notification
from dothi.ngsild.subscription import Compiled
from dothi.ngsild.timeutil import now_iso
from dothi.store.base import DEFAULT_TENANT, PendingNotice, Store, SubscriptionStats

T = TypeVar("T")
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
        self._http: aiohttp.ClientSession | None = None
        self._mqtt = _MqttClients()
        # Last delivery per subscription, for throttling (kept per process).
        self._last_sent: dict[tuple[str, str], int] = {}
        # Writes that queue for the database's write lock behind the API's writers (often
        # for a good part of a second under load) run beside delivery, not in its way:
        # the settling of the last batch (its rows are not fetched again meanwhile) and
        # the housekeeping of the last tick.
        self._settle: asyncio.Future[None] | None = None
        self._settling: set[int] = set()
        self._chores: asyncio.Future[None] | None = None
        # Calls running in threads for the delivery loop: cancelling the loop does not stop
        # them, so stopping waits for them before the store can be closed under them (a
        # read of a closed SQLite connection crashed the process).
        self._calls: set[asyncio.Future[Any]] = set()

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
        writes = [w for w in (self._settle, self._chores, *self._calls) if w is not None]
        if writes:
            await asyncio.wait(writes)
        if self._http is not None:
            await self._http.close()
        self._mqtt.close()
        # What this process still holds is handed on at once, not after the lease.
        await asyncio.to_thread(self.store.outbox_release)

    async def _run(self) -> None:
        assert self._event is not None
        last_tick = 0
        while True:
            try:
                now = _now_ms()
                if now - last_tick >= self.settings.tick * 1000 and \
                        (self._chores is None or self._chores.done()):
                    last_tick = now
                    self._chores = self._beside(self._housekeeping, now)
                self._event.clear()
                held = set(self._settling)
                rows = [r for r in await self._thread(
                    self.store.outbox_pending, now, BATCH + len(held)) if r.nid not in held]
                if rows:
                    await self._deliver(rows[:BATCH])
                    continue
                wait = self.settings.tick
                # Rows being settled are due, but not again: their settling wakes the loop.
                if not self._settling:
                    due = await self._thread(self.store.outbox_next_due)
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

    async def _thread(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` in a thread, awaited; if the loop is cancelled meanwhile, the
        call still runs to its end, and ``stop`` waits for it."""
        future = asyncio.ensure_future(asyncio.to_thread(call, *args))
        self._calls.add(future)
        future.add_done_callback(self._calls.discard)
        return await asyncio.shield(future)

    def _beside(self, write: Callable[..., None], *args: Any,
                then: Callable[[], None] | None = None) -> asyncio.Future[None]:
        """Run a write in a thread while delivery goes on; when it ends, wake the loop
        (what it did may make rows due) after ``then``."""

        def ended(future: asyncio.Future[None]) -> None:
            if then is not None:
                then()
            if not future.cancelled() and future.exception() is not None:
                log.error("notifier write failed; its rows are tried again",
                          exc_info=future.exception())
            if self._event is not None:
                self._event.set()

        future = asyncio.ensure_future(asyncio.to_thread(write, *args))
        future.add_done_callback(ended)
        return future

    def _housekeeping(self, now: int) -> None:
        self.store.outbox_claim(now)
        self.subs.periodic(now)
        self.subs.refresh()

    async def _deliver(self, rows: Sequence[PendingNotice]) -> None:
        await self._thread(self.subs.refresh)
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
            sub = self.subs.compiled(tenant, sid, refresh=False)  # refreshed above
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
                            # The endpoint's cooldown (ms) is the shortest wait.
                            wait = max(backoff_ms(r.attempts + 1),
                                       int(sub.endpoint.get("cooldown") or 0))
                            retry.append((r.nid, _now_ms() + wait, r.attempts + 1))
                    return
                stats.append((tenant, sid, SubscriptionStats(1, 0, stamp, stamp, None)))
                done.extend(r.nid for r in items)

        await asyncio.gather(*(one(k, v) for k, v in groups.items()))
        if self._settle is not None:
            await asyncio.wait([self._settle])  # one settling at a time, in order
        handled = {r.nid for r in rows}
        self._settling |= handled

        def release() -> None:
            self._settling -= handled

        self._settle = self._beside(self.store.outbox_settle, done, retry, stats,
                                    then=release)

    async def _send(self, sub: Compiled, tenant: str, body: dict[str, Any]) -> None:
        uri = sub.endpoint["uri"]
        headers = notification.headers(sub, tenant, DEFAULT_TENANT)
        # The endpoint's timeout is in milliseconds (clause 5.2.15).
        given = sub.endpoint.get("timeout")
        timeout = given / 1000 if given else self.settings.timeout
        if uri.startswith(("mqtt:", "mqtts:")):
            info = {p["key"]: p["value"] for p in sub.endpoint.get("notifierInfo") or ()}
            message = orjson.dumps({"metadata": headers, "body": body})
            await self._thread(self._mqtt.publish, uri, message, info, timeout)
            return
        if self._http is None:
            # Made on first use: a TLS context costs tens of milliseconds to build. Proxy
            # settings are read per request where the environment names a proxy, and
            # skipped where it names none (they cost as much as the rest of a POST).
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_PARALLEL),
                trust_env=bool(urllib.request.getproxies()))
        try:
            async with self._http.post(uri, data=orjson.dumps(body), headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=timeout)) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"{uri} answered {status}")


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
