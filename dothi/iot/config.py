"""Provisioning documents of the IoT side, in the shape FIWARE IoT Agents use (service groups
under ``/iot/services``, devices under ``/iot/devices``), and the effective configuration of
one device (its ``Binding``): what the group gives, overridden by what the device says.

Field names are the IoT Agents' own (``apikey``, ``entity_type``, ``object_id``,
``static_attributes``, ``explicitAttrs``...), so provisioning scripts written for them work
here; dothi's additions are ``autoprovision`` (off by default: unknown devices are refused),
``schema_validation``/``schema`` (Smart Data Models checks) and ``silent_after`` (health).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dothi.errors import BadRequestData
from dothi.iot.expressions import Expression, ExpressionError, compile_expression
from dothi.iot.payloads import normalise_protocol
from dothi.ngsild.entity import is_uri

KEY = r"^[A-Za-z0-9_\-.:]{1,128}$"
NAME = r"^[A-Za-z_][A-Za-z0-9_\-.:]{0,127}$"
DEFAULT_SILENT_AFTER = 600.0

# Value types an attribute mapping may name: the IoT Agents' NGSI-v2 names plus NGSI-LD's.
NUMBER = {"Number", "Float", "Double"}
INTEGER = {"Integer", "Int"}
TEXT = {"Text", "String"}
BOOLEAN = {"Boolean", "Bool"}
DATETIME = {"DateTime", "ISO8601"}
GEO = {"geo:json", "GeoProperty", "geo:point"}
RELATIONSHIP = {"Relationship"}
ANY = {"Property", "StructuredValue", "Object", "Array", "command", "None"}
VALUE_TYPES = NUMBER | INTEGER | TEXT | BOOLEAN | DATETIME | GEO | RELATIONSHIP | ANY


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AttributeMapping(_Doc):
    """A measured attribute: the device's short ``object_id`` becomes ``name``."""

    object_id: str | None = Field(default=None, pattern=KEY)
    name: str = Field(pattern=NAME)
    type: str = "Property"
    unitCode: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,6}$")
    expression: str | None = Field(default=None, max_length=1000)
    # The IoT Agents' NGSI-v2 form of a unit: {"unitCode": {"type": "Text", "value": "CEL"}}.
    metadata: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in VALUE_TYPES:
            raise ValueError(f"unknown attribute type {value!r}; one of "
                             + ", ".join(sorted(VALUE_TYPES)))
        return value

    def unit(self) -> str | None:
        if self.unitCode:
            return self.unitCode
        meta = (self.metadata or {}).get("unitCode")
        if isinstance(meta, dict) and isinstance(meta.get("value"), str):
            return str(meta["value"])
        return None


class StaticAttribute(_Doc):
    name: str = Field(pattern=NAME)
    type: str = "Property"
    value: Any
    unitCode: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,6}$")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return AttributeMapping._known_type(value)


class NamedAttribute(_Doc):
    """A command or lazy attribute."""

    name: str = Field(pattern=NAME)
    type: str = "command"
    expression: str | None = None


class _Common(_Doc):
    entity_type: str | None = Field(default=None, pattern=NAME)
    protocol: str | None = None
    transport: Literal["MQTT", "HTTP"] | None = None
    timezone: str | None = None
    attributes: list[AttributeMapping] = []
    static_attributes: list[StaticAttribute] = []
    commands: list[NamedAttribute] = []
    lazy: list[NamedAttribute] = []
    explicitAttrs: bool | list[str] | None = None
    silent_after: float | None = Field(default=None, gt=0, le=31 * 86400)
    description: str | None = Field(default=None, max_length=2000)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str | None) -> str | None:
        return None if value is None else normalise_protocol(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (an IANA name such as "
                                 "Asia/Ho_Chi_Minh)") from None
        return value


class ServiceGroup(_Common):
    apikey: str = Field(pattern=KEY)
    entity_type: str = Field(pattern=NAME)
    resource: str = "/iot/d"
    # Accepted for compatibility with IoT Agent provisioning scripts; the broker is this one.
    cbroker: str | None = None
    autoprovision: bool = False
    schema_validation: Literal["off", "report", "reject"] = "off"
    schema_: str | None = Field(default=None, alias="schema", pattern=r"^[A-Za-z]+(/[A-Za-z]+)?$")


class DeviceConfig(_Common):
    device_id: str = Field(pattern=KEY)
    apikey: str | None = Field(default=None, pattern=KEY)
    entity_name: str | None = None
    # Where commands to an HTTP device are POSTed.
    endpoint: str | None = Field(default=None, pattern=r"^https?://")

    @field_validator("entity_name")
    @classmethod
    def _entity_name(cls, value: str | None) -> str | None:
        if value is not None and not is_uri(value):
            raise ValueError(f"entity_name must be a URI, got {value!r}")
        return value


def parse_documents(model: type[ServiceGroup] | type[DeviceConfig], body: Any,
                    key: str) -> list[Any]:
    """``{"services": [...]}`` or ``{"devices": [...]}`` into validated documents; the
    first invalid one fails the whole request with every problem it has."""
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise BadRequestData(f'The body must be {{"{key}": [ ... ]}} with at least one item')
    out = []
    for n, item in enumerate(body[key]):
        out.append(parse_document(model, item, f"{key}[{n}]"))
    return out


def parse_document(model: type[ServiceGroup] | type[DeviceConfig], item: Any,
                   where: str) -> Any:
    try:
        doc = model.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(item)'}: {err['msg']}"
            for err in exc.errors())
        raise BadRequestData(f"{where}: {problems}") from None
    for mapping in doc.attributes:
        if mapping.expression:
            try:
                compile_expression(mapping.expression)
            except ExpressionError as exc:
                raise BadRequestData(
                    f"{where}: attribute {mapping.name}: bad expression: {exc}") from None
    return doc


def dump(doc: BaseModel) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


# -- the effective configuration of one device --------------------------------------------


@dataclass(frozen=True)
class Mapping:
    name: str
    type: str
    unit: str | None
    expression: Expression | None


@dataclass
class Binding:
    """What a message from one device becomes: resolved once per provisioning change,
    used for every message."""

    tenant: str
    apikey: str
    device_id: str
    entity_id: str
    entity_type: str
    protocol: str  # "JSON" or "UL"
    transport: str  # "MQTT" or "HTTP"
    tz: ZoneInfo
    mappings: dict[str, Mapping]  # object_id (or name) -> mapping
    explicit: frozenset[str] | None  # None: every measure passes; else only these names
    statics: list[StaticAttribute]
    commands: dict[str, NamedAttribute]
    lazy: list[NamedAttribute]
    schema_validation: str
    schema: str | None
    silent_after: float
    endpoint: str | None
    needs_context: bool = False  # an expression reads other measures

    @property
    def device_entity(self) -> str:
        return device_entity_id(self.device_id)


DEVICE_PREFIX = "urn:ngsi-ld:Device:"


def device_entity_id(device_id: str) -> str:
    return DEVICE_PREFIX + device_id


def device_of(entity_id: str) -> str:
    return entity_id.removeprefix(DEVICE_PREFIX)


def group_entity_id(apikey: str) -> str:
    return f"urn:ngsi-ld:IotServiceGroup:{apikey}"


def default_entity_name(entity_type: str, device_id: str) -> str:
    return f"urn:ngsi-ld:{entity_type}:{device_id}"


def bind(tenant: str, group: ServiceGroup | None, device: DeviceConfig) -> Binding:
    """The device's settings over its group's; attribute lists are merged by name (the
    device's mapping of a name wins)."""
    etype = device.entity_type or (group.entity_type if group else None)
    if etype is None:
        raise BadRequestData(f"Device {device.device_id} has no entity_type and no group")
    apikey = device.apikey or (group.apikey if group else None)
    if apikey is None:
        raise BadRequestData(f"Device {device.device_id} has no apikey and no group")

    def merged(attr: str) -> list[Any]:
        by_name: dict[str, Any] = {}
        for source in (group, device):
            if source is not None:
                for item in getattr(source, attr):
                    by_name[item.name] = item
        return list(by_name.values())

    mappings: dict[str, Mapping] = {}
    needs_context = False
    for m in merged("attributes"):
        expression = compile_expression(m.expression) if m.expression else None
        if expression is not None and expression.names - {m.object_id or m.name}:
            needs_context = True
        mappings[m.object_id or m.name] = Mapping(m.name, m.type, m.unit(), expression)
    explicit_setting = device.explicitAttrs if device.explicitAttrs is not None else (
        group.explicitAttrs if group else None)
    explicit: frozenset[str] | None = None
    if explicit_setting is True:
        explicit = frozenset(m.name for m in mappings.values())
    elif isinstance(explicit_setting, list):
        explicit = frozenset(explicit_setting)
    tz_name = device.timezone or (group.timezone if group else None) or "UTC"
    protocol = device.protocol or (group.protocol if group else None) or (
        "JSON" if group and group.resource.endswith("json") else "UL")
    return Binding(
        tenant=tenant, apikey=apikey, device_id=device.device_id,
        entity_id=device.entity_name or default_entity_name(etype, device.device_id),
        entity_type=etype, protocol=protocol,
        transport=device.transport or (group.transport if group else None) or "MQTT",
        tz=ZoneInfo(tz_name), mappings=mappings, explicit=explicit,
        statics=merged("static_attributes"),
        commands={c.name: c for c in merged("commands")}, lazy=merged("lazy"),
        schema_validation=group.schema_validation if group else "off",
        schema=group.schema_ if group else None,
        silent_after=device.silent_after or (group.silent_after if group else None)
        or DEFAULT_SILENT_AFTER,
        endpoint=device.endpoint, needs_context=needs_context)

