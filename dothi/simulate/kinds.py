"""The kinds of simulated device: what each measures, in which protocol, with which commands.

Attribute names and units follow the FIWARE Smart Data Models; unit codes are UN/CEFACT
common codes (CEL degree Celsius, MTR metre, GQ microgram and GP milligram per cubic metre,
KMH kilometre per hour, WTT watt, KWH kilowatt hour, HTZ hertz, MMT millimetre). Ratios
(filling level, occupancy, relative humidity, battery level) are plain numbers in 0..1, as
the models define them, so they carry no unit code.

Street lights and waste bins speak UltraLight 2.0 with short object ids, as cheap LoRa/NB-IoT
nodes do; every other kind speaks JSON with the attribute names as keys. Both protocols thus
get exercised by one simulation.

Sluice gates have no Smart Data Model of their own; they are ``SluiceGate`` entities (not
``Device``, the type dothi's IoT side gives every provisioned device for its health):
``gateState`` is ``open`` or ``closed`` and ``waterLevel`` (metres) is the depth of water
ponded on the city side of the gate, which drops while the gate is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Protocol = Literal["UL", "JSON"]


@dataclass(frozen=True)
class Attr:
    object_id: str
    name: str
    type: str  # Number, Integer, Text, Boolean, DateTime, geo:json or Relationship
    unit: str | None = None

    def group_entry(self) -> dict[str, str]:
        entry = {"object_id": self.object_id, "name": self.name, "type": self.type}
        if self.unit is not None:
            entry["unitCode"] = self.unit
        return entry


@dataclass(frozen=True)
class Kind:
    slug: str  # in apikeys and entity ids: dn-streetlight, danang-streetlight-sim-0131
    prefix: str  # device ids: sl-0001
    entity_type: str
    protocol: Protocol
    attrs: tuple[Attr, ...]
    commands: tuple[str, ...] = ()
    label: str = ""  # human name, for the device's ``name``

    def attr(self, name: str) -> Attr:
        return next(a for a in self.attrs if a.name == name)


def _json(*attrs: tuple[str, str, str | None]) -> tuple[Attr, ...]:
    # JSON devices key their payloads by the attribute names themselves.
    return tuple(Attr(name, name, type_, unit) for name, type_, unit in attrs)


STREETLIGHT = Kind(
    "streetlight", "sl", "Streetlight", "UL",
    (Attr("ps", "powerState", "Text"),  # on / low / off
     Attr("l", "illuminanceLevel", "Number"),
     Attr("p", "powerConsumption", "Number", "WTT"),
     Attr("st", "status", "Text")),
    commands=("dim", "switch"), label="Streetlight")

WASTE = Kind(
    "waste", "wc", "WasteContainer", "UL",
    (Attr("f", "fillingLevel", "Number"),
     Attr("t", "temperature", "Number", "CEL"),
     Attr("st", "status", "Text"),
     Attr("b", "batteryLevel", "Number"),
     Attr("e", "dateLastEmptying", "DateTime")),
    label="Waste container")

TRAFFIC = Kind(
    "traffic", "tf", "TrafficFlowObserved", "JSON",
    _json(("intensity", "Integer", None),  # vehicles counted in the last 5 minutes
          ("occupancy", "Number", None),
          ("averageVehicleSpeed", "Number", "KMH"),
          ("congested", "Boolean", None),
          ("dateObserved", "DateTime", None)),
    label="Traffic counter")

ENERGY = Kind(
    "energy", "em", "ACMeasurement", "JSON",
    _json(("totalActivePower", "Number", "WTT"),
          ("totalActiveEnergyImport", "Number", "KWH"),
          ("frequency", "Number", "HTZ"),
          ("dateObserved", "DateTime", None)),
    label="Energy meter")

AIR = Kind(
    "air", "aq", "AirQualityObserved", "JSON",
    _json(("pm25", "Number", "GQ"),
          ("pm10", "Number", "GQ"),
          ("no2", "Number", "GQ"),
          ("o3", "Number", "GQ"),
          ("co", "Number", "GP"),  # mg/m³, as the demo city has it
          ("temperature", "Number", "CEL"),
          ("relativeHumidity", "Number", None),
          ("dateObserved", "DateTime", None)),
    label="Air quality station")

FLOOD = Kind(
    "flood", "fl", "FloodMonitoring", "JSON",
    _json(("currentLevel", "Number", "MTR"),
          ("measuredDistance", "Number", "MTR"),
          ("floodLevelStatus", "Text", None),  # Normal / Alert / Danger, as the demo city
          ("batteryLevel", "Number", None),
          ("observationDateTime", "DateTime", None)),
    label="Flood gauge")

RAIN = Kind(
    "rain", "rg", "WeatherObserved", "JSON",
    _json(("precipitation", "Number", "MMT"),  # millimetres in the past hour
          ("temperature", "Number", "CEL"),
          ("relativeHumidity", "Number", None),
          ("dateObserved", "DateTime", None)),
    label="Rain gauge")

GATE = Kind(
    "gate", "sg", "SluiceGate", "JSON",
    _json(("gateState", "Text", None),  # open / closed
          ("waterLevel", "Number", "MTR"),
          ("dateObserved", "DateTime", None)),
    commands=("gate",), label="Sluice gate")

# Most numerous first: the order in which a city's devices are listed and provisioned.
KINDS: tuple[Kind, ...] = (STREETLIGHT, WASTE, TRAFFIC, ENERGY, AIR, FLOOD, RAIN, GATE)
KIND_BY_SLUG = {kind.slug: kind for kind in KINDS}
