"""What the operations-centre dashboard shows, read from the store, and the live feed that
keeps every open dashboard up to date.

A snapshot holds the map's sensors (position, domain, headline value, state), the
incidents not yet closed, and the summary tiles. It is rebuilt from the store, never from
this process's memory, so a dashboard served by any worker shows the writes of every
worker: each process rebuilds at most every ``min_gap`` seconds after one of its own
writes, and at least every ``interval`` seconds for the writes of the others. One rebuild
serves all the dashboards of a tenant open on this process; each connection is sent only
what changed since its last event."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml

from dothi.broker.broker import Broker
from dothi.ioc.cap import WarningDesk
from dothi.ioc.incidents import IncidentDesk
from dothi.ioc.summary import summary
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

log = logging.getLogger(__name__)
PAGE = 1000
# Incidents closed this recently stay on the list (greyed), so an operator sees the loop close.
CLOSED_KEPT = timedelta(hours=1)


@dataclass(frozen=True)
class Layer:
    type: str
    category: str
    headline: str
    unit: str
    chart: tuple[str, ...]


def load_layers(path: str | Path | None = None) -> dict[str, Layer]:
    text = Path(path).read_text(encoding="utf-8") if path else \
        resources.files("dothi.web").joinpath("layers.yaml").read_text(encoding="utf-8")
    layers: dict[str, Layer] = {}
    for etype, spec in (yaml.safe_load(text) or {}).get("layers", {}).items():
        layers[etype] = Layer(etype, spec["category"], spec["headline"]["attribute"],
                              spec["headline"].get("unit", ""), tuple(spec.get("chart", ())))
    return layers


class Snapshots:
    """Builds a tenant's dashboard snapshot (a blocking read of the store)."""

    def __init__(self, broker: Broker, desk: IncidentDesk, warnings: WarningDesk,
                 layers: dict[str, Layer], rules_behind: Callable[[], int]) -> None:
        self.broker, self.desk, self.warnings = broker, desk, warnings
        self.layers = layers
        self.rules_behind = rules_behind
        self.ctx = broker.resolver.core

    def build(self, tenant: str, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        incidents = self._incidents(tenant, now)
        sensors = self._sensors(tenant, incidents, self._device_states(tenant))
        tiles = summary(self.broker, self.desk, self.warnings, tenant, self.rules_behind())
        return {"sensors": sensors, "incidents": incidents, "summary": tiles,
                "at": now.isoformat(timespec="seconds").replace("+00:00", "Z")}

    # -- parts ------------------------------------------------------------------------

    def _all(self, tenant: str, etype: str, q: str | None = None) -> list[dict]:
        return query_all(self.broker.store, tenant, EntityQuery(
            selectors=[Selector(types=parse_type_expr(etype, self.ctx.expand))],
            q=parse_q(q) if q else None, expand=self.ctx.expand, limit=PAGE))

    def _incidents(self, tenant: str, now: datetime) -> list[dict]:
        """The incidents not yet closed (resolved ones too: an operator closes them), and
        those closed within the last hour: a query each, so years of closed incidents cost
        nothing here. "Closed" is any status the workflow moves nowhere from."""
        flow = self.desk.flow
        final = sorted(s for s in flow.statuses if not flow.moves.get(s))
        live = "|".join(f'status=="{s}"' for s in sorted(flow.statuses) if s not in final)
        since = (now - CLOSED_KEPT).isoformat(timespec="seconds").replace("+00:00", "Z")
        docs = self._all(tenant, "Incident", live) if live else []
        for status in final:
            docs += self._all(tenant, "Incident",
                              f'status=="{status}";date{status.capitalize()}>={since}')
        kept = [self.desk.view(doc) for doc in docs]
        kept.sort(key=lambda i: str(_instant(i.get("dateIssued")) or ""), reverse=True)
        return kept

    def _device_states(self, tenant: str) -> dict[str, str]:
        """Measured entity id -> the state of the device that feeds it."""
        states: dict[str, str] = {}
        for doc in self._all(tenant, "Device"):
            state = self.desk.value(doc, "deviceState")
            assets = self.desk.value(doc, "controlledAsset") or []
            for asset in assets if isinstance(assets, list) else [assets]:
                if isinstance(asset, str) and isinstance(state, str):
                    states[asset] = state
        return states

    def _sensors(self, tenant: str, incidents: list[dict],
                 device_state: dict[str, str]) -> list[dict]:
        alarmed: dict[str, str] = {}
        for item in incidents:
            if item.get("status") in self.desk.flow.open:
                related = item.get("relatedEntities") or []
                for eid in related if isinstance(related, list) else [related]:
                    alarmed.setdefault(eid, item["id"])
        features = []
        for layer in self.layers.values():
            for doc in self._all(tenant, layer.type):
                point = _point(self.desk.value(doc, "location"))
                if point is None:
                    continue
                eid = doc["id"]
                headline = doc.get(self.ctx.expand(layer.headline)) or [{}]
                value = self.desk.value(doc, layer.headline)
                state = "alarm" if eid in alarmed else device_state.get(eid, "online")
                features.append({
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": point},
                    "properties": {
                        "id": eid, "entityType": layer.type, "category": layer.category,
                        "name": _name(self.desk.value(doc, "name"), eid),
                        "value": value if isinstance(value, int | float | str | bool) else None,
                        "unit": layer.unit,
                        "observedAt": headline[0].get("observedAt")
                        or headline[0].get("modifiedAt"),
                        "state": state, "incident": alarmed.get(eid),
                    }})
        return features


def _point(geometry: Any) -> list[float] | None:
    """A representative point: a point itself, the middle vertex of a line, the first
    vertex of a polygon's outer ring."""
    if not isinstance(geometry, dict):
        return None
    coords = geometry.get("coordinates")
    kind = geometry.get("type")
    try:
        if kind == "Point":
            return [float(coords[0]), float(coords[1])]  # type: ignore[index]
        if kind == "LineString":
            middle = coords[len(coords) // 2]  # type: ignore[arg-type,index]
            return [float(middle[0]), float(middle[1])]
        if kind == "Polygon":
            first = coords[0][0]  # type: ignore[index]
            return [float(first[0]), float(first[1])]
    except (TypeError, IndexError, ValueError):
        return None
    return None


def _instant(value: Any) -> datetime | None:
    """A keyValues DateTime ({"@type": "DateTime", "@value": ...} or a string)."""
    if isinstance(value, dict):
        value = value.get("@value")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _name(name: Any, eid: str) -> str:
    if isinstance(name, str):
        return name
    if isinstance(name, dict):  # a LanguageProperty's map
        return str(name.get("vi") or next(iter(name.values()), eid))
    return eid.rsplit(":", 1)[-1]


def _digest(item: Any) -> bytes:
    return hashlib.blake2b(orjson.dumps(item, option=orjson.OPT_SORT_KEYS),
                           digest_size=12).digest()


@dataclass
class _Feed:
    clients: int = 0
    version: int = 0
    snapshot: dict[str, Any] = field(default_factory=dict)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class LiveHub:
    """One per server process: rebuilds the snapshot of each tenant that has a dashboard
    open here, and hands each new snapshot to those dashboards."""

    def __init__(self, build: Callable[[str], dict[str, Any]], interval: float,
                 min_gap: float = 0.5) -> None:
        self.build = build
        self.interval = interval
        self.min_gap = min_gap
        self._feeds: dict[str, _Feed] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def on_write(self, tenant: str, outcomes: list[Any]) -> None:
        """A broker write listener (any thread): a dashboard open on this tenant is
        rebuilt soon instead of at its next interval."""
        loop = self._loop
        feed = self._feeds.get(tenant)
        if loop is not None and feed is not None and not feed.dirty.is_set():
            loop.call_soon_threadsafe(feed.dirty.set)

    async def follow(self, tenant: str, heartbeat: float = 15.0
                     ) -> AsyncIterator[dict[str, Any] | None]:
        """Each new snapshot of ``tenant`` (the first at once), or None when ``heartbeat``
        seconds pass without one."""
        self._loop = asyncio.get_running_loop()
        feed = self._feeds.setdefault(tenant, _Feed())
        feed.clients += 1
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._run(tenant, feed))
        seen = 0
        try:
            while True:
                try:
                    async with feed.changed:
                        await asyncio.wait_for(feed.changed.wait_for(
                            lambda: feed.version > seen or self.closed), heartbeat)
                except TimeoutError:
                    yield None
                    continue
                if self.closed:
                    return
                seen = feed.version
                yield feed.snapshot
        finally:
            feed.clients -= 1

    async def _run(self, tenant: str, feed: _Feed) -> None:
        while feed.clients > 0:
            feed.dirty.clear()
            started = time.monotonic()
            try:
                snapshot = await asyncio.to_thread(self.build, tenant)
            except Exception:  # noqa: BLE001 - the store away, say: try again later
                log.warning("dashboard snapshot of %s failed; retrying", tenant, exc_info=True)
                await asyncio.sleep(self.interval)
                continue
            took = time.monotonic() - started
            async with feed.changed:
                feed.snapshot = snapshot
                feed.version += 1
                feed.changed.notify_all()
            # A rebuild follows this process's own writes after min_gap, or twice the time
            # the last one took if that is longer: a big city's rebuilds never take more
            # than a third of a core, however fast it writes.
            gap = max(self.min_gap, 2 * took)
            await asyncio.sleep(gap)
            if not feed.dirty.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(feed.dirty.wait(), max(0.0, self.interval - gap))
        self._feeds.pop(tenant, None)

    def end_streams(self) -> None:
        """Any thread (a signal handler): every open stream ends now, so a stopping server
        does not wait on them (pages reconnect, to another process if there is one)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: loop.create_task(self.close()))

    async def close(self) -> None:
        self.closed = True
        for feed in list(self._feeds.values()):
            async with feed.changed:
                feed.changed.notify_all()
            if feed.task is not None:
                feed.task.cancel()


class Differ:
    """What one dashboard has been sent, and the events that bring it up to date. The
    first events of a connection are ``full``: they replace what a reconnecting page held."""

    def __init__(self) -> None:
        self.sent: dict[str, dict[str, bytes]] = {"sensors": {}, "incidents": {}}
        self.summary: bytes | None = None
        self.first = True

    def events(self, snapshot: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for kind, items, key in (
                ("sensors", snapshot.get("sensors", []), lambda f: f["properties"]["id"]),
                ("incidents", snapshot.get("incidents", []), lambda i: i["id"])):
            before = self.sent[kind]
            now: dict[str, bytes] = {}
            changed = []
            for item in items:
                ident = key(item)
                now[ident] = _digest(item)
                if before.get(ident) != now[ident]:
                    changed.append(item)
            removed = [ident for ident in before if ident not in now]
            if changed or removed or self.first:
                out.append((kind, {"full": self.first, "changed": changed,
                                   "removed": removed, "at": snapshot.get("at")}))
            self.sent[kind] = now
        tiles = _digest(snapshot.get("summary"))
        if tiles != self.summary:
            out.append(("summary", snapshot.get("summary") or {}))
            self.summary = tiles
        self.first = False
        return out
