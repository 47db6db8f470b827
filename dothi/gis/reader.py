"""Reading GIS files feature by feature: GeoJSON, Shapefile, GeoPackage and KML through
GDAL (pyogrio's wheel), and CSV with coordinate columns read here."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Coordinate columns a CSV may have, as (x, y) names, compared without case.
CSV_COLUMNS = (("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"), ("x", "y"),
               ("kinh_do", "vi_do"), ("kinhdo", "vido"), ("easting", "northing"))
SUFFIXES = {".geojson", ".json", ".shp", ".gpkg", ".kml", ".csv", ".zip"}


@dataclass
class Source:
    """What a file holds: its declared CRS (if any), its fields, and its features as
    (number from 1, source id or None, shapely geometry or None, properties)."""

    declared_crs: str | None
    fields: list[str]
    count: int
    features: Iterator[tuple[int, Any, Any, dict[str, Any]]]


def open_source(path: Path, layer: str | None = None) -> Source:
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{path.name}: not a file kind dothi imports "
                         f"({', '.join(sorted(SUFFIXES))})")
    if path.suffix.lower() == ".csv":
        return _csv(path)
    return _gdal(path, layer)


def _gdal(path: Path, layer: str | None) -> Source:
    import pyogrio
    import shapely

    try:
        meta, fids, geometry, values = pyogrio.raw.read(path, layer=layer, return_fids=True)
    except Exception as exc:  # noqa: BLE001 - GDAL's own errors name the problem
        raise ValueError(f"{path.name}: {exc}") from None
    names = [str(n) for n in meta["fields"]]
    shapes = shapely.from_wkb(geometry, on_invalid="ignore") if geometry is not None else None

    def features() -> Iterator[tuple[int, Any, Any, dict[str, Any]]]:
        for k in range(len(fids)):
            props = {name: _plain(values[j][k]) for j, name in enumerate(names)}
            shape = shapes[k] if shapes is not None else None
            yield k + 1, _plain(fids[k]), shape, props

    return Source(meta.get("crs"), names, len(fids), features())


def _plain(value: Any) -> Any:
    """numpy scalars and datetimes as plain JSON values; NaN and NaT as None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _csv(path: Path) -> Source:
    import shapely

    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = list(rows[0].keys()) if rows else []
    lower = {n.lower().strip(): n for n in names}
    columns = next(((lower[x], lower[y]) for x, y in CSV_COLUMNS
                    if x in lower and y in lower), None)
    if columns is None:
        raise ValueError(f"{path.name}: no coordinate columns; expected one of "
                         + ", ".join(f"{x}/{y}" for x, y in CSV_COLUMNS))
    x_col, y_col = columns

    def features() -> Iterator[tuple[int, Any, Any, dict[str, Any]]]:
        for n, row in enumerate(rows, start=1):
            try:
                shape = shapely.Point(float(row[x_col]), float(row[y_col]))
            except (TypeError, ValueError):
                shape = None
            props = {k: _number(v) for k, v in row.items() if k not in columns}
            yield n, None, shape, props

    fields = [n for n in names if n not in columns]
    return Source(None, fields, len(rows), features())


def _number(text: str | None) -> Any:
    """CSV cells as numbers where they are numbers, empty cells as None."""
    if text is None or text.strip() == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
