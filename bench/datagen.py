"""Fast, deterministic generator of Smart-Data-Model-shaped NGSI-LD entities for benchmarks.

The benchmark needs hundreds of thousands of realistic entities without the generator itself
being the bottleneck, so each entity type has a hand-written builder that returns one fresh
dict literal (no deepcopy, no JSON round trip): only ids, coordinates and a few values vary,
everything else comes from small precomputed tables. Every call returns brand-new nested
dicts, so a consumer may mutate what it receives.

Entities are in normalized form and carry no "@context": the benchmark sends the NGSI-LD core
context in a Link header. Standard library only; orjson is used for file output if installed.

Usage:
    python bench/datagen.py 100000 --seed 1 --out entities.json   # JSON array
    python bench/datagen.py 500000 --measure                      # entities/s, no output
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

try:  # optional speed-up for writing files; generation itself never needs it
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

__all__ = ["BBOX", "DISTRICT_POLYGON", "MIX", "SAMPLE_POINT", "generate"]

# lon_min, lat_min, lon_max, lat_max: a box over urban Đà Nẵng (and a little of the bay).
BBOX: tuple[float, float, float, float] = (108.10, 15.95, 108.30, 16.15)

# Roughly the former Hải Châu district (west bank of the Hàn river); a simplified version of
# the outline in dothi/demo.py, kept here so the benchmark does not import the package.
DISTRICT_POLYGON: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[
        [108.2135, 16.0845], [108.2222, 16.0950], [108.2245, 16.0720], [108.2250, 16.0612],
        [108.2277, 16.0470], [108.2255, 16.0260], [108.2180, 16.0240], [108.2030, 16.0340],
        [108.1950, 16.0520], [108.2085, 16.0650], [108.2135, 16.0845],
    ]],
}

# The Dragon Bridge (Cầu Rồng), centre of the city: the origin for near-point queries.
SAMPLE_POINT: dict[str, Any] = {"type": "Point", "coordinates": [108.2272, 16.0612]}

# Share of each type in the stream, in twentieths (40/20/15/15/10 %).
MIX: dict[str, int] = {
    "Streetlight": 8,
    "WasteContainer": 4,
    "AirQualityObserved": 3,
    "TrafficFlowObserved": 3,
    "FloodMonitoring": 2,
}

_REF = datetime(2026, 11, 24, 11, 0, 0, tzinfo=UTC)
# 96 quarter-hour observation instants of the reference day and 200 daily past dates: picking
# from a table is far cheaper than formatting a datetime per entity.
_OBS_TIMES = [(_REF - timedelta(minutes=15 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")
              for k in range(96)]
_PAST_DATES = [(_REF - timedelta(days=7 * k + 3, hours=k % 11)).strftime("%Y-%m-%dT%H:%M:%SZ")
               for k in range(200)]
_N_OBS = len(_OBS_TIMES)
_N_PAST = len(_PAST_DATES)

_SL_STATUS = ["ok"] * 18 + ["defectiveLamp", "brokenLantern"]
_SL_POWER = {"ok": "on", "defectiveLamp": "off", "brokenLantern": "off"}
_SL_GROUPS = [f"urn:ngsi-ld:StreetlightGroup:bench-group-{k}" for k in range(50)]
_STREETS = ["Đường Bạch Đằng", "Đường Trần Phú", "Đường Võ Nguyên Giáp", "Đường Nguyễn Văn Linh",
            "Đường 2 Tháng 9", "Đường Lê Duẩn", "Đường Điện Biên Phủ", "Đường Ngô Quyền",
            "Đường Phạm Văn Đồng", "Đường Tôn Đức Thắng", "Đường Hùng Vương",
            "Đường Nguyễn Tri Phương"]
_N_STREETS = len(_STREETS)
_WC_STATUS = ["ok"] * 17 + ["lidOpen", "lidOpen", "dropped"]
_WC_KIND = ["organic", "inorganic", "plastic", "paper", "glass"]
_WC_ORIGIN = ["household", "household", "household", "municipal", "hostelry"]
_FLOOD_STATUS = ["Normal", "Alert", "Danger"]

Builder = Callable[[str, float, float, Callable[[], float]], dict[str, Any]]


def _streetlight(eid: str, lon: float, lat: float, r: Callable[[], float]) -> dict[str, Any]:
    status = _SL_STATUS[int(r() * 20)]
    power = _SL_POWER[status]
    return {
        "id": eid,
        "type": "Streetlight",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "status": {"type": "Property", "value": status},
        "powerState": {"type": "Property", "value": power},
        "illuminanceLevel": {"type": "Property", "value": 1.0 if power == "on" else 0.0},
        "dateLastLampChange": {"type": "Property", "value": {
            "@type": "DateTime", "@value": _PAST_DATES[int(r() * _N_PAST)]}},
        "lanternHeight": {"type": "Property", "value": 10, "unitCode": "MTR"},
        "areaServed": {"type": "Property", "value": _STREETS[int(r() * _N_STREETS)]},
        "refStreetlightGroup": {"type": "Relationship", "object": _SL_GROUPS[int(r() * 50)]},
    }


def _waste_container(eid: str, lon: float, lat: float, r: Callable[[], float]) -> dict[str, Any]:
    k = int(r() * (_N_OBS - 40))
    t = _OBS_TIMES[k]
    # Emptied 2-10 hours before the fill reading (the table runs backwards in time).
    emptied = _OBS_TIMES[k + 8 + int(r() * 32)]
    return {
        "id": eid,
        "type": "WasteContainer",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "fillingLevel": {"type": "Property", "value": round(r(), 2), "observedAt": t},
        "status": {"type": "Property", "value": _WC_STATUS[int(r() * 20)]},
        "storedWasteKind": {"type": "Property", "value": _WC_KIND[int(r() * 5)]},
        "storedWasteOrigin": {"type": "Property", "value": _WC_ORIGIN[int(r() * 5)]},
        "binCapacity": {"type": "Property", "value": 240 if r() < 0.7 else 660, "unitCode": "LTR"},
        "temperature": {"type": "Property", "value": round(22.0 + 8.0 * r(), 1),
                        "unitCode": "CEL", "observedAt": t},
        "dateLastEmptying": {"type": "Property", "value": {"@type": "DateTime", "@value": emptied}},
    }


def _air_quality(eid: str, lon: float, lat: float, r: Callable[[], float]) -> dict[str, Any]:
    t = _OBS_TIMES[int(r() * _N_OBS)]
    pm25 = round(8.0 + 50.0 * r() * r(), 1)  # skewed: mostly clean air, a polluted tail
    return {
        "id": eid,
        "type": "AirQualityObserved",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": t}},
        "pm25": {"type": "Property", "value": pm25, "unitCode": "GQ", "observedAt": t},
        "pm10": {"type": "Property", "value": round(pm25 * 1.7, 1), "unitCode": "GQ",
                 "observedAt": t},
        "no2": {"type": "Property", "value": round(10.0 + 50.0 * r(), 1), "unitCode": "GQ",
                "observedAt": t},
        "o3": {"type": "Property", "value": round(20.0 + 50.0 * r(), 1), "unitCode": "GQ",
               "observedAt": t},
        "temperature": {"type": "Property", "value": round(21.0 + 8.0 * r(), 1),
                        "unitCode": "CEL", "observedAt": t},
        "relativeHumidity": {"type": "Property", "value": round(0.6 + 0.35 * r(), 2),
                             "observedAt": t},
        # VN_AQI PM2.5 sub-index, first three bands (see dothi.demo.vn_aqi_pm25).
        "airQualityIndex": {"type": "Property", "observedAt": t, "value": (
            round(pm25 * 2) if pm25 <= 50.0 else round(100 + (pm25 - 50.0) * 5 / 3))},
    }


def _traffic_flow(eid: str, lon: float, lat: float, r: Callable[[], float]) -> dict[str, Any]:
    t = _OBS_TIMES[int(r() * _N_OBS)]
    occupancy = round(0.05 + 0.8 * r(), 2)
    speed = round(max(5.0, 55.0 * (1.0 - occupancy) + 5.0 * r()), 1)
    return {
        "id": eid,
        "type": "TrafficFlowObserved",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": t}},
        "laneId": {"type": "Property", "value": 1 + int(r() * 3)},
        "intensity": {"type": "Property", "value": int(100 + 600 * r()), "observedAt": t},
        "averageVehicleSpeed": {"type": "Property", "value": speed, "unitCode": "KMH",
                                "observedAt": t},
        "occupancy": {"type": "Property", "value": occupancy, "observedAt": t},
        "congested": {"type": "Property", "value": speed < 18.0, "observedAt": t},
        "address": {"type": "Property", "value": {
            "streetAddress": _STREETS[int(r() * _N_STREETS)], "addressLocality": "Đà Nẵng",
            "addressCountry": "VN"}},
    }


def _flood(eid: str, lon: float, lat: float, r: Callable[[], float]) -> dict[str, Any]:
    t = _OBS_TIMES[int(r() * _N_OBS)]
    current = round(3.0 * r(), 2)
    status = _FLOOD_STATUS[0 if current < 2.0 else 1 if current < 2.6 else 2]
    return {
        "id": eid,
        "type": "FloodMonitoring",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}},
        "currentLevel": {"type": "Property", "value": current, "unitCode": "MTR",
                         "observedAt": t},
        "measuredDistance": {"type": "Property", "value": round(6.0 - current, 2),
                             "unitCode": "MTR", "observedAt": t},
        "referenceLevel": {"type": "Property", "value": 6.0, "unitCode": "MTR"},
        "alertLevel": {"type": "Property", "value": 2.0, "unitCode": "MTR"},
        "dangerLevel": {"type": "Property", "value": 2.6, "unitCode": "MTR"},
        "floodLevelStatus": {"type": "Property", "value": status, "observedAt": t},
        "observationDateTime": {"type": "Property", "value": {"@type": "DateTime", "@value": t}},
    }


_BUILDERS: dict[str, Builder] = {
    "Streetlight": _streetlight,
    "WasteContainer": _waste_container,
    "AirQualityObserved": _air_quality,
    "TrafficFlowObserved": _traffic_flow,
    "FloodMonitoring": _flood,
}


def generate(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Yield n entities, ids ``urn:ngsi-ld:<Type>:bench-<i>`` for i in 0..n-1.

    Types follow a 20-slot cycle shuffled once per seed, so every window of 20 entities has
    exactly the MIX proportions while types still interleave. Same seed, same stream.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    cycle: list[tuple[str, Builder]] = [
        (type_name, _BUILDERS[type_name]) for type_name, share in MIX.items() for _ in range(share)
    ]
    rng.shuffle(cycle)
    prefixes = [(f"urn:ngsi-ld:{type_name}:bench-", builder) for type_name, builder in cycle]
    slots = len(prefixes)
    r = rng.random
    lon0, lat0, lon1, lat1 = BBOX
    dlon, dlat = lon1 - lon0, lat1 - lat0
    for i in range(n):
        prefix, builder = prefixes[i % slots]
        yield builder(f"{prefix}{i}", round(lon0 + dlon * r(), 6), round(lat0 + dlat * r(), 6), r)


def _dump(entities: list[dict[str, Any]]) -> bytes:
    if orjson is not None:
        return orjson.dumps(entities)
    return json.dumps(entities, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("n", type=int, help="number of entities")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="write a JSON array to this file (default: stdout)")
    parser.add_argument("--measure", action="store_true", help="only time the generation")
    args = parser.parse_args(argv)
    if args.measure:
        start = time.perf_counter()
        count = sum(1 for _ in generate(args.n, args.seed))
        elapsed = time.perf_counter() - start
        print(f"{count} entities in {elapsed:.3f} s: {count / elapsed:,.0f} entities/s")
        return 0
    data = _dump(list(generate(args.n, args.seed)))
    if args.out:
        with open(args.out, "wb") as fh:
            fh.write(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
