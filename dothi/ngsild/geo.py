"""GeoJSON geometries (clause 4.7.1) and geo-queries (clause 4.10).

Everything here is pure: validation of GeoProperty values, bounding boxes for the R*Tree,
and the exact geo-query predicates evaluated with shapely 2.

Distances (``near``) are great-circle metres on a sphere of the WGS 84 mean radius
(6,371,008.8 m), which differs from the ellipsoid by at most ~0.5 % (~0.3 % around
Vietnam's latitudes).

* Point to point: haversine, exact on that sphere.
* Anything else: both geometries are projected to a local equirectangular frame centred
  on the reference geometry; the closest pair of points is found there and its distance
  is then measured with haversine. The result is therefore the true distance between two
  real points of the geometries (never shorter than the true minimum); the frame only
  affects which pair is chosen. At 16°N the frame's scale is off by ~0.3 % at 50 km from
  the centre, so the error stays well under 1 % at city scale, but grows towards the
  poles. Geometries that cross the antimeridian are not supported (RFC 7946 says to split
  them).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import shapely
from shapely.geometry import shape

from dothi.errors import BadRequestData

EARTH_RADIUS_M = 6_371_008.8
# Metres in one degree of a great circle on that sphere (~111,195 m).
_M_PER_DEG = math.pi * EARTH_RADIUS_M / 180

# How deep ``coordinates`` nests for each type: 1 is a bare position.
_DEPTH = {"Point": 1, "MultiPoint": 2, "LineString": 2, "MultiLineString": 3,
          "Polygon": 3, "MultiPolygon": 4}
GEORELS = ("near", "within", "contains", "intersects", "disjoint", "equals", "overlaps")
# RFC 8259 number without the minus sign: clause 4.10's PositiveNumber. Python's float()
# would also take "inf", "+5", " 5", "1_000", which the grammar does not allow.
_JSON_NUMBER = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")

Box = tuple[float, float, float, float]  # (minx, maxx, miny, maxy), the R*Tree's order


# --- validation -------------------------------------------------------------------------

def _is_number(v: Any) -> bool:
    # bool is an int subclass; JSON true must not pass as 1.
    return (type(v) is float or type(v) is int) and math.isfinite(v)


def _check_position(pos: Any, gtype: str) -> None:
    if not isinstance(pos, (list, tuple)) or not 2 <= len(pos) <= 3 \
            or not all(_is_number(c) for c in pos):
        raise BadRequestData(
            f"{gtype}: a position is [longitude, latitude] or [longitude, latitude, altitude]"
            f" with numbers, got {pos!r}")
    if not (-180 <= pos[0] <= 180 and -90 <= pos[1] <= 90):
        raise BadRequestData(
            f"{gtype}: position {list(pos)!r} is outside longitude [-180, 180] or"
            " latitude [-90, 90]")


def _check_line(line: Any, gtype: str, minimum: int = 2, what: str = "a line") -> None:
    if not isinstance(line, (list, tuple)) or len(line) < minimum:
        raise BadRequestData(f"{gtype}: {what} needs at least {minimum} positions")
    for pos in line:
        _check_position(pos, gtype)


def _check_ring(ring: Any, gtype: str) -> None:
    _check_line(ring, gtype, 4, "a linear ring")
    if list(ring[0]) != list(ring[-1]):
        raise BadRequestData(f"{gtype}: a linear ring must end at the position it starts at")


def _check_polygon(rings: Any, gtype: str) -> None:
    _each(rings, gtype, _check_ring, "a polygon needs at least one ring")


def _each(items: Any, gtype: str, check: Callable[[Any, str], None], empty: str) -> None:
    if not isinstance(items, (list, tuple)) or not items:
        raise BadRequestData(f"{gtype}: {empty}")
    for item in items:
        check(item, gtype)


_CHECKS: dict[str, Callable[[Any, str], None]] = {
    "Point": _check_position,
    "MultiPoint": lambda c, t: _each(c, t, _check_position, "needs at least one position"),
    "LineString": _check_line,
    "MultiLineString": lambda c, t: _each(c, t, _check_line, "needs at least one line"),
    "Polygon": _check_polygon,
    "MultiPolygon": lambda c, t: _each(c, t, _check_polygon, "needs at least one polygon"),
}


def _check_structure(value: Any) -> None:
    if not isinstance(value, dict):
        raise BadRequestData(f"A geometry must be a GeoJSON object, got {type(value).__name__}")
    gtype = value.get("type")
    if gtype == "GeometryCollection":
        _each(value.get("geometries"), gtype, lambda g, _: _check_structure(g),
              "needs a non-empty geometries array")
        return
    if not isinstance(gtype, str) or gtype not in _CHECKS:
        raise BadRequestData(
            f"Unknown geometry type {gtype!r}; expected one of {', '.join(_CHECKS)}"
            " or GeometryCollection")
    if "coordinates" not in value:
        raise BadRequestData(f"{gtype}: coordinates are missing")
    _CHECKS[gtype](value["coordinates"], gtype)


def validate_geometry(value: Any) -> shapely.Geometry:
    """The shapely geometry of a GeoJSON value, or BadRequestData saying what is wrong.

    Topological validity (self-intersecting rings...) is not required of stored values:
    sensor data is often sloppy, and predicates still answer on such shapes.
    """
    _check_structure(value)
    try:
        return shape(value)
    except (ValueError, TypeError, shapely.errors.GEOSException) as exc:
        raise BadRequestData(f"Invalid {value.get('type')} geometry: {exc}") from None


def _positions(value: dict[str, Any]) -> list[Any]:
    if value["type"] == "GeometryCollection":
        return [p for member in value["geometries"] for p in _positions(member)]
    items = [value["coordinates"]]
    for _ in range(_DEPTH[value["type"]] - 1):
        items = [inner for item in items for inner in item]
    return items


def geometry_bbox(value: dict[str, Any]) -> Box:
    """(minx, maxx, miny, maxy) of an already validated GeoJSON geometry."""
    if value["type"] == "Point":
        x, y = value["coordinates"][0], value["coordinates"][1]
        return x, x, y, y
    positions = _positions(value)
    xs = [p[0] for p in positions]
    ys = [p[1] for p in positions]
    return min(xs), max(xs), min(ys), max(ys)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres on the WGS 84 mean sphere."""
    s_lat = math.sin(math.radians(lat2 - lat1) / 2)
    s_lon = math.sin(math.radians(lon2 - lon1) / 2)
    h = s_lat * s_lat + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * s_lon * s_lon
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(h, 1.0)))


# --- geo-queries ------------------------------------------------------------------------

@dataclass(frozen=True)
class GeoQuery:
    """A parsed geoQ. The target is the entity's geometry, the reference is ``geometry``."""

    georel: str
    geometry: dict[str, Any]
    max_distance: float | None = None
    min_distance: float | None = None
    geoproperty: str = "location"
    # Derived once per query, since matches() runs on every candidate row.
    _shape: shapely.Geometry = field(init=False, compare=False, repr=False)
    _box: Box | None = field(init=False, compare=False, repr=False)
    _point: tuple[float, float, float] | None = field(init=False, compare=False, repr=False)
    _frame: tuple[float, float, float] = field(init=False, compare=False, repr=False)
    _local: shapely.Geometry = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.georel not in GEORELS:
            raise BadRequestData(f"Unknown georel {self.georel!r}")
        if self.georel == "near" and (self.max_distance is None) == (self.min_distance is None):
            raise BadRequestData("near needs exactly one of maxDistance or minDistance")
        geom = validate_geometry(self.geometry)
        if not geom.is_valid:
            # Predicates against a broken reference give arbitrary answers: say so now.
            raise BadRequestData(
                f"The reference {self.geometry['type']} is not a valid geometry:"
                f" {shapely.is_valid_reason(geom)}")
        shapely.prepare(geom)
        put = object.__setattr__  # frozen: derived fields are set once, here
        put(self, "_shape", geom)
        minx, maxx, miny, maxy = geometry_bbox(self.geometry)
        if self.geometry["type"] == "Point":
            put(self, "_point", (minx, miny, math.cos(math.radians(miny))))
        else:
            put(self, "_point", None)
        # Local frame centre: the point itself, or the middle of the reference's box.
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        put(self, "_frame", (cx, cy, _M_PER_DEG * max(math.cos(math.radians(cy)), 1e-9)))
        local = self._to_local(geom)
        shapely.prepare(local)
        put(self, "_local", local)
        put(self, "_box", self._compute_box((minx, maxx, miny, maxy)))

    # The R*Tree prefilter ---------------------------------------------------------------

    def _compute_box(self, box: Box) -> Box | None:
        if self.georel == "disjoint" or self.min_distance is not None:
            return None  # matches lie outside a region: no box bounds them
        if self.max_distance is None:
            return box  # every other georel needs a shared point with the reference
        minx, maxx, miny, maxy = box
        radius = self.max_distance / EARTH_RADIUS_M  # angular radius of the buffer
        if radius >= math.pi:
            return -180.0, 180.0, -90.0, 90.0
        # Widen a hair for float rounding (and the R*Tree's 32-bit floats): ~1 cm.
        pad = 1e-7
        dlat = math.degrees(radius) + pad
        lo, hi = miny - dlat, maxy + dlat
        if lo <= -90 or hi >= 90:
            return -180.0, 180.0, max(lo, -90.0), min(hi, 90.0)  # buffer holds a pole
        # The widest longitude reach of a spherical cap of that radius is
        # asin(sin r / cos lat), largest at the reference's highest |latitude|.
        reach = math.sin(radius) / math.cos(math.radians(max(abs(miny), abs(maxy))))
        if reach >= 1:
            return -180.0, 180.0, lo, hi
        dlon = math.degrees(math.asin(reach)) + pad
        if minx - dlon < -180 or maxx + dlon > 180:
            return None  # the buffer wraps the antimeridian: a single box cannot hold it
        return minx - dlon, maxx + dlon, lo, hi

    def prefilter_bbox(self) -> Box | None:
        """A box every matching entity geometry's box intersects; None when none exists."""
        return self._box

    # Distances --------------------------------------------------------------------------

    def _to_local(self, geom: shapely.Geometry) -> shapely.Geometry:
        cx, cy, kx = self._frame

        def forward(xy: np.ndarray) -> np.ndarray:
            dx = (xy[:, 0] - cx + 180.0) % 360.0 - 180.0
            return np.column_stack((dx * kx, (xy[:, 1] - cy) * _M_PER_DEG))

        return shapely.transform(geom, forward)

    def _from_local(self, x: float, y: float) -> tuple[float, float]:
        cx, cy, kx = self._frame
        return cx + x / kx, cy + y / _M_PER_DEG

    def _point_distance(self, x: float, y: float) -> float:
        # haversine_m inlined with the query point's cosine computed once.
        qx, qy, qcos = self._point  # type: ignore[misc]
        s_lat = math.sin(math.radians(y - qy) / 2)
        s_lon = math.sin(math.radians(x - qx) / 2)
        h = s_lat * s_lat + qcos * math.cos(math.radians(y)) * s_lon * s_lon
        return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(h, 1.0)))

    def _shape_distance(self, geom: shapely.Geometry) -> float:
        local = self._to_local(geom)
        if self._local.intersects(local):
            return 0.0
        (x1, y1), (x2, y2) = shapely.get_coordinates(shapely.shortest_line(self._local, local))
        return haversine_m(*self._from_local(x1, y1), *self._from_local(x2, y2))

    def distance_m(self, geometry_geojson: dict[str, Any]) -> float:
        """Metres between the reference geometry and a (validated) entity geometry."""
        if self._point is not None and geometry_geojson.get("type") == "Point":
            c = geometry_geojson["coordinates"]
            return self._point_distance(c[0], c[1])
        return self._shape_distance(shape(geometry_geojson))

    def _near(self, distance: float) -> bool:
        if self.max_distance is not None:
            return distance <= self.max_distance
        return distance >= self.min_distance  # type: ignore[operator]

    # Predicates -------------------------------------------------------------------------

    def matches_point(self, x: float, y: float) -> bool:
        """The hot path: an entity whose geometry is the point (x, y), e.g. from the index."""
        rel = self.georel
        if rel == "near":
            if self._point is not None:
                return self._near(self._point_distance(x, y))
            return self._near(self._shape_distance(shapely.Point(x, y)))
        if rel == "within":
            return bool(shapely.contains_xy(self._shape, x, y))
        if rel == "intersects":
            return bool(shapely.intersects_xy(self._shape, x, y))
        if rel == "disjoint":
            return not shapely.intersects_xy(self._shape, x, y)
        return self._relate(shapely.Point(x, y))

    def _relate(self, entity: shapely.Geometry) -> bool:
        # The prepared reference goes first so GEOS uses its index; each line reads as
        # "entity <georel> reference".
        q, rel = self._shape, self.georel
        if rel == "within":
            return bool(shapely.contains(q, entity))
        if rel == "contains":
            return bool(shapely.within(q, entity))
        if rel == "intersects":
            return bool(shapely.intersects(q, entity))
        if rel == "disjoint":
            return bool(shapely.disjoint(q, entity))
        if rel == "equals":
            return bool(shapely.equals(q, entity))
        return bool(shapely.overlaps(q, entity))

    def matches(self, geometry_geojson: dict[str, Any]) -> bool:
        """Whether an entity geometry (GeoJSON, validated when stored) satisfies the query."""
        if geometry_geojson.get("type") == "Point":
            c = geometry_geojson.get("coordinates")
            if isinstance(c, list) and len(c) >= 2:
                return self.matches_point(c[0], c[1])
        try:
            entity = shape(geometry_geojson)
            if self.georel == "near":
                return self._near(self._shape_distance(entity))
            return self._relate(entity)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError,
                shapely.errors.GEOSException):
            return False  # a geometry that cannot be read cannot match (clause 4.10)


def _parse_georel(georel: str) -> tuple[str, float | None, float | None]:
    rel, sep, modifier = georel.partition(";")
    if rel not in GEORELS:
        raise BadRequestData(f"Unknown georel {rel!r}; expected one of {', '.join(GEORELS)}")
    if rel != "near":
        if sep:
            raise BadRequestData(f"georel {rel} takes no modifier, got {georel!r}")
        return rel, None, None
    name, eq, number = modifier.partition("==")
    if name not in ("maxDistance", "minDistance") or not eq:
        raise BadRequestData(
            f"near needs one modifier, near;maxDistance==<metres> or"
            f" near;minDistance==<metres>, got {georel!r}")
    value = float(number) if _JSON_NUMBER.fullmatch(number) else 0.0
    if not 0 < value < math.inf:
        raise BadRequestData(f"{name} must be a positive number of metres, got {number!r}")
    return ("near", value, None) if name == "maxDistance" else ("near", None, value)


def parse_geoquery(
    georel: str | None, geometry: str | None, coordinates: str | Any | None,
    geoproperty: str | None,
) -> GeoQuery | None:
    """The geoQ given by query parameters or by a query body's geoQ object.

    ``coordinates`` is JSON text (query string) or the already parsed array (body).
    ``geoproperty`` is a term, left for the caller to expand; it defaults to location.
    """
    given = {"georel": georel, "geometry": geometry, "coordinates": coordinates}
    if all(v is None for v in given.values()):
        return None  # a lone geoproperty asks for nothing
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise BadRequestData(
            "A geo-query needs georel, geometry and coordinates together; missing "
            + ", ".join(missing))
    if not isinstance(georel, str):
        raise BadRequestData("georel must be a string")
    if not isinstance(geometry, str) or geometry not in _DEPTH:
        raise BadRequestData(
            f"Unknown reference geometry {geometry!r}; expected one of {', '.join(_DEPTH)}")
    if geoproperty is not None and (not isinstance(geoproperty, str) or not geoproperty):
        raise BadRequestData("geoproperty must be an attribute name")
    rel, max_d, min_d = _parse_georel(georel)
    coords = coordinates
    if isinstance(coordinates, str):
        try:
            coords = json.loads(coordinates)
        except ValueError:
            raise BadRequestData(
                f"coordinates must be a JSON array, got {coordinates!r}") from None
    return GeoQuery(rel, {"type": geometry, "coordinates": coords}, max_d, min_d,
                    geoproperty or "location")
