"""Small planar geometry for placing simulated devices inside a city.

A city is a few tens of kilometres across, so an equirectangular projection around the city's
latitude is accurate to well under a metre over that extent: no need for a projection library.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from dothi.demo import along, point_in_ring

Coord = tuple[float, float]  # (lon, lat), GeoJSON order
Ring = Sequence[Coord]

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0


def metres_per_degree_lon(lat: float) -> float:
    return M_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat))


def distance_m(a: Coord, b: Coord) -> float:
    """Distance in metres between two nearby points (equirectangular)."""
    lat0 = (a[1] + b[1]) / 2
    dx = (b[0] - a[0]) * metres_per_degree_lon(lat0)
    dy = (b[1] - a[1]) * M_PER_DEG_LAT
    return math.hypot(dx, dy)


def offset(point: Coord, east_m: float, north_m: float) -> Coord:
    lon, lat = point
    return (lon + east_m / metres_per_degree_lon(lat), lat + north_m / M_PER_DEG_LAT)


def line_length_m(line: Sequence[Coord]) -> float:
    return sum(distance_m(line[k], line[k + 1]) for k in range(len(line) - 1))


def point_along(line: Sequence[Coord], fraction: float, side_m: float = 0.0) -> Coord:
    """The point at ``fraction`` of a polyline's length, pushed ``side_m`` metres to the left
    of the direction of travel (negative: right), as street furniture stands on the kerb."""
    return along(line, [fraction], [side_m])[0]


def in_ring(point: Coord, ring: Ring) -> bool:
    return point_in_ring(point[0], point[1], ring)


def bbox(rings: Sequence[Ring]) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) over every vertex."""
    lons = [p[0] for ring in rings for p in ring]
    lats = [p[1] for ring in rings for p in ring]
    return (min(lons), min(lats), max(lons), max(lats))


def random_point_in(ring: Ring, rng: random.Random, tries: int = 10_000) -> Coord:
    """A uniformly random point inside a polygon, by rejection from its bounding box."""
    x0, y0, x1, y1 = bbox([ring])
    for _ in range(tries):
        point = (rng.uniform(x0, x1), rng.uniform(y0, y1))
        if in_ring(point, ring):
            return point
    raise ValueError("polygon too thin to sample")  # only a degenerate ring gets here


def rounded(point: Coord) -> list[float]:
    # Six decimals is ~0.1 m: finer digits would only be noise on the wire.
    return [round(point[0], 6), round(point[1], 6)]
