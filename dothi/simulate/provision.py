"""Provisioning: the service groups and devices the IoT-Agent side of the server must know.

The server answers 201 when it created everything and 409 when an apikey or device already
exists. A run must be repeatable, so a 409 means "already there": the items of the refused
request are then sent one by one and each 409 counted as existing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dothi.simulate.city import City, Device
from dothi.simulate.kinds import KINDS, Kind

CHUNK = 500  # devices per request, the server's limit


class ProvisioningError(RuntimeError):
    """The server refused or could not be reached: simulating makes no sense then."""


def group_payload(city: City, kind: Kind, transport: str, silent_after: int) -> dict[str, Any]:
    return {
        "apikey": city.apikey(kind),
        "entity_type": kind.entity_type,
        "protocol": kind.protocol,
        "transport": transport.upper(),
        "attributes": [a.group_entry() for a in kind.attrs],
        "commands": [{"name": name, "type": "command"} for name in kind.commands],
        "explicitAttrs": True,
        "silent_after": silent_after,
    }


def group_payloads(city: City, devices: Sequence[Device], transport: str,
                   rate_per_s: float) -> list[dict[str, Any]]:
    """One group per kind present. A device is silent after missing three publications."""
    silent = max(60, math.ceil(3 / rate_per_s))
    present = {d.kind.slug for d in devices}
    return [group_payload(city, k, transport, silent) for k in KINDS if k.slug in present]


def device_payload(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "apikey": device.apikey,
        "entity_name": device.entity_id,
        "entity_type": device.kind.entity_type,
        "static_attributes": [
            {"name": "location", "type": "GeoProperty", "value": device.geometry},
            {"name": "name", "type": "Text", "value": device.name},
        ],
    }


@dataclass
class Provisioned:
    created: int = 0
    existing: int = 0
    failed: list[str] = field(default_factory=list)


class Provisioner:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self.client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ProvisioningError(f"cannot reach {self.client.base_url}{path}: {exc}") from None

    def groups(self, groups: Sequence[dict[str, Any]]) -> Provisioned:
        done = Provisioned()
        if not groups:
            return done
        r = self._post("/iot/services", {"services": list(groups)})
        if r.status_code == 201:
            done.created = len(groups)
            return done
        if r.status_code != 409:
            raise ProvisioningError(f"POST /iot/services: {r.status_code} {r.text[:300]}")
        for group in groups:
            r = self._post("/iot/services", {"services": [group]})
            if r.status_code == 201:
                done.created += 1
            elif r.status_code == 409:
                done.existing += 1
            else:
                raise ProvisioningError(
                    f"POST /iot/services ({group['apikey']}): {r.status_code} {r.text[:300]}")
        return done

    def devices(self, devices: Sequence[dict[str, Any]],
                advance: Callable[[int], None] = lambda n: None) -> Provisioned:
        done = Provisioned()
        for start in range(0, len(devices), CHUNK):
            chunk = devices[start:start + CHUNK]
            r = self._post("/iot/devices", {"devices": list(chunk)})
            if r.status_code == 201:
                done.created += len(chunk)
                advance(len(chunk))
                continue
            if r.status_code >= 500:
                raise ProvisioningError(f"POST /iot/devices: {r.status_code} {r.text[:300]}")
            # 409 (some exist) or a 4xx about one device: isolate them one by one.
            for device in chunk:
                r = self._post("/iot/devices", {"devices": [device]})
                if r.status_code == 201:
                    done.created += 1
                elif r.status_code == 409:
                    done.existing += 1
                else:
                    done.failed.append(f"{device['device_id']}: {r.status_code} {r.text[:200]}")
                advance(1)
        return done
