"""Vietnam's air quality index, VN_AQI, computed as Decision 1459/QĐ-TCMT (2019) says
(breakpoints and bands in ``vn_aqi.yaml``), and kept on each AirQualityObserved station.

Hourly index (section 2.2.1): PM2.5 and PM10 from the NowCast of the last 12 hourly means,
O3, NO2, SO2 and CO from the current hourly mean; each parameter's sub-index by linear
interpolation between breakpoints; the index is the largest sub-index, rounded to an
integer. Daily index (section 2.2.2): PM from the 24-hour mean, O3 from the day's highest
1-hour and 8-hour means, NO2, SO2 and CO from the highest 1-hour mean. Either needs PM2.5 or
PM10.

``AqiKeeper`` reads each station's history from the store as clock-hour means (the current
hour is the hour of the newest reading, so far), computes the hourly index and writes it
on the station as ``airQualityIndex`` (with sub-properties ``dominantPollutant`` and
``method``) and ``airQualityLevel`` (the band), where rules, the dashboard and subscribers
see it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

import yaml

from dothi.broker.broker import Broker
from dothi.ngsild import merge
from dothi.ngsild.entity import expand_attributes
from dothi.ngsild.temporal import TimeQuery, iso_to_ms, ms_to_iso
from dothi.ngsild.timeutil import now_iso
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import UNCHANGED, EntityQuery, Selector

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000
METHOD = "VN_AQI, Decision 1459/QĐ-TCMT (2019), hourly"
# µg/m³ per unit of the UN/CEFACT codes a station may report in.
TO_MICROGRAMS = {"GQ": 1.0, "GP": 1000.0}


@dataclass(frozen=True)
class Level:
    name: str
    up_to: int
    rgb: tuple[int, int, int]
    vi: str
    en: str
    health: Mapping[str, str]


class Method:
    """The tables of ``vn_aqi.yaml``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.index: list[int] = list(data["index"])
        self.breakpoints: dict[str, list[float]] = {
            k: [float(c) for c in v] for k, v in data["breakpoints"].items()}
        self.attributes: dict[str, str] = dict(data["attributes"])
        self.levels = [Level(d["name"], d["upTo"], tuple(d["rgb"]), d["vi"], d["en"],
                             d["health"]) for d in data["levels"]]

    @classmethod
    def shipped(cls) -> Method:
        text = resources.files("dothi.ioc").joinpath("vn_aqi.yaml").read_text("utf-8")
        return cls(yaml.safe_load(text))

    def sub_index(self, column: str, c: float) -> float | None:
        """Formula 1 of the guidance: linear between the breakpoints around ``c``; 500 at or
        above the last one, except where the column stops short of 500 (O3 8h: None)."""
        points = self.breakpoints[column]
        if c < 0:
            return None
        for k in range(1, len(points)):
            if c <= points[k]:
                lo, hi = points[k - 1], points[k]
                i_lo, i_hi = self.index[k - 1], self.index[k]
                return (i_hi - i_lo) / (hi - lo) * (c - lo) + i_lo
        return float(self.index[-1]) if len(points) == len(self.index) else None

    def level(self, aqi: int) -> Level:
        return next((lv for lv in self.levels if aqi <= lv.up_to), self.levels[-1])


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """NowCast of section 2.2.1 a. ``hourly[0]`` is the current hour's mean, ``hourly[11]``
    the one 11 hours before; None where there is none. Needs two of the three newest. The
    weight w is min/max of the hours present, at least 1/2; a missing hour weighs 0. The
    guidance writes the w = 1/2 case as sum((1/2)^i c_i) over all twelve hours, the
    normalised sum below with every hour present; normalising also keeps it right when
    hours are missing."""
    hours = list(hourly[:12])
    if sum(c is not None for c in hours[:3]) < 2:
        return None
    present = [c for c in hours if c is not None]
    c_max = max(present)
    w = 1.0 if c_max == 0 else max(0.5, min(present) / c_max)
    num = sum(w ** i * c for i, c in enumerate(hours) if c is not None)
    den = sum(w ** i for i, c in enumerate(hours) if c is not None)
    return num / den


def round_index(value: float) -> int:
    """"Làm tròn thành số nguyên": half up, as people round (not Python's half-to-even)."""
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Index:
    aqi: int
    dominant: str
    sub_indices: dict[str, float]
    level: Level


def hourly_index(method: Method, hourly: Mapping[str, Sequence[float | None]]
                 ) -> Index | None:
    """The hourly index from each parameter's hourly means in µg/m³, newest first (PM:
    the last 12 hours; the others: the current hour is the first)."""
    subs: dict[str, float] = {}
    for pm in ("pm25", "pm10"):
        value = nowcast(hourly.get(pm, ()))
        if value is not None:
            found = method.sub_index(pm, value)
            if found is not None:
                subs[pm] = found
    if not subs:
        return None  # "at least one of PM10 and PM2.5" (section 2.1 b)
    for gas, column in (("o3", "o3_1h"), ("no2", "no2"), ("so2", "so2"), ("co", "co")):
        series = hourly.get(gas, ())
        if series and series[0] is not None:
            found = method.sub_index(column, series[0])
            if found is not None:
                subs[gas] = found
    return _index(method, subs)


def daily_index(method: Method, hours: Mapping[str, Sequence[float | None]],
                o3_before: Sequence[float | None] = ()) -> Index | None:
    """The daily index from one day's 24 hourly means (01:00 to 00:00) per parameter;
    ``o3_before``: the 7 hourly O3 means before 01:00, for the day's first 8-hour means."""
    subs: dict[str, float] = {}
    for pm in ("pm25", "pm10"):
        values = [c for c in hours.get(pm, ()) if c is not None]
        if values:
            found = method.sub_index(pm, sum(values) / len(values))
            if found is not None:
                subs[pm] = found
    if not subs:
        return None
    day = list(hours.get("o3", ()))
    if any(c is not None for c in day):
        candidates = [method.sub_index("o3_1h", max(c for c in day if c is not None))]
        o3 = [*o3_before[-7:], *day]
        first = len(o3) - len(day)  # the window ending at the day's first hour
        windows = [o3[k - 7:k + 1] for k in range(max(7, first), len(o3))]
        eights = [sum(c for c in w if c is not None) / 8 for w in windows
                  if all(c is not None for c in w)]
        if eights:
            candidates.append(method.sub_index("o3_8h", max(eights)))
        found = max((c for c in candidates if c is not None), default=None)
        if found is not None:
            subs["o3"] = found
    for gas in ("no2", "so2", "co"):
        values = [c for c in hours.get(gas, ()) if c is not None]
        if values:
            found = method.sub_index(gas, max(values))
            if found is not None:
                subs[gas] = found
    return _index(method, subs)


def _index(method: Method, subs: dict[str, float]) -> Index:
    dominant = max(subs, key=lambda k: subs[k])
    aqi = round_index(subs[dominant])
    return Index(aqi, dominant, subs, method.level(aqi))


class AqiKeeper:
    """Computes each station's hourly VN_AQI from the store and writes it on the station
    when there are newer readings. Every server process may run it: the result is the
    same, and a result already written is not written again."""

    def __init__(self, broker: Broker, method: Method | None = None) -> None:
        self.broker = broker
        self.method = method or Method.shipped()
        self.ctx = broker.resolver.core

    def station(self, tenant: str, doc: dict) -> tuple[Index, int] | None:
        """The station's hourly index now, from its history, and the time (ms) of the
        newest reading it rests on."""
        newest = 0
        units: dict[str, float] = {}
        for param, attr in self.method.attributes.items():
            instances = doc.get(self.ctx.expand(attr)) or []
            if not instances:
                continue
            unit = instances[0].get("unitCode", "GQ")
            if unit not in TO_MICROGRAMS:
                log.warning("%s: %s in unit %s, not µg/m³ or mg/m³: not used for VN_AQI",
                            doc["id"], attr, unit)
                continue
            units[param] = TO_MICROGRAMS[unit]
            observed = instances[0].get("observedAt")
            if isinstance(observed, str):
                newest = max(newest, iso_to_ms(observed))
        if not units or not newest:
            return None
        current = newest - newest % HOUR_MS  # the start of the current clock hour
        start = current - 11 * HOUR_MS
        found = self.broker.store.temporal_get(tenant, doc["id"], TimeQuery(
            start=start, end=current + HOUR_MS, fmt="aggregatedValues", aggr_methods=("avg",),
            aggr_period_ms=HOUR_MS, attrs=frozenset(
                self.ctx.expand(self.method.attributes[p]) for p in units)), 1)
        hourly: dict[str, list[float | None]] = {}
        for param, factor in units.items():
            series: list[float | None] = [None] * 12
            datasets = found.aggregated.get(self.ctx.expand(self.method.attributes[param]),
                                            {}) if found else {}
            for bucket in datasets.get(None, []):
                k = (current - int(bucket["start"])) // HOUR_MS
                if 0 <= k < 12 and isinstance(bucket.get("avg"), int | float):
                    series[k] = float(bucket["avg"]) * factor
            hourly[param] = series
        index = hourly_index(self.method, hourly)
        return None if index is None else (index, newest)

    def run(self, tenants: Sequence[str] | None = None) -> int:
        """Update every station of every tenant; returns how many changed."""
        changed = 0
        for tenant in tenants if tenants is not None else self.broker.store.tenants():
            query = EntityQuery(selectors=[Selector(types=parse_type_expr(
                "AirQualityObserved", self.ctx.expand))], expand=self.ctx.expand,
                limit=10_000)
            for doc in self.broker.store.query(tenant, query)[0]:
                found = self.station(tenant, doc)
                if found is not None and self._write(tenant, doc, *found):
                    changed += 1
        return changed

    def _write(self, tenant: str, doc: dict, index: Index, observed_ms: int) -> bool:
        aqi_iri = self.ctx.expand("airQualityIndex")
        old = (doc.get(aqi_iri) or [{}])[0]
        dominant = old.get(self.ctx.expand("dominantPollutant"))
        if isinstance(dominant, list):  # a sub-property: one instance, or a list of them
            dominant = dominant[0] if dominant else None
        dominant = dominant.get("value") if isinstance(dominant, dict) else None
        observed = ms_to_iso(observed_ms)
        # Written again whenever newer readings came in, even at the same value: a rule's
        # duration ("above 150 for an hour") is judged on each new observation.
        if (old.get("value"), dominant, old.get("observedAt")) == (
                index.aqi, index.dominant, observed):
            return False
        now = now_iso()
        body = {
            "airQualityIndex": {
                "type": "Property", "value": index.aqi, "observedAt": observed,
                "dominantPollutant": {"type": "Property", "value": index.dominant},
                "method": {"type": "Property", "value": METHOD}},
            "airQualityLevel": {"type": "Property", "value": index.level.name,
                                "observedAt": observed}}

        def change(current: dict | None) -> Any:
            if current is None:
                return UNCHANGED  # deleted meanwhile
            merged, _ = merge.append(current, expand_attributes(body, self.ctx, now), now,
                                     overwrite=True)
            return merged

        outcome = self.broker.apply(tenant, [(doc["id"], change)])[0]
        return outcome.status == "updated"

