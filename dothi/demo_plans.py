"""The demo city's planning data, for the planning look-up, public comment and the
planners' assessment to have something to show: two variants of an illustrative zoning
plan for central Hải Châu, and the schools, clinics and bus stops residents walk to.

None of it is real: the zones are a 4 × 4 grid of blocks, the amenities stand at made-up
places (bus stops at the middle of the roads that carry traffic counters); every entity
says so in its description."""

from __future__ import annotations

from typing import Any

from dothi.demo import (
    TRAFFIC_ROADS,
    Entity,
    _base,
    _finish,
    _geo,
    _lang,
    _point,
    _prop,
    _rel,
    along,
)

ILLUSTRATIVE = _lang("Dữ liệu minh họa, không phải quy hoạch hay địa điểm thật.",
                     "Illustrative data: not a real plan or place.")
# The blocks: columns west to east, rows south to north, inside the old Hải Châu district.
WEST, SOUTH, WIDTH, HEIGHT = 108.2110, 16.0540, 0.0030, 0.0040
# Land use and maximum floor-area ratio of each block, row by row from the south.
VARIANTS = {
    "a": ("Phương án A — tăng mật độ ở và dịch vụ", "Variant A — denser housing and services",
          [["residential", "mixed", "commercial", "green"],
           ["residential", "residential", "mixed", "commercial"],
           ["education", "residential", "mixed", "commercial"],
           ["health", "residential", "residential", "mixed"]]),
    "b": ("Phương án B — thêm công viên", "Variant B — more parks",
          [["residential", "green", "commercial", "green"],
           ["residential", "green", "mixed", "commercial"],
           ["education", "residential", "green", "commercial"],
           ["health", "residential", "residential", "green"]]),
}
RATIO = {"residential": 4.0, "mixed": 6.0, "commercial": 8.0, "green": 0.1,
         "education": 1.5, "health": 2.0}
HEIGHT_M = {"residential": 45, "mixed": 75, "commercial": 120, "green": 6,
            "education": 20, "health": 30}
SCHOOLS = [(108.2165, 16.0625), (108.2075, 16.0455), (108.2005, 16.0668),
           (108.2358, 16.0690), (108.2480, 16.0380), (108.1580, 16.0750)]
CLINICS = [(108.2205, 16.0545), (108.1925, 16.0610), (108.2420, 16.0755),
           (108.2350, 16.0330)]


def plan_entities() -> list[Entity]:
    return [*_plans(), *_amenities()]


def _plans() -> list[Entity]:
    entities: list[Entity] = []
    for key, (vi, en, grid) in VARIANTS.items():
        layer = _base("GisLayer", f"phan-khu-hai-chau-{key}")
        entities.append(_finish({
            **layer, "title": _lang(vi, en), "featureType": _prop("PlanningZone"),
            "featureCount": _prop(16), "description": ILLUSTRATIVE,
            "location": _geo(_block(0, 0, 4, 4))}))
        for row, uses in enumerate(grid):
            for col, use in enumerate(uses):
                code = f"HC-{key.upper()}-{row + 1}{col + 1}"
                entities.append(_finish({
                    **_base("PlanningZone", f"phan-khu-hai-chau-{key}-{row + 1}{col + 1}"),
                    "zoneCode": _prop(code), "landUse": _prop(use),
                    "maxFloorAreaRatio": _prop(RATIO[use]),
                    "maxHeight": _prop(HEIGHT_M[use]),
                    "maxBuildingDensity": _prop(15 if use == "green" else 60),
                    "approvalDecision": _prop(f"Minh họa / illustrative ({key.upper()})"),
                    "refGisLayer": _rel(layer["id"]), "description": ILLUSTRATIVE,
                    "location": _geo(_block(col, row, 1, 1))}))
    return entities


def _block(col: int, row: int, cols: int, rows: int) -> dict[str, Any]:
    w, s = WEST + col * WIDTH, SOUTH + row * HEIGHT
    e, n = w + cols * WIDTH, s + rows * HEIGHT
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _amenities() -> list[Entity]:
    entities: list[Entity] = []
    kinds: list[tuple[str, str, str, list[tuple[float, float]]]] = [
        ("school", "Trường học", "School", SCHOOLS),
        ("clinic", "Trạm y tế", "Clinic", CLINICS),
    ]
    for category, vi, en, places in kinds:
        for n, (lon, lat) in enumerate(places, 1):
            entities.append(_amenity(f"{category}-{n}", [category],
                                     f"{vi} (minh họa) {n}", f"{en} (illustrative) {n}",
                                     lon, lat))
    for slug, name, line, _, _ in TRAFFIC_ROADS:
        ((lon, lat),) = along(line, [0.5], [12.0])
        entities.append(_amenity(f"bus-stop-{slug}", ["busStop"],
                                 f"Điểm dừng xe buýt {name} (minh họa)",
                                 f"Bus stop, {name.removeprefix('Đường ')} Street "
                                 "(illustrative)", lon, lat))
    return entities


def _amenity(slug: str, categories: list[str], vi: str, en: str, lon: float,
             lat: float) -> Entity:
    return _finish({**_base("PointOfInterest", slug), "name": _lang(vi, en),
                    "category": _prop(categories), "description": ILLUSTRATIVE,
                    "location": _geo(_point(lon, lat))})
