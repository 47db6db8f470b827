"""Where provisioned service groups and devices live: as entities in the one store (an
``IotServiceGroup`` per API key and a Smart Data Models ``Device`` per device, each with
its provisioning document in ``iotProvisioning``), and as an in-memory index that turns an
MQTT topic's (API key, device id) into the device's ``Binding`` without touching the store.

Every process keeps its own index. It is updated at once by what this process provisions,
reloaded from the store every ``refresh`` seconds, and on a miss (at most once per
``miss_reload`` seconds, so a flood of unknown devices cannot turn into a flood of reloads):
a device provisioned through another worker is known here within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from dothi.broker.broker import Broker
from dothi.errors import AlreadyExists, BadRequestData, DothiError, ResourceNotFound
from dothi.iot.config import (
    Binding,
    DeviceConfig,
    ServiceGroup,
    bind,
    device_entity_id,
    dump,
    group_entity_id,
    parse_document,
)
from dothi.iot.measures import MeasureError, static_attributes
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes, expand_entity
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import DEFAULT_TENANT, EntityQuery, Selector

GROUP_TYPE = "IotServiceGroup"
DEVICE_TYPE = "Device"
PROVISIONING = "iotProvisioning"
PAGE = 1000


class DeviceRegistry:
    def __init__(self, broker: Broker, *, refresh: float = 30.0, miss_reload: float = 5.0,
                 ) -> None:
        self.broker = broker
        self.ctx = broker.resolver.core
        self.refresh = refresh
        self.miss_reload = miss_reload
        self._lock = threading.Lock()
        self._write = threading.Lock()  # provisioning writes: check-then-write is atomic
        self.groups: dict[str, tuple[str, ServiceGroup]] = {}  # apikey -> (tenant, group)
        self.devices: dict[tuple[str, str], DeviceConfig] = {}  # (tenant, device id) -> doc
        self.bindings: dict[tuple[str, str], Binding] = {}  # (apikey, device id) -> binding
        self.by_entity: dict[tuple[str, str], list[Binding]] = {}  # (tenant, entity id)
        self.loaded_at = float("-inf")
        self._last_miss = float("-inf")

    # -- reading ----------------------------------------------------------------------

    def lookup(self, apikey: str, device_id: str) -> Binding | None:
        found = self.bindings.get((apikey, device_id))
        if found is not None:
            return found
        now = time.monotonic()
        if now - self._last_miss < self.miss_reload:
            return None
        self._last_miss = now
        self.reload()
        return self.bindings.get((apikey, device_id))

    def for_entity(self, tenant: str, entity_id: str) -> list[Binding]:
        return self.by_entity.get((tenant, entity_id), [])

    def group(self, apikey: str) -> tuple[str, ServiceGroup] | None:
        return self.groups.get(apikey)

    def maybe_reload(self) -> None:
        if time.monotonic() - self.loaded_at >= self.refresh:
            self.reload()

    def reload(self) -> None:
        groups: dict[str, tuple[str, ServiceGroup]] = {}
        devices: dict[tuple[str, str], DeviceConfig] = {}
        tenants = [DEFAULT_TENANT, *(t for t in self.broker.store.tenants()
                                     if t != DEFAULT_TENANT)]
        for tenant in tenants:
            for doc in self._stored(tenant, GROUP_TYPE):
                group = ServiceGroup.model_validate(doc)
                groups[group.apikey] = (tenant, group)
            for doc in self._stored(tenant, DEVICE_TYPE):
                device = DeviceConfig.model_validate(doc)
                devices[(tenant, device.device_id)] = device
        self._install(groups, devices)

    def _stored(self, tenant: str, etype: str) -> list[dict[str, Any]]:
        iri = self.ctx.expand(PROVISIONING)
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            query = EntityQuery(selectors=[Selector(types=parse_type_expr(
                etype, self.ctx.expand))], attrs_any=[iri], limit=PAGE, offset=offset)
            docs, _ = self.broker.store.query(tenant, query)
            out.extend(d[iri][0]["value"] for d in docs if d.get(iri))
            if len(docs) < PAGE:
                return out
            offset += PAGE

    def _install(self, groups: dict[str, tuple[str, ServiceGroup]],
                 devices: dict[tuple[str, str], DeviceConfig]) -> None:
        bindings: dict[tuple[str, str], Binding] = {}
        by_entity: dict[tuple[str, str], list[Binding]] = {}
        for (tenant, _), device in devices.items():
            try:
                binding = self._bind(tenant, device, groups)
            except DothiError:
                continue  # its group was deleted: the device waits for a new one
            bindings[(binding.apikey, binding.device_id)] = binding
            by_entity.setdefault((tenant, binding.entity_id), []).append(binding)
        with self._lock:
            self.groups, self.devices = groups, devices
            self.bindings, self.by_entity = bindings, by_entity
            self.loaded_at = time.monotonic()

    @staticmethod
    def _bind(tenant: str, device: DeviceConfig,
              groups: dict[str, tuple[str, ServiceGroup]]) -> Binding:
        apikey = device.apikey
        if apikey is None:
            own = [g for t, g in groups.values() if t == tenant]
            if len(own) != 1:
                raise BadRequestData(
                    f"Device {device.device_id} names no apikey and its tenant has "
                    f"{len(own)} service groups: say which with apikey")
            apikey = own[0].apikey
        found = groups.get(apikey)
        if found is not None and found[0] != tenant:
            raise BadRequestData(f"apikey {apikey} belongs to another tenant")
        group = found[1] if found else None
        if group is None and device.entity_type is None:
            raise BadRequestData(
                f"Device {device.device_id}: no service group has apikey {apikey}, and the "
                "device gives no entity_type of its own")
        return bind(tenant, group, device.model_copy(update={"apikey": apikey}))

    # -- service groups ---------------------------------------------------------------

    def list_groups(self, tenant: str) -> list[ServiceGroup]:
        self.reload()
        return [g for t, g in self.groups.values() if t == tenant]

    def create_groups(self, tenant: str, groups: Sequence[ServiceGroup]) -> None:
        with self._write:
            self.reload()
            seen: set[str] = set()
            for group in groups:
                if group.apikey in self.groups or group.apikey in seen:
                    raise AlreadyExists(f"A service group with apikey {group.apikey} exists")
                seen.add(group.apikey)
            now = now_iso()
            changes = [(group_entity_id(g.apikey), _create(self._group_doc(g, now)))
                       for g in groups]
            self._apply(tenant, changes)
            new = dict(self.groups)
            new.update({g.apikey: (tenant, g) for g in groups})
            self._install(new, self.devices)

    def update_group(self, tenant: str, apikey: str, patch: Any) -> ServiceGroup:
        with self._write:
            self.reload()
            old = self._own_group(tenant, apikey)
            group = _patched(ServiceGroup, old, patch, ("apikey",))
            self._apply(tenant, [(group_entity_id(apikey), _replace(
                self._group_doc(group, now_iso())))])
            self.reload()
            return group

    def delete_group(self, tenant: str, apikey: str) -> None:
        with self._write:
            self.reload()
            self._own_group(tenant, apikey)
            self._apply(tenant, [(group_entity_id(apikey), _delete(apikey))])
            self.reload()

    def _own_group(self, tenant: str, apikey: str) -> ServiceGroup:
        found = self.groups.get(apikey)
        if found is None or found[0] != tenant:
            raise ResourceNotFound(f"No service group with apikey {apikey}")
        return found[1]

    def _group_doc(self, group: ServiceGroup, now: str) -> dict:
        return expand_entity({
            "id": group_entity_id(group.apikey), "type": GROUP_TYPE,
            "name": {"type": "Property", "value": group.description or group.apikey},
            "entityType": {"type": "Property", "value": group.entity_type},
            PROVISIONING: {"type": "Property", "value": dump(group)},
        }, self.ctx, now)

    # -- devices ----------------------------------------------------------------------

    def list_devices(self, tenant: str) -> list[DeviceConfig]:
        self.reload()
        return [d for (t, _), d in self.devices.items() if t == tenant]

    def get_device(self, tenant: str, device_id: str) -> DeviceConfig:
        self.reload()
        found = self.devices.get((tenant, device_id))
        if found is None:
            raise ResourceNotFound(f"No device {device_id}")
        return found

    def create_devices(self, tenant: str, devices: Sequence[DeviceConfig]) -> None:
        """Each device's ``Device`` entity and, created or completed, the entity it
        measures (static attributes, and the command attributes a client patches to send
        a command), in one transaction: all or nothing."""
        with self._write:
            self.reload()
            seen: set[str] = set()
            bindings = []
            for device in devices:
                if (tenant, device.device_id) in self.devices or device.device_id in seen:
                    raise AlreadyExists(f"Device {device.device_id} exists")
                seen.add(device.device_id)
                bindings.append(self._bind(tenant, device, self.groups))
            now = now_iso()
            changes: list[tuple[str, Any]] = []
            for device, binding in zip(devices, bindings, strict=True):
                changes.append((binding.device_entity,
                                _create(self._device_doc(device, binding, now))))
                changes.append(self._asset_change(binding, now))
            self._apply(tenant, changes)
            new = dict(self.devices)
            new.update({(tenant, d.device_id): d for d in devices})
            self._install(self.groups, new)

    def update_device(self, tenant: str, device_id: str, patch: Any) -> DeviceConfig:
        with self._write:
            old = self.get_device(tenant, device_id)
            device = _patched(DeviceConfig, old, patch, ("device_id",))
            binding = self._bind(tenant, device, self.groups)
            now = now_iso()
            iri = self.ctx.expand(PROVISIONING)
            provisioning = expand_attributes(
                {PROVISIONING: {"type": "Property", "value": dump(device)}}, self.ctx, now)

            def change(old_doc: dict | None) -> dict:
                if old_doc is None:
                    raise ResourceNotFound(f"No device {device_id}")
                doc, _ = merge.append(old_doc, {iri: provisioning[iri]}, now, overwrite=True)
                return doc

            self._apply(tenant, [(binding.device_entity, change),
                                 self._asset_change(binding, now)])
            self.reload()
            return device

    def delete_device(self, tenant: str, device_id: str) -> None:
        """The device goes; the entity it measured, with its history, stays the city's."""
        with self._write:
            self.get_device(tenant, device_id)
            self._apply(tenant, [(device_entity_id(device_id), _delete(device_id))])
            self.reload()

    def _device_doc(self, device: DeviceConfig, binding: Binding, now: str) -> dict:
        body: dict[str, Any] = {
            "id": binding.device_entity, "type": DEVICE_TYPE,
            "deviceState": {"type": "Property", "value": "unknown"},
            "controlledAsset": {"type": "Property", "value": [binding.entity_id]},
            "controlledProperty": {"type": "Property", "value": sorted(
                {m.name for m in binding.mappings.values()}) or ["unknown"]},
            PROVISIONING: {"type": "Property", "value": dump(device)},
        }
        location = next((s.value for s in binding.statics if s.name == "location"), None)
        if location is not None:
            body["location"] = static_attributes(binding)["location"]
        if device.description:
            body["description"] = {"type": "Property", "value": device.description}
        return expand_entity(body, self.ctx, now)

    def _asset_change(self, binding: Binding, now: str) -> tuple[str, Any]:
        try:
            body = static_attributes(binding)
        except MeasureError as exc:
            raise BadRequestData(f"Device {binding.device_id}: {exc}") from None
        commands = {}
        for name in binding.commands:
            commands[name] = {"type": "Property", "value": ""}
            commands[f"{name}_status"] = {"type": "Property", "value": "UNKNOWN"}
        statics = expand_attributes(body, self.ctx, now)
        fresh = expand_attributes(commands, self.ctx, now)
        type_iri = self.ctx.expand(binding.entity_type)

        def change(old: dict | None) -> dict:
            if old is None:
                return {"id": binding.entity_id, "type": [type_iri], "createdAt": now,
                        "modifiedAt": now, **statics, **fresh}
            doc, _ = merge.append(old, statics, now, overwrite=True)
            # Command attributes already there keep their last command and status.
            missing = {iri: inst for iri, inst in fresh.items() if iri not in doc}
            if missing:
                doc, _ = merge.append(doc, missing, now, overwrite=False)
            if type_iri not in doc["type"]:
                doc["type"] = [*doc["type"], type_iri]
            return doc

        return binding.entity_id, change

    def _apply(self, tenant: str, changes: list[tuple[str, Any]]) -> None:
        for outcome in self.broker.apply(tenant, changes):
            if outcome.error is not None:
                raise outcome.error


def _create(doc: dict) -> Callable[[dict | None], dict]:
    def change(old: dict | None) -> dict:
        if old is not None:
            raise AlreadyExists(f"Entity {doc['id']} already exists")
        return doc
    return change


def _replace(doc: dict) -> Callable[[dict | None], dict]:
    def change(old: dict | None) -> dict:
        if old is None:
            raise ResourceNotFound(f"Entity {doc['id']} does not exist")
        new = dict(doc)
        new["createdAt"] = old["createdAt"]
        return new
    return change


def _delete(what: str) -> Callable[[dict | None], None]:
    def change(old: dict | None) -> None:
        if old is None:
            raise ResourceNotFound(f"{what} does not exist")
    return change


def _patched(model: Any, old: Any, patch: Any, fixed: tuple[str, ...]) -> Any:
    """The IoT Agents' PUT: the fields given replace the stored ones."""
    if not isinstance(patch, dict) or not patch:
        raise BadRequestData("The body must be a JSON object of the fields to change")
    for name in fixed:
        if name in patch and patch[name] != getattr(old, name):
            raise BadRequestData(f"{name} cannot be changed")
    data = dump(old)
    data.update(patch)
    return parse_document(model, data, "body")
