"""GeoJSON geometries and geo-queries (clause 4.10): validation, bounding boxes for the
R*Tree and exact predicates with shapely 2.

Distances for ``near`` are geodesic metres on a sphere of the WGS 84 mean radius
(6,371,008.8 m): haversine for points; for other geometries the query point and the
geometry are projected to a local equirectangular frame centred on the query point, which
is accurate to well under 1% at city scale (tens of kilometres).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import shape

from dothi.errors import BadRequestData

EARTH_RADIUS_M = 6_371_008.8
GEOMETRIES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
GEORELS = {"near", "within", "contains", "intersects", "disjoint", "equals", "overlaps"}
# A query's geometry (geoQ, OGC bbox and CQL2): more positions are a cost put on the server,
# not a question (a stored geometry, such as a province's boundary, may have any number).
MAX_QUERY_POSITIONS = 10_000
_DEPTH = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3, "Polygon": 3,
          "MultiPolygon": 4}


def _positions(coords: Any, depth: int, gtype: str) -> None:
    if depth == 1:
        if (
            not isinstance(coords, list) or not 2 <= len(coords) <= 3
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords)
        ):
            raise BadRequestData(f"{gtype}: a position is [longitude, latitude], got {coords!r}")
        if not -180 <= coords[0] <= 180 or not -90 <= coords[1] <= 90:
            raise BadRequestData(f"{gtype}: position {coords!r} is outside WGS 84 bounds")
        return
    if not isinstance(coords, list) or not coords:
        raise BadRequestData(f"{gtype}: coordinates are not nested as the type needs")
    for item in coords:
        _positions(item, depth - 1, gtype)


def _check_shape(gtype: str, coords: Any) -> None:
    lines: list[Any] = []
    rings: list[Any] = []
    if gtype == "LineString":
        lines = [coords]
    elif gtype == "MultiLineString":
        lines = coords
    elif gtype == "Polygon":
        rings = coords
    elif gtype == "MultiPolygon":
        rings = [ring for poly in coords for ring in poly]
    for line in lines:
        if len(line) < 2:
            raise BadRequestData(f"{gtype}: a line needs at least two positions")
    for ring in rings:
        if len(ring) < 4:
            raise BadRequestData(f"{gtype}: a linear ring needs at least four positions")
        if ring[0][:2] != ring[-1][:2]:
            raise BadRequestData(f"{gtype}: a linear ring must end where it starts")


def check_geometry(value: Any) -> None:
    """Structural GeoJSON check, without building a shapely object."""
    if not isinstance(value, dict):
        raise BadRequestData("A geometry must be a GeoJSON object")
    gtype = value.get("type")
    if gtype == "GeometryCollection":
        members = value.get("geometries")
        if not isinstance(members, list):
            raise BadRequestData("GeometryCollection needs a geometries array")
        for member in members:
            check_geometry(member)
        return
    if gtype not in GEOMETRIES:
        raise BadRequestData(f"Unknown geometry type {gtype!r}")
    coords = value.get("coordinates")
    _positions(coords, _DEPTH[gtype], gtype)
    _check_shape(gtype, coords)


def validate_geometry(value: Any) -> shapely.Geometry:
    check_geometry(value)
    try:
        return to_shape(value)
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        raise BadRequestData(f"Invalid geometry: {exc}") from None


def to_shape(value: dict) -> shapely.Geometry:
    """A GeoJSON geometry as shapely's: points and polygons, the most common, built
    directly by shapely's array functions, in half the time of ``shape``. A geo-query pays
    it for its own geometry and for every candidate whose index box does not settle it;
    a write, for every GeoProperty."""
    kind = value.get("type")
    coords = value.get("coordinates")
    if kind == "Polygon" and isinstance(coords, list) and coords:
        return shapely.polygons(coords[0], holes=coords[1:] or None)
    if kind == "Point":
        return shapely.points(coords)
    return shape(value)


def _flat_positions(value: dict) -> list[list[float]]:
    if value.get("type") == "GeometryCollection":
        return [p for g in value["geometries"] for p in _flat_positions(g)]
    depth = _DEPTH[value["type"]]
    items: list[Any] = [value["coordinates"]]
    for _ in range(depth - 1):
        items = [x for item in items for x in item]
    return items


def geometry_bbox(value: dict) -> tuple[float, float, float, float]:
    """(minx, maxx, miny, maxy) of a validated GeoJSON geometry."""
    if value.get("type") == "Point":
        x, y = value["coordinates"][0], value["coordinates"][1]
        return x, x, y, y
    pts = _flat_positions(value)
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return min(xs), max(xs), min(ys), max(ys)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class GeoQuery:
    georel: str
    geometry: dict
    max_distance: float | None = None
    min_distance: float | None = None
    geoproperty: str | None = None
    _shape: Any = field(default=None, compare=False, repr=False)
    _rectangle: tuple[float, float, float, float] | None = field(
        default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rectangle", self.rectangle())

    def prefilter_bbox(self) -> tuple[float, float, float, float] | None:
        if self.georel == "disjoint" or (self.georel == "near" and self.max_distance is None):
            return None
        minx, maxx, miny, maxy = geometry_bbox(self.geometry)
        if self.georel == "near" and self.max_distance is not None:
            # Generous margin: 1 degree of latitude is ~111.2 km; longitude shrinks with cos.
            dlat = self.max_distance / 111_000 * 1.01
            coslat = max(math.cos(math.radians(max(abs(miny), abs(maxy)) + dlat)), 1e-6)
            dlon = dlat / coslat
            return minx - dlon, maxx + dlon, miny - dlat, maxy + dlat
        return minx, maxx, miny, maxy

    def distance_m(self, value: dict) -> float:
        qx, qy = self.geometry["coordinates"][0], self.geometry["coordinates"][1]
        if value.get("type") == "Point":
            c = value["coordinates"]
            return haversine_m(qx, qy, c[0], c[1])
        kx = math.cos(math.radians(qy)) * math.pi * EARTH_RADIUS_M / 180
        ky = math.pi * EARTH_RADIUS_M / 180
        local = shapely.transform(shape(value), lambda xy: (xy - (qx, qy)) * (kx, ky))
        return float(local.distance(shapely.Point(0, 0)))

    def rectangle(self) -> tuple[float, float, float, float] | None:
        """(minx, miny, maxx, maxy) when the query geometry is an axis-aligned rectangle
        (a bbox, as map clients ask) and the georel is one that a shape lying inside the
        rectangle satisfies (intersects, within): such shapes need no exact test."""
        if self.georel not in ("intersects", "within") or self.geometry.get("type") != "Polygon":
            return None
        rings = self.geometry.get("coordinates") or []
        if len(rings) != 1 or len(rings[0]) != 5:
            return None
        xs = {p[0] for p in rings[0]}
        ys = {p[1] for p in rings[0]}
        corners = {(p[0], p[1]) for p in rings[0]}
        if len(xs) != 2 or len(ys) != 2 or len(corners) != 4:
            return None
        return min(xs), min(ys), max(xs), max(ys)

    def matches_point(self, x: float, y: float) -> bool:
        """The hot path of geo-queries: a point straight from the index row."""
        if self.georel == "near":
            c = self.geometry["coordinates"]
            return self._in_range(haversine_m(c[0], c[1], x, y))
        if self.georel == "within":
            return bool(shapely.contains_xy(self._shape, x, y))
        if self.georel == "intersects":
            return bool(shapely.intersects_xy(self._shape, x, y))
        if self.georel == "disjoint":
            return not shapely.intersects_xy(self._shape, x, y)
        return self.matches({"type": "Point", "coordinates": [x, y]})

    def _vertex_in_rectangle(self, value: dict) -> bool:
        """A polygon with a vertex inside (or on) a query rectangle intersects it: the
        common case of a shape that a bbox cuts through, decided without building it
        (bench/ogc.py: about 40 % of the candidates of a query)."""
        rect = self._rectangle
        if rect is None or value.get("type") != "Polygon":
            return False
        x0, y0, x1, y1 = rect
        try:
            return any(x0 <= p[0] <= x1 and y0 <= p[1] <= y1 for p in value["coordinates"][0])
        except (TypeError, IndexError, KeyError):
            return False  # left to shapely, which says what is wrong with it

    def _in_range(self, metres: float) -> bool:
        if self.max_distance is not None and metres > self.max_distance:
            return False
        return not (self.min_distance is not None and metres < self.min_distance)

    def matches(self, value: dict) -> bool:
        if self.georel == "near":
            return self._in_range(self.distance_m(value))
        if self.georel == "intersects" and self._vertex_in_rectangle(value):
            return True
        try:
            entity = to_shape(value)
        except (ValueError, TypeError, IndexError, shapely.errors.GEOSException):
            return False
        query = self._shape  # prepared: repeated predicates are fast
        if self.georel == "within":
            return bool(query.contains(entity))
        if self.georel == "contains":
            return bool(entity.contains(query))
        if self.georel == "intersects":
            return bool(query.intersects(entity))
        if self.georel == "disjoint":
            return bool(query.disjoint(entity))
        if self.georel == "equals":
            return bool(query.equals(entity))
        if self.georel == "overlaps":
            return bool(query.overlaps(entity))
        return False


def _parse_distance(text: str) -> tuple[str, float]:
    name, sep, number = text.partition("==")
    if not sep or name not in ("maxDistance", "minDistance"):
        raise BadRequestData(f"near needs maxDistance==<metres> or minDistance==<metres>, got {text!r}")
    try:
        value = float(number)
    except ValueError:
        raise BadRequestData(f"{name} must be a number of metres, got {number!r}") from None
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise BadRequestData(f"{name} must be a non-negative number of metres")
    return name, value


def parse_geoquery(
    georel: str | None, geometry: str | None, coordinates: Any, geoproperty: str | None
) -> GeoQuery | None:
    if georel is None and geometry is None and coordinates is None:
        return None
    if georel is None or geometry is None or coordinates is None:
        raise BadRequestData("A geo-query needs georel, geometry and coordinates together")
    if geometry not in GEOMETRIES:
        raise BadRequestData(f"Unknown geometry {geometry!r}")
    if isinstance(coordinates, str):
        try:
            coords = json.loads(coordinates)
        except json.JSONDecodeError:
            raise BadRequestData(f"coordinates are not a JSON array: {coordinates!r}") from None
    else:
        coords = coordinates
    value = {"type": geometry, "coordinates": coords}
    check_geometry(value)
    if len(_flat_positions(value)) > MAX_QUERY_POSITIONS:
        raise BadRequestData(f"A geo-query's geometry has at most {MAX_QUERY_POSITIONS:,} "
                             "positions")
    query_shape = validate_geometry(value)
    rel, *modifiers = georel.split(";")
    if rel not in GEORELS:
        raise BadRequestData(f"Unknown georel {rel!r}")
    max_d = min_d = None
    if rel == "near":
        if geometry != "Point":
            raise BadRequestData("near takes a Point geometry")
        if not modifiers:
            raise BadRequestData("near needs maxDistance or minDistance")
        for mod in modifiers:
            name, dist = _parse_distance(mod)
            if name == "maxDistance":
                max_d = dist
            else:
                min_d = dist
    elif modifiers:
        raise BadRequestData(f"georel {rel} takes no modifier")
    shapely.prepare(query_shape)
    return GeoQuery(rel, value, max_d, min_d, geoproperty, query_shape)

