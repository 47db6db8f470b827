"""Device health on each device's ``Device`` entity (Smart Data Models): ``deviceState``
(``unknown`` until the first message, ``online``, ``silent``), ``dateLastValueReported``,
``messageRate`` (messages per minute) and ``batteryLevel`` where the device reports one.

Writing these per message would double the writes, so each process counts in memory and
writes every ``interval`` seconds; a device whose state is not yet ``online`` is written
within a second of its message. Silence is decided from the store, not from one
process's memory (with several workers each sees only part of a device's messages): a
device whose last report is older than its ``silent_after`` becomes ``silent``, a change
that subscriptions and the IOC see like any other.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from dothi.iot.config import Binding, device_entity_id, device_of
from dothi.iot.registry import DEVICE_TYPE, DeviceRegistry
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.periodic import Periodic
from dothi.store.base import UNCHANGED, EntityQuery, Selector

Key = tuple[str, str]  # (tenant, device id)
PAGE = 1000
CHUNK = 200


class DeviceHealth:
    def __init__(self, registry: DeviceRegistry, *, interval: float = 60.0,
                 tick: float = 1.0) -> None:
        self.registry = registry
        self.broker = registry.broker
        self.ctx = self.broker.resolver.core
        self.interval = interval
        self._lock = threading.Lock()
        # (tenant, device id) -> [messages since last write, last seen, battery or None]
        self._pending: dict[Key, list[Any]] = {}
        self._online: set[Key] = set()
        self._every = Periodic("dothi-iot-health", tick, self._tick,
                               "device health not written")
        self._last_full = datetime.now(UTC)
        e = self.ctx.expand
        self.iri = {n: e(n) for n in ("deviceState", "dateLastValueReported", "messageRate",
                                      "batteryLevel")}

    def seen(self, binding: Binding, when: datetime, values: dict[str, Any]) -> None:
        key = (binding.tenant, binding.device_id)
        battery = values.get("batteryLevel")
        with self._lock:
            entry = self._pending.get(key)
            if entry is None:
                self._pending[key] = [1, when, battery]
            else:
                entry[0] += 1
                entry[1] = when
                if battery is not None:
                    entry[2] = battery

    # -- the loop ---------------------------------------------------------------------

    def start(self) -> None:
        self._last_full = datetime.now(UTC)
        self._every.start()

    def stop(self) -> None:
        self._every.stop()
        self.flush(everything=True)

    def _tick(self) -> None:
        """Every second: devices not yet known online; every ``interval``: all of them,
        then the silent ones."""
        self.registry.maybe_reload()
        full = datetime.now(UTC) - self._last_full >= timedelta(seconds=self.interval)
        self.flush(everything=full)
        if full:
            self._last_full = datetime.now(UTC)
            self.mark_silent()

    # -- writing ----------------------------------------------------------------------

    def flush(self, *, everything: bool) -> int:
        """Write what was counted: for every device, or only for those not known to be
        online yet. Returns the number of devices written."""
        with self._lock:
            if everything:
                taken, self._pending = self._pending, {}
            else:
                taken = {k: v for k, v in self._pending.items() if k not in self._online}
                for key in taken:
                    del self._pending[key]
        by_tenant: dict[str, list[tuple[str, Any]]] = {}
        now = now_iso()
        for (tenant, device_id), (count, last, battery) in taken.items():
            eid = device_entity_id(device_id)
            by_tenant.setdefault(tenant, []).append(
                (eid, self._reported(count, last, battery, now)))
        for tenant, changes in by_tenant.items():
            # In small transactions: one of 5,000 devices held the store's write lock for
            # half a second, and device messages queued behind it (bench/iot.py's p95).
            for start in range(0, len(changes), CHUNK):
                self.broker.apply(tenant, changes[start:start + CHUNK])
        with self._lock:
            self._online.update(taken)
        return len(taken)

    def _reported(self, count: int, last: datetime, battery: Any, now: str) -> Any:
        iri = self.iri
        last_iso = last.isoformat(timespec="milliseconds").replace("+00:00", "Z")

        def change(old: dict | None) -> Any:
            if old is None:
                return UNCHANGED  # the device was deleted meanwhile
            previous = _datetime_value(old.get(iri["dateLastValueReported"]))
            body: dict[str, Any] = {}
            if previous is None or previous < last_iso:
                body["dateLastValueReported"] = {
                    "type": "Property", "value": {"@type": "DateTime", "@value": last_iso}}
            rate = _rate(old.get(iri["messageRate"]), old.get(iri["dateLastValueReported"]),
                         count, now)
            if rate is not None:
                body["messageRate"] = {"type": "Property", "value": rate}
            if _value(old.get(iri["deviceState"])) != "online":
                body["deviceState"] = {"type": "Property", "value": "online"}
            if isinstance(battery, int | float) and not isinstance(battery, bool):
                body["batteryLevel"] = {"type": "Property", "value": battery}
            doc, _ = merge.append(old, expand_attributes(body, self.ctx, now), now,
                                  overwrite=True)
            return doc

        return change

    def mark_silent(self, now: datetime | None = None) -> int:
        """Every device, in every tenant with devices, whose last report (or, never
        having reported, its provisioning) is older than its ``silent_after``."""
        now = now or datetime.now(UTC)
        index = {(b.tenant, b.device_id): b for b in self.registry.bindings.values()}
        tenants = {tenant for tenant, _ in index}
        marked = 0
        for tenant in sorted(tenants):
            changes = []
            for doc in self._not_silent(tenant):
                device_id = device_of(doc["id"])
                binding = index.get((tenant, device_id))
                if binding is None:
                    continue
                cutoff = (now - timedelta(seconds=binding.silent_after)).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z")
                if _last_report(doc, self.iri) < cutoff:
                    changes.append((doc["id"], self._silence(cutoff)))
            for start in range(0, len(changes), CHUNK):
                outcomes = self.broker.apply(tenant, changes[start:start + CHUNK])
                marked += sum(o.status == "updated" for o in outcomes)
                with self._lock:
                    self._online.difference_update(
                        (tenant, device_of(o.id)) for o in outcomes
                        if o.status == "updated")
        return marked

    def _not_silent(self, tenant: str) -> list[dict]:
        out: list[dict] = []
        offset = 0
        while True:
            query = EntityQuery(
                selectors=[Selector(types=parse_type_expr(DEVICE_TYPE, self.ctx.expand))],
                q=parse_q('deviceState=="online"|deviceState=="unknown"'),
                expand=self.ctx.expand, limit=PAGE, offset=offset)
            docs, _ = self.broker.store.query(tenant, query)
            out.extend(docs)
            if len(docs) < PAGE:
                return out
            offset += PAGE

    def _silence(self, cutoff: str) -> Any:
        def change(old: dict | None) -> Any:
            # Checked again inside the write: a report may have landed since the query.
            if old is None or _value(old.get(self.iri["deviceState"])) == "silent" or \
                    _last_report(old, self.iri) >= cutoff:
                return UNCHANGED
            now = now_iso()
            attrs = expand_attributes({"deviceState": {"type": "Property", "value": "silent"}},
                                      self.ctx, now)
            doc, _ = merge.append(old, attrs, now, overwrite=True)
            return doc
        return change


def _value(instances: list[dict] | None) -> Any:
    return instances[0].get("value") if instances else None


def _datetime_value(instances: list[dict] | None) -> str | None:
    value = _value(instances)
    if isinstance(value, dict):
        value = value.get("@value")
    return value if isinstance(value, str) else None


def _last_report(doc: dict, iri: dict[str, str]) -> str:
    return _datetime_value(doc.get(iri["dateLastValueReported"])) or str(doc["createdAt"])


def _rate(instances: list[dict] | None, reported: list[dict] | None, count: int,
          now: str) -> float | None:
    """Messages per minute since the last health write of this device (by any process),
    smoothed with the previous value so one late flush does not make it jump; None at
    the first write, which has no interval to count over (a device's first message
    came some time after its provisioning, which says nothing about its rate)."""
    since = (instances or reported or [{}])[0].get("modifiedAt")
    if since is None:
        return None
    try:
        elapsed = (datetime.fromisoformat(now.replace("Z", "+00:00"))
                   - datetime.fromisoformat(str(since).replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        elapsed = 0.0
    current = count * 60.0 / max(elapsed, 1.0)
    previous = _value(instances)
    if isinstance(previous, int | float) and instances is not None:
        current = 0.5 * previous + 0.5 * current
    return round(current, 3)
