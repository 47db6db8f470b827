"""From a file's shapes to valid WGS 84 geometries: the one path every GIS import takes
(layers, administrative boundaries)."""

from __future__ import annotations

from typing import Any

import orjson
import shapely
from pyproj import CRS

from dothi.gis.crs import check_plausible, label, to_wgs84


class Refused(Exception):
    """This feature's geometry cannot be used; the message says why."""


class Geometries:
    def __init__(self, crs: CRS, repair: bool) -> None:
        self.crs = crs
        self.crs_label = label(crs)
        self.reproject = to_wgs84(crs)
        self.repair = repair
        self.checked = False

    def prepare(self, shape: Any) -> tuple[Any, str | None]:
        """(the shape valid and in WGS 84 lon/lat, the problem it was repaired from or
        None). Raises Refused; raises CrsProblem (a ValueError, for the whole file) when
        the first shape shows metres taken for degrees."""
        if shape is None or shape.is_empty:
            raise Refused("no geometry")
        if not self.checked:  # the first geometry tells degrees from metres
            check_plausible(self.crs,
                            [tuple(c) for c in shapely.get_coordinates(shape)[:1]])
            self.checked = True
        if self.reproject is not None:
            shape = self.reproject(shape)
        repaired = None
        if not shapely.is_valid(shape):
            reason = shapely.is_valid_reason(shape)
            if not self.repair:
                raise Refused(f"invalid geometry: {reason}")
            fixed = _repaired(shape)
            if fixed is None:
                raise Refused(f"invalid geometry, not repairable: {reason}")
            shape, repaired = fixed, reason
        x0, y0, x1, y1 = shapely.bounds(shape)
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise Refused("coordinates outside longitude/latitude after reprojection from "
                          f"{self.crs_label}")
        return shape, repaired


def _repaired(shape: Any) -> Any | None:
    """A valid geometry of the same dimension, or None."""
    fixed = shapely.make_valid(shape)
    dimension = shapely.get_dimensions(shape)
    if fixed.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(fixed) if shapely.get_dimensions(p) == dimension]
        if not parts:
            return None
        fixed = shapely.union_all(parts)
    return fixed if shapely.is_valid(fixed) and not fixed.is_empty else None


def geojson(shape: Any) -> dict[str, Any]:
    return orjson.loads(shapely.to_geojson(shape))  # type: ignore[no-any-return]
