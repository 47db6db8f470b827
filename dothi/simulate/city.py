"""The simulated device population of a city.

A :class:`City` is plain data: its outline (districts with population), the streets and the
river devices are placed along, its climate, the share of each kind of device in a real
deployment, and the entities of an existing demo that the first devices drive. Only Đà Nẵng
exists for now (:data:`CITIES`); another city is another instance of the same structure.

The first devices of each kind drive the demo city's entities (same entity id, same location),
so ``--devices 264`` drives exactly the sensors of ``dothi demo``. Devices beyond those are
generated deterministically: the n-th extra device of a kind depends only on (seed, kind, n),
so growing ``--devices`` keeps every existing device where it was and only adds new ones.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Any

from dothi.simulate import geo
from dothi.simulate.kinds import KINDS, Kind
from dothi.simulate.weather import DANANG_CLIMATE, Climate

Entity = dict[str, Any]


@dataclass(frozen=True)
class District:
    slug: str
    name: str
    ring: tuple[geo.Coord, ...]
    population: int


@dataclass(frozen=True)
class Street:
    name: str
    line: tuple[geo.Coord, ...]


@dataclass(frozen=True)
class City:
    slug: str
    name: str
    lat: float
    lon: float
    utc_offset_hours: float
    tz_name: str
    apikey_prefix: str  # service group apikeys: <prefix>-<kind>
    districts: tuple[District, ...]
    streets: tuple[Street, ...]
    river: tuple[geo.Coord, ...]  # centre line of the main river, for gauges and gates
    river_name: str
    climate: Climate
    shares: Mapping[str, float]  # kind slug -> share of a full deployment (sums to 1)
    existing: Callable[[], list[Entity]] = list  # entities the first devices drive
    hints: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # entity id -> params

    @property
    def tz(self) -> tzinfo:
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(self.tz_name)
        except (ImportError, KeyError, ValueError):  # no tz database: the fixed offset will do
            return timezone(timedelta(hours=self.utc_offset_hours), self.tz_name)

    def extent(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the districts: every device lies inside."""
        return geo.bbox([d.ring for d in self.districts])

    def district_of(self, point: geo.Coord) -> District | None:
        return next((d for d in self.districts if geo.in_ring(point, d.ring)), None)

    def apikey(self, kind: Kind) -> str:
        return f"{self.apikey_prefix}-{kind.slug}"


@dataclass(frozen=True)
class Device:
    device_id: str
    kind: Kind
    index: int  # 1-based position within its kind
    apikey: str
    entity_id: str
    name: str
    geometry: dict[str, Any]  # GeoJSON of the entity's location
    point: geo.Coord  # where the device is, for the world model
    district: str | None
    params: Mapping[str, Any]  # physical facts: rated power, capacity, river gauge or not...
    demo: bool  # drives an entity of the city's existing demo


def kind_counts(city: City, total: int) -> dict[str, int]:
    """How many devices of each kind a deployment of ``total`` devices has.

    Up to the size of the existing demo, the demo's own mix scaled down. Beyond it, the extra
    devices go to the kinds furthest below their share of ``total`` (largest remainder), so a
    large deployment has the proportions of a real city whatever the demo's mix.
    """
    demo: dict[str, int] = {k.slug: 0 for k in KINDS}
    for entity in city.existing():
        kind = _KIND_OF_TYPE.get(entity["type"])
        if kind is not None:
            demo[kind.slug] += 1
    have = sum(demo.values())
    if total <= have:
        return _apportion({k: float(v) for k, v in demo.items()}, total)
    deficits = {k: max(0.0, total * city.shares.get(k, 0.0) - demo[k]) for k in demo}
    extra = _apportion(deficits, total - have)
    return {k: demo[k] + extra[k] for k in demo}


def _apportion(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, stable on ties)."""
    mass = sum(weights.values())
    if total <= 0 or mass <= 0:
        return {k: 0 for k in weights}
    exact = {k: total * w / mass for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: (-(exact[k] - out[k]), list(weights).index(k)))
    for k in order[: total - sum(out.values())]:
        out[k] += 1
    return out


def build_population(city: City, total: int, seed: int = 1) -> list[Device]:
    """Every device of a ``total``-device deployment, grouped by kind, in kind order."""
    counts = kind_counts(city, total)
    existing: dict[str, list[Entity]] = {k.slug: [] for k in KINDS}
    for entity in city.existing():
        kind = _KIND_OF_TYPE.get(entity["type"])
        if kind is not None:
            existing[kind.slug].append(entity)
    placer = _Placer(city, seed)
    devices: list[Device] = []
    for kind in KINDS:
        for n in range(1, counts[kind.slug] + 1):
            if n <= len(existing[kind.slug]):
                devices.append(_from_entity(city, kind, n, existing[kind.slug][n - 1]))
            else:
                devices.append(placer.place(kind, n))
    return devices


_KIND_OF_TYPE = {kind.entity_type: kind for kind in KINDS}


def _device_id(kind: Kind, n: int) -> str:
    return f"{kind.prefix}-{n:04d}"


def _value(entity: Entity, attr: str, default: Any = None) -> Any:
    prop = entity.get(attr)
    if not isinstance(prop, dict):
        return default
    if prop.get("type") == "LanguageProperty":
        languages = prop.get("languageMap", {})
        return languages.get("vi") or next(iter(languages.values()), default)
    return prop.get("value", default)


def _from_entity(city: City, kind: Kind, n: int, entity: Entity) -> Device:
    geometry = entity["location"]["value"]
    coords = geometry["coordinates"]
    # A LineString (traffic detection zone) is represented by its middle vertex.
    point = tuple(coords[len(coords) // 2]) if geometry["type"] == "LineString" else tuple(coords)
    lon, lat = float(point[0]), float(point[1])
    params: dict[str, Any] = {}
    if kind.slug == "streetlight":
        params = {"status": _value(entity, "status", "ok"),
                  "rated_w": 150.0 if _value(entity, "lanternHeight", 10.0) >= 12 else 100.0,
                  "pilot_dimming": _value(entity, "powerState") == "low"}
        where = f"{_value(entity, 'streetPoleNum', '')} · {_value(entity, 'areaServed', '')}"
    elif kind.slug == "waste":
        params = {"capacity_l": _value(entity, "binCapacity", 240),
                  "origin": _value(entity, "storedWasteOrigin", "household"),
                  "waste_kind": _value(entity, "storedWasteKind", "inorganic")}
        where = str(_value(entity, "areaServed", ""))
    elif kind.slug == "flood":
        params = {"reference_m": _value(entity, "referenceLevel", 3.0),
                  "alert_m": _value(entity, "alertLevel", 0.2),
                  "danger_m": _value(entity, "dangerLevel", 0.4)}
        where = str(_value(entity, "name", ""))
    elif kind.slug == "traffic":
        where = str(_value(entity, "address", {}).get("streetAddress", ""))
    else:
        where = str(_value(entity, "areaServed", "") or _value(entity, "name", ""))
    params.update(city.hints.get(entity["id"], {}))
    district = city.district_of((lon, lat))
    return Device(
        device_id=_device_id(kind, n), kind=kind, index=n, apikey=city.apikey(kind),
        entity_id=entity["id"], name=f"{kind.label} {_device_id(kind, n)} · {where}".strip(" ·"),
        geometry=geometry, point=(lon, lat), district=district.slug if district else None,
        params=params, demo=True)


class _Placer:
    """Places the extra devices: along streets, along the river, or inside districts."""

    def __init__(self, city: City, seed: int) -> None:
        self.city = city
        self.seed = seed
        self.streets = list(city.streets) + self._side_streets()
        self.street_weights = [geo.line_length_m(s.line) for s in self.streets]
        self.district_weights = [d.population for d in city.districts]

    def _side_streets(self) -> list[Street]:
        """Straight residential streets inside each district, one per ~8 000 inhabitants, so
        lights and counters are not all crowded onto the few named boulevards."""
        rng = random.Random(f"{self.seed}:{self.city.slug}:streets")
        streets: list[Street] = []
        for district in self.city.districts:
            grid = rng.uniform(0, math.pi / 2)  # each district's street grid has its own angle
            for k in range(1, max(2, district.population // 8000) + 1):
                for _attempt in range(200):
                    centre = geo.random_point_in(district.ring, rng)
                    half = rng.uniform(150, 600)
                    angle = grid + (math.pi / 2 if rng.random() < 0.5 else 0.0)
                    a = geo.offset(centre, half * math.cos(angle), half * math.sin(angle))
                    b = geo.offset(centre, -half * math.cos(angle), -half * math.sin(angle))
                    if geo.in_ring(a, district.ring) and geo.in_ring(b, district.ring):
                        streets.append(Street(f"Kiệt {k} – {district.name}", (a, b)))
                        break
        return streets

    def place(self, kind: Kind, n: int) -> Device:
        rng = random.Random(f"{self.seed}:{self.city.slug}:{kind.slug}:{n}")
        params: dict[str, Any] = {}
        geometry: dict[str, Any] | None = None
        if kind.slug in ("streetlight", "traffic"):
            street = rng.choices(self.streets, self.street_weights)[0]
            fraction = rng.random()
            if kind.slug == "streetlight":
                point = geo.point_along(street.line, fraction, rng.choice((-12.0, 12.0)))
                roll = rng.random()
                status = ("defectiveLamp" if roll < 0.03 else "brokenLantern" if roll < 0.045
                          else "columnIssue" if roll < 0.06 else "ok")
                params = {"status": status, "rated_w": rng.choice((60.0, 100.0, 100.0, 150.0)),
                          "pilot_dimming": rng.random() < 0.15}
            else:
                # A ~160 m detection zone centred on the counter, like the demo's.
                half = 80.0 / max(geo.line_length_m(street.line), 160.0)
                fraction = min(max(fraction, half), 1 - half)
                zone = [geo.point_along(street.line, fraction + d) for d in (-half, 0.0, half)]
                point = zone[1]
                geometry = {"type": "LineString", "coordinates": [geo.rounded(p) for p in zone]}
                params = {"free_speed_kmh": rng.choice((40.0, 50.0, 50.0, 60.0))}
            where = street.name
        elif kind.slug == "gate" or (kind.slug == "flood" and rng.random() < 0.35):
            bank = rng.choice((-1.0, 1.0))
            point = geo.point_along(self.city.river, rng.uniform(0.02, 0.98), bank * 70.0)
            if kind.slug == "flood":
                reference = round(rng.uniform(6.5, 8.0), 2)
                params = {"river": True, "reference_m": reference,
                          "alert_m": round(reference - 3.2, 2),
                          "danger_m": round(reference - 2.2, 2)}
            where = self.city.river_name
        else:
            if kind.slug == "rain":  # one gauge per district before any district gets two
                district = self.city.districts[(n - 1) % len(self.city.districts)]
            else:
                district = rng.choices(self.city.districts, self.district_weights)[0]
            point = geo.random_point_in(district.ring, rng)
            where = district.name
            params = self._site_params(kind, rng)
        found = self.city.district_of(point)
        if kind.slug in ("streetlight", "traffic", "gate", "flood") and found is not None:
            where = f"{where} · {found.name}" if where != found.name else where
        if geometry is None:
            geometry = {"type": "Point", "coordinates": geo.rounded(point)}
        device_id = _device_id(kind, n)
        return Device(
            device_id=device_id, kind=kind, index=n, apikey=self.city.apikey(kind),
            entity_id=f"urn:ngsi-ld:{kind.entity_type}:{self.city.slug}-{kind.slug}-sim-{n:04d}",
            name=f"{kind.label} {device_id} · {where}", geometry=geometry, point=point,
            district=found.slug if found else None, params=params, demo=False)

    @staticmethod
    def _site_params(kind: Kind, rng: random.Random) -> dict[str, Any]:
        if kind.slug == "waste":
            origin = rng.choices(("household", "hostelry", "municipal"), (0.7, 0.2, 0.1))[0]
            return {"capacity_l": 660 if origin != "household" or rng.random() < 0.3 else 240,
                    "origin": origin,
                    "waste_kind": "organic" if origin == "hostelry"
                    else rng.choice(("organic", "inorganic", "plastic", "paper"))}
        if kind.slug == "energy":
            return {"building": rng.choices(("residential", "commercial", "public"),
                                            (0.7, 0.2, 0.1))[0]}
        if kind.slug == "air":
            return {"exposure": round(rng.uniform(0.2, 1.0), 2)}
        if kind.slug == "flood":
            reference = round(rng.uniform(2.8, 3.2), 2)
            return {"river": False, "reference_m": reference, "alert_m": 0.2, "danger_m": 0.4}
        return {}


def _danang() -> City:
    from dothi import demo

    districts = tuple(District(slug, d["vi"], tuple(d["ring"]), d["population"])
                      for slug, d in demo.DISTRICTS.items())
    streets = [Street(s["vi"], tuple(s["line"])) for s in demo.STREETS.values()]
    known = {s.line for s in streets}
    streets += [Street(name, tuple(line)) for _slug, name, line, _n, _v in demo.TRAFFIC_ROADS
                if tuple(line) not in known]
    hints: dict[str, dict[str, Any]] = {}
    for slug, _label, where, _lon, _lat in demo.FLOOD_SENSORS:
        hints[f"urn:ngsi-ld:FloodMonitoring:danang-flood-{slug}"] = {"river": where == "river"}
    for slug, _area, _lon, _lat, exposure in demo.AIR_QUALITY_STATIONS:
        hints[f"urn:ngsi-ld:AirQualityObserved:danang-aq-{slug}"] = {"exposure": exposure}
    for slug, _name, _line, counters, speed in demo.TRAFFIC_ROADS:
        for k in range(1, counters + 1):
            hints[f"urn:ngsi-ld:TrafficFlowObserved:danang-traffic-{slug}-{k:02d}"] = {
                "free_speed_kmh": speed}
    return City(
        slug="danang", name="Đà Nẵng", lat=16.05, lon=108.2, utc_offset_hours=7.0,
        tz_name="Asia/Ho_Chi_Minh", apikey_prefix="dn", districts=districts,
        streets=tuple(streets),
        # Centre line of the Hàn river from its mouth to Hòa Xuân, midway between the demo's
        # bank gauges.
        river=((108.2252, 16.0990), (108.2250, 16.0900), (108.2265, 16.0740),
               (108.2270, 16.0630), (108.2293, 16.0460), (108.2285, 16.0380),
               (108.2262, 16.0200)),
        river_name="Sông Hàn",
        climate=DANANG_CLIMATE,
        # A mature deployment: lighting and waste dominate, as in every smart-city rollout.
        shares={"streetlight": 0.56, "waste": 0.22, "traffic": 0.08, "energy": 0.07,
                "air": 0.03, "flood": 0.025, "rain": 0.008, "gate": 0.007},
        existing=functools.cache(demo.build_demo_city), hints=hints)


DANANG = _danang()
CITIES: dict[str, City] = {"danang": DANANG}


def get_city(slug: str) -> City:
    try:
        return CITIES[slug]
    except KeyError:
        raise ValueError(f"unknown city {slug!r}; known: {', '.join(sorted(CITIES))}") from None


def spread(devices: Sequence[Device], seed: int) -> list[Device]:
    """The devices in a seeded shuffled order, so that consecutive publishing slots go to
    different kinds and districts rather than to 2 800 street lights in a row."""
    out = list(devices)
    random.Random(f"{seed}:order").shuffle(out)
    return out
