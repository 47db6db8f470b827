"""Wire formats of the IoT-Agent southbound: UltraLight 2.0 and JSON measures and commands.

Measures: UL ``k|v|k|v`` with the kinds' object ids as keys, or a JSON object keyed by object
id. Commands arrive as UL ``<device>@<command>|<param>`` or JSON ``{"<command>": value}``; the
device answers UL ``<device>@<command>|OK`` (or ``|ERROR: reason``) or JSON
``{"<command>": "OK"}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from dothi.simulate.kinds import Kind, Protocol


def attrs_topic(apikey: str, device_id: str) -> str:
    return f"/{apikey}/{device_id}/attrs"


def cmd_topic(apikey: str, device_id: str) -> str:
    return f"/{apikey}/{device_id}/cmd"


def cmdexe_topic(apikey: str, device_id: str) -> str:
    return f"/{apikey}/{device_id}/cmdexe"


def http_path(protocol: Protocol) -> str:
    return "/iot/d" if protocol == "UL" else "/iot/json"


def content_type(protocol: Protocol) -> str:
    return "text/plain" if protocol == "UL" else "application/json"


def _ul_value(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    # '|' separates fields and '#' starts a second measure group in UL: neither may appear.
    return str(value).replace("|", "/").replace("#", "")


def encode_measures(kind: Kind, measures: Mapping[str, Any]) -> bytes:
    """One measure message for a device of ``kind``; attributes absent from ``measures`` are
    left out, attributes unknown to the kind are refused (explicitAttrs would drop them)."""
    by_name = {a.name: a.object_id for a in kind.attrs}
    unknown = set(measures) - set(by_name)
    if unknown:
        raise ValueError(f"{kind.slug} has no attribute {', '.join(sorted(unknown))}")
    if kind.protocol == "UL":
        return "|".join(f"{by_name[name]}|{_ul_value(value)}"
                        for name, value in measures.items()).encode()
    return json.dumps({by_name[name]: value for name, value in measures.items()},
                      ensure_ascii=False, separators=(",", ":")).encode()


def decode_measures(kind: Kind, payload: bytes) -> dict[str, str | Any]:
    """Inverse of :func:`encode_measures`, by attribute name (UL values stay strings)."""
    by_id = {a.object_id: a.name for a in kind.attrs}
    if kind.protocol == "UL":
        parts = payload.decode().split("|")
        if len(parts) % 2:
            raise ValueError(f"odd number of UL fields: {payload!r}")
        return {by_id[parts[k]]: parts[k + 1] for k in range(0, len(parts), 2)}
    body = json.loads(payload)
    if not isinstance(body, dict):
        raise TypeError("a JSON measure must be an object")
    return {by_id[key]: value for key, value in body.items()}


def decode_commands(protocol: Protocol, device_id: str,
                    payload: bytes | bytearray) -> list[tuple[str, str]]:
    """(command, parameter) pairs of a command message addressed to ``device_id``."""
    text = payload.decode("utf-8", errors="replace").strip()
    if protocol == "UL":
        target, _, rest = text.partition("@")
        command, _, param = rest.partition("|")
        if target != device_id or not command:
            raise ValueError(f"not a UL command for {device_id}: {text!r}")
        # Only the first parameter counts: none of the simulated commands takes two.
        return [(command, param.split("|")[0])]
    body = json.loads(text)
    if not isinstance(body, dict) or not body:
        raise ValueError(f"not a JSON command: {text!r}")
    return [(command, _json_param(value)) for command, value in body.items()]


def _json_param(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def encode_reply(protocol: Protocol, device_id: str,
                 results: list[tuple[str, str | None]]) -> bytes:
    """The ``cmdexe`` message for (command, error or None) results."""
    def status(error: str | None) -> str:
        return "OK" if error is None else f"ERROR: {error}".replace("|", "/")

    if protocol == "UL":
        command, error = results[0]
        return f"{device_id}@{command}|{status(error)}".encode()
    return json.dumps({command: status(error) for command, error in results},
                      separators=(",", ":")).encode()
