"""Device messages into the store: each message is checked whole where it arrives (the
MQTT client's thread or an HTTP request), then queued to one writer thread that applies
everything waiting in one transaction per tenant.

A message is either written whole or refused whole and counted with its reason: unknown
device, malformed payload, a value its mapping cannot take, a Smart Data Models schema
violation. Batches grow with the load (the writer takes whatever queued while it was
writing), so there is no fixed delay at low rates and few transactions at high ones.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, DothiError, ResourceNotFound, StoreUnavailable
from dothi.iot.config import Binding, DeviceConfig
from dothi.iot.measures import MeasureError, to_attributes
from dothi.iot.payloads import (
    MalformedPayload,
    parse_json_measures,
    parse_single,
    parse_ultralight,
)
from dothi.iot.registry import DeviceRegistry
from dothi.iot.validation import InvalidSchema, SchemaCatalogue
from dothi.ngsild import merge
from dothi.ngsild.entity import check_name, expand_attributes
from dothi.ngsild.timeutil import now_iso
from dothi.store import audit

log = logging.getLogger(__name__)
RETRY_S = (0.5, 1.0, 2.0, 5.0)


class Rejected(DothiError):
    """A device message that was refused; ``reason`` is the counter it went to."""

    status = 400
    problem = "BadRequestData"

    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(detail, title=reason)
        self.reason = reason
        self.status = status
        if status == 404:
            self.problem = ResourceNotFound.problem

    @property
    def type_uri(self) -> str:
        if self.status == 503:  # the queue is full: NGSI-LD has no problem type for that
            return "urn:dothi:errors:Overloaded"
        return super().type_uri


@dataclass
class Message:
    binding: Binding
    attrs: list[dict[str, list[dict]]]  # expanded attributes, one per measure group
    values: dict[str, Any]  # keyValues of the last group (battery, health)
    received: float  # time.monotonic() at arrival
    stamp: str  # createdAt/modifiedAt of the instances: the entity's modifiedAt too
    done: Callable[[BaseException | None], None] | None = None


@dataclass
class IngestStats:
    received: int = 0
    applied: int = 0
    attributes: int = 0
    batches: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    reported: Counter[str] = field(default_factory=Counter)  # schema problems let through
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))
    latency_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latency_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "received": self.received, "applied": self.applied,
            "attributes": self.attributes, "batches": self.batches,
            "rejected": dict(self.rejected), "schemaReported": dict(self.reported),
            "latencyMs": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
                          "samples": len(lat)},
            "recentProblems": list(self.recent),
        }


class Ingestor:
    def __init__(self, broker: Broker, registry: DeviceRegistry, catalogue: SchemaCatalogue,
                 *, max_batch: int = 2000, max_queue: int = 50_000) -> None:
        self.broker = broker
        self.registry = registry
        self.catalogue = catalogue
        self.ctx = broker.resolver.core
        self.max_batch = max_batch
        self.queue: queue.Queue[Message | None] = queue.Queue(maxsize=max_queue)
        self.stats = IngestStats()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Told (binding, received wall time, keyValues) for every message written.
        self.seen: Callable[[Binding, datetime, dict[str, Any]], None] | None = None

    # -- arrival ----------------------------------------------------------------------

    def measures(self, apikey: str, device_id: str, payload: bytes | str, *,
                 protocol: str | None = None, attr: str | None = None, source: str = "mqtt",
                 done: Callable[[BaseException | None], None] | None = None,
                 timeout: float | None = None) -> None:
        """Check one message and queue it for writing; raises ``Rejected`` (already
        counted) if it is refused. ``protocol`` is what the topic or URL says the payload
        is (else the device's own); ``attr`` is the attribute of a single-value topic."""
        received = time.monotonic()
        with self._lock:
            self.stats.received += 1
        try:
            binding = self._binding(apikey, device_id)
            message = self._message(binding, payload, protocol or binding.protocol, attr,
                                    received)
        except Rejected as exc:
            self._count(exc, apikey, device_id, source)
            raise
        message.done = done
        try:
            self.queue.put(message, timeout=timeout)
        except queue.Full:
            full = Rejected("overloaded", "The ingestion queue is full; try again", 503)
            self._count(full, apikey, device_id, source)
            raise full from None

    def _binding(self, apikey: str, device_id: str) -> Binding:
        binding = self.registry.lookup(apikey, device_id)
        if binding is not None:
            return binding
        found = self.registry.group(apikey)
        if found is None:
            raise Rejected("unknown-apikey", f"No service group has apikey {apikey!r}", 404)
        tenant, group = found
        if not group.autoprovision:
            raise Rejected("unknown-device",
                           f"Device {device_id!r} is not provisioned under apikey {apikey!r}",
                           404)
        try:
            self.registry.create_devices(tenant, [DeviceConfig(device_id=device_id,
                                                               apikey=apikey)])
        except DothiError as exc:
            if exc.status != 409:  # another message provisioned it first
                raise Rejected("unknown-device", f"Autoprovisioning {device_id!r} failed: "
                               f"{exc.detail}", 404) from None
        binding = self.registry.lookup(apikey, device_id)
        if binding is None:
            raise Rejected("unknown-device", f"Device {device_id!r} could not be provisioned",
                           404)
        return binding

    def _message(self, binding: Binding, payload: bytes | str, protocol: str,
                 attr: str | None, received: float) -> Message:
        try:
            raw = payload if isinstance(payload, bytes) else payload.encode()
            if attr is not None:
                groups = [parse_single(protocol, attr, raw)]
            elif protocol == "JSON":
                groups = parse_json_measures(raw)
            else:
                groups = parse_ultralight(raw.decode("utf-8"))
        except (MalformedPayload, UnicodeDecodeError) as exc:
            raise Rejected("malformed", f"Malformed {protocol} payload: {exc}") from None
        wall = datetime.now(UTC)
        now = now_iso()
        attrs: list[dict[str, list[dict]]] = []
        values: dict[str, Any] = {}
        for measures in groups:
            try:
                fragment, values = to_attributes(binding, measures, wall)
            except MeasureError as exc:
                raise Rejected("malformed", str(exc)) from None
            if not fragment:
                continue
            self._validate(binding, values)
            try:
                attrs.append(self._expand(fragment, now))
            except BadRequestData as exc:
                raise Rejected("malformed", exc.detail) from None
        return Message(binding, attrs, values, received, now)

    def _expand(self, fragment: dict[str, Any], now: str) -> dict[str, list[dict]]:
        """The fragment ``to_attributes`` built, expanded. Plain Properties (nearly every
        measure) are already in their stored form (typed value, canonical observedAt), so
        they only get their IRI and timestamps: the general expansion, which checks and
        normalises any client's input, was a seventh of the cost of a message. Anything
        else (geometries, relationships) goes through it."""
        out: dict[str, list[dict]] = {}
        rest: dict[str, Any] = {}
        for name, attr in fragment.items():
            if attr["type"] == "Property" and not isinstance(attr["value"], dict | list):
                check_name(name, "attribute name")
                out[self.ctx.expand(name)] = [{**attr, "createdAt": now, "modifiedAt": now}]
            else:
                rest[name] = attr
        if rest:
            out.update(expand_attributes(rest, self.ctx, now))
        return out

    def _validate(self, binding: Binding, values: dict[str, Any]) -> None:
        if binding.schema_validation == "off":
            return
        try:
            model = self.catalogue.find(binding.entity_type, binding.schema)
        except (LookupError, InvalidSchema) as exc:  # checked when the group was made
            raise Rejected("schema", str(exc)) from None
        # An attribute whose definition refers to a document the shipped catalogue lacks
        # cannot be checked offline: it passes unchecked rather than refused.
        checkable = {k: v for k, v in values.items() if k not in model.unresolved_attributes}
        violations = model.validate_attributes(checkable)
        if not violations:
            return
        detail = "; ".join(f"{v.attribute}: {v.rule} ({v.message})" for v in violations)
        if binding.schema_validation == "reject":
            raise Rejected("schema", f"Schema {model.name} violated: {detail}")
        with self._lock:
            self.stats.reported["schema"] += 1
            self.stats.recent.append(_problem("schema-reported", detail, binding.apikey,
                                              binding.device_id, "-"))

    def _count(self, exc: Rejected, apikey: str, device_id: str, source: str) -> None:
        with self._lock:
            self.stats.rejected[exc.reason] += 1
            self.stats.recent.append(_problem(exc.reason, exc.detail, apikey, device_id,
                                              source))

    # -- writing ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dothi-iot-writer",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Writes what is queued, then stops."""
        if self._thread is None:
            return
        self.queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)
            if stopping:
                return

    def _write(self, batch: list[Message]) -> None:
        by_tenant: dict[str, list[Message]] = {}
        for message in batch:
            by_tenant.setdefault(message.binding.tenant, []).append(message)
        for tenant, messages in by_tenant.items():
            error = self._write_tenant(tenant, messages)
            finished = time.monotonic()
            wall = datetime.now(UTC)
            with self._lock:
                self.stats.batches += 1
                if error is None:
                    self.stats.applied += len(messages)
                    self.stats.attributes += sum(len(a) for m in messages for a in m.attrs)
                    self.stats.latency_ms.extend(
                        (finished - m.received) * 1000 for m in messages)
                else:
                    self.stats.rejected["store"] += len(messages)
            for message in messages:
                if error is None and self.seen is not None:
                    self.seen(message.binding, wall, message.values)
                if message.done is not None:
                    message.done(error)

    def _write_tenant(self, tenant: str, messages: list[Message]) -> BaseException | None:
        """Retries while the store is away (a database restart); the messages wait in
        memory meanwhile, and MQTT QoS 1 messages are acknowledged only once written."""
        changes: list[tuple[str, Any]] = []
        for message in messages:
            for attrs in message.attrs:
                changes.append((message.binding.entity_id, audit.ChangeBy(_upsert(
                    message.binding, attrs, self.ctx.expand, message.stamp),
                    f"device:{message.binding.device_id}")))
        if not changes:  # every measure was filtered out (explicitAttrs): nothing to write
            return None
        for delay in (*RETRY_S, None):
            try:
                for outcome in self.broker.apply(tenant, changes):
                    if outcome.error is not None:  # cannot happen with _upsert; be loud
                        log.error("device update of %s failed: %s", outcome.id,
                                  outcome.error)
                return None
            except StoreUnavailable as exc:
                if delay is None:
                    log.error("dropping %d device messages: %s", len(messages), exc)
                    return exc
                time.sleep(delay)
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive
                log.exception("device messages could not be written")
                return exc
        return None


def _upsert(binding: Binding, attrs: dict[str, list[dict]], expand: Callable[[str], str],
            now: str) -> Callable[[dict | None], dict]:
    """Update the measured entity, or create it if it is missing (deleted since the
    device was provisioned, say), as the IoT Agents do. ``now`` is the instances' own
    modifiedAt: history keeps the instances stamped with the entity's new one."""
    def change(old: dict | None) -> dict:
        if old is None:
            return {"id": binding.entity_id, "type": [expand(binding.entity_type)],
                    "createdAt": now, "modifiedAt": now, **attrs}
        doc, _ = merge.append(old, attrs, now, overwrite=True)
        return doc
    return change


def _problem(reason: str, detail: str, apikey: str, device_id: str, source: str,
             ) -> dict[str, Any]:
    return {"at": now_iso(), "reason": reason, "apikey": apikey, "deviceId": device_id,
            "source": source, "detail": detail[:500]}
