"""Device measures to NGSI-LD attributes: names through the device's mappings, values
typed, units as UN/CEFACT codes, expressions applied, ``observedAt`` from the measure's
``TimeInstant`` (a local time read in the device's time zone) or from when it arrived.

Everything here is pure and raises ``MeasureError`` on the first value it cannot take, so
a message is either turned whole into attributes or refused whole."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dothi.iot.config import (
    BOOLEAN,
    DATETIME,
    GEO,
    INTEGER,
    NUMBER,
    RELATIONSHIP,
    TEXT,
    Binding,
    Mapping,
)
from dothi.iot.expressions import ExpressionError
from dothi.ngsild.entity import is_uri

TIME_KEYS = ("TimeInstant", "timestamp")


class MeasureError(ValueError):
    """A measure that cannot become an attribute: the message is refused whole."""


def to_attributes(binding: Binding, measures: dict[str, Any], received: datetime,
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One measure group as (NGSI-LD attribute fragment, keyValues of the same) — the
    second is what schema validation looks at."""
    observed = received
    for key in TIME_KEYS:
        if key in measures:
            observed = _timestamp(measures[key], binding)
            break
    observed_at = observed.astimezone(UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")
    context: dict[str, Any] | None = None
    if binding.needs_context:
        context = {k: _auto(v) for k, v in measures.items()}
    fragment: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for key, raw in measures.items():
        if key in TIME_KEYS:
            continue
        mapping = binding.mappings.get(key)
        if mapping is None:
            mapping = Mapping(key, "Property", None, None)
        name = mapping.name
        if binding.explicit is not None and name not in binding.explicit:
            continue
        if name in ("id", "type", "@context") or name in binding.commands:
            raise MeasureError(f"measure {key!r} may not write the reserved attribute {name}")
        value = raw
        if mapping.expression is not None:
            try:
                value = mapping.expression.evaluate(
                    context if context is not None else {key: _auto(raw)})
            except ExpressionError as exc:
                raise MeasureError(f"measure {key!r}: expression failed: {exc}") from None
            if value is None:
                continue  # an expression may drop a measure, as in the IoT Agents
        attr, plain = _attribute(name, mapping, value)
        if mapping.type not in GEO and mapping.type not in RELATIONSHIP:
            attr["observedAt"] = observed_at
        if mapping.unit:
            attr["unitCode"] = mapping.unit
        fragment[name] = attr
        values[name] = plain
    return fragment, values


def static_attributes(binding: Binding) -> dict[str, Any]:
    """The static attributes as an NGSI-LD fragment (written when the device is
    provisioned)."""
    out: dict[str, Any] = {}
    for static in binding.statics:
        attr, _ = _attribute(static.name, Mapping(static.name, static.type, static.unitCode,
                                                  None), static.value)
        if static.unitCode:
            attr["unitCode"] = static.unitCode
        out[static.name] = attr
    return out


def _attribute(name: str, mapping: Mapping, value: Any) -> tuple[dict[str, Any], Any]:
    kind = mapping.type
    try:
        if kind in NUMBER:
            number = _number(value)
            return {"type": "Property", "value": number}, number
        if kind in INTEGER:
            integer = _integer(value)
            return {"type": "Property", "value": integer}, integer
        if kind in TEXT:
            text = value if isinstance(value, str) else str(value)
            return {"type": "Property", "value": text}, text
        if kind in BOOLEAN:
            flag = _boolean(value)
            return {"type": "Property", "value": flag}, flag
        if kind in DATETIME:
            when = _iso(value)
            return {"type": "Property", "value": {"@type": "DateTime", "@value": when}}, when
        if kind in GEO:
            geometry = _geometry(value, kind)
            return {"type": "GeoProperty", "value": geometry}, geometry
        if kind in RELATIONSHIP:
            if not isinstance(value, str) or not is_uri(value):
                raise MeasureError(f"{value!r} is not an entity id (URI)")
            return {"type": "Relationship", "object": value}, value
    except (TypeError, ValueError) as exc:
        raise MeasureError(f"attribute {name} ({kind}): {exc}") from None
    if value is None:
        raise MeasureError(f"attribute {name}: null is not a value")
    plain = _auto(value)
    return {"type": "Property", "value": plain}, plain


def _auto(value: Any) -> Any:
    """An untyped UltraLight value is a string; one that reads as a number is taken as
    one, as the IoT Agents' JSON-minded users expect."""
    if isinstance(value, str):
        try:
            return int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            return value
    return value


def _number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        number = float(value.strip())
    else:
        raise ValueError(f"{value!r} is not a number")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError(f"{value!r} is not an integer")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "on", "yes"):
        return True
    if text in ("false", "0", "off", "no"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Epoch seconds or, past year 33658, milliseconds.
        seconds = value / 1000 if value > 1e12 else value
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date-time")
    return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))


def _iso(value: Any) -> str:
    when = _parse_time(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(value: Any, binding: Binding) -> datetime:
    try:
        when = _parse_time(value)
    except (TypeError, ValueError):
        raise MeasureError(f"TimeInstant {value!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=binding.tz)
    return when


def _geometry(value: Any, kind: str) -> dict[str, Any]:
    if kind == "geo:point" or (isinstance(value, str) and not value.lstrip().startswith("{")):
        # The IoT Agents' geo:point is "latitude, longitude".
        parts = [p.strip() for p in str(value).split(",")]
        if len(parts) != 2:
            raise ValueError(f"{value!r} is not 'latitude, longitude'")
        lat, lon = float(parts[0]), float(parts[1])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{value!r} is outside WGS 84 latitude/longitude")
        return {"type": "Point", "coordinates": [lon, lat]}
    if isinstance(value, str):
        import orjson

        value = orjson.loads(value)
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError(f"{value!r} is not a GeoJSON geometry")
    return value
