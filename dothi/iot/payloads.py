"""Device payload formats of FIWARE IoT Agents: UltraLight 2.0 and IoTA-JSON.

Everything here is pure: bytes or text in, Python values out (or bytes for commands).
Measures are returned as a list of *measure groups*, each a mapping of measure name to
value, to be applied in order; a group's ``TimeInstant``, when present, is its timestamp.

MQTT topics these payloads travel on:

- ``/{apikey}/{device}/attrs``: several measures (:func:`parse_ultralight`,
  :func:`parse_json_measures`);
- ``/{apikey}/{device}/attrs/{attr}``: one measure (:func:`parse_single`);
- ``/{apikey}/{device}/cmd``: a command to the device (:func:`format_command`);
- ``/{apikey}/{device}/cmdexe``: the device's acknowledgement (:func:`parse_command_ack`,
  :func:`ultralight_ack_device`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import orjson

Protocol = Literal["JSON", "UL"]

TIME_INSTANT = "TimeInstant"

_UL_KEY = re.compile(r"[A-Za-z0-9_.:-]+")
# A date, then the time separator: fromisoformat alone would also take a bare date.
_DATE_TIME_START = re.compile(r"\d{4}-?\d{2}-?\d{2}[Tt]")
# Newlines too: acknowledgements are one per line, so a parameter must not span lines.
_UL_RESERVED = re.compile(r"[|#@\r\n]")
_UL_ACK = re.compile(r"([^@|\s]+)@([^@|\s]+)\|(.*)")
_PROTOCOL = re.compile(
    r"(?:iota[-_ ]?)?(?:(json)|(?:ul|ultra[-_ ]?light)(?:[-_ ]?v?2(?:\.0)?)?)", re.IGNORECASE)


class MalformedPayload(ValueError):
    """A device sent a payload that does not follow its protocol; the message says why."""


def normalise_protocol(text: str) -> Protocol:
    """``"JSON"`` or ``"UL"`` for the names provisioning documents use (``IoTA-JSON``,
    ``json``, ``IoTA-UL``, ``UltraLight``, ``UL2.0``...), case-insensitively."""
    match = _PROTOCOL.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"unknown IoT protocol {text!r}: expected JSON or UltraLight (UL)")
    return "JSON" if match.group(1) else "UL"


# --- measures ----------------------------------------------------------------------------

def parse_ultralight(text: str) -> list[dict[str, str]]:
    """Measure groups of an UltraLight 2.0 payload such as
    ``2024-05-01T10:00:00Z|t|21.5|h|40#t|22``.

    Groups are separated by ``#`` and are ``key|value`` pairs; a group with an odd number
    of fields starts with its ISO 8601 timestamp, returned as ``TimeInstant``. Values stay
    strings, untrimmed: typing them is the attribute mapping's job.
    """
    body = text.strip()
    if not body:
        raise MalformedPayload("empty UltraLight payload")
    groups: list[dict[str, str]] = []
    for number, group in enumerate(body.split("#"), 1):
        where = f"UltraLight measure group {number}"
        if not group.strip():
            raise MalformedPayload(f"{where} is empty")
        fields = group.split("|")
        measures: dict[str, str] = {}
        if len(fields) % 2:
            stamp = fields.pop(0)
            if not _is_date_time(stamp):
                raise MalformedPayload(
                    f"{where}: {stamp!r} is not an ISO 8601 date-time (a group with an odd "
                    "number of fields must start with its timestamp)")
            measures[TIME_INSTANT] = stamp
            if not fields:
                raise MalformedPayload(f"{where} has a timestamp but no measures")
        for key, value in zip(fields[::2], fields[1::2]):
            if not key:
                raise MalformedPayload(f"{where} has an empty key")
            if not _UL_KEY.fullmatch(key):
                raise MalformedPayload(
                    f"{where}: key {key!r} has characters outside [A-Za-z0-9_.:-]")
            if key in measures:
                raise MalformedPayload(f"{where} has the key {key!r} twice")
            measures[key] = value
        groups.append(measures)
    return groups


def parse_json_measures(raw: bytes | str) -> list[dict[str, Any]]:
    """Measure groups of an IoTA-JSON payload: one object, or a non-empty array of objects
    applied in order. Values keep their JSON types."""
    data = _load_json(raw, "JSON measures")
    if isinstance(data, dict):
        items, label = [data], "JSON measures"
    elif isinstance(data, list):
        if not data:
            raise MalformedPayload("JSON measures: the array is empty")
        items, label = data, "JSON measures item [{}]"
    else:
        raise MalformedPayload(
            f"JSON measures must be an object or an array of objects, not {_kind(data)}")
    for index, item in enumerate(items):
        where = label.format(index)
        if not isinstance(item, dict):
            raise MalformedPayload(f"{where} is {_kind(item)}, not an object")
        _check_names(item, where)
    return items


def parse_single(protocol: str, attr: str, raw: bytes) -> dict[str, Any]:
    """The one measure of topic ``/{apikey}/{device}/attrs/{attr}``, as ``{attr: value}``.

    JSON payloads give their JSON value, except that text which is not JSON is taken as a
    string (devices often publish ``21.5`` but also ``on``); UltraLight gives the text.
    Either way surrounding whitespace is dropped from text.
    """
    if not attr or any(char.isspace() for char in attr):
        raise MalformedPayload(f"invalid measure name {attr!r} in the topic")
    if normalise_protocol(protocol) == "JSON":
        try:
            return {attr: orjson.loads(raw)}
        except orjson.JSONDecodeError:
            pass
    return {attr: _decode(raw).strip()}


# --- commands ----------------------------------------------------------------------------

def format_command(protocol: str, device_id: str, name: str, value: Any) -> bytes:
    """The payload published on ``/{apikey}/{device_id}/cmd`` to run command ``name``.

    JSON: ``{"<name>": value}``. UltraLight: ``<device_id>@<name>`` followed by one
    ``|param`` per list item, ``|key=value`` per mapping entry, none for ``None`` and one
    for a scalar (booleans as ``true``/``false``). Raises ValueError for what the protocol
    cannot carry, such as ``|``, ``#`` or ``@`` inside an UltraLight parameter.
    """
    if not name:
        raise ValueError("command name must not be empty")
    if normalise_protocol(protocol) == "JSON":
        try:
            return orjson.dumps({name: value})
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"command {name!r}: value cannot be encoded as JSON: {exc}"
                             ) from None
    head = f"{_ul_safe(device_id, 'device id')}@{_ul_safe(name, 'command name')}"
    if value is None:
        params: list[str] = []
    elif isinstance(value, (list, tuple)):
        params = [_ul_param(item) for item in value]
    elif isinstance(value, Mapping):
        params = [f"{_ul_key(key)}={_ul_param(item)}" for key, item in value.items()]
    else:
        params = [_ul_param(value)]
    return "|".join([head, *params]).encode()


def parse_command_ack(protocol: str, raw: bytes) -> dict[str, Any]:
    """The results a device reports on ``/{apikey}/{device_id}/cmdexe``, as
    ``{command: result}``.

    JSON: an object of one or more ``"command": result`` members. UltraLight: lines of
    ``<device_id>@<command>|<result>`` (the result may be empty, and is kept as the text
    after the first ``|``). The device id of an UltraLight acknowledgement is not part
    of the result: :func:`ultralight_ack_device` reads it.
    """
    if normalise_protocol(protocol) == "JSON":
        data = _load_json(raw, "JSON command acknowledgement")
        if not isinstance(data, dict):
            raise MalformedPayload(f"JSON command acknowledgement must be an object, "
                                   f"not {_kind(data)}")
        _check_names(data, "JSON command acknowledgement")
        return data
    return {name: result for _, name, result in _ul_acks(raw)}


def ultralight_ack_device(raw: bytes | str) -> str:
    """The device id an UltraLight acknowledgement names (the same on all its lines)."""
    return _ul_acks(raw)[0][0]


# --- helpers -----------------------------------------------------------------------------

def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise MalformedPayload(f"payload is not valid UTF-8 (byte {exc.start})") from None


def _load_json(raw: bytes | str, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"{what}: invalid JSON: {exc}") from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _check_names(item: dict[str, Any], where: str) -> None:
    if not item:
        raise MalformedPayload(f"{where} is an empty object")
    for key in item:
        if not key:
            raise MalformedPayload(f"{where} has an empty key")
        if any(char.isspace() for char in key):
            raise MalformedPayload(f"{where}: key {key!r} contains whitespace")


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME_START.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _ul_safe(text: str, what: str) -> str:
    reserved = _UL_RESERVED.search(text)
    if reserved is not None:
        raise ValueError(f"UltraLight cannot encode {reserved.group()!r} in {what} {text!r}")
    return text


def _ul_key(key: Any) -> str:
    if not isinstance(key, str) or not key or "=" in key:
        raise ValueError(f"UltraLight cannot encode {key!r} as a parameter name")
    return _ul_safe(key, "parameter name")


def _ul_param(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return _ul_safe(str(value), "parameter")
    raise ValueError(f"UltraLight cannot encode {_kind(value)} as a command parameter")


def _ul_acks(raw: bytes | str) -> list[tuple[str, str, str]]:
    acks: list[tuple[str, str, str]] = []
    for number, line in enumerate(_decode(raw).splitlines(), 1):
        if not line.strip():
            continue
        match = _UL_ACK.fullmatch(line.strip())
        if match is None:
            raise MalformedPayload(f"UltraLight acknowledgement line {number}: {line!r} is "
                                   "not '<device_id>@<command>|<result>'")
        device, name, result = match.groups()
        if acks and device != acks[0][0]:
            raise MalformedPayload(f"UltraLight acknowledgement line {number} is for device "
                                   f"{device!r}, not {acks[0][0]!r}")
        acks.append((device, name, result))
    if not acks:
        raise MalformedPayload("empty UltraLight command acknowledgement")
    return acks
