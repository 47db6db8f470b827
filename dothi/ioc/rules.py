"""Rules that turn data into incidents, kept as data: YAML rule packs shipped per domain
(``dothi/ioc/packs``) and rules added through ``/ioc/rules``. A rule watches one
attribute of one entity type:

    id: flood-station-alert
    entityType: FloodMonitoring
    attribute: currentLevel
    above: {attribute: alertLevel}   # or a number; or below: ...; or equals: ...
    clear: {attribute: alertLevel, offset: -0.2}   # hysteresis: back to normal only here
    for: PT10M                       # the condition must have held this long
    category: flooding
    severity: high
    title: {vi: "...{name}...", en: "...{value}..."}

``above``/``below`` compare numbers and ``equals`` any value; a threshold may be another
attribute of the same entity (plus an ``offset``), as flood stations carry their own alert
and danger levels. ``rises``/``falls`` (``{by: 0.3, within: PT30M}``) compare the value
with the one in force that long before it, read from history. ``for`` is an ISO 8601
duration read from the attribute's history, so any server process can judge it. ``clear``
is where the condition ends: after an incident is resolved, the rule opens a new one only
once the value has been back past ``clear``. ``together: {atLeast: 3, in: AdministrativeArea}``
turns the rule into an area rule: it fires when at least that many entities inside one area
(an entity of that type whose polygon holds them) meet the condition at once, and opens one
incident for the area, not one per entity. ``enters: AreaType`` or ``leaves: AreaType`` is a
geofence on a GeoProperty attribute: it fires when the entity moves into (or out of) an
area of that type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dothi.errors import BadRequestData

PACKS = Path(__file__).with_name("packs")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True)
class Threshold:
    value: float | None = None
    attribute: str | None = None
    offset: float = 0.0

    def resolve(self, read: Any) -> float | None:
        """The threshold for one entity; ``read(name)`` gives one of its values."""
        if self.attribute is None:
            return self.value
        base = read(self.attribute)
        if not isinstance(base, int | float) or isinstance(base, bool):
            return None
        return float(base) + self.offset


@dataclass(frozen=True)
class Rate:
    by: float  # at least this much change (positive: rises; negative: falls)
    within_seconds: int


@dataclass(frozen=True)
class Together:
    at_least: int
    area_type: str


@dataclass(frozen=True)
class Geofence:
    enters: bool  # False: leaves
    area_type: str


@dataclass(frozen=True)
class Rule:
    id: str
    entity_type: str
    attribute: str
    category: str
    severity: str
    title: dict[str, str]
    above: Threshold | None = None
    below: Threshold | None = None
    equals: Any = None
    clear: Threshold | None = None
    for_seconds: int = 0
    rate: Rate | None = None
    together: Together | None = None
    geofence: Geofence | None = None
    sub_category: str | None = None
    agency: str | None = None
    pack: str | None = None  # the shipped pack it came from, None for the API's
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def fires(self, value: Any, read: Any, earlier: Any = None) -> bool:
        if self.geofence is not None:
            return False  # judged by where the entity was and is (RuleEngine)
        return self._meets(value, read, earlier)

    def _meets(self, value: Any, read: Any, earlier: Any) -> bool:
        """Whether ``value`` meets the condition (``read`` gives the entity's others;
        ``earlier`` is, for a rate rule, the value in force ``within`` before)."""
        if self.rate is not None:
            if not all(isinstance(v, int | float) and not isinstance(v, bool)
                       for v in (value, earlier)):
                return False
            change = value - earlier
            return change >= self.rate.by if self.rate.by > 0 else change <= self.rate.by
        if self.equals is not None:
            return bool(value == self.equals)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if self.above is not None:
            limit = self.above.resolve(read)
            return limit is not None and value > limit
        assert self.below is not None
        limit = self.below.resolve(read)
        return limit is not None and value < limit

    def cleared(self, value: Any, read: Any) -> bool:
        """Whether ``value`` is back to normal: past ``clear`` if given, else simply not
        meeting the condition (a rate rule or a geofence is back to normal once its
        incident ends)."""
        if self.rate is not None or self.geofence is not None:
            return True
        if self.clear is None or self.equals is not None:
            return not self.fires(value, read)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        limit = self.clear.resolve(read)
        if limit is None:
            return False
        return value <= limit if self.above is not None else value >= limit

    def text(self, lang: str, **values: Any) -> str:
        template = self.title.get(lang) or next(iter(self.title.values()))
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            return template


def parse_rule(data: Any, *, pack: str | None = None, categories: Any = (),
               severities: Any = ()) -> Rule:
    """A rule from its YAML/JSON form; BadRequestData naming what is wrong."""
    if not isinstance(data, dict):
        raise BadRequestData("A rule is an object")
    known = {"id", "entityType", "attribute", "above", "below", "equals", "clear", "for",
             "category", "severity", "subCategory", "title", "agency", "description",
             "rises", "falls", "together", "enters", "leaves"}
    unknown = set(data) - known
    if unknown:
        raise BadRequestData(f"Unknown rule members {sorted(unknown)}")
    rid = data.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise BadRequestData("A rule needs an id (letters, digits, _ . : -)")
    where = f"rule {rid}"
    for name in ("entityType", "attribute", "category", "severity"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise BadRequestData(f"{where}: {name} is required")
    if categories and data["category"] not in categories:
        raise BadRequestData(f"{where}: category must be one of {sorted(categories)}")
    if severities and data["severity"] not in severities:
        raise BadRequestData(f"{where}: severity must be one of {sorted(severities)}")
    kinds = ("above", "below", "equals", "rises", "falls", "enters", "leaves")
    conditions = [k for k in kinds if k in data]
    if len(conditions) != 1:
        raise BadRequestData(f"{where}: exactly one of {', '.join(kinds)}")
    geofence = None
    if conditions[0] in ("enters", "leaves"):
        if not isinstance(data[conditions[0]], str) or not data[conditions[0]]:
            raise BadRequestData(f"{where}: {conditions[0]} names an area type")
        if any(k in data for k in ("for", "clear", "together")):
            raise BadRequestData(f"{where}: a geofence takes no for, clear or together")
        geofence = Geofence(conditions[0] == "enters", data[conditions[0]])
    rate = None
    if conditions[0] in ("rises", "falls"):
        spec = data[conditions[0]]
        if not isinstance(spec, dict) or set(spec) != {"by", "within"} or not isinstance(
                spec["by"], int | float) or isinstance(spec["by"], bool) or spec["by"] <= 0:
            raise BadRequestData(f"{where}: {conditions[0]} is {{by: n > 0, within: PT30M}}")
        within = _seconds(spec["within"], where)
        if within <= 0 or "for" in data or "clear" in data:
            raise BadRequestData(f"{where}: {conditions[0]} needs a within, and takes no "
                                 "for or clear")
        rate = Rate(float(spec["by"]) * (1 if conditions[0] == "rises" else -1), within)
    title = data.get("title")
    if isinstance(title, str):
        title = {"en": title}
    if not isinstance(title, dict) or not title or not all(
            isinstance(v, str) for v in title.values()):
        raise BadRequestData(f"{where}: title is a text or {{vi: ..., en: ...}}")
    return Rule(
        id=rid, entity_type=data["entityType"], attribute=data["attribute"],
        category=data["category"], severity=data["severity"], title=dict(title),
        above=_threshold(data.get("above"), where, "above"),
        below=_threshold(data.get("below"), where, "below"),
        equals=data.get("equals"), clear=_threshold(data.get("clear"), where, "clear"),
        for_seconds=_seconds(data.get("for"), where), rate=rate,
        together=_together(data.get("together"), where, rate), geofence=geofence,
        sub_category=data.get("subCategory"),
        agency=data.get("agency"), pack=pack, source=dict(data))


def load_packs(folder: Path = PACKS, **vocab: Any) -> list[Rule]:
    rules: list[Rule] = []
    for path in sorted(folder.glob("*.yaml")):
        items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        for item in items:
            try:
                rules.append(parse_rule(item, pack=path.stem, **vocab))
            except BadRequestData as exc:
                raise ValueError(f"{path}: {exc.detail}") from None
    ids = [r.id for r in rules]
    twice = {i for i in ids if ids.count(i) > 1}
    if twice:
        raise ValueError(f"{folder}: rule ids used twice: {sorted(twice)}")
    return rules


def _threshold(value: Any, where: str, name: str) -> Threshold | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Threshold(value=float(value))
    if isinstance(value, dict) and isinstance(value.get("attribute"), str) and \
            set(value) <= {"attribute", "offset"} and \
            isinstance(value.get("offset", 0), int | float):
        return Threshold(attribute=value["attribute"], offset=float(value.get("offset", 0)))
    raise BadRequestData(f"{where}: {name} is a number or {{attribute: name, offset: n}}")


def _seconds(value: Any, where: str) -> int:
    if value is None:
        return 0
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or value in ("P", "PT"):
        raise BadRequestData(f"{where}: for is an ISO 8601 duration such as PT10M")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def _together(value: Any, where: str, rate: Rate | None) -> Together | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"atLeast", "in"} or not isinstance(
            value["atLeast"], int) or isinstance(value["atLeast"], bool) or \
            value["atLeast"] < 2 or not isinstance(value["in"], str) or not value["in"]:
        raise BadRequestData(f"{where}: together is {{atLeast: n >= 2, in: AreaType}}")
    if rate is not None:
        raise BadRequestData(f"{where}: together takes a threshold, not a rate")
    return Together(value["atLeast"], value["in"])
