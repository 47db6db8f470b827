"""Geometry validation and geo-query predicates, on real places in Đà Nẵng."""

from __future__ import annotations

import json

import pytest
import shapely
from pyproj import Geod

from dothi.errors import BadRequestData
from dothi.ngsild.geo import geometry_bbox, parse_geoquery, validate_geometry

DRAGON_BRIDGE = [108.2272, 16.0612]
HAN_MARKET = [108.2242, 16.0680]
MARBLE_MOUNTAINS = [108.2630, 15.9990]
HAI_CHAU = [[[108.205, 16.035], [108.235, 16.035], [108.235, 16.085], [108.205, 16.085],
             [108.205, 16.035]]]


def point(c: list[float]) -> dict:
    return {"type": "Point", "coordinates": c}


def test_near_distance_agrees_with_an_ellipsoidal_geodesic() -> None:
    _, _, metres = Geod(ellps="WGS84").inv(*DRAGON_BRIDGE, *HAN_MARKET)
    q = parse_geoquery("near;maxDistance==1000", "Point", json.dumps(DRAGON_BRIDGE), None)
    assert q is not None
    assert q.distance_m(point(HAN_MARKET)) == pytest.approx(metres, rel=0.005)
    assert q.matches(point(HAN_MARKET)) and q.matches_point(*HAN_MARKET)
    assert not q.matches(point(MARBLE_MOUNTAINS))
    assert not q.matches_point(*MARBLE_MOUNTAINS)
    far = parse_geoquery("near;minDistance==5000", "Point", DRAGON_BRIDGE, None)
    assert far is not None and far.prefilter_bbox() is None
    assert far.matches(point(MARBLE_MOUNTAINS)) and not far.matches(point(HAN_MARKET))


def test_near_box_holds_every_match() -> None:
    q = parse_geoquery("near;maxDistance==500", "Point", json.dumps(DRAGON_BRIDGE), None)
    assert q is not None
    minx, maxx, miny, maxy = q.prefilter_bbox()  # type: ignore[misc]
    # 500 m east and north of the bridge are inside the box.
    assert maxx > DRAGON_BRIDGE[0] + 500 / 107_000 and maxy > DRAGON_BRIDGE[1] + 500 / 111_000
    assert minx < DRAGON_BRIDGE[0] < maxx and miny < DRAGON_BRIDGE[1] < maxy


@pytest.mark.parametrize(
    ("georel", "geometry", "coords", "entity", "expected"),
    [
        ("within", "Polygon", HAI_CHAU, point(DRAGON_BRIDGE), True),
        ("within", "Polygon", HAI_CHAU, point(MARBLE_MOUNTAINS), False),
        ("intersects", "Polygon", HAI_CHAU, point(HAN_MARKET), True),
        ("disjoint", "Polygon", HAI_CHAU, point(MARBLE_MOUNTAINS), True),
        ("disjoint", "Polygon", HAI_CHAU, point(HAN_MARKET), False),
        ("contains", "Point", DRAGON_BRIDGE, {"type": "Polygon", "coordinates": HAI_CHAU}, True),
        ("contains", "Point", MARBLE_MOUNTAINS, {"type": "Polygon", "coordinates": HAI_CHAU},
         False),
        ("equals", "Point", DRAGON_BRIDGE, point(DRAGON_BRIDGE), True),
        ("equals", "Point", DRAGON_BRIDGE, point(HAN_MARKET), False),
        ("overlaps", "Polygon", HAI_CHAU,
         {"type": "Polygon", "coordinates": [[[108.22, 16.07], [108.25, 16.07], [108.25, 16.10],
                                              [108.22, 16.10], [108.22, 16.07]]]}, True),
        ("overlaps", "Polygon", HAI_CHAU, point(DRAGON_BRIDGE), False),
    ],
)
def test_georels(georel: str, geometry: str, coords: object, entity: dict,
                 expected: bool) -> None:
    q = parse_geoquery(georel, geometry, json.dumps(coords), None)
    assert q is not None
    assert q.matches(entity) is expected
    if entity["type"] == "Point":
        assert q.matches_point(*entity["coordinates"]) is expected


@pytest.mark.parametrize(
    ("georel", "geometry", "coords"),
    [
        ("near", "Point", "[108.2,16.0]"),  # no distance
        ("near;maxDistance==-1", "Point", "[108.2,16.0]"),
        ("near;maxDistance==abc", "Point", "[108.2,16.0]"),
        ("near;maxDistance==10", "Polygon", json.dumps(HAI_CHAU)),
        ("within", "Polygon", "[[1,2]]"),
        ("within", "Polygon", "[[[108.2,16.0],[108.3,16.0],[108.3,16.1],[108.2,16.0]"),
        ("within", "Polygon", "[[[108.2,16.0],[108.3,16.0],[108.3,16.1],[108.25,16.1]]]"),
        ("crosses", "Point", "[108.2,16.0]"),
        ("within", "Circle", "[108.2,16.0]"),
        ("within", "Point", "[200,16.0]"),
        ("within", "Point", '["a",16.0]'),
        ("within", None, "[108.2,16.0]"),
    ],
)
def test_bad_geoqueries(georel: str, geometry: str | None, coords: str) -> None:
    with pytest.raises(BadRequestData):
        parse_geoquery(georel, geometry, coords, None)


def test_geometry_validation_and_bbox() -> None:
    line = {"type": "LineString", "coordinates": [[108.22, 16.06], [108.23, 16.07]]}
    assert validate_geometry(line).length > 0
    assert geometry_bbox(line) == (108.22, 108.23, 16.06, 16.07)
    assert geometry_bbox(point(DRAGON_BRIDGE)) == (108.2272, 108.2272, 16.0612, 16.0612)
    for bad in ({"type": "LineString", "coordinates": [[108.2, 16.0]]},
                {"type": "Point"}, {"type": "Point", "coordinates": [1, 2, 3, 4]},
                {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "POINT(1 2)"):
        with pytest.raises(BadRequestData):
            validate_geometry(bad)


@pytest.mark.parametrize("ring, expected", [
    ([[0.5, 0.5], [2, 0.5], [2, 2], [0.5, 2], [0.5, 0.5]], True),  # a corner inside
    ([[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]], True),  # touches the rectangle's corner
    ([[-1, -1], [3, -1], [3, 3], [-1, 3], [-1, -1]], True),  # around it: no vertex inside
    ([[-1, 0.5], [3, 0.5], [3, 0.6], [-1, 0.6], [-1, 0.5]], True),  # across it
    ([[1.5, 1.5], [2, 1.5], [2, 2], [1.5, 2], [1.5, 1.5]], False),  # beside it
])
def test_polygons_intersect_a_rectangle(ring: list, expected: bool) -> None:
    """A vertex inside settles it without shapely; anything else is left to shapely."""
    query = parse_geoquery("intersects", "Polygon", "[[[0,0],[1,0],[1,1],[0,1],[0,0]]]", None)
    assert query is not None
    assert query.matches({"type": "Polygon", "coordinates": [ring]}) is expected
    assert bool(shapely.intersects(query._shape, shapely.Polygon(ring))) is expected


def test_a_query_geometry_has_at_most_ten_thousand_positions() -> None:
    import math

    from dothi.ngsild.geo import MAX_QUERY_POSITIONS

    def ring(n: int) -> list[list[float]]:  # n positions, the last closing the ring
        points = [[108.2 + 0.01 * math.cos(2 * math.pi * k / (n - 1)),
                   16.05 + 0.01 * math.sin(2 * math.pi * k / (n - 1))] for k in range(n - 1)]
        return [*points, points[0]]

    assert parse_geoquery("intersects", "Polygon", [ring(MAX_QUERY_POSITIONS)], None)
    with pytest.raises(BadRequestData, match="at most 10,000 positions"):
        parse_geoquery("intersects", "Polygon", [ring(MAX_QUERY_POSITIONS + 1)], None)
