"""Commands to devices, the IoT Agents' way: a provisioned command is an attribute of the
device's entity; an NGSI-LD update of it (``PATCH /entities/{id}/attrs/dim``) is sent to
the device, and ``{command}_status`` follows it: ``PENDING`` once sent, ``OK`` with the
device's answer in ``{command}_info`` when it acknowledges (``ERROR`` if the answer starts
with ERROR or it could not be sent), ``EXPIRED`` if no answer comes within the timeout.

MQTT devices get ``/{apikey}/{device_id}/cmd`` and answer on ``.../cmdexe``; HTTP devices
get a POST to their ``endpoint`` and answer in the response body.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dothi.errors import DothiError
from dothi.iot.config import Binding
from dothi.iot.payloads import MalformedPayload, format_command, parse_command_ack
from dothi.iot.registry import DeviceRegistry
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes
from dothi.ngsild.timeutil import now_iso
from dothi.store.base import UNCHANGED, Outcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    binding: Binding
    name: str
    value: Any
    stamp: str  # modifiedAt of the command attribute that asked for it


class Commands:
    def __init__(self, registry: DeviceRegistry, *, timeout: float = 60.0,
                 http_timeout: float = 5.0) -> None:
        self.registry = registry
        self.broker = registry.broker
        self.ctx = self.broker.resolver.core
        self.timeout = timeout
        self.http_timeout = http_timeout
        # Publishes a command over MQTT; None when this process has no MQTT broker.
        self.publish: Callable[[str, bytes], None] | None = None
        self.queue: queue.Queue[Command | None] = queue.Queue()
        self.pending: dict[tuple[str, str, str], tuple[float, str]] = {}
        self.sent = 0
        self.acknowledged = 0
        self._thread: threading.Thread | None = None

    # -- noticing commands -------------------------------------------------------------

    def on_write(self, tenant: str, outcomes: list[Outcome]) -> None:
        """A broker write listener: queue every command attribute a write changed."""
        for outcome in outcomes:
            if outcome.after is None or outcome.status not in ("created", "updated"):
                continue
            for binding in self.registry.for_entity(tenant, outcome.id):
                for name in binding.commands:
                    iri = self.ctx.expand(name)
                    after = outcome.after.get(iri)
                    if not after:
                        continue
                    before = (outcome.before or {}).get(iri)
                    stamp = after[0].get("modifiedAt", "")
                    if before and before[0].get("modifiedAt") == stamp:
                        continue
                    value = after[0].get("value")
                    if value == "" and not before:
                        continue  # the placeholder provisioning writes
                    self.queue.put(Command(binding, name, value, stamp))

    # -- sending ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dothi-iot-commands",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.queue.put(None)
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                command = self.queue.get(timeout=1.0)
            except queue.Empty:
                command = None
                self._expire()
                continue
            if command is None:
                return
            try:
                self.send(command)
            except Exception:  # noqa: BLE001 - the command thread must survive
                log.exception("command %s to %s failed", command.name,
                              command.binding.device_id)
            self._expire()

    def send(self, command: Command) -> None:
        b = command.binding
        payload = format_command(b.protocol, b.device_id, command.name, command.value)
        if b.transport == "HTTP":
            self._status(b, command.name, "PENDING", None)
            try:
                answer = self._post(b, payload)
            except OSError as exc:
                self._status(b, command.name, "ERROR", str(exc))
                return
            self.sent += 1
            self._answered(b, command.name, answer)
            return
        if self.publish is None:
            self._status(b, command.name, "ERROR", "no MQTT broker is configured "
                         "(DOTHI_IOT_MQTT_URL)")
            return
        key = (b.tenant, b.entity_id, command.name)
        self.pending[key] = (time.monotonic() + self.timeout, command.stamp)
        self._status(b, command.name, "PENDING", None)
        try:
            self.publish(f"/{b.apikey}/{b.device_id}/cmd", payload)
        except OSError as exc:
            self.pending.pop(key, None)
            self._status(b, command.name, "ERROR", str(exc))
            return
        self.sent += 1

    def _post(self, b: Binding, payload: bytes) -> str:
        import httpx

        if not b.endpoint:
            raise OSError(f"device {b.device_id} has no endpoint for HTTP commands")
        kind = "application/json" if b.protocol == "JSON" else "text/plain"
        try:
            response = httpx.post(b.endpoint, content=payload, timeout=self.http_timeout,
                                  headers={"Content-Type": kind})
        except httpx.HTTPError as exc:
            raise OSError(f"{b.endpoint}: {exc}") from None
        if response.status_code >= 300:
            raise OSError(f"{b.endpoint} answered {response.status_code}")
        try:
            results = parse_command_ack(b.protocol, response.content)
        except MalformedPayload:
            return response.text
        return str(next(iter(results.values()), ""))

    # -- answers ----------------------------------------------------------------------

    def ack(self, apikey: str, device_id: str, protocol: str | None, raw: bytes) -> None:
        """A device's ``cmdexe`` message."""
        binding = self.registry.lookup(apikey, device_id)
        if binding is None:
            log.info("command result from unknown device %s/%s", apikey, device_id)
            return
        try:
            results = parse_command_ack(protocol or binding.protocol, raw)
        except MalformedPayload as exc:
            log.info("malformed command result from %s: %s", device_id, exc)
            return
        for name, result in results.items():
            if name in binding.commands:
                self._answered(binding, name, "" if result is None else str(result))

    def _answered(self, b: Binding, name: str, result: str) -> None:
        self.pending.pop((b.tenant, b.entity_id, name), None)
        self.acknowledged += 1
        status = "ERROR" if result.upper().startswith("ERROR") else "OK"
        self._status(b, name, status, result)

    def _expire(self) -> None:
        now = time.monotonic()
        for key, (deadline, stamp) in list(self.pending.items()):
            # An answer may have come meanwhile (the MQTT reader's thread): pop, not del.
            if deadline <= now and self.pending.pop(key, None) is not None:
                tenant, entity_id, name = key
                binding = next((b for b in self.registry.for_entity(tenant, entity_id)
                                if name in b.commands), None)
                if binding is not None:
                    self._status(binding, name, "EXPIRED", "no answer from the device "
                                 f"within {self.timeout:g} s", only_if=stamp)

    def _status(self, b: Binding, name: str, status: str, info: str | None, *,
                only_if: str | None = None) -> None:
        now = now_iso()
        body: dict[str, Any] = {f"{name}_status": {"type": "Property", "value": status}}
        if info is not None:
            body[f"{name}_info"] = {"type": "Property", "value": info}
        attrs = expand_attributes(body, self.ctx, now)
        status_iri = self.ctx.expand(f"{name}_status")
        command_iri = self.ctx.expand(name)

        def change(old: dict | None) -> Any:
            if old is None:
                return UNCHANGED
            if only_if is not None:
                # Expire only the command still waiting: not one answered through another
                # worker, nor a newer command.
                current = (old.get(status_iri) or [{}])[0].get("value")
                sent = (old.get(command_iri) or [{}])[0].get("modifiedAt")
                if current != "PENDING" or sent != only_if:
                    return UNCHANGED
            doc, _ = merge.append(old, attrs, now, overwrite=True)
            return doc

        try:
            self.broker.apply(b.tenant, [(b.entity_id, change)])
        except DothiError as exc:
            log.warning("status of command %s to %s not written: %s", name, b.device_id,
                        exc.detail)
