"""Decision support for planners: for an area drawn on the map, how many people live there,
how much green space each has, what share of them live within 500 m of a school, a clinic
and a bus stop, how many flood incidents it had in the last year, and, for a plan
variant (a planning layer), its land-use mix and the floor area it allows; two variants
side by side. What counts as population, an amenity or green space is data
(``assessment.yaml``).

Areas are measured in metres in the area's own UTM zone (WGS 84), which at a city's scale
is exact to well under a percent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from pyproj import Transformer
from shapely.geometry import MultiPoint, mapping, shape
from shapely.ops import unary_union

from dothi.broker.broker import Broker
from dothi.errors import BadRequestData, ResourceNotFound
from dothi.gis.planning import LAND_USE
from dothi.ngsild.entity import first_value
from dothi.ngsild.geo import parse_geoquery
from dothi.ngsild.qlang import parse_q
from dothi.ngsild.typeexpr import parse_type_expr
from dothi.store.base import EntityQuery, Selector, query_all

RULES = Path(__file__).with_name("assessment.yaml")
MAX_VERTICES = 2000
MAX_KM2 = 500
GRID_POINTS = 20_000  # residents are placed on a grid of about this many points


@dataclass(frozen=True)
class Rules:
    population: list[dict[str, str]]
    metres: float
    amenities: dict[str, dict[str, Any]]
    green: list[dict[str, str]]
    flooding: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> Rules:
        data = yaml.safe_load((path or RULES).read_text(encoding="utf-8"))
        access = data["access"]
        for name, amenity in access["amenities"].items():
            if not amenity.get("vi") or not amenity.get("en") or not amenity.get("select"):
                raise ValueError(f"{path or RULES}: amenity {name} needs vi, en and select")
        return cls(population=data["population"], metres=float(access["metres"]),
                   amenities=access["amenities"], green=data["green"],
                   flooding=data["flooding"])


class Assessor:
    def __init__(self, broker: Broker, rules: Rules | None = None) -> None:
        self.broker = broker
        self.rules = rules or Rules.load()
        self.ctx = broker.resolver.core

    def assess(self, tenant: str, area: Any, variant: str | None = None,
               now: datetime | None = None) -> dict[str, Any]:
        """The figures of ``area`` (a GeoJSON Polygon or MultiPolygon), with ``variant``'s
        planning zones (a planning layer's GisLayer id) where zones count."""
        region = _region(area)
        to_m, to_deg = metric_projection(region.centroid.x, region.centroid.y)
        here = to_m(region)
        if here.area / 1e6 > MAX_KM2:
            raise BadRequestData(f"The area is larger than {MAX_KM2} km²")
        if variant is not None:
            self._layer(tenant, variant)
        people = self._population(tenant, region, here, to_m)
        residents, density, points, weights = people
        access = {}
        for name, amenity in self.rules.amenities.items():
            reach = to_deg(here.buffer(self.rules.metres))
            places = [to_m(g) for g in self._geometries(tenant, amenity["select"],
                                                                   reach)]
            spots = [g if g.geom_type == "Point" else g.centroid for g in places]
            near = shapely.dwithin(points, MultiPoint(spots), self.rules.metres) if spots \
                else np.zeros(len(points), dtype=bool)
            total = float(weights.sum())
            access[name] = {
                "vi": amenity["vi"], "en": amenity["en"],
                "inArea": sum(1 for s in spots if here.covers(s)),
                "share": round(float(weights[near].sum()) / total, 3) if total else None}
        green = self._green(tenant, region, here, to_m, variant)
        zones = self._zones(tenant, region, here, to_m, variant)
        since = (now or datetime.now(UTC)) - timedelta(days=int(self.rules.flooding["days"]))
        floods = self._count(tenant, self.rules.flooding["type"],
                             f'{self.rules.flooding["q"]};dateIssued>='
                             f'{since.astimezone(UTC).isoformat().replace("+00:00", "Z")}',
                             region)
        return {
            "variant": variant,
            "area": {"m2": round(here.area), "ha": round(here.area / 1e4, 2)},
            "population": {"residents": round(residents),
                           "perKm2": round(density) if density is not None else None},
            "greenSpace": {"m2": round(green),
                           "perResident": round(green / residents, 2) if residents else None},
            "access": {"metres": self.rules.metres, **access},
            "floodIncidents": {"count": floods, "days": int(self.rules.flooding["days"])},
            "landUse": zones["landUse"],
            "grossFloorArea": {"m2": round(zones["floor"]) if zones["floor"] else None},
        }

    def compare(self, tenant: str, area: Any, variants: Any,
                now: datetime | None = None) -> dict[str, Any]:
        """Two or more variants side by side over the same area."""
        if not isinstance(variants, list) or not 2 <= len(variants) <= 4 or not all(
                isinstance(v, str) for v in variants) or len(set(variants)) != len(variants):
            raise BadRequestData("variants lists 2 to 4 different planning layers")
        return {"variants": [self.assess(tenant, area, v, now) for v in variants]}

    # -- parts ------------------------------------------------------------------------

    def _population(self, tenant: str, region: Any, here: Any, to_m: Any
                    ) -> tuple[float, float | None, Any, Any]:
        """(residents, per km², grid points in metres, residents each point stands for):
        each source polygon's residents spread evenly over it, the smallest polygon
        counting wherever two overlap."""
        units = []
        for source in self.rules.population:
            for doc in self._docs(tenant, source["type"], None, region):
                count = first_value(doc, self.ctx.expand(source["attribute"]))
                geometry = first_value(doc, self.ctx.expand("location"))
                if not isinstance(count, int | float) or not isinstance(geometry, dict) or \
                        geometry.get("type") not in ("Polygon", "MultiPolygon"):
                    continue
                polygon = to_m(shape(geometry))
                if polygon.area > 0:
                    units.append((polygon, float(count) / polygon.area))
        units.sort(key=lambda u: u[0].area)
        step = max(25.0, math.sqrt(here.area / GRID_POINTS))
        x0, y0, x1, y1 = here.bounds
        grid_x, grid_y = np.meshgrid(np.arange(x0 + step / 2, x1, step),
                                     np.arange(y0 + step / 2, y1, step))
        xs, ys = grid_x.ravel(), grid_y.ravel()
        inside = shapely.contains_xy(here, xs, ys)
        xs, ys = xs[inside], ys[inside]
        if not len(xs):
            point = here.representative_point()
            xs, ys = np.array([point.x]), np.array([point.y])
        weights = np.zeros(len(xs))
        placed = np.zeros(len(xs), dtype=bool)
        residents = 0.0
        covered = None
        for polygon, density in units:
            mine = shapely.contains_xy(polygon, xs, ys) & ~placed
            weights[mine] = density
            placed |= mine
            visible = polygon if covered is None else polygon.difference(covered)
            residents += density * visible.intersection(here).area
            covered = polygon if covered is None else covered.union(polygon)
        points = shapely.points(xs, ys)
        density = residents / (here.area / 1e6) if units else None
        return residents, density, points, weights

    def _green(self, tenant: str, region: Any, here: Any, to_m: Any,
               variant: str | None) -> float:
        pieces = []
        for source in self.rules.green:
            q = source.get("q")
            if source["type"] == "PlanningZone" and variant is not None:
                q = f'{q};refGisLayer=="{variant}"' if q else f'refGisLayer=="{variant}"'
            for geometry in self._geometries(tenant, [{"type": source["type"], "q": q}],
                                             region):
                if geometry.geom_type in ("Polygon", "MultiPolygon"):
                    pieces.append(to_m(geometry).intersection(here))
        return float(unary_union(pieces).area) if pieces else 0.0

    def _zones(self, tenant: str, region: Any, here: Any, to_m: Any,
               variant: str | None) -> dict[str, Any]:
        """The variant's land-use mix in the area, and the floor area its zones allow."""
        if variant is None:
            return {"landUse": [], "floor": 0.0}
        uses: dict[str, float] = {}
        floor = 0.0
        for doc in self._docs(tenant, "PlanningZone", f'refGisLayer=="{variant}"', region):
            geometry = first_value(doc, self.ctx.expand("location"))
            if not isinstance(geometry, dict):
                continue
            part = to_m(shape(geometry)).intersection(here).area
            use = str(first_value(doc, self.ctx.expand("landUse")) or "unknown")
            uses[use] = uses.get(use, 0.0) + part
            ratio = first_value(doc, self.ctx.expand("maxFloorAreaRatio"))
            if isinstance(ratio, int | float):
                floor += part * ratio
        total = sum(uses.values())
        return {"floor": floor, "landUse": [
            {"landUse": use, "m2": round(m2), "share": round(m2 / total, 3) if total else 0,
             "vi": LAND_USE.get(use, (use, use))[0], "en": LAND_USE.get(use, (use, use))[1]}
            for use, m2 in sorted(uses.items(), key=lambda u: -u[1])]}

    def _layer(self, tenant: str, variant: str) -> None:
        doc = self.broker.store.get(tenant, variant)
        if doc is None or self.ctx.expand("GisLayer") not in doc.get("type", ()):
            raise ResourceNotFound(f"No planning layer {variant}")

    def _geometries(self, tenant: str, select: list[dict[str, Any]], region: Any) -> list[Any]:
        out = []
        for source in select:
            for doc in self._docs(tenant, source["type"], source.get("q"), region):
                geometry = first_value(doc, self.ctx.expand("location"))
                if isinstance(geometry, dict):
                    out.append(shape(geometry))
        return out

    def _docs(self, tenant: str, etype: str, q: str | None, region: Any) -> list[dict]:
        return query_all(self.broker.store, tenant, self._query(etype, q, region))

    def _count(self, tenant: str, etype: str, q: str, region: Any) -> int:
        query = self._query(etype, q, region)
        query.count, query.ids_only, query.limit = True, True, 0
        return self.broker.store.query(tenant, query)[1] or 0

    def _query(self, etype: str, q: str | None, region: Any) -> EntityQuery:
        where = mapping(region)
        return EntityQuery(
            selectors=[Selector(types=parse_type_expr(etype, self.ctx.expand))],
            q=parse_q(q) if q else None,
            geo=parse_geoquery("intersects", where["type"], _lists(where["coordinates"]),
                               None),
            expand=self.ctx.expand, limit=1000)


def _region(value: Any) -> Any:
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        raise BadRequestData("area is a GeoJSON Polygon or MultiPolygon")
    try:
        region = shape(value)
    except (ValueError, TypeError, AttributeError, IndexError):
        raise BadRequestData("area is not a valid GeoJSON geometry") from None
    x0, y0, x1, y1 = region.bounds
    if shapely.get_num_coordinates(region) > MAX_VERTICES or not region.is_valid or \
            region.is_empty or not (-180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90):
        raise BadRequestData(f"area must be a valid polygon in lon/lat with at most "
                             f"{MAX_VERTICES} vertices")
    return region


@cache
def _zone_transformers(epsg: int) -> tuple[Transformer, Transformer]:
    return (Transformer.from_crs(4326, epsg, always_xy=True),
            Transformer.from_crs(epsg, 4326, always_xy=True))


def metric_projection(lon: float, lat: float) -> tuple[Any, Any]:
    """Geometries to and from metres in the UTM zone (WGS 84) of a place."""
    zone = min(60, int((lon + 180) // 6) + 1)
    forward, back = _zone_transformers((32600 if lat >= 0 else 32700) + zone)
    return (lambda g: shapely.transform(g, forward.transform, interleaved=False),
            lambda g: shapely.transform(g, back.transform, interleaved=False))


def _lists(value: Any) -> Any:
    """shapely's mapping gives tuples; the geo-query wants JSON's lists."""
    return [_lists(v) for v in value] if isinstance(value, list | tuple) else value
