"""Coordinate reference systems of the files cities have: WGS 84, and Vietnam's national
datum VN-2000 in its UTM zones (EPSG:3405, 3406) and its 3-degree provincial TM-3 zones
(EPSG:5896-5899, 9205-9218), all reprojected to WGS 84 longitude/latitude with pyproj's
own database, offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

WGS84 = CRS.from_epsg(4326)


class CrsProblem(ValueError):
    """The file's coordinates cannot be placed on the earth as given."""


def resolve(declared: Any, given: str | None) -> CRS:
    """The CRS to read a file in: the one given (``--crs``) wins over the file's own."""
    for source, text in (("--crs", given), ("the file", declared)):
        if text:
            try:
                return CRS.from_user_input(text)
            except CRSError as exc:
                raise CrsProblem(f"{source} names no known CRS ({text!r}): {exc}") from None
    return WGS84


def check_plausible(crs: CRS, sample: list[tuple[float, float]]) -> None:
    """Refuse projected coordinates taken for degrees (a file without its .prj, say)."""
    if not sample or not crs.is_geographic:
        return
    if any(abs(x) > 180 or abs(y) > 90 for x, y in sample):
        x, y = sample[0]
        raise CrsProblem(
            f"coordinates such as ({x}, {y}) are not longitude/latitude, and the file says "
            "no CRS: give it with --crs (VN-2000: EPSG:3405 or 3406 for UTM 48N/49N, "
            "EPSG:9205-9218 or 5896-5899 for the provinces' TM-3 zones, e.g. EPSG:5899 "
            "for 107°45' as in Đà Nẵng)")


def to_wgs84(crs: CRS) -> Callable[[Any], Any] | None:
    """A function reprojecting shapely geometries to WGS 84 lon/lat, or None when the
    coordinates already are."""
    if crs.equals(WGS84, ignore_axis_order=True):
        return None
    import shapely

    transformer = Transformer.from_crs(crs, WGS84, always_xy=True)

    def transform(geometry: Any) -> Any:
        return shapely.transform(geometry, lambda xy: _stack(transformer.transform(
            xy[:, 0], xy[:, 1])))

    return transform


def _stack(xy: tuple[Any, Any]) -> Any:
    import numpy

    return numpy.column_stack(xy)


def label(crs: CRS) -> str:
    code = crs.to_epsg()
    return f"EPSG:{code} ({crs.name})" if code else crs.name
